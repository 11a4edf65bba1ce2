/* Reductions: sum and mean, over everything or over dims. */
#include <string.h>

#include "ops/internal.h"

/* node->iarg: [0] = number of elements reduced per output (for mean), [1] = 1 for mean */

/* gx = gy broadcast back over the reduced dims (÷ count for mean). */
static nb_status reduce_backward(nb_node *n, nb_tensor *gy, nb_tensor **gx)
{
    /* with keepdim off the reduced dims are gone: view gy with them as size 1 */
    nb_shape kept = n->input_shape[0];
    for (int i = 0; i < kept.ndim; i++)
        if (n->iarg[2] & (1 << i)) kept.dims[i] = 1;
    nb_tensor *g = nb__new_view("nb_backward", gy->storage, gy->offset, kept.ndim, kept.dims);
    if (!g) return nb__last_code();
    gx[0] = nb__expand(g, &n->input_shape[0]);
    nb__release(g);
    if (!gx[0]) return nb__last_code();
    if (n->iarg[1]) {
        float count = (float)n->iarg[0];
        float *d = nb__data(gx[0]);
        for (int64_t i = 0; i < gx[0]->numel; i++) d[i] /= count;
    }
    return NB_OK;
}

/*
 * The sum of x[0..n-1] in double, in 8 independent partial sums that the compiler can keep
 * in vector registers: a single running sum would wait on each add's latency.
 */
static double sum_contiguous(const float *x, int64_t n)
{
    double s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)x[i + j];
    double tail = 0.0;
    for (; i < n; i++) tail += (double)x[i];
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

static const nb_op sum_all_op = {"SumBackward0", reduce_backward};
static const nb_op sum_dims_op = {"SumBackward1", reduce_backward};
static const nb_op mean_all_op = {"MeanBackward0", reduce_backward};
static const nb_op mean_dims_op = {"MeanBackward1", reduce_backward};

static nb_tensor *reduce(const char *fn, bool mean, nb_tensor *x, const int *dims, int ndims,
                         bool keepdim)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    if (ndims < 0 || (ndims > 0 && !dims)) {
        nb__error(NB_EINVAL, fn, "invalid dims (%d of them, %s)", ndims, dims ? "given" : "NULL");
        return NULL;
    }
    bool all = ndims == 0;
    unsigned mask = 0;
    for (int i = 0; i < ndims; i++) {
        int d = nb__wrap_dim(dims[i], x->ndim);
        if (d < 0) {
            int hi = x->ndim > 0 ? x->ndim - 1 : 0;
            nb__dim_error(fn, dims[i], -hi - 1, hi);
            return NULL;
        }
        if (mask & (1u << d)) {
            nb__error(NB_EINVAL, fn, "dim %d appears multiple times in the list of dims", d);
            return NULL;
        }
        mask |= 1u << d;
    }
    if (all) mask = (1u << x->ndim) - 1u;
    nb_shape in = nb_tensor_size(x), kept = in, out = {0, {0}};
    int64_t count = 1;
    for (int i = 0; i < in.ndim; i++) {
        if (mask & (1u << i)) {
            count *= in.dims[i];
            kept.dims[i] = 1;
            if (keepdim && !all) out.dims[out.ndim++] = 1;
        } else {
            out.dims[out.ndim++] = in.dims[i];
        }
    }
    nb_tensor *res;
    if (all) { /* over every element: one contiguous pass, no index walk */
        res = nb__new(fn, 0, NULL);
        if (!res) return NULL;
        nb__data(res)[0] = (float)sum_contiguous(nb__data(x), x->numel);
    } else {
        nb_tensor *r = nb__sum_to(x, &kept);
        if (!r) return NULL;
        res = nb__new_view(fn, r->storage, r->offset, out.ndim, out.dims);
        nb__drop(r);
        if (!res) return NULL;
    }
    if (mean) {
        float *d = nb__data(res);
        for (int64_t i = 0; i < res->numel; i++) d[i] /= (float)count;
    }
    const nb_op *op =
        mean ? (all ? &mean_all_op : &mean_dims_op) : (all ? &sum_all_op : &sum_dims_op);
    nb_node *n;
    res = nb__finish(fn, op, res, 1, &x, &n);
    if (n) {
        n->iarg[0] = count;
        n->iarg[1] = mean;
        n->iarg[2] = (int64_t)mask;
    }
    return res;
}

nb_tensor *nb_sum(nb_tensor *x, const int *dims, int ndims, bool keepdim)
{
    return reduce("nb_sum", false, x, dims, ndims, keepdim);
}

nb_tensor *nb_mean(nb_tensor *x, const int *dims, int ndims, bool keepdim)
{
    return reduce("nb_mean", true, x, dims, ndims, keepdim);
}
