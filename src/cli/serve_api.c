/* serve_api.c — the JSON API of `neuromap serve` (README, "Web atlas").
 *
 * From the atlas (always there):
 *   GET /api/info                         the atlas, the model, the diff atlas
 *   GET /api/neuron/{matrix}/{L}/{N}      show's document (?atlas=diff: the --diff atlas's)
 *   GET /api/find?text=&matrix=&limit=    find's document
 *   GET /api/layer/{matrix}/{L}           the layer's summary (and its diff)
 *   GET /api/examples/{L}/{N}?around=&row=&through=
 *                                         show --examples's document (404 when the
 *                                         atlas holds no activations)
 * From the model (--model; 409 without it):
 *   GET /api/write/{L}/{N}                the down column decoded, and its negation
 *   GET /api/logits/{matrix}/{L}/{N}      a histogram of all the neuron's vocabulary logits
 *   GET /api/related/{L}/{N}?limit=       later up rows reading it; similar down columns
 *   GET /api/effect/{L}/{N}?value=&prompt= the logit change the weights predict for
 *                                         adding value × the down column, beside the
 *                                         observed change with the neuron clamped
 *
 * Handlers validate every path segment and argument themselves and answer
 * 400 (malformed), 404 (no such thing) or 409 (needs the model); nothing
 * here touches a file other than the atlas and the model already open.
 */
#include <cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"

/* ----------------------------------------------------------------------------
 * Replies */

Reply reply_error(int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    char *clean = utf8_sanitize(msg, strlen(msg)); /* a message may quote the user's bytes */
    cJSON_AddStringToObject(o, "error", clean);
    free(clean);
    Reply r = reply_json(o);
    r.status = status;
    return r;
}

Reply reply_json(cJSON *o) {
    Reply r = { .status = MHD_HTTP_OK };
    r.body = cJSON_PrintUnformatted(o);
    r.len = strlen(r.body);
    cJSON_Delete(o);
    return r;
}

/* An error from the library: NM_EINPUT means the request asked for
 * something the atlas or model does not have. */
static Reply reply_from(const Error *e, int input_status) {
    return reply_error(e->code == NM_EINPUT ? input_status : MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", e->msg);
}

/* ----------------------------------------------------------------------------
 * Arguments */

static const char *arg(const Request *r, const char *key) {
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, key);
}

/* Path segment i as a whole number in lo..hi. */
static int seg_int(const Request *r, int i, long lo, long hi, int *out) {
    long v;
    if (i >= r->n_seg || !parse_long(r->seg[i], &v) || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* Query argument key as a whole number in lo..hi, def when absent. */
static int arg_int(const Request *r, const char *key, long def, long lo, long hi, int *out) {
    const char *s = arg(r, key);
    long v = def;
    if (s && (!parse_long(s, &v) || v < lo || v > hi)) return 0;
    *out = (int)v;
    return 1;
}

/* "L/N" of a model's neuron in segments i, i+1. */
static int model_neuron(Server *s, const Request *r, int i, int *layer, int *neuron) {
    return r->n_seg == i + 2 && seg_int(r, i, 0, s->model.cfg.n_layers - 1, layer) &&
           seg_int(r, i + 1, 0, s->model.cfg.ffn_dim - 1, neuron);
}

/* ----------------------------------------------------------------------------
 * From the atlas */

static Reply api_info(Server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "atlas", atlas_info_json(s->atlas, s->atlas_path));
    if (s->has_model) cJSON_AddItemToObject(o, "model", model_info_json(&s->model));
    else cJSON_AddNullToObject(o, "model");
    if (s->diff) cJSON_AddItemToObject(o, "diff", atlas_info_json(s->diff, s->diff_path));
    else cJSON_AddNullToObject(o, "diff");
    cJSON_AddBoolToObject(o, "activations", s->acts != NULL);
    cJSON_AddBoolToObject(o, "generate", s->has_model);
    return reply_json(o);
}

/* ?atlas=diff: the --diff atlas instead (404 without one). */
static const Atlas *which_atlas(Server *s, const Request *r) {
    const char *a = arg(r, "atlas");
    return a && strcmp(a, "diff") == 0 ? s->diff : !a || strcmp(a, "main") == 0 ? s->atlas : NULL;
}

static Reply api_neuron(Server *s, const Request *r) {
    MatrixKind k;
    int layer, neuron;
    const Atlas *atlas = which_atlas(s, r);
    if (!atlas) return reply_error(MHD_HTTP_NOT_FOUND, "atlas must be main or diff (with --diff)");
    const AtlasInfo *in = atlas_info(atlas);
    if (r->n_seg != 5 || !matrix_from_name(r->seg[2], &k) || !seg_int(r, 3, 0, 1 << 30, &layer) || !seg_int(r, 4, 0, 1 << 30, &neuron))
        return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/neuron/{up|gate|down}/{layer}/{neuron}");
    if (layer >= in->n_layers || neuron >= in->ffn_dim)
        return reply_error(MHD_HTTP_NOT_FOUND, "neuron %d:%d is outside the atlas (%d layers of %d neurons)", layer, neuron,
                           in->n_layers, in->ffn_dim);
    cJSON *o;
    Error e = { 0 };
    if (atlas_show_json(atlas, k, layer, neuron, &o, &e)) return reply_from(&e, MHD_HTTP_NOT_FOUND);
    return reply_json(o);
}

static Reply api_find(Server *s, const Request *r) {
    const char *text = arg(r, "text"), *matrix = arg(r, "matrix");
    int limit;
    if (!text || !*text) return reply_error(MHD_HTTP_BAD_REQUEST, "find: give text=TOKEN");
    if (!arg_int(r, "limit", 20, 1, 10000, &limit)) return reply_error(MHD_HTTP_BAD_REQUEST, "find: limit must be in 1..10000");
    cJSON *o;
    Error e = { 0 };
    if (atlas_find_json(s->atlas, text, (int)strlen(text), matrix ? matrix : "up", limit, &o, &e))
        return reply_from(&e, strncmp(e.msg, "matrix", 6) == 0 ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_NOT_FOUND);
    return reply_json(o);
}

static Reply api_layer(Server *s, const Request *r) {
    MatrixKind k;
    int layer, n_tokens;
    if (r->n_seg != 4 || !matrix_from_name(r->seg[2], &k) || !seg_int(r, 3, 0, 1 << 30, &layer) ||
        !arg_int(r, "tokens", 12, 1, 1000, &n_tokens))
        return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/layer/{up|gate|down}/{layer}[?tokens=N]");
    cJSON *o;
    Error e = { 0 };
    if (atlas_layer_json(s->atlas, s->diff, k, layer, n_tokens, &o, &e)) return reply_from(&e, MHD_HTTP_NOT_FOUND);
    return reply_json(o);
}

/* show ATLAS L:N --examples --format json [--around K] [--row R] [--through T]. */
static Reply api_examples(Server *s, const Request *r) {
    int layer, neuron, around;
    const char *row = arg(r, "row"), *through = arg(r, "through");
    if (r->n_seg != 4 || !seg_int(r, 2, 0, 1 << 30, &layer) || !seg_int(r, 3, 0, 1 << 30, &neuron) ||
        !arg_int(r, "around", 12, 0, 1000, &around) || (row && strcmp(row, "gate") && strcmp(row, "up")) ||
        (through && strcmp(through, "head") && strcmp(through, "embed")))
        return reply_error(MHD_HTTP_BAD_REQUEST,
                           "expected /api/examples/{layer}/{neuron}[?around=0..1000][&row=gate|up][&through=head|embed]");
    if (!s->acts) return reply_error(MHD_HTTP_NOT_FOUND, "%s holds no activations (run 'neuromap activations')", s->atlas_path);
    cJSON *o;
    Error e = { 0 };
    int gate = !row || strcmp(row, "gate") == 0, embed = through && strcmp(through, "embed") == 0;
    if (act_neuron_json(s->acts, s->atlas, layer, neuron, around, gate, embed, &o, &e)) return reply_from(&e, MHD_HTTP_NOT_FOUND);
    return reply_json(o);
}

/* ----------------------------------------------------------------------------
 * From the model */

/* What neuron L:N writes when its activation is positive (its down column)
 * and when negative (the column's negation): a GLU's activation
 * silu(gate·x)·(up·x) takes both signs, so both are what it can write. The
 * norms are odd functions, so the negated normed vector is the normed
 * negation. */
static Reply api_write(Server *s, const Request *r) {
    int layer, neuron;
    if (!model_neuron(s, r, 2, &layer, &neuron)) return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/write/{layer}/{neuron} inside the model");
    const AtlasInfo *in = atlas_info(s->atlas);
    int dim = s->model.cfg.dim, top = in->top_k > 0 ? in->top_k : 10, bottom = in->bottom_k;
    float *vec = xmalloc(2 * (size_t)dim * sizeof *vec);
    LensBatch b;
    lens_batch_init(&b, 2, top, bottom);
    pthread_mutex_lock(&s->lens_mu);
    lens_neuron_vectors(&s->lens, MATRIX_DOWN, layer, neuron, 1, vec);
    for (int d = 0; d < dim; d++) vec[dim + d] = -vec[d];
    lens_decode(&s->lens, vec, 2, top, bottom, b.r);
    pthread_mutex_unlock(&s->lens_mu);
    TokenNames tn = lens_vocab_names(&s->model.vocab);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "positive", show_json(&tn, MATRIX_DOWN, layer, neuron, s->lens.norm, &b.r[0], top, bottom));
    cJSON_AddItemToObject(o, "negative", show_json(&tn, MATRIX_DOWN, layer, neuron, s->lens.norm, &b.r[1], top, bottom));
    lens_batch_free(&b);
    free(vec);
    return reply_json(o);
}

enum { LOGIT_BINS = 60 };

/* Every vocabulary logit of one neuron through lens L (malloc'd); the
 * lenses are shared, so one request at a time uses them. */
static float *neuron_logits(Server *s, const Lens *L, MatrixKind k, int layer, int neuron) {
    float *vec = xmalloc((size_t)s->model.cfg.dim * sizeof *vec);
    float *logits = xmalloc((size_t)s->model.cfg.vocab_size * sizeof *logits);
    pthread_mutex_lock(&s->lens_mu);
    lens_neuron_vectors(L, k, layer, neuron, 1, vec);
    lens_logits(L, vec, 1, logits);
    pthread_mutex_unlock(&s->lens_mu);
    free(vec);
    return logits;
}

/* All vocab logits of one neuron, at the atlas's norm, as a histogram:
 * {"matrix","layer","neuron","norm","min","max","bins","counts":[...]}
 * (equal-width bins from min to max; the atlas keeps only the ends). */
static Reply api_logit_histogram(Server *s, const Request *r) {
    MatrixKind k;
    int layer, neuron;
    if (r->n_seg != 5 || !matrix_from_name(r->seg[2], &k) || !model_neuron(s, r, 3, &layer, &neuron))
        return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/logits/{up|gate|down}/{layer}/{neuron} inside the model");
    int vocab = s->model.cfg.vocab_size;
    float *logits = neuron_logits(s, &s->lens, k, layer, neuron);
    float lo = INFINITY, hi = -INFINITY;
    for (int v = 0; v < vocab; v++) {
        if (!isfinite(logits[v])) continue;
        if (logits[v] < lo) lo = logits[v];
        if (logits[v] > hi) hi = logits[v];
    }
    int counts[LOGIT_BINS] = { 0 }, nonfinite = 0;
    for (int v = 0; v < vocab; v++) {
        if (!isfinite(logits[v])) { nonfinite++; continue; }
        int b = hi > lo ? (int)((logits[v] - lo) / (hi - lo) * LOGIT_BINS) : 0;
        counts[b < 0 ? 0 : b >= LOGIT_BINS ? LOGIT_BINS - 1 : b]++;
    }
    cJSON *o = neuron_ref_json(k, layer, neuron);
    cJSON_AddStringToObject(o, "norm", lens_norm_name(s->lens.norm));
    cJSON_AddNumberToObject(o, "min", nonfinite == vocab ? 0 : lo);
    cJSON_AddNumberToObject(o, "max", nonfinite == vocab ? 0 : hi);
    cJSON_AddNumberToObject(o, "nonfinite", nonfinite);
    cJSON_AddNumberToObject(o, "bins", LOGIT_BINS);
    cJSON_AddItemToObject(o, "counts", cJSON_CreateIntArray(counts, LOGIT_BINS));
    free(logits);
    return reply_json(o);
}

typedef struct {
    int layer, neuron;
    float score, cosine;
} Related;

/* Keeps the best `limit` by |score| (or by score when !absolute). */
static void keep_best(Related *best, int *n, int limit, Related x, int absolute) {
    float key = absolute ? fabsf(x.score) : x.score;
    if (*n == limit && key <= (absolute ? fabsf(best[*n - 1].score) : best[*n - 1].score)) return;
    int j = *n < limit ? (*n)++ : *n - 1;
    while (j > 0 && key > (absolute ? fabsf(best[j - 1].score) : best[j - 1].score)) { best[j] = best[j - 1]; j--; }
    best[j] = x;
}

static cJSON *related_list(const Related *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", x[i].layer);
        cJSON_AddNumberToObject(o, "neuron", x[i].neuron);
        cJSON_AddNumberToObject(o, "score", x[i].score);
        cJSON_AddNumberToObject(o, "cosine", x[i].cosine);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static float dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

/* readers: the up rows of later layers that read most what L:N writes,
 * score = W_up[l'][j] · W_down[L][:, N] (raw weights: what the later layer's
 * RMSNorm sees, up to its gain and the residual's scale), by |score|;
 * similar: the down columns of every layer closest in direction (cosine). */
static Reply api_related(Server *s, const Request *r) {
    int layer, neuron, limit;
    if (!model_neuron(s, r, 2, &layer, &neuron) || !arg_int(r, "limit", 10, 1, 100, &limit))
        return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/related/{layer}/{neuron}[?limit=1..100] inside the model");
    const Config *c = &s->model.cfg;
    enum { CHUNK = 512 }; /* rows widened at a time: 8 MB at an 8B model's width, not a whole matrix */
    int dim = c->dim, ffn = c->ffn_dim;
    float *d = xmalloc((size_t)dim * sizeof *d), *rows = xmalloc((size_t)CHUNK * dim * sizeof *rows);
    model_neuron_vectors(&s->model, MATRIX_DOWN, layer, neuron, 1, d);
    float dn = sqrtf(dot(d, d, dim));
    Related *readers = xcalloc((size_t)limit, sizeof *readers), *similar = xcalloc((size_t)limit, sizeof *similar);
    int n_readers = 0, n_similar = 0;
    for (int l = 0; l < c->n_layers; l++) {
        for (int j0 = 0; j0 < ffn; j0 += CHUNK) {
            int count = ffn - j0 < CHUNK ? ffn - j0 : CHUNK;
            if (l > layer) {
                model_neuron_vectors(&s->model, MATRIX_UP, l, j0, count, rows);
                for (int j = 0; j < count; j++) {
                    const float *u = rows + (size_t)j * dim;
                    float sc = dot(u, d, dim), un = sqrtf(dot(u, u, dim));
                    keep_best(readers, &n_readers, limit, (Related){ l, j0 + j, sc, un > 0 && dn > 0 ? sc / (un * dn) : 0 }, 1);
                }
            }
            model_neuron_vectors(&s->model, MATRIX_DOWN, l, j0, count, rows);
            for (int j = 0; j < count; j++) {
                if (l == layer && j0 + j == neuron) continue;
                const float *w = rows + (size_t)j * dim;
                float wn = sqrtf(dot(w, w, dim)), cs = wn > 0 && dn > 0 ? dot(w, d, dim) / (wn * dn) : 0;
                keep_best(similar, &n_similar, limit, (Related){ l, j0 + j, cs, cs }, 0);
            }
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neuron", neuron);
    cJSON_AddItemToObject(o, "readers", related_list(readers, n_readers));
    cJSON_AddItemToObject(o, "similar", related_list(similar, n_similar));
    free(d);
    free(rows);
    free(readers);
    free(similar);
    return reply_json(o);
}

/* The next-token logits after the prompt, with neuron L:N clamped to value
 * at site act when hooked (else none). */
static int prompt_logits(Server *s, const int *ids, int n, int layer, int neuron, float value, int hooked, float *logits,
                         Error *e) {
    Forward *f;
    HookSet h = { .site = SITE_ACT };
    if (hooked) hookset_add(&h, (NeuronHook){ layer, neuron, HOOK_CLAMP, value });
    int rc = forward_new(&s->model, n, s->threads, &f, e);
    if (!rc) {
        rc = forward_set_hooks(f, hooked ? &h : NULL, e);
        if (!rc) rc = forward_run(f, ids, n, 0, 0, logits, 0, e);
        forward_free(f);
    }
    hookset_free(&h);
    return rc;
}

typedef struct {
    int id;
    float delta;
} Delta;

static int by_delta_desc(const void *pa, const void *pb) {
    const Delta *x = pa, *y = pb;
    return x->delta != y->delta ? (x->delta < y->delta ? 1 : -1) : x->id - y->id;
}

/* Predicted: adding value × (down column N of layer L) to the residual
 * moves the logits by value × W_U (g ⊙ d) — the final norm's gain and the
 * LM head, up to the residual's own 1/rms, which the weights cannot know.
 * Observed (with a prompt): the next-token probabilities with the neuron
 * clamped to value at site act (its coefficient of d) against none. */
static Reply api_effect(Server *s, const Request *r) {
    int layer, neuron, limit;
    double value = 10;
    const char *v = arg(r, "value"), *prompt = arg(r, "prompt");
    if (!model_neuron(s, r, 2, &layer, &neuron) || !arg_int(r, "limit", 10, 1, 100, &limit) ||
        (v && (!parse_float(v, &value) || !isfinite(value) || fabs(value) > 1e6)))
        return reply_error(MHD_HTTP_BAD_REQUEST, "expected /api/effect/{layer}/{neuron}?value=V[&prompt=TEXT][&limit=N] inside the model");
    int vocab = s->model.cfg.vocab_size;
    float *logits = neuron_logits(s, &s->lens_gain, MATRIX_DOWN, layer, neuron);
    Delta *dl = xmalloc((size_t)vocab * sizeof *dl);
    for (int t = 0; t < vocab; t++) dl[t] = (Delta){ t, (float)value * logits[t] };
    qsort(dl, (size_t)vocab, sizeof *dl, by_delta_desc);
    if (limit * 2 > vocab) limit = vocab / 2;

    /* The observed side, when a prompt is given. */
    float *p0 = NULL, *p1 = NULL;
    int *ids = NULL, n_ids = 0;
    Error e = { 0 };
    if (prompt && *prompt) {
        PromptOptions po = { 0 };
        p0 = xmalloc((size_t)vocab * sizeof *p0);
        p1 = xmalloc((size_t)vocab * sizeof *p1);
        int rc = prompt_encode(s->tok, &s->model.vocab, &po, prompt, strlen(prompt), &ids, &n_ids, NULL, &e);
        if (!rc && n_ids > s->model.cfg.max_seq_len) rc = error_set(&e, NM_EINPUT, "the prompt is longer than the context");
        if (!rc && n_ids == 0) rc = error_set(&e, NM_EINPUT, "the prompt encodes to no token");
        if (!rc) rc = prompt_logits(s, ids, n_ids, layer, neuron, 0, 0, logits, &e);
        if (!rc) softmax(logits, vocab, 1.0f, p0);
        if (!rc) rc = prompt_logits(s, ids, n_ids, layer, neuron, (float)value, 1, logits, &e);
        if (!rc) softmax(logits, vocab, 1.0f, p1);
        if (rc) {
            free(logits); free(dl); free(p0); free(p1); free(ids);
            return reply_from(&e, MHD_HTTP_BAD_REQUEST);
        }
    }
    TokenNames tn = lens_vocab_names(&s->model.vocab);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neuron", neuron);
    cJSON_AddNumberToObject(o, "value", value);
    cJSON_AddStringToObject(o, "site", "act");
    if (p0) cJSON_AddNumberToObject(o, "prompt_tokens", n_ids);
    for (int side = 0; side < 2; side++) {
        cJSON *list = cJSON_AddArrayToObject(o, side ? "decrease" : "increase");
        for (int i = 0; i < limit; i++) {
            const Delta *x = side ? &dl[vocab - 1 - i] : &dl[i];
            LensToken t = { .id = x->id };
            cJSON *arr = token_list_json(&tn, &t, 1, 1), *one = cJSON_DetachItemFromArray(arr, 0);
            cJSON_Delete(arr);
            cJSON_DeleteItemFromObject(one, "rank");
            cJSON_DeleteItemFromObject(one, "logit");
            cJSON_DeleteItemFromObject(one, "prob");
            cJSON_AddNumberToObject(one, "predicted_dlogit", x->delta);
            if (p0) {
                cJSON_AddNumberToObject(one, "prob_baseline", p0[x->id]);
                cJSON_AddNumberToObject(one, "prob_clamped", p1[x->id]);
            }
            cJSON_AddItemToArray(list, one);
        }
    }
    free(logits); free(dl); free(p0); free(p1); free(ids);
    return reply_json(o);
}

/* ----------------------------------------------------------------------------
 * Routing */

Reply serve_api(Server *s, const Request *r) {
    const char *what = r->n_seg >= 2 ? r->seg[1] : "";
    if (strcmp(what, "info") == 0 && r->n_seg == 2) return api_info(s);
    if (strcmp(what, "neuron") == 0) return api_neuron(s, r);
    if (strcmp(what, "find") == 0 && r->n_seg == 2) return api_find(s, r);
    if (strcmp(what, "layer") == 0) return api_layer(s, r);
    if (strcmp(what, "examples") == 0) return api_examples(s, r);
    int needs_model = strcmp(what, "write") == 0 || strcmp(what, "related") == 0 || strcmp(what, "effect") == 0 ||
                      strcmp(what, "logits") == 0;
    if (needs_model && !s->has_model) return reply_error(MHD_HTTP_CONFLICT, "/api/%s needs the model: start serve with --model", what);
    if (strcmp(what, "write") == 0) return api_write(s, r);
    if (strcmp(what, "related") == 0) return api_related(s, r);
    if (strcmp(what, "effect") == 0) return api_effect(s, r);
    if (strcmp(what, "logits") == 0) return api_logit_histogram(s, r);
    return reply_error(MHD_HTTP_NOT_FOUND, "no such API: see README, \"Web atlas\"");
}
