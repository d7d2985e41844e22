/* documents.h — the JSON documents of show, find and info: one function
 * each, returning a cJSON tree that the command prints (and that a web API
 * or a language binding can serve as is). Field names are those of map's
 * JSON lines where they overlap (README, "JSON documents"):
 *
 *   show  {"matrix","layer","neuron","norm","lse","lse_bound",
 *          "top":[{"rank","token_id","token","logit","prob"}],"bottom":[...]}
 *         or {"matrix","layer","neuron","norm","nonfinite":true}
 *   find  {"token":{"token_id","token"},"matrix","norm","source","limit",
 *          "skipped_nonfinite","neurons":[{"matrix","layer","neuron","logit",
 *          "rank","top":{"token_id","token"}[,"partner":{"matrix","top","agree"}]}]}
 *   info  {"format","path","architecture",...} (the model's configuration)
 */
#ifndef NEUROMAP_DOCUMENTS_H
#define NEUROMAP_DOCUMENTS_H

#include <cJSON.h>

#include "lens/find.h"
#include "lens/lens.h"

cJSON *show_json(const TokenNames *tn, MatrixKind k, int layer, int neuron, LensNorm norm, const LensResult *r, int n_top,
                 int n_bottom);

/* matrices: "up", "all"...; source: "model" or "atlas". */
cJSON *find_json(const TokenNames *tn, int token, const char *matrices, LensNorm norm, const char *source, int limit,
                 int64_t skipped_nonfinite, const LensHit *hits, int n, int agreement);

cJSON *model_info_json(const Model *m);

#endif
