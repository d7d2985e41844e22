/* atlas_merge.h — one atlas from the parts that `map --shard I/N` wrote.
 *
 * The parts must be the shards of one run: the same model (content
 * identity) and every option that changes a stored number or the neuron
 * set (norm, top-k, bottom-k, matrices, layers, neurons, kernel,
 * prefilter, threads, version), the same N, each shard at most once and
 * each complete (its committed atlas, holding exactly its shard's
 * neurons). Anything else is refused with NM_EINPUT naming the part,
 * before any output exists. Missing shards are refused too, naming them,
 * unless allow_incomplete: then the atlas is written with meta
 * 'missing_shards' ("1,3 of 4") saying what it lacks.
 *
 * The result is written as map writes (atlas_begin: OUT.partial, renamed
 * into place when complete) with the rows read back exactly as stored, so
 * a merge of all shards equals a single-process map of the same options,
 * row for row (compare with `neuromap export`).
 */
#ifndef NEUROMAP_ATLAS_MERGE_H
#define NEUROMAP_ATLAS_MERGE_H

#include "store/atlas.h"

typedef struct {
    int force;            /* overwrite an existing output atlas */
    int allow_incomplete; /* write even when shards are missing */
} AtlasMergeOptions;

typedef struct {
    int n_shards;         /* N of the parts */
    int n_missing;        /* shards absent (written only with allow_incomplete) */
    char missing[256];    /* their indices, "1,3" (truncated with "...") */
    int64_t neurons;      /* neurons written */
} AtlasMergeReport;

int atlas_merge(const char *out, const char *const *parts, int n_parts, const AtlasMergeOptions *o, AtlasMergeReport *rep,
                Error *e);

#endif
