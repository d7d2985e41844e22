/* fuzz_tokenize.c — text → token ids → text with the real vocabularies
 * (src/text/tokenizer.c): prompts are untrusted input too.
 *
 * LLVMFuzzerInitialize opens each vocabulary below that loads (from
 * $NEUROMAP_SHARED, default ../shared); the loaders that have not landed are
 * skipped. Input: one flags byte (bit 0: add BOS, bit 1: recognise special
 * tokens, bits 2-7: which vocabulary), then the text. Every id must lie in the
 * vocabulary, and without special-token parsing decoding must give back the
 * exact bytes (both tokenizers are lossless: byte fallback / byte-level),
 * except for SPM text holding "▁" itself, which decodes to a space. */
#include "fuzz.h"
#include "text/tokenizer.h"

static const struct { const char *path, *tokenizer; } sources[] = {
    { "models/stories260K/stories260K.bin", "models/stories260K/tok512.bin" }, /* SPM, llama2.c */
    { "tokenizers/vectors/ggml-vocab-llama-spm.gguf", NULL },                   /* SPM, GGUF */
    { "tokenizers/vectors/ggml-vocab-llama-bpe.gguf", NULL },                   /* Llama 3 BPE, GGUF */
    { "tokenizers/llama-3", NULL },                                             /* Llama 3 BPE, tokenizer.json */
};
#define N_SOURCES (int)(sizeof sources / sizeof sources[0])

static Model models[N_SOURCES];
static Tokenizer *toks[N_SOURCES];
static int n_toks;

static void close_all(void) {
    for (int i = 0; i < n_toks; i++) tokenizer_free(toks[i]);
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
        n_toks++;
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
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if ((flags & TOK_ADD_BOS) && models[which].vocab.bos_id < 0) flags &= ~TOK_ADD_BOS;

    int *ids = NULL, n = 0;
    Error e = { 0 };
    int rc = tokenizer_encode(t, text, len, flags, &ids, &n, &e);
    FUZZ_ASSERT(rc == NM_OK, "encoding %zu bytes failed: %s", len, e.msg);
    for (int i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < tokenizer_n_tokens(t), "id %d", ids[i]);
    size_t out_len;
    char *out = tokenizer_decode(t, ids, n, &out_len);
    /* SPM text may not hold "▁" itself: sentencepiece decodes every ▁ to a space. */
    int spm_lossy = models[which].vocab.kind == TOKENIZER_SPM && memmem(text, len, "\xE2\x96\x81", 3);
    if (!(flags & TOK_SPECIAL) && !spm_lossy)
        FUZZ_ASSERT(out_len == len && memcmp(out, text, len) == 0, "vocabulary %d: %zu bytes decode to %zu different bytes",
                    which, len, out_len);
    free(out);
    for (int i = 0, prev = -1; i < n; prev = ids[i++]) {
        int piece_len;
        tokenizer_piece_text(t, prev, ids[i], &piece_len);
    }
    free(ids);
    return 0;
}
