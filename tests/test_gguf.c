/* test_gguf.c — the GGUF loader and ggml's quantised dtypes.
 *
 * - every quantised tensor of models/quant/ GGUF files dequantises bit for bit to
 *   its *.dequant-f32.gguf reference (made by gguf-py, an independent
 *   implementation), which the same loader opens as bare tensors;
 * - Q4_1, Q5_0, Q5_1 and IQ4_NL, which no fixture holds, against blocks
 *   built here from the ggml layouts;
 * - the dtype table's block sizes against ggml-common.h's layout expressions
 *   and against the byte spans of every tensor in the quantised fixtures;
 * - stories260K.gguf holds the tensors and vocabulary of stories260K.bin +
 *   tok512.bin, exactly;
 * - the config read from llama.* keys, vocabulary-only files, split files.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/registry.h"
#include "model/model.h"
#include "tensor/quant.h"

static int open_model(Model *m, const char *path, const char *tokenizer) {
    Error e = { 0 };
    ModelOpenOptions o = { .tokenizer_path = tokenizer };
    int rc = model_open(m, path, &o, &e);
    CHECK(rc == 0, "open %s: %s", path, e.msg);
    return rc == 0;
}

/* ----------------------------------------------------------------------------
 * Quantised fixtures against their references */

/* Compares every tensor of the reference (the first rows of each matrix, or
 * all of it) with the dequantised source; counts the tensors per source type. */
static void check_dequant(const char *stem, int covered[DT_COUNT]) {
    char src_rel[256], ref_rel[256];
    snprintf(src_rel, sizeof src_rel, "models/quant/%s.gguf", stem);
    snprintf(ref_rel, sizeof ref_rel, "models/quant/%s.dequant-f32.gguf", stem);
    Model src, ref;
    if (!open_model(&src, shared_path(src_rel), NULL)) return;
    if (!open_model(&ref, shared_path(ref_rel), NULL)) { model_close(&src); return; }
    CHECK(src.has_weights && !ref.has_weights, "%s: model and bare reference", stem);
    CHECK(ref.n_tensors == src.n_tensors, "%s: %d reference tensors for %d", stem, ref.n_tensors, src.n_tensors);
    int exact = 0;
    for (int i = 0; i < ref.n_tensors; i++) {
        const Tensor *r = &ref.tensors[i], *s = model_find_tensor(&src, r->name);
        CHECK(s != NULL, "%s: %s missing from the source", stem, r->name);
        if (!s) continue;
        int64_t rows = tensor_rows(r), cols = tensor_cols(r);
        CHECK(r->type == DT_F32 && s->n_dims == r->n_dims && tensor_cols(s) == cols && rows <= tensor_rows(s) &&
                  (size_t)(rows * cols) * 4 == r->nbytes,
              "%s: %s shapes differ", stem, r->name);
        float *out = xmalloc((size_t)(rows * cols) * sizeof *out);
        tensor_rows_f32(s, 0, rows, out);
        int same = memcmp(out, r->data, r->nbytes) == 0;
        CHECK(same, "%s: %s (%s) differs from the reference", stem, r->name, dtype_name(s->type));
        exact += same;
        covered[s->type] += same;
        free(out);
    }
    CHECK(exact == ref.n_tensors && exact > 0, "%s: %d of %d tensors bit-exact", stem, exact, ref.n_tensors);
    model_close(&ref);
    model_close(&src);
}

static void test_quant_fixtures(void) {
    static const char *stems[] = { "synth256-q8_0", "synth256-q6_k", "synth256-q5_k_m", "synth256-q4_k_m",
                                   "synth256-q4_0", "synth256-q3_k_m", "synth256-q2_k", "stories260K-q8_0" };
    int covered[DT_COUNT] = { 0 };
    for (size_t i = 0; i < sizeof stems / sizeof *stems; i++) check_dequant(stems[i], covered);
    static const DType expected[] = { DT_F32, DT_F16, DT_Q8_0, DT_Q4_0, DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K };
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        CHECK(covered[expected[i]] > 0, "no %s tensor was checked", dtype_name(expected[i]));
}

/* ----------------------------------------------------------------------------
 * The 32-blocks no fixture holds, from their layouts: a float16 scale d (and
 * min m for the _1 types), 16 bytes of nibbles where value j < 16 is the low
 * nibble of byte j and value j + 16 its high nibble, and for Q5 a uint32 of
 * fifth bits, bit j for value j. */

static void put_half(uint8_t *p, float f) {
    uint16_t h = f32_to_f16(f);
    memcpy(p, &h, 2);
}

static void test_small_blocks(void) {
    float y[64];
    uint8_t b[2 * 24];
    /* Q4_1, two blocks: value = q * d + m. */
    for (int k = 0; k < 2; k++) {
        uint8_t *p = b + 20 * k;
        put_half(p, 0.5f * (k + 1));
        put_half(p + 2, -1.0f);
        for (int j = 0; j < 16; j++) p[4 + j] = (uint8_t)(j | (15 - j) << 4);
    }
    dequant_q4_1(b, y, 64);
    int ok = 1;
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 16; j++)
            ok &= y[32 * k + j] == j * 0.5f * (k + 1) - 1.0f && y[32 * k + j + 16] == (15 - j) * 0.5f * (k + 1) - 1.0f;
    CHECK(ok, "Q4_1 block values");

    /* Q5_0: value = (q | fifth bit << 4) - 16, times d; fifth bits set on odd values. */
    memset(b, 0, sizeof b);
    put_half(b, 0.25f);
    uint32_t qh = 0xAAAAAAAAu;
    memcpy(b + 2, &qh, 4);
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | (15 - j) << 4);
    dequant_q5_0(b, y, 32);
    ok = 1;
    for (int j = 0; j < 32; j++) {
        int q = (j < 16 ? j : 15 - (j - 16)) | (j % 2 ? 16 : 0);
        ok &= y[j] == (q - 16) * 0.25f;
    }
    CHECK(ok, "Q5_0 block values");

    /* Q5_1: value = (q | fifth bit << 4) * d + m. */
    memset(b, 0, sizeof b);
    put_half(b, 2.0f);
    put_half(b + 2, 0.5f);
    qh = 0x0000FFFFu; /* values 0..15 get the fifth bit */
    memcpy(b + 4, &qh, 4);
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(j | j << 4);
    dequant_q5_1(b, y, 32);
    ok = 1;
    for (int j = 0; j < 32; j++) ok &= y[j] == ((j % 16) | (j < 16 ? 16 : 0)) * 2.0f + 0.5f;
    CHECK(ok, "Q5_1 block values");

    /* IQ4_NL: value = d * codebook[nibble]. */
    static const int book[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
    memset(b, 0, sizeof b);
    put_half(b, 0.125f);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    dequant_iq4_nl(b, y, 32);
    ok = 1;
    for (int j = 0; j < 16; j++) ok &= y[j] == 0.125f * book[j] && y[j + 16] == 0.125f * book[15 - j];
    CHECK(ok, "IQ4_NL block values");
}

/* ----------------------------------------------------------------------------
 * The dtype table against sources outside it: ggml's published layouts, and
 * the byte spans the quantisation fixtures' tensors actually take. */

/* ggml-common.h checks each block's size with a static_assert written from its
 * fields (ggml_half is 2 bytes, K_SCALE_SIZE 12, QK_K 256, the others' QK 32);
 * these are those expressions, and ggml.h's enum ggml_type numbers. */
static void test_ggml_layouts(void) {
    enum { HALF = 2, U32 = 4, QK = 32, QK_K = 256, K_SCALE_SIZE = 12 };
    static const struct { DType t; int ggml_type, block; size_t bytes; } ggml[] = {
        { DT_F32, 0, 1, 4 },
        { DT_F16, 1, 1, HALF },
        { DT_BF16, 30, 1, 2 },
        { DT_Q4_0, 2, QK, HALF + QK / 2 },
        { DT_Q4_1, 3, QK, 2 * HALF + QK / 2 },
        { DT_Q5_0, 6, QK, HALF + U32 + QK / 2 },
        { DT_Q5_1, 7, QK, 2 * HALF + U32 + QK / 2 },
        { DT_Q8_0, 8, QK, HALF + QK },
        { DT_Q2_K, 10, QK_K, 2 * HALF + QK_K / 16 + QK_K / 4 },
        { DT_Q3_K, 11, QK_K, HALF + QK_K / 4 + QK_K / 8 + 12 },
        { DT_Q4_K, 12, QK_K, 2 * HALF + K_SCALE_SIZE + QK_K / 2 },
        { DT_Q5_K, 13, QK_K, 2 * HALF + K_SCALE_SIZE + QK_K / 2 + QK_K / 8 },
        { DT_Q6_K, 14, QK_K, HALF + QK_K / 16 + 3 * QK_K / 4 },
        { DT_IQ4_NL, 20, QK, HALF + QK / 2 },
    };
    CHECK(sizeof ggml / sizeof *ggml == DT_COUNT, "a dtype without ggml's layout here");
    for (size_t i = 0; i < sizeof ggml / sizeof *ggml; i++) {
        const DTypeTraits *tr = dtype_info(ggml[i].t);
        CHECK(tr->block_size == ggml[i].block && tr->block_bytes == ggml[i].bytes && tr->ggml_id == ggml[i].ggml_type,
              "%s: table says %d values in %zu bytes, ggml type %d; ggml: %d in %zu, type %d", tr->name, tr->block_size,
              tr->block_bytes, tr->ggml_id, ggml[i].block, ggml[i].bytes, ggml[i].ggml_type);
    }
}

/* Every F16 and BF16 bit pattern through the table's row conversion (vector
 * path and scalar tail: the run starts one value in, 65535 long), against
 * IEEE 754's definition evaluated with ldexp: (−1)^s · 2^(e−bias) · (1 + m/2^p),
 * subnormals 2^(1−bias) · m/2^p, e all ones: infinity or NaN. */
static double ieee_value(unsigned bits, int exp_bits, int man_bits) {
    int bias = (1 << (exp_bits - 1)) - 1;
    unsigned sign = bits >> (exp_bits + man_bits), e = (bits >> man_bits) & ((1u << exp_bits) - 1), m = bits & ((1u << man_bits) - 1);
    double v = e == 0 ? ldexp(m, 1 - bias - man_bits)
               : e == (1u << exp_bits) - 1 ? (m ? NAN : INFINITY)
               : ldexp((double)((1u << man_bits) | m), (int)e - bias - man_bits);
    return sign ? -v : v;
}

static void test_half_rows(void) {
    static const struct { DType t; int exp_bits, man_bits; } kinds[] = { { DT_F16, 5, 10 }, { DT_BF16, 8, 7 } };
    uint16_t *h = xmalloc(65536 * sizeof *h);
    float *f = xmalloc(65536 * sizeof *f);
    for (unsigned i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int k = 0; k < 2; k++) {
        int bad = 0;
        for (int start = 0; start < 2; start++) {
            dtype_info(kinds[k].t)->to_float(h + start, f + start, 65536 - start);
            for (unsigned i = (unsigned)start; i < 65536; i++) {
                double want = ieee_value(i, kinds[k].exp_bits, kinds[k].man_bits);
                bad += isnan(want) ? !isnan(f[i]) : (double)f[i] != want || !signbit(f[i]) != !signbit(want);
            }
        }
        CHECK(bad == 0, "%s: %d of the 131071 conversions (every bit pattern, twice) are wrong", dtype_name(kinds[k].t), bad);
    }
    free(h);
    free(f);
}

/* A GGUF header walked here (not by the loader): each tensor's ggml type,
 * element count and data offset, and where the data starts. */
typedef struct {
    uint32_t type;
    uint64_t n, offset;
} FixtureTensor;

static int read_at(const uint8_t *d, size_t size, size_t *p, void *out, size_t n) {
    if (*p + n > size) return 0;
    memcpy(out, d + *p, n);
    *p += n;
    return 1;
}

/* Skips one metadata value of GGUF type t (arrays recursively); 0 past the end. */
static int skip_value(const uint8_t *d, size_t size, size_t *p, uint32_t t) {
    static const size_t fixed[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    uint64_t n;
    if (t == 8) return read_at(d, size, p, &n, 8) && n <= size - *p && (*p += n, 1);
    if (t == 9) {
        uint32_t et;
        if (!read_at(d, size, p, &et, 4) || !read_at(d, size, p, &n, 8)) return 0;
        for (uint64_t i = 0; i < n; i++)
            if (!skip_value(d, size, p, et)) return 0;
        return 1;
    }
    return t < 13 && *p + fixed[t] <= size && (*p += fixed[t], 1);
}

static int walk_gguf(const uint8_t *d, size_t size, FixtureTensor *ts, int max, int *n_out, size_t *data_start) {
    size_t p = 0;
    uint32_t magic, version, align = 32;
    uint64_t n_tensors, n_kv, len;
    if (!read_at(d, size, &p, &magic, 4) || magic != 0x46554747u || !read_at(d, size, &p, &version, 4) ||
        !read_at(d, size, &p, &n_tensors, 8) || !read_at(d, size, &p, &n_kv, 8) || n_tensors > (uint64_t)max)
        return 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        uint32_t t;
        if (!read_at(d, size, &p, &len, 8) || len > size - p) return 0;
        int is_align = len == 17 && memcmp(d + p, "general.alignment", 17) == 0;
        p += len;
        if (!read_at(d, size, &p, &t, 4)) return 0;
        if (is_align && t == 4) {
            if (!read_at(d, size, &p, &align, 4)) return 0;
        } else if (!skip_value(d, size, &p, t)) {
            return 0;
        }
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        uint32_t dims;
        if (!read_at(d, size, &p, &len, 8) || len > size - p) return 0;
        p += len;
        if (!read_at(d, size, &p, &dims, 4) || dims > 4) return 0;
        ts[i].n = 1;
        for (uint32_t k = 0; k < dims; k++) {
            uint64_t ne;
            if (!read_at(d, size, &p, &ne, 8)) return 0;
            ts[i].n *= ne;
        }
        if (!read_at(d, size, &p, &ts[i].type, 4) || !read_at(d, size, &p, &ts[i].offset, 8)) return 0;
    }
    *n_out = (int)n_tensors;
    *data_start = (p + align - 1) / align * align;
    return 1;
}

/* Each tensor's data runs from its offset to the next one's (or to the end of
 * the file), less at most 31 bytes of alignment padding: its byte size, as
 * llama-quantize wrote it. The table's dtype_bytes must say the same. */
static void test_fixture_spans(void) {
    static const char *const files[] = {
        "models/quant/synth256-q8_0.gguf", "models/quant/synth256-q6_k.gguf", "models/quant/synth256-q5_k_m.gguf",
        "models/quant/synth256-q4_k_m.gguf", "models/quant/synth256-q4_0.gguf", "models/quant/synth256-q3_k_m.gguf",
        "models/quant/synth256-q2_k.gguf", "models/quant/stories260K-q8_0.gguf",
    };
    int seen[DT_COUNT] = { 0 };
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char *data;
        size_t size, start;
        Error e = { 0 };
        FixtureTensor ts[64];
        int n = 0;
        if (read_file(shared_path(files[f]), 64 << 20, &data, &size, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        CHECK(walk_gguf((const uint8_t *)data, size, ts, 64, &n, &start) && n > 0, "%s: cannot walk the header", files[f]);
        for (int i = 0; i < n; i++) {
            uint64_t end = size - start; /* the next tensor's offset, or the end of the data */
            for (int k = 0; k < n; k++)
                if (ts[k].offset > ts[i].offset && ts[k].offset < end) end = ts[k].offset;
            DType t;
            int known = dtype_from_ggml(ts[i].type, &t);
            CHECK(known, "%s: tensor %d: ggml type %u not in the table", files[f], i, ts[i].type);
            if (!known) continue;
            uint64_t span = end - ts[i].offset, bytes = dtype_bytes(t, (int64_t)ts[i].n);
            seen[t]++;
            CHECK(bytes <= span && span - bytes < 32, "%s: tensor %d (%s, %llu values) spans %llu bytes, the table says %llu",
                  files[f], i, dtype_name(t), (unsigned long long)ts[i].n, (unsigned long long)span, (unsigned long long)bytes);
        }
        free(data);
    }
    static const DType held[] = { DT_F32, DT_F16, DT_Q8_0, DT_Q6_K, DT_Q5_K, DT_Q4_K, DT_Q4_0, DT_Q3_K, DT_Q2_K };
    for (size_t i = 0; i < sizeof held / sizeof *held; i++)
        CHECK(seen[held[i]] > 0, "no fixture tensor of type %s was checked", dtype_name(held[i]));
}

/* ----------------------------------------------------------------------------
 * stories260K: GGUF against llama2.c */

static void test_stories_gguf(void) {
    Model g, b;
    if (!open_model(&g, shared_path("models/stories260K/stories260K.gguf"), NULL)) return;
    if (!open_model(&b, shared_path("models/stories260K/stories260K.bin"),
                    shared_path("models/stories260K/tok512.bin"))) { model_close(&g); return; }
    const Config *c = &g.cfg;
    CHECK(c->n_layers == 5 && c->dim == 64 && c->ffn_dim == 172 && c->n_heads == 8 && c->n_kv_heads == 4 &&
              c->head_dim == 8 && c->vocab_size == 512,
          "stories260K.gguf config");
    CHECK(c->max_seq_len == 2048 && c->rope_theta == 10000.0f && c->norm_eps == 1e-5f && c->rope_interleaved,
          "stories260K.gguf context %d, theta %g, eps %g", c->max_seq_len, c->rope_theta, c->norm_eps);
    CHECK(!c->tied_embeddings && g.output != g.tok_embd && g.rope_freqs == NULL, "separate output.weight");
    CHECK(g.n_tensors == 48 && b.n_tensors == 47, "tensor counts %d, %d", g.n_tensors, b.n_tensors);
    int same = 0;
    for (int i = 0; i < b.n_tensors; i++) {
        const Tensor *x = &b.tensors[i], *y = model_find_tensor(&g, x->name);
        int eq = y && y->type == DT_F32 && y->n_dims == x->n_dims && y->shape[0] == x->shape[0] &&
                 y->shape[x->n_dims - 1] == x->shape[x->n_dims - 1] && y->nbytes == x->nbytes &&
                 memcmp(x->data, y->data, x->nbytes) == 0;
        CHECK(eq, "tensor %s differs between .bin and .gguf", x->name);
        same += eq;
    }
    CHECK(same == 47, "%d of 47 tensors equal", same);
    CHECK(g.output->nbytes == b.tok_embd->nbytes && memcmp(g.output->data, b.tok_embd->data, b.tok_embd->nbytes) == 0,
          "output.weight is a copy of the embedding");
    /* Per-layer roles point at the same values too. */
    float row_g[172], row_b[172];
    model_neuron_vector(&g, MATRIX_DOWN, 3, 17, row_g);
    model_neuron_vector(&b, MATRIX_DOWN, 3, 17, row_b);
    CHECK(memcmp(row_g, row_b, 64 * sizeof(float)) == 0, "down neuron 3:17");

    /* Vocabulary, piece by piece. */
    const Vocab *vg = &g.vocab, *vb = &b.vocab;
    CHECK(vg->kind == TOKENIZER_SPM && vg->n_tokens == 512 && vb->n_tokens == 512, "vocab sizes");
    int pieces = 0;
    for (int i = 0; i < 512 && i < vg->n_tokens; i++)
        pieces += vg->piece_len[i] == vb->piece_len[i] && memcmp(vg->piece[i], vb->piece[i], (size_t)vb->piece_len[i]) == 0 &&
                  vg->score[i] == vb->score[i] && vg->text_len[i] == vb->text_len[i] &&
                  memcmp(vg->text[i], vb->text[i], (size_t)vb->text_len[i]) == 0;
    CHECK(pieces == 512, "%d of 512 pieces, scores and texts equal", pieces);
    CHECK(vg->bos_id == 1 && vg->eos_id == 2 && vg->unk_id == 0 && vg->pad_id == -1 && vg->add_bos &&
              vg->add_space_prefix && vg->byte_fallback,
          "special ids and flags");
    CHECK(vg->type[0] == TOKEN_UNKNOWN && vg->type[1] == TOKEN_CONTROL && vg->type[3] == TOKEN_BYTE &&
              vg->type[300] == TOKEN_NORMAL,
          "token types");
    CHECK(vocab_find_piece(vg, "<0x0A>", 6) == 13, "piece index");
    CHECK(g.identity != b.identity && g.identity != FNV1A64_INIT, "identity");
    model_close(&b);
    model_close(&g);
}

static void test_synth_config(void) {
    Model m;
    if (!open_model(&m, shared_path("models/quant/synth256-q4_k_m.gguf"), NULL)) return;
    const Config *c = &m.cfg;
    CHECK(c->n_layers == 2 && c->dim == 256 && c->ffn_dim == 768 && c->n_heads == 4 && c->n_kv_heads == 2 &&
              c->head_dim == 64 && c->vocab_size == 512 && c->max_seq_len == 2048 && !c->tied_embeddings,
          "synth256 config");
    CHECK(m.layers[1].down->type == DT_Q6_K && m.layers[0].down->type == DT_Q4_K && m.output->type == DT_Q6_K,
          "synth256-q4_k_m types");
    CHECK(m.layers[0].up->shape[0] == 768 && m.layers[0].up->shape[1] == 256, "numpy order shape");
    /* A whole layer of down columns equals the column gathered alone. */
    float *all = xmalloc(768 * 256 * sizeof *all), one[256];
    model_neuron_vectors(&m, MATRIX_DOWN, 1, 0, 768, all);
    model_neuron_vector(&m, MATRIX_DOWN, 1, 700, one);
    CHECK(memcmp(all + 700 * 256, one, sizeof one) == 0, "down column 1:700");
    free(all);
    model_close(&m);
}

/* ----------------------------------------------------------------------------
 * Vocabulary-only files */

static void test_vocab_only(void) {
    Model m;
    double t0 = now_seconds();
    if (open_model(&m, shared_path("tokenizers/vectors/ggml-vocab-llama-bpe.gguf"), NULL)) {
        printf("ggml-vocab-llama-bpe.gguf (128,256 tokens, 280,147 merges) opened in %.3f s\n", now_seconds() - t0);
        const Vocab *v = &m.vocab;
        CHECK(!m.has_weights && m.n_tensors == 0 && v->kind == TOKENIZER_BPE, "llama-bpe: vocabulary only");
        CHECK(v->n_tokens == 128256 && v->n_merges == 280147, "llama-bpe: %d tokens, %d merges", v->n_tokens, v->n_merges);
        CHECK(v->bos_id == 128000 && v->eos_id == 128009 && v->add_bos && !v->add_space_prefix && v->ignore_merges &&
                  v->pre && strcmp(v->pre, "llama-bpe") == 0,
              "llama-bpe: specials and flags");
        CHECK(strcmp(v->merges[0], "\xC4\xA0 \xC4\xA0") == 0, "llama-bpe: first merge 'Ġ Ġ'");
        CHECK(v->text_len[220] == 1 && v->text[220][0] == ' ', "llama-bpe: token 220 is a space");
        CHECK(vocab_find_piece(v, "<|eot_id|>", 10) == 128009, "llama-bpe: <|eot_id|>");
        model_close(&m);
    }
    if (open_model(&m, shared_path("tokenizers/vectors/ggml-vocab-llama-spm.gguf"), NULL)) {
        const Vocab *v = &m.vocab;
        CHECK(!m.has_weights && v->kind == TOKENIZER_SPM && v->n_tokens == 32000 && v->bos_id == 1 && v->eos_id == 2 &&
                  v->add_bos && v->add_space_prefix && v->score,
              "llama-spm vocabulary");
        CHECK(vocab_find_piece(v, "\xE2\x96\x81Hello", 8) == 15043, "llama-spm: '▁Hello' is 15043");
        model_close(&m);
    }
    /* A command that needs weights refuses a vocabulary. */
    Error e = { 0 };
    ModelOpenOptions o = { .need_weights = 1 };
    CHECK(model_open(&m, shared_path("tokenizers/vectors/ggml-vocab-llama-spm.gguf"), &o, &e) == NM_EINPUT &&
              strstr(e.msg, "no weights"),
          "need_weights: %s", e.msg);
}

/* ----------------------------------------------------------------------------
 * Split files, written by tests/gguf_edit.py from stories260K.gguf */

static void test_split(void) {
    char dir[] = "/tmp/test_gguf_XXXXXX", cmd[1024], first[256], second[256];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(cmd, sizeof cmd, "python3 tests/gguf_edit.py split %s %s/s260 3",
             shared_path("models/stories260K/stories260K.gguf"), dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(first, sizeof first, "%s/s260-00001-of-00003.gguf", dir);
    snprintf(second, sizeof second, "%s/s260-00002-of-00003.gguf", dir);
    Model s, w;
    if (open_model(&s, first, NULL)) {
        if (open_model(&w, shared_path("models/stories260K/stories260K.gguf"), NULL)) {
            CHECK(s.n_files == 3 && s.n_tensors == w.n_tensors, "split: %d files, %d tensors", s.n_files, s.n_tensors);
            int same = 0;
            for (int i = 0; i < w.n_tensors; i++) {
                const Tensor *a = &w.tensors[i], *b = model_find_tensor(&s, a->name);
                same += b && b->nbytes == a->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
            }
            CHECK(same == w.n_tensors, "split: %d of %d tensors equal", same, w.n_tensors);
            CHECK(s.files[2].data <= (const uint8_t *)s.layers[4].down->data, "split: last layer in the last part");
            model_close(&w);
        }
        model_close(&s);
    }
    Error e = { 0 };
    CHECK(model_open(&s, second, NULL, &e) == NM_EINPUT && strstr(e.msg, "open the first part"), "part 2: %s", e.msg);
    snprintf(cmd, sizeof cmd, "%s/s260-00003-of-00003.gguf", dir);
    unlink(cmd);
    CHECK(model_open(&s, first, NULL, &e) == NM_EINPUT && strstr(e.msg, "00003-of-00003.gguf"), "missing part: %s", e.msg);
    unlink(first);
    unlink(second);
    rmdir(dir);
}

int main(void) {
    test_ggml_layouts();
    test_fixture_spans();
    test_half_rows();
    test_small_blocks();
    test_quant_fixtures();
    test_stories_gguf();
    test_synth_config();
    test_vocab_only();
    test_split();
    return check_summary("test_gguf");
}
