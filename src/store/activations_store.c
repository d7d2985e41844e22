/* activations_store.c — the activation tables of an atlas: an atomic,
 * resumable writer and a reader. The schema is in activations_store.h. */
#include "store/activations_store.h"
#include "store/db.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char act_schema[] =
    "CREATE TABLE act_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE act_neurons(layer INTEGER NOT NULL, neuron INTEGER NOT NULL, count INTEGER NOT NULL,"
    " mean REAL NOT NULL, std REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, density REAL NOT NULL,"
    " m2 REAL NOT NULL, positive INTEGER NOT NULL, sign_pp INTEGER NOT NULL, sign_pn INTEGER NOT NULL,"
    " sign_np INTEGER NOT NULL, sign_nn INTEGER NOT NULL, histogram TEXT NOT NULL,"
    " q50 REAL NOT NULL, q90 REAL NOT NULL, q99 REAL NOT NULL,"
    " writes_id INTEGER NOT NULL, up_id INTEGER NOT NULL, up_embed_id INTEGER NOT NULL, gate_id INTEGER NOT NULL,"
    " gate_embed_id INTEGER NOT NULL,"
    " PRIMARY KEY(layer, neuron)) WITHOUT ROWID;"
    "CREATE TABLE act_examples(layer INTEGER NOT NULL, neuron INTEGER NOT NULL, list TEXT NOT NULL, rank INTEGER NOT NULL,"
    " doc INTEGER NOT NULL, window INTEGER NOT NULL, pos INTEGER NOT NULL, token_id INTEGER NOT NULL,"
    " act REAL NOT NULL, gate REAL NOT NULL, up REAL NOT NULL, PRIMARY KEY(layer, neuron, list, rank)) WITHOUT ROWID;"
    "CREATE TABLE act_tokens(token_id INTEGER PRIMARY KEY, count INTEGER NOT NULL);"
    "CREATE TABLE act_docs(doc INTEGER PRIMARY KEY, start INTEGER NOT NULL, end INTEGER NOT NULL, ids BLOB NOT NULL);"
    "CREATE TABLE act_sums(layer INTEGER NOT NULL, neuron INTEGER NOT NULL, sums BLOB NOT NULL,"
    " PRIMARY KEY(layer, neuron)) WITHOUT ROWID;";

static const char act_drop[] = "DROP TABLE IF EXISTS act_meta; DROP TABLE IF EXISTS act_neurons; DROP TABLE IF EXISTS act_examples;"
                               "DROP TABLE IF EXISTS act_tokens; DROP TABLE IF EXISTS act_docs; DROP TABLE IF EXISTS act_sums;";

/* The map's own meta and tokens tables (atlas.c), for an atlas that holds
 * only activations: the same columns, so either reader finds them. */
static const char base_schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, text BLOB NOT NULL, type INTEGER NOT NULL);";

static const char *const list_names[2 + ACT_BANDS] = { "top", "bottom", "q50", "q90", "q99" };

/* ----------------------------------------------------------------------------
 * Small SQLite helpers */

/* ----------------------------------------------------------------------------
 * Writing */


void act_store_free(ActStore *s) {
    sqlite3_close(s->db);
    free(s->path);
    free(s->temp);
    if (s->lock_fd >= 0) close(s->lock_fd); /* after SQLite's descriptor, as atlas.c does */
    free(s);
}

const char *act_store_temp_path(const ActStore *s) { return s->temp; }

/* The options a resumed run must share with the partial, as act_meta keys. */
void act_run_keys(const ActInfo *in, uint64_t identity, char v[ACT_RUN_KEYS][64]) {
    snprintf(v[0], 64, "%016" PRIx64, identity);
    snprintf(v[1], 64, "%016" PRIx64, in->corpus_hash);
    snprintf(v[2], 64, "%d", in->window);
    snprintf(v[3], 64, "%d", in->top_n);
    snprintf(v[4], 64, "%d", in->bottom_n);
    snprintf(v[5], 64, "%d-%d", in->l0, in->l1);
    snprintf(v[6], 64, "%lld", (long long)in->max_tokens);
    snprintf(v[7], 64, "%" PRIu64, in->seed);
    snprintf(v[8], 64, "%d", in->n_docs);
}
const char *const act_run_key_names[ACT_RUN_KEYS] = { "model_identity", "corpus_hash", "window", "top_n", "bottom_n",
                                              "layers", "max_tokens", "seed", "corpus_docs" };
const char *const act_run_key_options[ACT_RUN_KEYS] = { "MODEL (a different model)", "--corpus (its contents)", "--window", "--top-n",
                                                "--bottom-n", "--layers", "--max-tokens", "the seed", "--corpus (its documents)" };

int act_copy_file(const char *from, int to_fd, Error *e) {
    FILE *in = fopen(from, "rb");
    if (!in) return error_set(e, NM_ERUNTIME, "%s: cannot read it to add activations", from);
    char buf[1 << 16];
    size_t n;
    int rc = NM_OK;
    if (ftruncate(to_fd, 0) != 0 || lseek(to_fd, 0, SEEK_SET) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot copy it", from);
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (write(to_fd, buf, n) != (ssize_t)n) rc = error_set(e, NM_ERUNTIME, "%s: cannot copy it beside itself (disk full?)", from);
    if (!rc && ferror(in)) rc = error_set(e, NM_ERUNTIME, "%s: read error", from);
    fclose(in);
    return rc;
}

/* A new atlas's meta and tokens: the model's identity and token texts. */
static int write_base(ActStore *s, const Model *m, Error *e) {
    char id[32], when[32];
    time_t now = time(NULL);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)m->identity);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int rc;
    if ((rc = db_exec(s->db, s->temp, base_schema, e)) || (rc = db_put_meta(s->db, s->temp, "meta", "neuromap_version", NEUROMAP_VERSION, e)) ||
        (rc = db_put_meta(s->db, s->temp, "meta", "created", when, e)) ||
        (rc = db_put_meta(s->db, s->temp, "meta", "model_path", m->path, e)) ||
        (rc = db_put_meta(s->db, s->temp, "meta", "model_format", format_name(m->format), e)) ||
        (rc = db_put_meta(s->db, s->temp, "meta", "model_identity", id, e)) ||
        (rc = db_put_meta_int(s->db, s->temp, "meta", "n_layers", m->cfg.n_layers, e)) ||
        (rc = db_put_meta_int(s->db, s->temp, "meta", "dim", m->cfg.dim, e)) ||
        (rc = db_put_meta_int(s->db, s->temp, "meta", "ffn_dim", m->cfg.ffn_dim, e)) ||
        (rc = db_put_meta_int(s->db, s->temp, "meta", "vocab_size", m->cfg.vocab_size, e)))
        return rc;
    return db_put_tokens(s->db, s->temp, &m->vocab, e);
}

const char *const act_stage_names[4] = { "", "pass1", "bands", "pass2" };

/* A part's own act_meta keys: its stage, its shard, the bands it used. */
static void part_keys(const ActInfo *in, char v[4][64]) {
    snprintf(v[0], 64, "%s", act_stage_names[in->stage]);
    if (in->n_shards) snprintf(v[1], 64, "%d/%d", in->shard, in->n_shards);
    else snprintf(v[1], 64, "-");
    snprintf(v[2], 64, "%016" PRIx64, in->bands_hash);
    snprintf(v[3], 64, "%016" PRIx64, in->content);
}
static const char *const part_key_names[4] = { "stage", "shard", "bands_hash", "model_content" };

static int put_part_keys(sqlite3 *db, const char *path, const ActInfo *in, Error *e) {
    char v[4][64];
    part_keys(in, v);
    int rc = NM_OK;
    for (int i = 0; i < 4 && !rc; i++) rc = db_put_meta(db, path, "act_meta", part_key_names[i], v[i], e);
    return rc;
}

uint64_t act_bands_hash(const ActRun *r) {
    size_t n = act_run_neurons(r) * 3;
    double *q = xmalloc(n * sizeof *q);
    act_run_quantiles(r, q);
    uint64_t h = fnv1a64(FNV1A64_INIT, q, n * sizeof *q);
    free(q);
    return h;
}

static int write_act_meta(ActStore *s, const Model *m, Error *e) {
    const ActInfo *in = &s->info;
    char v[9][64];
    act_run_keys(in, m->identity, v);
    int rc = NM_OK;
    for (int i = 0; i < 9 && !rc; i++) rc = db_put_meta(s->db, s->temp, "act_meta", act_run_key_names[i], v[i], e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "corpus_path", in->corpus, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "corpus_bytes", in->corpus_bytes, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "bos_id", m->vocab.bos_id, e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "histogram", "symmetric log2 bins: edges 0, +-2^-10, +-2^-9, ..., +-2^4", e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "quantiles", "from the histogram: exact at bin edges, linear within a bin", e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "complete", "0", e);
    if (!rc && in->stage) rc = put_part_keys(s->db, s->temp, in, e);
    return rc;
}

static int check_resumable(ActStore *s, const Model *m, Error *e) {
    char v[9][64], stored[256];
    act_run_keys(&s->info, m->identity, v);
    for (int i = 0; i < 9; i++) {
        if (!db_get_meta(s->db, "act_meta", act_run_key_names[i], stored, sizeof stored))
            return error_set(e, NM_EINPUT, "%s: not a resumable partial run (use --force to start over)", s->temp);
        if (strcmp(stored, v[i]) != 0)
            return error_set(e, NM_EINPUT, "%s: cannot resume: %s differs (partial has '%s', this run '%s'; use --force to start over)",
                             s->temp, act_run_key_options[i], stored, v[i]);
    }
    /* a part resumes as the same part; a whole run has none of these keys */
    char p[4][64];
    part_keys(&s->info, p);
    for (int i = 0; i < 4; i++) {
        int has = db_get_meta(s->db, "act_meta", part_key_names[i], stored, sizeof stored) != NULL;
        if (has != (s->info.stage != 0) || (has && strcmp(stored, p[i]) != 0))
            return error_set(e, NM_EINPUT, "%s: cannot resume: %s differs (partial has '%s', this run '%s'; use --force to start over)",
                             s->temp, i == 0 ? "the stage (--shard, --bands)" : i == 1 ? "--shard" : i == 2 ? "--bands (its band edges)" : "MODEL (its weights)",
                             has ? stored : "-", s->info.stage ? p[i] : "-");
    }
    return NM_OK;
}

int act_store_begin(ActStore **out, const char *path, int force, int resume, const Model *m, const ActInfo *info,
                    int *resumed, Error *e) {
    *out = NULL;
    *resumed = 0;
    ActStore *s = xcalloc(1, sizeof *s);
    s->lock_fd = -1;
    s->path = xstrdup(path);
    s->info = *info;
    s->temp = db_partial_path(path);
    int rc = NM_OK, adding = 0, locked = 0;

    /* What is at PATH now: nothing, an atlas to add to, or something else.
     * A run being resumed checked it when it started. */
    struct stat pst;
    int continuing = resume && stat(s->temp, &pst) == 0 && pst.st_size > 0;
    if (path_exists(path)) {
        sqlite3 *db = NULL;
        char id[64], want[32];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)m->identity);
        int is_atlas = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK && db_has_table(db, "meta");
        if (!is_atlas && !force)
            rc = error_set(e, NM_EINPUT, "%s: exists and is not an atlas (use --force to overwrite it)", path);
        else if (is_atlas && db_get_meta(db, "meta", "model_identity", id, sizeof id) && strcmp(id, want) != 0)
            rc = error_set(e, NM_EINPUT, "%s: is an atlas of another model (identity %s, MODEL %s)", path, id, want);
        else if (is_atlas && db_has_table(db, "act_meta") && !force && !continuing)
            rc = error_set(e, NM_EINPUT, "%s: holds activations already (use --force to replace them)", path);
        adding = is_atlas;
        sqlite3_close(db);
    }
    /* Claim the partial as atlas.c does: flock()ed, kept when resuming. */
    if (!rc) {
        s->lock_fd = open(s->temp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot create the partial atlas beside it", path);
        else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
            rc = error_set(e, NM_EINPUT, "%s: another run is writing this atlas (%s is locked)", path, s->temp);
        else locked = 1;
    }
    struct stat st;
    int existing = !rc && fstat(s->lock_fd, &st) == 0 && st.st_size > 0;
    if (!rc && existing && !resume && !force)
        rc = error_set(e, NM_EINPUT, "%s: an interrupted run left %s (use --resume to continue it or --force to start over)", path, s->temp);
    if (!rc && !(existing && resume)) {
        char journal[4200];
        snprintf(journal, sizeof journal, "%s-journal", s->temp);
        unlink(journal);
        existing = 0;
        if (adding) rc = act_copy_file(path, s->lock_fd, e);
        else if (ftruncate(s->lock_fd, 0) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot empty %s", path, s->temp);
    }
    if (!rc && sqlite3_open(s->temp, &s->db) != SQLITE_OK) rc = db_fail(s->db, s->temp, e, "cannot open");
    if (!rc) rc = db_exec(s->db, s->temp, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;", e);
    if (!rc && existing) {
        if (!db_has_table(s->db, "act_meta")) rc = error_set(e, NM_EINPUT, "%s: not a partial activations run (use --force to start over)", s->temp);
        else rc = check_resumable(s, m, e);
        *resumed = !rc;
    } else if (!rc) {
        if (!(rc = db_exec(s->db, s->temp, "BEGIN;", e)) && !(rc = db_exec(s->db, s->temp, act_drop, e)) &&
            !(adding ? 0 : (rc = write_base(s, m, e))) && !(rc = db_exec(s->db, s->temp, act_schema, e)) &&
            !(rc = write_act_meta(s, m, e)))
            rc = db_exec(s->db, s->temp, "COMMIT;", e);
    }
    if (rc) {
        if (locked && !existing) unlink(s->temp); /* ours and empty; a previous run's rows stay for --resume */
        act_store_free(s);
        return rc;
    }
    *out = s;
    return NM_OK;
}

static int bind_example(sqlite3_stmt *st, int layer, int neuron, const char *list, int rank, const ActExample *x) {
    sqlite3_bind_int(st, 1, layer);
    sqlite3_bind_int(st, 2, neuron);
    sqlite3_bind_text(st, 3, list, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, rank);
    sqlite3_bind_int(st, 5, x->doc);
    sqlite3_bind_int(st, 6, x->window);
    sqlite3_bind_int(st, 7, x->pos);
    sqlite3_bind_int(st, 8, x->token);
    sqlite3_bind_double(st, 9, x->act);
    sqlite3_bind_double(st, 10, x->gate);
    sqlite3_bind_double(st, 11, x->up);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
    return ok;
}

/* Every neuron's state and lists, and the unigram counts. */
int act_save_state(ActStore *s, const ActRun *r, const int *const readings[5], Error *e) {
    sqlite3_stmt *pn = NULL, *pe = NULL, *pt = NULL, *ps = NULL;
    int rc = NM_OK;
    unsigned char sums[ACT_SUMS_BYTES];
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO act_neurons VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &pn, NULL) ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO act_sums VALUES(?,?,?)", -1, &ps, NULL) ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO act_examples VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &pe, NULL) ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO act_tokens VALUES(?,?)", -1, &pt, NULL))
        rc = db_fail(s->db, s->temp, e, "prepare");
    char hist[ACT_HIST_BINS * 21 + 1];
    for (int l = r->l0; !rc && l <= r->l1; l++)
        for (int n = 0; !rc && n < r->ffn; n++) {
            const ActNeuron *a = act_neuron(r, l, n);
            size_t i = (size_t)(l - r->l0) * r->ffn + n, at = 0;
            for (int b = 0; b < ACT_HIST_BINS; b++)
                at += (size_t)snprintf(hist + at, sizeof hist - at, "%s%lld", b ? "," : "", (long long)a->hist[b]);
            double cnt = a->count ? (double)a->count : 1;
            sqlite3_bind_int(pn, 1, l);
            sqlite3_bind_int(pn, 2, n);
            sqlite3_bind_int64(pn, 3, a->count);
            sqlite3_bind_double(pn, 4, a->mean);
            sqlite3_bind_double(pn, 5, sqrt(a->m2 / cnt));
            sqlite3_bind_double(pn, 6, a->min);
            sqlite3_bind_double(pn, 7, a->max);
            sqlite3_bind_double(pn, 8, (double)a->positive / cnt);
            sqlite3_bind_double(pn, 9, a->m2);
            sqlite3_bind_int64(pn, 10, a->positive);
            for (int c = 0; c < ACT_SIGN_CASES; c++) sqlite3_bind_int64(pn, 11 + c, a->sign[c]);
            sqlite3_bind_text(pn, 15, hist, -1, SQLITE_TRANSIENT);
            for (int b = 0; b < ACT_BANDS; b++) sqlite3_bind_double(pn, 16 + b, a->q[b]);
            for (int k = 0; k < 5; k++) sqlite3_bind_int(pn, 19 + k, readings ? readings[k][i] : -1);
            if (sqlite3_step(pn) != SQLITE_DONE) rc = db_fail(s->db, s->temp, e, "writing act_neurons");
            sqlite3_reset(pn);
            act_neuron_sums_put(a, sums);
            sqlite3_bind_int(ps, 1, l);
            sqlite3_bind_int(ps, 2, n);
            sqlite3_bind_blob(ps, 3, sums, ACT_SUMS_BYTES, SQLITE_STATIC);
            if (!rc && sqlite3_step(ps) != SQLITE_DONE) rc = db_fail(s->db, s->temp, e, "writing act_sums");
            sqlite3_reset(ps);
            for (int k = 0; !rc && k < a->n_top; k++)
                if (!bind_example(pe, l, n, "top", k + 1, &a->top[k])) rc = db_fail(s->db, s->temp, e, "writing act_examples");
            for (int k = 0; !rc && k < a->n_bottom; k++)
                if (!bind_example(pe, l, n, "bottom", k + 1, &a->bottom[k])) rc = db_fail(s->db, s->temp, e, "writing act_examples");
            for (int b = 0; !rc && b < ACT_BANDS; b++)
                for (int k = 0; !rc && k < a->n_band[b]; k++)
                    if (!bind_example(pe, l, n, list_names[2 + b], k + 1, &a->band[b][k]))
                        rc = db_fail(s->db, s->temp, e, "writing act_examples");
        }
    for (int v = 0; !rc && v < r->m->cfg.vocab_size; v++) {
        if (!r->unigram[v]) continue;
        sqlite3_bind_int(pt, 1, v);
        sqlite3_bind_int64(pt, 2, r->unigram[v]);
        if (sqlite3_step(pt) != SQLITE_DONE) rc = db_fail(s->db, s->temp, e, "writing act_tokens");
        sqlite3_reset(pt);
    }
    sqlite3_finalize(pn);
    sqlite3_finalize(pe);
    sqlite3_finalize(pt);
    sqlite3_finalize(ps);
    return rc;
}

int act_store_checkpoint(ActStore *s, ActRun *r, int next_doc, Error *e) {
    act_run_settle(r);     /* the sums carried, mean and m2 from them */
    act_run_sort_heaps(r); /* worst first: still heaps, and a fixed order on disk */
    int rc = db_exec(s->db, s->temp, "BEGIN;", e);
    if (!rc) rc = act_save_state(s, r, NULL, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "pass", r->pass, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "next_doc", next_doc, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "pass_tokens", r->tokens, e);
    if (!rc) rc = db_exec(s->db, s->temp, "COMMIT;", e);
    else sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
    return rc;
}

static int meta_i64(sqlite3 *db, const char *key, long long *v) {
    char buf[64];
    long x;
    if (!db_get_meta(db, "act_meta", key, buf, sizeof buf) || !parse_long(buf, &x)) return 0;
    *v = x;
    return 1;
}

/* Reads the neuron rows and lists of layers l0..l1 into r's layout (used by
 * resume and by the reader, which keeps one neuron). */
/* The statements of a load, prepared once for every neuron (NULL: not yet). */
typedef struct {
    sqlite3_stmt *row, *examples, *sums;
} Loader;

static int prepared(sqlite3 *db, sqlite3_stmt **st, const char *sql, int layer, int neuron) {
    if (*st) sqlite3_reset(*st);
    else if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_int(*st, 1, layer);
    sqlite3_bind_int(*st, 2, neuron);
    return 1;
}

static void loader_free(Loader *l) {
    sqlite3_finalize(l->row), sqlite3_finalize(l->examples), sqlite3_finalize(l->sums);
    *l = (Loader){ 0 };
}

static int load_neuron(sqlite3 *db, const char *path, Loader *ld, int layer, int neuron, int top_n, int bottom_n, ActNeuron *a,
                       ActReadings *w, Error *e) {
    sqlite3_stmt *st;
    if (!prepared(db, &ld->row, "SELECT count, mean, m2, min, max, positive, sign_pp, sign_pn, sign_np, sign_nn, histogram,"
                  " q50, q90, q99, writes_id, up_id, up_embed_id, gate_id, gate_embed_id FROM act_neurons WHERE layer = ? AND neuron = ?",
                  layer, neuron))
        return db_fail(db, path, e, "act_neurons");
    st = ld->row;
    if (sqlite3_step(st) != SQLITE_ROW)
        return error_set(e, NM_EINPUT, "%s: holds no activations of neuron %d:%d", path, layer, neuron);
    a->count = sqlite3_column_int64(st, 0);
    a->mean = sqlite3_column_double(st, 1);
    a->m2 = sqlite3_column_double(st, 2);
    a->min = (float)sqlite3_column_double(st, 3);
    a->max = (float)sqlite3_column_double(st, 4);
    a->positive = sqlite3_column_int64(st, 5);
    for (int c = 0; c < ACT_SIGN_CASES; c++) a->sign[c] = sqlite3_column_int64(st, 6 + c);
    const char *h = (const char *)sqlite3_column_text(st, 10);
    for (int b = 0; b < ACT_HIST_BINS; b++) {
        char *end;
        a->hist[b] = h ? strtoll(h, &end, 10) : 0;
        h = h && *end == ',' ? end + 1 : NULL;
    }
    for (int b = 0; b < ACT_BANDS; b++) a->q[b] = sqlite3_column_double(st, 11 + b);
    if (w) *w = (ActReadings){ sqlite3_column_int(st, 14), { { sqlite3_column_int(st, 15), sqlite3_column_int(st, 16) },
                                 { sqlite3_column_int(st, 17), sqlite3_column_int(st, 18) } } };
    if (!prepared(db, &ld->examples, "SELECT list, rank, doc, window, pos, token_id, act, gate, up FROM act_examples"
                  " WHERE layer = ? AND neuron = ?", layer, neuron))
        return db_fail(db, path, e, "act_examples");
    st = ld->examples;
    a->n_top = a->n_bottom = 0;
    memset(a->n_band, 0, sizeof a->n_band);
    int rc = NM_OK;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *list = (const char *)sqlite3_column_text(st, 0);
        int rank = sqlite3_column_int(st, 1), which = -1;
        for (int i = 0; list && i < 2 + ACT_BANDS; i++)
            if (strcmp(list, list_names[i]) == 0) which = i;
        ActExample x = { sqlite3_column_int(st, 2), sqlite3_column_int(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
                         (float)sqlite3_column_double(st, 6), (float)sqlite3_column_double(st, 7), (float)sqlite3_column_double(st, 8) };
        int cap = which == 0 ? top_n : which == 1 ? bottom_n : ACT_BAND_SAMPLES;
        if (which < 0 || rank < 1 || rank > cap) {
            rc = error_set(e, NM_EINPUT, "%s: bad row in act_examples (neuron %d:%d)", path, layer, neuron);
            break;
        }
        if (which == 0) {
            a->top[rank - 1] = x;
            if (rank > a->n_top) a->n_top = rank;
        } else if (which == 1) {
            a->bottom[rank - 1] = x;
            if (rank > a->n_bottom) a->n_bottom = rank;
        } else {
            a->band[which - 2][rank - 1] = x;
            if (rank > a->n_band[which - 2]) a->n_band[which - 2] = rank;
        }
    }
    return rc;
}

/* A neuron's exact sums (act_sums), which also give its mean and m2. */
static int load_sums(sqlite3 *db, const char *path, Loader *ld, int layer, int neuron, ActNeuron *a, Error *e) {
    if (!prepared(db, &ld->sums, "SELECT sums FROM act_sums WHERE layer = ? AND neuron = ?", layer, neuron))
        return error_set(e, NM_EINPUT, "%s: holds no exact sums (act_sums): written by an older neuromap; use --force", path);
    sqlite3_stmt *st = ld->sums;
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != ACT_SUMS_BYTES)
        return error_set(e, NM_EINPUT, "%s: no exact sums of neuron %d:%d", path, layer, neuron);
    act_neuron_sums_get(a, sqlite3_column_blob(st, 0));
    return NM_OK;
}

int act_load_state(sqlite3 *db, const char *path, ActRun *r, int *const readings[5], Error *e) {
    int rc = NM_OK;
    Loader ld = { 0 };
    for (int l = r->l0; !rc && l <= r->l1; l++)
        for (int n = 0; !rc && n < r->ffn; n++) {
            ActNeuron *a = act_neuron(r, l, n);
            ActReadings w;
            rc = load_neuron(db, path, &ld, l, n, r->top_n, r->bottom_n, a, &w, e);
            if (!rc) rc = load_sums(db, path, &ld, l, n, a, e);
            for (int b = 0; b < ACT_BANDS; b++)
                for (int k = 0; k < a->n_band[b]; k++)
                    a->band_key[b][k] = act_band_key(r->seed, l, n, a->band[b][k].doc, a->band[b][k].window, a->band[b][k].pos);
            size_t i = (size_t)(l - r->l0) * r->ffn + n;
            if (readings) readings[0][i] = w.writes, readings[1][i] = w.read[0][0], readings[2][i] = w.read[0][1],
                          readings[3][i] = w.read[1][0], readings[4][i] = w.read[1][1];
        }
    loader_free(&ld);
    sqlite3_stmt *st;
    if (!rc && sqlite3_prepare_v2(db, "SELECT token_id, count FROM act_tokens", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            int v = sqlite3_column_int(st, 0);
            if (v >= 0 && v < r->m->cfg.vocab_size) r->unigram[v] = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    return rc;
}

int act_store_load(ActStore *s, ActRun *r, int *next_doc, Error *e) {
    long long pass, next, tokens;
    if (!meta_i64(s->db, "pass", &pass) || !meta_i64(s->db, "next_doc", &next) || !meta_i64(s->db, "pass_tokens", &tokens)) {
        *next_doc = 0; /* killed before its first checkpoint: nothing to load */
        return NM_OK;
    }
    r->pass = (int)pass;
    r->tokens = tokens;
    *next_doc = (int)next;
    return act_load_state(s->db, s->temp, r, NULL, e);
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* The documents the examples come from: their ranges and content ids. */
static int save_docs(ActStore *s, const ActRun *r, const ActCorpus *c, const Tokenizer *t, Error *e) {
    size_t cap = 1024, n = 0;
    int *docs = xmalloc(cap * sizeof *docs);
    for (int l = r->l0; l <= r->l1; l++)
        for (int k = 0; k < r->ffn; k++) {
            const ActNeuron *a = act_neuron(r, l, k);
            int total = a->n_top + a->n_bottom + a->n_band[0] + a->n_band[1] + a->n_band[2];
            if (n + (size_t)total > cap) docs = xrealloc(docs, (cap = 2 * (n + (size_t)total)) * sizeof *docs);
            for (int i = 0; i < a->n_top; i++) docs[n++] = a->top[i].doc;
            for (int i = 0; i < a->n_bottom; i++) docs[n++] = a->bottom[i].doc;
            for (int b = 0; b < ACT_BANDS; b++)
                for (int i = 0; i < a->n_band[b]; i++) docs[n++] = a->band[b][i].doc;
        }
    qsort(docs, n, sizeof *docs, cmp_int);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO act_docs VALUES(?,?,?,?)", -1, &st, NULL) ? db_fail(s->db, s->temp, e, "act_docs") : NM_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        if (i && docs[i] == docs[i - 1]) continue;
        int *ids, m;
        if ((rc = act_corpus_tokens(c, t, docs[i], &ids, &m, e))) break;
        uint8_t *blob = xmalloc((size_t)(m ? m : 1) * 4);
        for (int j = 0; j < m; j++)
            for (int b = 0; b < 4; b++) blob[4 * j + b] = (uint8_t)((uint32_t)ids[j] >> (8 * b));
        sqlite3_bind_int(st, 1, docs[i]);
        sqlite3_bind_int64(st, 2, c->start[docs[i]]);
        sqlite3_bind_int64(st, 3, c->end[docs[i]]);
        sqlite3_bind_blob(st, 4, blob, m * 4, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(s->db, s->temp, e, "writing act_docs");
        sqlite3_reset(st);
        free(blob);
        free(ids);
    }
    sqlite3_finalize(st);
    free(docs);
    return rc;
}

int act_store_finish(ActStore *s, Error *e) {
    int rc = NM_OK;
    if (sqlite3_close(s->db) != SQLITE_OK) rc = db_fail(s->db, s->temp, e, "closing");
    else s->db = NULL;
    if (!rc && fsync(s->lock_fd) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot write %s to disk", s->path, s->temp);
    if (!rc && rename(s->temp, s->path) != 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot rename %s into place", s->path, s->temp);
    if (rc) {
        act_store_close_partial(s);
        return rc;
    }
    act_store_free(s);
    return NM_OK;
}

/* The state, its documents and the closing act_meta, in one transaction;
 * then into place. A part keeps 'complete' 0: it is no atlas to read. */
static int commit(ActStore *s, ActRun *r, const ActCorpus *c, const Tokenizer *t, const int *const readings[5], int docs_run, Error *e) {
    int rc = db_exec(s->db, s->temp, "BEGIN;", e);
    if (!rc) rc = act_save_state(s, r, readings, e);
    if (!rc) rc = save_docs(s, r, c, t, e);
    if (!rc) rc = db_exec(s->db, s->temp, "DELETE FROM act_meta WHERE key IN ('pass', 'next_doc', 'pass_tokens');", e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "tokens", r->tokens, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "docs_run", docs_run, e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "complete", s->info.stage ? "0" : "1", e);
    if (!rc) rc = db_exec(s->db, s->temp, "COMMIT;", e);
    else sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
    if (rc) {
        act_store_close_partial(s);
        return rc;
    }
    return act_store_finish(s, e);
}

int act_store_commit(ActStore *s, ActRun *r, const ActCorpus *c, const Tokenizer *t, const int *const readings[5], Error *e) {
    return commit(s, r, c, t, readings, s->info.n_docs, e);
}

int act_store_commit_part(ActStore *s, ActRun *r, const ActCorpus *c, const Tokenizer *t, const int *const readings[5], Error *e) {
    act_run_settle(r);
    act_run_sort_heaps(r); /* still heaps, for the merge; a fixed order on disk */
    int first, last;
    act_corpus_part(c, s->info.shard, s->info.n_shards, 0, &first, &last);
    return commit(s, r, c, t, readings, last - first, e);
}

void act_store_close_partial(ActStore *s) {
    if (!s) return;
    if (s->db) sqlite3_exec(s->db, "COMMIT;", NULL, NULL, NULL);
    act_store_free(s);
}

/* ----------------------------------------------------------------------------
 * Reading */

struct ActAtlas {
    sqlite3 *db;
    char *path;
    ActInfo info;
    int n_tokens, has_map;
    char **text;
    int *text_len, *type;
    int64_t *unigram, total;
};

void act_atlas_close(ActAtlas *a) {
    if (!a) return;
    sqlite3_close(a->db);
    db_free_tokens(a->text, a->text_len, a->type, a->n_tokens);
    free(a->unigram);
    free(a->path);
    free(a);
}

static int read_act_info(ActAtlas *a, Error *e) {
    ActInfo *in = &a->info;
    char v[4200];
    long long x;
    struct { const char *table, *key; long long lo, hi; int *i32; int64_t *i64; } ints[] = {
        { "meta", "n_layers", 1, 1024, &in->n_layers, NULL }, { "meta", "ffn_dim", 1, 1 << 20, &in->ffn_dim, NULL },
        { "meta", "vocab_size", 1, 1 << 22, &in->vocab_size, NULL }, { "act_meta", "window", 2, 1 << 24, &in->window, NULL },
        { "act_meta", "top_n", 0, 1 << 20, &in->top_n, NULL }, { "act_meta", "bottom_n", 0, 1 << 20, &in->bottom_n, NULL },
        { "act_meta", "corpus_docs", 0, 0x7fffffff, &in->n_docs, NULL }, { "act_meta", "bos_id", -1, 1 << 22, &in->bos_id, NULL },
        { "act_meta", "tokens", 0, INT64_MAX, NULL, &in->tokens }, { "act_meta", "corpus_bytes", 0, INT64_MAX, NULL, &in->corpus_bytes },
        { "act_meta", "max_tokens", -1, INT64_MAX, NULL, &in->max_tokens },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long lv;
        if (!db_get_meta(a->db, ints[i].table, ints[i].key, v, sizeof v) || !parse_long(v, &lv) || lv < ints[i].lo || lv > ints[i].hi)
            return error_set(e, NM_EINPUT, "%s: holds no complete activations (%s '%s' missing or out of range)", a->path,
                             ints[i].table, ints[i].key);
        x = lv;
        if (ints[i].i32) *ints[i].i32 = (int)x;
        else *ints[i].i64 = x;
    }
    if (!db_get_meta(a->db, "act_meta", "layers", v, sizeof v) || sscanf(v, "%d-%d", &in->l0, &in->l1) != 2 || in->l0 < 0 ||
        in->l1 < in->l0 || in->l1 >= in->n_layers)
        return error_set(e, NM_EINPUT, "%s: act_meta 'layers' missing or out of range", a->path);
    db_get_meta(a->db, "act_meta", "corpus_path", in->corpus, sizeof in->corpus);
    if (db_get_meta(a->db, "act_meta", "corpus_hash", v, sizeof v)) in->corpus_hash = strtoull(v, NULL, 16);
    if (db_get_meta(a->db, "act_meta", "seed", v, sizeof v)) in->seed = strtoull(v, NULL, 10);
    if (db_get_meta(a->db, "meta", "model_identity", v, sizeof v)) in->identity = strtoull(v, NULL, 16);
    db_get_meta(a->db, "meta", "model_path", in->model_path, sizeof in->model_path);
    in->docs_run = in->n_docs;
    return NM_OK;
}

int act_atlas_open(ActAtlas **out, const char *path, Error *e) {
    *out = NULL;
    ActAtlas *a = xcalloc(1, sizeof *a);
    a->path = xstrdup(path);
    char v[16];
    int rc = NM_OK;
    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) rc = db_fail(a->db, path, e, "cannot open");
    else if (!db_has_table(a->db, "act_meta") || !db_has_table(a->db, "meta"))
        rc = error_set(e, NM_EINPUT, "%s: holds no activations (run 'neuromap activations MODEL --corpus FILE -o %s')", path, path);
    else if (!db_get_meta(a->db, "act_meta", "complete", v, sizeof v) || strcmp(v, "1") != 0)
        rc = error_set(e, NM_EINPUT, "%s: its activations run is not complete", path);
    if (!rc) rc = read_act_info(a, e);
    a->has_map = !rc && db_has_table(a->db, "entries");
    if (!rc) {
        int n = a->info.vocab_size;
        a->n_tokens = n;
        a->text = xcalloc((size_t)n, sizeof *a->text);
        a->text_len = xcalloc((size_t)n, sizeof *a->text_len);
        a->type = xcalloc((size_t)n, sizeof *a->type);
        a->unigram = xcalloc((size_t)n, sizeof *a->unigram);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(a->db, "SELECT id, text, type FROM tokens", -1, &st, NULL) != SQLITE_OK) rc = db_fail(a->db, path, e, "tokens");
        while (!rc && sqlite3_step(st) == SQLITE_ROW) {
            int id = sqlite3_column_int(st, 0), len = sqlite3_column_bytes(st, 1);
            if (id < 0 || id >= n || a->text[id] || len > 1 << 16) {
                rc = error_set(e, NM_EINPUT, "%s: bad row in the tokens table (id %d)", path, id);
                break;
            }
            a->text[id] = xmalloc((size_t)len + 1);
            if (len) memcpy(a->text[id], sqlite3_column_blob(st, 1), (size_t)len);
            a->text[id][len] = 0;
            a->text_len[id] = len;
            a->type[id] = sqlite3_column_int(st, 2);
        }
        if (!rc) sqlite3_finalize(st);
        else if (st) sqlite3_finalize(st);
        for (int i = 0; !rc && i < n; i++)
            if (!a->text[i]) a->text[i] = xstrdup("");
        if (!rc && sqlite3_prepare_v2(a->db, "SELECT token_id, count FROM act_tokens", -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW) {
                int id = sqlite3_column_int(st, 0);
                if (id < 0 || id >= n) continue;
                a->unigram[id] = sqlite3_column_int64(st, 1);
                a->total += a->unigram[id];
            }
            sqlite3_finalize(st);
        }
    }
    if (rc) {
        act_atlas_close(a);
        return rc;
    }
    *out = a;
    return NM_OK;
}

const ActInfo *act_atlas_info(const ActAtlas *a) { return &a->info; }
int act_atlas_has_map(const ActAtlas *a) { return a->has_map; }

TokenNames act_atlas_token_names(const ActAtlas *a) { return (TokenNames){ a->n_tokens, a->text, a->text_len, a->type }; }

const int64_t *act_atlas_unigram(const ActAtlas *a, int64_t *total) {
    *total = a->total;
    return a->unigram;
}

int act_atlas_neuron(const ActAtlas *a, int layer, int neuron, ActNeuron *s, ActReadings *w, Error *e) {
    if (layer < a->info.l0 || layer > a->info.l1 || neuron < 0 || neuron >= a->info.ffn_dim)
        return error_set(e, NM_EINPUT, "%s: holds activations of layers %d-%d, neurons 0-%d, not %d:%d", a->path, a->info.l0,
                         a->info.l1, a->info.ffn_dim - 1, layer, neuron);
    Loader ld = { 0 };
    int rc = load_neuron(a->db, a->path, &ld, layer, neuron, a->info.top_n, a->info.bottom_n, s, w, e);
    loader_free(&ld);
    return rc;
}

int act_atlas_doc(const ActAtlas *a, int doc, int **ids, int *n, Error *e) {
    sqlite3_stmt *st;
    *ids = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(a->db, "SELECT ids FROM act_docs WHERE doc = ?", -1, &st, NULL)) return db_fail(a->db, a->path, e, "act_docs");
    sqlite3_bind_int(st, 1, doc);
    int rc = NM_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *b = sqlite3_column_blob(st, 0);
        int bytes = sqlite3_column_bytes(st, 0);
        *n = bytes / 4;
        *ids = xmalloc((size_t)(*n ? *n : 1) * sizeof **ids);
        for (int i = 0; i < *n; i++)
            (*ids)[i] = (int)((uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24);
    } else {
        rc = error_set(e, NM_EINPUT, "%s: document %d is not stored", a->path, doc);
    }
    sqlite3_finalize(st);
    return rc;
}
