/* cmd_merge.c — `neuromap merge PART... -o ATLAS`: the atlases that
 * `map --shard I/N` wrote, joined into the one a single map would have
 * written (store/atlas_merge.c does the work and every check). */
#include <stdlib.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "merge",
    .usage = "usage: neuromap merge PART... -o ATLAS [--force] [--allow-incomplete]\n",
    .about = "Joins the part atlases of 'neuromap map --shard I/N' (a job array's results) into one atlas,\n"
             "equal row for row to a single-process map with the same options (compare with 'neuromap\n"
             "export'). Parts of different models or options, parts that overlap (a shard twice), and\n"
             "parts that are themselves incomplete are refused before anything is written; so are missing\n"
             "shards, which are named. The parts of 'neuromap activations --shard I/N' merge the same way\n"
             "(docs/DISTRIBUTED.md): pass-1 parts into BANDS; BANDS and the pass-2 parts into the atlas.\n",
};

int cmd_merge(int argc, char **argv) {
    AtlasMergeOptions mo = { 0 };
    const char *out = NULL;
    long threads = 0;
    Option opts[] = {
        { OPT_STRING('o', "output", &out, "ATLAS", "the merged atlas (written as ATLAS.partial, renamed when complete)") },
        { OPT_FLAG(0, "force", &mo.force, "overwrite an existing ATLAS") },
        { OPT_FLAG(0, "allow-incomplete", &mo.allow_incomplete,
                   "write even when shards are missing; the atlas's meta 'missing_shards'\nnames them") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    int n_parts = options_parse(&help, opts, argc, argv);
    if (!out) die(NM_EINPUT, "merge: name the merged atlas with -o ATLAS");
    if (n_parts < 1) die(NM_EINPUT, "merge: expected one or more PART atlases (see 'neuromap merge --help')");
    Error e = { 0 };
    double t0 = now_seconds();
    if (act_is_part(argv[1])) { /* the parts of `activations --shard I/N` */
        if (mo.allow_incomplete)
            die(NM_EINPUT, "merge: --allow-incomplete is for map parts: activation parts merge only whole (the band edges, "
                "the examples and every statistic need every shard)");
        ActMergeReport ar;
        if (act_merge(out, (const char *const *)argv + 1, n_parts, mo.force, &ar, &e)) error_exit(&e);
        fprintf(stderr, "merge: %s: %s of %d shards in %.2f s%s\n", out, ar.stage == ACT_STAGE_PASS1 ? "activations pass 1" : "activations",
                ar.n_shards, now_seconds() - t0, ar.stage == ACT_STAGE_PASS1 ? "; next: activations --shard I/N --bands with it" : "");
        return NM_OK;
    }
    AtlasMergeReport rep;
    if (atlas_merge(out, (const char *const *)argv + 1, n_parts, &mo, &rep, &e)) error_exit(&e);
    fprintf(stderr, "merge: %s: %lld neurons from %d of %d shards in %.2f s\n", out, (long long)rep.neurons,
            rep.n_shards - rep.n_missing, rep.n_shards, now_seconds() - t0);
    if (rep.n_missing)
        fprintf(stderr, "merge: warning: %s is incomplete: shard%s %s of %d missing (meta 'missing_shards')\n", out,
                rep.n_missing > 1 ? "s" : "", rep.missing, rep.n_shards);
    return NM_OK;
}
