/* api.c — the library for language bindings (api.h): thin wrappers over the
 * lens, the tokenizer and the documents, that check what a caller passes. */
#include "report/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/registry.h"
#include "infer/generation.h"
#include "lens/find.h"
#include "report/atlas_documents.h"
#include "report/documents.h"
#include "report/neuron_out.h"
#include "text/prompt.h"

struct ApiModel {
    Model m;
    pthread_mutex_t lock; /* guards the tokenizer's construction */
    Tokenizer *tok;       /* built on first use */
};

int api_model_open(ApiModel **out, const char *path, const char *tokenizer, Error *e) {
    *out = NULL;
    if (!path) return error_set(e, NM_EINPUT, "no model path given");
    ApiModel *h = xcalloc(1, sizeof *h);
    ModelOpenOptions o = { .tokenizer_path = tokenizer, .need_weights = 0 };
    if (model_open(&h->m, path, &o, e)) {
        free(h);
        return e->code;
    }
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return NM_OK;
}

void api_model_close(ApiModel *h) {
    if (!h) return;
    tokenizer_free(h->tok);
    pthread_mutex_destroy(&h->lock);
    model_close(&h->m);
    free(h);
}

void api_free(void *p) { free(p); }

void api_model_shape(const ApiModel *h, int32_t out[5]) {
    const Config *c = &h->m.cfg;
    int w = h->m.has_weights;
    out[0] = w;
    out[1] = w ? c->n_layers : 0;
    out[2] = w ? c->ffn_dim : 0;
    out[3] = w ? c->vocab_size : h->m.vocab.n_tokens;
    out[4] = w ? c->dim : 0;
}

static char *print_json(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *api_info_json(const ApiModel *h) { return print_json(model_info_json(&h->m)); }

/* ----------------------------------------------------------------------------
 * Checks of what a caller passes */

static int need_weights(const ApiModel *h, Error *e) {
    if (h->m.has_weights) return NM_OK;
    return error_set(e, NM_EINPUT, "%s has no weights (a vocabulary only): it can only tokenize", h->m.path);
}

static int parse_names(const char *matrix, const char *norm, MatrixKind *k, LensNorm *n, Error *e) {
    if (matrix && !matrix_from_name(matrix, k))
        return error_set(e, NM_EINPUT, "matrix must be up, gate or down, not '%s'", matrix);
    if (norm && !lens_norm_from_name(norm, n)) return error_set(e, NM_EINPUT, "norm must be full, gain or none, not '%s'", norm);
    return NM_OK;
}

static int check_neuron(const ApiModel *h, int layer, int neuron, Error *e) {
    const Config *c = &h->m.cfg;
    if (layer < 0 || layer >= c->n_layers || neuron < 0 || neuron >= c->ffn_dim)
        return error_set(e, NM_EINPUT, "neuron %d:%d is outside the model (%d layers of %d neurons)", layer, neuron,
                         c->n_layers, c->ffn_dim);
    return NM_OK;
}

static int check_k(const ApiModel *h, int top_k, int bottom_k, Error *e) {
    if (top_k < 0 || bottom_k < 0 || top_k > h->m.cfg.vocab_size || bottom_k > h->m.cfg.vocab_size)
        return error_set(e, NM_EINPUT, "top_k and bottom_k must be in 0..%d (the vocabulary), not %d and %d",
                         h->m.cfg.vocab_size, top_k, bottom_k);
    return NM_OK;
}

static int check_threads(int threads, Error *e) {
    if (threads < 0 || threads > 1024) return error_set(e, NM_EINPUT, "threads must be in 1..1024 (0: all cores), not %d", threads);
    return NM_OK;
}

/* Token ids a caller passes, checked against the model. */
static int check_ids(const ApiModel *h, const int32_t *ids, int n, Error *e) {
    const Config *c = &h->m.cfg;
    if (n < 1 || !ids) return error_set(e, NM_EINPUT, "no tokens given");
    if (n > c->max_seq_len) return error_set(e, NM_EINPUT, "%d tokens do not fit the context (%d)", n, c->max_seq_len);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return error_set(e, NM_EINPUT, "'%d' is not a token id (0..%d)", ids[i], c->vocab_size - 1);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The lens */

int api_decode_neuron(const Model *m, MatrixKind k, int layer, int neuron, LensNorm norm, int threads, int top_k, int bottom_k,
                      LensBatch *b, Error *e) {
    Lens L;
    if (lens_open(&L, m, norm, threads, 0, e)) return e->code;
    float *vec = xmalloc((size_t)m->cfg.dim * sizeof *vec);
    lens_neuron_vectors(&L, k, layer, neuron, 1, vec);
    lens_batch_init(b, 1, top_k, bottom_k);
    lens_decode(&L, vec, 1, top_k, bottom_k, b->r);
    free(vec);
    lens_close(&L);
    return NM_OK;
}

int api_neuron_token(const Model *m, MatrixKind k, int layer, int neuron, LensNorm norm, int token, float *logit, int *rank,
                     double *prob, Error *e) {
    Lens L;
    if (lens_open(&L, m, norm, 1, 0, e)) return e->code;
    lens_set_kernel(&L, LENS_KERNEL_NATIVE); /* find's product: the same logit as find */
    float *vec = xmalloc((size_t)m->cfg.dim * sizeof *vec), *row = xmalloc((size_t)L.vocab * sizeof *row);
    lens_neuron_vectors(&L, k, layer, neuron, 1, vec);
    lens_logits(&L, vec, 1, row);
    int finite = lens_token_in_row(row, L.vocab, token, logit, rank, prob);
    free(vec);
    free(row);
    lens_close(&L);
    return finite ? NM_OK : error_set(e, NM_EINPUT, "%s %d:%d has non-finite logits", matrix_name(k), layer, neuron);
}

int api_show_json(const ApiModel *h, const char *matrix, int layer, int neuron, int top_k, int bottom_k, const char *norm,
                  int threads, char **out, Error *e) {
    MatrixKind k;
    LensNorm n;
    LensBatch b;
    *out = NULL;
    if (need_weights(h, e) || parse_names(matrix, norm, &k, &n, e) || check_neuron(h, layer, neuron, e) ||
        check_k(h, top_k, bottom_k, e) || check_threads(threads, e) ||
        api_decode_neuron(&h->m, k, layer, neuron, n, threads, top_k, bottom_k, &b, e))
        return e->code;
    TokenNames tn = lens_vocab_names(&h->m.vocab);
    *out = print_json(show_json(&tn, k, layer, neuron, n, &b.r[0], top_k, bottom_k));
    lens_batch_free(&b);
    return NM_OK;
}

int api_logits(const ApiModel *h, const char *matrix, int layer, int neuron, const char *norm, float *out, int64_t cap,
               Error *e) {
    MatrixKind k;
    LensNorm n;
    if (need_weights(h, e) || parse_names(matrix, norm, &k, &n, e) || check_neuron(h, layer, neuron, e)) return e->code;
    if (!out || cap < h->m.cfg.vocab_size)
        return error_set(e, NM_EINPUT, "the logits need room for %d floats, not %lld", h->m.cfg.vocab_size, (long long)cap);
    Lens L;
    if (lens_open(&L, &h->m, n, 0, 0, e)) return e->code;
    float *vec = xmalloc((size_t)h->m.cfg.dim * sizeof *vec);
    lens_neuron_vectors(&L, k, layer, neuron, 1, vec);
    lens_logits(&L, vec, 1, out);
    free(vec);
    lens_close(&L);
    return NM_OK;
}

/* Copies one list into the caller's arrays at row i (zeros when non-finite). */
static void put_tokens(const LensToken *t, int n, int64_t i, int32_t *ids, float *logits, float *probs) {
    for (int j = 0; j < n; j++) {
        if (ids) ids[i * n + j] = t[j].id;
        if (logits) logits[i * n + j] = t[j].logit;
        if (probs) probs[i * n + j] = t[j].prob;
    }
}

int api_map(const ApiModel *h, const char *matrix, int l0, int l1, int top_k, int bottom_k, const char *norm, int threads,
            int32_t *top_ids, float *top_logits, float *top_probs, int32_t *bottom_ids, float *bottom_logits,
            float *bottom_probs, double *lse, uint8_t *nonfinite, int64_t cap, Error *e) {
    MatrixKind k;
    LensNorm n;
    if (need_weights(h, e) || parse_names(matrix, norm, &k, &n, e) || check_k(h, top_k, bottom_k, e) ||
        check_threads(threads, e))
        return e->code;
    const Config *c = &h->m.cfg;
    if (l0 < 0 || l1 >= c->n_layers || l0 > l1)
        return error_set(e, NM_EINPUT, "layers %d-%d are outside the model (layers 0-%d)", l0, l1, c->n_layers - 1);
    int64_t total = (int64_t)(l1 - l0 + 1) * c->ffn_dim;
    if (cap < total) return error_set(e, NM_EINPUT, "the arrays hold %lld neurons, not the %lld asked for", (long long)cap, (long long)total);
    Lens L;
    if (lens_open(&L, &h->m, n, threads, 0, e)) return e->code;
    L.dequantise = total >= 256; /* as map does */
    lens_set_kernel(&L, LENS_KERNEL_AUTO);
    enum { CHUNK = 1024 }; /* map's chunk */
    float *vecs = xmalloc((size_t)CHUNK * c->dim * sizeof *vecs);
    LensBatch b;
    lens_batch_init(&b, CHUNK, top_k, bottom_k);
    int64_t row = 0;
    for (int layer = l0; layer <= l1; layer++) {
        for (int first = 0; first < c->ffn_dim; first += CHUNK) {
            int count = c->ffn_dim - first < CHUNK ? c->ffn_dim - first : CHUNK;
            lens_neuron_vectors(&L, k, layer, first, count, vecs);
            lens_decode(&L, vecs, count, top_k, bottom_k, b.r);
            for (int i = 0; i < count; i++, row++) {
                const LensResult *r = &b.r[i];
                put_tokens(r->top, top_k, row, top_ids, top_logits, top_probs);
                put_tokens(r->bottom, bottom_k, row, bottom_ids, bottom_logits, bottom_probs);
                if (lse) lse[row] = r->lse;
                if (nonfinite) nonfinite[row] = (uint8_t)(r->nonfinite != 0);
            }
        }
    }
    lens_batch_free(&b);
    free(vecs);
    lens_close(&L);
    return NM_OK;
}

int api_token_names_json(const ApiModel *h, const int32_t *ids, int n, char **out, Error *e) {
    *out = NULL;
    if (n < 0 || (n && !ids)) return error_set(e, NM_EINPUT, "no ids given");
    int vocab = h->m.has_weights ? h->m.cfg.vocab_size : h->m.vocab.n_tokens;
    LensToken *t = xcalloc((size_t)n + 1, sizeof *t);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            free(t);
            return error_set(e, NM_EINPUT, "'%d' is not a token id (0..%d)", ids[i], vocab - 1);
        }
        t[i].id = ids[i];
    }
    TokenNames tn = lens_vocab_names(&h->m.vocab);
    cJSON *list = token_list_json(&tn, t, n, 1), *names = cJSON_CreateArray(), *x;
    cJSON_ArrayForEach(x, list) cJSON_AddItemToArray(names, cJSON_DetachItemFromObject(x, "token"));
    cJSON_Delete(list);
    free(t);
    *out = print_json(names);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * find */

static int text_token_for(const char *who, const Vocab *v, const char *text, int len, int first_piece, int *token,
                          int *n_pieces, Error *e);

int api_text_token(const Vocab *v, const char *text, int len, int first_piece, int *token, int *n_pieces, Error *e) {
    return text_token_for("find", v, text, len, first_piece, token, n_pieces, e);
}

/* A stored piece's marker of a leading space: sentencepiece's ▁ (U+2581)
 * and byte-level BPE's Ġ (U+0120), each read as " " (an atlas holds texts). */
static char *piece_as_text(const char *arg) {
    char *out = xmalloc(strlen(arg) + 1), *o = out;
    for (const char *p = arg; *p;) {
        if (!strncmp(p, "\xe2\x96\x81", 3)) *o++ = ' ', p += 3;
        else if (!strncmp(p, "\xc4\xa0", 2)) *o++ = ' ', p += 2;
        else *o++ = *p++;
    }
    *o = 0;
    return out;
}

int api_token_arg(const char *who, const TokenNames *tn, const Vocab *v, const char *arg, int first_piece, int *token,
                  int *n_pieces, Error *e) {
    *n_pieces = 1;
    if (arg[0] == '#' && arg[1]) { /* an id */
        char *end;
        long id = strtol(arg + 1, &end, 10);
        if (*end == 0 && arg[1] >= '0' && arg[1] <= '9') {
            if (id >= tn->n) return error_set(e, NM_EINPUT, "token %s is outside the vocabulary (#0-#%d)", arg, tn->n - 1);
            *token = (int)id;
            return NM_OK;
        }
    }
    int len = (int)strlen(arg);
    if (len == 0) return error_set(e, NM_EINPUT, "the token is empty");
    if (v) { /* a piece as stored, then text */
        if ((*token = vocab_find_piece(v, arg, len)) >= 0) return NM_OK;
        return text_token_for(who, v, arg, len, first_piece, token, n_pieces, e);
    }
    char *text = piece_as_text(arg);
    *token = lens_find_token(tn, text, (int)strlen(text));
    free(text);
    if (*token < 0) *token = lens_find_token(tn, arg, len);
    if (*token < 0)
        return error_set(e, NM_EINPUT, "\"%s\" is not one token of the atlas's vocabulary (give #ID, a stored piece, or the model to tokenize text)", arg);
    return NM_OK;
}

static int text_token_for(const char *who, const Vocab *v, const char *text, int len, int first_piece, int *token, int *n_pieces, Error *e) {
    TokenNames tn = lens_vocab_names(v);
    *token = lens_find_token(&tn, text, len);
    *n_pieces = 1;
    if (*token >= 0) return NM_OK;
    Tokenizer *t;
    int *ids = NULL, n = 0, skip = v->add_space_prefix && len > 1 && text[0] == ' ';
    if (tokenizer_new(v, &t, e)) return e->code;
    int rc = tokenizer_encode(t, text + skip, (size_t)(len - skip), 0, &ids, &n, e);
    tokenizer_free(t);
    if (rc) return rc;
    if (n == 0) rc = error_set(e, NM_EINPUT, "%s%s\"%s\" encodes to no token", who ? who : "", who ? ": " : "", text);
    else if (!first_piece && n > 1) {
        enum { SHOWN = 8 };
        char pieces[SHOWN * 64 + 16] = "";
        for (int i = 0; i < n && i < SHOWN; i++) {
            char *p = token_text(&tn, ids[i]);
            size_t at = strlen(pieces);
            snprintf(pieces + at, sizeof pieces - at, "%s\"%.48s\"", i ? " + " : "", p);
            free(p);
        }
        if (n > SHOWN) strcat(pieces, " + ...");
        rc = error_set(e, NM_EINPUT, "%s%s\"%s\" is %d tokens: %s; give one token, or --first-piece", who ? who : "", who ? ": " : "", text, n, pieces);
    } else {
        *token = ids[0];
        *n_pieces = n;
    }
    free(ids);
    return rc;
}

int api_find_json(const ApiModel *h, const char *text, const char *matrices, int limit, const char *norm, int agreement,
                  int first_piece, char **out, Error *e) {
    LensNorm n;
    unsigned mask;
    *out = NULL;
    if (need_weights(h, e) || parse_names(NULL, norm, NULL, &n, e)) return e->code;
    if (!matrices || !lens_matrix_mask(matrices, &mask))
        return error_set(e, NM_EINPUT, "matrix must be up, gate, down or all, not '%s'", matrices ? matrices : "");
    if (limit < 1 || limit > 10000) return error_set(e, NM_EINPUT, "limit must be in 1..10000, not %d", limit);
    if (!text || !text[0]) return error_set(e, NM_EINPUT, "find: TEXT is empty");
    int token, pieces;
    if (api_text_token(&h->m.vocab, text, (int)strlen(text), first_piece, &token, &pieces, e)) return e->code;
    Lens L;
    if (lens_open(&L, &h->m, n, 1, 0, e)) return e->code;
    lens_set_kernel(&L, LENS_KERNEL_NATIVE); /* as find: one kernel for the ranking and the decode */
    int64_t total = (int64_t)__builtin_popcount(mask) * h->m.cfg.n_layers * h->m.cfg.ffn_dim, nonfinite = 0;
    if (limit > total) limit = (int)total;
    LensHit *hits = xcalloc((size_t)limit, sizeof *hits);
    int found = lens_find(&L, mask, token, limit, agreement, hits, &nonfinite, NULL, NULL);
    TokenNames tn = lens_vocab_names(&h->m.vocab);
    *out = print_json(find_json(&tn, token, matrices, n, "model", limit, nonfinite, hits, found, agreement));
    free(hits);
    lens_close(&L);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The tokenizer */

static int tokenizer_of(ApiModel *h, Tokenizer **t, Error *e) {
    int rc = NM_OK;
    pthread_mutex_lock(&h->lock);
    if (!h->tok) rc = tokenizer_new(&h->m.vocab, &h->tok, e);
    *t = h->tok;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int api_tokenize(ApiModel *h, const char *text, size_t len, int bos, int special, int32_t **ids, int *n, Error *e) {
    Tokenizer *t;
    *ids = NULL, *n = 0;
    if (!text) return error_set(e, NM_EINPUT, "no text given");
    if (tokenizer_of(h, &t, e)) return e->code;
    PromptOptions po = { .bos = bos > 0 ? 1 : bos < 0 ? -1 : 0, .special = special };
    int *got;
    if (prompt_encode(t, &h->m.vocab, &po, text, len, &got, n, NULL, e)) return e->code;
    _Static_assert(sizeof(int) == sizeof(int32_t), "ids are handed out as int32");
    *ids = (int32_t *)got;
    return NM_OK;
}

int api_detokenize(ApiModel *h, const int32_t *ids, int n, int special, char **out, size_t *len, Error *e) {
    Tokenizer *t;
    *out = NULL, *len = 0;
    if (n < 0 || (n > 0 && !ids)) return error_set(e, NM_EINPUT, "no ids given");
    if (tokenizer_of(h, &t, e)) return e->code;
    int vocab = tokenizer_n_tokens(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) return error_set(e, NM_EINPUT, "'%d' is not a token id (0..%d)", ids[i], vocab - 1);
    *out = tokenizer_decode_flags(t, (const int *)ids, n, special ? TOK_SPECIAL : 0, len);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Atlases (opened with atlas_open) */

int api_atlas_show_json(const Atlas *a, const char *name, const char *matrix, int layer, int neuron, int top_k, int bottom_k,
                        char **out, Error *e) {
    const AtlasInfo *in = atlas_info(a);
    MatrixKind k;
    *out = NULL;
    if (parse_names(matrix, NULL, &k, NULL, e)) return e->code;
    if (top_k > in->top_k || bottom_k > in->bottom_k)
        return error_set(e, NM_EINPUT, "show: %s holds the top %d and bottom %d tokens of each neuron; use the model for more",
                         name, in->top_k, in->bottom_k);
    LensBatch b;
    lens_batch_init(&b, 1, in->top_k, in->bottom_k);
    int n_top, n_bottom;
    if (atlas_neuron(a, k, layer, neuron, &b.r[0], &n_top, &n_bottom, e)) {
        lens_batch_free(&b);
        return e->code;
    }
    if (top_k >= 0 && top_k < n_top) n_top = top_k; /* < 0: every stored one, as show without --top-k */
    if (bottom_k >= 0 && bottom_k < n_bottom) n_bottom = bottom_k;
    TokenNames tn = atlas_token_names(a);
    *out = print_json(show_json(&tn, k, layer, neuron, in->norm, &b.r[0], n_top, n_bottom));
    lens_batch_free(&b);
    return NM_OK;
}

int api_atlas_find_json(const Atlas *a, const char *name, const char *text, const char *matrices, int limit, char **out,
                        Error *e) {
    unsigned mask;
    *out = NULL;
    if (!matrices || !lens_matrix_mask(matrices, &mask))
        return error_set(e, NM_EINPUT, "matrix must be up, gate, down or all, not '%s'", matrices ? matrices : "");
    if (limit < 1 || limit > 10000) return error_set(e, NM_EINPUT, "limit must be in 1..10000, not %d", limit);
    if (!text || !text[0]) return error_set(e, NM_EINPUT, "find: TEXT is empty");
    TokenNames tn = atlas_token_names(a);
    int token = lens_find_token(&tn, text, (int)strlen(text));
    if (token < 0)
        return error_set(e, NM_EINPUT, "find: '%s' is not a token of %s's vocabulary (an atlas cannot tokenize; give the model)",
                         text, name);
    AtlasHit *found;
    int n;
    if (atlas_find(a, token, mask, limit, &found, &n, e)) return e->code;
    LensHit *hits = xcalloc((size_t)n + 1, sizeof *hits);
    for (int i = 0; i < n; i++)
        hits[i] = (LensHit){ found[i].matrix, found[i].layer, found[i].neuron, found[i].rank, found[i].top_id, found[i].logit, -1, found[i].prob };
    *out = print_json(find_json(&tn, token, matrices, atlas_info(a)->norm, "atlas", limit, atlas_count_nonfinite(a, mask),
                                hits, n, 0));
    free(found);
    free(hits);
    return NM_OK;
}

/* Growing text, for the records. */
typedef struct {
    const TokenNames *tn;
    char *s;
    size_t len, cap;
} Lines;

static int add_record(void *ctx, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top, int n_bottom) {
    Lines *x = ctx;
    char *line = print_json(neuron_json(x->tn, k, layer, neuron, r, n_top, n_bottom));
    size_t n = strlen(line);
    if (x->len + n + 2 > x->cap) x->s = xrealloc(x->s, x->cap = 2 * (x->len + n + 2));
    memcpy(x->s + x->len, line, n);
    x->len += n;
    x->s[x->len++] = '\n';
    x->s[x->len] = 0;
    free(line);
    return NM_OK;
}

int api_atlas_records_jsonl(const Atlas *a, char **out, Error *e) {
    TokenNames tn = atlas_token_names(a);
    Lines x = { .tn = &tn, .s = xcalloc(1, 1), .cap = 1 };
    *out = NULL;
    if (atlas_each_neuron(a, add_record, &x, e)) {
        free(x.s);
        return e->code;
    }
    *out = x.s;
    return NM_OK;
}

char *api_atlas_info_json(const Atlas *a) { return print_json(atlas_info_json(a, NULL)); }

/* ----------------------------------------------------------------------------
 * The forward pass */

typedef struct {
    float *out;
    int n_layers, ffn;
} Capture;

static void capture_act(void *ctx, int layer, int pos, int T, const float *gate, const float *up, const float *act) {
    const Capture *c = ctx;
    for (int t = 0; t < T; t++)
        memcpy(c->out + ((size_t)(pos + t) * c->n_layers + layer) * c->ffn, act + (size_t)t * c->ffn, (size_t)c->ffn * sizeof *act);
}

int api_activations(const ApiModel *h, const int32_t *ids, int n, int threads, float *out, int64_t cap, Error *e) {
    if (need_weights(h, e) || check_threads(threads, e) || check_ids(h, ids, n, e)) return e->code;
    const Config *c = &h->m.cfg;
    if (!out || cap / n / c->n_layers < c->ffn_dim)
        return error_set(e, NM_EINPUT, "the activations need room for %d x %d x %d floats", n, c->n_layers, c->ffn_dim);
    Forward *f;
    if (forward_new(&h->m, n, threads, &f, e)) return e->code;
    Capture cap_ctx = { out, c->n_layers, c->ffn_dim };
    forward_set_capture(f, capture_act, &cap_ctx);
    float *logits = xmalloc((size_t)c->vocab_size * sizeof *logits);
    int rc = forward_run(f, (const int *)ids, n, 0, n, logits, 0, e);
    free(logits);
    forward_free(f);
    return rc;
}

/* The hooks --clamp, --scale, --clamp-site and --clamp-positions ask for. */
static int resolve_hooks(const ApiModel *h, const char *const *clamp, int n_clamp, const char *const *scale, int n_scale,
                         const char *site, const char *positions, HookSet *hooks, Error *e) {
    memset(hooks, 0, sizeof *hooks);
    if (n_clamp < 0 || n_scale < 0 || (n_clamp && !clamp) || (n_scale && !scale))
        return error_set(e, NM_EINPUT, "bad clamp or scale list");
    HookOptions ho = { .clamp = (const char **)clamp, .scale = (const char **)scale, .n_clamp = n_clamp, .n_scale = n_scale };
    if (site && !hook_site_from_name(site, &ho.site))
        return error_set(e, NM_EINPUT, "site must be up or act, not '%s'", site);
    if (positions && strcmp(positions, "all") != 0 && strcmp(positions, "generated") != 0)
        return error_set(e, NM_EINPUT, "positions must be all or generated, not '%s'", positions);
    ho.generated_only = positions && strcmp(positions, "generated") == 0;
    return hook_options_resolve(&ho, h->m.cfg.n_layers, h->m.cfg.ffn_dim, hooks, e);
}

int api_forward_logits(const ApiModel *h, const int32_t *ids, int n, const char *const *clamp, int n_clamp,
                       const char *const *scale, int n_scale, const char *site, const char *positions, int threads,
                       float *out, int64_t cap, Error *e) {
    const Config *c = &h->m.cfg;
    HookSet hooks;
    if (need_weights(h, e) || check_threads(threads, e) || check_ids(h, ids, n, e)) return e->code;
    if (!out || cap / n < c->vocab_size) return error_set(e, NM_EINPUT, "the logits need room for %d x %d floats", n, c->vocab_size);
    if (resolve_hooks(h, clamp, n_clamp, scale, n_scale, site, positions, &hooks, e)) return e->code;
    Forward *f = NULL;
    int rc = forward_new(&h->m, n, threads, &f, e);
    if (!rc) rc = forward_set_hooks(f, hooks.n ? &hooks : NULL, e);
    /* --clamp-positions generated: from the last token on, as probe does. */
    if (!rc) rc = forward_run(f, (const int *)ids, n, 0, hooks.generated_only ? n - 1 : 0, out, 1, e);
    if (f) forward_free(f);
    hookset_free(&hooks);
    return rc;
}

/* `generate --compare --format json`: the baseline and, with hooks, the
 * hooked continuation from the same seed. */
int api_generate_json(ApiModel *h, const char *prompt, int chat, const char *system, int n_new, double temp, double top_p,
                      int64_t seed, const char *const *clamp, int n_clamp, const char *const *scale, int n_scale,
                      const char *site, const char *positions, int threads, char **out, Error *e) {
    *out = NULL;
    if (need_weights(h, e) || check_threads(threads, e)) return e->code;
    if (n_new < 1 || n_new > 1 << 24) return error_set(e, NM_EINPUT, "n must be a number of tokens from 1, not %d", n_new);
    if (!(temp >= 0 && temp <= 100)) return error_set(e, NM_EINPUT, "temperature must be from 0 to 100, not %g", temp);
    if (!(top_p > 0 && top_p <= 1)) return error_set(e, NM_EINPUT, "top_p must be a probability mass in (0, 1], not %g", top_p);
    if (seed < 0) return error_set(e, NM_EINPUT, "seed must be a non-negative integer");
    PromptOptions po = { .chat = chat || system, .system = system };
    const Config *c = &h->m.cfg;
    Tokenizer *tok;
    HookSet hooks = { 0 };
    int *ids = NULL, n_prompt = 0, dropped, ctx = c->max_seq_len;
    if (tokenizer_of(h, &tok, e) || resolve_hooks(h, clamp, n_clamp, scale, n_scale, site, positions, &hooks, e) ||
        generation_prompt(&h->m, tok, &po, prompt, &ids, &n_prompt, e) || fit_prompt(ids, &n_prompt, ctx - 1, 0, h->m.vocab.bos_id, &dropped, e)) {
        free(ids);
        hookset_free(&hooks);
        return e->code;
    }
    if (n_new > ctx - n_prompt) n_new = ctx - n_prompt; /* as generate, which says so */
    Generation g = { .m = &h->m, .tok = tok, .prompt = ids, .n_prompt = n_prompt, .n_new = n_new, .temp = (float)temp,
                     .top_p = (float)top_p, .seed = (uint64_t)seed };
    Continuation base = { 0 }, hooked = { 0 };
    int rc = forward_new(&h->m, n_prompt + n_new, threads, &g.f, e);
    if (!rc) rc = generation_run(&g, NULL, &base, e);
    if (!rc && hooks.n) rc = generation_run(&g, &hooks, &hooked, e);
    if (!rc) *out = print_json(generation_json(ids, n_prompt, &base, hooks.n ? &hooked : NULL, &hooks));
    continuation_free(&base);
    continuation_free(&hooked);
    forward_free(g.f);
    free(ids);
    hookset_free(&hooks);
    return rc;
}
