/* sampler.h — choosing the next token from logits: greedy, temperature and
 * top-p (nucleus), from a seeded generator, so that the same seed always
 * picks the same tokens. Also the softmax and top-k that probe reports. */
#ifndef NEUROMAP_SAMPLER_H
#define NEUROMAP_SAMPLER_H

#include <stdint.h>

typedef struct {
    int vocab;
    float temperature; /* 0: greedy */
    float top_p;       /* 1: the whole distribution */
    uint64_t rng;      /* xorshift64* state, never 0 */
    float *prob;       /* vocab scratch */
    int *order;        /* vocab scratch (top-p candidates) */
} Sampler;

void sampler_init(Sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
void sampler_free(Sampler *s);
/* The next token for these logits (not modified). */
int sampler_next(Sampler *s, const float *logits);

/* The highest logit's index; the lowest index wins a tie. */
int argmax(const float *x, int n);
/* prob = softmax(x / temperature), computed stably in double sums. */
void softmax(const float *x, int n, float temperature, float *prob);
/* Indices of the k largest values of x, largest first (ties: lower index first). */
void top_k(const float *x, int n, int k, int *out);

#endif
