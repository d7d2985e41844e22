/* documents.c — show, find and info as JSON documents (documents.h). */
#include "report/documents.h"

#include "report/neuron_out.h"

#include <stdlib.h>

cJSON *show_json(const TokenNames *tn, MatrixKind k, int layer, int neuron, LensNorm norm, const LensResult *r, int n_top,
                 int n_bottom) {
    cJSON *o = neuron_json(tn, k, layer, neuron, r, n_top, n_bottom);
    cJSON_AddStringToObject(o, "norm", lens_norm_name(norm));
    if (!r->nonfinite && !cJSON_HasObjectItem(o, "lse_bound")) cJSON_AddNumberToObject(o, "lse_bound", 0);
    return o;
}

/* {"token_id","token"[,"token_bytes"]}. */
static cJSON *token_json(const TokenNames *tn, int id) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "token_id", id);
    cJSON_AddItemToObject(o, "token", token_string_json(tn, id));
    token_bytes_json(o, tn, id);
    return o;
}

cJSON *find_json(const TokenNames *tn, int token, const char *matrices, LensNorm norm, const char *source, int limit,
                 int64_t skipped_nonfinite, const LensHit *hits, int n, int agreement) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "token", token_json(tn, token));
    cJSON_AddStringToObject(o, "matrix", matrices);
    cJSON_AddStringToObject(o, "norm", lens_norm_name(norm));
    cJSON_AddStringToObject(o, "source", source);
    cJSON_AddNumberToObject(o, "limit", limit);
    cJSON_AddNumberToObject(o, "skipped_nonfinite", (double)skipped_nonfinite);
    cJSON *arr = cJSON_AddArrayToObject(o, "neurons");
    for (int i = 0; i < n; i++) {
        const LensHit *h = &hits[i];
        cJSON *x = neuron_ref_json(h->matrix, h->layer, h->neuron);
        cJSON_AddNumberToObject(x, "logit", h->logit);
        cJSON_AddNumberToObject(x, "rank", h->rank);
        cJSON_AddItemToObject(x, "top", token_json(tn, h->top_id));
        if (agreement) {
            cJSON *p = cJSON_AddObjectToObject(x, "partner");
            cJSON_AddStringToObject(p, "matrix", matrix_name(lens_partner(h->matrix)));
            cJSON_AddItemToObject(p, "top", token_json(tn, h->partner_top));
            cJSON_AddBoolToObject(p, "agree", h->partner_top == h->top_id);
        }
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

static const char *tokenizer_kind(const Vocab *v) {
    return v->kind == TOKENIZER_SPM ? "sentencepiece-bpe" : v->kind == TOKENIZER_BPE ? "byte-level-bpe" : "none";
}

cJSON *model_info_json(const Model *m) {
    const Config *c = &m->cfg;
    cJSON *o = cJSON_CreateObject(), *dt = cJSON_CreateObject(), *files = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "format", format_name(m->format));
    cJSON_AddStringToObject(o, "path", m->path);
    cJSON_AddStringToObject(o, "architecture", c->arch[0] ? c->arch : "llama");
    cJSON_AddBoolToObject(o, "has_weights", m->has_weights);
    if (m->has_weights) {
        cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
        cJSON_AddNumberToObject(o, "hidden_size", c->dim);
        cJSON_AddNumberToObject(o, "intermediate_size", c->ffn_dim);
        cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
        cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
        cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq_len);
        cJSON_AddNumberToObject(o, "rms_norm_eps", c->norm_eps);
        cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
        cJSON_AddStringToObject(o, "rope_pairing", c->rope_interleaved ? "interleaved" : "rotate-half");
        if (c->rope_scaling.present) {
            cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
            cJSON_AddStringToObject(rs, "rope_type", "llama3");
            cJSON_AddNumberToObject(rs, "factor", c->rope_scaling.factor);
            cJSON_AddNumberToObject(rs, "low_freq_factor", c->rope_scaling.low_freq_factor);
            cJSON_AddNumberToObject(rs, "high_freq_factor", c->rope_scaling.high_freq_factor);
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_scaling.original_max_position);
        } else {
            cJSON_AddNullToObject(o, "rope_scaling");
        }
        cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
        cJSON *neurons = cJSON_AddObjectToObject(o, "neurons");
        double per = (double)c->n_layers * c->ffn_dim;
        cJSON_AddNumberToObject(neurons, "up", per);
        cJSON_AddNumberToObject(neurons, "gate", per);
        cJSON_AddNumberToObject(neurons, "down", per);
    }
    cJSON_AddNumberToObject(o, "vocab_size", m->has_weights ? c->vocab_size : m->vocab.n_tokens);
    cJSON_AddStringToObject(o, "tokenizer", tokenizer_kind(&m->vocab));
    cJSON_AddNumberToObject(o, "bos_token_id", m->vocab.bos_id);
    cJSON_AddNumberToObject(o, "eos_token_id", m->vocab.eos_id);
    int counts[DT_COUNT] = { 0 };
    for (int i = 0; i < m->n_tensors; i++) counts[m->tensors[i].type]++;
    for (int t = 0; t < DT_COUNT; t++)
        if (counts[t]) cJSON_AddNumberToObject(dt, dtype_name((DType)t), counts[t]);
    cJSON_AddItemToObject(o, "tensor_dtypes", dt);
    cJSON_AddNumberToObject(o, "n_tensors", m->n_tensors);
    for (int i = 0; i < m->n_files; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", m->files[i].path);
        cJSON_AddNumberToObject(f, "bytes", (double)m->files[i].size);
        cJSON_AddItemToArray(files, f);
    }
    cJSON_AddItemToObject(o, "files", files);
    return o;
}
