/* test_forward.c — the forward pass against an independent double-precision
 * reference on random models (every RoPE layout, GQA, llama3 scaling, both
 * hook sites, BF16 weights, batched prompts), against stories260K's golden
 * greedy output, and the clamping claims of issue 5 on planted models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "check.h"
#include "ref_forward.h"
#include "formats/registry.h"
#include "infer/clamp.h"
#include "infer/forward.h"
#include "model/model.h"
#include "infer/sampler.h"
#include "text/tokenizer.h"

/* ----------------------------------------------------------------------------
 * Random models built in memory */

static const char *const layer_names[9] = {
    "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight",   "blk.%d.attn_v.weight",
    "blk.%d.attn_output.weight", "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight",
    "blk.%d.ffn_down.weight",
};

typedef struct {
    Model m;
    void *blobs[256];
    int n_blobs;
} TestModel;

static uint64_t rng = 88172645463325252ULL;
static double uniform(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float gaussian(float sd) {
    double u = uniform() + 1e-12, v = uniform();
    return (float)(sd * sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

/* A tensor of rows × cols (rows 0: a vector) with values around `mean`, in F32, BF16 or F16. */
static Tensor *add_random(TestModel *tm, const char *name, int64_t rows, int64_t cols, float mean, float sd, DType type) {
    int64_t n = (rows ? rows : 1) * cols, shape[2] = { rows ? rows : cols, cols };
    void *data;
    if (type == DT_BF16 || type == DT_F16) {
        uint16_t *h = xmalloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) h[i] = type == DT_BF16 ? f32_to_bf16(mean + gaussian(sd)) : f32_to_f16(mean + gaussian(sd));
        data = h;
    } else {
        float *x = xmalloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) x[i] = mean + gaussian(sd);
        data = x;
    }
    tm->blobs[tm->n_blobs++] = data;
    return model_add_tensor(&tm->m, name, type, rows ? 2 : 1, shape, data, (size_t)n * (type == DT_F32 ? 4 : 2));
}

static void build_model_sd(TestModel *tm, const Config *c, DType type, uint64_t seed, float sd) {
    memset(tm, 0, sizeof *tm);
    rng = seed;
    Model *m = &tm->m;
    m->path = xstrdup("test-model");
    m->cfg = *c;
    m->has_weights = 1;
    int64_t dim = c->dim, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    add_random(tm, "token_embd.weight", c->vocab_size, dim, 0, 1.0f, type);
    for (int l = 0; l < c->n_layers; l++) {
        const int64_t shapes[9][2] = { { 0, dim }, { q, dim }, { kv, dim }, { kv, dim }, { dim, q },
                                       { 0, dim }, { c->ffn_dim, dim }, { c->ffn_dim, dim }, { dim, c->ffn_dim } };
        for (int r = 0; r < 9; r++) {
            char name[64];
            snprintf(name, sizeof name, layer_names[r], l);
            int vec = shapes[r][0] == 0;
            add_random(tm, name, shapes[r][0], shapes[r][1], vec ? 1.0f : 0, vec ? 0.1f : sd, type);
        }
    }
    add_random(tm, "output_norm.weight", 0, dim, 1.0f, 0.1f, type);
    if (!c->tied_embeddings) add_random(tm, "output.weight", c->vocab_size, dim, 0, 1.0f, type);
    Error e = { 0 };
    int rc = model_bind(m, layer_names, "token_embd.weight", "output_norm.weight", c->tied_embeddings ? NULL : "output.weight", &e);
    CHECK(rc == 0, "model_bind: %s", e.msg);
}

static void build_model(TestModel *tm, const Config *c, DType type, uint64_t seed) { build_model_sd(tm, c, type, seed, 0.3f); }

static void free_model(TestModel *tm) {
    model_close(&tm->m);
    for (int i = 0; i < tm->n_blobs; i++) free(tm->blobs[i]);
}

/* The reference forward pass with hooks: site up, then the activation and
 * site act, for positions from hook_from on. */
typedef struct {
    const HookSet *hooks;
    int hook_from;
} RefHooks;

static void ref_hooked_mlp(void *ctx, int l, int t, const double *g, double *u, int ffn) {
    const RefHooks *rh = ctx;
    const HookSet *hooks = rh->hooks;
    for (int site = SITE_UP; site <= SITE_ACT; site++) {
        if (site == SITE_ACT)
            for (int i = 0; i < ffn; i++) u[i] = g[i] / (1 + exp(-g[i])) * u[i];
        for (int k = 0; hooks && t >= rh->hook_from && (int)hooks->site == site && k < hooks->n; k++)
            if (hooks->hook[k].layer == l)
                u[hooks->hook[k].neuron] = hooks->hook[k].kind == HOOK_CLAMP ? hooks->hook[k].value
                                                                             : u[hooks->hook[k].neuron] * hooks->hook[k].value;
    }
}

/* Logits (n × vocab) of every position of ids, hooks acting from hook_from on. */
static void ref_forward(const Model *m, const int *ids, int n, const HookSet *hooks, int hook_from, double *logits) {
    RefHooks rh = { hooks, hook_from };
    ref_forward_mlp(m, ids, n, ref_hooked_mlp, &rh, logits);
}

/* ----------------------------------------------------------------------------
 * Forward pass vs reference */

static Config small_config(int interleaved, int scaled, int tied) {
    Config c = { .arch = "llama", .n_layers = 2, .dim = 48, .ffn_dim = 80, .n_heads = 6, .n_kv_heads = 2, .head_dim = 8,
                 .vocab_size = 97, .max_seq_len = 80, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                 .tied_embeddings = tied, .rope_interleaved = interleaved };
    if (scaled) c.rope_scaling = (RopeScaling){ 1, 8.0f, 1.0f, 4.0f, 16 };
    return c;
}

/* Largest |a - b| over n logits, relative to the largest |b|. */
static double max_rel_diff(const float *a, const double *b, size_t n) {
    double d = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d / scale;
}

/* Runs ids through forward_run in pieces of `step` tokens (all logits) and
 * compares with the reference. Returns the logits (n × vocab). */
static float *run_pieces(const Model *m, const int *ids, int n, int step, int threads, const HookSet *h, int hook_from) {
    Forward *f;
    Error e = { 0 };
    float *logits = xmalloc((size_t)n * m->cfg.vocab_size * sizeof *logits);
    int rc = forward_new(m, m->cfg.max_seq_len, threads, &f, &e);
    CHECK(rc == 0, "forward_new: %s", e.msg);
    if (rc) return logits;
    CHECK(forward_set_hooks(f, h, &e) == 0, "set hooks: %s", e.msg);
    for (int p = 0; p < n; p += step) {
        int k = n - p < step ? n - p : step;
        rc = forward_run(f, ids + p, k, p, hook_from - p, logits + (size_t)p * m->cfg.vocab_size, 1, &e);
        CHECK(rc == 0, "forward_run: %s", e.msg);
    }
    forward_free(f);
    return logits;
}

static void test_against_reference(void) {
    enum { N = 45 }; /* more than one internal batch */
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 11) % 97;
    for (int variant = 0; variant < 8; variant++) {
        int interleaved = variant & 1, scaled = (variant >> 1) & 1, bf16 = (variant >> 2) & 1;
        Config c = small_config(interleaved, scaled, variant % 3 == 0);
        TestModel tm;
        build_model(&tm, &c, bf16 ? DT_BF16 : DT_F32, 1000 + (uint64_t)variant);
        HookSet hooks = { .site = variant % 2 ? SITE_ACT : SITE_UP };
        Error e = { 0 };
        CHECK(hookset_parse(&hooks, "1:3,70=4.5", HOOK_CLAMP, c.n_layers, c.ffn_dim, &e) == 0, "%s", e.msg);
        CHECK(hookset_parse(&hooks, "0:5=-2", HOOK_SCALE, c.n_layers, c.ffn_dim, &e) == 0, "%s", e.msg);
        size_t nl = (size_t)N * c.vocab_size;
        double *ref = xmalloc(nl * sizeof *ref), *ref_hooked = xmalloc(nl * sizeof *ref_hooked);
        ref_forward(&tm.m, ids, N, NULL, N, ref);
        ref_forward(&tm.m, ids, N, &hooks, 20, ref_hooked);
        /* Token by token (decode), in batches (prompt), odd pieces; 1 and 3 threads. */
        const int steps[3] = { 1, N, 7 };
        for (int s = 0; s < 3; s++) {
            float *got = run_pieces(&tm.m, ids, N, steps[s], 1 + 2 * (s & 1), NULL, N);
            double d = max_rel_diff(got, ref, nl);
            CHECK(d < 2e-5, "variant %d step %d: logits differ from the reference by %g", variant, steps[s], d);
            free(got);
            got = run_pieces(&tm.m, ids, N, steps[s], 2, &hooks, 20);
            d = max_rel_diff(got, ref_hooked, nl);
            CHECK(d < 2e-5, "variant %d step %d hooked: logits differ from the reference by %g", variant, steps[s], d);
            free(got);
        }
        /* The hooks changed something, only from position 20 on. */
        CHECK(fabs(ref[19 * c.vocab_size] - ref_hooked[19 * c.vocab_size]) < 1e-12 &&
                  fabs(ref[25 * c.vocab_size] - ref_hooked[25 * c.vocab_size]) > 1e-6,
              "variant %d: hooks act on the wrong positions", variant);
        hookset_free(&hooks);
        free(ref);
        free(ref_hooked);
        free_model(&tm);
    }
}

/* Every kernel set this CPU has (base/cpu.h; the forward pass widens BF16
 * and F16 rows with AVX2 + F16C where the set has it): logits within 2e-5
 * of the double-precision reference, and bit-identical to the generic
 * set's (the widening is exact). */
static void test_kernel_sets(void) {
    enum { N = 19 };
    int ids[N], tested = 0;
    for (int i = 0; i < N; i++) ids[i] = (i * 41 + 5) % 97;
    for (int t = 0; t < 2; t++) {
        Config c = small_config(t, 1, 0);
        TestModel tm;
        build_model(&tm, &c, t ? DT_F16 : DT_BF16, 77 + (uint64_t)t);
        size_t nl = (size_t)N * c.vocab_size;
        double *ref = xmalloc(nl * sizeof *ref);
        ref_forward(&tm.m, ids, N, NULL, N, ref);
        float *generic = NULL;
        for (int s = ISA_GENERIC; s < ISA_COUNT; s++) {
            Error e = { 0 };
            if (cpu_force_isa((Isa)s, &e)) continue;
            float *got = run_pieces(&tm.m, ids, N, 5, 2, NULL, N);
            double d = max_rel_diff(got, ref, nl);
            CHECK(d < 2e-5, "%s, kernel set %s: logits differ from the reference by %g", t ? "F16" : "BF16", isa_name((Isa)s), d);
            if (!generic) generic = got;
            else {
                CHECK(memcmp(got, generic, nl * sizeof *got) == 0, "%s, kernel set %s: logits differ from generic's",
                      t ? "F16" : "BF16", isa_name((Isa)s));
                free(got);
            }
            tested += t == 0;
        }
        free(generic), free(ref);
        free_model(&tm);
    }
    Error e = { 0 };
    cpu_force_isa(cpu_best_isa(), &e);
    printf("forward pass: BF16 and F16 weights under %d kernel sets\n", tested);
}

/* Same input, any thread count: bit-identical logits. */
static void test_thread_determinism(void) {
    Config c = small_config(1, 0, 1);
    c.dim = 256;
    c.ffn_dim = 768;
    c.n_heads = 8;
    c.n_kv_heads = 4;
    c.head_dim = 32;
    c.vocab_size = 600;
    TestModel tm;
    build_model(&tm, &c, DT_BF16, 7);
    int ids[40];
    for (int i = 0; i < 40; i++) ids[i] = (i * 13 + 5) % 600;
    float *a = run_pieces(&tm.m, ids, 40, 40, 1, NULL, 40), *b = run_pieces(&tm.m, ids, 40, 40, 4, NULL, 40);
    CHECK(memcmp(a, b, (size_t)40 * 600 * sizeof *a) == 0, "1 and 4 threads give different logits");
    free(a); free(b);
    free_model(&tm);
}

/* ----------------------------------------------------------------------------
 * Clamping on a planted model: neuron P of the last layer reads token A's
 * embedding direction (up and gate rows) and writes token T's (down column),
 * the way a real "concept" neuron reads and writes. */

enum { PLANT_A = 5, PLANT_B = 60, PLANT_T = 42, PLANT_P = 17 };

static float *logits_after(const Model *m, int token, const HookSet *h) {
    float *logits = run_pieces(m, (int[]){ token }, 1, 1, 1, h, 0);
    return logits;
}

static float max_abs_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void test_planted_clamp(void) {
    Config c = small_config(1, 0, 1);
    c.dim = 64;
    c.ffn_dim = 96;
    c.n_heads = 4;
    c.head_dim = 16;
    TestModel tm;
    build_model_sd(&tm, &c, DT_F32, 99, 0.02f);
    const Model *m = &tm.m;
    int dim = c.dim, ffn = c.ffn_dim, V = c.vocab_size, L = c.n_layers - 1;
    float *E = (float *)m->tok_embd->data, *up = (float *)m->layers[L].up->data, *gate = (float *)m->layers[L].gate->data;
    float *down = (float *)m->layers[L].down->data;
    double na = 0, nt = 0;
    for (int i = 0; i < dim; i++) {
        na += (double)E[PLANT_A * dim + i] * E[PLANT_A * dim + i];
        nt += (double)E[PLANT_T * dim + i] * E[PLANT_T * dim + i];
    }
    for (int i = 0; i < dim; i++) {
        up[PLANT_P * dim + i] = gate[PLANT_P * dim + i] = (float)(E[PLANT_A * dim + i] / sqrt(na));
        down[i * ffn + PLANT_P] = (float)(2.0 * E[PLANT_T * dim + i] / sqrt(nt));
    }
    Error e = { 0 };
    HookSet none = { 0 }, scale0 = { .site = SITE_ACT }, scale0_up = { .site = SITE_UP }, clamp_up0 = { .site = SITE_UP };
    HookSet clamp = { .site = SITE_ACT };
    char spec[64];
    snprintf(spec, sizeof spec, "%d:%d=0", L, PLANT_P);
    CHECK(hookset_parse(&scale0, spec, HOOK_SCALE, c.n_layers, ffn, &e) == 0, "%s", e.msg);
    CHECK(hookset_parse(&scale0_up, spec, HOOK_SCALE, c.n_layers, ffn, &e) == 0, "%s", e.msg);
    CHECK(hookset_parse(&clamp_up0, spec, HOOK_CLAMP, c.n_layers, ffn, &e) == 0, "%s", e.msg);
    snprintf(spec, sizeof spec, "%d:%d=40", L, PLANT_P);
    CHECK(hookset_parse(&clamp, spec, HOOK_CLAMP, c.n_layers, ffn, &e) == 0, "%s", e.msg);

    /* Reading A, the neuron fires and T is the prediction. */
    float *base = logits_after(m, PLANT_A, &none);
    CHECK(argmax(base, V) == PLANT_T, "planted neuron does not make %d the top token after %d (got %d)", PLANT_T, PLANT_A, argmax(base, V));
    /* Scaling it by 0 (or clamping up to 0) is the model without the neuron. */
    float *s0 = logits_after(m, PLANT_A, &scale0), *s0u = logits_after(m, PLANT_A, &scale0_up), *c0u = logits_after(m, PLANT_A, &clamp_up0);
    float saved[64];
    for (int i = 0; i < dim; i++) saved[i] = down[i * ffn + PLANT_P], down[i * ffn + PLANT_P] = 0;
    float *removed = logits_after(m, PLANT_A, &none);
    for (int i = 0; i < dim; i++) down[i * ffn + PLANT_P] = saved[i];
    CHECK(max_abs_diff(s0, removed, V) < 1e-5f, "--scale %d:%d=0 at act differs from removing the neuron by %g", L, PLANT_P, max_abs_diff(s0, removed, V));
    CHECK(max_abs_diff(s0u, removed, V) < 1e-5f, "--scale at up differs from removing the neuron by %g", max_abs_diff(s0u, removed, V));
    CHECK(max_abs_diff(c0u, removed, V) < 1e-5f, "--clamp up=0 differs from removing the neuron by %g", max_abs_diff(c0u, removed, V));
    CHECK(argmax(s0, V) != PLANT_T, "token %d stays on top without the neuron", PLANT_T);

    /* Reading B, the neuron is quiet; clamped to a large value, T wins. */
    float *b = logits_after(m, PLANT_B, &none), *bc = logits_after(m, PLANT_B, &clamp);
    CHECK(argmax(b, V) != PLANT_T, "token %d is already the top token after %d", PLANT_T, PLANT_B);
    CHECK(argmax(bc, V) == PLANT_T, "clamping %s does not make %d the top token (got %d)", spec, PLANT_T, argmax(bc, V));
    free(base); free(s0); free(s0u); free(c0u); free(removed); free(b); free(bc);
    hookset_free(&scale0); hookset_free(&scale0_up); hookset_free(&clamp_up0); hookset_free(&clamp);
    free_model(&tm);
}

/* ----------------------------------------------------------------------------
 * stories260K: greedy from BOS reproduces the golden 131 tokens */

static const int golden[131] = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419,
    292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391,
    266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336, 432,
    313, 438, 310, 432, 278, 316, 439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418, 269, 279,
    292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 391, 267, 337, 335, 364,
    420, 268, 388, 432, 398, 359, 280, 303, 439, 413, 272, 417, 264, 312, 426, 436,
};

/* Greedy ids after prompt (fed as one batch), n of them, into out. */
static int greedy(const Model *m, const int *prompt, int n_prompt, int n, int threads, int *out) {
    Forward *f;
    Error e = { 0 };
    int rc = forward_new(m, n_prompt + n, threads, &f, &e);
    CHECK(rc == 0, "forward_new: %s", e.msg);
    if (rc) return 0;
    float *logits = xmalloc((size_t)m->cfg.vocab_size * sizeof *logits);
    rc = forward_run(f, prompt, n_prompt, 0, n_prompt, logits, 0, &e);
    int made = 0;
    for (; !rc && made < n; made++) {
        out[made] = argmax(logits, m->cfg.vocab_size);
        if (made + 1 < n) rc = forward_run(f, &out[made], 1, n_prompt + made, 1, logits, 0, &e);
    }
    CHECK(rc == 0, "forward_run: %s", e.msg);
    free(logits);
    forward_free(f);
    return made;
}

/* Greedy from BOS equals the golden ids for (at least) the first `want`. */
static void check_golden(const char *path, const char *tokenizer, int want) {
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer, .need_weights = 1 };
    int rc = model_open(&m, path, &o, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    int ids[131], bos = m.vocab.bos_id;
    CHECK(bos == 1, "%s: BOS is %d", path, bos);
    int n = greedy(&m, &bos, 1, 131, 2, ids), same = 0;
    while (same < n && ids[same] == golden[same]) same++;
    CHECK(n == 131 && same >= want, "%s: greedy output leaves the golden text at token %d (got %d, want %d)", path, same,
          same < n ? ids[same] : -1, golden[same < 131 ? same : 130]);
    model_close(&m);
}

/* ----------------------------------------------------------------------------
 * stories260K: the neuron whose down column decodes to " named", clamped at
 * the act site, lifts P(" named"); the up-row neuron at the up site does not. */

/* The neuron of matrix k whose decoded logit for token is highest (as
 * `find` ranks them: logits = W_U (g ⊙ w / rms(w))). */
static void best_neuron(const Model *m, MatrixKind k, int token, int *layer, int *neuron, int *is_top1) {
    int dim = m->cfg.dim, ffn = m->cfg.ffn_dim, V = m->cfg.vocab_size;
    float *W = tensor_f32(m->output), *g = tensor_f32(m->output_norm), *vec = xmalloc((size_t)ffn * dim * sizeof *vec);
    double best = -1e30;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        model_neuron_vectors(m, k, l, 0, ffn, vec);
        for (int n = 0; n < ffn; n++) {
            const float *w = vec + (size_t)n * dim;
            double ss = 0, target = 0;
            for (int i = 0; i < dim; i++) ss += (double)w[i] * w[i];
            double r = 1 / sqrt(ss / dim + m->cfg.norm_eps);
            int above = 0;
            double *logit = xmalloc((size_t)V * sizeof *logit);
            for (int t = 0; t < V; t++) {
                double s = 0;
                for (int i = 0; i < dim; i++) s += (double)W[(size_t)t * dim + i] * g[i] * w[i] * r;
                logit[t] = s;
            }
            target = logit[token];
            for (int t = 0; t < V; t++) above += logit[t] > target;
            free(logit);
            if (target > best) best = target, *layer = l, *neuron = n, *is_top1 = above == 0;
        }
    }
    free(W); free(g); free(vec);
}

/* P(token) after the prompt, with one hook (site, value) on neuron l:n or none. */
static double prob_after(const Model *m, const int *ids, int n, int token, int l, int neuron, HookSite site, float value) {
    HookSet h = { .site = site };
    if (l >= 0) hookset_add(&h, (NeuronHook){ .layer = l, .neuron = neuron, .kind = HOOK_CLAMP, .value = value });
    float *logits = run_pieces(m, ids, n, n, 2, &h, 0), *prob = xmalloc((size_t)m->cfg.vocab_size * sizeof *prob);
    softmax(logits + (size_t)(n - 1) * m->cfg.vocab_size, m->cfg.vocab_size, 1.0f, prob);
    double p = prob[token];
    free(logits); free(prob);
    hookset_free(&h);
    return p;
}

static void test_named_neuron(void) {
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = shared_path("models/stories260K/tok512.bin"), .need_weights = 1 };
    int rc = model_open(&m, shared_path("models/stories260K/stories260K.bin"), &o, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    Tokenizer *t;
    int *ids, n, named = vocab_find_piece(&m.vocab, "\xE2\x96\x81named", 8);
    CHECK(named >= 0, "no token for \" named\"");
    CHECK(tokenizer_new(&m.vocab, &t, &e) == 0, "%s", e.msg);
    const char *prompt = "One day, Tom went to the";
    CHECK(tokenizer_encode(t, prompt, strlen(prompt), TOK_ADD_BOS, &ids, &n, &e) == 0, "%s", e.msg);
    int l, neuron, top1;
    best_neuron(&m, MATRIX_DOWN, named, &l, &neuron, &top1);
    CHECK(top1, "down neuron %d:%d does not decode to \" named\" first", l, neuron);
    double before = prob_after(&m, ids, n, named, -1, 0, SITE_ACT, 0), after = prob_after(&m, ids, n, named, l, neuron, SITE_ACT, 10);
    CHECK(before < 1e-3 && after > 0.1, "clamping down neuron %d:%d at act=10: P(\" named\") %g -> %g, want ~0 -> > 0.1", l,
          neuron, before, after);
    /* The up row that decodes to " named", clamped at the up site, barely moves it. */
    best_neuron(&m, MATRIX_UP, named, &l, &neuron, &top1);
    double up = prob_after(&m, ids, n, named, l, neuron, SITE_UP, 10);
    CHECK(top1 && up < 1e-3, "up neuron %d:%d (top-1 %d) at up=10: P(\" named\") = %g", l, neuron, top1, up);
    free(ids);
    tokenizer_free(t);
    model_close(&m);
}

/* ----------------------------------------------------------------------------
 * Sampler */

static void test_sampler(void) {
    float logits[6] = { 1.0f, 3.0f, 3.0f, 0.5f, 2.0f, -1.0f }, prob[6];
    CHECK(argmax(logits, 6) == 1, "argmax tie goes to the lower index");
    int top[3];
    top_k(logits, 6, 3, top);
    CHECK(top[0] == 1 && top[1] == 2 && top[2] == 4, "top_k: %d %d %d", top[0], top[1], top[2]);
    softmax(logits, 6, 1.0f, prob);
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += prob[i];
    CHECK(fabs(sum - 1) < 1e-6 && fabs(prob[1] - prob[2]) < 1e-7, "softmax sums to %g", sum);
    /* Temperature 1, no top-p: frequencies follow the probabilities. */
    Sampler s;
    int counts[6] = { 0 }, draws = 60000;
    sampler_init(&s, 6, 1.0f, 1.0f, 42);
    for (int i = 0; i < draws; i++) counts[sampler_next(&s, logits)]++;
    sampler_free(&s);
    for (int i = 0; i < 6; i++)
        CHECK(fabs((double)counts[i] / draws - prob[i]) < 0.01, "token %d drawn %.4f of the time, probability %.4f", i,
              (double)counts[i] / draws, prob[i]);
    /* top-p 0.5: only the nucleus {1, 2} (0.35 + 0.35 > 0.5) is drawn. */
    sampler_init(&s, 6, 1.0f, 0.5f, 42);
    int outside = 0, seen[6] = { 0 };
    for (int i = 0; i < 2000; i++) {
        int t = sampler_next(&s, logits);
        seen[t]++;
        outside += t != 1 && t != 2;
    }
    sampler_free(&s);
    CHECK(outside == 0 && seen[1] > 800 && seen[2] > 800, "top-p 0.5 drew outside the nucleus %d times", outside);
    /* Same seed, same draws; temperature 0 is argmax. */
    Sampler a, b;
    sampler_init(&a, 6, 0.7f, 0.9f, 5);
    sampler_init(&b, 6, 0.7f, 0.9f, 5);
    int same = 1;
    for (int i = 0; i < 500; i++) same &= sampler_next(&a, logits) == sampler_next(&b, logits);
    CHECK(same, "same seed gave different draws");
    sampler_free(&a);
    sampler_free(&b);
    sampler_init(&a, 6, 0.0f, 0.9f, 5);
    CHECK(sampler_next(&a, logits) == 1, "temperature 0 is not greedy");
    sampler_free(&a);
}

/* ----------------------------------------------------------------------------
 * llama.cpp's greedy generations for the quantised fixtures: ids must agree
 * up to the first step whose recorded top-1/top-2 margin is below 1e-3 (past
 * a near-tie, other correct arithmetic may pick the other token). */

typedef struct {
    char file[128];
    int prompt[64], n_prompt, gen[512], n_gen, n_margins;
    double margins[512];
} LlamaCppRun;

static int read_ints(const char *s, int *out, int cap) {
    int n = 0;
    for (char *end; n < cap; s = end) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        out[n++] = (int)v;
    }
    return n;
}

/* Parses the "== FILE" sections of llama_cpp_greedy.txt; returns how many. */
static int read_llama_cpp(LlamaCppRun *runs, int cap) {
    char *text;
    size_t len;
    Error e = { 0 };
    int rc = read_file(shared_path("models/quant/llama_cpp_greedy.txt"), 1 << 20, &text, &len, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return 0;
    int n = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "== ", 3) == 0 && n + 1 < cap) {
            memset(&runs[++n], 0, sizeof runs[n]);
            snprintf(runs[n].file, sizeof runs[n].file, "%s", line + 3);
        } else if (n >= 0 && strncmp(line, "prompt_ids:", 11) == 0) {
            runs[n].n_prompt = read_ints(line + 11, runs[n].prompt, 64);
        } else if (n >= 0 && strncmp(line, "gen_ids:", 8) == 0) {
            runs[n].n_gen = read_ints(line + 8, runs[n].gen, 512);
        } else if (n >= 0 && strncmp(line, "margins:", 8) == 0) {
            char *s = line + 8, *end;
            while (runs[n].n_margins < 512) {
                double v = strtod(s, &end);
                if (end == s) break;
                runs[n].margins[runs[n].n_margins++] = v;
                s = end;
            }
        }
    }
    free(text);
    return n + 1;
}

/* llama.cpp's arithmetic is not exact F32: it keeps the KV cache in F16 and
 * quantises activations to Q8_0/Q8_K for quantised matmuls. Teacher-forcing
 * its recorded ids, our top-1/top-2 margins differ from the ones it recorded
 * by up to 0.02 on synth256 and 0.13 on stories260K-q8_0 (measured). Where
 * its margin is below LLAMA_CPP_TIE, either token is a correct answer. (With
 * a 1e-3 threshold 4 of the 8 synth256 files part ways, at steps whose
 * recorded margins are 0.0021-0.0054: inside that arithmetic noise.) */
#define LLAMA_CPP_TIE 1e-2

/* Teacher-forced on llama.cpp's ids: our top-1 must be its token at every
 * step where its margin is clear. */
static void check_teacher_forced(const Model *m, const LlamaCppRun *run) {
    Forward *f;
    Error e = { 0 };
    int n = run->n_prompt + run->n_gen - 1, V = m->cfg.vocab_size, ids[600], wrong = 0, first = -1;
    memcpy(ids, run->prompt, (size_t)run->n_prompt * sizeof *ids);
    memcpy(ids + run->n_prompt, run->gen, (size_t)(run->n_gen - 1) * sizeof *ids);
    float *logits = xmalloc((size_t)n * V * sizeof *logits);
    int rc = forward_new(m, n, 2, &f, &e);
    if (!rc) rc = forward_run(f, ids, n, 0, n, logits, 1, &e);
    CHECK(rc == 0, "%s: %s", run->file, e.msg);
    for (int s = 0; !rc && s < run->n_gen && s < run->n_margins; s++)
        if (run->margins[s] >= LLAMA_CPP_TIE && argmax(logits + (size_t)(run->n_prompt - 1 + s) * V, V) != run->gen[s]) {
            wrong++;
            if (first < 0) first = s;
        }
    CHECK(wrong == 0, "%s: teacher-forced top-1 differs from llama.cpp's at %d clear steps (first: %d)", run->file, wrong, first);
    if (!rc) forward_free(f);
    free(logits);
}

static void test_llama_cpp_greedy(void) {
    static LlamaCppRun runs[16];
    int n = read_llama_cpp(runs, 16), synth = 0;
    CHECK(n >= 10, "llama_cpp_greedy.txt: %d runs", n);
    for (int r = 0; r < n; r++) {
        const LlamaCppRun *run = &runs[r];
        char rel[512];
        snprintf(rel, sizeof rel, "models/%s%.200s", strncmp(run->file, "stories260K.gguf", 16) == 0 ? "stories260K/" : "quant/", run->file);
        Model m;
        Error e = { 0 };
        ModelOpenOptions o = { .need_weights = 1 };
        int rc = model_open(&m, shared_path(rel), &o, &e);
        CHECK(rc == 0, "%s", e.msg);
        if (rc) continue;
        int exact = 0; /* steps before the first near-tie */
        while (exact < run->n_gen && exact < run->n_margins && run->margins[exact] >= LLAMA_CPP_TIE) exact++;
        int ids[512], made = greedy(&m, run->prompt, run->n_prompt, exact, 2, ids), same = 0;
        while (same < made && ids[same] == run->gen[same]) same++;
        CHECK(same == exact, "%s: greedy ids leave llama.cpp's at step %d of %d (got %d, want %d)", run->file, same, exact,
              same < made ? ids[same] : -1, run->gen[same < exact ? same : 0]);
        check_teacher_forced(&m, run);
        synth += strncmp(run->file, "synth256", 8) == 0;
        model_close(&m);
    }
    CHECK(synth == 8, "%d synth256 runs", synth);
}

int main(void) {
    test_sampler();
    test_against_reference();
    test_kernel_sets();
    test_thread_determinism();
    test_planted_clamp();
    test_named_neuron();
    check_golden(shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"), 131);
    check_golden(shared_path("models/stories260K/stories260K.gguf"), NULL, 131);
    check_golden(shared_path("models/stories260K-hf"), NULL, 131);
    check_golden(shared_path("models/stories260K-hf-bf16-sharded"), NULL, 131);
    /* Q8_0 rounding tips the golden text's closest call, token 114 (F32
     * margin 0.042; Q8_0 picks the other token by 0.026). */
    check_golden(shared_path("models/quant/stories260K-q8_0.gguf"), NULL, 114);
    test_llama_cpp_greedy();
    return check_summary("test_forward");
}
