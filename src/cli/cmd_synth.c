/* cmd_synth.c — `neuromap synth`: synthetic Llama checkpoints for tests and
 * benchmarks, with planted neurons whose concept is known in advance.
 *
 * The checkpoint itself (shapes, seeded weights, the built-in vocabulary, the
 * HF and GGUF writers) is src/synth; this file reads the options, writes the
 * output atomically (a temporary name, renamed when complete, removed when
 * interrupted) and reports what it wrote.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "synth",
    .usage = "usage: neuromap synth OUT [options]\n",
    .about = "Writes a synthetic Llama checkpoint: random N(0, std^2) matrices from a seeded,\n"
             "deterministic generator, and optionally planted neurons, whose up/gate rows are\n"
             "a chosen token's unembedding direction, so that the neuron map must name that\n"
             "token. OUT is a Hugging Face directory (model.safetensors, config.json,\n"
             "tokenizer.json), or a GGUF file when it ends in .gguf. It is written under a\n"
             "temporary name and renamed when complete; an existing OUT is kept unless --force.\n",
};

/* ----------------------------------------------------------------------------
 * Atomic output: write under OUT.tmp-PID, rename over OUT when complete */

/* Removes a directory this command wrote (regular files only, no recursion). */
static void remove_written_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    char path[4096];
    while ((ent = readdir(d)))
        if (ent->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* An existing OUT may be replaced (with --force) when it is what synth writes:
 * a file for GGUF, or for HF an empty directory or one holding a config.json —
 * never an arbitrary directory that happens to be named. */
static void check_replaceable(const char *out, int gguf, int force) {
    if (!path_exists(out)) return;
    if (!force) die(NM_EINPUT, "synth: %s already exists (use --force to replace it)", out);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (gguf && path_is_dir(out)) die(NM_EINPUT, "synth: %s is a directory, not a GGUF file", out);
    if (!gguf && !path_is_dir(out)) die(NM_EINPUT, "synth: %s exists and is not a directory", out);
    if (!gguf && !path_exists(cfg) && rmdir(out) != 0)
        die(NM_EINPUT, "synth: %s is a non-empty directory without config.json; not replacing it", out);
}

static int commit(const char *tmp, const char *out, int gguf, Error *e) {
    if (gguf || !path_exists(out)) {
        if (rename(tmp, out) == 0) return NM_OK;
        return error_set(e, NM_ERUNTIME, "%s: cannot rename into place: %s", out, strerror(errno));
    }
    /* rename(2) cannot replace a non-empty directory: move the old one aside first. */
    char old[4096];
    snprintf(old, sizeof old, "%s.old-%d", out, (int)getpid());
    if (rename(out, old) != 0 || rename(tmp, out) != 0)
        return error_set(e, NM_ERUNTIME, "%s: cannot replace: %s", out, strerror(errno));
    remove_written_dir(old);
    return NM_OK;
}

/* Interrupted (Ctrl-C, kill), synth removes its temporary output: nothing but
 * unlink/rmdir on paths prepared in advance, so the handler stays async-signal-safe. */
static char cleanup_paths[6][4096];
static int n_cleanup;

static void remove_temporary_and_die(int sig) {
    for (int i = 0; i < n_cleanup; i++) unlink(cleanup_paths[i]);
    if (n_cleanup > 1) rmdir(cleanup_paths[0]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* dir/file into buf (4096 bytes); OUT's length is checked up front, so this fits. */
static void join_path(char *buf, const char *dir, const char *file) {
    if ((size_t)snprintf(buf, 4096, "%s/%s", dir, file) >= 4096) die(NM_EINPUT, "synth: path too long: %s", dir);
}

static void on_interrupt_remove(const char *tmp, int is_dir) {
    snprintf(cleanup_paths[0], sizeof cleanup_paths[0], "%s", tmp);
    n_cleanup = 1;
    for (int i = 0; is_dir && i < 5; i++) join_path(cleanup_paths[n_cleanup++], tmp, synth_hf_files[i]);
    signal(SIGINT, remove_temporary_and_die);
    signal(SIGTERM, remove_temporary_and_die);
    signal(SIGHUP, remove_temporary_and_die);
}

static int write_model(const Synth *y, const char *out, SynthProgress *st, Error *e) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%d", out, (int)getpid()) >= sizeof tmp - 64)
        return error_set(e, NM_EINPUT, "%s: path too long", out);
    int rc;
    on_interrupt_remove(tmp, !y->gguf);
    if (y->gguf) {
        rc = synth_write_gguf(y, tmp, st, e);
        if (rc) unlink(tmp);
    } else {
        if (mkdir(tmp, 0777) != 0) return error_set(e, NM_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
        rc = synth_write_hf(y, tmp, st, e);
        if (rc) remove_written_dir(tmp);
    }
    if (!rc) rc = commit(tmp, out, y->gguf, e);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Options */

/* Which options were given: a shape option replaces the preset's value only then. */
enum {
    GIVEN_HIDDEN, GIVEN_FFN, GIVEN_LAYERS, GIVEN_HEADS, GIVEN_KV_HEADS, GIVEN_VOCAB, GIVEN_CONTEXT, GIVEN_SEED,
    GIVEN_STD, GIVEN_NORM_NOISE, GIVEN_PLANT_MATRIX, GIVEN_PLANT_SCALE, GIVEN_PLANT_BOOST, GIVEN_FILE_FORMAT,
    GIVEN_DTYPE, N_GIVEN
};

/* --plant, repeatable: the specs in order, parsed once the vocabulary is known. */
typedef struct {
    const char **spec;
    int n;
} PlantArgs;

static int push_plant(void *dest, int code, const char *arg, Error *e) {
    PlantArgs *p = dest;
    p->spec[p->n++] = arg;
    return NM_OK;
}

static void parse_plant(Synth *y, const char *arg) {
    const char *eq = strchr(arg, '=');
    char neuron[64];
    if (!eq || (size_t)(eq - arg) >= sizeof neuron) die(NM_EINPUT, "synth: bad --plant '%s' (want L:N=TOKEN)", arg);
    memcpy(neuron, arg, (size_t)(eq - arg));
    neuron[eq - arg] = 0;
    SynthPlant p = { 0 };
    Error e = { 0 };
    if (parse_neuron(neuron, &p.layer, &p.neuron, &e)) die(NM_EINPUT, "synth: --plant '%s': %s", arg, e.msg);
    if (p.layer >= y->s.n_layers || p.neuron >= y->s.ffn_dim)
        die(NM_EINPUT, "synth: --plant '%s': the model has %d layers of %d neurons", arg, y->s.n_layers, y->s.ffn_dim);
    p.token = synth_resolve_token(y->vocab, y->s.vocab_size, eq + 1);
    if (p.token < 0)
        die(NM_EINPUT, "synth: --plant '%s': '%s' is not a token id below %d, a vocabulary piece or a token's text", arg,
            eq + 1, y->s.vocab_size);
    for (int i = 0; i < y->n_plants; i++)
        if (y->plants[i].layer == p.layer && y->plants[i].neuron == p.neuron)
            die(NM_EINPUT, "synth: --plant '%s': neuron %d:%d is planted twice", arg, p.layer, p.neuron);
    synth_add_plant(y, p.layer, p.neuron, p.token);
}

static void check_shape(const Synth *y, const char *dtype_arg) {
    const SynthShape *s = &y->s;
    int block = dtype_info(y->dtype)->block_size;
    if (s->dim % s->n_heads) die(NM_EINPUT, "synth: --hidden %d is not a multiple of --heads %d", s->dim, s->n_heads);
    if (s->n_heads % s->n_kv_heads) die(NM_EINPUT, "synth: --heads %d is not a multiple of --kv-heads %d", s->n_heads, s->n_kv_heads);
    if (synth_head_dim(s) % 2) die(NM_EINPUT, "synth: head dimension %d (hidden / heads) is odd; RoPE needs pairs", synth_head_dim(s));
    if (s->dim % block || s->ffn_dim % block || (int64_t)s->n_heads * synth_head_dim(s) % block)
        die(NM_EINPUT, "synth: --dtype %s needs --hidden and --ffn to be multiples of %d (got %d and %d)", dtype_arg, block,
            s->dim, s->ffn_dim);
}

int cmd_synth(int argc, char **argv) {
    static const char *const plant_matrices[] = { "up", "gate", "both", NULL };
    static const char *const file_formats[] = { "hf", "gguf", NULL };
    static const char *const dtype_names[] = { "f32", "bf16", "f16", "q8_0", NULL };
    static const DType dtypes[] = { DT_F32, DT_BF16, DT_F16, DT_Q8_0 };
    /* Options are applied after the preset, whatever their order: collect first. */
    int given[N_GIVEN] = { 0 }, plant_matrix = 2, file_format = 0, dtype = 0, force = 0, progress = isatty(2), tied = -1;
    long hidden = 0, ffn = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, context = 0, seed = 0, threads = 0;
    double std_dev = 0, norm_noise = 0, plant_scale = 0, plant_boost = 0;
    const char *preset_name = NULL, *tokenizer_dir = NULL;
    PlantArgs plant = { xcalloc((size_t)argc, sizeof *plant.spec), 0 };
    Option opts[] = {
        { OPT_GROUP("shape (defaults from --preset; tiny when none is given):\n") },
        { OPT_STRING(0, "preset", &preset_name, "NAME",
                     "tiny (hidden 64, FFN 192, 2 layers, vocab 512),\n"
                     "llama-3.2-1b, llama-3.1-8b (the real shapes and RoPE settings)") },
        { OPT_INT(0, "hidden", &hidden, "N", 2, 1 << 16, "hidden size"), .seen = &given[GIVEN_HIDDEN] },
        { OPT_INT(0, "ffn", &ffn, "N", 1, 1 << 20, "FFN size: MLP neurons per layer"), .seen = &given[GIVEN_FFN] },
        { OPT_INT(0, "layers", &layers, "N", 1, 1024, "layers"), .seen = &given[GIVEN_LAYERS] },
        { OPT_INT(0, "heads", &heads, "N", 1, 4096, "attention heads"), .seen = &given[GIVEN_HEADS] },
        { OPT_INT(0, "kv-heads", &kv_heads, "N", 1, 4096, "key/value heads (default: the preset's, at most --heads)"),
          .seen = &given[GIVEN_KV_HEADS] },
        { OPT_INT(0, "context", &context, "N", 1, 1 << 24, "context length (positions)"), .seen = &given[GIVEN_CONTEXT] },
        { OPT_INT(0, "vocab", &vocab, "N", 1, 1 << 22, "vocabulary size (at least 258 without --tokenizer-dir)"),
          .seen = &given[GIVEN_VOCAB] },
        { OPT_SET_INT(0, "tied", &tied, 1, "LM head shared with the token embedding") },
        { OPT_SET_INT(0, "untied", &tied, 0, "... or separate") },
        { OPT_GROUP("\nvocabulary:\n") },
        { OPT_STRING(0, "tokenizer-dir", &tokenizer_dir, "DIR",
                     "use DIR's tokenizer.json (e.g. ../shared/tokenizers/llama-3.1):\n"
                     "copied into an HF OUT, turned into GGUF metadata otherwise;\n"
                     "the vocabulary size follows it. Without it: a small\n"
                     "byte-level BPE (256 byte tokens, a few words, BOS, EOS)."),
          .aliases = "tokenizer" },
        { OPT_GROUP("\nweights:\n") },
        { OPT_CHOICE(0, "file-format", &file_format, "F", file_formats, "hf or gguf (default: gguf when OUT ends in .gguf)"),
          .aliases = "format", .seen = &given[GIVEN_FILE_FORMAT] },
        { OPT_CHOICE(0, "dtype", &dtype, "T", dtype_names,
                     "f32 (default) or bf16; for GGUF also f16 and q8_0\n"
                     "(GGUF keeps norms in F32, as llama.cpp does)"),
          .seen = &given[GIVEN_DTYPE] },
        { OPT_INT(0, "seed", &seed, "S", 0, LONG_MAX, "generator seed (default 1)"), .seen = &given[GIVEN_SEED] },
        { OPT_FLOAT(0, "std", &std_dev, "X", 1e-6, 10, "standard deviation of the matrices (default 0.02)"),
          .seen = &given[GIVEN_STD] },
        { OPT_FLOAT(0, "norm-noise", &norm_noise, "X", 0, 1, "norm weights are 1 + N(0, X^2) (default 0: exactly 1)"),
          .seen = &given[GIVEN_NORM_NOISE] },
        { OPT_GROUP("\nplanting:\n") },
        { OPT_CALL(0, "plant", &plant, "L:N=TOKEN", push_plant, 0,
                   "neuron N of layer L reads TOKEN's unembedding direction.\n"
                   "TOKEN is a token id, a vocabulary piece (\"Ġdog\") or the\n"
                   "text a token stands for (\" dog\"). Repeatable.") },
        { OPT_CHOICE(0, "plant-matrix", &plant_matrix, "M", plant_matrices, "up, gate or both (default both)"),
          .seen = &given[GIVEN_PLANT_MATRIX] },
        { OPT_FLOAT(0, "plant-scale", &plant_scale, "X", 1e-6, 1e6,
                    "RMS of a planted row (default 1, i.e. 50x a random row):\n"
                    "sharpens the planted token's probability under --norm none/gain"),
          .seen = &given[GIVEN_PLANT_SCALE] },
        { OPT_FLOAT(0, "plant-boost", &plant_boost, "B", 1e-3, 1e3,
                    "multiply the planted tokens' LM-head rows by B (default 1):\n"
                    "widens the planted token's margin under every norm, for\n"
                    "shapes too small for it to stand out on its own"),
          .seen = &given[GIVEN_PLANT_BOOST] },
        { OPT_GROUP("\n") },
        { OPT_FLAG(0, "progress", &progress, "progress bar on stderr (default: when stderr is a terminal)") },
        { OPT_FLAG(0, "force", &force, "replace an existing OUT") },
        { OPT_THREADS_UNUSED(&threads) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one OUT directory or .gguf file");
    const char *out = argv[1];

    Synth y = { .dtype = DT_F32, .seed = 1, .std = 0.02, .plant_scale = 1, .plant_boost = 1, .plant_up = 1, .plant_gate = 1 };
    const SynthShape *preset = synth_preset(preset_name ? preset_name : "tiny");
    if (!preset) die(NM_EINPUT, "synth: unknown --preset '%s' (" SYNTH_PRESET_NAMES ")", preset_name);
    y.s = *preset;
    SynthShape *s = &y.s;
    if (given[GIVEN_HIDDEN]) s->dim = (int)hidden;
    if (given[GIVEN_FFN]) s->ffn_dim = (int)ffn;
    if (given[GIVEN_LAYERS]) s->n_layers = (int)layers;
    if (given[GIVEN_HEADS]) s->n_heads = (int)heads;
    if (given[GIVEN_KV_HEADS]) s->n_kv_heads = (int)kv_heads;
    else if (given[GIVEN_HEADS]) s->n_kv_heads = s->n_heads < s->n_kv_heads ? s->n_heads : s->n_kv_heads;
    if (given[GIVEN_VOCAB]) s->vocab_size = (int)vocab;
    if (given[GIVEN_CONTEXT]) s->max_seq_len = (int)context;
    if (tied >= 0) s->tied = tied;
    if (given[GIVEN_SEED]) y.seed = (uint64_t)seed;
    if (given[GIVEN_STD]) y.std = std_dev;
    if (given[GIVEN_NORM_NOISE]) y.norm_noise = norm_noise;
    if (given[GIVEN_PLANT_SCALE]) y.plant_scale = plant_scale;
    if (given[GIVEN_PLANT_BOOST]) y.plant_boost = plant_boost;
    y.plant_up = plant_matrix != 1;   /* up or both */
    y.plant_gate = plant_matrix != 0; /* gate or both */
    y.gguf = given[GIVEN_FILE_FORMAT] ? file_format == 1 : str_ends_with(out, ".gguf");
    if (given[GIVEN_DTYPE]) {
        if (dtypes[dtype] != DT_F32 && dtypes[dtype] != DT_BF16 && !y.gguf)
            die(NM_EINPUT, "synth: --dtype %s is for GGUF output only", dtype_names[dtype]);
        y.dtype = dtypes[dtype];
    }
    check_shape(&y, dtype_names[dtype]);

    /* The vocabulary: a tokenizer directory's, or the built-in one. */
    Model tok;
    Vocab builtin;
    int have_tok = 0;
    if (tokenizer_dir) {
        if (given[GIVEN_VOCAB]) die(NM_EINPUT, "synth: give --vocab or --tokenizer-dir, not both (the tokenizer sets the size)");
        y.tokenizer_dir = tokenizer_dir;
        char tj[4096];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", y.tokenizer_dir);
        if (!path_exists(tj)) die(NM_EINPUT, "synth: --tokenizer-dir %s: no tokenizer.json there", y.tokenizer_dir);
        open_model_or_exit(&tok, y.tokenizer_dir, NULL, 0);
        have_tok = 1;
        y.vocab = &tok.vocab;
        s->vocab_size = tok.vocab.n_tokens;
        if (tok.vocab.n_tokens < 1 || tok.vocab.kind == TOKENIZER_NONE)
            die(NM_EINPUT, "synth: --tokenizer-dir %s: no vocabulary in its tokenizer.json", y.tokenizer_dir);
    } else {
        if (s->vocab_size < 258)
            die(NM_EINPUT, "synth: --vocab %d is too small: the built-in vocabulary needs 258 (256 bytes, BOS, EOS)", s->vocab_size);
        synth_builtin_vocab(&builtin, s->vocab_size);
        y.vocab = &builtin;
    }
    y.planted_token = xcalloc((size_t)s->vocab_size, 1);
    for (int i = 0; i < plant.n; i++) parse_plant(&y, plant.spec[i]);
    Error e = { 0 };
    if (synth_prepare_plants(&y, &e)) error_exit(&e);

    check_replaceable(out, y.gguf, force);
    SynthProgress st = { .progress.enabled = progress };
    double t0 = now_seconds();
    int rc = write_model(&y, out, &st, &e);
    if (!rc) {
        fprintf(stderr, "neuromap: wrote %s (%s, %s, %d layers, hidden %d, FFN %d, vocab %d, %s head, %d planted) in %.1f s, %.1f MB/s\n",
                out, y.gguf ? "gguf" : "hf", dtype_name(y.dtype), s->n_layers, s->dim, s->ffn_dim, s->vocab_size,
                s->tied ? "tied" : "separate", y.n_plants, now_seconds() - t0,
                (double)st.done / 1e6 / (now_seconds() - t0 > 0 ? now_seconds() - t0 : 1));
        for (int i = 0; i < y.n_plants; i++) {
            char text[256];
            const Vocab *v = y.vocab;
            int t = y.plants[i].token;
            escape_token(t < v->n_tokens ? v->text[t] : "", t < v->n_tokens ? (size_t)v->text_len[t] : 0, text, sizeof text);
            fprintf(stderr, "  planted %d:%d = token %d '%s'\n", y.plants[i].layer, y.plants[i].neuron, t, text);
        }
    }
    synth_free_plants(&y);
    free(y.planted_token);
    free(plant.spec);
    if (have_tok) model_close(&tok);
    else vocab_free(&builtin);
    if (rc) error_exit(&e);
    return NM_OK;
}
