/*
 * Internal autograd definitions: nodes, edges, saved tensors, and the helpers an op uses to
 * record itself (DESIGN.md "The op pattern"). Never installed.
 */
#ifndef NABLA_AUTOGRAD_INTERNAL_H
#define NABLA_AUTOGRAD_INTERNAL_H

#include "core/internal.h"
#include "nabla/autograd.h"

/** Inputs and saved tensors a node can hold (BCE has four inputs). */
#define NB__MAX_INPUTS 4
#define NB__MAX_SAVED  4

/**
 * Backward of a one-output op: given gy (the gradient of the output, never NULL), set gx[i]
 * to a new tensor shaped like input i for every i with nb__needs_grad(n, i); leave the others
 * NULL. On error: record it (nb__saved reports its own) and return it.
 */
typedef nb_status (*nb__backward_fn)(nb_node *n, nb_tensor *gy, nb_tensor **gx);

/** An op's static description: its PyTorch node name and its backward. */
typedef struct nb_op {
    const char *name;
    nb__backward_fn backward;
} nb_op;

/** Where a gradient goes: input number input_nr of node (NULL: the input needs none). */
typedef struct nb_edge {
    nb_node *node; /* strong */
    int input_nr;
} nb_edge;

/** A tensor saved for backward with the version it had then. */
typedef struct nb_saved {
    nb_tensor *tensor; /* strong; for an op's own output, an alias without grad_fn */
    uint64_t version;
    bool is_output;
} nb_saved;

struct nb_node {
    int64_t refcount;
    const nb_op *op;
    uint64_t seq; /* creation order: the engine runs later nodes first */
    int num_inputs;
    nb_edge next[NB__MAX_INPUTS];
    nb_shape input_shape[NB__MAX_INPUTS];
    nb_saved saved[NB__MAX_SAVED];
    bool saved_released; /* freed by a backward without retain_graph */
    bool has_saved;

    /* op arguments that are not tensors */
    double scalar[2];
    int64_t iarg[NB_MAX_DIMS + 2];

    nb_tensor *variable; /* AccumulateGrad: the leaf (strong) */
    nb_tensor *retained; /* weak: the output that retains its grad */

    /* engine state of the current run */
    uint64_t run;
    int64_t deps;
    nb_tensor *buffer; /* the gradient summed so far */
    int64_t pending;   /* nb_grad: edges not yet seen while ordering the graph */
    bool needed;       /* nb_grad: leads to an input whose gradient is asked for */
    size_t heap_pos;
};

/* ---- recording (forward) --------------------------------------------------------------- */

/**
 * If grad mode is on and one of the n inputs requires grad: make a node for op with an edge
 * per input, make it out's grad_fn (out then requires grad) and return it in *node. Else
 * *node = NULL. inputs may hold NULLs (optional inputs). Errors: NB_ENOMEM, recorded for fn.
 */
nb_status nb__record(const char *fn, const nb_op *op, nb_tensor *out, int n,
                     nb_tensor *const *inputs, nb_node **node);
/** Save t in slot i of n (t may be n's own output). Errors: NB_ENOMEM, recorded for fn. */
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
 */
nb_tensor *nb__saved(nb_node *n, int i);
/** Free n's saved tensors (after a backward without retain_graph). */
void nb__node_release_saved(nb_node *n);
/** The name of the running engine entry point ("nb_backward" or "nb_grad"), for errors. */
const char *nb__engine_fn(void);

/** The leaf's AccumulateGrad node (created on first use). New reference; NULL on OOM. */
nb_node *nb__grad_accumulator(nb_tensor *leaf);

#endif /* NABLA_AUTOGRAD_INTERNAL_H */
