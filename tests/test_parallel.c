/*
 * The thread pool: products large enough to be cut into blocks are right (against double
 * loops, in every transpose case the ops use, with block edges off the vector width) and give
 * the same bits with 1, 2 and 3 threads (also with OPENBLAS_CORETYPE=Haswell, whose kernels
 * do not give a block of a product the whole product's bits); a short training run of
 * nabla-train's step gives bit-identical weights at 1 and 2 threads; threads of the program that
 * share the pool, and changes of the thread count between calls, change nothing; one thread
 * probes a shape it would cut once, whether one call has the blocks' bits. Elementwise loops
 * large enough to be cut into tasks (flat, with a number, broadcast by rows with rows that
 * straddle tasks, sin with large arguments, gradients added into a gradient) are right and
 * give the same bits at 1, 2 and 3 threads; so do reductions by rows, sums over leading or
 * trailing dims, softmax and log_softmax, cross_entropy's gradients over as many elements.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "testutil.h"
#include "trainer.h"

#define MAX_ELEMS (640 * 640)

typedef struct product {
    int64_t m, k, n; /* A [m, k], B [k, n] */
} product;

/* Cut by columns (n >= m), by rows (m > n), with edges off multiples of 16, and one too
 * small to cut. */
static const product products[] = {
    {96, 130, 520}, {600, 100, 200}, {130, 784, 264}, {17, 5, 9}, {300, 300, 300},
};

static nb_tensor *filled(int64_t r, int64_t c, uint64_t seed)
{
    nb_generator *g = nb_generator_new(seed);
    nb_tensor *t = nb_rand_gen(NB_SHAPE(r, c), g);
    nb_generator_free(g);
    return t;
}

/* out = A·B, dA = G·Bᵀ, dB = Aᵀ·G for loss = sum(C·G): three products with other flags */
typedef struct results {
    float c[MAX_ELEMS], da[MAX_ELEMS], db[MAX_ELEMS];
} results;

static void run_product(const product *p, results *r)
{
    nb_tensor *a = nb_requires_grad_(filled(p->m, p->k, 1), true);
    nb_tensor *b = nb_requires_grad_(filled(p->k, p->n, 2), true);
    nb_tensor *g = filled(p->m, p->n, 3);
    assert_true(p->m * p->n <= MAX_ELEMS && p->m * p->k <= MAX_ELEMS && p->k * p->n <= MAX_ELEMS);
    nb_scope *s = nb_scope_begin();
    nb_tensor *c = nb_matmul(a, b);
    nb_tensor *loss = nb_sum(nb_mul(c, g), NB_DIMS_ALL, false);
    assert_non_null(loss);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    memcpy(r->c, nb_tensor_data(c), (size_t)(p->m * p->n) * sizeof(float));
    memcpy(r->da, nb_tensor_data(nb_tensor_grad(a)), (size_t)(p->m * p->k) * sizeof(float));
    memcpy(r->db, nb_tensor_data(nb_tensor_grad(b)), (size_t)(p->k * p->n) * sizeof(float));
    assert_int_equal(nb_scope_end(s), NB_OK);
    nb_release(a);
    nb_release(b);
    nb_release(g);
}

/* Largest |got − op(A)·op(B)| per term, in double: op(A) [m, k], op(B) [k, n], each stored
 * row-major untransposed (A [m, k] or, with ta, [k, m]). */
static double worst_product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a,
                            const float *b, const float *got)
{
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t q = 0; q < k; q++)
                s += (double)(ta ? a[q * m + i] : a[i * k + q]) *
                     (double)(tb ? b[j * k + q] : b[q * n + j]);
            worst = fmax(worst, fabs(s - (double)got[i * n + j]) / (double)k);
        }
    return worst;
}

/* C = A·B, dA = G·Bᵀ, dB = Aᵀ·G in double, against r. */
static void check_product(const product *p, const results *r)
{
    nb_tensor *a = filled(p->m, p->k, 1), *b = filled(p->k, p->n, 2), *g = filled(p->m, p->n, 3);
    const float *A = nb_tensor_data(a), *B = nb_tensor_data(b), *G = nb_tensor_data(g);
    double worst = fmax(worst_product(false, false, p->m, p->n, p->k, A, B, r->c),
                        fmax(worst_product(false, true, p->m, p->k, p->n, G, B, r->da),
                             worst_product(true, false, p->k, p->n, p->m, A, G, r->db)));
    nb_release(a);
    nb_release(b);
    nb_release(g);
    if (worst > 1e-6)
        fail_msg("[%lld, %lld] @ [%lld, %lld]: off by %.3g per term", (long long)p->m,
                 (long long)p->k, (long long)p->k, (long long)p->n, worst);
}

static void test_products_same_bits(void **state)
{
    (void)state;
    static results one, other;
    for (size_t i = 0; i < sizeof products / sizeof products[0]; i++) {
        const product *p = &products[i];
        assert_int_equal(nb_set_num_threads(1), NB_OK);
        run_product(p, &one);
        check_product(p, &one);
        for (int t = 2; t <= 3; t++) {
            assert_int_equal(nb_set_num_threads(t), NB_OK);
            run_product(p, &other);
            if (memcmp(&one, &other, sizeof one))
                fail_msg("product %zu: %d threads differ from 1", i, t);
        }
    }
    nb_set_num_threads(1);
}

/* ---- elementwise loops cut into tasks --------------------------------------------------- */

/* run(one, true) at 1 thread, then run(other, false) at 2 and 3 threads gives the size bytes
 * that one holds (a runner may make its slower checks on the first run only) */
static void same_bits_as_one(void *one, void *other, size_t size, void (*run)(void *, bool),
                             const char *what)
{
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    run(one, true);
    for (int t = 2; t <= 3; t++) {
        assert_int_equal(nb_set_num_threads(t), NB_OK);
        memset(other, 0, size);
        run(other, false);
        if (memcmp(one, other, size)) fail_msg("%s: %d threads differ from 1", what, t);
    }
    nb_set_num_threads(1);
}

/* More elements than the loops cut (131 072), in rows of 1 000: tasks of 32 768 elements
 * end inside rows. */
#define EW_ROWS  300
#define EW_COLS  1000
#define EW_ELEMS (EW_ROWS * EW_COLS)
#define EW_OUTS  8

typedef struct ew_results {
    float out[EW_OUTS][EW_ELEMS];
} ew_results;

static void keep(ew_results *r, int i, nb_tensor *t)
{
    assert_non_null(t);
    assert_int_equal(nb_tensor_numel(t), EW_ELEMS);
    memcpy(r->out[i], nb_tensor_data(t), sizeof r->out[i]);
}

/* x in [-200, 200) where a row's index is odd, so that sin's blocks mix both paths */
static nb_tensor *spread(nb_tensor *u)
{
    float *d = nb_tensor_data(u);
    for (int64_t i = 0; i < EW_ELEMS; i++) d[i] = (i / EW_COLS) % 2 ? 400.0f * d[i] - 200.0f : d[i];
    return u;
}

/* The operands, in the current scope: a, b [300, 1000], row [1, 1000], col [300, 1],
 * mid [30, 1000], x as spread makes it. */
typedef struct ew_operands {
    nb_tensor *a, *b, *row, *col, *mid, *x;
} ew_operands;

static ew_operands ew_operands_new(void)
{
    return (ew_operands){filled(EW_ROWS, EW_COLS, 3), filled(EW_ROWS, EW_COLS, 4),
                         filled(1, EW_COLS, 5),       filled(EW_ROWS, 1, 6),
                         filled(30, EW_COLS, 7),      spread(filled(EW_ROWS, EW_COLS, 8))};
}

static void check_elementwise(const ew_results *r);

static void run_elementwise(void *out, bool first)
{
    ew_results *r = out;
    nb_scope *sc = nb_scope_begin();
    ew_operands o = ew_operands_new();
    nb_tensor *a3 = nb_reshape(o.a, NB_SHAPE(30, 10, EW_COLS));
    nb_tensor *mid = nb_reshape(o.mid, NB_SHAPE(30, 1, EW_COLS));
    keep(r, 0, nb_add(o.a, o.b));
    keep(r, 1, nb_mul(o.a, nb_scalar(0.25f)));
    keep(r, 2, nb_add(o.a, o.row));
    keep(r, 3, nb_sub(o.col, o.a));
    keep(r, 4, nb_mul(a3, mid));
    keep(r, 5, nb_sin(o.x));
    /* x·x + x: x's gradient 2x + 1 added up from three gradients; row's through a broadcast */
    nb_requires_grad_(o.x, true);
    nb_requires_grad_(o.row, true);
    nb_tensor *y = nb_add(nb_add(nb_mul(o.x, o.x), o.x), nb_mul(o.b, o.row));
    assert_int_equal(nb_backward(nb_sum(y, NB_DIMS_ALL, false), NULL, false), NB_OK);
    keep(r, 6, nb_tensor_grad(o.x));
    memcpy(r->out[7], nb_tensor_data(nb_tensor_grad(o.row)), EW_COLS * sizeof(float));
    assert_int_equal(nb_scope_end(sc), NB_OK);
    if (first) check_elementwise(r);
}

/* each output against its definition, element by element */
static void check_elementwise(const ew_results *r)
{
    nb_scope *sc = nb_scope_begin();
    ew_operands o = ew_operands_new();
    const float *A = nb_tensor_data(o.a), *B = nb_tensor_data(o.b), *R = nb_tensor_data(o.row),
                *C = nb_tensor_data(o.col), *M = nb_tensor_data(o.mid), *X = nb_tensor_data(o.x);
    for (int64_t i = 0; i < EW_ELEMS; i++) {
        int64_t rr = i / EW_COLS, c = i % EW_COLS;
        float want[6] = {
            A[i] + B[i], A[i] * 0.25f, A[i] + R[c], C[rr] - A[i], A[i] * M[(rr / 10) * EW_COLS + c],
            sinf(X[i])};
        for (int k = 0; k < 6; k++)
            if (memcmp(&r->out[k][i], &want[k], sizeof(float)))
                fail_msg("elementwise output %d, element %lld: %a, want %a", k, (long long)i,
                         (double)r->out[k][i], (double)want[k]);
        /* the engine adds x's three gradients in an order of its own */
        double dx = 2.0 * (double)X[i] + 1.0;
        if (fabs((double)r->out[6][i] - dx) > 1e-6 * fabs(dx) + 1e-7)
            fail_msg("x's gradient, element %lld: %g, want %g", (long long)i, (double)r->out[6][i],
                     dx);
    }
    for (int64_t c = 0; c < EW_COLS; c++) {
        double want = 0.0;
        for (int64_t rr = 0; rr < EW_ROWS; rr++) want += (double)B[rr * EW_COLS + c];
        if (fabs((double)r->out[7][c] - want) > 1e-4 * fabs(want))
            fail_msg("the broadcast row's gradient, column %lld: %g, want %g", (long long)c,
                     (double)r->out[7][c], want);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_elementwise_same_bits(void **state)
{
    (void)state;
    static ew_results one, other;
    same_bits_as_one(&one, &other, sizeof one, run_elementwise, "the elementwise outputs");
}

/* Reductions by rows, over as many elements: amax, argmax, var and logsumexp along the last
 * dim, amax along the first (through a transposed copy), at 1, 2 and 3 threads; amax and
 * argmax against their definitions. */
static void run_rows(void *res, bool first)
{
    (void)first; /* checked on every run */
    float(*out)[EW_COLS] = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = filled(EW_ROWS, EW_COLS, 9);
    nb_tensor *y[5] = {nb_amax(x, NB_DIMS(1), false), nb_argmax(x, NB_DIMS(1), false),
                       nb_var(x, NB_DIMS(1), 1, false), nb_logsumexp(x, NB_DIMS(1), false),
                       nb_amax(x, NB_DIMS(0), false)};
    for (int k = 0; k < 5; k++) {
        assert_non_null(y[k]);
        memcpy(out[k], nb_tensor_data(y[k]), (size_t)nb_tensor_numel(y[k]) * sizeof(float));
    }
    const float *v = nb_tensor_data(x);
    for (int64_t r = 0; r < EW_ROWS; r++) {
        int64_t at = 0;
        for (int64_t c = 1; c < EW_COLS; c++)
            at = v[r * EW_COLS + c] > v[r * EW_COLS + at] ? c : at;
        if (out[0][r] != v[r * EW_COLS + at] || out[1][r] != (float)at)
            fail_msg("row %lld: amax %g, argmax %g; want %g at %lld", (long long)r,
                     (double)out[0][r], (double)out[1][r], (double)v[r * EW_COLS + at],
                     (long long)at);
    }
    for (int64_t c = 0; c < EW_COLS; c++) {
        float m = v[c];
        for (int64_t r = 1; r < EW_ROWS; r++) m = v[r * EW_COLS + c] > m ? v[r * EW_COLS + c] : m;
        if (out[4][c] != m)
            fail_msg("column %lld: amax %g, want %g", (long long)c, (double)out[4][c], (double)m);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_rows_same_bits(void **state)
{
    (void)state;
    static float one[5][EW_COLS], other[5][EW_COLS];
    same_bits_as_one(one, other, sizeof one, run_rows, "the reductions by rows");
}

/* softmax along the last dim, log_softmax along a middle one and softmax along the first (one
 * outer block of 16 blocks of columns), and their gradients, over 300 000 elements: each slice
 * as the same op gives it on that slice alone (a tensor too small to cut), and the same bits at
 * 1, 2 and 3 threads. */
#define SM_BLOCK (10 * EW_COLS)
enum { SM_OPS = 3, SM_COL0 = 100, SM_COLS = 65 };

/* y = op(x) and x's gradient for the loss sum(y·w): op 0 softmax along the last dim, 1
 * log_softmax along dim 1, 2 softmax along dim 0 */
static void softmax_step(nb_tensor *x, nb_tensor *w, int op, float *y, float *dx)
{
    nb_scope *sc = nb_scope_begin();
    nb_tensor *leaf = nb_requires_grad_(nb_clone(x), true);
    nb_tensor *out = op == 1 ? nb_log_softmax(leaf, 1) : nb_softmax(leaf, op == 0 ? -1 : 0);
    assert_non_null(out);
    assert_int_equal(nb_backward(nb_sum(nb_mul(out, w), NB_DIMS_ALL, false), NULL, false), NB_OK);
    memcpy(y, nb_tensor_data(out), (size_t)nb_tensor_numel(out) * sizeof(float));
    memcpy(dx, nb_tensor_data(nb_tensor_grad(leaf)), (size_t)nb_tensor_numel(out) * sizeof(float));
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

typedef struct sm_results {
    float y[SM_OPS][EW_ELEMS], dx[SM_OPS][EW_ELEMS];
} sm_results;

static void run_softmax(void *res, bool check)
{
    sm_results *r = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_reshape(filled(EW_ROWS, EW_COLS, 10), NB_SHAPE(30, 10, EW_COLS));
    nb_tensor *w = nb_reshape(filled(EW_ROWS, EW_COLS, 11), NB_SHAPE(30, 10, EW_COLS));
    static float y1[SM_BLOCK], dx1[SM_BLOCK];
    for (int op = 0; op < 2; op++) {
        softmax_step(x, w, op, r->y[op], r->dx[op]);
        for (int64_t b = 0; check && b < 30; b++) {
            softmax_step(nb_slice(x, 0, b, b + 1, 1), nb_slice(w, 0, b, b + 1, 1), op, y1, dx1);
            if (memcmp(y1, r->y[op] + b * SM_BLOCK, sizeof y1) ||
                memcmp(dx1, r->dx[op] + b * SM_BLOCK, sizeof dx1))
                fail_msg("%s, block %lld: not the block's own result",
                         op ? "log_softmax" : "softmax", (long long)b);
        }
    }
    /* along dim 0 of [EW_ROWS, EW_COLS]: columns 100..164 (across blocks of 64) alone */
    nb_tensor *x2 = nb_reshape(x, NB_SHAPE(EW_ROWS, EW_COLS)),
              *w2 = nb_reshape(w, NB_SHAPE(EW_ROWS, EW_COLS));
    softmax_step(x2, w2, 2, r->y[2], r->dx[2]);
    if (check) {
        static float yc[EW_ROWS * SM_COLS], dxc[EW_ROWS * SM_COLS];
        softmax_step(nb_clone(nb_slice(x2, 1, SM_COL0, SM_COL0 + SM_COLS, 1)),
                     nb_clone(nb_slice(w2, 1, SM_COL0, SM_COL0 + SM_COLS, 1)), 2, yc, dxc);
        for (int64_t i = 0; i < EW_ROWS; i++)
            if (memcmp(yc + i * SM_COLS, r->y[2] + i * EW_COLS + SM_COL0,
                       SM_COLS * sizeof(float)) ||
                memcmp(dxc + i * SM_COLS, r->dx[2] + i * EW_COLS + SM_COL0,
                       SM_COLS * sizeof(float)))
                fail_msg("softmax along dim 0, row %lld: not the columns' own result",
                         (long long)i);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_softmax_same_bits(void **state)
{
    (void)state;
    static sm_results one, other;
    same_bits_as_one(&one, &other, sizeof one, run_softmax, "softmax and log_softmax");
}

/* Sums over trailing dims (each output its own block's sum), over leading dims (columns) and
 * over middle dims (slices of the first, with the last dim kept or reduced), over 300 000
 * elements: against their definitions
 * (a column added row after row in float, as nb_sum does, bit for bit; a block's sum, which
 * nabla takes in double, within 1e-6), and the same bits at 1, 2 and 3 threads. */
enum { N_SUMS = 10 };
static const int64_t sum_lens[N_SUMS] = {EW_ROWS, EW_COLS, 30,  EW_COLS, EW_COLS,
                                         10,      1000,    100, 1,       1};

static void run_sums(void *res, bool first)
{
    (void)first; /* checked on every run */
    float(*out)[EW_COLS] = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = filled(EW_ROWS, EW_COLS, 12), *x3 = nb_reshape(x, NB_SHAPE(30, 10, EW_COLS));
    nb_tensor *y[N_SUMS] = {nb_sum(x, NB_DIMS(1), false),
                            nb_sum(x, NB_DIMS(0), false),
                            nb_sum(x3, NB_DIMS(1, 2), false),
                            nb_sum(x3, NB_DIMS(0, 1), false),
                            nb_mean(x, NB_DIMS(0), true),
                            nb_sum(x3, NB_DIMS(0, 2), false),
                            nb_sum(nb_reshape(x, NB_SHAPE(10, 300, 100)), NB_DIMS(1), false),
                            nb_sum(nb_reshape(x, NB_SHAPE(10, 30, 10, 100)), NB_DIMS(1, 3), false),
                            nb_sum(x, NB_DIMS_ALL, false),
                            nb_mean(x3, NB_DIMS_ALL, true)};
    for (int k = 0; k < N_SUMS; k++) {
        assert_non_null(y[k]);
        assert_int_equal(nb_tensor_numel(y[k]), sum_lens[k]);
        memcpy(out[k], nb_tensor_data(y[k]), (size_t)sum_lens[k] * sizeof(float));
    }
    const float *v = nb_tensor_data(x);
    for (int64_t c = 0; c < EW_COLS; c++) {
        float col = 0.0f;
        for (int64_t r = 0; r < EW_ROWS; r++) col += v[r * EW_COLS + c];
        if (memcmp(&out[1][c], &col, sizeof col) || memcmp(&out[3][c], &col, sizeof col) ||
            out[4][c] != col / (float)EW_ROWS)
            fail_msg("column %lld: sums %a, %a, mean %a; want %a", (long long)c, (double)out[1][c],
                     (double)out[3][c], (double)out[4][c], (double)col);
    }
    for (int64_t r = 0; r < EW_ROWS; r++) {
        double row = 0.0, block = 0.0;
        for (int64_t c = 0; c < EW_COLS; c++) row += (double)v[r * EW_COLS + c];
        for (int64_t c = 0; r < 30 && c < 10 * EW_COLS; c++)
            block += (double)v[r * 10 * EW_COLS + c];
        if (fabs((double)out[0][r] - row) > 1e-6 * fabs(row) + 1e-6 ||
            (r < 30 && fabs((double)out[2][r] - block) > 1e-6 * fabs(block) + 1e-6))
            fail_msg("row %lld: sum %g, want %g", (long long)r, (double)out[0][r], row);
    }
    for (int64_t a = 0; a < 10; a++) /* the middle dim reduced: slices of the first */
        for (int64_t c = 0; c < 100; c++) {
            float mid = 0.0f;
            for (int64_t b = 0; b < 300; b++) mid += v[(a * 300 + b) * 100 + c];
            if (memcmp(&out[6][a * 100 + c], &mid, sizeof mid))
                fail_msg("[10, 300, 100] over dim 1, (%lld, %lld): %a, want %a", (long long)a,
                         (long long)c, (double)out[6][a * 100 + c], (double)mid);
        }
    for (int64_t a = 0; a < 10; a++) /* dims 1 and 3 reduced: runs summed, slices of dim 0 */
        for (int64_t c = 0; c < 10; c++) {
            double sum = 0.0;
            for (int64_t b = 0; b < 30; b++)
                for (int64_t e = 0; e < 100; e++)
                    sum += (double)v[((a * 30 + b) * 10 + c) * 100 + e];
            if (fabs((double)out[7][a * 10 + c] - sum) > 1e-6 * fabs(sum) + 1e-6)
                fail_msg("[10, 30, 10, 100] over dims 1, 3, (%lld, %lld): %g, want %g",
                         (long long)a, (long long)c, (double)out[7][a * 10 + c], sum);
        }
    double all = 0.0; /* every element, in chunks on the pool: within rounding of the sum */
    for (int64_t i = 0; i < EW_ELEMS; i++) all += (double)v[i];
    if (fabs((double)out[8][0] - all) > 1e-7 * all ||
        fabs((double)out[9][0] - all / EW_ELEMS) > 1e-7 * all / EW_ELEMS)
        fail_msg("all: sum %.9g, mean %.9g, want %.9g", (double)out[8][0], (double)out[9][0], all);
    for (int64_t m = 0; m < 10; m++) { /* the middle dim kept: the loop on one thread */
        double mid = 0.0;
        for (int64_t a = 0; a < 30; a++)
            for (int64_t c = 0; c < EW_COLS; c++) mid += (double)v[(a * 10 + m) * EW_COLS + c];
        if (fabs((double)out[5][m] - mid) > 1e-6 * fabs(mid) + 1e-6)
            fail_msg("middle %lld: sum %g, want %g", (long long)m, (double)out[5][m], mid);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_sums_same_bits(void **state)
{
    (void)state;
    static float one[N_SUMS][EW_COLS], other[N_SUMS][EW_COLS]; /* unused tails stay 0 */
    same_bits_as_one(one, other, sizeof one, run_sums, "the sums");
}

/* cross_entropy's gradients over 300 000 logits in rows of 100 classes: with class indices
 * (a weight, label smoothing, ignored samples) and with probabilities (a weight, the target's
 * gradient too), summed. Each block of 300 rows has the bits the same loss gives on those
 * rows alone (a tensor too small to cut), and the whole the same bits at 1, 2 and 3 threads. */
enum { CE_CLASSES = 100, CE_ROWS = EW_ELEMS / CE_CLASSES, CE_BLOCK = 300 };

typedef struct ce_results {
    float dx[2][EW_ELEMS], dy[EW_ELEMS], loss[2];
} ce_results;

/* the loss of x's rows [lo, hi) and its gradients into r at those rows */
static void ce_rows_step(nb_tensor *x, nb_tensor *cls, nb_tensor *prob, nb_tensor *w, int64_t lo,
                         int64_t hi, ce_results *r)
{
    nb_scope *sc = nb_scope_begin();
    for (int probs = 0; probs < 2; probs++) {
        nb_tensor *leaf = nb_requires_grad_(nb_clone(nb_slice(x, 0, lo, hi, 1)), true);
        nb_tensor *y = probs ? nb_requires_grad_(nb_clone(nb_slice(prob, 0, lo, hi, 1)), true)
                             : nb_slice(cls, 0, lo, hi, 1);
        nb_tensor *l = nb_cross_entropy(leaf, y, w, -100, NB_SUM, probs ? 0.0 : 0.1);
        assert_non_null(l);
        assert_int_equal(nb_backward(l, NULL, false), NB_OK);
        r->loss[probs] = nb_tensor_data(l)[0];
        memcpy(r->dx[probs] + lo * CE_CLASSES, nb_tensor_data(nb_tensor_grad(leaf)),
               (size_t)((hi - lo) * CE_CLASSES) * sizeof(float));
        if (probs)
            memcpy(r->dy + lo * CE_CLASSES, nb_tensor_data(nb_tensor_grad(y)),
                   (size_t)((hi - lo) * CE_CLASSES) * sizeof(float));
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void run_ce(void *res, bool check)
{
    ce_results *r = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_reshape(filled(EW_ROWS, EW_COLS, 13), NB_SHAPE(CE_ROWS, CE_CLASSES));
    nb_tensor *prob =
        nb_softmax(nb_reshape(filled(EW_ROWS, EW_COLS, 14), NB_SHAPE(CE_ROWS, CE_CLASSES)), 1);
    nb_tensor *w = nb_reshape(filled(1, CE_CLASSES, 15), NB_SHAPE(CE_CLASSES));
    nb_tensor *cls = nb_zeros(NB_SHAPE(CE_ROWS));
    for (int64_t i = 0; i < CE_ROWS; i++)
        nb_tensor_data(cls)[i] = i % 13 == 0 ? -100.0f : (float)((i * 7) % CE_CLASSES);
    ce_rows_step(x, cls, prob, w, 0, CE_ROWS, r);
    static ce_results part;
    for (int64_t b = 0; check && b < CE_ROWS; b += CE_BLOCK) {
        ce_rows_step(x, cls, prob, w, b, b + CE_BLOCK, &part);
        size_t at = (size_t)(b * CE_CLASSES), len = (size_t)(CE_BLOCK * CE_CLASSES) * sizeof(float);
        if (memcmp(part.dx[0] + at, r->dx[0] + at, len) ||
            memcmp(part.dx[1] + at, r->dx[1] + at, len) || memcmp(part.dy + at, r->dy + at, len))
            fail_msg("cross_entropy, rows %lld..: not those rows' own gradients", (long long)b);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_cross_entropy_same_bits(void **state)
{
    (void)state;
    static ce_results one, other;
    same_bits_as_one(&one, &other, sizeof one, run_ce, "cross_entropy's gradients");
}

/* binary_cross_entropy_with_logits over 300 000 logits: without and with a weight and a
 * pos_weight (negative ones too), NaN, ±inf, ±0 and large logits among them. Each loss bit for
 * bit as PyTorch's kernel computes it (in float, with the C library's expf and logf, which
 * nabla's match bit for bit), the mean and sum of finite logits within rounding of the
 * losses' sum in double; losses, means, sums and both gradients the same at 1, 2 and 3
 * threads. */
typedef struct bcel_results {
    float loss[2][EW_ELEMS], dx[2][EW_ELEMS], dy[2][EW_ELEMS], red[2][2];
} bcel_results;

static float bcel_want(float x, float y, const float *p, const float *w)
{
    float max_val = x < 0.0f ? -x : 0.0f;
    float soft = logf(expf(-max_val) + expf(-x - max_val));
    float l = p ? (1.0f - y) * x + ((*p - 1.0f) * y + 1.0f) * (soft + max_val)
                : (1.0f - y) * x + max_val + soft;
    return w ? l * *w : l;
}

static void run_bcel(void *res, bool check)
{
    bcel_results *r = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = filled(EW_ROWS, EW_COLS, 21), *xf = filled(EW_ROWS, EW_COLS, 21);
    nb_tensor *y = filled(EW_ROWS, EW_COLS, 22), *p = filled(EW_ROWS, EW_COLS, 23);
    nb_tensor *w = filled(EW_ROWS, EW_COLS, 24);
    float *X = nb_tensor_data(x), *XF = nb_tensor_data(xf), *P = nb_tensor_data(p);
    const float *Y = nb_tensor_data(y), *W = nb_tensor_data(w);
    static const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, -100.0f, 100.0f};
    for (int64_t i = 0; i < EW_ELEMS; i++) {
        X[i] = XF[i] = 40.0f * X[i] - 20.0f;
        P[i] = 3.0f * P[i] - 1.0f;
        if (i % 1009 < 7) X[i] = special[i % 1009];
    }
    for (int pw = 0; pw < 2; pw++) {
        nb_tensor *wt = pw ? w : NULL, *pt = pw ? p : NULL;
        nb_tensor *l = nb_binary_cross_entropy_with_logits(x, y, wt, pt, NB_NONE);
        assert_non_null(l);
        memcpy(r->loss[pw], nb_tensor_data(l), sizeof r->loss[pw]);
        for (int64_t i = 0; check && i < EW_ELEMS; i++) {
            float want = bcel_want(X[i], Y[i], pw ? &P[i] : NULL, pw ? &W[i] : NULL);
            float got = r->loss[pw][i];
            if (!(isnan(want) && isnan(got)) && memcmp(&want, &got, sizeof got))
                fail_msg("loss %lld (x %a, pos_weight %d): %a, want %a", (long long)i, (double)X[i],
                         pw, (double)got, (double)want);
        }
        for (int red = 0; red < 2; red++) {
            nb_tensor *xl = nb_requires_grad_(nb_clone(xf), true);
            nb_tensor *yl = nb_requires_grad_(nb_clone(y), true);
            nb_tensor *m =
                nb_binary_cross_entropy_with_logits(xl, yl, wt, pt, red ? NB_SUM : NB_MEAN);
            assert_non_null(m);
            r->red[pw][red] = nb_tensor_data(m)[0];
            if (red == 0) {
                assert_int_equal(nb_backward(m, NULL, false), NB_OK);
                memcpy(r->dx[pw], nb_tensor_data(nb_tensor_grad(xl)), sizeof r->dx[pw]);
                memcpy(r->dy[pw], nb_tensor_data(nb_tensor_grad(yl)), sizeof r->dy[pw]);
            }
        }
        double sum = 0.0;
        for (int64_t i = 0; check && i < EW_ELEMS; i++)
            sum += (double)bcel_want(XF[i], Y[i], pw ? &P[i] : NULL, pw ? &W[i] : NULL);
        if (check && (fabs((double)r->red[pw][1] - sum) > 1e-6 * fabs(sum) ||
                      fabs((double)r->red[pw][0] - sum / EW_ELEMS) > 1e-6 * fabs(sum / EW_ELEMS)))
            fail_msg("pos_weight %d: mean %.9g, sum %.9g, want the sum %.9g", pw,
                     (double)r->red[pw][0], (double)r->red[pw][1], sum);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_bce_logits_same_bits(void **state)
{
    (void)state;
    static bcel_results one, other;
    same_bits_as_one(&one, &other, sizeof one, run_bcel, "binary_cross_entropy_with_logits");
}

/* layer_norm over rows of 1 000 (300 000 elements), with a weight and a bias, and the
 * gradients of all three for an upstream gradient: the output and dx of each block of 50
 * rows have the bits those rows give alone (a tensor too small to cut), dw and db are within
 * rounding of their sums over the rows in double, and everything is the same at 1, 2 and 3
 * threads. */
enum { LN_BLOCK = 50 };

typedef struct ln_results {
    float y[EW_ELEMS], dx[EW_ELEMS], dw[EW_COLS], db[EW_COLS];
} ln_results;

/* rows [lo, hi) of x through layer_norm and backward into r at those rows; dw and db too */
static void ln_rows_step(nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_tensor *g, int64_t lo,
                         int64_t hi, ln_results *r)
{
    nb_scope *sc = nb_scope_begin();
    nb_tensor *xl = nb_requires_grad_(nb_clone(nb_slice(x, 0, lo, hi, 1)), true);
    nb_tensor *wl = nb_requires_grad_(nb_clone(w), true),
              *bl = nb_requires_grad_(nb_clone(b), true);
    nb_tensor *y = nb_layer_norm(xl, NB_SHAPE(EW_COLS), wl, bl, 1e-5);
    assert_non_null(y);
    assert_int_equal(nb_backward(y, nb_slice(g, 0, lo, hi, 1), false), NB_OK);
    size_t at = (size_t)(lo * EW_COLS), len = (size_t)((hi - lo) * EW_COLS) * sizeof(float);
    memcpy(r->y + at, nb_tensor_data(y), len);
    memcpy(r->dx + at, nb_tensor_data(nb_tensor_grad(xl)), len);
    memcpy(r->dw, nb_tensor_data(nb_tensor_grad(wl)), sizeof r->dw);
    memcpy(r->db, nb_tensor_data(nb_tensor_grad(bl)), sizeof r->db);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void run_ln(void *res, bool check)
{
    ln_results *r = res;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = filled(EW_ROWS, EW_COLS, 31), *g = filled(EW_ROWS, EW_COLS, 32);
    nb_tensor *w = nb_reshape(filled(1, EW_COLS, 33), NB_SHAPE(EW_COLS));
    nb_tensor *b = nb_reshape(filled(1, EW_COLS, 34), NB_SHAPE(EW_COLS));
    ln_rows_step(x, w, b, g, 0, EW_ROWS, r);
    static ln_results part;
    for (int64_t lo = 0; check && lo < EW_ROWS; lo += LN_BLOCK) {
        ln_rows_step(x, w, b, g, lo, lo + LN_BLOCK, &part);
        size_t at = (size_t)(lo * EW_COLS), len = (size_t)(LN_BLOCK * EW_COLS) * sizeof(float);
        if (memcmp(part.y + at, r->y + at, len) || memcmp(part.dx + at, r->dx + at, len))
            fail_msg("layer_norm, rows %lld..: not those rows' own output and dx", (long long)lo);
    }
    const float *X = nb_tensor_data(x), *G = nb_tensor_data(g);
    static double mean[EW_ROWS], rstd[EW_ROWS];
    for (int64_t i = 0; check && i < EW_ROWS; i++) {
        double m = 0.0, v = 0.0;
        for (int64_t k = 0; k < EW_COLS; k++) m += (double)X[i * EW_COLS + k];
        m /= EW_COLS;
        for (int64_t k = 0; k < EW_COLS; k++)
            v += ((double)X[i * EW_COLS + k] - m) * ((double)X[i * EW_COLS + k] - m);
        mean[i] = m;
        rstd[i] = 1.0 / sqrt(v / EW_COLS + 1e-5);
    }
    for (int64_t j = 0; check && j < EW_COLS; j++) {
        double dw = 0.0, db = 0.0;
        for (int64_t i = 0; i < EW_ROWS; i++) {
            dw += (double)G[i * EW_COLS + j] * ((double)X[i * EW_COLS + j] - mean[i]) * rstd[i];
            db += (double)G[i * EW_COLS + j];
        }
        if (fabs((double)r->dw[j] - dw) > 1e-5 * (fabs(dw) + 1.0) ||
            fabs((double)r->db[j] - db) > 1e-5 * fabs(db))
            fail_msg("layer_norm, column %lld: dw %g, db %g; want %g, %g", (long long)j,
                     (double)r->dw[j], (double)r->db[j], dw, db);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_layer_norm_same_bits(void **state)
{
    (void)state;
    static ln_results one, other;
    same_bits_as_one(&one, &other, sizeof one, run_ln, "layer_norm");
}

/* 12 steps of nabla-train's step (784-256-128-10, Adam, batch 100) on the committed subset;
 * the parameters into out. */
#define N_PARAMS (784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10)
static void train_steps(int threads, float *out)
{
    assert_int_equal(nb_set_num_threads(threads), NB_OK);
    nb_dataset *train = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    assert_non_null(train);
    const int64_t hidden[] = {256, 128};
    nb_manual_seed(0);
    nb_module *m = trainer_model(784, hidden, 2, 10);
    nb_tensor *p[6];
    assert_int_equal(nb_module_parameters(m, p, 6), 6);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *opt = nb_optim_new(p, 6, &o);
    nb_dataloader_options lo = {.batch_size = 100, .shuffle = true};
    nb_dataloader *dl = nb_dataloader_new(train, &lo);
    double loss;
    int64_t left = 12;
    for (int epoch = 1; left > 0; epoch++)
        assert_int_equal(trainer_epoch(m, opt, dl, epoch, &loss, &left, NULL), NB_OK);
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        size_t n = (size_t)nb_tensor_numel(p[i]);
        memcpy(out + at, nb_tensor_data(p[i]), n * sizeof(float));
        at += n;
    }
    assert_int_equal(at, N_PARAMS);
    nb_dataloader_free(dl);
    nb_optim_free(opt);
    nb_module_free(m);
    nb_dataset_free(train);
}

static void test_training_same_bits(void **state)
{
    (void)state;
    static float one[N_PARAMS], two[N_PARAMS];
    train_steps(1, one);
    train_steps(2, two);
    nb_set_num_threads(1);
    size_t differ = 0;
    for (size_t i = 0; i < N_PARAMS; i++) differ += memcmp(&one[i], &two[i], sizeof(float)) != 0;
    if (differ) fail_msg("%zu of %d parameters differ between 1 and 2 threads", differ, N_PARAMS);
}

/* Program threads that run products at the same time share one pool: each gets the bits
 * of the serial run. */
typedef struct job {
    const product *p;
    results *r;
} job;

static void *product_thread(void *arg)
{
    job *j = arg;
    nb_tensor *a = filled(j->p->m, j->p->k, 1), *b = filled(j->p->k, j->p->n, 2);
    nb_tensor *c = nb_matmul(a, b);
    if (c) memcpy(j->r->c, nb_tensor_data(c), (size_t)(j->p->m * j->p->n) * sizeof(float));
    nb_release(a);
    nb_release(b);
    nb_release(c);
    return NULL;
}

static void test_program_threads_share_pool(void **state)
{
    (void)state;
    static results serial, r[3];
    const product *p = &products[4];
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    job one = {p, &serial};
    product_thread(&one);
    assert_int_equal(nb_set_num_threads(2), NB_OK);
    for (int round = 0; round < 4; round++) {
        pthread_t t[3];
        job j[3];
        for (int i = 0; i < 3; i++) {
            memset(r[i].c, 0, sizeof r[i].c);
            j[i] = (job){p, &r[i]};
            assert_int_equal(pthread_create(&t[i], NULL, product_thread, &j[i]), 0);
        }
        for (int i = 0; i < 3; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < 3; i++)
            assert_memory_equal(r[i].c, serial.c, (size_t)(p->m * p->n) * sizeof(float));
    }
    nb_set_num_threads(1);
}

/* Allocations of one nb_matmul of A [m, k] @ B [k, n] (fresh operands, made before counting),
 * and the product into out. */
static long matmul_allocs(int64_t m, int64_t k, int64_t n, float *out)
{
    nb_tensor *a = filled(m, k, 4), *b = filled(k, n, 5);
    long before = nbt_alloc_count();
    nb_tensor *c = nb_matmul(a, b);
    long made = nbt_alloc_count() - before;
    assert_non_null(c);
    memcpy(out, nb_tensor_data(c), (size_t)(m * n) * sizeof(float));
    nb_release(a);
    nb_release(b);
    nb_release(c);
    return made;
}

/*
 * One thread probes a shape it would cut once (its scratch is one more allocation on the
 * first call), and keeps the verdict; more threads never probe; a probe whose scratch cannot
 * be had leaves the product right and no error, and runs again on the next call. Each case
 * has a shape of its own (9-10 MFLOP, cut in two), as verdicts last for the process.
 */
static void test_probe_once_per_shape(void **state)
{
    (void)state;
    static float one[100 * 300], two[100 * 300];
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    long first = matmul_allocs(100, 150, 300, one);
    long again = matmul_allocs(100, 150, 300, two);
    assert_int_equal(first, again + 1);
    assert_memory_equal(one, two, sizeof one);

    assert_int_equal(nb_set_num_threads(2), NB_OK);
    long first2 = matmul_allocs(100, 151, 300, one);
    assert_int_equal(first2, matmul_allocs(100, 151, 300, two));
    assert_int_equal(first2, again);

    /* the probe's scratch is the call's last allocation: fail it */
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    nb_tensor *a = filled(100, 152, 4), *b = filled(152, 300, 5);
    nbt_fail_alloc_after(again + 1);
    nb_tensor *c = nb_matmul(a, b);
    assert_true(nbt_alloc_failed());
    assert_non_null(c);
    assert_int_equal(nb_last_error()->code, NB_OK);
    memcpy(one, nb_tensor_data(c), sizeof one);
    nb_release(c);
    nbt_fail_alloc_after(0);
    nb_release(a);
    nb_release(b);
    assert_int_equal(matmul_allocs(100, 152, 300, two), again + 1);
    assert_memory_equal(one, two, sizeof one);
    assert_int_equal(matmul_allocs(100, 152, 300, two), again);
    assert_int_equal(nb_set_num_threads(2), NB_OK);
    assert_int_equal(matmul_allocs(100, 152, 300, two), again);
    assert_memory_equal(one, two, sizeof one);
    nb_set_num_threads(1);
}

static void test_num_threads(void **state)
{
    (void)state;
    assert_int_equal(nb_set_num_threads(0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_set_num_threads: n must be >= 1, got 0");
    assert_int_equal(nb_set_num_threads(3), NB_OK);
    assert_int_equal(nb_get_num_threads(), 3);
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    assert_int_equal(nb_get_num_threads(), 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_products_same_bits),   T(test_elementwise_same_bits),
        T(test_rows_same_bits),       T(test_softmax_same_bits),
        T(test_sums_same_bits),       T(test_cross_entropy_same_bits),
        T(test_bce_logits_same_bits), T(test_layer_norm_same_bits),
        T(test_training_same_bits),   T(test_program_threads_share_pool),
        T(test_probe_once_per_shape), T(test_num_threads)};
#undef T
    return cmocka_run_group_tests_name("parallel", tests, NULL, NULL);
}
