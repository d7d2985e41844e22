/* tokenizer.h — text ⇄ token ids, exactly as the model's own tokenizer does it.
 *
 * Two families: Llama-2-style sentencepiece BPE with byte fallback
 * (TOKENIZER_SPM: tokenizer.json BPE+byte_fallback, GGUF "llama", llama2.c
 * .bin) and Llama-3-style byte-level BPE (TOKENIZER_BPE: tokenizer.json with
 * the split regex + ByteLevel, GGUF "gpt2" with pre "llama-bpe").
 */
#ifndef NEUROMAP_TOKENIZER_H
#define NEUROMAP_TOKENIZER_H

#include <stddef.h>

#include "model.h"

typedef struct Tokenizer Tokenizer;

enum {
    TOK_ADD_BOS = 1 << 0, /* prepend BOS (callers pass it when vocab->add_bos and the user did not say --no-bos) */
    TOK_SPECIAL = 1 << 1, /* recognise special-token text such as <|eot_id|> in the input */
};

/* Builds the encoder for a model's vocabulary (the Vocab must outlive it). */
int tokenizer_new(const Vocab *v, Tokenizer **out, Error *e);
void tokenizer_free(Tokenizer *t);

/* Encodes len bytes of text. *ids is malloc'd (caller frees), *n its length. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int flags, int **ids, int *n, Error *e);

/* Decodes ids to bytes (malloc'd, NUL-terminated, *len without the NUL). Control
 * tokens (BOS/EOS) are skipped; an SPM leading space after BOS is kept as the
 * reference decoders keep it unless strip_leading_space. */
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, size_t *len);

/* The bytes one token contributes when streamed after `prev` (for generate). */
const char *tokenizer_piece_text(const Tokenizer *t, int prev, int id, int *len);

#endif
