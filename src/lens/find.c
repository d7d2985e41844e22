/* find.c — see find.h. Ranking is exact and cheap: under the lens a
 * neuron's logit for one token is the dot product of its normed vector with
 * that token's row of the head, so each layer is one matrix-vector product
 * (ffn × dim) instead of a full decode. Only the kept few are then decoded
 * over the whole vocabulary, for their rank and top token.
 *
 * Both steps use the lens's own kernel (lens_token_logits is the same FMA
 * chain as lens_logits), so the neurons selected by the ranking are the ones
 * the full decode ranks first: a near-tie cannot fall out of the list
 * because two different products rounded it differently. */
#include "lens/find.h"

#include <math.h>
#include <stdlib.h>

MatrixKind lens_partner(MatrixKind k) { return k == MATRIX_DOWN ? MATRIX_UP : MATRIX_DOWN; }

int lens_token_in_row(const float *row, int vocab, int token, float *logit, int *rank, double *prob) {
    float x = row[token], max = row[0];
    int r = 1;
    for (int v = 0; v < vocab; v++) {
        if (!isfinite(row[v])) return 0;
        if (row[v] > x || (row[v] == x && v < token)) r++;
        if (row[v] > max) max = row[v];
    }
    double sum = 0; /* Σ e^(logit − max), in double: 128k terms lose nothing */
    for (int v = 0; v < vocab; v++) sum += exp((double)row[v] - max);
    *logit = x, *rank = r, *prob = exp((double)x - max) / sum;
    return 1;
}

typedef struct {
    const float *logits;
    int vocab, token;
    LensTokenValue *out;
} RowTask;

static void row_task(void *arg, int64_t i, int worker) {
    RowTask *t = arg;
    LensTokenValue *v = &t->out[i];
    v->finite = lens_token_in_row(t->logits + (size_t)i * t->vocab, t->vocab, t->token, &v->logit, &v->rank, &v->prob);
}

void lens_token_values(const Lens *L, const float *logits, int count, int token, LensTokenValue *out) {
    RowTask t = { logits, L->vocab, token, out };
    pool_run(L->pool, count, row_task, &t);
}

/* The order of hits: the key falling (the logit, the probability, or the
 * rank negated), then the logit falling, then matrix, layer, neuron. */
static double key_of(const LensHit *h, LensFindBy by) {
    return by == LENS_BY_PROB ? h->prob : by == LENS_BY_RANK ? -(double)h->rank : (double)h->logit;
}

static int hit_cmp(const LensHit *a, const LensHit *b, LensFindBy by) {
    double ka = key_of(a, by), kb = key_of(b, by);
    if (ka != kb) return ka < kb ? 1 : -1;
    if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
    if (a->matrix != b->matrix) return (int)a->matrix - (int)b->matrix;
    if (a->layer != b->layer) return a->layer - b->layer;
    return a->neuron - b->neuron;
}

static int hit_qsort_cmp(const void *a, const void *b, void *by) { return hit_cmp(a, b, *(LensFindBy *)by); }

/* The highest logit of a row, the lowest id among equals; -1 when the row
 * holds a NaN or an infinity (another token's logit can be non-finite even
 * when the searched one is not: a non-finite row of the head). */
static int finite_argmax(const float *row, int n) {
    int best = 0;
    for (int v = 0; v < n; v++) {
        if (!isfinite(row[v])) return -1;
        if (row[v] > row[best]) best = v;
    }
    return best;
}

/* Keeps h among the best `limit` in hits (n so far, sorted). */
static void keep_hit(LensHit *hits, int *n, int limit, const LensHit *h, LensFindBy by) {
    if (*n == limit && hit_cmp(h, &hits[*n - 1], by) >= 0) return;
    int j = *n < limit ? (*n)++ : *n - 1; /* insertion into the sorted best-so-far */
    while (j > 0 && hit_cmp(h, &hits[j - 1], by) < 0) {
        hits[j] = hits[j - 1];
        j--;
    }
    hits[j] = *h;
}

/* Every neuron's value for the token; the best `limit` into hits (sorted).
 * By logit, one dot product per neuron; by probability or rank, every
 * neuron's full vocabulary, in blocks. A neuron whose vector or logits are
 * not finite is skipped and counted. */
static int rank_all_neurons(const Lens *L, unsigned mask, int token, int limit, LensFindBy by, LensHit *hits,
                            int64_t *nonfinite, LensProgressFn progress, void *ctx) {
    const Config *c = &L->m->cfg;
    enum { BLOCK_BYTES = 64 << 20 }; /* of full-vocabulary logits at a time */
    int block = by == LENS_BY_LOGIT ? 1 : (int)(BLOCK_BYTES / 4 / L->vocab);
    if (block < 1) block = 1;
    if (block > c->ffn_dim) block = c->ffn_dim;
    float *vecs = xmalloc((size_t)c->ffn_dim * c->dim * sizeof *vecs);
    float *logit = xmalloc((size_t)c->ffn_dim * sizeof *logit);
    float *rows = by == LENS_BY_LOGIT ? NULL : xmalloc((size_t)block * L->vocab * sizeof *rows);
    LensTokenValue *val = by == LENS_BY_LOGIT ? NULL : xmalloc((size_t)block * sizeof *val);
    int64_t total = (int64_t)__builtin_popcount(mask) * c->n_layers * c->ffn_dim, done = 0;
    int n = 0;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
        if (!(mask & (1u << k))) continue;
        for (int layer = 0; layer < c->n_layers; layer++) {
            lens_neuron_vectors(L, (MatrixKind)k, layer, 0, c->ffn_dim, vecs);
            if (by != LENS_BY_LOGIT) {
                for (int n0 = 0; n0 < c->ffn_dim; n0 += block) {
                    int count = c->ffn_dim - n0 < block ? c->ffn_dim - n0 : block;
                    lens_logits(L, vecs + (size_t)n0 * c->dim, count, rows);
                    lens_token_values(L, rows, count, token, val);
                    for (int i = 0; i < count; i++) {
                        if (!val[i].finite) {
                            ++*nonfinite;
                            continue;
                        }
                        LensHit h = { .matrix = (MatrixKind)k, .layer = layer, .neuron = n0 + i, .logit = val[i].logit,
                                      .rank = val[i].rank, .prob = val[i].prob };
                        keep_hit(hits, &n, limit, &h, by);
                    }
                }
                if (progress) progress(ctx, done += c->ffn_dim, total);
                continue;
            }
            lens_token_logits(L, vecs, c->ffn_dim, token, logit);
            for (int i = 0; i < c->ffn_dim; i++) {
                const float *v = vecs + (size_t)i * c->dim;
                float acc = logit[i] * 0.0f; /* 0 unless the logit or a weight is NaN or ±inf */
                for (int d = 0; d < c->dim; d++) acc += v[d] * 0.0f;
                if (acc != 0) {
                    ++*nonfinite;
                    continue;
                }
                LensHit h = { .matrix = (MatrixKind)k, .layer = layer, .neuron = i, .logit = logit[i] };
                keep_hit(hits, &n, limit, &h, by);
            }
            if (progress) progress(ctx, done += c->ffn_dim, total);
        }
    }
    free(vecs);
    free(logit);
    free(rows);
    free(val);
    return n;
}

/* Decodes each hit over the full vocabulary: the token's logit (the same
 * bits as the ranking's), rank and probability (lens_token_in_row), the top
 * token. Hits whose full row is not finite are dropped and counted.
 * Returns how many remain. */
static int describe_hits(const Lens *L, int token, LensHit *hits, int n, int agreement, LensFindBy by, int64_t *nonfinite) {
    float *vecs = xmalloc(((size_t)n * L->dim + 1) * sizeof *vecs);
    float *logits = xmalloc(((size_t)n * L->vocab + 1) * sizeof *logits);
    for (int i = 0; i < n; i++)
        lens_neuron_vectors(L, hits[i].matrix, hits[i].layer, hits[i].neuron, 1, vecs + (size_t)i * L->dim);
    lens_logits(L, vecs, n, logits);
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * L->vocab;
        hits[i].top_id = finite_argmax(row, L->vocab);
        if (hits[i].top_id >= 0) lens_token_in_row(row, L->vocab, token, &hits[i].logit, &hits[i].rank, &hits[i].prob);
        hits[i].partner_top = -1;
    }
    if (agreement) {
        for (int i = 0; i < n; i++)
            lens_neuron_vectors(L, lens_partner(hits[i].matrix), hits[i].layer, hits[i].neuron, 1,
                                vecs + (size_t)i * L->dim);
        lens_logits(L, vecs, n, logits);
        for (int i = 0; i < n; i++) hits[i].partner_top = finite_argmax(logits + (size_t)i * L->vocab, L->vocab);
    }
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (hits[i].top_id < 0) ++*nonfinite; /* a non-finite partner row shows as partner_top -1 */
        else hits[kept++] = hits[i];
    }
    qsort_r(hits, (size_t)kept, sizeof *hits, hit_qsort_cmp, &by);
    free(vecs);
    free(logits);
    return kept;
}

int lens_find_by(const Lens *L, unsigned mask, int token, int limit, int agreement, LensFindBy by, LensHit *hits,
                 int64_t *nonfinite, LensProgressFn progress, void *ctx) {
    int n = rank_all_neurons(L, mask, token, limit, by, hits, nonfinite, progress, ctx);
    return describe_hits(L, token, hits, n, agreement, by, nonfinite);
}

int lens_find(const Lens *L, unsigned mask, int token, int limit, int agreement, LensHit *hits, int64_t *nonfinite,
              LensProgressFn progress, void *ctx) {
    return lens_find_by(L, mask, token, limit, agreement, LENS_BY_LOGIT, hits, nonfinite, progress, ctx);
}
