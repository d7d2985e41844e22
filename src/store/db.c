/* db.c — see db.h. */
#include "store/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_fail(sqlite3 *db, const char *path, Error *e, const char *what) {
    return error_set(e, NM_ERUNTIME, "%s: %s: %s", path, what, sqlite3_errmsg(db));
}

int db_exec(sqlite3 *db, const char *path, const char *sql, Error *e) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return NM_OK;
    int rc = error_set(e, NM_ERUNTIME, "%s: %s", path, msg ? msg : "SQLite error");
    sqlite3_free(msg);
    return rc;
}

int db_has_table(sqlite3 *db, const char *name) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st, NULL)) return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int yes = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes;
}

const char *db_get_meta(sqlite3 *db, const char *table, const char *key, char *buf, size_t cap) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT value FROM %s WHERE key = ?", table);
    sqlite3_stmt *st;
    buf[0] = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    const char *r = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        r = buf;
    }
    sqlite3_finalize(st);
    return r;
}

int db_put_meta(sqlite3 *db, const char *path, const char *table, const char *key, const char *value, Error *e) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s VALUES(?, ?)", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return db_fail(db, path, e, table);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    return ok ? NM_OK : db_fail(db, path, e, table);
}

int db_put_meta_int(sqlite3 *db, const char *path, const char *table, const char *key, long long v, Error *e) {
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    return db_put_meta(db, path, table, key, s, e);
}

char *db_partial_path(const char *path) {
    size_t n = strlen(path) + sizeof ".partial";
    char *s = xmalloc(n);
    snprintf(s, n, "%s.partial", path);
    return s;
}

void db_free_tokens(char **text, int *text_len, int *type, int n) {
    for (int i = 0; i < n; i++) free(text[i]);
    free(text);
    free(text_len);
    free(type);
}

int db_put_tokens(sqlite3 *db, const char *path, const Vocab *v, Error *e) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO tokens VALUES(?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, path, e, "tokens");
    for (int i = 0; i < v->n_tokens; i++) {
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_blob(st, 2, v->text[i], v->text_len[i], SQLITE_STATIC);
        sqlite3_bind_int(st, 3, v->type ? v->type[i] : TOKEN_NORMAL);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_fail(db, path, e, "tokens");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return NM_OK;
}
