/* test_tokenizer.c — every reference vector, id for id, in every form its
 * tokenizer exists in; decode(encode(x)) == x; special tokens; BOS. */
#include <cJSON.h>
#include <string.h>

#include "text/chat.h"
#include "check.h"
#include "formats/registry.h"
#include "model/alphabet.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

/* ----------------------------------------------------------------------------
 * Helpers */

typedef struct {
    Model m;
    Tokenizer *t;
} Loaded;

static int load(Loaded *l, const char *path, const char *tokenizer_path) {
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer_path };
    if (model_open(&l->m, path, &o, &e)) {
        CHECK(0, "open %s: %s", path, e.msg);
        return 0;
    }
    if (tokenizer_new(&l->m.vocab, &l->t, &e)) {
        CHECK(0, "tokenizer for %s: %s", path, e.msg);
        model_close(&l->m);
        return 0;
    }
    return 1;
}

static void unload(Loaded *l) {
    tokenizer_free(l->t);
    model_close(&l->m);
}

static int same_ids(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void ids_str(const int *ids, int n, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(out + o, cap - o, " %d", ids[i]);
}

/* Encodes text and compares with want; also checks the round trip when asked. */
static void check_encode(const Loaded *l, const char *what, const char *text, size_t len, int flags, const int *want,
                         int n_want, int round_trip) {
    int *ids = NULL, n = 0;
    Error e = { 0 };
    if (tokenizer_encode(l->t, text, len, flags, &ids, &n, &e)) {
        CHECK(0, "%s: encode '%.*s': %s", what, (int)len, text, e.msg);
        return;
    }
    char got[2048], exp[2048];
    ids_str(ids, n, got, sizeof got);
    ids_str(want, n_want, exp, sizeof exp);
    CHECK(same_ids(ids, n, want, n_want), "%s: '%.*s'\n  got %s\n want %s", what, (int)len, text, got, exp);
    if (round_trip) {
        size_t dl;
        char *back = tokenizer_decode(l->t, ids, n, &dl);
        CHECK(dl == len && memcmp(back, text, len) == 0, "%s: round trip of '%.*s' gave '%s'", what, (int)len, text, back);
        free(back);
    }
    free(ids);
}

/* ----------------------------------------------------------------------------
 * stories260K: tokenizer_vectors.jsonl ("ids" exclude BOS; "special" lines
 * are encoded with special-token parsing) */

static void run_jsonl(const char *what, const char *path, const char *tokenizer_path) {
    Loaded l;
    if (!load(&l, path, tokenizer_path)) return;
    char *data;
    size_t len;
    Error e = { 0 };
    if (read_file(shared_path("models/stories260K-hf/tokenizer_vectors.jsonl"), 1 << 20, &data, &len, &e)) {
        CHECK(0, "%s", e.msg);
        unload(&l);
        return;
    }
    int lines = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        CHECK(cJSON_IsString(text) && cJSON_IsArray(ids), "%s: bad vector line %s", what, line);
        if (cJSON_IsString(text) && cJSON_IsArray(ids)) {
            int n = cJSON_GetArraySize(ids), *want = xmalloc((size_t)(n + 1) * sizeof *want);
            for (int i = 0; i < n; i++) want[i] = cJSON_GetArrayItem(ids, i)->valueint;
            int special = cJSON_IsTrue(cJSON_GetObjectItem(j, "special"));
            check_encode(&l, what, text->valuestring, strlen(text->valuestring), special ? TOK_SPECIAL : 0, want, n, !special);
            /* With BOS: the same ids after id 1. */
            int *with_bos = xmalloc((size_t)(n + 1) * sizeof *with_bos);
            with_bos[0] = l.m.vocab.bos_id;
            memcpy(with_bos + 1, want, (size_t)n * sizeof *want);
            check_encode(&l, what, text->valuestring, strlen(text->valuestring), TOK_ADD_BOS | (special ? TOK_SPECIAL : 0),
                         with_bos, n + 1, 0);
            free(with_bos);
            free(want);
            lines++;
        }
        cJSON_Delete(j);
    }
    CHECK(lines == 47, "%s: %d vector lines, want 47", what, lines);
    free(data);
    unload(&l);
}


/* ----------------------------------------------------------------------------
 * llama.cpp's vectors: .inp holds the tests separated by
 * "\n__ggml_vocab_test__\n"; .out one line of " id id ..." per test */

static void run_llamacpp_vectors(const char *what, const Loaded *l, const char *vectors) {
    char inp_path[4096], out_path[4096], *inp, *out;
    size_t inp_len, out_len;
    Error e = { 0 };
    snprintf(inp_path, sizeof inp_path, "%s.inp", vectors);
    snprintf(out_path, sizeof out_path, "%s.out", vectors);
    if (read_file(inp_path, 1 << 20, &inp, &inp_len, &e) || read_file(out_path, 1 << 20, &out, &out_len, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    int tests = 0, want[512];
    char *text = inp, *line = out;
    for (char *end; (end = memmem(text, inp_len - (size_t)(text - inp), sep, sep_len)) != NULL; text = end + sep_len) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            CHECK(0, "%s: %s has fewer lines than tests", what, out_path);
            break;
        }
        *nl = 0;
        int n = 0;
        for (char *tok = strtok(line, " "); tok && n < 512; tok = strtok(NULL, " ")) want[n++] = atoi(tok);
        check_encode(l, what, text, (size_t)(end - text), 0, want, n, 1);
        line = nl + 1;
        tests++;
    }
    CHECK(tests == 46, "%s: %d tests, want 46", what, tests);
    free(inp);
    free(out);
}

/* ----------------------------------------------------------------------------
 * Behaviour beyond the vectors */

static void check_specials_and_decode(void) {
    Loaded l;
    if (!load(&l, shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"))) return;
    /* Without --special, "</s>" is text; with it, one token. */
    int *ids, n;
    Error e = { 0 };
    CHECK(tokenizer_encode(l.t, "</s>", 4, 0, &ids, &n, &e) == 0 && n > 1, "</s> as text is several tokens (got %d)", n);
    free(ids);
    CHECK(tokenizer_encode(l.t, "</s>", 4, TOK_SPECIAL, &ids, &n, &e) == 0 && n == 1 && ids[0] == 2, "</s> with TOK_SPECIAL is EOS");
    free(ids);
    /* Decoding skips BOS/EOS unless asked, and drops the SPM prefix space once. */
    int seq[] = { 1, 403, 407, 261, 378, 2 };
    size_t len;
    char *s = tokenizer_decode(l.t, seq, 6, &len);
    CHECK(strcmp(s, "Once upon a time") == 0, "decode gave '%s'", s);
    free(s);
    s = tokenizer_decode_flags(l.t, seq, 6, TOK_SPECIAL, &len);
    CHECK(strcmp(s, "<s> Once upon a time</s>") == 0, "decode with specials gave '%s'", s);
    free(s);
    /* Streaming: the first piece after BOS loses its space, later ones keep it. */
    int pl;
    const char *p = tokenizer_piece_text(l.t, 1, 403, &pl);
    CHECK(pl == 4 && memcmp(p, "Once", 4) == 0, "piece after BOS is '%.*s'", pl, p);
    p = tokenizer_piece_text(l.t, 403, 407, &pl);
    CHECK(pl == 5 && memcmp(p, " upon", 5) == 0, "piece after Once is '%.*s'", pl, p);
    p = tokenizer_piece_text(l.t, 403, 2, &pl);
    CHECK(pl == 0, "EOS streams as nothing");
    /* Bytes no token covers fall back to <0xNN> (id 3 + byte) and come back intact. */
    const char odd[] = "\xF0\x9F\xA6\x99 \x01";
    const int odd_ids[] = { 410, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99, 410, 3 + 0x01 };
    check_encode(&l, "byte fallback", odd, sizeof odd - 1, 0, odd_ids, 7, 1);
    /* Long runs of one character: check_long_runs(), against derived ids. */
    unload(&l);
}


/* ----------------------------------------------------------------------------
 * A reference byte-level BPE, written for the tests and sharing nothing with
 * src/text/tokenizer.c: the word spelled in GPT-2's alphabet (the rule of
 * OpenAI's bytes_to_unicode()), then, as HF's BPE model defines it, merge the
 * adjacent pair of lowest merge rank, leftmost first, until none applies;
 * with ignore_merges a word that is a token is taken whole. Quadratic, and
 * only fit for short words, which is all a test needs. */

/* Byte b spelled in GPT-2's alphabet: printable bytes are themselves, the
 * other 68 are U+0100.. in byte order. Returns the UTF-8 length. */
static size_t ref_spell(unsigned b, char *out) {
    unsigned cp = b, below = 0;
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (!printable) {
        for (unsigned c = 0; c < b; c++) below += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174);
        cp = 256 + below;
    }
    if (cp < 128) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 63));
    return 2;
}

static int ref_id(const Vocab *v, const char *piece) {
    for (int i = 0; i < v->n_tokens; i++)
        if (v->piece[i] && strcmp(v->piece[i], piece) == 0) return i;
    return -1;
}

/* Appends the ids of one pre-tokenized word to ids[*n]. */
static void ref_bpe_word(const Vocab *v, int ignore_merges, const char *word, size_t len, int *ids, int *n) {
    char **sym = xmalloc((len + 1) * sizeof *sym), whole[4096] = "";
    int ns = 0;
    size_t wl = 0;
    for (size_t i = 0; i < len; i++) {
        char c[3] = { 0 };
        ref_spell((unsigned char)word[i], c);
        sym[ns++] = xstrdup(c);
        if (wl + 3 < sizeof whole) wl += (size_t)snprintf(whole + wl, sizeof whole - wl, "%s", c);
    }
    int id = ignore_merges ? ref_id(v, whole) : -1;
    if (id >= 0) {
        ids[(*n)++] = id;
        for (int i = 0; i < ns; i++) free(sym[i]);
        ns = 0;
    }
    /* Only merges made of characters of this word can ever apply. */
    int *rel = xmalloc((size_t)v->n_merges * sizeof *rel + 1), nrel = 0;
    for (int r = 0; r < v->n_merges && ns; r++) {
        const char *m = v->merges[r];
        int ok = strchr(m, ' ') != NULL;
        for (const char *q = m; *q && ok; q++) ok = *q == ' ' || memchr(whole, *q, wl) != NULL;
        if (ok) rel[nrel++] = r;
    }
    for (;;) {
        int best = -1, best_rank = 0;
        for (int i = 0; i + 1 < ns; i++) {
            char pair[512];
            snprintf(pair, sizeof pair, "%s %s", sym[i], sym[i + 1]);
            for (int k = 0; k < nrel && (best < 0 || rel[k] < best_rank); k++)
                if (strcmp(v->merges[rel[k]], pair) == 0) {
                    best = i, best_rank = rel[k];
                    break;
                }
        }
        if (best < 0) break;
        char merged[512];
        snprintf(merged, sizeof merged, "%s%s", sym[best], sym[best + 1]);
        free(sym[best]);
        free(sym[best + 1]);
        sym[best] = xstrdup(merged);
        memmove(sym + best + 1, sym + best + 2, (size_t)(ns - best - 2) * sizeof *sym);
        ns--;
    }
    for (int i = 0; i < ns; i++) {
        ids[(*n)++] = ref_id(v, sym[i]);
        free(sym[i]);
    }
    free(sym);
    free(rel);
}

/* model/vocab.c's alphabet against the rule above, both ways, and the UTF-8
 * encoder and decoder of base/util.c against the spelling. */
static void check_byte_alphabet(void) {
    int bad = 0, seen[0x144] = { 0 };
    for (unsigned b = 0; b < 256; b++) {
        char want[3] = { 0 }, got[4];
        size_t n = ref_spell(b, want);
        unsigned cp = byte_level_char((uint8_t)b), back = 0;
        int len = utf8_encode(cp, got);
        bad += (size_t)len != n || memcmp(got, want, n) != 0 || byte_level_byte(cp) != (int)b ||
               utf8_decode((const unsigned char *)want, n, &back) != (int)n || back != cp || cp >= 0x144 || seen[cp]++;
    }
    for (unsigned cp = 0x144; cp < 0x20000; cp++) bad += byte_level_byte(cp) != -1;
    CHECK(bad == 0, "byte-level alphabet: %d mismatches with bytes_to_unicode()", bad);
}

/* base/util.c's UTF-8 decoder against RFC 3629's table of well-formed
 * sequences (section 4), case by case at each edge, and its encoder against
 * the decoder over every scalar value. */
static void check_utf8(void) {
    static const struct { const char *s; size_t n; int len; unsigned cp; } cases[] = {
        { "\x00", 1, 1, 0 },          { "\x7F", 1, 1, 0x7F },          { "\x80", 1, 0, 0 },          /* stray continuation */
        { "\xC1\xBF", 2, 0, 0 },      { "\xC2\x80", 2, 2, 0x80 },      { "\xDF\xBF", 2, 2, 0x7FF },
        { "\xC2", 1, 0, 0 },           { "\xC2\x41", 2, 0, 0 },         /* truncated; not a continuation */
        { "\xE0\x9F\xBF", 3, 0, 0 },  { "\xE0\xA0\x80", 3, 3, 0x800 }, /* overlong; the first 3-byte */
        { "\xED\x9F\xBF", 3, 3, 0xD7FF }, { "\xED\xA0\x80", 3, 0, 0 }, /* surrogates are not characters */
        { "\xEE\x80\x80", 3, 3, 0xE000 }, { "\xEF\xBF\xBF", 3, 3, 0xFFFF }, { "\xE2\x82", 2, 0, 0 },
        { "\xF0\x8F\xBF\xBF", 4, 0, 0 }, { "\xF0\x90\x80\x80", 4, 4, 0x10000 },
        { "\xF4\x8F\xBF\xBF", 4, 4, 0x10FFFF }, { "\xF4\x90\x80\x80", 4, 0, 0 }, /* past U+10FFFF */
        { "\xF5\x80\x80\x80", 4, 0, 0 }, { "\xFF", 1, 0, 0 },           { "\xE2\x96\x81", 3, 3, 0x2581 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned cp = 0xDEAD;
        int len = utf8_decode((const unsigned char *)cases[i].s, cases[i].n, &cp);
        CHECK(len == cases[i].len && (!len || cp == cases[i].cp), "utf8_decode case %zu: length %d U+%04X, want %d U+%04X", i,
              len, cp, cases[i].len, cases[i].cp);
    }
    int bad = 0;
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char buf[4];
        unsigned back;
        int n = utf8_encode(cp, buf), want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        bad += n != want || utf8_decode((const unsigned char *)buf, (size_t)n, &back) != n || back != cp;
    }
    CHECK(bad == 0, "utf8_encode/utf8_decode: %d scalar values do not round-trip", bad);
}

/* Encodes text from a heap buffer of exactly len bytes (no NUL after it, so
 * ASan sees any read past the end) and compares with want. */
static void check_exact_buffer(const Loaded *l, const char *what, const char *text, size_t len, const int *want, int n_want) {
    char *heap = xmalloc(len ? len : 1);
    memcpy(heap, text, len);
    check_encode(l, what, heap, len, 0, want, n_want, 1);
    free(heap);
}

/* ----------------------------------------------------------------------------
 * Split regexes that match the empty string: an empty match is a cut, not a
 * piece (HF tokenizers drop empty pieces). The bug this guards against: with
 * Split regex "$", "ab cd" gained a token for the byte after the text. */

/* A copy of the Llama 3 tokenizer.json with the Split regex replaced, in dir. */
static int write_split_tokenizer(const char *dir, const char *regex) {
    char *data, path[4200];
    size_t len;
    Error e = { 0 };
    if (read_file(shared_path("tokenizers/llama-3/tokenizer.json"), 64 << 20, &data, &len, &e)) {
        CHECK(0, "%s", e.msg);
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    cJSON *pres = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pre_tokenizer"), "pretokenizers");
    cJSON *pattern = cJSON_GetObjectItem(cJSON_GetArrayItem(pres, 0), "pattern");
    if (!cJSON_IsObject(pattern)) {
        cJSON_Delete(j);
        CHECK(0, "llama-3 tokenizer.json: no Split pattern");
        return 0;
    }
    cJSON_ReplaceItemInObject(pattern, "Regex", cJSON_CreateString(regex));
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(out, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    free(out);
    CHECK(ok, "cannot write %s", path);
    return ok;
}

static void check_empty_split_matches(void) {
    static const struct {
        const char *regex, *text;
        const char *pieces[6]; /* what HF's Split (Isolated) makes of the text, empty pieces dropped */
    } cases[] = {
        { "$", "ab cd", { "ab cd" } },            /* one empty match, at the end */
        { "(?=c)", "ab cd", { "ab ", "cd" } },    /* an empty match inside: a cut */
        { "x*", "ab c", { "a", "b", " ", "c" } }, /* empty matches everywhere */
        { "\\b", "ab cd", { "ab", " ", "cd" } },  /* word boundaries */
        { "$|b", "ab", { "a", "b" } },            /* empty and non-empty matches */
    };
    char dir[] = "/tmp/neuromap-split-XXXXXX", cmd[4200];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        Loaded l;
        if (!write_split_tokenizer(dir, cases[c].regex) || !load(&l, dir, NULL)) continue;
        int want[64], n_want = 0;
        for (int p = 0; p < 6 && cases[c].pieces[p]; p++)
            ref_bpe_word(&l.m.vocab, 1, cases[c].pieces[p], strlen(cases[c].pieces[p]), want, &n_want);
        char what[64];
        snprintf(what, sizeof what, "split regex '%s'", cases[c].regex);
        check_exact_buffer(&l, what, cases[c].text, strlen(cases[c].text), want, n_want);
        unload(&l);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* ----------------------------------------------------------------------------
 * Long runs of one character, against independent derivations */

static void check_long_runs(void) {
    enum { RUN = 5000, BPE_RUN = 700 };
    int *want = xmalloc((RUN + 1) * sizeof *want);
    /* tok512 (sentencepiece, scores): the only pieces made of "▁" and "a" are
     * "▁a" and "a" (no "aa", no "▁aa"), so n × 'a' is "▁a" then n-1 × "a". */
    Loaded l;
    if (load(&l, shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"))) {
        const Vocab *v = &l.m.vocab;
        int a = ref_id(v, "a"), spc_a = ref_id(v, "\xE2\x96\x81" "a");
        CHECK(a >= 0 && spc_a >= 0 && ref_id(v, "aa") < 0 && ref_id(v, "\xE2\x96\x81" "aa") < 0,
              "tok512 no longer has the pieces this derivation assumes");
        char *run = xmalloc(RUN);
        memset(run, 'a', RUN);
        want[0] = spc_a;
        for (int i = 1; i < RUN; i++) want[i] = a;
        check_exact_buffer(&l, "tok512 run of 'a'", run, RUN, want, RUN);
        free(run);
        /* The same at the size limit (offsets near 3 × 16 Mi in SPM's
         * normalised copy), and one byte over it: refused, naming the limit. */
        size_t big = TOKENIZER_MAX_TEXT;
        run = xmalloc(big + 1);
        memset(run, 'a', big + 1);
        int *ids = NULL, n = 0, ok = 1;
        Error e = { 0 };
        CHECK(tokenizer_encode(l.t, run, big, 0, &ids, &n, &e) == NM_OK, "%zu bytes: %s", big, e.msg);
        CHECK(n == (int)big, "%zu × 'a' gave %d tokens, want %zu", big, n, big);
        for (int i = 0; i < n && ok; i++) ok = ids[i] == (i ? a : spc_a);
        CHECK(ok, "%zu × 'a': not one \"▁a\" then \"a\"s", big);
        free(ids);
        ids = NULL;
        CHECK(tokenizer_encode(l.t, run, big + 1, 0, &ids, &n, &e) == NM_EINPUT && strstr(e.msg, "16 MiB at most") && !ids,
              "%zu bytes: want a refusal naming the limit, got '%s'", big + 1, e.msg);
        free(run);
        unload(&l);
    }
    /* Llama 3 (byte-level BPE, merges by rank, many "a…a" merges): a run of
     * 'a' is one word of the split regex; the reference BPE above merges it. */
    if (load(&l, shared_path("tokenizers/llama-3"), NULL)) {
        char *run = xmalloc(BPE_RUN);
        memset(run, 'a', BPE_RUN);
        int n_want = 0;
        ref_bpe_word(&l.m.vocab, 1, run, BPE_RUN, want, &n_want);
        CHECK(n_want > 1 && n_want < BPE_RUN / 2, "reference: %d tokens for %d × 'a'", n_want, BPE_RUN);
        check_exact_buffer(&l, "llama-3 run of 'a'", run, BPE_RUN, want, n_want);
        free(run);
        unload(&l);
    }
    free(want);
}

/* ----------------------------------------------------------------------------
 * Chat templates: the rendered text, hand-derived from the Jinja source */

/* The chat_template of a tokenizer_config.json (malloc'd), or NULL. */
static char *template_of(const char *config) {
    char *data;
    size_t len;
    Error e = { 0 };
    if (read_file(config, 1 << 20, &data, &len, &e)) {
        CHECK(0, "%s", e.msg);
        return NULL;
    }
    cJSON *j = cJSON_Parse(data);
    const cJSON *t = cJSON_GetObjectItem(j, "chat_template");
    char *out = cJSON_IsString(t) ? xstrdup(t->valuestring) : NULL;
    CHECK(out != NULL, "%s has no chat_template", config);
    cJSON_Delete(j);
    free(data);
    return out;
}

static void check_render(const Vocab *v, const char *json, const char *date, const char *want) {
    Chat c;
    Error e = { 0 };
    char *got = NULL;
    size_t len;
    int rc = chat_parse_json(&c, json, strlen(json), "test", &e);
    if (!rc) {
        rc = chat_render(v, &c, date, &got, &len, &e);
        chat_free(&c);
    }
    CHECK(rc == 0 && strcmp(got, want) == 0, "render %s\n  got  '%s'\n  want '%s' (%s)", json, got ? got : "", want, e.msg);
    free(got);
}

static void check_render_fails(const Vocab *v, const char *json, const char *pattern) {
    Chat c;
    Error e = { 0 };
    char *got = NULL;
    size_t len;
    int rc = chat_parse_json(&c, json, strlen(json), "test", &e);
    if (!rc) {
        rc = chat_render(v, &c, NULL, &got, &len, &e);
        chat_free(&c);
    }
    CHECK(rc == NM_EINPUT && strstr(e.msg, pattern), "render %s should fail with '%s', got rc %d '%s'", json, pattern, rc, e.msg);
    free(got);
}

#define BOT "<|begin_of_text|>"
#define HDR(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"
#define EOT "<|eot_id|>"
#define PREAMBLE(date) HDR("system") "Cutting Knowledge Date: December 2023\nToday Date: " date "\n\n"

static void check_chat_render(void) {
    char *bos_piece = xstrdup(BOT);
    int bos_len = (int)strlen(BOT);
    Vocab v = { .kind = TOKENIZER_BPE, .n_tokens = 1, .piece = &bos_piece, .piece_len = &bos_len, .bos_id = 0 };
    const char *pirate = "[{\"role\":\"system\",\"content\":\"You are a pirate.\"},{\"role\":\"user\",\"content\":\"  Hello!\\n\"}]";
    const char *turns = "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Ahoy.\"},"
                        "{\"role\":\"user\",\"content\":\"\\u3000Who?\\u00a0\\t\"}]";

    v.chat_template = template_of(shared_path("tokenizers/llama-3/tokenizer_config.json"));
    ChatTemplate kind = CHAT_LLAMA31;
    Error e = { 0 };
    CHECK(chat_template_detect(&v, &kind, &e) == 0 && kind == CHAT_LLAMA3, "llama-3 template recognised (%s)", e.msg);
    /* Llama 3: BOS, then each message as header + content|trim + <|eot_id|>. */
    check_render(&v, pirate, NULL, BOT HDR("system") "You are a pirate." EOT HDR("user") "Hello!" EOT HDR("assistant"));
    check_render(&v, turns, "1 Jan 2025", BOT HDR("user") "Hi" EOT HDR("assistant") "Ahoy." EOT HDR("user") "Who?" EOT HDR("assistant"));
    check_render_fails(&v, "[{\"role\":\"tool\",\"content\":\"42\"}]", "tool use");
    check_render_fails(&v, "[]", "non-empty JSON list");
    /* One byte more and it is a template neuromap does not know. */
    size_t n = strlen(v.chat_template);
    v.chat_template = xrealloc(v.chat_template, n + 2);
    strcpy(v.chat_template + n, "x");
    check_render_fails(&v, "[{\"role\":\"user\",\"content\":\"Hi\"}]", "not one neuromap renders exactly");
    free(v.chat_template);

    v.chat_template = template_of(shared_path("tokenizers/llama-3.1/tokenizer_config.json"));
    CHECK(chat_template_detect(&v, &kind, &e) == 0 && kind == CHAT_LLAMA31, "llama-3.1 template recognised (%s)", e.msg);
    /* Llama 3.1: the system turn always comes, with the date lines; a first
     * system message goes into it. */
    check_render(&v, pirate, NULL, BOT PREAMBLE("26 Jul 2024") "You are a pirate." EOT HDR("user") "Hello!" EOT HDR("assistant"));
    check_render(&v, turns, "1 Jan 2025",
                 BOT PREAMBLE("1 Jan 2025") EOT HDR("user") "Hi" EOT HDR("assistant") "Ahoy." EOT HDR("user") "Who?" EOT HDR("assistant"));
    /* A later system message is an ordinary turn. */
    check_render(&v, "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"system\",\"content\":\" Be brief. \"}]", NULL,
                 BOT PREAMBLE("26 Jul 2024") EOT HDR("user") "Hi" EOT HDR("system") "Be brief." EOT HDR("assistant"));
    check_render_fails(&v, "[{\"role\":\"ipython\",\"content\":\"42\"}]", "tool use");
    check_render_fails(&v, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[]}]", "tool_calls");
    free(v.chat_template);
    v.chat_template = NULL;
    check_render_fails(&v, "[{\"role\":\"user\",\"content\":\"Hi\"}]", "no chat template");
    free(bos_piece);
}

/* Chat prompts → ids, as HF's apply_chat_template(add_generation_prompt=True,
 * tokenize=True) gives them: hand-checked against the vocabulary and merges. */
static void check_prompt_ids(const Loaded *l, const PromptOptions *o, const char *text, const int *want, int n_want) {
    int *ids = NULL, n = 0;
    Error e = { 0 };
    int rc = prompt_encode(l->t, &l->m.vocab, o, text, strlen(text), &ids, &n, NULL, &e);
    char got[4096], exp[4096];
    ids_str(ids, rc ? 0 : n, got, sizeof got);
    ids_str(want, n_want, exp, sizeof exp);
    CHECK(rc == 0 && same_ids(ids, n, want, n_want), "%s: prompt '%s'\n  got %s\n want %s (%s)", l->m.path, text, got, exp, e.msg);
    free(ids);
}

static void check_chat_ids(const Loaded *llama3, const Loaded *llama31) {
    /* Llama 3.1: preamble lines, system text, user turn, generation prompt. */
    static const int pirate31[] = { 128000, 128006, 9125, 128007, 271, 38766, 1303, 33025, 2696, 25, 6790, 220, 2366, 18, 198,
                                    15724, 2696, 25, 220, 1627, 10263, 220, 2366, 19, 271, 2675, 527, 264, 55066, 13, 128009,
                                    128006, 882, 128007, 271, 9906, 0, 128009, 128006, 78191, 128007, 271 };
    PromptOptions o = { .chat = 1, .system = "You are a pirate." };
    check_prompt_ids(llama31, &o, "  Hello!\n", pirate31, (int)(sizeof pirate31 / sizeof *pirate31));
    /* No system message: the system turn still comes, empty after the date. */
    static const int hi31[] = { 128000, 128006, 9125, 128007, 271, 38766, 1303, 33025, 2696, 25, 6790, 220, 2366, 18, 198,
                                15724, 2696, 25, 220, 16, 4448, 220, 2366, 20, 271, 128009, 128006, 882, 128007, 271, 13347,
                                128009, 128006, 78191, 128007, 271 };
    PromptOptions d = { .chat = 1, .date = "1 Jan 2025" };
    check_prompt_ids(llama31, &d, "Hi", hi31, (int)(sizeof hi31 / sizeof *hi31));
    /* Llama 3: no preamble; special-token text in the user's words is parsed
     * too, as apply_chat_template does; --no-bos drops the template's BOS. */
    static const int pirate3[] = { 128006, 9125, 128007, 271, 2675, 527, 264, 55066, 13, 128009, 128006, 882, 128007, 271, 9906,
                                   0, 128009, 128006, 78191, 128007, 271 };
    PromptOptions nb = { .chat = 1, .system = "You are a pirate.", .bos = -1 };
    check_prompt_ids(llama3, &nb, "Hello!", pirate3, (int)(sizeof pirate3 / sizeof *pirate3));
    /* Plain prompts: BOS from the post-processor, specials only when asked. */
    static const int plain[] = { 128000, 9906, 0, 128009 };
    PromptOptions sp = { .special = 1 };
    check_prompt_ids(llama3, &sp, "Hello!<|eot_id|>", plain, 4);
    PromptOptions nsp = { .bos = -1 };
    static const int as_text[] = { 9906, 88032, 91, 68, 354, 851, 91, 29 }; /* "Hello" "!<|" "eot" "_id" "|>" */
    check_prompt_ids(llama3, &nsp, "Hello!<|eot_id|>", as_text, 8);
}

int main(void) {
    run_jsonl("stories260K.bin", shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"));
    run_jsonl("stories260K-hf", shared_path("models/stories260K-hf"), NULL);
    run_jsonl("stories260K.gguf", shared_path("models/stories260K/stories260K.gguf"), NULL);
    /* Each large vocabulary is loaded once. */
    Loaded spm, bpe, llama3, llama31;
    const char *spm_path = shared_path("tokenizers/vectors/ggml-vocab-llama-spm.gguf");
    const char *bpe_path = shared_path("tokenizers/vectors/ggml-vocab-llama-bpe.gguf");
    if (load(&spm, spm_path, NULL)) {
        run_llamacpp_vectors("llama-spm.gguf", &spm, spm_path);
        unload(&spm);
    }
    if (load(&bpe, bpe_path, NULL)) {
        run_llamacpp_vectors("llama-bpe.gguf", &bpe, bpe_path);
        unload(&bpe);
    }
    int have3 = load(&llama3, shared_path("tokenizers/llama-3"), NULL);
    int have31 = load(&llama31, shared_path("tokenizers/llama-3.1"), NULL);
    if (have3) run_llamacpp_vectors("llama-3 tokenizer.json", &llama3, bpe_path);
    if (have31) run_llamacpp_vectors("llama-3.1 tokenizer.json", &llama31, bpe_path);
    if (have3 && have31) check_chat_ids(&llama3, &llama31);
    if (have3) unload(&llama3);
    if (have31) unload(&llama31);
    check_specials_and_decode();
    check_utf8();
    check_byte_alphabet();
    check_empty_split_matches();
    check_long_runs();
    check_chat_render();
    return check_summary("test_tokenizer");
}
