/* atlas_documents.c — documents read from an atlas (atlas_documents.h). */
#include "report/atlas_documents.h"

#include <stdlib.h>
#include <string.h>

#include "report/documents.h"
#include "report/neuron_out.h"

int atlas_show_json(const Atlas *a, MatrixKind k, int layer, int neuron, cJSON **out, Error *e) {
    const AtlasInfo *in = atlas_info(a);
    LensBatch b;
    int n_top, n_bottom;
    *out = NULL;
    lens_batch_init(&b, 1, in->top_k, in->bottom_k);
    TokenNames tn = atlas_token_names(a);
    int rc = atlas_neuron(a, k, layer, neuron, &b.r[0], &n_top, &n_bottom, e);
    if (!rc) *out = show_json(&tn, k, layer, neuron, in->norm, &b.r[0], n_top, n_bottom);
    lens_batch_free(&b);
    return rc;
}

int atlas_find_json(const Atlas *a, const char *text, int len, const char *matrices, int limit, cJSON **out, Error *e) {
    unsigned mask;
    *out = NULL;
    if (!lens_matrix_mask(matrices, &mask)) return error_set(e, NM_EINPUT, "matrix must be up, gate, down or all, not '%s'", matrices);
    if (len <= 0) return error_set(e, NM_EINPUT, "the text is empty");
    TokenNames tn = atlas_token_names(a);
    int token = lens_find_token(&tn, text, len);
    if (token < 0) return error_set(e, NM_EINPUT, "'%.*s' is not a token of the atlas's vocabulary", len > 200 ? 200 : len, text);
    AtlasHit *found;
    int n;
    int rc = atlas_find(a, token, mask, limit, &found, &n, e);
    if (rc) return rc;
    /* The same records cmd_find.c builds from an atlas: no partner (that needs the model). */
    LensHit *hits = xcalloc((size_t)n + 1, sizeof *hits);
    for (int i = 0; i < n; i++)
        hits[i] = (LensHit){ found[i].matrix, found[i].layer, found[i].neuron, found[i].rank, found[i].top_id, found[i].logit, -1, found[i].prob };
    *out = find_json(&tn, token, matrices, atlas_info(a)->norm, "atlas", limit, atlas_count_nonfinite(a, mask), hits, n, 0);
    free(found);
    free(hits);
    return NM_OK;
}

cJSON *atlas_info_json(const Atlas *a, const char *path) {
    const AtlasInfo *in = atlas_info(a);
    char id[32];
    cJSON *o = cJSON_CreateObject();
    if (path) cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "version", in->version);
    cJSON *ident = cJSON_AddObjectToObject(o, "identity"); /* as diff --format json names them */
    snprintf(id, sizeof id, "%016llx", (unsigned long long)in->identity);
    cJSON_AddStringToObject(ident, "layout", id);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)in->content_identity);
    cJSON_AddStringToObject(ident, "content", id);
    cJSON_AddStringToObject(o, "model_path", in->model_path);
    cJSON_AddStringToObject(o, "model_format", in->model_format);
    cJSON_AddNumberToObject(o, "n_layers", in->n_layers);
    cJSON_AddNumberToObject(o, "dim", in->dim);
    cJSON_AddNumberToObject(o, "ffn_dim", in->ffn_dim);
    cJSON_AddNumberToObject(o, "vocab_size", in->vocab_size);
    cJSON_AddStringToObject(o, "norm", lens_norm_name(in->norm));
    cJSON_AddNumberToObject(o, "top_k", in->top_k);
    cJSON_AddNumberToObject(o, "bottom_k", in->bottom_k);
    cJSON_AddStringToObject(o, "matrices", in->matrices);
    cJSON_AddStringToObject(o, "layers", in->layers);
    cJSON_AddStringToObject(o, "neurons", in->neurons);
    cJSON_AddStringToObject(o, "kernel", in->kernel);
    cJSON_AddBoolToObject(o, "prefilter", in->prefilter);
    cJSON_AddNumberToObject(o, "prob_tol", in->prob_tol);
    return o;
}

/* ----------------------------------------------------------------------------
 * A layer's summary */

typedef struct {
    int id, count;
} TokenCount;

static int by_count_desc(const void *pa, const void *pb) {
    const TokenCount *x = pa, *y = pb;
    return x->count != y->count ? y->count - x->count : x->id - y->id;
}

typedef struct {
    int neuron;
    float prob, other_prob;
    int top, other_top;
} Changed;

/* The most confident disagreement first: a neuron that was sure of one
 * token and is now sure of another changed the most. */
static int by_confidence_desc(const void *pa, const void *pb) {
    const Changed *x = pa, *y = pb;
    float cx = x->prob + x->other_prob, cy = y->prob + y->other_prob;
    return cx != cy ? (cx < cy ? 1 : -1) : x->neuron - y->neuron;
}

static cJSON *token_ref(const TokenNames *tn, int id) {
    LensToken t = { .id = id };
    cJSON *list = token_list_json(tn, &t, 1, 1), *one = cJSON_DetachItemFromArray(list, 0);
    cJSON_Delete(list);
    cJSON_DeleteItemFromObject(one, "rank");
    cJSON_DeleteItemFromObject(one, "logit");
    cJSON_DeleteItemFromObject(one, "prob");
    return one; /* {"token_id","token"} */
}

enum { HIST_BINS = 20, CHANGED_MAX = 50 };

int atlas_layer_json(const Atlas *a, const Atlas *other, MatrixKind k, int layer, int n_tokens, cJSON **out, Error *e) {
    const AtlasInfo *in = atlas_info(a);
    int n = in->ffn_dim, rc;
    *out = NULL;
    if (layer < 0 || layer >= in->n_layers) return error_set(e, NM_EINPUT, "layer %d is outside the atlas (%d layers)", layer, in->n_layers);
    LensBatch b, ob = { 0 };
    lens_batch_init(&b, n, 1, 0);
    rc = atlas_layer_top(a, k, layer, n, 1, b.r, e);
    if (!rc && other) {
        const AtlasInfo *oi = atlas_info(other);
        if (oi->ffn_dim != n || oi->n_layers != in->n_layers) rc = error_set(e, NM_EINPUT, "the diff atlas has another shape");
        else {
            lens_batch_init(&ob, n, 1, 0);
            rc = atlas_layer_top(other, k, layer, n, 1, ob.r, e);
        }
    }
    if (rc) {
        lens_batch_free(&b);
        if (ob.r) lens_batch_free(&ob);
        return rc;
    }
    TokenNames tn = atlas_token_names(a);
    TokenCount *tc = xcalloc((size_t)tn.n + 1, sizeof *tc);
    for (int t = 0; t < tn.n; t++) tc[t].id = t;
    int counts[HIST_BINS] = { 0 }, nonfinite = 0;
    for (int i = 0; i < n; i++) {
        const LensResult *r = &b.r[i];
        if (r->nonfinite) { nonfinite++; continue; }
        if (r->top[0].id >= 0 && r->top[0].id < tn.n) tc[r->top[0].id].count++;
        int bin = (int)(r->top[0].prob * HIST_BINS);
        counts[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
    }
    qsort(tc, (size_t)tn.n, sizeof *tc, by_count_desc);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "matrix", matrix_name(k));
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neurons", n);
    cJSON_AddNumberToObject(o, "nonfinite", nonfinite);
    cJSON *tops = cJSON_AddArrayToObject(o, "top_tokens");
    for (int i = 0; i < n_tokens && i < tn.n && tc[i].count > 0; i++) {
        cJSON *x = token_ref(&tn, tc[i].id);
        cJSON_AddNumberToObject(x, "count", tc[i].count);
        cJSON_AddItemToArray(tops, x);
    }
    cJSON *h = cJSON_AddObjectToObject(o, "histogram");
    cJSON_AddNumberToObject(h, "bins", HIST_BINS);
    cJSON_AddItemToObject(h, "counts", cJSON_CreateIntArray(counts, HIST_BINS));
    if (other) {
        Changed *ch = xcalloc((size_t)n, sizeof *ch);
        int agree = 0, compared = 0, n_ch = 0;
        for (int i = 0; i < n; i++) {
            if (b.r[i].nonfinite || ob.r[i].nonfinite) continue;
            compared++;
            if (b.r[i].top[0].id == ob.r[i].top[0].id) agree++;
            else ch[n_ch++] = (Changed){ i, b.r[i].top[0].prob, ob.r[i].top[0].prob, b.r[i].top[0].id, ob.r[i].top[0].id };
        }
        qsort(ch, (size_t)n_ch, sizeof *ch, by_confidence_desc);
        cJSON *d = cJSON_AddObjectToObject(o, "diff"), *list;
        cJSON_AddNumberToObject(d, "agree", agree);
        cJSON_AddNumberToObject(d, "compared", compared);
        list = cJSON_AddArrayToObject(d, "changed");
        TokenNames otn = atlas_token_names(other);
        for (int i = 0; i < n_ch && i < CHANGED_MAX; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "neuron", ch[i].neuron);
            cJSON_AddItemToObject(x, "top", token_ref(&tn, ch[i].top));
            cJSON_AddItemToObject(x, "other_top", token_ref(&otn, ch[i].other_top));
            cJSON_AddNumberToObject(x, "prob", ch[i].prob);
            cJSON_AddNumberToObject(x, "other_prob", ch[i].other_prob);
            cJSON_AddItemToArray(list, x);
        }
        free(ch);
        lens_batch_free(&ob);
    }
    free(tc);
    lens_batch_free(&b);
    *out = o;
    return NM_OK;
}
