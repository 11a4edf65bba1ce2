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

/** C[m,n] = alpha·op(A)·op(B) + beta·C, op = transpose when ta / tb. */
void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
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

#endif /* NABLA_BLAS_H */
