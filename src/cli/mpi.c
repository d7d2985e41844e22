/* mpi.c — the MPI side of neuromap (mpi.h): detecting a launcher, and the
 * few messages a distributed map needs. Everything else a rank does is an
 * ordinary map of its shard (store/shard.h). */
#include "cli/mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef NEUROMAP_MPI
#include <mpi.h>
#endif

#include "cli/cmd.h"

/* ----------------------------------------------------------------------------
 * Was this process started by a launcher? */

/* Each launcher leaves its mark in the environment of the processes it
 * starts: Open MPI's mpirun OMPI_COMM_WORLD_SIZE, PMIx servers (Open MPI
 * 5, srun --mpi=pmix) PMIX_RANK, PMI-1/2 launchers (MPICH's hydra, srun
 * --mpi=pmi2) PMI_SIZE, and srun SLURM_PROCID with SLURM_NTASKS. A Slurm
 * job of one task (a job array's element) is a plain run: calling MPI_Init
 * there would gain nothing and could wait on a PMI that is not there. */
const char *mpi_launcher(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE")) return "Open MPI";
    if (getenv("PMIX_RANK")) return "PMIx";
    if (getenv("PMI_SIZE")) return "PMI";
    const char *tasks = getenv("SLURM_NTASKS");
    if (getenv("SLURM_PROCID") && tasks && atoi(tasks) > 1) return "Slurm";
    return NULL;
}

#ifdef NEUROMAP_MPI

/* Waiting without spinning. MPI's blocking calls poll at full speed, and a
 * rank that waits (rank 0 for the others, a rank for rank 0 to take its
 * results) would take a core from the decoding threads beside it: measured
 * on two busy cores, a blocking MPI_Probe doubled the CPU time of a map.
 * Chunks take seconds, so a millisecond's nap costs nothing. */
static void nap(void) { nanosleep(&(struct timespec){ 0, 1000000 }, NULL); }

static void wait_request(MPI_Request *r) {
    for (int done = 0; MPI_Test(r, &done, MPI_STATUS_IGNORE), !done;) nap();
}

void mpi_start(MpiWorld *w, const char *cmd) {
    *w = (MpiWorld){ .rank = 0, .size = 1 };
    const char *launcher = mpi_launcher(); /* before MPI_Init, which adds variables of its own */
    if (!launcher) return;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) die(NM_ERUNTIME, "%s: MPI_Init failed (started by %s)", cmd, launcher);
    w->started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    /* srun without a PMI plugin starts N tasks that each find a world of
     * one: they would all map everything into the same atlas. */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE")
                  : getenv("PMI_SIZE")             ? getenv("PMI_SIZE")
                                                   : getenv("SLURM_NTASKS");
    if (n && atoi(n) > 1 && w->size == 1)
        die(NM_ERUNTIME, "%s: %s started %s tasks, but MPI sees a world of one (with srun, add --mpi=pmix or --mpi=pmi2)",
            cmd, launcher, n);
}

/* MPI_Finalize waits for every rank, polling: a rank done early first
 * naps at a barrier while rank 0 writes the atlas. */
void mpi_end(MpiWorld *w) {
    if (!w->started) return;
    MPI_Request r;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    wait_request(&r);
    MPI_Finalize();
    w->started = 0;
}

void mpi_bcast_int(const MpiWorld *w, int *v) {
    if (w->size > 1) MPI_Bcast(v, 1, MPI_INT, 0, MPI_COMM_WORLD);
}

int mpi_all_same(const MpiWorld *w, uint64_t v) {
    if (w->size == 1) return 1;
    unsigned long long x = v, lo, hi;
    MPI_Allreduce(&x, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&x, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

void mpi_send_bytes(int to, const void *buf, size_t n) { MPI_Send(buf, (int)n, MPI_BYTE, to, 1, MPI_COMM_WORLD); }
void mpi_recv_bytes(int from, void *buf, size_t n) { MPI_Recv(buf, (int)n, MPI_BYTE, from, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); }

/* Blobs: the size, then pieces of at most 1 GiB (MPI counts are ints). */
enum { TAG_BLOB = 4, BLOB_PIECE = 1 << 30 };

void mpi_send_blob(int to, const void *buf, size_t n) {
    unsigned long long size = n;
    MPI_Request r;
    MPI_Isend(&size, 1, MPI_UNSIGNED_LONG_LONG, to, TAG_BLOB, MPI_COMM_WORLD, &r);
    wait_request(&r);
    for (size_t at = 0; at < n; at += BLOB_PIECE) {
        int len = (int)(n - at < BLOB_PIECE ? n - at : BLOB_PIECE);
        MPI_Isend((const unsigned char *)buf + at, len, MPI_BYTE, to, TAG_BLOB, MPI_COMM_WORLD, &r);
        wait_request(&r);
    }
}

unsigned char *mpi_recv_blob(int from, size_t *n) {
    unsigned long long size;
    MPI_Request r;
    MPI_Irecv(&size, 1, MPI_UNSIGNED_LONG_LONG, from, TAG_BLOB, MPI_COMM_WORLD, &r);
    wait_request(&r);
    unsigned char *buf = xmalloc(size ? (size_t)size : 1);
    for (size_t at = 0; at < size; at += BLOB_PIECE) {
        int len = (int)(size - at < BLOB_PIECE ? size - at : BLOB_PIECE);
        MPI_Irecv(buf + at, len, MPI_BYTE, from, TAG_BLOB, MPI_COMM_WORLD, &r);
        wait_request(&r);
    }
    *n = (size_t)size;
    return buf;
}

void mpi_bcast_blob(const MpiWorld *w, void *buf, size_t n) {
    if (w->size == 1) return;
    for (size_t at = 0; at < n; at += BLOB_PIECE) {
        MPI_Request r;
        MPI_Ibcast((unsigned char *)buf + at, (int)(n - at < BLOB_PIECE ? n - at : BLOB_PIECE), MPI_BYTE, 0, MPI_COMM_WORLD, &r);
        wait_request(&r);
    }
}

/* ----------------------------------------------------------------------------
 * Results: packed as an MpiChunk, then per neuron lse, lse_bound (doubles),
 * nonfinite (int32, padded to 8) and top_k + bottom_k tokens (id, logit,
 * prob: 12 bytes). Bytes, not an MPI datatype: every rank runs the same
 * binary on the same kind of machine, and memcpy keeps every bit. */

enum { TAG_RESULTS = 2, TAG_DONE = 3 };


static size_t record_size(int top_k, int bottom_k) { return 24 + 12 * (size_t)(top_k + bottom_k); }

static void put_token(unsigned char **p, const LensToken *t) {
    memcpy(*p, &t->id, 4), memcpy(*p + 4, &t->logit, 4), memcpy(*p + 8, &t->prob, 4);
    *p += 12;
}

static void get_token(const unsigned char **p, LensToken *t) {
    memcpy(&t->id, *p, 4), memcpy(&t->logit, *p + 4, 4), memcpy(&t->prob, *p + 8, 4);
    *p += 12;
}

void mpi_sender_init(MpiSender *s, int top_k, int bottom_k) {
    *s = (MpiSender){ .top_k = top_k, .bottom_k = bottom_k };
    MPI_Request *req = xmalloc(2 * sizeof *req);
    req[0] = req[1] = MPI_REQUEST_NULL;
    s->req = req;
}

void mpi_send_results(MpiSender *s, const MpiChunk *c, const LensResult *r) {
    MPI_Request *req = s->req;
    int b = s->next;
    s->next ^= 1;
    wait_request(&req[b]); /* the send from two chunks ago has left this buffer */
    size_t n = sizeof *c + (size_t)c->count * record_size(s->top_k, s->bottom_k);
    if (n > s->cap[b]) s->buf[b] = xrealloc(s->buf[b], s->cap[b] = n);
    unsigned char *p = s->buf[b];
    memcpy(p, c, sizeof *c);
    p += sizeof *c;
    for (int i = 0; i < c->count; i++) {
        int32_t bad = r[i].nonfinite, pad = 0;
        memcpy(p, &r[i].lse, 8), memcpy(p + 8, &r[i].lse_bound, 8), memcpy(p + 16, &bad, 4), memcpy(p + 20, &pad, 4);
        p += 24;
        for (int t = 0; t < s->top_k; t++) put_token(&p, &r[i].top[t]);
        for (int t = 0; t < s->bottom_k; t++) put_token(&p, &r[i].bottom[t]);
    }
    MPI_Isend(s->buf[b], (int)n, MPI_BYTE, 0, TAG_RESULTS, MPI_COMM_WORLD, &req[b]);
}

void mpi_sender_flush(MpiSender *s) {
    MPI_Request *req = s->req;
    wait_request(&req[0]), wait_request(&req[1]);
}

void mpi_send_done(MpiSender *s) {
    mpi_sender_flush(s);
    MPI_Request r;
    MPI_Isend(NULL, 0, MPI_BYTE, 0, TAG_DONE, MPI_COMM_WORLD, &r);
    wait_request(&r);
}

void mpi_sender_free(MpiSender *s) {
    free(s->buf[0]), free(s->buf[1]), free(s->req);
    *s = (MpiSender){ 0 };
}

int mpi_recv_results(int wait, int top_k, int bottom_k, MpiChunk *c, LensResult *r) {
    static unsigned char *buf;
    static size_t cap;
    MPI_Status st;
    int flag;
    while (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st), !flag) {
        if (!wait) return 0;
        nap();
    }
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if ((size_t)n > cap) buf = xrealloc(buf, cap = (size_t)n);
    MPI_Recv(buf, n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == TAG_DONE) return 2;
    const unsigned char *p = buf;
    memcpy(c, p, sizeof *c);
    p += sizeof *c;
    if ((size_t)n != sizeof *c + (size_t)c->count * record_size(top_k, bottom_k))
        die(NM_ERUNTIME, "map: rank %d sent a malformed result message (%d bytes)", st.MPI_SOURCE, n);
    for (int i = 0; i < c->count; i++) {
        int32_t bad;
        memcpy(&r[i].lse, p, 8), memcpy(&r[i].lse_bound, p + 8, 8), memcpy(&bad, p + 16, 4);
        r[i].nonfinite = bad;
        p += 24;
        for (int t = 0; t < top_k; t++) get_token(&p, &r[i].top[t]);
        for (int t = 0; t < bottom_k; t++) get_token(&p, &r[i].bottom[t]);
    }
    return 1;
}

#else /* built without Open MPI: a plain run is all there is */

void mpi_start(MpiWorld *w, const char *cmd) {
    *w = (MpiWorld){ .rank = 0, .size = 1 };
    if (mpi_launcher())
        die(NM_ERUNTIME, "%s: started by %s, but this neuromap was built without Open MPI (install libopenmpi-dev and "
            "rebuild; or use --shard I/N)", cmd, mpi_launcher());
}
void mpi_end(MpiWorld *w) { (void)w; }
void mpi_bcast_int(const MpiWorld *w, int *v) { (void)w, (void)v; }
int mpi_all_same(const MpiWorld *w, uint64_t v) { return (void)w, (void)v, 1; }
void mpi_send_bytes(int to, const void *buf, size_t n) { (void)to, (void)buf, (void)n; }
void mpi_recv_bytes(int from, void *buf, size_t n) { (void)from, (void)buf, (void)n; }
void mpi_send_blob(int to, const void *buf, size_t n) { (void)to, (void)buf, (void)n; }
unsigned char *mpi_recv_blob(int from, size_t *n) { return (void)from, *n = 0, xmalloc(1); }
void mpi_bcast_blob(const MpiWorld *w, void *buf, size_t n) { (void)w, (void)buf, (void)n; }
void mpi_sender_init(MpiSender *s, int top_k, int bottom_k) { *s = (MpiSender){ .top_k = top_k, .bottom_k = bottom_k }; }
void mpi_send_results(MpiSender *s, const MpiChunk *c, const LensResult *r) { (void)s, (void)c, (void)r; }
void mpi_send_done(MpiSender *s) { (void)s; }
void mpi_sender_flush(MpiSender *s) { (void)s; }
void mpi_sender_free(MpiSender *s) { (void)s; }
int mpi_recv_results(int wait, int top_k, int bottom_k, MpiChunk *c, LensResult *r) {
    return (void)wait, (void)top_k, (void)bottom_k, (void)c, (void)r, 2;
}

#endif
