/* diff.c — two neuron maps compared neuron by neuron (see diff.h).
 *
 * The work is one layer at a time: both sides' top-K lists for that layer
 * (decoded by the lens from a model, or read from an atlas), then one pass
 * over the neurons that tallies the three measures and keeps the few
 * neurons worth listing. Memory is one layer of lists per side, whatever
 * the model's size.
 */
#include "report/diff.h"
#include "model/identity.h"
#include "report/neuron_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/registry.h"

/* ----------------------------------------------------------------------------
 * Sources */

int diff_source_open(DiffSource *s, const char *path, const char *tokenizer, Error *e) {
    memset(s, 0, sizeof *s);
    if (atlas_is_atlas(path)) {
        int rc = atlas_open(&s->atlas, path, e);
        if (rc) return rc;
        const AtlasInfo *in = atlas_info(s->atlas);
        s->n_layers = in->n_layers, s->dim = in->dim, s->ffn_dim = in->ffn_dim, s->vocab_size = in->vocab_size;
        s->names = atlas_token_names(s->atlas);
        s->identity = in->identity, s->content_identity = in->content_identity;
    } else {
        ModelOpenOptions mo = { .tokenizer_path = tokenizer, .need_weights = 1 };
        int rc = model_open(&s->m, path, &mo, e);
        if (rc) return rc;
        const Config *c = &s->m.cfg;
        s->n_layers = c->n_layers, s->dim = c->dim, s->ffn_dim = c->ffn_dim, s->vocab_size = c->vocab_size;
        s->names = lens_vocab_names(&s->m.vocab);
        s->identity = s->m.identity, s->content_identity = model_content_identity(&s->m);
    }
    s->path = path;
    return NM_OK;
}

void diff_source_close(DiffSource *s) {
    if (!s->path) return;
    if (s->atlas) {
        atlas_close(s->atlas);
    } else {
        lens_close(&s->L); /* a no-op when never opened */
        model_close(&s->m);
    }
    memset(s, 0, sizeof *s);
}

int diff_check_compatible(const DiffSource *a, const DiffSource *b, Error *e) {
    const struct { const char *what; int x, y; } dims[] = {
        { "vocabulary size", a->vocab_size, b->vocab_size }, { "number of layers", a->n_layers, b->n_layers },
        { "hidden size", a->dim, b->dim },                   { "neurons per layer", a->ffn_dim, b->ffn_dim },
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].x != dims[i].y)
            return error_set(e, NM_EINPUT, "%s and %s differ in %s (%d against %d): they cannot be compared neuron by neuron",
                             a->path, b->path, dims[i].what, dims[i].x, dims[i].y);
    /* Token ids are only comparable when every id stands for the same bytes. */
    for (int id = 0; id < a->names.n; id++) {
        if (a->names.len[id] == b->names.len[id] && memcmp(a->names.text[id], b->names.text[id], (size_t)a->names.len[id]) == 0)
            continue;
        char *ta = token_text(&a->names, id), *tb = token_text(&b->names, id);
        int rc = error_set(e, NM_EINPUT, "%s and %s have different vocabularies: token %d is \"%.100s\" in the first, \"%.100s\" in the second",
                           a->path, b->path, id, ta, tb);
        free(ta);
        free(tb);
        return rc;
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * What an atlas holds */

/* Its "up,gate,down"-style matrices as a mask. */
static unsigned atlas_matrices(const AtlasInfo *in) {
    unsigned mask = 0, bit;
    char buf[sizeof in->matrices];
    snprintf(buf, sizeof buf, "%s", in->matrices);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (lens_matrix_mask(tok, &bit)) mask |= bit;
    return mask;
}

/* Refuses an atlas that lacks part of what the comparison reads from its side. */
static int check_atlas_holds(const DiffSource *s, int side, const DiffOptions *o, Error *e) {
    const AtlasInfo *in = atlas_info(s->atlas);
    unsigned mask = atlas_matrices(in);
    for (int p = 0; p < o->n_pairs; p++) {
        MatrixKind k = side == 0 ? o->pair[p].a : o->pair[p].b;
        if (!(mask & (1u << k)))
            return error_set(e, NM_EINPUT, "%s holds no %s neurons (it maps %s); map them with --matrix %s or all", s->path,
                             matrix_name(k), in->matrices, matrix_name(k));
    }
    long l0, l1, n0, n1;
    Error ignored;
    if (parse_range(in->layers, 0, s->n_layers - 1, &l0, &l1, &ignored) || l0 > o->layer0 || l1 < o->layer1)
        return error_set(e, NM_EINPUT, "%s maps layers %s only; the comparison needs layers %ld-%ld (or pass --layers)", s->path,
                         in->layers, o->layer0, o->layer1);
    if (parse_range(in->neurons, 0, s->ffn_dim - 1, &n0, &n1, &ignored) || n0 != 0 || n1 != s->ffn_dim - 1)
        return error_set(e, NM_EINPUT, "%s maps neurons %s only; diff compares every neuron of a layer (0-%d): map without --neurons",
                         s->path, in->neurons, s->ffn_dim - 1);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Preparing: options resolved against both sides */

int diff_prepare(DiffSource *a, DiffSource *b, DiffOptions *o, Error *e) {
    int rc;
    if (a != b && (rc = diff_check_compatible(a, b, e))) return rc;
    if (o->layer1 < 0) o->layer0 = 0, o->layer1 = a->n_layers - 1;
    if (o->layer0 < 0 || o->layer1 >= a->n_layers || o->layer0 > o->layer1)
        return error_set(e, NM_EINPUT, "--layers %ld-%ld is outside 0-%d", o->layer0, o->layer1, a->n_layers - 1);

    DiffSource *side[2] = { a, b };
    int n_sides = a == b ? 1 : 2;
    /* The norm: asked for, or the one the atlases were mapped with. */
    const DiffSource *norm_from = NULL;
    if (!o->norm_given) {
        o->norm = NORM_FULL;
        for (int i = n_sides - 1; i >= 0; i--)
            if (side[i]->atlas) o->norm = atlas_info(side[i]->atlas)->norm, norm_from = side[i];
    }
    int k_max = a->vocab_size;
    const char *k_from = NULL;
    for (int i = 0; i < n_sides; i++) {
        if (!side[i]->atlas) continue;
        const AtlasInfo *in = atlas_info(side[i]->atlas);
        if (in->norm != o->norm) {
            if (o->norm_given)
                return error_set(e, NM_EINPUT, "%s was mapped with --norm %s; diff was asked for --norm %s", side[i]->path,
                                 lens_norm_name(in->norm), lens_norm_name(o->norm));
            return error_set(e, NM_EINPUT, "%s was mapped with --norm %s but %s with --norm %s: their lists are not comparable",
                             side[i]->path, lens_norm_name(in->norm), norm_from->path, lens_norm_name(o->norm));
        }
        if ((rc = check_atlas_holds(side[i], i, o, e))) return rc;
        if (in->top_k < k_max) k_max = in->top_k, k_from = side[i]->path;
    }
    if (k_max > DIFF_MAX_TOP_K) k_max = DIFF_MAX_TOP_K;
    if (o->top_k == 0) o->top_k = k_max < 10 ? k_max : 10;
    if (o->top_k < 1) return error_set(e, NM_EINPUT, "%s holds no top tokens (mapped with --top-k 0)", k_from);
    if (o->top_k > k_max) {
        if (k_from)
            return error_set(e, NM_EINPUT, "%s holds the top %d tokens of each neuron; --top-k %d needs a map with a larger --top-k",
                             k_from, k_max, o->top_k);
        return error_set(e, NM_EINPUT, "--top-k must be at most %d", k_max);
    }

    /* Many neurons: convert a non-F32 head once, as map does. */
    int64_t total = (int64_t)o->n_pairs * (o->layer1 - o->layer0 + 1) * a->ffn_dim;
    for (int i = 0; i < n_sides; i++)
        if (!side[i]->atlas && (rc = lens_open(&side[i]->L, &side[i]->m, o->norm, o->threads, total >= 256, e))) return rc;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * One layer of top-K lists */

static int source_layer(const DiffSource *s, MatrixKind k, int layer, int top_k, LensBatch *b, Error *e) {
    if (s->atlas) return atlas_layer_top(s->atlas, k, layer, s->ffn_dim, top_k, b->r, e);
    /* Chunks keep the vectors small (1024 × 4096 floats for 8B) while
     * giving every thread of the lens a block of neurons. */
    enum { CHUNK = 1024 };
    int chunk = s->ffn_dim < CHUNK ? s->ffn_dim : CHUNK;
    float *vecs = xmalloc((size_t)chunk * s->dim * sizeof *vecs);
    for (int first = 0; first < s->ffn_dim; first += chunk) {
        int count = s->ffn_dim - first < chunk ? s->ffn_dim - first : chunk;
        lens_neuron_vectors(&s->L, k, layer, first, count, vecs);
        lens_decode(&s->L, vecs, count, top_k, 0, b->r + first);
    }
    free(vecs);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The measures */

typedef struct {
    int32_t id;
    int pos; /* 0-based rank in its list */
} Ranked;

static int by_id(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

static void sorted_by_id(const LensToken *t, int k, Ranked *out) {
    for (int i = 0; i < k; i++) out[i] = (Ranked){ t[i].id, i };
    qsort(out, (size_t)k, sizeof *out, by_id);
}

/* Both measures from one merge of the two lists sorted by token id. */
static void compare_lists(const LensToken *a, const LensToken *b, int k, double *jaccard, double *spearman) {
    Ranked sa[DIFF_MAX_TOP_K], sb[DIFF_MAX_TOP_K];
    sorted_by_id(a, k, sa);
    sorted_by_id(b, k, sb);
    int common = 0;
    for (int i = 0, j = 0; i < k && j < k;) {
        if (sa[i].id == sb[j].id) common++, i++, j++;
        else if (sa[i].id < sb[j].id) i++;
        else j++;
    }
    int n_union = 2 * k - common;
    *jaccard = (double)common / n_union;
    /* Fractional ranks over the union: 1..k for a list's own tokens, the
     * mid-rank of places k+1..n_union for the ones it lacks. Both rankings
     * then have the same mean, (n_union + 1) / 2. */
    double miss = (k + 1 + n_union) / 2.0, mean = (n_union + 1) / 2.0;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0, j = 0; i < k || j < k;) {
        double ra, rb;
        if (i < k && j < k && sa[i].id == sb[j].id) ra = sa[i++].pos + 1, rb = sb[j++].pos + 1;
        else if (j == k || (i < k && sa[i].id < sb[j].id)) ra = sa[i++].pos + 1, rb = miss;
        else ra = miss, rb = sb[j++].pos + 1;
        sab += (ra - mean) * (rb - mean);
        saa += (ra - mean) * (ra - mean);
        sbb += (rb - mean) * (rb - mean);
    }
    /* One token in all (k = 1, same top-1): identical rankings. */
    *spearman = saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 1.0;
}

double diff_jaccard(const LensToken *a, const LensToken *b, int k) {
    double j, s;
    compare_lists(a, b, k, &j, &s);
    return j;
}

double diff_spearman(const LensToken *a, const LensToken *b, int k) {
    double j, s;
    compare_lists(a, b, k, &j, &s);
    return s;
}

const char *diff_pair_name(DiffPair p, char *buf, size_t cap) {
    if (p.a == p.b) snprintf(buf, cap, "%s", matrix_name(p.a));
    else snprintf(buf, cap, "%s/%s", matrix_name(p.a), matrix_name(p.b));
    return buf;
}

/* ----------------------------------------------------------------------------
 * The comparison */

/* Negative when x is listed before y. Checkpoints: by (1 − Jaccard) × the
 * smaller top-1 probability, so neurons that were sure of one thing and are
 * now sure of another come first, and near-uniform neurons whose top token
 * drifts among look-alikes come last. Read-vs-write: the most confident
 * agreement first (the weaker side's top-1 probability), then the larger
 * overlap. Equal keys keep the order neurons arrive in. */
static int listing_order(int read_write, const DiffNeuron *x, const DiffNeuron *y) {
    double px = x->a.prob < x->b.prob ? x->a.prob : x->b.prob, py = y->a.prob < y->b.prob ? y->a.prob : y->b.prob;
    if (!read_write) px *= 1 - x->jaccard, py *= 1 - y->jaccard;
    if (px != py) return px > py ? -1 : 1;
    if (read_write && x->jaccard != y->jaccard) return x->jaccard > y->jaccard ? -1 : 1;
    return 0;
}

static void list_keep(DiffReport *r, int limit, const DiffNeuron *d) {
    int read_write = r->opt.read_write;
    if (limit <= 0 || (r->n_listed == limit && listing_order(read_write, d, &r->listed[limit - 1]) >= 0)) return;
    int i = r->n_listed < limit ? r->n_listed++ : limit - 1;
    while (i > 0 && listing_order(read_write, d, &r->listed[i - 1]) < 0) {
        r->listed[i] = r->listed[i - 1];
        i--;
    }
    r->listed[i] = *d;
}

static void tally_add(DiffTally *t, const DiffNeuron *d) {
    t->n++;
    t->same += d->a.id == d->b.id;
    t->jaccard += d->jaccard;
    t->spearman += d->spearman;
}

int diff_run(DiffSource *a, DiffSource *b, const DiffOptions *o, DiffReport *r,
             void (*each)(void *ctx, const DiffNeuron *d), void *ctx, Error *e) {
    memset(r, 0, sizeof *r);
    r->opt = *o;
    r->n_layers = (int)(o->layer1 - o->layer0 + 1);
    r->per_layer = xcalloc((size_t)o->n_pairs * r->n_layers, sizeof *r->per_layer);
    r->listed = xcalloc((size_t)o->limit + 1, sizeof *r->listed);
    LensBatch ba, bb;
    lens_batch_init(&ba, a->ffn_dim, o->top_k, 0);
    lens_batch_init(&bb, b->ffn_dim, o->top_k, 0);
    int rc = NM_OK;
    for (int p = 0; p < o->n_pairs && !rc; p++) {
        DiffPair pair = o->pair[p];
        for (int layer = (int)o->layer0; layer <= o->layer1 && !rc; layer++) {
            if ((rc = source_layer(a, pair.a, layer, o->top_k, &ba, e)) || (rc = source_layer(b, pair.b, layer, o->top_k, &bb, e)))
                break;
            DiffTally *t = &r->per_layer[(size_t)p * r->n_layers + (layer - o->layer0)];
            for (int n = 0; n < a->ffn_dim; n++) {
                if (ba.r[n].nonfinite || bb.r[n].nonfinite) { /* no lists to compare: apart, never agreement */
                    t->nonfinite++, r->per_pair[p].nonfinite++, r->total.nonfinite++;
                    continue;
                }
                DiffNeuron d = { .pair = pair, .layer = layer, .neuron = n, .a = ba.r[n].top[0], .b = bb.r[n].top[0] };
                compare_lists(ba.r[n].top, bb.r[n].top, o->top_k, &d.jaccard, &d.spearman);
                tally_add(t, &d);
                tally_add(&r->per_pair[p], &d);
                tally_add(&r->total, &d);
                if (each) each(ctx, &d);
                if (o->read_write == (d.a.id == d.b.id)) list_keep(r, o->limit, &d);
            }
        }
    }
    lens_batch_free(&ba);
    lens_batch_free(&bb);
    if (rc) diff_report_free(r);
    return rc;
}

void diff_report_free(DiffReport *r) {
    free(r->per_layer);
    free(r->listed);
    memset(r, 0, sizeof *r);
}
