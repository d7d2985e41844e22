/* fuzz_llama2c_tokenizer.c — the llama2.c tokenizer .bin on its own.
 *
 * The tokenizer is read only once a checkpoint has loaded, and its token
 * count comes from that checkpoint, so this target builds the smallest valid
 * checkpoint itself (dim 2, one layer, one head, context 1) for a vocabulary
 * size taken from the first two input bytes (little-endian, 1..4096); the
 * rest of the input is the tokenizer. Every execution then reaches the
 * tokenizer parser, which a whole-file mutation of a 1 MB checkpoint rarely
 * does. Seed: "\x00\x02" + tok512.bin (512 tokens). */
#include "fuzz.h"

/* llama2.c's v0 layout for dim = ffn = 2, one layer, one (KV) head, seq_len 1:
 * embedding (vocab × 2), then 36 floats of layer weights, final norm and RoPE tables. */
static uint8_t *tiny_checkpoint(int vocab, size_t *size) {
    int32_t header[7] = { 2, 2, 1, 1, 1, vocab, 1 };
    size_t n_floats = (size_t)vocab * 2 + 36;
    *size = sizeof header + n_floats * sizeof(float);
    uint8_t *buf = xmalloc(*size);
    memcpy(buf, header, sizeof header);
    float one = 1.0f;
    for (size_t i = 0; i < n_floats; i++) memcpy(buf + sizeof header + i * sizeof one, &one, sizeof one);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int vocab = 1 + (data[0] | data[1] << 8) % 4096;
    size_t ckpt_size;
    uint8_t *ckpt_bytes = tiny_checkpoint(vocab, &ckpt_size);
    char ckpt[64], tok[64];
    int fd_ckpt = fuzz_memfd("ckpt.bin", ckpt_bytes, ckpt_size, ckpt);
    int fd_tok = fuzz_memfd("tok.bin", data + 2, size - 2, tok);
    free(ckpt_bytes);
    fuzz_open(ckpt, tok);
    close(fd_ckpt);
    close(fd_tok);
    return 0;
}
