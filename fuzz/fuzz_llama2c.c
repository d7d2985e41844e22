/* fuzz_llama2c.c — a llama2.c checkpoint and its tokenizer .bin, as
 * `neuromap info CKPT --tokenizer TOK` opens them.
 *
 * Input: CHECKPOINT FUZZ_SEP TOKENIZER. Both become memfds; model_open()
 * reads the seven-int header, walks the float arrays, binds the layers and
 * then reads the tokenizer against the header's vocabulary size. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    fuzz_split(data, size, part, len, 2);
    char ckpt[64], tok[64];
    int fd_ckpt = fuzz_memfd("ckpt.bin", part[0], len[0], ckpt);
    int fd_tok = fuzz_memfd("tok.bin", part[1], len[1], tok);
    fuzz_open(ckpt, tok);
    close(fd_ckpt);
    close(fd_tok);
    return 0;
}
