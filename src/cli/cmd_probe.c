/* cmd_probe.c — `neuromap probe MODEL -p PROMPT --target TEXT`: how likely
 * the model finds TEXT as the continuation of PROMPT, without and with
 * neurons clamped, and (--sweep) as a curve over clamp values.
 *
 * The probability is the product over TEXT's tokens, teacher-forced: one
 * forward pass over prompt + target gives every factor at once.
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "probe",
    .usage = "usage: neuromap probe MODEL -p PROMPT --target TEXT [--clamp L:N=V ...] [--chat]\n"
             "                      [--sweep L:N=V1,V2,...] [--format table|json|tsv]\n",
    .about = "The probability of TEXT as the continuation of PROMPT (the product over its\n"
             "tokens, teacher-forced), without and with the clamp, and the top next tokens\n"
             "in each case. TEXT's tokens are the ones that tokenizing PROMPT+TEXT adds after\n"
             "PROMPT's own (so \" play\" is one word token, not a new text's \"▁\" + \"play\"); when\n"
             "PROMPT's own tokens change at the boundary, the joint tokenization is used and\n"
             "stderr says so. --sweep clamps one neuron to each value in turn (on top of any\n"
             "--clamp/--scale) and prints the curve: a chart, or rows \"value prob\" with tsv.\n",
};

enum { FMT_TABLE, FMT_JSON, FMT_TSV };

typedef struct {
    const char *prompt, *target, *sweep, *tokenizer;
    long top_k, threads;
    int format, truncate, exact, kv_f16;
    HookOptions hooks;
    PromptOptions prompt_opts;
} ProbeArgs;


/* ----------------------------------------------------------------------------
 * Output */

/* A token's text for tables: escaped, quoted. */
static void token_label(const Probe *p, int id, char *out, size_t cap) {
    char esc[256];
    escape_token(p->m->vocab.text[id], (size_t)p->m->vocab.text_len[id], esc, sizeof esc);
    snprintf(out, cap, "\"%s\"", esc);
}

static void print_table(const Probe *p, const ProbeArgs *a, const ProbeResult *base, const ProbeResult *hooked,
                        const HookSet *hooks) {
    printf("prompt   %d tokens\ntarget   \"%s\" = [", p->n_prompt, a->target);
    for (int i = 0; i < p->n_target; i++) printf("%s%d", i ? " " : "", p->ids[p->n_prompt + i]);
    printf("] (%d token%s)\n", p->n_target, p->n_target == 1 ? "" : "s");
    char label[512] = "";
    if (hooked) {
        hooks_label(hooks, label, sizeof label);
        printf("%s\n", label);
    }
    printf("\n%-16s %14s%s\n", "", "baseline", hooked ? "        clamped" : "");
    printf("%-16s %14.6g", "P(target)", exp(base->logprob));
    if (hooked) printf(" %14.6g", exp(hooked->logprob));
    printf("\n%-16s %14.4f", "log P", base->logprob);
    if (hooked) printf(" %14.4f", hooked->logprob);
    printf("\n\nnext token after the prompt:\n%4s  %-28s%s\n", "rank", "baseline", hooked ? "clamped" : "");
    for (int k = 0; k < p->top_k; k++) {
        char t[300];
        token_label(p, base->top[k], t, sizeof t);
        printf("%4d  %-18s %8.4f", k + 1, t, base->top_p[k]);
        if (hooked) {
            token_label(p, hooked->top[k], t, sizeof t);
            printf("  %-18s %8.4f", t, hooked->top_p[k]);
        }
        putchar('\n');
    }
}

/* Rows "run rank token_id token prob": rank 0 is the whole target (token_id
 * -1 when it spans several tokens), ranks 1.. the top next tokens. */
static void print_tsv(const Probe *p, const ProbeArgs *a, const char *run, const ProbeResult *r) {
    char esc[1024];
    escape_token(a->target, strlen(a->target), esc, sizeof esc);
    printf("%s\t0\t%d\t%s\t%.9g\n", run, p->n_target == 1 ? p->ids[p->n_prompt] : -1, esc, exp(r->logprob));
    for (int k = 0; k < p->top_k; k++) {
        int id = r->top[k];
        escape_token(p->m->vocab.text[id], (size_t)p->m->vocab.text_len[id], esc, sizeof esc);
        printf("%s\t%d\t%d\t%s\t%.9g\n", run, k + 1, id, esc, r->top_p[k]);
    }
}

/* A bar chart of the sweep, bars scaled to the largest probability;
 * probabilities with three significant digits (they span decades: 9.6e-07
 * to 0.695), and the top next token at each value. */
static void print_sweep_chart(const Probe *p, const Sweep *sw, const double *prob, const int *top, const ProbeArgs *a,
                              HookSite site) {
    double max = 0;
    for (int i = 0; i < sw->n_values; i++) max = fmax(max, prob[i]);
    printf("P(\"%s\") with neuron %d:%d clamped at site %s (bars: share of the largest, %.4g)\n\n", a->target, sw->layer,
           sw->neuron, hook_site_name(site), max);
    printf("%10s  %10s  %s\n", "value", "P(target)", "top next token");
    for (int i = 0; i < sw->n_values; i++) {
        int w = max > 0 ? (int)lround(50 * prob[i] / max) : 0;
        char t[300] = "-";
        if (top[i] >= 0) token_label(p, top[i], t, sizeof t);
        printf("%10g  %10.3g  %-16s |", sw->values[i], prob[i], t);
        for (int k = 0; k < w; k++) putchar('#');
        putchar('\n');
    }
}

/* ----------------------------------------------------------------------------
 * The command */

static void parse_args(int argc, char **argv, ProbeArgs *a) {
    static const char *const formats[] = { [FMT_TABLE] = "table", [FMT_JSON] = "json", [FMT_TSV] = "tsv", NULL };
    *a = (ProbeArgs){ .top_k = 10, .hooks = HOOK_OPTIONS_DEFAULT };
    Option opts[] = {
        { OPT_STRING('p', "prompt", &a->prompt, "TEXT", "the prompt (required)") },
        { OPT_STRING(0, "target", &a->target, "TEXT", "the continuation to score (required)") },
        { OPT_STRING(0, "sweep", &a->sweep, "L:N=V,...", "clamp values to try for neuron L:N") },
        { OPT_INT(0, "top-k", &a->top_k, "K", 1, 1000, "next tokens to list (default 10)") },
        OPT_HOOK_OPTIONS(&a->hooks),
        OPT_PROMPT_OPTIONS(&a->prompt_opts),
        { OPT_CHOICE(0, "format", &a->format, "FMT", formats, "table (default), json or tsv") },
        { OPT_FLAG(0, "truncate", &a->truncate, "drop the oldest prompt tokens when prompt + target exceed the context") },
        { OPT_THREADS(&a->threads) },
        { OPT_EXACT_ACTIVATIONS(&a->exact) },
        { OPT_KV(&a->kv_f16) },
        { OPT_TOKENIZER(&a->tokenizer) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    if (!a->prompt || !a->target) die(NM_EINPUT, "probe: needs -p PROMPT and --target TEXT");
    if (!*a->target) die(NM_EINPUT, "probe: --target is empty");
}

static void print_json(const Probe *p, const ProbeArgs *a, const ProbeResult *base, const ProbeResult *hooked,
                       const HookSet *hooks, const Sweep *sw, const double *sweep_prob) {
    put_json(probe_json(p, a->target, base, hooked, hooks, sw, sweep_prob), 1);
}

/* Target probability with the neuron of the sweep clamped to each value, on
 * top of the user's own hooks (the sweep's hook is the set's last). */
/* prob[i]: P(target) at value i; top[i]: the next token the model then likes best. */
static int run_sweep(Probe *p, HookSet *hooks, const Sweep *sw, double *prob, int *top, Error *e) {
    int rc = NM_OK;
    Progress prog; /* one forward pass per value: minutes on an 8B model */
    progress_start(&prog, "sweep", sw->n_values, isatty(2));
    hookset_add(hooks, (NeuronHook){ .layer = sw->layer, .neuron = sw->neuron, .kind = HOOK_CLAMP });
    for (int i = 0; !rc && i < sw->n_values; i++) {
        ProbeResult r = { 0 };
        hooks->hook[hooks->n - 1].value = sw->values[i];
        rc = probe_run(p, hooks, &r, e);
        prob[i] = exp(r.logprob);
        if (!rc) top[i] = p->top_k > 0 ? r.top[0] : -1;
        probe_result_free(&r);
        progress_update(&prog, i + 1);
    }
    progress_end(&prog);
    hooks->n--;
    return rc;
}

int cmd_probe(int argc, char **argv) {
    ProbeArgs a;
    parse_args(argc, argv, &a);
    Sweep sw = { 0 }; /* --sweep's neuron and values */
    Model m;
    Tokenizer *tok;
    HookSet hooks;
    open_steering(argv[1], a.tokenizer, &a.hooks, &m, &tok, &hooks);
    Error e = { 0 };
    Probe p = { .m = &m, .top_k = (int)a.top_k };
    int *ids = NULL, dropped = 0, shifted = 0, vocab = m.cfg.vocab_size;
    ProbeSpec spec = { .prompt = a.prompt, .target = a.target, .prompt_opts = a.prompt_opts };
    if ((a.sweep && sweep_parse(&sw, a.sweep, m.cfg.n_layers, m.cfg.ffn_dim, &e)) ||
        probe_ids(tok, &m.vocab, &spec, &ids, &p.n_prompt, &p.n_target, &shifted, &e))
        error_exit(&e);
    if (shifted)
        fprintf(stderr, "neuromap: note: the prompt's last %d token(s) change when the target follows; using the joint "
                        "tokenization (the prompt is now its first %d tokens)\n", shifted, p.n_prompt);
    hook_notes("probe", &a.hooks, hooks.n > 0 || sw.n_values > 0);
    if (p.n_target >= m.cfg.max_seq_len)
        die(NM_EINPUT, "probe: the target has %d tokens, more than the model's context of %d", p.n_target, m.cfg.max_seq_len);
    /* The prompt is cut in place; the target ids follow it. */
    int n_prompt = p.n_prompt;
    if (fit_prompt(ids, &p.n_prompt, m.cfg.max_seq_len - p.n_target, a.truncate, m.vocab.bos_id, &dropped, &e)) error_exit(&e);
    if (dropped) {
        memmove(ids + p.n_prompt, ids + n_prompt, (size_t)p.n_target * sizeof *ids);
        fprintf(stderr, "neuromap: warning: the prompt was truncated: its first %d tokens were dropped\n", dropped);
    }
    if (p.top_k > vocab) p.top_k = vocab;
    p.ids = ids;
    p.logits = xmalloc((size_t)p.n_target * vocab * sizeof *p.logits);
    p.prob = xmalloc((size_t)vocab * sizeof *p.prob);
    if (forward_new(&m, p.n_prompt + p.n_target, (int)a.threads, &p.f, &e)) error_exit(&e);
    forward_set_exact(p.f, a.exact);
    if (forward_set_kv_f16(p.f, a.kv_f16, &e)) error_exit(&e);

    ProbeResult base = { 0 }, hooked = { 0 };
    double *sweep_prob = sw.n_values ? xcalloc((size_t)sw.n_values, sizeof *sweep_prob) : NULL;
    int *sweep_top = sw.n_values ? xcalloc((size_t)sw.n_values, sizeof *sweep_top) : NULL;
    int clamped = hooks.n > 0;
    if (probe_run(&p, NULL, &base, &e) || (clamped && probe_run(&p, &hooks, &hooked, &e)) ||
        (sw.n_values && run_sweep(&p, &hooks, &sw, sweep_prob, sweep_top, &e)))
        error_exit(&e);

    if (a.format == FMT_JSON) {
        print_json(&p, &a, &base, clamped ? &hooked : NULL, &hooks, sw.n_values ? &sw : NULL, sweep_prob);
    } else if (a.format == FMT_TSV && sw.n_values) {
        printf("value\tprob\n");
        for (int i = 0; i < sw.n_values; i++) printf("%g\t%.9g\n", sw.values[i], sweep_prob[i]);
    } else if (a.format == FMT_TSV) {
        printf("run\trank\ttoken_id\ttoken\tprob\n");
        print_tsv(&p, &a, "baseline", &base);
        if (clamped) print_tsv(&p, &a, "clamped", &hooked);
    } else {
        print_table(&p, &a, &base, clamped ? &hooked : NULL, &hooks);
        if (sw.n_values) {
            putchar('\n');
            print_sweep_chart(&p, &sw, sweep_prob, sweep_top, &a, hooks.site);
        }
    }
    probe_result_free(&base);
    probe_result_free(&hooked);
    free(sweep_prob);
    free(sweep_top);
    free(p.logits);
    free(p.prob);
    free(ids);
    forward_free(p.f);
    sweep_free(&sw);
    hookset_free(&hooks);
    hook_options_free(&a.hooks);
    tokenizer_free(tok);
    model_close(&m);
    return NM_OK;
}
