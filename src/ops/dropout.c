/*
 * dropout as PyTorch 1.13's CPU dropout computes it (Dropout.cpp's _dropout_impl): a noise
 * tensor drawn by bernoulli_(1 − p), divided by 1 − p, and the product x·noise, recorded as
 * that product (MulBackward0). Without MKL (Debian's torch), bernoulli_ draws one random64()
 * per element, in order, and keeps the element when its 53-bit uniform is below 1 − p: the
 * same draws from nabla's generator give the same mask.
 */
#include "core/rng.h"
#include "ops/internal.h"

/* y = x·noise; dx = g·noise (the noise is a constant: its gradient is never asked for) */
NB__EW_KERNEL(drop_fwd, V0 *V1)
NB__EW_KERNEL(drop_gx, V0 *V2)
NB__EW_KERNEL(drop_gnoise, V0 *V1)
static const nb__binop drop_op = {
    NB__BINOP_NODE("MulBackward0"), drop_fwd, drop_gx, drop_gnoise, NB__READ_B, NB__READ_A, 0, 0};

/* AliasBackward0: the gradient passes through unchanged. */
static nb_status alias_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    return nb__grad_sum(n, gx, 0, gy[0], 1.0f);
}

static const nb_op alias_op = {"AliasBackward0", alias_backward, 0, 0, NB__OP_VIEW};

static nb_tensor *dropout(const char *fn, nb_tensor *x, double p, bool training, nb_generator *gen)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    if (!gen && nb__pending()) return NULL; /* a failed nb_generator_new */
    if (!(p >= 0.0 && p <= 1.0)) {
        nb__error(NB_EINVAL, fn, "dropout probability has to be between 0 and 1, but got %g", p);
        return NULL;
    }
    if (p == 0.0 || !training || x->numel == 0) { /* PyTorch returns x itself: a view of it */
        nb_node *n;
        return nb__finish(fn, &alias_op, nb__new_view(fn, x->storage, x->offset, x->ndim, x->shape),
                          1, &x, &n);
    }
    if (p == 1.0) return nb__binary_scalar(fn, &drop_op, x, 0.0f); /* x·0, drawing nothing */
    nb_tensor *noise = nb__new(fn, x->ndim, x->shape);
    if (!noise) return NULL;
    const double keep = 1.0 - p;
    const float scale = 1.0f / (float)keep; /* noise.div_(1 − p) in float */
    nb__generator_bernoulli(gen, nb__data(noise), x->numel, keep, scale);
    nb_tensor *out = nb__binary(fn, &drop_op, x, noise);
    nb__drop(noise);
    return out;
}

nb_tensor *nb_dropout_gen(nb_tensor *x, double p, bool training, nb_generator *gen)
{
    return dropout("nb_dropout_gen", x, p, training, gen);
}

nb_tensor *nb_dropout(nb_tensor *x, double p, bool training)
{
    return dropout("nb_dropout", x, p, training, nb_default_generator());
}
