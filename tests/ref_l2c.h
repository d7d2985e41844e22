/* ref_l2c.h — a llama2.c checkpoint read as one array of floats, for tests
 * that compute their own double-precision references (test_diff.c,
 * test_token_diff.c). Nothing of neuromap's loaders is used: the layout is
 * the README's (seven int32, then emb, rms_att, wq, wk, wv, wo, rms_ffn,
 * w1 (gate), w2 (down), w3 (up), rms_final), so the reference stays
 * independent of the code under test. */
#ifndef NEUROMAP_TEST_REF_L2C_H
#define NEUROMAP_TEST_REF_L2C_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

typedef struct {
    int32_t hdr[7];
    int dim, hidden, layers, vocab;
    float *all;      /* every float after the header */
    size_t n_floats;
    float *emb, *w1, *w2, *w3, *rms_final;
} Ref;

/* 1 when the whole file was read; the head is the embedding (a tied
 * checkpoint: hdr[5] > 0) — callers that need that check it. */
static inline int ref_load(Ref *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f || fread(r->hdr, 4, 7, f) != 7) {
        if (f) fclose(f);
        return 0;
    }
    fseek(f, 0, SEEK_END);
    r->n_floats = (size_t)(ftell(f) - 28) / 4;
    fseek(f, 28, SEEK_SET);
    r->all = malloc(r->n_floats * 4);
    size_t got = fread(r->all, 4, r->n_floats, f);
    fclose(f);
    r->dim = r->hdr[0], r->hidden = r->hdr[1], r->layers = r->hdr[2], r->vocab = abs(r->hdr[5]);
    size_t d = (size_t)r->dim, L = (size_t)r->layers, hd = (size_t)r->hidden, kv = d * (size_t)r->hdr[4] / (size_t)r->hdr[3];
    r->emb = r->all;
    r->w1 = r->emb + (size_t)r->vocab * d + L * d + 2 * L * d * d + 2 * L * kv * d + L * d;
    r->w2 = r->w1 + L * hd * d;
    r->w3 = r->w2 + L * d * hd;
    r->rms_final = r->w3 + L * hd * d;
    return got == r->n_floats;
}

/* Neuron n's vector (dim doubles): up/gate row n, or down column n. */
static inline void ref_vector(const Ref *r, MatrixKind k, int layer, int n, double *w) {
    size_t d = (size_t)r->dim, hd = (size_t)r->hidden;
    for (size_t i = 0; i < d; i++)
        w[i] = k == MATRIX_UP     ? r->w3[(size_t)layer * hd * d + (size_t)n * d + i]
               : k == MATRIX_GATE ? r->w1[(size_t)layer * hd * d + (size_t)n * d + i]
                                  : r->w2[(size_t)layer * d * hd + i * hd + (size_t)n];
}

#endif
