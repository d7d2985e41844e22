/* cmd_diff.c — `neuromap diff A B`: two checkpoints compared neuron by
 * neuron (base vs fine-tune, a model vs its quantisations), and
 * `neuromap diff MODEL --matrix-pair up,down`: what each neuron reads against
 * what it writes. The comparison is diff.c's; this file parses options and
 * writes the report as a table with a bar chart, JSON, TSV or SVG.
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "diff",
    .usage = "usage: neuromap diff A B [--matrix up|gate|down|all] [--top-k K] [--limit N] [--plot FILE.svg]\n"
             "                         [--format table|json|tsv] [--norm full|gain|none] [--layers A-B]\n"
             "                         [--threads N] [--tokenizer FILE]\n"
             "       neuromap diff MODEL --matrix-pair up,down [options]\n"
             "       neuromap diff A B --token TEXT|#ID [--by logit|prob|rank] [--reverse] [--limit N] [options]\n",
    .about = "Compares two checkpoints with the same shapes and vocabulary neuron by neuron: the\n"
             "share of neurons whose top-1 token is the same in both, the mean overlap (Jaccard)\n"
             "of their top-K sets, the mean Spearman correlation of their top-K rankings (over the\n"
             "union of both lists; a token missing from a list takes the mid-rank of the places\n"
             "after K), overall and per layer, and the neurons whose meaning changed most (by\n"
             "(1 - Jaccard) x the smaller of the two top-1 probabilities).\n"
             "A and B are models (decoded on the fly, as `map` would) or atlases made by `map`.\n"
             "With --matrix-pair X,Y and one MODEL|ATLAS, matrix X of each neuron is compared with\n"
             "matrix Y of the same neuron: up,down asks whether a neuron writes the token it\n"
             "reads, and lists the strongest such read-and-write neurons.\n"
             "With --token, one token followed through A and B: every neuron's logit, rank and\n"
             "probability of it in each, ranked by the change (B - A; for rank, places gained),\n"
             "largest increase first: which neurons gained \" dog\"? Exact (full vocabulary) from\n"
             "a model; from an atlas only where its stored lists hold the token (the others are\n"
             "counted). The token is #ID, a piece as stored (\"▁do\") or text (\" do\").\n",
};

enum { OUT_TABLE, OUT_JSON, OUT_TSV };

typedef struct {
    DiffOptions d;
    const char *matrix, *matrices, *layers, *plot, *tokenizer;
    int format, progress;
    const char *token;       /* --token: the per-token diff */
    int by, reverse, first_piece;
    int n_paths;
    const char *path[2];
} Options;

/* "up,down" → one pair. */
static DiffPair parse_matrices(const char *s) {
    char x[16], y[16];
    const char *comma = strchr(s, ',');
    DiffPair p;
    if (!comma || (size_t)(comma - s) >= sizeof x || strlen(comma + 1) >= sizeof y)
        die(NM_EINPUT, "diff: --matrix-pair wants two matrices X,Y (e.g. up,down), not '%s'", s);
    snprintf(x, sizeof x, "%.*s", (int)(comma - s), s);
    snprintf(y, sizeof y, "%s", comma + 1);
    if (!matrix_from_name(x, &p.a) || !matrix_from_name(y, &p.b) || p.a == p.b)
        die(NM_EINPUT, "diff: --matrix-pair wants two different matrices of up, gate, down (e.g. up,down), not '%s'", s);
    return p;
}

static void parse_options(int argc, char **argv, Options *o) {
    static const char *const matrices[] = { "up", "gate", "down", "all", NULL };
    static const char *const norms[] = { "full", "gain", "none", NULL };
    static const char *const formats[] = { [OUT_TABLE] = "table", [OUT_JSON] = "json", [OUT_TSV] = "tsv", NULL };
    static const char *const bys[] = { [TOKEN_DIFF_BY_LOGIT] = "logit", [TOKEN_DIFF_BY_PROB] = "prob",
                                       [TOKEN_DIFF_BY_RANK] = "rank", NULL };
    int by_given = 0, reverse_given = 0;
    *o = (Options){ .d = { .limit = 20, .layer1 = -1 } };
    int matrix = 0, norm = NORM_FULL;
    long top_k = 0, limit = 20, threads = 0;
    Option opts[] = {
        { OPT_CHOICE(0, "matrix", &matrix, "M", matrices, "up (default), gate, down or all") },
        { OPT_STRING(0, "matrix-pair", &o->matrices, "X,Y",
                     "within one model: X against Y (up,down; gate,down; up,gate)"), .aliases = "matrices" },
        { OPT_INT(0, "top-k", &top_k, "K", 1, DIFF_MAX_TOP_K, "tokens per list (default 10, or fewer if an atlas holds fewer)") },
        { OPT_INT(0, "limit", &limit, "N", 0, 100000, "neurons listed (default 20; 0 lists none)") },
        { OPT_STRING(0, "plot", &o->plot, "FILE.svg", "also write the per-layer top-1 agreement as an SVG bar chart") },
        { OPT_CHOICE(0, "format", &o->format, "F", formats,
                     "table (default; with a per-layer bar chart), json, or tsv (one\n"
                     "row per neuron: matrix layer neuron top1_a token_a prob_a\n"
                     "top1_b token_b prob_b same jaccard spearman)") },
        { OPT_CHOICE(0, "norm", &norm, "N", norms, "full, gain or none (default: the atlases', else full)"),
          .seen = &o->d.norm_given },
        { OPT_STRING(0, "layers", &o->layers, "A-B", "layers compared (default all)") },
        { OPT_THREADS(&threads) },
        { OPT_STRING(0, "tokenizer", &o->tokenizer, "FILE", "llama2.c tokenizer .bin, for every llama2.c checkpoint given") },
        { OPT_FLAG(0, "progress", &o->progress, "progress bar on stderr even when it is not a terminal") },
        { OPT_STRING(0, "token", &o->token, "TEXT|#ID",
                     "follow one token through A and B (TSV: matrix layer neuron\n"
                     "logit_a logit_b delta rank_a rank_b prob_a prob_b, every neuron)") },
        { OPT_CHOICE(0, "by", &o->by, "M", bys, "--token: rank by the change of logit (default), prob or rank"),
          .seen = &by_given },
        { OPT_FLAG(0, "reverse", &o->reverse, "--token: largest decrease first"), .seen = &reverse_given },
        { OPT_FLAG(0, "first-piece", &o->first_piece, "--token TEXT of several tokens: its first") },
        { OPT_END() },
    };
    o->n_paths = options_parse(&help, opts, argc, argv);
    o->matrix = matrices[matrix];
    o->d.norm = (LensNorm)norm;
    o->d.top_k = (int)top_k, o->d.limit = (int)limit, o->d.threads = (int)threads;
    if (!o->token && (by_given || reverse_given || o->first_piece))
        die(NM_EINPUT, "diff: --by, --reverse and --first-piece go with --token");
    if (o->token && (o->matrices || o->plot))
        die(NM_EINPUT, "diff: --token compares one token across A and B; it takes neither --matrix-pair nor --plot");
    if (o->matrices) {
        if (o->n_paths != 1) die(NM_EINPUT, "diff: --matrix-pair compares the matrices of one MODEL|ATLAS; give exactly one");
        o->d.pair[0] = parse_matrices(o->matrices);
        o->d.n_pairs = 1;
        o->d.read_write = 1;
    } else {
        if (o->n_paths != 2) die(NM_EINPUT, "diff: expected two checkpoints A and B (see 'neuromap diff --help')");
        unsigned mask;
        lens_matrix_mask(o->matrix, &mask); /* one of its names: options_parse checked */
        for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++)
            if (mask & (1u << k)) o->d.pair[o->d.n_pairs++] = (DiffPair){ (MatrixKind)k, (MatrixKind)k };
    }
    for (int i = 0; i < o->n_paths; i++) o->path[i] = argv[1 + i];
}

/* ----------------------------------------------------------------------------
 * Table: summary, per-layer bar chart, listed neurons */

static void print_bar(double share) {
    enum { WIDTH = 40 };
    int filled = (int)(share * WIDTH + 0.5);
    putchar('|');
    for (int i = 0; i < WIDTH; i++) putchar(i < filled ? '#' : '.');
    putchar('|');
}

/* "token" prob, padded to width columns (0: not padded). */
static void print_listed_token(const TokenNames *tn, const LensToken *t, int width) {
    char *text = token_quoted(tn, t->id);
    char cell[64];
    snprintf(cell, sizeof cell, "%.44s %.3f", text, t->prob);
    int columns = text_columns(cell);
    printf("  %s%*s", cell, columns < width ? width - columns : 0, "");
    free(text);
}

static void print_table(const Options *o, const DiffSource *src, const DiffReport *r) {
    const DiffSource *a = &src[0];
    const DiffOptions *d = &r->opt;
    char name[16];
    if (d->read_write) {
        printf("%s: each neuron's %s vector against its %s vector (up/gate rows: what it reads, down columns: what it writes)\n",
               o->path[0], matrix_name(d->pair[0].a), matrix_name(d->pair[0].b));
    } else {
        printf("A: %s\nB: %s\n", o->path[0], o->path[1]);
    }
    for (int i = 0; i < o->n_paths; i++) {
        char content[24] = "unknown"; /* an atlas older than content identities */
        if (src[i].content_identity) snprintf(content, sizeof content, "%016llx", (unsigned long long)src[i].content_identity);
        printf("identity%s: content %s, layout %016llx\n", o->n_paths == 1 ? "" : i ? " B" : " A", content,
               (unsigned long long)src[i].identity);
    }
    printf("norm %s, top-%d lists, layers %ld-%ld, %d neurons per layer\n\n", lens_norm_name(d->norm), d->top_k, d->layer0,
           d->layer1, a->ffn_dim);
    printf("%-9s %8s %11s %10s %9s %9s\n", "matrix", "neurons", "top-1 same", "agreement", "jaccard", "spearman");
    for (int p = 0; p < d->n_pairs; p++) {
        const DiffTally *t = &r->per_pair[p];
        printf("%-9s %8lld %11lld %9.2f%% %9.4f %9.4f\n", diff_pair_name(d->pair[p], name, sizeof name), (long long)t->n,
               (long long)t->same, 100 * diff_share(t), diff_mean(t->jaccard, t), diff_mean(t->spearman, t));
    }
    if (d->n_pairs > 1)
        printf("%-9s %8lld %11lld %9.2f%% %9.4f %9.4f\n", "all", (long long)r->total.n, (long long)r->total.same,
               100 * diff_share(&r->total), diff_mean(r->total.jaccard, &r->total), diff_mean(r->total.spearman, &r->total));
    if (r->total.nonfinite)
        printf("non-finite: %lld neuron%s a NaN or an infinity on one side or both: not compared\n",
               (long long)r->total.nonfinite, r->total.nonfinite == 1 ? " holds" : "s hold");

    printf("\ntop-1 agreement per layer\n");
    for (int p = 0; p < d->n_pairs; p++) {
        for (int l = 0; l < r->n_layers; l++) {
            const DiffTally *t = &r->per_layer[(size_t)p * r->n_layers + l];
            printf("%-9s L%-4ld %6lld/%-6lld %6.1f%% ", diff_pair_name(d->pair[p], name, sizeof name), d->layer0 + l,
                   (long long)t->same, (long long)t->n, 100 * diff_share(t));
            print_bar(diff_share(t));
            putchar('\n');
        }
    }

    if (r->n_listed == 0) return;
    if (d->read_write)
        printf("\nneurons that write the token they read (strongest first)\n%-9s %5s %7s %8s %8s  %-24s  %s\n", "matrix",
               "layer", "neuron", "jaccard", "spearman", "reads (prob)", "writes (prob)");
    else
        printf("\nchanged most (top-1 before -> after, with probabilities)\n%-9s %5s %7s %8s %8s  %-24s  %s\n", "matrix",
               "layer", "neuron", "jaccard", "spearman", "before (prob)", "after (prob)");
    for (int i = 0; i < r->n_listed; i++) {
        const DiffNeuron *n = &r->listed[i];
        printf("%-9s %5d %7d %8.3f %8.3f", diff_pair_name(n->pair, name, sizeof name), n->layer, n->neuron, n->jaccard,
               n->spearman);
        print_listed_token(&a->names, &n->a, 24);
        print_listed_token(&a->names, &n->b, 0);
        putchar('\n');
    }
}

/* ----------------------------------------------------------------------------
 * JSON */

static void json_tally(cJSON *o, const DiffTally *t) {
    cJSON_AddNumberToObject(o, "n_neurons", (double)t->n);
    cJSON_AddNumberToObject(o, "top1_same", (double)t->same);
    cJSON_AddNumberToObject(o, "top1_agreement", diff_share(t));
    cJSON_AddNumberToObject(o, "jaccard", diff_mean(t->jaccard, t));
    cJSON_AddNumberToObject(o, "spearman", diff_mean(t->spearman, t));
    cJSON_AddNumberToObject(o, "nonfinite", (double)t->nonfinite);
}

/* {"layout","content"}: content null for an atlas older than content identities. */
static cJSON *json_identity(const DiffSource *s) {
    char hex[24];
    cJSON *o = cJSON_CreateObject();
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->identity);
    cJSON_AddStringToObject(o, "layout", hex);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->content_identity);
    if (s->content_identity) cJSON_AddStringToObject(o, "content", hex);
    else cJSON_AddNullToObject(o, "content");
    return o;
}

/* Token text as map's TSV escapes it, which is always valid UTF-8. */
static cJSON *json_token(const TokenNames *tn, const LensToken *t) {
    cJSON *o = cJSON_CreateObject();
    char *text = token_text(tn, t->id);
    cJSON_AddNumberToObject(o, "token_id", t->id);
    cJSON_AddStringToObject(o, "token", text);
    cJSON_AddNumberToObject(o, "prob", t->prob);
    free(text);
    return o;
}

static void print_json(const Options *o, const DiffSource *src, const DiffReport *r) {
    const DiffSource *a = &src[0];
    const DiffOptions *d = &r->opt;
    char name[16];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "a", o->path[0]);
    cJSON_AddStringToObject(root, "b", o->path[o->n_paths - 1]);
    cJSON_AddItemToObject(root, "a_identity", json_identity(&src[0]));
    cJSON_AddItemToObject(root, "b_identity", json_identity(&src[o->n_paths - 1]));
    cJSON_AddBoolToObject(root, "read_write", d->read_write);
    cJSON_AddStringToObject(root, "norm", lens_norm_name(d->norm));
    cJSON_AddNumberToObject(root, "top_k", d->top_k);
    cJSON_AddNumberToObject(root, "layer_first", (double)d->layer0);
    cJSON_AddNumberToObject(root, "layer_last", (double)d->layer1);
    json_tally(root, &r->total);
    cJSON *per_matrix = cJSON_AddArrayToObject(root, "per_matrix");
    cJSON *per_layer = cJSON_AddArrayToObject(root, "per_layer");
    for (int p = 0; p < d->n_pairs; p++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "matrix", diff_pair_name(d->pair[p], name, sizeof name));
        json_tally(m, &r->per_pair[p]);
        cJSON_AddItemToArray(per_matrix, m);
        for (int l = 0; l < r->n_layers; l++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "matrix", name);
            cJSON_AddNumberToObject(x, "layer", (double)(d->layer0 + l));
            json_tally(x, &r->per_layer[(size_t)p * r->n_layers + l]);
            cJSON_AddItemToArray(per_layer, x);
        }
    }
    cJSON *listed = cJSON_AddArrayToObject(root, d->read_write ? "read_write_neurons" : "changed");
    for (int i = 0; i < r->n_listed; i++) {
        const DiffNeuron *n = &r->listed[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "matrix", diff_pair_name(n->pair, name, sizeof name));
        cJSON_AddNumberToObject(x, "layer", n->layer);
        cJSON_AddNumberToObject(x, "neuron", n->neuron);
        cJSON_AddItemToObject(x, d->read_write ? "reads" : "before", json_token(&a->names, &n->a));
        cJSON_AddItemToObject(x, d->read_write ? "writes" : "after", json_token(&a->names, &n->b));
        cJSON_AddNumberToObject(x, "jaccard", n->jaccard);
        cJSON_AddNumberToObject(x, "spearman", n->spearman);
        cJSON_AddItemToArray(listed, x);
    }
    put_json(root, 0);
}

/* ----------------------------------------------------------------------------
 * TSV, one row per neuron as it is compared; and the progress bar */

typedef struct {
    const Options *o;
    const TokenNames *names;
    Progress prog;
    int64_t done;
} Stream;

static void on_neuron(void *ctx, const DiffNeuron *d) {
    Stream *s = ctx;
    if (s->o->format == OUT_TSV) {
        char name[16], *ta = token_text(s->names, d->a.id), *tb = token_text(s->names, d->b.id);
        printf("%s\t%d\t%d\t%d\t%s\t%.6g\t%d\t%s\t%.6g\t%d\t%.6f\t%.6f\n", diff_pair_name(d->pair, name, sizeof name), d->layer,
               d->neuron, d->a.id, ta, d->a.prob, d->b.id, tb, d->b.prob, d->a.id == d->b.id, d->jaccard, d->spearman);
        free(ta);
        free(tb);
    }
    if (++s->done % 1024 == 0) progress_update(&s->prog, s->done);
}

/* ----------------------------------------------------------------------------
 * SVG */

/* A checkpoint's name for a title: the file's name, or a directory's
 * (an HF model is a directory), without the folders above it. */
static const char *model_name(const char *path) {
    static char buf[2][256];
    static int i;
    char *b = buf[i++ % 2];
    snprintf(b, sizeof buf[0], "%s", path);
    size_t n = strlen(b);
    while (n > 1 && b[n - 1] == '/') b[--n] = 0;
    const char *slash = strrchr(b, '/');
    return slash ? slash + 1 : b;
}

static void write_plot(const Options *o, const DiffReport *r) {
    const DiffOptions *d = &r->opt;
    char names[3][16], title[1200], **groups = xcalloc((size_t)r->n_layers, sizeof *groups);
    const char *series[3];
    double *values = xmalloc((size_t)d->n_pairs * r->n_layers * sizeof *values);
    for (int p = 0; p < d->n_pairs; p++) {
        series[p] = diff_pair_name(d->pair[p], names[p], sizeof names[p]);
        for (int l = 0; l < r->n_layers; l++) values[(size_t)p * r->n_layers + l] = 100 * diff_share(&r->per_layer[(size_t)p * r->n_layers + l]);
    }
    for (int l = 0; l < r->n_layers; l++) {
        groups[l] = xmalloc(16);
        snprintf(groups[l], 16, "%ld", d->layer0 + l);
    }
    /* The checkpoints by name, not by path: a title wider than the chart is cut off */
    if (d->read_write)
        snprintf(title, sizeof title, "%s: neurons whose %s and %s decode to the same top-1 token", model_name(o->path[0]),
                 matrix_name(d->pair[0].a), matrix_name(d->pair[0].b));
    else
        snprintf(title, sizeof title, "top-1 agreement per layer: %s vs %s", model_name(o->path[0]), model_name(o->path[1]));
    SvgBars chart = { .title = title, .x_label = "layer", .y_label = "top-1 agreement (% of neurons; axis from 0)", .n_series = d->n_pairs,
                      .n_groups = r->n_layers, .series = series, .groups = (const char *const *)groups, .values = values,
                      .y_max = 100 };
    Error e = { 0 };
    int rc = svg_write_bars(o->plot, &chart, &e);
    for (int l = 0; l < r->n_layers; l++) free(groups[l]);
    free(groups);
    free(values);
    if (rc) error_exit(&e);
    fprintf(stderr, "diff: wrote %s\n", o->plot);
}

/* ----------------------------------------------------------------------------
 * --token: one token through A and B */

static void token_progress(void *ctx, int64_t done, int64_t total) { progress_update(ctx, done); }

/* "7.2e-05": probabilities span many decades; %.3g keeps three digits of each. */
static void print_token_table(const Options *o, const TokenNames *tn, int token, const TokenDiffReport *r) {
    const TokenDiffOptions *t = &r->opt;
    char *text = token_text(tn, token);
    printf("A: %s\nB: %s\n", o->path[0], o->path[1]);
    printf("token %d \"%s\", norm %s, layers %ld-%ld: %lld neurons compared, ranked by %s %s first\n", token, text,
           lens_norm_name(t->norm), t->layer0, t->layer1, (long long)r->n_rows, token_diff_by_name(t->by),
           t->reverse ? "decrease" : "increase");
    if (r->not_stored)
        printf("not compared: %lld neuron%s whose stored lists lack the token on one side or both (atlas)\n",
               (long long)r->not_stored, r->not_stored == 1 ? "" : "s");
    if (r->nonfinite)
        printf("not compared: %lld neuron%s a NaN or an infinity on one side or both\n", (long long)r->nonfinite,
               r->nonfinite == 1 ? " holds" : "s hold");
    int n = r->n_rows < o->d.limit ? (int)r->n_rows : o->d.limit;
    if (n > 0)
        printf("\n%-6s %5s %7s %9s %9s %9s %7s %7s %9s %9s\n", "matrix", "layer", "neuron", "logit_a", "logit_b", "delta",
               "rank_a", "rank_b", "prob_a", "prob_b");
    for (int i = 0; i < n; i++) {
        const TokenDiffRow *x = &r->rows[i];
        printf("%-6s %5d %7d %9.4f %9.4f ", matrix_name(x->matrix), x->layer, x->neuron, x->logit_a, x->logit_b);
        printf(t->by == TOKEN_DIFF_BY_PROB ? "%+9.3g" : t->by == TOKEN_DIFF_BY_RANK ? "%+9.0f" : "%+9.4f", x->delta);
        printf(" %7d %7d %9.3g %9.3g\n", x->rank_a, x->rank_b, x->prob_a, x->prob_b);
    }
    free(text);
}

static void print_token_tsv(const TokenDiffReport *r) {
    puts("matrix\tlayer\tneuron\tlogit_a\tlogit_b\tdelta\trank_a\trank_b\tprob_a\tprob_b");
    for (int64_t i = 0; i < r->n_rows; i++) {
        const TokenDiffRow *x = &r->rows[i];
        printf("%s\t%d\t%d\t%.7g\t%.7g\t%.7g\t%d\t%d\t%.7g\t%.7g\n", matrix_name(x->matrix), x->layer, x->neuron, x->logit_a,
               x->logit_b, x->delta, x->rank_a, x->rank_b, x->prob_a, x->prob_b);
    }
}

static void print_token_json(const Options *o, const TokenNames *tn, int token, const TokenDiffReport *r) {
    const TokenDiffOptions *t = &r->opt;
    cJSON *root = cJSON_CreateObject();
    char *text = token_text(tn, token);
    cJSON_AddStringToObject(root, "a", o->path[0]);
    cJSON_AddStringToObject(root, "b", o->path[1]);
    cJSON_AddNumberToObject(root, "token_id", token);
    cJSON_AddStringToObject(root, "token", text);
    cJSON_AddStringToObject(root, "norm", lens_norm_name(t->norm));
    cJSON_AddStringToObject(root, "by", token_diff_by_name(t->by));
    cJSON_AddBoolToObject(root, "reverse", t->reverse);
    cJSON_AddNumberToObject(root, "layer_first", (double)t->layer0);
    cJSON_AddNumberToObject(root, "layer_last", (double)t->layer1);
    cJSON_AddNumberToObject(root, "n_compared", (double)r->n_rows);
    cJSON_AddNumberToObject(root, "not_stored", (double)r->not_stored);
    cJSON_AddNumberToObject(root, "nonfinite", (double)r->nonfinite);
    cJSON *list = cJSON_AddArrayToObject(root, "neurons");
    for (int i = 0; i < r->n_rows && i < o->d.limit; i++) {
        const TokenDiffRow *x = &r->rows[i];
        cJSON *j = neuron_ref_json(x->matrix, x->layer, x->neuron);
        cJSON_AddNumberToObject(j, "logit_a", x->logit_a);
        cJSON_AddNumberToObject(j, "logit_b", x->logit_b);
        cJSON_AddNumberToObject(j, "delta", x->delta);
        cJSON_AddNumberToObject(j, "rank_a", x->rank_a);
        cJSON_AddNumberToObject(j, "rank_b", x->rank_b);
        cJSON_AddNumberToObject(j, "prob_a", x->prob_a);
        cJSON_AddNumberToObject(j, "prob_b", x->prob_b);
        cJSON_AddItemToArray(list, j);
    }
    free(text);
    put_json(root, 0);
}

static int run_token_diff(Options *o, DiffSource *src) {
    Error e = { 0 };
    DiffSource *a = &src[0], *b = &src[1];
    int token, pieces;
    if (api_token_arg(NULL, &a->names, a->atlas ? NULL : &a->m.vocab, o->token, o->first_piece, &token, &pieces, &e))
        die(NM_EINPUT, "diff: --token: %s", e.msg);
    if (pieces > 1) {
        char *first = token_text(&a->names, token);
        fprintf(stderr, "diff: '%s' is not a single token; using its first token of %d, %d \"%s\"\n", o->token, pieces,
                token, first);
        free(first);
    }
    TokenDiffOptions t = { .token = token, .layer0 = o->d.layer0, .layer1 = o->d.layer1, .norm = o->d.norm,
                           .norm_given = o->d.norm_given, .by = (TokenDiffBy)o->by, .reverse = o->reverse,
                           .threads = o->d.threads };
    lens_matrix_mask(o->matrix, &t.mask);
    Stream s = { .o = o };
    int64_t total = (int64_t)__builtin_popcount(t.mask) * (o->d.layer1 < 0 ? a->n_layers : o->d.layer1 - o->d.layer0 + 1) * a->ffn_dim;
    progress_start(&s.prog, "diff", total, o->progress || isatty(2));
    double t0 = now_seconds();
    TokenDiffReport r;
    if (token_diff_run(a, b, &t, &r, token_progress, &s.prog, &e)) die(e.code, "diff: %s", e.msg);
    progress_end(&s.prog);
    fprintf(stderr, "diff: token %d followed through %lld neurons in %.2f s\n", token, (long long)r.n_rows, now_seconds() - t0);
    if (o->format == OUT_TABLE) print_token_table(o, &a->names, token, &r);
    else if (o->format == OUT_JSON) print_token_json(o, &a->names, token, &r);
    else print_token_tsv(&r);
    if (fflush(stdout) != 0) die(NM_ERUNTIME, "diff: cannot write to stdout");
    token_diff_free(&r);
    for (int i = 0; i < o->n_paths; i++) diff_source_close(&src[i]);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The command */

int cmd_diff(int argc, char **argv) {
    Options o;
    parse_options(argc, argv, &o);
    Error e = { 0 };
    DiffSource src[2];
    for (int i = 0; i < o.n_paths; i++)
        if (diff_source_open(&src[i], o.path[i], o.tokenizer, &e)) error_exit(&e);
    DiffSource *a = &src[0], *b = &src[o.n_paths - 1];
    if (o.layers && parse_range(o.layers, 0, a->n_layers - 1, &o.d.layer0, &o.d.layer1, &e)) die(NM_EINPUT, "diff: --layers: %s", e.msg);
    if (o.token) return run_token_diff(&o, src);
    if (diff_prepare(a, b, &o.d, &e)) die(e.code, "diff: %s", e.msg);

    Stream s = { .o = &o, .names = &a->names };
    int64_t total = (int64_t)o.d.n_pairs * (o.d.layer1 - o.d.layer0 + 1) * a->ffn_dim;
    progress_start(&s.prog, "diff", total, o.progress || isatty(2));
    if (o.format == OUT_TSV)
        puts("matrix\tlayer\tneuron\ttop1_a\ttoken_a\tprob_a\ttop1_b\ttoken_b\tprob_b\tsame\tjaccard\tspearman");
    double t0 = now_seconds();
    DiffReport r;
    if (diff_run(a, b, &o.d, &r, on_neuron, &s, &e)) die(e.code, "diff: %s", e.msg);
    progress_end(&s.prog);
    fprintf(stderr, "diff: %lld neurons compared in %.2f s\n", (long long)r.total.n, now_seconds() - t0);

    if (o.format == OUT_TABLE) print_table(&o, src, &r);
    else if (o.format == OUT_JSON) print_json(&o, src, &r);
    if (o.plot) write_plot(&o, &r);
    if (fflush(stdout) != 0) die(NM_ERUNTIME, "diff: cannot write to stdout");
    diff_report_free(&r);
    for (int i = 0; i < o.n_paths; i++) diff_source_close(&src[i]);
    return NM_OK;
}
