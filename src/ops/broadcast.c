/* Broadcasting, written once: the shape rule, the strided loop, and its two adjoints. */
#include <string.h>

#include "ops/internal.h"

nb_status nb__broadcast_shape(const char *fn, const nb_shape *a, const nb_shape *b, nb_shape *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[NB__SHAPE_STR], sb[NB__SHAPE_STR];
            return nb__error(NB_ESHAPE, fn,
                             "shapes %s and %s cannot be broadcast (%lld != %lld at dimension %d)",
                             nb__shape_str(sa, a->ndim, a->dims),
                             nb__shape_str(sb, b->ndim, b->dims), (long long)da, (long long)db, i);
        }
        out->dims[i] = da == 1 ? db : da;
    }
    return NB_OK;
}

void nb__broadcast_strides(const nb_shape *small, const nb_shape *big, int64_t *strides)
{
    int64_t acc = 1;
    for (int i = big->ndim - 1; i >= 0; i--) {
        int j = i - (big->ndim - small->ndim);
        int64_t d = j >= 0 ? small->dims[j] : 1;
        strides[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
}

static void kernel(nb__binop op, const float *a, int64_t sa, const float *b, int64_t sb, float *o,
                   int64_t n)
{
    switch (op) {
    case NB__ADD:
        for (int64_t i = 0; i < n; i++) o[i] = a[i * sa] + b[i * sb];
        break;
    case NB__SUB:
        for (int64_t i = 0; i < n; i++) o[i] = a[i * sa] - b[i * sb];
        break;
    case NB__MUL:
        for (int64_t i = 0; i < n; i++) o[i] = a[i * sa] * b[i * sb];
        break;
    case NB__DIV:
        for (int64_t i = 0; i < n; i++) o[i] = a[i * sa] / b[i * sb];
        break;
    }
}

/*
 * out[k] = a[..] op b[..] over out's shape, reading a and b through broadcast strides. The
 * last dim is the inner loop; the others advance like an odometer.
 */
static void broadcast_apply(nb__binop op, const nb_tensor *a, const nb_tensor *b, float *out,
                            const nb_shape *shape, int64_t numel)
{
    const float *pa = nb__data(a), *pb = nb__data(b);
    if (nb__same_shape(a, b) && a->ndim == shape->ndim) {
        kernel(op, pa, 1, pb, 1, out, numel);
        return;
    }
    nb_shape as = nb_tensor_size(a), bs = nb_tensor_size(b);
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS], idx[NB_MAX_DIMS] = {0};
    nb__broadcast_strides(&as, shape, sa);
    nb__broadcast_strides(&bs, shape, sb);
    int nd = shape->ndim;
    if (nd == 0) {
        kernel(op, pa, 0, pb, 0, out, numel);
        return;
    }
    int64_t inner = shape->dims[nd - 1];
    if (inner == 0) return;
    int64_t oa = 0, ob = 0;
    for (int64_t k = 0; k < numel; k += inner) {
        kernel(op, pa + oa, sa[nd - 1], pb + ob, sb[nd - 1], out + k, inner);
        for (int i = nd - 2; i >= 0; i--) {
            oa += sa[i];
            ob += sb[i];
            if (++idx[i] < shape->dims[i]) break;
            oa -= sa[i] * shape->dims[i];
            ob -= sb[i] * shape->dims[i];
            idx[i] = 0;
        }
    }
}

nb_tensor *nb__binary(const char *fn, nb__binop op, const nb_tensor *a, const nb_tensor *b)
{
    if (nb__same_shape(a, b)) { /* nothing to broadcast: skip the shape arithmetic */
        nb_tensor *out = nb__new(fn, a->ndim, a->shape);
        if (out) kernel(op, nb__data(a), 1, nb__data(b), 1, nb__data(out), out->numel);
        return out;
    }
    nb_shape as = nb_tensor_size(a), bs = nb_tensor_size(b), os;
    if (nb__broadcast_shape(fn, &as, &bs, &os) != NB_OK) return NULL;
    nb_tensor *out = nb__new(fn, os.ndim, os.dims);
    if (out) broadcast_apply(op, a, b, nb__data(out), &os, out->numel);
    return out;
}

nb_status nb__binary_inplace(const char *fn, nb__binop op, nb_tensor *a, const nb_tensor *b)
{
    nb_shape as = nb_tensor_size(a), bs = nb_tensor_size(b), os;
    nb_status st = nb__broadcast_shape(fn, &as, &bs, &os);
    if (st != NB_OK) return st;
    if (os.ndim != as.ndim || memcmp(os.dims, as.dims, sizeof(int64_t) * (size_t)as.ndim)) {
        char sa[NB__SHAPE_STR], sb[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn, "output with shape %s doesn't match the broadcast shape %s",
                         nb__shape_str(sa, as.ndim, as.dims), nb__shape_str(sb, os.ndim, os.dims));
    }
    /* reading a while writing it is safe: each element is read once, before its write */
    broadcast_apply(op, a, b, nb__data(a), &os, a->numel);
    a->storage->version++;
    return NB_OK;
}

/* Walk big's elements; call back with (big offset, small offset). Shared by the adjoints. */
#define WALK_BROADCAST(small_shape, big_shape, BODY)                                               \
    do {                                                                                           \
        int64_t st_[NB_MAX_DIMS], ix_[NB_MAX_DIMS] = {0}, so_ = 0;                                 \
        nb__broadcast_strides((small_shape), (big_shape), st_);                                    \
        int nd_ = (big_shape)->ndim;                                                               \
        int64_t n_ = 1;                                                                            \
        for (int i_ = 0; i_ < nd_; i_++) n_ *= (big_shape)->dims[i_];                              \
        for (int64_t bo_ = 0; bo_ < n_; bo_++) {                                                   \
            BODY;                                                                                  \
            for (int i_ = nd_ - 1; i_ >= 0; i_--) {                                                \
                so_ += st_[i_];                                                                    \
                if (++ix_[i_] < (big_shape)->dims[i_]) break;                                      \
                so_ -= st_[i_] * (big_shape)->dims[i_];                                            \
                ix_[i_] = 0;                                                                       \
            }                                                                                      \
        }                                                                                          \
    } while (0)

nb_tensor *nb__sum_to(const nb_tensor *g, const nb_shape *shape)
{
    static const char fn[] = "nb_sum_to";
    nb_shape gs = nb_tensor_size(g);
    if (gs.ndim == shape->ndim &&
        !memcmp(gs.dims, shape->dims, sizeof(int64_t) * (size_t)shape->ndim))
        return nb_clone(g);
    nb_tensor *out = nb__new(fn, shape->ndim, shape->dims);
    if (!out) return NULL;
    /* accumulate in double: these sums can run over a whole batch */
    double *acc = nb__calloc((size_t)(out->numel ? out->numel : 1) * sizeof(double));
    if (!acc) {
        nb__drop(out);
        nb__oom(fn);
        return NULL;
    }
    const float *src = nb__data(g);
    WALK_BROADCAST(shape, &gs, acc[so_] += (double)src[bo_]);
    float *dst = nb__data(out);
    for (int64_t i = 0; i < out->numel; i++) dst[i] = (float)acc[i];
    nb__free(acc);
    return out;
}

nb_tensor *nb__expand(const nb_tensor *g, const nb_shape *shape)
{
    nb_tensor *out = nb__new("nb_expand", shape->ndim, shape->dims);
    if (!out) return NULL;
    const float *src = nb__data(g);
    float *dst = nb__data(out);
    if (g->numel == 1) { /* one value everywhere (the backward of a full sum or mean) */
        float v = src[0];
        for (int64_t i = 0; i < out->numel; i++) dst[i] = v;
    } else if (g->numel == out->numel) { /* nothing is broadcast: the same elements */
        memcpy(dst, src, (size_t)out->numel * sizeof *dst);
    } else {
        nb_shape gs = nb_tensor_size(g);
        WALK_BROADCAST(&gs, shape, dst[bo_] = src[so_]);
    }
    return out;
}

nb_tensor *nb__finish(const char *fn, const nb_op *op, nb_tensor *out, int n,
                      nb_tensor *const *inputs, nb_node **node)
{
    *node = NULL;
    if (!out) return NULL;
    if (nb__record(fn, op, out, n, inputs, node) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    return out;
}
