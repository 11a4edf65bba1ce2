/*
 * 2-D convolution by im2col: the input is unfolded into columns, a matrix with one row per
 * tap of the kernel (c, i, j) and one column per output position (n, oy, ox) of the whole
 * batch, holding the input value that tap meets there (0 in the padding), so that each
 * group's convolution is one sgemm, W_k·cols_k, through the BLAS layer and its thread pool.
 * A row of the columns is the input shifted by the tap: with a stride of 1, runs of the
 * input's rows copied whole. The product comes out as [O, N·oH·oW]; one pass puts each
 * sample's channels in [N, O, oH, oW] order, adding the bias. Backward: the output's gradient
 * in the product's order, dW_k = g_k·cols_kᵀ and dcols_k = W_kᵀ·g_k (a sgemm per group each),
 * dx = col2im(dcols), db = Σ g over N, oH, oW.
 *
 * The columns cost kH·kW times the input (C·kH·kW floats per output position, for the whole
 * batch); they are scratch from the caching allocator, freed at the end of the forward and
 * made again in the backward when the weight needs its gradient (the node saves the input,
 * not the columns). Every loop of its own goes by whole samples, and each sample's values are
 * computed in the same order whatever the cut, so the bits do not depend on the thread count;
 * nor do the products' (blas.c).
 */
#include <string.h>

#include "blas/blas.h"
#include "ops/internal.h"

/* The sizes of one convolution: input [N, C, H, W], weight [O, C/groups, kH, kW], output
 * [N, O, oH, oW]. */
typedef struct conv_geom {
    int64_t n, c, h, w;
    int64_t o, kh, kw;
    int64_t oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t groups;
} conv_geom;

/* the output positions of one sample, a row of the columns (C·kH·kW), a group's part of it */
static int64_t positions(const conv_geom *g)
{
    return g->oh * g->ow;
}
static int64_t row_len(const conv_geom *g)
{
    return g->c * g->kh * g->kw;
}
static int64_t group_len(const conv_geom *g)
{
    return g->c / g->groups * g->kh * g->kw;
}

/* ---- the loops by samples ------------------------------------------------------------------ */

typedef struct conv_loop {
    const conv_geom *g;
    const float *src, *bias;
    float *dst;
    bool acc; /* col2im: add into dst; regroup: into the output (with the bias) */
} conv_loop;

/* The output columns [*lo, *hi) of a row of ow whose input column ox·s + off lies in [0, w). */
static void valid_cols(int64_t ow, int64_t s, int64_t off, int64_t w, int64_t *lo, int64_t *hi)
{
    *lo = off >= 0 ? 0 : (-off - 1) / s + 1; /* ⌈−off / s⌉, as −off + s − 1 can overflow */
    *hi = off >= w ? 0 : (w - 1 - off) / s + 1;
    if (*hi > ow) *hi = ow;
    if (*lo > *hi) *lo = *hi;
}

/*
 * cols[(c·kH + i)·kW + j, n·L + oy·oW + ox] = x[n, c, oy·sH − pH + i·dH, ox·sW − pW + j·dW],
 * or 0 outside the input, for samples [lo, hi): each row of the columns holds one tap of the
 * kernel over every position, so that a stride of 1 copies runs of the input's rows.
 */
static void im2col_range(void *ctx, int64_t lo, int64_t hi)
{
    const conv_loop *l = ctx;
    const conv_geom *g = l->g;
    int64_t L = positions(g), M = g->n * L;
    for (int64_t n = lo; n < hi; n++) {
        for (int64_t c = 0; c < g->c; c++) {
            const float *xc = l->src + (n * g->c + c) * g->h * g->w;
            for (int64_t i = 0; i < g->kh; i++) {
                for (int64_t j = 0; j < g->kw; j++) {
                    float *d = l->dst + ((c * g->kh + i) * g->kw + j) * M + n * L;
                    int64_t off = j * g->dw - g->pw, x0, x1;
                    valid_cols(g->ow, g->sw, off, g->w, &x0, &x1);
                    for (int64_t oy = 0; oy < g->oh; oy++, d += g->ow) {
                        int64_t iy = oy * g->sh - g->ph + i * g->dh;
                        if (iy < 0 || iy >= g->h) {
                            memset(d, 0, (size_t)g->ow * sizeof *d);
                            continue;
                        }
                        const float *xr = xc + iy * g->w; /* its column ox·sW + off */
                        for (int64_t ox = 0; ox < x0; ox++) d[ox] = 0.0f;
                        if (g->sw == 1 && x1 > x0)
                            memcpy(d + x0, xr + x0 + off, (size_t)(x1 - x0) * sizeof *d);
                        else
                            for (int64_t ox = x0; ox < x1; ox++) d[ox] = xr[ox * g->sw + off];
                        for (int64_t ox = x1; ox < g->ow; ox++) d[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

/* dx[n] (+)= the columns' values added back where im2col took them, tap after tap, for
 * samples [lo, hi) */
static void col2im_range(void *ctx, int64_t lo, int64_t hi)
{
    const conv_loop *l = ctx;
    const conv_geom *g = l->g;
    int64_t L = positions(g), M = g->n * L;
    for (int64_t n = lo; n < hi; n++) {
        float *dn = l->dst + n * g->c * g->h * g->w;
        if (!l->acc) memset(dn, 0, (size_t)(g->c * g->h * g->w) * sizeof *dn);
        for (int64_t c = 0; c < g->c; c++) {
            float *dc = dn + c * g->h * g->w;
            for (int64_t i = 0; i < g->kh; i++) {
                for (int64_t j = 0; j < g->kw; j++) {
                    const float *s = l->src + ((c * g->kh + i) * g->kw + j) * M + n * L;
                    int64_t off = j * g->dw - g->pw, x0, x1;
                    valid_cols(g->ow, g->sw, off, g->w, &x0, &x1);
                    for (int64_t oy = 0; oy < g->oh; oy++, s += g->ow) {
                        int64_t iy = oy * g->sh - g->ph + i * g->dh;
                        if (iy < 0 || iy >= g->h) continue;
                        float *dr = dc + iy * g->w; /* its column ox·sW + off */
                        if (g->sw == 1)
                            for (int64_t ox = x0; ox < x1; ox++) dr[ox + off] += s[ox];
                        else
                            for (int64_t ox = x0; ox < x1; ox++) dr[ox * g->sw + off] += s[ox];
                    }
                }
            }
        }
    }
}

/* For samples [lo, hi): the product's [O, N·L] into the output's [N, O, L] with the bias
 * (acc), or the output's gradient [N, O, L] into [O, N·L] (runs of L either way). */
static void regroup_range(void *ctx, int64_t lo, int64_t hi)
{
    const conv_loop *l = ctx;
    int64_t L = positions(l->g), M = l->g->n * L, O = l->g->o;
    for (int64_t n = lo; n < hi; n++) {
        for (int64_t o = 0; o < O; o++) {
            if (!l->acc) {
                memcpy(l->dst + o * M + n * L, l->src + (n * O + o) * L, (size_t)L * sizeof(float));
                continue;
            }
            const float *t = l->src + o * M + n * L;
            float *y = l->dst + (n * O + o) * L;
            if (l->bias) {
                float b = l->bias[o];
                for (int64_t p = 0; p < L; p++) y[p] = t[p] + b;
            } else {
                memcpy(y, t, (size_t)L * sizeof(float));
            }
        }
    }
}

/* One loop over the samples of g, each sample of item_elems elements. */
static void by_samples(const conv_geom *g, int64_t item_elems, nb__range_fn fn, const float *src,
                       const float *bias, float *dst, bool acc)
{
    conv_loop l = {g, src, bias, dst, acc};
    if (g->n > 0 && item_elems > 0) nb__split(g->n, item_elems, fn, &l);
}

/* ---- backward ------------------------------------------------------------------------------ */

/* ConvolutionBackward0. Edges: input, weight, bias (empty when absent). Saved: the input (for
 * dW) and the weight (for dx). */
typedef struct conv_state {
    conv_geom g;
} conv_state;

enum { SLOT_INPUT, SLOT_WEIGHT };

static nb_status conv_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    const conv_geom *g = &((const conv_state *)nb__state(node))->g;
    bool need_x = nb__needs_grad(node, 0), need_w = nb__needs_grad(node, 1);
    nb_tensor *x = need_w ? nb__saved(node, SLOT_INPUT) : NULL;
    nb_tensor *w = need_x ? nb__saved(node, SLOT_WEIGHT) : NULL;
    if ((need_w && !x) || (need_x && !w)) return nb__last_code();
    int64_t L = positions(g), M = g->n * L, CK = row_len(g), K = group_len(g);
    int64_t O = g->o, Og = O / g->groups;
    const float *G = nb__data(gy[0]);
    float *t = NULL, *cols = NULL;
    nb_status rc = NB_OK;
    bool acc;
    if ((need_x || need_w) && M > 0) {
        t = nb__alloc((size_t)(M * O) * sizeof *t, NB__ALIGN);
        cols = nb__alloc((size_t)(M * CK) * sizeof *cols, NB__ALIGN);
        if (!t || !cols) {
            rc = nb__oom(nb__engine_fn());
            goto done;
        }
        by_samples(g, L * O, regroup_range, G, NULL, t, false);
    }
    if (need_w) {
        float *d = nb__grad_dst(node, gx, 1, &acc);
        if (!d) {
            rc = NB_ENOMEM;
            goto done;
        }
        if (M == 0 && !acc) memset(d, 0, (size_t)gx[1]->numel * sizeof *d);
        if (M > 0) by_samples(g, L * CK, im2col_range, nb__data(x), NULL, cols, false);
        for (int64_t k = 0; k < g->groups && M > 0; k++) /* dW_k = g_k·cols_kᵀ */
            nb__gemm(false, true, Og, K, M, 1.0f, t + k * Og * M, M, cols + k * K * M, M,
                     acc ? 1.0f : 0.0f, d + k * Og * K, K);
    }
    if (need_x) {
        float *d = nb__grad_dst(node, gx, 0, &acc);
        if (!d) {
            rc = NB_ENOMEM;
            goto done;
        }
        for (int64_t k = 0; k < g->groups && M > 0; k++) /* dcols_k = W_kᵀ·g_k */
            nb__gemm(true, false, K, M, Og, 1.0f, nb__data(w) + k * Og * K, K, t + k * Og * M, M,
                     0.0f, cols + k * K * M, M);
        if (M > 0)
            by_samples(g, L * CK, col2im_range, cols, NULL, d, acc);
        else if (!acc)
            memset(d, 0, (size_t)gx[0]->numel * sizeof *d);
    }
    if (nb__needs_grad(node, 2)) { /* db = Σ g over N, oH, oW */
        float *d = nb__grad_dst(node, gx, 2, &acc);
        if (!d) {
            rc = NB_ENOMEM;
            goto done;
        }
        nb_shape bs = NB_SHAPE(O, 1), gs = NB_SHAPE(g->n, O, L);
        nb__sum_to(d, &bs, acc, G, &gs, 1.0f);
    }
done:
    nb__free(t);
    nb__free(cols);
    return rc;
}

static const nb_op conv_op = {"ConvolutionBackward0", conv_backward, 2, sizeof(conv_state), 0};

/* ---- forward ------------------------------------------------------------------------------- */

bool nb__conv_pair(const char *fn, const char *name, const char *tail, nb_shape p, int64_t *v)
{
    if (p.ndim != 1 && p.ndim != 2) {
        char s[NB__SHAPE_STR];
        nb__error(NB_EINVAL, fn,
                  "expected %s to be a single integer value or a list of 2 values%s, but got "
                  "%s=%s",
                  name, tail, name, nb__shape_str(s, p.ndim, p.dims));
        return false;
    }
    v[0] = p.dims[0];
    v[1] = p.dims[p.ndim - 1];
    return true;
}

/* the op's int-or-pair parameter into *h, *w */
static bool pair(const char *fn, const char *name, nb_shape p, int64_t *h, int64_t *w)
{
    int64_t v[2];
    if (!nb__conv_pair(fn, name, " to match the convolution dimensions", p, v)) return false;
    *h = v[0];
    *w = v[1];
    return true;
}

/* *out = the output size along one dim, or NB_ESHAPE / NB_ERANGE recorded: in of the input
 * (padded by pad on each side), a kernel of k taps dil apart, stride s; *padded and *span the
 * padded input and the dilated kernel, for the message */
static nb_status out_size(int64_t in, int64_t pad, int64_t k, int64_t dil, int64_t s,
                          int64_t *padded, int64_t *span, int64_t *out)
{
    if (__builtin_mul_overflow(pad, 2, padded) || __builtin_add_overflow(*padded, in, padded) ||
        __builtin_mul_overflow(dil, k - 1, span) || __builtin_add_overflow(*span, 1, span))
        return NB_ERANGE;
    *out = *padded >= *span ? (*padded - *span) / s + 1 : -1;
    return *out < 0 ? NB_ESHAPE : NB_OK;
}

/* The geometry of conv2d's arguments, checked, with PyTorch's messages where it has them. */
static nb_status plan(const char *fn, const nb_tensor *x, const nb_tensor *wt, const nb_tensor *b,
                      nb_shape stride, nb_shape padding, nb_shape dilation, int64_t groups,
                      conv_geom *g)
{
    char s1[NB__SHAPE_STR], s2[NB__SHAPE_STR];
    if (x->ndim != 3 && x->ndim != 4)
        return nb__error(NB_ESHAPE, fn,
                         "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input "
                         "of size: %s",
                         nb__shape_str(s1, x->ndim, x->shape));
    if (!pair(fn, "stride", stride, &g->sh, &g->sw) ||
        !pair(fn, "padding", padding, &g->ph, &g->pw) ||
        !pair(fn, "dilation", dilation, &g->dh, &g->dw))
        return NB_EINVAL;
    const int64_t *ws = wt->shape;
    if (wt->ndim != 4)
        return nb__error(NB_ESHAPE, fn,
                         "expected a 4-D weight [out_channels, in_channels/groups, kH, kW], but "
                         "got weight of size %s",
                         nb__shape_str(s1, wt->ndim, ws));
    if (groups <= 0) return nb__error(NB_EINVAL, fn, "non-positive groups is not supported");
    if (g->ph < 0 || g->pw < 0)
        return nb__error(NB_EINVAL, fn, "negative padding is not supported");
    if (g->sh <= 0 || g->sw <= 0)
        return nb__error(NB_EINVAL, fn, "non-positive stride is not supported");
    if (g->dh <= 0 || g->dw <= 0)
        return nb__error(NB_EINVAL, fn, "non-positive dilation is not supported");
    nb__shape_str(s1, 4, ws);
    if (ws[0] < groups)
        return nb__error(NB_ESHAPE, fn,
                         "Given groups=%lld, expected weight to be at least %lld at dimension 0, "
                         "but got weight of size %s instead",
                         (long long)groups, (long long)groups, s1);
    if (ws[0] % groups != 0)
        return nb__error(NB_ESHAPE, fn,
                         "Given groups=%lld, expected weight to be divisible by %lld at dimension "
                         "0, but got weight of size %s instead",
                         (long long)groups, (long long)groups, s1);
    /* unbatched: one sample, as PyTorch (which unsqueezes it) prints it */
    int64_t dims[4] = {1, 0, 0, 0};
    memcpy(dims + 4 - x->ndim, x->shape, (size_t)x->ndim * sizeof *dims);
    g->n = dims[0], g->c = dims[1], g->h = dims[2], g->w = dims[3];
    int64_t channels;
    if (__builtin_mul_overflow(ws[1], groups, &channels) || channels != dims[1])
        return nb__error(NB_ESHAPE, fn,
                         "Given groups=%lld, weight of size %s, expected input%s to have %lld "
                         "channels, but got %lld channels instead",
                         (long long)groups, s1, nb__shape_str(s2, 4, dims), (long long)channels,
                         (long long)dims[1]);
    if (b && (b->ndim != 1 || b->shape[0] != ws[0]))
        return nb__error(NB_ESHAPE, fn,
                         "Given weight of size %s, expected bias to be 1-dimensional with %lld "
                         "elements, but got bias of size %s instead",
                         s1, (long long)ws[0], nb__shape_str(s2, b->ndim, b->shape));
    if (ws[1] == 0 || ws[2] == 0 || ws[3] == 0)
        return nb__error(NB_ESHAPE, fn,
                         "expected a weight with no dimension of size 0, but got weight of size %s",
                         s1);
    g->o = ws[0], g->kh = ws[2], g->kw = ws[3], g->groups = groups;
    int64_t pad_h, pad_w, span_h, span_w;
    nb_status rh = out_size(g->h, g->ph, g->kh, g->dh, g->sh, &pad_h, &span_h, &g->oh);
    nb_status rw = out_size(g->w, g->pw, g->kw, g->dw, g->sw, &pad_w, &span_w, &g->ow);
    if (rh == NB_ERANGE || rw == NB_ERANGE)
        return nb__error(NB_ERANGE, fn, "the padded input or the dilated kernel overflows");
    if (rh != NB_OK || rw != NB_OK)
        return nb__error(NB_ESHAPE, fn,
                         "Calculated padded input size per channel: (%lld x %lld). Kernel size: "
                         "(%lld x %lld). Kernel size can't be greater than actual input size",
                         (long long)pad_h, (long long)pad_w, (long long)span_h, (long long)span_w);
    /* the products: [N·oH·oW, C·kH·kW] columns times [C·kH·kW, O] */
    int64_t m = nb__size_mul(nb__size_mul(g->n, g->oh), g->ow);
    if ((m == 0 && g->n > 0 && g->oh > 0 && g->ow > 0) || !nb__blas_fits(m, row_len(g), g->o))
        return nb__error(NB_ERANGE, fn, "matrix sizes exceed the range of BLAS's int");
    return NB_OK;
}

nb_tensor *nb_conv2d(nb_tensor *input, nb_tensor *weight, nb_tensor *bias, nb_shape stride,
                     nb_shape padding, nb_shape dilation, int64_t groups)
{
    static const char fn[] = "nb_conv2d";
    if (!input || !weight) {
        nb__null(fn, input ? "weight" : "input");
        return NULL;
    }
    if (!bias && nb__pending()) return NULL; /* a failed optional input */
    conv_geom g;
    if (plan(fn, input, weight, bias, stride, padding, dilation, groups, &g) != NB_OK) return NULL;
    int64_t dims[4] = {g.n, g.o, g.oh, g.ow};
    int nd = input->ndim;
    nb_tensor *out = nb__new(fn, nd, dims + 4 - nd);
    if (!out) return NULL;
    int64_t L = positions(&g), M = g.n * L, CK = row_len(&g), K = group_len(&g), Og = g.o / groups;
    if (out->numel > 0) {
        /* M·CK fits int64_t: both fit BLAS's int */
        float *cols = nb__alloc((size_t)(M * CK) * sizeof *cols, NB__ALIGN);
        float *t = nb__alloc((size_t)(M * g.o) * sizeof *t, NB__ALIGN);
        if (!cols || !t) {
            nb__free(cols);
            nb__free(t);
            nb__drop(out);
            nb__oom(fn);
            return NULL;
        }
        by_samples(&g, L * CK, im2col_range, nb__data(input), NULL, cols, false);
        for (int64_t k = 0; k < groups; k++) /* t_k = W_k·cols_k: [O/groups, N·oH·oW] */
            nb__gemm(false, false, Og, M, K, 1.0f, nb__data(weight) + k * Og * K, K,
                     cols + k * K * M, M, 0.0f, t + k * Og * M, M);
        nb__free(cols);
        by_samples(&g, L * g.o, regroup_range, t, bias ? nb__data(bias) : NULL, nb__data(out),
                   true);
        nb__free(t);
    }
    nb_node *node;
    out = nb__finish(fn, &conv_op, out, 3, (nb_tensor *[]){input, weight, bias}, &node);
    if (node) {
        ((conv_state *)nb__state(node))->g = g;
        if ((nb__needs_grad(node, 1) && nb__save(fn, node, SLOT_INPUT, input) != NB_OK) ||
            (nb__needs_grad(node, 0) && nb__save(fn, node, SLOT_WEIGHT, weight) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}
