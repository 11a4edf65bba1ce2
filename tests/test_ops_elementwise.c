/*
 * Elementwise ops: unary ops and activations, pow / maximum / minimum, the comparisons,
 * where and masked_fill. Values and gradients against PyTorch 1.13 (data/elementwise_ref.h,
 * made by data/gen_elementwise.py) at 0, -0, ±inf, NaN, ±1e4 and the large-magnitude
 * regions; gradients accumulated into a lent buffer; node names and edges; every error with
 * its message; allocation failures. Gradients at ordinary points are checked by
 * test_gradcheck.c (rows in gradcheck/elementwise.h).
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

#include "data/elementwise_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the ops under test ------------------------------------------------------------------ */

typedef nb_tensor *(*unary_call)(nb_tensor *x, const float *k);

static nb_tensor *u_exp(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_exp(x);
}

static nb_tensor *u_expm1(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_expm1(x);
}

static nb_tensor *u_log(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_log(x);
}

static nb_tensor *u_log2(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_log2(x);
}

static nb_tensor *u_log1p(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_log1p(x);
}

static nb_tensor *u_sqrt(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_sqrt(x);
}

static nb_tensor *u_rsqrt(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_rsqrt(x);
}

static nb_tensor *u_reciprocal(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_reciprocal(x);
}

static nb_tensor *u_square(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_square(x);
}

static nb_tensor *u_pow_scalar(nb_tensor *x, const float *k)
{
    return nb_pow_scalar(x, k[0]);
}

static nb_tensor *u_sin(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_sin(x);
}

static nb_tensor *u_cos(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_cos(x);
}

static nb_tensor *u_tanh(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_tanh(x);
}

static nb_tensor *u_abs(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_abs(x);
}

static nb_tensor *u_sign(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_sign(x);
}

static nb_tensor *u_clamp(nb_tensor *x, const float *k)
{
    return nb_clamp(x, k[0], k[1]);
}

static nb_tensor *u_hardtanh(nb_tensor *x, const float *k)
{
    return nb_hardtanh(x, k[0], k[1]);
}

static nb_tensor *u_leaky_relu(nb_tensor *x, const float *k)
{
    return nb_leaky_relu(x, k[0]);
}

static nb_tensor *u_elu(nb_tensor *x, const float *k)
{
    return nb_elu(x, k[0]);
}

static nb_tensor *u_gelu(nb_tensor *x, const float *k)
{
    return nb_gelu(x, k[0] != 0.0f ? NB_GELU_TANH : NB_GELU_NONE);
}

static nb_tensor *u_silu(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_silu(x);
}

static nb_tensor *u_softplus(nb_tensor *x, const float *k)
{
    return nb_softplus(x, k[0], k[1]);
}

static nb_tensor *u_logsigmoid(nb_tensor *x, const float *k)
{
    (void)k;
    return nb_logsigmoid(x);
}

/*
 * Every unary op: its reference key, public name, node, the parameters its node-name row
 * uses, and how far its values and gradients may be from PyTorch's: ulps (0: bit for bit),
 * or for a gradient also grad_atol·|g| absolute. PyTorch computes exp, expm1, log, log2,
 * log1p, sin, cos, tanh and logsigmoid's forward with its vectorised (Sleef) functions at
 * every length, within an ulp of the C library's that nabla calls; tanh's gradient 1 - y²
 * then loses what y's last bit held where y is near ±1. gelu's tanh form adds terms that
 * cancel for x < 0, where PyTorch's build contracts products into fused multiply-adds.
 */
static const struct {
    const char *key, *fn, *node;
    unary_call f;
    float k[2];
    int ulps;
    float grad_atol;
} unary_ops[] = {
    {"exp", "nb_exp", "ExpBackward0", u_exp, {0}, 1, 0},
    {"expm1", "nb_expm1", "Expm1Backward0", u_expm1, {0}, 1, 0},
    {"log", "nb_log", "LogBackward0", u_log, {0}, 0, 0},
    {"log2", "nb_log2", "Log2Backward0", u_log2, {0}, 0, 0},
    {"log1p", "nb_log1p", "Log1PBackward0", u_log1p, {0}, 0, 0},
    {"sqrt", "nb_sqrt", "SqrtBackward0", u_sqrt, {0}, 0, 0},
    {"rsqrt", "nb_rsqrt", "RsqrtBackward0", u_rsqrt, {0}, 0, 0},
    {"reciprocal", "nb_reciprocal", "ReciprocalBackward0", u_reciprocal, {0}, 0, 0},
    {"square", "nb_square", "PowBackward0", u_square, {0}, 0, 0},
    {"pow_scalar", "nb_pow_scalar", "PowBackward0", u_pow_scalar, {2.5f}, 0, 0},
    {"sin", "nb_sin", "SinBackward0", u_sin, {0}, 2, 0},
    {"cos", "nb_cos", "CosBackward0", u_cos, {0}, 1, 0},
    {"tanh", "nb_tanh", "TanhBackward0", u_tanh, {0}, 1, 0x1p-22f},
    {"abs", "nb_abs", "AbsBackward0", u_abs, {0}, 0, 0},
    {"sign", "nb_sign", "SignBackward0", u_sign, {0}, 0, 0},
    {"clamp", "nb_clamp", "ClampBackward1", u_clamp, {-1.0f, 1.0f}, 0, 0},
    {"hardtanh", "nb_hardtanh", "HardtanhBackward0", u_hardtanh, {-1.0f, 1.0f}, 0, 0},
    {"leaky_relu", "nb_leaky_relu", "LeakyReluBackward0", u_leaky_relu, {0.01f}, 0, 0},
    {"elu", "nb_elu", "EluBackward0", u_elu, {1.0f}, 0, 0},
    {"gelu", "nb_gelu", "GeluBackward0", u_gelu, {0.0f}, 1, 0x1p-20f},
    {"silu", "nb_silu", "SiluBackward0", u_silu, {0}, 0, 0},
    {"softplus", "nb_softplus", "SoftplusBackward0", u_softplus, {1.0f, 20.0f}, 0, 0},
    {"logsigmoid", "nb_logsigmoid", "LogSigmoidBackward0", u_logsigmoid, {0}, 1, 0},
};

typedef nb_tensor *(*nary_call)(nb_tensor *const *in, float k);

static nb_tensor *n_pow(nb_tensor *const *in, float k)
{
    (void)k;
    return nb_pow(in[0], in[1]);
}

static nb_tensor *n_maximum(nb_tensor *const *in, float k)
{
    (void)k;
    return nb_maximum(in[0], in[1]);
}

static nb_tensor *n_minimum(nb_tensor *const *in, float k)
{
    (void)k;
    return nb_minimum(in[0], in[1]);
}

static nb_tensor *n_where(nb_tensor *const *in, float k)
{
    (void)k;
    return nb_where(in[0], in[1], in[2]);
}

static nb_tensor *n_masked_fill(nb_tensor *const *in, float k)
{
    return nb_masked_fill(in[0], in[1], k);
}

#define COMPARISON(name)                                                                           \
    static nb_tensor *n_##name(nb_tensor *const *in, float k)                                      \
    {                                                                                              \
        (void)k;                                                                                   \
        return nb_##name(in[0], in[1]);                                                            \
    }                                                                                              \
    static nb_tensor *n_##name##_scalar(nb_tensor *const *in, float k)                             \
    {                                                                                              \
        return nb_##name##_scalar(in[0], k);                                                       \
    }
COMPARISON(eq)
COMPARISON(ne)
COMPARISON(lt)
COMPARISON(le)
COMPARISON(gt)
COMPARISON(ge)
#undef COMPARISON

/*
 * Every op of several operands: its key, public name, node (NULL: the result has none), its
 * tensor arguments' names, and the number of edges its node has (the condition and the mask
 * get none, as in PyTorch).
 */
static const struct {
    const char *key, *fn, *node;
    nary_call f;
    int nin;
    const char *arg[3];
    int edges;
} nary_ops[] = {
    {"pow", "nb_pow", "PowBackward1", n_pow, 2, {"a", "b"}, 2},
    {"maximum", "nb_maximum", "MaximumBackward0", n_maximum, 2, {"a", "b"}, 2},
    {"minimum", "nb_minimum", "MinimumBackward0", n_minimum, 2, {"a", "b"}, 2},
    {"where", "nb_where", "WhereBackward0", n_where, 3, {"cond", "a", "b"}, 2},
    {"masked_fill", "nb_masked_fill", "MaskedFillBackward0", n_masked_fill, 2, {"x", "mask"}, 1},
    {"eq", "nb_eq", NULL, n_eq, 2, {"a", "b"}, 0},
    {"ne", "nb_ne", NULL, n_ne, 2, {"a", "b"}, 0},
    {"lt", "nb_lt", NULL, n_lt, 2, {"a", "b"}, 0},
    {"le", "nb_le", NULL, n_le, 2, {"a", "b"}, 0},
    {"gt", "nb_gt", NULL, n_gt, 2, {"a", "b"}, 0},
    {"ge", "nb_ge", NULL, n_ge, 2, {"a", "b"}, 0},
    {"eq_scalar", "nb_eq_scalar", NULL, n_eq_scalar, 1, {"a"}, 0},
    {"ne_scalar", "nb_ne_scalar", NULL, n_ne_scalar, 1, {"a"}, 0},
    {"lt_scalar", "nb_lt_scalar", NULL, n_lt_scalar, 1, {"a"}, 0},
    {"le_scalar", "nb_le_scalar", NULL, n_le_scalar, 1, {"a"}, 0},
    {"gt_scalar", "nb_gt_scalar", NULL, n_gt_scalar, 1, {"a"}, 0},
    {"ge_scalar", "nb_ge_scalar", NULL, n_ge_scalar, 1, {"a"}, 0},
};

/* ---- helpers ------------------------------------------------------------------------------- */

static nb_tensor *leaf(nb_tensor *t, bool grad)
{
    assert_non_null(t);
    if (grad) assert_non_null(nb_requires_grad_(t, true));
    return t;
}

/* float bits as an integer that orders like the floats: ulps are differences */
static int64_t ordered(float v)
{
    int32_t b;
    memcpy(&b, &v, sizeof b);
    return b >= 0 ? (int64_t)b : -(int64_t)(b & 0x7fffffff);
}

/*
 * got[i] against want[i]: NaN for NaN, the same infinity, zeros of the same sign, other
 * values within tol ulps. On a mismatch, fail naming the case, the element and its input.
 */
static void check_values(const char *what, const char *name, const float *got, const float *want,
                         const float *x, int64_t n, int tol, const float *atol)
{
    for (int64_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        bool ok = atol && fabsf(g - w) <= atol[i];
        if (ok)
            continue;
        else if (isnan(w))
            ok = isnan(g);
        else if (isinf(w) || w == 0.0f)
            ok = g == w && signbit(g) == signbit(w);
        else
            ok = isfinite(g) && llabs(ordered(g) - ordered(w)) <= tol;
        if (!ok && x)
            fail_msg("%s: %s[%lld] at x = %a: got %a, want %a (%d ulp allowed)", name, what,
                     (long long)i, (double)x[i], (double)g, (double)w, tol);
        if (!ok)
            fail_msg("%s: %s[%lld]: got %a, want %a", name, what, (long long)i, (double)g,
                     (double)w);
    }
}

/* ---- unary ops against PyTorch ------------------------------------------------------------ */

static int unary_index(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(unary_ops); i++)
        if (!strcmp(unary_ops[i].key, key)) return (int)i;
    fail_msg("no unary op %s", key);
    return -1;
}

/* y and dx; then a second backward, into the leaf's .grad lent to the op: 2·dx */
static void test_unary_reference(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(ew_ref_unary_cases); c++) {
        const ew_ref_unary *r = &ew_ref_unary_cases[c];
        int op = unary_index(r->op);
        char name[96];
        snprintf(name, sizeof name, "%s(k = %g, %g)", r->op, (double)r->k[0], (double)r->k[1]);
        nb_tensor *x = leaf(nb_from_data(r->x, NB_SHAPE(r->n)), true);
        nb_tensor *g = nb_from_data(r->g, NB_SHAPE(r->n));
        nb_tensor *y = unary_ops[op].f(x, r->k);
        if (!y) fail_msg("%s: %s", name, nb_last_error()->message);
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(y)), unary_ops[op].node);
        int tol = unary_ops[op].ulps;
        check_values("y", name, nb_tensor_data_const(y), r->y, r->x, r->n, tol, NULL);
        float twice[128], atol[128], atol2[128];
        assert_true(r->n <= (int)ARRAY_LEN(twice));
        for (int i = 0; i < r->n; i++) {
            twice[i] = r->dx[i] + r->dx[i];
            atol[i] = unary_ops[op].grad_atol * fabsf(r->g[i]);
            atol2[i] = 2.0f * atol[i];
        }
        assert_int_equal(nb_backward(y, g, true), NB_OK);
        const float *dx = nb_tensor_data_const(nb_tensor_grad(x));
        check_values("dx", name, dx, r->dx, r->x, r->n, tol, atol);
        assert_int_equal(nb_backward(y, g, false), NB_OK);
        check_values("dx accumulated", name, nb_tensor_data_const(nb_tensor_grad(x)), twice, r->x,
                     r->n, tol, atol2);
        nb_release(y);
        nb_release(g);
        nb_release(x);
    }
}

/* ---- ops of several operands against PyTorch -------------------------------------------- */

static int nary_index(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(nary_ops); i++)
        if (!strcmp(nary_ops[i].key, key)) return (int)i;
    fail_msg("no op %s", key);
    return -1;
}

static void test_nary_reference(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(ew_ref_nary_cases); c++) {
        const ew_ref_nary *r = &ew_ref_nary_cases[c];
        int op = nary_index(r->op);
        nb_tensor *in[3] = {NULL};
        for (int j = 0; j < r->nin; j++)
            in[j] = leaf(nb_from_data(r->in[j], nb_shape_make(r->ndim[j], r->dims[j])),
                         r->grad[j] != NULL);
        nb_shape os = nb_shape_make(r->out_ndim, r->out_dims);
        nb_tensor *y = nary_ops[op].f(in, r->k);
        if (!y) fail_msg("%s: %s", r->name, nb_last_error()->message);
        int64_t n = nb_tensor_numel(y);
        char got_s[64], want_s[64];
        nb_shape_format(nb_tensor_size(y), got_s, sizeof got_s);
        nb_shape_format(os, want_s, sizeof want_s);
        if (strcmp(got_s, want_s)) fail_msg("%s: shape %s, want %s", r->name, got_s, want_s);
        check_values("y", r->name, nb_tensor_data_const(y), r->y, NULL, n, 0, NULL);
        if (r->g) {
            nb_tensor *g = nb_from_data(r->g, os);
            assert_int_equal(nb_backward(y, g, true), NB_OK);
            for (int j = 0; j < r->nin; j++) {
                if (!r->grad[j]) {
                    assert_null(nb_tensor_grad(in[j]));
                    continue;
                }
                char what[16];
                snprintf(what, sizeof what, "grad %d", j);
                check_values(what, r->name, nb_tensor_data_const(nb_tensor_grad(in[j])), r->grad[j],
                             NULL, nb_tensor_numel(in[j]), 0, NULL);
            }
            /* again, accumulating into the gradients already there */
            assert_int_equal(nb_backward(y, g, false), NB_OK);
            for (int j = 0; j < r->nin; j++) {
                if (!r->grad[j]) continue;
                float twice[256];
                int64_t m = nb_tensor_numel(in[j]);
                assert_true(m <= (int64_t)ARRAY_LEN(twice));
                for (int64_t i = 0; i < m; i++) twice[i] = r->grad[j][i] + r->grad[j][i];
                check_values("grad accumulated", r->name,
                             nb_tensor_data_const(nb_tensor_grad(in[j])), twice, NULL, m, 0, NULL);
            }
            nb_release(g);
        } else {
            assert_null(nb_tensor_grad_fn(y));
        }
        nb_release(y);
        for (int j = 0; j < r->nin; j++) nb_release(in[j]);
    }
}

/* ---- nodes and edges ------------------------------------------------------------------- */

static void test_node_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(unary_ops); i++) {
        nb_tensor *x = leaf(nb_rand(NB_SHAPE(2, 3)), true), *c = nb_rand(NB_SHAPE(2, 3));
        nb_tensor *y = unary_ops[i].f(x, unary_ops[i].k);
        assert_non_null(y);
        assert_true(nb_tensor_requires_grad(y));
        const nb_node *n = nb_tensor_grad_fn(y);
        assert_string_equal(nb_node_name(n), unary_ops[i].node);
        assert_int_equal(nb_node_num_next(n), 1);
        assert_ptr_equal(nb_node_variable(nb_node_next(n, 0, NULL)), x);
        nb_release(y);
        y = unary_ops[i].f(c, unary_ops[i].k); /* nothing requires grad: no node */
        assert_null(nb_tensor_grad_fn(y));
        assert_false(nb_tensor_requires_grad(y));
        nb_release(y);
        NB_NO_GRAD
        {
            y = unary_ops[i].f(x, unary_ops[i].k);
        }
        assert_null(nb_tensor_grad_fn(y));
        nb_release(y);
        nb_release(c);
        nb_release(x);
    }
    for (size_t i = 0; i < ARRAY_LEN(nary_ops); i++) {
        /* every operand requires grad: the condition and the mask still get no edge */
        nb_tensor *in[3];
        for (int j = 0; j < 3; j++) in[j] = leaf(nb_rand(NB_SHAPE(2, 3)), true);
        nb_tensor *y = nary_ops[i].f(in, 0.5f);
        assert_non_null(y);
        const nb_node *n = nb_tensor_grad_fn(y);
        if (!nary_ops[i].node) {
            assert_null(n);
            assert_false(nb_tensor_requires_grad(y));
        } else {
            assert_string_equal(nb_node_name(n), nary_ops[i].node);
            assert_int_equal(nb_node_num_next(n), nary_ops[i].edges);
            /* the differentiable operands, in order: where's a and b, masked_fill's x */
            int first = !strcmp(nary_ops[i].key, "where") ? 1 : 0;
            for (int e = 0; e < nary_ops[i].edges; e++)
                assert_ptr_equal(nb_node_variable(nb_node_next(n, e, NULL)), in[first + e]);
        }
        nb_release(y);
        for (int j = 0; j < 3; j++) nb_release(in[j]);
    }
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_null_arguments(void **state)
{
    (void)state;
    nb_tensor *x = nb_ones(NB_SHAPE(3));
    nb_tensor *bad_a = nb_ones(NB_SHAPE(2)), *bad_b = nb_ones(NB_SHAPE(4));
    char want[128], earlier[256];
    assert_null(nb_add(bad_a, bad_b));
    snprintf(earlier, sizeof earlier, "%s", nb_last_error()->message);
    for (size_t i = 0; i < ARRAY_LEN(unary_ops); i++) {
        nb_error_clear();
        assert_null(unary_ops[i].f(NULL, unary_ops[i].k));
        snprintf(want, sizeof want, "%s: argument 'x' is NULL", unary_ops[i].fn);
        assert_error(NB_EINVAL, want);
        /* a NULL made by a failed call keeps that call's error */
        assert_null(unary_ops[i].f(nb_add(bad_a, bad_b), unary_ops[i].k));
        assert_string_equal(nb_last_error()->message, earlier);
    }
    for (size_t i = 0; i < ARRAY_LEN(nary_ops); i++) {
        for (int j = 0; j < nary_ops[i].nin; j++) {
            nb_tensor *in[3] = {x, x, x};
            in[j] = NULL;
            nb_error_clear();
            assert_null(nary_ops[i].f(in, 0.0f));
            snprintf(want, sizeof want, "%s: argument '%s' is NULL", nary_ops[i].fn,
                     nary_ops[i].arg[j]);
            assert_error(NB_EINVAL, want);
            in[j] = nb_add(bad_a, bad_b);
            assert_null(nary_ops[i].f(in, 0.0f));
            assert_string_equal(nb_last_error()->message, earlier);
        }
    }
    nb_release(x);
    nb_release(bad_a);
    nb_release(bad_b);
}

static void test_errors(void **state)
{
    (void)state;
    nb_tensor *a = leaf(nb_ones(NB_SHAPE(2, 3)), true), *b = nb_ones(NB_SHAPE(4));
    nb_tensor *c = nb_ones(NB_SHAPE(3));
    char want[160];
    for (size_t i = 0; i < ARRAY_LEN(nary_ops); i++) {
        if (nary_ops[i].nin < 2) continue;
        nb_tensor *in[3] = {a, b, c};
        nb_error_clear();
        assert_null(nary_ops[i].f(in, 0.0f));
        snprintf(want, sizeof want,
                 "%s: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)",
                 nary_ops[i].fn);
        assert_error(NB_ESHAPE, want);
    }
    /* where: the condition and a broadcast, b does not fit their shape */
    nb_tensor *w = nb_where(c, a, b);
    assert_null(w);
    assert_error(NB_ESHAPE, "nb_where: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at "
                            "dimension 1)");
    nb_tensor *x = nb_ones(NB_SHAPE(3));
    assert_null(nb_gelu(x, (nb_gelu_approximate)2));
    assert_error(NB_EINVAL, "nb_gelu: approximate must be NB_GELU_NONE or NB_GELU_TANH, got 2");
    assert_null(nb_gelu(NULL, (nb_gelu_approximate)2));
    assert_error(NB_EINVAL, "nb_gelu: argument 'x' is NULL");

    /* where's saved condition changed in place before backward: PyTorch's error */
    nb_tensor *cond = nb_from_data((const float[]){1, 0, 1}, NB_SHAPE(3));
    nb_tensor *xa = leaf(nb_ones(NB_SHAPE(3)), true);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *y = nb_sum(nb_where(cond, xa, x), NB_DIMS_ALL, false);
    assert_int_equal(nb_fill_(cond, 0.0f), NB_OK);
    assert_int_equal(nb_backward(y, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "which is an input saved by WhereBackward0, is at version 1; "
                            "expected version 0 instead");
    y = nb_sum(nb_masked_fill(xa, cond, 1.0f), NB_DIMS_ALL, false);
    assert_int_equal(nb_fill_(cond, 1.0f), NB_OK);
    assert_int_equal(nb_backward(y, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "which is an input saved by MaskedFillBackward0, is at version 2; "
                            "expected version 1 instead");
    assert_int_equal(nb_scope_end(sc), NB_OK);
    nb_release(xa);
    nb_release(cond);
    nb_release(x);
    nb_release(a);
    nb_release(b);
    nb_release(c);
}

/* ---- behaviour beyond the reference values ---------------------------------------------- */

/* A condition or mask that requires grad gets none; comparisons never record a node. */
static void test_selectors_and_comparisons(void **state)
{
    (void)state;
    nb_tensor *x = leaf(nb_from_data((const float[]){-1, 2, -3, 4}, NB_SHAPE(4)), true);
    nb_tensor *z = leaf(nb_zeros(NB_SHAPE(4)), true);
    nb_tensor *mask = nb_gt_scalar(x, 0.0f);
    assert_null(nb_tensor_grad_fn(mask));
    assert_false(nb_tensor_requires_grad(mask));
    assert_close(nb_tensor_data_const(mask), ((const float[]){0, 1, 0, 1}), 4, 0, 0);
    nb_tensor *cond = leaf(nb_from_data((const float[]){1, 0, 2, 0}, NB_SHAPE(4)), true);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *loss = nb_add(nb_sum(nb_where(cond, x, z), NB_DIMS_ALL, false),
                             nb_sum(nb_masked_fill(x, mask, 0.0f), NB_DIMS_ALL, false));
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    assert_null(nb_tensor_grad(cond));
    /* where: 1 where cond is nonzero; masked_fill: 1 where the mask is zero; summed */
    assert_close(nb_tensor_data_const(nb_tensor_grad(x)), ((const float[]){2, 0, 2, 0}), 4, 0, 0);
    assert_close(nb_tensor_data_const(nb_tensor_grad(z)), ((const float[]){0, 1, 0, 1}), 4, 0, 0);
    nb_release(cond);
    nb_release(mask);
    nb_release(z);
    nb_release(x);
}

/* Only the inputs whose edge needs a gradient get one, for every op of two tensors. */
static void test_one_side(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(nary_ops); i++) {
        if (!nary_ops[i].node || nary_ops[i].edges < 2) continue;
        int first = !strcmp(nary_ops[i].key, "where") ? 1 : 0;
        for (int side = 0; side < 2; side++) {
            nb_tensor *in[3] = {nb_rand(NB_SHAPE(2, 3)), nb_rand(NB_SHAPE(3)),
                                nb_rand(NB_SHAPE(2, 1))};
            leaf(in[first + side], true);
            nb_scope *sc = nb_scope_begin();
            nb_tensor *y = nb_sum(nary_ops[i].f(in, 0.0f), NB_DIMS_ALL, false);
            assert_non_null(y);
            assert_int_equal(nb_backward(y, NULL, false), NB_OK);
            assert_int_equal(nb_scope_end(sc), NB_OK);
            for (int j = 0; j < 3; j++) {
                if (j == first + side)
                    assert_non_null(nb_tensor_grad(in[j]));
                else
                    assert_null(nb_tensor_grad(in[j]));
                nb_release(in[j]);
            }
        }
    }
}

/* ---- allocation failures --------------------------------------------------------------- */

static nb_tensor *sweep_x, *sweep_c, *sweep_b;

/* where over broadcast operands, then a backward that sums each gradient back */
static nb_status sweep_where(void)
{
    nb_scope *sc = nb_scope_begin();
    if (!sc) return nb_last_error()->code;
    nb_tensor *cond = nb_gt_scalar(sweep_c, 0.0f);
    nb_tensor *y =
        nb_sum(nb_gelu(nb_where(cond, sweep_x, sweep_b), NB_GELU_TANH), NB_DIMS_ALL, false);
    nb_status rc = y ? nb_backward(y, NULL, false) : nb_last_error()->code;
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

static void test_alloc_failure(void **state)
{
    (void)state;
    sweep_x = leaf(nb_randn(NB_SHAPE(2, 3)), true);
    sweep_b = leaf(nb_randn(NB_SHAPE(3)), true);
    sweep_c = nb_randn(NB_SHAPE(2, 1));
    long k, clean = 0;
    for (k = 1; k < 100000; k++) {
        nbt_fail_alloc_after(k);
        long live = nbt_alloc_live();
        nb_error_clear();
        nb_status rc = sweep_where();
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (rc != NB_OK) {
            if (!failed || rc != NB_ENOMEM)
                fail_msg("k=%ld: %s (failed %d)", k, nb_last_error()->message, failed);
            const nb_error *e = nb_last_error();
            if (e->code != NB_ENOMEM || !strstr(e->message, ": out of memory"))
                fail_msg("k=%ld: status %d, last error %d: %s", k, rc, e->code, e->message);
            clean++;
        }
        /* what a backward that failed part of the way left in .grad is the leaves' */
        assert_int_equal(nb_zero_grad(sweep_x, true), NB_OK);
        assert_int_equal(nb_zero_grad(sweep_b, true), NB_OK);
        if (nbt_alloc_live() != live)
            fail_msg("k=%ld: %ld blocks leaked", k, nbt_alloc_live() - live);
        if (!failed) break;
    }
    assert_true(k > 10);
    assert_true(clean == k - 1);
    nb_release(sweep_x);
    nb_release(sweep_b);
    nb_release(sweep_c);
}

/* x^e and its derivative for the exponents PyTorch special-cases, as it computes them */
static float pow_special_ref(float x, float e, bool grad)
{
    if (e == 2.0f) return grad ? 2.0f * x : x * x;
    if (e == 3.0f) return grad ? 3.0f * (x * x) : x * x * x;
    if (e == 0.5f) return grad ? 0.5f * (1.0f / sqrtf(x)) : sqrtf(x);
    if (e == -0.5f) return grad ? -0.5f * (float)pow((double)x, -1.5) : 1.0f / sqrtf(x);
    if (e == -1.0f) return grad ? -1.0f * (float)(1.0 / (double)(x * x)) : 1.0f / x;
    return grad ? -2.0f * (float)pow((double)x, -3.0) : (float)(1.0 / (double)(x * x));
}

/* nb_pow_scalar at each special-cased exponent (its own vector loops): the bits of PyTorch's
 * special cases, forward and backward, over signs, zeros, infinities, NaN and tiny values. */
static void test_pow_special_exponents(void **state)
{
    (void)state;
    static const float exps[] = {2.0f, 3.0f, 0.5f, -0.5f, -1.0f, -2.0f};
    static const float edges[] = {0.0f,     -0.0f,     1.0f, -1.0f,  0.5f,      -3.25f,
                                  INFINITY, -INFINITY, NAN,  1e-30f, 0x1p-149f, 1e30f};
    enum { N = 100 };
    float v[N], gv[N];
    for (int i = 0; i < N; i++) {
        v[i] = i < (int)ARRAY_LEN(edges) ? edges[i] : (float)(i - 50) * 0.37f;
        gv[i] = 1.0f + (float)i * 0.01f;
    }
    for (size_t e = 0; e < ARRAY_LEN(exps); e++) {
        nb_tensor *x = nb_requires_grad_(nb_from_data(v, NB_SHAPE(N)), true);
        nb_tensor *g = nb_from_data(gv, NB_SHAPE(N));
        nb_tensor *y = nb_pow_scalar(x, exps[e]);
        assert_non_null(y);
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(y)), "PowBackward0");
        assert_int_equal(nb_backward(y, g, false), NB_OK);
        const float *got = nb_tensor_data_const(y), *dgot = nb_tensor_data_const(nb_tensor_grad(x));
        for (int i = 0; i < N; i++) {
            float want = pow_special_ref(v[i], exps[e], false);
            float dwant = gv[i] * pow_special_ref(v[i], exps[e], true);
            bool same =
                memcmp(&got[i], &want, sizeof want) == 0 || (got[i] != got[i] && want != want);
            bool dsame = memcmp(&dgot[i], &dwant, sizeof dwant) == 0 ||
                         (dgot[i] != dgot[i] && dwant != dwant);
            if (!same || !dsame)
                fail_msg("x^%g at x = %a: %a (want %a), grad %a (want %a)", (double)exps[e],
                         (double)v[i], (double)got[i], (double)want, (double)dgot[i],
                         (double)dwant);
        }
        nb_release(y);
        nb_release(g);
        nb_release(x);
    }
}

/* got, nabla's op at x, has the bits of want, computed with libm's function ref */
static void same_bits(const char *op, float x, float got, float want, const char *ref)
{
    if (memcmp(&got, &want, sizeof want) != 0)
        fail_msg("%s(%a): %a, with %s %a", op, (double)x, (double)got, ref, (double)want);
}

/*
 * nb_exp, nb_sigmoid, nb_tanh, nb_gelu, nb_log, nb_log1p, nb_softplus and nb_logsigmoid
 * against the C library's expf, tanhf, erff, logf and log1pf, bit for bit (nabla's are glibc's
 * algorithms in a form that vectorises): one float in 4 099 of all 2^32 (every exponent, both
 * signs, NaNs with payloads) and the edges of each range with their neighbours: exp's
 * overflow and underflow thresholds, tanh's 2^-55, 1 and 22, the arguments where expm1f's
 * reduction changes (k = 0, ±1, 22/23, 56/57), erf's region edges (2^-28, 0.84375, 1.25,
 * 1/0.35, 6; gelu's input is x·√½, so these over √½), log's subnormals and table ends, and
 * log1p's (2^-54, 2^-29, -0.2929, 0.4142, √2 - 1 as 1 + x rounds it, 2^53, -1), and
 * expm1's (±27 ln 2, 0x1.62e43p6 and the overflow threshold below it, ±ln 2 / 2, ±1.5 ln 2,
 * k = 1 around its -0.25 split, k = 22/23 and 56/57, ±2^-25), and sin's and cos's (±π/4,
 * ±2^-12, ±120, multiples of π/2, large arguments). nb_expm1, nb_log2, nb_sin and nb_cos against
 * expm1f, log2f, sinf and cosf the same way, and the gradients of nb_sin and nb_cos (cos x and
 * -sin x times 1) against cosf and sinf. Runs of 256 values below 120 take sin's and cos's
 * loops without the large reduction; others the whole one.
 */
static void test_libm_bits(void **state)
{
    (void)state;
    static const float edges[] = {
        0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f, -0x1p-149f, 0x1.62e42ep6f, -0x1.9fe368p6f,
        -0x1.9d1d9ep6f, 88.0f, -88.0f, -87.33655f, 1.0f, -1.0f, 0x1.fffffep127f, 0x1p-55f,
        -0x1p-55f, 22.0f, -22.0f, 0x1.62e43p-3f, 0x1.0a2b24p-1f, 7.798f, 19.58f, 0x1p-26f, 0x1p-25f,
        0x1p-119f, 0x1.6a09e6p-28f, 0x1.2dbd4p+0f, 0x1.c48c6p+0f, 0x1.0b3c9p+1f, 0x1.02aa8p+2f,
        0x1.0f876cp+3f,
        /* log's and log1p's */
        0x1p-126f, 0x1.66p-1f, 0x1.66p0f, 0x1p-54f, -0x1p-54f, 0x1p-29f, -0x1p-29f, -0x1.2bec3ep-2f,
        0x1.a827aep-2f, 0x1.a827b8p-2f, 0x1p53f, 0x1p-20f, -0x1p-1f, 0x1p24f, 20.0f,
        /* expm1's */
        0x1.2b7088p+4f, -0x1.2b7088p+4f, 0x1.62e43p+6f, 0x1.62e3p+6f, -0x1.62e43p-2f,
        -0x1.0a2b24p+0f, -0x1.0a2b24p-1f, 0x1.c5c86p-2f, 0x1.f310e4p+3f, 0x1.394d72p+5f, -0x1p-25f,
        0x1p-25f};
    enum { STRIDE = 4099, E = sizeof edges / sizeof edges[0] };
    const int64_t n = (int64_t)(0x100000000ull / STRIDE) + 1 + 3 * E;
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    int64_t at = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += STRIDE) {
        uint32_t b = (uint32_t)u;
        memcpy(&v[at++], &b, sizeof b);
    }
    for (int i = 0; i < E; i++) {
        v[at++] = edges[i];
        v[at++] = nextafterf(edges[i], INFINITY);
        v[at++] = nextafterf(edges[i], -INFINITY);
    }
    assert_true(at <= n);
    nb_tensor *x = nb_from_data(v, NB_SHAPE(at));
    nb_tensor *e = nb_exp(x), *sg = nb_sigmoid(x), *th = nb_tanh(x), *ge = nb_gelu(x, NB_GELU_NONE);
    nb_tensor *lg = nb_log(x), *l1 = nb_log1p(x), *sp = nb_softplus(x, 1.0f, 20.0f),
              *ls = nb_logsigmoid(x);
    nb_tensor *em = nb_expm1(x), *l2 = nb_log2(x);
    assert_non_null(em);
    assert_non_null(l2);
    nb_tensor *xs = nb_requires_grad_(nb_from_data(v, NB_SHAPE(at)), true);
    nb_tensor *xc = nb_requires_grad_(nb_from_data(v, NB_SHAPE(at)), true);
    nb_tensor *ones = nb_full(NB_SHAPE(at), 1.0f);
    nb_tensor *sn = nb_sin(xs), *cs = nb_cos(xc);
    assert_non_null(sn);
    assert_non_null(cs);
    assert_int_equal(nb_backward(sn, ones, false), NB_OK);
    assert_int_equal(nb_backward(cs, ones, false), NB_OK);
    assert_non_null(e);
    assert_non_null(sg);
    assert_non_null(th);
    assert_non_null(ge);
    assert_non_null(lg);
    assert_non_null(l1);
    assert_non_null(sp);
    assert_non_null(ls);
    const float *got = nb_tensor_data_const(e), *sgot = nb_tensor_data_const(sg),
                *tgot = nb_tensor_data_const(th), *ggot = nb_tensor_data_const(ge);
    const float *lgot = nb_tensor_data_const(lg), *l1got = nb_tensor_data_const(l1),
                *spgot = nb_tensor_data_const(sp), *lsgot = nb_tensor_data_const(ls);
    const float *emgot = nb_tensor_data_const(em), *l2got = nb_tensor_data_const(l2);
    const float *sngot = nb_tensor_data_const(sn), *csgot = nb_tensor_data_const(cs),
                *dsgot = nb_tensor_data_const(nb_tensor_grad(xs)),
                *dcgot = nb_tensor_data_const(nb_tensor_grad(xc));
    for (int64_t i = 0; i < at; i++) {
        float u = v[i];
        float half = u * 0.5f, cdf = 1.0f + erff(u * 0x1.6a09e6p-1f);
        same_bits("exp", u, got[i], expf(u), "expf");
        same_bits("sigmoid", u, sgot[i], 1.0f / (1.0f + expf(-u)), "expf");
        same_bits("tanh", u, tgot[i], tanhf(u), "tanhf");
        same_bits("gelu", u, ggot[i], half * cdf, "erff");
        same_bits("log", u, lgot[i], logf(u), "logf");
        same_bits("log1p", u, l1got[i], log1pf(u), "log1pf");
        same_bits("softplus", u, spgot[i], u > 20.0f ? u : log1pf(expf(u)), "log1pf");
        same_bits("logsigmoid", u, lsgot[i], (u < 0.0f ? u : 0.0f) - log1pf(expf(-fabsf(u))),
                  "log1pf");
        same_bits("expm1", u, emgot[i], expm1f(u), "expm1f");
        same_bits("log2", u, l2got[i], log2f(u), "log2f");
        same_bits("sin", u, sngot[i], sinf(u), "sinf");
        same_bits("cos", u, csgot[i], cosf(u), "cosf");
        same_bits("sin'", u, dsgot[i], cosf(u), "cosf");
        same_bits("cos'", u, dcgot[i], -sinf(u), "sinf");
    }
    nb_release(cs);
    nb_release(sn);
    nb_release(ones);
    nb_release(xc);
    nb_release(xs);
    nb_release(l2);
    nb_release(em);
    nb_release(ls);
    nb_release(sp);
    nb_release(l1);
    nb_release(lg);
    nb_release(ge);
    nb_release(th);
    nb_release(sg);
    nb_release(e);
    nb_release(x);
    free(v);
}

/*
 * nb_pow against powf, bit for bit: one float in 4 099 as the base, each with three exponents
 * (one of a list of special ones, one in [-8, 8], one that puts |x|^y between 2^-152 and
 * 2^130, where powf overflows, underflows and rounds to subnormals), pairs of NaNs and
 * signalling NaNs with the numbers whose powers are 1, and its gradients
 * (b·a^(b-1) and y·ln a, times 1) against powf and logf.
 */
static void test_pow_bits(void **state)
{
    (void)state;
    static const float special[] = {
        0.0f,          -0.0f,          1.0f,        -1.0f,      2.0f,      -2.0f,
        3.0f,          0.5f,           -0.5f,       2.5f,       -2.5f,     127.0f,
        -149.0f,       INFINITY,       -INFINITY,   NAN,        0x1p-149f, 0x1.fffffep127f,
        25.0f,         16777215.0f,    16777216.0f, 8388609.0f, 0x1.8p23f, 0x1.fffffep22f,
        0x1.000002p0f, 0x1.fffffep-1f, 1e-3f,       -1e10f};
    /* pairs by their bits: signalling and quiet NaNs with payloads, of either sign, against
     * the exponents and bases whose results are 1 */
    static const uint32_t pairs[][2] = {
        {0x7f800001u, 0x00000000u}, {0xff800001u, 0x80000000u}, {0x3f800000u, 0x7f800001u},
        {0x3f800000u, 0xff812345u}, {0x7f800001u, 0x3f800000u}, {0x40000000u, 0x7f800001u},
        {0x7fc12345u, 0x7f800001u}, {0x7f812345u, 0x7fc00001u}, {0xffc00001u, 0x7fc00002u},
        {0x3f800000u, 0x7fc00003u}, {0xbf800000u, 0x7f800000u}, {0xbf800000u, 0xff800000u},
        {0x80000000u, 0xc0400000u}, {0xff800000u, 0x40400000u}, {0xff800000u, 0xc0400000u},
        {0xffc00001u, 0x40400000u}, {0xffc00001u, 0xc0400000u}, {0x80000000u, 0x4b000001u}};
    enum { STRIDE = 4099, DRAWS = 3, PAIRS = sizeof pairs / sizeof pairs[0] };
    const int64_t m = (int64_t)(0x100000000ull / STRIDE) + 1, n = DRAWS * m + PAIRS;
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    uint64_t h = 0x2545f4914f6cdd1dull; /* xorshift64 */
    int64_t at = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += STRIDE) {
        uint32_t bits = (uint32_t)u;
        float x;
        memcpy(&x, &bits, sizeof x);
        for (int d = 0; d < DRAWS; d++, at++) {
            h ^= h << 13, h ^= h >> 7, h ^= h << 17;
            double r = (double)(h >> 11) * 0x1p-53, l = log2(fabs((double)x));
            a[at] = x;
            b[at] = d == 0                    ? special[h % ARRAY_LEN(special)]
                    : d == 1                  ? (float)(-8.0 + 16.0 * r)
                    : l != 0.0 && isfinite(l) ? (float)((-152.0 + 282.0 * r) / l)
                                              : (float)r;
        }
    }
    for (int p = 0; p < PAIRS; p++, at++) {
        memcpy(&a[at], &pairs[p][0], sizeof a[at]);
        memcpy(&b[at], &pairs[p][1], sizeof b[at]);
    }
    assert_int_equal(at, n);
    nb_tensor *ta = nb_requires_grad_(nb_from_data(a, NB_SHAPE(n)), true);
    nb_tensor *tb = nb_requires_grad_(nb_from_data(b, NB_SHAPE(n)), true);
    nb_tensor *y = nb_pow(ta, tb), *ones = nb_full(NB_SHAPE(n), 1.0f);
    assert_non_null(y);
    assert_int_equal(nb_backward(y, ones, false), NB_OK);
    const float *got = nb_tensor_data_const(y), *da = nb_tensor_data_const(nb_tensor_grad(ta)),
                *db = nb_tensor_data_const(nb_tensor_grad(tb));
    for (int64_t i = 0; i < n; i++) {
        float want = powf(a[i], b[i]);
        float dwant = b[i] == 0.0f ? 0.0f : 1.0f * (b[i] * powf(a[i], b[i] - 1.0f));
        float ewant = a[i] == 0.0f && b[i] >= 0.0f ? 0.0f : 1.0f * (want * logf(a[i]));
        if (memcmp(&got[i], &want, sizeof want) || memcmp(&da[i], &dwant, sizeof want) ||
            memcmp(&db[i], &ewant, sizeof want))
            fail_msg("pow(%a, %a): %a, d/da %a, d/db %a; with powf %a, %a, %a", (double)a[i],
                     (double)b[i], (double)got[i], (double)da[i], (double)db[i], (double)want,
                     (double)dwant, (double)ewant);
    }
    nb_release(ones);
    nb_release(y);
    nb_release(tb);
    nb_release(ta);
    free(b);
    free(a);
}

/* Runs with a number operand (stride 0) long enough to be handed to the kernel as chunks of
 * its copies: a tensor with a number in either place, a [1] tensor broadcast, and gradients
 * broadcast back from a sum and a mean, added into a gradient that is already there. */
static void test_number_operand_runs(void **state)
{
    (void)state;
    static const int64_t lens[] = {63, 64, 65, 255, 256, 257, 1000};
    for (size_t li = 0; li < ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li];
        nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(n)), true);
        nb_tensor *c = nb_from_data((const float[]){0.3f}, NB_SHAPE(1));
        nb_tensor *gt = nb_gt_scalar(x, 0.3f), *sub = nb_sub_scalar(x, 0.3f);
        nb_tensor *rsub = nb_sub(c, x), *div = nb_div(x, c);
        assert_non_null(gt);
        assert_non_null(sub);
        assert_non_null(rsub);
        assert_non_null(div);
        const float *v = nb_tensor_data_const(x);
        for (int64_t i = 0; i < n; i++) {
            float want[4] = {v[i] > 0.3f ? 1.0f : 0.0f, v[i] - 0.3f, 0.3f - v[i], v[i] / 0.3f};
            float got[4] = {nb_tensor_data_const(gt)[i], nb_tensor_data_const(sub)[i],
                            nb_tensor_data_const(rsub)[i], nb_tensor_data_const(div)[i]};
            if (memcmp(want, got, sizeof want) != 0)
                fail_msg("n %lld, element %lld: gt %g sub %a rsub %a div %a", (long long)n,
                         (long long)i, (double)got[0], (double)got[1], (double)got[2],
                         (double)got[3]);
        }
        /* d/dx of sum(x) + 2·mean(x) + sum(x), the last two added into the first */
        nb_tensor *s1 = nb_sum(x, NB_DIMS_ALL, false), *m = nb_mean(x, NB_DIMS_ALL, false);
        nb_tensor *m2 = nb_mul_scalar(m, 2.0f), *s2 = nb_sum(x, NB_DIMS(0), false);
        nb_tensor *t1 = nb_add(s1, m2), *loss = nb_add(t1, s2);
        assert_non_null(loss);
        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        const float mean_g = 2.0f / (float)n;
        for (int64_t i = 0; i < n; i++) {
            float got = nb_tensor_data_const(nb_tensor_grad(x))[i];
            /* the engine sums the three contributions in some order: each is exact */
            float a = (1.0f + mean_g) + 1.0f, b = (1.0f + 1.0f) + mean_g,
                  d = 1.0f + (mean_g + 1.0f);
            if (got != a && got != b && got != d)
                fail_msg("n %lld, grad[%lld] = %a, want %a", (long long)n, (long long)i,
                         (double)got, (double)b);
        }
        nb_tensor *all[] = {loss, t1, s2, m2, m, s1, div, rsub, sub, gt, c, x};
        for (size_t i = 0; i < ARRAY_LEN(all); i++) nb_release(all[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unary_reference, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_nary_reference, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_node_names, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_pow_special_exponents, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_number_operand_runs, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_libm_bits, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_pow_bits, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_arguments, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_selectors_and_comparisons, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_one_side, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_elementwise", tests, NULL, NULL);
}
