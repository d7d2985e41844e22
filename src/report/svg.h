/* svg.h — a tiny SVG writer for grouped bar charts (diff's per-layer plot). */
#ifndef NEUROMAP_SVG_H
#define NEUROMAP_SVG_H

#include "base/util.h"

/* Bars of n_series series over n_groups groups: values[s * n_groups + g],
 * drawn against a y axis from 0 to y_max. Text is escaped for XML. */
typedef struct {
    const char *title, *x_label, *y_label;
    int n_series, n_groups;
    const char *const *series; /* legend entries */
    const char *const *groups; /* x tick labels */
    const double *values;
    double y_max;
} SvgBars;

/* Writes the chart to path (replacing it); NM_ERUNTIME when it cannot. */
int svg_write_bars(const char *path, const SvgBars *c, Error *e);

#endif
