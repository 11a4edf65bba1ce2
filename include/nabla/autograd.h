/*
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
 * Set whether the leaf t requires grad (tensor.requires_grad_()). Returns t itself (not a
 * new reference), so creation and flag chain: nb_requires_grad_(nb_randn(...), true).
 * Errors: NULL with NB_ESTATE when t is not a leaf (use nb_detach()).
 */
NB_API nb_tensor *nb_requires_grad_(nb_tensor *t, bool requires_grad);
/** Whether t requires grad (false for NULL). tensor.requires_grad. */
NB_API bool nb_tensor_requires_grad(const nb_tensor *t);
/** Whether t is a leaf: it has no grad_fn (true for NULL). tensor.is_leaf. */
NB_API bool nb_tensor_is_leaf(const nb_tensor *t);
/**
 * The gradient accumulated into t (tensor.grad), or NULL. For a non-leaf that does not retain
 * its grad this is NULL and a warning is given (once per tensor).
 * Ownership: borrowed from t.
 */
NB_API nb_tensor *nb_tensor_grad(nb_tensor *t);
/** The node that made t (tensor.grad_fn), NULL for a leaf. Ownership: borrowed from t. */
NB_API nb_node *nb_tensor_grad_fn(const nb_tensor *t);
/**
 * Make backward fill t's .grad although t is not a leaf. tensor.retain_grad().
 * Errors: NB_ESTATE when t does not require grad.
 */
NB_API nb_status nb_retain_grad(nb_tensor *t);
/** Whether t retains its grad (tensor.retains_grad). */
NB_API bool nb_tensor_retains_grad(const nb_tensor *t);
/**
 * A new leaf sharing t's storage (and version counter) that does not require grad.
 * tensor.detach(). Ownership: new reference.
 */
NB_API nb_tensor *nb_detach(nb_tensor *t);
/**
 * Reset t's .grad: to NULL when set_to_none (PyTorch's default), else fill it with zeros.
 * Errors: NB_EINVAL for NULL.
 */
NB_API nb_status nb_zero_grad(nb_tensor *t, bool set_to_none);

/* ---- the engine ------------------------------------------------------------------------ */

/**
 * Backpropagate from root: accumulate d(root)/d(leaf), weighted by grad, into the .grad of
 * every leaf that requires grad and every tensor that retains grad. torch.autograd.backward.
 * grad may be NULL for a one-element root (taken as 1). Unless retain_graph, the saved
 * tensors of the graph are freed on the way and a second backward through it fails.
 * Errors: NB_ESTATE when root does not require grad, when grad is NULL for a root with more
 * than one element, when the graph's saved tensors were freed, or when a saved tensor was
 * changed in place; NB_ESHAPE when grad's shape differs from root's.
 */
NB_API nb_status nb_backward(nb_tensor *root, const nb_tensor *grad, bool retain_graph);

/**
 * The gradients of the outputs (weighted by grad_outputs, which may be NULL when every
 * output has one element) with respect to the inputs, without touching any .grad.
 * torch.autograd.grad. results[i] receives a new reference, or NULL when inputs[i] is not
 * reached and allow_unused.
 * Errors: as nb_backward; NB_ESTATE when an input does not require grad, or is not reached
 * and !allow_unused (results are then all NULL).
 */
NB_API nb_status nb_grad(nb_tensor *const *outputs, int n_outputs, nb_tensor *const *inputs,
                         int n_inputs, const nb_tensor *const *grad_outputs, bool retain_graph,
                         bool allow_unused, nb_tensor **results);

/* ---- grad mode ------------------------------------------------------------------------- */

/** Whether ops record the graph on this thread. torch.is_grad_enabled. */
NB_API bool nb_is_grad_enabled(void);
/** Turn recording on or off for this thread; returns the previous mode. */
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

/* ---- nodes ----------------------------------------------------------------------------- */

/** The node's name: "AddBackward0", "AccumulateGrad", ... */
NB_API const char *nb_node_name(const nb_node *n);
/** The number of next functions (one per input of the op). grad_fn.next_functions. */
NB_API int nb_node_num_next(const nb_node *n);
/**
 * Next function i: the node that receives the gradient of input i (NULL when that input needs
 * none), and in *input_nr (if not NULL) which of its inputs. Ownership: borrowed.
 */
NB_API nb_node *nb_node_next(const nb_node *n, int i, int *input_nr);
/** For an AccumulateGrad node, its leaf tensor (grad_fn.variable); else NULL. Borrowed. */
NB_API nb_tensor *nb_node_variable(const nb_node *n);
/** "<AddBackward0 object at 0x55d5c1a2b3c0>" into buf, snprintf-like. */
NB_API int64_t nb_node_format(const nb_node *n, char *buf, size_t size);
/** Write the node's repr and a newline to f. */
NB_API nb_status nb_node_print(const nb_node *n, FILE *f);

NB_END_DECLS

#endif /* NABLA_AUTOGRAD_H */
