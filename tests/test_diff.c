/* test_diff.c — the checkpoint comparison against answers known in advance:
 * the two measures on hand-worked lists; a model against itself; a copy of
 * stories260K with exactly p% of its up rows replaced by random ones, whose
 * agreement this test computes on its own (its own reader of the llama2.c
 * file, its own double-precision decode); read-vs-write agreement the same
 * way; the real base/fine-tune pair stories260K-dogs against the counts its
 * README gives; and refusals of checkpoints that cannot be compared. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ref_l2c.h"
#include "formats/registry.h"
#include "report/diff.h"

/* ----------------------------------------------------------------------------
 * The measures on lists worked out by hand */

static void lists(LensToken *t, const int *ids, int k) {
    for (int i = 0; i < k; i++) t[i] = (LensToken){ .id = ids[i] };
}

static void test_measures(void) {
    LensToken a[4], b[4];
    struct { int k, a[4], b[4]; double jaccard, spearman; } cases[] = {
        { 3, { 1, 2, 3 }, { 1, 2, 3 }, 1.0, 1.0 },
        { 3, { 1, 2, 3 }, { 3, 2, 1 }, 1.0, -1.0 },
        /* union {1,2,3,4}: a ranks 1 2 3 4, b ranks 1 2 4 3 (3 missing from b: mid-rank of place 4) */
        { 3, { 1, 2, 3 }, { 1, 2, 4 }, 0.5, 0.8 },
        /* disjoint: the missing pair shares mid-rank 3.5: ρ = -4 / 4.5 */
        { 2, { 1, 2 }, { 3, 4 }, 0.0, -4.0 / 4.5 },
        { 1, { 7 }, { 7 }, 1.0, 1.0 },
        { 1, { 7 }, { 8 }, 0.0, -1.0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lists(a, cases[i].a, cases[i].k);
        lists(b, cases[i].b, cases[i].k);
        double j = diff_jaccard(a, b, cases[i].k), s = diff_spearman(a, b, cases[i].k);
        CHECK(fabs(j - cases[i].jaccard) < 1e-12, "case %zu: jaccard %g, want %g", i, j, cases[i].jaccard);
        CHECK(fabs(s - cases[i].spearman) < 1e-12, "case %zu: spearman %g, want %g", i, s, cases[i].spearman);
        CHECK(fabs(diff_spearman(b, a, cases[i].k) - s) < 1e-12, "case %zu: spearman is symmetric", i);
    }
}

/* ----------------------------------------------------------------------------
 * The reference: a llama2.c checkpoint as one array of floats */

static int ref_save(const Ref *r, const char *path) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(r->hdr, 4, 7, f) == 7 && fwrite(r->all, 4, r->n_floats, f) == r->n_floats;
    if (f) ok &= fclose(f) == 0;
    return ok;
}

/* Top-1 token of E · (g ⊙ w / rms(w)) in double, and its margin over the second. */
static int ref_top1(const Ref *r, MatrixKind k, int layer, int n, double *margin) {
    double w[4096], ss = 0, best = -INFINITY, second = -INFINITY;
    int d = r->dim, top = -1;
    ref_vector(r, k, layer, n, w);
    for (int i = 0; i < d; i++) ss += w[i] * w[i];
    double inv = 1.0 / sqrt(ss / d + 1e-5);
    for (int v = 0; v < r->vocab; v++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)r->emb[(size_t)v * d + i] * r->rms_final[i] * w[i] * inv;
        if (s > best) second = best, best = s, top = v;
        else if (s > second) second = s;
    }
    *margin = best - second;
    return top;
}

/* ----------------------------------------------------------------------------
 * Running diff through the library */

static const char *tok_path(void) { return shared_path("models/stories260K/tok512.bin"); }

typedef struct {
    int n;
    int same[3][8][256]; /* [matrix][layer][neuron]: top-1 equal */
    int top[3][8][256];  /* [matrix][layer][neuron]: A's top-1 token */
} Seen;

static void remember(void *ctx, const DiffNeuron *d) {
    Seen *s = ctx;
    s->n++;
    s->same[d->pair.a][d->layer][d->neuron] = d->a.id == d->b.id;
    s->top[d->pair.a][d->layer][d->neuron] = d->a.id;
}

static int run_diff(const char *pa, const char *pb, const char *tok_b, DiffOptions o, DiffReport *r, Seen *seen) {
    DiffSource a, b;
    Error e = { 0 };
    if (diff_source_open(&a, pa, tok_path(), &e)) return fprintf(stderr, "%s\n", e.msg), 0;
    if (pb && diff_source_open(&b, pb, tok_b ? tok_b : tok_path(), &e)) return fprintf(stderr, "%s\n", e.msg), diff_source_close(&a), 0;
    DiffSource *bp = pb ? &b : &a;
    int ok = diff_prepare(&a, bp, &o, &e) == NM_OK && diff_run(&a, bp, &o, r, seen ? remember : NULL, seen, &e) == NM_OK;
    if (!ok) fprintf(stderr, "diff: %s\n", e.msg);
    if (pb) diff_source_close(&b);
    diff_source_close(&a);
    return ok;
}

static DiffOptions options(unsigned mask) {
    DiffOptions o = { .layer1 = -1, .limit = 10, .threads = 2 };
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
        if (mask & (1u << k)) o.pair[o.n_pairs++] = (DiffPair){ (MatrixKind)k, (MatrixKind)k };
    return o;
}

/* A model against itself is a sanity check only (both sides run the same
 * code, so 100% agreement proves little): the evidence is that every top-1
 * token it compared is the independent double-precision decode's, except
 * near-ties (margin < 2e-5) that FP32 may order either way. */
static void test_self(const char *bin) {
    DiffReport r;
    Seen *seen = calloc(1, sizeof *seen);
    CHECK(run_diff(bin, bin, NULL, options(7), &r, seen), "self diff runs");
    CHECK(r.total.n == 3 * 5 * 172 && seen->n == 3 * 5 * 172, "every neuron compared: %lld", (long long)r.total.n);
    CHECK(r.total.same == r.total.n, "a model against itself: 100%% top-1 (%lld of %lld)", (long long)r.total.same, (long long)r.total.n);
    CHECK(fabs(diff_mean(r.total.jaccard, &r.total) - 1) < 1e-12, "self: Jaccard 1");
    CHECK(fabs(diff_mean(r.total.spearman, &r.total) - 1) < 1e-12, "self: Spearman 1");
    CHECK(r.n_listed == 0, "self: nothing changed (%d listed)", r.n_listed);
    CHECK(r.opt.top_k == 10 && r.opt.norm == NORM_FULL, "defaults: top-10, norm full");
    for (int p = 0; p < 3; p++)
        for (int l = 0; l < 5; l++) CHECK(r.per_layer[p * 5 + l].same == 172, "self: layer %d all agree", l);
    Ref ref;
    CHECK(ref_load(&ref, bin), "reference reads %s", bin);
    int wrong = 0, ties = 0;
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < 5; l++)
            for (int n = 0; n < 172; n++) {
                double margin;
                int want = ref_top1(&ref, (MatrixKind)k, l, n, &margin);
                if (margin < 2e-5) ties++;
                else if (seen->top[k][l][n] != want) wrong++;
            }
    CHECK(wrong == 0, "self: %d of 2580 top-1 tokens differ from the double-precision reference (%d near-ties skipped)", wrong, ties);
    free(ref.all);
    diff_report_free(&r);
    free(seen);
}

/* Exactly p% of the up rows replaced by random ones: the agreement is what
 * the reference says about each replaced row (an unchanged row agrees). */
static void test_replaced_rows(const char *bin, int percent) {
    Ref base, mod;
    CHECK(ref_load(&base, bin) && ref_load(&mod, bin), "reference reads %s", bin);
    int total = base.layers * base.hidden, n_replace = (total * percent + 50) / 100;
    /* A fixed-seed shuffle picks exactly n_replace rows. */
    int *order = malloc((size_t)total * sizeof *order);
    for (int i = 0; i < total; i++) order[i] = i;
    uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)percent;
    for (int i = total - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int j = (int)(x % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    char *replaced = calloc((size_t)total, 1);
    for (int i = 0; i < n_replace; i++) {
        int row = order[i];
        replaced[row] = 1;
        float *w = mod.w3 + (size_t)row * base.dim;
        for (int d = 0; d < base.dim; d++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            w[d] = (float)((double)(x >> 11) / 9007199254740992.0 * 2 - 1) * 0.1f;
        }
    }
    char path[] = "/tmp/test_diff_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(fd >= 0 && ref_save(&mod, path), "writes the modified checkpoint");

    int expect = 0, near_ties = 0;
    char *expect_same = calloc((size_t)total, 1);
    for (int row = 0; row < total; row++) {
        double m1 = 1, m2 = 1;
        int l = row / base.hidden, n = row % base.hidden;
        int same = !replaced[row] || ref_top1(&base, MATRIX_UP, l, n, &m1) == ref_top1(&mod, MATRIX_UP, l, n, &m2);
        near_ties += m1 < 1e-5 || m2 < 1e-5;
        expect_same[row] = (char)same;
        expect += same;
    }
    DiffReport r;
    Seen *seen = calloc(1, sizeof *seen);
    CHECK(run_diff(bin, path, NULL, options(1u << MATRIX_UP), &r, seen), "diff against the modified copy runs");
    int mismatched = 0;
    for (int row = 0; row < total; row++) mismatched += seen->same[MATRIX_UP][row / base.hidden][row % base.hidden] != expect_same[row];
    CHECK(mismatched <= near_ties, "%d%% replaced: %d neurons disagree with the reference (%d near-ties)", percent, mismatched, near_ties);
    CHECK(llabs(r.total.same - expect) <= near_ties, "%d%% replaced: %lld agree, the reference says %d of %d", percent,
          (long long)r.total.same, expect, total);
    printf("replaced %d%% (%d of %d up rows): diff %lld agree, reference %d (%.2f%%)\n", percent, n_replace, total,
           (long long)r.total.same, expect, 100.0 * expect / total);
    /* the listed neurons all changed; by falling (1 - Jaccard) x the smaller top-1 probability */
    for (int i = 0; i < r.n_listed; i++) {
        const DiffNeuron *d = &r.listed[i], *p = &r.listed[i ? i - 1 : 0];
        CHECK(d->a.id != d->b.id, "listed neuron %d changed its top-1", i);
        CHECK(fmin(p->a.prob, p->b.prob) * (1 - p->jaccard) >= fmin(d->a.prob, d->b.prob) * (1 - d->jaccard), "listing order");
        CHECK(replaced[d->layer * base.hidden + d->neuron], "listed neuron %d:%d is a replaced row", d->layer, d->neuron);
    }
    diff_report_free(&r);
    unlink(path);
    free(seen);
    free(order);
    free(replaced);
    free(expect_same);
    free(base.all);
    free(mod.all);
}

/* Up row against down column of the same neuron, within one model. */
static void test_read_write(const char *bin) {
    Ref ref;
    CHECK(ref_load(&ref, bin), "reference reads %s", bin);
    int expect = 0, near_ties = 0, per_layer[8] = { 0 };
    for (int l = 0; l < ref.layers; l++)
        for (int n = 0; n < ref.hidden; n++) {
            double m1, m2;
            int same = ref_top1(&ref, MATRIX_UP, l, n, &m1) == ref_top1(&ref, MATRIX_DOWN, l, n, &m2);
            near_ties += m1 < 1e-5 || m2 < 1e-5;
            expect += same;
            per_layer[l] += same;
        }
    DiffOptions o = options(0);
    o.pair[o.n_pairs++] = (DiffPair){ MATRIX_UP, MATRIX_DOWN };
    o.read_write = 1;
    DiffReport r;
    CHECK(run_diff(bin, NULL, NULL, o, &r, NULL), "read vs write runs");
    CHECK(llabs(r.total.same - expect) <= near_ties, "up/down: %lld read and write the same token, the reference says %d",
          (long long)r.total.same, expect);
    for (int l = 0; l < ref.layers; l++)
        CHECK(llabs(r.per_layer[l].same - per_layer[l]) <= near_ties, "up/down layer %d: %lld, reference %d", l,
              (long long)r.per_layer[l].same, per_layer[l]);
    printf("read vs write (up/down): %lld of %lld (reference %d)\n", (long long)r.total.same, (long long)r.total.n, expect);
    CHECK(r.n_listed == (expect < 10 ? expect : 10), "lists the agreeing neurons (%d)", r.n_listed);
    for (int i = 0; i < r.n_listed; i++) {
        const DiffNeuron *d = &r.listed[i];
        CHECK(d->a.id == d->b.id, "listed neuron %d:%d reads and writes one token", d->layer, d->neuron);
        if (i) {
            const DiffNeuron *p = &r.listed[i - 1];
            CHECK(fminf(p->a.prob, p->b.prob) >= fminf(d->a.prob, d->b.prob), "strongest first");
        }
    }
    diff_report_free(&r);
    free(ref.all);
}

/* stories260K-dogs/README.md: float64 counts per layer; gate layer 0 is 151
 * in float32. Within ±2 neurons, for near-ties. */
static void test_dogs(const char *bin) {
    static const int want[3][5] = { { 157, 156, 158, 146, 138 }, { 152, 150, 147, 148, 151 }, { 149, 144, 147, 150, 152 } };
    static const int want_total[3] = { 755, 748, 742 };
    DiffReport r;
    CHECK(run_diff(bin, shared_path("models/stories260K-dogs/stories260K-dogs.bin"), NULL, options(7), &r, NULL), "dogs diff runs");
    for (int p = 0; p < 3 && r.per_layer; p++) {
        CHECK(llabs(r.per_pair[p].same - want_total[p]) <= 2, "dogs %s: %lld of 860 agree, README %d", matrix_name((MatrixKind)p),
              (long long)r.per_pair[p].same, want_total[p]);
        for (int l = 0; l < 5; l++)
            CHECK(llabs(r.per_layer[p * 5 + l].same - want[p][l]) <= 2, "dogs %s layer %d: %lld, README %d",
                  matrix_name((MatrixKind)p), l, (long long)r.per_layer[p * 5 + l].same, want[p][l]);
    }
    CHECK(r.n_listed == 10, "dogs: the 10 most changed are listed");
    diff_report_free(&r);
}

/* ----------------------------------------------------------------------------
 * Refusals */

static void test_refusals(const char *bin) {
    Error e = { 0 };
    DiffSource a, b;
    /* another vocabulary: tok512.bin with one piece changed */
    char *buf;
    size_t len;
    CHECK(read_file(tok_path(), 1 << 20, &buf, &len, &e) == NM_OK, "reads tok512.bin");
    char *hit = memmem(buf, len, " Lily", 5);
    CHECK(hit != NULL, "tok512.bin has \" Lily\"");
    if (hit) hit[1] = 'M';
    char path[] = "/tmp/test_diff_tok_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len, "writes the changed tokenizer");
    if (fd >= 0) close(fd);
    free(buf);
    ModelOpenOptions mo = { .tokenizer_path = path, .need_weights = 1 };
    CHECK(diff_source_open(&a, bin, tok_path(), &e) == NM_OK, "opens A");
    memset(&b, 0, sizeof b);
    CHECK(model_open(&b.m, bin, &mo, &e) == NM_OK, "opens B with the changed tokenizer");
    b.path = "B", b.n_layers = a.n_layers, b.dim = a.dim, b.ffn_dim = a.ffn_dim, b.vocab_size = a.vocab_size;
    b.names = lens_vocab_names(&b.m.vocab);
    int lily = lens_find_token(&a.names, " Lily", 5);
    char want[64];
    snprintf(want, sizeof want, "token %d is \" Lily\" in the first, \" Mily\"", lily);
    CHECK(diff_check_compatible(&a, &b, &e) == NM_EINPUT && strstr(e.msg, want), "names the first differing token: %s", e.msg);
    /* other shapes */
    b.ffn_dim = 14336;
    CHECK(diff_check_compatible(&a, &b, &e) == NM_EINPUT && strstr(e.msg, "neurons per layer (172 against 14336)"), "%s", e.msg);
    b.vocab_size = 128256;
    CHECK(diff_check_compatible(&a, &b, &e) == NM_EINPUT && strstr(e.msg, "vocabulary size (512 against 128256)"), "%s", e.msg);
    diff_source_close(&b);
    diff_source_close(&a);
    unlink(path);
    /* options a model cannot satisfy */
    CHECK(diff_source_open(&a, bin, tok_path(), &e) == NM_OK, "opens A");
    DiffOptions o = options(1);
    o.top_k = 513;
    CHECK(diff_prepare(&a, &a, &o, &e) == NM_EINPUT && strstr(e.msg, "at most"), "top-k beyond the vocabulary: %s", e.msg);
    o = options(1);
    o.layer0 = 2, o.layer1 = 7;
    CHECK(diff_prepare(&a, &a, &o, &e) == NM_EINPUT && strstr(e.msg, "outside 0-4"), "layers outside: %s", e.msg);
    diff_source_close(&a);
}

int main(void) {
    /* shared_path's buffers rotate: keep a copy */
    char bin[4096];
    snprintf(bin, sizeof bin, "%s", shared_path("models/stories260K/stories260K.bin"));
    test_measures();
    test_self(bin);
    test_replaced_rows(bin, 25);
    test_replaced_rows(bin, 60);
    test_read_write(bin);
    test_dogs(bin);
    test_refusals(bin);
    return check_summary("test_diff");
}
