/* gemv_q.h — the quantised blocks, and decode of the K-quants (gemv_q.c).
 *
 * GGUF's weight blocks and the activation forms vecdot.h quantises into,
 * shared by the batched kernels (gemm_q.c, above) and the decode kernels
 * here; and those decode kernels: T = 1, straight from the blocks.
 */
#ifndef NEUROMAP_GEMV_Q_H
#define NEUROMAP_GEMV_Q_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/dtype.h"

/* NM_INTERNAL_BEGIN: tensor/vecdot.c, tensor/gemm_q.c, tensor/gemv_q.c and tests/test_vecdot.c */
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

/* Decode of Q4_K/Q5_K/Q6_K rows under gemm_q.h's GEMM_VNNI set (_vnni) or
 * GEMM_AVX2 (_avx2): out[r] = row r · the one activation a, nb super-blocks
 * a row (row_bytes apart); the bits the batched kernel gives that token.
 * x86 only, and the caller checks the CPU has the set. */
#define GEMV_KQ_ARGS const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8KA *a, float *out
void gemv_q4_k_vnni(GEMV_KQ_ARGS);
/* The same with the portable C kernel's float steps instead (the amx set's
 * decode, gemm_amx.c): its bits. */
void gemv_q4_k_vnni_c(GEMV_KQ_ARGS);
void gemv_q5_k_vnni_c(GEMV_KQ_ARGS);
void gemv_q6_k_vnni_c(GEMV_KQ_ARGS);
void gemv_q4_0_vnni_c(const void *w, size_t row_bytes, int64_t nr, int64_t nb, const VecQ8A *a, float *out);
void gemv_q5_k_vnni(GEMV_KQ_ARGS);
void gemv_q6_k_vnni(GEMV_KQ_ARGS);
void gemv_q4_k_avx2(GEMV_KQ_ARGS);
void gemv_q5_k_avx2(GEMV_KQ_ARGS);
void gemv_q6_k_avx2(GEMV_KQ_ARGS);
#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>
/* Q6_K's half h (128 values) as four runs of 32 unsigned 6-bit values (low
 * nibbles of ql, then their high nibbles, each with two bits of qh on top;
 * the offset of 32 not yet taken): gemv_q.c's decode and gemm_q.c's staging
 * both unpack this way. */
__attribute__((target("avx2"), always_inline)) static inline void q6_k_half_avx2(const BQ6_K *b, int h, __m256i u[4]) {
    const __m256i lo4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h)), l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    u[0] = _mm256_or_si256(_mm256_and_si256(l0, lo4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
    u[1] = _mm256_or_si256(_mm256_and_si256(l1, lo4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
}
#endif
/* NM_INTERNAL_END */

#endif
