/* token_diff.c — one token through two checkpoints (see token_diff.h).
 *
 * A model side decodes each layer in blocks of neurons: the block's full
 * vocabulary logits (lens_logits, the same product `find` uses), then, one
 * neuron per pool task, the token's rank and the normaliser. An atlas side
 * reads each neuron's stored lists. Every compared neuron is kept (a few
 * dozen bytes each) so that the ranking is over all of them.
 */
#include "report/token_diff.h"
#include "lens/find.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *token_diff_by_name(TokenDiffBy by) {
    return by == TOKEN_DIFF_BY_PROB ? "prob" : by == TOKEN_DIFF_BY_RANK ? "rank" : "logit";
}

/* ----------------------------------------------------------------------------
 * One side's values for a block of neurons */

typedef struct {
    float logit;
    int rank;
    double prob;
    int known;     /* 0: not stored (atlas), -1: non-finite */
} Value;

/* Neurons [n0, n0+count) of a model: vecs and logits are scratch. */
static void model_block(DiffSource *s, MatrixKind k, int layer, int n0, int count, int token, float *vecs, float *logits,
                        LensTokenValue *tv, Value *out) {
    lens_neuron_vectors(&s->L, k, layer, n0, count, vecs);
    lens_logits(&s->L, vecs, count, logits);
    lens_token_values(&s->L, logits, count, token, tv);
    for (int j = 0; j < count; j++) out[j] = (Value){ tv[j].logit, tv[j].rank, tv[j].prob, tv[j].finite ? 1 : -1 };
}

/* Neurons of an atlas: the token's place in the stored top list (rank i+1)
 * or bottom list (bottom[0] is the lowest: rank vocab − i). */
static int atlas_block(DiffSource *s, MatrixKind k, int layer, int n0, int count, int token, LensResult *r, Value *out,
                       Error *e) {
    for (int j = 0; j < count; j++) {
        Value *v = &out[j];
        int n_top, n_bottom, rc = atlas_neuron(s->atlas, k, layer, n0 + j, r, &n_top, &n_bottom, e);
        *v = (Value){ 0 };
        if (rc == NM_EINPUT) continue; /* a neuron the atlas does not hold: not stored */
        if (rc) return rc;
        if (r->nonfinite) {
            v->known = -1;
            continue;
        }
        for (int i = 0; i < n_top && !v->known; i++)
            if (r->top[i].id == token) *v = (Value){ r->top[i].logit, i + 1, r->top[i].prob, 1 };
        for (int i = 0; i < n_bottom && !v->known; i++)
            if (r->bottom[i].id == token) *v = (Value){ r->bottom[i].logit, s->vocab_size - i, r->bottom[i].prob, 1 };
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Options against the sources */

static int resolve(DiffSource *side[2], TokenDiffOptions *o, Error *e) {
    DiffSource *a = side[0];
    if (o->token < 0 || o->token >= a->vocab_size)
        return error_set(e, NM_EINPUT, "token %d is outside the vocabulary (0-%d)", o->token, a->vocab_size - 1);
    if (o->layer1 < 0) o->layer0 = 0, o->layer1 = a->n_layers - 1;
    if (o->layer0 < 0 || o->layer1 >= a->n_layers || o->layer0 > o->layer1)
        return error_set(e, NM_EINPUT, "--layers %ld-%ld is outside 0-%d", o->layer0, o->layer1, a->n_layers - 1);
    if (!o->norm_given) {
        o->norm = NORM_FULL; /* or the atlases' */
        for (int i = 1; i >= 0; i--)
            if (side[i]->atlas) o->norm = atlas_info(side[i]->atlas)->norm;
    }
    for (int i = 0; i < 2; i++) {
        if (!side[i]->atlas) continue;
        LensNorm n = atlas_info(side[i]->atlas)->norm;
        if (n != o->norm)
            return error_set(e, NM_EINPUT, "%s was mapped with --norm %s; the comparison is under --norm %s", side[i]->path,
                             lens_norm_name(n), lens_norm_name(o->norm));
    }
    for (int i = 0; i < 2; i++) {
        if (side[i]->atlas || (i == 1 && side[1] == side[0])) continue;
        int rc = lens_open(&side[i]->L, &side[i]->m, o->norm, o->threads, 1, e);
        if (rc) return rc;
        lens_set_kernel(&side[i]->L, LENS_KERNEL_NATIVE); /* find's product: the same logits as find */
    }
    return NM_OK;
}

/* ----------------------------------------------------------------------------
 * Ranking */

static int by_delta(const void *pa, const void *pb, void *reverse) {
    const TokenDiffRow *a = pa, *b = pb;
    if (a->delta != b->delta) return (a->delta < b->delta) ^ *(int *)reverse ? 1 : -1;
    if (a->matrix != b->matrix) return (int)a->matrix - (int)b->matrix;
    if (a->layer != b->layer) return a->layer - b->layer;
    return a->neuron - b->neuron;
}

static double delta_of(const TokenDiffRow *r, TokenDiffBy by) {
    return by == TOKEN_DIFF_BY_PROB ? r->prob_b - r->prob_a
           : by == TOKEN_DIFF_BY_RANK ? (double)r->rank_a - r->rank_b
                                      : (double)r->logit_b - r->logit_a;
}

/* ----------------------------------------------------------------------------
 * The run */

int token_diff_run(DiffSource *a, DiffSource *b, TokenDiffOptions *o, TokenDiffReport *r,
                   void (*progress)(void *ctx, int64_t done, int64_t total), void *ctx, Error *e) {
    memset(r, 0, sizeof *r);
    DiffSource *side[2] = { a, b };
    int rc;
    if ((a != b && (rc = diff_check_compatible(a, b, e))) || (rc = resolve(side, o, e))) return rc;
    r->opt = *o;

    enum { BLOCK_BYTES = 64 << 20 }; /* of logits per block */
    int vocab = a->vocab_size, ffn = a->ffn_dim, block = (int)(BLOCK_BYTES / 4 / vocab);
    if (block < 1) block = 1;
    if (block > ffn) block = ffn;
    int n_layers = (int)(o->layer1 - o->layer0 + 1);
    int64_t total = (int64_t)__builtin_popcount(o->mask & 7u) * n_layers * ffn, done = 0;
    float *vecs = xmalloc((size_t)block * a->dim * sizeof *vecs);
    float *logits = xmalloc((size_t)block * vocab * sizeof *logits);
    LensTokenValue *tv = xmalloc((size_t)block * sizeof *tv);
    Value *val[2] = { xmalloc((size_t)block * sizeof(Value)), xmalloc((size_t)block * sizeof(Value)) };
    int top_k = 0, bottom_k = 0;
    for (int i = 0; i < 2; i++)
        if (side[i]->atlas) {
            const AtlasInfo *in = atlas_info(side[i]->atlas);
            if (in->top_k > top_k) top_k = in->top_k;
            if (in->bottom_k > bottom_k) bottom_k = in->bottom_k;
        }
    LensToken *lists = xmalloc(((size_t)top_k + bottom_k + 1) * sizeof *lists);
    LensResult stored = { .top = lists, .bottom = lists + top_k };
    r->rows = xmalloc(((size_t)total + 1) * sizeof *r->rows);

    rc = NM_OK;
    for (int k = MATRIX_UP; k <= MATRIX_DOWN && !rc; k++) {
        if (!(o->mask & (1u << k))) continue;
        for (int layer = (int)o->layer0; layer <= o->layer1 && !rc; layer++) {
            for (int n0 = 0; n0 < ffn && !rc; n0 += block) {
                int count = ffn - n0 < block ? ffn - n0 : block;
                for (int i = 0; i < 2 && !rc; i++) {
                    if (i == 1 && b == a) memcpy(val[1], val[0], (size_t)count * sizeof(Value));
                    else if (side[i]->atlas) rc = atlas_block(side[i], (MatrixKind)k, layer, n0, count, o->token, &stored, val[i], e);
                    else model_block(side[i], (MatrixKind)k, layer, n0, count, o->token, vecs, logits, tv, val[i]);
                }
                for (int j = 0; j < count && !rc; j++) {
                    const Value *x = &val[0][j], *y = &val[1][j];
                    if (x->known < 0 || y->known < 0) r->nonfinite++;
                    else if (!x->known || !y->known) r->not_stored++;
                    else {
                        TokenDiffRow *row = &r->rows[r->n_rows++];
                        *row = (TokenDiffRow){ (MatrixKind)k, layer, n0 + j, x->logit, y->logit, x->rank, y->rank, x->prob, y->prob, 0 };
                        row->delta = delta_of(row, o->by);
                    }
                }
                done += count;
                if (progress) progress(ctx, done, total);
            }
        }
    }
    free(vecs);
    free(logits);
    free(val[0]);
    free(val[1]);
    free(lists);
    free(tv);
    if (rc) {
        token_diff_free(r);
        return rc;
    }
    qsort_r(r->rows, (size_t)r->n_rows, sizeof *r->rows, by_delta, &o->reverse);
    return NM_OK;
}

void token_diff_free(TokenDiffReport *r) {
    free(r->rows);
    r->rows = NULL;
    r->n_rows = 0;
}
