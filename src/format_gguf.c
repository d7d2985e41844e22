/* PLACEHOLDER — replaced by the GGUF loader work. */
#include "model.h"
int load_gguf(Model *m, const char *path, Error *e) { (void)m; return error_set(e, NM_EINPUT, "%s: GGUF loader not built yet", path); }
