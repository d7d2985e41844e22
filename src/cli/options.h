/* options.h — one table of options per command, one parser for them all
 * (after git's parse-options).
 *
 * A command lists its options once, as an array of Option ending in
 * OPT_END(); options_parse() then does everything getopt_long and the
 * commands' switch statements used to do by hand: it finds each option
 * (long, short, an old spelling, or an unambiguous prefix of a long name),
 * takes its value (--name VALUE, --name=VALUE, -c VALUE, -cVALUE), checks it
 * (a whole number in its range, a number in its range, one word of a list)
 * and stores it, and it writes every message, one line, exit 2:
 *
 *     show: --top-k needs a value
 *     show: --top-k must be a whole number in 0..4194304, not 'x'
 *     show: --matrix must be up, gate or down, not 'x'
 *     show: unknown option '--foo' (see 'neuromap show --help')
 *
 * --help is made from the same table: the usage line, the command's
 * description, then every option with its value name and help. So a new
 * option is one line in a table, and the help cannot forget it.
 *
 * The same option means the same thing in every command: --threads N
 * (0..1024, 0 or absent: every core) is OPT_THREADS, --format is the output
 * format, --tokenizer FILE the llama2.c tokenizer.
 *
 * Tables point into the command's own variables, so they are built inside
 * the command's function, with the OPT_* macros: each gives the fields of one
 * entry, and more fields can follow it:
 *
 *     Option opts[] = {
 *         { OPT_INT(0, "top-k", &top_k, "K", 0, 1 << 22, "highest-logit tokens (default 10)"), .seen = &k_given },
 *         { OPT_CHOICE(0, "matrix", &k, "M", matrix_names, "up (default), gate or down") },
 *         { OPT_STRING(0, "file-format", &fmt, "F", "hf or gguf"), .aliases = "format" },
 *         { OPT_THREADS(&threads) },
 *         { OPT_END() },
 *     };
 */
#ifndef NEUROMAP_OPTIONS_H
#define NEUROMAP_OPTIONS_H

#include "neuromap.h"

typedef enum {
    OPTION_END,    /* ends the table */
    OPTION_FLAG,   /* no value: *(int *)dest = set_to (OPT_FLAG: 1; OPT_SET_INT: any) */
    OPTION_INT,    /* a whole number in min..max: *(long *)dest */
    OPTION_FLOAT,  /* a number in min..max (min excluded with .min_open; "inf" if max is INFINITY): *(double *)dest */
    OPTION_STRING, /* any text: *(const char **)dest */
    OPTION_CHOICE, /* one word of .choices (NULL-terminated): *(int *)dest = its index */
    OPTION_CALL,   /* handed to .call (repeatable options, shared option sets) */
    OPTION_GROUP,  /* not an option: a heading (or a block of text) in --help */
} OptionKind;

typedef struct Option Option;
struct Option {
    OptionKind kind;
    const char *name;     /* long name, without the dashes */
    char short_name;      /* 'o' for -o; 0: none */
    const char *value;    /* the value's name in --help ("N", "FILE") */
    void *dest;
    long min, max;        /* OPTION_INT */
    double fmin, fmax;    /* OPTION_FLOAT */
    int min_open;         /* OPTION_FLOAT: fmin itself is not allowed */
    const char *const *choices; /* OPTION_CHOICE */
    int set_to;           /* OPTION_FLAG: the value stored (1 unless given) */
    const char *help;     /* lines of help, '\n'-separated; NULL: not listed (a GROUP text describes it) */
    const char *aliases;  /* old spellings still accepted, space-separated long names */
    int *seen;            /* if set: 1 once the option is given */
    /* OPTION_CALL: returns 0, or fills e (its message gets the command's
     * name in front) and returns non-zero. code is .set_to. */
    int (*call)(void *dest, int code, const char *arg, Error *e);
};

/* Table entries: kind, names, destination, value name, checks, help. */
#define OPT_FLAG(s, l, d, h) OPT_SET_INT(s, l, d, 1, h)
#define OPT_SET_INT(s, l, d, v, h) .kind = OPTION_FLAG, .short_name = (s), .name = (l), .dest = (d), .set_to = (v), .help = (h)
#define OPT_INT(s, l, d, v, lo, hi, h) \
    .kind = OPTION_INT, .short_name = (s), .name = (l), .dest = (d), .value = (v), .min = (lo), .max = (hi), .help = (h)
#define OPT_FLOAT(s, l, d, v, lo, hi, h) \
    .kind = OPTION_FLOAT, .short_name = (s), .name = (l), .dest = (d), .value = (v), .fmin = (lo), .fmax = (hi), .help = (h)
#define OPT_STRING(s, l, d, v, h) .kind = OPTION_STRING, .short_name = (s), .name = (l), .dest = (d), .value = (v), .help = (h)
#define OPT_CHOICE(s, l, d, v, list, h) \
    .kind = OPTION_CHOICE, .short_name = (s), .name = (l), .dest = (d), .value = (v), .choices = (list), .help = (h)
#define OPT_CALL(s, l, d, v, fn, code, h) \
    .kind = OPTION_CALL, .short_name = (s), .name = (l), .dest = (d), .value = (v), .call = (fn), .set_to = (code), .help = (h)
#define OPT_GROUP(text) .kind = OPTION_GROUP, .help = (text)
#define OPT_END() .kind = OPTION_END

/* The options every command spells the same way. */
#define OPT_THREADS(d) OPT_INT(0, "threads", d, "N", 0, 1024, "worker threads (default 0: all cores)")
/* For the commands with nothing to share out (info, tokenize, synth): every
 * command takes --threads, so that one command line works for all. */
#define OPT_THREADS_UNUSED(d) \
    OPT_INT(0, "threads", d, "N", 0, 1024, "accepted as by every command (0..1024); this one runs on one thread")
/* generate, probe: today's F32 matmuls instead of the quantised dot products (forward.h). */
#define OPT_EXACT_ACTIVATIONS(d)                                                                             \
    OPT_FLAG(0, "exact-activations", d, "multiply in F32 (bit-identical to the reference path) instead of\n"    \
             "quantising activations to int8 per block as llama.cpp does (faster)")
/* generate, probe: the KV cache's type (forward_set_kv_f16); dest: an int,
 * 0 = f32, 1 = f16. */
extern const char *const options_kv_types[];
#define OPT_KV(d) OPT_CHOICE(0, "kv", d, "TYPE", options_kv_types, "the KV cache: f32 (default, exact) or f16 (half the memory;\n" \
                              "keys and values rounded to 11 significant bits)")
#define OPT_TOKENIZER(d) OPT_STRING(0, "tokenizer", d, "FILE", "llama2.c tokenizer .bin (e.g. tok512.bin)")

/* The prompt options of text/prompt.h (tokenize, generate, probe), described
 * in --help by its prompt_usage; dest: a PromptOptions. */
int options_prompt(void *dest, int code, const char *arg, Error *e);
#define OPT_PROMPT_OPTIONS(po)                                                                              \
    { OPT_GROUP(prompt_usage) },                                                                            \
        { OPT_CALL(0, "special", po, NULL, options_prompt, PROMPT_OPT_SPECIAL, NULL) },                     \
        { OPT_CALL(0, "bos", po, NULL, options_prompt, PROMPT_OPT_BOS, NULL) },                             \
        { OPT_CALL(0, "no-bos", po, NULL, options_prompt, PROMPT_OPT_NO_BOS, NULL) },                       \
        { OPT_CALL(0, "chat", po, NULL, options_prompt, PROMPT_OPT_CHAT, NULL) },                           \
        { OPT_CALL(0, "system", po, "TEXT", options_prompt, PROMPT_OPT_SYSTEM, NULL) },                     \
        { OPT_CALL(0, "messages", po, "FILE.json", options_prompt, PROMPT_OPT_MESSAGES, NULL) },            \
        { OPT_CALL(0, "date", po, "DATE", options_prompt, PROMPT_OPT_DATE, NULL) }

/* The neuron hook options of infer/clamp.h (generate, probe), described by
 * its hook_usage; dest: a HookOptions. */
int options_hook(void *dest, int code, const char *arg, Error *e);
#define OPT_HOOK_OPTIONS(ho)                                                                                \
    { OPT_GROUP(hook_usage) },                                                                              \
        { OPT_CALL(0, "clamp", ho, "L:N=V", options_hook, HOOK_OPT_CLAMP, NULL) },                          \
        { OPT_CALL(0, "scale", ho, "L:N=S", options_hook, HOOK_OPT_SCALE, NULL) },                          \
        { OPT_CALL(0, "clamp-site", ho, "SITE", options_hook, HOOK_OPT_SITE, NULL) },                       \
        { OPT_CALL(0, "clamp-positions", ho, "P", options_hook, HOOK_OPT_POSITIONS, NULL) }

/* What --help says about the command around its options. */
typedef struct {
    const char *name;  /* "show" */
    const char *usage; /* after "usage: neuromap ": "show MODEL|ATLAS L:N [options]"; more lines may follow */
    const char *about; /* the description paragraph(s), ending in '\n' */
    const char *after; /* optional: text after the options */
} CommandHelp;

/* Parses argv[1..argc) (argv[0] is the command name) against opts. Prints
 * --help (-h) to stdout and exits 0; any bad option exits 2 with its
 * message. The arguments that are not options, in their order, are moved
 * to argv[1..n]; returns n. "--" ends the options. */
int options_parse(const CommandHelp *c, Option *opts, int argc, char **argv);
/* options_parse, then exactly n arguments, or exit 2 with
 * "NAME: expected WHAT (see 'neuromap NAME --help')". */
void options_parse_args(const CommandHelp *c, Option *opts, int argc, char **argv, int n, const char *what);

/* Writes c's --help for opts to out. */
void options_help(const CommandHelp *c, const Option *opts, FILE *out);

#endif
