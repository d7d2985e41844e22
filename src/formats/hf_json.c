/* hf_json.c — the small helpers every part of the Hugging Face loader
 * shares (declared in hf.h): paths inside the directory and strict JSON
 * reading. They sit below format_hf.c, safetensors.c and hf_tokenizer.c so
 * that none of those has to call back into another. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf.h"

char *hf_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s%s", dir, str_ends_with(dir, "/") ? "" : "/", name);
    return p;
}

int json_whole(const cJSON *item, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v)) return 0;
    *out = (int64_t)v;
    return 1;
}

const cJSON *json_get(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(item) ? NULL : item;
}

int json_parse_object(const char *text, size_t len, const char *path, cJSON **out, Error *e) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    /* cJSON stops after the first value; only whitespace (safetensors pads
     * its header with spaces) may follow it. */
    size_t stop = end ? (size_t)(end - text) : 0;
    while (j && stop < len && strchr(" \t\r\n", text[stop]) && text[stop]) stop++;
    if (!j || stop != len) {
        cJSON_Delete(j);
        return error_set(e, NM_EINPUT, "%s: malformed JSON near byte %zu", path, stop);
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return error_set(e, NM_EINPUT, "%s: expected a JSON object", path);
    }
    *out = j;
    return NM_OK;
}
