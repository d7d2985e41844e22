/* gemm_q.c — batched products on the stored blocks (see gemm_q.h).
 *
 * Every quantised kernel has one shape, a tile of rows × tokens: unpack
 * block i of RT rows once (unsigned bytes, scale vectors: a small record per
 * row, in L1), then for each token of the batch load its activation block
 * into registers once and meet the RT rows with it, adding each product
 * into that (row, token)'s accumulators. The weights are read from memory
 * and unpacked once per batch; the batch's activations come from L2 once
 * per RT rows; what a (row, token) adds per block is only the byte products
 * and one or two float multiply-adds.
 *
 * The integer arithmetic (see vecdot.c's header for the bounds): a weight
 * block and an activation block meet as unsigned × signed bytes, summed in
 * int16 pairs (maddubs) then int32 (madd) — or in one step, vpdpbusd, under
 * VNNI; a K-quant group's scale multiplies its int16 pair sums (madd with
 * the scale, or vpdpwssd under VNNI, on 512-bit vectors). Integers are
 * exact, so the avx2 and vnni kernels give the same int32 lanes; each lane
 * then goes to float and is scaled once per block. The float steps of a
 * (row, token) are its own, in block order, whatever the tile, T or the
 * thread: a token's result never depends on the batch (gemm_q.h), and
 * decode (T = 1) gives the bits a prompt gives.
 *
 * The K-quants keep their minimums' and offsets' term in vectors: the
 * activation's 16 group sums (bsums) times the block's mins (Q4_K, Q5_K) or
 * scales (Q6_K) in one madd, where the single-token kernels summed them in
 * scalar code per block and token.
 *
 * Two shapes break the staging where it costs: Q8_0 under VNNI (register
 * tiles of 4 rows × 4 tokens over block pairs, below) and decode of the
 * K-quants under VNNI (gemv_q.c: no staging, rows in flight) — each with
 * the int32 lanes and float steps of the kernels here, so the bits hold
 * across kernels too (tests/test_vecdot.c compares every set with avx2's;
 * but the quantised types under the amx set run gemm_amx.c's AMX-INT8 kernels,
 * whose whole-block int32 sums take the portable C kernel's float steps:
 * its bits, not these).
 * Decode streams each row once and asks for it 4 KB ahead (PREFETCH).
 *
 * BF16 rows: under AVX-512 BF16, vdpbf16ps on the stored pairs against the
 * activation rounded to BF16, tiles of 4 rows × 4 tokens; below it (and F16
 * rows) widened in registers and multiplied with the F32 activation by FMA,
 * four accumulators per token, a row read (from L1) once per tile of
 * tokens, each token's sums exactly the single-token kernel's.
 *
 * Not here: BF16 rows under the amx set, and the quantised rows there
 * where the CPU has AMX-INT8, which run on AMX tiles (gemm_amx.c, dispatched by vecdot.c
 * against their own packed batches); the amx set's other kernels are
 * these, as under avx512bf16.
 */
#include "tensor/gemm_q.h"

#include "tensor/half.h"

#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>

enum { QK = 32, QKK = 256, GT = 32 /* tokens whose accumulators live on the stack at once */ };

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* DOT8(acc, u, s): adds the four u8·s8 products of each int32 lane. */
T_AVX2 static inline __m256i dot8_avx2(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
T_VNNI static inline __m256i dot8_vnni(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
/* DOT8S(acc, u, s, scale16): the same, each int16 pair sum times its scale
 * (a group's pair sums stay far inside int16: vecdot.c's bounds). */
T_AVX2 static inline __m256i dot8s_avx2(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
}
T_VNNI static inline __m256i dot8s_vnni(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale16);
}

T_AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
T_AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))

#define GEMM_ARGS \
    const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T, float *out, int64_t ldo

/* Decode streams each row once, straight from memory: the hardware's
 * prefetcher alone kept one thread at 5-6 GB/s (bench/gemm_q.c, Q8_0,
 * weights beyond the caches), asking for the lines 4 KB ahead of the one
 * being read gave 7-19 (noisy, shared machine; never slower). Rows are
 * contiguous, so "ahead" runs on into the next rows; a prefetch never
 * faults, past the matrix's end included. */
enum { PREFETCH = 4096 };
#define PREFETCH_AHEAD(p, bytes)                                                                    \
    for (size_t o_ = 0; o_ < (bytes); o_ += 64) _mm_prefetch((const char *)(p) + PREFETCH + o_, _MM_HINT_T0)

/* ----------------------------------------------------------------------------
 * Q8_0 and Q4_0, blocks of 32. Q8_0: |w| · (a·sign(w)), ggml's trick (our
 * activations are in [-127, 127], so a·sign(w) never overflows); Q4_0:
 * nibbles (unsigned) · a, less 8·Σa, kept per row and token in float. Two
 * float chains per row and token, even and odd blocks: one chain would wait
 * on the FMA's latency every block when T = 1.
 *
 * Tiled as the K-quants below: eight blocks of RT rows unpacked at a time
 * (BUnp, L1), each token's eight activation blocks loaded once per tile and
 * met by the RT rows; GB tokens' accumulators at a time. */

enum { RT = 16, GB = 16 }; /* rows per tile; tokens per group of 32-blocks */

typedef struct {
    _Alignas(32) __m256i u[8]; /* the unsigned operand: |w| (Q8_0), the nibbles (Q4_0) */
    __m256i x[8];              /* Q8_0: w itself, whose signs go onto the activation */
    __m256 d[8];               /* the block scales, broadcast */
    float dw[8];
} BUnp;

/* Token k's blocks i0..i0+M (activation at a) against the tile's rows. */
#define B32_TOKEN(SFX, Q4, M, INIT)                                                                 \
    __m256i y[8] INIT;                                                                              \
    __m256 ad[8] INIT;                                                                              \
    _Pragma("GCC unroll 8") for (int j = 0; j < (M); j++) y[j] = LOAD(a[j].qs), ad[j] = _mm256_set1_ps(a[j].d); \
    for (int rr = 0; rr < nrr; rr++) {                                                              \
        const BUnp *p = &U[rr];                                                                     \
        __m256 c[2] = { acc[k][rr][0], acc[k][rr][1] }; /* in registers */                          \
        _Pragma("GCC unroll 8") for (int j = 0; j < (M); j++) {                                     \
            __m256i s = Q4 ? y[j] : _mm256_sign_epi8(y[j], p->x[j]);                                \
            __m256i q = dot8_##SFX(_mm256_setzero_si256(), p->u[j], s);                             \
            c[j & 1] = _mm256_fmadd_ps(_mm256_mul_ps(p->d[j], ad[j]), _mm256_cvtepi32_ps(q), c[j & 1]); \
            if (Q4) sum[k][rr] -= p->dw[j] * a[j].d * (float)(8 * a[j].sum);                        \
        }                                                                                           \
        acc[k][rr][0] = c[0], acc[k][rr][1] = c[1];                                                 \
    }

#define GEMM_B32(NAME, SFX, TGT, BT, Q4)                                                            \
    TGT static void NAME(GEMM_ARGS) {                                                               \
        BUnp U[RT];                                                                                 \
        __m256 acc[GB][RT][2];                                                                      \
        float sum[GB][RT];                                                                          \
        int64_t nb = n / QK;                                                                        \
        if (T == 1) { /* decode: nothing to share, so no staging; the same steps in the same order */ \
            const VecQ8A *a = (const VecQ8A *)act;                                                  \
            for (int64_t r = 0; r < nr; r++) {                                                      \
                const BT *bl = (const BT *)((const char *)w + (size_t)r * row_bytes);               \
                __m256 c[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };                         \
                float s1 = 0;                                                                       \
                for (int64_t i = 0; i < nb; i++) {                                                  \
                    PREFETCH_AHEAD(bl + i, sizeof *bl);                                             \
                    __m256i u, y = LOAD(a[i].qs);                                                   \
                    if (Q4) {                                                                       \
                        __m128i q = _mm_loadu_si128((const __m128i *)bl[i].qs);                     \
                        u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF)); \
                    } else {                                                                        \
                        __m256i x = LOAD(bl[i].qs);                                                 \
                        u = _mm256_sign_epi8(x, x), y = _mm256_sign_epi8(y, x);                     \
                    }                                                                               \
                    float dw = h2f(bl[i].d);                                                        \
                    __m256i q = dot8_##SFX(_mm256_setzero_si256(), u, y);                           \
                    c[i & 1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(dw), _mm256_set1_ps(a[i].d)), _mm256_cvtepi32_ps(q), c[i & 1]); \
                    if (Q4) s1 -= dw * a[i].d * (float)(8 * a[i].sum);                              \
                }                                                                                   \
                out[r] = hsum_ps(_mm256_add_ps(c[0], c[1])) + s1;                                   \
            }                                                                                       \
            return;                                                                                 \
        }                                                                                           \
        for (int64_t r0 = 0; r0 < nr; r0 += RT) {                                                   \
            int nrr = nr - r0 < RT ? (int)(nr - r0) : RT;                                           \
            for (int k0 = 0; k0 < T; k0 += GB) {                                                    \
                int nk = T - k0 < GB ? T - k0 : GB;                                                 \
                for (int k = 0; k < nk; k++)                                                        \
                    for (int rr = 0; rr < nrr; rr++) acc[k][rr][0] = acc[k][rr][1] = _mm256_setzero_ps(), sum[k][rr] = 0; \
                for (int64_t i0 = 0; i0 < nb; i0 += 8) {                                            \
                    int m = nb - i0 < 8 ? (int)(nb - i0) : 8;                                       \
                    for (int rr = 0; rr < nrr; rr++) {                                              \
                        const BT *bl = (const BT *)((const char *)w + (size_t)(r0 + rr) * row_bytes) + i0; \
                        for (int j = 0; j < m; j++) {                                               \
                            if (Q4) {                                                               \
                                __m128i q = _mm_loadu_si128((const __m128i *)bl[j].qs);             \
                                U[rr].u[j] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF)); \
                            } else {                                                                \
                                __m256i x = LOAD(bl[j].qs);                                         \
                                U[rr].x[j] = x, U[rr].u[j] = _mm256_sign_epi8(x, x);                \
                            }                                                                       \
                            U[rr].dw[j] = h2f(bl[j].d), U[rr].d[j] = _mm256_set1_ps(U[rr].dw[j]);   \
                        }                                                                           \
                    }                                                                               \
                    const char *ap = act + (size_t)k0 * act_bytes + (size_t)i0 * sizeof(VecQ8A);    \
                    for (int k = 0; k < nk; k++, ap += act_bytes) {                                 \
                        const VecQ8A *a = (const VecQ8A *)ap;                                       \
                        if (m == 8) { /* a whole run: a fixed trip count, unrolled, in registers */ \
                            B32_TOKEN(SFX, Q4, 8, )                                                 \
                        } else {                                                                    \
                            B32_TOKEN(SFX, Q4, m, = { 0 }) /* zeros: the compiler cannot see m ≤ 8 */ \
                        }                                                                           \
                    }                                                                               \
                }                                                                                   \
                for (int k = 0; k < nk; k++)                                                        \
                    for (int rr = 0; rr < nrr; rr++)                                                \
                        out[(size_t)(k0 + k) * ldo + r0 + rr] = hsum_ps(_mm256_add_ps(acc[k][rr][0], acc[k][rr][1])) + sum[k][rr]; \
            }                                                                                       \
        }                                                                                           \
    }

GEMM_B32(gemm_q8_0_avx2, avx2, T_AVX2, BQ8_0, 0)
GEMM_B32(gemm_q4_0_avx2, avx2, T_AVX2, BQ4_0, 1)
GEMM_B32(gemm_q4_0_vnni, vnni, T_VNNI, BQ4_0, 1)

/* ----------------------------------------------------------------------------
 * Q8_0 under VNNI: two blocks per 512-bit vector, block 2p in the low half
 * and 2p+1 in the high one — so the low half of a (row, token)'s one
 * accumulator is the even blocks' chain above and the high half the odd
 * blocks', updated by the same float steps, lane by lane: the bits of the
 * kernels above (gemm_q.h's contract across kernels, sets and T).
 *
 * No sign trick per product: the activation goes unsigned once per token
 * (y + 128, a xor), the weights stay signed, vpdpbusd sums (y + 128)·w and
 * starts from -128·Σw per lane, a row's own correction made once per block
 * pair — the same exact int32 lanes Σ y·w. A (row, token) pair costs one
 * vpdpbusd, a conversion, the scales' product and an FMA per 64 values.
 *
 * Prompts: tiles of 4 rows × 4 tokens (16 accumulators in registers) over
 * the block pairs of a chunk of K; the 4 rows' pairs staged once per chunk
 * (Q8Pair, 48 KB for 64 pairs, L1/L2), each token's pair built from its two
 * activation blocks once per tile of rows and met by the 4 rows there. */

typedef struct { __m512i w, corr; __m512 dw; } Q8Pair; /* a row's block pair, as the tiles read it */

T_VNNI static inline __m512 halves_ps(float a, float b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)), _mm256_castps_pd(_mm256_set1_ps(b)), 1));
}
/* The pair at bl (TWO = 0: the row's last block alone; the high half zero). */
#define Q8_W(bl, TWO) \
    ((TWO) ? _mm512_inserti64x4(_mm512_castsi256_si512(LOAD((bl)[0].qs)), LOAD((bl)[1].qs), 1) : _mm512_zextsi256_si512(LOAD((bl)[0].qs)))
T_VNNI static inline void q8_pair(const BQ8_0 *bl, int two, Q8Pair *p) {
    p->w = Q8_W(bl, two);
    p->corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(-128), p->w));
    p->dw = halves_ps(h2f(bl[0].d), two ? h2f(bl[1].d) : 0.0f);
}
/* A token's pair at a: y + 128, its two scales. */
#define Q8_Y(a, TWO, yx, ad)                                                                        \
    do {                                                                                            \
        const VecQ8A *a_ = (a);                                                                     \
        __m512i y_ = (TWO) ? _mm512_inserti64x4(_mm512_castsi256_si512(LOAD(a_[0].qs)), LOAD(a_[1].qs), 1) \
                           : _mm512_zextsi256_si512(LOAD(a_[0].qs));                                \
        (yx) = _mm512_xor_si512(y_, _mm512_set1_epi8(-128));                                        \
        (ad) = halves_ps(a_[0].d, (TWO) ? a_[1].d : 0.0f);                                          \
    } while (0)
/* acc += (d_w·d_a)·Σ y·w, lanes under m (the last lone block: the low half) */
#define Q8_MAC(acc, p, yx, ad, m) \
    (acc) = _mm512_mask3_fmadd_ps(_mm512_mul_ps((p)->dw, (ad)), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32((p)->corr, (yx), (p)->w)), (acc), (m))
T_VNNI static inline float q8_reduce(__m512 c) { /* the even chain plus the odd one, then hsum_ps */
    return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(c), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1))));
}

enum { Q8R = 4, Q8K = 4, Q8C = 64 }; /* rows, tokens per tile; block pairs per chunk of K */

/* R rows (staged: S[r][0..np)) × K tokens (act, act_bytes apart; pair p0 is
 * the chunk's first) over np pairs, the last one lone when LONE; the
 * accumulators come from and go back to acc[k·Q8R + r]. */
#define Q8_TILE(R, K)                                                                               \
    T_VNNI static void q8_tile_##R##_##K(const Q8Pair (*S)[Q8C], int64_t np, int lone, const char *act, size_t act_bytes, \
                                         int64_t p0, __m512 *acc) {                                 \
        __m512 c[R][K];                                                                             \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                         \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) c[r][k] = acc[k * Q8R + r];         \
        for (int64_t p = 0; p < np; p++) {                                                          \
            int two = !(lone && p == np - 1);                                                       \
            __mmask16 m = two ? 0xFFFF : 0x00FF;                                                    \
            __m512i yx[K];                                                                          \
            __m512 ad[K];                                                                           \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) {                                   \
                const VecQ8A *a = (const VecQ8A *)(act + (size_t)k * act_bytes) + 2 * (p0 + p);    \
                if (two) Q8_Y(a, 1, yx[k], ad[k]);                                                  \
                else Q8_Y(a, 0, yx[k], ad[k]);                                                      \
            }                                                                                       \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                     \
                _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) Q8_MAC(c[r][k], &S[r][p], yx[k], ad[k], m); \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                         \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) acc[k * Q8R + r] = c[r][k];         \
    }
Q8_TILE(4, 4)
Q8_TILE(4, 1)
Q8_TILE(1, 4)
Q8_TILE(1, 1)

/* Decode: rows one at a time (the core overlaps them; four in flight were
 * slower, docs/BENCHMARKS.md), the token's pairs built once per call and
 * read from L1 by every row. */
T_VNNI static void gemv_q8_0_vnni(const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8A *a, float *out) {
    enum { MAXP = 512 }; /* pairs built at once: 64 KB of stack, rows up to 32768 values */
    _Alignas(64) __m512i yx[MAXP];
    _Alignas(64) __m512 ad[MAXP];
    int64_t np = (nb + 1) / 2;
    if (np > MAXP) { /* a row longer than 32768 values: the general kernel (same bits) */
        _Alignas(64) __m512 acc[Q8R];
        for (int64_t r = 0; r < nr; r++) {
            _Alignas(64) Q8Pair S[1][Q8C];
            acc[0] = _mm512_setzero_ps();
            for (int64_t p0 = 0; p0 < np; p0 += Q8C) {
                int64_t c = np - p0 < Q8C ? np - p0 : Q8C;
                int lone = p0 + c == np && (nb & 1);
                const BQ8_0 *bl = (const BQ8_0 *)((const char *)w + (size_t)r * row_bytes) + 2 * p0;
                for (int64_t p = 0; p < c; p++) q8_pair(bl + 2 * p, !(lone && p == c - 1), &S[0][p]);
                q8_tile_1_1((const Q8Pair(*)[Q8C])S, c, lone, (const char *)a, 0, p0, acc);
            }
            out[r] = q8_reduce(acc[0]);
        }
        return;
    }
    for (int64_t p = 0; p < nb / 2; p++) Q8_Y(a + 2 * p, 1, yx[p], ad[p]);
    if (nb & 1) Q8_Y(a + nb - 1, 0, yx[np - 1], ad[np - 1]);
    for (int64_t r = 0; r < nr; r++) {
        const BQ8_0 *bl = (const BQ8_0 *)((const char *)w + (size_t)r * row_bytes);
        __m512 c = _mm512_setzero_ps();
        for (int64_t p = 0; p < nb / 2; p++) {
            Q8Pair q;
            PREFETCH_AHEAD(bl + 2 * p, 2 * sizeof *bl);
            q8_pair(bl + 2 * p, 1, &q);
            Q8_MAC(c, &q, yx[p], ad[p], 0xFFFF);
        }
        if (nb & 1) {
            Q8Pair q;
            q8_pair(bl + nb - 1, 0, &q);
            Q8_MAC(c, &q, yx[np - 1], ad[np - 1], 0x00FF);
        }
        out[r] = q8_reduce(c);
    }
}

T_VNNI static void gemm_q8_0_vnni(GEMM_ARGS) {
    int64_t nb = n / QK, np = (nb + 1) / 2;
    if (T == 1) {
        gemv_q8_0_vnni(w, row_bytes, nr, nb, (const VecQ8A *)act, out);
        return;
    }
    _Alignas(64) Q8Pair S[Q8R][Q8C];
    _Alignas(64) __m512 acc[GT * Q8R];
    for (int64_t r0 = 0; r0 < nr; r0 += Q8R) {
        int R = nr - r0 < Q8R ? 1 : Q8R, nrr = nr - r0 < Q8R ? (int)(nr - r0) : Q8R;
        for (int rr = 0; rr < nrr; rr += R) { /* a tile of 4 rows, or the last rows one by one */
            for (int k0 = 0; k0 < T; k0 += GT) {
                int nk = T - k0 < GT ? T - k0 : GT;
                for (int i = 0; i < nk * Q8R; i++) acc[i] = _mm512_setzero_ps();
                for (int64_t p0 = 0; p0 < np; p0 += Q8C) {
                    int64_t c = np - p0 < Q8C ? np - p0 : Q8C;
                    int lone = p0 + c == np && (nb & 1);
                    for (int r = 0; r < R; r++) {
                        const BQ8_0 *bl = (const BQ8_0 *)((const char *)w + (size_t)(r0 + rr + r) * row_bytes) + 2 * p0;
                        for (int64_t p = 0; p < c; p++) q8_pair(bl + 2 * p, !(lone && p == c - 1), &S[r][p]);
                    }
                    const char *ap = act + (size_t)k0 * act_bytes;
                    int k = 0;
                    for (; k + Q8K <= nk; k += Q8K, ap += Q8K * act_bytes)
                        if (R == Q8R) q8_tile_4_4((const Q8Pair(*)[Q8C])S, c, lone, ap, act_bytes, p0, acc + k * Q8R);
                        else q8_tile_1_4((const Q8Pair(*)[Q8C])S, c, lone, ap, act_bytes, p0, acc + k * Q8R);
                    for (; k < nk; k++, ap += act_bytes)
                        if (R == Q8R) q8_tile_4_1((const Q8Pair(*)[Q8C])S, c, lone, ap, act_bytes, p0, acc + k * Q8R);
                        else q8_tile_1_1((const Q8Pair(*)[Q8C])S, c, lone, ap, act_bytes, p0, acc + k * Q8R);
                }
                for (int k = 0; k < nk; k++)
                    for (int r = 0; r < R; r++) out[(size_t)(k0 + k) * ldo + r0 + rr + r] = q8_reduce(acc[k * Q8R + r]);
            }
        }
    }
}

/* ----------------------------------------------------------------------------
 * The K-quants: per super-block of 256, eight groups of 32 unsigned values
 * (Q4_K, Q5_K; Q6_K: sixteen of 16, two per 32-byte vector), each group's
 * int16 pair sums times its scale into int32 lanes; the minimums' term
 * (Q4_K/Q5_K: Σ_j m_j·Σa over group j) and Q6_K's offset of 32 (32·Σ_j
 * s_j·Σa) from the activation's bsums in one madd. Then per row and token
 *   acc += (d_a·d)·lanes  [- (d_a·dmin)·min lanes].
 *
 * Tiled over rows as well as tokens: block i of RT rows is unpacked into
 * KUnp records (L1), then each token's activation block is loaded into
 * registers once and meets the RT rows — so the batch's activations
 * (T × 292 bytes per block, beyond L1 for a whole row) come from L2 once per
 * RT rows, not once per row. Each (row, token) keeps one accumulator and
 * the same sequence of steps whatever RT, T or the tile it falls in. */


typedef struct {
    _Alignas(64) __m256i u[8];   /* the 256 values, unsigned bytes, group j in u[j] (Q6_K: groups 2j, 2j+1) */
    __m256i s16[8]; /* each group's scale in the int16 lanes of its values */
    __m256i m16;    /* Q4_K/Q5_K: min j in int16 lanes 2j, 2j+1 (the bsums' groups); Q6_K: the 16 scales */
    __m256 d, dmin; /* the block's scales, broadcast */
} KUnp;

#define KQ_SCALES(p, bl)                                                                            \
    do {                                                                                            \
        uint8_t sc[8], m[8], mm[16];                                                                \
        k_scales((bl)->sc, sc, m);                                                                  \
        for (int j = 0; j < 8; j++) mm[2 * j] = mm[2 * j + 1] = m[j], (p)->s16[j] = _mm256_set1_epi16(sc[j]); \
        (p)->m16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)mm));                      \
        (p)->d = _mm256_set1_ps(h2f((bl)->d)), (p)->dmin = _mm256_set1_ps(h2f((bl)->dmin));                                      \
    } while (0)

T_AVX2 static inline void unpack_q4_k(const BQ4_K *bl, KUnp *p) {
    const __m256i lo4 = _mm256_set1_epi8(0xF);
    KQ_SCALES(p, bl);
    for (int j = 0; j < 4; j++) { /* per 64 values, the low nibbles are group 2j, the high ones 2j+1 */
        __m256i q = LOAD(bl->qs + 32 * j);
        p->u[2 * j] = _mm256_and_si256(q, lo4);
        p->u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
    }
}

/* Q5_K: as Q4_K, the fifth bit of value l of group 2j (2j+1) is bit 2j (2j+1) of qh[l]. */
T_AVX2 static inline void unpack_q5_k(const BQ5_K *bl, KUnp *p) {
    const __m256i lo4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    KQ_SCALES(p, bl);
    __m256i qh = LOAD(bl->qh);
    for (int j = 0; j < 4; j++, qh = _mm256_srli_epi16(qh, 2)) {
        __m256i q = LOAD(bl->qs + 32 * j);
        p->u[2 * j] = _mm256_or_si256(_mm256_and_si256(q, lo4), _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
        p->u[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), lo4),
                                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
    }
}

/* Q6_K: per half of 128, four 32-value runs (see vecdot.c's dot_q6_k_c),
 * each run's two groups of 16 with their own signed scale: the int32 lanes
 * 0-3 hold the first group, 4-7 the second (lanes follow the bytes). */
T_AVX2 static inline void unpack_q6_k(const BQ6_K *bl, KUnp *p) {
    for (int h = 0; h < 2; h++) q6_k_half_avx2(bl, h, p->u + 4 * h);
    for (int j = 0; j < 8; j++) p->s16[j] = _mm256_set_m128i(_mm_set1_epi16(bl->sc[2 * j + 1]), _mm_set1_epi16(bl->sc[2 * j]));
    p->m16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)bl->sc));
    p->d = _mm256_set1_ps(h2f(bl->d));
}

/* One (row, token) step: Q4_K/Q5_K (MIN 1) subtract the minimums' term,
 * Q6_K (MIN 0) the offset of 32 in the integers. Four integer chains: one
 * would wait on the multiply-add's latency at every group. Under VNNI the
 * step runs on 512-bit vectors, two groups per instruction (u, s16 and the
 * activation hold consecutive groups side by side), and the two halves are
 * added at the end: the same int32 sums lane by lane (integers are exact),
 * so avx2 and vnni give the same bits. */
#define KQ_FINISH(MIN)                                                                              \
    __m256i mo = _mm256_madd_epi16(bs, p->m16);                                                     \
    if (!MIN) s = _mm256_sub_epi32(s, _mm256_slli_epi32(mo, 5));                                    \
    acc = _mm256_fmadd_ps(_mm256_mul_ps(ad, p->d), _mm256_cvtepi32_ps(s), acc);                     \
    if (MIN) acc = _mm256_fnmadd_ps(_mm256_mul_ps(ad, p->dmin), _mm256_cvtepi32_ps(mo), acc);       \
    return acc;

typedef struct { __m256i v[8]; } KY_avx2; /* a token's 256 activation bytes in registers */
typedef struct { __m512i v[4]; } KY_vnni;
#define KY_LOAD_avx2(y, q) for (int j = 0; j < 8; j++) (y).v[j] = LOAD((q) + 32 * j)
#define KY_LOAD_vnni(y, q) for (int j = 0; j < 4; j++) (y).v[j] = _mm512_loadu_si512((q) + 64 * j)

#define KQ_STEP_AVX2(MIN)                                                                           \
    T_AVX2 static inline __m256 kq_step_##MIN##_avx2(const KUnp *p, const KY_avx2 *y, __m256i bs, __m256 ad, __m256 acc) { \
        __m256i s0 = dot8s_avx2(_mm256_setzero_si256(), p->u[0], y->v[0], p->s16[0]);             \
        __m256i s1 = dot8s_avx2(_mm256_setzero_si256(), p->u[1], y->v[1], p->s16[1]);             \
        __m256i s2 = dot8s_avx2(_mm256_setzero_si256(), p->u[2], y->v[2], p->s16[2]);             \
        __m256i s3 = dot8s_avx2(_mm256_setzero_si256(), p->u[3], y->v[3], p->s16[3]);             \
        s0 = dot8s_avx2(s0, p->u[4], y->v[4], p->s16[4]);                                           \
        s1 = dot8s_avx2(s1, p->u[5], y->v[5], p->s16[5]);                                           \
        s2 = dot8s_avx2(s2, p->u[6], y->v[6], p->s16[6]);                                           \
        s3 = dot8s_avx2(s3, p->u[7], y->v[7], p->s16[7]);                                           \
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));           \
        KQ_FINISH(MIN)                                                                              \
    }
#define Z(p) _mm512_load_si512((const void *)(p))
#define KQ_STEP_VNNI(MIN)                                                                           \
    T_VNNI static inline __m256 kq_step_##MIN##_vnni(const KUnp *p, const KY_vnni *y, __m256i bs, __m256 ad, __m256 acc) { \
        __m512i s0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(Z(&p->u[0]), y->v[0]), Z(&p->s16[0])); \
        __m512i s1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(Z(&p->u[2]), y->v[1]), Z(&p->s16[2])); \
        __m512i s2 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(Z(&p->u[4]), y->v[2]), Z(&p->s16[4])); \
        __m512i s3 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(Z(&p->u[6]), y->v[3]), Z(&p->s16[6])); \
        __m512i t = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));  \
        __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));   \
        KQ_FINISH(MIN)                                                                              \
    }

#define GEMM_KQ(NAME, SFX, TGT, BT, UNPACK, MIN)                                                    \
    TGT static void NAME(GEMM_ARGS) {                                                               \
        _Alignas(64) KUnp U[RT];                                                                               \
        __m256 acc[GT][RT];                                                                         \
        int64_t nb = n / QKK;                                                                       \
        for (int64_t r0 = 0; r0 < nr; r0 += RT) {                                                   \
            int nrr = nr - r0 < RT ? (int)(nr - r0) : RT;                                           \
            for (int k0 = 0; k0 < T; k0 += GT) {                                                    \
                int nk = T - k0 < GT ? T - k0 : GT;                                                 \
                for (int rr = 0; rr < nrr; rr++)                                                    \
                    for (int k = 0; k < nk; k++) acc[k][rr] = _mm256_setzero_ps();                  \
                for (int64_t i = 0; i < nb; i++) {                                                  \
                    for (int rr = 0; rr < nrr; rr++)                                                \
                        UNPACK((const BT *)((const char *)w + (size_t)(r0 + rr) * row_bytes) + i, &U[rr]); \
                    const char *ap = act + (size_t)k0 * act_bytes + (size_t)i * sizeof(VecQ8KA);    \
                    for (int k = 0; k < nk; k++, ap += act_bytes) {                                 \
                        const VecQ8KA *a = (const VecQ8KA *)ap;                                     \
                        KY_##SFX y;                                                                 \
                        KY_LOAD_##SFX(y, a->qs);                                                    \
                        __m256i bs = LOAD(a->bsums);                                                \
                        __m256 ad = _mm256_set1_ps(a->d);                                           \
                        for (int rr = 0; rr < nrr; rr++) acc[k][rr] = kq_step_##MIN##_##SFX(&U[rr], &y, bs, ad, acc[k][rr]); \
                    }                                                                               \
                }                                                                                   \
                for (int rr = 0; rr < nrr; rr++)                                                    \
                    for (int k = 0; k < nk; k++) out[(size_t)(k0 + k) * ldo + r0 + rr] = hsum_ps(acc[k][rr]); \
            }                                                                                       \
        }                                                                                           \
    }

KQ_STEP_AVX2(1)
KQ_STEP_AVX2(0)
KQ_STEP_VNNI(1)
KQ_STEP_VNNI(0)
GEMM_KQ(gemm_q4_k_avx2_b, avx2, T_AVX2, BQ4_K, unpack_q4_k, 1)
GEMM_KQ(gemm_q5_k_avx2_b, avx2, T_AVX2, BQ5_K, unpack_q5_k, 1)
GEMM_KQ(gemm_q6_k_avx2_b, avx2, T_AVX2, BQ6_K, unpack_q6_k, 0)
GEMM_KQ(gemm_q4_k_vnni_b, vnni, T_VNNI, BQ4_K, unpack_q4_k, 1)
GEMM_KQ(gemm_q5_k_vnni_b, vnni, T_VNNI, BQ5_K, unpack_q5_k, 1)
GEMM_KQ(gemm_q6_k_vnni_b, vnni, T_VNNI, BQ6_K, unpack_q6_k, 0)

/* Decode (T = 1) under VNNI and AVX2: gemv_q.c's kernels, straight from the blocks. */
#define KQ_DECODE(NAME, SET, TGT)                                                                   \
    TGT static void gemm_##NAME##_##SET(GEMM_ARGS) {                                                \
        if (T == 1) gemv_##NAME##_##SET(w, row_bytes, nr, n / QKK, (const VecQ8KA *)act, out);      \
        else gemm_##NAME##_##SET##_b(w, row_bytes, nr, n, act, act_bytes, T, out, ldo);             \
    }
KQ_DECODE(q4_k, vnni, T_VNNI)
KQ_DECODE(q5_k, vnni, T_VNNI)
KQ_DECODE(q6_k, vnni, T_VNNI)
KQ_DECODE(q4_k, avx2, T_AVX2)
KQ_DECODE(q5_k, avx2, T_AVX2)
KQ_DECODE(q6_k, avx2, T_AVX2)


/* ----------------------------------------------------------------------------
 * BF16 / F16 rows: per token four FMA chains over 4 vectors of values, the
 * tail (n not a multiple of the step) in scalar order after, exactly the
 * single-token kernel's sums; TT tokens at a time share each widened row
 * segment (4 weight vectors + 4·TT accumulators fit the registers). */

#define HALF_TILE(TTC, VEC, W, ZERO, WIDEN, FMA, LOADF, REDUCE, SCALAR)                            \
    do {                                                                                            \
        const float *x[TTC];                                                                        \
        VEC acc[TTC][4];                                                                            \
        _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) {                                                             \
            x[k] = (const float *)(act + (size_t)(k0 + k) * act_bytes);                             \
            acc[k][0] = acc[k][1] = acc[k][2] = acc[k][3] = ZERO;                                   \
        }                                                                                           \
        int64_t i = 0;                                                                              \
        for (; i + 4 * W <= n; i += 4 * W) {                                                        \
            VEC wv[4];                                                                              \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) wv[j] = WIDEN(h + i + W * j);                               \
            _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++)                                                           \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) acc[k][j] = FMA(wv[j], LOADF(x[k] + i + W * j), acc[k][j]); \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) {                                                             \
            float sum = REDUCE(acc[k]);                                                             \
            for (int64_t t = i; t < n; t++) sum += SCALAR(h[t]) * x[k][t];                          \
            out[(size_t)(k0 + k) * ldo + r] = sum;                                                  \
        }                                                                                           \
    } while (0)

/* Tiles of TT tokens, the rest (and decode) one token at a time. */
#define GEMM_HALF(NAME, TGT, VEC, W, TT, ZERO, WIDEN, FMA, LOADF, REDUCE, SCALAR)                   \
    TGT static void NAME(GEMM_ARGS) {                                                               \
        for (int64_t r = 0; r < nr; r++) {                                                          \
            const uint16_t *h = (const uint16_t *)((const char *)w + (size_t)r * row_bytes);        \
            int k0 = 0;                                                                             \
            for (; k0 + TT <= T; k0 += TT) HALF_TILE(TT, VEC, W, ZERO, WIDEN, FMA, LOADF, REDUCE, SCALAR); \
            for (; k0 < T; k0++) HALF_TILE(1, VEC, W, ZERO, WIDEN, FMA, LOADF, REDUCE, SCALAR);     \
        }                                                                                           \
    }

#define BF16_W8(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define F16_W8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define BF16_W16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define RED16(a) _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps((a)[0], (a)[1]), _mm512_add_ps((a)[2], (a)[3])))

/* Under AVX2 the 16 registers cannot hold four chains per (row, token) and
 * a tile of them, so each pair keeps one 8-lane chain over the row, then the
 * tail in scalar order: tiles of 3 rows × 4 tokens (12 accumulators, 3
 * widened row vectors, an activation vector) widen each row vector once per
 * 4 tokens and load each activation vector once per 3 rows; every tile
 * shape gives a pair the same bits, so decode (3 × 1, 1 × 1) is a batch's. */
#define HALF1_TILE(RR, TTC, WIDEN, SCALAR)                                                          \
    do {                                                                                            \
        const uint16_t *h[RR];                                                                      \
        const float *x[TTC];                                                                        \
        __m256 acc[RR][TTC];                                                                        \
        _Pragma("GCC unroll 4") for (int q = 0; q < RR; q++) {                                      \
            h[q] = (const uint16_t *)((const char *)w + (size_t)(r + q) * row_bytes);               \
            _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) acc[q][k] = _mm256_setzero_ps();   \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) x[k] = (const float *)(act + (size_t)(k0 + k) * act_bytes); \
        int64_t i = 0;                                                                              \
        for (; i + 8 <= n; i += 8) {                                                                \
            __m256 wv[RR];                                                                          \
            _Pragma("GCC unroll 4") for (int q = 0; q < RR; q++) wv[q] = WIDEN(h[q] + i);           \
            _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) {                                 \
                __m256 xv = _mm256_loadu_ps(x[k] + i);                                              \
                _Pragma("GCC unroll 4") for (int q = 0; q < RR; q++) acc[q][k] = _mm256_fmadd_ps(wv[q], xv, acc[q][k]); \
            }                                                                                       \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int q = 0; q < RR; q++)                                        \
            _Pragma("GCC unroll 4") for (int k = 0; k < TTC; k++) {                                 \
                float sum = hsum_ps(acc[q][k]);                                                     \
                for (int64_t t = i; t < n; t++) sum += SCALAR(h[q][t]) * x[k][t];                   \
                out[(size_t)(k0 + k) * ldo + r + q] = sum;                                          \
            }                                                                                       \
    } while (0)

#define GEMM_HALF1(NAME, WIDEN, SCALAR)                                                             \
    T_AVX2 static void NAME(GEMM_ARGS) {                                                            \
        int64_t r = 0;                                                                              \
        for (; r + 3 <= nr; r += 3) {                                                               \
            int k0 = 0;                                                                             \
            for (; k0 + 4 <= T; k0 += 4) HALF1_TILE(3, 4, WIDEN, SCALAR);                           \
            for (; k0 < T; k0++) HALF1_TILE(3, 1, WIDEN, SCALAR);                                   \
        }                                                                                           \
        for (; r < nr; r++) {                                                                       \
            int k0 = 0;                                                                             \
            for (; k0 + 4 <= T; k0 += 4) HALF1_TILE(1, 4, WIDEN, SCALAR);                           \
            for (; k0 < T; k0++) HALF1_TILE(1, 1, WIDEN, SCALAR);                                   \
        }                                                                                           \
    }
GEMM_HALF1(gemm_bf16_avx2, BF16_W8, bf16_to_f32)
GEMM_HALF1(gemm_f16_avx2, F16_W8, f16_to_f32)
GEMM_HALF(gemm_bf16_avx512, T_VNNI, __m512, 16, 4, _mm512_setzero_ps(), BF16_W16, _mm512_fmadd_ps, _mm512_loadu_ps, RED16,
          bf16_to_f32)

/* ----------------------------------------------------------------------------
 * BF16 rows under AVX-512 BF16 (the avx512bf16 set; amx: gemm_amx.c): the activation
 * rounded to BF16 once per matmul (gemm_q_to_bf16, as llama.cpp does for
 * its BF16 rows), then vdpbf16ps: 32 products a step straight from the
 * stored rows, nothing widened. Each (row, token) pair keeps one 16-lane
 * accumulator over the whole row (the tail of n % 32 values by masked
 * loads, zeros beyond) and one final reduction, whatever tile it is in:
 * tiles of 4 rows × 4 tokens (16 accumulators; every row vector loaded
 * meets 4 tokens, every token vector 4 rows), the remainders one at a time. */

#define T_BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))

#define BF16_TILE(R, K)                                                                             \
    T_BF16 static inline void bf16_tile_##R##_##K(const uint16_t *const *wr, const uint16_t *const *xk, int64_t n, \
                                                  float *out, int64_t ldo) {                        \
        __m512 acc[R][K];                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                                 \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) acc[r][k] = _mm512_setzero_ps();                            \
        int64_t i = 0;                                                                              \
        for (; i + 32 <= n; i += 32) {                                                              \
            __m512i wv[R], xv[K];                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_si512(wr[r] + i);                      \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) xv[k] = _mm512_loadu_si512(xk[k] + i);                      \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                             \
                _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) acc[r][k] = _mm512_dpbf16_ps(acc[r][k], (__m512bh)wv[r], (__m512bh)xv[k]); \
        }                                                                                           \
        if (i < n) {                                                                                \
            __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);                                       \
            __m512i wv[R], xv[K];                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_epi16(m, wr[r] + i);             \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) xv[k] = _mm512_maskz_loadu_epi16(m, xk[k] + i);             \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                             \
                _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) acc[r][k] = _mm512_dpbf16_ps(acc[r][k], (__m512bh)wv[r], (__m512bh)xv[k]); \
        }                                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                                 \
            _Pragma("GCC unroll 4") for (int k = 0; k < K; k++) out[(size_t)k * ldo + r] = _mm512_reduce_add_ps(acc[r][k]);  \
    }
BF16_TILE(4, 4)
BF16_TILE(4, 1)
BF16_TILE(1, 4)
BF16_TILE(1, 1)

T_BF16 static void gemm_bf16_dp(GEMM_ARGS) {
    for (int64_t r0 = 0; r0 < nr;) {
        int R = nr - r0 >= 4 ? 4 : 1;
        const uint16_t *wr[4];
        for (int r = 0; r < R; r++) wr[r] = (const uint16_t *)((const char *)w + (size_t)(r0 + r) * row_bytes);
        for (int k0 = 0; k0 < T;) {
            int K = T - k0 >= 4 ? 4 : 1;
            const uint16_t *xk[4];
            for (int k = 0; k < K; k++) xk[k] = (const uint16_t *)(act + (size_t)(k0 + k) * act_bytes);
            float *o = out + (size_t)k0 * ldo + r0;
            if (R == 4 && K == 4) bf16_tile_4_4(wr, xk, n, o, ldo);
            else if (R == 4) bf16_tile_4_1(wr, xk, n, o, ldo);
            else if (K == 4) bf16_tile_1_4(wr, xk, n, o, ldo);
            else bf16_tile_1_1(wr, xk, n, o, ldo);
            k0 += K;
        }
        r0 += R;
    }
}

T_BF16 void gemm_q_to_bf16(const float *x, int64_t n, uint16_t *out) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = f32_to_bf16(x[i]);
}

GemmFn *gemm_q_kernel(DType t, int set) {
    int v = set >= GEMM_VNNI;
    if (set != GEMM_AVX2 && set != GEMM_VNNI && set != GEMM_BF16 && set != GEMM_AMX) return NULL;
    if (set == GEMM_BF16 && t == DT_BF16) return gemm_bf16_dp;
    if (set == GEMM_AMX && t == DT_BF16) return NULL; /* gemm_amx.h's, against its own batch form */
    switch (t) {
    case DT_Q8_0: return v ? gemm_q8_0_vnni : gemm_q8_0_avx2;
    case DT_Q4_0: return v ? gemm_q4_0_vnni : gemm_q4_0_avx2;
    case DT_Q4_K: return v ? gemm_q4_k_vnni : gemm_q4_k_avx2;
    case DT_Q5_K: return v ? gemm_q5_k_vnni : gemm_q5_k_avx2;
    case DT_Q6_K: return v ? gemm_q6_k_vnni : gemm_q6_k_avx2;
    case DT_BF16: return v ? gemm_bf16_avx512 : gemm_bf16_avx2;
    case DT_F16: return gemm_f16_avx2;
    default: return NULL;
    }
}

#else
GemmFn *gemm_q_kernel(DType t, int set) {
    (void)t, (void)set;
    return NULL;
}
void gemm_q_to_bf16(const float *x, int64_t n, uint16_t *out) {
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16(x[i]);
}
#endif
