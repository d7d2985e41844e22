/* half.h — scalar conversions between float and the two 16-bit float types.
 *
 * They sit in a file of their own, below both dtype.c (whose table turns
 * F16/BF16 rows into floats) and quant.c (whose blocks carry F16 scales), so
 * that neither of those two has to call the other.
 */
#ifndef NEUROMAP_HALF_H
#define NEUROMAP_HALF_H

#include <stdint.h>

/* IEEE binary16 → float, exact for every input. */
float f16_to_f32(uint16_t h);
/* float → IEEE binary16, round to nearest even. */
uint16_t f32_to_f16(float f);
/* bfloat16 is the top half of a float: widening is a shift. */
static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}
uint16_t f32_to_bf16(float f); /* round to nearest even, as PyTorch does */

#endif
