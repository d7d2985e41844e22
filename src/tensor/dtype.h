/* dtype.h — one table of element types, in the style of ggml's type traits.
 *
 * Every type a checkpoint can store is one entry: its name, how many values a
 * block holds, how many bytes the block takes, how a run of blocks turns
 * into floats and (for the types neuromap writes) floats into blocks, and
 * what the other formats call it. Adding a type is adding one entry to
 * dtype.c; code outside src/tensor asks the entry, never switches on the type.
 */
#ifndef NEUROMAP_DTYPE_H
#define NEUROMAP_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/half.h"

typedef enum {
    DT_F32, DT_F16, DT_BF16,
    DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0,
    DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K,
    DT_IQ4_NL,
    DT_COUNT
} DType;

/* Converts n values (n a multiple of the block size) starting at src. */
typedef void (*ToFloatFn)(const void *src, float *dst, int64_t n);
/* The other way: n floats (n a multiple of the block size) into dst,
 * dtype_bytes(t, n) bytes, rounded or quantised as the reference tools do. */
typedef void (*FromFloatFn)(const float *src, void *dst, int64_t n);

/* What a kernel may read where it lies, without converting: one plain IEEE
 * number per element (the F32 matmul, the lens's BF16 head kernel, the
 * forward pass's vector widening of F16 and BF16), or blocks (PLAIN_NONE). */
typedef enum { PLAIN_NONE, PLAIN_F32, PLAIN_F16, PLAIN_BF16 } PlainFloat;

typedef struct {
    const char *name;        /* "Q4_K", as ggml and safetensors spell it */
    int block_size;          /* values per block */
    size_t block_bytes;      /* bytes per block */
    ToFloatFn to_float;      /* NULL: known but not supported (refused clearly) */
    FromFloatFn from_float;  /* NULL: neuromap does not write this type */
    PlainFloat plain;        /* the element as one IEEE number, or PLAIN_NONE */
    int ggml_id;             /* GGUF's ggml_type number, -1 if none */
    int gguf_file_type;      /* general.file_type of a file mostly of this type (llama_ftype), -1 if not one */
    const char *safetensors; /* safetensors dtype string, NULL if none */
    const char *torch;       /* config.json "torch_dtype", NULL if none */
} DTypeTraits;

extern const DTypeTraits dtype_traits[DT_COUNT];

static inline const DTypeTraits *dtype_info(DType t) { return &dtype_traits[t]; }
static inline const char *dtype_name(DType t) { return dtype_traits[t].name; }

/* NM_INTERNAL_BEGIN: the loaders' look-ups; return 1 and set *out when found. */
int dtype_from_ggml(uint32_t ggml_id, DType *out);
int dtype_from_safetensors(const char *name, DType *out);
/* Name of a ggml type id we know nothing about, or NULL. */
const char *ggml_type_name(uint32_t ggml_id);
/* NM_INTERNAL_END */

/* Bytes taken by n values (n must be a multiple of the block size); 0 when
 * it is not, or on overflow. */
size_t dtype_bytes(DType t, int64_t n);

#endif
