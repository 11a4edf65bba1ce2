/*
 * The BLAS layer: the only code that includes cblas.h. Row-major; sizes are checked to fit
 * BLAS's int by the callers (nb__blas_fits).
 */
#ifndef NABLA_BLAS_H
#define NABLA_BLAS_H

#include <stdbool.h>
#include <stdint.h>

/** Whether every size fits the int that CBLAS takes. */
bool nb__blas_fits(int64_t a, int64_t b, int64_t c);

/**
 * C[m,n] = alpha·op(A)·op(B) + beta·C, op = transpose when ta / tb. A large product is cut
 * into blocks of C's columns (or rows, when it has more rows than columns) by its shape
 * alone, each a single-threaded sgemm on the pool (nb__parallel_for): the same calls, so the
 * same bits, at any thread count. One thread makes one call where a probe of the shape found
 * that it gives the blocks' bits (blas.c).
 */
void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/** One product's arguments, as nb__gemm takes them. */
typedef struct nb__gemm_args {
    bool ta, tb;
    int64_t m, n, k;
    float alpha;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float beta;
    float *c;
    int64_t ldc;
} nb__gemm_args;

/**
 * Two independent products (C of one neither read nor written by the other), as nb__gemm
 * each, run on the pool together. When they have about the same flops and two blocks each,
 * each runs as one sgemm where the probe found that its whole product has its blocks' bits,
 * so that each thread packs less; the bits are those of each product alone, whatever the
 * thread count. Either may be NULL, for one product alone.
 */
void nb__gemm_pair(const nb__gemm_args *x, const nb__gemm_args *y);
/** y = alpha·op(A)·x + beta·y for A[m,n] row-major. */
void nb__gemv(bool ta, int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
              const float *x, float beta, float *y);
/** A[m,n] += alpha·x ⊗ y. */
void nb__ger(int64_t m, int64_t n, float alpha, const float *x, const float *y, float *a,
             int64_t lda);
/** x · y */
float nb__dot(int64_t n, const float *x, const float *y);
/** y += alpha·x */
void nb__axpy(int64_t n, float alpha, const float *x, float *y);

/* ---- the thread pool (pool.c) --------------------------------------------------------- */

/** At most this many threads run one job (the caller and NB__POOL_MAX − 1 workers). */
#define NB__POOL_MAX 256

/** One task of a parallel loop: the i-th part of the work described by ctx. */
typedef void (*nb__task_fn)(void *ctx, int64_t i);

/**
 * fn(ctx, i) for every i in [0, n), on the pool's workers and the calling thread, returning
 * when all are done. The caller cuts the work into tasks from its size alone (from the
 * thread count only where every output comes out the same whatever the cut, as a column's
 * sum added row after row) and each task writes its own outputs, so the results are the same
 * with any number of threads. Runs every task on the caller when one thread is set, when n is 1, or
 * when the pool is running another job (another thread's, or this one's from inside a task).
 */
void nb__parallel_for(int64_t n, nb__task_fn fn, void *ctx);

/** One part of a loop cut into ranges: items [lo, hi) of the work described by ctx. */
typedef void (*nb__range_fn)(void *ctx, int64_t lo, int64_t hi);

/**
 * fn over [0, n) in ranges of per_task items (the last one shorter), as the tasks of one
 * nb__parallel_for; one call on the caller when a single range holds them all.
 */
void nb__parallel_ranges(int64_t n, int64_t per_task, nb__range_fn fn, void *ctx);

/*
 * Loops of NB__PARALLEL_MIN elements or more (elementwise ops and their gradients, reductions
 * by rows, softmax, sums, the engine's gradient sums) run on the pool in tasks of about
 * NB__TASK_ELEMS elements; smaller ones on their caller.
 */
#define NB__PARALLEL_MIN 131072
#define NB__TASK_ELEMS   32768

/** Make the pool fit threads threads (nb_set_num_threads): stops workers beyond it. */
void nb__pool_resize(int threads);

#endif /* NABLA_BLAS_H */
