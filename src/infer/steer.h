/* steer.h — what generate and probe share around the forward pass: fitting
 * a prompt into the context, the bytes a token adds to streamed text, and
 * turning model text into valid UTF-8 for JSON. */
#ifndef NEUROMAP_STEER_H
#define NEUROMAP_STEER_H

#include <stddef.h>

#include "infer/clamp.h"
#include "model/model.h"

struct cJSON;

/* Makes *n prompt ids fit in max_tokens. Too long: refused (NM_EINPUT), or
 * with truncate the oldest tokens after a leading BOS are dropped and
 * *dropped says how many. */
int fit_prompt(int *ids, int *n, int max_tokens, int truncate, int bos_id, int *dropped, Error *e);

/* Is id a token that ends generation (end of sequence, or a control token
 * such as BOS or <|eot_id|>)? */
int is_stop_token(const Vocab *v, int id);

/* A growing byte string. */
typedef struct {
    char *s;
    size_t len, cap;
} Text;
void text_append(Text *t, const char *s, size_t n);
void text_free(Text *t);

/* A malloc'd copy of s[0..n) with every byte that is not part of valid
 * UTF-8 replaced by U+FFFD, so JSON readers accept it. */
char *utf8_sanitize(const char *s, size_t n);

/* "clamped (clamp 2:17=10, site act)", for headings. */
void hooks_label(const HookSet *h, char *out, size_t cap);
/* Adds "hooks": {"site", "positions", "hooks": ["clamp 2:17=10", ...]} to o. */
void hooks_to_json(struct cJSON *o, const HookSet *hooks);

#endif
