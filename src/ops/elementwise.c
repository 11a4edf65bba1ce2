/* Elementwise arithmetic: add, sub, mul, div (broadcasting), their scalar forms, neg, in-place. */
#include <string.h>

#include "ops/internal.h"

/* *gx = ±sum_to(gy ⊙ f, input i's shape) when input i needs a gradient; f = NULL means 1. */
static nb_status grad_of(nb_node *n, int i, const nb_tensor *gy, const nb_tensor *f, float sign,
                         nb_tensor **gx)
{
    if (!nb__needs_grad(n, i)) return NB_OK;
    if (!f && sign > 0 && gy->ndim == n->input_shape[i].ndim &&
        !memcmp(gy->shape, n->input_shape[i].dims, sizeof(int64_t) * (size_t)gy->ndim)) {
        /* the gradient passes through unchanged: share gy rather than copy it. The engine
         * never writes into a gradient that another reference can see (it copies first), so
         * sharing is safe; a leaf that receives a shared gradient gets its own copy. */
        *gx = nb_retain(nb__unconst(gy));
        return NB_OK;
    }
    nb_tensor *t = f ? nb__binary("nb_backward", NB__MUL, gy, f) : NULL;
    if (f && !t) return nb__last_code();
    *gx = nb__sum_to(t ? t : gy, &n->input_shape[i]);
    nb__release(t);
    if (!*gx) return nb__last_code();
    if (sign < 0) {
        float *d = nb__data(*gx);
        for (int64_t k = 0; k < (*gx)->numel; k++) d[k] = -d[k];
    }
    return NB_OK;
}

/* d(a+b) = (gy, gy) */
static nb_status add_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    nb_status rc = grad_of(n, 0, gy, NULL, 1.0f, &gx[0]);
    return rc ? rc : grad_of(n, 1, gy, NULL, 1.0f, &gx[1]);
}

/* d(a-b) = (gy, -gy) */
static nb_status sub_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    nb_status rc = grad_of(n, 0, gy, NULL, 1.0f, &gx[0]);
    return rc ? rc : grad_of(n, 1, gy, NULL, -1.0f, &gx[1]);
}

/* d(a·b) = (gy·b, gy·a) */
static nb_status mul_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    nb_tensor *a = nb__needs_grad(n, 1) ? nb__saved(n, 0) : NULL;
    nb_tensor *b = nb__needs_grad(n, 0) ? nb__saved(n, 1) : NULL;
    if ((nb__needs_grad(n, 1) && !a) || (nb__needs_grad(n, 0) && !b)) return nb__last_code();
    nb_status rc = grad_of(n, 0, gy, b, 1.0f, &gx[0]);
    return rc ? rc : grad_of(n, 1, gy, a, 1.0f, &gx[1]);
}

/* d(a/b) = (gy/b, -gy·a/b²) */
static nb_status div_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    nb_tensor *b = nb__saved(n, 1);
    nb_tensor *a = nb__needs_grad(n, 1) ? nb__saved(n, 0) : NULL;
    if (!b || (nb__needs_grad(n, 1) && !a)) return nb__last_code();
    nb_tensor *gb = nb__binary("nb_backward", NB__DIV, gy, b); /* gy/b */
    if (!gb) return nb__last_code();
    nb_status rc = grad_of(n, 0, gb, NULL, 1.0f, &gx[0]);
    if (rc == NB_OK && nb__needs_grad(n, 1)) {
        nb_tensor *ab = nb__binary("nb_backward", NB__DIV, a, b); /* (gy/b)·(a/b) */
        rc = ab ? grad_of(n, 1, gb, ab, -1.0f, &gx[1]) : nb__last_code();
        nb__release(ab);
    }
    nb__release(gb);
    return rc;
}

static const nb_op add_op = {"AddBackward0", add_backward};
static const nb_op sub_op = {"SubBackward0", sub_backward};
static const nb_op mul_op = {"MulBackward0", mul_backward};
static const nb_op div_op = {"DivBackward0", div_backward};

static nb_tensor *binary(const char *fn, nb__binop op, const nb_op *node_op, nb_tensor *a,
                         nb_tensor *b)
{
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    nb_node *n;
    nb_tensor *out =
        nb__finish(fn, node_op, nb__binary(fn, op, a, b), 2, (nb_tensor *[]){a, b}, &n);
    if (!out || !n) return out;
    /* save only what backward reads: the other operand (div: b always, a for b's grad) */
    bool save_a = (op == NB__MUL || op == NB__DIV) && nb__needs_grad(n, 1);
    bool save_b = (op == NB__MUL && nb__needs_grad(n, 0)) || op == NB__DIV;
    if ((save_a && nb__save(fn, n, 0, a) != NB_OK) || (save_b && nb__save(fn, n, 1, b) != NB_OK)) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

nb_tensor *nb_add(nb_tensor *a, nb_tensor *b)
{
    return binary("nb_add", NB__ADD, &add_op, a, b);
}

nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b)
{
    return binary("nb_sub", NB__SUB, &sub_op, a, b);
}

nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b)
{
    return binary("nb_mul", NB__MUL, &mul_op, a, b);
}

nb_tensor *nb_div(nb_tensor *a, nb_tensor *b)
{
    return binary("nb_div", NB__DIV, &div_op, a, b);
}

/* ---- with a number: y = x·scale + shift; backward gy·scale ------------------------------ */

/* node->scalar[0] holds the factor d(y)/d(x). */
static nb_status affine_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    gx[0] = nb_clone(gy);
    if (!gx[0]) return nb__last_code();
    float s = (float)n->scalar[0];
    if (s != 1.0f) {
        float *d = nb__data(gx[0]);
        for (int64_t k = 0; k < gx[0]->numel; k++) d[k] *= s;
    }
    return NB_OK;
}

static const nb_op add_scalar_op = {"AddBackward1", affine_backward};
static const nb_op sub_scalar_op = {"SubBackward1", affine_backward};
static const nb_op mul_scalar_op = {"MulBackward1", affine_backward};
static const nb_op div_scalar_op = {"DivBackward1", affine_backward};
static const nb_op neg_op = {"NegBackward0", affine_backward};

static nb_tensor *with_scalar(const char *fn, nb__binop op, const nb_op *node_op, nb_tensor *a,
                              float s)
{
    if (!a) {
        nb__null(fn, "a");
        return NULL;
    }
    nb_tensor *out = nb__new(fn, a->ndim, a->shape);
    if (!out) return NULL;
    const float *x = nb__data(a);
    float *y = nb__data(out);
    int64_t n = a->numel;
    switch (op) {
    case NB__ADD:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] + s;
        break;
    case NB__SUB:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] - s;
        break;
    case NB__MUL:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
        break;
    case NB__DIV:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] / s;
        break;
    }
    nb_node *node;
    out = nb__finish(fn, node_op, out, 1, &a, &node);
    if (node) {
        node->scalar[0] = op == NB__MUL ? (double)s : op == NB__DIV ? 1.0 / (double)s : 1.0;
        if (node_op == &neg_op) node->scalar[0] = -1.0;
    }
    return out;
}

nb_tensor *nb_add_scalar(nb_tensor *a, float s)
{
    return with_scalar("nb_add_scalar", NB__ADD, &add_scalar_op, a, s);
}

nb_tensor *nb_sub_scalar(nb_tensor *a, float s)
{
    return with_scalar("nb_sub_scalar", NB__SUB, &sub_scalar_op, a, s);
}

nb_tensor *nb_mul_scalar(nb_tensor *a, float s)
{
    return with_scalar("nb_mul_scalar", NB__MUL, &mul_scalar_op, a, s);
}

nb_tensor *nb_div_scalar(nb_tensor *a, float s)
{
    return with_scalar("nb_div_scalar", NB__DIV, &div_scalar_op, a, s);
}

nb_tensor *nb_neg(nb_tensor *a)
{
    return with_scalar("nb_neg", NB__MUL, &neg_op, a, -1.0f);
}

/* ---- in place -------------------------------------------------------------------------- */

static nb_status check_inplace(const char *fn, nb_tensor *a, const nb_tensor *b)
{
    if (!a) return nb__null(fn, "a");
    nb_status st = nb__check_inplace(fn, a);
    if (st != NB_OK) return st;
    if (nb__grad_enabled() && (a->grad_fn || (b && b->requires_grad)))
        return nb__error(NB_ESTATE, fn,
                         "in-place operations on tensors that are part of a graph are not "
                         "supported; use the out-of-place op or NB_NO_GRAD");
    return NB_OK;
}

static nb_status inplace(const char *fn, nb__binop op, nb_tensor *a, const nb_tensor *b)
{
    if (a && !b) return nb__null(fn, "b");
    nb_status st = check_inplace(fn, a, b);
    return st ? st : nb__binary_inplace(fn, op, a, b);
}

nb_status nb_add_(nb_tensor *a, const nb_tensor *b)
{
    return inplace("nb_add_", NB__ADD, a, b);
}

nb_status nb_sub_(nb_tensor *a, const nb_tensor *b)
{
    return inplace("nb_sub_", NB__SUB, a, b);
}

nb_status nb_mul_(nb_tensor *a, const nb_tensor *b)
{
    return inplace("nb_mul_", NB__MUL, a, b);
}

nb_status nb_div_(nb_tensor *a, const nb_tensor *b)
{
    return inplace("nb_div_", NB__DIV, a, b);
}

/* a = a·scale + shift */
static nb_status affine_(const char *fn, nb_tensor *a, float scale, float shift, bool fill)
{
    nb_status st = check_inplace(fn, a, NULL);
    if (st != NB_OK) return st;
    float *d = nb__data(a);
    for (int64_t i = 0; i < a->numel; i++) d[i] = fill ? shift : d[i] * scale + shift;
    a->storage->version++;
    return NB_OK;
}

nb_status nb_add_scalar_(nb_tensor *a, float s)
{
    return affine_("nb_add_scalar_", a, 1.0f, s, false);
}

nb_status nb_mul_scalar_(nb_tensor *a, float s)
{
    return affine_("nb_mul_scalar_", a, s, 0.0f, false);
}

nb_status nb_fill_(nb_tensor *a, float value)
{
    return affine_("nb_fill_", a, 0.0f, value, true);
}
