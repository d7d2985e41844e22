/* util.h — errors, memory, mapped files, small parsers and the progress bar.
 *
 * Library code never exits: it fills an Error and returns its code, so that
 * the fuzzers and tests can call it. Only the program (src/cli) turns an
 * Error into a message and an exit status.
 */
#ifndef NEUROMAP_UTIL_H
#define NEUROMAP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NEUROMAP_VERSION "0.1.0"

/* Exit codes shared by every command. */
enum { NM_OK = 0, NM_ERUNTIME = 1, NM_EINPUT = 2 };

typedef struct {
    int code;          /* NM_OK, NM_ERUNTIME or NM_EINPUT */
    char msg[1024];    /* one line naming the file/argument and the problem */
} Error;

/* Sets e (if not NULL) and returns code, so callers can `return error_set(...)`. */
int error_set(Error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Allocation that cannot fail quietly. Out of memory is the one failure the
 * library does not hand back as an Error: threading a code out of every
 * allocation would double the code for a case nobody can recover from. So it
 * is fatal: "neuromap: out of memory allocating N bytes" on stderr, then
 * abort(). The library never calls exit. */
void *xmalloc(size_t n);
/* xmalloc at a cache line (64 bytes; free() frees it): for tile kernels'
 * operands, which lose a fifth of their speed when every row straddles two
 * lines (malloc's large blocks start 16 bytes past a page). */
void *xmalloc64(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Overflow-checked size arithmetic: returns 0 on overflow. */
int mul_size(size_t a, size_t b, size_t *out);
int add_size(size_t a, size_t b, size_t *out);

/* A read-only memory mapping of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t size;
    char *path;
} MappedFile;

int map_file(MappedFile *m, const char *path, Error *e);
void unmap_file(MappedFile *m);

/* Reads a (small) file into a NUL-terminated buffer; refuses files over max_bytes. */
int read_file(const char *path, size_t max_bytes, char **out, size_t *len, Error *e);
int path_is_dir(const char *path);
int path_exists(const char *path);
int str_ends_with(const char *s, const char *suffix);

/* Inclusive ranges "A-B" or a single number "A"; bounds checked against [lo, hi]. */
int parse_range(const char *s, long lo, long hi, long *a, long *b, Error *e);
/* Neuron "L:N". */
int parse_neuron(const char *s, int *layer, int *neuron, Error *e);
/* The index of s among names[0..n), or -1. */
int name_index(const char *const *names, int n, const char *s);
/* An enum's names, one table: defines `const char *PREFIX_name(TYPE)` and
 * `int PREFIX_from_name(const char *, TYPE *)` (1 and *out set when s is
 * one of the COUNT names of TABLE, indexed by the enum's values). */
#define DEFINE_ENUM_NAMES(PREFIX, TYPE, TABLE, COUNT)                  \
    const char *PREFIX##_name(TYPE v) { return TABLE[v]; }            \
    int PREFIX##_from_name(const char *s, TYPE *out) {                \
        int i = name_index(TABLE, COUNT, s);                           \
        if (i >= 0) *out = (TYPE)i;                                    \
        return i >= 0;                                                 \
    }

/* Strict integer / float parsing of a whole string. */
int parse_long(const char *s, long *out);
int parse_float(const char *s, double *out);

/* Wall-clock seconds. */
double now_seconds(void);

/* Progress bar on stderr: "label  done/total  rate/s  ETA". Silent when !enabled. */
typedef struct {
    const char *label;
    int64_t total, done;
    double start, last_draw;
    int enabled;
} Progress;
void progress_start(Progress *p, const char *label, int64_t total, int enabled);
void progress_update(Progress *p, int64_t done);
void progress_end(Progress *p);

/* 64-bit FNV-1a, used for model identities in atlases. */
uint64_t fnv1a64(uint64_t h, const void *data, size_t n);
#define FNV1A64_INIT 0xcbf29ce484222325ULL

/* Number of online CPUs (at least 1). */
int cpu_count(void);

/* The one UTF-8 decoder. Decodes the well-formed sequence at s (n bytes
 * available): returns its length 1-4 and, when cp is not NULL, stores its code
 * point; returns 0 when the bytes there are not one (stray continuation,
 * overlong form, surrogate, beyond U+10FFFF, truncated), as RFC 3629 asks. */
int utf8_decode(const unsigned char *s, size_t n, unsigned *cp);
/* Just the length: utf8_decode(s, n, NULL). */
int utf8_sequence_length(const unsigned char *s, size_t n);
/* Writes code point cp (at most U+10FFFF) as UTF-8 into out; returns 1-4. */
int utf8_encode(unsigned cp, char out[4]);

/* Escapes token bytes for TSV: \t \n \\ and \xNN for other non-printable
 * bytes and for every byte that is not part of well-formed UTF-8.
 * Writes at most cap-1 bytes plus NUL; returns the length written. */
size_t escape_token(const char *s, size_t n, char *out, size_t cap);

#endif
