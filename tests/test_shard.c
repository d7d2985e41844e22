/* test_shard.c — the split of store/shard.c, against its definition rather
 * than its code: over many shapes (matrices, layers, neurons) and shard
 * counts N, the shards of one split
 *   - cover every neuron of the set exactly once (a bitmap, filled by all);
 *   - with N ≤ units, hand out whole (layer, matrix) units, each shard a
 *     contiguous run of units in layer order, the sizes differing by at most one;
 *   - with N > units, cut units only at multiples of SHARD_CHUNK from the
 *     range's start, each shard inside one unit;
 *   - come in map's order (matrix, layer, neuron);
 * and I/N is parsed as documented. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/shard.h"

static void check_split(unsigned mask, int l0, int l1, int n0, int n1, int n) {
    int kinds = __builtin_popcount(mask), units = kinds * (l1 - l0 + 1), per = n1 - n0 + 1;
    unsigned char *seen = calloc((size_t)3 * (l1 + 1) * (n1 + 1), 1);
    NeuronRange *r = malloc((size_t)3 * (l1 - l0 + 1) * sizeof *r);
    int bad = 0, min_units = 1 << 30, max_units = 0, last_unit = -1;
    for (int i = 0; i < n; i++) {
        int got = shard_ranges(mask, l0, l1, n0, n1, i, n, r);
        int lo_unit = 1 << 30, hi_unit = -1;
        for (int j = 0; j < got; j++) {
            if (!(mask & (1u << r[j].matrix)) || r[j].layer < l0 || r[j].layer > l1 || r[j].first < n0 ||
                r[j].count < 1 || r[j].first + r[j].count - 1 > n1)
                bad++;
            if (j && (r[j].matrix < r[j - 1].matrix || (r[j].matrix == r[j - 1].matrix && r[j].layer <= r[j - 1].layer)))
                bad++; /* map's order */
            if (n <= units && (r[j].first != n0 || r[j].count != per)) bad++; /* whole units */
            if (n > units && ((r[j].first - n0) % SHARD_CHUNK || (r[j].first + r[j].count - 1 != n1 && r[j].count % SHARD_CHUNK)))
                bad++; /* cut between chunks */
            /* The unit's index in layer order: layer, then the matrix's rank among those chosen. */
            int u = (r[j].layer - l0) * kinds + __builtin_popcount(mask & ((1u << r[j].matrix) - 1));
            lo_unit = u < lo_unit ? u : lo_unit, hi_unit = u > hi_unit ? u : hi_unit;
            for (int x = r[j].first; x < r[j].first + r[j].count; x++) {
                size_t at = ((size_t)r[j].matrix * (l1 + 1) + r[j].layer) * (n1 + 1) + x;
                if (seen[at]++) bad++; /* overlap */
            }
        }
        if (got && hi_unit - lo_unit + 1 != (n <= units ? got : 1)) bad++; /* contiguous units; one unit when cut */
        if (got && lo_unit < last_unit) bad++; /* shards follow one another in layer order */
        if (got) last_unit = hi_unit;
        if (n <= units) {
            min_units = got < min_units ? got : min_units;
            max_units = got > max_units ? got : max_units;
        }
    }
    int64_t covered = 0;
    for (int k = 0; k < 3; k++)
        for (int l = l0; l <= l1; l++)
            for (int x = n0; x <= n1; x++) covered += seen[((size_t)k * (l1 + 1) + l) * (n1 + 1) + x] == 1 && (mask & (1u << k));
    CHECK(!bad, "mask %u layers %d-%d neurons %d-%d, %d shards: %d violations", mask, l0, l1, n0, n1, n, bad);
    CHECK(covered == (int64_t)units * per, "mask %u layers %d-%d neurons %d-%d, %d shards: %lld of %lld neurons covered", mask, l0,
          l1, n0, n1, n, (long long)covered, (long long)units * per);
    if (n <= units) CHECK(max_units - min_units <= 1, "%d shards of %d units: %d to %d units each", n, units, min_units, max_units);
    free(seen);
    free(r);
}

int main(void) {
    /* stories260K (5 layers × 172), an 8B-like layer (14,336: 14 chunks), odd offsets */
    static const unsigned masks[] = { 1, 2, 4, 5, 7 };
    static const int shapes[][4] = { { 0, 4, 0, 171 }, { 0, 0, 0, 14335 }, { 2, 4, 100, 3100 }, { 0, 1, 0, 1023 }, { 3, 3, 5, 5 } };
    static const int ns[] = { 1, 2, 3, 4, 5, 7, 15, 16, 29, 64 };
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
                check_split(masks[m], shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], ns[k]);

    /* One process is the whole set, in map's order: up 0..4, then down 0..4. */
    NeuronRange r[15];
    int got = shard_ranges(5, 0, 4, 0, 171, 0, 1, r);
    CHECK(got == 10 && r[0].matrix == MATRIX_UP && r[4].layer == 4 && r[5].matrix == MATRIX_DOWN && r[5].layer == 0,
          "0/1: %d ranges, whole set in map's order", got);
    /* 2 of --matrix all over 5 layers: units 0..6 (up0 gate0 down0 … up2) and 7..14 */
    got = shard_ranges(7, 0, 4, 0, 171, 1, 2, r);
    CHECK(got == 8 && r[0].matrix == MATRIX_UP && r[0].layer == 3 && r[2].matrix == MATRIX_GATE && r[2].layer == 2,
          "1/2 of all: gate 2, down 2, then layers 3 and 4 (got %d ranges, first up %d)", got, r[0].layer);

    Error e = { 0 };
    int i, n;
    CHECK(shard_parse("3/8", &i, &n, &e) == NM_OK && i == 3 && n == 8, "3/8");
    CHECK(shard_parse("0/1", &i, &n, &e) == NM_OK && i == 0 && n == 1, "0/1");
    static const char *const bad[] = { "8/8", "-1/4", "1/0", "a/4", "1/", "/4", "1/4x", "1", "", "1/1000001" };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) CHECK(shard_parse(bad[k], &i, &n, &e) == NM_EINPUT, "'%s' refused", bad[k]);
    return check_summary("test_shard");
}
