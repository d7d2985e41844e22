/* gemm_amx.c — BF16 rows × a batch of tokens on AMX tiles: the amx set's
 * BF16 kernel (gemm_amx.h), prompts and decode alike; Q8_0, Q4_0 and
 * K-quant (Q4_K, Q5_K, Q6_K) rows on AMX-INT8 at the end of the file.
 *
 * AMX gives each core eight tile registers of up to 16 rows × 64 bytes and
 * TDPBF16PS: C (16 × 16 floats) += A (16 rows × 32 BF16 along k) · B (16
 * "pair rows": for each of 16 columns, the BF16 pair k = 2p, 2p + 1), 8,192
 * multiply-adds in one instruction (kernels_amx.c has the map's use of it).
 *
 * Operands. A is 16 weight rows, 32 values of k each, read in place: a
 * tile load takes 16 rows of 64 bytes at any stride, so the matrix's own
 * rows (row_bytes apart) are the operand and nothing is copied. B is the
 * batch's activations, rounded to BF16 (gemm_q_to_bf16's rounding) and
 * packed once per matmul by gemm_amx_pack into "VNNI" layout (16 tokens'
 * pairs transposed in registers: 14 µs for 32 tokens × 2048, against 5 for
 * the rounding alone and 52 for a pair at a time), tokens in groups of 16: in a group of w tokens, pair row p holds the w tokens'
 * pairs (x[2p], x[2p + 1]) side by side, 4w bytes. A B tile is 16 pair rows
 * of w columns at a stride of 4w bytes: one step of 32 k. For w = 1 that
 * is the token's plain BF16 row — decode's activation needs no packing.
 * C is 16 rows × w tokens in floats, stored to the stack and written out
 * transposed: out[k·ldo + r].
 *
 * Blocking. Tiles 0–3 hold C for 32 rows × 32 tokens (two row tiles by two
 * token groups), 4–5 the rows, 6–7 the tokens: per step of 32 k, four loads
 * and four products. The forward pass hands each task 32 rows (forward.c's
 * FAST_CHUNK_ROWS) and at most 32 tokens (its BATCH), so a task is one
 * block: every weight row is read from memory once per batch. The products
 * wait on the rows' loads (perf puts the kernel's time on them): it is
 * memory-bound, 15 GB/s per core for 32 tokens, 19 for one (best of 15
 * calls, 768 MiB of rows, Xeon 4th/5th gen, loaded), where the vdpbf16ps
 * kernel reached 2 at 32 tokens. No software prefetch: the rows' next
 * lines fetched 4, 8, 16 or 32 steps ahead (to L1 or L2) measured the same
 * or slower than none, and so did loading each operand's next step as soon
 * as its last product was issued (same best time).
 *
 * Decode runs here too (T = 1: B one column, C 16 × 1): alternated in one
 * process with the vdpbf16ps kernel over the same rows it reads 17.7
 * against 16.3 GB/s (n = 2048) and 15.9 against 15.5 (n = 8192), medians
 * of 11; whole 1B BF16 decodes alternated by NEUROMAP_ISA, a median pair
 * ratio of 1.06 (1 thread) and 1.17 (2 threads). Not slower, so the bit
 * contract holds as it is, memcmp, with no second kernel for decode.
 *
 * Tails. Fewer than 16 rows or tokens: smaller tiles (the configuration
 * is built per block shape and loaded only when the shape changes). K not
 * a multiple of 32: the last step reads zero-padded copies of the rows'
 * and the tokens' last values (zeros add nothing). An odd K: each group
 * keeps its tokens' last values after the pairs (w × (K - 1) halves, then
 * w), so a batch is exactly T·K halves, vecdot_act_bytes per token.
 *
 * Arithmetic (Intel SDM, TDPBF16PS): each BF16 product is exact in FP32
 * and added into the FP32 sum with round-to-nearest-even; BF16 subnormal
 * inputs are read as zero and subnormal results flushed to zero, whatever
 * MXCSR says (as vdpbf16ps does). The activation is the F32 value rounded
 * to BF16 once per matmul (relative 2^-8 at most), as under the
 * avx512bf16 set. So an output is K exact products of BF16 values summed in
 * FP32 with K roundings, plus flushes of at most 2^-126·(|w| + |x| + 1) per
 * step: within (K + 2)·2^-24·Σ|w·x| + flushes of the double product of the
 * BF16 operands (tests/test_vecdot.c checks that bound; the 2 covers a
 * pair summed before it is added, which the SDM leaves open).
 *
 * The bit contract (gemm_q.h). The hardware adds each C element's products
 * in its own fixed order over k, one step after the other, and an element
 * never depends on the other rows or columns of its tile (the SDM's
 * pseudocode; tests/test_vecdot.c checks it, tiles of 1 to 16 rows and
 * columns against decode's 16 × 1, memcmp): a tile of 16 × 16 and one of
 * 1 × 1 give an element the same bits. So a token's result does
 * not depend on the batch (or the tile shapes its tails get), decode is
 * this kernel with T = 1, and threads (which split rows) change nothing.
 *
 * Linux hands out tile state only after arch_prctl(ARCH_REQ_XCOMP_PERM),
 * which base/cpu.c asks for before it ever reports the amx set; each call
 * configures the tiles and releases them at the end.
 */
#include "tensor/gemm_amx.h"

#include <stddef.h>
#include <string.h>

#include "base/cpu.h"
#include "base/util.h"
#include "tensor/kernels_amx.h"

#if NM_X86

enum {
    STEP = 32, /* k per tile product */
    TW = 16,   /* rows or tokens per tile */
};

#define T_AMX __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

/* Loaded through asm that names the whole struct as its input: GCC's
 * _tile_loadconfig says it reads 8 bytes, so stores to the rest of a local
 * could be dropped (kernels_amx.c keeps a static one instead; ours is built
 * per block shape). */
static inline void load_config(const TileConfig *c) { __asm__ volatile("ldtilecfg %0" : : "m"(*c)); }

/* The configuration for ra0 + ra1 rows × w0 + w1 tokens (ra1, w1 may be 0). */
static void shape(TileConfig *c, int ra0, int ra1, int w0, int w1) {
    memset(c, 0, sizeof *c);
    c->palette = 1;
    int rows[8] = { ra0, ra0, ra1, ra1, ra0, ra1, TW, TW }, cols[8] = { w0, w1, w0, w1, STEP / 2, STEP / 2, w0, w1 };
    for (int t = 0; t < 8; t++)
        if (rows[t] && cols[t]) c->rows[t] = (uint8_t)rows[t], c->colsb[t] = (uint16_t)(4 * cols[t]);
}

/* ----------------------------------------------------------------------------
 * The batch into tiles' layout */

/* The 16 × 16 transpose of 32-bit values in r (row i of the result is
 * column i): pairs, then quadruples, then 128-bit lanes, twice. */
T_AMX static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
    }
}

/* gemm_amx.h. The tokens' pairs (uint32) of group g at base: pair p of token j at
 * base[p·w + j]; for odd n, the last values as halves after them. */
T_AMX void gemm_amx_pack(const float *x, int64_t n, int T, uint16_t *out) {
    enum { CH = 256 }; /* values of each token converted at a time: 16 tokens' worth is 8 KiB, in L1 */
    _Alignas(64) uint16_t tmp[TW][CH];
    for (int k0 = 0; k0 < T; k0 += TW) {
        int w = T - k0 < TW ? T - k0 : TW;
        uint16_t *g = out + (size_t)k0 * n;
        for (int64_t i0 = 0; i0 < n; i0 += CH) {
            int m = n - i0 < CH ? (int)(n - i0) : CH;
            /* Chunks of a multiple of 16 values: gemm_q_to_bf16 rounds the
             * same values by the same instruction as on the whole row. */
            for (int j = 0; j < w; j++) gemm_q_to_bf16(x + (size_t)(k0 + j) * n + i0, m, tmp[j]);
            /* Then pair row by pair row, the w tokens side by side: the
             * writes in order, the reads from L1. */
            uint16_t *d = g + (size_t)i0 * w;
            int q = 0;
            if (w == TW) /* 16 pairs of 16 tokens at a time: a transpose in registers */
                for (; q + 32 <= m; q += 32, d += 32 * TW) {
                    __m512i r[TW];
                    for (int j = 0; j < TW; j++) r[j] = _mm512_loadu_si512(&tmp[j][q]);
                    transpose16(r);
                    for (int p = 0; p < TW; p++) _mm512_storeu_si512(d + 2 * TW * p, r[p]);
                }
            for (; q + 1 < m; q += 2, d += 2 * w)
                for (int j = 0; j < w; j++) memcpy(d + 2 * j, &tmp[j][q], 4);
            if (m & 1) /* odd n: the last chunk's last values, after every pair */
                for (int j = 0; j < w; j++) g[(size_t)w * (n - 1) + j] = tmp[j][m - 1];
        }
    }
}

/* ----------------------------------------------------------------------------
 * The kernel */

/* One block: ra0 (+ ra1) rows from a (row_bytes apart) × w0 (+ w1) tokens
 * from groups b0, b1, `steps` whole steps of k in place, then the tail step
 * from the zero-padded copies at at (32 rows × 32 halves) and bt0, bt1 (16
 * pair rows × w tokens) when tail. C into c[4][16][16]. TWO_A, TWO_B:
 * whether the second row tile and token group exist (constants: each of
 * the four variants compiles to its own loop). */
T_AMX static inline __attribute__((always_inline)) void block(const char *a, size_t rb, int64_t steps, const char *b0,
                                                               const char *b1, int w0, int w1, int tail, const uint16_t *at,
                                                               const uint32_t *bt0, const uint32_t *bt1, float *c,
                                                               const int TWO_A, const int TWO_B) {
    const char *a1 = a + TW * rb;
    size_t s0 = (size_t)4 * w0, s1 = (size_t)4 * w1;
    _tile_zero(0);
    if (TWO_B) _tile_zero(1);
    if (TWO_A) _tile_zero(2);
    if (TWO_A && TWO_B) _tile_zero(3);
    for (int64_t s = 0; s < steps; s++) {
        _tile_loadd(4, a + s * 64, rb);
        if (TWO_A) _tile_loadd(5, a1 + s * 64, rb);
        _tile_loadd(6, b0 + s * TW * s0, s0);
        if (TWO_B) _tile_loadd(7, b1 + s * TW * s1, s1);
        _tile_dpbf16ps(0, 4, 6);
        if (TWO_B) _tile_dpbf16ps(1, 4, 7);
        if (TWO_A) _tile_dpbf16ps(2, 5, 6);
        if (TWO_A && TWO_B) _tile_dpbf16ps(3, 5, 7);
    }
    if (tail) {
        _tile_loadd(4, at, 64);
        if (TWO_A) _tile_loadd(5, at + TW * 32, 64);
        _tile_loadd(6, bt0, s0);
        if (TWO_B) _tile_loadd(7, bt1, s1);
        _tile_dpbf16ps(0, 4, 6);
        if (TWO_B) _tile_dpbf16ps(1, 4, 7);
        if (TWO_A) _tile_dpbf16ps(2, 5, 6);
        if (TWO_A && TWO_B) _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    if (TWO_B) _tile_stored(1, c + 256, 64);
    if (TWO_A) _tile_stored(2, c + 512, 64);
    if (TWO_A && TWO_B) _tile_stored(3, c + 768, 64);
}

/* The tail step's copy of a group's last pairs: pair rows from
 * `steps`·16 on, zeros past the last value. */
static void tail_b(const uint16_t *g, int64_t n, int64_t steps, int w, uint32_t *bt) {
    memset(bt, 0, (size_t)TW * w * 4);
    int64_t p0 = steps * TW, full = n / 2 - p0;
    memcpy(bt, g + (size_t)2 * p0 * w, (size_t)full * w * 4);
    if (n & 1)
        for (int j = 0; j < w; j++) bt[full * w + j] = g[(size_t)w * (n - 1) + j]; /* (x[n-1], 0) */
}

T_AMX void gemm_bf16_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                         float *out, int64_t ldo) {
    _Alignas(64) TileConfig cfg;
    _Alignas(64) float c[4 * TW * TW];
    _Alignas(64) uint16_t at[2 * TW * STEP];
    _Alignas(64) uint32_t bt[2][TW * TW];
    int64_t steps = n / STEP;
    int tail = n % STEP != 0, loaded = -1;
    (void)act_bytes; /* n halves per token: the groups' offsets follow from n */
    for (int64_t r0 = 0; r0 < nr; r0 += 2 * TW) {
        int ra0 = nr - r0 < TW ? (int)(nr - r0) : TW, ra1 = nr - r0 - TW;
        ra1 = ra1 < 0 ? 0 : ra1 > TW ? TW : ra1;
        const char *a = (const char *)w + (size_t)r0 * row_bytes;
        if (tail) { /* the rows' last values, zero-padded to a step */
            memset(at, 0, sizeof at);
            for (int r = 0; r < ra0 + ra1; r++)
                memcpy(at + r * STEP, a + r * row_bytes + steps * STEP * 2, (size_t)(n - steps * STEP) * 2);
        }
        for (int k0 = 0; k0 < T; k0 += 2 * TW) {
            int w0 = T - k0 < TW ? T - k0 : TW, w1 = T - k0 - TW;
            w1 = w1 < 0 ? 0 : w1 > TW ? TW : w1;
            int key = ((ra0 * 32 + ra1) * 32 + w0) * 32 + w1;
            if (key != loaded) {
                shape(&cfg, ra0, ra1, w0, w1);
                load_config(&cfg);
                loaded = key;
            }
            const uint16_t *g0 = (const uint16_t *)act + (size_t)k0 * n, *g1 = g0 + (size_t)TW * n;
            if (tail) {
                tail_b(g0, n, steps, w0, bt[0]);
                if (w1) tail_b(g1, n, steps, w1, bt[1]);
            }
            const char *b0 = (const char *)g0, *b1 = (const char *)g1;
            if (ra1 && w1) block(a, row_bytes, steps, b0, b1, w0, w1, tail, at, bt[0], bt[1], c, 1, 1);
            else if (ra1) block(a, row_bytes, steps, b0, b1, w0, w1, tail, at, bt[0], bt[1], c, 1, 0);
            else if (w1) block(a, row_bytes, steps, b0, b1, w0, w1, tail, at, bt[0], bt[1], c, 0, 1);
            else block(a, row_bytes, steps, b0, b1, w0, w1, tail, at, bt[0], bt[1], c, 0, 0);
            /* C tile (i, j): rows r0 + 16i, tokens k0 + 16j, 16 floats a
             * row; written a token at a time, its rows side by side in out
             * (one cache line, where rows first would touch a line, and for
             * the head a page, per value). */
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    int ra = i ? ra1 : ra0, wk = j ? w1 : w0;
                    const float *ct = c + (2 * i + j) * TW * TW;
                    for (int k = 0; k < wk; k++) {
                        float *o = out + (size_t)(k0 + TW * j + k) * ldo + r0 + TW * i;
                        for (int r = 0; r < ra; r++) o[r] = ct[r * TW + k];
                    }
                }
        }
    }
    _tile_release();
}

/* ----------------------------------------------------------------------------
 * Q8_0 rows on AMX-INT8 (TDPBSSD)
 *
 * TDPBSSD: C (int32, 16 rows × w tokens) += A (16 rows × K bytes, signed) ·
 * B (K/4 "quad rows": for each of w columns the 4 bytes k = 4q .. 4q + 3,
 * signed). The sums are integers: exact, whatever the hardware's order. A
 * Q8_0 block is 32 signed weights and one F16 scale, and each block has a
 * scale of its own, so one product per block (K = 32: A 16 rows × 32
 * bytes read in place from the GGUF blocks, rows row_bytes apart; B 8 quad
 * rows of the w tokens' activation block), then in float, element by
 * element and block after block,
 *   acc = acc + (d_w·d_a)·(float)Σ,
 * each operation rounded on its own (no FMA: the build's -std=c11 keeps the
 * compiler from fusing them): the portable C kernel's steps (vecdot.c,
 * dot_q8_0_c), so the amx set gives the generic set's bits for Q8_0, for
 * any batch, tile shape or thread (tests/test_vecdot.c). The other x86
 * sets sum each block in eight int32 lanes and carry two chains of lanes
 * (gemm_q.c): other float steps, other bits.
 *
 * Blocking: 16 rows × one group of ≤ 16 tokens, the group's accumulators in
 * registers (a row's tokens in a vector), blocks four at a time through
 * tiles 0–3 (C), 4–5 (A) and 6–7 (B) so that the tile unit overlaps them,
 * each C stored to the stack and folded into the accumulators in block
 * order. One token (decode, or a batch's last group of one) keeps the 16
 * rows in one vector instead. The rows' scales come with their blocks, one
 * gather per block (the first group keeps them in a [block][row] table for
 * the others), and the call's next 16 rows are prefetched as one stream
 * while these compute. Both matter because the rows are read a block
 * across 16 rows: a first pass that read the scales row by row waited on
 * memory for a third of a prompt's time and 60% of decode's, and the
 * hardware's prefetchers alone follow 16 rows slowly.
 *
 * Measured (Granite Rapids Xeon, 2 vCPUs; Llama-3.2-1B-shaped Q8_0, bench/
 * forward.sh, llama.cpp's llama-bench with its own AMX kernels beside it):
 * prompt 87.6 → 169–193 tokens/s (0.46× → 0.82–0.95× llama.cpp), decode
 * 13.8 → 15.3–15.5 (0.69× → 0.76×; llama.cpp repacks the weights at load
 * into a layout of its own, ours are read where the file is mapped; the
 * mapping in 2 MiB pages instead measured +5%, not kept).
 *
 * Q4_0 the same way, each row block's nibbles unpacked first to signed
 * bytes q − 8 (Σ (q − 8)·a is the C kernel's s − 8·Σa); its decode on
 * vectors with the same steps (gemv_q.c, gemv_q4_0_vnni_c). Q4_0 from the
 * BF16 file by llama-quantize: prompt 56 → 172–183 tokens/s (llama.cpp
 * 158), decode 18.4–19.2 → 19.6–19.7 (llama.cpp 26.3).
 *
 * The batch (gemm_amx_pack_int8): tokens in groups of 16 (the last w = T mod
 * 16 wide), group g at 16·g·act_bytes: first block after block its B tile
 * (8 quad rows of 4w bytes: token j's bytes 4q .. 4q + 3 at 4j), 32w bytes
 * a block, then the scales, w floats a block; the activation values and
 * scales are vecdot_quantize's, byte for byte. A batch of one is
 * vecdot_quantize's plain form: its 32 bytes are the B tile of one token. */

#define T_AMXI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,amx-tile,amx-int8")))

enum { QB = 32, QB_IN = 4, QKK = 256 }; /* values per Q8_0 block; blocks per round of tiles; values per K-quant block */

/* The integer kernels' tiles: 0–3 C (ra rows × w tokens, int32), 4–5 A
 * (ra rows × kb bytes), 6–7 B (kb/4 quad rows × w tokens); kb = 32 for a
 * Q8_0 block, 64 for a K-quant step. A kernel leaves unused what it does
 * not need. */
static void shape_i8(TileConfig *c, int ra, int w, int kb) {
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int t = 0; t < 8; t++) {
        c->rows[t] = (uint8_t)(t < 6 ? ra : kb / 4);
        c->colsb[t] = (uint16_t)(t >= 4 && t < 6 ? kb : 4 * w);
    }
}

/* T activations in vecdot_quantize's form (blocks of blk values, bb bytes
 * each, their int8 values qo bytes in and the float scale first) into the
 * tiles' layout (above; quad row r of a block: token j's bytes 4r .. 4r + 3
 * at 4(r·w + j)). */
static void pack_q(const void *q, int64_t n, int T, char *out, size_t act_bytes, int blk, size_t bb, size_t qo) {
    int64_t nb = n / blk;
    for (int k0 = 0; k0 < T; k0 += TW) {
        int w = T - k0 < TW ? T - k0 : TW;
        char *g = out + (size_t)k0 * act_bytes;
        float *d = (float *)(g + (size_t)nb * blk * w);
        for (int j = 0; j < w; j++) {
            const char *a = (const char *)q + (size_t)(k0 + j) * act_bytes;
            for (int64_t b = 0; b < nb; b++) {
                const char *blk_b = a + (size_t)b * bb;
                for (int r = 0; r < blk / 4; r++) memcpy(g + (size_t)b * blk * w + (size_t)(r * w + j) * 4, blk_b + qo + 4 * r, 4);
                memcpy(&d[b * w + j], blk_b, sizeof(float));
            }
        }
    }
}

void gemm_amx_pack_int8(DType t, const void *q, int64_t n, int T, char *out, size_t act_bytes) {
    if (t == DT_Q8_0 || t == DT_Q4_0) pack_q(q, n, T, out, act_bytes, QB, sizeof(VecQ8A), offsetof(VecQ8A, qs));
    else pack_q(q, n, T, out, act_bytes, QKK, sizeof(VecQ8KA), offsetof(VecQ8KA, qs));
}

/* Token group k0 (w wide) of a batch for the kernels below: block b's B
 * tiles at bq + b·bs, its scales d(b). The batch is packed (pack_q), or
 * for T = 1 the plain activation, blocks of bb bytes, values qo in. */
typedef struct {
    const char *bq, *plain;
    size_t bs, bb;
    const float *da;
} QGroup;
static QGroup q_group(const char *act, size_t act_bytes, int T, int k0, int w, int64_t nb, int blk, size_t bb, size_t qo) {
    const char *g = act + (size_t)k0 * act_bytes;
    if (T == 1) return (QGroup){ act + qo, act, bb, bb, NULL };
    return (QGroup){ g, NULL, (size_t)blk * w, 0, (const float *)(g + (size_t)nb * blk * w) };
}
static inline float q_group_d(const QGroup *g, int64_t b) {
    float d;
    if (!g->plain) return g->da[b];
    memcpy(&d, g->plain + (size_t)b * g->bb, sizeof d); /* the block's scale comes first */
    return d;
}

/* Blocks b .. b + m (m ≤ QB_IN) of the rows at a (block b's 32 bytes at
 * a + b·ab, rows rb apart) × the group's B tiles (block b's at bq + b·bs, quad rows 4w bytes apart) into
 * cb[j] (C's rows cs bytes apart), tile j for block b + j: four products in
 * flight, then their stores. */
T_AMXI static inline void q8_round(const char *a, size_t ab, size_t rb, const char *bq, size_t bs, int w, int64_t b, int m,
                                   int32_t (*cb)[TW * TW], size_t cs) {
#define Q8_STEP(J, TA, TB)                                                                          \
    if ((J) < m) {                                                                                  \
        _tile_zero(J);                                                                              \
        _tile_loadd(TA, a + (size_t)(b + (J)) * ab, rb);                                            \
        _tile_loadd(TB, bq + (size_t)(b + (J)) * bs, 4 * w);                                        \
        _tile_dpbssd(J, TA, TB);                                                                    \
    }
    Q8_STEP(0, 4, 6) Q8_STEP(1, 5, 7) Q8_STEP(2, 4, 6) Q8_STEP(3, 5, 7)
#undef Q8_STEP
    if (m > 0) _tile_stored(0, cb[0], cs);
    if (m > 1) _tile_stored(1, cb[1], cs);
    if (m > 2) _tile_stored(2, cb[2], cs);
    if (m > 3) _tile_stored(3, cb[3], cs);
}

/* Block b's scales of the rows at a (blocks of bb bytes, the F16 scale
 * first; roff: the rows' offsets; rm: the rows that exist), widened: one
 * gather. */
T_AMXI static inline __m512 q8_scales(const char *a, size_t bb, __m512i roff, __mmask16 rm, int64_t b) {
    __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rm, roff, a + (size_t)b * bb, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

/* The next 16 rows of the call (nx of them, at a), fetched as one stream
 * while these compute, the share of round `round` of `rounds`: the tiles
 * read a block across 16 rows, which the hardware alone follows slowly. */
T_AMXI static inline void q8_fetch_next(const char *a, int64_t nx, size_t rb, int64_t round, int64_t rounds) {
    int64_t lines = nx * (int64_t)rb / 64, per = (lines + rounds - 1) / rounds;
    for (int64_t l = round * per; l < (round + 1) * per && l < lines; l++) _mm_prefetch(a + l * 64, _MM_HINT_T0);
}

/* Q4_0 rows (16 rows at a, row_bytes apart) as signed bytes, q − 8, into u
 * (row r's n values at r·n): Σ (q − 8)·a is the C kernel's s − 8·Σa. */
T_AMXI static void q4_0_unpack(const char *a, size_t row_bytes, int ra, int64_t nb, int8_t *u) {
    const __m128i lo4 = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
    for (int r = 0; r < ra; r++)
        for (int64_t b = 0; b < nb; b++) {
            const BQ4_0 *bl = (const BQ4_0 *)(a + (size_t)r * row_bytes) + b;
            __m128i q = _mm_loadu_si128((const __m128i *)bl->qs);
            int8_t *d = u + (size_t)r * nb * QB + (size_t)b * QB;
            _mm_storeu_si128((__m128i *)d, _mm_sub_epi8(_mm_and_si128(q, lo4), eight));
            _mm_storeu_si128((__m128i *)(d + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), lo4), eight));
        }
}

/* Q8_0 (q4 = 0: the blocks' bytes read in place) or Q4_0 (q4 = 1: each row
 * block unpacked first) rows × a batch. */
T_AMXI static inline __attribute__((always_inline)) void gemm_b32_amx(const int q4, const void *w, size_t row_bytes, int64_t nr,
                                                                       int64_t n, const char *act, size_t act_bytes, int T,
                                                                       float *out, int64_t ldo) {
    _Alignas(64) TileConfig cfg;
    _Alignas(64) int32_t cb[QB_IN][TW * TW];
    _Alignas(64) float res[TW][TW];
    int64_t nb = n / QB, rounds = (nb + QB_IN - 1) / QB_IN;
    float *dw = T > 1 ? xmalloc64((size_t)nb * TW * sizeof *dw) : NULL; /* [block][row] */
    const size_t bb = q4 ? sizeof(BQ4_0) : sizeof(BQ8_0);                /* bytes of a stored block */
    int8_t *u = q4 ? xmalloc64((size_t)TW * n) : NULL;                     /* Q4_0: a row block's bytes */
    const size_t ab = q4 ? QB : bb, arb = q4 ? (size_t)n : row_bytes;    /* the A tiles': block stride, row stride */
    const __m512i roff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)row_bytes));
    int loaded = -1;
    for (int64_t r0 = 0; r0 < nr; r0 += TW) {
        int ra = nr - r0 < TW ? (int)(nr - r0) : TW;
        int64_t nx = nr - r0 - TW < 0 ? 0 : nr - r0 - TW > TW ? TW : nr - r0 - TW;
        const char *a = (const char *)w + (size_t)r0 * row_bytes;
        const __mmask16 rm = (__mmask16)((1u << ra) - 1);
        const char *at = q4 ? (const char *)u : a + 2; /* the A tiles' bytes */
        if (q4) q4_0_unpack(a, row_bytes, ra, nb, u);
        for (int k0 = 0; k0 < T; k0 += TW) {
            int wk = T - k0 < TW ? T - k0 : TW;
            QGroup g = q_group(act, act_bytes, T, k0, wk, nb, QB, sizeof(VecQ8A), offsetof(VecQ8A, qs));
            int key = ra * 32 + wk;
            if (key != loaded) shape_i8(&cfg, ra, wk, QB), load_config(&cfg), loaded = key;
            if (wk == 1) { /* one token: the rows in one vector */
                __m512 acc = _mm512_setzero_ps();
                for (int64_t b0 = 0; b0 < nb; b0 += QB_IN) {
                    int m = nb - b0 < QB_IN ? (int)(nb - b0) : QB_IN;
                    if (k0 == 0) q8_fetch_next(a + TW * row_bytes, nx, row_bytes, b0 / QB_IN, rounds);
                    q8_round(at, ab, arb, g.bq, g.bs, 1, b0, m, cb, 4); /* C's 16 rows × 1: one vector */
                    for (int j = 0; j < m; j++) {
                        int64_t b = b0 + j;
                        __m512 s = _mm512_mul_ps(q8_scales(a, bb, roff, rm, b), _mm512_set1_ps(q_group_d(&g, b)));
                        acc = _mm512_add_ps(acc, _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(cb[j]))));
                    }
                }
                _mm512_store_ps(res[0], acc);
                for (int r = 0; r < ra; r++) out[(size_t)k0 * ldo + r0 + r] = res[0][r];
                continue;
            }
            __m512 acc[TW]; /* row r's tokens */
            _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) acc[r] = _mm512_setzero_ps();
            for (int64_t b0 = 0; b0 < nb; b0 += QB_IN) {
                int m = nb - b0 < QB_IN ? (int)(nb - b0) : QB_IN;
                if (k0 == 0) q8_fetch_next(a + TW * row_bytes, nx, row_bytes, b0 / QB_IN, rounds);
                q8_round(at, ab, arb, g.bq, g.bs, wk, b0, m, cb, 64);
                /* the rows' scales: gathered with their blocks by the first
                 * group, into a table the others read */
                for (int j = 0; k0 == 0 && j < m; j++)
                    _mm512_store_ps(dw + (b0 + j) * TW, q8_scales(a, bb, roff, rm, b0 + j));
                for (int j = 0; j < m; j++) {
                    int64_t b = b0 + j;
                    __m512 dv = _mm512_maskz_loadu_ps((__mmask16)((1u << wk) - 1), g.da + b * wk);
                    _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) {
                        __m512 s = _mm512_mul_ps(_mm512_set1_ps(dw[b * TW + r]), dv);
                        acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(cb[j] + r * TW))));
                    }
                }
            }
            _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) _mm512_store_ps(res[r], acc[r]);
            for (int k = 0; k < wk; k++)
                for (int r = 0; r < ra; r++) out[(size_t)(k0 + k) * ldo + r0 + r] = res[r][k];
        }
    }
    _tile_release();
    free(dw), free(u);
}

T_AMXI static void gemm_q8_0_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                          float *out, int64_t ldo) {
    gemm_b32_amx(0, w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
}

/* Q4_0's decode on vectors with the same steps (gemv_q.c): unpacking each
 * row for one token costs more than the tiles save. */
T_AMXI static void gemm_q4_0_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                          float *out, int64_t ldo) {
    if (T == 1) gemv_q4_0_vnni_c(w, row_bytes, nr, n / QB, (const VecQ8A *)act, out);
    else gemm_b32_amx(1, w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
}
/* ----------------------------------------------------------------------------
 * Q4_K, Q5_K and Q6_K rows on AMX-INT8
 *
 * The portable C kernel (vecdot.c, dot_q4_k_c) sums a super-block of 256 as
 * integers, s = Σ_j sc_j·Σ q·a over its 8 groups of 32 (q 4-bit, sc_j
 * 6-bit) and mins = Σ_j m_j·Σ a, then steps in float:
 *   acc = acc + d_a·(d·(float)s − dmin·(float)mins).
 * A tile product sums over all its k with no per-group factor, and q·sc
 * (up to 945) is not a byte; but with sc = 8·sh + sl (sh, sl 3-bit),
 *   s = 8·Σ_k (q·sh)·a + Σ_k (q·sl)·a,
 * both products bytes (≤ 105), and mins = Σ_k m·a with m (≤ 63) repeated
 * over its group: three operands per row, each a plain dot product with
 * the activation over the 256 values, four full TDPBSSD steps of 64 each.
 * Integers all the way, so s and mins are the C kernel's, and the float
 * steps are its own: the generic set's bits, batch or decode alike.
 *
 * The three operands of 16 rows are built once per call's row block, row
 * after row (one stream through memory; q·sh and q·sl by vpshufb from a
 * table of multiples, the nibbles as indices), the rows' d and dmin into
 * tables; then per group of tokens and super-block: 12 products into three
 * C tiles, stored, and the float steps. A single token does not repay
 * building the operands (decode ran at 0.43× the vector kernel): decode
 * runs gemv_q.c's gemv_q4_k_vnni_c, the same integers and float steps.
 *
 * Q5_K: q = 16·h + nibble, so a fourth operand, sc where h is set, adds
 * 16·Σ (h·sc)·a. Q6_K the same way with four operands (below, tab6).
 * Their decodes: gemv_q.c's gemv_q5_k_vnni_c and gemv_q6_k_vnni_c.
 *
 * Measured as above, Q4_K_M: prompt 84.4 → 131.3 tokens/s with Q4_K here
 * (0.54× → 0.82× llama.cpp; 922 tokens: 79 → 134), 144.2 with Q6_K too
 * (0.99×; 922 tokens: 137); decode unchanged (21.2–21.9 against 21.2–21.9).
 * Q5_K_M (made by llama-quantize from the BF16 file): prompt 72–84 → 127–133
 * (llama.cpp 130), decode 16.3–17.8 against 17.3–17.5 (llama.cpp 14.2). */

/* mul[s][i] = s·i: q·sh and q·sl by a vpshufb, q the index */
static const _Alignas(16) uint8_t mul_tab[8][16] = {
#define MT(s) { 0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s, 8 * s, 9 * s, 10 * s, 11 * s, 12 * s, 13 * s, 14 * s, 15 * s }
    MT(0), MT(1), MT(2), MT(3), MT(4), MT(5), MT(6), MT(7),
#undef MT
};

/* Q6_K: s = Σ_k sc·(q − 32)·a over 16 groups of 16 (sc signed 8-bit, q
 * 6-bit). With v = q − 32 = 8·vh + vl (vh −4..3, vl 0..7) and sc = 16·sh +
 * sl (sh −8..7, sl 0..15),
 *   sc·v = 128·sh·vh + 16·sh·vl + 8·sl·vh + sl·vl,
 * four byte operands (|·| ≤ 105) by vpshufb, one table per 128-bit lane:
 * a lane holds 16 values, one group. tab6[t][x][i]: t = sh·vh, sh·vl, sl·vh,
 * sl·vl; x = sh + 8 or sl; i = vh + 4 or vl. */
static const _Alignas(16) int8_t tab6[4][16][16] = {
#define R6(s, off) { (s) * (0 - (off)), (s) * (1 - (off)), (s) * (2 - (off)), (s) * (3 - (off)), (s) * (4 - (off)), (s) * (5 - (off)), (s) * (6 - (off)), (s) * (7 - (off)) }
#define H6(off) { R6(-8, off), R6(-7, off), R6(-6, off), R6(-5, off), R6(-4, off), R6(-3, off), R6(-2, off), R6(-1, off), \
                  R6(0, off), R6(1, off), R6(2, off), R6(3, off), R6(4, off), R6(5, off), R6(6, off), R6(7, off) }
#define L6(off) { R6(0, off), R6(1, off), R6(2, off), R6(3, off), R6(4, off), R6(5, off), R6(6, off), R6(7, off), \
                  R6(8, off), R6(9, off), R6(10, off), R6(11, off), R6(12, off), R6(13, off), R6(14, off), R6(15, off) }
    H6(4), H6(0), L6(4), L6(0),
#undef L6
#undef H6
#undef R6
};

enum { KQ_MAX_OPS = 4 }; /* operands per row: Q4_K 3, Q6_K 4 */

/* Operand p of row r at o + (p·16 + r)·256 (the row block's super-block). */
static inline uint8_t *kq_op(uint8_t *o, int p, int r) { return o + (size_t)(p * TW + r) * QKK; }

/* Row r's Q4_K super-block b into its three operands at o, d and dmin into
 * *dw, *dm. */
T_AMXI static void q4k_prep(const void *blk, int r, uint8_t *o, float *dw, float *dm) {
    const BQ4_K *b = blk;
    uint8_t sc[8], m[8];
    k_scales(b->sc, sc, m);
    const __m256i lo4 = _mm256_set1_epi8(0xF);
    for (int j = 0; j < 4; j++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
        __m256i u[2] = { _mm256_and_si256(q, lo4), _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4) };
        for (int h = 0; h < 2; h++) {
            int g = 2 * j + h;
            __m256i th = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)mul_tab[sc[g] >> 3]));
            __m256i tl = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)mul_tab[sc[g] & 7]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 0, r) + 32 * g), _mm256_shuffle_epi8(th, u[h]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 1, r) + 32 * g), _mm256_shuffle_epi8(tl, u[h]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 2, r) + 32 * g), _mm256_set1_epi8((char)m[g]));
        }
    }
    *dw = _cvtsh_ss(b->d), *dm = _cvtsh_ss(b->dmin);
}

/* Row r's Q5_K super-block: Q4_K's three operands on the low nibbles, and
 * a fourth, sc where the fifth bit is set (q = 16·h + nibble: Σ q·sc·a =
 * 16·Σ (h·sc)·a + Σ (nibble·sc)·a). */
T_AMXI static void q5k_prep(const void *blk, int r, uint8_t *o, float *dw, float *dm) {
    const BQ5_K *b = blk;
    uint8_t sc[8], m[8];
    k_scales(b->sc, sc, m);
    const __m256i lo4 = _mm256_set1_epi8(0xF), qh = _mm256_loadu_si256((const __m256i *)b->qh);
    for (int j = 0; j < 4; j++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
        __m256i u[2] = { _mm256_and_si256(q, lo4), _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4) };
        for (int h = 0; h < 2; h++) {
            int g = 2 * j + h;
            __m256i bit = _mm256_set1_epi8((char)(1 << g)), set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
            __m256i th = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)mul_tab[sc[g] >> 3]));
            __m256i tl = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)mul_tab[sc[g] & 7]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 0, r) + 32 * g), _mm256_shuffle_epi8(th, u[h]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 1, r) + 32 * g), _mm256_shuffle_epi8(tl, u[h]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 2, r) + 32 * g), _mm256_set1_epi8((char)m[g]));
            _mm256_storeu_si256((__m256i *)(kq_op(o, 3, r) + 32 * g), _mm256_and_si256(set, _mm256_set1_epi8((char)sc[g])));
        }
    }
    *dw = _cvtsh_ss(b->d), *dm = _cvtsh_ss(b->dmin);
}

/* Row r's Q6_K super-block into its four operands (q6_k_half_avx2's runs:
 * run j of half h is values 128h + 32j .., groups 8h + 2j and + 1). */
T_AMXI static void q6k_prep(const void *blk, int r, uint8_t *o, float *dw, float *dm) {
    const BQ6_K *b = blk;
    const __m256i m7 = _mm256_set1_epi8(7);
    for (int h = 0; h < 2; h++) {
        __m256i u[4];
        q6_k_half_avx2(b, h, u);
        for (int j = 0; j < 4; j++) {
            int g = 8 * h + 2 * j, s0 = b->sc[g], s1 = b->sc[g + 1];
            __m256i vh = _mm256_and_si256(_mm256_srli_epi16(u[j], 3), m7), vl = _mm256_and_si256(u[j], m7);
            int x[4] = { (s0 >> 4) + 8, (s0 >> 4) + 8, s0 & 15, s0 & 15 }, y[4] = { (s1 >> 4) + 8, (s1 >> 4) + 8, s1 & 15, s1 & 15 };
            for (int p = 0; p < 4; p++) {
                __m256i t = _mm256_setr_m128i(_mm_load_si128((const __m128i *)tab6[p][x[p]]), _mm_load_si128((const __m128i *)tab6[p][y[p]]));
                _mm256_storeu_si256((__m256i *)(kq_op(o, p, r) + 128 * h + 32 * j), _mm256_shuffle_epi8(t, p % 2 ? vl : vh));
            }
        }
    }
    *dw = _cvtsh_ss(b->d), *dm = 0.0f;
}

/* A super-block's products: cb[p] = Σ_k operand p·a (C rows cs bytes
 * apart), p < ops; the operands at o, the B tiles at bq (64w bytes a step,
 * quad rows 4w apart). */
T_AMXI static inline void kq_products(const uint8_t *o, int ops, const char *bq, int w, int32_t (*cb)[TW * TW], size_t cs) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    if (ops > 3) _tile_zero(3);
    for (int t = 0; t < 4; t++) {
        _tile_loadd(6, bq + (size_t)t * 64 * w, 4 * w);
        _tile_loadd(4, o + 64 * t, QKK);
        _tile_dpbssd(0, 4, 6);
        _tile_loadd(5, o + TW * QKK + 64 * t, QKK);
        _tile_dpbssd(1, 5, 6);
        _tile_loadd(4, o + 2 * TW * QKK + 64 * t, QKK);
        _tile_dpbssd(2, 4, 6);
        if (ops > 3) {
            _tile_loadd(5, o + 3 * TW * QKK + 64 * t, QKK);
            _tile_dpbssd(3, 5, 6);
        }
    }
    _tile_stored(0, cb[0], cs);
    _tile_stored(1, cb[1], cs);
    _tile_stored(2, cb[2], cs);
    if (ops > 3) _tile_stored(3, cb[3], cs);
}

enum { KQ_Q4_K, KQ_Q6_K, KQ_Q5_K };

/* The float steps of dot_q4_k_c, dot_q5_k_c / dot_q6_k_c on the integers
 * in c[p] (vectors of the same lanes: rows or tokens), scales d, dmin and
 * d_a as vectors: acc + d_a·(d·s − dmin·mins) or acc + (d·d_a)·s. */
T_AMXI static inline __m512 kq_step(int kind, const __m512i c[KQ_MAX_OPS], __m512 d, __m512 dmin, __m512 da, __m512 acc) {
    if (kind == KQ_Q6_K) {
        __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(c[0], 7), _mm512_slli_epi32(c[1], 4)),
                                     _mm512_add_epi32(_mm512_slli_epi32(c[2], 3), c[3]));
        return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(d, da), _mm512_cvtepi32_ps(s)));
    }
    __m512i s = _mm512_add_epi32(_mm512_slli_epi32(c[0], 3), c[1]);
    if (kind == KQ_Q5_K) s = _mm512_add_epi32(s, _mm512_slli_epi32(c[3], 4));
    __m512 t = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(s)), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(c[2])));
    return _mm512_add_ps(acc, _mm512_mul_ps(da, t));
}

/* Q4_K, Q5_K or Q6_K rows (kind) × a batch of two or more tokens. */
T_AMXI static inline __attribute__((always_inline)) void gemm_kq_amx(const int kind, const void *w, size_t row_bytes, int64_t nr,
                                                                      int64_t n, const char *act, size_t act_bytes, int T,
                                                                      float *out, int64_t ldo) {
    _Alignas(64) TileConfig cfg;
    _Alignas(64) int32_t cb[KQ_MAX_OPS][TW * TW];
    _Alignas(64) float res[TW][TW];
    const int ops = kind == KQ_Q4_K ? 3 : 4;
    const size_t bb = kind == KQ_Q6_K ? sizeof(BQ6_K) : kind == KQ_Q5_K ? sizeof(BQ5_K) : sizeof(BQ4_K);
    const size_t ob = (size_t)ops * TW * QKK; /* bytes of a super-block's operands for 16 rows */
    void (*prep)(const void *, int, uint8_t *, float *, float *) = kind == KQ_Q6_K ? q6k_prep : kind == KQ_Q5_K ? q5k_prep : q4k_prep;
    int64_t nb = n / QKK;
    uint8_t *opnd = xmalloc64((size_t)nb * ob);
    float *dw = xmalloc64((size_t)nb * TW * sizeof *dw), *dm = xmalloc64((size_t)nb * TW * sizeof *dm); /* [block][row] */
    int loaded = -1;
    for (int64_t r0 = 0; r0 < nr; r0 += TW) {
        int ra = nr - r0 < TW ? (int)(nr - r0) : TW;
        /* row after row: the 16 rows are one stream through memory, asked
         * for 4 KiB ahead */
        for (int r = 0; r < TW; r++)
            for (int64_t b = 0; b < nb; b++) {
                const char *bl = (const char *)w + (size_t)(r0 + r) * row_bytes + (size_t)b * bb;
                if (r >= ra) {
                    dw[b * TW + r] = dm[b * TW + r] = 0.0f;
                    continue;
                }
                for (size_t o = 0; o < bb; o += 64) _mm_prefetch(bl + 4096 + o, _MM_HINT_T0);
                prep(bl, r, opnd + (size_t)b * ob, &dw[b * TW + r], &dm[b * TW + r]);
            }
        for (int k0 = 0; k0 < T; k0 += TW) {
            int wk = T - k0 < TW ? T - k0 : TW;
            QGroup g = q_group(act, act_bytes, T, k0, wk, nb, QKK, sizeof(VecQ8KA), offsetof(VecQ8KA, qs));
            int key = ra * 32 + wk;
            if (key != loaded) shape_i8(&cfg, ra, wk, 64), load_config(&cfg), loaded = key;
            if (wk == 1) { /* a batch's last token alone: the rows in one vector */
                __m512 acc = _mm512_setzero_ps();
                for (int64_t b = 0; b < nb; b++) {
                    kq_products(opnd + (size_t)b * ob, ops, g.bq + (size_t)b * g.bs, 1, cb, 4);
                    __m512i c[KQ_MAX_OPS];
                    for (int p = 0; p < KQ_MAX_OPS; p++) c[p] = p < ops ? _mm512_load_si512(cb[p]) : _mm512_setzero_si512();
                    acc = kq_step(kind, c, _mm512_load_ps(dw + b * TW), _mm512_load_ps(dm + b * TW), _mm512_set1_ps(q_group_d(&g, b)), acc);
                }
                _mm512_store_ps(res[0], acc);
                for (int r = 0; r < ra; r++) out[(size_t)k0 * ldo + r0 + r] = res[0][r];
                continue;
            }
            __m512 acc[TW]; /* row r's tokens */
            _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) acc[r] = _mm512_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                kq_products(opnd + (size_t)b * ob, ops, g.bq + (size_t)b * g.bs, wk, cb, 64);
                __m512 dv = _mm512_maskz_loadu_ps((__mmask16)((1u << wk) - 1), g.da + b * wk);
                _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) {
                    __m512i c[KQ_MAX_OPS];
                    for (int p = 0; p < KQ_MAX_OPS; p++) c[p] = p < ops ? _mm512_load_si512(cb[p] + r * TW) : _mm512_setzero_si512();
                    acc[r] = kq_step(kind, c, _mm512_set1_ps(dw[b * TW + r]), _mm512_set1_ps(dm[b * TW + r]), dv, acc[r]);
                }
            }
            _Pragma("GCC unroll 16") for (int r = 0; r < TW; r++) _mm512_store_ps(res[r], acc[r]);
            for (int k = 0; k < wk; k++)
                for (int r = 0; r < ra; r++) out[(size_t)(k0 + k) * ldo + r0 + r] = res[r][k];
        }
    }
    _tile_release();
    free(opnd), free(dw), free(dm);
}

/* Decode runs on vectors with the same integers and float steps (gemv_q.c):
 * a single token does not repay building the operands. */
T_AMXI static void gemm_q4_k_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                          float *out, int64_t ldo) {
    if (T == 1) gemv_q4_k_vnni_c(w, row_bytes, nr, n / QKK, (const VecQ8KA *)act, out);
    else gemm_kq_amx(KQ_Q4_K, w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
}

T_AMXI static void gemm_q5_k_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                          float *out, int64_t ldo) {
    if (T == 1) gemv_q5_k_vnni_c(w, row_bytes, nr, n / QKK, (const VecQ8KA *)act, out);
    else gemm_kq_amx(KQ_Q5_K, w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
}

T_AMXI static void gemm_q6_k_amx(const void *w, size_t row_bytes, int64_t nr, int64_t n, const char *act, size_t act_bytes, int T,
                          float *out, int64_t ldo) {
    if (T == 1) gemv_q6_k_vnni_c(w, row_bytes, nr, n / QKK, (const VecQ8KA *)act, out);
    else gemm_kq_amx(KQ_Q6_K, w, row_bytes, nr, n, act, act_bytes, T, out, ldo);
}
GemmFn *gemm_amx_int8_kernel(DType t) {
    switch (t) {
    case DT_Q8_0: return gemm_q8_0_amx;
    case DT_Q4_0: return gemm_q4_0_amx;
    case DT_Q4_K: return gemm_q4_k_amx;
    case DT_Q5_K: return gemm_q5_k_amx;
    case DT_Q6_K: return gemm_q6_k_amx;
    default: return NULL;
    }
}
#endif
