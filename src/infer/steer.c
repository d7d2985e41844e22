/* steer.c — prompt fitting, stop tokens, text buffers and UTF-8 repair for
 * generate and probe. */
#include "infer/steer.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

int fit_prompt(int *ids, int *n, int max_tokens, int truncate, int bos_id, int *dropped, Error *e) {
    *dropped = 0;
    if (*n <= max_tokens) return NM_OK;
    if (!truncate)
        return error_set(e, NM_EINPUT, "the prompt has %d tokens, more than the %d the model's context leaves for it "
                                       "(--truncate keeps the last ones)", *n, max_tokens);
    int keep_bos = *n > 0 && ids[0] == bos_id && max_tokens > 1, head = keep_bos ? 1 : 0;
    *dropped = *n - max_tokens;
    memmove(ids + head, ids + head + *dropped, (size_t)(max_tokens - head) * sizeof *ids);
    *n = max_tokens;
    return NM_OK;
}

int is_stop_token(const Vocab *v, int id) {
    return id == v->eos_id || id == v->bos_id || (v->type && id < v->n_tokens && v->type[id] == TOKEN_CONTROL);
}

void text_append(Text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

void text_free(Text *t) {
    free(t->s);
    memset(t, 0, sizeof *t);
}

char *utf8_sanitize(const char *s, size_t n) {
    Text t = { 0 };
    text_append(&t, "", 0);
    for (size_t i = 0; i < n;) {
        int len = utf8_sequence_length((const unsigned char *)s + i, n - i);
        if (len) text_append(&t, s + i, (size_t)len);
        else text_append(&t, "\xEF\xBF\xBD", 3);
        i += len ? (size_t)len : 1;
    }
    return t.s;
}

/* ----------------------------------------------------------------------------
 * Describing hooks */

/* "clamped (clamp 2:17=10, site act)" */
void hooks_label(const HookSet *h, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "clamped (");
    for (int i = 0; i < h->n && n + 40 < cap; i++) {
        if (i == 3) { n += (size_t)snprintf(out + n, cap - n, "... %d hooks, ", h->n); break; }
        hook_describe(&h->hook[i], out + n, cap - n);
        n = strlen(out);
        n += (size_t)snprintf(out + n, cap - n, ", ");
    }
    snprintf(out + n, cap - n, "site %s%s)", hook_site_name(h->site), h->generated_only ? ", generated only" : "");
}

void hooks_to_json(cJSON *o, const HookSet *hooks) {
    cJSON *h = cJSON_AddObjectToObject(o, "hooks"), *list = cJSON_AddArrayToObject(h, "hooks");
    cJSON_AddStringToObject(h, "site", hook_site_name(hooks->site));
    cJSON_AddStringToObject(h, "positions", hooks->generated_only ? "generated" : "all");
    for (int i = 0; i < hooks->n; i++) {
        char d[96];
        hook_describe(&hooks->hook[i], d, sizeof d);
        cJSON_AddItemToArray(list, cJSON_CreateString(d));
    }
}
