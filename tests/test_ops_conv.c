/*
 * conv2d against PyTorch 1.13 (data/conv_ref.h, made by data/gen_conv.py): the output, the
 * node and its edges, and the gradients of the input, weight and bias, also when the engine
 * lends a buffer holding a partial sum; nothing recorded under no_grad; every error path
 * with its message; the same bits at 1 and 2 threads; allocation failure at every step of a
 * forward and a backward. Gradients are also checked numerically by test_gradcheck.c
 * (gradcheck/conv.h).
 *
 * Tolerance: each value is a float sum of n terms (the output: C/groups·kH·kW products and
 * the bias; dx: O/groups·kH·kW; dW and db: N·oH·oW), which nabla (BLAS, then col2im) and
 * PyTorch (oneDNN) add in different orders. Any order lies within n·2^-24·Σ|term| of the
 * exact sum (to first order), so the two may differ by 2·n·2^-24·Σ|term|, where Σ|term| is
 * the same computation on absolute values, which the table holds per element. Where that is
 * 0 (a sum of zeros) the bits must match, sign of zero included; infinities and NaN must
 * match exactly.
 */
#include <float.h>
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

#include "data/conv_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* the largest |got − want| / allowed, and |got − want| / |want|, over every comparison */
static double worst_ratio, worst_rel;

static void check_values(const char *what, const char *name, const float *got, const float *want,
                         const float *bound, int64_t terms, double scale, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = scale * (double)want[i];
        double tol = 2.0 * (double)terms * 0x1p-24 * scale * (double)bound[i];
        bool ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g) || tol == 0.0)
            ok = g == w && signbit(g) == signbit(w);
        else
            ok = fabs(g - w) <= tol;
        if (!ok)
            fail_msg("%s: %s element %lld: got %a (%.9g), want %a (%.9g), allowed %.3g", name, what,
                     (long long)i, g, g, w, w, tol);
        if (isfinite(w) && tol > 0 && fabs(g - w) / tol > worst_ratio)
            worst_ratio = fabs(g - w) / tol;
        if (isfinite(w) && w != 0 && fabs(g - w) / fabs(w) > worst_rel)
            worst_rel = fabs(g - w) / fabs(w);
    }
}

static int64_t numel_of(const cref_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->dims[i];
    return n;
}

static nb_shape shape_of(const cref_tensor *t)
{
    return nb_shape_make(t->ndim, t->dims);
}

static nb_shape pair_of(const cref_pair *p)
{
    return nb_shape_make(p->ndim, p->v);
}

static nb_tensor *make_input(const cref_tensor *t)
{
    if (t->ndim < 0) return NULL;
    nb_tensor *x = nb_from_data(t->data, shape_of(t));
    assert_non_null(x);
    if (t->requires_grad) assert_non_null(nb_requires_grad_(x, true));
    return x;
}

static nb_tensor *apply_case(const cref_case *c, nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], pair_of(&c->stride), pair_of(&c->padding),
                     pair_of(&c->dilation), c->groups);
}

/* The node's edges: input, weight, bias, each to its leaf's AccumulateGrad or empty. */
static void check_edges(const cref_case *c, const nb_node *node, nb_tensor *const *x)
{
    assert_int_equal(nb_node_num_next(node), 3);
    for (int i = 0; i < 3; i++) {
        int nr = -1;
        nb_node *next = nb_node_next(node, i, &nr);
        if (!c->in[i].requires_grad) {
            if (next) fail_msg("%s: edge %d should be empty", c->name, i);
            continue;
        }
        if (!next || strcmp(nb_node_name(next), "AccumulateGrad") != 0 ||
            nb_node_variable(next) != x[i])
            fail_msg("%s: edge %d does not lead to input %d's AccumulateGrad", c->name, i, i);
    }
}

/*
 * One case: its output (copies = 1), or the sum of two copies of it (copies = 2) so that each
 * gradient arrives twice and the second backward adds into a lent buffer; then the
 * gradients, copies times PyTorch's.
 */
static void run_case(const cref_case *c, int copies)
{
    nb_tensor *x[3] = {NULL};
    for (int i = 0; i < 3; i++) x[i] = make_input(&c->in[i]);
    nb_scope *scope = nb_scope_begin();
    nb_tensor *out = apply_case(c, x);
    if (!out) fail_msg("%s: %s", c->name, nb_last_error()->message);
    char got_s[128], want_s[128];
    nb_shape_format(nb_tensor_size(out), got_s, sizeof got_s);
    nb_shape_format(shape_of(&c->out), want_s, sizeof want_s);
    if (strcmp(got_s, want_s) != 0) fail_msg("%s: shape %s, want %s", c->name, got_s, want_s);
    check_values("output", c->name, nb_tensor_data_const(out), c->out.data, c->out_bound,
                 c->terms[0], 1.0, numel_of(&c->out));
    if (!c->node[0]) {
        assert_null(nb_tensor_grad_fn(out));
    } else {
        const nb_node *node = nb_tensor_grad_fn(out);
        if (strcmp(nb_node_name(node), c->node) != 0)
            fail_msg("%s: node %s, want %s", c->name, nb_node_name(node), c->node);
        check_edges(c, node, x);
        if (copies == 2) out = nb_add(out, apply_case(c, x));
        nb_tensor *g = nb_from_data(c->grad_out, shape_of(&c->out));
        if (nb_backward(out, g, false) != NB_OK)
            fail_msg("%s: nb_backward: %s", c->name, nb_last_error()->message);
    }
    assert_int_equal(nb_scope_end(scope), NB_OK);
    for (int i = 0; i < 3; i++) {
        if (!x[i]) continue;
        nb_tensor *g = nb_tensor_grad(x[i]);
        if (!c->in[i].requires_grad) {
            assert_null(g);
        } else {
            if (!g) fail_msg("%s: input %d got no gradient", c->name, i);
            static const char *what[] = {"dx", "dW", "db"};
            check_values(what[i], c->name, nb_tensor_data_const(g), c->in[i].grad, c->in[i].bound,
                         c->terms[1 + i] * copies, copies, numel_of(&c->in[i]));
        }
        nb_release(x[i]);
    }
}

static void test_reference(void **state)
{
    (void)state;
    worst_ratio = worst_rel = 0;
    for (size_t i = 0; i < ARRAY_LEN(cref_cases); i++) run_case(&cref_cases[i], 1);
    print_message("%zu cases: largest difference %.3g of the allowed, %.3g relative\n",
                  ARRAY_LEN(cref_cases), worst_ratio, worst_rel);
}

static void test_reference_accumulating(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cref_cases); i++) run_case(&cref_cases[i], 2);
}

/* Under no_grad nothing is recorded, whatever requires grad. */
static void test_no_grad(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cref_cases); i++) {
        const cref_case *c = &cref_cases[i];
        nb_tensor *x[3] = {NULL};
        for (int j = 0; j < 3; j++) x[j] = make_input(&c->in[j]);
        NB_NO_GRAD
        {
            nb_tensor *out = apply_case(c, x);
            assert_non_null(out);
            assert_null(nb_tensor_grad_fn(out));
            assert_false(nb_tensor_requires_grad(out));
            nb_release(out);
        }
        for (int j = 0; j < 3; j++) nb_release(x[j]);
    }
}

/* A second backward through a freed graph fails with PyTorch's message; changing the saved
 * input in place fails the backward that needs it. */
static void test_saved(void **state)
{
    (void)state;
    nb_manual_seed(3);
    nb_scope *scope = nb_scope_begin();
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(1, 2, 4, 4)), true);
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(3, 2, 3, 3)), true);
    nb_tensor *y =
        nb_sum(nb_conv2d(x, w, NULL, NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 1), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_int_equal(nb_backward(y, NULL, false), NB_ESTATE);
    nb_error_clear();
    nb_tensor *xc = nb_requires_grad_(nb_randn(NB_SHAPE(1, 2, 4, 4)), false);
    y = nb_sum(nb_conv2d(xc, w, NULL, NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 1), NB_DIMS_ALL,
               false);
    assert_int_equal(nb_mul_scalar_(xc, 2.0f), NB_OK);
    assert_int_equal(nb_backward(y, NULL, false), NB_ESTATE);
    assert_non_null(strstr(nb_last_error()->message, "ConvolutionBackward0"));
    assert_int_equal(nb_scope_end(scope), NB_OK);
}

/* ---- the same bits at any thread count ------------------------------------------------- */

typedef struct conv_bits {
    float y[8 * 32 * 32 * 32], gx[8 * 8 * 32 * 32], gw[32 * 4 * 3 * 3], gb[32];
} conv_bits;

/* A convolution large enough for the pool: its columns (8·9 values for 8·32·32 positions),
 * the output's rows and col2im are cut into tasks by samples, and each group's products
 * (9.4 MFLOP) into blocks. */
static void run_threads_case(conv_bits *r)
{
    nb_manual_seed(11);
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(8, 8, 32, 32)), true);
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(32, 4, 3, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(32)), true);
    nb_scope *s = nb_scope_begin();
    nb_tensor *y = nb_conv2d(x, w, b, NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 2);
    assert_non_null(y);
    assert_int_equal(nb_tensor_numel(y), (int64_t)ARRAY_LEN(r->y));
    memcpy(r->y, nb_tensor_data_const(y), sizeof r->y);
    assert_int_equal(nb_backward(y, nb_randn_like(y), false), NB_OK);
    assert_int_equal(nb_scope_end(s), NB_OK);
    memcpy(r->gx, nb_tensor_data_const(nb_tensor_grad(x)), sizeof r->gx);
    memcpy(r->gw, nb_tensor_data_const(nb_tensor_grad(w)), sizeof r->gw);
    memcpy(r->gb, nb_tensor_data_const(nb_tensor_grad(b)), sizeof r->gb);
    nb_release(x);
    nb_release(w);
    nb_release(b);
}

static void test_threads_same_bits(void **state)
{
    (void)state;
    static conv_bits one, two;
    assert_int_equal(nb_set_num_threads(1), NB_OK);
    run_threads_case(&one);
    assert_int_equal(nb_set_num_threads(2), NB_OK);
    run_threads_case(&two);
    nb_set_num_threads(1);
    assert_memory_equal(one.y, two.y, sizeof one.y);
    assert_memory_equal(one.gx, two.gx, sizeof one.gx);
    assert_memory_equal(one.gw, two.gw, sizeof one.gw);
    assert_memory_equal(one.gb, two.gb, sizeof one.gb);
}

/* ---- errors ------------------------------------------------------------------------------ */

#define ASSERT_FAILS(call, code, text)                                                             \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        assert_error((code), (text));                                                              \
    } while (0)

#define P1 NB_SHAPE(1)
#define P0 NB_SHAPE(0)

static void test_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_ones(NB_SHAPE(2, 3, 5, 5)), *w = nb_ones(NB_SHAPE(4, 3, 3, 3));
    nb_tensor *b = nb_ones(NB_SHAPE(4)), *x4 = nb_ones(NB_SHAPE(2, 4, 5, 5));
    nb_tensor *u4 = nb_ones(NB_SHAPE(4, 5, 5)), *m = nb_ones(NB_SHAPE(5, 5));
    nb_tensor *x5 = nb_ones(NB_SHAPE(1, 2, 3, 5, 5)), *w3 = nb_ones(NB_SHAPE(4, 3, 3));
    nb_tensor *small = nb_ones(NB_SHAPE(2, 3, 2, 2)), *x6 = nb_ones(NB_SHAPE(2, 6, 5, 5));
    nb_tensor *w2 = nb_ones(NB_SHAPE(3, 2, 3, 3)), *w42 = nb_ones(NB_SHAPE(4, 2, 3, 3));
    nb_tensor *b3 = nb_ones(NB_SHAPE(3)), *b41 = nb_ones(NB_SHAPE(4, 1));
    nb_tensor *w0 = nb_ones(NB_SHAPE(0, 3, 3, 3)), *wc0 = nb_ones(NB_SHAPE(4, 0, 3, 3));
    nb_tensor *wk0 = nb_ones(NB_SHAPE(4, 3, 3, 0)), *x0 = nb_ones(NB_SHAPE(2, 0, 5, 5));
    nb_tensor *h0 = nb_ones(NB_SHAPE(2, 3, 0, 5));

    ASSERT_FAILS(nb_conv2d(NULL, w, b, P1, P0, P1, 1), NB_EINVAL,
                 "nb_conv2d: argument 'input' is NULL");
    ASSERT_FAILS(nb_conv2d(x, NULL, b, P1, P0, P1, 1), NB_EINVAL,
                 "nb_conv2d: argument 'weight' is NULL");
    ASSERT_FAILS(nb_conv2d(m, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                 "input of size: [5, 5]");
    ASSERT_FAILS(nb_conv2d(x5, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                 "input of size: [1, 2, 3, 5, 5]");
    ASSERT_FAILS(nb_conv2d(x, w, b, NB_SHAPE(1, 2, 3), P0, P1, 1), NB_EINVAL,
                 "nb_conv2d: expected stride to be a single integer value or a list of 2 values "
                 "to match the convolution dimensions, but got stride=[1, 2, 3]");
    ASSERT_FAILS(nb_conv2d(x, w, b, NB_SHAPE0, P0, P1, 1), NB_EINVAL, "but got stride=[]");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, NB_SHAPE(1, 2, 3), P1, 1), NB_EINVAL,
                 "nb_conv2d: expected padding to be a single integer value or a list of 2 values "
                 "to match the convolution dimensions, but got padding=[1, 2, 3]");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, NB_SHAPE0, 1), NB_EINVAL,
                 "nb_conv2d: expected dilation to be a single integer value or a list of 2 "
                 "values to match the convolution dimensions, but got dilation=[]");
    ASSERT_FAILS(nb_conv2d(x, w3, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: expected a 4-D weight [out_channels, in_channels/groups, kH, kW], "
                 "but got weight of size [4, 3, 3]");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, P1, 0), NB_EINVAL,
                 "nb_conv2d: non-positive groups is not supported");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, P1, -1), NB_EINVAL,
                 "nb_conv2d: non-positive groups is not supported");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, NB_SHAPE(0, -1), P1, 1), NB_EINVAL,
                 "nb_conv2d: negative padding is not supported");
    ASSERT_FAILS(nb_conv2d(x, w, b, NB_SHAPE(0), P0, P1, 1), NB_EINVAL,
                 "nb_conv2d: non-positive stride is not supported");
    ASSERT_FAILS(nb_conv2d(x, w, b, NB_SHAPE(1, -2), P0, P1, 1), NB_EINVAL,
                 "nb_conv2d: non-positive stride is not supported");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, NB_SHAPE(0), 1), NB_EINVAL,
                 "nb_conv2d: non-positive dilation is not supported");
    ASSERT_FAILS(nb_conv2d(x, w0, NULL, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Given groups=1, expected weight to be at least 1 at dimension 0, but "
                 "got weight of size [0, 3, 3, 3] instead");
    ASSERT_FAILS(nb_conv2d(x6, w42, NULL, P1, P0, P1, 5), NB_ESHAPE,
                 "nb_conv2d: Given groups=5, expected weight to be at least 5 at dimension 0");
    ASSERT_FAILS(nb_conv2d(x6, w2, NULL, P1, P0, P1, 2), NB_ESHAPE,
                 "nb_conv2d: Given groups=2, expected weight to be divisible by 2 at dimension 0, "
                 "but got weight of size [3, 2, 3, 3] instead");
    ASSERT_FAILS(nb_conv2d(x4, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Given groups=1, weight of size [4, 3, 3, 3], expected "
                 "input[2, 4, 5, 5] to have 3 channels, but got 4 channels instead");
    ASSERT_FAILS(nb_conv2d(u4, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Given groups=1, weight of size [4, 3, 3, 3], expected "
                 "input[1, 4, 5, 5] to have 3 channels, but got 4 channels instead");
    ASSERT_FAILS(nb_conv2d(x6, w42, NULL, P1, P0, P1, 2), NB_ESHAPE,
                 "nb_conv2d: Given groups=2, weight of size [4, 2, 3, 3], expected "
                 "input[2, 6, 5, 5] to have 4 channels, but got 6 channels instead");
    ASSERT_FAILS(nb_conv2d(x, w, b3, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Given weight of size [4, 3, 3, 3], expected bias to be "
                 "1-dimensional with 4 elements, but got bias of size [3] instead");
    ASSERT_FAILS(nb_conv2d(x, w, b41, P1, P0, P1, 1), NB_ESHAPE,
                 "but got bias of size [4, 1] instead");
    ASSERT_FAILS(nb_conv2d(x0, wc0, NULL, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: expected a weight with no dimension of size 0, but got weight of "
                 "size [4, 0, 3, 3]");
    ASSERT_FAILS(nb_conv2d(x, wk0, NULL, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: expected a weight with no dimension of size 0, but got weight of "
                 "size [4, 3, 3, 0]");
    ASSERT_FAILS(nb_conv2d(small, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "nb_conv2d: Calculated padded input size per channel: (2 x 2). Kernel size: "
                 "(3 x 3). Kernel size can't be greater than actual input size");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, NB_SHAPE(3), 1), NB_ESHAPE,
                 "nb_conv2d: Calculated padded input size per channel: (5 x 5). Kernel size: "
                 "(7 x 7). Kernel size can't be greater than actual input size");
    ASSERT_FAILS(nb_conv2d(h0, w, b, P1, P0, P1, 1), NB_ESHAPE,
                 "Calculated padded input size per channel: (0 x 5).");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, NB_SHAPE(INT64_MAX / 2 + 1), P1, 1), NB_ERANGE,
                 "nb_conv2d: the padded input or the dilated kernel overflows");
    ASSERT_FAILS(nb_conv2d(x, w, b, P1, P0, NB_SHAPE(INT64_MAX), 1), NB_ERANGE,
                 "nb_conv2d: the padded input or the dilated kernel overflows");
    /* padding of an empty input: 0 x 5 padded to 2 x 7 is large enough for a 1x1 kernel */
    nb_tensor *w11 = nb_ones(NB_SHAPE(4, 3, 1, 1));
    nb_tensor *y = nb_conv2d(h0, w11, b, P1, P1, P1, 1);
    assert_non_null(y);
    assert_int_equal(nb_tensor_shape(y)[2], 2);
    assert_int_equal(nb_tensor_numel(y), 2 * 4 * 2 * 7);
    assert_true(nb_tensor_data_const(y)[0] == 1.0f); /* the bias alone */
    nb_release(y);
    /* a NULL bias while an error is pending is that failed result */
    nb_error_clear();
    assert_null(nb_conv2d(NULL, w, b, P1, P0, P1, 1));
    assert_null(nb_conv2d(x, w, NULL, P1, P0, P1, 1));
    assert_error(NB_EINVAL, "nb_conv2d: argument 'input' is NULL");

    nb_tensor *all[] = {x,  w,   b,  x4,  u4, m,   x5,  w3, small, x6,
                        w2, w42, b3, b41, w0, wc0, wk0, x0, h0,    w11};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) nb_release(all[i]);
}

/* Products beyond BLAS's int: an empty input padded to 2^16 x 2^16 positions per sample for
 * 2^16 samples (nothing is allocated before the check). */
static void test_blas_range(void **state)
{
    (void)state;
    nb_tensor *x = nb_empty(NB_SHAPE(65536, 1, 0, 0)), *w = nb_ones(NB_SHAPE(1, 1, 1, 1));
    ASSERT_FAILS(nb_conv2d(x, w, NULL, P1, NB_SHAPE(32768), P1, 1), NB_ERANGE,
                 "nb_conv2d: matrix sizes exceed the range of BLAS's int");
    nb_release(x);
    nb_release(w);
}

/* A stride near INT64_MAX over padding: each output row's one position lies in the padding
 * (PyTorch 1.13: zeros, and zero gradients); on a second row it must not read the first. */
static void test_huge_stride(void **state)
{
    (void)state;
    const float v[] = {1, 2, 3, 4, 5, 6};
    nb_tensor *x = nb_requires_grad_(nbt_tensor_of(v, 4, (int64_t[]){1, 1, 2, 3}), true);
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(1, 1, 1, 1)), true);
    int64_t strides[] = {INT64_MAX, INT64_MAX - 1};
    for (size_t k = 0; k < ARRAY_LEN(strides); k++) {
        nb_scope *scope = nb_scope_begin();
        nb_tensor *y = nb_conv2d(x, w, NULL, NB_SHAPE(1, strides[k]), NB_SHAPE(0, 2), P1, 1);
        assert_non_null(y);
        nbt_check_shape(y, NB_SHAPE(1, 1, 2, 1), "huge stride");
        const float zeros[6] = {0};
        assert_memory_equal(nb_tensor_data_const(y), zeros, 2 * sizeof(float));
        assert_int_equal(nb_backward(y, nb_ones_like(y), false), NB_OK);
        assert_memory_equal(nb_tensor_data_const(nb_tensor_grad(x)), zeros, sizeof zeros);
        assert_memory_equal(nb_tensor_data_const(nb_tensor_grad(w)), zeros, sizeof(float));
        assert_int_equal(nb_scope_end(scope), NB_OK);
    }
    nb_release(x);
    nb_release(w);
}

/* ---- allocation failure ------------------------------------------------------------------- */

/* two convolutions (grouped, then with a bias), one backward */
static nb_status conv_step(nb_tensor *const *p)
{
    nb_scope *sc = nb_scope_begin();
    if (!sc) return nb_last_error()->code;
    nb_tensor *h = nb_conv2d(p[0], p[1], NULL, NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 2);
    nb_tensor *y = nb_conv2d(nb_relu(h), p[2], p[3], NB_SHAPE(2, 1), NB_SHAPE(0), NB_SHAPE(1), 1);
    nb_tensor *l = nb_sum(y, NB_DIMS_ALL, false);
    nb_status rc = l ? nb_backward(l, NULL, false) : nb_last_error()->code;
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

static void test_alloc_failure(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_tensor *p[4] = {nb_randn(NB_SHAPE(2, 4, 5, 5)), nb_randn(NB_SHAPE(4, 2, 3, 3)),
                       nb_randn(NB_SHAPE(3, 4, 2, 2)), nb_randn(NB_SHAPE(3))};
    for (int i = 0; i < 4; i++) assert_non_null(nb_requires_grad_(p[i], true));
    nbt_alloc_sweep("conv2d step", conv_step, p, 4);
    for (int i = 0; i < 4; i++) nb_release(p[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_reference_accumulating, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_no_grad, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_saved, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_threads_same_bits, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_blas_range, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_huge_stride, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_conv", tests, NULL, NULL);
}
