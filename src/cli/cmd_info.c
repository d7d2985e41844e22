/* cmd_info.c — `neuromap info MODEL`: what a checkpoint is, in one screen. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "info",
    .usage = "usage: neuromap info MODEL [--tokenizer FILE] [--format table|json] [--json]\n",
    .about = "Describes a checkpoint: format, architecture, layers, hidden and FFN sizes, heads,\n"
             "vocabulary, RoPE settings, tied or separate LM head, dtypes present, file sizes\n"
             "and the number of up/gate/down neurons. MODEL is a Hugging Face directory, a\n"
             "GGUF file (also vocabulary-only), or a llama2.c .bin with --tokenizer FILE.\n",
};

/* Tensors per dtype, as "F32 x21, Q8_0 x16". */
static void dtype_summary(const Model *m, char *out, size_t cap, cJSON *json) {
    int counts[DT_COUNT] = { 0 };
    for (int i = 0; i < m->n_tensors; i++) counts[m->tensors[i].type]++;
    out[0] = 0;
    for (int t = 0; t < DT_COUNT; t++) {
        if (!counts[t]) continue;
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s x%d", n ? ", " : "", dtype_name((DType)t), counts[t]);
        if (json) cJSON_AddNumberToObject(json, dtype_name((DType)t), counts[t]);
    }
    if (!out[0]) snprintf(out, cap, "none (vocabulary only)");
}

static const char *tokenizer_kind(const Vocab *v) {
    return v->kind == TOKENIZER_SPM ? "sentencepiece-bpe" : v->kind == TOKENIZER_BPE ? "byte-level-bpe" : "none";
}

/* The document is report/documents.c's, so that other front ends serve the same one. */
static void print_json(const Model *m) {
    put_json(model_info_json(m), 1);
}

static void print_table(const Model *m) {
    const Config *c = &m->cfg;
    char dtypes[512];
    dtype_summary(m, dtypes, sizeof dtypes, NULL);
    printf("%-16s %s\n", "path", m->path);
    printf("%-16s %s\n", "format", format_name(m->format));
    if (m->has_weights) {
        printf("%-16s %s\n", "architecture", c->arch);
        printf("%-16s %d\n", "layers", c->n_layers);
        printf("%-16s %d\n", "hidden size", c->dim);
        printf("%-16s %d\n", "FFN size", c->ffn_dim);
        printf("%-16s %d query, %d key/value (head dim %d)\n", "heads", c->n_heads, c->n_kv_heads, c->head_dim);
        printf("%-16s %d\n", "context", c->max_seq_len);
        printf("%-16s theta %g, %s pairs", "rope", c->rope_theta, c->rope_interleaved ? "interleaved" : "rotate-half");
        if (c->rope_scaling.present)
            printf(", llama3 scaling (factor %g, low %g, high %g, original %d)", c->rope_scaling.factor,
                   c->rope_scaling.low_freq_factor, c->rope_scaling.high_freq_factor, c->rope_scaling.original_max_position);
        printf("\n%-16s %g\n", "rms norm eps", c->norm_eps);
        printf("%-16s %s\n", "LM head", c->tied_embeddings ? "tied to the token embedding" : "separate");
    } else {
        printf("%-16s %s\n", "weights", m->n_tensors ? "none bound (bare tensors, no model hyperparameters)" : "none (vocabulary only)");
    }
    printf("%-16s %d tokens, %s, bos %d, eos %d\n", "vocabulary", m->has_weights ? c->vocab_size : m->vocab.n_tokens,
           tokenizer_kind(&m->vocab), m->vocab.bos_id, m->vocab.eos_id);
    printf("%-16s %d (%s)\n", "tensors", m->n_tensors, dtypes);
    for (int i = 0; i < m->n_files; i++)
        printf("%-16s %s (%.1f MB)\n", i ? "" : "files", m->files[i].path, (double)m->files[i].size / 1e6);
    if (m->has_weights) {
        long long per = (long long)c->n_layers * c->ffn_dim;
        printf("%-16s %lld up, %lld gate, %lld down (%d layers x %d)\n", "neurons", per, per, per, c->n_layers, c->ffn_dim);
    }
}

int cmd_info(int argc, char **argv) {
    static const char *const formats[] = { "table", "json", NULL };
    const char *tokenizer = NULL;
    int json = 0;
    long threads = 0;
    Option opts[] = {
        { OPT_STRING('t', "tokenizer", &tokenizer, "FILE", "llama2.c tokenizer .bin (e.g. tok512.bin)") },
        { OPT_CHOICE('f', "format", &json, "FMT", formats, "table (default) or json; --json is short for --format json") },
        { OPT_FLAG(0, "json", &json, "the same as --format json") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    Model m;
    open_model_or_exit(&m, argv[1], tokenizer, 0);
    if (json) print_json(&m);
    else print_table(&m);
    model_close(&m);
    return NM_OK;
}
