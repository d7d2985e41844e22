/* fuzz_chat.c — a `--messages FILE` conversation (src/text/chat.c): a JSON list
 * of {"role", "content"}, then rendered with the Llama 3 and 3.1 chat
 * templates when their tokenizers load (from $NEUROMAP_SHARED/tokenizers).
 *
 * Input: the JSON file. A parse must succeed with every message holding a
 * role and content, or fail with a message naming the file. */
#include "text/chat.h"
#include "fuzz.h"

static const char *const sources[] = { "tokenizers/llama-3", "tokenizers/llama-3.1" };
#define N_SOURCES (int)(sizeof sources / sizeof sources[0])
static Model models[N_SOURCES];
static int n_models;

static void close_all(void) {
    for (int i = 0; i < n_models; i++) model_close(&models[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *shared = getenv("NEUROMAP_SHARED");
    shared = shared && *shared ? shared : "../shared";
    for (int i = 0; i < N_SOURCES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared, sources[i]);
        Error e = { 0 };
        ChatTemplate t;
        if (model_open(&models[n_models], path, NULL, &e) || chat_template_detect(&models[n_models].vocab, &t, &e)) {
            fprintf(stderr, "fuzz_chat: not rendering with %s: %s\n", path, e.msg);
            model_close(&models[n_models]);
            continue;
        }
        n_models++;
    }
    atexit(close_all);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Chat c = { 0 };
    Error e = { 0 };
    if (chat_parse_json(&c, (const char *)data, size, "chat.json", &e)) {
        FUZZ_ASSERT(e.code == NM_EINPUT && strstr(e.msg, "chat.json"), "refused without naming the file: %s", e.msg);
        chat_free(&c);
        return 0;
    }
    for (int i = 0; i < c.n; i++) FUZZ_ASSERT(c.msg[i].role && c.msg[i].content, "message %d is incomplete", i);
    for (int i = 0; i < n_models; i++) {
        char *out = NULL;
        size_t len = 0;
        if (chat_render(&models[i].vocab, &c, NULL, &out, &len, &e) == NM_OK) FUZZ_ASSERT(out && strlen(out) <= len, "render");
        else FUZZ_ASSERT(e.msg[0], "render failed without a message");
        free(out);
    }
    chat_free(&c);
    return 0;
}
