/* serve_stream.c — POST /api/generate: generate --compare as a
 * text/event-stream.
 *
 *   event: token   data: {"run":"baseline"|"clamped","id":N,"text":"..."}
 *   ...            (the baseline run's tokens, then the clamped run's)
 *   event: done    data: the document `generate --compare --format json` prints
 *   (or event: error  data: {"error": "..."})
 *
 * The body's fields are generate's options: {"prompt", "n", "clamp":
 * [{"layer","neuron","value"}], "scale": [...], "site": "up"|"act",
 * "positions": "all"|"generated", "seed", "temperature", "top_p", "chat",
 * "exact_activations"}; each one left out takes the command's default (so
 * the fast matmuls, as generate without --exact-activations).
 *
 * No thread of our own: libmicrohttpd asks the content reader for bytes
 * whenever the socket can take them, and each call runs the model for one
 * more token (genrun_step). A client that goes away simply stops the asking;
 * the free callback releases the run and the model's one generation slot.
 */
#include <cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/serve.h"

typedef struct {
    Server *s;
    GenParams p;
    HookSet hooks;
    int *prompt;
    int phase;          /* 0 baseline, 1 clamped, 2 done sent: end */
    int running;        /* the current phase's GenRun is started */
    GenRun run;
    Continuation base, clamped;
    Text out;           /* bytes produced, not yet handed to the socket */
    size_t sent;
} Stream;

/* ----------------------------------------------------------------------------
 * The body: generate's options as JSON */

/* Field key of o as a number in lo..hi; def when absent. 0 when malformed. */
static int num_field(const cJSON *o, const char *key, double def, double lo, double hi, double *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = def;
    if (!x || cJSON_IsNull(x)) return 1;
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < lo || x->valuedouble > hi) return 0;
    *out = x->valuedouble;
    return 1;
}

/* "clamp" or "scale": [{"layer","neuron","value"}], checked as --clamp is. */
static int hooks_field(const cJSON *o, const char *key, HookKind kind, const Config *c, HookSet *h, Error *e) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key), *x;
    if (!list || cJSON_IsNull(list)) return NM_OK;
    if (!cJSON_IsArray(list)) return error_set(e, NM_EINPUT, "%s must be a list of {\"layer\",\"neuron\",\"value\"}", key);
    cJSON_ArrayForEach(x, list) {
        double l, n, v;
        if (!cJSON_IsObject(x) || !num_field(x, "layer", -1, 0, c->n_layers - 1, &l) || l < 0 || l != floor(l) ||
            !num_field(x, "neuron", -1, 0, c->ffn_dim - 1, &n) || n < 0 || n != floor(n) ||
            !num_field(x, "value", NAN, -1e30, 1e30, &v) || isnan(v))
            return error_set(e, NM_EINPUT, "%s: each entry needs a layer in 0..%d, a neuron in 0..%d and a finite value", key,
                             c->n_layers - 1, c->ffn_dim - 1);
        if (h->n >= HOOK_MAX) return error_set(e, NM_EINPUT, "%s: more than %d hooks", key, HOOK_MAX);
        hookset_add(h, (NeuronHook){ (int)l, (int)n, kind, (float)v });
    }
    return NM_OK;
}

/* "site" and "positions" into h; NM_EINPUT when malformed. */
static int site_fields(const cJSON *o, HookSet *h, Error *e) {
    const cJSON *site = cJSON_GetObjectItemCaseSensitive(o, "site"), *pos = cJSON_GetObjectItemCaseSensitive(o, "positions");
    h->site = SITE_ACT; /* the commands' default --clamp-site */
    if (site && !(cJSON_IsString(site) && hook_site_from_name(site->valuestring, &h->site)))
        return error_set(e, NM_EINPUT, "site must be \"up\" or \"act\"");
    if (pos) {
        if (cJSON_IsString(pos) && strcmp(pos->valuestring, "generated") == 0) h->generated_only = 1;
        else if (!(cJSON_IsString(pos) && strcmp(pos->valuestring, "all") == 0))
            return error_set(e, NM_EINPUT, "positions must be \"all\" or \"generated\"");
    }
    return NM_OK;
}

/* Fills st from the body as cmd_generate.c does from its options. */
static int parse_body(Server *s, const Request *r, Stream *st, Error *e) {
    const Model *m = &s->model;
    cJSON *o = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
    int rc = NM_OK;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return error_set(e, NM_EINPUT, "the body must be a JSON object (see README, \"Web atlas\")");
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt"), *chat = cJSON_GetObjectItemCaseSensitive(o, "chat"),
                *exact = cJSON_GetObjectItemCaseSensitive(o, "exact_activations");
    double n, temp, top_p, seed;
    if (prompt && !cJSON_IsString(prompt) && !cJSON_IsNull(prompt)) rc = error_set(e, NM_EINPUT, "prompt must be a string");
    else if ((chat && !cJSON_IsBool(chat)) || (exact && !cJSON_IsBool(exact)))
        rc = error_set(e, NM_EINPUT, "chat and exact_activations must be true or false");
    else if (!num_field(o, "n", 128, 1, 1 << 24, &n) || n != floor(n)) rc = error_set(e, NM_EINPUT, "n wants a number of tokens from 1");
    else if (!num_field(o, "temperature", 1.0, 0, 100, &temp)) rc = error_set(e, NM_EINPUT, "temperature wants 0 to 100");
    else if (!num_field(o, "top_p", 0.9, 0, 1, &top_p) || top_p <= 0) rc = error_set(e, NM_EINPUT, "top_p wants a mass in (0, 1]");
    else if (!num_field(o, "seed", 0, 0, 9007199254740992.0, &seed) || seed != floor(seed))
        rc = error_set(e, NM_EINPUT, "seed wants a non-negative integer");
    if (!rc) rc = site_fields(o, &st->hooks, e);
    if (!rc) rc = hooks_field(o, "clamp", HOOK_CLAMP, &m->cfg, &st->hooks, e);
    if (!rc) rc = hooks_field(o, "scale", HOOK_SCALE, &m->cfg, &st->hooks, e);

    /* The prompt's ids: BOS alone without a prompt, as generate does. */
    int n_prompt = 0, dropped, ctx = m->cfg.max_seq_len;
    const char *text = cJSON_IsString(prompt) ? prompt->valuestring : NULL;
    PromptOptions po = { .chat = cJSON_IsTrue(chat) };
    if (!rc && ((text && *text) || po.chat))
        rc = prompt_encode(s->tok, &m->vocab, &po, text, text ? strlen(text) : 0, &st->prompt, &n_prompt, NULL, e);
    else if (!rc && m->vocab.bos_id < 0)
        rc = error_set(e, NM_EINPUT, "without a prompt generation starts from BOS, and this model has none");
    else if (!rc) {
        st->prompt = xmalloc(sizeof *st->prompt);
        st->prompt[0] = m->vocab.bos_id;
        n_prompt = 1;
    }
    if (!rc) rc = fit_prompt(st->prompt, &n_prompt, ctx - 1, 0, m->vocab.bos_id, &dropped, e);
    if (!rc) {
        if (n > ctx - n_prompt) n = ctx - n_prompt;
        st->p = (GenParams){ .m = m, .tok = s->tok, .prompt = st->prompt, .n_prompt = n_prompt, .n_new = (int)n,
                             .temp = (float)temp, .top_p = (float)top_p, .seed = (uint64_t)seed };
        rc = forward_new(m, n_prompt + st->p.n_new, s->threads, &st->p.f, e);
        if (!rc) forward_set_exact(st->p.f, cJSON_IsTrue(exact)); /* generate's default: the fast path */
    }
    cJSON_Delete(o);
    return rc;
}

/* ----------------------------------------------------------------------------
 * POST /api/probe: probe --format json's document (not streamed: one answer)
 *
 * {"prompt", "target" (both required), "clamp", "scale", "site", "positions",
 *  "sweep": {"layer", "neuron", "values": [...]}, "top_k", "chat", "truncate"} */

Reply serve_probe(Server *s, const Request *r) {
    if (!s->has_model) return reply_error(MHD_HTTP_CONFLICT, "probe needs the model: start serve with --model");
    const Config *c = &s->model.cfg;
    cJSON *o = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return reply_error(MHD_HTTP_BAD_REQUEST, "the body must be a JSON object (see README, \"Web atlas\")");
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt"), *target = cJSON_GetObjectItemCaseSensitive(o, "target"),
                *chat = cJSON_GetObjectItemCaseSensitive(o, "chat"), *trunc = cJSON_GetObjectItemCaseSensitive(o, "truncate"),
                *sweep = cJSON_GetObjectItemCaseSensitive(o, "sweep"), *exact = cJSON_GetObjectItemCaseSensitive(o, "exact_activations");
    HookSet hooks = { 0 };
    Sweep sw = { 0 };
    Error e = { 0 };
    double top_k;
    int rc = NM_OK;
    if (!cJSON_IsString(prompt) || !cJSON_IsString(target) || !*target->valuestring)
        rc = error_set(&e, NM_EINPUT, "probe needs \"prompt\" and a non-empty \"target\"");
    else if ((chat && !cJSON_IsBool(chat)) || (trunc && !cJSON_IsBool(trunc)) || (exact && !cJSON_IsBool(exact)))
        rc = error_set(&e, NM_EINPUT, "chat, truncate and exact_activations must be true or false");
    else if (!num_field(o, "top_k", 10, 1, 1000, &top_k) || top_k != floor(top_k))
        rc = error_set(&e, NM_EINPUT, "top_k wants 1-1000");
    if (!rc) rc = site_fields(o, &hooks, &e);
    if (!rc) rc = hooks_field(o, "clamp", HOOK_CLAMP, c, &hooks, &e);
    if (!rc) rc = hooks_field(o, "scale", HOOK_SCALE, c, &hooks, &e);
    if (!rc && sweep) {
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(sweep, "values"), *v;
        double l, n;
        if (!cJSON_IsObject(sweep) || !num_field(sweep, "layer", -1, 0, c->n_layers - 1, &l) || l < 0 || l != floor(l) ||
            !num_field(sweep, "neuron", -1, 0, c->ffn_dim - 1, &n) || n < 0 || n != floor(n) || !cJSON_IsArray(values) ||
            cJSON_GetArraySize(values) < 1 || cJSON_GetArraySize(values) > SWEEP_MAX_VALUES)
            rc = error_set(&e, NM_EINPUT, "sweep wants {\"layer\", \"neuron\", \"values\": [1 to %d finite numbers]}", SWEEP_MAX_VALUES);
        else {
            sw = (Sweep){ (int)l, (int)n, 0, xmalloc((size_t)cJSON_GetArraySize(values) * sizeof *sw.values) };
            cJSON_ArrayForEach(v, values) {
                if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e30) {
                    rc = error_set(&e, NM_EINPUT, "sweep values must be finite numbers");
                    break;
                }
                sw.values[sw.n_values++] = (float)v->valuedouble;
            }
        }
    }
    Reply out;
    int idle = 0;
    if (rc) {
        out = reply_error(MHD_HTTP_BAD_REQUEST, "%s", e.msg);
    } else if (!atomic_compare_exchange_strong(&s->generating, &idle, 1)) {
        out = reply_error(MHD_HTTP_TOO_MANY_REQUESTS, "a generation is running; one at a time per model");
        out.retry_after = 1;
    } else {
        ProbeSpec spec = { .prompt = prompt->valuestring, .target = target->valuestring, .prompt_opts = { .chat = cJSON_IsTrue(chat) },
                           .top_k = (int)top_k, .truncate = cJSON_IsTrue(trunc), .threads = s->threads,
                           .exact = cJSON_IsTrue(exact) };
        cJSON *doc;
        rc = probe_document(&s->model, s->tok, &spec, &hooks, &sw, &doc, &e);
        atomic_store(&s->generating, 0);
        out = rc ? reply_error(e.code == NM_EINPUT ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", e.msg) : reply_json(doc);
    }
    hookset_free(&hooks);
    sweep_free(&sw);
    cJSON_Delete(o);
    return out;
}

/* ----------------------------------------------------------------------------
 * The event stream */

static void event(Stream *st, const char *name, cJSON *data) {
    char *s = cJSON_PrintUnformatted(data), head[64];
    int n = snprintf(head, sizeof head, "event: %s\ndata: ", name);
    text_append(&st->out, head, (size_t)n);
    text_append(&st->out, s, strlen(s));
    text_append(&st->out, "\n\n", 2);
    free(s);
    cJSON_Delete(data);
}

static void error_event(Stream *st, const Error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", e->msg);
    event(st, "error", o);
    st->phase = 2;
}

/* Produces the next event(s) into st->out: one token, or the end of a run. */
static void produce(Stream *st) {
    Error e = { 0 };
    int clamped = st->hooks.n > 0;
    if (st->phase == 0 || st->phase == 1) {
        Continuation *c = st->phase == 0 ? &st->base : &st->clamped;
        if (!st->running) {
            if (genrun_start(&st->run, &st->p, st->phase == 0 ? NULL : &st->hooks, &e)) return error_event(st, &e);
            st->running = 1;
        }
        int id, len;
        const char *piece;
        int rc = genrun_step(&st->run, &id, &piece, &len, &e);
        if (rc == 1) {
            cJSON *o = cJSON_CreateObject();
            char *clean = utf8_sanitize(piece, (size_t)len);
            cJSON_AddStringToObject(o, "run", st->phase == 0 ? "baseline" : "clamped");
            cJSON_AddNumberToObject(o, "id", id);
            cJSON_AddStringToObject(o, "text", clean);
            free(clean);
            if (st->s->token_delay_ms > 0) usleep((useconds_t)st->s->token_delay_ms * 1000);
            return event(st, "token", o);
        }
        genrun_end(&st->run);
        *c = st->run.out;
        memset(&st->run.out, 0, sizeof st->run.out);
        st->running = 0;
        if (rc) return error_event(st, &e);
        if (st->phase == 0 && clamped) {
            st->phase = 1;
            return;
        }
        st->phase = 2;
        event(st, "done", generation_json(st->p.prompt, st->p.n_prompt, &st->base, clamped ? &st->clamped : NULL, &st->hooks));
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
    Stream *st = cls;
    while (st->sent == st->out.len) {
        if (st->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        st->out.len = st->sent = 0;
        produce(st);
    }
    size_t n = st->out.len - st->sent;
    if (n > max) n = max;
    memcpy(buf, st->out.s + st->sent, n);
    st->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    Stream *st = cls;
    if (st->running) {
        genrun_end(&st->run);
        continuation_free(&st->run.out);
    }
    continuation_free(&st->base);
    continuation_free(&st->clamped);
    if (st->p.f) forward_free(st->p.f);
    hookset_free(&st->hooks);
    free(st->prompt);
    text_free(&st->out);
    atomic_store(&st->s->generating, 0); /* the model's one generation slot is free again */
    free(st);
}

Reply serve_generate(Server *s, const Request *r) {
    if (!s->has_model) return reply_error(MHD_HTTP_CONFLICT, "generate needs the model: start serve with --model");
    int idle = 0;
    if (!atomic_compare_exchange_strong(&s->generating, &idle, 1)) {
        Reply busy = reply_error(MHD_HTTP_TOO_MANY_REQUESTS, "a generation is running; one at a time per model");
        busy.retry_after = 1;
        return busy;
    }
    Stream *st = xcalloc(1, sizeof *st);
    st->s = s;
    Error e = { 0 };
    if (parse_body(s, r, st, &e)) {
        stream_free(st);
        return reply_error(e.code == NM_EINPUT ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", e.msg);
    }
    Reply ok = { .status = MHD_HTTP_OK };
    ok.stream = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, st, stream_free);
    if (!ok.stream) {
        stream_free(st);
        return reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot make a response");
    }
    MHD_add_response_header(ok.stream, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(ok.stream, "Cache-Control", "no-store");
    return ok;
}
