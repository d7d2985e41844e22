/* pool.c — persistent worker threads that share out the tasks of one loop
 * at a time (see pool.h). The only place neuromap starts threads. */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct Pool {
    int n_threads;       /* workers, the caller (worker 0) included */
    pthread_t *threads;  /* [1..n_threads) */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new loop, or quit */
    pthread_cond_t idle; /* the last helper of a loop is done */
    uint64_t generation; /* bumped for every loop */
    int helpers;         /* workers 1..helpers take part in the current loop */
    int running;         /* helpers still inside it */
    int quit;
    /* the current loop */
    PoolTask fn;
    void *arg;
    int64_t n_tasks;
    atomic_llong next;   /* the next task to hand out */
};

typedef struct {
    Pool *pool;
    int id;
} Worker;

/* Takes tasks until none are left. */
static void drain(Pool *p, int worker) {
    for (int64_t t; (t = atomic_fetch_add(&p->next, 1)) < p->n_tasks;) p->fn(p->arg, t, worker);
}

static void *worker_main(void *arg) {
    Worker w = *(Worker *)arg;
    Pool *p = w.pool;
    free(arg);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        /* A loop of fewer tasks than threads wakes everyone but needs only
         * some; the rest go back to sleep without touching `running`. */
        if (w.id > p->helpers) continue;
        pthread_mutex_unlock(&p->mu);
        drain(p, w.id);
        pthread_mutex_lock(&p->mu);
        if (--p->running == 0) pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_new(int n_threads, Pool **out, Error *e) {
    Pool *p = xcalloc(1, sizeof *p);
    p->n_threads = n_threads > 0 ? n_threads : cpu_count();
    p->threads = xcalloc((size_t)p->n_threads, sizeof *p->threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->next, 0);
    for (int i = 1; i < p->n_threads; i++) {
        Worker *w = xmalloc(sizeof *w);
        *w = (Worker){ p, i };
        if (pthread_create(&p->threads[i], NULL, worker_main, w)) {
            free(w);
            int want = p->n_threads;
            p->n_threads = i; /* the ones started are joined by pool_free */
            pool_free(p);
            *out = NULL;
            return error_set(e, NM_ERUNTIME, "cannot start thread %d of %d", i + 1, want);
        }
    }
    *out = p;
    return NM_OK;
}

void pool_free(Pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
    free(p);
}

int pool_threads(const Pool *p) { return p->n_threads; }

void pool_run(Pool *p, int64_t n_tasks, PoolTask fn, void *arg) { pool_run_beside(p, n_tasks, fn, arg, NULL, NULL); }

void pool_run_beside(Pool *p, int64_t n_tasks, PoolTask fn, void *arg, void (*side)(void *), void *side_arg) {
    /* Helpers: enough for the tasks the caller will not start at once (all
     * of them while it does the side work), at most every other thread. */
    int64_t want = side ? n_tasks : n_tasks - 1;
    int helpers = (int)(want < p->n_threads - 1 ? want : p->n_threads - 1);
    if (helpers <= 0) {
        if (side) side(side_arg);
        for (int64_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->helpers = helpers;
    p->running = helpers;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (side) side(side_arg);
    drain(p, 0);
    /* Every task has been taken; wait for the helpers to finish theirs. */
    pthread_mutex_lock(&p->mu);
    while (p->running) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
