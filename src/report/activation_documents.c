/* activation_documents.c — show --examples's JSON document (activation_documents.h). */
#include "report/activation_documents.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/steer.h"
#include "report/neuron_out.h"

int act_view_load(const ActAtlas *a, int layer, int neuron, int row, int through_embed, ActNeuronView *v, Error *e) {
    const ActInfo *in = act_atlas_info(a);
    memset(v, 0, sizeof *v);
    v->s.top = xcalloc((size_t)in->top_n + 1, sizeof *v->s.top);
    v->s.bottom = xcalloc((size_t)in->bottom_n + 1, sizeof *v->s.bottom);
    ActReadings w;
    int rc = act_atlas_neuron(a, layer, neuron, &v->s, &w, e);
    if (!rc) rc = agreement_neuron(a, &v->s, &w, row, through_embed, &v->ag, e);
    if (rc) act_view_free(v);
    return rc;
}

void act_view_free(ActNeuronView *v) {
    free(v->s.top);
    free(v->s.bottom);
    v->s.top = v->s.bottom = NULL;
}

const char *act_corpus_status(const ActInfo *in) {
    MappedFile f;
    Error e = { 0 };
    if (map_file(&f, in->corpus, &e)) return "moved";
    uint64_t h = fnv1a64(FNV1A64_INIT, f.data, f.size);
    unmap_file(&f);
    return h == in->corpus_hash ? "ok" : "changed";
}

/* ----------------------------------------------------------------------------
 * Context: the raw bytes of the window's tokens before, at and after the
 * example (parts[0..2]); 0 when the document is not stored. */

static int context_parts(const ActAtlas *a, const ActExample *x, int around, Text parts[3]) {
    int *ids, n;
    Error e = { 0 };
    for (int i = 0; i < 3; i++) {
        parts[i] = (Text){ 0 };
        text_append(&parts[i], "", 0);
    }
    if (act_atlas_doc(a, x->doc, &ids, &n, &e)) return 0;
    const ActInfo *in = act_atlas_info(a);
    TokenNames tn = act_atlas_token_names(a);
    int per = in->window - 1, base = x->window * per - 1; /* content index of window pos p: base + p */
    for (int p = x->pos - around; p <= x->pos + around; p++) {
        if (p < 1 || p >= in->window || base + p >= n) continue;
        int id = ids[base + p];
        Text *t = &parts[p < x->pos ? 0 : p == x->pos ? 1 : 2];
        if (id >= 0 && id < tn.n) text_append(t, tn.text[id], (size_t)tn.len[id]);
    }
    free(ids);
    return 1;
}

static void free_parts(Text parts[3]) {
    for (int i = 0; i < 3; i++) free(parts[i].s);
}

/* parts[0] [[parts[1]]] parts[2], escaped (tables) or made UTF-8 (JSON). */
static char *context_text(Text parts[3], int escape) {
    Text raw = { 0 };
    text_append(&raw, parts[0].s, strlen(parts[0].s));
    text_append(&raw, "[[", 2);
    text_append(&raw, parts[1].s, strlen(parts[1].s));
    text_append(&raw, "]]", 2);
    text_append(&raw, parts[2].s, strlen(parts[2].s));
    size_t len = strlen(raw.s);
    char *out;
    if (escape) {
        size_t cap = 4 * len + 1;
        out = xmalloc(cap);
        escape_token(raw.s, len, out, cap);
    } else {
        out = utf8_sanitize(raw.s, len);
    }
    free(raw.s);
    return out;
}

char *act_example_context(const ActAtlas *a, const ActExample *x, int around, int escape) {
    Text parts[3];
    char *out = context_parts(a, x, around, parts) ? context_text(parts, escape) : xstrdup("(document not stored)");
    free_parts(parts);
    return out;
}

/* ----------------------------------------------------------------------------
 * The document */

static void add_clean(cJSON *o, const char *key, const char *s, size_t n) {
    char *clean = utf8_sanitize(s, n);
    cJSON_AddStringToObject(o, key, clean);
    free(clean);
}

/* "token" (U+FFFD for invalid bytes) and, for such pieces, "token_bytes". */
static void add_token(cJSON *o, const TokenNames *tn, int id) {
    int in = id >= 0 && id < tn->n;
    add_clean(o, "token", in ? tn->text[id] : "", in ? (size_t)tn->len[id] : 0);
    token_bytes_json(o, tn, id);
}

static cJSON *example_json(const ActAtlas *a, const ActExample *x, int around) {
    TokenNames tn = act_atlas_token_names(a);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "doc", x->doc);
    cJSON_AddNumberToObject(o, "window", x->window);
    cJSON_AddNumberToObject(o, "pos", x->pos);
    cJSON_AddNumberToObject(o, "act", x->act);
    cJSON_AddNumberToObject(o, "gate", x->gate);
    cJSON_AddNumberToObject(o, "up", x->up);
    cJSON_AddNumberToObject(o, "token_id", x->token);
    add_token(o, &tn, x->token);
    Text parts[3]; /* the document read once for the three fields */
    int stored = context_parts(a, x, around, parts);
    char *ctx = stored ? context_text(parts, 0) : xstrdup("(document not stored)");
    cJSON_AddStringToObject(o, "context", ctx);
    free(ctx);
    add_clean(o, "left", parts[0].s, strlen(parts[0].s));
    add_clean(o, "right", parts[2].s, strlen(parts[2].s));
    free_parts(parts);
    return o;
}

static cJSON *test_json(const TokenNames *tn, const AgreementTest *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "token_id", t->token);
    add_token(o, tn, t->token);
    cJSON_AddNumberToObject(o, "hits", t->hits);
    cJSON_AddNumberToObject(o, "trials", t->trials);
    cJSON_AddNumberToObject(o, "chance", t->chance);
    if (isnan(t->lift)) cJSON_AddNullToObject(o, "lift");
    else cJSON_AddNumberToObject(o, "lift", t->lift);
    cJSON_AddNumberToObject(o, "p", t->p);
    return o;
}

/* "weights": the map's stored lists of this neuron, per matrix mapped. */
static void weights_json(const Atlas *m, int layer, int neuron, cJSON *o) {
    const AtlasInfo *in = atlas_info(m);
    TokenNames tn = atlas_token_names(m);
    LensBatch b;
    Error e = { 0 };
    lens_batch_init(&b, 1, in->top_k, in->bottom_k);
    cJSON *w = cJSON_AddObjectToObject(o, "weights");
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
        int n_top, n_bottom;
        if (atlas_neuron(m, (MatrixKind)k, layer, neuron, &b.r[0], &n_top, &n_bottom, &e)) continue;
        cJSON *mj = cJSON_AddObjectToObject(w, matrix_name((MatrixKind)k));
        for (int side = 0; side < 2; side++) {
            cJSON *arr = cJSON_AddArrayToObject(mj, side ? "bottom" : "top");
            for (int i = 0; i < (side ? n_bottom : n_top); i++) {
                const LensToken *t = side ? &b.r[0].bottom[i] : &b.r[0].top[i];
                cJSON *x = cJSON_CreateObject();
                cJSON_AddNumberToObject(x, "token_id", t->id);
                add_token(x, &tn, t->id);
                cJSON_AddNumberToObject(x, "logit", t->logit);
                cJSON_AddNumberToObject(x, "prob", t->prob);
                cJSON_AddItemToArray(arr, x);
            }
        }
    }
    lens_batch_free(&b);
}

int act_neuron_json(const ActAtlas *a, const Atlas *map, int layer, int neuron, int around, int row, int through_embed,
                    cJSON **out, Error *e) {
    ActNeuronView v;
    *out = NULL;
    if (act_view_load(a, layer, neuron, row, through_embed, &v, e)) return e->code;
    const ActInfo *in = act_atlas_info(a);
    const ActNeuron *s = &v.s;
    TokenNames tn = act_atlas_token_names(a);
    double cnt = s->count ? (double)s->count : 1;
    cJSON *o = cJSON_CreateObject(), *act = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neuron", neuron);
    cJSON *cj = cJSON_AddObjectToObject(o, "corpus");
    cJSON_AddStringToObject(cj, "path", in->corpus);
    char h[32];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)in->corpus_hash);
    cJSON_AddStringToObject(cj, "hash", h);
    cJSON_AddStringToObject(cj, "status", act_corpus_status(in));
    cJSON_AddItemToObject(o, "activations", act);
    cJSON_AddNumberToObject(act, "count", (double)s->count);
    cJSON_AddNumberToObject(act, "mean", s->mean);
    cJSON_AddNumberToObject(act, "std", sqrt(s->m2 / cnt));
    cJSON_AddNumberToObject(act, "min", s->min);
    cJSON_AddNumberToObject(act, "max", s->max);
    cJSON_AddNumberToObject(act, "density", (double)s->positive / cnt);
    cJSON *sc = cJSON_AddObjectToObject(act, "sign_cases");
    for (int i = 0; i < ACT_SIGN_CASES; i++) cJSON_AddNumberToObject(sc, act_sign_case_names[i], (double)s->sign[i] / cnt);
    cJSON *hist = cJSON_AddArrayToObject(act, "histogram");
    for (int b = 0; b < ACT_HIST_BINS; b++) {
        cJSON *bin = cJSON_CreateObject();
        double lo = act_hist_lo(b), hi = act_hist_hi(b);
        if (isinf(lo)) cJSON_AddNullToObject(bin, "lo");
        else cJSON_AddNumberToObject(bin, "lo", lo);
        if (isinf(hi)) cJSON_AddNullToObject(bin, "hi");
        else cJSON_AddNumberToObject(bin, "hi", hi);
        cJSON_AddNumberToObject(bin, "count", (double)s->hist[b]);
        cJSON_AddItemToArray(hist, bin);
    }
    cJSON *top = cJSON_AddArrayToObject(act, "top"), *bottom = cJSON_AddArrayToObject(act, "bottom");
    for (int i = 0; i < s->n_top; i++) cJSON_AddItemToArray(top, example_json(a, &s->top[i], around));
    for (int i = 0; i < s->n_bottom; i++) cJSON_AddItemToArray(bottom, example_json(a, &s->bottom[i], around));
    cJSON *qs = cJSON_AddArrayToObject(act, "quantiles");
    for (int b = 0; b < ACT_BANDS; b++) {
        cJSON *q = cJSON_CreateObject(), *ex = cJSON_CreateArray();
        cJSON_AddNumberToObject(q, "from", act_band_q[b]);
        cJSON_AddNumberToObject(q, "to", act_band_q[b + 1]);
        cJSON_AddNumberToObject(q, "act_from", s->q[b]);
        cJSON_AddNumberToObject(q, "act_to", b + 1 < ACT_BANDS ? s->q[b + 1] : s->max);
        for (int i = 0; i < s->n_band[b]; i++) cJSON_AddItemToArray(ex, example_json(a, &s->band[b][i], around));
        cJSON_AddItemToObject(q, "examples", ex);
        cJSON_AddItemToArray(qs, q);
    }
    if (map) weights_json(map, layer, neuron, o);
    cJSON *ag = cJSON_AddObjectToObject(o, "agreement");
    cJSON_AddStringToObject(ag, "row", row ? "gate" : "up");
    cJSON_AddStringToObject(ag, "through", through_embed ? "embed" : "head");
    cJSON_AddItemToObject(ag, "writes", test_json(&tn, &v.ag.writes));
    cJSON_AddItemToObject(ag, "reads", test_json(&tn, &v.ag.reads));
    act_view_free(&v);
    *out = o;
    return NM_OK;
}
