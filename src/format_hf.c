/* PLACEHOLDER — replaced by the HF loader work. */
#include "model.h"
int load_hf(Model *m, const char *dir, Error *e) { (void)m; return error_set(e, NM_EINPUT, "%s: HF loader not built yet", dir); }
