/* lens.h — the paper's method: a neuron's direction pushed through the final
 * RMSNorm and the LM head, read as a distribution over the vocabulary.
 *
 * For a neuron vector w (up/gate row, down column; dim floats):
 *   full: logits = W_U · (g ⊙ w / rms(w)),  rms(w) = sqrt(mean(w²) + eps)
 *   gain: logits = W_U · (g ⊙ w)
 *   none: logits = W_U · w
 * with g the final norm weight and W_U the LM head (vocab × dim).
 *
 * lens_decode() computes, for a batch of vectors, the top-k and bottom-k
 * tokens and the softmax normaliser over the full vocabulary, in tiles of
 * the vocab × neurons product: the full logits are never materialised.
 */
#ifndef NEUROMAP_LENS_H
#define NEUROMAP_LENS_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

typedef enum { NORM_FULL, NORM_GAIN, NORM_NONE } LensNorm;
const char *lens_norm_name(LensNorm n); /* "full", "gain", "none" */
int lens_norm_from_name(const char *s, LensNorm *out);

typedef struct {
    int32_t id;
    float logit;
    float prob; /* softmax over the full vocabulary */
} LensToken;

/* One decoded neuron: top[0..top_k) by falling logit, bottom[0..bottom_k) by
 * rising logit (bottom[0] is the lowest), lse = log Σ exp(logits). Equal
 * logits are ordered by token id. */
typedef struct {
    LensToken *top, *bottom;
    double lse;
} LensResult;

typedef struct {
    const Model *m;
    LensNorm norm;
    int threads;
    int vocab, dim;
    float *gain;            /* the final norm weight, dim floats */
    const float *head;      /* vocab × dim F32 head, or NULL: converted per tile */
    float *head_owned;      /* the dequantised copy behind head, if any */
    int tile_neurons, tile_vocab; /* tile shape (lens_open sets the tuned
                                     default; tests shrink it to reach every path) */
} Lens;

/* Prepares the lens. With dequantise_head the LM head is converted to F32
 * once (worth it when many neurons follow; an F32 head is used in place
 * either way); otherwise each tile of the head is converted as it is used. */
int lens_open(Lens *L, const Model *m, LensNorm norm, int threads, int dequantise_head, Error *e);
void lens_close(Lens *L);

/* Applies the norm to count vectors in place (count × dim, row-major). */
void lens_apply_norm(const Lens *L, float *vecs, int count);

/* Decodes count normed vectors; out[i].top / .bottom must hold top_k /
 * bottom_k entries. */
void lens_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out);

/* All vocab logits of count normed vectors (count × vocab): for the few
 * neurons `find` examines in full. */
void lens_logits(const Lens *L, const float *vecs, int count, float *out);

/* Results for a run of neurons: one allocation for every token list. */
typedef struct {
    int count, top_k, bottom_k;
    LensResult *r;
    LensToken *pool;
} LensBatch;
void lens_batch_init(LensBatch *b, int count, int top_k, int bottom_k);
void lens_batch_free(LensBatch *b);

/* "up", "gate", "down" → that matrix's bit (1 << MatrixKind); "all" → all three. */
int lens_matrix_mask(const char *s, unsigned *mask);

/* The normed vectors of neurons [n0, n0+count) of a layer (count × dim). */
void lens_neuron_vectors(const Lens *L, MatrixKind k, int layer, int n0, int count, float *out);

/* ----------------------------------------------------------------------------
 * Writing results (map, show): TSV rows and JSON objects */

/* Token texts: a model's Vocab (text, text_len) or an atlas's token table. */
typedef struct {
    int n;
    char *const *text;
    const int *len;
    const int *type; /* TOKEN_* per token */
} TokenNames;
/* The names of a model's vocabulary. */
TokenNames lens_vocab_names(const Vocab *v);
/* The token whose text is exactly these bytes; an ordinary piece wins over a
 * byte or control token with the same text ("a" over <0x61>). -1 when none. */
int lens_find_token(const TokenNames *tn, const char *text, int len);

/* "matrix layer neuron rank token_id token logit prob" */
void lens_write_tsv_header(FILE *f);
/* One row per token: rank 1..n_top, then -1..-n_bottom. */
void lens_write_tsv(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                    int n_bottom);
/* One line: {"matrix","layer","neuron","lse","top":[...],"bottom":[...]}. */
void lens_write_jsonl(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                      int n_bottom);
/* A token's text for people: escape_token's form, malloc'd. */
char *lens_token_text(const TokenNames *tn, int id);

/* Floating-point operations of decoding count vectors (2 · vocab · dim each). */
double lens_flops(const Lens *L, int64_t count);

#endif
