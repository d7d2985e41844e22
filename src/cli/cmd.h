/* cmd.h — the subcommands (one file each, cmd_NAME.c) and what they share. */
#ifndef NEUROMAP_CMD_H
#define NEUROMAP_CMD_H

#include "neuromap.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
    const char *summary;
} Command;

/* Every command, in the order `neuromap --help` lists them: X(name, summary).
 * main.c builds its table from this list; each cmd_NAME.c defines
 * int cmd_NAME(int argc, char **argv) (argv[0] is the command name). */
#define NEUROMAP_COMMANDS(X)                                                                                    \
    X(info, "describe a checkpoint: format, shapes, dtypes, vocabulary")                                        \
    X(map, "decode MLP neurons through the final norm and LM head into an atlas")                               \
    X(show, "one neuron's top and bottom tokens, from a model or an atlas")                                     \
    X(find, "the neurons that most promote a token, from a model or an atlas")                                  \
    X(diff, "compare two checkpoints neuron by neuron, or what neurons read with what they write")              \
    X(generate, "generate text, with neurons clamped or scaled (--compare: both)")                              \
    X(probe, "probability of a continuation, with and without clamps (--sweep: a curve)")                       \
    X(synth, "write a synthetic Llama checkpoint (HF or GGUF) with planted neurons")                            \
    X(tokenize, "text or a chat prompt to token ids, and ids back to text")                                     \
    X(activations, "run a corpus: each neuron's activation statistics and strongest examples")                  \
    X(trace, "the neurons that fire most at each token of a text, with what they write")                        \
    X(agreement, "do the weights' readings agree with where neurons fire? (per neuron, per layer)")             \
    X(export, "print an atlas as map --format tsv|jsonl would have printed it")                                 \
    X(serve, "the web atlas: browse, search and steer an atlas in a browser")                                   \
    X(merge, "join the part atlases of map --shard I/N into one atlas")

#define NEUROMAP_DECLARE_COMMAND(name, summary) int cmd_##name(int argc, char **argv);
NEUROMAP_COMMANDS(NEUROMAP_DECLARE_COMMAND)
#undef NEUROMAP_DECLARE_COMMAND

/* show ATLAS L:N --examples (cmd_activations.c); argv as cmd_show's. */
int show_examples(int argc, char **argv);

/* The program's only ways out on failure (the library returns an Error
 * instead): "neuromap: <msg>" on stderr, stdout flushed first, then exit
 * with the code (e->code, or 1 when it is 0). */
_Noreturn void error_exit(const Error *e);
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints usage to stdout and returns 0 when argv holds -h/--help. */
int is_help_flag(const char *arg);

/* Writes the JSON document o to stdout, indented (pretty) or on one line,
 * then a newline, and frees o: every command's --format json ends here. */
void put_json(cJSON *o, int pretty);

/* The atlas a command writes for MODEL when no -o is given: MODEL's last
 * path component, trailing slashes ignored and only a known extension
 * (.gguf, .bin, .safetensors) stripped, + ".atlas.db" (malloc'd). */
char *default_atlas_name(const char *model);

/* What generate and probe start from: the model, its tokenizer and the
 * neurons its hook options name, or exit with the error. */
void open_steering(const char *path, const char *tokenizer_path, HookOptions *ho, Model *m, Tokenizer **tok, HookSet *hooks);

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
