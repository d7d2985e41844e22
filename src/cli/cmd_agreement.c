/* cmd_agreement.c — `neuromap agreement ATLAS`: per neuron and per layer, do
 * the weights' readings agree with where the neuron fires? (agreement.h) */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "agreement",
    .usage = "usage: neuromap agreement ATLAS [--row gate|up] [--through head|embed] [--alpha A] [--neurons]\n"
             "                                [--format table|json]\n",
    .about = "Tests, for every neuron of an atlas made by `neuromap activations`, what its weights say\n"
             "against its top examples: is the token its down column writes (through the final norm\n"
             "and the LM head) the next token after them more often than its corpus frequency? Is the\n"
             "token its gate row reads (through the LM head, or --through embed the token embeddings)\n"
             "at or just before them? Lift and a binomial p-value per neuron; per layer, the fraction\n"
             "of neurons whose reading is confirmed (p < alpha).\n",
};

/* --alpha: a significance level, strictly between 0 and 1 (OPT_FLOAT's
 * ranges include their upper end; alpha = 1 would confirm everything). */
static int alpha_option(void *dest, int code, const char *arg, Error *e) {
    double *alpha = dest;
    if (!parse_float(arg, alpha) || !(*alpha > 0 && *alpha < 1))
        return error_set(e, NM_EINPUT, "--alpha must be a number in (0, 1), not '%s'", arg);
    return NM_OK;
}

typedef struct {
    int neurons, writes_ok, reads_ok, writes_tested, reads_tested;
} Tally;

int cmd_agreement(int argc, char **argv) {
    static const char *const row_names[] = { "gate", "up", NULL }; /* row = 1: gate, as agreement_neuron takes it */
    static const char *const throughs[] = { "head", "embed", NULL }; /* index = embed */
    static const char *const formats[] = { "table", "json", NULL };  /* index = json */
    int row_choice = 0, embed = 0, json = 0, per_neuron = 0;
    double alpha = 0.01;
    long threads = 0;
    Option opts[] = {
        { OPT_CHOICE(0, "row", &row_choice, "R", row_names,
                     "the row that reads: gate (default: it decides when a SwiGLU neuron\nfires) or up") },
        { OPT_CHOICE(0, "through", &embed, "T", throughs, "the row's reading: head (default) or embed") },
        { OPT_CALL(0, "alpha", &alpha, "A", alpha_option, 0, "significance level (default 0.01)") },
        { OPT_FLAG(0, "neurons", &per_neuron, "one row per neuron too (table: TSV after the summary)") },
        { OPT_CHOICE(0, "format", &json, "F", formats, "table (default) or json") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one ATLAS");
    int row = row_choice == 0;
    const char *path = argv[1];
    if (!atlas_is_atlas(path)) die(NM_EINPUT, "agreement: %s: not an atlas (make one with 'neuromap activations')", path);
    Error e = { 0 };
    ActAtlas *a;
    if (act_atlas_open(&a, path, &e)) error_exit(&e);
    const ActInfo *in = act_atlas_info(a);
    TokenNames tn = act_atlas_token_names(a);
    int n_layers = in->l1 - in->l0 + 1;
    Tally *t = xcalloc((size_t)n_layers + 1, sizeof *t), *all = &t[n_layers];
    ActNeuron s = { 0 };
    s.top = xcalloc((size_t)in->top_n + 1, sizeof *s.top);
    s.bottom = xcalloc((size_t)in->bottom_n + 1, sizeof *s.bottom);
    cJSON *root = json ? cJSON_CreateObject() : NULL, *rows = NULL;
    if (json) {
        cJSON_AddStringToObject(root, "row", row ? "gate" : "up");
        cJSON_AddStringToObject(root, "through", embed ? "embed" : "head");
        cJSON_AddNumberToObject(root, "alpha", alpha);
        if (per_neuron) rows = cJSON_AddArrayToObject(root, "neurons");
    }
    FILE *tsv = per_neuron && !json ? tmpfile() : NULL;
    if (per_neuron && !json && !tsv) die(NM_ERUNTIME, "agreement: cannot create a temporary file");
    if (tsv) fprintf(tsv, "layer\tneuron\twrites_id\twrites\thits\ttrials\tlift\tp\treads_id\treads\thits\ttrials\tlift\tp\n");
    for (int l = in->l0; l <= in->l1; l++)
        for (int n = 0; n < in->ffn_dim; n++) {
            ActReadings w;
            NeuronAgreement g;
            if (act_atlas_neuron(a, l, n, &s, &w, &e) || agreement_neuron(a, &s, &w, row, embed, &g, &e)) error_exit(&e);
            Tally *lt = &t[l - in->l0];
            int wo = g.writes.hits > 0 && g.writes.p < alpha, ro = g.reads.hits > 0 && g.reads.p < alpha;
            for (Tally *x = lt; x; x = x == all ? NULL : all) {
                x->neurons++;
                x->writes_tested += g.writes.trials > 0;
                x->reads_tested += g.reads.trials > 0;
                x->writes_ok += wo;
                x->reads_ok += ro;
            }
            if (tsv) {
                char *ws = token_text(&tn, g.writes.token), *rs = token_text(&tn, g.reads.token);
                fprintf(tsv, "%d\t%d\t%d\t%s\t%d\t%d\t%.4g\t%.3g\t%d\t%s\t%d\t%d\t%.4g\t%.3g\n", l, n, g.writes.token, ws,
                        g.writes.hits, g.writes.trials, g.writes.lift, g.writes.p, g.reads.token, rs, g.reads.hits,
                        g.reads.trials, g.reads.lift, g.reads.p);
                free(ws);
                free(rs);
            }
            if (rows) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "layer", l);
                cJSON_AddNumberToObject(o, "neuron", n);
                struct { const char *key; const AgreementTest *t; } two[2] = { { "writes", &g.writes }, { "reads", &g.reads } };
                for (int i = 0; i < 2; i++) {
                    cJSON *x = cJSON_AddObjectToObject(o, two[i].key);
                    cJSON_AddNumberToObject(x, "token_id", two[i].t->token);
                    cJSON_AddNumberToObject(x, "hits", two[i].t->hits);
                    cJSON_AddNumberToObject(x, "trials", two[i].t->trials);
                    if (isnan(two[i].t->lift)) cJSON_AddNullToObject(x, "lift");
                    else cJSON_AddNumberToObject(x, "lift", two[i].t->lift);
                    cJSON_AddNumberToObject(x, "p", two[i].t->p);
                }
                cJSON_AddItemToArray(rows, o);
            }
        }
    if (json) {
        cJSON *layers = cJSON_AddArrayToObject(root, "layers");
        for (int i = 0; i <= n_layers; i++) {
            cJSON *o = cJSON_CreateObject();
            if (i < n_layers) cJSON_AddNumberToObject(o, "layer", in->l0 + i);
            cJSON_AddNumberToObject(o, "neurons", t[i].neurons);
            cJSON_AddNumberToObject(o, "writes_confirmed", t[i].writes_ok);
            cJSON_AddNumberToObject(o, "reads_confirmed", t[i].reads_ok);
            cJSON_AddNumberToObject(o, "writes_fraction", t[i].neurons ? (double)t[i].writes_ok / t[i].neurons : 0);
            cJSON_AddNumberToObject(o, "reads_fraction", t[i].neurons ? (double)t[i].reads_ok / t[i].neurons : 0);
            if (i < n_layers) cJSON_AddItemToArray(layers, o);
            else cJSON_AddItemToObject(root, "total", o);
        }
        put_json(root, 1);
    } else {
        printf("agreement of weights and activations: %s (%lld corpus tokens, top %d examples per neuron, p < %g, %s row read through %s)\n",
               path, (long long)in->tokens, in->top_n, alpha, row ? "gate" : "up", embed ? "the embeddings" : "the LM head");
        printf("%6s %8s %22s %22s\n", "layer", "neurons", "writes confirmed", "reads confirmed");
        for (int i = 0; i <= n_layers; i++) {
            char name[16];
            if (i < n_layers) snprintf(name, sizeof name, "%d", in->l0 + i);
            else snprintf(name, sizeof name, "all");
            printf("%6s %8d %12d (%5.1f%%) %12d (%5.1f%%)\n", name, t[i].neurons, t[i].writes_ok,
                   t[i].neurons ? 100.0 * t[i].writes_ok / t[i].neurons : 0.0, t[i].reads_ok,
                   t[i].neurons ? 100.0 * t[i].reads_ok / t[i].neurons : 0.0);
        }
        printf("(by chance alone about %.0f of %d neurons pass each test at p < %g)\n", alpha * all->neurons, all->neurons, alpha);
        if (tsv) {
            rewind(tsv);
            char buf[4096];
            size_t k;
            putchar('\n');
            while ((k = fread(buf, 1, sizeof buf, tsv)) > 0) fwrite(buf, 1, k, stdout);
            fclose(tsv);
        }
    }
    free(s.top);
    free(s.bottom);
    free(t);
    act_atlas_close(a);
    return NM_OK;
}
