/* writer.c — see writer.h. */
#include "formats/writer.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Tensor data */

size_t tensor_spec_bytes(const TensorSpec *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++)
        if (__builtin_mul_overflow(n, t->shape[i], &n)) return 0;
    if (t->shape[t->n_dims - 1] % dtype_info(t->type)->block_size) return 0;
    return dtype_bytes(t->type, n);
}

int floats_to_dtype(DType t, const float *x, int64_t n, void *dst) {
    FromFloatFn from_float = dtype_info(t)->from_float;
    if (!from_float) return 0; /* a type the writers do not produce */
    from_float(x, dst, n);
    return 1;
}

int write_floats_as(FILE *f, DType t, const float *x, int64_t n, void *scratch) {
    size_t bytes = dtype_bytes(t, n);
    if (dtype_info(t)->plain == PLAIN_F32) return fwrite(x, 1, bytes, f) == bytes; /* no copy needed */
    return floats_to_dtype(t, x, n, scratch) && fwrite(scratch, 1, bytes, f) == bytes;
}

static int write_failed(const char *path, Error *e) {
    return error_set(e, NM_ERUNTIME, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
}

/* ----------------------------------------------------------------------------
 * safetensors */

static int by_name(const void *a, const void *b) {
    return strcmp(((const TensorSpec *)a)->name, ((const TensorSpec *)b)->name);
}

int safetensors_write_header(FILE *f, TensorSpec *t, int n, const char *path, Error *e) {
    qsort(t, (size_t)n, sizeof *t, by_name);
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const char *dt = dtype_info(t[i].type)->safetensors;
        size_t bytes = tensor_spec_bytes(&t[i]);
        if (!dt || !bytes) {
            cJSON_Delete(root);
            return error_set(e, NM_EINPUT, "%s: tensor %s: type %s cannot be stored in safetensors", path, t[i].name,
                             dtype_name(t[i].type));
        }
        cJSON *o = cJSON_AddObjectToObject(root, t[i].name);
        cJSON_AddStringToObject(o, "dtype", dt);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t[i].n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *span = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(span, cJSON_CreateNumber((double)offset));
        offset += bytes;
        cJSON_AddItemToArray(span, cJSON_CreateNumber((double)offset));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(prefix, 1, 8, f) == 8 && fwrite(json, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    free(json);
    return ok ? NM_OK : write_failed(path, e);
}

/* ----------------------------------------------------------------------------
 * GGUF: metadata is serialised into a byte buffer as it is added (it is small
 * next to the weights even for a 128k vocabulary), then written in one go. */

enum { GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9 };

static void put(GGUFWriter *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        while (w->kv_len + n > w->kv_cap) w->kv_cap = w->kv_cap ? 2 * w->kv_cap : 4096;
        w->kv = xrealloc(w->kv, w->kv_cap);
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}
/* GGUF is little-endian, as is every machine neuromap targets (x86-64, arm64). */
static void put_u32(GGUFWriter *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(GGUFWriter *w, uint64_t v) { put(w, &v, 8); }
static void put_str(GGUFWriter *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}
static void put_key(GGUFWriter *w, const char *key, uint32_t type) {
    put_str(w, key, strlen(key));
    put_u32(w, type);
    w->n_kv++;
}

void gguf_writer_init(GGUFWriter *w) {
    memset(w, 0, sizeof *w);
    w->alignment = 32;
    gguf_kv_u32(w, "general.alignment", w->alignment);
}

void gguf_writer_free(GGUFWriter *w) {
    free(w->kv);
    free(w->tensors);
    memset(w, 0, sizeof *w);
}

void gguf_kv_str(GGUFWriter *w, const char *key, const char *value) {
    put_key(w, key, GGUF_STRING);
    put_str(w, value, strlen(value));
}
void gguf_kv_u32(GGUFWriter *w, const char *key, uint32_t value) {
    put_key(w, key, GGUF_U32);
    put_u32(w, value);
}
void gguf_kv_f32(GGUFWriter *w, const char *key, float value) {
    put_key(w, key, GGUF_F32);
    put(w, &value, 4);
}
void gguf_kv_bool(GGUFWriter *w, const char *key, int value) {
    uint8_t b = value != 0;
    put_key(w, key, GGUF_BOOL);
    put(w, &b, 1);
}

static void put_array_head(GGUFWriter *w, const char *key, uint32_t elem_type, int n) {
    put_key(w, key, GGUF_ARRAY);
    put_u32(w, elem_type);
    put_u64(w, (uint64_t)n);
}
void gguf_kv_str_array(GGUFWriter *w, const char *key, char *const *s, const int *lens, int n) {
    put_array_head(w, key, GGUF_STRING, n);
    for (int i = 0; i < n; i++) put_str(w, s[i], lens ? (size_t)lens[i] : strlen(s[i]));
}
void gguf_kv_i32_array(GGUFWriter *w, const char *key, const int32_t *v, int n) {
    put_array_head(w, key, GGUF_I32, n);
    put(w, v, (size_t)n * 4);
}
void gguf_kv_f32_array(GGUFWriter *w, const char *key, const float *v, int n) {
    put_array_head(w, key, GGUF_F32, n);
    put(w, v, (size_t)n * 4);
}

void gguf_add_tensor(GGUFWriter *w, const TensorSpec *t) {
    w->tensors = xrealloc(w->tensors, (size_t)(w->n_tensors + 1) * sizeof *w->tensors);
    w->tensors[w->n_tensors++] = *t;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int gguf_write_header(const GGUFWriter *w, FILE *f, const char *path, Error *e) {
    /* The tensor infos go into a second buffer: same helpers, same layout. */
    GGUFWriter info = { 0 };
    uint64_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const TensorSpec *t = &w->tensors[i];
        size_t bytes = tensor_spec_bytes(t);
        if (!bytes || dtype_info(t->type)->ggml_id < 0)
            return error_set(e, NM_EINPUT, "%s: tensor %s: %lld values per row do not fill %s blocks", path, t->name,
                             (long long)t->shape[t->n_dims - 1], dtype_name(t->type));
        put_str(&info, t->name, strlen(t->name));
        put_u32(&info, (uint32_t)t->n_dims);
        for (int d = t->n_dims - 1; d >= 0; d--) put_u64(&info, (uint64_t)t->shape[d]); /* ggml: innermost first */
        put_u32(&info, (uint32_t)dtype_info(t->type)->ggml_id);
        put_u64(&info, offset);
        offset = align_up(offset + bytes, w->alignment);
    }
    uint32_t magic_version[2] = { 0x46554747u /* "GGUF" */, 3 };
    uint64_t counts[2] = { (uint64_t)w->n_tensors, w->n_kv };
    size_t head = sizeof magic_version + sizeof counts + w->kv_len + info.kv_len;
    int ok = fwrite(magic_version, 1, sizeof magic_version, f) == sizeof magic_version &&
             fwrite(counts, 1, sizeof counts, f) == sizeof counts &&
             fwrite(w->kv, 1, w->kv_len, f) == w->kv_len && fwrite(info.kv, 1, info.kv_len, f) == info.kv_len &&
             gguf_write_padding(w, f, head);
    free(info.kv);
    return ok ? NM_OK : write_failed(path, e);
}

int gguf_write_padding(const GGUFWriter *w, FILE *f, size_t nbytes) {
    static const char zeros[64];
    size_t pad = (size_t)(align_up(nbytes, w->alignment) - nbytes);
    return fwrite(zeros, 1, pad, f) == pad;
}
