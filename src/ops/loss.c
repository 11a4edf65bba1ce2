/*
 * Losses, with PyTorch's formulas (Loss.cpp, LossNLL.cpp) and numerics:
 * - pointwise losses (mse, l1, smooth_l1, huber, binary_cross_entropy, kl_div): one kernel
 *   for the per-element loss, one per input for its gradient, and a shared forward, reduction
 *   and backward;
 * - binary cross-entropy on logits (the stable formula);
 * - nll_loss and cross_entropy on class indices (float32 integers) or class probabilities:
 *   cross_entropy is one fused node (log_softmax and the NLL together), whose backward is
 *   softmax·Σq − q for the target distribution q the loss weighs the log-probabilities with.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

NB__EW_KERNEL(copy_k, V0)

/* ---- shared checks --------------------------------------------------------------------- */

static nb_status check_reduction(const char *fn, nb_reduction r, bool batchmean)
{
    if (r == NB_NONE || r == NB_MEAN || r == NB_SUM || (batchmean && r == NB_BATCHMEAN))
        return NB_OK;
    if (r == NB_BATCHMEAN)
        return nb__error(NB_EINVAL, fn, "batchmean is not a valid value for reduction");
    return nb__error(NB_EINVAL, fn, "%d is not a valid value for reduction", (int)r);
}

static nb_status check_same_shape(const char *fn, const nb_tensor *input, const nb_tensor *target)
{
    if (nb__same_shape(input, target)) return NB_OK;
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
    return nb__error(NB_ESHAPE, fn, "Target size (%s) must be the same as input size (%s)",
                     nb__shape_str(a, target->ndim, target->shape),
                     nb__shape_str(b, input->ndim, input->shape));
}

/* Constant inputs (weights) may not require grad while grad mode is on, as in PyTorch. */
static nb_status check_constant(const char *fn, const char *op, const char *what,
                                const nb_tensor *t)
{
    if (!t || !nb__grad_enabled() || !nb__requires_grad(t)) return NB_OK;
    return nb__error(NB_EINVAL, fn,
                     "The function '%s' is not differentiable with respect to argument '%s'. "
                     "This input cannot have requires_grad True.",
                     op, what);
}

/* t (or NULL) must broadcast to x's shape. */
static nb_status check_broadcasts(const char *fn, const char *what, const nb_tensor *t,
                                  const nb_tensor *x)
{
    if (!t) return NB_OK;
    nb_shape ts = nb__size(t), xs = nb__size(x), bs;
    if (nb__broadcast_shape(fn, &ts, &xs, &bs) != NB_OK) return NB_ESHAPE;
    if (nb__shape_eq(&bs, &xs)) return NB_OK;
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
    return nb__error(NB_ESHAPE, fn, "%s of shape %s does not broadcast to input shape %s", what,
                     nb__shape_str(a, ts.ndim, ts.dims), nb__shape_str(b, xs.ndim, xs.dims));
}

/* The reduced value of n per-element losses, summed in double: Σ, Σ / n or Σ / batch. */
static float reduce_total(const float *l, int64_t n, nb_reduction r, int64_t batch)
{
    float total = (float)nb__sum_all(l, n);
    if (r == NB_MEAN) total /= (float)n;
    if (r == NB_BATCHMEAN) total /= (float)batch;
    return total;
}

/* ---- pointwise losses ----------------------------------------------------------------------
 * forward: ℓ from (V0, V1, V2) = (x, y, w), k[0] the op's parameter (w is 1 unless the op
 * takes a weight). grad_x: g·∂ℓ/∂x·scale from (V0, V1, V2, V3) = (g, x, y, w), k[0] = scale
 * (the reduction's 1/n, times 2 for mse), k[1] the parameter. grad_y likewise for the target,
 * or NULL where PyTorch computes the target's gradient as grad_x with x and y swapped.
 * ------------------------------------------------------------------------------------------ */

/* (x − y)²; dx = scale·(x − y)·g */
NB__EW_KERNEL(mse_fwd, (V0 - V1) * (V0 - V1))
NB__EW_KERNEL(mse_grad, k[0] * (V1 - V2) * V0)

/* |x − y|; dx = sgn(x − y)·g (PyTorch's AbsBackward0 after SubBackward0), dy = −dx (so −0
 * where x = y and g > 0) */
NB__EW_KERNEL(l1_fwd, fabsf(V0 - V1))
NB__EW_KERNEL(l1_grad, ((float)(V1 > V2) - (float)(V1 < V2)) * (V0 * k[0]))
NB__EW_KERNEL(l1_grad_y, -(((float)(V1 > V2) - (float)(V1 < V2)) * (V0 * k[0])))

/* z = |x − y|: z < β ? z²/(2β) : z − β/2; dx = g·clamp((x − y)/β, −1, 1), in PyTorch's
 * three cases (a zero β takes the outer ones) */
NB__EW_KERNEL(smooth_l1_fwd, fabsf(V0 - V1) < k[0] ? 0.5f * fabsf(V0 - V1) * fabsf(V0 - V1) / k[0]
                                                   : fabsf(V0 - V1) - 0.5f * k[0])
NB__EW_KERNEL(smooth_l1_grad, V1 - V2 <= -k[1]  ? -k[0] * V0
                              : V1 - V2 >= k[1] ? k[0] * V0
                                                : k[0] * (V1 - V2) * V0 / k[1])

/* z = |x − y|: z < δ ? z²/2 : δ·(z − δ/2); dx = g·clamp(x − y, −δ, δ) */
NB__EW_KERNEL(huber_fwd, fabsf(V0 - V1) < k[0] ? 0.5f * fabsf(V0 - V1) * fabsf(V0 - V1)
                                               : k[0] * (fabsf(V0 - V1) - 0.5f * k[0]))
NB__EW_KERNEL(huber_grad, V1 - V2 <= -k[1]  ? -k[0] * V0 * k[1]
                          : V1 - V2 >= k[1] ? k[0] * V0 * k[1]
                                            : k[0] * (V1 - V2) * V0)

/* max(v, lo) by a select, as std::max (v where v is NaN): fmaxf keeps a loop scalar */
#define MAX_SEL(v, lo) nb__pick((v) < (lo), (lo), (v))

/* −w·(y·log x + (1 − y)·log(1 − x)), each log clamped at −100;
 * dx = w·g·(x − y) / max((1 − x)·x, 1e-12); dy = −w·g·logit(x), as PyTorch's
 * (log(1 − x) − log x)·g·w (+0 at x = 1/2 for g > 0) */
NB__EW_KERNEL(bce_fwd, ((V1 - 1.0f) * MAX_SEL(nb__log1pf(-V0), -100.0f) -
                        V1 * MAX_SEL(nb__logf(V0), -100.0f)) *
                           V2)
NB__EW_KERNEL(bce_grad_x, V0 *(V1 - V2) / MAX_SEL((1.0f - V1) * V1, 1e-12f) * V3 * k[0])
NB__EW_KERNEL(bce_grad_y, (nb__logf(1.0f - V1) - nb__logf(V1)) * V0 * V3 * k[0])

/* y·log y − y·x (xlogy: 0 where y = 0); dx = −y·g; dy = g·(log y + y/y − x) (NaN at y = 0,
 * as PyTorch's xlogy backward gives) */
NB__EW_KERNEL(kl_fwd, nb__pick(V1 == 0.0f, 0.0f, V1 *nb__logf(V1)) - V1 * V0)
NB__EW_KERNEL(kl_grad_x, -V2 *(V0 *k[0]))
NB__EW_KERNEL(kl_grad_y, V0 *k[0] * (nb__pick(V2 != 0.0f, nb__logf(V2), 0.0f) + V2 / V2 - V1))

/* log_target: e^y·(y − x); dx = −e^y·g; dy = e^y·(y − x + 1)·g */
NB__EW_KERNEL(kl_log_fwd, nb__expf(V1) * (V1 - V0))
NB__EW_KERNEL(kl_log_grad_x, -nb__expf(V2) * (V0 * k[0]))
NB__EW_KERNEL(kl_log_grad_y, V0 *k[0] * nb__expf(V2) * (V2 - V1 + 1.0f))

typedef struct pw_loss {
    nb__ew_fn forward, grad_x, grad_y;
    double norm;          /* the gradient's factor before the reduction's 1/n: 2 for mse */
    const nb_op *node[4]; /* by reduction: none, mean, sum, batchmean */
} pw_loss;

/* Node state of a pointwise loss. Saved: input, target and weight (when given). */
typedef struct pw_state {
    const pw_loss *op;
    float scale, param;
} pw_state;

enum { PW_INPUT, PW_TARGET, PW_WEIGHT };

static const float one = 1.0f;
static const nb_shape scalar_shape = {0, {0}};

static nb_status pw_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const pw_state *st = nb__state(n);
    nb_tensor *x = nb__saved(n, PW_INPUT), *y = nb__saved(n, PW_TARGET), *w = NULL;
    if (!x || !y) return nb__last_code();
    if (nb__has_saved(n, PW_WEIGHT) && !(w = nb__saved(n, PW_WEIGHT))) return nb__last_code();
    nb_shape xs = nb__size(x), gs = nb__size(gy[0]), ws = w ? nb__size(w) : scalar_shape;
    const float k[2] = {st->scale, st->param};
    for (int i = 0; i < 2; i++) {
        if (!nb__needs_grad(n, i)) continue;
        bool acc, swap = i == 1 && !st->op->grad_y;
        float *d = nb__grad_dst(n, gx, i, &acc);
        if (!d) return NB_ENOMEM;
        nb__ew_fn f = i == 0 || swap ? st->op->grad_x : st->op->grad_y;
        const nb__operand ops[4] = {{nb__data(gy[0]), &gs},
                                    {nb__data(swap ? y : x), &xs},
                                    {nb__data(swap ? x : y), &xs},
                                    {w ? nb__data(w) : &one, &ws}};
        nb__ew_apply(f, k, d, acc, &xs, 4, ops);
    }
    return NB_OK;
}

#define PW_NODE(name)                                                                              \
    {                                                                                              \
        name, pw_backward, 3, sizeof(pw_state), 0                                                  \
    }
static const nb_op mse_node = PW_NODE("MseLossBackward0");
static const nb_op smooth_l1_node = PW_NODE("SmoothL1LossBackward0");
static const nb_op huber_node = PW_NODE("HuberLossBackward0");
static const nb_op bce_node = PW_NODE("BinaryCrossEntropyBackward0");
/* PyTorch composes these from several ops; nabla's one node takes the name of the last */
static const nb_op abs_node = PW_NODE("AbsBackward0");
static const nb_op sub_node = PW_NODE("SubBackward0");
static const nb_op mul_node = PW_NODE("MulBackward0");
static const nb_op mean_node = PW_NODE("MeanBackward0");
static const nb_op sum_node = PW_NODE("SumBackward0");
static const nb_op div_node = PW_NODE("DivBackward0");

static const pw_loss mse_op = {mse_fwd, mse_grad, NULL, 2.0, {&mse_node, &mse_node, &mse_node}};
static const pw_loss l1_op = {l1_fwd, l1_grad, l1_grad_y, 1.0, {&abs_node, &mean_node, &sum_node}};
static const pw_loss smooth_l1_op = {
    smooth_l1_fwd, smooth_l1_grad, NULL, 1.0, {&smooth_l1_node, &smooth_l1_node, &smooth_l1_node}};
static const pw_loss huber_op = {
    huber_fwd, huber_grad, NULL, 1.0, {&huber_node, &huber_node, &huber_node}};
static const pw_loss bce_op = {
    bce_fwd, bce_grad_x, bce_grad_y, 1.0, {&bce_node, &bce_node, &bce_node}};
static const pw_loss kl_op = {
    kl_fwd, kl_grad_x, kl_grad_y, 1.0, {&sub_node, &mean_node, &sum_node, &div_node}};
static const pw_loss kl_log_op = {
    kl_log_fwd, kl_log_grad_x, kl_log_grad_y, 1.0, {&mul_node, &mean_node, &sum_node, &div_node}};

/* The arguments every pointwise loss checks; weight may be NULL (absent). */
static nb_status pw_check(const char *fn, const char *op, nb_tensor *input, nb_tensor *target,
                          nb_tensor *weight, nb_reduction reduction, bool batchmean)
{
    if (!input || !target) return nb__null(fn, input ? "target" : "input");
    if (check_reduction(fn, reduction, batchmean) != NB_OK) return NB_EINVAL;
    if (check_same_shape(fn, input, target) != NB_OK) return NB_ESHAPE;
    if (check_constant(fn, op, "weight", weight) != NB_OK) return NB_EINVAL;
    return check_broadcasts(fn, "weight", weight, input);
}

/* reduce(w·ℓ(input, target; param)) for checked arguments, recorded. */
static nb_tensor *pw_apply(const char *fn, const pw_loss *op, nb_tensor *input, nb_tensor *target,
                           nb_tensor *weight, nb_reduction reduction, float param)
{
    nb_shape xs = nb__size(input), ws = weight ? nb__size(weight) : scalar_shape;
    nb_tensor *loss = nb__new(fn, xs.ndim, xs.dims), *out;
    if (!loss) return NULL;
    const nb__operand ops[3] = {
        {nb__data(input), &xs}, {nb__data(target), &xs}, {weight ? nb__data(weight) : &one, &ws}};
    nb__ew_apply(op->forward, &param, nb__data(loss), false, &xs, 3, ops);
    int64_t n = input->numel, batch = input->ndim > 0 ? input->shape[0] : 1;
    if (reduction == NB_NONE) {
        out = loss;
    } else {
        out = nb__new(fn, 0, NULL);
        if (out) nb__data(out)[0] = reduce_total(nb__data(loss), n, reduction, batch);
        nb__drop(loss);
        if (!out) return NULL;
    }
    /* PyTorch's batchmean divides only when there is a batch dim */
    const nb_op *node_op =
        op->node[reduction == NB_BATCHMEAN && input->ndim == 0 ? NB_SUM : reduction];
    nb_node *node;
    out = nb__finish(fn, node_op, out, 2, (nb_tensor *[]){input, target}, &node);
    if (node) {
        double div = reduction == NB_MEAN        ? (double)n
                     : reduction == NB_BATCHMEAN ? (double)batch
                                                 : 1.0;
        *(pw_state *)nb__state(node) = (pw_state){op, (float)(op->norm / div), param};
        if (nb__save(fn, node, PW_INPUT, input) != NB_OK ||
            nb__save(fn, node, PW_TARGET, target) != NB_OK ||
            (weight && nb__save(fn, node, PW_WEIGHT, weight) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

nb_tensor *nb_mse_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction)
{
    static const char fn[] = "nb_mse_loss";
    if (pw_check(fn, "mse_loss", input, target, NULL, reduction, false) != NB_OK) return NULL;
    return pw_apply(fn, &mse_op, input, target, NULL, reduction, 0.0f);
}

nb_tensor *nb_l1_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction)
{
    static const char fn[] = "nb_l1_loss";
    if (pw_check(fn, "l1_loss", input, target, NULL, reduction, false) != NB_OK) return NULL;
    return pw_apply(fn, &l1_op, input, target, NULL, reduction, 0.0f);
}

nb_tensor *nb_smooth_l1_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction,
                             double beta)
{
    static const char fn[] = "nb_smooth_l1_loss";
    if (pw_check(fn, "smooth_l1_loss", input, target, NULL, reduction, false) != NB_OK) return NULL;
    if (beta < 0) {
        nb__error(NB_EINVAL, fn, "smooth_l1_loss does not support negative values for beta.");
        return NULL;
    }
    return pw_apply(fn, &smooth_l1_op, input, target, NULL, reduction, (float)beta);
}

nb_tensor *nb_huber_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction, double delta)
{
    static const char fn[] = "nb_huber_loss";
    if (pw_check(fn, "huber_loss", input, target, NULL, reduction, false) != NB_OK) return NULL;
    if (!(delta > 0)) {
        nb__error(NB_EINVAL, fn, "huber_loss does not support non-positive values for delta.");
        return NULL;
    }
    return pw_apply(fn, &huber_op, input, target, NULL, reduction, (float)delta);
}

nb_tensor *nb_binary_cross_entropy(nb_tensor *input, nb_tensor *target, nb_tensor *weight,
                                   nb_reduction reduction)
{
    static const char fn[] = "nb_binary_cross_entropy";
    if (!weight && nb__pending()) return NULL; /* a failed optional input */
    if (pw_check(fn, "binary_cross_entropy", input, target, weight, reduction, false) != NB_OK)
        return NULL;
    const float *X = nb__data(input);
    for (int64_t i = 0; i < input->numel; i++)
        if (!(X[i] >= 0.0f && X[i] <= 1.0f)) {
            nb__error(NB_EINVAL, fn,
                      "all elements of input should be between 0 and 1, got %g at position %lld",
                      (double)X[i], (long long)i);
            return NULL;
        }
    return pw_apply(fn, &bce_op, input, target, weight, reduction, 0.0f);
}

nb_tensor *nb_kl_div(nb_tensor *input, nb_tensor *target, nb_reduction reduction, bool log_target)
{
    static const char fn[] = "nb_kl_div";
    if (pw_check(fn, "kl_div", input, target, NULL, reduction, true) != NB_OK) return NULL;
    return pw_apply(fn, log_target ? &kl_log_op : &kl_op, input, target, NULL, reduction, 0.0f);
}

/* ---- binary cross-entropy on logits ------------------------------------------------------ */

/* BCEWithLogitsBackward0: the reduction; saved: input, target, weight and pos_weight (the
 * last two only when given). */
typedef struct bcel_state {
    nb_reduction reduction;
} bcel_state;

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
    if (check_broadcasts(fn, what, t, x) != NB_OK) return NB_ESHAPE;
    if (nb__same_shape(t, x)) {
        *out = nb__data(t);
        return NB_OK;
    }
    nb_shape ts = nb__size(t), xs = nb__size(x);
    if (!(*owned = nb__new(fn, xs.ndim, xs.dims))) return NB_ENOMEM;
    nb__ew_apply(copy_k, NULL, nb__data(*owned), false, &xs, 1, &(nb__operand){nb__data(t), &ts});
    *out = nb__data(*owned);
    return NB_OK;
}

/*
 * The loss and its gradients are computed BCEL_LANES elements at a time, in loops of that
 * fixed length that vectorise; the last block is padded with zeros, so a few logits take one
 * pass of the vector code rather than a scalar loop. The padding's results are never stored
 * or summed.
 */
#define BCEL_LANES 8
/* the blocks' arrays on whole vectors: a vector load that straddles two cache lines costs
 * two */
#define BCEL_ALIGNED __attribute__((aligned(32)))

/* The inputs of one block: pointers into the tensors for a whole block, else the first m
 * elements copied into buf's rows and the rest zero. NULL stays NULL. */
static void bcel_block(const float *const *src, int n_src, int64_t e0, int64_t m,
                       float (*buf)[BCEL_LANES], const float **out)
{
    for (int s = 0; s < n_src; s++) {
        if (!src[s] || m == BCEL_LANES) {
            out[s] = src[s] ? src[s] + e0 : NULL;
            continue;
        }
        for (int j = 0; j < BCEL_LANES; j++) buf[s][j] = j < m ? src[s][e0 + j] : 0.0f;
        out[s] = buf[s];
    }
}

/* One gradient of binary_cross_entropy_with_logits, for blocks of elements on the pool. */
typedef struct bcel_grad {
    const float *src[5]; /* x, y, pos_weight, weight, the per-element upstream gradient */
    const float *g0;     /* a reduced loss's one gradient, in every lane */
    float *d;
    float scale;
    int64_t numel;
    int input; /* 0: d/dx, 1: d/dy */
    bool acc;
} bcel_grad;

/* the gradient at elements [lo, hi)·BCEL_LANES */
NB__CLONES static void bcel_grad_blocks(void *ctx, int64_t lo, int64_t hi)
{
    const bcel_grad *c = ctx;
    float *const d = c->d;
    const float scale = c->scale;
    for (int64_t e0 = lo * BCEL_LANES; e0 < hi * BCEL_LANES && e0 < c->numel; e0 += BCEL_LANES) {
        int64_t m = c->numel - e0 < BCEL_LANES ? c->numel - e0 : BCEL_LANES;
        BCEL_ALIGNED float buf[5][BCEL_LANES];
        BCEL_ALIGNED float v[BCEL_LANES];
        const float *b[5];
        bcel_block(c->src, 5, e0, m, buf, b);
        const float *bx = b[0], *by = b[1], *bp = b[2], *bw = b[3], *bg = b[4] ? b[4] : c->g0;
        if (c->input == 0 && !bp) /* d/dx: (σ(x) − y)·g */
            for (int j = 0; j < BCEL_LANES; j++) v[j] = 1.0f / (1.0f + nb__expf(-bx[j])) - by[j];
        else if (c->input == 0) /* with pos_weight: ((p·y + 1 − y)·σ(x) − p·y)·g */
            for (int j = 0; j < BCEL_LANES; j++) {
                float sg = 1.0f / (1.0f + nb__expf(-bx[j])), t = bp[j] * by[j];
                v[j] = (t + 1.0f - by[j]) * sg - t;
            }
        else if (!bp) /* d/dy: −x·g */
            for (int j = 0; j < BCEL_LANES; j++) v[j] = -bx[j];
        else /* with pos_weight: (logσ(−x) − p·logσ(x))·g */
            for (int j = 0; j < BCEL_LANES; j++)
                v[j] = nb__log_sigmoidf(-bx[j]) - nb__log_sigmoidf(bx[j]) * bp[j];
        for (int j = 0; j < BCEL_LANES; j++) v[j] *= bg[j];
        if (bw)
            for (int j = 0; j < BCEL_LANES; j++) v[j] *= bw[j];
        float *de = d + e0;
        for (int64_t j = 0; j < m; j++) de[j] = c->acc ? de[j] + v[j] / scale : v[j] / scale;
    }
}

static nb_status bcel_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
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
    nb_reduction red = ((const bcel_state *)nb__state(n))->reduction;
    const float *G = nb__data(gy[0]);
    BCEL_ALIGNED float g0[BCEL_LANES];
    for (int j = 0; j < BCEL_LANES; j++) g0[j] = G[0];
    bcel_grad c = {{nb__data(x), nb__data(y), P, W, red == NB_NONE ? G : NULL},
                   g0,
                   NULL,
                   red == NB_MEAN ? (float)x->numel : 1.0f,
                   x->numel,
                   0,
                   false};
    for (int i = 0; i < 2 && rc == NB_OK; i++) {
        if (!nb__needs_grad(n, i)) continue;
        if (!(c.d = nb__grad_dst(n, gx, i, &c.acc))) {
            rc = NB_ENOMEM;
            break;
        }
        c.input = i;
        nb__split((x->numel + BCEL_LANES - 1) / BCEL_LANES, BCEL_LANES, bcel_grad_blocks, &c);
    }
    nb__release(we);
    nb__release(pe);
    return rc;
}

static const nb_op bcel_op = {"BCEWithLogitsBackward0", bcel_backward, 4, sizeof(bcel_state), 0};

/* The inputs and the per-element losses (or NULL) of binary_cross_entropy_with_logits. */
typedef struct bcel_fwd {
    const float *src[4]; /* x, y, pos_weight, weight */
    float *L;
} bcel_fwd;

/* Losses summed by runs of this many (a multiple of BCEL_LANES), each in a buffer when they
 * are not kept */
#define BCEL_RUN 512

/*
 * The losses of elements [lo, hi) (lo a multiple of BCEL_LANES) into L, when it is not NULL,
 * else their sum in double: nb__sum_contiguous over runs of BCEL_RUN, the runs in order.
 */
NB__CLONES static double bcel_losses(void *ctx, int64_t lo, int64_t hi)
{
    const bcel_fwd *c = ctx;
    BCEL_ALIGNED float run[BCEL_RUN];
    double total = 0.0;
    for (int64_t r0 = lo; r0 < hi; r0 += BCEL_RUN) {
        int64_t rn = hi - r0 < BCEL_RUN ? hi - r0 : BCEL_RUN;
        float *out = c->L ? c->L + r0 : run;
        for (int64_t e0 = r0; e0 < r0 + rn; e0 += BCEL_LANES) {
            int64_t m = r0 + rn - e0 < BCEL_LANES ? r0 + rn - e0 : BCEL_LANES;
            BCEL_ALIGNED float buf[4][BCEL_LANES];
            BCEL_ALIGNED float l[BCEL_LANES];
            const float *b[4];
            bcel_block(c->src, 4, e0, m, buf, b);
            const float *bx = b[0], *by = b[1], *bp = b[2], *bw = b[3];
            /* PyTorch's kernel, in float, in its order: max(−x, 0) by a select (0 at a NaN, as
             * fmaxf), then log(e^(−max) + e^(−x − max)). One of those two exponents is ±0
             * (then its e^ is 1) unless x is −inf, where the other is NaN and so is their sum:
             * e^(their sum) + 1 has the same bits, with one exp. */
            if (!bp)
                for (int j = 0; j < BCEL_LANES; j++) {
                    float x = bx[j], max_val = nb__pick(x < 0.0f, -x, 0.0f);
                    float soft = nb__logf(1.0f + nb__expf(-max_val + (-x - max_val)));
                    l[j] = (1.0f - by[j]) * x + max_val + soft;
                }
            else
                for (int j = 0; j < BCEL_LANES; j++) {
                    float x = bx[j], y = by[j], max_val = nb__pick(x < 0.0f, -x, 0.0f);
                    float soft = nb__logf(1.0f + nb__expf(-max_val + (-x - max_val)));
                    l[j] = (1.0f - y) * x + ((bp[j] - 1.0f) * y + 1.0f) * (soft + max_val);
                }
            if (bw)
                for (int j = 0; j < BCEL_LANES; j++) l[j] *= bw[j];
            float *o = out + (e0 - r0);
            if (m == BCEL_LANES)
                for (int j = 0; j < BCEL_LANES; j++) o[j] = l[j];
            else
                for (int64_t j = 0; j < m; j++) o[j] = l[j];
        }
        if (!c->L) total += nb__sum_contiguous(run, rn);
    }
    return total;
}

nb_tensor *nb_binary_cross_entropy_with_logits(nb_tensor *input, nb_tensor *target,
                                               nb_tensor *weight, nb_tensor *pos_weight,
                                               nb_reduction reduction)
{
    static const char fn[] = "nb_binary_cross_entropy_with_logits";
    static const char op[] = "binary_cross_entropy_with_logits";
    if (!input || !target) {
        nb__null(fn, input ? "target" : "input");
        return NULL;
    }
    if (check_reduction(fn, reduction, false) != NB_OK ||
        check_same_shape(fn, input, target) != NB_OK)
        return NULL;
    if ((!weight || !pos_weight) && nb__pending()) return NULL; /* a failed optional input */
    if (check_constant(fn, op, "weight", weight) != NB_OK ||
        check_constant(fn, op, "pos_weight", pos_weight) != NB_OK)
        return NULL;
    const float *W, *P;
    nb_tensor *we = NULL, *pe = NULL, *out = NULL, *loss = NULL;
    if (expand_opt(fn, "weight", weight, input, &W, &we) != NB_OK ||
        expand_opt(fn, "pos_weight", pos_weight, input, &P, &pe) != NB_OK)
        goto done;
    /* the per-element losses are kept only when they are the result (reduction none) */
    if (reduction == NB_NONE && !(loss = nb__new(fn, input->ndim, input->shape))) goto done;
    const float *X = nb__data(input), *Y = nb__data(target);
    float *L = loss ? nb__data(loss) : NULL;
    bcel_fwd c = {{X, Y, P, W}, L};
    double total = nb__sum_chunks(input->numel, bcel_losses, &c);
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
    out = nb__finish(fn, &bcel_op, out, 2, (nb_tensor *[]){input, target}, &n);
    if (n) {
        ((bcel_state *)nb__state(n))->reduction = reduction;
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

/* ---- class targets: nll_loss and cross_entropy ---------------------------------------------- */

/*
 * The shape of a class-index problem: input [N, C] with target [N], or input [C] with a 0-d
 * target (one sample, N = 1). weight (or NULL) is [C].
 */
typedef struct classes {
    int64_t n, c;
} classes;

/* weight (or NULL) must be [c]; a constant unless differentiable says otherwise. */
static nb_status check_weight(const char *fn, const char *op, const nb_tensor *weight, int64_t c,
                              bool differentiable)
{
    if (weight && (weight->ndim != 1 || weight->shape[0] != c)) {
        char s[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn,
                         "weight tensor should be defined either for all %lld classes or no "
                         "classes but got weight tensor of shape: %s",
                         (long long)c, nb__shape_str(s, weight->ndim, weight->shape));
    }
    return differentiable ? NB_OK : check_constant(fn, op, "weight", weight);
}

static nb_status check_input_rank(const char *fn, const nb_tensor *input)
{
    if (input->ndim == 1 || input->ndim == 2) return NB_OK;
    if (input->ndim == 0) return nb__error(NB_ESHAPE, fn, "Expected 1 or more dimensions (got 0)");
    return nb__error(NB_ESHAPE, fn, "input must be [N, C] or [C], got %d dimensions", input->ndim);
}

/* The checks of a class-index target: its shape, and each value an integer class or
 * ignore_index. */
static nb_status check_class_target(const char *fn, const char *op, const nb_tensor *input,
                                    const nb_tensor *target, int64_t ignore_index, classes *k)
{
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
    k->n = input->ndim == 2 ? input->shape[0] : 1;
    k->c = input->shape[input->ndim - 1];
    if (input->ndim == 1 && target->ndim != 0)
        return nb__error(NB_ESHAPE, fn, "size mismatch (got input: %s, target: %s)",
                         nb__shape_str(a, input->ndim, input->shape),
                         nb__shape_str(b, target->ndim, target->shape));
    if (input->ndim == 2 && target->ndim != 1)
        return nb__error(NB_ESHAPE, fn,
                         "0D or 1D target tensor expected, multi-target not supported");
    if (input->ndim == 2 && target->shape[0] != k->n)
        return nb__error(NB_ESHAPE, fn,
                         "Expected input batch_size (%lld) to match target batch_size (%lld).",
                         (long long)k->n, (long long)target->shape[0]);
    if (nb__grad_enabled() && nb__requires_grad(target))
        return nb__error(NB_EINVAL, fn,
                         "The function '%s' is not differentiable with respect to argument "
                         "'target' (class indices). This input cannot have requires_grad True.",
                         op);
    const float *T = nb__data(target);
    for (int64_t i = 0; i < k->n; i++) {
        double t = (double)T[i];
        if (t != floor(t) || !isfinite(t))
            return nb__error(NB_EINVAL, fn, "target %g at position %lld is not an integer", t,
                             (long long)i);
        /* ignored as the loss later tells it, as an int64_t, which t may not fit */
        bool ignored = t >= -0x1p63 && t < 0x1p63 && (int64_t)t == ignore_index;
        if (!ignored && (t < 0 || t >= (double)k->c))
            return nb__error(NB_EINVAL, fn,
                             "target %.0f at position %lld is out of bounds (%lld classes)", t,
                             (long long)i, (long long)k->c);
    }
    return NB_OK;
}

/*
 * Σ over the non-ignored samples of −w[t]·lp[i, t] and the total weight, accumulated as
 * PyTorch's nll_loss does (a cascade of 8 partial sums in float), so the same log-probabilities
 * give the same bits. Mean divides by the total weight (NaN when every target is ignored).
 */
static float nll_total(const float *lp, const float *T, const float *W, classes k, int64_t ignore,
                       bool mean, float *total_weight)
{
    enum { LEVELS = 8 };
    int64_t bits = 0; /* ⌈log2 n⌉ */
    for (uint64_t v = k.n > 1 ? (uint64_t)(k.n - 1) : 0; v; v >>= 1) bits++;
    int64_t power = bits / LEVELS > 4 ? bits / LEVELS : 4;
    int64_t mask = ((int64_t)1 << power) - 1, ignored = 0;
    float ls[LEVELS] = {0}, ws[LEVELS] = {0};
    for (int64_t b = 0; b < k.n; b++) {
        int64_t t = (int64_t)T[b];
        if (t == ignore) {
            ignored++;
            continue;
        }
        float v = lp[b * k.c + t];
        if (W) {
            ls[0] -= v * W[t];
            ws[0] += W[t];
        } else {
            ls[0] -= v;
        }
        for (int j = 0; j + 1 < LEVELS && (b & (mask << (j * power))) == 0; j++) {
            ws[j + 1] += ws[j];
            ls[j + 1] += ls[j];
            ws[j] = ls[j] = 0.0f;
        }
    }
    float tw = W ? 0.0f : (float)(k.n - ignored), total = 0.0f;
    for (int j = 0; j < LEVELS; j++) {
        if (W) tw += ws[j];
        total += ls[j];
    }
    *total_weight = tw;
    return mean ? total / tw : total;
}

/* Per sample: −w[t]·lp[i, t], 0 where ignored. */
static void nll_rows(const float *lp, const float *T, const float *W, classes k, int64_t ignore,
                     float *out)
{
    for (int64_t i = 0; i < k.n; i++) {
        int64_t t = (int64_t)T[i];
        out[i] = t == ignore ? 0.0f : -lp[i * k.c + t] * (W ? W[t] : 1.0f);
    }
}

/* NllLossBackward0: saved target and weight; the denominator of the mean. */
typedef struct nll_state {
    nb_reduction reduction;
    int64_t ignore_index;
    float total_weight;
} nll_state;

enum { NLL_TARGET, NLL_WEIGHT };

/* dx[i, t] = −w[t]·g_i (÷ the total weight for mean); 0 elsewhere and for ignored samples */
static nb_status nll_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const nll_state *st = nb__state(n);
    nb_tensor *t = nb__saved(n, NLL_TARGET), *w = NULL;
    if (!t) return nb__last_code();
    if (nb__has_saved(n, NLL_WEIGHT) && !(w = nb__saved(n, NLL_WEIGHT))) return nb__last_code();
    nb_shape s = nb__input_shape(n, 0);
    classes k = {s.ndim == 2 ? s.dims[0] : 1, s.dims[s.ndim - 1]};
    bool acc;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    if (!acc) memset(d, 0, (size_t)(k.n * k.c) * sizeof *d);
    const float *G = nb__data(gy[0]), *T = nb__data(t), *W = w ? nb__data(w) : NULL;
    bool rows = st->reduction == NB_NONE && s.ndim == 2;
    float g = -(st->reduction == NB_MEAN ? G[0] / st->total_weight : G[0]);
    for (int64_t i = 0; i < k.n; i++) {
        int64_t c = (int64_t)T[i];
        if (c == st->ignore_index) continue;
        float gi = rows ? -G[i] : g, v = W ? W[c] * gi : gi;
        /* assigned as PyTorch does (a -0 stays -0), or added into the engine's sum */
        d[i * k.c + c] = acc ? d[i * k.c + c] + v : v;
    }
    return NB_OK;
}

static const nb_op nll_op = {"NllLossBackward0", nll_backward, 2, sizeof(nll_state), 0};

/* The loss value(s) of the class-index NLL of log-probabilities lp; NULL on OOM. */
static nb_tensor *nll_value(const char *fn, const float *lp, const nb_tensor *target,
                            const float *W, classes k, int ndim, int64_t ignore,
                            nb_reduction reduction, float *total_weight)
{
    bool rows = reduction == NB_NONE && ndim == 2;
    nb_tensor *out = nb__new(fn, rows ? 1 : 0, &k.n);
    if (!out) return NULL;
    const float *T = nb__data(target);
    *total_weight = 0.0f;
    if (rows)
        nll_rows(lp, T, W, k, ignore, nb__data(out));
    else /* a 1-D input gives one value, unreduced or not */
        nb__data(out)[0] = nll_total(lp, T, W, k, ignore, reduction == NB_MEAN, total_weight);
    return out;
}

nb_tensor *nb_nll_loss(nb_tensor *input, nb_tensor *target, nb_tensor *weight, int64_t ignore_index,
                       nb_reduction reduction)
{
    static const char fn[] = "nb_nll_loss";
    classes k;
    if (!input || !target) {
        nb__null(fn, input ? "target" : "input");
        return NULL;
    }
    if (!weight && nb__pending()) return NULL;
    if (check_reduction(fn, reduction, false) != NB_OK || check_input_rank(fn, input) != NB_OK ||
        check_class_target(fn, "nll_loss", input, target, ignore_index, &k) != NB_OK ||
        check_weight(fn, "nll_loss", weight, k.c, false) != NB_OK)
        return NULL;
    float tw;
    nb_tensor *out = nll_value(fn, nb__data(input), target, weight ? nb__data(weight) : NULL, k,
                               input->ndim, ignore_index, reduction, &tw);
    nb_node *node;
    out = nb__finish(fn, &nll_op, out, 1, &input, &node);
    if (node) {
        *(nll_state *)nb__state(node) = (nll_state){reduction, ignore_index, tw};
        if (nb__save(fn, node, NLL_TARGET, target) != NB_OK ||
            (weight && nb__save(fn, node, NLL_WEIGHT, weight) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

/* ---- cross_entropy: log_softmax and the NLL in one node ----------------------------------- */

/*
 * The node of cross_entropy. Saved: the log-probabilities, the target, the weight. Named as
 * the last op PyTorch records: NllLossBackward0 (class indices), AddBackward0 (with label
 * smoothing), DivBackward1 / NegBackward0 (probabilities, mean / otherwise).
 */
typedef struct ce_state {
    nb_reduction reduction;
    bool probs;
    int64_t ignore_index;
    float keep, spread; /* 1 − ε and ε / C as PyTorch rounds them */
    float denom;        /* mean: the total weight (class indices) or N (probabilities) */
} ce_state;

enum { CE_LOGP, CE_TARGET, CE_WEIGHT };

/* A probability target as the loss weighs it: (1 − ε)·y + ε/C, y itself without smoothing. */
static inline float ce_smoothed(const ce_state *st, float y)
{
    return st->spread != 0.0f ? y * st->keep + st->spread : y;
}

/*
 * dx = softmax·Σq − q per sample, q the distribution the loss weighs −lp with, times g:
 * class t: q = (1 − ε)·w[t]·onehot(t) + (ε/C)·w; probabilities: q = w·((1 − ε)·y + ε/C).
 * dy (probabilities) = −(1 − ε)·w·lp·g.
 */
/*
 * One sample's row of dx: v = e^lp·s − q, q = b·w[j] plus a at the target class c (class
 * indices) or g·(y·(1 − ε) + ε/C)·w[j] (probabilities), w[j] = 1 without a weight; added into
 * d when add.
 */
static inline __attribute__((always_inline)) void
ce_row(float *d, const float *lp, const float *y, const float *W, int64_t nc, int64_t c, float s,
       float a, float b, float g, const ce_state *st, bool probs, bool has_w, bool add)
{
    for (int64_t j = 0; j < nc; j++) {
        float w = has_w ? W[j] : 1.0f;
        float q =
            probs ? g * ((y[j] * st->keep + st->spread) * w) : b * w + nb__pick(j == c, a, 0.0f);
        float v = nb__expf(lp[j]) * s - q;
        d[j] = add ? d[j] + v : v;
    }
}

/* What ce_backward's rows read: rows [lo, hi) of dx (ce_dx_rows) or of dy (ce_dy_rows). */
typedef struct ce_rows {
    const ce_state *st;
    float *d;
    const float *lp, *T, *W, *G;
    int64_t c;
    float gs, wsum; /* the gradient of each sample without rows; Σ w over the classes */
    bool rows, acc; /* a gradient per sample (no reduction); add into d */
} ce_rows;

NB__CLONES static void ce_dx_rows(void *ctx, int64_t lo, int64_t hi)
{
    const ce_rows *r = ctx;
    const ce_state *st = r->st;
    const float *W = r->W;
    for (int64_t i = lo; i < hi; i++) {
        const float *li = r->lp + i * r->c, *yi = r->T + i * r->c;
        float *di = r->d + i * r->c, g = r->rows ? r->G[i] : r->gs, s = 0.0f, a = 0.0f, b = 0.0f;
        int64_t c = -1;
        if (st->probs) { /* s = Σ q */
            for (int64_t j = 0; j < r->c; j++)
                s += (yi[j] * st->keep + st->spread) * (W ? W[j] : 1.0f);
            s *= g;
        } else if ((c = (int64_t)r->T[i]) != st->ignore_index) {
            a = g * st->keep * (W ? W[c] : 1.0f);
            b = g * st->spread;
            s = a + b * r->wsum;
        }
        /* the row's loop in a copy for each case, so that each vectorises */
#define CE_ROW(probs, has_w, add) ce_row(di, li, yi, W, r->c, c, s, a, b, g, st, probs, has_w, add)
        if (st->probs && W)
            r->acc ? CE_ROW(true, true, true) : CE_ROW(true, true, false);
        else if (st->probs)
            r->acc ? CE_ROW(true, false, true) : CE_ROW(true, false, false);
        else if (W)
            r->acc ? CE_ROW(false, true, true) : CE_ROW(false, true, false);
        else
            r->acc ? CE_ROW(false, false, true) : CE_ROW(false, false, false);
#undef CE_ROW
    }
}

/* One sample's row of dy = −(1 − ε)·w·lp·g, added into d when add. */
static inline __attribute__((always_inline)) void
ce_dy_row(float *d, const float *lp, const float *W, int64_t nc, float g, bool has_w, bool add)
{
    for (int64_t j = 0; j < nc; j++) {
        float v = -lp[j] * (has_w ? W[j] : 1.0f) * g;
        d[j] = add ? d[j] + v : v;
    }
}

NB__CLONES static void ce_dy_rows(void *ctx, int64_t lo, int64_t hi)
{
    const ce_rows *r = ctx;
    for (int64_t i = lo; i < hi; i++) {
        float g = (r->rows ? r->G[i] : r->gs) * r->st->keep, *di = r->d + i * r->c;
        const float *li = r->lp + i * r->c;
        if (r->W)
            r->acc ? ce_dy_row(di, li, r->W, r->c, g, true, true)
                   : ce_dy_row(di, li, r->W, r->c, g, true, false);
        else
            r->acc ? ce_dy_row(di, li, NULL, r->c, g, false, true)
                   : ce_dy_row(di, li, NULL, r->c, g, false, false);
    }
}

/*
 * dw (probabilities) = Σ_i −g_i·(lp[i]·y'[i]), y' = (1 − ε)·y + ε/C (y itself without
 * smoothing), as the product by the weight in PyTorch's composed loss, the rows added in order
 * (on the calling thread: dw has one value per class).
 */
static void ce_dw(const ce_rows *r, int64_t n)
{
    for (int64_t j = 0; j < r->c; j++) {
        float sum = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            const float g = -(r->rows ? r->G[i] : r->gs);
            sum += g * (r->lp[i * r->c + j] * ce_smoothed(r->st, r->T[i * r->c + j]));
        }
        r->d[j] = r->acc ? r->d[j] + sum : sum;
    }
}

/* Each row of dx and dy depends on its own sample alone: the rows run on the pool when there
 * are NB__PARALLEL_MIN elements or more, with the same bits at any thread count. */
static nb_status ce_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const ce_state *st = nb__state(n);
    nb_tensor *lpt = nb__saved(n, CE_LOGP), *t = nb__saved(n, CE_TARGET), *w = NULL;
    if (!lpt || !t) return nb__last_code();
    if (nb__has_saved(n, CE_WEIGHT) && !(w = nb__saved(n, CE_WEIGHT))) return nb__last_code();
    classes k = {lpt->ndim == 2 ? lpt->shape[0] : 1, lpt->shape[lpt->ndim - 1]};
    const float *G = nb__data(gy[0]);
    ce_rows r = {st,
                 NULL,
                 nb__data(lpt),
                 nb__data(t),
                 w ? nb__data(w) : NULL,
                 G,
                 k.c,
                 st->reduction == NB_MEAN ? G[0] / st->denom : G[0],
                 0.0f,
                 st->reduction == NB_NONE,
                 false};
    /* the samples to visit: none when the input is empty, though n or c alone may be 2^62 */
    const int64_t visit = k.c > 0 ? k.n : 0;
    if (nb__needs_grad(n, 0)) {
        if (!(r.d = nb__grad_dst(n, gx, 0, &r.acc))) return NB_ENOMEM;
        for (int64_t j = 0; visit > 0 && j < k.c; j++) r.wsum += r.W ? r.W[j] : 1.0f;
        if (visit > 0) nb__split(visit, k.c, ce_dx_rows, &r);
    }
    if (st->probs && nb__needs_grad(n, 1)) {
        if (!(r.d = nb__grad_dst(n, gx, 1, &r.acc))) return NB_ENOMEM;
        if (visit > 0) nb__split(visit, k.c, ce_dy_rows, &r);
    }
    if (st->probs && n->num_inputs > 2 && nb__needs_grad(n, 2)) {
        if (!(r.d = nb__grad_dst(n, gx, 2, &r.acc))) return NB_ENOMEM;
        ce_dw(&r, k.n);
    }
    return NB_OK;
}

#define CE_NODE(name)                                                                              \
    {                                                                                              \
        name, ce_backward, 3, sizeof(ce_state), 0                                                  \
    }
static const nb_op ce_nll_op = CE_NODE("NllLossBackward0");
static const nb_op ce_add_op = CE_NODE("AddBackward0");
static const nb_op ce_div_op = CE_NODE("DivBackward1");
static const nb_op ce_neg_op = CE_NODE("NegBackward0");

/* The loss of class-index targets from lp: (1 − ε)·nll + (ε/C)·smooth, PyTorch's formula. */
static nb_tensor *ce_classes(const char *fn, const float *lp, const nb_tensor *target,
                             const float *W, classes k, int ndim, ce_state *st)
{
    nb_tensor *out =
        nll_value(fn, lp, target, W, k, ndim, st->ignore_index, st->reduction, &st->denom);
    if (!out || st->spread == 0.0f) return out;
    const float *T = nb__data(target);
    float *o = nb__data(out), total = 0.0f;
    for (int64_t i = 0; i < k.n; i++) {
        /* smooth_i = −Σ_c w_c·lp[i, c], 0 where the target is ignored */
        float s = 0.0f;
        if ((int64_t)T[i] != st->ignore_index)
            for (int64_t j = 0; j < k.c; j++) s += lp[i * k.c + j] * (W ? W[j] : 1.0f);
        s = -s;
        if (st->reduction == NB_NONE)
            o[i] = st->keep * o[i] + s * st->spread;
        else
            total += s;
    }
    if (st->reduction != NB_NONE) {
        if (st->reduction == NB_MEAN) total /= st->denom;
        o[0] = st->keep * o[0] + total * st->spread;
    }
    return out;
}

/* The loss of probability targets y from lp: −Σ_c lp·((1 − ε)·y + ε/C)·w, per sample or
 * reduced (mean: over the N samples). */
static nb_tensor *ce_probs(const char *fn, const float *lp, const nb_tensor *target, const float *W,
                           classes k, int ndim, ce_state *st)
{
    bool rows = st->reduction == NB_NONE && ndim == 2;
    nb_tensor *out = nb__new(fn, rows ? 1 : 0, &k.n);
    if (!out) return NULL;
    const float *T = nb__data(target);
    float *o = nb__data(out);
    double total = 0.0;
    /* samples of no class add nothing to the total (not visited: [2^62, 0] has 2^62 of them) */
    for (int64_t i = 0; i < k.n && (rows || k.c > 0); i++) {
        float s = 0.0f;
        for (int64_t j = 0; j < k.c; j++) {
            s += lp[i * k.c + j] * ce_smoothed(st, T[i * k.c + j]) * (W ? W[j] : 1.0f);
        }
        if (rows) o[i] = -s;
        total += (double)s;
    }
    st->denom = (float)k.n;
    if (!rows) o[0] = st->reduction == NB_MEAN ? -(float)total / st->denom : -(float)total;
    return out;
}

nb_tensor *nb_cross_entropy(nb_tensor *input, nb_tensor *target, nb_tensor *weight,
                            int64_t ignore_index, nb_reduction reduction, double label_smoothing)
{
    static const char fn[] = "nb_cross_entropy";
    if (!input || !target) {
        nb__null(fn, input ? "target" : "input");
        return NULL;
    }
    if (!weight && nb__pending()) return NULL;
    if (check_reduction(fn, reduction, false) != NB_OK || check_input_rank(fn, input) != NB_OK)
        return NULL;
    bool probs = nb__same_shape(input, target);
    classes k = {input->ndim == 2 ? input->shape[0] : 1, input->shape[input->ndim - 1]};
    if (probs && ignore_index >= 0) {
        nb__error(NB_EINVAL, fn, "ignore_index is not supported for floating point target");
        return NULL;
    }
    if (!probs && check_class_target(fn, "cross_entropy", input, target, ignore_index, &k) != NB_OK)
        return NULL;
    /* with probabilities PyTorch composes the loss of ops, the weight's product among them */
    if (check_weight(fn, "cross_entropy", weight, k.c, probs) != NB_OK) return NULL;
    if (label_smoothing > 1.0) {
        nb__error(NB_EINVAL, fn, "label_smoothing must be between 0.0 and 1.0. Got: %g",
                  label_smoothing);
        return NULL;
    }
    /* as PyTorch, only ε > 0 smooths (a negative or NaN ε is none) */
    bool smooth = label_smoothing > 0.0;
    ce_state st = {reduction,
                   probs,
                   ignore_index,
                   smooth ? (float)(1.0 - label_smoothing) : 1.0f,
                   smooth ? (float)(label_smoothing / (double)k.c) : 0.0f,
                   0.0f};
    nb_tensor *lpt = nb__new(fn, input->ndim, input->shape), *out = NULL;
    if (!lpt) return NULL;
    nb__log_softmax_rows(nb__data(input), nb__data(lpt), k.n, k.c);
    const float *W = weight ? nb__data(weight) : NULL;
    out = probs ? ce_probs(fn, nb__data(lpt), target, W, k, input->ndim, &st)
                : ce_classes(fn, nb__data(lpt), target, W, k, input->ndim, &st);
    const nb_op *op = probs    ? (reduction == NB_MEAN ? &ce_div_op : &ce_neg_op)
                      : smooth ? &ce_add_op
                               : &ce_nll_op;
    nb_node *node;
    out = nb__finish(fn, op, out, probs && weight ? 3 : 2, (nb_tensor *[]){input, target, weight},
                     &node);
    if (node) {
        *(ce_state *)nb__state(node) = st;
        if (nb__save(fn, node, CE_LOGP, lpt) != NB_OK ||
            nb__save(fn, node, CE_TARGET, target) != NB_OK ||
            (weight && nb__save(fn, node, CE_WEIGHT, weight) != NB_OK)) {
            nb__drop(out);
            out = NULL;
        }
    }
    nb__drop(lpt);
    return out;
}
