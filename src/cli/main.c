/* main.c — neuromap's entry point: a table of subcommands, as git.c has. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

#define COMMAND_ENTRY(name, summary) { #name, cmd_##name, summary },
static const Command commands[] = { NEUROMAP_COMMANDS(COMMAND_ENTRY) };
#undef COMMAND_ENTRY
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: neuromap COMMAND [options]\n\n"
                 "Weight-based interpretability for Llama-family models (after Davies 2025,\n"
                 "\"Flash Interpretability\"). MODEL is a Hugging Face directory, a .gguf file,\n"
                 "or a llama2.c .bin (with --tokenizer FILE).\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
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
