/* fuzz_hf.c — a Hugging Face model directory (src/formats/format_hf.c): config.json,
 * the safetensors header (JSON) and data offsets, a sharded checkpoint's
 * model.safetensors.index.json and its shards, tokenizer.json and
 * tokenizer_config.json.
 *
 * Input: up to seven files joined by FUZZ_SEP, in the order of hf_files[]; an
 * empty part leaves that file out, so one corpus covers single-file and
 * sharded checkpoints. They are written to a private directory that
 * model_open() then reads as a snapshot. */
#include "fuzz.h"

static const char *const hf_files[] = {
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "model.safetensors.index.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "tokenizer_config.json",
};
#define N_HF_FILES (int)(sizeof hf_files / sizeof hf_files[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[N_HF_FILES];
    size_t len[N_HF_FILES];
    fuzz_split(data, size, part, len, N_HF_FILES);
    fuzz_dir_clear();
    for (int i = 0; i < N_HF_FILES; i++) fuzz_dir_put(hf_files[i], part[i], len[i], 0);
    fuzz_open(fuzz_dir(), NULL);
    return 0;
}
