/*
 * Shape ops: views that share storage (reshape, squeeze, ...) and copies (transpose). Each
 * records a node, as in PyTorch: a view's gradient is the incoming one seen with the input's
 * shape; a slice's lands in zeros at its rows; a permutation's is permuted back.
 */
#include <string.h>

#include "ops/internal.h"

/* dx = dy seen with x's shape (the same elements in the same order) */
static nb_status view_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    const nb_shape *s = &n->input_shape[0];
    gx[0] = nb__new_view("nb_backward", gy->storage, gy->offset, s->ndim, s->dims);
    return gx[0] ? NB_OK : nb__last_code();
}

static const nb_op view_op = {"ViewBackward0", view_backward};
static const nb_op reshape_op = {"ReshapeAliasBackward0", view_backward};
static const nb_op squeeze_all_op = {"SqueezeBackward0", view_backward};
static const nb_op squeeze_dim_op = {"SqueezeBackward1", view_backward};
static const nb_op unsqueeze_op = {"UnsqueezeBackward0", view_backward};
static const nb_op t_view_op = {"TBackward0", view_backward};

/* A view of t with a new shape, recorded as op. */
static nb_tensor *view_as(const char *fn, const nb_op *op, nb_tensor *t, int ndim,
                          const int64_t *dims)
{
    nb_node *n;
    return nb__finish(fn, op, nb__new_view(fn, t->storage, t->offset, ndim, dims), 1, &t, &n);
}

/* Resolve a shape that may hold one -1 against t's element count. */
static nb_status infer_shape(const char *fn, const nb_tensor *t, nb_shape *s)
{
    if (s->ndim < 0 || s->ndim > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, fn, "number of dimensions %d is outside [0, %d]", s->ndim,
                         NB_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] == -1) {
            if (infer >= 0) return nb__error(NB_EINVAL, fn, "only one dimension can be inferred");
            infer = i;
        } else if (s->dims[i] < 0) {
            return nb__error(NB_EINVAL, fn, "invalid shape dimension %lld", (long long)s->dims[i]);
        } else if (s->dims[i] != 0 && known > INT64_MAX / s->dims[i]) {
            return nb__error(NB_ERANGE, fn, "shape has too many elements");
        } else {
            known *= s->dims[i];
        }
    }
    /* with a -1, the other sizes must divide the count (none may be 0: that is ambiguous) */
    bool ok = infer >= 0 ? known != 0 && t->numel % known == 0 : known == t->numel;
    if (!ok) {
        char buf[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn, "shape '%s' is invalid for input of size %lld",
                         nb__shape_str(buf, s->ndim, s->dims), (long long)t->numel);
    }
    if (infer >= 0) s->dims[infer] = t->numel / known;
    return NB_OK;
}

static nb_tensor *reshape(const char *fn, const nb_op *op, nb_tensor *t, nb_shape shape)
{
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (infer_shape(fn, t, &shape) != NB_OK) return NULL;
    return view_as(fn, op, t, shape.ndim, shape.dims);
}

nb_tensor *nb_reshape(nb_tensor *t, nb_shape shape)
{
    return reshape("nb_reshape", &reshape_op, t, shape);
}

nb_tensor *nb_view(nb_tensor *t, nb_shape shape)
{
    return reshape("nb_view", &view_op, t, shape);
}

nb_tensor *nb_squeeze(nb_tensor *t, int dim)
{
    static const char fn[] = "nb_squeeze";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS];
    int n = 0;
    int only = -1;
    if (dim != NB_ALL_DIMS) {
        only = nb__wrap_dim(dim, t->ndim);
        if (only < 0) {
            int hi = t->ndim > 0 ? t->ndim - 1 : 0;
            nb__dim_error(fn, dim, -hi - 1, hi);
            return NULL;
        }
    }
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1 || (only >= 0 && i != only)) dims[n++] = t->shape[i];
    return view_as(fn, only >= 0 ? &squeeze_dim_op : &squeeze_all_op, t, n, dims);
}

nb_tensor *nb_unsqueeze(nb_tensor *t, int dim)
{
    static const char fn[] = "nb_unsqueeze";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (t->ndim >= NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "a tensor can have at most %d dimensions", NB_MAX_DIMS);
        return NULL;
    }
    int d = dim < 0 ? dim + t->ndim + 1 : dim;
    if (d < 0 || d > t->ndim) {
        nb__dim_error(fn, dim, -t->ndim - 1, t->ndim);
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++) dims[i] = i == d ? 1 : t->shape[j++];
    return view_as(fn, &unsqueeze_op, t, t->ndim + 1, dims);
}

nb_tensor *nb_flatten(nb_tensor *t, int start_dim, int end_dim)
{
    static const char fn[] = "nb_flatten";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (t->ndim == 0) {
        int64_t one = 1;
        return view_as(fn, &reshape_op, t, 1, &one);
    }
    int s = nb__wrap_dim(start_dim, t->ndim), e = nb__wrap_dim(end_dim, t->ndim);
    if (s < 0 || e < 0) {
        nb__dim_error(fn, s < 0 ? start_dim : end_dim, -t->ndim, t->ndim - 1);
        return NULL;
    }
    if (s > e) {
        nb__error(NB_EINVAL, fn, "start_dim cannot come after end_dim");
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < s; i++) dims[n++] = t->shape[i];
    int64_t merged = 1;
    for (int i = s; i <= e; i++) {
        /* only a tensor with a size-0 dim can get here with sizes whose product overflows */
        if (t->shape[i] != 0 && merged > INT64_MAX / t->shape[i]) {
            char buf[NB__SHAPE_STR];
            nb__error(NB_ERANGE, fn, "flattening dims %d..%d of shape %s overflows", s, e,
                      nb__shape_str(buf, t->ndim, t->shape));
            return NULL;
        }
        merged *= t->shape[i];
    }
    dims[n++] = merged;
    for (int i = e + 1; i < t->ndim; i++) dims[n++] = t->shape[i];
    return view_as(fn, &reshape_op, t, n, dims);
}

/* dx = zeros with dy in rows start..: iarg[0] = start */
static nb_status slice_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    const nb_shape *s = &n->input_shape[0];
    gx[0] = nb__new("nb_backward", s->ndim, s->dims);
    if (!gx[0]) return nb__last_code();
    float *d = nb__data(gx[0]);
    int64_t row = s->dims[0] ? gx[0]->numel / s->dims[0] : 0, before = n->iarg[0] * row;
    memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    if (gy->numel) memcpy(d + before, nb__data(gy), (size_t)gy->numel * sizeof *d);
    return NB_OK;
}

static const nb_op slice_op = {"SliceBackward0", slice_backward};

nb_tensor *nb_slice(nb_tensor *t, int64_t start, int64_t end)
{
    static const char fn[] = "nb_slice";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (t->ndim == 0) {
        nb__error(NB_EINVAL, fn, "slice() cannot be applied to a 0-dim tensor");
        return NULL;
    }
    int64_t n = t->shape[0];
    /* Python's slice rules: negative counts from the end, then clamp to [0, n] */
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    int64_t row = n ? t->numel / n : 0;
    int64_t dims[NB_MAX_DIMS];
    memcpy(dims, t->shape, sizeof dims);
    dims[0] = end - start;
    nb_node *node;
    nb_tensor *out = nb__finish(
        fn, &slice_op, nb__new_view(fn, t->storage, t->offset + start * row, t->ndim, dims), 1, &t,
        &node);
    if (node) node->iarg[0] = start;
    return out;
}

/* Copy t into a new tensor whose dim i is t's dim perm[i]. */
static nb_tensor *permuted_copy(const char *fn, const nb_tensor *t, const int *perm)
{
    int64_t dims[NB_MAX_DIMS], src_stride[NB_MAX_DIMS], stride[NB_MAX_DIMS];
    int nd = t->ndim;
    int64_t acc = 1;
    for (int i = nd - 1; i >= 0; i--) {
        src_stride[i] = acc;
        /* the products stay <= numel, except with a size-0 dim: [0, 2^40, 2^40] is valid */
        if (t->numel > 0) acc *= t->shape[i];
    }
    for (int i = 0; i < nd; i++) {
        dims[i] = t->shape[perm[i]];
        stride[i] = src_stride[perm[i]];
    }
    nb_tensor *out = nb__new(fn, nd, dims);
    if (!out || out->numel == 0) return out;
    const float *src = nb__data(t);
    float *dst = nb__data(out);
    int64_t idx[NB_MAX_DIMS] = {0};
    int64_t off = 0;
    for (int64_t k = 0; k < out->numel; k++) {
        dst[k] = src[off];
        for (int i = nd - 1; i >= 0; i--) { /* odometer increment */
            off += stride[i];
            if (++idx[i] < dims[i]) break;
            off -= stride[i] * dims[i];
            idx[i] = 0;
        }
    }
    return out;
}

/* dx = dy permuted back: iarg holds the forward permutation */
static nb_status permute_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    int inverse[NB_MAX_DIMS];
    for (int i = 0; i < gy->ndim; i++) inverse[n->iarg[i]] = i;
    gx[0] = permuted_copy("nb_backward", gy, inverse);
    return gx[0] ? NB_OK : nb__last_code();
}

static const nb_op transpose_op = {"TransposeBackward0", permute_backward};
static const nb_op permute_op = {"PermuteBackward0", permute_backward};
static const nb_op t_op = {"TBackward0", permute_backward};

/* The permuted copy of t, recorded as op. */
static nb_tensor *permuted(const char *fn, const nb_op *op, nb_tensor *t, const int *perm)
{
    nb_node *n;
    nb_tensor *out = nb__finish(fn, op, permuted_copy(fn, t, perm), 1, &t, &n);
    for (int i = 0; n && i < t->ndim; i++) n->iarg[i] = perm[i];
    return out;
}

nb_tensor *nb_transpose(nb_tensor *t, int dim0, int dim1)
{
    static const char fn[] = "nb_transpose";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    int a = nb__wrap_dim(dim0, t->ndim), b = nb__wrap_dim(dim1, t->ndim);
    if (a < 0 || b < 0) {
        int hi = t->ndim > 0 ? t->ndim - 1 : 0;
        nb__dim_error(fn, a < 0 ? dim0 : dim1, -hi - 1, hi);
        return NULL;
    }
    /* a copy even when nothing moves (0-d, 1-D, a == b), with errors naming nb_transpose */
    int perm[NB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i;
    if (t->ndim >= 2) {
        perm[a] = b;
        perm[b] = a;
    }
    return permuted(fn, &transpose_op, t, perm);
}

nb_tensor *nb_permute(nb_tensor *t, const int *dims)
{
    static const char fn[] = "nb_permute";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (!dims && t->ndim > 0) {
        nb__error(NB_EINVAL, fn, "argument 'dims' is NULL");
        return NULL;
    }
    int perm[NB_MAX_DIMS];
    bool seen[NB_MAX_DIMS] = {false};
    for (int i = 0; i < t->ndim; i++) {
        int d = nb__wrap_dim(dims[i], t->ndim);
        if (d < 0) {
            nb__dim_error(fn, dims[i], -t->ndim, t->ndim - 1);
            return NULL;
        }
        if (seen[d]) {
            nb__error(NB_EINVAL, fn, "repeated dim %d in permutation", d);
            return NULL;
        }
        seen[d] = true;
        perm[i] = d;
    }
    return permuted(fn, &permute_op, t, perm);
}

nb_tensor *nb_t(nb_tensor *t)
{
    static const char fn[] = "nb_t";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (t->ndim > 2) {
        nb__error(NB_EINVAL, fn, "t() expects a tensor with <= 2 dimensions, but self is %dD",
                  t->ndim);
        return NULL;
    }
    if (t->ndim < 2) return view_as(fn, &t_view_op, t, t->ndim, t->shape);
    return permuted(fn, &t_op, t, (const int[]){1, 0});
}
