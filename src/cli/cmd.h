/* cmd.h — the subcommands (one file each, cmd_NAME.c) and what they share. */
#ifndef NEUROMAP_CMD_H
#define NEUROMAP_CMD_H

#include "neuromap.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
    const char *summary;
} Command;

int cmd_info(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_find(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_activations(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_agreement(int argc, char **argv);
/* show ATLAS L:N --examples (cmd_activations.c); argv as cmd_show's. */
int show_examples(int argc, char **argv);

/* The program's only ways out on failure (the library returns an Error
 * instead): "neuromap: <msg>" on stderr, stdout flushed first, then exit
 * with the code (e->code, or 1 when it is 0). */
_Noreturn void error_exit(const Error *e);
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cmd_export(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/* Prints usage to stdout and returns 0 when argv holds -h/--help. */
int is_help_flag(const char *arg);

/* A whole number in lo..hi given to option NAME of command CMD, or exit 2
 * saying so. */
long option_long(const char *cmd, const char *name, const char *s, long lo, long hi);

/* Opens MODEL or exits with its error (exit 2 for bad input). */
void open_model_or_exit(Model *m, const char *path, const char *tokenizer_path, int need_weights);

/* The notes generate and probe print about --clamp-site: a warning when
 * nothing is hooked, a note for the up site. hooked: any clamp, scale or sweep. */
void hook_notes(const char *cmd, const HookOptions *o, int hooked);

/* A token for tables: its text as map's TSV escapes it, in double quotes,
 * a quote inside written \" (so the token " shows as "\"", not """). Malloc'd. */
char *token_quoted(const TokenNames *tn, int id);
/* Display columns of UTF-8 text: one per character (aligning multibyte tokens). */
int text_columns(const char *s);

#endif
