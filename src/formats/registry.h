/* registry.h — opening a model in any format neuromap reads. */
#ifndef NEUROMAP_REGISTRY_H
#define NEUROMAP_REGISTRY_H

#include "model/model.h"

/* Opens MODEL (HF directory, .gguf, or llama2.c .bin); on failure returns the
 * error code with e->msg naming the file and the problem. opt may be NULL.
 * Close with model_close. */
int model_open(Model *m, const char *path, const ModelOpenOptions *opt, Error *e);

#endif
