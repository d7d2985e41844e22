/* generation.c — generate's loop as a stepper (generation.h). */
#include "infer/generation.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

int genrun_start(GenRun *r, const GenParams *p, const HookSet *hooks, Error *e) {
    memset(r, 0, sizeof *r);
    r->p = p;
    int rc = forward_set_hooks(p->f, hooks, e);
    if (rc) return rc;
    /* With positions "generated" the hooks start at the last prompt token:
     * the first position whose output is a new token (as generate does). */
    int hook_from = hooks && hooks->generated_only ? p->n_prompt - 1 : 0, vocab = p->m->cfg.vocab_size;
    r->logits = xmalloc((size_t)vocab * sizeof *r->logits);
    r->out.ids = xmalloc((size_t)(p->n_new > 0 ? p->n_new : 1) * sizeof *r->out.ids);
    text_append(&r->out.text, "", 0);
    sampler_init(&r->s, vocab, p->temp, p->top_p, p->seed);
    r->prev = p->prompt[p->n_prompt - 1];
    rc = forward_run(p->f, p->prompt, p->n_prompt, 0, hook_from, r->logits, 0, e);
    if (rc) {
        genrun_end(r);
        continuation_free(&r->out);
    }
    return rc;
}

int genrun_step(GenRun *r, int *id, const char **piece, int *len, Error *e) {
    const GenParams *p = r->p;
    if (r->done || r->out.n >= p->n_new) return 0;
    *id = sampler_next(&r->s, r->logits);
    r->out.ids[r->out.n++] = *id;
    *piece = "";
    *len = 0;
    if (is_stop_token(&p->m->vocab, *id)) {
        r->done = 1;
        return 1;
    }
    *piece = tokenizer_piece_text(p->tok, r->prev, *id, len);
    text_append(&r->out.text, *piece, (size_t)*len);
    r->prev = *id;
    if (r->out.n < p->n_new) {
        int rc = forward_run(p->f, id, 1, p->n_prompt + r->out.n - 1, 0, r->logits, 0, e);
        if (rc) return rc;
    }
    return 1;
}

void genrun_end(GenRun *r) {
    if (r->logits) sampler_free(&r->s);
    free(r->logits);
    r->logits = NULL;
}

void continuation_free(Continuation *c) {
    free(c->ids);
    text_free(&c->text);
    c->ids = NULL;
    c->n = 0;
}

static void add_continuation(cJSON *o, const char *key, const Continuation *c) {
    cJSON *r = cJSON_AddObjectToObject(o, key), *ids = cJSON_AddArrayToObject(r, "ids");
    for (int i = 0; i < c->n; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c->ids[i]));
    char *clean = utf8_sanitize(c->text.s ? c->text.s : "", c->text.len);
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
