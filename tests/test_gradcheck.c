/*
 * Gradient check of every op: one table (STYLE.md). Each row names its inputs (shape, how to
 * fill them, whether they require grad) and a function that builds the output from them;
 * nb_gradcheck checks it (with its default tolerances, which fail a derivative 0.5% off) at
 * three seeds, and one backward checks that only the inputs that require grad get a .grad.
 *
 * For L = sum(out ⊙ R), R a fixed random tensor (or, for the rows marked implicit, whose
 * output is 0-d, L = out and backward gets no explicit gradient), the analytic dL/dx from
 * nb_backward is compared, for every input that requires grad, with central differences: one float
 * element at a time is moved by ±h, L is evaluated in double from the float outputs, and the
 * difference is divided by the float step actually taken. Inputs that do not require grad must get
 * no .grad.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "testutil.h"

#define GC_MAX_INPUTS 4

/* How an input is filled. GC_ABSENT (a zero entry) passes NULL in its place. */
typedef enum gc_init {
    GC_ABSENT = 0,
    GC_NORMAL, /* standard normal */
    GC_AWAY,   /* normal pushed away from 0: |x| >= 0.5 (denominators, relu) */
    GC_PROB,   /* uniform in [0.1, 0.9] (targets) */
    GC_POS,    /* uniform in [0.5, 2] (weights) */
} gc_init;

typedef struct gc_input {
    nb_shape shape;
    bool grad;
    gc_init init;
} gc_input;

typedef nb_tensor *(*gc_fn)(nb_tensor *const *x);

typedef struct gc_row {
    const char *name;
    gc_fn f;
    bool implicit; /* a 0-d output: backward with no gradient (taken as 1) */
    gc_input in[GC_MAX_INPUTS];
} gc_row;

/* A shape for a static initializer: S(2, 3) is [2, 3]; S0 is []. */
// clang-format off
#define S(...) {(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}}
#define S0     {0, {0}}
/* Inputs: G requires grad, C is a constant; the suffix says how it is filled. */
#define G(...)  {S(__VA_ARGS__), true, GC_NORMAL}
#define C(...)  {S(__VA_ARGS__), false, GC_NORMAL}
#define GA(...) {S(__VA_ARGS__), true, GC_AWAY}
#define CA(...) {S(__VA_ARGS__), false, GC_AWAY}
#define GP(...) {S(__VA_ARGS__), true, GC_PROB}
#define CP(...) {S(__VA_ARGS__), false, GC_PROB}
#define CW(...) {S(__VA_ARGS__), false, GC_POS}
#define G0      {S0, true, GC_NORMAL}
#define GA0     {S0, true, GC_AWAY}
#define C0      {S0, false, GC_NORMAL}
#define CP0     {S0, false, GC_PROB}
#define NONE    {S0, false, GC_ABSENT}
/* A row: name, function, inputs. ROW_IMPLICIT: a 0-d output, backward with no gradient. */
#define ROW(name, f, ...)          {name, f, false, {__VA_ARGS__}}
#define ROW_IMPLICIT(name, f, ...) {name, f, true, {__VA_ARGS__}}
// clang-format on

/* ---- the functions the rows differentiate ---------------------------------------------- */

static nb_tensor *f_add(nb_tensor *const *x)
{
    return nb_add(x[0], x[1]);
}

static nb_tensor *f_sub(nb_tensor *const *x)
{
    return nb_sub(x[0], x[1]);
}

static nb_tensor *f_mul(nb_tensor *const *x)
{
    return nb_mul(x[0], x[1]);
}

static nb_tensor *f_div(nb_tensor *const *x)
{
    return nb_div(x[0], x[1]);
}

static nb_tensor *f_square(nb_tensor *const *x)
{
    return nb_mul(x[0], x[0]);
}

static nb_tensor *f_add_scalar(nb_tensor *const *x)
{
    return nb_add_scalar(x[0], 1.75f);
}

static nb_tensor *f_sub_scalar(nb_tensor *const *x)
{
    return nb_sub_scalar(x[0], -0.5f);
}

static nb_tensor *f_mul_scalar(nb_tensor *const *x)
{
    return nb_mul_scalar(x[0], -2.5f);
}

static nb_tensor *f_div_scalar(nb_tensor *const *x)
{
    return nb_div_scalar(x[0], 0.3f);
}

static nb_tensor *f_neg(nb_tensor *const *x)
{
    return nb_neg(x[0]);
}

static nb_tensor *f_sigmoid(nb_tensor *const *x)
{
    return nb_sigmoid(x[0]);
}

static nb_tensor *f_relu(nb_tensor *const *x)
{
    return nb_relu(x[0]);
}

static nb_tensor *f_sum(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS_ALL, false);
}

static nb_tensor *f_sum_02_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 2), true);
}

static nb_tensor *f_sum_02(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 2), false);
}

static nb_tensor *f_sum_last(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(-1), false);
}

static nb_tensor *f_sum_1_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(1), true);
}

static nb_tensor *f_sum_all_dims_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 1, 2), true);
}

static nb_tensor *f_mean(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS_ALL, false);
}

static nb_tensor *f_mean_02_keep(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(0, 2), true);
}

static nb_tensor *f_mean_02(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(2, 0), false);
}

static nb_tensor *f_mean_last_keep(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(-1), true);
}

static nb_tensor *f_matmul(nb_tensor *const *x)
{
    return nb_matmul(x[0], x[1]);
}

/* input, target, weight (or NULL), pos_weight (or NULL) */
static nb_tensor *f_bce_none(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_NONE);
}

static nb_tensor *f_bce_mean(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_MEAN);
}

static nb_tensor *f_bce_sum(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_SUM);
}

/* sum(sigmoid(x·w + b) ⊙ c) */
static nb_tensor *f_chain_sigmoid(nb_tensor *const *x)
{
    return nb_sum(nb_mul(nb_sigmoid(nb_add(nb_matmul(x[0], x[1]), x[2])), x[3]), NB_DIMS_ALL,
                  false);
}

/* bce(x·w + b, y), mean: the seed graph of the tutorial */
static nb_tensor *f_chain_bce(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x[0], x[1]), x[2]), x[3], NULL,
                                               NULL, NB_MEAN);
}

/* mean over dim 1 of (x ⊙ sigmoid(x) − x / 3) · relu(w) − neg(x): x reused, w away from 0 */
static nb_tensor *f_chain_reuse(nb_tensor *const *x)
{
    nb_tensor *a = nb_sub(nb_mul(x[0], nb_sigmoid(x[0])), nb_div_scalar(x[0], 3.0f));
    return nb_mean(nb_sub(nb_mul(a, nb_relu(x[1])), nb_neg(x[0])), NB_DIMS(1), false);
}

/* relu(x·w1)·w2, reduced by sum over the last dim, then divided by d */
static nb_tensor *f_chain_mlp(nb_tensor *const *x)
{
    /* relu of an input kept away from 0: a step never crosses the kink */
    nb_tensor *h = nb_matmul(nb_relu(x[0]), x[1]);
    return nb_div(nb_sum(nb_matmul(nb_sigmoid(h), x[2]), NB_DIMS(-1), true), x[3]);
}

/* Pieces of a split used unevenly: the last gets no gradient at all. */
static nb_tensor *f_split_rows(nb_tensor *const *x)
{
    nb_tensor *p[3];
    if (nb_split(x[0], 2, 0, p, 3) != 3) return NULL;
    return nb_add(nb_mul_scalar(p[0], 2.0f), nb_mul(p[1], p[1]));
}

static nb_tensor *f_split_cols(nb_tensor *const *x)
{
    nb_tensor *p[3];
    if (nb_split(x[0], 2, -1, p, 3) != 3) return NULL;
    return nb_mul(p[0], nb_add(p[1], p[2])); /* p[2] is [3, 1]: broadcast */
}

static nb_tensor *f_chunk(nb_tensor *const *x)
{
    nb_tensor *p[2];
    if (nb_chunk(x[0], 2, 1, p, 2) != 2) return NULL;
    return nb_sub(p[1], nb_mul(p[0], x[1]));
}

static nb_tensor *f_reshape(nb_tensor *const *x)
{
    return nb_reshape(x[0], NB_SHAPE(3, -1));
}

static nb_tensor *f_view_mul(nb_tensor *const *x)
{
    return nb_mul(nb_view(x[0], NB_SHAPE(12)), x[1]);
}

static nb_tensor *f_squeeze_all(nb_tensor *const *x)
{
    return nb_squeeze(x[0], NB_DIMS_ALL);
}

static nb_tensor *f_squeeze_1(nb_tensor *const *x)
{
    return nb_squeeze(x[0], NB_DIMS(1));
}

static nb_tensor *f_unsqueeze(nb_tensor *const *x)
{
    return nb_mul(nb_unsqueeze(x[0], -1), x[1]);
}

static nb_tensor *f_flatten(nb_tensor *const *x)
{
    return nb_flatten(x[0], 1, 2);
}

static nb_tensor *f_slice(nb_tensor *const *x)
{
    return nb_slice(x[0], 0, 1, 3, 1);
}

static nb_tensor *f_two_slices(nb_tensor *const *x)
{
    return nb_mul(nb_slice(x[0], 0, 1, 3, 1), nb_slice(x[0], 0, 0, 2, 1));
}

static nb_tensor *f_transpose(nb_tensor *const *x)
{
    return nb_transpose(x[0], 0, 2);
}

static nb_tensor *f_permute(nb_tensor *const *x)
{
    return nb_permute(x[0], NB_DIMS(2, 0, 1));
}

static nb_tensor *f_t(nb_tensor *const *x)
{
    return nb_t(x[0]);
}

static nb_tensor *f_t_matmul(nb_tensor *const *x)
{
    return nb_matmul(nb_t(x[0]), nb_transpose(x[1], 0, 1));
}

/* ---- the table ------------------------------------------------------------------------- */

static gc_row rows[] = {
    /* shape ops: views and copies */
    ROW("reshape [2,6]->[3,-1]", f_reshape, G(2, 6)),
    ROW("view [2,3,2]->[12] * [12]", f_view_mul, G(2, 3, 2), G(12)),
    ROW("squeeze all [2,1,3]", f_squeeze_all, G(2, 1, 3)),
    ROW("squeeze 1 [2,1,3]", f_squeeze_1, G(2, 1, 3)),
    ROW("unsqueeze -1 [2,3] * [2,3,4]", f_unsqueeze, G(2, 3), G(2, 3, 4)),
    ROW("flatten 1..2 [2,3,4]", f_flatten, G(2, 3, 4)),
    ROW("slice 1:3 [4,3]", f_slice, G(4, 3)),
    ROW("slice 1:3 * slice 0:2 [4,3]", f_two_slices, G(4, 3)),
    ROW("transpose 0,2 [2,3,4]", f_transpose, G(2, 3, 4)),
    ROW("permute 2,0,1 [2,3,4]", f_permute, G(2, 3, 4)),
    ROW("t [3,4]", f_t, G(3, 4)),
    ROW("t [5]", f_t, G(5)),
    ROW("t [4,3] @ transpose [5,4]", f_t_matmul, G(4, 3), G(5, 4)),
    /* add, sub, mul, div: equal shapes and broadcasting */
    ROW("add [2,3]+[2,3]", f_add, G(2, 3), G(2, 3)),
    ROW("add [2,3]+[3]", f_add, G(2, 3), G(3)),
    ROW("add [3]+[2,3]", f_add, G(3), G(2, 3)),
    ROW("add [4,1]+[1,5]", f_add, G(4, 1), G(1, 5)),
    ROW("add [2,1,3]+[4,1]", f_add, G(2, 1, 3), G(4, 1)),
    ROW("add []+[3]", f_add, G0, G(3)),
    ROW("add [2,3]+[3] const", f_add, G(2, 3), C(3)),
    ROW("sub [2,3]-[2,3]", f_sub, G(2, 3), G(2, 3)),
    ROW("sub [2,3]-[3]", f_sub, G(2, 3), G(3)),
    ROW("sub [1]-[2,3]", f_sub, G(1), G(2, 3)),
    ROW("sub [4,1]-[1,5]", f_sub, G(4, 1), G(1, 5)),
    ROW("sub [2,1,3]-[4,1]", f_sub, G(2, 1, 3), G(4, 1)),
    ROW("sub [3]-[]", f_sub, G(3), G0),
    ROW("sub const [2,3]-[3]", f_sub, C(2, 3), G(3)),
    ROW("mul [2,3]*[2,3]", f_mul, G(2, 3), G(2, 3)),
    ROW("mul [2,3]*[3]", f_mul, G(2, 3), G(3)),
    ROW("mul [4,1]*[1,5]", f_mul, G(4, 1), G(1, 5)),
    ROW("mul [2,1,3]*[4,1]", f_mul, G(2, 1, 3), G(4, 1)),
    ROW("mul []*[3]", f_mul, G0, G(3)),
    ROW("mul [3]*[] const", f_mul, G(3), C0),
    ROW("mul x*x", f_square, G(2, 3)),
    ROW("div [2,3]/[2,3]", f_div, G(2, 3), GA(2, 3)),
    ROW("div [2,3]/[3]", f_div, G(2, 3), GA(3)),
    ROW("div [3]/[2,3]", f_div, G(3), GA(2, 3)),
    ROW("div [4,1]/[1,5]", f_div, G(4, 1), GA(1, 5)),
    ROW("div [2,1,3]/[4,1]", f_div, G(2, 1, 3), GA(4, 1)),
    ROW("div []/[3]", f_div, G0, GA(3)),
    ROW("div [3]/[]", f_div, G(3), GA0),
    ROW("div const [2,3]/[3]", f_div, C(2, 3), GA(3)),
    ROW("div [2,3]/[3] const", f_div, G(2, 3), CA(3)),
    /* with a number; neg */
    ROW("add_scalar", f_add_scalar, G(2, 3)),
    ROW("sub_scalar", f_sub_scalar, G(2, 3)),
    ROW("mul_scalar", f_mul_scalar, G(2, 3)),
    ROW("div_scalar", f_div_scalar, G(2, 3)),
    ROW("neg", f_neg, G(2, 3)),
    ROW("neg []", f_neg, G0),
    /* unary */
    ROW("sigmoid", f_sigmoid, G(3, 4)),
    ROW("sigmoid []", f_sigmoid, G0),
    ROW("relu", f_relu, GA(3, 4)),
    /* reductions */
    ROW("sum all", f_sum, G(2, 3, 4)),
    ROW("sum all []", f_sum, G0),
    ROW_IMPLICIT("sum all, implicit gradient", f_sum, G(2, 3)),
    ROW("sum {0,2} keepdim", f_sum_02_keep, G(2, 3, 4)),
    ROW("sum {0,2}", f_sum_02, G(2, 3, 4)),
    ROW("sum {-1}", f_sum_last, G(2, 3, 4)),
    ROW("sum {1} keepdim", f_sum_1_keep, G(3, 4)),
    ROW("sum {0,1,2} keepdim", f_sum_all_dims_keep, G(2, 3, 4)),
    ROW("mean all", f_mean, G(2, 3, 4)),
    ROW("mean {0,2} keepdim", f_mean_02_keep, G(2, 3, 4)),
    ROW("mean {2,0}", f_mean_02, G(2, 3, 4)),
    ROW("mean {-1} keepdim", f_mean_last_keep, G(3, 4)),
    /* matmul, every rank combination */
    ROW("matmul 1-D.1-D", f_matmul, G(4), G(4)),
    ROW_IMPLICIT("matmul 1-D.1-D, implicit gradient", f_matmul, G(4), G(4)),
    ROW("matmul 1-D.2-D", f_matmul, G(4), G(4, 3)),
    ROW("matmul 2-D.1-D", f_matmul, G(3, 4), G(4)),
    ROW("matmul 2-D.2-D", f_matmul, G(3, 4), G(4, 5)),
    ROW("matmul 3-D.2-D", f_matmul, G(2, 3, 4), G(4, 5)),
    ROW("matmul 2-D.3-D", f_matmul, G(3, 4), G(2, 4, 5)),
    ROW("matmul 3-D.1-D", f_matmul, G(2, 3, 4), G(4)),
    ROW("matmul 1-D.3-D", f_matmul, G(4), G(2, 4, 5)),
    ROW("matmul 3-D.3-D", f_matmul, G(2, 3, 4), G(2, 4, 5)),
    ROW("matmul 3-D.3-D broadcast", f_matmul, G(2, 3, 4), G(1, 4, 5)),
    ROW("matmul 4-D.4-D broadcast", f_matmul, G(2, 1, 3, 4), G(1, 3, 4, 5)),
    ROW("matmul 4-D.3-D broadcast", f_matmul, G(2, 1, 3, 4), G(3, 4, 2)),
    ROW("matmul 1-D.1-D const", f_matmul, C(4), G(4)),
    ROW("matmul 1-D.2-D const", f_matmul, G(4), C(4, 3)),
    ROW("matmul 2-D.1-D const", f_matmul, C(3, 4), G(4)),
    ROW("matmul 2-D.2-D const", f_matmul, C(3, 4), G(4, 5)),
    ROW("matmul 3-D.2-D const", f_matmul, C(2, 3, 4), G(4, 5)),
    ROW("matmul 3-D.1-D const", f_matmul, G(2, 3, 4), C(4)),
    ROW("matmul 1-D.3-D const", f_matmul, C(4), G(2, 4, 5)),
    ROW("matmul 4-D.4-D const", f_matmul, G(2, 1, 3, 4), C(1, 3, 4, 5)),
    /* BCE with logits: input, target, weight, pos_weight */
    ROW("bce none", f_bce_none, G(2, 3), CP(2, 3)),
    ROW("bce mean", f_bce_mean, G(2, 3), CP(2, 3)),
    ROW("bce sum", f_bce_sum, G(2, 3), CP(2, 3)),
    ROW("bce mean []", f_bce_mean, G0, CP0),
    ROW_IMPLICIT("bce mean, implicit gradient", f_bce_mean, G(2, 3), GP(2, 3)),
    ROW("bce weight [3] none", f_bce_none, G(2, 3), CP(2, 3), CW(3)),
    ROW("bce weight [3] mean", f_bce_mean, G(2, 3), CP(2, 3), CW(3)),
    ROW("bce weight [2,1] sum", f_bce_sum, G(2, 3), CP(2, 3), CW(2, 1)),
    ROW("bce pos_weight none", f_bce_none, G(2, 3), CP(2, 3), NONE, CW(3)),
    ROW("bce pos_weight mean", f_bce_mean, G(2, 3), CP(2, 3), NONE, CW(3)),
    ROW("bce weight pos_weight sum", f_bce_sum, G(2, 3), CP(2, 3), CW(3), CW(3)),
    ROW("bce weight pos_weight mean", f_bce_mean, G(2, 3), CP(2, 3), CW(2, 3), CW(3)),
    ROW("bce target none", f_bce_none, G(2, 3), GP(2, 3)),
    ROW("bce target mean", f_bce_mean, G(2, 3), GP(2, 3)),
    ROW("bce target only sum", f_bce_sum, C(2, 3), GP(2, 3)),
    ROW("bce target pos_weight none", f_bce_none, G(2, 3), GP(2, 3), NONE, CW(3)),
    ROW("bce target weight pos_weight mean", f_bce_mean, G(2, 3), GP(2, 3), CW(3), CW(3)),
    /* several outputs */
    ROW("split rows, a piece unused", f_split_rows, G(5, 3)),
    ROW("split cols, broadcast piece", f_split_cols, G(3, 5)),
    ROW("chunk, with a constant", f_chunk, G(2, 4, 3), C(2, 2, 3)),
    /* chains */
    ROW_IMPLICIT("chain sum(sigmoid(x.w+b)*c)", f_chain_sigmoid, G(4, 3), G(3, 2), G(2), G(4, 2)),
    ROW_IMPLICIT("chain bce(x.w+b, y)", f_chain_bce, C(4, 5), G(5, 3), G(3), CP(4, 3)),
    ROW("chain x reused", f_chain_reuse, G(3, 4), GA(4)),
    ROW("chain relu mlp", f_chain_mlp, GA(2, 3, 4), G(4, 5), G(5, 2), GA(2, 3, 1)),
};

#define N_ROWS (sizeof rows / sizeof rows[0])

/* ---- the check ------------------------------------------------------------------------- */

static nb_tensor *make_input(const gc_row *row, int i)
{
    const gc_input *in = &row->in[i];
    bool uniform = in->init == GC_PROB || in->init == GC_POS;
    nb_tensor *t = uniform ? nb_rand(in->shape) : nb_randn(in->shape);
    if (!t) fail_msg("%s: input %d: %s", row->name, i, nb_last_error()->message);
    float *d = nb_tensor_data(t);
    for (int64_t k = 0; k < nb_tensor_numel(t); k++) {
        switch (in->init) {
        case GC_AWAY:
            d[k] = copysignf(0.5f + 0.5f * fabsf(d[k]), d[k]);
            break;
        case GC_PROB:
            d[k] = 0.1f + 0.8f * d[k];
            break;
        case GC_POS:
            d[k] = 0.5f + 1.5f * d[k];
            break;
        case GC_NORMAL:
        case GC_ABSENT:
            break;
        }
    }
    if (in->grad && !nb_requires_grad_(t, true))
        fail_msg("%s: input %d: %s", row->name, i, nb_last_error()->message);
    return t;
}

/* nb_gradcheck's function: the row's output. */
static nb_tensor *row_output(nb_tensor *const *x, void *ctx)
{
    const gc_row *row = ctx;
    return row->f(x);
}

/* The row at one seed: nb_gradcheck, then one backward that fills .grad only where asked. */
static void run_seed(const gc_row *row, uint64_t seed)
{
    nb_manual_seed(seed);
    nb_tensor *x[GC_MAX_INPUTS] = {NULL};
    for (int i = 0; i < GC_MAX_INPUTS; i++)
        if (row->in[i].init != GC_ABSENT) x[i] = make_input(row, i);
    if (nb_gradcheck(row_output, (void *)(uintptr_t)row, x, GC_MAX_INPUTS, NULL) != NB_OK)
        fail_msg("%s (seed %llu): %s", row->name, (unsigned long long)seed,
                 nb_last_error()->message);

    nb_scope *scope = nb_scope_begin();
    nb_tensor *out = row->f(x);
    if (!out || !nb_tensor_grad_fn(out)) fail_msg("%s: the output records no graph", row->name);
    if (row->implicit) assert_int_equal(nb_tensor_ndim(out), 0);
    nb_tensor *r = row->implicit ? NULL : nb_randn_like(out);
    if (nb_backward(out, r, false) != NB_OK)
        fail_msg("%s: nb_backward: %s", row->name, nb_last_error()->message);
    assert_int_equal(nb_scope_end(scope), NB_OK);
    for (int i = 0; i < GC_MAX_INPUTS; i++) {
        if (!x[i]) continue;
        nb_tensor *g = nb_tensor_grad(x[i]);
        if (row->in[i].grad && (!g || nb_tensor_numel(g) != nb_tensor_numel(x[i])))
            fail_msg("%s: input %d requires grad but got no .grad of its shape", row->name, i);
        if (!row->in[i].grad && g)
            fail_msg("%s: input %d does not require grad but got a .grad", row->name, i);
        nb_release(x[i]);
    }
}

static void run_row(void **state)
{
    const gc_row *row = *state;
    for (uint64_t seed = 0; seed < 3; seed++) run_seed(row, seed); /* stable across seeds */
}

/* x·1.005 − x·0.005 detached: the value is x, the analytic derivative 1.005 (0.5% off). */
static nb_tensor *off_by_half_percent(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    return nb_add(nb_mul_scalar(x[0], 1.005f), nb_detach(nb_mul_scalar(x[0], -0.005f)));
}

static nb_tensor *same(nb_tensor *const *x, void *ctx)
{
    (void)ctx;
    return nb_mul_scalar(x[0], 1.0f);
}

static nb_tensor *returns_null(nb_tensor *const *x, void *ctx)
{
    (void)x;
    (void)ctx;
    return NULL;
}

static nb_tensor *constant(nb_tensor *const *x, void *ctx)
{
    (void)x;
    return nb_ones(*(const nb_shape *)ctx);
}

/* The tolerance catches a derivative 0.5% off; every error is reported with its message. */
static void test_gradcheck_catches(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(3, 4)), true);
    nb_error_clear();
    assert_int_equal(nb_gradcheck(off_by_half_percent, NULL, &x, 1, NULL), NB_ECHECK);
    assert_error(NB_ECHECK, "nb_gradcheck: Jacobian mismatch for input 0, element ");
    assert_non_null(strstr(nb_last_error()->message, "analytic "));
    assert_non_null(strstr(nb_last_error()->message, "numeric "));
    assert_int_equal(nb_gradcheck(same, NULL, &x, 1, NULL), NB_OK);
    assert_null(nb_tensor_grad(x)); /* .grad untouched */

    nb_tensor *c = nb_randn(NB_SHAPE(2));
    assert_int_equal(nb_gradcheck(same, NULL, &c, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: no input requires grad");
    assert_int_equal(nb_gradcheck(NULL, NULL, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: argument 'f' is NULL");
    assert_int_equal(nb_gradcheck(same, NULL, &x, 0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: between 1 and 64 inputs are needed, got 0");
    nb_gradcheck_options bad = {0, 1e-4, 1e-3};
    assert_int_equal(nb_gradcheck(same, NULL, &x, 1, &bad), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: eps must be > 0 and the tolerances >= 0");
    assert_int_equal(nb_gradcheck(returns_null, NULL, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: the function returned NULL");
    nb_shape s = NB_SHAPE(2);
    assert_int_equal(nb_gradcheck(constant, &s, &x, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: the function's output does not require grad");
    nb_tensor *y = nb_mul_scalar(x, 2.0f);
    assert_int_equal(nb_gradcheck(same, NULL, &y, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_gradcheck: input 0 is not a leaf");
    nb_release(y);
    nb_release(c);
    nb_release(x);
}

int main(void)
{
    struct CMUnitTest tests[N_ROWS + 1];
    for (size_t i = 0; i < N_ROWS; i++)
        tests[i] = (struct CMUnitTest){rows[i].name, run_row, nbt_setup_counting,
                                       nbt_teardown_counting, &rows[i]};
    tests[N_ROWS] = (struct CMUnitTest){"gradcheck catches a 0.5% error", test_gradcheck_catches,
                                        nbt_setup_counting, nbt_teardown_counting, NULL};
    return _cmocka_run_group_tests("gradcheck", tests, N_ROWS + 1, NULL, NULL);
}
