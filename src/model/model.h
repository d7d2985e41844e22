/* model.h — one interface over every checkpoint format.
 *
 * A Model is the architecture Config, named Tensor views straight into the
 * memory-mapped files (never copied, never converted up front), the layer
 * roles bound to those views, and the tokenizer Vocab. The three loaders
 * (format_hf.c, format_gguf.c, format_llama2c.c) fill it; model.c checks it
 * once, so every command downstream can trust the shapes.
 */
#ifndef NEUROMAP_MODEL_H
#define NEUROMAP_MODEL_H

#include <stdint.h>

#include "tensor/dtype.h"
#include "base/util.h"

typedef enum { FORMAT_HF, FORMAT_GGUF, FORMAT_LLAMA2C } ModelFormat;
const char *format_name(ModelFormat f); /* "hf", "gguf", "llama2c" */

/* ----------------------------------------------------------------------------
 * Architecture */

typedef struct {
    int present;                    /* a "llama3" rope_scaling block was given */
    float factor, low_freq_factor, high_freq_factor;
    int original_max_position;
} RopeScaling;

typedef struct {
    char arch[32];       /* "llama" */
    int n_layers;        /* num_hidden_layers */
    int dim;             /* hidden_size */
    int ffn_dim;         /* intermediate_size: neurons per layer */
    int n_heads, n_kv_heads, head_dim;
    int vocab_size;
    int max_seq_len;     /* max_position_embeddings / context_length */
    float norm_eps;      /* rms_norm_eps */
    float rope_theta;
    RopeScaling rope_scaling;
    int tied_embeddings; /* the LM head is the token embedding */
    /* RoPE pairing of q/k rows: GGUF and llama2.c keep Meta's interleaved
     * pairs (2i, 2i+1); HF permutes the rows for rotate-half (i, i + d/2). */
    int rope_interleaved;
} Config;

/* ----------------------------------------------------------------------------
 * Tensors: views into the mapped files */

typedef struct {
    char *name;          /* as the file names it */
    DType type;
    int n_dims;
    int64_t shape[4];    /* outermost first (numpy order): a matrix is {rows, cols} */
    const void *data;    /* inside a MappedFile */
    size_t nbytes;
} Tensor;

static inline int64_t tensor_rows(const Tensor *t) { return t->n_dims >= 2 ? t->shape[0] : 1; }
static inline int64_t tensor_cols(const Tensor *t) { return t->shape[t->n_dims - 1]; }

/* Dequantises rows [row0, row0+n) of a matrix (or a whole vector, row0 = 0, n = 1)
 * into out (n * cols floats). Rows are independent blocks in every format. */
void tensor_rows_f32(const Tensor *t, int64_t row0, int64_t n, float *out);

/* Matrices are stored (out, in): rows are output features. So for the MLP:
 * up/gate row N is what neuron N reads; down column N is what it writes. */
typedef struct {
    Tensor *attn_norm, *wq, *wk, *wv, *wo;
    Tensor *ffn_norm, *gate, *up, *down;
} LayerWeights;

/* ----------------------------------------------------------------------------
 * Vocabulary */

typedef enum { TOKENIZER_NONE, TOKENIZER_SPM, TOKENIZER_BPE } TokenizerKind;

/* Token types, GGUF's numbering (tokenizer.ggml.token_type). */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6 };

typedef struct {
    TokenizerKind kind;  /* SPM: sentencepiece BPE with scores; BPE: byte-level BPE with merges */
    int n_tokens;
    char **piece;        /* as stored: "▁dog", "Ġdog", "<0x0A>" */
    int *piece_len;
    char **text;         /* the bytes the token stands for: " dog", "\n" */
    int *text_len;
    float *score;        /* per token (SPM), NULL when absent */
    int *type;           /* TOKEN_* per token */
    int n_merges;
    char **merges;       /* "left right", in priority order (BPE) */
    int bos_id, eos_id, unk_id, pad_id; /* -1 when absent */
    int add_bos;         /* the tokenizer adds BOS by default */
    int add_space_prefix;/* SPM: prepend "▁" to the text */
    int byte_fallback;   /* SPM: unknown bytes become <0xNN> tokens */
    int ignore_merges;   /* BPE: whole-word vocabulary hits skip merging */
    char *pre;           /* pre-tokenizer: GGUF's tokenizer.ggml.pre name, or NULL */
    char *pre_regex;     /* tokenizer.json's Split pattern (Regex), or NULL */
    char *chat_template; /* Jinja source from tokenizer_config.json / GGUF, or NULL */
    void *index;         /* private: piece → id hash table (vocab_find_piece) */
} Vocab;

/* Looks up a token by its stored piece; -1 when absent (index built by model_open). */
int vocab_find_piece(const Vocab *v, const char *piece, int len);

/* ----------------------------------------------------------------------------
 * The model */

#define MODEL_MAX_FILES 64

typedef struct {
    ModelFormat format;
    char *path;                 /* as given by the user */
    Config cfg;
    Vocab vocab;
    int has_weights;            /* 0 for a vocabulary-only GGUF or tokenizer dir */

    int n_tensors;
    Tensor *tensors;
    Tensor *tok_embd, *output_norm, *output; /* output == tok_embd when tied */
    Tensor *rope_freqs;         /* GGUF Llama 3.1 RoPE scaling: head_dim/2 F32 frequency divisors, or NULL */
    LayerWeights *layers;       /* cfg.n_layers entries */

    int n_files;
    MappedFile files[MODEL_MAX_FILES];
    uint64_t file_bytes;        /* total size of the files read */
    uint64_t identity;          /* content hash of headers/config (atlases record it) */
} Model;

typedef struct {
    const char *tokenizer_path; /* llama2.c: --tokenizer FILE */
    int need_weights;           /* refuse a vocabulary-only model with exit 2 */
} ModelOpenOptions;

/* Opens MODEL (HF directory, .gguf, or llama2.c .bin); on failure returns the
 * error code with e->msg naming the file and the problem. */
int model_open(Model *m, const char *path, const ModelOpenOptions *opt, Error *e);
void model_close(Model *m);
Tensor *model_find_tensor(const Model *m, const char *name);

/* Neuron access for the three MLP matrices. */
typedef enum { MATRIX_UP, MATRIX_GATE, MATRIX_DOWN } MatrixKind;
const char *matrix_name(MatrixKind k); /* "up", "gate", "down" */
int matrix_from_name(const char *s, MatrixKind *out);
/* The residual-stream direction of neuron n in layer l: up/gate row n, or
 * down column n (dim floats). For down, a whole layer at once is far
 * cheaper: see model_matrix_vectors. */
void model_neuron_vector(const Model *m, MatrixKind k, int layer, int n, float *out);
/* Vectors of neurons [n0, n0+count) of one layer, row-major (count × dim). */
void model_neuron_vectors(const Model *m, MatrixKind k, int layer, int n0, int count, float *out);

/* ----------------------------------------------------------------------------
 * Used by the loaders */

Tensor *model_add_tensor(Model *m, const char *name, DType type, int n_dims, const int64_t *shape,
                         const void *data, size_t nbytes);
int model_add_file(Model *m, const char *path, const MappedFile **out, Error *e);
/* Binds roles by name pattern, checks every shape against the config. */
int model_bind(Model *m, const char *const names[9], const char *embd, const char *norm, const char *output,
               Error *e);
/* Fills vocab->text from vocab->piece for SPM ("▁" → " ", <0xNN> → byte) or byte-level BPE. */
void vocab_derive_text(Vocab *v);
/* Grows the arrays to n tokens (new ones empty, TOKEN_UNUSED). */
void vocab_resize(Vocab *v, int n);
void vocab_build_index(Vocab *v);
void vocab_free(Vocab *v);

/* GGUF's layer tensor names in LayerWeights order; llama2.c tensors take them too,
 * so every message speaks one language. */
extern const char *const gguf_layer_names[9];

int load_hf(Model *m, const char *dir, Error *e);
int load_gguf(Model *m, const char *path, Error *e);
int load_llama2c(Model *m, const char *path, const char *tokenizer_path, Error *e);

#endif
