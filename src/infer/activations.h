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
 *   pass 1: count, the exact sums of a and a² (below), min, max, fraction > 0,
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
 *
 * Mergeable, exactly. Two runs over any two sets of documents merge
 * (act_run_merge) into the state of one run over both, bit for bit, in any
 * order and any grouping: that is what lets MPI ranks and job-array shards
 * split a corpus. Every part of the state is order-independent:
 *   counts, sign cases, histogram, unigrams: integers, added;
 *   min, max: a total order on F32 (−0 < +0), so ties cannot depend on order;
 *   top/bottom: the N best under a total order (act, then doc, window, pos);
 *   band samples: the 5 smallest keys (key, then position);
 *   Σa and Σa²: exact, in fixed point. A float sum would not do: (x+y)+z and
 *           x+(y+z) differ in the last bits, and so would Welford's mean and
 *           M2 merged from parts. An F32 a is M·2^(e−150), M < 2^24, so Σa
 *           is an integer multiple of 2^−149 and Σa² (each a² exact in 48
 *           bits) one of 2^−298; held as integers they add exactly. The
 *           mean and M2 = (n·Σa² − (Σa)²)/n are then computed once, from
 *           the exact integers (the subtraction too), so they depend only on
 *           the multiset of activations — and carry no cancellation error.
 * The sums are 32-bit digits in int64 limbs ("carry-save": an add touches
 * 2–3 limbs and never propagates a carry; act_run_settle carries them into
 * the one canonical form, as every 2^28 adds must). Sizing: |Σa| < 2^63
 * tokens · 2^128 = 2^191, in units of 2^−149: < 2^340, 11 digits; Σa² <
 * 2^63 · 2^256 in units of 2^−298: < 2^617, 20 digits. 248 bytes a neuron
 * (its example lists take 1.1 KB at the default 20 + 20). Inf and NaN are
 * flags beside them (mean ±Inf or NaN, M2 NaN), as a float sum would give.
 */
#ifndef NEUROMAP_ACTIVATIONS_H
#define NEUROMAP_ACTIVATIONS_H

#include <stdint.h>

#include "infer/forward.h"
#include "text/tokenizer.h"

enum { ACT_HIST_BINS = 32, ACT_BANDS = 3, ACT_BAND_SAMPLES = 5, ACT_SIGN_CASES = 4 };
enum { ACT_SUM_DIGITS = 11, ACT_SUM2_DIGITS = 20 }; /* the exact sums' 32-bit digits (above) */
enum { ACT_SPECIAL_PINF = 1, ACT_SPECIAL_NINF = 2, ACT_SPECIAL_NAN = 4 };

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
    int64_t sum[ACT_SUM_DIGITS];     /* Σa in units of 2^−149, digit i weighs 2^(32i) (above) */
    int64_t sum2[ACT_SUM2_DIGITS];   /* Σa² in units of 2^−298 */
    int special;                     /* ACT_SPECIAL_*: Inf or NaN activations seen (not in the sums) */
    double mean, m2;                 /* from the sums by act_run_settle: std = sqrt(m2 / count) (population) */
    float min, max;
    ActExample *top, *bottom;        /* top: best first once finished (a min-heap while running) */
    int n_top, n_bottom;
    double q[ACT_BANDS];             /* band edges q50, q90, q99 (after pass 1) */
    ActExample band[ACT_BANDS][ACT_BAND_SAMPLES];
    uint64_t band_key[ACT_BANDS][ACT_BAND_SAMPLES];
    int n_band[ACT_BANDS];
} ActNeuron;

/* One activation into count, sums, min, max, positive and histogram (the
 * run adds its sign case and examples); and mean, m2 from the sums. */
void act_neuron_add(ActNeuron *s, float a);
void act_neuron_settle(ActNeuron *s);

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
/* Feeds window w of document doc from MLP values recorded earlier instead
 * of a forward pass (the same updates; for replays, as tests do): ids[0..n)
 * the window, BOS first; mlp[l − l0] the gate, up and act values of layer
 * l, one after the other, each n × ffn (position-major, as the capture
 * gives them). */
void act_run_feed(ActRun *r, int doc, int w, const int *ids, int n, const float *const *mlp);
/* After pass 1: band edges from each histogram; starts pass 2. */
void act_run_begin_pass2(ActRun *r);
/* Carries every neuron's sums into their canonical form and computes mean
 * and m2 from them (done by begin_pass2, finish and act_run_pack; a store
 * calls it before saving). */
void act_run_settle(ActRun *r);
/* After pass 2: sorts every list (top, bottom: best first; bands by (doc, window, pos)). */
void act_run_finish(ActRun *r);
/* Sorts the top/bottom heaps best-last, which keeps them valid heaps (for checkpoints). */
void act_run_sort_heaps(ActRun *r);

/* ----------------------------------------------------------------------------
 * Splitting a corpus: parts of a run, merged exactly
 *
 * Parts run the same options over disjoint documents. Pass 1: each part
 * runs its documents; the parts merge; begin_pass2 on the merged state
 * gives the band edges, which every part takes (act_run_begin_pass2_part:
 * its pass-1 numbers are dropped, they are in the merged state already);
 * pass 2: each part runs its documents again; merging the parts into the
 * merged state gives, after finish, the state of one run over them all. */

/* Adds b's state to a's (both running: not yet finished). NM_EINPUT when
 * their options differ. a keeps its own band edges and pass. */
int act_run_merge(ActRun *a, const ActRun *b, Error *e);
/* Forgets every neuron's numbers, lists and bands, the unigrams and tokens. */
void act_run_reset(ActRun *r);
/* The band edges q[3·i + b] of every neuron i (layer-major), out of the
 * state (act_run_quantiles, n = neurons·3) and into a part that starts
 * pass 2 (act_run_begin_pass2_part: reset, edges q, pass 2). */
void act_run_quantiles(const ActRun *r, double *q);
void act_run_begin_pass2_part(ActRun *r, const double *q);
size_t act_run_neurons(const ActRun *r);
/* The whole state as bytes (malloc'd; settles r first) and back, into a run
 * initialised with the same options (NM_EINPUT when they differ or the
 * bytes are not such a state). For MPI: the same binary on every rank. */
unsigned char *act_run_pack(ActRun *r, size_t *n);
int act_run_unpack(ActRun *r, const unsigned char *buf, size_t n, Error *e);
/* The exact sums as 8·(ACT_SUM_DIGITS + ACT_SUM2_DIGITS) + 4 bytes,
 * little-endian (settled), and back: how a store keeps them. */
enum { ACT_SUMS_BYTES = 8 * (ACT_SUM_DIGITS + ACT_SUM2_DIGITS) + 4 };
void act_neuron_sums_put(const ActNeuron *s, unsigned char *out);
void act_neuron_sums_get(ActNeuron *s, const unsigned char *in);
/* Documents [*first, *last) of part i of n of the documents [from, n_docs):
 * contiguous, balanced by bytes (ranks and shards split so). */
void act_corpus_part(const ActCorpus *c, int i, int n, int from, int *first, int *last);

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
