/* Thin wrappers over CBLAS, row-major. */
#include <limits.h>

#include <cblas.h>

#include "blas/blas.h"

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
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)m, (int)n, (int)k, alpha, a, ld(lda), b,
                ld(ldb), beta, c, ld(ldc));
}

void nb__gemv(bool ta, int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
              const float *x, float beta, float *y)
{
    int64_t ylen = ta ? n : m;
    if (ylen == 0) return;
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
    cblas_sger(CblasRowMajor, (int)m, (int)n, alpha, x, 1, y, 1, a, ld(lda));
}

float nb__dot(int64_t n, const float *x, const float *y)
{
    return n > 0 ? cblas_sdot((int)n, x, 1, y, 1) : 0.0f;
}

void nb__axpy(int64_t n, float alpha, const float *x, float *y)
{
    if (n > 0) cblas_saxpy((int)n, alpha, x, 1, y, 1);
}
