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
 *
 * Here: the activation's quantisation, the portable C kernels (the
 * reference shape of each product) and the dispatch. The x86 kernels are
 * batched (gemm_q.c; BF16 rows under amx: gemm_amx.c, on AMX tiles): one
 * call multiplies a chunk of rows with every token of a batch; a single
 * token (decode) is the batch of one.
 */
#include "tensor/vecdot.h"

#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "tensor/gemm_amx.h"
#include "tensor/gemm_q.h"

#if NM_X86
#include <cpuid.h>
#endif

enum { QK = 32, QKK = 256 };

_Static_assert(sizeof(BQ8_0) == 34 && sizeof(BQ4_0) == 18 && sizeof(BQ4_K) == 144 && sizeof(BQ5_K) == 176 &&
               sizeof(BQ6_K) == 210, "GGUF block sizes");

/* ----------------------------------------------------------------------------
 * Which types, which activation form */

typedef enum { ACT_NONE, ACT_F32, ACT_Q8, ACT_Q8K, ACT_BF16 } ActForm;

static int kernel_set(void);
#if NM_X86
static GemmFn *amx_int8(DType t, int64_t n, int *portable);
#endif

static ActForm act_form(DType t) {
    switch (t) {
    case DT_BF16: return kernel_set() >= GEMM_BF16 ? ACT_BF16 : ACT_F32; /* vdpbf16ps and AMX take BF16 pairs */
    case DT_F16: return ACT_F32;
    case DT_Q8_0: case DT_Q4_0: return ACT_Q8;
    case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: return ACT_Q8K;
    default: return ACT_NONE;
    }
}

int vecdot_supported(DType t) { return act_form(t) != ACT_NONE; }

size_t vecdot_act_bytes(DType t, int64_t n) {
    switch (act_form(t)) {
    case ACT_F32: return (size_t)n * sizeof(float);
    case ACT_BF16: return (size_t)n * sizeof(uint16_t);
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

#if NM_X86
/* The same quantisation, eight values a step (AVX2): the same scale (the
 * maximum is exact, the NaN test the same), and roundf's ties away from
 * zero built from truncation — v - trunc(v) is exact, and one more step
 * away from zero when it is at least 0.5 — so every byte is the scalar
 * code's. q[0..n) for n a multiple of 32; gsum[g] = Σ of each 16. */
__attribute__((target("avx2,fma"))) static float quant_block_avx2(const float *x, int n, int8_t *q, int16_t *gsum) {
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), zero = _mm256_setzero_ps();
    __m256 amax = zero, bad = zero;
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v, abs));
        bad = _mm256_add_ps(bad, _mm256_mul_ps(v, zero));
    }
    float m[8], b[8], am = 0, bd = 0;
    _mm256_storeu_ps(m, amax), _mm256_storeu_ps(b, bad);
    for (int i = 0; i < 8; i++) am = fmaxf(am, m[i]), bd += b[i];
    float d = am / 127.0f + bd, id = d != 0 ? 1.0f / d : 0.0f;
    if (id != id) {
        memset(q, 0, (size_t)n), memset(gsum, 0, (size_t)n / 16 * sizeof *gsum);
        return d;
    }
    const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256i w[2];
    for (int i = 0; i < n; i += 16) {
        __m256i r32[2];
        for (int h = 0; h < 2; h++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * h), vid);
            __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(v, t), abs), half, _CMP_GE_OQ);
            t = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_and_ps(v, sign), one)));
            r32[h] = _mm256_cvttps_epi32(t);
        }
        __m256i r16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(r32[0], r32[1]), 0xD8); /* 16 values in order */
        __m256i s = _mm256_madd_epi16(r16, _mm256_set1_epi16(1));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        gsum[i / 16] = (int16_t)_mm_cvtsi128_si32(s4);
        w[(i / 16) & 1] = r16;
        if ((i / 16) & 1) /* 32 values: to bytes, in order */
            _mm256_storeu_si256((__m256i *)(q + i - 16), _mm256_permute4x64_epi64(_mm256_packs_epi16(w[0], w[1]), 0xD8));
    }
    return d;
}
#endif

void vecdot_quantize(DType t, const float *x, int64_t n, void *act) {
    ActForm f = act_form(t);
#if NM_X86
    if (f == ACT_BF16) {
        gemm_q_to_bf16(x, n, act);
        return;
    }
    if (f != ACT_F32 && kernel_set() != 0) {
        if (f == ACT_Q8) {
            VecQ8A *b = act;
            for (int64_t i = 0; i < n / QK; i++, x += QK) {
                int16_t g[2];
                b[i].d = quant_block_avx2(x, QK, b[i].qs, g);
                b[i].sum = g[0] + g[1];
            }
        } else {
            VecQ8KA *b = act;
            for (int64_t i = 0; i < n / QKK; i++, x += QKK) b[i].d = quant_block_avx2(x, QKK, b[i].qs, b[i].bsums);
        }
        return;
    }
#endif
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

void vecdot_quantize_batch(DType t, const float *x, int64_t n, int T, void *act) {
#if NM_X86
    if (T > 1 && t == DT_BF16 && kernel_set() == GEMM_AMX) { /* the tiles' layout (gemm_amx.h); T = 1 is the plain row */
        gemm_amx_pack(x, n, T, act);
        return;
    }
#endif
    size_t ab = vecdot_act_bytes(t, n);
#if NM_X86
    int portable;
    if (T > 1 && amx_int8(t, n, &portable)) { /* quantised as for decode, then into the tiles' layout */
        char *q = xmalloc((size_t)T * ab);
        for (int k = 0; k < T; k++) vecdot_quantize(t, x + (size_t)k * n, n, q + (size_t)k * ab);
        gemm_amx_pack_int8(t, q, n, T, act, ab);
        free(q);
        return;
    }
#endif
    for (int k = 0; k < T; k++) vecdot_quantize(t, x + (size_t)k * n, n, (char *)act + (size_t)k * ab);
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

#if NM_X86
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
/* AMX-INT8 (CPUID.7.0:EDX[25]): every CPU with AMX-BF16 so far has it, but
 * the amx set is defined by the BF16 tiles (cpu.c), so Q8_0 asks here. */
static int has_amx_int8(void) {
    static int v = -1;
    if (v < 0) {
        unsigned a, b, c, d = 0;
        if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, 0, a, b, c, d);
        v = d >> 25 & 1;
    }
    return v;
}
#endif

/* ----------------------------------------------------------------------------
 * Dispatch */

typedef float DotFn(const void *w, const void *act, int64_t n);
enum { K_GENERIC, K_AVX2 = GEMM_AVX2, K_VNNI = GEMM_VNNI, K_BF16 = GEMM_BF16, K_AMX = GEMM_AMX };

static int kernel_set(void) {
#if NM_X86
    Isa isa = cpu_kernel_isa();
    if (isa >= ISA_AMX && has_vnni()) return K_AMX; /* cpu.c reports amx only with the tile permission */
    if (isa >= ISA_AVX512BF16 && has_vnni()) return K_BF16; /* every CPU with AVX-512 BF16 has VNNI */
    if (isa >= ISA_AVX512 && has_vnni()) return K_VNNI;
    if (isa >= ISA_AVX2) return K_AVX2;
#endif
    return K_GENERIC;
}

#if NM_X86
/* The AMX-INT8 kernel (gemm_amx.c) for rows of type t, n values, which
 * reads a batch of its own layout; NULL where there is none. Rows so long
 * that 16 of them pass 2^31 bytes (the kernel's 32-bit row offsets) get
 * NULL with *portable set: they take the portable C kernel, whose bits the
 * tiles give. */
static GemmFn *amx_int8(DType t, int64_t n, int *portable) {
    GemmFn *g = kernel_set() == K_AMX && has_amx_int8() ? gemm_amx_int8_kernel(t) : NULL;
    *portable = g && dtype_bytes(t, n) > (size_t)INT32_MAX / 16;
    return *portable ? NULL : g;
}
#endif

const char *vecdot_kernel_name(void) {
    static const char *const names[] = { "generic", "avx2", "avx512vnni", "avx512bf16", "amx" };
    return names[kernel_set()];
}

static DotFn *dot_fn(DType t) {
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

void vecdot_gemm(DType t, const void *w, int64_t nr, int64_t n, const void *act, int T, float *out, int64_t ldo) {
    size_t row_bytes = dtype_bytes(t, n), act_bytes = vecdot_act_bytes(t, n);
    GemmFn *g = gemm_q_kernel(t, kernel_set());
#if NM_X86
    if (t == DT_BF16 && kernel_set() == K_AMX) g = gemm_bf16_amx; /* its batch: vecdot_quantize_batch */
    int portable;
    GemmFn *ai = amx_int8(t, n, &portable); /* the same, against its batch */
    if (ai || portable) g = ai;
#endif
    if (g) {
        g(w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
        return;
    }
    /* Portable C: one dot product per row and token, the row in L1 for all T. */
    DotFn *fn = dot_fn(t);
    for (int64_t r = 0; r < nr; r++)
        for (int k = 0; k < T; k++)
            out[(size_t)k * ldo + r] = fn((const char *)w + (size_t)r * row_bytes, (const char *)act + (size_t)k * act_bytes, n);
}

void vecdot_rows(DType t, const void *w, int64_t nr, int64_t n, const void *act, float *out, int64_t stride) {
    size_t row_bytes = dtype_bytes(t, n);
    for (int64_t r = 0; r < nr; r++) vecdot_gemm(t, (const char *)w + (size_t)r * row_bytes, 1, n, act, 1, out + r * stride, 1);
}
