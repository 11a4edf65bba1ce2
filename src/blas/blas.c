/*
 * Thin wrappers over CBLAS, row-major. OpenBLAS runs single-threaded inside nabla's own
 * pool: its threaded sgemm does not give the single-threaded bits (here, products with
 * k = 784 differ between 1 and 2 threads: it blocks k differently), and its threads would
 * compete with the pool's.
 *
 * With n threads, a large product is cut into up to n blocks of C's columns (rows, when it
 * is taller than wide), one per thread, each a single-threaded sgemm on the pool. One
 * thread runs the product as one call. Each block costs 2-3.5% at one thread (it packs the
 * other operand again), which is why blocks are few and large rather than many and fixed;
 * the result does not depend on the cut, because a block of C comes out with the bits of
 * the whole product: OpenBLAS computes each element of C by the same sequence of
 * operations whatever range of C it is asked for (its k-blocking depends on k alone). That
 * is an observed property of the BLAS, not a guarantee, so test_parallel checks it on the
 * products training makes (and on cuts by rows, and block edges off the vector width), at
 * 1, 2 and 3 threads, and on a training run at 1 and 2.
 */
#include <limits.h>
#include <pthread.h>

#include <cblas.h>

#include "blas/blas.h"
#include "core/internal.h"

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
 * How a product is cut: blocks of at least MIN_BLOCK columns (or rows) and MIN_FLOPS (so
 * that no block falls to OpenBLAS's small-matrix kernels, which the whole product does not
 * use), boundaries on multiples of 16 (whole vector tiles).
 */
#define MIN_BLOCK 128
#define MIN_FLOPS 4e6

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
    int64_t len = j.by_cols ? n : m, threads = nb__num_threads();
    double flops = 2.0 * (double)m * (double)n * (double)k;
    while (j.parts < threads && len / (j.parts + 1) >= MIN_BLOCK &&
           flops / (double)(j.parts + 1) >= MIN_FLOPS)
        j.parts++;
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
