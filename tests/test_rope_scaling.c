/* test_rope_scaling.c — llama3 RoPE scaling reaches the forward pass from
 * both places a checkpoint can keep it: HF's config.json rope_scaling block
 * and GGUF's rope_freqs tensor of per-pair divisors. One synthetic model
 * (same seed) written both ways must give the same logits at long positions,
 * and dropping the GGUF divisors must change them (so the check can fail). */
#include <libgen.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/registry.h"
#include "infer/forward.h"

#define N_TOKENS 96

static float max_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static int last_logits(const Model *m, float *out) {
    Forward *f;
    Error e = { 0 };
    int ids[N_TOKENS];
    for (int i = 0; i < N_TOKENS; i++) ids[i] = (i * 37 + 11) % m->cfg.vocab_size;
    if (forward_new(m, N_TOKENS, 1, &f, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    int rc = forward_run(f, ids, N_TOKENS, 0, 0, out, 0, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    forward_free(f);
    return rc;
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[] = "/tmp/neuromap-rope-XXXXXX", cmd[8192], bin[4096];
    snprintf(bin, sizeof bin, "%s", argv[0]);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *shape = "--preset llama-3.2-1b --hidden 64 --ffn 128 --layers 2 --heads 4 --kv-heads 2 --vocab 512 "
                        "--context 4096 --dtype f32 --seed 5 --std 0.3";
    snprintf(cmd, sizeof cmd, "%s/../neuromap synth %s/hf %s 2>/dev/null && %s/../neuromap synth %s/m.gguf %s 2>/dev/null",
             dirname(bin), dir, shape, bin, dir, shape);
    CHECK(system(cmd) == 0, "synth: %s", cmd);

    char hf_path[4200], gguf_path[4200];
    snprintf(hf_path, sizeof hf_path, "%s/hf", dir);
    snprintf(gguf_path, sizeof gguf_path, "%s/m.gguf", dir);
    Model hf, gg;
    Error e = { 0 };
    ModelOpenOptions o = { .need_weights = 1 };
    int ok = !model_open(&hf, hf_path, &o, &e) && !model_open(&gg, gguf_path, &o, &e);
    CHECK(ok, "open: %s", e.msg);
    if (ok) {
        CHECK(hf.cfg.rope_scaling.present && !hf.rope_freqs, "HF keeps llama3 scaling in its config");
        CHECK(gg.rope_freqs != NULL, "GGUF keeps it as rope_freqs.weight");
        int v = hf.cfg.vocab_size;
        float *a = xmalloc((size_t)v * sizeof *a), *b = xmalloc((size_t)v * sizeof *b);
        CHECK(!last_logits(&hf, a) && !last_logits(&gg, b), "forward");
        float same = max_diff(a, b, v);
        CHECK(same < 1e-3f, "HF and GGUF logits differ by %g at position %d", same, N_TOKENS - 1);
        gg.rope_freqs = NULL; /* what the forward pass computed before it read the divisors */
        CHECK(!last_logits(&gg, b), "forward without divisors");
        float unscaled = max_diff(a, b, v);
        CHECK(unscaled > 100 * same && unscaled > 1e-2f, "ignoring rope_freqs changes the logits by only %g (HF vs GGUF: %g)", unscaled, same);
        printf("HF vs GGUF max logit difference %g; without the divisors %g\n", same, unscaled);
        free(a);
        free(b);
        model_close(&hf);
        model_close(&gg);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_summary("test_rope_scaling");
}
