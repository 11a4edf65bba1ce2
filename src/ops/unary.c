/*
 * Unary elementwise ops. Each is one descriptor: its forward kernel, its gradient kernel and
 * what that reads (the input x, the output y, or neither). In the gradient kernels V0 is g,
 * V1 is x and V2 is y; k holds the op's scalar parameters.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

/* ---- the ops ----------------------------------------------------------------------------- */

/* y = 1 / (1 + e^-x); dx = g·(1 - y)·y (PyTorch's order) */
NB__EW_KERNEL(sigmoid_fwd, 1.0f / (1.0f + expf(-V0)))
NB__EW_KERNEL(sigmoid_grad, V0 *(1.0f - V2) * V2)
static const nb__unop sigmoid_op = {NB__UNOP_NODE("SigmoidBackward0"), sigmoid_fwd, sigmoid_grad,
                                    NB__READ_OUT};

nb_tensor *nb_sigmoid(nb_tensor *x)
{
    return nb__unary("nb_sigmoid", &sigmoid_op, x, NULL, 0);
}

/* y = max(x, 0), keeping NaN and -0 as PyTorch does; dx = g where y > 0 or y is NaN, else 0 */
NB__EW_KERNEL(relu_fwd, V0 < 0.0f ? 0.0f : V0)
NB__EW_KERNEL(relu_grad, V2 <= 0.0f ? 0.0f : V0)
static const nb__unop relu_op = {NB__UNOP_NODE("ReluBackward0"), relu_fwd, relu_grad, NB__READ_OUT};

nb_tensor *nb_relu(nb_tensor *x)
{
    return nb__unary("nb_relu", &relu_op, x, NULL, 0);
}

/* y = -x; dx = -g */
NB__EW_KERNEL(neg_fwd, -V0)
NB__EW_KERNEL(neg_grad, -V0)
static const nb__unop neg_op = {NB__UNOP_NODE("NegBackward0"), neg_fwd, neg_grad, 0};

nb_tensor *nb_neg(nb_tensor *a)
{
    if (!a) {
        nb__null("nb_neg", "a");
        return NULL;
    }
    return nb__unary("nb_neg", &neg_op, a, NULL, 0);
}

/* ---- the machinery ------------------------------------------------------------------------ */

enum { SLOT_X, SLOT_Y };

nb_tensor *nb__unary(const char *fn, const nb__unop *op, nb_tensor *x, const float *k, int nk)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    float kk[NB__UNOP_K] = {0};
    if (nk > 0) memcpy(kk, k, (size_t)nk * sizeof *k);
    nb_tensor *out = nb__new(fn, x->ndim, x->shape);
    if (!out) return NULL;
    nb__ew_unary(op->forward, kk, x, out);
    nb_node *n;
    out = nb__finish(fn, &op->node, out, 1, &x, &n);
    if (n) {
        memcpy(nb__state(n), kk, sizeof kk);
        if (((op->reads & NB__READ_A) && nb__save(fn, n, SLOT_X, x) != NB_OK) ||
            ((op->reads & NB__READ_OUT) && nb__save(fn, n, SLOT_Y, out) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

nb_status nb__unop_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const nb__unop *op = (const nb__unop *)(const void *)n->op;
    nb_tensor *x = NULL, *y = NULL;
    if ((op->reads & NB__READ_A) && !(x = nb__saved(n, SLOT_X))) return nb__last_code();
    if ((op->reads & NB__READ_OUT) && !(y = nb__saved(n, SLOT_Y))) return nb__last_code();
    nb_shape s = nb__size(gy[0]);
    nb__operand in[3] = {
        {nb__data(gy[0]), &s}, {x ? nb__data(x) : NULL, &s}, {y ? nb__data(y) : NULL, &s}};
    bool acc;
    float *dst = nb__grad_dst(n, gx, 0, &acc);
    if (!dst) return NB_ENOMEM;
    nb__ew_apply(op->grad, nb__state(n), dst, acc, &s, 3, in);
    return NB_OK;
}
