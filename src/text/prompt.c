/* prompt.c — text or a conversation → the ids a model sees (see prompt.h). */
#include "text/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "text/chat.h"

const char prompt_usage[] =
    "  --special           recognise special-token text (<|eot_id|>, </s>) in the prompt\n"
    "  --bos, --no-bos     add / leave out BOS (default: as the model's tokenizer does)\n"
    "  --chat              wrap the prompt as one user turn of the model's chat template\n"
    "  --system TEXT       a system message before it (implies --chat)\n"
    "  --messages FILE.json\n"
    "                      a whole conversation: [{\"role\": \"user\", \"content\": \"...\"}, ...]\n"
    "  --date DATE         the Llama 3.1 template's \"Today Date\" (default \"26 Jul 2024\")\n";

int prompt_option(PromptOptions *o, int c, const char *arg) {
    switch (c) {
    case PROMPT_OPT_CHAT: o->chat = 1; return 1;
    case PROMPT_OPT_SYSTEM: o->system = arg; return 1;
    case PROMPT_OPT_MESSAGES: o->messages = arg; return 1;
    case PROMPT_OPT_DATE: o->date = arg; return 1;
    case PROMPT_OPT_SPECIAL: o->special = 1; return 1;
    case PROMPT_OPT_BOS: o->bos = 1; return 1;
    case PROMPT_OPT_NO_BOS: o->bos = -1; return 1;
    default: return 0;
    }
}

int prompt_is_chat(const PromptOptions *o) { return o->chat || o->system || o->messages; }

/* The conversation the options describe. */
static int build_chat(const PromptOptions *o, const char *text, size_t len, Chat *c, Error *e) {
    memset(c, 0, sizeof *c);
    if (o->messages) {
        if (text) return error_set(e, NM_EINPUT, "give either a prompt or --messages FILE, not both");
        int rc = chat_load_file(c, o->messages, e);
        if (rc) return rc;
        if (o->system) {
            if (strcmp(c->msg[0].role, "system") == 0) {
                chat_free(c);
                return error_set(e, NM_EINPUT, "%s already starts with a system message; drop --system", o->messages);
            }
            chat_prepend(c, "system", o->system);
        }
        return NM_OK;
    }
    if (!text) return error_set(e, NM_EINPUT, "--chat needs a prompt to use as the user turn");
    if (memchr(text, 0, len)) return error_set(e, NM_EINPUT, "a chat prompt cannot contain NUL bytes");
    if (o->system) chat_add(c, "system", o->system);
    char *user = xstrndup(text, len);
    chat_add(c, "user", user);
    free(user);
    return NM_OK;
}

int prompt_encode(const Tokenizer *t, const Vocab *v, const PromptOptions *o, const char *text, size_t len, int **ids,
                  int *n, char **rendered, Error *e) {
    if (rendered) *rendered = NULL;
    if (!prompt_is_chat(o)) {
        if (!text) return error_set(e, NM_EINPUT, "no prompt given");
        int flags = (o->special ? TOK_SPECIAL : 0) | ((o->bos > 0 || (o->bos == 0 && v->add_bos)) ? TOK_ADD_BOS : 0);
        return tokenizer_encode(t, text, len, flags, ids, n, e);
    }
    Chat c;
    int rc = build_chat(o, text, len, &c, e);
    if (rc) return rc;
    char *chat_text;
    size_t chat_len;
    rc = chat_render(v, &c, o->date, &chat_text, &chat_len, e);
    chat_free(&c);
    if (rc) return rc;
    /* The template writes BOS itself: encode without adding another. */
    rc = tokenizer_encode(t, chat_text, chat_len, TOK_SPECIAL, ids, n, e);
    if (!rc && o->bos < 0 && *n > 0 && (*ids)[0] == v->bos_id) memmove(*ids, *ids + 1, (size_t)--(*n) * sizeof **ids);
    if (rendered && !rc) *rendered = chat_text;
    else free(chat_text);
    return rc;
}
