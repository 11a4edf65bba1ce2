/* Tensors and storages: creation, reference counting, access. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"

/* ---- shapes ---------------------------------------------------------------------------- */

nb_shape nb_shape_make(int ndim, const int64_t *dims)
{
    nb_shape s = {ndim, {0}};
    if (ndim < 0 || ndim > NB_MAX_DIMS || !dims) {
        s.ndim = ndim < 0 || ndim > NB_MAX_DIMS ? ndim : 0;
        return s;
    }
    memcpy(s.dims, dims, (size_t)ndim * sizeof *dims);
    return s;
}

nb_status nb__check_shape(const char *fn, int ndim, const int64_t *dims, int64_t *numel)
{
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, fn, "number of dimensions %d is outside [0, %d]", ndim,
                         NB_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) {
            char buf[NB__SHAPE_STR];
            return nb__error(NB_EINVAL, fn, "negative dimension %lld in shape %s",
                             (long long)dims[i], nb__shape_str(buf, ndim, dims));
        }
        if (dims[i] != 0 && n > INT64_MAX / dims[i]) {
            char buf[NB__SHAPE_STR];
            return nb__error(NB_ERANGE, fn, "shape %s has too many elements",
                             nb__shape_str(buf, ndim, dims));
        }
        n *= dims[i];
    }
    /* the byte count must fit size_t too */
    if ((uint64_t)n > SIZE_MAX / sizeof(float) - NB__ALIGN) {
        char buf[NB__SHAPE_STR];
        return nb__error(NB_ERANGE, fn, "shape %s has too many elements",
                         nb__shape_str(buf, ndim, dims));
    }
    *numel = n;
    return NB_OK;
}

bool nb__same_shape(const nb_tensor *a, const nb_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

nb_status nb__dim_error(const char *fn, int dim, int lo, int hi)
{
    return nb__error(NB_EINVAL, fn,
                     "dimension out of range (expected to be in range of [%d, %d], but got %d)", lo,
                     hi, dim);
}

nb_dims nb_dims_make(int n, const int *d)
{
    nb_dims r = {n, {0}};
    if (n < 0 || n > NB_MAX_DIMS || !d) {
        r.n = n < 0 || n > NB_MAX_DIMS ? n : 0;
        return r;
    }
    memcpy(r.d, d, (size_t)n * sizeof *d);
    return r;
}

nb_dims nb_dims_all(void)
{
    return NB_DIMS_ALL;
}

nb_status nb__dims_mask(const char *fn, nb_dims dims, int ndim, unsigned *mask)
{
    *mask = 0;
    if (dims.n == NB__DIMS_ALL_N) {
        *mask = (1u << ndim) - 1u;
        return NB_OK;
    }
    if (dims.n == 0)
        return nb__error(NB_EINVAL, fn, "empty list of dims (NB_DIMS_ALL is every dim)");
    if (dims.n < 0 || dims.n > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, fn, "number of dims %d is outside [1, %d]", dims.n,
                         NB_MAX_DIMS);
    unsigned seen = 0;
    for (int i = 0; i < dims.n; i++) {
        int d = nb__wrap_dim(dims.d[i], ndim);
        int hi = ndim > 0 ? ndim - 1 : 0;
        if (d < 0) return nb__dim_error(fn, dims.d[i], -hi - 1, hi);
        /* a 0-d tensor's dim 0 (or -1) may appear once, as in PyTorch */
        if (seen & (1u << d))
            return nb__error(NB_EINVAL, fn, "dim %d appears multiple times in the list of dims", d);
        seen |= 1u << d;
    }
    *mask = ndim > 0 ? seen : 0; /* a 0-d tensor's dim 0 reduces nothing */
    return NB_OK;
}

int nb__wrap_dim(int dim, int ndim)
{
    int n = ndim > 0 ? ndim : 1; /* PyTorch lets a 0-d tensor take dim 0 or -1 */
    if (dim < -n || dim >= n) return -1;
    return dim < 0 ? dim + n : dim;
}

/* ---- storage and tensor objects -------------------------------------------------------- */

/*
 * A fresh tensor is one block: its storage, the tensor object and, from the next 64-byte
 * boundary, the data. The tensor holds a reference to its storage, so the block is freed
 * when the storage's last reference goes, after the tensor (views made later are objects of
 * their own). One allocation per tensor instead of two.
 */
#define STORAGE_HEAD ((sizeof(nb_storage) + 15) & ~(size_t)15)
#define FRESH_HEAD   ((STORAGE_HEAD + sizeof(nb_tensor) + NB__ALIGN - 1) & ~(size_t)(NB__ALIGN - 1))

static nb_tensor *embedded_tensor(const nb_storage *s)
{
    return (nb_tensor *)(void *)((char *)nb__unconst_storage(s) + STORAGE_HEAD);
}

static void storage_release(nb_storage *s)
{
    if (s && --s->refcount == 0) nb__free(s);
}

/* Fill in the tensor object t over storage (a reference is taken), for a shape already
 * checked to have numel elements, and register it with the current scope. */
static nb_tensor *init(const char *fn, nb_tensor *t, nb_storage *storage, int64_t offset, int ndim,
                       const int64_t *dims, int64_t numel)
{
    t->refcount = 1;
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, dims, (size_t)ndim * sizeof *dims);
    t->numel = numel;
    t->storage = storage;
    storage->refcount++;
    t->offset = offset;
    if (!nb__scope_track(t)) {
        nb__release(t);
        nb__oom(fn);
        return NULL;
    }
    return t;
}

nb_tensor *nb__new_view(const char *fn, nb_storage *storage, int64_t offset, int ndim,
                        const int64_t *dims)
{
    int64_t numel;
    if (nb__check_shape(fn, ndim, dims, &numel) != NB_OK) return NULL;
    nb_tensor *t = nb__calloc(sizeof *t);
    if (!t) {
        nb__oom(fn);
        return NULL;
    }
    return init(fn, t, storage, offset, ndim, dims, numel);
}

nb_tensor *nb__new(const char *fn, int ndim, const int64_t *dims)
{
    int64_t numel;
    if (nb__check_shape(fn, ndim, dims, &numel) != NB_OK) return NULL;
    size_t bytes = (size_t)(numel > 0 ? numel : 1) * sizeof(float);
    nb_storage *s = nb__alloc(FRESH_HEAD + bytes, NB__ALIGN);
    if (!s) {
        nb__oom(fn);
        return NULL;
    }
    s->data = (float *)(void *)((char *)s + FRESH_HEAD);
    s->numel = numel;
    s->refcount = 0; /* the tensor's reference is the first */
    s->version = 0;
    s->zeroed = 0;
    nb_tensor *t = embedded_tensor(s);
    /* what init does not set (a memset of the whole object costs more than these stores) */
    for (int i = 0; i < NB_MAX_DIMS; i++) t->shape[i] = 0;
    t->scope = NULL;
    t->scope_slot = 0;
    t->meta = NULL;
    return init(fn, t, s, 0, ndim, dims, numel);
}

nb_tensor *nb_retain(nb_tensor *t)
{
    if (t) t->refcount++;
    return t;
}

/*
 * Freeing a tensor can drop the last reference to its grad and grad_fn, which drop others
 * in turn; nodes free their own chains iteratively (autograd layer), so depth here is bounded.
 */
void nb__tensor_free(nb_tensor *t)
{
    nb__scope_untrack(t);
    if (t->meta) t->meta->ops->free(t);
    nb_storage *s = t->storage;
    bool embedded = embedded_tensor(s) == t;
    if (!embedded) nb__free(t);
    storage_release(s); /* frees an embedded t with its block */
}

void nb_release(nb_tensor *t)
{
    nb__release(t);
}

void nb__drop(nb_tensor *t)
{
    if (!t) return;
    nb__scope_untrack(t);
    nb__release(t);
}

/* ---- creation -------------------------------------------------------------------------- */

nb_tensor *nb_empty(nb_shape shape)
{
    return nb__new("nb_empty", shape.ndim, shape.dims);
}

static nb_tensor *filled(const char *fn, nb_shape shape, float value)
{
    nb_tensor *t = nb__new(fn, shape.ndim, shape.dims);
    if (!t) return NULL;
    float *d = nb__data(t);
    if (value == 0.0f && !signbit(value))
        memset(d, 0, (size_t)t->numel * sizeof *d);
    else
        for (int64_t i = 0; i < t->numel; i++) d[i] = value;
    return t;
}

nb_tensor *nb_zeros(nb_shape shape)
{
    return filled("nb_zeros", shape, 0.0f);
}

nb_tensor *nb_ones(nb_shape shape)
{
    return filled("nb_ones", shape, 1.0f);
}

nb_tensor *nb_full(nb_shape shape, float value)
{
    return filled("nb_full", shape, value);
}

nb_tensor *nb_scalar(float value)
{
    return filled("nb_scalar", NB_SHAPE0, value);
}

nb_tensor *nb_from_data(const float *data, nb_shape shape)
{
    nb_tensor *t = nb__new("nb_from_data", shape.ndim, shape.dims);
    if (!t) return NULL;
    if (!data && t->numel > 0) {
        nb__drop(t);
        nb__error(NB_EINVAL, "nb_from_data", "argument 'data' is NULL");
        return NULL;
    }
    if (t->numel > 0) memcpy(nb__data(t), data, (size_t)t->numel * sizeof *data);
    return t;
}

/*
 * arange and linspace give the bits of PyTorch's CPU kernels (their AVX2 build, one thread:
 * past 32768 elements PyTorch splits the range among its threads, which changes the bits):
 * runs of RANGE_RUN elements are filled as vectors of RANGE_VEC, each from one base value,
 * and the elements after the last whole run one at a time.
 */
#define RANGE_VEC 8
#define RANGE_RUN (2 * RANGE_VEC)

nb_tensor *nb_arange(double start, double end, double step)
{
    static const char fn[] = "nb_arange";
    if (!isfinite(start) || !isfinite(end) || !isfinite(step)) {
        nb__error(NB_EINVAL, fn, "unsupported range: %g -> %g (step %g)", start, end, step);
        return NULL;
    }
    if (step == 0.0) {
        nb__error(NB_EINVAL, fn, "step must be nonzero");
        return NULL;
    }
    if ((step > 0 && end < start) || (step < 0 && end > start)) {
        nb__error(NB_EINVAL, fn, "upper bound and larger bound inconsistent with step sign");
        return NULL;
    }
    double count = ceil((end - start) / step);
    if (count > 9.0e18) {
        nb__error(NB_ERANGE, fn, "too many elements: %g", count);
        return NULL;
    }
    int64_t n = (int64_t)count;
    nb_tensor *t = nb__new(fn, 1, &n);
    if (!t) return NULL;
    /* as PyTorch's kernel: runs of RANGE_RUN elements in vectors of RANGE_VEC, each from a
       base start + i·step rounded to float, then base + k·step in double; the rest one by one.
       Its AVX2 build fuses each of these products with its add (GCC's default contraction) */
    float *d = nb__data(t);
    int64_t runs = n - n % RANGE_RUN;
    for (int64_t i = 0; i < runs; i += RANGE_VEC) {
        float base = (float)fma(step, (double)i, start);
        d[i] = base;
        for (int k = 1; k < RANGE_VEC; k++) d[i + k] = (float)fma((double)k, step, (double)base);
    }
    for (int64_t i = runs; i < n; i++) d[i] = (float)fma(step, (double)i, start);
    return t;
}

nb_tensor *nb_linspace(double start, double end, int64_t steps)
{
    static const char fn[] = "nb_linspace";
    if (steps < 0) {
        nb__error(NB_EINVAL, fn, "number of steps must be non-negative, got %lld",
                  (long long)steps);
        return NULL;
    }
    /* as PyTorch, which converts both ends to float once there is an element to compute */
    const double ends[2] = {start, end};
    for (int i = 0; i < 2 && steps > 0; i++) {
        if (isfinite(ends[i]) && fabs(ends[i]) > (double)FLT_MAX) {
            nb__error(NB_ERANGE, fn, "%s (%g) cannot be converted to type float without overflow",
                      i ? "end" : "start", ends[i]);
            return NULL;
        }
    }
    nb_tensor *t = nb__new(fn, 1, &steps);
    if (!t) return NULL;
    float *d = nb__data(t);
    if (steps == 1) d[0] = (float)start;
    if (steps > 1) {
        /* as PyTorch's kernel, in float: the first half counts up from start, the second down
           from end (fused), a vector of RANGE_VEC from the base of its first element */
        const float s = (float)start, e = (float)end;
        const float step = (e - s) / (float)(steps - 1);
        const int64_t half = steps / 2, runs = steps - steps % RANGE_RUN;
        for (int64_t i = 0; i < steps; i++) {
            int64_t base = i < runs ? i - i % RANGE_VEC : i;
            float v = base < half ? fmaf(step, (float)base, s)
                                  : fmaf(-step, (float)(steps - base - 1), e);
            d[i] = base == i ? v : v + (float)(i - base) * step;
        }
    }
    return t;
}

static nb_tensor *like(const char *fn, const nb_tensor *t)
{
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    return nb__new(fn, t->ndim, t->shape);
}

nb_tensor *nb_empty_like(const nb_tensor *t)
{
    return like("nb_empty_like", t);
}

static nb_tensor *filled_like(const char *fn, const nb_tensor *t, float value)
{
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    return filled(fn, nb_tensor_size(t), value);
}

nb_tensor *nb_zeros_like(const nb_tensor *t)
{
    return filled_like("nb_zeros_like", t, 0.0f);
}

nb_tensor *nb_ones_like(const nb_tensor *t)
{
    return filled_like("nb_ones_like", t, 1.0f);
}

nb_tensor *nb_full_like(const nb_tensor *t, float value)
{
    return filled_like("nb_full_like", t, value);
}

nb_tensor *nb_clone(const nb_tensor *t)
{
    nb_tensor *c = like("nb_clone", t);
    if (c && c->numel) memcpy(nb__data(c), nb__data(t), (size_t)t->numel * sizeof(float));
    return c;
}

/* ---- access ---------------------------------------------------------------------------- */

int nb_tensor_ndim(const nb_tensor *t)
{
    return t ? t->ndim : -1;
}

const int64_t *nb_tensor_shape(const nb_tensor *t)
{
    return t ? t->shape : NULL;
}

nb_shape nb_tensor_size(const nb_tensor *t)
{
    return t ? nb_shape_make(t->ndim, t->shape) : NB_SHAPE0;
}

int64_t nb_tensor_dim_size(const nb_tensor *t, int dim)
{
    if (!t) {
        nb__null("nb_tensor_dim_size", "t");
        return -1;
    }
    if (t->ndim == 0) {
        nb__error(NB_EINVAL, "nb_tensor_dim_size",
                  "dimension out of range (a 0-d tensor has no dimensions, got %d)", dim);
        return -1;
    }
    int d = nb__wrap_dim(dim, t->ndim);
    if (d < 0) {
        nb__dim_error("nb_tensor_dim_size", dim, -t->ndim, t->ndim - 1);
        return -1;
    }
    return t->shape[d];
}

int64_t nb_tensor_numel(const nb_tensor *t)
{
    return t ? t->numel : -1;
}

float *nb_tensor_data(nb_tensor *t)
{
    return t ? nb__data(t) : NULL;
}

const float *nb_tensor_data_const(const nb_tensor *t)
{
    return t ? nb__data(t) : NULL;
}

uint64_t nb_tensor_version(const nb_tensor *t)
{
    return t ? t->storage->version : 0;
}

void nb_tensor_bump_version(nb_tensor *t)
{
    if (t) t->storage->version++;
}

bool nb_tensor_shares_storage(const nb_tensor *a, const nb_tensor *b)
{
    return a && b && a->storage == b->storage;
}

nb_status nb_tensor_item(const nb_tensor *t, float *out)
{
    static const char fn[] = "nb_tensor_item";
    if (!t) return nb__null(fn, "t");
    if (!out) return nb__error(NB_EINVAL, fn, "argument 'out' is NULL");
    if (t->numel != 1)
        return nb__error(NB_EINVAL, fn, "a Tensor with %lld elements cannot be converted to Scalar",
                         (long long)t->numel);
    *out = nb__data(t)[0];
    return NB_OK;
}

/* Flat offset of index in t, or a negative status (recorded for fn). */
static int64_t flat_index(const char *fn, const nb_tensor *t, const int64_t *index)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t k = index[i] < 0 ? index[i] + t->shape[i] : index[i];
        if (k < 0 || k >= t->shape[i])
            return nb__error(NB_ERANGE, fn,
                             "index %lld is out of bounds for dimension %d with size %lld",
                             (long long)index[i], i, (long long)t->shape[i]);
        off = off * t->shape[i] + k;
    }
    return off;
}

nb_status nb_tensor_get(const nb_tensor *t, const int64_t *index, float *out)
{
    static const char fn[] = "nb_tensor_get";
    if (!t) return nb__null(fn, "t");
    if (!out || (!index && t->ndim > 0))
        return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", out ? "index" : "out");
    int64_t off = flat_index(fn, t, index);
    if (off < 0) return (nb_status)off;
    *out = nb__data(t)[off];
    return NB_OK;
}

nb_status nb_tensor_set(nb_tensor *t, const int64_t *index, float value)
{
    static const char fn[] = "nb_tensor_set";
    if (!t) return nb__null(fn, "t");
    if (!index && t->ndim > 0) return nb__error(NB_EINVAL, fn, "argument 'index' is NULL");
    nb_status st = nb__check_inplace(fn, t);
    if (st != NB_OK) return st;
    int64_t off = flat_index(fn, t, index);
    if (off < 0) return (nb_status)off;
    nb__data(t)[off] = value;
    t->storage->version++;
    return NB_OK;
}
