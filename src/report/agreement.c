/* agreement.c — the weights-vs-activations test (agreement.h). */
#include "report/agreement.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * The binomial tail */

double binomial_upper_tail(int n, int k, double p) {
    if (k <= 0) return 1.0;
    if (k > n || p <= 0) return 0.0;
    if (p >= 1) return 1.0;
    /* Σ_{i=k..n} C(n,i) p^i (1−p)^(n−i), each term from lgamma: no overflow
     * for any n, and the tail's terms are summed smallest-last. */
    double sum = 0, lp = log(p), lq = log1p(-p);
    for (int i = k; i <= n; i++) sum += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * lp + (n - i) * lq);
    return sum > 1 ? 1 : sum;
}

static void finish_test(AgreementTest *t) {
    t->lift = t->trials && t->chance > 0 ? ((double)t->hits / t->trials) / t->chance : NAN;
    t->p = t->token < 0 || !t->trials ? 1.0 : binomial_upper_tail(t->trials, t->hits, t->chance);
}

/* ----------------------------------------------------------------------------
 * One neuron */

int agreement_neuron(const ActAtlas *a, const ActNeuron *s, const ActReadings *w, int row, int through_embed,
                     NeuronAgreement *out, Error *e) {
    const ActInfo *in = act_atlas_info(a);
    int64_t total;
    const int64_t *uni = act_atlas_unigram(a, &total);
    memset(out, 0, sizeof *out);
    out->writes.token = w->writes;
    out->reads.token = w->read[row][through_embed];
    double fw = out->writes.token >= 0 && total ? (double)uni[out->writes.token] / (double)total : 0;
    double fr = out->reads.token >= 0 && total ? (double)uni[out->reads.token] / (double)total : 0;
    out->writes.chance = fw;
    out->reads.chance = 1 - (1 - fr) * (1 - fr);
    int per = in->window - 1;
    for (int i = 0; i < s->n_top; i++) {
        const ActExample *x = &s->top[i];
        int *ids, n, rc = act_atlas_doc(a, x->doc, &ids, &n, e);
        if (rc) return rc;
        int at = x->window * per + x->pos - 1; /* the example's content index */
        /* the next token, if the window holds it */
        if (out->writes.token >= 0 && x->pos + 1 < in->window && at + 1 < n) {
            out->writes.trials++;
            out->writes.hits += ids[at + 1] == out->writes.token;
        }
        if (out->reads.token >= 0 && at < n) {
            out->reads.trials++;
            out->reads.hits += ids[at] == out->reads.token || (x->pos >= 2 && ids[at - 1] == out->reads.token);
        }
        free(ids);
    }
    finish_test(&out->writes);
    finish_test(&out->reads);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The weight readings */

int agreement_readings(const Model *m, int threads, int l0, int l1, int *const out[5], Error *e) {
    Lens L;
    int rc = lens_open(&L, m, NORM_FULL, threads, 1, e);
    if (rc) return rc;
    int ffn = m->cfg.ffn_dim, dim = m->cfg.dim, vocab = m->cfg.vocab_size;
    enum { CHUNK = 1024, TILE = 4096 };
    float *vecs = xmalloc((size_t)CHUNK * dim * sizeof *vecs);
    LensBatch b;
    lens_batch_init(&b, CHUNK, 1, 0);
    static const MatrixKind kinds[3] = { MATRIX_DOWN, MATRIX_UP, MATRIX_GATE };
    static const int slot[3] = { 0, 1, 3 };
    for (int l = l0; l <= l1; l++)
        for (int k = 0; k < 3; k++)
            for (int n0 = 0; n0 < ffn; n0 += CHUNK) {
                int count = ffn - n0 < CHUNK ? ffn - n0 : CHUNK;
                lens_neuron_vectors(&L, kinds[k], l, n0, count, vecs);
                lens_decode(&L, vecs, count, 1, 0, b.r);
                for (int i = 0; i < count; i++) out[slot[k]][(size_t)(l - l0) * ffn + n0 + i] = b.r[i].top[0].id;
            }
    lens_batch_free(&b);
    lens_close(&L);

    /* Through the embeddings: the tokens' normed embeddings a tile at a
     * time, times every up (gate) row of the layer; the best token per row. */
    float *embd = xmalloc((size_t)TILE * dim * sizeof *embd), *gain = xmalloc((size_t)dim * sizeof *gain);
    float *rows = xmalloc((size_t)ffn * dim * sizeof *rows), *scores = xmalloc((size_t)TILE * ffn * sizeof *scores);
    float *best = xmalloc((size_t)ffn * sizeof *best);
    for (int l = l0; l <= l1; l++)
        for (int k = 0; k < 2; k++) {
            tensor_rows_f32(m->layers[l].ffn_norm, 0, 1, gain);
            model_neuron_vectors(m, k ? MATRIX_GATE : MATRIX_UP, l, 0, ffn, rows);
            int *best_id = out[k ? 4 : 2] + (size_t)(l - l0) * ffn;
            for (int t0 = 0; t0 < vocab; t0 += TILE) {
                int nt = vocab - t0 < TILE ? vocab - t0 : TILE;
                tensor_rows_f32(m->tok_embd, t0, nt, embd);
                for (int t = 0; t < nt; t++) {
                    float *v = embd + (size_t)t * dim;
                    double ss = 0;
                    for (int i = 0; i < dim; i++) ss += (double)v[i] * v[i];
                    float r = (float)(1 / sqrt(ss / dim + m->cfg.norm_eps));
                    for (int i = 0; i < dim; i++) v[i] = gain[i] * (r * v[i]);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, ffn, dim, 1.0f, embd, dim, rows, dim, 0.0f, scores, ffn);
                for (int t = 0; t < nt; t++)
                    for (int n = 0; n < ffn; n++) {
                        float s = scores[(size_t)t * ffn + n];
                        if ((t0 == 0 && t == 0) || s > best[n]) {
                            best[n] = s;
                            best_id[n] = t0 + t;
                        }
                    }
            }
        }
    free(embd);
    free(gain);
    free(rows);
    free(scores);
    free(best);
    free(vecs);
    return NM_OK;
}
