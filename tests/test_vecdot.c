/* test_vecdot.c — the fast path's dot products (tensor/vecdot.h) and the
 * forward pass that runs on them.
 *
 * Kernels: every type, every kernel set this CPU has (forced as NEUROMAP_ISA
 * would), random blocks, odd block counts and odd lengths, against a double
 * computation written here: the weights widened by the dtype table (checked
 * bit-exact against llama.cpp's dequantisation by test_gguf), the
 * activation blocks read back here as d·q. The activation quantisation is
 * checked on its own: |x - d·q| ≤ d/2, and the block sums.
 *
 * Forward: on the fast path, llama.cpp's greedy ids and teacher-forced top-1
 * wherever its recorded margin is clear; logits bit-identical for 1 and 3
 * threads, and between a batch and token-by-token decode; a capture (the
 * activations commands) gets the exact path whatever was asked.
 *
 * Attention: tensor/attn.h under every kernel set, head_dim 13/37/64/128, GQA
 * ratios 1/4/8, F32 and F16 caches, against a double softmax written here;
 * a batch of tokens and one call per token give the same bits.
 */
#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>

#include "base/cpu.h"
#include "check.h"
#include "formats/registry.h"
#include "infer/forward.h"
#include "infer/sampler.h"
#include "model/model.h"
#include "tensor/attn.h"
#include "tensor/half.h"
#include "tensor/kernels.h"
#include "tensor/vecdot.h"

/* ----------------------------------------------------------------------------
 * Random blocks */

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / 16777216.0f; }

static void put_f16(uint8_t *p, float v) {
    uint16_t h = f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* nb random blocks of type t; the f16 scales set to sane values. */
static void random_row(DType t, uint8_t *w, int64_t n) {
    const DTypeTraits *ti = dtype_info(t);
    if (t == DT_BF16 || t == DT_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t == DT_BF16 ? f32_to_bf16(uniform(-1, 1)) : f32_to_f16(uniform(-1, 1));
            memcpy(w + 2 * i, &h, 2);
        }
        return;
    }
    int64_t nb = n / ti->block_size;
    for (size_t i = 0; i < (size_t)nb * ti->block_bytes; i++) w[i] = (uint8_t)next_u32();
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *p = w + (size_t)b * ti->block_bytes;
        if (t == DT_Q6_K) {
            put_f16(p + 208, uniform(0.001f, 0.01f));
        } else {
            put_f16(p, uniform(0.001f, 0.05f));
            if (t == DT_Q4_K || t == DT_Q5_K) put_f16(p + 2, uniform(0.0f, 0.02f));
        }
    }
}

/* Activations: uniform, one block all zero, one with an outlier. */
static void random_x(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = uniform(-2, 2);
    if (n >= 64) memset(x + 32, 0, 32 * sizeof *x);
    x[n - 1] = 40.0f;
}

/* ----------------------------------------------------------------------------
 * The activation, read back here */

/* The dequantised activation (d·q) into a, n values; 0 when a block breaks
 * the contract (q beyond ±127, a wrong sum, |x - d·q| > d/2). */
static int read_act(DType t, const void *act, const float *x, int64_t n, double *a) {
    int ok = 1;
    if ((t == DT_BF16 || t == DT_F16) && vecdot_act_bytes(t, n) == (size_t)n * 2) {
        /* BF16 rows under AVX-512 BF16: x rounded to BF16, within half an
         * ulp (2^-8 of |x| at most), NaN and infinity kept. */
        for (int64_t i = 0; i < n; i++) {
            a[i] = bf16_to_f32(((const uint16_t *)act)[i]);
            ok &= isfinite(x[i]) ? fabs(a[i] - x[i]) <= ldexp(fabs(x[i]), -8) : isnan(x[i]) ? isnan(a[i]) : a[i] == x[i];
        }
        return ok;
    }
    if (t == DT_BF16 || t == DT_F16) {
        for (int64_t i = 0; i < n; i++) a[i] = ((const float *)act)[i];
        return memcmp(act, x, (size_t)n * sizeof *x) == 0;
    }
    int bs = t == DT_Q8_0 || t == DT_Q4_0 ? 32 : 256;
    for (int64_t b = 0; b < n / bs; b++) {
        const int8_t *q;
        double d, amax = 0;
        for (int j = 0; j < bs; j++) amax = fmax(amax, fabs(x[b * bs + j]));
        if (bs == 32) {
            const VecQ8A *q8 = (const VecQ8A *)act + b;
            int s = 0;
            for (int j = 0; j < 32; j++) s += q8->qs[j];
            ok &= s == q8->sum;
            q = q8->qs, d = q8->d;
        } else {
            const VecQ8KA *qk = (const VecQ8KA *)act + b;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++) s += qk->qs[j];
                ok &= s == qk->bsums[g];
            }
            q = qk->qs, d = qk->d;
        }
        ok &= fabs(d - amax / 127) <= 1e-6 * amax / 127;
        for (int j = 0; j < bs; j++) {
            a[b * bs + j] = d * q[j];
            ok &= q[j] >= -127 && fabs(x[b * bs + j] - a[b * bs + j]) <= d / 2 * (1 + 1e-5) + 1e-30;
        }
    }
    return ok;
}

/* ----------------------------------------------------------------------------
 * Kernels against double */

static void check_type(DType t, int64_t n) {
    enum { ROWS = 3, STRIDE = 2 };
    size_t rb = dtype_bytes(t, n);
    uint8_t *w = malloc(rb * ROWS);
    float *x = malloc((size_t)n * sizeof *x), *wf = malloc((size_t)n * sizeof *wf), out[ROWS * STRIDE];
    double *a = malloc((size_t)n * sizeof *a);
    void *act = malloc(vecdot_act_bytes(t, n) + 1);
    random_row(t, w, n * ROWS);
    random_x(x, n);
    vecdot_quantize(t, x, n, act);
    CHECK(read_act(t, act, x, n, a), "%s n=%lld: the activation breaks its contract", dtype_name(t), (long long)n);
    vecdot_rows(t, w, ROWS, n, act, out, STRIDE);
    for (int r = 0; r < ROWS; r++) {
        dtype_info(t)->to_float(w + r * rb, wf, n);
        double ref = 0, mag = 0, exact = 0, bound = 0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)wf[i] * a[i];
            mag += fabs((double)wf[i] * a[i]);
            exact += (double)wf[i] * x[i];
            bound += fabs((double)wf[i]) * fabs(x[i] - a[i]);
        }
        double got = out[r * STRIDE], tol = (1e-6 + 1.2e-7 * (double)n) * mag + 1e-30;
        CHECK(fabs(got - ref) <= tol, "%s n=%lld row %d [%s]: %.9g, double reference %.9g (off %.3g, allowed %.3g)", dtype_name(t),
              (long long)n, r, vecdot_kernel_name(), got, ref, fabs(got - ref), tol);
        /* Against the unquantised x: within Σ|w|·|x - x'| (the documented error). */
        CHECK(fabs(got - exact) <= bound + tol, "%s n=%lld row %d [%s]: %.9g vs exact %.9g beyond the quantisation bound %.3g",
              dtype_name(t), (long long)n, r, vecdot_kernel_name(), got, exact, bound);
    }
    /* A NaN or an infinity in the activation: no row gives a finite result. */
    x[n / 2] = (n & 1) ? INFINITY : NAN;
    vecdot_quantize(t, x, n, act);
    vecdot_rows(t, w, ROWS, n, act, out, STRIDE);
    for (int r = 0; r < ROWS; r++)
        CHECK(!isfinite(out[r * STRIDE]), "%s n=%lld row %d [%s]: a non-finite activation gave a finite %g", dtype_name(t), (long long)n, r,
              vecdot_kernel_name(), out[r * STRIDE]);
    free(w), free(x), free(wf), free(a), free(act);
}

/* The batched product (vecdot_gemm): nr rows × T tokens, sizes that leave
 * tails in every tiling (rows per tile 16, tokens per group 32, the BF16
 * tiles of 2 and 4 tokens): each output against the double computation of
 * its row and token, and bit-identical to the single-token product of that
 * row and token (decode) — a prompt gives the bits decode gives. */
static void check_gemm(DType t, int64_t n, int nr, int T) {
    size_t rb = dtype_bytes(t, n), ab = vecdot_act_bytes(t, n);
    uint8_t *w = malloc(rb * nr);
    float *x = malloc((size_t)n * T * sizeof *x), *wf = malloc((size_t)n * sizeof *wf);
    float *out = malloc((size_t)nr * T * sizeof *out), one;
    double *a = malloc((size_t)n * sizeof *a);
    char *act = malloc(ab * T + 1), *batch = malloc(ab * T + 1); /* each token alone; the batch's form */
    random_row(t, w, n * nr);
    for (int k = 0; k < T; k++) {
        random_x(x + (size_t)k * n, n);
        x[(size_t)k * n + k % n] = -3.0f * (float)k; /* every token different, some with a new block maximum */
        vecdot_quantize(t, x + (size_t)k * n, n, act + (size_t)k * ab);
    }
    vecdot_quantize_batch(t, x, n, T, batch);
    vecdot_gemm(t, w, nr, n, batch, T, out, nr);
    int bad = 0, diff = 0;
    for (int k = 0; k < T; k++) {
        read_act(t, act + (size_t)k * ab, x + (size_t)k * n, n, a);
        for (int r = 0; r < nr; r++) {
            dtype_info(t)->to_float(w + r * rb, wf, n);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) ref += (double)wf[i] * a[i], mag += fabs((double)wf[i] * a[i]);
            double got = out[(size_t)k * nr + r];
            if (!(fabs(got - ref) <= (1e-6 + 1.2e-7 * (double)n) * mag + 1e-30) && bad++ == 0)
                CHECK(0, "%s gemm n=%lld %dx%d [%s]: row %d token %d: %.9g, double reference %.9g", dtype_name(t), (long long)n, nr, T,
                      vecdot_kernel_name(), r, k, got, ref);
            vecdot_rows(t, w + r * rb, 1, n, act + (size_t)k * ab, &one, 1);
            diff += memcmp(&one, &out[(size_t)k * nr + r], sizeof one) != 0;
        }
    }
    CHECK(bad == 0, "%s gemm n=%lld %dx%d [%s]: %d outputs off the double reference", dtype_name(t), (long long)n, nr, T,
          vecdot_kernel_name(), bad);
    CHECK(diff == 0, "%s gemm n=%lld %dx%d [%s]: %d outputs differ from the single-token product's bits", dtype_name(t),
          (long long)n, nr, T, vecdot_kernel_name(), diff);
    free(w), free(x), free(wf), free(out), free(a), free(act), free(batch);
}

/* The amx set's BF16 kernel (tensor/gemm_amx.c): nr rows × T tokens × n
 * values, tails everywhere (16-row and 16-token tiles, 32 k a step; odd n).
 * Each output against the double sum of its BF16 row × the token's BF16
 * activation (read back and checked by read_act), within the tiles'
 * arithmetic: n exact products summed in FP32, one rounding each, at most
 * (n + 2)·2^-24·Σ|w·x| (the 2 for a pair summed before it is added), plus
 * what flushing costs — a subnormal BF16 input read as zero, a subnormal
 * sum flushed: 2^-126·(|w_i| + |x_i| + 1) per product. Some weights are
 * BF16 subnormals. A batch gives decode's bits (the same kernel, T = 1),
 * and the rows split at any point (as threads split them) the same bits. */
static void check_amx(int64_t n, int nr, int T) {
    size_t rb = (size_t)n * 2, ab = vecdot_act_bytes(DT_BF16, n);
    uint16_t *w = malloc(rb * nr);
    float *x = malloc((size_t)n * T * sizeof *x), *out = malloc((size_t)nr * T * sizeof *out), *split = malloc((size_t)nr * T * sizeof *out);
    double *a = malloc((size_t)n * sizeof *a);
    char *act = malloc(ab * T), *batch = malloc(ab * T);
    for (int64_t i = 0; i < n * nr; i++) w[i] = i % 11 == 3 ? (uint16_t)(0x8000 * (i & 1) | (1 + i % 127)) : f32_to_bf16(uniform(-1, 1));
    for (int k = 0; k < T; k++) {
        random_x(x + (size_t)k * n, n);
        vecdot_quantize(DT_BF16, x + (size_t)k * n, n, act + (size_t)k * ab);
    }
    vecdot_quantize_batch(DT_BF16, x, n, T, batch);
    vecdot_gemm(DT_BF16, w, nr, n, batch, T, out, nr);
    int cut = nr / 3 + 1; /* two "threads": rows [0, cut) and [cut, nr) */
    vecdot_gemm(DT_BF16, w, cut, n, batch, T, split, nr);
    if (cut < nr) vecdot_gemm(DT_BF16, w + (size_t)cut * n, nr - cut, n, batch, T, split + cut, nr);
    int bad = 0, diff = 0, ok = 1;
    double worst = 0;
    for (int k = 0; k < T; k++) {
        ok &= read_act(DT_BF16, act + (size_t)k * ab, x + (size_t)k * n, n, a);
        for (int r = 0; r < nr; r++) {
            const uint16_t *h = w + (size_t)r * n;
            double ref = 0, mag = 0, flush = 0;
            for (int64_t i = 0; i < n; i++) {
                double wi = bf16_to_f32(h[i]);
                ref += wi * a[i], mag += fabs(wi * a[i]), flush += fabs(wi) + fabs(a[i]) + 1;
            }
            double got = out[(size_t)k * nr + r], tol = (double)(n + 2) * 0x1p-24 * mag + 0x1p-126 * flush;
            bad += !(fabs(got - ref) <= tol);
            worst = fmax(worst, fabs(got - ref) / tol);
            float one;
            vecdot_rows(DT_BF16, (const char *)h, 1, n, act + (size_t)k * ab, &one, 1);
            diff += memcmp(&one, &out[(size_t)k * nr + r], sizeof one) != 0;
        }
    }
    CHECK(ok, "amx n=%lld %dx%d: the BF16 activation breaks its contract", (long long)n, nr, T);
    CHECK(bad == 0, "amx n=%lld %dx%d: %d outputs off the double reference (worst %.3g of the bound)", (long long)n, nr, T, bad, worst);
    CHECK(diff == 0, "amx n=%lld %dx%d: %d outputs differ from decode's bits", (long long)n, nr, T, diff);
    CHECK(memcmp(out, split, (size_t)nr * T * sizeof *out) == 0, "amx n=%lld %dx%d: rows split at %d give other bits", (long long)n, nr, T, cut);
    free(w), free(x), free(out), free(split), free(a), free(act), free(batch);
}

/* The activation's quantisation in this kernel set gives the portable
 * code's bytes: ties (x/d exactly k + 0.5 rounds away from zero), a zero
 * block, NaN and infinity, for both block forms. gen: the generic set's. */
static void tie_x(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 37) % 255 - 127) * 0.5f; /* d = 63.5/127 = 0.5: x/d = ±k */
    x[0] = 63.5f;                                                                      /* the block maximum */
    for (int64_t i = 1; i < n; i += 7) x[i] = (float)(i % 50) * 0.5f - 6.25f;          /* x/d = k + 0.5: ties */
    if (n >= 512) memset(x + 256, 0, 256 * sizeof *x);
}
static void check_quantize_bytes(DType t, const float *x, int64_t n, const char *gen, const char *what) {
    size_t ab = vecdot_act_bytes(t, n);
    char *act = calloc(1, ab);
    vecdot_quantize(t, x, n, act);
    CHECK(memcmp(act, gen, ab) == 0, "%s quantisation of %s [%s]: bytes differ from the portable code's", dtype_name(t), what,
          vecdot_kernel_name());
    free(act);
}
static void test_quantize_sets(void) {
    enum { N = 1024 };
    static const DType types[] = { DT_Q8_0, DT_Q4_K };
    float x[4][N];
    const char *what[4] = { "ties", "random values", "a NaN", "an infinity" };
    tie_x(x[0], N);
    random_x(x[1], N);
    memcpy(x[2], x[1], sizeof x[1]), x[2][300] = NAN;
    memcpy(x[3], x[1], sizeof x[1]), x[3][700] = -INFINITY;
    Error e = { 0 };
    for (size_t k = 0; k < 2; k++)
        for (int c = 0; c < 4; c++) {
            size_t ab = vecdot_act_bytes(types[k], N);
            char *gen = calloc(1, ab);
            cpu_force_isa(ISA_GENERIC, &e);
            vecdot_quantize(types[k], x[c], N, gen);
            for (int s = ISA_AVX2; s <= (int)cpu_best_isa(); s++) {
                cpu_force_isa((Isa)s, &e);
                check_quantize_bytes(types[k], x[c], N, gen, what[c]);
            }
            free(gen);
        }
    cpu_force_isa(cpu_best_isa(), &e);
}

/* 1 where the CPU has AMX-INT8 (CPUID.7.0:EDX[25]): under the amx set,
 * Q8_0 rows then run on TDPBSSD (gemm_amx.c) with the portable C kernel's
 * float steps, not avx2's. */
static int amx_int8(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d = 0;
    if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, 0, a, b, c, d);
    return d >> 25 & 1;
#else
    return 0;
#endif
}

/* Every kernel set gives the bits of the avx2 set for the quantised types
 * (the int32 lanes are the same exact sums, the float steps the same:
 * gemm_q.h) — but for amx where the CPU has AMX-INT8, whose quantised
 * kernels give the portable C kernel's bits (test_amx checks them) —, for
 * a batch and for decode: shapes with rows and tokens tails
 * and, for Q8_0, rows longer than a chunk of K (64 block pairs) and than
 * its decode kernel's activation buffer (512 pairs). */
static void test_sets_agree(void) {
    static const struct { DType t; int64_t n; int nr, T; } cases[] = {
        { DT_Q8_0, 4192, 6, 5 },  { DT_Q8_0, 4192, 5, 1 }, { DT_Q8_0, 32800, 2, 1 }, { DT_Q8_0, 32800, 1, 2 },
        { DT_Q4_0, 160, 17, 3 },  { DT_Q4_K, 1280, 9, 1 }, { DT_Q4_K, 768, 5, 6 },   { DT_Q5_K, 1280, 9, 1 },
        { DT_Q5_K, 768, 5, 6 },   { DT_Q6_K, 1280, 9, 1 }, { DT_Q6_K, 768, 5, 6 },
    };
    Error e = { 0 };
    if (!cpu_has_isa(ISA_AVX2)) {
        SKIP(1, "no avx2: the kernel sets' agreement is not checked");
        return;
    }
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        DType t = cases[c].t;
        int64_t n = cases[c].n;
        int nr = cases[c].nr, T = cases[c].T;
        size_t rb = dtype_bytes(t, n), ab = vecdot_act_bytes(t, n);
        uint8_t *w = malloc(rb * nr);
        float *x = malloc((size_t)n * T * sizeof *x), *ref = malloc((size_t)nr * T * sizeof *ref), *out = malloc((size_t)nr * T * sizeof *out);
        char *act = malloc(ab * T);
        random_row(t, w, n * nr);
        for (int k = 0; k < T; k++) random_x(x + (size_t)k * n, n), x[(size_t)k * n + 7 * k] = 5.0f * (float)k;
        cpu_force_isa(ISA_AVX2, &e);
        for (int k = 0; k < T; k++) vecdot_quantize(t, x + (size_t)k * n, n, act + (size_t)k * ab);
        vecdot_gemm(t, w, nr, n, act, T, ref, nr);
        /* against the double reference once, so that an agreement on wrong numbers fails */
        double *a = malloc((size_t)n * sizeof *a);
        float *wf = malloc((size_t)n * sizeof *wf);
        int bad = 0;
        for (int k = 0; k < T; k++) {
            read_act(t, act + (size_t)k * ab, x + (size_t)k * n, n, a);
            for (int r = 0; r < nr; r++) {
                dtype_info(t)->to_float(w + r * rb, wf, n);
                double d = 0, mag = 0;
                for (int64_t i = 0; i < n; i++) d += (double)wf[i] * a[i], mag += fabs((double)wf[i] * a[i]);
                bad += !(fabs(ref[(size_t)k * nr + r] - d) <= (1e-6 + 1.2e-7 * (double)n) * mag);
            }
        }
        CHECK(bad == 0, "%s n=%lld %dx%d [avx2]: %d outputs off the double reference", dtype_name(t), (long long)n, nr, T, bad);
        for (int s = ISA_AVX2 + 1; s <= (int)cpu_best_isa(); s++) {
            if (s == ISA_AMX && t != DT_BF16 && t != DT_F16 && amx_int8()) continue; /* the portable C's bits there: test_amx */
            cpu_force_isa((Isa)s, &e);
            vecdot_gemm(t, w, nr, n, act, T, out, nr);
            CHECK(memcmp(out, ref, (size_t)nr * T * sizeof *out) == 0, "%s n=%lld %dx%d: %s (vecdot %s) differs from avx2's bits",
                  dtype_name(t), (long long)n, nr, T, isa_name((Isa)s), vecdot_kernel_name());
        }
        free(w), free(x), free(ref), free(out), free(act), free(a), free(wf);
    }
    cpu_force_isa(cpu_best_isa(), &e);
}

static void test_kernels(void) {
    static const DType types[] = { DT_Q8_0, DT_Q4_0, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_BF16, DT_F16 };
    static const int64_t odd[] = { 1, 7, 31, 33, 64, 65, 100, 257, 2049 };
    Error e = { 0 };
    CHECK(!vecdot_supported(DT_F32) && !vecdot_supported(DT_Q2_K), "F32 and Q2_K stay on the exact path");
    for (int s = ISA_GENERIC; s <= (int)cpu_best_isa(); s++) {
        CHECK(cpu_force_isa((Isa)s, &e) == 0, "%s", e.msg);
        for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
            DType t = types[k];
            if (t == DT_BF16 || t == DT_F16) {
                for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) check_type(t, odd[i]);
            } else {
                int bs = dtype_info(t)->block_size;
                for (int nb = 1; nb <= 9; nb += 2) check_type(t, nb * bs);
            }
            int64_t n = t == DT_BF16 || t == DT_F16 ? 97 : 3 * dtype_info(t)->block_size;
            check_gemm(t, n, 1, 1);
            check_gemm(t, n, 17, 5);
            check_gemm(t, n, 3, 33);
            check_gemm(t, n, 33, 2);
            check_gemm(t, n, 13, 1); /* decode: the rows in flight and their tail */
            check_gemm(t, 5 * n / 3, 7, 1);
        }
        printf("kernels: %s (vecdot %s) checked\n", isa_name((Isa)s), vecdot_kernel_name());
    }
    for (int s = ISA_AVX2; s < ISA_COUNT; s++)
        if (!cpu_has_isa((Isa)s)) SKIP(1, "this CPU has no %s: its kernels are not checked here", isa_name((Isa)s));
    cpu_force_isa(cpu_best_isa(), &e);
}

/* ----------------------------------------------------------------------------
 * Attention (tensor/attn.h) against softmax(q·Kᵀ/√hd)·V in double, written
 * here. The tolerance per output, with B = Σ a_j·|v_j| and ds the bound on
 * a score's float error ((hd + 2)·2⁻²⁴·Σ|q_i·k_i| / √hd): each weight is off
 * by its exp's 2·KERN_EXP_ERROR (the term and the sum) plus 2·ds (a score
 * and the maximum), and the float sums by (n + 8)·2⁻²³ of B. */

static void check_attn(int hd, int G, int T, int n0, int f16) {
    int nmax = n0 + T - 1, ldq = 2 * G * hd + 3, ld = 3 * hd; /* other heads around, as in the cache */
    float *q = malloc((size_t)T * ldq * sizeof *q), *out = calloc((size_t)T * ldq, sizeof *out);
    float *one = calloc((size_t)T * ldq, sizeof *one), *kf = malloc((size_t)nmax * ld * sizeof *kf);
    float *vf = malloc((size_t)nmax * ld * sizeof *vf);
    uint16_t *k16 = malloc((size_t)nmax * ld * sizeof *k16), *v16 = malloc((size_t)nmax * ld * sizeof *v16);
    float *scratch = malloc(attn_scratch_floats(T, G, nmax, hd) * sizeof *scratch);
    for (int i = 0; i < T * ldq; i++) q[i] = uniform(-2, 2);
    for (int i = 0; i < nmax * ld; i++) {
        kf[i] = uniform(-1.5f, 1.5f), vf[i] = uniform(-1, 1);
        if (f16) k16[i] = f32_to_f16(kf[i]), v16[i] = f32_to_f16(vf[i]), kf[i] = f16_to_f32(k16[i]), vf[i] = f16_to_f32(v16[i]);
    }
    AttnKV kv = { .ld = (size_t)ld, .hd = hd };
    if (f16) kv.k16 = k16 + hd, kv.v16 = v16 + hd; /* the second KV head of three */
    else kv.k = kf + hd, kv.v = vf + hd;
    attn_heads(&kv, q + 1, T, G, (size_t)ldq, n0, out + 1, scratch);
    /* Token by token, as decode calls it: the same bits (attn.h). */
    for (int t = 0; t < T; t++)
        attn_heads(&kv, q + 1 + (size_t)t * ldq, 1, G, (size_t)ldq, n0 + t, one + 1 + (size_t)t * ldq, scratch);
    CHECK(memcmp(out, one, (size_t)T * ldq * sizeof *out) == 0, "attention hd %d G %d T %d: a batch and decode differ", hd, G, T);
    double worst = 0, *sc = malloc((size_t)nmax * sizeof *sc);
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int g = 0; g < G; g++) {
            const float *qi = q + 1 + (size_t)t * ldq + (size_t)g * hd;
            int n = n0 + t;
            double max = -INFINITY, sum = 0, ds = 0;
            for (int j = 0; j < n; j++) {
                double d = 0, a = 0;
                for (int i = 0; i < hd; i++) d += (double)qi[i] * kf[(size_t)j * ld + hd + i], a += fabs((double)qi[i] * kf[(size_t)j * ld + hd + i]);
                sc[j] = d / sqrt(hd), ds = fmax(ds, (hd + 2) * ldexp(a, -24) / sqrt(hd)), max = fmax(max, sc[j]);
            }
            for (int j = 0; j < n; j++) sum += sc[j] = exp(sc[j] - max);
            for (int i = 0; i < hd; i++) {
                double ref = 0, B = 0;
                for (int j = 0; j < n; j++) ref += sc[j] / sum * vf[(size_t)j * ld + hd + i], B += sc[j] / sum * fabs(vf[(size_t)j * ld + hd + i]);
                double err = fabs(out[1 + (size_t)t * ldq + (size_t)g * hd + i] - ref);
                double tol = B * (4 * KERN_EXP_ERROR + 2 * ds + (n + 8) * 0x1p-23);
                bad += !(err <= tol);
                worst = fmax(worst, err / tol);
            }
        }
    CHECK(bad == 0, "attention %s hd %d G %d T %d n0 %d %s: %d outputs off (worst %.3g of the tolerance)", isa_name(cpu_kernel_isa()),
          hd, G, T, n0, f16 ? "F16" : "F32", bad, worst);
    free(q), free(out), free(one), free(kf), free(vf), free(k16), free(v16), free(scratch), free(sc);
}

static void test_attn(void) {
    Error e = { 0 };
    for (int s = ISA_GENERIC; s <= (int)cpu_best_isa(); s++) {
        CHECK(cpu_force_isa((Isa)s, &e) == 0, "%s", e.msg);
        static const int G[] = { 1, 4, 8 };
        for (int g = 0; g < 3; g++) {
            check_attn(64, G[g], 5, 1, 0);
            check_attn(37, G[g], 3, 70, g == 1);
            check_attn(13, G[g], 1, 21, g != 1);
            check_attn(128, G[g], 9, 33, g == 2);
        }
    }
    cpu_force_isa(cpu_best_isa(), &e);
}

/* ----------------------------------------------------------------------------
 * Forward on the fast path */

static int open_model(const char *rel, Model *m) {
    Error e = { 0 };
    ModelOpenOptions o = { .need_weights = 1 };
    int rc = model_open(m, shared_path(rel), &o, &e);
    if (rc) SKIP(1, "%s: %s", rel, e.msg);
    return rc == 0;
}

/* All n logits of ids on the fast (exact = 0) or exact path; NULL on error. */
static float *run_all(const Model *m, const int *ids, int n, int threads, int exact, int one_by_one, ForwardCapture cap) {
    Forward *f;
    Error e = { 0 };
    size_t V = (size_t)m->cfg.vocab_size;
    float *logits = malloc((size_t)n * V * sizeof *logits);
    int rc = forward_new(m, n, threads, &f, &e);
    if (!rc) {
        forward_set_exact(f, exact);
        forward_set_capture(f, cap, NULL);
        if (one_by_one)
            for (int i = 0; !rc && i < n; i++) rc = forward_run(f, ids + i, 1, i, n, logits + i * V, 1, &e);
        else
            rc = forward_run(f, ids, n, 0, n, logits, 1, &e);
        forward_free(f);
    }
    CHECK(rc == 0, "forward: %s", e.msg);
    if (rc) free(logits);
    return rc ? NULL : logits;
}

static void no_capture(void *ctx, int layer, int pos, int T, const float *g, const float *u, const float *a) {}

/* 1 when every matrix of m takes the fast path (then a batch and decode run
 * the same dot product per row and token; sgemm and sgemv do not). */
static int all_fast(const Model *m) {
    int ok = vecdot_supported(m->output->type);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        const Tensor *t[] = { w->wq, w->wk, w->wv, w->wo, w->gate, w->up, w->down };
        for (int i = 0; i < 7; i++) ok &= vecdot_supported(t[i]->type);
    }
    return ok;
}

/* llama.cpp's recorded runs (llama_cpp_greedy.txt, see test_forward.c):
 * teacher-forced on its ids, the fast path's top-1 is its token at every
 * step whose recorded margin is clear (≥ 1e-2), and greedy decode on the
 * fast path follows its ids up to the first near-tie. */
#define TIE 1e-2
static void test_llama_cpp(void) {
    char *text;
    size_t len;
    Error e = { 0 };
    if (read_file(shared_path("models/quant/llama_cpp_greedy.txt"), 1 << 20, &text, &len, &e)) {
        SKIP(1, "%s", e.msg);
        return;
    }
    char file[128] = "";
    int prompt[64], np = 0, gen[512], ng = 0, nm = 0, runs = 0;
    double margin[512];
    for (char *line = strtok(text, "\n");; line = strtok(NULL, "\n")) {
        if ((!line || strncmp(line, "== ", 3) == 0) && *file && ng > 0) {
            char rel[256];
            Model m;
            snprintf(rel, sizeof rel, "models/%s%s", strcmp(file, "stories260K.gguf") == 0 ? "stories260K/" : "quant/", file);
            if (open_model(rel, &m)) {
                int clear = 0, ids[600], n = np + ng - 1, V = m.cfg.vocab_size;
                while (clear < ng && clear < nm && margin[clear] >= TIE) clear++;
                memcpy(ids, prompt, (size_t)np * sizeof *ids);
                memcpy(ids + np, gen, (size_t)(ng - 1) * sizeof *ids);
                float *lg = run_all(&m, ids, n, 2, 0, 0, NULL), *dec = run_all(&m, ids, n, 2, 0, 1, NULL);
                int wrong = 0, same = 0;
                for (int s = 0; lg && s < ng && s < nm; s++)
                    wrong += margin[s] >= TIE && argmax(lg + (size_t)(np - 1 + s) * V, V) != gen[s];
                while (dec && same < clear && argmax(dec + (size_t)(np - 1 + same) * V, V) == gen[same]) same++;
                CHECK(lg && wrong == 0, "%s: fast path, teacher-forced top-1 differs from llama.cpp's at %d clear steps", file, wrong);
                CHECK(dec && same == clear, "%s: fast greedy decode leaves llama.cpp's ids at step %d of %d", file, same, clear);
                if (all_fast(&m))
                    CHECK(lg && dec && memcmp(lg, dec, (size_t)n * V * sizeof *lg) == 0,
                      "%s: fast path, a batch and token-by-token decode give different logits", file);
                free(lg), free(dec);
                model_close(&m);
                runs++;
            }
        }
        if (!line) break;
        if (strncmp(line, "== ", 3) == 0) {
            snprintf(file, sizeof file, "%s", line + 3);
            np = ng = nm = 0;
        } else if (strncmp(line, "prompt_ids:", 11) == 0 || strncmp(line, "gen_ids:", 8) == 0) {
            int is_gen = line[0] == 'g', *dst = is_gen ? gen : prompt, cap = is_gen ? 512 : 64, k = 0;
            char *s = strchr(line, ':') + 1, *end;
            for (long v; k < cap && (v = strtol(s, &end, 10), end != s); s = end) dst[k++] = (int)v;
            *(is_gen ? &ng : &np) = k;
        } else if (strncmp(line, "margins:", 8) == 0) {
            char *s = line + 8, *end;
            for (double v; nm < 512 && (v = strtod(s, &end), end != s); s = end) margin[nm++] = v;
        }
    }
    free(text);
    CHECK(runs >= 10, "%d llama.cpp runs checked", runs);
}

/* 1 and 3 threads: the same bits; a capture makes the pass exact. */
static void test_threads_and_capture(void) {
    Model m;
    if (!open_model("models/quant/synth256-q4_k_m.gguf", &m)) return;
    int ids[40];
    for (int i = 0; i < 40; i++) ids[i] = 1 + (i * 37) % 500;
    size_t bytes = (size_t)40 * m.cfg.vocab_size * sizeof(float);
    float *one = run_all(&m, ids, 40, 1, 0, 0, NULL), *three = run_all(&m, ids, 40, 3, 0, 0, NULL);
    float *exact = run_all(&m, ids, 40, 2, 1, 0, NULL), *captured = run_all(&m, ids, 40, 2, 0, 0, no_capture);
    CHECK(one && three && memcmp(one, three, bytes) == 0, "fast path: 1 and 3 threads give different logits");
    CHECK(one && exact && memcmp(one, exact, bytes) != 0, "fast path: the logits equal the exact path's (is it running?)");
    CHECK(exact && captured && memcmp(exact, captured, bytes) == 0, "a capture on a fast pass did not get the exact logits");
    free(one), free(three), free(exact), free(captured);
    model_close(&m);
}

/* n logits of ids on the fast path with hooks h acting from token from,
 * in one batch or token by token. */
static float *run_hooked(const Model *m, const int *ids, int n, const HookSet *h, int from, int one_by_one) {
    Forward *f;
    Error e = { 0 };
    size_t V = (size_t)m->cfg.vocab_size;
    float *lg = malloc((size_t)n * V * sizeof *lg);
    int rc = forward_new(m, n, 2, &f, &e);
    if (!rc) {
        forward_set_exact(f, 0);
        rc = forward_set_hooks(f, h, &e);
        for (int i = 0; !rc && i < (one_by_one ? n : 1); i++)
            rc = one_by_one ? forward_run(f, ids + i, 1, i, from - i, lg + i * V, 1, &e) : forward_run(f, ids, n, 0, from, lg, 1, &e);
        forward_free(f);
    }
    CHECK(rc == 0, "forward: %s", e.msg);
    return lg;
}

/* The hooks on the fast path, both sites: the tokens before the first
 * hooked one keep the unhooked bits, the hooked ones move; a scale of 1 is
 * no hook at all (x·1 is x); a batch and token-by-token decode give the
 * same bits with the hooks on. */
static void test_hooks_fast(void) {
    Model m;
    if (!open_model("models/quant/synth256-q4_k_m.gguf", &m)) return;
    enum { N = 12, FROM = 5 };
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = 3 + (i * 41) % 240;
    size_t V = (size_t)m.cfg.vocab_size, at = FROM * V;
    Error e = { 0 };
    float *none = run_hooked(&m, ids, N, NULL, N, 0);
    for (int site = SITE_UP; site <= SITE_ACT; site++) {
        HookSet clamp = { .site = (HookSite)site }, one = { .site = (HookSite)site };
        CHECK(hookset_parse(&clamp, "1:3,70=6", HOOK_CLAMP, m.cfg.n_layers, m.cfg.ffn_dim, &e) == 0, "%s", e.msg);
        CHECK(hookset_parse(&one, "0:1,2,3=1", HOOK_SCALE, m.cfg.n_layers, m.cfg.ffn_dim, &e) == 0, "%s", e.msg);
        float *hb = run_hooked(&m, ids, N, &clamp, FROM, 0), *hd = run_hooked(&m, ids, N, &clamp, FROM, 1);
        float *s1 = run_hooked(&m, ids, N, &one, 0, 0);
        const char *sn = hook_site_name((HookSite)site);
        CHECK(memcmp(hb, none, at * sizeof *hb) == 0, "fast path, clamp at %s: tokens before the hooked ones moved", sn);
        CHECK(memcmp(hb + at, none + at, (N * V - at) * sizeof *hb) != 0, "fast path, clamp at %s: the hooked tokens did not move", sn);
        CHECK(memcmp(hb, hd, N * V * sizeof *hb) == 0, "fast path, clamp at %s: a batch and decode differ", sn);
        CHECK(memcmp(s1, none, N * V * sizeof *s1) == 0, "fast path, scale 1 at %s: the logits moved", sn);
        free(hb), free(hd), free(s1);
        hookset_free(&clamp), hookset_free(&one);
    }
    free(none);
    model_close(&m);
}

/* --kv f16 against the F32 cache, 40 tokens (a batch of 32, then 8) on the
 * exact path: every key and value is rounded to 11 significant bits
 * (relative 2^-11 at most), which moves each attention output by at most
 * that relative amount of the values it mixes, and each score by that of
 * the keys: we allow 2 · 2^-11 of the largest |logit| per logit (keys and
 * values; about 5× what this fixture shows), and the top-1 token must stay
 * wherever the F32 run's top-2 margin exceeds twice that. Values cached 1%
 * off (a mutation) move the logits 8× beyond it. */
static void test_kv_f16(void) {
    Model m;
    if (!open_model("models/quant/synth256-q8_0.gguf", &m)) return;
    enum { N = 40 };
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1 + (i * 53) % 250;
    size_t V = (size_t)m.cfg.vocab_size;
    float *lg[2];
    Error e = { 0 };
    for (int k = 0; k < 2; k++) {
        Forward *f;
        lg[k] = malloc(N * V * sizeof *lg[k]);
        CHECK(forward_new(&m, N, 2, &f, &e) == 0, "%s", e.msg);
        forward_set_exact(f, 1); /* exact matmuls: the fast path's int8 rounding of activations would add its own jumps */
        CHECK(forward_set_kv_f16(f, k, &e) == 0 && forward_kv_f16(f) == k, "--kv f16 not set");
        CHECK(forward_run(f, ids, 32, 0, N, lg[k], 1, &e) == 0 && forward_run(f, ids + 32, 8, 32, N, lg[k] + 32 * V, 1, &e) == 0,
              "forward: %s", e.msg);
        forward_free(f);
    }
    double big = 0, worst = 0;
    for (size_t i = 0; i < N * V; i++) big = fmax(big, fabs(lg[0][i])), worst = fmax(worst, fabs(lg[1][i] - lg[0][i]));
    double tol = ldexp(big, -11) * 2;
    int moved = 0;
    for (int t = 0; t < N; t++) {
        const float *a = lg[0] + t * V;
        int top = argmax(a, (int)V);
        float second = -INFINITY;
        for (size_t v = 0; v < V; v++) if ((int)v != top && a[v] > second) second = a[v];
        moved += a[top] - second > 2 * tol && argmax(lg[1] + t * V, (int)V) != top;
    }
    CHECK(worst <= tol, "--kv f16: a logit moved by %.3g from the F32 cache's (allowed %.3g)", worst, tol);
    CHECK(worst > 0, "--kv f16: the logits equal the F32 cache's (is it running?)");
    CHECK(moved == 0, "--kv f16: the top-1 token changed at %d clear steps", moved);
    printf("kv f16: largest logit change %.3g (allowed %.3g, largest |logit| %.3g)\n", worst, tol, big);
    free(lg[0]), free(lg[1]);
    model_close(&m);
}

/* The amx set's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K kernels (AMX-INT8): nr rows × T tokens × n
 * values (16-row and 16-token tiles with tails; Q8_0: 4 blocks a round of
 * tiles, with tails). Exact int32 sums, then the portable C kernel's float
 * steps: so the generic set's bits (one dot product per row and token,
 * plain C), for a batch, for decode (vecdot_rows on the plain activation),
 * and with the rows split as threads split them; and the double sum of the
 * dequantised rows and activations within the float steps' rounding. */
static void check_q_amx(DType t, int64_t n, int nr, int T) {
    Error e = { 0 };
    size_t rb = dtype_bytes(t, n), ab = vecdot_act_bytes(t, n);
    uint8_t *w = malloc(rb * nr);
    float *x = malloc((size_t)n * T * sizeof *x), *wf = malloc((size_t)n * sizeof *wf);
    float *out = malloc((size_t)nr * T * sizeof *out), *split = malloc((size_t)nr * T * sizeof *out), *ref = malloc((size_t)nr * T * sizeof *out);
    double *a = malloc((size_t)n * sizeof *a);
    char *act = malloc(ab * T), *batch = malloc(ab * T);
    random_row(t, w, n * nr);
    for (int64_t i = 0; t == DT_Q8_0 && i < n * nr / 32; i++) /* extremes: every weight of some blocks -128 or 127 */
        if (i % 7 == 2) memset(w + (size_t)i * 34 + 2, i % 2 ? 0x80 : 0x7f, 32);
    for (int k = 0; k < T; k++) random_x(x + (size_t)k * n, n);
    vecdot_quantize_batch(t, x, n, T, batch);
    vecdot_gemm(t, w, nr, n, batch, T, out, nr);
    int cut = nr / 3 + 1;
    vecdot_gemm(t, w, cut, n, batch, T, split, nr);
    if (cut < nr) vecdot_gemm(t, w + (size_t)cut * rb, nr - cut, n, batch, T, split + cut, nr);
    int diff = 0, bad = 0, ok = 1;
    for (int k = 0; k < T; k++) {
        vecdot_quantize(t, x + (size_t)k * n, n, act + (size_t)k * ab);
        for (int r = 0; r < nr; r++) {
            float one;
            vecdot_rows(t, w + (size_t)r * rb, 1, n, act + (size_t)k * ab, &one, 1);
            diff += memcmp(&one, &out[(size_t)k * nr + r], sizeof one) != 0;
        }
    }
    cpu_force_isa(ISA_GENERIC, &e);
    vecdot_gemm(t, w, nr, n, act, T, ref, nr);
    cpu_force_isa(ISA_AMX, &e);
    for (int k = 0; k < T; k++) {
        ok &= read_act(t, act + (size_t)k * ab, x + (size_t)k * n, n, a);
        for (int r = 0; r < nr; r++) {
            dtype_info(t)->to_float(w + (size_t)r * rb, wf, n);
            double d = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) d += (double)wf[i] * a[i], mag += fabs((double)wf[i] * a[i]);
            bad += !(fabs(out[(size_t)k * nr + r] - d) <= (1e-6 + 1.2e-7 * (double)n) * mag);
        }
    }
    CHECK(ok, "amx %s n=%lld %dx%d: the activation breaks its contract", dtype_name(t), (long long)n, nr, T);
    CHECK(bad == 0, "amx %s n=%lld %dx%d: %d outputs off the double reference", dtype_name(t), (long long)n, nr, T, bad);
    CHECK(memcmp(out, ref, (size_t)nr * T * sizeof *out) == 0, "amx %s n=%lld %dx%d: not the portable C kernel's bits", dtype_name(t), (long long)n, nr, T);
    CHECK(diff == 0, "amx %s n=%lld %dx%d: %d outputs differ from decode's bits", dtype_name(t), (long long)n, nr, T, diff);
    CHECK(memcmp(out, split, (size_t)nr * T * sizeof *out) == 0, "amx %s n=%lld %dx%d: rows split at %d give other bits", dtype_name(t), (long long)n, nr, T, cut);
    free(w), free(x), free(wf), free(out), free(split), free(ref), free(a), free(act), free(batch);
}

/* The kernel, and a BF16 model on it (stories260K in BF16, rows of 64 and
 * 172: K tails): 1 and 3 threads, a batch and token-by-token decode, the
 * same logits; then Q8_0, Q4_0 and the K-quants on AMX-INT8, and a model of each. */
static void test_amx(void) {
    Error e = { 0 };
    if (!cpu_has_isa(ISA_AMX)) {
        SKIP(1, "this CPU (or its OS) has no AMX tiles: gemm_amx.c is not checked here");
        return;
    }
    cpu_force_isa(ISA_AMX, &e);
    static const int64_t ns[] = { 1, 63, 97 };
    for (int i = 0; i < 3; i++) {
        check_amx(ns[i], 1, 1);
        check_amx(ns[i], 17, 5);
        check_amx(ns[i], 3, 33);
        check_amx(ns[i], 33, 2);
    }
    check_amx(1024, 32, 32); /* forward.c's block: 32 rows × 32 tokens, whole steps */
    Model m;
    ModelOpenOptions o = { .need_weights = 1 };
    if (model_open(&m, shared_path("models/stories260K-hf-bf16-sharded"), &o, &e)) {
        SKIP(1, "stories260K-hf-bf16-sharded: %s", e.msg);
        return;
    }
    enum { N = 40 };
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1 + (i * 29) % 500;
    size_t bytes = (size_t)N * m.cfg.vocab_size * sizeof(float);
    float *one = run_all(&m, ids, N, 1, 0, 0, NULL), *three = run_all(&m, ids, N, 3, 0, 0, NULL), *dec = run_all(&m, ids, N, 2, 0, 1, NULL);
    CHECK(all_fast(&m), "stories260K BF16: a matrix is not on the fast path");
    CHECK(one && three && memcmp(one, three, bytes) == 0, "amx, BF16 model: 1 and 3 threads give different logits");
    CHECK(one && dec && memcmp(one, dec, bytes) == 0, "amx, BF16 model: a batch and token-by-token decode give different logits");
    free(one), free(three), free(dec);
    model_close(&m);
    if (!amx_int8()) {
        SKIP(1, "this CPU has AMX tiles without AMX-INT8: Q8_0 runs gemm_q.c's kernel there, checked above");
        return;
    }
    static const struct { int64_t n; int nr, T; } q8[] = {
        { 32, 1, 1 }, { 64, 17, 5 }, { 96, 3, 33 }, { 160, 33, 2 }, { 224, 16, 16 }, { 2048, 32, 32 }, { 4192, 5, 17 }, { 32800, 2, 1 },
    };
    for (size_t i = 0; i < sizeof q8 / sizeof *q8; i++) check_q_amx(DT_Q8_0, q8[i].n, q8[i].nr, q8[i].T), check_q_amx(DT_Q4_0, q8[i].n, q8[i].nr, q8[i].T);
    static const struct { int64_t n; int nr, T; } q4k[] = {
        { 256, 1, 1 }, { 512, 17, 5 }, { 768, 3, 33 }, { 256, 33, 2 }, { 1280, 16, 16 }, { 2048, 32, 32 }, { 4096, 5, 17 },
    };
    for (size_t i = 0; i < sizeof q4k / sizeof *q4k; i++)
        for (int k = 0; k < 3; k++) check_q_amx(k == 0 ? DT_Q4_K : k == 1 ? DT_Q5_K : DT_Q6_K, q4k[i].n, q4k[i].nr, q4k[i].T);
    static const char *const models[] = { "models/quant/synth256-q8_0.gguf", "models/quant/synth256-q4_0.gguf", "models/quant/synth256-q4_k_m.gguf",
                                          "models/quant/synth256-q5_k_m.gguf" };
    for (int i = 0; i < 4; i++) {
        if (!open_model(models[i], &m)) continue;
        bytes = (size_t)N * m.cfg.vocab_size * sizeof(float);
        one = run_all(&m, ids, N, 1, 0, 0, NULL), three = run_all(&m, ids, N, 3, 0, 0, NULL), dec = run_all(&m, ids, N, 2, 0, 1, NULL);
        CHECK(all_fast(&m), "%s: a matrix is not on the fast path", models[i]);
        CHECK(one && three && memcmp(one, three, bytes) == 0, "amx, %s: 1 and 3 threads give different logits", models[i]);
        CHECK(one && dec && memcmp(one, dec, bytes) == 0, "amx, %s: a batch and token-by-token decode give different logits", models[i]);
        free(one), free(three), free(dec);
        model_close(&m);
    }
}

int main(void) {
    test_kernels();
    test_sets_agree();
    test_quantize_sets();
    test_attn();
    test_llama_cpp();
    test_threads_and_capture();
    test_kv_f16();
    test_hooks_fast();
    test_amx();
    return check_summary("vecdot");
}
