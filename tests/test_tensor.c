/*
 * Tensors: creation (with PyTorch's results for arange/linspace), alignment, access, views
 * that share storage and version, copies (transpose/permute), and every error path with its
 * message, including NULL arguments and NULL propagation.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "data/range_ref.h"

/* ---- helpers --------------------------------------------------------------------------- */

static void check_shape(const nb_tensor *t, nb_shape want, const char *file, int line)
{
    if (!t) fail_msg("%s:%d: tensor is NULL (%s)", file, line, nb_last_error()->message);
    if (nb_tensor_ndim(t) != want.ndim)
        fail_msg("%s:%d: ndim %d, want %d", file, line, nb_tensor_ndim(t), want.ndim);
    const int64_t *dims = nb_tensor_shape(t);
    int64_t numel = 1;
    for (int i = 0; i < want.ndim; i++) {
        if (dims[i] != want.dims[i])
            fail_msg("%s:%d: dim %d is %lld, want %lld", file, line, i, (long long)dims[i],
                     (long long)want.dims[i]);
        numel *= want.dims[i];
    }
    if (nb_tensor_numel(t) != numel)
        fail_msg("%s:%d: numel %lld, want %lld", file, line, (long long)nb_tensor_numel(t),
                 (long long)numel);
}
#define assert_shape(t, shape) check_shape((t), (shape), __FILE__, __LINE__)

/* Assert t's values equal want exactly (n of them). */
static void check_values(const nb_tensor *t, const float *want, int64_t n, const char *file,
                         int line)
{
    if (!t) fail_msg("%s:%d: tensor is NULL (%s)", file, line, nb_last_error()->message);
    if (nb_tensor_numel(t) != n)
        fail_msg("%s:%d: numel %lld, want %lld", file, line, (long long)nb_tensor_numel(t),
                 (long long)n);
    nbt_assert_close(nb_tensor_data_const(t), want, n, 0.0, 0.0, file, line);
}
#define assert_values(t, ...)                                                                      \
    check_values((t), (const float[]){__VA_ARGS__},                                                \
                 (int64_t)(sizeof((const float[]){__VA_ARGS__}) / sizeof(float)), __FILE__,        \
                 __LINE__)

/* 0, 1, 2, ... in the given shape. */
static nb_tensor *seq(nb_shape shape)
{
    int64_t n = 1;
    for (int i = 0; i < shape.ndim; i++) n *= shape.dims[i];
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)i;
    nb_tensor *t = nb_from_data(v, shape);
    free(v);
    assert_non_null(t);
    return t;
}

static float get(const nb_tensor *t, const int64_t *index)
{
    float v = NAN;
    assert_int_equal(nb_tensor_get(t, index, &v), NB_OK);
    return v;
}

/* ---- creation -------------------------------------------------------------------------- */

static void test_creation(void **state)
{
    (void)state;
    nb_tensor *t = nb_empty(NB_SHAPE(2, 3));
    assert_shape(t, NB_SHAPE(2, 3));
    assert_non_null(nb_tensor_data(t));
    nb_release(t);

    t = nb_zeros(NB_SHAPE(2, 2));
    assert_values(t, 0, 0, 0, 0);
    assert_false(signbit(nb_tensor_data(t)[0]));
    nb_release(t);

    t = nb_ones(NB_SHAPE(3));
    assert_values(t, 1, 1, 1);
    nb_release(t);

    t = nb_full(NB_SHAPE(1, 2), -2.5f);
    assert_shape(t, NB_SHAPE(1, 2));
    assert_values(t, -2.5f, -2.5f);
    nb_release(t);

    t = nb_full(NB_SHAPE(2), -0.0f); /* the sign of zero is kept */
    assert_true(signbit(nb_tensor_data(t)[0]) && signbit(nb_tensor_data(t)[1]));
    nb_release(t);

    t = nb_scalar(4.25f);
    assert_shape(t, NB_SHAPE0);
    assert_int_equal(nb_tensor_numel(t), 1);
    float v = 0;
    assert_int_equal(nb_tensor_item(t, &v), NB_OK);
    assert_true(v == 4.25f);
    nb_release(t);

    /* 0-d zeros/ones and empty tensors (a zero dimension) */
    t = nb_ones(NB_SHAPE0);
    assert_shape(t, NB_SHAPE0);
    assert_values(t, 1);
    nb_release(t);
    t = nb_zeros(NB_SHAPE(0));
    assert_shape(t, NB_SHAPE(0));
    assert_int_equal(nb_tensor_numel(t), 0);
    nb_release(t);
    t = nb_ones(NB_SHAPE(3, 0, 2));
    assert_shape(t, NB_SHAPE(3, 0, 2));
    nb_release(t);

    const float data[] = {1, 2, 3, 4, 5, 6};
    t = nb_from_data(data, NB_SHAPE(2, 3));
    assert_shape(t, NB_SHAPE(2, 3));
    assert_values(t, 1, 2, 3, 4, 5, 6);
    assert_ptr_not_equal(nb_tensor_data_const(t), data); /* a copy */
    nb_release(t);
    t = nb_from_data(NULL, NB_SHAPE(0, 4)); /* no data needed for an empty tensor */
    assert_shape(t, NB_SHAPE(0, 4));
    nb_release(t);
    t = nb_from_data(data, NB_SHAPE0);
    assert_shape(t, NB_SHAPE0);
    assert_values(t, 1);
    nb_release(t);

    /* nb_shape_make copies ndim sizes */
    const int64_t dims[] = {4, 1, 2};
    nb_shape s = nb_shape_make(3, dims);
    assert_int_equal(s.ndim, 3);
    assert_int_equal(s.dims[0], 4);
    assert_int_equal(s.dims[2], 2);
    t = nb_zeros(nb_shape_make(0, NULL));
    assert_shape(t, NB_SHAPE0);
    nb_release(t);
    assert_int_equal(nb_last_error()->code, NB_OK);
}

static void test_arange(void **state)
{
    (void)state;
    nb_tensor *t = nb_arange(0, 5, 1);
    assert_shape(t, NB_SHAPE(5));
    assert_values(t, 0, 1, 2, 3, 4);
    nb_release(t);

    /* torch.arange(0, 1, 0.1): 10 elements, computed in double then rounded */
    t = nb_arange(0, 1, 0.1);
    assert_shape(t, NB_SHAPE(10));
    for (int i = 0; i < 10; i++) assert_true(nb_tensor_data(t)[i] == (float)(0.1 * i));
    nb_release(t);

    /* torch.arange(0, 0.3, 0.1) has 3 elements, torch.arange(1, 1.3, 0.1) has 4 */
    t = nb_arange(0, 0.3, 0.1);
    assert_shape(t, NB_SHAPE(3));
    nb_release(t);
    t = nb_arange(1, 1.3, 0.1);
    assert_shape(t, NB_SHAPE(4));
    assert_values(t, 1.0f, (float)(1 + 0.1), (float)(1 + 0.2), (float)(1 + 0.1 * 3));
    nb_release(t);

    t = nb_arange(1, 2.5, 0.5);
    assert_values(t, 1, 1.5f, 2);
    nb_release(t);
    t = nb_arange(-1, 1, 0.25);
    assert_values(t, -1, -0.75f, -0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f);
    nb_release(t);

    /* negative steps */
    t = nb_arange(10, 0, -3);
    assert_values(t, 10, 7, 4, 1);
    nb_release(t);
    t = nb_arange(1, -1, -0.5);
    assert_values(t, 1, 0.5f, 0, -0.5f);
    nb_release(t);

    /* empty ranges */
    t = nb_arange(3, 3, 1);
    assert_shape(t, NB_SHAPE(0));
    nb_release(t);
    t = nb_arange(3, 3, -1);
    assert_shape(t, NB_SHAPE(0));
    nb_release(t);

    /* errors */
    assert_null(nb_arange(0, 1, 0));
    assert_error(NB_EINVAL, "nb_arange: step must be nonzero");
    assert_null(nb_arange(0, 5, -1));
    assert_error(NB_EINVAL, "nb_arange: upper bound and larger bound inconsistent with step sign");
    assert_null(nb_arange(5, 0, 1));
    assert_error(NB_EINVAL, "inconsistent with step sign");
    assert_null(nb_arange(0, (double)INFINITY, 1));
    assert_error(NB_EINVAL, "nb_arange: unsupported range");
    assert_null(nb_arange((double)NAN, 1, 1));
    assert_error(NB_EINVAL, "nb_arange: unsupported range");
    assert_null(nb_arange(0, 1e30, 1e-30));
    assert_error(NB_ERANGE, "nb_arange: too many elements");
}

static void test_linspace(void **state)
{
    (void)state;
    nb_tensor *t = nb_linspace(0, 1, 5);
    assert_values(t, 0, 0.25f, 0.5f, 0.75f, 1);
    nb_release(t);

    t = nb_linspace(10, 0, 6);
    assert_values(t, 10, 8, 6, 4, 2, 0);
    nb_release(t);

    /* torch.linspace(-1, 1, 4): the ends are exact */
    t = nb_linspace(-1, 1, 4);
    assert_shape(t, NB_SHAPE(4));
    const float *d = nb_tensor_data_const(t);
    assert_true(d[0] == -1.0f && d[3] == 1.0f);
    assert_close(d, ((const float[]){-1.0f, -1.0f / 3, 1.0f / 3, 1.0f}), 4, 1e-7, 0);
    nb_release(t);

    /* torch.linspace(0, 1, 10): both halves, the last element exactly end */
    t = nb_linspace(0, 1, 10);
    d = nb_tensor_data_const(t);
    for (int i = 0; i < 10; i++)
        assert_true(d[i] == (i < 5 ? (float)(i / 9.0) : (float)(1.0 - (9 - i) / 9.0)));
    assert_true(d[9] == 1.0f);
    nb_release(t);

    t = nb_linspace(3, 7, 1); /* steps = 1: just start */
    assert_shape(t, NB_SHAPE(1));
    assert_values(t, 3);
    nb_release(t);

    t = nb_linspace(3, 7, 0); /* steps = 0: empty */
    assert_shape(t, NB_SHAPE(0));
    nb_release(t);

    t = nb_linspace(2, 2, 3);
    assert_values(t, 2, 2, 2);
    nb_release(t);

    assert_null(nb_linspace(0, 1, -1));
    assert_error(NB_EINVAL, "nb_linspace: number of steps must be non-negative, got -1");

    /* an end past float's range is refused, as PyTorch refuses it; inf and NaN are kept */
    assert_null(nb_linspace(1e300, 1, 3));
    assert_error(NB_ERANGE,
                 "nb_linspace: start (1e+300) cannot be converted to type float without overflow");
    assert_null(nb_linspace(0, -3.4028236e38, 1));
    assert_error(NB_ERANGE,
                 "nb_linspace: end (-3.40282e+38) cannot be converted to type float without "
                 "overflow");
    t = nb_linspace(1e300, 1, 0); /* nothing to convert */
    assert_shape(t, NB_SHAPE(0));
    nb_release(t);
    t = nb_linspace((double)-FLT_MAX, 1, 2);
    assert_values(t, -FLT_MAX, 1);
    nb_release(t);
    t = nb_linspace(0, (double)INFINITY, 2); /* PyTorch: tensor([nan, nan]) (its step is inf) */
    d = nb_tensor_data_const(t);
    assert_true(isnan(d[0]) && isnan(d[1]));
    nb_release(t);
}

/* Every case of data/range_ref.h (torch.arange / torch.linspace in float32, bit for bit):
 * PyTorch's kernels fill runs of 16 elements from a base per 8, the rest one at a time. */
static void test_range_bits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof range_ref_cases / sizeof *range_ref_cases; i++) {
        const range_ref_case *c = &range_ref_cases[i];
        nb_tensor *t = c->op == RANGE_REF_ARANGE ? nb_arange(c->start, c->end, c->c)
                                                 : nb_linspace(c->start, c->end, (int64_t)c->c);
        assert_shape(t, NB_SHAPE(c->numel));
        const float *d = nb_tensor_data_const(t);
        for (int64_t k = 0; k < c->numel; k++) {
            uint32_t b;
            memcpy(&b, &d[k], sizeof b);
            if (b != c->bits[k])
                fail_msg("%s(%g, %g, %g)[%lld]: 0x%08x, PyTorch 0x%08x",
                         c->op == RANGE_REF_ARANGE ? "arange" : "linspace", c->start, c->end, c->c,
                         (long long)k, (unsigned)b, (unsigned)c->bits[k]);
        }
        nb_release(t);
    }
}

static void test_like_and_clone(void **state)
{
    (void)state;
    nb_tensor *x = seq(NB_SHAPE(2, 3));

    nb_tensor *e = nb_empty_like(x);
    assert_shape(e, NB_SHAPE(2, 3));
    assert_false(nb_tensor_shares_storage(e, x));
    nb_release(e);

    nb_tensor *z = nb_zeros_like(x);
    assert_shape(z, NB_SHAPE(2, 3));
    assert_values(z, 0, 0, 0, 0, 0, 0);
    nb_release(z);

    nb_tensor *o = nb_ones_like(x);
    assert_values(o, 1, 1, 1, 1, 1, 1);
    nb_release(o);

    nb_tensor *f = nb_full_like(x, 7.0f);
    assert_shape(f, NB_SHAPE(2, 3));
    assert_values(f, 7, 7, 7, 7, 7, 7);
    nb_release(f);

    nb_tensor *s = nb_scalar(1.0f);
    f = nb_full_like(s, 3.0f);
    assert_shape(f, NB_SHAPE0);
    assert_values(f, 3);
    nb_release(f);
    nb_release(s);

    /* clone: same values, new storage, its own version counter, a leaf without grad */
    nb_tensor_bump_version(x);
    nb_tensor_bump_version(x);
    assert_int_equal(nb_tensor_version(x), 2);
    nb_tensor *c = nb_clone(x);
    assert_shape(c, NB_SHAPE(2, 3));
    assert_values(c, 0, 1, 2, 3, 4, 5);
    assert_false(nb_tensor_shares_storage(c, x));
    assert_int_equal(nb_tensor_version(c), 0);
    assert_true(nb_tensor_is_leaf(c));
    assert_false(nb_tensor_requires_grad(c));

    assert_int_equal(nb_tensor_set(c, (const int64_t[]){0, 0}, 100), NB_OK);
    assert_int_equal(nb_tensor_version(c), 1);
    assert_int_equal(nb_tensor_version(x), 2);
    assert_true(get(x, (const int64_t[]){0, 0}) == 0.0f);
    assert_int_equal(nb_tensor_set(x, (const int64_t[]){1, 2}, -1), NB_OK);
    assert_true(get(c, (const int64_t[]){1, 2}) == 5.0f);
    assert_int_equal(nb_tensor_version(c), 1);
    nb_release(c);

    /* a clone of a requires-grad tensor does not require grad here (documented) */
    nb_requires_grad_(x, true);
    c = nb_clone(x);
    assert_false(nb_tensor_requires_grad(c));
    nb_release(c);

    /* clone of a view copies just the view */
    nb_tensor *v = nb_slice(x, 0, 1, 2, 1);
    c = nb_clone(v);
    assert_shape(c, NB_SHAPE(1, 3));
    assert_values(c, 3, 4, -1);
    nb_release(c);
    nb_release(v);
    nb_release(x);
}

static void test_alignment(void **state)
{
    (void)state;
    const nb_shape shapes[] = {NB_SHAPE0,    NB_SHAPE(0),    NB_SHAPE(1),       NB_SHAPE(3),
                               NB_SHAPE(17), NB_SHAPE(5, 3), NB_SHAPE(2, 3, 7), NB_SHAPE(1000)};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        nb_tensor *t[6] = {nb_empty(shapes[i]),
                           nb_zeros(shapes[i]),
                           nb_ones(shapes[i]),
                           nb_full(shapes[i], 2.0f),
                           NULL,
                           NULL};
        t[4] = nb_zeros_like(t[0]);
        t[5] = nb_clone(t[2]);
        for (int k = 0; k < 6; k++) {
            assert_non_null(t[k]);
            assert_int_equal((uintptr_t)nb_tensor_data(t[k]) % 64, 0);
            nb_release(t[k]);
        }
    }
    nb_tensor *a = nb_arange(0, 9, 1), *l = nb_linspace(0, 1, 3), *s = nb_scalar(1);
    nb_tensor *m = seq(NB_SHAPE(3, 5)), *tr = nb_transpose(m, 0, 1);
    nb_tensor *all[] = {a, l, s, m, tr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_non_null(all[i]);
        assert_int_equal((uintptr_t)nb_tensor_data(all[i]) % 64, 0);
        nb_release(all[i]);
    }
}

/* ---- access ---------------------------------------------------------------------------- */

static void test_access(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(2, 3, 4));
    assert_int_equal(nb_tensor_ndim(t), 3);
    assert_int_equal(nb_tensor_numel(t), 24);
    const int64_t *shape = nb_tensor_shape(t);
    assert_int_equal(shape[0], 2);
    assert_int_equal(shape[1], 3);
    assert_int_equal(shape[2], 4);
    nb_shape s = nb_tensor_size(t);
    assert_int_equal(s.ndim, 3);
    assert_int_equal(s.dims[1], 3);

    assert_int_equal(nb_tensor_dim_size(t, 0), 2);
    assert_int_equal(nb_tensor_dim_size(t, 2), 4);
    assert_int_equal(nb_tensor_dim_size(t, -1), 4);
    assert_int_equal(nb_tensor_dim_size(t, -3), 2);
    assert_int_equal(nb_last_error()->code, NB_OK);
    assert_int_equal(nb_tensor_dim_size(t, 3), -1);
    assert_error(NB_EINVAL, "nb_tensor_dim_size: dimension out of range (expected to be in range "
                            "of [-3, 2], but got 3)");
    assert_int_equal(nb_tensor_dim_size(t, -4), -1);
    assert_error(NB_EINVAL, "but got -4");

    /* get with positive and negative indices */
    assert_true(get(t, (const int64_t[]){0, 0, 0}) == 0.0f);
    assert_true(get(t, (const int64_t[]){1, 2, 3}) == 23.0f);
    assert_true(get(t, (const int64_t[]){-1, -1, -1}) == 23.0f);
    assert_true(get(t, (const int64_t[]){-2, 1, -4}) == 4.0f);
    assert_true(get(t, (const int64_t[]){1, -3, 2}) == 14.0f);

    /* set bumps the version */
    assert_int_equal(nb_tensor_version(t), 0);
    assert_int_equal(nb_tensor_set(t, (const int64_t[]){-1, 0, -1}, 42.0f), NB_OK);
    assert_int_equal(nb_tensor_version(t), 1);
    assert_true(get(t, (const int64_t[]){1, 0, 3}) == 42.0f);
    assert_true(nb_tensor_data(t)[15] == 42.0f);

    /* writes through the data pointer, recorded by hand */
    nb_tensor_data(t)[0] = -1.0f;
    nb_tensor_bump_version(t);
    assert_int_equal(nb_tensor_version(t), 2);
    assert_true(get(t, (const int64_t[]){0, 0, 0}) == -1.0f);
    assert_ptr_equal(nb_tensor_data_const(t), nb_tensor_data(t));
    assert_true(nb_tensor_shares_storage(t, t));
    nb_release(t);

    /* item */
    nb_tensor *one = nb_full(NB_SHAPE(1, 1), 3.5f);
    float v = 0;
    assert_int_equal(nb_tensor_item(one, &v), NB_OK);
    assert_true(v == 3.5f);
    nb_release(one);

    /* 0-d: ndim 0, numel 1, get/set with no index, dim_size fails */
    nb_tensor *s0 = nb_scalar(2.0f);
    assert_int_equal(nb_tensor_ndim(s0), 0);
    assert_int_equal(nb_tensor_numel(s0), 1);
    assert_int_equal(nb_tensor_size(s0).ndim, 0);
    assert_int_equal(nb_tensor_get(s0, NULL, &v), NB_OK);
    assert_true(v == 2.0f);
    assert_int_equal(nb_tensor_set(s0, NULL, 5.0f), NB_OK);
    assert_int_equal(nb_tensor_version(s0), 1);
    assert_int_equal(nb_tensor_item(s0, &v), NB_OK);
    assert_true(v == 5.0f);
    assert_int_equal(nb_tensor_dim_size(s0, 0), -1);
    assert_error(NB_EINVAL, "nb_tensor_dim_size: dimension out of range");
    nb_release(s0);

    /* retain / release */
    nb_tensor *r = nb_zeros(NB_SHAPE(2));
    assert_ptr_equal(nb_retain(r), r);
    nb_release(r);
    assert_int_equal(nb_tensor_numel(r), 2); /* still alive */
    nb_release(r);

    /* threads setting */
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    assert_int_equal(nb_get_num_threads(), 1);
    assert_int_equal(nb_set_num_threads(0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_set_num_threads: n must be >= 1, got 0");
    assert_int_equal(nb_set_num_threads(-3), NB_EINVAL);
    assert_error(NB_EINVAL, "got -3");
    assert_int_equal(nb_get_num_threads(), 1);
}

static void test_max_dims(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(2, 1, 2, 1, 2, 1, 2, 1));
    assert_shape(t, NB_SHAPE(2, 1, 2, 1, 2, 1, 2, 1));
    assert_int_equal(nb_tensor_numel(t), 16);
    assert_true(get(t, (const int64_t[]){1, 0, 1, 0, 1, 0, 1, 0}) == 15.0f);
    assert_true(get(t, (const int64_t[]){1, 0, 0, -1, 1, 0, 0, 0}) == 10.0f);

    assert_null(nb_unsqueeze(t, 0));
    assert_error(NB_EINVAL, "nb_unsqueeze: a tensor can have at most 8 dimensions");

    /* reverse all 8 dims (a copy) */
    nb_tensor *p = nb_permute(t, NB_DIMS(7, 6, 5, 4, 3, 2, 1, 0));
    assert_shape(p, NB_SHAPE(1, 2, 1, 2, 1, 2, 1, 2));
    /* p[0, b0, 0, b1, 0, b2, 0, b3] = t[b3, 0, b2, 0, b1, 0, b0, 0] = 8 b3 + 4 b2 + 2 b1 + b0 */
    assert_values(p, 0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15);
    nb_release(p);

    nb_tensor *sq = nb_squeeze(t, NB_DIMS_ALL);
    assert_shape(sq, NB_SHAPE(2, 2, 2, 2));
    nb_tensor *f = nb_flatten(t, 0, -1);
    assert_shape(f, NB_SHAPE(16));
    nb_release(f);
    nb_release(sq);
    nb_release(t);

    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_null(nb_zeros(nb_shape_make(9, nine)));
    assert_error(NB_EINVAL, "nb_zeros: number of dimensions 9 is outside [0, 8]");
    assert_null(nb_empty(nb_shape_make(9, nine)));
    assert_error(NB_EINVAL, "nb_empty: number of dimensions 9");
    assert_null(nb_from_data((const float[]){1}, nb_shape_make(9, nine)));
    assert_error(NB_EINVAL, "nb_from_data: number of dimensions 9");
    assert_null(nb_ones(nb_shape_make(-1, nine)));
    assert_error(NB_EINVAL, "nb_ones: number of dimensions -1");

    nb_tensor *x = seq(NB_SHAPE(4));
    assert_null(nb_reshape(x, nb_shape_make(9, nine)));
    assert_error(NB_EINVAL, "nb_reshape: number of dimensions 9");
    nb_release(x);
}

/* ---- views ----------------------------------------------------------------------------- */

static void test_reshape_view(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(2, 3));

    nb_tensor *r = nb_reshape(t, NB_SHAPE(3, 2));
    assert_shape(r, NB_SHAPE(3, 2));
    assert_values(r, 0, 1, 2, 3, 4, 5);
    assert_true(nb_tensor_shares_storage(r, t));
    assert_ptr_equal(nb_tensor_data(r), nb_tensor_data(t));

    /* a write through the view is seen by the base, and the version counter is shared */
    assert_int_equal(nb_tensor_set(r, (const int64_t[]){2, 1}, 50), NB_OK);
    assert_true(get(t, (const int64_t[]){1, 2}) == 50.0f);
    assert_int_equal(nb_tensor_version(t), 1);
    assert_int_equal(nb_tensor_version(r), 1);
    nb_tensor_bump_version(t);
    assert_int_equal(nb_tensor_version(r), 2);

    /* -1 is inferred */
    nb_tensor *a = nb_reshape(t, NB_SHAPE(-1));
    assert_shape(a, NB_SHAPE(6));
    nb_tensor *b = nb_view(t, NB_SHAPE(-1, 2));
    assert_shape(b, NB_SHAPE(3, 2));
    nb_tensor *c = nb_view(t, NB_SHAPE(1, -1, 1));
    assert_shape(c, NB_SHAPE(1, 6, 1));
    assert_true(nb_tensor_shares_storage(c, t));
    nb_release(a);
    nb_release(b);
    nb_release(c);

    /* a view keeps the storage alive after its base is gone */
    nb_tensor *s = nb_reshape(t, NB_SHAPE(6));
    nb_release(t);
    nb_release(r);
    assert_values(s, 0, 1, 2, 3, 4, 50);

    /* to and from 0-d */
    nb_tensor *one = nb_ones(NB_SHAPE(1, 1));
    nb_tensor *z = nb_reshape(one, NB_SHAPE0);
    assert_shape(z, NB_SHAPE0);
    nb_tensor *back = nb_view(z, NB_SHAPE(-1));
    assert_shape(back, NB_SHAPE(1));
    nb_release(back);
    nb_release(z);
    nb_release(one);

    /* empty tensors */
    nb_tensor *e = nb_zeros(NB_SHAPE(0, 3));
    nb_tensor *e2 = nb_reshape(e, NB_SHAPE(3, 0, 5));
    assert_shape(e2, NB_SHAPE(3, 0, 5));
    nb_release(e2);
    e2 = nb_reshape(e, NB_SHAPE(-1, 3));
    assert_shape(e2, NB_SHAPE(0, 3));
    nb_release(e2);
    nb_release(e);

    /* errors */
    assert_null(nb_reshape(s, NB_SHAPE(4, 4)));
    assert_error(NB_ESHAPE, "nb_reshape: shape '[4, 4]' is invalid for input of size 6");
    assert_null(nb_view(s, NB_SHAPE(-1, 4)));
    assert_error(NB_ESHAPE, "nb_view: shape '[-1, 4]' is invalid for input of size 6");
    assert_null(nb_reshape(s, NB_SHAPE(-1, -1)));
    assert_error(NB_EINVAL, "nb_reshape: only one dimension can be inferred");
    assert_null(nb_reshape(s, NB_SHAPE(-2, 3)));
    assert_error(NB_EINVAL, "nb_reshape: invalid shape dimension -2");
    assert_null(nb_reshape(s, NB_SHAPE(0, -1)));
    assert_error(NB_ESHAPE, "nb_reshape: shape '[0, -1]' is invalid for input of size 6");
    assert_null(nb_reshape(s, NB_SHAPE(INT64_MAX, 2, -1)));
    assert_error(NB_ERANGE, "nb_reshape: shape has too many elements");
    nb_release(s);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(1, 3, 1, 2));

    nb_tensor *a = nb_squeeze(t, NB_DIMS_ALL);
    assert_shape(a, NB_SHAPE(3, 2));
    assert_values(a, 0, 1, 2, 3, 4, 5);
    assert_true(nb_tensor_shares_storage(a, t));
    nb_release(a);
    /* nb_dims_all() is NB_DIMS_ALL, for C++ */
    assert_int_equal(nb_dims_all().n, NB_DIMS_ALL.n);
    a = nb_squeeze(t, nb_dims_all());
    assert_shape(a, NB_SHAPE(3, 2));
    nb_release(a);

    a = nb_squeeze(t, NB_DIMS(0));
    assert_shape(a, NB_SHAPE(3, 1, 2));
    nb_release(a);
    a = nb_squeeze(t, NB_DIMS(-2));
    assert_shape(a, NB_SHAPE(1, 3, 2));
    nb_release(a);
    a = nb_squeeze(t, NB_DIMS(1)); /* size 3: unchanged, still a view */
    assert_shape(a, NB_SHAPE(1, 3, 1, 2));
    assert_true(nb_tensor_shares_storage(a, t));
    nb_release(a);

    nb_tensor *ones = nb_ones(NB_SHAPE(1, 1));
    a = nb_squeeze(ones, NB_DIMS_ALL);
    assert_shape(a, NB_SHAPE0);
    nb_release(a);
    nb_release(ones);
    nb_tensor *s0 = nb_scalar(1);
    a = nb_squeeze(s0, NB_DIMS(0));
    assert_shape(a, NB_SHAPE0);
    nb_release(a);
    a = nb_squeeze(s0, NB_DIMS(-1));
    assert_shape(a, NB_SHAPE0);
    nb_release(a);

    assert_null(nb_squeeze(t, NB_DIMS(4)));
    assert_error(NB_EINVAL,
                 "nb_squeeze: dimension out of range (expected to be in range of [-4, 3], but "
                 "got 4)");
    assert_null(nb_squeeze(t, NB_DIMS(-5)));
    assert_error(NB_EINVAL, "but got -5");
    assert_null(nb_squeeze(s0, NB_DIMS(1)));
    assert_error(NB_EINVAL, "nb_squeeze: dimension out of range (expected to be in range of [-1, "
                            "0], but got 1)");

    /* unsqueeze at front, back, and negative positions */
    nb_tensor *m = seq(NB_SHAPE(2, 3));
    a = nb_unsqueeze(m, 0);
    assert_shape(a, NB_SHAPE(1, 2, 3));
    assert_true(nb_tensor_shares_storage(a, m));
    nb_release(a);
    a = nb_unsqueeze(m, 2);
    assert_shape(a, NB_SHAPE(2, 3, 1));
    nb_release(a);
    a = nb_unsqueeze(m, 1);
    assert_shape(a, NB_SHAPE(2, 1, 3));
    nb_release(a);
    a = nb_unsqueeze(m, -1);
    assert_shape(a, NB_SHAPE(2, 3, 1));
    nb_release(a);
    a = nb_unsqueeze(m, -3);
    assert_shape(a, NB_SHAPE(1, 2, 3));
    assert_values(a, 0, 1, 2, 3, 4, 5);
    nb_release(a);
    a = nb_unsqueeze(s0, 0);
    assert_shape(a, NB_SHAPE(1));
    nb_release(a);
    a = nb_unsqueeze(s0, -1);
    assert_shape(a, NB_SHAPE(1));
    nb_release(a);

    assert_null(nb_unsqueeze(m, 3));
    assert_error(NB_EINVAL,
                 "nb_unsqueeze: dimension out of range (expected to be in range of [-3, 2], but "
                 "got 3)");
    assert_null(nb_unsqueeze(m, -4));
    assert_error(NB_EINVAL, "but got -4");
    assert_null(nb_unsqueeze(s0, 2));
    assert_error(NB_EINVAL, "[-1, 0], but got 2");

    nb_release(m);
    nb_release(s0);
    nb_release(t);
}

static void test_flatten(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(2, 3, 4));
    nb_tensor *a = nb_flatten(t, 0, -1);
    assert_shape(a, NB_SHAPE(24));
    assert_true(nb_tensor_shares_storage(a, t));
    nb_release(a);
    a = nb_flatten(t, 1, 2);
    assert_shape(a, NB_SHAPE(2, 12));
    nb_release(a);
    a = nb_flatten(t, 0, 1);
    assert_shape(a, NB_SHAPE(6, 4));
    nb_release(a);
    a = nb_flatten(t, -2, -1);
    assert_shape(a, NB_SHAPE(2, 12));
    nb_release(a);
    a = nb_flatten(t, 1, 1);
    assert_shape(a, NB_SHAPE(2, 3, 4));
    nb_release(a);

    nb_tensor *s0 = nb_scalar(3);
    a = nb_flatten(s0, 0, -1);
    assert_shape(a, NB_SHAPE(1));
    assert_values(a, 3);
    nb_release(a);
    nb_release(s0);

    nb_tensor *e = nb_zeros(NB_SHAPE(2, 0, 3));
    a = nb_flatten(e, 1, 2);
    assert_shape(a, NB_SHAPE(2, 0));
    nb_release(a);
    nb_release(e);

    assert_null(nb_flatten(t, 2, 1));
    assert_error(NB_EINVAL, "nb_flatten: start_dim cannot come after end_dim");
    assert_null(nb_flatten(t, 0, 3));
    assert_error(NB_EINVAL,
                 "nb_flatten: dimension out of range (expected to be in range of [-3, 2], but "
                 "got 3)");
    assert_null(nb_flatten(t, -4, 0));
    assert_error(NB_EINVAL, "but got -4");
    nb_release(t);
}

static void test_slice(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(5, 2));

    nb_tensor *a = nb_slice(t, 0, 1, 3, 1);
    assert_shape(a, NB_SHAPE(2, 2));
    assert_values(a, 2, 3, 4, 5);
    assert_true(nb_tensor_shares_storage(a, t));

    /* writes go both ways, and the version is shared */
    assert_int_equal(nb_tensor_set(a, (const int64_t[]){0, 1}, 30), NB_OK);
    assert_true(get(t, (const int64_t[]){1, 1}) == 30.0f);
    assert_int_equal(nb_tensor_version(t), 1);
    assert_int_equal(nb_tensor_set(t, (const int64_t[]){2, 0}, 40), NB_OK);
    assert_true(get(a, (const int64_t[]){1, 0}) == 40.0f);
    assert_int_equal(nb_tensor_version(a), 2);
    nb_release(a);

    a = nb_slice(t, 0, -2, 5, 1); /* negative start */
    assert_values(a, 6, 7, 8, 9);
    nb_release(a);
    a = nb_slice(t, 0, -2, 100, 1); /* clamped end */
    assert_values(a, 6, 7, 8, 9);
    nb_release(a);
    a = nb_slice(t, 0, -100, 1, 1); /* clamped start */
    assert_values(a, 0, 1);
    nb_release(a);
    a = nb_slice(t, 0, 0, -4, 1); /* negative end */
    assert_values(a, 0, 1);
    nb_release(a);
    a = nb_slice(t, 0, 3, 1, 1); /* empty */
    assert_shape(a, NB_SHAPE(0, 2));
    nb_release(a);
    a = nb_slice(t, 0, 7, 9, 1); /* past the end: empty */
    assert_shape(a, NB_SHAPE(0, 2));
    nb_release(a);
    a = nb_slice(t, 0, INT64_MIN, INT64_MAX, 1);
    assert_shape(a, NB_SHAPE(5, 2));
    nb_release(a);
    a = nb_slice(t, 1, 1, 2, INT64_MAX); /* a huge step takes the first element only */
    assert_shape(a, NB_SHAPE(5, 1));
    nb_release(a);
    a = nb_slice(t, 0, 0, INT64_MAX, INT64_MAX);
    assert_shape(a, NB_SHAPE(1, 2));
    assert_values(a, 0, 1);
    nb_release(a);

    /* a slice of a slice */
    a = nb_slice(t, 0, 1, 5, 1);
    nb_tensor *b = nb_slice(a, 0, 1, -1, 1);
    assert_shape(b, NB_SHAPE(2, 2));
    assert_values(b, 40, 5, 6, 7);
    assert_true(nb_tensor_shares_storage(b, t));
    nb_tensor *c = nb_slice(b, 0, -1, 2, 1);
    assert_values(c, 6, 7);
    nb_tensor *r = nb_reshape(c, NB_SHAPE(-1)); /* a view of a slice */
    assert_shape(r, NB_SHAPE(2));
    assert_int_equal(nb_tensor_set(r, (const int64_t[]){-1}, 70), NB_OK);
    assert_true(get(t, (const int64_t[]){3, 1}) == 70.0f);
    nb_release(r);
    nb_release(c);
    nb_release(b);
    nb_release(a);

    nb_tensor *v = nb_arange(0, 4, 1);
    a = nb_slice(v, 0, 1, 3, 1);
    assert_values(a, 1, 2);
    nb_release(a);
    nb_release(v);

    nb_tensor *s0 = nb_scalar(1);
    assert_null(nb_slice(s0, 0, 0, 1, 1));
    assert_error(NB_EINVAL, "nb_slice: slice() cannot be applied to a 0-dim tensor");
    nb_release(s0);
    nb_release(t);
}

static void test_transpose_permute(void **state)
{
    (void)state;
    nb_tensor *m = seq(NB_SHAPE(2, 3));
    nb_tensor *tr = nb_transpose(m, 0, 1);
    assert_shape(tr, NB_SHAPE(3, 2));
    assert_values(tr, 0, 3, 1, 4, 2, 5);
    assert_false(nb_tensor_shares_storage(tr, m));
    assert_int_equal(nb_tensor_set(tr, (const int64_t[]){0, 0}, 9), NB_OK);
    assert_true(get(m, (const int64_t[]){0, 0}) == 0.0f);
    assert_int_equal(nb_tensor_version(m), 0);
    nb_release(tr);

    tr = nb_transpose(m, -1, -2);
    assert_values(tr, 0, 3, 1, 4, 2, 5);
    nb_release(tr);
    tr = nb_transpose(m, 1, 1); /* same dim: a copy */
    assert_shape(tr, NB_SHAPE(2, 3));
    assert_values(tr, 0, 1, 2, 3, 4, 5);
    assert_false(nb_tensor_shares_storage(tr, m));
    nb_release(tr);

    nb_tensor *t3 = seq(NB_SHAPE(2, 3, 4));
    tr = nb_transpose(t3, 0, 2);
    assert_shape(tr, NB_SHAPE(4, 3, 2));
    int64_t bad = 0;
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 2; k++)
                bad += get(tr, (const int64_t[]){i, j, k}) != (float)(k * 12 + j * 4 + i);
    assert_int_equal(bad, 0);
    nb_release(tr);

    nb_tensor *p = nb_permute(t3, NB_DIMS(2, 0, 1));
    assert_shape(p, NB_SHAPE(4, 2, 3));
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 2; j++)
            for (int64_t k = 0; k < 3; k++)
                bad += get(p, (const int64_t[]){i, j, k}) != (float)(j * 12 + k * 4 + i);
    assert_int_equal(bad, 0);
    assert_false(nb_tensor_shares_storage(p, t3));
    nb_release(p);
    p = nb_permute(t3, NB_DIMS(-1, 0, -2)); /* negative dims */
    assert_shape(p, NB_SHAPE(4, 2, 3));
    nb_release(p);
    p = nb_permute(t3, NB_DIMS(0, 1, 2)); /* identity: still a copy */
    assert_shape(p, NB_SHAPE(2, 3, 4));
    assert_false(nb_tensor_shares_storage(p, t3));
    nb_release(p);

    /* 0-d and 1-D: copies of themselves */
    nb_tensor *s0 = nb_scalar(5);
    tr = nb_transpose(s0, 0, -1);
    assert_shape(tr, NB_SHAPE0);
    assert_values(tr, 5);
    assert_false(nb_tensor_shares_storage(tr, s0));
    nb_release(tr);
    p = nb_permute(s0, nb_dims_make(0, NULL));
    assert_shape(p, NB_SHAPE0);
    nb_release(p);
    nb_tensor *v = seq(NB_SHAPE(3));
    tr = nb_transpose(v, 0, 0);
    assert_values(tr, 0, 1, 2);
    assert_false(nb_tensor_shares_storage(tr, v));
    nb_release(tr);

    /* empty tensors */
    nb_tensor *e = nb_zeros(NB_SHAPE(0, 3));
    tr = nb_transpose(e, 0, 1);
    assert_shape(tr, NB_SHAPE(3, 0));
    nb_release(tr);
    nb_release(e);

    /* nb_t: 0-d and 1-D are themselves (views), 2-D is transposed */
    nb_tensor *x = nb_t(s0);
    assert_shape(x, NB_SHAPE0);
    assert_true(nb_tensor_shares_storage(x, s0));
    nb_release(x);
    x = nb_t(v);
    assert_shape(x, NB_SHAPE(3));
    assert_true(nb_tensor_shares_storage(x, v));
    nb_release(x);
    x = nb_t(m);
    assert_shape(x, NB_SHAPE(3, 2));
    assert_values(x, 0, 3, 1, 4, 2, 5);
    assert_false(nb_tensor_shares_storage(x, m));
    nb_release(x);

    /* errors */
    assert_null(nb_t(t3));
    assert_error(NB_EINVAL, "nb_t: t() expects a tensor with <= 2 dimensions, but self is 3D");
    assert_null(nb_transpose(m, 0, 2));
    assert_error(NB_EINVAL,
                 "nb_transpose: dimension out of range (expected to be in range of [-2, 1], but "
                 "got 2)");
    assert_null(nb_transpose(m, -3, 0));
    assert_error(NB_EINVAL, "but got -3");
    assert_null(nb_transpose(s0, 0, 1));
    assert_error(NB_EINVAL, "[-1, 0], but got 1");
    assert_null(nb_permute(t3, NB_DIMS(0, 0, 1)));
    assert_error(NB_EINVAL, "nb_permute: repeated dim 0 in permutation");
    assert_null(nb_permute(t3, NB_DIMS(2, 1, -1)));
    assert_error(NB_EINVAL, "nb_permute: repeated dim 2");
    assert_null(nb_permute(t3, NB_DIMS(0, 1, 3)));
    assert_error(NB_EINVAL,
                 "nb_permute: dimension out of range (expected to be in range of [-3, 2], but "
                 "got 3)");
    assert_null(nb_permute(t3, nb_dims_make(0, NULL)));
    assert_error(
        NB_EINVAL,
        "nb_permute: number of dims don't match in permute (the tensor has 3, the list 0)");

    nb_release(v);
    nb_release(s0);
    nb_release(t3);
    nb_release(m);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void *refuse_huge_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    if (size > ((size_t)1 << 30)) return NULL;
    size_t rounded = (size + align - 1) / align * align;
    return aligned_alloc(align, rounded ? rounded : align);
}

static void refuse_huge_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_shape_errors(void **state)
{
    (void)state;
    assert_null(nb_zeros(NB_SHAPE(-1)));
    assert_error(NB_EINVAL, "nb_zeros: negative dimension -1");
    assert_null(nb_empty(NB_SHAPE(2, -3)));
    assert_error(NB_EINVAL, "nb_empty: negative dimension -3 in shape [2, -3]");
    assert_null(nb_ones(NB_SHAPE(0, -1)));
    assert_error(NB_EINVAL, "nb_ones: negative dimension -1");
    assert_null(nb_full(NB_SHAPE(-5), 1));
    assert_error(NB_EINVAL, "nb_full: negative dimension -5");
    assert_null(nb_from_data((const float[]){1}, NB_SHAPE(-1)));
    assert_error(NB_EINVAL, "nb_from_data: negative dimension -1");

    assert_null(nb_zeros(NB_SHAPE(INT64_MAX, 2)));
    assert_error(NB_ERANGE, "nb_zeros: shape [9223372036854775807, 2] has too many elements");
    assert_null(nb_empty(NB_SHAPE((int64_t)1 << 40, (int64_t)1 << 40)));
    assert_error(NB_ERANGE, "nb_empty: shape [1099511627776, 1099511627776] has too many elements");
    assert_null(nb_ones(NB_SHAPE(INT64_MAX)));
    assert_error(NB_ERANGE, "nb_ones: shape [9223372036854775807] has too many elements");
    assert_null(nb_full(NB_SHAPE(3, INT64_MAX / 2), 0));
    assert_error(NB_ERANGE, "too many elements");
    assert_null(nb_from_data((const float[]){1}, NB_SHAPE(1 << 21, 1 << 21, 1 << 21)));
    assert_error(NB_ERANGE, "nb_from_data: shape [2097152, 2097152, 2097152] has too many");
    /* 2^62 elements fit int64_t, but not as a byte count */
    assert_null(nb_zeros(NB_SHAPE((int64_t)1 << 31, (int64_t)1 << 31)));
    assert_error(NB_ERANGE, "nb_zeros: shape [2147483648, 2147483648] has too many elements");
    /* [0, 2^40, 2^40] has no element at all */
    nb_tensor *z = nb_zeros(NB_SHAPE(0, (int64_t)1 << 40, (int64_t)1 << 40));
    assert_non_null(z);
    assert_int_equal(nb_tensor_numel(z), 0);
    nb_tensor *zt = nb_transpose(z, 1, 2); /* strides of such a shape overflow: not computed */
    assert_shape(zt, NB_SHAPE(0, (int64_t)1 << 40, (int64_t)1 << 40));
    nb_release(zt);
    /* as PyTorch's size check, a product that overflows before the 0 is an error */
    assert_null(nb_transpose(z, 0, 2));
    assert_error(NB_ERANGE, "nb_transpose: shape [1099511627776, 1099511627776, 0] has too many");
    zt = nb_flatten(z, 0, 1);
    assert_shape(zt, NB_SHAPE(0, (int64_t)1 << 40));
    nb_release(zt);
    assert_null(nb_flatten(z, 1, 2));
    assert_error(NB_ERANGE, "nb_flatten: flattening dims 1..2 of shape [0, 1099511627776, "
                            "1099511627776] overflows");
    nb_release(z);
    /* 2^60 elements pass the checks; the allocation itself fails (an allocator that refuses
     * what the system's would, without asking a sanitizer's for 4 EiB) */
    const nb_allocator refusing = {refuse_huge_alloc, refuse_huge_free, NULL};
    nb_set_allocator(&refusing);
    assert_null(nb_empty(NB_SHAPE((int64_t)1 << 30, (int64_t)1 << 30)));
    assert_error(NB_ENOMEM, "nb_empty: out of memory");
    nbt_fail_alloc_after(0);

    /* item, get, set */
    nb_tensor *t = seq(NB_SHAPE(2, 3));
    float v = 0;
    assert_int_equal(nb_tensor_item(t, &v), NB_EINVAL);
    assert_error(NB_EINVAL,
                 "nb_tensor_item: a Tensor with 6 elements cannot be converted to Scalar");
    nb_tensor *e = nb_zeros(NB_SHAPE(0));
    assert_int_equal(nb_tensor_item(e, &v), NB_EINVAL);
    assert_error(NB_EINVAL, "a Tensor with 0 elements cannot be converted to Scalar");
    nb_release(e);

    nb_tensor *r = seq(NB_SHAPE(3));
    assert_int_equal(nb_tensor_get(r, (const int64_t[]){5}, &v), NB_ERANGE);
    assert_error(NB_ERANGE, "nb_tensor_get: index 5 is out of bounds for dimension 0 with size 3");
    assert_int_equal(nb_tensor_get(r, (const int64_t[]){3}, &v), NB_ERANGE);
    assert_error(NB_ERANGE, "index 3 is out of bounds for dimension 0 with size 3");
    assert_int_equal(nb_tensor_get(r, (const int64_t[]){-4}, &v), NB_ERANGE);
    assert_error(NB_ERANGE, "index -4 is out of bounds for dimension 0 with size 3");
    assert_int_equal(nb_tensor_set(r, (const int64_t[]){5}, 1), NB_ERANGE);
    assert_error(NB_ERANGE, "nb_tensor_set: index 5 is out of bounds for dimension 0 with size 3");
    assert_int_equal(nb_tensor_version(r), 0); /* a failed set changes nothing */
    assert_int_equal(nb_tensor_get(t, (const int64_t[]){1, 3}, &v), NB_ERANGE);
    assert_error(NB_ERANGE, "index 3 is out of bounds for dimension 1 with size 3");
    assert_int_equal(nb_tensor_set(t, (const int64_t[]){-3, 0}, 1), NB_ERANGE);
    assert_error(NB_ERANGE, "index -3 is out of bounds for dimension 0 with size 2");
    assert_int_equal(nb_tensor_get(r, (const int64_t[]){INT64_MIN}, &v), NB_ERANGE);
    assert_error(NB_ERANGE, "out of bounds for dimension 0 with size 3");
    nb_release(r);

    /* set on a leaf that requires grad, under grad mode */
    nb_requires_grad_(t, true);
    assert_int_equal(nb_tensor_set(t, (const int64_t[]){0, 0}, 1), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_tensor_set: a leaf Variable that requires grad is being used in "
                            "an in-place operation");
    nb_set_grad_enabled(false);
    assert_int_equal(nb_tensor_set(t, (const int64_t[]){0, 0}, 1), NB_OK);
    nb_set_grad_enabled(true);
    nb_release(t);

    /* errors are one line that names the function */
    const nb_error *err = nb_last_error();
    assert_int_equal(err->code, NB_ESTATE); /* a success does not clear the error */
    nb_error_clear();
    assert_int_equal(err->code, NB_OK);
    assert_string_equal(err->message, "");
}

static void test_null_arguments(void **state)
{
    (void)state;
    nb_tensor *t = seq(NB_SHAPE(2, 2));
    float v = 0;
    const int64_t idx[] = {0, 0};

    /* accessors tolerate NULL */
    assert_int_equal(nb_tensor_ndim(NULL), -1);
    assert_null(nb_tensor_shape(NULL));
    assert_int_equal(nb_tensor_size(NULL).ndim, 0);
    assert_int_equal(nb_tensor_numel(NULL), -1);
    assert_null(nb_tensor_data(NULL));
    assert_null(nb_tensor_data_const(NULL));
    assert_int_equal(nb_tensor_version(NULL), 0);
    nb_tensor_bump_version(NULL);
    assert_false(nb_tensor_shares_storage(NULL, t));
    assert_false(nb_tensor_shares_storage(t, NULL));
    assert_false(nb_tensor_shares_storage(NULL, NULL));
    assert_null(nb_retain(NULL));
    nb_release(NULL);
    assert_int_equal(nb_last_error()->code, NB_OK);

#define NULL_TENSOR(call, fn)                                                                      \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        assert_error(NB_EINVAL, fn ": argument 't' is NULL");                                      \
    } while (0)
    NULL_TENSOR(nb_empty_like(NULL), "nb_empty_like");
    NULL_TENSOR(nb_zeros_like(NULL), "nb_zeros_like");
    NULL_TENSOR(nb_ones_like(NULL), "nb_ones_like");
    NULL_TENSOR(nb_full_like(NULL, 1), "nb_full_like");
    NULL_TENSOR(nb_clone(NULL), "nb_clone");
    NULL_TENSOR(nb_reshape(NULL, NB_SHAPE(4)), "nb_reshape");
    NULL_TENSOR(nb_view(NULL, NB_SHAPE(4)), "nb_view");
    NULL_TENSOR(nb_squeeze(NULL, NB_DIMS_ALL), "nb_squeeze");
    NULL_TENSOR(nb_unsqueeze(NULL, 0), "nb_unsqueeze");
    NULL_TENSOR(nb_flatten(NULL, 0, -1), "nb_flatten");
    NULL_TENSOR(nb_slice(NULL, 0, 0, 1, 1), "nb_slice");
    NULL_TENSOR(nb_transpose(NULL, 0, 1), "nb_transpose");
    NULL_TENSOR(nb_permute(NULL, NB_DIMS(1, 0)), "nb_permute");
    NULL_TENSOR(nb_t(NULL), "nb_t");
#undef NULL_TENSOR

#define NULL_STATUS(call, fn, arg)                                                                 \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_int_equal((call), NB_EINVAL);                                                       \
        assert_error(NB_EINVAL, fn ": argument '" arg "' is NULL");                                \
    } while (0)
    NULL_STATUS(nb_tensor_item(NULL, &v), "nb_tensor_item", "t");
    NULL_STATUS(nb_tensor_item(t, NULL), "nb_tensor_item", "out");
    NULL_STATUS(nb_tensor_get(NULL, idx, &v), "nb_tensor_get", "t");
    NULL_STATUS(nb_tensor_get(t, NULL, &v), "nb_tensor_get", "index");
    NULL_STATUS(nb_tensor_get(t, idx, NULL), "nb_tensor_get", "out");
    NULL_STATUS(nb_tensor_set(NULL, idx, 1), "nb_tensor_set", "t");
    NULL_STATUS(nb_tensor_set(t, NULL, 1), "nb_tensor_set", "index");
#undef NULL_STATUS
    assert_int_equal(nb_tensor_version(t), 0);

    nb_error_clear();
    assert_int_equal(nb_tensor_dim_size(NULL, 0), -1);
    assert_error(NB_EINVAL, "nb_tensor_dim_size: argument 't' is NULL");

    nb_error_clear();
    assert_null(nb_from_data(NULL, NB_SHAPE(2)));
    assert_error(NB_EINVAL, "nb_from_data: argument 'data' is NULL");
    assert_null(nb_from_data(NULL, NB_SHAPE0)); /* a scalar has one element */
    assert_error(NB_EINVAL, "nb_from_data: argument 'data' is NULL");
    nb_release(t);
}

static void test_null_propagation(void **state)
{
    (void)state;
    /* the first error survives a chain of calls on NULL */
    nb_tensor *r =
        nb_t(nb_flatten(nb_unsqueeze(nb_reshape(nb_zeros(NB_SHAPE(-1)), NB_SHAPE(2)), 0), 0, -1));
    assert_null(r);
    assert_error(NB_EINVAL, "nb_zeros: negative dimension -1");

    nb_tensor *x = seq(NB_SHAPE(2, 3));
    nb_tensor *bad = nb_reshape(x, NB_SHAPE(4, 4));
    assert_null(bad);
    float v = 0;
    assert_null(nb_transpose(bad, 0, 1));
    assert_null(nb_clone(bad));
    assert_null(nb_zeros_like(bad));
    assert_null(nb_slice(bad, 0, 0, 1, 1));
    assert_null(nb_squeeze(bad, NB_DIMS_ALL));
    assert_null(nb_permute(bad, NB_DIMS(1, 0)));
    assert_null(nb_view(bad, NB_SHAPE(-1)));
    assert_int_equal(nb_tensor_item(bad, &v), NB_ESHAPE);
    assert_int_equal(nb_tensor_get(bad, (const int64_t[]){0, 0}, &v), NB_ESHAPE);
    assert_int_equal(nb_tensor_set(bad, (const int64_t[]){0, 0}, 1), NB_ESHAPE);
    assert_int_equal(nb_tensor_dim_size(bad, 0), -1);
    assert_error(NB_ESHAPE, "nb_reshape: shape '[4, 4]' is invalid for input of size 6");
    assert_string_equal(nb_last_error()->message,
                        "nb_reshape: shape '[4, 4]' is invalid for input of size 6");

    /* after a clear, the NULL itself is the error */
    nb_error_clear();
    assert_null(nb_transpose(bad, 0, 1));
    assert_error(NB_EINVAL, "nb_transpose: argument 't' is NULL");
    assert_string_equal(nb_last_error()->message, "nb_transpose: argument 't' is NULL");
    nb_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creation, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_arange, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_linspace, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_range_bits, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_like_and_clone, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alignment, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_access, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_max_dims, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_reshape_view, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_squeeze_unsqueeze, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_flatten, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_slice, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_transpose_permute, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_shape_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_arguments, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_propagation, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("tensor", tests, NULL, NULL);
}
