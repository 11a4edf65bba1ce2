/* Losses: binary cross-entropy on logits (PyTorch's stable formula, Loss.cpp). */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

/* Saved: 0 input, 1 target, 2 weight (or none), 3 pos_weight (or none); iarg[0] reduction. */

/* Broadcast an optional per-element factor to x's shape (NULL stays NULL). */
static nb_status expand_opt(const char *fn, const char *what, const nb_tensor *t,
                            const nb_tensor *x, nb_tensor **out)
{
    *out = NULL;
    if (!t) return NB_OK;
    nb_shape ts = nb_tensor_size(t), xs = nb_tensor_size(x), bs;
    if (nb__broadcast_shape(fn, &ts, &xs, &bs) != NB_OK) return NB_ESHAPE;
    if (bs.ndim != xs.ndim || memcmp(bs.dims, xs.dims, sizeof(int64_t) * (size_t)xs.ndim)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn, "%s of shape %s does not broadcast to input shape %s", what,
                         nb__shape_str(a, ts.ndim, ts.dims), nb__shape_str(b, xs.ndim, xs.dims));
    }
    *out = nb__same_shape(t, x) ? nb_retain(nb__unconst(t)) : nb__expand(t, &xs);
    return *out ? NB_OK : nb__last_code();
}

static inline float log_sigmoid(float z)
{
    return fminf(z, 0.0f) - log1pf(expf(-fabsf(z)));
}

static nb_status bce_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    static const char fn[] = "nb_backward";
    nb_tensor *x = nb__saved(n, 0), *y = nb__saved(n, 1);
    if (!x || !y) return nb__last_code();
    nb_tensor *w = NULL, *p = NULL;
    nb_status rc = NB_OK;
    if (n->saved[2].tensor && !(w = nb__saved(n, 2))) return nb__last_code();
    if (n->saved[3].tensor && !(p = nb__saved(n, 3))) return nb__last_code();
    nb_tensor *we = NULL, *pe = NULL;
    if ((rc = expand_opt(fn, "weight", w, x, &we)) != NB_OK ||
        (rc = expand_opt(fn, "pos_weight", p, x, &pe)) != NB_OK)
        goto done;
    nb_reduction red = (nb_reduction)n->iarg[0];
    float scale = red == NB_MEAN ? (float)x->numel : 1.0f;
    const float *X = nb__data(x), *Y = nb__data(y), *G = nb__data(gy);
    const float *W = we ? nb__data(we) : NULL, *P = pe ? nb__data(pe) : NULL;
    bool per_elem = red == NB_NONE;
    for (int i = 0; i < 2; i++) {
        if (!nb__needs_grad(n, i)) continue;
        if (!(gx[i] = nb__new(fn, x->ndim, x->shape))) {
            rc = nb__last_code();
            goto done;
        }
        float *d = nb__data(gx[i]);
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
            d[e] = v / scale;
        }
    }
done:
    nb__release(we);
    nb__release(pe);
    return rc;
}

static const nb_op bce_op = {"BCEWithLogitsBackward0", bce_backward};

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
    nb_tensor *we = NULL, *pe = NULL, *out = NULL, *loss = NULL;
    if (expand_opt(fn, "weight", weight, input, &we) != NB_OK ||
        expand_opt(fn, "pos_weight", pos_weight, input, &pe) != NB_OK)
        goto done;
    /* the per-element losses are kept only when they are the result (reduction none) */
    if (reduction == NB_NONE && !(loss = nb__new(fn, input->ndim, input->shape))) goto done;
    const float *X = nb__data(input), *Y = nb__data(target);
    const float *W = we ? nb__data(we) : NULL, *P = pe ? nb__data(pe) : NULL;
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
        n->iarg[0] = reduction;
        if (nb__save(fn, n, 0, input) != NB_OK || nb__save(fn, n, 1, target) != NB_OK ||
            (weight && nb__save(fn, n, 2, weight) != NB_OK) ||
            (pos_weight && nb__save(fn, n, 3, pos_weight) != NB_OK)) {
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
