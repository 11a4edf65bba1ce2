/*
 * Behaviours of the engine and the core found by probing: in-place writes and aliasing,
 * errors that name the public function, pending errors and optional arguments, backward on
 * another thread, extreme sizes, and PyTorch's answers where nabla used to differ.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static void assert_data(nb_tensor *t, const float *want, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(nb_tensor_numel(t), n);
    const float *d = nb_tensor_data_const(t);
    for (int64_t i = 0; i < n; i++)
        if (!(d[i] == want[i] || (isnan(d[i]) && isnan(want[i]))))
            fail_msg("element %lld: got %.9g, want %.9g", (long long)i, (double)d[i],
                     (double)want[i]);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- in-place writes ----------------------------------------------------------------------- */

static void test_inplace_alias(void **state)
{
    (void)state;
    const float v[] = {1, 2, 3, 4, 5, 6};
    nb_tensor *a = nb_from_data(v, NB_SHAPE(3, 2));
    nb_tensor *row = nb_slice(a, 0, 0, 1, 1); /* shares a's first row */
    nb_error_clear();
    assert_int_equal(nb_add_(a, row), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_add_: unsupported operation: some elements of the input tensor "
                            "and the written-to tensor refer to a single memory location.");
    assert_data(a, v, 6); /* unchanged */
    assert_int_equal(nb_add_(row, a), NB_ESHAPE);
    /* the whole tensor onto itself is fine, as in PyTorch */
    assert_int_equal(nb_add_(a, a), NB_OK);
    const float twice[] = {2, 4, 6, 8, 10, 12};
    assert_data(a, twice, 6);
    /* a detached view is another tensor over the same memory: refused the same way */
    nb_tensor *d = nb_detach(a);
    nb_tensor *d1 = nb_slice(d, 0, 1, 3, 1);
    assert_int_equal(nb_mul_(d, d1), NB_ESHAPE);
    assert_int_equal(nb_mul_(d1, d), NB_ESHAPE);
    nb_tensor *tail = nb_slice(a, 0, 1, 2, 1);
    assert_int_equal(nb_sub_(d1, tail), NB_EINVAL);
    nb_release(tail);
    nb_release(d1);
    nb_release(d);
    nb_release(row);
    nb_release(a);
}

static void test_inplace_on_graph(void **state)
{
    (void)state;
    const float wv[] = {1, 2};
    nb_tensor *w = nb_requires_grad_(nb_from_data(wv, NB_SHAPE(2)), true);
    nb_tensor *y = nb_mul_scalar(w, 2);
    nb_error_clear();
    /* a non-leaf: refused (PyTorch records the write; nabla does not record in-place ops) */
    assert_int_equal(nb_tensor_set(y, (const int64_t[]){0}, 5), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_tensor_set: in-place operations on tensors that are part of a "
                            "graph are not supported");
    /* so the gradient stays right: sum(y·y) gives 8w = [8, 16] */
    nb_tensor *yy = nb_mul(y, y), *loss = nb_sum(yy, NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    const float g[] = {8, 16};
    assert_data(nb_tensor_grad(w), g, 2);

    /* a view of a leaf that requires grad */
    nb_tensor *v = nb_slice(w, 0, 0, 1, 1);
    assert_int_equal(nb_tensor_set(v, (const int64_t[]){0}, 5), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_tensor_set: a view of a leaf Variable that requires grad is "
                            "being used in an in-place operation.");
    assert_int_equal(nb_uniform_(v, 0, 1, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_uniform_: a view of a leaf Variable");
    assert_int_equal(nb_normal_(v, 0, 1, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_normal_: a view of a leaf Variable");
    assert_int_equal(nb_random_(v, 0, 3, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_random_: a view of a leaf Variable");
    nb_tensor *vv = nb_reshape(v, NB_SHAPE(1, 1)); /* through two views */
    assert_int_equal(nb_fill_(vv, 0), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_fill_: a view of a leaf Variable");
    assert_int_equal(nb_tensor_set(w, (const int64_t[]){0}, 5), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_tensor_set: a leaf Variable that requires grad is being used in "
                            "an in-place operation.");
    assert_data(w, wv, 2); /* nothing was written */
    /* under no-grad every one of them writes (that is how optimizers update) */
    NB_NO_GRAD
    {
        assert_int_equal(nb_tensor_set(v, (const int64_t[]){0}, 5), NB_OK);
        assert_int_equal(nb_fill_(y, 1), NB_OK);
    }
    assert_true(nb_tensor_data(w)[0] == 5.0f);
    nb_release(vv);
    nb_release(v);
    nb_release(loss);
    nb_release(yy);
    nb_release(y);
    nb_release(w);
}

/* -0·0 is -0, in place as out of place */
static void test_inplace_signs(void **state)
{
    (void)state;
    nb_tensor *a = nb_full(NB_SHAPE(1), -0.0f);
    nb_tensor *b = nb_mul_scalar(a, 0.0f);
    assert_int_equal(nb_mul_scalar_(a, 0.0f), NB_OK);
    assert_true(signbit(nb_tensor_data(a)[0]));
    assert_true(signbit(nb_tensor_data(b)[0]));
    nb_release(b);
    nb_release(a);
}

/* ---- errors -------------------------------------------------------------------------------- */

/* The message names the public function called: one of prefixes[], then ": out of memory". */
static void assert_oom_from(const char *const *prefixes, int n)
{
    const char *msg = nb_last_error()->message;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(prefixes[i]);
        if (!strncmp(msg, prefixes[i], len) && !strcmp(msg + len, ": out of memory")) return;
    }
    fail_msg("message \"%s\" does not name the function called", msg);
}

static nb_status sweep_sum(void)
{
    nb_tensor *x = nb_ones(NB_SHAPE(4, 3, 2));
    if (!x) return NB_ENOMEM;
    nb_tensor *s = nb_sum(x, NB_DIMS(0, 2), false);
    nb_status rc = s ? NB_OK : NB_ENOMEM;
    if (!s) assert_oom_from((const char *[]){"nb_sum"}, 1);
    nb_release(s);
    nb_release(x);
    return rc;
}

static nb_status sweep_grad(void)
{
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(3, 2)), true);
    if (!w) return NB_ENOMEM;
    nb_scope *sc = nb_scope_begin();
    if (!sc) {
        nb_release(w);
        return NB_ENOMEM;
    }
    nb_tensor *x = nb_ones(NB_SHAPE(2));
    nb_tensor *loss = nb_sum(nb_mul(nb_add(w, x), w), NB_DIMS_ALL, false);
    nb_status rc = NB_OK;
    nb_tensor *r = NULL;
    if (!loss) {
        rc = NB_ENOMEM;
        assert_oom_from((const char *[]){"nb_ones", "nb_add", "nb_mul", "nb_sum"}, 4);
    } else if ((rc = nb_grad(&loss, 1, &w, 1, NULL, NULL, &r)) != NB_OK) {
        assert_oom_from((const char *[]){"nb_grad"}, 1);
    } else {
        const float want[] = {3, 3, 3, 3, 3, 3};
        assert_data(r, want, 6);
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
    nb_release(w);
    return rc;
}

static void sweep(nb_status (*body)(void))
{
    long k;
    for (k = 1; k < 10000; k++) {
        nbt_fail_alloc_after(k);
        long live = nbt_alloc_live();
        nb_error_clear();
        nb_status rc = body();
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        assert_int_equal(nbt_alloc_live(), live);
        if (!failed) {
            assert_int_equal(rc, NB_OK);
            break;
        }
        assert_int_equal(rc, NB_ENOMEM);
    }
    assert_true(k > 2);
}

static void test_messages_name_the_call(void **state)
{
    (void)state;
    sweep(sweep_sum);
    sweep(sweep_grad);
}

/* An optional argument that is NULL because the call that made it failed is not "absent". */
static void test_optional_arguments(void **state)
{
    (void)state;
    nb_tensor *x = nb_zeros(NB_SHAPE(2)), *y = nb_ones(NB_SHAPE(2));
    nb_error_clear();
    nb_tensor *bad_weight = nb_zeros(NB_SHAPE(-1)); /* fails: pending */
    assert_null(nb_binary_cross_entropy_with_logits(x, y, bad_weight, NULL, NB_MEAN));
    assert_error(NB_EINVAL, "nb_zeros: negative dimension -1");
    /* read: now NULL really is absent */
    nb_tensor *l = nb_binary_cross_entropy_with_logits(x, y, NULL, NULL, NB_MEAN);
    assert_non_null(l);
    nb_release(l);

    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    nb_tensor *z = nb_mul(w, y);
    nb_tensor *bad_grad = nb_ones(NB_SHAPE(-3));
    assert_int_equal(nb_backward(z, bad_grad, false), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_ones: negative dimension -3");
    assert_null(nb_tensor_grad(w));                           /* no implicit 1 was used */
    assert_int_equal(nb_backward(z, NULL, false), NB_ESTATE); /* read: two elements, no grad */
    assert_error(NB_ESTATE, "nb_backward: grad can be implicitly created only for scalar outputs");
    nb_release(z);
    nb_release(w);
    nb_release(x);
    nb_release(y);
}

static void test_bce_constants(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true), *y = nb_ones(NB_SHAPE(2));
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    nb_error_clear();
    assert_null(nb_binary_cross_entropy_with_logits(x, y, w, NULL, NB_MEAN));
    assert_error(NB_EINVAL, "nb_binary_cross_entropy_with_logits: The function "
                            "'binary_cross_entropy_with_logits' is not differentiable with "
                            "respect to argument 'weight'. This input cannot have "
                            "requires_grad True.");
    assert_null(nb_binary_cross_entropy_with_logits(x, y, NULL, w, NB_MEAN));
    assert_error(NB_EINVAL, "argument 'pos_weight'");
    /* under no-grad there is no graph, so nothing to refuse */
    NB_NO_GRAD
    {
        nb_tensor *l = nb_binary_cross_entropy_with_logits(x, y, w, w, NB_SUM);
        assert_non_null(l);
        nb_release(l);
    }
    /* a weight of the input's shape inside a scope: nothing leaks (the counting teardown) */
    nb_tensor *c = nb_full(NB_SHAPE(2), 0.5f);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *l = nb_binary_cross_entropy_with_logits(x, y, c, c, NB_MEAN);
    assert_non_null(l);
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    nb_release(c);
    nb_release(w);
    nb_release(x);
    nb_release(y);
}

/* ---- backward on another thread ------------------------------------------------------------- */

typedef struct job {
    nb_tensor *loss;
    nb_status rc;
} job;

static void *backward_job(void *arg)
{
    job *j = arg;
    j->rc = nb_backward(j->loss, NULL, true);
    return NULL;
}

static void test_backward_on_threads(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(1)), true);
    nb_tensor *ww = nb_mul(w, w);
    job j = {nb_sum(ww, NB_DIMS_ALL, false), NB_EINVAL};
    float g;
    for (int run = 1; run <= 3; run++) { /* thread A, then thread B, then this thread */
        if (run < 3) {
            pthread_t t;
            assert_int_equal(pthread_create(&t, NULL, backward_job, &j), 0);
            assert_int_equal(pthread_join(t, NULL), 0);
        } else {
            backward_job(&j);
        }
        assert_int_equal(j.rc, NB_OK);
        assert_int_equal(nb_tensor_item(nb_tensor_grad(w), &g), NB_OK);
        assert_true(g == 2.0f * (float)run); /* 2, 4, 6: every run counts */
    }
    nb_release(j.loss);
    nb_release(ww);
    nb_release(w);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

static void test_empty_with_huge_dims(void **state)
{
    (void)state;
    nb_tensor *e = nb_empty(NB_SHAPE(0, (int64_t)1 << 62, 4));
    assert_non_null(e);
    nb_tensor *m = nb_mean(e, NB_DIMS(1, 2), false), *s = nb_sum(e, NB_DIMS(1, 2), true);
    assert_non_null(m);
    assert_non_null(s);
    assert_int_equal(nb_tensor_ndim(m), 1);
    assert_int_equal(nb_tensor_numel(m), 0);
    assert_int_equal(nb_tensor_shape(s)[1], 1);
    /* a batch of 2^64 matrices: an error (as PyTorch's "integer multiplication overflow"),
     * not an overflow in the batch count */
    nb_tensor *a = nb_empty(NB_SHAPE((int64_t)1 << 32, 1, 0, 1));
    nb_tensor *b = nb_empty(NB_SHAPE((int64_t)1 << 32, 1, 0));
    nb_error_clear();
    assert_null(nb_matmul(a, b));
    assert_error(NB_ERANGE, "nb_matmul: shape [4294967296, 4294967296, 0, 0] has too many");
    nb_release(a);
    nb_release(b);
    /* 2^62 of them: PyTorch's empty [2^31, 2^31, 0, 0] */
    a = nb_empty(NB_SHAPE((int64_t)1 << 31, 1, 0, 1));
    b = nb_empty(NB_SHAPE((int64_t)1 << 31, 1, 0));
    nb_tensor *p = nb_matmul(a, b);
    assert_non_null(p);
    assert_int_equal(nb_tensor_ndim(p), 4);
    assert_int_equal(nb_tensor_shape(p)[0], (int64_t)1 << 31);
    assert_int_equal(nb_tensor_shape(p)[1], (int64_t)1 << 31);
    assert_int_equal(nb_tensor_numel(p), 0);
    /* and their gradients are empty too */
    nb_requires_grad_(a, true);
    nb_tensor *p2 = nb_matmul(a, b);
    nb_tensor *l = nb_sum(p2, NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_int_equal(nb_tensor_numel(nb_tensor_grad(a)), 0);
    nb_release(l);
    nb_release(p2);
    nb_release(p);
    nb_release(a);
    nb_release(b);
    nb_release(s);
    nb_release(m);
    nb_release(e);
}

static void test_flatten_rules(void **state)
{
    (void)state;
    nb_tensor *s = nb_scalar(1);
    nb_error_clear();
    assert_null(nb_flatten(s, 5, 7));
    assert_error(NB_EINVAL, "nb_flatten: dimension out of range (expected to be in range of [-1, "
                            "0], but got 5)");
    nb_tensor *f = nb_flatten(s, 0, -1);
    assert_int_equal(nb_tensor_ndim(f), 1);
    nb_release(f);
    nb_release(s);
}

/* ---- PyTorch's answers ------------------------------------------------------------------------
 */

/* y = x / 1e-39 with g = 1e-6: dx = 1e33 (1/s overflows float; dividing does not) */
static void test_div_by_tiny(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_ones(NB_SHAPE(1)), true);
    nb_tensor *y = nb_div_scalar(x, 1e-39f);
    nb_tensor *g = nb_full(NB_SHAPE(1), 1e-6f);
    assert_int_equal(nb_backward(y, g, false), NB_OK);
    float v;
    assert_int_equal(nb_tensor_item(nb_tensor_grad(x), &v), NB_OK);
    assert_true(isfinite(v));
    assert_true(fabsf(v - 1e33f) <= 1e27f);
    nb_release(g);
    nb_release(y);
    nb_release(x);
}

static void test_relu_nan(void **state)
{
    (void)state;
    const float v[] = {NAN, 1, -1, -0.0f};
    nb_tensor *x = nb_requires_grad_(nb_from_data(v, NB_SHAPE(4)), true);
    nb_tensor *r = nb_relu(x), *l = nb_sum(r, NB_DIMS_ALL, false);
    const float fwd[] = {NAN, 1, 0, -0.0f}, grad[] = {1, 1, 0, 0};
    assert_data(r, fwd, 4);
    assert_true(signbit(nb_tensor_data(r)[3])); /* relu(-0) is -0, as PyTorch */
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(x), grad, 4); /* PyTorch passes g through at NaN */
    nb_release(l);
    nb_release(r);
    nb_release(x);
}

/* torch.autograd.grad fills .grad of a tensor that retains it (and no leaf's) */
static void test_grad_retains(void **state)
{
    (void)state;
    const float wv[] = {1, 2};
    nb_tensor *w = nb_requires_grad_(nb_from_data(wv, NB_SHAPE(2)), true);
    nb_tensor *h = nb_mul_scalar(w, 2);
    assert_int_equal(nb_retain_grad(h), NB_OK);
    nb_tensor *hh = nb_mul(h, h), *l = nb_sum(hh, NB_DIMS_ALL, false), *r = NULL;
    assert_int_equal(nb_grad(&l, 1, &w, 1, NULL, &(nb_grad_options){true, false}, &r), NB_OK);
    const float dw[] = {8, 16}, dh[] = {4, 8};
    assert_data(r, dw, 2);
    assert_data(nb_tensor_grad(h), dh, 2);
    assert_null(nb_tensor_grad(w));
    nb_release(r);
    nb_release(l);
    nb_release(hh);
    nb_release(h);
    nb_release(w);
}

/* A second backward adds into the .grad that is there, in place (PyTorch's in-place +=). */
static void test_grad_accumulates_in_place(void **state)
{
    (void)state;
    nb_tensor *x = nb_ones(NB_SHAPE(2, 3));
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(3, 4)), true);
    nb_tensor *first = NULL;
    for (int step = 1; step <= 3; step++) {
        nb_scope *sc = nb_scope_begin();
        nb_tensor *l = nb_sum(nb_matmul(x, w), NB_DIMS_ALL, false);
        assert_int_equal(nb_backward(l, NULL, false), NB_OK);
        assert_int_equal(nb_scope_end(sc), NB_OK);
        nb_tensor *g = nb_tensor_grad(w);
        if (step == 1) first = g;
        assert_ptr_equal(g, first); /* the same tensor, written into */
        for (int i = 0; i < 12; i++) assert_true(nb_tensor_data(g)[i] == 2.0f * (float)step);
        if (step > 1) assert_true(nb_tensor_version(g) >= (uint64_t)(step - 1));
    }
    nb_release(w);
    nb_release(x);
}

/*
 * A view made under no-grad of a tensor that requires grad (or a view of such a view) is not
 * written with grad mode on, as PyTorch refuses it: the write would change a parameter or a
 * value of the graph unrecorded. Under no-grad it may be written; views of a detached tensor
 * or of one that does not require grad may be written in any mode.
 */
static void test_no_grad_view_write(void **state)
{
    (void)state;
    static const char msg[] = "nb_add_scalar_: A view was created in no_grad mode and is being "
                              "modified inplace with grad mode enabled.";
    const float v[] = {1, 2, 3}, w_after[] = {6, 2, 3}, d_after[] = {7, 2, 3};
    nb_scope *sc = nb_scope_begin();
    nb_tensor *w = nb_requires_grad_(nb_from_data(v, NB_SHAPE(3)), true), *s = NULL, *r = NULL;
    nb_tensor *y = nb_mul_scalar(w, 2), *plain = nb_from_data(v, NB_SHAPE(3)), *p = NULL;
    NB_NO_GRAD
    {
        s = nb_slice(w, 0, 0, 1, 1);
        r = nb_reshape(y, NB_SHAPE(3, 1));
        p = nb_slice(plain, 0, 0, 2, 1);
    }
    nb_error_clear();
    assert_int_equal(nb_add_scalar_(s, 100), NB_ESTATE);
    assert_error(NB_ESTATE, msg);
    assert_int_equal(nb_fill_(r, 0), NB_ESTATE);
    assert_int_equal(nb_add_scalar_(nb_slice(s, 0, 0, 1, 1), 1), NB_ESTATE); /* its view too */
    assert_data(w, v, 3);
    assert_data(y, (const float[]){2, 4, 6}, 3);
    NB_NO_GRAD
    {
        assert_int_equal(nb_add_scalar_(s, 5), NB_OK);
    }
    assert_data(w, w_after, 3);
    assert_int_equal(nb_add_scalar_(p, 1), NB_OK);
    nb_tensor *d = NULL;
    NB_NO_GRAD
    {
        d = nb_slice(nb_detach(w), 0, 0, 1, 1);
    }
    assert_int_equal(nb_add_scalar_(d, 1), NB_OK); /* PyTorch writes through detach() too */
    assert_data(w, d_after, 3);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * PyTorch sums a leaf's gradients before adding them to its .grad, and adds each gradient to a
 * node's partial sum once it is whole, so 1 + (2^-24 + 2^-24) is 1 + 2^-23 where adding each
 * 2^-24 in turn would round back to 1. The values are tests/data/gen_accumulation.py's; the
 * .grad's version moves once per backward, as there.
 */
static void test_accumulation_order(void **state)
{
    (void)state;
    const float c = 0x1p-24f, want[2] = {0x1.000002p+0f, 0x1.000002p+0f};
    nb_scope *sc = nb_scope_begin();
    /* a .grad of 1 from a first backward, then two gradients through a broadcast */
    nb_tensor *x = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    assert_int_equal(nb_backward(nb_sum(x, NB_DIMS_ALL, false), NULL, false), NB_OK);
    nb_tensor *y = nb_sum(nb_mul(x, nb_full(NB_SHAPE(2, 2), c)), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(x), want, 2);
    /* a .grad of 1, then two uses of the leaf */
    nb_tensor *x1 = nb_requires_grad_(nb_ones(NB_SHAPE(1)), true);
    assert_int_equal(nb_backward(nb_sum(x1, NB_DIMS_ALL, false), NULL, false), NB_OK);
    y = nb_sum(nb_add(nb_mul_scalar(x1, c), nb_mul_scalar(x1, c)), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(x1), want, 1);
    /* a weight's .grad of 1, then two products with it */
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(1, 1)), true);
    assert_int_equal(nb_backward(nb_sum(w, NB_DIMS_ALL, false), NULL, false), NB_OK);
    nb_tensor *b = nb_full(NB_SHAPE(1, 1), c);
    y = nb_sum(nb_add(nb_matmul(b, w), nb_matmul(b, w)), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(w), want, 1);
    /* no .grad before: a non-leaf's partial sum of 1, then a broadcast gradient added to it */
    nb_tensor *x2 = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    nb_tensor *h = nb_mul_scalar(x2, 1);
    nb_tensor *p = nb_mul(h, nb_full(NB_SHAPE(2, 2), c)); /* made first, so it runs last */
    y = nb_add(nb_sum(p, NB_DIMS_ALL, false), nb_sum(nb_mul_scalar(h, 1), NB_DIMS_ALL, false));
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(x2), want, 2);
    /* three gradients reach x: its .grad's version moves once */
    uint64_t v0 = nb_tensor_version(nb_tensor_grad(x));
    y = nb_sum(nb_add(nb_mul_scalar(x, 2), nb_add(nb_mul_scalar(x, 3), nb_exp(x))), NB_DIMS_ALL,
               false);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_int_equal(nb_tensor_version(nb_tensor_grad(x)) - v0, 1);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * The same holds where the gradient is a GEMM over many blocks of k or a sum over many rows:
 * a second backward onto the .grad r of the first gives r + r exactly (each block or row added
 * to r in turn would round differently), and a backward onto zero_grad's zeros gives the bits
 * of one onto no .grad.
 */
static void test_accumulation_order_long_sums(void **state)
{
    (void)state;
    enum { ROWS = 4099, IN = 5, OUT = 3 };
    nb_manual_seed(3);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_randn(NB_SHAPE(ROWS, IN)), *gy = nb_randn(NB_SHAPE(ROWS, OUT));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(IN, OUT)), true);
    nb_tensor *bias = nb_requires_grad_(nb_randn(NB_SHAPE(OUT)), true);
    nb_tensor *params[2] = {w, bias}, *first[2];
    float fresh[2][IN * OUT];
    for (int round = 0; round < 3; round++) {
        if (round == 2) /* zeros, then one backward: the bits of the first round */
            for (int i = 0; i < 2; i++) assert_int_equal(nb_zero_grad(params[i], false), NB_OK);
        nb_tensor *y = nb_add(nb_matmul(x, w), bias);
        assert_int_equal(nb_backward(y, gy, false), NB_OK);
        for (int i = 0; i < 2; i++) {
            nb_tensor *g = nb_tensor_grad(params[i]);
            const float *d = nb_tensor_data_const(g);
            int64_t n = nb_tensor_numel(g);
            if (round == 0) {
                first[i] = g;
                memcpy(fresh[i], d, (size_t)n * sizeof *d);
                continue;
            }
            assert_ptr_equal(g, first[i]); /* added in place */
            for (int64_t k = 0; k < n; k++) {
                float want = round == 1 ? fresh[i][k] + fresh[i][k] : fresh[i][k];
                if (bits_of(d[k]) != bits_of(want))
                    fail_msg("round %d, %s[%lld]: %a, want %a", round, i ? "bias" : "w",
                             (long long)k, (double)d[k], (double)want);
            }
        }
    }
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * Sums of gradients large enough for the pool (NB__PARALLEL_MIN elements): a warm .grad plus
 * a backward's gradient, a value that feeds two ops (its node's partial sum), and a seed that
 * is the leaf's own .grad (the sum adds a buffer to itself), at 1, 2 and 3 threads. Every
 * element is its own sum, so each is the float sum of its two terms.
 */
static void test_accumulation_large(void **state)
{
    (void)state;
    enum { ROWS = 601, COLS = 300, N = ROWS * COLS };
    const int saved = nb_get_num_threads();
    nb_manual_seed(5);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *c = nb_randn(NB_SHAPE(ROWS, COLS)), *gy = nb_randn(NB_SHAPE(ROWS, COLS));
    const float *cd = nb_tensor_data_const(c), *gd = nb_tensor_data_const(gy);
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(nb_set_num_threads(threads), NB_OK);
        nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(ROWS, COLS)), true);
        /* y = x·c + x·c: x·c's node sums two gradients of gy, then x's .grad is (gy + gy)·c */
        nb_tensor *h = nb_mul(x, c);
        assert_int_equal(nb_backward(nb_add(h, h), gy, false), NB_OK);
        /* a second backward into the warm .grad: (gy + gy)·c + gy·c */
        assert_int_equal(nb_backward(nb_mul(x, c), gy, false), NB_OK);
        const float *d = nb_tensor_data_const(nb_tensor_grad(x));
        for (int64_t k = 0; k < N; k++) {
            float want = (gd[k] + gd[k]) * cd[k] + gd[k] * cd[k];
            if (bits_of(d[k]) != bits_of(want))
                fail_msg("%d threads, grad[%lld]: %a, want %a", threads, (long long)k, (double)d[k],
                         (double)want);
        }
        /* seeded with its own .grad, x's gradient r is added to r itself */
        float *before = malloc((size_t)N * sizeof *before);
        assert_non_null(before);
        memcpy(before, d, (size_t)N * sizeof *d);
        nb_tensor *v = nb_detach(x);
        assert_int_equal(nb_backward(nb_add(x, v), nb_tensor_grad(x), false), NB_OK);
        d = nb_tensor_data_const(nb_tensor_grad(x));
        for (int64_t k = 0; k < N; k++)
            if (bits_of(d[k]) != bits_of(before[k] + before[k]))
                fail_msg("%d threads, own seed, grad[%lld]: %a, want %a", threads, (long long)k,
                         (double)d[k], (double)(before[k] + before[k]));
        free(before);
    }
    assert_int_equal(nb_set_num_threads(saved), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * A seed that shares part of the leaf's .grad (two views of one buffer, the seed's elements
 * K before or after .grad's): each element of .grad gets the sum of the two values as they
 * were, at 1, 2 and 3 threads, not an element the sum has already written (which the
 * pool's tasks would read at their edges).
 */
static void test_accumulation_overlapping_seed(void **state)
{
    (void)state;
    enum { N = 300000, K = 1000 };
    const int saved = nb_get_num_threads();
    nb_scope *sc = nb_scope_begin();
    float *grad0 = malloc((size_t)N * sizeof *grad0), *seed0 = malloc((size_t)N * sizeof *seed0);
    assert_non_null(grad0);
    assert_non_null(seed0);
    for (int threads = 1; threads <= 3; threads++)
        for (int seed_first = 0; seed_first <= 1; seed_first++) {
            assert_int_equal(nb_set_num_threads(threads), NB_OK);
            nb_tensor *buf = nb_randn(NB_SHAPE(N + K));
            nb_tensor *x = nb_requires_grad_(nb_zeros(NB_SHAPE(N)), true);
            nb_tensor *g = nb_narrow(buf, 0, seed_first ? K : 0, N);
            nb_tensor *seed = nb_narrow(buf, 0, seed_first ? 0 : K, N);
            memcpy(grad0, nb_tensor_data_const(g), (size_t)N * sizeof *grad0);
            memcpy(seed0, nb_tensor_data_const(seed), (size_t)N * sizeof *seed0);
            assert_int_equal(nb_tensor_set_grad(x, g), NB_OK);
            assert_int_equal(nb_backward(nb_add(x, nb_detach(x)), seed, false), NB_OK);
            const float *d = nb_tensor_data_const(nb_tensor_grad(x));
            for (int64_t k = 0; k < N; k++)
                if (bits_of(d[k]) != bits_of(grad0[k] + seed0[k]))
                    fail_msg("%d threads, seed %s .grad, grad[%lld]: %a, want %a", threads,
                             seed_first ? "before" : "after", (long long)k, (double)d[k],
                             (double)(grad0[k] + seed0[k]));
        }
    free(grad0);
    free(seed0);
    assert_int_equal(nb_set_num_threads(saved), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* A node that nb_grad only captures does not run, so its retained grad stays NULL, as
 * PyTorch's retain_grad hook (which runs with the node); a node on the way gets it. */
static void test_grad_capture_leaves_retained(void **state)
{
    (void)state;
    const float v[] = {1, 2, 3}, three[] = {3, 3, 3};
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_requires_grad_(nb_from_data(v, NB_SHAPE(3)), true);
    nb_tensor *h = nb_mul(x, x), *r = NULL;
    assert_int_equal(nb_retain_grad(h), NB_OK);
    nb_tensor *y = nb_sum(nb_mul_scalar(h, 3), NB_DIMS_ALL, false);
    assert_int_equal(nb_grad(&y, 1, &h, 1, NULL, &(nb_grad_options){true, false}, &r), NB_OK);
    assert_data(r, three, 3);
    assert_null(nb_tensor_grad(h));
    nb_release(r);
    assert_int_equal(nb_grad(&y, 1, &x, 1, NULL, &(nb_grad_options){true, false}, &r), NB_OK);
    assert_data(nb_tensor_grad(h), three, 3);
    nb_release(r);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * A .grad that the backward also reads (the incoming gradient, a saved tensor, or the leaf's
 * own storage) is added to after the backward, as PyTorch's AccumulateGrad does, never
 * written while it is read. The numbers are PyTorch 1.13's for the same calls, but for the
 * .grad that is a view made under no-grad, which PyTorch refuses once x is written: nabla
 * adds after, as for the detached one.
 */
static void test_grad_aliasing(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    /* x.grad as the incoming gradient: x.grad += flip(x.grad) */
    nb_tensor *x = nb_requires_grad_(nb_from_data((float[]){1, 2, 3}, NB_SHAPE(3)), true);
    nb_tensor *y = nb_flip(x, NB_DIMS_ALL);
    assert_int_equal(nb_backward(y, nb_from_data((float[]){1, 2, 3}, NB_SHAPE(3)), true), NB_OK);
    assert_int_equal(nb_backward(y, nb_tensor_grad(x), true), NB_OK);
    assert_data(nb_tensor_grad(x), (float[]){4, 4, 4}, 3);
    /* a.grad as the incoming gradient of a @ a */
    nb_tensor *a = nb_requires_grad_(nb_from_data((float[]){1, 2, 3, 4}, NB_SHAPE(2, 2)), true);
    nb_tensor *z = nb_matmul(a, a);
    assert_int_equal(nb_backward(z, nb_ones(NB_SHAPE(2, 2)), true), NB_OK);
    assert_int_equal(nb_backward(z, nb_tensor_grad(a), true), NB_OK);
    assert_data(nb_tensor_grad(a), (float[]){70, 126, 94, 166}, 4);
    /* w.grad sharing w's storage (detached, or a view made under no-grad) */
    nb_tensor *w = nb_requires_grad_(nb_from_data((float[]){1, 2, 3}, NB_SHAPE(3)), true);
    assert_int_equal(nb_tensor_set_grad(w, nb_detach(w)), NB_OK);
    assert_int_equal(nb_backward(nb_sum(nb_mul(w, w), NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_data(nb_tensor_grad(w), (float[]){3, 6, 9}, 3);
    nb_tensor *v = nb_requires_grad_(nb_from_data((float[]){1, 2, 3, 4}, NB_SHAPE(4)), true), *view;
    NB_NO_GRAD
    {
        view = nb_reshape(v, NB_SHAPE(4));
    }
    assert_int_equal(nb_tensor_set_grad(v, view), NB_OK);
    assert_int_equal(nb_backward(nb_sum(nb_mul(v, v), NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_data(nb_tensor_grad(v), (float[]){3, 6, 9, 12}, 4);
    /* a .grad that a node saved: g = 2·x·c with c = x.grad itself */
    nb_tensor *p = nb_requires_grad_(nb_from_data((float[]){1, 2}, NB_SHAPE(2)), true);
    assert_int_equal(nb_tensor_set_grad(p, nb_from_data((float[]){3, 5}, NB_SHAPE(2))), NB_OK);
    nb_tensor *q = nb_sum(nb_mul(p, nb_tensor_grad(p)), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(q, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(p), (float[]){6, 10}, 2);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* A leaf whose requires_grad was turned off after the graph was made gets no .grad. */
static void test_grad_skips_leaf_turned_off(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_requires_grad_(nb_ones(NB_SHAPE(3)), true);
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(3)), true);
    nb_tensor *y = nb_sum(nb_mul(nb_mul_scalar(x, 2), w), NB_DIMS_ALL, false);
    assert_non_null(nb_requires_grad_(x, false));
    assert_int_equal(nb_backward(y, NULL, true), NB_OK);
    assert_null(nb_tensor_grad(x));
    assert_data(nb_tensor_grad(w), (float[]){2, 2, 2}, 3);
    /* also when it has a .grad already: it stays as it was */
    assert_int_equal(nb_tensor_set_grad(x, nb_zeros(NB_SHAPE(3))), NB_OK);
    assert_int_equal(nb_backward(y, NULL, false), NB_OK);
    assert_data(nb_tensor_grad(x), (float[]){0, 0, 0}, 3);
    assert_data(nb_tensor_grad(w), (float[]){4, 4, 4}, 3);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* A chain of a million tensors, each the .grad of the one before, is freed without recursion. */
static void test_long_grad_chain(void **state)
{
    (void)state;
    nb_tensor *head = nb_zeros(NB_SHAPE(1)), *cur = head;
    for (int i = 0; i < 1000000; i++) {
        nb_tensor *g = nb_zeros(NB_SHAPE(1));
        assert_int_equal(nb_tensor_set_grad(cur, g), NB_OK);
        nb_release(g);
        cur = g;
    }
    nb_release(head);
}

/* ---- formatting and pictures -------------------------------------------------------------- */

static void test_format_and_dot(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    nb_tensor *y = nb_mul_scalar(w, 3);
    nb_error_clear();
    assert_int_equal(nb_node_format(nb_tensor_grad_fn(y), NULL, 16), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_node_format: buf is NULL but size is 16");
    assert_true(nb_node_format(nb_tensor_grad_fn(y), NULL, 0) > 0); /* measuring */
    nb_tensor *tensors[] = {y, w};
    const char *names[] = {NULL, "w"}; /* no name for the non-leaf */
    nb_dot_options o = {.tensors = tensors, .names = names, .n_names = 2};
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(nb_graph_dot(y, f, &o), NB_OK);
    fclose(f);
    nb_release(y);
    nb_release(w);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_inplace_alias),
        T(test_inplace_on_graph),
        T(test_inplace_signs),
        T(test_messages_name_the_call),
        T(test_optional_arguments),
        T(test_bce_constants),
        T(test_backward_on_threads),
        T(test_empty_with_huge_dims),
        T(test_flatten_rules),
        T(test_div_by_tiny),
        T(test_relu_nan),
        T(test_grad_retains),
        T(test_grad_accumulates_in_place),
        T(test_accumulation_order),
        T(test_no_grad_view_write),
        T(test_accumulation_order_long_sums),
        T(test_accumulation_large),
        T(test_accumulation_overlapping_seed),
        T(test_grad_capture_leaves_retained),
        T(test_grad_aliasing),
        T(test_grad_skips_leaf_turned_off),
        T(test_long_grad_chain),
        T(test_format_and_dot),
    };
#undef T
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
