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

/**
 * How a loss reduces its per-element values. torch's reduction='none' | 'mean' | 'sum', and
 * 'batchmean' (the sum divided by the size of dim 0), which only nb_kl_div takes.
 */
typedef enum nb_reduction { NB_NONE = 0, NB_MEAN = 1, NB_SUM = 2, NB_BATCHMEAN = 3 } nb_reduction;

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
 * the third is refused too), when a is a view made under no-grad of such a tensor (PyTorch's
 * error), or b requires grad; NB_ESHAPE when b does not broadcast to a's shape. a is
 * unchanged on error.
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

/*
 * The reductions below take dims as nb_sum does (a list, negative dims counting from the
 * end, NB_DIMS_ALL for every dim) or one int dim; keepdim keeps the reduced dims as size 1,
 * with NB_DIMS_ALL every dim (PyTorch's dim=None, keepdim=True; nb_sum's and nb_mean's
 * NB_DIMS_ALL result is 0-d whatever keepdim). Each returns a new reference. Where PyTorch
 * returns int64 indices, nabla returns float32 tensors holding the exact integers (so a
 * choice among more than 2^24 elements is refused); they never require grad. Errors common
 * to all: NULL with NB_EINVAL for NULL x (keeping a pending error), a dims list that is
 * empty or holds a dim out of range or twice, or a dim out of range ("dimension out of range
 * (expected to be in range of [-2, 1], but got 2)"); NB_ENOMEM.
 */

/**
 * Values and indices of the largest (nb_max_dim) or smallest (nb_min_dim) element along dim:
 * the first one among ties, or the first NaN when the slice holds one (NaN propagates).
 * *indices (when indices is not NULL) gets the positions along dim, as float32. dx = zeros
 * with g at each index. PyTorch: torch.max(x, dim, keepdim) / torch.min(x, dim, keepdim);
 * nodes MaxBackward0 / MinBackward0.
 * Ownership: new references: the values, and *indices (a plain tensor) for the caller or the
 * open scope; on error *indices is NULL.
 * Errors: as the reductions above; NB_EINVAL when dim has size 0 ("expected reduction dim 1
 * to have non-zero size"); NB_ERANGE when it is longer than 2^24.
 * @{
 */
NB_API nb_tensor *nb_max_dim(nb_tensor *x, int dim, bool keepdim, nb_tensor **indices);
NB_API nb_tensor *nb_min_dim(nb_tensor *x, int dim, bool keepdim, nb_tensor **indices);
/** @} */
/**
 * The largest (nb_max) or smallest (nb_min) element of x, 0-d; NaN when x holds one. dx
 * shares g evenly among the elements equal to y (the NaNs when y is NaN), 0 elsewhere.
 * PyTorch: torch.max(x) / torch.min(x); nodes MaxBackward1 / MinBackward1.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x or an empty x (reduce that along a dim with
 * nb_max_dim); NB_ENOMEM.
 * @{
 */
NB_API nb_tensor *nb_max(nb_tensor *x);
NB_API nb_tensor *nb_min(nb_tensor *x);
/** @} */
/**
 * y = max (amax) or min (amin) of x over dims; NaN where the slice holds one. dx = (g / c)·
 * [x = y], c the number of elements equal to y in the slice, so ties share the gradient
 * evenly (a slice whose y is NaN matches nothing and gets NaN, as in PyTorch).
 * PyTorch: torch.amax(x, dims, keepdim) / torch.amin (NB_DIMS_ALL: dim=()); nodes
 * AmaxBackward0 / AminBackward0.
 * Ownership: new reference.
 * Errors: as the reductions above; NB_EINVAL when a reduced dim has size 0.
 * @{
 */
NB_API nb_tensor *nb_amax(nb_tensor *x, nb_dims dims, bool keepdim);
NB_API nb_tensor *nb_amin(nb_tensor *x, nb_dims dims, bool keepdim);
/** @} */
/**
 * The index of the largest (argmax) or smallest (argmin) element along one dim (dim holds one
 * entry, NB_DIMS(d)), or into the flattened x (NB_DIMS_ALL): the first among ties, the first
 * NaN when there is one; as float32, not differentiable. With NB_DIMS_ALL and keepdim every
 * dim is kept as size 1.
 * PyTorch: torch.argmax(x, dim, keepdim) / torch.argmin (NB_DIMS_ALL: dim=None).
 * Ownership: new reference (a plain tensor).
 * Errors: as the reductions above; NB_EINVAL for a list of more than one dim, or a reduced
 * dim of size 0; NB_ERANGE for more than 2^24 elements to choose from.
 * @{
 */
NB_API nb_tensor *nb_argmax(const nb_tensor *x, nb_dims dim, bool keepdim);
NB_API nb_tensor *nb_argmin(const nb_tensor *x, nb_dims dim, bool keepdim);
/** @} */
/**
 * y = Σ (x − mean)² / max(0, n − correction) over dims (nb_var), and its square root (nb_std),
 * n the number of elements reduced; computed in double, two passes. correction 1 is
 * PyTorch's unbiased=True (the default), 0 unbiased=False. An empty slice gives NaN; n ≤
 * correction gives inf (or NaN for a constant slice). dx = (2 / (n − correction))·g·(x − mean),
 * with n − correction not clamped, as in PyTorch (for std, g / (2·y) in place of g, and 0
 * where y = 0); var's is inf·g where correction is the element count of a 0-d x or of x over
 * NB_DIMS_ALL, PyTorch's special case. PyTorch: torch.var(x, dims, correction=c, keepdim) /
 * torch.std; nodes VarBackward0 / StdBackward0.
 * Ownership: new reference. Errors: as the reductions above.
 * @{
 */
NB_API nb_tensor *nb_var(nb_tensor *x, nb_dims dims, int64_t correction, bool keepdim);
NB_API nb_tensor *nb_std(nb_tensor *x, nb_dims dims, int64_t correction, bool keepdim);
/** @} */
/**
 * y = log Σ e^x over dims, computed as m + log Σ e^(x − m) with m the slice's max (0 when m
 * is ±inf): finite for any finite x, -inf for an empty or all -inf slice, +inf when the slice
 * holds +inf. dx = g·e^(x − y).
 * PyTorch: torch.logsumexp(x, dims, keepdim); node LogsumexpBackward0.
 * Ownership: new reference. Errors: as the reductions above.
 */
NB_API nb_tensor *nb_logsumexp(nb_tensor *x, nb_dims dims, bool keepdim);
/**
 * y = Π x over every element (nb_prod, 0-d) or along dim (nb_prod_dim), multiplied in float
 * from the first element; 1 for an empty slice. dx = g·y / x when x holds no zero; otherwise
 * g times the product of the slice's other elements (so one zero's element gets that product
 * and the rest 0; two zeros give 0 everywhere), as PyTorch; nb_prod with two zeros or more
 * gives +0 everywhere, even where x holds NaN or infinity (PyTorch's zeros_like).
 * PyTorch: torch.prod(x) / torch.prod(x, dim, keepdim); nodes ProdBackward0 / ProdBackward1.
 * Ownership: new reference. Errors: as the reductions above.
 * @{
 */
NB_API nb_tensor *nb_prod(nb_tensor *x);
NB_API nb_tensor *nb_prod_dim(nb_tensor *x, int dim, bool keepdim);
/** @} */
/**
 * The p-norm over dims: y = (Σ |x|^p)^(1/p), summed in double; p = 2 is the Euclidean norm,
 * p = 1 Σ |x|, p = INFINITY max |x|, -INFINITY min |x|, p = 0 the count of non-zeros; an
 * empty slice gives 0. dx (PyTorch's norm_backward): p = 1: sgn(x)·g; p = 2: g·x / y, 0 where
 * y = 0; p = ±inf: sgn(x)·g shared evenly among the elements with |x| = y; p = 0: no gradient
 * (the input's .grad stays unset, as in PyTorch); other p: sgn(x)·|x|^(p−1)·g / y^(p−1), 0
 * where y = 0 (and, for p < 1, where x = 0).
 * PyTorch: torch.norm(x, p, dims, keepdim); node NormBackward1 (torch.linalg.vector_norm
 * computes the same with node LinalgVectorNormBackward0).
 * Ownership: new reference. Errors: as the reductions above.
 */
NB_API nb_tensor *nb_norm(nb_tensor *x, float p, nb_dims dims, bool keepdim);

/* ---- softmax ---------------------------------------------------------------------------- */

/**
 * y = e^x / Σ e^x along dim (nb_softmax), and y = x − log Σ e^x (nb_log_softmax), each
 * computed from x − max so that it is finite for any finite x (logits of ±1e4 included);
 * entries of -inf give 0 (log_softmax: -inf), a slice of -inf only, or one holding +inf or
 * NaN, gives NaN, as in PyTorch. dx = (g − Σ g·y)·y for softmax, g − e^y·Σ g for
 * log_softmax, the sums along dim; both save their output. A 0-d x takes dim 0 or -1.
 * PyTorch: torch.softmax(x, dim) / torch.log_softmax(x, dim); nodes SoftmaxBackward0 /
 * LogSoftmaxBackward0.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x (keeping a pending error) or dim out of range;
 * NB_ENOMEM.
 * @{
 */
NB_API nb_tensor *nb_softmax(nb_tensor *x, int dim);
NB_API nb_tensor *nb_log_softmax(nb_tensor *x, int dim);
/** @} */

/* ---- indexing -----------------------------------------------------------------------------
 * Indices and ids are float32 tensors holding exact integers (PyTorch's are int64). Every
 * one is checked before any is used; the first that is not an integer, or is out of range
 * (negative ones included: PyTorch 1.13 rejects them in these ops), fails the call with its
 * value and position: "nb_gather: index 4 at position [0, 1] is out of range for dimension 1
 * with size 4", "nb_embedding: id 1.5 at position [2] is not an integer". An index is not
 * differentiable: it gets no edge in the node, whether it requires grad or not, and is saved
 * for backward (changing it in place afterwards fails that backward).
 * Ownership: each returns a new reference; the index is borrowed.
 * Errors: NULL with NB_EINVAL for a NULL argument (keeping a pending error), a dim out of
 * range, an index value as above; NB_ENOMEM; and those each function lists.
 * --------------------------------------------------------------------------------------- */

/**
 * y = x's slices along dim picked by index (0-d or 1-D): y[.., k, ..] = x[.., index[k], ..];
 * y has x's shape with index's element count along dim (a 0-d x takes an index of one
 * element and gives 0-d). dx = zeros with dy's slices added at their indices (repeated
 * indices add up: PyTorch's index_add).
 * PyTorch: torch.index_select(x, dim, index); node IndexSelectBackward0.
 * Errors: also NB_EINVAL for an index of 2 or more dims, or a 0-d x with an index that does
 * not hold one element (PyTorch reads its first or, empty, uninitialised memory).
 */
NB_API nb_tensor *nb_index_select(nb_tensor *x, int dim, nb_tensor *index);
/**
 * y[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for the others): y has index's
 * shape; index has x's number of dims, and no dim larger than x's except dim (a 0-d tensor
 * counts as 1-D of size 1; an empty index is not checked). dx = zeros with dy added at the
 * gathered positions (PyTorch's scatter_add).
 * PyTorch: torch.gather(x, dim, index) (sparse_grad=False); node GatherBackward0.
 * Errors: also NB_ESHAPE when index's dims do not fit x's ("expected index [4, 2] to be
 * smaller than self [3, 4] apart from dimension 1").
 */
NB_API nb_tensor *nb_gather(nb_tensor *x, int dim, nb_tensor *index);
/**
 * y = x with src added at the positions index gives: for dim 0,
 * y[index[i][j]][j] += src[i][j] for every (i, j) of index's shape (likewise for the others;
 * repeated positions add up). index, x and src have one number of dims (a 0-d tensor
 * counting as 1-D); no dim of index is larger than src's, nor than x's except dim (an empty
 * index is not checked). dx = dy; dsrc = dy gathered at index's positions (PyTorch's
 * grad.gather(dim, index)), zeros where src is larger than index (PyTorch's backward fails
 * there).
 * PyTorch: torch.scatter_add(x, dim, index, src); node ScatterAddBackward0 (edges x, src).
 * Errors: also NB_ESHAPE when the dims do not fit ("expected index [3, 4] to be smaller than
 * self [3, 4] apart from dimension 0 and to be smaller than src [2, 4]").
 */
NB_API nb_tensor *nb_scatter_add(nb_tensor *x, int dim, nb_tensor *index, nb_tensor *src);

/** padding_idx of nb_embedding for no padding row (PyTorch: padding_idx=None). */
#define NB_NO_PADDING INT64_MIN

/**
 * Rows of weight ([rows, dim]) by id: y[..., :] = weight[ids[...], :], y's shape ids' shape
 * + [dim] (ids of any shape, 0-d included). dweight = zeros with dy's rows added at their
 * ids (repeated ids add up), except the padding row, which gets no gradient. padding_idx is
 * a row in [-rows, rows) (negative counts from the end, as in F.embedding and nn.Embedding)
 * or NB_NO_PADDING. Note that -1 is the last row, as F.embedding's padding_idx=-1, not "no
 * padding" as in the ATen call torch.embedding(weight, ids, -1). The forward reads the
 * padding row as any other (nn.Embedding zeroes it at initialisation, not here).
 * PyTorch: torch.nn.functional.embedding(ids, weight, padding_idx) (nabla takes weight first,
 * as torch.embedding); node EmbeddingBackward0.
 * Errors: also NB_EINVAL for a weight that is not 2-D, a padding_idx out of range, or ids of
 * NB_MAX_DIMS dims; an id out of range: "nb_embedding: id 12 at position [1, 3] is out of
 * range for 10 rows".
 */
NB_API nb_tensor *nb_embedding(nb_tensor *weight, nb_tensor *ids, int64_t padding_idx);

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

/**
 * Batched matrix product y[b] = a[b]·b2[b] for a [B, n, m] and b [B, m, p] (no broadcasting);
 * da[b] = g[b]·b2[b]ᵀ, db[b] = a[b]ᵀ·g[b], one sgemm per batch with transpose flags.
 * PyTorch: torch.bmm; node BmmBackward0.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL a or b; NB_ESHAPE for an operand that is not 3-D
 * ("nb_bmm: batch1 must be a 3D tensor") or sizes that do not match ("nb_bmm: Expected size
 * for first two dimensions of batch2 tensor to be: [2, 4] but got: [3, 4]."); NB_ERANGE when
 * a size exceeds BLAS's int; NB_ENOMEM.
 */
NB_API nb_tensor *nb_bmm(nb_tensor *a, nb_tensor *b);

/**
 * Outer product y[i, j] = a[i]·b[j] of two 1-D tensors (each product exact, as PyTorch's);
 * da = g·b, db = gᵀ·a (sgemv). PyTorch: torch.outer, which records a.reshape(-1, 1) * b:
 * nabla records one node named as that product, MulBackward0, with edges to a and b.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL a or b; NB_ESHAPE when either is not 1-D
 * ("nb_outer: Expected 1-D argument self, but got 2-D"); NB_ERANGE; NB_ENOMEM.
 */
NB_API nb_tensor *nb_outer(nb_tensor *a, nb_tensor *b);

/**
 * y = beta·input + alpha·(mat1·mat2) for mat1 [n, m], mat2 [m, p] and input broadcast to
 * [n, p]: input is copied into the result, then one sgemm adds the product (its beta);
 * beta = 0 ignores input's values, NaN included, as PyTorch. d input = beta·g summed to input's
 * shape, d mat1 = alpha·g·mat2ᵀ, d mat2 = alpha·mat1ᵀ·g (sgemm with transpose flags).
 * PyTorch: torch.addmm(input, mat1, mat2, beta=beta, alpha=alpha); node AddmmBackward0.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for a NULL argument; NB_ESHAPE for mat1 or mat2 not 2-D
 * ("nb_addmm: mat1 must be a matrix, got 1-D tensor"), sizes that do not multiply
 * ("nb_addmm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)") or an input that does
 * not broadcast to [n, p]; NB_ERANGE; NB_ENOMEM.
 */
NB_API nb_tensor *nb_addmm(nb_tensor *input, nb_tensor *mat1, nb_tensor *mat2, float beta,
                           float alpha);

/**
 * The affine map of a layer, y = x·Wᵀ + b, for x [..., in] (any rank >= 1), weight W
 * [out, in] and bias b or NULL (none): y [..., out]. b is a layer's [out] or any shape that
 * broadcasts to y's (0-d, [1], [rows, out], ...; db sums g over the dims b was broadcast along;
 * see docs/ops.md for PyTorch's 3-D x, which broadcasts b to the rows instead). b is copied
 * into y, then one sgemm (Wᵀ through a transpose flag) adds x·Wᵀ with beta = 1; x's leading
 * dims are one matrix of rows, never copied. dx = g·W (sgemm N,N), dW = gᵀ·x (sgemm T,N),
 * db = column sums of g; each adds into the engine's lent buffer when it has one.
 * PyTorch: torch.nn.functional.linear; node AddmmBackward0 with a bias, MmBackward0 without,
 * for every rank of x (edges: bias, x, W; or x, W). PyTorch records these for 2-D x only; for
 * other ranks it shows the ops linear decomposes into (1-D: AddBackward0 / SqueezeBackward3;
 * 3-D: ViewBackward0 / UnsafeViewBackward0; 4-D and more: AddBackward0 / UnsafeViewBackward0),
 * and a TBackward0 node before W, which nabla does not make (it never transposes W).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x or weight (a NULL bias while an error is pending fails
 * with that error); NB_ESHAPE for a 0-d x or a weight that is not 2-D, in-sizes that differ
 * ("nb_linear: mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)"), or a bias that does
 * not broadcast to y's shape; NB_ERANGE when a size exceeds BLAS's int; NB_ENOMEM.
 */
NB_API nb_tensor *nb_linear(nb_tensor *x, nb_tensor *weight, nb_tensor *bias);

/* ---- convolution ------------------------------------------------------------------------ */

/**
 * 2-D convolution (cross-correlation, as PyTorch's) of input [N, C, H, W], or unbatched
 * [C, H, W], with weight [O, C/groups, kH, kW] and bias [O] or NULL:
 *   y[n, o, oy, ox] = b[o] + Σ_{c, i, j} w[o, c, i, j]·x[n, g·C/groups + c, oy·sH − pH + i·dH,
 *                                                          ox·sW − pW + j·dW]
 * over the C/groups channels of o's group g = o / (O/groups), with zeros outside the input;
 * output [N, O, oH, oW] (or [O, oH, oW]), oH = (H + 2·pH − dH·(kH − 1) − 1) / sH + 1, oW
 * likewise. stride, padding and dilation are PyTorch's int-or-pair: a shape of one value
 * (NB_SHAPE(2): both dims) or two (NB_SHAPE(2, 1): height, width). Padding is a number of
 * zeros on each side; PyTorch's padding='same' and 'valid' strings have no counterpart (pass
 * the sizes). Computed by im2col and one sgemm per group over the whole batch (scratch of
 * C·kH·kW floats per output position); backward: dW = g·colsᵀ, dx = col2im(Wᵀ·g) (a sgemm
 * per group each), db = Σ g over N, oH, oW, each only where its edge needs it.
 * PyTorch: torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation,
 * groups); node ConvolutionBackward0 (edges: input, weight, bias; the last empty without a
 * bias). For unbatched input PyTorch records a SqueezeBackward1 after it (it unsqueezes the
 * input); nabla records ConvolutionBackward0 on the 3-D output.
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL input or weight (a NULL bias while an error is pending
 * fails with that error), a stride, padding or dilation of other than 1 or 2 values ("nb_conv2d:
 * expected stride to be a single integer value or a list of 2 values to match the convolution
 * dimensions, but got stride=[1, 2, 3]"), groups <= 0 ("non-positive groups is not
 * supported"), a negative padding, a stride or dilation <= 0; NB_ESHAPE for an input not 3-D
 * or 4-D, a weight not 4-D or with a size 0 dimension, O not a multiple of groups, channels
 * that differ ("nb_conv2d: Given groups=1, weight of size [4, 3, 3, 3], expected
 * input[2, 4, 5, 5] to have 3 channels, but got 4 channels instead"), a bias not [O], or a
 * dilated kernel larger than the padded input ("Calculated padded input size per channel:
 * (2 x 2). Kernel size: (3 x 3). Kernel size can't be greater than actual input size");
 * NB_ERANGE when the products' sizes exceed BLAS's int; NB_ENOMEM.
 */
NB_API nb_tensor *nb_conv2d(nb_tensor *input, nb_tensor *weight, nb_tensor *bias, nb_shape stride,
                            nb_shape padding, nb_shape dilation, int64_t groups);

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

/*
 * The losses below compute in float as PyTorch's CPU kernels do; a reduced loss sums its
 * per-element values in double (PyTorch: a cascade of float partial sums), so a mean or sum
 * can differ from PyTorch's in the last bits. target has input's shape (PyTorch broadcasts
 * other shapes with a deprecation warning; nabla refuses them), and gets a gradient when it
 * requires grad. Reductions: NB_NONE (input's shape), NB_MEAN (Σ / numel) and NB_SUM (0-d).
 * Errors common to them: NULL with NB_EINVAL for NULL input or target or an unknown
 * reduction ("nb_mse_loss: 7 is not a valid value for reduction"; NB_BATCHMEAN is refused the
 * same way except by nb_kl_div); NB_ESHAPE when target's shape differs from input's
 * ("nb_mse_loss: Target size ([3]) must be the same as input size ([2, 3])"); NB_ENOMEM.
 * Ownership: each returns a new reference.
 */

/**
 * l = (x − y)²; dx = 2·(x − y)·g (÷ numel for mean), dy = −dx.
 * PyTorch: torch.nn.functional.mse_loss; node MseLossBackward0.
 * Ownership: new reference. Errors: as the losses above.
 */
NB_API nb_tensor *nb_mse_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction);

/**
 * l = |x − y|; dx = sgn(x − y)·g (÷ numel for mean; sgn(0) = 0), dy = −dx.
 * PyTorch: torch.nn.functional.l1_loss, which records (x − y).abs() and its reduction; nabla
 * records one node named as PyTorch's last: AbsBackward0 (none), MeanBackward0, SumBackward0.
 * Ownership: new reference. Errors: as the losses above.
 */
NB_API nb_tensor *nb_l1_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction);

/**
 * With z = |x − y|: l = z²/(2β) where z < β, else z − β/2 (β = 0: the L1 loss);
 * dx = g·(x − y)/β inside, ±g outside (x − y <= −β: −g; >= β: g, so a zero difference with
 * β = 0 gets −g, as PyTorch's kernel), ÷ numel for mean; dy = the same with x and y swapped.
 * PyTorch: torch.nn.functional.smooth_l1_loss(input, target, reduction=, beta=); node
 * SmoothL1LossBackward0.
 * Ownership: new reference.
 * Errors: as the losses above, and NB_EINVAL for beta < 0 ("nb_smooth_l1_loss: smooth_l1_loss
 * does not support negative values for beta.").
 */
NB_API nb_tensor *nb_smooth_l1_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction,
                                    double beta);

/**
 * With z = |x − y|: l = z²/2 where z < δ, else δ·(z − δ/2); dx = g·clamp(x − y, −δ, δ)
 * (÷ numel for mean); dy = the same with x and y swapped.
 * PyTorch: torch.nn.functional.huber_loss(input, target, reduction=, delta=); node
 * HuberLossBackward0.
 * Ownership: new reference.
 * Errors: as the losses above, and NB_EINVAL for delta <= 0 (or NaN): "nb_huber_loss:
 * huber_loss does not support non-positive values for delta.".
 */
NB_API nb_tensor *nb_huber_loss(nb_tensor *input, nb_tensor *target, nb_reduction reduction,
                                double delta);

/**
 * Binary cross-entropy on probabilities x ∈ [0, 1]:
 *   l = −w·(y·max(log x, −100) + (1 − y)·max(log(1 − x), −100))
 * (the logs clamped at −100 as PyTorch, so x = 0 or 1 gives at most 100 per element);
 * dx = w·g·(x − y) / max((1 − x)·x, 1e-12), dy = −w·g·log(x / (1 − x)) (±inf at x = 0, 1),
 * ÷ numel for mean. weight w (or NULL: 1) broadcasts to input's shape and may not require
 * grad. For logits, nb_binary_cross_entropy_with_logits is the stable form.
 * PyTorch: torch.nn.functional.binary_cross_entropy; node BinaryCrossEntropyBackward0.
 * Ownership: new reference.
 * Errors: as the losses above; NB_EINVAL for an input element outside [0, 1] or NaN
 * ("nb_binary_cross_entropy: all elements of input should be between 0 and 1, got 1.5 at
 * position 3") or (grad mode on) a weight that requires grad; NB_ESHAPE for a weight that
 * does not broadcast; a NULL weight while an error is pending fails with that error.
 */
NB_API nb_tensor *nb_binary_cross_entropy(nb_tensor *input, nb_tensor *target, nb_tensor *weight,
                                          nb_reduction reduction);

/**
 * Kullback–Leibler divergence of the target distribution from the input's, input holding
 * log-probabilities: l = y·(log y − x) (0 where y = 0), or with log_target (y holds
 * log-probabilities too) l = e^y·(y − x). dx = −y·g (−e^y·g); dy = (log y + 1 − x)·g (NaN
 * where y = 0, as PyTorch's xlogy gives), with log_target e^y·(y − x + 1)·g. Reductions:
 * NB_NONE, NB_SUM, NB_MEAN (÷ numel, as PyTorch's 'mean', which warns that it divides by the
 * support size too; nabla does not warn) and NB_BATCHMEAN (÷ the size of dim 0: the KL
 * divergence per sample, PyTorch's 'batchmean'; a 0-d input is only summed).
 * PyTorch: torch.nn.functional.kl_div(input, target, reduction=, log_target=), which records
 * the ops it is composed of; nabla records one node named as PyTorch's last: SubBackward0
 * (none; MulBackward0 with log_target), MeanBackward0, SumBackward0, DivBackward0 (batchmean).
 * Ownership: new reference. Errors: as the losses above, NB_BATCHMEAN included.
 */
NB_API nb_tensor *nb_kl_div(nb_tensor *input, nb_tensor *target, nb_reduction reduction,
                            bool log_target);

/**
 * Negative log-likelihood of class indices. input holds log-probabilities [N, C] (or [C], one
 * sample); target [N] (or 0-d) holds class indices as float32 integers in [0, C), or
 * ignore_index (any value; such samples add nothing). With w = weight (or NULL: 1), [C]:
 *   l_i = −w[t_i]·x[i, t_i];  NB_SUM Σ l_i;  NB_MEAN Σ l_i / Σ w[t_i] over the samples not
 *   ignored (NaN when all are; an unweighted mean divides by their count);  NB_NONE l_i
 *   ([N], 0 where ignored; a 1-D input gives a 0-d value).
 * The sums are PyTorch's cascade of float partial sums, bit for bit. dx[i, t_i] = −w[t_i]·g_i
 * (÷ the total weight for mean), 0 elsewhere. target and weight are constants.
 * PyTorch: torch.nn.functional.nll_loss(input, target, weight, ignore_index=, reduction=)
 * (default ignore_index −100); node NllLossBackward0 (one edge, to input).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL input or target, an unknown reduction, a target that is
 * not an integer ("nb_nll_loss: target 1.5 at position 2 is not an integer") or out of range
 * ("nb_nll_loss: target 12 at position 3 is out of bounds (10 classes)"), a target or (grad
 * mode on) a weight that requires grad; NB_ESHAPE for an input that is not 1-D or 2-D
 * (PyTorch's [N, C, d1, ...] form is not supported), a target of the wrong shape ("nb_nll_loss:
 * Expected input batch_size (3) to match target batch_size (2).") or a weight that is not [C];
 * NB_ENOMEM. A NULL weight while an error is pending fails with that error.
 */
NB_API nb_tensor *nb_nll_loss(nb_tensor *input, nb_tensor *target, nb_tensor *weight,
                              int64_t ignore_index, nb_reduction reduction);

/**
 * Cross-entropy of logits input [N, C] (or [C]) against a target of one of two kinds, told
 * apart by shape as PyTorch does:
 * - class indices (target [N], or 0-d): nll_loss(log_softmax(input), target, weight,
 *   ignore_index, reduction), and with label smoothing ε > 0
 *   (1 − ε)·nll + (ε/C)·smooth, smooth_i = −Σ_c w_c·lp[i, c] (0 where ignored), which the
 *   mean divides by the same denominator as the NLL (Σ w[t_i], or the count);
 * - class probabilities (target of input's shape; ignore_index must be negative):
 *   l_i = −Σ_c w_c·lp[i, c]·((1 − ε)·y[i, c] + ε/C), the mean dividing by N (not by weights).
 * lp = log_softmax(input) along the classes, by max-shift: finite for logits of ±1e4.
 * The backward is fused: dx = softmax·Σq − q per sample for the distribution q the loss weighs
 * −lp with (class t: (1 − ε)·w[t]·onehot(t) + (ε/C)·w; probabilities: w·((1 − ε)·y + ε/C)),
 * times g (÷ the mean's denominator); probabilities get dy = −(1 − ε)·w·lp·g, and a weight
 * that requires grad dw = Σ_i −g_i·lp[i]·y'[i], y' = (1 − ε)·y + ε/C (with class indices
 * the weight must be a constant, as PyTorch's nll_loss has no gradient for it).
 * As PyTorch, only ε > 0 smooths (a negative or NaN label_smoothing is none); ε > 1 is refused.
 * PyTorch: torch.nn.functional.cross_entropy(input, target, weight, ignore_index=, reduction=,
 * label_smoothing=), which records log_softmax and then the loss (LogSoftmaxBackward0, then
 * NllLossBackward0 or the elementwise ops of the other forms). nabla records one node, with
 * edges to input and target, named as PyTorch's last: NllLossBackward0 (class indices),
 * AddBackward0 (class indices with label smoothing), DivBackward1 (probabilities, mean) or
 * NegBackward0 (probabilities, sum or none); with probabilities and a weight that requires
 * grad, an edge to the weight as well.
 * Ownership: new reference.
 * Errors: as nb_nll_loss (for class indices), and NB_EINVAL for label_smoothing > 1
 * ("nb_cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: 1.5") or an
 * ignore_index >= 0 with probabilities ("nb_cross_entropy: ignore_index is not supported for
 * floating point target").
 */
NB_API nb_tensor *nb_cross_entropy(nb_tensor *input, nb_tensor *target, nb_tensor *weight,
                                   int64_t ignore_index, nb_reduction reduction,
                                   double label_smoothing);

/* ---- regularisation and normalisation ---------------------------------------------------- */

/**
 * Dropout: y = x·m/(1 − p), each element kept (m = 1) with probability 1 − p, when training
 * and 0 < p < 1; dx = g·m/(1 − p). The mask is drawn as PyTorch 1.13's CPU dropout draws it
 * without MKL (Debian's torch): for each element in order one random64() of the generator,
 * kept when its low 53 bits times 2^-53 are below 1 − p (in double), and the kept value is
 * 1/(1 − p) rounded to float, times x. With the same seed nabla's mask and outputs are
 * PyTorch's, bit for bit. nb_dropout draws from the default generator, nb_dropout_gen from
 * gen (NULL: the default); the whole mask is drawn under the generator's lock, so a call's
 * mask is one contiguous run of the stream, as for every other draw (tensor.h).
 * p = 1 gives x·0 (zeros; NaN where x is ±inf or NaN), drawing nothing. p = 0, training false
 * or an empty x return x's values: PyTorch returns x itself; nabla returns a new tensor that
 * shares x's storage (a view) and, when x requires grad, records AliasBackward0, which passes
 * the gradient through unchanged.
 * PyTorch: torch.nn.functional.dropout(x, p, training), which computes x * noise; node
 * MulBackward0 (its second edge, to the noise, is empty).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x or p outside [0, 1] or NaN ("nb_dropout: dropout
 * probability has to be between 0 and 1, but got 1.5"); NB_ENOMEM; for nb_dropout_gen, the
 * pending error when gen is NULL while one is pending. Nothing is drawn on error.
 * @{
 */
NB_API nb_tensor *nb_dropout(nb_tensor *x, double p, bool training);
NB_API nb_tensor *nb_dropout_gen(nb_tensor *x, double p, bool training, nb_generator *gen);
/** @} */

/**
 * Layer normalisation over the last dims, those of normalized_shape:
 *   y = (x − mean)·rstd·w + b,  rstd = 1/√(var + eps),
 * mean and (biased) var over each row of N = numel(normalized_shape) elements; weight w and
 * bias b (or NULL: 1 and 0) have shape normalized_shape. PyTorch's float numerics (Welford in
 * 8 lanes with its cascade, y = (x·rstd − rstd·mean)·w + b with fused multiply-adds): the
 * outputs are PyTorch's bits. With x̂ = (x − mean)·rstd: dw = Σ_rows g·x̂, db = Σ_rows g,
 * dx = rstd·(g·w − mean_row(g·w) − x̂·mean_row(g·w·x̂)) in PyTorch's arrangement and float
 * operations, so the gradients are PyTorch's bits too (dw and db: PyTorch's with one thread).
 * PyTorch: torch.nn.functional.layer_norm(x, normalized_shape, weight, bias, eps) (default eps
 * 1e-5); node NativeLayerNormBackward0 (edges: x, weight, bias).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL x; NB_ESHAPE for an empty normalized_shape, one that is
 * not x's last dims ("nb_layer_norm: Given normalized_shape=[4], expected input with shape
 * [*, 4], but got input of size[2, 3]"), or a weight or bias of another shape; NB_ENOMEM. A
 * NULL weight or bias while an error is pending fails with that error.
 */
NB_API nb_tensor *nb_layer_norm(nb_tensor *x, nb_shape normalized_shape, nb_tensor *weight,
                                nb_tensor *bias, double eps);

/* ---- pooling -----------------------------------------------------------------------------
 * 2-D pooling over the last two dims of x [N, C, H, W] or, unbatched, [C, H, W], each of the
 * N·C planes on its own. kernel_size, stride, padding and dilation are PyTorch's int-or-pair:
 * an nb_shape of 1 dim is the same value for H and W, of 2 dims (h, w); stride NB_SHAPE0 is
 * PyTorch's default, the kernel size. The output has
 *   OH = ⌊(H + 2·pad − dilation·(k − 1) − 1 + (ceil_mode ? stride − 1 : 0)) / stride⌋ + 1
 * rows (OW likewise), less one in ceil_mode where the last window would start at or past
 * H + pad (it must start inside the input or the left padding). Errors common to both, with
 * PyTorch's words: NULL with NB_EINVAL for NULL x (keeping a pending error), a size list of
 * another length ("kernel_size must either be a single int, or a tuple of two ints"), a value
 * outside int32's range, stride 0 ("stride should not be zero"), padding < 0 ("pad must be
 * non-negative, but got pad: -1") or over half the kernel ("pad should be at most half of
 * kernel size, but got pad=2 and kernel_size=3"), kernel, stride or dilation <= 0 ("kernel
 * size should be greater than zero, but got kH: 0 kW: 0"); NB_ESHAPE for x not 3-D or 4-D
 * ("non-empty 3D or 4D (batch mode) tensor expected for input"), a C, H or W of 0 ("Expected
 * 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:[1, 0, 5,
 * 5]"; N may be 0; nb_avg_pool2d gives it too for an x of more than 4 dims, after the window's
 * checks, as PyTorch), an output of no rows or columns ("Given input size: (1x5x5). Calculated
 * output size: (1x0x0). Output size is too small"); NB_ENOMEM. Each runs the planes on the
 * thread pool when there are enough of them (the same bits at any thread count).
 * --------------------------------------------------------------------------------------- */

/**
 * y = the largest element of each window of kernel_size (its elements dilation apart, padding
 * read as -inf), windows stride apart: PyTorch's CPU kernel, which keeps the first of equal
 * values (of 0 and -0 too) and the last NaN of a window (a NaN wins). A window that meets only
 * padding (possible with dilation) gives -inf and, as PyTorch's, the index of its first
 * position past the padding (h0·W + w0): an element of a later row of the plane (when only
 * its columns are padding), which gets its g in backward as in PyTorch, or past the plane,
 * where backward drops its g (PyTorch's writes past its gradient). *indices (when indices is
 * not NULL) gets each window's choice as a flat index into its plane of H·W (h·W + w), as
 * float32 holding the exact integer, a plain tensor. dx = zeros with each g added at its window's
 * index (overlapping windows add up, in PyTorch's order).
 * PyTorch: torch.nn.functional.max_pool2d(x, kernel_size, stride, padding, dilation,
 * ceil_mode, return_indices); node MaxPool2DWithIndicesBackward0 (for both forms, as PyTorch
 * records it).
 * Ownership: new references: y, and *indices for the caller or the open scope (NULL on error).
 * Errors: as the pooling ops above ("nb_max_pool2d: dilation should be greater than zero, but
 * got dilationH: 0 dilationW: 0"), and NB_ERANGE for a plane of more than 2^24 elements when
 * the indices are needed (asked for, or for backward), which float32 cannot hold exactly.
 * @{
 */
NB_API nb_tensor *nb_max_pool2d(nb_tensor *x, nb_shape kernel_size, nb_shape stride,
                                nb_shape padding, nb_shape dilation, bool ceil_mode);
NB_API nb_tensor *nb_max_pool2d_with_indices(nb_tensor *x, nb_shape kernel_size, nb_shape stride,
                                             nb_shape padding, nb_shape dilation, bool ceil_mode,
                                             nb_tensor **indices);
/** @} */

/**
 * y = Σ window / d over each window of kernel_size, windows stride apart, zeros padded: the
 * window is clipped at the padded edge (H + pad), which ceil_mode can reach past, and d is
 * divisor_override when it is not 0 (PyTorch's None; a negative one divides as given), else
 * the clipped window's size with count_include_pad (padding counted), else the count of its
 * elements inside x. The sum is in float in the window's row-major order, as PyTorch's CPU
 * kernel, so y is PyTorch's bits. dx = g / d added to each element of the window.
 * PyTorch: torch.nn.functional.avg_pool2d(x, kernel_size, stride, padding, ceil_mode,
 * count_include_pad, divisor_override); node AvgPool2DBackward0.
 * Ownership: new reference.
 * Errors: as the pooling ops above ("nb_avg_pool2d: stride should be greater than zero, but
 * got dH: -1 dW: -1"; PyTorch reports an x of fewer than 3 dims as a dim out of range).
 */
NB_API nb_tensor *nb_avg_pool2d(nb_tensor *x, nb_shape kernel_size, nb_shape stride,
                                nb_shape padding, bool ceil_mode, bool count_include_pad,
                                int64_t divisor_override);

NB_END_DECLS

#endif /* NABLA_OPS_H */
