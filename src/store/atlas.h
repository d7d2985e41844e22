/* atlas.h — the neuron map on disk: an SQLite file that `show` and `find`
 * read without the model.
 *
 * Schema (README.md, "The neuron map"):
 *   meta(key TEXT PRIMARY KEY, value TEXT)        model identity, options, version
 *   tokens(id INTEGER PRIMARY KEY, text BLOB, type) the bytes each token stands for
 *   neurons(matrix, layer, neuron, lse, lse_bound, nonfinite)
 *       log Σ exp(logits) per neuron; lse_bound the prefilter's proven bound
 *       on its error (0: exact); nonfinite 1 for a neuron whose vector or
 *       logits hold a NaN or Inf (lse NULL, no entries)
 *   entries(matrix, layer, neuron, rank, token_id, logit, prob)
 *       rank 1..K top tokens, -1..-K bottom tokens (-1 = lowest logit)
 *   index entries_by_token(token_id, logit)       lookup by token;
 *   the primary keys (matrix, layer, neuron[, rank]) give lookup by neuron.
 *
 * An atlas is written to PATH.partial in the same directory, committed a
 * chunk at a time, and renamed into place when complete, so no half-written
 * atlas ever has the final name, and a killed or failed run can be resumed
 * from the partial file (docs/RELIABILITY.md, "Output safety").
 */
#ifndef NEUROMAP_ATLAS_H
#define NEUROMAP_ATLAS_H

#include "lens/lens.h"
#include "model/model.h"

typedef struct Atlas Atlas;

/* What an atlas was made from and with. */
typedef struct {
    char version[32];
    char model_path[1024], model_format[16];
    uint64_t identity;          /* the layout: config and tensor headers (Model.identity) */
    uint64_t content_identity;  /* model_content_identity: sampled weight bytes too; 0 in atlases
                                   older than it */
    /* How the numbers were computed (map's options; resume checks them all): */
    char kernel[16];            /* the FP32 product used: "native" or "openblas" */
    int prefilter;              /* --prefilter */
    double prob_tol;            /* its --prob-tol (0 without --prefilter) */
    int threads;                /* worker threads: how the vocabulary is sliced, hence lse's last bits */
    int n_layers, dim, ffn_dim, vocab_size;
    LensNorm norm;
    int top_k, bottom_k;
    char matrices[32], layers[32], neurons[32]; /* as given: "up,gate", "0-4", "0-171": the whole intended set */
    int shard, n_shards;        /* a part (map --shard I/N): shard I of N of that set (store/shard.h);
                                   n_shards 0: a whole atlas (meta 'shard' absent) */
} AtlasInfo;

/* 1 when path is an SQLite file (by its magic), so MODEL|ATLAS can be told apart. */
int atlas_is_atlas(const char *path);

/* Writing. atlas_create refuses an existing path unless force. */
int atlas_create(Atlas **out, const char *path, int force, const Model *m, const AtlasInfo *info, Error *e);
int atlas_add(Atlas *a, MatrixKind k, int layer, int neuron, const LensResult *r, int top_k, int bottom_k, Error *e);
/* atlas_begin: as atlas_create, writing PATH.partial (flock()ed: a second
 * writer gets NM_EINPUT). An existing partial is continued when resume
 * (NM_EINPUT naming the option when its model or options differ), emptied
 * when force, else refused with NM_EINPUT. */
int atlas_begin(Atlas **out, const char *path, int force, int resume, const Model *m, const AtlasInfo *info, Error *e);
int atlas_checkpoint(Atlas *a, Error *e); /* commits the rows added so far: a kill keeps them */
/* How many of neurons [first, first+count) of one layer the partial holds. */
int atlas_stored(Atlas *a, MatrixKind k, int layer, int first, int count);
int atlas_commit(Atlas *a, Error *e); /* indexes, closes, renames into place; frees a.
                                          On failure the partial stays for --resume. */
void atlas_abort(Atlas *a);           /* closes and removes the temporary file; frees a */
void atlas_close_partial(Atlas *a);   /* commits what it can, closes, keeps the partial for --resume; frees a */
const char *atlas_temp_path(const Atlas *a);
/* A meta value beside those of AtlasInfo (merge's missing_shards). */
int atlas_set_meta(Atlas *a, const char *key, const char *value, Error *e);

/* Reading. */
int atlas_open(Atlas **out, const char *path, Error *e);
void atlas_close(Atlas *a);
const AtlasInfo *atlas_info(const Atlas *a);
/* A meta value into buf (NULL when the key is absent): merge copies norm_eps. */
const char *atlas_meta(const Atlas *a, const char *key, char *buf, size_t cap);
/* How many neurons the atlas holds. */
int64_t atlas_count_neurons(const Atlas *a);
/* The stored token texts (valid while a is open). */
TokenNames atlas_token_names(const Atlas *a);
/* One neuron's stored lists; r->top / r->bottom hold info->top_k / bottom_k
 * entries, *n_top / *n_bottom say how many were filled. NM_EINPUT when the
 * atlas does not hold that neuron. */
int atlas_neuron(const Atlas *a, MatrixKind k, int layer, int neuron, LensResult *r, int *n_top, int *n_bottom, Error *e);

/* The top-k lists of neurons [0, count) of one layer in one query (diff):
 * r[n].top[0..top_k) from the stored ranks 1..top_k, r[n].nonfinite from
 * the neuron's flag. NM_EINPUT when a (finite) neuron or one of those ranks
 * is missing. */
int atlas_layer_top(const Atlas *a, MatrixKind k, int layer, int count, int top_k, LensResult *r, Error *e);

/* A neuron whose stored top-k holds a token (find on an atlas). */
typedef struct {
    MatrixKind matrix;
    int layer, neuron, rank, top_id;
    float logit;
    double prob;   /* the token's stored probability */
} AtlasHit;
/* How many neurons of the matrices in matrix_mask are flagged non-finite. */
int64_t atlas_count_nonfinite(const Atlas *a, unsigned matrix_mask);
/* How many neurons the atlas (also one being written) flags non-finite;
 * the first `max` in map's order into names ("up 1:5, down 2:7"). */
int64_t atlas_nonfinite_names(const Atlas *a, int max, char *names, size_t cap);

/* Every stored neuron in map's order (matrix up, gate, down; layer; neuron),
 * each passed to fn with its lists (n_top / n_bottom filled): export. A
 * non-zero return from fn stops the walk and is returned. */
int atlas_each_neuron(const Atlas *a, int (*fn)(void *ctx, MatrixKind k, int layer, int neuron, const LensResult *r,
                                                 int n_top, int n_bottom),
                      void *ctx, Error *e);

/* Up to limit neurons (of the matrices whose bit is set in matrix_mask)
 * with token in their stored top list, by falling logit. *hits is malloc'd. */
int atlas_find(const Atlas *a, int token, unsigned matrix_mask, int limit, AtlasHit **hits, int *n, Error *e);

#endif
