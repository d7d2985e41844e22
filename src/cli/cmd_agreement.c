/* cmd_agreement.c — `neuromap agreement ATLAS`: per neuron and per layer, do
 * the weights' readings agree with where the neuron fires? (agreement.h) */
#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

static const char usage_text[] =
    "usage: neuromap agreement ATLAS [--row gate|up] [--through head|embed] [--alpha A] [--neurons]\n"
    "                                [--format table|json]\n\n"
    "Tests, for every neuron of an atlas made by `neuromap activations`, what its weights say\n"
    "against its top examples: is the token its down column writes (through the final norm\n"
    "and the LM head) the next token after them more often than its corpus frequency? Is the\n"
    "token its gate row reads (through the LM head, or --through embed the token embeddings)\n"
    "at or just before them? Lift and a binomial p-value per neuron; per layer, the fraction\n"
    "of neurons whose reading is confirmed (p < alpha).\n\n"
    "  --row R             the row that reads: gate (default: it decides when a SwiGLU neuron\n"
    "                      fires) or up\n"
    "  --through T         the row's reading: head (default) or embed\n"
    "  --alpha A           significance level (default 0.01)\n"
    "  --neurons           one row per neuron too (table: TSV after the summary)\n"
    "  --format F          table (default) or json\n"
    "  -h, --help          this help\n";

typedef struct {
    int neurons, writes_ok, reads_ok, writes_tested, reads_tested;
} Tally;

int cmd_agreement(int argc, char **argv) {
    static const struct option opts[] = {
        { "through", required_argument, 0, 'T' }, { "alpha", required_argument, 0, 'a' }, { "row", required_argument, 0, 'R' },
        { "neurons", no_argument, 0, 'n' },       { "format", required_argument, 0, 'f' },
        { "help", no_argument, 0, 'h' },          { 0, 0, 0, 0 },
    };
    int embed = 0, json = 0, per_neuron = 0, row = 1, c;
    double alpha = 0.01;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            if (strcmp(optarg, "embed") == 0) embed = 1;
            else if (strcmp(optarg, "head") == 0) embed = 0;
            else die(NM_EINPUT, "agreement: --through must be head or embed, not '%s'", optarg);
            break;
        case 'a':
            if (!parse_float(optarg, &alpha) || !(alpha > 0 && alpha < 1))
                die(NM_EINPUT, "agreement: --alpha must be a number between 0 and 1, not '%s'", optarg);
            break;
        case 'R':
            if (strcmp(optarg, "gate") == 0) row = 1;
            else if (strcmp(optarg, "up") == 0) row = 0;
            else die(NM_EINPUT, "agreement: --row must be gate or up, not '%s'", optarg);
            break;
        case 'n': per_neuron = 1; break;
        case 'f':
            if (strcmp(optarg, "json") == 0) json = 1;
            else if (strcmp(optarg, "table") == 0) json = 0;
            else die(NM_EINPUT, "agreement: --format must be table or json, not '%s'", optarg);
            break;
        case 'h': fputs(usage_text, stdout); return NM_OK;
        default: die(NM_EINPUT, "agreement: unknown or incomplete option '%s' (see 'neuromap agreement --help')", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) die(NM_EINPUT, "agreement: expected one ATLAS (see 'neuromap agreement --help')");
    const char *path = argv[optind];
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
        char *str = cJSON_Print(root);
        puts(str);
        free(str);
        cJSON_Delete(root);
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
