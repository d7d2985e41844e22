/* agreement.h — do a neuron's weights and its activations tell the same story?
 *
 * The paper reads a neuron from its weights: its down column through the
 * final norm and the LM head says which token it writes, its up row which
 * token it reads. The corpus says where it fires. Two tests per neuron, on
 * its top examples (the strongest activations):
 *
 *   writes: is the token its down column decodes to (top-1 through the lens,
 *           full norm) the next token after the example more often than
 *           chance? trials: top examples with a next token in their window's
 *           document; chance: that token's frequency f in the corpus.
 *   reads:  is the token its gate row (or up row) decodes to (top-1
 *           through the LM head, or through the token embeddings) at the
 *           example or just before it? The gate row by default: in SwiGLU,
 *           silu(gate·x) is near 0 for gate·x < 0, so the gate decides when the
 *           neuron fires, the up row its sign and size. chance: 1 − (1 − f)², either of two positions by frequency
 *           (a little generous for examples at pos 1, whose left neighbour
 *           is BOS and not counted: that makes the test conservative).
 *
 * hits ~ Binomial(trials, chance) if the weights say nothing about the
 * examples; p is P[X ≥ hits] and lift = (hits / trials) / chance. A reading
 * is confirmed at p < alpha. The top examples of a neuron are not
 * independent draws (one story can give several), so p is a screen, not a
 * proof; with many neurons, alpha·neurons of them pass by chance.
 *
 * "Through the embeddings": the up row's response to each token's own
 * embedding as layer L's MLP sees it, up · (g ⊙ E_t / rms(E_t)) with g the
 * layer's ffn norm — what the neuron would read if the residual stream
 * still held the token alone.
 */
#ifndef NEUROMAP_AGREEMENT_H
#define NEUROMAP_AGREEMENT_H

#include "store/activations_store.h"

typedef struct {
    int token;          /* the weight reading; -1: none stored */
    int hits, trials;
    double chance;      /* per trial, from the corpus frequency */
    double lift;        /* (hits / trials) / chance; NAN when undefined */
    double p;           /* P[X ≥ hits], X ~ Binomial(trials, chance) */
} AgreementTest;

typedef struct {
    AgreementTest writes, reads;
} NeuronAgreement;

/* P[X ≥ k] for X ~ Binomial(n, p), by summing the terms in log space. */
double binomial_upper_tail(int n, int k, double p);

/* The two tests for one neuron of an activations atlas (s, w from
 * act_atlas_neuron); row: 0 up, 1 gate; through_embed picks the embedding
 * reading. */
int agreement_neuron(const ActAtlas *a, const ActNeuron *s, const ActReadings *w, int row, int through_embed,
                     NeuronAgreement *out, Error *e);

/* The weight readings of every neuron of layers l0..l1 ((l1−l0+1)·ffn ids
 * each, layer-major): out[0] writes (down column, lens), out[1] up row
 * (lens), out[2] up row (embeddings), out[3] gate row (lens), out[4] gate
 * row (embeddings). */
int agreement_readings(const Model *m, int threads, int l0, int l1, int *const out[5], Error *e);

#endif
