/* loaders.h — the checkpoint formats neuromap reads, one FormatLoader
 * (model.h) each. Every loader file defines its own entry; only the
 * registry (registry.c) lists them all, so a loader never calls the registry
 * and the model layer never calls a loader. */
#ifndef NEUROMAP_LOADERS_H
#define NEUROMAP_LOADERS_H

#include "model/model.h"

/* NM_INTERNAL_BEGIN */
extern const FormatLoader loader_gguf;    /* format_gguf.c: GGUF files */
extern const FormatLoader loader_hf;      /* format_hf.c: Hugging Face directories */
extern const FormatLoader loader_llama2c; /* format_llama2c.c: llama2.c checkpoints */
/* NM_INTERNAL_END */

#endif
