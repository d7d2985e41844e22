/* clamp.c — parsing `--clamp`, `--scale` and `--sweep` specifications.
 *
 * Every spec is "LAYER:NEURONS=VALUES": the part before '=' names neurons of
 * one layer, the part after gives numbers. Each piece is copied into a small
 * NUL-terminated field and parsed strictly (parse_long / parse_float), so a
 * spec is either understood completely or refused with its own text quoted.
 */
#include "infer/clamp.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Fields */

/* Copies s[0..n) into field (cap bytes); 0 when it does not fit or is empty. */
static int take_field(const char *s, size_t n, char *field, size_t cap) {
    if (n == 0 || n >= cap) return 0;
    memcpy(field, s, n);
    field[n] = 0;
    return 1;
}

/* Calls each(item, ctx) for every comma-separated item of s[0..n); stops at
 * the first failure (an empty item, or each returning nonzero). */
static int for_each_item(const char *s, size_t n, int (*each)(const char *item, void *ctx), void *ctx) {
    const char *end = s + n;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        char item[64];
        if (!take_field(p, (size_t)(stop - p), item, sizeof item) || each(item, ctx)) return 1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* The layer and where the list of neurons and of values start: "L:" ... "=" ... */
typedef struct {
    long layer;
    const char *neurons, *values;
    size_t neurons_len, values_len;
} SpecParts;

static int split_spec(const char *spec, int n_layers, SpecParts *p, Error *e, const char *what) {
    const char *colon = spec ? strchr(spec, ':') : NULL, *eq = spec ? strchr(spec, '=') : NULL;
    char field[32];
    if (!colon || !eq || eq < colon)
        return error_set(e, NM_EINPUT, "%s '%s': expected LAYER:NEURON=VALUE, e.g. 2:117=10", what, spec ? spec : "");
    if (!take_field(spec, (size_t)(colon - spec), field, sizeof field) || !parse_long(field, &p->layer))
        return error_set(e, NM_EINPUT, "%s '%s': the layer is not a number", what, spec);
    if (p->layer < 0 || p->layer >= n_layers)
        return error_set(e, NM_EINPUT, "%s '%s': layer %ld is outside the model's layers 0-%d", what, spec, p->layer,
                         n_layers - 1);
    p->neurons = colon + 1;
    p->neurons_len = (size_t)(eq - colon - 1);
    p->values = eq + 1;
    p->values_len = strlen(eq + 1);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Lists of neurons and of values */

typedef struct {
    long *items;
    int n, cap, max;
    long lo, hi;
    int out_of_range; /* the first offending value is items[n] */
} LongList;

static int add_neuron(const char *item, void *ctx) {
    LongList *l = ctx;
    long v;
    if (!parse_long(item, &v) || l->n >= l->max) return 1;
    if (l->n == l->cap) l->items = xrealloc(l->items, (size_t)(l->cap = l->cap ? 2 * l->cap : 8) * sizeof *l->items);
    l->items[l->n] = v;
    if (v < l->lo || v > l->hi) { l->out_of_range = 1; return 1; }
    l->n++;
    return 0;
}

typedef struct {
    float *items;
    int n, cap, max;
} FloatList;

static int add_value(const char *item, void *ctx) {
    FloatList *l = ctx;
    double v;
    if (!parse_float(item, &v) || v > 3.0e38 || v < -3.0e38 || l->n >= l->max) return 1;
    if (l->n == l->cap) l->items = xrealloc(l->items, (size_t)(l->cap = l->cap ? 2 * l->cap : 8) * sizeof *l->items);
    l->items[l->n++] = (float)v;
    return 0;
}

static int parse_neurons(const char *spec, const SpecParts *p, int ffn_dim, int max, LongList *out, Error *e,
                         const char *what) {
    *out = (LongList){ .max = max, .lo = 0, .hi = ffn_dim - 1 };
    if (!for_each_item(p->neurons, p->neurons_len, add_neuron, out)) return NM_OK;
    int rc = out->out_of_range
                 ? error_set(e, NM_EINPUT, "%s '%s': neuron %ld is outside the layer's neurons 0-%d", what, spec,
                             out->items[out->n], ffn_dim - 1)
                 : error_set(e, NM_EINPUT, "%s '%s': neurons must be numbers separated by commas (at most %d)", what,
                             spec, max);
    free(out->items);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Hook sets */

void hookset_add(HookSet *s, NeuronHook h) {
    if (s->n == s->cap) s->hook = xrealloc(s->hook, (size_t)(s->cap = s->cap ? 2 * s->cap : 8) * sizeof *s->hook);
    s->hook[s->n++] = h;
}

void hookset_free(HookSet *s) {
    free(s->hook);
    s->hook = NULL;
    s->n = s->cap = 0;
}

int hookset_parse(HookSet *s, const char *spec, HookKind kind, int n_layers, int ffn_dim, Error *e) {
    const char *what = kind == HOOK_CLAMP ? "--clamp" : "--scale";
    SpecParts p;
    LongList neurons;
    int rc = split_spec(spec, n_layers, &p, e, what);
    if (rc || (rc = parse_neurons(spec, &p, ffn_dim, HOOK_MAX, &neurons, e, what))) return rc;
    FloatList value = { .max = 1 };
    if (for_each_item(p.values, p.values_len, add_value, &value)) {
        free(neurons.items);
        free(value.items);
        return error_set(e, NM_EINPUT, "%s '%s': the value after '=' must be one finite number", what, spec);
    }
    if (s->n + neurons.n > HOOK_MAX) rc = error_set(e, NM_EINPUT, "%s '%s': more than %d hooks in all", what, spec, HOOK_MAX);
    for (int i = 0; !rc && i < neurons.n; i++)
        hookset_add(s, (NeuronHook){ .layer = (int)p.layer, .neuron = (int)neurons.items[i], .kind = kind, .value = value.items[0] });
    free(neurons.items);
    free(value.items);
    return rc;
}

int hook_site_from_name(const char *s, HookSite *out) {
    if (strcmp(s, "up") == 0) *out = SITE_UP;
    else if (strcmp(s, "act") == 0) *out = SITE_ACT;
    else return 0;
    return 1;
}

const char *hook_site_name(HookSite s) { return s == SITE_UP ? "up" : "act"; }

void hook_describe(const NeuronHook *h, char *out, size_t cap) {
    snprintf(out, cap, "%s %d:%d=%g", h->kind == HOOK_CLAMP ? "clamp" : "scale", h->layer, h->neuron, h->value);
}

/* ----------------------------------------------------------------------------
 * Sweeps */

int sweep_parse(Sweep *sw, const char *spec, int n_layers, int ffn_dim, Error *e) {
    memset(sw, 0, sizeof *sw);
    SpecParts p;
    LongList neurons;
    int rc = split_spec(spec, n_layers, &p, e, "--sweep");
    if (rc || (rc = parse_neurons(spec, &p, ffn_dim, 1, &neurons, e, "--sweep"))) return rc;
    FloatList values = { .max = SWEEP_MAX_VALUES };
    if (for_each_item(p.values, p.values_len, add_value, &values)) {
        free(neurons.items);
        free(values.items);
        return error_set(e, NM_EINPUT, "--sweep '%s': want L:N=V1,V2,... with up to %d finite numbers", spec, SWEEP_MAX_VALUES);
    }
    sw->layer = (int)p.layer;
    sw->neuron = (int)neurons.items[0];
    sw->n_values = values.n;
    sw->values = values.items;
    free(neurons.items);
    return NM_OK;
}

void sweep_free(Sweep *sw) {
    free(sw->values);
    memset(sw, 0, sizeof *sw);
}

/* ----------------------------------------------------------------------------
 * Command-line options */

const char hook_usage[] =
    "  --clamp L:N=V       fix neuron N of layer L to V at every hooked position\n"
    "                      (repeatable; L:N1,N2,...=V for several neurons)\n"
    "  --scale L:N=S       multiply the neuron by S instead (S = 0 removes it)\n"
    "  --clamp-site SITE   act (default): the gated activation entering down_proj, the\n"
    "                      neuron's coefficient (the paper's clamp); up: the up-projection\n"
    "                      output, before the gate multiplies it\n"
    "  --clamp-positions P all (default): prompt and generated tokens; generated: only\n"
    "                      the positions that predict new tokens (the last prompt token on)\n";

static void push_spec(const char ***list, int *n, const char *spec) {
    *list = xrealloc(*list, (size_t)(*n + 1) * sizeof **list);
    (*list)[(*n)++] = spec;
}

int hook_option(HookOptions *o, int c, const char *arg, Error *e) {
    switch (c) {
    case HOOK_OPT_CLAMP: push_spec(&o->clamp, &o->n_clamp, arg); return 1;
    case HOOK_OPT_SCALE: push_spec(&o->scale, &o->n_scale, arg); return 1;
    case HOOK_OPT_SITE:
        if (hook_site_from_name(arg, &o->site)) return o->site_given = 1;
        error_set(e, NM_EINPUT, "--clamp-site must be up or act, not '%s'", arg);
        return -1;
    case HOOK_OPT_POSITIONS:
        if (strcmp(arg, "all") == 0 || strcmp(arg, "generated") == 0) {
            o->generated_only = arg[0] == 'g';
            return 1;
        }
        error_set(e, NM_EINPUT, "--clamp-positions must be all or generated, not '%s'", arg);
        return -1;
    default: return 0;
    }
}

static int by_neuron(const void *pa, const void *pb) {
    const NeuronHook *a = pa, *b = pb;
    return a->layer != b->layer ? a->layer - b->layer : a->neuron - b->neuron;
}

/* One neuron hooked twice: sorted copies make neighbours of the two. */
static int refuse_twice(const HookSet *s, Error *e) {
    if (s->n < 2) return NM_OK; /* (and s->hook may be NULL) */
    NeuronHook *h = xmalloc(((size_t)s->n + 1) * sizeof *h);
    memcpy(h, s->hook, (size_t)s->n * sizeof *h);
    qsort(h, (size_t)s->n, sizeof *h, by_neuron);
    int rc = NM_OK;
    for (int i = 1; i < s->n && !rc; i++)
        if (by_neuron(&h[i - 1], &h[i]) == 0)
            rc = error_set(e, NM_EINPUT, "neuron %d:%d is %s twice (%s %g, %s %g): give each neuron one --clamp or --scale",
                           h[i].layer, h[i].neuron, h[i - 1].kind == h[i].kind ? (h[i].kind == HOOK_CLAMP ? "clamped" : "scaled") : "clamped and scaled",
                           h[i - 1].kind == HOOK_CLAMP ? "clamp" : "scale", h[i - 1].value, h[i].kind == HOOK_CLAMP ? "clamp" : "scale", h[i].value);
    free(h);
    return rc;
}

int hook_options_resolve(const HookOptions *o, int n_layers, int ffn_dim, HookSet *s, Error *e) {
    memset(s, 0, sizeof *s);
    s->site = o->site;
    s->generated_only = o->generated_only;
    int rc = NM_OK;
    for (int i = 0; !rc && i < o->n_clamp; i++) rc = hookset_parse(s, o->clamp[i], HOOK_CLAMP, n_layers, ffn_dim, e);
    for (int i = 0; !rc && i < o->n_scale; i++) rc = hookset_parse(s, o->scale[i], HOOK_SCALE, n_layers, ffn_dim, e);
    if (!rc) rc = refuse_twice(s, e);
    if (rc) hookset_free(s);
    return rc;
}

void hook_options_free(HookOptions *o) {
    free(o->clamp);
    free(o->scale);
    memset(o, 0, sizeof *o);
}
