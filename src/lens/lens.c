/* lens.c — decoding neuron vectors through the final norm and the LM head
 * (Davies 2025, "Flash Interpretability"), exactly and fast.
 *
 * The whole map is one product, logits = V · W_Uᵀ (neurons × vocab), of
 * which each neuron keeps only its top-k, its bottom-k and the softmax
 * normaliser. For Llama 3.1 8B that product is 128,256 × 458,752 logits,
 * so it is never materialised: it is computed in tiles (TILE_NEURONS ×
 * TILE_VOCAB, by OpenBLAS sgemm) and each tile is folded into the running
 * top-k, bottom-k and log-sum-exp while it is still in cache.
 *
 * Work is split over the lens's thread pool (base/pool.h) by blocks of
 * neurons, one task each; when there are fewer blocks than threads (show,
 * find) the vocabulary is split as well and the partial results are merged.
 * Each worker keeps its own scratch buffers (Work), made by the first task
 * it takes. Every logit is a plain FP32 dot product, by
 * our AVX-512 kernel (kernels.c: one FMA chain per logit, 1.6x OpenBLAS's
 * Haswell sgemm on this machine) or by OpenBLAS.
 *
 * The prefilter (lens_enable_prefilter) goes beyond brute force: a BF16
 * pass at twice the FP32 rate gives every logit with a proven error bound,
 * only the tokens the bound cannot rule out of the top-k or bottom-k are
 * computed exactly (with the same kernel, so with the same bits), and the
 * normaliser keeps a per-neuron bound or is computed exactly. See the
 * section "The certified prefilter" below.
 */
#include "lens/lens.h"

#include "base/pool.h"
#include "base/cpu.h"
#include "tensor/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A tile of the product is TILE_NEURONS × TILE_VOCAB floats (2 MiB). sgemm
 * repacks the head tile once per block of neurons, so blocks must be wide:
 * 512 neurons cut the packing from 12% of the time (128) to 3%. Measured in
 * docs/BENCHMARKS.md; -D overrides them for such measurements. */
#ifndef TILE_NEURONS
#define TILE_NEURONS 512
#endif
#ifndef TILE_VOCAB
#define TILE_VOCAB 1024
#endif

static const char *const norm_names[] = { [NORM_FULL] = "full", [NORM_GAIN] = "gain", [NORM_NONE] = "none" };

const char *lens_norm_name(LensNorm n) { return norm_names[n]; }

int lens_norm_from_name(const char *s, LensNorm *out) {
    int i = name_index(norm_names, NORM_NONE + 1, s);
    if (i >= 0) *out = (LensNorm)i;
    return i >= 0;
}

/* ----------------------------------------------------------------------------
 * Opening: the final norm weight and the head */

int lens_open(Lens *L, const Model *m, LensNorm norm, int threads, int dequantise_head, Error *e) {
    memset(L, 0, sizeof *L);
    if (!m->has_weights || !m->output || !m->output_norm)
        return error_set(e, NM_EINPUT, "%s: has no LM head and final norm to decode through", m->path);
    L->m = m;
    L->norm = norm;
    int rc = pool_new(threads, &L->pool, e);
    if (rc) return rc;
    L->threads = pool_threads(L->pool);
    L->vocab = m->cfg.vocab_size;
    L->dim = m->cfg.dim;
    L->tile_neurons = TILE_NEURONS;
    L->tile_vocab = TILE_VOCAB;
    L->gain = xmalloc((size_t)L->dim * sizeof *L->gain);
    tensor_rows_f32(m->output_norm, 0, 1, L->gain);
    L->dequantise = dequantise_head;
    L->stats = xcalloc(1, sizeof *L->stats);
    lens_set_kernel(L, LENS_KERNEL_AUTO);
    /* Our threads each run a single-threaded sgemm on their own tiles. */
    openblas_set_num_threads(1);
    return NM_OK;
}

/* The head as the FP32 product reads it: an F32 head in place; a BF16 head
 * in place too for our kernel (widened as it goes); otherwise converted to
 * F32 once when many neurons follow (lens_open's dequantise_head), or tile
 * by tile. */
static void head_setup(Lens *L) {
    const Tensor *t = L->m->output;
    if (dtype_info(t->type)->plain == PLAIN_F32) {
        L->head = t->data;
    } else if (L->dequantise && !(L->native && dtype_info(t->type)->plain == PLAIN_BF16)) {
        if (!L->head_owned) {
            L->head_owned = xmalloc((size_t)L->vocab * (size_t)L->dim * sizeof(float));
            enum { ROWS = 4096 }; /* a run of rows at a time, for the progress report */
            for (int v0 = 0; v0 < L->vocab; v0 += ROWS) {
                int n = L->vocab - v0 < ROWS ? L->vocab - v0 : ROWS;
                tensor_rows_f32(t, v0, n, L->head_owned + (size_t)v0 * L->dim);
                if (L->progress) L->progress(L->progress_ctx, "head", v0 + n, L->vocab);
            }
        }
        L->head = L->head_owned;
    } else {
        free(L->head_owned);
        L->head_owned = NULL;
        L->head = NULL;
    }
}

int lens_kernel_from_name(const char *s, LensKernel *out) {
    static const char *const names[] = { [LENS_KERNEL_AUTO] = "auto", [LENS_KERNEL_OPENBLAS] = "openblas",
                                         [LENS_KERNEL_NATIVE] = "native" };
    int i = name_index(names, LENS_KERNEL_NATIVE + 1, s);
    if (i >= 0) *out = (LensKernel)i;
    return i >= 0;
}

/* auto: our kernel wherever a vector set runs it (AVX2 or better); it was
 * measured faster than OpenBLAS's sgemm there (docs/BENCHMARKS.md), and it
 * is the kernel the prefilter rescores with. Portable C: OpenBLAS. */
void lens_set_kernel(Lens *L, LensKernel k) {
    L->native = k == LENS_KERNEL_NATIVE || (k == LENS_KERNEL_AUTO && cpu_kernel_isa() >= ISA_AVX2);
    head_setup(L);
}

const char *lens_kernel_name(const Lens *L) { return L->native ? "native" : "openblas"; }

void lens_close(Lens *L) {
    free(L->gain);
    free(L->head_owned);
    free(L->head_bf16_owned);
    free(L->row_norm);
    free(L->row_rest);
    free(L->stats);
    pool_free(L->pool);
    memset(L, 0, sizeof *L);
}

void lens_apply_norm(const Lens *L, float *vecs, int count) {
    int dim = L->dim;
    for (int i = 0; i < count; i++) {
        float *w = vecs + (size_t)i * dim;
        if (L->norm == NORM_NONE) continue;
        float scale = 1.0f;
        if (L->norm == NORM_FULL) {
            double ss = 0;
            for (int d = 0; d < dim; d++) ss += (double)w[d] * w[d];
            scale = (float)(1.0 / sqrt(ss / dim + (double)L->m->cfg.norm_eps));
        }
        for (int d = 0; d < dim; d++) w[d] = L->gain[d] * (w[d] * scale);
    }
}

double lens_flops(const Lens *L, int64_t count) { return 2.0 * L->vocab * (double)L->dim * (double)count; }

/* Rows [v0, v0+n) of the head as F32: in place, or converted into buf. */
static const float *head_rows(const Lens *L, int v0, int n, float *buf) {
    if (L->head) return L->head + (size_t)v0 * L->dim;
    tensor_rows_f32(L->m->output, v0, n, buf);
    return buf;
}

/* ----------------------------------------------------------------------------
 * Tile products: OpenBLAS, or our kernel on the block's packed neurons */

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

static void work_init(Work *w, const Lens *L, int neurons, int bf16) {
    size_t tv = (size_t)L->tile_vocab, pad = (size_t)kern_padded(neurons), dim = (size_t)L->dim;
    memset(w, 0, sizeof *w);
    w->c = xmalloc((size_t)neurons * tv * sizeof *w->c);
    w->hbuf = L->head ? NULL : xmalloc(tv * dim * sizeof *w->hbuf);
    w->rows = xmalloc(tv * sizeof *w->rows);
    w->idx = xmalloc(tv * sizeof *w->idx);
    if (L->native || bf16) w->ct = xmalloc(tv * pad * sizeof *w->ct);
    if (L->native) w->packed = xmalloc(pad * dim * sizeof *w->packed);
    if (bf16) w->packed_bf16 = xmalloc(pad * dim * sizeof *w->packed_bf16);
}

static void work_free(Work *w) {
    free(w->c), free(w->ct), free(w->hbuf), free(w->packed), free(w->packed_bf16), free(w->rows), free(w->idx);
}

/* Per-worker buffers of one pool_run, made by the first task a worker takes
 * (a loop of few tasks wakes few workers, and only they allocate). */
static Work *works_new(const Lens *L) { return xcalloc((size_t)L->threads, sizeof(Work)); }

static Work *work_of(Work *works, int worker, const Lens *L, int neurons, int bf16) {
    Work *w = &works[worker];
    if (!w->c) work_init(w, L, neurons, bf16);
    return w;
}

static void works_free(Work *works, const Lens *L) {
    for (int i = 0; i < L->threads; i++) work_free(&works[i]);
    free(works);
}

/* Pointers to head rows ids[0..n) (or v0, v0+1, ... without ids) for our
 * FP32 kernel; 1 when they point at BF16 rows, to be widened by it. */
static int head_row_ptrs(const Lens *L, Work *w, int v0, const Cand *ids, int n) {
    const Tensor *t = L->m->output;
    int bf16 = !L->head && dtype_info(t->type)->plain == PLAIN_BF16, convert = !L->head && !bf16;
    if (convert && !ids) head_rows(L, v0, n, w->hbuf); /* the run of rows, converted at once */
    for (int j = 0; j < n; j++) {
        int v = ids ? ids[j].id : v0 + j;
        if (L->head) w->rows[j] = L->head + (size_t)v * L->dim;
        else if (bf16) w->rows[j] = (const uint16_t *)t->data + (size_t)v * L->dim;
        else w->rows[j] = ids ? head_rows(L, v, 1, w->hbuf + (size_t)j * L->dim) : w->hbuf + (size_t)j * L->dim;
    }
    return bf16;
}

/* w->c (n × nv) = vecs (n × dim) · head[v0, v0+nv)ᵀ. With our kernel the
 * block must have been packed (kern_pack_f32 into w->packed). sgemm repacks
 * the head tile, which only pays when many vectors share it; one or two
 * vectors (show) stream the head through sgemv instead, at memory speed. */
static void tile_product(const Lens *L, Work *w, const float *vecs, int n, int v0, int nv) {
    if (L->native) {
        int bf16 = head_row_ptrs(L, w, v0, NULL, nv);
        kern_gemm_f32(w->packed, n, L->dim, w->rows, bf16, nv, w->ct, kern_padded(n));
        kern_transpose(w->ct, nv, n, kern_padded(n), w->c);
        return;
    }
    const float *head = head_rows(L, v0, nv, w->hbuf);
    if (n <= 2) {
        for (int i = 0; i < n; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nv, L->dim, 1.0f, head, L->dim, vecs + (size_t)i * L->dim, 1, 0.0f,
                        w->c + (size_t)i * nv, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nv, L->dim, 1.0f, vecs, L->dim, head, L->dim, 0.0f,
                    w->c, nv);
    }
}

static void block_begin(const Lens *L, Work *w, const float *vecs, int n) {
    if (L->native) kern_pack_f32(vecs, n, L->dim, w->packed);
}

/* ----------------------------------------------------------------------------
 * Running top-k, bottom-k and log-sum-exp of one neuron */

typedef struct {
    LensToken *top, *bottom;
    int n_top, n_bottom;
    float max;    /* largest logit so far */
    double sum;   /* Σ exp(logit - max) */
} Acc;

/* Inserts (x, id) into list, kept sorted by sign·logit falling, then id
 * rising, at most k long. sign = +1 keeps the highest logits, -1 the lowest. */
static void keep(LensToken *list, int *n, int k, float sign, float x, int id) {
    if (k == 0) return;
    int i = *n;
    if (i == k) {
        const LensToken *last = &list[k - 1];
        if (!(sign * x > sign * last->logit || (x == last->logit && id < last->id))) return;
        i = k - 1;
    } else {
        (*n)++;
    }
    while (i > 0 && (sign * x > sign * list[i - 1].logit || (x == list[i - 1].logit && id < list[i - 1].id))) {
        list[i] = list[i - 1];
        i--;
    }
    list[i] = (LensToken){ .id = id, .logit = x };
}

/* Adds e^(m - a->max) · s, a normaliser taken relative to m, to a's. */
static void acc_add_sum(Acc *a, float m, double s) {
    if (m > a->max) {
        a->sum = a->sum * exp((double)a->max - m) + s;
        a->max = m;
    } else {
        a->sum += s * exp((double)m - a->max);
    }
}

/* Folds one row of a tile (logits of tokens v0, v0+1, ...) into a. Tokens
 * arrive in rising id order, so a logit equal to the current k-th best can
 * never displace it: one comparison per logit decides, made 16 at a time
 * by kern_flag; idx has room for n. */
static void acc_scan(Acc *a, const float *row, int n, int v0, int top_k, int bottom_k, int *idx) {
    float hi = a->n_top == top_k ? (top_k ? a->top[top_k - 1].logit : INFINITY) : -INFINITY;
    float lo = a->n_bottom == bottom_k ? (bottom_k ? a->bottom[bottom_k - 1].logit : -INFINITY) : INFINITY;
    int flagged = kern_flag(row, n, NULL, NULL, 0, 0, 0, hi, lo, idx);
    for (int f = 0; f < flagged; f++) {
        int j = idx[f];
        float x = row[j];
        if (x > hi) {
            keep(a->top, &a->n_top, top_k, 1.0f, x, v0 + j);
            if (a->n_top == top_k) hi = a->top[top_k - 1].logit;
        }
        if (x < lo) {
            keep(a->bottom, &a->n_bottom, bottom_k, -1.0f, x, v0 + j);
            if (a->n_bottom == bottom_k) lo = a->bottom[bottom_k - 1].logit;
        }
    }
    float m = kern_max(row, n);
    acc_add_sum(a, m, kern_sum_exp(row, n, m));
}

/* ----------------------------------------------------------------------------
 * The tiled, threaded decode */

typedef struct {
    const Lens *L;
    const float *vecs;
    int count, top_k, bottom_k;
    int splits;          /* vocabulary slices per neuron block */
    int n_items;         /* neuron blocks × splits */
    Acc *acc;            /* count × splits */
    Work *works;         /* per worker */
} Job;

/* One item: a block of neurons over one slice of the vocabulary. */
static void decode_task(void *arg, int64_t item, int worker) {
    Job *j = arg;
    const Lens *L = j->L;
    int tn = L->tile_neurons, tv = L->tile_vocab;
    Work *w = work_of(j->works, worker, L, tn, 0);
    int block = (int)(item / j->splits), split = (int)(item % j->splits);
    int n0 = block * tn, nb = j->count - n0 < tn ? j->count - n0 : tn;
    int v_begin = (int)((int64_t)L->vocab * split / j->splits);
    int v_end = (int)((int64_t)L->vocab * (split + 1) / j->splits);
    const float *vecs = j->vecs + (size_t)n0 * L->dim;
    block_begin(L, w, vecs, nb);
    for (int v0 = v_begin; v0 < v_end; v0 += tv) {
        int nv = v_end - v0 < tv ? v_end - v0 : tv;
        tile_product(L, w, vecs, nb, v0, nv);
        for (int i = 0; i < nb; i++)
            acc_scan(&j->acc[(size_t)(n0 + i) * j->splits + split], w->c + (size_t)i * nv, nv, v0, j->top_k,
                     j->bottom_k, w->idx);
    }
}

/* Probabilities of a result's listed tokens from its lse. */
static void set_probs(LensResult *r, int n_top, int n_bottom) {
    for (int t = 0; t < n_top; t++) r->top[t].prob = (float)exp((double)r->top[t].logit - r->lse);
    for (int t = 0; t < n_bottom; t++) r->bottom[t].prob = (float)exp((double)r->bottom[t].logit - r->lse);
}

static void prefilter_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out);

/* Every logit exact, by the FP32 product. */
static void exact_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out) {
    int blocks = (count + L->tile_neurons - 1) / L->tile_neurons;
    int threads = L->threads;
    /* Fewer neuron blocks than threads: slice the vocabulary too. */
    int splits = blocks >= threads ? 1 : (threads + blocks - 1) / blocks;
    int max_splits = (L->vocab + L->tile_vocab - 1) / L->tile_vocab;
    if (splits > max_splits) splits = max_splits;
    Job j = { .L = L, .vecs = vecs, .count = count, .top_k = top_k, .bottom_k = bottom_k, .splits = splits,
              .n_items = blocks * splits };
    size_t n_acc = (size_t)count * splits, per = (size_t)top_k + bottom_k;
    j.acc = xcalloc(n_acc, sizeof *j.acc);
    LensToken *pool = xmalloc((n_acc * per + 1) * sizeof *pool);
    for (size_t a = 0; a < n_acc; a++) {
        j.acc[a].top = pool + a * per;
        j.acc[a].bottom = pool + a * per + top_k;
        j.acc[a].max = -INFINITY;
    }
    j.works = works_new(L);
    pool_run(L->pool, j.n_items, decode_task, &j);
    works_free(j.works, L);

    /* Merge the vocabulary slices of each neuron, then turn logits into
     * probabilities with the normaliser of the full vocabulary. */
    for (int i = 0; i < count; i++) {
        Acc r = { .top = out[i].top, .bottom = out[i].bottom, .max = -INFINITY };
        for (int s = 0; s < splits; s++) {
            const Acc *a = &j.acc[(size_t)i * splits + s];
            for (int t = 0; t < a->n_top; t++) keep(r.top, &r.n_top, top_k, 1.0f, a->top[t].logit, a->top[t].id);
            for (int t = 0; t < a->n_bottom; t++)
                keep(r.bottom, &r.n_bottom, bottom_k, -1.0f, a->bottom[t].logit, a->bottom[t].id);
            acc_add_sum(&r, a->max, a->sum);
        }
        out[i].lse = (double)r.max + log(r.sum);
        out[i].lse_bound = 0;
        set_probs(&out[i], r.n_top, r.n_bottom);
    }
    free(pool);
    free(j.acc);
}

int lens_prefilter_pays(const Lens *L) {
    long long n = L->stats->neurons, exact = L->stats->exact_lse;
    return n < 1024 || 4 * exact <= 3 * n;
}

/* A NaN or an infinity in a vector, or among its logits, makes its result
 * meaningless: a NaN never passes `x > hi`, so its lists would keep fewer
 * tokens than asked (or a previous neuron's), and the normaliser is NaN.
 * The normed vector shows a non-finite weight (the norm spreads it: a NaN
 * anywhere makes every element NaN under --norm full); lse shows a NaN or
 * +inf logit (kern_max and kern_sum_exp carry it: inf − inf is NaN); the
 * lowest logit shows -inf. Such a result is flagged and its lists zeroed,
 * so that no writer can print stale tokens by mistake. */
static int vector_finite(const float *x, int n) {
    float acc = 0;
    for (int d = 0; d < n; d++) acc += x[d] * 0.0f; /* 0, or NaN when some x[d] is NaN or ±inf */
    return acc == 0;
}

static void flag_nonfinite(const float *vecs, int dim, int count, int top_k, int bottom_k, LensResult *out) {
    for (int i = 0; i < count; i++) {
        LensResult *r = &out[i];
        r->nonfinite = !vector_finite(vecs + (size_t)i * dim, dim) || !isfinite(r->lse) ||
                       (bottom_k > 0 && !isfinite(r->bottom[0].logit)) || (top_k > 0 && !isfinite(r->top[0].logit));
        if (!r->nonfinite) continue;
        memset(r->top, 0, (size_t)top_k * sizeof *r->top);
        memset(r->bottom, 0, (size_t)bottom_k * sizeof *r->bottom);
        r->lse = r->lse_bound = 0;
    }
}

void lens_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out) {
    if (count <= 0) return;
    if (L->prefilter) prefilter_decode(L, vecs, count, top_k, bottom_k, out);
    else exact_decode(L, vecs, count, top_k, bottom_k, out);
    flag_nonfinite(vecs, L->dim, count, top_k, bottom_k, out);
}

/* ----------------------------------------------------------------------------
 * The certified prefilter
 *
 * For a normed vector x and a head row W_v, write W_v = Wb_v + Wl_v (Wb its
 * BF16 rounding; Wl = 0 for a BF16 head) and x = hi + lo (hi = bf16(x)).
 * The BF16 kernel returns S_v, the FP32 sum of the exact products of Wb_v
 * and hi with at most K roundings; the exact map returns R_v, the FMA chain
 * of W_v·x, with K roundings. With γ = K·u/(1 − K·u), u = 2⁻²⁴, and
 * Cauchy–Schwarz:
 *
 *   |R_v − S_v| ≤ |R_v − W_v·x| + |Wb_v·lo| + |Wl_v·x| + |Wb_v·hi − S_v|
 *              ≤ γ‖W_v‖‖x‖ + ‖Wb_v‖‖lo‖ + ‖Wl_v‖‖x‖ + γ‖Wb_v‖‖hi‖ + ε
 *              ≤ r_v·α + s_v·β + ε  =: B_v
 *
 * r_v = max(‖W_v‖, ‖Wb_v‖) and s_v = ‖Wl_v‖ per row (lens_enable_prefilter);
 * α = γ‖x‖ + ‖lo‖ + γ‖hi‖ and β = ‖x‖ per neuron, rounded up with room
 * for the float arithmetic of S_v ± B_v; ε covers VDPBF16PS's flushing of
 * subnormals (and gradual underflow in the chain): ~1e-34, never binding.
 *
 * Top-k: with T the k-th largest S_v − B_v, a token with S_v + B_v < T
 * has k tokens surely above it, so it is not in the exact top-k. The others
 * (candidates) get R_v from the exact kernel, the same bits as in the exact
 * map, and are ranked as the exact map ranks. Bottom-k likewise. T only
 * rises as the vocabulary streams past, so candidates are kept in lists
 * pruned against the current T.
 *
 * Normaliser: top candidates enter it with e^R_v, every other token with
 * e^S_v, each within a factor e^±B_max of its exact term; so the sum Z_nc
 * of the latter is within that factor of its exact value, which bounds
 * |lse − exact lse| by lse_bound (below). Above prob_tol, the exact
 * normaliser is computed instead (a full FP32 pass for those neurons).
 */

typedef struct {
    Cand *c;
    int n, cap;
} CandList;

/* One neuron in the prefilter. acc.top keeps the k largest S_v − B_v,
 * acc.bottom the k smallest S_v + B_v, acc.max/sum Σ e^S_v over every
 * token so far. */
typedef struct {
    Acc acc;
    CandList top, bottom;
    float alpha, beta, eps;
} PAcc;

static inline float pf_bound(const Lens *L, const PAcc *p, int v) {
    return L->row_norm[v] * p->alpha + L->row_rest[v] * p->beta + p->eps;
}

/* The current thresholds: a top candidate needs S + B ≥ t_top, a bottom
 * candidate S − B ≤ t_bottom. k = 0 wants no candidates at all. */
static float pf_t_top(const PAcc *p, int k) {
    return k == 0 ? INFINITY : p->acc.n_top == k ? p->acc.top[k - 1].logit : -INFINITY;
}
static float pf_t_bottom(const PAcc *p, int k) {
    return k == 0 ? -INFINITY : p->acc.n_bottom == k ? p->acc.bottom[k - 1].logit : INFINITY;
}

/* Drops the candidates the current threshold rules out. */
static void pf_prune(const Lens *L, PAcc *p, CandList *l, int is_top, int k) {
    float t = is_top ? pf_t_top(p, k) : pf_t_bottom(p, k);
    int kept = 0;
    for (int i = 0; i < l->n; i++) {
        Cand c = l->c[i];
        float b = pf_bound(L, p, c.id);
        if (is_top ? c.s + b >= t : c.s - b <= t) l->c[kept++] = c;
    }
    l->n = kept;
}

static void pf_push(const Lens *L, PAcc *p, CandList *l, int is_top, int k, int id, float s) {
    if (l->n == l->cap) {
        pf_prune(L, p, l, is_top, k);
        if (l->cap == 0 || l->n > l->cap / 2) { /* still over half full: grow */
            l->cap = l->cap ? 2 * l->cap : 64;
            l->c = xrealloc(l->c, (size_t)l->cap * sizeof *l->c);
        }
    }
    l->c[l->n++] = (Cand){ .id = id, .s = s };
}

/* A tile row's share of a normaliser: Σ e^(S_v − m) over its tokens, m
 * their largest S_v. Kept per tile and added up in tile order whatever the
 * work split, so that the normaliser has the same bits on any number of
 * threads. */
typedef struct {
    float m;
    double s;
} TileSum;

/* Folds one row of a BF16 tile (S_v of tokens v0, v0+1, ...) into p: the
 * few tokens kern_flag finds near a threshold (idx has room for n); every
 * token's e^S_v, for the normaliser, into *ts (top candidates are swapped
 * for e^R_v at the end). */
static void pf_scan(const Lens *L, PAcc *p, const float *row, int n, int v0, int top_k, int bottom_k, int *idx, TileSum *ts) {
    Acc *a = &p->acc;
    float t_top = pf_t_top(p, top_k), t_bottom = pf_t_bottom(p, bottom_k);
    int flagged = kern_flag(row, n, L->row_norm + v0, L->row_rest + v0, p->alpha, p->beta, p->eps, t_top, t_bottom, idx);
    for (int f = 0; f < flagged; f++) {
        int j = idx[f];
        float x = row[j], b = pf_bound(L, p, v0 + j), up = x + b, down = x - b;
        if (up >= t_top) {
            pf_push(L, p, &p->top, 1, top_k, v0 + j, x);
            if (down > t_top) {
                keep(a->top, &a->n_top, top_k, 1.0f, down, v0 + j);
                t_top = pf_t_top(p, top_k);
            }
        }
        if (down <= t_bottom) {
            pf_push(L, p, &p->bottom, 0, bottom_k, v0 + j, x);
            if (up < t_bottom) {
                keep(a->bottom, &a->n_bottom, bottom_k, -1.0f, up, v0 + j);
                t_bottom = pf_t_bottom(p, bottom_k);
            }
        }
    }
    ts->m = kern_max(row, n);
    ts->s = kern_sum_exp(row, n, ts->m);
}

/* Exact logits of the packed neuron (w->packed, one vector) for the
 * candidates' tokens: the same kernel as the exact map, so the same bits. */
static void pf_rescore(const Lens *L, Work *w, const CandList *l, float *out) {
    int tv = L->tile_vocab, dim = L->dim;
    for (int j0 = 0; j0 < l->n; j0 += tv) {
        int nb = l->n - j0 < tv ? l->n - j0 : tv;
        int bf16 = head_row_ptrs(L, w, 0, l->c + j0, nb);
        kern_gemm_f32(w->packed, 1, dim, w->rows, bf16, nb, w->ct, KERN_LANES);
        for (int j = 0; j < nb; j++) out[j0 + j] = w->ct[(size_t)j * KERN_LANES];
    }
}

typedef struct {
    const Lens *L;
    const float *vecs;
    const uint16_t *hi; /* the vectors rounded to BF16 */
    PAcc *p;            /* count × splits: neuron i's slice s at i·splits + s */
    TileSum *ts;        /* count × n_tiles */
    LensResult *out;
    int count, top_k, bottom_k, n_blocks;
    int splits, n_tiles; /* vocabulary slices (of whole tiles) per neuron block; tiles */
    int n_items;         /* neuron blocks × splits */
    Work *works;         /* per worker */
    float **exact;       /* per worker: rescored logits (stage 2) */
    int *exact_cap;
} PJob;

/* Stage 1: the BF16 pass, item by item: a block of neurons over one slice
 * of the vocabulary. With fewer blocks than threads (a map's chunk of 1024
 * neurons is two blocks) the vocabulary is sliced, as in exact_decode, so
 * that every thread has work; the slices are merged in pf_merge. */
static void pf_pass_task(void *arg, int64_t item, int worker) {
    PJob *j = arg;
    const Lens *L = j->L;
    int tn = L->tile_neurons, tv = L->tile_vocab, dim = L->dim;
    Work *w = work_of(j->works, worker, L, tn, 1);
    int block = (int)item / j->splits, split = (int)item % j->splits;
    int n0 = block * tn, nb = j->count - n0 < tn ? j->count - n0 : tn;
    int t_begin = (int)((int64_t)j->n_tiles * split / j->splits), t_end = (int)((int64_t)j->n_tiles * (split + 1) / j->splits);
    kern_pack_bf16(j->hi + (size_t)n0 * dim, nb, dim, w->packed_bf16);
    for (int t = t_begin; t < t_end; t++) {
        int v0 = t * tv, nv = L->vocab - v0 < tv ? L->vocab - v0 : tv;
        for (int r = 0; r < nv; r++) w->rows[r] = L->head_bf16 + (size_t)(v0 + r) * dim;
        kern_gemm_bf16(w->packed_bf16, nb, dim, (const uint16_t *const *)w->rows, nv, w->ct, kern_padded(nb));
        kern_transpose(w->ct, nv, nb, kern_padded(nb), w->c);
        for (int i = 0; i < nb; i++)
            pf_scan(L, &j->p[(size_t)(n0 + i) * j->splits + split], w->c + (size_t)i * nv, nv, v0, j->top_k, j->bottom_k,
                    w->idx, &j->ts[(size_t)(n0 + i) * j->n_tiles + t]);
    }
}

/* Neuron i's slices merged into its first, exactly as one pass over the
 * whole vocabulary would have left it: the thresholds are the k-th largest
 * S − B (smallest S + B) of all tokens, which the slices' lists of k hold
 * between them; the candidate lists, each in rising token order, are
 * concatenated in slice order (rising again) and pruned in stage 2 against
 * those thresholds, which leaves the tokens with S + B ≥ t_top (S − B ≤
 * t_bottom) whichever slice they came from; the normaliser is summed tile
 * by tile in vocabulary order. */
static PAcc *pf_merge(PJob *j, int i) {
    PAcc *p = &j->p[(size_t)i * j->splits];
    for (int s = 1; s < j->splits; s++) {
        PAcc *q = &p[s];
        for (int t = 0; t < q->acc.n_top; t++) keep(p->acc.top, &p->acc.n_top, j->top_k, 1.0f, q->acc.top[t].logit, q->acc.top[t].id);
        for (int t = 0; t < q->acc.n_bottom; t++)
            keep(p->acc.bottom, &p->acc.n_bottom, j->bottom_k, -1.0f, q->acc.bottom[t].logit, q->acc.bottom[t].id);
        CandList *from[2] = { &q->top, &q->bottom }, *to[2] = { &p->top, &p->bottom };
        for (int l = 0; l < 2; l++) {
            if (to[l]->n + from[l]->n > to[l]->cap)
                to[l]->c = xrealloc(to[l]->c, (size_t)(to[l]->cap = to[l]->n + from[l]->n) * sizeof *to[l]->c);
            if (from[l]->n) memcpy(to[l]->c + to[l]->n, from[l]->c, (size_t)from[l]->n * sizeof *from[l]->c);
            to[l]->n += from[l]->n;
            free(from[l]->c);
        }
    }
    for (int t = 0; t < j->n_tiles; t++) acc_add_sum(&p->acc, j->ts[(size_t)i * j->n_tiles + t].m, j->ts[(size_t)i * j->n_tiles + t].s);
    return p;
}

/* The normaliser's own rounding, the same in the exact map: a term of
 * kern_sum_exp is within KERN_EXP_ERROR + 2⁻²⁴·|x − m| of e^(x−m),
 * relatively (x − m rounded to float); over a tile of n tokens the mean of
 * |x − m| weighted by the terms is at most ln n; the sums are in double.
 * Twice that separates the two paths' lse, once more the top candidates'
 * e^S_v taken out in double. */
static double lse_rounding(const Lens *L) {
    return 3 * KERN_EXP_ERROR + 2 * 0x1p-24 * (log((double)L->tile_vocab) + 1);
}

/* log-space width of a sum of which the share f is known within e^±b. */
static double lse_width(double f, double b) {
    double up = log1p(f * expm1(b)), down = f * -expm1(-b);
    return down < 1 ? fmax(up, -log1p(-down)) : INFINITY;
}

static void stats_max(_Atomic double *m, double x) {
    double cur = atomic_load(m);
    while (x > cur && !atomic_compare_exchange_weak(m, &cur, x)) {}
}

static void stats_max_int(_Atomic int *m, int x) {
    int cur = atomic_load(m);
    while (x > cur && !atomic_compare_exchange_weak(m, &cur, x)) {}
}

/* Stage 2, neuron by neuron: final thresholds, the candidates rescored
 * exactly and ranked, the normaliser and its bound. */
static void pf_finish_task(void *arg, int64_t neuron, int worker) {
    PJob *j = arg;
    const Lens *L = j->L;
    Work *w = work_of(j->works, worker, L, 1, 0);
    int i = (int)neuron;
    {
        PAcc *p = pf_merge(j, i);
        LensResult *r = &j->out[i];
        pf_prune(L, p, &p->top, 1, j->top_k);
        pf_prune(L, p, &p->bottom, 0, j->bottom_k);
        int most = p->top.n > p->bottom.n ? p->top.n : p->bottom.n;
        if (most > j->exact_cap[worker])
            j->exact[worker] = xrealloc(j->exact[worker], (size_t)(j->exact_cap[worker] = most) * sizeof(float));
        float *exact = j->exact[worker];
        kern_pack_f32(j->vecs + (size_t)i * L->dim, 1, L->dim, w->packed);

        /* the normaliser: every e^S_v, less the top candidates', is Z_nc (to
         * double rounding, 2⁻⁴⁰ of the whole is room enough); then e^R_v */
        Acc z = { .top = r->top, .bottom = r->bottom, .max = p->acc.max, .sum = p->acc.sum };
        for (int c = 0; c < p->top.n; c++) acc_add_sum(&z, p->top.c[c].s, -1.0);
        double nc_max = z.max, nc_sum = fmax(z.sum, 0) + 0x1p-40 * p->acc.sum;
        pf_rescore(L, w, &p->top, exact);
        for (int c = 0; c < p->top.n; c++) {
            keep(z.top, &z.n_top, j->top_k, 1.0f, exact[c], p->top.c[c].id);
            acc_add_sum(&z, exact[c], 1.0);
        }
        pf_rescore(L, w, &p->bottom, exact);
        for (int c = 0; c < p->bottom.n; c++) keep(z.bottom, &z.n_bottom, j->bottom_k, -1.0f, exact[c], p->bottom.c[c].id);

        r->lse = (double)z.max + log(z.sum);
        double b_max = L->row_norm_max * p->alpha + L->row_rest_max * p->beta + p->eps;
        double share = nc_sum > 0 ? nc_sum * exp(nc_max - (double)z.max) / z.sum : 0;
        r->lse_bound = lse_width(share, b_max) + lse_rounding(L);
        set_probs(r, z.n_top, z.n_bottom);
        atomic_fetch_add(&L->stats->rescored, p->top.n + p->bottom.n);
        free(p->top.c), free(p->bottom.c);
    }
}

static void prefilter_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out) {
    int dim = L->dim;
    const double u = 0x1p-24, gamma = dim * u / (1 - dim * u), room = 1 + 0x1p-10;
    PJob j = { .L = L, .vecs = vecs, .out = out, .count = count, .top_k = top_k, .bottom_k = bottom_k,
               .n_blocks = (count + L->tile_neurons - 1) / L->tile_neurons,
               .n_tiles = (L->vocab + L->tile_vocab - 1) / L->tile_vocab };
    /* Fewer neuron blocks than threads: slice the vocabulary too. */
    j.splits = j.n_blocks >= L->threads ? 1 : (L->threads + j.n_blocks - 1) / j.n_blocks;
    if (j.splits > j.n_tiles) j.splits = j.n_tiles;
    j.n_items = j.n_blocks * j.splits;
    stats_max_int(&L->stats->pass_items, j.n_items);
    uint16_t *hi = xmalloc((size_t)count * dim * sizeof *hi);
    j.hi = hi;
    size_t n_p = (size_t)count * j.splits, per = (size_t)top_k + bottom_k;
    j.p = xcalloc(n_p, sizeof *j.p);
    j.ts = xmalloc((size_t)count * j.n_tiles * sizeof *j.ts);
    LensToken *pool = xmalloc((n_p * per + 1) * sizeof *pool);
    for (int i = 0; i < count; i++) {
        const float *x = vecs + (size_t)i * dim;
        uint16_t *h = hi + (size_t)i * dim;
        double xx = 0, hh = 0, ll = 0, hmax = 0;
        for (int d = 0; d < dim; d++) {
            h[d] = kern_bf16(x[d]);
            double hd = kern_f32(h[d]), ld = (double)x[d] - hd;
            xx += (double)x[d] * x[d], hh += hd * hd, ll += ld * ld, hmax = fmax(hmax, fabs(hd));
        }
        xx = sqrt(xx), hh = sqrt(hh), ll = sqrt(ll);
        for (int s = 0; s < j.splits; s++) {
            PAcc *p = &j.p[(size_t)i * j.splits + s];
            p->alpha = (float)((gamma * xx + ll + gamma * hh + 0x1p-20 * (xx + hh)) * room * L->bound_scale);
            p->beta = (float)(xx * room * L->bound_scale);
            p->eps = (float)(dim * (0x1p-125 * (L->head_bf16_max + hmax + 2) + 0x1p-149) * room * L->bound_scale);
            p->acc.top = pool + ((size_t)i * j.splits + s) * per;
            p->acc.bottom = pool + ((size_t)i * j.splits + s) * per + top_k;
            p->acc.max = -INFINITY;
        }
    }
    j.works = works_new(L);
    pool_run(L->pool, j.n_items, pf_pass_task, &j);
    works_free(j.works, L);
    j.works = works_new(L);
    j.exact = xcalloc((size_t)L->threads, sizeof *j.exact);
    j.exact_cap = xcalloc((size_t)L->threads, sizeof *j.exact_cap);
    pool_run(L->pool, count, pf_finish_task, &j);
    works_free(j.works, L);
    for (int t = 0; t < L->threads; t++) free(j.exact[t]);
    free(j.exact);
    free(j.exact_cap);

    /* Where the bound on the normaliser is wider than asked, compute it
     * exactly: a full FP32 pass for those neurons (ids and logits come out
     * the same; only lse and the probabilities change). */
    int *wide = xmalloc((size_t)count * sizeof *wide), n_wide = 0;
    for (int i = 0; i < count; i++)
        if (!(out[i].lse_bound <= L->prob_tol)) wide[n_wide++] = i;
    if (n_wide) {
        float *sub = xmalloc((size_t)n_wide * dim * sizeof *sub);
        LensBatch b;
        lens_batch_init(&b, n_wide, top_k, bottom_k);
        for (int w = 0; w < n_wide; w++) memcpy(sub + (size_t)w * dim, vecs + (size_t)wide[w] * dim, (size_t)dim * sizeof *sub);
        exact_decode(L, sub, n_wide, top_k, bottom_k, b.r);
        for (int w = 0; w < n_wide; w++) {
            /* The same kernel gives the same ids and logits, so the exact
             * pass's lists (probabilities set from however many tokens it
             * kept) replace ours whole. */
            LensResult *r = &out[wide[w]];
            memcpy(r->top, b.r[w].top, (size_t)top_k * sizeof *r->top);
            memcpy(r->bottom, b.r[w].bottom, (size_t)bottom_k * sizeof *r->bottom);
            r->lse = b.r[w].lse;
            r->lse_bound = 0;
        }
        lens_batch_free(&b);
        free(sub);
    }
    for (int i = 0; i < count; i++) stats_max(&L->stats->max_bound, out[i].lse_bound);
    atomic_fetch_add(&L->stats->neurons, count);
    atomic_fetch_add(&L->stats->exact_lse, n_wide);
    free(wide);
    free(pool);
    free(j.ts);
    free(j.p);
    free(hi);
}

/* ----------------------------------------------------------------------------
 * Preparing the prefilter: the head in BF16 and its row norms */

/* Each worker keeps its own maxima (merged after the loop: a maximum is
 * the same in any order) and its own conversion buffer. */
typedef struct {
    float norm_max, rest_max, bf16_max;
    float *buf;
} PrepWorker;

typedef struct {
    Lens *L;
    PrepWorker *w;   /* per worker */
    atomic_int done; /* head rows done (progress) */
} PrepJob;

enum { PREP_ROWS = 256 };

/* Bounds are rounded up: they must not shrink in float. */
static float up_f32(double x) { return x > 0 ? nextafterf((float)x, INFINITY) : 0.0f; }

static void prep_task(void *arg, int64_t chunk, int worker) {
    PrepJob *j = arg;
    Lens *L = j->L;
    PrepWorker *pw = &j->w[worker];
    int dim = L->dim, bf16_head = dtype_info(L->m->output->type)->plain == PLAIN_BF16;
    if (!L->head && !bf16_head && !pw->buf) pw->buf = xmalloc((size_t)PREP_ROWS * dim * sizeof *pw->buf);
    int v0 = (int)chunk * PREP_ROWS, n = L->vocab - v0 < PREP_ROWS ? L->vocab - v0 : PREP_ROWS;
    if (bf16_head) { /* W = Wb: one norm per row, no rest */
        for (int v = v0; v < v0 + n; v++) {
            L->row_norm[v] = up_f32(sqrt(kern_sumsq_bf16(L->head_bf16 + (size_t)v * dim, dim, &pw->bf16_max) * (1 + 0x1p-30)));
            L->row_rest[v] = 0;
            pw->norm_max = L->row_norm[v] > pw->norm_max ? L->row_norm[v] : pw->norm_max;
        }
    } else {
        const float *rows = head_rows(L, v0, n, pw->buf);
        for (int v = v0; v < v0 + n; v++) {
            const float *w = rows + (size_t)(v - v0) * dim;
            uint16_t *b = L->head_bf16_owned + (size_t)v * dim;
            double ww = 0, bb = 0, rr = 0;
            for (int d = 0; d < dim; d++) {
                b[d] = kern_bf16(w[d]);
                float wb = kern_f32(b[d]);
                double rest = (double)w[d] - wb;
                ww += (double)w[d] * w[d], bb += (double)wb * wb, rr += rest * rest;
                pw->bf16_max = fabsf(wb) > pw->bf16_max ? fabsf(wb) : pw->bf16_max;
            }
            L->row_norm[v] = up_f32(sqrt((ww > bb ? ww : bb) * (1 + 0x1p-30)));
            L->row_rest[v] = up_f32(sqrt(rr * (1 + 0x1p-30)));
            pw->norm_max = L->row_norm[v] > pw->norm_max ? L->row_norm[v] : pw->norm_max;
            pw->rest_max = L->row_rest[v] > pw->rest_max ? L->row_rest[v] : pw->rest_max;
        }
    }
    /* Progress is reported by the calling thread (worker 0) only, so the
     * callback never runs on two threads at once. */
    int done = atomic_fetch_add(&j->done, n) + n;
    if (L->progress && worker == 0 && done < L->vocab) L->progress(L->progress_ctx, "prefilter", done, L->vocab);
}

int lens_enable_prefilter(Lens *L, double prob_tol, Error *e) {
    if (L->dim % 2)
        return error_set(e, NM_EINPUT, "%s: --prefilter needs an even hidden size (it multiplies BF16 pairs); this one is %d",
                         L->m->path, L->dim);
    L->native = 1;
    L->prefilter = 1;
    L->prob_tol = prob_tol;
    L->bound_scale = 1;
    L->row_norm = xmalloc((size_t)L->vocab * sizeof *L->row_norm);
    L->row_rest = xmalloc((size_t)L->vocab * sizeof *L->row_rest);
    if (dtype_info(L->m->output->type)->plain == PLAIN_BF16) L->head_bf16 = L->m->output->data; /* in place */
    else L->head_bf16 = L->head_bf16_owned = xmalloc((size_t)L->vocab * L->dim * sizeof *L->head_bf16_owned);
    PrepJob j = { .L = L, .w = xcalloc((size_t)L->threads, sizeof *j.w) };
    atomic_init(&j.done, 0);
    pool_run(L->pool, (L->vocab + PREP_ROWS - 1) / PREP_ROWS, prep_task, &j);
    if (L->progress) L->progress(L->progress_ctx, "prefilter", L->vocab, L->vocab);
    double norm_max = 0, rest_max = 0, bf16_max = 0;
    for (int t = 0; t < L->threads; t++) {
        norm_max = fmax(norm_max, j.w[t].norm_max), rest_max = fmax(rest_max, j.w[t].rest_max);
        bf16_max = fmax(bf16_max, j.w[t].bf16_max);
        free(j.w[t].buf);
    }
    free(j.w);
    L->row_norm_max = norm_max, L->row_rest_max = rest_max, L->head_bf16_max = bf16_max;
    return NM_OK;
}

void lens_logits(const Lens *L, const float *vecs, int count, float *out) {
    int tv = L->tile_vocab;
    Work w;
    work_init(&w, L, count, 0);
    block_begin(L, &w, vecs, count);
    for (int v0 = 0; v0 < L->vocab; v0 += tv) {
        int nv = L->vocab - v0 < tv ? L->vocab - v0 : tv;
        tile_product(L, &w, vecs, count, v0, nv);
        for (int i = 0; i < count; i++)
            memcpy(out + (size_t)i * L->vocab + v0, w.c + (size_t)i * nv, (size_t)nv * sizeof *w.c);
    }
    work_free(&w);
}

void lens_token_logits(const Lens *L, const float *vecs, int count, int token, float *out) {
    enum { CHUNK = 512 }; /* bounds the tile buffers (CHUNK × tile_vocab floats) */
    Work w;
    work_init(&w, L, count < CHUNK ? count : CHUNK, 0);
    for (int i0 = 0; i0 < count; i0 += CHUNK) {
        int n = count - i0 < CHUNK ? count - i0 : CHUNK;
        const float *v = vecs + (size_t)i0 * L->dim;
        block_begin(L, &w, v, n);
        tile_product(L, &w, v, n, token, 1); /* a tile of one head row: w.c[i] is neuron i's logit */
        memcpy(out + i0, w.c, (size_t)n * sizeof *out);
    }
    work_free(&w);
}

int lens_matrix_mask(const char *s, unsigned *mask) {
    MatrixKind k;
    if (strcmp(s, "all") == 0) *mask = 1u << MATRIX_UP | 1u << MATRIX_GATE | 1u << MATRIX_DOWN;
    else if (matrix_from_name(s, &k)) *mask = 1u << k;
    else return 0;
    return 1;
}

void lens_neuron_vectors(const Lens *L, MatrixKind k, int layer, int n0, int count, float *out) {
    model_neuron_vectors(L->m, k, layer, n0, count, out);
    lens_apply_norm(L, out, count);
}

/* ----------------------------------------------------------------------------
 * Result storage */

void lens_batch_init(LensBatch *b, int count, int top_k, int bottom_k) {
    size_t per = (size_t)top_k + bottom_k;
    b->count = count;
    b->top_k = top_k;
    b->bottom_k = bottom_k;
    b->r = xcalloc((size_t)count, sizeof *b->r);
    b->pool = xcalloc((size_t)count * per + 1, sizeof *b->pool);
    for (int i = 0; i < count; i++) {
        b->r[i].top = b->pool + (size_t)i * per;
        b->r[i].bottom = b->pool + (size_t)i * per + top_k;
    }
}

void lens_batch_free(LensBatch *b) {
    free(b->r);
    free(b->pool);
    memset(b, 0, sizeof *b);
}

/* ----------------------------------------------------------------------------
 * Token names (written out by report/neuron_out.c) */

TokenNames lens_vocab_names(const Vocab *v) { return (TokenNames){ v->n_tokens, v->text, v->text_len, v->type }; }

int lens_find_token(const TokenNames *tn, const char *text, int len) {
    int found = -1;
    for (int i = 0; i < tn->n; i++) {
        if (tn->len[i] != len || memcmp(tn->text[i], text, (size_t)len) != 0) continue;
        if (tn->type[i] == TOKEN_NORMAL) return i;
        if (found < 0) found = i;
    }
    return found;
}
