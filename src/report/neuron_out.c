/* neuron_out.c — TSV rows and JSON objects of decoded neurons (neuron_out.h). */
#include "report/neuron_out.h"

#include <stdlib.h>
#include <string.h>

char *token_text(const TokenNames *tn, int id) {
    const char *t = id >= 0 && id < tn->n ? tn->text[id] : "";
    size_t n = id >= 0 && id < tn->n ? (size_t)tn->len[id] : 0, cap = 4 * n + 1; /* \xNN is the longest form */
    char *out = xmalloc(cap);
    escape_token(t, n, out, cap);
    return out;
}

void neuron_tsv_header(FILE *f) { fputs("matrix\tlayer\tneuron\trank\ttoken_id\ttoken\tlogit\tprob\n", f); }

static void tsv_row(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, int rank, const LensToken *t) {
    char *text = token_text(tn, t->id);
    fprintf(f, "%s\t%d\t%d\t%d\t%d\t%s\t%.7g\t%.6g\n", matrix_name(k), layer, neuron, rank, t->id, text, t->logit, t->prob);
    free(text);
}

void neuron_tsv(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                int n_bottom) {
    if (r->nonfinite) return;
    for (int i = 0; i < n_top; i++) tsv_row(f, tn, k, layer, neuron, i + 1, &r->top[i]);
    for (int i = 0; i < n_bottom; i++) tsv_row(f, tn, k, layer, neuron, -(i + 1), &r->bottom[i]);
}

/* 1 when token id's bytes are valid UTF-8 without NUL (an id outside the
 * table is the empty, valid text). */
static int token_is_text(const TokenNames *tn, int id) {
    if (id < 0 || id >= tn->n) return 1;
    const char *text = tn->text[id];
    int len = tn->len[id];
    for (int p = 0; p < len;) {
        int l = utf8_sequence_length((const unsigned char *)text + p, (size_t)(len - p));
        if (l <= 0 || text[p] == 0) return 0;
        p += l;
    }
    return 1;
}

cJSON *token_string_json(const TokenNames *tn, int id) {
    if (token_is_text(tn, id)) return cJSON_CreateString(id >= 0 && id < tn->n ? tn->text[id] : "");
    char *esc = token_text(tn, id);
    cJSON *o = cJSON_CreateString(esc);
    free(esc);
    return o;
}

void token_bytes_json(cJSON *o, const TokenNames *tn, int id) {
    if (token_is_text(tn, id)) return;
    static const char hex[] = "0123456789abcdef";
    int n = tn->len[id];
    char *h = xmalloc(2 * (size_t)n + 1);
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tn->text[id][i];
        h[2 * i] = hex[c >> 4];
        h[2 * i + 1] = hex[c & 15];
    }
    h[2 * n] = 0;
    cJSON_AddStringToObject(o, "token_bytes", h);
    free(h);
}

cJSON *token_list_json(const TokenNames *tn, const LensToken *t, int n, int sign) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", sign * (i + 1));
        cJSON_AddNumberToObject(o, "token_id", t[i].id);
        cJSON_AddItemToObject(o, "token", token_string_json(tn, t[i].id));
        token_bytes_json(o, tn, t[i].id);
        cJSON_AddNumberToObject(o, "logit", t[i].logit);
        cJSON_AddNumberToObject(o, "prob", t[i].prob);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *neuron_ref_json(MatrixKind k, int layer, int neuron) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "matrix", matrix_name(k));
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddNumberToObject(o, "neuron", neuron);
    return o;
}

cJSON *neuron_json(const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top, int n_bottom) {
    cJSON *o = neuron_ref_json(k, layer, neuron);
    if (r->nonfinite) {
        cJSON_AddBoolToObject(o, "nonfinite", 1);
        return o;
    }
    cJSON_AddNumberToObject(o, "lse", r->lse);
    if (r->lse_bound > 0) cJSON_AddNumberToObject(o, "lse_bound", r->lse_bound);
    cJSON_AddItemToObject(o, "top", token_list_json(tn, r->top, n_top, 1));
    cJSON_AddItemToObject(o, "bottom", token_list_json(tn, r->bottom, n_bottom, -1));
    return o;
}

void neuron_jsonl(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                  int n_bottom) {
    cJSON *o = neuron_json(tn, k, layer, neuron, r, n_top, n_bottom);
    char *s = cJSON_PrintUnformatted(o);
    fputs(s, f);
    fputc('\n', f);
    free(s);
    cJSON_Delete(o);
}
