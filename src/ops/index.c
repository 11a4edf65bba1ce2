/*
 * Indexing ops: index_select, gather, scatter_add, embedding. Indices and ids are float32
 * tensors holding exact integers (PyTorch's are int64): every one is checked before any is
 * used, and the first that is not an integer in range is reported with its position. They
 * are not differentiable: an index gets no edge in the node, and is saved for backward.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"

/* ---- checking indices ------------------------------------------------------------------ */

/* v as the user wrote it: an integer without a fraction, anything else with 9 digits */
static void value_str(char *buf, size_t size, float v)
{
    if (isfinite(v) && v == floorf(v) && fabsf(v) < 0x1p62f)
        snprintf(buf, size, "%lld", (long long)v);
    else
        snprintf(buf, size, "%.9g", (double)v);
}

/*
 * NB_OK when every element of idx is an integer in [0, size); else the error for fn about the
 * first that is not: "<what> 12 at position [1, 3] is out of range for <range>", or "... is
 * not an integer". range says what size counts ("dimension 1 with size 4", "10 rows").
 */
static nb_status check_indices(const char *fn, const char *what, const nb_tensor *idx, int64_t size,
                               const char *range)
{
    const float *v = nb__data(idx);
    int64_t k = 0;
    for (; k < idx->numel; k++) {
        float f = v[k];
        if (!(f == floorf(f) && f >= 0.0f && (double)f < (double)size)) break; /* NaN fails */
    }
    if (k == idx->numel) return NB_OK;
    int64_t pos[NB_MAX_DIMS];
    for (int64_t d = idx->ndim - 1, r = k; d >= 0; d--) {
        pos[d] = r % idx->shape[d];
        r /= idx->shape[d];
    }
    char val[32], at[NB__SHAPE_STR];
    value_str(val, sizeof val, v[k]);
    nb__shape_str(at, idx->ndim, pos);
    if (!isfinite(v[k]) || v[k] != floorf(v[k]))
        return nb__error(NB_EINVAL, fn, "%s %s at position %s is not an integer", what, val, at);
    return nb__error(NB_EINVAL, fn, "%s %s at position %s is out of range for %s", what, val, at,
                     range);
}

/* The range of indices into dim d of x, for check_indices */
static nb_status check_dim_indices(const char *fn, const nb_tensor *idx, int d, int64_t size)
{
    char range[64];
    snprintf(range, sizeof range, "dimension %d with size %lld", d, (long long)size);
    return check_indices(fn, "index", idx, size, range);
}

/*
 * The index saved in slot 0 into *index, and where input i's gradient goes: zeroed, or the
 * buffer lent (*acc), to add into. NULL with the engine's error recorded.
 */
static float *index_grad_dst(nb_node *n, nb_tensor **gx, int i, const nb_tensor **index, bool *acc)
{
    if (!(*index = nb__saved(n, 0))) return NULL;
    float *d = nb__grad_dst(n, gx, i, acc);
    if (d && !*acc) memset(d, 0, (size_t)gx[i]->numel * sizeof *d);
    return d;
}

/* ---- index_select and embedding: whole rows picked by a list of indices ------------------ */

/*
 * big is outer blocks of size rows of inner elements; small outer blocks of count rows.
 * small's row k = big's row index[k] (the forward); with add, big's row index[k] += small's
 * row k instead (the backward: repeated indices add up), except for the row skip (embedding's
 * padding; -1 for none).
 */
static void select_rows(float *big, int64_t size, float *small, const float *index, int64_t count,
                        int64_t outer, int64_t inner, bool add, int64_t skip)
{
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t k = 0; k < count; k++) {
            int64_t r = (int64_t)index[k];
            float *b = big + (o * size + r) * inner, *s = small + (o * count + k) * inner;
            if (!add)
                memcpy(s, b, (size_t)inner * sizeof *s);
            else if (r != skip)
                for (int64_t i = 0; i < inner; i++) b[i] += s[i];
        }
    }
}

/* IndexSelectBackward0: the dim, and the blocks around it (index is saved). */
typedef struct index_select_state {
    int dim;
    int64_t size, outer, inner;
} index_select_state;

/* dx = zeros with dy's rows added at their indices */
static nb_status index_select_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const index_select_state *st = nb__state(n);
    const nb_tensor *index;
    bool acc;
    float *d = index_grad_dst(n, gx, 0, &index, &acc);
    if (!d) return nb__last_code();
    if (gy[0]->numel)
        select_rows(d, st->size, nb__data(gy[0]), nb__data(index), index->numel, st->outer,
                    st->inner, true, -1);
    return NB_OK;
}

static const nb_op index_select_op = {"IndexSelectBackward0", index_select_backward, 1,
                                      sizeof(index_select_state), 0};

nb_tensor *nb_index_select(nb_tensor *x, int dim, nb_tensor *index)
{
    static const char fn[] = "nb_index_select";
    if (!x || !index) {
        nb__null(fn, x ? "index" : "x");
        return NULL;
    }
    int d = nb__wrap_dim(dim, x->ndim);
    if (d < 0) {
        int hi = x->ndim > 0 ? x->ndim - 1 : 0;
        nb__dim_error(fn, dim, -hi - 1, hi);
        return NULL;
    }
    if (index->ndim > 1) {
        nb__error(NB_EINVAL, fn, "index must be 0-d or 1-D, got %d dimensions", index->ndim);
        return NULL;
    }
    if (x->ndim == 0 && index->numel != 1) {
        nb__error(NB_EINVAL, fn, "a 0-d input takes an index of one element, got %lld",
                  (long long)index->numel);
        return NULL;
    }
    int64_t size = x->ndim ? x->shape[d] : 1, outer = 1, inner = 1;
    if (check_dim_indices(fn, index, d, size) != NB_OK) return NULL;
    for (int i = 0; i < d; i++) outer = nb__size_mul(outer, x->shape[i]);
    for (int i = d + 1; i < x->ndim; i++) inner = nb__size_mul(inner, x->shape[i]);
    nb_shape s = nb__size(x);
    if (s.ndim) s.dims[d] = index->numel;
    nb_tensor *out = nb__new(fn, s.ndim, s.dims);
    if (out && out->numel)
        select_rows(nb__data(x), size, nb__data(out), nb__data(index), index->numel, outer, inner,
                    false, -1);
    nb_node *node;
    out = nb__finish(fn, &index_select_op, out, 1, &x, &node);
    if (node) {
        *(index_select_state *)nb__state(node) = (index_select_state){d, size, outer, inner};
        if (nb__save(fn, node, 0, index) != NB_OK) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

/* EmbeddingBackward0: the padding row (-1: none); ids are saved. */
typedef struct embedding_state {
    int64_t padding;
} embedding_state;

/* dweight = zeros with dy's rows added at their ids, except the padding row's */
static nb_status embedding_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const embedding_state *st = nb__state(n);
    nb_shape ws = nb__input_shape(n, 0);
    const nb_tensor *ids;
    bool acc;
    float *d = index_grad_dst(n, gx, 0, &ids, &acc);
    if (!d) return nb__last_code();
    if (gy[0]->numel)
        select_rows(d, ws.dims[0], nb__data(gy[0]), nb__data(ids), ids->numel, 1, ws.dims[1], true,
                    st->padding);
    return NB_OK;
}

static const nb_op embedding_op = {"EmbeddingBackward0", embedding_backward, 1,
                                   sizeof(embedding_state), 0};

nb_tensor *nb_embedding(nb_tensor *weight, nb_tensor *ids, int64_t padding_idx)
{
    static const char fn[] = "nb_embedding";
    if (!weight || !ids) {
        nb__null(fn, weight ? "ids" : "weight");
        return NULL;
    }
    if (weight->ndim != 2) {
        char buf[NB__SHAPE_STR];
        nb__error(NB_EINVAL, fn, "weight must be 2-D, got %s",
                  nb__shape_str(buf, weight->ndim, weight->shape));
        return NULL;
    }
    int64_t rows = weight->shape[0], dim = weight->shape[1], pad = -1;
    if (padding_idx != NB_NO_PADDING) {
        if (padding_idx < -rows || padding_idx >= rows) {
            nb__error(NB_EINVAL, fn,
                      "padding_idx %lld must be within num_embeddings (in [%lld, %lld], or "
                      "NB_NO_PADDING)",
                      (long long)padding_idx, (long long)-rows, (long long)rows - 1);
            return NULL;
        }
        pad = padding_idx < 0 ? padding_idx + rows : padding_idx;
    }
    if (ids->ndim >= NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "ids of %d dimensions leave no room for the embedding dimension",
                  ids->ndim);
        return NULL;
    }
    char range[48];
    snprintf(range, sizeof range, "%lld rows", (long long)rows);
    if (check_indices(fn, "id", ids, rows, range) != NB_OK) return NULL;
    int64_t dims[NB_MAX_DIMS];
    memcpy(dims, ids->shape, (size_t)ids->ndim * sizeof *dims);
    dims[ids->ndim] = dim;
    nb_tensor *out = nb__new(fn, ids->ndim + 1, dims);
    if (out && out->numel)
        select_rows(nb__data(weight), rows, nb__data(out), nb__data(ids), ids->numel, 1, dim, false,
                    -1);
    nb_node *node;
    out = nb__finish(fn, &embedding_op, out, 1, &weight, &node);
    if (node) {
        ((embedding_state *)nb__state(node))->padding = pad;
        if (nb__save(fn, node, 0, ids) != NB_OK) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

/* ---- gather and scatter_add: one index per element -------------------------------------- */

/* t's shape, a 0-d tensor counting as [1] (PyTorch's rule for gather and scatter) */
static nb_shape shape_1d(const nb_tensor *t)
{
    nb_shape s = nb__size(t);
    if (s.ndim == 0) s = (nb_shape){1, {1}};
    return s;
}

enum { SG_GATHER, SG_GATHER_ADD, SG_SCATTER_ADD };

/*
 * For every position p of index (shape is): big's element (shape bs) at p with p[dim]
 * replaced by index[p], and small's (shape ss, at least is in every dim) at p. SG_GATHER:
 * small's = big's; SG_GATHER_ADD: small's += big's; SG_SCATTER_ADD: big's += small's.
 */
static void scatter_gather(int mode, float *big, const nb_shape *bs, float *small,
                           const nb_shape *ss, const float *index, const nb_shape *is, int dim)
{
    int nd = is->ndim;
    int64_t numel = 1, bst[NB_MAX_DIMS] = {0}, sst[NB_MAX_DIMS] = {0}, bstride = 1, sstride = 1;
    for (int d = nd - 1; d >= 0; d--) {
        bst[d] = bstride;
        sst[d] = sstride;
        bstride = nb__size_mul(bstride, bs->dims[d]);
        sstride = nb__size_mul(sstride, ss->dims[d]);
        numel = nb__size_mul(numel, is->dims[d]);
    }
    if (numel == 0) return;
    /* along the last dim, big moves with p unless that dim is the one indexed */
    int64_t len = is->dims[nd - 1], step = dim == nd - 1 ? 0 : 1, across = bst[dim];
    int64_t idx[NB_MAX_DIMS] = {0}, bo = 0, so = 0;
    for (int64_t at = 0; at < numel; at += len) {
        const float *ir = index + at;
        float *b = big + bo, *s = small + so;
        switch (mode) {
        case SG_GATHER:
            for (int64_t i = 0; i < len; i++) s[i] = b[i * step + (int64_t)ir[i] * across];
            break;
        case SG_GATHER_ADD:
            for (int64_t i = 0; i < len; i++) s[i] += b[i * step + (int64_t)ir[i] * across];
            break;
        default:
            for (int64_t i = 0; i < len; i++) b[i * step + (int64_t)ir[i] * across] += s[i];
            break;
        }
        for (int d = nd - 2; d >= 0; d--) {
            int64_t bd = d == dim ? 0 : bst[d];
            bo += bd;
            so += sst[d];
            if (++idx[d] < is->dims[d]) break;
            bo -= bd * is->dims[d];
            so -= sst[d] * is->dims[d];
            idx[d] = 0;
        }
    }
}

/* GatherBackward0, ScatterAddBackward0: the dim (index is saved). */
typedef struct scatter_state {
    int dim;
} scatter_state;

/* dx = zeros with dy scattered back to where it was gathered from (indices that repeat add) */
static nb_status gather_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const scatter_state *st = nb__state(n);
    const nb_tensor *index;
    bool acc;
    float *d = index_grad_dst(n, gx, 0, &index, &acc);
    if (!d) return nb__last_code();
    nb_shape xs = shape_1d(gx[0]), is = shape_1d(index);
    scatter_gather(SG_SCATTER_ADD, d, &xs, nb__data(gy[0]), &is, nb__data(index), &is, st->dim);
    return NB_OK;
}

static const nb_op gather_op = {"GatherBackward0", gather_backward, 1, sizeof(scatter_state), 0};

/*
 * PyTorch's shape rule of gather and scatter, checked only when index has elements: index has
 * x's number of dims (a 0-d tensor counting as 1-D), and no dim of it is larger than x's,
 * except dim d, nor (scatter) larger than src's.
 */
static nb_status check_scatter_shapes(const char *fn, const nb_tensor *x, int d,
                                      const nb_tensor *index, const nb_tensor *src)
{
    nb_shape xs = shape_1d(x), is = shape_1d(index);
    if (xs.ndim != is.ndim)
        return nb__error(NB_ESHAPE, fn,
                         "index tensor must have the same number of dimensions as %s tensor (%d "
                         "and %d)",
                         src ? "self" : "input", is.ndim, xs.ndim);
    nb_shape ss = src ? shape_1d(src) : is;
    if (ss.ndim != is.ndim)
        return nb__error(NB_ESHAPE, fn,
                         "index tensor must have the same number of dimensions as src tensor (%d "
                         "and %d)",
                         is.ndim, ss.ndim);
    bool bad = false;
    for (int k = 0; k < is.ndim; k++)
        if ((k != d && is.dims[k] > xs.dims[k]) || is.dims[k] > ss.dims[k]) bad = true;
    if (!bad) return NB_OK;
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR], c[NB__SHAPE_STR];
    nb__shape_str(a, index->ndim, index->shape);
    nb__shape_str(b, x->ndim, x->shape);
    if (!src)
        return nb__error(NB_ESHAPE, fn,
                         "expected index %s to be smaller than self %s apart from dimension %d", a,
                         b, d);
    return nb__error(NB_ESHAPE, fn,
                     "expected index %s to be smaller than self %s apart from dimension %d and to "
                     "be smaller than src %s",
                     a, b, d, nb__shape_str(c, src->ndim, src->shape));
}

/* x's dim, wrapped (a 0-d x takes 0 and -1), or -1 with the error for fn */
static int index_dim(const char *fn, const nb_tensor *x, int dim)
{
    int d = nb__wrap_dim(dim, x->ndim);
    if (d < 0) {
        int hi = x->ndim > 0 ? x->ndim - 1 : 0;
        nb__dim_error(fn, dim, -hi - 1, hi);
    }
    return d;
}

nb_tensor *nb_gather(nb_tensor *x, int dim, nb_tensor *index)
{
    static const char fn[] = "nb_gather";
    if (!x || !index) {
        nb__null(fn, x ? "index" : "x");
        return NULL;
    }
    int d = index_dim(fn, x, dim);
    if (d < 0) return NULL;
    nb_shape xs = shape_1d(x), is = shape_1d(index);
    if (index->numel && (check_scatter_shapes(fn, x, d, index, NULL) != NB_OK ||
                         check_dim_indices(fn, index, d, xs.dims[d]) != NB_OK))
        return NULL;
    nb_tensor *out = nb__new(fn, index->ndim, index->shape);
    if (out)
        scatter_gather(SG_GATHER, nb__data(x), &xs, nb__data(out), &is, nb__data(index), &is, d);
    nb_node *node;
    out = nb__finish(fn, &gather_op, out, 1, &x, &node);
    if (node) {
        ((scatter_state *)nb__state(node))->dim = d;
        if (nb__save(fn, node, 0, index) != NB_OK) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

/*
 * dx = dy; dsrc = dy gathered where src was added (PyTorch's grad.gather(dim, index)), zeros
 * where src is larger than index (PyTorch's backward fails there)
 */
static nb_status scatter_add_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const scatter_state *st = nb__state(n);
    if (nb__needs_grad(n, 0)) {
        nb_status rc = nb__grad_sum(n, gx, 0, gy[0], 1.0f);
        if (rc != NB_OK) return rc;
    }
    if (!nb__needs_grad(n, 1)) return NB_OK;
    const nb_tensor *index;
    bool acc;
    float *d = index_grad_dst(n, gx, 1, &index, &acc);
    if (!d) return nb__last_code();
    nb_shape ys = shape_1d(gy[0]), ss = shape_1d(gx[1]), is = shape_1d(index);
    scatter_gather(acc ? SG_GATHER_ADD : SG_GATHER, nb__data(gy[0]), &ys, d, &ss, nb__data(index),
                   &is, st->dim);
    return NB_OK;
}

static const nb_op scatter_add_op = {"ScatterAddBackward0", scatter_add_backward, 1,
                                     sizeof(scatter_state), 0};

nb_tensor *nb_scatter_add(nb_tensor *x, int dim, nb_tensor *index, nb_tensor *src)
{
    static const char fn[] = "nb_scatter_add";
    if (!x || !index || !src) {
        nb__null(fn, !x ? "x" : !index ? "index" : "src");
        return NULL;
    }
    int d = index_dim(fn, x, dim);
    if (d < 0) return NULL;
    nb_shape xs = shape_1d(x), is = shape_1d(index), ss = shape_1d(src);
    if (index->numel && (check_scatter_shapes(fn, x, d, index, src) != NB_OK ||
                         check_dim_indices(fn, index, d, xs.dims[d]) != NB_OK))
        return NULL;
    nb_shape s = nb__size(x);
    nb_tensor *out = nb__new(fn, s.ndim, s.dims);
    if (out && out->numel) {
        memcpy(nb__data(out), nb__data(x), (size_t)x->numel * sizeof(float));
        scatter_gather(SG_SCATTER_ADD, nb__data(out), &xs, nb__data(src), &ss, nb__data(index), &is,
                       d);
    }
    nb_node *node;
    nb_tensor *in[2] = {x, src};
    out = nb__finish(fn, &scatter_add_op, out, 2, in, &node);
    if (node) {
        ((scatter_state *)nb__state(node))->dim = d;
        if (nb__needs_grad(node, 1) && nb__save(fn, node, 0, index) != NB_OK) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}
