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
 * Work is split over the lens's thread pool (base/pool.h) into blocks of
 * neurons × slices of the vocabulary (SLICE_TILES tiles), handed out one by
 * one so that the threads finish together, and each neuron's slices are
 * merged in vocabulary order, whatever the thread count. Each block is
 * packed once, shared by its slices; each worker keeps its own scratch
 * buffers (Work), made by the first task it takes. Every logit is a plain FP32 dot product, by our AVX2/AVX-512
 * kernel (kernels.c: one FMA chain per logit, whatever the kernel set) or by
 * OpenBLAS.
 *
 * The prefilter (lens_enable_prefilter) goes beyond brute force: a BF16
 * pass at twice the FP32 rate gives every logit with a proven error bound,
 * only the tokens the bound cannot rule out of the top-k or bottom-k are
 * computed exactly (with the same kernel, so with the same bits), and the
 * normaliser keeps a per-neuron bound or is computed exactly: decode.c,
 * which stands on this file's tiles and exact decode (and lens_decode).
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

DEFINE_ENUM_NAMES(lens_norm, LensNorm, norm_names, NORM_NONE + 1)

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

/* auto: per kernel set, the FP32 product measured faster for the exact map
 * (bench/map.sh, docs/BENCHMARKS.md). A table, not a timing at start-up:
 * the two kernels round differently, so the choice must not change from
 * run to run on one machine. Where nothing was measured, ours (it is also
 * the kernel the prefilter rescores with). */
static const struct {
    LensKernel kernel;
    const char *why;
} auto_choice[ISA_COUNT] = {
    [ISA_GENERIC] = { LENS_KERNEL_OPENBLAS, "portable C: OpenBLAS's sgemm is vectorised, our C twin is not" },
    [ISA_AVX2] = { LENS_KERNEL_NATIVE, "measured on AMD Zen 3, 2 shared cores: 1024 8B neurons in 10.8 s, OpenBLAS 0.3.21 "
                                       "14.5 (its product alone is 1.05-1.16x faster, but it needs the head in F32)" },
    [ISA_AVX512] = { LENS_KERNEL_NATIVE, "ours on 512-bit vectors: OpenBLAS is slower where measured" },
    [ISA_AVX512BF16] = { LENS_KERNEL_NATIVE, "measured 1.6x OpenBLAS 0.3.21 on AMD Zen 5 (its Haswell kernel, 256-bit); on "
                                             "Zen 4 the same loop speed (0.98x, paired) and 1.4x the process (no F32 head)" },
    [ISA_AMX] = { LENS_KERNEL_NATIVE, "measured on Xeon (Emerald Rapids), 2 shared cores: 12 CPU s for 1024 8B neurons, "
                                      "OpenBLAS 0.3.21 56 (and it needs the head in F32); on Granite Rapids OpenBLAS's "
                                      "loop 1.04-1.06x, its process 0.87x" },
};

void lens_set_kernel(Lens *L, LensKernel k) {
    L->kernel_why = k == LENS_KERNEL_AUTO ? auto_choice[cpu_kernel_isa()].why : NULL;
    if (k == LENS_KERNEL_AUTO) k = auto_choice[cpu_kernel_isa()].kernel;
    L->native = k == LENS_KERNEL_NATIVE;
    head_setup(L);
}

const char *lens_kernel_why(const Lens *L) { return L->kernel_why; }

const char *lens_kernel_name(const Lens *L) { return L->native ? "native" : "openblas"; }

void lens_close(Lens *L) {
    free(L->gain);
    free(L->head_owned);
    free(L->head_bf16_owned);
    free(L->head_tiles);
    free(L->row_norm);
    free(L->row_rest);
    free(L->stats);
    pool_free(L->pool);
    memset(L, 0, sizeof *L);
}

typedef struct {
    const Lens *L;
    float *vecs;
} NormJob;

static void norm_task(void *arg, int64_t i, int worker) {
    (void)worker;
    const NormJob *j = arg;
    const Lens *L = j->L;
    int dim = L->dim;
    float *w = j->vecs + (size_t)i * dim;
    float scale = 1.0f;
    if (L->norm == NORM_FULL) {
        double ss = 0;
        for (int d = 0; d < dim; d++) ss += (double)w[d] * w[d];
        scale = (float)(1.0 / sqrt(ss / dim + (double)L->m->cfg.norm_eps));
    }
    for (int d = 0; d < dim; d++) w[d] = L->gain[d] * (w[d] * scale);
}

/* Neuron by neuron on the pool: a map's chunk of 1024 is 4 M elements. */
void lens_apply_norm(const Lens *L, float *vecs, int count) {
    if (L->norm == NORM_NONE) return;
    NormJob j = { L, vecs };
    pool_run(L->pool, count, norm_task, &j);
}

double lens_flops(const Lens *L, int64_t count) { return 2.0 * L->vocab * (double)L->dim * (double)count; }

/* Rows [v0, v0+n) of the head as F32: in place, or converted into buf. */
const float *lens_head_rows(const Lens *L, int v0, int n, float *buf) {
    if (L->head) return L->head + (size_t)v0 * L->dim;
    tensor_rows_f32(L->m->output, v0, n, buf);
    return buf;
}

/* ----------------------------------------------------------------------------
 * Tile products: OpenBLAS, or our kernel on the block's packed neurons */

void lens_work_init(Work *w, const Lens *L, int neurons, int bf16) {
    size_t tv = (size_t)L->tile_vocab, pad = (size_t)kern_padded(neurons), dim = (size_t)L->dim;
    memset(w, 0, sizeof *w);
    /* On cache lines (xmalloc64): malloc puts large blocks 16 bytes past one,
     * and then half the 32-byte vectors of the panels and the sums straddle
     * two lines, which costs the AVX2 product a sixth of its speed (Zen 3). */
    w->c = xmalloc64((size_t)neurons * tv * sizeof *w->c);
    w->hbuf = L->head ? NULL : xmalloc(tv * dim * sizeof *w->hbuf);
    w->rows = xmalloc(tv * sizeof *w->rows);
    w->idx = xmalloc(tv * sizeof *w->idx);
    if (L->native || bf16) w->ct = xmalloc64(tv * pad * sizeof *w->ct);
    if (L->native) w->packed = xmalloc64(pad * dim * sizeof *w->packed);
    if (bf16) w->packed_bf16 = xmalloc64(pad * dim * sizeof *w->packed_bf16);
}

void lens_work_free(Work *w) {
    free(w->c), free(w->ct), free(w->hbuf), free(w->packed), free(w->packed_bf16), free(w->rows), free(w->idx);
}

/* Per-worker buffers of one pool_run, made by the first task a worker takes
 * (a loop of few tasks wakes few workers, and only they allocate). */
Work *lens_works_new(const Lens *L) { return xcalloc((size_t)L->threads, sizeof(Work)); }

Work *lens_work_of(Work *works, int worker, const Lens *L, int neurons, int bf16) {
    Work *w = &works[worker];
    if (!w->c) lens_work_init(w, L, neurons, bf16);
    return w;
}

void lens_works_free(Work *works, const Lens *L) {
    for (int i = 0; i < L->threads; i++) lens_work_free(&works[i]);
    free(works);
}

/* Pointers to head rows ids[0..n) (or v0, v0+1, ... without ids) for our
 * FP32 kernel; 1 when they point at BF16 rows, to be widened by it. */
int lens_head_row_ptrs(const Lens *L, Work *w, int v0, const Cand *ids, int n) {
    const Tensor *t = L->m->output;
    int bf16 = !L->head && dtype_info(t->type)->plain == PLAIN_BF16, convert = !L->head && !bf16;
    if (convert && !ids) lens_head_rows(L, v0, n, w->hbuf); /* the run of rows, converted at once */
    for (int j = 0; j < n; j++) {
        int v = ids ? ids[j].id : v0 + j;
        if (L->head) w->rows[j] = L->head + (size_t)v * L->dim;
        else if (bf16) w->rows[j] = (const uint16_t *)t->data + (size_t)v * L->dim;
        else w->rows[j] = ids ? lens_head_rows(L, v, 1, w->hbuf + (size_t)j * L->dim) : w->hbuf + (size_t)j * L->dim;
    }
    return bf16;
}

/* w->c (n × nv) = vecs (n × dim) · head[v0, v0+nv)ᵀ. With our kernel the
 * block must have been packed (kern_pack_f32, into packed). sgemm repacks
 * the head tile, which only pays when many vectors share it; one or two
 * vectors (show) stream the head through sgemv instead, at memory speed. */
static void tile_product(const Lens *L, Work *w, const float *packed, const float *vecs, int n, int v0, int nv) {
    if (L->native) {
        int bf16 = lens_head_row_ptrs(L, w, v0, NULL, nv);
        kern_gemm_f32(packed, n, L->dim, w->rows, bf16, nv, w->ct, kern_padded(n));
        kern_transpose(w->ct, nv, n, kern_padded(n), w->c);
        return;
    }
    const float *head = lens_head_rows(L, v0, nv, w->hbuf);
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

/* Inserts (x, id) into list, kept sorted by sign·logit falling, then id
 * rising, at most k long. sign = +1 keeps the highest logits, -1 the lowest. */
void lens_keep(LensToken *list, int *n, int k, float sign, float x, int id) {
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
void lens_acc_add_sum(Acc *a, float m, double s) {
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
            lens_keep(a->top, &a->n_top, top_k, 1.0f, x, v0 + j);
            if (a->n_top == top_k) hi = a->top[top_k - 1].logit;
        }
        if (x < lo) {
            lens_keep(a->bottom, &a->n_bottom, bottom_k, -1.0f, x, v0 + j);
            if (a->n_bottom == bottom_k) lo = a->bottom[bottom_k - 1].logit;
        }
    }
    float m = kern_max(row, n);
    lens_acc_add_sum(a, m, kern_sum_exp(row, n, m));
}

/* ----------------------------------------------------------------------------
 * The tiled, threaded decode */

/* Tiles per slice of the vocabulary: the items are handed out one by one,
 * so that threads finish together (on a shared machine one core may run at
 * half the other's speed for seconds); a slice keeps its own accumulator
 * per neuron, merged in vocabulary order, so the slices, not the threads,
 * decide how the normaliser is rounded: the same bits on any number of
 * threads. */
enum { SLICE_TILES = 8 };

typedef struct {
    const Lens *L;
    const float *vecs;
    float *packed;       /* our kernel: the blocks packed (kern_pack_f32), each at block · padded(tile_neurons) · dim */
    int count, top_k, bottom_k;
    int splits;          /* vocabulary slices (of whole tiles) */
    int n_items;         /* neuron blocks × splits */
    Acc *acc;            /* count × splits */
    Work *works;         /* per worker */
} Job;

int lens_block_panel(int64_t panel, int block, int count, int dim, int *i0, size_t *at) {
    int per_block = kern_padded(block) / KERN_LANES, b = (int)(panel / per_block), q = (int)(panel % per_block);
    int first = q * KERN_LANES, n = block - first < KERN_LANES ? block - first : KERN_LANES; /* the block's last panel: short */
    *i0 = b * block + first;
    if (n > count - *i0) n = count - *i0;
    *at = (size_t)panel * KERN_LANES * dim;
    return n > 0 ? n : 0;
}

/* The blocks packed for our kernel, panel by panel. */
static void pack_task(void *arg, int64_t panel, int worker) {
    (void)worker;
    Job *j = arg;
    int i0, dim = j->L->dim;
    size_t at;
    int n = lens_block_panel(panel, j->L->tile_neurons, j->count, dim, &i0, &at);
    if (n) kern_pack_f32(j->vecs + (size_t)i0 * dim, n, dim, j->packed + at);
}

/* One item: a block of neurons over one slice of the vocabulary. */
static void decode_task(void *arg, int64_t item, int worker) {
    Job *j = arg;
    const Lens *L = j->L;
    int tn = L->tile_neurons, tv = L->tile_vocab;
    Work *w = lens_work_of(j->works, worker, L, tn, 0);
    int block = (int)(item / j->splits), split = (int)(item % j->splits);
    int n0 = block * tn, nb = j->count - n0 < tn ? j->count - n0 : tn;
    int n_tiles = (L->vocab + tv - 1) / tv;
    int v_begin = (int)((int64_t)n_tiles * split / j->splits) * tv;
    int v_end = (int)((int64_t)n_tiles * (split + 1) / j->splits) * tv;
    if (v_end > L->vocab) v_end = L->vocab;
    const float *vecs = j->vecs + (size_t)n0 * L->dim;
    const float *packed = j->packed ? j->packed + (size_t)block * kern_padded(tn) * L->dim : NULL;
    for (int v0 = v_begin; v0 < v_end; v0 += tv) {
        int nv = v_end - v0 < tv ? v_end - v0 : tv;
        tile_product(L, w, packed, vecs, nb, v0, nv);
        for (int i = 0; i < nb; i++)
            acc_scan(&j->acc[(size_t)(n0 + i) * j->splits + split], w->c + (size_t)i * nv, nv, v0, j->top_k,
                     j->bottom_k, w->idx);
    }
}

/* Probabilities of a result's listed tokens from its lse. */
void lens_set_probs(LensResult *r, int n_top, int n_bottom) {
    for (int t = 0; t < n_top; t++) r->top[t].prob = (float)exp((double)r->top[t].logit - r->lse);
    for (int t = 0; t < n_bottom; t++) r->bottom[t].prob = (float)exp((double)r->bottom[t].logit - r->lse);
}


/* Every logit exact, by the FP32 product. */
void lens_exact_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                       void (*side)(void *), void *side_arg) {
    int blocks = (count + L->tile_neurons - 1) / L->tile_neurons;
    int splits = ((L->vocab + L->tile_vocab - 1) / L->tile_vocab + SLICE_TILES - 1) / SLICE_TILES;
    Job j = { .L = L, .vecs = vecs, .count = count, .top_k = top_k, .bottom_k = bottom_k, .splits = splits,
              .n_items = blocks * splits };
    int per_block = kern_padded(L->tile_neurons) / KERN_LANES;
    if (L->native) { /* each block packed once, shared by its slices */
        j.packed = xmalloc64((size_t)blocks * per_block * KERN_LANES * L->dim * sizeof *j.packed);
        pool_run(L->pool, (int64_t)blocks * per_block, pack_task, &j);
    }
    size_t n_acc = (size_t)count * splits, per = (size_t)top_k + bottom_k;
    j.acc = xcalloc(n_acc, sizeof *j.acc);
    LensToken *pool = xmalloc((n_acc * per + 1) * sizeof *pool);
    for (size_t a = 0; a < n_acc; a++) {
        j.acc[a].top = pool + a * per;
        j.acc[a].bottom = pool + a * per + top_k;
        j.acc[a].max = -INFINITY;
    }
    j.works = lens_works_new(L);
    pool_run_beside(L->pool, j.n_items, decode_task, &j, side, side_arg);
    lens_works_free(j.works, L);

    /* Merge the vocabulary slices of each neuron, then turn logits into
     * probabilities with the normaliser of the full vocabulary. */
    for (int i = 0; i < count; i++) {
        Acc r = { .top = out[i].top, .bottom = out[i].bottom, .max = -INFINITY };
        for (int s = 0; s < splits; s++) {
            const Acc *a = &j.acc[(size_t)i * splits + s];
            for (int t = 0; t < a->n_top; t++) lens_keep(r.top, &r.n_top, top_k, 1.0f, a->top[t].logit, a->top[t].id);
            for (int t = 0; t < a->n_bottom; t++)
                lens_keep(r.bottom, &r.n_bottom, bottom_k, -1.0f, a->bottom[t].logit, a->bottom[t].id);
            lens_acc_add_sum(&r, a->max, a->sum);
        }
        out[i].lse = (double)r.max + log(r.sum);
        out[i].lse_bound = 0;
        lens_set_probs(&out[i], r.n_top, r.n_bottom);
    }
    free(pool);
    free(j.acc);
    free(j.packed);
}

void lens_logits(const Lens *L, const float *vecs, int count, float *out) {
    int tv = L->tile_vocab;
    Work w;
    lens_work_init(&w, L, count, 0);
    block_begin(L, &w, vecs, count);
    for (int v0 = 0; v0 < L->vocab; v0 += tv) {
        int nv = L->vocab - v0 < tv ? L->vocab - v0 : tv;
        tile_product(L, &w, w.packed, vecs, count, v0, nv);
        for (int i = 0; i < count; i++)
            memcpy(out + (size_t)i * L->vocab + v0, w.c + (size_t)i * nv, (size_t)nv * sizeof *w.c);
    }
    lens_work_free(&w);
}

void lens_token_logits(const Lens *L, const float *vecs, int count, int token, float *out) {
    enum { CHUNK = 512 }; /* bounds the tile buffers (CHUNK × tile_vocab floats) */
    Work w;
    lens_work_init(&w, L, count < CHUNK ? count : CHUNK, 0);
    for (int i0 = 0; i0 < count; i0 += CHUNK) {
        int n = count - i0 < CHUNK ? count - i0 : CHUNK;
        const float *v = vecs + (size_t)i0 * L->dim;
        block_begin(L, &w, v, n);
        tile_product(L, &w, w.packed, v, n, token, 1); /* a tile of one head row: w.c[i] is neuron i's logit */
        memcpy(out + i0, w.c, (size_t)n * sizeof *out);
    }
    lens_work_free(&w);
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
