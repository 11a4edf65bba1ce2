/* Reductions: sum and mean, over every element or over a list of dims. */
#include <string.h>

#include "ops/internal.h"

/* SumBackward* and MeanBackward*: which dims were reduced and over how many elements. */
typedef struct reduce_state {
    unsigned mask; /* bit d: dim d of the input was reduced */
    float count;   /* elements reduced into each output (mean divides by it) */
    bool mean;
} reduce_state;

/* The input's shape with the reduced dims kept as size 1. */
static nb_shape kept_shape(nb_shape s, unsigned mask)
{
    for (int i = 0; i < s.ndim; i++)
        if (mask & (1u << i)) s.dims[i] = 1;
    return s;
}

NB__EW_KERNEL(copy_k, V0)
NB__EW_KERNEL(div_k, V0 / k[0])

/* dx = g broadcast back over the reduced dims (÷ count for mean) */
static nb_status reduce_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const reduce_state *st = nb__state(n);
    nb_shape in = nb__input_shape(n, 0), kept = kept_shape(in, st->mask);
    bool acc;
    float *dst = nb__grad_dst(n, gx, 0, &acc);
    if (!dst) return NB_ENOMEM;
    nb__ew_apply(st->mean ? div_k : copy_k, &st->count, dst, acc, &in, 1,
                 &(nb__operand){nb__data(gy[0]), &kept});
    return NB_OK;
}

static const nb_op sum_all_op = {"SumBackward0", reduce_backward, 0, sizeof(reduce_state), 0};
static const nb_op sum_dims_op = {"SumBackward1", reduce_backward, 0, sizeof(reduce_state), 0};
static const nb_op mean_all_op = {"MeanBackward0", reduce_backward, 0, sizeof(reduce_state), 0};
static const nb_op mean_dims_op = {"MeanBackward1", reduce_backward, 0, sizeof(reduce_state), 0};

static nb_tensor *reduce(const char *fn, bool mean, nb_tensor *x, nb_dims dims, bool keepdim)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    unsigned mask;
    if (nb__dims_mask(fn, dims, x->ndim, &mask) != NB_OK) return NULL;
    bool all = dims.n == NB__DIMS_ALL_N;
    nb_shape in = nb__size(x), kept = kept_shape(in, mask), out = {0, {0}};
    /* a reduced size 0 makes the count 0; otherwise the product is at most numel */
    int64_t count = 1;
    for (int i = 0; i < in.ndim; i++) {
        if (mask & (1u << i)) {
            if (in.dims[i] == 0 || count == 0)
                count = 0;
            else
                count *= in.dims[i];
        }
        if (!(mask & (1u << i)) || (keepdim && !all)) out.dims[out.ndim++] = kept.dims[i];
    }
    nb_tensor *res = nb__new(fn, out.ndim, out.dims);
    if (!res) return NULL;
    float *r = nb__data(res);
    if (all) /* over every element: one contiguous pass, no index walk */
        r[0] = (float)nb__sum_contiguous(nb__data(x), x->numel);
    else
        nb__sum_to(r, &kept, false, nb__data(x), &in, 1.0f);
    if (mean)
        for (int64_t i = 0; i < res->numel; i++) r[i] /= (float)count;
    const nb_op *op =
        mean ? (all ? &mean_all_op : &mean_dims_op) : (all ? &sum_all_op : &sum_dims_op);
    nb_node *n;
    res = nb__finish(fn, op, res, 1, &x, &n);
    if (n) *(reduce_state *)nb__state(n) = (reduce_state){mask, (float)count, mean};
    return res;
}

nb_tensor *nb_sum(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return reduce("nb_sum", false, x, dims, keepdim);
}

nb_tensor *nb_mean(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return reduce("nb_mean", true, x, dims, keepdim);
}
