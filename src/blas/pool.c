/*
 * The thread pool: nb_get_num_threads() − 1 workers and the calling thread run the tasks of
 * one nb__parallel_for at a time. Work is cut into tasks by the caller from the size of the
 * work alone, never from the number of threads, and each task writes its own part of the
 * output, so the result is the same bits whichever thread runs which task, and with any
 * number of threads (one thread runs every task itself, in order).
 *
 * A worker that finds no task spins for a while (the next task of a training step comes
 * within microseconds, and waking a sleeping thread costs tens of them) and then sleeps on a
 * condition variable until the next job. Spinning yields the processor at each turn: when
 * another program holds one of the cores, the caller and a worker can share the other, and a
 * waiter that does not yield burns the time slice the thread it waits for needs (measured
 * with one core taken: 2-thread epochs of nabla-train 1.06-1.09 s with pause loops,
 * 0.83-0.96 s yielding, 0.81-0.97 s at 1 thread). A job published while the pool is busy (another
 * thread's job, or a task that calls nb__parallel_for) runs on its caller alone.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "blas/blas.h"
#include "core/internal.h"

/* How long an idle worker, or a caller waiting for its job's last task, spins before it
 * sleeps. */
#define SPIN_NS 200000

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

typedef struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_t workers[NB__POOL_MAX - 1];
    int n_workers; /* started */
    bool stop;
    /* the job, under lock */
    nb__task_fn fn;
    void *ctx;
    int64_t n, next, remaining;
    unsigned sleepers;
    /* mirrors read while spinning, without the lock */
    atomic_ulong gen;
    atomic_llong left;
    atomic_bool busy; /* a job is running */
} pool;

static pool P = {.lock = PTHREAD_MUTEX_INITIALIZER,
                 .work = PTHREAD_COND_INITIALIZER,
                 .done = PTHREAD_COND_INITIALIZER};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

/* Run the job's tasks until none is left to claim; called and returns with the lock held. */
static void run_tasks(void)
{
    while (P.next < P.n) {
        int64_t i = P.next++;
        nb__task_fn fn = P.fn;
        void *ctx = P.ctx;
        pthread_mutex_unlock(&P.lock);
        fn(ctx, i);
        pthread_mutex_lock(&P.lock);
        if (--P.remaining == 0) {
            atomic_store(&P.left, 0);
            pthread_cond_broadcast(&P.done);
        }
    }
}

/* arg: the generation when the worker was started, under the lock, before the job that
 * started it was published, so that job is not missed. */
static void *worker(void *arg)
{
    unsigned long seen = (unsigned long)(uintptr_t)arg;
    pthread_mutex_lock(&P.lock);
    for (;;) {
        while (!P.stop && atomic_load(&P.gen) == seen) {
            pthread_mutex_unlock(&P.lock);
            double until = now_ns() + SPIN_NS;
            while (atomic_load(&P.gen) == seen && now_ns() < until) sched_yield();
            pthread_mutex_lock(&P.lock);
            if (!P.stop && atomic_load(&P.gen) == seen) {
                P.sleepers++;
                pthread_cond_wait(&P.work, &P.lock);
                P.sleepers--;
            }
        }
        if (P.stop) break;
        seen = atomic_load(&P.gen);
        run_tasks();
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

/* Stop and join every worker; the lock is not held. */
static void stop_workers(void)
{
    pthread_mutex_lock(&P.lock);
    P.stop = true;
    pthread_cond_broadcast(&P.work);
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < P.n_workers; i++) pthread_join(P.workers[i], NULL);
    P.n_workers = 0;
    P.stop = false;
}

/* Start workers up to want (the lock is held); stops at the first that fails to start, and
 * the pool runs with those it has. */
static void start_workers(int want)
{
    if (want > NB__POOL_MAX - 1) want = NB__POOL_MAX - 1;
    void *gen = (void *)(uintptr_t)atomic_load(&P.gen);
    while (P.n_workers < want && pthread_create(&P.workers[P.n_workers], NULL, worker, gen) == 0)
        P.n_workers++;
}

/* In a child after fork only the forking thread exists: forget the parent's workers. */
static void forget_workers(void)
{
    pthread_mutex_init(&P.lock, NULL);
    pthread_cond_init(&P.work, NULL);
    pthread_cond_init(&P.done, NULL);
    P.n_workers = 0;
    P.sleepers = 0;
    P.stop = false;
    atomic_store(&P.busy, false);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_workers);
}

__attribute__((destructor)) static void pool_fini(void)
{
    if (P.n_workers > 0 && !atomic_load(&P.busy)) stop_workers();
}

void nb__pool_resize(int threads)
{
    /* wait for a running job to end, then hold the pool while the workers change */
    bool expected = false;
    while (!atomic_compare_exchange_weak(&P.busy, &expected, true)) {
        expected = false;
        CPU_RELAX();
    }
    if (P.n_workers > threads - 1) stop_workers();
    atomic_store(&P.busy, false);
}

void nb__parallel_for(int64_t n, nb__task_fn fn, void *ctx)
{
    int workers = nb__num_threads() - 1;
    bool expected = false;
    if (n <= 1 || workers < 1 || !atomic_compare_exchange_strong(&P.busy, &expected, true)) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&P.lock);
    start_workers(workers);
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.next = 0;
    P.remaining = n;
    atomic_store(&P.left, n);
    atomic_fetch_add(&P.gen, 1);
    if (P.sleepers) pthread_cond_broadcast(&P.work);
    run_tasks();
    while (P.remaining > 0) { /* the workers' last tasks: spin, then sleep */
        pthread_mutex_unlock(&P.lock);
        double until = now_ns() + SPIN_NS;
        while (atomic_load(&P.left) > 0 && now_ns() < until) sched_yield();
        pthread_mutex_lock(&P.lock);
        if (P.remaining > 0) pthread_cond_wait(&P.done, &P.lock);
    }
    pthread_mutex_unlock(&P.lock);
    atomic_store(&P.busy, false);
}
