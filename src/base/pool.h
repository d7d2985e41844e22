/* pool.h — one thread pool for every parallel loop in neuromap.
 *
 * A Pool is a fixed set of persistent worker threads that run one loop at a
 * time: pool_run(p, n, fn, arg) calls fn(arg, task, worker) once for every
 * task 0..n-1, the tasks being handed out one by one (an atomic counter) to
 * whichever worker is free, the calling thread being worker 0. It returns
 * when every task is done. Starting threads costs tens of microseconds
 * each; decoding a token calls the pool hundreds of times, so they are
 * started once, in pool_new, and sleep on a condition variable in between.
 *
 * Determinism is the caller's to keep, and easy: which worker runs a task
 * varies from run to run, so a task's result must depend on the task number
 * alone (fixed chunks of rows, fixed blocks of neurons), never on the worker
 * or the thread count; `worker` is only for picking scratch buffers. Then
 * every thread count gives the same bits (test_forward and test_lens check).
 *
 * One pool per user, not one per process: the forward pass (Forward) and the
 * lens (Lens) each own one, sized by their own --threads, so a library call
 * never meets another's loop half done and the tests can run 1 and 4
 * threads side by side. Idle workers cost nothing but a sleeping thread.
 * A pool is used by one thread at a time (its owner); pool_run is not
 * reentrant (a task must not call pool_run on its own pool).
 */
#ifndef NEUROMAP_POOL_H
#define NEUROMAP_POOL_H

#include <stdint.h>

#include "base/util.h"

typedef struct Pool Pool;

/* One task: `worker` (0..pool_threads-1) names the thread running it, for
 * per-thread scratch; the result must not depend on it. */
typedef void (*PoolTask)(void *arg, int64_t task, int worker);

/* Starts n_threads - 1 workers (the caller is the n-th); n_threads <= 0
 * means one per online CPU. Runtime error (exit 1) if a thread cannot start. */
int pool_new(int n_threads, Pool **out, Error *e);
/* Stops and joins the workers; NULL is fine. */
void pool_free(Pool *p);
/* Workers, the caller included (the most tasks that can run at once). */
int pool_threads(const Pool *p);
/* fn(arg, task, worker) for task = 0..n_tasks-1, on at most
 * min(n_tasks, pool_threads(p)) threads; returns when all are done. With one
 * task or one thread the caller runs them all itself, waking nobody. */
void pool_run(Pool *p, int64_t n_tasks, PoolTask fn, void *arg);
/* pool_run, and beside it side(side_arg) once, on the calling thread (so it
 * may do what only the owner's thread may: write the output, talk MPI)
 * while the other workers start on the tasks; the caller joins them when
 * side returns. A loop's serial work (a map writing one chunk's results)
 * so overlaps the next loop's. side NULL: pool_run. */
void pool_run_beside(Pool *p, int64_t n_tasks, PoolTask fn, void *arg, void (*side)(void *), void *side_arg);

#endif
