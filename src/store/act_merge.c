/* act_merge.c — the parts of a split activations run joined into one atlas
 * (activations_store.h, "Split runs"; docs/DISTRIBUTED.md).
 *
 * Every part's whole state is read back (exact sums included) and merged
 * with act_run_merge, which is exact and order-free: the result is the
 * state a single run over every document would have, and it is written the
 * way a single run writes it. What a part cannot carry — the model — is not
 * needed: the parts hold the model's identity and token texts, and a run's
 * state needs only its shape (layers, FFN width, vocabulary, window, BOS). */
#include "store/activations_store.h"
#include "store/db.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * A part's keys */

typedef struct {
    char keys[ACT_RUN_KEYS][64]; /* the run's options, as act_meta holds them */
    int stage, shard, n_shards;
    uint64_t bands_hash;
    char content[64];            /* model_content: the weights' identity */
    int n_layers, ffn_dim, vocab_size, window, top_n, bottom_n, l0, l1, bos_id;
    int64_t max_tokens, tokens;
    uint64_t seed;
} Part;

static int read_part(const char *path, Part *p, Error *e) {
    memset(p, 0, sizeof *p);
    sqlite3 *db = NULL;
    char v[256];
    int rc = NM_OK;
    if (!path_exists(path)) return error_set(e, NM_EINPUT, "%s: no such file", path);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK || !db_has_table(db, "act_meta") ||
        !db_has_table(db, "meta") || !db_get_meta(db, "act_meta", "stage", v, sizeof v)) {
        sqlite3_close(db);
        return error_set(e, NM_EINPUT, "%s: holds no part of a split activations run (made by 'activations --shard I/N')", path);
    }
    for (int s = 1; s < 4; s++)
        if (strcmp(v, act_stage_names[s]) == 0) p->stage = s;
    for (int i = 0; !rc && i < ACT_RUN_KEYS; i++)
        if (!db_get_meta(db, "act_meta", act_run_key_names[i], p->keys[i], sizeof p->keys[i]))
            rc = error_set(e, NM_EINPUT, "%s: act_meta '%s' is missing", path, act_run_key_names[i]);
    long x;
    struct { const char *table, *key; long lo, hi; int *to; } ints[] = {
        { "meta", "n_layers", 1, 1024, &p->n_layers }, { "meta", "ffn_dim", 1, 1 << 20, &p->ffn_dim },
        { "meta", "vocab_size", 1, 1 << 22, &p->vocab_size }, { "act_meta", "window", 2, 1 << 24, &p->window },
        { "act_meta", "top_n", 0, 1 << 16, &p->top_n }, { "act_meta", "bottom_n", 0, 1 << 16, &p->bottom_n },
        { "act_meta", "bos_id", 0, 1 << 22, &p->bos_id },
    };
    for (size_t i = 0; !rc && i < sizeof ints / sizeof ints[0]; i++) {
        if (!db_get_meta(db, ints[i].table, ints[i].key, v, sizeof v) || !parse_long(v, &x) || x < ints[i].lo || x > ints[i].hi)
            rc = error_set(e, NM_EINPUT, "%s: %s '%s' missing or out of range", path, ints[i].table, ints[i].key);
        else *ints[i].to = (int)x;
    }
    if (!rc && (!db_get_meta(db, "act_meta", "layers", v, sizeof v) || sscanf(v, "%d-%d", &p->l0, &p->l1) != 2 || p->l0 < 0 ||
                p->l1 < p->l0 || p->l1 >= p->n_layers))
        rc = error_set(e, NM_EINPUT, "%s: act_meta 'layers' missing or out of range", path);
    if (!rc && (!db_get_meta(db, "act_meta", "tokens", v, sizeof v) || !parse_long(v, &x)))
        rc = error_set(e, NM_EINPUT, "%s: an unfinished part (act_meta 'tokens' missing): finish it with --resume", path);
    p->tokens = x;
    if (!rc && db_get_meta(db, "act_meta", "shard", v, sizeof v) && strcmp(v, "-") != 0 &&
        (sscanf(v, "%d/%d", &p->shard, &p->n_shards) != 2 || p->shard < 0 || p->shard >= p->n_shards))
        rc = error_set(e, NM_EINPUT, "%s: act_meta 'shard' is '%s'", path, v);
    if (!rc && db_get_meta(db, "act_meta", "bands_hash", v, sizeof v)) p->bands_hash = strtoull(v, NULL, 16);
    if (!rc && !db_get_meta(db, "act_meta", "model_content", p->content, sizeof p->content))
        rc = error_set(e, NM_EINPUT, "%s: act_meta 'model_content' is missing", path);
    p->max_tokens = strtoll(p->keys[6], NULL, 10);
    p->seed = strtoull(p->keys[7], NULL, 10);
    sqlite3_close(db);
    return rc;
}

int act_is_part(const char *path) {
    sqlite3 *db = NULL;
    char v[64];
    int is = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK && db_has_table(db, "act_meta") &&
             db_get_meta(db, "act_meta", "stage", v, sizeof v) != NULL;
    sqlite3_close(db);
    return is;
}

/* A run's shape without its weights: what act_run_init and the merge read. */
static void shape_of(Model *m, const Part *p, const char *path) {
    memset(m, 0, sizeof *m);
    m->path = (char *)path;
    m->cfg.n_layers = p->n_layers;
    m->cfg.ffn_dim = p->ffn_dim;
    m->cfg.vocab_size = p->vocab_size;
    m->cfg.max_seq_len = p->window;
    m->vocab.bos_id = p->bos_id;
}

static int init_run(ActRun *r, const Model *m, const Part *p, Error *e) {
    return act_run_init(r, m, p->l0, p->l1, p->top_n, p->bottom_n, p->window, p->max_tokens, p->seed, e);
}

/* A part's state into r; readings (when given) where the part has them. */
static int load_part(const char *path, const Part *p, ActRun *r, int *const readings[5], Error *e) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return error_set(e, NM_EINPUT, "%s: cannot open", path);
    }
    int rc = act_load_state(db, path, r, readings, e);
    sqlite3_close(db);
    r->pass = p->stage == ACT_STAGE_PASS1 ? 1 : 2;
    r->tokens = p->tokens;
    return rc;
}

/* ----------------------------------------------------------------------------
 * A bands atlas read by a pass-2 part */

int act_bands_read(const char *path, uint64_t identity, const ActInfo *info, double *q, uint64_t *hash, Error *e) {
    Part p;
    int rc = read_part(path, &p, e);
    if (rc) return rc;
    if (p.stage != ACT_STAGE_BANDS)
        return error_set(e, NM_EINPUT, "%s: --bands takes the merge of the pass-1 parts (stage 'bands'), not a '%s' part", path,
                         act_stage_names[p.stage]);
    char v[ACT_RUN_KEYS][64], c[64];
    snprintf(c, sizeof c, "%016" PRIx64, info->content);
    if (strcmp(c, p.content) != 0)
        return error_set(e, NM_EINPUT, "%s: bands of another model: MODEL's weights differ (content identity %s, MODEL %s)", path,
                         p.content, c);
    act_run_keys(info, identity, v);
    for (int i = 0; i < ACT_RUN_KEYS; i++)
        if (strcmp(v[i], p.keys[i]) != 0)
            return error_set(e, NM_EINPUT, "%s: bands of another run: %s differs (bands '%s', this run '%s')", path,
                             act_run_key_options[i], p.keys[i], v[i]);
    Model m;
    ActRun r;
    shape_of(&m, &p, path);
    if ((rc = init_run(&r, &m, &p, e)) || (rc = load_part(path, &p, &r, NULL, e))) {
        act_run_free(&r);
        return rc;
    }
    act_run_quantiles(&r, q);
    *hash = act_bands_hash(&r);
    act_run_free(&r);
    if (*hash != p.bands_hash) return error_set(e, NM_EINPUT, "%s: its band edges do not match its bands_hash (damaged?)", path);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Writing the merged atlas */

static int begin_merge(ActStore **out, const char *path, const char *template, int force, Error *e) {
    *out = NULL;
    if (path_exists(path) && !force) return error_set(e, NM_EINPUT, "%s: already exists (use --force to overwrite it)", path);
    ActStore *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    s->temp = db_partial_path(path);
    s->lock_fd = open(s->temp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = NM_OK;
    if (s->lock_fd < 0) rc = error_set(e, NM_ERUNTIME, "%s: cannot create the partial atlas beside it", path);
    else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) rc = error_set(e, NM_EINPUT, "%s: another run is writing this atlas", path);
    if (!rc) rc = act_copy_file(template, s->lock_fd, e);
    if (!rc && sqlite3_open(s->temp, &s->db) != SQLITE_OK) rc = db_fail(s->db, s->temp, e, "cannot open");
    if (!rc)
        rc = db_exec(s->db, s->temp,
                     "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; BEGIN; DELETE FROM act_neurons; DELETE FROM act_examples;"
                     " DELETE FROM act_tokens; DELETE FROM act_docs; DELETE FROM act_sums; DELETE FROM act_meta WHERE key IN"
                     " ('stage', 'shard', 'bands_hash', 'model_content', 'pass', 'next_doc', 'pass_tokens', 'tokens', 'docs_run',"
                     " 'complete'); COMMIT;",
                     e);
    if (rc) {
        if (s->lock_fd >= 0) unlink(s->temp);
        act_store_free(s);
        return rc;
    }
    *out = s;
    return NM_OK;
}

/* The documents r's examples come from, copied from the parts that ran them. */
static int copy_docs(ActStore *s, const ActRun *r, const char *const *parts, int n_parts, Error *e) {
    int rc = db_exec(s->db, s->temp, "CREATE TEMP TABLE want(doc INTEGER PRIMARY KEY); BEGIN;", e);
    sqlite3_stmt *st = NULL;
    if (!rc && sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO want VALUES(?)", -1, &st, NULL)) rc = db_fail(s->db, s->temp, e, "want");
    for (size_t i = 0; !rc && i < act_run_neurons(r); i++) {
        const ActNeuron *a = &r->neuron[i];
        const ActExample *lists[2 + ACT_BANDS] = { a->top, a->bottom, a->band[0], a->band[1], a->band[2] };
        int lens[2 + ACT_BANDS] = { a->n_top, a->n_bottom, a->n_band[0], a->n_band[1], a->n_band[2] };
        for (int l = 0; l < 2 + ACT_BANDS; l++)
            for (int k = 0; k < lens[l]; k++) {
                sqlite3_bind_int(st, 1, lists[l][k].doc);
                sqlite3_step(st);
                sqlite3_reset(st);
            }
    }
    sqlite3_finalize(st);
    if (!rc) rc = db_exec(s->db, s->temp, "COMMIT;", e);
    for (int i = 0; !rc && i < n_parts; i++) {
        if (sqlite3_prepare_v2(s->db, "ATTACH ? AS part", -1, &st, NULL)) rc = db_fail(s->db, s->temp, e, "attach");
        sqlite3_bind_text(st, 1, parts[i], -1, SQLITE_STATIC);
        if (!rc && sqlite3_step(st) != SQLITE_DONE) rc = db_fail(s->db, parts[i], e, "attaching it");
        sqlite3_finalize(st);
        if (!rc) rc = db_exec(s->db, s->temp, "INSERT OR IGNORE INTO main.act_docs SELECT * FROM part.act_docs"
                                               " WHERE doc IN (SELECT doc FROM want); DETACH part;", e);
    }
    return rc;
}

static int commit_merge(ActStore *s, ActRun *r, int stage, uint64_t bands_hash, const char *content, int n_docs,
                        const char *const *parts, int n_parts, const int *const readings[5], Error *e) {
    if (stage == ACT_STAGE_BANDS) act_run_sort_heaps(r); /* still heaps, for the pass-2 merge */
    int rc = db_exec(s->db, s->temp, "BEGIN;", e);
    if (!rc) rc = act_save_state(s, r, readings, e);
    if (!rc) rc = db_exec(s->db, s->temp, "COMMIT;", e);
    if (!rc) rc = copy_docs(s, r, parts, n_parts, e);
    if (!rc) rc = db_exec(s->db, s->temp, "BEGIN;", e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "tokens", r->tokens, e);
    if (!rc) rc = db_put_meta_int(s->db, s->temp, "act_meta", "docs_run", n_docs, e);
    if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "complete", stage == ACT_STAGE_RUN ? "1" : "0", e);
    if (!rc && stage == ACT_STAGE_BANDS) {
        char h[32];
        snprintf(h, sizeof h, "%016" PRIx64, bands_hash);
        rc = db_put_meta(s->db, s->temp, "act_meta", "stage", "bands", e);
        if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "shard", "-", e);
        if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "bands_hash", h, e);
        if (!rc) rc = db_put_meta(s->db, s->temp, "act_meta", "model_content", content, e);
    }
    if (!rc) rc = db_exec(s->db, s->temp, "COMMIT;", e);
    if (rc) {
        sqlite3_close(s->db);
        s->db = NULL;
        unlink(s->temp); /* a merge is rerun, not resumed */
        act_store_free(s);
        return rc;
    }
    return act_store_finish(s, e);
}

/* ----------------------------------------------------------------------------
 * The merge */

int act_merge(const char *out, const char *const *parts, int n_parts, int force, ActMergeReport *rep, Error *e) {
    memset(rep, 0, sizeof *rep);
    Part *p = xcalloc((size_t)n_parts, sizeof *p);
    int rc = NM_OK, bands = -1, n_pass[4] = { 0 }, n = 0;
    for (int i = 0; !rc && i < n_parts; i++) rc = read_part(parts[i], &p[i], e);
    /* one run: the same model, corpus and options */
    for (int i = 1; !rc && i < n_parts; i++)
        for (int k = 0; !rc && k < ACT_RUN_KEYS; k++)
            if (strcmp(p[i].keys[k], p[0].keys[k]) != 0)
                rc = error_set(e, NM_EINPUT, "%s: a part of another run: %s differs (%s has '%s', this part '%s')", parts[i],
                               act_run_key_options[k], parts[0], p[0].keys[k], p[i].keys[k]);
    for (int i = 1; !rc && i < n_parts; i++)
        if (strcmp(p[i].content, p[0].content) != 0)
            rc = error_set(e, NM_EINPUT, "%s: a part of another run: MODEL's weights differ (content identity %s, %s has %s)", parts[i],
                           p[i].content, parts[0], p[0].content);
    /* one round: every pass-1 part, or a bands atlas and every pass-2 part */
    for (int i = 0; !rc && i < n_parts; i++) {
        n_pass[p[i].stage]++;
        if (p[i].stage == ACT_STAGE_BANDS) bands = i;
    }
    int stage = n_pass[ACT_STAGE_PASS1] ? ACT_STAGE_PASS1 : ACT_STAGE_PASS2;
    if (!rc && n_pass[ACT_STAGE_PASS1] && (n_pass[ACT_STAGE_PASS2] || n_pass[ACT_STAGE_BANDS]))
        rc = error_set(e, NM_EINPUT, "%s: pass-1 parts merge among themselves (into a bands atlas), not with pass-2 parts or bands",
                       parts[bands >= 0 ? bands : 0]);
    else if (!rc && stage == ACT_STAGE_PASS2 && n_pass[ACT_STAGE_BANDS] != 1)
        rc = error_set(e, NM_EINPUT, "%s: pass-2 parts merge with the one bands atlas they used (%d given)", parts[0],
                       n_pass[ACT_STAGE_BANDS]);
    else if (!rc && stage == ACT_STAGE_PASS2 && !n_pass[ACT_STAGE_PASS2])
        rc = error_set(e, NM_EINPUT, "%s: a bands atlas alone: give it the pass-2 parts", parts[0]);
    /* every shard of one N once; the pass-2 parts all on the bands given */
    unsigned char *seen = NULL;
    for (int i = 0; !rc && i < n_parts; i++) {
        if (p[i].stage == ACT_STAGE_BANDS) continue;
        if (!n) seen = xcalloc((size_t)(n = p[i].n_shards), 1);
        if (p[i].n_shards != n)
            rc = error_set(e, NM_EINPUT, "%s: shard %d/%d of another split than the other parts' /%d", parts[i], p[i].shard, p[i].n_shards, n);
        else if (seen[p[i].shard]++)
            rc = error_set(e, NM_EINPUT, "%s: shard %d/%d is given twice", parts[i], p[i].shard, n);
        else if (stage == ACT_STAGE_PASS2 && p[i].bands_hash != p[bands].bands_hash)
            rc = error_set(e, NM_EINPUT, "%s: ran pass 2 on other band edges than %s's", parts[i], parts[bands]);
    }
    if (!rc) {
        char missing[256] = "";
        size_t at = 0;
        for (int k = 0; k < n; k++)
            if (!seen[k] && at < sizeof missing - 16) at += (size_t)snprintf(missing + at, sizeof missing - at, "%s%d", at ? "," : "", k);
        if (at) rc = error_set(e, NM_EINPUT, "%s: incomplete: shard%s %s of %d missing", out, strchr(missing, ',') ? "s" : "", missing, n);
    }
    free(seen);
    if (rc) {
        free(p);
        return rc;
    }

    /* the merged state: the bands atlas (or nothing), then every part */
    Model m;
    ActRun run = { 0 }, part = { 0 };
    int first = stage == ACT_STAGE_PASS2 ? bands : 0;
    shape_of(&m, &p[first], parts[first]);
    size_t count = (size_t)(p[0].l1 - p[0].l0 + 1) * (size_t)p[0].ffn_dim;
    int *readings[5], *got[5];
    for (int k = 0; k < 5; k++) {
        readings[k] = xmalloc(count * sizeof(int)), got[k] = xmalloc(count * sizeof(int));
        for (size_t i = 0; i < count; i++) readings[k][i] = -1;
    }
    rc = init_run(&run, &m, &p[first], e);
    if (!rc) rc = init_run(&part, &m, &p[first], e);
    if (!rc && stage == ACT_STAGE_PASS2) rc = load_part(parts[bands], &p[bands], &run, NULL, e);
    for (int i = 0; !rc && i < n_parts; i++) {
        if (p[i].stage == ACT_STAGE_BANDS) continue;
        act_run_reset(&part);
        rc = load_part(parts[i], &p[i], &part, got, e);
        if (!rc) rc = act_run_merge(&run, &part, e);
        for (int k = 0; !rc && k < 5; k++)
            for (size_t j = 0; j < count; j++)
                if (got[k][j] >= 0) readings[k][j] = got[k][j];
    }
    uint64_t hash = 0;
    if (!rc && stage == ACT_STAGE_PASS1) {
        act_run_begin_pass2(&run);
        hash = act_bands_hash(&run);
    } else if (!rc) {
        act_run_finish(&run);
    }
    ActStore *s;
    if (!rc) rc = begin_merge(&s, out, parts[first], force, e);
    if (!rc)
        rc = commit_merge(s, &run, stage == ACT_STAGE_PASS1 ? ACT_STAGE_BANDS : ACT_STAGE_RUN, hash, p[0].content,
                          (int)strtol(p[0].keys[8], NULL, 10), parts, n_parts, (const int *const *)readings, e);
    *rep = (ActMergeReport){ stage, n, n_parts, run.tokens };
    for (int k = 0; k < 5; k++) free(readings[k]), free(got[k]);
    act_run_free(&part);
    act_run_free(&run);
    free(p);
    return rc;
}
