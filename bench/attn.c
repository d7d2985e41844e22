/* bench/attn.c — the attention of one layer, Llama-3.2-1B's shape (32 query
 * heads, 8 KV heads, head_dim 64), on one thread: the exact path's scalar
 * loop (forward.c's attend(), one query at a time) against tensor/attn.h's
 * vectorised, grouped kernel, interleaved, medians of 7.
 *   cc -O2 -march=x86-64-v2 -Isrc bench/attn.c build/opt/libneuromap.a \
 *      $(pkg-config --libs openblas) -lm -pthread -o /tmp/attn_bench
 * usage: attn_bench [CONTEXT] [T]   (default 576 positions, T = 1: decode) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "tensor/attn.h"

enum { H = 32, KVH = 8, HD = 64, G = H / KVH };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* forward.c's attend() on an F32 cache. */
static void scalar(const float *q, const float *kc, const float *vc, int n, float *out, float *scores) {
    float scale = 1.0f / sqrtf((float)HD), max = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *k = kc + (size_t)j * KVH * HD;
        float s = 0.0f;
        for (int i = 0; i < HD; i++) s += q[i] * k[i];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
    }
    for (int j = 0; j < n; j++) sum += scores[j] = expf(scores[j] - max);
    memset(out, 0, HD * sizeof *out);
    for (int j = 0; j < n; j++) {
        const float *v = vc + (size_t)j * KVH * HD;
        float a = scores[j] / sum;
        for (int i = 0; i < HD; i++) out[i] += a * v[i];
    }
}

static int cmp(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

int main(int argc, char **argv) {
    int ctx = argc > 1 ? atoi(argv[1]) : 576, T = argc > 2 ? atoi(argv[2]) : 1, n0 = ctx - T + 1;
    float *kc = malloc((size_t)ctx * KVH * HD * sizeof(float)), *vc = malloc((size_t)ctx * KVH * HD * sizeof(float));
    float *q = malloc((size_t)T * H * HD * sizeof(float)), *out = malloc((size_t)T * H * HD * sizeof(float));
    float *scratch = malloc(attn_scratch_floats(T, G, ctx, HD) * sizeof(float));
    for (size_t i = 0; i < (size_t)ctx * KVH * HD; i++) kc[i] = (float)rand() / RAND_MAX - 0.5f, vc[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < T * H * HD; i++) q[i] = (float)rand() / RAND_MAX - 0.5f;
    double ts[7], tv[7];
    int reps = 200 / T + 1;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        for (int k = 0; k < reps; k++)
            for (int t = 0; t < T; t++)
                for (int h = 0; h < H; h++)
                    scalar(q + ((size_t)t * H + h) * HD, kc + (h / G) * HD, vc + (h / G) * HD, n0 + t, out + ((size_t)t * H + h) * HD, scratch);
        ts[r] = (now() - t0) / reps;
        t0 = now();
        for (int k = 0; k < reps; k++)
            for (int kvh = 0; kvh < KVH; kvh++) {
                AttnKV kv = { .k = kc + kvh * HD, .v = vc + kvh * HD, .ld = KVH * HD, .hd = HD };
                attn_heads(&kv, q + kvh * G * HD, T, G, H * HD, n0, out + kvh * G * HD, scratch);
            }
        tv[r] = (now() - t0) / reps;
    }
    qsort(ts, 7, sizeof *ts, cmp), qsort(tv, 7, sizeof *tv, cmp);
    printf("attention, 1 layer, %d positions, T = %d, %s: scalar %.1f us, vectorised+grouped %.1f us (%.1fx)\n", ctx, T,
           isa_name(cpu_kernel_isa()), ts[3] * 1e6, tv[3] * 1e6, ts[3] / tv[3]);
    return 0;
}
