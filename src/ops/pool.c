/*
 * 2-D pooling (max and average) as PyTorch 1.13's CPU kernels for contiguous tensors compute
 * it (MaxPoolKernel.cpp, AvgPoolKernel.cpp, Pool.h): the same windows, the same choice among
 * ties and NaNs, float sums in the same order, and gradients added into zeros output by
 * output, so values, indices and gradients are PyTorch's bits. Each plane of H·W is its own
 * task: planes run on the pool when there are enough of them, the same bits at any cut.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

/* The geometry of one pooling call: the planes, their sizes and the window's. */
typedef struct pool_geom {
    int64_t planes, ih, iw, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
} pool_geom;

/* ---- arguments ------------------------------------------------------------------------- */

/* PyTorch's int-or-pair: 1 dim for both, 2 for (h, w), none (where allowed) for dflt. */
static nb_status int_pair(const char *fn, nb_shape s, const char *msg, const int64_t *dflt,
                          int64_t *h, int64_t *w)
{
    if (s.ndim == 0 && dflt) {
        *h = dflt[0];
        *w = dflt[1];
        return NB_OK;
    }
    if (s.ndim != 1 && s.ndim != 2) return nb__error(NB_EINVAL, fn, "%s", msg);
    *h = s.dims[0];
    *w = s.dims[s.ndim - 1];
    /* int32, as PyTorch's kernels take them: no product of two of them overflows */
    for (int i = 0; i < s.ndim; i++)
        if (s.dims[i] < INT32_MIN || s.dims[i] > INT32_MAX)
            return nb__error(NB_EINVAL, fn, "%.*s %lld is outside int32's range",
                             (int)strcspn(msg, " "), msg, (long long)s.dims[i]);
    return NB_OK;
}

/* ⌊a / b⌋ for b != 0 (PyTorch's div_rtn) */
static int64_t div_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The window's sizes from the lists (k, s, p, d: h then w), or the error for fn. */
static nb_status window_lists(const char *fn, nb_shape kernel, nb_shape stride, nb_shape padding,
                              nb_shape dilation, bool avg, int64_t *k, int64_t *s, int64_t *p,
                              int64_t *d)
{
    d[0] = d[1] = 1;
    if (int_pair(fn, kernel, "kernel_size must either be a single int, or a tuple of two ints",
                 NULL, &k[0], &k[1]) != NB_OK ||
        int_pair(fn, stride, "stride must either be omitted, a single int, or a tuple of two ints",
                 k, &s[0], &s[1]) != NB_OK ||
        int_pair(fn, padding,
                 avg ? "padding must either be a single int, or a tuple of two ints"
                     : "padding must be either be a single int, or a tuple of two ints",
                 NULL, &p[0], &p[1]) != NB_OK ||
        (!avg &&
         int_pair(fn, dilation, "dilation must be either a single int, or a tuple of two ints",
                  NULL, &d[0], &d[1]) != NB_OK))
        return nb__last_code();
    return NB_OK;
}

/* PyTorch's checks of the window's values, in its order: those of pooling_output_shape for H,
 * then for W, then pool2d_shape_check's. */
static nb_status window_values(const char *fn, const int64_t *k, const int64_t *s, const int64_t *p,
                               const int64_t *d)
{
    for (int i = 0; i < 2; i++) {
        if (s[i] == 0) return nb__error(NB_EINVAL, fn, "stride should not be zero");
        if (p[i] < 0)
            return nb__error(NB_EINVAL, fn, "pad must be non-negative, but got pad: %lld",
                             (long long)p[i]);
        if (p[i] > k[i] / 2)
            return nb__error(NB_EINVAL, fn,
                             "pad should be at most half of kernel size, but got pad=%lld and "
                             "kernel_size=%lld",
                             (long long)p[i], (long long)k[i]);
    }
    if (k[0] <= 0 || k[1] <= 0)
        return nb__error(NB_EINVAL, fn,
                         "kernel size should be greater than zero, but got kH: %lld kW: %lld",
                         (long long)k[0], (long long)k[1]);
    if (s[0] <= 0 || s[1] <= 0)
        return nb__error(NB_EINVAL, fn,
                         "stride should be greater than zero, but got dH: %lld dW: %lld",
                         (long long)s[0], (long long)s[1]);
    if (d[0] <= 0 || d[1] <= 0)
        return nb__error(NB_EINVAL, fn,
                         "dilation should be greater than zero, but got dilationH: %lld "
                         "dilationW: %lld",
                         (long long)d[0], (long long)d[1]);
    return NB_OK;
}

nb_status nb__pool2d_check(const char *fn, nb_shape kernel, nb_shape stride, nb_shape padding,
                           nb_shape dilation, bool avg)
{
    int64_t k[2] = {0}, s[2] = {0}, p[2] = {0}, d[2];
    if (window_lists(fn, kernel, stride, padding, dilation, avg, k, s, p, d) != NB_OK)
        return nb__last_code();
    return window_values(fn, k, s, p, d);
}

/* PyTorch's pooling_output_shape for valid arguments: ⌊…⌋ + 1, less the last window in
 * ceil_mode when it would start past the left padding and the input. */
static int64_t out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil,
                        bool ceil_mode)
{
    int64_t o =
        div_floor(in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) o--;
    return o;
}

/* Every check of PyTorch's max_pool2d / avg_pool2d, in its order; g gets the geometry.
 * max_pool2d refuses a rank other than 3 or 4 first; avg_pool2d reads size(-3) first (an x
 * of fewer dims: nabla gives max_pool2d's message) and finds more than 4 dims after the
 * window's checks, in pool2d_shape_check's message. */
static nb_status pool_args(const char *fn, const nb_tensor *x, nb_shape kernel, nb_shape stride,
                           nb_shape padding, nb_shape dilation, bool ceil_mode, bool avg,
                           pool_geom *g)
{
    int64_t k[2] = {0}, s[2] = {0}, p[2] = {0}, d[2];
    if (window_lists(fn, kernel, stride, padding, dilation, avg, k, s, p, d) != NB_OK)
        return nb__last_code();
    if (x->ndim < 3 || (x->ndim > 4 && !avg))
        return nb__error(NB_ESHAPE, fn,
                         "non-empty 3D or 4D (batch mode) tensor expected for input");
    if (window_values(fn, k, s, p, d) != NB_OK) return nb__last_code();
    const int64_t *xs = x->shape + x->ndim - 3; /* C, H, W */
    if (x->ndim > 4 || xs[0] == 0 || xs[1] == 0 || xs[2] == 0) {
        char b[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn,
                         "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size "
                         "for input, but got:%s",
                         nb__shape_str(b, x->ndim, x->shape));
    }
    int64_t oh = out_size(xs[1], k[0], p[0], s[0], d[0], ceil_mode);
    int64_t ow = out_size(xs[2], k[1], p[1], s[1], d[1], ceil_mode);
    if (oh < 1 || ow < 1)
        return nb__error(NB_ESHAPE, fn,
                         "Given input size: (%lldx%lldx%lld). Calculated output size: "
                         "(%lldx%lldx%lld). Output size is too small",
                         (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[0],
                         (long long)oh, (long long)ow);
    *g = (pool_geom){x->ndim == 4 ? x->shape[0] * xs[0] : xs[0],
                     xs[1],
                     xs[2],
                     oh,
                     ow,
                     k[0],
                     k[1],
                     s[0],
                     s[1],
                     p[0],
                     p[1],
                     d[0],
                     d[1]};
    return NB_OK;
}

/* The output's shape: x's with H, W replaced by OH, OW. */
static nb_tensor *new_out(const char *fn, const nb_tensor *x, const pool_geom *g)
{
    int64_t dims[4];
    memcpy(dims, x->shape, sizeof dims[0] * (size_t)x->ndim);
    dims[x->ndim - 2] = g->oh;
    dims[x->ndim - 1] = g->ow;
    return nb__new(fn, x->ndim, dims);
}

/* Planes [lo, hi) of f on the pool: a plane's work is its window reads (each window clipped
 * to the input) and its H·W, counted up to NB__PARALLEL_MIN (a plane's own task from there). */
static void run_planes(const pool_geom *g, nb__range_fn f, void *ctx)
{
    if (g->planes == 0) return;
    double kh = (double)(g->kh < g->ih ? g->kh : g->ih),
           kw = (double)(g->kw < g->iw ? g->kw : g->iw);
    double work = (double)g->oh * (double)g->ow * kh * kw + (double)g->ih * (double)g->iw;
    nb__split(g->planes, work < NB__PARALLEL_MIN ? (int64_t)work : NB__PARALLEL_MIN, f, ctx);
}

/* ---- max pooling ----------------------------------------------------------------------- */

typedef struct max_job {
    const pool_geom *g;
    const float *x, *gy;
    float *y, *idx, *dx;
} max_job;

/* The first of a window's positions from start that is inside the input (at or past 0):
 * PyTorch steps to it by the dilation, one step at a time. */
static int64_t first_inside(int64_t start, int64_t dil)
{
    return start < 0 ? start + (-start + dil - 1) / dil * dil : start;
}

/* Each window's largest element and its index, PyTorch's cpu_max_pool: a later element wins
 * when it is greater or NaN; a window of -inf only (or of padding alone) keeps the index of
 * its first position past the padding, h0·W + w0, which for padding alone is in a later row
 * of the plane (its columns padding) or past the plane. */
static void max_planes(void *ctx, int64_t lo, int64_t hi)
{
    const max_job *j = ctx;
    const pool_geom *g = j->g;
    for (int64_t p = lo; p < hi; p++) {
        const float *x = j->x + p * g->ih * g->iw;
        float *y = j->y + p * g->oh * g->ow, *idx = j->idx ? j->idx + p * g->oh * g->ow : NULL;
        for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t h0 = oh * g->sh - g->ph, h1 = h0 + (g->kh - 1) * g->dh + 1;
            if (h1 > g->ih) h1 = g->ih;
            h0 = first_inside(h0, g->dh);
            for (int64_t ow = 0; ow < g->ow; ow++) {
                int64_t w0 = ow * g->sw - g->pw, w1 = w0 + (g->kw - 1) * g->dw + 1;
                if (w1 > g->iw) w1 = g->iw;
                w0 = first_inside(w0, g->dw);
                float m = -INFINITY;
                int64_t mi = -1;
                for (int64_t h = h0; h < h1; h += g->dh)
                    for (int64_t w = w0; w < w1; w += g->dw) {
                        float v = x[h * g->iw + w];
                        if (v > m || isnan(v)) {
                            m = v;
                            mi = h * g->iw + w;
                        }
                    }
                y[oh * g->ow + ow] = m;
                /* (in double: past the plane, h0·W can exceed int64_t's range) */
                if (idx)
                    idx[oh * g->ow + ow] =
                        mi >= 0 ? (float)mi : (float)((double)h0 * (double)g->iw + (double)w0);
            }
        }
    }
}

/* dx = zeros with each g added at its index, output by output (PyTorch's order); an index
 * past the plane (a window of padding only) has nowhere to go. */
static void max_grad_planes(void *ctx, int64_t lo, int64_t hi)
{
    const max_job *j = ctx;
    const pool_geom *g = j->g;
    int64_t in = g->ih * g->iw, out = g->oh * g->ow;
    for (int64_t p = lo; p < hi; p++) {
        float *dx = j->dx + p * in;
        const float *gy = j->gy + p * out, *idx = j->idx + p * out;
        memset(dx, 0, (size_t)in * sizeof *dx);
        for (int64_t o = 0; o < out; o++) {
            float k = idx[o]; /* compared as a float: one past the plane may be huge */
            if (k >= 0.0f && k < (float)in) dx[(int64_t)k] += gy[o];
        }
    }
}

/* MaxPool2DWithIndicesBackward0: saves the indices (slot 0); the state is the geometry. */
static nb_status max_pool_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    nb_tensor *idx = nb__saved(n, 0);
    if (!idx) return nb__last_code();
    nb_shape s = nb__input_shape(n, 0);
    nb_tensor *dx = nb__new(nb__engine_fn(), s.ndim, s.dims);
    if (!dx) return NB_ENOMEM;
    max_job j = {nb__state(n), NULL, nb__data(gy[0]), NULL, nb__data(idx), nb__data(dx)};
    run_planes(j.g, max_grad_planes, &j);
    return nb__grad_take(n, gx, 0, dx); /* added after, as the engine adds PyTorch's */
}

static const nb_op max_pool_op = {"MaxPool2DWithIndicesBackward0", max_pool_backward, 1,
                                  sizeof(pool_geom), 0};

static nb_tensor *max_pool(const char *fn, nb_tensor *x, nb_shape kernel, nb_shape stride,
                           nb_shape padding, nb_shape dilation, bool ceil_mode, nb_tensor **indices)
{
    if (indices) *indices = NULL;
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    pool_geom g;
    if (pool_args(fn, x, kernel, stride, padding, dilation, ceil_mode, false, &g) != NB_OK)
        return NULL;
    bool record = nb__grad_enabled() && nb__requires_grad(x);
    if ((indices || record) && g.ih * g.iw > ((int64_t)1 << 24)) {
        nb__error(NB_ERANGE, fn,
                  "a plane of %lld x %lld elements has indices beyond 2^24, which float32 "
                  "cannot hold exactly",
                  (long long)g.ih, (long long)g.iw);
        return NULL;
    }
    nb_tensor *y = new_out(fn, x, &g), *idx = NULL;
    if (!y || ((indices || record) && !(idx = new_out(fn, x, &g)))) {
        nb__drop(y);
        return NULL;
    }
    max_job j = {&g, nb__data(x), NULL, nb__data(y), idx ? nb__data(idx) : NULL, NULL};
    run_planes(&g, max_planes, &j);
    nb_node *node;
    y = nb__finish(fn, &max_pool_op, y, 1, &x, &node);
    if (node) {
        *(pool_geom *)nb__state(node) = g;
        if (nb__save(fn, node, 0, idx) != NB_OK) {
            nb__drop(y);
            y = NULL;
        }
    }
    if (y && indices)
        *indices = idx;
    else
        nb__drop(idx); /* the node (if any) keeps its own reference */
    return y;
}

nb_tensor *nb_max_pool2d(nb_tensor *x, nb_shape kernel_size, nb_shape stride, nb_shape padding,
                         nb_shape dilation, bool ceil_mode)
{
    return max_pool("nb_max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode, NULL);
}

nb_tensor *nb_max_pool2d_with_indices(nb_tensor *x, nb_shape kernel_size, nb_shape stride,
                                      nb_shape padding, nb_shape dilation, bool ceil_mode,
                                      nb_tensor **indices)
{
    return max_pool("nb_max_pool2d_with_indices", x, kernel_size, stride, padding, dilation,
                    ceil_mode, indices);
}

/* ---- average pooling ------------------------------------------------------------------- */

/* AvgPool2DBackward0's state: the geometry and how each window is divided. */
typedef struct avg_state {
    pool_geom g;
    int64_t divisor; /* 0: none */
    bool count_include_pad;
} avg_state;

typedef struct avg_job {
    const avg_state *st;
    const float *x, *gy;
    float *y, *dx;
} avg_job;

/* Window (oh, ow) clipped to x, and its divisor, as PyTorch's cpu_avg_pool: the window first
 * clipped at the padded edge (its size with padding, for count_include_pad), then to x. */
typedef struct window {
    int64_t h0, h1, w0, w1;
    float div;
} window;

static window window_of(const avg_state *st, int64_t oh, int64_t ow)
{
    const pool_geom *g = &st->g;
    window r;
    r.h0 = oh * g->sh - g->ph;
    r.w0 = ow * g->sw - g->pw;
    r.h1 = r.h0 + g->kh < g->ih + g->ph ? r.h0 + g->kh : g->ih + g->ph;
    r.w1 = r.w0 + g->kw < g->iw + g->pw ? r.w0 + g->kw : g->iw + g->pw;
    int64_t padded = (r.h1 - r.h0) * (r.w1 - r.w0);
    if (r.h0 < 0) r.h0 = 0;
    if (r.w0 < 0) r.w0 = 0;
    if (r.h1 > g->ih) r.h1 = g->ih;
    if (r.w1 > g->iw) r.w1 = g->iw;
    int64_t d = st->divisor             ? st->divisor
                : st->count_include_pad ? padded
                                        : (r.h1 - r.h0) * (r.w1 - r.w0);
    r.div = (float)d; /* PyTorch divides a float by the int64_t: the divisor as a float */
    return r;
}

static void avg_planes(void *ctx, int64_t lo, int64_t hi)
{
    const avg_job *j = ctx;
    const pool_geom *g = &j->st->g;
    for (int64_t p = lo; p < hi; p++) {
        const float *x = j->x + p * g->ih * g->iw;
        float *y = j->y + p * g->oh * g->ow;
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                window r = window_of(j->st, oh, ow);
                float sum = 0.0f;
                if (r.h0 >= r.h1 || r.w0 >= r.w1) {
                    y[oh * g->ow + ow] = 0.0f;
                    continue;
                }
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++) sum += x[h * g->iw + w];
                /* added to zeros, as PyTorch's output: a zero over a negative divisor is +0 */
                y[oh * g->ow + ow] = 0.0f + sum / r.div;
            }
    }
}

/* dx = zeros with g / d added to each element of its window, output by output */
static void avg_grad_planes(void *ctx, int64_t lo, int64_t hi)
{
    const avg_job *j = ctx;
    const pool_geom *g = &j->st->g;
    for (int64_t p = lo; p < hi; p++) {
        float *dx = j->dx + p * g->ih * g->iw;
        const float *gy = j->gy + p * g->oh * g->ow;
        memset(dx, 0, (size_t)(g->ih * g->iw) * sizeof *dx);
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                window r = window_of(j->st, oh, ow);
                float delta = gy[oh * g->ow + ow] / r.div;
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++) dx[h * g->iw + w] += delta;
            }
    }
}

static nb_status avg_pool_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    nb_shape s = nb__input_shape(n, 0);
    nb_tensor *dx = nb__new(nb__engine_fn(), s.ndim, s.dims);
    if (!dx) return NB_ENOMEM;
    avg_job j = {nb__state(n), NULL, nb__data(gy[0]), NULL, nb__data(dx)};
    run_planes(&j.st->g, avg_grad_planes, &j);
    return nb__grad_take(n, gx, 0, dx);
}

static const nb_op avg_pool_op = {"AvgPool2DBackward0", avg_pool_backward, 0, sizeof(avg_state), 0};

nb_tensor *nb_avg_pool2d(nb_tensor *x, nb_shape kernel_size, nb_shape stride, nb_shape padding,
                         bool ceil_mode, bool count_include_pad, int64_t divisor_override)
{
    static const char fn[] = "nb_avg_pool2d";
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    avg_state st = {.divisor = divisor_override, .count_include_pad = count_include_pad};
    if (pool_args(fn, x, kernel_size, stride, padding, NB_SHAPE(1), ceil_mode, true, &st.g) !=
        NB_OK)
        return NULL;
    nb_tensor *y = new_out(fn, x, &st.g);
    if (!y) return NULL;
    avg_job j = {&st, nb__data(x), NULL, nb__data(y), NULL};
    run_planes(&st.g, avg_planes, &j);
    nb_node *node;
    y = nb__finish(fn, &avg_pool_op, y, 1, &x, &node);
    if (node) *(avg_state *)nb__state(node) = st;
    return y;
}
