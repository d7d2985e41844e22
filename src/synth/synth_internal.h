/* synth_internal.h — what the parts of src/synth share: the tensor roles,
 * the write plan, and row generation. Not for use outside src/synth. */
#ifndef NEUROMAP_SYNTH_INTERNAL_H
#define NEUROMAP_SYNTH_INTERNAL_H

#include <stdio.h>

#include "synth/synth.h"

typedef enum {
    R_EMBD, R_OUTPUT_NORM, R_OUTPUT, R_ROPE_FREQS,
    R_ATTN_NORM, R_Q, R_K, R_V, R_O, R_FFN_NORM, R_GATE, R_UP, R_DOWN,
    R_COUNT
} Role;
#define FIRST_LAYER_ROLE R_ATTN_NORM

typedef struct {
    TensorSpec spec; /* first, so a Job sorts like its TensorSpec */
    Role role;
    int layer;
} Job;

static inline Role lm_head_role(const SynthShape *s) { return s->tied ? R_EMBD : R_OUTPUT; }

/* shape.c: norms and rope_freqs are vectors, the rest matrices. */
int synth_is_vector(Role r);
/* shape.c: every tensor of the checkpoint, in the order the format stores them. */
Job *synth_plan_jobs(const Synth *y, int *n_out);
uint64_t synth_total_bytes(const Job *jobs, int n);

/* weights.c: row `row` of a tensor as generated (before rounding to the
 * file's dtype), and one tensor streamed to f, planted rows included. */
void synth_generate_row(const Synth *y, Role r, int layer, int64_t row, int64_t cols, float *out);
int synth_write_tensor(const Synth *y, const Job *j, FILE *f, SynthProgress *st);

/* vocab.c: Llama 3's pre-tokenizer split pattern (tokenizer.json Split Regex). */
extern const char synth_llama3_regex[];

#endif
