/* attn.c — grouped-query attention on the fast path (see attn.h).
 *
 * A call covers the T×G queries that share one KV head. Three sweeps, each
 * reading the cache once for all of them:
 *
 *   scores  for each position j, K row j (widened once when F16) meets every
 *           query that sees it: s[i][j] = q_i · k_j / √hd
 *   softmax per query, over its own positions: the maximum (kern_max), then
 *           e^(s − max) in place and its sum (kern_exp, vectorised)
 *   values  for each position j, V row j is added into every query's output
 *           that sees it, a_ij · v_j, along hd (FMA); then out_i /= Σ_i
 *
 * The dot product and the axpy run in the set's vectors: lane l of a vector
 * accumulator takes the elements l, l + W, l + 2W, ... and the lanes are
 * added in a fixed tree at the end — per query, never across queries, which
 * is what makes a prompt's bits those of token-by-token decode.
 */
#include "tensor/attn.h"

#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "tensor/dtype.h"
#include "tensor/kernels.h"

/* Row j of K or V: in place (F32), or widened into buf (F16). */
static const float *row(const float *c32, const uint16_t *c16, size_t at, int hd, float *buf) {
    if (!c16) return c32 + at;
    dtype_info(DT_F16)->to_float(c16 + at, buf, hd);
    return buf;
}

/* The two sweeps over the cache, once per kernel set (TARGET its function
 * attribute) so that its dot product and axpy inline into the loops. Query i
 * = t·G + g sees n0 + t positions: position j is seen from token j − n0 + 1
 * on. s holds a row of nmax scores per query. */
#define QUERY(p, i) ((p) + (size_t)((i) / G) * ldq + (size_t)((i) % G) * hd)
#define SWEEPS(SET, TARGET)                                                                                           \
    TARGET static void scores_##SET(const AttnKV *kv, const float *q, int T, int G, size_t ldq, int n0, int nmax,      \
                                    float *s, float *buf) {                                                           \
        int hd = kv->hd;                                                                                              \
        float scale = 1.0f / sqrtf((float)hd);                                                                        \
        for (int j = 0; j < nmax; j++) {                                                                              \
            const float *k = row(kv->k, kv->k16, (size_t)j * kv->ld, hd, buf);                                        \
            for (int t = j < n0 ? 0 : j - n0 + 1; t < T; t++)                                                         \
                for (int g = 0; g < G; g++)                                                                           \
                    s[(size_t)(t * G + g) * nmax + j] = dot_##SET(q + t * ldq + (size_t)g * hd, k, hd) * scale;       \
        }                                                                                                             \
    }
#define VALUES(SET, TARGET)                                                                                           \
    TARGET static void values_##SET(const AttnKV *kv, const float *s, int T, int G, size_t ldq, int n0, int nmax,      \
                                    float *out, float *buf) {                                                         \
        int hd = kv->hd;                                                                                              \
        for (int j = 0; j < nmax; j++) {                                                                              \
            const float *v = row(kv->v, kv->v16, (size_t)j * kv->ld, hd, buf);                                        \
            for (int t = j < n0 ? 0 : j - n0 + 1; t < T; t++)                                                         \
                for (int g = 0; g < G; g++)                                                                           \
                    axpy_##SET(out + t * ldq + (size_t)g * hd, s[(size_t)(t * G + g) * nmax + j], v, hd);             \
        }                                                                                                             \
    }

/* ----------------------------------------------------------------------------
 * Portable C: 8 lanes in an array (GCC vectorises the lanes, not a reduction,
 * so no -ffast-math is needed), added pairwise at the end. */

static inline float dot_c(const float *a, const float *b, int n) {
    float s[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) s[l] += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static inline void axpy_c(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

SWEEPS(c, )
VALUES(c, )

/* ----------------------------------------------------------------------------
 * AVX2 + FMA (8 lanes) and AVX-512 (16 lanes); the tail masked, its lanes
 * zero, so an odd head_dim costs one masked step. */

#if NM_X86
__attribute__((target("avx2"))) static inline __m256i attn_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"))) static inline float dot_avx2(const float *a, const float *b, int n) {
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s);
    if (i < n) {
        __m256i k = attn_lanes(n - i);
        s = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k), s);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma"))) static inline void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i k = attn_lanes(n - i);
        _mm256_maskstore_ps(y + i, k, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, k), _mm256_maskload_ps(y + i, k)));
    }
}

__attribute__((target("avx512f"))) static inline float dot_avx512(const float *a, const float *b, int n) {
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s);
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s);
    }
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f"))) static inline void axpy_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}

SWEEPS(avx2, __attribute__((target("avx2,fma"))))
VALUES(avx2, __attribute__((target("avx2,fma"))))
SWEEPS(avx512, __attribute__((target("avx512f"))))

/* AVX-512's Σ a·v keeps the outputs in registers: four queries × 64 floats
 * of head_dim at a time, sixteen accumulators, each V chunk loaded once for
 * the four (axpy through memory waited on its own stores). Each output lane
 * is still fma(a_j, v_j, ·) from +0 in position order: axpy_avx512's bits
 * on a zeroed output. */
__attribute__((target("avx512f"))) static void values_avx512(const AttnKV *kv, const float *s, int T, int G, size_t ldq,
                                                             int n0, int nmax, float *out, float *buf) {
    int hd = kv->hd, nq = T * G;
    for (int i0 = 0; i0 < nq; i0 += 4) {
        int m = nq - i0 < 4 ? nq - i0 : 4, n[4], nhi = n0 + (i0 + m - 1) / G; /* the last query sees the most */
        const float *a[4];
        for (int u = 0; u < 4; u++) {
            int i = i0 + (u < m ? u : 0);
            n[u] = u < m ? n0 + i / G : 0, a[u] = s + (size_t)i * nmax;
        }
        for (int c = 0; c < hd; c += 64) {
            __mmask16 k[4];
            __m512 acc[4][4];
#pragma GCC unroll 4
            for (int w = 0; w < 4; w++) {
                int left = hd - c - 16 * w;
                k[w] = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
                for (int u = 0; u < 4; u++) acc[u][w] = _mm512_setzero_ps();
            }
            for (int j = 0; j < nhi; j++) {
                const float *v = row(kv->v, kv->v16, (size_t)j * kv->ld, hd, buf) + c;
                __m512 vv[4];
#pragma GCC unroll 4
                for (int w = 0; w < 4; w++) vv[w] = _mm512_maskz_loadu_ps(k[w], v + 16 * w);
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) {
                    if (j >= n[u]) continue;
                    __m512 va = _mm512_set1_ps(a[u][j]);
#pragma GCC unroll 4
                    for (int w = 0; w < 4; w++) acc[u][w] = _mm512_fmadd_ps(va, vv[w], acc[u][w]);
                }
            }
            for (int u = 0; u < m; u++) {
                int i = i0 + u;
                float *o = out + (size_t)(i / G) * ldq + (size_t)(i % G) * hd + c;
#pragma GCC unroll 4
                for (int w = 0; w < 4; w++) _mm512_mask_storeu_ps(o + 16 * w, k[w], acc[u][w]);
            }
        }
    }
}
#endif

/* ----------------------------------------------------------------------------
 * The three sweeps */

size_t attn_scratch_floats(int T, int G, int n, int hd) { return (size_t)T * G * ((size_t)n + 1) + (size_t)hd; }

void attn_heads(const AttnKV *kv, const float *q, int T, int G, size_t ldq, int n0, float *out, float *scratch) {
    int hd = kv->hd, nq = T * G, nmax = n0 + T - 1;
    float *s = scratch, *inv = s + (size_t)nq * nmax, *buf = inv + nq;
    Isa set = kernel_isa();
    (void)set; /* the portable build (NM_NO_X86) has one set */
#if NM_X86
    if (set >= ISA_AVX512) scores_avx512(kv, q, T, G, ldq, n0, nmax, s, buf);
    else if (set >= ISA_AVX2) scores_avx2(kv, q, T, G, ldq, n0, nmax, s, buf);
    else
#endif
        scores_c(kv, q, T, G, ldq, n0, nmax, s, buf);
    for (int i = 0; i < nq; i++) {
        float *si = s + (size_t)i * nmax;
        int n = n0 + i / G;
        inv[i] = (float)(1.0 / kern_exp(si, n, kern_max(si, n), si));
        memset(QUERY(out, i), 0, (size_t)hd * sizeof(float));
    }
#if NM_X86
    if (set >= ISA_AVX512) values_avx512(kv, s, T, G, ldq, n0, nmax, out, buf);
    else if (set >= ISA_AVX2) values_avx2(kv, s, T, G, ldq, n0, nmax, out, buf);
    else
#endif
        values_c(kv, s, T, G, ldq, n0, nmax, out, buf);
    for (int i = 0; i < nq; i++) {
        float *o = QUERY(out, i);
        for (int d = 0; d < hd; d++) o[d] *= inv[i];
    }
#undef QUERY
}
