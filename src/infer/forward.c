/* forward.c — the Llama forward pass: RMSNorm, RoPE (interleaved or
 * rotate-half, with llama3 scaling), grouped-query attention over a KV cache,
 * the SwiGLU MLP with neuron hooks, and the LM head.
 *
 * Tokens go through in batches of up to BATCH: a prompt costs one pass over
 * the weights per batch, not per token. Each matmul walks the weight matrix in
 * fixed chunks of rows; a chunk is dequantised once (F32 is used in place)
 * and multiplied with every token of the batch by OpenBLAS, single-threaded
 * inside our own pool of threads (base/pool.h), which share the chunks out:
 * one task per chunk, so each output is one fixed computation whichever
 * thread runs it, and any thread count gives the same bits.
 *
 * That is the exact path, the default. forward_set_exact(f, 0) takes the
 * fast one for the types tensor/vecdot.h knows: the batch's activations are
 * quantised once per matmul (int8 per block, as llama.cpp does) and every
 * row meets them where it lies, in its stored blocks — no F32 copy, 1-4
 * bytes read per weight instead of 4 written and read again — through the
 * batched kernels (tensor/gemm_q.h), which unpack each block once per batch
 * of tokens. Chunks of 32 rows, one task each: still one fixed computation
 * per output, the same in a prompt and in decode. Attention too: the exact
 * path keeps its scalar loop, one task per (token, head); the fast one runs
 * tensor/attn.h, one task per (KV head, block of tokens), each cache row
 * read once for the block's queries, in vectors. A capture (the
 * activations commands) always runs exact.
 */
#include "infer/forward.h"
#include "model/rope.h"

#include "base/pool.h"
#include "tensor/attn.h"
#include "tensor/half.h"
#include "tensor/vecdot.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    BATCH = 32,             /* tokens per pass over the weights */
    CHUNK_FLOATS = 32768,   /* a chunk of rows dequantised at once: 128 KB, stays in L2 */
    FAST_CHUNK_ROWS = 32,   /* the fast path's rows per task: two of gemm_q.c's row tiles */
    PARALLEL_MIN = 1 << 16, /* multiply-adds below which waking the pool costs more than it saves */
    MAX_THREADS = 256,
    ATT_TOKENS = 8,         /* the fast path's tokens per attention task (fewer at long contexts) */
    ATT_SCRATCH = 1 << 18,  /* floats of attention scratch per thread at least: 1 MB */
};

/* Runs fn over n tasks: on the pool (base/pool.h) when the work is worth
 * waking it for, else on the caller alone. */
static void run_tasks(Pool *p, int64_t n, PoolTask fn, void *arg, int parallel) {
    if (parallel) {
        pool_run(p, n, fn, arg);
        return;
    }
    for (int64_t t = 0; t < n; t++) fn(arg, t, 0);
}

/* ----------------------------------------------------------------------------
 * State */

struct Forward {
    const Model *m;
    Config c;
    int n_ctx, q_dim, kv_dim, max_cols;
    Pool *pool;
    int n_threads;
    float **chunk_buf;              /* per thread: CHUNK_FLOATS of dequantised rows */
    float **scores;                 /* per thread: n_ctx attention scores; the fast path: att_scratch floats */
    size_t att_scratch;
    float *x, *xb, *q, *k, *v, *att; /* BATCH rows each */
    float *gate, *up;               /* BATCH × ffn_dim */
    float *key_cache, *value_cache; /* [layer][position][kv_dim] */
    uint16_t *key16, *value16;      /* forward_set_kv_f16: the same in F16 (the F32 ones then NULL) */
    float **kv_row;                 /* per thread: head_dim floats, an F16 row widened */
    float *attn_norm, *ffn_norm, *out_norm; /* norm weights, widened to F32 (tiny) */
    float *inv_freq;                /* head_dim/2 RoPE frequencies */
    const HookSet *hooks;
    ForwardCapture capture;         /* forward_set_capture: fn, its ctx, and gate·x kept before SiLU */
    void *capture_ctx;
    float *gate_in;
    int exact;                      /* forward_set_exact: 1 = widen to F32 and sgemv/sgemm (the default) */
    char *act;                      /* BATCH activations in vecdot's form (the fast path) */
};

/* ----------------------------------------------------------------------------
 * Matmul: out[t][r] = W[r] · x[t] for T tokens */

typedef struct {
    Forward *f;
    const Tensor *w;
    const float *x;
    float *out;
    int T;
    int64_t rows, cols, chunk_rows, n_chunks;
    const char *act;        /* the fast path: T activations in vecdot's batch form; NULL: exact */
    size_t row_bytes;
} MatmulTask;

/* Widens rows [r0, r0+nr) to F32 through the dtype table, whose BF16 and
 * F16 rows take vector loops where the CPU has them (exact either way). */
static void rows_to_f32(const Tensor *w, int64_t r0, int64_t nr, float *out) { tensor_rows_f32(w, r0, nr, out); }

static void matmul_chunk(MatmulTask *t, int64_t c, float *buf) {
    int64_t r0 = c * t->chunk_rows, nr = t->rows - r0 < t->chunk_rows ? t->rows - r0 : t->chunk_rows;
    if (t->act) {
        /* Straight on the stored blocks, every token of the batch per
         * block while the block is unpacked in registers (gemm_q.h): the
         * weights are read and unpacked once per batch, and each (row,
         * token) is the same computation decode does for that token. */
        vecdot_gemm(t->w->type, (const char *)t->w->data + (size_t)r0 * t->row_bytes, nr, t->cols, t->act, t->T,
                    t->out + r0, t->rows);
        return;
    }
    const float *w;
    if (dtype_info(t->w->type)->plain == PLAIN_F32) {
        w = (const float *)t->w->data + r0 * t->cols;
    } else {
        rows_to_f32(t->w, r0, nr, buf);
        w = buf;
    }
    if (t->T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nr, (int)t->cols, 1.0f, w, (int)t->cols, t->x, 1, 0.0f, t->out + r0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->T, (int)nr, (int)t->cols, 1.0f, t->x, (int)t->cols, w,
                    (int)t->cols, 0.0f, t->out + r0, (int)t->rows);
}

static void matmul_task(void *arg, int64_t chunk, int worker) {
    MatmulTask *t = arg;
    matmul_chunk(t, chunk, t->f->chunk_buf[worker]);
}

/* The chunk size depends only on the row length, never on the thread count:
 * each output is one fixed computation, whichever thread does it. */
static void matmul(Forward *f, const Tensor *w, const float *x, int T, float *out) {
    MatmulTask t = { .f = f, .w = w, .x = x, .out = out, .T = T, .rows = tensor_rows(w), .cols = tensor_cols(w) };
    t.chunk_rows = t.cols >= CHUNK_FLOATS ? 1 : CHUNK_FLOATS / t.cols;
    if (!f->exact && !f->capture && vecdot_supported(w->type)) { /* capture sees exact values */
        /* Nothing is widened: a chunk is the rows one task multiplies, as
         * many as the batched kernels tile at once (each output is the same
         * computation whatever the chunk: gemm_q.h). */
        t.chunk_rows = FAST_CHUNK_ROWS;
        t.row_bytes = dtype_bytes(w->type, t.cols);
        vecdot_quantize_batch(w->type, x, t.cols, T, f->act); /* once per matmul: the tiles' layout under amx */
        t.act = f->act;
    }
    t.n_chunks = (t.rows + t.chunk_rows - 1) / t.chunk_rows;
    run_tasks(f->pool, t.n_chunks, matmul_task, &t, t.rows * t.cols * T >= PARALLEL_MIN);
}

/* ----------------------------------------------------------------------------
 * Norm, RoPE, activation */

/* o = w ⊙ x / sqrt(mean(x²) + eps), as llama2.c and HF compute it in float. */
static void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
}

/* Rotates every head of vec (n_heads × head_dim) to position pos. Pair i of a
 * head is (2i, 2i+1) in Meta's interleaved layout, (i, i + d/2) in HF's
 * rotate-half layout; both turn by the angle pos · inv_freq[i]. */
static void rope(const Forward *f, float *vec, int n_heads, int pos) {
    int hd = f->c.head_dim, half = hd / 2, inter = f->c.rope_interleaved;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * f->inv_freq[i], cs = cosf(angle), sn = sinf(angle);
        int a = inter ? 2 * i : i, b = inter ? 2 * i + 1 : i + half;
        for (int h = 0; h < n_heads; h++) {
            float *v = vec + (size_t)h * hd, v0 = v[a], v1 = v[b];
            v[a] = v0 * cs - v1 * sn;
            v[b] = v0 * sn + v1 * cs;
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* ----------------------------------------------------------------------------
 * Attention: each (token, head) pair is one unit of work */

typedef struct {
    Forward *f;
    int layer, T, pos;
    int tb, n_blocks; /* the fast path: tokens per task, blocks of them */
    int gs;           /* the fast path: each KV head's G query heads split in gs tasks */
} AttentionTask;

/* Row j of a layer's cache for kv head kvh: in place (F32), or widened
 * into buf (F16, through the dtype table's vector loop). */
static const float *kv_row(const Forward *f, const float *c32, const uint16_t *c16, size_t at, float *buf) {
    if (c32) return c32 + at;
    dtype_info(DT_F16)->to_float(c16 + at, buf, f->c.head_dim);
    return buf;
}

static void attend(Forward *f, int layer, int t, int h, int pos, float *scores, float *buf) {
    const Config *c = &f->c;
    int hd = c->head_dim, kvh = h / (c->n_heads / c->n_kv_heads), n = pos + t + 1;
    const float *q = f->q + (size_t)t * f->q_dim + (size_t)h * hd;
    size_t base = (size_t)layer * f->n_ctx * f->kv_dim + (size_t)kvh * hd;
    float scale = 1.0f / sqrtf((float)hd), max = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *k = kv_row(f, f->key_cache, f->key16, base + (size_t)j * f->kv_dim, buf);
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * k[i];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
    }
    for (int j = 0; j < n; j++) sum += scores[j] = expf(scores[j] - max);
    float *out = f->att + (size_t)t * f->q_dim + (size_t)h * hd;
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j < n; j++) {
        const float *v = kv_row(f, f->value_cache, f->value16, base + (size_t)j * f->kv_dim, buf);
        float a = scores[j] / sum;
        for (int i = 0; i < hd; i++) out[i] += a * v[i];
    }
}

/* One task per (token, head). */
static void attention_task(void *arg, int64_t u, int worker) {
    AttentionTask *t = arg;
    int heads = t->f->c.n_heads;
    attend(t->f, t->layer, (int)(u / heads), (int)(u % heads), t->pos, t->f->scores[worker], t->f->kv_row[worker]);
}

/* The fast path: one task per (KV head, block of tb tokens), its G query
 * heads and tb tokens in one call of tensor/attn.h, which reads each cache
 * row once for all of them (decode with more threads than KV heads splits
 * the G heads into gs tasks). Each output is the same computation in any
 * block (attn.h), so neither tb, gs nor the thread count changes a bit. */
static void attention_group_task(void *arg, int64_t u, int worker) {
    AttentionTask *t = arg;
    Forward *f = t->f;
    const Config *c = &f->c;
    int G = c->n_heads / c->n_kv_heads / t->gs, part = (int)(u % t->gs);
    u /= t->gs;
    int kvh = (int)(u / t->n_blocks), t0 = (int)(u % t->n_blocks) * t->tb;
    int T = t->T - t0 < t->tb ? t->T - t0 : t->tb;
    size_t base = (size_t)t->layer * f->n_ctx * f->kv_dim + (size_t)kvh * c->head_dim;
    AttnKV kv = { .ld = (size_t)f->kv_dim, .hd = c->head_dim };
    if (f->key16) kv.k16 = f->key16 + base, kv.v16 = f->value16 + base;
    else kv.k = f->key_cache + base, kv.v = f->value_cache + base;
    size_t at = (size_t)t0 * f->q_dim + ((size_t)kvh * t->gs + part) * G * c->head_dim;
    attn_heads(&kv, f->q + at, T, G, (size_t)f->q_dim, t->pos + t0 + 1, f->att + at, f->scores[worker]);
}

static void attention(Forward *f, int layer, int T, int pos) {
    const Config *c = &f->c;
    AttentionTask at = { .f = f, .layer = layer, .T = T, .pos = pos };
    int parallel = (int64_t)T * c->n_heads * (pos + T) * c->head_dim >= PARALLEL_MIN;
    if (f->exact || f->capture) {
        run_tasks(f->pool, (int64_t)T * c->n_heads, attention_task, &at, parallel);
        return;
    }
    /* As many tokens per task as the scratch holds (at least one: forward_new sized it). */
    int G = c->n_heads / c->n_kv_heads;
    at.tb = ATT_TOKENS;
    while (at.tb > 1 && attn_scratch_floats(at.tb, G, pos + T, c->head_dim) > f->att_scratch) at.tb--;
    at.n_blocks = (T + at.tb - 1) / at.tb;
    at.gs = 1;
    while ((int64_t)c->n_kv_heads * at.n_blocks * at.gs < f->n_threads && G % (2 * at.gs) == 0) at.gs *= 2;
    run_tasks(f->pool, (int64_t)c->n_kv_heads * at.n_blocks * at.gs, attention_group_task, &at, parallel);
}

/* ----------------------------------------------------------------------------
 * Neuron hooks */

static void apply_hooks(const Forward *f, int layer, HookSite site, float *acts, int T, int hook_from) {
    const HookSet *s = f->hooks;
    if (!s || s->site != site) return;
    for (int t = hook_from < 0 ? 0 : hook_from; t < T; t++)
        for (int i = 0; i < s->n; i++) {
            const NeuronHook *h = &s->hook[i];
            if (h->layer != layer) continue;
            float *a = acts + (size_t)t * f->c.ffn_dim + h->neuron;
            *a = h->kind == HOOK_CLAMP ? h->value : *a * h->value;
        }
}

/* ----------------------------------------------------------------------------
 * One batch of T tokens through every layer */

static void layer_forward(Forward *f, int l, int T, int pos, int hook_from) {
    const Config *c = &f->c;
    const LayerWeights *w = &f->m->layers[l];
    int dim = c->dim, ffn = c->ffn_dim;
    for (int t = 0; t < T; t++) rmsnorm(f->xb + (size_t)t * dim, f->x + (size_t)t * dim, f->attn_norm + (size_t)l * dim, dim, c->norm_eps);
    matmul(f, w->wq, f->xb, T, f->q);
    matmul(f, w->wk, f->xb, T, f->k);
    matmul(f, w->wv, f->xb, T, f->v);
    for (int t = 0; t < T; t++) {
        rope(f, f->q + (size_t)t * f->q_dim, c->n_heads, pos + t);
        rope(f, f->k + (size_t)t * f->kv_dim, c->n_kv_heads, pos + t);
        size_t at = ((size_t)l * f->n_ctx + (size_t)(pos + t)) * f->kv_dim;
        if (f->key16) {
            for (int i = 0; i < f->kv_dim; i++) {
                f->key16[at + i] = f32_to_f16(f->k[(size_t)t * f->kv_dim + i]);
                f->value16[at + i] = f32_to_f16(f->v[(size_t)t * f->kv_dim + i]);
            }
        } else {
            memcpy(f->key_cache + at, f->k + (size_t)t * f->kv_dim, (size_t)f->kv_dim * sizeof(float));
            memcpy(f->value_cache + at, f->v + (size_t)t * f->kv_dim, (size_t)f->kv_dim * sizeof(float));
        }
    }
    attention(f, l, T, pos);
    matmul(f, w->wo, f->att, T, f->xb);
    for (size_t i = 0; i < (size_t)T * dim; i++) f->x[i] += f->xb[i];

    for (int t = 0; t < T; t++) rmsnorm(f->xb + (size_t)t * dim, f->x + (size_t)t * dim, f->ffn_norm + (size_t)l * dim, dim, c->norm_eps);
    matmul(f, w->gate, f->xb, T, f->gate);
    matmul(f, w->up, f->xb, T, f->up);
    apply_hooks(f, l, SITE_UP, f->up, T, hook_from);
    if (f->capture) memcpy(f->gate_in, f->gate, (size_t)T * ffn * sizeof(float)); /* SiLU overwrites it */
    for (size_t i = 0; i < (size_t)T * ffn; i++) f->gate[i] = silu(f->gate[i]) * f->up[i];
    apply_hooks(f, l, SITE_ACT, f->gate, T, hook_from);
    if (f->capture) f->capture(f->capture_ctx, l, pos, T, f->gate_in, f->up, f->gate);
    matmul(f, w->down, f->gate, T, f->xb);
    for (size_t i = 0; i < (size_t)T * dim; i++) f->x[i] += f->xb[i];
}

/* Logits of tokens [t0, T) of the batch into out ((T - t0) × vocab). */
static void head_forward(Forward *f, int t0, int T, float *out) {
    int dim = f->c.dim;
    for (int t = t0; t < T; t++) rmsnorm(f->xb + (size_t)t * dim, f->x + (size_t)t * dim, f->out_norm, dim, f->c.norm_eps);
    matmul(f, f->m->output, f->xb + (size_t)t0 * dim, T - t0, out);
}

/* 0 when x[0..n) holds a NaN or an infinity (x·0 is 0 for every finite x). */
static int all_finite(const float *x, size_t n) {
    float acc = 0;
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0;
}

/* A NaN or an infinity in the residual stream (a non-finite weight, an
 * overflow, a clamp to a huge value) would flow silently into every later
 * logit and sampled token: the pass stops at the first layer that shows it. */
static int batch_forward(Forward *f, const int *ids, int T, int pos, int hook_from, Error *e) {
    size_t n = (size_t)T * f->c.dim;
    for (int t = 0; t < T; t++) tensor_rows_f32(f->m->tok_embd, ids[t], 1, f->x + (size_t)t * f->c.dim);
    if (!all_finite(f->x, n)) return error_set(e, NM_ERUNTIME, "the token embedding holds a NaN or an infinity");
    for (int l = 0; l < f->c.n_layers; l++) {
        layer_forward(f, l, T, pos, hook_from);
        if (!all_finite(f->x, n))
            return error_set(e, NM_ERUNTIME, "layer %d: the activations became non-finite (NaN or Inf) at positions %d-%d: "
                             "the model's weights, or a clamp, give no finite result", l, pos, pos + T - 1);
    }
    return NM_OK;
}

int forward_run(Forward *f, const int *ids, int n, int pos, int hook_from, float *logits, int all_logits, Error *e) {
    if (n < 1 || pos < 0 || pos > f->n_ctx - n)
        return error_set(e, NM_EINPUT, "positions %d-%d do not fit the context of %d tokens", pos, pos + n - 1, f->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= f->c.vocab_size)
            return error_set(e, NM_EINPUT, "token id %d is outside the vocabulary 0-%d", ids[i], f->c.vocab_size - 1);
    size_t vocab = (size_t)f->c.vocab_size;
    for (int b = 0; b < n; b += BATCH) {
        int T = n - b < BATCH ? n - b : BATCH;
        int rc = batch_forward(f, ids + b, T, pos + b, hook_from - b, e);
        if (rc) return rc;
        float *out = all_logits ? logits + (size_t)b * vocab : logits;
        int first = all_logits ? 0 : T - 1;
        if (!all_logits && b + T != n) continue;
        head_forward(f, first, T, out);
        if (!all_finite(out, (size_t)(T - first) * vocab))
            return error_set(e, NM_ERUNTIME, "the LM head gave non-finite logits (NaN or Inf) at positions %d-%d", pos + b + first,
                             pos + b + T - 1);
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Setting up */

int forward_set_hooks(Forward *f, const HookSet *hooks, Error *e) {
    for (int i = 0; hooks && i < hooks->n; i++) {
        const NeuronHook *h = &hooks->hook[i];
        if (h->layer < 0 || h->layer >= f->c.n_layers || h->neuron < 0 || h->neuron >= f->c.ffn_dim)
            return error_set(e, NM_EINPUT, "hook on neuron %d:%d is outside the model (%d layers x %d neurons)", h->layer,
                             h->neuron, f->c.n_layers, f->c.ffn_dim);
    }
    f->hooks = hooks && hooks->n ? hooks : NULL;
    return NM_OK;
}

static float *alloc_floats(size_t a, size_t b, Error *e, int *failed) {
    size_t n;
    if (*failed || !mul_size(a, b, &n) || !mul_size(n, sizeof(float), &n)) {
        if (!*failed) error_set(e, NM_ERUNTIME, "forward pass buffers overflow the address space");
        *failed = 1;
        return NULL;
    }
    return xcalloc(n / sizeof(float), sizeof(float));
}

int forward_new(const Model *m, int n_ctx, int n_threads, Forward **out, Error *e) {
    *out = NULL;
    const Config *c = &m->cfg;
    if (!m->has_weights) return error_set(e, NM_EINPUT, "%s: has no weights", m->path);
    if (n_ctx < 1 || n_ctx > c->max_seq_len)
        return error_set(e, NM_EINPUT, "%s: context of %d tokens is outside the model's 1-%d", m->path, n_ctx, c->max_seq_len);
    if (n_threads <= 0) n_threads = cpu_count();
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    Forward *f = xcalloc(1, sizeof *f);
    f->m = m;
    f->c = *c;
    f->n_ctx = n_ctx;
    f->q_dim = c->n_heads * c->head_dim;
    f->kv_dim = c->n_kv_heads * c->head_dim;
    /* A chunk holds CHUNK_FLOATS, or one row when rows are longer. */
    f->max_cols = CHUNK_FLOATS;
    if (c->dim > f->max_cols) f->max_cols = c->dim;
    if (c->ffn_dim > f->max_cols) f->max_cols = c->ffn_dim;
    if (f->q_dim > f->max_cols) f->max_cols = f->q_dim;
    int failed = 0;
    size_t L = (size_t)c->n_layers, dim = (size_t)c->dim, ffn = (size_t)c->ffn_dim;
    f->x = alloc_floats(BATCH, dim, e, &failed);
    f->xb = alloc_floats(BATCH, dim, e, &failed);
    f->q = alloc_floats(BATCH, (size_t)f->q_dim, e, &failed);
    f->att = alloc_floats(BATCH, (size_t)f->q_dim, e, &failed);
    f->k = alloc_floats(BATCH, (size_t)f->kv_dim, e, &failed);
    f->v = alloc_floats(BATCH, (size_t)f->kv_dim, e, &failed);
    f->gate = alloc_floats(BATCH, ffn, e, &failed);
    f->up = alloc_floats(BATCH, ffn, e, &failed);
    f->key_cache = alloc_floats(L * (size_t)n_ctx, (size_t)f->kv_dim, e, &failed);
    f->value_cache = alloc_floats(L * (size_t)n_ctx, (size_t)f->kv_dim, e, &failed);
    f->attn_norm = alloc_floats(L, dim, e, &failed);
    f->ffn_norm = alloc_floats(L, dim, e, &failed);
    f->out_norm = alloc_floats(1, dim, e, &failed);
    f->inv_freq = alloc_floats(1, (size_t)c->head_dim / 2, e, &failed);
    f->act = (char *)alloc_floats(BATCH, (size_t)f->max_cols, e, &failed); /* F32 is vecdot's widest form */
    f->exact = 1;
    if (failed) {
        forward_free(f);
        return NM_ERUNTIME;
    }
    for (int l = 0; l < c->n_layers; l++) {
        tensor_rows_f32(m->layers[l].attn_norm, 0, 1, f->attn_norm + (size_t)l * dim);
        tensor_rows_f32(m->layers[l].ffn_norm, 0, 1, f->ffn_norm + (size_t)l * dim);
    }
    tensor_rows_f32(m->output_norm, 0, 1, f->out_norm);
    rope_frequencies(c, m->rope_freqs ? (const float *)m->rope_freqs->data : NULL, f->inv_freq);

    /* Our threads split the work; OpenBLAS must not split it again inside them. */
    openblas_set_num_threads(1);
    int rc = pool_new(n_threads, &f->pool, e);
    if (rc) {
        forward_free(f);
        return rc;
    }
    f->n_threads = pool_threads(f->pool);
    f->chunk_buf = xcalloc((size_t)f->n_threads, sizeof *f->chunk_buf);
    f->scores = xcalloc((size_t)f->n_threads, sizeof *f->scores);
    f->kv_row = xcalloc((size_t)f->n_threads, sizeof *f->kv_row);
    /* Room for one token's G heads over the whole context, or ATT_SCRATCH. */
    f->att_scratch = attn_scratch_floats(1, c->n_heads / c->n_kv_heads, n_ctx, c->head_dim);
    if (f->att_scratch < ATT_SCRATCH) f->att_scratch = ATT_SCRATCH;
    for (int i = 0; i < f->n_threads; i++) {
        f->chunk_buf[i] = xmalloc((size_t)f->max_cols * sizeof(float));
        f->scores[i] = xmalloc(f->att_scratch * sizeof(float));
        f->kv_row[i] = xmalloc((size_t)c->head_dim * sizeof(float));
    }
    *out = f;
    return NM_OK;
}

void forward_free(Forward *f) {
    if (!f) return;
    if (f->chunk_buf) {
        for (int i = 0; i < f->n_threads; i++) {
            free(f->chunk_buf[i]);
            free(f->scores[i]);
            free(f->kv_row[i]);
        }
    }
    free(f->kv_row);
    free(f->key16); free(f->value16);
    pool_free(f->pool);
    free(f->chunk_buf);
    free(f->scores);
    free(f->x); free(f->xb); free(f->q); free(f->att); free(f->k); free(f->v);
    free(f->gate); free(f->up);
    free(f->key_cache); free(f->value_cache);
    free(f->attn_norm); free(f->ffn_norm); free(f->out_norm); free(f->inv_freq);
    free(f->gate_in);
    free(f->act);
    free(f);
}

void forward_set_capture(Forward *f, ForwardCapture fn, void *ctx) {
    if (fn && !f->gate_in) f->gate_in = xcalloc((size_t)BATCH * f->c.ffn_dim, sizeof(float));
    f->capture = fn;
    f->capture_ctx = ctx;
}

void forward_set_exact(Forward *f, int exact) { f->exact = exact != 0; }

int forward_set_kv_f16(Forward *f, int f16, Error *e) {
    if (!f16 == !f->key16) return NM_OK;
    size_t n = (size_t)f->c.n_layers * (size_t)f->n_ctx * (size_t)f->kv_dim;
    free(f->key_cache), free(f->value_cache), free(f->key16), free(f->value16);
    f->key_cache = f->value_cache = NULL;
    f->key16 = f->value16 = NULL;
    if (f16) {
        f->key16 = xcalloc(n, sizeof *f->key16);
        f->value16 = xcalloc(n, sizeof *f->value16);
    } else {
        f->key_cache = xcalloc(n, sizeof *f->key_cache);
        f->value_cache = xcalloc(n, sizeof *f->value_cache);
    }
    (void)e;
    return NM_OK;
}
int forward_kv_f16(const Forward *f) { return f->key16 != NULL; }
int forward_exact(const Forward *f) { return f->exact; }

int forward_n_ctx(const Forward *f) { return f->n_ctx; }
int forward_n_threads(const Forward *f) { return f->n_threads; }
