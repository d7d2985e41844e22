/* test_hf.c — the Hugging Face loader against the other forms of the same
 * model: every tensor of stories260K-hf equals stories260K.bin's (q/k after
 * undoing HF's rotate-half permutation), every BF16 tensor of the sharded
 * copy is the BF16 rounding of the F32 value, the vocabulary equals
 * tok512.bin's, the Llama 3 tokenizer directories load with the right
 * counts and specials, and a hub-cache-style directory of symlinks loads. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "formats/registry.h"
#include "model/model.h"

static int open_or_report(Model *m, const char *path, const char *tokenizer) {
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer };
    int rc = model_open(m, path, &o, &e);
    CHECK(rc == 0, "open %s: %s", path, e.msg);
    return rc == 0;
}

/* The tensors of a model in one fixed order: embedding, final norm, then
 * the nine roles of each layer; is_qk (if given) marks q and k. Returns how
 * many were filled. */
static int model_roles(const Model *m, const Tensor **out, int *is_qk) {
    int n = 0;
    out[n++] = m->tok_embd;
    out[n++] = m->output_norm;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        const Tensor *roles[9] = { w->attn_norm, w->wq, w->wk, w->wv, w->wo, w->ffn_norm, w->gate, w->up, w->down };
        for (int r = 0; r < 9; r++) {
            if (is_qk) is_qk[n] = r == 1 || r == 2;
            out[n++] = roles[r];
        }
    }
    if (is_qk) is_qk[0] = is_qk[1] = 0;
    return n;
}

static float *tensor_floats(const Tensor *t) {
    int64_t rows = tensor_rows(t), cols = tensor_cols(t);
    float *f = malloc((size_t)(rows * cols) * sizeof *f);
    tensor_rows_f32(t, 0, rows, f);
    return f;
}

/* HF row of Meta (interleaved) q/k row r: within each head, row 2i moved to
 * i and row 2i+1 to i + head_dim/2, so RoPE can rotate halves. */
static int64_t hf_row(int64_t r, int head_dim) {
    int64_t head = r / head_dim, j = r % head_dim;
    return head * head_dim + (j % 2 ? head_dim / 2 : 0) + j / 2;
}

/* ----------------------------------------------------------------------------
 * Tensors */

static void test_f32_equals_llama2c(const Model *hf, const Model *l2c) {
    const Tensor *a[64], *b[64];
    int is_qk[64], n = model_roles(hf, a, is_qk);
    CHECK(n == model_roles(l2c, b, NULL) && n == 47, "47 tensors in both, got %d", n);
    CHECK(hf->n_tensors == 47, "stories260K-hf holds 47 tensors, got %d", hf->n_tensors);
    int mismatched = 0;
    for (int i = 0; i < n; i++) {
        CHECK(a[i]->type == DT_F32 && a[i]->n_dims == b[i]->n_dims && a[i]->shape[0] == b[i]->shape[0] &&
                  tensor_cols(a[i]) == tensor_cols(b[i]),
              "%s and %s differ in type or shape", a[i]->name, b[i]->name);
        float *x = tensor_floats(a[i]), *y = tensor_floats(b[i]);
        int64_t rows = tensor_rows(a[i]), cols = tensor_cols(a[i]);
        for (int64_t r = 0; r < rows; r++) {
            int64_t hr = is_qk[i] ? hf_row(r, hf->cfg.head_dim) : r;
            if (memcmp(x + hr * cols, y + r * cols, (size_t)cols * sizeof *x) != 0) {
                mismatched++;
                CHECK(0, "%s row %lld differs from %s row %lld", a[i]->name, (long long)hr, b[i]->name, (long long)r);
                break;
            }
        }
        free(x);
        free(y);
    }
    CHECK(mismatched == 0, "%d tensors differ", mismatched);
    /* The permutation matters: without undoing it, q differs. */
    float *q = tensor_floats(hf->layers[0].wq), *q2 = tensor_floats(l2c->layers[0].wq);
    CHECK(memcmp(q + 1 * 64, q2 + 1 * 64, 64 * sizeof *q) != 0, "HF q row 1 should not equal Meta row 1");
    free(q);
    free(q2);
}

static void test_bf16_is_rounded_f32(const Model *bf, const Model *f32) {
    const Tensor *a[64], *b[64];
    int n = model_roles(bf, a, NULL);
    CHECK(n == model_roles(f32, b, NULL), "same tensor count");
    long values = 0, wrong = 0;
    for (int i = 0; i < n; i++) {
        CHECK(a[i]->type == DT_BF16, "%s is BF16", a[i]->name);
        CHECK(strcmp(a[i]->name, b[i]->name) == 0, "%s vs %s", a[i]->name, b[i]->name);
        float *y = tensor_floats(b[i]);
        const uint16_t *h = a[i]->data;
        int64_t count = tensor_rows(b[i]) * tensor_cols(b[i]);
        CHECK(a[i]->nbytes == (size_t)count * 2, "%s holds %lld BF16 values", a[i]->name, (long long)count);
        for (int64_t k = 0; k < count; k++, values++) wrong += h[k] != f32_to_bf16(y[k]);
        free(y);
    }
    CHECK(values == 260032 && wrong == 0, "%ld of %ld BF16 values are not the rounded F32 value", wrong, values);
    CHECK(bf->n_files == 2, "two shards mapped once each, got %d files", bf->n_files);
}

static void test_config(const Model *hf, const Model *l2c) {
    const Config *a = &hf->cfg, *b = &l2c->cfg;
    CHECK(a->n_layers == b->n_layers && a->dim == b->dim && a->ffn_dim == b->ffn_dim && a->n_heads == b->n_heads &&
              a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim && a->vocab_size == b->vocab_size,
          "shapes agree with the llama2.c header");
    CHECK(a->max_seq_len == 512 && a->norm_eps == 1e-5f && a->rope_theta == 10000.0f, "context, eps, theta");
    CHECK(a->tied_embeddings && hf->output == hf->tok_embd, "tied head");
    CHECK(a->rope_interleaved == 0 && b->rope_interleaved == 1, "HF is rotate-half, llama2.c interleaved");
    CHECK(!a->rope_scaling.present, "no rope scaling");
    CHECK(hf->has_weights && hf->format == FORMAT_HF, "HF with weights");
}

/* ----------------------------------------------------------------------------
 * Vocabularies */

static void test_vocab_equals_tok512(const Model *hf, const Model *l2c) {
    const Vocab *a = &hf->vocab, *b = &l2c->vocab;
    CHECK(a->n_tokens == 512 && b->n_tokens == 512, "512 tokens, got %d", a->n_tokens);
    int differ = 0;
    for (int i = 0; i < a->n_tokens && i < b->n_tokens; i++) {
        int same = a->piece_len[i] == b->piece_len[i] && memcmp(a->piece[i], b->piece[i], (size_t)a->piece_len[i]) == 0 &&
                   a->text_len[i] == b->text_len[i] && memcmp(a->text[i], b->text[i], (size_t)a->text_len[i]) == 0 &&
                   a->type[i] == b->type[i];
        if (!same && differ++ < 5) CHECK(0, "token %d: '%s' (type %d) vs '%s' (type %d)", i, a->piece[i], a->type[i], b->piece[i], b->type[i]);
    }
    CHECK(differ == 0, "%d tokens differ from tok512.bin", differ);
    CHECK(a->kind == TOKENIZER_SPM && a->byte_fallback && a->add_space_prefix && a->add_bos, "sentencepiece BPE, byte fallback, ▁ prefix, BOS");
    CHECK(a->bos_id == 1 && a->eos_id == 2 && a->unk_id == 0, "bos/eos/unk = %d/%d/%d", a->bos_id, a->eos_id, a->unk_id);
    CHECK(a->n_merges == 165 && strcmp(a->merges[0], "\xE2\x96\x81 t") == 0, "165 merges, first '▁ t'");
    CHECK(a->score == NULL && a->pre_regex == NULL, "no scores, no split regex");
    CHECK(vocab_find_piece(a, "<0x0A>", 6) == 13 && a->text[13][0] == '\n', "<0x0A> is id 13, a newline");
}

static void test_llama3_tokenizer(const char *dir, int is_31) {
    Model m;
    clock_t t = clock(); /* CPU time: wall time on a shared machine says little */
    if (!open_or_report(&m, shared_path(dir), NULL)) return;
    fprintf(stderr, "%s: loaded in %.3f s of CPU time\n", dir, (double)(clock() - t) / CLOCKS_PER_SEC);
    const Vocab *v = &m.vocab;
    CHECK(!m.has_weights && m.n_tensors == 0, "%s: vocabulary only", dir);
    CHECK(v->n_tokens == 128256 && v->n_merges == 280147, "%s: %d tokens, %d merges", dir, v->n_tokens, v->n_merges);
    CHECK(v->kind == TOKENIZER_BPE && v->ignore_merges && v->add_bos && !v->add_space_prefix, "%s: byte-level, ignore_merges, BOS", dir);
    CHECK(vocab_find_piece(v, "<|begin_of_text|>", 17) == 128000 && v->bos_id == 128000, "%s: BOS 128000", dir);
    CHECK(vocab_find_piece(v, "<|eot_id|>", 10) == 128009 && v->eos_id == 128009, "%s: EOS <|eot_id|> 128009", dir);
    CHECK(v->type[128000] == TOKEN_CONTROL && v->type[128009] == TOKEN_CONTROL && v->type[100] == TOKEN_NORMAL, "%s: types", dir);
    CHECK(v->chat_template && strstr(v->chat_template, "<|start_header_id|>"), "%s: chat template", dir);
    CHECK(v->pre_regex && strstr(v->pre_regex, "\\p{N}{1,3}"), "%s: Llama 3 split regex", dir);
    CHECK(strcmp(v->merges[0], "\xC4\xA0 \xC4\xA0") == 0, "%s: first merge 'Ġ Ġ'", dir);
    int the = vocab_find_piece(v, "\xC4\xA0the", 5);
    CHECK(the >= 0 && strcmp(v->text[the], " the") == 0, "%s: 'Ġthe' stands for ' the'", dir);
    const char *pad = is_31 ? "<|finetune_right_pad_id|>" : "<|reserved_special_token_2|>";
    CHECK(vocab_find_piece(v, pad, (int)strlen(pad)) == 128004, "%s: %s is 128004", dir, pad);
    if (is_31) CHECK(strstr(v->chat_template, "Cutting Knowledge Date") != NULL, "%s: Llama 3.1 template", dir);
    model_close(&m);
}

/* ----------------------------------------------------------------------------
 * A hub-cache snapshot: snapshots/REV/FILE -> ../../blobs/FILE -> the fixture */

static const char *const sharded_files[] = {
    "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
};
#define N_SHARDED (int)(sizeof sharded_files / sizeof *sharded_files)

static void test_symlinked_snapshot(const Model *original) {
    char root[] = "/tmp/neuromap-hf-XXXXXX", src[PATH_MAX], path[PATH_MAX + 64], link[PATH_MAX + 64];
    if (!mkdtemp(root) || !realpath(shared_path("models/stories260K-hf-bf16-sharded"), src)) {
        CHECK(0, "temp dir / fixture path");
        return;
    }
    snprintf(path, sizeof path, "%s/blobs", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/snapshots", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/snapshots/0123abc", root);
    mkdir(path, 0700);
    for (int i = 0; i < N_SHARDED; i++) {
        snprintf(link, sizeof link, "%s/%s", src, sharded_files[i]);
        snprintf(path, sizeof path, "%s/blobs/%s", root, sharded_files[i]);
        CHECK(symlink(link, path) == 0, "symlink %s", path);
        snprintf(link, sizeof link, "../../blobs/%s", sharded_files[i]);
        snprintf(path, sizeof path, "%s/snapshots/0123abc/%s", root, sharded_files[i]);
        CHECK(symlink(link, path) == 0, "symlink %s", path);
    }
    Model m;
    snprintf(path, sizeof path, "%s/snapshots/0123abc", root);
    if (open_or_report(&m, path, NULL)) {
        CHECK(m.n_tensors == original->n_tensors && m.identity == original->identity, "same tensors and identity");
        int same = 1;
        for (int i = 0; i < m.n_tensors; i++) {
            const Tensor *o = model_find_tensor(original, m.tensors[i].name);
            same &= o && o->nbytes == m.tensors[i].nbytes && memcmp(o->data, m.tensors[i].data, o->nbytes) == 0;
        }
        CHECK(same, "every tensor equals the original's");
        CHECK(m.vocab.n_tokens == 512 && m.vocab.bos_id == 1, "vocabulary through the links");
        model_close(&m);
    }
    for (int i = 0; i < N_SHARDED; i++) {
        snprintf(path, sizeof path, "%s/snapshots/0123abc/%s", root, sharded_files[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/blobs/%s", root, sharded_files[i]);
        unlink(path);
    }
    const char *dirs[] = { "snapshots/0123abc", "snapshots", "blobs", "" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        rmdir(path);
    }
}

int main(void) {
    Model hf, bf, l2c;
    int ok = open_or_report(&hf, shared_path("models/stories260K-hf"), NULL);
    ok &= open_or_report(&bf, shared_path("models/stories260K-hf-bf16-sharded"), NULL);
    ok &= open_or_report(&l2c, shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"));
    if (!ok) return check_summary("test_hf");
    test_config(&hf, &l2c);
    test_f32_equals_llama2c(&hf, &l2c);
    test_bf16_is_rounded_f32(&bf, &hf);
    test_vocab_equals_tok512(&hf, &l2c);
    test_symlinked_snapshot(&bf);
    test_llama3_tokenizer("tokenizers/llama-3", 0);
    test_llama3_tokenizer("tokenizers/llama-3.1", 1);
    model_close(&hf);
    model_close(&bf);
    model_close(&l2c);
    return check_summary("test_hf");
}
