/* cmd_synth.c — `neuromap synth`: synthetic Llama checkpoints for tests and
 * benchmarks, with planted neurons whose concept is known in advance.
 *
 * Every weight comes from a seeded generator addressed by (tensor, row): row r
 * of a tensor is a pure function of the seed, the tensor's role and layer, and
 * r. Three things follow. Tensors can be written in any order (safetensors
 * sorts by name, GGUF does not) and still hold the same values, so an HF and a
 * GGUF synth of one seed are the same model. Any single row can be recomputed
 * without the rest: a planted neuron needs row T of a 1 GB LM head, and gets it
 * in microseconds. And nothing is ever held whole: the writer streams rows in
 * chunks of a few megabytes.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "synth",
    .usage = "usage: neuromap synth OUT [options]\n",
    .about = "Writes a synthetic Llama checkpoint: random N(0, std^2) matrices from a seeded,\n"
             "deterministic generator, and optionally planted neurons, whose up/gate rows are\n"
             "a chosen token's unembedding direction, so that the neuron map must name that\n"
             "token. OUT is a Hugging Face directory (model.safetensors, config.json,\n"
             "tokenizer.json), or a GGUF file when it ends in .gguf. It is written under a\n"
             "temporary name and renamed when complete; an existing OUT is kept unless --force.\n",
};

/* ----------------------------------------------------------------------------
 * What to write */

typedef struct {
    int layer, neuron, token;
    float *vec; /* the planted row: dim floats */
} Plant;

typedef struct {
    int n_layers, dim, ffn_dim, n_heads, n_kv_heads, vocab_size, max_seq_len, tied;
    double norm_eps, rope_theta;
    RopeScaling rope_scaling;
} Shape;

typedef struct {
    Shape s;
    int gguf;
    DType dtype;
    uint64_t seed;
    double std, norm_noise, plant_scale, plant_boost;
    int plant_up, plant_gate;
    Plant *plants;
    int n_plants;
    uint8_t *planted_token; /* vocab_size flags: rows of the LM head to boost */
    const Vocab *vocab;
    const char *tokenizer_dir; /* NULL: the built-in byte-level vocabulary */
} Synth;

typedef struct {
    const char *name;
    Shape s;
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

/* ----------------------------------------------------------------------------
 * Tensors: one role table for both naming schemes */

typedef enum {
    R_EMBD, R_OUTPUT_NORM, R_OUTPUT, R_ROPE_FREQS,
    R_ATTN_NORM, R_Q, R_K, R_V, R_O, R_FFN_NORM, R_GATE, R_UP, R_DOWN,
    R_COUNT
} Role;
#define FIRST_LAYER_ROLE R_ATTN_NORM

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

typedef struct {
    TensorSpec spec; /* first, so a Job sorts like its TensorSpec */
    Role role;
    int layer;
} Job;

static int head_dim(const Shape *s) { return s->dim / s->n_heads; }
static int is_vector(Role r) { return r == R_OUTPUT_NORM || r == R_ROPE_FREQS || r == R_ATTN_NORM || r == R_FFN_NORM; }
static Role lm_head_role(const Shape *s) { return s->tied ? R_EMBD : R_OUTPUT; }

static Job make_job(const Synth *y, Role r, int layer) {
    const Shape *s = &y->s;
    int64_t q = (int64_t)s->n_heads * head_dim(s), kv = (int64_t)s->n_kv_heads * head_dim(s);
    const int64_t rows_cols[R_COUNT][2] = {
        [R_EMBD] = { s->vocab_size, s->dim }, [R_OUTPUT_NORM] = { 1, s->dim }, [R_OUTPUT] = { s->vocab_size, s->dim },
        [R_ROPE_FREQS] = { 1, head_dim(s) / 2 }, [R_ATTN_NORM] = { 1, s->dim }, [R_Q] = { q, s->dim },
        [R_K] = { kv, s->dim }, [R_V] = { kv, s->dim }, [R_O] = { s->dim, q }, [R_FFN_NORM] = { 1, s->dim },
        [R_GATE] = { s->ffn_dim, s->dim }, [R_UP] = { s->ffn_dim, s->dim }, [R_DOWN] = { s->dim, s->ffn_dim },
    };
    Job j = { .role = r, .layer = layer };
    snprintf(j.spec.name, sizeof j.spec.name, y->gguf ? role_names[r].gguf : role_names[r].hf, layer);
    /* llama.cpp keeps 1-D tensors in F32 whatever the file type; HF stores all in torch_dtype. */
    j.spec.type = y->gguf && is_vector(r) ? DT_F32 : y->dtype;
    j.spec.n_dims = is_vector(r) ? 1 : 2;
    j.spec.shape[0] = is_vector(r) ? rows_cols[r][1] : rows_cols[r][0];
    j.spec.shape[1] = rows_cols[r][1];
    return j;
}

/* Every tensor of the checkpoint, in the order the format stores them. */
static Job *plan_jobs(const Synth *y, int *n_out) {
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

/* ----------------------------------------------------------------------------
 * The generator: splitmix64 streams, one per (tensor, row) */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t row_stream(uint64_t seed, Role r, int layer, int64_t row) {
    uint64_t tensor = mix64(seed ^ mix64((uint64_t)r * 0x10000 + (uint64_t)layer + 1));
    return mix64(tensor + mix64((uint64_t)row + 1));
}

/* A standard normal, approximately: Irwin–Hall with four 16-bit uniforms of one
 * splitmix64 draw. Mean 0 and variance 1 exactly, tails cut at ±3.46σ — which
 * random weights do not miss — at about a nanosecond a value, where
 * Box–Muller's log/sqrt/sincos would make an 8B-shaped synth CPU-bound. */
static float next_normal(uint64_t *state) {
    uint64_t z = mix64(*state += 0x9E3779B97F4A7C15ULL);
    int32_t sum = (int32_t)(z & 0xffff) + (int32_t)((z >> 16) & 0xffff) + (int32_t)((z >> 32) & 0xffff) + (int32_t)(z >> 48);
    return (float)(sum - 131070) * (1.0f / 37837.23f); /* 4 × (2^16 − 1)/2, sqrt(4 × (2^32 − 1)/12) */
}

/* llama.cpp's rope_freqs for llama3 scaling: per frequency pair, the factor
 * its converter derives from (factor, low/high_freq_factor, original context). */
static void rope_factors(const Shape *s, float *out) {
    const RopeScaling *rs = &s->rope_scaling;
    int hd = head_dim(s);
    double low_wavelen = rs->original_max_position / rs->low_freq_factor;
    double high_wavelen = rs->original_max_position / rs->high_freq_factor;
    for (int i = 0; i < hd / 2; i++) {
        double freq = 1.0 / pow(s->rope_theta, 2.0 * i / hd), wavelen = 2 * M_PI / freq;
        if (wavelen < high_wavelen) out[i] = 1;
        else if (wavelen > low_wavelen) out[i] = rs->factor;
        else {
            double smooth = (rs->original_max_position / wavelen - rs->low_freq_factor) /
                            (rs->high_freq_factor - rs->low_freq_factor);
            out[i] = (float)(1 / ((1 - smooth) / rs->factor + smooth));
        }
    }
}

/* HF stores q/k rows permuted for rotate-half RoPE: within each head, HF row
 * j*(hd/2) + i is Meta's (GGUF's) row 2i + j. Generating by Meta's row index
 * keeps the HF and GGUF files of one seed the same model. */
static int64_t meta_row(const Synth *y, Role r, int64_t row) {
    if (y->gguf || (r != R_Q && r != R_K)) return row;
    int64_t hd = head_dim(&y->s), half = hd / 2, base = row - row % hd, k = row % hd;
    return base + 2 * (k % half) + k / half;
}

/* Row `row` of a tensor, as generated (before rounding to the file's dtype). */
static void generate_row(const Synth *y, Role r, int layer, int64_t row, int64_t cols, float *out) {
    if (r == R_ROPE_FREQS) {
        rope_factors(&y->s, out);
        return;
    }
    uint64_t st = row_stream(y->seed, r, layer, meta_row(y, r, row));
    if (is_vector(r)) {
        for (int64_t i = 0; i < cols; i++) out[i] = (float)(1 + y->norm_noise * next_normal(&st));
        return;
    }
    float std = (float)y->std;
    if (r == lm_head_role(&y->s) && y->planted_token[row]) std *= (float)y->plant_boost;
    for (int64_t i = 0; i < cols; i++) out[i] = std * next_normal(&st);
}

/* ----------------------------------------------------------------------------
 * Planting */

/* TOKEN as the user wrote it: an id, a stored piece, or the text it stands for. */
static int resolve_token(const Vocab *v, int vocab_size, const char *s) {
    long id;
    if (parse_long(s, &id)) return id >= 0 && id < vocab_size ? (int)id : -1;
    int len = (int)strlen(s), t = vocab_find_piece(v, s, len);
    if (t >= 0) return t;
    for (int i = 0; i < v->n_tokens; i++)
        if (v->text_len[i] == len && memcmp(v->text[i], s, (size_t)len) == 0) return i;
    return -1;
}

static void parse_plant(Synth *y, const char *arg) {
    const char *eq = strchr(arg, '=');
    char neuron[64];
    if (!eq || (size_t)(eq - arg) >= sizeof neuron) die(NM_EINPUT, "synth: bad --plant '%s' (want L:N=TOKEN)", arg);
    memcpy(neuron, arg, (size_t)(eq - arg));
    neuron[eq - arg] = 0;
    Plant p = { 0 };
    Error e = { 0 };
    if (parse_neuron(neuron, &p.layer, &p.neuron, &e)) die(NM_EINPUT, "synth: --plant '%s': %s", arg, e.msg);
    if (p.layer >= y->s.n_layers || p.neuron >= y->s.ffn_dim)
        die(NM_EINPUT, "synth: --plant '%s': the model has %d layers of %d neurons", arg, y->s.n_layers, y->s.ffn_dim);
    p.token = resolve_token(y->vocab, y->s.vocab_size, eq + 1);
    if (p.token < 0)
        die(NM_EINPUT, "synth: --plant '%s': '%s' is not a token id below %d, a vocabulary piece or a token's text", arg,
            eq + 1, y->s.vocab_size);
    for (int i = 0; i < y->n_plants; i++)
        if (y->plants[i].layer == p.layer && y->plants[i].neuron == p.neuron)
            die(NM_EINPUT, "synth: --plant '%s': neuron %d:%d is planted twice", arg, p.layer, p.neuron);
    y->plants = xrealloc(y->plants, (size_t)(y->n_plants + 1) * sizeof *y->plants);
    y->plants[y->n_plants++] = p;
    y->planted_token[p.token] = 1;
}

/* The planted row: the LM head's row for the token exactly as the file stores
 * it (rounded or quantised, then widened back), scaled to RMS plant_scale. */
static void make_plant_vector(const Synth *y, Plant *p) {
    int dim = y->s.dim;
    DType t = y->dtype;
    float *row = xmalloc((size_t)dim * sizeof *row);
    void *bytes = xmalloc(dtype_bytes(DT_F32, dim));
    generate_row(y, lm_head_role(&y->s), 0, p->token, dim, row);
    if (!floats_to_dtype(t, row, dim, bytes)) die(NM_ERUNTIME, "synth: cannot store %s", dtype_name(t));
    dtype_info(t)->to_float(bytes, row, dim);
    double ss = 0;
    for (int i = 0; i < dim; i++) ss += (double)row[i] * row[i];
    double rms = sqrt(ss / dim);
    if (!(rms > 0)) die(NM_ERUNTIME, "synth: the LM-head row of token %d is zero after %s rounding", p->token, dtype_name(t));
    for (int i = 0; i < dim; i++) row[i] = (float)(row[i] * (y->plant_scale / rms));
    p->vec = row;
    free(bytes);
}

static const Plant *plant_at(const Synth *y, Role r, int layer, int64_t row) {
    if (!((r == R_UP && y->plant_up) || (r == R_GATE && y->plant_gate))) return NULL;
    for (int i = 0; i < y->n_plants; i++)
        if (y->plants[i].layer == layer && y->plants[i].neuron == row) return &y->plants[i];
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Streaming the weights */

typedef struct {
    Progress progress;
    uint64_t done;
} Stream;

/* Writes one tensor, generated a chunk of rows at a time. */
static int write_tensor(const Synth *y, const Job *j, FILE *f, Stream *st) {
    int64_t rows = j->spec.n_dims == 1 ? 1 : j->spec.shape[0], cols = j->spec.shape[j->spec.n_dims - 1];
    int64_t chunk = (1 << 20) / cols > 0 ? (1 << 20) / cols : 1;
    if (chunk > rows) chunk = rows;
    float *buf = xmalloc((size_t)(chunk * cols) * sizeof *buf);
    void *scratch = xmalloc((size_t)(chunk * cols) * sizeof(float));
    int ok = 1;
    for (int64_t r0 = 0; r0 < rows && ok; r0 += chunk) {
        int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        for (int64_t r = 0; r < n; r++) {
            const Plant *p = plant_at(y, j->role, j->layer, r0 + r);
            if (p) memcpy(buf + r * cols, p->vec, (size_t)cols * sizeof *buf);
            else generate_row(y, j->role, j->layer, r0 + r, cols, buf + r * cols);
        }
        ok = write_floats_as(f, j->spec.type, buf, n * cols, scratch);
        st->done += dtype_bytes(j->spec.type, n * cols);
        progress_update(&st->progress, (int64_t)(st->done >> 20));
    }
    free(buf);
    free(scratch);
    return ok;
}

static uint64_t total_bytes(const Job *jobs, int n) {
    uint64_t t = 0;
    for (int i = 0; i < n; i++) t += tensor_spec_bytes(&jobs[i].spec);
    return t;
}

static int by_job_name(const void *a, const void *b) {
    return strcmp(((const Job *)a)->spec.name, ((const Job *)b)->spec.name);
}

static int write_safetensors(const Synth *y, const char *path, Stream *st, Error *e) {
    int n;
    Job *jobs = plan_jobs(y, &n);
    qsort(jobs, (size_t)n, sizeof *jobs, by_job_name); /* the header's order is the data's */
    TensorSpec *specs = xmalloc((size_t)n * sizeof *specs);
    for (int i = 0; i < n; i++) specs[i] = jobs[i].spec;
    FILE *f = fopen(path, "wb");
    int rc = f ? safetensors_write_header(f, specs, n, path, e)
               : error_set(e, NM_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    progress_start(&st->progress, "synth MiB", (int64_t)(total_bytes(jobs, n) >> 20), st->progress.enabled);
    for (int i = 0; i < n && !rc; i++)
        if (!write_tensor(y, &jobs[i], f, st)) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    progress_end(&st->progress);
    free(specs);
    free(jobs);
    return rc;
}

/* ----------------------------------------------------------------------------
 * The built-in vocabulary: byte-level BPE as Llama 3 has it, in miniature */

/* Llama 3's pre-tokenizer split pattern (tokenizer.json Split Regex). */
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Words that get whole-word tokens, most useful first (planting targets). */
static const char *const builtin_words[] = {
    " the", " dog", " cat", " Lily", " mom", " California", " Paris", " park", " ball", " happy",
    " and", " was", " she", " he", " to", " a", " play", " time", " Once", " upon", " tree", " sun",
    " water", " music", " king", " queen", " red", " blue", " big", " little", "ing", "ed", ".", ",", "\n\n",
};

/* GPT-2's byte-to-character map: printable bytes are themselves, the other 68
 * become U+0100 onwards, so every byte is a visible character. */
static unsigned byte_char(int b) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) return (unsigned)b;
    unsigned n = 0;
    for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
    return 256 + n;
}

static int utf8_put(unsigned cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2; /* byte-level characters stop at U+0143 */
}

static int find_piece(const Vocab *v, const char *p) {
    for (int i = 0; i < v->n_tokens; i++)
        if (strcmp(v->piece[i], p) == 0) return i;
    return -1;
}

static void add_token(Vocab *v, const char *piece, int type) {
    int i = v->n_tokens++;
    v->piece[i] = xstrdup(piece);
    v->piece_len[i] = (int)strlen(piece);
    v->type[i] = type;
}

/* Adds word (bytes) by merging its characters left to right: "Ġ d" → "Ġd",
 * "Ġd o" → "Ġdo", "Ġdo g" → "Ġdog". Each merge's parts are already tokens. */
static void add_word(Vocab *v, const char *word, int room) {
    char chars[64][3], cur[256] = "", next[256];
    int n = 0;
    for (const unsigned char *b = (const unsigned char *)word; *b && n < 64; b++, n++)
        chars[n][utf8_put(byte_char(*b), chars[n])] = 0;
    if (v->n_tokens + n - 1 > room) return;
    strcpy(cur, chars[0]);
    for (int k = 1; k < n; k++) {
        snprintf(next, sizeof next, "%s%s", cur, chars[k]);
        if (find_piece(v, next) < 0) {
            add_token(v, next, TOKEN_NORMAL);
            char merge[300];
            snprintf(merge, sizeof merge, "%s %s", cur, chars[k]);
            v->merges[v->n_merges++] = xstrdup(merge);
        }
        strcpy(cur, next);
    }
}

/* 256 byte tokens (in GPT-2 order: by character), whole words while they fit,
 * then BOS and EOS; ids up to vocab_size beyond that have no piece. */
static void builtin_vocab(Vocab *v, int vocab_size) {
    memset(v, 0, sizeof *v);
    int cap = vocab_size < 1024 ? vocab_size : 1024;
    v->piece = xcalloc((size_t)cap, sizeof *v->piece);
    v->piece_len = xcalloc((size_t)cap, sizeof *v->piece_len);
    v->type = xcalloc((size_t)cap, sizeof *v->type);
    v->merges = xcalloc((size_t)cap, sizeof *v->merges);
    for (unsigned c = 0; c < 0x144; c++)
        for (int b = 0; b < 256; b++)
            if (byte_char(b) == c) {
                char p[3];
                p[utf8_put(c, p)] = 0;
                add_token(v, p, TOKEN_NORMAL);
            }
    for (size_t w = 0; w < sizeof builtin_words / sizeof *builtin_words; w++) add_word(v, builtin_words[w], cap - 2);
    v->bos_id = v->n_tokens;
    add_token(v, "<|begin_of_text|>", TOKEN_CONTROL);
    v->eos_id = v->n_tokens;
    add_token(v, "<|end_of_text|>", TOKEN_CONTROL);
    v->unk_id = v->pad_id = -1;
    v->kind = TOKENIZER_BPE;
    v->add_bos = 1;
    v->ignore_merges = 1;
    v->pre = xstrdup("llama-bpe");
    v->pre_regex = xstrdup(llama3_regex);
    vocab_derive_text(v);
    vocab_build_index(v);
}

/* ----------------------------------------------------------------------------
 * Hugging Face directory: config.json, tokenizer files, model.safetensors */

static int write_json(const char *path, cJSON *o, Error *e) {
    char *s = cJSON_Print(o);
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(s);
    cJSON_Delete(o);
    return ok ? NM_OK : error_set(e, NM_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
}

static const char *torch_dtype(DType t) { return t == DT_BF16 ? "bfloat16" : t == DT_F16 ? "float16" : "float32"; }

static int write_config(const Synth *y, const char *path, Error *e) {
    const Shape *s = &y->s;
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddBoolToObject(o, "attention_bias", 0);
    cJSON_AddNumberToObject(o, "bos_token_id", y->vocab->bos_id);
    cJSON_AddNumberToObject(o, "eos_token_id", y->vocab->eos_id);
    cJSON_AddNumberToObject(o, "head_dim", head_dim(s));
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
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype(y->dtype));
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

/* dir/file into buf (4096 bytes); OUT's length is checked up front, so this fits. */
static void join_path(char *buf, const char *dir, const char *file) {
    if ((size_t)snprintf(buf, 4096, "%s/%s", dir, file) >= 4096) die(NM_EINPUT, "synth: path too long: %s", dir);
}

static int write_hf(const Synth *y, const char *dir, Stream *st, Error *e) {
    char path[4096], from[4096];
    int rc;
#define IN_DIR(buf, d, file) join_path(buf, d, file)
    IN_DIR(path, dir, "config.json");
    if ((rc = write_config(y, path, e))) return rc;
    static const char *const tok_files[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" };
    for (int i = 0; i < 3; i++) {
        IN_DIR(path, dir, tok_files[i]);
        if (y->tokenizer_dir) {
            IN_DIR(from, y->tokenizer_dir, tok_files[i]);
            if (path_exists(from) && (rc = copy_file(from, path, e))) return rc;
        } else if (i == 0 && (rc = write_builtin_tokenizer(y->vocab, path, e))) {
            return rc;
        } else if (i == 1 && (rc = write_builtin_tokenizer_config(y, path, e))) {
            return rc;
        }
    }
    IN_DIR(path, dir, "model.safetensors");
#undef IN_DIR
    return write_safetensors(y, path, st, e);
}

/* ----------------------------------------------------------------------------
 * GGUF file: llama.cpp's keys, the tokenizer in metadata, then the weights */

static int file_type_of(DType t) { return t == DT_F16 ? 1 : t == DT_Q8_0 ? 7 : t == DT_BF16 ? 32 : 0; }

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
                    v->pre ? v->pre : v->pre_regex && strcmp(v->pre_regex, llama3_regex) == 0 ? "llama-bpe" : "default");
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
    const Shape *s = &y->s;
    gguf_kv_str(w, "general.architecture", "llama");
    gguf_kv_str(w, "general.name", "neuromap synth");
    gguf_kv_u32(w, "general.file_type", (uint32_t)file_type_of(y->dtype));
    gguf_kv_u32(w, "llama.vocab_size", (uint32_t)s->vocab_size);
    gguf_kv_u32(w, "llama.context_length", (uint32_t)s->max_seq_len);
    gguf_kv_u32(w, "llama.embedding_length", (uint32_t)s->dim);
    gguf_kv_u32(w, "llama.block_count", (uint32_t)s->n_layers);
    gguf_kv_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn_dim);
    gguf_kv_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim(s));
    gguf_kv_u32(w, "llama.attention.head_count", (uint32_t)s->n_heads);
    gguf_kv_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads);
    gguf_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)s->norm_eps);
    gguf_kv_f32(w, "llama.rope.freq_base", (float)s->rope_theta);
}

static int write_gguf(const Synth *y, const char *path, Stream *st, Error *e) {
    int n;
    Job *jobs = plan_jobs(y, &n);
    GGUFWriter w;
    gguf_writer_init(&w);
    gguf_hparams(y, &w);
    gguf_tokenizer(y, &w);
    for (int i = 0; i < n; i++) gguf_add_tensor(&w, &jobs[i].spec);
    FILE *f = fopen(path, "wb");
    int rc = f ? gguf_write_header(&w, f, path, e) : error_set(e, NM_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    progress_start(&st->progress, "synth MiB", (int64_t)(total_bytes(jobs, n) >> 20), st->progress.enabled);
    for (int i = 0; i < n && !rc; i++)
        if (!write_tensor(y, &jobs[i], f, st) || !gguf_write_padding(&w, f, tensor_spec_bytes(&jobs[i].spec)))
            rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    progress_end(&st->progress);
    gguf_writer_free(&w);
    free(jobs);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Atomic output: write under OUT.tmp-PID, rename over OUT when complete */

/* Removes a directory this command wrote (regular files only, no recursion). */
static void remove_written_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    char path[4096];
    while ((ent = readdir(d)))
        if (ent->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* An existing OUT may be replaced (with --force) when it is what synth writes:
 * a file for GGUF, or for HF an empty directory or one holding a config.json —
 * never an arbitrary directory that happens to be named. */
static void check_replaceable(const char *out, int gguf, int force) {
    if (!path_exists(out)) return;
    if (!force) die(NM_EINPUT, "synth: %s already exists (use --force to replace it)", out);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (gguf && path_is_dir(out)) die(NM_EINPUT, "synth: %s is a directory, not a GGUF file", out);
    if (!gguf && !path_is_dir(out)) die(NM_EINPUT, "synth: %s exists and is not a directory", out);
    if (!gguf && !path_exists(cfg) && rmdir(out) != 0)
        die(NM_EINPUT, "synth: %s is a non-empty directory without config.json; not replacing it", out);
}

static int commit(const char *tmp, const char *out, int gguf, Error *e) {
    if (gguf || !path_exists(out)) {
        if (rename(tmp, out) == 0) return NM_OK;
        return error_set(e, NM_ERUNTIME, "%s: cannot rename into place: %s", out, strerror(errno));
    }
    /* rename(2) cannot replace a non-empty directory: move the old one aside first. */
    char old[4096];
    snprintf(old, sizeof old, "%s.old-%d", out, (int)getpid());
    if (rename(out, old) != 0 || rename(tmp, out) != 0)
        return error_set(e, NM_ERUNTIME, "%s: cannot replace: %s", out, strerror(errno));
    remove_written_dir(old);
    return NM_OK;
}

/* Interrupted (Ctrl-C, kill), synth removes its temporary output: nothing but
 * unlink/rmdir on paths prepared in advance, so the handler stays async-signal-safe. */
static char cleanup_paths[6][4096];
static int n_cleanup;

static void remove_temporary_and_die(int sig) {
    for (int i = 0; i < n_cleanup; i++) unlink(cleanup_paths[i]);
    if (n_cleanup > 1) rmdir(cleanup_paths[0]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_interrupt_remove(const char *tmp, int is_dir) {
    static const char *const files[] = { "config.json", "tokenizer.json", "tokenizer_config.json",
                                         "special_tokens_map.json", "model.safetensors" };
    snprintf(cleanup_paths[0], sizeof cleanup_paths[0], "%s", tmp);
    n_cleanup = 1;
    for (int i = 0; is_dir && i < 5; i++) join_path(cleanup_paths[n_cleanup++], tmp, files[i]);
    signal(SIGINT, remove_temporary_and_die);
    signal(SIGTERM, remove_temporary_and_die);
    signal(SIGHUP, remove_temporary_and_die);
}

static int write_model(const Synth *y, const char *out, Stream *st, Error *e) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%d", out, (int)getpid()) >= sizeof tmp - 64)
        return error_set(e, NM_EINPUT, "%s: path too long", out);
    int rc;
    on_interrupt_remove(tmp, !y->gguf);
    if (y->gguf) {
        rc = write_gguf(y, tmp, st, e);
        if (rc) unlink(tmp);
    } else {
        if (mkdir(tmp, 0777) != 0) return error_set(e, NM_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
        rc = write_hf(y, tmp, st, e);
        if (rc) remove_written_dir(tmp);
    }
    if (!rc) rc = commit(tmp, out, y->gguf, e);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Options */

/* Which options were given: a shape option replaces the preset's value only then. */
enum {
    GIVEN_HIDDEN, GIVEN_FFN, GIVEN_LAYERS, GIVEN_HEADS, GIVEN_KV_HEADS, GIVEN_VOCAB, GIVEN_CONTEXT, GIVEN_SEED,
    GIVEN_STD, GIVEN_NORM_NOISE, GIVEN_PLANT_MATRIX, GIVEN_PLANT_SCALE, GIVEN_PLANT_BOOST, GIVEN_FILE_FORMAT,
    GIVEN_DTYPE, N_GIVEN
};

/* --plant, repeatable: the specs in order, parsed once the vocabulary is known. */
typedef struct {
    const char **spec;
    int n;
} PlantArgs;

static int push_plant(void *dest, int code, const char *arg, Error *e) {
    PlantArgs *p = dest;
    p->spec[p->n++] = arg;
    return NM_OK;
}

static void check_shape(const Synth *y) {
    const Shape *s = &y->s;
    if (s->dim % s->n_heads) die(NM_EINPUT, "synth: --hidden %d is not a multiple of --heads %d", s->dim, s->n_heads);
    if (s->n_heads % s->n_kv_heads) die(NM_EINPUT, "synth: --heads %d is not a multiple of --kv-heads %d", s->n_heads, s->n_kv_heads);
    if (head_dim(s) % 2) die(NM_EINPUT, "synth: head dimension %d (hidden / heads) is odd; RoPE needs pairs", head_dim(s));
    if (y->dtype == DT_Q8_0 && (s->dim % 32 || s->ffn_dim % 32 || (int64_t)s->n_heads * head_dim(s) % 32))
        die(NM_EINPUT, "synth: --dtype q8_0 needs --hidden and --ffn to be multiples of 32 (got %d and %d)", s->dim, s->ffn_dim);
}

int cmd_synth(int argc, char **argv) {
    static const char *const plant_matrices[] = { "up", "gate", "both", NULL };
    static const char *const file_formats[] = { "hf", "gguf", NULL };
    static const char *const dtype_names[] = { "f32", "bf16", "f16", "q8_0", NULL };
    static const DType dtypes[] = { DT_F32, DT_BF16, DT_F16, DT_Q8_0 };
    /* Options are applied after the preset, whatever their order: collect first. */
    int given[N_GIVEN] = { 0 }, plant_matrix = 2, file_format = 0, dtype = 0, force = 0, progress = isatty(2), tied = -1;
    long hidden = 0, ffn = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, context = 0, seed = 0, threads = 0;
    double std_dev = 0, norm_noise = 0, plant_scale = 0, plant_boost = 0;
    const char *preset_name = NULL, *tokenizer_dir = NULL;
    PlantArgs plant = { xcalloc((size_t)argc, sizeof *plant.spec), 0 };
    Option opts[] = {
        { OPT_GROUP("shape (defaults from --preset; tiny when none is given):\n") },
        { OPT_STRING(0, "preset", &preset_name, "NAME",
                     "tiny (hidden 64, FFN 192, 2 layers, vocab 512),\n"
                     "llama-3.2-1b, llama-3.1-8b (the real shapes and RoPE settings)") },
        { OPT_INT(0, "hidden", &hidden, "N", 2, 1 << 16, "hidden size"), .seen = &given[GIVEN_HIDDEN] },
        { OPT_INT(0, "ffn", &ffn, "N", 1, 1 << 20, "FFN size: MLP neurons per layer"), .seen = &given[GIVEN_FFN] },
        { OPT_INT(0, "layers", &layers, "N", 1, 1024, "layers"), .seen = &given[GIVEN_LAYERS] },
        { OPT_INT(0, "heads", &heads, "N", 1, 4096, "attention heads"), .seen = &given[GIVEN_HEADS] },
        { OPT_INT(0, "kv-heads", &kv_heads, "N", 1, 4096, "key/value heads (default: the preset's, at most --heads)"),
          .seen = &given[GIVEN_KV_HEADS] },
        { OPT_INT(0, "context", &context, "N", 1, 1 << 24, "context length (positions)"), .seen = &given[GIVEN_CONTEXT] },
        { OPT_INT(0, "vocab", &vocab, "N", 1, 1 << 22, "vocabulary size (at least 258 without --tokenizer-dir)"),
          .seen = &given[GIVEN_VOCAB] },
        { OPT_SET_INT(0, "tied", &tied, 1, "LM head shared with the token embedding") },
        { OPT_SET_INT(0, "untied", &tied, 0, "... or separate") },
        { OPT_GROUP("\nvocabulary:\n") },
        { OPT_STRING(0, "tokenizer-dir", &tokenizer_dir, "DIR",
                     "use DIR's tokenizer.json (e.g. ../shared/tokenizers/llama-3.1):\n"
                     "copied into an HF OUT, turned into GGUF metadata otherwise;\n"
                     "the vocabulary size follows it. Without it: a small\n"
                     "byte-level BPE (256 byte tokens, a few words, BOS, EOS)."),
          .aliases = "tokenizer" },
        { OPT_GROUP("\nweights:\n") },
        { OPT_CHOICE(0, "file-format", &file_format, "F", file_formats, "hf or gguf (default: gguf when OUT ends in .gguf)"),
          .aliases = "format", .seen = &given[GIVEN_FILE_FORMAT] },
        { OPT_CHOICE(0, "dtype", &dtype, "T", dtype_names,
                     "f32 (default) or bf16; for GGUF also f16 and q8_0\n"
                     "(GGUF keeps norms in F32, as llama.cpp does)"),
          .seen = &given[GIVEN_DTYPE] },
        { OPT_INT(0, "seed", &seed, "S", 0, LONG_MAX, "generator seed (default 1)"), .seen = &given[GIVEN_SEED] },
        { OPT_FLOAT(0, "std", &std_dev, "X", 1e-6, 10, "standard deviation of the matrices (default 0.02)"),
          .seen = &given[GIVEN_STD] },
        { OPT_FLOAT(0, "norm-noise", &norm_noise, "X", 0, 1, "norm weights are 1 + N(0, X^2) (default 0: exactly 1)"),
          .seen = &given[GIVEN_NORM_NOISE] },
        { OPT_GROUP("\nplanting:\n") },
        { OPT_CALL(0, "plant", &plant, "L:N=TOKEN", push_plant, 0,
                   "neuron N of layer L reads TOKEN's unembedding direction.\n"
                   "TOKEN is a token id, a vocabulary piece (\"Ġdog\") or the\n"
                   "text a token stands for (\" dog\"). Repeatable.") },
        { OPT_CHOICE(0, "plant-matrix", &plant_matrix, "M", plant_matrices, "up, gate or both (default both)"),
          .seen = &given[GIVEN_PLANT_MATRIX] },
        { OPT_FLOAT(0, "plant-scale", &plant_scale, "X", 1e-6, 1e6,
                    "RMS of a planted row (default 1, i.e. 50x a random row):\n"
                    "sharpens the planted token's probability under --norm none/gain"),
          .seen = &given[GIVEN_PLANT_SCALE] },
        { OPT_FLOAT(0, "plant-boost", &plant_boost, "B", 1e-3, 1e3,
                    "multiply the planted tokens' LM-head rows by B (default 1):\n"
                    "widens the planted token's margin under every norm, for\n"
                    "shapes too small for it to stand out on its own"),
          .seen = &given[GIVEN_PLANT_BOOST] },
        { OPT_GROUP("\n") },
        { OPT_FLAG(0, "progress", &progress, "progress bar on stderr (default: when stderr is a terminal)") },
        { OPT_FLAG(0, "force", &force, "replace an existing OUT") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    if (options_parse(&help, opts, argc, argv) != 1)
        die(NM_EINPUT, "synth: expected one OUT directory or .gguf file (see 'neuromap synth --help')");
    const char *out = argv[1];

    Synth y = { .dtype = DT_F32, .seed = 1, .std = 0.02, .plant_scale = 1, .plant_boost = 1, .plant_up = 1, .plant_gate = 1 };
    const Preset *preset = &presets[0];
    if (preset_name) {
        preset = NULL;
        for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
            if (strcmp(preset_name, presets[i].name) == 0) preset = &presets[i];
        if (!preset) die(NM_EINPUT, "synth: unknown --preset '%s' (tiny, llama-3.2-1b, llama-3.1-8b)", preset_name);
    }
    y.s = preset->s;
    Shape *s = &y.s;
    if (given[GIVEN_HIDDEN]) s->dim = (int)hidden;
    if (given[GIVEN_FFN]) s->ffn_dim = (int)ffn;
    if (given[GIVEN_LAYERS]) s->n_layers = (int)layers;
    if (given[GIVEN_HEADS]) s->n_heads = (int)heads;
    if (given[GIVEN_KV_HEADS]) s->n_kv_heads = (int)kv_heads;
    else if (given[GIVEN_HEADS]) s->n_kv_heads = s->n_heads < s->n_kv_heads ? s->n_heads : s->n_kv_heads;
    if (given[GIVEN_VOCAB]) s->vocab_size = (int)vocab;
    if (given[GIVEN_CONTEXT]) s->max_seq_len = (int)context;
    if (tied >= 0) s->tied = tied;
    if (given[GIVEN_SEED]) y.seed = (uint64_t)seed;
    if (given[GIVEN_STD]) y.std = std_dev;
    if (given[GIVEN_NORM_NOISE]) y.norm_noise = norm_noise;
    if (given[GIVEN_PLANT_SCALE]) y.plant_scale = plant_scale;
    if (given[GIVEN_PLANT_BOOST]) y.plant_boost = plant_boost;
    y.plant_up = plant_matrix != 1;   /* up or both */
    y.plant_gate = plant_matrix != 0; /* gate or both */
    y.gguf = given[GIVEN_FILE_FORMAT] ? file_format == 1 : str_ends_with(out, ".gguf");
    if (given[GIVEN_DTYPE]) {
        if (dtypes[dtype] != DT_F32 && dtypes[dtype] != DT_BF16 && !y.gguf)
            die(NM_EINPUT, "synth: --dtype %s is for GGUF output only", dtype_names[dtype]);
        y.dtype = dtypes[dtype];
    }
    check_shape(&y);

    /* The vocabulary: a tokenizer directory's, or the built-in one. */
    Model tok;
    Vocab builtin;
    int have_tok = 0;
    if (tokenizer_dir) {
        if (given[GIVEN_VOCAB]) die(NM_EINPUT, "synth: give --vocab or --tokenizer-dir, not both (the tokenizer sets the size)");
        y.tokenizer_dir = tokenizer_dir;
        char tj[4096];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", y.tokenizer_dir);
        if (!path_exists(tj)) die(NM_EINPUT, "synth: --tokenizer-dir %s: no tokenizer.json there", y.tokenizer_dir);
        open_model_or_exit(&tok, y.tokenizer_dir, NULL, 0);
        have_tok = 1;
        y.vocab = &tok.vocab;
        s->vocab_size = tok.vocab.n_tokens;
        if (tok.vocab.n_tokens < 1 || tok.vocab.kind == TOKENIZER_NONE)
            die(NM_EINPUT, "synth: --tokenizer-dir %s: no vocabulary in its tokenizer.json", y.tokenizer_dir);
    } else {
        if (s->vocab_size < 258)
            die(NM_EINPUT, "synth: --vocab %d is too small: the built-in vocabulary needs 258 (256 bytes, BOS, EOS)", s->vocab_size);
        builtin_vocab(&builtin, s->vocab_size);
        y.vocab = &builtin;
    }
    y.planted_token = xcalloc((size_t)s->vocab_size, 1);
    for (int i = 0; i < plant.n; i++) parse_plant(&y, plant.spec[i]);
    for (int i = 0; i < y.n_plants; i++) make_plant_vector(&y, &y.plants[i]);

    check_replaceable(out, y.gguf, force);
    Stream st = { .progress.enabled = progress };
    double t0 = now_seconds();
    Error e = { 0 };
    int rc = write_model(&y, out, &st, &e);
    if (!rc) {
        fprintf(stderr, "neuromap: wrote %s (%s, %s, %d layers, hidden %d, FFN %d, vocab %d, %s head, %d planted) in %.1f s, %.1f MB/s\n",
                out, y.gguf ? "gguf" : "hf", dtype_name(y.dtype), s->n_layers, s->dim, s->ffn_dim, s->vocab_size,
                s->tied ? "tied" : "separate", y.n_plants, now_seconds() - t0,
                (double)st.done / 1e6 / (now_seconds() - t0 > 0 ? now_seconds() - t0 : 1));
        for (int i = 0; i < y.n_plants; i++) {
            char text[256];
            const Vocab *v = y.vocab;
            int t = y.plants[i].token;
            escape_token(t < v->n_tokens ? v->text[t] : "", t < v->n_tokens ? (size_t)v->text_len[t] : 0, text, sizeof text);
            fprintf(stderr, "  planted %d:%d = token %d '%s'\n", y.plants[i].layer, y.plants[i].neuron, t, text);
        }
    }
    for (int i = 0; i < y.n_plants; i++) free(y.plants[i].vec);
    free(y.plants);
    free(y.planted_token);
    free(plant.spec);
    if (have_tok) model_close(&tok);
    else vocab_free(&builtin);
    if (rc) error_exit(&e);
    return NM_OK;
}
