/* test_synth.c — synth output read back through the model interface: shapes,
 * dtypes and tied heads as asked; planted rows exactly the stored LM-head row
 * scaled to unit RMS, and decoding (in double, written here) to the planted
 * token; HF and GGUF of one seed the same model; the tokenizer carried into
 * GGUF metadata intact; Q8_0 bytes identical to llama-quantize's.
 *
 * It runs the neuromap binary built beside it (BUILD/neuromap for
 * BUILD/tests/test_synth), so the ASan build tests the ASan binary. */
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/registry.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "formats/writer.h"
#include "tensor/quant.h"

static char neuromap[4096], tmpdir[4096];

/* Runs `neuromap synth OUT ARGS` (OUT inside the temp dir); returns the exit status. */
static int synth(const char *out, const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s synth %s/%s %s 2>%s/synth.err", neuromap, tmpdir, out, args, tmpdir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int open_out(Model *m, const char *out) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", tmpdir, out);
    Error e = { 0 };
    if (model_open(m, path, NULL, &e)) {
        CHECK(0, "open %s: %s", path, e.msg);
        return 0;
    }
    return 1;
}

static float *lm_row(const Model *m, int token) {
    float *r = malloc((size_t)m->cfg.dim * sizeof *r);
    tensor_rows_f32(m->output, token, 1, r);
    return r;
}

/* The neuron's top-1 token under --norm full, in double: W_U · (g ⊙ w / rms(w)). */
static int decode_top1(const Model *m, const float *w) {
    int dim = m->cfg.dim;
    double ss = 0;
    for (int i = 0; i < dim; i++) ss += (double)w[i] * w[i];
    double inv = 1 / sqrt(ss / dim + m->cfg.norm_eps), best = -INFINITY;
    float *g = malloc((size_t)dim * sizeof *g), *row = malloc((size_t)dim * sizeof *row);
    tensor_rows_f32(m->output_norm, 0, 1, g);
    int top = -1;
    for (int t = 0; t < m->cfg.vocab_size; t++) {
        tensor_rows_f32(m->output, t, 1, row);
        double logit = 0;
        for (int i = 0; i < dim; i++) logit += (double)row[i] * g[i] * w[i] * inv;
        if (logit > best) best = logit, top = t;
    }
    free(g);
    free(row);
    return top;
}

/* Planted neuron (layer, n) of matrix k must be token's stored LM-head row at
 * unit RMS, within the rounding of the file's dtype, and decode to token. */
static void check_planted(const Model *m, MatrixKind k, int layer, int n, int token, double tol, const char *what) {
    int dim = m->cfg.dim;
    float *w = malloc((size_t)dim * sizeof *w), *h = lm_row(m, token);
    model_neuron_vector(m, k, layer, n, w);
    double ss = 0, worst = 0;
    for (int i = 0; i < dim; i++) ss += (double)h[i] * h[i];
    double rms = sqrt(ss / dim);
    for (int i = 0; i < dim; i++) {
        double want = h[i] / rms, err = fabs(w[i] - want) / (fabs(want) + 1); /* unit RMS */
        if (err > worst) worst = err;
    }
    CHECK(worst <= tol, "%s: %s %d:%d differs from token %d's unit-RMS head row by %g (tol %g)", what, matrix_name(k),
          layer, n, token, worst, tol);
    int top = decode_top1(m, w);
    CHECK(top == token, "%s: %s %d:%d decodes to %d, planted %d", what, matrix_name(k), layer, n, top, token);
    free(w);
    free(h);
}

/* The planted token as synth reported it on stderr ("planted L:N = token T"). */
static int reported_token(const char *neuron) {
    char path[8192], line[512], want[64];
    snprintf(path, sizeof path, "%s/synth.err", tmpdir);
    snprintf(want, sizeof want, "planted %s = token ", neuron);
    FILE *f = fopen(path, "r");
    int t = -1;
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, want);
        if (p) t = atoi(p + strlen(want));
    }
    if (f) fclose(f);
    return t;
}

/* ----------------------------------------------------------------------------
 * Tests */

static void test_hf_f32_planted(void) {
    CHECK(synth("hf", "--seed 5 --plant 0:3=' dog' --plant 1:100=' California' --plant 1:7=300") == 0, "synth hf");
    int dog = reported_token("0:3"), cal = reported_token("1:100");
    Model m;
    if (!open_out(&m, "hf")) return;
    const Config *c = &m.cfg;
    CHECK(m.format == FORMAT_HF && c->n_layers == 2 && c->dim == 64 && c->ffn_dim == 192 && c->n_heads == 4 &&
              c->n_kv_heads == 2 && c->head_dim == 16 && c->vocab_size == 512 && !c->tied_embeddings,
          "hf tiny config: layers %d dim %d ffn %d heads %d/%d vocab %d tied %d", c->n_layers, c->dim, c->ffn_dim,
          c->n_heads, c->n_kv_heads, c->vocab_size, c->tied_embeddings);
    CHECK(m.layers[0].up->type == DT_F32 && m.output->type == DT_F32, "hf dtype F32");
    CHECK(dog >= 0 && m.vocab.text_len[dog] == 4 && memcmp(m.vocab.text[dog], " dog", 4) == 0, "' dog' is token %d", dog);
    CHECK(cal >= 0 && strcmp(m.vocab.text[cal], " California") == 0, "' California' is token %d", cal);
    for (MatrixKind k = MATRIX_UP; k <= MATRIX_GATE; k++) {
        check_planted(&m, k, 0, 3, dog, 1e-6, "hf f32");
        check_planted(&m, k, 1, 100, cal, 1e-6, "hf f32");
        check_planted(&m, k, 1, 7, 300, 1e-6, "hf f32");
    }
    /* An unplanted row is random: RMS near 0.02. */
    float w[64];
    model_neuron_vector(&m, MATRIX_UP, 0, 4, w);
    double ss = 0;
    for (int i = 0; i < 64; i++) ss += (double)w[i] * w[i];
    CHECK(fabs(sqrt(ss / 64) - 0.02) < 0.006, "random row RMS %g", sqrt(ss / 64));
    /* The built-in byte-level vocabulary tokenizes its words whole. */
    Tokenizer *t;
    Error e = { 0 };
    int *ids = NULL, n = 0;
    if (tokenizer_new(&m.vocab, &t, &e) == 0) {
        if (tokenizer_encode(t, " the dog", 8, 0, &ids, &n, &e) == 0)
            CHECK(n == 2 && ids[1] == dog, "' the dog' → %d tokens, second %d", n, n > 1 ? ids[1] : -1);
        else CHECK(0, "encode: %s", e.msg);
        free(ids);
        tokenizer_free(t);
    } else {
        CHECK(0, "tokenizer_new: %s", e.msg);
    }
    model_close(&m);
}

/* One seed, two formats, the same model; GGUF dtypes read back as stored. */
static void test_gguf_same_model(void) {
    static const struct { const char *name, *dtype; DType type; double tol; } forms[] = {
        { "m-f32.gguf", "f32", DT_F32, 0 }, { "m-bf16.gguf", "bf16", DT_BF16, 1.0 / 128 },
        { "m-f16.gguf", "f16", DT_F16, 1.0 / 512 }, { "m-q8.gguf", "q8_0", DT_Q8_0, 0.03 },
    };
    CHECK(synth("ref", "--seed 11 --plant 1:9=' mom'") == 0, "synth ref");
    int mom = reported_token("1:9");
    Model ref;
    if (!open_out(&ref, "ref")) return;
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        char args[256];
        snprintf(args, sizeof args, "--seed 11 --plant 1:9=' mom' --dtype %s", forms[f].dtype);
        CHECK(synth(forms[f].name, args) == 0, "synth %s", forms[f].name);
        Model m;
        if (!open_out(&m, forms[f].name)) continue;
        CHECK(m.format == FORMAT_GGUF && m.cfg.dim == 64 && m.cfg.n_layers == 2 && m.cfg.vocab_size == 512 &&
                  !m.cfg.tied_embeddings,
              "%s config", forms[f].name);
        CHECK(m.layers[1].up->type == forms[f].type && m.output->type == forms[f].type &&
                  m.output_norm->type == DT_F32,
              "%s types: up %s, norm %s", forms[f].name, dtype_name(m.layers[1].up->type), dtype_name(m.output_norm->type));
        CHECK(m.vocab.n_tokens == ref.vocab.n_tokens && m.vocab.bos_id == ref.vocab.bos_id &&
                  m.vocab.eos_id == ref.vocab.eos_id && m.vocab.n_merges == ref.vocab.n_merges,
              "%s vocabulary: %d tokens, %d merges", forms[f].name, m.vocab.n_tokens, m.vocab.n_merges);
        /* Same pieces; ids the tokenizer leaves undefined are "[PADn]" in GGUF, as llama.cpp pads. */
        int diff = -1;
        for (int i = 0; i < ref.vocab.n_tokens && diff < 0; i++) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", i);
            if (strcmp(ref.vocab.piece[i][0] ? ref.vocab.piece[i] : pad, m.vocab.piece[i]) != 0) diff = i;
        }
        CHECK(diff < 0, "%s: token %d is '%s', the HF tokenizer.json's '%s'", forms[f].name, diff,
              diff < 0 ? "" : m.vocab.piece[diff], diff < 0 ? "" : ref.vocab.piece[diff]);
        /* Every MLP neuron vector equals the HF file's, within the dtype's rounding. */
        float a[64], b[64];
        double worst = 0;
        for (MatrixKind k = MATRIX_UP; k <= MATRIX_DOWN; k++)
            for (int l = 0; l < 2; l++)
                for (int n = 0; n < 192; n++) {
                    model_neuron_vector(&ref, k, l, n, a);
                    model_neuron_vector(&m, k, l, n, b);
                    for (int i = 0; i < 64; i++) {
                        double err = fabs(a[i] - b[i]) / (fabs(a[i]) + (n == 9 && l == 1 ? 1 : 0.02));
                        if (err > worst) worst = err;
                    }
                }
        CHECK(worst <= forms[f].tol, "%s: MLP neurons differ from HF by %g (tol %g)", forms[f].name, worst, forms[f].tol);
        for (MatrixKind k = MATRIX_UP; k <= MATRIX_GATE; k++)
            check_planted(&m, k, 1, 9, mom, forms[f].tol ? forms[f].tol : 1e-6, forms[f].name);
        model_close(&m);
    }
    model_close(&ref);
}

static void test_bf16_tied_up_only(void) {
    CHECK(synth("bf16", "--dtype bf16 --tied --layers 1 --plant-matrix up --plant 0:50=' Lily'") == 0, "synth bf16");
    int lily = reported_token("0:50");
    Model m;
    if (!open_out(&m, "bf16")) return;
    CHECK(m.cfg.tied_embeddings && m.output == m.tok_embd && m.cfg.n_layers == 1, "bf16: tied, one layer");
    CHECK(m.layers[0].up->type == DT_BF16 && m.output_norm->type == DT_BF16, "bf16: every tensor BF16");
    check_planted(&m, MATRIX_UP, 0, 50, lily, 1.0 / 128, "bf16 tied");
    float w[64];
    model_neuron_vector(&m, MATRIX_GATE, 0, 50, w);
    double ss = 0;
    for (int i = 0; i < 64; i++) ss += (double)w[i] * w[i];
    CHECK(sqrt(ss / 64) < 0.05, "gate 0:50 was planted although --plant-matrix up (RMS %g)", sqrt(ss / 64));
    model_close(&m);
}

/* The real Llama 3.1 tokenizer: copied into HF, carried into GGUF metadata. */
static void test_llama31_tokenizer(void) {
    char args[4096];
    const char *dir = shared_path("tokenizers/llama-3.1");
    snprintf(args, sizeof args, "--tokenizer %s --tied --layers 1 --hidden 32 --heads 2 --kv-heads 1 --ffn 64 "
                                "--dtype bf16 --plant 0:1=' dog'", dir);
    CHECK(synth("l31", args) == 0, "synth with llama-3.1 tokenizer (hf)");
    int dog_hf = reported_token("0:1");
    CHECK(synth("l31.gguf", args) == 0, "synth with llama-3.1 tokenizer (gguf)");
    int dog_gguf = reported_token("0:1");
    Model h, g;
    if (!open_out(&h, "l31")) return;
    if (!open_out(&g, "l31.gguf")) {
        model_close(&h);
        return;
    }
    CHECK(h.cfg.vocab_size == 128256 && g.cfg.vocab_size == 128256, "vocab %d / %d", h.cfg.vocab_size, g.cfg.vocab_size);
    CHECK(dog_hf == 5679 && dog_gguf == 5679, "' dog' is 5679 in Llama 3, synth said %d / %d", dog_hf, dog_gguf);
    CHECK(g.vocab.n_tokens == 128256 && g.vocab.n_merges == 280147 && g.vocab.bos_id == 128000,
          "gguf vocab: %d tokens, %d merges, bos %d", g.vocab.n_tokens, g.vocab.n_merges, g.vocab.bos_id);
    CHECK(g.vocab.eos_id == h.vocab.eos_id, "eos %d vs %d", g.vocab.eos_id, h.vocab.eos_id);
    int diff = -1;
    for (int i = 0; i < 128256 && diff < 0; i++)
        if (strcmp(h.vocab.piece[i], g.vocab.piece[i]) != 0 || h.vocab.type[i] != g.vocab.type[i]) diff = i;
    CHECK(diff < 0, "token %d differs between HF and GGUF", diff);
    int mdiff = -1;
    for (int i = 0; i < 280147 && mdiff < 0 && i < h.vocab.n_merges; i++)
        if (strcmp(h.vocab.merges[i], g.vocab.merges[i]) != 0) mdiff = i;
    CHECK(mdiff < 0 && h.vocab.n_merges == 280147, "merge %d differs", mdiff);
    /* The encoders of both agree on a sentence. */
    Tokenizer *th, *tg;
    Error e = { 0 };
    if (tokenizer_new(&h.vocab, &th, &e) == 0 && tokenizer_new(&g.vocab, &tg, &e) == 0) {
        const char *s = "The quick brown dog jumped over California's 123 lazy cats.";
        int *a = NULL, *b = NULL, na = 0, nb = 0;
        tokenizer_encode(th, s, strlen(s), TOK_ADD_BOS, &a, &na, &e);
        tokenizer_encode(tg, s, strlen(s), TOK_ADD_BOS, &b, &nb, &e);
        CHECK(na > 5 && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0 && a[0] == 128000,
              "HF and GGUF tokenizers disagree (%d vs %d ids)", na, nb);
        free(a);
        free(b);
        tokenizer_free(th);
        tokenizer_free(tg);
    } else {
        CHECK(0, "tokenizer_new: %s", e.msg);
    }
    check_planted(&h, MATRIX_UP, 0, 1, 5679, 1.0 / 128, "llama-3.1 hf");
    check_planted(&g, MATRIX_GATE, 0, 1, 5679, 1.0 / 128, "llama-3.1 gguf");
    model_close(&h);
    model_close(&g);
}

/* A shape big enough to stream in several chunks (2048 rows of 512 each):
 * planted rows on both sides of a chunk boundary, the last token, GGUF Q8_0. */
static void test_mid_size(void) {
    const char *shape = "--hidden 512 --heads 8 --kv-heads 2 --ffn 3072 --layers 1 --vocab 4096 --seed 3 "
                        "--plant 0:2047=4095 --plant 0:2048=' the' --plant 0:3071=2048";
    char args[1024];
    snprintf(args, sizeof args, "%s --dtype bf16", shape);
    CHECK(synth("mid", args) == 0, "synth mid (hf bf16)");
    int the = reported_token("0:2048");
    snprintf(args, sizeof args, "%s --dtype q8_0", shape);
    CHECK(synth("mid.gguf", args) == 0, "synth mid (gguf q8_0)");
    Model h, g;
    if (!open_out(&h, "mid")) return;
    if (open_out(&g, "mid.gguf")) {
        CHECK(g.cfg.dim == 512 && g.cfg.ffn_dim == 3072 && g.cfg.vocab_size == 4096 && g.cfg.n_kv_heads == 2,
              "mid gguf config");
        check_planted(&g, MATRIX_UP, 0, 2047, 4095, 0.03, "mid q8_0");
        check_planted(&g, MATRIX_GATE, 0, 2048, the, 0.03, "mid q8_0");
        check_planted(&g, MATRIX_UP, 0, 3071, 2048, 0.03, "mid q8_0");
        model_close(&g);
    }
    check_planted(&h, MATRIX_UP, 0, 2047, 4095, 1.0 / 128, "mid bf16");
    check_planted(&h, MATRIX_GATE, 0, 2048, the, 1.0 / 128, "mid bf16");
    check_planted(&h, MATRIX_UP, 0, 3071, 2048, 1.0 / 128, "mid bf16");
    model_close(&h);
}

/* quantize_q8_0 against llama-quantize: the fixture's F32 and Q8_0 files. */
static void test_q8_0_matches_llama_quantize(void) {
    Model f, q;
    Error e = { 0 };
    if (model_open(&f, shared_path("models/quant/synth256-f32.gguf"), NULL, &e) ||
        model_open(&q, shared_path("models/quant/synth256-q8_0.gguf"), NULL, &e)) {
        CHECK(0, "open quant fixtures: %s", e.msg);
        return;
    }
    const char *names[] = { "blk.0.ffn_up.weight", "blk.1.attn_k.weight", "blk.0.ffn_down.weight", "token_embd.weight" };
    for (int i = 0; i < 4; i++) {
        const Tensor *a = model_find_tensor(&f, names[i]), *b = model_find_tensor(&q, names[i]);
        if (!a || !b || a->type != DT_F32 || b->type != DT_Q8_0) {
            CHECK(0, "%s: missing or unexpected types", names[i]);
            continue;
        }
        int64_t n = (int64_t)(a->nbytes / 4);
        void *out = malloc(dtype_bytes(DT_Q8_0, n));
        quantize_q8_0(a->data, out, n);
        CHECK(dtype_bytes(DT_Q8_0, n) == b->nbytes && memcmp(out, b->data, b->nbytes) == 0,
              "%s: quantize_q8_0 differs from llama-quantize", names[i]);
        free(out);
    }
    model_close(&f);
    model_close(&q);
}

int main(int argc, char **argv) {
    (void)argc;
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(neuromap, sizeof neuromap, "%s/../neuromap", dirname(self));
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_synth.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_q8_0_matches_llama_quantize();
    test_hf_f32_planted();
    test_bf16_tied_up_only();
    test_gguf_same_model();
    test_llama31_tokenizer();
    test_mid_size();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_synth");
}
