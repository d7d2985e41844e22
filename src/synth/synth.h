/* synth.h — synthetic Llama checkpoints for tests and benchmarks, with
 * planted neurons whose concept is known in advance (`neuromap synth`).
 *
 * Every weight comes from a seeded generator addressed by (tensor, row): row r
 * of a tensor is a pure function of the seed, the tensor's role and layer, and
 * r. Three things follow. Tensors can be written in any order (safetensors
 * sorts by name, GGUF does not) and still hold the same values, so an HF and a
 * GGUF synth of one seed are the same model. Any single row can be recomputed
 * without the rest: a planted neuron needs row T of a 1 GB LM head, and gets it
 * in microseconds. And nothing is ever held whole: the writers stream rows in
 * chunks of a few megabytes through formats/writer.
 *
 * The parts: shape.c (presets, the tensors of a checkpoint under both naming
 * schemes), weights.c (the generator, planting, streaming rows), vocab.c (the
 * built-in byte-level vocabulary), write.c (the HF directory and the GGUF file).
 */
#ifndef NEUROMAP_SYNTH_H
#define NEUROMAP_SYNTH_H

#include <stdint.h>

#include "formats/writer.h"
#include "model/model.h"

/* ----------------------------------------------------------------------------
 * What to write */

typedef struct {
    int layer, neuron, token;
    float *vec; /* the planted row: dim floats (synth_prepare_plants) */
} SynthPlant;

typedef struct {
    int n_layers, dim, ffn_dim, n_heads, n_kv_heads, vocab_size, max_seq_len, tied;
    double norm_eps, rope_theta;
    RopeScaling rope_scaling;
} SynthShape;

typedef struct {
    SynthShape s;
    int gguf;
    DType dtype;
    uint64_t seed;
    double std, norm_noise, plant_scale, plant_boost;
    int plant_up, plant_gate;
    SynthPlant *plants;
    int n_plants;
    uint8_t *planted_token; /* vocab_size flags: rows of the LM head to boost */
    const Vocab *vocab;
    const char *tokenizer_dir; /* NULL: the built-in byte-level vocabulary */
} Synth;

/* The shape of preset `name` (tiny, llama-3.2-1b, llama-3.1-8b), or NULL. */
const SynthShape *synth_preset(const char *name);
#define SYNTH_PRESET_NAMES "tiny, llama-3.2-1b, llama-3.1-8b"

static inline int synth_head_dim(const SynthShape *s) { return s->dim / s->n_heads; }

/* ----------------------------------------------------------------------------
 * Vocabulary and planting */

/* The built-in vocabulary: byte-level BPE as Llama 3 has it, in miniature
 * (256 byte tokens, whole words while they fit, BOS and EOS; vocab_size >= 258). */
void synth_builtin_vocab(Vocab *v, int vocab_size);

/* TOKEN as the user wrote it: an id below vocab_size, a stored piece, or the
 * text a token stands for; -1 when it is none of those. */
int synth_resolve_token(const Vocab *v, int vocab_size, const char *s);

/* Plants token's unembedding direction in neuron (layer, neuron); the caller
 * has checked that the neuron exists and is not planted yet. */
void synth_add_plant(Synth *y, int layer, int neuron, int token);
/* Computes every plant's row (after all are added): the LM head's row of the
 * token as the file stores it, scaled to RMS plant_scale. */
int synth_prepare_plants(Synth *y, Error *e);
void synth_free_plants(Synth *y);

/* ----------------------------------------------------------------------------
 * Writing */

typedef struct {
    Progress progress; /* .enabled set by the caller */
    uint64_t done;     /* weight bytes written */
} SynthProgress;

/* The files of an HF output directory (for cleaning up an interrupted one). */
extern const char *const synth_hf_files[5];

/* Writes the HF directory dir (which exists and is empty) or the GGUF file path. */
int synth_write_hf(const Synth *y, const char *dir, SynthProgress *st, Error *e);
int synth_write_gguf(const Synth *y, const char *path, SynthProgress *st, Error *e);

#endif
