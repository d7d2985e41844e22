/* cmd_tokenize.c — `neuromap tokenize`: text or a chat → ids, and ids → text. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "tokenize",
    .usage = "usage: neuromap tokenize MODEL [TEXT | -f FILE] [options]\n"
             "       neuromap tokenize MODEL --messages FILE.json [options]\n"
             "       neuromap tokenize MODEL --decode \"IDS\"\n",
    .about = "Turns text into the model's token ids, exactly as its own tokenizer does.\n"
             "MODEL may also be a directory with only tokenizer files or a vocabulary-only GGUF.\n",
    .after = "\nWith --decode, --special keeps control tokens (<s>, <|eot_id|>) in the text.\n"
             "A word inside a text is usually one token with its leading space: \" dog\" and \"dog\"\n"
             "are different tokens. find, show --token, diff --token and probe --target take\n"
             "the text with its space (\" dog\"), as this command shows it.\n",
};

typedef enum { OUT_TABLE, OUT_IDS, OUT_JSON } OutputFormat;

/* ----------------------------------------------------------------------------
 * Output */

static void print_ids_line(const int *ids, int n) {
    for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    putchar('\n');
}

static void print_table(const Vocab *v, const int *ids, int n) {
    char esc[1024];
    printf("%6s  %7s  %s\n", "pos", "id", "text");
    for (int i = 0; i < n; i++) {
        escape_token(v->text[ids[i]], (size_t)v->text_len[ids[i]], esc, sizeof esc);
        printf("%6d  %7d  '%s'\n", i, ids[i], esc);
    }
}

static void print_json(const Vocab *v, const int *ids, int n, const char *text, size_t text_len, const char *rendered) {
    cJSON *root = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(root, "ids"), *p = cJSON_AddArrayToObject(root, "pieces");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(p, cJSON_CreateString(v->piece[ids[i]]));
    }
    cJSON_AddNumberToObject(root, "n_tokens", n);
    if (rendered) cJSON_AddStringToObject(root, "chat_text", rendered);
    if (text) {
        char *t = xstrndup(text, text_len);
        cJSON_AddStringToObject(root, "text", t);
        free(t);
    }
    put_json(root, 0);
}

/* ----------------------------------------------------------------------------
 * --decode */

static void parse_ids(const char *s, int n_tokens, int **out, int *n) {
    int cap = 16, count = 0, *ids = xmalloc((size_t)cap * sizeof *ids);
    char *copy = xstrdup(s);
    for (char *tok = strtok(copy, " ,\t\n[]"); tok; tok = strtok(NULL, " ,\t\n[]")) {
        long id;
        if (!parse_long(tok, &id) || id < 0 || id >= n_tokens)
            die(NM_EINPUT, "tokenize: --decode: '%s' is not a token id (0..%d)", tok, n_tokens - 1);
        if (count == cap) ids = xrealloc(ids, (size_t)(cap *= 2) * sizeof *ids);
        ids[count++] = (int)id;
    }
    free(copy);
    *out = ids;
    *n = count;
}

static void run_decode(const Tokenizer *t, const Vocab *v, const char *spec, int special, OutputFormat fmt) {
    int *ids, n;
    parse_ids(spec, tokenizer_n_tokens(t), &ids, &n);
    size_t len;
    char *text = tokenizer_decode_flags(t, ids, n, special ? TOK_SPECIAL : 0, &len);
    if (fmt == OUT_JSON) print_json(v, ids, n, text, len, NULL);
    else {
        fwrite(text, 1, len, stdout);
        if (fmt == OUT_TABLE) putchar('\n');
    }
    free(text);
    free(ids);
}

/* ----------------------------------------------------------------------------
 * The command */

int cmd_tokenize(int argc, char **argv) {
    static const char *const formats[] = { [OUT_TABLE] = "table", [OUT_IDS] = "ids", [OUT_JSON] = "json", NULL };
    PromptOptions po = { 0 };
    const char *file = NULL, *decode = NULL, *tokenizer = NULL;
    int fmt = OUT_TABLE, stats = 0;
    long threads = 0;
    Option opts[] = {
        { OPT_STRING('f', "file", &file, "FILE", "read the text from FILE, byte for byte (a final newline is text)") },
        { OPT_STRING(0, "decode", &decode, "\"IDS\"", "turn ids (separated by spaces or commas) back into text") },
        { OPT_CHOICE(0, "format", &fmt, "FMT", formats, "table (default), ids (one line, space-separated) or json") },
        { OPT_STRING('t', "tokenizer", &tokenizer, "FILE", "the tokenizer .bin of a llama2.c checkpoint") },
        { OPT_FLAG(0, "stats", &stats, "report load and encoding times on stderr") },
        { OPT_THREADS_UNUSED(&threads) },
        OPT_PROMPT_OPTIONS(&po),
        { OPT_END() },
    };
    int n_pos = options_parse(&help, opts, argc, argv);
    if (n_pos < 1) die(NM_EINPUT, "tokenize: expected MODEL (see 'neuromap tokenize --help')");
    if (n_pos > 2) die(NM_EINPUT, "tokenize: expected MODEL and at most one TEXT (quote the text)");
    const char *text_arg = n_pos == 2 ? argv[2] : NULL;
    if (text_arg && file) die(NM_EINPUT, "tokenize: give TEXT or -f FILE, not both");
    if (decode && (text_arg || file || prompt_is_chat(&po))) die(NM_EINPUT, "tokenize: --decode takes no text, file or chat options");
    if (!decode && !text_arg && !file && !po.messages) die(NM_EINPUT, "tokenize: give TEXT, -f FILE or --messages FILE.json");

    /* Read the input before the model, so a bad path fails fast. */
    char *text = NULL;
    size_t len = 0;
    Error e = { 0 };
    if (file && read_file(file, (size_t)1 << 30, &text, &len, &e)) error_exit(&e);
    if (text_arg) {
        text = xstrdup(text_arg);
        len = strlen(text);
    }

    double t0 = now_seconds(), c0 = (double)clock() / CLOCKS_PER_SEC;
    Model m;
    open_model_or_exit(&m, argv[1], tokenizer, 0);
    Tokenizer *t;
    if (tokenizer_new(&m.vocab, &t, &e)) {
        snprintf(e.msg + strlen(e.msg), sizeof e.msg - strlen(e.msg), " (%s)", argv[1]);
        error_exit(&e);
    }
    if (decode) {
        run_decode(t, &m.vocab, decode, po.special, fmt);
    } else {
        int *ids, n;
        char *rendered;
        double t1 = now_seconds(), c1 = (double)clock() / CLOCKS_PER_SEC;
        if (prompt_encode(t, &m.vocab, &po, text, len, &ids, &n, &rendered, &e)) error_exit(&e);
        double t2 = now_seconds();
        if (stats)
            fprintf(stderr, "load %.3f s (%.3f s CPU); encode %zu bytes into %d tokens in %.4f s (%.2f MB/s)\n", t1 - t0,
                    c1 - c0, len, n, t2 - t1, (double)len / 1e6 / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
        if (fmt == OUT_IDS) print_ids_line(ids, n);
        else if (fmt == OUT_JSON) print_json(&m.vocab, ids, n, NULL, 0, rendered);
        else print_table(&m.vocab, ids, n);
        if (fmt == OUT_TABLE) fprintf(stderr, "%d tokens\n", n);
        free(ids);
        free(rendered);
    }
    free(text);
    tokenizer_free(t);
    model_close(&m);
    return NM_OK;
}
