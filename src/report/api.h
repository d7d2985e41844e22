/* api.h — the library for language bindings (python/neuromap, over ctypes):
 * an opened model behind one handle, plain C types in and out, every
 * document the same JSON text the commands print (documents.h), numbers
 * into arrays the caller owns.
 *
 * Conventions, for every function here:
 *   - a return of 0 is success; otherwise the Error's code (NM_EINPUT for
 *     what the caller passed, NM_ERUNTIME for what went wrong) and message;
 *   - names (matrix "up"/"gate"/"down", norm "full"/"gain"/"none") are
 *     checked here, and so are indices and the capacity of every array the
 *     caller passes (cap, in elements): a binding cannot write past them;
 *   - strings and arrays handed back are malloc'd: free them with api_free;
 *   - a handle may be used from several threads at once (the model is read
 *     only; each call makes its own lens); api_model_close must come last.
 */
#ifndef NEUROMAP_API_H
#define NEUROMAP_API_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "lens/lens.h"
#include "model/vocab.h"
#include "store/atlas.h"

typedef struct ApiModel ApiModel;

/* Opens MODEL (any format; tokenizer: a llama2.c tokenizer .bin, or NULL).
 * A vocabulary-only model opens too: the weight functions then fail. */
int api_model_open(ApiModel **out, const char *path, const char *tokenizer, Error *e);
void api_model_close(ApiModel *h);
void api_free(void *p);

/* {has_weights, n_layers, ffn_dim, vocab_size, dim} into out[0..5). */
void api_model_shape(const ApiModel *h, int32_t out[5]);

/* `info --format json`'s document. */
char *api_info_json(const ApiModel *h);

/* One neuron decoded through a lens of its own (the head converted tile by
 * tile, never copied whole): b is initialised for one result of top_k /
 * bottom_k tokens (lens_batch_free it). Indices are the caller's to check. */
int api_decode_neuron(const Model *m, MatrixKind k, int layer, int neuron, LensNorm norm, int threads, int top_k, int bottom_k,
                      LensBatch *b, Error *e);

/* `show MODEL L:N --format json`'s document (threads 0: all cores). */
int api_show_json(const ApiModel *h, const char *matrix, int layer, int neuron, int top_k, int bottom_k, const char *norm,
                  int threads, char **out, Error *e);

/* The full logit vector of one neuron (out: cap floats, at least the vocabulary). */
int api_logits(const ApiModel *h, const char *matrix, int layer, int neuron, const char *norm, float *out, int64_t cap,
               Error *e);

/* `map --format jsonl`'s numbers for every neuron of layers [l0, l1], in
 * map's order: for neuron i (0-based over the layers) top tokens at
 * [i*top_k, (i+1)*top_k) of top_ids/top_logits/top_probs, bottom tokens
 * likewise, lse[i] and nonfinite[i]. cap: the number of neurons the arrays
 * hold room for. Any of the bottom arrays may be NULL when bottom_k is 0. */
int api_map(const ApiModel *h, const char *matrix, int l0, int l1, int top_k, int bottom_k, const char *norm, int threads,
            int32_t *top_ids, float *top_logits, float *top_probs, int32_t *bottom_ids, float *bottom_logits,
            float *bottom_probs, double *lse, uint8_t *nonfinite, int64_t cap, Error *e);

/* The texts of tokens as the documents write them ("token": the bytes when
 * valid UTF-8 without NUL, else escaped), as a JSON array of strings. */
int api_token_names_json(const ApiModel *h, const int32_t *ids, int n, char **out, Error *e);

/* `find MODEL TEXT --format json`'s document. matrices: up, gate, down or all. */
int api_find_json(const ApiModel *h, const char *text, const char *matrices, int limit, const char *norm, int agreement,
                  int first_piece, char **out, Error *e);

/* show --token: the token's exact logit, rank (1 = the top token) and
 * probability in one neuron (its full vocabulary decoded). */
int api_neuron_token(const Model *m, MatrixKind k, int layer, int neuron, LensNorm norm, int token, float *logit, int *rank,
                     double *prob, Error *e);

/* The token TEXT names for find: the vocabulary entry with exactly these
 * bytes, else the text's one token (NM_EINPUT naming the pieces when it is
 * several, unless first_piece: then the first, and *n_pieces says how many
 * there were). A sentencepiece tokenizer that prefixes a space gets TEXT
 * without its own leading one. */
int api_text_token(const Vocab *v, const char *text, int len, int first_piece, int *token, int *n_pieces, Error *e);

/* A token as the user has it (find, diff --token, show --token), tried in
 * this order: "#400", the id; a piece exactly as stored ("▁do", "Ġdog",
 * "<0x0A>"); text with real spaces (" do"), which a model tokenizes
 * (api_text_token: several pieces are refused, naming them, unless
 * first_piece). v is NULL for an atlas: it holds the tokens' texts, so a
 * stored piece is its text with ▁/Ġ read as a space, and text must be one
 * token's text. who ("find", or NULL) prefixes the messages. */
int api_token_arg(const char *who, const TokenNames *tn, const Vocab *v, const char *arg, int first_piece, int *token,
                  int *n_pieces, Error *e);

/* Text (len bytes) → ids as `tokenize --format ids` writes them. bos: +1
 * add BOS, -1 none, 0 as the tokenizer does (PromptOptions.bos); special:
 * parse special-token text.
 * *ids is malloc'd. */
int api_tokenize(ApiModel *h, const char *text, size_t len, int bos, int special, int32_t **ids, int *n, Error *e);
/* Ids → text as `tokenize --decode` writes it (*out malloc'd, *len bytes). */
int api_detokenize(ApiModel *h, const int32_t *ids, int n, int special, char **out, size_t *len, Error *e);

/* The gated MLP activations silu(gate·x)·(up·x) (the `act` site) of ids
 * run from position 0: out[(t * n_layers + layer) * ffn_dim + neuron]; cap
 * the floats out holds. */
int api_activations(const ApiModel *h, const int32_t *ids, int n, int threads, float *out, int64_t cap, Error *e);

/* The next-token logits after every token of ids (out[t * vocab + v]; cap
 * the floats out holds), with neurons hooked as api_generate_json's clamp,
 * scale, site and positions say ("generated": from the last token on, as
 * probe does). */
int api_forward_logits(const ApiModel *h, const int32_t *ids, int n, const char *const *clamp, int n_clamp,
                       const char *const *scale, int n_scale, const char *site, const char *positions, int threads,
                       float *out, int64_t cap, Error *e);

/* `generate --compare --format json`'s document: the prompt (NULL or "":
 * BOS alone; chat / system as --chat / --system), then n_new tokens sampled
 * with temp, top_p and seed, without hooks and, when there are any, with
 * them: clamp and scale hold "L:N=V" specs as --clamp / --scale take them,
 * site "up" or "act" (NULL: up), positions "all" or "generated" (NULL: all). */
int api_generate_json(ApiModel *h, const char *prompt, int chat, const char *system, int n_new, double temp, double top_p,
                      int64_t seed, const char *const *clamp, int n_clamp, const char *const *scale, int n_scale,
                      const char *site, const char *positions, int threads, char **out, Error *e);

/* Atlases, opened with atlas_open (store/atlas.h); name: the atlas's path,
 * for messages. `show ATLAS L:N --format json`'s document: top_k / bottom_k
 * < 0 for every stored token, else at most the stored number (NM_EINPUT
 * beyond it). */
int api_atlas_show_json(const Atlas *a, const char *name, const char *matrix, int layer, int neuron, int top_k, int bottom_k,
                        char **out, Error *e);
/* `find ATLAS TEXT --format json`'s document: TEXT must be one token as written. */
int api_atlas_find_json(const Atlas *a, const char *name, const char *text, const char *matrices, int limit, char **out,
                        Error *e);
/* Every stored neuron as `export ATLAS --format jsonl` writes it (one JSON line each, map's order). */
int api_atlas_records_jsonl(const Atlas *a, char **out, Error *e);
/* What the atlas was made from and with (AtlasInfo) as a JSON object. */
char *api_atlas_info_json(const Atlas *a);

#endif
