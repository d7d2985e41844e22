/* generate.c — the generation run and its document (generate.h). */
#include "infer/generate.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "infer/sampler.h"

int generation_prompt(const Model *m, const Tokenizer *t, const PromptOptions *o, const char *text, int **ids, int *n,
                      Error *e) {
    if ((text && *text) || prompt_is_chat(o)) return prompt_encode(t, &m->vocab, o, text, text ? strlen(text) : 0, ids, n, NULL, e);
    if (m->vocab.bos_id < 0 || o->bos < 0)
        return error_set(e, NM_EINPUT, "%s: without a prompt generation starts from BOS, and there is none here", m->path);
    *ids = xmalloc(sizeof **ids);
    (*ids)[0] = m->vocab.bos_id;
    *n = 1;
    return NM_OK;
}

void continuation_free(Continuation *c) {
    free(c->ids);
    text_free(&c->text);
}

int generation_run(Generation *g, const HookSet *hooks, Continuation *out, Error *e) {
    memset(out, 0, sizeof *out);
    out->ids = xmalloc((size_t)(g->n_new > 0 ? g->n_new : 1) * sizeof *out->ids);
    text_append(&out->text, "", 0);
    int rc = forward_set_hooks(g->f, hooks, e);
    if (rc) return rc;
    /* With --clamp-positions generated the hooks start at the last prompt
     * token: the first position whose output is a new token. */
    int hook_from = hooks && hooks->generated_only ? g->n_prompt - 1 : 0, vocab = g->m->cfg.vocab_size;
    float *logits = xmalloc((size_t)vocab * sizeof *logits);
    Sampler s;
    sampler_init(&s, vocab, g->temp, g->top_p, g->seed);
    double t0 = now_seconds();
    rc = forward_run(g->f, g->prompt, g->n_prompt, 0, hook_from, logits, 0, e);
    double t1 = now_seconds();
    g->prompt_s += t1 - t0;
    for (int prev = g->prompt[g->n_prompt - 1]; !rc && out->n < g->n_new;) {
        int id = sampler_next(&s, logits);
        out->ids[out->n++] = id;
        if (is_stop_token(&g->m->vocab, id)) break;
        int len;
        const char *piece = tokenizer_piece_text(g->tok, prev, id, &len);
        text_append(&out->text, piece, (size_t)len);
        if (g->on_piece) g->on_piece(g->piece_ctx, piece, (size_t)len);
        prev = id;
        if (out->n < g->n_new) rc = forward_run(g->f, &id, 1, g->n_prompt + out->n - 1, 0, logits, 0, e);
    }
    g->decode_s += now_seconds() - t1;
    sampler_free(&s);
    free(logits);
    return rc;
}

static void add_continuation(cJSON *o, const char *key, const Continuation *c) {
    cJSON *r = cJSON_AddObjectToObject(o, key), *ids = cJSON_AddArrayToObject(r, "ids");
    for (int i = 0; i < c->n; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c->ids[i]));
    char *clean = utf8_sanitize(c->text.s, c->text.len);
    cJSON_AddStringToObject(r, "text", clean);
    free(clean);
}

cJSON *generation_json(const int *prompt, int n_prompt, const Continuation *base, const Continuation *clamped,
                       const HookSet *hooks) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_AddArrayToObject(o, "prompt_ids");
    for (int i = 0; i < n_prompt; i++) cJSON_AddItemToArray(p, cJSON_CreateNumber(prompt[i]));
    if (base) add_continuation(o, "baseline", base);
    if (clamped) {
        add_continuation(o, "clamped", clamped);
        hooks_to_json(o, hooks);
    }
    return o;
}
