/* kernels_scan.c — the scans that go with kernels.c's tile products (see
 * kernels.h): row statistics of a BF16 head, and a tile's maximum,
 * normaliser and flagged tokens, read row by row (neuron-major: the exact
 * map) or column by column (vocabulary-major, as the products write it: the
 * prefilter, which so needs no transpose). Each entry point switches on the
 * kernel set in use (base/cpu.h), like kernels.c's.
 */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

#include "base/cpu.h"

/* ----------------------------------------------------------------------------
 * Row statistics of a BF16 head, for the prefilter's bound: squares of BF16
 * values are exact in FP32 and summed in double, so the sum is exact to
 * ~n·2⁻⁵³ relative (in any order: the sets add in different orders). */

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

#if NM_X86
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

/* Horizontal sums and maxima of AVX2 vectors. */
__attribute__((target("avx2"))) static double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
__attribute__((target("avx2"))) static float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

__attribute__((target("avx2"))) static double sumsq_bf16_avx2(const uint16_t *h, int n, float *absmax) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 m = _mm256_setzero_ps(), abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(h + i))), 16));
        __m256 sq = _mm256_mul_ps(x, x); /* exact: 8-bit significands */
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
        m = _mm256_max_ps(m, _mm256_and_ps(x, abs_mask));
    }
    float mm = hmax_ps(m);
    if (mm > *absmax) *absmax = mm;
    return hsum_pd(_mm256_add_pd(s0, s1)) + sumsq_bf16_c(h + i, n - i, absmax);
}
#endif

double kern_sumsq_bf16(const uint16_t *h, int n, float *absmax) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return sumsq_bf16_avx512(h, n, absmax);
    if (kernel_isa() >= ISA_AVX2) return sumsq_bf16_avx2(h, n, absmax);
#endif
    return sumsq_bf16_c(h, n, absmax);
}

/* ----------------------------------------------------------------------------
 * Scanning a tile row: its maximum, its normaliser, the few tokens worth a
 * closer look */

static float max_c(const float *x, int n) {
    float m = x[0];
    for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

#if NM_X86
__attribute__((target("avx512f"))) static float max_avx512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(x[0]);
    int j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + j), m); /* a NaN x keeps m, as in max_c */
    float r = _mm512_reduce_max_ps(m);
    for (; j < n; j++) r = x[j] > r ? x[j] : r;
    return r;
}

__attribute__((target("avx2"))) static float max_avx2(const float *x, int n) {
    __m256 m = _mm256_set1_ps(x[0]);
    int j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + j), m); /* a NaN x keeps m, as in max_c */
    float r = hmax_ps(m);
    for (; j < n; j++) r = x[j] > r ? x[j] : r;
    return r;
}
#endif

float kern_max(const float *x, int n) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return max_avx512(x, n);
    if (kernel_isa() >= ISA_AVX2) return max_avx2(x, n);
#endif
    return max_c(x, n);
}

/* e^t for t ≤ 0, 16 at a time: t = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite, two
 * constants), e^r by its Taylor polynomial of degree 7 (truncation < 6e-9
 * relative) in FMA Horner form, scaled by 2^n. Relative error < 2⁻¹⁹ (see
 * KERN_EXP_ERROR); below e^-104 the result may flush to zero. */
#if NM_X86
static const float exp_c[] = { 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f };

__attribute__((target("avx512f"))) static __m512 exp_avx512(__m512 t) {
    t = _mm512_max_ps(_mm512_set1_ps(-104.0f), t); /* a NaN t stays NaN */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), t); /* n·ln2_hi is exact */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    for (int i = 0; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_c[i]));
    return _mm512_scalef_ps(p, n);
}

/* The same steps 8 at a time. AVX2 has no scalef: 2^n (n ≥ -150) is applied
 * as 2^(n/2) · 2^(n − n/2), two normal powers of two, so the first product
 * is exact and only the second rounds, once, as scalef does: the same bits. */
__attribute__((target("avx2,fma"))) static __m256 exp_avx2(__m256 t) {
    t = _mm256_max_ps(_mm256_set1_ps(-104.0f), t); /* a NaN t stays NaN */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    for (int i = 0; i < 7; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_c[i]));
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
#endif

static double sum_exp_c(const float *x, int n, float m) {
    double s = 0;
    for (int j = 0; j < n; j++) s += expf(x[j] - m);
    return s;
}

#if NM_X86
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

/* Lanes j < n of 8: a mask for maskload and for zeroing the lanes past n. */
__attribute__((target("avx2"))) static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"))) static double sum_exp_avx2(const float *x, int n, float m) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 vm = _mm256_set1_ps(m);
    for (int j = 0; j < n; j += 8) {
        __m256i k = lanes_below(n - j);
        __m256 e = _mm256_and_ps(_mm256_castsi256_ps(k), exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), vm)));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    return hsum_pd(_mm256_add_pd(s0, s1));
}
#endif

double kern_sum_exp(const float *x, int n, float m) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return sum_exp_avx512(x, n, m);
    if (kernel_isa() >= ISA_AVX2) return sum_exp_avx2(x, n, m);
#endif
    return sum_exp_c(x, n, m);
}

/* The same terms kept: out[j] = e^(x[j] − m) (out may be x), their sum in
 * double, as kern_sum_exp adds them. The softmax of attention (tensor/attn.c). */
static double exp_row_c(const float *x, int n, float m, float *out) {
    double s = 0;
    for (int j = 0; j < n; j++) s += out[j] = expf(x[j] - m);
    return s;
}

#if NM_X86
__attribute__((target("avx512f"))) static double exp_avx512_row(const float *x, int n, float m, float *out) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512 vm = _mm512_set1_ps(m);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm)));
        _mm512_mask_storeu_ps(out + j, k, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

__attribute__((target("avx2,fma"))) static double exp_avx2_row(const float *x, int n, float m, float *out) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 vm = _mm256_set1_ps(m);
    for (int j = 0; j < n; j += 8) {
        __m256i k = lanes_below(n - j);
        __m256 e = _mm256_and_ps(_mm256_castsi256_ps(k), exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), vm)));
        _mm256_maskstore_ps(out + j, k, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    return hsum_pd(_mm256_add_pd(s0, s1));
}
#endif

double kern_exp(const float *x, int n, float m, float *out) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return exp_avx512_row(x, n, m, out);
    if (kernel_isa() >= ISA_AVX2) return exp_avx2_row(x, n, m, out);
#endif
    return exp_row_c(x, n, m, out);
}

static int flag_c(const float *x, int n, const float *rn, const float *rr, float alpha, float beta, float eps, float t_top,
                  float t_bottom, int *idx) {
    int count = 0;
    for (int j = 0; j < n; j++) {
        float b = rn ? rn[j] * alpha + rr[j] * beta + eps : 0.0f;
        if (x[j] + b >= t_top || x[j] - b <= t_bottom) idx[count++] = j;
    }
    return count;
}

#if NM_X86
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

__attribute__((target("avx2"))) static int flag_avx2(const float *x, int n, const float *rn, const float *rr, float alpha,
                                                     float beta, float eps, float t_top, float t_bottom, int *idx) {
    int count = 0;
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), ve = _mm256_set1_ps(eps);
    __m256 top = _mm256_set1_ps(t_top), bottom = _mm256_set1_ps(t_bottom);
    for (int j = 0; j < n; j += 8) {
        __m256i k = lanes_below(n - j);
        __m256 v = _mm256_maskload_ps(x + j, k), b = _mm256_setzero_ps();
        if (rn) /* the same operations, in the same order, as flag_c's (no FMA) */
            b = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_maskload_ps(rn + j, k), va),
                                            _mm256_mul_ps(_mm256_maskload_ps(rr + j, k), vb)), ve);
        __m256 hit = _mm256_or_ps(_mm256_cmp_ps(_mm256_add_ps(v, b), top, _CMP_GE_OQ),
                                  _mm256_cmp_ps(_mm256_sub_ps(v, b), bottom, _CMP_LE_OQ));
        unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_and_ps(hit, _mm256_castsi256_ps(k)));
        for (; bits; bits &= bits - 1) idx[count++] = j + __builtin_ctz(bits);
    }
    return count;
}
#endif

int kern_flag(const float *x, int n, const float *rn, const float *rr, float alpha, float beta, float eps, float t_top,
              float t_bottom, int *idx) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return flag_avx512(x, n, rn, rr, alpha, beta, eps, t_top, t_bottom, idx);
    if (kernel_isa() >= ISA_AVX2) return flag_avx2(x, n, rn, rr, alpha, beta, eps, t_top, t_bottom, idx);
#endif
    return flag_c(x, n, rn, rr, alpha, beta, eps, t_top, t_bottom, idx);
}

/* ----------------------------------------------------------------------------
 * Scanning a vocabulary-major tile column by column (the prefilter's)
 *
 * The tile is read row by row, in memory order, 16 columns (neurons) at a
 * time per vector: pass 1 keeps each column's maximum and collects the
 * rows flagged in any of a group's 16 columns; pass 2 sums each column's
 * e^(x − max) in double, row after row. A column's results are those of
 * kern_max, kern_flag and kern_sum_exp on that column laid out as a row
 * (the flag's bound computed by the same operations in the same order; the
 * sum in another order, in double, with the same terms' error). */

static void scan_cols_c(const float *c, int nv, int m, int ldc, const float *rn, const float *rr, const KernBounds *kb,
                        float *max, double *sum, uint32_t *hit_row, uint16_t *hit_mask, int *n_hits) {
    for (int g = 0; g < m / 16; g++) n_hits[g] = 0;
    for (int i = 0; i < m; i++) max[i] = c[i], sum[i] = 0;
    for (int v = 0; v < nv; v++) {
        const float *x = c + (size_t)v * ldc;
        for (int g = 0; g < m / 16; g++) {
            unsigned mask = 0;
            for (int l = 0; l < 16; l++) {
                int i = 16 * g + l;
                float b = rn[v] * kb->alpha[i] + rr[v] * kb->beta[i] + kb->eps[i];
                if (x[i] + b >= kb->t_top[i] || x[i] - b <= kb->t_bottom[i]) mask |= 1u << l;
                max[i] = x[i] > max[i] ? x[i] : max[i];
            }
            if (mask) hit_row[(size_t)g * nv + n_hits[g]] = (uint32_t)v, hit_mask[(size_t)g * nv + n_hits[g]++] = (uint16_t)mask;
        }
    }
    for (int v = 0; v < nv; v++)
        for (int i = 0; i < m; i++) sum[i] += expf(c[(size_t)v * ldc + i] - max[i]);
}

#if NM_X86
/* Group by group: a group's 16 columns (one 64-byte strip per row, 16 KiB
 * for a tile of 256 rows) are scanned for maximum and flags, then summed,
 * while the strip is still in L1, the maxima and the sums in registers.
 * Per column the same operations in the same row order as row by row, so
 * the same bits. */
__attribute__((target("avx512f"))) static void scan_cols_avx512(const float *c, int nv, int m, int ldc, const float *rn,
                                                                const float *rr, const KernBounds *kb, float *max,
                                                                double *sum, uint32_t *hit_row, uint16_t *hit_mask,
                                                                int *n_hits) {
    for (int g = 0; g < m / 16; g++) {
        int i = 16 * g, hits = 0;
        const float *x = c + i;
        __m512 alpha = _mm512_loadu_ps(kb->alpha + i), beta = _mm512_loadu_ps(kb->beta + i), eps = _mm512_loadu_ps(kb->eps + i);
        __m512 t_top = _mm512_loadu_ps(kb->t_top + i), t_bottom = _mm512_loadu_ps(kb->t_bottom + i), mx = _mm512_loadu_ps(x);
        uint32_t *rows = hit_row + (size_t)g * nv;
        uint16_t *masks = hit_mask + (size_t)g * nv;
        for (int v = 0; v < nv; v++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)v * ldc); /* the same operations, in the same order, as flag_c's */
            __m512 b = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(rn[v]), alpha), _mm512_mul_ps(_mm512_set1_ps(rr[v]), beta)), eps);
            unsigned mask = _mm512_cmp_ps_mask(_mm512_add_ps(xv, b), t_top, _CMP_GE_OQ) |
                            _mm512_cmp_ps_mask(_mm512_sub_ps(xv, b), t_bottom, _CMP_LE_OQ);
            mx = _mm512_max_ps(xv, mx); /* a NaN x keeps max, as in max_c */
            if (mask) rows[hits] = (uint32_t)v, masks[hits++] = (uint16_t)mask;
        }
        n_hits[g] = hits;
        _mm512_storeu_ps(max + i, mx);
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        for (int v = 0; v < nv; v++) {
            __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + (size_t)v * ldc), mx));
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        }
        _mm512_storeu_pd(sum + i, lo);
        _mm512_storeu_pd(sum + i + 8, hi);
    }
}

/* The same, 8 columns per vector: a group's mask from two halves. */
__attribute__((target("avx2,fma"))) static void scan_cols_avx2(const float *c, int nv, int m, int ldc, const float *rn,
                                                               const float *rr, const KernBounds *kb, float *max,
                                                               double *sum, uint32_t *hit_row, uint16_t *hit_mask,
                                                               int *n_hits) {
    int groups = m / 16;
    for (int g = 0; g < groups; g++) n_hits[g] = 0;
    memcpy(max, c, (size_t)m * sizeof *max);
    for (int v = 0; v < nv; v++) {
        const float *x = c + (size_t)v * ldc;
        __m256 vn = _mm256_set1_ps(rn[v]), vr = _mm256_set1_ps(rr[v]);
        for (int g = 0; g < groups; g++) {
            unsigned mask = 0;
            for (int h = 0; h < 2; h++) {
                int i = 16 * g + 8 * h;
                __m256 xv = _mm256_loadu_ps(x + i); /* flag_c's operations, no FMA */
                __m256 b = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(vn, _mm256_loadu_ps(kb->alpha + i)),
                                                       _mm256_mul_ps(vr, _mm256_loadu_ps(kb->beta + i))),
                                         _mm256_loadu_ps(kb->eps + i));
                __m256 hit = _mm256_or_ps(_mm256_cmp_ps(_mm256_add_ps(xv, b), _mm256_loadu_ps(kb->t_top + i), _CMP_GE_OQ),
                                          _mm256_cmp_ps(_mm256_sub_ps(xv, b), _mm256_loadu_ps(kb->t_bottom + i), _CMP_LE_OQ));
                mask |= (unsigned)_mm256_movemask_ps(hit) << 8 * h;
                _mm256_storeu_ps(max + i, _mm256_max_ps(xv, _mm256_loadu_ps(max + i)));
            }
            if (mask) hit_row[(size_t)g * nv + n_hits[g]] = (uint32_t)v, hit_mask[(size_t)g * nv + n_hits[g]++] = (uint16_t)mask;
        }
    }
    for (int i = 0; i < m; i++) sum[i] = 0;
    for (int v = 0; v < nv; v++) {
        const float *x = c + (size_t)v * ldc;
        for (int i = 0; i < m; i += 8) {
            __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(max + i)));
            _mm256_storeu_pd(sum + i, _mm256_add_pd(_mm256_loadu_pd(sum + i), _mm256_cvtps_pd(_mm256_castps256_ps128(e))));
            _mm256_storeu_pd(sum + i + 4, _mm256_add_pd(_mm256_loadu_pd(sum + i + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
        }
    }
}
#endif

void kern_scan_cols(const float *c, int nv, int m, int ldc, const float *rn, const float *rr, const KernBounds *kb,
                    float *max, double *sum, uint32_t *hit_row, uint16_t *hit_mask, int *n_hits) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return scan_cols_avx512(c, nv, m, ldc, rn, rr, kb, max, sum, hit_row, hit_mask, n_hits);
    if (kernel_isa() >= ISA_AVX2) return scan_cols_avx2(c, nv, m, ldc, rn, rr, kb, max, sum, hit_row, hit_mask, n_hits);
#endif
    scan_cols_c(c, nv, m, ldc, rn, rr, kb, max, sum, hit_row, hit_mask, n_hits);
}
