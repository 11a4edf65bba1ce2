/*
 * Reductions over every element or over dims: sum, mean, max/min (with indices), amax/amin,
 * argmax/argmin, var/std, logsumexp, prod and norm.
 *
 * A forward reads x as rows, each the elements that reduce into one output (as_rows), and
 * computes one value per row. Most backwards are elementwise: the output, its gradient and
 * the per-output counts, seen with the reduced dims kept as size 1, broadcast against x
 * through the elementwise loop. max along a dim and prod (whose gradient walks each slice)
 * read x in place as [outer, size, inner] slices.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

/* Indices come back as float32, whose integers are exact up to 2^24. */
#define INDEX_MAX 16777216

/* ---- the shape of a reduction ------------------------------------------------------------ */

/* The input's shape with the reduced dims kept as size 1. */
static nb_shape kept_shape(nb_shape s, unsigned mask)
{
    for (int i = 0; i < s.ndim; i++)
        if (mask & (1u << i)) s.dims[i] = 1;
    return s;
}

/* a·b for sizes whose product may not fit: INT64_MAX stands for "too many" (the element count
 * of a shape with a 0 in it can be 0 while the other sizes multiply past int64). */
static int64_t mul_sat(int64_t a, int64_t b)
{
    if (a == 0 || b == 0) return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

/* A reduction of x over the dims in mask. */
typedef struct red {
    unsigned mask;
    nb_shape in, kept, out; /* x's shape; with the reduced dims as 1; the result's */
    int64_t rows, n;        /* outputs, and the elements reduced into each */
} red;

static red red_of(const nb_tensor *x, unsigned mask, bool keepdim)
{
    red r = {mask, nb__size(x), kept_shape(nb__size(x), mask), {0, {0}}, 1, 1};
    for (int i = 0; i < r.in.ndim; i++) {
        bool reduced = mask & (1u << i);
        if (reduced)
            r.n = mul_sat(r.n, r.in.dims[i]);
        else
            r.rows = mul_sat(r.rows, r.in.dims[i]);
        if (!reduced || keepdim) r.out.dims[r.out.ndim++] = r.kept.dims[i];
    }
    return r;
}

/* The NULL check and the dims of every reduction over a dims list. */
static nb_status red_begin(const char *fn, const nb_tensor *x, nb_dims dims, bool keepdim, red *r)
{
    if (!x) return nb__null(fn, "x");
    unsigned mask;
    nb_status rc = nb__dims_mask(fn, dims, x->ndim, &mask);
    if (rc == NB_OK) *r = red_of(x, mask, keepdim);
    return rc;
}

/* The one dim of max_dim, prod_dim and argmax (wrapped), or the error for fn. */
static nb_status one_dim(const char *fn, const nb_tensor *x, int dim, int *d)
{
    if (!x) return nb__null(fn, "x");
    *d = nb__wrap_dim(dim, x->ndim);
    int hi = x->ndim > 0 ? x->ndim - 1 : 0;
    if (*d < 0) return nb__dim_error(fn, dim, -hi - 1, hi);
    return NB_OK;
}

static unsigned dim_mask(const nb_tensor *x, int d)
{
    return x->ndim ? 1u << d : 0u;
}

/* Selecting reductions have no value for an empty slice: PyTorch's error. */
static nb_status check_nonempty(const char *fn, const red *r)
{
    for (int i = 0; i < r->in.ndim; i++)
        if ((r->mask & (1u << i)) && r->in.dims[i] == 0)
            return nb__error(NB_EINVAL, fn, "expected reduction dim %d to have non-zero size", i);
    return NB_OK;
}

/* Indices are float32: a slice longer than 2^24 would give some of them inexactly. */
static nb_status check_index_range(const char *fn, int64_t n)
{
    if (n <= INDEX_MAX) return NB_OK;
    return nb__error(NB_ERANGE, fn,
                     "a reduction over %lld elements has indices beyond 2^24, which float32 "
                     "cannot hold exactly",
                     (long long)n);
}

/* x seen as [outer, reduced, inner], for a mask of adjacent dims. */
static void outer_inner(const nb_shape *s, unsigned mask, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    bool after = false;
    for (int i = 0; i < s->ndim; i++) {
        if (mask & (1u << i))
            after = true;
        else if (after)
            *inner = nb__size_mul(*inner, s->dims[i]);
        else
            *outer = nb__size_mul(*outer, s->dims[i]);
    }
}

/*
 * x's elements as r->rows rows of r->n, each the elements of one output in x's order: x's own
 * data when no kept dim (of size > 1) comes after a reduced one, else a copy with the kept dims
 * first and the reduced dims last, left in *copy for the caller to drop.
 */
static const float *as_rows(const char *fn, const nb_tensor *x, const red *r, nb_tensor **copy)
{
    *copy = NULL;
    const nb_shape *s = &r->in;
    bool seen_reduced = false, in_place = true;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] == 1) continue;
        if (r->mask & (1u << i))
            seen_reduced = true;
        else if (seen_reduced)
            in_place = false;
    }
    if (in_place || x->numel == 0) return nb__data(x);
    int64_t stride[NB_MAX_DIMS], dims[NB_MAX_DIMS], st[NB_MAX_DIMS];
    int64_t step = 1;
    for (int i = s->ndim - 1; i >= 0; i--) {
        stride[i] = step;
        step *= s->dims[i];
    }
    int nd = 0;
    for (int reduced = 0; reduced < 2; reduced++)
        for (int i = 0; i < s->ndim; i++)
            if (!!(r->mask & (1u << i)) == reduced) {
                dims[nd] = s->dims[i];
                st[nd++] = stride[i];
            }
    if (!(*copy = nb__new(fn, 1, &x->numel))) return NULL;
    float *o = nb__data(*copy);
    const float *src = nb__data(x);
    int64_t idx[NB_MAX_DIMS] = {0}, off = 0, inner = dims[nd - 1], ist = st[nd - 1];
    for (int64_t at = 0; at < x->numel; at += inner) {
        for (int64_t i = 0; i < inner; i++) o[at + i] = src[off + i * ist];
        for (int d = nd - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < dims[d]) break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    return o;
}

/* A row kernel: o[r] = f(x[r·n .. r·n + n − 1]) for r < rows, with the op's parameter. */
typedef void (*row_fn)(float *o, const float *x, int64_t rows, int64_t n, double param);

/* f over rows of x */
typedef struct rows_job {
    row_fn f;
    float *o;
    const float *x;
    int64_t n;
    double param;
} rows_job;

/* rows [r0, r1) */
static void rows_range(void *ctx, int64_t r0, int64_t r1)
{
    const rows_job *j = ctx;
    j->f(j->o + r0, j->x + r0 * j->n, r1 - r0, j->n, j->param);
}

/*
 * The result of r's shape with one value per row of x. Each row's value is its own row's
 * alone, so rows of NB__PARALLEL_MIN elements or more in all go to the pool in tasks of whole
 * rows, about NB__TASK_ELEMS elements each: the same bits at any thread count.
 */
static nb_tensor *run_rows(const char *fn, const nb_tensor *x, const red *r, row_fn f, double param)
{
    nb_tensor *out = nb__new(fn, r->out.ndim, r->out.dims), *copy;
    if (!out || out->numel == 0) return out;
    const float *rows = as_rows(fn, x, r, &copy);
    if (!rows) {
        nb__drop(out);
        return NULL;
    }
    rows_job j = {f, nb__data(out), rows, r->n, param};
    nb__split(r->rows, r->n, rows_range, &j);
    nb__drop(copy);
    return out;
}

/* ---- nodes ----------------------------------------------------------------------------- */

/* The state of every reduction's node. Saved: x in slot 0 and the output (or max's indices)
 * in slot 1, each only where the backward reads it. */
typedef struct reduce_state {
    unsigned mask; /* bit d: dim d of the input was reduced */
    float count;   /* elements reduced into each output, as mean and var divide by it */
    bool mean;     /* sum and mean share a backward */
    bool all;      /* prod over every element (ProdBackward0); var with NB_DIMS_ALL */
    int dim;       /* the dim of max/min along a dim */
    int64_t n;     /* elements reduced into each output */
    double param;  /* var/std: the correction; norm: p */
} reduce_state;

enum { SLOT_X, SLOT_Y };

/*
 * Record op for out (made from x) and save what its backward reads: x when save_x, and y
 * (out itself, or max's indices) when not NULL. NULL (out dropped) on error.
 */
static nb_tensor *record(const char *fn, const nb_op *op, nb_tensor *x, nb_tensor *out, bool save_x,
                         nb_tensor *y, reduce_state st)
{
    nb_node *n;
    out = nb__finish(fn, op, out, 1, &x, &n);
    if (!n) return out;
    *(reduce_state *)nb__state(n) = st;
    if ((save_x && nb__save(fn, n, SLOT_X, x) != NB_OK) ||
        (y && nb__save(fn, n, SLOT_Y, y) != NB_OK)) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

/* Where a reduction's backward starts: what it read, the shapes, the destination of dx. */
typedef struct grad_ctx {
    nb_tensor *x, *y;  /* saved: the input, and the output or indices (NULL when not read) */
    nb_shape in, kept; /* x's shape, and with the reduced dims as 1 (how g and y broadcast) */
    float *dst;        /* where dx goes: added into when acc */
    bool acc;
} grad_ctx;

static nb_status grad_begin(nb_node *n, nb_tensor **gx, bool read_x, bool read_y, grad_ctx *c)
{
    *c = (grad_ctx){0};
    if (read_x && !(c->x = nb__saved(n, SLOT_X))) return nb__last_code();
    if (read_y && !(c->y = nb__saved(n, SLOT_Y))) return nb__last_code();
    c->in = nb__input_shape(n, 0);
    c->kept = kept_shape(c->in, ((const reduce_state *)nb__state(n))->mask);
    c->dst = nb__grad_dst(n, gx, 0, &c->acc);
    return c->dst ? NB_OK : NB_ENOMEM;
}

/*
 * dx (+)= f elementwise over x's shape, f reading V0 = g, V1 = x, V2 = a (one value per
 * output, such as a count or a mean; may be NULL) and V3 = y, all but x seen with kept dims.
 */
static void grad_apply(const grad_ctx *c, nb__ew_fn f, const float *k, const nb_tensor *g,
                       const float *a)
{
    nb__ew_apply(f, k, c->dst, c->acc, &c->in, 4,
                 (nb__operand[]){{nb__data(g), &c->kept},
                                 {c->x ? nb__data(c->x) : NULL, &c->in},
                                 {a, &c->kept},
                                 {c->y ? nb__data(c->y) : NULL, &c->kept}});
}

/*
 * dx (+)= f where each output's gradient is shared among the elements that pick(x, y) marks
 * (amax's ties, the inf-norm's extremes): f reads the count of those in its slice as V2.
 */
static nb_status shared_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx, nb__ew_fn pick,
                                 nb__ew_fn f)
{
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, true, &c);
    if (rc != NB_OK) return rc;
    const char *fn = nb__engine_fn();
    nb_tensor *mask = nb__new(fn, c.in.ndim, c.in.dims);
    nb_tensor *count = mask ? nb__new(fn, c.kept.ndim, c.kept.dims) : NULL;
    if (count) {
        nb__ew_apply(pick, NULL, nb__data(mask), false, &c.in, 4,
                     (nb__operand[]){{NULL, &c.kept},
                                     {nb__data(c.x), &c.in},
                                     {NULL, &c.kept},
                                     {nb__data(c.y), &c.kept}});
        nb__sum_to(nb__data(count), &c.kept, false, nb__data(mask), &c.in, 1.0f);
        grad_apply(&c, f, NULL, gy[0], nb__data(count));
    }
    nb__drop(mask);
    nb__drop(count);
    return count ? NB_OK : NB_ENOMEM;
}

/* ---- sum, mean ------------------------------------------------------------------------- */

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
    red r;
    bool all = dims.n == NB__DIMS_ALL_N; /* 0-d whatever keepdim */
    if (red_begin(fn, x, dims, keepdim && !all, &r) != NB_OK) return NULL;
    nb_tensor *res = nb__new(fn, r.out.ndim, r.out.dims);
    if (!res) return NULL;
    float *o = nb__data(res);
    nb__sum_to(o, &r.kept, false, nb__data(x), &r.in, 1.0f); /* into one value: in double */
    /* where nothing was added (dims of size 1) the values were copied: a sum is never -0, as
     * PyTorch's, whose accumulator starts at +0 (every other path starts from +0 itself) */
    if (r.n == 1)
        for (int64_t i = 0; i < res->numel; i++) o[i] += 0.0f;
    if (mean)
        for (int64_t i = 0; i < res->numel; i++) o[i] /= (float)r.n;
    const nb_op *op =
        mean ? (all ? &mean_all_op : &mean_dims_op) : (all ? &sum_all_op : &sum_dims_op);
    return record(fn, op, x, res, false, NULL,
                  (reduce_state){.mask = r.mask, .count = (float)r.n, .mean = mean});
}

nb_tensor *nb_sum(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return reduce("nb_sum", false, x, dims, keepdim);
}

nb_tensor *nb_mean(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return reduce("nb_mean", true, x, dims, keepdim);
}

/* ---- amax, amin, and max, min over every element ---------------------------------------- */

/*
 * The largest (smallest with min) of each row, NaN when the row holds one; among equal values
 * (0 and -0) the first, as PyTorch's amax keeps it. Rows of 32 and more take the lanes
 * (nb__lane_extreme), whose answer is the loop's unless the row holds a NaN or the extreme is
 * a zero (of either sign): equal nonzero floats have the same bits.
 */
NB__CLONES static void extreme_rows(float *o, const float *x, int64_t rows, int64_t n, double min)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x + r * n;
        bool nan = true;
        float m = 0.0f;
        if (n >= 32)
            m = min != 0.0 ? nb__lane_extreme(v, n, true, &nan)
                           : nb__lane_extreme(v, n, false, &nan);
        if (!nan && m != 0.0f) {
            o[r] = m;
            continue;
        }
        m = v[0];
        if (min != 0.0)
            for (int64_t i = 1; i < n; i++) m = (v[i] < m || v[i] != v[i]) ? v[i] : m;
        else
            for (int64_t i = 1; i < n; i++) m = (v[i] > m || v[i] != v[i]) ? v[i] : m;
        o[r] = m;
    }
}

/* 1 where x is the slice's extreme y (V1 x, V3 y) */
NB__EW_KERNEL(pick_eq_k, V1 == V3 ? 1.0f : 0.0f)
/* dx = (g / count)·[x = y], as PyTorch's scale_grad_by_count */
NB__EW_KERNEL(share_k, V0 / V2 * (V1 == V3 ? 1.0f : 0.0f))

/*
 * AmaxBackward0 / AminBackward0: dx = (g / count)·[x = y], count the elements equal to the
 * slice's y, so ties share the gradient evenly. A NaN y matches nothing: its slice gets
 * (g / 0)·0 = NaN, as in PyTorch.
 */
static nb_status amax_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    return shared_backward(n, gy, gx, pick_eq_k, share_k);
}

static const nb_op amax_op = {"AmaxBackward0", amax_backward, 2, sizeof(reduce_state), 0};
static const nb_op amin_op = {"AminBackward0", amax_backward, 2, sizeof(reduce_state), 0};

static nb_tensor *amax(const char *fn, const nb_op *op, nb_tensor *x, nb_dims dims, bool keepdim,
                       bool min)
{
    red r;
    if (red_begin(fn, x, dims, keepdim, &r) != NB_OK || check_nonempty(fn, &r) != NB_OK)
        return NULL;
    nb_tensor *y = run_rows(fn, x, &r, extreme_rows, min ? 1.0 : 0.0);
    return record(fn, op, x, y, true, y, (reduce_state){.mask = r.mask});
}

nb_tensor *nb_amax(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return amax("nb_amax", &amax_op, x, dims, keepdim, false);
}

nb_tensor *nb_amin(nb_tensor *x, nb_dims dims, bool keepdim)
{
    return amax("nb_amin", &amin_op, x, dims, keepdim, true);
}

/*
 * MaxBackward1 / MinBackward1 (over every element): PyTorch's evenly_distribute_backward.
 * The elements equal to y (or, when y is NaN, the NaNs) share g evenly; the others get 0.
 */
static nb_status max_all_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, true, &c);
    if (rc != NB_OK) return rc;
    const float *v = nb__data(c.x);
    float m = nb__data(c.y)[0], *d = c.dst;
    bool nan = m != m;
    double count = 0.0;
    for (int64_t i = 0; i < c.x->numel; i++) count += (nan ? v[i] != v[i] : v[i] == m) ? 1.0 : 0.0;
    float share = nb__data(gy[0])[0] / (float)count;
    for (int64_t i = 0; i < c.x->numel; i++) {
        float t = (nan ? v[i] != v[i] : v[i] == m) ? share : 0.0f;
        d[i] = c.acc ? d[i] + t : t;
    }
    return NB_OK;
}

static const nb_op max_all_op = {"MaxBackward1", max_all_backward, 2, sizeof(reduce_state), 0};
static const nb_op min_all_op = {"MinBackward1", max_all_backward, 2, sizeof(reduce_state), 0};

static nb_tensor *max_all(const char *fn, const nb_op *op, nb_tensor *x, bool min)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    if (x->numel == 0) {
        nb__error(NB_EINVAL, fn,
                  "expected a non-empty tensor (an empty one reduces only along a dim: %s_dim)",
                  fn);
        return NULL;
    }
    red r = red_of(x, (1u << x->ndim) - 1u, false);
    nb_tensor *y = run_rows(fn, x, &r, extreme_rows, min ? 1.0 : 0.0);
    return record(fn, op, x, y, true, y, (reduce_state){.mask = r.mask});
}

nb_tensor *nb_max(nb_tensor *x)
{
    return max_all("nb_max", &max_all_op, x, false);
}

nb_tensor *nb_min(nb_tensor *x)
{
    return max_all("nb_min", &min_all_op, x, true);
}

/* ---- max, min along a dim (values and indices), argmax, argmin -------------------------- */

/*
 * The index of the first of x[0..n) equal to m, or of the first NaN when m is a NaN (n when
 * none is): blocks of 16 tested in lanes, then the block that holds it element by element.
 */
static inline __attribute__((always_inline)) int64_t first_index(const float *x, int64_t n, float m)
{
    const bool nan = m != m;
    const nb__f8 mv = {m, m, m, m, m, m, m, m};
    const nb__m8 nm = {-nan, -nan, -nan, -nan, -nan, -nan, -nan, -nan};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        nb__f8 a, b;
        NB__LOAD8(a, x + k);
        NB__LOAD8(b, x + k + 8);
        nb__m8 hit = (a == mv) | (b == mv) | (nm & ((a != a) | (b != b)));
        if (NB__ANY8(hit)) break;
    }
    for (; k < n; k++)
        if ((x[k] == m) | (nan & (x[k] != x[k]))) return k;
    return n;
}

/*
 * The index of each row's first maximum (minimum with min), or of its first NaN: PyTorch's
 * max/min/argmax/argmin kernels compare with !(v <= m) and stop at a NaN. That is the first
 * element equal to the row's extreme (of +0 and -0, the first of either), or the first NaN:
 * rows of 32 and more find the extreme in lanes (nb__lane_extreme), then its first index.
 */
NB__CLONES static void arg_rows(float *o, const float *x, int64_t rows, int64_t n, double min)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x + r * n;
        int64_t k = 0;
        if (n >= 32) {
            bool nan;
            float m = min != 0.0 ? nb__lane_extreme(v, n, true, &nan)
                                 : nb__lane_extreme(v, n, false, &nan);
            k = first_index(v, n, nan ? NAN : m);
        } else {
            float m = v[0];
            for (int64_t i = 0; i < n; i++) {
                if (min != 0.0 ? !(v[i] >= m) : !(v[i] <= m)) {
                    m = v[i];
                    k = i;
                    if (m != m) break;
                }
            }
        }
        o[r] = (float)k;
    }
}

/* MaxBackward0 / MinBackward0: dx = zeros with g at each slice's index along dim. */
static nb_status max_dim_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const reduce_state *st = nb__state(n);
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, false, true, &c);
    if (rc != NB_OK) return rc;
    int64_t outer, inner, size = c.in.ndim ? c.in.dims[st->dim] : 1;
    outer_inner(&c.in, st->mask, &outer, &inner);
    float *d = c.dst;
    if (!c.acc) memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    if (gy[0]->numel == 0) outer = 0; /* an empty output: inner 0, outer maybe huge */
    const float *g = nb__data(gy[0]), *k = nb__data(c.y);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            d[(o * size + (int64_t)k[o * inner + i]) * inner + i] += g[o * inner + i];
    return NB_OK;
}

static const nb_op max_dim_op = {"MaxBackward0", max_dim_backward, 2, sizeof(reduce_state), 0};
static const nb_op min_dim_op = {"MinBackward0", max_dim_backward, 2, sizeof(reduce_state), 0};

/* The indices of the extremes along r's dims, or the error for fn. */
static nb_tensor *arg_of(const char *fn, const nb_tensor *x, const red *r, bool min)
{
    if (check_nonempty(fn, r) != NB_OK || check_index_range(fn, r->n) != NB_OK) return NULL;
    return run_rows(fn, x, r, arg_rows, min ? 1.0 : 0.0);
}

static nb_tensor *max_dim(const char *fn, const nb_op *op, nb_tensor *x, int dim, bool keepdim,
                          nb_tensor **indices, bool min)
{
    if (indices) *indices = NULL;
    int d = 0;
    if (one_dim(fn, x, dim, &d) != NB_OK) return NULL;
    red r = red_of(x, dim_mask(x, d), keepdim);
    nb_tensor *idx = arg_of(fn, x, &r, min);
    if (!idx) return NULL;
    nb_tensor *y = nb__new(fn, r.out.ndim, r.out.dims);
    if (!y) {
        nb__drop(idx);
        return NULL;
    }
    /* the values are the elements the indices point at (none for an empty output, whose
     * outer count can be huge while inner is 0) */
    int64_t outer, inner, size = x->ndim ? x->shape[d] : 1;
    outer_inner(&r.in, r.mask, &outer, &inner);
    if (y->numel == 0) outer = 0;
    const float *v = nb__data(x), *k = nb__data(idx);
    float *o = nb__data(y);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < inner; i++)
            o[a * inner + i] = v[(a * size + (int64_t)k[a * inner + i]) * inner + i];
    y = record(fn, op, x, y, false, idx, (reduce_state){.mask = r.mask, .dim = d});
    if (y && indices)
        *indices = idx;
    else
        nb__drop(idx); /* the node (if any) keeps its own reference */
    return y;
}

nb_tensor *nb_max_dim(nb_tensor *x, int dim, bool keepdim, nb_tensor **indices)
{
    return max_dim("nb_max_dim", &max_dim_op, x, dim, keepdim, indices, false);
}

nb_tensor *nb_min_dim(nb_tensor *x, int dim, bool keepdim, nb_tensor **indices)
{
    return max_dim("nb_min_dim", &min_dim_op, x, dim, keepdim, indices, true);
}

static nb_tensor *argmax(const char *fn, const nb_tensor *x, nb_dims dim, bool keepdim, bool min)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    unsigned mask = (1u << x->ndim) - 1u; /* NB_DIMS_ALL: the index into the flattened x */
    if (dim.n != NB__DIMS_ALL_N) {
        int d = 0;
        if (dim.n != 1) {
            nb__error(NB_EINVAL, fn, "expected one dim or NB_DIMS_ALL, got a list of %d", dim.n);
            return NULL;
        }
        if (one_dim(fn, x, dim.d[0], &d) != NB_OK) return NULL;
        mask = dim_mask(x, d);
    }
    red r = red_of(x, mask, keepdim);
    return arg_of(fn, x, &r, min);
}

nb_tensor *nb_argmax(const nb_tensor *x, nb_dims dim, bool keepdim)
{
    return argmax("nb_argmax", x, dim, keepdim, false);
}

nb_tensor *nb_argmin(const nb_tensor *x, nb_dims dim, bool keepdim)
{
    return argmax("nb_argmin", x, dim, keepdim, true);
}

/* ---- var, std ---------------------------------------------------------------------------- */

/*
 * Each row's variance: mean and squared deviations in double (two passes; PyTorch's Welford
 * in double rounds to the same floats), over max(0, n − correction); NaN for an empty row.
 */
static double row_var(const float *v, int64_t n, double correction)
{
    if (n == 0) return (double)NAN;
    double mean = nb__sum_contiguous(v, n) / (double)n, ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += ((double)v[i] - mean) * ((double)v[i] - mean);
    return ss / fmax(0.0, (double)n - correction);
}

static void var_rows(float *o, const float *x, int64_t rows, int64_t n, double correction)
{
    for (int64_t r = 0; r < rows; r++) o[r] = (float)row_var(x + r * n, n, correction);
}

static void std_rows(float *o, const float *x, int64_t rows, int64_t n, double correction)
{
    for (int64_t r = 0; r < rows; r++) o[r] = (float)sqrt(row_var(x + r * n, n, correction));
}

/* dx = (2 / (n − correction))·g·(x − mean) (V2 the mean) */
NB__EW_KERNEL(var_grad_k, k[0] * V0 * (V1 - V2))
/* k[0]·g: var's of a 0-d x whose correction leaves no degree of freedom (k[0] = INFINITY) */
NB__EW_KERNEL(var_inf_grad_k, k[0] * V0)
/* the same with g / (2·y), 0 where y = 0 (V3 y) */
NB__EW_KERNEL(std_grad_k, k[0] * (V3 == 0.0f ? 0.0f : V0 / (V3 * 2.0f)) * (V1 - V2))

/*
 * VarBackward0 / StdBackward0, as PyTorch's var_backward: the mean recomputed in float (as
 * nb_mean gives it) and 2 / (n − correction) without the forward's clamp at 0. std divides g
 * by 2·y first, masked to 0 where y = 0: zero variance gives a zero gradient, not NaN. var of
 * a 0-d x, or over NB_DIMS_ALL, whose correction is its element count is PyTorch's special
 * case: INFINITY·g (std's stays NaN there).
 */
static nb_status var_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx);
static const nb_op var_op = {"VarBackward0", var_backward, 2, sizeof(reduce_state), 0};
static const nb_op std_op = {"StdBackward0", var_backward, 2, sizeof(reduce_state), 0};

static nb_status var_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const reduce_state *st = nb__state(n);
    bool std = n->op == &std_op;
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, std, &c);
    if (rc != NB_OK) return rc;
    nb_tensor *mean = nb__new(nb__engine_fn(), c.kept.ndim, c.kept.dims);
    if (!mean) return NB_ENOMEM;
    float *m = nb__data(mean);
    nb__sum_to(m, &c.kept, false, nb__data(c.x), &c.in, 1.0f);
    for (int64_t i = 0; i < mean->numel; i++) m[i] /= st->count;
    float two_over_dof = (float)(2.0 / ((double)st->n - st->param)), inf = INFINITY;
    if (!std && (c.in.ndim == 0 || st->all) && (double)st->n == st->param)
        grad_apply(&c, var_inf_grad_k, &inf, gy[0], m);
    else
        grad_apply(&c, std ? std_grad_k : var_grad_k, &two_over_dof, gy[0], m);
    nb__drop(mean);
    return NB_OK;
}

static nb_tensor *var(const char *fn, nb_tensor *x, nb_dims dims, int64_t correction, bool keepdim,
                      bool std)
{
    red r;
    if (red_begin(fn, x, dims, keepdim, &r) != NB_OK) return NULL;
    nb_tensor *y = run_rows(fn, x, &r, std ? std_rows : var_rows, (double)correction);
    reduce_state st = {.mask = r.mask,
                       .count = (float)r.n,
                       .all = dims.n == NB__DIMS_ALL_N,
                       .n = r.n,
                       .param = (double)correction};
    return record(fn, std ? &std_op : &var_op, x, y, true, std ? y : NULL, st);
}

nb_tensor *nb_var(nb_tensor *x, nb_dims dims, int64_t correction, bool keepdim)
{
    return var("nb_var", x, dims, correction, keepdim, false);
}

nb_tensor *nb_std(nb_tensor *x, nb_dims dims, int64_t correction, bool keepdim)
{
    return var("nb_std", x, dims, correction, keepdim, true);
}

/* ---- logsumexp -------------------------------------------------------------------------- */

/*
 * Each row's log Σ e^x as m + log Σ e^(x − m), m the row's max, or 0 when that is ±inf (an
 * all -inf row gives -inf, a +inf gives +inf), as PyTorch's logsumexp; the sum in double:
 * the exps of LSE_BLOCK elements at a time in a vector loop, each block summed by
 * nb__sum_contiguous (one running sum would wait on each add), the blocks in order.
 */
#define LSE_BLOCK 512

NB__CLONES static void lse_rows(float *o, const float *x, int64_t rows, int64_t n, double unused)
{
    (void)unused;
    float e[LSE_BLOCK];
    extreme_rows(o, x, n ? rows : 0, n, 0.0);
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x + r * n;
        float m = n && !isinf(o[r]) ? o[r] : 0.0f;
        double s = 0.0;
        for (int64_t b = 0; b < n; b += LSE_BLOCK) {
            int64_t len = n - b < LSE_BLOCK ? n - b : LSE_BLOCK;
            for (int64_t i = 0; i < len; i++) e[i] = nb__expf(v[b + i] - m);
            s += nb__sum_contiguous(e, len);
        }
        o[r] = logf((float)s) + m;
    }
}

NB__EW_KERNEL(lse_grad_k, V0 *nb__expf(V1 - V3))

/* LogsumexpBackward0: dx = g·e^(x − y), NaN where x and y are the same infinity (PyTorch). */
static nb_status lse_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, true, &c);
    if (rc == NB_OK) grad_apply(&c, lse_grad_k, NULL, gy[0], NULL);
    return rc;
}

static const nb_op lse_op = {"LogsumexpBackward0", lse_backward, 2, sizeof(reduce_state), 0};

nb_tensor *nb_logsumexp(nb_tensor *x, nb_dims dims, bool keepdim)
{
    const char *fn = "nb_logsumexp";
    red r;
    if (red_begin(fn, x, dims, keepdim, &r) != NB_OK) return NULL;
    nb_tensor *y = run_rows(fn, x, &r, lse_rows, 0.0);
    return record(fn, &lse_op, x, y, true, y, (reduce_state){.mask = r.mask});
}

/* ---- prod ------------------------------------------------------------------------------- */

/* Each row's product, multiplied in float from the left, as PyTorch's CPU kernel does for
 * slices shorter than its vector loop. */
static void prod_rows(float *o, const float *x, int64_t rows, int64_t n, double unused)
{
    (void)unused;
    for (int64_t r = 0; r < rows; r++) {
        float p = 1.0f;
        for (int64_t i = 0; i < n; i++) p *= x[r * n + i];
        o[r] = p;
    }
}

/* dx = g·(y / x) */
NB__EW_KERNEL(prod_grad_k, V0 *(V3 / V1))

/*
 * dx of every [outer, size, inner] slice: g times the product of the slice's other elements,
 * as (product before)·(product after), each multiplied outwards from the element as PyTorch's
 * cumprods do. Exact around zeros: a zero's element gets the others' product, every other
 * element (or all, with two zeros) gets 0.
 */
static nb_status prod_exclusive(const nb_tensor *x, const float *g, float *d, bool acc,
                                int64_t outer, int64_t size, int64_t inner)
{
    float *before = nb__alloc((size_t)size * sizeof *before, NB__ALIGN);
    if (!before) return nb__oom(nb__engine_fn());
    const float *v = nb__data(x);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            const float *s = v + o * size * inner + i;
            float *ds = d + o * size * inner + i, gi = g[o * inner + i], p = 1.0f;
            for (int64_t k = 0; k < size; k++) {
                before[k] = p;
                p *= s[k * inner];
            }
            p = 1.0f;
            for (int64_t k = size - 1; k >= 0; k--) {
                float t = gi * (before[k] * p);
                ds[k * inner] = acc ? ds[k * inner] + t : t;
                p *= s[k * inner];
            }
        }
    }
    nb__free(before);
    return NB_OK;
}

/*
 * ProdBackward0 / ProdBackward1, as PyTorch's prod_backward: with no zero anywhere in x,
 * dx = g·(y / x); with one, every slice takes the exclusive products (prod_exclusive), except
 * that the product of every element with two zeros or more gives +0 everywhere (whatever NaN
 * or infinity x holds). A 0-d x passes g through.
 */
static nb_status prod_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const reduce_state *st = nb__state(n);
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, true, &c);
    if (rc != NB_OK) return rc;
    const float *v = nb__data(c.x), *g = nb__data(gy[0]);
    int64_t zeros = 0;
    for (int64_t i = 0; i < c.x->numel; i++) zeros += v[i] == 0.0f;
    if (c.in.ndim == 0) {
        c.dst[0] = c.acc ? c.dst[0] + g[0] : g[0];
    } else if (st->all && zeros > 1) {
        for (int64_t i = 0; i < c.x->numel; i++) c.dst[i] = c.acc ? c.dst[i] + 0.0f : 0.0f;
    } else if (zeros == 0) {
        grad_apply(&c, prod_grad_k, NULL, gy[0], NULL);
    } else {
        int64_t outer, inner;
        outer_inner(&c.in, st->mask, &outer, &inner);
        rc = prod_exclusive(c.x, g, c.dst, c.acc, outer, st->n, inner);
    }
    return rc;
}

static const nb_op prod_all_op = {"ProdBackward0", prod_backward, 2, sizeof(reduce_state), 0};
static const nb_op prod_dim_op = {"ProdBackward1", prod_backward, 2, sizeof(reduce_state), 0};

static nb_tensor *prod(const char *fn, const nb_op *op, nb_tensor *x, unsigned mask, bool keepdim)
{
    red r = red_of(x, mask, keepdim);
    nb_tensor *y = run_rows(fn, x, &r, prod_rows, 0.0);
    reduce_state st = {.mask = r.mask, .n = r.n, .all = op == &prod_all_op};
    return record(fn, op, x, y, true, y, st);
}

nb_tensor *nb_prod(nb_tensor *x)
{
    if (!x) {
        nb__null("nb_prod", "x");
        return NULL;
    }
    return prod("nb_prod", &prod_all_op, x, (1u << x->ndim) - 1u, false);
}

nb_tensor *nb_prod_dim(nb_tensor *x, int dim, bool keepdim)
{
    int d = 0;
    if (one_dim("nb_prod_dim", x, dim, &d) != NB_OK) return NULL;
    return prod("nb_prod_dim", &prod_dim_op, x, dim_mask(x, d), keepdim);
}

/* ---- norm ------------------------------------------------------------------------------- */

/*
 * Each row's p-norm: (Σ |x|^p)^(1/p) summed in double (p = 0 counts the non-zeros, p = 1 and
 * 2 without pow), max |x| for p = inf and min |x| for -inf (NaN when the row holds one).
 * An empty row gives 0 for every p, as torch.norm does.
 */
static void norm_rows(float *o, const float *x, int64_t rows, int64_t n, double p)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x + r * n;
        if (n == 0) {
            o[r] = 0.0f;
        } else if (isinf(p)) {
            float m = fabsf(v[0]);
            for (int64_t i = 1; i < n; i++) {
                float a = fabsf(v[i]);
                m = ((p > 0.0 ? a > m : a < m) || a != a) ? a : m;
            }
            o[r] = m;
        } else {
            double s = 0.0;
            if (p == 0.0)
                for (int64_t i = 0; i < n; i++) s += v[i] != 0.0f ? 1.0 : 0.0;
            else if (p == 1.0)
                for (int64_t i = 0; i < n; i++) s += fabs((double)v[i]);
            else if (p == 2.0)
                for (int64_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
            else
                for (int64_t i = 0; i < n; i++) s += pow(fabs((double)v[i]), p);
            o[r] = (float)(p == 0.0 || p == 1.0 ? s : p == 2.0 ? sqrt(s) : pow(s, 1.0 / p));
        }
    }
}

/* sgn(v): 1, -1, or 0 for ±0 and NaN, as PyTorch's sgn of a real tensor */
#define SGN(v) ((float)((v) > 0.0f) - (float)((v) < 0.0f))

/* V0 g, V1 x, V3 y; k[0] = p - 1, k[1] = p - 2, k[2] = 1 - p (PyTorch's norm_backward) */
NB__EW_KERNEL(norm1_k, SGN(V1) * V0)
NB__EW_KERNEL(norm2_k, V0 *(V3 == 0.0f ? 0.0f : V1 / V3))
NB__EW_KERNEL(norm_below1_k, nb__pick(V1 == 0.0f, 0.0f, SGN(V1) * nb__powf(fabsf(V1), k[0])) * V0 *
                                 nb__powf(V3, k[2]))
NB__EW_KERNEL(norm_below2_k, SGN(V1) * nb__powf(fabsf(V1), k[0]) *
                                 nb__pick(V3 == 0.0f, 0.0f, V0 / nb__powf(V3, k[0])))
/* p > 2: x·|x|^(p−2)·g / y^(p−1) in float, PyTorch's expression (one text for both kernels) */
#define NORM_ABOVE2                                                                                \
    (V1 * nb__powf(fabsf(V1), k[1]) * nb__pick(V3 == 0.0f, 0.0f, V0 / nb__powf(V3, k[0])))
NB__EW_KERNEL(norm_above2_k, NORM_ABOVE2)
/*
 * Where y^(p−1) leaves float's range (0 or inf) although y does not, which takes p > 2 (for
 * 1 < p < 2 it lies between y and 1), the float formula gives 0·inf = NaN for a finite
 * gradient: y, summed in double, is finite where PyTorch's float sum made it 0 or inf. These
 * rows take the formula in double (k[3] = p); the others keep the float formula's bits. Only
 * run when norm_far_rows finds such a y.
 */
static float norm_far(float g, float x, float y, float p)
{
    double ax = fabs((double)x), q = (double)p - 1.0;
    return (float)((double)SGN(x) * pow(ax, q) * ((double)g / pow((double)y, q)));
}

static bool norm_far_y(float y, float q)
{
    float d = nb__powf(y, q);
    return y != 0.0f && !isinf(y) && (d == 0.0f || isinf(d));
}

NB__EW_KERNEL(norm_above2_far_k, norm_far_y(V3, k[0]) ? norm_far(V0, V1, V3, k[3]) : NORM_ABOVE2)

/* Whether one of the n norms y needs norm_far (p > 2, q = p − 1). */
static bool norm_far_rows(const float *y, int64_t n, float q)
{
    for (int64_t i = 0; i < n; i++)
        if (norm_far_y(y[i], q)) return true;
    return false;
}

/* inf-norms: 1 where |x| is the slice's y or x is NaN; dx = sgn(x)·((g / count)·that) */
NB__EW_KERNEL(pick_abs_k, (fabsf(V1) == V3 || V1 != V1) ? 1.0f : 0.0f)
NB__EW_KERNEL(norm_inf_k, SGN(V1) * (V0 / V2 * ((fabsf(V1) == V3 || V1 != V1) ? 1.0f : 0.0f)))

/*
 * NormBackward1, PyTorch's norm_backward case by case: p = 0 gives no gradient; p = 1
 * sgn(x)·g; p = 2 g·x / y (0 where y = 0); inf-norms share g among the extremes; other p
 * sgn(x)·|x|^(p−1)·g / y^(p−1), with PyTorch's masks at x = 0 (p < 1) and y = 0 (in double
 * where y^(p−1) is out of float's range: norm_far).
 */
static nb_status norm_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    double p = ((const reduce_state *)nb__state(n))->param;
    if (p == 0.0) return NB_OK;
    if (isinf(p)) return shared_backward(n, gy, gx, pick_abs_k, norm_inf_k);
    grad_ctx c;
    nb_status rc = grad_begin(n, gx, true, p != 1.0, &c);
    if (rc != NB_OK) return rc;
    nb__ew_fn f = p == 1.0   ? norm1_k
                  : p == 2.0 ? norm2_k
                  : p < 1.0  ? norm_below1_k
                  : p < 2.0  ? norm_below2_k
                             : norm_above2_k;
    float k[4] = {(float)(p - 1.0), (float)(p - 2.0), (float)(1.0 - p), (float)p};
    if (p > 2.0 && norm_far_rows(nb__data(c.y), c.y->numel, k[0])) f = norm_above2_far_k;
    grad_apply(&c, f, k, gy[0], NULL);
    return NB_OK;
}

static const nb_op norm_op = {"NormBackward1", norm_backward, 2, sizeof(reduce_state), 0};

nb_tensor *nb_norm(nb_tensor *x, float p, nb_dims dims, bool keepdim)
{
    const char *fn = "nb_norm";
    red r;
    if (red_begin(fn, x, dims, keepdim, &r) != NB_OK) return NULL;
    nb_tensor *y = run_rows(fn, x, &r, norm_rows, (double)p);
    reduce_state st = {.mask = r.mask, .param = (double)p};
    return record(fn, &norm_op, x, y, p != 0.0f, p != 0.0f && p != 1.0f ? y : NULL, st);
}
