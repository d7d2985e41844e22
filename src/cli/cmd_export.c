/* cmd_export.c — `neuromap export ATLAS --format tsv|jsonl`: an atlas
 * written out exactly as `map --format tsv|jsonl` would have written it,
 * byte for byte and in the same order (matrix, layer, neuron), through the
 * same writers (report/neuron_out.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

static const char usage_text[] =
    "usage: neuromap export ATLAS --format tsv|jsonl\n\n"
    "Prints the neurons an atlas holds to stdout, exactly as `neuromap map --format tsv|jsonl`\n"
    "would have printed them (the same rows, in the same order: matrix up, gate, down; layer;\n"
    "neuron). A neuron with non-finite weights has no TSV rows and a {\"nonfinite\": true}\n"
    "JSON line, as in map.\n\n"
    "  --format F          tsv or jsonl (required)\n"
    "  -h, --help          this help\n";

typedef struct {
    const TokenNames *names;
    int jsonl;
} Export;

static int write_neuron(void *ctx, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top, int n_bottom) {
    const Export *x = ctx;
    if (x->jsonl) neuron_jsonl(stdout, x->names, k, layer, neuron, r, n_top, n_bottom);
    else neuron_tsv(stdout, x->names, k, layer, neuron, r, n_top, n_bottom);
    return ferror(stdout) ? NM_ERUNTIME : NM_OK;
}

int cmd_export(int argc, char **argv) {
    static const struct option opts[] = {
        { "format", required_argument, 0, 'f' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    int format = -1, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "tsv") == 0) format = 0;
            else if (strcmp(optarg, "jsonl") == 0) format = 1;
            else die(NM_EINPUT, "export: --format must be tsv or jsonl, not '%s'", optarg);
            break;
        case 'h': fputs(usage_text, stdout); return NM_OK;
        default: die(NM_EINPUT, "export: unknown or incomplete option '%s' (see 'neuromap export --help')", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) die(NM_EINPUT, "export: expected one ATLAS (see 'neuromap export --help')");
    if (format < 0) die(NM_EINPUT, "export: --format tsv or --format jsonl is required");
    const char *path = argv[optind];
    if (!atlas_is_atlas(path)) die(NM_EINPUT, "%s: not an atlas (an SQLite file written by 'neuromap map')", path);
    Error e = { 0 };
    Atlas *a;
    if (atlas_open(&a, path, &e)) error_exit(&e);
    TokenNames names = atlas_token_names(a);
    Export x = { .names = &names, .jsonl = format == 1 };
    if (!x.jsonl) neuron_tsv_header(stdout);
    int rc = atlas_each_neuron(a, write_neuron, &x, &e);
    atlas_close(a);
    if (rc == NM_ERUNTIME && !e.msg[0]) die(NM_ERUNTIME, "export: cannot write to stdout");
    if (rc) error_exit(&e);
    if (fflush(stdout) != 0) die(NM_ERUNTIME, "export: cannot write to stdout");
    return NM_OK;
}
