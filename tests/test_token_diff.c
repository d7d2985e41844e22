/* test_token_diff.c — `diff A B --token` against a computation of its own:
 * this test reads stories260K and stories260K-dogs itself (the llama2.c
 * layout of models/README.md), decodes every neuron over the full
 * vocabulary in double precision (E · (g ⊙ w / rms(w))), and counts each
 * neuron's rank of the token and its softmax probability. The library's
 * every row must match, and its ranking must be the reference's order of
 * the signed change, for each of --by logit, prob and rank, and --reverse.
 * Also lens_token_in_row on rows worked out by hand. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ref_l2c.h"
#include "lens/find.h"
#include "report/token_diff.h"

/* ----------------------------------------------------------------------------
 * token_in_row by hand */

static void test_row(void) {
    float row[5] = { 1, 3, 2, 3, 0 };
    float x;
    int rank;
    double p, z = exp(1) + 2 * exp(3) + exp(2) + 1;
    CHECK(lens_token_in_row(row, 5, 2, &x, &rank, &p) && x == 2 && rank == 3 && fabs(p - exp(2) / z) < 1e-12,
          "token 2: logit 2, rank 3 (two 3s above), p %g want %g", p, exp(2) / z);
    CHECK(lens_token_in_row(row, 5, 3, &x, &rank, &p) && rank == 2, "token 3 ties token 1: the lower id ranks first (rank %d)", rank);
    CHECK(lens_token_in_row(row, 5, 1, &x, &rank, &p) && rank == 1, "token 1 is the top (rank %d)", rank);
    CHECK(lens_token_in_row(row, 5, 4, &x, &rank, &p) && rank == 5, "token 4 is the last (rank %d)", rank);
    row[0] = NAN;
    CHECK(!lens_token_in_row(row, 5, 2, &x, &rank, &p), "a NaN anywhere in the row: not compared");
}

/* ----------------------------------------------------------------------------
 * The reference */

typedef struct {
    double logit, prob;
    int rank;
    double near; /* the smallest |logit_v − logit| over v ≠ token: a near-tie can swap a rank */
} RefValue;

static RefValue ref_value(const Ref *r, MatrixKind k, int layer, int n, int token) {
    double w[512], *logit = calloc((size_t)r->vocab, sizeof *logit), ss = 0;
    size_t d = (size_t)r->dim;
    ref_vector(r, k, layer, n, w);
    for (size_t i = 0; i < d; i++) ss += w[i] * w[i];
    double inv = 1.0 / sqrt(ss / (double)d + 1e-5), max = -INFINITY, z = 0;
    for (int v = 0; v < r->vocab; v++) {
        double s = 0;
        for (size_t i = 0; i < d; i++) s += (double)r->emb[(size_t)v * d + i] * r->rms_final[i] * w[i] * inv;
        logit[v] = s;
        if (s > max) max = s;
    }
    RefValue out = { .logit = logit[token], .rank = 1, .near = INFINITY };
    for (int v = 0; v < r->vocab; v++) {
        z += exp(logit[v] - max);
        if (v == token) continue;
        if (logit[v] > logit[token]) out.rank++;
        if (fabs(logit[v] - logit[token]) < out.near) out.near = fabs(logit[v] - logit[token]);
    }
    out.prob = exp(logit[token] - max) / z;
    free(logit);
    return out;
}

/* ----------------------------------------------------------------------------
 * The library against it */

enum { TOKEN = 400 }; /* " do" in tok512 (the CLI test resolves the text) */

static double ref_delta(const RefValue *a, const RefValue *b, TokenDiffBy by) {
    return by == TOKEN_DIFF_BY_PROB ? b->prob - a->prob : by == TOKEN_DIFF_BY_RANK ? (double)a->rank - b->rank : b->logit - a->logit;
}

/* find --by prob|rank: the listed neurons are the reference's best, in its order. */
static void test_find_by(const char *pa, const RefValue *va, int L, int H) {
    DiffSource a;
    Error e = { 0 };
    if (diff_source_open(&a, pa, shared_path("models/stories260K/tok512.bin"), &e)) {
        SKIP(1, "%s: %s", pa, e.msg);
        return;
    }
    Lens lens;
    CHECK(lens_open(&lens, &a.m, NORM_FULL, 2, 0, &e) == NM_OK, "lens: %s", e.msg);
    enum { LIMIT = 12 };
    for (int by = LENS_BY_PROB; by <= LENS_BY_RANK; by++) {
        LensHit hits[LIMIT];
        int64_t nonfinite = 0;
        int n = lens_find_by(&lens, 7, TOKEN, LIMIT, 0, (LensFindBy)by, hits, &nonfinite, NULL, NULL);
        CHECK(n == LIMIT && nonfinite == 0, "find by %d: %d hits", by, n);
        /* the reference's key of the LIMIT-th best neuron: every listed one is at least that good */
        double *key = malloc((size_t)3 * L * H * sizeof *key);
        for (int i = 0; i < 3 * L * H; i++) key[i] = by == LENS_BY_PROB ? va[i].prob : -(double)va[i].rank;
        int bad = 0;
        for (int j = 0; j < n; j++) {
            int i = (hits[j].matrix * L + hits[j].layer) * H + hits[j].neuron;
            int above = 0; /* neurons the reference puts clearly above this one */
            for (int x = 0; x < 3 * L * H; x++) above += key[x] > key[i] + (by == LENS_BY_PROB ? 1e-5 * key[i] : 0.5);
            if (above > j) bad++, fprintf(stderr, "  by %d: hit %d (%s %d:%d) has %d neurons above it in the reference\n", by, j,
                                          matrix_name(hits[j].matrix), hits[j].layer, hits[j].neuron, above);
            if (fabs(hits[j].prob - va[i].prob) > 1e-4 * va[i].prob || (hits[j].rank != va[i].rank && va[i].near > 1e-4)) bad++;
        }
        CHECK(bad == 0, "find by %s: %d hits out of the reference's order or values", by == LENS_BY_PROB ? "prob" : "rank", bad);
        free(key);
    }
    lens_close(&lens);
    diff_source_close(&a);
}

static void test_models(const char *pa, const char *pb) {
    Ref ra, rb;
    if (!ref_load(&ra, pa) || !ref_load(&rb, pb) || ra.hdr[5] <= 0 || rb.hdr[5] <= 0) {
        SKIP(1, "stories260K or stories260K-dogs not found under %s", shared_dir());
        return;
    }
    int L = ra.layers, H = ra.hidden, total = 3 * L * H;
    RefValue *va = malloc((size_t)total * sizeof *va), *vb = malloc((size_t)total * sizeof *vb);
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < L; l++)
            for (int n = 0; n < H; n++) {
                int i = (k * L + l) * H + n;
                va[i] = ref_value(&ra, (MatrixKind)k, l, n, TOKEN);
                vb[i] = ref_value(&rb, (MatrixKind)k, l, n, TOKEN);
            }

    const char *tok = shared_path("models/stories260K/tok512.bin");
    for (int by = TOKEN_DIFF_BY_LOGIT; by <= TOKEN_DIFF_BY_RANK; by++) {
        for (int reverse = 0; reverse <= 1; reverse++) {
            DiffSource a, b;
            Error e = { 0 };
            CHECK(diff_source_open(&a, pa, tok, &e) == NM_OK && diff_source_open(&b, pb, tok, &e) == NM_OK, "opens: %s", e.msg);
            TokenDiffOptions o = { .token = TOKEN, .mask = 7, .layer1 = -1, .by = (TokenDiffBy)by, .reverse = reverse, .threads = 2 };
            TokenDiffReport r;
            int rc = token_diff_run(&a, &b, &o, &r, NULL, NULL, &e);
            CHECK(rc == NM_OK, "by %s: %s", token_diff_by_name(o.by), e.msg);
            if (rc) return;
            CHECK(r.n_rows == total && r.not_stored == 0 && r.nonfinite == 0, "every neuron compared: %lld of %d",
                  (long long)r.n_rows, total);
            int bad_value = 0, bad_order = 0, worst = -1;
            double sign = reverse ? -1 : 1;
            for (int64_t j = 0; j < r.n_rows; j++) {
                const TokenDiffRow *x = &r.rows[j];
                int i = (x->matrix * L + x->layer) * H + x->neuron;
                const RefValue *a_ = &va[i], *b_ = &vb[i];
                int ok = fabs(x->logit_a - a_->logit) < 1e-4 && fabs(x->logit_b - b_->logit) < 1e-4 &&
                         fabs(x->prob_a - a_->prob) <= 1e-4 * a_->prob && fabs(x->prob_b - b_->prob) <= 1e-4 * b_->prob &&
                         (x->rank_a == a_->rank || a_->near < 1e-4) && (x->rank_b == b_->rank || b_->near < 1e-4);
                if (!ok && bad_value++ < 3)
                    fprintf(stderr, "  %s %d:%d: library %g %g r%d r%d p%g p%g, reference %g %g r%d r%d p%g p%g\n",
                            matrix_name(x->matrix), x->layer, x->neuron, x->logit_a, x->logit_b, x->rank_a, x->rank_b,
                            x->prob_a, x->prob_b, a_->logit, b_->logit, a_->rank, b_->rank, a_->prob, b_->prob);
                /* the order: the reference's change never rises down the list (beyond float noise) */
                if (j > 0) {
                    const TokenDiffRow *p = &r.rows[j - 1];
                    int pi = (p->matrix * L + p->layer) * H + p->neuron;
                    double dp = sign * ref_delta(&va[pi], &vb[pi], o.by), dx = sign * ref_delta(a_, b_, o.by);
                    /* float logits: ~1e-6 relative in each probability */
                    double scale = va[pi].prob + vb[pi].prob + a_->prob + b_->prob;
                    double tol = o.by == TOKEN_DIFF_BY_RANK ? 0 : o.by == TOKEN_DIFF_BY_PROB ? 1e-5 * scale : 2e-4;
                    if (dx > dp + tol && bad_order++ < 3) fprintf(stderr, "  out of order at %lld: %g then %g\n", (long long)j, dp, dx);
                }
                if (j == 0) worst = i;
            }
            CHECK(bad_value == 0, "by %s%s: %d rows differ from the double-precision reference", token_diff_by_name(o.by),
                  reverse ? " reverse" : "", bad_value);
            CHECK(bad_order == 0, "by %s%s: %d rows out of the reference's order", token_diff_by_name(o.by),
                  reverse ? " reverse" : "", bad_order);
            /* the first row is the reference's extreme */
            double best = -INFINITY;
            for (int i = 0; i < total; i++) {
                double dx = sign * ref_delta(&va[i], &vb[i], o.by);
                if (dx > best) best = dx;
            }
            CHECK(worst >= 0 && sign * ref_delta(&va[worst], &vb[worst], o.by) >= best - (o.by == TOKEN_DIFF_BY_PROB ? 1e-9 : 2e-4),
                  "by %s%s: the first row holds the reference's largest change %g", token_diff_by_name(o.by),
                  reverse ? " reverse" : "", best);
            token_diff_free(&r);
            diff_source_close(&a);
            diff_source_close(&b);
        }
    }
    test_find_by(pa, va, L, H);
    free(va);
    free(vb);
    free(ra.all);
    free(rb.all);
}

/* A model against itself: nothing changes; and the token out of range. */
static void test_self_and_refusals(const char *pa) {
    DiffSource a;
    Error e = { 0 };
    if (diff_source_open(&a, pa, shared_path("models/stories260K/tok512.bin"), &e)) {
        SKIP(2, "%s: %s", pa, e.msg);
        return;
    }
    TokenDiffOptions o = { .token = TOKEN, .mask = 1u << MATRIX_DOWN, .layer1 = -1, .threads = 1 };
    TokenDiffReport r;
    CHECK(token_diff_run(&a, &a, &o, &r, NULL, NULL, &e) == NM_OK && r.n_rows == a.n_layers * a.ffn_dim, "self: %s", e.msg);
    int moved = 0;
    for (int64_t j = 0; j < r.n_rows; j++) moved += r.rows[j].delta != 0 || r.rows[j].rank_a != r.rows[j].rank_b;
    CHECK(moved == 0, "self: %d neurons changed", moved);
    token_diff_free(&r);
    o.token = a.vocab_size;
    CHECK(token_diff_run(&a, &a, &o, &r, NULL, NULL, &e) == NM_EINPUT && strstr(e.msg, "outside the vocabulary"), "token %d: %s",
          o.token, e.msg);
    diff_source_close(&a);
}

int main(void) {
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s", shared_path("models/stories260K/stories260K.bin"));
    snprintf(pb, sizeof pb, "%s", shared_path("models/stories260K-dogs/stories260K-dogs.bin"));
    test_row();
    test_models(pa, pb);
    test_self_and_refusals(pa);
    return check_summary("test_token_diff");
}
