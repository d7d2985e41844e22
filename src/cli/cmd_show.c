/* cmd_show.c — `neuromap show MODEL|ATLAS L:N`: one neuron's top and bottom
 * tokens. From a model it is one vector through the head, computed on the
 * spot; from an atlas it is what `map` stored. */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "show",
    .usage = "usage: neuromap show MODEL|ATLAS L:N [--matrix up|gate|down] [--top-k K] [--bottom-k K]\n"
             "                     [--norm full|gain|none] [--format table|tsv|json] [--threads N] [--tokenizer FILE]\n",
    .about = "Shows neuron N of layer L (both 0-based): the tokens its direction promotes most and\n"
             "least, through the final RMSNorm and the LM head, with softmax probabilities over the\n"
             "full vocabulary. From an atlas, the lists `map` stored (norm and K as it used them).\n",
};

enum { SHOW_TABLE, SHOW_TSV, SHOW_JSON };

static void print_table(const TokenNames *tn, MatrixKind k, int layer, int neuron, LensNorm norm, const LensResult *r,
                        int n_top, int n_bottom) {
    if (r->nonfinite) { /* its tokens would mean nothing: say why there are none */
        printf("%s %d:%d  (norm %s): non-finite weights: its vector or its logits hold a NaN or an infinity\n",
               matrix_name(k), layer, neuron, lens_norm_name(norm));
        return;
    }
    printf("%s %d:%d  (norm %s, log-sum-exp %.4f)\n", matrix_name(k), layer, neuron, lens_norm_name(norm), r->lse);
    printf("%6s %9s %11s %11s  %s\n", "rank", "token_id", "logit", "prob", "token");
    for (int i = 0; i < n_top + n_bottom; i++) {
        const LensToken *t = i < n_top ? &r->top[i] : &r->bottom[i - n_top];
        char *text = token_quoted(tn, t->id);
        printf("%6d %9d %11.5f %11.4g  %s\n", i < n_top ? i + 1 : -(i - n_top + 1), t->id, t->logit, t->prob, text);
        free(text);
    }
}

int cmd_show(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* --examples: the activations an atlas holds (cmd_activations.c) */
        if (strcmp(argv[i], "--examples") == 0) return show_examples(argc, argv);
    static const char *const matrices[] = { "up", "gate", "down", NULL };
    static const char *const norms[] = { "full", "gain", "none", NULL };
    static const char *const formats[] = { "table", "tsv", "json", NULL }; /* SHOW_TABLE, SHOW_TSV, SHOW_JSON */
    int k = MATRIX_UP, norm = NORM_FULL, format = SHOW_TABLE, norm_given = 0, k_given = 0;
    long top_k = 10, bottom_k = 5, threads = 0;
    const char *tokenizer = NULL, *token_arg = NULL;
    int first_piece = 0;
    Option opts[] = {
        { OPT_CHOICE(0, "matrix", &k, "M", matrices, "up (default), gate or down") },
        { OPT_INT(0, "top-k", &top_k, "K", 0, 1 << 22, "highest-logit tokens (default 10)"), .seen = &k_given },
        { OPT_INT(0, "bottom-k", &bottom_k, "K", 0, 1 << 22, "lowest-logit tokens (default 5)"), .seen = &k_given },
        { OPT_CHOICE(0, "norm", &norm, "N", norms, "full (default), gain or none (see 'neuromap map --help')"),
          .seen = &norm_given },
        { OPT_CHOICE(0, "format", &format, "F", formats, "table (default), tsv (map's columns) or json (one document: README)") },
        { OPT_THREADS(&threads) },
        { OPT_TOKENIZER(&tokenizer) },
        { OPT_STRING(0, "token", &token_arg, "TEXT|#ID",
                     "also where this token stands in the neuron: logit, rank, prob\n"
                     "(#ID, a piece as stored like \"▁do\", or text like \" do\"; from an\n"
                     "atlas, only when its stored lists hold it)") },
        { OPT_FLAG(0, "first-piece", &first_piece, "--token TEXT of several tokens: its first") },
        { OPT_GROUP("  --examples          the activations stored by 'neuromap activations'\n"
                    "                      (see 'neuromap show --examples --help')") },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 2, "MODEL|ATLAS and a neuron L:N");
    const char *path = argv[1];
    int layer, neuron;
    Error e = { 0 };
    if (parse_neuron(argv[2], &layer, &neuron, &e)) die(NM_EINPUT, "show: %s", e.msg);

    int n_top = (int)top_k, n_bottom = (int)bottom_k;
    LensBatch b;
    TokenNames tn;
    Atlas *atlas = NULL;
    Model m = { 0 };
    if (atlas_is_atlas(path)) {
        if (atlas_open(&atlas, path, &e)) error_exit(&e);
        const AtlasInfo *in = atlas_info(atlas);
        if (norm_given && norm != (int)in->norm)
            die(NM_EINPUT, "show: %s was mapped with --norm %s; use the model for --norm %s", path, lens_norm_name(in->norm),
                lens_norm_name(norm));
        if (k_given && (top_k > in->top_k || bottom_k > in->bottom_k))
            die(NM_EINPUT, "show: %s holds the top %d and bottom %d tokens of each neuron; use the model for more", path,
                in->top_k, in->bottom_k);
        norm = in->norm;
        lens_batch_init(&b, 1, in->top_k, in->bottom_k);
        int stored_top, stored_bottom;
        if (atlas_neuron(atlas, k, layer, neuron, &b.r[0], &stored_top, &stored_bottom, &e)) error_exit(&e);
        if (!k_given || n_top > stored_top) n_top = stored_top;
        if (!k_given || n_bottom > stored_bottom) n_bottom = stored_bottom;
        tn = atlas_token_names(atlas);
    } else {
        open_model_or_exit(&m, path, tokenizer, 1);
        if (layer >= m.cfg.n_layers || neuron >= m.cfg.ffn_dim)
            die(NM_EINPUT, "show: neuron %d:%d is outside the model (%d layers of %d neurons)", layer, neuron,
                m.cfg.n_layers, m.cfg.ffn_dim);
        if (top_k > m.cfg.vocab_size || bottom_k > m.cfg.vocab_size)
            die(NM_EINPUT, "show: --top-k and --bottom-k must not exceed the vocabulary (%d tokens)", m.cfg.vocab_size);
        if (api_decode_neuron(&m, k, layer, neuron, norm, (int)threads, n_top, n_bottom, &b, &e)) error_exit(&e);
        tn = lens_vocab_names(&m.vocab);
    }
    /* --token: its place in this neuron */
    int token = -1, rank = 0, found = 0;
    float logit = 0;
    double prob = 0;
    if (token_arg) {
        int pieces;
        if (api_token_arg("show", &tn, atlas ? NULL : &m.vocab, token_arg, first_piece, &token, &pieces, &e))
            die(NM_EINPUT, "show: --token: %s", e.msg);
        if (!atlas) {
            if (api_neuron_token(&m, k, layer, neuron, norm, token, &logit, &rank, &prob, &e)) error_exit(&e);
            found = 1;
        } else {
            const LensResult *r = &b.r[0];
            for (int i = 0; i < n_top && !found; i++)
                if (r->top[i].id == token) logit = r->top[i].logit, prob = r->top[i].prob, rank = i + 1, found = 1;
            for (int i = 0; i < n_bottom && !found; i++)
                if (r->bottom[i].id == token) logit = r->bottom[i].logit, prob = r->bottom[i].prob, rank = tn.n - i, found = 1;
        }
    }
    if (format == SHOW_TSV) {
        neuron_tsv_header(stdout);
        neuron_tsv(stdout, &tn, k, layer, neuron, &b.r[0], n_top, n_bottom); /* no rows when non-finite */
        if (b.r[0].nonfinite) fprintf(stderr, "show: %s %d:%d has non-finite weights: no tokens\n", matrix_name(k), layer, neuron);
    } else if (format == SHOW_JSON) {
        cJSON *o = show_json(&tn, k, layer, neuron, norm, &b.r[0], n_top, n_bottom);
        if (token >= 0) {
            char *text = token_text(&tn, token);
            cJSON *t = cJSON_AddObjectToObject(o, "token");
            cJSON_AddNumberToObject(t, "token_id", token);
            cJSON_AddStringToObject(t, "token", text);
            if (found) {
                cJSON_AddNumberToObject(t, "logit", logit);
                cJSON_AddNumberToObject(t, "rank", rank);
                cJSON_AddNumberToObject(t, "prob", prob);
            } else {
                cJSON_AddBoolToObject(t, "stored", 0);
            }
            free(text);
        }
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        print_table(&tn, k, layer, neuron, norm, &b.r[0], n_top, n_bottom);
    }
    if (token >= 0 && format != SHOW_JSON) { /* TSV keeps map's rows: the line goes to stderr */
        char *text = token_text(&tn, token);
        FILE *f = format == SHOW_TSV ? stderr : stdout;
        if (found) fprintf(f, "%stoken %d \"%s\": logit %.5f, rank %d of %d, prob %.3g\n", f == stdout ? "\n" : "show: ", token,
                           text, logit, rank, tn.n, prob);
        else fprintf(f, "%stoken %d \"%s\" is in neither stored list of this neuron (the atlas keeps top %d, bottom %d)\n",
                     f == stdout ? "\n" : "show: ", token, text, n_top, n_bottom);
        free(text);
    }
    lens_batch_free(&b);
    atlas_close(atlas);
    if (m.has_weights) model_close(&m);
    return NM_OK;
}
