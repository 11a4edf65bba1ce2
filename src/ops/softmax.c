/*
 * softmax and log_softmax along a dim, stable by the max-shift: x is read in place as
 * [outer, size, inner] slices (the slice's elements inner apart) and each output saves itself
 * for its backward. Slices of NB__PARALLEL_MIN elements or more in all run on the pool in tasks
 * of whole slices (along the last dim) or of blocks of up to 64 slices side by side (along
 * another): each output depends on its own slice alone, so the bits are the same at any
 * thread count.
 */
#include <math.h>

#include "ops/internal.h"

/* SoftmaxBackward0 / LogSoftmaxBackward0: where the slices lie. Saved: the output. */
typedef struct softmax_state {
    int64_t outer, size, inner;
    bool last; /* along the last dim: PyTorch's vectorised kernels, whose sums nabla follows */
} softmax_state;

/* The largest element of a slice, NaN when it holds one. */
static float slice_max(const float *x, int64_t n, int64_t s)
{
    float m = x[0];
    for (int64_t k = 1; k < n; k++) m = (x[k * s] > m || x[k * s] != x[k * s]) ? x[k * s] : m;
    return m;
}

/*
 * Along a dim other than the last, slices lie inner apart: w ≤ COLS of them side by side
 * (columns j of x [n, s] from the block's first), each computed as it would be alone: m its
 * max, e = e^(x − m), S = Σ e one element after the other (PyTorch's order along a dim other
 * than the last), softmax y = e / S, log_softmax y = (x − m) − log S. The loops go row by row
 * across the columns, along contiguous memory, so they vectorise. Finite for any finite x; a
 * slice of -inf only (or with +inf or NaN) gives NaN, as PyTorch's.
 */
enum { COLS = 64 };

NB__CLONES static void softmax_cols(float *y, const float *x, int64_t n, int64_t s, int64_t w,
                                    bool log)
{
    float m[COLS], sum[COLS];
    for (int64_t j = 0; j < w; j++) m[j] = x[j];
    for (int64_t k = 1; k < n; k++)
        for (int64_t j = 0; j < w; j++) { /* slice_max's choice, as a select */
            float v = x[k * s + j];
            m[j] = nb__pick(v > m[j] || v != v, v, m[j]);
        }
    for (int64_t j = 0; j < w; j++) sum[j] = 0.0f;
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < w; j++) {
            y[k * s + j] = nb__expf(x[k * s + j] - m[j]);
            sum[j] += y[k * s + j];
        }
    if (log) {
        for (int64_t j = 0; j < w; j++) sum[j] = logf(sum[j]);
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < w; j++) y[k * s + j] = (x[k * s + j] - m[j]) - sum[j];
    } else {
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < w; j++) y[k * s + j] /= sum[j];
    }
}

/*
 * Along the last dim, where slices are contiguous, PyTorch's vectorised kernels: the sums in
 * 8 lanes (element k into lane k mod 8, its vector loop) reduced as a tree, and softmax
 * y = e·(1 / S). Summed so, nabla's softmax has PyTorch's bits wherever its exp does. Loops
 * that vectorise (NB__CLONES); exp and log stay calls, one per element.
 *
 * The max in 16 lanes of the greater value. It may differ from slice_max's in two ways that
 * softmax and log_softmax do not show. Two zeros of opposite signs as the max: the lanes may
 * pick the other one than the loop's first, and x − m changes only for x = ±0, where
 * e^(±0) = 1 and, with both zeros in the sum (S ≥ 2), (±0) − log S = −log S. A NaN in the
 * slice: the lanes pass over it, and its e^(NaN − m) makes S, and so every output, NaN, as
 * the loop's NaN max does (which NaN is the compiler's choice of operand order either way).
 */
static inline float contiguous_max(const float *x, int64_t n)
{
    bool nan;
    return n < 32 ? slice_max(x, n, 1) : nb__lane_extreme(x, n, false, &nan);
}

/* Σ v (or Σ v·w, each product fused into the sum, when w is not NULL) over a contiguous
 * slice, in 8 lanes: whole blocks of 8, then the tail, so element k goes into lane k mod 8 in
 * order */
static inline float contiguous_sum(const float *v, const float *w, int64_t n)
{
    float lane[8] = {0};
    int64_t k = 0;
    if (w)
        for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; j++) lane[j] = fmaf(v[k + j], w[k + j], lane[j]);
    else
        for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; j++) lane[j] = lane[j] + v[k + j];
    for (int j = 0; k < n; k++, j++) lane[j] = w ? fmaf(v[k], w[k], lane[j]) : lane[j] + v[k];
    for (int j = 0; j < 4; j++) lane[j] += lane[j + 4];
    return (lane[0] + lane[2]) + (lane[1] + lane[3]);
}

NB__CLONES static void softmax_last(float *y, const float *x, int64_t n, bool log)
{
    float m = contiguous_max(x, n);
    for (int64_t k = 0; k < n; k++) y[k] = nb__expf(x[k] - m);
    float sum = contiguous_sum(y, NULL, n);
    if (log) {
        float l = logf(sum);
        for (int64_t k = 0; k < n; k++) y[k] = (x[k] - m) - l;
    } else {
        float r = 1.0f / sum;
        for (int64_t k = 0; k < n; k++) y[k] *= r;
    }
}

NB__CLONES static void softmax_grad_last(float *d, const float *g, const float *y, int64_t n,
                                         bool log, bool acc)
{
    float t = contiguous_sum(g, log ? NULL : y, n);
    if (log) {
        for (int64_t k = 0; k < n; k++) {
            float v = fmaf(-nb__expf(y[k]), t, g[k]);
            d[k] = acc ? d[k] + v : v;
        }
    } else if (acc) {
        for (int64_t k = 0; k < n; k++) d[k] = d[k] + (g[k] - t) * y[k];
    } else {
        for (int64_t k = 0; k < n; k++) d[k] = (g[k] - t) * y[k];
    }
}

/*
 * The gradient of w ≤ COLS slices side by side, as softmax_cols takes them, added into d when
 * acc: softmax dx = (g − Σ g·y)·y, log_softmax dx = g − e^y·Σ g (PyTorch's
 * _softmax_backward_data, whose compiled loops fuse the products into the sums: fmaf here),
 * each sum one element after the other.
 */
NB__CLONES static void softmax_grad_cols(float *d, const float *g, const float *y, int64_t n,
                                         int64_t s, int64_t w, bool log, bool acc)
{
    float t[COLS];
    for (int64_t j = 0; j < w; j++) t[j] = 0.0f;
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < w; j++)
            t[j] = log ? t[j] + g[k * s + j] : fmaf(g[k * s + j], y[k * s + j], t[j]);
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < w; j++) {
            int64_t e = k * s + j;
            float v = log ? fmaf(-nb__expf(y[e]), t[j], g[e]) : (g[e] - t[j]) * y[e];
            d[e] = acc ? d[e] + v : v;
        }
}

/* The forward (g NULL) or the backward: y from x, or d from g and y. */
typedef struct softmax_job {
    const softmax_state *st;
    float *out;
    const float *in, *g;
    bool log, acc;
} softmax_job;

/* The blocks of columns of one outer block: 1 along the last dim (a slice is contiguous),
 * else inner / COLS rounded up. */
static int64_t col_blocks(const softmax_state *st)
{
    return st->last ? 1 : (st->inner + COLS - 1) / COLS;
}

/* units [u0, u1): unit u is block u mod col_blocks of outer block u / col_blocks */
static void softmax_units(void *ctx, int64_t u0, int64_t u1)
{
    const softmax_job *j = ctx;
    const softmax_state *st = j->st;
    const int64_t nb = col_blocks(st);
    for (int64_t u = u0; u < u1; u++) {
        int64_t o = u / nb, i = (u % nb) * COLS;
        int64_t at = o * st->size * st->inner + i, w = st->inner - i < COLS ? st->inner - i : COLS;
        if (j->g && st->last)
            softmax_grad_last(j->out + at, j->g + at, j->in + at, st->size, j->log, j->acc);
        else if (j->g)
            softmax_grad_cols(j->out + at, j->g + at, j->in + at, st->size, st->inner, w, j->log,
                              j->acc);
        else if (st->last)
            softmax_last(j->out + at, j->in + at, st->size, j->log);
        else
            softmax_cols(j->out + at, j->in + at, st->size, st->inner, w, j->log);
    }
}

/* j over every unit: a slice (the last dim) or a block of at most COLS slices side by side */
static void softmax_run(softmax_job *j)
{
    const softmax_state *st = j->st;
    const int64_t nb = col_blocks(st);
    nb__split(st->outer * nb, st->size * (st->inner < COLS ? st->inner : COLS), softmax_units, j);
}

void nb__log_softmax_rows(const float *x, float *lp, int64_t rows, int64_t c)
{
    if (rows == 0 || c == 0) return;
    softmax_state st = {rows, c, 1, true};
    softmax_job j = {&st, lp, x, NULL, true, false};
    softmax_run(&j);
}

static nb_status softmax_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx);
static const nb_op softmax_op = {"SoftmaxBackward0", softmax_backward, 1, sizeof(softmax_state), 0};
static const nb_op log_softmax_op = {"LogSoftmaxBackward0", softmax_backward, 1,
                                     sizeof(softmax_state), 0};

static nb_status softmax_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const softmax_state *st = nb__state(n);
    nb_tensor *y = nb__saved(n, 0);
    if (!y) return nb__last_code();
    bool acc, log = n->op == &log_softmax_op;
    float *d = nb__grad_dst(n, gx, 0, &acc);
    if (!d) return NB_ENOMEM;
    if (y->numel == 0) return NB_OK; /* [0, 2^62] along dim 0: 2^62 empty slices, none visited */
    softmax_job j = {st, d, nb__data(y), nb__data(gy[0]), log, acc};
    softmax_run(&j);
    return NB_OK;
}

static nb_tensor *softmax(const char *fn, const nb_op *op, nb_tensor *x, int dim)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    int d = nb__wrap_dim(dim, x->ndim);
    int hi = x->ndim > 0 ? x->ndim - 1 : 0;
    if (d < 0) {
        nb__dim_error(fn, dim, -hi - 1, hi);
        return NULL;
    }
    softmax_state st = {1, x->ndim ? x->shape[d] : 1, 1, d == x->ndim - 1 || x->ndim == 0};
    for (int i = 0; i < x->ndim; i++) {
        if (i < d) st.outer = nb__size_mul(st.outer, x->shape[i]);
        if (i > d) st.inner = nb__size_mul(st.inner, x->shape[i]);
    }
    nb_tensor *y = nb__new(fn, x->ndim, x->shape);
    if (!y) return NULL;
    softmax_job j = {&st, nb__data(y), nb__data(x), NULL, op == &log_softmax_op, false};
    if (x->numel) softmax_run(&j);
    nb_node *n;
    y = nb__finish(fn, op, y, 1, &x, &n);
    if (n) {
        *(softmax_state *)nb__state(n) = st;
        if (nb__save(fn, n, 0, y) != NB_OK) {
            nb__drop(y);
            return NULL;
        }
    }
    return y;
}

nb_tensor *nb_softmax(nb_tensor *x, int dim)
{
    return softmax("nb_softmax", &softmax_op, x, dim);
}

nb_tensor *nb_log_softmax(nb_tensor *x, int dim)
{
    return softmax("nb_log_softmax", &log_softmax_op, x, dim);
}
