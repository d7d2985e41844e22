/* chat.c — conversations (JSON message lists) and the two Meta chat
 * templates, rendered by hand exactly as their Jinja source renders them.
 *
 * Llama 3 (Meta-Llama-3-8B-Instruct):
 *     {% for message in messages %}
 *       '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>'
 *       (bos_token in front of the first)
 *     then '<|start_header_id|>assistant<|end_header_id|>\n\n'
 *
 * Llama 3.1 Instruct (no tools): bos_token, then always a system turn
 *     '<|start_header_id|>system<|end_header_id|>\n\n'
 *     'Cutting Knowledge Date: December 2023\n' 'Today Date: ' + date_string + '\n\n'
 *     + the first message's content|trim if its role is "system" (it is then
 *     taken out of the list), + '<|eot_id|>'
 *   then every other message as in Llama 3, then the generation prompt.
 *
 * Jinja's |trim is Python's str.strip(): it removes Unicode whitespace at
 * both ends. Tool calls and tool/ipython messages are refused, not rendered.
 */
#include "text/chat.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Conversations */

void chat_add(Chat *c, const char *role, const char *content) {
    c->msg = xrealloc(c->msg, (size_t)(c->n + 1) * sizeof *c->msg);
    c->msg[c->n].role = xstrdup(role);
    c->msg[c->n].content = xstrdup(content);
    c->n++;
}

void chat_prepend(Chat *c, const char *role, const char *content) {
    chat_add(c, role, content);
    ChatMessage last = c->msg[c->n - 1];
    memmove(c->msg + 1, c->msg, (size_t)(c->n - 1) * sizeof *c->msg);
    c->msg[0] = last;
}

void chat_free(Chat *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->msg[i].role);
        free(c->msg[i].content);
    }
    free(c->msg);
    memset(c, 0, sizeof *c);
}

int chat_parse_json(Chat *c, const char *json, size_t len, const char *name, Error *e) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return error_set(e, NM_EINPUT, "%s: not valid JSON", name);
    int rc = NM_OK;
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0)
        rc = error_set(e, NM_EINPUT, "%s: expected a non-empty JSON list of {\"role\": ..., \"content\": ...} messages", name);
    int i = 0;
    for (const cJSON *m = root->child; m && !rc; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !cJSON_IsString(content))
            rc = error_set(e, NM_EINPUT, "%s: message %d needs string \"role\" and \"content\"", name, i);
        else if (cJSON_GetObjectItemCaseSensitive(m, "tool_calls"))
            rc = error_set(e, NM_EINPUT, "%s: message %d has tool_calls; neuromap does not render tool use", name, i);
        else
            chat_add(c, role->valuestring, content->valuestring);
    }
    cJSON_Delete(root);
    if (rc) chat_free(c);
    return rc;
}

int chat_load_file(Chat *c, const char *path, Error *e) {
    char *data;
    size_t len;
    int rc = read_file(path, 64u << 20, &data, &len, e);
    if (rc) return rc;
    rc = chat_parse_json(c, data, len, path, e);
    free(data);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Recognising a template */

/* FNV-1a of each template's exact text (trailing whitespace removed). */
static const struct {
    ChatTemplate kind;
    const char *name;
    uint64_t hash;
    size_t len;
} known[] = {
    { CHAT_LLAMA3, "llama-3", 0x0e60067a5537498eULL, 389 },
    { CHAT_LLAMA31, "llama-3.1", 0xcc0368e1ffb6b958ULL, 4613 },
};

const char *chat_template_name(ChatTemplate t) { return known[t == CHAT_LLAMA31].name; }

int chat_template_detect(const Vocab *v, ChatTemplate *out, Error *e) {
    if (!v->chat_template)
        return error_set(e, NM_EINPUT, "the model has no chat template (tokenizer_config.json chat_template); use a plain prompt");
    size_t len = strlen(v->chat_template);
    while (len && strchr(" \t\r\n", v->chat_template[len - 1])) len--;
    uint64_t h = fnv1a64(FNV1A64_INIT, v->chat_template, len);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].hash == h && known[i].len == len) {
            *out = known[i].kind;
            return NM_OK;
        }
    return error_set(e, NM_EINPUT,
                     "the model's chat template (%zu bytes) is not one neuromap renders exactly "
                     "(it knows Meta's Llama 3 and Llama 3.1 Instruct templates); give the prompt as plain text instead",
                     len);
}

/* ----------------------------------------------------------------------------
 * Rendering */

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1);
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void puts_buf(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* Python's str.isspace() code points. */
static int is_py_space(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Decodes the code point at s (n bytes left); returns its length, 1 for a byte
 * that starts no well-formed character (cp = U+FFFD, never whitespace). */
static int utf8_at(const unsigned char *s, size_t n, unsigned *cp) {
    int len = utf8_decode(s, n, cp);
    if (len) return len;
    *cp = 0xFFFD;
    return 1;
}

/* Appends s with Unicode whitespace stripped from both ends (Jinja |trim). */
static void put_trimmed(Buf *b, const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), start = 0, end = 0;
    int seen = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        int len = utf8_at(u + i, n - i, &cp);
        if (!is_py_space(cp)) {
            if (!seen) start = i;
            seen = 1;
            end = i + (size_t)len;
        }
        i += (size_t)len;
    }
    if (seen) put(b, s + start, end - start);
}

static void put_turn(Buf *b, const char *role, const char *content) {
    puts_buf(b, "<|start_header_id|>");
    puts_buf(b, role);
    puts_buf(b, "<|end_header_id|>\n\n");
    put_trimmed(b, content);
    puts_buf(b, "<|eot_id|>");
}

int chat_render(const Vocab *v, const Chat *c, const char *date, char **out, size_t *len, Error *e) {
    ChatTemplate kind;
    int rc = chat_template_detect(v, &kind, e);
    if (rc) return rc;
    if (c->n == 0) return error_set(e, NM_EINPUT, "chat: the conversation has no messages");
    if (v->bos_id < 0) return error_set(e, NM_EINPUT, "chat: the vocabulary has no BOS token for the template");
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->msg[i].role, "tool") == 0 || strcmp(c->msg[i].role, "ipython") == 0)
            return error_set(e, NM_EINPUT, "chat: message %d has role '%s'; neuromap does not render tool use", i, c->msg[i].role);
    Buf b = { 0 };
    puts_buf(&b, v->piece[v->bos_id]);
    int first = 0;
    if (kind == CHAT_LLAMA31) {
        puts_buf(&b, "<|start_header_id|>system<|end_header_id|>\n\n");
        puts_buf(&b, "Cutting Knowledge Date: December 2023\n");
        puts_buf(&b, "Today Date: ");
        puts_buf(&b, date ? date : "26 Jul 2024");
        puts_buf(&b, "\n\n");
        if (strcmp(c->msg[0].role, "system") == 0) {
            put_trimmed(&b, c->msg[0].content);
            first = 1;
        }
        puts_buf(&b, "<|eot_id|>");
    }
    for (int i = first; i < c->n; i++) put_turn(&b, c->msg[i].role, c->msg[i].content);
    puts_buf(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    *out = b.s;
    *len = b.n;
    return NM_OK;
}
