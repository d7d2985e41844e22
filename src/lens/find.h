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
} LensHit;

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

#endif
