/* test_kernels.c — the lens's own tile products. The FP32 kernel must give,
 * for every element, exactly the single fused multiply-add chain in k order
 * (bit for bit, in every kernel set, for any shape, edge and row order):
 * that is what lets the prefilter rescore a logit alone and get the map's
 * bits, and every set give the same map. The BF16 kernel must stay inside
 * the error bound the prefilter's certificate assumes. Every test runs
 * under each kernel set this CPU has (base/cpu.h); the closing lines say
 * which. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "check.h"
#include "tensor/kernels.h"
#include "tensor/kernels_amx.h"

/* The kernel set under test. */
static const char *set(void) { return isa_name(cpu_isa()); }

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int bits_equal(float a, float b) { return memcmp(&a, &b, 4) == 0; }

/* Elements of one shape that differ from the fma chain, computed here in
 * plain C: m packed vectors (some large) against n rows in any order. */
static int f32_chain_bad(int m, int K, int n, int ldc) {
    int bad = 0;
    float *x = malloc((size_t)m * K * 4), *h = malloc((size_t)n * K * 4);
    float *packed = malloc((size_t)kern_padded(m) * K * 4), *c = malloc((size_t)n * ldc * 4);
    const float **rows = malloc((size_t)n * sizeof *rows);
    for (size_t i = 0; i < (size_t)m * K; i++) x[i] = frand() * (i % 7 == 0 ? 100.0f : 1.0f);
    for (size_t i = 0; i < (size_t)n * K; i++) h[i] = frand();
    for (int j = 0; j < n; j++) rows[j] = h + (size_t)((j * 7) % n) * K; /* rows in any order */
    kern_pack_f32(x, m, K, packed);
    kern_gemm_f32(packed, m, K, (const void *const *)rows, 0, n, c, ldc);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < kern_padded(m); i++) {
            float s = 0.0f;
            for (int k = 0; k < K && i < m; k++) s = fmaf(x[(size_t)i * K + k], rows[j][k], s);
            bad += !bits_equal(c[(size_t)j * ldc + i], s);
        }
    free(x), free(h), free(packed), free(c), free(rows);
    return bad;
}

static void test_f32_chain(void) {
    static const int Ms[] = { 1, 5, 32, 45, 70 }, Ks[] = { 1, 7, 64, 300, 513 }, Ns[] = { 1, 7, 11, 12, 25 };
    int bad = 0, cases = 0;
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
            for (size_t d = 0; d < sizeof Ns / sizeof *Ns; d++, cases++)
                bad += f32_chain_bad(Ms[a], Ks[b], Ns[d], kern_padded(Ms[a]) + 3);
    CHECK(bad == 0, "%s FP32 kernel: %d elements differ from the fma chain over %d shapes", set(), bad, cases);
}

/* Sums far apart (a wide ldc): under avx2 the rows then go in bands of
 * 24 (kernels.c's band_rows), here 3 bands, the last short, each through
 * three K blocks. Every element still the one fma chain. */
static void test_f32_bands(void) {
    int bad = f32_chain_bad(45, 300, 61, 10000);
    CHECK(bad == 0, "%s FP32 kernel, wide ldc: %d elements differ from the fma chain", set(), bad);
}

/* kern_dot_rows: the same fma chain for one vector, rows F32 or BF16 (read
 * exactly), in any order and far apart, K odd and even, groups of rows
 * partial and whole. */
static void test_dot_rows(void) {
    static const int Ks[] = { 1, 2, 7, 64, 301 }, Ns[] = { 1, 5, 16, 17, 40 };
    int bad = 0;
    for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
        for (size_t d = 0; d < sizeof Ns / sizeof *Ns; d++) {
            int K = Ks[b], n = Ns[d], spread = 97; /* rows picked from spread × n */
            float *x = malloc((size_t)K * 4), *h = calloc((size_t)spread * n * K, 4), out[40];
            uint16_t *hb = calloc((size_t)spread * n * K, 2);
            const void *rows[40];
            for (int k = 0; k < K; k++) x[k] = frand() * (k % 5 == 0 ? 50.0f : 1.0f);
            for (int j = 0; j < n; j++) /* only the rows used */
                for (size_t i = (size_t)((j * 7919 + 13) % (spread * n)) * K, e = i + K; i < e; i++) h[i] = frand(), hb[i] = kern_bf16(frand());
            for (int bf16 = 0; bf16 < 2; bf16++) {
                for (int j = 0; j < n; j++) {
                    size_t r = (size_t)((j * 7919 + 13) % (spread * n)) * K; /* any order, far apart */
                    rows[j] = bf16 ? (const void *)(hb + r) : (const void *)(h + r);
                }
                kern_dot_rows(x, K, rows, bf16, n, out);
                for (int j = 0; j < n; j++) {
                    float s = 0.0f;
                    for (int k = 0; k < K; k++)
                        s = fmaf(x[k], bf16 ? kern_f32(((const uint16_t *)rows[j])[k]) : ((const float *)rows[j])[k], s);
                    bad += !bits_equal(out[j], s);
                }
            }
            free(x), free(h), free(hb);
        }
    CHECK(bad == 0, "%s dot rows: %d logits differ from the fma chain", set(), bad);
}

/* The BF16 kernel against exact products summed in double: within
 * γ_K·Σ|h·x| (K roundings of an FP32 sum of exact products, in any order:
 * AMX sums them in its own). The shapes cross every edge of the kernels'
 * blocking: partial panels (m), partial and whole blocks of 12 and of 32
 * head rows (n), K below, at and past a tile step (32) and a K block
 * (kernels.c 256, kernels_amx.c 512), with and without a tail of k. */
static int bf16_bound_case(int m, int n, int K, int tiles) {
    int bad = 0, ldc = kern_padded(m);
    uint16_t *x = malloc((size_t)m * K * 2), *h = malloc((size_t)n * K * 2), *packed = malloc((size_t)ldc * K * 2);
    float *c = malloc((size_t)n * ldc * 4);
    const uint16_t **rows = malloc((size_t)n * sizeof *rows);
    for (size_t i = 0; i < (size_t)m * K; i++) x[i] = kern_bf16(frand());
    for (size_t i = 0; i < (size_t)n * K; i++) h[i] = kern_bf16(frand() * 3);
    for (int j = 0; j < n; j++) rows[j] = h + (size_t)j * K;
    kern_pack_bf16(x, m, K, packed);
    if (tiles) { /* the rows read from row tiles instead */
        uint16_t *t = malloc(kern_row_tiles_size(n, K) * 2);
        kern_pack_row_tiles(h, n, K, t);
        kern_gemm_bf16_tiles(packed, m, K, t, n, c, ldc);
        free(t);
    } else {
        kern_gemm_bf16(packed, m, K, rows, n, c, ldc);
    }
    double gamma = K * 0x1p-24 / (1 - K * 0x1p-24);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0, abs_sum = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)kern_f32(x[(size_t)i * K + k]) * kern_f32(h[(size_t)j * K + k]);
                s += p, abs_sum += fabs(p);
            }
            bad += fabs(c[(size_t)j * ldc + i] - s) > gamma * abs_sum;
        }
    free(x), free(h), free(packed), free(c), free(rows);
    return bad;
}

static void test_bf16_bound(void) {
    static const int Ms[] = { 37, 64 }, Ns[] = { 29, 70 }, Ks[] = { 2, 64, 514, 1030 };
    int bad = 0;
    for (int t = 0; t < 16; t++) bad += bf16_bound_case(Ms[t & 1], Ns[t >> 1 & 1], Ks[t >> 2], 0);
    /* AMX's slabs of 256 head rows: one whole, then whole and partial blocks of 32 */
    if (cpu_isa() == ISA_AMX) bad += bf16_bound_case(33, 290, 514, 0);
    CHECK(bad == 0, "%s BF16 kernel: %d elements outside the bound", set(), bad);
    bad = bf16_bound_case(37, 70, 1030, 1) + bf16_bound_case(33, 290, 514, 1);
    CHECK(bad == 0, "%s BF16 kernel on row tiles: %d elements outside the bound", set(), bad);
}

/* Row tiles (kern_pack_row_tiles) hold the rows exactly (unpacked, the same
 * halves), and the product read from them is the product read from the
 * rows, bit for bit, from the first row or from a later slab's start: on
 * shapes with partial slabs, partial blocks of 32 rows, K tails and K
 * blocks (kernels_amx.c's 512) crossed. */
static void test_row_tiles(void) {
    static const struct { int m, n, K, v0; } cases[] = {
        { 5, 1, 2, 0 }, { 37, 29, 64, 0 }, { 33, 290, 514, 256 }, { 64, 513, 1030, 512 }, { 32, 300, 4096, 256 },
    };
    int bad_rows = 0, bad_sums = 0;
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        int m = cases[t].m, n = cases[t].n, K = cases[t].K, v0 = cases[t].v0, ldc = kern_padded(m) + 16;
        uint16_t *x = malloc((size_t)m * K * 2), *h = malloc((size_t)n * K * 2), *back = malloc((size_t)n * K * 2);
        uint16_t *packed = malloc((size_t)kern_padded(m) * K * 2), *tiles = malloc(kern_row_tiles_size(n, K) * 2);
        float *c[2] = { calloc((size_t)n * ldc, 4), calloc((size_t)n * ldc, 4) };
        const uint16_t **rows = malloc((size_t)n * sizeof *rows);
        for (size_t i = 0; i < (size_t)m * K; i++) x[i] = kern_bf16(frand());
        for (size_t i = 0; i < (size_t)n * K; i++) h[i] = kern_bf16(frand() * 3);
        for (int j = 0; j < n; j++) rows[j] = h + (size_t)j * K;
        kern_pack_bf16(x, m, K, packed);
        kern_pack_row_tiles(h, n, K, tiles);
        for (int v = 0; v <= v0; v += v0 ? v0 : 1) { /* from row 0, then from v0 (a slab's first row) */
            memset(c[0], 0, (size_t)n * ldc * 4), memset(c[1], 0, (size_t)n * ldc * 4);
            kern_gemm_bf16(packed, m, K, rows + v, n - v, c[0], ldc);
            kern_gemm_bf16_tiles(packed, m, K, tiles + kern_row_tiles_size(v, K), n - v, c[1], ldc);
            for (int j = 0; j < n - v; j++)
                for (int i = 0; i < kern_padded(m); i++) bad_sums += !bits_equal(c[0][(size_t)j * ldc + i], c[1][(size_t)j * ldc + i]);
            if (!v0) break;
        }
        memset(back, 0xff, (size_t)n * K * 2);
        amx_unpack_row_tiles(tiles, n, K, back);
        bad_rows += memcmp(back, h, (size_t)n * K * 2) != 0;
        free(x), free(h), free(back), free(packed), free(tiles), free(c[0]), free(c[1]), free(rows);
    }
    CHECK(bad_rows == 0, "%s row tiles: %d shapes do not unpack to their rows", set(), bad_rows);
    CHECK(bad_sums == 0, "%s row tiles: %d sums differ from the rows' product", set(), bad_sums);
}

static void test_bf16_rounding(void) {
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        { 0x3f800000u, 0x3f80 }, /* 1 */
        { 0x3f808000u, 0x3f80 }, /* a tie, to even */
        { 0x3f818000u, 0x3f82 }, /* a tie, to even (up) */
        { 0x3f808001u, 0x3f81 }, /* above the tie */
        { 0x7f7fffffu, 0x7f80 }, /* FLT_MAX rounds to infinity */
        { 0xff800000u, 0xff80 }, /* -inf */
        { 0x7fc00001u, 0x7fc0 }, /* NaN stays NaN */
        { 0x7f800001u, 0x7fc0 }, /* a signalling NaN becomes quiet, not infinity */
        { 0x00000001u, 0x0000 }, /* the smallest subnormal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float f;
        memcpy(&f, &cases[i].in, 4);
        CHECK(kern_bf16(f) == cases[i].out, "bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, kern_bf16(f), cases[i].out);
    }
}

/* Every element where it belongs, in shapes of whole 16 × 16 blocks and
 * edges in either direction (the AVX-512 form moves whole blocks). */
static void test_transpose(void) {
    static const int shapes[][3] = { { 37, 21, 40 }, { 64, 48, 64 }, { 70, 45, 64 }, { 16, 16, 16 } };
    float c[70 * 64], out[70 * 64];
    for (int s = 0; s < 4; s++) {
        int nv = shapes[s][0], m = shapes[s][1], ldc = shapes[s][2], bad = 0;
        for (int i = 0; i < nv * ldc; i++) c[i] = (float)i;
        kern_transpose(c, nv, m, ldc, out);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < nv; j++) bad += out[i * nv + j] != c[j * ldc + i];
        CHECK(bad == 0, "%s transpose %dx%d: %d wrong", set(), nv, m, bad);
    }
}

/* The row scan: kern_sum_exp's terms within KERN_EXP_ERROR of e^t over
 * the whole range it serves; kern_max and kern_flag the same in both
 * instruction sets. */
static void test_scan(void) {
    double worst = 0;
    for (double t = -103.0; t <= 0; t += 1.0 / 1024 + 1e-7) {
        float x = (float)t;
        double got = kern_sum_exp(&x, 1, 0.0f), want = exp((double)x);
        /* relative above FLT_MIN (a tile's sum is ≥ 1: its maximum's term);
         * below, subnormal or flushed, within 2⁻¹²⁶ */
        worst = fmax(worst, want >= 0x1p-126 ? fabs(got - want) / want : fabs(got - want) > 0x1p-126);
    }
    printf("%s exp: worst relative error %.3g over [-103, 0]\n", set(), worst);
    CHECK(worst <= KERN_EXP_ERROR, "%s exp: relative error %.3g > %.3g", set(), worst, KERN_EXP_ERROR);
    float row[53], rn[53], rr[53];
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + trial % 53;
        for (int j = 0; j < n; j++) row[j] = frand() * 10, rn[j] = fabsf(frand()), rr[j] = fabsf(frand()) * 0.01f;
        float m = kern_max(row, n), m_ref = row[0];
        for (int j = 1; j < n; j++) m_ref = row[j] > m_ref ? row[j] : m_ref;
        bad += m != m_ref;
        double s = kern_sum_exp(row, n, m), s_ref = 0;
        for (int j = 0; j < n; j++) s_ref += exp((double)(row[j] - m));
        bad += fabs(s - s_ref) > 2 * KERN_EXP_ERROR * s_ref;
        int idx[53], want[53], got = kern_flag(row, n, trial % 2 ? rn : NULL, rr, 0.3f, 2.0f, 1e-6f, 6.0f, -7.0f, idx), nw = 0;
        for (int j = 0; j < n; j++) {
            float b = trial % 2 ? rn[j] * 0.3f + rr[j] * 2.0f + 1e-6f : 0.0f;
            if (row[j] + b >= 6.0f || row[j] - b <= -7.0f) want[nw++] = j;
        }
        bad += got != nw || memcmp(idx, want, (size_t)nw * sizeof *idx) != 0;
    }
    CHECK(bad == 0, "%s row scan: %d of 600 results wrong", set(), bad);
}

/* kern_scan_cols against a column-by-column reference written here: the
 * maximum as max_c takes it, the flags by the bound's formula, the sum of
 * e^(x − max) in double within the exp's error. Padded columns (thresholds
 * ±inf) are never flagged. */
static void test_scan_cols(void) {
    enum { NV = 70, M = 48, LDC = 53 };
    float c[NV * LDC], rn[NV], rr[NV], par[5][M], max[M];
    double sum[M];
    uint32_t hit_row[M / 16 * NV];
    uint16_t hit_mask[M / 16 * NV];
    int n_hits[M / 16], bad = 0;
    for (int trial = 0; trial < 20; trial++) {
        int nv = 1 + trial * 7 % NV;
        for (int i = 0; i < nv * LDC; i++) c[i] = frand() * 10;
        for (int v = 0; v < nv; v++) rn[v] = fabsf(frand()), rr[v] = fabsf(frand()) * 0.01f;
        for (int i = 0; i < M; i++) {
            par[0][i] = fabsf(frand()), par[1][i] = fabsf(frand()) * 2, par[2][i] = 1e-6f;
            par[3][i] = i >= 40 ? INFINITY : 5 + frand(), par[4][i] = i >= 40 ? -INFINITY : -5 + frand();
        }
        KernBounds kb = { par[0], par[1], par[2], par[3], par[4] };
        kern_scan_cols(c, nv, M, LDC, rn, rr, &kb, max, sum, hit_row, hit_mask, n_hits);
        for (int i = 0; i < M; i++) {
            float m = c[i];
            for (int v = 1; v < nv; v++) m = c[v * LDC + i] > m ? c[v * LDC + i] : m;
            double s = 0;
            for (int v = 0; v < nv; v++) s += exp((double)(c[v * LDC + i] - m));
            bad += max[i] != m || fabs(sum[i] - s) > 2 * KERN_EXP_ERROR * s;
        }
        for (int g = 0; g < M / 16; g++) {
            int h = 0;
            for (int v = 0; v < nv; v++) {
                unsigned mask = 0;
                for (int l = 0; l < 16; l++) {
                    int i = 16 * g + l;
                    float x = c[v * LDC + i], b = rn[v] * par[0][i] + rr[v] * par[1][i] + par[2][i];
                    if (x + b >= par[3][i] || x - b <= par[4][i]) mask |= 1u << l;
                }
                if (!mask) continue;
                bad += h >= n_hits[g] || hit_row[g * nv + h] != (uint32_t)v || hit_mask[g * nv + h] != mask;
                h++;
            }
            bad += h != n_hits[g];
        }
    }
    CHECK(bad == 0, "%s column scan: %d results wrong", set(), bad);
}

/* What the sets promise each other beyond their own references: the AVX2
 * exp is the AVX-512 one's steps, so the same bits; the AVX2 BF16 kernel
 * emulates the instruction's roundings with FMAs on exact products, so the
 * portable C's bits (no underflow in these values). */
static void test_sets_agree(void) {
    Error e = { 0 };
    if (!cpu_has_isa(ISA_AVX2)) return;
    int bad_exp = 0, bad_bf16 = 0;
    for (double t = -103.0; t <= 0; t += 1.0 / 256 + 1e-7) {
        float x = (float)t;
        double got[ISA_AVX512 + 1];
        for (int s = ISA_AVX2; s <= ISA_AVX512 && cpu_has_isa((Isa)s); s++) {
            cpu_force_isa((Isa)s, &e);
            got[s] = kern_sum_exp(&x, 1, 0.0f);
            bad_exp += s > ISA_AVX2 && got[s] != got[ISA_AVX2];
        }
    }
    int m = 45, n = 13, K = 130, ldc = kern_padded(m);
    uint16_t *x = malloc((size_t)m * K * 2), *h = malloc((size_t)n * K * 2), *packed = malloc((size_t)ldc * K * 2);
    float *c[2] = { malloc((size_t)n * ldc * 4), malloc((size_t)n * ldc * 4) };
    const uint16_t **rows = malloc((size_t)n * sizeof *rows);
    for (size_t i = 0; i < (size_t)m * K; i++) x[i] = kern_bf16(frand());
    for (size_t i = 0; i < (size_t)n * K; i++) h[i] = kern_bf16(frand() * 3);
    for (int j = 0; j < n; j++) rows[j] = h + (size_t)j * K;
    kern_pack_bf16(x, m, K, packed);
    for (int s = 0; s < 2; s++) {
        cpu_force_isa(s ? ISA_AVX2 : ISA_GENERIC, &e);
        kern_gemm_bf16(packed, m, K, rows, n, c[s], ldc);
    }
    for (int i = 0; i < n * ldc; i++) bad_bf16 += !bits_equal(c[0][i], c[1][i]);
    free(x), free(h), free(packed), free(c[0]), free(c[1]), free(rows);
    cpu_force_isa(cpu_best_isa(), &e);
    CHECK(bad_exp == 0, "exp: avx2 and avx512 differ at %d points", bad_exp);
    CHECK(bad_bf16 == 0, "BF16 kernel: avx2 and generic differ in %d elements", bad_bf16);
}

int main(void) {
    char have[96];
    Error e = { 0 };
    printf("kernel sets here: %s\n", cpu_isa_list(have, sizeof have));
    for (int s = 0; s < ISA_COUNT; s++) {
        if (cpu_force_isa((Isa)s, &e)) {
            printf("kernel set %s: skipped (%s)\n", isa_name((Isa)s), e.msg);
            continue;
        }
        test_f32_chain();
        test_f32_bands();
        test_bf16_bound();
        test_row_tiles();
        test_scan();
        test_scan_cols();
        test_dot_rows();
        test_transpose();
        printf("kernel set %s: tested\n", set());
    }
    cpu_force_isa(cpu_best_isa(), &e);
    test_sets_agree();
    test_bf16_rounding();
    return check_summary("test_kernels");
}
