/* cmd_serve.c — `neuromap serve ATLAS`: the web atlas.
 *
 * A libmicrohttpd daemon in thread-pool mode serves the pages compiled into
 * the binary (web/, see serve_assets.h) and the JSON API they use
 * (serve_api.c, serve_stream.c). Every request is answered from memory,
 * the atlas, or the model: no path from a request ever reaches the file
 * system.
 *
 * Limits that keep one client from taking the server: bodies over 1 MiB
 * get 413, a connection idle for 30 s is closed, at most 512 connections
 * (128 per IP address), one generation at a time per model (429 otherwise).
 * Malformed requests are refused by libmicrohttpd itself with 400.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "cli/serve.h"
#include "cli/serve_assets.h"

static const CommandHelp help = {
    .name = "serve",
    .usage = "usage: neuromap serve ATLAS [--model MODEL [--tokenizer FILE]] [--diff OTHER_ATLAS]\n"
             "                      [--host 127.0.0.1] [--port 8080] [--threads N]\n",
    .about = "Serves the web atlas: pages to browse ATLAS (neurons, layers, search) and the JSON\n"
             "API they use (README, \"Web atlas\"). With --model, also what needs the weights: the\n"
             "write side decoded both ways, related neurons, predicted effects, and steering with\n"
             "streamed generation. With --diff, the agreement of the two atlases.\n"
             "It listens on 127.0.0.1 unless --host says otherwise: there is no authentication.\n",
};

enum { POOL_MAX = 8, CONNECTIONS = 512, PER_IP = 128, IDLE_TIMEOUT_S = 30, MAX_SEGMENTS = 16 };

/* ----------------------------------------------------------------------------
 * Responses */

/* Headers every answer carries: the pages run only their own script, fetch
 * only from here, and are never framed; nothing is sniffed as another type. */
static void add_safety_headers(struct MHD_Response *resp) {
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result queue_reply(struct MHD_Connection *c, Reply r) {
    struct MHD_Response *resp = r.stream;
    if (!resp) {
        resp = MHD_create_response_from_buffer(r.len, r.body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(r.body);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    }
    add_safety_headers(resp);
    if (r.retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r.retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static const WebAsset *asset(const char *path) {
    for (int i = 0; i < web_asset_count; i++)
        if (strcmp(web_assets[i].path, path) == 0) return &web_assets[i];
    return NULL;
}

static enum MHD_Result queue_asset(struct MHD_Connection *c, const WebAsset *a) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a->type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    add_safety_headers(resp);
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ----------------------------------------------------------------------------
 * Requests */

/* What we keep between the calls libmicrohttpd makes for one request. */
typedef struct {
    char *body;
    size_t len, dropped;
    int too_big;
} Upload;

enum { SERVE_DROP_MAX = 16 << 20 };

/* Splits path at '/' into seg (empty segments dropped); -1 when too many. */
static int split_path(char *path, char **seg) {
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(path, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGMENTS) return -1;
        seg[n++] = p;
    }
    return n;
}

/* The pages are one document (index.html) that reads its location: every
 * page path gets it, and only those. */
static int is_page(char **seg, int n) {
    if (n == 0) return 1;
    if (n == 1 && (strcmp(seg[0], "find") == 0 || strcmp(seg[0], "diff") == 0)) return 1;
    return n == 4 && strcmp(seg[0], "neuron") == 0;
}

static enum MHD_Result dispatch(Server *s, struct MHD_Connection *c, const char *url, const char *method, Upload *u) {
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (u->too_big) return queue_reply(c, reply_error(MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %d bytes", SERVE_MAX_BODY));
    size_t n = strlen(url);
    if (n > 4096) return queue_reply(c, reply_error(MHD_HTTP_URI_TOO_LONG, "the path is too long"));
    char path[4097], *seg[MAX_SEGMENTS];
    memcpy(path, url, n + 1);
    int n_seg = split_path(path, seg);
    if (n_seg < 0) return queue_reply(c, reply_error(MHD_HTTP_NOT_FOUND, "no such path"));
    if (n_seg >= 1 && strcmp(seg[0], "api") == 0) {
        Request r = { c, method, seg, n_seg, u->body, u->len };
        int gen = n_seg == 2 && strcmp(seg[1], "generate") == 0, probe = n_seg == 2 && strcmp(seg[1], "probe") == 0;
        if ((gen || probe) && !post) return queue_reply(c, reply_error(MHD_HTTP_METHOD_NOT_ALLOWED, "POST /api/%s", seg[1]));
        if (gen) return queue_reply(c, serve_generate(s, &r));
        if (probe) return queue_reply(c, serve_probe(s, &r));
        if (!get) return queue_reply(c, reply_error(MHD_HTTP_METHOD_NOT_ALLOWED, "the API answers GET (and POST /api/generate, /api/probe)"));
        return queue_reply(c, serve_api(s, &r));
    }
    if (!get) return queue_reply(c, reply_error(MHD_HTTP_METHOD_NOT_ALLOWED, "pages answer GET"));
    const WebAsset *a = is_page(seg, n_seg) ? asset("/index.html")
                      : strcmp(url, "/favicon.ico") == 0 ? asset("/favicon.svg") : asset(url);
    if (!a || strcmp(url, "/index.html") == 0) return queue_reply(c, reply_error(MHD_HTTP_NOT_FOUND, "no such page"));
    return queue_asset(c, a);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx) {
    Upload *u = *ctx;
    if (!u) { /* the headers have arrived: refuse a declared oversize body before reading it */
        *ctx = u = xcalloc(1, sizeof *u);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > SERVE_MAX_BODY) {
            u->too_big = 1;
            return dispatch(cls, c, url, method, u);
        }
        return MHD_YES;
    }
    if (*size) { /* a piece of the body */
        if (!u->too_big && u->len + *size <= SERVE_MAX_BODY) {
            u->body = xrealloc(u->body, u->len + *size + 1);
            memcpy(u->body + u->len, data, *size);
            u->len += *size;
            u->body[u->len] = 0;
            *size = 0;
            return MHD_YES;
        }
        /* Over the limit without having said so (chunked). libmicrohttpd
         * answers only once the body is in, so the rest is read and dropped,
         * and the 413 goes out at its end; a client that sends on past
         * SERVE_DROP_MAX is cut off instead. */
        u->too_big = 1;
        u->dropped += *size;
        *size = 0;
        return u->dropped > SERVE_DROP_MAX ? MHD_NO : MHD_YES;
    }
    return dispatch(cls, c, url, method, u);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode why) {
    Upload *u = *ctx;
    if (u) free(u->body);
    free(u);
    *ctx = NULL;
}

/* ----------------------------------------------------------------------------
 * The command */

static Atlas *open_atlas_or_exit(const char *path, const char *what) {
    Atlas *a;
    Error e = { 0 };
    if (!atlas_is_atlas(path)) die(NM_EINPUT, "serve: %s is not an atlas (make one with 'neuromap map')", path);
    if (atlas_open(&a, path, &e)) die(e.code, "serve: %s: %s", what, e.msg);
    return a;
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *diff = NULL, *host = "127.0.0.1";
    long port = 8080, threads = 0;
    Option opts[] = {
        { OPT_STRING(0, "model", &model, "MODEL", "the model the atlas was mapped from (same shape)") },
        { OPT_TOKENIZER(&tokenizer) },
        { OPT_STRING(0, "diff", &diff, "ATLAS", "a second atlas of the same shape (a fine-tune's) to compare with") },
        { OPT_STRING(0, "host", &host, "ADDR", "IPv4 address to listen on (default 127.0.0.1)") },
        { OPT_INT(0, "port", &port, "P", 0, 65535, "port (default 8080; 0: a free one, printed)") },
        { OPT_THREADS(&threads) },
        { OPT_END() },
    };
    options_parse_args(&help, opts, argc, argv, 1, "one ATLAS");
    if (tokenizer && !model) die(NM_EINPUT, "serve: --tokenizer goes with --model");
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die(NM_EINPUT, "serve: --host must be an IPv4 address, not '%s'", host);

    Server s = { .atlas_path = argv[1], .diff_path = diff, .threads = (int)threads };
    pthread_mutex_init(&s.lens_mu, NULL);
    const char *delay = getenv("NEUROMAP_SERVE_TOKEN_DELAY_MS"); /* tests: see serve.h */
    long delay_ms;
    if (delay && parse_long(delay, &delay_ms) && delay_ms > 0 && delay_ms <= 10000) s.token_delay_ms = (int)delay_ms;
    const char *idle = getenv("NEUROMAP_SERVE_IDLE_TIMEOUT_S"); /* tests: a slow client's cut-off, sooner */
    long idle_s = IDLE_TIMEOUT_S;
    if (idle && (!parse_long(idle, &idle_s) || idle_s < 1 || idle_s > 3600)) idle_s = IDLE_TIMEOUT_S;
    s.atlas = open_atlas_or_exit(s.atlas_path, s.atlas_path);
    const AtlasInfo *in = atlas_info(s.atlas);
    Error ae = { 0 };
    if (act_atlas_open(&s.acts, s.atlas_path, &ae)) {
        s.acts = NULL; /* an atlas without activations is the usual case; say why only when it has some */
        if (!strstr(ae.msg, "holds no activations")) fprintf(stderr, "neuromap: serve: no activation examples: %s\n", ae.msg);
    }
    if (diff) {
        s.diff = open_atlas_or_exit(diff, diff);
        const AtlasInfo *d = atlas_info(s.diff);
        if (d->n_layers != in->n_layers || d->ffn_dim != in->ffn_dim)
            die(NM_EINPUT, "serve: %s has %d layers of %d neurons, %s %d of %d: not the same shape", diff, d->n_layers, d->ffn_dim,
                s.atlas_path, in->n_layers, in->ffn_dim);
    }
    Error e = { 0 };
    if (model) {
        open_model_or_exit(&s.model, model, tokenizer, 1);
        const Config *cfg = &s.model.cfg;
        if (cfg->n_layers != in->n_layers || cfg->ffn_dim != in->ffn_dim || cfg->vocab_size != in->vocab_size)
            die(NM_EINPUT, "serve: %s has %d layers of %d neurons and %d tokens; the atlas %d, %d and %d: not its model", model,
                cfg->n_layers, cfg->ffn_dim, cfg->vocab_size, in->n_layers, in->ffn_dim, in->vocab_size);
        if (s.model.identity != in->identity)
            fprintf(stderr, "neuromap: warning: %s is not the model %s was mapped from (its layout differs)\n", model, s.atlas_path);
        if (tokenizer_new(&s.model.vocab, &s.tok, &e) || lens_open(&s.lens, &s.model, in->norm, (int)threads, 0, &e) ||
            lens_open(&s.lens_gain, &s.model, NORM_GAIN, (int)threads, 0, &e))
            error_exit(&e);
        s.has_model = 1;
    }

    /* SIGINT and SIGTERM are waited for below: block them before the
     * daemon's threads start, so that they inherit the mask and only
     * sigwait() sees the signal. A client that hangs up must not kill us. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (strcmp(host, "127.0.0.1") != 0)
        fprintf(stderr, "neuromap: warning: listening on %s: anyone who can reach it can read the atlas%s; there is no "
                        "authentication\n", host, s.has_model ? " and run the model" : "");
    int cpus = cpu_count(), pool = cpus < 2 ? 2 : cpus > POOL_MAX ? POOL_MAX : cpus;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, on_request, &s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)pool,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)idle_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (!d) die(NM_ERUNTIME, "serve: cannot listen on %s:%ld (in use, or not an address of this machine)", host, port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned real_port = info ? info->port : (unsigned)port;
    fprintf(stderr, "neuromap: serving %s at http://%s:%u/\n", s.atlas_path, host, real_port);
    fflush(stderr);

    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "neuromap: %s: stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    MHD_stop_daemon(d); /* waits for the requests in flight */
    if (s.has_model) {
        lens_close(&s.lens);
        lens_close(&s.lens_gain);
        tokenizer_free(s.tok);
        model_close(&s.model);
    }
    atlas_close(s.diff);
    act_atlas_close(s.acts);
    atlas_close(s.atlas);
    pthread_mutex_destroy(&s.lens_mu);
    return NM_OK;
}
