/* identity.c — a model's content identity (identity.h). */
#include "model/identity.h"

#include <string.h>

/* Integers are hashed as 8 little-endian bytes, so the identity does not
 * depend on the machine's int sizes or byte order. */
static uint64_t hash_int(uint64_t h, int64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return fnv1a64(h, b, sizeof b);
}

static uint64_t hash_str(uint64_t h, const char *s, size_t n) { return fnv1a64(hash_int(h, (int64_t)n), s, n); }

/* A tensor's data: whole when small; else IDENTITY_SAMPLES windows, the
 * first at offset 0 and the last ending at the last byte, evenly between. */
static uint64_t hash_data(uint64_t h, const unsigned char *p, size_t n) {
    if (n <= IDENTITY_WHOLE_BYTES) return fnv1a64(h, p, n);
    size_t span = n - IDENTITY_SAMPLE_BYTES;
    for (int i = 0; i < IDENTITY_SAMPLES; i++) {
        size_t at = (size_t)((unsigned __int128)span * (unsigned)i / (IDENTITY_SAMPLES - 1));
        h = fnv1a64(h, p + at, IDENTITY_SAMPLE_BYTES);
    }
    return h;
}

uint64_t model_content_identity(const Model *m) {
    const Config *c = &m->cfg;
    uint64_t h = hash_int(FNV1A64_INIT, (int64_t)m->identity);
    const int64_t cfg[] = { c->n_layers, c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                            c->max_seq_len, c->tied_embeddings, c->rope_interleaved };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) h = hash_int(h, cfg[i]);
    h = fnv1a64(h, &c->norm_eps, sizeof c->norm_eps); /* IEEE binary32 on every machine we build for */
    h = fnv1a64(h, &c->rope_theta, sizeof c->rope_theta);
    h = hash_int(h, m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const Tensor *t = &m->tensors[i];
        h = hash_str(h, t->name, strlen(t->name));
        h = hash_int(h, t->type);
        h = hash_int(h, t->n_dims);
        for (int d = 0; d < t->n_dims; d++) h = hash_int(h, t->shape[d]);
        h = hash_int(h, (int64_t)t->nbytes);
        if (t->data) h = hash_data(h, t->data, t->nbytes);
    }
    h = hash_int(h, m->vocab.n_tokens);
    for (int i = 0; i < m->vocab.n_tokens; i++) h = hash_str(h, m->vocab.text[i], (size_t)m->vocab.text_len[i]);
    return h;
}
