/* shard.h — which neurons belong to shard I of N: the one split that
 * `map --shard I/N`, the ranks of `mpirun … map` and `merge` all agree on.
 *
 * A map is a list of units, one per (layer, matrix) chosen, in layer order
 * (layer 0 up, gate, down; layer 1 …), each the same neuron range of its
 * matrix. N ≤ units: each shard gets whole units, a contiguous run of them,
 * so that a shard reads only its layers' weights (and the LM head). N >
 * units: every unit is cut among floor/ceil(N / units) shards, at multiples
 * of SHARD_CHUNK neurons from the range's start, since a chunk is what map
 * decodes at once and the decode's vocabulary slicing (hence an lse's last
 * bits) depends on the chunk's size: cut at chunk boundaries, every shard
 * computes each neuron exactly as a single process would. A shard can thus
 * be empty (more shards than chunks), which is allowed.
 */
#ifndef NEUROMAP_SHARD_H
#define NEUROMAP_SHARD_H

#include "base/util.h"
#include "model/model.h"

/* Neurons map decodes at once (cmd_map.c's chunk), and the finest cut. */
enum { SHARD_CHUNK = 1024 };

/* Neurons [first, first+count) of one matrix of one layer. */
typedef struct {
    MatrixKind matrix;
    int layer, first, count;
} NeuronRange;

/* "I/N" (0 ≤ I < N ≤ 1,000,000) into *i and *n; NM_EINPUT saying why not. */
int shard_parse(const char *s, int *i, int *n, Error *e);

/* The ranges of shard i of n over matrices matrix_mask (1 << MatrixKind),
 * layers l0..l1 and neurons n0..n1 (inclusive), into out,
 * which holds room for (layers × matrices) ranges, in map's order (matrix
 * up, gate, down; layer; neuron). Returns how many. i = 0, n = 1: the whole
 * set, in the order map has always gone. */
int shard_ranges(unsigned matrix_mask, int l0, int l1, int n0, int n1, int i, int n, NeuronRange *out);

/* The neurons of ranges r[0..n). */
int64_t shard_count(const NeuronRange *r, int n);

#endif
