/* cmd_find.c — `neuromap find MODEL|ATLAS TEXT`: the neurons that most
 * promote a token.
 *
 * On a model every neuron is ranked, exactly, by the token's logit under the
 * chosen norm: one matrix-vector product per layer (the layer's normed
 * vectors times the token's row of the head). The best --limit neurons are
 * then decoded over the full vocabulary, for the token's rank within each
 * and each one's top token. On an atlas, the stored top-k lists are searched.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "find",
    .usage = "usage: neuromap find MODEL|ATLAS TEXT [--matrix up|gate|down|all] [--limit N] [--first-piece]\n"
             "                     [--norm full|gain|none] [--agreement] [--format table|tsv|json] [--threads N]\n"
             "                     [--tokenizer FILE]\n",
    .about = "Lists the neurons whose direction most promotes the token TEXT, by that token's logit\n"
             "through the final RMSNorm and the LM head (the logit `map` reports), with the token's\n"
             "rank within each neuron's distribution (1 = its top token) and the neuron's top token.\n"
             "TEXT is #ID (a token id), a piece as stored (\"▁dog\") or the token as written, with\n"
             "real spaces, tried in that order: \" dog\" is the word-initial form (a word inside a\n"
             "sentence), \"dog\" the form that starts a text or follows no space; `neuromap tokenize`\n"
             "shows which. Text of several tokens is refused, naming them (--first-piece: the first).\n"
             "On an atlas, only the stored top-k lists are searched.\n",
};

typedef LensHit Hit;

static void find_progress(void *ctx, int64_t done, int64_t total) { progress_update(ctx, done); }

/* The token TEXT names (api_token_arg: #ID, a stored piece, or text);
 * exit 2 when it is several tokens and not first_piece. v: NULL on an atlas. */
static int text_token(const TokenNames *tn, const Vocab *v, const char *text, int first_piece, const char *atlas) {
    Error e = { 0 };
    int id, n;
    if (api_token_arg("find", tn, v, text, first_piece, &id, &n, &e)) {
        if (atlas && text[0] != '#') /* as the Python API's Atlas.find says it */
            die(NM_EINPUT, "find: '%s' is not a token of %s's vocabulary (an atlas cannot tokenize; give the model)", text, atlas);
        error_exit(&e);
    }
    if (n > 1) {
        char *first = token_text(tn, id);
        fprintf(stderr, "find: '%s' is not a single token; using its first token of %d, %d \"%s\"\n", text, n, id, first);
        free(first);
    }
    return id;
}

/* with_prob (--by given): the token's probability, appended (TSV) or after rank (table). */
static void print_hits(const TokenNames *tn, const Hit *hits, int n, int tsv, int agreement, int with_prob) {
    if (tsv) printf("matrix\tlayer\tneuron\tlogit\trank\ttop_token%s%s\n", agreement ? "\tpartner\tpartner_top\tagree" : "",
                    with_prob ? "\tprob" : "");
    else if (with_prob) printf("%-6s %6s %8s %11s %8s %9s  %s\n", "matrix", "layer", "neuron", "logit", "rank", "prob",
                               agreement ? "top_token         partner  partner_top       agree" : "top_token");
    else printf("%-6s %6s %8s %11s %8s  %s\n", "matrix", "layer", "neuron", "logit", "rank",
                agreement ? "top_token         partner  partner_top       agree" : "top_token");
    for (int i = 0; i < n; i++) {
        const Hit *h = &hits[i];
        char *top = tsv ? token_text(tn, h->top_id) : token_quoted(tn, h->top_id);
        if (tsv)
            printf("%s\t%d\t%d\t%.7g\t%d\t%s", matrix_name(h->matrix), h->layer, h->neuron, h->logit, h->rank, top);
        else if (with_prob)
            printf("%-6s %6d %8d %11.5f %8d %9.3g  %s%*s", matrix_name(h->matrix), h->layer, h->neuron, h->logit, h->rank,
                   h->prob, top, agreement ? 16 - text_columns(top) : 0, "");
        else
            printf("%-6s %6d %8d %11.5f %8d  %s%*s", matrix_name(h->matrix), h->layer, h->neuron, h->logit, h->rank, top,
                   agreement ? 16 - text_columns(top) : 0, "");
        if (agreement) {
            char *other = tsv ? token_text(tn, h->partner_top) : token_quoted(tn, h->partner_top);
            const char *side = matrix_name(lens_partner(h->matrix));
            int same = h->partner_top == h->top_id;
            if (tsv) printf("\t%s\t%s\t%d", side, other, same);
            else printf("  %-7s  %s%*s  %s", side, other, 16 - text_columns(other), "", same ? "yes" : "no");
            free(other);
        }
        if (tsv && with_prob) printf("\t%.7g", h->prob);
        putchar('\n');
        free(top);
    }
}

/* by: NULL, or --by's name: then "by" and each neuron's "prob" are added. */
static void print_json(const TokenNames *tn, int token, const char *matrix, LensNorm norm, const char *source, int limit,
                       int64_t nonfinite, const Hit *hits, int n, int agreement, const char *by) {
    cJSON *o = find_json(tn, token, matrix, norm, source, limit, nonfinite, hits, n, agreement);
    if (by) {
        cJSON_AddStringToObject(o, "by", by);
        cJSON *x = cJSON_GetObjectItem(o, "neurons");
        for (int i = 0; i < n; i++) cJSON_AddNumberToObject(cJSON_GetArrayItem(x, i), "prob", hits[i].prob);
    }
    char *s = cJSON_PrintUnformatted(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

static void say_skipped(int64_t nonfinite) {
    if (nonfinite)
        fprintf(stderr, "find: skipped %lld neuron%s with non-finite weights (NaN or Inf in the vector or its logits)\n",
                (long long)nonfinite, nonfinite == 1 ? "" : "s");
}

/* Atlas hits by probability (highest first) or rank (best first), then logit. */
static int atlas_hit_cmp(const void *pa, const void *pb, void *by) {
    const AtlasHit *a = pa, *b = pb;
    double ka = *(int *)by == LENS_BY_PROB ? a->prob : -(double)a->rank, kb = *(int *)by == LENS_BY_PROB ? b->prob : -(double)b->rank;
    if (ka != kb) return ka < kb ? 1 : -1;
    if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
    if (a->matrix != b->matrix) return (int)a->matrix - (int)b->matrix;
    return a->layer != b->layer ? a->layer - b->layer : a->neuron - b->neuron;
}

int cmd_find(int argc, char **argv) {
    static const char *const matrices[] = { "up", "gate", "down", "all", NULL };
    static const char *const norms[] = { "full", "gain", "none", NULL };
    static const char *const formats[] = { "table", "tsv", "json", NULL };
    enum { FIND_TABLE, FIND_TSV, FIND_JSON }; /* formats[] */
    const char *tokenizer = NULL;
    static const char *const bys[] = { [LENS_BY_LOGIT] = "logit", [LENS_BY_PROB] = "prob", [LENS_BY_RANK] = "rank", NULL };
    int matrix_i = 0, norm = NORM_FULL, format = FIND_TABLE, norm_given = 0, agreement = 0, first_piece = 0;
    int by = LENS_BY_LOGIT, by_given = 0;
    long limit = 20, threads = 0;
    Option opts[] = {
        { OPT_CHOICE(0, "matrix", &matrix_i, "M", matrices, "up (default), gate, down or all") },
        { OPT_INT(0, "limit", &limit, "N", 1, 10000, "neurons to list (default 20)") },
        { OPT_CHOICE(0, "norm", &norm, "N", norms, "full (default), gain or none (see 'neuromap map --help')"),
          .seen = &norm_given },
        { OPT_FLAG(0, "agreement", &agreement,
                   "also decode what each neuron writes (its down column; for a down\n"
                   "neuron, what it reads: its up row) and say whether the two top\n"
                   "tokens agree: read-and-write neurons are the ones that steer (on an\n"
                   "atlas, from the stored lists: it must hold both matrices)") },
        { OPT_CHOICE(0, "format", &format, "F", formats,
                     "table (default), tsv: matrix layer neuron logit rank top_token\n"
                     "[partner partner_top agree], or json (one document: README)") },
        { OPT_CHOICE(0, "by", &by, "M", bys,
                     "rank neurons by the token's logit (default), prob (its probability\n"
                     "in the neuron) or rank (its place in the neuron's distribution);\n"
                     "prob and rank decode every neuron in full, as long as `map`. Given,\n"
                     "each neuron's prob is shown (TSV: a last column prob)"), .seen = &by_given },
        { OPT_FLAG(0, "first-piece", &first_piece, "TEXT of several tokens: search its first token (without BOS)") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_TOKENIZER(&tokenizer) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 2, "MODEL|ATLAS and TEXT");
    const char *matrix = matrices[matrix_i];
    unsigned mask;
    lens_matrix_mask(matrix, &mask); /* one of its names: options_parse checked */
    const char *path = argv[1], *text = argv[2];
    int text_len = (int)strlen(text);
    if (text_len == 0) die(NM_EINPUT, "find: TEXT is empty");
    Error e = { 0 };

    if (atlas_is_atlas(path)) {
        Atlas *a;
        if (atlas_open(&a, path, &e)) error_exit(&e);
        if (norm_given && norm != (int)atlas_info(a)->norm)
            die(NM_EINPUT, "find: %s was mapped with --norm %s; use the model for --norm %s", path,
                lens_norm_name(atlas_info(a)->norm), lens_norm_name(norm));
        TokenNames tn = atlas_token_names(a);
        int token = text_token(&tn, NULL, text, first_piece, path);
        const char *held = atlas_info(a)->matrices;
        for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
            if ((mask & (1u << k)) && !strstr(held, matrix_name((MatrixKind)k)) && strcmp(held, "all") && strcmp(matrix, "all"))
                die(NM_EINPUT, "find: %s holds no %s neurons (it maps %s); give --matrix %s, or map them", path,
                    matrix_name((MatrixKind)k), held, held);
        }
        AtlasHit *found;
        int n;
        /* by prob or rank: every stored hit, then sorted; by logit, the atlas's own order */
        int want = by == LENS_BY_LOGIT ? (int)limit : (int)(atlas_count_neurons(a) < 1 ? 1 : atlas_count_neurons(a));
        if (atlas_find(a, token, mask, want, &found, &n, &e)) error_exit(&e);
        if (by != LENS_BY_LOGIT) {
            qsort_r(found, (size_t)n, sizeof *found, atlas_hit_cmp, &by);
            if (n > limit) n = (int)limit;
        }
        fprintf(stderr, "find: token %d; searching the top-%d lists stored in %s\n", token, atlas_info(a)->top_k, path);
        int64_t nonfinite = atlas_count_nonfinite(a, mask); /* stored without lists: never found */
        say_skipped(nonfinite);
        Hit *hits = xcalloc((size_t)n + 1, sizeof *hits);
        for (int i = 0; i < n; i++)
            hits[i] = (Hit){ found[i].matrix, found[i].layer, found[i].neuron, found[i].rank, found[i].top_id, found[i].logit, -1, found[i].prob };
        /* --agreement: the partner's stored top-1 (an up neuron's down column, a down neuron's up row) */
        for (int i = 0; agreement && i < n; i++) {
            MatrixKind partner = lens_partner(hits[i].matrix);
            if (!strstr(held, matrix_name(partner)) && strcmp(held, "all"))
                die(NM_EINPUT, "find: --agreement needs the model, or an atlas that holds the %s neurons too (%s maps %s: map --matrix all)",
                    matrix_name(partner), path, held);
            LensBatch pb;
            int pt, pbot;
            lens_batch_init(&pb, 1, atlas_info(a)->top_k, atlas_info(a)->bottom_k);
            if (atlas_neuron(a, partner, hits[i].layer, hits[i].neuron, &pb.r[0], &pt, &pbot, &e)) error_exit(&e);
            hits[i].partner_top = pt > 0 && !pb.r[0].nonfinite ? pb.r[0].top[0].id : -1;
            lens_batch_free(&pb);
        }
        if (format == FIND_JSON)
            print_json(&tn, token, matrix, atlas_info(a)->norm, "atlas", (int)limit, nonfinite, hits, n, agreement,
                       by_given ? bys[by] : NULL);
        else print_hits(&tn, hits, n, format == FIND_TSV, agreement, by_given);
        free(found);
        free(hits);
        atlas_close(a);
        return NM_OK;
    }

    Model m;
    open_model_or_exit(&m, path, tokenizer, 1);
    TokenNames tn = lens_vocab_names(&m.vocab);
    int token = text_token(&tn, &m.vocab, text, first_piece, NULL);
    Lens L;
    if (lens_open(&L, &m, norm, 1, 0, &e)) error_exit(&e);
    lens_set_kernel(&L, LENS_KERNEL_NATIVE); /* one kernel for the ranking and the decode: see rank_all_neurons */
    int64_t total = (int64_t)__builtin_popcount(mask) * m.cfg.n_layers * m.cfg.ffn_dim, nonfinite = 0;
    if (limit > total) limit = total;
    fprintf(stderr, "find: token %d; ranking %lld neurons by its %s (norm %s)\n", token, (long long)total,
            by == LENS_BY_PROB ? "probability" : by == LENS_BY_RANK ? "rank" : "logit", lens_norm_name(norm));
    Hit *hits = xcalloc((size_t)limit, sizeof *hits);
    Progress prog;
    progress_start(&prog, "find", total, isatty(2));
    int n = lens_find_by(&L, mask, token, (int)limit, agreement, (LensFindBy)by, hits, &nonfinite, find_progress, &prog);
    progress_end(&prog);
    say_skipped(nonfinite);
    if (format == FIND_JSON) print_json(&tn, token, matrix, norm, "model", (int)limit, nonfinite, hits, n, agreement, by_given ? bys[by] : NULL);
    else print_hits(&tn, hits, n, format == FIND_TSV, agreement, by_given);
    free(hits);
    lens_close(&L);
    model_close(&m);
    return NM_OK;
}
