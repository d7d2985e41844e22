/* atlas_merge.c — merging shard atlases into one (atlas_merge.h). Library
 * code: it reads and writes SQLite files through atlas.c, nothing more; the
 * ranks of an MPI run never come here (rank 0 gathers results instead, see
 * src/cli/mpi.c). */
#include "store/atlas_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/shard.h"

/* ----------------------------------------------------------------------------
 * The neuron set a part was cut from */

/* "up,gate,down" (or one name) → matrix mask; 0 when unreadable. */
static unsigned matrices_mask(const char *s) {
    unsigned mask = 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        MatrixKind k;
        if (!matrix_from_name(t, &k)) return 0;
        mask |= 1u << k;
    }
    return mask;
}

typedef struct {
    unsigned mask;
    int l0, l1, n0, n1;
} NeuronSet;

static int neuron_set(const AtlasInfo *in, NeuronSet *s) {
    s->mask = matrices_mask(in->matrices);
    return s->mask && sscanf(in->layers, "%d-%d", &s->l0, &s->l1) == 2 && sscanf(in->neurons, "%d-%d", &s->n0, &s->n1) == 2 &&
           s->l0 <= s->l1 && s->n0 <= s->n1;
}

/* ----------------------------------------------------------------------------
 * Checking the parts: one run's shards, each complete, none twice */

/* NM_EINPUT naming the first option in which part b differs from part a. */
static int same_run(const char *pa, const AtlasInfo *a, const char *pb, const AtlasInfo *b, Error *e) {
    if (a->content_identity != b->content_identity || a->identity != b->identity || !a->content_identity)
        return error_set(e, NM_EINPUT, "%s: mapped from a different model than %s (%s vs %s: their content identities "
                         "%016llx and %016llx differ)", pb, pa, b->model_path, a->model_path,
                         (unsigned long long)b->content_identity, (unsigned long long)a->content_identity);
    /* Each option as the two parts have it, as text, to name what differs. */
    enum { N_OPT = 11 };
    char va[N_OPT][48], vb[N_OPT][48];
    const AtlasInfo *in[2] = { a, b };
    for (int p = 0; p < 2; p++) {
        char (*v)[48] = p ? vb : va;
        const AtlasInfo *x = in[p];
        snprintf(v[0], 48, "%d", x->n_shards);
        snprintf(v[1], 48, "%s", lens_norm_name(x->norm));
        snprintf(v[2], 48, "%d", x->top_k);
        snprintf(v[3], 48, "%d", x->bottom_k);
        snprintf(v[4], 48, "%s", x->matrices);
        snprintf(v[5], 48, "%s", x->layers);
        snprintf(v[6], 48, "%s", x->neurons);
        snprintf(v[7], 48, "%s", x->kernel);
        snprintf(v[8], 48, "%s %.17g", x->prefilter ? "on" : "off", x->prob_tol);
        snprintf(v[9], 48, "%d", x->threads);
        snprintf(v[10], 48, "%s", x->version);
    }
    static const char *const option[N_OPT] = { "--shard N", "--norm", "--top-k", "--bottom-k", "--matrix", "--layers",
                                          "--neurons", "--kernel", "--prefilter/--prob-tol", "--threads",
                                          "the neuromap version" };
    for (int i = 0; i < N_OPT; i++)
        if (strcmp(va[i], vb[i]) != 0)
            return error_set(e, NM_EINPUT, "%s: mapped with other options than %s: %s differs (this part '%s', that one '%s')", pb, pa,
                             option[i], vb[i], va[i]);
    return NM_OK;
}

/* A part holds exactly its shard's neurons: every one of its ranges full,
 * and nothing else (count equal). */
static int part_complete(const char *path, Atlas *a, const NeuronSet *s, NeuronRange *r, Error *e) {
    const AtlasInfo *in = atlas_info(a);
    int n = shard_ranges(s->mask, s->l0, s->l1, s->n0, s->n1, in->shard, in->n_shards, r);
    int64_t want = shard_count(r, n), stored = 0, held = atlas_count_neurons(a);
    for (int j = 0; j < n; j++) stored += atlas_stored(a, r[j].matrix, r[j].layer, r[j].first, r[j].count);
    if (stored != want)
        return error_set(e, NM_EINPUT, "%s: shard %d/%d is incomplete: it holds %lld of its %lld neurons (finish it with "
                         "map --resume)", path, in->shard, in->n_shards, (long long)stored, (long long)want);
    if (held != want)
        return error_set(e, NM_EINPUT, "%s: holds %lld neurons outside shard %d/%d: it overlaps other shards", path,
                         (long long)(held - want), in->shard, in->n_shards);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Writing */

typedef struct {
    Atlas *out;
    int top_k, bottom_k;
    int64_t n;
    Error *e;
} Copy;

static int copy_neuron(void *ctx, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top, int n_bottom) {
    Copy *c = ctx;
    /* The stored lists are complete (n_top == top_k) except a non-finite
     * neuron's, which atlas_add writes as the flag alone, as map did. */
    int rc = atlas_add(c->out, k, layer, neuron, r, c->top_k, c->bottom_k, c->e);
    if (!rc && ++c->n % 4096 == 0) rc = atlas_checkpoint(c->out, c->e);
    return rc;
}

int atlas_merge(const char *out, const char *const *parts, int n_parts, const AtlasMergeOptions *o, AtlasMergeReport *rep,
                Error *e) {
    memset(rep, 0, sizeof *rep);
    if (n_parts < 1) return error_set(e, NM_EINPUT, "no parts to merge");
    Atlas **a = xcalloc((size_t)n_parts, sizeof *a);
    Atlas **by_shard = NULL;
    NeuronRange *ranges = NULL;
    Atlas *w = NULL;
    NeuronSet set;
    int rc = NM_OK, n_shards = 0, first = -1;
    for (int p = 0; p < n_parts && !rc; p++) {
        if (!atlas_is_atlas(parts[p])) {
            rc = error_set(e, NM_EINPUT, "%s: not an atlas (an SQLite file written by 'neuromap map --shard')", parts[p]);
            break;
        }
        if ((rc = atlas_open(&a[p], parts[p], e))) break;
        const AtlasInfo *in = atlas_info(a[p]);
        if (!in->n_shards) {
            rc = error_set(e, NM_EINPUT, "%s: not a shard (it was mapped without --shard I/N)", parts[p]);
        } else if (p == 0) {
            first = 0, n_shards = in->n_shards;
            if (!neuron_set(in, &set)) rc = error_set(e, NM_EINPUT, "%s: unreadable neuron set in its meta", parts[p]);
            by_shard = xcalloc((size_t)n_shards, sizeof *by_shard);
            ranges = xcalloc((size_t)(3 * (set.l1 - set.l0 + 1)), sizeof *ranges);
        } else {
            rc = same_run(parts[first], atlas_info(a[first]), parts[p], in, e);
        }
        if (!rc && in->shard < n_shards && by_shard[in->shard]) {
            int q = 0;
            while (a[q] != by_shard[in->shard]) q++;
            rc = error_set(e, NM_EINPUT, "%s: overlaps %s: both hold shard %d/%d", parts[p], parts[q], in->shard, n_shards);
        }
        if (!rc) rc = part_complete(parts[p], a[p], &set, ranges, e);
        if (!rc) by_shard[in->shard] = a[p];
    }
    if (!rc) { /* which shards are missing */
        rep->n_shards = n_shards;
        for (int s = 0; s < n_shards; s++) {
            if (by_shard[s]) continue;
            size_t len = strlen(rep->missing);
            if (len + 16 < sizeof rep->missing) snprintf(rep->missing + len, sizeof rep->missing - len, "%s%d", len ? "," : "", s);
            else if (!strstr(rep->missing, "...")) snprintf(rep->missing + len, sizeof rep->missing - len, ",...");
            rep->n_missing++;
        }
        if (rep->n_missing && !o->allow_incomplete)
            rc = error_set(e, NM_EINPUT, "%s: incomplete: shard%s %s of %d missing (map them with --shard I/%d, or merge "
                           "with --allow-incomplete)", out, rep->n_missing > 1 ? "s" : "", rep->missing, n_shards, n_shards);
    }
    if (!rc) {
        /* atlas_begin writes the header from a model; here the model is
         * what the parts recorded: its vocabulary and norm_eps. */
        const Atlas *p0 = a[first];
        AtlasInfo info = *atlas_info(p0);
        info.shard = info.n_shards = 0; /* the whole set (missing_shards says otherwise) */
        char eps[64];
        TokenNames tn = atlas_token_names(p0);
        Model m = { 0 };
        m.cfg.norm_eps = atlas_meta(p0, "norm_eps", eps, sizeof eps) ? strtof(eps, NULL) : 0;
        m.vocab.n_tokens = tn.n, m.vocab.text = (char **)tn.text, m.vocab.text_len = (int *)tn.len, m.vocab.type = (int *)tn.type;
        rc = atlas_begin(&w, out, o->force, 0, &m, &info, e);
        if (!rc && rep->n_missing) {
            char what[320];
            snprintf(what, sizeof what, "%s of %d", rep->missing, n_shards);
            rc = atlas_set_meta(w, "missing_shards", what, e);
        }
        Copy c = { .out = w, .top_k = info.top_k, .bottom_k = info.bottom_k, .e = e };
        for (int s = 0; s < n_shards && !rc; s++)
            if (by_shard[s]) rc = atlas_each_neuron(by_shard[s], copy_neuron, &c, e);
        rep->neurons = c.n;
        if (!rc) rc = atlas_commit(w, e);
        else if (w) atlas_abort(w);
    }
    for (int p = 0; p < n_parts; p++) atlas_close(a[p]);
    free(a);
    free(by_shard);
    free(ranges);
    return rc;
}
