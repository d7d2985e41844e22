/* cmd_export.c — `neuromap export ATLAS --format tsv|jsonl`: an atlas
 * written out exactly as `map --format tsv|jsonl` would have written it,
 * byte for byte and in the same order (matrix, layer, neuron), through the
 * same writers (report/neuron_out.c). */
#include <stdlib.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "export",
    .usage = "usage: neuromap export ATLAS --format tsv|jsonl\n",
    .about = "Prints the neurons an atlas holds to stdout, exactly as `neuromap map --format tsv|jsonl`\n"
             "would have printed them (the same rows, in the same order: matrix up, gate, down; layer;\n"
             "neuron). A neuron with non-finite weights has no TSV rows and a {\"nonfinite\": true}\n"
             "JSON line, as in map.\n",
};

enum { EXPORT_TSV, EXPORT_JSONL };

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
    static const char *const formats[] = { [EXPORT_TSV] = "tsv", [EXPORT_JSONL] = "jsonl", NULL };
    int format = -1; /* none given: there is no default, the two are equally likely wanted */
    long threads = 0;
    Option opts[] = {
        { OPT_CHOICE(0, "format", &format, "F", formats, "tsv or jsonl (required)") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one ATLAS");
    if (format < 0) die(NM_EINPUT, "export: --format tsv or --format jsonl is required");
    const char *path = argv[1];
    if (!atlas_is_atlas(path)) die(NM_EINPUT, "%s: not an atlas (an SQLite file written by 'neuromap map')", path);
    Error e = { 0 };
    Atlas *a;
    if (atlas_open(&a, path, &e)) error_exit(&e);
    TokenNames names = atlas_token_names(a);
    Export x = { .names = &names, .jsonl = format == EXPORT_JSONL };
    if (!x.jsonl) neuron_tsv_header(stdout);
    int rc = atlas_each_neuron(a, write_neuron, &x, &e);
    atlas_close(a);
    if (rc == NM_ERUNTIME && !e.msg[0]) die(NM_ERUNTIME, "export: cannot write to stdout");
    if (rc) error_exit(&e);
    if (fflush(stdout) != 0) die(NM_ERUNTIME, "export: cannot write to stdout");
    return NM_OK;
}
