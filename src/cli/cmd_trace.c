/* cmd_trace.c — `neuromap trace MODEL -p TEXT`: which neurons fire on the
 * user's own text, each beside what its weights say it writes. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/options.h"

static const CommandHelp help = {
    .name = "trace",
    .usage = "usage: neuromap trace MODEL -p TEXT [--limit 10] [--layers A-B] [--format table|json]\n"
             "                      [--chat] [--system TEXT] [--messages FILE.json] [--threads N] [--tokenizer FILE]\n",
    .about = "Runs the text through the model and lists, for every token position (0 = BOS), the\n"
             "neurons with the largest activation silu(gate.x)*(up.x) across the chosen layers,\n"
             "largest first, each with the top token of its down column through the final norm and\n"
             "the LM head: what the weights say it writes, beside where it fires.\n",
};

static int cmp_hit(const void *a, const void *b) {
    const ActHit *x = a, *y = b;
    return x->layer != y->layer ? (x->layer > y->layer) - (x->layer < y->layer) : (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

int cmd_trace(int argc, char **argv) {
    static const char *const formats[] = { "table", "json", NULL }; /* index = json */
    const char *prompt = NULL, *layers = NULL, *tokenizer = NULL;
    long limit = 10, threads = 0;
    int json = 0;
    PromptOptions po = { 0 };
    Option opts[] = {
        { OPT_STRING('p', "prompt", &prompt, "TEXT", "the text") },
        { OPT_INT(0, "limit", &limit, "N", 1, 1 << 24, "neurons per position (default 10)") },
        { OPT_STRING(0, "layers", &layers, "A-B", "layers to look at (default: all)") },
        { OPT_CHOICE(0, "format", &json, "F", formats,
                     "table (default) or json: {\"tokens\": [{\"pos\", \"id\", \"token\",\n"
                     "\"top\": [{\"layer\", \"neuron\", \"act\", \"writes\"}]}]}") },
        OPT_PROMPT_OPTIONS(&po),
        { OPT_THREADS(&threads) },
        { OPT_TOKENIZER(&tokenizer) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one MODEL");
    if (!prompt && !po.messages) die(NM_EINPUT, "trace: -p TEXT (or --messages FILE) is required");
    if (prompt && po.messages) die(NM_EINPUT, "trace: -p and --messages cannot be combined");
    Error e = { 0 };
    Model m = { 0 };
    open_model_or_exit(&m, argv[1], tokenizer, 1);
    long l0 = 0, l1 = m.cfg.n_layers - 1;
    if (layers && parse_range(layers, 0, m.cfg.n_layers - 1, &l0, &l1, &e)) die(NM_EINPUT, "trace: --layers: %s", e.msg);
    if (limit > (l1 - l0 + 1) * (long)m.cfg.ffn_dim) limit = (l1 - l0 + 1) * (long)m.cfg.ffn_dim;
    Tokenizer *tok;
    int *ids = NULL, n = 0;
    if (tokenizer_new(&m.vocab, &tok, &e) ||
        prompt_encode(tok, &m.vocab, &po, prompt, prompt ? strlen(prompt) : 0, &ids, &n, NULL, &e))
        error_exit(&e);
    if (n < 1) die(NM_EINPUT, "trace: the text gives no tokens");
    if (n > m.cfg.max_seq_len) die(NM_EINPUT, "trace: the text is %d tokens; the model's context holds %d", n, m.cfg.max_seq_len);
    Forward *f;
    ActHit *hits = xcalloc((size_t)n * limit, sizeof *hits);
    if (forward_new(&m, n, (int)threads, &f, &e) || act_trace(f, &m, ids, n, (int)l0, (int)l1, (int)limit, hits, &e)) error_exit(&e);

    /* What each neuron that appears writes: its down column through the
     * lens, decoded once per distinct neuron (not the whole layer). */
    size_t total = (size_t)n * limit, uniq = 0;
    ActHit *u = xmalloc(total * sizeof *u);
    memcpy(u, hits, total * sizeof *u);
    qsort(u, total, sizeof *u, cmp_hit);
    for (size_t i = 0; i < total; i++)
        if (!uniq || cmp_hit(&u[i], &u[uniq - 1])) u[uniq++] = u[i];
    Lens L;
    if (lens_open(&L, &m, NORM_FULL, (int)threads, 0, &e)) error_exit(&e);
    float *vec = xmalloc((size_t)m.cfg.dim * sizeof *vec);
    int *writes = xmalloc(uniq * sizeof *writes);
    LensBatch b;
    lens_batch_init(&b, 1, 1, 0);
    for (size_t i = 0; i < uniq; i++) {
        lens_neuron_vectors(&L, MATRIX_DOWN, u[i].layer, u[i].neuron, 1, vec);
        lens_decode(&L, vec, 1, 1, 0, b.r);
        writes[i] = b.r[0].top[0].id;
    }
    TokenNames tn = lens_vocab_names(&m.vocab);
    cJSON *root = json ? cJSON_CreateObject() : NULL, *arr = json ? cJSON_AddArrayToObject(root, "tokens") : NULL;
    if (!json) printf("%4s %6s  %-16s %10s %10s  %s\n", "pos", "id", "token", "neuron", "act", "writes");
    for (int p = 0; p < n; p++) {
        char *t = token_text(&tn, ids[p]);
        cJSON *tj = NULL, *top = NULL;
        if (json) {
            tj = cJSON_CreateObject();
            cJSON_AddNumberToObject(tj, "pos", p);
            cJSON_AddNumberToObject(tj, "id", ids[p]);
            char *s = utf8_sanitize(m.vocab.text[ids[p]], (size_t)m.vocab.text_len[ids[p]]);
            cJSON_AddStringToObject(tj, "token", s);
            free(s);
            top = cJSON_AddArrayToObject(tj, "top");
            cJSON_AddItemToArray(arr, tj);
        }
        for (long i = 0; i < limit; i++) {
            const ActHit *h = &hits[(size_t)p * limit + i];
            ActHit *at = bsearch(h, u, uniq, sizeof *u, cmp_hit);
            int w = writes[at - u];
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "layer", h->layer);
                cJSON_AddNumberToObject(o, "neuron", h->neuron);
                cJSON_AddNumberToObject(o, "act", h->act);
                char *s = utf8_sanitize(m.vocab.text[w], (size_t)m.vocab.text_len[w]);
                cJSON_AddStringToObject(o, "writes", s);
                free(s);
                cJSON_AddItemToArray(top, o);
            } else {
                char *ws = token_text(&tn, w), nn[32], tq[64];
                snprintf(nn, sizeof nn, "%d:%d", h->layer, h->neuron);
                snprintf(tq, sizeof tq, "\"%.40s\"", t);
                if (i == 0) printf("%4d %6d  %-16s %10s %10.4f  \"%s\"\n", p, ids[p], tq, nn, h->act, ws);
                else printf("%4s %6s  %-16s %10s %10.4f  \"%s\"\n", "", "", "", nn, h->act, ws);
                free(ws);
            }
        }
        free(t);
    }
    if (json) put_json(root, 1);
    lens_batch_free(&b);
    free(vec);
    free(writes);
    free(u);
    free(hits);
    free(ids);
    lens_close(&L);
    forward_free(f);
    tokenizer_free(tok);
    model_close(&m);
    return NM_OK;
}
