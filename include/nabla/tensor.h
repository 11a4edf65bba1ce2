/*
 * nabla — tensors: creation, access, views, random numbers, printing, scopes.
 *
 * A tensor is a contiguous, row-major float32 array of up to NB_MAX_DIMS dimensions (0-d
 * tensors are scalars) that shares a reference-counted, 64-byte aligned storage with its
 * views. Tensors are reference counted: every function that returns a tensor returns a new
 * reference, released with nb_release() or, inside a scope, when the scope ends.
 *
 *     nb_manual_seed(0);
 *     nb_tensor *w = nb_randn(NB_SHAPE(5, 3));
 *     nb_print(w);          // the very numbers torch.randn(5, 3) prints after manual_seed(0)
 *     nb_release(w);
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

NB_BEGIN_DECLS

/** The largest number of dimensions a tensor may have. */
#define NB_MAX_DIMS 8

typedef struct nb_tensor nb_tensor;
typedef struct nb_node nb_node;
typedef struct nb_scope nb_scope;
typedef struct nb_generator nb_generator;

/** A shape: ndim sizes. Pass it by value; NB_SHAPE builds one in place. */
typedef struct nb_shape {
    int ndim;
    int64_t dims[NB_MAX_DIMS];
} nb_shape;

/** NB_SHAPE(5, 3) is the shape [5, 3]; NB_SHAPE0 is the 0-d shape []. (C only.) */
#define NB_SHAPE(...)                                                                              \
    ((nb_shape){(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}})
#define NB_SHAPE0 ((nb_shape){0, {0}})

/** Build a shape from an array of ndim sizes. Errors are reported by the consumer. */
NB_API nb_shape nb_shape_make(int ndim, const int64_t *dims);

/* ---------------------------------------------------------------------------------------
 * Reference counting and scopes
 * ------------------------------------------------------------------------------------- */

/** Add a reference. Returns t. NULL is ignored. */
NB_API nb_tensor *nb_retain(nb_tensor *t);

/** Drop a reference; the tensor is freed with the last one. NULL is a no-op. */
NB_API void nb_release(nb_tensor *t);

/**
 * Open a scope: an autorelease pool. Every tensor returned by nabla while the scope is the
 * innermost open scope of the thread is owned by the scope, which releases it at
 * nb_scope_end() unless nb_scope_keep() took it out. Do not nb_release() a tensor that a
 * scope owns (nb_retain()/nb_release() pairs are fine).
 * Ownership: the scope belongs to the caller until nb_scope_end().
 * Errors: NULL with NB_ENOMEM.
 */
NB_API nb_scope *nb_scope_begin(void);

/**
 * Close the innermost scope and release every tensor it still owns.
 * Errors: NB_EINVAL for NULL; NB_ESTATE when s is not the thread's innermost open scope
 * (nothing is released then).
 */
NB_API nb_status nb_scope_end(nb_scope *s);

/**
 * Take t out of the scope that owns it, so it survives that scope's end. If that scope has
 * an enclosing scope, ownership moves there (as a value returned from a function); otherwise
 * the caller now owns the reference and releases it. Returns t.
 * Errors: NULL with NB_ESTATE when t is not owned by an open scope of this thread.
 */
NB_API nb_tensor *nb_scope_keep(nb_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Creation (PyTorch: torch.empty, zeros, ones, full, arange, linspace, tensor, ...)
 * Ownership: each returns a new reference. Errors: NULL with NB_EINVAL / NB_ERANGE for a
 * negative size or more than NB_MAX_DIMS dimensions, NB_ERANGE when the element count
 * overflows, NB_ENOMEM when memory runs out.
 * ------------------------------------------------------------------------------------- */

/** A tensor with uninitialised data. torch.empty. */
NB_API nb_tensor *nb_empty(nb_shape shape);
/** All zeros. torch.zeros. */
NB_API nb_tensor *nb_zeros(nb_shape shape);
/** All ones. torch.ones. */
NB_API nb_tensor *nb_ones(nb_shape shape);
/** Every element = value. torch.full. */
NB_API nb_tensor *nb_full(nb_shape shape, float value);
/** A 0-d tensor holding value. torch.tensor(value). */
NB_API nb_tensor *nb_scalar(float value);
/**
 * A copy of numel(shape) floats read from data. torch.tensor(list).
 * Errors: also NB_EINVAL when data is NULL and the shape is not empty.
 */
NB_API nb_tensor *nb_from_data(const float *data, nb_shape shape);
/**
 * 1-D values start, start+step, ... up to but excluding end; ceil((end-start)/step)
 * elements, computed in double as torch.arange does. Errors: NB_EINVAL when step is 0, or
 * its sign disagrees with end - start, or a bound is not finite.
 */
NB_API nb_tensor *nb_arange(double start, double end, double step);
/**
 * steps values evenly spaced from start to end inclusive. torch.linspace.
 * Errors: NB_EINVAL when steps < 0.
 */
NB_API nb_tensor *nb_linspace(double start, double end, int64_t steps);

/** Same shape as t. torch.empty_like, zeros_like, ones_like, full_like. */
NB_API nb_tensor *nb_empty_like(const nb_tensor *t);
NB_API nb_tensor *nb_zeros_like(const nb_tensor *t);
NB_API nb_tensor *nb_ones_like(const nb_tensor *t);
NB_API nb_tensor *nb_full_like(const nb_tensor *t, float value);

/**
 * A copy of t's data in new storage (torch.clone); the copy is a leaf that does not require
 * grad and does not share t's version counter.
 */
NB_API nb_tensor *nb_clone(const nb_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Random numbers. The generator reproduces PyTorch's CPU generator (mt19937): after
 * nb_manual_seed(s), nb_rand/nb_randn/nb_randint give the same float32 values as
 * torch.rand/torch.randn/torch.randint after torch.manual_seed(s).
 * ------------------------------------------------------------------------------------- */

/** Seed the default generator (of the whole process). torch.manual_seed. */
NB_API void nb_manual_seed(uint64_t seed);

/** The default generator. Ownership: borrowed, lives as long as the process. */
NB_API nb_generator *nb_default_generator(void);

/**
 * A new generator seeded with seed. torch.Generator().manual_seed(seed).
 * Ownership: free it with nb_generator_free(). Errors: NULL with NB_ENOMEM.
 */
NB_API nb_generator *nb_generator_new(uint64_t seed);
/** Free a generator made by nb_generator_new. NULL is a no-op; the default is ignored. */
NB_API void nb_generator_free(nb_generator *gen);
/** Reseed gen (NULL: the default generator). Clears the cached normal. */
NB_API void nb_generator_seed(nb_generator *gen, uint64_t seed);
/** The next raw 32-bit draw of gen (NULL: the default generator). */
NB_API uint32_t nb_generator_random(nb_generator *gen);

/** Uniform on [0, 1), default generator. torch.rand. */
NB_API nb_tensor *nb_rand(nb_shape shape);
/** Standard normal, default generator. torch.randn. */
NB_API nb_tensor *nb_randn(nb_shape shape);
/**
 * Integers uniform on [low, high), stored as float32, default generator. torch.randint.
 * Errors: NB_EINVAL when low >= high.
 */
NB_API nb_tensor *nb_randint(int64_t low, int64_t high, nb_shape shape);
/** Same shape as t: torch.rand_like, torch.randn_like. */
NB_API nb_tensor *nb_rand_like(const nb_tensor *t);
NB_API nb_tensor *nb_randn_like(const nb_tensor *t);

/**
 * In place: fill t with uniform values on [from, to) (tensor.uniform_), normal values
 * (tensor.normal_) or integers in [low, high) (tensor.random_), drawn from gen (NULL: the
 * default generator). Bumps t's version.
 * Errors: NB_EINVAL for NULL t, from > to, std < 0, low >= high; NB_ESTATE for a leaf that
 * requires grad while grad mode is on.
 */
NB_API nb_status nb_uniform_(nb_tensor *t, double from, double to, nb_generator *gen);
NB_API nb_status nb_normal_(nb_tensor *t, double mean, double std, nb_generator *gen);
NB_API nb_status nb_random_(nb_tensor *t, int64_t low, int64_t high, nb_generator *gen);

/* ---------------------------------------------------------------------------------------
 * Access
 * ------------------------------------------------------------------------------------- */

/** Number of dimensions (0 for a scalar). -1 for NULL. */
NB_API int nb_tensor_ndim(const nb_tensor *t);
/** The sizes, ndim of them. Ownership: borrowed from t. NULL for NULL. */
NB_API const int64_t *nb_tensor_shape(const nb_tensor *t);
/** The shape as a value (ndim 0 for NULL). */
NB_API nb_shape nb_tensor_size(const nb_tensor *t);
/**
 * The size of dimension dim; negative dims count from the end, as in PyTorch.
 * Errors: -1 with NB_EINVAL when dim is out of range.
 */
NB_API int64_t nb_tensor_dim_size(const nb_tensor *t, int dim);
/** Number of elements (1 for a scalar). -1 for NULL. */
NB_API int64_t nb_tensor_numel(const nb_tensor *t);
/**
 * The first element of t; the numel() elements follow contiguously, row-major.
 * Writing through the pointer is an in-place change: call nb_tensor_bump_version() after.
 * Ownership: borrowed from t's storage. NULL for NULL.
 */
NB_API float *nb_tensor_data(nb_tensor *t);
NB_API const float *nb_tensor_data_const(const nb_tensor *t);
/** The storage's version counter: how many in-place changes it has seen. */
NB_API uint64_t nb_tensor_version(const nb_tensor *t);
/** Record an in-place change made through nb_tensor_data(). */
NB_API void nb_tensor_bump_version(nb_tensor *t);
/** Whether a and b share storage. */
NB_API bool nb_tensor_shares_storage(const nb_tensor *a, const nb_tensor *b);

/**
 * The value of a tensor with exactly one element. tensor.item().
 * Errors: NB_EINVAL for NULL arguments or a tensor with numel != 1.
 */
NB_API nb_status nb_tensor_item(const nb_tensor *t, float *out);
/**
 * Read / write one element; index holds ndim indices, negative ones counting from the end.
 * nb_tensor_set bumps the version.
 * Errors: NB_EINVAL for NULL arguments, NB_ERANGE for an index out of range; NB_ESTATE for
 * set on a leaf that requires grad while grad mode is on.
 */
NB_API nb_status nb_tensor_get(const nb_tensor *t, const int64_t *index, float *out);
NB_API nb_status nb_tensor_set(nb_tensor *t, const int64_t *index, float value);

/* ---------------------------------------------------------------------------------------
 * Shape and views. reshape/view, squeeze, unsqueeze, flatten and slice share t's storage
 * (and version counter); transpose and permute copy, since storage is always contiguous.
 * Ownership: new references. Errors: NULL with NB_ESHAPE / NB_EINVAL naming the function.
 * ------------------------------------------------------------------------------------- */

/** Same data, new shape; one size may be -1 (inferred). tensor.reshape / tensor.view. */
NB_API nb_tensor *nb_reshape(nb_tensor *t, nb_shape shape);
NB_API nb_tensor *nb_view(nb_tensor *t, nb_shape shape);
/** Remove every size-1 dimension (dim = NB_ALL_DIMS) or only dim if its size is 1. */
#define NB_ALL_DIMS INT32_MIN
NB_API nb_tensor *nb_squeeze(nb_tensor *t, int dim);
/** Insert a size-1 dimension at dim (in [-ndim-1, ndim]). */
NB_API nb_tensor *nb_unsqueeze(nb_tensor *t, int dim);
/** Merge dims start_dim..end_dim into one. torch.flatten(t, start_dim, end_dim). */
NB_API nb_tensor *nb_flatten(nb_tensor *t, int start_dim, int end_dim);
/** Rows start..end-1 along dim 0 (negative and clamped as in Python). t[start:end]. */
NB_API nb_tensor *nb_slice(nb_tensor *t, int64_t start, int64_t end);
/** Swap two dims (copies). torch.transpose. */
NB_API nb_tensor *nb_transpose(nb_tensor *t, int dim0, int dim1);
/** Reorder dims (copies); dims holds a permutation of 0..ndim-1. torch.permute. */
NB_API nb_tensor *nb_permute(nb_tensor *t, const int *dims);
/** tensor.T for ndim <= 2: a 1-D or 0-d tensor is itself (a new reference to a view). */
NB_API nb_tensor *nb_t(nb_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Printing, in PyTorch's repr format
 * ------------------------------------------------------------------------------------- */

/**
 * Write repr(t) as PyTorch prints it ("tensor([1., 2.], requires_grad=True)") into buf
 * (at most size bytes, always NUL-terminated when size > 0), like snprintf.
 * Returns the length of the whole text (excluding the NUL), or a negative nb_status.
 */
NB_API int64_t nb_tensor_format(const nb_tensor *t, char *buf, size_t size);
/** Write repr(t) and a newline to f. Errors: NB_EINVAL for NULL, NB_EIO on write error. */
NB_API nb_status nb_tensor_print(const nb_tensor *t, FILE *f);
/** nb_tensor_print(t, stdout). */
NB_API nb_status nb_print(const nb_tensor *t);
/** Write a shape as "Size([5, 3])" into buf; snprintf-like. Returns the full length. */
NB_API int64_t nb_shape_format(nb_shape shape, char *buf, size_t size);
/** Write "Size([5, 3])" and a newline to f. */
NB_API nb_status nb_shape_print(nb_shape shape, FILE *f);

NB_END_DECLS

#endif /* NABLA_TENSOR_H */
