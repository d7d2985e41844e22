/* decode.c — lens_decode: a batch of neurons decoded by the exact map
 * (lens.c) or by the certified prefilter (lens_enable_prefilter, here): a
 * BF16 pass over the whole vocabulary with a proven error bound per logit,
 * the exact FP32 logits of the few tokens the bound cannot rule out, and the
 * normaliser with its bound; token ids and logits are the exact map's, bit
 * for bit. Then every result is checked for non-finite values.
 *
 * The prefilter stands on lens.c's tiles and exact decode, never the other
 * way round: lens.c does not know this file. */
#include "lens/lens.h"

#include "base/pool.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int lens_prefilter_pays(const Lens *L) {
    long long n = L->stats->neurons, exact = L->stats->exact_lse;
    return n < 1024 || 4 * exact <= 3 * n;
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
 * On AMX (kernels_amx.c) S_v comes from TDPBF16PS, which sums the K exact
 * products in an order of its own (hand-made probes on Emerald Rapids fit
 * the even-k and the odd-k products summed in two chains, then joined;
 * 1 − 1 + 2⁻²⁴ comes out 0, not 2⁻²⁴ as in VDPBF16PS's order).
 * γ needs no order: any sum of K products and a starting 0 by K FP32
 * additions, each rounded to nearest, is within γ_K·Σ|p| — the depth of the
 * addition tree is at most K. Its flushes (BF16 subnormal inputs read as
 * zero, subnormal products and sums flushed) cost at most 2⁻¹²⁶·(|W|max +
 * |hi|max + 2) per step, half of ε's share. So B_v stands as it is, and the
 * mutation test (B_v shrunk to zero → lists differ) runs under amx too.
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
/* A neuron's factors of B_v = r_v·α + s_v·β + ε. */
typedef struct {
    float alpha, beta, eps;
} PFactors;

typedef struct {
    Acc acc;
    CandList top, bottom;
    PFactors f;
} PAcc;

static inline float pf_bound(const Lens *L, const PAcc *p, int v) {
    return L->row_norm[v] * p->f.alpha + L->row_rest[v] * p->f.beta + p->f.eps;
}

/* The widest B_v over the head, from the largest row norms. */
static double pf_b_max(const Lens *L, PFactors f) {
    return L->row_norm_max * f.alpha + L->row_rest_max * f.beta + f.eps;
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

/* Folds neuron i's column of a BF16 tile (S_v of tokens v0, v0+1, ... at
 * c[(v − v0)·ldc]) into p: the rows kern_scan_cols flagged for its group
 * (those with its bit), each tested again against the thresholds as they
 * rise. Tokens arrive in rising id order, as from one pass over the whole
 * vocabulary. */
static void pf_fold(const Lens *L, PAcc *p, const float *c, int ldc, const uint32_t *hit_row, const uint16_t *hit_mask,
                    int n_hits, int bit, int v0, int top_k, int bottom_k) {
    Acc *a = &p->acc;
    float t_top = pf_t_top(p, top_k), t_bottom = pf_t_bottom(p, bottom_k);
    for (int h = 0; h < n_hits; h++) {
        if (!(hit_mask[h] >> bit & 1)) continue;
        int v = v0 + (int)hit_row[h];
        float x = c[(size_t)hit_row[h] * ldc], b = pf_bound(L, p, v), up = x + b, down = x - b;
        if (up >= t_top) {
            pf_push(L, p, &p->top, 1, top_k, v, x);
            if (down > t_top) {
                lens_keep(a->top, &a->n_top, top_k, 1.0f, down, v);
                t_top = pf_t_top(p, top_k);
            }
        }
        if (down <= t_bottom) {
            pf_push(L, p, &p->bottom, 0, bottom_k, v, x);
            if (up < t_bottom) {
                lens_keep(a->bottom, &a->n_bottom, bottom_k, -1.0f, up, v);
                t_bottom = pf_t_bottom(p, bottom_k);
            }
        }
    }
}

/* One worker's buffers for the BF16 pass over blocks of up to pass_neurons
 * and tiles of pass_vocab head rows. */
typedef struct {
    const uint16_t **rows;
    float *ct;        /* the tile, vocabulary-major, rows of ldc floats */
    float *max, *par; /* m; alpha, beta, eps, t_top, t_bottom: m each */
    double *sum;
    uint32_t *hit_row;
    uint16_t *hit_mask;
    int *n_hits;
} PScan;

/* Exact logits of the normed vector x for the candidates' tokens: the same
 * FMA chains as the exact map's kernel, so the same bits. */
static void pf_rescore(const Lens *L, Work *w, const float *x, const CandList *l, float *out) {
    int tv = L->tile_vocab;
    for (int j0 = 0; j0 < l->n; j0 += tv) {
        int nb = l->n - j0 < tv ? l->n - j0 : tv;
        int bf16 = lens_head_row_ptrs(L, w, 0, l->c + j0, nb);
        kern_dot_rows(x, L->dim, w->rows, bf16, nb, out + j0);
    }
}

/* The BF16 pass's tiles differ from the exact map's (lens.c): blocks of
 * twice tile_neurons (a map's chunk of 1024 neurons is one block, its
 * vocabulary sliced over the threads, so the head is read and copied into
 * the tile kernel's A buffer once per chunk, not once per 512 neurons), and
 * PASS_VOCAB head rows, few enough that the tile of sums (256 × 1024
 * floats, 1 MiB) stays in L2 next to the head rows' K block (256 KiB)
 * between K blocks (kernels_amx.c). The tile's rows are padded by 16
 * floats: rows 4 KiB apart would share cache sets. */
#ifndef PASS_VOCAB
#define PASS_VOCAB 256
#endif
/* Head rows per work item of the BF16 pass, in tiles: items small enough
 * that the threads finish together (they are handed out one by one, and on
 * a shared machine one core may run at half the other's speed for seconds),
 * large enough that a tile's product dominates an item's bookkeeping. */
#ifndef PASS_SLICE_TILES
#define PASS_SLICE_TILES 4
#endif

typedef struct {
    const Lens *L;
    const float *vecs;
    const uint16_t *hi; /* the vectors rounded to BF16 */
    const PFactors *fac;
    uint16_t *packed; /* ... packed by kern_pack_bf16, block by block (padded) */
    PAcc *p;          /* count × threads: neuron i's accumulator in worker w at i·threads + w */
    TileSum *ts;      /* count × n_tiles */
    LensResult *out;
    int count, top_k, bottom_k, n_blocks, threads;
    int slices, n_tiles; /* vocabulary slices (of whole tiles) per neuron block; tiles */
    int n_items;         /* neuron blocks × slices */
    int pass_vocab;      /* head rows per tile of the BF16 pass */
    int pass_neurons;    /* neurons per block of the BF16 pass */
    PScan *scans;        /* per worker (stage 1) */
    Work *works;         /* per worker (stage 2) */
    float **exact;       /* per worker: rescored logits (stage 2) */
    int *exact_cap;
} PJob;

/* Stage 0, neuron by neuron (lens_prefilter_decode, before it routes):
 * the vector rounded to BF16 and its bound's factors (see "The certified
 * prefilter"). */
typedef struct {
    const Lens *L;
    const float *vecs;
    uint16_t *hi;
    PFactors *fac;
} PPrep;

static void pf_prep_task(void *arg, int64_t neuron, int worker) {
    (void)worker;
    const PPrep *j = arg;
    const Lens *L = j->L;
    int i = (int)neuron, dim = L->dim;
    const double u = 0x1p-24, gamma = dim * u / (1 - dim * u), room = 1 + 0x1p-10;
    const float *x = j->vecs + (size_t)i * dim;
    uint16_t *h = j->hi + (size_t)i * dim;
    double xx = 0, hh = 0, ll = 0, hmax = 0;
    for (int d = 0; d < dim; d++) {
        h[d] = kern_bf16(x[d]);
        double hd = kern_f32(h[d]), ld = (double)x[d] - hd;
        xx += (double)x[d] * x[d], hh += hd * hd, ll += ld * ld, hmax = fmax(hmax, fabs(hd));
    }
    xx = sqrt(xx), hh = sqrt(hh), ll = sqrt(ll);
    j->fac[i] = (PFactors){
        .alpha = (float)((gamma * xx + ll + gamma * hh + 0x1p-20 * (xx + hh)) * room * L->bound_scale),
        .beta = (float)(xx * room * L->bound_scale),
        .eps = (float)(dim * (0x1p-125 * (L->head_bf16_max + hmax + 2) + 0x1p-149) * room * L->bound_scale),
    };
}

/* Stage 0, panel by panel: the BF16 vectors packed for the tile kernel, a
 * block's panels where the block's packed operand will be. */
static void pf_pack_task(void *arg, int64_t panel, int worker) {
    (void)worker;
    PJob *j = arg;
    int i0, dim = j->L->dim;
    size_t at;
    int n = lens_block_panel(panel, j->pass_neurons, j->count, dim, &i0, &at);
    if (n) kern_pack_bf16(j->hi + (size_t)i0 * dim, n, dim, j->packed + at);
}

/* Stage 1: the BF16 pass, item by item: a block of neurons over one slice
 * of the vocabulary, the items handed out one at a time so that the threads
 * finish together. Each worker folds the tokens of the items it takes into
 * its own accumulator per neuron; pf_merge joins them. Per tile: the
 * product (vocabulary-major, as the kernels write it), one scan of its
 * columns for every neuron's maximum, normaliser and flagged tokens, then
 * each neuron's few flagged tokens folded in. */
static void pf_pass_task(void *arg, int64_t item, int worker) {
    PJob *j = arg;
    const Lens *L = j->L;
    int tn = j->pass_neurons, tv = j->pass_vocab, dim = L->dim;
    int block = (int)item / j->slices, slice = (int)item % j->slices;
    int n0 = block * tn, nb = j->count - n0 < tn ? j->count - n0 : tn;
    int t_begin = (int)((int64_t)j->n_tiles * slice / j->slices), t_end = (int)((int64_t)j->n_tiles * (slice + 1) / j->slices);
    const uint16_t *packed = j->packed + (size_t)block * kern_padded(tn) * dim;
    PScan *sc = &j->scans[worker];
    if (!sc->max) {
        size_t mm = (size_t)kern_padded(tn);
        /* The tile kernel's operands at cache lines: on AMX a panel's or a
         * sum's row across two lines costs a fifth of the product (malloc's
         * large blocks start 16 bytes past a page). */
        sc->rows = xmalloc((size_t)tv * sizeof *sc->rows);
        sc->ct = xmalloc64((size_t)tv * (mm + 16) * sizeof *sc->ct);
        sc->max = xmalloc(mm * sizeof *sc->max), sc->par = xmalloc(5 * mm * sizeof *sc->par);
        sc->sum = xmalloc(mm * sizeof *sc->sum), sc->n_hits = xmalloc(mm / 16 * sizeof *sc->n_hits);
        sc->hit_row = xmalloc(mm / 16 * tv * sizeof *sc->hit_row);
        sc->hit_mask = xmalloc(mm / 16 * tv * sizeof *sc->hit_mask);
    }
    int m = kern_padded(nb), ldc = m + 16;
    PAcc *acc = &j->p[(size_t)n0 * j->threads + worker]; /* neuron n0 + i's: acc[i · threads] */
    KernBounds kb = { sc->par, sc->par + m, sc->par + 2 * m, sc->par + 3 * m, sc->par + 4 * m };
    for (int i = nb; i < m; i++) /* padding: zero columns, never flagged */
        sc->par[i] = sc->par[m + i] = sc->par[2 * m + i] = 0, sc->par[3 * m + i] = INFINITY, sc->par[4 * m + i] = -INFINITY;
    for (int i = 0; i < nb; i++) {
        const PAcc *p = &acc[(size_t)i * j->threads];
        sc->par[i] = p->f.alpha, sc->par[m + i] = p->f.beta, sc->par[2 * m + i] = p->f.eps;
    }
    for (int t = t_begin; t < t_end; t++) {
        int v0 = t * tv, nv = L->vocab - v0 < tv ? L->vocab - v0 : tv;
        if (L->head_tiles && tv == KERN_ROW_SLAB) {
            kern_gemm_bf16_tiles(packed, nb, dim, L->head_tiles + kern_row_tiles_size(v0, dim), nv, sc->ct, ldc);
        } else {
            for (int r = 0; r < nv; r++) sc->rows[r] = L->head_bf16 + (size_t)(v0 + r) * dim;
            kern_gemm_bf16(packed, nb, dim, sc->rows, nv, sc->ct, ldc);
        }
        for (int i = 0; i < nb; i++) {
            const PAcc *p = &acc[(size_t)i * j->threads];
            sc->par[3 * m + i] = pf_t_top(p, j->top_k), sc->par[4 * m + i] = pf_t_bottom(p, j->bottom_k);
        }
        kern_scan_cols(sc->ct, nv, m, ldc, L->row_norm + v0, L->row_rest + v0, &kb, sc->max, sc->sum, sc->hit_row,
                       sc->hit_mask, sc->n_hits);
        for (int i = 0; i < nb; i++) {
            int g = i / 16;
            pf_fold(L, &acc[(size_t)i * j->threads], sc->ct + i, ldc, sc->hit_row + (size_t)g * nv,
                    sc->hit_mask + (size_t)g * nv, sc->n_hits[g], i % 16, v0, j->top_k, j->bottom_k);
            j->ts[(size_t)(n0 + i) * j->n_tiles + t] = (TileSum){ .m = sc->max[i], .s = sc->sum[i] };
        }
    }
}

/* Neuron i's accumulators merged into worker 0's, exactly as one pass over
 * the whole vocabulary would have left it, however the items fell to the
 * workers: the thresholds are the k-th largest S − B (smallest S + B) of
 * all tokens, which the workers' lists of k hold between them; the
 * candidate lists are concatenated and pruned in stage 2 against those
 * thresholds, which leaves the tokens with S + B ≥ t_top (S − B ≤
 * t_bottom) whoever folded them, then put in rising token order (the order
 * of one pass, which decides ties in the ranking); the normaliser is summed
 * tile by tile in vocabulary order. */
static PAcc *pf_merge(PJob *j, int i) {
    PAcc *p = &j->p[(size_t)i * j->threads];
    for (int s = 1; s < j->threads; s++) {
        PAcc *q = &p[s];
        for (int t = 0; t < q->acc.n_top; t++) lens_keep(p->acc.top, &p->acc.n_top, j->top_k, 1.0f, q->acc.top[t].logit, q->acc.top[t].id);
        for (int t = 0; t < q->acc.n_bottom; t++)
            lens_keep(p->acc.bottom, &p->acc.n_bottom, j->bottom_k, -1.0f, q->acc.bottom[t].logit, q->acc.bottom[t].id);
        CandList *from[2] = { &q->top, &q->bottom }, *to[2] = { &p->top, &p->bottom };
        for (int l = 0; l < 2; l++) {
            if (to[l]->n + from[l]->n > to[l]->cap)
                to[l]->c = xrealloc(to[l]->c, (size_t)(to[l]->cap = to[l]->n + from[l]->n) * sizeof *to[l]->c);
            if (from[l]->n) memcpy(to[l]->c + to[l]->n, from[l]->c, (size_t)from[l]->n * sizeof *from[l]->c);
            to[l]->n += from[l]->n;
            free(from[l]->c);
        }
    }
    for (int t = 0; t < j->n_tiles; t++) lens_acc_add_sum(&p->acc, j->ts[(size_t)i * j->n_tiles + t].m, j->ts[(size_t)i * j->n_tiles + t].s);
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

static int cand_by_id(const void *a, const void *b) {
    int32_t x = ((const Cand *)a)->id, y = ((const Cand *)b)->id;
    return (x > y) - (x < y);
}

/* Stage 2, neuron by neuron: final thresholds, the candidates rescored
 * exactly and ranked, the normaliser and its bound. */
static void pf_finish_task(void *arg, int64_t neuron, int worker) {
    PJob *j = arg;
    const Lens *L = j->L;
    Work *w = lens_work_of(j->works, worker, L, 1, 0);
    int i = (int)neuron;
    {
        PAcc *p = pf_merge(j, i);
        LensResult *r = &j->out[i];
        pf_prune(L, p, &p->top, 1, j->top_k);
        pf_prune(L, p, &p->bottom, 0, j->bottom_k);
        if (p->top.n > 1) qsort(p->top.c, (size_t)p->top.n, sizeof *p->top.c, cand_by_id);
        if (p->bottom.n > 1) qsort(p->bottom.c, (size_t)p->bottom.n, sizeof *p->bottom.c, cand_by_id);
        int most = p->top.n > p->bottom.n ? p->top.n : p->bottom.n;
        if (most > j->exact_cap[worker])
            j->exact[worker] = xrealloc(j->exact[worker], (size_t)(j->exact_cap[worker] = most) * sizeof(float));
        float *exact = j->exact[worker];
        const float *x = j->vecs + (size_t)i * L->dim;

        /* the normaliser: every e^S_v, less the top candidates', is Z_nc (to
         * double rounding, 2⁻⁴⁰ of the whole is room enough); then e^R_v */
        Acc z = { .top = r->top, .bottom = r->bottom, .max = p->acc.max, .sum = p->acc.sum };
        for (int c = 0; c < p->top.n; c++) lens_acc_add_sum(&z, p->top.c[c].s, -1.0);
        double nc_max = z.max, nc_sum = fmax(z.sum, 0) + 0x1p-40 * p->acc.sum;
        pf_rescore(L, w, x, &p->top, exact);
        for (int c = 0; c < p->top.n; c++) {
            lens_keep(z.top, &z.n_top, j->top_k, 1.0f, exact[c], p->top.c[c].id);
            lens_acc_add_sum(&z, exact[c], 1.0);
        }
        pf_rescore(L, w, x, &p->bottom, exact);
        for (int c = 0; c < p->bottom.n; c++) lens_keep(z.bottom, &z.n_bottom, j->bottom_k, -1.0f, exact[c], p->bottom.c[c].id);

        r->lse = (double)z.max + log(z.sum);
        double b_max = pf_b_max(L, p->f);
        double share = nc_sum > 0 ? nc_sum * exp(nc_max - (double)z.max) / z.sum : 0;
        r->lse_bound = lse_width(share, b_max) + lse_rounding(L);
        lens_set_probs(r, z.n_top, z.n_bottom);
        atomic_fetch_add(&L->stats->rescored, p->top.n + p->bottom.n);
        free(p->top.c), free(p->bottom.c);
    }
}

/* The BF16 pass and its rescoring over vecs, whose BF16 roundings and
 * factors pf_prep_task made. */
static void pf_decode(const Lens *L, const float *vecs, const uint16_t *hi, const PFactors *fac, int count, int top_k,
                      int bottom_k, LensResult *out, void (*side)(void *), void *side_arg) {
    int dim = L->dim;
    PJob j = { .L = L, .vecs = vecs, .hi = hi, .fac = fac, .out = out, .count = count, .top_k = top_k, .bottom_k = bottom_k,
               .threads = L->threads, .pass_neurons = 2 * L->tile_neurons,
               .pass_vocab = L->tile_vocab < PASS_VOCAB ? L->tile_vocab : PASS_VOCAB };
    j.n_tiles = (L->vocab + j.pass_vocab - 1) / j.pass_vocab;
    j.n_blocks = (count + j.pass_neurons - 1) / j.pass_neurons;
    /* One thread: one item per block. More: slices of PASS_SLICE_TILES
     * tiles, and at least one per thread. */
    j.slices = (j.n_tiles + PASS_SLICE_TILES - 1) / PASS_SLICE_TILES;
    if (j.slices < L->threads) j.slices = L->threads;
    if (j.slices > j.n_tiles || L->threads == 1) j.slices = L->threads == 1 ? 1 : j.n_tiles;
    j.n_items = j.n_blocks * j.slices;
    stats_max_int(&L->stats->pass_items, j.n_items);
    int per_block = kern_padded(j.pass_neurons) / KERN_LANES;
    j.packed = xmalloc64((size_t)j.n_blocks * per_block * KERN_LANES * dim * sizeof *j.packed);
    size_t n_p = (size_t)count * j.threads, per = (size_t)top_k + bottom_k;
    j.p = xcalloc(n_p, sizeof *j.p);
    j.ts = xmalloc((size_t)count * j.n_tiles * sizeof *j.ts);
    LensToken *pool = xmalloc((n_p * per + 1) * sizeof *pool);
    for (size_t a = 0; a < n_p; a++) {
        j.p[a].acc.top = pool + a * per;
        j.p[a].acc.bottom = pool + a * per + top_k;
        j.p[a].acc.max = -INFINITY;
        j.p[a].f = fac[a / (size_t)j.threads];
    }
    pool_run(L->pool, (int64_t)j.n_blocks * per_block, pf_pack_task, &j);
    j.scans = xcalloc((size_t)L->threads, sizeof *j.scans);
    pool_run_beside(L->pool, j.n_items, pf_pass_task, &j, side, side_arg);
    for (int t = 0; t < L->threads; t++) {
        PScan *sc = &j.scans[t];
        free(sc->rows), free(sc->ct), free(sc->max), free(sc->par), free(sc->sum), free(sc->hit_row), free(sc->hit_mask), free(sc->n_hits);
    }
    free(j.scans);
    free(j.packed);
    j.works = lens_works_new(L);
    j.exact = xcalloc((size_t)L->threads, sizeof *j.exact);
    j.exact_cap = xcalloc((size_t)L->threads, sizeof *j.exact_cap);
    pool_run(L->pool, count, pf_finish_task, &j);
    lens_works_free(j.works, L);
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
        lens_exact_decode(L, sub, n_wide, top_k, bottom_k, b.r, NULL, NULL);
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

enum { PREP_ROWS = KERN_ROW_SLAB }; /* a chunk is a slab of row tiles */

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
        const float *rows = lens_head_rows(L, v0, n, pw->buf);
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
    if (L->head_tiles) kern_pack_row_tiles(L->head_bf16 + (size_t)v0 * dim, n, dim, L->head_tiles + kern_row_tiles_size(v0, dim));
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
    /* For a map of many neurons (L->row_tiles), where the BF16 product runs
     * on tiles, the head is also packed once as row tiles, as large as the
     * BF16 head (1 GiB for Llama 3's; filling it costs 0.3–0.5 CPU s of page
     * faults on a VM): every pass over it then reads them in place instead
     * of copying each slab (a tenth of the product's time). */
    if (L->row_tiles && kern_row_tiles_pay()) L->head_tiles = xmalloc64(kern_row_tiles_size(L->vocab, L->dim) * sizeof *L->head_tiles);
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


/* Which neurons the BF16 pass would almost surely not help. A neuron's
 * lse_bound is lse_width(share, b_max) + lse_rounding: b_max is known
 * before the pass (the factors α, β, ε and the head's row norms), share —
 * the part of its softmax outside its top candidates — only after it, and
 * the bound rises with it. When even share = PF_SHARE_MIN would leave the
 * bound wider than prob_tol, the neuron could only be certified if its top
 * candidates held more than 1 − PF_SHARE_MIN of its probability; otherwise
 * it would need the exact normaliser, a full FP32 pass after the BF16 one
 * (1.5 times the exact map's work). Such a neuron is mapped exactly from
 * the start: the same ids and logits (the same kernel), its normaliser
 * exact, no slower than the exact map. On an 8B-shaped head (vocabulary
 * 128,256, b_max ≈ 0.19, share ≈ 1) that is every neuron at the default
 * 1e-4, so `--prefilter` costs the exact map's time, not 1.5 times it; on
 * stories260K (512 tokens: a few candidates often hold most of the mass)
 * a wide tolerance still certifies most neurons through the pass.
 * PF_SHARE_MIN is a judgement, not a bound: a neuron sent exact wrongly
 * costs time, never accuracy. */
#define PF_SHARE_MIN 0.01

static int pf_hopeless(const Lens *L, PFactors f) {
    return !(lse_width(PF_SHARE_MIN, pf_b_max(L, f)) + lse_rounding(L) <= L->prob_tol);
}

void lens_prefilter_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                           void (*side)(void *), void *side_arg) {
    int dim = L->dim, n_exact = 0;
    uint16_t *hi = xmalloc((size_t)count * dim * sizeof *hi);
    PFactors *fac = xmalloc((size_t)count * sizeof *fac);
    PPrep prep = { .L = L, .vecs = vecs, .hi = hi, .fac = fac };
    pool_run(L->pool, count, pf_prep_task, &prep);
    int *which = xmalloc((size_t)count * sizeof *which); /* the hopeful first, then the hopeless */
    for (int i = 0, front = 0, back = count; i < count; i++) {
        if (pf_hopeless(L, fac[i])) which[--back] = i, n_exact++;
        else which[front++] = i;
    }
    int n_pass = count - n_exact;
    if (n_exact == 0) {
        pf_decode(L, vecs, hi, fac, count, top_k, bottom_k, out, side, side_arg);
    } else if (n_pass == 0) {
        lens_exact_decode(L, vecs, count, top_k, bottom_k, out, side, side_arg);
    } else {
        /* Row w of one gathered batch is neuron which[w]: the hopeful
         * rows through the BF16 pass, the rest exactly, copied back. */
        float *sub = xmalloc((size_t)count * dim * sizeof *sub);
        uint16_t *sub_hi = xmalloc((size_t)n_pass * dim * sizeof *sub_hi);
        PFactors *sub_fac = xmalloc((size_t)n_pass * sizeof *sub_fac);
        for (int w = 0; w < count; w++) {
            memcpy(sub + (size_t)w * dim, vecs + (size_t)which[w] * dim, (size_t)dim * sizeof *sub);
            if (w >= n_pass) continue;
            memcpy(sub_hi + (size_t)w * dim, hi + (size_t)which[w] * dim, (size_t)dim * sizeof *sub_hi);
            sub_fac[w] = fac[which[w]];
        }
        LensBatch b;
        lens_batch_init(&b, count, top_k, bottom_k);
        pf_decode(L, sub, sub_hi, sub_fac, n_pass, top_k, bottom_k, b.r, side, side_arg);
        lens_exact_decode(L, sub + (size_t)n_pass * dim, n_exact, top_k, bottom_k, b.r + n_pass, NULL, NULL);
        for (int w = 0; w < count; w++) {
            LensResult *r = &out[which[w]];
            memcpy(r->top, b.r[w].top, (size_t)top_k * sizeof *r->top);
            memcpy(r->bottom, b.r[w].bottom, (size_t)bottom_k * sizeof *r->bottom);
            r->lse = b.r[w].lse;
            r->lse_bound = b.r[w].lse_bound;
        }
        lens_batch_free(&b);
        free(sub), free(sub_hi), free(sub_fac);
    }
    if (n_exact) { /* pf_decode counted its own */
        atomic_fetch_add(&L->stats->neurons, n_exact);
        atomic_fetch_add(&L->stats->exact_lse, n_exact);
        atomic_fetch_add(&L->stats->routed, n_exact);
    }
    free(which), free(hi), free(fac);
}

/* ----------------------------------------------------------------------------
 * The decode: exact or prefiltered, then the non-finite check */

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

void lens_decode_beside(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out,
                        void (*side)(void *), void *side_arg) {
    if (count <= 0) {
        if (side) side(side_arg);
        return;
    }
    if (L->prefilter) lens_prefilter_decode(L, vecs, count, top_k, bottom_k, out, side, side_arg);
    else lens_exact_decode(L, vecs, count, top_k, bottom_k, out, side, side_arg);
    flag_nonfinite(vecs, L->dim, count, top_k, bottom_k, out);
}

void lens_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out) {
    lens_decode_beside(L, vecs, count, top_k, bottom_k, out, NULL, NULL);
}

