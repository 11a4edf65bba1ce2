/**
 * @file
 * nabla — a dense, BLAS-backed, reverse-mode automatic differentiation engine in C.
 *
 * The tensor and autograd core of PyTorch as a small C library: contiguous float32 tensors,
 * matmul forward and backward through CBLAS, a dynamic graph of grad_fn nodes that backward
 * walks in reverse. The notebook's first lesson, in C:
 *
 *     #include <nabla/nabla.h>
 *
 *     nb_manual_seed(0);
 *     nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
 *     nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
 *     nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
 *
 *     nb_scope *step = nb_scope_begin();          // temporaries die at nb_scope_end
 *     nb_tensor *z = nb_add(nb_matmul(x, w), b);  // NULL propagates: check once
 *     nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
 *     if (!loss || nb_backward(loss, NULL, false) != NB_OK)
 *         fprintf(stderr, "%s\n", nb_last_error()->message);
 *     nb_print(z);  // tensor([ 1.3755, -0.6023, -4.8127], grad_fn=<AddBackward0>)
 *     nb_print(nb_tensor_grad(w));                // borrowed: owned by w
 *     nb_scope_end(step);
 *
 * This header includes nine: error.h (errors, allocator, threads), tensor.h (tensors,
 * scopes, random numbers, printing), autograd.h (the engine), ops.h (differentiable ops),
 * io.h (graph pictures, safetensors checkpoints), nn.h (layers), optim.h (optimizers,
 * gradient clipping, learning-rate schedulers), data.h (datasets and batches) and version.h
 * (NB_VERSION_* and nb_version()). Not included here, each included on its own: extend.h
 * (for libraries built on nabla: nb_error_set, nb_alloc, nb_free, ...) and dist.h
 * (data-parallel training over MPI, libnabla_dist: it includes <mpi.h>).
 */
#ifndef NABLA_NABLA_H
#define NABLA_NABLA_H

#include "error.h"
#include "tensor.h"
#include "autograd.h"
#include "ops.h"
#include "io.h"
#include "nn.h"
#include "optim.h"
#include "data.h"
#include "version.h"

#endif /* NABLA_NABLA_H */
