/* gemm_q.h — the fast path's blocks and its batched products (gemm_q.c).
 *
 * A prompt is a matrix × matrix product: T tokens meet every row. Done one
 * token at a time (a dot product per row and token), every quantised block
 * is unpacked — nibbles split, 6-bit scales unpacked, high bits merged — T
 * times; here it is unpacked once into registers and then meets the T
 * activation blocks of the batch, one after the other. Each token keeps its
 * own accumulators, updated in the same order whatever T is, so a token's
 * result never depends on the batch around it: decode is the same kernel
 * with T = 1, and a batch gives the bits token-by-token decode gives.
 *
 * The activation forms (vecdot.h quantises into them) and GGUF's weight
 * blocks are declared here, below vecdot.c, which dispatches to these
 * kernels, so that the two files never call each other.
 */
#ifndef NEUROMAP_GEMM_Q_H
#define NEUROMAP_GEMM_Q_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"

/* NM_INTERNAL_BEGIN: tensor/vecdot.c, tensor/gemm_q.c and tests/test_vecdot.c */
/* The activation blocks. Q8A: 32 values, its sum (Q4_0's offset of 8). Q8KA:
 * 256 values and the sums of each 16 (the K-quants' minimums and offsets). */
typedef struct { float d; int32_t sum; int8_t qs[32]; } VecQ8A;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } VecQ8KA;

/* GGUF's blocks (ggml-common.h). */
typedef struct { uint16_t d; int8_t qs[32]; } BQ8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } BQ4_0;
typedef struct { uint16_t d, dmin; uint8_t sc[12]; uint8_t qs[128]; } BQ4_K;
typedef struct { uint16_t d, dmin; uint8_t sc[12]; uint8_t qh[32]; uint8_t qs[128]; } BQ5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t sc[16]; uint16_t d; } BQ6_K;

/* Q4_K / Q5_K's eight 6-bit scales and mins, packed in 12 bytes (ggml's
 * get_scale_min_k4): groups 0-3 in the low 6 bits of bytes 0-7, groups 4-7
 * split between the nibbles of bytes 8-11 and the top 2 bits of bytes 0-7. */
static inline void k_scales(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0xF) | (s[j] >> 6) << 4;
        m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
    }
}

/* out[k·ldo + r] = row r · activation k, for the nr rows at w (row_bytes
 * apart, n values each) and the T activations at act (act_bytes apart). */
typedef void GemmFn(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                    float *out, int64_t ldo);

/* The batched kernel for rows of type t in an x86 set: GEMM_AVX2 (AVX2 +
 * FMA + F16C: maddubs), GEMM_VNNI (AVX-512 VL + VNNI: vpdpbusd/vpdpwssd,
 * BF16 rows on 512-bit FMA), GEMM_BF16 (VNNI's, and BF16 rows by
 * vdpbf16ps against the activation in BF16: gemm_q_to_bf16), GEMM_AMX
 * (VNNI's; BF16 rows there are gemm_amx.h's, on AMX tiles, which vecdot.c
 * dispatches to: NULL here); NULL where there is none (the caller runs
 * the portable dot products, or the binary is not for x86). The caller
 * checks the CPU has the set. */
enum { GEMM_AVX2 = 1, GEMM_VNNI = 2, GEMM_BF16 = 3, GEMM_AMX = 4 };
GemmFn *gemm_q_kernel(DType t, int set);
/* x[0..n) to BF16, rounded to nearest even (GEMM_BF16's activation form). */
void gemm_q_to_bf16(const float *x, int64_t n, uint16_t *out);
/* NM_INTERNAL_END */

#endif
