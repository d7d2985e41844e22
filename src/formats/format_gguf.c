/* format_gguf.c — GGUF v2/v3, llama.cpp's checkpoint format.
 *
 * Layout (little-endian):
 *
 *   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *   n_kv      × { string key, u32 value_type, value }
 *   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to general.alignment (default 32), then the data section;
 *   tensor offsets count from its start and are multiples of the alignment.
 *
 * A string is a u64 length and that many bytes (no NUL); an array is a u32
 * element type, a u64 count and the elements (arrays may nest). ne[] lists
 * dimensions innermost first, the reverse of numpy: a matrix with ne =
 * [cols, rows] is registered with shape {rows, cols}.
 *
 * The file is untrusted: every length and count is checked against the bytes
 * that remain, and against sane maxima, before anything is allocated or read,
 * so a 2^40-tensor header or a 2^60-byte string is refused in microseconds.
 * Tensors stay in the mapping and are dequantised a row at a time on demand.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "formats/loaders.h"

enum {
    GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES
};
static const char *const gguf_type_names[GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const size_t gguf_scalar_bytes[GGUF_NTYPES] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (1u << 16)
#define GGUF_MAX_DEPTH 4           /* arrays of arrays of ... */
#define GGUF_MAX_NAME 256          /* tensor name bytes (ggml itself allows 63) */
#define GGUF_MAX_TENSORS (1 << 20)
#define GGUF_MAX_KV (1 << 20)
#define GGUF_MAX_DIM ((uint64_t)1 << 40)
#define GGUF_MAX_VOCAB (1 << 22)   /* as check_config in model.c */
#define KV_MIN_BYTES 13            /* u64 key length, u32 type, a 1-byte value */
#define TENSOR_INFO_MIN_BYTES 32   /* u64 name length, u32 n_dims, one u64 ne, u32 type, u64 offset */

/* ----------------------------------------------------------------------------
 * Reading: a cursor that never steps outside the mapping */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    const char *path;
    Error *e;
    int err;         /* sticky: the first error's code, later reads do nothing */
    char what[160];  /* what is being read, for the error message */
} Reader;

static int reader_fail(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reader_fail(Reader *r, const char *fmt, ...) {
    if (r->err) return r->err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return r->err = error_set(r->e, NM_EINPUT, "%s: %s: %s", r->path, r->what, msg);
}

static size_t reader_left(const Reader *r) { return r->size - r->pos; }

static const uint8_t *take(Reader *r, uint64_t n) {
    if (r->err) return NULL;
    if (n > reader_left(r)) {
        reader_fail(r, "truncated: %llu bytes needed at offset %zu, the file ends %zu bytes later",
                    (unsigned long long)n, r->pos, reader_left(r));
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += (size_t)n;
    return p;
}

static uint32_t take_u32(Reader *r) {
    uint32_t v = 0;
    const uint8_t *p = take(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}

static uint64_t take_u64(Reader *r) {
    uint64_t v = 0;
    const uint8_t *p = take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

/* A string's bytes (not NUL-terminated); *len its length. */
static const char *take_str(Reader *r, uint64_t *len) {
    *len = take_u64(r);
    if (!r->err && *len > reader_left(r)) {
        reader_fail(r, "a string of %llu bytes at offset %zu runs past the end of the file (truncated or corrupt)", (unsigned long long)*len,
                    r->pos - 8);
        *len = 0;
        return NULL;
    }
    return (const char *)take(r, *len);
}

/* Walks over one metadata value of the given type, checking every length. */
static void skip_value(Reader *r, uint32_t type, int depth) {
    if (type >= GGUF_NTYPES) {
        reader_fail(r, "unknown value type %u", type);
        return;
    }
    if (type == GGUF_STRING) {
        uint64_t len;
        take_str(r, &len);
    } else if (type == GGUF_ARRAY) {
        uint32_t elem = take_u32(r);
        uint64_t count = take_u64(r);
        if (r->err) return;
        if (elem >= GGUF_NTYPES) {
            reader_fail(r, "array of unknown element type %u", elem);
            return;
        }
        if (elem == GGUF_ARRAY && depth + 1 >= GGUF_MAX_DEPTH) {
            reader_fail(r, "arrays nested more than %d deep", GGUF_MAX_DEPTH);
            return;
        }
        /* The smallest an element can be: a string's length, an array's type + count. */
        size_t min = elem == GGUF_STRING ? 8 : elem == GGUF_ARRAY ? 12 : gguf_scalar_bytes[elem];
        if (count > reader_left(r) / min) {
            reader_fail(r, "an array of %llu %s values cannot fit in the %zu bytes left", (unsigned long long)count,
                        gguf_type_names[elem], reader_left(r));
            return;
        }
        if (elem == GGUF_STRING || elem == GGUF_ARRAY)
            for (uint64_t i = 0; i < count && !r->err; i++) skip_value(r, elem, depth + 1);
        else
            take(r, count * min);
    } else {
        take(r, gguf_scalar_bytes[type]);
    }
}

/* ----------------------------------------------------------------------------
 * One parsed file: its metadata and tensor table (values stay in the mapping) */

typedef struct {
    const char *key;
    size_t key_len;
    uint32_t type;
    size_t value;        /* file offset of the value */
} GgufKV;

typedef struct {
    const char *name;
    size_t name_len;
    uint32_t n_dims, type;
    uint64_t ne[4];      /* innermost first */
    uint64_t offset;     /* from the start of the data section */
} GgufTensorInfo;

typedef struct {
    const MappedFile *file;
    uint64_t n_kv, n_tensors;
    GgufKV *kv;
    GgufTensorInfo *ti;
    size_t meta_end;     /* end of header + metadata: what the identity hashes */
    size_t alignment, data_start;
} Gguf;

static void gguf_free(Gguf *g) {
    free(g->kv);
    free(g->ti);
    memset(g, 0, sizeof *g);
}

static const GgufKV *find_kv(const Gguf *g, const char *key) {
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && memcmp(g->kv[i].key, key, n) == 0) return &g->kv[i];
    return NULL;
}

static uint32_t byteswap32(uint32_t x) { return x >> 24 | (x >> 8 & 0xff00) | (x << 8 & 0xff0000) | x << 24; }

static int parse_header(Gguf *g, Reader *r) {
    snprintf(r->what, sizeof r->what, "GGUF header");
    const uint8_t *magic = take(r, 4);
    if (magic && memcmp(magic, "GGUF", 4) != 0) return reader_fail(r, "not a GGUF file (bad magic)");
    uint32_t version = take_u32(r);
    if (r->err) return r->err;
    if (version == 1) return reader_fail(r, "GGUF version 1 is not supported (v2 and v3 are; re-convert the model)");
    if (byteswap32(version) == 2 || byteswap32(version) == 3) return reader_fail(r, "big-endian GGUF is not supported");
    if (version != 2 && version != 3) return reader_fail(r, "unsupported GGUF version %u (v2 and v3 are read)", version);
    g->n_tensors = take_u64(r);
    g->n_kv = take_u64(r);
    if (r->err) return r->err;
    /* Counts the rest of the file cannot hold are refused before allocating. */
    if (g->n_kv > GGUF_MAX_KV || g->n_kv > reader_left(r) / KV_MIN_BYTES)
        return reader_fail(r, "claims %llu metadata keys, more than the %zu bytes after the header can hold",
                           (unsigned long long)g->n_kv, reader_left(r));
    if (g->n_tensors > GGUF_MAX_TENSORS || g->n_tensors > reader_left(r) / TENSOR_INFO_MIN_BYTES)
        return reader_fail(r, "claims %llu tensors, more than the %zu bytes after the header can hold",
                           (unsigned long long)g->n_tensors, reader_left(r));
    return NM_OK;
}

/* What the reader is at, for its messages: "WHAT i+1 of n". */
static void reader_at(Reader *r, const char *what, uint64_t i, uint64_t n) {
    snprintf(r->what, sizeof r->what, "%s %llu of %llu", what, (unsigned long long)i + 1, (unsigned long long)n);
}

static int parse_metadata(Gguf *g, Reader *r) {
    g->kv = xcalloc((size_t)g->n_kv, sizeof *g->kv);
    for (uint64_t i = 0; i < g->n_kv && !r->err; i++) {
        GgufKV *kv = &g->kv[i];
        reader_at(r, "metadata key", i, g->n_kv);
        uint64_t len;
        kv->key = take_str(r, &len);
        kv->key_len = (size_t)len;
        if (r->err) break;
        snprintf(r->what, sizeof r->what, "metadata key '%.*s'", (int)(kv->key_len < 80 ? kv->key_len : 80), kv->key);
        kv->type = take_u32(r);
        kv->value = r->pos;
        skip_value(r, kv->type, 0);
    }
    g->meta_end = r->pos;
    return r->err;
}

/* general.alignment: a power of two, default 32. */
static int read_alignment(Gguf *g, Reader *r) {
    const GgufKV *kv = find_kv(g, "general.alignment");
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv) return NM_OK;
    snprintf(r->what, sizeof r->what, "general.alignment");
    if (kv->type != GGUF_U32) return reader_fail(r, "has type %s, not u32", gguf_type_names[kv->type]);
    uint32_t a;
    memcpy(&a, r->data + kv->value, 4);
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
        return reader_fail(r, "%u is not a power of two up to %u", a, GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return NM_OK;
}

static int parse_tensor_infos(Gguf *g, Reader *r) {
    g->ti = xcalloc((size_t)g->n_tensors, sizeof *g->ti);
    for (uint64_t i = 0; i < g->n_tensors && !r->err; i++) {
        GgufTensorInfo *t = &g->ti[i];
        reader_at(r, "tensor info", i, g->n_tensors);
        uint64_t len;
        t->name = take_str(r, &len);
        if (r->err) break;
        if (len == 0 || len > GGUF_MAX_NAME) return reader_fail(r, "name of %llu bytes (1 to %d allowed)", (unsigned long long)len, GGUF_MAX_NAME);
        t->name_len = (size_t)len;
        snprintf(r->what, sizeof r->what, "tensor %.*s", (int)t->name_len, t->name);
        t->n_dims = take_u32(r);
        if (!r->err && (t->n_dims < 1 || t->n_dims > 4)) return reader_fail(r, "has %u dimensions (1 to 4 allowed)", t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) t->ne[d] = take_u64(r);
        t->type = take_u32(r);
        t->offset = take_u64(r);
    }
    if (r->err) return r->err;
    /* The data section starts at the next multiple of the alignment. */
    g->data_start = (r->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && g->data_start > r->size)
        return reader_fail(r, "truncated: the data section would start at offset %zu, past the end of the file (%zu bytes)",
                           g->data_start, r->size);
    return NM_OK;
}

static int gguf_parse(Gguf *g, const MappedFile *f, Error *e) {
    memset(g, 0, sizeof *g);
    g->file = f;
    Reader r = { .data = f->data, .size = f->size, .path = f->path, .e = e };
    if (parse_header(g, &r) || parse_metadata(g, &r) || read_alignment(g, &r) || parse_tensor_infos(g, &r)) return r.err;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Tensors: every one checked, then registered as a view into the mapping */

typedef struct {
    uint64_t start, end; /* file offsets */
    const Tensor *t;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Checks one tensor info against the file: a dtype we read, whole blocks
 * per row, a sane shape, an aligned span inside the data section. */
static int check_tensor(const Gguf *g, const GgufTensorInfo *t, const char *name, DType *dt, Span *span, Error *e) {
    const char *path = g->file->path;
    if (!dtype_from_ggml(t->type, dt)) {
        const char *known = ggml_type_name(t->type);
        if (known)
            return error_set(e, NM_EINPUT, "%s: tensor %s has type %s, which neuromap cannot read", path, name, known);
        return error_set(e, NM_EINPUT, "%s: tensor %s has unknown ggml type %u", path, name, t->type);
    }
    const DTypeTraits *tr = dtype_info(*dt);
    int64_t count = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] < 1 || t->ne[d] > GGUF_MAX_DIM || __builtin_mul_overflow(count, (int64_t)t->ne[d], &count) ||
            count > (int64_t)1 << 50)
            return error_set(e, NM_EINPUT, "%s: tensor %s has an impossible shape (ne[%u] = %llu)", path, name, d,
                             (unsigned long long)t->ne[d]);
    }
    if (t->ne[0] % (uint64_t)tr->block_size)
        return error_set(e, NM_EINPUT, "%s: tensor %s: rows of %llu values do not fill %s blocks of %d", path, name,
                         (unsigned long long)t->ne[0], tr->name, tr->block_size);
    size_t nbytes = dtype_bytes(*dt, count);
    if (t->offset % g->alignment)
        return error_set(e, NM_EINPUT, "%s: tensor %s: offset %llu is not a multiple of the alignment %zu", path, name,
                         (unsigned long long)t->offset, g->alignment);
    uint64_t start = g->data_start + t->offset, end = start + nbytes;
    if (!nbytes || t->offset > g->file->size || start > g->file->size || nbytes > g->file->size - start)
        return error_set(e, NM_EINPUT, "%s: tensor %s: %zu bytes of %s at data offset %llu lie beyond the end of the file (%zu bytes)",
                         path, name, nbytes, tr->name, (unsigned long long)t->offset, g->file->size);
    /* Readers of F32/F16 views index them as arrays: keep them aligned. */
    if (start % 4)
        return error_set(e, NM_EINPUT, "%s: tensor %s starts at file offset %llu, which is not 4-byte aligned", path, name,
                         (unsigned long long)start);
    span->start = start;
    span->end = end;
    return NM_OK;
}

/* Registers the tensors of one parsed file, in file order. */
static int add_tensors(Model *m, const Gguf *g, Error *e) {
    Span *spans = xcalloc((size_t)g->n_tensors, sizeof *spans);
    int rc = NM_OK;
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
        const GgufTensorInfo *t = &g->ti[i];
        char name[GGUF_MAX_NAME + 1];
        memcpy(name, t->name, t->name_len);
        name[t->name_len] = 0;
        DType dt;
        if ((rc = check_tensor(g, t, name, &dt, &spans[i], e))) break;
        int64_t shape[4];
        for (uint32_t d = 0; d < t->n_dims; d++) shape[d] = (int64_t)t->ne[t->n_dims - 1 - d];
        spans[i].t = model_add_tensor(m, name, dt, (int)t->n_dims, shape, g->file->data + spans[i].start,
                                      (size_t)(spans[i].end - spans[i].start));
    }
    /* model_add_tensor may move m->tensors: name the overlap from the final array. */
    if (!rc) {
        qsort(spans, (size_t)g->n_tensors, sizeof *spans, span_cmp);
        for (uint64_t i = 1; i < g->n_tensors && !rc; i++)
            if (spans[i].start < spans[i - 1].end)
                rc = error_set(e, NM_EINPUT, "%s: the data of two tensors overlap at file offset %llu", g->file->path,
                               (unsigned long long)spans[i].start);
    }
    free(spans);
    return rc;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp((*(const Tensor *const *)a)->name, (*(const Tensor *const *)b)->name);
}

/* Tensor names must be unique across all parts (sorted, so n log n). */
static int check_unique_names(const Model *m, Error *e) {
    const Tensor **sorted = xmalloc((size_t)m->n_tensors * sizeof *sorted);
    for (int i = 0; i < m->n_tensors; i++) sorted[i] = &m->tensors[i];
    qsort(sorted, (size_t)m->n_tensors, sizeof *sorted, name_cmp);
    int rc = NM_OK;
    for (int i = 1; i < m->n_tensors && !rc; i++)
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0)
            rc = error_set(e, NM_EINPUT, "%s: tensor %s appears twice", m->path, sorted[i]->name);
    free(sorted);
    return rc;
}

/* Maps one more file, parses it and registers its tensors; *g stays parsed. */
static int open_part(Model *m, const char *path, Gguf *g, Error *e) {
    const MappedFile *f;
    int rc = model_add_file(m, path, &f, e);
    if (!rc) rc = gguf_parse(g, f, e);
    if (!rc) rc = add_tensors(m, g, e);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Typed metadata look-ups. Errors are sticky, so a loader can read every key
 * and check once; a missing required key or a wrong type names the key. */

typedef struct {
    const Gguf *g;
    Error *e;
    int err;
} Meta;

#define REQUIRED INT64_MIN

static int meta_fail(Meta *M, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int meta_fail(Meta *M, const char *key, const char *fmt, ...) {
    if (M->err) return M->err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return M->err = error_set(M->e, NM_EINPUT, "%s: %s %s", M->g->file->path, key, msg);
}

static const uint8_t *kv_value(const Meta *M, const GgufKV *kv) { return M->g->file->data + kv->value; }

/* Any integer type as int64 (u64 beyond INT64_MAX saturates); 0 if not an integer. */
static int scalar_int(const uint8_t *p, uint32_t type, int64_t *out) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    if (type >= GGUF_NTYPES || !gguf_scalar_bytes[type] || type == GGUF_F32 || type == GGUF_F64) return 0;
    memcpy(&v, p, gguf_scalar_bytes[type]);
    switch (type) {
    case GGUF_U8: case GGUF_BOOL: *out = v.u8; break;
    case GGUF_I8: *out = v.i8; break;
    case GGUF_U16: *out = v.u16; break;
    case GGUF_I16: *out = v.i16; break;
    case GGUF_U32: *out = v.u32; break;
    case GGUF_I32: *out = v.i32; break;
    case GGUF_U64: *out = v.u64 > INT64_MAX ? INT64_MAX : (int64_t)v.u64; break;
    default: *out = v.i64; break;
    }
    return 1;
}

/* An integer in [lo, hi]; fallback when absent (REQUIRED: an error). */
static int64_t meta_int(Meta *M, const char *key, int64_t lo, int64_t hi, int64_t fallback) {
    const GgufKV *kv = find_kv(M->g, key);
    int64_t v;
    if (!kv) {
        if (fallback == REQUIRED) meta_fail(M, key, "is missing");
        return fallback == REQUIRED ? 0 : fallback;
    }
    if (!scalar_int(kv_value(M, kv), kv->type, &v)) {
        meta_fail(M, key, "has type %s, not an integer", gguf_type_names[kv->type]);
        return 0;
    }
    if (v < lo || v > hi) {
        meta_fail(M, key, "= %lld is outside %lld..%lld", (long long)v, (long long)lo, (long long)hi);
        return 0;
    }
    return v;
}

static double meta_float(Meta *M, const char *key, double fallback, int required) {
    const GgufKV *kv = find_kv(M->g, key);
    if (!kv) {
        if (required) meta_fail(M, key, "is missing");
        return fallback;
    }
    const uint8_t *p = kv_value(M, kv);
    int64_t i;
    if (kv->type == GGUF_F32) { float f; memcpy(&f, p, 4); return f; }
    if (kv->type == GGUF_F64) { double d; memcpy(&d, p, 8); return d; }
    if (scalar_int(p, kv->type, &i)) return (double)i;
    meta_fail(M, key, "has type %s, not a number", gguf_type_names[kv->type]);
    return fallback;
}

static int meta_bool(Meta *M, const char *key, int fallback) {
    return meta_int(M, key, INT64_MIN + 1, INT64_MAX, fallback) != 0;
}

/* A string key as a new NUL-terminated copy, or NULL when absent. */
static char *meta_strdup(Meta *M, const char *key) {
    const GgufKV *kv = find_kv(M->g, key);
    if (!kv) return NULL;
    if (kv->type != GGUF_STRING) {
        meta_fail(M, key, "has type %s, not a string", gguf_type_names[kv->type]);
        return NULL;
    }
    uint64_t len;
    const uint8_t *p = kv_value(M, kv);
    memcpy(&len, p, 8);
    return xstrndup((const char *)p + 8, (size_t)len);
}

/* An array key: a Reader positioned at its first element, and its count;
 * returns 0 when absent or (with an error) of another element type. */
static int meta_array(Meta *M, const char *key, uint32_t elem, Reader *r, uint64_t *count) {
    const GgufKV *kv = find_kv(M->g, key);
    if (!kv) return 0;
    const uint8_t *p = kv_value(M, kv);
    uint32_t type = 0;
    if (kv->type == GGUF_ARRAY) memcpy(&type, p, 4);
    if (kv->type != GGUF_ARRAY || type != elem) {
        meta_fail(M, key, "is not an array of %s", gguf_type_names[elem]);
        return 0;
    }
    memcpy(count, p + 4, 8);
    const MappedFile *f = M->g->file;
    *r = (Reader){ .data = f->data, .size = f->size, .pos = kv->value + 12, .path = f->path, .e = M->e };
    snprintf(r->what, sizeof r->what, "%s", key);
    return 1;
}

/* ----------------------------------------------------------------------------
 * The vocabulary: tokenizer.ggml.* */

/* A token id key: -1 when absent or set to -1 / 0xFFFFFFFF (llama.cpp's "none"). */
static int meta_token_id(Meta *M, const char *key, int n_tokens, int fallback) {
    int64_t id = meta_int(M, key, INT32_MIN, UINT32_MAX, fallback);
    if (id == -1 || id == UINT32_MAX) return -1;
    if (id < 0 || id >= n_tokens) {
        meta_fail(M, key, "= %lld is outside the %d-token vocabulary", (long long)id, n_tokens);
        return -1;
    }
    return (int)id;
}

/* Reads a string array into freshly allocated copies; returns the count. */
static void read_strings(Reader *r, uint64_t count, char **out, int *lens) {
    for (uint64_t i = 0; i < count && !r->err; i++) {
        uint64_t len;
        const char *s = take_str(r, &len);
        if (r->err) break;
        if (len > INT32_MAX) { reader_fail(r, "string %llu is too long", (unsigned long long)i); break; }
        out[i] = xstrndup(s, (size_t)len);
        if (lens) lens[i] = (int)len;
    }
}

static int read_vocab(Model *m, Meta *M) {
    Vocab *v = &m->vocab;
    Reader r;
    uint64_t n = 0, count;
    const char *path = M->g->file->path;
    char *model = meta_strdup(M, "tokenizer.ggml.model");
    if (!M->err && !meta_array(M, "tokenizer.ggml.tokens", GGUF_STRING, &r, &n) && !M->err)
        meta_fail(M, "tokenizer.ggml.tokens", "is missing: the file has no vocabulary");
    if (!M->err && (!model || (strcmp(model, "llama") && strcmp(model, "gpt2"))))
        error_set(M->e, M->err = NM_EINPUT,
                  "%s: tokenizer.ggml.model '%s' is not supported (neuromap reads 'llama' sentencepiece and 'gpt2' byte-level BPE)",
                  path, model ? model : "(missing)");
    if (!M->err && (n < 1 || n > GGUF_MAX_VOCAB)) meta_fail(M, "tokenizer.ggml.tokens", "holds %llu tokens (1 to %d allowed)", (unsigned long long)n, GGUF_MAX_VOCAB);
    if (M->err) { free(model); return M->err; }
    v->kind = strcmp(model, "llama") == 0 ? TOKENIZER_SPM : TOKENIZER_BPE;
    free(model);

    v->n_tokens = (int)n;
    v->piece = xcalloc(n, sizeof *v->piece);
    v->piece_len = xcalloc(n, sizeof *v->piece_len);
    v->type = xcalloc(n, sizeof *v->type);
    read_strings(&r, n, v->piece, v->piece_len);
    if (r.err) return M->err = r.err;

    if (meta_array(M, "tokenizer.ggml.scores", GGUF_F32, &r, &count)) {
        if (count != n) return meta_fail(M, "tokenizer.ggml.scores", "has %llu entries for %llu tokens", (unsigned long long)count, (unsigned long long)n);
        const uint8_t *p = take(&r, n * 4);
        if (!p) return M->err = r.err;
        v->score = xmalloc(n * sizeof *v->score);
        memcpy(v->score, p, n * 4);
    }
    if (meta_array(M, "tokenizer.ggml.token_type", GGUF_I32, &r, &count)) {
        if (count != n) return meta_fail(M, "tokenizer.ggml.token_type", "has %llu entries for %llu tokens", (unsigned long long)count, (unsigned long long)n);
        const uint8_t *p = take(&r, n * 4);
        if (!p) return M->err = r.err;
        memcpy(v->type, p, n * 4);
    } else {
        for (uint64_t i = 0; i < n; i++) v->type[i] = TOKEN_NORMAL;
    }
    if (meta_array(M, "tokenizer.ggml.merges", GGUF_STRING, &r, &count)) {
        if (count > INT32_MAX) return meta_fail(M, "tokenizer.ggml.merges", "has too many entries");
        v->merges = xcalloc(count, sizeof *v->merges);
        v->n_merges = (int)count;
        read_strings(&r, count, v->merges, NULL);
        if (r.err) return M->err = r.err;
    }
    if (M->err) return M->err;

    /* Defaults as llama.cpp has them: sentencepiece vocabularies put <unk>,
     * <s>, </s> at 0, 1, 2, add BOS and prefix a space; byte-level BPE does
     * neither unless the file says so. */
    int spm = v->kind == TOKENIZER_SPM, nt = (int)n;
    v->bos_id = meta_token_id(M, "tokenizer.ggml.bos_token_id", nt, spm && nt > 1 ? 1 : -1);
    v->eos_id = meta_token_id(M, "tokenizer.ggml.eos_token_id", nt, spm && nt > 2 ? 2 : -1);
    v->unk_id = meta_token_id(M, "tokenizer.ggml.unknown_token_id", nt, spm ? 0 : -1);
    v->pad_id = meta_token_id(M, "tokenizer.ggml.padding_token_id", nt, -1);
    v->pre = meta_strdup(M, "tokenizer.ggml.pre");
    /* Llama 3's pre-tokenizer: whole words found in the vocabulary skip merging. */
    int llama3 = v->pre && (!strcmp(v->pre, "llama-bpe") || !strcmp(v->pre, "llama3") || !strcmp(v->pre, "llama-v3"));
    v->add_bos = meta_bool(M, "tokenizer.ggml.add_bos_token", spm || llama3);
    v->add_space_prefix = meta_bool(M, "tokenizer.ggml.add_space_prefix", spm);
    v->byte_fallback = spm;
    v->ignore_merges = !spm && llama3;
    v->chat_template = meta_strdup(M, "tokenizer.chat_template");
    return M->err;
}

/* ----------------------------------------------------------------------------
 * The architecture: general.architecture and llama.* */

static int check_architecture(Model *m, Meta *M) {
    char *arch = meta_strdup(M, "general.architecture");
    if (!M->err && !arch) meta_fail(M, "general.architecture", "is missing");
    if (!M->err && strcmp(arch, "llama") != 0)
        error_set(M->e, M->err = NM_EINPUT, "%s: architecture '%.40s' is not supported (neuromap reads the Llama family)",
                  M->g->file->path, arch);
    if (!M->err) snprintf(m->cfg.arch, sizeof m->cfg.arch, "%s", arch);
    free(arch);
    return M->err;
}

static int read_config(Model *m, Meta *M) {
    Config *c = &m->cfg;
    const int64_t big = INT32_MAX;
    c->n_layers = (int)meta_int(M, "llama.block_count", 1, big, REQUIRED);
    c->dim = (int)meta_int(M, "llama.embedding_length", 1, big, REQUIRED);
    c->ffn_dim = (int)meta_int(M, "llama.feed_forward_length", 1, big, REQUIRED);
    c->n_heads = (int)meta_int(M, "llama.attention.head_count", 1, big, REQUIRED);
    c->n_kv_heads = (int)meta_int(M, "llama.attention.head_count_kv", 1, big, c->n_heads ? c->n_heads : 1);
    c->max_seq_len = (int)meta_int(M, "llama.context_length", 1, big, REQUIRED);
    c->norm_eps = (float)meta_float(M, "llama.attention.layer_norm_rms_epsilon", 0, 1);
    c->rope_theta = (float)meta_float(M, "llama.rope.freq_base", 10000.0, 0);
    c->vocab_size = (int)meta_int(M, "llama.vocab_size", 1, big, m->vocab.n_tokens);
    if (M->err) return M->err;
    c->head_dim = (int)meta_int(M, "llama.attention.key_length", 1, big, c->dim / c->n_heads);
    int rope_dims = (int)meta_int(M, "llama.rope.dimension_count", 1, big, c->head_dim);
    if (!M->err && rope_dims != c->head_dim)
        meta_fail(M, "llama.rope.dimension_count", "= %d: RoPE on part of the %d-wide head is not supported", rope_dims, c->head_dim);
    c->rope_interleaved = 1; /* GGUF keeps Meta's q/k row order */

    /* Scaled RoPE: llama.cpp's converter stores Llama 3.1's "llama3" scaling
     * as a rope_freqs.weight tensor of per-pair divisors (see load_gguf), not
     * as keys; the key-based types (linear, yarn, ...) would change every
     * frequency and are refused rather than run wrongly. */
    char *scaling = meta_strdup(M, "llama.rope.scaling.type");
    double factor = meta_float(M, "llama.rope.scaling.factor", 1.0, 0);
    if (!M->err && scaling && strcmp(scaling, "none") != 0 && !(strcmp(scaling, "linear") == 0 && factor == 1.0))
        meta_fail(M, "llama.rope.scaling.type", "'%.40s' (factor %g) is not supported", scaling, factor);
    free(scaling);
    return M->err;
}

/* The per-pair RoPE frequency divisors of Llama 3.1-style scaling, if stored. */
static int bind_rope_freqs(Model *m, Error *e) {
    Tensor *t = model_find_tensor(m, "rope_freqs.weight");
    if (!t) return NM_OK;
    if (t->n_dims != 1 || t->shape[0] != m->cfg.head_dim / 2 || dtype_info(t->type)->plain != PLAIN_F32)
        return error_set(e, NM_EINPUT, "%s: rope_freqs.weight should be %d F32 values (head_dim / 2)", m->path,
                         m->cfg.head_dim / 2);
    m->rope_freqs = t;
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Split files: NAME-00001-of-0000N.gguf holds the metadata and the first
 * tensors; parts 2..N lie beside it, each a GGUF of its own with split.no
 * set and more tensors (llama.cpp's gguf-split). */

static int load_split_parts(Model *m, const char *path, Meta *M) {
    int64_t count = meta_int(M, "split.count", 1, MODEL_MAX_FILES, 1);
    int64_t no = meta_int(M, "split.no", 0, count - 1, 0);
    if (M->err || count == 1) return M->err;
    char first[32];
    snprintf(first, sizeof first, "-%05d-of-%05d.gguf", 1, (int)count);
    if (no != 0)
        return error_set(M->e, M->err = NM_EINPUT, "%s: is part %d of a %d-part split; open the first part (...%s)", path,
                         (int)no + 1, (int)count, first);
    if (!str_ends_with(path, first))
        return error_set(M->e, M->err = NM_EINPUT, "%s: split.count is %d, so the name should end in %s to find the other parts",
                         path, (int)count, first);
    size_t stem = strlen(path) - strlen(first);
    char *part = xmalloc(stem + 32);
    int rc = NM_OK;
    for (int k = 1; k < count && !rc; k++) {
        snprintf(part, stem + 32, "%.*s-%05d-of-%05d.gguf", (int)stem, path, k + 1, (int)count);
        Gguf g = { 0 };
        rc = open_part(m, part, &g, M->e);
        if (!rc) {
            Meta pm = { .g = &g, .e = M->e };
            int64_t part_no = meta_int(&pm, "split.no", 0, count - 1, -1);
            rc = pm.err;
            if (!rc && part_no != k)
                rc = error_set(M->e, NM_EINPUT, "%s: split.no is %lld, expected %d", part, (long long)part_no, k);
        }
        gguf_free(&g);
    }
    free(part);
    int64_t total = meta_int(M, "split.tensors.count", 0, GGUF_MAX_TENSORS, m->n_tensors);
    if (!rc && !M->err && total != m->n_tensors)
        rc = error_set(M->e, NM_EINPUT, "%s: split.tensors.count is %lld but the %d parts hold %d tensors", path,
                       (long long)total, (int)count, m->n_tensors);
    return rc ? (M->err = rc) : M->err;
}

/* ----------------------------------------------------------------------------
 * Opening a model */

/* A GGUF of bare tensors (no llama.* hyperparameters, no vocabulary), such
 * as a dequantised reference: it opens, but as no model (has_weights 0). */
static int is_bare_tensors(const Gguf *g) {
    return g->n_tensors > 0 && !find_kv(g, "tokenizer.ggml.tokens") && !find_kv(g, "llama.block_count");
}

static int load_gguf(Model *m, const char *path, const ModelOpenOptions *o, Error *e) {
    Gguf g = { 0 };
    Meta M = { .g = &g, .e = e };
    const MappedFile *f;
    int rc = model_add_file(m, path, &f, e);
    if (!rc) rc = gguf_parse(&g, f, e);
    if (!rc) m->identity = fnv1a64(m->identity, f->data, g.meta_end);
    int bare = !rc && is_bare_tensors(&g);
    if (!rc && !bare) rc = check_architecture(m, &M);
    if (!rc) rc = add_tensors(m, &g, e);
    if (!rc) rc = load_split_parts(m, path, &M);
    if (!rc) rc = check_unique_names(m, e);
    if (!rc && !bare) rc = read_vocab(m, &M);
    if (rc || bare) {
        /* nothing more to read */
    } else if (m->n_tensors == 0) {
        /* A vocabulary-only file (llama.cpp's ggml-vocab-*.gguf): enough for info and tokenize. */
        m->cfg.vocab_size = m->vocab.n_tokens;
    } else {
        m->has_weights = 1;
        rc = read_config(m, &M);
        if (!rc) rc = model_bind(m, gguf_layer_names, "token_embd.weight", "output_norm.weight", "output.weight", e);
        if (!rc) rc = bind_rope_freqs(m, e);
    }
    gguf_free(&g);
    return rc;
}

/* GGUF files begin with the magic "GGUF". */
static int probe_gguf(const char *path, int is_dir, const unsigned char *head, size_t n) {
    return n >= 4 && memcmp(head, "GGUF", 4) == 0;
}

const FormatLoader loader_gguf = { FORMAT_GGUF, probe_gguf, load_gguf };
