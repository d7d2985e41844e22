/* fuzz.h — what every libFuzzer target (fuzz/fuzz_*.c) shares.
 *
 * The loaders take paths, not buffers, and that is what we want to fuzz: the
 * real path from model_open() through map_file() and the parser to
 * model_close(). So the fuzz input becomes files: an anonymous memfd reached
 * as /proc/self/fd/N for single-file formats, or a private directory with the
 * names a Hugging Face snapshot has. One input can carry several files,
 * separated by FUZZ_SEP (a seed is `cat a; printf "$SEP"; cat b`): a marker
 * survives libFuzzer's insertions and deletions far better than length
 * prefixes, which every mutation near the front would shift.
 *
 * Beyond "no crash, no leak", each target checks what the model layer
 * promises: a failed open fills a one-line message with exit code 1 or 2, and
 * a successful one has every tensor view inside a mapped file, with exactly
 * the bytes its shape and dtype need (ASan cannot see reads past an mmap).
 */
#ifndef NEUROMAP_FUZZ_H
#define NEUROMAP_FUZZ_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/registry.h"
#include "model/model.h"
#include "text/tokenizer.h"

#define FUZZ_SEP "\n--8<--\n"
#define FUZZ_SEP_LEN 8

/* Fails the run the way a sanitizer does: message, then abort (libFuzzer saves the input). */
#define FUZZ_ASSERT(cond, ...)                                     \
    do {                                                           \
        if (!(cond)) {                                             \
            fprintf(stderr, "fuzz invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                          \
            fputc('\n', stderr);                                   \
            abort();                                               \
        }                                                          \
    } while (0)

/* ----------------------------------------------------------------------------
 * Splitting one input into files */

/* Splits data at FUZZ_SEP into at most max parts; the last part keeps any
 * further separators. Missing parts are empty. Returns the number found. */
static inline int fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; n < max - 1 && i + FUZZ_SEP_LEN <= size; i++) {
        if (memcmp(data + i, FUZZ_SEP, FUZZ_SEP_LEN) != 0) continue;
        part[n] = data + start;
        len[n++] = i - start;
        start = i + FUZZ_SEP_LEN;
        i = start - 1;
    }
    part[n] = data + start;
    len[n++] = size - start;
    for (int k = n; k < max; k++) {
        part[k] = data + size;
        len[k] = 0;
    }
    return n;
}

/* ----------------------------------------------------------------------------
 * Files the loaders can open */

static inline void fuzz_write_all(int fd, const uint8_t *data, size_t size) {
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w <= 0) {
            perror("fuzz: write");
            abort();
        }
        data += w;
        size -= (size_t)w;
    }
}

/* An anonymous in-memory file holding data, reachable as path ("/proc/self/fd/N").
 * Returns its descriptor; close it after the run. */
static inline int fuzz_memfd(const char *name, const uint8_t *data, size_t size, char path[64]) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz: memfd_create");
        abort();
    }
    fuzz_write_all(fd, data, size);
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* A private directory for this process (in /dev/shm when there is one),
 * created on first use and removed at exit. */
static char fuzz_dir_path[256];

static inline void fuzz_dir_clear(void) {
    DIR *d = opendir(fuzz_dir_path);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, de->d_name);
            unlink(p);
        }
    closedir(d);
}

static inline void fuzz_dir_remove(void) {
    fuzz_dir_clear();
    rmdir(fuzz_dir_path);
}

static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *base = path_is_dir("/dev/shm") ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/neuromap-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes name in the private directory; an empty part means "no such file". */
static inline void fuzz_dir_put(const char *name, const uint8_t *data, size_t size, int always) {
    if (!size && !always) return;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the model directory");
        abort();
    }
}

/* ----------------------------------------------------------------------------
 * Opening, checking, closing */

/* Is [p, p+n) inside one of the model's mapped files? */
static inline int fuzz_in_mapping(const Model *m, const void *p, size_t n) {
    const uint8_t *b = p;
    for (int i = 0; i < m->n_files; i++) {
        const MappedFile *f = &m->files[i];
        if (f->data && b >= f->data && b <= f->data + f->size && n <= (size_t)(f->data + f->size - b)) return 1;
    }
    return 0;
}

/* A hostile vocabulary (pieces, merges, special tokens, split regex) must
 * build a tokenizer or be refused with a message, and then encode. */
static inline void fuzz_check_tokenizer(const Vocab *v) {
    if (v->n_tokens <= 0) return;
    Tokenizer *t = NULL;
    Error e = { 0 };
    if (tokenizer_new(v, &t, &e)) {
        FUZZ_ASSERT(e.code == NM_EINPUT && e.msg[0], "tokenizer_new failed without a message");
        return;
    }
    static const char text[] = "Hello world\n <s> 12 caf\xC3\xA9 \xF0\x9F\xA6\x99 \xFF";
    for (int flags = 0; flags <= (TOK_ADD_BOS | TOK_SPECIAL); flags++) {
        if ((flags & TOK_ADD_BOS) && v->bos_id < 0) continue;
        int *ids = NULL, n = 0;
        if (tokenizer_encode(t, text, sizeof text - 1, flags, &ids, &n, &e) != NM_OK) {
            FUZZ_ASSERT(e.msg[0], "tokenizer_encode failed without a message");
            continue;
        }
        for (int i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < v->n_tokens, "encoded id %d", ids[i]);
        free(tokenizer_decode(t, ids, n, NULL));
        free(ids);
    }
    tokenizer_free(t);
}

static inline void fuzz_check_model(const Model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const Tensor *t = &m->tensors[i];
        FUZZ_ASSERT(t->n_dims >= 1 && t->n_dims <= 4, "tensor %s has %d dims", t->name, t->n_dims);
        int64_t count = 1;
        for (int d = 0; d < t->n_dims; d++) {
            FUZZ_ASSERT(t->shape[d] >= 0, "tensor %s dim %d is %lld", t->name, d, (long long)t->shape[d]);
            FUZZ_ASSERT(!__builtin_mul_overflow(count, t->shape[d], &count), "tensor %s: element count overflows", t->name);
        }
        FUZZ_ASSERT(t->nbytes == dtype_bytes(t->type, count), "tensor %s: %zu bytes for %lld %s values", t->name, t->nbytes,
                    (long long)count, dtype_name(t->type));
        FUZZ_ASSERT(fuzz_in_mapping(m, t->data, t->nbytes), "tensor %s lies outside every mapped file", t->name);
    }
    if (!m->has_weights) return;
    /* Dequantise the first and last row of every bound matrix: the views the
     * commands will read must be readable. */
    float *row = xmalloc((size_t)(m->cfg.ffn_dim > m->cfg.dim ? m->cfg.ffn_dim : m->cfg.dim) * sizeof *row * 2 + 64);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const Tensor *ts[4] = { m->layers[l].up, m->layers[l].gate, m->layers[l].down, m->layers[l].ffn_norm };
        for (int k = 0; k < 4; k++) {
            FUZZ_ASSERT(ts[k] != NULL, "layer %d role %d unbound", l, k);
            tensor_rows_f32(ts[k], 0, 1, row);
            tensor_rows_f32(ts[k], tensor_rows(ts[k]) - 1, 1, row);
        }
    }
    free(row);
    const Vocab *v = &m->vocab;
    for (int i = 0; i < v->n_tokens; i++) {
        FUZZ_ASSERT(v->piece && v->piece[i] && v->piece_len[i] >= 0, "token %d has no piece", i);
        FUZZ_ASSERT(v->text && v->text[i] && v->text_len[i] >= 0, "token %d has no text", i);
    }
    fuzz_check_tokenizer(v);
}

/* model_open → check → model_close; a failure must carry a message and code. */
static inline void fuzz_open(const char *path, const char *tokenizer_path) {
    Model m;
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer_path };
    int rc = model_open(&m, path, &o, &e);
    if (rc) {
        FUZZ_ASSERT(rc == NM_EINPUT || rc == NM_ERUNTIME, "model_open returned %d", rc);
        FUZZ_ASSERT(e.code == rc && e.msg[0], "error %d without a message", rc);
        FUZZ_ASSERT(!strchr(e.msg, '\n'), "message is not one line: %s", e.msg);
        return;
    }
    fuzz_check_model(&m);
    model_close(&m);
}

#endif
