/*
 * layer_norm with PyTorch 1.13's CPU numerics (layer_norm_kernel.cpp, moments_utils.h): each
 * row's mean and variance by Welford's algorithm in 8 float lanes (AVX2's Vectorized<float>)
 * over chunks of 16 vectors combined in a cascade, then the lanes and the scalar tail merged
 * in order; rstd = 1 / sqrt(var + eps) and y = (x·rstd − rstd·mean)·w + b with the two
 * multiply-adds fused, as PyTorch's AVX2 build computes them. The forward then gives
 * PyTorch's bits (checked against torch for row sizes 1 to 5000).
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"

#define LANES 8  /* Vectorized<float>::size() in PyTorch's AVX2 kernels */
#define CHUNK 16 /* moments_utils.h's kChunkSize */
#define DEPTH 64

static int64_t ceil_log2(int64_t x)
{
    int64_t r = 1;
    while (x > 2 && ((int64_t)1 << r) < x) r++;
    return r;
}

/* Welford's merge of (m0_add, m1_add, m2_add) into (m0, m1, m2), PyTorch's AddMoments. */
static void add_moments(int64_t m0_add, float m1_add, float m2_add, int64_t *m0, float *m1,
                        float *m2)
{
    int64_t n = *m0 + m0_add;
    float c = n == 0 ? 0.0f : (float)m0_add / (float)n;
    float delta = m1_add - *m1;
    *m1 += c * delta;
    *m2 += m2_add + delta * delta * c * (float)*m0;
    *m0 = n;
}

/* The same for LANES lanes that share their counts (AddMomentsVec). */
static void add_moments_vec(int64_t m0_add, const float *m1_add, const float *m2_add, int64_t *m0,
                            float *m1, float *m2)
{
    int64_t n = *m0 + m0_add;
    float c = n == 0 ? 0.0f : (float)m0_add / (float)n;
    for (int l = 0; l < LANES; l++) {
        float delta = m1_add[l] - m1[l];
        m1[l] += c * delta;
        m2[l] += m2_add[l] + delta * delta * c * (float)*m0;
    }
    *m0 = n;
}

/* Mean and (biased) variance of x[0..n-1], PyTorch's RowwiseMoments. */
static void row_moments(const float *x, int64_t n, float *mean, float *var)
{
    int64_t nv = n / LANES, chunks = (nv + CHUNK - 1) / CHUNK, depth = ceil_log2(chunks);
    int64_t m0s[DEPTH] = {0};
    float m1s[DEPTH][LANES] = {{0}}, m2s[DEPTH][LANES] = {{0}};
    for (int64_t i = 0; i < chunks; i++) {
        const float *xc = x + i * CHUNK * LANES;
        int64_t m0 = nv - i * CHUNK < CHUNK ? nv - i * CHUNK : CHUNK;
        float m1[LANES] = {0}, m2[LANES] = {0};
        for (int64_t j = 0; j < m0; j++) {
            float c = 1.0f / (float)(j + 1);
            for (int l = 0; l < LANES; l++) {
                float v = xc[j * LANES + l], delta = v - m1[l];
                m1[l] += delta * c;
                m2[l] += delta * (v - m1[l]);
            }
        }
        add_moments_vec(m0, m1, m2, &m0s[0], m1s[0], m2s[0]);
        /* the cascade: a full pair of blocks at one level moves up to the next */
        for (int64_t j = 1, mask = i + 1; j < depth && (mask & 1) == 0; j++, mask >>= 1) {
            add_moments_vec(m0s[j - 1], m1s[j - 1], m2s[j - 1], &m0s[j], m1s[j], m2s[j]);
            m0s[j - 1] = 0;
            memset(m1s[j - 1], 0, sizeof m1s[j - 1]);
            memset(m2s[j - 1], 0, sizeof m2s[j - 1]);
        }
    }
    for (int64_t j = 1; j < depth; j++)
        add_moments_vec(m0s[j], m1s[j], m2s[j], &m0s[0], m1s[0], m2s[0]);
    int64_t m0 = 0;
    float m1 = 0.0f, m2 = 0.0f;
    for (int64_t i = nv * LANES; i < n; i++) {
        float delta = x[i] - m1;
        ++m0;
        m1 += delta / (float)m0;
        m2 += delta * (x[i] - m1);
    }
    for (int l = 0; l < LANES; l++) add_moments(nv, m1s[0][l], m2s[0][l], &m0, &m1, &m2);
    *mean = m1;
    *var = m2 / (float)n;
}

/*
 * NativeLayerNormBackward0. Edges: x, weight, bias. Saved: x, weight (when given), and the
 * rows' statistics [2, rows] (means, then rstds). State: the row size N and the row count.
 */
typedef struct ln_state {
    int64_t n, rows;
} ln_state;

/* The forward of rows rows of n: y, and each row's mean and rstd. In CPU-specific copies:
 * the multiply-adds are fmaf, a call in the baseline code. */
NB__CLONES static void ln_rows(const float *X, const float *W, const float *B, float *Y,
                               float *mean, float *rstd, int64_t rows, int64_t n, float e)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *xi = X + i * n;
        float *yi = Y + i * n, mu, var;
        row_moments(xi, n, &mu, &var);
        float a = 1.0f / sqrtf(var + e), b = -a * mu;
        if (W && B)
            for (int64_t j = 0; j < n; j++) yi[j] = fmaf(fmaf(xi[j], a, b), W[j], B[j]);
        else
            for (int64_t j = 0; j < n; j++)
                yi[j] = fmaf(fmaf(xi[j], a, b), W ? W[j] : 1.0f, B ? B[j] : 0.0f);
        mean[i] = mu;
        rstd[i] = a;
    }
}

enum { LN_X, LN_WEIGHT, LN_STATS };

/*
 * With a = rstd, x̂ = a·(x − mean): dw = Σ_rows g·x̂, db = Σ_rows g, and per row
 * dx = a·g·w + b'·x + c, b' = (Σ g·w·mean − Σ g·w·x)·a³/N, c = −b'·mean − Σ g·w·a/N
 * (PyTorch's layer_norm_backward_frame).
 */
static nb_status ln_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    const ln_state *st = nb__state(node);
    bool need_x = nb__needs_grad(node, 0), need_w = nb__needs_grad(node, 1);
    nb_tensor *xt = NULL, *stats = NULL, *wt = NULL;
    if (need_x || need_w) { /* bias alone needs only g */
        if (!(xt = nb__saved(node, LN_X)) || !(stats = nb__saved(node, LN_STATS)))
            return nb__last_code();
        if (nb__has_saved(node, LN_WEIGHT) && !(wt = nb__saved(node, LN_WEIGHT)))
            return nb__last_code();
    }
    int64_t n = st->n, rows = st->rows;
    const float *X = xt ? nb__data(xt) : NULL, *G = nb__data(gy[0]), *W = wt ? nb__data(wt) : NULL;
    const float *mean = stats ? nb__data(stats) : NULL, *rstd = mean ? mean + rows : NULL;
    bool acc;
    if (need_w || nb__needs_grad(node, 2)) {
        float *dw = NULL, *db = NULL;
        if (need_w) {
            if (!(dw = nb__grad_dst(node, gx, 1, &acc))) return NB_ENOMEM;
            if (!acc) memset(dw, 0, (size_t)n * sizeof *dw);
        }
        if (nb__needs_grad(node, 2)) {
            if (!(db = nb__grad_dst(node, gx, 2, &acc))) return NB_ENOMEM;
            if (!acc) memset(db, 0, (size_t)n * sizeof *db);
        }
        for (int64_t i = 0; i < rows; i++) {
            const float *g = G + i * n;
            if (dw) {
                const float *x = X + i * n;
                float a = rstd[i], b = -a * mean[i];
                for (int64_t j = 0; j < n; j++) dw[j] += g[j] * (a * x[j] + b);
            }
            if (db)
                for (int64_t j = 0; j < n; j++) db[j] += g[j];
        }
    }
    if (need_x) {
        float *d = nb__grad_dst(node, gx, 0, &acc);
        if (!d) return NB_ENOMEM;
        float scale = 1.0f / (float)n;
        for (int64_t i = 0; i < rows; i++) {
            const float *g = G + i * n, *x = X + i * n;
            float *di = d + i * n, ds = 0.0f, dbs = 0.0f;
            for (int64_t j = 0; j < n; j++) {
                float gw = W ? g[j] * W[j] : g[j];
                ds += gw * x[j];
                dbs += gw;
            }
            float a = rstd[i], b = (dbs * mean[i] - ds) * a * a * a * scale;
            float c = -b * mean[i] - dbs * a * scale;
            for (int64_t j = 0; j < n; j++) {
                float v = a * (W ? g[j] * W[j] : g[j]) + b * x[j] + c;
                di[j] = acc ? di[j] + v : v;
            }
        }
    }
    return NB_OK;
}

static const nb_op ln_op = {"NativeLayerNormBackward0", ln_backward, 3, sizeof(ln_state), 0};

/* weight / bias (or NULL) must have the normalized shape. */
static nb_status check_affine(const char *fn, const char *what, const nb_tensor *t,
                              const nb_shape *ns)
{
    if (!t) return NB_OK;
    nb_shape ts = nb__size(t);
    if (nb__shape_eq(&ts, ns)) return NB_OK;
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
    return nb__error(NB_ESHAPE, fn,
                     "Expected %s to be of same shape as normalized_shape, but got %s of shape %s "
                     "and normalized_shape = %s",
                     what, what, nb__shape_str(a, ts.ndim, ts.dims),
                     nb__shape_str(b, ns->ndim, ns->dims));
}

static nb_status check_layer_norm(const char *fn, const nb_tensor *x, const nb_shape *ns,
                                  const nb_tensor *weight, const nb_tensor *bias)
{
    if (ns->ndim < 1 || ns->ndim > NB_MAX_DIMS)
        return nb__error(NB_ESHAPE, fn,
                         "Expected normalized_shape to be at least 1-dimensional, i.e., "
                         "containing at least one element, but got %d dims",
                         ns->ndim);
    bool fits = ns->ndim <= x->ndim;
    for (int i = 0; fits && i < ns->ndim; i++)
        fits = ns->dims[i] == x->shape[x->ndim - ns->ndim + i];
    if (!fits) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR], c[NB__SHAPE_STR];
        nb__shape_str(a, ns->ndim, ns->dims);
        return nb__error(NB_ESHAPE, fn,
                         "Given normalized_shape=%s, expected input with shape [*, %s, but got "
                         "input of size%s",
                         a, nb__shape_str(b, ns->ndim, ns->dims) + 1,
                         nb__shape_str(c, x->ndim, x->shape));
    }
    if (check_affine(fn, "weight", weight, ns) != NB_OK) return NB_ESHAPE;
    return check_affine(fn, "bias", bias, ns);
}

nb_tensor *nb_layer_norm(nb_tensor *x, nb_shape normalized_shape, nb_tensor *weight,
                         nb_tensor *bias, double eps)
{
    static const char fn[] = "nb_layer_norm";
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    if ((!weight || !bias) && nb__pending()) return NULL; /* a failed optional input */
    if (check_layer_norm(fn, x, &normalized_shape, weight, bias) != NB_OK) return NULL;
    int64_t n = 1;
    for (int i = 0; i < normalized_shape.ndim; i++) n = nb__size_mul(n, normalized_shape.dims[i]);
    int64_t rows = n > 0 ? x->numel / n : 0;
    if (n == 0)
        for (int i = 0; i < x->ndim - normalized_shape.ndim; i++)
            rows = nb__size_mul(rows, x->shape[i]);
    nb_tensor *out = nb__new(fn, x->ndim, x->shape), *stats = NULL;
    if (!out || !(stats = nb__new(fn, 2, (int64_t[]){2, rows}))) {
        nb__drop(out);
        return NULL;
    }
    const float *X = nb__data(x), *W = weight ? nb__data(weight) : NULL;
    const float *B = bias ? nb__data(bias) : NULL;
    float *Y = nb__data(out), *mean = nb__data(stats), *rstd = mean + rows, e = (float)eps;
    ln_rows(X, W, B, Y, mean, rstd, rows, n, e);
    nb_node *node;
    out = nb__finish(fn, &ln_op, out, 3, (nb_tensor *[]){x, weight, bias}, &node);
    if (node) {
        *(ln_state *)nb__state(node) = (ln_state){n, rows};
        bool dx = nb__needs_grad(node, 0), dw = nb__needs_grad(node, 1);
        if (((dx || dw) && nb__save(fn, node, LN_X, x) != NB_OK) ||
            (dx && weight && nb__save(fn, node, LN_WEIGHT, weight) != NB_OK) ||
            ((dx || dw) && nb__save(fn, node, LN_STATS, stats) != NB_OK)) {
            nb__drop(out);
            out = NULL;
        }
    }
    nb__drop(stats);
    return out;
}
