/* kernels.c — the lens's FP32 and BF16 tile products (see kernels.h).
 *
 * Layout. The neurons of a block are packed once, panel by panel: for each
 * k, the KERN_LANES values x[i][k] of the panel's neurons side by side, so a
 * step of k is two vector loads. Head rows are never packed: the kernel
 * broadcasts h[j][k] from each of its KERN_ROWS rows, read in place.
 *
 * Blocking. K is cut into blocks of KC so that a panel's block (KC × 32
 * floats, 32 KiB) comes from L2 and the 12 rows' block (12 KiB, copied to
 * a small buffer) stays in L1
 * while every panel of the neuron block passes under it; the 24 running sums
 * (12 rows × 2 vectors) live in registers for the whole block. An element's
 * chain continues across blocks from its stored float, so the blocking
 * never changes a result.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

enum { KC = 256 };

static int force_portable;
void kern_force_portable(int on) { force_portable = on; }
int kern_avx512(void) { return !force_portable && __builtin_cpu_supports("avx512f"); }
int kern_avx512_bf16(void) { return kern_avx512() && __builtin_cpu_supports("avx512bf16"); }

uint16_t kern_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40); /* NaN stays NaN */
    u += 0x7fffu + (u >> 16 & 1u);
    return (uint16_t)(u >> 16);
}

/* ----------------------------------------------------------------------------
 * Packing */

/* Lane l of a panel, step k: FP32 side by side per k; BF16 in (k, k+1) pairs,
 * the pair of lane l at 2l (VDPBF16PS's layout). Lanes past m are zero. */
static void pack(const void *vecs, int m, int K, int esize, void *out) {
    memset(out, 0, (size_t)kern_padded(m) * K * esize);
    for (int i = 0; i < m; i++) {
        int p = i / KERN_LANES, l = i % KERN_LANES;
        size_t base = (size_t)p * K * KERN_LANES;
        if (esize == 4) {
            const float *src = (const float *)vecs + (size_t)i * K;
            for (int k = 0; k < K; k++) ((float *)out)[base + (size_t)k * KERN_LANES + l] = src[k];
        } else {
            const uint16_t *src = (const uint16_t *)vecs + (size_t)i * K;
            for (int k = 0; k < K; k++) ((uint16_t *)out)[base + (size_t)(k & ~1) * KERN_LANES + 2 * l + (k & 1)] = src[k];
        }
    }
}

void kern_pack_f32(const float *vecs, int m, int K, float *out) { pack(vecs, m, K, 4, out); }
void kern_pack_bf16(const uint16_t *vecs, int m, int K, uint16_t *out) { pack(vecs, m, K, 2, out); }

void kern_transpose(const float *c, int nv, int m, int ldc, float *out) {
    enum { B = 16 };
    for (int j0 = 0; j0 < nv; j0 += B)
        for (int i0 = 0; i0 < m; i0 += B)
            for (int i = i0; i < i0 + B && i < m; i++)
                for (int j = j0; j < j0 + B && j < nv; j++) out[(size_t)i * nv + j] = c[(size_t)j * ldc + i];
}

/* ----------------------------------------------------------------------------
 * Micro-kernels: rows rp[0..nr) (offset to the block) × one panel a, kc
 * steps of k, into c (row r at c + r·ldc, 32 lanes). */

typedef void MicroF32(int kc, const float *a, const float *const *rp, int nr, float *c, int ldc, int first);
typedef void MicroBF16(int kc, const uint16_t *a, const uint16_t *const *rp, int nr, float *c, int ldc, int first);

static void micro_f32_c(int kc, const float *a, const float *const *rp, int nr, float *c, int ldc, int first) {
    for (int r = 0; r < nr; r++)
        for (int l = 0; l < KERN_LANES; l++) {
            float s = first ? 0.0f : c[(size_t)r * ldc + l];
            for (int k = 0; k < kc; k++) s = fmaf(rp[r][k], a[(size_t)k * KERN_LANES + l], s);
            c[(size_t)r * ldc + l] = s;
        }
}

/* VDPBF16PS adds, per lane, the odd then the even product of its pair. */
static void micro_bf16_c(int kc, const uint16_t *a, const uint16_t *const *rp, int nr, float *c, int ldc, int first) {
    for (int r = 0; r < nr; r++)
        for (int l = 0; l < KERN_LANES; l++) {
            float s = first ? 0.0f : c[(size_t)r * ldc + l];
            for (int k = 0; k < kc; k += 2) {
                const uint16_t *x = a + (size_t)k * KERN_LANES + 2 * l;
                s += kern_f32(rp[r][k + 1]) * kern_f32(x[1]);
                s += kern_f32(rp[r][k]) * kern_f32(x[0]);
            }
            c[(size_t)r * ldc + l] = s;
        }
}

__attribute__((target("avx512f"))) static void micro_f32_avx512(int kc, const float *a, const float *const *rp, int nr,
                                                                float *c, int ldc, int first) {
    __m512 acc[KERN_ROWS][2];
#pragma GCC unroll 12
    for (int r = 0; r < KERN_ROWS; r++) {
        acc[r][0] = first || r >= nr ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (size_t)r * ldc);
        acc[r][1] = first || r >= nr ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (size_t)r * ldc + 16);
    }
    for (int k = 0; k < kc; k++) {
        __m512 a0 = _mm512_loadu_ps(a + (size_t)k * KERN_LANES), a1 = _mm512_loadu_ps(a + (size_t)k * KERN_LANES + 16);
#pragma GCC unroll 12
        for (int r = 0; r < KERN_ROWS; r++) {
            __m512 h = _mm512_set1_ps(rp[r][k]);
            acc[r][0] = _mm512_fmadd_ps(h, a0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(h, a1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < KERN_ROWS; r++)
        if (r < nr) {
            _mm512_storeu_ps(c + (size_t)r * ldc, acc[r][0]);
            _mm512_storeu_ps(c + (size_t)r * ldc + 16, acc[r][1]);
        }
}

__attribute__((target("avx512f,avx512bf16"))) static void micro_bf16_avx512(int kc, const uint16_t *a,
                                                                           const uint16_t *const *rp, int nr, float *c,
                                                                           int ldc, int first) {
    __m512 acc[KERN_ROWS][2];
#pragma GCC unroll 12
    for (int r = 0; r < KERN_ROWS; r++) {
        acc[r][0] = first || r >= nr ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (size_t)r * ldc);
        acc[r][1] = first || r >= nr ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (size_t)r * ldc + 16);
    }
    for (int k = 0; k < kc; k += 2) {
        __m512bh a0 = (__m512bh)_mm512_loadu_si512(a + (size_t)k * KERN_LANES);
        __m512bh a1 = (__m512bh)_mm512_loadu_si512(a + (size_t)k * KERN_LANES + 32);
#pragma GCC unroll 12
        for (int r = 0; r < KERN_ROWS; r++) {
            int32_t pair;
            memcpy(&pair, rp[r] + k, 4);
            __m512bh h = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], h, a0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], h, a1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < KERN_ROWS; r++)
        if (r < nr) {
            _mm512_storeu_ps(c + (size_t)r * ldc, acc[r][0]);
            _mm512_storeu_ps(c + (size_t)r * ldc + 16, acc[r][1]);
        }
}

/* ----------------------------------------------------------------------------
 * The block loops, one for both element types (esize bytes per element) */

static void widen_c(const uint16_t *h, int n, float *out) {
    for (int k = 0; k < n; k++) out[k] = kern_f32(h[k]);
}

__attribute__((target("avx512f"))) static void widen_avx512(const uint16_t *h, int n, float *out) {
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_si512(out + k, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(h + k))), 16));
    widen_c(h + k, n - k, out + k);
}

/* Asks for the block of the rows after row j (or, past the last, the next
 * K block's first rows) while this block computes: each row's block is only
 * a few cache lines, too short for the hardware prefetcher to follow. */
static void prefetch_next(const void *const *rows, int n, int j, int k0, int K, int esize) {
    int next = j + KERN_ROWS;
    if (next >= n) next = 0, k0 += KC;
    if (k0 >= K) return;
    int kc = K - k0 < KC ? K - k0 : KC;
    for (int r = next; r < next + KERN_ROWS && r < n; r++)
        for (int b = 0; b < kc * esize; b += 64) __builtin_prefetch((const char *)rows[r] + (size_t)k0 * esize + b);
}

/* esize: bytes per element of packed and of rows; widen: rows are BF16,
 * widened to FP32 (exactly) as their block is copied. */
static void gemm(int esize, int widen, void (*micro)(void), const void *packed, int m, int K, const void *const *rows,
                 int n, float *c, int ldc) {
    int panels = kern_padded(m) / KERN_LANES, avx512 = kern_avx512();
    _Alignas(64) char block[KERN_ROWS][KC * 4 + 64];
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int j = 0; j < n; j += KERN_ROWS) {
            int nr = n - j < KERN_ROWS ? n - j : KERN_ROWS;
            /* The rows' block, copied: rows K floats apart share cache sets
             * (4 KiB aliasing), which cost a quarter of the speed. */
            const void *rp[KERN_ROWS];
            for (int r = 0; r < KERN_ROWS; r++) {
                const void *src = rows[j + (r < nr ? r : nr - 1)];
                if (!widen) memcpy(block[r], (const char *)src + (size_t)k0 * esize, (size_t)kc * esize);
                else if (avx512) widen_avx512((const uint16_t *)src + k0, kc, (float *)block[r]);
                else widen_c((const uint16_t *)src + k0, kc, (float *)block[r]);
                rp[r] = block[r];
            }
            prefetch_next(rows, n, j, k0, K, widen ? 2 : esize);
            for (int p = 0; p < panels; p++) {
                const void *a = (const char *)packed + ((size_t)p * K + k0) * KERN_LANES * esize;
                float *cp = c + (size_t)j * ldc + (size_t)p * KERN_LANES;
                if (esize == 4) ((MicroF32 *)micro)(kc, a, (const float *const *)rp, nr, cp, ldc, k0 == 0);
                else ((MicroBF16 *)micro)(kc, a, (const uint16_t *const *)rp, nr, cp, ldc, k0 == 0);
            }
        }
    }
}

void kern_gemm_f32(const float *packed, int m, int K, const void *const *rows, int rows_bf16, int n, float *c, int ldc) {
    MicroF32 *micro = kern_avx512() ? micro_f32_avx512 : micro_f32_c;
    gemm(4, rows_bf16, (void (*)(void))micro, packed, m, K, rows, n, c, ldc);
}

void kern_gemm_bf16(const uint16_t *packed, int m, int K, const uint16_t *const *rows, int n, float *c, int ldc) {
    MicroBF16 *micro = kern_avx512_bf16() ? micro_bf16_avx512 : micro_bf16_c;
    gemm(2, 0, (void (*)(void))micro, packed, m, K, (const void *const *)rows, n, c, ldc);
}

/* ----------------------------------------------------------------------------
 * Row statistics of a BF16 head, for the prefilter's bound: squares of BF16
 * values are exact in FP32 and summed in double, so the sum is exact to
 * ~n·2⁻⁵³ relative. */

static double sumsq_bf16_c(const uint16_t *h, int n, float *absmax) {
    double s = 0;
    float m = *absmax;
    for (int i = 0; i < n; i++) {
        float x = kern_f32(h[i]);
        s += (double)(x * x);
        m = fabsf(x) > m ? fabsf(x) : m;
    }
    *absmax = m;
    return s;
}

__attribute__((target("avx512f"))) static double sumsq_bf16_avx512(const uint16_t *h, int n, float *absmax) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512 m = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(h + i))), 16));
        __m512 sq = _mm512_mul_ps(x, x); /* exact: 8-bit significands */
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
        m = _mm512_max_ps(m, _mm512_abs_ps(x));
    }
    float mm = _mm512_reduce_max_ps(m);
    if (mm > *absmax) *absmax = mm;
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) + sumsq_bf16_c(h + i, n - i, absmax);
}

double kern_sumsq_bf16(const uint16_t *h, int n, float *absmax) {
    return kern_avx512() ? sumsq_bf16_avx512(h, n, absmax) : sumsq_bf16_c(h, n, absmax);
}

/* ----------------------------------------------------------------------------
 * Scanning a tile row: its maximum, its normaliser, the few tokens worth a
 * closer look */

static float max_c(const float *x, int n) {
    float m = x[0];
    for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

__attribute__((target("avx512f"))) static float max_avx512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(x[0]);
    int j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + j), m); /* a NaN x keeps m, as in max_c */
    float r = _mm512_reduce_max_ps(m);
    for (; j < n; j++) r = x[j] > r ? x[j] : r;
    return r;
}

float kern_max(const float *x, int n) { return kern_avx512() ? max_avx512(x, n) : max_c(x, n); }

/* e^t for t ≤ 0, 16 at a time: t = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite, two
 * constants), e^r by its Taylor polynomial of degree 7 (truncation < 6e-9
 * relative) in FMA Horner form, scaled by 2^n. Relative error < 2⁻¹⁹ (see
 * KERN_EXP_ERROR); below e^-104 the result may flush to zero. */
__attribute__((target("avx512f"))) static __m512 exp_avx512(__m512 t) {
    t = _mm512_max_ps(_mm512_set1_ps(-104.0f), t); /* a NaN t stays NaN */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), t); /* n·ln2_hi is exact */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    static const float c[] = { 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f };
    for (int i = 0; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    return _mm512_scalef_ps(p, n);
}

static double sum_exp_c(const float *x, int n, float m) {
    double s = 0;
    for (int j = 0; j < n; j++) s += expf(x[j] - m);
    return s;
}

__attribute__((target("avx512f"))) static double sum_exp_avx512(const float *x, int n, float m) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512 vm = _mm512_set1_ps(m);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm)));
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

double kern_sum_exp(const float *x, int n, float m) { return kern_avx512() ? sum_exp_avx512(x, n, m) : sum_exp_c(x, n, m); }

static int flag_c(const float *x, int n, const float *rn, const float *rr, float alpha, float beta, float eps, float t_top,
                  float t_bottom, int *idx) {
    int count = 0;
    for (int j = 0; j < n; j++) {
        float b = rn ? rn[j] * alpha + rr[j] * beta + eps : 0.0f;
        if (x[j] + b >= t_top || x[j] - b <= t_bottom) idx[count++] = j;
    }
    return count;
}

__attribute__((target("avx512f"))) static int flag_avx512(const float *x, int n, const float *rn, const float *rr, float alpha,
                                                          float beta, float eps, float t_top, float t_bottom, int *idx) {
    int count = 0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), ve = _mm512_set1_ps(eps);
    __m512 top = _mm512_set1_ps(t_top), bottom = _mm512_set1_ps(t_bottom);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + j), b = _mm512_setzero_ps();
        if (rn) /* the same operations, in the same order, as flag_c's */
            b = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, rn + j), va),
                                            _mm512_mul_ps(_mm512_maskz_loadu_ps(k, rr + j), vb)), ve);
        unsigned hit = _mm512_mask_cmp_ps_mask(k, _mm512_add_ps(v, b), top, _CMP_GE_OQ) |
                       _mm512_mask_cmp_ps_mask(k, _mm512_sub_ps(v, b), bottom, _CMP_LE_OQ);
        for (; hit; hit &= hit - 1) idx[count++] = j + __builtin_ctz(hit);
    }
    return count;
}

int kern_flag(const float *x, int n, const float *rn, const float *rr, float alpha, float beta, float eps, float t_top,
              float t_bottom, int *idx) {
    return (kern_avx512() ? flag_avx512 : flag_c)(x, n, rn, rr, alpha, beta, eps, t_top, t_bottom, idx);
}
