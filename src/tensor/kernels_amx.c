/* kernels_amx.c — the BF16 tile product on AMX (kern_gemm_bf16 of kernels.h).
 *
 * AMX gives each core eight tile registers of up to 16 rows × 64 bytes and
 * one instruction that matters here, TDPBF16PS: C (16 × 16 floats) += A
 * (16 rows × 32 BF16 along k) · B (16 rows of 16 BF16 pairs), 8,192
 * multiply-adds at once, 16 times the FMAs of an AVX-512 instruction.
 *
 * Operands. A is 16 head rows, 32 values of k each: the rows' K block is
 * copied into a buffer in tile order (per 32 rows and step of k, two tiles
 * of 1 KiB, each contiguous; the copy also zero-pads short blocks and
 * rows). B must be in "VNNI" layout: row r holds, for each of 16 columns,
 * the pair (k = 2r, 2r + 1). That is exactly kern_pack_bf16's panel: at
 * each pair step the 32 neurons' pairs side by side, 128 bytes. So the
 * first 16 neurons of a panel are a B tile read at a stride of 128 bytes,
 * and the next 16 the same 64 bytes on: the packed neurons are used in
 * place.
 *
 * Where the operands come from decides the speed. Tiles 0–3 hold a 32 × 32
 * block of C (two head-row tiles by two neuron tiles), 4–5 the head rows,
 * 6–7 the neurons: per step of 32 k four loads of 1 KiB and four products
 * of 16 cycles, 64 bytes a cycle. Measured on the Xeon below, a bare loop
 * of that pattern on random operands runs 2,260–2,320 GFLOP/s when both
 * operands fit L1 (32 KiB), 1,650–1,750 from L2 (64–512 KiB), 700–750 at 2
 * MiB and 370–400 at 8 MiB (L3; bench/amx_tile.c): so each operand must be
 * in L2 at least, and one in L1 helps.
 * Hence the loops, per slab of NR = 256 head rows and K block of KC = 512:
 * the slab's rows copied (256 KiB, in L2); then panel by panel, the
 * panel's block (32 neurons × 512, 32 KiB) read by the slab's eight blocks
 * of C in turn, so it stays in L1, while the head rows and the sums, read
 * once per block, are loaded with the no-retain hint (TILELOADDT1) so that
 * they do not evict it; C goes back to memory between K blocks (as floats:
 * nothing is lost) and stays in L2 (256 × 1024 floats, lens/decode.c's
 * tile). And nothing waits on memory: while a block computes, a few lines
 * per step of what comes next are prefetched, the next panel's K block and
 * the head rows' next K block into L2 (the packed neurons are 8 MiB for
 * 1024, the head 1 GiB; rows 8 KiB apart defeat the hardware prefetcher),
 * the next block of sums into L1. Operands must start on cache lines
 * (lens/decode.c allocates them so): rows across two lines cost a fifth.
 *
 * Speed, on the 2-vCPU Xeon (Emerald Rapids) VM, 1024 neurons × 256 rows ×
 * 4096, one thread, medians of 40 calls timed in alternation with a copy of
 * the previous kernel (the 32 rows' block meant to stay in L1 while all the
 * panels streamed past it, so it did not): the previous kernel 800–860
 * GFLOP/s with operands at cache lines, 700–710 16 bytes off (as the map
 * ran it); the panel kept in L1 with the no-retain hint 1,010–1,040; with
 * the prefetches 1,060–1,160, 0.6 of the bare loop from L2 (1,650–1,870);
 * in the map, 1,090 per CPU second against 595 (docs/BENCHMARKS.md, third
 * pass; bench/amx_tile.c times it). Left out one at a time (wrong sums, for
 * timing only), C's store and reload would give +29% (a third of it the
 * wait between blocks on the same tiles, which AMX does not rename) and the
 * head copy +18%; KC 256 and 1024, slabs of 32–128 rows with K blocks of
 * 2048–4096 (fewer C reloads, both operands from L2), a contiguous scratch
 * for C between K blocks, the copy interleaved with the panels and the head
 * rows read in place measured the same or slower. While the other vCPU ran
 * other sessions' work (llama-quantize, an AMX generate) every rate here,
 * the bare loop's too, fell to a third: time it on a quiet machine, and in
 * alternation.
 *
 * Row tiles. The copy of each slab's rows is a tenth of the product's time
 * (and needs the rows' next K block prefetched row by row, 8 KiB apart). A
 * caller that multiplies the same head many times (the map: once per chunk
 * of 1024 neurons) packs it once, slab after slab, in exactly the copy's
 * order (amx_pack_row_tiles), and amx_gemm_bf16_tiles reads the A tiles
 * where they lie, the next K block prefetched as one stream: the same
 * tile instructions on the same values, so the same sums, bit for bit;
 * bench/amx_tile.c's "row tiles" against "kernel": 1,020 against 800
 * GFLOP/s (median), 1,260 against 1,100 (fastest), one thread.
 *
 * Arithmetic (Intel SDM, TDPBF16PS): each BF16 product is exact in FP32,
 * added into the FP32 sum with round-to-nearest-even, one rounding per
 * product; BF16 subnormal inputs are read as zero and subnormal results
 * flushed to zero, whatever MXCSR says. So an element is K exact products
 * summed with at most K roundings in some order, plus flushes of at most
 * 2⁻¹²⁶·(|x| + |h| + 1) per step: the prefilter's bound (lens/decode.c)
 * covers both, and tests/test_kernels.c checks it against double sums.
 *
 * Linux hands out tile state only after arch_prctl(ARCH_REQ_XCOMP_PERM),
 * which base/cpu.c asks for before it ever reports the amx set.
 */
#include "tensor/kernels_amx.h"

#include <string.h>

#include "base/util.h"

enum {
    KC = 512, /* k per block: a panel's block (32 neurons × 512, 32 KiB) stays in L1 */
    MR = 32,  /* head rows per block of C: two A tiles */
    NR = 256, /* head rows per slab: the slab's A block (256 KiB) and C (1 MiB) stay in L2 */
    PAIR_ROW = AMX_LANES * 2 * 2, /* bytes per pair step of a packed panel */
    A_STEP = MR * 32              /* halves per step of a row block in tile order: two 1 KiB tiles */
};

_Static_assert(NR == AMX_SLAB, "kernels_amx.h's slab is the kernel's");

/* ----------------------------------------------------------------------------
 * The head rows in tile order: copied per call, or packed once (row tiles) */

/* The slab's nr head rows, k0 .. k0 + kc, into a in tile order (row block,
 * step, row, 32 halves); rows past nr (up to the whole block) and k past kc
 * (up to the whole step) are zeros. */
static void copy_rows(uint16_t *a, const uint16_t *const *rows, int nr, int k0, int kc) {
    int steps = (kc + 31) / 32, rest = kc % 32;
    for (int r = 0; r < (nr + MR - 1) / MR * MR; r++) {
        uint16_t *dst = a + (size_t)(r / MR) * steps * A_STEP + (size_t)(r % MR) * 32;
        if (r >= nr) {
            for (int s = 0; s < steps; s++) memset(dst + (size_t)s * A_STEP, 0, 64);
            continue;
        }
        const uint16_t *src = rows[r] + k0;
        for (int s = 0; s < kc / 32; s++) memcpy(dst + (size_t)s * A_STEP, src + 32 * s, 64);
        if (rest) {
            uint16_t *d = dst + (size_t)(kc / 32) * A_STEP;
            memcpy(d, src + kc / 32 * 32, (size_t)rest * 2);
            memset(d + rest, 0, (size_t)(32 - rest) * 2);
        }
    }
}

size_t amx_row_tiles_size(int n, int K) { return (size_t)(n + MR - 1) / MR * MR * (size_t)((K + 31) / 32 * 32); }

/* Slab after slab, and in each K block after K block, copy_rows's layout:
 * the slab at row j0 starts j0·Kp halves in (Kp = K rounded up to 32), its
 * K block at k0 a further sa·k0 (sa: the slab's rows rounded up to MR). */
void amx_pack_row_tiles(const uint16_t *rows, int n, int K, uint16_t *out) {
    const uint16_t *ptr[NR];
    size_t kp = (size_t)(K + 31) / 32 * 32;
    for (int j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? n - j0 : NR;
        size_t sa = (size_t)(nr + MR - 1) / MR * MR;
        for (int r = 0; r < nr; r++) ptr[r] = rows + (size_t)(j0 + r) * K;
        for (int k0 = 0; k0 < K; k0 += KC) copy_rows(out + (size_t)j0 * kp + sa * k0, ptr, nr, k0, K - k0 < KC ? K - k0 : KC);
    }
}

void amx_unpack_row_tiles(const uint16_t *tiles, int n, int K, uint16_t *rows) {
    size_t kp = (size_t)(K + 31) / 32 * 32;
    for (int j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? n - j0 : NR;
        size_t sa = (size_t)(nr + MR - 1) / MR * MR;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, steps = (kc + 31) / 32;
            const uint16_t *a = tiles + (size_t)j0 * kp + sa * k0;
            for (int r = 0; r < nr; r++)
                for (int st = 0; st < steps; st++) {
                    int len = kc - 32 * st < 32 ? kc - 32 * st : 32;
                    memcpy(rows + (size_t)(j0 + r) * K + k0 + 32 * st, a + ((size_t)(r / MR) * steps + st) * A_STEP + (size_t)(r % MR) * 32,
                           (size_t)len * 2);
                }
        }
    }
}

#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>


/* Every tile here is 16 rows × 64 bytes. Initialised data, not a local filled in at run time: GCC's
 * _tile_loadconfig tells the compiler it reads 8 bytes of the 64, so it
 * may drop the stores to the rest of a local (that faults). */
static const _Alignas(64) TileConfig config = {
    .palette = 1,
    .colsb = { 64, 64, 64, 64, 64, 64, 64, 64 },
    .rows = { 16, 16, 16, 16, 16, 16, 16, 16 },
};

__attribute__((target("amx-tile"))) static void configure(void) { _tile_loadconfig(&config); }

/* What the next blocks will read, fetched a few lines per step while this
 * block computes, so that no load waits on memory: the next panel's K block
 * into L2 (the packed neurons, 8 MiB for 1024, cannot stay in L2), from
 * line l0 on, per lines a step, up to lines; the next K block of the head
 * rows into L2 (rows 8 KiB apart in memory: no hardware prefetcher guesses
 * them), from line r0 on, r_per a step, row_lines per row, up to r_lines;
 * the next block of sums into L1 (32 rows of two lines, c_per a step). */
typedef struct {
    const char *b;
    int l0, per, lines;
    const uint16_t *const *rows;
    int k1, r0, r_per, row_lines, r_lines;
    const float *c;
    int c_per;
    const char *an; /* row tiles: the next K block's, one stream */
    int a_l0, a_per, a_lines;
} Ahead;

/* One 32 × 32 block of C at c (row stride ldc floats): `steps` steps of 32
 * k, the head rows' from a (in tile order: per step two 16 × 32 tiles, 1 KiB
 * each, contiguous), the neurons' from the panel's block b (pair rows of
 * PAIR_ROW bytes, 16 per step), then, when tail is not NULL, one more step
 * with the neurons' from tail (a zero-padded copy of the panel's last
 * pairs). The head rows and the sums are loaded with the no-retain hint
 * (TILELOADDT1): each is read once here, and a plain load would evict the
 * panel's block, which the slab's next blocks read again. */
__attribute__((target("amx-tile,amx-bf16"))) static void block(const uint16_t *a, const uint16_t *b, int steps,
                                                              const uint16_t *tail, float *c, int ldc, int first,
                                                              const Ahead *ah) {
    size_t cs = (size_t)ldc * sizeof(float);
    if (first) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    } else {
        _tile_stream_loadd(0, c, cs);
        _tile_stream_loadd(1, c + 16, cs);
        _tile_stream_loadd(2, c + 16 * (size_t)ldc, cs);
        _tile_stream_loadd(3, c + 16 * (size_t)ldc + 16, cs);
    }
    for (int s = 0; s <= steps; s++) {
        const uint16_t *as = a + (size_t)s * A_STEP, *bs = b + (size_t)s * 32 * AMX_LANES;
        if (s == steps) {
            if (!tail) break;
            bs = tail;
        } else {
            for (int i = 0, l = ah->l0 + s * ah->per; ah->b && i < ah->per && l < ah->lines; i++, l++)
                _mm_prefetch(ah->b + (size_t)l * 64, _MM_HINT_T1);
            for (int i = 0, l = ah->r0 + s * ah->r_per; ah->rows && i < ah->r_per && l < ah->r_lines; i++, l++)
                _mm_prefetch((const char *)(ah->rows[l / ah->row_lines] + ah->k1) + (size_t)(l % ah->row_lines) * 64, _MM_HINT_T1);
            for (int i = 0, l = ah->a_l0 + s * ah->a_per; ah->an && i < ah->a_per && l < ah->a_lines; i++, l++)
                _mm_prefetch(ah->an + (size_t)l * 64, _MM_HINT_T1);
            for (int i = 0, l = s * ah->c_per; ah->c && i < ah->c_per && l < 2 * MR; i++, l++)
                _mm_prefetch((const char *)(ah->c + (size_t)(l >> 1) * ldc + (l & 1) * 16), _MM_HINT_T0);
        }
        _tile_stream_loadd(4, as, 64);
        _tile_stream_loadd(5, as + A_STEP / 2, 64);
        _tile_loadd(6, bs, PAIR_ROW);
        _tile_loadd(7, bs + 32, PAIR_ROW);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, cs);
    _tile_stored(1, c + 16, cs);
    _tile_stored(2, c + 16 * (size_t)ldc, cs);
    _tile_stored(3, c + 16 * (size_t)ldc + 16, cs);
}

__attribute__((target("amx-tile"))) static void release(void) { _tile_release(); }

/* Where head rows j .. j + MR sum: in c, or the last, partial block in scratch. */
static float *c_block(float *c, int ldc, float *scratch, int n, int j) { return n - j < MR ? scratch : c + (size_t)j * ldc; }

/* The product, its head rows either copied per slab and K block from row
 * pointers (rows) or read where amx_pack_row_tiles put them (tiles). */
static void product(const uint16_t *packed, int panels, int K, const uint16_t *const *rows, const uint16_t *tiles, int n,
                    float *c, int ldc) {
    _Alignas(64) uint16_t tail[16 * PAIR_ROW / 2];
    size_t a_rows = n < NR ? (size_t)(n + MR - 1) / MR * MR : NR, kp = (size_t)(K + 31) / 32 * 32;
    uint16_t *buf = tiles ? NULL : xmalloc64(a_rows * KC * sizeof *buf);
    /* The last, partial block of head rows writes into a scratch block of
     * MR rows (kept across K blocks), copied out at the end. */
    float *scratch = n % MR ? xmalloc((size_t)MR * ldc * sizeof *scratch) : NULL;
    configure();
    for (int j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? n - j0 : NR, blocks = (nr + MR - 1) / MR;
        size_t sa = (size_t)blocks * MR;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, steps = kc / 32, rest = kc % 32; /* rest even: K is */
            const uint16_t *a = tiles ? tiles + (size_t)j0 * kp + sa * k0 : buf;
            if (!tiles) copy_rows(buf, rows + j0, nr, k0, kc);
            int k1 = k0 + KC, kc1 = K - k1 < KC ? K - k1 : KC, jobs = panels * blocks * steps;
            /* What the next K block reads of the head: the rows' next K block
             * (8 KiB apart), or the row tiles' next stretch, one stream: this
             * slab's next K block, or the next slab's first. */
            int row_lines = (kc1 * 2 + 63) / 64, r_lines = !tiles && k1 < K ? nr * row_lines : 0;
            const char *an = NULL;
            int a_lines = 0;
            if (tiles && k1 < K) an = (const char *)(a + sa * KC), a_lines = (int)(sa * (size_t)((kc1 + 31) / 32 * 32) * 2 / 64);
            else if (tiles && j0 + NR < n) {
                int nr1 = n - j0 - NR < NR ? n - j0 - NR : NR, kc0 = K < KC ? K : KC;
                an = (const char *)(tiles + (size_t)(j0 + NR) * kp);
                a_lines = (int)((size_t)(nr1 + MR - 1) / MR * MR * (size_t)((kc0 + 31) / 32 * 32) * 2 / 64);
            }
            int r_per = jobs ? (r_lines + jobs - 1) / jobs : 0, a_per = jobs ? (a_lines + jobs - 1) / jobs : 0;
            for (int p = 0; p < panels; p++) {
                const uint16_t *b = packed + ((size_t)p * K + k0) * AMX_LANES;
                if (rest) { /* the panel's last rest/2 pair rows, then zeros: one more step */
                    memset(tail, 0, sizeof tail);
                    memcpy(tail, b + (size_t)steps * 32 * AMX_LANES, (size_t)rest / 2 * PAIR_ROW);
                }
                /* the next panel's block, or the first panel's next K block */
                const uint16_t *next = p + 1 < panels ? b + (size_t)K * AMX_LANES : k1 < K ? packed + (size_t)k1 * AMX_LANES : NULL;
                int lines = (p + 1 < panels ? kc : kc1) * AMX_LANES * 2 / 64, per_b = steps ? (lines + blocks * steps - 1) / (blocks * steps) : 0;
                for (int jb = 0; jb < blocks; jb++) {
                    const uint16_t *aj = a + (size_t)jb * (steps + !!rest) * A_STEP;
                    /* the next block of sums, when it is loaded: (jb + 1, p) or (0, p + 1) of this K block */
                    const float *cn = k0 == 0 ? NULL : jb + 1 < blocks ? c_block(c, ldc, scratch, n, j0 + (jb + 1) * MR) + (size_t)p * AMX_LANES
                                                  : p + 1 < panels ? c_block(c, ldc, scratch, n, j0) + (size_t)(p + 1) * AMX_LANES : NULL;
                    int job = (p * blocks + jb) * steps;
                    Ahead ah = { (const char *)next, jb * steps * per_b, per_b, lines,
                                 tiles ? NULL : rows + j0, k1, job * r_per, r_per, row_lines, r_lines,
                                 cn, steps ? (2 * MR + steps - 1) / steps : 0,
                                 an, job * a_per, a_per, a_lines };
                    block(aj, b, steps, rest ? tail : NULL, c_block(c, ldc, scratch, n, j0 + jb * MR) + (size_t)p * AMX_LANES, ldc, k0 == 0, &ah);
                }
            }
        }
    }
    release();
    if (scratch) {
        int j = n / MR * MR;
        memcpy(c + (size_t)j * ldc, scratch, (size_t)(n - j) * ldc * sizeof *scratch);
        free(scratch);
    }
    free(buf);
}

void amx_gemm_bf16(const uint16_t *packed, int panels, int K, const uint16_t *const *rows, int n, float *c, int ldc) {
    product(packed, panels, K, rows, NULL, n, c, ldc);
}

void amx_gemm_bf16_tiles(const uint16_t *packed, int panels, int K, const uint16_t *tiles, int n, float *c, int ldc) {
    product(packed, panels, K, NULL, tiles, n, c, ldc);
}
#endif
