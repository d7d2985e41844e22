/* memread.c — the decode ceiling: how fast this machine reads memory with a
 * plain loop (bench/forward.sh compiles it). Decoding one token reads every
 * weight once, so memory bandwidth / model bytes bounds decode tokens/s.
 *
 * usage: memread MIB THREADS [FILE]   — GB/s reading MIB MiB with THREADS
 * threads, over anonymous memory, or over FILE mmap'd (as the models are:
 * page-cache reads, after one warm-up pass), best of 5 passes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } Part;

static void *reader(void *arg) {
    Part *t = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains: the loads, not the adds, set the pace */
    for (size_t i = 0; i + 4 <= t->n; i += 4) s0 += t->p[i], s1 += t->p[i + 1], s2 += t->p[i + 2], s3 += t->p[i + 3];
    t->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: memread MIB THREADS [FILE]\n"), 2;
    size_t bytes = (size_t)atol(argv[1]) << 20;
    int nt = atoi(argv[2]);
    const uint64_t *buf;
    if (argc > 3) {
        int fd = open(argv[3], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st)) return perror(argv[3]), 1;
        if ((size_t)st.st_size < bytes) bytes = (size_t)st.st_size;
        buf = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (buf == MAP_FAILED) return perror("mmap"), 1;
    } else {
        uint64_t *b = malloc(bytes);
        if (!b) return perror("malloc"), 1;
        memset(b, 1, bytes);
        buf = b;
    }
    size_t words = bytes / 8, per = words / (size_t)nt;
    double best = 0;
    uint64_t check = 0;
    for (int pass = 0; pass < 6; pass++) {
        pthread_t th[256];
        Part part[256];
        double t0 = now();
        for (int i = 0; i < nt && i < 256; i++) {
            part[i] = (Part){ buf + (size_t)i * per, per, 0 };
            pthread_create(&th[i], NULL, reader, &part[i]);
        }
        for (int i = 0; i < nt && i < 256; i++) pthread_join(th[i], NULL), check += part[i].sum;
        double gbs = (double)per * nt * 8 / (now() - t0) / 1e9;
        if (pass > 0 && gbs > best) best = gbs; /* pass 0 warms the pages */
    }
    printf("%.2f\n", best);
    return check == 42; /* keeps the sums alive */
}
