/*
 * Shape ops: views that share storage (reshape, squeeze, ...) and copies (transpose). Each
 * records a node, as in PyTorch: a view's gradient is the incoming one seen with the input's
 * shape; a slice's lands in zeros at its rows; a permutation's is permuted back.
 */
#include <string.h>

#include "ops/internal.h"

/* dx = dy seen with x's shape (the same elements in the same order) */
static nb_status view_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    nb_shape s = nb__input_shape(n, 0);
    return nb__grad_take(
        n, gx, 0, nb__new_view(nb__engine_fn(), gy[0]->storage, gy[0]->offset, s.ndim, s.dims));
}

#define VIEW_OP(name)                                                                              \
    {                                                                                              \
        name, view_backward, 0, 0, NB__OP_VIEW                                                     \
    }
static const nb_op view_op = VIEW_OP("ViewBackward0");
static const nb_op reshape_op = VIEW_OP("ReshapeAliasBackward0");
static const nb_op squeeze_all_op = VIEW_OP("SqueezeBackward0");
static const nb_op squeeze_dim_op = VIEW_OP("SqueezeBackward1");
static const nb_op squeeze_dims_op = VIEW_OP("SqueezeBackward2");
static const nb_op unsqueeze_op = VIEW_OP("UnsqueezeBackward0");
static const nb_op t_view_op = VIEW_OP("TBackward0");

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

nb_tensor *nb_squeeze(nb_tensor *t, nb_dims dims)
{
    static const char fn[] = "nb_squeeze";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    unsigned mask;
    if (nb__dims_mask(fn, dims, t->ndim, &mask) != NB_OK) return NULL;
    int64_t kept[NB_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1 || !(mask & (1u << i))) kept[n++] = t->shape[i];
    const nb_op *op = dims.n == NB__DIMS_ALL_N ? &squeeze_all_op
                      : dims.n == 1            ? &squeeze_dim_op
                                               : &squeeze_dims_op;
    return view_as(fn, op, t, n, kept);
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
    int s = nb__wrap_dim(start_dim, t->ndim), e = nb__wrap_dim(end_dim, t->ndim);
    if (s < 0 || e < 0) {
        int hi = t->ndim > 0 ? t->ndim - 1 : 0;
        nb__dim_error(fn, s < 0 ? start_dim : end_dim, -hi - 1, hi);
        return NULL;
    }
    if (t->ndim == 0) {
        int64_t one = 1;
        return view_as(fn, &reshape_op, t, 1, &one);
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

/* SliceBackward0: where the elements came from along dim. */
typedef struct slice_state {
    int dim;
    int64_t start, step;
} slice_state;

/* What slice_copy does: slice = t's elements (the forward); t's elements = the slice's (the
 * backward into zeros: a gradient of -0 stays -0, as PyTorch copies it); or += (into a
 * gradient that accumulates). */
enum { SLICE_TAKE, SLICE_PUT, SLICE_ADD };

/*
 * Copy between t and the slice, whose element k along dim is t's start + k·step, as mode
 * says. outer and inner are the sizes before and after dim.
 */
static void slice_copy(float *t, int64_t t_dim, float *sl, int64_t count, int64_t outer,
                       int64_t inner, int64_t start, int64_t step, int mode)
{
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t k = 0; k < count; k++) {
            float *a = t + (o * t_dim + start + k * step) * inner;
            float *b = sl + (o * count + k) * inner;
            if (mode == SLICE_TAKE)
                memcpy(b, a, (size_t)inner * sizeof *a);
            else if (mode == SLICE_PUT)
                memcpy(a, b, (size_t)inner * sizeof *a);
            else
                for (int64_t i = 0; i < inner; i++) a[i] += b[i];
        }
    }
}

static void outer_inner(const nb_shape *s, int dim, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < dim; i++) *outer = nb__size_mul(*outer, s->dims[i]);
    for (int i = dim + 1; i < s->ndim; i++) *inner = nb__size_mul(*inner, s->dims[i]);
}

/* dx = zeros with dy at the sliced elements */
static nb_status slice_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const slice_state *st = nb__state(n);
    nb_shape s = nb__input_shape(n, 0);
    bool acc;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    if (!acc) memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    int64_t outer, inner;
    outer_inner(&s, st->dim, &outer, &inner);
    if (gy[0]->numel)
        slice_copy(d, s.dims[st->dim], nb__data(gy[0]), gy[0]->shape[st->dim], outer, inner,
                   st->start, st->step, acc ? SLICE_ADD : SLICE_PUT);
    return NB_OK;
}

static const nb_op slice_op = {"SliceBackward0", slice_backward, 0, sizeof(slice_state), 0};
static const nb_op slice_view_op = {"SliceBackward0", slice_backward, 0, sizeof(slice_state),
                                    NB__OP_VIEW};

/*
 * The elements start, start + step, ... before end along dim d (0 <= start <= end <= size):
 * a view along dim 0 with step 1, else a copy; recorded as SliceBackward0.
 */
static nb_tensor *slice(const char *fn, nb_tensor *t, int d, int64_t start, int64_t end,
                        int64_t step)
{
    int64_t n = t->shape[d];
    int64_t count = end > start ? (end - start - 1) / step + 1 : 0; /* step may be huge */
    nb_shape s = nb__size(t), out_shape = s;
    out_shape.dims[d] = count;
    nb_tensor *out;
    bool view = d == 0 && step == 1;
    if (view) {
        int64_t row = n ? t->numel / n : 0;
        out = nb__new_view(fn, t->storage, t->offset + start * row, t->ndim, out_shape.dims);
    } else {
        out = nb__new(fn, t->ndim, out_shape.dims);
        int64_t outer, inner;
        outer_inner(&s, d, &outer, &inner);
        if (out && out->numel)
            slice_copy(nb__data(t), n, nb__data(out), count, outer, inner, start, step, SLICE_TAKE);
    }
    nb_node *node;
    out = nb__finish(fn, view ? &slice_view_op : &slice_op, out, 1, &t, &node);
    if (node) *(slice_state *)nb__state(node) = (slice_state){d, start, step};
    return out;
}

/* A 0-d t, or a dim out of range: the error for fn; else the wrapped dim (-1 on error). */
static int slice_dim(const char *fn, const char *name, const nb_tensor *t, int dim)
{
    if (t->ndim == 0) {
        nb__error(NB_EINVAL, fn, "%s() cannot be applied to a 0-dim tensor", name);
        return -1;
    }
    int d = nb__wrap_dim(dim, t->ndim);
    if (d < 0) nb__dim_error(fn, dim, -t->ndim, t->ndim - 1);
    return d;
}

nb_tensor *nb_slice(nb_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    static const char fn[] = "nb_slice";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    int d = slice_dim(fn, "slice", t, dim);
    if (d < 0) return NULL;
    if (step < 1) {
        nb__error(NB_EINVAL, fn, "slice step must be positive, got %lld", (long long)step);
        return NULL;
    }
    int64_t n = t->shape[d];
    /* Python's slice rules: negative counts from the end, then clamp to [0, n] */
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    return slice(fn, t, d, start, end, step);
}

nb_tensor *nb_narrow(nb_tensor *t, int dim, int64_t start, int64_t length)
{
    static const char fn[] = "nb_narrow";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    int d = slice_dim(fn, "narrow", t, dim);
    if (d < 0) return NULL;
    int64_t n = t->shape[d];
    /* PyTorch: start in [-n, n] counting from the end when negative (n itself only with
     * length 0); a size-0 dim takes 0 and -1 */
    int64_t lo = n > 0 ? -n : -1;
    if (start < lo || start > n) {
        nb__error(NB_EINVAL, fn,
                  "start %lld is out of range for dimension %d of size %lld (expected to be in "
                  "range of [%lld, %lld])",
                  (long long)start, d, (long long)n, (long long)lo, (long long)n);
        return NULL;
    }
    if (start < 0) start += n > 0 ? n : 1;
    if (length < 0 || start > n - length) {
        nb__error(NB_EINVAL, fn, "start (%lld) + length (%lld) exceeds dimension size (%lld)",
                  (long long)start, (long long)length, (long long)n);
        return NULL;
    }
    return slice(fn, t, d, start, start + length, 1);
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

/* TransposeBackward0, PermuteBackward0, TBackward0: the forward permutation. */
typedef struct permute_state {
    int8_t perm[NB_MAX_DIMS];
} permute_state;

/* dx = dy permuted back */
static nb_status permute_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const permute_state *st = nb__state(n);
    int inverse[NB_MAX_DIMS];
    for (int i = 0; i < gy[0]->ndim; i++) inverse[st->perm[i]] = i;
    return nb__grad_take(n, gx, 0, permuted_copy(nb__engine_fn(), gy[0], inverse));
}

#define PERMUTE_OP(name)                                                                           \
    {                                                                                              \
        name, permute_backward, 0, sizeof(permute_state), 0                                        \
    }
static const nb_op transpose_op = PERMUTE_OP("TransposeBackward0");
static const nb_op permute_op = PERMUTE_OP("PermuteBackward0");
static const nb_op t_op = PERMUTE_OP("TBackward0");

/* The permuted copy of t, recorded as op. */
static nb_tensor *permuted(const char *fn, const nb_op *op, nb_tensor *t, const int *perm)
{
    nb_node *n;
    nb_tensor *out = nb__finish(fn, op, permuted_copy(fn, t, perm), 1, &t, &n);
    for (int i = 0; n && i < t->ndim; i++)
        ((permute_state *)nb__state(n))->perm[i] = (int8_t)perm[i];
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

nb_tensor *nb_permute(nb_tensor *t, nb_dims dims)
{
    static const char fn[] = "nb_permute";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (dims.n != t->ndim) {
        nb__error(NB_EINVAL, fn,
                  "number of dims don't match in permute (the tensor has %d, the list %d)", t->ndim,
                  dims.n);
        return NULL;
    }
    int perm[NB_MAX_DIMS];
    bool seen[NB_MAX_DIMS] = {false};
    for (int i = 0; i < t->ndim; i++) {
        int d = nb__wrap_dim(dims.d[i], t->ndim);
        if (d < 0) {
            nb__dim_error(fn, dims.d[i], -t->ndim, t->ndim - 1);
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

/* ---- several outputs: split and chunk ----------------------------------------------------
 * One node for all the pieces (SplitBackward0), one output each. A piece's gradient may be
 * absent (the piece was not used): its part of dx is zero.
 * --------------------------------------------------------------------------------------- */

/* SplitBackward0: the dim and the size of every piece but the last. */
typedef struct split_state {
    int dim;
    int64_t split_size;
} split_state;

/* dx = the pieces' gradients put back in place, zeros for pieces that got none */
static nb_status split_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const split_state *st = nb__state(n);
    nb_shape s = nb__input_shape(n, 0);
    bool acc;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    if (!acc) memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    int64_t outer, inner;
    outer_inner(&s, st->dim, &outer, &inner);
    for (int j = 0; j < n->num_outputs; j++) {
        if (!gy[j] || !gy[j]->numel) continue;
        slice_copy(d, s.dims[st->dim], nb__data(gy[j]), gy[j]->shape[st->dim], outer, inner,
                   (int64_t)j * st->split_size, 1, acc ? SLICE_ADD : SLICE_PUT);
    }
    return NB_OK;
}

static const nb_op split_op = {"SplitBackward0", split_backward, 0, sizeof(split_state), 0};
static const nb_op split_view_op = {"SplitBackward0", split_backward, 0, sizeof(split_state),
                                    NB__OP_VIEW};
/* chunk of a size-0 dim: PyTorch splits it with sizes, chunks pieces of 0 */
static const nb_op split_sizes_op = {"SplitWithSizesBackward0", split_backward, 0,
                                     sizeof(split_state), 0};
static const nb_op split_sizes_view_op = {"SplitWithSizesBackward0", split_backward, 0,
                                          sizeof(split_state), NB__OP_VIEW};

/*
 * The pieces of split_size along dim into out (cap of them); the count, or a negative status.
 * A size-0 dim gives one empty piece, or empties of them (nb_chunk's chunks) when not 0.
 */
static int split(const char *fn, nb_tensor *x, int64_t split_size, int dim, int empties,
                 nb_tensor **out, int cap)
{
    int d = nb__wrap_dim(dim, x->ndim);
    if (x->ndim == 0 || d < 0) {
        int hi = x->ndim > 0 ? x->ndim - 1 : 0;
        return x->ndim == 0 ? nb__error(NB_EINVAL, fn, "a 0-d tensor cannot be split")
                            : nb__dim_error(fn, dim, -hi - 1, hi);
    }
    int64_t size = x->shape[d];
    if (split_size < 0 || (split_size == 0 && size > 0))
        return nb__error(NB_EINVAL, fn,
                         "split_size can only be 0 if dimension size is 0, but got split_size "
                         "%lld for a dimension of size %lld",
                         (long long)split_size, (long long)size);
    /* both may be huge */
    int64_t count = size == 0 ? (empties ? empties : 1) : (size - 1) / split_size + 1;
    if (count > INT32_MAX / 2)
        return nb__error(NB_ERANGE, fn, "%lld pieces are too many", (long long)count);
    if (!out && cap == 0) return (int)count; /* measuring */
    if (!out || cap < count)
        return nb__error(NB_EINVAL, fn, "%lld pieces do not fit in an array of %d",
                         (long long)count, out ? cap : 0);
    nb_shape s = nb__size(x);
    int64_t outer, inner;
    outer_inner(&s, d, &outer, &inner);
    int made = 0;
    for (; made < count; made++) {
        int64_t start = made * split_size,
                len = size - start < split_size ? size - start : split_size;
        nb_shape ps = s;
        ps.dims[d] = size == 0 ? 0 : len;
        nb_tensor *p;
        if (d == 0) {
            p = nb__new_view(fn, x->storage, x->offset + start * inner, ps.ndim, ps.dims);
        } else {
            p = nb__new(fn, ps.ndim, ps.dims);
            if (p && p->numel)
                slice_copy(nb__data(x), size, nb__data(p), len, outer, inner, start, 1, SLICE_TAKE);
        }
        if (!(out[made] = p)) break;
    }
    nb_node *n = NULL;
    const nb_op *op = size == 0 && empties ? (d == 0 ? &split_sizes_view_op : &split_sizes_op)
                                           : (d == 0 ? &split_view_op : &split_op);
    if (made == count && nb__record(fn, op, 1, &x, made, out, 0, &n) == NB_OK) {
        if (n) *(split_state *)nb__state(n) = (split_state){d, split_size};
        return made;
    }
    for (int j = 0; j < made; j++) { /* a piece failed, or the node: no piece is returned */
        nb__drop(out[j]);
        out[j] = NULL;
    }
    return nb__last_code();
}

int nb_split(nb_tensor *x, int64_t split_size, int dim, nb_tensor **out, int cap)
{
    if (!x) return nb__null("nb_split", "x");
    return split("nb_split", x, split_size, dim, 0, out, cap);
}

int nb_chunk(nb_tensor *x, int chunks, int dim, nb_tensor **out, int cap)
{
    static const char fn[] = "nb_chunk";
    if (!x) return nb__null(fn, "x");
    if (chunks <= 0)
        return nb__error(NB_EINVAL, fn, "chunk expects `chunks` to be greater than 0, got: %d",
                         chunks);
    int d = nb__wrap_dim(dim, x->ndim);
    int64_t size = x->ndim > 0 && d >= 0 ? x->shape[d] : 0;
    /* PyTorch: pieces of ceil(size / chunks), so there may be fewer than chunks; a size-0
     * dim gives chunks empty pieces */
    return split(fn, x, size == 0 ? 0 : (size - 1) / chunks + 1, dim, chunks, out, cap);
}

/* ---- joining: cat and stack ----------------------------------------------------------------
 * The output is outer blocks of total elements; in each, the inputs' rows side by side:
 * input j gives rows[j] elements per block (its size along dim times the sizes after dim;
 * for stack, the sizes from dim on), at the sum of the rows before it. One node with an edge
 * per input, its state sized for them.
 * --------------------------------------------------------------------------------------- */

/* CatBackward0, StackBackward0: the blocks, and each input's row in a block. */
typedef struct join_state {
    int64_t outer, total;
    int64_t rows[]; /* one per input */
} join_state;

/* dx_j = input j's rows of each block of dy */
static nb_status join_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const join_state *st = nb__state(n);
    const float *g = nb__data(gy[0]);
    int64_t at = 0;
    for (int j = 0; j < n->num_inputs; at += st->rows[j], j++) {
        if (!nb__needs_grad(n, j)) continue;
        bool acc;
        float *d = nb__grad_dst(n, gx, j, &acc);
        if (!d) return NB_ENOMEM;
        int64_t row = st->rows[j];
        for (int64_t o = 0; row && o < st->outer; o++) {
            const float *src = g + o * st->total + at;
            float *dst = d + o * row;
            if (acc)
                for (int64_t i = 0; i < row; i++) dst[i] += src[i];
            else
                memcpy(dst, src, (size_t)row * sizeof *dst);
        }
    }
    return NB_OK;
}

static const nb_op cat_op = {"CatBackward0", join_backward, 0, sizeof(join_state), 0};
static const nb_op stack_op = {"StackBackward0", join_backward, 0, sizeof(join_state), 0};

/* The n tensors joined into a new tensor of shape (ndim, dims), outer blocks, recorded as op. */
static nb_tensor *join(const char *fn, const nb_op *op, nb_tensor *const *ts, int n, int ndim,
                       const int64_t *dims, int64_t outer)
{
    nb_tensor *out = nb__new(fn, ndim, dims);
    if (!out) return NULL;
    int64_t total = outer ? out->numel / outer : 0, at = 0;
    for (int j = 0; j < n && out->numel; j++) {
        int64_t row = ts[j]->numel / outer; /* outer > 0: out has elements */
        const float *src = nb__data(ts[j]);
        float *dst = nb__data(out) + at;
        for (int64_t o = 0; row && o < outer; o++)
            memcpy(dst + o * total, src + o * row, (size_t)row * sizeof *dst);
        at += row;
    }
    nb_node *node;
    if (nb__record(fn, op, n, ts, 1, &out, (size_t)n * sizeof(int64_t), &node) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    if (node) {
        join_state *st = nb__state(node);
        st->outer = outer;
        st->total = total;
        for (int j = 0; j < n; j++) st->rows[j] = outer ? ts[j]->numel / outer : 0;
    }
    return out;
}

/* A list of n >= 1 tensors, none NULL; else the error for fn (empty: "expected ..."). */
static nb_status check_list(const char *fn, nb_tensor *const *ts, int n, const char *empty)
{
    if (n <= 0) return nb__error(NB_EINVAL, fn, "%s (got %d tensors)", empty, n);
    if (!ts) return nb__null(fn, "tensors");
    for (int i = 0; i < n; i++) {
        if (ts[i]) continue;
        char name[32];
        snprintf(name, sizeof name, "tensors[%d]", i);
        return nb__null(fn, name);
    }
    return NB_OK;
}

/* PyTorch's legacy rule: a 1-D tensor of size 0 joins any concatenation, and is skipped. */
static bool cat_skips(const nb_tensor *t)
{
    return t->ndim == 1 && t->shape[0] == 0;
}

nb_tensor *nb_cat(nb_tensor *const *tensors, int n, int dim)
{
    static const char fn[] = "nb_cat";
    if (check_list(fn, tensors, n, "expected a non-empty list of tensors") != NB_OK) return NULL;
    const nb_tensor *ref = NULL;
    for (int i = 0; i < n; i++) {
        if (tensors[i]->ndim == 0) {
            nb__error(NB_EINVAL, fn,
                      "zero-dimensional tensor (at position %d) cannot be concatenated", i);
            return NULL;
        }
        if (!ref && !cat_skips(tensors[i])) ref = tensors[i];
    }
    if (!ref) /* only skipped tensors: PyTorch gives [0] and checks no dim */
        return join(fn, &cat_op, tensors, n, 1, (const int64_t[]){0}, 0);
    int d = nb__wrap_dim(dim, ref->ndim);
    if (d < 0) {
        nb__dim_error(fn, dim, -ref->ndim, ref->ndim - 1);
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS];
    memcpy(dims, ref->shape, sizeof dims);
    dims[d] = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = tensors[i];
        if (cat_skips(t)) continue;
        if (t->ndim != ref->ndim) {
            nb__error(NB_ESHAPE, fn, "tensors must have same number of dimensions: got %d and %d",
                      ref->ndim, t->ndim);
            return NULL;
        }
        for (int k = 0; k < t->ndim; k++) {
            if (k == d || t->shape[k] == ref->shape[k]) continue;
            nb__error(NB_ESHAPE, fn,
                      "sizes of tensors must match except in dimension %d. Expected size %lld "
                      "but got size %lld for tensor number %d in the list",
                      d, (long long)ref->shape[k], (long long)t->shape[k], i);
            return NULL;
        }
        if (dims[d] > INT64_MAX - t->shape[d]) {
            nb__error(NB_ERANGE, fn, "the size along dimension %d overflows", d);
            return NULL;
        }
        dims[d] += t->shape[d];
    }
    int64_t outer = 1;
    for (int k = 0; k < d; k++) outer = nb__size_mul(outer, dims[k]);
    return join(fn, &cat_op, tensors, n, ref->ndim, dims, outer);
}

nb_tensor *nb_stack(nb_tensor *const *tensors, int n, int dim)
{
    static const char fn[] = "nb_stack";
    if (check_list(fn, tensors, n, "stack expects a non-empty list of tensors") != NB_OK)
        return NULL;
    const nb_tensor *ref = tensors[0];
    if (ref->ndim >= NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "a tensor can have at most %d dimensions", NB_MAX_DIMS);
        return NULL;
    }
    int d = dim < 0 ? dim + ref->ndim + 1 : dim;
    if (d < 0 || d > ref->ndim) {
        nb__dim_error(fn, dim, -ref->ndim - 1, ref->ndim);
        return NULL;
    }
    for (int i = 1; i < n; i++) {
        if (nb__same_shape(tensors[i], ref)) continue;
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        nb__error(NB_ESHAPE, fn,
                  "stack expects each tensor to be equal size, but got %s at entry 0 and %s at "
                  "entry %d",
                  nb__shape_str(a, ref->ndim, ref->shape),
                  nb__shape_str(b, tensors[i]->ndim, tensors[i]->shape), i);
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS], outer = 1;
    for (int k = 0, j = 0; k <= ref->ndim; k++) dims[k] = k == d ? n : ref->shape[j++];
    for (int k = 0; k < d; k++) outer = nb__size_mul(outer, dims[k]);
    return join(fn, &stack_op, tensors, n, ref->ndim + 1, dims, outer);
}

/* ---- expand and repeat ------------------------------------------------------------------ */

/* dx = dy summed over the dims x was expanded along */
static nb_status expand_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    return nb__grad_sum(n, gx, 0, gy[0], 1.0f);
}

static const nb_op expand_op = {"ExpandBackward0", expand_backward, 0, 0, 0};
static const nb_op expand_view_op = {"ExpandBackward0", expand_backward, 0, 0, NB__OP_VIEW};

NB__EW_KERNEL(copy_kernel, V0)

nb_tensor *nb_expand(nb_tensor *t, nb_shape sizes)
{
    static const char fn[] = "nb_expand";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (sizes.ndim < 0 || sizes.ndim > NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "number of dimensions %d is outside [0, %d]", sizes.ndim,
                  NB_MAX_DIMS);
        return NULL;
    }
    char ws[NB__SHAPE_STR], ts[NB__SHAPE_STR];
    if (sizes.ndim < t->ndim) {
        nb__error(NB_EINVAL, fn,
                  "the number of sizes provided (%d) must be greater or equal to the number of "
                  "dimensions in the tensor (%d)",
                  sizes.ndim, t->ndim);
        return NULL;
    }
    int lead = sizes.ndim - t->ndim;
    nb_shape s = sizes;
    for (int i = 0; i < sizes.ndim; i++) {
        int64_t want = sizes.dims[i], have = i < lead ? 1 : t->shape[i - lead];
        if (i < lead && want < 0) {
            nb__error(NB_EINVAL, fn,
                      "the expanded size of the tensor (%lld) isn't allowed in a leading, "
                      "non-existing dimension %d",
                      (long long)want, i);
            return NULL;
        }
        if (want < -1) {
            nb__error(NB_EINVAL, fn,
                      "the expanded size of the tensor (%lld) at dimension %d is "
                      "negative (-1 keeps a size)",
                      (long long)want, i);
            return NULL;
        }
        if (want == -1) {
            s.dims[i] = have;
        } else if (want != have && have != 1) {
            nb__error(NB_ESHAPE, fn,
                      "the expanded size of the tensor (%lld) must match the existing size (%lld) "
                      "at non-singleton dimension %d (target sizes %s, tensor sizes %s)",
                      (long long)want, (long long)have, i,
                      nb__shape_str(ws, sizes.ndim, sizes.dims),
                      nb__shape_str(ts, t->ndim, t->shape));
            return NULL;
        }
    }
    int64_t numel;
    if (nb__check_shape(fn, s.ndim, s.dims, &numel) != NB_OK) return NULL;
    /* nothing repeated: the same elements in the same order, a view */
    bool view = numel == t->numel;
    nb_tensor *out;
    if (view) {
        out = nb__new_view(fn, t->storage, t->offset, s.ndim, s.dims);
    } else {
        out = nb__new(fn, s.ndim, s.dims);
        nb_shape from = nb__size(t);
        if (out)
            nb__ew_apply(copy_kernel, NULL, nb__data(out), false, &s, 1,
                         &(nb__operand){nb__data(t), &from});
    }
    nb_node *node;
    return nb__finish(fn, view ? &expand_view_op : &expand_op, out, 1, &t, &node);
}

/*
 * Between x (shape xs, padded with leading 1s to os's rank) and its tiling out (shape os,
 * each dim a multiple of xs's): out[i] = x[i mod xs] (to_out), or x[i mod xs] += out[i].
 */
static void repeat_copy(float *x, float *out, const nb_shape *xs, const nb_shape *os, bool to_out)
{
    int nd = os->ndim;
    int64_t numel = 1, stride = 1, st[NB_MAX_DIMS], idx[NB_MAX_DIMS] = {0}, xi[NB_MAX_DIMS] = {0};
    for (int d = nd - 1; d >= 0; d--) { /* x's strides, out's element count */
        st[d] = stride;
        stride = nb__size_mul(stride, xs->dims[d]);
        numel = nb__size_mul(numel, os->dims[d]);
    }
    if (numel == 0) return;
    if (nd == 0) {
        if (to_out)
            out[0] = x[0];
        else
            x[0] += out[0];
        return;
    }
    int64_t len = xs->dims[nd - 1], reps = os->dims[nd - 1] / len, off = 0;
    for (int64_t at = 0; at < numel; at += os->dims[nd - 1]) {
        float *xr = x + off, *orow = out + at;
        for (int64_t r = 0; r < reps; r++, orow += len) {
            if (to_out)
                memcpy(orow, xr, (size_t)len * sizeof *orow);
            else
                for (int64_t i = 0; i < len; i++) xr[i] += orow[i];
        }
        for (int d = nd - 2; d >= 0; d--) { /* odometer; x's index wraps at its size */
            off += st[d];
            if (++xi[d] == xs->dims[d]) {
                xi[d] = 0;
                off -= st[d] * xs->dims[d];
            }
            if (++idx[d] < os->dims[d]) break;
            idx[d] = 0;
        }
    }
}

/* x's shape padded with leading 1s to nd dims */
static nb_shape padded(nb_shape s, int nd)
{
    nb_shape p = {nd, {0}};
    for (int i = 0; i < nd; i++) p.dims[i] = i < nd - s.ndim ? 1 : s.dims[i - (nd - s.ndim)];
    return p;
}

/* dx = the sum of dy's tiles */
static nb_status repeat_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    nb_shape is = nb__input_shape(n, 0), os = nb__size(gy[0]);
    if (nb__shape_eq(&is, &os)) return nb__grad_sum(n, gx, 0, gy[0], 1.0f); /* dy, as PyTorch */
    nb_shape xs = padded(is, os.ndim);
    bool acc;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    if (!acc && gx[0]->numel) memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    repeat_copy(d, nb__data(gy[0]), &xs, &os, false);
    return NB_OK;
}

static const nb_op repeat_op = {"RepeatBackward0", repeat_backward, 0, 0, 0};

nb_tensor *nb_repeat(nb_tensor *t, nb_shape repeats)
{
    static const char fn[] = "nb_repeat";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (repeats.ndim > NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "number of repeat dims %d is more than %d", repeats.ndim,
                  NB_MAX_DIMS);
        return NULL;
    }
    if (repeats.ndim < t->ndim) {
        nb__error(NB_EINVAL, fn,
                  "number of repeat dims (%d) can not be smaller than number of dimensions of "
                  "tensor (%d)",
                  repeats.ndim, t->ndim);
        return NULL;
    }
    nb_shape xs = padded(nb__size(t), repeats.ndim), os = xs;
    for (int i = 0; i < repeats.ndim; i++) {
        int64_t r = repeats.dims[i];
        if (r < 0) {
            nb__error(NB_EINVAL, fn, "repeats must be >= 0, got %lld at dimension %d", (long long)r,
                      i);
            return NULL;
        }
        if (xs.dims[i] != 0 && r > INT64_MAX / xs.dims[i]) {
            nb__error(NB_ERANGE, fn, "repeating dimension %d %lld times overflows", i,
                      (long long)r);
            return NULL;
        }
        os.dims[i] = r * xs.dims[i];
    }
    nb_tensor *out = nb__new(fn, os.ndim, os.dims);
    if (out) repeat_copy(nb__data(t), nb__data(out), &xs, &os, true);
    nb_node *node;
    return nb__finish(fn, &repeat_op, out, 1, &t, &node);
}

/* ---- flip ------------------------------------------------------------------------------- */

/* out = x reversed along the dims in mask (or out += that, when acc); flip is its own inverse */
static void flip_copy(float *out, const float *x, const nb_shape *s, unsigned mask, bool acc)
{
    int nd = s->ndim;
    /* an empty x may have other dims whose product overflows: check for it first */
    for (int d = 0; d < nd; d++)
        if (s->dims[d] == 0) return;
    int64_t numel = 1, step[NB_MAX_DIMS], idx[NB_MAX_DIMS] = {0}, off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        bool flipped = mask & (1u << d);
        step[d] = flipped ? -numel : numel;
        if (flipped) off += (s->dims[d] - 1) * numel;
        numel *= s->dims[d];
    }
    int64_t len = nd ? s->dims[nd - 1] : 1;
    bool rev = nd && (mask & (1u << (nd - 1)));
    if (rev) off -= len - 1; /* the run starts at its own first element, read backwards */
    for (int64_t at = 0; at < numel; at += len) {
        const float *xr = x + off;
        float *o = out + at;
        if (rev && acc)
            for (int64_t i = 0; i < len; i++) o[i] += xr[len - 1 - i];
        else if (rev)
            for (int64_t i = 0; i < len; i++) o[i] = xr[len - 1 - i];
        else if (acc)
            for (int64_t i = 0; i < len; i++) o[i] += xr[i];
        else
            memcpy(o, xr, (size_t)len * sizeof *o);
        for (int d = nd - 2; d >= 0; d--) {
            off += step[d];
            if (++idx[d] < s->dims[d]) break;
            off -= step[d] * s->dims[d];
            idx[d] = 0;
        }
    }
}

/* FlipBackward0: the dims flipped. */
typedef struct flip_state {
    unsigned mask;
} flip_state;

/* dx = flip(dy) over the same dims */
static nb_status flip_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const flip_state *st = nb__state(n);
    nb_shape s = nb__size(gy[0]);
    bool acc;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    flip_copy(d, nb__data(gy[0]), &s, st->mask, acc);
    return NB_OK;
}

static const nb_op flip_op = {"FlipBackward0", flip_backward, 0, sizeof(flip_state), 0};

nb_tensor *nb_flip(nb_tensor *t, nb_dims dims)
{
    static const char fn[] = "nb_flip";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    unsigned mask = 0; /* an empty list flips nothing, as in PyTorch */
    if (dims.n != 0 && nb__dims_mask(fn, dims, t->ndim, &mask) != NB_OK) return NULL;
    nb_shape s = nb__size(t);
    nb_tensor *out = nb__new(fn, s.ndim, s.dims);
    if (out) flip_copy(nb__data(out), nb__data(t), &s, mask, false);
    nb_node *node;
    out = nb__finish(fn, &flip_op, out, 1, &t, &node);
    if (node) ((flip_state *)nb__state(node))->mask = mask;
    return out;
}
