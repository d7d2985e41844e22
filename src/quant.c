/* PLACEHOLDER — replaced by the GGUF/quant work. */
#include <string.h>
#include "quant.h"
#define TODO(name) void dequant_##name(const void *s, float *d, int64_t n) { (void)s; memset(d, 0, (size_t)n * 4); }
TODO(q4_0) TODO(q4_1) TODO(q5_0) TODO(q5_1) TODO(q8_0) TODO(q2_k) TODO(q3_k) TODO(q4_k) TODO(q5_k) TODO(q6_k) TODO(iq4_nl)
