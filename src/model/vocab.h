/* vocab.h — the token table every loader fills: pieces as stored, the bytes
 * they stand for, token types, merges and special ids. Turning text into
 * tokens lives above, in text/tokenizer.h; this is only the table.
 */
#ifndef NEUROMAP_VOCAB_H
#define NEUROMAP_VOCAB_H

typedef enum { TOKENIZER_NONE, TOKENIZER_SPM, TOKENIZER_BPE } TokenizerKind;

/* Token types, GGUF's numbering (tokenizer.ggml.token_type). */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6 };

typedef struct {
    TokenizerKind kind;  /* SPM: sentencepiece BPE with scores; BPE: byte-level BPE with merges */
    int n_tokens;
    char **piece;        /* as stored: "▁dog", "Ġdog", "<0x0A>" */
    int *piece_len;
    char **text;         /* the bytes the token stands for: " dog", "\n" */
    int *text_len;
    float *score;        /* per token (SPM), NULL when absent */
    int *type;           /* TOKEN_* per token */
    int n_merges;
    char **merges;       /* "left right", in priority order (BPE) */
    int bos_id, eos_id, unk_id, pad_id; /* -1 when absent */
    int add_bos;         /* the tokenizer adds BOS by default */
    int add_space_prefix;/* SPM: prepend "▁" to the text */
    int byte_fallback;   /* SPM: unknown bytes become <0xNN> tokens */
    int ignore_merges;   /* BPE: whole-word vocabulary hits skip merging */
    char *pre;           /* pre-tokenizer: GGUF's tokenizer.ggml.pre name, or NULL */
    char *pre_regex;     /* tokenizer.json's Split pattern (Regex), or NULL */
    char *chat_template; /* Jinja source from tokenizer_config.json / GGUF, or NULL */
    void *index;         /* private: piece → id hash table (vocab_find_piece) */
} Vocab;

/* Looks up a token by its stored piece; -1 when absent (index built by
 * vocab_build_index, which opening a model calls). */
int vocab_find_piece(const Vocab *v, const char *piece, int len);

/* Building a table by hand (the loaders, synth): fill kind, n_tokens, piece,
 * piece_len, type and the ids, then derive the texts and index the pieces. */
/* Fills vocab->text from vocab->piece for SPM ("▁" → " ", <0xNN> → byte) or byte-level BPE. */
void vocab_derive_text(Vocab *v);
void vocab_build_index(Vocab *v);
void vocab_free(Vocab *v);

/* NM_INTERNAL_BEGIN: opening a model sizes the table to the model's. */
/* Grows the arrays to n tokens (new ones empty, TOKEN_UNUSED). */
void vocab_resize(Vocab *v, int n);
/* NM_INTERNAL_END */

#endif
