/* neuron_out.h — a decoded neuron written for people and programs: token
 * text escaped for a terminal or a TSV cell, map's TSV rows, and the JSON
 * object of one neuron (map's JSON lines, show's document).
 *
 * The lens computes results; this file only writes them, so that the lens
 * stays free of stdio and the same records can be served by other front
 * ends (export writes an atlas back out through these very functions).
 */
#ifndef NEUROMAP_NEURON_OUT_H
#define NEUROMAP_NEURON_OUT_H

#include <cJSON.h>
#include <stdio.h>

#include "lens/lens.h"

/* A token's text for people: escape_token's form (\t \n \\ \xNN), malloc'd.
 * An id outside the table gives "". */
char *token_text(const TokenNames *tn, int id);

/* A token's text as a JSON string: the raw bytes when they are valid UTF-8
 * without NUL, else token_text's escaped form (JSON strings must be UTF-8). */
cJSON *token_string_json(const TokenNames *tn, int id);

/* For a token whose bytes are not valid UTF-8 (or hold NUL): adds
 * "token_bytes", its exact bytes in lower-case hex ("e6", "c3a9ff"), so a
 * reader can show the bytes themselves, not the escaped text; nothing for
 * any other token. */
void token_bytes_json(cJSON *o, const TokenNames *tn, int id);

/* {"rank","token_id","token"[,"token_bytes"],"logit","prob"} for t[0..n), ranks sign·1..n. */
cJSON *token_list_json(const TokenNames *tn, const LensToken *t, int n, int sign);

/* "matrix layer neuron rank token_id token logit prob" */
void neuron_tsv_header(FILE *f);
/* One row per token: rank 1..n_top, then -1..-n_bottom. A non-finite
 * neuron (r->nonfinite) has no rows: its tokens mean nothing. */
void neuron_tsv(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                int n_bottom);

/* {"matrix", "layer", "neuron"}: how every document names a neuron. */
cJSON *neuron_ref_json(MatrixKind k, int layer, int neuron);
/* {"matrix","layer","neuron","lse"[,"lse_bound"],"top":[...],"bottom":[...]};
 * for a non-finite neuron {"matrix","layer","neuron","nonfinite":true}.
 * lse_bound is written when it is above 0 (the prefilter kept a bound). */
cJSON *neuron_json(const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top, int n_bottom);
/* neuron_json on one line. */
void neuron_jsonl(FILE *f, const TokenNames *tn, MatrixKind k, int layer, int neuron, const LensResult *r, int n_top,
                  int n_bottom);

#endif
