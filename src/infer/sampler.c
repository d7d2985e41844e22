/* sampler.c — greedy, temperature and top-p sampling, deterministic per seed.
 *
 * The generator is xorshift64* (Vigna): tiny, fast, and the same sequence on
 * every machine, which is all a sampler needs. Top-p keeps the smallest set
 * of most probable tokens whose mass reaches p, as llama2.c does: tokens below
 * (1 - p) / (n - 1) cannot be in that set, so they are dropped before sorting.
 */
#include "infer/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "base/util.h"

/* ----------------------------------------------------------------------------
 * Random numbers */

static uint64_t rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, 1), 24 bits. */
static float rng_float(uint64_t *state) { return (float)(rng_next(state) >> 40) / 16777216.0f; }

/* ----------------------------------------------------------------------------
 * Distributions */

int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void softmax(const float *x, int n, float temperature, float *prob) {
    float inv_t = temperature > 0 ? 1.0f / temperature : 1.0f, max = x[argmax(x, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += prob[i] = expf((x[i] - max) * inv_t);
    for (int i = 0; i < n; i++) prob[i] = (float)(prob[i] / sum);
}

static const float *sort_key; /* qsort has no context argument */

static int by_value_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_key[i] != sort_key[j]) return sort_key[i] > sort_key[j] ? -1 : 1;
    return (i > j) - (i < j);
}

void top_k(const float *x, int n, int k, int *out) {
    if (k > n) k = n;
    /* Insertion into a sorted list of k: fast for the small k reports use. */
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && x[i] <= x[out[k - 1]]) continue;
        int at = have < k ? have++ : k - 1;
        while (at > 0 && x[out[at - 1]] < x[i]) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = i;
    }
}

/* ----------------------------------------------------------------------------
 * Sampling */

void sampler_init(Sampler *s, int vocab, float temperature, float top_p, uint64_t seed) {
    s->vocab = vocab;
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL; /* spread small seeds; never 0 for seed 0 */
    if (!s->rng) s->rng = 1;
    s->prob = xmalloc((size_t)vocab * sizeof *s->prob);
    s->order = xmalloc((size_t)vocab * sizeof *s->order);
}

void sampler_free(Sampler *s) {
    free(s->prob);
    free(s->order);
    s->prob = NULL;
    s->order = NULL;
}

static int sample_top_p(Sampler *s, float coin) {
    int n = 0;
    float cutoff = (1.0f - s->top_p) / (float)(s->vocab > 1 ? s->vocab - 1 : 1);
    for (int i = 0; i < s->vocab; i++)
        if (s->prob[i] >= cutoff) s->order[n++] = i;
    sort_key = s->prob;
    qsort(s->order, (size_t)n, sizeof *s->order, by_value_desc);
    double mass = 0;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        mass += s->prob[s->order[i]];
        if (mass > s->top_p) { last = i; break; }
    }
    double r = coin * mass, acc = 0;
    for (int i = 0; i <= last; i++) {
        acc += s->prob[s->order[i]];
        if (r < acc) return s->order[i];
    }
    return s->order[last];
}

int sampler_next(Sampler *s, const float *logits) {
    if (s->temperature <= 0) return argmax(logits, s->vocab);
    softmax(logits, s->vocab, s->temperature, s->prob);
    float coin = rng_float(&s->rng);
    if (s->top_p > 0 && s->top_p < 1) return sample_top_p(s, coin);
    double acc = 0;
    for (int i = 0; i < s->vocab; i++) {
        acc += s->prob[i];
        if (coin < acc) return i;
    }
    return s->vocab - 1;
}
