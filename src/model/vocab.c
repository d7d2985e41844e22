/* vocab.c — the token table every loader fills: pieces, the bytes they stand
 * for, and a piece → id index. Encoding text lives in tokenizer.c. */
#include "model/vocab.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "model/alphabet.h"

/* ----------------------------------------------------------------------------
 * Bytes behind a piece */

/* "<0x0A>" → 0x0A; returns -1 for anything else. */
static int byte_piece_value(const char *p, int len) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* ----------------------------------------------------------------------------
 * GPT-2's byte-level alphabet (alphabet.h): the three runs of non-printable
 * bytes, counted in order from U+0100. */

unsigned byte_level_char(uint8_t b) {
    if (b <= 0x20) return 0x100u + b;                        /* 33 controls and space: U+0100..U+0120 */
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (b - 0x7Fu); /* DEL, C1 controls, NBSP: U+0121..U+0142 */
    if (b == 0xAD) return 0x143u;                            /* soft hyphen */
    return b;
}

int byte_level_byte(unsigned cp) {
    if (cp < 0x100) return byte_level_char((uint8_t)cp) == cp ? (int)cp : -1;
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    return cp == 0x143 ? 0xAD : -1;
}

static void derive_one(Vocab *v, int id) {
    const char *p = v->piece[id];
    int len = v->piece_len[id], special = v->type[id] == TOKEN_CONTROL || v->type[id] == TOKEN_USER_DEFINED;
    char *out = xmalloc((size_t)len + 1);
    int o = 0;
    int b = byte_piece_value(p, len);
    if (special) {
        memcpy(out, p, (size_t)len);
        o = len;
    } else if (v->kind == TOKENIZER_SPM && b >= 0) {
        out[o++] = (char)b;
    } else if (v->kind == TOKENIZER_SPM) {
        for (int i = 0; i < len;) {
            if (i + 3 <= len && memcmp(p + i, "\xE2\x96\x81", 3) == 0) { out[o++] = ' '; i += 3; }
            else out[o++] = p[i++];
        }
    } else if (v->kind == TOKENIZER_BPE) {
        for (int i = 0; i < len;) {
            unsigned cp;
            int n = utf8_decode((const unsigned char *)p + i, (size_t)(len - i), &cp);
            int byte = n ? byte_level_byte(cp) : -1;
            if (byte < 0) { /* not byte-level text: keep as is */
                n = n ? n : 1;
                memcpy(out + o, p + i, (size_t)n);
                o += n;
            } else {
                out[o++] = (char)byte;
            }
            i += n;
        }
    } else {
        memcpy(out, p, (size_t)len);
        o = len;
    }
    out[o] = 0;
    free(v->text[id]);
    v->text[id] = out;
    v->text_len[id] = o;
}

void vocab_derive_text(Vocab *v) {
    if (!v->text) {
        v->text = xcalloc((size_t)v->n_tokens, sizeof *v->text);
        v->text_len = xcalloc((size_t)v->n_tokens, sizeof *v->text_len);
    }
    for (int i = 0; i < v->n_tokens; i++) derive_one(v, i);
}

/* ----------------------------------------------------------------------------
 * Growing, indexing, freeing */

void vocab_resize(Vocab *v, int n) {
    if (n <= v->n_tokens) return;
    size_t old = (size_t)v->n_tokens, nn = (size_t)n;
#define GROW(arr)                                                            \
    if (v->arr) {                                                           \
        v->arr = xrealloc(v->arr, nn * sizeof *v->arr);                     \
        memset(v->arr + old, 0, (nn - old) * sizeof *v->arr);               \
    }
    GROW(piece) GROW(piece_len) GROW(text) GROW(text_len) GROW(score) GROW(type)
#undef GROW
    for (size_t i = old; i < nn; i++) {
        if (v->piece) v->piece[i] = xstrdup("");
        if (v->text) v->text[i] = xstrdup("");
        if (v->type) v->type[i] = TOKEN_UNUSED;
    }
    v->n_tokens = n;
}

typedef struct {
    int cap;     /* power of two */
    int *slots;  /* token id + 1, 0 = empty */
} PieceIndex;

static uint32_t piece_hash(const char *p, int len) { return (uint32_t)fnv1a64(FNV1A64_INIT, p, (size_t)len); }

void vocab_build_index(Vocab *v) {
    PieceIndex *ix = v->index;
    if (ix) { free(ix->slots); free(ix); }
    ix = xcalloc(1, sizeof *ix);
    ix->cap = 16;
    while (ix->cap < 2 * v->n_tokens + 16) ix->cap *= 2;
    ix->slots = xcalloc((size_t)ix->cap, sizeof *ix->slots);
    /* First id wins for duplicate pieces, as in the reference tokenizers. */
    for (int id = 0; id < v->n_tokens; id++) {
        if (v->piece_len[id] == 0) continue;
        uint32_t h = piece_hash(v->piece[id], v->piece_len[id]) & (uint32_t)(ix->cap - 1);
        for (;; h = (h + 1) & (uint32_t)(ix->cap - 1)) {
            int s = ix->slots[h];
            if (!s) { ix->slots[h] = id + 1; break; }
            if (v->piece_len[s - 1] == v->piece_len[id] && memcmp(v->piece[s - 1], v->piece[id], (size_t)v->piece_len[id]) == 0) break;
        }
    }
    v->index = ix;
}

int vocab_find_piece(const Vocab *v, const char *piece, int len) {
    const PieceIndex *ix = v->index;
    if (!ix || len <= 0) return -1;
    for (uint32_t h = piece_hash(piece, len) & (uint32_t)(ix->cap - 1);; h = (h + 1) & (uint32_t)(ix->cap - 1)) {
        int s = ix->slots[h];
        if (!s) return -1;
        if (v->piece_len[s - 1] == len && memcmp(v->piece[s - 1], piece, (size_t)len) == 0) return s - 1;
    }
}

void vocab_free(Vocab *v) {
    for (int i = 0; i < v->n_tokens; i++) {
        if (v->piece) free(v->piece[i]);
        if (v->text) free(v->text[i]);
    }
    for (int i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->piece); free(v->piece_len); free(v->text); free(v->text_len);
    free(v->score); free(v->type); free(v->merges);
    free(v->pre); free(v->pre_regex); free(v->chat_template);
    PieceIndex *ix = v->index;
    if (ix) { free(ix->slots); free(ix); }
    memset(v, 0, sizeof *v);
}
