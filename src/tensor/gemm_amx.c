/* gemm_amx.c — BF16 rows × a batch of tokens on AMX tiles: the amx set's
 * BF16 kernel (gemm_amx.h), prompts and decode alike.
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

#include <string.h>

#include "base/cpu.h"
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

#endif
