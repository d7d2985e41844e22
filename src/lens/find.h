/* find.h — the neurons that most promote a token, ranked exactly over a
 * whole model (`neuromap find MODEL`; on an atlas, atlas_find searches the
 * stored top-k lists instead). */
#ifndef NEUROMAP_FIND_H
#define NEUROMAP_FIND_H

#include "lens/lens.h"

/* One neuron found for a token. rank: the token's place in the neuron's
 * distribution (1 = its top token; 0 when unknown); partner_top: the top
 * token of the neuron's other side (with agreement), else -1. */
typedef struct {
    MatrixKind matrix;
    int layer, neuron;
    int rank;
    int top_id;
    float logit;
    int partner_top;
    double prob;   /* the token's probability in the neuron (softmax over the vocabulary) */
} LensHit;

/* What find ranks neurons by: the token's logit (one dot product per
 * neuron), its probability or its rank (both need every neuron's full
 * vocabulary: a decode of the whole matrix, as long as `map`'s). */
typedef enum { LENS_BY_LOGIT, LENS_BY_PROB, LENS_BY_RANK } LensFindBy;

/* The token's exact logit, rank (1 + the tokens with a higher logit, equal
 * logits by id) and probability (e^(logit − lse), lse summed in double) in
 * a row of vocab logits; 0 when the row holds a NaN or an infinity. */
int lens_token_in_row(const float *row, int vocab, int token, float *logit, int *rank, double *prob);

typedef struct {
    float logit;
    int rank;
    double prob;
    int finite;
} LensTokenValue;
/* lens_token_in_row for count rows (count × L->vocab), on the lens's pool. */
void lens_token_values(const Lens *L, const float *logits, int count, int token, LensTokenValue *out);

/* The other side of a neuron: what an up/gate neuron writes is its down
 * column; what a down neuron reads is its up row. */
MatrixKind lens_partner(MatrixKind k);

/* Called after each layer of the ranking: done of total neurons. */
typedef void (*LensProgressFn)(void *ctx, int64_t done, int64_t total);

/* Ranks every neuron of the matrices in mask (1 << MatrixKind each) by the
 * token's logit under L's norm, keeps the best `limit` in hits (room for
 * limit), and decodes each over the full vocabulary for its exact logit,
 * rank and top token (and, with agreement, its partner's top token).
 * Neurons whose vector or logits are not finite are skipped and counted in
 * *nonfinite. Returns how many it kept; hits fall by logit, ties by matrix,
 * layer, neuron. progress may be NULL. */
int lens_find(const Lens *L, unsigned mask, int token, int limit, int agreement, LensHit *hits, int64_t *nonfinite,
              LensProgressFn progress, void *ctx);
/* The same ranked by the token's probability (highest first) or rank
 * (best first; equal ranks by logit). LENS_BY_LOGIT is lens_find. */
int lens_find_by(const Lens *L, unsigned mask, int token, int limit, int agreement, LensFindBy by, LensHit *hits,
                 int64_t *nonfinite, LensProgressFn progress, void *ctx);

#endif
