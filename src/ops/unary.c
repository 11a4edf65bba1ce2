/* Unary activations. */
#include <math.h>

#include "ops/internal.h"

/* Make out = f(x) and record op saving the output (its backward needs y, not x). */
static nb_tensor *unary(const char *fn, const nb_op *op, nb_tensor *x,
                        void (*f)(const float *, float *, int64_t))
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    nb_tensor *out = nb__new(fn, x->ndim, x->shape);
    if (!out) return NULL;
    f(nb__data(x), nb__data(out), x->numel);
    nb_node *n;
    out = nb__finish(fn, op, out, 1, &x, &n);
    if (n && nb__save(fn, n, 0, out) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

/* gx = gy ⊙ g(y), elementwise, with y the saved output. */
static nb_status unary_backward(nb_node *n, const nb_tensor *gy, nb_tensor **gx,
                                float (*dfdy)(float))
{
    nb_tensor *y = nb__saved(n, 0);
    if (!y) return nb__last_code();
    gx[0] = nb__new("nb_backward", gy->ndim, gy->shape);
    if (!gx[0]) return nb__last_code();
    const float *g = nb__data(gy), *yy = nb__data(y);
    float *d = nb__data(gx[0]);
    for (int64_t i = 0; i < gy->numel; i++) d[i] = g[i] * dfdy(yy[i]);
    return NB_OK;
}

/* y = 1 / (1 + e^-x); dy/dx = y·(1 - y) */
static void sigmoid_fwd(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static float sigmoid_d(float y)
{
    return y * (1.0f - y);
}

static nb_status sigmoid_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    return unary_backward(n, gy, gx, sigmoid_d);
}

static const nb_op sigmoid_op = {"SigmoidBackward0", sigmoid_backward};

nb_tensor *nb_sigmoid(nb_tensor *x)
{
    return unary("nb_sigmoid", &sigmoid_op, x, sigmoid_fwd);
}

/* y = max(x, 0); dy/dx = [y > 0] */
static void relu_fwd(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : (isnan(x[i]) ? x[i] : 0.0f);
}

static float relu_d(float y)
{
    return y > 0.0f ? 1.0f : 0.0f;
}

static nb_status relu_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    return unary_backward(n, gy, gx, relu_d);
}

static const nb_op relu_op = {"ReluBackward0", relu_backward};

nb_tensor *nb_relu(nb_tensor *x)
{
    return unary("nb_relu", &relu_op, x, relu_fwd);
}
