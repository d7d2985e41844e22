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

long option_long(const char *cmd, const char *name, const char *s, long lo, long hi) {
    long v;
    if (!parse_long(s, &v) || v < lo || v > hi)
        die(NM_EINPUT, "%s: %s must be a whole number in %ld..%ld, not '%s'", cmd, name, lo, hi, s);
    return v;
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
