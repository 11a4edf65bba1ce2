/*
 * Thin wrappers over CBLAS, row-major (small matrix-vector and outer products are loops of
 * their own, below). OpenBLAS runs single-threaded inside nabla's own pool: its threaded
 * sgemm does not give the single-threaded bits (here, products with k = 784 differ between
 * 1 and 2 threads: it blocks k differently), and its threads would compete with the pool's.
 *
 * A large product is cut into blocks of C's columns (rows, when it is taller than wide) by
 * its shape alone, never by the thread count, each block a single-threaded sgemm run by the
 * pool; one thread runs the same blocks in turn. That the bits of a block of C equal those
 * of the same part of the whole product is not something to assume: it holds for OpenBLAS's
 * AVX-512 kernels here, but not for its Haswell and Zen (AVX2) kernels
 * (OPENBLAS_CORETYPE=Haswell, or valgrind's CPU, makes a 96 × 130 × 520 product differ
 * cut in two), so a cut that followed the thread count would change the weights with it.
 * Each block packs the other operand again, 2-4% of a product's time at one thread: the
 * price of bits that do not depend on the thread count, kept low by cutting few blocks. A
 * backward's two products of one size go to the pool as one job (nb__gemm_pair), each run
 * whole where the probe below allows it, so that two threads each run one whole product.
 *
 * At one thread that price is not paid where it can be shown to buy nothing: the first time
 * a shape is cut at one thread, a probe runs it both ways on scratch operands of random
 * values with a wide spread of exponents (which make sums in another order round otherwise)
 * and compares the bits. Where they are equal, the kernel computes every element of the
 * blocks as the whole product does, so one thread calls sgemm on the whole product from then
 * on, and more threads still run the blocks. Where they differ, or the probe could not run,
 * the blocks are kept. The verdicts are kept per shape (and alpha, beta) for the process.
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

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

/*
 * The probes' verdicts: whether the whole product has the bits of its blocks, per shape,
 * flags, parts, alpha and beta (the kernels' paths depend on these, never on the values or
 * the leading dimensions). A shape not found, once the table is full, keeps its blocks.
 */
#define MAX_VERDICTS     64
#define PROBE_MAX_FLOATS ((int64_t)4 << 20) /* scratch of at most 16 MiB */

typedef struct verdict {
    bool ta, tb, by_cols, same;
    int64_t m, n, k, parts;
    uint32_t alpha, beta; /* bits */
} verdict;

static pthread_mutex_t verdicts_lock = PTHREAD_MUTEX_INITIALIZER;

static verdict verdicts[MAX_VERDICTS];
static int n_verdicts;

__attribute__((constructor)) static void verdicts_atfork(void)
{
    nb__lock_across_fork(&verdicts_lock);
}

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static bool same_key(const verdict *v, const gemm_job *j)
{
    return v->ta == j->ta && v->tb == j->tb && v->by_cols == j->by_cols && v->m == j->m &&
           v->n == j->n && v->k == j->k && v->parts == j->parts &&
           v->alpha == float_bits(j->alpha) && v->beta == float_bits(j->beta);
}

/* Values in ±[1, 2)·2^e, e in [-8, 8), from a fixed sequence (xorshift64*). */
static void fill_spread(float *x, int64_t n, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        uint64_t r = *state * 0x2545F4914F6CDD1DULL;
        uint32_t mant = (uint32_t)(r >> 41), e = (uint32_t)(r >> 37) & 15u, sign = (uint32_t)r & 1u;
        uint32_t u = sign << 31 | (127u - 8u + e) << 23 | mant;
        memcpy(&x[i], &u, sizeof u);
    }
}

/* j's product by its blocks and whole, on scratch operands of j's shape: 1 for equal bits,
 * 0 for not, -1 when the scratch could not be had. */
static int probe(const gemm_job *j)
{
    int64_t na = j->m * j->k, nb = j->k * j->n, nc = j->m * j->n;
    float *buf = nb__alloc((size_t)(na + nb + 2 * nc) * sizeof(float), 64);
    if (!buf) return -1;
    float *a = buf, *b = a + na, *c1 = b + nb, *c2 = c1 + nc;
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    fill_spread(buf, na + nb + nc, &state);
    memcpy(c2, c1, (size_t)nc * sizeof(float));
    gemm_job t = *j;
    t.a = a;
    t.b = b;
    t.c = c1;
    t.lda = j->ta ? j->m : j->k;
    t.ldb = j->tb ? j->k : j->n;
    t.ldc = j->n;
    for (int64_t i = 0; i < t.parts; i++) gemm_block(&t, i);
    sgemm(t.ta, t.tb, t.m, t.n, t.k, t.alpha, a, t.lda, b, t.ldb, t.beta, c2, t.ldc);
    int same = memcmp(c1, c2, (size_t)nc * sizeof(float)) == 0;
    nb__free_uncached(buf); /* not kept: a shape is probed once */
    return same;
}

/* The verdict for j's shape, or NULL; with verdicts_lock held. */
static const verdict *find_verdict(const gemm_job *j)
{
    for (int i = 0; i < n_verdicts; i++)
        if (same_key(&verdicts[i], j)) return &verdicts[i];
    return NULL;
}

/* Whether one thread may run j as one sgemm call: its probe found the bits of its blocks.
 * The first call for a shape runs the probe (outside the lock: two threads may both probe a
 * new shape, and find the same). */
static bool whole_gives_blocks(const gemm_job *j)
{
    pthread_mutex_lock(&verdicts_lock);
    const verdict *v = find_verdict(j);
    bool known = v || n_verdicts == MAX_VERDICTS, same = v && v->same;
    pthread_mutex_unlock(&verdicts_lock);
    if (known) return same;
    double floats = (double)j->k * (double)(j->m + j->n) + 2.0 * (double)j->m * (double)j->n;
    if (floats > (double)PROBE_MAX_FLOATS) return false;
    int found = probe(j);
    if (found < 0) return false; /* no verdict: the next call probes again */
    pthread_mutex_lock(&verdicts_lock);
    if (!find_verdict(j) && n_verdicts < MAX_VERDICTS)
        verdicts[n_verdicts++] =
            (verdict){j->ta, j->tb, j->by_cols, found == 1,           j->m,
                      j->n,  j->k,  j->parts,   float_bits(j->alpha), float_bits(j->beta)};
    pthread_mutex_unlock(&verdicts_lock);
    return found == 1;
}

/* j's number of blocks, from its shape: cut_flops and MIN_BLOCK */
static void plan_job(gemm_job *j)
{
    int64_t len = j->by_cols ? j->n : j->m;
    double flops = 2.0 * (double)j->m * (double)j->n * (double)j->k;
    for (size_t i = 0; i < sizeof cut_flops / sizeof cut_flops[0]; i++)
        if (flops >= cut_flops[i] && len / (2 * j->parts) >= MIN_BLOCK) j->parts *= 2;
}

static gemm_job make_job(const nb__gemm_args *g)
{
    return (gemm_job){g->ta,  g->tb, g->n >= g->m, g->m,    g->n, g->k, g->lda, g->ldb,
                      g->ldc, 1,     g->alpha,     g->beta, g->a, g->b, g->c};
}

/* Whether g has nothing to multiply: no C, or k = 0 (C = beta·C, which BLAS may skip) */
static bool trivial(const nb__gemm_args *g)
{
    return g->m == 0 || g->n == 0 || g->k == 0;
}

static void run_job(gemm_job *j)
{
    if (j->parts == 1 || (nb__num_threads() == 1 && whole_gives_blocks(j)))
        sgemm(j->ta, j->tb, j->m, j->n, j->k, j->alpha, j->a, j->lda, j->b, j->ldb, j->beta, j->c,
              j->ldc);
    else
        nb__parallel_for(j->parts, gemm_block, j);
}

/* g alone, as nb__gemm */
static void gemm_one(const nb__gemm_args *g)
{
    if (trivial(g)) {
        for (int64_t i = 0; i < g->m && g->n > 0; i++)
            for (int64_t j = 0; j < g->n; j++)
                g->c[i * g->ldc + j] = g->beta == 0.0f ? 0.0f : g->beta * g->c[i * g->ldc + j];
        return;
    }
    pthread_once(&blas_once, blas_init);
    gemm_job j = make_job(g);
    plan_job(&j);
    run_job(&j);
}

void nb__gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    gemm_one(&(nb__gemm_args){ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc});
}

/*
 * The least flops of a pair that two threads run side by side (W2's backward at 2 threads,
 * Intel Xeon: at n = 48, 0.44 MFLOP in all, no faster side by side; at n = 64, 1.05 MFLOP,
 * a little faster; at n = 96, 3.5 MFLOP, 0.68 times the time in turn).
 */
#define PAIR_FLOPS 1e6

typedef struct gemm_pair {
    gemm_job job[2];
} gemm_pair;

static void pair_block(void *ctx, int64_t i)
{
    gemm_pair *p = ctx;
    if (i < p->job[0].parts)
        gemm_block(&p->job[0], i);
    else
        gemm_block(&p->job[1], i - p->job[0].parts);
}

void nb__gemm_pair(const nb__gemm_args *x, const nb__gemm_args *y)
{
    if (!x || !y || trivial(x) || trivial(y)) {
        if (x) gemm_one(x);
        if (y) gemm_one(y);
        return;
    }
    pthread_once(&blas_once, blas_init);
    gemm_pair p = {{make_job(x), make_job(y)}};
    plan_job(&p.job[0]);
    plan_job(&p.job[1]);
    /* two products of one size, of two blocks each: one runs whole where its probe found the
     * whole product's bits equal to its blocks' (as one thread runs it), so that each thread
     * can take one whole product rather than both packing the same operand for their halves.
     * The bits stay those of the product's shape alone, paired or not. */
    double fx = (double)x->m * (double)x->n * (double)x->k;
    double fy = (double)y->m * (double)y->n * (double)y->k;
    if (p.job[0].parts == 2 && p.job[1].parts == 2 && fx <= 1.25 * fy && fy <= 1.25 * fx)
        for (int i = 0; i < 2; i++)
            if (whole_gives_blocks(&p.job[i])) p.job[i].parts = 1;
    if (nb__num_threads() == 1 || 2.0 * (fx + fy) < PAIR_FLOPS) { /* in turn */
        run_job(&p.job[0]);
        run_job(&p.job[1]);
    } else {
        nb__parallel_for(p.job[0].parts + p.job[1].parts, pair_block, &p);
    }
}

/*
 * Small products by loops of nabla's own, where a call into OpenBLAS costs more than the
 * arithmetic (measured on Zen 4, 1 thread):
 * - an outer product (sger) of up to SMALL_GER elements: OpenBLAS takes 30 ns for [5, 3],
 *   85 for [8, 8], 370 for [64, 64] and 1 200 for [128, 128], the loop 13, 25, 190 and 820;
 * - A transposed times x (sgemv, y = Aᵀx) of up to SMALL_GEMV elements with at most twice as
 *   many rows as columns: 20 ns for [5, 3] against 12 (with more rows of a few columns each,
 *   the loop's per-row cost exceeds OpenBLAS's).
 * Each element is summed in the order of the shared index and nothing is fused, so the loops
 * give the same bits on every CPU; they round otherwise than OpenBLAS's kernels, within the
 * same few ulps of the exact sums.
 */
#define SMALL_GER  4096
#define SMALL_GEMV 64

/* y = alpha·Aᵀx + beta·y, A[m,n] (y has n elements, n <= SMALL_GEMV): A's rows added in
 * order. */
NB__CLONES static void small_gemv_t(int64_t m, int64_t n, float alpha, const float *a, int64_t lda,
                                    const float *x, float beta, float *y)
{
    float t[SMALL_GEMV];
    for (int64_t j = 0; j < n; j++) t[j] = a[j] * x[0];
    for (int64_t i = 1; i < m; i++)
        for (int64_t j = 0; j < n; j++) t[j] += a[i * lda + j] * x[i];
    for (int64_t j = 0; j < n; j++) y[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * y[j];
}

/* A[m,n] += alpha·x ⊗ y, row by row. */
NB__CLONES static void small_ger(int64_t m, int64_t n, float alpha, const float *x, const float *y,
                                 float *a, int64_t lda)
{
    for (int64_t i = 0; i < m; i++) {
        float s = alpha * x[i];
        float *r = a + i * lda;
        for (int64_t j = 0; j < n; j++) r[j] += s * y[j];
    }
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
    if (ta && m * n <= SMALL_GEMV && m <= 2 * n) {
        small_gemv_t(m, n, alpha, a, lda, x, beta, y);
        return;
    }
    pthread_once(&blas_once, blas_init);
    cblas_sgemv(CblasRowMajor, tr(ta), (int)m, (int)n, alpha, a, ld(lda), x, 1, beta, y, 1);
}

void nb__ger(int64_t m, int64_t n, float alpha, const float *x, const float *y, float *a,
             int64_t lda)
{
    if (m == 0 || n == 0) return;
    if (m * n <= SMALL_GER) {
        small_ger(m, n, alpha, x, y, a, lda);
        return;
    }
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
