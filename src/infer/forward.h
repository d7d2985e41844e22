/* forward.h — the Llama forward pass, with hooks on MLP neurons.
 *
 * One Forward holds the KV cache and the scratch buffers of one sequence.
 * Weights are read through the Model's Tensor views: F32 matrices are used in
 * place, every other type is dequantised a few rows at a time inside the
 * matmul, so a BF16 or Q8_0 model is never copied to F32. Matmuls are split
 * over a pool of threads by fixed row chunks, and every output element is
 * computed by one thread in a fixed order: the result does not depend on the
 * thread count, and the same input always gives the same logits.
 */
#ifndef NEUROMAP_FORWARD_H
#define NEUROMAP_FORWARD_H

#include "infer/clamp.h"
#include "model/model.h"

typedef struct Forward Forward;

/* A forward pass for m with room for n_ctx positions (1..cfg.max_seq_len) on
 * n_threads threads (0: every CPU). m must outlive it. */
int forward_new(const Model *m, int n_ctx, int n_threads, Forward **out, Error *e);
void forward_free(Forward *f);

/* The hooks applied where forward_run says so (NULL: none). Checked against
 * the model; the set must outlive the runs that use it. */
int forward_set_hooks(Forward *f, const HookSet *hooks, Error *e);

/* Runs tokens ids[0..n) at positions pos..pos+n-1; the cache must hold the
 * positions before pos (pos 0 starts a new sequence). Hooks act on the tokens
 * with index >= hook_from (pass n or more for none). logits receives the
 * next-token logits of every token (n × vocab) when all_logits, else only of
 * the last one (vocab floats). */
int forward_run(Forward *f, const int *ids, int n, int pos, int hook_from, float *logits, int all_logits, Error *e);

/* Capture (activations, trace): fn is called for every layer of every batch
 * of tokens at positions pos..pos+T-1 with their MLP values, T × ffn_dim
 * each, row-major: gate·x, up·x and act = silu(gate·x)·(up·x), x the
 * post-attention-normed input — after any hooks, exactly the F32 values the
 * down matrix receives. NULL fn: none. The buffers are the pass's own: read
 * them inside fn, never keep them. */
typedef void (*ForwardCapture)(void *ctx, int layer, int pos, int T, const float *gate, const float *up, const float *act);
void forward_set_capture(Forward *f, ForwardCapture fn, void *ctx);

/* Which matmul path (1, the default: exact). Exact: every row is widened to
 * F32 and multiplied in F32 (OpenBLAS), the reference numbers. Fast (0):
 * Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, BF16 and F16 rows are multiplied where they
 * lie by tensor/vecdot.h's kernels, the activation quantised to int8 per
 * block as llama.cpp does (its error: vecdot.h); F32 and the other types
 * stay exact. Capture (activations, trace) should run exact. */
void forward_set_exact(Forward *f, int exact);
int forward_exact(const Forward *f);

/* The KV cache in F16 (1) or F32 (0, the default: exact). F16 halves its
 * memory (and what attention reads per token) at a rounding of each cached
 * key and value to 11 significant bits (relative error ≤ 2^-11); values
 * beyond F16's range (65504) become infinities and stop the pass as any
 * non-finite activation does. Call before the first forward_run: the cache
 * is emptied. */
int forward_set_kv_f16(Forward *f, int f16, Error *e);
int forward_kv_f16(const Forward *f);

int forward_n_ctx(const Forward *f);
int forward_n_threads(const Forward *f);

#endif
