/*
 * The thread pool: nb_get_num_threads() − 1 workers and the calling thread run the tasks of
 * one nb__parallel_for at a time. Work is cut into tasks by the caller from the size of the
 * work alone (from the number of threads only where no output depends on the cut), and each
 * task writes its own part of the output, so the result is the same bits whichever thread
 * runs which task, and with any number of threads (one thread runs every task itself, in
 * order).
 *
 * A worker that finds no task spins for a while (the next task of a training step comes
 * within microseconds, and waking a sleeping thread costs tens of them) and then sleeps on a
 * condition variable until the next job. Spinning yields the processor at each turn: when
 * another program holds one of the cores, the caller and a worker can share the other, and a
 * waiter that does not yield burns the time slice the thread it waits for needs (measured
 * with one core taken: 2-thread epochs of nabla-train 1.06-1.09 s with pause loops,
 * 0.83-0.96 s yielding, 0.81-0.97 s at 1 thread). A job published while the pool is busy (another
 * thread's job, or a task that calls nb__parallel_for) runs on its caller alone.
 *
 * Each thread first takes the tasks of its own contiguous share of the job (thread w of T the
 * w-th T-th), then, its share done, tasks from the end of the share with the most left. So
 * the thread that wrote a part of a tensor in one job is the one that reads it in the next,
 * from its own cache, and a thread that is late or descheduled has its tasks done by the
 * others. Claims are compare-and-swaps, and a spinning worker sees a job without the lock.
 * With one counter under the lock, claimed in turn, a worker often met the lock held and slept
 * until the caller had run every task, and tasks moved between cores from one job to the
 * next: a 131 072-element op's forward and backward at 2 threads took 1.8-2.1 times as long
 * as at 1, against 0.5-1.0 times with the shares.
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
    int n_workers;                         /* started */
    unsigned long start_gen[NB__POOL_MAX]; /* worker w's generation when it started */
    unsigned sleepers;                     /* workers waiting on work, under lock */
    /* the job: fn and ctx are written while no job runs, before its shares */
    nb__task_fn fn;
    void *ctx;
    /* Thread w's share of the tasks (0: the caller) is [lo, hi), packed as hi << 32 | lo in
     * share[w], for w < shares. A thread claims the next task of its share, then the last of
     * the share with the most left, each by a compare-and-swap. */
    atomic_int shares;
    atomic_ullong share[NB__POOL_MAX];
    atomic_ulong gen;  /* the number of jobs published */
    atomic_llong left; /* the job's tasks not yet done */
    atomic_bool stop;
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

/* Take a task of share v: its first (or its last, from_end) when it has one. */
static bool take(int v, bool from_end, int64_t *task)
{
    unsigned long long s = atomic_load(&P.share[v]);
    for (;;) {
        uint32_t lo = (uint32_t)s, hi = (uint32_t)(s >> 32);
        if (lo >= hi) return false;
        unsigned long long next = from_end ? ((unsigned long long)(hi - 1) << 32 | lo) : s + 1;
        if (atomic_compare_exchange_weak(&P.share[v], &s, next)) {
            *task = from_end ? hi - 1 : lo;
            return true;
        }
    }
}

/* Claim a task for thread w: the next of its own share, else the last of the share with the
 * most left; false when none is left. */
static bool claim(int w, int64_t *task)
{
    int shares = atomic_load(&P.shares);
    if (w < shares && take(w, false, task)) return true;
    for (;;) {
        int from = -1;
        uint32_t most = 0;
        for (int v = 0; v < shares; v++) {
            unsigned long long s = atomic_load(&P.share[v]);
            uint32_t lo = (uint32_t)s, hi = (uint32_t)(s >> 32);
            if (hi > lo && hi - lo > most) {
                most = hi - lo;
                from = v;
            }
        }
        if (from < 0) return false;
        if (take(from, true, task)) return true;
    }
}

/* Run tasks as thread w until none is left to claim; the last one done wakes the caller. */
static void run_tasks(int w)
{
    int64_t i;
    while (claim(w, &i)) {
        P.fn(P.ctx, i);
        if (atomic_fetch_sub(&P.left, 1) == 1) {
            pthread_mutex_lock(&P.lock);
            pthread_cond_broadcast(&P.done);
            pthread_mutex_unlock(&P.lock);
        }
    }
}

/* Whether no job has been published since generation seen, and no stop asked (read without
 * the lock). */
static bool idle(unsigned long seen)
{
    return atomic_load(&P.gen) == seen && !atomic_load(&P.stop);
}

/*
 * arg: the worker's thread number w (1, 2, ...). P.start_gen[w] is the generation when it was
 * started, under the lock, before the job that started it was published, so that job is not
 * missed. A worker sees a new job by reading P.gen alone: had it to take the lock, it would
 * often find the caller holding it, sleep in the kernel, and wake when the caller had done
 * every task itself.
 */
static void *worker(void *arg)
{
    int w = (int)(uintptr_t)arg;
    pthread_mutex_lock(&P.lock);
    unsigned long seen = P.start_gen[w];
    pthread_mutex_unlock(&P.lock);
    for (;;) {
        double until = now_ns() + SPIN_NS;
        while (idle(seen) && now_ns() < until) sched_yield();
        if (idle(seen)) {
            pthread_mutex_lock(&P.lock);
            while (idle(seen)) {
                P.sleepers++;
                pthread_cond_wait(&P.work, &P.lock);
                P.sleepers--;
            }
            pthread_mutex_unlock(&P.lock);
        }
        if (atomic_load(&P.stop)) break;
        seen = atomic_load(&P.gen);
        run_tasks(w);
    }
    return NULL;
}

/* Stop and join every worker; the lock is not held. */
static void stop_workers(void)
{
    pthread_mutex_lock(&P.lock);
    atomic_store(&P.stop, true);
    pthread_cond_broadcast(&P.work);
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < P.n_workers; i++) pthread_join(P.workers[i], NULL);
    P.n_workers = 0;
    atomic_store(&P.stop, false);
}

/* Start workers up to want (the lock is held); stops at the first that fails to start, and
 * the pool runs with those it has. */
static void start_workers(int want)
{
    if (want > NB__POOL_MAX - 1) want = NB__POOL_MAX - 1;
    while (P.n_workers < want) {
        int w = P.n_workers + 1;
        P.start_gen[w] = atomic_load(&P.gen);
        if (pthread_create(&P.workers[P.n_workers], NULL, worker, (void *)(uintptr_t)w) != 0) break;
        P.n_workers++;
    }
}

/* In a child after fork only the forking thread exists: forget the parent's workers. */
static void forget_workers(void)
{
    pthread_mutex_init(&P.lock, NULL);
    pthread_cond_init(&P.work, NULL);
    pthread_cond_init(&P.done, NULL);
    P.n_workers = 0;
    P.sleepers = 0;
    atomic_store(&P.stop, false);
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
    if (n > UINT32_MAX) { /* more tasks than a share can count: none has so many */
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        atomic_store(&P.busy, false);
        return;
    }
    pthread_mutex_lock(&P.lock);
    start_workers(workers);
    P.fn = fn;
    P.ctx = ctx;
    atomic_store(&P.left, n);
    /* each thread its contiguous share, so that a thread takes the same part of the next job
     * over the same data, which is then in its cache */
    int64_t threads = P.n_workers + 1, shares = threads < n ? threads : n;
    for (int64_t w = 0; w < shares; w++) {
        unsigned long long lo = (unsigned long long)(n * w / shares);
        unsigned long long hi = (unsigned long long)(n * (w + 1) / shares);
        atomic_store(&P.share[w], hi << 32 | lo);
    }
    atomic_store(&P.shares, (int)shares);
    atomic_fetch_add(&P.gen, 1);
    if (P.sleepers) pthread_cond_broadcast(&P.work);
    pthread_mutex_unlock(&P.lock);
    run_tasks(0);
    /* the workers' last tasks: spin, then sleep */
    double until = now_ns() + SPIN_NS;
    while (atomic_load(&P.left) > 0 && now_ns() < until) sched_yield();
    pthread_mutex_lock(&P.lock);
    while (atomic_load(&P.left) > 0) pthread_cond_wait(&P.done, &P.lock);
    pthread_mutex_unlock(&P.lock);
    atomic_store(&P.busy, false);
}

typedef struct ranges {
    nb__range_fn fn;
    void *ctx;
    int64_t n, per_task;
} ranges;

static void range_task(void *ctx, int64_t t)
{
    const ranges *r = ctx;
    int64_t lo = t * r->per_task, left = r->n - lo;
    r->fn(r->ctx, lo, lo + (left < r->per_task ? left : r->per_task));
}

void nb__parallel_ranges(int64_t n, int64_t per_task, nb__range_fn fn, void *ctx)
{
    if (n <= per_task) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    ranges r = {fn, ctx, n, per_task};
    nb__parallel_for((n + per_task - 1) / per_task, range_task, &r);
}
