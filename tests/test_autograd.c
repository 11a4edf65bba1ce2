/*
 * Autograd: the errors and behaviours of FIDELITY.md "Autograd behaviour", .grad semantics,
 * no_grad, graph structure, the engine (diamonds, nb_grad), iterative traversal and teardown
 * of 100 000-node chains, scopes around training steps, and an allocation-failure sweep.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nabla/extend.h>

#include "testutil.h"

#define LONG_CHAIN 100000

/* ---- helpers --------------------------------------------------------------------------- */

static void check_values(const nb_tensor *t, const float *want, int64_t n, const char *file,
                         int line)
{
    if (!t) fail_msg("%s:%d: tensor is NULL (%s)", file, line, nb_last_error()->message);
    if (nb_tensor_numel(t) != n)
        fail_msg("%s:%d: numel %lld, want %lld", file, line, (long long)nb_tensor_numel(t),
                 (long long)n);
    nbt_assert_close(nb_tensor_data_const(t), want, n, 1e-6, 1e-5, file, line);
}

/* assert_values(t, 1, 2, 3): t holds exactly these values (within float tolerance). */
#define assert_values(t, ...)                                                                      \
    do {                                                                                           \
        const float want_[] = {__VA_ARGS__};                                                       \
        check_values((t), want_, (int64_t)(sizeof want_ / sizeof want_[0]), __FILE__, __LINE__);   \
    } while (0)

static float item(const nb_tensor *t)
{
    float v = NAN;
    assert_non_null(t);
    assert_int_equal(nb_tensor_item(t, &v), NB_OK);
    return v;
}

/* A 1-D tensor from values; requires grad when rg. */
static nb_tensor *vec(const float *v, int64_t n, bool rg)
{
    nb_tensor *t = nb_from_data(v, NB_SHAPE(n));
    assert_non_null(t);
    if (rg) assert_ptr_equal(nb_requires_grad_(t, true), t);
    return t;
}

static nb_tensor *sum_all(nb_tensor *t)
{
    return nb_sum(t, NB_DIMS_ALL, false);
}

/* Σ t, releasing t: the sum's graph keeps what its backward needs. */
static nb_tensor *sum_release(nb_tensor *t)
{
    nb_tensor *s = sum_all(t);
    nb_release(t);
    return s;
}

/* The three tensors most tests use: w = [1, 2, 3] (requires grad), x = [4, 5, 6]. */
static const float W3[3] = {1, 2, 3}, X3[3] = {4, 5, 6};

/* ---- FIDELITY.md errors ---------------------------------------------------------------- */

static void test_backward_twice(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *y = nb_mul(w, x);
    nb_tensor *loss = sum_all(y);
    assert_non_null(loss);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w), 4, 5, 6);

    nb_error_clear();
    assert_int_equal(nb_backward(loss, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_backward: ");
    assert_error(NB_ESTATE, "backward through the graph a second time");
    assert_error(NB_ESTATE, "retain_graph");
    assert_values(nb_tensor_grad(w), 4, 5, 6); /* a failed backward adds nothing */

    /* nb_grad through the freed graph fails the same way, naming nb_grad */
    nb_tensor *res = NULL;
    nb_error_clear();
    assert_int_equal(nb_grad(&loss, 1, &w, 1, NULL, NULL, &res), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_grad: ");
    assert_error(NB_ESTATE, "backward through the graph a second time");
    assert_null(res);
    nb_error_clear();

    nb_release(loss);
    nb_release(y);
    nb_release(x);
    nb_release(w);
}

static void test_retain_graph(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *loss = sum_release(nb_mul(w, x)); /* the product's node lives on in the graph */
    assert_non_null(loss);
    assert_int_equal(nb_backward(loss, NULL, true), NB_OK);
    assert_values(nb_tensor_grad(w), 4, 5, 6);
    assert_int_equal(nb_backward(loss, NULL, true), NB_OK);
    assert_values(nb_tensor_grad(w), 8, 10, 12);
    /* the last backward may free the graph ... */
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w), 12, 15, 18);
    /* ... after which it is gone */
    nb_error_clear();
    assert_int_equal(nb_backward(loss, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "retain_graph");
    assert_values(nb_tensor_grad(w), 12, 15, 18);

    /* an output-saving node (sigmoid) retained too */
    nb_error_clear();
    nb_tensor *w2 = nb_requires_grad_(nb_scalar(0.5f), true);
    nb_tensor *s2 = nb_sigmoid(w2);
    float sg = 1.0f / (1.0f + expf(-0.5f)), d = sg * (1.0f - sg);
    assert_int_equal(nb_backward(s2, NULL, true), NB_OK);
    assert_int_equal(nb_backward(s2, NULL, true), NB_OK);
    assert_values(nb_tensor_grad(w2), 2 * d);
    assert_int_equal(nb_backward(s2, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w2), 3 * d);
    nb_error_clear();
    assert_int_equal(nb_backward(s2, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "backward through the graph a second time");
    nb_error_clear();

    nb_release(s2);
    nb_release(w2);
    nb_release(loss);
    nb_release(x);
    nb_release(w);
}

static void test_root_errors(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true);
    nb_tensor *y = nb_mul_scalar(w, 2.0f);
    assert_non_null(y);

    /* a non-scalar root needs a gradient */
    assert_int_equal(nb_backward(y, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_backward: grad can be implicitly created only for scalar outputs");
    assert_null(nb_tensor_grad(w));

    /* a gradient of the wrong shape */
    nb_error_clear();
    nb_tensor *g2 = nb_ones(NB_SHAPE(2));
    assert_int_equal(nb_backward(y, g2, false), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_backward: Mismatch in shape");
    assert_error(NB_ESHAPE, "[2]");
    assert_error(NB_ESHAPE, "[3]");
    nb_tensor *g31 = nb_ones(NB_SHAPE(3, 1)); /* same numel, other shape */
    nb_error_clear();
    assert_int_equal(nb_backward(y, g31, false), NB_ESHAPE);
    assert_error(NB_ESHAPE, "[3, 1]");
    assert_null(nb_tensor_grad(w));

    /* the right gradient works; the caller's gradient is not taken or changed */
    nb_error_clear();
    const float gv[3] = {1, 10, 100};
    nb_tensor *g = vec(gv, 3, false);
    assert_int_equal(nb_backward(y, g, false), NB_OK);
    assert_values(nb_tensor_grad(w), 2, 20, 200);
    assert_values(g, 1, 10, 100);
    assert_ptr_not_equal(nb_tensor_grad(w), g);
    assert_false(nb_tensor_shares_storage(nb_tensor_grad(w), g));

    /* a root that does not require grad */
    nb_tensor *c = nb_ones(NB_SHAPE(3));
    nb_tensor *sc = sum_all(c);
    nb_error_clear();
    assert_int_equal(nb_backward(sc, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE,
                 "nb_backward: element 0 of tensors does not require grad and does not have a "
                 "grad_fn");
    /* nb_grad names the output at fault */
    nb_tensor *lw = sum_all(w);
    nb_tensor *outs[2] = {lw, sc}, *res = NULL;
    nb_error_clear();
    assert_int_equal(nb_grad(outs, 2, &w, 1, NULL, NULL, &res), NB_ESTATE);
    assert_error(NB_ESTATE, "element 1 of tensors does not require grad");
    assert_null(res);

    /* NULL roots */
    nb_error_clear();
    assert_int_equal(nb_backward(NULL, NULL, false), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_backward");
    nb_error_clear();

    nb_release(lw);
    nb_release(sc);
    nb_release(c);
    nb_release(g);
    nb_release(g31);
    nb_release(g2);
    nb_release(y);
    nb_release(w);
}

static void test_inplace_saved_input(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *y = nb_mul(w, x); /* saves x for w's gradient */
    nb_tensor *loss = sum_all(y);
    assert_non_null(loss);
    assert_int_equal(nb_tensor_version(x), 0);
    assert_int_equal(nb_mul_scalar_(x, 2.0f), NB_OK); /* x is outside the graph: allowed */
    assert_int_equal(nb_tensor_version(x), 1);
    assert_values(x, 8, 10, 12);

    assert_int_equal(nb_backward(loss, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_backward: one of the variables needed for gradient computation "
                            "has been modified by an inplace operation");
    assert_error(NB_ESTATE, "MulBackward0");
    assert_error(NB_ESTATE, "[3]");
    assert_error(NB_ESTATE, "is at version 1; expected version 0");
    assert_null(nb_tensor_grad(w));
    nb_error_clear();

    /* two more bumps: the message counts them */
    nb_tensor *y2 = nb_mul(w, x);
    nb_tensor *loss2 = sum_all(y2);
    assert_int_equal(nb_add_scalar_(x, 1.0f), NB_OK);
    assert_int_equal(nb_add_scalar_(x, 1.0f), NB_OK);
    assert_int_equal(nb_backward(loss2, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "is at version 3; expected version 1");
    nb_error_clear();

    nb_release(loss2);
    nb_release(y2);
    nb_release(loss);
    nb_release(y);
    nb_release(x);
    nb_release(w);
}

static void test_inplace_saved_output(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true);
    nb_tensor *s = nb_sigmoid(w); /* saves its output */
    nb_tensor *loss = sum_all(s);
    assert_non_null(loss);

    /* s is part of the graph: in-place on it is refused under grad mode */
    assert_int_equal(nb_mul_scalar_(s, 2.0f), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_mul_scalar_");
    assert_int_equal(nb_tensor_version(s), 0);
    nb_error_clear();

    /* a detached alias shares the version counter: changing it breaks the backward */
    nb_tensor *d = nb_detach(s);
    assert_int_equal(nb_mul_scalar_(d, 2.0f), NB_OK);
    assert_int_equal(nb_tensor_version(s), 1);
    assert_int_equal(nb_backward(loss, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "SigmoidBackward0");
    assert_error(NB_ESTATE, "[3]");
    assert_error(NB_ESTATE, "is at version 1; expected version 0");
    nb_error_clear();

    nb_release(d);
    nb_release(loss);
    nb_release(s);
    nb_release(w);
}

static void test_inplace_leaf(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);

    assert_int_equal(nb_add_scalar_(w, 1.0f), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_add_scalar_: a leaf Variable that requires grad is being used in "
                            "an in-place operation");
    assert_values(w, 1, 2, 3);
    assert_int_equal(nb_tensor_version(w), 0);
    nb_error_clear();
    assert_int_equal(nb_add_(w, x), NB_ESTATE);
    assert_error(NB_ESTATE, "leaf Variable that requires grad");
    nb_error_clear();
    assert_int_equal(nb_mul_scalar_(w, 2.0f), NB_ESTATE);
    assert_error(NB_ESTATE, "leaf Variable that requires grad");
    nb_error_clear();
    assert_int_equal(nb_fill_(w, 0.0f), NB_ESTATE);
    assert_error(NB_ESTATE, "leaf Variable that requires grad");
    assert_values(w, 1, 2, 3);
    nb_error_clear();

    /* x += w: w requires grad, so this would hide a graph edge */
    assert_int_equal(nb_add_(x, w), NB_ESTATE);
    assert_values(x, 4, 5, 6);
    nb_error_clear();

    /* under no_grad the optimizer's update is allowed */
    NB_NO_GRAD
    {
        assert_int_equal(nb_add_scalar_(w, 1.0f), NB_OK);
        assert_int_equal(nb_sub_(w, x), NB_OK);
    }
    assert_true(nb_is_grad_enabled());
    assert_values(w, -2, -2, -2);
    assert_int_equal(nb_tensor_version(w), 2);
    assert_true(nb_tensor_requires_grad(w));
    assert_true(nb_tensor_is_leaf(w));
    assert_int_equal(nb_last_error()->code, NB_OK);

    /* and it is an error again after the block */
    assert_int_equal(nb_add_scalar_(w, 1.0f), NB_ESTATE);
    nb_error_clear();

    /* a leaf that does not require grad is fine */
    assert_int_equal(nb_add_scalar_(x, 1.0f), NB_OK);
    assert_values(x, 5, 6, 7);

    nb_release(x);
    nb_release(w);
}

static void test_requires_grad_flags(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, false);
    assert_false(nb_tensor_requires_grad(w));
    assert_ptr_equal(nb_requires_grad_(w, true), w);
    assert_true(nb_tensor_requires_grad(w));
    nb_tensor *y = nb_mul_scalar(w, 2.0f);
    assert_true(nb_tensor_requires_grad(y));

    /* only leaves */
    assert_null(nb_requires_grad_(y, false));
    assert_error(NB_ESTATE, "nb_requires_grad_: you can only change requires_grad flags of leaf "
                            "variables");
    assert_error(NB_ESTATE, "nb_detach");
    assert_true(nb_tensor_requires_grad(y));
    nb_error_clear();
    /* asking a non-leaf for requires_grad it has is no change: PyTorch returns the tensor */
    assert_ptr_equal(nb_requires_grad_(y, true), y);
    assert_int_equal(nb_error_pending(), NB_OK);
    assert_true(nb_tensor_requires_grad(y));
    assert_false(nb_tensor_is_leaf(y));

    /* the way out: detach gives a leaf whose flag can be set */
    nb_tensor *d = nb_detach(y);
    assert_true(nb_tensor_is_leaf(d));
    assert_false(nb_tensor_requires_grad(d));
    assert_ptr_equal(nb_requires_grad_(d, true), d);
    assert_true(nb_tensor_requires_grad(d));

    /* NULL */
    assert_null(nb_requires_grad_(NULL, true));
    assert_error(NB_EINVAL, "nb_requires_grad_");
    assert_false(nb_tensor_requires_grad(NULL));
    nb_error_clear();

    /* turning it off on a leaf again */
    assert_ptr_equal(nb_requires_grad_(w, false), w);
    assert_false(nb_tensor_requires_grad(w));
    nb_tensor *y2 = nb_mul_scalar(w, 2.0f);
    assert_false(nb_tensor_requires_grad(y2));
    assert_null(nb_tensor_grad_fn(y2));

    nb_release(y2);
    nb_release(d);
    nb_release(y);
    nb_release(w);
}

static void test_retain_grad_errors(void **state)
{
    (void)state;
    nb_tensor *t = vec(W3, 3, false);
    assert_int_equal(nb_retain_grad(t), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_retain_grad: can't retain_grad on Tensor that has "
                            "requires_grad=False");
    assert_false(nb_tensor_retains_grad(t));
    nb_error_clear();
    assert_int_equal(nb_retain_grad(NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_retain_grad");
    nb_error_clear();

    /* a non-leaf made under no_grad does not require grad either */
    nb_tensor *w = vec(W3, 3, true), *y = NULL;
    NB_NO_GRAD y = nb_mul_scalar(w, 2.0f);
    assert_int_equal(nb_retain_grad(y), NB_ESTATE);
    nb_error_clear();

    /* a leaf that requires grad: allowed (it retains its grad anyway) */
    assert_int_equal(nb_retain_grad(w), NB_OK);
    assert_int_equal(nb_last_error()->code, NB_OK);

    nb_release(y);
    nb_release(w);
    nb_release(t);
}

/* ---- .grad semantics ------------------------------------------------------------------- */

/* A second backward through a freed graph, given the root itself as its grad, leaks nothing. */
static void test_backward_again_root_as_grad(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_scalar(1.5f), true);
    nb_tensor *a = nb_exp(x), *b = nb_exp(a), *c = nb_add(b, a);
    assert_int_equal(nb_backward(c, NULL, false), NB_OK);
    assert_int_equal(nb_backward(c, c, true), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_backward: Trying to backward through the graph a second time");
    nb_error_clear();
    nb_release(c);
    nb_release(b);
    nb_release(a);
    nb_release(x);
}

/* Assigning .grad: shapes, graphs, and the assignments that would make a reference cycle. */
static void test_set_grad_errors(void **state)
{
    (void)state;
    nb_tensor *a = vec(W3, 3, true), *b = vec(W3, 3, false), *c = vec(W3, 3, false);
    nb_tensor *y = nb_mul_scalar(a, 2.0f), *short_grad = vec(W3, 2, false);
    assert_int_equal(nb_tensor_set_grad(a, short_grad), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_tensor_set_grad: assigned grad has data of a different size");
    nb_error_clear();
    assert_int_equal(nb_tensor_set_grad(b, y), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_tensor_set_grad: a gradient must not be part of a graph");
    nb_error_clear();

    assert_int_equal(nb_tensor_set_grad(a, a), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_tensor_set_grad: can't assign Variable as its own grad");
    nb_error_clear();
    assert_null(nb_tensor_grad(a));

    /* a.grad = b and b.grad = c are fine; c.grad = a would close a -> b -> c -> a */
    assert_int_equal(nb_tensor_set_grad(a, b), NB_OK);
    assert_int_equal(nb_tensor_set_grad(b, c), NB_OK);
    assert_int_equal(nb_tensor_set_grad(c, a), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_tensor_set_grad: the assigned grad leads back to the tensor");
    nb_error_clear();
    assert_int_equal(nb_tensor_set_grad(b, a), NB_EINVAL);
    nb_error_clear();
    assert_null(nb_tensor_grad(c));
    assert_ptr_equal(nb_tensor_grad(b), c);
    /* a view shares storage, not the tensor: no cycle */
    nb_tensor *v = nb_reshape(c, NB_SHAPE(3));
    assert_int_equal(nb_tensor_set_grad(c, v), NB_OK);

    /* the teardown's leak check frees everything: no cycle was made */
    nb_release(v);
    nb_release(short_grad);
    nb_release(y);
    nb_release(c);
    nb_release(b);
    nb_release(a);
}

static void test_grad_only_leaves(void **state)
{
    (void)state;
    nbt_capture_warnings();
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *y = nb_mul(w, x);
    nb_tensor *loss = sum_all(y);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);

    assert_values(nb_tensor_grad(w), 4, 5, 6);
    assert_null(nb_tensor_grad(x)); /* a leaf that does not require grad: no grad, no warning */
    assert_int_equal(nbt_warning_count(), 0);

    /* a non-leaf: NULL and one warning */
    assert_null(nb_tensor_grad(y));
    assert_int_equal(nbt_warning_count(), 1);
    assert_non_null(strstr(nbt_last_warning(), "not a leaf"));
    assert_non_null(strstr(nbt_last_warning(), "retain_grad"));
    assert_non_null(strstr(nbt_last_warning(), "won't be populated"));
    assert_null(strchr(nbt_last_warning(), '\n'));
    /* once per tensor */
    assert_null(nb_tensor_grad(y));
    assert_null(nb_tensor_grad(y));
    assert_int_equal(nbt_warning_count(), 1);
    /* another non-leaf warns on its own */
    assert_null(nb_tensor_grad(loss));
    assert_int_equal(nbt_warning_count(), 2);
    assert_null(nb_tensor_grad(loss));
    assert_int_equal(nbt_warning_count(), 2);
    /* reading .grad is not an error */
    assert_int_equal(nb_last_error()->code, NB_OK);
    assert_null(nb_tensor_grad(NULL));
    assert_int_equal(nbt_warning_count(), 2);

    nb_release(loss);
    nb_release(y);
    nb_release(x);
    nb_release(w);
}

static void test_retain_grad(void **state)
{
    (void)state;
    nbt_capture_warnings();
    nb_tensor *w = vec(W3, 3, true);
    nb_tensor *h = nb_mul_scalar(w, 3.0f); /* h = [3, 6, 9] */
    assert_false(nb_tensor_retains_grad(h));
    assert_int_equal(nb_retain_grad(h), NB_OK);
    assert_true(nb_tensor_retains_grad(h));
    assert_int_equal(nb_retain_grad(h), NB_OK); /* twice is fine */
    nb_tensor *hh = nb_mul(h, h);
    nb_tensor *loss = sum_all(hh);
    assert_int_equal(nb_retain_grad(loss), NB_OK);
    assert_null(nb_tensor_grad(h)); /* before backward: NULL, but no warning */
    assert_int_equal(nb_backward(loss, NULL, true), NB_OK);
    assert_values(nb_tensor_grad(h), 6, 12, 18);  /* 2h */
    assert_values(nb_tensor_grad(w), 18, 36, 54); /* 6h */
    assert_values(nb_tensor_grad(loss), 1);       /* the root retains its seed */
    assert_int_equal(nbt_warning_count(), 0);
    assert_true(nb_tensor_is_leaf(w));
    assert_false(nb_tensor_is_leaf(h));

    /* a retained grad accumulates like a leaf's */
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(h), 12, 24, 36);
    assert_values(nb_tensor_grad(w), 36, 72, 108);
    assert_values(nb_tensor_grad(loss), 2);
    assert_int_equal(nb_zero_grad(h, true), NB_OK);
    assert_null(nb_tensor_grad(h));
    assert_int_equal(nbt_warning_count(), 0);

    /* the other non-leaf still warns */
    assert_null(nb_tensor_grad(hh));
    assert_int_equal(nbt_warning_count(), 1);

    /* the gradient of a retained tensor outlives a graph freed before it */
    nb_tensor *kept = nb_retain(nb_tensor_grad(loss));
    nb_release(loss);
    assert_values(kept, 2);
    nb_release(kept);
    nb_release(hh);
    nb_release(h);
    nb_release(w);
}

static void test_accumulate_and_zero_grad(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    for (int i = 0; i < 3; i++) { /* three graphs, one backward each */
        nb_tensor *loss = sum_release(nb_mul(w, x));
        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        nb_release(loss);
    }
    assert_values(nb_tensor_grad(w), 12, 15, 18);

    /* set_to_none=false: zeros, in the same tensor */
    nb_tensor *g = nb_tensor_grad(w);
    assert_int_equal(nb_zero_grad(w, false), NB_OK);
    assert_ptr_equal(nb_tensor_grad(w), g);
    assert_values(g, 0, 0, 0);
    nb_tensor *loss = sum_release(nb_mul(w, x));
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    nb_release(loss);
    assert_ptr_equal(nb_tensor_grad(w), g); /* accumulated into the zeroed tensor */
    assert_values(g, 4, 5, 6);

    /* set_to_none=true: NULL, and the next backward starts afresh */
    assert_int_equal(nb_zero_grad(w, true), NB_OK);
    assert_null(nb_tensor_grad(w));
    assert_int_equal(nb_zero_grad(w, true), NB_OK); /* no grad: nothing to do */
    assert_int_equal(nb_zero_grad(w, false), NB_OK);
    assert_null(nb_tensor_grad(w));
    loss = sum_release(nb_mul_scalar(w, 2.0f));
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    nb_release(loss);
    assert_values(nb_tensor_grad(w), 2, 2, 2);

    /* a grad the caller holds is not changed behind its back by set_to_none */
    nb_tensor *held = nb_retain(nb_tensor_grad(w));
    assert_int_equal(nb_zero_grad(w, true), NB_OK);
    assert_values(held, 2, 2, 2);
    nb_release(held);

    assert_int_equal(nb_zero_grad(NULL, true), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_zero_grad");
    nb_error_clear();

    nb_release(x);
    nb_release(w);
}

static void test_leaf_detach(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *y = nb_mul(w, x);
    assert_true(nb_tensor_is_leaf(w));
    assert_true(nb_tensor_is_leaf(x));
    assert_false(nb_tensor_is_leaf(y));
    assert_true(nb_tensor_is_leaf(NULL));
    assert_null(nb_tensor_grad_fn(w));
    assert_null(nb_tensor_grad_fn(x));
    assert_non_null(nb_tensor_grad_fn(y));

    nb_tensor *d = nb_detach(y);
    assert_non_null(d);
    assert_ptr_not_equal(d, y);
    assert_true(nb_tensor_is_leaf(d));
    assert_false(nb_tensor_requires_grad(d));
    assert_null(nb_tensor_grad_fn(d));
    assert_true(nb_tensor_shares_storage(d, y));
    assert_ptr_equal(nb_tensor_data(d), nb_tensor_data(y));
    assert_values(d, 4, 10, 18);
    /* a change through the alias is seen by y, and counted on the shared version */
    nb_tensor_data(d)[0] = 7.0f;
    nb_tensor_bump_version(d);
    assert_values(y, 7, 10, 18);
    assert_int_equal(nb_tensor_version(y), 1);
    /* ops on the detached tensor record nothing */
    nb_tensor *e = nb_mul_scalar(d, 2.0f);
    assert_false(nb_tensor_requires_grad(e));
    assert_null(nb_tensor_grad_fn(e));
    /* detach of a leaf that requires grad */
    nb_tensor *dw = nb_detach(w);
    assert_false(nb_tensor_requires_grad(dw));
    assert_true(nb_tensor_shares_storage(dw, w));
    assert_null(nb_detach(NULL));
    assert_error(NB_EINVAL, "nb_detach");
    nb_error_clear();
    /* the detached tensor outlives the original */
    nb_release(y);
    assert_values(d, 7, 10, 18);

    nb_release(dw);
    nb_release(e);
    nb_release(d);
    nb_release(x);
    nb_release(w);
}

static void test_leaf_root(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_scalar(3.0f), true);
    assert_int_equal(nb_backward(w, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w), 1);
    assert_int_equal(nb_tensor_ndim(nb_tensor_grad(w)), 0);
    assert_int_equal(nb_backward(w, NULL, false), NB_OK); /* nothing saved: may repeat */
    assert_values(nb_tensor_grad(w), 2);

    /* a one-element 1-D leaf, and a given gradient */
    const float one[1] = {5};
    nb_tensor *v = vec(one, 1, true);
    assert_int_equal(nb_backward(v, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(v), 1);
    assert_int_equal(nb_tensor_ndim(nb_tensor_grad(v)), 1);
    nb_tensor *g = nb_full(NB_SHAPE(1), 2.5f);
    assert_int_equal(nb_backward(v, g, false), NB_OK);
    assert_values(nb_tensor_grad(v), 3.5f);
    assert_values(g, 2.5f);
    assert_ptr_not_equal(nb_tensor_grad(v), g);

    /* a leaf root without requires_grad */
    nb_tensor *c = nb_scalar(1.0f);
    assert_int_equal(nb_backward(c, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "element 0 of tensors does not require grad");
    nb_error_clear();

    nb_release(c);
    nb_release(g);
    nb_release(v);
    nb_release(w);
}

static void test_grads_not_aliased(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *c = vec(X3, 3, false);
    nb_tensor *y = nb_add(w, c);
    assert_int_equal(nb_retain_grad(y), NB_OK);
    const float gv[3] = {1, 2, 3};
    nb_tensor *g = vec(gv, 3, false);
    assert_int_equal(nb_backward(y, g, true), NB_OK);
    assert_int_equal(nb_backward(y, g, false), NB_OK);
    assert_values(nb_tensor_grad(w), 2, 4, 6);
    assert_values(nb_tensor_grad(y), 2, 4, 6);
    assert_values(g, 1, 2, 3); /* accumulation never writes into the caller's gradient */
    nb_tensor_data(g)[0] = 99.0f;
    nb_tensor_bump_version(g);
    assert_values(nb_tensor_grad(w), 2, 4, 6);
    assert_values(nb_tensor_grad(y), 2, 4, 6);
    assert_false(nb_tensor_shares_storage(nb_tensor_grad(w), nb_tensor_grad(y)));

    /* nb_grad of a tensor with respect to itself: a copy of the gradient given */
    nb_tensor *r = NULL;
    const nb_tensor *gs[1] = {g};
    assert_int_equal(nb_grad(&y, 1, &y, 1, gs, NULL, &r), NB_OK);
    assert_values(r, 99, 2, 3);
    assert_false(nb_tensor_shares_storage(r, g));
    nb_release(r);

    nb_release(g);
    nb_release(y);
    nb_release(c);
    nb_release(w);
}

/* ---- no_grad --------------------------------------------------------------------------- */

static void test_no_grad(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *a = NULL, *b = NULL, *c = NULL, *s = NULL;
    assert_true(nb_is_grad_enabled());
    NB_NO_GRAD
    {
        assert_false(nb_is_grad_enabled());
        a = nb_mul(w, x);
        b = nb_add(w, w);
        c = nb_sigmoid(w);
        s = sum_release(nb_mul_scalar(w, 2.0f));
    }
    assert_true(nb_is_grad_enabled());
    nb_tensor *outs[] = {a, b, c, s};
    for (int i = 0; i < 4; i++) {
        assert_non_null(outs[i]);
        assert_false(nb_tensor_requires_grad(outs[i]));
        assert_null(nb_tensor_grad_fn(outs[i]));
        assert_true(nb_tensor_is_leaf(outs[i]));
    }
    assert_values(a, 4, 10, 18);
    assert_values(s, 12);
    assert_int_equal(nb_backward(s, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "element 0 of tensors does not require grad");
    nb_error_clear();
    /* the same op outside the block records */
    nb_tensor *r = nb_mul(w, x);
    assert_true(nb_tensor_requires_grad(r));
    assert_non_null(nb_tensor_grad_fn(r));

    /* nested blocks restore the mode each one found */
    NB_NO_GRAD
    {
        NB_NO_GRAD assert_false(nb_is_grad_enabled());
        assert_false(nb_is_grad_enabled());
        NB_NO_GRAD
        {
            NB_NO_GRAD
            {
                assert_false(nb_is_grad_enabled());
            }
        }
        assert_false(nb_is_grad_enabled());
    }
    assert_true(nb_is_grad_enabled());

    /* a block entered with grad already off leaves it off */
    assert_true(nb_set_grad_enabled(false));
    assert_false(nb_is_grad_enabled());
    NB_NO_GRAD assert_false(nb_is_grad_enabled());
    assert_false(nb_is_grad_enabled());
    assert_false(nb_set_grad_enabled(false)); /* returns the previous mode */
    assert_false(nb_set_grad_enabled(true));
    assert_true(nb_set_grad_enabled(true));
    assert_true(nb_is_grad_enabled());

    /* grad mode turned back on inside a no_grad block */
    NB_NO_GRAD
    {
        assert_false(nb_set_grad_enabled(true));
        nb_tensor *t = nb_mul_scalar(w, 1.0f);
        assert_true(nb_tensor_requires_grad(t));
        nb_release(t);
    }
    assert_true(nb_is_grad_enabled());

    nb_release(r);
    for (int i = 0; i < 4; i++) nb_release(outs[i]);
    nb_release(x);
    nb_release(w);
}

/* ---- graph structure ------------------------------------------------------------------- */

static void test_graph_structure(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *a = nb_mul(w, x);           /* MulBackward0(w, x) */
    nb_tensor *b = nb_mul_scalar(w, 2.0f); /* MulBackward0(w) */
    nb_tensor *c = nb_add(a, b);           /* AddBackward0(a, b) */
    nb_tensor *loss = sum_all(c);          /* SumBackward0 */
    assert_non_null(loss);

    nb_node *na = nb_tensor_grad_fn(a), *nb = nb_tensor_grad_fn(b), *nc = nb_tensor_grad_fn(c);
    assert_string_equal(nb_node_name(na), "MulBackward0");
    assert_string_equal(nb_node_name(nb), "MulBackward0");
    assert_string_equal(nb_node_name(nc), "AddBackward0");
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(loss)), "SumBackward0");
    assert_null(nb_node_name(NULL));

    /* mul: edge 0 to w's AccumulateGrad, edge 1 empty (x needs no grad) */
    assert_int_equal(nb_node_num_next(na), 2);
    int nr = -1;
    nb_node *acc = nb_node_next(na, 0, &nr);
    assert_non_null(acc);
    assert_int_equal(nr, 0);
    assert_string_equal(nb_node_name(acc), "AccumulateGrad");
    assert_ptr_equal(nb_node_variable(acc), w);
    assert_int_equal(nb_node_num_next(acc), 0);
    assert_null(nb_node_next(acc, 0, NULL));
    assert_null(nb_node_next(na, 1, &nr));
    assert_null(nb_node_next(na, 1, NULL));
    assert_null(nb_node_next(na, 2, NULL)); /* out of range */
    assert_null(nb_node_next(na, -1, NULL));
    assert_null(nb_node_next(NULL, 0, NULL));
    assert_int_equal(nb_node_num_next(NULL), 0);
    assert_null(nb_node_variable(na));
    assert_null(nb_node_variable(NULL));

    /* one shared AccumulateGrad per leaf; the number's edge is empty */
    assert_int_equal(nb_node_num_next(nb), 2);
    assert_null(nb_node_next(nb, 1, NULL));
    assert_ptr_equal(nb_node_next(nb, 0, NULL), acc);

    /* add: edges to the producers of its inputs */
    assert_int_equal(nb_node_num_next(nc), 2);
    nr = -1;
    assert_ptr_equal(nb_node_next(nc, 0, &nr), na);
    assert_int_equal(nr, 0);
    assert_ptr_equal(nb_node_next(nc, 1, &nr), nb);
    assert_int_equal(nr, 0);
    assert_ptr_equal(nb_node_next(nb_tensor_grad_fn(loss), 0, NULL), nc);

    /* w + w: both edges to the one accumulator */
    nb_tensor *ww = nb_add(w, w);
    nb_node *nww = nb_tensor_grad_fn(ww);
    assert_ptr_equal(nb_node_next(nww, 0, NULL), acc);
    assert_ptr_equal(nb_node_next(nww, 1, NULL), acc);

    /* the repr */
    char buf[128], want[128];
    snprintf(want, sizeof want, "<AddBackward0 object at %p>", (void *)nc);
    int64_t len = nb_node_format(nc, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(len, (int64_t)strlen(want));
    assert_int_equal(strncmp(buf, "<AddBackward0 object at 0x", 26), 0);
    assert_int_equal(nb_node_format(nc, NULL, 0), len); /* measuring */
    char small[8];
    assert_int_equal(nb_node_format(nc, small, sizeof small), len);
    assert_string_equal(small, "<AddBac");
    snprintf(want, sizeof want, "<AccumulateGrad object at %p>", (void *)acc);
    nb_node_format(acc, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_true(nb_node_format(NULL, buf, sizeof buf) < 0);
    nb_error_clear();

    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(nb_node_print(nc, f), NB_OK);
    rewind(f);
    char line[128] = "";
    assert_non_null(fgets(line, sizeof line, f));
    snprintf(want, sizeof want, "<AddBackward0 object at %p>\n", (void *)nc);
    assert_string_equal(line, want);
    fclose(f);
    assert_int_equal(nb_node_print(NULL, stdout), NB_EINVAL);
    nb_error_clear();

    /* the seed graph's names */
    nb_manual_seed(0);
    nb_tensor *xs = nb_ones(NB_SHAPE(5)), *ys = nb_ones(NB_SHAPE(3));
    nb_tensor *ws = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *bs = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_tensor *xw = nb_matmul(xs, ws);
    nb_tensor *z = nb_add(xw, bs);
    nb_release(xw); /* its node lives on in z's graph */
    nb_tensor *l = nb_binary_cross_entropy_with_logits(z, ys, NULL, NULL, NB_MEAN);
    assert_non_null(l);
    nb_node *nl = nb_tensor_grad_fn(l), *nz = nb_tensor_grad_fn(z);
    assert_string_equal(nb_node_name(nl), "BCEWithLogitsBackward0");
    assert_ptr_equal(nb_node_next(nl, 0, NULL), nz);
    assert_string_equal(nb_node_name(nz), "AddBackward0");
    nb_node *nm = nb_node_next(nz, 0, NULL);
    assert_string_equal(nb_node_name(nm), "MatmulBackward0");
    assert_null(nb_node_next(nm, 0, NULL)); /* xs needs no grad */
    assert_ptr_equal(nb_node_variable(nb_node_next(nm, 1, &nr)), ws);
    assert_ptr_equal(nb_node_variable(nb_node_next(nz, 1, &nr)), bs);
    /* the matmul lives on through z's graph after its tensor is gone */
    nb_release(z); /* the caller's reference; l's node still holds the graph */
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_non_null(nb_tensor_grad(ws));
    assert_non_null(nb_tensor_grad(bs));

    nb_release(l);
    nb_release(bs);
    nb_release(ws);
    nb_release(ys);
    nb_release(xs);
    nb_release(ww);
    nb_release(loss);
    nb_release(c);
    nb_release(b);
    nb_release(a);
    nb_release(x);
    nb_release(w);
}

static void test_accumulator_lifetime(void **state)
{
    (void)state;
    nb_tensor *w = vec(W3, 3, true);
    /* the accumulator keeps the leaf alive as long as a graph uses it */
    nb_tensor *y = nb_mul_scalar(w, 2.0f);
    nb_release(w);
    nb_node *acc = nb_node_next(nb_tensor_grad_fn(y), 0, NULL);
    nb_tensor *leaf = nb_node_variable(acc);
    assert_non_null(leaf);
    assert_values(leaf, 1, 2, 3);
    nb_tensor *loss = sum_all(y);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(leaf), 2, 2, 2);
    nb_tensor *keep = nb_retain(leaf);
    nb_release(loss);
    nb_release(y); /* frees the graph and the accumulator */
    assert_values(nb_tensor_grad(keep), 2, 2, 2);
    /* a new graph gets a new accumulator for the same leaf */
    nb_tensor *y2 = nb_add_scalar(keep, 1.0f);
    assert_ptr_equal(nb_node_variable(nb_node_next(nb_tensor_grad_fn(y2), 0, NULL)), keep);
    nb_release(y2);
    nb_release(keep);
}

/* ---- the engine ------------------------------------------------------------------------ */

static void test_diamond(void **state)
{
    (void)state;
    const float xv[3] = {1, 2, 3};
    nb_tensor *x = vec(xv, 3, true);
    nb_tensor *xx = nb_mul(x, x);
    nb_tensor *y = nb_add(xx, x); /* y = x² + x */
    nb_release(xx);
    nb_tensor *loss = sum_all(y);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(x), 3, 5, 7); /* 2x + 1 */
    nb_release(loss);
    nb_release(y);
    nb_zero_grad(x, true);

    /* a wider diamond: a = 2x, b = 3x, c = a·b + a, loss = Σ c; dc/dx = 12x + 2 */
    nb_tensor *a = nb_mul_scalar(x, 2.0f), *b = nb_mul_scalar(x, 3.0f);
    nb_tensor *ab = nb_mul(a, b);
    nb_tensor *c = nb_add(ab, a);
    nb_release(ab);
    loss = sum_all(c);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(x), 14, 26, 38);
    nb_release(loss);
    nb_release(c);
    nb_release(b);
    nb_release(a);
    nb_zero_grad(x, true);

    /* a node reached by many paths: Σ_k (x·k) over 50 branches, gradient Σ k */
    nb_tensor *acc = nb_mul_scalar(x, 0.0f);
    for (int k = 1; k <= 50; k++) {
        nb_tensor *xk = nb_mul_scalar(x, (float)k);
        nb_tensor *t = nb_add(acc, xk);
        nb_release(xk);
        nb_release(acc);
        acc = t;
    }
    loss = sum_all(acc);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(x), 1275, 1275, 1275);
    nb_release(loss);
    nb_release(acc);
    nb_release(x);
}

static void test_grad_fn_api(void **state)
{
    (void)state;
    nbt_capture_warnings();
    nb_tensor *w = vec(W3, 3, true), *x = vec(X3, 3, false);
    nb_tensor *h = nb_mul(w, x); /* non-leaf input */
    nb_tensor *s = nb_sigmoid(h);
    nb_tensor *loss = sum_all(s);
    assert_non_null(loss);
    float ds[3];
    for (int i = 0; i < 3; i++) {
        float sg = 1.0f / (1.0f + expf(-W3[i] * X3[i]));
        ds[i] = sg * (1.0f - sg);
    }

    nb_tensor *inputs[2] = {w, h}, *res[2] = {NULL, NULL};
    assert_int_equal(nb_grad(&loss, 1, inputs, 2, NULL, &(nb_grad_options){true, false}, res),
                     NB_OK);
    check_values(res[1], ds, 3, __FILE__, __LINE__);
    float dw[3] = {ds[0] * 4, ds[1] * 5, ds[2] * 6};
    check_values(res[0], dw, 3, __FILE__, __LINE__);
    assert_true(nb_tensor_is_leaf(res[0]));
    assert_false(nb_tensor_requires_grad(res[0]));
    /* .grad untouched */
    assert_null(nb_tensor_grad(w));
    assert_int_equal(nbt_warning_count(), 0);
    nb_release(res[0]);
    nb_release(res[1]);

    /* a leaf only, repeated: same result each time (nothing accumulates) */
    for (int rep = 0; rep < 2; rep++) {
        nb_tensor *r = NULL;
        assert_int_equal(nb_grad(&loss, 1, &w, 1, NULL, &(nb_grad_options){true, false}, &r),
                         NB_OK);
        check_values(r, dw, 3, __FILE__, __LINE__);
        nb_release(r);
    }
    assert_null(nb_tensor_grad(w));

    /* unused inputs: u was never used; v is used only by another graph */
    nb_tensor *u = vec(W3, 3, true), *v = vec(X3, 3, true);
    nb_tensor *other = nb_mul_scalar(v, 2.0f);
    nb_tensor *in3[3] = {u, w, v}, *res3[3] = {NULL, NULL, NULL};
    assert_int_equal(nb_grad(&loss, 1, in3, 3, NULL, &(nb_grad_options){true, true}, res3), NB_OK);
    assert_null(res3[0]);
    check_values(res3[1], dw, 3, __FILE__, __LINE__);
    assert_null(res3[2]);
    nb_release(res3[1]);
    res3[1] = NULL;

    nb_error_clear();
    assert_int_equal(nb_grad(&loss, 1, in3, 3, NULL, &(nb_grad_options){true, false}, res3),
                     NB_ESTATE);
    assert_error(NB_ESTATE, "nb_grad: ");
    assert_error(NB_ESTATE, "appears to not have been used");
    assert_error(NB_ESTATE, "allow_unused");
    for (int i = 0; i < 3; i++) assert_null(res3[i]);
    nb_error_clear();

    /* an input that does not require grad */
    nb_tensor *rx = NULL;
    assert_int_equal(nb_grad(&loss, 1, &x, 1, NULL, &(nb_grad_options){true, false}, &rx),
                     NB_ESTATE);
    assert_error(NB_ESTATE, "does not require grad");
    assert_null(rx);
    nb_error_clear();

    /* several outputs, with grad_outputs: d/dw (Σ 2w + 3w·g) = 2 + 3g */
    nb_tensor *o1 = sum_release(nb_mul_scalar(w, 2.0f)), *o2 = nb_mul_scalar(w, 3.0f);
    const float gv[3] = {1, 10, 100};
    nb_tensor *g2 = vec(gv, 3, false);
    nb_tensor *outs[2] = {o1, o2}, *rw = NULL;
    const nb_tensor *gouts[2] = {NULL, g2};
    assert_int_equal(nb_grad(outs, 2, &w, 1, gouts, NULL, &rw), NB_OK);
    assert_values(rw, 5, 32, 302);
    nb_release(rw);
    /* those graphs are freed now */
    rw = NULL;
    /* neither MulBackward0 (of a number) nor SumBackward0 saves a tensor: a second run works */
    assert_int_equal(nb_grad(outs, 2, &w, 1, gouts, NULL, &rw), NB_OK);
    assert_values(rw, 5, 32, 302);
    nb_release(rw);
    /* without grad_outputs the non-scalar output is an error */
    rw = NULL;
    nb_error_clear();
    assert_int_equal(nb_grad(outs, 2, &w, 1, NULL, NULL, &rw), NB_ESTATE);
    assert_error(NB_ESTATE, "grad can be implicitly created only for scalar outputs");
    assert_null(rw);
    nb_error_clear();
    assert_null(nb_tensor_grad(w));

    /* nb_grad without retain_graph frees the graph for a later backward */
    nb_tensor *r = NULL;
    assert_int_equal(nb_grad(&loss, 1, &w, 1, NULL, NULL, &r), NB_OK);
    nb_release(r);
    assert_int_equal(nb_backward(loss, NULL, false), NB_ESTATE);
    assert_error(NB_ESTATE, "backward through the graph a second time");
    nb_error_clear();

    /* argument errors */
    r = NULL;
    assert_int_equal(nb_grad(&loss, 1, NULL, 0, NULL, NULL, &r), NB_EINVAL);
    nb_error_clear();
    assert_int_equal(nb_grad(NULL, 0, &w, 1, NULL, NULL, &r), NB_EINVAL);
    nb_error_clear();
    assert_null(r);

    nb_release(g2);
    nb_release(o2);
    nb_release(o1);
    nb_release(other);
    nb_release(v);
    nb_release(u);
    nb_release(loss);
    nb_release(s);
    nb_release(h);
    nb_release(x);
    nb_release(w);
}

/* ---- iterative traversal: 100 000-node chains ------------------------------------------ */

/* y = w, then alternately y + 1 and y · -1 (MulBackward0) n times; dy/dw = ±1. */
static nb_tensor *affine_chain(nb_tensor *w, int n, bool release_as_you_go, float *sign)
{
    nb_tensor *y = w;
    *sign = 1.0f;
    for (int i = 0; i < n; i++) {
        nb_tensor *next = (i % 4 == 3) ? nb_mul_scalar(y, -1.0f) : nb_add_scalar(y, 1.0f);
        if (i % 4 == 3) *sign = -*sign;
        if (release_as_you_go && y != w) nb_release(y);
        y = next;
        if (!y) break;
    }
    return y;
}

static void test_long_chain_scope(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_scalar(0.5f), true);
    nb_scope *sc = nb_scope_begin();
    assert_non_null(sc);
    float sign;
    nb_tensor *y = affine_chain(w, LONG_CHAIN, false, &sign);
    assert_non_null(y);
    assert_false(nb_tensor_is_leaf(y));
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w), sign);
    assert_int_equal(nb_scope_end(sc), NB_OK); /* releases 100 000 tensors and the graph */
    assert_values(nb_tensor_grad(w), sign);
    assert_true(nb_tensor_is_leaf(w));
    nb_release(w);
}

static void test_long_chain_manual(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_scalar(0.5f), true);
    float sign;
    /* only the last tensor is held: its release tears the whole chain down */
    nb_tensor *y = affine_chain(w, LONG_CHAIN, true, &sign);
    assert_non_null(y);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_values(nb_tensor_grad(w), sign);
    nb_release(y);
    assert_values(nb_tensor_grad(w), sign);

    /* a chain through saved tensors: y_{k+1} = y_k · c saves y_k (and c);
     * with c = 1: d/dw = 1, d/dc = Σ_k y_k = n·w */
    nb_zero_grad(w, true);
    nb_tensor *c = nb_requires_grad_(nb_scalar(1.0f), true);
    y = nb_retain(w);
    for (int i = 0; i < LONG_CHAIN && y; i++) {
        nb_tensor *next = nb_mul(y, c);
        nb_release(y);
        y = next;
    }
    assert_non_null(y);
    assert_values(y, 0.5f);
    assert_int_equal(nb_backward(y, NULL, true), NB_OK);
    assert_values(nb_tensor_grad(w), 1);
    assert_values(nb_tensor_grad(c), 0.5f * LONG_CHAIN);
    nb_release(y); /* tears down nodes and the tensors they saved, iteratively */
    assert_values(nb_tensor_grad(c), 0.5f * LONG_CHAIN);

    nb_release(c);
    nb_release(w);
}

static void test_long_chain_no_backward(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_scalar(0.5f), true);
    float sign;
    /* released by hand, never backwarded */
    nb_tensor *y = affine_chain(w, LONG_CHAIN, true, &sign);
    assert_non_null(y);
    nb_release(y);

    /* released by a scope, never backwarded */
    nb_scope *sc = nb_scope_begin();
    y = affine_chain(w, LONG_CHAIN, false, &sign);
    assert_non_null(y);
    assert_int_equal(nb_scope_end(sc), NB_OK);

    /* a chain of nodes that save tensors (sigmoid saves its output) */
    y = nb_retain(w);
    for (int i = 0; i < LONG_CHAIN && y; i++) {
        nb_tensor *next = nb_sigmoid(y);
        nb_release(y);
        y = next;
    }
    assert_non_null(y);
    nb_release(y);

    /* nb_mul chains save their (non-leaf) input: teardown follows saved tensors */
    nb_tensor *c = nb_requires_grad_(nb_scalar(1.0f), true);
    y = nb_retain(w);
    for (int i = 0; i < LONG_CHAIN && y; i++) {
        nb_tensor *next = nb_mul(c, y);
        nb_release(y);
        y = next;
    }
    assert_non_null(y);
    nb_release(y);
    assert_null(nb_tensor_grad(w));
    assert_null(nb_tensor_grad(c));
    nb_release(c);
    nb_release(w);
}

static void test_sigmoid_chain(void **state)
{
    (void)state;
    /* short: values against the chain rule computed here, in double */
    nb_tensor *w = nb_requires_grad_(nb_scalar(0.3f), true);
    nb_tensor *y = nb_retain(w);
    double v = 0.3, d = 1.0;
    for (int i = 0; i < 20; i++) {
        nb_tensor *next = nb_sigmoid(y);
        nb_release(y);
        y = next;
        v = 1.0 / (1.0 + exp(-v));
        d *= v * (1.0 - v);
    }
    assert_values(y, (float)v);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    const float want = (float)d;
    nbt_assert_close(nb_tensor_data_const(nb_tensor_grad(w)), &want, 1, 1e-20, 1e-4, __FILE__,
                     __LINE__);
    nb_release(y);
    nb_zero_grad(w, true);

    /* long, in a scope: the product of 100 000 factors below 1/4 underflows to 0 */
    nb_scope *sc = nb_scope_begin();
    y = w;
    for (int i = 0; i < LONG_CHAIN && y; i++) y = nb_sigmoid(y);
    assert_non_null(y);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    float g = item(nb_tensor_grad(w));
    assert_true(isfinite(g));
    assert_true(g >= 0.0f && g < 1e-30f);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    assert_non_null(nb_tensor_grad(w));
    nb_release(w);
}

/* ---- scopes with autograd -------------------------------------------------------------- */

/* The seed graph's expected loss and gradients from w [5, 3] and b [3], x = y = 1:
 * z_j = Σ_i w_ij + b_j, loss = mean_j softplus(-z_j), dz_j = (σ(z_j) - 1) / 3. */
static double seed_expected(const nb_tensor *w, const nb_tensor *b, float gw[15], float gb[3])
{
    const float *wd = nb_tensor_data_const(w), *bd = nb_tensor_data_const(b);
    double loss = 0;
    for (int j = 0; j < 3; j++) {
        double z = (double)bd[j];
        for (int i = 0; i < 5; i++) z += (double)wd[i * 3 + j];
        loss += log1p(exp(-fabs(z))) + fmax(-z, 0.0);
        double gz = (1.0 / (1.0 + exp(-z)) - 1.0) / 3.0;
        gb[j] = (float)gz;
        for (int i = 0; i < 5; i++) gw[i * 3 + j] = (float)gz;
    }
    return loss / 3.0;
}

static void test_training_loop_scopes(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    assert_non_null(w);
    assert_non_null(b);
    float gw[15], gb[3];
    double want_loss = seed_expected(w, b, gw, gb);

    /* steps without zeroing: grads accumulate and survive each scope's end */
    for (int it = 1; it <= 4; it++) {
        nb_scope *step = nb_scope_begin();
        assert_non_null(step);
        nb_tensor *z = nb_add(nb_matmul(x, w), b);
        nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
        assert_non_null(loss);
        assert_float_equal(item(loss), (float)want_loss, 1e-5);
        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        assert_int_equal(nb_scope_end(step), NB_OK);
        float kw[15], kb[3];
        for (int i = 0; i < 15; i++) kw[i] = gw[i] * (float)it;
        for (int i = 0; i < 3; i++) kb[i] = gb[i] * (float)it;
        check_values(nb_tensor_grad(w), kw, 15, __FILE__, __LINE__);
        check_values(nb_tensor_grad(b), kb, 3, __FILE__, __LINE__);
        assert_true(nb_tensor_is_leaf(w));
    }

    /* SGD steps: update under no_grad inside the scope, zero_grad, the loss goes down */
    float first = 0, last = 0;
    for (int it = 0; it < 10; it++) {
        nb_zero_grad(w, true);
        nb_zero_grad(b, true);
        nb_scope *step = nb_scope_begin();
        nb_tensor *loss =
            nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
        assert_non_null(loss);
        last = item(loss);
        if (it == 0) first = last;
        assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
        NB_NO_GRAD
        {
            assert_int_equal(nb_sub_(w, nb_mul_scalar(nb_tensor_grad(w), 0.5f)), NB_OK);
            assert_int_equal(nb_sub_(b, nb_mul_scalar(nb_tensor_grad(b), 0.5f)), NB_OK);
        }
        assert_int_equal(nb_scope_end(step), NB_OK);
        assert_non_null(nb_tensor_grad(w));
    }
    assert_true(last < first);
    assert_int_equal(nb_last_error()->code, NB_OK);

    /* nb_scope_keep: the loss (and its graph) survive the step */
    nb_scope *step = nb_scope_begin();
    nb_tensor *loss =
        nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
    assert_ptr_equal(nb_scope_keep(loss), loss);
    float lv = item(loss);
    assert_int_equal(nb_scope_end(step), NB_OK);
    assert_float_equal(item(loss), lv, 0);
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(loss)), "BCEWithLogitsBackward0");
    nb_zero_grad(w, true);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK); /* the graph is intact */
    assert_non_null(nb_tensor_grad(w));
    nb_release(loss);

    /* nested: keep moves the loss to the outer scope, which releases it */
    nb_scope *outer = nb_scope_begin();
    nb_scope *inner = nb_scope_begin();
    loss = nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
    assert_ptr_equal(nb_scope_keep(loss), loss);
    assert_int_equal(nb_scope_end(inner), NB_OK);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_int_equal(nb_scope_end(outer), NB_OK);

    /* nb_grad results belong to the open scope */
    step = nb_scope_begin();
    loss = nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
    nb_tensor *in[2] = {w, b}, *res[2];
    assert_int_equal(nb_grad(&loss, 1, in, 2, NULL, NULL, res), NB_OK);
    assert_non_null(res[0]);
    assert_non_null(res[1]);
    assert_int_equal(nb_scope_end(step), NB_OK); /* frees res[] too (valgrind checks) */

    nb_release(b);
    nb_release(w);
    nb_release(y);
    nb_release(x);
}

/* ---- allocation failures --------------------------------------------------------------- */

/* The seed step: x@w + b, bce, backward. Everything made is released. */
static nb_status sweep_seed(void)
{
    nb_manual_seed(0);
    nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_tensor *xw = nb_matmul(x, w);
    nb_tensor *z = nb_add(xw, b);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
    nb_status rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
    if (rc == NB_OK) {
        float gw[15], gb[3];
        seed_expected(w, b, gw, gb);
        check_values(nb_tensor_grad(w), gw, 15, __FILE__, __LINE__);
        check_values(nb_tensor_grad(b), gb, 3, __FILE__, __LINE__);
    }
    nb_release(loss);
    nb_release(z);
    nb_release(xw);
    nb_release(b);
    nb_release(w);
    nb_release(y);
    nb_release(x);
    return rc;
}

/* The seed step as a training step: params outside, step in nested scopes, loss kept. */
static nb_status sweep_scoped(void)
{
    nb_manual_seed(0);
    nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_status rc = nb_last_error()->code;
    nb_scope *outer = rc == NB_OK ? nb_scope_begin() : NULL;
    nb_scope *inner = outer ? nb_scope_begin() : NULL;
    if (rc == NB_OK && !inner) rc = nb_last_error()->code;
    if (inner) {
        nb_tensor *loss = nb_scope_keep(nb_binary_cross_entropy_with_logits(
            nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN));
        assert_int_equal(nb_scope_end(inner), NB_OK);
        rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
        if (rc == NB_OK) {
            float gw[15], gb[3];
            double lv = seed_expected(w, b, gw, gb);
            assert_float_equal(item(loss), (float)lv, 1e-5);
            check_values(nb_tensor_grad(w), gw, 15, __FILE__, __LINE__);
            check_values(nb_tensor_grad(b), gb, 3, __FILE__, __LINE__);
        }
    }
    if (outer) assert_int_equal(nb_scope_end(outer), NB_OK);
    nb_release(b);
    nb_release(w);
    nb_release(y);
    nb_release(x);
    return rc;
}

/* Sigmoid, retain_grad, a retained backward, then nb_grad on a leaf and a non-leaf. */
static nb_status sweep_grad(void)
{
    nb_tensor *w = nb_requires_grad_(nb_from_data(W3, NB_SHAPE(3)), true);
    nb_tensor *x = nb_from_data(X3, NB_SHAPE(3));
    nb_tensor *h = nb_mul(w, x);
    nb_status rc = h ? nb_retain_grad(h) : NB_OK; /* a NULL h: loss is NULL too, below */
    nb_tensor *s = nb_sigmoid(h);
    nb_tensor *loss = sum_release(nb_add(s, h));
    float ds[3], dw[3];
    for (int i = 0; i < 3; i++) {
        float sg = 1.0f / (1.0f + expf(-W3[i] * X3[i]));
        ds[i] = sg * (1.0f - sg) + 1.0f;
        dw[i] = ds[i] * X3[i];
    }
    if (rc == NB_OK) rc = loss ? nb_backward(loss, NULL, true) : nb_last_error()->code;
    if (rc == NB_OK) {
        check_values(nb_tensor_grad(h), ds, 3, __FILE__, __LINE__);
        check_values(nb_tensor_grad(w), dw, 3, __FILE__, __LINE__);
        nb_scope *sc = nb_scope_begin();
        if (!sc) {
            rc = nb_last_error()->code;
        } else {
            nb_tensor *in[2] = {w, h}, *res[2] = {NULL, NULL};
            rc = nb_grad(&loss, 1, in, 2, NULL, NULL, res);
            if (rc == NB_OK) {
                check_values(res[0], dw, 3, __FILE__, __LINE__);
                check_values(res[1], ds, 3, __FILE__, __LINE__);
            } else {
                assert_null(res[0]);
                assert_null(res[1]);
            }
            assert_int_equal(nb_scope_end(sc), NB_OK);
        }
    }
    nb_release(loss);
    nb_release(s);
    nb_release(h);
    nb_release(x);
    nb_release(w);
    return rc;
}

/*
 * Fail the k-th allocation for k = 1, 2, ... until body runs without the allocator failing.
 * Every run must succeed or fail with NB_ENOMEM and a one-line message, and free every block.
 */
static void sweep(const char *name, nb_status (*body)(void))
{
    long k, clean_failures = 0;
    for (k = 1; k < 1000000; k++) {
        nbt_fail_alloc_after(k);
        long live0 = nbt_alloc_live();
        nb_error_clear();
        nb_status rc = body();
        int failed = nbt_alloc_failed();
        long leaked = nbt_alloc_live() - live0;
        nbt_fail_alloc_after(0);
        if (rc != NB_OK) {
            const nb_error *e = nb_last_error();
            if (!failed)
                fail_msg("%s: k=%ld: failed without an allocation failure: %s", name, k,
                         e->message);
            if (rc != NB_ENOMEM || e->code != NB_ENOMEM)
                fail_msg("%s: k=%ld: status %s, last error %s (%s)", name, k, nb_status_name(rc),
                         nb_status_name(e->code), e->message);
            if (!strstr(e->message, ": out of memory") || strchr(e->message, '\n'))
                fail_msg("%s: k=%ld: message \"%s\"", name, k, e->message);
            clean_failures++;
        }
        if (leaked != 0) fail_msg("%s: k=%ld: %ld blocks leaked", name, k, leaked);
        if (!failed) break;
    }
    nb_error_clear();
    print_message("%s: %ld allocations, %ld clean failures\n", name, k - 1, clean_failures);
    assert_true(k > 10);
    assert_true(clean_failures > 0);
}

static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    sweep("seed", sweep_seed);
    sweep("scoped", sweep_scoped);
    sweep("grad", sweep_grad);
    /* the default allocator is back */
    nb_tensor *t = nb_ones(NB_SHAPE(4));
    assert_non_null(t);
    nb_release(t);
}

/* nb_grad runs only the nodes that lead to its inputs: the rest of the graph keeps its saved
 * tensors, as in torch.autograd.grad. */
static void test_grad_prunes(void **state)
{
    (void)state;
    nb_scope *s = nb_scope_begin();
    nb_tensor *x = nb_requires_grad_(nb_from_data((const float[]){0.5f, -1.0f}, NB_SHAPE(2)), true);
    nb_tensor *y = nb_sigmoid(x);
    nb_tensor *z = nb_sum(nb_mul(y, y), NB_DIMS_ALL, false);
    nb_tensor *dy = NULL;
    assert_int_equal(nb_grad(&z, 1, &y, 1, NULL, NULL, &dy), NB_OK);
    const float *yv = nb_tensor_data(y), *g = nb_tensor_data(dy);
    for (int i = 0; i < 2; i++) assert_float_equal(g[i], 2.0f * yv[i], 1e-6f);
    assert_null(nb_tensor_grad(x));
    /* SigmoidBackward0 did not run, so its saved output is still there */
    assert_int_equal(nb_backward(nb_sum(y, NB_DIMS_ALL, false), NULL, false), NB_OK);
    const float *gx = nb_tensor_data(nb_tensor_grad(x));
    for (int i = 0; i < 2; i++) assert_float_equal(gx[i], yv[i] * (1.0f - yv[i]), 1e-6f);
    /* the part nb_grad ran was freed: a second pass through it fails */
    assert_int_equal(nb_grad(&z, 1, &y, 1, NULL, NULL, &dy), NB_ESTATE);
    assert_error(NB_ESTATE, "second time");
    assert_null(dy);
    nb_scope_end(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backward_twice, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_retain_graph, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_root_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace_saved_input, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace_saved_output, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace_leaf, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_requires_grad_flags, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_retain_grad_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_backward_again_root_as_grad, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_set_grad_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_grad_only_leaves, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_retain_grad, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_accumulate_and_zero_grad, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_leaf_detach, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_leaf_root, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_grads_not_aliased, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_no_grad, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_graph_structure, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_accumulator_lifetime, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_diamond, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_grad_fn_api, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_grad_prunes, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_long_chain_scope, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_long_chain_manual, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_long_chain_no_backward, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_sigmoid_chain, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_training_loop_scopes, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure_sweep, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("autograd", tests, NULL, NULL);
}
