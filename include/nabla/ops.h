/**
 * @file
 * nabla — differentiable ops.
 *
 * Every op returns a new tensor (a new reference) or NULL with the thread's last error set;
 * a NULL input gives NULL and keeps the error that made it, so chains are checked once:
 *
 *     nb_tensor *loss = nb_binary_cross_entropy_with_logits(
 *         nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
 *     if (!loss) fprintf(stderr, "%s\n", nb_last_error()->message);
 *
 * When grad mode is on and an input requires grad, the output records a node (its grad_fn,
 * named as in PyTorch) and requires grad. Binary elementwise ops broadcast as NumPy does.
 * In the formulas, g is the gradient arriving at the output (dL/dy) and dx is dL/dx.
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include "autograd.h"

NB_BEGIN_DECLS

/** How a loss reduces its per-element values. torch's reduction='none' | 'mean' | 'sum'. */
typedef enum nb_reduction { NB_NONE = 0, NB_MEAN = 1, NB_SUM = 2 } nb_reduction;

/* ---- elementwise arithmetic (broadcasting) ----------------------------------------------
 * Ownership: each returns a new reference.
 * Errors: NULL with NB_EINVAL for a NULL operand, NB_ENOMEM, and (tensor-tensor ops only)
 * NB_ESHAPE when the shapes do not broadcast:
 * "nb_add: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)".
 * The gradient of a broadcast operand is summed over the dims it was broadcast along.
 * --------------------------------------------------------------------------------------- */

/** y = a + b; da = g, db = g. PyTorch: torch.add; node AddBackward0. */
NB_API nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);
/** y = a - b; da = g, db = -g. PyTorch: torch.sub; node SubBackward0. */
NB_API nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);
/** y = a·b; da = g·b, db = g·a. PyTorch: torch.mul; node MulBackward0. */
NB_API nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b);
/** y = a / b; da = g / b, db = -g·a / b². PyTorch: torch.div; node DivBackward0. */
NB_API nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);
/**
 * y = a^b; da = g·b·a^(b - 1), and 0 where b = 0; db = g·y·ln a, and 0 where a = 0 and
 * b >= 0 (PyTorch's conventions: finite at a = 0, NaN for a < 0, where ln a is NaN).
 * PyTorch: torch.pow(a, b) for two tensors; node PowBackward1.
 */
NB_API nb_tensor *nb_pow(nb_tensor *a, nb_tensor *b);
/**
 * y = max(a, b), NaN where either is (a on ties of ±0). da = g where a > b, g/2 where
 * a = b (ties share the gradient evenly), 0 where a < b; db likewise. A NaN compares false
 * both ways, so both operands get g there, as in PyTorch. PyTorch: torch.maximum;
 * node MaximumBackward0.
 */
NB_API nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b);
/**
 * y = min(a, b), as nb_maximum with the comparisons reversed. PyTorch: torch.minimum;
 * node MinimumBackward0.
 */
NB_API nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b);
/**
 * y = a + s, a - s, a·s, a / s for a number s; da = g, g, g·s, g / s. The nodes are the
 * tensor ops' (AddBackward0, SubBackward0, MulBackward0, DivBackward0), with a second,
 * empty edge for the number, as PyTorch records `x * 2.0` from Python.
 * PyTorch: torch.add/sub/mul/div(a, s).
 * @{
 */
NB_API nb_tensor *nb_add_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_sub_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_mul_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_div_scalar(nb_tensor *a, float s);
/** @} */
/** y = -a; da = -g. PyTorch: torch.neg; node NegBackward0. */
NB_API nb_tensor *nb_neg(nb_tensor *a);

/**
 * In place: a ← a op b (b broadcast to a's shape) and a ← a + s, a ← a·s. PyTorch:
 * Tensor.add_, sub_, mul_, div_, add_(s), mul_(s). They bump a's version, so a backward that
 * saved a fails afterwards, as in PyTorch. They record no node: use them on tensors outside
 * the graph (or under NB_NO_GRAD, e.g. optimizer updates). b may be a itself; a b that shares
 * only part of a's memory is refused, as PyTorch does.
 * Ownership: a is changed in place; no reference is made or taken.
 * Errors: NB_EINVAL for NULL a or b, or when b overlaps a without being a ("unsupported
 * operation: some elements of the input tensor and the written-to tensor refer to a single
 * memory location"); NB_ESTATE while grad mode is on when a requires grad (a leaf, a view of
 * one, or a non-leaf: PyTorch's errors for the first two; nabla records no in-place op, so
 * the third is refused too) or b requires grad; NB_ESHAPE when b does not broadcast to a's
 * shape. a is unchanged on error.
 * @{
 */
NB_API nb_status nb_add_(nb_tensor *a, const nb_tensor *b);
NB_API nb_status nb_sub_(nb_tensor *a, const nb_tensor *b);
NB_API nb_status nb_mul_(nb_tensor *a, const nb_tensor *b);
NB_API nb_status nb_div_(nb_tensor *a, const nb_tensor *b);
NB_API nb_status nb_add_scalar_(nb_tensor *a, float s);
NB_API nb_status nb_mul_scalar_(nb_tensor *a, float s);
/** @} */
/**
 * a ← value everywhere, in place. PyTorch: Tensor.fill_.
 * Ownership: a is changed in place. Errors: as the in-place ops above.
 */
NB_API nb_status nb_fill_(nb_tensor *a, float value);

/* ---- comparisons and selection (broadcasting) -------------------------------------------
 * Ownership: each returns a new reference.
 * Errors: NULL with NB_EINVAL for a NULL operand, NB_ENOMEM, and NB_ESHAPE when the shapes
 * do not broadcast: "nb_where: shapes [2, 3] and [4] cannot be broadcast (3 != 4 at
 * dimension 1)".
 * --------------------------------------------------------------------------------------- */

/**
 * 1 where a == b (a != b, a < b, a <= b, a > b, a >= b), else 0, as float32; a NaN is
 * unequal to everything, itself included (IEEE), and -0 == 0. The result never requires
 * grad and has no node, whatever the operands. PyTorch: torch.eq, ne, lt, le, gt, ge, which
 * return bool tensors.
 * @{
 */
NB_API nb_tensor *nb_eq(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_ne(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_lt(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_le(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_gt(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_ge(nb_tensor *a, nb_tensor *b);
/** @} */
/**
 * The comparisons with a number s (a == s, ...), a's shape. PyTorch: torch.eq(a, s), ....
 * @{
 */
NB_API nb_tensor *nb_eq_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_ne_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_lt_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_le_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_gt_scalar(nb_tensor *a, float s);
NB_API nb_tensor *nb_ge_scalar(nb_tensor *a, float s);
/** @} */
/**
 * y = a where cond is nonzero (NaN counts as nonzero), else b; cond, a and b broadcast
 * together. da = g where cond, 0 elsewhere; db = g where not cond (each summed over the dims
 * it was broadcast along). cond takes the comparisons' 0/1 tensors (PyTorch's is a bool
 * tensor): it gets no gradient and no edge, and the node saves it.
 * PyTorch: torch.where(condition, input, other); node WhereBackward0.
 */
NB_API nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b);
/**
 * y = value where mask is nonzero (NaN counts as nonzero), else x; x and mask broadcast
 * together. dx = g where the mask is zero, 0 where it filled (summed over the dims x was
 * broadcast along). The mask gets no gradient and no edge; the node saves it.
 * PyTorch: Tensor.masked_fill(mask, value) with a number; node MaskedFillBackward0.
 */
NB_API nb_tensor *nb_masked_fill(nb_tensor *x, nb_tensor *mask, float value);

/* ---- unary -------------------------------------------------------------------------------
 * Ownership: each returns a new reference. Errors: NULL with NB_EINVAL for NULL x; NB_ENOMEM.
 * --------------------------------------------------------------------------------------- */

/** y = 1 / (1 + e^-x); dx = g·(1 - y)·y. PyTorch: torch.sigmoid; node SigmoidBackward0. */
NB_API nb_tensor *nb_sigmoid(nb_tensor *x);
/**
 * y = max(x, 0) (NaN and -0 stay as they are); dx = g where y > 0 or y is NaN, else 0
 * (PyTorch's threshold_backward). PyTorch: torch.relu; node ReluBackward0.
 */
NB_API nb_tensor *nb_relu(nb_tensor *x);
/** y = e^x; dx = g·y. PyTorch: torch.exp; node ExpBackward0. */
NB_API nb_tensor *nb_exp(nb_tensor *x);
/** y = e^x - 1, exact for small x; dx = g·(y + 1). PyTorch: torch.expm1; node Expm1Backward0. */
NB_API nb_tensor *nb_expm1(nb_tensor *x);
/**
 * y = ln x (-inf at ±0, NaN below 0); dx = g / x. PyTorch: torch.log; node LogBackward0.
 */
NB_API nb_tensor *nb_log(nb_tensor *x);
/** y = log₂ x; dx = g / (x·ln 2). PyTorch: torch.log2; node Log2Backward0. */
NB_API nb_tensor *nb_log2(nb_tensor *x);
/** y = ln(1 + x), exact for small x; dx = g / (x + 1). PyTorch: torch.log1p; node Log1PBackward0.
 */
NB_API nb_tensor *nb_log1p(nb_tensor *x);
/** y = √x (-0 stays -0); dx = g / (2·y). PyTorch: torch.sqrt; node SqrtBackward0. */
NB_API nb_tensor *nb_sqrt(nb_tensor *x);
/** y = 1 / √x; dx = -½·g·y³. PyTorch: torch.rsqrt; node RsqrtBackward0. */
NB_API nb_tensor *nb_rsqrt(nb_tensor *x);
/** y = 1 / x; dx = -g·y². PyTorch: torch.reciprocal; node ReciprocalBackward0. */
NB_API nb_tensor *nb_reciprocal(nb_tensor *x);
/**
 * y = x²; dx = g·2x. PyTorch: torch.square, which is pow(x, 2): node PowBackward0.
 */
NB_API nb_tensor *nb_square(nb_tensor *x);
/**
 * y = x^exponent for a number exponent; dx = g·exponent·x^(exponent - 1), and 0 for
 * exponent 0. As PyTorch: x^0 = 1 (also for NaN), x^1 = x, and the exponents ±½, -1, 2, 3, -2
 * are √x, 1/√x, 1/x, x·x, x·x·x, 1/(x·x); others are computed in double. Negative x gives NaN
 * unless the exponent is an integer. PyTorch: torch.pow(x, exponent) with a number;
 * node PowBackward0.
 */
NB_API nb_tensor *nb_pow_scalar(nb_tensor *x, float exponent);
/** y = sin x; dx = g·cos x. PyTorch: torch.sin; node SinBackward0. */
NB_API nb_tensor *nb_sin(nb_tensor *x);
/** y = cos x; dx = -g·sin x. PyTorch: torch.cos; node CosBackward0. */
NB_API nb_tensor *nb_cos(nb_tensor *x);
/** y = tanh x; dx = g·(1 - y²). PyTorch: torch.tanh; node TanhBackward0. */
NB_API nb_tensor *nb_tanh(nb_tensor *x);
/**
 * y = |x|; dx = g·sign(x), which is 0 at ±0 and at NaN. PyTorch: torch.abs; node AbsBackward0.
 */
NB_API nb_tensor *nb_abs(nb_tensor *x);
/**
 * y = 1 for x > 0, -1 for x < 0, 0 otherwise (+0 for ±0 and for NaN, as PyTorch); dx = 0.
 * PyTorch: torch.sign; node SignBackward0 (whose gradient is zeros).
 */
NB_API nb_tensor *nb_sign(nb_tensor *x);
/**
 * y = min(max(x, min), max), NaN staying NaN; dx = g where min <= x <= max (the bounds
 * included, as PyTorch's subgradient), 0 elsewhere and at NaN. A bound that is absent in
 * PyTorch (None) is -INFINITY for min and INFINITY for max here, which gives PyTorch's values
 * and gradients exactly (`nb_clamp(x, 0, INFINITY)` is torch.clamp(x, min=0)); with
 * min > max every element becomes max. A NaN bound makes every value NaN and the gradient 0,
 * as torch.clamp(x, min, max) with both given (PyTorch's one-bound forms leave the values
 * instead). PyTorch: torch.clamp(x, min, max) with numbers; node ClampBackward1.
 */
NB_API nb_tensor *nb_clamp(nb_tensor *x, float min, float max);
/**
 * y = min(max(x, min_val), max_val) as nb_clamp; dx = g where min_val < x < max_val (the
 * bounds excluded, unlike clamp), 0 elsewhere; NaN passes g. PyTorch's default bounds are
 * -1 and 1. PyTorch: torch.nn.functional.hardtanh; node HardtanhBackward0.
 */
NB_API nb_tensor *nb_hardtanh(nb_tensor *x, float min_val, float max_val);
/**
 * y = x for x > 0, negative_slope·x otherwise; dx = g or negative_slope·g likewise (at 0:
 * negative_slope·g). PyTorch's default slope is 0.01. PyTorch: torch.nn.functional.leaky_relu;
 * node LeakyReluBackward0.
 */
NB_API nb_tensor *nb_leaky_relu(nb_tensor *x, float negative_slope);
/**
 * y = x for x > 0, alpha·(e^x - 1) otherwise; dx = g for x > 0, g·alpha·e^x otherwise.
 * PyTorch's default alpha is 1. PyTorch: torch.nn.functional.elu; node EluBackward0.
 */
NB_API nb_tensor *nb_elu(nb_tensor *x, float alpha);
/** How nb_gelu computes Φ. torch's approximate='none' | 'tanh'. */
typedef enum nb_gelu_approximate {
    NB_GELU_NONE = 0, /**< Φ(x) = ½·(1 + erf(x/√2)), exact */
    NB_GELU_TANH = 1  /**< Φ(x) ≈ ½·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
} nb_gelu_approximate;
/**
 * y = x·Φ(x), Φ the standard normal CDF (exact, or with PyTorch's tanh approximation);
 * dx = g·(Φ(x) + x·φ(x)), φ its density (for NB_GELU_TANH, the derivative of the
 * approximation). PyTorch: torch.nn.functional.gelu(x, approximate); node GeluBackward0.
 * Errors: also NB_EINVAL for an approximate that is neither value.
 */
NB_API nb_tensor *nb_gelu(nb_tensor *x, nb_gelu_approximate approximate);
/**
 * y = x·σ(x) = x / (1 + e^-x); dx = g·σ(x)·(1 + x·(1 - σ(x))). PyTorch:
 * torch.nn.functional.silu; node SiluBackward0.
 */
NB_API nb_tensor *nb_silu(nb_tensor *x);
/**
 * y = ln(1 + e^(β·x)) / β, and y = x where β·x > threshold (PyTorch's defaults: β = 1,
 * threshold = 20, so that e^(β·x) never overflows there); dx = g·z / (z + 1), z = e^(β·x),
 * and g where β·x > threshold. PyTorch: torch.nn.functional.softplus(x, beta, threshold);
 * node SoftplusBackward0.
 */
NB_API nb_tensor *nb_softplus(nb_tensor *x, float beta, float threshold);
/**
 * y = ln σ(x) = min(x, 0) - ln(1 + e^-|x|), finite for any finite x (-x for x ≪ 0);
 * dx = g·(1 - σ(x)), computed from e^-|x| as PyTorch does. PyTorch:
 * torch.nn.functional.logsigmoid; node LogSigmoidBackward0.
 */
NB_API nb_tensor *nb_logsigmoid(nb_tensor *x);

/* ---- reductions ------------------------------------------------------------------------- */

/**
 * y = Σ x over the dims listed (negative count from the end), or over every element with
 * NB_DIMS_ALL (the result is then 0-d whatever keepdim). keepdim keeps reduced dims as
 * size 1. A sum over every element is accumulated in double; over some dims, runs along
 * the last dim in double and the rest in float. dx = g broadcast back over the reduced dims.
 * PyTorch: torch.sum(x) / torch.sum(x, dims, keepdim); nodes SumBackward0 (NB_DIMS_ALL) and
 * SumBackward1 (dims).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x, an empty list, or a dim out of range or repeated;
 * NB_ENOMEM.
 */
NB_API nb_tensor *nb_sum(nb_tensor *x, nb_dims dims, bool keepdim);
/**
 * y = Σ x / n, n the number of elements reduced, as nb_sum; dx = g / n broadcast back.
 * PyTorch: torch.mean; nodes MeanBackward0 / MeanBackward1.
 * Ownership: new reference. Errors: as nb_sum.
 */
NB_API nb_tensor *nb_mean(nb_tensor *x, nb_dims dims, bool keepdim);

/* ---- softmax ---------------------------------------------------------------------------- */

/* ---- indexing --------------------------------------------------------------------------- */

/* ---- matmul ----------------------------------------------------------------------------- */

/**
 * Matrix product y[.., i, j] = Σ_k a[.., i, k]·b[.., k, j] with torch.matmul's semantics for
 * every rank: 1-D·1-D dot product (0-d), 2-D·1-D and 1-D·2-D matrix-vector, 2-D·2-D matrix
 * product, and batched products of higher ranks whose batch dims broadcast (a 1-D operand gets
 * a dim of 1 added, then removed). da = g·bᵀ, db = aᵀ·g (summed over broadcast batches).
 * Forward and backward go to BLAS (sdot, sgemv, sger, sgemm) with transpose flags, never a
 * transposed copy. PyTorch: torch.matmul; node MatmulBackward0, nabla's one node for every
 * rank (PyTorch records the ops its matmul decomposes into: DotBackward0, SqueezeBackward3,
 * MvBackward0, MmBackward0, UnsafeViewBackward0).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL a or b; NB_ESHAPE:
 * "nb_matmul: size mismatch, [5] @ [4, 3] (5 != 4)"; for 0-d operands; for batch dims that
 * do not broadcast. NB_ERANGE when a size exceeds BLAS's int. NB_ENOMEM.
 */
NB_API nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);

/* ---- losses ----------------------------------------------------------------------------- */

/**
 * Binary cross-entropy on logits, stable for any logit:
 *   l = (1 - y)·x + lw·(log(1 + e^-|x|) + max(-x, 0)),  lw = 1 + (p - 1)·y,
 * times weight, then reduced: NB_NONE gives l (input's shape), NB_SUM Σ l, NB_MEAN Σ l / numel
 * (0-d). dx = w·(σ(x)·(p·y + 1 - y) - p·y)·g; dy = w·(log σ(-x) - p·log σ(x))·g.
 * target has input's shape; weight w and pos_weight p (or NULL: 1) broadcast to it (p is
 * usually one per class, on the last dim). Gradients flow to input and target (weight and
 * pos_weight are constants: they may not require grad, as in PyTorch). A NULL weight or
 * pos_weight while an error is pending fails with that error.
 * PyTorch: torch.nn.functional.binary_cross_entropy_with_logits; node BCEWithLogitsBackward0
 * (nabla's name, from its design; PyTorch shows BinaryCrossEntropyWithLogitsBackward0).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL input or target, an unknown reduction, or (grad mode
 * on) a weight or pos_weight that requires grad; NB_ESHAPE
 * when target's shape differs from input's or weight / pos_weight do not broadcast to it;
 * NB_ENOMEM.
 */
NB_API nb_tensor *nb_binary_cross_entropy_with_logits(nb_tensor *input, nb_tensor *target,
                                                      nb_tensor *weight, nb_tensor *pos_weight,
                                                      nb_reduction reduction);

/* ---- regularisation and normalisation ---------------------------------------------------- */

NB_END_DECLS

#endif /* NABLA_OPS_H */
