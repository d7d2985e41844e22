/* fuzz_clamp.c — the `--clamp`, `--scale` and `--sweep` specifications
 * (src/infer/clamp.c): "L:N=V", "L:N1,N2,...=V", "L:N=V1,V2,...".
 *
 * Input: one argument string (cut at the first NUL). It is parsed as each of
 * the three against a model of 5 layers × 172 neurons (stories260K's shape),
 * twice into one hook set so that sets grow across arguments. What parses
 * must lie inside the model with finite values; what does not must say why. */
#include <math.h>

#include "infer/clamp.h"
#include "fuzz.h"

enum { LAYERS = 5, FFN = 172 };

static void check_failure(int rc, const Error *e, const char *s) {
    FUZZ_ASSERT(rc == NM_EINPUT && e->code == NM_EINPUT && e->msg[0], "'%s' failed with %d and no message", s, rc);
}

static void check_hooks(const HookSet *set, HookKind kind) {
    for (int i = 0; i < set->n; i++) {
        const NeuronHook *h = &set->hook[i];
        FUZZ_ASSERT(h->layer >= 0 && h->layer < LAYERS && h->neuron >= 0 && h->neuron < FFN, "hook %d:%d", h->layer, h->neuron);
        FUZZ_ASSERT(h->kind == kind && isfinite(h->value), "hook value %g", h->value);
        char label[96];
        hook_describe(h, label, sizeof label);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = xstrndup((const char *)data, size);
    Error e = { 0 };

    for (HookKind kind = HOOK_CLAMP; kind <= HOOK_SCALE; kind++) {
        HookSet set = { 0 };
        for (int round = 0; round < 2; round++) {
            int before = set.n, rc = hookset_parse(&set, s, kind, LAYERS, FFN, &e);
            if (rc) {
                check_failure(rc, &e, s);
                FUZZ_ASSERT(set.n == before, "a refused '%s' still added hooks", s);
            } else {
                FUZZ_ASSERT(set.n > before, "'%s' parsed to no hooks", s);
            }
        }
        check_hooks(&set, kind);
        hookset_free(&set);
    }

    Sweep sw;
    int rc = sweep_parse(&sw, s, LAYERS, FFN, &e);
    if (rc) {
        check_failure(rc, &e, s);
    } else {
        FUZZ_ASSERT(sw.layer >= 0 && sw.layer < LAYERS && sw.neuron >= 0 && sw.neuron < FFN, "sweep %d:%d", sw.layer, sw.neuron);
        FUZZ_ASSERT(sw.n_values >= 1 && sw.n_values <= SWEEP_MAX_VALUES, "sweep of %d values", sw.n_values);
        for (int i = 0; i < sw.n_values; i++) FUZZ_ASSERT(isfinite(sw.values[i]), "sweep value %g", sw.values[i]);
        sweep_free(&sw);
    }

    HookSite site;
    if (hook_site_from_name(s, &site)) FUZZ_ASSERT(strcmp(hook_site_name(site), s) == 0, "site '%s'", s);
    free(s);
    return 0;
}
