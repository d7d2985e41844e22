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

int generation_prompt(const Model *m, const Tokenizer *t, const PromptOptions *o, const char *text, int **ids, int *n,
                      Error *e) {
    if ((text && *text) || prompt_is_chat(o))
        return prompt_encode(t, &m->vocab, o, text, text ? strlen(text) : 0, ids, n, NULL, e);
    if (m->vocab.bos_id < 0 || o->bos < 0)
        return error_set(e, NM_EINPUT, "%s: without a prompt generation starts from BOS, and there is none here", m->path);
    *ids = xmalloc(sizeof **ids);
    (*ids)[0] = m->vocab.bos_id;
    *n = 1;
    return NM_OK;
}

int generation_run(Generation *g, const HookSet *hooks, Continuation *out, Error *e) {
    GenParams p = { .m = g->m, .tok = g->tok, .f = g->f, .prompt = g->prompt, .n_prompt = g->n_prompt,
                    .n_new = g->n_new, .temp = g->temp, .top_p = g->top_p, .seed = g->seed };
    GenRun r;
    memset(out, 0, sizeof *out);
    double t0 = now_seconds();
    int rc = genrun_start(&r, &p, hooks, e);
    double t1 = now_seconds();
    g->prompt_s += t1 - t0;
    if (rc) return rc;
    int id, len;
    const char *piece;
    while ((rc = genrun_step(&r, &id, &piece, &len, e)) == 1)
        if (g->on_piece && len) g->on_piece(g->piece_ctx, piece, (size_t)len);
    g->decode_s += now_seconds() - t1;
    *out = r.out;
    genrun_end(&r);
    return rc;
}
