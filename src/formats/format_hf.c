/* format_hf.c — Hugging Face model directories (transformers' LlamaForCausalLM).
 *
 * A directory holds config.json (the architecture), the weights as one
 * model.safetensors or as shards listed in model.safetensors.index.json, and
 * the vocabulary in tokenizer.json (hf_tokenizer.c). A directory with only the
 * tokenizer files opens as a vocabulary (has_weights = 0). Files are opened
 * by name, so a hub-cache snapshot, whose files are symbolic links into
 * ../../blobs, opens the same way.
 *
 * HF's conversion permutes the rows of q_proj and k_proj within each head so
 * that RoPE rotates the halves (i, i + head_dim/2) instead of Meta's pairs
 * (2i, 2i+1); Config.rope_interleaved = 0 records that.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf.h"
#include "formats/loaders.h"

static const char *const hf_layer_names[9] = {
    "model.layers.%d.input_layernorm.weight",          "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight",         "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight",         "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.mlp.gate_proj.weight",            "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight",
};

#define CONFIG_MAX_BYTES (4u << 20)
#define INDEX_MAX_BYTES (64u << 20)

/* ----------------------------------------------------------------------------
 * config.json */

typedef struct {
    const cJSON *json;
    const char *path;
    Error *e;
} ConfigReader;

/* An integer field: absent (or null) gives def, or an error when required. */
static int cfg_int(const ConfigReader *r, const char *key, int required, int def, int *out) {
    const cJSON *item = json_get(r->json, key);
    int64_t v;
    if (!item) {
        if (required) return error_set(r->e, NM_EINPUT, "%s: %s is missing", r->path, key);
        *out = def;
        return NM_OK;
    }
    if (!json_whole(item, 0, 2147483647.0, &v))
        return error_set(r->e, NM_EINPUT, "%s: %s must be a non-negative integer", r->path, key);
    *out = (int)v;
    return NM_OK;
}

static int cfg_float(const ConfigReader *r, const cJSON *obj, const char *key, int required, float def, float *out) {
    const cJSON *item = json_get(obj, key);
    if (!item) {
        if (required) return error_set(r->e, NM_EINPUT, "%s: %s is missing", r->path, key);
        *out = def;
        return NM_OK;
    }
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return error_set(r->e, NM_EINPUT, "%s: %s must be a number", r->path, key);
    *out = (float)item->valuedouble;
    return NM_OK;
}

static int cfg_bool(const ConfigReader *r, const char *key, int def, int *out) {
    const cJSON *item = json_get(r->json, key);
    if (!item) *out = def;
    else if (cJSON_IsBool(item)) *out = cJSON_IsTrue(item);
    else return error_set(r->e, NM_EINPUT, "%s: %s must be true or false", r->path, key);
    return NM_OK;
}

/* bos_token_id / eos_token_id: an id, or a list whose first id is taken
 * (Llama 3.1 lists several end-of-turn tokens). -1 when absent. */
static int cfg_token_id(const ConfigReader *r, const char *key, int *out) {
    const cJSON *item = json_get(r->json, key);
    int64_t v;
    *out = -1;
    if (cJSON_IsArray(item)) item = item->child;
    if (!item) return NM_OK;
    if (!json_whole(item, 0, 2147483647.0, &v))
        return error_set(r->e, NM_EINPUT, "%s: %s must be a token id or a list of them", r->path, key);
    *out = (int)v;
    return NM_OK;
}

/* Only Llama is read; everything else is refused by name rather than run
 * wrongly (Qwen2's biases, Gemma's norms, Mistral's sliding window ...). */
static int check_architecture(const ConfigReader *r) {
    const cJSON *type = json_get(r->json, "model_type"), *archs = json_get(r->json, "architectures");
    if (type && !cJSON_IsString(type)) return error_set(r->e, NM_EINPUT, "%s: model_type must be a string", r->path);
    if (type && strcmp(type->valuestring, "llama") != 0)
        return error_set(r->e, NM_EINPUT, "%s: model_type '%.64s' is not supported (neuromap reads the Llama family, model_type llama)",
                         r->path, type->valuestring);
    if (archs && !cJSON_IsArray(archs)) return error_set(r->e, NM_EINPUT, "%s: architectures must be a list", r->path);
    for (const cJSON *a = archs ? archs->child : NULL; a; a = a->next) {
        if (!cJSON_IsString(a)) return error_set(r->e, NM_EINPUT, "%s: architectures must be a list of strings", r->path);
        if (strcmp(a->valuestring, "LlamaForCausalLM") != 0)
            return error_set(r->e, NM_EINPUT, "%s: architecture '%.64s' is not supported (neuromap reads LlamaForCausalLM)",
                             r->path, a->valuestring);
    }
    if (!type && !archs) return error_set(r->e, NM_EINPUT, "%s: names neither model_type nor architectures", r->path);
    const cJSON *quant = json_get(r->json, "quantization_config");
    if (quant) {
        const cJSON *method = cJSON_GetObjectItemCaseSensitive(quant, "quant_method");
        return error_set(r->e, NM_EINPUT, "%s: quantised checkpoint (quantization_config, method %.32s) is not supported: "
                         "neuromap reads F32, F16 and BF16 weights", r->path,
                         cJSON_IsString(method) ? method->valuestring : "unknown");
    }
    if (json_get(r->json, "sliding_window"))
        return error_set(r->e, NM_EINPUT, "%s: sliding-window attention is not supported", r->path);
    const cJSON *act = json_get(r->json, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0))
        return error_set(r->e, NM_EINPUT, "%s: hidden_act must be \"silu\" for a Llama MLP", r->path);
    int bias;
    const char *biases[] = { "attention_bias", "mlp_bias" };
    for (int i = 0; i < 2; i++) {
        int rc = cfg_bool(r, biases[i], 0, &bias);
        if (rc) return rc;
        if (bias) return error_set(r->e, NM_EINPUT, "%s: %s is true; Llama layers have no biases", r->path, biases[i]);
    }
    return NM_OK;
}

/* rope_theta and the optional "llama3" frequency scaling. transformers 5
 * moved both into one rope_parameters object; older configs have rope_theta
 * at the top and rope_scaling beside it (its type under "rope_type" or, in
 * early Llama 3.1 configs, "type"). */
static int read_rope(const ConfigReader *r, Config *c) {
    const cJSON *params = json_get(r->json, "rope_parameters");
    const cJSON *scaling = params ? params : json_get(r->json, "rope_scaling");
    int rc = cfg_float(r, params ? params : r->json, "rope_theta", 0, 10000.0f, &c->rope_theta);
    if (rc || !scaling) return rc;
    if (!cJSON_IsObject(scaling)) return error_set(r->e, NM_EINPUT, "%s: rope_scaling must be an object or null", r->path);
    const cJSON *type = json_get(scaling, "rope_type");
    if (!type) type = json_get(scaling, "type");
    if (!cJSON_IsString(type)) return error_set(r->e, NM_EINPUT, "%s: rope_scaling has no rope_type", r->path);
    if (strcmp(type->valuestring, "default") == 0) return NM_OK;
    if (strcmp(type->valuestring, "llama3") != 0)
        return error_set(r->e, NM_EINPUT, "%s: rope_scaling type '%.32s' is not supported (only llama3)", r->path,
                         type->valuestring);
    RopeScaling *s = &c->rope_scaling;
    int64_t orig;
    if ((rc = cfg_float(r, scaling, "factor", 1, 0, &s->factor)) ||
        (rc = cfg_float(r, scaling, "low_freq_factor", 1, 0, &s->low_freq_factor)) ||
        (rc = cfg_float(r, scaling, "high_freq_factor", 1, 0, &s->high_freq_factor)))
        return rc;
    if (!json_whole(json_get(scaling, "original_max_position_embeddings"), 1, 1 << 24, &orig))
        return error_set(r->e, NM_EINPUT, "%s: rope_scaling.original_max_position_embeddings must be a positive integer", r->path);
    if (!(s->factor >= 1 && s->low_freq_factor > 0 && s->high_freq_factor > s->low_freq_factor))
        return error_set(r->e, NM_EINPUT, "%s: rope_scaling needs factor >= 1 and 0 < low_freq_factor < high_freq_factor", r->path);
    s->original_max_position = (int)orig;
    s->present = 1;
    return NM_OK;
}

/* Fills m->cfg; *tied gets tie_word_embeddings (LlamaConfig's default is false). */
static int read_config(Model *m, const cJSON *json, const char *path, int *tied, int *bos, int *eos, Error *e) {
    ConfigReader r = { json, path, e };
    Config *c = &m->cfg;
    int rc;
    if ((rc = check_architecture(&r))) return rc;
    strcpy(c->arch, "llama");
    if ((rc = cfg_int(&r, "hidden_size", 1, 0, &c->dim)) || (rc = cfg_int(&r, "intermediate_size", 1, 0, &c->ffn_dim)) ||
        (rc = cfg_int(&r, "num_hidden_layers", 1, 0, &c->n_layers)) ||
        (rc = cfg_int(&r, "num_attention_heads", 1, 0, &c->n_heads)) || (rc = cfg_int(&r, "vocab_size", 1, 0, &c->vocab_size)) ||
        (rc = cfg_int(&r, "num_key_value_heads", 0, c->n_heads, &c->n_kv_heads)) ||
        (rc = cfg_int(&r, "max_position_embeddings", 0, 2048, &c->max_seq_len)) ||
        (rc = cfg_float(&r, json, "rms_norm_eps", 0, 1e-6f, &c->norm_eps)) || (rc = read_rope(&r, c)) ||
        (rc = cfg_bool(&r, "tie_word_embeddings", 0, tied)) || (rc = cfg_token_id(&r, "bos_token_id", bos)) ||
        (rc = cfg_token_id(&r, "eos_token_id", eos)))
        return rc;
    if (!json_get(json, "head_dim") && c->n_heads && c->dim % c->n_heads)
        return error_set(e, NM_EINPUT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->dim, c->n_heads);
    if ((rc = cfg_int(&r, "head_dim", 0, c->n_heads ? c->dim / c->n_heads : 0, &c->head_dim))) return rc;
    c->rope_interleaved = 0;
    return NM_OK;
}

static int load_config(Model *m, const char *path, int *tied, int *bos, int *eos, Error *e) {
    char *text;
    size_t len;
    int rc = read_file(path, CONFIG_MAX_BYTES, &text, &len, e);
    if (rc) return rc;
    m->identity = fnv1a64(m->identity, text, len);
    cJSON *json;
    rc = json_parse_object(text, len, path, &json, e);
    free(text);
    if (rc) return rc;
    rc = read_config(m, json, path, tied, bos, eos, e);
    cJSON_Delete(json);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Weights: one file, or shards named by the index */

/* Every tensor the index places in `shard` must be there. */
static int check_index_entries(const Model *m, const cJSON *map, const char *shard, const char *index_path, Error *e) {
    for (const cJSON *w = map->child; w; w = w->next)
        if (strcmp(w->valuestring, shard) == 0 && !model_find_tensor(m, w->string))
            return error_set(e, NM_EINPUT, "%s: lists tensor %s in %s, which does not hold it", index_path, w->string, shard);
    return NM_OK;
}

/* Maps each shard the weight_map names, once, in order of first mention. */
static int load_shards(Model *m, const char *dir, const char *index_path, const cJSON *map, Error *e) {
    for (const cJSON *w = map->child; w; w = w->next)
        if (!cJSON_IsString(w) || !w->valuestring[0] || strchr(w->valuestring, '/'))
            return error_set(e, NM_EINPUT, "%s: weight_map entry %s must name a shard file in the same directory", index_path,
                             w->string);
    int rc = NM_OK;
    for (const cJSON *w = map->child; w && !rc; w = w->next) {
        int seen = 0;
        for (const cJSON *p = map->child; p != w && !seen; p = p->next) seen = strcmp(p->valuestring, w->valuestring) == 0;
        if (seen) continue;
        char *shard = hf_path(dir, w->valuestring);
        rc = safetensors_load(m, shard, e);
        free(shard);
        if (!rc) rc = check_index_entries(m, map, w->valuestring, index_path, e);
    }
    return rc;
}

static int load_index(Model *m, const char *dir, const char *index_path, Error *e) {
    char *text;
    size_t len;
    int rc = read_file(index_path, INDEX_MAX_BYTES, &text, &len, e);
    if (rc) return rc;
    cJSON *json;
    rc = json_parse_object(text, len, index_path, &json, e);
    free(text);
    if (rc) return rc;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(json, "weight_map");
    if (!cJSON_IsObject(map) || !map->child) rc = error_set(e, NM_EINPUT, "%s: has no weight_map object", index_path);
    else rc = load_shards(m, dir, index_path, map, e);
    cJSON_Delete(json);
    return rc;
}

static int load_weights(Model *m, const char *dir, Error *e) {
    char *single = hf_path(dir, "model.safetensors"), *index = hf_path(dir, "model.safetensors.index.json");
    char *torch = hf_path(dir, "pytorch_model.bin");
    int rc;
    if (path_exists(single)) rc = safetensors_load(m, single, e);
    else if (path_exists(index)) rc = load_index(m, dir, index, e);
    else if (path_exists(torch))
        rc = error_set(e, NM_EINPUT, "%s: PyTorch pickle checkpoints are not read; save the model as safetensors", torch);
    else rc = error_set(e, NM_EINPUT, "%s: has config.json but no model.safetensors or model.safetensors.index.json", dir);
    free(single);
    free(index);
    free(torch);
    return rc;
}

/* ----------------------------------------------------------------------------
 * The directory */

static int load_model(Model *m, const char *dir, const char *config_path, int *bos, int *eos, Error *e) {
    int tied, rc = load_config(m, config_path, &tied, bos, eos, e);
    if (rc || (rc = load_weights(m, dir, e))) return rc;
    int has_head = model_find_tensor(m, "lm_head.weight") != NULL;
    /* With tie_word_embeddings transformers overwrites any stored head with
     * the embedding; without it a missing head would be random weights. */
    if (!tied && !has_head)
        return error_set(e, NM_EINPUT, "%s: tie_word_embeddings is false but the weights have no lm_head.weight", config_path);
    m->has_weights = 1;
    return model_bind(m, hf_layer_names, "model.embed_tokens.weight", "model.norm.weight", tied ? NULL : "lm_head.weight", e);
}

static int load_hf(Model *m, const char *dir, const ModelOpenOptions *o, Error *e) {
    if (!path_is_dir(dir))
        return error_set(e, NM_EINPUT, "%s: give the model's directory (with config.json), not a .safetensors file", dir);
    char *config = hf_path(dir, "config.json"), *tokenizer = hf_path(dir, "tokenizer.json");
    int bos = -1, eos = -1, rc = NM_OK;
    if (path_exists(config)) rc = load_model(m, dir, config, &bos, &eos, e);
    else if (!path_exists(tokenizer))
        rc = error_set(e, NM_EINPUT, "%s: not a Hugging Face model directory (no config.json or tokenizer.json)", dir);
    if (!rc) rc = hf_load_tokenizer(m, dir, bos, eos, e);
    free(config);
    free(tokenizer);
    return rc;
}

/* A directory; a lone .safetensors file is claimed too, to be refused with
 * a message that says which path to give instead. */
static int probe_hf(const char *path, int is_dir, const unsigned char *head, size_t n) {
    return is_dir || str_ends_with(path, ".safetensors");
}

const FormatLoader loader_hf = { FORMAT_HF, probe_hf, load_hf };
