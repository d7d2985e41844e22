/* dtype.c — the dtype table. Scalar F16/BF16 conversions live in half.c,
 * the block-quantised formats (GGUF's Q* and IQ4_NL) in quant.c. */
#include "tensor/dtype.h"

#include <string.h>

#include "base/cpu.h"
#include "tensor/quant.h"

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

/* Fast rows. F16 and BF16, the common half-precision checkpoints, widen 8
 * values an instruction where the kernel set has AVX2 and F16C (base/cpu.h: chosen
 * at run time, forced by NEUROMAP_ISA), so that the binary runs on any x86-64 (and the C loops serve everywhere else).
 * Both conversions are exact, so every path gives the same floats (only a
 * signalling NaN's F16 payload comes back quieted by F16C: still a NaN); the
 * scalar loop finishes what the vector one leaves (n mod 8). Measured on an
 * Intel Xeon (Sapphire Rapids), 16 Mi values: F16 24 ms against 175 ms for
 * the scalar loop, BF16 23 ms against 37 ms. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(NM_NO_X86)
#include <immintrin.h>
#define FAST_ROWS 1

__attribute__((target("avx2,f16c"))) static int64_t f16_widen_avx2(const uint16_t *h, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return i;
}

/* BF16 is the top half of an F32: widen to 32 bits, shift left by 16. */
__attribute__((target("avx2"))) static int64_t bf16_widen_avx2(const uint16_t *h, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    return i;
}

#else
#define FAST_ROWS 0
#endif

/* n halves, F16 or BF16: the vector loop where it runs, the C loop for the rest. */
static void half_row_to_float(const uint16_t *h, float *dst, int64_t n, int bf16) {
    int64_t i = 0;
#if FAST_ROWS
    if (cpu_kernel_isa() >= ISA_AVX2) i = bf16 ? bf16_widen_avx2(h, dst, n) : f16_widen_avx2(h, dst, n);
#endif
    for (; i < n; i++) dst[i] = bf16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
}

static void f16_row_to_float(const void *src, float *dst, int64_t n) { half_row_to_float(src, dst, n, 0); }
static void bf16_row_to_float(const void *src, float *dst, int64_t n) { half_row_to_float(src, dst, n, 1); }

static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_row_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = f32_to_f16(src[i]);
}

static void bf16_row_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]);
}

/* general.file_type is llama.cpp's llama_ftype, "mostly" this type; the
 * K-quants have S/M/L mixes of several types, so no one number is theirs. */
const DTypeTraits dtype_traits[DT_COUNT] = {
    [DT_F32]    = { .name = "F32",    .block_size = 1,   .block_bytes = 4,   .to_float = f32_to_float,     .from_float = f32_from_float,
                    .plain = PLAIN_F32,  .ggml_id = 0,  .gguf_file_type = 0,  .safetensors = "F32",  .torch = "float32" },
    [DT_F16]    = { .name = "F16",    .block_size = 1,   .block_bytes = 2,   .to_float = f16_row_to_float, .from_float = f16_row_from_float,
                    .plain = PLAIN_F16,  .ggml_id = 1,  .gguf_file_type = 1,  .safetensors = "F16",  .torch = "float16" },
    [DT_BF16]   = { .name = "BF16",   .block_size = 1,   .block_bytes = 2,   .to_float = bf16_row_to_float, .from_float = bf16_row_from_float,
                    .plain = PLAIN_BF16, .ggml_id = 30, .gguf_file_type = 32, .safetensors = "BF16", .torch = "bfloat16" },
    [DT_Q4_0]   = { .name = "Q4_0",   .block_size = 32,  .block_bytes = 18,  .to_float = QUANT_FN(q4_0),   .ggml_id = 2,  .gguf_file_type = 2 },
    [DT_Q4_1]   = { .name = "Q4_1",   .block_size = 32,  .block_bytes = 20,  .to_float = QUANT_FN(q4_1),   .ggml_id = 3,  .gguf_file_type = 3 },
    [DT_Q5_0]   = { .name = "Q5_0",   .block_size = 32,  .block_bytes = 22,  .to_float = QUANT_FN(q5_0),   .ggml_id = 6,  .gguf_file_type = 8 },
    [DT_Q5_1]   = { .name = "Q5_1",   .block_size = 32,  .block_bytes = 24,  .to_float = QUANT_FN(q5_1),   .ggml_id = 7,  .gguf_file_type = 9 },
    [DT_Q8_0]   = { .name = "Q8_0",   .block_size = 32,  .block_bytes = 34,  .to_float = QUANT_FN(q8_0),   .from_float = quantize_q8_0,
                    .ggml_id = 8,  .gguf_file_type = 7 },
    [DT_Q2_K]   = { .name = "Q2_K",   .block_size = 256, .block_bytes = 84,  .to_float = QUANT_FN(q2_k),   .ggml_id = 10, .gguf_file_type = -1 },
    [DT_Q3_K]   = { .name = "Q3_K",   .block_size = 256, .block_bytes = 110, .to_float = QUANT_FN(q3_k),   .ggml_id = 11, .gguf_file_type = -1 },
    [DT_Q4_K]   = { .name = "Q4_K",   .block_size = 256, .block_bytes = 144, .to_float = QUANT_FN(q4_k),   .ggml_id = 12, .gguf_file_type = -1 },
    [DT_Q5_K]   = { .name = "Q5_K",   .block_size = 256, .block_bytes = 176, .to_float = QUANT_FN(q5_k),   .ggml_id = 13, .gguf_file_type = -1 },
    [DT_Q6_K]   = { .name = "Q6_K",   .block_size = 256, .block_bytes = 210, .to_float = QUANT_FN(q6_k),   .ggml_id = 14, .gguf_file_type = 18 },
    [DT_IQ4_NL] = { .name = "IQ4_NL", .block_size = 32,  .block_bytes = 18,  .to_float = QUANT_FN(iq4_nl), .ggml_id = 20, .gguf_file_type = 25 },
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
