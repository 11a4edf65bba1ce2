/*
 * Thin wrappers over CBLAS, row-major. OpenBLAS runs single-threaded inside nabla's own
 * pool: its threaded sgemm does not give the single-threaded bits (here, products with
 * k = 784 differ between 1 and 2 threads: it blocks k differently), and its threads would
 * compete with the pool's.
 *
 * A large product is cut into blocks of C's columns (rows, when it is taller than wide) by
 * its shape alone, never by the thread count, each block a single-threaded sgemm run by the
 * pool; one thread runs the same blocks in turn. That the bits of a block of C equal those
 * of the same part of the whole product is not something to rely on: it holds for
 * OpenBLAS's AVX-512 kernels here, but not for its Haswell and Zen (AVX2) kernels
 * (OPENBLAS_CORETYPE=Haswell, or valgrind's CPU, makes a 96 × 130 × 520 product differ
 * cut in two), so a cut that followed the thread count would change the weights with it.
 * Each block packs the other operand again, 2-4% of a product's time at one thread: the
 * price of bits that do not depend on the thread count, kept low by cutting few blocks.
 */
#include <limits.h>
#include <pthread.h>

#include <cblas.h>

#include "blas/blas.h"

#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int num_threads); /* not every cblas.h declares it */
#endif

bool nb__blas_fits(int64_t a, int64_t b, int64_t c)
{
    return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX;
}

static CBLAS_TRANSPOSE tr(bool t)
{
    return t ? CblasTrans : CblasNoTrans;
}

/* Leading dimensions must be at least 1 even for empty matrices. */
static int ld(int64_t x)
{
    return x > 0 ? (int)x : 1;
}

/*
 * How a product is cut: 2 blocks from 8 MFLOP, 4 from 4 GFLOP, 8 from 32 GFLOP, 16 from
 * 256 GFLOP (each block then at least 4 MFLOP, above OpenBLAS's small-matrix kernels), every
 * block at least MIN_BLOCK columns (or rows) wide, boundaries on multiples of 16 (whole
 * vector tiles). Few, large blocks: each one packs the other operand again, so a thread
 * gains most from one block of its own (W2 at n = 1024, 2 threads: 1.000 of OpenBLAS's own
 * threads with 2 blocks, 0.930 with 4, 0.873 with 8).
 */
#define MIN_BLOCK 128
static const double cut_flops[] = {8e6, 4e9, 32e9, 256e9}; /* for 2, 4, 8, 16 blocks */

typedef struct gemm_job {
    bool ta, tb, by_cols;
    int64_t m, n, k, lda, ldb, ldc, parts;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_job;

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_init(void)
{
#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(1);
#endif
}

static void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)m, (int)n, (int)k, alpha, a, ld(lda), b,
                ld(ldb), beta, c, ld(ldc));
}

/* Where block i of parts starts along a dimension of len. */
static int64_t block_start(int64_t len, int64_t parts, int64_t i)
{
    return i == parts ? len : len * i / parts / 16 * 16;
}

static void gemm_block(void *ctx, int64_t i)
{
    const gemm_job *j = ctx;
    int64_t len = j->by_cols ? j->n : j->m;
    int64_t lo = block_start(len, j->parts, i), w = block_start(len, j->parts, i + 1) - lo;
    if (j->by_cols) /* C[:, lo:lo+w] = op(A)·op(B)[:, lo:lo+w] */
        sgemm(j->ta, j->tb, j->m, w, j->k, j->alpha, j->a, j->lda,
              j->tb ? j->b + lo * j->ldb : j->b + lo, j->ldb, j->beta, j->c + lo, j->ldc);
    else /* C[lo:lo+w, :] = op(A)[lo:lo+w, :]·op(B) */
        sgemm(j->ta, j->tb, w, j->n, j->k, j->alpha, j->ta ? j->a + lo : j->a + lo * j->lda, j->lda,
              j->b, j->ldb, j->beta, j->c + lo * j->ldc, j->ldc);
}

void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    if (k == 0) { /* BLAS may skip the beta scaling when k is 0 */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    pthread_once(&blas_once, blas_init);
    gemm_job j = {ta, tb, n >= m, m, n, k, lda, ldb, ldc, 1, alpha, beta, a, b, c};
    int64_t len = j.by_cols ? n : m;
    double flops = 2.0 * (double)m * (double)n * (double)k;
    for (size_t i = 0; i < sizeof cut_flops / sizeof cut_flops[0]; i++)
        if (flops >= cut_flops[i] && len / (2 * j.parts) >= MIN_BLOCK) j.parts *= 2;
    if (j.parts == 1)
        sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        nb__parallel_for(j.parts, gemm_block, &j);
}

void nb__gemv(bool ta, int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
              const float *x, float beta, float *y)
{
    int64_t ylen = ta ? n : m;
    if (ylen == 0) return;
    pthread_once(&blas_once, blas_init);
    if ((ta ? m : n) == 0) {
        for (int64_t i = 0; i < ylen; i++) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
        return;
    }
    cblas_sgemv(CblasRowMajor, tr(ta), (int)m, (int)n, alpha, a, ld(lda), x, 1, beta, y, 1);
}

void nb__ger(int64_t m, int64_t n, float alpha, const float *x, const float *y, float *a,
             int64_t lda)
{
    if (m == 0 || n == 0) return;
    pthread_once(&blas_once, blas_init);
    cblas_sger(CblasRowMajor, (int)m, (int)n, alpha, x, 1, y, 1, a, ld(lda));
}

float nb__dot(int64_t n, const float *x, const float *y)
{
    if (n <= 0) return 0.0f;
    pthread_once(&blas_once, blas_init);
    return cblas_sdot((int)n, x, 1, y, 1);
}

void nb__axpy(int64_t n, float alpha, const float *x, float *y)
{
    if (n <= 0) return;
    pthread_once(&blas_once, blas_init);
    cblas_saxpy((int)n, alpha, x, 1, y, 1);
}
