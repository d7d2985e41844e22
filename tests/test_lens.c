/* test_lens.c — the neuron map is exact: lens.c against a straightforward
 * double-precision computation written here from scratch (its own reader of
 * the llama2.c checkpoint, its own norm, its own full sort), for every
 * neuron of stories260K, all three matrices, all three norms, on every code
 * path of the tiled kernel (tile shapes, thread counts, vocabulary split,
 * head in place or converted per tile). Also: token escaping and the atlas round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/atlas.h"
#include "base/cpu.h"
#include "check.h"
#include "formats/registry.h"
#include "tensor/kernels.h"
#include "lens/lens.h"

/* ----------------------------------------------------------------------------
 * The reference: stories260K.bin read with fread, everything in double */

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
    double eps;
    float *emb, *w1, *w2, *w3, *rms_final; /* head, gate, down, up (stacked over layers), final norm */
} RefModel;

/* Under AddressSanitizer the per-kernel-set repetitions are left out (and
 * counted as skipped): they compare numbers across sets, which the optimised
 * build does on every run; the sanitizer's job, memory, is done by the best
 * set's pass through every path. */
#if defined(__SANITIZE_ADDRESS__)
enum { SANITIZED = 1 };
#else
enum { SANITIZED = 0 };
#endif

static float *read_floats(FILE *f, size_t n) {
    float *p = malloc(n * sizeof *p);
    if (fread(p, sizeof *p, n, f) != n) {
        free(p);
        return NULL;
    }
    return p;
}

static int ref_load(RefModel *r, const char *path) {
    FILE *f = fopen(path, "rb");
    int32_t h[7];
    if (!f || fread(h, 4, 7, f) != 7) return 0;
    r->dim = h[0], r->hidden = h[1], r->layers = h[2], r->heads = h[3], r->kv_heads = h[4], r->vocab = abs(h[5]), r->seq = h[6];
    r->eps = 1e-5;
    size_t d = (size_t)r->dim, L = (size_t)r->layers, kv = d * (size_t)r->kv_heads / (size_t)r->heads, hd = (size_t)r->hidden;
    r->emb = read_floats(f, (size_t)r->vocab * d);
    /* rms_att, wq, wk, wv, wo, rms_ffn: skipped */
    fseek(f, (long)((L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d) * sizeof(float)), SEEK_CUR);
    r->w1 = read_floats(f, L * hd * d);
    r->w2 = read_floats(f, L * d * hd);
    r->w3 = read_floats(f, L * hd * d);
    r->rms_final = read_floats(f, d);
    fclose(f);
    return r->emb && r->w1 && r->w2 && r->w3 && r->rms_final;
}

/* A model's weights dequantised to F32 by tensor_rows_f32 (which test_gguf
 * checks bit for bit against gguf-py's dequantisation). */
static int ref_from_model(RefModel *r, const Model *m) {
    size_t d = (size_t)m->cfg.dim, hd = (size_t)m->cfg.ffn_dim, L = (size_t)m->cfg.n_layers;
    r->dim = (int)d, r->hidden = (int)hd, r->layers = (int)L, r->vocab = m->cfg.vocab_size, r->eps = m->cfg.norm_eps;
    r->emb = malloc((size_t)r->vocab * d * sizeof(float));
    r->rms_final = malloc(d * sizeof(float));
    tensor_rows_f32(m->output, 0, r->vocab, r->emb);
    tensor_rows_f32(m->output_norm, 0, 1, r->rms_final);
    float **dst[3] = { &r->w1, &r->w2, &r->w3 };
    for (int k = 0; k < 3; k++) *dst[k] = malloc(L * hd * d * sizeof(float));
    for (size_t l = 0; l < L; l++) {
        const Tensor *t[3] = { m->layers[l].gate, m->layers[l].down, m->layers[l].up };
        for (int k = 0; k < 3; k++) tensor_rows_f32(t[k], 0, tensor_rows(t[k]), *dst[k] + l * hd * d);
    }
    return 1;
}

/* Round to BF16, nearest even, as the BF16 checkpoint was written. */
static void ref_round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&x[i], &u, 4);
    }
}

static void ref_free(RefModel *r) {
    free(r->emb), free(r->w1), free(r->w2), free(r->w3), free(r->rms_final);
}

/* The neuron's direction in double: up/gate row n, down column n. */
static void ref_vector(const RefModel *r, MatrixKind k, int layer, int n, double *w) {
    size_t d = (size_t)r->dim, hd = (size_t)r->hidden;
    for (size_t i = 0; i < d; i++) {
        if (k == MATRIX_UP) w[i] = r->w3[(size_t)layer * hd * d + (size_t)n * d + i];
        else if (k == MATRIX_GATE) w[i] = r->w1[(size_t)layer * hd * d + (size_t)n * d + i];
        else w[i] = r->w2[(size_t)layer * d * hd + i * hd + (size_t)n];
    }
}

static const double *sort_logits; /* qsort has no context argument */
static int by_ref_logit(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    if (sort_logits[a] != sort_logits[b]) return sort_logits[a] > sort_logits[b] ? -1 : 1;
    return a - b;
}

/* logits = E · x with x = g ⊙ w / rms(w), g ⊙ w, or w; order = ids by falling logit. */
static double ref_decode(const RefModel *r, const double *w, LensNorm norm, double *logits, int *order) {
    int d = r->dim;
    double x[4096], ss = 0;
    for (int i = 0; i < d; i++) ss += w[i] * w[i];
    double inv_rms = 1.0 / sqrt(ss / d + r->eps);
    for (int i = 0; i < d; i++)
        x[i] = norm == NORM_FULL ? r->rms_final[i] * w[i] * inv_rms : norm == NORM_GAIN ? r->rms_final[i] * w[i] : w[i];
    double max = -INFINITY;
    for (int v = 0; v < r->vocab; v++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)r->emb[(size_t)v * d + i] * x[i];
        logits[v] = s;
        if (s > max) max = s;
        order[v] = v;
    }
    double sum = 0;
    for (int v = 0; v < r->vocab; v++) sum += exp(logits[v] - max);
    sort_logits = logits;
    qsort(order, (size_t)r->vocab, sizeof *order, by_ref_logit);
    return max + log(sum);
}

static int close_logit(double a, double b) { return fabs(a - b) <= 1e-4 * fmax(1.0, fabs(b)); }

/* One position of a list: the same token, or a token whose reference logit
 * ties the expected one within the tolerance; logit and probability close
 * (the probability within the prefilter's bound on the normaliser, if any). */
static int check_entry(const LensToken *t, int want_id, const double *logits, double lse, double lse_bound,
                       const char *what, int layer, int neuron, int pos) {
    double want = logits[want_id], p = exp(want - lse);
    int ok = t->id == want_id || (t->id >= 0 && close_logit(logits[t->id], want));
    ok = ok && close_logit(t->logit, want) && fabs(t->prob - p) <= 1e-5 + p * expm1(lse_bound);
    CHECK(ok, "%s %d:%d position %d: got id %d logit %.7g prob %.7g, want id %d logit %.7g prob %.7g", what, layer, neuron,
          pos, t->id, t->logit, t->prob, want_id, want, exp(want - lse));
    return ok;
}

/* Maps every neuron of one matrix with the lens, in one batch per layer
 * (neuron tiles) and neuron by neuron (vocabulary split over threads), and
 * compares both with the reference. Returns the number of mismatches. */
/* The ways to compute the map: kernels.c's FP32 kernel (in the kernel set
 * under test), the same kernel in portable C, OpenBLAS, and the prefilter
 * with its exact normaliser past 1e-4 or with every bound kept. */
enum { WITH_NATIVE, WITH_PORTABLE, WITH_OPENBLAS, WITH_PREFILTER, WITH_PREFILTER_BOUNDS };
static const char *with_name[] = { "native", "portable", "openblas", "prefilter", "prefilter-bounds" };

/* The kernel set under test (base/cpu.h): the best this CPU has, except
 * where a test loops over the others. */
static Isa under;
static void use_set(Isa isa) {
    Error e = { 0 };
    CHECK(cpu_force_isa(isa, &e) == 0, "kernel set: %s", e.msg);
}

static void lens_with(Lens *L, int with) {
    Error e = { 0 };
    use_set(with == WITH_PORTABLE ? ISA_GENERIC : under);
    lens_set_kernel(L, with == WITH_OPENBLAS ? LENS_KERNEL_OPENBLAS : LENS_KERNEL_NATIVE);
    L->row_tiles = 1; /* the head packed as row tiles, where the set has tiles */
    if (with >= WITH_PREFILTER)
        CHECK(lens_enable_prefilter(L, with == WITH_PREFILTER ? 1e-4 : INFINITY, &e) == 0, "prefilter: %s", e.msg);
}

static int check_matrix(const Model *m, const RefModel *r, MatrixKind k, LensNorm norm, int threads, int tile_neurons,
                        int tile_vocab, int dequantise, int with) {
    enum { TOP = 10, BOTTOM = 5 };
    Lens L;
    Error e = { 0 };
    CHECK(lens_open(&L, m, norm, threads, dequantise, &e) == 0, "lens_open: %s", e.msg);
    if (tile_neurons) L.tile_neurons = tile_neurons, L.tile_vocab = tile_vocab;
    lens_with(&L, with);
    if (dequantise < 0) L.head = NULL; /* the head converted tile by tile, as for quantised heads */
    int ffn = m->cfg.ffn_dim, dim = m->cfg.dim, V = m->cfg.vocab_size, bad = 0;
    float *vecs = malloc((size_t)ffn * dim * sizeof *vecs);
    double *w = malloc((size_t)dim * sizeof *w), *logits = malloc((size_t)V * sizeof *logits);
    int *order = malloc((size_t)V * sizeof *order);
    LensBatch all, one;
    lens_batch_init(&all, ffn, TOP, BOTTOM);
    lens_batch_init(&one, 1, TOP, BOTTOM);
    char what[64];
    for (int layer = 0; layer < m->cfg.n_layers; layer++) {
        lens_neuron_vectors(&L, k, layer, 0, ffn, vecs);
        lens_decode(&L, vecs, ffn, TOP, BOTTOM, all.r);
        for (int n = 0; n < ffn; n++) {
            ref_vector(r, k, layer, n, w);
            double lse = ref_decode(r, w, norm, logits, order);
            /* neuron by neuron on a few, to cover the vocabulary split */
            int single = n % 37 == 0;
            if (single) lens_decode(&L, vecs + (size_t)n * dim, 1, TOP, BOTTOM, one.r);
            for (int pass = 0; pass < 1 + single; pass++) {
                const LensResult *got = pass ? &one.r[0] : &all.r[n];
                snprintf(what, sizeof what, "%s/%s/%s/%s t%d %dx%d", matrix_name(k), lens_norm_name(norm),
                         pass ? "single" : "batch", with_name[with], threads, L.tile_neurons, L.tile_vocab);
                double lse_ok = 1e-5 * fmax(1.0, fabs(lse)) + got->lse_bound;
                bad += !(fabs(got->lse - lse) <= lse_ok);
                CHECK(fabs(got->lse - lse) <= lse_ok, "%s %d:%d lse %.9g (bound %.3g), want %.9g", what, layer, n, got->lse,
                      got->lse_bound, lse);
                for (int i = 0; i < TOP; i++)
                    bad += !check_entry(&got->top[i], order[i], logits, lse, got->lse_bound, what, layer, n, i + 1);
                for (int i = 0; i < BOTTOM; i++)
                    bad += !check_entry(&got->bottom[i], order[V - 1 - i], logits, lse, got->lse_bound, what, layer, n, -(i + 1));
            }
        }
    }
    lens_batch_free(&all);
    lens_batch_free(&one);
    free(vecs), free(w), free(logits), free(order);
    lens_close(&L);
    use_set(under);
    return bad;
}

static void test_exact_map(void) {
    RefModel r = { 0 };
    int loaded = ref_load(&r, shared_path("models/stories260K/stories260K.bin"));
    CHECK(loaded, "reading stories260K.bin");
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = shared_path("models/stories260K/tok512.bin"), .need_weights = 1 };
    CHECK(model_open(&m, shared_path("models/stories260K/stories260K.bin"), &o, &e) == 0, "model_open: %s", e.msg);
    if (!loaded || e.code) return;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
        for (int norm = NORM_FULL; norm <= NORM_NONE; norm++) {
            for (int with = WITH_NATIVE; with <= WITH_PREFILTER_BOUNDS; with++) {
                if (with == WITH_PORTABLE && (k != MATRIX_UP || norm != NORM_FULL)) continue; /* slow: once is enough */
                int bad = check_matrix(&m, &r, (MatrixKind)k, (LensNorm)norm, 2, 0, 0, 1, with);
                printf("exact map %s/%s with %s: %d mismatches over %d neurons\n", matrix_name((MatrixKind)k),
                       lens_norm_name((LensNorm)norm), with_name[with], bad, m.cfg.n_layers * m.cfg.ffn_dim);
            }
        }
    /* other thread counts and tile shapes: one thread; small tiles, so that
     * there are many neuron blocks, partial tiles at both edges, and (with
     * more threads than blocks) the vocabulary split over threads and merged */
    for (int with = WITH_NATIVE; with <= WITH_PREFILTER_BOUNDS; with++) {
        if (with == WITH_PORTABLE) continue;
        CHECK(check_matrix(&m, &r, MATRIX_UP, NORM_FULL, 1, 0, 0, 1, with) == 0, "single-threaded map differs (%s)", with_name[with]);
        CHECK(check_matrix(&m, &r, MATRIX_DOWN, NORM_GAIN, 5, 0, 0, 1, with) == 0, "five-thread map differs (%s)", with_name[with]);
        CHECK(check_matrix(&m, &r, MATRIX_GATE, NORM_FULL, 3, 24, 100, 1, with) == 0, "24x100 tiles differ (%s)", with_name[with]);
        CHECK(check_matrix(&m, &r, MATRIX_UP, NORM_NONE, 4, 200, 64, 1, with) == 0, "200x64 tiles, vocabulary split, differ (%s)",
              with_name[with]);
        CHECK(check_matrix(&m, &r, MATRIX_DOWN, NORM_FULL, 2, 50, 300, -1, with) == 0, "head converted per tile differs (%s)",
              with_name[with]);
    }
    /* every other vector kernel set this CPU has (generic is "portable" above;
     * OpenBLAS computes the same logits in any set) */
    if (SANITIZED && cpu_best_isa() > ISA_AVX2) SKIP((int)cpu_best_isa() - ISA_AVX2, "other kernel sets' maps (sanitizer build)");
    for (int s = ISA_AVX2; !SANITIZED && s < (int)cpu_best_isa(); s++) {
        under = (Isa)s;
        for (int with = WITH_NATIVE; with <= WITH_PREFILTER_BOUNDS; with++)
            if (with != WITH_PORTABLE && with != WITH_OPENBLAS)
                CHECK(check_matrix(&m, &r, MATRIX_UP, NORM_FULL, 2, 0, 0, 1, with) == 0, "kernel set %s: map differs (%s)",
                      isa_name(under), with_name[with]);
    }
    use_set(under = cpu_best_isa());

    /* lens_logits: every logit of a few neurons */
    Lens L;
    lens_open(&L, &m, NORM_FULL, 2, 0, &e);
    float vec[3 * 64], *all = malloc(3 * (size_t)L.vocab * sizeof *all);
    double w[64], *logits = malloc((size_t)L.vocab * sizeof *logits);
    int *order = malloc((size_t)L.vocab * sizeof *order), worst = 0;
    lens_neuron_vectors(&L, MATRIX_GATE, 3, 40, 3, vec);
    lens_logits(&L, vec, 3, all);
    for (int i = 0; i < 3; i++) {
        ref_vector(&r, MATRIX_GATE, 3, 40 + i, w);
        ref_decode(&r, w, NORM_FULL, logits, order);
        for (int v = 0; v < L.vocab; v++) worst += !close_logit(all[(size_t)i * L.vocab + v], logits[v]);
    }
    CHECK(worst == 0, "lens_logits: %d logits off", worst);
    free(all), free(logits), free(order);
    lens_close(&L);
    model_close(&m);
    ref_free(&r);
}

/* The same map from the GGUF and Hugging Face forms: F32 ones against the
 * .bin's numbers, BF16 against those numbers rounded to BF16 here, quantised
 * ones against their own dequantised weights. Non-F32 heads are
 * checked both dequantised once (map) and converted per tile (show, find). */
static void test_other_forms(void) {
    static const struct { const char *model; int from_bin, bf16; } forms[] = {
        { "models/stories260K/stories260K.gguf", 1, 0 },
        { "models/stories260K-hf", 1, 0 },
        { "models/stories260K-hf-bf16-sharded", 1, 1 },
        { "models/quant/stories260K-q8_0.gguf", 0, 0 },
        { "models/quant/synth256-q4_k_m.gguf", 0, 0 },
        { "models/quant/synth256-q6_k.gguf", 0, 0 },
    };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        Model m;
        Error e = { 0 };
        RefModel r = { 0 };
        ModelOpenOptions o = { .need_weights = 1 };
        if (model_open(&m, shared_path(forms[f].model), &o, &e)) {
            CHECK(0, "model_open %s: %s", forms[f].model, e.msg);
            continue;
        }
        int loaded;
        if (!forms[f].from_bin) {
            loaded = ref_from_model(&r, &m);
        } else {
            loaded = ref_load(&r, shared_path("models/stories260K/stories260K.bin"));
            if (loaded && forms[f].bf16) {
                size_t d = (size_t)r.dim, n = (size_t)r.layers * r.hidden * d;
                ref_round_bf16(r.emb, (size_t)r.vocab * d), ref_round_bf16(r.rms_final, d);
                ref_round_bf16(r.w1, n), ref_round_bf16(r.w2, n), ref_round_bf16(r.w3, n);
            }
        }
        CHECK(loaded && r.vocab == m.cfg.vocab_size && r.dim == m.cfg.dim, "reference for %s", forms[f].model);
        if (loaded) {
            int bad = 0;
            for (int with = WITH_NATIVE; with <= WITH_PREFILTER_BOUNDS; with++) {
                if (with == WITH_PORTABLE) continue;
                for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) bad += check_matrix(&m, &r, (MatrixKind)k, NORM_FULL, 2, 0, 0, 1, with);
                bad += check_matrix(&m, &r, MATRIX_DOWN, NORM_GAIN, 3, 64, 100, 0, with);
            }
            printf("exact map of %s (head %s): %d mismatches\n", forms[f].model, dtype_name(m.output->type), bad);
        }
        ref_free(&r);
        model_close(&m);
    }
}

/* ----------------------------------------------------------------------------
 * The prefilter gives the exact map's token ids and logits bit for bit */

/* The same token ids with the same logits, bit for bit, in both lists. */
static int same_ids_logits(const LensResult *x, const LensResult *y, int top, int bottom) {
    for (int i = 0; i < top + bottom; i++) {
        const LensToken *s = i < top ? &x->top[i] : &x->bottom[i - top], *t = i < top ? &y->top[i] : &y->bottom[i - top];
        if (s->id != t->id || memcmp(&s->logit, &t->logit, sizeof s->logit) != 0) return 0;
    }
    return 1;
}

/* Maps every neuron of every matrix exactly (our kernel) and through the
 * prefilter; returns the number of neurons whose lists differ in any bit.
 * lse: equal where the exact normaliser was computed, else within the
 * neuron's bound. */
static int prefilter_differences(const Model *m, int tile_neurons, int tile_vocab, int threads, double prob_tol,
                                 double bound_scale, int *lse_outside) {
    enum { TOP = 10, BOTTOM = 5 };
    Lens exact, pf;
    Error e = { 0 };
    lens_open(&exact, m, NORM_FULL, threads, 1, &e);
    lens_open(&pf, m, NORM_FULL, threads, 1, &e);
    lens_set_kernel(&exact, LENS_KERNEL_NATIVE);
    pf.row_tiles = 1; /* the head packed as row tiles, where the set has tiles (the default pass tiles use them) */
    CHECK(lens_enable_prefilter(&pf, prob_tol, &e) == 0, "prefilter: %s", e.msg);
    pf.bound_scale = bound_scale;
    if (tile_neurons) exact.tile_neurons = pf.tile_neurons = tile_neurons, exact.tile_vocab = pf.tile_vocab = tile_vocab;
    int ffn = m->cfg.ffn_dim, dim = m->cfg.dim, differ = 0;
    float *vecs = malloc((size_t)ffn * dim * sizeof *vecs);
    LensBatch a, b;
    lens_batch_init(&a, ffn, TOP, BOTTOM);
    lens_batch_init(&b, ffn, TOP, BOTTOM);
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
        for (int layer = 0; layer < m->cfg.n_layers; layer++) {
            lens_neuron_vectors(&exact, (MatrixKind)k, layer, 0, ffn, vecs);
            lens_decode(&exact, vecs, ffn, TOP, BOTTOM, a.r);
            lens_decode(&pf, vecs, ffn, TOP, BOTTOM, b.r);
            for (int n = 0; n < ffn; n++) {
                const LensResult *x = &a.r[n], *y = &b.r[n];
                differ += !same_ids_logits(x, y, TOP, BOTTOM);
                /* an exact normaliser may be summed in other slices: the same up to rounding */
                double allowed = y->lse_bound ? y->lse_bound : 1e-12 * fmax(1, fabs(x->lse));
                *lse_outside += !(fabs(x->lse - y->lse) <= allowed);
            }
        }
    lens_batch_free(&a), lens_batch_free(&b);
    free(vecs);
    lens_close(&exact), lens_close(&pf);
    return differ;
}

static void test_prefilter_identity(void) {
    static const char *forms[] = {
        "models/stories260K/stories260K.gguf",            /* F32 head: W = bf16(W) + rest */
        "models/stories260K-hf-bf16-sharded",             /* BF16 head, read in place */
        "models/quant/stories260K-q8_0.gguf",             /* quantised head, dequantised */
    };
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        Model m;
        Error e = { 0 };
        ModelOpenOptions o = { .need_weights = 1 };
        if (model_open(&m, shared_path(forms[f]), &o, &e)) {
            CHECK(0, "model_open %s: %s", forms[f], e.msg);
            continue;
        }
        static const struct { int tn, tv, threads; double tol; } runs[] = {
            { 0, 0, 2, 1e-4 }, { 0, 0, 2, INFINITY }, { 24, 100, 3, INFINITY }, { 200, 64, 1, 0 },
        };
        for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
            int outside = 0;
            int differ = prefilter_differences(&m, runs[r].tn, runs[r].tv, runs[r].threads, runs[r].tol, 1.0, &outside);
            CHECK(differ == 0 && outside == 0, "%s, tiles %dx%d, %d threads, prob-tol %g: %d neurons differ from the exact map, %d lse outside the bound",
                  forms[f], runs[r].tn, runs[r].tv, runs[r].threads, runs[r].tol, differ, outside);
        }
        /* every other kernel set this CPU has (generic: the portable C) under the same test */
        int outside = 0, differ;
        if (SANITIZED) SKIP((int)cpu_best_isa(), "%s: other kernel sets' prefilter (sanitizer build)", forms[f]);
        for (int s = ISA_GENERIC; !SANITIZED && s < (int)cpu_best_isa(); s++) {
            use_set(under = (Isa)s);
            outside = 0, differ = prefilter_differences(&m, 0, 0, 2, INFINITY, 1.0, &outside);
            CHECK(differ == 0 && outside == 0, "%s, kernel set %s: %d neurons differ, %d lse outside the bound", forms[f],
                  isa_name((Isa)s), differ, outside);
            if (s < ISA_AVX512BF16) continue; /* and each BF16 engine (VDPBF16PS, AMX below) can fail it */
            outside = 0, differ = prefilter_differences(&m, 0, 0, 2, INFINITY, 0.0, &outside);
            CHECK(differ > 0, "%s, kernel set %s: with no error bound still identical: the test is blind", forms[f], isa_name((Isa)s));
        }
        use_set(under = cpu_best_isa());
        /* The comparison can fail: with the bound shrunk to nothing, the BF16
         * pass alone picks the candidates, and some lists come out wrong. */
        outside = 0, differ = prefilter_differences(&m, 0, 0, 2, INFINITY, 0.0, &outside);
        CHECK(differ > 0, "%s: with no error bound the prefilter still matched the exact map (%d differ): the test is blind", forms[f], differ);
        printf("prefilter on %s (%s): identical to the exact map; with the bound removed, %d of %d neurons differ\n", forms[f],
               isa_name(under), differ, 3 * m.cfg.n_layers * m.cfg.ffn_dim);
        model_close(&m);
    }
}

/* The BF16 pass split over vocabulary slices, handed out to the threads
 * one by one, gives what one thread gives, bit for bit, however the slices
 * fell to the threads: ids, logits, every probability, the normaliser and
 * its bound, and where the normaliser is computed exactly instead (the
 * exact map's slices, also handed out one by one), that too. pass_items counts the work items
 * threads could share: per block of neurons (2·tile_neurons, decode.c) one
 * slice per PASS_SLICE_TILES (4) tiles, at least one per thread, at most
 * one per tile. */
static void test_prefilter_split(void) {
    static const char *forms[] = { "models/stories260K/stories260K.gguf", "models/stories260K-hf-bf16-sharded" };
    static const struct { int tn, tv, threads, items; double tol; } runs[] = {
        { 200, 64, 4, 4, INFINITY }, /* one block (172 neurons), 8 tiles in 4 slices */
        { 50, 50, 3, 6, 5e-3 },      /* two blocks, 11 tiles in 3 uneven slices: 6 items on 3 threads;
                                        most normalisers then computed exactly */
        { 200, 50, 7, 7, INFINITY }, /* 11 tiles in 7 slices */
        { 200, 50, 7, 0, 0 },        /* every normaliser exact: no neuron is worth the BF16 pass */
        { 25, 8, 2, 64, INFINITY },  /* four blocks, 64 tiles in 16 slices of 4: 64 items on 2 threads */
    };
    enum { TOP = 10, BOTTOM = 5 };
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        Model m;
        Error e = { 0 };
        ModelOpenOptions o = { .need_weights = 1 };
        if (model_open(&m, shared_path(forms[f]), &o, &e)) {
            CHECK(0, "model_open %s: %s", forms[f], e.msg);
            continue;
        }
        int ffn = m.cfg.ffn_dim, dim = m.cfg.dim;
        float *vecs = malloc((size_t)ffn * dim * sizeof *vecs);
        for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
            Lens one, many;
            LensBatch a, b;
            lens_open(&one, &m, NORM_FULL, 1, 1, &e);
            lens_open(&many, &m, NORM_FULL, runs[r].threads, 1, &e);
            CHECK(lens_enable_prefilter(&one, runs[r].tol, &e) == 0 && lens_enable_prefilter(&many, runs[r].tol, &e) == 0, "prefilter: %s", e.msg);
            one.tile_neurons = many.tile_neurons = runs[r].tn, one.tile_vocab = many.tile_vocab = runs[r].tv;
            lens_batch_init(&a, ffn, TOP, BOTTOM), lens_batch_init(&b, ffn, TOP, BOTTOM);
            int differ = 0;
            for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
                for (int layer = 0; layer < m.cfg.n_layers; layer++) {
                    lens_neuron_vectors(&one, (MatrixKind)k, layer, 0, ffn, vecs);
                    lens_decode(&one, vecs, ffn, TOP, BOTTOM, a.r);
                    lens_decode(&many, vecs, ffn, TOP, BOTTOM, b.r);
                    for (int n = 0; n < ffn; n++) {
                        const LensResult *x = &a.r[n], *y = &b.r[n];
                        /* every bit: the BF16 pass's normaliser and bound, and the exact one
                         * (exact_decode's slices, not its threads, decide how it is rounded) */
                        differ += memcmp(&x->lse, &y->lse, sizeof x->lse) || memcmp(&x->lse_bound, &y->lse_bound, sizeof x->lse_bound) ||
                                  memcmp(x->top, y->top, TOP * sizeof *x->top) || memcmp(x->bottom, y->bottom, BOTTOM * sizeof *x->bottom);
                    }
                }
            CHECK(differ == 0, "%s, tiles %dx%d, %d threads: %d neurons differ from one thread's", forms[f], runs[r].tn, runs[r].tv,
                  runs[r].threads, differ);
            int one_items = runs[r].items ? (ffn + 2 * runs[r].tn - 1) / (2 * runs[r].tn) : 0;
            CHECK(one.stats->pass_items == one_items && many.stats->pass_items == runs[r].items,
                  "%s, tiles %dx%d, %d threads: %d work items (one thread: %d), want %d", forms[f], runs[r].tn, runs[r].tv,
                  runs[r].threads, many.stats->pass_items, one.stats->pass_items, runs[r].items);
            lens_batch_free(&a), lens_batch_free(&b);
            lens_close(&one), lens_close(&many);
        }
        free(vecs);
        model_close(&m);
    }
}

/* A neuron whose bound cannot meet prob_tol unless its top candidates hold
 * nearly all of its softmax skips the BF16 pass and is mapped exactly
 * (decode.c, pf_hopeless); the others go through the pass. A batch of
 * both: layer 0's up vectors, every odd one scaled by 30 (its bound grows
 * with ‖x‖, past what 5e-3 allows at PF_SHARE_MIN; the even ones stay well
 * inside it). The scaling also peaks their softmax, so the pass would have
 * certified them (with the routing disabled it does, and this test fails):
 * the price of deciding before the pass, paid in time only. The
 * two parts are decoded apart and put back: every neuron's ids and logits
 * must be the exact map's, bit for bit, in its own place, the odd ones'
 * normalisers exact, the even ones' within their bounds, some of them
 * certified by the pass. */
static void test_prefilter_routes(void) {
    enum { TOP = 10, BOTTOM = 5 };
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .need_weights = 1 };
    if (model_open(&m, shared_path("models/stories260K/stories260K.gguf"), &o, &e)) {
        CHECK(0, "model_open: %s", e.msg);
        return;
    }
    int ffn = m.cfg.ffn_dim, dim = m.cfg.dim;
    Lens exact, pf;
    lens_open(&exact, &m, NORM_FULL, 2, 1, &e);
    lens_open(&pf, &m, NORM_FULL, 2, 1, &e);
    lens_set_kernel(&exact, LENS_KERNEL_NATIVE);
    CHECK(lens_enable_prefilter(&pf, 5e-3, &e) == 0, "prefilter: %s", e.msg);
    float *vecs = malloc((size_t)ffn * dim * sizeof *vecs);
    lens_neuron_vectors(&exact, MATRIX_UP, 0, 0, ffn, vecs);
    for (int n = 1; n < ffn; n += 2)
        for (int d = 0; d < dim; d++) vecs[(size_t)n * dim + d] *= 30.0f;
    LensBatch a, b;
    lens_batch_init(&a, ffn, TOP, BOTTOM), lens_batch_init(&b, ffn, TOP, BOTTOM);
    lens_decode(&exact, vecs, ffn, TOP, BOTTOM, a.r);
    lens_decode(&pf, vecs, ffn, TOP, BOTTOM, b.r);
    int differ = 0, odd_bounded = 0, even_outside = 0, even_certified = 0;
    for (int n = 0; n < ffn; n++) {
        const LensResult *x = &a.r[n], *y = &b.r[n];
        differ += !same_ids_logits(x, y, TOP, BOTTOM); /* probabilities differ where the normaliser is bounded */
        if (n % 2) odd_bounded += y->lse_bound != 0 || !(fabs(x->lse - y->lse) <= 1e-12 * fmax(1, fabs(x->lse)));
        else even_outside += !(fabs(x->lse - y->lse) <= fmax(y->lse_bound, 1e-12 * fmax(1, fabs(x->lse)))),
             even_certified += y->lse_bound > 0;
    }
    CHECK(differ == 0, "routed prefilter: %d neurons' lists differ from the exact map's", differ);
    CHECK(odd_bounded == 0, "routed prefilter: %d hopeless neurons without the exact normaliser", odd_bounded);
    CHECK(even_outside == 0 && even_certified > 0, "routed prefilter: %d normalisers outside their bounds, %d certified by the pass",
          even_outside, even_certified);
    CHECK(pf.stats->pass_items > 0 && pf.stats->exact_lse >= ffn / 2 && pf.stats->neurons == ffn,
          "routed prefilter: %d pass items, %lld exact normalisers, %lld neurons", pf.stats->pass_items,
          (long long)pf.stats->exact_lse, (long long)pf.stats->neurons);
    printf("prefilter routes: %d of %d neurons certified by the BF16 pass, the %d scaled ones mapped exactly\n", even_certified,
           ffn, ffn / 2);
    lens_batch_free(&a), lens_batch_free(&b);
    free(vecs);
    lens_close(&exact), lens_close(&pf);
    model_close(&m);
}

/* ----------------------------------------------------------------------------
 * Every kernel set gives the same map: token ids in the same order with the
 * same logits, bit for bit (one FMA chain per logit in each), and the
 * normaliser within the sets' stated exp error (exact) or the bound kept
 * (prefilter). The reference is the generic set's exact map. */

static void test_sets_identical(void) {
    static const char *forms[] = { "models/stories260K/stories260K.gguf", "models/stories260K-hf-bf16-sharded",
                                   "models/quant/stories260K-q8_0.gguf" };
    enum { TOP = 10, BOTTOM = 5 };
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        Model m;
        Error e = { 0 };
        ModelOpenOptions o = { .need_weights = 1 };
        if (model_open(&m, shared_path(forms[f]), &o, &e)) {
            CHECK(0, "model_open %s: %s", forms[f], e.msg);
            continue;
        }
        int ffn = m.cfg.ffn_dim, dim = m.cfg.dim, L_ = m.cfg.n_layers, n_all = 3 * L_ * ffn;
        float *vecs = malloc((size_t)ffn * dim * sizeof *vecs);
        LensBatch ref, got;
        lens_batch_init(&ref, n_all, TOP, BOTTOM);
        lens_batch_init(&got, n_all, TOP, BOTTOM);
        for (int s = ISA_GENERIC; s < ISA_COUNT; s++) {
            if (!cpu_has_isa((Isa)s)) continue;
            use_set((Isa)s);
            for (int pf = 0; pf < 2 - (s == ISA_GENERIC); pf++) {
                Lens L;
                lens_open(&L, &m, NORM_FULL, 3, 1, &e);
                lens_set_kernel(&L, LENS_KERNEL_NATIVE);
                L.row_tiles = 1;
                if (pf) CHECK(lens_enable_prefilter(&L, INFINITY, &e) == 0, "prefilter: %s", e.msg);
                LensBatch *b = s == ISA_GENERIC ? &ref : &got;
                for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
                    for (int layer = 0; layer < L_; layer++) {
                        lens_neuron_vectors(&L, (MatrixKind)k, layer, 0, ffn, vecs);
                        lens_decode(&L, vecs, ffn, TOP, BOTTOM, b->r + (size_t)(k * L_ + layer) * ffn);
                    }
                lens_close(&L);
                if (b == &ref) continue;
                int differ = 0, lse_off = 0;
                for (int i = 0; i < n_all; i++) {
                    const LensResult *x = &ref.r[i], *y = &got.r[i];
                    for (int t = 0; t < TOP + BOTTOM; t++) {
                        const LensToken *a = t < TOP ? &x->top[t] : &x->bottom[t - TOP], *c = t < TOP ? &y->top[t] : &y->bottom[t - TOP];
                        differ += a->id != c->id || memcmp(&a->logit, &c->logit, sizeof a->logit) != 0;
                    }
                    lse_off += !(fabs(x->lse - y->lse) <= 4 * KERN_EXP_ERROR + 1e-12 * fabs(x->lse) + y->lse_bound);
                }
                CHECK(differ == 0 && lse_off == 0, "%s, kernel set %s%s: %d entries differ from generic's map, %d lse off",
                      forms[f], isa_name((Isa)s), pf ? " (prefilter)" : "", differ, lse_off);
            }
            if (s != ISA_GENERIC)
                printf("%s: kernel set %s gives generic's token ids and logits, exact and prefiltered\n", forms[f], isa_name((Isa)s));
        }
        use_set(under);
        lens_batch_free(&ref), lens_batch_free(&got);
        free(vecs);
        model_close(&m);
    }
}

/* ----------------------------------------------------------------------------
 * Token escaping */

static void test_escape(void) {
    struct { const char *in; size_t n; const char *want; } cases[] = {
        { "a\tb\nc\\", 6, "a\\tb\\nc\\\\" },
        { " Lily", 5, " Lily" },
        { "\xE2\x96\x81x", 4, "\xE2\x96\x81x" },          /* ▁x: valid UTF-8 stays */
        { "\xE2", 1, "\\xE2" },                           /* a lone lead byte */
        { "\x80 ok", 4, "\\x80 ok" },                     /* a stray continuation byte */
        { "\xC0\xAF", 2, "\\xC0\\xAF" },                  /* overlong '/' */
        { "\xED\xA0\x80", 3, "\\xED\\xA0\\x80" },         /* a surrogate */
        { "\xF0\x9F\x90\xB6", 4, "\xF0\x9F\x90\xB6" },    /* 🐶 */
        { "\x01\x7f", 2, "\\x01\\x7F" },
        { "a\0b", 3, "a\\x00b" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        escape_token(cases[i].in, cases[i].n, out, sizeof out);
        CHECK(strcmp(out, cases[i].want) == 0, "escape case %zu: got '%s', want '%s'", i, out, cases[i].want);
    }
    char small[4];
    escape_token("\n\n\n", 3, small, sizeof small);
    CHECK(strcmp(small, "\\n") == 0, "escape truncates at whole escapes: '%s'", small);
}

/* ----------------------------------------------------------------------------
 * Atlas round trip */

static void test_atlas(void) {
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = shared_path("models/stories260K/tok512.bin"), .need_weights = 1 };
    if (model_open(&m, shared_path("models/stories260K/stories260K.bin"), &o, &e)) {
        CHECK(0, "model_open: %s", e.msg);
        return;
    }
    char dir[] = "/tmp/test_lens_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/a.db", dir);
    Lens L;
    lens_open(&L, &m, NORM_GAIN, 2, 1, &e);
    int dim = m.cfg.dim;
    float *vecs = malloc(20 * (size_t)dim * sizeof *vecs);
    LensBatch b;
    lens_batch_init(&b, 20, 4, 2);
    lens_neuron_vectors(&L, MATRIX_DOWN, 1, 100, 20, vecs);
    lens_decode(&L, vecs, 20, 4, 2, b.r);
    AtlasInfo info = { .identity = m.identity, .n_layers = m.cfg.n_layers, .dim = dim, .ffn_dim = m.cfg.ffn_dim,
                       .vocab_size = m.cfg.vocab_size, .norm = NORM_GAIN, .top_k = 4, .bottom_k = 2 };
    strcpy(info.matrices, "down"), strcpy(info.layers, "1-1"), strcpy(info.neurons, "100-119");
    Atlas *a;
    CHECK(atlas_create(&a, path, 0, &m, &info, &e) == 0, "atlas_create: %s", e.msg);
    CHECK(!path_exists(path), "the final name must not exist while writing");
    for (int i = 0; i < 20; i++) atlas_add(a, MATRIX_DOWN, 1, 100 + i, &b.r[i], 4, 2, &e);
    CHECK(atlas_commit(a, &e) == 0, "atlas_commit: %s", e.msg);
    CHECK(atlas_is_atlas(path), "written atlas is recognised");
    CHECK(atlas_create(&a, path, 0, &m, &info, &e) == NM_EINPUT, "an existing atlas is refused without force");

    Atlas *r;
    int opened = atlas_open(&r, path, &e) == 0;
    CHECK(opened, "atlas_open: %s", e.msg);
    if (opened) {
        const AtlasInfo *in = atlas_info(r);
        CHECK(in->norm == NORM_GAIN && in->top_k == 4 && in->bottom_k == 2 && in->identity == m.identity &&
              in->vocab_size == m.cfg.vocab_size, "atlas info round trip");
        LensBatch g;
        lens_batch_init(&g, 1, 4, 2);
        int nt, nb, same = 1;
        for (int i = 0; i < 20; i++) {
            CHECK(atlas_neuron(r, MATRIX_DOWN, 1, 100 + i, &g.r[0], &nt, &nb, &e) == 0, "atlas_neuron: %s", e.msg);
            same &= nt == 4 && nb == 2 && fabs(g.r[0].lse - b.r[i].lse) < 1e-9;
            for (int t = 0; t < 4; t++) same &= g.r[0].top[t].id == b.r[i].top[t].id && g.r[0].top[t].logit == b.r[i].top[t].logit;
            for (int t = 0; t < 2; t++) same &= g.r[0].bottom[t].id == b.r[i].bottom[t].id && g.r[0].bottom[t].prob == b.r[i].bottom[t].prob;
        }
        CHECK(same, "atlas neurons round trip");
        CHECK(atlas_neuron(r, MATRIX_UP, 1, 100, &g.r[0], &nt, &nb, &e) == NM_EINPUT, "a neuron not mapped is refused");
        int tok = b.r[7].top[0].id;
        TokenNames tn = atlas_token_names(r);
        TokenNames mn = lens_vocab_names(&m.vocab);
        int same_tokens = tn.n == mn.n;
        for (int i = 0; same_tokens && i < tn.n; i++)
            same_tokens = tn.len[i] == mn.len[i] && memcmp(tn.text[i], mn.text[i], (size_t)tn.len[i]) == 0 && tn.type[i] == mn.type[i];
        CHECK(same_tokens, "the atlas stores the vocabulary");
        CHECK(lens_find_token(&tn, " Lily", 5) == lens_find_token(&mn, " Lily", 5) && lens_find_token(&mn, " Lily", 5) > 258,
              "token lookup by text");
        CHECK(lens_find_token(&mn, "a", 1) > 258 && lens_find_token(&mn, "\x01", 1) == 4, "ordinary pieces win over byte tokens");
        AtlasHit *hits;
        int n;
        CHECK(atlas_find(r, tok, 1u << MATRIX_DOWN, 100, &hits, &n, &e) == 0, "atlas_find: %s", e.msg);
        int has = 0;
        for (int i = 0; i < n; i++) {
            has |= hits[i].neuron == 107 && hits[i].rank == 1 && hits[i].top_id == tok;
            CHECK(i == 0 || hits[i].logit <= hits[i - 1].logit, "atlas_find sorted by logit");
        }
        CHECK(has, "atlas_find finds neuron 107 for its own top token");
        free(hits);
        atlas_find(r, tok, 1u << MATRIX_UP, 100, &hits, &n, &e);
        CHECK(n == 0, "atlas_find honours the matrix mask");
        free(hits);
        lens_batch_free(&g);
        atlas_close(r);
    }
    unlink(path);
    rmdir(dir);
    free(vecs);
    lens_batch_free(&b);
    lens_close(&L);
    model_close(&m);
}

int main(void) {
    char have[96];
    under = cpu_best_isa();
    printf("kernel sets here: %s (all tested; the best, %s, throughout)\n", cpu_isa_list(have, sizeof have), isa_name(under));
    test_escape();
    test_exact_map();
    test_other_forms();
    test_prefilter_identity();
    test_prefilter_split();
    test_prefilter_routes();
    if (SANITIZED) SKIP(1, "every kernel set against generic's map, bit for bit (sanitizer build)");
    else test_sets_identical();
    test_atlas();
    return check_summary("test_lens");
}
