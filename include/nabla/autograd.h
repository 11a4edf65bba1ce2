/**
 * @file
 * nabla — reverse-mode automatic differentiation.
 *
 * Every op on tensors that require grad records a node (its grad_fn) with edges to the
 * nodes of its inputs; nb_backward walks that graph from a root in reverse and fills the
 * .grad of the leaves that require grad, as torch.Tensor.backward does.
 *
 *     nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
 *     nb_tensor *loss = nb_sum(nb_matmul(x, w), NULL, 0, false);
 *     nb_backward(loss, NULL, false);
 *     nb_print(nb_tensor_grad(w));
 */
#ifndef NABLA_AUTOGRAD_H
#define NABLA_AUTOGRAD_H

#include "tensor.h"

NB_BEGIN_DECLS

/* ---- tensor autograd properties -------------------------------------------------------- */

/**
 * Set whether the leaf t requires grad. PyTorch: Tensor.requires_grad_().
 * Ownership: returns t itself (not a new reference), so creation and flag chain:
 * nb_requires_grad_(nb_randn(...), true).
 * Errors: NULL with NB_EINVAL for NULL t; NB_ESTATE when t is not a leaf (use nb_detach()).
 */
NB_API nb_tensor *nb_requires_grad_(nb_tensor *t, bool requires_grad);
/**
 * Whether t requires grad; false for NULL. PyTorch: Tensor.requires_grad.
 * Ownership: none. Errors: none.
 */
NB_API bool nb_tensor_requires_grad(const nb_tensor *t);
/**
 * Whether t is a leaf: it has no grad_fn; true for NULL. PyTorch: Tensor.is_leaf.
 * Ownership: none. Errors: none.
 */
NB_API bool nb_tensor_is_leaf(const nb_tensor *t);
/**
 * The gradient accumulated into t, or NULL (none yet, or NULL t). For a non-leaf that does
 * not retain its grad this is NULL and a warning is given (once per tensor).
 * PyTorch: Tensor.grad.
 * Ownership: borrowed from t; valid until t is freed, nb_zero_grad(t, true) or, for a
 * non-leaf, the next backward replaces it; nb_retain() it to keep it.
 * Errors: none (the warning goes to the warning handler).
 */
NB_API nb_tensor *nb_tensor_grad(nb_tensor *t);
/**
 * The node that made t, NULL for a leaf or NULL t. PyTorch: Tensor.grad_fn.
 * Ownership: borrowed from t; valid while t lives. Errors: none.
 */
NB_API nb_node *nb_tensor_grad_fn(const nb_tensor *t);
/**
 * Make backward fill t's .grad although t is not a leaf; a no-op on a leaf, whose .grad is
 * filled anyway. PyTorch: Tensor.retain_grad().
 * Ownership: none.
 * Errors: NB_EINVAL for NULL t; NB_ESTATE when t does not require grad.
 */
NB_API nb_status nb_retain_grad(nb_tensor *t);
/**
 * Whether nb_retain_grad made the non-leaf t retain its grad; false for a leaf and for NULL.
 * PyTorch: Tensor.retains_grad. Ownership: none. Errors: none.
 */
NB_API bool nb_tensor_retains_grad(const nb_tensor *t);
/**
 * A new leaf sharing t's storage (and version counter) that does not require grad.
 * PyTorch: Tensor.detach().
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL for NULL t; NB_ENOMEM.
 */
NB_API nb_tensor *nb_detach(nb_tensor *t);
/**
 * Reset t's .grad: to NULL when set_to_none (PyTorch's default), else fill it with zeros in
 * place (bumping the grad's version). No .grad: nothing to do.
 * PyTorch: t.grad = None / t.grad.zero_(), as Optimizer.zero_grad(set_to_none).
 * Ownership: with set_to_none, t's reference to its .grad is dropped.
 * Errors: NB_EINVAL for NULL t.
 */
NB_API nb_status nb_zero_grad(nb_tensor *t, bool set_to_none);

/* ---- the engine ------------------------------------------------------------------------ */

/**
 * Backpropagate from root: accumulate d(root)/d(leaf), weighted by grad (the vector of the
 * vector-Jacobian product: leaf.grad += Jᵀ·grad), into the .grad of every leaf that requires
 * grad and every tensor that retains grad. grad may be NULL for a one-element root (taken as
 * 1). Unless retain_graph, the saved tensors of the graph are freed on the way and a second
 * backward through it fails. Works whatever the grad mode.
 * PyTorch: Tensor.backward(grad, retain_graph) / torch.autograd.backward.
 * Ownership: the .grad tensors made belong to their tensors, not to any open scope.
 * Errors: NB_EINVAL for NULL root; NB_ESTATE when root does not require grad, when grad is
 * NULL for a root with more than one element, when the graph's saved tensors were freed, or
 * when a saved tensor was changed in place; NB_ESHAPE when grad's shape differs from root's;
 * NB_ENOMEM. After an error in the walk, some .grad may already have been accumulated.
 */
NB_API nb_status nb_backward(nb_tensor *root, const nb_tensor *grad, bool retain_graph);

/**
 * The gradients of the outputs (weighted by grad_outputs, which may be NULL, as may an entry,
 * when the output has one element) with respect to the inputs, without touching any .grad:
 * results[i] = Σ_j (d outputs[j] / d inputs[i])ᵀ·grad_outputs[j]; results holds n_inputs
 * entries. With results NULL it is nb_backward over every output (inputs ignored).
 * PyTorch: torch.autograd.grad.
 * Ownership: results[i] receives a new reference, or NULL when inputs[i] is not reached and
 * allow_unused.
 * Errors: as nb_backward; NB_EINVAL for NULL or empty outputs or inputs, a NULL entry, or
 * more than 64 outputs or inputs; NB_ESTATE when an input does not require grad, or is not
 * reached and !allow_unused. On error no reference is returned (results written are NULL).
 */
NB_API nb_status nb_grad(nb_tensor *const *outputs, int n_outputs, nb_tensor *const *inputs,
                         int n_inputs, const nb_tensor *const *grad_outputs, bool retain_graph,
                         bool allow_unused, nb_tensor **results);

/* ---- grad mode ------------------------------------------------------------------------- */

/**
 * Whether ops record the graph on this thread (on by default).
 * PyTorch: torch.is_grad_enabled. Ownership: none. Errors: none.
 */
NB_API bool nb_is_grad_enabled(void);
/**
 * Turn recording on or off for this thread; returns the previous mode.
 * PyTorch: torch.set_grad_enabled. Ownership: none. Errors: none.
 */
NB_API bool nb_set_grad_enabled(bool enabled);

/**
 * NB_NO_GRAD { ... } runs the block with grad mode off and then restores the previous mode,
 * as `with torch.no_grad():`. Leaving the block with break, return or goto skips the restore.
 */
#define NB_NO_GRAD        NB__NO_GRAD(__LINE__)
#define NB__NO_GRAD(line) NB__NO_GRAD_(line)
#define NB__NO_GRAD_(line)                                                                         \
    for (int nb__ng_prev##line = nb_set_grad_enabled(false) ? 1 : 0, nb__ng_once##line = 1;        \
         nb__ng_once##line; nb__ng_once##line = 0, nb_set_grad_enabled(nb__ng_prev##line != 0))

/* ---- nodes ---------------------------------------------------------------------------------
 * A node lives while a tensor it made (or a later node) holds it: a borrowed nb_node * is
 * valid while the tensor it came from lives.
 * --------------------------------------------------------------------------------------- */

/**
 * The node's name: "AddBackward0", "AccumulateGrad", ...; NULL for NULL n.
 * PyTorch: grad_fn.name(). Ownership: a static string. Errors: none.
 */
NB_API const char *nb_node_name(const nb_node *n);
/**
 * The number of next functions (one per input of the op); 0 for NULL n.
 * PyTorch: len(grad_fn.next_functions). Ownership: none. Errors: none.
 */
NB_API int nb_node_num_next(const nb_node *n);
/**
 * Next function i: the node that receives the gradient of input i (NULL when that input needs
 * none), and in *input_nr (if not NULL) which of its inputs. PyTorch: grad_fn.next_functions[i].
 * Ownership: borrowed from n.
 * Errors: none; NULL (and *input_nr untouched) for NULL n or i outside [0, num_next).
 */
NB_API nb_node *nb_node_next(const nb_node *n, int i, int *input_nr);
/**
 * For an AccumulateGrad node, its leaf tensor; else (or for NULL n) NULL.
 * PyTorch: grad_fn.variable. Ownership: borrowed from n. Errors: none.
 */
NB_API nb_tensor *nb_node_variable(const nb_node *n);
/**
 * "<AddBackward0 object at 0x55d5c1a2b3c0>" into buf, as snprintf (buf may be NULL only when
 * size is 0). PyTorch: repr(grad_fn). Returns the full length, or a negative nb_status.
 * Ownership: buf is the caller's. Errors: NB_EINVAL for NULL n.
 */
NB_API int64_t nb_node_format(const nb_node *n, char *buf, size_t size);
/**
 * Write the node's repr and a newline to f. PyTorch: print(grad_fn, file=f).
 * Ownership: f is borrowed (not closed).
 * Errors: NB_EINVAL for NULL n or f; NB_EIO on write error.
 */
NB_API nb_status nb_node_print(const nb_node *n, FILE *f);

NB_END_DECLS

#endif /* NABLA_AUTOGRAD_H */
