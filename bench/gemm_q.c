/* bench/gemm_q.c — the quantised products alone (tensor/vecdot.h), one
 * thread: a Llama-3.2-1B-shaped matrix (ROWS × COLS) of random blocks of a
 * type against T tokens, weights beyond the caches (several copies, used in
 * turn) as in a forward pass. Prints the median of 9 runs: µs per call,
 * weight GB/s, and ns per (row, 256 values, token).
 *   make build/opt/bench/gemm_q
 * usage: gemm_q TYPE [T] [ROWS] [COLS]   (q8_0 q4_0 q4_k q5_k q6_k; T 1,
 *   8192 rows, 2048 columns); NEUROMAP_ISA forces a kernel set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tensor/dtype.h"
#include "tensor/vecdot.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: gemm_q TYPE [T] [ROWS] [COLS]\n"), 2;
    DType t = DT_COUNT;
    for (int i = 0; i < DT_COUNT; i++)
        if (!strcasecmp(dtype_name((DType)i), argv[1])) t = (DType)i;
    if (t == DT_COUNT || !vecdot_supported(t)) return fprintf(stderr, "gemm_q: no fast kernel for '%s'\n", argv[1]), 2;
    int T = argc > 2 ? atoi(argv[2]) : 1;
    int64_t rows = argc > 3 ? atoll(argv[3]) : 8192, cols = argc > 4 ? atoll(argv[4]) : 2048;
    enum { COPIES = 4, RUNS = 9 };
    size_t rb = dtype_bytes(t, cols), ab = vecdot_act_bytes(t, cols);
    unsigned char *w = malloc(rb * rows * COPIES);
    const DTypeTraits *ti = dtype_info(t);
    srand(1);
    for (size_t i = 0; i < rb * rows * COPIES; i++) w[i] = (unsigned char)rand();
    /* sane f16 scales: d (and dmin) at the block's start, Q6_K's at its end */
    for (size_t b = 0; b < rows * COPIES * (size_t)(cols / ti->block_size); b++) {
        unsigned char *p = w + b * ti->block_bytes + (t == DT_Q6_K ? 208 : 0);
        p[0] = 0x00, p[1] = 0x1c; /* 2^-8 */
        if (t == DT_Q4_K || t == DT_Q5_K) p[2] = 0x00, p[3] = 0x1c;
    }
    float *x = malloc(sizeof *x * cols * T), *out = malloc(sizeof *out * rows * T);
    char *act = malloc(ab * T);
    for (int64_t i = 0; i < cols * T; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int k = 0; k < T; k++) vecdot_quantize(t, x + cols * k, cols, act + ab * k);
    double us[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        for (int c = 0; c < COPIES; c++) vecdot_gemm(t, w + rb * rows * c, rows, cols, act, T, out, rows);
        us[r] = (now() - t0) / COPIES * 1e6;
    }
    qsort(us, RUNS, sizeof *us, cmp);
    double m = us[RUNS / 2];
    printf("%s [%s] %lld x %lld, T %d: %.1f us, %.2f GB/s, %.2f ns per row-256-token\n", argv[1], vecdot_kernel_name(),
           (long long)rows, (long long)cols, T, m, rb * rows / m * 1e-3, m * 1e3 / ((double)rows * cols / 256 * T));
    free(w), free(x), free(out), free(act);
    return 0;
}
