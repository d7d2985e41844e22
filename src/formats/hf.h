/* hf.h — the parts of the Hugging Face loader (format_hf.c): safetensors
 * files (safetensors.c), tokenizer.json (hf_tokenizer.c), and the few JSON
 * helpers they share (hf_json.c). Nothing outside the loader needs this
 * header: a loaded model is used through model.h, so all of it is internal. */
#ifndef NEUROMAP_HF_H
#define NEUROMAP_HF_H

/* NM_INTERNAL_BEGIN */
#include <cJSON.h>

#include "model/model.h"

/* DIR/NAME, malloc'd. */
char *hf_path(const char *dir, const char *name);

/* A JSON number holding a whole value in [lo, hi] (both within ±2^53, where
 * doubles are exact). Returns 1 and sets *out, 0 for anything else. */
int json_whole(const cJSON *item, double lo, double hi, int64_t *out);

/* Object member `key`, with JSON null read as absent. */
const cJSON *json_get(const cJSON *obj, const char *key);

/* Parses a JSON document of len bytes that must be one object; the error
 * names path and says where parsing stopped. */
int json_parse_object(const char *text, size_t len, const char *path, cJSON **out, Error *e);

/* Maps one .safetensors file and registers its tensors in m under their
 * stored names. Every length, offset and shape in the header is checked
 * against the file before a view is made; the header is hashed into
 * m->identity. */
int safetensors_load(Model *m, const char *path, Error *e);

/* Fills m->vocab from DIR/tokenizer.json, with DIR/tokenizer_config.json
 * (BOS/EOS, add_bos_token, chat template) when present. cfg_bos/cfg_eos come
 * from config.json (-1 when absent) and are used when the tokenizer files do
 * not name those tokens. */
int hf_load_tokenizer(Model *m, const char *dir, int cfg_bos, int cfg_eos, Error *e);
/* NM_INTERNAL_END */

#endif
