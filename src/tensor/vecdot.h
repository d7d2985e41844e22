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
 * plus float summation order. BF16/F16 rows: summation order only —
 * except under AVX-512 BF16 (the avx512bf16 and amx sets), where BF16 rows
 * meet the activation rounded to BF16 (relative error ≤ 2^-8 per element,
 * llama.cpp's own form for BF16 rows) by vdpbf16ps — or TDPBF16PS on AMX
 * tiles under amx —, products exact, sums in F32 (denormals flushed, as
 * both instructions do).
 *
 * Kernels: portable C, AVX2 (maddubs), AVX-512 VL + VNNI (vpdpbusd,
 * vpdpwssd) where the kernel set is avx512 or higher and the CPU has VNNI,
 * vdpbf16ps for BF16 rows where it is avx512bf16, and AMX tiles for them
 * where it is amx (gemm_amx.c: decode too), and for Q8_0, Q4_0, Q4_K, Q5_K
 * and Q6_K rows there (AMX-INT8: exact block sums, then the portable C kernel's
 * float steps, so the generic set's bits; the K-quants' decode on vectors
 * with those steps, gemv_q.c); chosen at each
 * call from cpu_kernel_isa(). The x86 ones are batched (gemm_q.h): a prompt
 * unpacks each block once per batch of tokens. Each (row, token) is one
 * fixed computation for a given kernel set, whichever thread runs it and
 * whatever batch it is in.
 */
#ifndef NEUROMAP_VECDOT_H
#define NEUROMAP_VECDOT_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"
#include "tensor/gemm_q.h" /* the activation blocks: VecQ8A, VecQ8KA */

/* NM_INTERNAL_BEGIN: the forward pass's matmul and tests/test_vecdot.c */
/* 1 when rows of type t have a dot product here (Q8_0, Q4_0, Q4_K, Q5_K,
 * Q6_K, BF16, F16). */
int vecdot_supported(DType t);
/* Bytes of the activation form of n values for rows of type t. */
size_t vecdot_act_bytes(DType t, int64_t n);
/* x[0..n) into the activation form for type t (n a multiple of its block). */
void vecdot_quantize(DType t, const float *x, int64_t n, void *act);
/* The T rows of x (n values each) into the batch form vecdot_gemm reads,
 * T·vecdot_act_bytes(t, n) bytes: T activations in vecdot_quantize's form,
 * act_bytes apart — except BF16 rows under the amx set, whose batch is
 * interleaved for the tiles (gemm_q.h: gemm_amx_pack). A batch of one is
 * always vecdot_quantize's form. */
void vecdot_quantize_batch(DType t, const float *x, int64_t n, int T, void *act);
/* out[r·stride] = row r · act for the nr rows at w (each n values of type t). */
void vecdot_rows(DType t, const void *w, int64_t nr, int64_t n, const void *act, float *out, int64_t stride);
/* out[k·ldo + r] = row r · activation k for the nr rows at w and the T
 * activations at act (vecdot_quantize_batch's form): a prompt's matmul, each
 * block unpacked once per batch (gemm_q.h). Token k's result is the one
 * vecdot_rows gives for it alone, bit for bit, in every kernel set. */
void vecdot_gemm(DType t, const void *w, int64_t nr, int64_t n, const void *act, int T, float *out, int64_t ldo);
/* The kernel set the dot products run on now: "generic", "avx2", "avx512vnni",
 * "avx512bf16" or "amx". */
const char *vecdot_kernel_name(void);
/* NM_INTERNAL_END */

#endif
