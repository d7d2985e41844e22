/* tokenizer.c — text ⇄ token ids for sentencepiece BPE and Llama 3 byte-level BPE.
 *
 * Both families are the same algorithm underneath: cut the text into
 * symbols, then repeatedly merge the adjacent pair that the vocabulary likes
 * best, until no pair can merge. They differ in what "likes best" means and
 * in how the text is cut first:
 *
 *   SPM (Llama 2, llama2.c): the text gets a "▁" in front and every space
 *   becomes "▁"; symbols are UTF-8 characters. With per-token scores (GGUF,
 *   llama2.c) the best pair is the one whose merged piece has the highest
 *   score, as llama.cpp's llm_tokenizer_spm and llama2.c's encode() do; with
 *   a merges list (tokenizer.json) it is the pair of lowest merge rank, as
 *   HF's BPE model does. Characters no token covers fall back to <0xNN>.
 *
 *   BPE (Llama 3): a split regex (PCRE2, JIT) cuts the text into words; each
 *   byte of a word becomes one symbol spelled in GPT-2's byte-level alphabet;
 *   pairs merge by rank. With ignore_merges a word that is itself a token is
 *   taken whole.
 *
 * The merge loop keeps the symbols in a linked list and the candidate pairs
 * in a binary heap, so a word of n symbols costs O(n log n), not a rescan of
 * every pair after every merge. Stale heap entries (a side already merged
 * elsewhere) are recognised by their byte size and skipped.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer.h"

#include "model/alphabet.h"

#include <limits.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* The Llama 3 split pattern, as Meta's tokenizer.json writes it; GGUF files
 * name it by the pre-tokenizer "llama-bpe" instead of storing it. */
static const char llama3_split_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define SPM_SPACE "\xE2\x96\x81" /* "▁", U+2581 */

/* ----------------------------------------------------------------------------
 * Merge table: (left id, right id) → rank and merged id */

typedef struct {
    uint64_t key; /* left << 32 | right; EMPTY_KEY when free */
    int rank, result;
} MergeSlot;

#define EMPTY_KEY UINT64_MAX

typedef struct {
    MergeSlot *slots;
    uint32_t mask;
} MergeTable;

static uint32_t pair_hash(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 32); }
static uint64_t pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

static const MergeSlot *merge_find(const MergeTable *mt, int left, int right) {
    if (!mt->slots) return NULL;
    uint64_t key = pair_key(left, right);
    for (uint32_t h = pair_hash(key) & mt->mask;; h = (h + 1) & mt->mask) {
        const MergeSlot *s = &mt->slots[h];
        if (s->key == key) return s;
        if (s->key == EMPTY_KEY) return NULL;
    }
}

/* Reads "left right" merges in priority order; the first of duplicates wins.
 * Merges naming pieces the vocabulary lacks can never apply and are skipped. */
static void merge_table_build(MergeTable *mt, const Vocab *v) {
    uint32_t cap = 16;
    while (cap < (uint32_t)v->n_merges + (uint32_t)v->n_merges / 2 + 16) cap *= 2; /* load factor <= 2/3 */
    mt->slots = xmalloc(cap * sizeof *mt->slots);
    mt->mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++) mt->slots[i].key = EMPTY_KEY;
    char buf[1024];
    for (int r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r], *sp = strchr(m, ' ');
        size_t total = strlen(m);
        if (!sp || total > sizeof buf) continue;
        int llen = (int)(sp - m), rlen = (int)(total - (size_t)llen - 1);
        int left = vocab_find_piece(v, m, llen), right = vocab_find_piece(v, sp + 1, rlen);
        memcpy(buf, m, (size_t)llen);
        memcpy(buf + llen, sp + 1, (size_t)rlen);
        int result = vocab_find_piece(v, buf, llen + rlen);
        if (left < 0 || right < 0 || result < 0) continue;
        uint64_t key = pair_key(left, right);
        uint32_t h = pair_hash(key) & mt->mask;
        while (mt->slots[h].key != EMPTY_KEY && mt->slots[h].key != key) h = (h + 1) & mt->mask;
        if (mt->slots[h].key == key) continue;
        mt->slots[h] = (MergeSlot){ key, r, result };
    }
}

/* ----------------------------------------------------------------------------
 * The tokenizer */

struct Tokenizer {
    const Vocab *v;
    int use_scores;        /* SPM: pick merges by token score (no merges list) */
    int ignore_merges;     /* BPE: a word that is a token is taken whole */
    MergeTable merges;
    int byte_token[256];   /* SPM: id of <0xNN>; BPE: id of the byte-level character of each byte (-1: none) */
    char byte_char[256][2];/* BPE: each byte spelled in GPT-2's byte-level alphabet (UTF-8, 1 or 2 bytes) */
    uint8_t byte_char_len[256];
    int *special;          /* ids matched as whole tokens in text, longest piece first */
    int n_special;
    uint8_t special_first[256]; /* some special piece starts with this byte */
    pcre2_code *split;     /* BPE pre-tokenizer */
};

int tokenizer_n_tokens(const Tokenizer *t) { return t->v->n_tokens; }

static int is_control(const Vocab *v, int id) { return v->type && v->type[id] == TOKEN_CONTROL; }

/* Tokens that text can produce through merges: not control, unknown, unused
 * or byte tokens (sentencepiece never merges into those). */
static int is_mergeable(const Vocab *v, int id) {
    if (!v->type) return 1;
    int ty = v->type[id];
    return ty != TOKEN_CONTROL && ty != TOKEN_UNKNOWN && ty != TOKEN_UNUSED && ty != TOKEN_BYTE;
}

/* ----------------------------------------------------------------------------
 * Growable arrays */

typedef struct {
    int *a;
    int n, cap;
} IntVec;

static void push_id(IntVec *v, int id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->a = xrealloc(v->a, (size_t)v->cap * sizeof *v->a);
    }
    v->a[v->n++] = id;
}

/* Symbols and their byte offsets are ints: tokenizer_encode refuses text over
 * TOKENIZER_MAX_TEXT, and even SPM's normalised copy (3 bytes for a space)
 * then stays far below INT_MAX. Sizes of buffers are size_t all the same. */
_Static_assert(3 * TOKENIZER_MAX_TEXT + 3 < (size_t)INT_MAX / 2, "symbol offsets must fit an int");

typedef struct {
    int start, len;  /* bytes of the word this symbol spans */
    int id;          /* its token, -1 if none */
    int prev, next;  /* the linked list of live symbols, -1 at the ends */
} Symbol;

typedef struct {
    double priority; /* higher merges first: a score, or minus a merge rank */
    int left, right, size, result;
} Candidate;

/* Scratch space for one encode call, reused from word to word. */
typedef struct {
    Symbol *sym;
    int n_sym;
    size_t cap_sym;
    Candidate *heap;
    int n_heap, cap_heap;
    char *buf; /* the normalised fragment (SPM) or the byte-level word (BPE) */
    size_t cap_buf;
    IntVec out;
} Work;

/* Room for `symbols` symbols and `bytes` bytes of buf: at least what is asked,
 * and twice the old size, so that words of growing length cost amortised O(1). */
static void work_reserve(Work *w, size_t symbols, size_t bytes) {
    if (symbols > w->cap_sym) {
        w->cap_sym = symbols > 2 * w->cap_sym ? symbols : 2 * w->cap_sym;
        w->sym = xrealloc(w->sym, w->cap_sym * sizeof *w->sym);
    }
    if (bytes > w->cap_buf) {
        w->cap_buf = bytes > 2 * w->cap_buf ? bytes : 2 * w->cap_buf;
        w->buf = xrealloc(w->buf, w->cap_buf);
    }
}

static void work_free(Work *w) {
    free(w->sym);
    free(w->heap);
    free(w->buf);
}

/* ----------------------------------------------------------------------------
 * The heap of candidate merges: best priority first, then leftmost */

static int better(const Candidate *a, const Candidate *b) {
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

static void heap_push(Work *w, Candidate c) {
    if (w->n_heap == w->cap_heap) {
        w->cap_heap = w->cap_heap ? 2 * w->cap_heap : 64;
        w->heap = xrealloc(w->heap, (size_t)w->cap_heap * sizeof *w->heap);
    }
    int i = w->n_heap++;
    while (i > 0 && better(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
}

static Candidate heap_pop(Work *w) {
    Candidate top = w->heap[0], last = w->heap[--w->n_heap];
    int i = 0, n = w->n_heap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(&w->heap[c + 1], &w->heap[c])) c++;
        if (!better(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* ----------------------------------------------------------------------------
 * Merging the symbols of one word */

/* Queues the merge of symbols l and r (neighbours) if the vocabulary has one. */
static void try_pair(const Tokenizer *t, Work *w, int l, int r) {
    if (l < 0 || r < 0) return;
    const Symbol *a = &w->sym[l], *b = &w->sym[r];
    Candidate c = { 0, l, r, a->len + b->len, -1 };
    if (t->use_scores) {
        int id = vocab_find_piece(t->v, w->buf + a->start, c.size);
        if (id < 0 || !is_mergeable(t->v, id)) return;
        c.priority = t->v->score[id];
        c.result = id;
    } else {
        if (a->id < 0 || b->id < 0) return;
        const MergeSlot *m = merge_find(&t->merges, a->id, b->id);
        if (!m) return;
        c.priority = -(double)m->rank;
        c.result = m->result;
    }
    heap_push(w, c);
}

/* Merges w->sym[0..n_sym) (spanning w->buf) to completion. */
static void merge_symbols(const Tokenizer *t, Work *w) {
    w->n_heap = 0;
    for (int i = 0; i + 1 < w->n_sym; i++) try_pair(t, w, i, i + 1);
    while (w->n_heap) {
        Candidate c = heap_pop(w);
        Symbol *a = &w->sym[c.left], *b = &w->sym[c.right];
        if (a->len == 0 || b->len == 0 || a->next != c.right || a->len + b->len != c.size) continue; /* stale */
        a->len += b->len;
        a->id = c.result;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = c.left;
        b->len = 0;
        try_pair(t, w, a->prev, c.left);
        try_pair(t, w, c.left, a->next);
    }
}

/* A symbol no token spells: its bytes as <0xNN> tokens, or <unk>. */
static void emit_fallback(const Tokenizer *t, Work *w, const Symbol *s) {
    const Vocab *v = t->v;
    int all_bytes = v->byte_fallback;
    for (int i = 0; i < s->len && all_bytes; i++) all_bytes = t->byte_token[(uint8_t)w->buf[s->start + i]] >= 0;
    if (!all_bytes) {
        if (v->unk_id >= 0) push_id(&w->out, v->unk_id);
        return;
    }
    for (int i = 0; i < s->len; i++) push_id(&w->out, t->byte_token[(uint8_t)w->buf[s->start + i]]);
}

static void emit_symbols(const Tokenizer *t, Work *w) {
    for (int i = 0; i >= 0 && w->n_sym; i = w->sym[i].next) {
        if (w->sym[i].id >= 0) push_id(&w->out, w->sym[i].id);
        else emit_fallback(t, w, &w->sym[i]);
    }
}

static void add_symbol(Work *w, int start, int len, int id) {
    Symbol *s = &w->sym[w->n_sym];
    *s = (Symbol){ start, len, id, w->n_sym - 1, -1 };
    if (w->n_sym) w->sym[w->n_sym - 1].next = w->n_sym;
    w->n_sym++;
}

/* Length of the UTF-8 character at s; a byte that does not start a
 * well-formed one is a symbol of its own (and falls back to <0xNN>). */
static int utf8_len(const unsigned char *s, size_t avail) {
    int n = utf8_sequence_length(s, avail);
    return n ? n : 1;
}

/* ----------------------------------------------------------------------------
 * SPM: one fragment of plain text */

static void encode_spm(const Tokenizer *t, Work *w, const char *text, size_t len, int prefix_space) {
    /* Normalise: "▁" in front, every space → "▁" (no other whitespace handling).
     * Each input byte makes at most one symbol, and at most 3 bytes. */
    work_reserve(w, len + 1, 3 * len + 3);
    size_t o = 0;
    if (prefix_space) { memcpy(w->buf, SPM_SPACE, 3); o = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(w->buf + o, SPM_SPACE, 3); o += 3; }
        else w->buf[o++] = text[i];
    }
    w->n_sym = 0;
    for (size_t i = 0; i < o;) {
        int n = utf8_len((const unsigned char *)w->buf + i, o - i);
        add_symbol(w, (int)i, n, vocab_find_piece(t->v, w->buf + i, n));
        i += (size_t)n;
    }
    merge_symbols(t, w);
    emit_symbols(t, w);
}

/* ----------------------------------------------------------------------------
 * BPE: split regex, byte-level alphabet, merges by rank */

static void encode_bpe_word(const Tokenizer *t, Work *w, const char *word, size_t len) {
    work_reserve(w, len, 2 * len); /* byte-level characters take 1 or 2 bytes */
    size_t o = 0;
    w->n_sym = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)word[i];
        add_symbol(w, (int)o, t->byte_char_len[b], t->byte_token[b]);
        memcpy(w->buf + o, t->byte_char[b], t->byte_char_len[b]);
        o += t->byte_char_len[b];
    }
    if (t->ignore_merges) {
        int id = vocab_find_piece(t->v, w->buf, (int)o); /* o < 2 × TOKENIZER_MAX_TEXT */
        if (id >= 0 && !is_control(t->v, id)) {
            push_id(&w->out, id);
            return;
        }
    }
    merge_symbols(t, w);
    emit_symbols(t, w);
}

/* Cuts text into words with the split regex: each match is a word, and so is
 * each run of bytes between matches (invalid UTF-8, say), as HF's Split
 * "Isolated" keeps them. An empty match is a cut and not a word, as in HF
 * tokenizers: it yields no piece, and the next search starts at the same
 * place but may not match empty there again (PCRE2_NOTEMPTY_ATSTART), so the
 * scan moves on without ever stepping past the end of the text. */
static int encode_bpe(const Tokenizer *t, Work *w, const char *text, size_t len, Error *e) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->split, NULL);
    if (!md) return error_set(e, NM_ERUNTIME, "tokenizer: out of memory for the split regex");
    size_t at = 0;          /* start of the bytes not yet in a word */
    uint32_t options = 0;
    while (at < len) {
        int rc = pcre2_match(t->split, (PCRE2_SPTR)text, len, at, options, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            pcre2_match_data_free(md);
            return error_set(e, NM_ERUNTIME, "tokenizer: split regex failed (PCRE2 error %d)", rc);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], end = ov[1];
        if (s > at) encode_bpe_word(t, w, text + at, s - at);
        if (end > s) encode_bpe_word(t, w, text + s, end - s);
        options = end == s ? PCRE2_NOTEMPTY_ATSTART : 0;
        at = end;
    }
    if (at < len) encode_bpe_word(t, w, text + at, len - at);
    pcre2_match_data_free(md);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Encoding: special tokens first, then fragments of plain text */

/* The special token whose piece starts text (longest first), or -1. User-defined
 * tokens always match (as llama.cpp and HF's non-special added tokens do);
 * control and unknown ones only with TOK_SPECIAL. */
static int match_special(const Tokenizer *t, const char *text, size_t len, int flags, int *plen) {
    if (!t->special_first[(uint8_t)text[0]]) return -1;
    const Vocab *v = t->v;
    for (int k = 0; k < t->n_special; k++) {
        int id = t->special[k], n = v->piece_len[id];
        if ((size_t)n > len || v->piece[id][0] != text[0] || memcmp(v->piece[id], text, (size_t)n) != 0) continue;
        if (v->type[id] != TOKEN_USER_DEFINED && !(flags & TOK_SPECIAL)) continue;
        *plen = n;
        return id;
    }
    return -1;
}

/* after_special: the fragment starts the text or follows a special token, where
 * SPM puts its "▁" (llama.cpp and HF both normalise each fragment alone). */
static int encode_fragment(const Tokenizer *t, Work *w, const char *text, size_t len, int after_special, Error *e) {
    if (len == 0) return NM_OK;
    if (t->v->kind == TOKENIZER_SPM) {
        encode_spm(t, w, text, len, after_special && t->v->add_space_prefix);
        return NM_OK;
    }
    return encode_bpe(t, w, text, len, e);
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int flags, int **ids, int *n, Error *e) {
    if (len > TOKENIZER_MAX_TEXT)
        return error_set(e, NM_EINPUT, "tokenizer: text of %zu bytes is too long (%zu MiB at most per call)", len,
                         TOKENIZER_MAX_TEXT >> 20);
    Work w = { 0 };
    int rc = NM_OK;
    if (flags & TOK_ADD_BOS) {
        if (t->v->bos_id < 0) return error_set(e, NM_EINPUT, "tokenizer: the vocabulary has no BOS token to add");
        push_id(&w.out, t->v->bos_id);
    }
    size_t frag = 0;
    int after_special = 1;
    for (size_t i = 0; i < len && !rc;) {
        int plen, id = t->n_special ? match_special(t, text + i, len - i, flags, &plen) : -1;
        if (id < 0) { i++; continue; }
        rc = encode_fragment(t, &w, text + frag, i - frag, after_special, e);
        push_id(&w.out, id);
        i += (size_t)plen;
        frag = i;
        after_special = 1;
    }
    if (!rc) rc = encode_fragment(t, &w, text + frag, len - frag, after_special, e);
    work_free(&w);
    if (rc) {
        free(w.out.a);
        return rc;
    }
    *ids = w.out.a ? w.out.a : xmalloc(sizeof(int));
    *n = w.out.n;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Decoding */

/* SPM text starts with the "▁" the encoder added: the decoders drop it. */
static int strips_prefix_space(const Tokenizer *t) { return t->v->kind == TOKENIZER_SPM && t->v->add_space_prefix; }

const char *tokenizer_piece_text(const Tokenizer *t, int prev, int id, int *len) {
    const Vocab *v = t->v;
    if (id < 0 || id >= v->n_tokens || is_control(v, id)) {
        *len = 0;
        return "";
    }
    const char *s = v->text[id];
    *len = v->text_len[id];
    if (strips_prefix_space(t) && (prev < 0 || prev == v->bos_id) && *len > 0 && s[0] == ' ') {
        s++;
        (*len)--;
    }
    return s;
}

char *tokenizer_decode_flags(const Tokenizer *t, const int *ids, int n, int flags, size_t *len) {
    const Vocab *v = t->v;
    size_t total = 1;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < v->n_tokens) total += (size_t)v->text_len[ids[i]];
    char *out = xmalloc(total), *o = out;
    int first = 1;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= v->n_tokens || (is_control(v, id) && !(flags & TOK_SPECIAL))) continue;
        const char *s = v->text[id];
        int l = v->text_len[id];
        if (first && strips_prefix_space(t) && l > 0 && s[0] == ' ') { s++; l--; }
        first = 0;
        memcpy(o, s, (size_t)l);
        o += l;
    }
    *o = 0;
    if (len) *len = (size_t)(o - out);
    return out;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, size_t *len) {
    return tokenizer_decode_flags(t, ids, n, 0, len);
}

/* ----------------------------------------------------------------------------
 * Construction */

/* Each byte spelled in GPT-2's byte-level alphabet (model/vocab.c), once. */
static void build_byte_alphabet(Tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char c[4];
        t->byte_char_len[b] = (uint8_t)utf8_encode(byte_level_char((uint8_t)b), c); /* U+0143 at most: 2 bytes */
        memcpy(t->byte_char[b], c, t->byte_char_len[b]);
        t->byte_token[b] = vocab_find_piece(t->v, t->byte_char[b], t->byte_char_len[b]);
    }
}

static void build_spm_bytes(Tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        t->byte_token[b] = vocab_find_piece(t->v, piece, 6);
    }
}

static int cmp_special(const void *a, const void *b, void *vv) {
    const Vocab *v = vv;
    int x = *(const int *)a, y = *(const int *)b;
    if (v->piece_len[x] != v->piece_len[y]) return v->piece_len[y] - v->piece_len[x];
    return x - y;
}

static void build_specials(Tokenizer *t) {
    const Vocab *v = t->v;
    if (!v->type) return;
    t->special = xmalloc((size_t)v->n_tokens * sizeof *t->special);
    for (int id = 0; id < v->n_tokens; id++) {
        int ty = v->type[id];
        if (v->piece_len[id] == 0 || (ty != TOKEN_CONTROL && ty != TOKEN_USER_DEFINED && ty != TOKEN_UNKNOWN)) continue;
        t->special[t->n_special++] = id;
        t->special_first[(uint8_t)v->piece[id][0]] = 1;
    }
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, (void *)v);
}

static int compile_split(Tokenizer *t, Error *e) {
    const Vocab *v = t->v;
    const char *pattern = v->pre_regex;
    if (!pattern) {
        if (v->pre && (strcmp(v->pre, "llama-bpe") == 0 || strcmp(v->pre, "llama3") == 0 || strcmp(v->pre, "llama-v3") == 0))
            pattern = llama3_split_regex;
        else
            return error_set(e, NM_EINPUT, "tokenizer: byte-level BPE with pre-tokenizer '%s' is not supported (neuromap knows llama-bpe)",
                             v->pre ? v->pre : "(none)");
    }
    int err;
    PCRE2_SIZE off;
    t->split = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!t->split) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return error_set(e, NM_EINPUT, "tokenizer: split regex does not compile at offset %zu: %s", (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(t->split, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    return NM_OK;
}

int tokenizer_new(const Vocab *v, Tokenizer **out, Error *e) {
    *out = NULL;
    if (v->kind == TOKENIZER_NONE || v->n_tokens <= 0) return error_set(e, NM_EINPUT, "tokenizer: the model has no vocabulary");
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->v = v;
    int rc = NM_OK;
    if (v->kind == TOKENIZER_SPM) {
        t->use_scores = v->n_merges == 0;
        if (t->use_scores && !v->score)
            rc = error_set(e, NM_EINPUT, "tokenizer: sentencepiece vocabulary has neither scores nor merges");
        build_spm_bytes(t);
    } else {
        t->ignore_merges = v->ignore_merges || (v->pre && strcmp(v->pre, "llama-bpe") == 0);
        build_byte_alphabet(t);
        for (int b = 0; b < 256 && !rc; b++)
            if (t->byte_token[b] < 0)
                rc = error_set(e, NM_EINPUT, "tokenizer: byte-level vocabulary lacks the token for byte 0x%02X", b);
        if (!rc) rc = compile_split(t, e);
    }
    if (!rc && !t->use_scores) merge_table_build(&t->merges, v);
    if (!rc) build_specials(t);
    if (rc) tokenizer_free(t);
    else *out = t;
    return rc;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->merges.slots);
    free(t->special);
    if (t->split) pcre2_code_free(t->split);
    free(t);
}
