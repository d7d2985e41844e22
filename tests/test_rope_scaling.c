/* test_rope_scaling.c — llama3 RoPE scaling reaches the forward pass from
 * both places a checkpoint can keep it: HF's config.json rope_scaling block
 * and GGUF's rope_freqs tensor of per-pair divisors. One synthetic model
 * (same seed) written both ways must give the same logits at long positions,
 * and dropping the GGUF divisors must change them (so the check can fail).
 * The frequencies themselves, from either form, are checked against Meta's
 * definition written out again here in double precision. */
#include <libgen.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/registry.h"
#include "infer/forward.h"
#include "model/rope.h"

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

/* Meta's llama3 scaling (llama-models, apply_scaling() in
 * models/llama3/reference_impl/model.py), in double: freqs = 1 / θ^(2i/d);
 * wavelen = 2π / freq; below L/high_freq_factor a frequency is kept, above
 * L/low_freq_factor divided by factor, and between the two
 * smooth = (L / wavelen − low) / (high − low),
 * freq' = (1 − smooth) · freq / factor + smooth · freq. */
static double meta_llama3_freq(double theta, int dim, int i, double factor, double low, double high, double old_len) {
    double freq = 1.0 / pow(theta, (double)(2 * i) / dim);
    double wavelen = 2 * M_PI / freq, low_wavelen = old_len / low, high_wavelen = old_len / high;
    if (wavelen < high_wavelen) return freq;
    if (wavelen > low_wavelen) return freq / factor;
    double smooth = (old_len / wavelen - low) / (high - low);
    return (1 - smooth) * freq / factor + smooth * freq;
}

/* The frequencies model/rope.c gives for hf (config keys) and gg (GGUF's
 * divisors), each against the reference: within a float's rounding (the
 * divisors add one more). All three regimes must occur, or the test is weak. */
static void check_frequencies(const Model *hf, const Model *gg) {
    const Config *c = &hf->cfg;
    const RopeScaling *s = &c->rope_scaling;
    int half = c->head_dim / 2, kept = 0, divided = 0, blended = 0;
    float a[256], b[256];
    CHECK(half <= 256, "head_dim %d", c->head_dim);
    rope_frequencies(c, NULL, a);
    rope_frequencies(&gg->cfg, gg->rope_freqs ? (const float *)gg->rope_freqs->data : NULL, b);
    for (int i = 0; i < half; i++) {
        double want = meta_llama3_freq(c->rope_theta, c->head_dim, i, s->factor, s->low_freq_factor, s->high_freq_factor,
                                       s->original_max_position);
        double base = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->head_dim);
        kept += want == base, divided += fabs(want * s->factor / base - 1) < 1e-12;
        blended += want != base && fabs(want * s->factor / base - 1) >= 1e-12;
        CHECK(fabs(a[i] - want) <= 1.5e-7 * want, "HF pair %d: frequency %.9g, Meta's formula %.9g", i, a[i], want);
        CHECK(fabs(b[i] - want) <= 3e-7 * want, "GGUF pair %d: frequency %.9g, Meta's formula %.9g", i, b[i], want);
        /* The rotation at the last position of the context both were written for. */
        double pos = c->max_seq_len - 1, d = fabs(remainder(pos * a[i] - pos * want, 2 * M_PI));
        CHECK(d < 1e-3, "HF pair %d: angle at position %.0f off by %g rad", i, pos, d);
    }
    CHECK(kept && divided && blended, "the shape tests only some regimes: %d kept, %d divided, %d blended", kept, divided, blended);
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
        check_frequencies(&hf, &gg);
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
