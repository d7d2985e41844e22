/* serve_assets.h — the web atlas's pages, compiled into the binary.
 *
 * scripts/embed-web turns every file of web/ into a byte array of
 * build/web_assets.c at build time: serve never reads a file to answer a
 * request, so there is nothing to install and nothing to traverse.
 */
#ifndef NEUROMAP_SERVE_ASSETS_H
#define NEUROMAP_SERVE_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;            /* "/app.js" */
    const char *type;            /* its Content-Type */
    const unsigned char *data;
    size_t len;
} WebAsset;

extern const WebAsset web_assets[];
extern const int web_asset_count;

#endif
