/* db.h — the few SQLite helpers every atlas table needs (the map's in
 * atlas.c, the activations' in activations_store.c): one message format
 * for a failure, statements run whole, and key/value meta tables. */
#ifndef NEUROMAP_DB_H
#define NEUROMAP_DB_H

#include <sqlite3.h>
#include <stddef.h>

#include "base/util.h"
#include "model/vocab.h"

/* NM_INTERNAL_BEGIN */
/* "PATH: WHAT: SQLite's message", a runtime error. */
int db_fail(sqlite3 *db, const char *path, Error *e, const char *what);
/* Runs sql (one or more statements); "PATH: message" on failure. */
int db_exec(sqlite3 *db, const char *path, const char *sql, Error *e);
int db_has_table(sqlite3 *db, const char *name);
/* The value of key in table (meta, act_meta) into buf; NULL when absent. */
const char *db_get_meta(sqlite3 *db, const char *table, const char *key, char *buf, size_t cap);
/* Sets key to value in table (replacing it). */
int db_put_meta(sqlite3 *db, const char *path, const char *table, const char *key, const char *value, Error *e);
/* PATH.partial, malloc'd: where an atlas is written until it is complete (beside
 * PATH, so that rename() is atomic; a fixed name, so that --resume finds it). */
char *db_partial_path(const char *path);
/* Writes the tokens table (id, the bytes it stands for, its type) of a vocabulary. */
int db_put_tokens(sqlite3 *db, const char *path, const Vocab *v, Error *e);
/* Frees a token table read from an atlas: n texts and the three arrays. */
void db_free_tokens(char **text, int *text_len, int *type, int n);
int db_put_meta_int(sqlite3 *db, const char *path, const char *table, const char *key, long long v, Error *e);
/* NM_INTERNAL_END */

#endif
