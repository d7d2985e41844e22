/* amx_tile.c — issue 20's AMX product, measured (a benchmark, not a test):
 * how fast is kernels_amx.c against the tile engine's own limits?
 *
 *   make build/opt/bench/amx_tile
 *   build/opt/bench/amx_tile [RUNS]          (40 by default)
 *
 * Timed in turns (median and fastest of RUNS), one thread, random BF16
 * operands in [−0.5, 0.5] (AMX is faster on zeros: zero-filled probes
 * overstate it):
 *
 *   bare W KiB   the kernel's inner step alone, four 1 KiB tile loads and
 *                four TDPBF16PS, C never stored, cycling over operands of W
 *                KiB in all: where the operands come from (L1, L2, L3)
 *                sets the rate
 *   kernel       kern_gemm_bf16 under the amx set on the map's shape: 1024
 *                neurons (packed) × 256 head rows × K 4096, rows taken in
 *                turn from a 64 MiB head, as lens/decode.c calls it
 *   kernel +16   the same with the packed neurons and the sums 16 bytes
 *                past a cache line (where malloc puts large blocks)
 *   row tiles    kern_gemm_bf16_tiles: the same head rows packed once as
 *                row tiles (kern_pack_row_tiles), no copy per call
 *
 * GFLOP/s = 2·M·N·K per call. Run it on a quiet machine: when the other
 * vCPU of the 2-vCPU Xeon this was written on was busy, every rate here,
 * the bare loop's too, fell to a third. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "base/util.h"
#include "tensor/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { M = 1024, N = 256, K = 4096, HEAD = 8192, MAX_RUNS = 1000 };

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;
static const _Alignas(64) TileConfig config = { .palette = 1,
                                                .colsb = { 64, 64, 64, 64, 64, 64, 64, 64 },
                                                .rows = { 16, 16, 16, 16, 16, 16, 16, 16 } };

/* steps of the kernel's pattern over q steps of operands (a: two 1 KiB
 * tiles a step, b: a packed panel's 2 KiB a step), q · 4 KiB in all */
__attribute__((target("amx-tile,amx-bf16"))) static void bare(const uint16_t *a, const uint16_t *b, long steps, int q) {
    static _Alignas(64) float sink[256];
    _tile_loadconfig(&config);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long s = 0; s < steps; s++) {
        const uint16_t *as = a + (size_t)(s % q) * 1024, *bs = b + (size_t)(s % q) * 1024;
        _tile_loadd(4, as, 64);
        _tile_loadd(5, as + 512, 64);
        _tile_loadd(6, bs, 128);
        _tile_loadd(7, bs + 32, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, sink, 64);
    _tile_release();
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int by_value(const void *x, const void *y) { return *(const double *)x < *(const double *)y ? -1 : *(const double *)x > *(const double *)y; }

static uint64_t rng = 88172645463325252ull;
static uint16_t random_bf16(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return kern_bf16((float)(rng >> 40) / (float)(1 << 24) - 0.5f);
}

int main(int argc, char **argv) {
    Error e = { 0 };
    int runs = argc > 1 ? atoi(argv[1]) : 40;
    if (runs < 1 || runs > MAX_RUNS) runs = 40;
    if (cpu_force_isa(ISA_AMX, &e)) {
        printf("amx_tile: no AMX here (%s)\n", e.msg);
        return 0;
    }
    /* operands at cache lines, and copies 16 bytes on */
    uint16_t *head = xmalloc64((size_t)HEAD * K * 2), *x = xmalloc((size_t)M * K * 2);
    uint16_t *packed = xmalloc64((size_t)M * K * 2), *packed_off = xmalloc64((size_t)M * K * 2 + 64);
    float *c = xmalloc64((size_t)N * (M + 16) * 4 + 64);
    for (size_t i = 0; i < (size_t)HEAD * K; i++) head[i] = random_bf16();
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = random_bf16();
    kern_pack_bf16(x, M, K, packed);
    kern_pack_bf16(x, M, K, packed_off + 8);
    uint16_t *tiles = xmalloc64(kern_row_tiles_size(HEAD, K) * 2); /* the head as row tiles: slabs of 256 = N rows */
    kern_pack_row_tiles(head, HEAD, K, tiles);
    static const int sizes[] = { 32, 64, 512, 2048, 8192 }; /* KiB of bare's operands */
    enum { VARIANTS = 8 };
    static const char *names[VARIANTS] = { "bare 32 KiB", "bare 64 KiB", "bare 512 KiB", "bare 2 MiB", "bare 8 MiB", "kernel", "kernel +16", "row tiles" };
    static double t[VARIANTS][MAX_RUNS];
    const uint16_t *rows[N];
    int tile = 0;
    double flop = 2.0 * M * N * K;
    for (int r = 0; r < runs; r++)
        for (int v = 0; v < VARIANTS; v++) {
            for (int j = 0; j < N; j++) rows[j] = head + (size_t)((tile * N + j) % HEAD) * K;
            tile++;
            double t0 = now();
            if (v < 5) bare(head, packed, (long)(N / 32) * (M / 32) * (K / 32), sizes[v] / 4);
            else if (v == 5) kern_gemm_bf16(packed, M, K, rows, N, c, M + 16);
            else if (v == 7) kern_gemm_bf16_tiles(packed, M, K, tiles + kern_row_tiles_size((tile - 1) * N % HEAD, K), N, c, M + 16);
            else kern_gemm_bf16(packed_off + 8, M, K, rows, N, c + 4, M + 16);
            t[v][r] = now() - t0;
        }
    printf("AMX BF16 product, %d runs in turns, one thread, M %d N %d K %d\n", runs, M, N, K);
    for (int v = 0; v < VARIANTS; v++) {
        qsort(t[v], (size_t)runs, sizeof **t, by_value);
        printf("%-14s median %6.0f GFLOP/s   fastest %6.0f\n", names[v], flop / t[v][runs / 2] / 1e9, flop / t[v][0] / 1e9);
    }
    free(head), free(x), free(packed), free(packed_off), free(c), free(tiles);
    return 0;
}
#else
int main(void) {
    printf("amx_tile: x86-64 only\n");
    return 0;
}
#endif
