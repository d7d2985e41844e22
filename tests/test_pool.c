/* test_pool.c — base/pool.c: every task runs exactly once, on a worker in
 * range, for any mix of task and thread counts; the pool survives many
 * loops in a row (the decoder calls it hundreds of times a token); a
 * sum split into fixed tasks is the same bits on 1 and on 7 threads; and
 * pool_run_beside's side work runs once, on the caller, beside the tasks. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <string.h>

#include "base/pool.h"
#include "check.h"

typedef struct {
    int64_t n;
    int threads;
    atomic_int *runs;  /* per task: how many times it ran */
    atomic_int bad_worker;
    atomic_int *seen;  /* per worker: tasks it ran */
} Count;

static Count count_new(int64_t n, int threads) {
    Count c = { .n = n, .threads = threads };
    c.runs = xcalloc((size_t)n + 1, sizeof *c.runs);
    c.seen = xcalloc((size_t)threads, sizeof *c.seen);
    atomic_init(&c.bad_worker, 0);
    return c;
}

static void count_task(void *arg, int64_t task, int worker) {
    Count *c = arg;
    if (task < 0 || task >= c->n) return;
    atomic_fetch_add(&c->runs[task], 1);
    if (worker < 0 || worker >= c->threads) atomic_fetch_add(&c->bad_worker, 1);
    else atomic_fetch_add(&c->seen[worker], 1);
}

/* A deterministic sum: each task sums its own fixed slice in float (the
 * order within a slice is fixed), the slices are added in task order after. */
typedef struct {
    const float *x;
    int64_t n, per;
    float *part;
} Sum;

static void sum_task(void *arg, int64_t task, int worker) {
    Sum *s = arg;
    float acc = 0;
    for (int64_t i = task * s->per; i < (task + 1) * s->per && i < s->n; i++) acc += s->x[i];
    s->part[task] = acc;
}

static float split_sum(Pool *p, const float *x, int64_t n, int64_t per) {
    Sum s = { x, n, per, xcalloc((size_t)((n + per - 1) / per), sizeof(float)) };
    int64_t tasks = (n + per - 1) / per;
    pool_run(p, tasks, sum_task, &s);
    float total = 0;
    for (int64_t t = 0; t < tasks; t++) total += s.part[t];
    free(s.part);
    return total;
}

/* pool_run_beside's side work: on the calling thread, once, and (with a
 * helper to spare) while the tasks run: it waits, up to 5 s, for a task to
 * finish, which only a helper can do meanwhile. */
typedef struct {
    Count *c;
    pthread_t caller;
    int calls, on_caller, saw_task;
} Side;

/* Tasks of the side-work loop wait (up to 1 s, once per loop) for the side
 * work to have started: a pool that ran the side work only after the tasks
 * would time out here. */
static atomic_int side_started, side_late;

static void beside_task(void *arg, int64_t task, int worker) {
    for (int i = 0; i < 1000 && !atomic_load(&side_started) && !atomic_load(&side_late); i++)
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    if (!atomic_load(&side_started)) atomic_store(&side_late, 1);
    count_task(arg, task, worker);
}

static void side_work(void *arg) {
    Side *s = arg;
    atomic_store(&side_started, 1);
    s->calls++;
    s->on_caller += pthread_equal(pthread_self(), s->caller) != 0;
    int64_t total = 0;
    for (int i = 0; i < 5000 && total == 0; i++) {
        for (int64_t t = 0; t < s->c->n; t++) total += atomic_load(&s->c->runs[t]);
        if (total == 0) nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
        if (s->c->threads == 1 || s->c->n == 0) break; /* nobody else to run them: the tasks come after */
    }
    s->saw_task = total > 0;
}

static void test_beside(void) {
    static const int threads[] = { 1, 2, 3, 8 };
    static const int64_t tasks[] = { 0, 1, 2, 5, 1000 };
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        Pool *p;
        Error e = { 0 };
        pool_new(threads[a], &p, &e);
        for (size_t b = 0; b < sizeof tasks / sizeof *tasks; b++) {
            int64_t n = tasks[b];
            Count c = count_new(n, threads[a]);
            int wrong = 0, sides = 0, on_caller = 0, overlapped = 0, late = 0;
            for (int rep = 0; rep < 20; rep++) {
                for (int64_t t = 0; t < n; t++) atomic_store(&c.runs[t], 0);
                Side s = { .c = &c, .caller = pthread_self() };
                atomic_store(&side_started, 0);
                pool_run_beside(p, n, beside_task, &c, side_work, &s);
                late += atomic_load(&side_late);
                atomic_store(&side_late, 0);
                for (int64_t t = 0; t < n; t++) wrong += atomic_load(&c.runs[t]) != 1;
                sides += s.calls, on_caller += s.on_caller, overlapped += s.saw_task;
            }
            CHECK(wrong == 0, "beside, %d threads, %lld tasks: %d task runs were not exactly once", threads[a], (long long)n, wrong);
            CHECK(sides == 20 && on_caller == 20, "beside, %d threads, %lld tasks: side work ran %d times, %d on the caller, want 20",
                  threads[a], (long long)n, sides, on_caller);
            CHECK(late == 0, "beside, %d threads, %lld tasks: tasks ran before the side work had started, %d times of 20",
                  threads[a], (long long)n, late);
            int want = threads[a] > 1 && n > 0 ? 20 : 0; /* one thread: the tasks run after the side work */
            CHECK(overlapped == want, "beside, %d threads, %lld tasks: tasks ran during the side work %d times of 20, want %d",
                  threads[a], (long long)n, overlapped, want);
            free(c.runs);
            free(c.seen);
        }
        pool_free(p);
    }
}

int main(void) {
    test_beside();
    static const int threads[] = { 1, 2, 3, 8 };
    static const int64_t tasks[] = { 0, 1, 2, 5, 8, 9, 1000 };
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        Pool *p;
        Error e = { 0 };
        CHECK(pool_new(threads[a], &p, &e) == 0, "pool_new(%d): %s", threads[a], e.msg);
        CHECK(pool_threads(p) == threads[a], "pool_threads %d, want %d", pool_threads(p), threads[a]);
        for (size_t b = 0; b < sizeof tasks / sizeof *tasks; b++) {
            int64_t n = tasks[b];
            Count c = count_new(n, threads[a]);
            /* the same pool, many loops in a row */
            int wrong = 0;
            for (int rep = 0; rep < 200; rep++) {
                for (int64_t t = 0; t < n; t++) atomic_store(&c.runs[t], 0);
                pool_run(p, n, count_task, &c);
                for (int64_t t = 0; t < n; t++) wrong += atomic_load(&c.runs[t]) != 1;
            }
            CHECK(wrong == 0, "%d threads, %lld tasks: %d task runs were not exactly once", threads[a], (long long)n, wrong);
            CHECK(atomic_load(&c.bad_worker) == 0, "%d threads, %lld tasks: a worker id out of range", threads[a], (long long)n);
            /* never more workers than tasks */
            int used = 0;
            for (int w = 0; w < threads[a]; w++) used += atomic_load(&c.seen[w]) > 0;
            CHECK(used <= (n < threads[a] ? n : threads[a]), "%d threads, %lld tasks: %d workers took part", threads[a],
                  (long long)n, used);
            free(c.runs);
            free(c.seen);
        }
        pool_free(p);
    }

    /* 0 threads: one per CPU */
    Pool *p;
    Error e = { 0 };
    CHECK(pool_new(0, &p, &e) == 0 && pool_threads(p) == cpu_count(), "pool_new(0) should start cpu_count() workers");
    pool_free(p);
    pool_free(NULL);

    /* The same bits on 1 and 7 threads, and equal to the serial sum of the
     * same slices computed here without the pool. */
    enum { N = 100003, PER = 1000 };
    float *x = xmalloc(N * sizeof *x);
    uint32_t r = 12345;
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / (float)(1 << 24) - 0.5f;
    }
    float want = 0;
    for (int t = 0; t * PER < N; t++) {
        float acc = 0;
        for (int i = t * PER; i < (t + 1) * PER && i < N; i++) acc += x[i];
        want += acc;
    }
    Pool *p1, *p7;
    pool_new(1, &p1, &e);
    pool_new(7, &p7, &e);
    float s1 = split_sum(p1, x, N, PER), s7 = split_sum(p7, x, N, PER);
    CHECK(memcmp(&s1, &want, sizeof s1) == 0 && memcmp(&s7, &want, sizeof s7) == 0,
          "split sums differ: 1 thread %.9g, 7 threads %.9g, serial %.9g", s1, s7, want);
    pool_free(p1);
    pool_free(p7);
    free(x);
    return check_summary("test_pool");
}
