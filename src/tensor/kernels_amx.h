/* kernels_amx.h — the BF16 tile product on AMX tiles, for kernels.c's
 * kern_gemm_bf16 under the amx set (base/cpu.h) and nothing else. */
#ifndef NEUROMAP_KERNELS_AMX_H
#define NEUROMAP_KERNELS_AMX_H

#include <stdint.h>

/* NM_INTERNAL_BEGIN */
#define AMX_LANES 32 /* neurons per packed panel: kernels.h's KERN_LANES */

/* kern_gemm_bf16's contract (kernels.h) for `panels` packed panels of
 * AMX_LANES neurons in kern_pack_bf16's layout, K even: c[j·ldc + i] for
 * j < n, i < panels·AMX_LANES, the products summed in the hardware's order.
 * Only where the CPU and the OS give AMX tiles (cpu_isa() == ISA_AMX). */
void amx_gemm_bf16(const uint16_t *packed, int panels, int K, const uint16_t *const *rows, int n, float *c, int ldc);
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
