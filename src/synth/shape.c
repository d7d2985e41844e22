/* shape.c — presets and the tensors of a checkpoint, under both naming schemes. */
#include "synth/synth_internal.h"

#include <string.h>

typedef struct {
    const char *name;
    SynthShape s;
} Preset;

static const Preset presets[] = {
    { "tiny", { .n_layers = 2, .dim = 64, .ffn_dim = 192, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 512,
                .max_seq_len = 2048, .norm_eps = 1e-5, .rope_theta = 10000 } },
    { "llama-3.2-1b", { .n_layers = 16, .dim = 2048, .ffn_dim = 8192, .n_heads = 32, .n_kv_heads = 8,
                        .vocab_size = 128256, .max_seq_len = 131072, .norm_eps = 1e-5, .rope_theta = 500000,
                        .rope_scaling = { 1, 32, 1, 4, 8192 }, .tied = 1 } },
    { "llama-3.1-8b", { .n_layers = 32, .dim = 4096, .ffn_dim = 14336, .n_heads = 32, .n_kv_heads = 8,
                        .vocab_size = 128256, .max_seq_len = 131072, .norm_eps = 1e-5, .rope_theta = 500000,
                        .rope_scaling = { 1, 8, 1, 4, 8192 } } },
};

const SynthShape *synth_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (strcmp(name, presets[i].name) == 0) return &presets[i].s;
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Tensors: one role table for both naming schemes */

static const struct {
    const char *hf, *gguf;
} role_names[R_COUNT] = {
    [R_EMBD] = { "model.embed_tokens.weight", "token_embd.weight" },
    [R_OUTPUT_NORM] = { "model.norm.weight", "output_norm.weight" },
    [R_OUTPUT] = { "lm_head.weight", "output.weight" },
    [R_ROPE_FREQS] = { NULL, "rope_freqs.weight" }, /* GGUF's form of llama3 rope scaling */
    [R_ATTN_NORM] = { "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight" },
    [R_Q] = { "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight" },
    [R_K] = { "model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight" },
    [R_V] = { "model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight" },
    [R_O] = { "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight" },
    [R_FFN_NORM] = { "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight" },
    [R_GATE] = { "model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight" },
    [R_UP] = { "model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight" },
    [R_DOWN] = { "model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight" },
};

int synth_is_vector(Role r) { return r == R_OUTPUT_NORM || r == R_ROPE_FREQS || r == R_ATTN_NORM || r == R_FFN_NORM; }

static Job make_job(const Synth *y, Role r, int layer) {
    const SynthShape *s = &y->s;
    int64_t q = (int64_t)s->n_heads * synth_head_dim(s), kv = (int64_t)s->n_kv_heads * synth_head_dim(s);
    const int64_t rows_cols[R_COUNT][2] = {
        [R_EMBD] = { s->vocab_size, s->dim }, [R_OUTPUT_NORM] = { 1, s->dim }, [R_OUTPUT] = { s->vocab_size, s->dim },
        [R_ROPE_FREQS] = { 1, synth_head_dim(s) / 2 }, [R_ATTN_NORM] = { 1, s->dim }, [R_Q] = { q, s->dim },
        [R_K] = { kv, s->dim }, [R_V] = { kv, s->dim }, [R_O] = { s->dim, q }, [R_FFN_NORM] = { 1, s->dim },
        [R_GATE] = { s->ffn_dim, s->dim }, [R_UP] = { s->ffn_dim, s->dim }, [R_DOWN] = { s->dim, s->ffn_dim },
    };
    Job j = { .role = r, .layer = layer };
    snprintf(j.spec.name, sizeof j.spec.name, y->gguf ? role_names[r].gguf : role_names[r].hf, layer);
    /* llama.cpp keeps 1-D tensors in F32 whatever the file type; HF stores all in torch_dtype. */
    j.spec.type = y->gguf && synth_is_vector(r) ? DT_F32 : y->dtype;
    j.spec.n_dims = synth_is_vector(r) ? 1 : 2;
    j.spec.shape[0] = synth_is_vector(r) ? rows_cols[r][1] : rows_cols[r][0];
    j.spec.shape[1] = rows_cols[r][1];
    return j;
}

Job *synth_plan_jobs(const Synth *y, int *n_out) {
    Job *jobs = xcalloc((size_t)(4 + (R_COUNT - FIRST_LAYER_ROLE) * y->s.n_layers), sizeof *jobs);
    int n = 0;
    jobs[n++] = make_job(y, R_EMBD, 0);
    for (int l = 0; l < y->s.n_layers; l++)
        for (int r = FIRST_LAYER_ROLE; r < R_COUNT; r++) jobs[n++] = make_job(y, (Role)r, l);
    jobs[n++] = make_job(y, R_OUTPUT_NORM, 0);
    if (!y->s.tied) jobs[n++] = make_job(y, R_OUTPUT, 0);
    if (y->gguf && y->s.rope_scaling.present) jobs[n++] = make_job(y, R_ROPE_FREQS, 0);
    *n_out = n;
    return jobs;
}

uint64_t synth_total_bytes(const Job *jobs, int n) {
    uint64_t t = 0;
    for (int i = 0; i < n; i++) t += tensor_spec_bytes(&jobs[i].spec);
    return t;
}
