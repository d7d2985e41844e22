/* atlas.c — the SQLite atlas: writing a map atomically, reading it back.
 * The schema is in atlas.h and README.md. */
#include "store/atlas.h"
#include "store/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

struct Atlas {
    sqlite3 *db;
    sqlite3_stmt *put_entry, *put_neuron;
    char *path, *temp;   /* final name, and the temporary one while writing (PATH.partial) */
    int lock_fd;         /* writing: holds flock() on the partial file; -1 otherwise */
    AtlasInfo info;
    int has_flags;       /* reading: neurons has lse_bound and nonfinite (atlases since schema 2) */
    int n_tokens;        /* reading: the token table */
    char **text;
    int *text_len, *type;
};

static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, text BLOB NOT NULL, type INTEGER NOT NULL);"
    "CREATE TABLE neurons(matrix TEXT NOT NULL, layer INTEGER NOT NULL, neuron INTEGER NOT NULL,"
    " lse REAL, lse_bound REAL NOT NULL DEFAULT 0, nonfinite INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(matrix, layer, neuron)) WITHOUT ROWID;"
    "CREATE TABLE entries(matrix TEXT NOT NULL, layer INTEGER NOT NULL, neuron INTEGER NOT NULL,"
    " rank INTEGER NOT NULL, token_id INTEGER NOT NULL, logit REAL NOT NULL, prob REAL NOT NULL,"
    " PRIMARY KEY(matrix, layer, neuron, rank)) WITHOUT ROWID;";

/* Built after the rows are in: one sort instead of a B-tree insert per row. */
static const char indexes[] = "CREATE INDEX entries_by_token ON entries(token_id, logit);";

static int db_error(Atlas *a, Error *e, const char *what) { return db_fail(a->db, a->path, e, what); }

static int exec(Atlas *a, const char *sql, Error *e) { return db_exec(a->db, a->path, sql, e); }

static void atlas_free(Atlas *a) {
    sqlite3_finalize(a->put_entry);
    sqlite3_finalize(a->put_neuron);
    sqlite3_close(a->db);
    db_free_tokens(a->text, a->text_len, a->type, a->n_tokens);
    free(a->path);
    free(a->temp);
    /* Closed after SQLite's own descriptor: closing ours first would drop its POSIX locks. */
    if (a->lock_fd >= 0) close(a->lock_fd);
    free(a);
}

int atlas_is_atlas(const char *path) {
    char magic[16] = { 0 };
    FILE *f = path_is_dir(path) ? NULL : fopen(path, "rb");
    size_t got = f ? fread(magic, 1, sizeof magic, f) : 0;
    if (f) fclose(f);
    return got == sizeof magic && memcmp(magic, "SQLite format 3", 16) == 0;
}

/* ----------------------------------------------------------------------------
 * Writing */

static int put_meta(Atlas *a, const char *key, const char *value, Error *e) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "INSERT INTO meta VALUES(?, ?)", -1, &st, NULL) != SQLITE_OK) return db_error(a, e, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    return ok ? NM_OK : db_error(a, e, "meta");
}

static int put_meta_int(Atlas *a, const char *key, long long v, Error *e) {
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    return put_meta(a, key, s, e);
}

/* The meta values that a resume must find unchanged, as stored. */
typedef struct {
    char id[32], content[32], top[32], bottom[32], prefilter[8], prob_tol[40], threads[16], shard[32];
} MetaText;

static void meta_text(const AtlasInfo *in, MetaText *t) {
    snprintf(t->id, sizeof t->id, "%016llx", (unsigned long long)in->identity);
    snprintf(t->content, sizeof t->content, "%016llx", (unsigned long long)in->content_identity);
    snprintf(t->top, sizeof t->top, "%d", in->top_k);
    snprintf(t->bottom, sizeof t->bottom, "%d", in->bottom_k);
    snprintf(t->prefilter, sizeof t->prefilter, "%s", in->prefilter ? "on" : "off");
    snprintf(t->prob_tol, sizeof t->prob_tol, "%.17g", in->prefilter ? in->prob_tol : 0.0);
    snprintf(t->threads, sizeof t->threads, "%d", in->threads);
    if (in->n_shards) snprintf(t->shard, sizeof t->shard, "%d/%d", in->shard, in->n_shards);
    else t->shard[0] = 0; /* a whole atlas has no 'shard' */
}

static int write_header(Atlas *a, const Model *m, Error *e) {
    const AtlasInfo *in = &a->info;
    char eps[32], when[32];
    MetaText t;
    meta_text(in, &t);
    time_t now = time(NULL);
    snprintf(eps, sizeof eps, "%.9g", (double)m->cfg.norm_eps);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int rc;
    if ((rc = put_meta(a, "neuromap_version", NEUROMAP_VERSION, e)) || (rc = put_meta(a, "created", when, e)) ||
        (rc = put_meta(a, "model_path", in->model_path, e)) || (rc = put_meta(a, "model_format", in->model_format, e)) ||
        (rc = put_meta(a, "model_identity", t.id, e)) || (rc = put_meta(a, "content_identity", t.content, e)) ||
        (rc = put_meta(a, "schema", "2", e)) || (rc = put_meta(a, "kernel", in->kernel, e)) ||
        (rc = put_meta(a, "prefilter", t.prefilter, e)) || (rc = put_meta(a, "prob_tol", t.prob_tol, e)) ||
        (rc = put_meta(a, "threads", t.threads, e)) || (rc = put_meta_int(a, "n_layers", in->n_layers, e)) ||
        (rc = put_meta_int(a, "dim", in->dim, e)) || (rc = put_meta_int(a, "ffn_dim", in->ffn_dim, e)) ||
        (rc = put_meta_int(a, "vocab_size", in->vocab_size, e)) || (rc = put_meta(a, "norm_eps", eps, e)) ||
        (rc = put_meta(a, "norm", lens_norm_name(in->norm), e)) || (rc = put_meta_int(a, "top_k", in->top_k, e)) ||
        (rc = put_meta_int(a, "bottom_k", in->bottom_k, e)) || (rc = put_meta(a, "matrices", in->matrices, e)) ||
        (rc = put_meta(a, "layers", in->layers, e)) || (rc = put_meta(a, "neurons", in->neurons, e)) ||
        (in->n_shards && (rc = put_meta(a, "shard", t.shard, e))))
        return rc;
    return db_put_tokens(a->db, a->path, &m->vocab, e);
}

static const char *meta_value(Atlas *a, const char *key, char *buf, size_t cap);

/* A resumed run must be the same run: same model, same options. Returns
 * NM_EINPUT naming the first option that differs. */
static int check_resumable(Atlas *a, Error *e) {
    const AtlasInfo *in = &a->info;
    char stored[1024], from[1024];
    MetaText t;
    meta_text(in, &t);
    /* Every value that can change a stored number (or which neurons there are). */
    struct { const char *key, *option, *want; } same[] = {
        { "model_identity", "MODEL (its layout: config and tensor headers)", t.id },
        { "content_identity", "MODEL (its weights: sampled bytes of every tensor)", t.content },
        { "norm", "--norm", lens_norm_name(in->norm) }, { "top_k", "--top-k", t.top }, { "bottom_k", "--bottom-k", t.bottom },
        { "matrices", "--matrix", in->matrices }, { "layers", "--layers", in->layers }, { "neurons", "--neurons", in->neurons },
        { "kernel", "--kernel", in->kernel }, { "prefilter", "--prefilter", t.prefilter }, { "prob_tol", "--prob-tol", t.prob_tol },
        { "threads", "--threads", t.threads },
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        if (!meta_value(a, same[i].key, stored, sizeof stored))
            return error_set(e, NM_EINPUT, "%s: not a resumable partial atlas (use --force to start over)", a->temp);
        if (strcmp(stored, same[i].want) != 0 && i < 2) {
            meta_value(a, "model_path", from, sizeof from);
            return error_set(e, NM_EINPUT, "%s: cannot resume: %s differs: the partial was mapped from %s (%s), this run's "
                             "model %s has %s (use --force to start over)", a->temp, same[i].option, from, stored,
                             in->model_path, same[i].want);
        }
        if (strcmp(stored, same[i].want) != 0)
            return error_set(e, NM_EINPUT, "%s: cannot resume: %s differs (partial has '%s', this run '%s'; use --force to start over)",
                             a->temp, same[i].option, stored, same[i].want);
    }
    meta_value(a, "shard", stored, sizeof stored); /* "" when absent: a whole atlas */
    if (strcmp(stored, t.shard) != 0)
        return error_set(e, NM_EINPUT, "%s: cannot resume: --shard differs (partial has '%s', this run '%s'; use --force to start over)",
                         a->temp, stored[0] ? stored : "none", t.shard[0] ? t.shard : "none");
    return NM_OK;
}

/* Claims PATH.partial: created if missing, flock()ed so a second map to the
 * same atlas is refused, and emptied (with any journal a kill left) unless
 * resuming. *existing says whether it held a previous run's rows. */
static int claim_partial(Atlas *a, int force, int resume, int *existing, Error *e) {
    a->lock_fd = open(a->temp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (a->lock_fd < 0) return error_set(e, NM_ERUNTIME, "%s: cannot create the partial atlas beside it", a->path);
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return error_set(e, NM_EINPUT, "%s: another map is writing this atlas (%s is locked)", a->path, a->temp);
    struct stat st;
    *existing = fstat(a->lock_fd, &st) == 0 && st.st_size > 0;
    if (*existing && !resume && !force)
        return error_set(e, NM_EINPUT, "%s: an interrupted map left %s (use --resume to continue it or --force to start over)",
                         a->path, a->temp);
    if (*existing && resume) return NM_OK;
    size_t n = strlen(a->temp) + 16;
    char *journal = xmalloc(n);
    snprintf(journal, n, "%s-journal", a->temp);
    unlink(journal); /* a stale hot journal would be "rolled back" onto the fresh file */
    free(journal);
    *existing = 0;
    if (ftruncate(a->lock_fd, 0) != 0) return error_set(e, NM_ERUNTIME, "%s: cannot empty %s", a->path, a->temp);
    return NM_OK;
}

int atlas_begin(Atlas **out, const char *path, int force, int resume, const Model *m, const AtlasInfo *info, Error *e) {
    *out = NULL;
    if (path_exists(path) && !force)
        return error_set(e, NM_EINPUT, "%s: already exists (use --force to overwrite it)", path);
    Atlas *a = xcalloc(1, sizeof *a);
    a->lock_fd = -1;
    a->path = xstrdup(path);
    a->info = *info;
    /* The partial file lives beside the final one, so rename() is atomic;
     * its name is fixed so that --resume finds it. */
    a->temp = db_partial_path(path);
    int existing = 0, rc = claim_partial(a, force, resume, &existing, e);
    if (rc) {
        atlas_free(a);
        return rc;
    }
    /* A rollback journal (not journal_mode=OFF) so that a kill mid-chunk
     * leaves the last committed chunk readable; synchronous=OFF because we
     * guard against a dying process, not a dying machine. */
    if (sqlite3_open(a->temp, &a->db) != SQLITE_OK) rc = db_error(a, e, "cannot create");
    else if (!(rc = exec(a, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;", e))) {
        if (existing) rc = check_resumable(a, e);
        else if (!(rc = exec(a, "BEGIN;", e)) && !(rc = exec(a, schema, e)) && !(rc = write_header(a, m, e))) rc = exec(a, "COMMIT;", e);
    }
    if (!rc && !(rc = exec(a, "BEGIN;", e))) {
        if (sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO entries VALUES(?, ?, ?, ?, ?, ?, ?)", -1, &a->put_entry, NULL) ||
            sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO neurons VALUES(?, ?, ?, ?, ?, ?)", -1, &a->put_neuron, NULL))
            rc = db_error(a, e, "prepare");
    }
    if (rc) {
        if (existing) atlas_close_partial(a); /* keep a previous run's rows for a later --resume */
        else atlas_abort(a);
        return rc;
    }
    a->has_flags = 1; /* a new partial has schema 2, and a resumed one passed check_resumable */
    *out = a;
    return NM_OK;
}

int atlas_create(Atlas **out, const char *path, int force, const Model *m, const AtlasInfo *info, Error *e) {
    return atlas_begin(out, path, force, 0, m, info, e);
}

int atlas_checkpoint(Atlas *a, Error *e) { return exec(a, "COMMIT; BEGIN;", e); }

int atlas_stored(Atlas *a, MatrixKind k, int layer, int first, int count) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT count(*) FROM neurons WHERE matrix = ? AND layer = ? AND neuron BETWEEN ? AND ?", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, matrix_name(k), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, first);
    sqlite3_bind_int(st, 4, first + count - 1);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return n;
}

/* Finalises the writer's statements and closes the file, committing what
 * is in first when commit (may fail on a full disk: then rolled back). */
static void close_db(Atlas *a, int commit) {
    sqlite3_finalize(a->put_entry);
    sqlite3_finalize(a->put_neuron);
    a->put_entry = a->put_neuron = NULL;
    if (commit && a->db) sqlite3_exec(a->db, "COMMIT;", NULL, NULL, NULL);
    sqlite3_close(a->db);
    a->db = NULL;
}

void atlas_close_partial(Atlas *a) {
    if (!a) return;
    close_db(a, 1);
    atlas_free(a);
}

static int put_entry(Atlas *a, const char *matrix, int layer, int neuron, int rank, const LensToken *t, Error *e) {
    sqlite3_stmt *st = a->put_entry;
    sqlite3_bind_text(st, 1, matrix, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, neuron);
    sqlite3_bind_int(st, 4, rank);
    sqlite3_bind_int(st, 5, t->id);
    sqlite3_bind_double(st, 6, t->logit);
    sqlite3_bind_double(st, 7, t->prob);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
    return ok ? NM_OK : db_error(a, e, "writing entries");
}

int atlas_add(Atlas *a, MatrixKind k, int layer, int neuron, const LensResult *r, int top_k, int bottom_k, Error *e) {
    const char *matrix = matrix_name(k);
    int rc;
    if (r->nonfinite) top_k = bottom_k = 0; /* its tokens mean nothing: the flag alone */
    for (int i = 0; i < top_k; i++)
        if ((rc = put_entry(a, matrix, layer, neuron, i + 1, &r->top[i], e))) return rc;
    for (int i = 0; i < bottom_k; i++)
        if ((rc = put_entry(a, matrix, layer, neuron, -(i + 1), &r->bottom[i], e))) return rc;
    sqlite3_stmt *st = a->put_neuron;
    sqlite3_bind_text(st, 1, matrix, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, neuron);
    if (r->nonfinite) sqlite3_bind_null(st, 4);
    else sqlite3_bind_double(st, 4, r->lse);
    sqlite3_bind_double(st, 5, r->nonfinite ? 0.0 : r->lse_bound);
    sqlite3_bind_int(st, 6, r->nonfinite != 0);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
    return ok ? NM_OK : db_error(a, e, "writing neurons");
}

int atlas_commit(Atlas *a, Error *e) {
    int rc = exec(a, indexes, e);
    if (!rc) rc = exec(a, "COMMIT;", e);
    sqlite3_finalize(a->put_entry);
    sqlite3_finalize(a->put_neuron);
    a->put_entry = a->put_neuron = NULL;
    if (!rc && sqlite3_close(a->db) != SQLITE_OK) rc = db_error(a, e, "closing");
    else if (!rc) a->db = NULL;
    if (!rc && fsync(a->lock_fd) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot write %s to disk", a->path, a->temp);
    if (!rc && rename(a->temp, a->path) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot rename %s into place", a->path, a->temp);
    if (rc) {
        atlas_close_partial(a); /* the rows stay in the partial file for --resume */
        return rc;
    }
    atlas_free(a);
    return NM_OK;
}

void atlas_abort(Atlas *a) {
    if (!a) return;
    close_db(a, 0);
    if (a->temp) unlink(a->temp);
    atlas_free(a);
}

const char *atlas_temp_path(const Atlas *a) { return a->temp; }

int atlas_set_meta(Atlas *a, const char *key, const char *value, Error *e) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "DELETE FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK) return db_error(a, e, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    return ok ? put_meta(a, key, value, e) : db_error(a, e, "meta");
}

/* ----------------------------------------------------------------------------
 * Reading */

static const char *meta_value(Atlas *a, const char *key, char *buf, size_t cap) {
    return db_get_meta(a->db, "meta", key, buf, cap);
}

static int read_info(Atlas *a, Error *e) {
    AtlasInfo *in = &a->info;
    char v[64];
    long x;
    struct { const char *key; int *dst; long lo, hi; } ints[] = {
        { "n_layers", &in->n_layers, 1, 1024 }, { "dim", &in->dim, 1, 1 << 17 }, { "ffn_dim", &in->ffn_dim, 1, 1 << 20 },
        { "vocab_size", &in->vocab_size, 1, 1 << 22 }, { "top_k", &in->top_k, 0, 1 << 22 }, { "bottom_k", &in->bottom_k, 0, 1 << 22 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!meta_value(a, ints[i].key, v, sizeof v) || !parse_long(v, &x) || x < ints[i].lo || x > ints[i].hi)
            return error_set(e, NM_EINPUT, "%s: not a neuromap atlas (meta '%s' missing or out of range)", a->path, ints[i].key);
        *ints[i].dst = (int)x;
    }
    if (!meta_value(a, "norm", v, sizeof v) || !lens_norm_from_name(v, &in->norm))
        return error_set(e, NM_EINPUT, "%s: not a neuromap atlas (meta 'norm' missing)", a->path);
    meta_value(a, "neuromap_version", in->version, sizeof in->version);
    meta_value(a, "model_path", in->model_path, sizeof in->model_path);
    meta_value(a, "model_format", in->model_format, sizeof in->model_format);
    meta_value(a, "matrices", in->matrices, sizeof in->matrices);
    meta_value(a, "layers", in->layers, sizeof in->layers);
    meta_value(a, "neurons", in->neurons, sizeof in->neurons);
    if (meta_value(a, "model_identity", v, sizeof v)) in->identity = strtoull(v, NULL, 16);
    if (meta_value(a, "content_identity", v, sizeof v)) in->content_identity = strtoull(v, NULL, 16);
    meta_value(a, "kernel", in->kernel, sizeof in->kernel);
    if (meta_value(a, "prefilter", v, sizeof v)) in->prefilter = strcmp(v, "on") == 0;
    if (meta_value(a, "prob_tol", v, sizeof v)) parse_float(v, &in->prob_tol);
    if (meta_value(a, "threads", v, sizeof v) && parse_long(v, &x)) in->threads = (int)x;
    if (meta_value(a, "shard", v, sizeof v) && (sscanf(v, "%d/%d", &in->shard, &in->n_shards) != 2 || in->shard < 0 || in->shard >= in->n_shards))
        in->shard = in->n_shards = 0;
    sqlite3_stmt *st; /* an atlas written before schema 2 has neither lse_bound nor nonfinite */
    a->has_flags = sqlite3_prepare_v2(a->db, "SELECT lse_bound, nonfinite FROM neurons LIMIT 0", -1, &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    return NM_OK;
}

static int read_tokens(Atlas *a, Error *e) {
    int n = a->info.vocab_size;
    a->text = xcalloc((size_t)n, sizeof *a->text);
    a->text_len = xcalloc((size_t)n, sizeof *a->text_len);
    a->type = xcalloc((size_t)n, sizeof *a->type);
    a->n_tokens = n;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT id, text, type FROM tokens", -1, &st, NULL) != SQLITE_OK) return db_error(a, e, "tokens");
    int rc = NM_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int id = sqlite3_column_int(st, 0);
        const void *b = sqlite3_column_blob(st, 1);
        int len = sqlite3_column_bytes(st, 1);
        if (id < 0 || id >= n || a->text[id] || len < 0 || len > 1 << 16) {
            rc = error_set(e, NM_EINPUT, "%s: bad row in the tokens table (id %d)", a->path, id);
            break;
        }
        a->text[id] = xmalloc((size_t)len + 1);
        if (len) memcpy(a->text[id], b, (size_t)len);
        a->text[id][len] = 0;
        a->text_len[id] = len;
        a->type[id] = sqlite3_column_int(st, 2);
    }
    sqlite3_finalize(st);
    for (int i = 0; !rc && i < n; i++)
        if (!a->text[i]) a->text[i] = xstrdup("");
    return rc;
}

int atlas_open(Atlas **out, const char *path, Error *e) {
    *out = NULL;
    Atlas *a = xcalloc(1, sizeof *a);
    a->lock_fd = -1;
    a->path = xstrdup(path);
    int rc = NM_OK;
    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) rc = db_error(a, e, "cannot open");
    if (!rc) rc = read_info(a, e);
    if (!rc) rc = read_tokens(a, e);
    if (rc) {
        atlas_free(a);
        return rc;
    }
    *out = a;
    return NM_OK;
}

void atlas_close(Atlas *a) {
    if (a) atlas_free(a);
}

const AtlasInfo *atlas_info(const Atlas *a) { return &a->info; }

const char *atlas_meta(const Atlas *a, const char *key, char *buf, size_t cap) { return meta_value((Atlas *)a, key, buf, cap); }

int64_t atlas_count_neurons(const Atlas *a) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, "SELECT count(*) FROM neurons", -1, &st, NULL) != SQLITE_OK) return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

TokenNames atlas_token_names(const Atlas *a) { return (TokenNames){ a->n_tokens, a->text, a->text_len, a->type }; }

int atlas_neuron(const Atlas *a, MatrixKind k, int layer, int neuron, LensResult *r, int *n_top, int *n_bottom, Error *e) {
    sqlite3_stmt *st;
    *n_top = *n_bottom = 0;
    r->lse_bound = 0;
    r->nonfinite = 0;
    if (sqlite3_prepare_v2(a->db,
                           a->has_flags ? "SELECT lse, lse_bound, nonfinite FROM neurons WHERE matrix = ? AND layer = ? AND neuron = ?"
                                        : "SELECT lse, 0, 0 FROM neurons WHERE matrix = ? AND layer = ? AND neuron = ?",
                           -1, &st, NULL))
        return error_set(e, NM_ERUNTIME, "%s: %s", a->path, sqlite3_errmsg(a->db));
    sqlite3_bind_text(st, 1, matrix_name(k), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, neuron);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        r->lse = sqlite3_column_double(st, 0);
        r->lse_bound = sqlite3_column_double(st, 1);
        r->nonfinite = sqlite3_column_int(st, 2) != 0;
    }
    sqlite3_finalize(st);
    if (!found)
        return error_set(e, NM_EINPUT, "%s: the atlas holds no %s neuron %d:%d (it maps %s, layers %s, neurons %s)", a->path,
                         matrix_name(k), layer, neuron, a->info.matrices, a->info.layers, a->info.neurons);
    if (sqlite3_prepare_v2(a->db,
                           "SELECT rank, token_id, logit, prob FROM entries WHERE matrix = ? AND layer = ? AND neuron = ?",
                           -1, &st, NULL))
        return error_set(e, NM_ERUNTIME, "%s: %s", a->path, sqlite3_errmsg(a->db));
    sqlite3_bind_text(st, 1, matrix_name(k), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, neuron);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int rank = sqlite3_column_int(st, 0);
        LensToken t = { .id = sqlite3_column_int(st, 1), .logit = (float)sqlite3_column_double(st, 2),
                        .prob = (float)sqlite3_column_double(st, 3) };
        if (rank >= 1 && rank <= a->info.top_k) {
            r->top[rank - 1] = t;
            if (rank > *n_top) *n_top = rank;
        } else if (rank <= -1 && rank >= -a->info.bottom_k) {
            r->bottom[-rank - 1] = t;
            if (-rank > *n_bottom) *n_bottom = -rank;
        }
    }
    sqlite3_finalize(st);
    return NM_OK;
}

int atlas_layer_top(const Atlas *a, MatrixKind k, int layer, int count, int top_k, LensResult *r, Error *e) {
    static const char sql[] = "SELECT neuron, rank, token_id, logit, prob FROM entries"
                              " WHERE matrix = ? AND layer = ? AND rank BETWEEN 1 AND ?";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return error_set(e, NM_ERUNTIME, "%s: %s", a->path, sqlite3_errmsg(a->db));
    sqlite3_bind_text(st, 1, matrix_name(k), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, top_k);
    int *filled = xcalloc((size_t)count, sizeof *filled);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_int(st, 0), rank = sqlite3_column_int(st, 1);
        if (n < 0 || n >= count) continue;
        r[n].top[rank - 1] = (LensToken){ .id = sqlite3_column_int(st, 2), .logit = (float)sqlite3_column_double(st, 3),
                                          .prob = (float)sqlite3_column_double(st, 4) };
        filled[n]++; /* (matrix, layer, neuron, rank) is the key: no rank twice */
    }
    sqlite3_finalize(st);
    for (int n = 0; n < count; n++) r[n].nonfinite = 0;
    if (a->has_flags && sqlite3_prepare_v2(a->db, "SELECT neuron FROM neurons WHERE matrix = ? AND layer = ? AND nonfinite", -1,
                                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, matrix_name(k), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, layer);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int n = sqlite3_column_int(st, 0);
            if (n >= 0 && n < count) r[n].nonfinite = 1;
        }
        sqlite3_finalize(st);
    }
    int rc = NM_OK;
    for (int n = 0; n < count && !rc; n++)
        if (filled[n] != top_k && !r[n].nonfinite)
            rc = error_set(e, NM_EINPUT, "%s: %s neuron %d:%d has %d of the top %d tokens stored", a->path, matrix_name(k), layer,
                           n, filled[n], top_k);
    free(filled);
    return rc;
}

int atlas_find(const Atlas *a, int token, unsigned matrix_mask, int limit, AtlasHit **hits, int *n, Error *e) {
    static const char sql[] =
        "SELECT e.matrix, e.layer, e.neuron, e.rank, e.logit, t.token_id, e.prob FROM entries e"
        " JOIN entries t ON t.matrix = e.matrix AND t.layer = e.layer AND t.neuron = e.neuron AND t.rank = 1"
        " WHERE e.token_id = ? AND e.rank > 0 ORDER BY e.logit DESC, e.matrix, e.layer, e.neuron";
    sqlite3_stmt *st;
    *hits = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return error_set(e, NM_ERUNTIME, "%s: %s", a->path, sqlite3_errmsg(a->db));
    sqlite3_bind_int(st, 1, token);
    int cap = 0;
    while (*n < limit && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        MatrixKind k;
        if (!name || !matrix_from_name(name, &k) || !(matrix_mask & (1u << k))) continue;
        if (*n == cap) *hits = xrealloc(*hits, (size_t)(cap = cap ? 2 * cap : 16) * sizeof **hits);
        (*hits)[(*n)++] = (AtlasHit){ .matrix = k, .layer = sqlite3_column_int(st, 1), .neuron = sqlite3_column_int(st, 2),
                                      .rank = sqlite3_column_int(st, 3), .logit = (float)sqlite3_column_double(st, 4),
                                      .top_id = sqlite3_column_int(st, 5), .prob = sqlite3_column_double(st, 6) };
    }
    sqlite3_finalize(st);
    return NM_OK;
}

int64_t atlas_count_nonfinite(const Atlas *a, unsigned matrix_mask) {
    int64_t n = 0;
    sqlite3_stmt *st;
    if (!a->has_flags || sqlite3_prepare_v2(a->db, "SELECT matrix, count(*) FROM neurons WHERE nonfinite GROUP BY matrix", -1,
                                            &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        MatrixKind k;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name && matrix_from_name(name, &k) && (matrix_mask & (1u << k))) n += sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return n;
}

/* Two cursors over one matrix, both in primary-key order (layer, neuron):
 * the neurons, and their entries, merged as they go. No sort is needed. */
int atlas_each_neuron(const Atlas *a, int (*fn)(void *ctx, MatrixKind k, int layer, int neuron, const LensResult *r,
                                                 int n_top, int n_bottom),
                      void *ctx, Error *e) {
    const AtlasInfo *in = &a->info;
    LensBatch b;
    lens_batch_init(&b, 1, in->top_k, in->bottom_k);
    LensResult *r = &b.r[0];
    int rc = NM_OK;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN && !rc; k++) {
        sqlite3_stmt *ns = NULL, *es = NULL;
        const char *nsql = a->has_flags ? "SELECT layer, neuron, lse, lse_bound, nonfinite FROM neurons WHERE matrix = ? ORDER BY layer, neuron"
                                        : "SELECT layer, neuron, lse, 0, 0 FROM neurons WHERE matrix = ? ORDER BY layer, neuron";
        if (sqlite3_prepare_v2(a->db, nsql, -1, &ns, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(a->db, "SELECT layer, neuron, rank, token_id, logit, prob FROM entries WHERE matrix = ?"
                                      " ORDER BY layer, neuron", -1, &es, NULL) != SQLITE_OK) {
            rc = error_set(e, NM_ERUNTIME, "%s: %s", a->path, sqlite3_errmsg(a->db));
        } else {
            sqlite3_bind_text(ns, 1, matrix_name((MatrixKind)k), -1, SQLITE_STATIC);
            sqlite3_bind_text(es, 1, matrix_name((MatrixKind)k), -1, SQLITE_STATIC);
            int have = sqlite3_step(es) == SQLITE_ROW;
            while (!rc && sqlite3_step(ns) == SQLITE_ROW) {
                int layer = sqlite3_column_int(ns, 0), neuron = sqlite3_column_int(ns, 1), n_top = 0, n_bottom = 0;
                r->lse = sqlite3_column_double(ns, 2);
                r->lse_bound = sqlite3_column_double(ns, 3);
                r->nonfinite = sqlite3_column_int(ns, 4) != 0;
                /* entries of earlier neurons with no neurons row cannot exist (one transaction writes both) */
                for (; have && sqlite3_column_int(es, 0) == layer && sqlite3_column_int(es, 1) == neuron;
                     have = sqlite3_step(es) == SQLITE_ROW) {
                    int rank = sqlite3_column_int(es, 2);
                    LensToken t = { .id = sqlite3_column_int(es, 3), .logit = (float)sqlite3_column_double(es, 4),
                                    .prob = (float)sqlite3_column_double(es, 5) };
                    if (rank >= 1 && rank <= in->top_k) {
                        r->top[rank - 1] = t;
                        if (rank > n_top) n_top = rank;
                    } else if (rank <= -1 && rank >= -in->bottom_k) {
                        r->bottom[-rank - 1] = t;
                        if (-rank > n_bottom) n_bottom = -rank;
                    }
                }
                rc = fn(ctx, (MatrixKind)k, layer, neuron, r, n_top, n_bottom);
            }
        }
        sqlite3_finalize(ns);
        sqlite3_finalize(es);
    }
    lens_batch_free(&b);
    return rc;
}

int64_t atlas_nonfinite_names(const Atlas *a, int max, char *names, size_t cap) {
    static const char sql[] = "SELECT matrix, layer, neuron FROM neurons WHERE nonfinite ORDER BY"
                              " CASE matrix WHEN 'up' THEN 0 WHEN 'gate' THEN 1 ELSE 2 END, layer, neuron";
    sqlite3_stmt *st;
    int64_t n = 0;
    if (cap) names[0] = 0;
    if (!a->has_flags || sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    for (; sqlite3_step(st) == SQLITE_ROW; n++) {
        size_t len = strlen(names);
        if (n < max && len < cap)
            snprintf(names + len, cap - len, "%s%s %d:%d", n ? ", " : "", (const char *)sqlite3_column_text(st, 0),
                     sqlite3_column_int(st, 1), sqlite3_column_int(st, 2));
    }
    sqlite3_finalize(st);
    return n;
}
