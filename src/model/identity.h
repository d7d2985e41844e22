/* identity.h — what a model is, as a number an atlas can record.
 *
 * Model.identity (set by the loaders) hashes the layout only: the config and
 * the tensor headers. Two checkpoints of one architecture — a base model and
 * its fine-tune — share it. The content identity adds the weights: every
 * tensor's name, type, shape and size, and bytes sampled through its data,
 * plus the vocabulary's token texts. It reads a bounded amount per tensor
 * (all of a small one, 16 × 4 KiB spread over a large one: about 15 MB of a
 * 16 GB Llama 3.1 8B), so it is cheap, and any retraining, fine-tune or
 * re-quantisation changes it. A change confined to bytes between the samples
 * of a large tensor (one weight edited by hand) can go unseen: it identifies
 * checkpoints, it does not checksum them.
 */
#ifndef NEUROMAP_IDENTITY_H
#define NEUROMAP_IDENTITY_H

#include "model/model.h"

/* Tensors up to this size are hashed whole; larger ones are sampled. */
#define IDENTITY_WHOLE_BYTES (1u << 20)
#define IDENTITY_SAMPLES 16
#define IDENTITY_SAMPLE_BYTES 4096

/* 64-bit FNV-1a of the layout identity, the config, the tensors as above and
 * the vocabulary. Deterministic for the same files, whatever the machine. */
uint64_t model_content_identity(const Model *m);

#endif
