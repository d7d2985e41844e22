/* cmd_activations.c — `neuromap activations MODEL --corpus FILE`: run a
 * corpus, keep each neuron's statistics and strongest examples in the atlas;
 * and `neuromap show ATLAS L:N --examples`, which reads them back. */
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/mpi.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "activations",
    .usage = "usage: neuromap activations MODEL --corpus FILE [-o ATLAS] [--top-n 20] [--bottom-n 20] [--window 256]\n"
             "                            [--max-tokens N] [--layers A-B] [--threads N] [--seed S] [--resume] [--force]\n"
             "                            [--progress] [--tokenizer FILE] [--shard I/N [--bands BANDS]]\n",
    .about = "Runs a corpus through the model and keeps, for every MLP neuron, the statistics of its\n"
             "activation silu(gate.x)*(up.x) (count, mean, std, min, max, density, GLU sign cases, a\n"
             "32-bin histogram), its top and bottom examples and 5 random examples from each quantile\n"
             "band (0.5-0.9, 0.9-0.99, 0.99-1), in an atlas: a new one, or added to a map's atlas.\n"
             "'neuromap show ATLAS L:N --examples' shows them; 'neuromap agreement ATLAS' tests them\n"
             "against what the weights say. Under mpirun the ranks split the documents; for job arrays,\n"
             "--shard I/N runs pass 1 of a shard, 'neuromap merge' joins the parts into BANDS, --shard\n"
             "I/N --bands BANDS runs pass 2, and merging BANDS with those parts gives the atlas, equal\n"
             "to a single run's (docs/DISTRIBUTED.md).\n",
};


/* "pass 1/2  120/1000 documents  35.2 documents/s  2700 tokens/s": the
 * rates of this process so far, both passes together. */
static void draw_progress(int pass, int doc, int n_docs, int64_t docs, int64_t tokens, double t0, int force) {
    static double last;
    double now = now_seconds(), s = now - t0;
    if (!force && now - last < 0.25) return;
    last = now;
    fprintf(stderr, "\ractivations: pass %d/2  %d/%d documents  %.1f documents/s  %.0f tokens/s   ", pass, doc, n_docs,
            s > 0 ? docs / s : 0.0, s > 0 ? (double)tokens / s : 0.0);
}

static _Noreturn void fail(ActStore *store, const Error *e) {
    act_store_close_partial(store); /* kept for --resume */
    error_exit(e);
}

/* Under mpirun: every rank's state after a pass travels to rank 0, which
 * merges it into its own (exactly: activations.h), in rank order. */
static void gather_states(const MpiWorld *w, ActRun *run, ActStore *store) {
    if (w->size == 1) return;
    if (w->rank > 0) {
        size_t n;
        unsigned char *buf = act_run_pack(run, &n);
        mpi_send_blob(0, buf, n);
        free(buf);
        return;
    }
    ActRun part;
    Error e = { 0 };
    if (act_run_init(&part, run->m, run->l0, run->l1, run->top_n, run->bottom_n, run->window, run->max_tokens, run->seed, &e))
        fail(store, &e);
    for (int r = 1; r < w->size; r++) {
        size_t n;
        unsigned char *buf = mpi_recv_blob(r, &n);
        if (act_run_unpack(&part, buf, n, &e) || act_run_merge(run, &part, &e)) fail(store, &e);
        free(buf);
    }
    act_run_free(&part);
}

/* Rank 0's band edges to every rank, which starts pass 2 with them. */
static void share_bands(const MpiWorld *w, ActRun *run) {
    if (w->size == 1) return;
    size_t n = act_run_neurons(run) * 3;
    double *q = xmalloc(n * sizeof *q);
    if (w->rank == 0) act_run_quantiles(run, q);
    mpi_bcast_blob(w, q, n * sizeof *q);
    if (w->rank > 0) act_run_begin_pass2_part(run, q);
    free(q);
}

int cmd_activations(int argc, char **argv) {
    Error e0 = { 0 };
    const char *corpus = NULL, *output = NULL, *layers = NULL, *tokenizer = NULL, *shard_arg = NULL, *bands = NULL;
    long top_n = 20, bottom_n = 20, window = 256, threads = 0, max_tokens = -1, seed = 0;
    int resume = 0, force = 0, progress = 0;
    Option opts[] = {
        { OPT_STRING(0, "corpus", &corpus, "FILE", ".txt (one document per line) or .jsonl (a \"text\" per line)") },
        { OPT_STRING('o', "output", &output, "ATLAS",
                     "the atlas (default: MODEL's name + .atlas.db here); an existing\n"
                     "atlas of the same model gets the activations added") },
        { OPT_INT(0, "top-n", &top_n, "N", 0, 1 << 16, "strongest examples kept per neuron (default 20)") },
        { OPT_INT(0, "bottom-n", &bottom_n, "N", 0, 1 << 16, "most negative examples kept per neuron (default 20)") },
        { OPT_INT(0, "window", &window, "N", 2, 1 << 24, "tokens per window, BOS included (default 256, at most the context)") },
        { OPT_INT(0, "max-tokens", &max_tokens, "N", 1, LONG_MAX, "stop after N counted tokens (default: the whole corpus;\n"
                                                                    "not with mpirun or --shard)") },
        { OPT_STRING(0, "layers", &layers, "A-B", "layers to record (default: all)") },
        { OPT_THREADS(&threads) },
        { OPT_INT(0, "seed", &seed, "S", 0, LONG_MAX, "seed of the band samples (default 0)") },
        { OPT_FLAG(0, "resume", &resume, "continue an interrupted run (ATLAS.partial; under mpirun too)") },
        { OPT_FLAG(0, "force", &force, "replace the activations an atlas holds, or a partial run") },
        { OPT_FLAG(0, "progress", &progress, "progress on stderr even when it is not a terminal") },
        { OPT_TOKENIZER(&tokenizer) },
        { OPT_STRING(0, "shard", &shard_arg, "I/N",
                     "run only shard I (0..N-1) of N of the documents, as a part (-o PART):\n"
                     "pass 1; with --bands, pass 2 ('neuromap merge' joins the parts)") },
        { OPT_STRING(0, "bands", &bands, "BANDS", "the merged pass-1 parts (their band edges), for --shard's pass 2") },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    if (!corpus) die(NM_EINPUT, "activations: --corpus FILE is required");
    int shard = 0, n_shards = 0;
    if (shard_arg && shard_parse(shard_arg, &shard, &n_shards, &e0)) die(NM_EINPUT, "activations: --shard: %s", e0.msg);
    if (bands && !shard_arg) die(NM_EINPUT, "activations: --bands is for a shard's pass 2: give --shard I/N too");
    if (shard_arg && !output) die(NM_EINPUT, "activations: --shard writes a part: name it with -o PART");
    if (shard_arg && max_tokens >= 0)
        die(NM_EINPUT, "activations: --max-tokens cannot be split among shards: which tokens count depends on every document before");
    /* Under mpirun/srun every rank runs this command line: the ranks split
     * the documents, rank 0 merges their states and writes (cli/mpi.h). */
    MpiWorld w;
    mpi_start(&w, "activations");
    if (w.size > 1 && shard_arg) die(NM_EINPUT, "activations: --shard is for separate jobs; under mpirun the %d ranks split the documents themselves", w.size);
    if (w.size > 1 && max_tokens >= 0)
        die(NM_EINPUT, "activations: --max-tokens cannot be split among ranks: which tokens count depends on every document before");
    const char *model_path = argv[1];
    Error e = { 0 };
    Model m = { 0 };
    open_model_or_exit(&m, model_path, tokenizer, 1);
    long l0 = 0, l1 = m.cfg.n_layers - 1;
    if (layers && parse_range(layers, 0, m.cfg.n_layers - 1, &l0, &l1, &e)) die(NM_EINPUT, "activations: --layers: %s", e.msg);
    if (window > m.cfg.max_seq_len)
        die(NM_EINPUT, "activations: --window %ld exceeds the model's context of %d tokens", window, m.cfg.max_seq_len);

    ActCorpus corp;
    Tokenizer *tok;
    if (act_corpus_open(&corp, corpus, &e) || tokenizer_new(&m.vocab, &tok, &e)) error_exit(&e);
    if (!mpi_all_same(&w, model_content_identity(&m)))
        die(NM_EINPUT, "activations: %s: the ranks read different models there (content identities differ); every node needs the same file",
            model_path);
    if (!mpi_all_same(&w, corp.hash))
        die(NM_EINPUT, "activations: %s: the ranks read different corpora there (contents differ); every node needs the same file", corpus);
    ActInfo info = { .corpus_hash = corp.hash, .corpus_bytes = (int64_t)corp.file.size, .n_docs = corp.n_docs,
                     .window = (int)window, .top_n = (int)top_n, .bottom_n = (int)bottom_n, .l0 = (int)l0, .l1 = (int)l1,
                     .max_tokens = max_tokens, .seed = (uint64_t)seed, .shard = shard, .n_shards = n_shards,
                     .stage = !shard_arg ? ACT_STAGE_RUN : bands ? ACT_STAGE_PASS2 : ACT_STAGE_PASS1,
                     .content = shard_arg ? model_content_identity(&m) : 0 };
    double *q = NULL; /* a pass-2 part's band edges */
    if (bands) {
        q = xmalloc((size_t)(l1 - l0 + 1) * (size_t)m.cfg.ffn_dim * 3 * sizeof *q);
        if (act_bands_read(bands, m.identity, &info, q, &info.bands_hash, &e)) error_exit(&e);
    }
    char *abs = realpath(corpus, NULL);
    snprintf(info.corpus, sizeof info.corpus, "%s", abs ? abs : corpus);
    free(abs);

    char *default_name = NULL;
    const char *path = output ? output : (default_name = default_atlas_name(model_path));
    ActRun run;
    ActStore *store = NULL;
    Forward *f;
    int resumed = 0, next_doc = 0;
    if (act_run_init(&run, &m, (int)l0, (int)l1, (int)top_n, (int)bottom_n, (int)window, max_tokens, (uint64_t)seed, &e) ||
        (w.rank == 0 && act_store_begin(&store, path, force, resume, &m, &info, &resumed, &e)))
        error_exit(&e);
    if (q) act_run_begin_pass2_part(&run, q);
    free(q);
    if (resumed && act_store_load(store, &run, &next_doc, &e)) fail(store, &e);
    if (forward_new(&m, (int)window, (int)threads, &f, &e)) fail(store, &e);
    if (resumed) fprintf(stderr, "activations: resuming %s at pass %d, document %d\n", act_store_temp_path(store), run.pass, next_doc);
    if (w.size > 1 && w.rank == 0)
        fprintf(stderr, "activations: %d ranks (started by %s) split the documents; rank 0 merges and writes; should one "
                "fail, --resume continues from rank 0's last pass\n", w.size, mpi_launcher());
    /* Where rank 0 is (a resumed run): every rank starts there. */
    mpi_bcast_int(&w, &run.pass);
    mpi_bcast_int(&w, &next_doc);
    if (run.pass == 2) share_bands(&w, &run);

    /* Test-only hook (tests/cli_activations.sh, cli_mpi_activations.sh): die
     * by SIGKILL once this many documents have run (and, in a single
     * process, been checkpointed), as a kill would; under mpirun,
     * NEUROMAP_TEST_ABORT_RANK picks the rank that dies. */
    const char *abort_env = getenv("NEUROMAP_TEST_ABORT_AFTER"), *abort_rank = getenv("NEUROMAP_TEST_ABORT_RANK");
    long abort_after = abort_env && parse_long(abort_env, &abort_after) ? abort_after : -1;
    if (abort_rank && atoi(abort_rank) != w.rank) abort_after = -1;
    int show = w.rank == 0 && (progress || isatty(2));
    double t0 = now_seconds(), last_checkpoint = t0;
    int64_t tokens_run = 0, docs_run = 0;
    for (; run.pass <= 2; next_doc = 0) {
        /* This rank's documents of those left: all of them in a single process. */
        int first, last;
        if (shard_arg) { /* a shard's documents are fixed; a resumed part continues in them */
            act_corpus_part(&corp, shard, n_shards, 0, &first, &last);
            if (next_doc > first) first = next_doc;
        } else {
            act_corpus_part(&corp, w.rank, w.size, next_doc, &first, &last);
        }
        for (int d = first; d < last && (max_tokens < 0 || run.tokens < max_tokens); d++) {
            int *ids, n;
            int64_t before = run.tokens;
            if (act_corpus_tokens(&corp, tok, d, &ids, &n, &e) || act_run_doc(&run, f, d, ids, n, &e)) fail(store, &e);
            free(ids);
            tokens_run += run.tokens - before;
            docs_run++;
            if (show) draw_progress(run.pass, d + 1, last, docs_run, tokens_run, t0, 0);
            /* A checkpoint writes every neuron's state: every 30 s, not per
             * document; under mpirun only between passes, once merged. */
            int aborting = abort_after >= 0 && docs_run >= abort_after;
            if (w.size == 1 && (aborting || now_seconds() - last_checkpoint > 30)) {
                if (act_store_checkpoint(store, &run, d + 1, &e)) fail(store, &e);
                last_checkpoint = now_seconds();
            }
            if (aborting) raise(SIGKILL);
        }
        gather_states(&w, &run, store);
        if (run.pass == 2 || shard_arg) break; /* a part runs one pass */
        if (w.rank == 0) {
            act_run_begin_pass2(&run);
            if (act_store_checkpoint(store, &run, 0, &e)) fail(store, &e);
        }
        share_bands(&w, &run);
    }
    if (show) {
        draw_progress(2, corp.n_docs, corp.n_docs, docs_run, tokens_run, t0, 1);
        fputc('\n', stderr);
    }
    if (w.rank > 0) goto done; /* its state is rank 0's to write */
    double seconds = now_seconds() - t0;
    size_t count = (size_t)(l1 - l0 + 1) * (size_t)m.cfg.ffn_dim;
    int *readings[5];
    for (int i = 0; i < 5; i++) readings[i] = xmalloc(count * sizeof(int));
    if (shard_arg) {
        /* What the weights say is the pass-2 parts' to read, a share of the
         * layers each (the merge takes them from whichever part has them). */
        long n = l1 - l0 + 1, a = l0 + n * shard / n_shards, b = l0 + n * (shard + 1) / n_shards - 1;
        for (int i = 0; i < 5; i++)
            for (size_t k = 0; k < count; k++) readings[i][k] = -1;
        int *sub[5];
        for (int i = 0; i < 5; i++) sub[i] = readings[i] + (size_t)(a - l0) * m.cfg.ffn_dim;
        if ((bands && a <= b && agreement_readings(&m, (int)threads, (int)a, (int)b, sub, &e)) ||
            act_store_commit_part(store, &run, &corp, tok, (const int *const *)readings, &e))
            error_exit(&e);
        int f0, f1;
        act_corpus_part(&corp, shard, n_shards, 0, &f0, &f1);
        fprintf(stderr, "activations: %s: pass %d of shard %d/%d, documents %d-%d of %d (%lld tokens) in %.2f s; next: merge "
                "the parts%s\n", path, run.pass, shard, n_shards, f0, f1 - 1, corp.n_docs, (long long)run.tokens, seconds,
                bands ? " with BANDS into the atlas" : " into BANDS for pass 2");
        for (int i = 0; i < 5; i++) free(readings[i]);
        goto done;
    }
    act_run_finish(&run);
    if (agreement_readings(&m, (int)threads, (int)l0, (int)l1, readings, &e) ||
        act_store_commit(store, &run, &corp, tok, (const int *const *)readings, &e))
        error_exit(&e);
    /* Rates (a resumed run counts only what it ran; under mpirun, what every
     * rank ran); each token goes through the model twice, once per pass. */
    if (w.size > 1) tokens_run = 2 * run.tokens, docs_run = 2 * (int64_t)corp.n_docs;
    fprintf(stderr, "activations: %d documents, %lld tokens, 2 passes in %.2f s: %.1f documents/s, %.0f tokens/s "
            "(%.0f forward tokens/s; %d threads%s)\n", corp.n_docs, (long long)run.tokens, seconds,
            seconds > 0 ? docs_run / 2.0 / seconds : 0.0, seconds > 0 ? tokens_run / 2.0 / seconds : 0.0,
            seconds > 0 ? tokens_run / seconds : 0.0, forward_n_threads(f), w.size > 1 ? " a rank" : "");
    for (int i = 0; i < 5; i++) free(readings[i]);
done:
    forward_free(f);
    act_run_free(&run);
    tokenizer_free(tok);
    act_corpus_close(&corp);
    free(default_name);
    model_close(&m);
    mpi_end(&w);
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * show ATLAS L:N --examples */

static const CommandHelp show_help = {
    .name = "show",
    .usage = "usage: neuromap show ATLAS L:N --examples [--around 12] [--format table|json] [--row gate|up]\n"
             "                     [--through head|embed]\n",
    .about = "The activations `neuromap activations` stored for neuron N of layer L: statistics, the top\n"
             "and bottom examples and the quantile-band samples, each with --around tokens of context\n"
             "either side (the example token in [[ ]]), what the weights say the neuron reads and\n"
             "writes, and whether the examples agree (see 'neuromap agreement --help').\n",
};

static void print_examples(const ActAtlas *a, const char *title, const ActExample *x, int n, int around) {
    printf("%s\n%5s %10s %10s %10s %6s %4s %4s  %s\n", title, "rank", "act", "gate", "up", "doc", "win", "pos", "context");
    for (int i = 0; i < n; i++) {
        char *ctx = act_example_context(a, &x[i], around, 1);
        printf("%5d %10.4f %10.4f %10.4f %6d %4d %4d  %s\n", i + 1, x[i].act, x[i].gate, x[i].up, x[i].doc, x[i].window, x[i].pos, ctx);
        free(ctx);
    }
}

static void print_test(const TokenNames *tn, const char *what, const AgreementTest *t) {
    char *s = token_text(tn, t->token);
    printf("  %-28s \"%s\": %d of %d top examples (chance %.3g): lift %.3g, p %.3g\n", what, s, t->hits, t->trials, t->chance,
           t->lift, t->p);
    free(s);
}

/* The weight map's lists for this neuron, when the atlas holds a map too. */
static void print_weights(const char *path, int layer, int neuron) {
    Atlas *m;
    Error e = { 0 };
    if (atlas_open(&m, path, &e)) return;
    const AtlasInfo *in = atlas_info(m);
    TokenNames tn = atlas_token_names(m);
    LensBatch b;
    lens_batch_init(&b, 1, in->top_k, in->bottom_k);
    for (int k = MATRIX_UP; k <= MATRIX_DOWN; k++) {
        int n_top, n_bottom;
        if (atlas_neuron(m, (MatrixKind)k, layer, neuron, &b.r[0], &n_top, &n_bottom, &e)) continue;
        printf("  map, %s row/column (norm %s), top:", matrix_name((MatrixKind)k), lens_norm_name(in->norm));
        for (int i = 0; i < n_top && i < 5; i++) {
            char *txt = token_text(&tn, b.r[0].top[i].id);
            printf(" \"%s\" %.3g", txt, b.r[0].top[i].prob);
            free(txt);
        }
        printf("\n");
    }
    lens_batch_free(&b);
    atlas_close(m);
}

int show_examples(int argc, char **argv) {
    static const char *const formats[] = { "table", "json", NULL }; /* index = json */
    static const char *const throughs[] = { "head", "embed", NULL }; /* index = embed */
    static const char *const rows[] = { "gate", "up", NULL };       /* row = 1: gate, as agreement_neuron takes it */
    long around = 12, threads = 0;
    int json = 0, embed = 0, row_choice = 0, examples = 0;
    Option opts[] = {
        { OPT_FLAG(0, "examples", &examples, "the activations stored by 'neuromap activations' (this help)") },
        { OPT_INT(0, "around", &around, "N", 0, 1 << 20, "tokens of context either side of each example (default 12)") },
        { OPT_CHOICE(0, "format", &json, "F", formats, "table (default) or json") },
        { OPT_CHOICE(0, "row", &row_choice, "R", rows, "the row that reads: gate (default) or up (see 'neuromap agreement --help')") },
        { OPT_CHOICE(0, "through", &embed, "T", throughs, "the row's reading: head (default) or embed") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    if (options_parse(&show_help, opts, argc, argv) != 2)
        die(NM_EINPUT, "show: expected ATLAS and a neuron L:N (see 'neuromap show --examples --help')");
    int row = row_choice == 0;
    const char *path = argv[1];
    int layer, neuron;
    Error e = { 0 };
    if (parse_neuron(argv[2], &layer, &neuron, &e)) die(NM_EINPUT, "show: %s", e.msg);
    if (!atlas_is_atlas(path)) die(NM_EINPUT, "show: %s: --examples reads an atlas (made by 'neuromap activations')", path);
    ActAtlas *a;
    if (act_atlas_open(&a, path, &e)) error_exit(&e);
    const ActInfo *in = act_atlas_info(a);
    if (json) {
        Atlas *map = NULL;
        cJSON *o;
        if (act_atlas_has_map(a) && atlas_open(&map, path, &e)) map = NULL;
        if (act_neuron_json(a, map, layer, neuron, (int)around, row, embed, &o, &e)) error_exit(&e);
        atlas_close(map);
        act_atlas_close(a);
        put_json(o, 1);
        return NM_OK;
    }
    ActNeuronView v;
    if (act_view_load(a, layer, neuron, row, embed, &v, &e)) error_exit(&e);
    const ActNeuron s = v.s; /* copies of the handles, read only */
    const NeuronAgreement ag = v.ag;
    TokenNames tn = act_atlas_token_names(a);
    const char *status = act_corpus_status(in);
    double cnt = s.count ? (double)s.count : 1;
    printf("activations of %d:%d  (corpus %s%s, %lld tokens, window %d)\n", layer, neuron, in->corpus,
           strcmp(status, "ok") == 0 ? ""
           : strcmp(status, "moved") == 0 ? ": moved since the run; context from the token ids the atlas stores"
                                          : ": changed since the run; context from the token ids the atlas stores",
           (long long)in->tokens, in->window);
    printf("  count %lld  mean %.5g  std %.5g  min %.5g  max %.5g  density %.4f\n", (long long)s.count, s.mean,
           sqrt(s.m2 / cnt), s.min, s.max, (double)s.positive / cnt);
    printf("  sign cases (gate, up):");
    for (int i = 0; i < ACT_SIGN_CASES; i++) printf("  %s %.4f", act_sign_case_names[i], (double)s.sign[i] / cnt);
    printf("\n  quantiles: q50 %.5g  q90 %.5g  q99 %.5g (from the histogram)\n  histogram:", s.q[0], s.q[1], s.q[2]);
    for (int b = 0; b < ACT_HIST_BINS; b++)
        if (s.hist[b]) printf("  [%.4g, %.4g) %lld", act_hist_lo(b), act_hist_hi(b), (long long)s.hist[b]);
    printf("\n");
    if (act_atlas_has_map(a)) print_weights(path, layer, neuron);
    print_test(&tn, "writes (down column):", &ag.writes);
    char what[64];
    snprintf(what, sizeof what, "reads (%s row, %s):", row ? "gate" : "up", embed ? "embeddings" : "LM head");
    print_test(&tn, what, &ag.reads);
    print_examples(a, "top examples", s.top, s.n_top, (int)around);
    print_examples(a, "bottom examples", s.bottom, s.n_bottom, (int)around);
    static const char *const band_title[ACT_BANDS] = { "band 0.5-0.9", "band 0.9-0.99", "band 0.99-1" };
    for (int b = 0; b < ACT_BANDS; b++) print_examples(a, band_title[b], s.band[b], s.n_band[b], (int)around);
    act_view_free(&v);
    act_atlas_close(a);
    return NM_OK;
}
