/* fuzz_gguf.c — a GGUF file (src/formats/format_gguf.c): header, metadata key/values
 * (strings, arrays, nested arrays), tensor infos, alignment, data offsets, and
 * the rows of every bound FFN matrix dequantised from the mapping.
 *
 * Input: the whole file, as a memfd opened by model_open(). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_memfd("model.gguf", data, size, path);
    fuzz_open(path, NULL);
    close(fd);
    return 0;
}
