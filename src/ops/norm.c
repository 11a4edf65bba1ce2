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

/* The same for LANES lanes that share their counts (AddMomentsVec), lane by lane as
 * add_moments. A macro: a function taking vectors has an ABI that depends on the copy. */
#define ADD_MOMENTS_VEC(m0_add, m1_add, m2_add, m0, m1, m2)                                        \
    do {                                                                                           \
        int64_t n_ = (m0) + (m0_add);                                                              \
        float c_ = n_ == 0 ? 0.0f : (float)(m0_add) / (float)n_;                                   \
        nb__f8 delta_ = (m1_add) - (m1);                                                           \
        (m1) += c_ * delta_;                                                                       \
        (m2) += (m2_add) + delta_ * delta_ * c_ * (float)(m0);                                     \
        (m0) = n_;                                                                                 \
    } while (0)

/* Mean and (biased) variance of x[0..n-1], PyTorch's RowwiseMoments: each lane's operations
 * in its order, in vectors of LANES (inlined into the CPU-specific copies of its callers;
 * without contraction, the bits are the same in each). */
static inline __attribute__((always_inline)) void row_moments(const float *x, int64_t n,
                                                              float *mean, float *var)
{
    int64_t nv = n / LANES, chunks = (nv + CHUNK - 1) / CHUNK, depth = ceil_log2(chunks);
    int64_t m0s[DEPTH];
    nb__f8 m1s[DEPTH], m2s[DEPTH];
    for (int64_t j = 0; j < depth; j++) {
        m0s[j] = 0;
        m1s[j] = m2s[j] = (nb__f8){0};
    }
    for (int64_t i = 0; i < chunks; i++) {
        const float *xc = x + i * CHUNK * LANES;
        int64_t m0 = nv - i * CHUNK < CHUNK ? nv - i * CHUNK : CHUNK;
        nb__f8 m1 = {0}, m2 = {0}, v;
        for (int64_t j = 0; j < m0; j++) {
            float c = 1.0f / (float)(j + 1);
            NB__LOAD8(v, xc + j * LANES);
            nb__f8 delta = v - m1;
            m1 += delta * c;
            m2 += delta * (v - m1);
        }
        ADD_MOMENTS_VEC(m0, m1, m2, m0s[0], m1s[0], m2s[0]);
        /* the cascade: a full pair of blocks at one level moves up to the next */
        for (int64_t j = 1, mask = i + 1; j < depth && (mask & 1) == 0; j++, mask >>= 1) {
            ADD_MOMENTS_VEC(m0s[j - 1], m1s[j - 1], m2s[j - 1], m0s[j], m1s[j], m2s[j]);
            m0s[j - 1] = 0;
            m1s[j - 1] = m2s[j - 1] = (nb__f8){0};
        }
    }
    for (int64_t j = 1; j < depth; j++)
        ADD_MOMENTS_VEC(m0s[j], m1s[j], m2s[j], m0s[0], m1s[0], m2s[0]);
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

/* The forward of rows of n: y, and each row's mean and rstd. */
typedef struct ln_fwd {
    const float *X, *W, *B;
    float *Y, *mean, *rstd;
    int64_t n;
    float e;
} ln_fwd;

/* rows [lo, hi). In CPU-specific copies: the multiply-adds are fmaf, a call in the baseline
 * code. */
NB__CLONES static void ln_rows(void *ctx, int64_t lo, int64_t hi)
{
    const ln_fwd *c = ctx;
    const float *const W = c->W, *const B = c->B;
    const int64_t n = c->n;
    for (int64_t i = lo; i < hi; i++) {
        const float *xi = c->X + i * n;
        float *yi = c->Y + i * n, mu, var;
        row_moments(xi, n, &mu, &var);
        float a = 1.0f / sqrtf(var + c->e), b = -a * mu;
        if (W && B)
            for (int64_t j = 0; j < n; j++) yi[j] = fmaf(fmaf(xi[j], a, b), W[j], B[j]);
        else
            for (int64_t j = 0; j < n; j++)
                yi[j] = fmaf(fmaf(xi[j], a, b), W ? W[j] : 1.0f, B ? B[j] : 0.0f);
        c->mean[i] = mu;
        c->rstd[i] = a;
    }
}

enum { LN_X, LN_WEIGHT, LN_STATS };

/* The backward's operands: g [rows, n], x, the weight (or NULL), each row's mean and rstd;
 * the gradients to write (or NULL) and whether they accumulate. */
typedef struct ln_bwd {
    const float *G, *X, *W, *mean, *rstd;
    float *dx, *dw, *db;
    int64_t n, rows;
    bool acc_x, acc_w, acc_b;
} ln_bwd;

/* Σ g·x·w and Σ g·w over a row as PyTorch's vec::map3_reduce_all / map2_reduce_all (Σ g·x
 * and Σ g without a weight: map2_reduce_all / reduce_all): rows shorter than LN_SUMS added
 * element after element; longer ones in LN_SUMS lanes (element j in lane j mod LN_SUMS) that
 * start from the first LN_SUMS products and take each further product, the tail's included,
 * with a fused multiply-add (GCC contracts PyTorch's acc + p·q), then the lanes added as
 * AVX2's vec_reduce_all shuffles them (TREE8). Checked bit for bit against torch with one
 * thread for rows of 1 to 257. */
#define LN_SUMS 8

/* the lanes of an nb__f8 added as vec_reduce_all does: halves, then pairs, then neighbours
 * (a macro: see nb__f8) */
#define TREE8(v) ((((v)[0] + (v)[4]) + ((v)[2] + (v)[6])) + (((v)[1] + (v)[5]) + ((v)[3] + (v)[7])))

/* dx of rows [lo, hi): each row's own, so the same bits at any cut. The multiply-adds that
 * PyTorch's AVX2 build fuses are fmaf (a call in the baseline copy), the others not. */
NB__CLONES static void ln_dx_rows(void *ctx, int64_t lo, int64_t hi)
{
    const ln_bwd *c = ctx;
    const float *const W = c->W;
    const int64_t n = c->n, nv = n / LN_SUMS * LN_SUMS;
    const float scale = 1.0f / (float)n;
    for (int64_t i = lo; i < hi; i++) {
        const float *g = c->G + i * n, *x = c->X + i * n;
        /* -0 is the sums' identity: fmaf(p, q, -0) rounds p·q, as PyTorch's first vector */
        float *di = c->dx + i * n, s = -0.0f, sb = -0.0f;
        if (n < LN_SUMS) {
            for (int64_t j = 0; j < n; j++) {
                s += W ? g[j] * x[j] * W[j] : g[j] * x[j];
                sb += W ? g[j] * W[j] : g[j];
            }
        } else {
            nb__f8 ds, dbs;
            for (int l = 0; l < LN_SUMS; l++) ds[l] = dbs[l] = -0.0f;
            /* whole vectors, then the tail into the first lanes (m of them) */
            for (int64_t j = 0; j < n; j += LN_SUMS) {
                const int m = j < nv ? LN_SUMS : (int)(n - j);
                if (W && m == LN_SUMS)
                    for (int l = 0; l < LN_SUMS; l++) {
                        ds[l] = fmaf(g[j + l] * x[j + l], W[j + l], ds[l]);
                        dbs[l] = fmaf(g[j + l], W[j + l], dbs[l]);
                    }
                else if (m == LN_SUMS)
                    for (int l = 0; l < LN_SUMS; l++) {
                        ds[l] = fmaf(g[j + l], x[j + l], ds[l]);
                        dbs[l] += g[j + l];
                    }
                else
                    for (int l = 0; l < m; l++) {
                        ds[l] = W ? fmaf(g[j + l] * x[j + l], W[j + l], ds[l])
                                  : fmaf(g[j + l], x[j + l], ds[l]);
                        dbs[l] = W ? fmaf(g[j + l], W[j + l], dbs[l]) : dbs[l] + g[j + l];
                    }
            }
            s = TREE8(ds);
            sb = TREE8(dbs);
        }
        const float a = c->rstd[i], mu = c->mean[i];
        const float b = fmaf(sb, mu, -s) * a * a * a * scale;
        const float cc = fmaf(-b, mu, -(sb * a * scale));
        if (W && c->acc_x)
            for (int64_t j = 0; j < n; j++) di[j] += fmaf(b, x[j], a * g[j] * W[j]) + cc;
        else if (W)
            for (int64_t j = 0; j < n; j++) di[j] = fmaf(b, x[j], a * g[j] * W[j]) + cc;
        else if (c->acc_x)
            for (int64_t j = 0; j < n; j++) di[j] += fmaf(b, x[j], a * g[j]) + cc;
        else
            for (int64_t j = 0; j < n; j++) di[j] = fmaf(b, x[j], a * g[j]) + cc;
    }
}

/* dw and db at columns [lo, hi): each column added row after row, the same at any cut; dw's
 * terms g·(a·x + b) with PyTorch's two fused multiply-adds */
NB__CLONES static void ln_dwb_cols(void *ctx, int64_t lo, int64_t hi)
{
    const ln_bwd *c = ctx;
    float *const dw = c->dw, *const db = c->db;
    const int64_t n = c->n;
    if (dw && !c->acc_w)
        for (int64_t j = lo; j < hi; j++) dw[j] = 0.0f;
    if (db && !c->acc_b)
        for (int64_t j = lo; j < hi; j++) db[j] = 0.0f;
    for (int64_t i = 0; i < c->rows; i++) {
        const float *g = c->G + i * n;
        if (dw) {
            const float *x = c->X + i * n;
            float a = c->rstd[i], b = -a * c->mean[i];
            for (int64_t j = lo; j < hi; j++) dw[j] = fmaf(g[j], fmaf(a, x[j], b), dw[j]);
        }
        if (db)
            for (int64_t j = lo; j < hi; j++) db[j] += g[j];
    }
}

/*
 * With a = rstd, x̂ = a·(x − mean): dw = Σ_rows g·x̂, db = Σ_rows g, and per row
 * dx = a·g·w + b'·x + c, b' = (Σ g·w·mean − Σ g·w·x)·a³/N, c = −b'·mean − Σ g·w·a/N
 * (PyTorch's layer_norm_backward_frame, its operations in its order: PyTorch's bits, one
 * thread's for dw and db, as PyTorch sums those per thread and then adds the threads' sums). From
 * NB__PARALLEL_MIN elements on the pool: dx by rows, dw and db by blocks of columns (one per
 * thread: every block sweeps all the rows).
 */
static nb_status ln_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    const ln_state *st = nb__state(node);
    bool need_x = nb__needs_grad(node, 0), need_w = nb__needs_grad(node, 1);
    bool need_b = nb__needs_grad(node, 2);
    nb_tensor *xt = NULL, *stats = NULL, *wt = NULL;
    if (need_x || need_w) { /* bias alone needs only g */
        if (!(xt = nb__saved(node, LN_X)) || !(stats = nb__saved(node, LN_STATS)))
            return nb__last_code();
        if (nb__has_saved(node, LN_WEIGHT) && !(wt = nb__saved(node, LN_WEIGHT)))
            return nb__last_code();
    }
    int64_t n = st->n, rows = st->rows;
    const float *mean = stats ? nb__data(stats) : NULL;
    ln_bwd c = {nb__data(gy[0]),
                xt ? nb__data(xt) : NULL,
                wt ? nb__data(wt) : NULL,
                mean,
                mean ? mean + rows : NULL,
                NULL,
                NULL,
                NULL,
                n,
                rows,
                false,
                false,
                false};
    if (need_w && !(c.dw = nb__grad_dst(node, gx, 1, &c.acc_w))) return NB_ENOMEM;
    if (need_b && !(c.db = nb__grad_dst(node, gx, 2, &c.acc_b))) return NB_ENOMEM;
    if (need_x && !(c.dx = nb__grad_dst(node, gx, 0, &c.acc_x))) return NB_ENOMEM;
    if (c.dw || c.db) nb__split_per_thread(n, rows, ln_dwb_cols, &c);
    if (c.dx) nb__split(rows, n, ln_dx_rows, &c);
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
    ln_fwd job = {X, W, B, Y, mean, rstd, n, e};
    nb__split(rows, n, ln_rows, &job); /* each row its own: the same bits at any cut */
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
