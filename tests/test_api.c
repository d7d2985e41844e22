/* test_api.c — the entry points of language bindings (report/api.h) under
 * the sanitizers: every call on stories260K, every string and array freed
 * (LeakSanitizer in the asan build), and every bad argument answered with
 * an error, not a write past an array. The Python tests (python/tests)
 * check the values against the CLI; this checks the C side's own promises. */
#include <string.h>

#include "check.h"
#include "report/api.h"

static ApiModel *open_bin(void) {
    ApiModel *h;
    Error e = { 0 };
    int rc = api_model_open(&h, shared_path("models/stories260K/stories260K.bin"),
                            shared_path("models/stories260K/tok512.bin"), &e);
    CHECK(rc == 0, "open: %s", e.msg);
    return rc ? NULL : h;
}

/* rc must be NM_EINPUT with a message containing want. */
static void expect_input_error(int rc, const Error *e, const char *want, int line) {
    CHECK(rc == NM_EINPUT && e->code == NM_EINPUT && strstr(e->msg, want), "line %d: rc %d, '%s' (want '%s')", line, rc,
          e->msg, want);
}
#define EXPECT(call, want)                                                                                             \
    do {                                                                                                               \
        Error ee_ = { 0 };                                                                                             \
        Error *ee = &ee_;                                                                                              \
        expect_input_error(call, ee, want, __LINE__);                                                                  \
    } while (0)

static void test_documents(ApiModel *h) {
    Error e = { 0 };
    int32_t shape[5];
    api_model_shape(h, shape);
    CHECK(shape[0] == 1 && shape[1] == 5 && shape[2] == 172 && shape[3] == 512 && shape[4] == 64, "shape");
    char *s = api_info_json(h);
    CHECK(s && strstr(s, "\"intermediate_size\":172"), "info: %s", s ? s : "(null)");
    api_free(s);
    CHECK(api_show_json(h, "up", 4, 38, 2, 1, "full", 1, &s, &e) == 0 && strstr(s, "\" Lily\""), "show: %s", e.msg);
    api_free(s);
    CHECK(api_find_json(h, " named", "all", 3, "full", 1, 0, &s, &e) == 0 && strstr(s, "\"partner\""), "find: %s", e.msg);
    api_free(s);
    EXPECT(api_show_json(h, "side", 0, 0, 1, 1, "full", 0, &s, ee), "matrix must be");
    EXPECT(api_show_json(h, "up", 0, 0, 1, 1, "half", 0, &s, ee), "norm must be");
    EXPECT(api_show_json(h, "up", 5, 0, 1, 1, "full", 0, &s, ee), "outside the model");
    EXPECT(api_show_json(h, "up", 0, -1, 1, 1, "full", 0, &s, ee), "outside the model");
    EXPECT(api_show_json(h, "up", 0, 0, 513, 1, "full", 0, &s, ee), "top_k and bottom_k");
    EXPECT(api_find_json(h, " Lilyx", "up", 3, "full", 0, 0, &s, ee), "is 2 tokens");
    EXPECT(api_find_json(h, "", "up", 3, "full", 0, 0, &s, ee), "empty");
    EXPECT(api_find_json(h, " named", "left", 3, "full", 0, 0, &s, ee), "matrix must be");
}

static void test_arrays(ApiModel *h) {
    Error e = { 0 };
    float logits[512 + 1];
    logits[512] = 12345;
    CHECK(api_logits(h, "down", 2, 3, "gain", logits, 512, &e) == 0 && logits[512] == 12345, "logits: %s", e.msg);
    EXPECT(api_logits(h, "up", 0, 0, "full", logits, 511, ee), "room for 512");
    enum { N = 172, K = 3 };
    int32_t *ids = calloc(N * K, sizeof *ids);
    float *lg = calloc(N * K, sizeof *lg), *pr = calloc(N * K, sizeof *pr);
    double *lse = calloc(N, sizeof *lse);
    CHECK(api_map(h, "up", 4, 4, K, 0, "full", 1, ids, lg, pr, NULL, NULL, NULL, lse, NULL, N, &e) == 0 && ids[38 * K] == 317,
          "map: %s, %d", e.msg, ids[38 * K]);
    EXPECT(api_map(h, "up", 3, 4, K, 0, "full", 1, ids, lg, pr, NULL, NULL, NULL, lse, NULL, N, ee), "hold 172 neurons");
    EXPECT(api_map(h, "up", 4, 5, K, 0, "full", 1, ids, lg, pr, NULL, NULL, NULL, lse, NULL, N, ee), "outside the model");
    free(ids), free(lg), free(pr), free(lse);

    int32_t prompt[3] = { 1, 403, 407 };
    float *act = malloc(3 * 5 * 172 * sizeof *act), *next = malloc(3 * 512 * sizeof *next);
    CHECK(api_activations(h, prompt, 3, 1, act, 3 * 5 * 172, &e) == 0, "activations: %s", e.msg);
    EXPECT(api_activations(h, prompt, 3, 1, act, 3 * 5 * 172 - 1, ee), "need room");
    const char *clamp[] = { "1:0=8" }, *bad[] = { "9:0=1" };
    CHECK(api_forward_logits(h, prompt, 3, clamp, 1, NULL, 0, "act", "generated", 1, next, 3 * 512, &e) == 0, "forward: %s", e.msg);
    EXPECT(api_forward_logits(h, prompt, 3, bad, 1, NULL, 0, NULL, NULL, 1, next, 3 * 512, ee), "9");
    EXPECT(api_forward_logits(h, prompt, 3, NULL, 0, NULL, 0, NULL, NULL, 1, next, 3 * 512 - 1, ee), "need room");
    prompt[2] = 512;
    EXPECT(api_activations(h, prompt, 3, 1, act, 3 * 5 * 172, ee), "not a token id");
    free(act), free(next);

    char *doc;
    CHECK(api_generate_json(h, "Once upon a time", 0, NULL, 8, 0, 0.9, 0, clamp, 1, NULL, 0, "up", NULL, 1, &doc, &e) == 0 &&
              strstr(doc, "\"clamped\""), "generate: %s", e.msg);
    api_free(doc);
    EXPECT(api_generate_json(h, "Hi", 0, NULL, 8, 0, 0.9, 0, bad, 1, NULL, 0, NULL, NULL, 1, &doc, ee), "9");
    EXPECT(api_generate_json(h, "Hi", 1, NULL, 8, 0, 0.9, 0, NULL, 0, NULL, 0, NULL, NULL, 1, &doc, ee), "chat template");
}

static void test_text(ApiModel *h) {
    Error e = { 0 };
    int32_t *ids;
    int n;
    CHECK(api_tokenize(h, "Once upon a time", 16, 0, 0, &ids, &n, &e) == 0 && n == 5 && ids[0] == 1 && ids[4] == 378,
          "tokenize: %s", e.msg);
    char *text;
    size_t len;
    CHECK(api_detokenize(h, ids, n, 0, &text, &len, &e) == 0 && len == 16 && memcmp(text, "Once upon a time", 16) == 0,
          "detokenize: %s", e.msg);
    api_free(text);
    CHECK(api_token_names_json(h, ids, n, &text, &e) == 0 && strcmp(text, "[\"<s>\",\" Once\",\" upon\",\" a\",\" time\"]") == 0,
          "token names: %s", text ? text : e.msg);
    api_free(text);
    api_free(ids);
    int32_t bad[2] = { 1, -5 };
    EXPECT(api_detokenize(h, bad, 2, 0, &text, &len, ee), "'-5' is not a token id");
    EXPECT(api_token_names_json(h, bad, 2, &text, ee), "'-5' is not a token id");
}

static void test_atlas(void) {
    Error e = { 0 };
    Atlas *a;
    /* No atlas is shared: an error, freed. */
    CHECK(atlas_open(&a, shared_path("models/stories260K/stories260K.gguf"), &e) != 0, "atlas_open on a model");
}

int main(void) {
    ApiModel *h = open_bin();
    if (h) {
        test_documents(h);
        test_arrays(h);
        test_text(h);
        api_model_close(h);
    }
    Error e = { 0 };
    ApiModel *none;
    CHECK(api_model_open(&none, "/nonexistent.gguf", NULL, &e) == NM_EINPUT && !none, "open a missing file: %s", e.msg);
    test_atlas();
    return check_summary("test_api");
}
