/* generation.h — generate's sampling loop, one token at a time, for callers
 * that must hand each token on as it comes (the web atlas streams them).
 *
 * cmd_generate.c runs the same loop in one call; this file keeps it as a
 * stepper so that a server can produce a token, send it, and return to its
 * event loop without a thread of its own. Same prompt, hooks, seed and
 * thread count give the same ids as `neuromap generate`, token for token.
 */
#ifndef NEUROMAP_GENERATION_H
#define NEUROMAP_GENERATION_H

#include <stdint.h>

#include "infer/clamp.h"
#include "infer/forward.h"
#include "infer/sampler.h"
#include "infer/steer.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

struct cJSON;

/* What a run needs; the prompt is already fitted to the context. */
typedef struct {
    const Model *m;
    const Tokenizer *tok;
    Forward *f;        /* made for n_prompt + n_new positions */
    const int *prompt;
    int n_prompt, n_new;
    float temp, top_p;
    uint64_t seed;
} GenParams;

/* The tokens one run produced: ids (a stop token included, as generate
 * lists it) and the text they add to the prompt. */
typedef struct {
    int *ids, n;
    Text text;
} Continuation;

typedef struct {
    const GenParams *p;
    Continuation out;
    Sampler s;
    float *logits;
    int prev, done;
} GenRun;

/* Sets the hooks (NULL: none) and runs the prompt. On error nothing is left
 * to free. */
int genrun_start(GenRun *r, const GenParams *p, const HookSet *hooks, Error *e);
/* The next token: 1 with *id and the bytes it adds (*piece, *len: valid
 * until the next step; a stop token adds none), 0 when the run is over,
 * an error code (e set) when the forward pass failed. */
int genrun_step(GenRun *r, int *id, const char **piece, int *len, Error *e);
/* Frees the sampler and logits; r->out stays for the caller. */
void genrun_end(GenRun *r);
void continuation_free(Continuation *c);

/* generate --format json's document: {"prompt_ids", "baseline": {"ids",
 * "text"}, "clamped": {...}, "hooks": {...}} (baseline or clamped NULL:
 * left out; hooks only with clamped). */
struct cJSON *generation_json(const int *prompt, int n_prompt, const Continuation *base, const Continuation *clamped,
                              const HookSet *hooks);

/* ----------------------------------------------------------------------------
 * A whole run in one call (`neuromap generate`, the language bindings) */

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

/* Runs the prompt, then samples up to g->n_new tokens with g's seed (so two
 * runs differ by their hooks alone); hooks may be NULL. *out holds what was
 * produced even on error (free it with continuation_free). */
int generation_run(Generation *g, const HookSet *hooks, Continuation *out, Error *e);

#endif
