/* chat.h — conversations and the chat templates neuromap renders exactly.
 *
 * No Jinja engine: a template is recognised by its exact text and rendered
 * by hand-written code that reproduces what HF's apply_chat_template(...,
 * add_generation_prompt=True) writes. Any other template is refused.
 */
#ifndef NEUROMAP_CHAT_H
#define NEUROMAP_CHAT_H

#include <stddef.h>

#include "model/model.h"

typedef struct {
    char *role;
    char *content;
} ChatMessage;

typedef struct {
    ChatMessage *msg;
    int n;
} Chat;

void chat_add(Chat *c, const char *role, const char *content);
/* Puts a message in front (e.g. --system before a --messages file). */
void chat_prepend(Chat *c, const char *role, const char *content);
void chat_free(Chat *c);

/* Parses a JSON list of {"role": "...", "content": "..."}; name is used in messages. */
int chat_parse_json(Chat *c, const char *json, size_t len, const char *name, Error *e);
int chat_load_file(Chat *c, const char *path, Error *e);

typedef enum { CHAT_LLAMA3, CHAT_LLAMA31 } ChatTemplate;
const char *chat_template_name(ChatTemplate t); /* "llama-3", "llama-3.1" */

/* Which supported template the vocabulary's chat_template is; NM_EINPUT otherwise. */
int chat_template_detect(const Vocab *v, ChatTemplate *out, Error *e);

/* The rendered conversation with the assistant generation prompt appended
 * (malloc'd, NUL-terminated). date: Llama 3.1's "Today Date", NULL for the
 * template's default "26 Jul 2024". */
int chat_render(const Vocab *v, const Chat *c, const char *date, char **out, size_t *len, Error *e);

#endif
