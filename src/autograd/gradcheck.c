/*
 * nb_gradcheck: the analytic vector-Jacobian product of nb_grad against central differences,
 * as torch.autograd.gradcheck, for float32. L = Σ out ⊙ R with R a fixed random tensor; each
 * input element is moved by ±h, L is summed in double from the float outputs, and the
 * difference is divided by the step the float input actually took.
 */
#include <math.h>
#include <stdio.h>

#include "autograd/internal.h"

static const char fn[] = "nb_gradcheck";

/* One evaluation of f under no-grad: L = Σ out·R in double, or an error. */
static nb_status evaluate(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                          const nb_tensor *r, double *loss)
{
    nb_scope *s = nb_scope_begin();
    if (!s) return nb__last_code();
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *out = f(inputs, ctx);
    nb_set_grad_enabled(prev);
    nb_status rc = NB_OK;
    if (!out) {
        rc = nb__pending() != NB_OK ? nb__pending()
                                    : nb__error(NB_EINVAL, fn, "the function returned NULL");
    } else if (!nb__same_shape(out, r)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        rc =
            nb__error(NB_ESHAPE, fn, "the function's output changed shape, %s then %s",
                      nb__shape_str(a, r->ndim, r->shape), nb__shape_str(b, out->ndim, out->shape));
    } else {
        const float *o = nb__data(out), *w = nb__data(r);
        double acc = 0.0;
        for (int64_t i = 0; i < out->numel; i++) acc += (double)o[i] * (double)w[i];
        *loss = acc;
    }
    nb_status end = nb_scope_end(s);
    return rc != NB_OK ? rc : end;
}

/* "[1, 0]": the index of flat element k of a tensor of shape t. */
static const char *index_str(char *buf, const nb_tensor *t, int64_t k)
{
    int64_t idx[NB_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? k % t->shape[d] : 0;
        k = t->shape[d] ? k / t->shape[d] : 0;
    }
    return nb__shape_str(buf, t->ndim, idx);
}

/* The worst disagreement found so far, beyond the tolerance. */
typedef struct worst {
    double excess; /* |a - n| - tolerance; > 0 fails */
    int input;
    int64_t element;
    double analytic, numeric;
} worst;

/* Compare input i's analytic gradient g with central differences of L. */
static nb_status check_input(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int i,
                             const nb_tensor *g, const nb_tensor *r, const nb_gradcheck_options *o,
                             worst *w)
{
    nb_tensor *x = inputs[i];
    float *xd = nb__data(x);
    const float *gd = nb__data(g);
    double *numeric = nb__alloc((size_t)(x->numel > 0 ? x->numel : 1) * sizeof(double), 16);
    if (!numeric) return nb__oom(fn);
    nb_status rc = NB_OK;
    double scale = 1.0;
    for (int64_t k = 0; k < x->numel && rc == NB_OK; k++) {
        float v = xd[k];
        float h = (float)(o->eps * fmax(1.0, fabs((double)v)));
        float up = v + h, down = v - h;
        double lu = 0, ld = 0;
        xd[k] = up;
        rc = evaluate(f, ctx, inputs, r, &lu);
        xd[k] = down;
        if (rc == NB_OK) rc = evaluate(f, ctx, inputs, r, &ld);
        xd[k] = v;
        numeric[k] = (lu - ld) / ((double)up - (double)down);
        /* an infinite derivative would make atol·scale infinite and pass every element */
        if (isfinite(numeric[k])) scale = fmax(scale, fabs(numeric[k]));
    }
    for (int64_t k = 0; k < x->numel && rc == NB_OK; k++) {
        double a = (double)gd[k], n = numeric[k];
        double excess;
        if (isnan(a) || isnan(n)) /* never close, as torch.allclose without equal_nan */
            excess = (double)INFINITY;
        else if (isinf(a) || isinf(n)) /* close only to the same infinity */
            excess = a == n ? -(double)INFINITY : (double)INFINITY;
        else
            excess = fabs(a - n) - (o->atol * scale + o->rtol * fabs(n));
        if (excess > w->excess) *w = (worst){excess, i, k, a, n};
    }
    nb__free(numeric);
    return rc;
}

nb_status nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n,
                       const nb_gradcheck_options *options)
{
    if (!f) return nb__error(NB_EINVAL, fn, "argument 'f' is NULL");
    if (!inputs || n < 1 || n > 64)
        return nb__error(NB_EINVAL, fn, "between 1 and 64 inputs are needed, got %d", n);
    nb_gradcheck_options o = {1e-2, 1e-4, 3e-3};
    if (options) o = *options;
    if (!(o.eps > 0) || !(o.atol >= 0) || !(o.rtol >= 0))
        return nb__error(NB_EINVAL, fn, "eps must be > 0 and the tolerances >= 0");
    nb_tensor *checked[64];
    int n_checked = 0;
    for (int i = 0; i < n; i++) {
        if (inputs[i] && nb__requires_grad(inputs[i])) {
            if (nb__grad_fn(inputs[i]))
                return nb__error(NB_EINVAL, fn, "input %d is not a leaf", i);
            checked[n_checked++] = inputs[i];
        }
    }
    if (n_checked == 0) return nb__error(NB_EINVAL, fn, "no input requires grad");

    nb_scope *s = nb_scope_begin();
    if (!s) return nb__last_code();
    nb_status rc = NB_OK;
    nb_tensor *grads[64] = {NULL}, *r = NULL;
    bool prev = nb_set_grad_enabled(true); /* the analytic pass records a graph, as documented */
    nb_tensor *out = f(inputs, ctx);
    nb_set_grad_enabled(prev);
    if (!out) {
        rc = nb__pending() != NB_OK ? nb__pending()
                                    : nb__error(NB_EINVAL, fn, "the function returned NULL");
        goto done;
    }
    nb_generator *gen = nb_generator_new(0);
    r = gen ? nb_randn_gen(nb__size(out), gen) : NULL;
    nb_generator_free(gen);
    if (!r) {
        rc = nb__last_code();
        goto done;
    }
    if (!nb__requires_grad(out)) {
        rc = nb__error(NB_EINVAL, fn, "the function's output does not require grad");
        goto done;
    }
    const nb_tensor *ro = r;
    nb_grad_options go = {false, true};
    rc = nb__grad(fn, &out, 1, checked, n_checked, &ro, &go, grads);
    if (rc != NB_OK) goto done;
    worst w = {0, -1, 0, 0, 0};
    for (int i = 0, c = 0; i < n && rc == NB_OK; i++) {
        if (!inputs[i] || !nb__requires_grad(inputs[i])) continue;
        nb_tensor *g = grads[c++];
        if (!g) { /* unused input: its gradient is zero */
            if (!(g = nb_zeros_like(inputs[i]))) {
                rc = nb__last_code();
                break;
            }
        }
        rc = check_input(f, ctx, inputs, i, g, r, &o, &w);
    }
    if (rc == NB_OK && w.input >= 0) {
        char idx[NB__SHAPE_STR];
        rc = nb__error(NB_ECHECK, fn,
                       "Jacobian mismatch for input %d, element %lld (index %s): analytic %.9g, "
                       "numeric %.9g",
                       w.input, (long long)w.element, index_str(idx, inputs[w.input], w.element),
                       w.analytic, w.numeric);
    }
done:;
    nb_status end = nb_scope_end(s);
    return rc != NB_OK ? rc : end;
}
