/* serve.h — `neuromap serve`: what the server's files share.
 *
 *   cmd_serve.c     the command: options, the libmicrohttpd daemon, request
 *                   bodies, routing, the compiled-in pages, shutdown
 *   serve_api.c     the JSON API (GET): info, neuron, find, layer, examples,
 *                   and with the model: write, related, effect
 *   serve_stream.c  POST /api/generate as a text/event-stream, POST /api/probe
 *
 * A handler answers with a Reply; cmd_serve.c turns it into a response.
 */
#ifndef NEUROMAP_SERVE_H
#define NEUROMAP_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "neuromap.h"


struct MHD_Connection;
struct MHD_Response;
struct cJSON;

typedef struct {
    Atlas *atlas, *diff;          /* diff: the --diff atlas, or NULL */
    ActAtlas *acts;               /* the atlas's activations (neuromap activations), or NULL */
    const char *atlas_path, *diff_path;
    Model model;                  /* with --model; has_model says so */
    int has_model, threads;
    Tokenizer *tok;
    Lens lens, lens_gain;         /* the atlas's norm (decoding), and gain (predicted effects) */
    pthread_mutex_t lens_mu;      /* the lenses are used by one request at a time */
    atomic_int generating;        /* one generation at a time per model */
    int token_delay_ms;           /* tests only (NEUROMAP_SERVE_TOKEN_DELAY_MS): a pause after each
                                     streamed token, so a test can watch a stream in progress
                                     (and NEUROMAP_SERVE_IDLE_TIMEOUT_S, in cmd_serve.c: the idle
                                     cut-off, 30 s, made short enough to test) */
} Server;

/* A request as the handlers see it. */
typedef struct {
    struct MHD_Connection *c;
    const char *method;
    char *const *seg;             /* the path split at '/': "api", "neuron", "up", "0", "7" */
    int n_seg;
    const char *body;             /* POST: the whole body (≤ SERVE_MAX_BODY), NUL-terminated */
    size_t body_len;
} Request;

enum { SERVE_MAX_BODY = 1 << 20 };

/* A JSON answer: status and body (malloc'd); retry_after > 0 adds that header. */
typedef struct {
    int status;
    char *body;
    size_t len;
    int retry_after;
    struct MHD_Response *stream;  /* instead of body: a response already made (event stream) */
} Reply;

/* {"error": msg} with status. */
Reply reply_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The document, printed on one line, with status 200; takes o. */
Reply reply_json(struct cJSON *o);

/* GET /api/...: the answer, 404 for an unknown path. */
Reply serve_api(Server *s, const Request *r);
/* POST /api/generate (an event stream) and POST /api/probe. */
Reply serve_generate(Server *s, const Request *r);
Reply serve_probe(Server *s, const Request *r);

#endif
