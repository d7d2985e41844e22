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
    if (model_open(m, path, &o, &e)) error_exit(&e);
}
