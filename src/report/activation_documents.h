/* activation_documents.h — the document of `show ATLAS L:N --examples
 * --format json`: what `neuromap activations` stored for one neuron, read
 * back. One function builds it, so the command, the web atlas
 * (GET /api/examples/{L}/{N}) and any binding serve the same bytes:
 *
 *   {"layer","neuron","corpus":{"path","hash","status"},
 *    "activations":{"count","mean","std","min","max","density",
 *                   "sign_cases":{"++","+-","-+","--"},
 *                   "histogram":[{"lo","hi","count"}],
 *                   "top":[EXAMPLE],"bottom":[EXAMPLE],
 *                   "quantiles":[{"from","to","act_from","act_to","examples":[EXAMPLE]}]},
 *    ["weights":{"up"|"gate"|"down":{"top":[...],"bottom":[...]}},]
 *    "agreement":{"row","through","writes":TEST,"reads":TEST}}
 *
 *   EXAMPLE {"doc","window","pos","act","gate","up","token_id","token",
 *            "context","left","right"}
 *
 * "context" is the window's text around the example with the example token
 * in [[ ]]; "left" and "right" are the same text before and after the
 * token without marks, so a page can highlight the token itself (a
 * vocabulary piece may contain "[[" too). Texts are UTF-8 (bytes that are
 * not: U+FFFD); a token whose bytes are not valid UTF-8 also carries
 * "token_bytes" (neuron_out.h).
 */
#ifndef NEUROMAP_ACTIVATION_DOCUMENTS_H
#define NEUROMAP_ACTIVATION_DOCUMENTS_H

#include <cJSON.h>

#include "report/agreement.h"
#include "store/atlas.h"

/* One neuron's stored activations and the agreement tests. */
typedef struct {
    ActNeuron s;
    NeuronAgreement ag;
} ActNeuronView;

/* row: 1 gate, 0 up (agreement.h); through_embed: the embedding reading. */
int act_view_load(const ActAtlas *a, int layer, int neuron, int row, int through_embed, ActNeuronView *v, Error *e);
void act_view_free(ActNeuronView *v);

/* "ok", "moved" (no file at the stored path) or "changed" (other bytes). */
const char *act_corpus_status(const ActInfo *in);

/* Tokens pos−around..pos+around of the example's window, the example in
 * [[ ]]: escaped as escape_token does (escape = 1, for tables) or UTF-8
 * with U+FFFD for invalid bytes (escape = 0). Malloc'd. */
char *act_example_context(const ActAtlas *a, const ActExample *x, int around, int escape);

/* The whole document; map: the atlas's weight map (NULL: no "weights"). */
int act_neuron_json(const ActAtlas *a, const Atlas *map, int layer, int neuron, int around, int row, int through_embed,
                    cJSON **out, Error *e);

#endif
