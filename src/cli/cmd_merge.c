/* cmd_merge.c — `neuromap merge PART... -o ATLAS`: the atlases that
 * `map --shard I/N` wrote, joined into the one a single map would have
 * written (store/atlas_merge.c does the work and every check). */
#include <getopt.h>
#include <stdlib.h>

#include "cli/cmd.h"

static const char usage_text[] =
    "usage: neuromap merge PART... -o ATLAS [--force] [--allow-incomplete]\n\n"
    "Joins the part atlases of 'neuromap map --shard I/N' (a job array's results) into one atlas,\n"
    "equal row for row to a single-process map with the same options (compare with 'neuromap\n"
    "export'). Parts of different models or options, parts that overlap (a shard twice), and\n"
    "parts that are themselves incomplete are refused before anything is written; so are missing\n"
    "shards, which are named.\n\n"
    "  -o, --output ATLAS  the merged atlas (written as ATLAS.partial, renamed when complete)\n"
    "  --force             overwrite an existing ATLAS\n"
    "  --allow-incomplete  write even when shards are missing; the atlas's meta 'missing_shards'\n"
    "                      names them\n"
    "  -h, --help          this help\n";

int cmd_merge(int argc, char **argv) {
    static const struct option opts[] = {
        { "output", required_argument, 0, 'o' }, { "force", no_argument, 0, 'F' },
        { "allow-incomplete", no_argument, 0, 'I' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    AtlasMergeOptions mo = { 0 };
    const char *out = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'F': mo.force = 1; break;
        case 'I': mo.allow_incomplete = 1; break;
        case 'h': fputs(usage_text, stdout); return NM_OK;
        default: die(NM_EINPUT, "merge: unknown or incomplete option '%s' (see 'neuromap merge --help')", argv[optind - 1]);
        }
    }
    if (!out) die(NM_EINPUT, "merge: name the merged atlas with -o ATLAS");
    if (optind >= argc) die(NM_EINPUT, "merge: expected one or more PART atlases (see 'neuromap merge --help')");
    Error e = { 0 };
    AtlasMergeReport rep;
    double t0 = now_seconds();
    if (atlas_merge(out, (const char *const *)argv + optind, argc - optind, &mo, &rep, &e)) error_exit(&e);
    fprintf(stderr, "merge: %s: %lld neurons from %d of %d shards in %.2f s\n", out, (long long)rep.neurons,
            rep.n_shards - rep.n_missing, rep.n_shards, now_seconds() - t0);
    if (rep.n_missing)
        fprintf(stderr, "merge: warning: %s is incomplete: shard%s %s of %d missing (meta 'missing_shards')\n", out,
                rep.n_missing > 1 ? "s" : "", rep.missing, rep.n_shards);
    return NM_OK;
}
