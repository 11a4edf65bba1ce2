/* Losses: binary cross-entropy on logits (PyTorch's stable formula, Loss.cpp). */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

NB__EW_KERNEL(copy_k, V0)

/* BCEWithLogitsBackward0: the reduction; saved: input, target, weight and pos_weight (the
 * last two only when given). */
typedef struct bce_state {
    nb_reduction reduction;
} bce_state;

enum { SLOT_INPUT, SLOT_TARGET, SLOT_WEIGHT, SLOT_POS_WEIGHT };

/*
 * An optional per-element factor broadcast to x's shape: *out is t itself when it has x's
 * shape (*owned false), else a new expanded copy (*owned true). NULL t stays NULL.
 */
static nb_status expand_opt(const char *fn, const char *what, const nb_tensor *t,
                            const nb_tensor *x, const float **out, nb_tensor **owned)
{
    *out = NULL;
    *owned = NULL;
    if (!t) return NB_OK;
    nb_shape ts = nb__size(t), xs = nb__size(x), bs;
    if (nb__broadcast_shape(fn, &ts, &xs, &bs) != NB_OK) return NB_ESHAPE;
    if (!nb__shape_eq(&bs, &xs)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn, "%s of shape %s does not broadcast to input shape %s", what,
                         nb__shape_str(a, ts.ndim, ts.dims), nb__shape_str(b, xs.ndim, xs.dims));
    }
    if (nb__shape_eq(&ts, &xs)) {
        *out = nb__data(t);
        return NB_OK;
    }
    if (!(*owned = nb__new(fn, xs.ndim, xs.dims))) return NB_ENOMEM;
    nb__ew_apply(copy_k, NULL, nb__data(*owned), false, &xs, 1, &(nb__operand){nb__data(t), &ts});
    *out = nb__data(*owned);
    return NB_OK;
}

static inline float log_sigmoid(float z)
{
    return fminf(z, 0.0f) - log1pf(expf(-fabsf(z)));
}

static nb_status bce_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const char *fn = nb__engine_fn();
    nb_tensor *x = nb__saved(n, SLOT_INPUT), *y = nb__saved(n, SLOT_TARGET);
    if (!x || !y) return nb__last_code();
    nb_tensor *w = NULL, *p = NULL;
    if (nb__has_saved(n, SLOT_WEIGHT) && !(w = nb__saved(n, SLOT_WEIGHT))) return nb__last_code();
    if (nb__has_saved(n, SLOT_POS_WEIGHT) && !(p = nb__saved(n, SLOT_POS_WEIGHT)))
        return nb__last_code();
    const float *W, *P;
    nb_tensor *we = NULL, *pe = NULL;
    nb_status rc = expand_opt(fn, "weight", w, x, &W, &we);
    if (rc == NB_OK) rc = expand_opt(fn, "pos_weight", p, x, &P, &pe);
    nb_reduction red = ((const bce_state *)nb__state(n))->reduction;
    float scale = red == NB_MEAN ? (float)x->numel : 1.0f;
    const float *X = nb__data(x), *Y = nb__data(y), *G = nb__data(gy[0]);
    bool per_elem = red == NB_NONE;
    for (int i = 0; i < 2 && rc == NB_OK; i++) {
        if (!nb__needs_grad(n, i)) continue;
        bool acc;
        float *d = nb__grad_dst(n, gx, i, &acc);
        if (!d) {
            rc = NB_ENOMEM;
            break;
        }
        for (int64_t e = 0; e < x->numel; e++) {
            float g = G[per_elem ? e : 0], xv = X[e], yv = Y[e], v;
            if (i == 0) { /* d/dx: (σ(x) − y)·g, with pos_weight ((p·y + 1 − y)·σ(x) − p·y)·g */
                float s = 1.0f / (1.0f + expf(-xv));
                if (P) {
                    float t = P[e] * yv;
                    v = ((t + 1.0f - yv) * s - t) * g;
                } else {
                    v = (s - yv) * g;
                }
            } else { /* d/dy: −x·g, with pos_weight (logσ(−x) − p·logσ(x))·g */
                v = P ? (log_sigmoid(-xv) - log_sigmoid(xv) * P[e]) * g : -xv * g;
            }
            if (W) v *= W[e];
            d[e] = acc ? d[e] + v / scale : v / scale;
        }
    }
    nb__release(we);
    nb__release(pe);
    return rc;
}

static const nb_op bce_op = {"BCEWithLogitsBackward0", bce_backward, 4, sizeof(bce_state), 0};

nb_tensor *nb_binary_cross_entropy_with_logits(nb_tensor *input, nb_tensor *target,
                                               nb_tensor *weight, nb_tensor *pos_weight,
                                               nb_reduction reduction)
{
    static const char fn[] = "nb_binary_cross_entropy_with_logits";
    if (!input || !target) {
        nb__null(fn, input ? "target" : "input");
        return NULL;
    }
    if (reduction != NB_NONE && reduction != NB_MEAN && reduction != NB_SUM) {
        nb__error(NB_EINVAL, fn, "%d is not a valid value for reduction", (int)reduction);
        return NULL;
    }
    if (!nb__same_shape(input, target)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        nb__error(NB_ESHAPE, fn, "Target size (%s) must be the same as input size (%s)",
                  nb__shape_str(a, target->ndim, target->shape),
                  nb__shape_str(b, input->ndim, input->shape));
        return NULL;
    }
    if ((!weight || !pos_weight) && nb__pending()) return NULL; /* a failed optional input */
    if (nb__grad_enabled()) {
        const char *bad = weight && nb__requires_grad(weight)           ? "weight"
                          : pos_weight && nb__requires_grad(pos_weight) ? "pos_weight"
                                                                        : NULL;
        if (bad) {
            nb__error(NB_EINVAL, fn,
                      "The function 'binary_cross_entropy_with_logits' is not differentiable "
                      "with respect to argument '%s'. This input cannot have requires_grad True.",
                      bad);
            return NULL;
        }
    }
    const float *W, *P;
    nb_tensor *we = NULL, *pe = NULL, *out = NULL, *loss = NULL;
    if (expand_opt(fn, "weight", weight, input, &W, &we) != NB_OK ||
        expand_opt(fn, "pos_weight", pos_weight, input, &P, &pe) != NB_OK)
        goto done;
    /* the per-element losses are kept only when they are the result (reduction none) */
    if (reduction == NB_NONE && !(loss = nb__new(fn, input->ndim, input->shape))) goto done;
    const float *X = nb__data(input), *Y = nb__data(target);
    float *L = loss ? nb__data(loss) : NULL;
    double total = 0.0;
    for (int64_t e = 0; e < input->numel; e++) {
        /* the operations, in float, in the order of PyTorch's kernel */
        float x = X[e], y = Y[e];
        float max_val = fmaxf(-x, 0.0f);
        float soft = logf(expf(-max_val) + expf(-x - max_val));
        float l = P ? (1.0f - y) * x + ((P[e] - 1.0f) * y + 1.0f) * (soft + max_val)
                    : (1.0f - y) * x + max_val + soft;
        if (W) l *= W[e];
        if (L) L[e] = l;
        total += (double)l;
    }
    if (reduction == NB_NONE) {
        out = loss;
        loss = NULL;
    } else {
        float r = (float)total;
        if (reduction == NB_MEAN) r /= (float)input->numel;
        out = nb__new(fn, 0, NULL);
        if (!out) goto done;
        nb__data(out)[0] = r;
    }
    nb_node *n;
    out = nb__finish(fn, &bce_op, out, 2, (nb_tensor *[]){input, target}, &n);
    if (n) {
        ((bce_state *)nb__state(n))->reduction = reduction;
        if (nb__save(fn, n, SLOT_INPUT, input) != NB_OK ||
            nb__save(fn, n, SLOT_TARGET, target) != NB_OK ||
            (weight && nb__save(fn, n, SLOT_WEIGHT, weight) != NB_OK) ||
            (pos_weight && nb__save(fn, n, SLOT_POS_WEIGHT, pos_weight) != NB_OK)) {
            nb__drop(out);
            out = NULL;
        }
    }
done:
    nb__drop(loss);
    nb__drop(we);
    nb__drop(pe);
    return out;
}
