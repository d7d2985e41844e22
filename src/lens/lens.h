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

#include "base/pool.h"
#include "model/model.h"

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
 * logits are ordered by token id. lse_bound: 0 when lse is computed from
 * every exact logit; with the prefilter, a proven bound on |lse − exact lse|
 * (so every prob is within a factor e^±lse_bound of the exact one), the
 * exact lse being the exact map's, up to its own rounding of the exponentials
 * (~1e-6, included in the bound). */
typedef struct {
    LensToken *top, *bottom;
    double lse, lse_bound;
    int nonfinite; /* the vector or its logits hold a NaN or an infinity:
                      lse and the lists mean nothing (the lists are zeroed) */
} LensResult;

/* Which FP32 product computes the logits: our kernel (kernels.c) or
 * OpenBLAS sgemm. auto: the one measured faster under the kernel set in use
 * (base/cpu.h; a table in lens.c, lens_kernel_why says which line). */
typedef enum { LENS_KERNEL_AUTO, LENS_KERNEL_OPENBLAS, LENS_KERNEL_NATIVE } LensKernel;

/* What the prefilter did, summed over every lens_decode (map's report). */
typedef struct {
    _Atomic long long neurons;    /* decoded through the prefilter */
    _Atomic long long rescored;   /* logits computed exactly after it */
    _Atomic long long exact_lse;  /* neurons whose normaliser was computed exactly */
    _Atomic long long routed;     /* ... of them, without the BF16 pass (decode.c, pf_hopeless) */
    _Atomic double max_bound;     /* the largest lse_bound kept */
    _Atomic int pass_items;       /* the most work items (neuron blocks × vocabulary
                                     slices) of one BF16 pass: what threads can share */
} LensStats;

typedef struct {
    const Model *m;
    LensNorm norm;
    int threads;            /* pool_threads(pool) */
    Pool *pool;             /* the lens's workers (base/pool.h), started by lens_open */
    int vocab, dim;
    float *gain;            /* the final norm weight, dim floats */
    const float *head;      /* vocab × dim F32 head, or NULL: BF16 read in place by
                               our kernel, else converted per tile */
    float *head_owned;      /* the dequantised copy behind head, if any */
    int tile_neurons, tile_vocab; /* tile shape (lens_open sets the tuned
                                     default; tests shrink it to reach every path) */
    int native;                   /* 1: kernels.c's FP32 kernel, 0: OpenBLAS */
    const char *kernel_why;       /* why auto chose it; NULL when asked for */
    int dequantise;               /* lens_open's dequantise_head */
    /* The prefilter (lens_enable_prefilter): */
    int prefilter;
    double prob_tol;              /* largest lse_bound kept; above it, the exact normaliser */
    const uint16_t *head_bf16;    /* the head in BF16: in place, or head_bf16_owned */
    uint16_t *head_bf16_owned;
    int row_tiles;                /* set before lens_enable_prefilter: many neurons to come, so pack the head once as
                                     row tiles where the product runs on tiles (kern_row_tiles_pay) */
    uint16_t *head_tiles;         /* ... the head so packed (kern_pack_row_tiles), or NULL */
    float *row_norm, *row_rest;   /* per head row: ‖W_v‖ (≥ its BF16 rounding's) and ‖W_v − bf16(W_v)‖ */
    double row_norm_max, row_rest_max, head_bf16_max;
    double bound_scale;           /* 1; tests shrink it to show that a wrong bound is caught */
    LensStats *stats;
    /* Progress of the long preparations on a large model (the head's
     * conversion to F32 in lens_set_kernel, the prefilter's norm pass):
     * called now and then with the head rows done of total, by one thread
     * at a time, last with done == total; NULL: none. The lens prints
     * nothing itself: map draws a bar. */
    void (*progress)(void *ctx, const char *what, int64_t done, int64_t total);
    void *progress_ctx;
} Lens;

/* Prepares the lens. With dequantise_head the LM head is converted to F32
 * once (worth it when many neurons follow; an F32 head is used in place
 * either way); otherwise each tile of the head is converted as it is used. */
int lens_open(Lens *L, const Model *m, LensNorm norm, int threads, int dequantise_head, Error *e);
void lens_close(Lens *L);

/* "auto", "openblas", "native" → LensKernel; 0 when none. */
int lens_kernel_from_name(const char *s, LensKernel *out);
/* Chooses the FP32 product (lens_open chose auto). */
void lens_set_kernel(Lens *L, LensKernel k);
/* "native" or "openblas" (the kernel set in use: cpu_kernel_isa()). */
const char *lens_kernel_name(const Lens *L);
/* Why auto chose lens_kernel_name (one phrase), or NULL when it was asked for. */
const char *lens_kernel_why(const Lens *L);

/* Turns on the certified prefilter: a BF16 pass over the whole vocabulary,
 * then exact FP32 logits (our kernel, so lens_set_kernel(native) is
 * implied) for the tokens its error bound cannot exclude. Token ids and
 * logits are those of the exact map with our kernel, bit for bit; lse keeps
 * a proven bound (LensResult.lse_bound ≤ prob_tol) or is computed exactly.
 * Prepares a BF16 copy of the head unless it is BF16 already, and the
 * row norms. Needs an even dim (BF16 pairs): exit-2 error otherwise. */
int lens_enable_prefilter(Lens *L, double prob_tol, Error *e);
/* 0 once 1024 neurons have shown more than 3 in 4 needing the exact
 * normaliser anyway: the BF16 pass then only adds time, and map turns the
 * prefilter off (L->prefilter = 0) for the rest, with the same results. */
int lens_prefilter_pays(const Lens *L);

/* Applies the norm to count vectors in place (count × dim, row-major). */
void lens_apply_norm(const Lens *L, float *vecs, int count);

/* Decodes count normed vectors; out[i].top / .bottom must hold top_k /
 * bottom_k entries. */
void lens_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out);
/* lens_decode, with side(side_arg) run once on the calling thread while the
 * lens's other threads start on the product (base/pool.h's
 * pool_run_beside): a map writes one chunk's results while the next is
 * computed. The results and their bits are lens_decode's. */
void lens_decode_beside(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                        void (*side)(void *), void *side_arg);

/* All vocab logits of count normed vectors (count × vocab): for the few
 * neurons `find` examines in full. */
void lens_logits(const Lens *L, const float *vecs, int count, float *out);

/* The logit of one token for count normed vectors (find's ranking of every
 * neuron). With the native kernel every logit is the one FMA chain that
 * lens_logits and lens_decode compute for it, bit for bit, so a ranking by
 * these values and a ranking by the full decode agree exactly. */
void lens_token_logits(const Lens *L, const float *vecs, int count, int token, float *out);

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
 * Token names: what report/neuron_out.h writes for a token id */

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

/* Floating-point operations of decoding count vectors (2 · vocab · dim each). */
double lens_flops(const Lens *L, int64_t count);

/* NM_INTERNAL_BEGIN */
/* ----------------------------------------------------------------------------
 * Inside the lens: what lens.c (tiles, the exact map) and decode.c (the
 * certified prefilter) share. Not part of the public interface. */

/* A prefilter candidate: token id and its BF16-pass logit S_v (see "The
 * certified prefilter"). */
typedef struct {
    int32_t id;
    float s; /* S_v, the BF16 pass's logit */
} Cand;

/* One thread's buffers for tiles of at most `neurons` × L->tile_vocab. */
typedef struct {
    float *c;              /* the tile, neuron-major (neurons × tile_vocab) */
    float *ct;             /* our kernels' output, vocabulary-major */
    float *hbuf;           /* head rows converted to F32, when not in place */
    float *packed;         /* the block's neurons packed for kern_gemm_f32 */
    uint16_t *packed_bf16; /* ... and for kern_gemm_bf16 (prefilter) */
    const void **rows;     /* tile_vocab head row pointers */
    int *idx;              /* tile_vocab positions flagged by kern_flag */
} Work;

typedef struct {
    LensToken *top, *bottom;
    int n_top, n_bottom;
    float max;    /* largest logit so far */
    double sum;   /* Σ exp(logit - max) */
} Acc;

/* Rows [v0, v0+n) of the head as F32: in place, or converted into buf. */
const float *lens_head_rows(const Lens *L, int v0, int n, float *buf);

void lens_work_init(Work *w, const Lens *L, int neurons, int bf16);
void lens_work_free(Work *w);
/* Per-worker buffers of one pool_run, made by the first task a worker takes
 * (a loop of few tasks wakes few workers, and only they allocate). */
Work *lens_works_new(const Lens *L);
Work *lens_work_of(Work *works, int worker, const Lens *L, int neurons, int bf16);
void lens_works_free(Work *works, const Lens *L);
/* Pointers to head rows ids[0..n) (or v0, v0+1, ... without ids) for our
 * FP32 kernel; 1 when they point at BF16 rows, to be widened by it. */
int lens_head_row_ptrs(const Lens *L, Work *w, int v0, const Cand *ids, int n);

/* Inserts (x, id) into list, kept sorted by sign·logit falling, then id
 * rising, at most k long. sign = +1 keeps the highest logits, -1 the lowest. */
void lens_keep(LensToken *list, int *n, int k, float sign, float x, int id);
/* Adds e^(m - a->max) · s, a normaliser taken relative to m, to a's. */
void lens_acc_add_sum(Acc *a, float m, double s);
/* Probabilities of a result's listed tokens from its lse. */
void lens_set_probs(LensResult *r, int n_top, int n_bottom);

/* Panel `panel` of a batch of count vectors cut into blocks of `block`,
 * each block packed whole (kern_padded(block) / KERN_LANES panels): sets
 * i0, the panel's first vector, and at, where its packed copy starts (in
 * elements of dim); returns how many vectors it holds (0: past the batch). */
int lens_block_panel(int64_t panel, int block, int count, int dim, int *i0, size_t *at);
/* Every logit exact, by the FP32 product (lens.c). */
void lens_exact_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                       void (*side)(void *), void *side_arg);
/* The certified prefilter (decode.c). */
void lens_prefilter_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                           void (*side)(void *), void *side_arg);
/* NM_INTERNAL_END */

#endif
