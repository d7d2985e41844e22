/* forward.c — the Llama forward pass: RMSNorm, RoPE (interleaved or
 * rotate-half, with llama3 scaling), grouped-query attention over a KV cache,
 * the SwiGLU MLP with neuron hooks, and the LM head.
 *
 * Tokens go through in batches of up to BATCH: a prompt costs one pass over
 * the weights per batch, not per token. Each matmul walks the weight matrix in
 * fixed chunks of rows; a chunk is dequantised once (F32 is used in place)
 * and multiplied with every token of the batch by OpenBLAS, single-threaded
 * inside our own pool of threads, which share the chunks out.
 */
#include "infer/forward.h"

#include "base/cpu.h"

#include <cblas.h>
#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum {
    BATCH = 32,             /* tokens per pass over the weights */
    CHUNK_FLOATS = 32768,   /* a chunk of rows dequantised at once: 128 KB, stays in L2 */
    PARALLEL_MIN = 1 << 16, /* multiply-adds below which waking the pool costs more than it saves */
    MAX_THREADS = 256,
};

/* ----------------------------------------------------------------------------
 * A pool of threads that run one task at a time; the caller is thread 0. */

typedef void (*TaskFn)(void *task, int thread);

typedef struct {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    uint64_t generation; /* bumped for every task */
    int running;         /* workers still inside the current task */
    int quit;
    TaskFn fn;
    void *task;
} Pool;

typedef struct {
    Pool *pool;
    int id;
} WorkerArg;

static void *pool_worker(void *arg) {
    WorkerArg *w = arg;
    Pool *p = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        TaskFn fn = p->fn;
        void *task = p->task;
        pthread_mutex_unlock(&p->mu);
        fn(task, w->id);
        pthread_mutex_lock(&p->mu);
        if (--p->running == 0) pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    free(w);
    return NULL;
}

static int pool_start(Pool *p, int n_threads, Error *e) {
    memset(p, 0, sizeof *p);
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->threads = xcalloc((size_t)n_threads, sizeof *p->threads);
    for (int i = 1; i < n_threads; i++) {
        WorkerArg *w = xmalloc(sizeof *w);
        *w = (WorkerArg){ p, i };
        if (pthread_create(&p->threads[i], NULL, pool_worker, w)) {
            free(w);
            p->n_threads = i; /* the ones started are joined by pool_stop */
            return error_set(e, NM_ERUNTIME, "cannot start thread %d of %d", i + 1, n_threads);
        }
    }
    return NM_OK;
}

static void pool_stop(Pool *p) {
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
}

/* Runs fn(task, thread) on every thread, or on the caller alone when !parallel. */
static void pool_run(Pool *p, TaskFn fn, void *task, int parallel) {
    if (!parallel || p->n_threads == 1) {
        fn(task, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->task = task;
    p->running = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(task, 0);
    pthread_mutex_lock(&p->mu);
    while (p->running) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ----------------------------------------------------------------------------
 * State */

struct Forward {
    const Model *m;
    Config c;
    int n_ctx, q_dim, kv_dim, max_cols;
    Pool pool;
    float **chunk_buf;              /* per thread: CHUNK_FLOATS of dequantised rows */
    float **scores;                 /* per thread: n_ctx attention scores */
    float *x, *xb, *q, *k, *v, *att; /* BATCH rows each */
    float *gate, *up;               /* BATCH × ffn_dim */
    float *key_cache, *value_cache; /* [layer][position][kv_dim] */
    float *attn_norm, *ffn_norm, *out_norm; /* norm weights, widened to F32 (tiny) */
    float *inv_freq;                /* head_dim/2 RoPE frequencies */
    const HookSet *hooks;
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
    atomic_llong next;
} MatmulTask;

/* Widens rows [r0, r0+nr) to F32. BF16 and F16, the common half-precision
 * checkpoints, get vector loops here where the kernel set has AVX2 (with
 * F16C, base/cpu.h): the dtype table's scalar conversions would otherwise
 * take most of a decoding step. Both are exact, so the result is the same
 * either way. */
#if X86
/* Widens the first n − n mod 8 values; returns how many. */
__attribute__((target("avx2,f16c"))) static int64_t half_to_f32_avx2(int bf16, const uint16_t *h, int64_t n, float *out) {
    int64_t i = 0;
    if (bf16)
        for (; i + 8 <= n; i += 8) {
            __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
            _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
        }
    else
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return i;
}
#endif

static void rows_to_f32(const Tensor *w, int64_t r0, int64_t nr, float *out) {
    int64_t n = nr * tensor_cols(w), i = 0;
    const uint16_t *h = (const uint16_t *)w->data + r0 * tensor_cols(w);
    if (w->type != DT_BF16 && w->type != DT_F16) {
        tensor_rows_f32(w, r0, nr, out);
        return;
    }
#if X86
    if (cpu_kernel_isa() >= ISA_AVX2) i = half_to_f32_avx2(w->type == DT_BF16, h, n, out);
#endif
    if (w->type == DT_BF16)
        for (; i < n; i++) out[i] = bf16_to_f32(h[i]);
    else
        for (; i < n; i++) out[i] = f16_to_f32(h[i]);
}

static void matmul_chunk(MatmulTask *t, int64_t c, float *buf) {
    int64_t r0 = c * t->chunk_rows, nr = t->rows - r0 < t->chunk_rows ? t->rows - r0 : t->chunk_rows;
    const float *w;
    if (t->w->type == DT_F32) {
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

static void matmul_worker(void *task, int thread) {
    MatmulTask *t = task;
    for (int64_t c; (c = atomic_fetch_add(&t->next, 1)) < t->n_chunks;) matmul_chunk(t, c, t->f->chunk_buf[thread]);
}

/* The chunk size depends only on the row length, never on the thread count:
 * each output is one fixed computation, whichever thread does it. */
static void matmul(Forward *f, const Tensor *w, const float *x, int T, float *out) {
    MatmulTask t = { .f = f, .w = w, .x = x, .out = out, .T = T, .rows = tensor_rows(w), .cols = tensor_cols(w) };
    t.chunk_rows = t.cols >= CHUNK_FLOATS ? 1 : CHUNK_FLOATS / t.cols;
    t.n_chunks = (t.rows + t.chunk_rows - 1) / t.chunk_rows;
    atomic_init(&t.next, 0);
    pool_run(&f->pool, matmul_worker, &t, t.rows * t.cols * T >= PARALLEL_MIN && t.n_chunks > 1);
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

/* Frequencies theta^(-2i/d), bent by llama3 scaling: long wavelengths are
 * divided by factor, short ones kept, the band between interpolated. GGUF
 * stores that bend as a rope_freqs tensor of per-pair divisors instead of
 * config keys; llama.cpp divides the frequency by it, and so do we. */
static void rope_frequencies(const Config *c, const Tensor *divisors, float *inv_freq) {
    int half = c->head_dim / 2;
    const RopeScaling *s = &c->rope_scaling;
    for (int i = 0; i < half; i++) {
        double freq = 1.0 / pow((double)c->rope_theta, 2.0 * i / (double)c->head_dim);
        if (s->present && s->factor > 0) {
            double wavelen = 2.0 * M_PI / freq, orig = s->original_max_position;
            double low_wavelen = orig / s->low_freq_factor, high_wavelen = orig / s->high_freq_factor;
            if (wavelen > low_wavelen) {
                freq /= s->factor;
            } else if (wavelen >= high_wavelen && s->high_freq_factor != s->low_freq_factor) {
                double smooth = (orig / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
                freq = (1.0 - smooth) * freq / s->factor + smooth * freq;
            }
        }
        if (divisors) freq /= ((const float *)divisors->data)[i];
        inv_freq[i] = (float)freq;
    }
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
    atomic_int next;
} AttentionTask;

static void attend(Forward *f, int layer, int t, int h, int pos, float *scores) {
    const Config *c = &f->c;
    int hd = c->head_dim, kvh = h / (c->n_heads / c->n_kv_heads), n = pos + t + 1;
    const float *q = f->q + (size_t)t * f->q_dim + (size_t)h * hd;
    const float *keys = f->key_cache + (size_t)layer * f->n_ctx * f->kv_dim + (size_t)kvh * hd;
    const float *vals = f->value_cache + (size_t)layer * f->n_ctx * f->kv_dim + (size_t)kvh * hd;
    float scale = 1.0f / sqrtf((float)hd), max = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *k = keys + (size_t)j * f->kv_dim;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * k[i];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
    }
    for (int j = 0; j < n; j++) sum += scores[j] = expf(scores[j] - max);
    float *out = f->att + (size_t)t * f->q_dim + (size_t)h * hd;
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j < n; j++) {
        const float *v = vals + (size_t)j * f->kv_dim;
        float a = scores[j] / sum;
        for (int i = 0; i < hd; i++) out[i] += a * v[i];
    }
}

static void attention_worker(void *task, int thread) {
    AttentionTask *t = task;
    int heads = t->f->c.n_heads;
    for (int u; (u = atomic_fetch_add(&t->next, 1)) < t->T * heads;)
        attend(t->f, t->layer, u / heads, u % heads, t->pos, t->f->scores[thread]);
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
        memcpy(f->key_cache + at, f->k + (size_t)t * f->kv_dim, (size_t)f->kv_dim * sizeof(float));
        memcpy(f->value_cache + at, f->v + (size_t)t * f->kv_dim, (size_t)f->kv_dim * sizeof(float));
    }
    AttentionTask at = { .f = f, .layer = l, .T = T, .pos = pos };
    atomic_init(&at.next, 0);
    pool_run(&f->pool, attention_worker, &at, (int64_t)T * c->n_heads * (pos + T) * c->head_dim >= PARALLEL_MIN);
    matmul(f, w->wo, f->att, T, f->xb);
    for (size_t i = 0; i < (size_t)T * dim; i++) f->x[i] += f->xb[i];

    for (int t = 0; t < T; t++) rmsnorm(f->xb + (size_t)t * dim, f->x + (size_t)t * dim, f->ffn_norm + (size_t)l * dim, dim, c->norm_eps);
    matmul(f, w->gate, f->xb, T, f->gate);
    matmul(f, w->up, f->xb, T, f->up);
    apply_hooks(f, l, SITE_UP, f->up, T, hook_from);
    for (size_t i = 0; i < (size_t)T * ffn; i++) f->gate[i] = silu(f->gate[i]) * f->up[i];
    apply_hooks(f, l, SITE_ACT, f->gate, T, hook_from);
    matmul(f, w->down, f->gate, T, f->xb);
    for (size_t i = 0; i < (size_t)T * dim; i++) f->x[i] += f->xb[i];
}

/* Logits of tokens [t0, T) of the batch into out ((T - t0) × vocab). */
static void head_forward(Forward *f, int t0, int T, float *out) {
    int dim = f->c.dim;
    for (int t = t0; t < T; t++) rmsnorm(f->xb + (size_t)t * dim, f->x + (size_t)t * dim, f->out_norm, dim, f->c.norm_eps);
    matmul(f, f->m->output, f->xb + (size_t)t0 * dim, T - t0, out);
}

static void batch_forward(Forward *f, const int *ids, int T, int pos, int hook_from) {
    for (int t = 0; t < T; t++) tensor_rows_f32(f->m->tok_embd, ids[t], 1, f->x + (size_t)t * f->c.dim);
    for (int l = 0; l < f->c.n_layers; l++) layer_forward(f, l, T, pos, hook_from);
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
        batch_forward(f, ids + b, T, pos + b, hook_from - b);
        if (all_logits) head_forward(f, 0, T, logits + (size_t)b * vocab);
        else if (b + T == n) head_forward(f, T - 1, T, logits);
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
    if (failed) {
        forward_free(f);
        return NM_ERUNTIME;
    }
    for (int l = 0; l < c->n_layers; l++) {
        tensor_rows_f32(m->layers[l].attn_norm, 0, 1, f->attn_norm + (size_t)l * dim);
        tensor_rows_f32(m->layers[l].ffn_norm, 0, 1, f->ffn_norm + (size_t)l * dim);
    }
    tensor_rows_f32(m->output_norm, 0, 1, f->out_norm);
    rope_frequencies(c, m->rope_freqs, f->inv_freq);

    /* Our threads split the work; OpenBLAS must not split it again inside them. */
    openblas_set_num_threads(1);
    int rc = pool_start(&f->pool, n_threads, e);
    f->chunk_buf = xcalloc((size_t)f->pool.n_threads, sizeof *f->chunk_buf);
    f->scores = xcalloc((size_t)f->pool.n_threads, sizeof *f->scores);
    for (int i = 0; i < f->pool.n_threads; i++) {
        f->chunk_buf[i] = xmalloc((size_t)f->max_cols * sizeof(float));
        f->scores[i] = xmalloc((size_t)n_ctx * sizeof(float));
    }
    if (rc) {
        forward_free(f);
        return rc;
    }
    *out = f;
    return NM_OK;
}

void forward_free(Forward *f) {
    if (!f) return;
    if (f->chunk_buf) {
        for (int i = 0; i < f->pool.n_threads; i++) {
            free(f->chunk_buf[i]);
            free(f->scores[i]);
        }
        pool_stop(&f->pool);
    }
    free(f->chunk_buf);
    free(f->scores);
    free(f->x); free(f->xb); free(f->q); free(f->att); free(f->k); free(f->v);
    free(f->gate); free(f->up);
    free(f->key_cache); free(f->value_cache);
    free(f->attn_norm); free(f->ffn_norm); free(f->out_norm); free(f->inv_freq);
    free(f);
}

int forward_n_ctx(const Forward *f) { return f->n_ctx; }
int forward_n_threads(const Forward *f) { return f->pool.n_threads; }
