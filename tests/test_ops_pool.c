/*
 * 2-D pooling: values, indices, node names and gradients against PyTorch 1.13
 * (data/pool_ref.h, made by data/gen_pool.py), bit for bit; the same bits at 1 and 2 threads
 * on inputs large enough for the pool; a warm step served by the allocator's cache; indices
 * and saved tensors; errors with their messages, NULL propagation and allocation failure.
 * Gradients at random points are checked by test_gradcheck.c (gradcheck/pool.h).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "data/pool_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The same float (a NaN for a NaN, the sign of a zero compared). */
static void check_bits(const char *name, const char *what, const float *got, const float *want,
                       int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        bool ok = isnan(w) ? isnan(g) : g == w && signbit(g) == signbit(w);
        if (!ok)
            fail_msg("%s: %s element %lld is %a, PyTorch %a", name, what, (long long)i, (double)g,
                     (double)w);
    }
}

static nb_shape pair_of(int n, const int64_t *v)
{
    return nb_shape_make(n, v);
}

/* The case's call; *indices (when not NULL) gets max_pool2d's indices. */
static nb_tensor *call(const pool_ref *r, nb_tensor *x, nb_tensor **indices)
{
    nb_shape k = pair_of(r->k_n, r->k), s = pair_of(r->s_n, r->s), p = pair_of(r->p_n, r->p);
    if (r->op == REF_AVG_POOL2D)
        return nb_avg_pool2d(x, k, s, p, r->ceil_mode, r->count_include_pad, r->divisor);
    nb_shape d = pair_of(r->d_n, r->d);
    return indices ? nb_max_pool2d_with_indices(x, k, s, p, d, r->ceil_mode, indices)
                   : nb_max_pool2d(x, k, s, p, d, r->ceil_mode);
}

/* Every case, bit for bit: values, indices, node, gradient; max_pool2d with and without its
 * indices. */
static void test_reference(void **state)
{
    (void)state;
    const float *D = pool_ref_data;
    for (size_t c = 0; c < ARRAY_LEN(pool_ref_cases); c++) {
        const pool_ref *r = &pool_ref_cases[c];
        bool max = r->op == REF_MAX_POOL2D;
        nb_shape out = nb_shape_make(r->out_ndim, r->out_dims);
        for (int form = 0; form < (max ? 2 : 1); form++) {
            nb_tensor *x = nb_requires_grad_(nbt_tensor_of(D + r->x, r->x_ndim, r->x_dims), true);
            nb_tensor *idx = NULL, *y = call(r, x, form ? &idx : NULL);
            nbt_check_shape(y, out, r->name);
            int64_t n = nb_tensor_numel(y);
            check_bits(r->name, "value", nb_tensor_data_const(y), D + r->y, n);
            if (form) {
                nbt_check_shape(idx, out, r->name);
                check_bits(r->name, "index", nb_tensor_data_const(idx), D + r->indices, n);
                assert_false(nb_tensor_requires_grad(idx));
            }
            if (strcmp(nb_node_name(nb_tensor_grad_fn(y)), r->node) != 0)
                fail_msg("%s: node %s, PyTorch %s", r->name, nb_node_name(nb_tensor_grad_fn(y)),
                         r->node);
            if (r->grad_x >= 0) {
                nb_tensor *g = nbt_tensor_of(D + r->grad_out, r->out_ndim, r->out_dims);
                if (nb_backward(y, g, false) != NB_OK)
                    fail_msg("%s: nb_backward: %s", r->name, nb_last_error()->message);
                nb_tensor *gx = nb_tensor_grad(x);
                nbt_check_shape(gx, nb_tensor_size(x), r->name);
                check_bits(r->name, "gradient", nb_tensor_data_const(gx), D + r->grad_x,
                           nb_tensor_numel(x));
                nb_release(g);
            }
            nb_release(idx);
            nb_release(y);
            nb_release(x);
        }
    }
}

/* A window of padding alone (PyTorch: -inf, an index past the plane): backward drops it. */
static void test_padding_window_backward(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_full(NB_SHAPE(1, 1, 1, 1), 1.5f), true);
    nb_tensor *y = nb_max_pool2d(x, NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(2), false);
    assert_non_null(y);
    assert_true(isinf(nb_tensor_data_const(y)[0]));
    nb_tensor *g = nb_ones_like(y);
    assert_int_equal(nb_backward(y, g, false), NB_OK);
    assert_true(nb_tensor_data_const(nb_tensor_grad(x))[0] == 0.0f);
    nb_release(g);
    nb_release(y);
    nb_release(x);
}

/* Windows of int32's largest kernel with the most padding it allows, over a 3 x 4 input: each
 * window covers all of it (no loop over the padding, which PyTorch steps through one by one),
 * so the max is the largest element, and the average without padding its mean. */
static void test_huge_windows(void **state)
{
    (void)state;
    const float v[12] = {0.5f, -1.0f,  2.0f,   0.25f, 3.0f, -2.5f,
                         1.0f, 0.125f, -0.75f, 1.5f,  2.5f, 0.0f};
    nb_tensor *x = nb_requires_grad_(nb_from_data(v, NB_SHAPE(1, 3, 4)), true), *idx;
    nb_shape k = NB_SHAPE(INT32_MAX), p = NB_SHAPE(INT32_MAX / 2);
    nb_tensor *y = nb_max_pool2d_with_indices(x, k, NB_SHAPE(1), p, NB_SHAPE(1), false, &idx);
    nbt_check_shape(y, NB_SHAPE(1, 3, 4), "max_pool2d of huge windows");
    for (int i = 0; i < 12; i++) {
        assert_true(nb_tensor_data_const(y)[i] == 3.0f);
        assert_true(nb_tensor_data_const(idx)[i] == 4.0f);
    }
    nb_tensor *g = nb_ones_like(y);
    assert_int_equal(nb_backward(y, g, false), NB_OK);
    assert_true(nb_tensor_data_const(nb_tensor_grad(x))[4] == 12.0f);
    nb_release(g);
    nb_release(idx);
    nb_release(y);
    y = nb_avg_pool2d(x, k, NB_SHAPE(1), p, false, false, 0);
    nbt_check_shape(y, NB_SHAPE(1, 3, 4), "avg_pool2d of huge windows");
    float sum = 0.0f;
    for (int i = 0; i < 12; i++) sum += v[i];
    for (int i = 0; i < 12; i++) assert_true(nb_tensor_data_const(y)[i] == sum / 12.0f);
    nb_release(y);
    nb_release(x);
}

/* The gradient added into a .grad that already holds one: the pooled gradient first summed
 * over its overlapping windows, then added, as PyTorch's engine adds. */
static void test_accumulates(void **state)
{
    (void)state;
    nb_manual_seed(3);
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(2, 3, 7, 6)), true);
    nb_tensor *g = NULL, *alone[2];
    for (int op = 0; op < 2; op++) {
        nb_tensor *y =
            op ? nb_avg_pool2d(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), false, true, 0)
               : nb_max_pool2d(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), false);
        if (!g) g = nb_randn_like(y);
        assert_int_equal(nb_backward(y, g, false), NB_OK);
        alone[op] = nb_mul_scalar(nb_tensor_grad(x), 1.0f); /* a copy */
        assert_int_equal(nb_zero_grad(x, true), NB_OK);
        nb_release(y);
    }
    /* max then avg into one .grad: the first taken as is, the second added to it */
    nb_tensor *both = nb_add(alone[0], alone[1]);
    nb_tensor *y0 = nb_max_pool2d(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), false);
    nb_tensor *y1 = nb_avg_pool2d(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), false, true, 0);
    assert_int_equal(nb_backward(y0, g, false), NB_OK);
    assert_int_equal(nb_backward(y1, g, false), NB_OK);
    check_bits("max then avg", "gradient", nb_tensor_data_const(nb_tensor_grad(x)),
               nb_tensor_data_const(both), nb_tensor_numel(x));
    nb_release(y0);
    nb_release(y1);
    nb_release(both);
    nb_release(alone[0]);
    nb_release(alone[1]);
    nb_release(g);
    nb_release(x);
}

/* Values, indices and gradients of a batch large enough for the pool, at 1 and 2 threads. */
static void test_threads_same_bits(void **state)
{
    (void)state;
    int saved = nb_get_num_threads();
    nb_manual_seed(7);
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(4, 16, 33, 31)), true);
    float *out[2][4] = {{NULL}};
    int64_t n[4] = {0};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(nb_set_num_threads(t + 1), NB_OK);
        nb_scope *s = nb_scope_begin();
        nb_tensor *idx, *r[4];
        r[0] = nb_max_pool2d_with_indices(x, NB_SHAPE(3, 2), NB_SHAPE(2, 1), NB_SHAPE(1),
                                          NB_SHAPE(1, 2), true, &idx);
        r[1] = idx;
        r[2] = nb_avg_pool2d(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), true, false, 0);
        nb_tensor *g0 = nb_cos(r[0]), *g2 = nb_sin(r[2]);
        assert_int_equal(nb_backward(r[0], g0, true), NB_OK);
        assert_int_equal(nb_backward(r[2], g2, true), NB_OK);
        r[3] = nb_tensor_grad(x);
        for (int i = 0; i < 4; i++) {
            assert_non_null(r[i]);
            n[i] = nb_tensor_numel(r[i]);
            out[t][i] = malloc((size_t)n[i] * sizeof(float));
            assert_non_null(out[t][i]);
            memcpy(out[t][i], nb_tensor_data_const(r[i]), (size_t)n[i] * sizeof(float));
        }
        assert_int_equal(nb_zero_grad(x, true), NB_OK);
        assert_int_equal(nb_scope_end(s), NB_OK);
    }
    static const char *const what[4] = {"max values", "max indices", "avg values", "gradient"};
    for (int i = 0; i < 4; i++) {
        if (memcmp(out[0][i], out[1][i], (size_t)n[i] * sizeof(float)) != 0)
            fail_msg("%s differ between 1 and 2 threads", what[i]);
        free(out[0][i]);
        free(out[1][i]);
    }
    assert_int_equal(nb_set_num_threads(saved), NB_OK);
    nb_release(x);
}

/* One pooling step: max (with indices) and average of x, forward and backward. */
static void pool_step(nb_tensor *x)
{
    nb_scope *s = nb_scope_begin();
    nb_tensor *idx;
    nb_tensor *a = nb_max_pool2d_with_indices(x, NB_SHAPE(3), NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1),
                                              false, &idx);
    nb_tensor *b = nb_avg_pool2d(a, NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), true, false, 0);
    assert_int_equal(nb_backward(nb_sum(b, NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_int_equal(nb_zero_grad(x, false), NB_OK);
    assert_int_equal(nb_scope_end(s), NB_OK);
}

/* A warm pooling step (its outputs, indices and the backward's fresh gradients) takes every
 * block from the default allocator's cache, at 1 and 2 threads (above the pool's threshold):
 * no call to the C library's allocator. Skipped in builds without the cache. */
static void test_warm_step_allocates_nothing(void **state)
{
    (void)state;
    int saved = nb_get_num_threads();
    nb_set_allocator(NULL); /* no nabla object is alive here */
    for (int threads = 1; threads <= 2; threads++) {
        assert_int_equal(nb_set_num_threads(threads), NB_OK);
        nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(4, 16, 32, 32)), true);
        nb_alloc_stats s1, s2;
        for (int i = 0; i < 3; i++) pool_step(x);
        nb_alloc_stats_get(&s1);
        for (int i = 0; i < 5; i++) pool_step(x);
        nb_alloc_stats_get(&s2);
        if (s2.cached_bytes == 0) {
            nb_release(x);
            nb_set_num_threads(saved);
            nbt_setup_counting(NULL);
            skip(); /* built without the block cache */
        }
        assert_true(s2.allocs - s1.allocs >= 5 * 4); /* outputs, indices, gradients */
        assert_int_equal(s2.system_allocs - s1.system_allocs, 0);
        assert_int_equal(s2.system_frees - s1.system_frees, 0);
        nb_release(x);
    }
    nb_set_num_threads(saved);
    nbt_setup_counting(NULL); /* the counting allocator back, for the teardown's leak check */
}

/* The indices are a plain tensor the node saved; under no_grad no node; NULL propagates. */
static void test_indices_and_nodes(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(2, 4, 4)), true), *idx;
    nb_tensor *y = nb_max_pool2d_with_indices(x, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1),
                                              false, &idx);
    assert_non_null(idx);
    assert_null(nb_tensor_grad_fn(idx));
    const nb_node *node = nb_tensor_grad_fn(y);
    assert_int_equal(nb_node_num_next(node), 1);
    assert_ptr_equal(nb_node_variable(nb_node_next(node, 0, NULL)), x);
    assert_int_equal(nb_fill_(idx, 0.0f), NB_OK);
    nb_tensor *g = nb_ones_like(y);
    assert_int_equal(nb_backward(y, g, false), NB_ESTATE);
    assert_error(NB_ESTATE, "[FloatTensor [2, 2, 2]], which is an input saved by "
                            "MaxPool2DWithIndicesBackward0, is at version 1; expected version 0 "
                            "instead");
    nb_release(g);
    nb_release(y);
    nb_release(idx);

    NB_NO_GRAD
    {
        y = nb_max_pool2d_with_indices(x, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false,
                                       &idx);
        assert_null(nb_tensor_grad_fn(y));
        assert_false(nb_tensor_requires_grad(y));
        assert_non_null(idx);
        nb_release(y);
        nb_release(idx);
        y = nb_avg_pool2d(x, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0);
        assert_null(nb_tensor_grad_fn(y));
        nb_release(y);
    }
    /* a constant input records nothing */
    nb_tensor *c = nb_detach(x);
    y = nb_max_pool2d(c, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false);
    assert_null(nb_tensor_grad_fn(y));
    nb_release(y);
    nb_release(c);

    /* a NULL made by a failed call keeps that call's error; on error no indices */
    nb_tensor *a = nb_ones(NB_SHAPE(2)), *b = nb_ones(NB_SHAPE(3));
    nb_error_clear();
    idx = x;
    assert_null(nb_max_pool2d_with_indices(nb_add(a, b), NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0),
                                           NB_SHAPE(1), false, &idx));
    assert_null(idx);
    assert_error(NB_ESHAPE, "nb_add: shapes [2] and [3] cannot be broadcast");
    nb_error_clear();
    assert_null(nb_avg_pool2d(nb_add(a, b), NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0));
    assert_error(NB_ESHAPE, "nb_add: shapes [2] and [3] cannot be broadcast");
    nb_error_clear();
    assert_null(nb_max_pool2d(NULL, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false));
    assert_error(NB_EINVAL, "nb_max_pool2d: argument 'x' is NULL");
    assert_null(nb_max_pool2d_with_indices(NULL, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1),
                                           false, &idx));
    assert_error(NB_EINVAL, "nb_max_pool2d_with_indices: argument 'x' is NULL");
    assert_null(nb_avg_pool2d(NULL, NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0));
    assert_error(NB_EINVAL, "nb_avg_pool2d: argument 'x' is NULL");
    nb_release(a);
    nb_release(b);
    nb_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_randn(NB_SHAPE(1, 1, 5, 5)), *idx = x;
    nb_tensor *x2 = nb_randn(NB_SHAPE(5, 5)), *x5 = nb_randn(NB_SHAPE(1, 1, 1, 5, 5));
    nb_tensor *c0 = nb_zeros(NB_SHAPE(1, 0, 5, 5)), *h0 = nb_zeros(NB_SHAPE(0, 5, 6));
    nb_tensor *w0 = nb_zeros(NB_SHAPE(2, 0, 6)), *wide = nb_randn(NB_SHAPE(2, 5, 6));
    nb_shape one = NB_SHAPE(1), zero = NB_SHAPE(0), dflt = NB_SHAPE0;
    char want[256];
#define MAX(x, k, s, p, d, ceil) nb_max_pool2d((x), (k), (s), (p), (d), (ceil))
#define AVG(x, k, s, p)          nb_avg_pool2d((x), (k), (s), (p), false, true, 0)
#define EXPECT(call, code, fn, text)                                                               \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        snprintf(want, sizeof want, "%s: %s", fn, text);                                           \
        assert_error(code, want);                                                                  \
    } while (0)
    /* the int-or-pair lists */
    EXPECT(MAX(x, NB_SHAPE(1, 2, 3), dflt, zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "kernel_size must either be a single int, or a tuple of two ints");
    EXPECT(MAX(x, dflt, dflt, zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "kernel_size must either be a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2), NB_SHAPE(1, 2, 3), zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "stride must either be omitted, a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2), one, NB_SHAPE(1, 2, 3), one, false), NB_EINVAL, "nb_max_pool2d",
           "padding must be either be a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2), one, dflt, one, false), NB_EINVAL, "nb_max_pool2d",
           "padding must be either be a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2), one, zero, NB_SHAPE(1, 2, 3), false), NB_EINVAL, "nb_max_pool2d",
           "dilation must be either a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2), one, zero, dflt, false), NB_EINVAL, "nb_max_pool2d",
           "dilation must be either a single int, or a tuple of two ints");
    EXPECT(AVG(x, NB_SHAPE(1, 2, 3), dflt, zero), NB_EINVAL, "nb_avg_pool2d",
           "kernel_size must either be a single int, or a tuple of two ints");
    EXPECT(AVG(x, NB_SHAPE(2), NB_SHAPE(1, 2, 3), zero), NB_EINVAL, "nb_avg_pool2d",
           "stride must either be omitted, a single int, or a tuple of two ints");
    EXPECT(AVG(x, NB_SHAPE(2), one, NB_SHAPE(1, 2, 3)), NB_EINVAL, "nb_avg_pool2d",
           "padding must either be a single int, or a tuple of two ints");
    EXPECT(MAX(x, NB_SHAPE(2, (int64_t)1 << 32), dflt, zero, one, false), NB_EINVAL,
           "nb_max_pool2d", "kernel_size 4294967296 is outside int32's range");
    EXPECT(AVG(x, NB_SHAPE(2), NB_SHAPE(-((int64_t)1 << 40)), zero), NB_EINVAL, "nb_avg_pool2d",
           "stride -1099511627776 is outside int32's range");
    /* rank and sizes */
    EXPECT(MAX(x2, NB_SHAPE(2), dflt, zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "non-empty 3D or 4D (batch mode) tensor expected for input");
    EXPECT(MAX(x5, NB_SHAPE(2), NB_SHAPE(0), zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "non-empty 3D or 4D (batch mode) tensor expected for input");
    EXPECT(AVG(x2, NB_SHAPE(2), dflt, zero), NB_ESHAPE, "nb_avg_pool2d",
           "non-empty 3D or 4D (batch mode) tensor expected for input");
    /* avg_pool2d checks the window before it finds more than 4 dims (PyTorch's size(-3)) */
    EXPECT(AVG(x5, NB_SHAPE(2), NB_SHAPE(0), zero), NB_EINVAL, "nb_avg_pool2d",
           "stride should not be zero");
    EXPECT(AVG(x5, NB_SHAPE(2), dflt, zero), NB_ESHAPE, "nb_avg_pool2d",
           "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
           "got:[1, 1, 1, 5, 5]");
    EXPECT(MAX(c0, NB_SHAPE(2), dflt, zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
           "got:[1, 0, 5, 5]");
    EXPECT(AVG(h0, NB_SHAPE(2), dflt, zero), NB_ESHAPE, "nb_avg_pool2d",
           "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
           "got:[0, 5, 6]");
    EXPECT(MAX(w0, NB_SHAPE(2), dflt, zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
           "got:[2, 0, 6]");
    /* the output's size, H before W */
    EXPECT(MAX(x, NB_SHAPE(0), dflt, zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "stride should not be zero");
    EXPECT(AVG(x, NB_SHAPE(2), NB_SHAPE(1, 0), zero), NB_EINVAL, "nb_avg_pool2d",
           "stride should not be zero");
    EXPECT(MAX(x, NB_SHAPE(2), one, NB_SHAPE(-1), one, false), NB_EINVAL, "nb_max_pool2d",
           "pad must be non-negative, but got pad: -1");
    EXPECT(AVG(x, NB_SHAPE(2), one, NB_SHAPE(0, -2)), NB_EINVAL, "nb_avg_pool2d",
           "pad must be non-negative, but got pad: -2");
    EXPECT(MAX(x, NB_SHAPE(3), one, NB_SHAPE(2), one, false), NB_EINVAL, "nb_max_pool2d",
           "pad should be at most half of kernel size, but got pad=2 and kernel_size=3");
    EXPECT(AVG(x, NB_SHAPE(3), one, NB_SHAPE(2)), NB_EINVAL, "nb_avg_pool2d",
           "pad should be at most half of kernel size, but got pad=2 and kernel_size=3");
    EXPECT(MAX(x, NB_SHAPE(2, 3), one, NB_SHAPE(2, 1), one, false), NB_EINVAL, "nb_max_pool2d",
           "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
    EXPECT(MAX(x, NB_SHAPE(3, 2), one, NB_SHAPE(1, 2), one, false), NB_EINVAL, "nb_max_pool2d",
           "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
    EXPECT(AVG(x, NB_SHAPE(-2), one, zero), NB_EINVAL, "nb_avg_pool2d",
           "pad should be at most half of kernel size, but got pad=0 and kernel_size=-2");
    EXPECT(MAX(x, NB_SHAPE(0), one, zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "kernel size should be greater than zero, but got kH: 0 kW: 0");
    EXPECT(AVG(x, NB_SHAPE(1, -1), one, zero), NB_EINVAL, "nb_avg_pool2d",
           "kernel size should be greater than zero, but got kH: 1 kW: -1");
    EXPECT(MAX(x, NB_SHAPE(2), NB_SHAPE(-1), zero, one, false), NB_EINVAL, "nb_max_pool2d",
           "stride should be greater than zero, but got dH: -1 dW: -1");
    EXPECT(AVG(x, NB_SHAPE(2), NB_SHAPE(-1), zero), NB_EINVAL, "nb_avg_pool2d",
           "stride should be greater than zero, but got dH: -1 dW: -1");
    EXPECT(MAX(x, NB_SHAPE(2), one, zero, NB_SHAPE(0), false), NB_EINVAL, "nb_max_pool2d",
           "dilation should be greater than zero, but got dilationH: 0 dilationW: 0");
    EXPECT(MAX(x, NB_SHAPE(2), one, zero, NB_SHAPE(1, -1), false), NB_EINVAL, "nb_max_pool2d",
           "dilation should be greater than zero, but got dilationH: 1 dilationW: -1");
    EXPECT(MAX(x, NB_SHAPE(6), dflt, zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "Given input size: (1x5x5). Calculated output size: (1x0x0). Output size is too small");
    EXPECT(AVG(x, NB_SHAPE(6), dflt, zero), NB_ESHAPE, "nb_avg_pool2d",
           "Given input size: (1x5x5). Calculated output size: (1x0x0). Output size is too small");
    EXPECT(MAX(wide, NB_SHAPE(2, 7), dflt, zero, one, false), NB_ESHAPE, "nb_max_pool2d",
           "Given input size: (2x5x6). Calculated output size: (2x2x0). Output size is too small");
    EXPECT(MAX(wide, NB_SHAPE(3), one, zero, NB_SHAPE(3), true), NB_ESHAPE, "nb_max_pool2d",
           "Given input size: (2x5x6). Calculated output size: (2x-1x0). Output size is too small");
    EXPECT(nb_max_pool2d_with_indices(x, NB_SHAPE(6), dflt, zero, one, false, &idx), NB_ESHAPE,
           "nb_max_pool2d_with_indices",
           "Given input size: (1x5x5). Calculated output size: (1x0x0). Output size is too small");
    assert_null(idx);
    /* planes whose indices float32 cannot all hold: refused where the indices are needed */
    nb_tensor *big = nb_zeros(NB_SHAPE(0, 1, 4097, 4097));
    EXPECT(nb_max_pool2d_with_indices(big, NB_SHAPE(2), dflt, zero, one, false, &idx), NB_ERANGE,
           "nb_max_pool2d_with_indices",
           "a plane of 4097 x 4097 elements has indices beyond 2^24, which float32 cannot hold "
           "exactly");
    nb_tensor *y = MAX(big, NB_SHAPE(2), dflt, zero, one, false); /* no indices needed */
    nbt_check_shape(y, NB_SHAPE(0, 1, 2048, 2048), "max_pool2d of an empty batch");
    nb_release(y);
    assert_non_null(nb_requires_grad_(big, true));
    EXPECT(MAX(big, NB_SHAPE(2), dflt, zero, one, false), NB_ERANGE, "nb_max_pool2d",
           "a plane of 4097 x 4097 elements has indices beyond 2^24");
    nb_release(big);
#undef EXPECT
#undef AVG
#undef MAX
    nb_release(wide);
    nb_release(w0);
    nb_release(h0);
    nb_release(c0);
    nb_release(x5);
    nb_release(x2);
    nb_release(x);
}

static nb_tensor *w_max(nb_tensor *x)
{
    nb_tensor *idx = NULL;
    nb_tensor *y = nb_max_pool2d_with_indices(x, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1),
                                              false, &idx);
    nb_release(idx);
    return y;
}

static nb_tensor *w_avg(nb_tensor *x)
{
    return nb_avg_pool2d(x, NB_SHAPE(3), NB_SHAPE(2), NB_SHAPE(1), true, false, 0);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(2, 3, 5, 6)), true);
    nbt_oom_sweep("nb_max_pool2d_with_indices", w_max, x);
    nbt_oom_sweep("nb_avg_pool2d", w_avg, x);
    nb_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_padding_window_backward, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_huge_windows, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_accumulates, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_threads_same_bits, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_warm_step_allocates_nothing, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_indices_and_nodes, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_out_of_memory, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_pool", tests, NULL, NULL);
}
