/*
 * Gradient check of every op: one table (STYLE.md). Each row names its inputs (shape, how to
 * fill them, whether they require grad) and a function that builds the output from them;
 * nb_gradcheck checks it (with its default tolerances, which fail a derivative 0.5% off) at
 * three seeds, and one backward checks that only the inputs that require grad get a .grad.
 *
 * For L = sum(out ⊙ R), R a fixed random tensor (or, for the rows marked implicit, whose
 * output is 0-d, L = out and backward gets no explicit gradient), the analytic dL/dx from
 * nb_backward is compared, for every input that requires grad, with central differences: one float
 * element at a time is moved by ±h, L is evaluated in double from the float outputs, and the
 * difference is divided by the float step actually taken. Inputs that do not require grad must get
 * no .grad.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "testutil.h"

#define GC_MAX_INPUTS 4

/* How an input is filled. GC_ABSENT (a zero entry) passes NULL in its place. */
typedef enum gc_init {
    GC_ABSENT = 0,
    GC_NORMAL, /* standard normal */
    GC_AWAY,   /* normal pushed away from 0: |x| >= 0.5 (denominators, relu) */
    GC_PROB,   /* uniform in [0.1, 0.9] (targets) */
    GC_POS,    /* uniform in [0.5, 2] (weights) */
} gc_init;

typedef struct gc_input {
    nb_shape shape;
    bool grad;
    gc_init init;
} gc_input;

typedef nb_tensor *(*gc_fn)(nb_tensor *const *x);

typedef struct gc_row {
    const char *name;
    gc_fn f;
    bool implicit; /* a 0-d output: backward with no gradient (taken as 1) */
    gc_input in[GC_MAX_INPUTS];
} gc_row;

/* A shape for a static initializer: S(2, 3) is [2, 3]; S0 is []. */
// clang-format off
#define S(...) {(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}}
#define S0     {0, {0}}
/* Inputs: G requires grad, C is a constant; the suffix says how it is filled. */
#define G(...)  {S(__VA_ARGS__), true, GC_NORMAL}
#define C(...)  {S(__VA_ARGS__), false, GC_NORMAL}
#define GA(...) {S(__VA_ARGS__), true, GC_AWAY}
#define CA(...) {S(__VA_ARGS__), false, GC_AWAY}
#define GP(...) {S(__VA_ARGS__), true, GC_PROB}
#define CP(...) {S(__VA_ARGS__), false, GC_PROB}
#define CW(...) {S(__VA_ARGS__), false, GC_POS}
#define G0      {S0, true, GC_NORMAL}
#define GA0     {S0, true, GC_AWAY}
#define C0      {S0, false, GC_NORMAL}
#define CP0     {S0, false, GC_PROB}
#define NONE    {S0, false, GC_ABSENT}
/* A row: name, function, inputs. ROW_IMPLICIT: a 0-d output, backward with no gradient. */
#define ROW(name, f, ...)          {name, f, false, {__VA_ARGS__}}
#define ROW_IMPLICIT(name, f, ...) {name, f, true, {__VA_ARGS__}}
// clang-format on

/* ---- the functions the rows differentiate ---------------------------------------------- */

#include "gradcheck/elementwise.h"
#include "gradcheck/reduce.h"
#include "gradcheck/shape.h"
#include "gradcheck/linalg_loss.h"
#include "gradcheck/pool.h"
#include "gradcheck/conv.h"

/* ---- the table: every family's rows -------------------------------------------------- */

static const struct {
    const gc_row *rows;
    size_t n;
} tables[] = {
#define TABLE(t)                                                                                   \
    {                                                                                              \
        t, sizeof t / sizeof t[0]                                                                  \
    }
    TABLE(rows_elementwise), TABLE(rows_reduce), TABLE(rows_shape),
    TABLE(rows_linalg_loss), TABLE(rows_pool),   TABLE(rows_conv),
#undef TABLE
};

/* ---- the check ------------------------------------------------------------------------- */

static nb_tensor *make_input(const gc_row *row, int i)
{
    const gc_input *in = &row->in[i];
    bool uniform = in->init == GC_PROB || in->init == GC_POS;
    nb_tensor *t = uniform ? nb_rand(in->shape) : nb_randn(in->shape);
    if (!t) fail_msg("%s: input %d: %s", row->name, i, nb_last_error()->message);
    float *d = nb_tensor_data(t);
    for (int64_t k = 0; k < nb_tensor_numel(t); k++) {
        switch (in->init) {
        case GC_AWAY:
            d[k] = copysignf(0.5f + 0.5f * fabsf(d[k]), d[k]);
            break;
        case GC_PROB:
            d[k] = 0.1f + 0.8f * d[k];
            break;
        case GC_POS:
            d[k] = 0.5f + 1.5f * d[k];
            break;
        case GC_NORMAL:
        case GC_ABSENT:
            break;
        }
    }
    if (in->grad && !nb_requires_grad_(t, true))
        fail_msg("%s: input %d: %s", row->name, i, nb_last_error()->message);
    return t;
}

/* nb_gradcheck's function: the row's output. */
static nb_tensor *row_output(nb_tensor *const *x, void *ctx)
{
    const gc_row *row = ctx;
    return row->f(x);
}

/* The row at one seed: nb_gradcheck, then one backward that fills .grad only where asked. */
static void run_seed(const gc_row *row, uint64_t seed)
{
    nb_manual_seed(seed);
    nb_tensor *x[GC_MAX_INPUTS] = {NULL};
    for (int i = 0; i < GC_MAX_INPUTS; i++)
        if (row->in[i].init != GC_ABSENT) x[i] = make_input(row, i);
    if (nb_gradcheck(row_output, (void *)(uintptr_t)row, x, GC_MAX_INPUTS, NULL) != NB_OK)
        fail_msg("%s (seed %llu): %s", row->name, (unsigned long long)seed,
                 nb_last_error()->message);

    nb_scope *scope = nb_scope_begin();
    nb_tensor *out = row->f(x);
    if (!out || !nb_tensor_grad_fn(out)) fail_msg("%s: the output records no graph", row->name);
    if (row->implicit) assert_int_equal(nb_tensor_ndim(out), 0);
    nb_tensor *r = row->implicit ? NULL : nb_randn_like(out);
    if (nb_backward(out, r, false) != NB_OK)
        fail_msg("%s: nb_backward: %s", row->name, nb_last_error()->message);
    assert_int_equal(nb_scope_end(scope), NB_OK);
    for (int i = 0; i < GC_MAX_INPUTS; i++) {
        if (!x[i]) continue;
        nb_tensor *g = nb_tensor_grad(x[i]);
        if (row->in[i].grad && (!g || nb_tensor_numel(g) != nb_tensor_numel(x[i])))
            fail_msg("%s: input %d requires grad but got no .grad of its shape", row->name, i);
        if (!row->in[i].grad && g)
            fail_msg("%s: input %d does not require grad but got a .grad", row->name, i);
        nb_release(x[i]);
    }
}

static void run_row(void **state)
{
    const gc_row *row = *state;
    for (uint64_t seed = 0; seed < 3; seed++) run_seed(row, seed); /* stable across seeds */
}

/* x·1.005 − x·0.005 detached: the value is x, the analytic derivative 1.005 (0.5% off). */
static nb_tensor *off_by_half_percent(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    return nb_add(nb_mul_scalar(x[0], 1.005f), nb_detach(nb_mul_scalar(x[0], -0.005f)));
}

static nb_tensor *same(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    return nb_mul_scalar(x[0], 1.0f);
}

static nb_tensor *returns_null(nb_tensor *const *x, void *ctx)
{
    (void)x;
    (void)ctx;
    return NULL;
}

static nb_tensor *constant(nb_tensor *const *x, void *ctx)
{
    (void)x;
    return nb_ones(*(const nb_shape *)ctx);
}

/* Changes ctx after the product saved it: the analytic pass fails. */
static nb_tensor *changes_saved(nb_tensor *const *x, void *ctx)
{
    nb_tensor *y = nb_mul(x[0], ctx);
    NB_NO_GRAD
    {
        nb_add_scalar_(ctx, 0.0f);
    }
    return y;
}

/* The tolerance catches a derivative 0.5% off; every error is reported with its message, which
 * names nb_gradcheck also where its backward fails. */
static void test_gradcheck_catches(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(3, 4)), true);
    nb_error_clear();
    assert_int_equal(nb_gradcheck(off_by_half_percent, NULL, &x, 1, NULL), NB_ECHECK);
    assert_error(NB_ECHECK, "nb_gradcheck: Jacobian mismatch for input 0, element ");
    assert_non_null(strstr(nb_last_error()->message, "analytic "));
    assert_non_null(strstr(nb_last_error()->message, "numeric "));
    assert_int_equal(nb_gradcheck(same, NULL, &x, 1, NULL), NB_OK);
    assert_null(nb_tensor_grad(x)); /* .grad untouched */
    NB_NO_GRAD
    { /* the analytic pass turns grad mode on, and the caller's mode comes back */
        assert_int_equal(nb_gradcheck(same, NULL, &x, 1, NULL), NB_OK);
        assert_false(nb_is_grad_enabled());
    }

    nb_tensor *c = nb_randn(NB_SHAPE(2));
    assert_int_equal(nb_gradcheck(same, NULL, &c, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: no input requires grad");
    assert_int_equal(nb_gradcheck(NULL, NULL, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: argument 'f' is NULL");
    assert_int_equal(nb_gradcheck(same, NULL, &x, 0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: between 1 and 64 inputs are needed, got 0");
    nb_gradcheck_options bad = {0, 1e-4, 1e-3};
    assert_int_equal(nb_gradcheck(same, NULL, &x, 1, &bad), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: eps must be > 0 and the tolerances >= 0");
    assert_int_equal(nb_gradcheck(returns_null, NULL, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: the function returned NULL");
    nb_shape s = NB_SHAPE(2);
    assert_int_equal(nb_gradcheck(constant, &s, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: the function's output does not require grad");
    nb_tensor *y = nb_mul_scalar(x, 2.0f);
    assert_int_equal(nb_gradcheck(same, NULL, &y, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: input 0 is not a leaf");
    nb_release(y);
    nb_tensor *k = nb_ones(NB_SHAPE(3, 4));
    assert_int_equal(nb_gradcheck(changes_saved, k, &x, 1, NULL), NB_ESTATE);
    nb_release(k);
    assert_error(NB_ESTATE, "nb_gradcheck: one of the variables needed for gradient computation "
                            "has been modified by an inplace operation");
    nb_release(c);
    nb_release(x);
}

static nb_tensor *sqrt_of(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    return nb_sqrt(x[0]);
}

/* [exp(100·x0), x1·detach(x1)]: x0 = 0.887 puts exp's overflow inside the step, so its
 * numeric derivative is infinite (as the analytic one); x1's analytic derivative is half the
 * true one. */
static nb_tensor *overflow_and_wrong(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    nb_tensor *a = nb_slice(x[0], 0, 0, 1, 1), *b = nb_slice(x[0], 0, 1, 2, 1);
    nb_tensor *p[2] = {nb_exp(nb_mul_scalar(a, 100.0f)), nb_mul(b, nb_detach(b))};
    return nb_cat(p, 2, 0);
}

/* As torch.autograd.gradcheck (torch.allclose without equal_nan), a NaN gradient fails even
 * where both sides are NaN, and an infinite one neither passes against a finite one nor
 * widens the other elements' tolerance. */
static void test_gradcheck_non_finite(void **state)
{
    (void)state;
    nb_tensor *neg = nb_requires_grad_(nb_from_data((float[]){-1.0f, -4.0f}, NB_SHAPE(2)), true);
    assert_int_equal(nb_gradcheck(sqrt_of, NULL, &neg, 1, NULL), NB_ECHECK);
    assert_error(NB_ECHECK, "nb_gradcheck: Jacobian mismatch for input 0, element 0 (index [0]): "
                            "analytic ");
    assert_non_null(strstr(nb_last_error()->message, "nan, numeric ")); /* "-nan" on glibc */
    nb_tensor *pos = nb_requires_grad_(nb_from_data((float[]){1.0f, 4.0f}, NB_SHAPE(2)), true);
    assert_int_equal(nb_gradcheck(sqrt_of, NULL, &pos, 1, NULL), NB_OK);
    nb_tensor *x = nb_requires_grad_(nb_from_data((float[]){0.887f, 1.0f}, NB_SHAPE(2)), true);
    assert_int_equal(nb_gradcheck(overflow_and_wrong, NULL, &x, 1, NULL), NB_ECHECK);
    assert_error(NB_ECHECK, "nb_gradcheck: Jacobian mismatch for input 0, element 1 (index [1])");
    nb_release(x);
    nb_release(pos);
    nb_release(neg);
}

int main(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) n += tables[t].n;
    struct CMUnitTest *tests = calloc(n + 2, sizeof *tests);
    if (!tests) return 1;
    size_t k = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (size_t i = 0; i < tables[t].n; i++, k++)
            tests[k] =
                (struct CMUnitTest){tables[t].rows[i].name, run_row, nbt_setup_counting,
                                    nbt_teardown_counting, (void *)(uintptr_t)&tables[t].rows[i]};
    tests[n] = (struct CMUnitTest){"gradcheck catches a 0.5% error", test_gradcheck_catches,
                                   nbt_setup_counting, nbt_teardown_counting, NULL};
    tests[n + 1] = (struct CMUnitTest){"gradcheck fails on NaN and unequal infinities",
                                       test_gradcheck_non_finite, nbt_setup_counting,
                                       nbt_teardown_counting, NULL};
    int failed = _cmocka_run_group_tests("gradcheck", tests, n + 2, NULL, NULL);
    free(tests);
    return failed;
}
