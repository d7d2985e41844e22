/* quant.h — dequantisation of GGUF's block formats (bit-exact with ggml).
 * Each function converts n values (a multiple of the block size). */
#ifndef NEUROMAP_QUANT_H
#define NEUROMAP_QUANT_H

#include <stdint.h>

/* NM_INTERNAL_BEGIN: the table in dtype.c is the way in */
#define QUANT_FN(name) dequant_##name
#define DECLARE_DEQUANT(name) void dequant_##name(const void *src, float *dst, int64_t n)

DECLARE_DEQUANT(q4_0);
DECLARE_DEQUANT(q4_1);
DECLARE_DEQUANT(q5_0);
DECLARE_DEQUANT(q5_1);
DECLARE_DEQUANT(q8_0);
DECLARE_DEQUANT(q2_k);
DECLARE_DEQUANT(q3_k);
DECLARE_DEQUANT(q4_k);
DECLARE_DEQUANT(q5_k);
DECLARE_DEQUANT(q6_k);
DECLARE_DEQUANT(iq4_nl);
/* NM_INTERNAL_END */

/* The one quantiser, for the writers: ggml's reference Q8_0 quantisation
 * (quantize_row_q8_0_ref): per block of 32, d = max|x| / 127 stored as f16,
 * q = round(x / d). n is a multiple of 32. */
void quantize_q8_0(const float *x, void *dst, int64_t n);

#endif
