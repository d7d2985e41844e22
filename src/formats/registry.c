/* registry.c — the table of checkpoint formats, and model_open.
 *
 * Opening is three steps in three places: model_init (model.c) starts an
 * empty Model, the one loader whose probe claims the path fills it, and
 * model_finish (model.c) checks what it filled. This file is the only one
 * that knows every loader; it sits above them, so the arrows run one way:
 * registry → loaders → model.
 */
#include "formats/registry.h"

#include <stdio.h>

#include "formats/loaders.h"

/* First match wins. GGUF has a magic, so it goes first; HF is a directory
 * (or a stray .safetensors file); llama2.c has no magic at all and takes
 * whatever is left, so it must stay last. */
static const FormatLoader *const loaders[] = { &loader_gguf, &loader_hf, &loader_llama2c };

int model_open(Model *m, const char *path, const ModelOpenOptions *o, Error *e) {
    model_init(m, path);
    int is_dir = path_is_dir(path);
    unsigned char head[8] = { 0 };
    size_t n = 0;
    if (!is_dir && !path_exists(path)) {
        model_close(m);
        return error_set(e, NM_EINPUT, "%s: no such file or directory", path);
    }
    if (!is_dir) {
        FILE *f = fopen(path, "rb"); /* unreadable: a loader's map_file says why */
        if (f) {
            n = fread(head, 1, sizeof head, f);
            fclose(f);
        }
    }
    const FormatLoader *fl = NULL;
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0] && !fl; i++)
        if (loaders[i]->probe(path, is_dir, head, n)) fl = loaders[i];
    int rc = fl ? NM_OK : error_set(e, NM_EINPUT, "%s: not a model in any format neuromap reads", path);
    if (!rc) {
        m->format = fl->format;
        rc = fl->load(m, path, o, e);
    }
    if (rc) {
        model_close(m);
        return rc;
    }
    return model_finish(m, o && o->need_weights, e);
}
