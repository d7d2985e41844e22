/* quant.c — dequantisation of GGUF's block formats, bit-exact with ggml.
 *
 * Each format packs a fixed number of weights (a block of 32, or a
 * "super-block" of QK_K = 256 for the k-quants) with one or two float16
 * scales. The block layouts below are ggml's, byte for byte (the sizes are
 * checked at compile time against the dtype table's bytes per block).
 *
 * Bit-exactness: every output value is computed with the same float
 * operations, in the same order, as ggml's dequantize_row_* (e.g. Q6_K is
 * (d * scale) * q, not d * (scale * q)). The build is ISO C11, where GCC
 * does not contract a*b - c into an FMA, so the rounding matches too.
 *
 * The blocks are read through structs: the loader guarantees tensor data
 * starts 4-byte aligned and every block size is even, so the float16 fields
 * are always 2-byte aligned.
 */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

#include "tensor/half.h"

#define QK 32    /* values per block in the 32-blocks */
#define QK_K 256 /* values per super-block in the k-quants */

/* ----------------------------------------------------------------------------
 * 32-value blocks: one scale (and a minimum for the _1 types) */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } BlockQ4_0;                         /* 4-bit, offset 8 */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } BlockQ4_1;                      /* 4-bit, plus min */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } BlockQ5_0;          /* 5th bits in qh */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } BlockQ5_1;
typedef struct { uint16_t d; int8_t qs[QK]; } BlockQ8_0;
typedef struct { uint16_t d; uint8_t qs[QK / 2]; } BlockIQ4_NL;                       /* 4-bit index into a table */

_Static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
               sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockIQ4_NL) == 18,
               "32-value block layouts must match ggml");

/* In every 4-bit block the low nibbles hold values 0..15 and the high
 * nibbles values 16..31 (not interleaved pairs). */

void dequant_q4_0(const void *src, float *y, int64_t n) {
    const BlockQ4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = ((b[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequant_q4_1(const void *src, float *y, int64_t n) {
    const BlockQ4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d), m = f16_to_f32(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (b[i].qs[j] & 0x0F) * d + m;
            y[j + QK / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The 32 fifth bits, bit j for value j, as a little-endian uint32. */
static uint32_t high_bits(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void dequant_q5_0(const void *src, float *y, int64_t n) {
    const BlockQ5_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d);
        const uint32_t qh = high_bits(b[i].qh);
        for (int j = 0; j < QK / 2; j++) {
            const int lo = (int)((b[i].qs[j] & 0x0F) | ((qh >> j) << 4 & 0x10));
            const int hi = (int)((b[i].qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
            y[j] = (lo - 16) * d;
            y[j + QK / 2] = (hi - 16) * d;
        }
    }
}

void dequant_q5_1(const void *src, float *y, int64_t n) {
    const BlockQ5_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d), m = f16_to_f32(b[i].m);
        const uint32_t qh = high_bits(b[i].qh);
        for (int j = 0; j < QK / 2; j++) {
            const int lo = (int)((b[i].qs[j] & 0x0F) | ((qh >> j) << 4 & 0x10));
            const int hi = (int)((b[i].qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
            y[j] = lo * d + m;
            y[j + QK / 2] = hi * d + m;
        }
    }
}

void dequant_q8_0(const void *src, float *y, int64_t n) {
    const BlockQ8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < QK; j++) y[j] = b[i].qs[j] * d;
    }
}

void quantize_q8_0(const float *x, void *dst, int64_t n) {
    BlockQ8_0 *out = dst;
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        /* ggml multiplies by the inverse rather than dividing: same rounding
         * as its reference quantiser, so the bytes match llama-quantize's. */
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int j = 0; j < QK; j++) out[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* IQ4_NL: a non-linear 4-bit code book, denser near zero where weights are. */
static const int8_t iq4nl_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

void dequant_iq4_nl(const void *src, float *y, int64_t n) {
    const BlockIQ4_NL *b = src;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * iq4nl_values[b[i].qs[j] & 0x0F];
            y[j + QK / 2] = d * iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

/* ----------------------------------------------------------------------------
 * k-quants: 256-value super-blocks of 16 or 8 sub-blocks, each with its own
 * small integer scale (and min) that multiplies the float16 super-scale. */

typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } BlockQ2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } BlockQ3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } BlockQ4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } BlockQ5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } BlockQ6_K;

_Static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
               sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210, "k-quant layouts must match ggml");

/* Q2_K: 16 sub-blocks of 16 values, 2-bit quants; each scale byte holds a
 * 4-bit scale (low) and a 4-bit min (high). qs is walked in two halves of
 * 32 bytes, each byte giving four values at shifts 0, 2, 4, 6. */
void dequant_q2_k(const void *src, float *y, int64_t n) {
    const BlockQ2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16_to_f32(b[i].d), min = f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) { /* bytes 0..15, then 16..31 */
                    const uint8_t sc = b[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K: 2 low bits in qs (as Q2_K), the third bit in hmask (set means +0,
 * clear means -4), and 16 signed 6-bit scales packed into 12 bytes: the low
 * nibbles in bytes 0..7 (scales 0..7 low, 8..15 high nibble), the top two
 * bits in bytes 8..11, two bits per scale. */
static int q3_k_scale(const uint8_t s[12], int j) {
    const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

void dequant_q3_k(const void *src, float *y, int64_t n) {
    const BlockQ3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = f16_to_f32(b[i].d);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int part = 0; part < 2; part++) {
                    const float dl = d_all * q3_k_scale(b[i].scales, is++);
                    for (int l = 16 * part; l < 16 * part + 16; l++)
                        *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 values, each with a 6-bit scale and a
 * 6-bit min packed into 12 bytes: sub-blocks 0..3 in the low 6 bits of bytes
 * 0..3 (scale) and 4..7 (min); sub-blocks 4..7 take their low 4 bits from
 * bytes 8..11 and their top 2 bits from the spare top bits of bytes 0..7. */
static void k4_scale_min(const uint8_t s[12], int j, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *min = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

void dequant_q4_k(const void *src, float *y, int64_t n) {
    const BlockQ4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16_to_f32(b[i].d), min = f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32) { /* 32 bytes = two sub-blocks, low then high nibbles */
            uint8_t sc, mn;
            k4_scale_min(b[i].scales, is, &sc, &mn);
            const float d1 = d * sc, m1 = min * mn;
            k4_scale_min(b[i].scales, is + 1, &sc, &mn);
            const float d2 = d * sc, m2 = min * mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void dequant_q5_k(const void *src, float *y, int64_t n) {
    const BlockQ5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16_to_f32(b[i].d), min = f16_to_f32(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2; /* the fifth bit of sub-block is, is+1 */
        for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, mn;
            k4_scale_min(b[i].scales, is, &sc, &mn);
            const float d1 = d * sc, m1 = min * mn;
            k4_scale_min(b[i].scales, is + 1, &sc, &mn);
            const float d2 = d * sc, m2 = min * mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* Q6_K: 16 sub-blocks of 16 values with signed 8-bit scales; 4 low bits in
 * ql, 2 high bits in qh. Each 128-value half reads 64 ql and 32 qh bytes:
 * value l, l+32, l+64, l+96 share qh[l] (bits 0-1, 2-3, 4-5, 6-7). */
void dequant_q6_k(const void *src, float *y, int64_t n) {
    const BlockQ6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}
