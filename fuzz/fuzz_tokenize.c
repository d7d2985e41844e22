/* fuzz_tokenize.c — text → token ids → text with the real vocabularies
 * (src/text/tokenizer.c): prompts are untrusted input too.
 *
 * LLVMFuzzerInitialize opens each vocabulary below that loads (from
 * $NEUROMAP_SHARED, default ../shared); the loaders that have not landed are
 * skipped. Input: one flags byte (bit 0: add BOS, bit 1: recognise special
 * tokens, bits 2-7: which tokenizer), then the text. Every id must lie in the
 * vocabulary, and without special-token parsing decoding must give back the
 * exact bytes (both tokenizers are lossless: byte fallback / byte-level),
 * except for SPM text holding "▁" itself, which decodes to a space.
 *
 * The text is copied to a heap buffer of exactly its length, with no NUL
 * after it, so that ASan reports any read past its end. Besides the real
 * vocabularies, the first byte-level one is also tried with hostile split
 * regexes: patterns that match the empty string (at the end, everywhere, at
 * word boundaries), lookarounds, \K. Any split must stay lossless. */
#include "fuzz.h"
#include "text/tokenizer.h"

static const struct { const char *path, *tokenizer; } sources[] = {
    { "models/stories260K/stories260K.bin", "models/stories260K/tok512.bin" }, /* SPM, llama2.c */
    { "tokenizers/vectors/ggml-vocab-llama-spm.gguf", NULL },                   /* SPM, GGUF */
    { "tokenizers/vectors/ggml-vocab-llama-bpe.gguf", NULL },                   /* Llama 3 BPE, GGUF */
    { "tokenizers/llama-3", NULL },                                             /* Llama 3 BPE, tokenizer.json */
};
#define N_SOURCES (int)(sizeof sources / sizeof sources[0])

static const char *const hostile_regexes[] = {
    "$", "^", "", "x*", "\\b", "\\B", "(?=.)", "(?<=a)", "(?m)$", "\\z", "\\Z", ".*?", "a\\K", "\\K.", "(?:)|\\s+",
    "[^\\s]*", "\\X", "(?=\\p{L})|\\p{N}+", "\\s*",
};
#define N_HOSTILE (int)(sizeof hostile_regexes / sizeof hostile_regexes[0])

static Model models[N_SOURCES];
static Vocab hostile_vocabs[N_HOSTILE]; /* shallow copies of a byte-level vocabulary, another pre_regex */
static Tokenizer *toks[N_SOURCES + N_HOSTILE];
static const Vocab *tok_vocab[N_SOURCES + N_HOSTILE];
static int n_toks;

static void close_all(void) {
    for (int i = 0; i < n_toks; i++) tokenizer_free(toks[i]);
    n_toks = 0;
    for (int i = 0; i < N_SOURCES; i++) model_close(&models[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *shared = getenv("NEUROMAP_SHARED");
    shared = shared && *shared ? shared : "../shared";
    for (int i = 0; i < N_SOURCES; i++) {
        char path[4096], tok[4096];
        snprintf(path, sizeof path, "%s/%s", shared, sources[i].path);
        snprintf(tok, sizeof tok, "%s/%s", shared, sources[i].tokenizer ? sources[i].tokenizer : "");
        ModelOpenOptions o = { .tokenizer_path = sources[i].tokenizer ? tok : NULL };
        Error e = { 0 };
        if (model_open(&models[n_toks], path, &o, &e) || tokenizer_new(&models[n_toks].vocab, &toks[n_toks], &e)) {
            fprintf(stderr, "fuzz_tokenize: skipping %s: %s\n", path, e.msg);
            model_close(&models[n_toks]);
            continue;
        }
        tok_vocab[n_toks] = &models[n_toks].vocab;
        n_toks++;
    }
    int n_models = n_toks;
    for (int i = 0; i < n_models; i++) {
        if (models[i].vocab.kind != TOKENIZER_BPE) continue;
        for (int h = 0; h < N_HOSTILE; h++) {
            Error e = { 0 };
            hostile_vocabs[h] = models[i].vocab;
            hostile_vocabs[h].pre_regex = (char *)hostile_regexes[h];
            if (tokenizer_new(&hostile_vocabs[h], &toks[n_toks], &e)) {
                fprintf(stderr, "fuzz_tokenize: hostile regex '%s' refused: %s\n", hostile_regexes[h], e.msg);
                continue;
            }
            tok_vocab[n_toks++] = &hostile_vocabs[h];
        }
        break;
    }
    if (!n_toks) {
        fprintf(stderr, "fuzz_tokenize: no vocabulary could be opened under %s\n", shared);
        abort();
    }
    atexit(close_all);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int flags = data[0] & (TOK_ADD_BOS | TOK_SPECIAL), which = (data[0] >> 2) % n_toks;
    const Tokenizer *t = toks[which];
    const Vocab *v = tok_vocab[which];
    size_t len = size - 1;
    char *text = malloc(len ? len : 1); /* exactly the text: no NUL after it */
    FUZZ_ASSERT(text != NULL, "out of memory");
    memcpy(text, data + 1, len);
    if ((flags & TOK_ADD_BOS) && v->bos_id < 0) flags &= ~TOK_ADD_BOS;

    int *ids = NULL, n = 0;
    Error e = { 0 };
    int rc = tokenizer_encode(t, text, len, flags, &ids, &n, &e);
    FUZZ_ASSERT(rc == NM_OK, "encoding %zu bytes failed: %s", len, e.msg);
    for (int i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < tokenizer_n_tokens(t), "id %d", ids[i]);
    size_t out_len;
    char *out = tokenizer_decode(t, ids, n, &out_len);
    /* SPM text may not hold "▁" itself: sentencepiece decodes every ▁ to a space. */
    int spm_lossy = v->kind == TOKENIZER_SPM && memmem(text, len, "\xE2\x96\x81", 3);
    if (!(flags & TOK_SPECIAL) && !spm_lossy)
        FUZZ_ASSERT(out_len == len && memcmp(out, text, len) == 0, "vocabulary %d: %zu bytes decode to %zu different bytes",
                    which, len, out_len);
    free(out);
    for (int i = 0, prev = -1; i < n; prev = ids[i++]) {
        int piece_len;
        tokenizer_piece_text(t, prev, ids[i], &piece_len);
    }
    free(ids);
    free(text);
    return 0;
}
