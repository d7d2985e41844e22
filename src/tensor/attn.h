/* attn.h — the fast path's attention: the queries that share one KV head
 * (grouped-query attention) over the cache, each K and V row read once for
 * all of them, in the CPU's widest vectors (base/cpu.h).
 *
 * Every output is one fixed computation of its own query and its cache rows
 * (the kernel set fixed): its dot products, its softmax and its Σ a·v are the
 * same operations in the same order whichever other queries share the call.
 * So a prompt gives the bits of decoding it token by token, and any split of
 * the queries into calls (any thread count) gives the same bits.
 */
#ifndef NEUROMAP_ATTN_H
#define NEUROMAP_ATTN_H

#include <stddef.h>
#include <stdint.h>

/* One KV head's cache: row j (position j) of K at k + j·ld, of V at
 * v + j·ld, hd floats; or, when k16 is set, the same in F16 (k16, v16). */
typedef struct {
    const float *k, *v;
    const uint16_t *k16, *v16;
    size_t ld;
    int hd;
} AttnKV;

/* The floats of scratch attn_heads needs for T tokens × G heads seeing at
 * most n positions. */
size_t attn_scratch_floats(int T, int G, int n, int hd);

/* Causal attention, softmax(q·Kᵀ/√hd)·V, of T consecutive tokens × G query
 * heads: query (t, g) is q[t·ldq + g·hd ...], hd floats, sees positions
 * 0 .. n0 + t − 1 (n0 ≥ 1), and its output goes to out[t·ldq + g·hd ...].
 * The softmax's exponentials are kern_exp's (tensor/kernels.h): each weight
 * within ~2·KERN_EXP_ERROR relative of the float one, so each output within
 * that of Σ|a_j·v_j| more than the rounding of the sums. */
void attn_heads(const AttnKV *kv, const float *q, int T, int G, size_t ldq, int n0, float *out, float *scratch);

#endif
