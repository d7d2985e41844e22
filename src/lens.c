/* lens.c — decoding neuron vectors through the final norm and the LM head
 * (Davies 2025, "Flash Interpretability"), exactly and fast.
 *
 * The whole map is one product, logits = V · W_Uᵀ (neurons × vocab), of
 * which each neuron keeps only its top-k, its bottom-k and the softmax
 * normaliser. For Llama 3.1 8B that product is 128,256 × 458,752 logits,
 * so it is never materialised: it is computed in tiles (TILE_NEURONS ×
 * TILE_VOCAB, by OpenBLAS sgemm) and each tile is folded into the running
 * top-k, bottom-k and log-sum-exp while it is still in cache.
 *
 * Work is split over threads by blocks of neurons; when there are fewer
 * blocks than threads (show, find) the vocabulary is split as well and the
 * partial results are merged. Every logit is a plain FP32 sgemm dot
 * product; nothing is approximated.
 */
#include "lens.h"

#include <cJSON.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A tile of the product is TILE_NEURONS × TILE_VOCAB floats (2 MiB). sgemm
 * repacks the head tile once per block of neurons, so blocks must be wide:
 * 512 neurons cut the packing from 12% of the time (128) to 3%. Measured in
 * docs/BENCHMARKS.md; -D overrides them for such measurements. */
#ifndef TILE_NEURONS
#define TILE_NEURONS 512
#endif
#ifndef TILE_VOCAB
#define TILE_VOCAB 1024
#endif

const char *lens_norm_name(LensNorm n) {
    static const char *names[] = { [NORM_FULL] = "full", [NORM_GAIN] = "gain", [NORM_NONE] = "none" };
    return names[n];
}

int lens_norm_from_name(const char *s, LensNorm *out) {
    for (int n = NORM_FULL; n <= NORM_NONE; n++)
        if (strcmp(s, lens_norm_name((LensNorm)n)) == 0) { *out = (LensNorm)n; return 1; }
    return 0;
}

/* ----------------------------------------------------------------------------
 * Opening: the final norm weight and the head */

int lens_open(Lens *L, const Model *m, LensNorm norm, int threads, int dequantise_head, Error *e) {
    memset(L, 0, sizeof *L);
    if (!m->has_weights || !m->output || !m->output_norm)
        return error_set(e, NM_EINPUT, "%s: has no LM head and final norm to decode through", m->path);
    L->m = m;
    L->norm = norm;
    L->threads = threads > 0 ? threads : cpu_count();
    L->vocab = m->cfg.vocab_size;
    L->dim = m->cfg.dim;
    L->tile_neurons = TILE_NEURONS;
    L->tile_vocab = TILE_VOCAB;
    L->gain = xmalloc((size_t)L->dim * sizeof *L->gain);
    tensor_rows_f32(m->output_norm, 0, 1, L->gain);
    if (m->output->type == DT_F32) {
        L->head = m->output->data; /* used in place: no copy of an F32 head */
    } else if (dequantise_head) {
        L->head_owned = xmalloc((size_t)L->vocab * (size_t)L->dim * sizeof(float));
        tensor_rows_f32(m->output, 0, L->vocab, L->head_owned);
        L->head = L->head_owned;
    }
    /* Our threads each run a single-threaded sgemm on their own tiles. */
    openblas_set_num_threads(1);
    return NM_OK;
}

void lens_close(Lens *L) {
    free(L->gain);
    free(L->head_owned);
    memset(L, 0, sizeof *L);
}

void lens_apply_norm(const Lens *L, float *vecs, int count) {
    int dim = L->dim;
    for (int i = 0; i < count; i++) {
        float *w = vecs + (size_t)i * dim;
        if (L->norm == NORM_NONE) continue;
        float scale = 1.0f;
        if (L->norm == NORM_FULL) {
            double ss = 0;
            for (int d = 0; d < dim; d++) ss += (double)w[d] * w[d];
            scale = (float)(1.0 / sqrt(ss / dim + (double)L->m->cfg.norm_eps));
        }
        for (int d = 0; d < dim; d++) w[d] = L->gain[d] * (w[d] * scale);
    }
}

double lens_flops(const Lens *L, int64_t count) { return 2.0 * L->vocab * (double)L->dim * (double)count; }

/* Rows [v0, v0+n) of the head as F32: in place, or converted into buf. */
static const float *head_rows(const Lens *L, int v0, int n, float *buf) {
    if (L->head) return L->head + (size_t)v0 * L->dim;
    tensor_rows_f32(L->m->output, v0, n, buf);
    return buf;
}

/* C (n × nv) = vecs (n × dim) · head[v0, v0+nv)ᵀ. sgemm repacks the head
 * tile, which only pays when many vectors share it; one or two vectors
 * (show) stream the head through sgemv instead, at memory speed. */
static void tile_product(const Lens *L, const float *vecs, int n, const float *head, int nv, float *c) {
    if (n <= 2) {
        for (int i = 0; i < n; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nv, L->dim, 1.0f, head, L->dim, vecs + (size_t)i * L->dim, 1, 0.0f,
                        c + (size_t)i * nv, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nv, L->dim, 1.0f, vecs, L->dim, head, L->dim, 0.0f, c, nv);
}

/* ----------------------------------------------------------------------------
 * Running top-k, bottom-k and log-sum-exp of one neuron */

typedef struct {
    LensToken *top, *bottom;
    int n_top, n_bottom;
    float max;    /* largest logit so far */
    double sum;   /* Σ exp(logit - max) */
} Acc;

/* Inserts (x, id) into list, kept sorted by sign·logit falling, then id
 * rising, at most k long. sign = +1 keeps the highest logits, -1 the lowest. */
static void keep(LensToken *list, int *n, int k, float sign, float x, int id) {
    if (k == 0) return;
    int i = *n;
    if (i == k) {
        const LensToken *last = &list[k - 1];
        if (!(sign * x > sign * last->logit || (x == last->logit && id < last->id))) return;
        i = k - 1;
    } else {
        (*n)++;
    }
    while (i > 0 && (sign * x > sign * list[i - 1].logit || (x == list[i - 1].logit && id < list[i - 1].id))) {
        list[i] = list[i - 1];
        i--;
    }
    list[i] = (LensToken){ .id = id, .logit = x };
}

/* Adds e^(m - a->max) · s, a normaliser taken relative to m, to a's. */
static void acc_add_sum(Acc *a, float m, double s) {
    if (m > a->max) {
        a->sum = a->sum * exp((double)a->max - m) + s;
        a->max = m;
    } else {
        a->sum += s * exp((double)m - a->max);
    }
}

/* Folds one row of a tile (logits of tokens v0, v0+1, ...) into a. Tokens
 * arrive in rising id order, so a logit equal to the current k-th best can
 * never displace it: one comparison per logit decides. */
static void acc_scan(Acc *a, const float *row, int n, int v0, int top_k, int bottom_k) {
    float hi = a->n_top == top_k ? (top_k ? a->top[top_k - 1].logit : INFINITY) : -INFINITY;
    float lo = a->n_bottom == bottom_k ? (bottom_k ? a->bottom[bottom_k - 1].logit : -INFINITY) : INFINITY;
    float m = row[0];
    for (int j = 0; j < n; j++) {
        float x = row[j];
        m = x > m ? x : m;
        if (x > hi) {
            keep(a->top, &a->n_top, top_k, 1.0f, x, v0 + j);
            if (a->n_top == top_k) hi = a->top[top_k - 1].logit;
        }
        if (x < lo) {
            keep(a->bottom, &a->n_bottom, bottom_k, -1.0f, x, v0 + j);
            if (a->n_bottom == bottom_k) lo = a->bottom[bottom_k - 1].logit;
        }
    }
    float s = 0;
    for (int j = 0; j < n; j++) s += expf(row[j] - m);
    acc_add_sum(a, m, s);
}

/* ----------------------------------------------------------------------------
 * The tiled, threaded decode */

typedef struct {
    const Lens *L;
    const float *vecs;
    int count, top_k, bottom_k;
    int splits;          /* vocabulary slices per neuron block */
    int n_items;         /* neuron blocks × splits */
    atomic_int next;
    Acc *acc;            /* count × splits */
} Job;

static void *decode_worker(void *arg) {
    Job *j = arg;
    const Lens *L = j->L;
    int tn = L->tile_neurons, tv = L->tile_vocab;
    float *c = xmalloc((size_t)tn * tv * sizeof *c);
    float *hbuf = L->head ? NULL : xmalloc((size_t)tv * L->dim * sizeof *hbuf);
    for (int item; (item = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        int block = item / j->splits, split = item % j->splits;
        int n0 = block * tn, nb = j->count - n0 < tn ? j->count - n0 : tn;
        int v_begin = (int)((int64_t)L->vocab * split / j->splits);
        int v_end = (int)((int64_t)L->vocab * (split + 1) / j->splits);
        for (int v0 = v_begin; v0 < v_end; v0 += tv) {
            int nv = v_end - v0 < tv ? v_end - v0 : tv;
            tile_product(L, j->vecs + (size_t)n0 * L->dim, nb, head_rows(L, v0, nv, hbuf), nv, c);
            for (int i = 0; i < nb; i++)
                acc_scan(&j->acc[(size_t)(n0 + i) * j->splits + split], c + (size_t)i * nv, nv, v0, j->top_k,
                         j->bottom_k);
        }
    }
    free(c);
    free(hbuf);
    return NULL;
}

/* Runs fn(job) on L->threads threads (the caller's being one of them). */
static void run_threads(int threads, void *(*fn)(void *), void *job) {
    pthread_t *tid = xmalloc((size_t)threads * sizeof *tid);
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, fn, job) == 0) started++;
    fn(job);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    free(tid);
}

void lens_decode(const Lens *L, const float *vecs, int count, int top_k, int bottom_k, LensResult *out) {
    if (count <= 0) return;
    int blocks = (count + L->tile_neurons - 1) / L->tile_neurons;
    int threads = L->threads;
    /* Fewer neuron blocks than threads: slice the vocabulary too. */
    int splits = blocks >= threads ? 1 : (threads + blocks - 1) / blocks;
    int max_splits = (L->vocab + L->tile_vocab - 1) / L->tile_vocab;
    if (splits > max_splits) splits = max_splits;
    Job j = { .L = L, .vecs = vecs, .count = count, .top_k = top_k, .bottom_k = bottom_k, .splits = splits,
              .n_items = blocks * splits };
    atomic_init(&j.next, 0);
    size_t n_acc = (size_t)count * splits, per = (size_t)top_k + bottom_k;
    j.acc = xcalloc(n_acc, sizeof *j.acc);
    LensToken *pool = xmalloc((n_acc * per + 1) * sizeof *pool);
    for (size_t a = 0; a < n_acc; a++) {
        j.acc[a].top = pool + a * per;
        j.acc[a].bottom = pool + a * per + top_k;
        j.acc[a].max = -INFINITY;
    }
    run_threads(threads < j.n_items ? threads : j.n_items, decode_worker, &j);

    /* Merge the vocabulary slices of each neuron, then turn logits into
     * probabilities with the normaliser of the full vocabulary. */
    for (int i = 0; i < count; i++) {
        Acc r = { .top = out[i].top, .bottom = out[i].bottom, .max = -INFINITY };
        for (int s = 0; s < splits; s++) {
            const Acc *a = &j.acc[(size_t)i * splits + s];
            for (int t = 0; t < a->n_top; t++) keep(r.top, &r.n_top, top_k, 1.0f, a->top[t].logit, a->top[t].id);
            for (int t = 0; t < a->n_bottom; t++)
                keep(r.bottom, &r.n_bottom, bottom_k, -1.0f, a->bottom[t].logit, a->bottom[t].id);
            acc_add_sum(&r, a->max, a->sum);
        }
        out[i].lse = (double)r.max + log(r.sum);
        for (int t = 0; t < r.n_top; t++) r.top[t].prob = (float)exp((double)r.top[t].logit - out[i].lse);
        for (int t = 0; t < r.n_bottom; t++) r.bottom[t].prob = (float)exp((double)r.bottom[t].logit - out[i].lse);
    }
    free(pool);
    free(j.acc);
}

void lens_logits(const Lens *L, const float *vecs, int count, float *out) {
    int tv = L->tile_vocab;
    float *hbuf = L->head ? NULL : xmalloc((size_t)tv * L->dim * sizeof *hbuf);
    float *c = xmalloc((size_t)count * tv * sizeof *c);
    for (int v0 = 0; v0 < L->vocab; v0 += tv) {
        int nv = L->vocab - v0 < tv ? L->vocab - v0 : tv;
        tile_product(L, vecs, count, head_rows(L, v0, nv, hbuf), nv, c);
        for (int i = 0; i < count; i++)
            memcpy(out + (size_t)i * L->vocab + v0, c + (size_t)i * nv, (size_t)nv * sizeof *c);
    }
    free(c);
    free(hbuf);
}

int lens_matrix_mask(const char *s, unsigned *mask) {
    MatrixKind k;
    if (strcmp(s, "all") == 0) *mask = 1u << MATRIX_UP | 1u << MATRIX_GATE | 1u << MATRIX_DOWN;
    else if (matrix_from_name(s, &k)) *mask = 1u << k;
    else return 0;
    return 1;
}

void lens_neuron_vectors(const Lens *L, MatrixKind k, int layer, int n0, int count, float *out) {
    model_neuron_vectors(L->m, k, layer, n0, count, out);
    lens_apply_norm(L, out, count);
}

/* ----------------------------------------------------------------------------
 * Result storage */

void lens_batch_init(LensBatch *b, int count, int top_k, int bottom_k) {
    size_t per = (size_t)top_k + bottom_k;
    b->count = count;
    b->top_k = top_k;
    b->bottom_k = bottom_k;
    b->r = xcalloc((size_t)count, sizeof *b->r);
    b->pool = xcalloc((size_t)count * per + 1, sizeof *b->pool);
    for (int i = 0; i < count; i++) {
        b->r[i].top = b->pool + (size_t)i * per;
        b->r[i].bottom = b->pool + (size_t)i * per + top_k;
    }
}

void lens_batch_free(LensBatch *b) {
    free(b->r);
    free(b->pool);
    memset(b, 0, sizeof *b);
}

/* ----------------------------------------------------------------------------
 * Writing results */

TokenNames lens_vocab_names(const Vocab *v) { return (TokenNames){ v->n_tokens, v->text, v->text_len, v->type }; }

int lens_find_token(const TokenNames *tn, const char *text, int len) {
    int found = -1;
    for (int i = 0; i < tn->n; i++) {
        if (tn->len[i] != len || memcmp(tn->text[i], text, (size_t)len) != 0) continue;
        if (tn->type[i] == TOKEN_NORMAL) return i;
        if (found < 0) found = i;
    }
    return found;
}

char *lens_token_text(const TokenNames *tn, int id) {
    const char *t = id >= 0 && id < tn->n ? tn->text[id] : "";
    size_t n = id >= 0 && id < tn->n ? (size_t)tn->len[id] : 0, cap = 4 * n + 1; /* \xNN is the longest form */
    char *out = xmalloc(cap);
    escape_token(t, n, out, cap);
    return out;
}

void lens_write_tsv_header(FILE *f) { fputs("matrix\tlayer\tneuron\trank\ttoken_id\ttoken\tlogit\tprob\n", f); }

static void tsv_row(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, int rank, const LensToken *t) {
    char *text = lens_token_text(tn, t->id);
    fprintf(f, "%s\t%d\t%d\t%d\t%d\t%s\t%.7g\t%.6g\n", matrix_name(k), layer, neuron, rank, t->id, text, t->logit, t->prob);
    free(text);
}

void lens_write_tsv(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                    int n_bottom) {
    for (int i = 0; i < n_top; i++) tsv_row(f, tn, k, layer, neuron, i + 1, &r->top[i]);
    for (int i = 0; i < n_bottom; i++) tsv_row(f, tn, k, layer, neuron, -(i + 1), &r->bottom[i]);
}

/* JSON strings must be UTF-8: a token that is not keeps TSV's escaped form. */
static cJSON *json_tokens(const TokenNames *tn, const LensToken *t, int n, int sign) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        const char *text = t[i].id < tn->n ? tn->text[t[i].id] : "";
        int len = t[i].id < tn->n ? tn->len[t[i].id] : 0, valid = 1;
        for (int p = 0; p < len && valid;) {
            int l = utf8_sequence_length((const unsigned char *)text + p, (size_t)(len - p));
            valid = l > 0 && text[p] != 0;
            p += l;
        }
        cJSON_AddNumberToObject(o, "rank", sign * (i + 1));
        cJSON_AddNumberToObject(o, "token_id", t[i].id);
        if (valid) {
            cJSON_AddStringToObject(o, "token", text);
        } else {
            char *esc = lens_token_text(tn, t[i].id);
            cJSON_AddStringToObject(o, "token", esc);
            free(esc);
        }
        cJSON_AddNumberToObject(o, "logit", t[i].logit);
        cJSON_AddNumberToObject(o, "prob", t[i].prob);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

void lens_write_jsonl(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                      int n_bottom) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "matrix", matrix_name(k));
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neuron", neuron);
    cJSON_AddNumberToObject(o, "lse", r->lse);
    cJSON_AddItemToObject(o, "top", json_tokens(tn, r->top, n_top, 1));
    cJSON_AddItemToObject(o, "bottom", json_tokens(tn, r->bottom, n_bottom, -1));
    char *s = cJSON_PrintUnformatted(o);
    fputs(s, f);
    fputc('\n', f);
    free(s);
    cJSON_Delete(o);
}
