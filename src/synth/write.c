/* write.c — the two outputs: a Hugging Face directory (config.json, the
 * tokenizer's files, model.safetensors) and a GGUF file (llama.cpp's keys, the
 * tokenizer in metadata, the weights), both streamed through formats/writer. */
#include "synth/synth_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Hugging Face directory: config.json, tokenizer files, model.safetensors */

static int by_job_name(const void *a, const void *b) {
    return strcmp(((const Job *)a)->spec.name, ((const Job *)b)->spec.name);
}

static int write_safetensors(const Synth *y, const char *path, SynthProgress *st, Error *e) {
    int n;
    Job *jobs = synth_plan_jobs(y, &n);
    qsort(jobs, (size_t)n, sizeof *jobs, by_job_name); /* the header's order is the data's */
    TensorSpec *specs = xmalloc((size_t)n * sizeof *specs);
    for (int i = 0; i < n; i++) specs[i] = jobs[i].spec;
    FILE *f = fopen(path, "wb");
    int rc = f ? safetensors_write_header(f, specs, n, path, e)
               : error_set(e, NM_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    progress_start(&st->progress, "synth MiB", (int64_t)(synth_total_bytes(jobs, n) >> 20), st->progress.enabled);
    for (int i = 0; i < n && !rc; i++)
        if (!synth_write_tensor(y, &jobs[i], f, st)) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    progress_end(&st->progress);
    free(specs);
    free(jobs);
    return rc;
}

static int write_json(const char *path, cJSON *o, Error *e) {
    char *s = cJSON_Print(o);
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(s);
    cJSON_Delete(o);
    return ok ? NM_OK : error_set(e, NM_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
}

static int write_config(const Synth *y, const char *path, Error *e) {
    const SynthShape *s = &y->s;
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddBoolToObject(o, "attention_bias", 0);
    cJSON_AddNumberToObject(o, "bos_token_id", y->vocab->bos_id);
    cJSON_AddNumberToObject(o, "eos_token_id", y->vocab->eos_id);
    cJSON_AddNumberToObject(o, "head_dim", synth_head_dim(s));
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "hidden_size", s->dim);
    cJSON_AddNumberToObject(o, "initializer_range", y->std);
    cJSON_AddNumberToObject(o, "intermediate_size", s->ffn_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", s->max_seq_len);
    cJSON_AddBoolToObject(o, "mlp_bias", 0);
    cJSON_AddStringToObject(o, "model_type", "llama");
    cJSON_AddNumberToObject(o, "num_attention_heads", s->n_heads);
    cJSON_AddNumberToObject(o, "num_hidden_layers", s->n_layers);
    cJSON_AddNumberToObject(o, "num_key_value_heads", s->n_kv_heads);
    cJSON_AddNumberToObject(o, "pretraining_tp", 1);
    cJSON_AddNumberToObject(o, "rms_norm_eps", s->norm_eps);
    if (s->rope_scaling.present) {
        cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddNumberToObject(rs, "factor", s->rope_scaling.factor);
        cJSON_AddNumberToObject(rs, "high_freq_factor", s->rope_scaling.high_freq_factor);
        cJSON_AddNumberToObject(rs, "low_freq_factor", s->rope_scaling.low_freq_factor);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", s->rope_scaling.original_max_position);
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
    } else {
        cJSON_AddNullToObject(o, "rope_scaling");
    }
    cJSON_AddNumberToObject(o, "rope_theta", s->rope_theta);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", s->tied);
    cJSON_AddStringToObject(o, "torch_dtype", dtype_info(y->dtype)->torch);
    cJSON_AddBoolToObject(o, "use_cache", 1);
    cJSON_AddNumberToObject(o, "vocab_size", s->vocab_size);
    return write_json(path, o, e);
}

static cJSON *special_token_ref(const Vocab *v, int id) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->piece[id]);
    cJSON_AddNumberToObject(o, "type_id", 0);
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemToObject(wrap, "SpecialToken", o);
    return wrap;
}

/* tokenizer.json for the built-in vocabulary, shaped like Llama 3's. */
static int write_builtin_tokenizer(const Vocab *v, const char *path, Error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", "1.0");
    cJSON_AddNullToObject(o, "truncation");
    cJSON_AddNullToObject(o, "padding");
    cJSON *added = cJSON_AddArrayToObject(o, "added_tokens");
    for (int i = 0; i < v->n_tokens; i++) {
        if (v->type[i] != TOKEN_CONTROL) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", v->piece[i]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    cJSON_AddNullToObject(o, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(o, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pres = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject(), *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", v->pre_regex);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "trim_offsets", 1);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(pres, split);
    cJSON_AddItemToArray(pres, bl);
    cJSON *post = cJSON_AddObjectToObject(o, "post_processor");
    cJSON_AddStringToObject(post, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(post, "single"), *seq = cJSON_CreateObject(), *a = cJSON_CreateObject();
    cJSON_AddItemToArray(single, special_token_ref(v, v->bos_id));
    cJSON_AddStringToObject(a, "id", "A");
    cJSON_AddNumberToObject(a, "type_id", 0);
    cJSON_AddItemToObject(seq, "Sequence", a);
    cJSON_AddItemToArray(single, seq);
    cJSON *specials = cJSON_AddObjectToObject(post, "special_tokens"), *bos = cJSON_CreateObject();
    cJSON_AddStringToObject(bos, "id", v->piece[v->bos_id]);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(bos, "ids"), cJSON_CreateNumber(v->bos_id));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(bos, "tokens"), cJSON_CreateString(v->piece[v->bos_id]));
    cJSON_AddItemToObject(specials, v->piece[v->bos_id], bos);
    cJSON *dec = cJSON_AddObjectToObject(o, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
    cJSON_AddBoolToObject(dec, "trim_offsets", 1);
    cJSON_AddBoolToObject(dec, "use_regex", 1);
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", v->ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < v->n_tokens; i++)
        if (v->type[i] == TOKEN_NORMAL) cJSON_AddNumberToObject(vocab, v->piece[i], i);
    for (int i = 0; i < v->n_merges; i++) cJSON_AddItemToArray(merges, cJSON_CreateString(v->merges[i]));
    return write_json(path, o, e);
}

static int write_builtin_tokenizer_config(const Synth *y, const char *path, Error *e) {
    const Vocab *v = y->vocab;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "add_bos_token", 1);
    cJSON_AddBoolToObject(o, "add_eos_token", 0);
    cJSON_AddStringToObject(o, "bos_token", v->piece[v->bos_id]);
    cJSON_AddBoolToObject(o, "clean_up_tokenization_spaces", 1);
    cJSON_AddStringToObject(o, "eos_token", v->piece[v->eos_id]);
    cJSON_AddNumberToObject(o, "model_max_length", y->s.max_seq_len);
    cJSON_AddStringToObject(o, "tokenizer_class", "PreTrainedTokenizerFast");
    return write_json(path, o, e);
}

static int copy_file(const char *from, const char *to, Error *e) {
    FILE *in = fopen(from, "rb");
    if (!in) return error_set(e, NM_EINPUT, "%s: cannot open: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    char buf[1 << 16];
    size_t n;
    int ok = out != NULL;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    return ok ? NM_OK : error_set(e, NM_ERUNTIME, "%s: cannot copy to %s: %s", from, to, strerror(errno));
}

const char *const synth_hf_files[5] = { "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                         "model.safetensors" };

/* dir/file into buf (4096 bytes); 0 when it does not fit. */
static int join_path(char *buf, const char *dir, const char *file) {
    return (size_t)snprintf(buf, 4096, "%s/%s", dir, file) < 4096;
}

int synth_write_hf(const Synth *y, const char *dir, SynthProgress *st, Error *e) {
    char path[4096], from[4096];
    int rc;
#define IN_DIR(buf, d, file) \
    if (!join_path(buf, d, file)) return error_set(e, NM_EINPUT, "synth: path too long: %s", d)
    IN_DIR(path, dir, synth_hf_files[0]);
    if ((rc = write_config(y, path, e))) return rc;
    for (int i = 1; i <= 3; i++) { /* the tokenizer's files */
        IN_DIR(path, dir, synth_hf_files[i]);
        if (y->tokenizer_dir) {
            IN_DIR(from, y->tokenizer_dir, synth_hf_files[i]);
            if (path_exists(from) && (rc = copy_file(from, path, e))) return rc;
        } else if (i == 1 && (rc = write_builtin_tokenizer(y->vocab, path, e))) {
            return rc;
        } else if (i == 2 && (rc = write_builtin_tokenizer_config(y, path, e))) {
            return rc;
        }
    }
    IN_DIR(path, dir, synth_hf_files[4]);
#undef IN_DIR
    return write_safetensors(y, path, st, e);
}

/* ----------------------------------------------------------------------------
 * GGUF file: llama.cpp's keys, the tokenizer in metadata, then the weights */

static void gguf_tokenizer(const Synth *y, GGUFWriter *w) {
    const Vocab *v = y->vocab;
    int n = y->s.vocab_size;
    /* One token per embedding row, as llama.cpp requires: ids the tokenizer
     * does not define become "[PADn]" of type UNUSED, as its converter pads. */
    char **pieces = xcalloc((size_t)n, sizeof *pieces);
    int32_t *types = xcalloc((size_t)n, sizeof *types);
    for (int i = 0; i < n; i++) {
        int defined = i < v->n_tokens && v->piece_len[i] > 0;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        pieces[i] = defined ? v->piece[i] : xstrdup(pad);
        types[i] = defined ? v->type[i] : TOKEN_UNUSED;
    }
    int spm = v->kind == TOKENIZER_SPM;
    gguf_kv_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!spm)
        gguf_kv_str(w, "tokenizer.ggml.pre",
                    v->pre ? v->pre : v->pre_regex && strcmp(v->pre_regex, synth_llama3_regex) == 0 ? "llama-bpe" : "default");
    gguf_kv_str_array(w, "tokenizer.ggml.tokens", pieces, NULL, n);
    if (v->score) {
        float *scores = xcalloc((size_t)n, sizeof *scores);
        memcpy(scores, v->score, (size_t)(v->n_tokens < n ? v->n_tokens : n) * sizeof *scores);
        gguf_kv_f32_array(w, "tokenizer.ggml.scores", scores, n);
        free(scores);
    }
    gguf_kv_i32_array(w, "tokenizer.ggml.token_type", types, n);
    if (v->n_merges) gguf_kv_str_array(w, "tokenizer.ggml.merges", v->merges, NULL, v->n_merges);
    if (v->bos_id >= 0) gguf_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos_id);
    if (v->eos_id >= 0) gguf_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos_id);
    if (v->unk_id >= 0) gguf_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk_id);
    gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    if (spm) gguf_kv_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    if (v->chat_template) gguf_kv_str(w, "tokenizer.chat_template", v->chat_template);
    for (int i = 0; i < n; i++)
        if (!(i < v->n_tokens && v->piece_len[i] > 0)) free(pieces[i]);
    free(pieces);
    free(types);
}

static void gguf_hparams(const Synth *y, GGUFWriter *w) {
    const SynthShape *s = &y->s;
    gguf_kv_str(w, "general.architecture", "llama");
    gguf_kv_str(w, "general.name", "neuromap synth");
    gguf_kv_u32(w, "general.file_type", (uint32_t)dtype_info(y->dtype)->gguf_file_type);
    gguf_kv_u32(w, "llama.vocab_size", (uint32_t)s->vocab_size);
    gguf_kv_u32(w, "llama.context_length", (uint32_t)s->max_seq_len);
    gguf_kv_u32(w, "llama.embedding_length", (uint32_t)s->dim);
    gguf_kv_u32(w, "llama.block_count", (uint32_t)s->n_layers);
    gguf_kv_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn_dim);
    gguf_kv_u32(w, "llama.rope.dimension_count", (uint32_t)synth_head_dim(s));
    gguf_kv_u32(w, "llama.attention.head_count", (uint32_t)s->n_heads);
    gguf_kv_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads);
    gguf_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)s->norm_eps);
    gguf_kv_f32(w, "llama.rope.freq_base", (float)s->rope_theta);
}

int synth_write_gguf(const Synth *y, const char *path, SynthProgress *st, Error *e) {
    int n;
    Job *jobs = synth_plan_jobs(y, &n);
    GGUFWriter w;
    gguf_writer_init(&w);
    gguf_hparams(y, &w);
    gguf_tokenizer(y, &w);
    for (int i = 0; i < n; i++) gguf_add_tensor(&w, &jobs[i].spec);
    FILE *f = fopen(path, "wb");
    int rc = f ? gguf_write_header(&w, f, path, e) : error_set(e, NM_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    progress_start(&st->progress, "synth MiB", (int64_t)(synth_total_bytes(jobs, n) >> 20), st->progress.enabled);
    for (int i = 0; i < n && !rc; i++)
        if (!synth_write_tensor(y, &jobs[i], f, st) || !gguf_write_padding(&w, f, tensor_spec_bytes(&jobs[i].spec)))
            rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    progress_end(&st->progress);
    gguf_writer_free(&w);
    free(jobs);
    return rc;
}
