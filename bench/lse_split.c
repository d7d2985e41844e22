/* lse_split.c — issue 20's research item, measured (a benchmark, not a test):
 * can the certified map's exact normaliser, lse = log Σ_v e^(W_v·x) over
 * the whole vocabulary, run on the BF16 tile engine (AMX) instead of the
 * FP32 FMA pass, with a proven error bound?
 *
 *   make build/opt/bench/lse_split
 *   build/opt/bench/lse_split MODEL [NEURONS [RUNS]]     (64 and 3 by default)
 *
 * MODEL: a BF16 model, e.g. the 8B-shaped layer `KEEP=DIR bench/map.sh`
 * keeps (DIR/llama-8b-1layer). Up rows 0..NEURONS−1 of layer 0, normed as
 * the map norms them (lens_neuron_vectors, --norm full), one thread, the
 * kernel set of `neuromap --version` (NEUROMAP_ISA=avx512bf16 runs the
 * BF16 variants on VDPBF16PS instead of AMX). Variants, timed in turns
 * (median of RUNS), each giving all NEURONS × vocabulary logits:
 *
 *   fp32        kern_gemm_f32: the exact map's FMA chain (BF16 head widened)
 *   bf16 P=1..3 x split into P BF16 pieces, each piece a column of one
 *               kern_gemm_bf16 (AMX: TDPBF16PS), the P sums added in
 *               double, rounded to float once
 *   ... Kb=n    the same, K cut into blocks of n, each block's product
 *               started from zero (one kern_gemm_bf16 call per block), the
 *               blocks' sums added in double too
 *
 * Per variant: CPU seconds per neuron and FP32-equivalent GFLOP/s of the
 * product (2·V·K per neuron; the exponentials are the same work for every
 * variant and not timed); against a double-precision reference computed
 * here (products of a BF16 and an FP32 value are exact in double, the sum's
 * error ~K·2⁻⁵³ relative), the actual error of the normaliser (every
 * probability inherits it as a relative error) and of every probability
 * e^(l_v − lse) (the logits' own errors included); and the proven bounds,
 * checked: every logit within its B_v and every normaliser within its bound
 * (else the exit status is 1).
 *
 * ----------------------------------------------------------------------------
 * The bound
 *
 * The head is BF16, so W_v is exact in BF16 and only x needs splitting:
 * h_1 = bf16(x), h_2 = bf16(x − h_1), h_3 = bf16(x − h_1 − h_2), each
 * difference exact in FP32 (a float minus its own rounding to fewer bits),
 * pieces below 2⁻¹²⁶ set to zero here (the hardware would read them as
 * zero), r = x − Σ h_p the residual: |r_i| ≤ 2⁻⁹|x_i| for P = 1, ≈ 2⁻¹⁷
 * for P = 2, 0 for P = 3 unless a piece underflowed (24 significant bits =
 * 3 × 8, each rounding to nearest leaving the next piece a sign bit free).
 *
 * The tile engine returns, per piece and K block, the FP32 sum of the exact
 * products W_vi·h_pi with at most Kb roundings in some order (kernels_amx.c;
 * any addition tree of Kb terms has depth ≤ Kb), so with γ_n = n·u/(1 − n·u),
 * u = 2⁻²⁴:
 *
 *   |S_pb − W_v·h_p|_b| ≤ γ_Kb · Σ_{i∈b} |W_vi||h_pi|           (+ flushes)
 *
 * The P·(K/Kb) partial sums are added in double (each addition within
 * 2⁻⁵³ of the running sum, itself ≤ (1 + γ_Kb)·Σ_p Σ_i |W_vi||h_pi|) and
 * the total rounded to float once (2⁻²⁴ of it). Altogether
 *
 *   |S_v − W_v·x| ≤ g · Σ_p Σ_i |W_vi||h_pi| + Σ_i |W_vi||r_i| + ε,     (1)
 *   g = (γ_Kb + P·(K/Kb)·2⁻⁵²)·(1 + 2⁻²³) + 2⁻²⁴
 *
 * ε: TDPBF16PS flushes subnormal products and sums, at most 2⁻¹²⁶·(|W|max
 * + |h|max + 2) per step (decode.c): ~1e-33, never binding.
 * The FP32 FMA chain (variant fp32) has |R_v − W_v·x| ≤ γ_K·Σ_i |W_vi||x_i|.
 *
 * Two ways to make (1) a number per logit:
 *  - "C–S" (free, what decode.c does): Σ_i |W_vi||h_pi| ≤ ‖W_v‖‖h_p‖ and
 *    Σ|W_vi||r_i| ≤ ‖W_v‖‖r‖: one row norm per token, three vector norms
 *    per neuron.
 *  - "|W||x|" (tighter; costs one more pass, of |W| against |h_1|, which is
 *    a 1-piece product with a bound of its own): Σ_p |h_pi| ≤ (1 + 2⁻⁷)|x_i|
 *    and |r_i| ≤ ρ|x_i| (ρ the largest |r_i|/|x_i| of the neuron), so
 *    (1) ≤ (g·(1 + 2⁻⁷) + ρ)·Σ_i |W_vi||x_i|. Reported here from
 *    Σ|W_vi||x_i| in double, as a what-if, per logit the smaller of the
 *    two (C–S can be the smaller for P = 1: ‖r‖ is an average, ρ a max).
 *
 * From logits to the normaliser: with every logit within B_v of its true
 * value, Σ e^(l_v) ≤ Σ e^(S_v + B_v) = Ẑ·Σ_v p̂_v e^(B_v) (p̂ the variant's
 * own probabilities), so lse − l̂se ≤ log Σ p̂_v e^(B_v), and likewise
 * l̂se − lse ≤ −log Σ p̂_v e^(−B_v): the larger is the proven bound on
 * |l̂se − lse|, at most max_v B_v. A probability whose logit is exact (the
 * map's top and bottom tokens are rescored in FP32) is then within
 * e^(±bound) of its true value; any probability within e^(±(B_v + bound)).
 *
 * What this shows (docs/BENCHMARKS.md, "Exact normaliser at AMX speed"):
 * the split removes the representation error (‖lo‖, the BF16 pass's main
 * term), but what is left, γ_K·Σ|W||x|, is the accumulation's rounding,
 * and that is also the FP32 pass's own bound: no number of pieces brings a
 * worst-case bound below it without shorter chains (Kb), and the chains
 * inside TDPBF16PS are never shorter than one tile step (32 products).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "base/util.h"
#include "formats/registry.h"
#include "lens/lens.h"
#include "tensor/dtype.h"
#include "tensor/kernels.h"

enum { TV = 256, MAXN = 1024 };

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double gam(double n) { return n * 0x1p-24 / (1 - n * 0x1p-24); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ----------------------------------------------------------------------------
 * The reference: every logit in double, and Σ_i |W_vi||x_i| (for the tight
 * bound), N neurons at once so that the loop over neurons vectorises (each
 * neuron its own chain: no reassociation needed). xt: K × N, transposed. */
#if defined(__x86_64__) && !defined(NM_NO_X86)
#define CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#else
#define CLONES(...)
#endif

CLONES("avx512f", "avx2", "default") static void reference(const uint16_t *head, int V, int K, int N,
                                                                                  const double *xt, double *ref, double *abs_dot) {
    double acc[MAXN], aacc[MAXN], *xa = xmalloc((size_t)K * N * sizeof *xa);
    for (size_t i = 0; i < (size_t)K * N; i++) xa[i] = fabs(xt[i]);
    for (int v = 0; v < V; v++) {
        const uint16_t *w = head + (size_t)v * K;
        for (int n = 0; n < N; n++) acc[n] = aacc[n] = 0;
        for (int i = 0; i < K; i++) {
            double wi = kern_f32(w[i]), wa = fabs(wi);
            const double *xr = xt + (size_t)i * N, *ar = xa + (size_t)i * N;
            for (int n = 0; n < N; n++) acc[n] += wi * xr[n], aacc[n] += wa * ar[n];
        }
        for (int n = 0; n < N; n++) ref[(size_t)n * V + v] = acc[n], abs_dot[(size_t)n * V + v] = aacc[n];
    }
    free(xa);
}

/* ----------------------------------------------------------------------------
 * The variants: all N × V logits into out (neuron-major), in tiles of TV
 * head rows. */

typedef struct {
    const char *name;
    int pieces, kb; /* 0 pieces: the FP32 pass; kb = K: one block */
    double secs[16];
    int runs;
} Variant;

/* A neuron's split: ‖x‖, Σ_p ‖h_p‖ over the P pieces used, ‖r‖ and ρ =
 * max |r_i|/|x_i| of the residual, the largest |piece|. */
typedef struct {
    double x_norm, h_norm_sum, r_norm, rho, hmax;
} Split;

typedef struct {
    const uint16_t *head;
    int V, K, N;
    const float *x;   /* N × K normed vectors */
    float *packed32;  /* kern_pack_f32(x) */
    uint16_t *pieces; /* 3 × N × K: piece p of neuron n at (p·N + n)·K */
    float *c;         /* a tile: TV × ldc floats */
    double *acc;      /* the pieces' and blocks' sums: TV × ldc doubles */
    int ldc;
} Bench;

static void run_fp32(Bench *b, float *out) {
    const void *rows[TV];
    for (int v0 = 0; v0 < b->V; v0 += TV) {
        int nv = b->V - v0 < TV ? b->V - v0 : TV;
        for (int r = 0; r < nv; r++) rows[r] = b->head + (size_t)(v0 + r) * b->K;
        kern_gemm_f32(b->packed32, b->N, b->K, rows, 1, nv, b->c, b->ldc);
        for (int r = 0; out && r < nv; r++)
            for (int n = 0; n < b->N; n++) out[(size_t)n * b->V + v0 + r] = b->c[(size_t)r * b->ldc + n];
    }
}

/* A set of N ≤ MAXN vectors: the FP32 packing, the three pieces (and, into
 * sp[P − 1][n], their norms and residuals), a tile of sums. */
static void bench_init(Bench *b, const uint16_t *head, int V, int K, const float *x, int N, Split sp[3][MAXN]) {
    *b = (Bench){ .head = head, .V = V, .K = K, .N = N, .x = x, .ldc = kern_padded(3 * N) + 16 };
    b->packed32 = xmalloc((size_t)kern_padded(N) * K * sizeof *b->packed32);
    kern_pack_f32(x, N, K, b->packed32);
    b->c = xmalloc((size_t)TV * b->ldc * sizeof *b->c);
    b->acc = xmalloc((size_t)TV * b->ldc * sizeof *b->acc);
    b->pieces = xmalloc((size_t)3 * N * K * sizeof *b->pieces);
    for (int n = 0; n < N; n++) {
        double hn[3] = { 0 }, rn[3] = { 0 }, rho[3] = { 0 }, xx = 0, hmax = 0;
        for (int i = 0; i < K; i++) {
            float rest = x[(size_t)n * K + i];
            xx += (double)rest * rest;
            for (int p = 0; p < 3; p++) {
                uint16_t h = kern_bf16(rest);
                if (fabsf(kern_f32(h)) < 0x1p-126f) h = 0; /* read as zero by the hardware */
                b->pieces[((size_t)p * N + n) * K + i] = h;
                double hd = kern_f32(h), r = (double)rest - hd; /* exact */
                rest = (float)r;
                hn[p] += hd * hd, rn[p] += r * r, hmax = fmax(hmax, fabs(hd));
                if (x[(size_t)n * K + i] != 0) rho[p] = fmax(rho[p], fabs(r / x[(size_t)n * K + i]));
            }
        }
        for (int P = 1; sp && P <= 3; P++) {
            Split *s = &sp[P - 1][n];
            *s = (Split){ .x_norm = sqrt(xx) * (1 + 0x1p-30), .r_norm = sqrt(rn[P - 1]) * (1 + 0x1p-30),
                          .rho = rho[P - 1] * (1 + 0x1p-30), .hmax = hmax };
            for (int p = 0; p < P; p++) s->h_norm_sum += sqrt(hn[p]) * (1 + 0x1p-30);
        }
    }
}

static void bench_free(Bench *b) { free(b->packed32), free(b->c), free(b->acc), free(b->pieces); }

/* P pieces as P·N columns of one product per K block; packed: per block,
 * kern_pack_bf16 of the P·N vectors' slice. */
static uint16_t *pack_blocks(const Bench *b, int P, int kb) {
    int m = P * b->N, nb = b->K / kb;
    size_t per = (size_t)kern_padded(m) * kb;
    uint16_t *slice = xmalloc((size_t)m * kb * sizeof *slice), *packed = xmalloc(nb * per * sizeof *packed);
    for (int blk = 0; blk < nb; blk++) {
        for (int j = 0; j < m; j++) memcpy(slice + (size_t)j * kb, b->pieces + (size_t)j * b->K + (size_t)blk * kb, (size_t)kb * 2);
        kern_pack_bf16(slice, m, kb, packed + blk * per);
    }
    free(slice);
    return packed;
}

CLONES("avx512f", "default") static void run_bf16(Bench *b, const uint16_t *packed, int P, int kb, float *out) {
    const uint16_t *rows[TV];
    int m = P * b->N, nb = b->K / kb, N = b->N, ldc = b->ldc;
    size_t per = (size_t)kern_padded(m) * kb;
    for (int v0 = 0; v0 < b->V; v0 += TV) {
        int nv = b->V - v0 < TV ? b->V - v0 : TV;
        for (int blk = 0; blk < nb; blk++) {
            for (int r = 0; r < nv; r++) rows[r] = b->head + (size_t)(v0 + r) * b->K + (size_t)blk * kb;
            kern_gemm_bf16(packed + blk * per, m, kb, rows, nv, b->c, ldc);
            /* the pieces' (and blocks') sums added in double */
            for (int r = 0; r < nv; r++) {
                const float *cr = b->c + (size_t)r * ldc;
                double *ar = b->acc + (size_t)r * ldc;
                for (int n = 0; n < N; n++) {
                    double s = blk ? ar[n] : 0;
                    for (int p = P - 1; p >= 0; p--) s += cr[p * N + n]; /* smallest piece first */
                    ar[n] = s;
                }
            }
        }
        if (out) /* rounded to float once: the logits the map's scans would take */
            for (int r = 0; r < nv; r++)
                for (int n = 0; n < N; n++) out[(size_t)n * b->V + v0 + r] = (float)b->acc[(size_t)r * ldc + n];
    }
}

/* ----------------------------------------------------------------------------
 * Errors and bounds of one variant's logits */

typedef struct {
    double lse_max, lse_mean;     /* |l̂se − lse|: the normaliser's relative error on every probability (as expm1) */
    double prob_max;              /* max over neurons and tokens of |p̂_v/p_v − 1| */
    double bound_cs, bound_tight; /* proven bound on |l̂se − lse|, max over neurons */
    double logit_cs;              /* max B_v (C–S) */
    long long logit_viol, lse_viol; /* logits beyond their B_v, neurons beyond their lse bound: must be 0 */
} Errors;

static double lse_of(const double *l, int V) {
    double m = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) m = fmax(m, l[v]);
    for (int v = 0; v < V; v++) s += exp(l[v] - m);
    return m + log(s);
}

/* log-space bound from per-logit bounds B_v = a·row[v] + eps and the
 * variant's own probabilities. */
static double lse_bound(const double *l, double lse, int V, const double *row, double a, const double *row2, double a2,
                        double eps) {
    double up = 0, down = 0;
    for (int v = 0; v < V; v++) {
        double p = exp(l[v] - lse), bv = a * row[v] + eps;
        if (row2) bv = fmin(bv, a2 * row2[v] + eps);
        up += p * exp(bv), down += p * exp(-bv);
    }
    return fmax(log(up), -log(down)) * (1 + 0x1p-20) + 0x1p-40; /* room for this double arithmetic */
}

/* LSE_SPLIT_BOUND_SCALE (default 1) scales every bound: 0.01 (logits) and
 * 1e-5 (normalisers) show that the checks can fail (exit status 1). */
static double bound_scale = 1;

static Errors measure(const Bench *b, const Variant *var, const float *out, const double *ref, const double *ref_lse,
                      const double *abs_dot, const double *row_norm, double row_norm_max, double head_max, const Split *sp) {
    Errors e = { 0 };
    int V = b->V, K = b->K, P = var->pieces, kb = var->kb;
    double *l = xmalloc((size_t)V * sizeof *l);
    for (int n = 0; n < b->N; n++) {
        for (int v = 0; v < V; v++) l[v] = out[(size_t)n * V + v];
        double lse = lse_of(l, V), d = fabs(lse - ref_lse[n]);
        e.lse_max = fmax(e.lse_max, d), e.lse_mean += d / b->N;
        for (int v = 0; v < V; v++) {
            double q = fabs(expm1((l[v] - lse) - (ref[(size_t)n * V + v] - ref_lse[n])));
            e.prob_max = fmax(e.prob_max, q);
        }
        /* (1) in its two forms: B_v = a_cs·‖W_v‖ + eps, or a_t·Σ|W_vi||x_i| + eps */
        double a_cs, a_t, eps;
        const Split *s = &sp[n];
        if (P == 0) {
            a_cs = gam(K) * s->x_norm, a_t = gam(K), eps = K * 0x1p-149;
        } else {
            /* the P·K/Kb partial sums added in double, rounded to float once */
            double g = (gam(kb) + P * K / kb * 0x1p-52) * (1 + 0x1p-23) + 0x1p-24;
            a_cs = g * s->h_norm_sum + s->r_norm;
            a_t = g * (1 + 0x1p-7) + s->rho;
            eps = (double)P * K * (0x1p-125 * (head_max + s->hmax + 2) + 0x1p-149);
        }
        a_cs *= bound_scale, a_t *= bound_scale, eps *= bound_scale;
        /* every logit within the better of its two B_v (the reference's own
         * error, K·2⁻⁵² of Σ|W||x|, allowed for) */
        for (int v = 0; v < V; v++) {
            double ad = abs_dot[(size_t)n * V + v], bv = fmin(a_cs * row_norm[v], a_t * ad) + eps;
            e.logit_viol += fabs(l[v] - ref[(size_t)n * V + v]) > bv + K * 0x1p-52 * ad;
        }
        e.logit_cs = fmax(e.logit_cs, a_cs * row_norm_max + eps);
        e.bound_cs = fmax(e.bound_cs, lse_bound(l, lse, V, row_norm, a_cs, NULL, 0, eps));
        double bt = lse_bound(l, lse, V, row_norm, a_cs, abs_dot + (size_t)n * V, a_t, eps);
        e.bound_tight = fmax(e.bound_tight, bt);
        e.lse_viol += d > bt;
    }
    free(l);
    return e;
}

/* ----------------------------------------------------------------------------
 * main */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: lse_split MODEL [NEURONS [RUNS [TIME_NEURONS]]]  (a BF16 model, e.g. bench/map.sh's layer)\n");
        return 2;
    }
    int N = argc > 2 ? atoi(argv[2]) : 64, runs = argc > 3 ? atoi(argv[3]) : 3, T = argc > 4 ? atoi(argv[4]) : 1024;
    if (N < 1 || N > MAXN || runs < 1 || runs > 16 || T < 1 || T > 8192) {
        fprintf(stderr, "lse_split: NEURONS 1..%d, RUNS 1..16, TIME_NEURONS 1..8192\n", MAXN);
        return 2;
    }
    Error err = { 0 };
    Model m;
    ModelOpenOptions opt = { .need_weights = 1 };
    Lens L;
    if (cpu_isa_from_env(&err) || model_open(&m, argv[1], &opt, &err) || lens_open(&L, &m, NORM_FULL, 1, 0, &err)) {
        fprintf(stderr, "lse_split: %s\n", err.msg);
        return 1;
    }
    if (dtype_info(m.output->type)->plain != PLAIN_BF16 || L.dim % 512) {
        fprintf(stderr, "lse_split: %s: wants a BF16 LM head and a hidden size that is a multiple of 512\n", argv[1]);
        return 2;
    }
    int V = L.vocab, K = L.dim;
    if (getenv("LSE_SPLIT_BOUND_SCALE")) bound_scale = atof(getenv("LSE_SPLIT_BOUND_SCALE"));
    const uint16_t *head = m.output->data;
    Variant vars[] = {
        { "fp32 FMA (kern_gemm_f32)", 0, K, { 0 }, 0 },
        { "exact map (lens_decode, 1 thread)", -1, K, { 0 }, 0 },
        { "bf16 P=1", 1, K, { 0 }, 0 },
        { "bf16 P=2", 2, K, { 0 }, 0 },
        { "bf16 P=3", 3, K, { 0 }, 0 },
        { "bf16 P=2 Kb=512", 2, 512, { 0 }, 0 },
        { "bf16 P=3 Kb=512", 3, 512, { 0 }, 0 },
        { "bf16 P=3 Kb=128", 3, 128, { 0 }, 0 },
        { "bf16 P=3 Kb=64", 3, 64, { 0 }, 0 },
        { "bf16 P=3 Kb=32", 3, 32, { 0 }, 0 },
    };
    int n_vars = (int)(sizeof vars / sizeof *vars);

    /* the head's row norms (rounded up) and largest element */
    double *row_norm = xmalloc((size_t)V * sizeof *row_norm), row_norm_max = 0;
    float head_max = 0;
    for (int v = 0; v < V; v++) {
        row_norm[v] = sqrt(kern_sumsq_bf16(head + (size_t)v * K, K, &head_max)) * (1 + 0x1p-30);
        row_norm_max = fmax(row_norm_max, row_norm[v]);
    }

    /* ---- errors: N neurons against the double reference ---- */
    static Split sp[3][MAXN];
    float *x = xmalloc((size_t)N * K * sizeof *x);
    lens_neuron_vectors(&L, MATRIX_UP, 0, 0, N, x);
    Bench b;
    bench_init(&b, head, V, K, x, N, sp);
    double t0 = cpu_now();
    double *xt = xmalloc((size_t)K * N * sizeof *xt), *ref = xmalloc((size_t)N * V * sizeof *ref),
           *abs_dot = xmalloc((size_t)N * V * sizeof *abs_dot), *ref_lse = xmalloc((size_t)N * sizeof *ref_lse);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < K; i++) xt[(size_t)i * N + n] = x[(size_t)n * K + i];
    reference(head, V, K, N, xt, ref, abs_dot);
    for (int n = 0; n < N; n++) ref_lse[n] = lse_of(ref + (size_t)n * V, V);
    double t_ref = cpu_now() - t0;
    float *out = xmalloc((size_t)N * V * sizeof *out);
    Errors errs[16];
    for (int vi = 0; vi < n_vars; vi++) {
        Variant *var = &vars[vi];
        if (var->pieces < 0) continue;
        if (var->pieces == 0) {
            run_fp32(&b, out);
        } else {
            uint16_t *packed = pack_blocks(&b, var->pieces, var->kb);
            run_bf16(&b, packed, var->pieces, var->kb, out);
            free(packed);
        }
        errs[vi] = measure(&b, var, out, ref, ref_lse, abs_dot, row_norm, row_norm_max, head_max, sp[var->pieces ? var->pieces - 1 : 0]);
    }
    /* the library's own exact normaliser, as a check of the reference */
    LensBatch lb;
    lens_batch_init(&lb, N, 1, 0);
    lens_decode(&L, x, N, 1, 0, lb.r);
    double lib_d = 0;
    for (int n = 0; n < N; n++) lib_d = fmax(lib_d, fabs(lb.r[n].lse - ref_lse[n]));
    lens_batch_free(&lb);
    double mean_x = 0, mean_w = 0, mean_abs = 0;
    for (int n = 0; n < N; n++) mean_x += sp[0][n].x_norm / N;
    for (int v = 0; v < V; v++) mean_w += row_norm[v] / V;
    for (size_t i = 0; i < (size_t)N * V; i++) mean_abs += abs_dot[i] / ((double)N * V);
    free(out), free(xt), free(ref), free(abs_dot), free(ref_lse), free(x);
    bench_free(&b);

    /* ---- times: T neurons in groups shaped like the map's blocks ----
     * The map's BF16 pass multiplies 1024 columns per block (decode.c);
     * here a group is 1024/P columns' worth of neurons, so that every
     * variant's tile of sums is as large as the map's; the FP32 pass takes
     * the exact map's 512 neurons per tile. Variants in turns, RUNS rounds. */
    float *xs = xmalloc((size_t)T * K * sizeof *xs);
    lens_neuron_vectors(&L, MATRIX_UP, 0, 0, T, xs);
    for (int r = 0; r < runs; r++) {
        for (int vi = 0; vi < n_vars; vi++) {
            Variant *var = &vars[vi];
            int G = var->pieces <= 0 ? 512 : MAXN / var->pieces / 32 * 32;
            double t = 0;
            if (var->pieces < 0) { /* the whole exact decode: tiles, Σ exp, top-1 */
                LensBatch tb;
                lens_batch_init(&tb, T, 1, 0);
                double t1 = cpu_now();
                lens_decode(&L, xs, T, 1, 0, tb.r);
                var->secs[var->runs++] = cpu_now() - t1;
                lens_batch_free(&tb);
                continue;
            }
            for (int g0 = 0; g0 < T; g0 += G) {
                int g = T - g0 < G ? T - g0 : G;
                Bench bg;
                bench_init(&bg, head, V, K, xs + (size_t)g0 * K, g, NULL);
                double t1 = cpu_now();
                if (var->pieces == 0) {
                    run_fp32(&bg, NULL);
                } else {
                    uint16_t *packed = pack_blocks(&bg, var->pieces, var->kb);
                    run_bf16(&bg, packed, var->pieces, var->kb, NULL);
                    free(packed);
                }
                t += cpu_now() - t1;
                bench_free(&bg);
            }
            var->secs[var->runs++] = t;
        }
    }
    free(xs);

    printf("lse_split: %s, vocabulary %d, K %d, 1 thread, kernel set %s\n", argv[1], V, K, isa_name(cpu_isa()));
    printf("errors: up neurons 0..%d of layer 0 (--norm full) against double (%.0f CPU s; the library's exact map's lse within %.2g of it)\n",
           N - 1, t_ref, lib_d);
    printf("‖x‖ mean %.3g, ‖W_v‖ mean %.3g max %.3g, Σ|W_vi||x_i| mean %.3g\n", mean_x, mean_w, row_norm_max, mean_abs);
    printf("times: up neurons 0..%d, median of %d rounds, the product (and the pieces' sums) only\n\n", T - 1, runs);
    printf("| variant | CPU ms/neuron | GFLOP/s eq. | speed vs fp32 | \\|Δlse\\| max (mean) | max prob err | proven \\|Δlse\\| (C–S) | proven (+Σ\\|W\\|\\|x\\|) | max B_v (C–S) |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    double fp32_med = 0;
    for (int vi = 0; vi < n_vars; vi++) {
        Variant *var = &vars[vi];
        qsort(var->secs, (size_t)var->runs, sizeof *var->secs, cmp_double);
        double med = var->runs % 2 ? var->secs[var->runs / 2] : (var->secs[var->runs / 2 - 1] + var->secs[var->runs / 2]) / 2;
        if (vi == 0) fp32_med = med;
        Errors *e = &errs[vi];
        if (var->pieces < 0) {
            printf("| %s | %.2f | %.0f | %.2f | as fp32 | | | | |\n", var->name, 1e3 * med / T, 2.0 * V * K * T / med * 1e-9, fp32_med / med);
            continue;
        }
        printf("| %s | %.2f | %.0f | %.2f | %.2e (%.1e) | %.2e | %.2e | %.2e | %.2e |\n", var->name, 1e3 * med / T,
               2.0 * V * K * T / med * 1e-9, fp32_med / med, e->lse_max, e->lse_mean, e->prob_max, e->bound_cs, e->bound_tight,
               e->logit_cs);
    }
    long long lv = 0, sv = 0;
    for (int vi = 0; vi < n_vars; vi++)
        if (vars[vi].pieces >= 0) lv += errs[vi].logit_viol, sv += errs[vi].lse_viol;
    printf("\nchecks: %lld logits beyond their proven B_v, %lld normalisers beyond their proven bound%s\n", lv, sv,
           bound_scale != 1 ? " (bounds scaled by LSE_SPLIT_BOUND_SCALE)" : "");
    free(row_norm);
    lens_close(&L);
    model_close(&m);
    return lv || sv ? 1 : 0;
}
