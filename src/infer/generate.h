/* generate.h — text from the model, with or without neuron hooks: the run
 * behind `neuromap generate` and its JSON document, shared by the command
 * and the language bindings (report/api.h). */
#ifndef NEUROMAP_GENERATE_H
#define NEUROMAP_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "infer/forward.h"
#include "infer/steer.h"
#include "text/prompt.h"

/* The prompt's ids (*ids malloc'd): the text through prompt_encode, or BOS
 * alone when there is no text (NULL or "") and no chat (NM_EINPUT when the
 * vocabulary has no BOS or o->bos < 0). */
int generation_prompt(const Model *m, const Tokenizer *t, const PromptOptions *o, const char *text, int **ids, int *n,
                      Error *e);

typedef struct {
    const Model *m;
    const Tokenizer *tok;
    Forward *f;
    const int *prompt;
    int n_prompt, n_new;
    float temp, top_p;
    uint64_t seed;
    /* Called with each piece of text as it is sampled (NULL: none). */
    void (*on_piece)(void *ctx, const char *s, size_t n);
    void *piece_ctx;
    double prompt_s, decode_s; /* time spent, summed over runs */
} Generation;

/* One continuation: the ids sampled (up to and with a stop token) and the text. */
typedef struct {
    int *ids, n;
    Text text;
} Continuation;
void continuation_free(Continuation *c);

/* Runs the prompt, then samples up to g->n_new tokens with g's seed (so two
 * runs differ by their hooks alone); hooks may be NULL. */
int generation_run(Generation *g, const HookSet *hooks, Continuation *out, Error *e);

/* {"prompt_ids", "baseline": {"ids", "text"}[, "clamped": {...}, "hooks": {...}]};
 * base or clamped may be NULL. Text is made valid UTF-8 (U+FFFD). */
struct cJSON *generation_json(const int *prompt, int n_prompt, const Continuation *base, const Continuation *clamped,
                              const HookSet *hooks);

#endif
