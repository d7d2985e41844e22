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

static int by_logit_desc(const void *pa, const void *pb) {
    const LensHit *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
    if (a->matrix != b->matrix) return (int)a->matrix - (int)b->matrix;
    if (a->layer != b->layer) return a->layer - b->layer;
    return a->neuron - b->neuron;
}

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

/* Every neuron's logit for the token; the best `limit` into hits (sorted).
 * A neuron whose vector or logit is not finite is skipped and counted. */
static int rank_all_neurons(const Lens *L, unsigned mask, int token, int limit, LensHit *hits, int64_t *nonfinite,
                            LensProgressFn progress, void *ctx) {
    const Config *c = &L->m->cfg;
    float *vecs = xmalloc((size_t)c->ffn_dim * c->dim * sizeof *vecs);
    float *logit = xmalloc((size_t)c->ffn_dim * sizeof *logit);
    int64_t total = (int64_t)__builtin_popcount(mask) * c->n_layers * c->ffn_dim, done = 0;
    int n = 0;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
        if (!(mask & (1u << k))) continue;
        for (int layer = 0; layer < c->n_layers; layer++) {
            lens_neuron_vectors(L, (MatrixKind)k, layer, 0, c->ffn_dim, vecs);
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
                if (n == limit && by_logit_desc(&h, &hits[n - 1]) >= 0) continue;
                int j = n < limit ? n++ : n - 1; /* insertion into the sorted best-so-far */
                while (j > 0 && by_logit_desc(&h, &hits[j - 1]) < 0) {
                    hits[j] = hits[j - 1];
                    j--;
                }
                hits[j] = h;
            }
            if (progress) progress(ctx, done += c->ffn_dim, total);
        }
    }
    free(vecs);
    free(logit);
    return n;
}

/* Decodes each hit over the full vocabulary: the token's logit (the same
 * bits as the ranking's), its rank (1 + tokens with a higher logit, equal
 * logits by id), the top token. Hits whose full row is not finite are
 * dropped and counted. Returns how many remain. */
static int describe_hits(const Lens *L, int token, LensHit *hits, int n, int agreement, int64_t *nonfinite) {
    float *vecs = xmalloc(((size_t)n * L->dim + 1) * sizeof *vecs);
    float *logits = xmalloc(((size_t)n * L->vocab + 1) * sizeof *logits);
    for (int i = 0; i < n; i++)
        lens_neuron_vectors(L, hits[i].matrix, hits[i].layer, hits[i].neuron, 1, vecs + (size_t)i * L->dim);
    lens_logits(L, vecs, n, logits);
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * L->vocab;
        float x = row[token];
        int rank = 1;
        for (int v = 0; v < L->vocab; v++)
            if (row[v] > x || (row[v] == x && v < token)) rank++;
        hits[i].logit = x;
        hits[i].rank = rank;
        hits[i].top_id = finite_argmax(row, L->vocab);
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
    qsort(hits, (size_t)kept, sizeof *hits, by_logit_desc);
    free(vecs);
    free(logits);
    return kept;
}

int lens_find(const Lens *L, unsigned mask, int token, int limit, int agreement, LensHit *hits, int64_t *nonfinite,
              LensProgressFn progress, void *ctx) {
    int n = rank_all_neurons(L, mask, token, limit, hits, nonfinite, progress, ctx);
    return describe_hits(L, token, hits, n, agreement, nonfinite);
}
