/* cmd_generate.c — `neuromap generate MODEL`: text from the model, with
 * neurons clamped or scaled, and the unclamped run beside it (--compare).
 *
 * Both runs use the same sampler seed, so any difference between them comes
 * from the hooks alone.
 */
#include <cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "generate",
    .usage = "usage: neuromap generate MODEL [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S]\n"
             "                         [--chat] [--system TEXT] [--clamp L:N=V ...] [--scale L:N=S ...] [--clamp-site up|act]\n"
             "                         [--clamp-positions all|generated] [--compare] [--format text|json]\n"
             "                         [--sweep L:N=V1,V2,...]\n",
    .about = "Generates text. Without -p (or with -p \"\") generation starts from BOS alone. With\n"
             "--clamp/--scale the model runs with those neurons fixed or multiplied; --compare\n"
             "also runs the unclamped model with the same seed and shows both continuations\n"
             "(side by side on a wide terminal). The same seed and thread count give the same text.\n"
             "--sweep L:N=V1,V2,... generates one continuation per clamp value of neuron L:N (with\n"
             "the seed, and any other --clamp/--scale, the same for each): how the text moves as\n"
             "the neuron is turned up.\n",
};

/* Writes each piece of the continuation as it comes (Generation.on_piece). */
static void put_piece(void *ctx, const char *s, size_t n) {
    fwrite(s, 1, n, ctx);
    fflush(ctx);
}

static void print_json(const int *prompt, int n_prompt, const Continuation *base, const Continuation *clamped,
                       const HookSet *hooks) {
    cJSON *o = generation_json(prompt, n_prompt, base, clamped, hooks);
    char *s = cJSON_Print(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

/* Display columns of a UTF-8 string: one per code point (no wide glyphs in stories). */
static int columns_of(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* The next line of at most width columns from *s, broken at a space when
 * possible; returns its byte length and advances *s past it. */
static size_t next_line(const char **s, int width) {
    const char *p = *s, *brk = NULL;
    int cols = 0;
    while (*p && *p != '\n' && cols < width) {
        if (*p == ' ') brk = p;
        cols += ((unsigned char)*p & 0xc0) != 0x80;
        p++;
        while (((unsigned char)*p & 0xc0) == 0x80) p++;
    }
    size_t len;
    if (*p && *p != '\n' && brk && brk > *s) p = brk;
    len = (size_t)(p - *s);
    *s = *p == '\n' || *p == ' ' ? p + 1 : p;
    return len;
}

static void print_side_by_side(const char *left, const char *right, const char *lh, const char *rh, int width) {
    int col = (width - 3) / 2;
    printf("%-*s | %s\n", col, lh, rh);
    for (int i = 0; i < col; i++) putchar('-');
    printf("-+-");
    for (int i = 0; i < col; i++) putchar('-');
    putchar('\n');
    while (*left || *right) {
        const char *l = left, *r = right;
        size_t ll = *left ? next_line(&left, col) : 0, rl = *right ? next_line(&right, col) : 0;
        fwrite(l, 1, ll, stdout);
        printf("%*s | ", col - columns_of(l, ll), "");
        fwrite(r, 1, rl, stdout);
        putchar('\n');
    }
}

static int terminal_width(void) {
    struct winsize w;
    if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) != 0) return 0;
    return w.ws_col;
}

static void print_compare(const char *prompt, const Continuation *base, const Continuation *clamped, const char *label) {
    Text l = { 0 }, r = { 0 };
    text_append(&l, prompt, strlen(prompt));
    text_append(&l, base->text.s, base->text.len);
    text_append(&r, prompt, strlen(prompt));
    text_append(&r, clamped->text.s, clamped->text.len);
    int width = terminal_width();
    if (width >= 100) {
        print_side_by_side(l.s, r.s, "baseline", label, width);
    } else {
        printf("=== baseline\n%s\n\n=== %s\n%s\n", l.s, label, r.s);
    }
    text_free(&l);
    text_free(&r);
}

/* ----------------------------------------------------------------------------
 * --sweep: one continuation per clamp value */

static int run_sweep(Generation *g, HookSet *hooks, const Sweep *sw, const char *prompt, int json, Error *e) {
    cJSON *root = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(root, "sweep");
    hookset_add(hooks, (NeuronHook){ .layer = sw->layer, .neuron = sw->neuron, .kind = HOOK_CLAMP });
    int rc = NM_OK;
    if (!json) printf("%s with neuron %d:%d clamped at site %s\n", *prompt ? "continuations" : "generations", sw->layer,
                      sw->neuron, hook_site_name(hooks->site));
    for (int i = 0; !rc && i < sw->n_values; i++) {
        Continuation c = { 0 };
        hooks->hook[hooks->n - 1].value = sw->values[i];
        g->on_piece = NULL;
        if ((rc = generation_run(g, hooks, &c, e))) break;
        if (json) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "value", sw->values[i]);
            cJSON *ids = cJSON_AddArrayToObject(x, "ids");
            for (int k = 0; k < c.n; k++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c.ids[k]));
            char *text = utf8_sanitize(c.text.s ? c.text.s : "", c.text.len);
            cJSON_AddStringToObject(x, "text", text);
            free(text);
            cJSON_AddItemToArray(list, x);
        } else {
            /* one line per value: the continuation with its newlines shown as spaces */
            printf("\n%10g  %s", sw->values[i], prompt);
            for (size_t k = 0; k < c.text.len; k++) putchar(c.text.s[k] == '\n' ? ' ' : c.text.s[k]);
            putchar('\n');
        }
        continuation_free(&c);
    }
    hooks->n--;
    if (!rc && json) {
        char *s = cJSON_Print(root);
        puts(s);
        free(s);
    }
    cJSON_Delete(root);
    return rc;
}

/* ----------------------------------------------------------------------------
 * The command */

typedef struct {
    const char *prompt, *tokenizer;
    long n_new, threads;
    double temp, top_p;
    unsigned long long seed;
    int compare, json, truncate, stats, exact, kv_f16;
    const char *sweep;
    HookOptions hooks;
    PromptOptions prompt_opts;
} GenerateArgs;

static void parse_args(int argc, char **argv, GenerateArgs *a) {
    static const char *const formats[] = { "text", "json", NULL };
    *a = (GenerateArgs){ .n_new = 128, .temp = 1.0, .top_p = 0.9, .hooks = HOOK_OPTIONS_DEFAULT };
    long seed = 0;
    Option opts[] = {
        { OPT_STRING('p', "prompt", &a->prompt, "TEXT", "the prompt") },
        { OPT_INT('n', "tokens", &a->n_new, "N", 1, 1 << 24, "new tokens to generate (default 128); stops early at EOS") },
        { OPT_FLOAT(0, "temp", &a->temp, "T", 0, 100, "sampling temperature (default 1.0); 0 is greedy") },
        { OPT_FLOAT(0, "top-p", &a->top_p, "P", 0, 1, "nucleus sampling mass (default 0.9; 1 samples the whole vocabulary)"),
          .min_open = 1 },
        { OPT_INT(0, "seed", &seed, "S", 0, LONG_MAX, "sampler seed (default 0)") },
        OPT_PROMPT_OPTIONS(&a->prompt_opts),
        OPT_HOOK_OPTIONS(&a->hooks),
        { OPT_FLAG(0, "compare", &a->compare, "show the unclamped and the clamped continuation") },
        { OPT_STRING(0, "sweep", &a->sweep, "L:N=V,...",
                     "one continuation per clamp value of neuron L:N (table; json:\n"
                     "{\"sweep\": [{\"value\", \"ids\", \"text\"}]})") },
        { OPT_CHOICE(0, "format", &a->json, "FMT", formats,
                     "text (default, streamed) or json: {\"prompt_ids\", \"baseline\":\n"
                     "{\"ids\", \"text\"}, \"clamped\": {...}} (clamped only with a hook)") },
        { OPT_FLAG(0, "truncate", &a->truncate, "drop the oldest prompt tokens when the prompt exceeds the context") },
        { OPT_THREADS(&a->threads) },
        { OPT_EXACT_ACTIVATIONS(&a->exact) },
        { OPT_KV(&a->kv_f16) },
        { OPT_FLAG(0, "stats", &a->stats, "print prompt and generation speed on stderr") },
        { OPT_TOKENIZER(&a->tokenizer) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    if (a->sweep && a->compare) die(NM_EINPUT, "generate: --sweep and --compare are two different reports; give one");
    a->seed = (unsigned long long)seed;
}

int cmd_generate(int argc, char **argv) {
    GenerateArgs a;
    parse_args(argc, argv, &a);
    Model m;
    Tokenizer *tok;
    HookSet hooks;
    open_steering(argv[1], a.tokenizer, &a.hooks, &m, &tok, &hooks);
    Error e = { 0 };
    /* A prompt must leave room for one new token; --truncate makes room for all -n. */
    int *prompt = NULL, n_prompt = 0, dropped = 0, ctx = m.cfg.max_seq_len;
    if (generation_prompt(&m, tok, &a.prompt_opts, a.prompt, &prompt, &n_prompt, &e) ||
        fit_prompt(prompt, &n_prompt, a.truncate && a.n_new < ctx ? ctx - (int)a.n_new : ctx - 1, a.truncate, m.vocab.bos_id, &dropped, &e))
        error_exit(&e);
    hook_notes("generate", &a.hooks, hooks.n > 0 || a.sweep);
    if (dropped) fprintf(stderr, "neuromap: warning: the prompt was truncated: its first %d tokens were dropped\n", dropped);
    if (a.n_new > ctx - n_prompt) {
        fprintf(stderr, "neuromap: warning: the context holds %d tokens: generating %d, not %ld\n", ctx, ctx - n_prompt, a.n_new);
        a.n_new = ctx - n_prompt;
    }
    Generation g = { .m = &m, .tok = tok, .prompt = prompt, .n_prompt = n_prompt, .n_new = (int)a.n_new, .temp = (float)a.temp,
                     .top_p = (float)a.top_p, .seed = a.seed };
    if (forward_new(&m, n_prompt + g.n_new, (int)a.threads, &g.f, &e)) error_exit(&e);
    forward_set_exact(g.f, a.exact);
    if (forward_set_kv_f16(g.f, a.kv_f16, &e)) error_exit(&e);
    if (a.sweep) {
        Sweep sw = { 0 };
        const char *shown = a.prompt && !prompt_is_chat(&a.prompt_opts) ? a.prompt : "";
        if (sweep_parse(&sw, a.sweep, m.cfg.n_layers, m.cfg.ffn_dim, &e) || run_sweep(&g, &hooks, &sw, shown, a.json, &e))
            error_exit(&e);
        if (fflush(stdout) != 0) die(NM_ERUNTIME, "generate: cannot write to stdout");
        sweep_free(&sw);
        goto done;
    }

    /* The prompt is echoed before the continuation; a chat prompt is not. */
    const char *shown_prompt = a.prompt && !prompt_is_chat(&a.prompt_opts) ? a.prompt : "";
    int clamped = hooks.n > 0, run_base = !clamped || a.compare || a.json, streaming = !a.json && !a.compare;
    Continuation base = { 0 }, hooked = { 0 };
    int rc = NM_OK;
    if (streaming) fputs(shown_prompt, stdout);
    if (run_base) {
        g.on_piece = streaming && !clamped ? put_piece : NULL, g.piece_ctx = stdout;
        rc = generation_run(&g, NULL, &base, &e);
    }
    if (!rc && clamped) {
        g.on_piece = streaming ? put_piece : NULL, g.piece_ctx = stdout;
        rc = generation_run(&g, &hooks, &hooked, &e);
    }
    if (rc) error_exit(&e);
    if (streaming) putchar('\n');
    if (a.json) {
        print_json(prompt, n_prompt, &base, clamped ? &hooked : NULL, &hooks);
    } else if (a.compare) {
        if (!clamped) fprintf(stderr, "neuromap: --compare without --clamp or --scale: both runs are the same model\n");
        char label[512];
        hooks_label(&hooks, label, sizeof label);
        print_compare(shown_prompt, &base, clamped ? &hooked : &base, label);
    }
    if (a.stats) {
        int runs = run_base + clamped, made = base.n + hooked.n;
        fprintf(stderr, "neuromap: prompt %d tokens x %d runs in %.3f s (%.1f tokens/s); generated %d tokens in %.3f s (%.1f tokens/s); %d threads\n",
                n_prompt, runs, g.prompt_s, n_prompt * runs / (g.prompt_s > 0 ? g.prompt_s : 1e-9), made, g.decode_s,
                made / (g.decode_s > 0 ? g.decode_s : 1e-9), forward_n_threads(g.f));
    }
    continuation_free(&base);
    continuation_free(&hooked);
done:
    forward_free(g.f);
    free(prompt);
    hookset_free(&hooks);
    hook_options_free(&a.hooks);
    tokenizer_free(tok);
    model_close(&m);
    return NM_OK;
}
