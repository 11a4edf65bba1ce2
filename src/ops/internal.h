/* Helpers shared by the op families: broadcasting, reductions to a shape, argument checks. */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include "autograd/internal.h"
#include "nabla/ops.h"

/** Elementwise binary kernels. */
typedef enum nb__binop { NB__ADD, NB__SUB, NB__MUL, NB__DIV } nb__binop;

/**
 * The broadcast shape of a and b into *out, or NB_ESHAPE recorded for fn:
 * "shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)".
 */
nb_status nb__broadcast_shape(const char *fn, const nb_shape *a, const nb_shape *b, nb_shape *out);
/**
 * Strides (in elements) that read a contiguous tensor of shape small as if it had shape big
 * (right-aligned; 0 where small is broadcast). small must broadcast to big.
 */
void nb__broadcast_strides(const nb_shape *small, const nb_shape *big, int64_t *strides);
/** out = a op b with broadcasting, no graph. New tensor; NULL with the error set for fn. */
nb_tensor *nb__binary(const char *fn, nb__binop op, const nb_tensor *a, const nb_tensor *b);
/** a op= b in place, b broadcast to a's shape; no checks beyond shapes. */
nb_status nb__binary_inplace(const char *fn, nb__binop op, nb_tensor *a, const nb_tensor *b);
/** g summed over the dims where it is broadcast against shape (backward of broadcasting). */
nb_tensor *nb__sum_to(const nb_tensor *g, const nb_shape *shape);
/** g (which broadcasts to shape) copied out to shape. */
nb_tensor *nb__expand(const nb_tensor *g, const nb_shape *shape);
/** Record op for out when needed; on failure drop out and return NULL. Returns the node. */
nb_tensor *nb__finish(const char *fn, const nb_op *op, nb_tensor *out, int n,
                      nb_tensor *const *inputs, nb_node **node);

#endif /* NABLA_OPS_INTERNAL_H */
