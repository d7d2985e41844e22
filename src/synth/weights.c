/* weights.c — the seeded generator, planted rows, and one tensor streamed to
 * a file (synth.h tells why every row is a pure function of its address). */
#include "synth/synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/rope.h"

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

/* llama.cpp's rope_freqs for llama3 scaling (model/rope.c): per frequency
 * pair, the divisor its converter derives from the preset's scaling. */
static void rope_factors(const SynthShape *s, float *out) {
    Config c = { .head_dim = synth_head_dim(s), .rope_theta = (float)s->rope_theta, .rope_scaling = s->rope_scaling };
    rope_llama3_divisors(&c, out);
}

/* HF stores q/k rows permuted for rotate-half RoPE: within each head, HF row
 * j*(hd/2) + i is Meta's (GGUF's) row 2i + j. Generating by Meta's row index
 * keeps the HF and GGUF files of one seed the same model. */
static int64_t meta_row(const Synth *y, Role r, int64_t row) {
    if (y->gguf || (r != R_Q && r != R_K)) return row;
    int64_t hd = synth_head_dim(&y->s), half = hd / 2, base = row - row % hd, k = row % hd;
    return base + 2 * (k % half) + k / half;
}

void synth_generate_row(const Synth *y, Role r, int layer, int64_t row, int64_t cols, float *out) {
    if (r == R_ROPE_FREQS) {
        rope_factors(&y->s, out);
        return;
    }
    uint64_t st = row_stream(y->seed, r, layer, meta_row(y, r, row));
    if (synth_is_vector(r)) {
        for (int64_t i = 0; i < cols; i++) out[i] = (float)(1 + y->norm_noise * next_normal(&st));
        return;
    }
    float std = (float)y->std;
    if (r == lm_head_role(&y->s) && y->planted_token[row]) std *= (float)y->plant_boost;
    for (int64_t i = 0; i < cols; i++) out[i] = std * next_normal(&st);
}

/* ----------------------------------------------------------------------------
 * Planting */

int synth_resolve_token(const Vocab *v, int vocab_size, const char *s) {
    long id;
    if (parse_long(s, &id)) return id >= 0 && id < vocab_size ? (int)id : -1;
    int len = (int)strlen(s), t = vocab_find_piece(v, s, len);
    if (t >= 0) return t;
    for (int i = 0; i < v->n_tokens; i++)
        if (v->text_len[i] == len && memcmp(v->text[i], s, (size_t)len) == 0) return i;
    return -1;
}

void synth_add_plant(Synth *y, int layer, int neuron, int token) {
    y->plants = xrealloc(y->plants, (size_t)(y->n_plants + 1) * sizeof *y->plants);
    y->plants[y->n_plants++] = (SynthPlant){ .layer = layer, .neuron = neuron, .token = token };
    y->planted_token[token] = 1;
}

/* The planted row: the LM head's row for the token exactly as the file stores
 * it (rounded or quantised, then widened back), scaled to RMS plant_scale. */
static int make_plant_vector(const Synth *y, SynthPlant *p, Error *e) {
    int dim = y->s.dim;
    DType t = y->dtype;
    float *row = xmalloc((size_t)dim * sizeof *row);
    void *bytes = xmalloc(dtype_bytes(DT_F32, dim));
    synth_generate_row(y, lm_head_role(&y->s), 0, p->token, dim, row);
    int rc = NM_OK;
    if (!floats_to_dtype(t, row, dim, bytes)) {
        rc = error_set(e, NM_ERUNTIME, "synth: cannot store %s", dtype_name(t));
        goto done;
    }
    dtype_info(t)->to_float(bytes, row, dim);
    double ss = 0;
    for (int i = 0; i < dim; i++) ss += (double)row[i] * row[i];
    double rms = sqrt(ss / dim);
    if (!(rms > 0)) {
        rc = error_set(e, NM_ERUNTIME, "synth: the LM-head row of token %d is zero after %s rounding", p->token, dtype_name(t));
        goto done;
    }
    for (int i = 0; i < dim; i++) row[i] = (float)(row[i] * (y->plant_scale / rms));
    p->vec = row;
    row = NULL;
done:
    free(row);
    free(bytes);
    return rc;
}

static const SynthPlant *plant_at(const Synth *y, Role r, int layer, int64_t row) {
    if (!((r == R_UP && y->plant_up) || (r == R_GATE && y->plant_gate))) return NULL;
    for (int i = 0; i < y->n_plants; i++)
        if (y->plants[i].layer == layer && y->plants[i].neuron == row) return &y->plants[i];
    return NULL;
}

int synth_prepare_plants(Synth *y, Error *e) {
    for (int i = 0; i < y->n_plants; i++) {
        int rc = make_plant_vector(y, &y->plants[i], e);
        if (rc) return rc;
    }
    return NM_OK;
}

void synth_free_plants(Synth *y) {
    for (int i = 0; i < y->n_plants; i++) free(y->plants[i].vec);
    free(y->plants);
    y->plants = NULL;
    y->n_plants = 0;
}

/* ----------------------------------------------------------------------------
 * Streaming the weights */

/* A chunk of rows at a time, about a megabyte of floats. */
int synth_write_tensor(const Synth *y, const Job *j, FILE *f, SynthProgress *st) {
    int64_t rows = j->spec.n_dims == 1 ? 1 : j->spec.shape[0], cols = j->spec.shape[j->spec.n_dims - 1];
    int64_t chunk = (1 << 20) / cols > 0 ? (1 << 20) / cols : 1;
    if (chunk > rows) chunk = rows;
    float *buf = xmalloc((size_t)(chunk * cols) * sizeof *buf);
    void *scratch = xmalloc((size_t)(chunk * cols) * sizeof(float));
    int ok = 1;
    for (int64_t r0 = 0; r0 < rows && ok; r0 += chunk) {
        int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        for (int64_t r = 0; r < n; r++) {
            const SynthPlant *p = plant_at(y, j->role, j->layer, r0 + r);
            if (p) memcpy(buf + r * cols, p->vec, (size_t)cols * sizeof *buf);
            else synth_generate_row(y, j->role, j->layer, r0 + r, cols, buf + r * cols);
        }
        ok = write_floats_as(f, j->spec.type, buf, n * cols, scratch);
        st->done += dtype_bytes(j->spec.type, n * cols);
        progress_update(&st->progress, (int64_t)(st->done >> 20));
    }
    free(buf);
    free(scratch);
    return ok;
}
