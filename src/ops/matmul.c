/*
 * matmul for every rank combination, forward and backward through BLAS with transpose
 * flags (DESIGN.md "BLAS mapping"). One node, MatmulBackward0, whatever the ranks; bmm is
 * its batched case without broadcasting, recorded as BmmBackward0; outer is a rank-1 product.
 */
#include <string.h>

#include "blas/blas.h"
#include "ops/internal.h"

/* The operands as batches of matrices: a' [..., m, k] and b' [..., k, n]. */
typedef struct mm_plan {
    int64_t m, k, n;
    nb_shape batch;                           /* broadcast batch shape */
    int64_t nbatch;                           /* its element count */
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS]; /* batch strides, in matrices */
    nb_shape out;                             /* the result's shape */
    bool fold; /* b has no batch: all of a' is one [nbatch·m, k] matrix */
} mm_plan;

static nb_status mm_error(const char *fn, const nb_shape *a, const nb_shape *b, int64_t ka,
                          int64_t kb)
{
    char sa[NB__SHAPE_STR], sb[NB__SHAPE_STR];
    return nb__error(NB_ESHAPE, fn, "size mismatch, %s @ %s (%lld != %lld)",
                     nb__shape_str(sa, a->ndim, a->dims), nb__shape_str(sb, b->ndim, b->dims),
                     (long long)ka, (long long)kb);
}

/* *s = the shape of ndim sizes from dims: nb_shape_make, written in place (a hot path). */
static void set_shape(nb_shape *s, int ndim, const int64_t *dims)
{
    s->ndim = ndim;
    for (int i = 0; i < NB_MAX_DIMS; i++) s->dims[i] = i < ndim ? dims[i] : 0;
}

static nb_status plan(const char *fn, const nb_shape *a, const nb_shape *b, mm_plan *p)
{
    if (a->ndim == 0 || b->ndim == 0)
        return nb__error(NB_ESHAPE, fn,
                         "both arguments to matmul need to be at least 1D, but they are %dD and "
                         "%dD",
                         a->ndim, b->ndim);
    p->m = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1;
    p->k = a->dims[a->ndim - 1];
    int64_t kb = b->dims[b->ndim >= 2 ? b->ndim - 2 : 0];
    p->n = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    if (p->k != kb) return mm_error(fn, a, b, p->k, kb);
    if (a->ndim <= 2 && b->ndim <= 2) { /* no batch dims: one product (the common case) */
        p->batch.ndim = 0;
        p->nbatch = p->m == 0 || p->n == 0 ? 0 : 1;
        p->fold = true;
        p->out.ndim = 0;
        if (a->ndim == 2) p->out.dims[p->out.ndim++] = p->m;
        if (b->ndim == 2) p->out.dims[p->out.ndim++] = p->n;
        if (!nb__blas_fits(p->m, p->n, p->k))
            return nb__error(NB_ERANGE, fn, "matrix sizes exceed the range of BLAS's int");
        return NB_OK;
    }

    nb_shape ba, bb;
    set_shape(&ba, a->ndim > 2 ? a->ndim - 2 : 0, a->dims);
    set_shape(&bb, b->ndim > 2 ? b->ndim - 2 : 0, b->dims);
    if (nb__broadcast_shape(fn, &ba, &bb, &p->batch) != NB_OK) return NB_ESHAPE;
    nb__broadcast_strides(&ba, &p->batch, p->sa);
    nb__broadcast_strides(&bb, &p->batch, p->sb);
    /* with a size 0 anywhere the result is empty and the batch count may not fit: 0 then */
    p->nbatch = 1;
    for (int i = 0; i < p->batch.ndim; i++)
        if (__builtin_mul_overflow(p->nbatch, p->batch.dims[i], &p->nbatch)) p->nbatch = 0;
    if (p->m == 0 || p->n == 0) p->nbatch = 0;
    p->fold = bb.ndim == 0;

    p->out = p->batch;
    if (a->ndim >= 2) p->out.dims[p->out.ndim++] = p->m;
    if (b->ndim >= 2) p->out.dims[p->out.ndim++] = p->n;
    if (!nb__blas_fits(p->fold ? p->nbatch * p->m : p->m, p->n, p->k))
        return nb__error(NB_ERANGE, fn, "matrix sizes exceed the range of BLAS's int");
    return NB_OK;
}

/* Offsets (in matrices) of batch i's operands. */
static void batch_offsets(const mm_plan *p, int64_t i, int64_t *oa, int64_t *ob)
{
    *oa = *ob = 0;
    for (int d = p->batch.ndim - 1; d >= 0; d--) {
        int64_t idx = i % p->batch.dims[d];
        i /= p->batch.dims[d];
        *oa += idx * p->sa[d];
        *ob += idx * p->sb[d];
    }
}

static void forward(const mm_plan *p, int ra, int rb, const float *A, const float *B, float *C)
{
    int64_t m = p->m, k = p->k, n = p->n;
    if (ra == 1 && rb == 1) {
        C[0] = nb__dot(k, A, B); /* z = x·y */
    } else if (ra == 1 && rb == 2) {
        nb__gemv(true, k, n, 1.0f, B, n, A, 0.0f, C); /* z = Wᵀx, W[k,n] */
    } else if (ra == 2 && rb == 1) {
        nb__gemv(false, m, k, 1.0f, A, k, B, 0.0f, C); /* z = Wx, W[m,k] */
    } else if (p->fold) {
        nb__gemm(false, false, p->nbatch * m, n, k, 1.0f, A, k, B, n, 0.0f, C, n); /* C = AB */
    } else {
        for (int64_t i = 0; i < p->nbatch; i++) {
            int64_t oa, ob;
            batch_offsets(p, i, &oa, &ob);
            nb__gemm(false, false, m, n, k, 1.0f, A + oa * m * k, k, B + ob * k * n, n, 0.0f,
                     C + i * m * n, n);
        }
    }
}

/* Where input i's gradient goes, zeroed when it is new and the BLAS calls accumulate into it
 * (ger, per-batch products, an empty product); *beta is 1 when it accumulates. */
static float *grad_buffer(nb_node *n, nb_tensor **gx, int i, bool zero, float *beta)
{
    bool acc;
    float *d = nb__grad_dst(n, gx, i, &acc);
    if (d && !acc && zero) memset(d, 0, (size_t)gx[i]->numel * sizeof *d);
    *beta = acc || zero ? 1.0f : 0.0f;
    return d;
}

static nb_status matmul_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    bool need_a = nb__needs_grad(node, 0), need_b = nb__needs_grad(node, 1);
    nb_tensor *a = need_b ? nb__saved(node, 0) : NULL; /* dB needs A, dA needs B */
    nb_tensor *b = need_a ? nb__saved(node, 1) : NULL;
    if ((need_b && !a) || (need_a && !b)) return nb__last_code();
    nb_shape sa = a ? nb__size(a) : nb__input_shape(node, 0);
    nb_shape sb = b ? nb__size(b) : nb__input_shape(node, 1);
    mm_plan p;
    if (plan(nb__engine_fn(), &sa, &sb, &p) != NB_OK) return NB_ESHAPE;
    int ra = sa.ndim, rb = sb.ndim;
    /* ger and per-batch products accumulate (beta = 1); the others overwrite */
    bool batched = !(ra <= 2 && rb <= 2) && !p.fold, empty = p.nbatch == 0;
    bool zero_a = empty || batched || (ra == 2 && rb == 1) || (ra == 1 && rb == 1);
    bool zero_b = empty || batched || (ra == 1 && rb == 2) || (ra == 1 && rb == 1);
    float beta_a = 0, beta_b = 0, *dA = NULL, *dB = NULL;
    if (need_a && !(dA = grad_buffer(node, gx, 0, zero_a, &beta_a))) return NB_ENOMEM;
    if (need_b && !(dB = grad_buffer(node, gx, 1, zero_b, &beta_b))) return NB_ENOMEM;
    if (empty) return NB_OK; /* an empty product: the gradients are zeros */
    const float *G = nb__data(gy[0]), *A = a ? nb__data(a) : NULL, *B = b ? nb__data(b) : NULL;
    int64_t m = p.m, k = p.k, n = p.n;

    if (ra == 1 && rb == 1) {
        if (dA) nb__axpy(k, G[0], B, dA); /* dx += dz·y */
        if (dB) nb__axpy(k, G[0], A, dB); /* dy += dz·x */
    } else if (ra == 1 && rb == 2) {
        if (dA) nb__gemv(false, k, n, 1.0f, B, n, G, beta_a, dA); /* dx = W·dz */
        if (dB) nb__ger(k, n, 1.0f, A, G, dB, n);                 /* dW += x ⊗ dz */
    } else if (ra == 2 && rb == 1) {
        if (dA) nb__ger(m, k, 1.0f, G, B, dA, k);                /* dW += dz ⊗ x */
        if (dB) nb__gemv(true, m, k, 1.0f, A, k, G, beta_b, dB); /* dx = Wᵀ·dz */
    } else if (p.fold) {
        int64_t M = p.nbatch * m;
        nb__gemm_args ga = {false, true, M, k, n, 1.0f, G, n, B, n, beta_a, dA, k}; /* dC·Bᵀ */
        nb__gemm_args gb = {true, false, k, n, M, 1.0f, A, k, G, n, beta_b, dB, n}; /* Aᵀ·dC */
        nb__gemm_pair(dA ? &ga : NULL, dB ? &gb : NULL);
    } else {
        /* per batch; broadcast batches of an operand sum into its one gradient (beta = 1) */
        for (int64_t i = 0; i < p.nbatch; i++) {
            int64_t oa, ob;
            batch_offsets(&p, i, &oa, &ob);
            const float *Gi = G + i * m * n;
            if (dA)
                nb__gemm(false, true, m, k, n, 1.0f, Gi, n, B + ob * k * n, n, 1.0f,
                         dA + oa * m * k, k);
            if (dB)
                nb__gemm(true, false, k, n, m, 1.0f, A + oa * m * k, k, Gi, n, 1.0f,
                         dB + ob * k * n, n);
        }
    }
    return NB_OK;
}

static const nb_op matmul_op = {"MatmulBackward0", matmul_backward, 2, 0, 0};
static const nb_op bmm_op = {"BmmBackward0", matmul_backward, 2, 0, 0};

/* Record op for out = f(a, b), saving a (slot 0) for db and b (slot 1) for da. */
static nb_tensor *record(const char *fn, const nb_op *op, nb_tensor *out, nb_tensor *a,
                         nb_tensor *b)
{
    nb_node *n;
    out = nb__finish(fn, op, out, 2, (nb_tensor *[]){a, b}, &n);
    if (n && ((nb__needs_grad(n, 1) && nb__save(fn, n, 0, a) != NB_OK) ||
              (nb__needs_grad(n, 0) && nb__save(fn, n, 1, b) != NB_OK))) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

/* a @ b with a plan made and checked: the product, recorded as op. */
static nb_tensor *product(const char *fn, const nb_op *op, nb_tensor *a, nb_tensor *b)
{
    mm_plan p;
    nb_shape sa, sb;
    set_shape(&sa, a->ndim, a->shape);
    set_shape(&sb, b->ndim, b->shape);
    if (plan(fn, &sa, &sb, &p) != NB_OK) return NULL;
    nb_tensor *out = nb__new(fn, p.out.ndim, p.out.dims);
    if (!out) return NULL;
    if (p.nbatch > 0) forward(&p, a->ndim, b->ndim, nb__data(a), nb__data(b), nb__data(out));
    return record(fn, op, out, a, b);
}

nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b)
{
    static const char fn[] = "nb_matmul";
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    return product(fn, &matmul_op, a, b);
}

nb_tensor *nb_bmm(nb_tensor *a, nb_tensor *b)
{
    static const char fn[] = "nb_bmm";
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    if (a->ndim != 3 || b->ndim != 3) {
        nb__error(NB_ESHAPE, fn, "batch%d must be a 3D tensor", a->ndim != 3 ? 1 : 2);
        return NULL;
    }
    if (b->shape[0] != a->shape[0] || b->shape[1] != a->shape[2]) {
        nb__error(NB_ESHAPE, fn,
                  "Expected size for first two dimensions of batch2 tensor to be: [%lld, %lld] "
                  "but got: [%lld, %lld].",
                  (long long)a->shape[0], (long long)a->shape[2], (long long)b->shape[0],
                  (long long)b->shape[1]);
        return NULL;
    }
    return product(fn, &bmm_op, a, b);
}

/* ---- outer ------------------------------------------------------------------------------ */

/* MulBackward0 of outer: da = g·b (gemv), db = gᵀ·a (gemv Trans); saved: a, b */
static nb_status outer_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    bool need_a = nb__needs_grad(node, 0), need_b = nb__needs_grad(node, 1);
    nb_tensor *a = need_b ? nb__saved(node, 0) : NULL, *b = need_a ? nb__saved(node, 1) : NULL;
    if ((need_b && !a) || (need_a && !b)) return nb__last_code();
    nb_shape sa = a ? nb__size(a) : nb__input_shape(node, 0);
    nb_shape sb = b ? nb__size(b) : nb__input_shape(node, 1);
    int64_t n = sa.dims[0], m = sb.dims[0];
    const float *G = nb__data(gy[0]);
    bool acc;
    if (need_a) {
        float *d = nb__grad_dst(node, gx, 0, &acc);
        if (!d) return NB_ENOMEM;
        nb__gemv(false, n, m, 1.0f, G, m, nb__data(b), acc ? 1.0f : 0.0f, d); /* da = g·b */
    }
    if (need_b) {
        float *d = nb__grad_dst(node, gx, 1, &acc);
        if (!d) return NB_ENOMEM;
        nb__gemv(true, n, m, 1.0f, G, m, nb__data(a), acc ? 1.0f : 0.0f, d); /* db = gᵀ·a */
    }
    return NB_OK;
}

static const nb_op outer_op = {"MulBackward0", outer_backward, 2, 0, 0};

nb_tensor *nb_outer(nb_tensor *a, nb_tensor *b)
{
    static const char fn[] = "nb_outer";
    if (!a || !b) {
        nb__null(fn, a ? "b" : "a");
        return NULL;
    }
    if (a->ndim != 1 || b->ndim != 1) {
        nb__error(NB_ESHAPE, fn, "Expected 1-D argument %s, but got %d-D",
                  a->ndim != 1 ? "self" : "vec2", a->ndim != 1 ? a->ndim : b->ndim);
        return NULL;
    }
    int64_t n = a->shape[0], m = b->shape[0];
    if (!nb__blas_fits(n, m, 1)) {
        nb__error(NB_ERANGE, fn, "matrix sizes exceed the range of BLAS's int");
        return NULL;
    }
    nb_tensor *out = nb__new(fn, 2, (int64_t[]){n, m});
    if (!out) return NULL;
    /* the products one by one, as PyTorch's a.reshape(-1, 1) * b: exact, so the same bits */
    const float *A = nb__data(a), *B = nb__data(b);
    float *O = nb__data(out);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) O[i * m + j] = A[i] * B[j];
    return record(fn, &outer_op, out, a, b);
}
