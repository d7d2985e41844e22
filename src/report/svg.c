/* svg.c — grouped bar charts as plain SVG 1.1: axes with ticks and labels,
 * a title, a legend. No library: the format is a few lines of text. */
#include "report/svg.h"

#include <errno.h>
#include <string.h>

/* Text with XML's five special characters escaped. */
static void put_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    put_text(f, s);
    fputs("</text>\n", f);
}

int svg_write_bars(const char *path, const SvgBars *c, Error *e) {
    static const char *colour[] = { "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3" };
    enum { LEFT = 70, RIGHT = 120, TOP = 50, BOTTOM = 60, PLOT_H = 260, BAR_W = 14, GAP = 12 };
    double group_w = c->n_series * BAR_W + GAP, plot_w = c->n_groups * group_w + GAP;
    double width = LEFT + plot_w + RIGHT, height = TOP + PLOT_H + BOTTOM, y0 = TOP + PLOT_H;
    FILE *f = fopen(path, "w");
    if (!f) return error_set(e, NM_ERUNTIME, "%s: cannot write the plot: %s", path, strerror(errno));

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\""
               " font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            width, height, width, height);
    text_at(f, width / 2, 24, "middle", " font-size=\"14\" font-weight=\"bold\"", c->title);

    /* y axis: grid lines and ticks at fifths of y_max */
    for (int i = 0; i <= 5; i++) {
        double v = c->y_max * i / 5, y = y0 - PLOT_H * i / 5.0;
        char tick[32];
        snprintf(tick, sizeof tick, "%g", v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y, LEFT + plot_w, y);
        text_at(f, LEFT - 6, y + 4, "end", "", tick);
    }
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n", LEFT, TOP, LEFT, y0);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", LEFT, y0, LEFT + plot_w, y0);
    char rotate[64];
    snprintf(rotate, sizeof rotate, " transform=\"rotate(-90 %d %.1f)\"", 20, y0 - PLOT_H / 2.0);
    text_at(f, 20, y0 - PLOT_H / 2.0, "middle", rotate, c->y_label);
    text_at(f, LEFT + plot_w / 2, height - 16, "middle", "", c->x_label);

    /* bars, each with its value as a tooltip */
    for (int g = 0; g < c->n_groups; g++) {
        double gx = LEFT + GAP + g * group_w;
        text_at(f, gx + c->n_series * BAR_W / 2.0, y0 + 16, "middle", "", c->groups[g]);
        for (int s = 0; s < c->n_series; s++) {
            double v = c->values[(size_t)s * c->n_groups + g], h = c->y_max > 0 ? PLOT_H * v / c->y_max : 0;
            h = h < 0 ? 0 : h > PLOT_H ? PLOT_H : h;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>",
                    gx + s * BAR_W, y0 - h, BAR_W - 1, h, colour[s % 5]);
            put_text(f, c->series[s]);
            fprintf(f, " %s: %.4g</title></rect>\n", c->groups[g], v);
        }
    }
    /* legend */
    for (int s = 0; s < c->n_series; s++) {
        double x = LEFT + plot_w + 16, y = TOP + 10 + s * 20;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y - 10, colour[s % 5]);
        text_at(f, x + 18, y, "start", "", c->series[s]);
    }
    fputs("</svg>\n", f);
    if (ferror(f) | fclose(f)) return error_set(e, NM_ERUNTIME, "%s: cannot write the plot", path);
    return NM_OK;
}
