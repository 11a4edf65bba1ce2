/*
 * Internal autograd definitions: a tensor's autograd meta, nodes with their edges, saved
 * tensors, outputs and typed state, and what an op uses to record itself and to write its
 * gradients (DESIGN.md "The op pattern"). Never installed.
 */
#ifndef NABLA_AUTOGRAD_INTERNAL_H
#define NABLA_AUTOGRAD_INTERNAL_H

#include "core/internal.h"
#include "nabla/autograd.h"

/* ---- a tensor's autograd meta (core's nb__meta; NULL for a plain tensor) ---------------- */

typedef struct nb__autograd {
    nb__meta base;
    bool requires_grad;
    bool retains_grad;
    bool warned_grad;          /* the non-leaf .grad warning was given */
    bool no_grad_view;         /* a view made under no-grad of a tensor that requires grad (or
                                  of such a view): not to be written with grad mode on */
    int output_nr;             /* which output of grad_fn this is */
    nb_tensor *grad;           /* strong; NULL until a backward fills it */
    nb_node *grad_fn;          /* strong; NULL for a leaf */
    nb_node *grad_accumulator; /* weak: the leaf's AccumulateGrad node while it lives */
} nb__autograd;

static inline nb__autograd *nb__ag(const nb_tensor *t)
{
    return (nb__autograd *)(void *)t->meta;
}
static inline bool nb__requires_grad(const nb_tensor *t)
{
    return t->meta && nb__ag(t)->requires_grad;
}
static inline nb_node *nb__grad_fn(const nb_tensor *t)
{
    return t->meta ? nb__ag(t)->grad_fn : NULL;
}
/** t's meta, made on first use (in the tensor's meta_space: it cannot fail). */
nb__autograd *nb__ag_make(nb_tensor *t);
/** Whether grad mode is on for this thread. */
bool nb__grad_enabled(void);

/* ---- nodes ----------------------------------------------------------------------------- */

/**
 * Backward of an op. gy[j] is the gradient of output j, or NULL when none reached it (read
 * as zeros; a one-output op always gets one). For every input i with nb__needs_grad(n, i),
 * the backward adds that input's gradient into gx[i]: on entry gx[i] is either NULL (then it
 * makes a tensor shaped like input i) or a buffer the engine lends, shaped like input i and
 * holding the gradient summed so far, to accumulate into (beta = 1, +=). nb__grad_dst and
 * nb__grad_add (ops/internal.h) do either. It leaves gx[i] of the other inputs NULL.
 * On error: record it (nb__saved reports its own) and return it.
 */
typedef nb_status (*nb__backward_fn)(nb_node *n, nb_tensor *const *gy, nb_tensor **gx);

/** Flags of an op. */
enum {
    NB__OP_VIEW = 1, /* the output shares input 0's storage (in-place writes are checked) */
};

/**
 * An op's static description: its node name (PyTorch's), its backward, how many tensors it
 * may save and the size of its typed state (a struct declared next to the backward, read
 * with nb__state). One per op, placed next to its backward.
 */
typedef struct nb_op {
    const char *name;
    nb__backward_fn backward;
    int n_saved;
    size_t state_size;
    unsigned flags;
} nb_op;

/** Where a gradient goes: input number input_nr of node (NULL: the input needs none). */
typedef struct nb_edge {
    nb_node *node; /* strong */
    int input_nr;
} nb_edge;

/** A tensor saved for backward with the version it had then. */
typedef struct nb_saved {
    nb_tensor *tensor; /* strong; for an op's own output, an alias without autograd meta */
    uint64_t version;
    bool is_output;
} nb_saved;

/** One output of a node: its shape, and the engine's gradient buffer for it. */
typedef struct nb__output {
    nb_tensor *buffer;   /* the gradient summed so far in the current run */
    nb_tensor *retained; /* weak: the output tensor, when it retains its grad */
    const int64_t *dims;
    int ndim;
} nb__output;

/*
 * A node is one block: this header, the op's typed state, then num_inputs edges, num_saved
 * saved tensors and num_outputs outputs (with their sizes). An AddBackward0 node of two 2-D
 * tensors takes what those need, a cat over 100 tensors has 100 edges.
 */
struct nb_node {
    int64_t refcount;
    const nb_op *op;
    uint64_t seq; /* creation order: the engine runs later nodes first */
    int num_inputs, num_outputs, num_saved;
    bool saved_released; /* freed by a backward without retain_graph */
    bool has_retained;   /* an output retains its grad */
    nb_edge *next;
    nb_saved *saved;
    nb__output *out;
    nb_tensor *variable; /* AccumulateGrad: the leaf (strong) */

    /* engine state of the current run */
    uint64_t run;
    int64_t deps;
    int64_t pending; /* nb_grad: edges not yet seen while ordering the graph */
    uint64_t queued; /* the run in which the node was queued as a root */
    bool needed;     /* nb_grad: leads to an input whose gradient is asked for */

    uint64_t state[]; /* the op's typed state (8-byte aligned) */
};

/** The op's typed state of node n. */
static inline void *nb__state(nb_node *n)
{
    return n->state;
}

/* ---- recording (forward) --------------------------------------------------------------- */

/**
 * If grad mode is on and one of the n_in inputs requires grad: make a node for op with an
 * edge per input, op->n_saved empty saved slots and op->state_size + extra_state bytes of
 * zeroed state; make it the grad_fn of each of the n_out outputs (output j has output_nr j;
 * outputs then require grad) and return it in *node. Else *node = NULL. in may hold NULLs
 * (absent optional inputs). Errors: NB_ENOMEM recorded for fn (the outputs are untouched).
 */
nb_status nb__record(const char *fn, const nb_op *op, int n_in, nb_tensor *const *in, int n_out,
                     nb_tensor *const *out, size_t extra_state, nb_node **node);
/** Save t in slot i of n (t may be an output of n). Errors: NB_ENOMEM, recorded for fn. */
nb_status nb__save(const char *fn, nb_node *n, int i, nb_tensor *t);
/** Whether input i of n needs a gradient. */
static inline bool nb__needs_grad(const nb_node *n, int i)
{
    return n->next[i].node != NULL;
}

/* ---- backward -------------------------------------------------------------------------- */

/**
 * The tensor saved in slot i (borrowed), or NULL with the engine's error recorded when the
 * saved tensors were freed by an earlier backward or the tensor was changed in place since.
 * A slot that was never filled gives NULL without an error: check nb__has_saved first.
 */
nb_tensor *nb__saved(nb_node *n, int i);
static inline bool nb__has_saved(const nb_node *n, int i)
{
    return n->saved_released || n->saved[i].tensor != NULL;
}
/** The shape of output j of n. */
static inline nb_shape nb__output_shape(const nb_node *n, int j)
{
    return nb__shape(n->out[j].ndim, n->out[j].dims);
}
/**
 * The shape of input i of n, read from the node its edge leads to (valid when
 * nb__needs_grad(n, i)).
 */
static inline nb_shape nb__input_shape(const nb_node *n, int i)
{
    return nb__output_shape(n->next[i].node, n->next[i].input_nr);
}
/** The name of the running engine entry point ("nb_backward", "nb_grad" or the public function
 * that called nb__grad), for errors. */
const char *nb__engine_fn(void);
/** nb_grad, its errors naming fn (the public function the user called). */
nb_status nb__grad(const char *fn, nb_tensor *const *outputs, int n_outputs,
                   nb_tensor *const *inputs, int n_inputs, const nb_tensor *const *grad_outputs,
                   const nb_grad_options *options, nb_tensor **results);

/* ---- engine helpers shared by node.c and engine.c -------------------------------------- */

/** Free a node whose last reference is gone (and, iteratively, what only it held). */
void nb__node_free(nb_node *n);
/** Release a node reference; teardown of a chain is iterative. */
static inline void nb__node_release(nb_node *n)
{
    if (n && --n->refcount == 0) nb__node_free(n);
}
/** Free n's saved tensors (after a backward without retain_graph). */
void nb__node_release_saved(nb_node *n);
/** The leaf's AccumulateGrad node (created on first use). New reference; NULL on OOM. */
nb_node *nb__grad_accumulator(nb_tensor *leaf);

#endif /* NABLA_AUTOGRAD_INTERNAL_H */
