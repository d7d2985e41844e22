/* probing.h — probe's measurement as a library call: the probability of a
 * continuation after a prompt, without and with hooks, the top next tokens,
 * and a sweep of clamp values, returned as the very document
 * `neuromap probe --format json` prints (the web atlas serves it).
 */
#ifndef NEUROMAP_PROBING_H
#define NEUROMAP_PROBING_H

#include "infer/clamp.h"
#include "model/model.h"
#include "text/prompt.h"

struct cJSON;

typedef struct {
    const char *prompt, *target;  /* both required; target non-empty */
    PromptOptions prompt_opts;
    int top_k;                    /* next tokens listed (probe's --top-k, default 10) */
    int truncate;                 /* drop the oldest prompt tokens to fit the context */
    int threads;                  /* forward pass threads (0: every CPU) */
} ProbeSpec;

/* {"prompt_ids","target_ids","target","baseline":{"prob","logprob","top":[{"id","token","prob"}]},
 *  "clamped":{...},"hooks":{...},"sweep":{"neuron","points":[{"value","prob"}]}}:
 * "clamped" with hooks, "hooks" with hooks or a sweep, "sweep" with one (sw
 * NULL or no values: none). hooks may be empty but not NULL. */
int probe_document(const Model *m, const Tokenizer *tok, const ProbeSpec *spec, HookSet *hooks, const Sweep *sw,
                   struct cJSON **out, Error *e);

#endif
