/* activations.c — the corpus run: streaming per-neuron statistics, top and
 * bottom examples, quantile-band samples; and trace. See activations.h. */
#include "infer/activations.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Histogram and quantiles */

const char *const act_sign_case_names[ACT_SIGN_CASES] = { "++", "+-", "-+", "--" };
const double act_band_q[ACT_BANDS + 1] = { 0.5, 0.9, 0.99, 1.0 };

/* k = 0 for |a| < 2^-10, else floor(log2 |a|) + 11, at most 15: the octave. */
static int octave(float m) {
    if (!(m >= 0x1p-10f)) return 0; /* also NaN, which has no better place */
    if (m >= 0x1p4f) return 15;
    int ex;
    frexpf(m, &ex); /* m = f · 2^ex, f in [0.5, 1): floor(log2 m) = ex − 1 */
    return ex + 10;
}

int act_hist_bin(float a) { return a < 0 ? 15 - octave(-a) : 16 + octave(a); }

double act_hist_lo(int b) {
    if (b >= 16) return b == 16 ? 0.0 : ldexp(1.0, b - 16 - 11);
    int k = 15 - b;
    return k == 15 ? -INFINITY : -ldexp(1.0, k - 10);
}

double act_hist_hi(int b) {
    if (b >= 16) return b == 31 ? INFINITY : ldexp(1.0, b - 16 - 10);
    int k = 15 - b;
    return k == 0 ? 0.0 : -ldexp(1.0, k - 11);
}

double act_quantile(const ActNeuron *s, double q) {
    if (s->count == 0) return 0.0;
    double target = q * (double)s->count, below = 0;
    for (int b = 0; b < ACT_HIST_BINS; b++) {
        if (!s->hist[b]) continue;
        double c = (double)s->hist[b];
        if (below + c >= target || b == ACT_HIST_BINS - 1) {
            double lo = fmax(act_hist_lo(b), s->min), hi = fmin(act_hist_hi(b), s->max);
            double f = (target - below) / c;
            return lo + (f < 0 ? 0 : f > 1 ? 1 : f) * (hi - lo);
        }
        below += c;
    }
    return s->max;
}

/* ----------------------------------------------------------------------------
 * Examples: ordering and the fixed-size heaps */

int act_example_before(const ActExample *a, const ActExample *b, int sign) {
    if (a->act != b->act) return sign > 0 ? a->act > b->act : a->act < b->act;
    if (a->doc != b->doc) return a->doc < b->doc;
    if (a->window != b->window) return a->window < b->window;
    return a->pos < b->pos;
}

/* A list of the best `cap` examples is a heap whose root is the worst kept:
 * a newcomer either loses to the root (the common case, one comparison) or
 * replaces it. Parents are worse than their children. */
static void heap_sift_down(ActExample *h, int n, int i, int sign) {
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && act_example_before(&h[w], &h[l], sign)) w = l;
        if (r < n && act_example_before(&h[w], &h[r], sign)) w = r;
        if (w == i) return;
        ActExample t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_offer(ActExample *h, int *n, int cap, const ActExample *x, int sign) {
    if (*n < cap) {
        int i = (*n)++;
        h[i] = *x;
        while (i > 0 && act_example_before(&h[(i - 1) / 2], &h[i], sign)) { /* parent better: swap up */
            ActExample t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (cap > 0 && act_example_before(x, &h[0], sign)) {
        h[0] = *x;
        heap_sift_down(h, *n, 0, sign);
    }
}

static int cmp_best_first_top(const void *a, const void *b) {
    return act_example_before(a, b, 1) ? -1 : act_example_before(b, a, 1) ? 1 : 0;
}
static int cmp_best_first_bottom(const void *a, const void *b) {
    return act_example_before(a, b, -1) ? -1 : act_example_before(b, a, -1) ? 1 : 0;
}
static int cmp_worst_first_top(const void *a, const void *b) { return -cmp_best_first_top(a, b); }
static int cmp_worst_first_bottom(const void *a, const void *b) { return -cmp_best_first_bottom(a, b); }

/* The band key: splitmix64's finaliser over the token's coordinates. */
static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

uint64_t act_band_key(uint64_t seed, int layer, int neuron, int doc, int win, int pos) {
    uint64_t h = mix(seed, (uint64_t)layer);
    h = mix(h, (uint64_t)neuron);
    h = mix(h, (uint64_t)doc);
    h = mix(h, (uint64_t)win);
    return mix(h, (uint64_t)pos);
}

/* ----------------------------------------------------------------------------
 * The capture: one batch of one layer */

/* ----------------------------------------------------------------------------
 * Exact sums (activations.h: "Mergeable, exactly")
 *
 * x += v·2^(32·q + r) for v < 2^64: v's bits spread over digits q..q+2.
 * The digits are not carried here, so the inner loop has no carry chain;
 * each add brings a digit less than 2^33, and act_run_settle carries them
 * before 2^28 adds could reach int64's 2^63. */
static void sum_add(int64_t *d, int q, int r, uint64_t v, int neg) {
    uint64_t lo = (v & 0xffffffffu) << r, hi = (v >> 32) << r; /* < 2^63, < 2^63 */
    int64_t d0 = (int64_t)(lo & 0xffffffffu), d1 = (int64_t)((lo >> 32) + (hi & 0xffffffffu)), d2 = (int64_t)(hi >> 32);
    if (neg) d0 = -d0, d1 = -d1, d2 = -d2;
    d[q] += d0, d[q + 1] += d1, d[q + 2] += d2;
}

/* a into Σa and Σa²: a = M·2^(p − 149) with M < 2^24 (p = 0 for subnormals). */
static void sums_add(ActNeuron *s, float a) {
    uint32_t u;
    memcpy(&u, &a, 4);
    int e = (int)(u >> 23 & 0xff), neg = (int)(u >> 31);
    uint64_t m = u & 0x7fffff;
    if (e == 255) {
        s->special |= m ? ACT_SPECIAL_NAN : neg ? ACT_SPECIAL_NINF : ACT_SPECIAL_PINF;
        return;
    }
    if (!m && !e) return; /* ±0 */
    int p = e ? e - 1 : 0;
    if (e) m |= 0x800000;
    sum_add(s->sum, p / 32, p % 32, m, neg);      /* digit ≤ 7 + 2 < 11 */
    sum_add(s->sum2, 2 * p / 32, 2 * p % 32, m * m, 0); /* digit ≤ 15 + 2 < 20 */
}

/* The canonical form: digits 0..n−2 in [0, 2^32), the top one signed. */
static void sum_carry(int64_t *d, int n) {
    int64_t carry = 0;
    for (int i = 0; i < n - 1; i++) {
        int64_t x = d[i] + carry, lo = x & 0xffffffff;
        d[i] = lo;
        carry = (x - lo) / 4294967296; /* exact: floor(x / 2^32) */
    }
    d[n - 1] += carry;
}

/* A big natural number in 32-bit digits (uint64_t each, < 2^32 once carried). */
enum { BIG = 2 * ACT_SUM_DIGITS + 2 };

/* A canonical sum's magnitude into big digits; returns its sign (−1, 0, 1).
 * −x: every digit negated, then carried back into the canonical form. */
static int sum_magnitude(const int64_t *d, int n, uint64_t *out) {
    int64_t t[ACT_SUM2_DIGITS];
    int neg = d[n - 1] < 0, zero = 1;
    for (int i = 0; i < n; i++) t[i] = neg ? -d[i] : d[i];
    if (neg) sum_carry(t, n);
    memset(out, 0, BIG * sizeof *out);
    for (int i = 0; i < n; i++) out[i] = (uint64_t)t[i], zero &= t[i] == 0; /* the top digit too: < 2^32 (sizing) */
    return zero ? 0 : neg ? -1 : 1;
}

static void big_carry(uint64_t *x) {
    for (int i = 0; i < BIG - 1; i++) x[i + 1] += x[i] >> 32, x[i] &= 0xffffffffu;
}

/* x as a double times 2^scale: the same bits for the same x. */
static double big_double(const uint64_t *x, int scale) {
    double v = 0;
    for (int i = BIG - 1; i >= 0; i--) v = v * 4294967296.0 + (double)x[i];
    return ldexp(v, scale);
}

/* mean = Σa / n; M2 = (n·Σa² − (Σa)²) / n, the subtraction exact. */
static void settle_neuron(ActNeuron *s) {
    sum_carry(s->sum, ACT_SUM_DIGITS);
    sum_carry(s->sum2, ACT_SUM2_DIGITS);
    if (s->count == 0) {
        s->mean = s->m2 = 0;
        return;
    }
    uint64_t a[BIG], sq[BIG] = { 0 }, ns2[BIG] = { 0 };
    int sign = sum_magnitude(s->sum, ACT_SUM_DIGITS, a);
    double n = (double)s->count;
    if (s->special) {
        int pinf = s->special & ACT_SPECIAL_PINF, ninf = s->special & ACT_SPECIAL_NINF;
        s->mean = s->special & ACT_SPECIAL_NAN || (pinf && ninf) ? NAN : pinf ? INFINITY : -INFINITY;
        s->m2 = NAN;
        return;
    }
    s->mean = sign * big_double(a, -149) / n;
    for (int i = 0; i < ACT_SUM_DIGITS + 1; i++) { /* (Σa)², schoolbook, carried as it goes */
        for (int j = 0; j < ACT_SUM_DIGITS + 1; j++) sq[i + j] += a[i] * a[j] & 0xffffffffu, sq[i + j + 1] += a[i] * a[j] >> 32;
        big_carry(sq);
    }
    uint64_t c[2] = { (uint64_t)s->count & 0xffffffffu, (uint64_t)s->count >> 32 };
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < ACT_SUM2_DIGITS; i++) {
            uint64_t p = (uint64_t)s->sum2[i] * c[k]; /* Σa² ≥ 0: every digit in [0, 2^32) */
            ns2[i + k] += p & 0xffffffffu, ns2[i + k + 1] += p >> 32;
        }
        big_carry(ns2);
    }
    /* n·Σa² − (Σa)² ≥ 0 (Cauchy–Schwarz), digit by digit with borrows */
    int64_t borrow = 0;
    for (int i = 0; i < BIG; i++) {
        int64_t x = (int64_t)ns2[i] - (int64_t)sq[i] - borrow;
        borrow = x < 0;
        ns2[i] = (uint64_t)(x + (borrow ? 4294967296 : 0));
    }
    s->m2 = borrow ? 0 : big_double(ns2, -298) / n;
}

/* Total order on F32 by bits: −NaN < −Inf < … < −0 < +0 < … < +Inf < NaN. */
static uint32_t f32_order(float a) {
    uint32_t u;
    memcpy(&u, &a, 4);
    return u >> 31 ? ~u : u | 0x80000000u;
}

void act_neuron_add(ActNeuron *s, float a) {
    if ((++s->count & ((1 << 28) - 1)) == 0) { /* carry before the digits could overflow (above) */
        sum_carry(s->sum, ACT_SUM_DIGITS);
        sum_carry(s->sum2, ACT_SUM2_DIGITS);
    }
    sums_add(s, a);
    if (s->count == 1 || f32_order(a) < f32_order(s->min)) s->min = a;
    if (s->count == 1 || f32_order(a) > f32_order(s->max)) s->max = a;
    s->positive += a > 0;
    s->hist[act_hist_bin(a)]++;
}

void act_neuron_settle(ActNeuron *s) { settle_neuron(s); }

static void update_pass1(ActRun *r, ActNeuron *s, const ActExample *x) {
    act_neuron_add(s, x->act);
    s->sign[(x->gate > 0 ? 0 : 2) + (x->up > 0 ? 0 : 1)]++;
    heap_offer(s->top, &s->n_top, r->top_n, x, 1);
    heap_offer(s->bottom, &s->n_bottom, r->bottom_n, x, -1);
}

/* Band samples keep the smallest keys; equal keys (a hash collision) by position. */
static int band_worse(uint64_t ka, const ActExample *a, uint64_t kb, const ActExample *b) {
    if (ka != kb) return ka > kb;
    if (a->doc != b->doc) return a->doc > b->doc;
    if (a->window != b->window) return a->window > b->window;
    return a->pos > b->pos;
}

static void band_offer(ActNeuron *s, int b, uint64_t key, const ActExample *x) {
    int n = s->n_band[b], worst = 0;
    if (n < ACT_BAND_SAMPLES) {
        s->band[b][n] = *x;
        s->band_key[b][n] = key;
        s->n_band[b]++;
        return;
    }
    for (int i = 1; i < n; i++)
        if (band_worse(s->band_key[b][i], &s->band[b][i], s->band_key[b][worst], &s->band[b][worst])) worst = i;
    if (band_worse(s->band_key[b][worst], &s->band[b][worst], key, x)) {
        s->band[b][worst] = *x;
        s->band_key[b][worst] = key;
    }
}

static void update_pass2(ActRun *r, ActNeuron *s, int layer, int neuron, const ActExample *x) {
    double a = x->act;
    int b = a >= s->q[2] ? 2 : a >= s->q[1] ? 1 : a >= s->q[0] ? 0 : -1;
    if (b < 0) return;
    band_offer(s, b, act_band_key(r->seed, layer, neuron, x->doc, x->window, x->pos), x);
}

static void capture(void *ctx, int layer, int pos, int T, const float *gate, const float *up, const float *act) {
    ActRun *r = ctx;
    if (layer < r->l0 || layer > r->l1) return;
    for (int t = 0; t < T; t++) {
        int p = pos + t;
        if (p == 0) continue; /* BOS */
        ActExample x = { .doc = r->doc, .window = r->win, .pos = p, .token = r->ids[p] };
        size_t row = (size_t)t * r->ffn;
        ActNeuron *s = act_neuron(r, layer, 0);
        for (int n = 0; n < r->ffn; n++) {
            x.act = act[row + n];
            x.gate = gate[row + n];
            x.up = up[row + n];
            if (r->pass == 1) update_pass1(r, &s[n], &x);
            else update_pass2(r, &s[n], layer, n, &x);
        }
    }
}

/* ----------------------------------------------------------------------------
 * A run */

int act_run_init(ActRun *r, const Model *m, int l0, int l1, int top_n, int bottom_n, int window, int64_t max_tokens,
                 uint64_t seed, Error *e) {
    memset(r, 0, sizeof *r);
    if (l0 < 0 || l1 < l0 || l1 >= m->cfg.n_layers)
        return error_set(e, NM_EINPUT, "layers %d-%d are outside the model's 0-%d", l0, l1, m->cfg.n_layers - 1);
    if (window < 2 || window > m->cfg.max_seq_len)
        return error_set(e, NM_EINPUT, "a window of %d tokens is outside 2-%d (BOS and at least one token; the model's context)",
                         window, m->cfg.max_seq_len);
    if (m->vocab.bos_id < 0) return error_set(e, NM_EINPUT, "%s: has no BOS token to start each window with", m->path);
    *r = (ActRun){ .m = m, .l0 = l0, .l1 = l1, .ffn = m->cfg.ffn_dim, .top_n = top_n, .bottom_n = bottom_n, .window = window,
                   .max_tokens = max_tokens, .seed = seed, .pass = 1 };
    size_t count = (size_t)(l1 - l0 + 1) * (size_t)r->ffn;
    r->neuron = xcalloc(count, sizeof *r->neuron);
    for (size_t i = 0; i < count; i++) {
        r->neuron[i].top = xcalloc((size_t)(top_n ? top_n : 1), sizeof(ActExample));
        r->neuron[i].bottom = xcalloc((size_t)(bottom_n ? bottom_n : 1), sizeof(ActExample));
    }
    r->unigram = xcalloc((size_t)m->cfg.vocab_size, sizeof *r->unigram);
    r->ids = xmalloc((size_t)window * sizeof *r->ids);
    r->logits = xmalloc((size_t)m->cfg.vocab_size * sizeof *r->logits);
    return NM_OK;
}

void act_run_free(ActRun *r) {
    if (r->neuron) {
        size_t count = (size_t)(r->l1 - r->l0 + 1) * (size_t)r->ffn;
        for (size_t i = 0; i < count; i++) {
            free(r->neuron[i].top);
            free(r->neuron[i].bottom);
        }
    }
    free(r->neuron);
    free(r->unigram);
    free(r->ids);
    free(r->logits);
    memset(r, 0, sizeof *r);
}

/* After a window's capture: its content tokens are counted. */
static void window_done(ActRun *r, int count) {
    if (r->pass == 1)
        for (int i = 1; i <= count; i++) r->unigram[r->ids[i]]++;
    r->tokens += count;
}

int act_run_doc(ActRun *r, Forward *f, int doc, const int *content, int n, Error *e) {
    if (forward_n_ctx(f) < r->window)
        return error_set(e, NM_ERUNTIME, "the forward pass holds %d positions, the window %d", forward_n_ctx(f), r->window);
    int per = r->window - 1, rc = NM_OK;
    forward_set_capture(f, capture, r);
    for (int w = 0, start = 0; start < n && !rc; w++, start += per) {
        int count = n - start < per ? n - start : per;
        if (r->max_tokens >= 0 && count > r->max_tokens - r->tokens) count = (int)(r->max_tokens - r->tokens);
        if (count <= 0) break;
        r->ids[0] = r->m->vocab.bos_id;
        memcpy(r->ids + 1, content + start, (size_t)count * sizeof *r->ids);
        r->doc = doc;
        r->win = w;
        rc = forward_run(f, r->ids, count + 1, 0, count + 1, r->logits, 0, e);
        window_done(r, count);
    }
    forward_set_capture(f, NULL, NULL);
    return rc;
}

void act_run_feed(ActRun *r, int doc, int w, const int *ids, int n, const float *const *mlp) {
    memcpy(r->ids, ids, (size_t)n * sizeof *ids);
    r->doc = doc;
    r->win = w;
    size_t len = (size_t)n * r->ffn;
    for (int l = r->l0; l <= r->l1; l++) {
        const float *v = mlp[l - r->l0];
        capture(r, l, 0, n, v, v + len, v + 2 * len);
    }
    window_done(r, n - 1);
}

void act_run_settle(ActRun *r) {
    size_t count = (size_t)(r->l1 - r->l0 + 1) * (size_t)r->ffn;
    for (size_t i = 0; i < count; i++) settle_neuron(&r->neuron[i]);
}

void act_run_begin_pass2(ActRun *r) {
    act_run_settle(r);
    size_t count = (size_t)(r->l1 - r->l0 + 1) * (size_t)r->ffn;
    for (size_t i = 0; i < count; i++) {
        ActNeuron *s = &r->neuron[i];
        for (int b = 0; b < ACT_BANDS; b++) s->q[b] = act_quantile(s, act_band_q[b]);
    }
    r->pass = 2;
    r->tokens = 0;
}

static int cmp_position(const void *a, const void *b) {
    const ActExample *x = a, *y = b;
    return x->doc != y->doc ? (x->doc > y->doc) - (x->doc < y->doc)
         : x->window != y->window ? (x->window > y->window) - (x->window < y->window)
         : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sorts every neuron's example lists with the given orders (bands too when
 * cmp_band is set). */
static void sort_lists(ActRun *r, int (*cmp_top)(const void *, const void *), int (*cmp_bottom)(const void *, const void *),
                       int (*cmp_band)(const void *, const void *)) {
    size_t count = (size_t)(r->l1 - r->l0 + 1) * (size_t)r->ffn;
    for (size_t i = 0; i < count; i++) {
        ActNeuron *s = &r->neuron[i];
        qsort(s->top, (size_t)s->n_top, sizeof *s->top, cmp_top);
        qsort(s->bottom, (size_t)s->n_bottom, sizeof *s->bottom, cmp_bottom);
        for (int b = 0; cmp_band && b < ACT_BANDS; b++) qsort(s->band[b], (size_t)s->n_band[b], sizeof s->band[b][0], cmp_band);
    }
}

void act_run_finish(ActRun *r) {
    act_run_settle(r);
    sort_lists(r, cmp_best_first_top, cmp_best_first_bottom, cmp_position);
}

void act_run_sort_heaps(ActRun *r) { sort_lists(r, cmp_worst_first_top, cmp_worst_first_bottom, NULL); }

/* ----------------------------------------------------------------------------
 * Parts of a run, merged (activations.h) */

size_t act_run_neurons(const ActRun *r) { return (size_t)(r->l1 - r->l0 + 1) * (size_t)r->ffn; }

static int same_options(const ActRun *a, const ActRun *b) {
    return a->l0 == b->l0 && a->l1 == b->l1 && a->ffn == b->ffn && a->top_n == b->top_n && a->bottom_n == b->bottom_n &&
           a->window == b->window && a->max_tokens == b->max_tokens && a->seed == b->seed &&
           a->m->cfg.vocab_size == b->m->cfg.vocab_size;
}

int act_run_merge(ActRun *a, const ActRun *b, Error *e) {
    if (!same_options(a, b)) return error_set(e, NM_EINPUT, "activation states of runs with different options cannot merge");
    size_t count = act_run_neurons(a);
    for (size_t i = 0; i < count; i++) {
        ActNeuron *x = &a->neuron[i];
        const ActNeuron *y = &b->neuron[i];
        int layer = a->l0 + (int)(i / (size_t)a->ffn), neuron = (int)(i % (size_t)a->ffn);
        if (y->count) {
            if (!x->count || f32_order(y->min) < f32_order(x->min)) x->min = y->min;
            if (!x->count || f32_order(y->max) > f32_order(x->max)) x->max = y->max;
        }
        x->count += y->count;
        x->positive += y->positive;
        for (int c = 0; c < ACT_SIGN_CASES; c++) x->sign[c] += y->sign[c];
        for (int h = 0; h < ACT_HIST_BINS; h++) x->hist[h] += y->hist[h];
        /* both below 2^61 a digit (carried at most 2^28 adds ago): the sum fits */
        for (int d = 0; d < ACT_SUM_DIGITS; d++) x->sum[d] += y->sum[d];
        for (int d = 0; d < ACT_SUM2_DIGITS; d++) x->sum2[d] += y->sum2[d];
        sum_carry(x->sum, ACT_SUM_DIGITS);
        sum_carry(x->sum2, ACT_SUM2_DIGITS);
        x->special |= y->special;
        for (int k = 0; k < y->n_top; k++) heap_offer(x->top, &x->n_top, a->top_n, &y->top[k], 1);
        for (int k = 0; k < y->n_bottom; k++) heap_offer(x->bottom, &x->n_bottom, a->bottom_n, &y->bottom[k], -1);
        for (int q = 0; q < ACT_BANDS; q++)
            for (int k = 0; k < y->n_band[q]; k++) {
                const ActExample *s = &y->band[q][k];
                band_offer(x, q, act_band_key(a->seed, layer, neuron, s->doc, s->window, s->pos), s);
            }
    }
    for (int v = 0; v < a->m->cfg.vocab_size; v++) a->unigram[v] += b->unigram[v];
    a->tokens += b->tokens;
    return NM_OK;
}

void act_run_reset(ActRun *r) {
    size_t count = act_run_neurons(r);
    for (size_t i = 0; i < count; i++) {
        ActNeuron *s = &r->neuron[i];
        ActExample *top = s->top, *bottom = s->bottom;
        memset(s, 0, sizeof *s);
        s->top = top, s->bottom = bottom;
    }
    memset(r->unigram, 0, (size_t)r->m->cfg.vocab_size * sizeof *r->unigram);
    r->tokens = 0;
}

void act_run_quantiles(const ActRun *r, double *q) {
    size_t count = act_run_neurons(r);
    for (size_t i = 0; i < count; i++) memcpy(q + 3 * i, r->neuron[i].q, sizeof r->neuron[i].q);
}

void act_run_begin_pass2_part(ActRun *r, const double *q) {
    act_run_reset(r);
    size_t count = act_run_neurons(r);
    for (size_t i = 0; i < count; i++) memcpy(r->neuron[i].q, q + 3 * i, sizeof r->neuron[i].q);
    r->pass = 2;
}

/* Packed: a header of the options, then per neuron its struct (pointers
 * aside) and its lists, then the unigrams. Bytes as they lie in memory:
 * every rank runs the same binary on the same kind of machine. */
enum { PACK_MAGIC = 0x41435431 /* "ACT1" */ };

typedef struct {
    int32_t magic, l0, l1, ffn, top_n, bottom_n, window, pass, vocab, pad;
    int64_t max_tokens, tokens;
    uint64_t seed;
} PackHeader;

unsigned char *act_run_pack(ActRun *r, size_t *n) {
    act_run_settle(r);
    size_t count = act_run_neurons(r), size = sizeof(PackHeader) + (size_t)r->m->cfg.vocab_size * sizeof(int64_t);
    for (size_t i = 0; i < count; i++)
        size += sizeof(ActNeuron) + (size_t)(r->neuron[i].n_top + r->neuron[i].n_bottom) * sizeof(ActExample);
    unsigned char *buf = xmalloc(size), *p = buf;
    PackHeader h = { PACK_MAGIC, r->l0, r->l1, r->ffn, r->top_n, r->bottom_n, r->window, r->pass, r->m->cfg.vocab_size, 0,
                     r->max_tokens, r->tokens, r->seed };
    memcpy(p, &h, sizeof h), p += sizeof h;
    for (size_t i = 0; i < count; i++) {
        ActNeuron s = r->neuron[i];
        s.top = s.bottom = NULL;
        memcpy(p, &s, sizeof s), p += sizeof s;
        memcpy(p, r->neuron[i].top, (size_t)s.n_top * sizeof(ActExample)), p += (size_t)s.n_top * sizeof(ActExample);
        memcpy(p, r->neuron[i].bottom, (size_t)s.n_bottom * sizeof(ActExample)), p += (size_t)s.n_bottom * sizeof(ActExample);
    }
    memcpy(p, r->unigram, (size_t)r->m->cfg.vocab_size * sizeof(int64_t));
    *n = size;
    return buf;
}

int act_run_unpack(ActRun *r, const unsigned char *buf, size_t n, Error *e) {
    PackHeader h;
    const unsigned char *p = buf, *end = buf + n;
    if (n < sizeof h) return error_set(e, NM_EINPUT, "a packed activation state of %zu bytes is too short", n);
    memcpy(&h, p, sizeof h), p += sizeof h;
    if (h.magic != PACK_MAGIC || h.l0 != r->l0 || h.l1 != r->l1 || h.ffn != r->ffn || h.top_n != r->top_n ||
        h.bottom_n != r->bottom_n || h.window != r->window || h.vocab != r->m->cfg.vocab_size || h.max_tokens != r->max_tokens ||
        h.seed != r->seed)
        return error_set(e, NM_EINPUT, "a packed activation state of another run's options");
    size_t count = act_run_neurons(r);
    for (size_t i = 0; i < count; i++) {
        ActNeuron *s = &r->neuron[i];
        ActExample *top = s->top, *bottom = s->bottom;
        if ((size_t)(end - p) < sizeof *s) return error_set(e, NM_EINPUT, "a packed activation state is cut short");
        memcpy(s, p, sizeof *s), p += sizeof *s;
        s->top = top, s->bottom = bottom;
        size_t lists = (size_t)(s->n_top + s->n_bottom) * sizeof(ActExample);
        if (s->n_top < 0 || s->n_top > r->top_n || s->n_bottom < 0 || s->n_bottom > r->bottom_n || (size_t)(end - p) < lists)
            return error_set(e, NM_EINPUT, "a packed activation state is malformed (neuron %zu)", i);
        for (int b = 0; b < ACT_BANDS; b++)
            if (s->n_band[b] < 0 || s->n_band[b] > ACT_BAND_SAMPLES)
                return error_set(e, NM_EINPUT, "a packed activation state is malformed (neuron %zu)", i);
        memcpy(top, p, (size_t)s->n_top * sizeof *top), p += (size_t)s->n_top * sizeof *top;
        memcpy(bottom, p, (size_t)s->n_bottom * sizeof *bottom), p += (size_t)s->n_bottom * sizeof *bottom;
    }
    size_t uni = (size_t)r->m->cfg.vocab_size * sizeof(int64_t);
    if ((size_t)(end - p) != uni) return error_set(e, NM_EINPUT, "a packed activation state has %zu bytes too many or few", n);
    memcpy(r->unigram, p, uni);
    r->pass = h.pass;
    r->tokens = h.tokens;
    return NM_OK;
}

void act_neuron_sums_put(const ActNeuron *s, unsigned char *out) {
    int64_t d[ACT_SUM_DIGITS + ACT_SUM2_DIGITS];
    memcpy(d, s->sum, sizeof s->sum);
    memcpy(d + ACT_SUM_DIGITS, s->sum2, sizeof s->sum2);
    sum_carry(d, ACT_SUM_DIGITS);
    sum_carry(d + ACT_SUM_DIGITS, ACT_SUM2_DIGITS);
    for (int i = 0; i < ACT_SUM_DIGITS + ACT_SUM2_DIGITS; i++)
        for (int b = 0; b < 8; b++) out[8 * i + b] = (unsigned char)((uint64_t)d[i] >> (8 * b));
    for (int b = 0; b < 4; b++) out[8 * (ACT_SUM_DIGITS + ACT_SUM2_DIGITS) + b] = (unsigned char)((uint32_t)s->special >> (8 * b));
}

void act_neuron_sums_get(ActNeuron *s, const unsigned char *in) {
    for (int i = 0; i < ACT_SUM_DIGITS + ACT_SUM2_DIGITS; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) v |= (uint64_t)in[8 * i + b] << (8 * b);
        if (i < ACT_SUM_DIGITS) s->sum[i] = (int64_t)v;
        else s->sum2[i - ACT_SUM_DIGITS] = (int64_t)v;
    }
    uint32_t sp = 0;
    for (int b = 0; b < 4; b++) sp |= (uint32_t)in[8 * (ACT_SUM_DIGITS + ACT_SUM2_DIGITS) + b] << (8 * b);
    s->special = (int)(sp & 7);
    settle_neuron(s);
}

/* ----------------------------------------------------------------------------
 * The corpus */

int act_corpus_open(ActCorpus *c, const char *path, Error *e) {
    memset(c, 0, sizeof *c);
    if (str_ends_with(path, ".jsonl")) c->jsonl = 1;
    else if (!str_ends_with(path, ".txt"))
        return error_set(e, NM_EINPUT, "%s: a corpus is a .txt file (one document per line) or .jsonl (a \"text\" per line)", path);
    int rc = map_file(&c->file, path, e);
    if (rc) return rc;
    const uint8_t *d = c->file.data;
    size_t size = c->file.size;
    int cap = 0;
    for (size_t i = 0; i < size;) {
        const uint8_t *nl = memchr(d + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - d) : size;
        if (c->n_docs == cap) {
            cap = cap ? 2 * cap : 1024;
            c->start = xrealloc(c->start, (size_t)cap * sizeof *c->start);
            c->end = xrealloc(c->end, (size_t)cap * sizeof *c->end);
        }
        if (c->n_docs == 0x7fffffff) {
            act_corpus_close(c);
            return error_set(e, NM_EINPUT, "%s: more than 2^31 documents", path);
        }
        c->start[c->n_docs] = (int64_t)i;
        c->end[c->n_docs] = (int64_t)(end > i && d[end - 1] == '\r' ? end - 1 : end);
        c->n_docs++;
        i = end + 1;
    }
    c->hash = fnv1a64(FNV1A64_INIT, d, size);
    /* A .jsonl corpus is checked whole before a run starts: a bad line is
     * bad input (exit 2), found now rather than an hour in. */
    for (int i = 0; c->jsonl && i < c->n_docs; i++) {
        char *text;
        size_t len;
        if ((rc = act_corpus_text(c, i, &text, &len, e))) {
            act_corpus_close(c);
            return rc;
        }
        free(text);
    }
    return NM_OK;
}

/* Part i of n of documents [from, n_docs): part i starts at the first
 * document at or after byte start[from] + i/n of the bytes left. */
void act_corpus_part(const ActCorpus *c, int i, int n, int from, int *first, int *last) {
    int64_t base = from < c->n_docs ? c->start[from] : 0, bytes = c->n_docs ? c->end[c->n_docs - 1] - base : 0;
    for (int k = 0; k < 2; k++) {
        int part = i + k, d = from;
        int64_t at = base + (int64_t)((double)bytes * part / n); /* doubles: no overflow for 2^20 parts of 2^60 bytes */
        if (part >= n) d = c->n_docs;
        else if (part > 0)
            while (d < c->n_docs && c->start[d] < at) d++;
        *(k ? last : first) = d;
    }
}

void act_corpus_close(ActCorpus *c) {
    unmap_file(&c->file);
    free(c->start);
    free(c->end);
    memset(c, 0, sizeof *c);
}

int act_corpus_text(const ActCorpus *c, int doc, char **text, size_t *len, Error *e) {
    const char *s = (const char *)c->file.data + c->start[doc];
    size_t n = (size_t)(c->end[doc] - c->start[doc]);
    if (!c->jsonl) {
        *text = xstrndup(s, n);
        *len = n;
        return NM_OK;
    }
    cJSON *o = cJSON_ParseWithLength(s, n);
    cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
    if (!cJSON_IsString(t)) {
        cJSON_Delete(o);
        return error_set(e, NM_EINPUT, "%s:%d: not a JSON object with a string \"text\"", c->file.path, doc + 1);
    }
    *len = strlen(t->valuestring);
    *text = xstrndup(t->valuestring, *len);
    cJSON_Delete(o);
    return NM_OK;
}

int act_corpus_tokens(const ActCorpus *c, const Tokenizer *t, int doc, int **ids, int *n, Error *e) {
    char *text;
    size_t len;
    int rc = act_corpus_text(c, doc, &text, &len, e);
    if (rc) return rc;
    /* Encoded as the tokenizer does with BOS (an SPM tokenizer's leading
     * space comes with it), then the BOS dropped: each window adds its own. */
    int *all = NULL, n_all = 0;
    rc = tokenizer_encode(t, text, len, TOK_ADD_BOS, &all, &n_all, e);
    free(text);
    if (rc) return rc;
    int skip = n_all > 0 ? 1 : 0;
    *n = n_all - skip;
    *ids = xmalloc((size_t)(*n ? *n : 1) * sizeof **ids);
    memcpy(*ids, all + skip, (size_t)*n * sizeof **ids);
    free(all);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Trace */

typedef struct {
    int l0, l1, ffn, limit;
    ActHit *hits;
    int *n_hits; /* per position */
} TraceCtx;

static void trace_capture(void *ctx, int layer, int pos, int T, const float *gate, const float *up, const float *act) {
    TraceCtx *c = ctx;
    if (layer < c->l0 || layer > c->l1) return;
    for (int t = 0; t < T; t++) {
        ActHit *h = c->hits + (size_t)(pos + t) * c->limit;
        int *n = &c->n_hits[pos + t];
        for (int i = 0; i < c->ffn; i++) {
            float a = act[(size_t)t * c->ffn + i];
            /* Layers and neurons come in rising order: a tie goes after. */
            if (*n == c->limit && !(a > h[*n - 1].act)) continue;
            int j = *n < c->limit ? (*n)++ : c->limit - 1;
            while (j > 0 && a > h[j - 1].act) {
                h[j] = h[j - 1];
                j--;
            }
            h[j] = (ActHit){ layer, i, a };
        }
    }
}

int act_trace(Forward *f, const Model *m, const int *ids, int n, int l0, int l1, int limit, ActHit *hits, Error *e) {
    if (l0 < 0 || l1 < l0 || l1 >= m->cfg.n_layers)
        return error_set(e, NM_EINPUT, "layers %d-%d are outside the model's 0-%d", l0, l1, m->cfg.n_layers - 1);
    if (limit < 1 || (int64_t)limit > (int64_t)(l1 - l0 + 1) * m->cfg.ffn_dim)
        return error_set(e, NM_EINPUT, "--limit %d is outside 1-%lld (the neurons of layers %d-%d)", limit,
                         (long long)(l1 - l0 + 1) * m->cfg.ffn_dim, l0, l1);
    TraceCtx c = { l0, l1, m->cfg.ffn_dim, limit, hits, xcalloc((size_t)n, sizeof(int)) };
    float *logits = xmalloc((size_t)m->cfg.vocab_size * sizeof *logits);
    forward_set_capture(f, trace_capture, &c);
    int rc = forward_run(f, ids, n, 0, n, logits, 0, e);
    forward_set_capture(f, NULL, NULL);
    free(logits);
    free(c.n_hits);
    return rc;
}
