/* hello.c — neuromap as a library: the tokens neuron 0:57 (layer 0, up row
 * 57) promotes, then a short greedy story with that neuron clamped to 10.
 *   build/opt/examples/hello [MODEL.bin TOKENIZER.bin]   (default: stories260K)
 * Compiled with -Iinclude, linked with libneuromap.a and its system libraries. */
#include <stdio.h>
#include <stdlib.h>

#include "neuromap.h"

static void ok(int rc, const Error *e) {
    if (rc) fprintf(stderr, "hello: %s\n", e->msg), exit(rc);
}

int main(int argc, char **argv) {
    const char *shared = getenv("NEUROMAP_SHARED") ? getenv("NEUROMAP_SHARED") : "../shared";
    char bin[4096], tok[4096];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", shared);
    Model m;
    Error e = { 0 };
    ModelOpenOptions opt = { .tokenizer_path = argc == 3 ? argv[2] : tok, .need_weights = 1 };
    ok(model_open(&m, argc == 3 ? argv[1] : bin, &opt, &e), &e);

    /* The map: the neuron's vector through the final RMSNorm and the LM head. */
    Lens lens;
    LensBatch top;
    float *vec = malloc((size_t)m.cfg.dim * sizeof *vec);
    ok(lens_open(&lens, &m, NORM_FULL, 1, 0, &e), &e);
    lens_batch_init(&top, 1, 5, 0);
    lens_neuron_vectors(&lens, MATRIX_UP, 0, 57, 1, vec);
    lens_decode(&lens, vec, 1, 5, 0, top.r);
    for (int i = 0; i < 5; i++) {
        int id = top.r[0].top[i].id;
        printf("up 0:57 top %d: %d '%.*s'\n", i + 1, id, m.vocab.text_len[id], m.vocab.text[id]);
    }

    /* Greedy generation from BOS, with the neuron fixed at 10 at every position. */
    HookSet hooks = { .site = SITE_UP };
    hookset_add(&hooks, (NeuronHook){ .layer = 0, .neuron = 57, .kind = HOOK_CLAMP, .value = 10 });
    Tokenizer *tk;
    Forward *fw;
    ok(tokenizer_new(&m.vocab, &tk, &e), &e);
    ok(forward_new(&m, 64, 1, &fw, &e), &e);
    ok(forward_set_hooks(fw, &hooks, &e), &e);
    float *logits = malloc((size_t)m.cfg.vocab_size * sizeof *logits);
    int id = m.vocab.bos_id, next, len;
    for (int pos = 0; pos < 48; pos++, id = next) {
        ok(forward_run(fw, &id, 1, pos, 0, logits, 0, &e), &e);
        next = argmax(logits, m.cfg.vocab_size);
        if (is_stop_token(&m.vocab, next)) break;
        const char *piece = tokenizer_piece_text(tk, id, next, &len);
        printf("%.*s", len, piece);
    }
    printf("\n");

    free(logits), free(vec);
    forward_free(fw), tokenizer_free(tk), hookset_free(&hooks);
    lens_batch_free(&top), lens_close(&lens), model_close(&m);
    return 0;
}
