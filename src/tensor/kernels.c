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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/util.h"
#include "tensor/kernels_amx.h"

_Static_assert(KERN_LANES == AMX_LANES, "kernels_amx.c reads kern_pack_bf16's panels");

/* K block depth: the 16 panels of a neuron block pass under each group of
 * head rows, so their blocks (depth × 32 elements each) should stay in L2
 * together. At 256 FP32 that is 512 KiB, which Zen 5's and the Xeon's L2
 * (1 and 2 MiB) hold; the avx2 set runs on CPUs with 512 KiB of L2 or less
 * (Zen 3), so there FP32 goes 128 deep (256 KiB; BF16 panels are half the
 * size already). */
enum { KC = 256 };

static int block_depth(Isa set, int esize) { return set == ISA_AVX2 && esize == 4 ? KC / 2 : KC; }

/* Rows are taken in bands, each band through every K block before the
 * next: under avx2, bands whose sums (band × ldc floats) fill at most 1 MiB,
 * 504 of a 1024-row tile of 512 neurons. Measured on Zen 3, not derived:
 * the map loop 1.11× (median of 8 paired runs; bands of 252 to 516 rows the
 * same within noise, of 96 no gain). The order of the K blocks, and so
 * every sum, is the same. Other sets, and the BF16 product (whose pass
 * with bands ran 0.90–0.99× in 3 paired prefilter runs): one band. */
static int band_rows(Isa set, int esize, int n, int ldc) {
    if (set != ISA_AVX2 || esize != 4 || ldc <= 0) return n;
    int band = (1 << 20) / (ldc * 4) / KERN_ROWS * KERN_ROWS;
    return band < KERN_ROWS ? KERN_ROWS : band;
}

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

/* 16 × 16 blocks, rows j from j_from on (every column i). */
static void transpose_c(const float *c, int nv, int m, int ldc, float *out, int j_from) {
    enum { B = 16 };
    for (int j0 = j_from; j0 < nv; j0 += B)
        for (int i0 = 0; i0 < m; i0 += B)
            for (int i = i0; i < i0 + B && i < m; i++)
                for (int j = j0; j < j0 + B && j < nv; j++) out[(size_t)i * nv + j] = c[(size_t)j * ldc + i];
}

#if NM_X86
/* A 16 × 16 block in registers: pairs of rows interleaved (unpack), then
 * pairs of pairs (shuffle), then 128-bit quarters twice. Only data moves:
 * the same bits as transpose_c. Since the BF16 pass on AMX, the transpose
 * of every tile was 8% of a certified map (perf), in portable C. */
__attribute__((target("avx512f"))) static void transpose_avx512(const float *c, int nv, int m, int ldc, float *out) {
    int nv16 = nv / 16 * 16, m16 = m / 16 * 16;
    for (int j0 = 0; j0 < nv16; j0 += 16)
        for (int i0 = 0; i0 < m16; i0 += 16) {
            __m512 r[16], t[16];
            for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_ps(c + (size_t)(j0 + k) * ldc + i0);
            for (int k = 0; k < 16; k += 2) {
                t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
                t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
            }
            for (int k = 0; k < 16; k += 4) {
                r[k] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
                r[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
                r[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
                r[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int k = 0; k < 4; k++) {
                t[k] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0x88);
                t[k + 4] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0xdd);
                t[k + 8] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0x88);
                t[k + 12] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0xdd);
            }
            for (int k = 0; k < 8; k++) {
                r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
                r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
            }
            for (int k = 0; k < 16; k++) _mm512_storeu_ps(out + (size_t)(i0 + k) * nv + j0, r[k]);
        }
    /* the edges: columns past m16 of the whole rows, then the rows past nv16 */
    for (int j = 0; j < nv16; j++)
        for (int i = m16; i < m; i++) out[(size_t)i * nv + j] = c[(size_t)j * ldc + i];
    transpose_c(c, nv, m, ldc, out, nv16);
}
#endif

void kern_transpose(const float *c, int nv, int m, int ldc, float *out) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return transpose_avx512(c, nv, m, ldc, out);
#endif
    transpose_c(c, nv, m, ldc, out, 0);
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

#if NM_X86
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

/* AVX2 has 16 vector registers of 8 floats: a 12 × 32 block of sums does
 * not fit. So the block is done in four 3 × 32 pieces: 12 sums, four panel
 * vectors, one broadcast. The classic Haswell shape, 6 rows × 16 lanes,
 * needs twice the broadcasts per FMA, and on Zen 3 a broadcast seems to
 * take a slot of the FMA pipes: timed alone there, 0.96× this one. Every
 * sum is one FMA chain in k order: the same bits as above. */
__attribute__((target("avx2,fma"))) static void micro_f32_avx2(int kc, const float *a, const float *const *rp, int nr,
                                                              float *c, int ldc, int first) {
    for (int g = 0; g < nr; g += 3) {
        __m256 acc[3][4];
#pragma GCC unroll 3
        for (int r = 0; r < 3; r++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                acc[r][q] = first || g + r >= nr ? _mm256_setzero_ps() : _mm256_loadu_ps(c + (size_t)(g + r) * ldc + 8 * q);
        const float *r0 = rp[g], *r1 = rp[g + 1 < nr ? g + 1 : g], *r2 = rp[g + 2 < nr ? g + 2 : g];
        for (int k = 0; k < kc; k++) {
            const float *ak = a + (size_t)k * KERN_LANES;
            __m256 a0 = _mm256_loadu_ps(ak), a1 = _mm256_loadu_ps(ak + 8), a2 = _mm256_loadu_ps(ak + 16),
                   a3 = _mm256_loadu_ps(ak + 24);
            __m256 h = _mm256_broadcast_ss(r0 + k);
            acc[0][0] = _mm256_fmadd_ps(h, a0, acc[0][0]), acc[0][1] = _mm256_fmadd_ps(h, a1, acc[0][1]);
            acc[0][2] = _mm256_fmadd_ps(h, a2, acc[0][2]), acc[0][3] = _mm256_fmadd_ps(h, a3, acc[0][3]);
            h = _mm256_broadcast_ss(r1 + k);
            acc[1][0] = _mm256_fmadd_ps(h, a0, acc[1][0]), acc[1][1] = _mm256_fmadd_ps(h, a1, acc[1][1]);
            acc[1][2] = _mm256_fmadd_ps(h, a2, acc[1][2]), acc[1][3] = _mm256_fmadd_ps(h, a3, acc[1][3]);
            h = _mm256_broadcast_ss(r2 + k);
            acc[2][0] = _mm256_fmadd_ps(h, a0, acc[2][0]), acc[2][1] = _mm256_fmadd_ps(h, a1, acc[2][1]);
            acc[2][2] = _mm256_fmadd_ps(h, a2, acc[2][2]), acc[2][3] = _mm256_fmadd_ps(h, a3, acc[2][3]);
        }
#pragma GCC unroll 3
        for (int r = 0; r < 3; r++)
            if (g + r < nr)
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) _mm256_storeu_ps(c + (size_t)(g + r) * ldc + 8 * q, acc[r][q]);
    }
}

/* VDPBF16PS emulated, for CPUs without AVX-512 BF16: a BF16 value is the top
 * half of its FP32, so a pair (k, k+1) held in 32 bits widens to the even
 * element by a shift and to the odd one by a mask. The product of two BF16
 * values is exact in FP32 (8-bit significands), so fma(h, x, s) rounds once
 * per product, like the instruction: at most K roundings, the bound the
 * prefilter assumes (underflow aside, which its ε covers). Odd then even,
 * as micro_bf16_c. 4 rows × 16 lanes at a time: 8 sums, 4 widened panel
 * vectors, 2 broadcasts. About the FP32 kernel's speed (the same number of
 * FMAs), on half the memory. */
__attribute__((target("avx2,fma"))) static void micro_bf16_avx2(int kc, const uint16_t *a, const uint16_t *const *rp,
                                                               int nr, float *c, int ldc, int first) {
    const __m256i odd_mask = _mm256_set1_epi32((int)0xffff0000u);
    for (int g = 0; g < nr; g += 4)
        for (int half = 0; half < KERN_LANES; half += 16) {
            __m256 acc[4][2];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                float *cr = c + (size_t)(g + r) * ldc + half;
                acc[r][0] = first || g + r >= nr ? _mm256_setzero_ps() : _mm256_loadu_ps(cr);
                acc[r][1] = first || g + r >= nr ? _mm256_setzero_ps() : _mm256_loadu_ps(cr + 8);
            }
            for (int k = 0; k < kc; k += 2) {
                const uint16_t *ak = a + (size_t)k * KERN_LANES + 2 * half;
                __m256i p0 = _mm256_loadu_si256((const void *)ak), p1 = _mm256_loadu_si256((const void *)(ak + 16));
                __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(p0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(p0, odd_mask));
                __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(p1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(p1, odd_mask));
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    int32_t pair;
                    memcpy(&pair, rp[g + r] + k, 4);
                    __m256i hp = _mm256_set1_epi32(pair);
                    __m256 he = _mm256_castsi256_ps(_mm256_slli_epi32(hp, 16)), ho = _mm256_castsi256_ps(_mm256_and_si256(hp, odd_mask));
                    acc[r][0] = _mm256_fmadd_ps(he, e0, _mm256_fmadd_ps(ho, o0, acc[r][0]));
                    acc[r][1] = _mm256_fmadd_ps(he, e1, _mm256_fmadd_ps(ho, o1, acc[r][1]));
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                if (g + r < nr) {
                    _mm256_storeu_ps(c + (size_t)(g + r) * ldc + half, acc[r][0]);
                    _mm256_storeu_ps(c + (size_t)(g + r) * ldc + half + 8, acc[r][1]);
                }
        }
}
#endif

/* ----------------------------------------------------------------------------
 * The block loops, one for both element types (esize bytes per element) */

static void widen_c(const uint16_t *h, int n, float *out) {
    for (int k = 0; k < n; k++) out[k] = kern_f32(h[k]);
}

#if NM_X86
__attribute__((target("avx512f"))) static void widen_avx512(const uint16_t *h, int n, float *out) {
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_si512(out + k, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(h + k))), 16));
    widen_c(h + k, n - k, out + k);
}

__attribute__((target("avx2"))) static void widen_avx2(const uint16_t *h, int n, float *out) {
    int k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_si256((void *)(out + k), _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(h + k))), 16));
    widen_c(h + k, n - k, out + k);
}
#endif

static void widen(Isa set, const uint16_t *h, int n, float *out) {
#if NM_X86
    if (set >= ISA_AVX512) return widen_avx512(h, n, out);
    if (set >= ISA_AVX2) return widen_avx2(h, n, out);
#endif
    widen_c(h, n, out);
}

/* Asks for the block of the rows after row j (or, past the last, the next
 * K block's first rows) while this block computes: each row's block is only
 * a few cache lines, too short for the hardware prefetcher to follow. */
static void prefetch_next(const void *const *rows, int n, int j, int k0, int K, int depth, int esize) {
    int next = j + KERN_ROWS;
    if (next >= n) next = 0, k0 += depth;
    if (k0 >= K) return;
    int kc = K - k0 < depth ? K - k0 : depth;
    for (int r = next; r < next + KERN_ROWS && r < n; r++)
        for (int b = 0; b < kc * esize; b += 64) __builtin_prefetch((const char *)rows[r] + (size_t)k0 * esize + b);
}

/* esize: bytes per element of packed and of rows; widen: rows are BF16,
 * widened to FP32 (exactly) as their block is copied. */
static void gemm(int esize, int widen_rows, void (*micro)(void), const void *packed, int m, int K, const void *const *rows,
                 int n, float *c, int ldc) {
    int panels = kern_padded(m) / KERN_LANES;
    Isa set = kernel_isa();
    int depth = block_depth(set, esize);
    _Alignas(64) char block[KERN_ROWS][KC * 4 + 64];
    int band = band_rows(set, esize, n, ldc);
    for (int j0 = 0; j0 < n; j0 += band) {
        int jn = n - j0 < band ? n - j0 : band;
        for (int k0 = 0; k0 < K; k0 += depth) {
            int kc = K - k0 < depth ? K - k0 : depth;
            for (int j = j0; j < j0 + jn; j += KERN_ROWS) {
                int nr = j0 + jn - j < KERN_ROWS ? j0 + jn - j : KERN_ROWS;
                /* The rows' block, copied: rows K floats apart share cache
                 * sets (4 KiB aliasing), which cost a quarter of the speed. */
                const void *rp[KERN_ROWS];
                for (int r = 0; r < KERN_ROWS; r++) {
                    const void *src = rows[j + (r < nr ? r : nr - 1)];
                    if (!widen_rows) memcpy(block[r], (const char *)src + (size_t)k0 * esize, (size_t)kc * esize);
                    else widen(set, (const uint16_t *)src + k0, kc, (float *)block[r]);
                    rp[r] = block[r];
                }
                prefetch_next(rows + j0, jn, j - j0, k0, K, depth, widen_rows ? 2 : esize);
                for (int p = 0; p < panels; p++) {
                    const void *a = (const char *)packed + ((size_t)p * K + k0) * KERN_LANES * esize;
                    float *cp = c + (size_t)j * ldc + (size_t)p * KERN_LANES;
                    if (esize == 4) ((MicroF32 *)micro)(kc, a, (const float *const *)rp, nr, cp, ldc, k0 == 0);
                    else ((MicroBF16 *)micro)(kc, a, (const uint16_t *const *)rp, nr, cp, ldc, k0 == 0);
                }
            }
        }
    }
}

void kern_gemm_f32(const float *packed, int m, int K, const void *const *rows, int rows_bf16, int n, float *c, int ldc) {
    MicroF32 *micro = micro_f32_c;
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) micro = micro_f32_avx512;
    else if (kernel_isa() >= ISA_AVX2) micro = micro_f32_avx2;
#endif
    gemm(4, rows_bf16, (void (*)(void))micro, packed, m, K, rows, n, c, ldc);
}

void kern_gemm_bf16(const uint16_t *packed, int m, int K, const uint16_t *const *rows, int n, float *c, int ldc) {
    MicroBF16 *micro = micro_bf16_c;
#if NM_X86
    if (kernel_isa() >= ISA_AMX) return amx_gemm_bf16(packed, kern_padded(m) / KERN_LANES, K, rows, n, c, ldc);
    if (kernel_isa() >= ISA_AVX512BF16) micro = micro_bf16_avx512;
    else if (kernel_isa() >= ISA_AVX2) micro = micro_bf16_avx2;
#endif
    gemm(2, 0, (void (*)(void))micro, packed, m, K, (const void *const *)rows, n, c, ldc);
}

_Static_assert(KERN_ROW_SLAB == AMX_SLAB, "row tiles are kernels_amx.c's slabs");

int kern_row_tiles_pay(void) { return kernel_isa() >= ISA_AMX; }
size_t kern_row_tiles_size(int n, int K) { return amx_row_tiles_size(n, K); }
void kern_pack_row_tiles(const uint16_t *rows, int n, int K, uint16_t *out) { amx_pack_row_tiles(rows, n, K, out); }

void kern_gemm_bf16_tiles(const uint16_t *packed, int m, int K, const uint16_t *tiles, int n, float *c, int ldc) {
#if NM_X86
    if (kernel_isa() >= ISA_AMX) return amx_gemm_bf16_tiles(packed, kern_padded(m) / KERN_LANES, K, tiles, n, c, ldc);
#endif
    uint16_t *rows = xmalloc((size_t)n * K * sizeof *rows);
    const uint16_t **ptr = xmalloc((size_t)n * sizeof *ptr);
    amx_unpack_row_tiles(tiles, n, K, rows);
    for (int j = 0; j < n; j++) ptr[j] = rows + (size_t)j * K;
    kern_gemm_bf16(packed, m, K, ptr, n, c, ldc);
    free(ptr);
    free(rows);
}

/* ----------------------------------------------------------------------------
 * One vector against a few rows (the prefilter's rescoring): each logit the
 * FMA chain kern_gemm_f32 computes for it, c = fma(h[k], x[k], c) in k
 * order from 0, so the same bits; but with 16 rows in the lanes of a vector
 * (their values gathered step by step) instead of one vector in the 32
 * lanes of a panel, 31 of them wasted. */

static void dot_rows_c(const float *x, int K, const void *const *rows, int rows_bf16, int n, float *out) {
    for (int j = 0; j < n; j++) {
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s = fmaf(rows_bf16 ? kern_f32(((const uint16_t *)rows[j])[k]) : ((const float *)rows[j])[k], x[k], s);
        out[j] = s;
    }
}

#if NM_X86
/* The rows as element offsets from the first one, for a gather; 0 when one
 * is too far away for 32 bits (then the portable loop takes the group). */
static int row_offsets(const void *const *rows, int nr, int lanes, int K, int esize, int32_t *off) {
    const char *base = rows[0];
    for (int r = 0; r < lanes; r++) {
        ptrdiff_t d = ((const char *)rows[r < nr ? r : 0] - base) / esize;
        if (d < -(ptrdiff_t)INT32_MAX / 2 || d > (ptrdiff_t)INT32_MAX / 2 - K) return 0;
        off[r] = (int32_t)d;
    }
    return 1;
}

__attribute__((target("avx512f"))) static void dot_rows_avx512(const float *x, int K, const void *const *rows, int rows_bf16,
                                                               int n, float *out) {
    for (int j0 = 0; j0 < n; j0 += 16) {
        int nr = n - j0 < 16 ? n - j0 : 16;
        int32_t off[16];
        if (K < 2 || !row_offsets(rows + j0, nr, 16, K, rows_bf16 ? 2 : 4, off)) {
            dot_rows_c(x, K, rows + j0, rows_bf16, nr, out + j0);
            continue;
        }
        __m512i idx = _mm512_loadu_si512(off);
        __m512 acc = _mm512_setzero_ps();
        if (rows_bf16) { /* a 32-bit gather brings the pair (k, k+1) of each row */
            const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
            int k = 0;
            for (; k + 2 <= K; k += 2) {
                __m512i g = _mm512_i32gather_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(k)), rows[j0], 2);
                acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(g, 16)), _mm512_set1_ps(x[k]), acc);
                acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(g, hi_mask)), _mm512_set1_ps(x[k + 1]), acc);
            }
            if (k < K) { /* odd K: the last value, as the high half of the pair before it */
                __m512i g = _mm512_i32gather_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(k - 1)), rows[j0], 2);
                acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(g, hi_mask)), _mm512_set1_ps(x[k]), acc);
            }
        } else {
            for (int k = 0; k < K; k++)
                acc = _mm512_fmadd_ps(_mm512_i32gather_ps(_mm512_add_epi32(idx, _mm512_set1_epi32(k)), rows[j0], 4),
                                      _mm512_set1_ps(x[k]), acc);
        }
        _mm512_mask_storeu_ps(out + j0, (__mmask16)((1u << nr) - 1), acc);
    }
}

__attribute__((target("avx2,fma"))) static void dot_rows_avx2(const float *x, int K, const void *const *rows, int rows_bf16,
                                                              int n, float *out) {
    for (int j0 = 0; j0 < n; j0 += 8) {
        int nr = n - j0 < 8 ? n - j0 : 8;
        int32_t off[8];
        if (K < 2 || !row_offsets(rows + j0, nr, 8, K, rows_bf16 ? 2 : 4, off)) {
            dot_rows_c(x, K, rows + j0, rows_bf16, nr, out + j0);
            continue;
        }
        __m256i idx = _mm256_loadu_si256((const void *)off);
        __m256 acc = _mm256_setzero_ps();
        if (rows_bf16) {
            const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
            int k = 0;
            for (; k + 2 <= K; k += 2) {
                __m256i g = _mm256_i32gather_epi32(rows[j0], _mm256_add_epi32(idx, _mm256_set1_epi32(k)), 2);
                acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(g, 16)), _mm256_set1_ps(x[k]), acc);
                acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(g, hi_mask)), _mm256_set1_ps(x[k + 1]), acc);
            }
            if (k < K) {
                __m256i g = _mm256_i32gather_epi32(rows[j0], _mm256_add_epi32(idx, _mm256_set1_epi32(k - 1)), 2);
                acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(g, hi_mask)), _mm256_set1_ps(x[k]), acc);
            }
        } else {
            for (int k = 0; k < K; k++)
                acc = _mm256_fmadd_ps(_mm256_i32gather_ps(rows[j0], _mm256_add_epi32(idx, _mm256_set1_epi32(k)), 4),
                                      _mm256_set1_ps(x[k]), acc);
        }
        float tmp[8];
        _mm256_storeu_ps(tmp, acc);
        memcpy(out + j0, tmp, (size_t)nr * sizeof *tmp);
    }
}
#endif

void kern_dot_rows(const float *x, int K, const void *const *rows, int rows_bf16, int n, float *out) {
#if NM_X86
    if (kernel_isa() >= ISA_AVX512) return dot_rows_avx512(x, K, rows, rows_bf16, n, out);
    if (kernel_isa() >= ISA_AVX2) return dot_rows_avx2(x, K, rows, rows_bf16, n, out);
#endif
    dot_rows_c(x, K, rows, rows_bf16, n, out);
}
