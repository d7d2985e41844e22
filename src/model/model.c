/* model.c — the Model the loaders fill: tensors, binding layer roles, and
 * checking that every shape agrees with the config before anything else
 * touches it. Which loader runs is formats/registry.c's business. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

const char *format_name(ModelFormat f) {
    static const char *names[] = { [FORMAT_HF] = "hf", [FORMAT_GGUF] = "gguf", [FORMAT_LLAMA2C] = "llama2c" };
    return names[f];
}

/* ----------------------------------------------------------------------------
 * Tensors */

Tensor *model_add_tensor(Model *m, const char *name, DType type, int n_dims, const int64_t *shape,
                         const void *data, size_t nbytes) {
    if (m->n_tensors % 64 == 0) m->tensors = xrealloc(m->tensors, (size_t)(m->n_tensors + 64) * sizeof *m->tensors);
    Tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims && i < 4; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    return t;
}

Tensor *model_find_tensor(const Model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

void tensor_rows_f32(const Tensor *t, int64_t row0, int64_t n, float *out) {
    int64_t cols = tensor_cols(t);
    size_t row_bytes = dtype_bytes(t->type, cols);
    const DTypeTraits *tr = dtype_info(t->type);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row0 * row_bytes;
    tr->to_float(src, out, cols * n);
}

int model_add_file(Model *m, const char *path, const MappedFile **out, Error *e) {
    if (m->n_files >= MODEL_MAX_FILES) return error_set(e, NM_EINPUT, "%s: more than %d files", path, MODEL_MAX_FILES);
    MappedFile *f = &m->files[m->n_files];
    int rc = map_file(f, path, e);
    if (rc) return rc;
    m->n_files++;
    m->file_bytes += f->size;
    if (out) *out = f;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Checking the config and binding roles */

static int check_config(const Model *m, Error *e) {
    const Config *c = &m->cfg;
    const char *p = m->path;
    if (strcmp(c->arch, "llama") != 0)
        return error_set(e, NM_EINPUT, "%s: architecture '%s' is not supported (neuromap reads the Llama family)", p, c->arch);
#define RANGE(field, lo, hi)                                                                                  \
    if (c->field < (lo) || c->field > (hi))                                                                   \
        return error_set(e, NM_EINPUT, "%s: %s = %lld is outside %lld..%lld", p, #field, (long long)c->field, \
                         (long long)(lo), (long long)(hi));
    RANGE(n_layers, 1, 1024)
    RANGE(dim, 1, 1 << 17)
    RANGE(ffn_dim, 1, 1 << 20)
    RANGE(n_heads, 1, 1 << 12)
    RANGE(n_kv_heads, 1, c->n_heads)
    RANGE(head_dim, 1, 1 << 12)
    RANGE(vocab_size, 1, 1 << 22)
    RANGE(max_seq_len, 1, 1 << 24)
#undef RANGE
    if (c->n_heads % c->n_kv_heads)
        return error_set(e, NM_EINPUT, "%s: %d attention heads are not a multiple of %d KV heads", p, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return error_set(e, NM_EINPUT, "%s: head_dim %d is odd (RoPE needs pairs)", p, c->head_dim);
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) return error_set(e, NM_EINPUT, "%s: rms_norm_eps %g is out of range", p, c->norm_eps);
    if (!(c->rope_theta > 0 && c->rope_theta < 1e12)) return error_set(e, NM_EINPUT, "%s: rope_theta %g is out of range", p, c->rope_theta);
    return NM_OK;
}

static int check_shape(const Model *m, const Tensor *t, int64_t rows, int64_t cols, Error *e) {
    int ok = rows == 0 ? t->n_dims == 1 && t->shape[0] == cols
                       : t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols;
    if (!ok) {
        char got[96] = "";
        for (int i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? " x " : "", (long long)t->shape[i]);
        if (rows)
            return error_set(e, NM_EINPUT, "%s: tensor %s has shape [%s], the config implies [%lld x %lld]", m->path,
                             t->name, got, (long long)rows, (long long)cols);
        return error_set(e, NM_EINPUT, "%s: tensor %s has shape [%s], the config implies [%lld]", m->path, t->name, got,
                         (long long)cols);
    }
    if (tensor_cols(t) % dtype_info(t->type)->block_size)
        return error_set(e, NM_EINPUT, "%s: tensor %s: rows of %lld values do not fill %s blocks of %d", m->path, t->name,
                         (long long)tensor_cols(t), dtype_name(t->type), dtype_info(t->type)->block_size);
    if (!dtype_info(t->type)->to_float)
        return error_set(e, NM_EINPUT, "%s: tensor %s has type %s, which neuromap cannot read yet", m->path, t->name,
                         dtype_name(t->type));
    return NM_OK;
}

static int require(const Model *m, const char *name, Tensor **out, Error *e) {
    *out = model_find_tensor(m, name);
    if (!*out) return error_set(e, NM_EINPUT, "%s: required tensor %s is missing", m->path, name);
    return NM_OK;
}

int model_bind(Model *m, const char *const names[9], const char *embd, const char *norm, const char *output, Error *e) {
    const Config *c = &m->cfg;
    int rc = check_config(m, e);
    if (rc) return rc;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    if ((rc = require(m, embd, &m->tok_embd, e)) || (rc = require(m, norm, &m->output_norm, e))) return rc;
    m->output = output ? model_find_tensor(m, output) : NULL;
    if (!m->output) m->output = m->tok_embd;
    m->cfg.tied_embeddings = m->output == m->tok_embd;
    if ((rc = check_shape(m, m->tok_embd, c->vocab_size, c->dim, e)) || (rc = check_shape(m, m->output_norm, 0, c->dim, e)) ||
        (rc = check_shape(m, m->output, c->vocab_size, c->dim, e)))
        return rc;
    /* Expected {rows, cols} per role, in LayerWeights order; rows 0 = a vector. */
    const int64_t shapes[9][2] = { { 0, c->dim }, { q, c->dim }, { kv, c->dim }, { kv, c->dim }, { c->dim, q },
                                   { 0, c->dim }, { c->ffn_dim, c->dim }, { c->ffn_dim, c->dim }, { c->dim, c->ffn_dim } };
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int l = 0; l < c->n_layers; l++) {
        Tensor **roles[9] = { &m->layers[l].attn_norm, &m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                              &m->layers[l].ffn_norm, &m->layers[l].gate, &m->layers[l].up, &m->layers[l].down };
        for (int r = 0; r < 9; r++) {
            char name[256];
            snprintf(name, sizeof name, names[r], l);
            if ((rc = require(m, name, roles[r], e)) || (rc = check_shape(m, *roles[r], shapes[r][0], shapes[r][1], e))) return rc;
        }
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Opening: model_open (formats/registry.c) calls model_init, the loader,
 * then model_finish */

/* BOS/EOS/unknown/padding ids come from the file; every later lookup
 * (encoding, embedding rows) trusts them, so each must name a token. */
static int check_special_ids(const Model *m, Error *e) {
    const Vocab *v = &m->vocab;
    int n = m->has_weights && m->cfg.vocab_size > v->n_tokens ? m->cfg.vocab_size : v->n_tokens;
    const struct { const char *name; int id; } ids[] = {
        { "BOS", v->bos_id }, { "EOS", v->eos_id }, { "unknown", v->unk_id }, { "padding", v->pad_id },
    };
    for (int i = 0; i < 4; i++)
        if (ids[i].id < -1 || ids[i].id >= n)
            return error_set(e, NM_EINPUT, "%s: the %s token id %d is outside the vocabulary of %d tokens", m->path,
                             ids[i].name, ids[i].id, n);
    return NM_OK;
}

void model_init(Model *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->path = xstrdup(path);
    m->identity = FNV1A64_INIT;
    m->vocab.bos_id = m->vocab.eos_id = m->vocab.unk_id = m->vocab.pad_id = -1;
}

int model_finish(Model *m, int need_weights, Error *e) {
    const char *path = m->path;
    int rc = NM_OK;
    if (need_weights && !m->has_weights)
        rc = error_set(e, NM_EINPUT, "%s: has no weights (vocabulary only); this command needs a model", path);
    if (!rc && m->vocab.n_tokens > 0 && m->cfg.vocab_size > 0 && m->vocab.n_tokens > m->cfg.vocab_size && m->has_weights)
        rc = error_set(e, NM_EINPUT, "%s: tokenizer has %d tokens but the model only %d", path, m->vocab.n_tokens,
                       m->cfg.vocab_size);
    if (!rc) rc = check_special_ids(m, e);
    if (rc) {
        model_close(m);
        return rc;
    }
    if (m->has_weights) vocab_resize(&m->vocab, m->cfg.vocab_size);
    if (!m->vocab.text) vocab_derive_text(&m->vocab);
    vocab_build_index(&m->vocab);
    return NM_OK;
}

void model_close(Model *m) {
    for (int i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    for (int i = 0; i < m->n_files; i++) unmap_file(&m->files[i]);
    free(m->tensors);
    free(m->layers);
    free(m->path);
    vocab_free(&m->vocab);
    memset(m, 0, sizeof *m);
}

/* ----------------------------------------------------------------------------
 * Neurons */

/* GGUF's layer tensor names, in LayerWeights order (llama2.c tensors take them too). */
const char *const gguf_layer_names[9] = {
    "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight", "blk.%d.attn_v.weight",
    "blk.%d.attn_output.weight", "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight",
    "blk.%d.ffn_down.weight",
};

static const char *const matrix_names[] = { [MATRIX_UP] = "up", [MATRIX_GATE] = "gate", [MATRIX_DOWN] = "down" };

DEFINE_ENUM_NAMES(matrix, MatrixKind, matrix_names, MATRIX_DOWN + 1)

void model_neuron_vectors(const Model *m, MatrixKind k, int layer, int n0, int count, float *out) {
    const LayerWeights *lw = &m->layers[layer];
    if (k != MATRIX_DOWN) {
        tensor_rows_f32(k == MATRIX_UP ? lw->up : lw->gate, n0, count, out);
        return;
    }
    /* down is (dim, ffn): neuron n is column n, so gather it row by row. */
    int dim = m->cfg.dim, ffn = m->cfg.ffn_dim;
    float *row = xmalloc((size_t)ffn * sizeof *row);
    for (int r = 0; r < dim; r++) {
        tensor_rows_f32(lw->down, r, 1, row);
        for (int j = 0; j < count; j++) out[(size_t)j * dim + r] = row[n0 + j];
    }
    free(row);
}

void model_neuron_vector(const Model *m, MatrixKind k, int layer, int n, float *out) {
    model_neuron_vectors(m, k, layer, n, 1, out);
}
