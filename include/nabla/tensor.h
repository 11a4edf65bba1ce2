/**
 * @file
 * nabla — tensors: creation, access, views, random numbers, printing, scopes.
 *
 * A tensor is a contiguous, row-major float32 array of up to NB_MAX_DIMS dimensions (0-d
 * tensors are scalars) that shares a reference-counted, 64-byte aligned storage with its
 * views. Tensors are reference counted: every function that makes a tensor returns a new
 * reference, released with nb_release() or, inside a scope, when the scope ends. Getters
 * (nb_tensor_grad, nb_node_variable) borrow; nb_retain, nb_scope_keep and nb_requires_grad_
 * return their argument.
 *
 *     nb_manual_seed(0);
 *     nb_tensor *w = nb_randn(NB_SHAPE(5, 3));
 *     nb_print(w);          // the very numbers torch.randn(5, 3) prints after manual_seed(0)
 *     nb_release(w);
 *
 * Threads: the reference counts are not atomic (PyTorch's are). An op changes the counts of
 * an input that it returns a view of (the views below, nb_t of fewer than 2 dims, detach,
 * dropout where it draws nothing: nb_tensor_shares_storage tells), and, in grad mode with
 * some input that requires grad, of the inputs its node saves and of the leaves it
 * accumulates into. Threads may pass the same tensor to ops at once only where none does
 * either: a model's parameters serve inference from several threads under NB_NO_GRAD, but
 * one thread at a time records graphs through them (docs/reliability.md, "Threads").
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

/** A tensor (opaque): a shape, a view of a storage, autograd state; reference counted. */
typedef struct nb_tensor nb_tensor;
/** A node of the autograd graph, a tensor's grad_fn (opaque; autograd.h). */
typedef struct nb_node nb_node;
/** A scope: an autorelease pool of tensors (opaque; nb_scope_begin). */
typedef struct nb_scope nb_scope;
/** A random number generator, PyTorch's CPU mt19937 (opaque; nb_generator_new). */
typedef struct nb_generator nb_generator;

/** A shape: ndim sizes. Pass it by value; NB_SHAPE builds one in place. */
typedef struct nb_shape {
    int ndim;                  /**< the number of dimensions, 0 to NB_MAX_DIMS */
    int64_t dims[NB_MAX_DIMS]; /**< the sizes; the first ndim are used */
} nb_shape;

/**
 * NB_SHAPE(5, 3) is the shape [5, 3]; NB_SHAPE0 is the 0-d shape []. (C only; C++:
 * nb_shape_make(2, dims) and nb_shape_make(0, nullptr).) @{
 */
#define NB_SHAPE(...)                                                                              \
    ((nb_shape){(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}})
#define NB_SHAPE0 ((nb_shape){0, {0}})
/** @} */

/**
 * A list of dimensions, as reductions, squeeze and permute take them (negative dims count
 * from the end, as in PyTorch). Pass it by value; NB_DIMS(0, 2) builds one in place and
 * NB_DIMS_ALL stands for every dimension (PyTorch: dim=None).
 */
typedef struct nb_dims {
    int n;              /**< how many dims; NB__DIMS_ALL_N for all of them */
    int d[NB_MAX_DIMS]; /**< the dims, d[0] .. d[n - 1] */
} nb_dims;

/** The n of NB_DIMS_ALL. */
#define NB__DIMS_ALL_N (-1)
/** NB_DIMS(1) is the list [1]; NB_DIMS(0, -1) is [0, -1]. (C only; C++: nb_dims_make.) */
#define NB_DIMS(...) ((nb_dims){(int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), {__VA_ARGS__}})
/** Every dimension (PyTorch: dim=None). (C only; C++: nb_dims_all().) */
#define NB_DIMS_ALL ((nb_dims){NB__DIMS_ALL_N, {0}})

/**
 * Build a dims list from n entries of d (n = 0 gives the empty list, which only a 0-d
 * tensor's nb_permute takes). An n outside [0, NB_MAX_DIMS] is kept (with no entries) for the
 * consumer to report. PyTorch: a tuple of ints.
 * Ownership: a value; d is copied. Errors: none (reported by the consumer).
 */
NB_API nb_dims nb_dims_make(int n, const int *d);

/**
 * The dims list that stands for every dimension, the value of NB_DIMS_ALL, for C++ (where
 * NB_DIMS_ALL's compound literal is not standard). PyTorch: dim=None.
 * Ownership: a value. Errors: none.
 */
NB_API nb_dims nb_dims_all(void);

/**
 * Build a shape from an array of ndim sizes. PyTorch: torch.Size(dims).
 * An ndim outside [0, NB_MAX_DIMS] is kept (with no sizes) for the consumer to report;
 * NULL dims with a valid ndim gives the 0-d shape.
 * Ownership: a value; dims is copied. Errors: none (reported by the consumer).
 */
NB_API nb_shape nb_shape_make(int ndim, const int64_t *dims);

/* ---------------------------------------------------------------------------------------
 * Reference counting and scopes
 * ------------------------------------------------------------------------------------- */

/**
 * Add a reference to t. PyTorch: none (Python's reference counting).
 * Ownership: returns t itself; the caller owns the added reference (it is never a scope's).
 * Errors: none; NULL gives NULL.
 */
NB_API nb_tensor *nb_retain(nb_tensor *t);

/**
 * Drop a reference; the tensor is freed with the last one, which also drops its .grad and its
 * grad_fn (and so the graph behind it, freed iteratively). PyTorch: none (Python's del).
 * Ownership: consumes one reference the caller owns; never one a scope owns.
 * Errors: none; NULL is a no-op.
 */
NB_API void nb_release(nb_tensor *t);

/**
 * Open a scope: an autorelease pool. Every tensor returned by nabla while the scope is the
 * innermost open scope of the thread is owned by the scope, which releases it at
 * nb_scope_end() unless nb_scope_keep() took it out. Do not nb_release() a tensor that a
 * scope owns (nb_retain()/nb_release() pairs are fine). Scopes are per thread: end each on
 * its own thread before that thread exits, which does not end it (its tensors would leak).
 * PyTorch: none (Python frees temporaries by reference counting).
 * Ownership: the scope belongs to the caller until nb_scope_end().
 * Errors: NULL with NB_ENOMEM.
 */
NB_API nb_scope *nb_scope_begin(void);

/**
 * Close the innermost scope and release every tensor it still owns, latest first.
 * PyTorch: none. Ownership: frees s on success.
 * Errors: NB_EINVAL for NULL; NB_ESTATE when s is not the thread's innermost open scope
 * (nothing is released then and s stays open).
 */
NB_API nb_status nb_scope_end(nb_scope *s);

/**
 * Take t out of the scope that owns it, so it survives that scope's end. If that scope has
 * an enclosing scope, ownership moves there (as a value returned from a function); otherwise
 * the caller now owns the reference and releases it. PyTorch: none.
 * Ownership: returns t itself (the same reference, moved).
 * Errors: NULL with NB_EINVAL for NULL t; NB_ESTATE when t is not owned by an open scope
 * (never in one, or already kept) or its scope belongs to another thread; NB_ENOMEM when the
 * enclosing scope cannot grow (t then stays in its scope).
 */
NB_API nb_tensor *nb_scope_keep(nb_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Creation (PyTorch: torch.empty, zeros, ones, full, arange, linspace, tensor, ...)
 * Every function in this section:
 * Ownership: returns a new reference: a leaf that does not require grad.
 * Errors: NULL with NB_EINVAL for a negative size or an ndim outside [0, NB_MAX_DIMS],
 * NB_ERANGE when the element count overflows, NB_ENOMEM when memory runs out; the
 * functions below list any other error.
 * ------------------------------------------------------------------------------------- */

/** A tensor with uninitialised data. PyTorch: torch.empty. */
NB_API nb_tensor *nb_empty(nb_shape shape);
/** All zeros. PyTorch: torch.zeros. */
NB_API nb_tensor *nb_zeros(nb_shape shape);
/** All ones. PyTorch: torch.ones. */
NB_API nb_tensor *nb_ones(nb_shape shape);
/** Every element = value. PyTorch: torch.full. */
NB_API nb_tensor *nb_full(nb_shape shape, float value);
/** A 0-d tensor holding value. PyTorch: torch.tensor(value). */
NB_API nb_tensor *nb_scalar(float value);
/**
 * A copy of numel(shape) floats read from data. PyTorch: torch.tensor(list).
 * Errors: also NB_EINVAL when data is NULL and the shape has elements.
 */
NB_API nb_tensor *nb_from_data(const float *data, nb_shape shape);
/**
 * 1-D values x[i] = start + i·step, up to but excluding end; ceil((end-start)/step)
 * elements, computed in double as torch.arange does, with the bits of its CPU kernel (which
 * fills runs of 16 from a float base per 8 elements, each product fused with its add as in
 * its AVX2 build; bit for bit up to 32768 elements, past which PyTorch's bits depend on its
 * thread count). PyTorch: torch.arange.
 * Errors: NB_EINVAL when step is 0, or its sign disagrees with end - start, or a bound is
 * not finite; NB_ERANGE for too many elements.
 */
NB_API nb_tensor *nb_arange(double start, double end, double step);
/**
 * steps values evenly spaced from start to end inclusive:
 * x[i] = start + i·(end-start)/(steps-1) (the second half counted back from end), computed
 * in float as torch.linspace does, with the bits of its CPU kernel (as nb_arange).
 * PyTorch: torch.linspace.
 * Errors: NB_EINVAL when steps < 0; NB_ERANGE when steps > 0 and start or end is finite but
 * past float's range.
 */
NB_API nb_tensor *nb_linspace(double start, double end, int64_t steps);

/**
 * Same shape as t: uninitialised, zeros, ones, value.
 * PyTorch: torch.empty_like, zeros_like, ones_like, full_like.
 * Errors: also NB_EINVAL for NULL t.
 * @{
 */
NB_API nb_tensor *nb_empty_like(const nb_tensor *t);
NB_API nb_tensor *nb_zeros_like(const nb_tensor *t);
NB_API nb_tensor *nb_ones_like(const nb_tensor *t);
NB_API nb_tensor *nb_full_like(const nb_tensor *t, float value);
/** @} */

/**
 * A copy of t's data in new storage; the copy is a leaf that does not require grad and does
 * not share t's version counter. PyTorch: t.detach().clone() (torch.clone records a node).
 * Errors: also NB_EINVAL for NULL t.
 */
NB_API nb_tensor *nb_clone(const nb_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Random numbers. The generator reproduces PyTorch's CPU generator (mt19937): after
 * nb_manual_seed(s), nb_rand/nb_randn/nb_randint/nb_randperm give the same float32 values as
 * torch.rand/torch.randn/torch.randint/torch.randperm after torch.manual_seed(s).
 * Every function that draws has a form taking a generator (NULL: the default generator).
 * As in PyTorch, each generator has a lock held for the whole of one call, so threads may
 * share one (the default one included): every call then gets a contiguous run of the
 * stream, in the order the threads reach it. For values that do not depend on thread
 * timing, give each thread its own generator.
 * A NULL generator while an error is pending (see error.h) is the failed result of an
 * earlier call: the function fails with that error instead of using the default generator.
 * ------------------------------------------------------------------------------------- */

/**
 * Seed the default generator (of the whole process). PyTorch: torch.manual_seed.
 * Ownership: none. Errors: none.
 */
NB_API void nb_manual_seed(uint64_t seed);

/**
 * The default generator; unless seeded, it starts from the seed of a fresh torch.Generator()
 * (67280421310721). PyTorch: torch.default_generator.
 * Ownership: borrowed, lives as long as the process. Errors: none; never NULL.
 */
NB_API nb_generator *nb_default_generator(void);

/**
 * A new generator seeded with seed. PyTorch: torch.Generator().manual_seed(seed).
 * A draw holds the generator's lock: one that another thread draws from while the process
 * forks stays locked in the child (the default generator does not; docs/design.md).
 * Ownership: the caller's; free it with nb_generator_free(). Errors: NULL with NB_ENOMEM.
 */
NB_API nb_generator *nb_generator_new(uint64_t seed);
/**
 * Free a generator made by nb_generator_new; no other thread may be using it.
 * PyTorch: none.
 * Ownership: consumes gen. Errors: none; NULL and the default generator are ignored.
 */
NB_API void nb_generator_free(nb_generator *gen);
/**
 * Reseed gen (NULL: the default generator, whatever error is pending). Clears the cached
 * normal. PyTorch: Generator.manual_seed. Ownership: none. Errors: none.
 */
NB_API void nb_generator_seed(nb_generator *gen, uint64_t seed);
/**
 * The next raw 32-bit mt19937 draw of gen (NULL: the default generator, whatever error is
 * pending). PyTorch: CPUGeneratorImpl::random() (C++). Ownership: none. Errors: none.
 */
NB_API uint32_t nb_generator_random(nb_generator *gen);

/**
 * Uniform on [0, 1): one float per element, (random() & (2^24 - 1)) · 2^-24, in order.
 * nb_rand draws from the default generator, nb_rand_gen from gen (NULL: the default).
 * PyTorch: torch.rand(shape) / torch.rand(shape, generator=gen).
 * Ownership: new reference. Errors: as the creation functions; for nb_rand_gen, the pending
 * error when gen is NULL while one is pending.
 * @{
 */
NB_API nb_tensor *nb_rand(nb_shape shape);
NB_API nb_tensor *nb_rand_gen(nb_shape shape, nb_generator *gen);
/** @} */
/**
 * Standard normal (Box–Muller, as PyTorch's CPU kernel). nb_randn draws from the default
 * generator, nb_randn_gen from gen (NULL: the default).
 * PyTorch: torch.randn(shape) / torch.randn(shape, generator=gen).
 * Ownership: new reference. Errors: as the creation functions; for nb_randn_gen, the pending
 * error when gen is NULL while one is pending.
 * @{
 */
NB_API nb_tensor *nb_randn(nb_shape shape);
NB_API nb_tensor *nb_randn_gen(nb_shape shape, nb_generator *gen);
/** @} */
/**
 * Integers uniform on [low, high), random() % (high - low) + low (random64() when the range
 * is 2^32 or more), stored as float32: past 2^24 a value rounds to the nearest float, which
 * may be high itself (as torch.randint's float tensors do; PyTorch warns there, nabla does
 * not). nb_randint draws from the default generator, nb_randint_gen from gen (NULL: the
 * default).
 * PyTorch: torch.randint(low, high, shape) / torch.randint(..., generator=gen).
 * Ownership: new reference.
 * Errors: as the creation functions, and NB_EINVAL when low >= high; for nb_randint_gen,
 * the pending error when gen is NULL while one is pending.
 * @{
 */
NB_API nb_tensor *nb_randint(int64_t low, int64_t high, nb_shape shape);
NB_API nb_tensor *nb_randint_gen(int64_t low, int64_t high, nb_shape shape, nb_generator *gen);
/** @} */
/**
 * Same shape as t: uniform on [0, 1) / standard normal, default generator.
 * PyTorch: torch.rand_like, torch.randn_like. Ownership: new reference.
 * Errors: as the creation functions, and NB_EINVAL for NULL t.
 * @{
 */
NB_API nb_tensor *nb_rand_like(const nb_tensor *t);
NB_API nb_tensor *nb_randn_like(const nb_tensor *t);
/** @} */
/**
 * A random permutation of 0..n-1 as a 1-D float32 tensor of n exact integers, drawn from gen
 * (NULL: the default generator) as PyTorch's CPU randperm draws it: p = 0..n-1, then for
 * i = 0 .. n-2 swap p[i] with p[i + random() % (n - i)].
 * PyTorch: torch.randperm(n, generator=gen) (which returns int64).
 * Ownership: new reference.
 * Errors: NULL with NB_EINVAL when n < 0, NB_ERANGE when n > 2^24 (float32 holds every
 * integer only up to 2^24), NB_ENOMEM; the pending error when gen is NULL while one is
 * pending. Nothing is drawn on error.
 */
NB_API nb_tensor *nb_randperm(int64_t n, nb_generator *gen);

/**
 * In place: fill t with uniform values on [from, to), normal values mean + std·N(0, 1), or
 * integers in [low, high), drawn from gen (NULL: the default generator). Bumps t's version.
 * PyTorch: Tensor.uniform_, Tensor.normal_, Tensor.random_(low, high).
 * Ownership: t is changed in place; no reference changes.
 * Errors: NB_EINVAL for NULL t; the pending error when gen is NULL while one is pending;
 * NB_ESTATE for a leaf that requires grad while grad mode is on; NB_EINVAL for from > to or
 * a range that is not finite in float, std < 0 (or NaN), low >= high. Nothing is drawn on
 * error.
 * @{
 */
NB_API nb_status nb_uniform_(nb_tensor *t, double from, double to, nb_generator *gen);
NB_API nb_status nb_normal_(nb_tensor *t, double mean, double std, nb_generator *gen);
NB_API nb_status nb_random_(nb_tensor *t, int64_t low, int64_t high, nb_generator *gen);
/** @} */

/* ---------------------------------------------------------------------------------------
 * Access
 * ------------------------------------------------------------------------------------- */

/**
 * Number of dimensions (0 for a scalar); -1 for NULL. PyTorch: Tensor.dim().
 * Ownership: none. Errors: none.
 */
NB_API int nb_tensor_ndim(const nb_tensor *t);
/**
 * The sizes, ndim of them; NULL for NULL. PyTorch: Tensor.shape.
 * Ownership: borrowed from t, valid while t lives. Errors: none.
 */
NB_API const int64_t *nb_tensor_shape(const nb_tensor *t);
/**
 * The shape as a value; ndim 0 for NULL. PyTorch: Tensor.size().
 * Ownership: a value. Errors: none.
 */
NB_API nb_shape nb_tensor_size(const nb_tensor *t);
/**
 * The size of dimension dim; negative dims count from the end, as in PyTorch (a 0-d tensor
 * has no dims). PyTorch: Tensor.size(dim). Ownership: none.
 * Errors: -1 with NB_EINVAL for NULL t or when dim is out of range.
 */
NB_API int64_t nb_tensor_dim_size(const nb_tensor *t, int dim);
/**
 * Number of elements (1 for a scalar); -1 for NULL. PyTorch: Tensor.numel().
 * Ownership: none. Errors: none.
 */
NB_API int64_t nb_tensor_numel(const nb_tensor *t);
/**
 * The first element of t; the numel() elements follow contiguously, row-major.
 * Writing through the pointer is an in-place change: call nb_tensor_bump_version() after.
 * PyTorch: Tensor.data_ptr().
 * Ownership: borrowed from t's storage, valid while t (or a view of it) lives.
 * Errors: none; NULL for NULL.
 * @{
 */
NB_API float *nb_tensor_data(nb_tensor *t);
NB_API const float *nb_tensor_data_const(const nb_tensor *t);
/** @} */
/**
 * The storage's version counter: how many in-place changes it has seen; 0 for NULL.
 * PyTorch: Tensor._version. Ownership: none. Errors: none.
 */
NB_API uint64_t nb_tensor_version(const nb_tensor *t);
/**
 * Record an in-place change made through nb_tensor_data(): increments the version.
 * PyTorch: none (in-place ops bump it). Ownership: none. Errors: none; NULL is a no-op.
 */
NB_API void nb_tensor_bump_version(nb_tensor *t);
/**
 * Whether a and b share storage; false when either is NULL.
 * PyTorch: a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr().
 * Ownership: none. Errors: none.
 */
NB_API bool nb_tensor_shares_storage(const nb_tensor *a, const nb_tensor *b);

/**
 * The value of a tensor with exactly one element, into *out. PyTorch: Tensor.item().
 * Ownership: none.
 * Errors: NB_EINVAL for NULL t, NULL out, or a tensor with numel != 1.
 */
NB_API nb_status nb_tensor_item(const nb_tensor *t, float *out);
/**
 * Read / write one element; index holds ndim indices, negative ones counting from the end
 * (index may be NULL for a 0-d tensor). nb_tensor_set bumps the version.
 * PyTorch: t[i, j].item() / t[i, j] = value.
 * Ownership: none.
 * Errors: NB_EINVAL for NULL t, index or out; NB_ESTATE for set while grad mode is on on a
 * tensor that requires grad: a leaf, a view of one, or a non-leaf (PyTorch records such a
 * write in the graph; nabla refuses it rather than corrupt the gradient), and for a view made
 * under no-grad of such a tensor; NB_ERANGE for an index out of range.
 * @{
 */
NB_API nb_status nb_tensor_get(const nb_tensor *t, const int64_t *index, float *out);
NB_API nb_status nb_tensor_set(nb_tensor *t, const int64_t *index, float value);
/** @} */

/* ---------------------------------------------------------------------------------------
 * Shape and views. reshape/view, squeeze, unsqueeze, flatten, a slice or narrow along dim 0
 * with step 1 and an expand that repeats nothing share t's storage (and version counter);
 * other slices, transpose, permute and expand copy, since storage is always contiguous
 * (PyTorch returns views there: writing into nabla's copy does not change t), as do cat,
 * stack, repeat and flip (copies in PyTorch too). Each records a node when t requires grad
 * (grad mode on), with PyTorch 1.13's name: ReshapeAliasBackward0 (reshape, flatten),
 * ViewBackward0, SqueezeBackward0 (all dims) / SqueezeBackward1 (one dim) /
 * SqueezeBackward2 (several), UnsqueezeBackward0, SliceBackward0 (slice, narrow),
 * TransposeBackward0, PermuteBackward0, TBackward0, CatBackward0, StackBackward0,
 * ExpandBackward0, RepeatBackward0, FlipBackward0. Backward: a view's gradient is dy seen
 * with t's shape; a slice's is dy placed at its elements of zeros; a permutation's is dy
 * permuted back; each function below gives its own.
 * Ownership: each returns a new reference.
 * Errors: NULL with NB_EINVAL for NULL t, NB_ENOMEM, and the errors each function lists.
 * ------------------------------------------------------------------------------------- */

/**
 * Same data, new shape; one size may be -1 (inferred). PyTorch: Tensor.reshape / Tensor.view.
 * Errors: NB_EINVAL for an ndim outside [0, NB_MAX_DIMS], a size < -1 or two -1s;
 * NB_ERANGE when the sizes overflow; NB_ESHAPE when the element count differs from t's.
 * @{
 */
NB_API nb_tensor *nb_reshape(nb_tensor *t, nb_shape shape);
NB_API nb_tensor *nb_view(nb_tensor *t, nb_shape shape);
/** @} */
/**
 * Remove every size-1 dimension (NB_DIMS_ALL), or those of the listed dims whose size is 1.
 * PyTorch: torch.squeeze(t) / torch.squeeze(t, dim).
 * Errors: NB_EINVAL for an empty list, a dim out of range or repeated.
 */
NB_API nb_tensor *nb_squeeze(nb_tensor *t, nb_dims dims);
/**
 * Insert a size-1 dimension at dim (in [-ndim-1, ndim]). PyTorch: torch.unsqueeze.
 * Errors: NB_EINVAL for dim out of range or when t already has NB_MAX_DIMS dims.
 */
NB_API nb_tensor *nb_unsqueeze(nb_tensor *t, int dim);
/**
 * Merge dims start_dim..end_dim into one (a 0-d t gives [1]; its dims may be 0 or -1).
 * PyTorch: torch.flatten(t, start_dim, end_dim). Where PyTorch returns t itself (a 1-D t,
 * or start_dim == end_dim), nabla returns a view of t recorded as ReshapeAliasBackward0: a
 * C scope cannot own the same tensor twice.
 * Errors: NB_EINVAL for a dim out of range or start_dim after end_dim; NB_ERANGE when the
 * merged size overflows.
 */
NB_API nb_tensor *nb_flatten(nb_tensor *t, int start_dim, int end_dim);
/**
 * The elements start, start + step, ... before end along dim (start and end negative and
 * clamped as in Python, step >= 1). A view along dim 0 with step 1, a copy otherwise.
 * PyTorch: t[start:end:step] along dim (torch.Tensor.__getitem__ / torch.narrow).
 * Errors: NB_EINVAL for a 0-d t, a dim out of range, or step < 1.
 */
NB_API nb_tensor *nb_slice(nb_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/**
 * Swap two dims: out[.., j, .., i, ..] = t[.., i, .., j, ..] (a copy, even when nothing
 * moves). PyTorch: torch.transpose. Errors: NB_EINVAL for a dim out of range.
 */
NB_API nb_tensor *nb_transpose(nb_tensor *t, int dim0, int dim1);
/**
 * Reorder dims (a copy): out's dim i is t's dim dims.d[i]; dims lists a permutation of
 * 0..ndim-1 (negative counting from the end). PyTorch: torch.permute.
 * Errors: NB_EINVAL when dims does not have ndim entries, or has one out of range or
 * repeated.
 */
NB_API nb_tensor *nb_permute(nb_tensor *t, nb_dims dims);
/**
 * Split t along dim into pieces of split_size elements (the last may be smaller; a size-0
 * dim gives one empty piece), written to out[0 .. count-1]. The pieces are outputs of one
 * node, SplitBackward0; each is differentiable, and a piece that is not used simply
 * contributes no gradient. Along dim 0 the pieces are views of t, elsewhere copies.
 * With out NULL and cap 0, nothing is made and the count is returned (to size out).
 * PyTorch: torch.split(t, split_size, dim).
 * Returns the number of pieces, or a negative nb_status.
 * Ownership: each out[i] receives a new reference (in the current scope, if one is open).
 * Errors: NB_EINVAL for NULL t, a 0-d t, a dim out of range, split_size < 0 (or 0 for a
 * non-empty dim), or fewer than count places in out; NB_ENOMEM (then no piece is returned).
 */
NB_API int nb_split(nb_tensor *t, int64_t split_size, int dim, nb_tensor **out, int cap);
/**
 * Split t along dim into at most chunks pieces of ceil(size / chunks) elements, as nb_split
 * (so there may be fewer than chunks pieces); a size-0 dim gives chunks empty pieces, whose
 * node is SplitWithSizesBackward0 as PyTorch's. PyTorch: torch.chunk(t, chunks, dim); node
 * SplitBackward0. Returns the number of pieces, or a negative nb_status.
 * Ownership: as nb_split. Errors: as nb_split, and NB_EINVAL for chunks <= 0.
 */
NB_API int nb_chunk(nb_tensor *t, int chunks, int dim, nb_tensor **out, int cap);
/**
 * Transpose for ndim <= 2: a matrix is copied transposed; a 1-D or 0-d tensor gives a view of
 * itself. PyTorch: Tensor.T / Tensor.t(). Errors: NB_EINVAL when ndim > 2.
 */
NB_API nb_tensor *nb_t(nb_tensor *t);
/**
 * length elements of t along dim from start: nb_slice(t, dim, start, start + length, 1), so
 * a view along dim 0 and a copy elsewhere. A negative start counts from the end; start may
 * be the dim's size when length is 0. dt = zeros with dy at the elements taken.
 * PyTorch: torch.narrow(t, dim, start, length) (a view); node SliceBackward0.
 * Errors: NB_EINVAL for a 0-d t, a dim out of range, a start outside [-size, size] ([-1, 0]
 * for a size-0 dim) or a length < 0 or past the end: "start (1) + length (5) exceeds
 * dimension size (3)".
 */
NB_API nb_tensor *nb_narrow(nb_tensor *t, int dim, int64_t start, int64_t length);
/**
 * The n tensors joined along dim: y = [t_0; t_1; ...], one copy. All have the same number of
 * dims and the same sizes except along dim; a 1-D tensor of size 0 may stand anywhere in the
 * list and is skipped (PyTorch's legacy rule; a list of only such gives [0], whatever dim).
 * The dim is checked against the first tensor that is not skipped. dt_j = dy's part that
 * came from t_j (a [0] tensor for the skipped ones).
 * PyTorch: torch.cat(tensors, dim); node CatBackward0, one for the whole list, with an edge
 * per tensor (empty for a tensor that does not require grad).
 * Ownership: new reference; the tensors are borrowed.
 * Errors: NULL with NB_EINVAL for n <= 0 ("expected a non-empty list of tensors"), NULL
 * tensors or a NULL entry (keeping a pending error), a 0-d tensor ("zero-dimensional tensor
 * (at position 1) cannot be concatenated"), a dim out of range; NB_ESHAPE when the number
 * of dims or a size other than dim's differs ("sizes of tensors must match except in
 * dimension 0. Expected size 3 but got size 4 for tensor number 1 in the list"); NB_ERANGE
 * when the size along dim overflows; NB_ENOMEM.
 */
NB_API nb_tensor *nb_cat(nb_tensor *const *tensors, int n, int dim);
/**
 * The n tensors, all of one shape, stacked along a new dim (in [-ndim-1, ndim]):
 * y[.., j, ..] = t_j. dt_j = dy[.., j, ..]. 0-d tensors stack into a 1-D tensor.
 * PyTorch: torch.stack(tensors, dim); node StackBackward0, with an edge per tensor.
 * Ownership: new reference; the tensors are borrowed.
 * Errors: NULL with NB_EINVAL for n <= 0, NULL tensors or a NULL entry (keeping a pending
 * error), a dim out of range or tensors of NB_MAX_DIMS dims; NB_ESHAPE when the shapes
 * differ ("stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [3, 2]
 * at entry 1"); NB_ENOMEM.
 */
NB_API nb_tensor *nb_stack(nb_tensor *const *tensors, int n, int dim);
/**
 * t broadcast to sizes: each dim of size 1 repeated to the size asked, -1 keeping a dim's
 * size, new leading dims added (sizes has at least t's number of dims, aligned to the right).
 * PyTorch returns a view with stride 0; nabla's tensors are contiguous, so the result is a
 * copy (materialised), except when nothing is repeated (same element count), where it is a
 * view sharing t's storage. dt = dy summed over the expanded dims.
 * PyTorch: Tensor.expand(*sizes); node ExpandBackward0.
 * Errors: NB_EINVAL for an ndim outside [0, NB_MAX_DIMS], fewer sizes than t has dims, a
 * size below -1, or a negative size in a new leading dim; NB_ESHAPE when a size differs from
 * a dim of t that is not 1 ("the expanded size of the tensor (4) must match the existing size
 * (3) at non-singleton dimension 1 (target sizes [2, 4], tensor sizes [2, 3])"); NB_ERANGE
 * when the element count overflows.
 */
NB_API nb_tensor *nb_expand(nb_tensor *t, nb_shape sizes);
/**
 * t tiled repeats.dims[i] times along each dim i (t's shape padded with leading 1s to the
 * number of repeats): y[i] = t[i mod size], y's dims = repeats · t's dims. A repeat of 0
 * gives an empty dim. dt = the sum of dy's tiles. Pass repeats as a shape: NB_SHAPE(2, 1, 3).
 * PyTorch: Tensor.repeat(*repeats); node RepeatBackward0.
 * Errors: NB_EINVAL for fewer repeats than t has dims, more than NB_MAX_DIMS, or a negative
 * repeat; NB_ERANGE when a size overflows.
 */
NB_API nb_tensor *nb_repeat(nb_tensor *t, nb_shape repeats);
/**
 * t reversed along each listed dim (a copy): y[.., i, ..] = t[.., size - 1 - i, ..]. An empty
 * list ((nb_dims){0}) flips nothing, as in PyTorch; NB_DIMS_ALL flips every dim.
 * dt = flip(dy) over the same dims.
 * PyTorch: torch.flip(t, dims); node FlipBackward0.
 * Errors: NB_EINVAL for a dim out of range or listed twice ("dim 0 appears multiple times in
 * the list of dims"), or more than NB_MAX_DIMS of them.
 */
NB_API nb_tensor *nb_flip(nb_tensor *t, nb_dims dims);

/* ---------------------------------------------------------------------------------------
 * Printing, in PyTorch's repr format
 * ------------------------------------------------------------------------------------- */

/**
 * Write repr(t) as PyTorch prints it ("tensor([1., 2.], requires_grad=True)") into buf
 * (at most size bytes, always NUL-terminated when size > 0), like snprintf; buf NULL with
 * size 0 measures. PyTorch: repr(t).
 * Returns the length of the whole text (excluding the NUL), or a negative nb_status.
 * Ownership: buf is the caller's.
 * Errors: NB_EINVAL for NULL t, or NULL buf with size > 0.
 */
NB_API int64_t nb_tensor_format(const nb_tensor *t, char *buf, size_t size);
/**
 * Write repr(t) and a newline to f. PyTorch: print(t, file=f).
 * Ownership: f is borrowed (not closed).
 * Errors: NB_EINVAL for NULL t or f, NB_EIO on write error.
 */
NB_API nb_status nb_tensor_print(const nb_tensor *t, FILE *f);
/**
 * nb_tensor_print(t, stdout). PyTorch: print(t).
 * Ownership: none. Errors: as nb_tensor_print.
 */
NB_API nb_status nb_print(const nb_tensor *t);
/**
 * Write a shape as "Size([5, 3])" into buf; snprintf-like, as nb_tensor_format.
 * PyTorch: repr(t.shape) without "torch.". Returns the full length or a negative nb_status.
 * Ownership: buf is the caller's.
 * Errors: NB_EINVAL for an ndim outside [0, NB_MAX_DIMS], or NULL buf with size > 0.
 */
NB_API int64_t nb_shape_format(nb_shape shape, char *buf, size_t size);
/**
 * Write "Size([5, 3])" and a newline to f. PyTorch: print(t.shape, file=f).
 * Ownership: f is borrowed (not closed).
 * Errors: NB_EINVAL for NULL f or an ndim outside [0, NB_MAX_DIMS]; NB_EIO on write error.
 */
NB_API nb_status nb_shape_print(nb_shape shape, FILE *f);

/* ---------------------------------------------------------------------------------------
 * State dicts: named tensors in insertion order plus string metadata, as PyTorch's
 * state_dict (an OrderedDict of name -> tensor) and safetensors' __metadata__. Modules and
 * optimizers fill them; checkpoint files are read into and written from them.
 *
 *     nb_state_dict *d = nb_state_dict_new();
 *     nb_state_dict_set(d, "0.weight", w);     // retains w
 *     nb_tensor *t = nb_state_dict_get(d, "0.weight");   // borrowed
 *     nb_state_dict_free(d);                   // releases the tensors
 * ------------------------------------------------------------------------------------- */

/** Named tensors in insertion order plus string metadata (opaque; nb_state_dict_new). */
typedef struct nb_state_dict nb_state_dict;

/**
 * An empty state dict. PyTorch: collections.OrderedDict().
 * Ownership: the caller's; free it with nb_state_dict_free(). Errors: NULL with NB_ENOMEM.
 */
NB_API nb_state_dict *nb_state_dict_new(void);
/**
 * Free d, releasing its references to the tensors (the tensors live on if held elsewhere).
 * PyTorch: none. Ownership: consumes d. Errors: none; NULL is a no-op.
 */
NB_API void nb_state_dict_free(nb_state_dict *d);
/**
 * d[name] = t: add t under name at the end, or replace the tensor already under name (which
 * keeps its position). The name is copied; t is retained, not copied (as state_dict() holds
 * the parameters themselves). PyTorch: state_dict[name] = t.
 * Ownership: d takes a reference to t; t stays the caller's too.
 * Errors: NB_EINVAL for NULL t, d or name, or an empty name; NB_ENOMEM (d is unchanged).
 */
NB_API nb_status nb_state_dict_set(nb_state_dict *d, const char *name, nb_tensor *t);
/**
 * The tensor under name, or NULL when there is none (or d or name is NULL).
 * PyTorch: state_dict.get(name).
 * Ownership: borrowed from d; valid until the entry is replaced or removed, or d is freed.
 * Errors: none (absence is not an error).
 */
NB_API nb_tensor *nb_state_dict_get(const nb_state_dict *d, const char *name);
/**
 * Remove the entry under name; later entries move up one place. PyTorch: del state_dict[name].
 * Ownership: d's reference to the tensor is released.
 * Errors: NB_EINVAL for NULL d or name, or when there is no entry under name.
 */
NB_API nb_status nb_state_dict_remove(nb_state_dict *d, const char *name);
/**
 * The number of entries; 0 for NULL. PyTorch: len(state_dict).
 * Ownership: none. Errors: none.
 */
NB_API int64_t nb_state_dict_size(const nb_state_dict *d);
/**
 * The name / tensor of entry i (0 <= i < size), in insertion order; NULL out of range.
 * PyTorch: list(state_dict.items())[i].
 * Ownership: borrowed from d, as nb_state_dict_get. Errors: none.
 * @{
 */
NB_API const char *nb_state_dict_name(const nb_state_dict *d, int64_t i);
NB_API nb_tensor *nb_state_dict_tensor(const nb_state_dict *d, int64_t i);
/** @} */
/**
 * Set the string metadata key = value (both copied; an existing key is overwritten).
 * PyTorch: safetensors' metadata={key: value}.
 * Ownership: none. Errors: NB_EINVAL for NULL d, key or value; NB_ENOMEM (d is unchanged).
 */
NB_API nb_status nb_state_dict_set_metadata(nb_state_dict *d, const char *key, const char *value);
/**
 * The metadata value of key, or NULL when there is none. PyTorch: metadata.get(key).
 * Ownership: borrowed from d; valid until the key is set again or d is freed. Errors: none.
 */
NB_API const char *nb_state_dict_metadata(const nb_state_dict *d, const char *key);
/**
 * The number of metadata keys, and key i (0 <= i < count, in insertion order; NULL out of
 * range). PyTorch: len(metadata), list(metadata)[i].
 * Ownership: borrowed from d. Errors: none.
 * @{
 */
NB_API int64_t nb_state_dict_metadata_size(const nb_state_dict *d);
NB_API const char *nb_state_dict_metadata_key(const nb_state_dict *d, int64_t i);
/** @} */

NB_END_DECLS

#endif /* NABLA_TENSOR_H */
