/* probing.h — probe's measurement as a library call: the probability of a
 * continuation after a prompt, without and with hooks, the top next tokens,
 * and a sweep of clamp values, returned as the very document
 * `neuromap probe --format json` prints (the web atlas serves it).
 */
#ifndef NEUROMAP_PROBING_H
#define NEUROMAP_PROBING_H

#include "infer/clamp.h"
#include "infer/forward.h"
#include "model/model.h"
#include "text/prompt.h"

struct cJSON;

typedef struct {
    const char *prompt, *target;  /* both required; target non-empty */
    PromptOptions prompt_opts;
    int top_k;                    /* next tokens listed (probe's --top-k, default 10) */
    int truncate;                 /* drop the oldest prompt tokens to fit the context */
    int threads;                  /* forward pass threads (0: every CPU) */
    int exact;                    /* 1: the exact F32 matmuls (--exact-activations); 0: probe's default fast path */
} ProbeSpec;

/* What one run (baseline, clamped, or one sweep value) found. */
typedef struct {
    double logprob;
    int *top;      /* top_k next-token ids after the prompt */
    float *top_p;  /* their probabilities */
} ProbeResult;

/* A prompt and its target, ready to run (probe_ids, then forward_new for
 * n_prompt + n_target positions, logits and prob allocated by the caller). */
typedef struct {
    const Model *m;
    Forward *f;
    const int *ids; /* prompt then target */
    int n_prompt, n_target, top_k;
    float *logits;  /* n_target × vocab */
    float *prob;    /* vocab */
} Probe;

/* Prompt ids, then the target's as the tokens PROMPT+TEXT adds after them
 * (*ids malloc'd). *shifted: how many of the prompt's own last tokens the
 * joint tokenization changed (the prompt is then shorter by as many). */
int probe_ids(const Tokenizer *t, const Vocab *v, const ProbeSpec *a, int **ids, int *n_prompt, int *n_target, int *shifted,
              Error *e);
/* One run with hooks (NULL: none): the target's log-probability and the top next tokens. */
int probe_run(Probe *p, const HookSet *hooks, ProbeResult *r, Error *e);
void probe_result_free(ProbeResult *r);
struct cJSON *probe_result_json(const Probe *p, const ProbeResult *r);
/* The document below from runs already made (hooked and sw may be NULL). */
struct cJSON *probe_json(const Probe *p, const char *target, const ProbeResult *base, const ProbeResult *hooked,
                         const HookSet *hooks, const Sweep *sw, const double *sweep_prob);

/* {"prompt_ids","target_ids","target","baseline":{"prob","logprob","top":[{"id","token","prob"}]},
 *  "clamped":{...},"hooks":{...},"sweep":{"neuron","points":[{"value","prob"}]}}:
 * "clamped" with hooks, "hooks" with hooks or a sweep, "sweep" with one (sw
 * NULL or no values: none). hooks may be empty but not NULL. */
int probe_document(const Model *m, const Tokenizer *tok, const ProbeSpec *spec, HookSet *hooks, const Sweep *sw,
                   struct cJSON **out, Error *e);

#endif
