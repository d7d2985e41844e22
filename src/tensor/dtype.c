/* dtype.c — the dtype table. Scalar F16/BF16 conversions live in half.c,
 * the block-quantised formats (GGUF's Q* and IQ4_NL) in quant.c. */
#include "tensor/dtype.h"

#include <string.h>

#include "tensor/quant.h"

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_row_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(h[i]);
}

static void bf16_row_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]);
}

const DTypeTraits dtype_traits[DT_COUNT] = {
    [DT_F32]    = { .name = "F32",    .block_size = 1,   .block_bytes = 4,   .to_float = f32_to_float,        .ggml_id = 0,  .safetensors = "F32" },
    [DT_F16]    = { .name = "F16",    .block_size = 1,   .block_bytes = 2,   .to_float = f16_row_to_float,    .ggml_id = 1,  .safetensors = "F16" },
    [DT_BF16]   = { .name = "BF16",   .block_size = 1,   .block_bytes = 2,   .to_float = bf16_row_to_float,   .ggml_id = 30, .safetensors = "BF16" },
    [DT_Q4_0]   = { .name = "Q4_0",   .block_size = 32,  .block_bytes = 18,  .to_float = QUANT_FN(q4_0),      .ggml_id = 2 },
    [DT_Q4_1]   = { .name = "Q4_1",   .block_size = 32,  .block_bytes = 20,  .to_float = QUANT_FN(q4_1),      .ggml_id = 3 },
    [DT_Q5_0]   = { .name = "Q5_0",   .block_size = 32,  .block_bytes = 22,  .to_float = QUANT_FN(q5_0),      .ggml_id = 6 },
    [DT_Q5_1]   = { .name = "Q5_1",   .block_size = 32,  .block_bytes = 24,  .to_float = QUANT_FN(q5_1),      .ggml_id = 7 },
    [DT_Q8_0]   = { .name = "Q8_0",   .block_size = 32,  .block_bytes = 34,  .to_float = QUANT_FN(q8_0),      .ggml_id = 8 },
    [DT_Q2_K]   = { .name = "Q2_K",   .block_size = 256, .block_bytes = 84,  .to_float = QUANT_FN(q2_k),      .ggml_id = 10 },
    [DT_Q3_K]   = { .name = "Q3_K",   .block_size = 256, .block_bytes = 110, .to_float = QUANT_FN(q3_k),      .ggml_id = 11 },
    [DT_Q4_K]   = { .name = "Q4_K",   .block_size = 256, .block_bytes = 144, .to_float = QUANT_FN(q4_k),      .ggml_id = 12 },
    [DT_Q5_K]   = { .name = "Q5_K",   .block_size = 256, .block_bytes = 176, .to_float = QUANT_FN(q5_k),      .ggml_id = 13 },
    [DT_Q6_K]   = { .name = "Q6_K",   .block_size = 256, .block_bytes = 210, .to_float = QUANT_FN(q6_k),      .ggml_id = 14 },
    [DT_IQ4_NL] = { .name = "IQ4_NL", .block_size = 32,  .block_bytes = 18,  .to_float = QUANT_FN(iq4_nl),    .ggml_id = 20 },
};

int dtype_from_ggml(uint32_t id, DType *out) {
    for (int t = 0; t < DT_COUNT; t++)
        if (dtype_traits[t].ggml_id == (int)id) { *out = (DType)t; return 1; }
    return 0;
}

int dtype_from_safetensors(const char *name, DType *out) {
    for (int t = 0; t < DT_COUNT; t++)
        if (dtype_traits[t].safetensors && strcmp(dtype_traits[t].safetensors, name) == 0) { *out = (DType)t; return 1; }
    return 0;
}

/* ggml types we do not read, named so the refusal can say which one. */
const char *ggml_type_name(uint32_t id) {
    static const char *names[] = {
        [4] = "Q4_2 (removed)", [5] = "Q4_3 (removed)", [9] = "Q8_1", [15] = "Q8_K", [16] = "IQ2_XXS",
        [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S", [21] = "IQ3_S", [22] = "IQ2_S", [23] = "IQ4_XS",
        [24] = "I8", [25] = "I16", [26] = "I32", [27] = "I64", [28] = "F64", [29] = "IQ1_M",
        [34] = "TQ1_0", [35] = "TQ2_0",
    };
    DType t;
    if (dtype_from_ggml(id, &t)) return dtype_traits[t].name;
    return id < sizeof names / sizeof names[0] ? names[id] : NULL;
}

size_t dtype_bytes(DType t, int64_t n) {
    const DTypeTraits *tr = &dtype_traits[t];
    if (n < 0 || n % tr->block_size) return 0;
    size_t out;
    if (__builtin_mul_overflow((size_t)(n / tr->block_size), tr->block_bytes, &out)) return 0;
    return out;
}
