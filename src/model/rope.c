/* rope.c — see rope.h. Both functions work in double and round once. */
#include "model/rope.h"

#include <math.h>

/* The unscaled frequency of pair i: θ^(-2i/d). */
static double base_frequency(const Config *c, int i) {
    return 1.0 / pow((double)c->rope_theta, 2.0 * i / (double)c->head_dim);
}

/* How much of the unscaled frequency llama3 scaling keeps: 1 for short
 * wavelengths, 0 for long ones (all of it divided by factor), and between
 * them the weight of a linear blend, (L / wavelength − low) / (high − low). */
static double llama3_keep(const RopeScaling *s, double freq) {
    double wavelen = 2.0 * M_PI / freq, orig = s->original_max_position;
    if (wavelen < orig / s->high_freq_factor) return 1;
    if (wavelen > orig / s->low_freq_factor) return 0;
    if (s->high_freq_factor == s->low_freq_factor) return 1; /* no band to blend over */
    return (orig / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
}

void rope_frequencies(const Config *c, const float *divisors, float *inv_freq) {
    const RopeScaling *s = &c->rope_scaling;
    for (int i = 0; i < c->head_dim / 2; i++) {
        double freq = base_frequency(c, i);
        if (s->present && s->factor > 0) {
            double keep = llama3_keep(s, freq); /* 1 and 0 give freq and freq / factor exactly */
            freq = (1.0 - keep) * freq / s->factor + keep * freq;
        }
        if (divisors) freq /= divisors[i];
        inv_freq[i] = (float)freq;
    }
}

void rope_llama3_divisors(const Config *c, float *divisors) {
    const RopeScaling *s = &c->rope_scaling;
    for (int i = 0; i < c->head_dim / 2; i++) {
        double keep = llama3_keep(s, base_frequency(c, i));
        divisors[i] = keep == 0 ? s->factor : (float)(1 / ((1 - keep) / s->factor + keep));
    }
}
