/* atlas_documents.h — show's and find's JSON documents read from an atlas,
 * for every front end that serves them (the CLI prints them; `serve`
 * answers /api/neuron and /api/find with the very same trees), plus the
 * atlas's own description and a layer's summary for the web atlas.
 */
#ifndef NEUROMAP_ATLAS_DOCUMENTS_H
#define NEUROMAP_ATLAS_DOCUMENTS_H

#include <cJSON.h>

#include "store/atlas.h"

/* `show ATLAS L:N --matrix K --format json`: the stored lists, at the
 * atlas's norm and K. NM_EINPUT when the atlas does not hold the neuron. */
int atlas_show_json(const Atlas *a, MatrixKind k, int layer, int neuron, cJSON **out, Error *e);

/* `find ATLAS TEXT --matrix MATRICES --limit N --format json`. TEXT must be
 * one token's exact text (an atlas cannot tokenize): NM_EINPUT otherwise,
 * as for an unknown MATRICES word. */
int atlas_find_json(const Atlas *a, const char *text, int len, const char *matrices, int limit, cJSON **out, Error *e);

/* {"path","version","model_path","model_format","n_layers","dim","ffn_dim",
 *  "vocab_size","norm","top_k","bottom_k","matrices","layers","neurons",
 *  "kernel","prefilter","prob_tol"}: what the atlas was made from and with. */
cJSON *atlas_info_json(const Atlas *a, const char *path);

/* One layer of one matrix at a glance:
 *   {"matrix","layer","neurons","nonfinite",
 *    "top_tokens":[{"token_id","token","count"}]   the most frequent top-1 tokens,
 *    "histogram":{"bins":20,"counts":[...]}         top-1 probabilities in [0,1],
 *    "diff":{"agree","compared","changed":[{"neuron","top","other_top","prob","other_prob"}]}}
 * "diff" only when other is given (the same layer of another atlas):
 * agreement of the top-1 tokens, and the neurons that disagree, the most
 * confident first. NM_EINPUT when the atlas lacks a neuron of the layer. */
int atlas_layer_json(const Atlas *a, const Atlas *other, MatrixKind k, int layer, int n_tokens, cJSON **out, Error *e);

#endif
