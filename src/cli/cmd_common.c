/* cmd_common.c — helpers every command shares (declared in cmd.h). They live
 * outside main.c so that the C tests, which link every source but main.c,
 * can link the commands too. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

void error_exit(const Error *e) {
    fflush(stdout);
    fprintf(stderr, "neuromap: %s\n", e->msg[0] ? e->msg : "unknown error");
    exit(e->code ? e->code : NM_ERUNTIME);
}

void die(int code, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("neuromap: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

int is_help_flag(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

void put_json(cJSON *o, int pretty) {
    char *s = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

void open_model_or_exit(Model *m, const char *path, const char *tokenizer_path, int need_weights) {
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer_path, .need_weights = need_weights };
    /* a command that needs the weights, given what `map` wrote: say so, not "bad llama2.c header" */
    if (atlas_is_atlas(path)) die(NM_EINPUT, "%s is a neuromap atlas; give the model (this command runs or reads its weights)", path);
    if (model_open(m, path, &o, &e)) error_exit(&e);
    if (tokenizer_path && m->format != FORMAT_LLAMA2C)
        fprintf(stderr, "neuromap: warning: --tokenizer is for llama2.c checkpoints; %s (%s) carries its own tokenizer: "
                        "%s is not used\n", path, format_name(m->format), tokenizer_path);
}

void hook_notes(const char *cmd, const HookOptions *o, int hooked) {
    if (o->site_given && !hooked)
        fprintf(stderr, "%s: warning: --clamp-site without --clamp, --scale or --sweep: nothing is clamped\n", cmd);
    else if (o->site_given && o->site == SITE_UP)
        fprintf(stderr, "%s: note: --clamp-site up fixes up·x before the gate scales it; on stories260K it does not steer "
                        "(act, the default, does: README \"Clamping neurons\")\n", cmd);
}

char *token_quoted(const TokenNames *tn, int id) {
    char *text = token_text(tn, id); /* backslashes already escaped: \" is unambiguous */
    size_t n = strlen(text), o = 0;
    char *out = xmalloc(2 * n + 3);
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '"') out[o++] = '\\';
        out[o++] = text[i];
    }
    out[o++] = '"';
    out[o] = 0;
    free(text);
    return out;
}

int text_columns(const char *s) {
    int c = 0;
    for (; *s; s++) c += ((unsigned char)*s & 0xC0) != 0x80; /* one per UTF-8 character */
    return c;
}

/* MODEL's name + .atlas.db, in the current directory: stories260K.bin →
 * stories260K.atlas.db, Llama-3.1-8B/ → Llama-3.1-8B.atlas.db. Trailing
 * slashes are ignored, and only a checkpoint extension is stripped: the
 * dots of "3.1" are part of the name. */
char *default_atlas_name(const char *model) {
    static const char *const ext[] = { ".gguf", ".bin", ".safetensors" };
    size_t end = strlen(model);
    while (end > 1 && model[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && model[start - 1] != '/') start--;
    size_t n = end - start;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t el = strlen(ext[i]);
        if (n > el && strncmp(model + end - el, ext[i], el) == 0) {
            n -= el;
            break;
        }
    }
    if ((n == 1 && (model[start] == '/' || model[start] == '.')) || (n == 2 && strncmp(model + start, "..", 2) == 0)) {
        char *abs = realpath(model, NULL); /* ".", ".." or "/": the directory's own name, if it has one */
        char *out = abs && strcmp(abs, "/") != 0 ? default_atlas_name(abs) : xstrdup("model.atlas.db");
        free(abs);
        return out;
    }
    char *out = xmalloc(n + 16);
    snprintf(out, n + 16, "%.*s.atlas.db", (int)n, model + start);
    return out;
}

void open_steering(const char *path, const char *tokenizer_path, HookOptions *ho, Model *m, Tokenizer **tok, HookSet *hooks) {
    Error e = { 0 };
    open_model_or_exit(m, path, tokenizer_path, 1);
    if (tokenizer_new(&m->vocab, tok, &e) || hook_options_resolve(ho, m->cfg.n_layers, m->cfg.ffn_dim, hooks, &e)) error_exit(&e);
}
