/* main.c — neuromap's entry point: a table of subcommands, as git.c has. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

static const Command commands[] = {
    { "info", cmd_info, "describe a checkpoint: format, shapes, dtypes, vocabulary" },
    { "map", cmd_map, "decode MLP neurons through the final norm and LM head into an atlas" },
    { "show", cmd_show, "one neuron's top and bottom tokens, from a model or an atlas" },
    { "find", cmd_find, "the neurons that most promote a token, from a model or an atlas" },
    { "diff", cmd_diff, "compare two checkpoints neuron by neuron, or what neurons read with what they write" },
    { "generate", cmd_generate, "generate text, with neurons clamped or scaled (--compare: both)" },
    { "probe", cmd_probe, "probability of a continuation, with and without clamps (--sweep: a curve)" },
    { "synth", cmd_synth, "write a synthetic Llama checkpoint (HF or GGUF) with planted neurons" },
    { "tokenize", cmd_tokenize, "text or a chat prompt to token ids, and ids back to text" },
    { "activations", cmd_activations, "run a corpus: each neuron's activation statistics and strongest examples" },
    { "trace", cmd_trace, "the neurons that fire most at each token of a text, with what they write" },
    { "agreement", cmd_agreement, "do the weights' readings agree with where neurons fire? (per neuron, per layer)" },
    { "export", cmd_export, "print an atlas as map --format tsv|jsonl would have printed it" },
    { "serve", cmd_serve, "the web atlas: browse, search and steer an atlas in a browser" },
    { "merge", cmd_merge, "join the part atlases of map --shard I/N into one atlas" },
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: neuromap COMMAND [options]\n\n"
                 "Weight-based interpretability for Llama-family models (after Davies 2025,\n"
                 "\"Flash Interpretability\"). MODEL is a Hugging Face directory, a .gguf file,\n"
                 "or a llama2.c .bin (with --tokenizer FILE).\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nOptions mean the same in every command: --threads N (0..1024; 0 or absent: all cores),\n"
                 "--format F (what is written: table, tsv, json ...), --tokenizer FILE (a llama2.c\n"
                 "tokenizer .bin); each accepts --name VALUE, --name=VALUE and any unambiguous prefix.\n");
    fprintf(out, "\n'neuromap COMMAND --help' describes a command. 'neuromap --version' prints the version.\n"
                 "Exit status: 0 success, 1 runtime failure, 2 bad input or usage.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return NM_EINPUT;
    }
    if (is_help_flag(argv[1])) {
        usage(stdout);
        return NM_OK;
    }
    /* The kernel set: the best this CPU has, or NEUROMAP_ISA's (base/cpu.h). */
    Error e = { 0 };
    if (cpu_isa_from_env(&e)) error_exit(&e);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        char have[96];
        printf("neuromap %s\nkernels: %s (this CPU has %s; NEUROMAP_ISA chooses)\n", NEUROMAP_VERSION, cpu_isa_label(),
               cpu_isa_list(have, sizeof have));
        if (cpu_note()) printf("note: %s\n", cpu_note());
        return NM_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    if (argv[1][0] == '-') {
        fprintf(stderr, "neuromap: unknown option '%s' (see 'neuromap --help')\n", argv[1]);
        return NM_EINPUT;
    }
    fprintf(stderr, "neuromap: unknown command '%s' (see 'neuromap --help')\n", argv[1]);
    return NM_EINPUT;
}
