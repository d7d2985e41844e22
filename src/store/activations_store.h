/* activations_store.h — activation evidence in the atlas's SQLite file.
 *
 * Tables of their own beside the weight map (atlas.h), which they never
 * change; an atlas may hold the map, the activations, or both:
 *   act_meta(key TEXT PRIMARY KEY, value TEXT)   corpus path and hash, options,
 *                                                progress of an unfinished run
 *   act_neurons(layer, neuron, count, mean, std, min, max, density,
 *               m2, positive, sign_pp, sign_pn, sign_np, sign_nn, histogram,
 *               q50, q90, q99, writes_id, up_id, up_embed_id, gate_id, gate_embed_id)
 *       histogram: the 32 counts, comma-separated (bins: activations.h);
 *       writes_id: top token of the down column through the lens (full norm);
 *       up_id / up_embed_id, gate_id / gate_embed_id: top token of the up / gate
 *       row through the LM head / through the token embeddings (agreement.h);
 *       -1 until the run is complete
 *   act_examples(layer, neuron, list, rank, doc, window, pos, token_id, act, gate, up)
 *       list 'top' / 'bottom' (rank 1 = strongest), 'q50' / 'q90' / 'q99' (the bands)
 *   act_tokens(token_id, count)     unigram counts of the counted corpus tokens
 *   act_docs(doc, start, end, ids)  byte range in the corpus and content token ids
 *                                   (int32 little-endian, no BOS) of every document
 *                                   an example comes from: context without the corpus
 *   act_sums(layer, neuron, sums)   the exact Σa and Σa² (act_neuron_sums_put, 252
 *                                   bytes): what resumes and merges continue from
 * A new atlas gets the map's meta and tokens tables too (model identity and
 * token texts), so it can be read without the model.
 *
 * Writing is atomic as for `map`: PATH.partial (a copy of PATH when adding to
 * an existing atlas), flock()ed, checkpointed with the whole run state, and
 * renamed over PATH when complete. A killed run resumes from the last
 * checkpoint with --resume and gives the same atlas as an uninterrupted one.
 */
#ifndef NEUROMAP_ACTIVATIONS_STORE_H
#define NEUROMAP_ACTIVATIONS_STORE_H

#include "infer/activations.h"
#include "lens/lens.h"

typedef struct {
    char corpus[4096];      /* absolute path of the corpus */
    uint64_t corpus_hash;   /* FNV-1a of its bytes */
    int64_t corpus_bytes;
    int n_docs;
    int window, top_n, bottom_n, l0, l1;
    int64_t max_tokens;     /* <0: all */
    uint64_t seed;
    /* a part of a split run (--shard I/N, merge): act_meta 'stage', 'shard', 'bands_hash',
     * 'model_content' */
    int stage;              /* ACT_STAGE_* */
    int shard, n_shards;    /* I/N of a pass-1 or pass-2 part */
    uint64_t bands_hash;    /* the band edges a pass-2 part used (act_bands_hash) */
    uint64_t content;       /* a part's model_content_identity: its weights, not only its shape */
    /* reading: */
    int n_layers, ffn_dim, vocab_size, bos_id;
    int64_t tokens;         /* counted tokens of the run */
    int docs_run;           /* documents the run went through */
    uint64_t identity;
    char model_path[1024];
} ActInfo;

/* ----------------------------------------------------------------------------
 * Split runs (docs/DISTRIBUTED.md): job-array shards write parts, which
 * `neuromap merge` joins, exactly (act_run_merge), in two rounds:
 *   pass-1 parts (activations --shard I/N)          → merge → a bands atlas
 *   pass-2 parts (activations --shard I/N --bands B) → merge with B → the atlas
 * A bands atlas holds the merged pass 1 and the band edges every pass-2 part
 * must share; no part or bands atlas is a complete atlas (show refuses it). */
enum { ACT_STAGE_RUN, ACT_STAGE_PASS1, ACT_STAGE_BANDS, ACT_STAGE_PASS2 };
extern const char *const act_stage_names[4]; /* "", "pass1", "bands", "pass2" */

/* FNV-1a of every neuron's band edges (act_run_quantiles), as act_meta keeps it. */
uint64_t act_bands_hash(const ActRun *r);

/* ----------------------------------------------------------------------------
 * Writing */

typedef struct ActStore ActStore;

/* Claims PATH.partial. PATH may be absent (a new atlas), an atlas (the
 * activations are added; NM_EINPUT when its model differs, or when it holds
 * activations already unless force, which replaces them). An existing
 * partial is refused unless resume (continued: *resumed = 1; NM_EINPUT
 * naming what differs from this run) or force (started over). */
int act_store_begin(ActStore **out, const char *path, int force, int resume, const Model *m, const ActInfo *info,
                    int *resumed, Error *e);
/* Loads a resumed run's state into r (initialised for the same options);
 * *next_doc: the first document not yet run in r->pass. */
int act_store_load(ActStore *s, ActRun *r, int *next_doc, Error *e);
/* Saves r's whole state, documents before next_doc done; commits. */
int act_store_checkpoint(ActStore *s, ActRun *r, int next_doc, Error *e);
/* The finished run (act_run_finish called): examples' documents, weight
 * readings (writes, up, up_embed, gate, gate_embed: arrays of (l1−l0+1)·ffn
 * ids, agreement_readings), then renamed into place; frees s.
 * On failure the partial stays for --resume. */
int act_store_commit(ActStore *s, ActRun *r, const ActCorpus *c, const Tokenizer *t, const int *const readings[5], Error *e);
void act_store_close_partial(ActStore *s); /* keeps the partial for --resume; frees s */
/* A part (info->stage PASS1 or PASS2) or a bands atlas: r's state as it
 * stands (heaps, not finished; readings may be NULL or hold -1 for
 * neurons it did not read), the documents of its examples, act_meta
 * 'complete' 0 and 'stage'; renamed into place; frees s. */
int act_store_commit_part(ActStore *s, ActRun *r, const ActCorpus *c, const Tokenizer *t, const int *const readings[5], Error *e);
const char *act_store_temp_path(const ActStore *s);

/* ----------------------------------------------------------------------------
 * Reading */

typedef struct ActAtlas ActAtlas;

/* What the weights say, as token ids (-1: unknown): the down column's top
 * token, and each row's (read[0] up, read[1] gate) through the LM head
 * ([0]) and through the embeddings ([1]). */
typedef struct {
    int writes, read[2][2];
} ActReadings;

/* NM_EINPUT when path holds no (complete) activations. */
int act_atlas_open(ActAtlas **out, const char *path, Error *e);
void act_atlas_close(ActAtlas *a);
const ActInfo *act_atlas_info(const ActAtlas *a);
TokenNames act_atlas_token_names(const ActAtlas *a);
/* s->top / s->bottom must hold info->top_n / bottom_n examples. */
int act_atlas_neuron(const ActAtlas *a, int layer, int neuron, ActNeuron *s, ActReadings *w, Error *e);
/* A document's content ids (no BOS; malloc'd); NM_EINPUT when not stored. */
int act_atlas_doc(const ActAtlas *a, int doc, int **ids, int *n, Error *e);
/* Unigram counts (vocab_size entries, owned by a) and their total. */
const int64_t *act_atlas_unigram(const ActAtlas *a, int64_t *total);
/* 1 when path holds the weight map's tables (atlas.h) too. */
int act_atlas_has_map(const ActAtlas *a);

/* The band edges of a bands atlas (stage 'bands') for a pass-2 part of the
 * run info describes: NM_EINPUT when path is no bands atlas or of another
 * model, corpus or options (naming which). q: act_run_quantiles's layout. */
int act_bands_read(const char *path, uint64_t identity, const ActInfo *info, double *q, uint64_t *hash, Error *e);

/* ----------------------------------------------------------------------------
 * Merging parts (act_merge.c) */

typedef struct {
    int stage;             /* what the parts were: ACT_STAGE_PASS1 (→ bands) or PASS2 (→ the atlas) */
    int n_shards, n_parts;
    int64_t tokens;
} ActMergeReport;

/* 1 when path is an atlas holding activation parts (act_meta 'stage'). */
int act_is_part(const char *path);
/* Joins parts into out: every pass-1 part of one N-way split into a bands
 * atlas, or a bands atlas and every pass-2 part into the complete atlas,
 * equal row for row to a single run's. Parts of different models, corpora
 * or options, of other stages or bands, repeated or missing shards: NM_EINPUT
 * naming the part, before anything is written. */
int act_merge(const char *out, const char *const *parts, int n_parts, int force, ActMergeReport *rep, Error *e);

/* NM_INTERNAL_BEGIN */
/* What activations_store.c shares with act_merge.c, and nothing else uses. */
struct sqlite3;

struct ActStore {
    struct sqlite3 *db;
    char *path, *temp;
    int lock_fd;
    ActInfo info;
};

void act_store_free(ActStore *s);
/* Every neuron's row, lists and exact sums, and the unigrams, into r; with
 * readings, each neuron's stored readings (−1: none). */
int act_load_state(struct sqlite3 *db, const char *path, ActRun *r, int *const readings[5], Error *e);
int act_save_state(ActStore *s, const ActRun *r, const int *const readings[5], Error *e);
int act_copy_file(const char *from, int to_fd, Error *e);
/* Closes, syncs and renames the partial into place (frees s); on failure
 * keeps the partial (act_store_close_partial). */
int act_store_finish(ActStore *s, Error *e);
/* The act_meta keys of a run's options and their values. */
enum { ACT_RUN_KEYS = 9 };
extern const char *const act_run_key_names[ACT_RUN_KEYS], *const act_run_key_options[ACT_RUN_KEYS];
void act_run_keys(const ActInfo *in, uint64_t identity, char v[ACT_RUN_KEYS][64]);
/* NM_INTERNAL_END */


#endif
