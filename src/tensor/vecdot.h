/* vecdot.h — dot products on the stored blocks: the forward pass's fast path.
 *
 * A quantised row is never widened to F32. The activation vector is
 * quantised once per matmul to int8, per block of 32 (Q8_0, Q4_0 weights) or
 * of 256 (the K-quants), with one float scale per block, as ggml's vec_dot
 * does with its Q8_0 / Q8_K activations; each weight block then meets its
 * activation block in integer arithmetic (exact: int32 sums), and only the
 * per-block results are scaled and summed in float. BF16 and F16 rows are
 * widened in registers and multiplied with the F32 activation (FMA).
 *
 * The numerical difference from the exact path: the activation x becomes
 * x' = d·round(x/d), d = max|x_block| / 127, so |x - x'| ≤ d/2 per element
 * and a dot product moves by at most Σ|w_i|·d/2 (relative error ~ 0.4% of
 * the block's largest activation per element, averaging out over a row);
 * plus float summation order. BF16/F16 rows: summation order only.
 *
 * Kernels: portable C, AVX2 (maddubs), and AVX-512 VL + VNNI (vpdpbusd)
 * where the kernel set is avx512 or higher and the CPU has VNNI; chosen at
 * each call from cpu_kernel_isa(). Each row is one fixed computation for a
 * given kernel set, whichever thread runs it.
 */
#ifndef NEUROMAP_VECDOT_H
#define NEUROMAP_VECDOT_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"

/* NM_INTERNAL_BEGIN: the forward pass's matmul and tests/test_vecdot.c */
/* The activation blocks. Q8A: 32 values, its sum (Q4_0's offset of 8). Q8KA:
 * 256 values and the sums of each 16 (the K-quants' minimums and offsets). */
typedef struct { float d; int32_t sum; int8_t qs[32]; } VecQ8A;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } VecQ8KA;

/* 1 when rows of type t have a dot product here (Q8_0, Q4_0, Q4_K, Q5_K,
 * Q6_K, BF16, F16). */
int vecdot_supported(DType t);
/* Bytes of the activation form of n values for rows of type t. */
size_t vecdot_act_bytes(DType t, int64_t n);
/* x[0..n) into the activation form for type t (n a multiple of its block). */
void vecdot_quantize(DType t, const float *x, int64_t n, void *act);
/* out[r·stride] = row r · act for the nr rows at w (each n values of type t). */
void vecdot_rows(DType t, const void *w, int64_t nr, int64_t n, const void *act, float *out, int64_t stride);
/* The kernel set the dot products run on now: "generic", "avx2" or "avx512vnni". */
const char *vecdot_kernel_name(void);
/* NM_INTERNAL_END */

#endif
