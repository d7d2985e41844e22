/* mpi.h — neuromap under mpirun or srun: the ranks of one job split a map,
 * and rank 0 gathers the results and writes the atlas (docs/DISTRIBUTED.md).
 *
 * MPI lives here, in the command-line layer, and nowhere else: the library
 * (and any binding over it) never depends on it. A run is an MPI run only
 * when a launcher started it (its environment says so); a plain run never
 * calls MPI_Init, so it needs no daemon, no network and no mpirun. Built
 * without Open MPI (no NEUROMAP_MPI), a launched run stops with a message.
 */
#ifndef NEUROMAP_CLI_MPI_H
#define NEUROMAP_CLI_MPI_H

#include "neuromap.h"

typedef struct {
    int rank, size; /* 0 and 1 outside a launcher */
    int started;    /* MPI_Init was called (MPI_Finalize is due) */
} MpiWorld;

/* The launcher that started this process, by its environment ("Open MPI",
 * "PMIx", "PMI", "Slurm"), or NULL for a plain run. */
const char *mpi_launcher(void);

/* Joins the launcher's job (MPI_Init) when there is one; else rank 0 of 1,
 * without touching MPI. Exits 1 with a message (which names cmd) when
 * launched but built without MPI. */
void mpi_start(MpiWorld *w, const char *cmd);
void mpi_end(MpiWorld *w); /* MPI_Finalize when started */

/* Collectives over every rank (no-ops for a world of 1). */
void mpi_bcast_int(const MpiWorld *w, int *v);           /* rank 0's value to all */
int mpi_all_same(const MpiWorld *w, uint64_t v);          /* 1 when every rank passed the same v */
void mpi_send_bytes(int to, const void *buf, size_t n);   /* point to point, blocking */
void mpi_recv_bytes(int from, void *buf, size_t n);
/* Any number of bytes, in pieces MPI's int counts can hold, waiting by naps
 * (not spinning, which would take a core from the threads beside it). */
void mpi_send_blob(int to, const void *buf, size_t n);
unsigned char *mpi_recv_blob(int from, size_t *n); /* malloc'd */
void mpi_bcast_blob(const MpiWorld *w, void *buf, size_t n); /* rank 0's n bytes to all */

/* ----------------------------------------------------------------------------
 * Results to rank 0: a chunk's LensResults, packed, sent without waiting
 * (two buffers: the next chunk is decoded while the last one travels). */

typedef struct {
    int matrix, layer, first, count;
} MpiChunk;

typedef struct {
    int top_k, bottom_k;
    unsigned char *buf[2];
    size_t cap[2];
    void *req;      /* two MPI_Requests */
    int next;       /* the buffer to fill next */
} MpiSender;

void mpi_sender_init(MpiSender *s, int top_k, int bottom_k);
void mpi_send_results(MpiSender *s, const MpiChunk *c, const LensResult *r);
void mpi_send_done(MpiSender *s); /* the last message: this rank has nothing more; waits for every send */
void mpi_sender_flush(MpiSender *s); /* waits until every send has left */
void mpi_sender_free(MpiSender *s);

/* On rank 0: the next message from any rank, into *c and r[0..c->count)
 * (room for MAP chunk results with top_k / bottom_k lists). wait 0: returns
 * 0 at once when none has arrived. Returns 1 for a chunk, 2 for a rank's
 * "done". */
int mpi_recv_results(int wait, int top_k, int bottom_k, MpiChunk *c, LensResult *r);

#endif
