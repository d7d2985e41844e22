/* find.c — see find.h. Ranking is exact and cheap: under the lens a
 * neuron's logit for one token is the dot product of its normed vector with
 * that token's row of the head, so each layer is one matrix-vector product
 * (ffn × dim) instead of a full decode. Only the kept few are then decoded
 * over the whole vocabulary, for their rank and top token. */
#include "lens/find.h"

#include <cblas.h>
#include <stdlib.h>

MatrixKind lens_partner(MatrixKind k) { return k == MATRIX_DOWN ? MATRIX_UP : MATRIX_DOWN; }

/* The top token of a row of logits; the lower id wins a tie. (infer has
 * its own argmax, but lens and infer are peers: neither calls the other.) */
static int top_token(const float *logits, int n) {
    int best = 0;
    for (int v = 1; v < n; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

static int by_logit_desc(const void *pa, const void *pb) {
    const LensHit *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
    if (a->matrix != b->matrix) return (int)a->matrix - (int)b->matrix;
    if (a->layer != b->layer) return a->layer - b->layer;
    return a->neuron - b->neuron;
}

/* Every neuron's logit for the token; the best `limit` into hits (sorted). */
static int rank_all_neurons(const Lens *L, unsigned mask, int token, int limit, LensHit *hits) {
    const Config *c = &L->m->cfg;
    float *head_row = xmalloc((size_t)c->dim * sizeof *head_row);
    float *vecs = xmalloc((size_t)c->ffn_dim * c->dim * sizeof *vecs);
    float *logit = xmalloc((size_t)c->ffn_dim * sizeof *logit);
    tensor_rows_f32(L->m->output, token, 1, head_row);
    int n = 0;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
        if (!(mask & (1u << k))) continue;
        for (int layer = 0; layer < c->n_layers; layer++) {
            lens_neuron_vectors(L, (MatrixKind)k, layer, 0, c->ffn_dim, vecs);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, c->ffn_dim, c->dim, 1.0f, vecs, c->dim, head_row, 1, 0.0f, logit, 1);
            for (int i = 0; i < c->ffn_dim; i++) {
                LensHit h = { .matrix = (MatrixKind)k, .layer = layer, .neuron = i, .logit = logit[i] };
                if (n == limit && by_logit_desc(&h, &hits[n - 1]) >= 0) continue;
                int j = n < limit ? n++ : n - 1; /* insertion into the sorted best-so-far */
                while (j > 0 && by_logit_desc(&h, &hits[j - 1]) < 0) { hits[j] = hits[j - 1]; j--; }
                hits[j] = h;
            }
        }
    }
    free(head_row);
    free(vecs);
    free(logit);
    return n;
}

/* Decodes each hit over the full vocabulary: the token's exact logit, its
 * rank (1 + tokens with a higher logit, equal logits by id), the top token. */
static void describe_hits(const Lens *L, int token, LensHit *hits, int n, int agreement) {
    float *vecs = xmalloc((size_t)n * L->dim * sizeof *vecs);
    float *logits = xmalloc((size_t)n * L->vocab * sizeof *logits);
    for (int i = 0; i < n; i++) lens_neuron_vectors(L, hits[i].matrix, hits[i].layer, hits[i].neuron, 1, vecs + (size_t)i * L->dim);
    lens_logits(L, vecs, n, logits);
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * L->vocab;
        float x = row[token];
        int rank = 1;
        for (int v = 0; v < L->vocab; v++)
            if (row[v] > x || (row[v] == x && v < token)) rank++;
        hits[i].logit = x;
        hits[i].rank = rank;
        hits[i].top_id = top_token(row, L->vocab);
        hits[i].partner_top = -1;
    }
    if (agreement) {
        for (int i = 0; i < n; i++)
            lens_neuron_vectors(L, lens_partner(hits[i].matrix), hits[i].layer, hits[i].neuron, 1, vecs + (size_t)i * L->dim);
        lens_logits(L, vecs, n, logits);
        for (int i = 0; i < n; i++) hits[i].partner_top = top_token(logits + (size_t)i * L->vocab, L->vocab);
    }
    qsort(hits, (size_t)n, sizeof *hits, by_logit_desc);
    free(vecs);
    free(logits);
}

int lens_find(const Lens *L, unsigned mask, int token, int limit, int agreement, LensHit *hits) {
    int n = rank_all_neurons(L, mask, token, limit, hits);
    describe_hits(L, token, hits, n, agreement);
    return n;
}
