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
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "synth/synth.h"

static const char usage_text[] =
    "usage: neuromap synth OUT [options]\n\n"
    "Writes a synthetic Llama checkpoint: random N(0, std^2) matrices from a seeded,\n"
    "deterministic generator, and optionally planted neurons, whose up/gate rows are\n"
    "a chosen token's unembedding direction, so that the neuron map must name that\n"
    "token. OUT is a Hugging Face directory (model.safetensors, config.json,\n"
    "tokenizer.json), or a GGUF file when it ends in .gguf. It is written under a\n"
    "temporary name and renamed when complete; an existing OUT is kept unless --force.\n\n"
    "shape (defaults from --preset; tiny when none is given):\n"
    "  --preset NAME       tiny (hidden 64, FFN 192, 2 layers, vocab 512),\n"
    "                      llama-3.2-1b, llama-3.1-8b (the real shapes and RoPE settings)\n"
    "  --hidden N  --ffn N  --layers N  --heads N  --kv-heads N  --context N\n"
    "  --vocab N           vocabulary size (at least 258 without --tokenizer)\n"
    "  --tied, --untied    LM head shared with the token embedding, or separate\n\n"
    "vocabulary:\n"
    "  --tokenizer DIR     use DIR's tokenizer.json (e.g. ../shared/tokenizers/llama-3.1):\n"
    "                      copied into an HF OUT, turned into GGUF metadata otherwise;\n"
    "                      the vocabulary size follows it. Without it: a small\n"
    "                      byte-level BPE (256 byte tokens, a few words, BOS, EOS).\n\n"
    "weights:\n"
    "  --format F          hf or gguf (default: gguf when OUT ends in .gguf)\n"
    "  --dtype T           f32 (default) or bf16; for GGUF also f16 and q8_0\n"
    "                      (GGUF keeps norms in F32, as llama.cpp does)\n"
    "  --seed S            generator seed (default 1)\n"
    "  --std X             standard deviation of the matrices (default 0.02)\n"
    "  --norm-noise X      norm weights are 1 + N(0, X^2) (default 0: exactly 1)\n\n"
    "planting:\n"
    "  --plant L:N=TOKEN   neuron N of layer L reads TOKEN's unembedding direction.\n"
    "                      TOKEN is a token id, a vocabulary piece (\"Ġdog\") or the\n"
    "                      text a token stands for (\" dog\"). Repeatable.\n"
    "  --plant-matrix M    up, gate or both (default both)\n"
    "  --plant-scale X     RMS of a planted row (default 1, i.e. 50x a random row):\n"
    "                      sharpens the planted token's probability under --norm none/gain\n"
    "  --plant-boost B     multiply the planted tokens' LM-head rows by B (default 1):\n"
    "                      widens the planted token's margin under every norm, for\n"
    "                      shapes too small for it to stand out on its own\n\n"
    "  --progress          progress bar on stderr (default: when stderr is a terminal)\n"
    "  --force             replace an existing OUT\n"
    "  -h, --help          this help\n";

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

enum {
    OPT_HIDDEN = 256, OPT_FFN, OPT_LAYERS, OPT_HEADS, OPT_KV_HEADS, OPT_VOCAB, OPT_CONTEXT, OPT_TOKENIZER, OPT_DTYPE,
    OPT_FORMAT, OPT_SEED, OPT_STD, OPT_NORM_NOISE, OPT_PLANT, OPT_PLANT_MATRIX, OPT_PLANT_SCALE, OPT_PLANT_BOOST,
    OPT_PRESET, OPT_TIED, OPT_UNTIED, OPT_FORCE, OPT_PROGRESS,
};

static long int_arg(const char *opt, const char *s, long lo, long hi) {
    long v;
    if (!parse_long(s, &v) || v < lo || v > hi) die(NM_EINPUT, "synth: --%s must be an integer in %ld..%ld, not '%s'", opt, lo, hi, s);
    return v;
}

static double real_arg(const char *opt, const char *s, double lo, double hi) {
    double v;
    if (!parse_float(s, &v) || v < lo || v > hi) die(NM_EINPUT, "synth: --%s must be a number in %g..%g, not '%s'", opt, lo, hi, s);
    return v;
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
    static const struct option opts[] = {
        { "hidden", required_argument, 0, OPT_HIDDEN }, { "ffn", required_argument, 0, OPT_FFN },
        { "layers", required_argument, 0, OPT_LAYERS }, { "heads", required_argument, 0, OPT_HEADS },
        { "kv-heads", required_argument, 0, OPT_KV_HEADS }, { "vocab", required_argument, 0, OPT_VOCAB },
        { "context", required_argument, 0, OPT_CONTEXT }, { "tokenizer", required_argument, 0, OPT_TOKENIZER },
        { "dtype", required_argument, 0, OPT_DTYPE }, { "format", required_argument, 0, OPT_FORMAT },
        { "seed", required_argument, 0, OPT_SEED }, { "std", required_argument, 0, OPT_STD },
        { "norm-noise", required_argument, 0, OPT_NORM_NOISE }, { "plant", required_argument, 0, OPT_PLANT },
        { "plant-matrix", required_argument, 0, OPT_PLANT_MATRIX }, { "plant-scale", required_argument, 0, OPT_PLANT_SCALE },
        { "plant-boost", required_argument, 0, OPT_PLANT_BOOST }, { "preset", required_argument, 0, OPT_PRESET },
        { "tied", no_argument, 0, OPT_TIED }, { "untied", no_argument, 0, OPT_UNTIED },
        { "force", no_argument, 0, OPT_FORCE }, { "progress", no_argument, 0, OPT_PROGRESS },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    /* Options are applied after the preset, whatever their order: collect first. */
    const char *given[OPT_PROGRESS + 1] = { 0 };
    const char **plant_args = xcalloc((size_t)argc, sizeof *plant_args);
    int n_plant_args = 0, c, force = 0, progress = isatty(2), tied = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            free(plant_args);
            return NM_OK;
        }
        if (c == '?' || c < OPT_HIDDEN)
            die(NM_EINPUT, "synth: unknown or incomplete option '%s' (see 'neuromap synth --help')", argv[optind - 1]);
        if (c == OPT_PLANT) plant_args[n_plant_args++] = optarg;
        else if (c == OPT_FORCE) force = 1;
        else if (c == OPT_PROGRESS) progress = 1;
        else if (c == OPT_TIED || c == OPT_UNTIED) tied = c == OPT_TIED;
        else given[c] = optarg;
    }
    if (optind != argc - 1) die(NM_EINPUT, "synth: expected one OUT directory or .gguf file (see 'neuromap synth --help')");
    const char *out = argv[optind];

    Synth y = { .dtype = DT_F32, .seed = 1, .std = 0.02, .plant_scale = 1, .plant_boost = 1, .plant_up = 1, .plant_gate = 1 };
    const SynthShape *preset = synth_preset(given[OPT_PRESET] ? given[OPT_PRESET] : "tiny");
    if (!preset) die(NM_EINPUT, "synth: unknown --preset '%s' (" SYNTH_PRESET_NAMES ")", given[OPT_PRESET]);
    y.s = *preset;
    SynthShape *s = &y.s;
    if (given[OPT_HIDDEN]) s->dim = (int)int_arg("hidden", given[OPT_HIDDEN], 2, 1 << 16);
    if (given[OPT_FFN]) s->ffn_dim = (int)int_arg("ffn", given[OPT_FFN], 1, 1 << 20);
    if (given[OPT_LAYERS]) s->n_layers = (int)int_arg("layers", given[OPT_LAYERS], 1, 1024);
    if (given[OPT_HEADS]) s->n_heads = (int)int_arg("heads", given[OPT_HEADS], 1, 4096);
    if (given[OPT_KV_HEADS]) s->n_kv_heads = (int)int_arg("kv-heads", given[OPT_KV_HEADS], 1, 4096);
    else if (given[OPT_HEADS]) s->n_kv_heads = s->n_heads < s->n_kv_heads ? s->n_heads : s->n_kv_heads;
    if (given[OPT_VOCAB]) s->vocab_size = (int)int_arg("vocab", given[OPT_VOCAB], 1, 1 << 22);
    if (given[OPT_CONTEXT]) s->max_seq_len = (int)int_arg("context", given[OPT_CONTEXT], 1, 1 << 24);
    if (tied >= 0) s->tied = tied;
    if (given[OPT_SEED]) y.seed = (uint64_t)int_arg("seed", given[OPT_SEED], 0, 0x7fffffffffffffffL);
    if (given[OPT_STD]) y.std = real_arg("std", given[OPT_STD], 1e-6, 10);
    if (given[OPT_NORM_NOISE]) y.norm_noise = real_arg("norm-noise", given[OPT_NORM_NOISE], 0, 1);
    if (given[OPT_PLANT_SCALE]) y.plant_scale = real_arg("plant-scale", given[OPT_PLANT_SCALE], 1e-6, 1e6);
    if (given[OPT_PLANT_BOOST]) y.plant_boost = real_arg("plant-boost", given[OPT_PLANT_BOOST], 1e-3, 1e3);
    if (given[OPT_PLANT_MATRIX]) {
        const char *m = given[OPT_PLANT_MATRIX];
        if (strcmp(m, "both") != 0 && strcmp(m, "up") != 0 && strcmp(m, "gate") != 0)
            die(NM_EINPUT, "synth: --plant-matrix must be up, gate or both, not '%s'", m);
        y.plant_up = strcmp(m, "gate") != 0;
        y.plant_gate = strcmp(m, "up") != 0;
    }
    y.gguf = str_ends_with(out, ".gguf");
    if (given[OPT_FORMAT]) {
        if (strcmp(given[OPT_FORMAT], "hf") != 0 && strcmp(given[OPT_FORMAT], "gguf") != 0)
            die(NM_EINPUT, "synth: --format must be hf or gguf, not '%s'", given[OPT_FORMAT]);
        y.gguf = strcmp(given[OPT_FORMAT], "gguf") == 0;
    }
    if (given[OPT_DTYPE]) {
        static const struct { const char *name; DType t; int gguf_only; } dtypes[] = {
            { "f32", DT_F32, 0 }, { "bf16", DT_BF16, 0 }, { "f16", DT_F16, 1 }, { "q8_0", DT_Q8_0, 1 },
        };
        int found = 0;
        for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
            if (strcmp(given[OPT_DTYPE], dtypes[i].name) == 0) {
                if (dtypes[i].gguf_only && !y.gguf) die(NM_EINPUT, "synth: --dtype %s is for GGUF output only", dtypes[i].name);
                y.dtype = dtypes[i].t;
                found = 1;
            }
        if (!found) die(NM_EINPUT, "synth: --dtype must be f32, bf16, f16 or q8_0, not '%s'", given[OPT_DTYPE]);
    }
    check_shape(&y, given[OPT_DTYPE]);

    /* The vocabulary: a tokenizer directory's, or the built-in one. */
    Model tok;
    Vocab builtin;
    int have_tok = 0;
    if (given[OPT_TOKENIZER]) {
        if (given[OPT_VOCAB]) die(NM_EINPUT, "synth: give --vocab or --tokenizer, not both (the tokenizer sets the size)");
        y.tokenizer_dir = given[OPT_TOKENIZER];
        char tj[4096];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", y.tokenizer_dir);
        if (!path_exists(tj)) die(NM_EINPUT, "synth: --tokenizer %s: no tokenizer.json there", y.tokenizer_dir);
        open_model_or_exit(&tok, y.tokenizer_dir, NULL, 0);
        have_tok = 1;
        y.vocab = &tok.vocab;
        s->vocab_size = tok.vocab.n_tokens;
        if (tok.vocab.n_tokens < 1 || tok.vocab.kind == TOKENIZER_NONE)
            die(NM_EINPUT, "synth: --tokenizer %s: no vocabulary in its tokenizer.json", y.tokenizer_dir);
    } else {
        if (s->vocab_size < 258)
            die(NM_EINPUT, "synth: --vocab %d is too small: the built-in vocabulary needs 258 (256 bytes, BOS, EOS)", s->vocab_size);
        synth_builtin_vocab(&builtin, s->vocab_size);
        y.vocab = &builtin;
    }
    y.planted_token = xcalloc((size_t)s->vocab_size, 1);
    for (int i = 0; i < n_plant_args; i++) parse_plant(&y, plant_args[i]);
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
    free(plant_args);
    if (have_tok) model_close(&tok);
    else vocab_free(&builtin);
    if (rc) error_exit(&e);
    return NM_OK;
}
