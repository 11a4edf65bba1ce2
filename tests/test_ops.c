/*
 * Ops: forward values and behaviour. Broadcasting against a naive loop, shape errors and
 * their messages, NULL propagation, node names, in-place ops, reductions, matmul against a
 * triple loop in double for every rank combination, and BCE with logits and the seed graph
 * against PyTorch 1.13 (data/ops_ref.h, made by data/gen_ops.py). Gradients are checked by
 * test_gradcheck.c.
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

#include "data/ops_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers --------------------------------------------------------------------------- */

static void check_shape(const nb_tensor *t, nb_shape want, const char *file, int line)
{
    if (!t) fail_msg("%s:%d: tensor is NULL (%s)", file, line, nb_last_error()->message);
    char got_s[128], want_s[128];
    nb_shape_format(nb_tensor_size(t), got_s, sizeof got_s);
    nb_shape_format(want, want_s, sizeof want_s);
    if (strcmp(got_s, want_s) != 0) fail_msg("%s:%d: shape %s, want %s", file, line, got_s, want_s);
}
#define assert_shape(t, s) check_shape((t), (s), __FILE__, __LINE__)

static nb_tensor *leaf(nb_tensor *t, bool grad)
{
    assert_non_null(t);
    if (grad) assert_non_null(nb_requires_grad_(t, true));
    return t;
}

/* The offset in a (right-aligned, broadcast) of the element at out's flat index k. */
static int64_t broadcast_offset(nb_shape a, nb_shape out, int64_t k)
{
    int64_t off = 0, stride = 1;
    for (int d = out.ndim - 1; d >= 0; d--) {
        int64_t i = k % out.dims[d];
        k /= out.dims[d];
        int da = d - (out.ndim - a.ndim);
        if (da >= 0) {
            if (a.dims[da] != 1) off += i * stride;
            stride *= a.dims[da];
        }
    }
    return off;
}

static int64_t shape_numel(nb_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

static float apply(int op, float a, float b)
{
    switch (op) {
    case 0:
        return a + b;
    case 1:
        return a - b;
    case 2:
        return a * b;
    default:
        return a / b;
    }
}

static nb_tensor *binop(int op, nb_tensor *a, nb_tensor *b)
{
    switch (op) {
    case 0:
        return nb_add(a, b);
    case 1:
        return nb_sub(a, b);
    case 2:
        return nb_mul(a, b);
    default:
        return nb_div(a, b);
    }
}

/* ---- broadcasting ---------------------------------------------------------------------- */

static void test_broadcast_values(void **state)
{
    (void)state;
    static const struct {
        nb_shape a, b, out;
    } cases[] = {
        {{2, {2, 3}}, {2, {2, 3}}, {2, {2, 3}}},
        {{2, {2, 3}}, {1, {3}}, {2, {2, 3}}},
        {{1, {3}}, {2, {2, 3}}, {2, {2, 3}}},
        {{2, {4, 1}}, {2, {1, 5}}, {2, {4, 5}}},
        {{3, {2, 1, 3}}, {2, {4, 1}}, {3, {2, 4, 3}}},
        {{0, {0}}, {1, {3}}, {1, {3}}},
        {{1, {3}}, {0, {0}}, {1, {3}}},
        {{0, {0}}, {0, {0}}, {0, {0}}},
        {{1, {1}}, {2, {2, 3}}, {2, {2, 3}}},
        {{3, {2, 3, 4}}, {3, {2, 1, 4}}, {3, {2, 3, 4}}},
        {{4, {2, 1, 3, 1}}, {3, {1, 1, 4}}, {4, {2, 1, 3, 4}}},
        {{2, {5, 0}}, {1, {1}}, {2, {5, 0}}},
        {{2, {1, 0}}, {2, {3, 1}}, {2, {3, 0}}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        for (int op = 0; op < 4; op++) {
            nb_tensor *a = nb_randn(cases[c].a), *b = nb_randn(cases[c].b);
            assert_non_null(a);
            assert_non_null(b);
            float *pb = nb_tensor_data(b);
            for (int64_t k = 0; k < nb_tensor_numel(b); k++)
                if (fabsf(pb[k]) < 0.25f) pb[k] = 0.25f; /* keep divisions tame */
            nb_tensor *y = binop(op, a, b);
            assert_shape(y, cases[c].out);
            const float *pa = nb_tensor_data_const(a), *py = nb_tensor_data_const(y);
            for (int64_t k = 0; k < shape_numel(cases[c].out); k++) {
                float want = apply(op, pa[broadcast_offset(cases[c].a, cases[c].out, k)],
                                   pb[broadcast_offset(cases[c].b, cases[c].out, k)]);
                if (py[k] != want)
                    fail_msg("case %zu op %d element %lld: %.9g != %.9g", c, op, (long long)k,
                             (double)py[k], (double)want);
            }
            assert_false(nb_tensor_requires_grad(y));
            nb_release(y);
            nb_release(a);
            nb_release(b);
        }
    }
}

static void test_broadcast_errors(void **state)
{
    (void)state;
    static const char *const names[] = {"nb_add", "nb_sub", "nb_mul", "nb_div"};
    nb_tensor *a = nb_ones(NB_SHAPE(2, 3)), *b = nb_ones(NB_SHAPE(4));
    nb_tensor *c = nb_ones(NB_SHAPE(3, 3)), *e = nb_ones(NB_SHAPE(0));
    for (int op = 0; op < 4; op++) {
        char want[160];
        nb_error_clear();
        assert_null(binop(op, a, b));
        assert_error(NB_ESHAPE, "cannot be broadcast");
        snprintf(want, sizeof want,
                 "%s: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)",
                 names[op]);
        assert_string_equal(nb_last_error()->message, want);

        nb_error_clear();
        assert_null(binop(op, c, a));
        snprintf(want, sizeof want,
                 "%s: shapes [3, 3] and [2, 3] cannot be broadcast (3 != 2 at dimension 0)",
                 names[op]);
        assert_string_equal(nb_last_error()->message, want);

        nb_error_clear();
        assert_null(binop(op, e, a)); /* 0 does not broadcast with 3 */
        assert_error(NB_ESHAPE, "(0 != 3 at dimension 1)");
    }
    nb_release(a);
    nb_release(b);
    nb_release(c);
    nb_release(e);
}

/* ---- with a number, unary ---------------------------------------------------------------- */

static void test_scalar_and_unary(void **state)
{
    (void)state;
    static const float xs[] = {-3.0f, -0.5f, 0.0f, 0.25f, 2.0f, 7.5f};
    nb_tensor *x = nb_from_data(xs, NB_SHAPE(2, 3));
    assert_non_null(x);
    nb_tensor *ys[5] = {nb_add_scalar(x, 1.5f), nb_sub_scalar(x, 1.5f), nb_mul_scalar(x, -2.0f),
                        nb_div_scalar(x, 4.0f), nb_neg(x)};
    for (int i = 0; i < 5; i++) {
        assert_shape(ys[i], NB_SHAPE(2, 3));
        const float *y = nb_tensor_data_const(ys[i]);
        for (int k = 0; k < 6; k++) {
            float want = i == 0   ? xs[k] + 1.5f
                         : i == 1 ? xs[k] - 1.5f
                         : i == 2 ? xs[k] * -2.0f
                         : i == 3 ? xs[k] / 4.0f
                                  : -xs[k];
            assert_true(y[k] == want);
        }
        nb_release(ys[i]);
    }
    nb_tensor *s = nb_scalar(3.0f), *t = nb_div_scalar(s, 2.0f);
    assert_shape(t, NB_SHAPE0);
    assert_true(nb_tensor_data_const(t)[0] == 1.5f);
    nb_release(t);
    nb_release(s);

    nb_tensor *r = nb_relu(x);
    assert_shape(r, NB_SHAPE(2, 3));
    assert_close(nb_tensor_data_const(r), ((const float[]){0, 0, 0, 0.25f, 2.0f, 7.5f}), 6, 0, 0);
    nb_release(r);
    nb_release(x);

    static const float big[] = {-100.0f, -30.0f, -1.0f, 0.0f, 1.0f, 30.0f, 100.0f, 1e4f};
    nb_tensor *z = nb_from_data(big, NB_SHAPE(8)), *sg = nb_sigmoid(z);
    assert_shape(sg, NB_SHAPE(8));
    const float *p = nb_tensor_data_const(sg);
    for (int k = 0; k < 8; k++) {
        double want = 1.0 / (1.0 + exp(-(double)big[k]));
        assert_true(isfinite(p[k]));
        if (!(fabs((double)p[k] - want) <= 1e-6 * want + 1e-30))
            fail_msg("sigmoid(%g) = %.9g, want %.9g", (double)big[k], (double)p[k], want);
    }
    assert_true(p[3] == 0.5f);
    nb_release(sg);
    nb_release(z);

    /* relu lets NaN through, as torch.relu does */
    nb_tensor *n = nb_from_data((const float[]){NAN, -1.0f}, NB_SHAPE(2)), *rn = nb_relu(n);
    assert_non_null(rn);
    assert_true(isnan(nb_tensor_data_const(rn)[0]));
    assert_true(nb_tensor_data_const(rn)[1] == 0.0f);
    nb_release(rn);
    nb_release(n);
}

/* ---- NULL propagation ------------------------------------------------------------------ */

static nb_tensor *op_add_scalar(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_add_scalar(a, 1.0f);
}

static nb_tensor *op_sub_scalar(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_sub_scalar(a, 1.0f);
}

static nb_tensor *op_mul_scalar(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_mul_scalar(a, 2.0f);
}

static nb_tensor *op_div_scalar(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_div_scalar(a, 2.0f);
}

static nb_tensor *op_neg(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_neg(a);
}

static nb_tensor *op_sigmoid(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_sigmoid(a);
}

static nb_tensor *op_relu(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_relu(a);
}

static nb_tensor *op_sum(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_sum(a, NB_DIMS_ALL, false);
}

static nb_tensor *op_sum_dims(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_sum(a, NB_DIMS(0), false);
}

static nb_tensor *op_mean(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_mean(a, NB_DIMS_ALL, false);
}

static nb_tensor *op_mean_dims(nb_tensor *a, nb_tensor *b)
{
    (void)b;
    return nb_mean(a, NB_DIMS(-1), true);
}

static nb_tensor *op_bce(nb_tensor *a, nb_tensor *b)
{
    return nb_binary_cross_entropy_with_logits(a, b, NULL, NULL, NB_MEAN);
}

typedef nb_tensor *(*op2_fn)(nb_tensor *, nb_tensor *);

/* Every op, its name, its tensor arguments' names (arg1 NULL: one tensor argument), the
 * node it records when its first argument requires grad, on x [2, 3] and y [2, 3]. */
static const struct {
    const char *fn;
    op2_fn f;
    const char *arg0, *arg1;
    const char *node;
} all_ops[] = {
    {"nb_add", nb_add, "a", "b", "AddBackward0"},
    {"nb_sub", nb_sub, "a", "b", "SubBackward0"},
    {"nb_mul", nb_mul, "a", "b", "MulBackward0"},
    {"nb_div", nb_div, "a", "b", "DivBackward0"},
    {"nb_add_scalar", op_add_scalar, "a", NULL, "AddBackward0"},
    {"nb_sub_scalar", op_sub_scalar, "a", NULL, "SubBackward0"},
    {"nb_mul_scalar", op_mul_scalar, "a", NULL, "MulBackward0"},
    {"nb_div_scalar", op_div_scalar, "a", NULL, "DivBackward0"},
    {"nb_neg", op_neg, "a", NULL, "NegBackward0"},
    {"nb_sigmoid", op_sigmoid, "x", NULL, "SigmoidBackward0"},
    {"nb_relu", op_relu, "x", NULL, "ReluBackward0"},
    {"nb_sum", op_sum, "x", NULL, "SumBackward0"},
    {"nb_sum", op_sum_dims, "x", NULL, "SumBackward1"},
    {"nb_mean", op_mean, "x", NULL, "MeanBackward0"},
    {"nb_mean", op_mean_dims, "x", NULL, "MeanBackward1"},
    {"nb_matmul", nb_matmul, "a", "b", "MatmulBackward0"},
    {"nb_binary_cross_entropy_with_logits", op_bce, "input", "target", "BCEWithLogitsBackward0"},
};

static void test_null_propagation(void **state)
{
    (void)state;
    nb_tensor *x = nb_ones(NB_SHAPE(3, 3));
    nb_tensor *bad_a = nb_ones(NB_SHAPE(2, 3)), *bad_b = nb_ones(NB_SHAPE(4));
    assert_null(nb_add(bad_a, bad_b));
    char earlier[256];
    snprintf(earlier, sizeof earlier, "%s", nb_last_error()->message);
    for (size_t i = 0; i < ARRAY_LEN(all_ops); i++) {
        /* a NULL made by a failed call keeps that call's error while it is unread */
        nb_error_clear();
        nb_tensor *made = nb_add(bad_a, bad_b);
        assert_null(made);
        assert_null(all_ops[i].f(made, x));
        assert_int_equal(nb_last_error()->code, NB_ESHAPE);
        assert_string_equal(nb_last_error()->message, earlier);
        if (all_ops[i].arg1) {
            assert_null(nb_add(bad_a, bad_b));
            assert_null(all_ops[i].f(x, made));
            assert_string_equal(nb_last_error()->message, earlier);
        }

        /* with no earlier error the message names the function and the argument */
        char want[160];
        nb_error_clear();
        assert_null(all_ops[i].f(NULL, x));
        snprintf(want, sizeof want, "%s: argument '%s' is NULL", all_ops[i].fn, all_ops[i].arg0);
        assert_int_equal(nb_last_error()->code, NB_EINVAL);
        assert_string_equal(nb_last_error()->message, want);
        if (all_ops[i].arg1) {
            nb_error_clear();
            assert_null(all_ops[i].f(x, NULL));
            snprintf(want, sizeof want, "%s: argument '%s' is NULL", all_ops[i].fn,
                     all_ops[i].arg1);
            assert_string_equal(nb_last_error()->message, want);
        }
    }
    /* a chain is checked once, at its end, and reports the first failure */
    nb_error_clear();
    nb_tensor *loss = nb_sum(nb_sigmoid(nb_matmul(nb_add(bad_a, bad_b), x)), NB_DIMS_ALL, false);
    assert_null(loss);
    assert_string_equal(
        nb_last_error()->message,
        "nb_add: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)");
    nb_release(x);
    nb_release(bad_a);
    nb_release(bad_b);
}

/* ---- node names ------------------------------------------------------------------------ */

static void test_node_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(all_ops); i++) {
        nb_tensor *x = leaf(nb_randn(NB_SHAPE(3, 3)), true);
        nb_tensor *y = leaf(nb_rand(NB_SHAPE(3, 3)), false);
        nb_tensor *out = all_ops[i].f(x, y);
        assert_non_null(out);
        assert_true(nb_tensor_requires_grad(out));
        assert_false(nb_tensor_is_leaf(out));
        const nb_node *n = nb_tensor_grad_fn(out);
        assert_non_null(n);
        assert_string_equal(nb_node_name(n), all_ops[i].node);
        /* one next function per input; a number's is empty, as PyTorch shows (None, 0) */
        bool with_number = strstr(all_ops[i].fn, "_scalar") != NULL;
        int want_next = all_ops[i].arg1 || with_number ? 2 : 1;
        assert_int_equal(nb_node_num_next(n), want_next);
        if (with_number) assert_null(nb_node_next(n, 1, NULL));
        int nr = -1;
        const nb_node *acc = nb_node_next(n, 0, &nr);
        assert_non_null(acc);
        assert_int_equal(nr, 0);
        assert_string_equal(nb_node_name(acc), "AccumulateGrad");
        assert_ptr_equal(nb_node_variable(acc), x);
        if (want_next == 2) assert_null(nb_node_next(n, 1, NULL));
        nb_release(out);

        /* no input requires grad, or grad mode off: no node */
        nb_tensor *plain = all_ops[i].f(y, y);
        assert_non_null(plain);
        assert_null(nb_tensor_grad_fn(plain));
        assert_false(nb_tensor_requires_grad(plain));
        nb_release(plain);
        NB_NO_GRAD
        {
            plain = all_ops[i].f(x, y);
        }
        assert_non_null(plain);
        assert_null(nb_tensor_grad_fn(plain));
        assert_false(nb_tensor_requires_grad(plain));
        nb_release(plain);
        nb_release(x);
        nb_release(y);
    }

    /* matmul: one node for every rank combination; the second operand alone requiring grad */
    static const struct {
        nb_shape a, b;
    } mm[] = {
        {{1, {4}}, {1, {4}}},
        {{1, {4}}, {2, {4, 3}}},
        {{2, {3, 4}}, {1, {4}}},
        {{2, {3, 4}}, {2, {4, 5}}},
        {{3, {2, 3, 4}}, {2, {4, 5}}},
        {{2, {3, 4}}, {3, {2, 4, 5}}},
        {{3, {2, 3, 4}}, {1, {4}}},
        {{1, {4}}, {3, {2, 4, 5}}},
        {{4, {2, 1, 3, 4}}, {4, {1, 3, 4, 5}}},
    };
    for (size_t i = 0; i < ARRAY_LEN(mm); i++) {
        nb_tensor *a = leaf(nb_randn(mm[i].a), false), *b = leaf(nb_randn(mm[i].b), true);
        nb_tensor *out = nb_matmul(a, b);
        assert_non_null(out);
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(out)), "MatmulBackward0");
        assert_null(nb_node_next(nb_tensor_grad_fn(out), 0, NULL));
        assert_non_null(nb_node_next(nb_tensor_grad_fn(out), 1, NULL));
        nb_release(out);
        nb_release(a);
        nb_release(b);
    }

    /* shape ops, with PyTorch 1.13's node names (x.reshape(...).grad_fn and so on) */
    {
        nb_tensor *x3 = leaf(nb_randn(NB_SHAPE(2, 1, 3)), true);
        nb_tensor *x2 = leaf(nb_randn(NB_SHAPE(2, 3)), true);
        nb_tensor *x1 = leaf(nb_randn(NB_SHAPE(3)), true);
        const struct {
            nb_tensor *out;
            const char *node;
        } shp[] = {
            {nb_reshape(x3, NB_SHAPE(6)), "ReshapeAliasBackward0"},
            {nb_flatten(x3, 0, -1), "ReshapeAliasBackward0"},
            {nb_view(x3, NB_SHAPE(6)), "ViewBackward0"},
            {nb_squeeze(x3, NB_DIMS_ALL), "SqueezeBackward0"},
            {nb_squeeze(x3, NB_DIMS(1)), "SqueezeBackward1"},
            {nb_unsqueeze(x3, 0), "UnsqueezeBackward0"},
            {nb_slice(x3, 0, 0, 1, 1), "SliceBackward0"},
            {nb_transpose(x3, 0, 2), "TransposeBackward0"},
            {nb_permute(x3, NB_DIMS(2, 0, 1)), "PermuteBackward0"},
            {nb_t(x2), "TBackward0"},
            {nb_t(x1), "TBackward0"},
        };
        for (size_t i = 0; i < ARRAY_LEN(shp); i++) {
            assert_non_null(shp[i].out);
            assert_string_equal(nb_node_name(nb_tensor_grad_fn(shp[i].out)), shp[i].node);
            nb_release(shp[i].out);
        }
        nb_release(x3);
        nb_release(x2);
        nb_release(x1);
    }

    /* BCE: only the target requiring grad still records the node */
    nb_tensor *x = nb_randn(NB_SHAPE(2, 3)), *t = leaf(nb_rand(NB_SHAPE(2, 3)), true);
    nb_tensor *w = nb_ones(NB_SHAPE(3));
    nb_tensor *l = nb_binary_cross_entropy_with_logits(x, t, w, w, NB_NONE);
    assert_non_null(l);
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(l)), "BCEWithLogitsBackward0");
    assert_int_equal(nb_node_num_next(nb_tensor_grad_fn(l)), 2);
    assert_null(nb_node_next(nb_tensor_grad_fn(l), 0, NULL));
    assert_non_null(nb_node_next(nb_tensor_grad_fn(l), 1, NULL));
    nb_release(l);
    nb_release(x);
    nb_release(t);
    nb_release(w);
}

/* ---- in place -------------------------------------------------------------------------- */

static void test_inplace_values(void **state)
{
    (void)state;
    static const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {2, -1, 0.5f};
    nb_tensor *b = nb_from_data(bv, NB_SHAPE(3));
    assert_non_null(b);
    for (int op = 0; op < 4; op++) {
        nb_tensor *a = nb_from_data(av, NB_SHAPE(2, 3));
        assert_non_null(a);
        uint64_t v0 = nb_tensor_version(a);
        nb_status st = op == 0   ? nb_add_(a, b)
                       : op == 1 ? nb_sub_(a, b)
                       : op == 2 ? nb_mul_(a, b)
                                 : nb_div_(a, b);
        assert_int_equal(st, NB_OK);
        assert_int_equal(nb_tensor_version(a), v0 + 1);
        assert_shape(a, NB_SHAPE(2, 3));
        for (int k = 0; k < 6; k++)
            assert_true(nb_tensor_data(a)[k] == apply(op, av[k], bv[k % 3]));
        nb_release(a);
    }
    nb_tensor *a = nb_from_data(av, NB_SHAPE(2, 3));
    uint64_t v0 = nb_tensor_version(a);
    assert_int_equal(nb_add_scalar_(a, 0.5f), NB_OK);
    assert_close(nb_tensor_data(a), ((const float[]){1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f}), 6, 0, 0);
    assert_int_equal(nb_mul_scalar_(a, -2.0f), NB_OK);
    assert_close(nb_tensor_data(a), ((const float[]){-3, -5, -7, -9, -11, -13}), 6, 0, 0);
    assert_int_equal(nb_fill_(a, 0.25f), NB_OK);
    assert_close(nb_tensor_data(a), ((const float[]){0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f}), 6,
                 0, 0);
    assert_int_equal(nb_tensor_version(a), v0 + 3);

    /* a view shares the version counter */
    nb_tensor *view = nb_reshape(a, NB_SHAPE(6));
    assert_non_null(view);
    assert_int_equal(nb_add_(view, b), NB_ESHAPE); /* [3] does not broadcast to [6] */
    assert_int_equal(nb_tensor_version(a), v0 + 3);
    nb_tensor *one = nb_scalar(1.0f);
    assert_int_equal(nb_add_(view, one), NB_OK); /* a 0-d b broadcasts */
    assert_int_equal(nb_tensor_version(a), v0 + 4);
    assert_true(nb_tensor_data(a)[5] == 1.25f);
    nb_release(one);
    nb_release(view);
    nb_release(a);
    nb_release(b);
}

static void test_inplace_errors(void **state)
{
    (void)state;
    nb_tensor *a = nb_ones(NB_SHAPE(3)), *big = nb_ones(NB_SHAPE(2, 3)),
              *four = nb_ones(NB_SHAPE(4));
    uint64_t v0 = nb_tensor_version(a);

    /* b must broadcast to a's shape: the result may not grow a */
    nb_error_clear();
    assert_int_equal(nb_add_(a, big), NB_ESHAPE);
    assert_error(NB_ESHAPE,
                 "nb_add_: output with shape [3] doesn't match the broadcast shape [2, 3]");
    assert_int_equal(nb_mul_(big, four), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_mul_: shapes [2, 3] and [4] cannot be broadcast");
    assert_int_equal(nb_tensor_version(a), v0);
    assert_close(nb_tensor_data(a), ((const float[]){1, 1, 1}), 3, 0, 0);

    /* NULL arguments */
    nb_error_clear();
    assert_int_equal(nb_sub_(NULL, a), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_sub_: argument 'a' is NULL");
    nb_error_clear();
    assert_int_equal(nb_div_(a, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_div_: argument 'b' is NULL");
    nb_error_clear();
    assert_int_equal(nb_fill_(NULL, 1.0f), NB_EINVAL);

    /* a leaf that requires grad, under grad mode: PyTorch's error; fine under no_grad */
    nb_tensor *w = leaf(nb_ones(NB_SHAPE(3)), true);
    uint64_t vw = nb_tensor_version(w);
    nb_status (*const ops[])(nb_tensor *, const nb_tensor *) = {nb_add_, nb_sub_, nb_mul_, nb_div_};
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        nb_error_clear();
        assert_int_equal(ops[i](w, a), NB_ESTATE);
        assert_error(NB_ESTATE,
                     "a leaf Variable that requires grad is being used in an in-place operation");
    }
    assert_int_equal(nb_add_scalar_(w, 1.0f), NB_ESTATE);
    assert_int_equal(nb_mul_scalar_(w, 1.0f), NB_ESTATE);
    assert_int_equal(nb_fill_(w, 1.0f), NB_ESTATE);
    assert_int_equal(nb_tensor_version(w), vw);
    assert_close(nb_tensor_data(w), ((const float[]){1, 1, 1}), 3, 0, 0);
    nb_status st = NB_EINVAL;
    NB_NO_GRAD
    {
        st = nb_sub_(w, a); /* an optimizer step */
    }
    assert_int_equal(st, NB_OK);
    assert_true(nb_is_grad_enabled());
    assert_close(nb_tensor_data(w), ((const float[]){0, 0, 0}), 3, 0, 0);
    assert_int_equal(nb_tensor_version(w), vw + 1);
    assert_true(nb_tensor_requires_grad(w));
    NB_NO_GRAD
    {
        st = nb_add_scalar_(w, 2.0f);
    }
    assert_int_equal(st, NB_OK);
    assert_close(nb_tensor_data(w), ((const float[]){2, 2, 2}), 3, 0, 0);

    /* part of a graph: a non-leaf, or b requiring grad */
    nb_tensor *y = nb_mul_scalar(w, 2.0f);
    assert_non_null(y);
    nb_error_clear();
    assert_int_equal(nb_add_(y, a), NB_ESTATE);
    assert_error(NB_ESTATE, "part of a graph");
    nb_error_clear();
    assert_int_equal(nb_add_(a, w), NB_ESTATE);
    assert_error(NB_ESTATE, "part of a graph");
    nb_release(y);

    /* changing a saved tensor in place makes the backward that needs it fail */
    nb_tensor *x = nb_full(NB_SHAPE(3), 2.0f);
    y = nb_mul(x, w); /* saves x for w's gradient */
    nb_tensor *s = nb_sum(y, NB_DIMS_ALL, false);
    assert_non_null(s);
    assert_int_equal(nb_mul_scalar_(x, 3.0f), NB_OK); /* x requires no grad: allowed */
    nb_error_clear();
    assert_int_equal(nb_backward(s, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "modified by an inplace operation");
    nb_release(s);
    nb_release(y);
    nb_release(x);

    nb_release(w);
    nb_release(a);
    nb_release(big);
    nb_release(four);
}

/* ---- reductions ------------------------------------------------------------------------ */

static void test_reductions(void **state)
{
    (void)state;
    nb_tensor *flat = nb_arange(0, 24, 1), *x = nb_reshape(flat, NB_SHAPE(2, 3, 4));
    assert_non_null(x);
    nb_release(flat);
    static const struct {
        int ndims;
        int dims[3];
        bool keepdim;
        nb_shape out;
        unsigned mask; /* the reduced dims */
    } cases[] = {
        {0, {0}, false, {0, {0}}, 7u},
        {0, {0}, true, {0, {0}}, 7u}, /* NB_DIMS_ALL: always 0-d */
        {2, {0, 2}, true, {3, {1, 3, 1}}, 5u},
        {2, {0, 2}, false, {1, {3}}, 5u},
        {2, {2, 0}, false, {1, {3}}, 5u},
        {1, {-1}, false, {2, {2, 3}}, 4u},
        {1, {1}, true, {3, {2, 1, 4}}, 2u},
        {1, {-3}, false, {2, {3, 4}}, 1u},
        {3, {0, 1, 2}, false, {0, {0}}, 7u},
        {3, {2, -2, 0}, true, {3, {1, 1, 1}}, 7u},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        for (int mean = 0; mean < 2; mean++) {
            nb_dims dims =
                cases[c].ndims ? nb_dims_make(cases[c].ndims, cases[c].dims) : NB_DIMS_ALL;
            nb_tensor *r =
                mean ? nb_mean(x, dims, cases[c].keepdim) : nb_sum(x, dims, cases[c].keepdim);
            assert_shape(r, cases[c].out);
            /* naive: accumulate every element into its output slot */
            double want[24] = {0};
            int64_t count = 1, n_out = nb_tensor_numel(r);
            static const int64_t size[3] = {2, 3, 4};
            for (int d = 0; d < 3; d++)
                if (cases[c].mask & (1u << d)) count *= size[d];
            for (int64_t i = 0; i < 2; i++)
                for (int64_t j = 0; j < 3; j++)
                    for (int64_t k = 0; k < 4; k++) {
                        int64_t idx[3] = {i, j, k}, o = 0;
                        for (int d = 0; d < 3; d++)
                            if (!(cases[c].mask & (1u << d))) o = o * size[d] + idx[d];
                        want[o] += (double)(i * 12 + j * 4 + k);
                    }
            const float *p = nb_tensor_data_const(r);
            for (int64_t o = 0; o < n_out; o++) {
                double w = mean ? want[o] / (double)count : want[o];
                if (fabs((double)p[o] - w) > 1e-6 * fabs(w))
                    fail_msg("case %zu %s: element %lld = %.9g, want %.9g", c,
                             mean ? "mean" : "sum", (long long)o, (double)p[o], w);
            }
            nb_release(r);
        }
    }

    /* 0-d and empty inputs */
    nb_tensor *s = nb_scalar(2.5f), *r = nb_sum(s, NB_DIMS_ALL, false);
    assert_shape(r, NB_SHAPE0);
    assert_true(nb_tensor_data_const(r)[0] == 2.5f);
    nb_release(r);
    r = nb_mean(s, NB_DIMS(0), true); /* a 0-d tensor takes dim 0 or -1 */
    assert_shape(r, NB_SHAPE0);
    assert_true(nb_tensor_data_const(r)[0] == 2.5f);
    nb_release(r);
    nb_release(s);
    nb_tensor *e = nb_zeros(NB_SHAPE(0, 3));
    r = nb_sum(e, NB_DIMS(0), false);
    assert_shape(r, NB_SHAPE(3));
    assert_close(nb_tensor_data_const(r), ((const float[]){0, 0, 0}), 3, 0, 0);
    nb_release(r);
    r = nb_sum(e, NB_DIMS_ALL, false);
    assert_shape(r, NB_SHAPE0);
    assert_true(nb_tensor_data_const(r)[0] == 0.0f);
    nb_release(r);
    r = nb_mean(e, NB_DIMS_ALL, false); /* torch: nan */
    assert_non_null(r);
    assert_true(isnan(nb_tensor_data_const(r)[0]));
    nb_release(r);
    nb_release(e);

    /* errors */
    nb_error_clear();
    assert_null(nb_sum(x, NB_DIMS(3), false));
    assert_error(NB_EINVAL, "nb_sum: dimension out of range (expected to be in range of [-3, 2], "
                            "but got 3)");
    nb_error_clear();
    assert_null(nb_mean(x, NB_DIMS(-4), false));
    assert_error(NB_EINVAL, "nb_mean: dimension out of range");
    nb_error_clear();
    assert_null(nb_sum(x, NB_DIMS(0, -3), true));
    assert_error(NB_EINVAL, "nb_sum: dim 0 appears multiple times in the list of dims");
    nb_error_clear();
    assert_null(nb_sum(x, nb_dims_make(0, NULL), false));
    assert_error(NB_EINVAL, "nb_sum: empty list of dims (NB_DIMS_ALL is every dim)");
    nb_error_clear();
    assert_null(nb_mean(x, nb_dims_make(-5, NULL), false));
    assert_error(NB_EINVAL, "nb_mean: number of dims -5 is outside [1, 8]");
    nb_release(x);
}

/* ---- matmul ---------------------------------------------------------------------------- */

/* torch.matmul in double, naively: a' [..., m, k] · b' [..., k, n], batch dims broadcast. */
static nb_shape naive_matmul(nb_shape as, const float *a, nb_shape bs, const float *b, double *c)
{
    int64_t m = as.ndim >= 2 ? as.dims[as.ndim - 2] : 1, k = as.dims[as.ndim - 1];
    int64_t n = bs.ndim >= 2 ? bs.dims[bs.ndim - 1] : 1;
    nb_shape ba = {as.ndim > 2 ? as.ndim - 2 : 0, {0}}, bb = {bs.ndim > 2 ? bs.ndim - 2 : 0, {0}};
    for (int i = 0; i < ba.ndim; i++) ba.dims[i] = as.dims[i];
    for (int i = 0; i < bb.ndim; i++) bb.dims[i] = bs.dims[i];
    nb_shape batch = {ba.ndim > bb.ndim ? ba.ndim : bb.ndim, {0}};
    for (int i = 0; i < batch.ndim; i++) {
        int ia = i - (batch.ndim - ba.ndim), ib = i - (batch.ndim - bb.ndim);
        int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
        batch.dims[i] = da == 1 ? db : da;
    }
    for (int64_t t = 0; t < shape_numel(batch); t++) {
        const float *A = a + broadcast_offset(ba, batch, t) * m * k;
        const float *B = b + broadcast_offset(bb, batch, t) * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (int64_t p = 0; p < k; p++) acc += (double)A[i * k + p] * (double)B[p * n + j];
                c[(t * m + i) * n + j] = acc;
            }
    }
    nb_shape out = batch;
    if (as.ndim >= 2) out.dims[out.ndim++] = m;
    if (bs.ndim >= 2) out.dims[out.ndim++] = n;
    return out;
}

static void test_matmul_values(void **state)
{
    (void)state;
    static const struct {
        nb_shape a, b;
    } cases[] = {
        {{1, {3}}, {1, {3}}},
        {{1, {4}}, {2, {4, 5}}},
        {{2, {5, 4}}, {1, {4}}},
        {{2, {3, 4}}, {2, {4, 5}}},
        {{2, {1, 1}}, {2, {1, 1}}},
        {{2, {17, 33}}, {2, {33, 9}}},
        {{3, {2, 3, 4}}, {2, {4, 5}}},
        {{2, {3, 4}}, {3, {2, 4, 5}}},
        {{3, {2, 3, 4}}, {1, {4}}},
        {{1, {4}}, {3, {2, 4, 5}}},
        {{3, {2, 3, 4}}, {3, {2, 4, 5}}},
        {{3, {2, 3, 4}}, {3, {1, 4, 5}}},
        {{3, {1, 3, 4}}, {3, {2, 4, 5}}},
        {{4, {2, 1, 3, 4}}, {4, {1, 3, 4, 5}}},
        {{4, {2, 1, 3, 4}}, {3, {3, 4, 2}}},
        {{3, {7, 6, 8}}, {4, {2, 1, 8, 3}}},
        {{4, {3, 1, 2, 5}}, {1, {5}}},
        /* empty: k = 0 gives zeros, m or n or a batch of 0 an empty result */
        {{1, {0}}, {1, {0}}},
        {{2, {2, 0}}, {2, {0, 3}}},
        {{2, {0, 3}}, {2, {3, 2}}},
        {{3, {2, 3, 0}}, {2, {0, 4}}},
        {{3, {0, 2, 3}}, {2, {3, 4}}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        nb_tensor *a = nb_randn(cases[c].a), *b = nb_randn(cases[c].b);
        assert_non_null(a);
        assert_non_null(b);
        nb_tensor *y = nb_matmul(a, b);
        if (!y) fail_msg("case %zu: %s", c, nb_last_error()->message);
        double *want = calloc(1024, sizeof *want);
        assert_non_null(want);
        nb_shape ws = naive_matmul(cases[c].a, nb_tensor_data_const(a), cases[c].b,
                                   nb_tensor_data_const(b), want);
        assert_shape(y, ws);
        assert_true(shape_numel(ws) <= 1024);
        const float *p = nb_tensor_data_const(y);
        for (int64_t i = 0; i < shape_numel(ws); i++)
            if (!(fabs((double)p[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i])))
                fail_msg("case %zu element %lld: %.9g, want %.9g", c, (long long)i, (double)p[i],
                         want[i]);
        free(want);
        nb_release(y);
        nb_release(a);
        nb_release(b);
    }
}

/*
 * Vector-matrix and matrix-vector products, forward and backward, on both sides of the sizes
 * below which nabla runs its own loops instead of sgemv and sger (blas.c: outer products up
 * to 4096 elements; Wᵀx up to 64 with at most twice as many rows as columns): x[k]·W[k, n]
 * and V[n, k]·x, then loss = Σ g·(x·W) + Σ h·(V·x), against sums in double. x feeds both
 * products, so its second gradient adds into the first (beta = 1).
 */
static void test_matvec_paths(void **state)
{
    (void)state;
    static const int64_t shapes[][2] = {{5, 3},  {3, 10}, {10, 3},  {8, 8},   {16, 4}, {4, 16},
                                        {4, 17}, {33, 2}, {64, 64}, {65, 64}, {1, 64}, {64, 1}};
    nb_manual_seed(7);
    for (size_t c = 0; c < ARRAY_LEN(shapes); c++) {
        int64_t k = shapes[c][0], n = shapes[c][1];
        nb_tensor *x = leaf(nb_randn(NB_SHAPE(k)), true), *w = leaf(nb_randn(NB_SHAPE(k, n)), true);
        nb_tensor *v = leaf(nb_randn(NB_SHAPE(n, k)), true);
        nb_tensor *g = nb_randn(NB_SHAPE(n)), *h = nb_randn(NB_SHAPE(n));
        nb_scope *scope = nb_scope_begin(); /* the graph's tensors */
        nb_tensor *xw = nb_matmul(x, w), *vx = nb_matmul(v, x);
        nb_tensor *loss = nb_add(nb_sum(nb_mul(xw, g), NB_DIMS_ALL, false),
                                 nb_sum(nb_mul(vx, h), NB_DIMS_ALL, false));
        if (!loss) fail_msg("case %zu: %s", c, nb_last_error()->message);
        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        const float *X = nb_tensor_data_const(x), *W = nb_tensor_data_const(w);
        const float *V = nb_tensor_data_const(v), *G = nb_tensor_data_const(g);
        const float *H = nb_tensor_data_const(h);
        const float *gx = nb_tensor_data_const(nb_tensor_grad(x));
        const float *gw = nb_tensor_data_const(nb_tensor_grad(w));
        const float *gv = nb_tensor_data_const(nb_tensor_grad(v));
        double tol = 1e-5 * (double)k;
        for (int64_t j = 0; j < n;
             j++) { /* (x·W)[j] = Σ_i x[i] W[i, j]; (V·x)[j] = Σ_i V[j, i] x[i] */
            double want_xw = 0.0, want_vx = 0.0;
            for (int64_t i = 0; i < k; i++) {
                want_xw += (double)X[i] * (double)W[i * n + j];
                want_vx += (double)V[j * k + i] * (double)X[i];
            }
            assert_close(nb_tensor_data_const(xw) + j, &(float){(float)want_xw}, 1, tol, tol);
            assert_close(nb_tensor_data_const(vx) + j, &(float){(float)want_vx}, 1, tol, tol);
        }
        for (int64_t i = 0; i < k; i++) { /* dx = W·g + Vᵀ·h, dW = x ⊗ g, dV = h ⊗ x */
            double want = 0.0;
            for (int64_t j = 0; j < n; j++) {
                want += (double)W[i * n + j] * (double)G[j] + (double)V[j * k + i] * (double)H[j];
                /* one product each: exact */
                assert_close(gw + i * n + j, &(float){X[i] * G[j]}, 1, 0.0, 0.0);
                assert_close(gv + j * k + i, &(float){H[j] * X[i]}, 1, 0.0, 0.0);
            }
            assert_close(gx + i, &(float){(float)want}, 1, tol, tol);
        }
        assert_int_equal(nb_scope_end(scope), NB_OK);
        nb_release(x);
        nb_release(w);
        nb_release(v);
        nb_release(g);
        nb_release(h);
    }
}

static void test_matmul_errors(void **state)
{
    (void)state;
    nb_tensor *v5 = nb_ones(NB_SHAPE(5)), *m43 = nb_ones(NB_SHAPE(4, 3));
    nb_tensor *m23 = nb_ones(NB_SHAPE(2, 3)), *m45 = nb_ones(NB_SHAPE(4, 5));
    nb_tensor *b234 = nb_ones(NB_SHAPE(2, 3, 4)), *b345 = nb_ones(NB_SHAPE(3, 4, 5));
    nb_tensor *s = nb_scalar(2.0f), *v3 = nb_ones(NB_SHAPE(3));

    nb_error_clear();
    assert_null(nb_matmul(v5, m43));
    assert_int_equal(nb_last_error()->code, NB_ESHAPE);
    assert_string_equal(nb_last_error()->message,
                        "nb_matmul: size mismatch, [5] @ [4, 3] (5 != 4)");
    nb_error_clear();
    assert_null(nb_matmul(m23, m45));
    assert_string_equal(nb_last_error()->message,
                        "nb_matmul: size mismatch, [2, 3] @ [4, 5] (3 != 4)");
    nb_error_clear();
    assert_null(nb_matmul(m43, v5));
    assert_error(NB_ESHAPE, "nb_matmul: size mismatch, [4, 3] @ [5] (3 != 5)");
    nb_error_clear();
    assert_null(nb_matmul(v3, v5));
    assert_error(NB_ESHAPE, "nb_matmul: size mismatch, [3] @ [5] (3 != 5)");

    /* 0-d operands */
    nb_error_clear();
    assert_null(nb_matmul(s, v3));
    assert_error(NB_ESHAPE, "nb_matmul: both arguments to matmul need to be at least 1D");
    nb_error_clear();
    assert_null(nb_matmul(v3, s));
    assert_error(NB_ESHAPE, "nb_matmul:");
    nb_error_clear();
    assert_null(nb_matmul(s, s));
    assert_error(NB_ESHAPE, "nb_matmul:");

    /* batch dims that do not broadcast */
    nb_error_clear();
    assert_null(nb_matmul(b234, b345));
    assert_error(NB_ESHAPE, "nb_matmul:");
    assert_error(NB_ESHAPE, "cannot be broadcast");

    nb_release(v5);
    nb_release(m43);
    nb_release(m23);
    nb_release(m45);
    nb_release(b234);
    nb_release(b345);
    nb_release(s);
    nb_release(v3);
}

/* ---- BCE with logits against PyTorch --------------------------------------------------- */

/* got is finite and matches PyTorch's value within 1e-6 (absolute, and relative). */
static void check_ref(const char *name, const char *what, const float *got, const float *want,
                      int64_t n)
{
    if (!got) fail_msg("%s: no %s", name, what);
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        if (!isfinite(g) || !(fabs(g - w) <= 1e-6 + 1e-6 * fabs(w)))
            fail_msg("%s: %s element %lld: got %.9g, want %.9g", name, what, (long long)i, g, w);
    }
}

static void test_bce_reference(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(ops_ref_bce_cases); c++) {
        const ops_ref_bce *r = &ops_ref_bce_cases[c];
        nb_shape shape = nb_shape_make(r->ndim, r->dims);
        int64_t n = shape_numel(shape);
        nb_tensor *x = leaf(nb_from_data(r->input, shape), true);
        nb_tensor *y = leaf(nb_from_data(r->target, shape), true);
        nb_tensor *w =
            r->w_ndim < 0 ? NULL : nb_from_data(r->weight, nb_shape_make(r->w_ndim, r->w_dims));
        nb_tensor *p =
            r->p_ndim < 0 ? NULL : nb_from_data(r->pos_weight, nb_shape_make(r->p_ndim, r->p_dims));
        nb_tensor *loss =
            nb_binary_cross_entropy_with_logits(x, y, w, p, (nb_reduction)r->reduction);
        if (!loss) fail_msg("%s: %s", r->name, nb_last_error()->message);
        int64_t nl = r->reduction == NB_NONE ? n : 1;
        if (r->reduction == NB_NONE)
            assert_shape(loss, shape);
        else
            assert_shape(loss, NB_SHAPE0);
        check_ref(r->name, "loss", nb_tensor_data_const(loss), r->loss, nl);

        nb_tensor *g = nb_from_data(r->grad_out, nb_tensor_size(loss));
        assert_int_equal(nb_backward(loss, g, false), NB_OK);
        const float *gx = nb_tensor_data_const(nb_tensor_grad(x));
        const float *gy = nb_tensor_data_const(nb_tensor_grad(y));
        check_ref(r->name, "input grad", gx, r->grad_input, n);
        check_ref(r->name, "target grad", gy, r->grad_target, n);
        nb_release(g);
        nb_release(loss);
        nb_release(x);
        nb_release(y);
        nb_release(w);
        nb_release(p);
    }
}

/*
 * The loss and its gradients come in blocks of several elements, the last one padded: on 21
 * elements (whole blocks and a part) every loss and gradient has the bits of the same
 * element computed alone (a 1-element input, all padding but one lane), which the reference
 * cases pin to PyTorch; for every mix of weight and pos_weight (both broadcast over rows) and
 * every reduction, and again on a second backward that adds into the grads.
 */
static void release4(nb_tensor *a, nb_tensor *b, nb_tensor *c, nb_tensor *d)
{
    nb_release(a);
    nb_release(b);
    nb_release(c);
    nb_release(d);
}

static void bce_alone(float x, float y, const float *w, const float *p, float g, float *loss,
                      float *gx, float *gy)
{
    nb_tensor *tx = leaf(nb_from_data(&x, NB_SHAPE(1)), true);
    nb_tensor *ty = leaf(nb_from_data(&y, NB_SHAPE(1)), true);
    nb_tensor *tw = w ? nb_from_data(w, NB_SHAPE(1)) : NULL;
    nb_tensor *tp = p ? nb_from_data(p, NB_SHAPE(1)) : NULL;
    nb_tensor *l = nb_binary_cross_entropy_with_logits(tx, ty, tw, tp, NB_NONE);
    assert_non_null(l);
    *loss = nb_tensor_data_const(l)[0];
    nb_tensor *tg = nb_from_data(&g, NB_SHAPE(1));
    assert_int_equal(nb_backward(l, tg, false), NB_OK);
    *gx = nb_tensor_data_const(nb_tensor_grad(tx))[0];
    *gy = nb_tensor_data_const(nb_tensor_grad(ty))[0];
    release4(tg, l, tx, ty);
    release4(tw, tp, NULL, NULL);
}

static void assert_same_bits(const char *what, int cfg, int64_t e, float got, float want)
{
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("case %d, %s element %lld: got %a, want %a", cfg, what, (long long)e, (double)got,
                 (double)want);
}

static void test_bce_blocks(void **state)
{
    (void)state;
    enum { R = 3, C = 7, N = R * C };
    float x[N], y[N], w[C], p[C], g[N];
    static const float edge[] = {1e4f, -1e4f, 30.0f, -30.0f, 0.0f, -0.0f, 1e-30f};
    for (int e = 0; e < N; e++) {
        x[e] = e < 7 ? edge[e] : (float)(e % 5) * 0.75f - 1.6f + (float)e * 0.01f;
        y[e] = (float)(e % 4) / 3.0f;
        g[e] = 0.5f * (float)(e + 1);
    }
    for (int c = 0; c < C; c++) {
        w[c] = 0.25f + 0.5f * (float)c;
        p[c] = 3.0f - 0.375f * (float)c;
    }
    for (int cfg = 0; cfg < 12; cfg++) {
        bool has_w = cfg & 1, has_p = cfg & 2;
        nb_reduction red = cfg / 4 == 0 ? NB_NONE : cfg / 4 == 1 ? NB_SUM : NB_MEAN;
        nb_tensor *tx = leaf(nb_from_data(x, NB_SHAPE(R, C)), true);
        nb_tensor *ty = leaf(nb_from_data(y, NB_SHAPE(R, C)), true);
        nb_tensor *tw = has_w ? nb_from_data(w, NB_SHAPE(C)) : NULL;
        nb_tensor *tp = has_p ? nb_from_data(p, NB_SHAPE(C)) : NULL;
        float want_l[N], want_gx[N], want_gy[N];
        double total = 0.0;
        for (int e = 0; e < N; e++) {
            /* a reduced loss passes one gradient, g[0], to every element */
            float ge = red == NB_NONE ? g[e] : g[0];
            bce_alone(x[e], y[e], has_w ? &w[e % C] : NULL, has_p ? &p[e % C] : NULL, ge,
                      &want_l[e], &want_gx[e], &want_gy[e]);
            total += (double)want_l[e];
            if (red == NB_MEAN) {
                want_gx[e] /= (float)N;
                want_gy[e] /= (float)N;
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            nb_tensor *l = nb_binary_cross_entropy_with_logits(tx, ty, tw, tp, red);
            assert_non_null(l);
            const float *ld = nb_tensor_data_const(l);
            if (red == NB_NONE)
                for (int e = 0; e < N; e++) assert_same_bits("loss", cfg, e, ld[e], want_l[e]);
            else
                assert_same_bits("loss", cfg, 0, ld[0],
                                 red == NB_SUM ? (float)total : (float)total / (float)N);
            nb_tensor *tg = nb_from_data(g, red == NB_NONE ? NB_SHAPE(R, C) : NB_SHAPE0);
            assert_int_equal(nb_backward(l, tg, false), NB_OK);
            const float *gx = nb_tensor_data_const(nb_tensor_grad(tx));
            const float *gy = nb_tensor_data_const(nb_tensor_grad(ty));
            for (int e = 0; e < N; e++) { /* the second pass adds the same again */
                assert_same_bits("input grad", cfg, e, gx[e], want_gx[e] * (float)(pass + 1));
                assert_same_bits("target grad", cfg, e, gy[e], want_gy[e] * (float)(pass + 1));
            }
            release4(tg, l, NULL, NULL);
        }
        release4(tx, ty, tw, tp);
    }
}

static void test_bce_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_zeros(NB_SHAPE(2, 3)), *y3 = nb_zeros(NB_SHAPE(3));
    nb_tensor *w4 = nb_ones(NB_SHAPE(4)), *w23 = nb_ones(NB_SHAPE(2, 3)),
              *w13 = nb_ones(NB_SHAPE(1, 3));
    nb_tensor *w223 = nb_ones(NB_SHAPE(2, 2, 3));
    static const char fn[] = "nb_binary_cross_entropy_with_logits";

    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, y3, NULL, NULL, NB_MEAN));
    assert_error(NB_ESHAPE,
                 "nb_binary_cross_entropy_with_logits: Target size ([3]) must be the same as "
                 "input size ([2, 3])");
    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, x, w4, NULL, NB_MEAN));
    assert_error(NB_ESHAPE, fn);
    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, x, NULL, w4, NB_SUM));
    assert_error(NB_ESHAPE, fn);
    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, x, w223, NULL, NB_NONE)); /* grows x */
    assert_error(NB_ESHAPE, "does not broadcast to input shape [2, 3]");
    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, x, NULL, NULL, (nb_reduction)7));
    assert_error(NB_EINVAL, "7 is not a valid value for reduction");

    /* the broadcast forms are fine: weight [1, 3], [2, 3] */
    nb_tensor *l = nb_binary_cross_entropy_with_logits(x, x, w13, w23, NB_NONE);
    assert_shape(l, NB_SHAPE(2, 3));
    for (int k = 0; k < 6; k++)
        assert_close(nb_tensor_data_const(l) + k, ((const float[]){0.69314718f}), 1, 1e-6, 0);
    nb_release(l);

    nb_release(x);
    nb_release(y3);
    nb_release(w4);
    nb_release(w23);
    nb_release(w13);
    nb_release(w223);
}

/* The tutorial's seed graph reproduces PyTorch's numbers for seeds 0 and 1. */
/* ---- several outputs: split, chunk ------------------------------------------------------ */

static void test_split(void **state)
{
    (void)state;
    nb_tensor *x = nb_arange(0, 10, 1);
    nb_tensor *x52 = nb_reshape(x, NB_SHAPE(5, 2));
    nb_release(x);
    x = nb_requires_grad_(x52, true);
    assert_int_equal(nb_split(x, 2, 0, NULL, 0), 3); /* measuring */
    nb_tensor *p[3];
    assert_int_equal(nb_split(x, 2, 0, p, 3), 3);
    assert_string_equal(nbt_repr(p[2]), "tensor([[8., 9.]], grad_fn=<SplitBackward0>)");
    assert_int_equal(nb_tensor_dim_size(p[0], 0), 2);
    assert_int_equal(nb_tensor_dim_size(p[2], 0), 1);
    for (int i = 0; i < 3; i++) {
        assert_true(nb_tensor_shares_storage(p[i], x));                     /* along dim 0: views */
        assert_ptr_equal(nb_tensor_grad_fn(p[i]), nb_tensor_grad_fn(p[0])); /* one node */
    }
    assert_int_equal(nb_node_num_next(nb_tensor_grad_fn(p[0])), 1);
    /* (a.sum()·2 + c.sum()).backward(): b got no gradient, its rows are zero (PyTorch) */
    nb_scope *sc = nb_scope_begin();
    nb_tensor *loss = nb_add(nb_mul_scalar(nb_sum(p[0], NB_DIMS_ALL, false), 2.0f),
                             nb_sum(p[2], NB_DIMS_ALL, false));
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    nb_scope_keep(loss);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    assert_string_equal(nbt_repr(nb_tensor_grad(x)), "tensor([[2., 2.],\n"
                                                     "        [2., 2.],\n"
                                                     "        [0., 0.],\n"
                                                     "        [0., 0.],\n"
                                                     "        [1., 1.]])");
    nb_release(loss);
    for (int i = 0; i < 3; i++) nb_release(p[i]);

    /* along dim 1: copies; chunk sizes as PyTorch's */
    assert_int_equal(nb_chunk(x, 2, 1, p, 3), 2);
    assert_string_equal(nbt_repr(p[1]), "tensor([[1.],\n"
                                        "        [3.],\n"
                                        "        [5.],\n"
                                        "        [7.],\n"
                                        "        [9.]], grad_fn=<SplitBackward0>)");
    assert_false(nb_tensor_shares_storage(p[1], x));
    nb_release(p[0]);
    nb_release(p[1]);
    nb_tensor *six = nb_ones(NB_SHAPE(6)), *five = nb_ones(NB_SHAPE(5)),
              *none = nb_ones(NB_SHAPE(0));
    assert_int_equal(nb_chunk(six, 4, 0, NULL, 0), 3); /* ceil(6/4) = 2 each: 3 pieces */
    assert_int_equal(nb_chunk(five, 3, 0, p, 3), 3);
    assert_int_equal(nb_tensor_numel(p[2]), 1);
    for (int i = 0; i < 3; i++) nb_release(p[i]);
    assert_int_equal(nb_split(none, 2, 0, p, 3), 1); /* a size-0 dim: one empty piece */
    assert_int_equal(nb_tensor_numel(p[0]), 0);
    nb_release(p[0]);
    assert_int_equal(nb_split(none, 0, 0, p, 3), 1);
    nb_release(p[0]);

    /* errors */
    nb_error_clear();
    assert_int_equal(nb_split(x, 0, 0, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_split: split_size can only be 0 if dimension size is 0, but got "
                            "split_size 0 for a dimension of size 5");
    assert_int_equal(nb_split(x, 2, 0, p, 2), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_split: 3 pieces do not fit in an array of 2");
    assert_int_equal(nb_split(x, 2, 2, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_split: dimension out of range (expected to be in range of [-2, "
                            "1], but got 2)");
    nb_tensor *s0 = nb_scalar(1);
    assert_int_equal(nb_split(s0, 1, 0, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_split: a 0-d tensor cannot be split");
    assert_int_equal(nb_chunk(x, 0, 0, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_chunk: chunk expects `chunks` to be greater than 0, got: 0");
    assert_int_equal(nb_chunk(NULL, 2, 0, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_chunk: argument 'x' is NULL");
    assert_int_equal(nb_split(NULL, 2, 0, p, 3), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_split: argument 'x' is NULL");

    /* out of memory at any allocation: no piece comes back, nothing leaks */
    for (long k = 1;; k++) {
        nbt_fail_alloc_after(k);
        long live = nbt_alloc_live();
        int got = nb_chunk(x, 3, 1, p, 3);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_int_equal(got, 2);
            for (int i = 0; i < got; i++) nb_release(p[i]);
            assert_true(k > 2);
            break;
        }
        assert_int_equal(got, NB_ENOMEM);
        assert_error(NB_ENOMEM, "nb_chunk: out of memory");
        assert_int_equal(nbt_alloc_live(), live);
    }
    nb_release(s0);
    nb_release(six);
    nb_release(five);
    nb_release(none);
    nb_release(x);
}

static void test_seed_graph(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(ops_ref_seed_cases); c++) {
        const ops_ref_seed *r = &ops_ref_seed_cases[c];
        nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
        nb_manual_seed(r->seed);
        nb_tensor *w = leaf(nb_randn(NB_SHAPE(5, 3)), true);
        nb_tensor *b = leaf(nb_randn(NB_SHAPE(3)), true);
        /* nb_randn reproduces torch.randn bit for bit */
        assert_close(nb_tensor_data_const(w), r->w, 15, 0, 0);
        assert_close(nb_tensor_data_const(b), r->b, 3, 0, 0);

        nb_tensor *xw = nb_matmul(x, w);
        nb_tensor *z = nb_add(xw, b);
        nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
        assert_non_null(loss);
        assert_shape(z, NB_SHAPE(3));
        assert_shape(loss, NB_SHAPE0);
        assert_close(nb_tensor_data_const(z), r->z, 3, 0, 1e-6);
        float lv;
        assert_int_equal(nb_tensor_item(loss, &lv), NB_OK);
        assert_close(&lv, &r->loss, 1, 1e-6, 0);
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(loss)), "BCEWithLogitsBackward0");
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(z)), "AddBackward0");
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(xw)), "MatmulBackward0");

        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        assert_close(nb_tensor_data_const(nb_tensor_grad(w)), r->w_grad, 15, 0, 1e-6);
        assert_close(nb_tensor_data_const(nb_tensor_grad(b)), r->b_grad, 3, 0, 1e-6);
        assert_null(nb_tensor_grad(x));

        nb_release(loss);
        nb_release(z);
        nb_release(xw);
        nb_release(b);
        nb_release(w);
        nb_release(y);
        nb_release(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broadcast_values, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_broadcast_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_scalar_and_unary, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_propagation, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_node_names, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace_values, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_reductions, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_matmul_values, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_matvec_paths, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_matmul_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_bce_reference, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_bce_blocks, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_bce_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_split, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_seed_graph, nbt_setup_counting, nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
