/* format_llama2c.c — karpathy's llama2.c checkpoints (legacy v0 header) and
 * their tokenizer .bin.
 *
 * Checkpoint: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len), then float32 arrays, each stacked over layers:
 * token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down),
 * w3 (up), rms_final, freq_cis_real, freq_cis_imag, and the classifier when
 * vocab_size is negative (otherwise the embedding is the head). q/k keep
 * Meta's interleaved RoPE pairs.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/loaders.h"

/* Walks the float32 arrays of the file in order. */
typedef struct {
    Model *m;
    const float *p, *end;
    int failed;
} Cursor;

/* Registers `layers` stacked tensors of shape {rows, cols} (rows 0: a vector). */
static void take(Cursor *c, const char *pattern, int layers, int64_t rows, int64_t cols) {
    int64_t n = (rows ? rows : 1) * cols;
    for (int l = 0; l < layers; l++) {
        if (c->end - c->p < n) { c->failed = 1; return; }
        char name[128];
        snprintf(name, sizeof name, pattern, l);
        int64_t shape[2] = { rows ? rows : cols, cols };
        model_add_tensor(c->m, name, DT_F32, rows ? 2 : 1, shape, c->p, (size_t)n * sizeof(float));
        c->p += n;
    }
}

static int load_tokenizer(Model *m, const char *path, Error *e) {
    MappedFile f;
    int rc = map_file(&f, path, e);
    if (rc) return rc;
    /* The other tokenizer files people have at hand: name the kind wanted. */
    const char *data = (const char *)f.data, *kind = NULL;
    size_t lead = 0;
    while (lead < f.size && (data[lead] == ' ' || data[lead] == '\n' || data[lead] == '\r' || data[lead] == '\t')) lead++;
    if (lead < f.size && data[lead] == '{') kind = "a JSON file (a Hugging Face tokenizer.json?)";
    else if (f.size >= 4 && memcmp(data, "GGUF", 4) == 0) kind = "a GGUF file";
    if (kind) {
        unmap_file(&f);
        return error_set(e, NM_EINPUT, "%s is %s; a llama2.c checkpoint needs a llama2.c tokenizer .bin (like tok512.bin)", path, kind);
    }
    Vocab *v = &m->vocab;
    int n = m->cfg.vocab_size;
    v->kind = TOKENIZER_SPM;
    v->n_tokens = n;
    v->piece = xcalloc((size_t)n, sizeof *v->piece);
    v->piece_len = xcalloc((size_t)n, sizeof *v->piece_len);
    v->score = xcalloc((size_t)n, sizeof *v->score);
    v->type = xcalloc((size_t)n, sizeof *v->type);
    size_t off = 4;
    for (int i = 0; i < n; i++) {
        int32_t len;
        if (f.size < off + 8) {
            rc = error_set(e, NM_EINPUT, "%s: truncated at token %d of %d", path, i, n);
            break;
        }
        memcpy(&v->score[i], f.data + off, 4);
        memcpy(&len, f.data + off + 4, 4);
        off += 8;
        if (len < 0 || (size_t)len > f.size - off) {
            rc = error_set(e, NM_EINPUT, "%s: token %d has length %d beyond the end of the file", path, i, len);
            break;
        }
        /* llama2.c writes sentencepiece's "▁" as a space; store it as sentencepiece does. */
        char *piece = xmalloc((size_t)len * 3 + 1);
        int o = 0;
        for (int k = 0; k < len; k++) {
            char ch = (char)f.data[off + (size_t)k];
            if (ch == ' ') { memcpy(piece + o, "\xE2\x96\x81", 3); o += 3; }
            else piece[o++] = ch;
        }
        piece[o] = 0;
        off += (size_t)len;
        v->type[i] = TOKEN_NORMAL;
        if (o == 6 && memcmp(piece, "<0x", 3) == 0 && piece[5] == '>') v->type[i] = TOKEN_BYTE;
        v->piece[i] = piece;
        v->piece_len[i] = o;
    }
    unmap_file(&f);
    for (int i = 0; i < n && !rc; i++)
        if (!v->piece[i]) v->piece[i] = xstrdup("");
    if (rc) return rc;
    /* Ids 0-2 are <unk>, BOS and EOS; the file spells the last two "\n<s>\n". */
    static const char *fixed[3] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < 3 && i < n; i++) {
        free(v->piece[i]);
        v->piece[i] = xstrdup(fixed[i]);
        v->piece_len[i] = (int)strlen(fixed[i]);
        v->type[i] = i == 0 ? TOKEN_UNKNOWN : TOKEN_CONTROL;
    }
    v->unk_id = 0;
    v->bos_id = 1;
    v->eos_id = 2;
    v->add_bos = 1;
    v->add_space_prefix = 1;
    v->byte_fallback = 1;
    return NM_OK;
}

static int load_llama2c(Model *m, const char *path, const ModelOpenOptions *o, Error *e) {
    const char *tokenizer_path = o ? o->tokenizer_path : NULL;
    const MappedFile *f;
    int rc = model_add_file(m, path, &f, e);
    if (rc) return rc;
    if (f->size < 28) return error_set(e, NM_EINPUT, "%s: not a GGUF file and too short for a llama2.c checkpoint", path);
    int32_t h[7];
    memcpy(h, f->data, sizeof h);
    m->identity = fnv1a64(m->identity, h, sizeof h);
    Config *c = &m->cfg;
    strcpy(c->arch, "llama");
    c->dim = h[0];
    c->ffn_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->vocab_size = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5]; /* -INT32_MIN overflows; 0 is refused below */
    c->max_seq_len = h[6];
    c->tied_embeddings = h[5] > 0;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_interleaved = 1;
    if (c->dim <= 0 || c->n_heads <= 0 || c->dim % c->n_heads || c->n_layers <= 0 || c->n_layers > 1024 ||
        c->ffn_dim <= 0 || c->n_kv_heads <= 0 || c->max_seq_len <= 0 || h[5] == INT32_MIN || c->vocab_size == 0 ||
        c->dim > (1 << 17) || c->ffn_dim > (1 << 20) || c->max_seq_len > (1 << 24) || c->vocab_size > (1 << 22))
        return error_set(e, NM_EINPUT, "%s: not a llama2.c checkpoint (header %d %d %d %d %d %d %d makes no sense)", path,
                         h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    c->head_dim = c->dim / c->n_heads;
    int64_t dim = c->dim, kv = (int64_t)c->n_kv_heads * c->head_dim, ffn = c->ffn_dim, L = c->n_layers;
    if (c->n_kv_heads > c->n_heads)
        return error_set(e, NM_EINPUT, "%s: %d KV heads exceed %d heads", path, c->n_kv_heads, c->n_heads);

    Cursor cur = { m, (const float *)(f->data + 28), (const float *)(f->data + 28) + (f->size - 28) / 4, 0 };
    take(&cur, "token_embd.weight", 1, c->vocab_size, dim);
    take(&cur, gguf_layer_names[0], (int)L, 0, dim);
    take(&cur, gguf_layer_names[1], (int)L, dim, dim);
    take(&cur, gguf_layer_names[2], (int)L, kv, dim);
    take(&cur, gguf_layer_names[3], (int)L, kv, dim);
    take(&cur, gguf_layer_names[4], (int)L, dim, dim);
    take(&cur, gguf_layer_names[5], (int)L, 0, dim);
    take(&cur, gguf_layer_names[6], (int)L, ffn, dim);
    take(&cur, gguf_layer_names[8], (int)L, dim, ffn);
    take(&cur, gguf_layer_names[7], (int)L, ffn, dim);
    take(&cur, "output_norm.weight", 1, 0, dim);
    int64_t rope = (int64_t)c->max_seq_len * c->head_dim / 2; /* freq_cis tables: skipped, RoPE is recomputed */
    if (!cur.failed && cur.end - cur.p >= 2 * rope) cur.p += 2 * rope;
    else cur.failed = 1;
    if (!c->tied_embeddings) take(&cur, "output.weight", 1, c->vocab_size, dim);
    if (cur.failed)
        return error_set(e, NM_EINPUT, "%s: truncated: %zu bytes is too short for the shapes in its header", path, f->size);
    m->has_weights = 1;
    rc = model_bind(m, gguf_layer_names, "token_embd.weight", "output_norm.weight", c->tied_embeddings ? NULL : "output.weight", e);
    if (rc) return rc;

    if (!tokenizer_path)
        return error_set(e, NM_EINPUT, "%s: a llama2.c checkpoint needs its tokenizer: add --tokenizer FILE (e.g. tok512.bin)", path);
    return load_tokenizer(m, tokenizer_path, e);
}

/* The checkpoint header is seven bare integers, no magic: llama2.c takes any
 * file the other formats did not claim, so it comes last in the registry. */
static int probe_llama2c(const char *path, int is_dir, const unsigned char *head, size_t n) { return !is_dir; }

const FormatLoader loader_llama2c = { FORMAT_LLAMA2C, probe_llama2c, load_llama2c };
