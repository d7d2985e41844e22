/* activations.h — activation evidence: run a corpus through the model and
 * keep, per MLP neuron, its statistics and its strongest examples.
 *
 * The activation of neuron L:N at a token is the gated MLP value
 * act = silu(gate·x) · (up·x) of layer L (x the post-attention-normed
 * input), the exact F32 value the down matrix receives (--clamp-site act
 * replaces it). Memory is a constant per neuron, whatever the corpus size.
 *
 * The corpus: a .txt file holds one document per line, a .jsonl file one
 * JSON object per line with a "text" field; doc is the 0-based line number.
 * Each document is tokenized and cut into consecutive windows of at most
 * `window` tokens, each starting with BOS; pos is the index within its
 * window including BOS (window w of a document starts at pos 0 again), so
 * window w, pos p ≥ 1 holds the document's content token w·(window−1) + p−1.
 * Position 0 (BOS) is never counted.
 *
 * Two passes over the corpus:
 *   pass 1: count, mean and M2 (Welford, double), min, max, fraction > 0,
 *           the four GLU sign cases, the 32-bin histogram, the top-N and
 *           bottom-N examples, and the unigram counts of the corpus;
 *   pass 2: for each quantile band — [q50, q90), [q90, q99), [q99, max] —
 *           5 examples drawn uniformly from the tokens in the band.
 * The quantiles come from pass 1's histogram (act_quantile): exact at the
 * bin edges, linear within a bin. The band draw is seeded priority
 * sampling: every token gets a key hash(seed, layer, neuron, doc, window,
 * pos) and the band keeps its 5 smallest keys — a uniform sample without
 * replacement, like a seeded reservoir, but independent of the order the
 * tokens come in, so threads and a resumed run give the same draw.
 *
 * Every neuron's state is updated by one thread in corpus order, so results
 * do not depend on the thread count, and the whole state is saved at
 * checkpoints (activations_store.h), so a resumed run continues exactly.
 */
#ifndef NEUROMAP_ACTIVATIONS_H
#define NEUROMAP_ACTIVATIONS_H

#include <stdint.h>

#include "infer/forward.h"
#include "text/tokenizer.h"

enum { ACT_HIST_BINS = 32, ACT_BANDS = 3, ACT_BAND_SAMPLES = 5, ACT_SIGN_CASES = 4 };

/* ----------------------------------------------------------------------------
 * The histogram: symmetric log bins, the same for every neuron and model.
 *
 * Bin 16 + k (k = 0..15) holds a ≥ 0 with |a| in [2^(k−11), 2^(k−10)),
 * bin 15 − k the negative mirror; bin 16 starts at 0 and bin 31 runs to +∞
 * (bin 15 ends at −0, bin 0 from −∞). So the edges are 0, ±2^−10, ±2^−9, …,
 * ±2^4: fine where SwiGLU activations crowd near 0, and wide enough for
 * their tails, with no first pass needed to choose them. */
int act_hist_bin(float a);
/* The lower / upper edge of bin b (−INFINITY / INFINITY at the ends). */
double act_hist_lo(int b);
double act_hist_hi(int b);

/* GLU sign cases, GLUScope's: gate>0 & up>0, gate>0 & up≤0, gate≤0 & up>0, gate≤0 & up≤0. */
extern const char *const act_sign_case_names[ACT_SIGN_CASES]; /* "++", "+-", "-+", "--" */

/* ----------------------------------------------------------------------------
 * Per neuron */

typedef struct {
    int32_t doc, window, pos, token; /* token: the id at pos */
    float act, gate, up;
} ActExample;

typedef struct {
    int64_t count, positive, sign[ACT_SIGN_CASES], hist[ACT_HIST_BINS];
    double mean, m2;                 /* Welford: std = sqrt(m2 / count) (population) */
    float min, max;
    ActExample *top, *bottom;        /* top: best first once finished (a min-heap while running) */
    int n_top, n_bottom;
    double q[ACT_BANDS];             /* band edges q50, q90, q99 (after pass 1) */
    ActExample band[ACT_BANDS][ACT_BAND_SAMPLES];
    uint64_t band_key[ACT_BANDS][ACT_BAND_SAMPLES];
    int n_band[ACT_BANDS];
} ActNeuron;

/* The q-quantile (0..1) of a neuron's activations from its histogram,
 * clipped to [min, max]. */
double act_quantile(const ActNeuron *s, double q);
/* The band quantiles: 0.5, 0.9, 0.99 (and 1). */
extern const double act_band_q[ACT_BANDS + 1];

/* Ordering of examples: a before b in a top list (higher act; equal acts by
 * (doc, window, pos)); with sign −1, the bottom list's order. */
int act_example_before(const ActExample *a, const ActExample *b, int sign);

/* The band-sampling key of a token (the smallest 5 per band are kept). */
uint64_t act_band_key(uint64_t seed, int layer, int neuron, int doc, int window, int pos);

/* ----------------------------------------------------------------------------
 * The corpus */

typedef struct {
    MappedFile file;
    int jsonl;
    int n_docs;
    int64_t *start, *end;   /* byte range of each document's line */
    uint64_t hash;          /* FNV-1a of the whole file */
} ActCorpus;

/* Opens a .txt or .jsonl corpus (NM_EINPUT for anything else). */
int act_corpus_open(ActCorpus *c, const char *path, Error *e);
void act_corpus_close(ActCorpus *c);
/* A document's text (malloc'd; for .jsonl the "text" field, NM_EINPUT
 * naming file:line when the line is no object with a string "text"). */
int act_corpus_text(const ActCorpus *c, int doc, char **text, size_t *len, Error *e);
/* A document's content tokens (without BOS; malloc'd). */
int act_corpus_tokens(const ActCorpus *c, const Tokenizer *t, int doc, int **ids, int *n, Error *e);

/* ----------------------------------------------------------------------------
 * A run */

typedef struct {
    const Model *m;
    int l0, l1, ffn;             /* layers l0..l1, every neuron of each */
    int top_n, bottom_n, window;
    int64_t max_tokens;          /* counted tokens per pass; <0: all */
    uint64_t seed;
    int pass;                    /* 1 or 2 */
    ActNeuron *neuron;           /* (l1 − l0 + 1) × ffn, layer-major */
    int64_t *unigram;            /* vocab counts of the counted tokens (pass 1) */
    int64_t tokens;              /* counted tokens so far in this pass */
    /* private: the window being run (the capture reads it), logits, ids */
    int doc, win;
    int *ids;
    float *logits;
} ActRun;

/* The statistics are kept on the calling thread (the forward pass has the
 * threads): they cost a few operations per neuron and token, far below the
 * forward pass's 2·dim·3 multiply-adds per neuron and token. */
int act_run_init(ActRun *r, const Model *m, int l0, int l1, int top_n, int bottom_n, int window, int64_t max_tokens,
                 uint64_t seed, Error *e);
void act_run_free(ActRun *r);
static inline ActNeuron *act_neuron(const ActRun *r, int layer, int n) {
    return &r->neuron[(size_t)(layer - r->l0) * r->ffn + n];
}

/* Runs one document (content tokens, no BOS) through f, window by window,
 * feeding the pass's statistics; stops at max_tokens. f must hold window
 * positions. */
int act_run_doc(ActRun *r, Forward *f, int doc, const int *content, int n, Error *e);
/* After pass 1: band edges from each histogram; starts pass 2. */
void act_run_begin_pass2(ActRun *r);
/* After pass 2: sorts every list (top, bottom: best first; bands by (doc, window, pos)). */
void act_run_finish(ActRun *r);
/* Sorts the top/bottom heaps best-last, which keeps them valid heaps (for checkpoints). */
void act_run_sort_heaps(ActRun *r);

/* ----------------------------------------------------------------------------
 * Trace: which neurons fire on one text */

typedef struct {
    int layer, neuron;
    float act;
} ActHit;

/* Runs ids[0..n) (n ≤ forward_n_ctx) and fills hits[pos·limit + i], i <
 * limit, with the neurons of layers l0..l1 with the largest signed
 * activation at each position, largest first (equal acts: lower layer,
 * then lower neuron first). limit ≤ (l1−l0+1)·ffn. */
int act_trace(Forward *f, const Model *m, const int *ids, int n, int l0, int l1, int limit, ActHit *hits, Error *e);

#endif
