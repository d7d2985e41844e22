/* rope.h — RoPE frequencies, the one place they are computed.
 *
 * Pair i of a head_dim-wide head turns by the angle pos · θ^(-2i/d). Llama 3.1
 * bends those frequencies ("llama3" rope_scaling, Meta's apply_scaling()):
 * with L = original_max_position_embeddings, a pair whose wavelength 2π/f is
 * shorter than L / high_freq_factor keeps f; one longer than L / low_freq_factor
 * gets f / factor; between the two, f is interpolated linearly in L / wavelength.
 * Hugging Face configs keep the four numbers; llama.cpp's converter turns
 * them into the per-pair divisors of a rope_freqs.weight tensor in the GGUF,
 * and divides each frequency by its divisor when it runs.
 */
#ifndef NEUROMAP_ROPE_H
#define NEUROMAP_ROPE_H

#include "model/model.h"

/* The head_dim/2 frequencies of c: θ^(-2i/d), bent by c's llama3 scaling when
 * present, then divided by divisors[i] when divisors is not NULL (GGUF). */
void rope_frequencies(const Config *c, const float *divisors, float *inv_freq);

/* GGUF's form of c's llama3 scaling: the head_dim/2 divisors llama.cpp's
 * converter stores as rope_freqs.weight (1 where a frequency is kept). */
void rope_llama3_divisors(const Config *c, float *divisors);

#endif
