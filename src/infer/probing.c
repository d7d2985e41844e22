/* probing.c — probe's measurement and document (probing.h). The same steps
 * as cmd_probe.c, without its printing: the joint tokenization of prompt and
 * target, one run per hook set, probabilities from a softmax at
 * temperature 1. */
#include "infer/probing.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/forward.h"
#include "infer/sampler.h"
#include "infer/steer.h"

/* Prompt ids, then the target's as the tokens PROMPT+TEXT adds after them. */
int probe_ids(const Tokenizer *t, const Vocab *v, const ProbeSpec *a, int **ids, int *n_prompt, int *n_target, int *shifted,
              Error *e) {
    int *p = NULL, *joint = NULL, np = 0, nj = 0;
    char *rendered = NULL;
    int rc = prompt_encode(t, v, &a->prompt_opts, a->prompt, strlen(a->prompt), &p, &np, &rendered, e);
    if (rc) return rc;
    /* A chat prompt ends with the assistant's header: the target is the reply. */
    PromptOptions plain = a->prompt_opts;
    plain.chat = 0;
    plain.system = plain.messages = NULL;
    const char *head = rendered ? rendered : a->prompt;
    if (rendered) {
        plain.special = 1;
        plain.bos = -1; /* the template wrote BOS itself */
    }
    size_t hl = strlen(head), tl = strlen(a->target);
    char *both = xmalloc(hl + tl + 1);
    memcpy(both, head, hl);
    memcpy(both + hl, a->target, tl + 1);
    rc = prompt_encode(t, v, &plain, both, hl + tl, &joint, &nj, NULL, e);
    free(both);
    if (!rc && head != a->prompt && a->prompt_opts.bos < 0 && nj > 0 && joint[0] == v->bos_id)
        memmove(joint, joint + 1, (size_t)--nj * sizeof *joint);
    if (!rc) {
        int same = 0;
        while (same < np && same < nj && p[same] == joint[same]) same++;
        *shifted = np - same;
        if (same == nj) rc = error_set(e, NM_EINPUT, "--target '%.200s' adds no tokens after the prompt", a->target);
        else if (same == 0) rc = error_set(e, NM_EINPUT, "the prompt has no tokens of its own before the target");
        *n_prompt = same;
        *n_target = nj - same;
    }
    free(rendered);
    free(p);
    if (rc) free(joint);
    else *ids = joint;
    return rc;
}

int probe_run(Probe *p, const HookSet *hooks, ProbeResult *r, Error *e) {
    int rc = forward_set_hooks(p->f, hooks, e), vocab = p->m->cfg.vocab_size, last = p->n_prompt - 1;
    /* Hooks from the last prompt token on with positions "generated". */
    int hook_from = hooks && hooks->generated_only ? last : 0;
    if (!rc && last > 0) rc = forward_run(p->f, p->ids, last, 0, hook_from, p->logits, 0, e);
    if (!rc) rc = forward_run(p->f, p->ids + last, p->n_target, last, hook_from - last, p->logits, 1, e);
    if (rc) return rc;
    r->logprob = 0;
    for (int i = 0; i < p->n_target; i++) {
        softmax(p->logits + (size_t)i * vocab, vocab, 1.0f, p->prob);
        r->logprob += log(p->prob[p->ids[p->n_prompt + i]]);
        if (i == 0) {
            r->top = xmalloc((size_t)p->top_k * sizeof *r->top);
            r->top_p = xmalloc((size_t)p->top_k * sizeof *r->top_p);
            top_k(p->prob, vocab, p->top_k, r->top);
            for (int k = 0; k < p->top_k; k++) r->top_p[k] = p->prob[r->top[k]];
        }
    }
    return NM_OK;
}

void probe_result_free(ProbeResult *r) {
    free(r->top);
    free(r->top_p);
    memset(r, 0, sizeof *r);
}

cJSON *probe_result_json(const Probe *p, const ProbeResult *r) {
    cJSON *o = cJSON_CreateObject(), *top = cJSON_CreateArray();
    cJSON_AddNumberToObject(o, "prob", exp(r->logprob));
    cJSON_AddNumberToObject(o, "logprob", r->logprob);
    for (int k = 0; k < p->top_k; k++) {
        cJSON *t = cJSON_CreateObject();
        int id = r->top[k];
        char *text = utf8_sanitize(p->m->vocab.text[id], (size_t)p->m->vocab.text_len[id]);
        cJSON_AddNumberToObject(t, "id", id);
        cJSON_AddStringToObject(t, "token", text);
        cJSON_AddNumberToObject(t, "prob", r->top_p[k]);
        cJSON_AddItemToArray(top, t);
        free(text);
    }
    cJSON_AddItemToObject(o, "top", top);
    return o;
}

int probe_document(const Model *m, const Tokenizer *tok, const ProbeSpec *spec, HookSet *hooks, const Sweep *sw, cJSON **out,
                   Error *e) {
    Probe p = { .m = m, .top_k = spec->top_k };
    int *ids = NULL, dropped = 0, vocab = m->cfg.vocab_size, rc;
    *out = NULL;
    if (!spec->target || !*spec->target) return error_set(e, NM_EINPUT, "the target is empty");
    int shifted = 0;
    rc = probe_ids(tok, &m->vocab, spec, &ids, &p.n_prompt, &p.n_target, &shifted, e);
    if (rc) return rc;
    if (p.n_target >= m->cfg.max_seq_len) {
        free(ids);
        return error_set(e, NM_EINPUT, "the target has %d tokens, more than the model's context of %d", p.n_target, m->cfg.max_seq_len);
    }
    int n_prompt = p.n_prompt; /* the prompt is cut in place; the target ids follow it */
    if ((rc = fit_prompt(ids, &p.n_prompt, m->cfg.max_seq_len - p.n_target, spec->truncate, m->vocab.bos_id, &dropped, e))) {
        free(ids);
        return rc;
    }
    if (dropped) memmove(ids + p.n_prompt, ids + n_prompt, (size_t)p.n_target * sizeof *ids);
    if (p.top_k > vocab) p.top_k = vocab;
    p.ids = ids;
    if ((rc = forward_new(m, p.n_prompt + p.n_target, spec->threads, &p.f, e))) {
        free(ids);
        return rc;
    }
    forward_set_exact(p.f, spec->exact);
    p.logits = xmalloc((size_t)p.n_target * vocab * sizeof *p.logits);
    p.prob = xmalloc((size_t)vocab * sizeof *p.prob);

    ProbeResult base = { 0 }, hooked = { 0 };
    int n_values = sw ? sw->n_values : 0, clamped = hooks->n > 0;
    double *sweep_prob = n_values ? xcalloc((size_t)n_values, sizeof *sweep_prob) : NULL;
    rc = probe_run(&p, NULL, &base, e);
    if (!rc && clamped) rc = probe_run(&p, hooks, &hooked, e);
    if (!rc && n_values) { /* the sweep's clamp on top of the other hooks, as the set's last */
        hookset_add(hooks, (NeuronHook){ .layer = sw->layer, .neuron = sw->neuron, .kind = HOOK_CLAMP });
        for (int i = 0; !rc && i < n_values; i++) {
            ProbeResult r = { 0 };
            hooks->hook[hooks->n - 1].value = sw->values[i];
            rc = probe_run(&p, hooks, &r, e);
            sweep_prob[i] = exp(r.logprob);
            probe_result_free(&r);
        }
        hooks->n--;
    }
    if (!rc) *out = probe_json(&p, spec->target, &base, clamped ? &hooked : NULL, hooks, n_values ? sw : NULL, sweep_prob);
    probe_result_free(&base);
    probe_result_free(&hooked);
    free(sweep_prob);
    free(p.logits);
    free(p.prob);
    free(ids);
    forward_free(p.f);
    return rc;
}

cJSON *probe_json(const Probe *p, const char *target, const ProbeResult *base, const ProbeResult *hooked, const HookSet *hooks,
                  const Sweep *sw, const double *sweep_prob) {
    cJSON *o = cJSON_CreateObject(), *pi = cJSON_AddArrayToObject(o, "prompt_ids"), *ti = cJSON_AddArrayToObject(o, "target_ids");
    for (int i = 0; i < p->n_prompt + p->n_target; i++)
        cJSON_AddItemToArray(i < p->n_prompt ? pi : ti, cJSON_CreateNumber(p->ids[i]));
    char *clean = utf8_sanitize(target, strlen(target));
    cJSON_AddStringToObject(o, "target", clean);
    free(clean);
    cJSON_AddItemToObject(o, "baseline", probe_result_json(p, base));
    if (hooked) cJSON_AddItemToObject(o, "clamped", probe_result_json(p, hooked));
    if (hooked || sw) hooks_to_json(o, hooks);
    if (sw) {
        cJSON *s = cJSON_AddObjectToObject(o, "sweep"), *pts = cJSON_AddArrayToObject(s, "points");
        char neuron[32];
        snprintf(neuron, sizeof neuron, "%d:%d", sw->layer, sw->neuron);
        cJSON_AddStringToObject(s, "neuron", neuron);
        for (int i = 0; i < sw->n_values; i++) {
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddNumberToObject(pt, "value", sw->values[i]);
            cJSON_AddNumberToObject(pt, "prob", sweep_prob[i]);
            cJSON_AddItemToArray(pts, pt);
        }
    }
    return o;
}
