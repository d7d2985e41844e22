/* writer.h — small streaming writers for safetensors and GGUF.
 *
 * Both formats put every tensor's name, dtype, shape and offset in a header
 * before the data, so a writer needs the list of tensors up front — but not
 * their values: the header is written first, then the caller streams each
 * tensor's bytes, in header order, straight to the file. Nothing but the
 * header is ever held in memory, which is what lets `neuromap synth` write an
 * 8B-shaped model in a few hundred megabytes of RAM.
 *
 * These are the writing halves of format_hf.c and format_gguf.c, kept apart
 * from the readers on purpose: a reader bug cannot hide behind a writer that
 * shares its code.
 */
#ifndef NEUROMAP_WRITER_H
#define NEUROMAP_WRITER_H

#include <stdint.h>
#include <stdio.h>

#include "tensor/dtype.h"
#include "base/util.h"

/* One tensor to write: shape in numpy order (outermost first), like Tensor. */
typedef struct {
    char name[96];
    DType type;
    int n_dims;
    int64_t shape[4];
} TensorSpec;

/* Bytes of the tensor's data; 0 when the innermost dimension does not fill
 * whole blocks of its type (e.g. Q8_0 rows not a multiple of 32). */
size_t tensor_spec_bytes(const TensorSpec *t);

/* Converts n floats to type t (n a multiple of the block size) into dst,
 * dtype_bytes(t, n) bytes, through the dtype table's from_float (F32, F16,
 * BF16 and Q8_0 have one); returns 0 for other types. */
int floats_to_dtype(DType t, const float *x, int64_t n, void *dst);
/* The same, written to f through scratch (at least 4n bytes); 0 on failure. */
int write_floats_as(FILE *f, DType t, const float *x, int64_t n, void *scratch);

/* ----------------------------------------------------------------------------
 * safetensors: u64 header length, JSON header, data */

/* Sorts t[0..n) by name — the order the reference writer uses for the header
 * and the data — and writes the length prefix and the header: __metadata__
 * {"format":"pt"} first, padded with spaces to a multiple of 8. The caller then
 * writes each tensor's tensor_spec_bytes() in the sorted order. */
int safetensors_write_header(FILE *f, TensorSpec *t, int n, const char *path, Error *e);

/* ----------------------------------------------------------------------------
 * GGUF v3: header, key/value metadata, tensor infos, aligned data */

typedef struct {
    uint8_t *kv;          /* serialised key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    TensorSpec *tensors;  /* in data order */
    int n_tensors;
    uint32_t alignment;   /* 32, as written into general.alignment */
} GGUFWriter;

void gguf_writer_init(GGUFWriter *w);
void gguf_writer_free(GGUFWriter *w);

void gguf_kv_str(GGUFWriter *w, const char *key, const char *value);
void gguf_kv_u32(GGUFWriter *w, const char *key, uint32_t value);
void gguf_kv_f32(GGUFWriter *w, const char *key, float value);
void gguf_kv_bool(GGUFWriter *w, const char *key, int value);
/* Arrays; lens may be NULL for NUL-terminated strings. */
void gguf_kv_str_array(GGUFWriter *w, const char *key, char *const *s, const int *lens, int n);
void gguf_kv_i32_array(GGUFWriter *w, const char *key, const int32_t *v, int n);
void gguf_kv_f32_array(GGUFWriter *w, const char *key, const float *v, int n);

void gguf_add_tensor(GGUFWriter *w, const TensorSpec *t);

/* Writes everything before the first tensor's data (ending aligned). The
 * caller then writes each tensor in gguf_add_tensor order, each followed by
 * gguf_write_padding(w, f, its byte count). */
int gguf_write_header(const GGUFWriter *w, FILE *f, const char *path, Error *e);
int gguf_write_padding(const GGUFWriter *w, FILE *f, size_t nbytes);

#endif
