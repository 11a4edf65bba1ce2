/**
 * @file
 * nabla — reverse-mode automatic differentiation.
 *
 * Every op on tensors that require grad records a node (its grad_fn) with edges to the
 * nodes of its inputs; nb_backward walks that graph from a root in reverse and fills the
 * .grad of the leaves that require grad, as torch.Tensor.backward does.
 *
 *     nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
 *     nb_tensor *loss = nb_sum(nb_matmul(x, w), NB_DIMS_ALL, false);
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
 * On a non-leaf, which always requires grad, requires_grad true changes nothing and returns t,
 * as in PyTorch.
 * Errors: NULL with NB_EINVAL for NULL t; NB_ESTATE when requires_grad is false and t is not
 * a leaf (use nb_detach()).
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
 * Set t's .grad to grad (a tensor of t's shape), or drop it with NULL; the next backward
 * accumulates into it. PyTorch: t.grad = grad.
 * Ownership: t takes a reference to grad (which stays the caller's too); the previous .grad
 * is released.
 * Errors: NB_EINVAL for NULL t, a grad that is part of a graph (detach it), t itself ("can't
 * assign Variable as its own grad", as PyTorch) or a grad whose own .grad chain leads back to
 * t (a cycle of references, which would never be freed); NB_ESHAPE when grad's shape differs
 * from t's. A NULL grad while an error is pending fails with it.
 */
NB_API nb_status nb_tensor_set_grad(nb_tensor *t, nb_tensor *grad);
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
 * Reset t's .grad: to NULL when set_to_none (PyTorch 2's default; 1.13's is false), else fill
 * it with zeros in place (bumping the grad's version). No .grad: nothing to do.
 * PyTorch: t.grad = None / t.grad.zero_(), as Optimizer.zero_grad(set_to_none).
 * Ownership: with set_to_none, t's reference to its .grad is dropped.
 * Errors: NB_EINVAL for NULL t.
 */
NB_API nb_status nb_zero_grad(nb_tensor *t, bool set_to_none);

/* ---- the engine ------------------------------------------------------------------------ */

/**
 * Backpropagate from root: accumulate d(root)/d(leaf), weighted by grad (the vector of the
 * vector-Jacobian product: leaf.grad += Jᵀ·grad), into the .grad of every leaf that requires
 * grad and every tensor that retains grad (a leaf whose requires_grad was turned off after
 * the graph was made is skipped, as PyTorch's AccumulateGrad does). An existing .grad is
 * added to in place (its version is bumped), as PyTorch does; when the backward also reads
 * it (it is grad itself, a saved tensor, or shares the leaf's storage), after the gradient
 * is computed. grad may be NULL for a one-element root (taken as 1; a NULL grad while an
 * error is pending fails with that error). Unless retain_graph, the saved tensors of the
 * graph are freed on the way and a second backward through it fails. Works whatever the
 * grad mode.
 * PyTorch: Tensor.backward(grad, retain_graph) / torch.autograd.backward.
 * Ownership: the .grad tensors made belong to their tensors, not to any open scope.
 * Errors: NB_EINVAL for NULL root; NB_ESTATE when root does not require grad, when grad is
 * NULL for a root with more than one element, when the graph's saved tensors were freed, or
 * when a saved tensor was changed in place; NB_ESHAPE when grad's shape differs from root's;
 * NB_ENOMEM. After an error in the walk, some .grad may already have been accumulated.
 */
NB_API nb_status nb_backward(nb_tensor *root, const nb_tensor *grad, bool retain_graph);

/** Options of nb_grad; zero-initialised (or NULL) gives PyTorch's defaults. */
typedef struct nb_grad_options {
    /** Keep the graph's saved tensors, so that it can be backwarded again. */
    bool retain_graph;
    /** An input the outputs do not depend on gets a NULL result instead of an error. */
    bool allow_unused;
} nb_grad_options;

/**
 * The gradients of the outputs (weighted by grad_outputs, which may be NULL, as may an entry,
 * when the output has one element) with respect to the inputs, without touching the .grad of
 * any leaf: results[i] = Σ_j (d outputs[j] / d inputs[i])ᵀ·grad_outputs[j]; results holds
 * n_inputs entries. Non-leaf tensors that retain their grad on the way get it, as in
 * PyTorch. With results NULL it is nb_backward over every output (inputs ignored).
 * options may be NULL (retain_graph and allow_unused off).
 * PyTorch: torch.autograd.grad(outputs, inputs, grad_outputs, retain_graph, allow_unused).
 * Ownership: results[i] receives a new reference, or NULL when inputs[i] is not reached and
 * allow_unused.
 * Errors: as nb_backward; NB_EINVAL for NULL or empty outputs or inputs, a NULL entry, or
 * more than 64 outputs or inputs; NB_ESTATE when an input does not require grad, or is not
 * reached and !allow_unused. On error no reference is returned (results written are NULL).
 */
NB_API nb_status nb_grad(nb_tensor *const *outputs, int n_outputs, nb_tensor *const *inputs,
                         int n_inputs, const nb_tensor *const *grad_outputs,
                         const nb_grad_options *options, nb_tensor **results);

/* ---- gradient check ------------------------------------------------------------------ */

/** A function for nb_gradcheck: builds an output from the inputs (ctx is the caller's). */
typedef nb_tensor *(*nb_gradcheck_fn)(nb_tensor *const *inputs, void *ctx);

/** Steps and tolerances of nb_gradcheck; NULL options give the defaults shown. */
typedef struct nb_gradcheck_options {
    /** Each element x is moved by ±eps·max(1, |x|) (default 1e-2). */
    double eps;
    /** Absolute tolerance, times max(1, the input's largest finite numeric gradient)
     *  (default 1e-4). */
    double atol;
    /** Relative tolerance (default 3e-3: a derivative off by 0.5% fails). */
    double rtol;
} nb_gradcheck_options;

/**
 * Check f's gradients: for L = Σ f(inputs) ⊙ R, R a fixed random tensor of the output's
 * shape, compare the analytic dL/dx that nb_grad gives for every input that requires grad
 * with central differences (each element moved by ±h, L summed in double from the float
 * outputs, divided by the step the float actually took), and pass when every element has
 * |analytic − numeric| <= atol·max(1, max |numeric| of that input's finite values) +
 * rtol·|numeric|; as torch.allclose, a NaN on either side fails and an infinity passes only
 * against the same infinity.
 * f is called once with grad mode on, then twice per checked element with it off; it must
 * return a new tensor of the same shape each time (its temporaries may belong to the scope
 * nb_gradcheck opens around each call). Inputs that do not require grad (or are NULL) are
 * passed through unchecked. The inputs' values are restored; their .grad is not touched.
 * PyTorch: torch.autograd.gradcheck(func, inputs, eps, atol, rtol).
 *
 *     static nb_tensor *square(nb_tensor *const *x, void *ctx)
 *     {
 *         (void)ctx;
 *         return nb_mul(x[0], x[0]);
 *     }
 *     nb_tensor *x = nb_requires_grad_(nb_randn(NB_SHAPE(3, 4)), true);
 *     if (nb_gradcheck(square, NULL, &x, 1, NULL) != NB_OK)
 *         puts(nb_last_error()->message);
 *
 * Ownership: inputs and options are borrowed; nothing is returned.
 * Errors: NB_ECHECK when an element disagrees, with the input, element, index and the two
 * values that disagree most: "nb_gradcheck: Jacobian mismatch for input 0, element 5 (index
 * [1, 1]): analytic 2.01, numeric 2"; NB_EINVAL for NULL f, n outside [1, 64], no input that
 * requires grad, an input that is not a leaf, eps <= 0 or a negative tolerance, an output
 * that does not require grad or is NULL without an error; NB_ESHAPE when the output changes
 * shape; the error of f when it fails; NB_ENOMEM.
 */
NB_API nb_status nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs, int n,
                              const nb_gradcheck_options *options);

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
 * Ownership: buf is the caller's. Errors: NB_EINVAL for NULL n, or NULL buf with size > 0.
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
