/* kernels_amx.h — the BF16 tile product on AMX tiles, for kernels.c's
 * kern_gemm_bf16 under the amx set (base/cpu.h) and nothing else. */
#ifndef NEUROMAP_KERNELS_AMX_H
#define NEUROMAP_KERNELS_AMX_H

#include <stddef.h>
#include <stdint.h>

/* NM_INTERNAL_BEGIN */
#define AMX_LANES 32 /* neurons per packed panel: kernels.h's KERN_LANES */

/* kern_gemm_bf16's contract (kernels.h) for `panels` packed panels of
 * AMX_LANES neurons in kern_pack_bf16's layout, K even: c[j·ldc + i] for
 * j < n, i < panels·AMX_LANES, the products summed in the hardware's order.
 * Only where the CPU and the OS give AMX tiles (cpu_isa() == ISA_AMX). */
void amx_gemm_bf16(const uint16_t *packed, int panels, int K, const uint16_t *const *rows, int n, float *c, int ldc);
/* The same product with the head rows read from row tiles: n rows packed
 * by amx_pack_row_tiles (below), the pointer at the first; the same sums,
 * bit for bit, without the copy of each slab's rows that amx_gemm_bf16
 * makes (a tenth of its time). */
void amx_gemm_bf16_tiles(const uint16_t *packed, int panels, int K, const uint16_t *tiles, int n, float *c, int ldc);
/* Row tiles: BF16 rows (n rows of K, row after row) in the kernel's own
 * order, slab after slab of AMX_SLAB rows, each K block after K block, each
 * 32 rows in two 16 × 32 tiles per step of 32 k (zero-padded). n rows take
 * amx_row_tiles_size(n, K) halves; the slab at row j0 (a multiple of
 * AMX_SLAB) starts amx_row_tiles_size(j0, K) halves in. Plain C, any CPU. */
#define AMX_SLAB 256
size_t amx_row_tiles_size(int n, int K);
void amx_pack_row_tiles(const uint16_t *rows, int n, int K, uint16_t *out);
void amx_unpack_row_tiles(const uint16_t *tiles, int n, int K, uint16_t *rows);
/* The 64-byte operand of LDTILECFG: palette 1, then per tile its bytes per
 * row and its rows (an unused tile: both 0). kernels_amx.c and gemm_amx.c
 * both configure tiles with it. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;
/* NM_INTERNAL_END */

#endif
