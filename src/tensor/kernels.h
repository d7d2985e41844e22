/* kernels.h — the lens's own tile products: an exact FP32 one and a BF16
 * one for the prefilter, hand-written for AVX2+FMA and AVX-512 (+BF16) with
 * a portable C twin, and the row scans that go with them. Each call runs
 * the kernels of cpu_kernel_isa() (base/cpu.h), chosen at run time.
 *
 * Both multiply a block of neuron vectors, packed once into panels of
 * KERN_LANES neurons, by head rows given as pointers (in place in the
 * model, a converted tile, or the few rows a prefilter must rescore), and
 * write c[j·ldc + i] for head row j and neuron i: the tile vocabulary-major.
 *
 * kern_gemm_f32 computes every element as ONE fused multiply-add chain in
 * k order, c = fma(x[k], h[k], c) from c = 0, whatever the shapes, the
 * instruction set or the blocking (a chain split across K blocks resumes
 * from the stored float). So a logit rescored on its own is bit for bit the
 * logit of the full map, which lets the prefilter promise identical results.
 */
#ifndef NEUROMAP_KERNELS_H
#define NEUROMAP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define KERN_LANES 32 /* neurons per packed panel: two AVX-512 vectors, four AVX2 ones */
#define KERN_ROWS 12  /* head rows per micro-kernel call */

/* Neurons rounded up to whole panels. */
static inline int kern_padded(int m) { return (m + KERN_LANES - 1) / KERN_LANES * KERN_LANES; }

/* FP32: packs m vectors of K floats (row-major) into kern_padded(m)·K floats. */
void kern_pack_f32(const float *vecs, int m, int K, float *out);
/* c[j·ldc + i] = Σ_k rows[j][k]·vecs[i][k] for j < n, i < kern_padded(m).
 * rows are FP32, or BF16 (rows_bf16) widened exactly on the fly. */
void kern_gemm_f32(const float *packed, int m, int K, const void *const *rows, int rows_bf16, int n, float *c, int ldc);

/* out[j] = Σ_k rows[j][k]·x[k] for j < n, one vector x (plain, K floats):
 * the same FMA chain, so the same bits, as kern_gemm_f32 gives for it, at a
 * fraction of the cost when the rows are few (rows gathered 16 at a time). */
void kern_dot_rows(const float *x, int K, const void *const *rows, int rows_bf16, int n, float *out);

/* BF16 (K even): vectors already rounded to BF16, packed in pairs along k
 * into kern_padded(m)·K halves; rows are BF16 rows of K. Each element is
 * accumulated in FP32 with at most K roundings (the prefilter's bound). */
void kern_pack_bf16(const uint16_t *vecs, int m, int K, uint16_t *out);
void kern_gemm_bf16(const uint16_t *packed, int m, int K, const uint16_t *const *rows, int n, float *c, int ldc);

/* Head rows packed once in the tile kernel's own order ("row tiles"), so
 * that the product need not copy each slab of rows it reads (on AMX, a
 * tenth of its time): n BF16 rows of K (row after row) take
 * kern_row_tiles_size(n, K) halves; the rows from v0 on (v0 a multiple of
 * KERN_ROW_SLAB) start kern_row_tiles_size(v0, K) halves in.
 * kern_gemm_bf16_tiles is kern_gemm_bf16 with the rows read from there: the
 * same sums, bit for bit, under every kernel set (where the set has no
 * tiles, by unpacking the rows first). Packing pays only where the product
 * runs on tiles: kern_row_tiles_pay(). */
#define KERN_ROW_SLAB 256
int kern_row_tiles_pay(void);
size_t kern_row_tiles_size(int n, int K);
void kern_pack_row_tiles(const uint16_t *rows, int n, int K, uint16_t *out);
void kern_gemm_bf16_tiles(const uint16_t *packed, int m, int K, const uint16_t *tiles, int n, float *c, int ldc);

/* BF16 ↔ FP32: round to nearest even (NaN kept a NaN), and widen. */
uint16_t kern_bf16(float x);
static inline float kern_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}

/* Σ h[i]² of n BF16 values (in double, exact to ~n·2⁻⁵³ relative); raises
 * *absmax to the largest |h[i]|. */
double kern_sumsq_bf16(const uint16_t *h, int n, float *absmax);

/* The largest of n ≥ 1 values (NaNs skipped, as by x > m). */
float kern_max(const float *x, int n);
/* Σ e^(x[j] − m) for x[j] ≤ m, summed in double; each term within a
 * relative KERN_EXP_ERROR of e^(float(x[j] − m)), or within 2⁻¹²⁶ below
 * FLT_MIN (negligible: a tile's sum is at least its maximum's term, 1). */
double kern_sum_exp(const float *x, int n, float m);
#define KERN_EXP_ERROR 0x1p-19
/* kern_sum_exp's terms kept: out[j] = e^(x[j] − m) (out may be x, the same
 * bounds), their sum returned. */
double kern_exp(const float *x, int n, float m, float *out);
/* The j < n with x[j] + b_j ≥ t_top or x[j] − b_j ≤ t_bottom, into idx
 * (ascending), where b_j = rn[j]·alpha + rr[j]·beta + eps in float, in that
 * order, or 0 when rn is NULL; returns how many. */
int kern_flag(const float *x, int n, const float *rn, const float *rr, float alpha, float beta, float eps, float t_top,
              float t_bottom, int *idx);

/* The same three scans over the columns of a vocabulary-major tile c (nv ≤
 * 65,535 rows of ldc floats; m columns, a multiple of 16), so that no
 * transpose is needed: for each column i, max[i] as kern_max and sum[i] as
 * kern_sum_exp of the column (its terms summed in double in row order), and
 * the rows kern_flag would flag with b_v = rn[v]·alpha[i] + rr[v]·beta[i] +
 * eps[i] against t_top[i] and t_bottom[i]. Flags come per group g of 16
 * columns: the n_hits[g] rows hit in any of them, rising, at
 * hit_row[g·nv + h], with hit_mask[g·nv + h] bit l for column 16g + l. */
typedef struct {
    const float *alpha, *beta, *eps, *t_top, *t_bottom; /* m each */
} KernBounds;
void kern_scan_cols(const float *c, int nv, int m, int ldc, const float *rn, const float *rr, const KernBounds *kb,
                    float *max, double *sum, uint32_t *hit_row, uint16_t *hit_mask, int *n_hits);

/* Transposes the vocabulary-major tile (nv × ldc) into neuron rows (m × nv). */
void kern_transpose(const float *c, int nv, int m, int ldc, float *out);

#endif
