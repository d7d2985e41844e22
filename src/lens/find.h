/* find.h — the neurons that most promote a token, ranked exactly over a
 * whole model (`neuromap find MODEL`; on an atlas, atlas_find searches the
 * stored top-k lists instead). */
#ifndef NEUROMAP_FIND_H
#define NEUROMAP_FIND_H

#include "lens/lens.h"

typedef struct {
    MatrixKind matrix;
    int layer, neuron;
    int rank;        /* the token's rank in the neuron's distribution, 1 = its top token */
    int top_id;      /* the neuron's top token */
    float logit;     /* the token's logit */
    int partner_top; /* with agreement: the top token of the neuron's other side, else -1 */
} LensHit;

/* The other side of a neuron: what an up/gate neuron writes is its down
 * column; what a down neuron reads is its up row. */
MatrixKind lens_partner(MatrixKind k);

/* Ranks every neuron of the matrices in mask (1 << MatrixKind each) by the
 * token's logit under L's norm, keeps the best `limit` in hits (room for
 * limit), and decodes each over the full vocabulary for its exact logit,
 * rank and top token (and, with agreement, its partner's top token).
 * Returns how many it kept; hits fall by logit, ties by matrix, layer, neuron. */
int lens_find(const Lens *L, unsigned mask, int token, int limit, int agreement, LensHit *hits);

#endif
