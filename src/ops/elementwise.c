/*
 * Binary elementwise ops (broadcasting), their forms with a number, and in place. Each op is
 * one descriptor: its forward kernel, its gradient kernels and what they read. The
 * machinery around them (shapes, saving, the shared backward) is written once, below; the
 * comparisons and the selections (where, masked_fill) at the end run on the same loop.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

/* ---- the ops ----------------------------------------------------------------------------
 * In the gradient kernels V0 is g (the output's gradient), V1 a, V2 b, V3 the output y.
 * --------------------------------------------------------------------------------------- */

/* y = a + b; da = g, db = g */
NB__EW_KERNEL(add_fwd, V0 + V1)
static const nb__binop add_op = {NB__BINOP_NODE("AddBackward0"), add_fwd, NULL, NULL, 0, 0, 1, 1};

/* y = a - b; da = g, db = -g */
NB__EW_KERNEL(sub_fwd, V0 - V1)
static const nb__binop sub_op = {NB__BINOP_NODE("SubBackward0"), sub_fwd, NULL, NULL, 0, 0, 1, -1};

/* y = a·b; da = g·b, db = g·a */
NB__EW_KERNEL(mul_fwd, V0 *V1)
NB__EW_KERNEL(mul_ga, V0 *V2)
NB__EW_KERNEL(mul_gb, V0 *V1)
static const nb__binop mul_op = {
    NB__BINOP_NODE("MulBackward0"), mul_fwd, mul_ga, mul_gb, NB__READ_B, NB__READ_A, 0, 0};

/* y = a / b; da = g / b, db = -g·(a / b) / b (PyTorch's order of operations) */
NB__EW_KERNEL(div_fwd, V0 / V1)
NB__EW_KERNEL(div_ga, V0 / V2)
NB__EW_KERNEL(div_gb, -V0 *((V1 / V2) / V2))
static const nb__binop div_op = {
    NB__BINOP_NODE("DivBackward0"), div_fwd, div_ga, div_gb, NB__READ_B,
    NB__READ_A | NB__READ_B,        0,       0};

/* y = a^b (powf's bits, as PyTorch's kernel for two tensors); da = 0 where b = 0, else
 * g·(b·a^(b - 1)); db = 0 where a = 0 and b >= 0, else g·(y·ln a) (NaN for a < 0) */
NB__EW_KERNEL(pow_fwd, nb__powf(V0, V1))
NB__EW_KERNEL(pow_ga, nb__pick(V2 == 0.0f, 0.0f, V0 *(V2 *nb__powf(V1, V2 - 1.0f))))
NB__EW_KERNEL(pow_gb, V0 *nb__pick((V1 == 0.0f) & (V2 >= 0.0f), 0.0f, V3 *nb__logf(V1)))
static const nb__binop pow_op = {
    NB__BINOP_NODE("PowBackward1"),         pow_fwd, pow_ga, pow_gb, NB__READ_A | NB__READ_B,
    NB__READ_A | NB__READ_B | NB__READ_OUT, 0,       0};

/* y = max(a, b), NaN when either is, a on ties (std::max); da = g/2 on ties, else g unless
 * a < b; db likewise. A NaN compares false both ways, so it passes g to both (PyTorch). */
NB__EW_KERNEL(maximum_fwd, V0 < V1 ? V1 : (V1 != V1 ? V1 : V0))
NB__EW_KERNEL(maximum_ga, nb__select(V1 == V2, V0 / 2.0f, nb__select(V1 < V2, 0.0f, V0)))
NB__EW_KERNEL(maximum_gb, nb__select(V1 == V2, V0 / 2.0f, nb__select(V1 > V2, 0.0f, V0)))
static const nb__binop maximum_op = {NB__BINOP_NODE("MaximumBackward0"),
                                     maximum_fwd,
                                     maximum_ga,
                                     maximum_gb,
                                     NB__READ_A | NB__READ_B,
                                     NB__READ_A | NB__READ_B,
                                     0,
                                     0};

/* y = min(a, b) likewise (std::min: a on ties) */
NB__EW_KERNEL(minimum_fwd, V1 < V0 ? V1 : (V1 != V1 ? V1 : V0))
NB__EW_KERNEL(minimum_ga, nb__select(V1 == V2, V0 / 2.0f, nb__select(V1 > V2, 0.0f, V0)))
NB__EW_KERNEL(minimum_gb, nb__select(V1 == V2, V0 / 2.0f, nb__select(V1 < V2, 0.0f, V0)))
static const nb__binop minimum_op = {NB__BINOP_NODE("MinimumBackward0"),
                                     minimum_fwd,
                                     minimum_ga,
                                     minimum_gb,
                                     NB__READ_A | NB__READ_B,
                                     NB__READ_A | NB__READ_B,
                                     0,
                                     0};

nb_tensor *nb_add(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_add", &add_op, a, b);
}

nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_sub", &sub_op, a, b);
}

nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_mul", &mul_op, a, b);
}

nb_tensor *nb_div(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_div", &div_op, a, b);
}

nb_tensor *nb_pow(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_pow", &pow_op, a, b);
}

nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_maximum", &maximum_op, a, b);
}

nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b)
{
    return nb__binary("nb_minimum", &minimum_op, a, b);
}

nb_tensor *nb_add_scalar(nb_tensor *a, float s)
{
    return nb__binary_scalar("nb_add_scalar", &add_op, a, s);
}

nb_tensor *nb_sub_scalar(nb_tensor *a, float s)
{
    return nb__binary_scalar("nb_sub_scalar", &sub_op, a, s);
}

nb_tensor *nb_mul_scalar(nb_tensor *a, float s)
{
    return nb__binary_scalar("nb_mul_scalar", &mul_op, a, s);
}

nb_tensor *nb_div_scalar(nb_tensor *a, float s)
{
    return nb__binary_scalar("nb_div_scalar", &div_op, a, s);
}

nb_status nb_add_(nb_tensor *a, const nb_tensor *b)
{
    return b ? nb__binary_("nb_add_", &add_op, a, b, 0) : nb__null("nb_add_", a ? "b" : "a");
}

nb_status nb_sub_(nb_tensor *a, const nb_tensor *b)
{
    return b ? nb__binary_("nb_sub_", &sub_op, a, b, 0) : nb__null("nb_sub_", a ? "b" : "a");
}

nb_status nb_mul_(nb_tensor *a, const nb_tensor *b)
{
    return b ? nb__binary_("nb_mul_", &mul_op, a, b, 0) : nb__null("nb_mul_", a ? "b" : "a");
}

nb_status nb_div_(nb_tensor *a, const nb_tensor *b)
{
    return b ? nb__binary_("nb_div_", &div_op, a, b, 0) : nb__null("nb_div_", a ? "b" : "a");
}

nb_status nb_add_scalar_(nb_tensor *a, float s)
{
    return nb__binary_("nb_add_scalar_", &add_op, a, NULL, s);
}

nb_status nb_mul_scalar_(nb_tensor *a, float s)
{
    return nb__binary_("nb_mul_scalar_", &mul_op, a, NULL, s);
}

/* a ← s: a binary op that keeps only its second operand (never recorded) */
NB__EW_KERNEL(fill_fwd, V1)
static const nb__binop fill_op = {
    NB__BINOP_NODE("FillBackward0"), fill_fwd, NULL, NULL, 0, 0, 0, 0};

nb_status nb_fill_(nb_tensor *a, float value)
{
    return nb__binary_("nb_fill_", &fill_op, a, NULL, value);
}

/* ---- the machinery ------------------------------------------------------------------------ */

enum { SLOT_A, SLOT_B, SLOT_OUT };

/* Save what the gradients of the inputs that need one read. */
static nb_status save_reads(const char *fn, const nb__binop *op, nb_node *n, nb_tensor *a,
                            nb_tensor *b, nb_tensor *out)
{
    unsigned reads =
        (nb__needs_grad(n, 0) ? op->reads_a : 0) | (nb__needs_grad(n, 1) ? op->reads_b : 0);
    nb_status rc = NB_OK;
    if (reads & NB__READ_A) rc = nb__save(fn, n, SLOT_A, a);
    if (rc == NB_OK && (reads & NB__READ_B) && b) rc = nb__save(fn, n, SLOT_B, b);
    if (rc == NB_OK && (reads & NB__READ_OUT)) rc = nb__save(fn, n, SLOT_OUT, out);
    return rc;
}

/* out = f(a, b), broadcasting (b NULL: the number s); records nothing. */
static nb_tensor *forward(const char *fn, nb__ew_fn f, nb_tensor *a, nb_tensor *b, float s)
{
    nb_tensor *out;
    if (!b || nb__same_shape(a, b)) { /* the common case: one flat run, no shape arithmetic */
        if (!(out = nb__new(fn, a->ndim, a->shape))) return NULL;
        const float *p[NB__EW_MAX] = {nb__data(a), b ? nb__data(b) : &s, NULL, NULL};
        const int64_t st[NB__EW_MAX] = {1, b ? 1 : 0, 1, 1};
        if (out->numel) nb__ew_run(f, NULL, nb__data(out), false, p, st, out->numel);
    } else {
        nb_shape as = nb__size(a), bs = nb__size(b), os;
        if (nb__broadcast_shape(fn, &as, &bs, &os) != NB_OK) return NULL;
        if (!(out = nb__new(fn, os.ndim, os.dims))) return NULL;
        nb__operand in[2] = {{nb__data(a), &as}, {nb__data(b), &bs}};
        nb__ew_apply(f, NULL, nb__data(out), false, &os, 2, in);
    }
    return out;
}

/* out = a op b (b NULL: the number s), recorded as op's node with inputs a and b. */
static nb_tensor *apply(const char *fn, const nb__binop *op, nb_tensor *a, nb_tensor *b, float s)
{
    nb_tensor *out = forward(fn, op->forward, a, b, s);
    if (!out) return NULL;
    nb_node *n;
    if (nb__record(fn, &op->node, 2, (nb_tensor *[]){a, b}, 1, &out, 0, &n) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    if (n) {
        nb__binop_state *st = nb__state(n);
        st->scalar = s;
        st->b_is_scalar = !b;
        if (save_reads(fn, op, n, a, b, out) != NB_OK) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

nb_tensor *nb__binary(const char *fn, const nb__binop *op, nb_tensor *a, nb_tensor *b)
{
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    return apply(fn, op, a, b, 0.0f);
}

nb_tensor *nb__binary_scalar(const char *fn, const nb__binop *op, nb_tensor *a, float s)
{
    if (!a) {
        nb__null(fn, "a");
        return NULL;
    }
    return apply(fn, op, a, NULL, s);
}

/*
 * gx[i] += f(in) summed to input i's shape, where the n operands in broadcast to gs, the
 * shape of the output's gradient.
 */
static nb_status grad_apply(nb_node *n, nb_tensor **gx, int i, nb__ew_fn f, const nb_shape *gs,
                            int nin, const nb__operand *in)
{
    nb_shape is = nb__input_shape(n, i);
    if (nb__shape_eq(&is, gs)) { /* straight into the gradient, accumulating */
        bool acc;
        float *dst = nb__grad_dst(n, gx, i, &acc);
        if (!dst) return NB_ENOMEM;
        nb__ew_apply(f, NULL, dst, acc, gs, nin, in);
        return NB_OK;
    }
    /* broadcast: the full-size values, then summed to the input's shape */
    nb_tensor *t = nb__new(nb__engine_fn(), gs->ndim, gs->dims);
    if (!t) return NB_ENOMEM;
    nb__ew_apply(f, NULL, nb__data(t), false, gs, nin, in);
    nb_status rc = nb__grad_sum(n, gx, i, t, 1.0f);
    nb__release(t);
    return rc;
}

/* A saved operand into *t and its shape into *s (left alone when not saved). */
static nb_status operand(nb_node *n, int slot, nb_tensor **t, nb_shape *s)
{
    *t = NULL;
    if (!nb__has_saved(n, slot)) return NB_OK;
    if (!(*t = nb__saved(n, slot))) return nb__last_code();
    *s = nb__size(*t);
    return NB_OK;
}

nb_status nb__binop_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const nb__binop *op = (const nb__binop *)(const void *)n->op;
    nb_tensor *g = gy[0];
    if (!op->grad_a && !op->grad_b) { /* constant derivatives (add, sub): nothing saved */
        nb_status rc = NB_OK;
        if (nb__needs_grad(n, 0)) rc = nb__grad_sum(n, gx, 0, g, op->sign_a);
        if (rc == NB_OK && nb__needs_grad(n, 1)) rc = nb__grad_sum(n, gx, 1, g, op->sign_b);
        return rc;
    }
    nb__binop_state *st = nb__state(n);
    nb_tensor *a, *b, *y;
    nb_shape as = NB_SHAPE0, bs = NB_SHAPE0, ys = NB_SHAPE0, gs = nb__size(g);
    nb_status rc = operand(n, SLOT_A, &a, &as);
    if (rc == NB_OK) rc = operand(n, SLOT_B, &b, &bs);
    if (rc == NB_OK) rc = operand(n, SLOT_OUT, &y, &ys);
    if (rc != NB_OK) return rc;
    nb__operand in[4] = {{nb__data(g), &gs},
                         {a ? nb__data(a) : NULL, &as},
                         {b                 ? nb__data(b)
                          : st->b_is_scalar ? &st->scalar
                                            : NULL,
                          &bs},
                         {y ? nb__data(y) : NULL, &ys}};
    for (int i = 0; i < 2 && rc == NB_OK; i++) {
        if (!nb__needs_grad(n, i)) continue;
        nb__ew_fn f = i ? op->grad_b : op->grad_a;
        if (!f) {
            rc = nb__grad_sum(n, gx, i, g, i ? op->sign_b : op->sign_a);
            continue;
        }
        rc = grad_apply(n, gx, i, f, &gs, 4, in);
    }
    return rc;
}

nb_status nb__binary_(const char *fn, const nb__binop *op, nb_tensor *a, const nb_tensor *b,
                      float s)
{
    if (!a) return nb__null(fn, "a");
    nb_status rc = nb__check_inplace(fn, a);
    if (rc != NB_OK) return rc;
    if (b && nb__grad_enabled() && nb__requires_grad(b))
        return nb__error(NB_ESTATE, fn,
                         "in-place operations with an operand that is part of a graph "
                         "(requires grad) are not supported; use the out-of-place op or "
                         "NB_NO_GRAD");
    nb_shape as = nb__size(a), bs = b ? nb__size(b) : NB_SHAPE0, os = as;
    if (b && !nb__shape_eq(&as, &bs)) {
        if ((rc = nb__broadcast_shape(fn, &as, &bs, &os)) != NB_OK) return rc;
        if (!nb__shape_eq(&os, &as)) {
            char sa[NB__SHAPE_STR], so[NB__SHAPE_STR];
            return nb__error(
                NB_ESHAPE, fn, "output with shape %s doesn't match the broadcast shape %s",
                nb__shape_str(sa, as.ndim, as.dims), nb__shape_str(so, os.ndim, os.dims));
        }
    }
    if (b && nb__partly_overlaps(a, b))
        return nb__error(NB_EINVAL, fn,
                         "unsupported operation: some elements of the input tensor and the "
                         "written-to tensor refer to a single memory location. Please clone() "
                         "the tensor before performing the operation.");
    /* each element of a is read once, just before it is written */
    nb__operand in[2] = {{nb__data(a), &as}, {b ? nb__data(b) : &s, &bs}};
    nb__ew_apply(op->forward, NULL, nb__data(a), false, &as, 2, in);
    a->storage->version++;
    return NB_OK;
}

/* ---- comparisons ---------------------------------------------------------------------------
 * 1 where the comparison holds, else 0; a NaN compares unequal to everything (IEEE). Plain
 * tensors: no node, whatever the operands require.
 * --------------------------------------------------------------------------------------- */

NB__EW_KERNEL(eq_fwd, V0 == V1 ? 1.0f : 0.0f)
NB__EW_KERNEL(ne_fwd, V0 != V1 ? 1.0f : 0.0f)
NB__EW_KERNEL(lt_fwd, V0 < V1 ? 1.0f : 0.0f)
NB__EW_KERNEL(le_fwd, V0 <= V1 ? 1.0f : 0.0f)
NB__EW_KERNEL(gt_fwd, V0 > V1 ? 1.0f : 0.0f)
NB__EW_KERNEL(ge_fwd, V0 >= V1 ? 1.0f : 0.0f)

static nb_tensor *compare(const char *fn, nb__ew_fn f, nb_tensor *a, nb_tensor *b)
{
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    return forward(fn, f, a, b, 0.0f);
}

static nb_tensor *compare_scalar(const char *fn, nb__ew_fn f, nb_tensor *a, float s)
{
    if (!a) {
        nb__null(fn, "a");
        return NULL;
    }
    return forward(fn, f, a, NULL, s);
}

nb_tensor *nb_eq(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_eq", eq_fwd, a, b);
}

nb_tensor *nb_ne(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_ne", ne_fwd, a, b);
}

nb_tensor *nb_lt(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_lt", lt_fwd, a, b);
}

nb_tensor *nb_le(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_le", le_fwd, a, b);
}

nb_tensor *nb_gt(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_gt", gt_fwd, a, b);
}

nb_tensor *nb_ge(nb_tensor *a, nb_tensor *b)
{
    return compare("nb_ge", ge_fwd, a, b);
}

nb_tensor *nb_eq_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_eq_scalar", eq_fwd, a, s);
}

nb_tensor *nb_ne_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_ne_scalar", ne_fwd, a, s);
}

nb_tensor *nb_lt_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_lt_scalar", lt_fwd, a, s);
}

nb_tensor *nb_le_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_le_scalar", le_fwd, a, s);
}

nb_tensor *nb_gt_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_gt_scalar", gt_fwd, a, s);
}

nb_tensor *nb_ge_scalar(nb_tensor *a, float s)
{
    return compare_scalar("nb_ge_scalar", ge_fwd, a, s);
}

/* ---- selection -----------------------------------------------------------------------------
 * A condition or mask selects where it is nonzero (NaN included): PyTorch's are bool tensors,
 * so they get no edge and no gradient. Their nodes save them, to route the gradient.
 * --------------------------------------------------------------------------------------- */

enum { SLOT_SELECTOR };

/* V0 the gradient g, V1 the selector c: g where c holds, or where it does not */
NB__EW_KERNEL(selected_grad, V1 != 0.0f ? V0 : 0.0f)
NB__EW_KERNEL(unselected_grad, V1 != 0.0f ? 0.0f : V0)

/* gx[i] += f(g, c) summed to input i's shape, c the saved selector. */
static nb_status select_grad(nb_node *n, const nb_tensor *g, nb_tensor **gx, int i, nb__ew_fn f)
{
    nb_tensor *c = nb__saved(n, SLOT_SELECTOR);
    if (!c) return nb__last_code();
    nb_shape gs = nb__size(g), cs = nb__size(c);
    nb__operand in[2] = {{nb__data(g), &gs}, {nb__data(c), &cs}};
    return grad_apply(n, gx, i, f, &gs, 2, in);
}

/* The output of a selection: of the broadcast shape of the n operands, or NULL. */
static nb_tensor *select_out(const char *fn, int n, const nb__operand *in, nb_shape *os)
{
    *os = *in[0].shape;
    for (int j = 1; j < n; j++) {
        nb_shape s = *os;
        if (nb__broadcast_shape(fn, &s, in[j].shape, os) != NB_OK) return NULL;
    }
    return nb__new(fn, os->ndim, os->dims);
}

/* y = c ? a : b; da = sum_to(c ? g : 0), db = sum_to(c ? 0 : g) */
NB__EW_KERNEL(where_fwd, V0 != 0.0f ? V1 : V2)

static nb_status where_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    nb_status rc = NB_OK;
    if (nb__needs_grad(n, 0)) rc = select_grad(n, gy[0], gx, 0, selected_grad);
    if (rc == NB_OK && nb__needs_grad(n, 1)) rc = select_grad(n, gy[0], gx, 1, unselected_grad);
    return rc;
}

static const nb_op where_op = {"WhereBackward0", where_backward, 1, 0, 0};

nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b)
{
    static const char fn[] = "nb_where";
    if (!cond || !a || !b) {
        nb__null(fn, !cond ? "cond" : !a ? "a" : "b");
        return NULL;
    }
    nb_shape cs = nb__size(cond), as = nb__size(a), bs = nb__size(b), os;
    nb__operand in[3] = {{nb__data(cond), &cs}, {nb__data(a), &as}, {nb__data(b), &bs}};
    nb_tensor *out = select_out(fn, 3, in, &os);
    if (!out) return NULL;
    nb__ew_apply(where_fwd, NULL, nb__data(out), false, &os, 3, in);
    nb_node *n;
    out = nb__finish(fn, &where_op, out, 2, (nb_tensor *[]){a, b}, &n);
    if (n && nb__save(fn, n, SLOT_SELECTOR, cond) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

/* y = mask ? value : x (value in k[0]); dx = sum_to(mask ? 0 : g) */
NB__EW_KERNEL(masked_fill_fwd, nb__select(V1 != 0.0f, k[0], V0))

static nb_status masked_fill_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    return select_grad(n, gy[0], gx, 0, unselected_grad);
}

static const nb_op masked_fill_op = {"MaskedFillBackward0", masked_fill_backward, 1, 0, 0};

nb_tensor *nb_masked_fill(nb_tensor *x, nb_tensor *mask, float value)
{
    static const char fn[] = "nb_masked_fill";
    if (!x || !mask) {
        nb__null(fn, x ? "mask" : "x");
        return NULL;
    }
    nb_shape xs = nb__size(x), ms = nb__size(mask), os;
    nb__operand in[2] = {{nb__data(x), &xs}, {nb__data(mask), &ms}};
    nb_tensor *out = select_out(fn, 2, in, &os);
    if (!out) return NULL;
    nb__ew_apply(masked_fill_fwd, &value, nb__data(out), false, &os, 2, in);
    nb_node *n;
    out = nb__finish(fn, &masked_fill_op, out, 1, &x, &n);
    if (n && nb__save(fn, n, SLOT_SELECTOR, mask) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    return out;
}
