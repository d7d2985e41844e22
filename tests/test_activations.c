/* test_activations.c — the corpus run and trace against an independent
 * reference: a double-precision forward pass of stories260K written here
 * (not the product's forward code) over documents of the shared corpus,
 * with windows short enough that documents span several. The reference
 * keeps every activation; statistics, top/bottom examples, histogram, band
 * samples and trace's top neuron are then computed from them directly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ref_forward.h"
#include "formats/registry.h"
#include "infer/activations.h"
#include "infer/forward.h"
#include "model/model.h"
#include "report/agreement.h"
#include "text/tokenizer.h"

enum { N_DOCS = 6, WINDOW = 40, SPLIT_DOCS = 40 };

/* ----------------------------------------------------------------------------
 * The reference forward pass: Llama in double, one position at a time */

/* What ref_forward_mlp hands each MLP, recorded: acts[(l·n + t)·ffn + i],
 * gates and ups likewise. */
typedef struct {
    int n;
    double *acts, *gates, *ups;
} RefRecord;

static void ref_record_mlp(void *ctx, int l, int t, const double *g, double *u, int ffn) {
    RefRecord *rec = ctx;
    size_t at = ((size_t)l * rec->n + t) * ffn;
    for (int i = 0; i < ffn; i++) {
        rec->gates[at + i] = g[i];
        rec->ups[at + i] = u[i];
        rec->acts[at + i] = u[i] = g[i] / (1 + exp(-g[i])) * u[i];
    }
}

/* Every MLP value of ids[0..n), by the reference forward pass. */
static void ref_acts(const Model *m, const int *ids, int n, double *acts, double *gates, double *ups) {
    RefRecord rec = { n, acts, gates, ups };
    ref_forward_mlp(m, ids, n, ref_record_mlp, &rec, NULL);
}

/* ----------------------------------------------------------------------------
 * Every counted token of the first N_DOCS documents, with its reference values */

typedef struct {
    int doc, window, pos, token;
    double *act, *gate, *up; /* [layer · ffn + neuron] */
} RefToken;

static RefToken *ref_corpus(const Model *m, const ActCorpus *c, const Tokenizer *tok, int *n_out, int **doc_ids, int *doc_n) {
    int L = m->cfg.n_layers, ffn = m->cfg.ffn_dim, n = 0, cap = 0;
    RefToken *r = NULL;
    for (int d = 0; d < N_DOCS; d++) {
        Error e = { 0 };
        int rc = act_corpus_tokens(c, tok, d, &doc_ids[d], &doc_n[d], &e);
        CHECK(rc == 0, "%s", e.msg);
        for (int w = 0, s = 0; s < doc_n[d]; w++, s += WINDOW - 1) {
            int cnt = doc_n[d] - s < WINDOW - 1 ? doc_n[d] - s : WINDOW - 1, ids[WINDOW];
            ids[0] = m->vocab.bos_id;
            memcpy(ids + 1, doc_ids[d] + s, (size_t)cnt * sizeof *ids);
            size_t sz = (size_t)L * (cnt + 1) * ffn;
            double *A = malloc(sz * sizeof *A), *G = malloc(sz * sizeof *G), *U = malloc(sz * sizeof *U);
            ref_acts(m, ids, cnt + 1, A, G, U);
            for (int p = 1; p <= cnt; p++) {
                if (n == cap) r = realloc(r, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *r);
                RefToken *t = &r[n++];
                *t = (RefToken){ d, w, p, ids[p], malloc((size_t)L * ffn * sizeof(double)), malloc((size_t)L * ffn * sizeof(double)),
                                 malloc((size_t)L * ffn * sizeof(double)) };
                for (int l = 0; l < L; l++)
                    for (int i = 0; i < ffn; i++) {
                        size_t at = ((size_t)l * (cnt + 1) + p) * ffn + i;
                        t->act[l * ffn + i] = A[at];
                        t->gate[l * ffn + i] = G[at];
                        t->up[l * ffn + i] = U[at];
                    }
            }
            free(A); free(G); free(U);
        }
    }
    *n_out = n;
    return r;
}

static const RefToken *find_token(const RefToken *r, int n, int doc, int window, int pos) {
    for (int i = 0; i < n; i++)
        if (r[i].doc == doc && r[i].window == window && r[i].pos == pos) return &r[i];
    return NULL;
}

static int close_rel(double got, double want, double rel) { return fabs(got - want) <= rel * fmax(fabs(want), 1e-3); }

/* The histogram bin, written from the stated edges: 0, ±2^-10, ..., ±2^4. */
static int ref_bin(double a) {
    double m = fabs(a);
    int k = 0;
    while (k < 15 && m >= ldexp(1.0, k - 10)) k++; /* k = number of edges 2^-10..2^4 that m reaches */
    return a < 0 ? 15 - k : 16 + k;
}

/* ----------------------------------------------------------------------------
 * The run against the reference */

static void run_all(const Model *m, const ActCorpus *c, const Tokenizer *tok, int threads, int l0, int l1, ActRun *r) {
    Error e = { 0 };
    Forward *f;
    int rc = act_run_init(r, m, l0, l1, 8, 6, WINDOW, -1, 42, &e);
    CHECK(rc == 0, "%s", e.msg);
    rc = forward_new(m, WINDOW, threads, &f, &e);
    CHECK(rc == 0, "%s", e.msg);
    for (int pass = 1; pass <= 2; pass++) {
        for (int d = 0; d < N_DOCS; d++) {
            int *ids, n;
            rc = act_corpus_tokens(c, tok, d, &ids, &n, &e) || act_run_doc(r, f, d, ids, n, &e);
            CHECK(rc == 0, "%s", e.msg);
            free(ids);
        }
        if (pass == 1) act_run_begin_pass2(r);
    }
    act_run_finish(r);
    forward_free(f);
}

/* A list (top, sign +1, or bottom, sign −1) against the reference: the
 * example at each rank has the reference's activation at that rank (so
 * only near-ties, < 1e-5, may swap positions), and its own values match the
 * reference's at its position within 1e-4. */
static int ties;

static void check_list(const RefToken *ref, int n_ref, int l, int i, int ffn, const ActExample *got, int n_got, int cap, int sign,
                       int *swaps) {
    int idx = l * ffn + i;
    double *v = malloc((size_t)n_ref * sizeof *v);
    for (int k = 0; k < n_ref; k++) v[k] = sign * ref[k].act[idx];
    /* the reference ranking: a selection sort of the first cap (ties by position order, which is ref's order) */
    int *order = malloc((size_t)n_ref * sizeof *order);
    for (int k = 0; k < n_ref; k++) order[k] = k;
    int want = n_ref < cap ? n_ref : cap;
    for (int a = 0; a < want; a++) {
        int best = a;
        for (int b = a + 1; b < n_ref; b++)
            if (v[order[b]] > v[order[best]]) best = b;
        int t = order[a];
        order[a] = order[best];
        order[best] = t;
    }
    CHECK(n_got == want, "%d:%d %s list holds %d, want %d", l, i, sign > 0 ? "top" : "bottom", n_got, want);
    /* exact ties (equal F32 activations, as identical story openings give)
     * go in (doc, window, pos) order */
    for (int k = 1; k < n_got; k++) {
        const ActExample *x = &got[k - 1], *y = &got[k];
        long long kx = ((long long)x->doc << 32) | (x->window << 16) | x->pos, ky = ((long long)y->doc << 32) | (y->window << 16) | y->pos;
        if (x->act == y->act) ties++;
        CHECK(x->act != y->act || kx < ky, "%d:%d ranks %d and %d tie at %g out of (doc, window, pos) order", l, i, k, k + 1, x->act);
    }
    for (int k = 0; k < n_got && k < want; k++) {
        const RefToken *at = find_token(ref, n_ref, got[k].doc, got[k].window, got[k].pos), *w = &ref[order[k]];
        CHECK(at != NULL, "%d:%d rank %d: no such token", l, i, k + 1);
        if (!at) continue;
        if (at != w) (*swaps)++;
        CHECK(at == w || fabs(at->act[idx] - w->act[idx]) < 1e-5, "%d:%d %s rank %d: (%d,%d,%d) act %.7g, reference has (%d,%d,%d) %.7g",
              l, i, sign > 0 ? "top" : "bottom", k + 1, got[k].doc, got[k].window, got[k].pos, at->act[idx], w->doc, w->window,
              w->pos, w->act[idx]);
        CHECK(close_rel(got[k].act, at->act[idx], 1e-4) && close_rel(got[k].gate, at->gate[idx], 1e-4) &&
                  close_rel(got[k].up, at->up[idx], 1e-4) && got[k].token == at->token,
              "%d:%d rank %d: act %.7g gate %.7g up %.7g token %d, reference %.7g %.7g %.7g %d", l, i, k + 1, got[k].act, got[k].gate,
              got[k].up, got[k].token, at->act[idx], at->gate[idx], at->up[idx], at->token);
    }
    free(v);
    free(order);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void check_neuron(const RefToken *ref, int n_ref, const ActRun *r, int l, int i, int *swaps, int *bands) {
    int ffn = r->ffn, idx = l * ffn + i;
    const ActNeuron *s = act_neuron(r, l, i);
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    int64_t pos_lo = 0, pos_hi = 0, sign_lo[4] = { 0 }, sign_hi[4] = { 0 }, hist_lo[32] = { 0 }, hist_hi[32] = { 0 };
    for (int k = 0; k < n_ref; k++) {
        double a = ref[k].act[idx], g = ref[k].gate[idx], u = ref[k].up[idx];
        sum += a;
        mn = fmin(mn, a);
        mx = fmax(mx, a);
        /* near 0 or near an edge, F32 may fall either side: bounds, not values */
        pos_lo += a > 1e-6;
        pos_hi += a > -1e-6;
        for (int c = 0; c < 4; c++) {
            int gs = c < 2, us = c % 2 == 0; /* ++, +-, -+, -- */
            int sure = (gs ? g > 1e-6 : g < -1e-6) && (us ? u > 1e-6 : u < -1e-6);
            int maybe = (gs ? g > -1e-6 : g < 1e-6) && (us ? u > -1e-6 : u < 1e-6);
            sign_lo[c] += sure;
            sign_hi[c] += maybe;
        }
        int b0 = ref_bin(a * (1 - 1e-5) - 1e-7), b1 = ref_bin(a * (1 + 1e-5) + 1e-7);
        int lo = b0 < b1 ? b0 : b1, hi = b0 < b1 ? b1 : b0;
        if (lo == hi) hist_lo[lo]++;
        for (int b = lo; b <= hi; b++) hist_hi[b]++;
    }
    double mean = sum / n_ref, ss = 0;
    for (int k = 0; k < n_ref; k++) ss += (ref[k].act[idx] - mean) * (ref[k].act[idx] - mean);
    double sd = sqrt(ss / n_ref);
    CHECK(s->count == n_ref, "%d:%d count %lld, want %d", l, i, (long long)s->count, n_ref);
    CHECK(fabs(s->mean - mean) <= 1e-4 * (fabs(mean) + sd), "%d:%d mean %.8g, reference %.8g", l, i, s->mean, mean);
    CHECK(close_rel(sqrt(s->m2 / (double)s->count), sd, 1e-4), "%d:%d std %.8g, reference %.8g", l, i, sqrt(s->m2 / (double)s->count), sd);
    CHECK(close_rel(s->min, mn, 1e-4) && close_rel(s->max, mx, 1e-4), "%d:%d min/max %.7g %.7g, reference %.7g %.7g", l, i, s->min,
          s->max, mn, mx);
    CHECK(s->positive >= pos_lo && s->positive <= pos_hi, "%d:%d positive %lld outside %lld-%lld", l, i, (long long)s->positive,
          (long long)pos_lo, (long long)pos_hi);
    for (int c = 0; c < 4; c++)
        CHECK(s->sign[c] >= sign_lo[c] && s->sign[c] <= sign_hi[c], "%d:%d sign case %d: %lld outside %lld-%lld", l, i, c,
              (long long)s->sign[c], (long long)sign_lo[c], (long long)sign_hi[c]);
    for (int b = 0; b < 32; b++)
        CHECK(s->hist[b] >= hist_lo[b] && s->hist[b] <= hist_hi[b], "%d:%d histogram bin %d: %lld outside %lld-%lld", l, i, b,
              (long long)s->hist[b], (long long)hist_lo[b], (long long)hist_hi[b]);
    check_list(ref, n_ref, l, i, ffn, s->top, s->n_top, r->top_n, 1, swaps);
    check_list(ref, n_ref, l, i, ffn, s->bottom, s->n_bottom, r->bottom_n, -1, swaps);

    /* Bands: with the run's own edges q (from its histogram), each band's
     * samples are the 5 smallest keys among the reference tokens in it;
     * tokens within 1e-5 of an edge may fall either side and are skipped. */
    for (int b = 0; b < ACT_BANDS; b++) {
        double lo = s->q[b], hi = b + 1 < ACT_BANDS ? s->q[b + 1] : INFINITY;
        uint64_t *keys = malloc((size_t)n_ref * sizeof *keys);
        int nk = 0, ambiguous = 0;
        for (int k = 0; k < n_ref; k++) {
            double a = ref[k].act[idx];
            if (fabs(a - lo) < 1e-5 || fabs(a - hi) < 1e-5) ambiguous = 1;
            else if (a >= lo && a < hi) keys[nk++] = act_band_key(r->seed, l, i, ref[k].doc, ref[k].window, ref[k].pos);
        }
        qsort(keys, (size_t)nk, sizeof *keys, cmp_u64);
        if (nk > ACT_BAND_SAMPLES) nk = ACT_BAND_SAMPLES;
        if (ambiguous) {
            free(keys);
            continue;
        }
        (*bands)++;
        CHECK(s->n_band[b] == nk, "%d:%d band %d holds %d samples, want %d", l, i, b, s->n_band[b], nk);
        for (int k = 0; k < s->n_band[b]; k++) {
            const ActExample *x = &s->band[b][k];
            uint64_t key = act_band_key(r->seed, l, i, x->doc, x->window, x->pos);
            int found = 0;
            for (int j = 0; j < nk; j++) found |= keys[j] == key;
            CHECK(found && x->act >= lo && x->act < hi, "%d:%d band %d sample (%d,%d,%d) act %g is not one of the 5 drawn from [%g, %g)",
                  l, i, b, x->doc, x->window, x->pos, x->act, lo, hi);
        }
        free(keys);
    }
}

/* Same run, same state, bit for bit. */
static int same_state(const ActRun *a, const ActRun *b) {
    size_t n = (size_t)(a->l1 - a->l0 + 1) * a->ffn;
    for (size_t i = 0; i < n; i++) {
        const ActNeuron *x = &a->neuron[i], *y = &b->neuron[i];
        if (x->count != y->count || x->mean != y->mean || x->m2 != y->m2 || x->min != y->min || x->max != y->max ||
            memcmp(x->hist, y->hist, sizeof x->hist) || memcmp(x->sign, y->sign, sizeof x->sign) || x->n_top != y->n_top ||
            memcmp(x->top, y->top, (size_t)x->n_top * sizeof *x->top) || memcmp(x->bottom, y->bottom, (size_t)x->n_bottom * sizeof *x->bottom) ||
            memcmp(x->band, y->band, sizeof x->band) || memcmp(x->q, y->q, sizeof x->q))
            return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------------------
 * Parts merged = one run, bit for bit
 *
 * The documents are split among parts in several ways; each part runs pass
 * 1 on its own documents, the parts merge, every part takes the merged
 * band edges for pass 2, and the parts' pass 2 merges in. The result must
 * equal one run over all the documents in every bit: counts, exact sums,
 * mean and m2, min and max, lists, bands, unigrams. */

static int same_neuron(const ActNeuron *x, const ActNeuron *y) {
    return x->count == y->count && x->positive == y->positive && !memcmp(x->sign, y->sign, sizeof x->sign) &&
           !memcmp(x->hist, y->hist, sizeof x->hist) && !memcmp(x->sum, y->sum, sizeof x->sum) &&
           !memcmp(x->sum2, y->sum2, sizeof x->sum2) && x->special == y->special && !memcmp(&x->mean, &y->mean, sizeof x->mean) &&
           !memcmp(&x->m2, &y->m2, sizeof x->m2) && !memcmp(&x->min, &y->min, 4) && !memcmp(&x->max, &y->max, 4) &&
           x->n_top == y->n_top && x->n_bottom == y->n_bottom && !memcmp(x->top, y->top, (size_t)x->n_top * sizeof *x->top) &&
           !memcmp(x->bottom, y->bottom, (size_t)x->n_bottom * sizeof *x->bottom) && !memcmp(x->q, y->q, sizeof x->q) &&
           !memcmp(x->n_band, y->n_band, sizeof x->n_band) && !memcmp(x->band, y->band, sizeof x->band);
}

/* Neurons that differ (0: the same state, unigrams and tokens included). */
static int state_diff(const ActRun *a, const ActRun *b) {
    int bad = memcmp(a->unigram, b->unigram, (size_t)a->m->cfg.vocab_size * sizeof *a->unigram) != 0 || a->tokens != b->tokens;
    for (size_t i = 0; i < act_run_neurons(a); i++) bad += !same_neuron(&a->neuron[i], &b->neuron[i]);
    return bad;
}

/* The MLP values of layers SL0..SL1 at every window of the split documents,
 * recorded once from the forward pass and replayed into every part
 * (act_run_feed: the same updates a run makes): the splits cost no
 * forward passes of their own. Replaying the first N_DOCS documents must
 * give the state of the real run over them (r3, layers 2-3). */
enum { SL0 = 2, SL1 = 3 };

typedef struct {
    int doc, win, n;
    int ids[WINDOW];
    float *mlp[SL1 - SL0 + 1]; /* gate, up, act: n × ffn each */
} Recorded;

typedef struct {
    Recorded *w;
    int ffn;
} Recorder;

static void record_capture(void *ctx, int layer, int pos, int T, const float *gate, const float *up, const float *act) {
    Recorder *rc = ctx;
    if (layer < SL0 || layer > SL1) return;
    size_t len = (size_t)rc->w->n * rc->ffn, at = (size_t)pos * rc->ffn, sz = (size_t)T * rc->ffn * sizeof(float);
    float *v = rc->w->mlp[layer - SL0];
    memcpy(v + at, gate, sz), memcpy(v + len + at, up, sz), memcpy(v + 2 * len + at, act, sz);
}

static Recorded *record(const Model *m, const ActCorpus *c, const Tokenizer *tok, int n_docs, int *n_out) {
    Error e = { 0 };
    Forward *f;
    int rc = forward_new(m, WINDOW, 2, &f, &e), n = 0, cap = 0, ffn = m->cfg.ffn_dim;
    CHECK(rc == 0, "%s", e.msg);
    float *logits = malloc((size_t)m->cfg.vocab_size * WINDOW * sizeof *logits);
    Recorded *w = NULL;
    for (int d = 0; d < n_docs; d++) {
        int *ids, len;
        rc = act_corpus_tokens(c, tok, d, &ids, &len, &e);
        CHECK(rc == 0, "%s", e.msg);
        for (int k = 0, s = 0; s < len; k++, s += WINDOW - 1) {
            if (n == cap) w = realloc(w, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *w);
            Recorded *x = &w[n++];
            x->doc = d, x->win = k, x->n = 1 + (len - s < WINDOW - 1 ? len - s : WINDOW - 1);
            x->ids[0] = m->vocab.bos_id;
            memcpy(x->ids + 1, ids + s, (size_t)(x->n - 1) * sizeof *ids);
            for (int l = 0; l <= SL1 - SL0; l++) x->mlp[l] = malloc((size_t)3 * x->n * ffn * sizeof(float));
            Recorder r = { x, ffn };
            forward_set_capture(f, record_capture, &r);
            rc = forward_run(f, x->ids, x->n, 0, x->n, logits, 0, &e);
            CHECK(rc == 0, "%s", e.msg);
        }
        free(ids);
    }
    forward_set_capture(f, NULL, NULL);
    forward_free(f);
    free(logits);
    *n_out = n;
    return w;
}

static void init_split(ActRun *r, const Model *m) {
    Error e = { 0 };
    int rc = act_run_init(r, m, SL0, SL1, 8, 6, WINDOW, -1, 42, &e);
    CHECK(rc == 0, "%s", e.msg);
}

/* One pass of the recorded windows of documents with part[doc] == k. */
static void replay(ActRun *r, const Recorded *w, int n, const int *part, int k) {
    for (int i = 0; i < n; i++)
        if (part[w[i].doc] == k) act_run_feed(r, w[i].doc, w[i].win, w[i].ids, w[i].n, (const float *const *)w[i].mlp);
}

/* The split run: parts 0..n−1 (part[d] says whose d is), merged into *out
 * in the order given, every part sent through pack and unpack first. */
static void split_run(const Model *m, const Recorded *w, int n_w, const int *part, int n, const int *order, ActRun *out) {
    Error e = { 0 };
    ActRun *p = calloc((size_t)n, sizeof *p);
    init_split(out, m);
    for (int k = 0; k < n; k++) init_split(&p[k], m);
    for (int pass = 1; pass <= 2; pass++) {
        for (int k = 0; k < n; k++) replay(&p[k], w, n_w, part, k);
        for (int i = 0; i < n; i++) {
            ActRun u;
            size_t bytes;
            unsigned char *buf = act_run_pack(&p[order[i]], &bytes);
            init_split(&u, m);
            int rc = act_run_unpack(&u, buf, bytes, &e) || act_run_merge(out, &u, &e);
            CHECK(rc == 0, "%s", e.msg);
            free(buf);
            act_run_free(&u);
        }
        if (pass == 2) break;
        act_run_begin_pass2(out);
        double *q = malloc(act_run_neurons(out) * 3 * sizeof *q);
        act_run_quantiles(out, q);
        for (int k = 0; k < n; k++) act_run_begin_pass2_part(&p[k], q);
        free(q);
    }
    act_run_finish(out);
    for (int k = 0; k < n; k++) act_run_free(&p[k]);
    free(p);
}

/* One run over the windows of documents with part[doc] == 0, in order. */
static void whole_run(const Model *m, const Recorded *w, int n_w, const int *part, ActRun *out) {
    init_split(out, m);
    replay(out, w, n_w, part, 0);
    act_run_begin_pass2(out);
    replay(out, w, n_w, part, 0);
    act_run_finish(out);
}

static void check_splits(const Model *m, const ActCorpus *c, const Tokenizer *tok, int n_docs, const ActRun *r3) {
    int n_w, *part = calloc((size_t)n_docs, sizeof *part);
    Recorded *w = record(m, c, tok, n_docs, &n_w);
    ActRun one, split;
    /* the replay is the run: the first N_DOCS documents replayed = r3 */
    for (int d = N_DOCS; d < n_docs; d++) part[d] = 1;
    whole_run(m, w, n_w, part, &one);
    CHECK(state_diff(&one, r3) == 0, "replaying the recorded values: %d neurons differ from the run", state_diff(&one, r3));
    act_run_free(&one);
    memset(part, 0, (size_t)n_docs * sizeof *part);
    whole_run(m, w, n_w, part, &one);
    /* act_corpus_part: three parts tile the corpus, each a third of its bytes give or take a document */
    int at = 0, order3[3] = { 2, 1, 0 };
    int64_t bytes = c->end[c->n_docs - 1], longest = 0;
    for (int d = 0; d < c->n_docs; d++) longest = c->end[d] - c->start[d] + 1 > longest ? c->end[d] - c->start[d] + 1 : longest;
    for (int k = 0; k < 3; k++) {
        int first, last;
        act_corpus_part(c, k, 3, 0, &first, &last);
        int64_t size = (last < c->n_docs ? c->start[last] : bytes) - c->start[first];
        CHECK(first == at && last > first && llabs(size - bytes / 3) <= longest, "part %d of 3: documents %d-%d, %lld bytes of %lld", k,
              first, last, (long long)size, (long long)bytes);
        at = last;
    }
    CHECK(at == c->n_docs, "3 parts end at document %d of %d", at, c->n_docs);
    /* 1: three contiguous parts (as ranks and shards split), merged last to first */
    for (int d = 0; d < n_docs; d++) part[d] = d < n_docs / 3 ? 0 : d < n_docs / 2 ? 1 : 2;
    split_run(m, w, n_w, part, 3, order3, &split);
    CHECK(state_diff(&one, &split) == 0, "3 contiguous parts merged: %d neurons differ from one run", state_diff(&one, &split));
    act_run_free(&split);
    /* 2: five interleaved parts (3·d mod 5), merged in a scrambled order */
    int order5[5] = { 3, 0, 4, 2, 1 };
    for (int d = 0; d < n_docs; d++) part[d] = d * 3 % 5;
    split_run(m, w, n_w, part, 5, order5, &split);
    CHECK(state_diff(&one, &split) == 0, "5 interleaved parts merged: %d neurons differ from one run", state_diff(&one, &split));
    act_run_free(&split);
    /* 3: every document alone, merged in a scrambled order */
    int *orderd = malloc((size_t)n_docs * sizeof *orderd);
    for (int d = 0; d < n_docs; d++) part[d] = d, orderd[d] = (d * 7 + 3) % n_docs;
    split_run(m, w, n_w, part, n_docs, orderd, &split);
    CHECK(state_diff(&one, &split) == 0, "one part per document: %d neurons differ from one run", state_diff(&one, &split));
    act_run_free(&split);
    /* runs of another option do not merge */
    ActRun other;
    Error e = { 0 };
    int rc = act_run_init(&other, m, SL0, SL1, 8, 6, WINDOW, -1, 43, &e);
    CHECK(rc == 0 && act_run_merge(&one, &other, &e) == NM_EINPUT, "runs of different seeds merged");
    act_run_free(&other);
    free(orderd);
    act_run_free(&one);
    for (int i = 0; i < n_w; i++)
        for (int l = 0; l <= SL1 - SL0; l++) free(w[i].mlp[l]);
    free(w);
    free(part);
}

/* The exact sums by hand: values whose double sum depends on the order. */
static void test_exact_sums(void) {
    /* 2^60 + 1 − 2^60: a double sum gives 0 or 1 by order; exactly 1, mean 1/3 */
    float v[3] = { 0x1p60f, 1.0f, -0x1p60f };
    for (int o = 0; o < 3; o++) {
        ActNeuron s = { 0 };
        for (int i = 0; i < 3; i++) act_neuron_add(&s, v[(i + o) % 3]);
        act_neuron_settle(&s);
        /* M2 = Σ(a − 1/3)² = 2·2^120 + 2/3 (hand: (2^60 − 1/3)² + (2/3)² + (2^60 + 1/3)²): 2^121 in double */
        CHECK(s.mean == 1.0 / 3 && s.m2 == 0x1p121 && s.count == 3, "order %d: mean %.17g m2 %.17g, want 1/3 and 2^121", o, s.mean, s.m2);
    }
    /* the extremes: the smallest subnormal and FLT_MAX, whose squares a float sum would lose or overflow */
    ActNeuron s = { 0 };
    act_neuron_add(&s, 0x1p-149f);
    act_neuron_add(&s, 0x1p-149f);
    act_neuron_settle(&s);
    CHECK(s.mean == 0x1p-149 && s.m2 == 0 && s.min == 0x1p-149f, "two 2^-149: mean %g m2 %g", s.mean, s.m2);
    ActNeuron t = { 0 };
    act_neuron_add(&t, 0x1.fffffep127f);
    act_neuron_add(&t, -0x1.fffffep127f);
    act_neuron_add(&t, 3.0f);
    act_neuron_add(&t, -0.0f);
    act_neuron_settle(&t);
    double big = 0x1.fffffep127;
    /* M2 = Σa² − (Σa)²/n = 2·big² + 9 − 9/4 exactly; in double 2·big² (exact: 48 bits) */
    CHECK(t.mean == 0.75 && t.m2 == 2 * big * big && t.max == 0x1.fffffep127f, "FLT_MAX: mean %.17g m2 %.17g", t.mean,
          t.m2);
    /* ±0: −0 < +0 in any order; Inf and NaN */
    ActNeuron z1 = { 0 }, z2 = { 0 };
    act_neuron_add(&z1, 0.0f), act_neuron_add(&z1, -0.0f);
    act_neuron_add(&z2, -0.0f), act_neuron_add(&z2, 0.0f);
    CHECK(!memcmp(&z1.min, &z2.min, 4) && !memcmp(&z1.max, &z2.max, 4) && signbit(z1.min) && !signbit(z1.max), "-0 and +0 by order");
    ActNeuron i1 = { 0 }, i2 = { 0 };
    act_neuron_add(&i1, INFINITY), act_neuron_add(&i1, 1.0f);
    act_neuron_add(&i2, INFINITY), act_neuron_add(&i2, -INFINITY);
    act_neuron_settle(&i1), act_neuron_settle(&i2);
    CHECK(i1.mean == INFINITY && isnan(i1.m2) && isnan(i2.mean), "Inf: mean %g, Inf − Inf: mean %g", i1.mean, i2.mean);
    /* across the carry at 2^28 adds: 2^28 − 2 counted before, 4 values after */
    ActNeuron k = { .count = (1 << 28) - 2 };
    float w[4] = { 1.5f, -0.25f, 0x1p100f, 0x1p-100f };
    for (int i = 0; i < 4; i++) act_neuron_add(&k, w[i]);
    act_neuron_settle(&k);
    double n = (1 << 28) + 2.0, sum = 0x1p100 + 1.25 + 0x1p-100;
    CHECK(k.mean == sum / n, "after the carry: mean %.17g, want %.17g", k.mean, sum / n);
}

/* ----------------------------------------------------------------------------
 * Trace against the reference: the top neuron at every position */

static void check_trace(const Model *m, const Tokenizer *tok) {
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    int *ids, n;
    Error e = { 0 };
    int rc = tokenizer_encode(tok, text, strlen(text), TOK_ADD_BOS, &ids, &n, &e);
    CHECK(rc == 0, "%s", e.msg);
    int L = m->cfg.n_layers, ffn = m->cfg.ffn_dim, limit = 3;
    size_t sz = (size_t)L * n * ffn;
    double *A = malloc(sz * sizeof *A), *G = malloc(sz * sizeof *G), *U = malloc(sz * sizeof *U);
    ref_acts(m, ids, n, A, G, U);
    Forward *f;
    ActHit *hits = calloc((size_t)n * limit, sizeof *hits);
    rc = forward_new(m, n, 2, &f, &e) || act_trace(f, m, ids, n, 0, L - 1, limit, hits, &e);
    CHECK(rc == 0, "%s", e.msg);
    for (int p = 0; p < n; p++) {
        int bl = 0, bn = 0;
        for (int l = 0; l < L; l++)
            for (int i = 0; i < ffn; i++)
                if (A[((size_t)l * n + p) * ffn + i] > A[((size_t)bl * n + p) * ffn + bn]) bl = l, bn = i;
        const ActHit *h = &hits[(size_t)p * limit];
        double want = A[((size_t)bl * n + p) * ffn + bn], at = A[((size_t)h->layer * n + p) * ffn + h->neuron];
        CHECK((h->layer == bl && h->neuron == bn) || want - at < 1e-5, "trace pos %d: top %d:%d (%.7g), reference %d:%d (%.7g)", p,
              h->layer, h->neuron, at, bl, bn, want);
        CHECK(close_rel(h->act, at, 1e-4), "trace pos %d: act %.7g, reference %.7g", p, h->act, at);
        CHECK(h[0].act >= h[1].act && h[1].act >= h[2].act, "trace pos %d: not largest first", p);
    }
    free(hits);
    forward_free(f);
    free(A); free(G); free(U);
    free(ids);
}

/* ----------------------------------------------------------------------------
 * Small pieces */

static void test_hist_and_heap(void) {
    /* edges as stated: 0, ±2^-10 … ±2^4 */
    CHECK(act_hist_bin(0.0f) == 16 && act_hist_bin(-0.0f) == 16 && act_hist_bin(1e-9f) == 16 && act_hist_bin(-1e-9f) == 15,
          "bins around 0");
    CHECK(act_hist_bin(0x1p-10f) == 17 && act_hist_bin(0x1p4f) == 31 && act_hist_bin(1e30f) == 31 && act_hist_bin(-1e30f) == 0,
          "bins at the ends");
    CHECK(act_hist_bin(1.5f) == 16 + 11 && act_hist_bin(-1.5f) == 15 - 11, "1.5 is in [1, 2): bin 27; -1.5 bin 4");
    for (int b = 0; b < 32; b++) {
        double lo = act_hist_lo(b), hi = act_hist_hi(b);
        if (!isinf(lo) && lo != 0) CHECK(act_hist_bin((float)(lo < 0 ? lo * 0.999 : lo)) == b, "bin %d holds its lower edge %g", b, lo);
        if (!isinf(hi) && hi != 0) CHECK(act_hist_bin((float)(hi < 0 ? hi * 1.001 : hi * 0.999)) == b, "bin %d ends at %g", b, hi);
        CHECK(b == 0 || act_hist_lo(b) == act_hist_hi(b - 1), "bins %d and %d touch", b - 1, b);
    }
    /* quantiles from a histogram: 100 values in [1, 2) and 100 in [2, 4) */
    ActNeuron s = { .count = 200, .min = 1, .max = 4 };
    s.hist[27] = 100;
    s.hist[28] = 100;
    CHECK(fabs(act_quantile(&s, 0.5) - 2.0) < 1e-12 && fabs(act_quantile(&s, 0.25) - 1.5) < 1e-12 &&
          fabs(act_quantile(&s, 0.75) - 3.0) < 1e-12, "quantiles by linear interpolation within bins");
    /* binomial tails by hand: n 3, p 1/2: P[X >= 2] = 4/8; n 20, p 0.01: P[X >= 1] = 1 - 0.99^20 */
    CHECK(fabs(binomial_upper_tail(3, 2, 0.5) - 0.5) < 1e-12, "binomial tail 3, 2, 0.5");
    CHECK(fabs(binomial_upper_tail(20, 1, 0.01) - (1 - pow(0.99, 20))) < 1e-12, "binomial tail 20, 1, 0.01");
    CHECK(binomial_upper_tail(20, 0, 0.3) == 1 && binomial_upper_tail(5, 6, 0.3) == 0, "binomial tail edges");
}

int main(void) {
    test_hist_and_heap();
    test_exact_sums();
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = shared_path("models/stories260K/tok512.bin"), .need_weights = 1 };
    if (model_open(&m, shared_path("models/stories260K/stories260K.bin"), &o, &e)) {
        CHECK(0, "%s", e.msg);
        return check_summary("test_activations");
    }
    Tokenizer *tok;
    ActCorpus c;
    int rc = tokenizer_new(&m.vocab, &tok, &e) || act_corpus_open(&c, shared_path("corpora/stories260K-samples.txt"), &e);
    CHECK(rc == 0, "%s", e.msg);
    CHECK(c.n_docs == 1000, "corpus has %d documents, want 1000", c.n_docs);

    int n_ref, *doc_ids[N_DOCS], doc_n[N_DOCS];
    RefToken *ref = ref_corpus(&m, &c, tok, &n_ref, doc_ids, doc_n);
    int windows = 0;
    for (int k = 0; k < n_ref; k++) windows += ref[k].window > 0;
    CHECK(windows > 0, "the documents should span several %d-token windows", WINDOW);

    ActRun r1, r2, r3;
    run_all(&m, &c, tok, 1, 0, m.cfg.n_layers - 1, &r1);
    int swaps = 0, checked = 0, bands = 0;
    for (int l = 0; l < m.cfg.n_layers; l++)
        for (int i = 0; i < m.cfg.ffn_dim; i += 7, checked++) check_neuron(ref, n_ref, &r1, l, i, &swaps, &bands);
    check_neuron(ref, n_ref, &r1, 0, 140, &swaps, &bands); /* the " named" neuron */
    printf("test_activations: %d neurons against the reference over %d tokens (%d near-tie swaps, %d exact ties, %d bands checked)\n",
           checked + 1, n_ref, swaps, ties, bands);
    CHECK(ties > 0, "no exact ties among the examples: the tie order is untested");
    CHECK(bands > checked, "too few bands away from a near-edge value were checked (%d)", bands);

    /* Threads do not change the state, nor does a subset of layers. */
    run_all(&m, &c, tok, 2, 0, m.cfg.n_layers - 1, &r2);
    CHECK(same_state(&r1, &r2), "--threads 1 and 2 give different states");
    run_all(&m, &c, tok, 2, 2, 3, &r3);
    int same_sub = 1;
    for (int l = 2; l <= 3; l++)
        for (int i = 0; i < m.cfg.ffn_dim; i++) {
            const ActNeuron *x = act_neuron(&r1, l, i), *y = act_neuron(&r3, l, i);
            same_sub &= x->mean == y->mean && x->m2 == y->m2 && !memcmp(x->top, y->top, (size_t)x->n_top * sizeof *x->top);
        }
    CHECK(same_sub, "--layers 2-3 gives other statistics for those layers than the whole run");
    check_splits(&m, &c, tok, SPLIT_DOCS, &r3);
    act_run_free(&r1);
    act_run_free(&r2);
    act_run_free(&r3);

    check_trace(&m, tok);

    for (int k = 0; k < n_ref; k++) {
        free(ref[k].act);
        free(ref[k].gate);
        free(ref[k].up);
    }
    free(ref);
    for (int d = 0; d < N_DOCS; d++) free(doc_ids[d]);
    act_corpus_close(&c);
    tokenizer_free(tok);
    model_close(&m);
    return check_summary("test_activations");
}
