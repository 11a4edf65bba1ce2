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

/* ---- comparisons and selection (broadcasting) ------------------------------------------- */

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
