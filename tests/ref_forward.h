/* ref_forward.h — the Llama equations in double, one position at a time,
 * recomputing attention from scratch: the independent reference that
 * test_forward.c and test_activations.c compare the forward pass with. It
 * uses the model's tensors (widened to float) and none of the forward
 * pass's code; the caller decides what happens at each MLP (hooks,
 * recording). */
#ifndef NEUROMAP_TEST_REF_FORWARD_H
#define NEUROMAP_TEST_REF_FORWARD_H

#include <math.h>
#include <stdlib.h>

#include "model/model.h"

static float *tensor_f32(const Tensor *t) {
    float *out = xmalloc((size_t)(tensor_rows(t) * tensor_cols(t)) * sizeof *out);
    tensor_rows_f32(t, 0, tensor_rows(t), out);
    return out;
}

/* ----------------------------------------------------------------------------
 * The reference: the Llama equations in double, one position at a time,
 * recomputing attention from scratch. */

static void ref_matvec(const float *w, int rows, int cols, const double *x, double *out) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int i = 0; i < cols; i++) s += (double)w[(size_t)r * cols + i] * x[i];
        out[r] = s;
    }
}

static void ref_rmsnorm(const double *x, const float *w, int n, double eps, double *out) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double k = 1 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * x[i] * k;
}

static double ref_freq(const Config *c, int i) {
    double f = pow(c->rope_theta, -2.0 * i / c->head_dim);
    const RopeScaling *s = &c->rope_scaling;
    if (!s->present) return f;
    double wl = 2 * M_PI / f, lo = s->original_max_position / s->low_freq_factor, hi = s->original_max_position / s->high_freq_factor;
    if (wl < hi) return f;
    if (wl > lo) return f / s->factor;
    double sm = (s->original_max_position / wl - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
    return (1 - sm) * f / s->factor + sm * f;
}

static void ref_rope(const Config *c, double *v, int heads, int pos) {
    int hd = c->head_dim;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double a = pos * ref_freq(c, i);
            int p = c->rope_interleaved ? 2 * i : i, q = c->rope_interleaved ? 2 * i + 1 : i + hd / 2;
            double x0 = v[h * hd + p], x1 = v[h * hd + q];
            v[h * hd + p] = x0 * cos(a) - x1 * sin(a);
            v[h * hd + q] = x0 * sin(a) + x1 * cos(a);
        }
}

/* The MLP of layer l at position t: on entry g = gate·x and u = up·x (ffn
 * each); on return u holds what the down matrix multiplies. */
typedef void (*RefMlpFn)(void *ctx, int layer, int t, const double *g, double *u, int ffn);

/* Runs ids[0..n) through m in double; the logits (n × vocab) of every
 * position into logits, unless it is NULL. */
static void ref_forward_mlp(const Model *m, const int *ids, int n, RefMlpFn mlp, void *ctx, double *logits) {
    const Config *c = &m->cfg;
    int dim = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, ffn = c->ffn_dim;
    double *x = calloc((size_t)n * dim, sizeof *x), *xn = malloc((size_t)dim * sizeof *xn);
    double *K = malloc((size_t)n * kvd * sizeof *K), *V = malloc((size_t)n * kvd * sizeof *V), *Q = malloc((size_t)n * qd * sizeof *Q);
    double *att = malloc((size_t)qd * sizeof *att), *o = malloc((size_t)dim * sizeof *o), *sc = malloc((size_t)n * sizeof *sc);
    double *g = malloc((size_t)ffn * sizeof *g), *u = malloc((size_t)ffn * sizeof *u);
    float *E = tensor_f32(m->tok_embd);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < dim; i++) x[(size_t)t * dim + i] = E[(size_t)ids[t] * dim + i];
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        float *an = tensor_f32(w->attn_norm), *fn = tensor_f32(w->ffn_norm), *wq = tensor_f32(w->wq), *wk = tensor_f32(w->wk);
        float *wv = tensor_f32(w->wv), *wo = tensor_f32(w->wo), *wg = tensor_f32(w->gate), *wu = tensor_f32(w->up), *wd = tensor_f32(w->down);
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(x + (size_t)t * dim, an, dim, c->norm_eps, xn);
            ref_matvec(wq, qd, dim, xn, Q + (size_t)t * qd);
            ref_matvec(wk, kvd, dim, xn, K + (size_t)t * kvd);
            ref_matvec(wv, kvd, dim, xn, V + (size_t)t * kvd);
            ref_rope(c, Q + (size_t)t * qd, c->n_heads, t);
            ref_rope(c, K + (size_t)t * kvd, c->n_kv_heads, t);
        }
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < c->n_heads; h++) {
                int kh = h / (c->n_heads / c->n_kv_heads);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += Q[(size_t)t * qd + h * hd + i] * K[(size_t)j * kvd + kh * hd + i];
                    sc[j] = s / sqrt(hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += sc[j] / sum * V[(size_t)j * kvd + kh * hd + i];
                    att[h * hd + i] = a;
                }
            }
            ref_matvec(wo, dim, qd, att, o);
            for (int i = 0; i < dim; i++) x[(size_t)t * dim + i] += o[i];
            ref_rmsnorm(x + (size_t)t * dim, fn, dim, c->norm_eps, xn);
            ref_matvec(wg, ffn, dim, xn, g);
            ref_matvec(wu, ffn, dim, xn, u);
            mlp(ctx, l, t, g, u, ffn);
            ref_matvec(wd, dim, ffn, u, o);
            for (int i = 0; i < dim; i++) x[(size_t)t * dim + i] += o[i];
        }
        free(an); free(fn); free(wq); free(wk); free(wv); free(wo); free(wg); free(wu); free(wd);
    }
    if (logits) {
        float *on = tensor_f32(m->output_norm), *W = tensor_f32(m->output);
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(x + (size_t)t * dim, on, dim, c->norm_eps, xn);
            ref_matvec(W, c->vocab_size, dim, xn, logits + (size_t)t * c->vocab_size);
        }
        free(on); free(W);
    }
    free(E);
    free(x); free(xn); free(K); free(V); free(Q); free(att); free(o); free(sc); free(g); free(u);
}

#endif
