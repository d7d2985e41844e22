/* safetensors.c — reading one .safetensors file as tensor views.
 *
 * The format: an unsigned 64-bit little-endian header length N, N bytes of
 * JSON, then the data area. The JSON object maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]}, offsets relative to the
 * data area; an optional "__metadata__" entry holds free-form strings.
 *
 * The file is untrusted, so nothing in the header is believed until it has
 * been checked against the file: the header must fit in the file, every
 * span must lie inside the data area, match shape × dtype exactly, and not
 * overlap another. Only then does a Tensor point into the mapping.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/hf.h"

#define ST_MAX_HEADER (100u << 20)     /* the reference reader's own limit */
#define ST_MAX_DIM ((double)(1LL << 40)) /* a bound on one dimension, so products can be checked */
#define ST_MAX_OFFSET 9007199254740992.0 /* 2^53: larger offsets are not exact in JSON numbers */

/* ----------------------------------------------------------------------------
 * Dtypes */

/* Dtypes safetensors defines that neuromap does not read: integer,
 * 8-bit float and packed types are how quantised checkpoints (FP8, GPTQ's
 * I32 qweight, bitsandbytes' U8) store their weights. */
static const char *const unsupported_dtypes[] = {
    "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F64", "C64",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
};

static int parse_dtype(const cJSON *dt, const char *path, const char *name, DType *out, Error *e) {
    if (!cJSON_IsString(dt)) return error_set(e, NM_EINPUT, "%s: tensor %s has no dtype string", path, name);
    if (dtype_from_safetensors(dt->valuestring, out)) return NM_OK;
    for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof *unsupported_dtypes; i++)
        if (strcmp(dt->valuestring, unsupported_dtypes[i]) == 0)
            return error_set(e, NM_EINPUT,
                             "%s: tensor %s has dtype %s, which neuromap does not read (F32, F16 and BF16 only; "
                             "quantised checkpoints such as FP8, GPTQ or AWQ are refused)",
                             path, name, dt->valuestring);
    return error_set(e, NM_EINPUT, "%s: tensor %s has unknown dtype '%.40s'", path, name, dt->valuestring);
}

/* ----------------------------------------------------------------------------
 * One header entry */

typedef struct {
    uint64_t begin, end;
    const char *name; /* inside the parsed header, for messages */
} Span;

/* Shape: at most 4 dimensions; the value count and byte size checked for
 * overflow. A scalar (shape []) is kept as a 1-element vector. */
static int parse_shape(const cJSON *shape, const char *path, const char *name, int *n_dims, int64_t dims[4],
                       int64_t *count, Error *e) {
    int n = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (n < 0 || n > 4)
        return error_set(e, NM_EINPUT, "%s: tensor %s: shape must be a list of at most 4 sizes", path, name);
    int64_t total = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        if (!json_whole(d, 0, ST_MAX_DIM, &dims[i]))
            return error_set(e, NM_EINPUT, "%s: tensor %s: shape entry %d is not a size in 0..2^40", path, name, i);
        if (__builtin_mul_overflow(total, dims[i], &total) || total > (int64_t)1 << 53)
            return error_set(e, NM_EINPUT, "%s: tensor %s: shape has more values than any file can hold", path, name);
    }
    if (n == 0) dims[n++] = 1;
    *n_dims = n;
    *count = total;
    return NM_OK;
}

static int parse_entry(Model *m, const char *path, const cJSON *t, const uint8_t *data, size_t data_size,
                       size_t data_start, Span *span, Error *e) {
    const char *name = t->string;
    if (!cJSON_IsObject(t)) return error_set(e, NM_EINPUT, "%s: header entry %s is not an object", path, name);
    DType type;
    int n_dims = 0, rc;
    int64_t dims[4] = { 0 }, count = 0, begin, end;
    if ((rc = parse_dtype(cJSON_GetObjectItemCaseSensitive(t, "dtype"), path, name, &type, e)) ||
        (rc = parse_shape(cJSON_GetObjectItemCaseSensitive(t, "shape"), path, name, &n_dims, dims, &count, e)))
        return rc;
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_whole(offs->child, 0, ST_MAX_OFFSET, &begin) ||
        !json_whole(offs->child->next, 0, ST_MAX_OFFSET, &end))
        return error_set(e, NM_EINPUT, "%s: tensor %s: data_offsets must be [begin, end] byte offsets", path, name);
    if (begin > end || (uint64_t)end > data_size)
        return error_set(e, NM_EINPUT, "%s: tensor %s: data_offsets [%lld, %lld] lie outside the data area of %zu bytes",
                         path, name, (long long)begin, (long long)end, data_size);
    size_t want = count ? dtype_bytes(type, count) : 0;
    if (count && !want)
        return error_set(e, NM_EINPUT, "%s: tensor %s: shape is too large for dtype %s", path, name, dtype_name(type));
    if (want != (uint64_t)(end - begin))
        return error_set(e, NM_EINPUT, "%s: tensor %s: shape needs %zu bytes of %s but data_offsets span %lld", path,
                         name, want, dtype_name(type), (long long)(end - begin));
    /* The reference writer pads the header so every tensor is aligned; the
     * row converters read whole elements, so a misaligned one is refused. */
    if ((data_start + (size_t)begin) % dtype_info(type)->block_bytes)
        return error_set(e, NM_EINPUT, "%s: tensor %s at file offset %zu is not aligned to its %zu-byte elements", path,
                         name, data_start + (size_t)begin, dtype_info(type)->block_bytes);
    if (model_find_tensor(m, name)) return error_set(e, NM_EINPUT, "%s: tensor %s appears twice", path, name);
    model_add_tensor(m, name, type, n_dims, dims, data + begin, want);
    *span = (Span){ (uint64_t)begin, (uint64_t)end, name };
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * The whole file */

static int span_order(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

/* Sorted by start, each span must end before the next begins: no byte
 * belongs to two tensors. */
static int check_overlaps(Span *spans, int n, const char *path, Error *e) {
    qsort(spans, (size_t)n, sizeof *spans, span_order);
    for (int i = 1; i < n; i++)
        if (spans[i].begin < spans[i - 1].end)
            return error_set(e, NM_EINPUT, "%s: tensors %s and %s overlap (data_offsets %llu..%llu and %llu..%llu)", path,
                             spans[i - 1].name, spans[i].name, (unsigned long long)spans[i - 1].begin,
                             (unsigned long long)spans[i - 1].end, (unsigned long long)spans[i].begin,
                             (unsigned long long)spans[i].end);
    return NM_OK;
}

static int parse_header(Model *m, const MappedFile *f, size_t header_len, Error *e) {
    cJSON *h;
    int rc = json_parse_object((const char *)f->data + 8, header_len, f->path, &h, e);
    if (rc) return rc;
    size_t data_start = 8 + header_len, data_size = f->size - data_start;
    Span *spans = xmalloc((size_t)cJSON_GetArraySize(h) * sizeof *spans + 1);
    int n = 0;
    for (const cJSON *t = h->child; t && !rc; t = t->next) {
        if (strcmp(t->string, "__metadata__") == 0) continue;
        rc = parse_entry(m, f->path, t, f->data + data_start, data_size, data_start, &spans[n], e);
        if (!rc) n++;
    }
    if (!rc) rc = check_overlaps(spans, n, f->path, e);
    free(spans);
    cJSON_Delete(h);
    return rc;
}

int safetensors_load(Model *m, const char *path, Error *e) {
    const MappedFile *f;
    int rc = model_add_file(m, path, &f, e);
    if (rc) return rc;
    if (f->size < 8)
        return error_set(e, NM_EINPUT, "%s: truncated: %zu bytes, too short for the 8-byte header length", path, f->size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | f->data[i];
    if (header_len > f->size - 8)
        return error_set(e, NM_EINPUT, "%s: header length %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                         path, (unsigned long long)header_len, f->size);
    if (header_len > ST_MAX_HEADER)
        return error_set(e, NM_EINPUT, "%s: header length %llu exceeds the %u-byte limit", path,
                         (unsigned long long)header_len, ST_MAX_HEADER);
    m->identity = fnv1a64(m->identity, f->data, 8 + (size_t)header_len);
    return parse_header(m, f, (size_t)header_len, e);
}
