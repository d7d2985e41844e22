/* util.c — see util.h. */
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * Errors */

int error_set(Error *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
        /* Messages quote names read from untrusted files: keep them one printable
         * line, so no newline or terminal escape sequence comes from a file. */
        for (char *p = e->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    return code;
}

/* ----------------------------------------------------------------------------
 * Memory */

/* The one place the library ends the process: see util.h. */
static void *check_alloc(void *p, size_t n) {
    if (!p && n) {
        fflush(stdout);
        fprintf(stderr, "neuromap: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}
void *xmalloc(size_t n) { return check_alloc(malloc(n ? n : 1), n); }
void *xmalloc64(size_t n) { return check_alloc(aligned_alloc(64, (n + 63) / 64 * 64 + (n ? 0 : 64)), n); }
void *xcalloc(size_t n, size_t size) { return check_alloc(calloc(n ? n : 1, size ? size : 1), n * size); }
void *xrealloc(void *p, size_t n) { return check_alloc(realloc(p, n ? n : 1), n); }
char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }
char *xstrndup(const char *s, size_t n) {
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
int add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ----------------------------------------------------------------------------
 * Files */

int map_file(MappedFile *m, const char *path, Error *e) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error_set(e, NM_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return error_set(e, NM_EINPUT, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return error_set(e, NM_ERUNTIME, "%s: cannot map: %s", path, strerror(errno));
        }
        m->data = p;
    }
    close(fd);
    m->path = xstrdup(path);
    return NM_OK;
}

void unmap_file(MappedFile *m) {
    if (m->data) munmap((void *)m->data, m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

int read_file(const char *path, size_t max_bytes, char **out, size_t *len, Error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(e, NM_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(buf);
                fclose(f);
                return error_set(e, NM_EINPUT, "%s: file larger than %zu bytes", path, max_bytes);
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max_bytes) {
        free(buf);
        return bad ? error_set(e, NM_EINPUT, "%s: read error", path)
                   : error_set(e, NM_EINPUT, "%s: file larger than %zu bytes", path, max_bytes);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return NM_OK;
}

int path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
int str_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ----------------------------------------------------------------------------
 * Parsing */

int parse_long(const char *s, long *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

int name_index(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(s, names[i]) == 0) return i;
    return -1;
}

int parse_float(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int parse_range(const char *s, long lo, long hi, long *a, long *b, Error *e) {
    const char *dash = s && *s ? strchr(s + 1, '-') : NULL; /* skip a leading sign */
    long x, y;
    if (dash) {
        char left[64];
        size_t n = (size_t)(dash - s);
        if (n >= sizeof left) return error_set(e, NM_EINPUT, "bad range '%s' (want A-B)", s);
        memcpy(left, s, n);
        left[n] = 0;
        if (!parse_long(left, &x) || !parse_long(dash + 1, &y))
            return error_set(e, NM_EINPUT, "bad range '%s' (want A-B or a single number)", s);
    } else if (parse_long(s, &x)) {
        y = x;
    } else {
        return error_set(e, NM_EINPUT, "bad range '%s' (want A-B or a single number)", s ? s : "");
    }
    if (x > y) return error_set(e, NM_EINPUT, "bad range '%s': start %ld is after end %ld", s, x, y);
    if (x < lo || y > hi)
        return error_set(e, NM_EINPUT, "range '%s' is outside %ld-%ld", s, lo, hi);
    *a = x;
    *b = y;
    return NM_OK;
}

int parse_neuron(const char *s, int *layer, int *neuron, Error *e) {
    const char *colon = s ? strchr(s, ':') : NULL;
    long l, n;
    char left[32];
    if (!colon || (size_t)(colon - s) >= sizeof left)
        return error_set(e, NM_EINPUT, "bad neuron '%s' (want L:N, e.g. 3:117)", s ? s : "");
    memcpy(left, s, (size_t)(colon - s));
    left[colon - s] = 0;
    if (!parse_long(left, &l) || !parse_long(colon + 1, &n) || l < 0 || n < 0 || l > 1000000 || n > 1000000000)
        return error_set(e, NM_EINPUT, "bad neuron '%s' (want L:N with 0-based layer and neuron)", s);
    *layer = (int)l;
    *neuron = (int)n;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Time, progress, hashing, CPUs */

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress_draw(Progress *p, int final) {
    double t = now_seconds() - p->start;
    double rate = t > 0 ? (double)p->done / t : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    int width = 30, filled = p->total ? (int)((double)width * (double)p->done / (double)p->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %lld/%lld  %.0f/s  ETA %.0fs ", p->label, bar, (long long)p->done,
            (long long)p->total, rate, final ? 0.0 : eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

void progress_start(Progress *p, const char *label, int64_t total, int enabled) {
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start = p->last_draw = now_seconds();
    p->enabled = enabled;
}

void progress_update(Progress *p, int64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double t = now_seconds();
    if (t - p->last_draw < 0.1) return;
    p->last_draw = t;
    progress_draw(p, 0);
}

void progress_end(Progress *p) {
    if (p->enabled) progress_draw(p, 1);
}

uint64_t fnv1a64(uint64_t h, const void *data, size_t n) {
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ----------------------------------------------------------------------------
 * UTF-8. The lead byte gives the length; RFC 3629's table of well-formed
 * sequences then narrows the second byte, which is where overlong forms
 * (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points past
 * U+10FFFF (F4 90..BF) show; C0, C1 and F5..FF never start a sequence. */

int utf8_decode(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if ((size_t)len > n || s[1] < lo || s[1] > hi) return 0;
    unsigned v = c & (0x7Fu >> len); /* the lead byte's payload: 5, 4 or 3 bits */
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (cp) *cp = v;
    return len;
}

int utf8_sequence_length(const unsigned char *s, size_t n) { return utf8_decode(s, n, NULL); }

int utf8_encode(unsigned cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    int len = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (int i = len - 1; i > 0; i--, cp >>= 6) out[i] = (char)(0x80 | (cp & 0x3F));
    out[0] = (char)(((0xF00u >> len) & 0xF0) | cp); /* 110xxxxx, 1110xxxx or 11110xxx */
    return len;
}

size_t escape_token(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    if (cap == 0) return 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        int len = utf8_sequence_length(u, n - i);
        char tmp[5];
        const char *rep = tmp;
        size_t k;
        if (len > 1) { /* a whole multi-byte character, copied as is */
            rep = s + i;
            k = (size_t)len;
        } else {
            unsigned char c = *u;
            len = 1;
            if (c == '\t') rep = "\\t";
            else if (c == '\n') rep = "\\n";
            else if (c == '\\') rep = "\\\\";
            else if (c < 0x20 || c >= 0x7f) snprintf(tmp, sizeof tmp, "\\x%02X", c); /* control or not UTF-8 */
            else { tmp[0] = (char)c; tmp[1] = 0; }
            k = strlen(rep);
        }
        if (o + k >= cap) break;
        memcpy(out + o, rep, k);
        o += k;
        i += (size_t)len;
    }
    out[o] = 0;
    return o;
}
