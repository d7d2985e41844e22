/* vecdot.c — dot products on the stored blocks (see vecdot.h).
 *
 * The block layouts are GGUF's (ggml-common.h); the arithmetic follows
 * ggml's vec_dot: a weight block and its activation block meet in integers,
 * one float multiply-add per block (per super-block for the K-quants).
 *
 *   Q8_0  { f16 d; int8 q[32] }                      w = d·q
 *   Q4_0  { f16 d; u8 q[16] }                        w = d·(q - 8), low nibbles first
 *   Q4_K  { f16 d, dmin; u8 sc[12]; u8 q[128] }      w = d·s_j·q - dmin·m_j, 8 groups of 32
 *   Q5_K  { f16 d, dmin; u8 sc[12]; u8 qh[32]; u8 q[128] }   as Q4_K, q has a 5th bit in qh
 *   Q6_K  { u8 ql[128]; u8 qh[64]; i8 sc[16]; f16 d } w = d·s_j·(q - 32), 16 groups of 16
 *
 * With the activation a = d_a·qa, a K-quant super-block gives
 *   Σ w·a = d·d_a·Σ_j s_j·Σ q·qa  -  dmin·d_a·Σ_j m_j·Σ qa,
 * the Σ qa of each 16 kept in the activation block (bsums), so the weights
 * stay unsigned (0..15, 0..31, 0..63): exactly the operand form of the x86
 * byte products (maddubs: unsigned × signed; vpdpbusd the same into int32).
 * Q6_K's offset of 32 and Q4_0's of 8 go the same way: 32·Σ s_j·bsum_j.
 *
 * Bounds: maddubs adds two u8·s8 products into an int16: 63·127·2 = 16002
 * for Q6_K, the widest here, fits. Q8_0 weights are signed: the sign moves
 * onto the activation (|w|, a·sign(w)), ggml's trick; our activations are
 * in [-127, 127], so a·sign(w) never overflows, and |w| ≤ 128 as unsigned.
 */
#include "tensor/vecdot.h"

#include <math.h>
#include <string.h>

#include "base/cpu.h"

#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <cpuid.h>
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif

enum { QK = 32, QKK = 256 };

typedef struct { uint16_t d; int8_t qs[32]; } BQ8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } BQ4_0;
typedef struct { uint16_t d, dmin; uint8_t sc[12]; uint8_t qs[128]; } BQ4_K;
typedef struct { uint16_t d, dmin; uint8_t sc[12]; uint8_t qh[32]; uint8_t qs[128]; } BQ5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t sc[16]; uint16_t d; } BQ6_K;

_Static_assert(sizeof(BQ8_0) == 34 && sizeof(BQ4_0) == 18 && sizeof(BQ4_K) == 144 && sizeof(BQ5_K) == 176 &&
               sizeof(BQ6_K) == 210, "GGUF block sizes");

/* ----------------------------------------------------------------------------
 * Which types, which activation form */

typedef enum { ACT_NONE, ACT_F32, ACT_Q8, ACT_Q8K } ActForm;

static ActForm act_form(DType t) {
    switch (t) {
    case DT_BF16: case DT_F16: return ACT_F32;
    case DT_Q8_0: case DT_Q4_0: return ACT_Q8;
    case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: return ACT_Q8K;
    default: return ACT_NONE;
    }
}

int vecdot_supported(DType t) { return act_form(t) != ACT_NONE; }

size_t vecdot_act_bytes(DType t, int64_t n) {
    switch (act_form(t)) {
    case ACT_F32: return (size_t)n * sizeof(float);
    case ACT_Q8: return (size_t)(n / QK) * sizeof(VecQ8A);
    case ACT_Q8K: return (size_t)(n / QKK) * sizeof(VecQ8KA);
    default: return 0;
    }
}

/* ----------------------------------------------------------------------------
 * Quantising the activation: d = max|x| / 127, q = round(x / d) — ties away
 * from zero (lrintf would follow the rounding mode; roundf does not). */

/* A NaN or an infinity in the block makes d NaN (x·0 is 0 only for finite
 * x), and its values 0: every dot product with the block is then NaN, as
 * the exact path's would be non-finite, and the forward pass's check stops
 * there — never a NaN cast to an integer. */
static float block_scale(const float *x, int n) {
    float amax = 0, bad = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i])), bad += x[i] * 0.0f;
    return amax / 127.0f + bad;
}

static int8_t q8(float x, float id) { return id == id ? (int8_t)roundf(x * id) : 0; }

void vecdot_quantize(DType t, const float *x, int64_t n, void *act) {
    ActForm f = act_form(t);
    if (f == ACT_F32) {
        memcpy(act, x, (size_t)n * sizeof(float));
    } else if (f == ACT_Q8) {
        VecQ8A *b = act;
        for (int64_t i = 0; i < n / QK; i++, x += QK) {
            float d = block_scale(x, QK), id = d != 0 ? 1.0f / d : 0.0f;
            int32_t s = 0;
            for (int j = 0; j < QK; j++) s += b[i].qs[j] = q8(x[j], id);
            b[i].d = d;
            b[i].sum = s;
        }
    } else if (f == ACT_Q8K) {
        VecQ8KA *b = act;
        for (int64_t i = 0; i < n / QKK; i++, x += QKK) {
            float d = block_scale(x, QKK), id = d != 0 ? 1.0f / d : 0.0f;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++) s += b[i].qs[j] = q8(x[j], id);
                b[i].bsums[g] = (int16_t)s;
            }
            b[i].d = d;
        }
    }
}

/* Q4_K / Q5_K's eight 6-bit scales and mins, packed in 12 bytes (ggml's
 * get_scale_min_k4): groups 0-3 in the low 6 bits of bytes 0-7, groups 4-7
 * split between the nibbles of bytes 8-11 and the top 2 bits of bytes 0-7. */
static void k_scales(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0xF) | (s[j] >> 6) << 4;
        m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
    }
}

/* Σ_j m_j·(Σ qa over group j of 32): the minimums' term of a Q4_K/Q5_K block. */
static int32_t k_mins(const uint8_t m[8], const int16_t bsums[16]) {
    int32_t s = 0;
    for (int j = 0; j < 8; j++) s += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
    return s;
}

/* Σ_j s_j·bsum_j over Q6_K's 16 groups of 16: its offset of 32 times this. */
static int32_t q6_offset(const int8_t sc[16], const int16_t bsums[16]) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += sc[j] * bsums[j];
    return s;
}

/* ----------------------------------------------------------------------------
 * Portable C: integer sums per block, then one float step */

static float dot_q8_0_c(const void *w, const void *act, int64_t n) {
    const BQ8_0 *b = w;
    const VecQ8A *a = act;
    float sum = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t s = 0;
        for (int j = 0; j < QK; j++) s += b[i].qs[j] * a[i].qs[j];
        sum += f16_to_f32(b[i].d) * a[i].d * (float)s;
    }
    return sum;
}

static float dot_q4_0_c(const void *w, const void *act, int64_t n) {
    const BQ4_0 *b = w;
    const VecQ8A *a = act;
    float sum = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) s += (b[i].qs[j] & 0xF) * a[i].qs[j] + (b[i].qs[j] >> 4) * a[i].qs[j + 16];
        sum += f16_to_f32(b[i].d) * a[i].d * (float)(s - 8 * a[i].sum);
    }
    return sum;
}

static float dot_q4_k_c(const void *w, const void *act, int64_t n) {
    const BQ4_K *b = w;
    const VecQ8KA *a = act;
    float sum = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        uint8_t sc[8], m[8];
        k_scales(b[i].sc, sc, m);
        const uint8_t *q = b[i].qs;
        const int8_t *y = a[i].qs;
        int32_t s = 0;
        for (int j = 0; j < 4; j++, q += 32, y += 64) {
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (q[l] & 0xF) * y[l];
                hi += (q[l] >> 4) * y[l + 32];
            }
            s += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        }
        sum += a[i].d * (f16_to_f32(b[i].d) * (float)s - f16_to_f32(b[i].dmin) * (float)k_mins(m, a[i].bsums));
    }
    return sum;
}

static float dot_q5_k_c(const void *w, const void *act, int64_t n) {
    const BQ5_K *b = w;
    const VecQ8KA *a = act;
    float sum = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        uint8_t sc[8], m[8];
        k_scales(b[i].sc, sc, m);
        const uint8_t *q = b[i].qs, *qh = b[i].qh;
        const int8_t *y = a[i].qs;
        int32_t s = 0;
        for (int j = 0; j < 4; j++, q += 32, y += 64) {
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += ((q[l] & 0xF) | (qh[l] >> (2 * j) & 1) << 4) * y[l];
                hi += ((q[l] >> 4) | (qh[l] >> (2 * j + 1) & 1) << 4) * y[l + 32];
            }
            s += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        }
        sum += a[i].d * (f16_to_f32(b[i].d) * (float)s - f16_to_f32(b[i].dmin) * (float)k_mins(m, a[i].bsums));
    }
    return sum;
}

static float dot_q6_k_c(const void *w, const void *act, int64_t n) {
    const BQ6_K *b = w;
    const VecQ8KA *a = act;
    float sum = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].sc, *y = a[i].qs;
        int32_t s = 0;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            int32_t g[8] = { 0 };
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                g[is] += ((ql[l] & 0xF) | (qh[l] & 3) << 4) * y[l];
                g[is + 2] += ((ql[l + 32] & 0xF) | (qh[l] >> 2 & 3) << 4) * y[l + 32];
                g[is + 4] += ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) * y[l + 64];
                g[is + 6] += ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) * y[l + 96];
            }
            for (int k = 0; k < 8; k++) s += sc[k] * g[k];
        }
        s -= 32 * q6_offset(b[i].sc, a[i].bsums);
        sum += f16_to_f32(b[i].d) * a[i].d * (float)s;
    }
    return sum;
}

static float dot_bf16_c(const void *w, const void *act, int64_t n) {
    const uint16_t *h = w;
    const float *x = act;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += bf16_to_f32(h[i]) * x[i];
    return sum;
}

static float dot_f16_c(const void *w, const void *act, int64_t n) {
    const uint16_t *h = w;
    const float *x = act;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += f16_to_f32(h[i]) * x[i];
    return sum;
}

/* ----------------------------------------------------------------------------
 * x86: AVX2 (maddubs + madd) and AVX-512 VL + VNNI (vpdpbusd), 32 bytes at a
 * time. One macro body per kernel, instantiated twice: DOT8(acc, u, s) adds
 * the four u8·s8 products of each int32 lane of (u, s) into acc. */

#if X86
#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

T_AVX2 static inline __m256i dot8_avx2(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
T_VNNI static inline __m256i dot8_vnni(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
/* The K-quants' groups carry a scale: u8·s8 pairs summed in int16 (maddubs;
 * every group here stays far inside int16, see the top), then madd with the
 * scale sums pairs into int32 with the scale applied: one instruction for
 * what vpdpbusd + a 32-bit multiply would take two (the multiply slow). */
T_AVX2 static inline __m256i dot8s(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
}

T_AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
T_AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
T_AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* Q8_0: |w| · (a·sign(w)). Two blocks a step, two FMA chains: one chain
 * would wait on the FMA's latency every block. */
#define DOT_Q8_0(SFX, TGT)                                                                        \
    TGT static inline __m256i q8_0_block_##SFX(const BQ8_0 *b, const VecQ8A *a) {                \
        __m256i x = _mm256_loadu_si256((const __m256i *)b->qs);                                   \
        __m256i y = _mm256_loadu_si256((const __m256i *)a->qs);                                   \
        return dot8_##SFX(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); \
    }                                                                                             \
    TGT static float dot_q8_0_##SFX(const void *w, const void *act, int64_t n) {                 \
        const BQ8_0 *b = w;                                                                       \
        const VecQ8A *a = act;                                                                    \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                            \
        int64_t i = 0, nb = n / QK;                                                               \
        for (; i + 2 <= nb; i += 2) {                                                             \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b[i].d) * a[i].d), _mm256_cvtepi32_ps(q8_0_block_##SFX(b + i, a + i)), acc0); \
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b[i + 1].d) * a[i + 1].d),                  \
                                   _mm256_cvtepi32_ps(q8_0_block_##SFX(b + i + 1, a + i + 1)), acc1); \
        }                                                                                         \
        if (i < nb)                                                                               \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b[i].d) * a[i].d), _mm256_cvtepi32_ps(q8_0_block_##SFX(b + i, a + i)), acc0); \
        return hsum_ps(_mm256_add_ps(acc0, acc1));                                                \
    }

/* Q4_0: nibbles (unsigned) · a, less 8·Σa; two chains as Q8_0. */
#define DOT_Q4_0(SFX, TGT)                                                                        \
    TGT static inline __m256 q4_0_block_##SFX(const BQ4_0 *b, const VecQ8A *a, float d) {        \
        __m128i q = _mm_loadu_si128((const __m128i *)b->qs);                                      \
        __m256i x = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF)); \
        return _mm256_cvtepi32_ps(dot8_##SFX(_mm256_setzero_si256(), x, _mm256_loadu_si256((const __m256i *)a->qs))); \
    }                                                                                             \
    TGT static float dot_q4_0_##SFX(const void *w, const void *act, int64_t n) {                 \
        const BQ4_0 *b = w;                                                                       \
        const VecQ8A *a = act;                                                                    \
        float sum = 0;                                                                            \
        __m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };                             \
        for (int64_t i = 0; i < n / QK; i++) {                                                    \
            float d = h2f(b[i].d) * a[i].d;                                                       \
            acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(d), q4_0_block_##SFX(b + i, a + i, d), acc[i & 1]); \
            sum -= d * (float)(8 * a[i].sum);                                                     \
        }                                                                                         \
        return hsum_ps(_mm256_add_ps(acc[0], acc[1])) + sum;                                      \
    }

/* Q4_K: per 64 values, low nibbles × a[0..32), high × a[32..64); the int32
 * lanes of each 32 times its 6-bit scale. */
#define DOT_Q4_K(SFX, TGT)                                                                        \
    TGT static float dot_q4_k_##SFX(const void *w, const void *act, int64_t n) {                 \
        const BQ4_K *b = w;                                                                       \
        const VecQ8KA *a = act;                                                                   \
        const __m256i lo4 = _mm256_set1_epi8(0xF);                                                \
        float sum = 0;                                                                            \
        for (int64_t i = 0; i < n / QKK; i++) {                                                   \
            uint8_t sc[8], m[8];                                                                  \
            k_scales(b[i].sc, sc, m);                                                             \
            __m256i s = _mm256_setzero_si256();                                                   \
            for (int j = 0; j < 4; j++) {                                                         \
                __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));              \
                s = dot8s(s, _mm256_and_si256(q, lo4), _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * j)), \
                          _mm256_set1_epi16(sc[2 * j]));                                          \
                s = dot8s(s, _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4),                      \
                          _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * j + 32)), _mm256_set1_epi16(sc[2 * j + 1])); \
            }                                                                                     \
            sum += a[i].d * (h2f(b[i].d) * (float)hsum_epi32(s) - h2f(b[i].dmin) * (float)k_mins(m, a[i].bsums)); \
        }                                                                                         \
        return sum;                                                                               \
    }

/* Q5_K: as Q4_K, the fifth bit of value l of group 2j (2j+1) is bit 2j
 * (2j+1) of qh[l]. */
#define DOT_Q5_K(SFX, TGT)                                                                        \
    TGT static float dot_q5_k_##SFX(const void *w, const void *act, int64_t n) {                 \
        const BQ5_K *b = w;                                                                       \
        const VecQ8KA *a = act;                                                                   \
        const __m256i lo4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);                     \
        float sum = 0;                                                                            \
        for (int64_t i = 0; i < n / QKK; i++) {                                                   \
            uint8_t sc[8], m[8];                                                                  \
            k_scales(b[i].sc, sc, m);                                                             \
            __m256i s = _mm256_setzero_si256(), qh = _mm256_loadu_si256((const __m256i *)b[i].qh); \
            for (int j = 0; j < 4; j++) {                                                         \
                __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));              \
                __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);                     \
                __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4); \
                qh = _mm256_srli_epi16(qh, 2);                                                    \
                s = dot8s(s, _mm256_or_si256(_mm256_and_si256(q, lo4), h0),                       \
                          _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * j)), _mm256_set1_epi16(sc[2 * j])); \
                s = dot8s(s, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), lo4), h1), \
                          _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * j + 32)), _mm256_set1_epi16(sc[2 * j + 1])); \
            }                                                                                     \
            sum += a[i].d * (h2f(b[i].d) * (float)hsum_epi32(s) - h2f(b[i].dmin) * (float)k_mins(m, a[i].bsums)); \
        }                                                                                         \
        return sum;                                                                               \
    }

/* Q6_K: per half of 128, four 32-value runs q1..q4 (see dot_q6_k_c); each
 * run's two groups of 16 have their own signed scale: the int32 lanes 0-3
 * hold the first group, 4-7 the second (lanes follow the bytes). */
#define DOT_Q6_K(SFX, TGT)                                                                        \
    TGT static float dot_q6_k_##SFX(const void *w, const void *act, int64_t n) {                 \
        const BQ6_K *b = w;                                                                       \
        const VecQ8KA *a = act;                                                                   \
        const __m256i lo4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);                      \
        float sum = 0;                                                                            \
        for (int64_t i = 0; i < n / QKK; i++) {                                                   \
            __m256i s = _mm256_setzero_si256();                                                   \
            for (int h = 0; h < 2; h++) {                                                         \
                const uint8_t *ql = b[i].ql + 64 * h, *qhp = b[i].qh + 32 * h;                    \
                const int8_t *sc = b[i].sc + 8 * h, *y = a[i].qs + 128 * h;                       \
                __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);                             \
                __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));                      \
                __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);                            \
                __m256i q[4] = {                                                                  \
                    _mm256_or_si256(_mm256_and_si256(l0, lo4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)), \
                    _mm256_or_si256(_mm256_and_si256(l1, lo4),                                    \
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)), \
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4),              \
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)), \
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4),              \
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)), \
                };                                                                                \
                for (int k = 0; k < 4; k++) {                                                     \
                    __m256i scl = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k])); \
                    s = dot8s(s, q[k], _mm256_loadu_si256((const __m256i *)(y + 32 * k)), scl);   \
                }                                                                                 \
            }                                                                                     \
            int32_t t = hsum_epi32(s) - 32 * q6_offset(b[i].sc, a[i].bsums);                      \
            sum += h2f(b[i].d) * a[i].d * (float)t;                                               \
        }                                                                                         \
        return sum;                                                                               \
    }

DOT_Q8_0(avx2, T_AVX2)
DOT_Q4_0(avx2, T_AVX2)
DOT_Q4_K(avx2, T_AVX2)
DOT_Q5_K(avx2, T_AVX2)
DOT_Q6_K(avx2, T_AVX2)
DOT_Q8_0(vnni, T_VNNI)
DOT_Q4_0(vnni, T_VNNI)
DOT_Q4_K(vnni, T_VNNI)
DOT_Q5_K(vnni, T_VNNI)
DOT_Q6_K(vnni, T_VNNI)

/* BF16 / F16 rows: widen 8 (16) at a time, four FMA chains; the tail (n not a
 * multiple of 32) in scalar order after. */
T_AVX2 static float dot_bf16_avx2(const void *w, const void *act, int64_t n) {
    const uint16_t *h = w;
    const float *x = act;
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i + 8 * k)));
            acc[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
        }
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += bf16_to_f32(h[i]) * x[i];
    return sum;
}

T_AVX2 static float dot_f16_avx2(const void *w, const void *act, int64_t n) {
    const uint16_t *h = w;
    const float *x = act;
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8 * k))),
                                     _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += f16_to_f32(h[i]) * x[i];
    return sum;
}

T_VNNI static float dot_bf16_avx512(const void *w, const void *act, int64_t n) {
    const uint16_t *h = w;
    const float *x = act;
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i + 16 * k)));
            acc[k] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(x + i + 16 * k), acc[k]);
        }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += bf16_to_f32(h[i]) * x[i];
    return sum;
}

/* VNNI on 256-bit vectors needs AVX-512 VL and VNNI beside the F set that
 * cpu.c ranks by: every CPU with AVX-512 BF16 has them, plain AVX-512F ones
 * (Knights Landing) do not — asked here, once. */
static int has_vnni(void) {
    static int v = -1;
    if (v < 0) {
        unsigned a, b = 0, c = 0, d;
        if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, 0, a, b, c, d);
        v = (b >> 30 & 1) && (b >> 31 & 1) && (c >> 11 & 1); /* AVX512BW, AVX512VL, AVX512_VNNI */
    }
    return v;
}
#endif

/* ----------------------------------------------------------------------------
 * Dispatch */

typedef float DotFn(const void *w, const void *act, int64_t n);
enum { K_GENERIC, K_AVX2, K_VNNI };

static int kernel_set(void) {
#if X86
    Isa isa = cpu_kernel_isa();
    if (isa >= ISA_AVX512 && has_vnni()) return K_VNNI;
    if (isa >= ISA_AVX2) return K_AVX2;
#endif
    return K_GENERIC;
}

const char *vecdot_kernel_name(void) {
    static const char *const names[] = { "generic", "avx2", "avx512vnni" };
    return names[kernel_set()];
}

static DotFn *dot_fn(DType t, int k) {
#if X86
    if (k != K_GENERIC) {
        int v = k == K_VNNI;
        switch (t) {
        case DT_Q8_0: return v ? dot_q8_0_vnni : dot_q8_0_avx2;
        case DT_Q4_0: return v ? dot_q4_0_vnni : dot_q4_0_avx2;
        case DT_Q4_K: return v ? dot_q4_k_vnni : dot_q4_k_avx2;
        case DT_Q5_K: return v ? dot_q5_k_vnni : dot_q5_k_avx2;
        case DT_Q6_K: return v ? dot_q6_k_vnni : dot_q6_k_avx2;
        case DT_BF16: return v ? dot_bf16_avx512 : dot_bf16_avx2;
        case DT_F16: return dot_f16_avx2;
        default: return NULL;
        }
    }
#endif
    switch (t) {
    case DT_Q8_0: return dot_q8_0_c;
    case DT_Q4_0: return dot_q4_0_c;
    case DT_Q4_K: return dot_q4_k_c;
    case DT_Q5_K: return dot_q5_k_c;
    case DT_Q6_K: return dot_q6_k_c;
    case DT_BF16: return dot_bf16_c;
    case DT_F16: return dot_f16_c;
    default: return NULL;
    }
}

void vecdot_rows(DType t, const void *w, int64_t nr, int64_t n, const void *act, float *out, int64_t stride) {
    DotFn *fn = dot_fn(t, kernel_set());
    size_t row_bytes = dtype_bytes(t, n);
    for (int64_t r = 0; r < nr; r++) out[r * stride] = fn((const char *)w + (size_t)r * row_bytes, act, n);
}
