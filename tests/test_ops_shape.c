/*
 * Shape and indexing ops: values, gradients and node names against PyTorch 1.13
 * (data/shape_ref.h, made by data/gen_shape.py) for cat, stack, expand, repeat, flip, narrow,
 * index_select, gather, scatter_add, embedding, split and chunk; the node's edges; which
 * results share storage; every error with its message; running out of memory at every
 * allocation. Gradients are also checked numerically by test_gradcheck.c (gradcheck/shape.h).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "data/shape_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Outputs, and the gradients of every op but repeat, are computed with PyTorch's float
 * operations in its order: the same bits (NaN any NaN). repeat's gradient sums the tiles in
 * another order than PyTorch's reduction: within 1e-6 relative, plus 2e-3 absolute for the
 * cancellation of terms of 1e4 (whose float spacing is 1e-3).
 */
#define SUM_RTOL 1e-6
#define SUM_ATOL 2e-3

static bool same_value(float got, float want, bool exact)
{
    if (isnan(want)) return isnan(got);
    if (exact) return memcmp(&got, &want, sizeof got) == 0;
    return got == want ||
           fabs((double)got - (double)want) <= SUM_ATOL + SUM_RTOL * fabs((double)want);
}

static void check_tensor(const char *name, const char *what, const nb_tensor *got,
                         const shape_ref_tensor *want, bool exact)
{
    if (!got) fail_msg("%s: no %s (%s)", name, what, nb_last_error()->message);
    nb_shape ws = nb_shape_make(want->ndim, want->dims);
    char gs[128], wss[128];
    nb_shape_format(nb_tensor_size(got), gs, sizeof gs);
    nb_shape_format(ws, wss, sizeof wss);
    if (strcmp(gs, wss) != 0) fail_msg("%s: %s has shape %s, want %s", name, what, gs, wss);
    const float *g = nb_tensor_data_const(got);
    for (int64_t i = 0; i < nb_tensor_numel(got); i++)
        if (!same_value(g[i], want->data[i], exact))
            fail_msg("%s: %s element %lld: got %a, want %a", name, what, (long long)i, (double)g[i],
                     (double)want->data[i]);
}

static nb_tensor *ref_tensor(const shape_ref_tensor *r)
{
    nb_tensor *t = nb_from_data(r->data, nb_shape_make(r->ndim, r->dims));
    assert_non_null(t);
    return t;
}

/* The case's op on inputs x: its outputs into out; the count, or negative on error. */
static int call_op(const shape_ref_case *c, nb_tensor **x, nb_tensor **out)
{
    int d[8];
    for (int i = 0; i < c->n_args && i < 8; i++) d[i] = (int)c->args[i];
    switch (c->op) {
    case SHAPE_REF_CAT:
        out[0] = nb_cat(x, c->n_in, c->dim);
        break;
    case SHAPE_REF_STACK:
        out[0] = nb_stack(x, c->n_in, c->dim);
        break;
    case SHAPE_REF_EXPAND:
        out[0] = nb_expand(x[0], nb_shape_make(c->n_args, c->args));
        break;
    case SHAPE_REF_REPEAT:
        out[0] = nb_repeat(x[0], nb_shape_make(c->n_args, c->args));
        break;
    case SHAPE_REF_FLIP:
        out[0] = nb_flip(x[0], nb_dims_make(c->n_args, d));
        break;
    case SHAPE_REF_NARROW:
        out[0] = nb_narrow(x[0], c->dim, c->args[0], c->args[1]);
        break;
    case SHAPE_REF_INDEX_SELECT:
        out[0] = nb_index_select(x[0], c->dim, x[1]);
        break;
    case SHAPE_REF_GATHER:
        out[0] = nb_gather(x[0], c->dim, x[1]);
        break;
    case SHAPE_REF_SCATTER_ADD:
        out[0] = nb_scatter_add(x[0], c->dim, x[1], x[2]);
        break;
    case SHAPE_REF_EMBEDDING:
        out[0] = nb_embedding(x[0], x[1], c->args[0]);
        break;
    case SHAPE_REF_SPLIT:
        return nb_split(x[0], c->args[0], c->dim, out, SHAPE_REF_MAXOUT);
    case SHAPE_REF_CHUNK:
        return nb_chunk(x[0], (int)c->args[0], c->dim, out, SHAPE_REF_MAXOUT);
    default:
        fail_msg("%s: unknown op %d", c->name, c->op);
    }
    return out[0] ? 1 : -1;
}

/* ---- against PyTorch -------------------------------------------------------------------- */

static void run_case(const shape_ref_case *c)
{
    nb_tensor *x[SHAPE_REF_MAXIN] = {NULL}, *out[SHAPE_REF_MAXOUT] = {NULL};
    for (int i = 0; i < c->n_in; i++) {
        x[i] = ref_tensor(&c->in[i]);
        if (c->diff & (1u << i)) assert_non_null(nb_requires_grad_(x[i], true));
    }
    int n = call_op(c, x, out);
    if (n != c->n_out)
        fail_msg("%s: %d outputs, want %d (%s)", c->name, n, c->n_out,
                 n < 0 ? nb_last_error()->message : "");
    for (int j = 0; j < n; j++) {
        check_tensor(c->name, "output", out[j], &c->out[j], true);
        assert_string_equal(nb_node_name(nb_tensor_grad_fn(out[j])), c->node);
    }

    nb_tensor *used[SHAPE_REF_MAXOUT], *gy[SHAPE_REF_MAXOUT], *leaves[SHAPE_REF_MAXIN];
    nb_tensor *grads[SHAPE_REF_MAXIN] = {NULL};
    int nu = 0, nl = 0;
    for (int j = 0; j < n; j++) {
        if (c->grad_out[j].ndim < 0) continue;
        used[nu] = out[j];
        gy[nu++] = ref_tensor(&c->grad_out[j]);
    }
    for (int i = 0; i < c->n_in; i++)
        if (c->diff & (1u << i)) leaves[nl++] = x[i];
    nb_grad_options keep = {.retain_graph = true};
    if (nb_grad(used, nu, leaves, nl, (const nb_tensor *const *)gy, &keep, grads) != NB_OK)
        fail_msg("%s: nb_grad: %s", c->name, nb_last_error()->message);
    for (int i = 0, k = 0; i < c->n_in; i++) {
        if (!(c->diff & (1u << i))) continue;
        char what[32];
        snprintf(what, sizeof what, "gradient of input %d", i);
        check_tensor(c->name, what, grads[k], &c->grad_in[i], c->exact);
        nb_release(grads[k++]);
    }
    /* twice into .grad: the second backward adds into the .grad it is lent */
    for (int pass = 0; pass < 2; pass++)
        if (nb_grad(used, nu, leaves, nl, (const nb_tensor *const *)gy, &keep, NULL) != NB_OK)
            fail_msg("%s: backward %d: %s", c->name, pass, nb_last_error()->message);
    for (int i = 0; i < c->n_in; i++) {
        if (!(c->diff & (1u << i))) continue;
        const shape_ref_tensor *r = &c->grad_in[i];
        float twice[512];
        int64_t numel = 1;
        for (int d = 0; d < r->ndim; d++) numel *= r->dims[d];
        assert_true(numel <= (int64_t)ARRAY_LEN(twice));
        for (int64_t k = 0; k < numel; k++) twice[k] = 2.0f * r->data[k];
        shape_ref_tensor want = *r;
        want.data = twice;
        check_tensor(c->name, "accumulated .grad", nb_tensor_grad(x[i]), &want, false);
    }
    for (int j = 0; j < nu; j++) nb_release(gy[j]);
    for (int j = 0; j < n; j++) nb_release(out[j]);
    for (int i = 0; i < c->n_in; i++) nb_release(x[i]);
}

static void test_reference(void **state)
{
    (void)state;
    for (size_t k = 0; k < ARRAY_LEN(shape_ref_cases); k++) run_case(&shape_ref_cases[k]);
}

/* ---- helpers for the tests below -------------------------------------------------------- */

static nb_tensor *grad_leaf(nb_shape s)
{
    nb_tensor *t = nb_randn(s);
    assert_non_null(nb_requires_grad_(t, true));
    return t;
}

static nb_tensor *from(const float *v, nb_shape s)
{
    nb_tensor *t = nb_from_data(v, s);
    assert_non_null(t);
    return t;
}

/* ---- nodes, edges and storage ----------------------------------------------------------- */

static void test_cat_many(void **state)
{
    (void)state;
    enum { N = 100 };
    nb_tensor *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = nb_full(NB_SHAPE(1, 2), (float)i);
        if (i % 3 == 0) assert_non_null(nb_requires_grad_(t[i], true));
    }
    nb_tensor *y = nb_cat(t, N, 0);
    assert_non_null(y);
    assert_int_equal(nb_tensor_dim_size(y, 0), N);
    nb_node *node = nb_tensor_grad_fn(y);
    assert_string_equal(nb_node_name(node), "CatBackward0");
    assert_int_equal(nb_node_num_next(node), N); /* one edge per tensor, empty for constants */
    for (int i = 0; i < N; i++) {
        int nr;
        nb_node *next = nb_node_next(node, i, &nr);
        if (i % 3 == 0)
            assert_string_equal(nb_node_name(next), "AccumulateGrad");
        else
            assert_null(next);
    }
    /* sum(y · row index): each piece's gradient is its own row index */
    nb_scope *sc = nb_scope_begin();
    nb_tensor *w = nb_reshape(nb_arange(0, N, 1), NB_SHAPE(N, 1));
    assert_int_equal(nb_backward(nb_sum(nb_mul(y, w), NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    for (int i = 0; i < N; i += 3) {
        const float *g = nb_tensor_data_const(nb_tensor_grad(t[i]));
        assert_true(g[0] == (float)i && g[1] == (float)i);
    }
    nb_release(y);
    for (int i = 0; i < N; i++) nb_release(t[i]);
}

/* the same tensor twice in a list: both gradients reach it and add */
static void test_cat_repeated_input(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_arange(0, 3, 1), true);
    nb_tensor *y = nb_stack((nb_tensor *[]){x, x, x}, 3, 0);
    nb_tensor *z = nb_cat((nb_tensor *[]){x, y, x}, 3, -1); /* [3] with [3, 3]: error */
    assert_null(z);
    assert_error(NB_ESHAPE, "nb_cat: tensors must have same number of dimensions: got 1 and 2");
    z = nb_cat((nb_tensor *[]){x, x}, 2, 0);
    nb_tensor *gz = from((const float[]){1, 2, 3, 10, 20, 30}, NB_SHAPE(6));
    assert_int_equal(nb_backward(z, gz, false), NB_OK);
    assert_string_equal(nbt_repr(nb_tensor_grad(x)), "tensor([11., 22., 33.])");
    nb_tensor *gy = from((const float[]){1, 1, 1, 2, 2, 2, 4, 4, 4}, NB_SHAPE(3, 3));
    assert_int_equal(nb_backward(y, gy, false), NB_OK);
    assert_string_equal(nbt_repr(nb_tensor_grad(x)), "tensor([18., 29., 40.])");
    nb_release(gy);
    nb_release(gz);
    nb_release(z);
    nb_release(y);
    nb_release(x);
}

/* Which results are views of their input: narrow along dim 0, an expand that repeats nothing */
static void test_views_and_copies(void **state)
{
    (void)state;
    nb_tensor *x = grad_leaf(NB_SHAPE(4, 3));
    nb_tensor *one = grad_leaf(NB_SHAPE(3));
    struct {
        nb_tensor *y;
        bool shares;
    } r[] = {
        {nb_narrow(x, 0, 1, 2), true},
        {nb_narrow(x, 1, 1, 2), false},
        {nb_expand(one, NB_SHAPE(1, 3)), true},
        {nb_expand(one, NB_SHAPE(-1)), true},
        {nb_expand(one, NB_SHAPE(2, 3)), false},
        {nb_cat(&x, 1, 0), false},
        {nb_stack(&x, 1, 0), false},
        {nb_repeat(x, NB_SHAPE(1, 1)), false},
        {nb_flip(x, (nb_dims){0}), false},
    };
    for (size_t i = 0; i < ARRAY_LEN(r); i++) {
        assert_non_null(r[i].y);
        if (nb_tensor_shares_storage(r[i].y, i < 2 ? x : i < 5 ? one : x) != r[i].shares)
            fail_msg("result %zu: shares storage %d, want %d", i, !r[i].shares, r[i].shares);
    }
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(r[0].y)), "SliceBackward0");
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(r[2].y)), "ExpandBackward0");
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(r[8].y)), "FlipBackward0");
    /* a view of a leaf that requires grad is refused in place, as in PyTorch */
    assert_int_equal(nb_fill_(r[2].y, 1.0f), NB_ESTATE);
    assert_error(NB_ESTATE, "a view of a leaf Variable that requires grad");
    for (size_t i = 0; i < ARRAY_LEN(r); i++) nb_release(r[i].y);

    /* under no_grad: no node, and the results do not require grad */
    bool was = nb_set_grad_enabled(false);
    nb_tensor *idx = nb_zeros(NB_SHAPE(1, 3)), *idx1 = nb_zeros(NB_SHAPE(2));
    nb_tensor *n[] = {nb_cat(&x, 1, 0),
                      nb_stack(&x, 1, 0),
                      nb_expand(one, NB_SHAPE(2, 3)),
                      nb_repeat(one, NB_SHAPE(2)),
                      nb_flip(x, NB_DIMS(0)),
                      nb_narrow(x, 1, 0, 1),
                      nb_index_select(x, 0, idx1),
                      nb_gather(x, 0, idx),
                      nb_scatter_add(x, 0, idx, x),
                      nb_embedding(x, idx, NB_NO_PADDING)};
    nb_set_grad_enabled(was);
    for (size_t i = 0; i < ARRAY_LEN(n); i++) {
        assert_non_null(n[i]);
        assert_null(nb_tensor_grad_fn(n[i]));
        assert_false(nb_tensor_requires_grad(n[i]));
        nb_release(n[i]);
    }
    nb_release(idx1);
    nb_release(idx);
    nb_release(one);
    nb_release(x);
}

/* Index ops: the index gets no edge, even when it requires grad; its values are saved. */
static void test_index_edges_and_saving(void **state)
{
    (void)state;
    nb_tensor *x = grad_leaf(NB_SHAPE(3, 4)), *src = grad_leaf(NB_SHAPE(1, 4));
    nb_tensor *idx = from((const float[]){2, 0, 1, 2}, NB_SHAPE(1, 4));
    nb_tensor *idx1 = from((const float[]){2, 0, 1, 2}, NB_SHAPE(4));
    assert_non_null(nb_requires_grad_(idx, true));
    assert_non_null(nb_requires_grad_(idx1, true));
    nb_tensor *ys[] = {nb_gather(x, 0, idx), nb_scatter_add(x, 0, idx, src),
                       nb_index_select(x, 1, idx1), nb_embedding(x, idx, 0)};
    int edges[] = {1, 2, 1, 1};
    for (size_t i = 0; i < ARRAY_LEN(ys); i++) {
        assert_non_null(ys[i]);
        assert_int_equal(nb_node_num_next(nb_tensor_grad_fn(ys[i])), edges[i]);
    }
    /* changing the index after the forward: its backward refuses, naming the op */
    nb_tensor *g = nb_ones_like(ys[0]);
    nb_requires_grad_(idx, false);
    assert_int_equal(nb_fill_(idx, 0.0f), NB_OK);
    assert_int_equal(nb_backward(ys[0], g, false), NB_ESTATE);
    assert_error(NB_ESTATE, "which is an input saved by GatherBackward0, is at version 1; "
                            "expected version 0 instead");
    /* scatter_add saves the index only for src's gradient: x's gradient needs none */
    nb_tensor *src_c = nb_detach(src);
    nb_tensor *y2 = nb_scatter_add(x, 0, idx, src_c);
    assert_int_equal(nb_fill_(idx, 1.0f), NB_OK);
    nb_tensor *g2 = nb_ones_like(y2);
    assert_int_equal(nb_backward(y2, g2, false), NB_OK);
    assert_non_null(nb_tensor_grad(x));
    nb_release(g2);
    nb_release(y2);
    nb_release(src_c);
    nb_release(idx1);
    nb_release(g);
    for (size_t i = 0; i < ARRAY_LEN(ys); i++) nb_release(ys[i]);
    nb_release(idx);
    nb_release(src);
    nb_release(x);
}

/* An embedding row used by several ids, the padding row by some: the known sums */
static void test_embedding_padding(void **state)
{
    (void)state;
    nb_tensor *w0 = nb_arange(0, 8, 1),
              *w = nb_requires_grad_(nb_reshape(w0, NB_SHAPE(4, 2)), true);
    nb_release(w0);
    nb_tensor *ids = from((const float[]){3, 1, 3, -0.0f, 1, 1}, NB_SHAPE(2, 3));
    nb_tensor *y = nb_embedding(w, ids, -1); /* the last row, 3 */
    assert_string_equal(nbt_repr(y), "tensor([[[6., 7.],\n"
                                     "         [2., 3.],\n"
                                     "         [6., 7.]],\n"
                                     "\n"
                                     "        [[0., 1.],\n"
                                     "         [2., 3.],\n"
                                     "         [2., 3.]]], grad_fn=<EmbeddingBackward0>)");
    nb_tensor *l = nb_sum(y, NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_string_equal(nbt_repr(nb_tensor_grad(w)), "tensor([[1., 1.],\n"
                                                     "        [3., 3.],\n"
                                                     "        [0., 0.],\n"
                                                     "        [0., 0.]])");
    nb_release(l);
    nb_release(y);
    nb_release(ids);
    nb_release(w);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void test_join_errors(void **state)
{
    (void)state;
    nb_tensor *a = nb_zeros(NB_SHAPE(2, 3)), *b = nb_zeros(NB_SHAPE(2, 4)),
              *e = nb_zeros(NB_SHAPE(0));
    nb_tensor *s = nb_scalar(1), *v = nb_zeros(NB_SHAPE(3));
    nb_tensor *big = nb_zeros(NB_SHAPE(1, 1, 1, 1, 1, 1, 1, 1));
    nb_error_clear();
    assert_null(nb_cat((nb_tensor *[]){a}, 0, 0));
    assert_error(NB_EINVAL, "nb_cat: expected a non-empty list of tensors (got 0 tensors)");
    assert_null(nb_cat(NULL, 2, 0));
    assert_error(NB_EINVAL, "nb_cat: argument 'tensors' is NULL");
    assert_null(nb_cat((nb_tensor *[]){a, NULL}, 2, 0));
    assert_error(NB_EINVAL, "nb_cat: argument 'tensors[1]' is NULL");
    assert_null(nb_cat((nb_tensor *[]){e, s}, 2, 0));
    assert_error(NB_EINVAL,
                 "nb_cat: zero-dimensional tensor (at position 1) cannot be concatenated");
    assert_null(nb_cat((nb_tensor *[]){e, a, b}, 3, 0));
    assert_error(NB_ESHAPE, "nb_cat: sizes of tensors must match except in dimension 0. Expected "
                            "size 3 but got size 4 for tensor number 2 in the list");
    assert_null(nb_cat((nb_tensor *[]){a, v}, 2, 0));
    assert_error(NB_ESHAPE, "nb_cat: tensors must have same number of dimensions: got 2 and 1");
    assert_null(nb_cat((nb_tensor *[]){e, a}, 2, 2));
    assert_error(NB_EINVAL, "nb_cat: dimension out of range (expected to be in range of [-2, 1], "
                            "but got 2)");
    nb_tensor *ok = nb_cat((nb_tensor *[]){a, b}, 2, -1);
    assert_int_equal(nb_tensor_dim_size(ok, 1), 7);
    nb_release(ok);

    assert_null(nb_stack((nb_tensor *[]){a}, -1, 0));
    assert_error(NB_EINVAL, "nb_stack: stack expects a non-empty list of tensors (got -1 tensors)");
    assert_null(nb_stack((nb_tensor *[]){a, b}, 2, 0));
    assert_error(NB_ESHAPE, "nb_stack: stack expects each tensor to be equal size, but got [2, 3] "
                            "at entry 0 and [2, 4] at entry 1");
    assert_null(nb_stack((nb_tensor *[]){a, a}, 2, 3));
    assert_error(NB_EINVAL, "nb_stack: dimension out of range (expected to be in range of [-3, 2], "
                            "but got 3)");
    assert_null(nb_stack((nb_tensor *[]){a, a}, 2, -4));
    assert_error(NB_EINVAL, "nb_stack: dimension out of range (expected to be in range of [-3, 2], "
                            "but got -4)");
    assert_null(nb_stack((nb_tensor *[]){big}, 1, 0));
    assert_error(NB_EINVAL, "nb_stack: a tensor can have at most 8 dimensions");

    /* a NULL entry keeps the error that made it */
    nb_error_clear();
    nb_tensor *bad = nb_reshape(a, NB_SHAPE(7));
    assert_null(nb_stack((nb_tensor *[]){a, bad}, 2, 0));
    assert_error(NB_ESHAPE, "nb_reshape: shape '[7]' is invalid for input of size 6");
    assert_null(nb_cat((nb_tensor *[]){bad}, 1, 0)); /* the error was read: a NULL entry now */
    assert_error(NB_EINVAL, "nb_cat: argument 'tensors[0]' is NULL");
    nb_release(big);
    nb_release(v);
    nb_release(s);
    nb_release(e);
    nb_release(b);
    nb_release(a);
}

/*
 * An empty tensor whose other dims multiply past INT64_MAX ([0, 2^62, 3] is valid): every op
 * that sees it as outer x size x inner, or computes its strides, makes an empty result and
 * backwards through it (a product that overflowed was undefined behaviour). Along an empty dim
 * of [0, 2^62] the slices around it are 2^62 and empty: no loop may visit them one by one.
 */
static void test_empty_huge_dims(void **state)
{
    (void)state;
    const int64_t huge = (int64_t)1 << 62;
    nb_tensor *x = nb_requires_grad_(nb_zeros(NB_SHAPE(0, huge, 3)), true);
    nb_tensor *one = nb_zeros(NB_SHAPE(1)), *row = nb_zeros(NB_SHAPE(0, 1, 1));
    nb_requires_grad_(row, true);
    nb_tensor *col = nb_requires_grad_(nb_zeros(NB_SHAPE(0, huge)), true);
    nb_tensor *ys[] = {
        nb_softmax(x, 1),
        nb_log_softmax(x, 0),
        nb_softmax(col, 0),
        nb_log_softmax(col, -2),
        nb_sum(x, NB_DIMS(1), true),
        nb_amax(x, NB_DIMS(2), false),
        nb_flip(x, NB_DIMS(0, 2)),
        nb_repeat(row, NB_SHAPE(1, huge, 3)),
        nb_index_select(x, 2, one),
        nb_layer_norm(x, NB_SHAPE(huge, 3), NULL, NULL, 1e-5),
        nb_cat((nb_tensor *[]){x, x}, 2, 2),
        nb_add(x, one),
    };
    /* one piece of all of dim 1, whose size plus the piece's overflowed */
    nb_tensor *pieces[2] = {NULL, NULL};
    assert_int_equal(nb_chunk(x, 1, 1, pieces, 2), 1);
    assert_int_equal(nb_tensor_shape(pieces[0])[1], huge);
    nb_release(pieces[0]);
    assert_int_equal(nb_split(x, INT64_MAX, 1, pieces, 2), 1);
    nb_release(pieces[0]);
    nb_tensor *loss = nb_scalar(0);
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) {
        if (!ys[i]) fail_msg("op %zu: %s", i, nb_last_error()->message);
        assert_int_equal(nb_tensor_numel(ys[i]), 0);
        nb_tensor *part = nb_sum(ys[i], NB_DIMS_ALL, false), *s = nb_add(loss, part);
        nb_release(part);
        nb_release(loss);
        loss = s;
    }
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_int_equal(nb_tensor_numel(nb_tensor_grad(x)), 0);
    assert_int_equal(nb_tensor_numel(nb_tensor_grad(row)), 0);
    assert_int_equal(nb_tensor_numel(nb_tensor_grad(col)), 0);
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) nb_release(ys[i]);
    nb_release(loss);
    nb_release(row);
    nb_release(col);
    nb_release(one);
    nb_release(x);
}

static void test_expand_repeat_flip_narrow_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_zeros(NB_SHAPE(2, 3)), *s = nb_scalar(1);
    nb_error_clear();
    assert_null(nb_expand(x, NB_SHAPE(3)));
    assert_error(NB_EINVAL, "nb_expand: the number of sizes provided (1) must be greater or equal "
                            "to the number of dimensions in the tensor (2)");
    assert_null(nb_expand(x, NB_SHAPE(2, 4)));
    assert_error(NB_ESHAPE, "nb_expand: the expanded size of the tensor (4) must match the "
                            "existing size (3) at non-singleton dimension 1 (target sizes [2, 4], "
                            "tensor sizes [2, 3])");
    assert_null(nb_expand(x, NB_SHAPE(-1, 2, 3)));
    assert_error(NB_EINVAL, "nb_expand: the expanded size of the tensor (-1) isn't allowed in a "
                            "leading, non-existing dimension 0");
    assert_null(nb_expand(s, NB_SHAPE(-2)));
    assert_error(NB_EINVAL, "nb_expand: the expanded size of the tensor (-2) isn't allowed");
    assert_null(nb_expand(x, NB_SHAPE(2, -3)));
    assert_error(NB_EINVAL, "nb_expand: the expanded size of the tensor (-3) at dimension 1 is "
                            "negative (-1 keeps a size)");
    assert_null(nb_expand(x, nb_shape_make(9, NULL)));
    assert_error(NB_EINVAL, "nb_expand: number of dimensions 9 is outside [0, 8]");
    assert_null(nb_expand(s, NB_SHAPE(INT64_MAX, 2)));
    assert_error(NB_ERANGE, "nb_expand: shape [9223372036854775807, 2] has too many elements");

    assert_null(nb_repeat(x, NB_SHAPE(2)));
    assert_error(NB_EINVAL, "nb_repeat: number of repeat dims (1) can not be smaller than number "
                            "of dimensions of tensor (2)");
    assert_null(nb_repeat(x, NB_SHAPE(1, -1)));
    assert_error(NB_EINVAL, "nb_repeat: repeats must be >= 0, got -1 at dimension 1");
    assert_null(nb_repeat(x, NB_SHAPE(INT64_MAX, 1)));
    assert_error(NB_ERANGE, "nb_repeat: repeating dimension 0 9223372036854775807 times overflows");
    assert_null(nb_repeat(x, nb_shape_make(9, NULL)));
    assert_error(NB_EINVAL, "nb_repeat: number of repeat dims 9 is more than 8");

    assert_null(nb_flip(x, NB_DIMS(0, -2)));
    assert_error(NB_EINVAL, "nb_flip: dim 0 appears multiple times in the list of dims");
    nb_tensor *s0 = nb_scalar(2); /* torch.flip(torch.tensor(2.), [0, -1]) fails too */
    assert_null(nb_flip(s0, NB_DIMS(0, -1)));
    assert_error(NB_EINVAL, "nb_flip: dim 0 appears multiple times in the list of dims");
    nb_release(s0);
    assert_null(nb_flip(x, NB_DIMS(2)));
    assert_error(NB_EINVAL, "nb_flip: dimension out of range (expected to be in range of [-2, 1], "
                            "but got 2)");
    assert_null(nb_flip(s, NB_DIMS(1)));
    assert_error(NB_EINVAL, "nb_flip: dimension out of range (expected to be in range of [-1, 0], "
                            "but got 1)");

    assert_null(nb_narrow(s, 0, 0, 1));
    assert_error(NB_EINVAL, "nb_narrow: narrow() cannot be applied to a 0-dim tensor");
    assert_null(nb_narrow(x, 2, 0, 1));
    assert_error(NB_EINVAL,
                 "nb_narrow: dimension out of range (expected to be in range of [-2, 1], "
                 "but got 2)");
    assert_null(nb_narrow(x, 1, -4, 1));
    assert_error(NB_EINVAL, "nb_narrow: start -4 is out of range for dimension 1 of size 3 "
                            "(expected to be in range of [-3, 3])");
    assert_null(nb_narrow(x, 1, 4, 0));
    assert_error(NB_EINVAL, "nb_narrow: start 4 is out of range");
    assert_null(nb_narrow(x, 1, 2, 2));
    assert_error(NB_EINVAL, "nb_narrow: start (2) + length (2) exceeds dimension size (3)");
    assert_null(nb_narrow(x, 1, -1, -1));
    assert_error(NB_EINVAL, "nb_narrow: start (2) + length (-1) exceeds dimension size (3)");
    assert_null(nb_slice(s, 0, 0, 1, 1)); /* slice's own name in the message */
    assert_error(NB_EINVAL, "nb_slice: slice() cannot be applied to a 0-dim tensor");

    nb_error_clear();
    assert_null(nb_expand(NULL, NB_SHAPE(2)));
    assert_error(NB_EINVAL, "nb_expand: argument 't' is NULL");
    assert_null(nb_repeat(NULL, NB_SHAPE(2)));
    assert_error(NB_EINVAL, "nb_repeat: argument 't' is NULL");
    assert_null(nb_flip(NULL, NB_DIMS(0)));
    assert_error(NB_EINVAL, "nb_flip: argument 't' is NULL");
    assert_null(nb_narrow(NULL, 0, 0, 1));
    assert_error(NB_EINVAL, "nb_narrow: argument 't' is NULL");
    nb_release(s);
    nb_release(x);
}

static void test_index_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_zeros(NB_SHAPE(3, 4)), *s = nb_scalar(1);
    nb_tensor *w = nb_zeros(NB_SHAPE(10, 2)), *w1 = nb_zeros(NB_SHAPE(10));
    nb_tensor *i1 = from((const float[]){0, 2, 3}, NB_SHAPE(3));
    nb_tensor *i2 = from((const float[]){0, 1, 1, 12, 0, 0, 0, 0}, NB_SHAPE(2, 4));
    nb_tensor *ifrac = from((const float[]){0, 1.5f}, NB_SHAPE(1, 2));
    nb_tensor *ineg = from((const float[]){0, -1}, NB_SHAPE(2));
    nb_tensor *inan = from((const float[]){NAN}, NB_SHAPE(1, 1));
    nb_tensor *iinf = from((const float[]){INFINITY}, NB_SHAPE0);
    nb_tensor *ibig = from((const float[]){1e20f}, NB_SHAPE(1));
    nb_tensor *i0 = nb_zeros(NB_SHAPE(0)), *i00 = nb_zeros(NB_SHAPE(0, 9, 9));
    nb_error_clear();

    assert_null(nb_index_select(x, 0, i1));
    assert_error(NB_EINVAL, "nb_index_select: index 3 at position [2] is out of range for "
                            "dimension 0 with size 3");
    assert_null(nb_index_select(x, 1, ineg));
    assert_error(NB_EINVAL, "nb_index_select: index -1 at position [1] is out of range for "
                            "dimension 1 with size 4");
    assert_null(nb_index_select(x, 0, i2));
    assert_error(NB_EINVAL, "nb_index_select: index must be 0-d or 1-D, got 2 dimensions");
    assert_null(nb_index_select(x, 2, i1));
    assert_error(NB_EINVAL, "nb_index_select: dimension out of range (expected to be in range of "
                            "[-2, 1], but got 2)");
    assert_null(nb_index_select(s, 0, ineg));
    assert_error(NB_EINVAL, "nb_index_select: a 0-d input takes an index of one element, got 2");
    assert_null(nb_index_select(x, 0, ibig));
    assert_error(NB_EINVAL, "nb_index_select: index 1.00000002e+20 at position [0] is out of "
                            "range");
    assert_null(nb_index_select(x, 0, iinf));
    assert_error(NB_EINVAL, "nb_index_select: index inf at position [] is not an integer");

    assert_null(nb_gather(x, 1, i2));
    assert_error(NB_EINVAL, "nb_gather: index 12 at position [0, 3] is out of range for "
                            "dimension 1 with size 4");
    assert_null(nb_gather(x, 1, ifrac));
    assert_error(NB_EINVAL, "nb_gather: index 1.5 at position [0, 1] is not an integer");
    assert_null(nb_gather(x, 0, inan));
    assert_error(NB_EINVAL, "nb_gather: index nan at position [0, 0] is not an integer");
    assert_null(nb_gather(x, 0, i1));
    assert_error(NB_ESHAPE, "nb_gather: index tensor must have the same number of dimensions as "
                            "input tensor (1 and 2)");
    nb_tensor *i51 = nb_zeros(NB_SHAPE(5, 1));
    assert_null(nb_gather(x, 1, i51));
    assert_error(NB_ESHAPE, "nb_gather: expected index [5, 1] to be smaller than self [3, 4] apart "
                            "from dimension 1");
    nb_tensor *g = nb_gather(x, 0, i51); /* larger along dim itself: fine */
    assert_int_equal(nb_tensor_dim_size(g, 0), 5);
    nb_release(g);
    g = nb_gather(x, 1, i00); /* an empty index: no shape check, its shape */
    assert_int_equal(nb_tensor_ndim(g), 3);
    nb_release(g);

    nb_tensor *src24 = nb_ones(NB_SHAPE(2, 4)), *src1 = nb_ones(NB_SHAPE(4));
    assert_null(nb_scatter_add(x, 0, i2, src24));
    assert_error(NB_EINVAL, "nb_scatter_add: index 12 at position [0, 3] is out of range for "
                            "dimension 0 with size 3");
    nb_tensor *i34 = nb_zeros(NB_SHAPE(3, 4)), *i25 = nb_zeros(NB_SHAPE(2, 5));
    assert_null(nb_scatter_add(x, 0, i34, src24));
    assert_error(NB_ESHAPE, "nb_scatter_add: expected index [3, 4] to be smaller than self [3, 4] "
                            "apart from dimension 0 and to be smaller than src [2, 4]");
    assert_null(nb_scatter_add(x, 0, i25, i25));
    assert_error(NB_ESHAPE, "nb_scatter_add: expected index [2, 5] to be smaller than self [3, 4]");
    assert_null(nb_scatter_add(x, 0, i1, src1));
    assert_error(NB_ESHAPE, "nb_scatter_add: index tensor must have the same number of dimensions "
                            "as self tensor (1 and 2)");
    assert_null(nb_scatter_add(x, 0, i34, src1));
    assert_error(NB_ESHAPE, "nb_scatter_add: index tensor must have the same number of dimensions "
                            "as src tensor (2 and 1)");
    assert_null(nb_scatter_add(x, -3, i34, i34));
    assert_error(NB_EINVAL, "nb_scatter_add: dimension out of range");
    nb_tensor *sa = nb_scatter_add(x, 0, i0, s); /* an empty index: no shape check */
    assert_non_null(sa);
    nb_release(sa);

    assert_null(nb_embedding(w, i2, NB_NO_PADDING));
    assert_error(NB_EINVAL, "nb_embedding: id 12 at position [0, 3] is out of range for 10 rows");
    assert_null(nb_embedding(w, ineg, NB_NO_PADDING));
    assert_error(NB_EINVAL, "nb_embedding: id -1 at position [1] is out of range for 10 rows");
    assert_null(nb_embedding(w, ifrac, 3));
    assert_error(NB_EINVAL, "nb_embedding: id 1.5 at position [0, 1] is not an integer");
    assert_null(nb_embedding(w1, i1, 3));
    assert_error(NB_EINVAL, "nb_embedding: weight must be 2-D, got [10]");
    assert_null(nb_embedding(w, i1, 10));
    assert_error(NB_EINVAL, "nb_embedding: padding_idx 10 must be within num_embeddings (in [-10, "
                            "9], or NB_NO_PADDING)");
    assert_null(nb_embedding(w, i1, -11));
    assert_error(NB_EINVAL, "nb_embedding: padding_idx -11 must be within num_embeddings");
    nb_tensor *i8 = nb_zeros(NB_SHAPE(1, 1, 1, 1, 1, 1, 1, 1));
    assert_null(nb_embedding(w, i8, 0));
    assert_error(NB_EINVAL, "nb_embedding: ids of 8 dimensions leave no room for the embedding "
                            "dimension");

    /* NULL arguments keep a pending error */
    nb_error_clear();
    assert_null(nb_gather(x, 0, NULL));
    assert_error(NB_EINVAL, "nb_gather: argument 'index' is NULL");
    assert_null(nb_index_select(NULL, 0, i1));
    assert_error(NB_EINVAL, "nb_index_select: argument 'x' is NULL");
    assert_null(nb_scatter_add(x, 0, i34, NULL));
    assert_error(NB_EINVAL, "nb_scatter_add: argument 'src' is NULL");
    assert_null(nb_embedding(NULL, i1, 0));
    assert_error(NB_EINVAL, "nb_embedding: argument 'weight' is NULL");
    assert_null(nb_embedding(w, nb_gather(x, 1, i2), 0));
    assert_error(NB_EINVAL, "nb_gather: index 12 at position [0, 3]");

    nb_release(i8);
    nb_release(i25);
    nb_release(i34);
    nb_release(src1);
    nb_release(src24);
    nb_release(i51);
    nb_release(i00);
    nb_release(i0);
    nb_release(ibig);
    nb_release(iinf);
    nb_release(inan);
    nb_release(ineg);
    nb_release(ifrac);
    nb_release(i2);
    nb_release(i1);
    nb_release(w1);
    nb_release(w);
    nb_release(s);
    nb_release(x);
}

/* ---- out of memory ---------------------------------------------------------------------- */

typedef struct oom_inputs {
    nb_tensor *a, *b, *idx, *src, *w, *ids;
} oom_inputs;

typedef nb_tensor *(*oom_fn)(const oom_inputs *in);

static nb_tensor *oom_cat(const oom_inputs *in)
{
    return nb_cat((nb_tensor *[]){in->a, in->b, in->a}, 3, 1);
}
static nb_tensor *oom_stack(const oom_inputs *in)
{
    return nb_stack((nb_tensor *[]){in->a, in->a}, 2, 1);
}
static nb_tensor *oom_expand(const oom_inputs *in)
{
    return nb_expand(in->a, NB_SHAPE(2, 3, 4));
}
static nb_tensor *oom_expand_view(const oom_inputs *in)
{
    return nb_expand(in->a, NB_SHAPE(1, 3, 4));
}
static nb_tensor *oom_repeat(const oom_inputs *in)
{
    return nb_repeat(in->a, NB_SHAPE(2, 1, 2));
}
static nb_tensor *oom_flip(const oom_inputs *in)
{
    return nb_flip(in->a, NB_DIMS(0, 1));
}
static nb_tensor *oom_narrow(const oom_inputs *in)
{
    return nb_narrow(in->a, 1, 1, 2);
}
static nb_tensor *oom_index_select(const oom_inputs *in)
{
    return nb_index_select(in->a, 1, in->ids);
}
static nb_tensor *oom_gather(const oom_inputs *in)
{
    return nb_gather(in->a, 0, in->idx);
}
static nb_tensor *oom_scatter_add(const oom_inputs *in)
{
    return nb_scatter_add(in->a, 0, in->idx, in->src);
}
static nb_tensor *oom_embedding(const oom_inputs *in)
{
    return nb_embedding(in->w, in->ids, 1);
}

/*
 * Every op, failing the k-th allocation for every k, and then its backward: NB_ENOMEM naming
 * the function, nothing leaked, and once nothing fails, a result.
 */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const struct {
        const char *fn;
        oom_fn f;
    } ops[] = {
        {"nb_cat", oom_cat},
        {"nb_stack", oom_stack},
        {"nb_expand", oom_expand},
        {"nb_expand", oom_expand_view},
        {"nb_repeat", oom_repeat},
        {"nb_flip", oom_flip},
        {"nb_narrow", oom_narrow},
        {"nb_index_select", oom_index_select},
        {"nb_gather", oom_gather},
        {"nb_scatter_add", oom_scatter_add},
        {"nb_embedding", oom_embedding},
    };
    oom_inputs in = {grad_leaf(NB_SHAPE(3, 4)),
                     grad_leaf(NB_SHAPE(3, 2)),
                     from((const float[]){2, 0, 1, 1, 0, 2, 2, 2}, NB_SHAPE(2, 4)),
                     grad_leaf(NB_SHAPE(2, 4)),
                     grad_leaf(NB_SHAPE(5, 3)),
                     from((const float[]){1, 3, 1}, NB_SHAPE(3))};
    char want[64];
    for (size_t o = 0; o < ARRAY_LEN(ops); o++) {
        snprintf(want, sizeof want, "%s: out of memory", ops[o].fn);
        for (long k = 1;; k++) {
            nbt_fail_alloc_after(k);
            long live = nbt_alloc_live();
            nb_tensor *y = ops[o].f(&in);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (!failed) {
                assert_non_null(y);
                nb_release(y);
                break;
            }
            if (y) fail_msg("%s: allocation %ld failed, but a result came back", ops[o].fn, k);
            assert_error(NB_ENOMEM, want);
            assert_int_equal(nbt_alloc_live(), live);
        }
        /* the backward, failing at every allocation: no .grad is half made, nothing leaks */
        for (long k = 1;; k++) {
            nb_tensor *y = ops[o].f(&in);
            nb_tensor *g = nb_ones_like(y);
            nbt_fail_alloc_after(k);
            nb_status rc = nb_backward(y, g, false);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            nb_release(g);
            nb_release(y);
            if (!failed) {
                assert_int_equal(rc, NB_OK);
                break;
            }
            assert_int_equal(rc, NB_ENOMEM);
            assert_error(NB_ENOMEM, "nb_backward: out of memory");
        }
    }
    nb_release(in.a);
    nb_release(in.b);
    nb_release(in.idx);
    nb_release(in.src);
    nb_release(in.w);
    nb_release(in.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_cat_many, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_cat_repeated_input, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_views_and_copies, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_index_edges_and_saving, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_embedding_padding, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_join_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_empty_huge_dims, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_expand_repeat_flip_narrow_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_index_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_out_of_memory, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_shape", tests, NULL, NULL);
}
