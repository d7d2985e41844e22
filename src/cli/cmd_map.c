/* cmd_map.c — `neuromap map MODEL`: decode every chosen MLP neuron through
 * the final norm and the LM head (lens.c) and keep its top and bottom
 * tokens, in an SQLite atlas (atlas.c) or as TSV / JSON lines. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/mpi.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "map",
    .usage = "usage: neuromap map MODEL [-o ATLAS] [--matrix up|gate|down|all] [--layers A-B] [--neurons A-B]\n"
             "                    [--top-k K] [--bottom-k K] [--norm full|gain|none] [--threads N]\n"
             "                    [--format sqlite|tsv|jsonl] [--force] [--resume] [--progress] [--tokenizer FILE]\n"
             "                    [--kernel auto|native|openblas] [--prefilter [--prob-tol X]] [--shard I/N]\n",
    .about = "Decodes MLP neurons through the final RMSNorm and the LM head (Davies 2025): for each\n"
             "neuron, the K tokens with the highest and the K with the lowest logits, with softmax\n"
             "probabilities over the full vocabulary. A neuron is row N of up_proj / gate_proj, or\n"
             "column N of down_proj.\n",
};

enum { OUT_SQLITE, OUT_TSV, OUT_JSONL };

typedef struct {
    const char *output, *layers, *neurons, *tokenizer, *matrix, *shard;
    long top_k, bottom_k, threads;
    int norm;   /* LensNorm */
    int kernel; /* LensKernel */
    double prob_tol;
    int format, force, resume, progress, prefilter, prob_tol_set;
} MapOptions;

static void parse_options(int argc, char **argv, MapOptions *o, const char **model) {
    static const char *const matrices[] = { "up", "gate", "down", "all", NULL };
    static const char *const norms[] = { "full", "gain", "none", NULL };
    static const char *const formats[] = { [OUT_SQLITE] = "sqlite", [OUT_TSV] = "tsv", [OUT_JSONL] = "jsonl", NULL };
    static const char *const kernels[] = { [LENS_KERNEL_AUTO] = "auto", [LENS_KERNEL_OPENBLAS] = "openblas",
                                           [LENS_KERNEL_NATIVE] = "native", NULL };
    *o = (MapOptions){ .top_k = 10, .bottom_k = 5, .norm = NORM_FULL, .format = OUT_SQLITE, .prob_tol = 1e-4 };
    int matrix = 0;
    Option opts[] = {
        { OPT_STRING('o', "output", &o->output, "ATLAS", "SQLite atlas to write (default: MODEL's name + .atlas.db here)") },
        { OPT_CHOICE(0, "matrix", &matrix, "M", matrices, "up (default), gate, down, or all") },
        { OPT_STRING(0, "layers", &o->layers, "A-B", "layers to map, inclusive (default: all; '3' is layer 3 alone)") },
        { OPT_STRING(0, "neurons", &o->neurons, "A-B", "neurons of each layer to map, inclusive (default: all)") },
        { OPT_INT(0, "top-k", &o->top_k, "K", 0, 1 << 22, "highest-logit tokens per neuron (default 10)") },
        { OPT_INT(0, "bottom-k", &o->bottom_k, "K", 0, 1 << 22, "lowest-logit tokens per neuron (default 5)") },
        { OPT_CHOICE(0, "norm", &o->norm, "N", norms,
                     "full (default): W_U (g * w / rms(w)); gain: W_U (g * w); none: W_U w") },
        { OPT_THREADS(&o->threads) },
        { OPT_CHOICE(0, "format", &o->format, "F", formats,
                     "sqlite (default), tsv (stdout: matrix layer neuron rank token_id\n"
                     "token logit prob; rank -1 is the lowest logit) or jsonl (stdout)") },
        { OPT_FLAG(0, "force", &o->force, "overwrite an existing atlas (and discard an interrupted run's ATLAS.partial)") },
        { OPT_FLAG(0, "resume", &o->resume, "continue an interrupted run from ATLAS.partial (same model and options)") },
        { OPT_FLAG(0, "progress", &o->progress, "progress bar on stderr even when it is not a terminal") },
        { OPT_TOKENIZER(&o->tokenizer) },
        { OPT_CHOICE(0, "kernel", &o->kernel, "K", kernels,
                     "the FP32 product: native (neuromap's AVX2/AVX-512 kernel, one FMA chain\n"
                     "per logit), openblas (sgemm), or auto (default: native where the CPU has\n"
                     "AVX2). Both are exact FP32; their logits may differ in the last bit.\n"
                     "NEUROMAP_ISA=generic|avx2|avx512|avx512bf16|amx forces a kernel set") },
        { OPT_FLAG(0, "prefilter", &o->prefilter,
                   "a BF16 pass first (twice the FP32 rate), then exact FP32 logits for the\n"
                   "tokens its proven error bound cannot rule out: token ids and logits are\n"
                   "those of --kernel native, bit for bit; each neuron's normaliser keeps a\n"
                   "proven bound (jsonl: lse_bound) or is computed exactly (see --prob-tol)") },
        { OPT_FLOAT(0, "prob-tol", &o->prob_tol, "X", 0, INFINITY,
                    "with --prefilter, the widest bound kept on |lse error| (the probabilities'\n"
                    "relative error, about); wider ones get the exact normaliser, a full FP32\n"
                    "pass for that neuron, which skips the BF16 pass where its bound could\n"
                    "not meet X anyway (default 1e-4; 'inf' never)"),
          .seen = &o->prob_tol_set },
        { OPT_STRING(0, "shard", &o->shard, "I/N",
                     "map only shard I (0..N-1) of N and write it as a part atlas (-o PART);\n"
                     "'neuromap merge' joins the parts. Under mpirun/srun the ranks split the\n"
                     "map the same way by themselves (docs/DISTRIBUTED.md)") },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    *model = argv[1];
    o->matrix = matrices[matrix];
    if (o->resume && o->format != OUT_SQLITE) die(NM_EINPUT, "map: --resume continues an atlas; --format %s writes to stdout", o->format == OUT_TSV ? "tsv" : "jsonl");
    if (o->prob_tol_set && !o->prefilter) die(NM_EINPUT, "map: --prob-tol sets the prefilter's bound; add --prefilter");
    if (o->prefilter && o->kernel == LENS_KERNEL_OPENBLAS)
        die(NM_EINPUT, "map: --prefilter rescores with the native kernel; it cannot be combined with --kernel openblas");
    if (o->output && o->format != OUT_SQLITE) die(NM_EINPUT, "map: -o names an atlas; --format %s writes to stdout", o->format == OUT_TSV ? "tsv" : "jsonl");
}


/* Neurons whose weights or logits are not finite: how many, and the first
 * few by name ("up 1:5"), for the warning that ends the run. */
enum { NONFINITE_NAMED = 5 };
typedef struct {
    int64_t n;
    char first[NONFINITE_NAMED * 24];
} Nonfinite;

static void note_nonfinite(Nonfinite *b, MatrixKind k, int layer, int neuron) {
    if (b->n++ >= NONFINITE_NAMED) return;
    size_t len = strlen(b->first);
    snprintf(b->first + len, sizeof b->first - len, "%s%s %d:%d", len ? ", " : "", matrix_name(k), layer, neuron);
}

/* A bar for each of the lens's preparations (Lens.progress). */
typedef struct {
    Progress p;
    const char *what;
    int on;
} PrepBar;

static void prep_progress(void *ctx, const char *what, int64_t done, int64_t total) {
    PrepBar *b = ctx;
    if (b->what != what) progress_start(&b->p, what, total, b->on), b->what = what;
    progress_update(&b->p, done);
    if (done == total) progress_end(&b->p), b->what = NULL;
}

/* What the map found, in one line: the tokens that are most often a
 * neuron's top token. */
static void print_summary(const TokenNames *tn, const int64_t *top1, int vocab) {
    enum { SHOW = 8 };
    int best[SHOW], n = 0;
    for (int v = 0; v < vocab; v++) {
        if (!top1[v] || (n == SHOW && top1[best[SHOW - 1]] >= top1[v])) continue;
        int i = n < SHOW ? n++ : SHOW - 1; /* insertion into the best so far, most frequent first */
        while (i > 0 && top1[best[i - 1]] < top1[v]) { best[i] = best[i - 1]; i--; }
        best[i] = v;
    }
    fprintf(stderr, "map: most frequent top tokens:");
    for (int i = 0; i < n; i++) {
        char *text = token_text(tn, best[i]);
        fprintf(stderr, "%s \"%s\" x%lld", i ? "," : "", text, (long long)top1[best[i]]);
        free(text);
    }
    fputc('\n', stderr);
}

/* Where a chunk's results go: the atlas or stdout, and the run's tallies.
 * Rank 0 of an MPI run stores the other ranks' chunks here too. */
typedef struct {
    const MapOptions *o;
    Atlas *atlas;
    const TokenNames *names;
    int64_t *top1;
    Nonfinite *bad;
    Progress *prog;
    int64_t done;
} Sink;

static void store_chunk(Sink *s, MatrixKind k, int layer, int first, int count, const LensResult *res) {
    const MapOptions *o = s->o;
    Error e = { 0 };
    for (int i = 0; i < count; i++) {
        const LensResult *r = &res[i];
        if (r->nonfinite) note_nonfinite(s->bad, k, layer, first + i);
        else if (o->top_k) s->top1[r->top[0].id]++;
        if (o->format == OUT_TSV) neuron_tsv(stdout, s->names, k, layer, first + i, r, (int)o->top_k, (int)o->bottom_k);
        else if (o->format == OUT_JSONL) neuron_jsonl(stdout, s->names, k, layer, first + i, r, (int)o->top_k, (int)o->bottom_k);
        else if (atlas_add(s->atlas, k, layer, first + i, r, (int)o->top_k, (int)o->bottom_k, &e)) {
            atlas_close_partial(s->atlas);
            error_exit(&e);
        }
    }
    if (s->atlas && atlas_checkpoint(s->atlas, &e)) {
        atlas_close_partial(s->atlas);
        error_exit(&e);
    }
    progress_update(s->prog, s->done += count);
}

/* Rank 0 of an MPI run: stores the chunks the other ranks have sent, until
 * none is waiting (wait 0) or until every rank has said it is done. */
static void gather(Sink *s, int *ranks_left, int wait, LensResult *rb) {
    MpiChunk c;
    int got;
    while (*ranks_left > 0 && (got = mpi_recv_results(wait, (int)s->o->top_k, (int)s->o->bottom_k, &c, rb)))
        if (got == 2) (*ranks_left)--;
        else store_chunk(s, (MatrixKind)c.matrix, c.layer, c.first, c.count, rb);
}

/* A computed chunk on its way out: sent to rank 0 (ranks > 0), or stored
 * with whatever the other ranks have sent meanwhile (rank 0); then counted
 * for the test-only abort hook. map runs it beside the next chunk's decode
 * (lens_decode_beside), on the main thread, so that writing one chunk
 * overlaps computing the next. */
typedef struct {
    Sink *sink;
    MpiSender *sender;
    int rank, *ranks_left;
    LensResult *rb;
    long abort_after;
    int64_t computed;
    MatrixKind k; /* the chunk */
    int layer, first, count;
    const LensResult *res;
} Emit;

static void emit_chunk(void *arg) {
    Emit *x = arg;
    if (x->rank > 0) {
        mpi_send_results(x->sender, &(MpiChunk){ x->k, x->layer, x->first, x->count }, x->res);
    } else {
        store_chunk(x->sink, x->k, x->layer, x->first, x->count, x->res);
        gather(x->sink, x->ranks_left, 0, x->rb); /* and, between its own chunks, what the ranks have sent */
    }
    x->computed += x->count;
    if (x->abort_after >= 0 && x->computed >= x->abort_after) {
        if (x->rank > 0) mpi_sender_flush(x->sender);
        raise(SIGKILL);
    }
}

/* The chunks of ranges r[0..n): each range cut every CHUNK neurons from its start. */
static int count_chunks(const NeuronRange *r, int n) {
    int c = 0;
    for (int j = 0; j < n; j++) c += (r[j].count + SHARD_CHUNK - 1) / SHARD_CHUNK;
    return c;
}

/* skip[c] = 1 for each chunk the partial atlas holds whole (--resume);
 * returns the neurons skipped. */
static int64_t stored_chunks(Atlas *a, const NeuronRange *r, int n, unsigned char *skip) {
    int64_t skipped = 0;
    int c = 0;
    for (int j = 0; j < n; j++)
        for (int first = r[j].first, end = r[j].first + r[j].count; first < end; first += SHARD_CHUNK, c++) {
            int count = end - first < SHARD_CHUNK ? end - first : SHARD_CHUNK;
            skip[c] = atlas_stored(a, r[j].matrix, r[j].layer, first, count) == count;
            if (skip[c]) skipped += count;
        }
    return skipped;
}

int cmd_map(int argc, char **argv) {
    MapOptions o;
    const char *model_path;
    parse_options(argc, argv, &o, &model_path);
    /* Under mpirun/srun every rank runs this same command line: rank r maps
     * shard r of size, and rank 0 gathers and writes (cli/mpi.h). */
    MpiWorld w;
    mpi_start(&w, "map");
    int shard = 0, n_shards = 1;
    Error se = { 0 };
    if (o.shard && shard_parse(o.shard, &shard, &n_shards, &se)) die(NM_EINPUT, "map: --shard: %s", se.msg);
    if (o.shard && w.size > 1) die(NM_EINPUT, "map: --shard is for separate jobs; under mpirun the %d ranks split the map themselves", w.size);
    if (w.size > 1) shard = w.rank, n_shards = w.size;
    if ((o.shard || w.size > 1) && o.format != OUT_SQLITE) die(NM_EINPUT, "map: a split map writes an atlas, not --format tsv|jsonl (export prints it)");
    if ((o.shard || w.size > 1) && o.prefilter)
        die(NM_EINPUT, "map: --prefilter cannot be split: whether it stays on depends on the neurons mapped before");
    if (o.shard && !o.output) die(NM_EINPUT, "map: --shard writes a part atlas: name it with -o PART");
    unsigned mask;
    lens_matrix_mask(o.matrix, &mask); /* one of its names: parse_options checked */
    Model m;
    open_model_or_exit(&m, model_path, o.tokenizer, 1);
    const Config *c = &m.cfg;
    Error e = { 0 };
    long l0 = 0, l1 = c->n_layers - 1, n0 = 0, n1 = c->ffn_dim - 1;
    if (o.layers && parse_range(o.layers, 0, c->n_layers - 1, &l0, &l1, &e)) die(NM_EINPUT, "map: --layers: %s", e.msg);
    if (o.neurons && parse_range(o.neurons, 0, c->ffn_dim - 1, &n0, &n1, &e)) die(NM_EINPUT, "map: --neurons: %s", e.msg);
    if (o.top_k > c->vocab_size || o.bottom_k > c->vocab_size)
        die(NM_EINPUT, "map: --top-k and --bottom-k must not exceed the vocabulary (%d tokens)", c->vocab_size);
    /* This process's neurons: shard_ranges (the whole set for 0 of 1). */
    int n_units = 3 * (int)(l1 - l0 + 1);
    NeuronRange *ranges = xmalloc((size_t)n_units * sizeof *ranges);
    int n_ranges = shard_ranges(mask, (int)l0, (int)l1, (int)n0, (int)n1, shard, n_shards, ranges);
    int64_t total = shard_count(ranges, n_ranges);
    /* Every rank slices the vocabulary alike (lse's last bits depend on
     * it): they all use rank 0's thread count. */
    if (w.size > 1) {
        int t = o.threads ? (int)o.threads : cpu_count();
        mpi_bcast_int(&w, &t);
        o.threads = t;
    }
    uint64_t content = model_content_identity(&m);
    if (!mpi_all_same(&w, content))
        die(NM_EINPUT, "map: %s: the ranks read different models there (content identities differ); every node needs the same file", model_path);

    Lens L;
    PrepBar bar = { .on = o.progress || isatty(2) };
    if (lens_open(&L, &m, o.norm, (int)o.threads, 0, &e)) error_exit(&e);
    L.progress = prep_progress, L.progress_ctx = &bar;
    L.dequantise = total >= 256; /* many neurons: convert a non-F32 head once (with a bar); a few: per tile */
    lens_set_kernel(&L, o.prefilter ? LENS_KERNEL_NATIVE : o.kernel); /* the prefilter rescores with ours */

    Atlas *atlas = NULL;
    char *default_name = NULL;
    if (o.format == OUT_SQLITE && w.rank == 0) {
        const char *path = o.output ? o.output : (default_name = default_atlas_name(model_path));
        /* Everything that can change a stored number is recorded, so that a
         * resume with another model or other options is refused. */
        AtlasInfo info = { .identity = m.identity, .content_identity = content, .n_layers = c->n_layers,
                           .dim = c->dim, .ffn_dim = c->ffn_dim, .vocab_size = c->vocab_size, .norm = o.norm,
                           .top_k = (int)o.top_k, .bottom_k = (int)o.bottom_k, .prefilter = o.prefilter,
                           .prob_tol = o.prefilter ? o.prob_tol : 0, .threads = L.threads,
                           .shard = o.shard ? shard : 0, .n_shards = o.shard ? n_shards : 0 };
        snprintf(info.kernel, sizeof info.kernel, "%s", L.native ? "native" : "openblas");
        snprintf(info.model_path, sizeof info.model_path, "%s", model_path);
        snprintf(info.model_format, sizeof info.model_format, "%s", format_name(m.format));
        snprintf(info.matrices, sizeof info.matrices, "%s", mask == 7u ? "up,gate,down" : o.matrix);
        snprintf(info.layers, sizeof info.layers, "%ld-%ld", l0, l1);
        snprintf(info.neurons, sizeof info.neurons, "%ld-%ld", n0, n1);
        /* A kill (SIGINT included) leaves PATH.partial, committed up to the last chunk, for --resume. */
        if (atlas_begin(&atlas, path, o.force, o.resume, &m, &info, &e)) error_exit(&e);
        fprintf(stderr, "map: writing %s (via %s)\n", path, atlas_temp_path(atlas));
        if (w.size > 1)
            fprintf(stderr, "map: %d ranks (started by %s), results gathered by rank 0; should one fail, --resume "
                    "continues from what rank 0 committed\n", w.size, mpi_launcher());
    }

    L.row_tiles = total >= SHARD_CHUNK; /* a chunk or more: the head packed for the product pays (lens.h) */
    if (o.prefilter && lens_enable_prefilter(&L, o.prob_tol, &e)) error_exit(&e);
    if (cpu_note()) fprintf(stderr, "map: note: %s\n", cpu_note());
    if (o.prefilter && cpu_kernel_isa() < ISA_AVX512BF16)
        fprintf(stderr, "map: warning: kernel set %s has no AVX-512 BF16; the prefilter's BF16 pass %s than the exact map\n",
                isa_name(cpu_kernel_isa()), cpu_kernel_isa() == ISA_GENERIC ? "runs in portable C, far slower" : "is emulated, no faster");
    TokenNames names = lens_vocab_names(&m.vocab);
    if (o.format == OUT_TSV) neuron_tsv_header(stdout);

    /* Chunks of a layer: enough neurons to keep every thread busy, few
     * enough that the vectors stay small (1024 × 4096 floats for 8B). The
     * shards cut layers only between chunks (store/shard.h). */
    enum { CHUNK = SHARD_CHUNK };
    float *vecs = xmalloc((size_t)CHUNK * c->dim * sizeof *vecs);
    LensBatch b[2], rb; /* b: this chunk's results and the previous one's (being written); rb: a rank's chunk, received by rank 0 */
    lens_batch_init(&b[0], CHUNK, (int)o.top_k, (int)o.bottom_k);
    lens_batch_init(&b[1], CHUNK, (int)o.top_k, (int)o.bottom_k);
    lens_batch_init(&rb, w.rank == 0 && w.size > 1 ? CHUNK : 1, (int)o.top_k, (int)o.bottom_k);
    Progress prog;
    /* Rank 0's bar counts every rank's neurons; the others show none. */
    int64_t whole = (int64_t)__builtin_popcount(mask) * (l1 - l0 + 1) * (n1 - n0 + 1);
    progress_start(&prog, "map", w.size > 1 ? whole : total, w.rank == 0 && (o.progress || isatty(2)));
    int64_t *top1 = xcalloc((size_t)c->vocab_size, sizeof *top1);
    Nonfinite bad = { 0 };
    Sink sink = { .o = &o, .atlas = atlas, .names = &names, .top1 = top1, .bad = &bad, .prog = &prog };
    double t0 = now_seconds();
    int64_t skipped = 0, skipped_prefilter = 0;

    /* --resume: the chunks the partial holds whole are skipped. Only rank 0
     * has the atlas, so it tells each rank which of its chunks to skip. */
    int n_chunks = count_chunks(ranges, n_ranges);
    unsigned char *skip = xcalloc((size_t)n_chunks + 1, 1);
    if (o.resume && w.rank == 0) {
        skipped = stored_chunks(atlas, ranges, n_ranges, skip);
        NeuronRange *rr = xmalloc((size_t)n_units * sizeof *rr);
        for (int r = 1; r < w.size; r++) {
            int nr = shard_ranges(mask, (int)l0, (int)l1, (int)n0, (int)n1, r, w.size, rr), nc = count_chunks(rr, nr);
            unsigned char *sk = xcalloc((size_t)nc + 1, 1);
            skipped += stored_chunks(atlas, rr, nr, sk);
            mpi_send_bytes(r, sk, (size_t)nc + 1);
            free(sk);
        }
        free(rr);
    } else if (o.resume) {
        mpi_recv_bytes(0, skip, (size_t)n_chunks + 1);
    }
    progress_update(&prog, sink.done += skipped); /* committed by the interrupted run */

    MpiSender sender;
    mpi_sender_init(&sender, (int)o.top_k, (int)o.bottom_k);
    int ranks_left = w.rank == 0 ? w.size - 1 : 0;
    /* Test-only hook (tests/cli_atlas_safety.sh, cli_mpi.sh): die by
     * SIGKILL once this many neurons are committed (sent, by a rank other
     * than 0), as a kill mid-run would; NEUROMAP_TEST_ABORT_RANK picks the
     * rank that dies. */
    const char *abort_env = getenv("NEUROMAP_TEST_ABORT_AFTER"), *abort_rank = getenv("NEUROMAP_TEST_ABORT_RANK");
    long abort_after = abort_env && parse_long(abort_env, &abort_after) ? abort_after : -1;
    if (abort_rank && atoi(abort_rank) != w.rank) abort_after = -1;
    Emit out = { .sink = &sink, .sender = &sender, .rank = w.rank, .ranks_left = &ranks_left, .rb = rb.r, .abort_after = abort_after };
    int pending = 0, cur = 0; /* pending: out holds the previous chunk, not yet written */
    for (int ri = 0, ci = 0; ri < n_ranges; ri++) {
        MatrixKind k = ranges[ri].matrix;
        int layer = ranges[ri].layer, end = ranges[ri].first + ranges[ri].count;
        for (int first = ranges[ri].first; first < end; first += CHUNK, ci++) {
            int count = end - first < CHUNK ? end - first : CHUNK;
            if (skip[ci]) continue;
            lens_neuron_vectors(&L, k, layer, first, count, vecs);
            lens_decode_beside(&L, vecs, count, (int)o.top_k, (int)o.bottom_k, b[cur].r, pending ? emit_chunk : NULL, &out);
            if (L.prefilter && !lens_prefilter_pays(&L)) L.prefilter = 0;
            else if (o.prefilter && !L.prefilter) skipped_prefilter += count;
            out.k = k, out.layer = layer, out.first = first, out.count = count, out.res = b[cur].r;
            pending = 1, cur ^= 1;
        }
    }
    if (pending) emit_chunk(&out);
    if (w.rank > 0) mpi_send_done(&sender);
    gather(&sink, &ranks_left, 1, rb.r); /* rank 0, its own part done: the rest */
    mpi_sender_free(&sender);
    free(skip);
    free(ranges);
    lens_batch_free(&rb);
    progress_end(&prog);
    if (w.rank > 0) goto done; /* its results are rank 0's to write and report */
    if (w.size > 1) total = whole;
    double seconds = now_seconds() - t0;
    if (skipped) fprintf(stderr, "map: resumed: %lld neurons were already in the partial atlas\n", (long long)skipped);
    if (atlas && skipped) /* the interrupted run's non-finite neurons count too */
        bad.n = atlas_nonfinite_names(atlas, NONFINITE_NAMED, bad.first, sizeof bad.first);
    if (atlas && atlas_commit(atlas, &e)) error_exit(&e);
    if (fflush(stdout) != 0) die(NM_ERUNTIME, "map: cannot write to stdout");
    fprintf(stderr, "map: %lld neurons in %.2f s: %.1f neurons/s, %.1f GFLOP/s (%d threads, %s kernel, %s%s)\n",
            (long long)total, seconds, seconds > 0 ? (double)total / seconds : 0.0,
            seconds > 0 ? lens_flops(&L, total) / seconds / 1e9 : 0.0, L.threads, lens_kernel_name(&L),
            isa_name(cpu_kernel_isa()), o.prefilter ? ", prefilter" : "");
    if (lens_kernel_why(&L)) fprintf(stderr, "map: kernel: %s, chosen for kernel set %s: %s\n", lens_kernel_name(&L),
                                     isa_name(cpu_kernel_isa()), lens_kernel_why(&L));
    if (o.prefilter && L.stats->neurons) {
        long long n = L.stats->neurons, exact = L.stats->exact_lse, routed = L.stats->routed;
        char rescored[96] = "", without[96] = "";
        if (n > routed)
            snprintf(rescored, sizeof rescored, "%.1f logits per neuron computed exactly after the BF16 pass; ",
                     (double)L.stats->rescored / (double)(n - routed));
        if (routed)
            snprintf(without, sizeof without, ", %lld of them without the BF16 pass (their bounds could not meet it)", routed);
        fprintf(stderr, "map: prefilter: %s%lld of %lld normalisers computed exactly (bound > %g)%s; widest bound kept on "
                "|lse error|: %.3g\n", rescored, exact, n, o.prob_tol, without, (double)L.stats->max_bound);
        if (skipped_prefilter)
            fprintf(stderr, "map: prefilter: the other %lld neurons were mapped exactly: nearly every normaliser needed "
                    "the exact pass (--prob-tol inf keeps the proven bounds instead)\n",
                    (long long)skipped_prefilter);
        else if (2 * exact > n)
            fprintf(stderr, "map: note: most normalisers needed the exact FP32 pass, so most neurons were mapped exactly; "
                    "--prob-tol inf keeps every (proven) bound instead\n");
    }
    if (o.top_k) print_summary(&names, top1, c->vocab_size);
    if (bad.n) /* last, so that it is the line a user sees */
        fprintf(stderr, "map: warning: %lld neuron%s non-finite weights (NaN or Inf in the vector or its logits), "
                "listed without tokens: %s%s\n", (long long)bad.n, bad.n == 1 ? " has" : "s have", bad.first,
                bad.n > NONFINITE_NAMED ? ", ..." : "");
done:
    free(top1);
    lens_batch_free(&b[0]);
    lens_batch_free(&b[1]);
    free(vecs);
    free(default_name);
    lens_close(&L);
    model_close(&m);
    mpi_end(&w);
    return NM_OK;
}
