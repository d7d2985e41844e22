/* shard.c — the split of a map into N shards (shard.h says how and why). */
#include "store/shard.h"

#include <stdio.h>
#include <stdlib.h>

int shard_parse(const char *s, int *i, int *n, Error *e) {
    long a, b;
    char *end;
    a = strtol(s, &end, 10);
    if (end == s || *end != '/' || a < 0) goto bad;
    const char *t = end + 1;
    b = strtol(t, &end, 10);
    if (end == t || *end || b < 1 || b > 1000000 || a >= b) goto bad;
    *i = (int)a, *n = (int)b;
    return NM_OK;
bad:
    return error_set(e, NM_EINPUT, "'%s' is not I/N with 0 <= I < N (e.g. 0/4 is the first of four shards)", s);
}

/* floor(a * b / c) without overflow for the sizes here (all < 2^31). */
static int part(int64_t a, int64_t b, int64_t c) { return (int)(a * b / c); }

int shard_ranges(unsigned matrix_mask, int l0, int l1, int n0, int n1, int i, int n, NeuronRange *out) {
    int kinds[3], n_kinds = 0;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
        if (matrix_mask & (1u << k)) kinds[n_kinds++] = k;
    int units = n_kinds * (l1 - l0 + 1), per = n1 - n0 + 1, got = 0;
    if (units <= 0 || per <= 0 || n < 1 || i < 0 || i >= n) return 0;
    int u0, u1; /* the units shard i touches: [u0, u1) */
    if (n <= units) u0 = part(i, units, n), u1 = part(i + 1, units, n);
    else u0 = part(i, units, n), u1 = u0 + 1; /* the unit whose shards [u*n/units, (u+1)*n/units) hold i */
    for (int u = u0; u < u1; u++) {
        NeuronRange r = { (MatrixKind)kinds[u % n_kinds], l0 + u / n_kinds, n0, per };
        if (n > units) {
            /* Unit u is cut among shards s0..s1-1, at chunk boundaries. */
            int s0 = (int)(((int64_t)u * n + units - 1) / units), s1 = (int)(((int64_t)(u + 1) * n + units - 1) / units);
            int chunks = (per + SHARD_CHUNK - 1) / SHARD_CHUNK, j = i - s0, m = s1 - s0;
            int c0 = part(j, chunks, m), c1 = part(j + 1, chunks, m);
            int a = n0 + c0 * SHARD_CHUNK, b = n0 + c1 * SHARD_CHUNK;
            if (b > n1 + 1) b = n1 + 1;
            r.first = a, r.count = b > a ? b - a : 0;
        }
        if (r.count > 0) out[got++] = r;
    }
    /* Handed out in map's order (matrix, then layer), the order of map's
     * TSV and of export: one unit per layer here, so layers stay sorted. */
    for (int a = 1; a < got; a++)
        for (int b = a; b > 0 && out[b].matrix < out[b - 1].matrix; b--) {
            NeuronRange t = out[b];
            out[b] = out[b - 1], out[b - 1] = t;
        }
    return got;
}

int64_t shard_count(const NeuronRange *r, int n) {
    int64_t total = 0;
    for (int j = 0; j < n; j++) total += r[j].count;
    return total;
}
