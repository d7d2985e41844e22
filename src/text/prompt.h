/* prompt.h — the prompt options every command that reads a prompt shares
 * (tokenize, generate, probe): --chat, --system, --messages, --date,
 * --special, --bos/--no-bos. A command adds PROMPT_LONG_OPTIONS to its
 * getopt_long table, hands unknown option codes to prompt_option(), and
 * turns its text into ids with prompt_encode().
 */
#ifndef NEUROMAP_PROMPT_H
#define NEUROMAP_PROMPT_H

#include <getopt.h>
#include <stddef.h>

#include "text/tokenizer.h"

typedef struct {
    int chat;             /* --chat: the text is one user turn of the chat template */
    const char *system;   /* --system TEXT: a system turn first (implies --chat) */
    const char *messages; /* --messages FILE.json: a whole conversation (no text then) */
    const char *date;     /* --date "26 Jul 2024": Llama 3.1's "Today Date" */
    int special;          /* --special: special-token text in the prompt is parsed */
    int bos;              /* +1 --bos, -1 --no-bos, 0: as the tokenizer does */
} PromptOptions;

/* Option codes, above every short option character. */
enum { PROMPT_OPT_CHAT = 0x300, PROMPT_OPT_SYSTEM, PROMPT_OPT_MESSAGES, PROMPT_OPT_DATE, PROMPT_OPT_SPECIAL,
       PROMPT_OPT_BOS, PROMPT_OPT_NO_BOS };

#define PROMPT_LONG_OPTIONS                                                                                    \
    { "chat", no_argument, 0, PROMPT_OPT_CHAT }, { "system", required_argument, 0, PROMPT_OPT_SYSTEM },         \
        { "messages", required_argument, 0, PROMPT_OPT_MESSAGES }, { "date", required_argument, 0, PROMPT_OPT_DATE }, \
        { "special", no_argument, 0, PROMPT_OPT_SPECIAL }, { "bos", no_argument, 0, PROMPT_OPT_BOS },           \
        { "no-bos", no_argument, 0, PROMPT_OPT_NO_BOS }

/* The usage lines for those options, for a command's --help. */
extern const char prompt_usage[];

/* Applies option code c (with its argument); returns 1 if it was a prompt option. */
int prompt_option(PromptOptions *o, int c, const char *arg);

/* Is this a chat prompt (--chat, --system or --messages)? */
int prompt_is_chat(const PromptOptions *o);

/* Turns the prompt into ids. text (len bytes) is the plain prompt, or the
 * user turn with --chat; it must be NULL with --messages. A chat prompt is
 * rendered with the model's template and encoded with its special tokens
 * recognised and no second BOS, as HF's apply_chat_template(messages,
 * add_generation_prompt=True, tokenize=True) does. *ids is malloc'd.
 * rendered (optional) receives the chat text (malloc'd) or NULL. */
int prompt_encode(const Tokenizer *t, const Vocab *v, const PromptOptions *o, const char *text, size_t len, int **ids,
                  int *n, char **rendered, Error *e);

#endif
