/* tokenizer.h — text ⇄ token ids, exactly as the model's own tokenizer does it.
 *
 * Two families: Llama-2-style sentencepiece BPE with byte fallback
 * (TOKENIZER_SPM: tokenizer.json BPE+byte_fallback, GGUF "llama", llama2.c
 * .bin) and Llama-3-style byte-level BPE (TOKENIZER_BPE: tokenizer.json with
 * the split regex + ByteLevel, GGUF "gpt2" with pre "llama-bpe").
 *
 * A Tokenizer is immutable once built: encoding and decoding may run from
 * several threads at once.
 */
#ifndef NEUROMAP_TOKENIZER_H
#define NEUROMAP_TOKENIZER_H

#include <stddef.h>

#include "model/model.h"

typedef struct Tokenizer Tokenizer;

enum {
    TOK_ADD_BOS = 1 << 0, /* prepend BOS (callers pass it when vocab->add_bos and the user did not say --no-bos) */
    TOK_SPECIAL = 1 << 1, /* encode: recognise special-token text such as <|eot_id|> in the input;
                             decode: write control tokens (<s>, <|eot_id|>) as their text instead of skipping them */
};

/* Builds the encoder for a model's vocabulary (the Vocab must outlive it).
 * Fails (NM_EINPUT) for a vocabulary it cannot encode exactly, naming why. */
int tokenizer_new(const Vocab *v, Tokenizer **out, Error *e);
void tokenizer_free(Tokenizer *t);

/* The most text one tokenizer_encode call takes: 16 MiB. Encoding needs 30-50
 * bytes of memory per input byte (symbols, candidate merges, the normalised
 * copy, the ids): 0.4-0.8 GB at the limit; a corpus is encoded a document at
 * a time. Longer text fails with NM_EINPUT, naming the limit. */
#define TOKENIZER_MAX_TEXT ((size_t)16 << 20)

/* Encodes len bytes of text. *ids is malloc'd (caller frees), *n its length. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int flags, int **ids, int *n, Error *e);

/* Decodes ids to bytes (malloc'd, NUL-terminated, *len without the NUL), the
 * inverse of tokenizer_encode: control tokens (BOS/EOS) are skipped, and the
 * "▁" an SPM tokenizer put in front of the text is dropped again, as
 * sentencepiece and HF's Strip decoder do. Ids outside the vocabulary are
 * skipped (callers validate user input with tokenizer_n_tokens). */
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, size_t *len);
/* The same with flags: TOK_SPECIAL keeps control tokens as their text. */
char *tokenizer_decode_flags(const Tokenizer *t, const int *ids, int n, int flags, size_t *len);

/* The bytes one token contributes when streamed after `prev` (-1 at the
 * start, for generate): empty for control tokens, and without the SPM prefix
 * space right after BOS or at the start. Points into the Vocab. */
const char *tokenizer_piece_text(const Tokenizer *t, int prev, int id, int *len);

int tokenizer_n_tokens(const Tokenizer *t);

#endif
