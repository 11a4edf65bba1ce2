/*
 * Reductions and softmax: values, indices, node names and gradients against PyTorch 1.13
 * (data/reduce_ref.h, made by data/gen_reduce.py), the same ops against naive loops on larger
 * shapes, indices and saved tensors, errors with their messages, NULL propagation and
 * allocation failure. Gradients at random points are checked by test_gradcheck.c.
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

#include "data/reduce_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers --------------------------------------------------------------------------- */

static nb_tensor *tensor_of(const float *v, int ndim, const int64_t *dims)
{
    nb_tensor *t = nb_from_data(v, nb_shape_make(ndim, dims));
    if (!t) fail_msg("nb_from_data: %s", nb_last_error()->message);
    return t;
}

static void check_shape(const nb_tensor *t, nb_shape want, const char *what)
{
    if (!t) fail_msg("%s: NULL (%s)", what, nb_last_error()->message);
    char got_s[128], want_s[128];
    nb_shape_format(nb_tensor_size(t), got_s, sizeof got_s);
    nb_shape_format(want, want_s, sizeof want_s);
    if (strcmp(got_s, want_s) != 0) fail_msg("%s: shape %s, want %s", what, got_s, want_s);
}

static float ulp_of(float v)
{
    v = fabsf(v);
    return nextafterf(v, INFINITY) - v;
}

/*
 * got against want, element by element. ulps 0: the same float (NaN matching NaN, and the
 * sign of a zero compared). Else NaN and infinities must match and finite values agree within
 * ulps units in the last place of the value, or of the array's largest finite magnitude (for
 * the values a cancellation leaves near 0).
 */
static void check_values(const char *name, const char *what, const float *got, const float *want,
                         int64_t n, int ulps)
{
    float scale = 0.0f;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(want[i]) && fabsf(want[i]) > scale) scale = fabsf(want[i]);
    for (int64_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        bool ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (ulps == 0 || !isfinite(w) || !isfinite(g))
            ok = g == w && signbit(g) == signbit(w);
        else
            ok = fabsf(g - w) <= (float)ulps * fmaxf(ulp_of(w), ulp_of(scale) / 4.0f);
        if (!ok)
            fail_msg("%s: %s element %lld is %a (%.9g), PyTorch %a (%.9g)", name, what,
                     (long long)i, (double)g, (double)g, (double)w, (double)w);
    }
}

/* ---- reference values from PyTorch ------------------------------------------------------ */

/*
 * How far from PyTorch's floats each op may be, forward and backward, in units in the last
 * place (0: bit for bit). Selections and products do PyTorch's very float operations. The
 * others sum in double where PyTorch sums in float (its norm of [1e4, -1e4, 1e4, 1] with
 * p = 3 is 4 ulps from the exact one, nabla's is the exact one rounded), and their exp, log
 * and pow are libm's, not PyTorch's vectorised polynomials; the gradients of softmax and
 * logsumexp inherit the forward's last bit through e^(x − y) and a difference g − Σ g·y.
 */
static const struct {
    int fwd, bwd;
} tolerance[] = {
    [REF_MAX] = {0, 0},          [REF_MIN] = {0, 0},       [REF_MAX_DIM] = {0, 0},
    [REF_MIN_DIM] = {0, 0},      [REF_AMAX] = {0, 0},      [REF_AMIN] = {0, 0},
    [REF_ARGMAX] = {0, 0},       [REF_ARGMIN] = {0, 0},    [REF_VAR] = {1, 2},
    [REF_STD] = {1, 2},          [REF_LOGSUMEXP] = {2, 4}, [REF_PROD] = {0, 0},
    [REF_PROD_DIM] = {0, 0},     [REF_NORM] = {4, 12},     [REF_SOFTMAX] = {4, 16},
    [REF_LOG_SOFTMAX] = {4, 16},
};

static nb_tensor *call(const reduce_ref *r, nb_tensor *x, nb_tensor **indices)
{
    nb_dims dims = r->n_dims < 0 ? NB_DIMS_ALL : nb_dims_make(r->n_dims, r->dims);
    bool k = r->keepdim;
    switch (r->op) {
    case REF_MAX:
        return nb_max(x);
    case REF_MIN:
        return nb_min(x);
    case REF_MAX_DIM:
        return nb_max_dim(x, r->dims[0], k, indices);
    case REF_MIN_DIM:
        return nb_min_dim(x, r->dims[0], k, indices);
    case REF_AMAX:
        return nb_amax(x, dims, k);
    case REF_AMIN:
        return nb_amin(x, dims, k);
    case REF_ARGMAX:
        return nb_argmax(x, dims, k);
    case REF_ARGMIN:
        return nb_argmin(x, dims, k);
    case REF_VAR:
        return nb_var(x, dims, (int64_t)r->param, k);
    case REF_STD:
        return nb_std(x, dims, (int64_t)r->param, k);
    case REF_LOGSUMEXP:
        return nb_logsumexp(x, dims, k);
    case REF_PROD:
        return nb_prod(x);
    case REF_PROD_DIM:
        return nb_prod_dim(x, r->dims[0], k);
    case REF_NORM:
        return nb_norm(x, (float)r->param, dims, k);
    case REF_SOFTMAX:
        return nb_softmax(x, r->dims[0]);
    default:
        return nb_log_softmax(x, r->dims[0]);
    }
}

static void test_reference(void **state)
{
    (void)state;
    const float *D = reduce_ref_data;
    for (size_t c = 0; c < ARRAY_LEN(reduce_ref_cases); c++) {
        const reduce_ref *r = &reduce_ref_cases[c];
        bool arg = r->op == REF_ARGMAX || r->op == REF_ARGMIN;
        nb_tensor *x = tensor_of(D + r->x, r->x_ndim, r->x_dims);
        if (!arg) assert_non_null(nb_requires_grad_(x, true));
        nb_tensor *idx = NULL, *y = call(r, x, r->indices >= 0 && !arg ? &idx : NULL);
        nb_shape out = nb_shape_make(r->out_ndim, r->out_dims);
        check_shape(y, out, r->name);
        int64_t n = nb_tensor_numel(y);
        if (arg) { /* plain indices */
            check_values(r->name, "index", nb_tensor_data_const(y), D + r->indices, n, 0);
            assert_false(nb_tensor_requires_grad(y));
            nb_release(y);
            nb_release(x);
            continue;
        }
        check_values(r->name, "value", nb_tensor_data_const(y), D + r->y, n, tolerance[r->op].fwd);
        if (r->indices >= 0) {
            check_shape(idx, out, r->name);
            check_values(r->name, "index", nb_tensor_data_const(idx), D + r->indices, n, 0);
            assert_false(nb_tensor_requires_grad(idx));
        }
        if (strcmp(nb_node_name(nb_tensor_grad_fn(y)), r->node) != 0)
            fail_msg("%s: node %s, PyTorch %s", r->name, nb_node_name(nb_tensor_grad_fn(y)),
                     r->node);
        nb_tensor *g = tensor_of(D + r->grad_out, r->out_ndim, r->out_dims);
        if (nb_backward(y, g, false) != NB_OK)
            fail_msg("%s: nb_backward: %s", r->name, nb_last_error()->message);
        nb_tensor *gx = nb_tensor_grad(x);
        if (r->grad_mode == REF_GRAD_NONE) {
            if (gx) fail_msg("%s: got a .grad where PyTorch leaves it unset", r->name);
        } else {
            check_shape(gx, nb_tensor_size(x), r->name);
            check_values(r->name, "gradient", nb_tensor_data_const(gx), D + r->grad_x,
                         nb_tensor_numel(x), tolerance[r->op].bwd);
        }
        nb_release(g);
        nb_release(idx);
        nb_release(y);
        nb_release(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_reduce", tests, NULL, NULL);
}
