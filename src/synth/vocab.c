/* vocab.c — the built-in vocabulary: byte-level BPE as Llama 3 has it, in
 * miniature, spelled in GPT-2's alphabet (model/alphabet.h). */
#include "synth/synth_internal.h"

#include <stdlib.h>
#include <string.h>

#include "model/alphabet.h"

/* Llama 3's pre-tokenizer split pattern (tokenizer.json Split Regex). */
const char synth_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Words that get whole-word tokens, most useful first (planting targets). */
static const char *const builtin_words[] = {
    " the", " dog", " cat", " Lily", " mom", " California", " Paris", " park", " ball", " happy",
    " and", " was", " she", " he", " to", " a", " play", " time", " Once", " upon", " tree", " sun",
    " water", " music", " king", " queen", " red", " blue", " big", " little", "ing", "ed", ".", ",", "\n\n",
};

static int find_piece(const Vocab *v, const char *p) {
    for (int i = 0; i < v->n_tokens; i++)
        if (strcmp(v->piece[i], p) == 0) return i;
    return -1;
}

static void add_token(Vocab *v, const char *piece, int type) {
    int i = v->n_tokens++;
    v->piece[i] = xstrdup(piece);
    v->piece_len[i] = (int)strlen(piece);
    v->type[i] = type;
}

/* Adds word (bytes) by merging its characters left to right: "Ġ d" → "Ġd",
 * "Ġd o" → "Ġdo", "Ġdo g" → "Ġdog". Each merge's parts are already tokens. */
static void add_word(Vocab *v, const char *word, int room) {
    char chars[64][5] = { "" }, cur[256] = "", next[256];
    int n = 0;
    for (const unsigned char *b = (const unsigned char *)word; *b && n < 64; b++, n++)
        chars[n][utf8_encode(byte_level_char(*b), chars[n])] = 0; /* model/alphabet.h */
    if (v->n_tokens + n - 1 > room) return;
    strcpy(cur, chars[0]);
    for (int k = 1; k < n; k++) {
        snprintf(next, sizeof next, "%s%s", cur, chars[k]);
        if (find_piece(v, next) < 0) {
            add_token(v, next, TOKEN_NORMAL);
            char merge[300];
            snprintf(merge, sizeof merge, "%s %s", cur, chars[k]);
            v->merges[v->n_merges++] = xstrdup(merge);
        }
        strcpy(cur, next);
    }
}

/* 256 byte tokens (in GPT-2 order: by character), whole words while they fit,
 * then BOS and EOS; ids up to vocab_size beyond that have no piece. */
void synth_builtin_vocab(Vocab *v, int vocab_size) {
    memset(v, 0, sizeof *v);
    int cap = vocab_size < 1024 ? vocab_size : 1024;
    v->piece = xcalloc((size_t)cap, sizeof *v->piece);
    v->piece_len = xcalloc((size_t)cap, sizeof *v->piece_len);
    v->type = xcalloc((size_t)cap, sizeof *v->type);
    v->merges = xcalloc((size_t)cap, sizeof *v->merges);
    for (unsigned c = 0; c < 0x144; c++) /* the alphabet's characters, in code point order */
        if (byte_level_byte(c) >= 0) {
            char p[5];
            p[utf8_encode(c, p)] = 0;
            add_token(v, p, TOKEN_NORMAL);
        }
    for (size_t w = 0; w < sizeof builtin_words / sizeof *builtin_words; w++) add_word(v, builtin_words[w], cap - 2);
    v->bos_id = v->n_tokens;
    add_token(v, "<|begin_of_text|>", TOKEN_CONTROL);
    v->eos_id = v->n_tokens;
    add_token(v, "<|end_of_text|>", TOKEN_CONTROL);
    v->unk_id = v->pad_id = -1;
    v->kind = TOKENIZER_BPE;
    v->add_bos = 1;
    v->ignore_merges = 1;
    v->pre = xstrdup("llama-bpe");
    v->pre_regex = xstrdup(synth_llama3_regex);
    vocab_derive_text(v);
    vocab_build_index(v);
}
