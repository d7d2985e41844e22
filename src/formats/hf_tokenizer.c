/* hf_tokenizer.c — the vocabulary of a Hugging Face tokenizer.json (the
 * `tokenizers` library's format), with tokenizer_config.json beside it.
 *
 * Only BPE models are read, in the two shapes Llama checkpoints use:
 *   - Llama 2 style sentencepiece BPE: byte_fallback, a Prepend("▁")
 *     normalizer or Metaspace pre-tokenizer, pieces like "▁dog" and
 *     "<0x0A>"  → TOKENIZER_SPM;
 *   - Llama 3 style byte-level BPE: a Split regex then ByteLevel, pieces
 *     like "Ġdog"  → TOKENIZER_BPE.
 * tokenizer.json carries no scores; the merges, in priority order, are what
 * the encoder (tokenizer.c) uses. Everything is read in one pass over the
 * parsed JSON: Llama 3's 128,256 tokens and 280,147 merges load in well
 * under a second.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/hf.h"

#define TOKENIZER_MAX_BYTES (512u << 20)
#define TOKENIZER_CONFIG_MAX_BYTES (16u << 20)
#define MAX_TOKENS (1 << 22)

/* GPT-2's pre-tokenizer regex, which ByteLevel applies when use_regex is on
 * and no Split comes before it. */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    const char *path;                  /* tokenizer.json, for messages */
    const cJSON *json, *model, *vocab; /* the document, its "model", model.vocab */
    const cJSON *added;                /* added_tokens (may be NULL) */
    Error *e;
} TokenizerJson;

/* ----------------------------------------------------------------------------
 * Small look-ups */

/* The first component of the given type in a normalizer, pre-tokenizer,
 * decoder or post-processor, looking inside Sequences. */
static const cJSON *find_component(const cJSON *node, const char *type) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (!cJSON_IsString(t)) return NULL;
    if (strcmp(t->valuestring, type) == 0) return node;
    if (strcmp(t->valuestring, "Sequence") != 0) return NULL;
    for (const cJSON *list = node->child; list; list = list->next) {
        if (!cJSON_IsArray(list)) continue;
        for (const cJSON *sub = list->child; sub; sub = sub->next) {
            const cJSON *hit = find_component(sub, type);
            if (hit) return hit;
        }
    }
    return NULL;
}

static int json_flag(const cJSON *obj, const char *key, int def) {
    const cJSON *item = json_get(obj, key);
    return cJSON_IsBool(item) ? cJSON_IsTrue(item) : def;
}

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *item = json_get(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The id of a token given by its text: added tokens first, then the model's
 * vocabulary. -1 when absent. */
static int token_id(const TokenizerJson *tj, const char *content) {
    for (const cJSON *a = tj->added ? tj->added->child : NULL; a; a = a->next) {
        const char *c = json_string(a, "content");
        int64_t id;
        if (c && strcmp(c, content) == 0 && json_whole(json_get(a, "id"), 0, MAX_TOKENS - 1, &id)) return (int)id;
    }
    int64_t id;
    return json_whole(cJSON_GetObjectItemCaseSensitive(tj->vocab, content), 0, MAX_TOKENS - 1, &id) ? (int)id : -1;
}

/* ----------------------------------------------------------------------------
 * Tokens and merges */

/* Ids may leave gaps and added tokens may lie past model.vocab: the table
 * spans 0 .. the largest id. */
static int count_tokens(const TokenizerJson *tj, int *n) {
    int64_t id, max = -1;
    for (const cJSON *t = tj->vocab->child; t; t = t->next) {
        if (!json_whole(t, 0, MAX_TOKENS - 1, &id))
            return error_set(tj->e, NM_EINPUT, "%s: model.vocab entry \"%.40s\" has no valid id (0..%d)", tj->path, t->string,
                             MAX_TOKENS - 1);
        if (id > max) max = id;
    }
    for (const cJSON *a = tj->added ? tj->added->child : NULL; a; a = a->next) {
        if (!json_whole(json_get(a, "id"), 0, MAX_TOKENS - 1, &id) || !json_string(a, "content"))
            return error_set(tj->e, NM_EINPUT, "%s: added_tokens entries need an id (0..%d) and a content string", tj->path,
                             MAX_TOKENS - 1);
        if (id > max) max = id;
    }
    if (max < 0) return error_set(tj->e, NM_EINPUT, "%s: the vocabulary is empty", tj->path);
    *n = (int)max + 1;
    return NM_OK;
}

/* Moves a string out of the parsed JSON instead of copying it: cJSON
 * allocates with malloc and skips NULL strings when it frees the tree, so
 * the 400,000 vocabulary keys and merges of Llama 3 are not duplicated. */
static char *take_string(char **s) {
    char *p = *s;
    *s = NULL;
    return p;
}

static void set_piece(Vocab *v, int id, const char *piece, int type) {
    free(v->piece[id]);
    v->piece[id] = xstrdup(piece);
    v->piece_len[id] = (int)strlen(piece);
    v->type[id] = type;
}

static int read_tokens(Vocab *v, const TokenizerJson *tj) {
    int n = 0, rc = count_tokens(tj, &n);
    if (rc) return rc;
    v->n_tokens = n;
    v->piece = xcalloc((size_t)n, sizeof *v->piece);
    v->piece_len = xcalloc((size_t)n, sizeof *v->piece_len);
    v->type = xcalloc((size_t)n, sizeof *v->type);
    int64_t id;
    for (cJSON *t = tj->vocab->child; t; t = t->next) {
        json_whole(t, 0, MAX_TOKENS - 1, &id);
        if (v->piece[id])
            return error_set(tj->e, NM_EINPUT, "%s: id %lld is given to both \"%.40s\" and \"%.40s\"", tj->path, (long long)id,
                             v->piece[id], t->string);
        v->piece[id] = take_string(&t->string);
        v->piece_len[id] = (int)strlen(v->piece[id]);
        v->type[id] = TOKEN_NORMAL;
    }
    /* Added tokens: special ones are control tokens (BOS, <|eot_id|>), the
     * rest user-defined; both are matched whole, never merged into. */
    for (const cJSON *a = tj->added ? tj->added->child : NULL; a; a = a->next) {
        json_whole(json_get(a, "id"), 0, MAX_TOKENS - 1, &id);
        set_piece(v, (int)id, json_string(a, "content"), json_flag(a, "special", 0) ? TOKEN_CONTROL : TOKEN_USER_DEFINED);
    }
    for (int i = 0; i < n; i++)
        if (!v->piece[i]) set_piece(v, i, "", TOKEN_UNUSED);
    return NM_OK;
}

/* Merges are "left right" strings, or [left, right] pairs in files written
 * by tokenizers >= 0.20; both are stored as "left right". */
static int read_merges(Vocab *v, const TokenizerJson *tj) {
    const cJSON *merges = json_get(tj->model, "merges");
    if (!merges) return NM_OK;
    if (!cJSON_IsArray(merges)) return error_set(tj->e, NM_EINPUT, "%s: model.merges must be a list", tj->path);
    v->merges = xmalloc((size_t)cJSON_GetArraySize(merges) * sizeof *v->merges + 1);
    for (cJSON *mg = merges->child; mg; mg = mg->next) {
        if (cJSON_IsString(mg) && strchr(mg->valuestring, ' ')) {
            v->merges[v->n_merges++] = take_string(&mg->valuestring);
        } else if (cJSON_IsArray(mg) && cJSON_GetArraySize(mg) == 2 && cJSON_IsString(mg->child) &&
                   cJSON_IsString(mg->child->next)) {
            const char *l = mg->child->valuestring, *r = mg->child->next->valuestring;
            size_t nl = strlen(l), nr = strlen(r);
            char *s = xmalloc(nl + nr + 2);
            memcpy(s, l, nl);
            s[nl] = ' ';
            memcpy(s + nl + 1, r, nr + 1);
            v->merges[v->n_merges++] = s;
        } else {
            return error_set(tj->e, NM_EINPUT, "%s: merge %d is neither \"left right\" nor [left, right]", tj->path, v->n_merges);
        }
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Which tokenizer family, and how it splits text */

static int read_kind(Vocab *v, const TokenizerJson *tj) {
    const cJSON *norm = json_get(tj->json, "normalizer"), *pre = json_get(tj->json, "pre_tokenizer");
    const cJSON *prepend = find_component(norm, "Prepend"), *meta = find_component(pre, "Metaspace");
    const cJSON *byte_level = find_component(pre, "ByteLevel");
    const char *prepend_text = json_string(prepend, "prepend");
    int prepends_space = prepend_text && strcmp(prepend_text, "\xE2\x96\x81") == 0;
    if (!byte_level) byte_level = find_component(json_get(tj->json, "decoder"), "ByteLevel");
    v->byte_fallback = json_flag(tj->model, "byte_fallback", 0);
    v->ignore_merges = json_flag(tj->model, "ignore_merges", 0);
    if (v->byte_fallback || meta || prepends_space) {
        v->kind = TOKENIZER_SPM;
        /* Metaspace says it as prepend_scheme (or, before tokenizers 0.14, add_prefix_space). */
        const char *scheme = json_string(meta, "prepend_scheme");
        v->add_space_prefix = prepends_space || (scheme ? strcmp(scheme, "never") != 0 : json_flag(meta, "add_prefix_space", meta != NULL));
    } else if (byte_level) {
        v->kind = TOKENIZER_BPE;
        v->add_space_prefix = json_flag(find_component(pre, "ByteLevel"), "add_prefix_space", 0);
    } else {
        return error_set(tj->e, NM_EINPUT, "%s: neither sentencepiece-style (byte_fallback, Metaspace, Prepend \"\xE2\x96\x81\") "
                         "nor byte-level (ByteLevel): tokenizer family not supported", tj->path);
    }
    return NM_OK;
}

/* The pre-tokenizer's Split regex (Llama 3), or GPT-2's when a bare ByteLevel
 * splits with its built-in regex. */
static int read_pre_regex(Vocab *v, const TokenizerJson *tj) {
    const cJSON *pre = json_get(tj->json, "pre_tokenizer");
    const cJSON *split = find_component(pre, "Split"), *byte_level = find_component(pre, "ByteLevel");
    if (split) {
        const char *regex = json_string(json_get(split, "pattern"), "Regex"), *behavior = json_string(split, "behavior");
        if (!regex) return error_set(tj->e, NM_EINPUT, "%s: pre-tokenizer Split needs a Regex pattern", tj->path);
        if ((behavior && strcmp(behavior, "Isolated") != 0) || json_flag(split, "invert", 0))
            return error_set(tj->e, NM_EINPUT, "%s: pre-tokenizer Split must be Isolated and not inverted", tj->path);
        v->pre_regex = xstrdup(regex);
    } else if (byte_level && json_flag(byte_level, "use_regex", 1)) {
        v->pre_regex = xstrdup(gpt2_regex);
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Special tokens: BOS, EOS, UNK, PAD */

/* A token named by tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
 * *id stays -1 when the entry is absent or null. */
static int named_token(const TokenizerJson *tj, const cJSON *cfg, const char *key, const char *cfg_path, int *id) {
    const cJSON *item = json_get(cfg, key);
    const char *content = cJSON_IsString(item) ? item->valuestring : json_string(item, "content");
    *id = -1;
    if (!item) return NM_OK;
    if (!content) return error_set(tj->e, NM_EINPUT, "%s: %s must be a string or {\"content\": ...}", cfg_path, key);
    *id = token_id(tj, content);
    if (*id < 0) return error_set(tj->e, NM_EINPUT, "%s: %s \"%.40s\" is not in the vocabulary", cfg_path, key, content);
    return NM_OK;
}

/* BOS from the post-processor: a TemplateProcessing whose single-sequence
 * template starts with a special token adds that token to every encoding. */
static int template_bos(const TokenizerJson *tj) {
    const cJSON *tp = find_component(json_get(tj->json, "post_processor"), "TemplateProcessing");
    const cJSON *single = json_get(tp, "single");
    const char *name = json_string(json_get(single ? single->child : NULL, "SpecialToken"), "id");
    if (!name) return -1;
    const cJSON *ids = json_get(json_get(json_get(tp, "special_tokens"), name), "ids");
    int64_t id;
    if (cJSON_IsArray(ids) && json_whole(ids->child, 0, MAX_TOKENS - 1, &id)) return (int)id;
    return token_id(tj, name);
}

/* The chat template: a string, or a list of {name, template} (the one named
 * "default"); transformers >= 4.43 may save it as chat_template.jinja instead. */
static int read_chat_template(Vocab *v, const cJSON *cfg, const char *dir, Error *e) {
    const cJSON *tmpl = json_get(cfg, "chat_template");
    if (cJSON_IsString(tmpl)) v->chat_template = xstrdup(tmpl->valuestring);
    for (const cJSON *t = cJSON_IsArray(tmpl) ? tmpl->child : NULL; t; t = t->next) {
        const char *name = json_string(t, "name"), *text = json_string(t, "template");
        if (name && text && strcmp(name, "default") == 0) v->chat_template = xstrdup(text);
    }
    if (v->chat_template) return NM_OK;
    char *path = hf_path(dir, "chat_template.jinja");
    int rc = path_exists(path) ? read_file(path, TOKENIZER_CONFIG_MAX_BYTES, &v->chat_template, NULL, e) : NM_OK;
    free(path);
    return rc;
}

static int check_id(const TokenizerJson *tj, int id, int limit, const char *what, const char *from) {
    if (id >= limit)
        return error_set(tj->e, NM_EINPUT, "%s: %s %d is outside the vocabulary of %d tokens", from, what, id, limit);
    return NM_OK;
}

static int read_specials(Model *m, const TokenizerJson *tj, const char *dir, int cfg_bos, int cfg_eos) {
    Vocab *v = &m->vocab;
    char *cfg_path = hf_path(dir, "tokenizer_config.json");
    cJSON *cfg = NULL;
    int rc = NM_OK, bos = -1, eos = -1, pad = -1;
    if (path_exists(cfg_path)) {
        char *text;
        size_t len;
        rc = read_file(cfg_path, TOKENIZER_CONFIG_MAX_BYTES, &text, &len, tj->e);
        if (!rc) {
            rc = json_parse_object(text, len, cfg_path, &cfg, tj->e);
            free(text);
        }
    }
    if (!rc) rc = named_token(tj, cfg, "bos_token", cfg_path, &bos);
    if (!rc) rc = named_token(tj, cfg, "eos_token", cfg_path, &eos);
    if (!rc) rc = named_token(tj, cfg, "pad_token", cfg_path, &pad);
    if (!rc) rc = read_chat_template(v, cfg, dir, tj->e);
    int from_template = template_bos(tj), limit = v->n_tokens > m->cfg.vocab_size ? v->n_tokens : m->cfg.vocab_size;
    v->add_bos = json_flag(cfg, "add_bos_token", from_template >= 0);
    v->bos_id = bos >= 0 ? bos : from_template >= 0 ? from_template : cfg_bos;
    v->eos_id = eos >= 0 ? eos : cfg_eos;
    v->pad_id = pad;
    const char *unk = json_string(tj->model, "unk_token");
    v->unk_id = unk ? token_id(tj, unk) : -1;
    if (!rc) rc = check_id(tj, from_template, v->n_tokens, "the post-processor's BOS id", tj->path);
    if (!rc) rc = check_id(tj, v->bos_id, limit, "bos_token_id", "config.json");
    if (!rc) rc = check_id(tj, v->eos_id, limit, "eos_token_id", "config.json");
    if (!rc) rc = check_id(tj, v->unk_id, v->n_tokens, "unk_token", tj->path);
    if (!rc && v->unk_id >= 0) v->type[v->unk_id] = TOKEN_UNKNOWN;
    cJSON_Delete(cfg);
    free(cfg_path);
    return rc;
}

/* ----------------------------------------------------------------------------
 * The file */

/* sentencepiece's byte pieces "<0x00>".."<0xFF>" are byte-fallback tokens. */
static void mark_byte_tokens(Vocab *v) {
    for (int i = 0; i < v->n_tokens; i++) {
        const char *p = v->piece[i];
        if (v->type[i] == TOKEN_NORMAL && v->piece_len[i] == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>' &&
            strchr("0123456789ABCDEF", p[3]) && strchr("0123456789ABCDEF", p[4]))
            v->type[i] = TOKEN_BYTE;
    }
}

static int read_tokenizer_json(Model *m, TokenizerJson *tj, const char *dir, int cfg_bos, int cfg_eos) {
    const char *type = json_string(tj->model, "type");
    if (!cJSON_IsObject(tj->model)) return error_set(tj->e, NM_EINPUT, "%s: has no \"model\" object", tj->path);
    if (!type || strcmp(type, "BPE") != 0)
        return error_set(tj->e, NM_EINPUT, "%s: model type '%.32s' is not supported (only BPE)", tj->path, type ? type : "none");
    if (!cJSON_IsObject(tj->vocab)) return error_set(tj->e, NM_EINPUT, "%s: model.vocab must be an object", tj->path);
    if (tj->added && !cJSON_IsArray(tj->added)) return error_set(tj->e, NM_EINPUT, "%s: added_tokens must be a list", tj->path);
    Vocab *v = &m->vocab;
    int rc;
    if ((rc = read_tokens(v, tj)) || (rc = read_merges(v, tj)) || (rc = read_kind(v, tj)) || (rc = read_pre_regex(v, tj)) ||
        (rc = read_specials(m, tj, dir, cfg_bos, cfg_eos)))
        return rc;
    if (v->kind == TOKENIZER_SPM) mark_byte_tokens(v);
    return NM_OK;
}

int hf_load_tokenizer(Model *m, const char *dir, int cfg_bos, int cfg_eos, Error *e) {
    char *path = hf_path(dir, "tokenizer.json");
    MappedFile f = { 0 };
    cJSON *json = NULL;
    /* Mapped, not read: the 9 MB of a Llama 3 tokenizer.json are parsed in
     * place, with no second copy on the heap. */
    int rc = path_exists(path) ? map_file(&f, path, e)
                               : error_set(e, NM_EINPUT, "%s: missing (neuromap reads the vocabulary from it; "
                                           "tokenizer.model alone is not supported)", path);
    if (!rc && f.size > TOKENIZER_MAX_BYTES) rc = error_set(e, NM_EINPUT, "%s: larger than %u bytes", path, TOKENIZER_MAX_BYTES);
    if (!rc) rc = json_parse_object((const char *)f.data, f.size, path, &json, e);
    unmap_file(&f);
    if (!rc) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(json, "model");
        TokenizerJson tj = { path, json, model, cJSON_GetObjectItemCaseSensitive(model, "vocab"), json_get(json, "added_tokens"), e };
        rc = read_tokenizer_json(m, &tj, dir, cfg_bos, cfg_eos);
    }
    cJSON_Delete(json);
    free(path);
    return rc;
}
