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
 * place (0: bit for bit); the largest seen here is about half of each. Selections, products
 * and the moments do PyTorch's float operations (the moments in double, as PyTorch's
 * Welford). softmax sums in PyTorch's order but its exp is libm's, not PyTorch's vectorised
 * polynomial (85-95% of the values are PyTorch's bits); logsumexp and norm sum in double where
 * PyTorch sums in float (its norm of [1e4, -1e4, 1e4, 1] with p = 3 is 4 ulps from the exact
 * one, nabla's is the exact one rounded). Gradients inherit the forward's last bit through
 * e^(x − y), powers and a difference g − Σ g·y.
 */
static const struct {
    int fwd, bwd;
} tolerance[] = {
    [REF_MAX] = {0, 0},          [REF_MIN] = {0, 0},       [REF_MAX_DIM] = {0, 0},
    [REF_MIN_DIM] = {0, 0},      [REF_AMAX] = {0, 0},      [REF_AMIN] = {0, 0},
    [REF_ARGMAX] = {0, 0},       [REF_ARGMIN] = {0, 0},    [REF_VAR] = {0, 0},
    [REF_STD] = {0, 0},          [REF_LOGSUMEXP] = {2, 6}, [REF_PROD] = {0, 0},
    [REF_PROD_DIM] = {0, 0},     [REF_NORM] = {8, 16},     [REF_SOFTMAX] = {4, 20},
    [REF_LOG_SOFTMAX] = {2, 12},
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
        nb_tensor *x = nbt_tensor_of(D + r->x, r->x_ndim, r->x_dims);
        if (!arg) assert_non_null(nb_requires_grad_(x, true));
        nb_tensor *idx = NULL, *y = call(r, x, r->indices >= 0 && !arg ? &idx : NULL);
        nb_shape out = nb_shape_make(r->out_ndim, r->out_dims);
        nbt_check_shape(y, out, r->name);
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
            nbt_check_shape(idx, out, r->name);
            check_values(r->name, "index", nb_tensor_data_const(idx), D + r->indices, n, 0);
            assert_false(nb_tensor_requires_grad(idx));
        }
        if (strcmp(nb_node_name(nb_tensor_grad_fn(y)), r->node) != 0)
            fail_msg("%s: node %s, PyTorch %s", r->name, nb_node_name(nb_tensor_grad_fn(y)),
                     r->node);
        nb_tensor *g = nbt_tensor_of(D + r->grad_out, r->out_ndim, r->out_dims);
        if (nb_backward(y, g, false) != NB_OK)
            fail_msg("%s: nb_backward: %s", r->name, nb_last_error()->message);
        nb_tensor *gx = nb_tensor_grad(x);
        if (r->grad_mode == REF_GRAD_NONE) {
            if (gx) fail_msg("%s: got a .grad where PyTorch leaves it unset", r->name);
        } else {
            nbt_check_shape(gx, nb_tensor_size(x), r->name);
            check_values(r->name, "gradient", nb_tensor_data_const(gx), D + r->grad_x,
                         nb_tensor_numel(x), tolerance[r->op].bwd);
        }
        nb_release(g);
        nb_release(idx);
        nb_release(y);
        nb_release(x);
    }
}

/* ---- larger shapes against naive loops --------------------------------------------------- */

#define N4 120 /* [2, 3, 4, 5] */
static const int64_t dims4[4] = {2, 3, 4, 5};

/* The output slot of element e of [2, 3, 4, 5] when the dims in mask are reduced. */
static int64_t slot_of(int64_t e, unsigned mask)
{
    int64_t idx[4], o = 0;
    for (int d = 3; d >= 0; d--) {
        idx[d] = e % dims4[d];
        e /= dims4[d];
    }
    for (int d = 0; d < 4; d++)
        if (!(mask & (1u << d))) o = o * dims4[d] + idx[d];
    return o;
}

enum { NV_AMAX, NV_AMIN, NV_VAR, NV_STD, NV_LSE, NV_NORM2, NV_NORM1, NV_NORMINF, NV_COUNT };

/* What op nv gives for every output of x reduced over mask, by one walk over the elements. */
static void naive(int nv, const float *x, unsigned mask, double *out, int64_t n_out)
{
    double acc[N4], acc2[N4], cnt[N4];
    for (int64_t o = 0; o < n_out; o++) {
        acc[o] = nv == NV_AMAX || nv == NV_LSE ? -HUGE_VAL : nv == NV_AMIN ? HUGE_VAL : 0.0;
        acc2[o] = cnt[o] = 0.0;
    }
    for (int64_t e = 0; e < N4; e++) { /* pass 1: extremes, sums, counts */
        int64_t o = slot_of(e, mask);
        double v = (double)x[e];
        cnt[o] += 1.0;
        switch (nv) {
        case NV_AMAX:
        case NV_LSE:
            acc[o] = fmax(acc[o], v);
            break;
        case NV_AMIN:
            acc[o] = fmin(acc[o], v);
            break;
        case NV_NORMINF:
            acc[o] = fmax(acc[o], fabs(v));
            break;
        case NV_NORM1:
            acc[o] += fabs(v);
            break;
        default:
            acc[o] += nv == NV_NORM2 ? v * v : v;
        }
    }
    for (int64_t e = 0; e < N4; e++) { /* pass 2: deviations, shifted exponentials */
        int64_t o = slot_of(e, mask);
        double v = (double)x[e];
        if (nv == NV_VAR || nv == NV_STD) acc2[o] += (v - acc[o] / cnt[o]) * (v - acc[o] / cnt[o]);
        if (nv == NV_LSE) acc2[o] += exp(v - acc[o]);
    }
    for (int64_t o = 0; o < n_out; o++) {
        switch (nv) {
        case NV_VAR:
            out[o] = acc2[o] / (cnt[o] - 1.0);
            break;
        case NV_STD:
            out[o] = sqrt(acc2[o] / cnt[o]);
            break;
        case NV_LSE:
            out[o] = acc[o] + log(acc2[o]);
            break;
        case NV_NORM2:
            out[o] = sqrt(acc[o]);
            break;
        default:
            out[o] = acc[o];
        }
    }
}

static nb_tensor *nabla_of(int nv, nb_tensor *x, nb_dims dims, bool keepdim)
{
    switch (nv) {
    case NV_AMAX:
        return nb_amax(x, dims, keepdim);
    case NV_AMIN:
        return nb_amin(x, dims, keepdim);
    case NV_VAR:
        return nb_var(x, dims, 1, keepdim);
    case NV_STD:
        return nb_std(x, dims, 0, keepdim);
    case NV_LSE:
        return nb_logsumexp(x, dims, keepdim);
    case NV_NORM2:
        return nb_norm(x, 2.0f, dims, keepdim);
    case NV_NORM1:
        return nb_norm(x, 1.0f, dims, keepdim);
    default:
        return nb_norm(x, INFINITY, dims, keepdim);
    }
}

/* Every set of dims of a 4-d tensor, kept or not: the rows are x itself or a permuted copy. */
static void test_naive_dims(void **state)
{
    (void)state;
    nb_tensor *x = nb_randn(nb_shape_make(4, dims4));
    assert_non_null(x);
    const float *v = nb_tensor_data_const(x);
    for (unsigned mask = 1; mask < 16; mask++) {
        int list[4], nl = 0;
        nb_shape want = {0, {0}};
        int64_t n_out = 1;
        for (int d = 0; d < 4; d++) {
            if (mask & (1u << d)) {
                list[nl++] = d - (int)(mask % 2) * 4; /* some negative */
            } else {
                n_out *= dims4[d];
            }
        }
        if (nl > 1) { /* list them in another order than the dims' */
            int t = list[0];
            list[0] = list[nl - 1];
            list[nl - 1] = t;
        }
        for (int nv = 0; nv < NV_COUNT; nv++) {
            bool keepdim = (mask + (unsigned)nv) % 2;
            want.ndim = 0;
            for (int d = 0; d < 4; d++)
                if (!(mask & (1u << d)) || keepdim)
                    want.dims[want.ndim++] = mask & (1u << d) ? 1 : dims4[d];
            nb_tensor *y = nabla_of(nv, x, nb_dims_make(nl, list), keepdim);
            char what[64];
            snprintf(what, sizeof what, "op %d over mask %u", nv, mask);
            nbt_check_shape(y, want, what);
            double ref[N4];
            naive(nv, v, mask, ref, n_out);
            const float *got = nb_tensor_data_const(y);
            for (int64_t o = 0; o < n_out; o++)
                if (!(fabs((double)got[o] - ref[o]) <= 2e-6 * fabs(ref[o]) + 1e-6))
                    fail_msg("%s: output %lld is %.9g, want %.9g", what, (long long)o,
                             (double)got[o], ref[o]);
            nb_release(y);
        }
    }
    nb_release(x);
}

/* Along each dim of a 4-d tensor with ties: max/min values and indices, argmax, prod and
 * softmax against loops over the slice. */
static void test_naive_one_dim(void **state)
{
    (void)state;
    nb_tensor *x = nb_randint(-3, 4, nb_shape_make(4, dims4)); /* many ties */
    assert_non_null(x);
    const float *v = nb_tensor_data_const(x);
    for (int d = 0; d < 4; d++) {
        int64_t outer = 1, inner = 1, size = dims4[d];
        for (int i = 0; i < d; i++) outer *= dims4[i];
        for (int i = d + 1; i < 4; i++) inner *= dims4[i];
        nb_tensor *imax, *imin;
        nb_tensor *vmax = nb_max_dim(x, d - 4 * (d % 2), false, &imax);
        nb_tensor *vmin = nb_min_dim(x, d, true, &imin);
        nb_tensor *amax = nb_argmax(x, NB_DIMS(d), false), *p = nb_prod_dim(x, d, false);
        nb_tensor *sm = nb_softmax(x, d), *lsm = nb_log_softmax(x, d - 4);
        assert_non_null(vmax);
        assert_non_null(vmin);
        assert_non_null(amax);
        assert_non_null(p);
        assert_non_null(sm);
        assert_non_null(lsm);
        for (int64_t o = 0; o < outer; o++) {
            for (int64_t i = 0; i < inner; i++) {
                const float *s = v + o * size * inner + i;
                int64_t at = o * inner + i, kmax = 0, kmin = 0;
                float prod = 1.0f;
                double sum = 0.0;
                for (int64_t k = 0; k < size; k++) {
                    if (s[k * inner] > s[kmax * inner]) kmax = k;
                    if (s[k * inner] < s[kmin * inner]) kmin = k;
                    prod *= s[k * inner];
                }
                for (int64_t k = 0; k < size; k++)
                    sum += exp((double)(s[k * inner] - s[kmax * inner]));
                assert_true(nb_tensor_data_const(imax)[at] == (float)kmax);
                assert_true(nb_tensor_data_const(amax)[at] == (float)kmax);
                assert_true(nb_tensor_data_const(vmax)[at] == s[kmax * inner]);
                assert_true(nb_tensor_data_const(imin)[at] == (float)kmin);
                assert_true(nb_tensor_data_const(vmin)[at] == s[kmin * inner]);
                assert_true(nb_tensor_data_const(p)[at] == prod);
                for (int64_t k = 0; k < size; k++) {
                    int64_t e = o * size * inner + k * inner + i;
                    double ls = (double)(s[k * inner] - s[kmax * inner]) - log(sum);
                    assert_close(nb_tensor_data_const(sm) + e, &(float){(float)exp(ls)}, 1, 1e-7,
                                 1e-6);
                    assert_close(nb_tensor_data_const(lsm) + e, &(float){(float)ls}, 1, 1e-6, 1e-6);
                }
            }
        }
        nb_release(vmax);
        nb_release(imax);
        nb_release(vmin);
        nb_release(imin);
        nb_release(amax);
        nb_release(p);
        nb_release(sm);
        nb_release(lsm);
    }
    nb_release(x);
}

/* ---- indices, saved tensors, no gradient ---------------------------------------------- */

static nb_status backward_ones(nb_tensor *y)
{
    nb_tensor *g = nb_ones_like(y);
    nb_status rc = nb_backward(y, g, false);
    nb_release(g);
    return rc;
}

static void test_indices(void **state)
{
    (void)state;
    nb_tensor *x =
        nb_requires_grad_(nb_from_data((const float[]){1, 5, 5, 2, 0, -1}, NB_SHAPE(2, 3)), true);
    /* without an indices pointer the node still knows them */
    nb_tensor *y = nb_max_dim(x, 1, false, NULL);
    assert_non_null(y);
    assert_int_equal(backward_ones(y), NB_OK);
    assert_close(nb_tensor_data_const(nb_tensor_grad(x)), ((const float[]){0, 1, 0, 1, 0, 0}), 6, 0,
                 0);
    nb_release(y);

    /* the indices are a plain tensor the node saved: writing into them is caught */
    nb_tensor *idx;
    y = nb_min_dim(x, -1, true, &idx);
    assert_non_null(idx);
    assert_false(nb_tensor_requires_grad(idx));
    assert_null(nb_tensor_grad_fn(idx));
    assert_int_equal(nb_fill_(idx, 0.0f), NB_OK);
    assert_int_equal(backward_ones(y), NB_ESTATE);
    assert_error(NB_ESTATE, "[FloatTensor [2, 1]], which is an input saved by MinBackward0, is "
                            "at version 1; expected version 0 instead");
    nb_release(y);
    nb_release(idx);

    /* under no_grad: values and indices, no node */
    NB_NO_GRAD
    {
        y = nb_max_dim(x, 0, false, &idx);
    }
    assert_non_null(y);
    assert_null(nb_tensor_grad_fn(y));
    assert_close(nb_tensor_data_const(idx), ((const float[]){1, 0, 0}), 3, 0, 0);
    nb_release(y);
    nb_release(idx);

    /* on error no indices come back */
    idx = x;
    assert_null(nb_max_dim(x, 2, false, &idx));
    assert_null(idx);
    nb_release(x);

    /* more than 2^24 candidates: their float32 indices would not all be exact */
    nb_tensor *big = nb_empty(NB_SHAPE(16777217));
    assert_non_null(big);
    assert_null(nb_argmax(big, NB_DIMS_ALL, false));
    assert_error(NB_ERANGE, "nb_argmax: a reduction over 16777217 elements has indices beyond "
                            "2^24, which float32 cannot hold exactly");
    assert_null(nb_max_dim(big, 0, false, NULL));
    assert_error(NB_ERANGE, "nb_max_dim: a reduction over 16777217 elements");
    nb_release(big);
}

/* Outputs saved for backward: an in-place change is caught by name and version. */
static void test_saved_output(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(2, 3)), true);
    nb_tensor *(*const ops[])(nb_tensor *, int) = {nb_softmax, nb_log_softmax};
    static const char *const names[] = {"SoftmaxBackward0", "LogSoftmaxBackward0"};
    for (int i = 0; i < 2; i++) {
        nb_tensor *y = ops[i](x, 1);
        NB_NO_GRAD
        {
            assert_int_equal(nb_mul_scalar_(y, 2.0f), NB_OK);
        }
        assert_int_equal(backward_ones(y), NB_ESTATE);
        char want[160];
        snprintf(want, sizeof want,
                 "[FloatTensor [2, 3]], which is the output saved by %s, is at version 1",
                 names[i]);
        assert_error(NB_ESTATE, want);
        nb_release(y);
    }
    nb_release(x);
}

/* The last dim's softmax as documented in softmax.c, one row: the first of the largest values
 * (a NaN when the row has one, the last NaN), e^(x - m), the sum in 8 lanes reduced as a tree,
 * then e·(1/S) or (x - m) - log S; and its backward for the upstream gradient g. */
static void softmax_row_ref(const float *x, const float *g, int64_t n, bool log, float *y,
                            float *dx)
{
    float m = x[0];
    for (int64_t k = 1; k < n; k++) m = (x[k] > m || x[k] != x[k]) ? x[k] : m;
    float lane[8] = {0};
    for (int64_t k = 0; k < n; k++) {
        y[k] = expf(x[k] - m);
        lane[k & 7] += y[k];
    }
    for (int j = 0; j < 4; j++) lane[j] += lane[j + 4];
    float sum = (lane[0] + lane[2]) + (lane[1] + lane[3]), l = logf(sum), r = 1.0f / sum;
    for (int64_t k = 0; k < n; k++) y[k] = log ? (x[k] - m) - l : y[k] * r;
    float t[8] = {0};
    for (int64_t k = 0; k < n; k++) t[k & 7] = log ? t[k & 7] + g[k] : fmaf(g[k], y[k], t[k & 7]);
    for (int j = 0; j < 4; j++) t[j] += t[j + 4];
    float tt = (t[0] + t[2]) + (t[1] + t[3]);
    for (int64_t k = 0; k < n; k++) dx[k] = log ? fmaf(-expf(y[k]), tt, g[k]) : (g[k] - tt) * y[k];
}

/* The same bits, or both NaN (which NaN a NaN operand passes on is the compiler's choice of
 * operand order) */
static bool same_or_nan(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

/* got and dgot against want and dwant, n values each, by same_or_nan; what names the case */
static void expect_softmax_bits(const char *what, bool log, const float *got, const float *want,
                                const float *dgot, const float *dwant, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        if (!same_or_nan(got[k], want[k]))
            fail_msg("%s, %s, element %lld: %a, want %a", log ? "log_softmax" : "softmax", what,
                     (long long)k, (double)got[k], (double)want[k]);
        if (!same_or_nan(dgot[k], dwant[k]))
            fail_msg("%s backward, %s, element %lld: %a, want %a", log ? "log_softmax" : "softmax",
                     what, (long long)k, (double)dgot[k], (double)dwant[k]);
    }
}

/* Long rows along the last dim (its vector loops): the bits of softmax_row_ref, forward and
 * backward, for random rows and rows whose max is a tie of +0 and -0, or holds a NaN, +inf or
 * -inf, at lengths around the loops' blocks. */
static void test_softmax_long_rows_exact(void **state)
{
    (void)state;
    static const int64_t lens[] = {31, 32, 33, 47, 48, 100, 257, 1000};
    for (size_t li = 0; li < ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li], rows = 7;
        nb_tensor *r = nb_randn(NB_SHAPE(rows, n)), *x = nb_mul_scalar(r, 5.0f);
        nb_tensor *g = nb_randn(NB_SHAPE(rows, n));
        nb_release(r);
        assert_non_null(x);
        assert_non_null(g);
        float *v = nb_tensor_data(x);
        for (int64_t k = 0; k < n; k++) v[n + k] = -fabsf(v[n + k]) - 1.0f; /* row 1: max ±0 */
        v[n + n / 3] = 0.0f;
        v[n + n - 1] = -0.0f;
        v[n + 2] = -0.0f;
        v[2 * n + n / 2] = NAN;                                      /* row 2: a NaN inside */
        v[3 * n + n - 1] = NAN;                                      /* row 3: a NaN in the tail */
        v[3 * n] = -NAN;                                             /* ... and another first */
        v[4 * n + 5] = INFINITY;                                     /* row 4: +inf */
        for (int64_t k = 0; k < n; k += 3) v[5 * n + k] = -INFINITY; /* row 5: -inf among */
        v[6 * n + n - 1] = 40.0f;                                    /* row 6: the max last */
        assert_non_null(nb_requires_grad_(x, true));
        for (int log = 0; log < 2; log++) {
            nb_tensor *y = log ? nb_log_softmax(x, -1) : nb_softmax(x, 1);
            assert_non_null(y);
            nb_tensor *yg = nb_mul(y, g), *loss = nb_sum(yg, NB_DIMS_ALL, false);
            assert_non_null(loss);
            assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
            float *want = malloc((size_t)n * sizeof(float)),
                  *dwant = malloc((size_t)n * sizeof(float));
            assert_non_null(want);
            assert_non_null(dwant);
            for (int64_t row = 0; row < rows; row++) {
                softmax_row_ref(v + row * n, nb_tensor_data_const(g) + row * n, n, log != 0, want,
                                dwant);
                char what[64];
                snprintf(what, sizeof what, "n %lld, row %lld", (long long)n, (long long)row);
                expect_softmax_bits(what, log != 0, nb_tensor_data_const(y) + row * n, want,
                                    nb_tensor_data_const(nb_tensor_grad(x)) + row * n, dwant, n);
            }
            free(want);
            free(dwant);
            assert_int_equal(nb_zero_grad(x, true), NB_OK);
            nb_release(loss);
            nb_release(yg);
            nb_release(y);
        }
        nb_release(x);
        nb_release(g);
    }
}

/* One slice along a dim other than the last (elements s apart), as softmax.c documents it:
 * the max one element after the other (the last NaN), e^(x - m), the sum one element after the
 * other, then e / S or (x - m) - log S; and its backward for the upstream gradient g. */
static void softmax_slice_ref(const float *x, const float *g, int64_t n, int64_t s, bool log,
                              float *y, float *dx)
{
    float m = x[0], sum = 0.0f, t = 0.0f;
    for (int64_t k = 1; k < n; k++) m = (x[k * s] > m || x[k * s] != x[k * s]) ? x[k * s] : m;
    for (int64_t k = 0; k < n; k++) sum += y[k * s] = expf(x[k * s] - m);
    float l = logf(sum);
    for (int64_t k = 0; k < n; k++) y[k * s] = log ? (x[k * s] - m) - l : y[k * s] / sum;
    for (int64_t k = 0; k < n; k++) t = log ? t + g[k * s] : fmaf(g[k * s], y[k * s], t);
    for (int64_t k = 0; k < n; k++)
        dx[k * s] = log ? fmaf(-expf(y[k * s]), t, g[k * s]) : (g[k * s] - t) * y[k * s];
}

/* Along the middle dim of [3, n, w] (the slices taken 64 side by side): the bits of
 * softmax_slice_ref, forward and backward, for widths around the block of 64 and slices with
 * NaN, +-inf and zeros of both signs. */
static void test_softmax_middle_dim_exact(void **state)
{
    (void)state;
    static const int64_t lens[] = {1, 2, 17, 300}, widths[] = {2, 5, 63, 64, 65, 130};
    for (size_t li = 0; li < ARRAY_LEN(lens); li++)
        for (size_t wi = 0; wi < ARRAY_LEN(widths); wi++) {
            const int64_t n = lens[li], w = widths[wi], total = 3 * n * w;
            nb_tensor *r = nb_randn(NB_SHAPE(3, n, w)), *x = nb_mul_scalar(r, 5.0f);
            nb_tensor *g = nb_randn(NB_SHAPE(3, n, w));
            nb_release(r);
            assert_non_null(x);
            assert_non_null(g);
            float *v = nb_tensor_data(x);
            for (int64_t i = 0; i < total; i++) {
                if (i % 41 == 7) v[i] = NAN;
                if (i % 37 == 3) v[i] = INFINITY;
                if (i % 31 == 5) v[i] = -INFINITY;
                if (i % 29 == 1) v[i] = -0.0f;
                if (i % 23 == 2) v[i] = 0.0f;
            }
            assert_non_null(nb_requires_grad_(x, true));
            float *want = malloc((size_t)total * sizeof(float)),
                  *dwant = malloc((size_t)total * sizeof(float));
            assert_non_null(want);
            assert_non_null(dwant);
            for (int log = 0; log < 2; log++) {
                nb_tensor *y = log ? nb_log_softmax(x, 1) : nb_softmax(x, -2);
                assert_non_null(y);
                nb_tensor *yg = nb_mul(y, g), *loss = nb_sum(yg, NB_DIMS_ALL, false);
                assert_non_null(loss);
                assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
                for (int64_t o = 0; o < 3; o++)
                    for (int64_t j = 0; j < w; j++) {
                        int64_t at = o * n * w + j;
                        softmax_slice_ref(v + at, nb_tensor_data_const(g) + at, n, w, log != 0,
                                          want + at, dwant + at);
                    }
                char what[64];
                snprintf(what, sizeof what, "[3, %lld, %lld]", (long long)n, (long long)w);
                expect_softmax_bits(what, log != 0, nb_tensor_data_const(y), want,
                                    nb_tensor_data_const(nb_tensor_grad(x)), dwant, total);
                assert_int_equal(nb_zero_grad(x, true), NB_OK);
                nb_release(loss);
                nb_release(yg);
                nb_release(y);
            }
            free(want);
            free(dwant);
            nb_release(x);
            nb_release(g);
        }
}

/* amax and amin of long rows (their 16 lanes) against the loop, bit for bit: the first zero
 * of a tie of +0 and -0, the NaN a row holds, infinities, a constant row. argmax, argmin,
 * max_dim and min_dim against PyTorch's rule (the first index where !(v <= m), stopping at a
 * NaN) on the same rows, values bit for bit. */
static void test_amax_long_rows_exact(void **state)
{
    (void)state;
    static const int64_t lens[] = {32, 33, 47, 100, 1000};
    enum { ROWS = 11 };
    for (size_t li = 0; li < ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li];
        nb_tensor *x = nb_randn(NB_SHAPE(ROWS, n));
        assert_non_null(x);
        float *v = nb_tensor_data(x);
        for (int64_t k = 0; k < n; k++) {
            v[n + k] = -fabsf(v[n + k]) - 1.0f;        /* row 1: max a tie of zeros, -0 first */
            v[2 * n + k] = fabsf(v[2 * n + k]) + 1.0f; /* row 2: min a tie of zeros, +0 first */
            v[7 * n + k] = 0.25f;                      /* row 7: constant */
        }
        v[n + 3] = -0.0f, v[n + n - 2] = 0.0f, v[n + n / 2] = 0.0f;
        v[2 * n + 20] = 0.0f, v[2 * n + n - 1] = -0.0f;
        v[3 * n + n / 3] = NAN;                              /* row 3: a NaN inside */
        v[4 * n] = -NAN, v[4 * n + n - 1] = NAN;             /* row 4: NaNs first and last */
        v[5 * n + 17] = INFINITY, v[5 * n + 18] = -INFINITY; /* row 5: infinities */
        v[6 * n + n - 1] = 1e30f, v[6 * n] = -1e30f;         /* row 6: the extremes at the ends */
        v[8 * n + 31] = 7.0f, v[8 * n + n - 1] = 7.0f;       /* row 8: a tie of nonzero maxima */
        v[9 * n + n - 1] = 9.0f, v[9 * n + n - 2] = NAN;     /* row 9: a NaN before the max */
        v[10 * n + 5] = -9.0f, v[10 * n + n - 1] = -9.0f;    /* row 10: a tie of minima */
        for (int min = 0; min < 2; min++) {
            nb_tensor *y = min ? nb_amin(x, NB_DIMS(1), false) : nb_amax(x, NB_DIMS(-1), false);
            assert_non_null(y);
            for (int r = 0; r < ROWS; r++) {
                const float *row = v + r * n;
                float m = row[0];
                for (int64_t k = 1; k < n; k++)
                    if ((min ? row[k] < m : row[k] > m) || row[k] != row[k]) m = row[k];
                const float got = nb_tensor_data_const(y)[r];
                if (memcmp(&got, &m, sizeof m) != 0)
                    fail_msg("%s, n %lld, row %d: %a, want %a", min ? "amin" : "amax", (long long)n,
                             r, (double)got, (double)m);
            }
            nb_release(y);
            nb_tensor *idx,
                *arg = min ? nb_argmin(x, NB_DIMS(1), false) : nb_argmax(x, NB_DIMS(-1), false);
            y = min ? nb_min_dim(x, 1, false, &idx) : nb_max_dim(x, -1, false, &idx);
            assert_non_null(arg);
            assert_non_null(y);
            for (int r = 0; r < ROWS; r++) {
                const float *row = v + r * n;
                int64_t want = 0;
                for (int64_t k = 0; k < n; k++) {
                    if (min ? !(row[k] >= row[want]) : !(row[k] <= row[want])) want = k;
                    if (row[want] != row[want]) break;
                }
                const float got = nb_tensor_data_const(y)[r];
                if (nb_tensor_data_const(arg)[r] != (float)want ||
                    nb_tensor_data_const(idx)[r] != (float)want ||
                    memcmp(&got, &row[want], sizeof got) != 0)
                    fail_msg("%s, n %lld, row %d: index %g (%g), value %a, want %lld, %a",
                             min ? "argmin" : "argmax", (long long)n, r,
                             (double)nb_tensor_data_const(arg)[r],
                             (double)nb_tensor_data_const(idx)[r], (double)got, (long long)want,
                             (double)row[want]);
            }
            nb_release(arg);
            nb_release(idx);
            nb_release(y);
        }
        nb_release(x);
    }
}

/*
 * logsumexp along rows longer than its blocks of 512 exps (and a part of one): against the sum
 * in double of the same float exps, rounded once, within 1 ulp; rows holding -inf (its exp
 * is 0), a +inf (the result +inf) and only -inf (the result -inf).
 */
static void test_logsumexp_long_rows(void **state)
{
    (void)state;
    static const int64_t lens[] = {511, 512, 513, 1500};
    enum { ROWS = 4 };
    for (size_t li = 0; li < ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li];
        nb_tensor *x = nb_randn(NB_SHAPE(ROWS, n));
        assert_non_null(x);
        float *v = nb_tensor_data(x);
        for (int64_t k = 0; k < ROWS * n; k++) v[k] *= 4.0f;
        v[n + 3] = -INFINITY, v[n + n - 1] = -INFINITY;           /* row 1: -inf terms */
        v[2 * n + n / 2] = INFINITY;                              /* row 2: +inf */
        for (int64_t k = 0; k < n; k++) v[3 * n + k] = -INFINITY; /* row 3: all -inf */
        nb_tensor *y = nb_logsumexp(x, NB_DIMS(1), false);
        assert_non_null(y);
        const float *got = nb_tensor_data_const(y);
        for (int r = 0; r < ROWS; r++) {
            const float *row = v + r * n;
            float m = row[0];
            for (int64_t k = 1; k < n; k++) m = row[k] > m ? row[k] : m;
            float want;
            if (isinf(m)) {
                want = m;
            } else {
                double s = 0.0;
                for (int64_t k = 0; k < n; k++) s += (double)expf(row[k] - m);
                want = logf((float)s) + m;
            }
            if (isinf(want)
                    ? got[r] != want
                    : !(fabsf(got[r] - want) <= nextafterf(fabsf(want), INFINITY) - fabsf(want)))
                fail_msg("n %lld, row %d: %a, want %a", (long long)n, r, (double)got[r],
                         (double)want);
        }
        nb_release(y);
        nb_release(x);
    }
}

/* The last-dim log-probabilities are those cross_entropy computes inside its fused node. */
static void test_log_softmax_is_cross_entropys(void **state)
{
    (void)state;
    nb_tensor *r = nb_randn(NB_SHAPE(6, 19)), *x = nb_mul_scalar(r, 7.0f);
    nb_release(r);
    float *v = nb_tensor_data(x);
    v[3] = 1e4f, v[19 + 5] = -1e4f, v[38] = 1e4f, v[39] = 1e4f, v[57] = -INFINITY;
    nb_tensor *t = nb_from_data((const float[]){3, 5, 1, 0, 18, 7}, NB_SHAPE(6));
    nb_tensor *lp = nb_log_softmax(x, -1);
    nb_tensor *ce = nb_cross_entropy(x, t, NULL, -100, NB_NONE, 0.0);
    assert_non_null(lp);
    assert_non_null(ce);
    for (int i = 0; i < 6; i++) {
        float want = -nb_tensor_data_const(lp)[i * 19 + (int)nb_tensor_data_const(t)[i]];
        if (memcmp(&want, nb_tensor_data_const(ce) + i, sizeof want) != 0)
            fail_msg("sample %d: cross_entropy %a, -log_softmax %a", i,
                     (double)nb_tensor_data_const(ce)[i], (double)want);
    }
    nb_release(ce);
    nb_release(lp);
    nb_release(t);
    nb_release(x);
}

/* ---- every op: NULL, node, no grad, errors, allocation failure ------------------------------ */

static nb_tensor *w_max(nb_tensor *x)
{
    return nb_max(x);
}
static nb_tensor *w_min(nb_tensor *x)
{
    return nb_min(x);
}
static nb_tensor *w_max_dim(nb_tensor *x)
{
    nb_tensor *idx, *y = nb_max_dim(x, 1, false, &idx);
    nb_release(idx);
    return y;
}
static nb_tensor *w_min_dim(nb_tensor *x)
{
    return nb_min_dim(x, -1, true, NULL);
}
static nb_tensor *w_amax(nb_tensor *x)
{
    return nb_amax(x, NB_DIMS(0), false);
}
static nb_tensor *w_amin(nb_tensor *x)
{
    return nb_amin(x, NB_DIMS_ALL, true);
}
static nb_tensor *w_argmax(nb_tensor *x)
{
    return nb_argmax(x, NB_DIMS(1), false);
}
static nb_tensor *w_argmin(nb_tensor *x)
{
    return nb_argmin(x, NB_DIMS_ALL, false);
}
static nb_tensor *w_var(nb_tensor *x)
{
    return nb_var(x, NB_DIMS(0), 1, false);
}
static nb_tensor *w_std(nb_tensor *x)
{
    return nb_std(x, NB_DIMS_ALL, 0, false);
}
static nb_tensor *w_logsumexp(nb_tensor *x)
{
    return nb_logsumexp(x, NB_DIMS(-1), true);
}
static nb_tensor *w_prod(nb_tensor *x)
{
    return nb_prod(x);
}
static nb_tensor *w_prod_dim(nb_tensor *x)
{
    return nb_prod_dim(x, 0, false);
}
static nb_tensor *w_norm(nb_tensor *x)
{
    return nb_norm(x, 2.0f, NB_DIMS(1), false);
}
static nb_tensor *w_softmax(nb_tensor *x)
{
    return nb_softmax(x, 1);
}
static nb_tensor *w_log_softmax(nb_tensor *x)
{
    return nb_log_softmax(x, 0);
}

static const struct {
    const char *fn;
    nb_tensor *(*f)(nb_tensor *x);
    const char *node; /* NULL: not differentiable */
} all_ops[] = {
    {"nb_max", w_max, "MaxBackward1"},
    {"nb_min", w_min, "MinBackward1"},
    {"nb_max_dim", w_max_dim, "MaxBackward0"},
    {"nb_min_dim", w_min_dim, "MinBackward0"},
    {"nb_amax", w_amax, "AmaxBackward0"},
    {"nb_amin", w_amin, "AminBackward0"},
    {"nb_argmax", w_argmax, NULL},
    {"nb_argmin", w_argmin, NULL},
    {"nb_var", w_var, "VarBackward0"},
    {"nb_std", w_std, "StdBackward0"},
    {"nb_logsumexp", w_logsumexp, "LogsumexpBackward0"},
    {"nb_prod", w_prod, "ProdBackward0"},
    {"nb_prod_dim", w_prod_dim, "ProdBackward1"},
    {"nb_norm", w_norm, "NormBackward1"},
    {"nb_softmax", w_softmax, "SoftmaxBackward0"},
    {"nb_log_softmax", w_log_softmax, "LogSoftmaxBackward0"},
};

/*
 * A norm whose y^(p-1) leaves float's range although y (summed in double) does not: the
 * gradient sgn(x)·|x|^(p-1)·g / y^(p-1) is finite, as computed in double here, where the float
 * formula gave 0·inf = NaN. A row of ordinary values beside it keeps the bits it has alone.
 */
static void test_norm_grad_extreme(void **state)
{
    (void)state;
    const float v[3][3] = {{1e-30f, 2e-30f, 1e-45f}, {1e20f, -1e20f, 3.0f}, {1.0f, -2.0f, 3.0f}};
    const float ps[] = {1.5f, 3.0f, 4.5f};
    for (int j = 0; j < 3; j++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *alone = nb_requires_grad_(nb_from_data(v[2], NB_SHAPE(3)), true);
        assert_int_equal(nb_backward(nb_norm(alone, ps[j], NB_DIMS_ALL, false), NULL, false),
                         NB_OK);
        nb_tensor *x = nb_requires_grad_(nb_from_data(&v[0][0], NB_SHAPE(3, 3)), true);
        nb_tensor *y = nb_norm(x, ps[j], NB_DIMS(1), false);
        assert_int_equal(nb_backward(y, nb_ones(NB_SHAPE(3)), false), NB_OK);
        const float *g = nb_tensor_data_const(nb_tensor_grad(x));
        const float *yv = nb_tensor_data_const(y);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < 3; i++) {
                double q = (double)ps[j] - 1.0, xi = (double)v[r][i];
                double want = (xi > 0 ? 1 : -1) * pow(fabs(xi), q) / pow((double)yv[r], q);
                if (!(fabs((double)g[r * 3 + i] - want) <= 1e-6 * fabs(want) + 1e-38))
                    fail_msg("p %g, row %d, element %d: %a, want %a", (double)ps[j], r, i,
                             (double)g[r * 3 + i], want);
            }
        assert_memory_equal(g + 6, nb_tensor_data_const(nb_tensor_grad(alone)), 3 * sizeof *g);
        assert_int_equal(nb_scope_end(sc), NB_OK);
    }
}

/* Every element of t is +0. */
static void assert_plus_zeros(nb_tensor *t, const char *what)
{
    assert_non_null(t);
    const float *d = nb_tensor_data_const(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        if (d[i] != 0.0f || signbit(d[i]))
            fail_msg("%s: element %lld is %g", what, (long long)i, (double)d[i]);
}

/*
 * A sum of zeros is +0 whatever their signs, also over one element or over dims of size 1, as
 * PyTorch's (its accumulator starts at +0), and so is sub's gradient for a broadcast second
 * operand, sum_to(-g). The signs are tests/data/gen_zero_sums.py's.
 */
static void test_sums_never_negative_zero(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *z = nb_full(NB_SHAPE(1), -0.0f), *z21 = nb_full(NB_SHAPE(2, 1), -0.0f);
    assert_plus_zeros(nb_sum(z, NB_DIMS_ALL, false), "sum of [-0]");
    assert_plus_zeros(nb_mean(z, NB_DIMS_ALL, false), "mean of [-0]");
    assert_plus_zeros(nb_sum(z21, NB_DIMS(1), false), "sum over a dim of size 1");
    assert_plus_zeros(nb_mean(z21, NB_DIMS(1), true), "mean over a dim of size 1");
    assert_plus_zeros(nb_sum(nb_full(NB_SHAPE(64), -0.0f), NB_DIMS_ALL, false), "sum of 64 -0");
    const float gv[] = {0.0f, -0.0f, -0.0f, -0.0f};
    nb_tensor *g = nb_from_data(gv, NB_SHAPE(2, 2));
    nb_shape shapes[] = {NB_SHAPE(1), NB_SHAPE0};
    for (int i = 0; i < 2; i++) {
        nb_tensor *a = nb_requires_grad_(nb_ones(NB_SHAPE(2, 2)), true);
        nb_tensor *b = nb_requires_grad_(nb_zeros(shapes[i]), true);
        assert_int_equal(nb_backward(nb_sub(a, b), g, false), NB_OK);
        assert_plus_zeros(nb_tensor_grad(b), "sub's db");
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_null_and_nodes(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(3, 4)), true);
    nb_tensor *a = nb_ones(NB_SHAPE(2)), *b = nb_ones(NB_SHAPE(3));
    for (size_t i = 0; i < ARRAY_LEN(all_ops); i++) {
        /* a NULL made by a failed call keeps that call's error */
        nb_error_clear();
        assert_null(all_ops[i].f(nb_add(a, b)));
        assert_error(NB_ESHAPE, "nb_add: shapes [2] and [3] cannot be broadcast");
        nb_error_clear();
        assert_null(all_ops[i].f(NULL));
        char want[96];
        snprintf(want, sizeof want, "%s: argument 'x' is NULL", all_ops[i].fn);
        assert_error(NB_EINVAL, want);

        nb_tensor *y = all_ops[i].f(x);
        assert_non_null(y);
        if (all_ops[i].node) {
            const nb_node *n = nb_tensor_grad_fn(y);
            assert_non_null(n);
            assert_string_equal(nb_node_name(n), all_ops[i].node);
            assert_int_equal(nb_node_num_next(n), 1);
            assert_ptr_equal(nb_node_variable(nb_node_next(n, 0, NULL)), x);
        } else {
            assert_null(nb_tensor_grad_fn(y));
            assert_false(nb_tensor_requires_grad(y));
        }
        nb_release(y);
        NB_NO_GRAD
        {
            y = all_ops[i].f(x);
        }
        assert_non_null(y);
        assert_null(nb_tensor_grad_fn(y));
        assert_false(nb_tensor_requires_grad(y));
        nb_release(y);
    }
    nb_release(a);
    nb_release(b);
    nb_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_randn(NB_SHAPE(2, 3)), *e = nb_zeros(NB_SHAPE(0, 3)), *s = nb_scalar(1);
    nb_tensor *idx = x;
    static const char range[] = "dimension out of range (expected to be in range of [-2, 1], "
                                "but got 2)";
    char want[160];
#define EXPECT(call, code, fn, text)                                                               \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        snprintf(want, sizeof want, "%s: %s", fn, text);                                           \
        assert_error(code, want);                                                                  \
    } while (0)
    EXPECT(nb_max_dim(x, 2, false, &idx), NB_EINVAL, "nb_max_dim", range);
    assert_null(idx);
    EXPECT(nb_min_dim(x, -3, true, NULL), NB_EINVAL, "nb_min_dim",
           "dimension out of range (expected to be in range of [-2, 1], but got -3)");
    EXPECT(nb_max_dim(e, 0, false, NULL), NB_EINVAL, "nb_max_dim",
           "expected reduction dim 0 to have non-zero size");
    EXPECT(nb_max_dim(s, 1, false, NULL), NB_EINVAL, "nb_max_dim",
           "dimension out of range (expected to be in range of [-1, 0], but got 1)");
    EXPECT(nb_max(e), NB_EINVAL, "nb_max",
           "expected a non-empty tensor (an empty one reduces only along a dim: nb_max_dim)");
    EXPECT(nb_min(e), NB_EINVAL, "nb_min", "expected a non-empty tensor");
    EXPECT(nb_amax(e, NB_DIMS(-2), false), NB_EINVAL, "nb_amax",
           "expected reduction dim 0 to have non-zero size");
    EXPECT(nb_amin(e, NB_DIMS_ALL, true), NB_EINVAL, "nb_amin",
           "expected reduction dim 0 to have non-zero size");
    EXPECT(nb_amax(x, NB_DIMS(1, -1), false), NB_EINVAL, "nb_amax",
           "dim 1 appears multiple times in the list of dims");
    EXPECT(nb_amin(x, nb_dims_make(0, NULL), false), NB_EINVAL, "nb_amin",
           "empty list of dims (NB_DIMS_ALL is every dim)");
    EXPECT(nb_argmax(x, NB_DIMS(0, 1), false), NB_EINVAL, "nb_argmax",
           "expected one dim or NB_DIMS_ALL, got a list of 2");
    EXPECT(nb_argmin(x, NB_DIMS(2), false), NB_EINVAL, "nb_argmin", range);
    EXPECT(nb_argmax(e, NB_DIMS_ALL, false), NB_EINVAL, "nb_argmax",
           "expected reduction dim 0 to have non-zero size");
    EXPECT(nb_argmin(e, NB_DIMS(0), true), NB_EINVAL, "nb_argmin",
           "expected reduction dim 0 to have non-zero size");
    EXPECT(nb_var(x, NB_DIMS(2), 1, false), NB_EINVAL, "nb_var", range);
    EXPECT(nb_std(x, NB_DIMS(0, -2), 1, false), NB_EINVAL, "nb_std",
           "dim 0 appears multiple times in the list of dims");
    /* a 0-d tensor takes dim 0 or -1 once, as torch.sum(torch.tensor(1.), [0, -1]) */
    EXPECT(nb_sum(s, NB_DIMS(0, -1), false), NB_EINVAL, "nb_sum",
           "dim 0 appears multiple times in the list of dims");
    EXPECT(nb_var(s, NB_DIMS(0, 0), 0, true), NB_EINVAL, "nb_var",
           "dim 0 appears multiple times in the list of dims");
    EXPECT(nb_logsumexp(x, NB_DIMS(-3), false), NB_EINVAL, "nb_logsumexp",
           "dimension out of range (expected to be in range of [-2, 1], but got -3)");
    EXPECT(nb_logsumexp(x, nb_dims_make(9, NULL), false), NB_EINVAL, "nb_logsumexp",
           "number of dims 9 is outside [1, 8]");
    EXPECT(nb_prod_dim(x, 2, true), NB_EINVAL, "nb_prod_dim", range);
    EXPECT(nb_norm(x, 2.0f, NB_DIMS(2), false), NB_EINVAL, "nb_norm", range);
    EXPECT(nb_softmax(x, 2), NB_EINVAL, "nb_softmax", range);
    EXPECT(nb_log_softmax(s, -2), NB_EINVAL, "nb_log_softmax",
           "dimension out of range (expected to be in range of [-1, 0], but got -2)");
#undef EXPECT

    /* empty slices where the op has a value for them, and empty results */
    nb_tensor *r = nb_max_dim(e, 1, true, &idx);
    nbt_check_shape(r, NB_SHAPE(0, 1), "max_dim of [0, 3] along 1");
    nbt_check_shape(idx, NB_SHAPE(0, 1), "its indices");
    nb_release(r);
    nb_release(idx);
    r = nb_amin(e, NB_DIMS(1), false);
    nbt_check_shape(r, NB_SHAPE(0), "amin of [0, 3] over 1");
    nb_release(r);
    r = nb_argmax(e, NB_DIMS(-1), false);
    nbt_check_shape(r, NB_SHAPE(0), "argmax of [0, 3] along -1");
    nb_release(r);
    r = nb_prod(e);
    assert_true(nb_tensor_data_const(r)[0] == 1.0f);
    nb_release(r);
    r = nb_var(e, NB_DIMS_ALL, 0, false);
    assert_true(isnan(nb_tensor_data_const(r)[0]));
    nb_release(r);
    r = nb_norm(e, -INFINITY, NB_DIMS_ALL, true);
    nbt_check_shape(r, NB_SHAPE(1, 1), "norm of [0, 3], keepdim");
    assert_true(nb_tensor_data_const(r)[0] == 0.0f);
    nb_release(r);
    nb_release(s);
    nb_release(e);
    nb_release(x);
}

/*
 * Out of memory at any allocation of a forward and (for a differentiable op) its backward
 * (nbt_oom_sweep): the forward fails with NB_ENOMEM for its function, or the backward for
 * nb_backward; nothing leaks.
 */
static nb_tensor *var_middle(nb_tensor *x)
{
    return nb_var(x, NB_DIMS(0, 2), 1, true); /* a permuted copy, then a mean in backward */
}

static nb_tensor *amax_middle(nb_tensor *x)
{
    return nb_amax(x, NB_DIMS(1), false); /* a permuted copy, a mask and counts in backward */
}

static nb_tensor *norm_inf(nb_tensor *x)
{
    return nb_norm(x, INFINITY, NB_DIMS(0), false);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(2, 3, 4)), true);
    nb_tensor *z = nb_requires_grad_(nb_from_data((const float[]){2, 0, 3, 1}, NB_SHAPE(4)), true);
    nbt_oom_sweep("nb_max_dim", w_max_dim, x);
    nbt_oom_sweep("nb_var", var_middle, x);
    nbt_oom_sweep("nb_amax", amax_middle, x);
    nbt_oom_sweep("nb_norm", norm_inf, x);
    nbt_oom_sweep("nb_softmax", w_softmax, x);
    nbt_oom_sweep("nb_argmax", w_argmax, x);
    nbt_oom_sweep("nb_prod", w_prod, z); /* a zero: the exclusive products' buffer */
    nb_release(z);
    nb_release(x);
}

/* max_dim / min_dim along a dim of an empty tensor whose output is empty with 2^60 rows
 * before the dim: shapes at once, no loop over the rows (forward or backward). */
static void test_max_dim_empty_huge_outer(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_empty(NB_SHAPE((int64_t)1 << 60, 3, 0)), true);
    assert_non_null(x);
    for (int min = 0; min < 2; min++) {
        nb_tensor *idx = NULL;
        nb_tensor *y = min ? nb_min_dim(x, 1, false, &idx) : nb_max_dim(x, 1, false, &idx);
        assert_non_null(y);
        assert_int_equal(nb_tensor_ndim(y), 2);
        assert_int_equal(nb_tensor_shape(y)[0], (int64_t)1 << 60);
        assert_int_equal(nb_tensor_numel(y), 0);
        assert_int_equal(nb_tensor_numel(idx), 0);
        nb_tensor *l = nb_sum(y, NB_DIMS_ALL, false);
        assert_int_equal(nb_backward(l, NULL, false), NB_OK);
        assert_int_equal(nb_tensor_numel(nb_tensor_grad(x)), 0);
        nb_release(l);
        nb_release(y);
        nb_release(idx);
    }
    nb_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_max_dim_empty_huge_outer, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_naive_dims, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_logsumexp_long_rows, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_amax_long_rows_exact, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_softmax_middle_dim_exact, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_softmax_long_rows_exact, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_naive_one_dim, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_indices, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_saved_output, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_log_softmax_is_cross_entropys, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_norm_grad_extreme, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_sums_never_negative_zero, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_and_nodes, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_out_of_memory, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_reduce", tests, NULL, NULL);
}
