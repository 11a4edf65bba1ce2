/**
 * @file
 * nabla — input and output: pictures of the graph (Graphviz DOT).
 */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "autograd.h"

NB_BEGIN_DECLS

/** What nb_graph_dot draws. Zero-initialised options give the defaults. */
typedef struct nb_dot_options {
    /** Also print each leaf's .grad under it (after backward). */
    bool show_grads;
    /** Graph title (a label on top), or NULL. */
    const char *title;
    /** Tensors to label in the picture, n_names of them; may be NULL. */
    nb_tensor *const *tensors;
    /** Their names: names[i] labels tensors[i]; may be NULL. */
    const char *const *names;
    /** The number of entries of tensors and names. */
    int n_names;
} nb_dot_options;

/**
 * Write the graph behind t as Graphviz DOT to f: the root tensor, its grad_fn nodes by name
 * (AddBackward0, ...), AccumulateGrad nodes and the leaves that require grad, with name (when
 * given) and shape, edges pointing in the direction gradients flow (from the root to the
 * leaves), and, with show_grads, each leaf's gradient. Render with `dot -Tpng`.
 * options may be NULL (the defaults). PyTorch: none (torchviz's make_dot draws the same).
 * Ownership: t, f and options are borrowed; f is not closed.
 * Errors: NB_EINVAL for NULL t or f; NB_ENOMEM (the graph written so far is still closed
 * with "}"); NB_EIO when f's error indicator is set after writing.
 */
NB_API nb_status nb_graph_dot(const nb_tensor *t, FILE *f, const nb_dot_options *options);

NB_END_DECLS

#endif /* NABLA_IO_H */
