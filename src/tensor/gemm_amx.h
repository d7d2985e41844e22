/* gemm_amx.h — BF16 and Q8_0 rows × a batch of tokens on AMX tiles
 * (gemm_amx.c), the amx set's kernels for those types in vecdot.c.
 *
 * It keeps gemm_q.h's contract with the tiles' own order of sums: a
 * token's result never depends on the batch around it, decode is the same
 * kernel with T = 1, and 1 and N threads give the same bits. Its bits
 * differ from GEMM_BF16's vdpbf16ps kernel (another order of the same FP32
 * sums of exact BF16 products).
 */
#ifndef NEUROMAP_GEMM_AMX_H
#define NEUROMAP_GEMM_AMX_H

#include <stdint.h>

#include "tensor/gemm_q.h"

/* NM_INTERNAL_BEGIN: tensor/vecdot.c and tests/test_vecdot.c */
/* The batch the kernel reads: the T rows of x (n values each) rounded as
 * gemm_q_to_bf16 rounds them, in groups of 16 tokens (the last one w =
 * T mod 16 wide), group g at out + 16·g·n: pair p of token j at the
 * uint32 p·w + j, then, for odd n, the w last values. T·n halves in all;
 * for T = 1, gemm_q_to_bf16's row. x86 only, where the CPU has AVX-512
 * BF16. */
void gemm_amx_pack(const float *x, int64_t n, int T, uint16_t *out);
/* GemmFn (gemm_q.h) on that batch (act_bytes unused: n halves a token).
 * x86 only, where cpu_kernel_isa() is ISA_AMX (the tile permission). */
GemmFn gemm_bf16_amx;
/* Quantised rows on AMX-INT8 (gemm_amx.c), with the portable C kernel's
 * bits: the kernel for rows of type t — Q8_0, Q4_0, Q4_K, Q5_K or Q6_K —
 * or NULL for any other type. A GemmFn on gemm_amx_pack_int8's batch, x86
 * only, where cpu_kernel_isa() is ISA_AMX and the CPU has AMX-INT8, for
 * rows of at most INT32_MAX / 16 bytes (16 rows' offsets in 32 bits;
 * vecdot.c sends longer ones to the portable kernel). */
GemmFn *gemm_amx_int8_kernel(DType t);
/* Its batch: the T activations q in vecdot_quantize's form for type t
 * (act_bytes apart) rearranged into out (T·act_bytes bytes, not q) for the
 * tiles: groups of 16 tokens, group g at 16·g·act_bytes. A batch of one is
 * the plain form. x86 only. */
void gemm_amx_pack_int8(DType t, const void *q, int64_t n, int T, char *out, size_t act_bytes);
/* NM_INTERNAL_END */

#endif
