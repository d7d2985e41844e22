/* gemv_q.c — the K-quants at T = 1 (decode) under AVX-512 VNNI, straight
 * from the stored blocks (gemv_q.h; gemm_q.c calls it for a batch of one).
 *
 * With one token there is nothing to share between rows but the activation
 * block, so nothing is staged — where the batched kernel (gemm_q.c) unpacks
 * 16 rows' blocks into L1 records and reads them back per token, here the
 * token's 256 bytes stay in four registers for the block and KR rows are
 * met in flight, each block unpacked straight into registers: 64 values a
 * step (a 32-byte load broadcast to both halves of a 512-bit vector, one
 * half's nibbles shifted down by a per-lane shift), maddubs against the
 * activation, the group scales in int16 lanes by vpdpwssd — spread there
 * by one vpermw per 64 values from the 16 scales and mins unpacked in one
 * xmm. The minimums' term (Q4_K/Q5_K) or the offset of 32 (Q6_K) comes from
 * the activation's bsums in one madd.
 *
 * Bits: the int32 lanes are the batched kernel's (the same products of the
 * same bytes, summed exactly, lane L always bytes 4L..4L+3 of each group's
 * 32) and the float steps per block the same (acc += (d_a·d)·lanes, less
 * (d_a·dmin)·min lanes), so decode gives the bits a prompt gives and the
 * avx2 set gives (tests/test_vecdot.c checks both with memcmp).
 *
 * Read from llama.cpp's ggml_vec_dot_q4_K_q8_K and its interleaved gemv
 * for the shape of the problem; written here from the block layouts.
 */
#include "tensor/gemv_q.h"

#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))

T_AVX2 static inline float hsum_ps(__m256 v) { /* gemm_q.c's order: the bits must match */
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
T_AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* Decode streams each row once: ask for the lines 4 KB ahead (gemm_q.c's
 * PREFETCH, measured there); a prefetch never faults. */
enum { PREFETCH = 4096 };
#define PREFETCH_AHEAD(p, bytes) \
    for (size_t o_ = 0; o_ < (bytes); o_ += 64) _mm_prefetch((const char *)(p) + PREFETCH + o_, _MM_HINT_T0)

enum { KR = 4 }; /* rows in flight: independent chains, one activation load */

/* Q4_K/Q5_K's packed scales (k_scales) in one xmm, four bytes a lane:
 * the 8 scales then the 8 mins, as 16 int16 lanes. It reads 16 bytes at s,
 * the 12 and the 4 after them (still the block: qs or qh follow). With
 * s as three words u0 u1 u2 (bytes 0-3, 4-7, 8-11):
 *   scales 0-3 = u0 & 63,  scales 4-7 = (u2 & 15) | (u0 >> 6 & 3) << 4,
 *   mins 0-3   = u1 & 63,  mins 4-7   = (u2 >> 4 & 15) | (u1 >> 6 & 3) << 4. */
T_AVX2 static inline __m256i k_scales16(const uint8_t *s) {
    __m128i x = _mm_loadu_si128((const __m128i *)s);
    __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(x, 0x98), _mm_setr_epi32(0, 0, 0, 4)); /* u0, u2, u1, u2 >> 4 */
    __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(x, 0x50), 2);                          /* (u0, u0, u1, u1) >> 2 */
    a = _mm_and_si128(a, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    b = _mm_and_si128(b, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)); /* each byte's top two bits at 4-5 */
    return _mm256_cvtepu8_epi16(_mm_or_si128(a, b));
}

/* int16 lanes: a in the low 256 bits, b in the high ones */
#define HALVES16(a, b) _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1)
/* the four 512-bit int32 chains to the 8 lanes the batched kernel has */
T_VNNI static inline __m256i fold4(const __m512i c[4]) {
    __m512i t = _mm512_add_epi32(_mm512_add_epi32(c[0], c[1]), _mm512_add_epi32(c[2], c[3]));
    return _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
}

/* One Q4_K (Q5: Q5_K) block against the token's y[4], bs, ad. Group pair j
 * (groups 2j, 2j+1) is the 32 bytes qs[32j..] — low nibbles, then high. */
#define KQ1_45_INT(NAME, BT, Q5)                                                                        \
    T_VNNI static inline __attribute__((always_inline)) void NAME(const BT *b, const __m512i y[4], __m256i bs, __m256i *s_out, __m256i *mo_out) { \
        const __m512i lo4 = _mm512_set1_epi8(0xF), sh = HALVES16(0, 4), z = _mm512_setzero_si512();  \
        __m256i v = k_scales16(b->sc);                                                              \
        __m512i v5 = _mm512_castsi256_si512(v), c[4];                                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                                       \
            __m512i q = _mm512_broadcast_i64x4(LOAD(b->qs + 32 * j));                               \
            __m512i u = _mm512_and_si512(_mm512_srlv_epi16(q, sh), lo4);                            \
            if (Q5) { /* the fifth bit of group 2j (2j+1): bit 2j (2j+1) of qh */                   \
                __m512i h = _mm512_broadcast_i64x4(LOAD(((const BQ5_K *)b)->qh));                   \
                h = _mm512_and_si512(_mm512_srlv_epi16(h, HALVES16(2 * j, 2 * j + 1)), _mm512_set1_epi8(1)); \
                u = _mm512_or_si512(u, _mm512_slli_epi16(h, 4));                                    \
            }                                                                                       \
            c[j] = _mm512_dpwssd_epi32(z, _mm512_maddubs_epi16(u, y[j]), _mm512_permutexvar_epi16(HALVES16(2 * j, 2 * j + 1), v5)); \
        }                                                                                           \
        __m256i s = fold4(c);                                                                       \
        /* min j in int16 lanes 2j, 2j+1 (v's lanes 8..15) against the bsums */                     \
        __m256i mo = _mm256_madd_epi16(bs, _mm256_permutexvar_epi16(_mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), v)); \
        *s_out = s, *mo_out = mo;                                                                   \
    }
KQ1_45_INT(kq1i_q4_k, BQ4_K, 0)
KQ1_45_INT(kq1i_q5_k, BQ5_K, 1)
#define KQ1_45(NAME, INT, BT)                                                                       \
    T_VNNI static inline __attribute__((always_inline)) __m256 NAME(const BT *b, const __m512i y[4], __m256i bs, __m256 ad, __m256 acc) { \
        __m256i s, mo;                                                                              \
        INT(b, y, bs, &s, &mo);                                                                     \
        acc = _mm256_fmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->d))), _mm256_cvtepi32_ps(s), acc); \
        return _mm256_fnmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->dmin))), _mm256_cvtepi32_ps(mo), acc); \
    }
KQ1_45(kq1_q4_k, kq1i_q4_k, BQ4_K)
KQ1_45(kq1_q5_k, kq1i_q5_k, BQ5_K)

/* One Q6_K block: per half h, ql[64h..+64] holds the low nibbles of group
 * pair 2h and the high ones of pair 2h+1, qh[32h..+32] their top two bits
 * (bits 0-1, 2-3 for pair 2h; 4-5, 6-7 for 2h+1; unpack_q6_k's runs); the
 * sixteen signed scales, four per pair, one per 16 values. */
#define Q6I(x) (0x0001000100010001ll * (x)) /* four int16 lanes of x */
/* pair j's four scales, one per 128 bits: 4j, 4j+1, 4j+2, 4j+3 (set_epi64 lists the high elements first) */
T_VNNI static inline __attribute__((always_inline)) __m256i kq1i_q6_k(const BQ6_K *b, const __m512i y[4], __m256i bs) {
    const __m512i lo4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30), z = _mm512_setzero_si512();
    __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->sc));
    __m512i v5 = _mm512_castsi256_si512(v), c[4];
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512(b->ql + 64 * h), q = _mm512_broadcast_i64x4(LOAD(b->qh + 32 * h));
        __m512i u0 = _mm512_or_si512(_mm512_and_si512(l, lo4), _mm512_and_si512(_mm512_sllv_epi16(q, HALVES16(4, 2)), m30));
        __m512i u1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), lo4),
                                     _mm512_and_si512(_mm512_srlv_epi16(q, HALVES16(0, 2)), m30));
        __m512i s0 = _mm512_permutexvar_epi16(_mm512_set_epi64(Q6I(8 * h + 3), Q6I(8 * h + 3), Q6I(8 * h + 2), Q6I(8 * h + 2),
                                                               Q6I(8 * h + 1), Q6I(8 * h + 1), Q6I(8 * h), Q6I(8 * h)), v5);
        __m512i s1 = _mm512_permutexvar_epi16(_mm512_set_epi64(Q6I(8 * h + 7), Q6I(8 * h + 7), Q6I(8 * h + 6), Q6I(8 * h + 6),
                                                               Q6I(8 * h + 5), Q6I(8 * h + 5), Q6I(8 * h + 4), Q6I(8 * h + 4)), v5);
        c[2 * h] = _mm512_dpwssd_epi32(z, _mm512_maddubs_epi16(u0, y[2 * h]), s0);
        c[2 * h + 1] = _mm512_dpwssd_epi32(z, _mm512_maddubs_epi16(u1, y[2 * h + 1]), s1);
    }
    __m256i s = fold4(c);
    return _mm256_sub_epi32(s, _mm256_slli_epi32(_mm256_madd_epi16(bs, v), 5)); /* the offset of 32 */
}
T_VNNI static inline __attribute__((always_inline)) __m256 kq1_q6_k(const BQ6_K *b, const __m512i y[4], __m256i bs, __m256 ad, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->d))), _mm256_cvtepi32_ps(kq1i_q6_k(b, y, bs)), acc);
}

/* KR rows at a time over every block, then the rest one by one; each row
 * its own accumulator, its blocks in order. */
#define KQ_ROWS(STEP, BT, M)                                                                        \
    do {                                                                                            \
        const BT *b[M];                                                                             \
        __m256 acc[M];                                                                              \
        for (int k = 0; k < (M); k++) b[k] = (const BT *)((const char *)w + (size_t)(r + k) * row_bytes), acc[k] = _mm256_setzero_ps(); \
        for (int64_t i = 0; i < nb; i++) {                                                          \
            __m512i y[4];                                                                           \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) y[j] = _mm512_loadu_si512(a[i].qs + 64 * j); \
            __m256i bs = LOAD(a[i].bsums);                                                          \
            __m256 ad = _mm256_set1_ps(a[i].d);                                                     \
            _Pragma("GCC unroll 4") for (int k = 0; k < (M); k++) {                                 \
                PREFETCH_AHEAD(b[k] + i, sizeof(BT));                                               \
                acc[k] = STEP(b[k] + i, y, bs, ad, acc[k]);                                         \
            }                                                                                       \
        }                                                                                           \
        for (int k = 0; k < (M); k++) out[r + k] = hsum_ps(acc[k]);                                 \
    } while (0)
#define KQ_GEMV(NAME, BT, STEP)                                                                     \
    T_VNNI void NAME(const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8KA *a, float *out) { \
        int64_t r = 0;                                                                              \
        for (; r + KR <= nr; r += KR) KQ_ROWS(STEP, BT, KR);                                        \
        for (; r < nr; r++) KQ_ROWS(STEP, BT, 1);                                                   \
    }
KQ_GEMV(gemv_q4_k_vnni, BQ4_K, kq1_q4_k)

/* Q4_K decode with the portable C kernel's float steps (vecdot.c,
 * dot_q4_k_c): the same int32 lanes, summed whole per block (exact), then
 *   sum = sum + d_a·(d·(float)s − dmin·(float)mins),
 * each operation rounded on its own: the amx set's decode for Q4_K, whose
 * batches run on AMX tiles with those steps (gemm_amx.c) — there the rows'
 * operands are built per call, which a single token does not repay. Four
 * rows at a time, the last rows' tail padded with the last row. */
/* Rows r .. r + KR of w, the ones past nr repeating the last (computed,
 * never stored: so the tails take the same vector steps). */
#define ROWS4(b, BT, r)                                                                             \
    for (int k = 0; k < KR; k++) (b)[k] = (const BT *)((const char *)w + (size_t)((r) + k < nr ? (r) + k : nr - 1) * row_bytes)
/* The four rows' results into out[r ..], as many as there are. */
T_VNNI static inline void store4(float *out, int64_t r, int64_t nr, __m128 v) {
    float t[KR];
    _mm_storeu_ps(t, v);
    for (int k = 0; k < KR && r + k < nr; k++) out[r + k] = t[k];
}
/* The whole sums of four rows' lanes, row k in lane k. */
T_VNNI static inline __m128i hsum4_epi32(const __m256i v[4]) {
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}
#define KQ_GEMV_C(NAME, BT, INT)                                                                    \
    T_VNNI void NAME(GEMV_KQ_ARGS) {                                                                \
        for (int64_t r = 0; r < nr; r += KR) { /* four rows, their float steps side by side */      \
            const BT *b[KR];                                                                        \
            __m128 sum = _mm_setzero_ps();                                                          \
            ROWS4(b, BT, r);                                                                        \
            for (int64_t i = 0; i < nb; i++) {                                                      \
                __m512i y[4];                                                                       \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) y[j] = _mm512_loadu_si512(a[i].qs + 64 * j); \
                __m256i bs = LOAD(a[i].bsums), s[KR], mo[KR];                                       \
                _Pragma("GCC unroll 4") for (int k = 0; k < KR; k++) {                              \
                    PREFETCH_AHEAD(b[k] + i, sizeof(BT));                                           \
                    INT(b[k] + i, y, bs, &s[k], &mo[k]);                                            \
                }                                                                                   \
                __m128 d = _mm_setr_ps(h2f(b[0][i].d), h2f(b[1][i].d), h2f(b[2][i].d), h2f(b[3][i].d)); \
                __m128 dm = _mm_setr_ps(h2f(b[0][i].dmin), h2f(b[1][i].dmin), h2f(b[2][i].dmin), h2f(b[3][i].dmin)); \
                __m128 t = _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(hsum4_epi32(s))), _mm_mul_ps(dm, _mm_cvtepi32_ps(hsum4_epi32(mo)))); \
                sum = _mm_add_ps(sum, _mm_mul_ps(_mm_set1_ps(a[i].d), t));                          \
            }                                                                                       \
            store4(out, r, nr, sum);                                                                \
        }                                                                                           \
    }
KQ_GEMV_C(gemv_q4_k_vnni_c, BQ4_K, kq1i_q4_k)
KQ_GEMV_C(gemv_q5_k_vnni_c, BQ5_K, kq1i_q5_k)

/* Q6_K likewise: sum = sum + (d·d_a)·(float)s (dot_q6_k_c). */
T_VNNI void gemv_q6_k_vnni_c(GEMV_KQ_ARGS) {
    for (int64_t r = 0; r < nr; r += KR) {
        const BQ6_K *b[KR];
        __m128 sum = _mm_setzero_ps();
        ROWS4(b, BQ6_K, r);
        for (int64_t i = 0; i < nb; i++) {
            __m512i y[4];
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) y[j] = _mm512_loadu_si512(a[i].qs + 64 * j);
            __m256i bs = LOAD(a[i].bsums), s[KR];
            _Pragma("GCC unroll 4") for (int k = 0; k < KR; k++) {
                PREFETCH_AHEAD(b[k] + i, sizeof(BQ6_K));
                s[k] = kq1i_q6_k(b[k] + i, y, bs);
            }
            __m128 d = _mm_setr_ps(h2f(b[0][i].d), h2f(b[1][i].d), h2f(b[2][i].d), h2f(b[3][i].d));
            sum = _mm_add_ps(sum, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(a[i].d)), _mm_cvtepi32_ps(hsum4_epi32(s))));
        }
        store4(out, r, nr, sum);
    }
}
/* Q4_0 at T = 1 with the portable C kernel's float steps (dot_q4_0_c):
 * per block the whole int32 sum of nibbles × activation less 8·Σa, then
 * sum = sum + (d·d_a)·(float)s; four rows side by side. The amx set's
 * decode for Q4_0 (its batches run on AMX tiles with those steps). */
T_VNNI static inline __m256i q4_0_lanes(const BQ4_0 *b, __m256i y) {
    __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF));
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
}
T_VNNI void gemv_q4_0_vnni_c(const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8A *a, float *out) {
    for (int64_t r = 0; r < nr; r += KR) {
        const BQ4_0 *b[KR];
        __m128 sum = _mm_setzero_ps();
        ROWS4(b, BQ4_0, r);
        for (int64_t i = 0; i < nb; i++) {
            __m256i y = LOAD(a[i].qs), s[KR];
            _Pragma("GCC unroll 4") for (int k = 0; k < KR; k++) {
                PREFETCH_AHEAD(b[k] + i, sizeof(BQ4_0));
                s[k] = q4_0_lanes(b[k] + i, y);
            }
            __m128i si = _mm_sub_epi32(hsum4_epi32(s), _mm_set1_epi32(8 * a[i].sum));
            __m128 d = _mm_setr_ps(h2f(b[0][i].d), h2f(b[1][i].d), h2f(b[2][i].d), h2f(b[3][i].d));
            sum = _mm_add_ps(sum, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(a[i].d)), _mm_cvtepi32_ps(si)));
        }
        store4(out, r, nr, sum);
    }
}
KQ_GEMV(gemv_q5_k_vnni, BQ5_K, kq1_q5_k)
KQ_GEMV(gemv_q6_k_vnni, BQ6_K, kq1_q6_k)

/* ----------------------------------------------------------------------------
 * The same under AVX2 (256-bit vectors, no vpermw): a group of 32 a step,
 * maddubs then madd with its scale — in every int16 lane by one vpshufb of
 * the scales' bytes (index j, then 0x80 for a zero high byte; Q6_K's signed
 * scales duplicated into both bytes and shifted down arithmetically). The
 * same int32 lanes (lane L: bytes 4L..4L+3 of each group), so the same bits.
 * One row at a time: 16 registers leave no room for rows in flight. */

T_AVX2 static inline __m256i dot_sc(__m256i u, const int8_t *y, __m256i sc16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, LOAD(y)), sc16);
}

#define KQ1A_45(NAME, BT, Q5)                                                                       \
    T_AVX2 static inline __attribute__((always_inline)) __m256 NAME(const BT *b, const int8_t *y, __m256i bs, __m256 ad, __m256 acc) { \
        const __m256i lo4 = _mm256_set1_epi8(0xF);                                                  \
        __m256i v = k_scales16(b->sc);                                                              \
        __m256i v8 = _mm256_packus_epi16(v, v); /* the 16 bytes in each half: scales 0-7, mins 0-7 */ \
        v8 = _mm256_permute4x64_epi64(v8, 0x88);                                                    \
        __m256i c[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() }; \
        __m256i h = Q5 ? LOAD(((const BQ5_K *)b)->qh) : _mm256_setzero_si256();                     \
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                                       \
            __m256i q = LOAD(b->qs + 32 * j);                                                       \
            __m256i u0 = _mm256_and_si256(q, lo4), u1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4); \
            if (Q5) {                                                                               \
                const __m256i one = _mm256_set1_epi8(1);                                            \
                u0 = _mm256_or_si256(u0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j), one), 4)); \
                u1 = _mm256_or_si256(u1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j + 1), one), 4)); \
            }                                                                                       \
            c[j] = _mm256_add_epi32(dot_sc(u0, y + 64 * j, _mm256_shuffle_epi8(v8, _mm256_set1_epi16((short)(0x8000 | (2 * j))))), \
                                    dot_sc(u1, y + 64 * j + 32, _mm256_shuffle_epi8(v8, _mm256_set1_epi16((short)(0x8000 | (2 * j + 1)))))); \
        }                                                                                           \
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));   \
        __m256i m16 = _mm256_shuffle_epi8(v8, _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11, -128, \
                                                               12, -128, 12, -128, 13, -128, 13, -128, 14, -128, 14, -128, 15, -128, 15, -128)); \
        __m256i mo = _mm256_madd_epi16(bs, m16);                                                    \
        acc = _mm256_fmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->d))), _mm256_cvtepi32_ps(s), acc); \
        return _mm256_fnmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->dmin))), _mm256_cvtepi32_ps(mo), acc); \
    }
KQ1A_45(kq1a_q4_k, BQ4_K, 0)
KQ1A_45(kq1a_q5_k, BQ5_K, 1)

T_AVX2 static inline __attribute__((always_inline)) __m256 kq1a_q6_k(const BQ6_K *b, const int8_t *y, __m256i bs, __m256 ad, __m256 acc) {
    __m256i sc8 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b->sc));
    __m256i c[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        __m256i u[4];
        q6_k_half_avx2(b, h, u);
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) { /* run 4h+j: scale 2(4h+j) in the low 128 bits, the next in the high */
            int k = 2 * (4 * h + j);
            __m256i sc16 = _mm256_srai_epi16(_mm256_shuffle_epi8(sc8, _mm256_setr_m128i(_mm_set1_epi8((char)k), _mm_set1_epi8((char)(k + 1)))), 8);
            c[j] = _mm256_add_epi32(c[j], dot_sc(u[j], y + 128 * h + 32 * j, sc16));
        }
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
    s = _mm256_sub_epi32(s, _mm256_slli_epi32(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(sc8))), 5));
    return _mm256_fmadd_ps(_mm256_mul_ps(ad, _mm256_set1_ps(h2f(b->d))), _mm256_cvtepi32_ps(s), acc);
}

#define KQA_GEMV(NAME, BT, STEP)                                                                    \
    T_AVX2 void NAME(const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8KA *a, float *out) { \
        for (int64_t r = 0; r < nr; r++) {                                                          \
            const BT *b = (const BT *)((const char *)w + (size_t)r * row_bytes);                    \
            __m256 acc = _mm256_setzero_ps();                                                       \
            for (int64_t i = 0; i < nb; i++) {                                                      \
                PREFETCH_AHEAD(b + i, sizeof(BT));                                                  \
                acc = STEP(b + i, a[i].qs, LOAD(a[i].bsums), _mm256_set1_ps(a[i].d), acc);          \
            }                                                                                       \
            out[r] = hsum_ps(acc);                                                                  \
        }                                                                                           \
    }
KQA_GEMV(gemv_q4_k_avx2, BQ4_K, kq1a_q4_k)
KQA_GEMV(gemv_q5_k_avx2, BQ5_K, kq1a_q5_k)
KQA_GEMV(gemv_q6_k_avx2, BQ6_K, kq1a_q6_k)

#else
typedef int gemv_q_x86_only; /* the portable build has no kernels here (ISO C wants a declaration) */
#endif
