/* check.h — the few macros every C test uses. Each test program prints
 * "NAME: N passed, N failed, N skipped" last and exits non-zero on any
 * failure. A skipped check is one that cannot run here (a fixture or a CPU
 * feature missing): it is counted and said, never passed silently. */
#ifndef NEUROMAP_CHECK_H
#define NEUROMAP_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int checks_passed, checks_failed, checks_skipped;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            checks_passed++;                                               \
        } else {                                                           \
            checks_failed++;                                               \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* SKIP(n, why...): n checks that cannot run here, with the reason on stdout. */
#define SKIP(n, ...)                                                       \
    do {                                                                   \
        checks_skipped += (n);                                             \
        printf("SKIP %s:%d: ", __FILE__, __LINE__);                        \
        printf(__VA_ARGS__);                                               \
        putchar('\n');                                                     \
    } while (0)

/* ../shared, or $NEUROMAP_SHARED. */
static inline const char *shared_dir(void) {
    const char *s = getenv("NEUROMAP_SHARED");
    return s && *s ? s : "../shared";
}

/* Path under the shared test data, in a static rotating buffer. */
static inline const char *shared_path(const char *rel) {
    static char bufs[8][4096];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", shared_dir(), rel);
    return b;
}

static inline int check_summary(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, checks_passed, checks_failed, checks_skipped);
    return checks_failed ? 1 : 0;
}

#endif
