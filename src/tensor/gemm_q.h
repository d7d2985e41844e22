/* gemm_q.h — the fast path's blocks and its batched products (gemm_q.c).
 *
 * A prompt is a matrix × matrix product: T tokens meet every row. Done one
 * token at a time (a dot product per row and token), every quantised block
 * is unpacked — nibbles split, 6-bit scales unpacked, high bits merged — T
 * times; here it is unpacked once into registers and then meets the T
 * activation blocks of the batch, one after the other. Each token keeps its
 * own accumulators, updated in the same order whatever T is, so a token's
 * result never depends on the batch around it: decode is the same
 * computation with T = 1 (for Q8_0 and the K-quants under the vector sets a
 * kernel of its own, gemm_q.c's Q8_0 decode and gemv_q.c, with the same
 * int32 lanes and float steps), and a batch gives the bits token-by-token
 * decode gives.
 *
 * The activation forms (vecdot.h quantises into them) and GGUF's weight
 * blocks are declared in gemv_q.h (below this file: its decode kernels
 * use them too), below vecdot.c, which dispatches to these kernels, so
 * that no two files call each other.
 */
#ifndef NEUROMAP_GEMM_Q_H
#define NEUROMAP_GEMM_Q_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"
#include "tensor/gemv_q.h"

/* NM_INTERNAL_BEGIN: tensor/vecdot.c, tensor/gemm_q.c and tests/test_vecdot.c */
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
