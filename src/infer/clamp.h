/* clamp.h — neuron hooks on the MLP: what `--clamp`, `--scale` and `--sweep`
 * ask for, parsed and checked against the model before anything runs.
 *
 * A Llama MLP computes down(silu(gate·x) ⊙ up·x). Neuron N of a layer is
 * component N of the two FFN-wide vectors in the middle, and a hook fixes
 * (clamp) or multiplies (scale) that component at one of two sites:
 *   up   the up-projection output up·x — the neuron as the map decodes it —
 *        before it is multiplied by the gate activation. The gate still
 *        scales it: where silu(gate·x) is near 0 a clamp here changes little
 *        (on stories260K it does not steer);
 *   act  the gated activation silu(gate·x) ⊙ up·x that enters down_proj —
 *        exactly the coefficient of down column N in the layer's output:
 *        what "clamping a neuron" means in the paper and in TransformerLens
 *        (hook_post). The commands' default (HOOK_OPTIONS_DEFAULT); a zeroed
 *        HookSet, as the library's callers make, is SITE_UP.
 */
#ifndef NEUROMAP_CLAMP_H
#define NEUROMAP_CLAMP_H

#include "base/util.h"

typedef enum { HOOK_CLAMP, HOOK_SCALE } HookKind;
typedef enum { SITE_UP, SITE_ACT } HookSite;

typedef struct {
    int layer, neuron;
    HookKind kind;
    float value; /* the clamp value, or the scale factor */
} NeuronHook;

typedef struct {
    NeuronHook *hook;
    int n, cap;
    HookSite site;      /* where every hook of the set acts */
    int generated_only; /* --clamp-positions generated */
} HookSet;

/* Sanity limits on what one argument may ask for. */
enum { HOOK_MAX = 1 << 16, SWEEP_MAX_VALUES = 4096 };

/* Parses one "L:N=V" or "L:N1,N2,...=V" and appends a hook per neuron.
 * Checks the layer against n_layers, each neuron against ffn_dim and the value
 * for being a finite number. A pure function of its arguments (fuzzed). */
int hookset_parse(HookSet *s, const char *spec, HookKind kind, int n_layers, int ffn_dim, Error *e);
void hookset_add(HookSet *s, NeuronHook h);
void hookset_free(HookSet *s);
/* "up" / "act" and "all" / "generated"; return 0 when the word is unknown. */
int hook_site_from_name(const char *s, HookSite *out);
const char *hook_site_name(HookSite s);
/* "L:N=V" or "L:N=S" in the user's spelling, for labels. */
void hook_describe(const NeuronHook *h, char *out, size_t cap);

/* --sweep L:N=V1,V2,...: one neuron, the clamp values to try in order. */
typedef struct {
    int layer, neuron;
    int n_values;
    float *values;
} Sweep;

int sweep_parse(Sweep *sw, const char *spec, int n_layers, int ffn_dim, Error *e);
void sweep_free(Sweep *sw);

/* ----------------------------------------------------------------------------
 * The hook options generate and probe share: a command adds
 * HOOK_LONG_OPTIONS to its getopt_long table, hands option codes to
 * hook_option(), and after opening the model calls hook_options_resolve(). */

typedef struct {
    const char **clamp, **scale; /* the specs as given, checked once the model is known */
    int n_clamp, n_scale;
    HookSite site;
    int site_given;     /* --clamp-site was given (a command notes up, and a site without hooks) */
    int generated_only;
} HookOptions;
/* What generate and probe start from: --clamp-site act. */
#define HOOK_OPTIONS_DEFAULT ((HookOptions){ .site = SITE_ACT })

enum { HOOK_OPT_CLAMP = 0x400, HOOK_OPT_SCALE, HOOK_OPT_SITE, HOOK_OPT_POSITIONS };

#define HOOK_LONG_OPTIONS                                                                                       \
    { "clamp", required_argument, 0, HOOK_OPT_CLAMP }, { "scale", required_argument, 0, HOOK_OPT_SCALE },       \
        { "clamp-site", required_argument, 0, HOOK_OPT_SITE }, { "clamp-positions", required_argument, 0, HOOK_OPT_POSITIONS }

extern const char hook_usage[];

/* Applies option code c; returns 1 if it was a hook option, 0 if not, and
 * -1 (with e set) for a bad --clamp-site / --clamp-positions word. */
int hook_option(HookOptions *o, int c, const char *arg, Error *e);
/* Parses every --clamp and --scale against the model's shape into s;
 * NM_EINPUT when one neuron is hooked twice (clamped twice, or clamped and
 * scaled): which hook would win is not obvious, so neither does. */
int hook_options_resolve(const HookOptions *o, int n_layers, int ffn_dim, HookSet *s, Error *e);
void hook_options_free(HookOptions *o);

#endif
