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

static void update_pass1(ActRun *r, ActNeuron *s, const ActExample *x) {
    float a = x->act;
    s->count++;
    double d = (double)a - s->mean;
    s->mean += d / (double)s->count;
    s->m2 += d * ((double)a - s->mean);
    if (s->count == 1 || a < s->min) s->min = a;
    if (s->count == 1 || a > s->max) s->max = a;
    s->positive += a > 0;
    s->sign[(x->gate > 0 ? 0 : 2) + (x->up > 0 ? 0 : 1)]++;
    s->hist[act_hist_bin(a)]++;
    heap_offer(s->top, &s->n_top, r->top_n, x, 1);
    heap_offer(s->bottom, &s->n_bottom, r->bottom_n, x, -1);
}

static void update_pass2(ActRun *r, ActNeuron *s, int layer, int neuron, const ActExample *x) {
    double a = x->act;
    int b = a >= s->q[2] ? 2 : a >= s->q[1] ? 1 : a >= s->q[0] ? 0 : -1;
    if (b < 0) return;
    uint64_t key = act_band_key(r->seed, layer, neuron, x->doc, x->window, x->pos);
    int n = s->n_band[b], worst = 0;
    if (n < ACT_BAND_SAMPLES) {
        s->band[b][n] = *x;
        s->band_key[b][n] = key;
        s->n_band[b]++;
        return;
    }
    for (int i = 1; i < n; i++)
        if (s->band_key[b][i] > s->band_key[b][worst]) worst = i;
    if (key < s->band_key[b][worst]) {
        s->band[b][worst] = *x;
        s->band_key[b][worst] = key;
    }
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
        if (r->pass == 1)
            for (int i = 1; i <= count; i++) r->unigram[r->ids[i]]++;
        r->tokens += count;
    }
    forward_set_capture(f, NULL, NULL);
    return rc;
}

void act_run_begin_pass2(ActRun *r) {
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

void act_run_finish(ActRun *r) { sort_lists(r, cmp_best_first_top, cmp_best_first_bottom, cmp_position); }

void act_run_sort_heaps(ActRun *r) { sort_lists(r, cmp_worst_first_top, cmp_worst_first_bottom, NULL); }

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
