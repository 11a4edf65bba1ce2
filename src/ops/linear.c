/*
 * linear and addmm: one sgemm whose C already holds the broadcast bias (beta = 1), and a
 * backward of at most three steps (two GEMMs with transpose flags and a column sum), each
 * accumulating into the engine's lent buffer when it has one (DESIGN.md "BLAS mapping").
 * linear's input of any rank is one matrix of rows: it is contiguous, so no copy is needed.
 */
#include "blas/blas.h"
#include "ops/internal.h"

/*
 * AddmmBackward0 / MmBackward0: out = beta·input + alpha·mat1·op(mat2) with mat1 [m, k] and
 * op(mat2) [k, n]; op transposes when trans_b (linear's weight W [n, k] enters as Wᵀ).
 * Edges: input (when has_input), mat1, mat2. Saved: mat1 (for d mat2), mat2 (for d mat1).
 */
typedef struct addmm_state {
    int64_t m, k, n;
    float alpha, beta;
    bool trans_b;
    bool has_input;
} addmm_state;

enum { SLOT_MAT1, SLOT_MAT2 };

NB__EW_KERNEL(copy_k, V0)

static nb_status addmm_backward(nb_node *node, nb_tensor *const *gy, nb_tensor **gx)
{
    const addmm_state *st = nb__state(node);
    int e1 = st->has_input ? 1 : 0, e2 = e1 + 1;
    bool need1 = nb__needs_grad(node, e1), need2 = nb__needs_grad(node, e2);
    nb_tensor *a = need2 ? nb__saved(node, SLOT_MAT1) : NULL;
    nb_tensor *b = need1 ? nb__saved(node, SLOT_MAT2) : NULL;
    if ((need2 && !a) || (need1 && !b)) return nb__last_code();
    const float *G = nb__data(gy[0]);
    int64_t m = st->m, k = st->k, n = st->n;
    nb__gemm_args g1, g2;
    bool acc;
    if (need1) {
        float *d = nb__grad_dst(node, gx, e1, &acc);
        if (!d) return NB_ENOMEM;
        if (st->trans_b) /* dx = α·dy·W, W [n, k] */
            g1 = (nb__gemm_args){
                false, false, m, k, n, st->alpha, G, n, nb__data(b), k, acc ? 1.0f : 0.0f, d, k};
        else /* dA = α·dC·Bᵀ, B [k, n] */
            g1 = (nb__gemm_args){
                false, true, m, k, n, st->alpha, G, n, nb__data(b), n, acc ? 1.0f : 0.0f, d, k};
    }
    if (need2) {
        float *d = nb__grad_dst(node, gx, e2, &acc);
        if (!d) return NB_ENOMEM;
        if (st->trans_b) /* dW = α·dyᵀ·x, [n, k] */
            g2 = (nb__gemm_args){
                true, false, n, k, m, st->alpha, G, n, nb__data(a), k, acc ? 1.0f : 0.0f, d, k};
        else /* dB = α·Aᵀ·dC, [k, n] */
            g2 = (nb__gemm_args){
                true, false, k, n, m, st->alpha, nb__data(a), k, G, n, acc ? 1.0f : 0.0f, d, n};
    }
    nb__gemm_pair(need1 ? &g1 : NULL, need2 ? &g2 : NULL);
    /* d input = β·dy summed over the dims input was broadcast along (linear: the column sums
     * of dy, one vectorised row add per row) */
    if (st->has_input && nb__needs_grad(node, 0)) return nb__grad_sum(node, gx, 0, gy[0], st->beta);
    return NB_OK;
}

static const nb_op addmm_op = {"AddmmBackward0", addmm_backward, 2, sizeof(addmm_state), 0};
static const nb_op mm_op = {"MmBackward0", addmm_backward, 2, sizeof(addmm_state), 0};

/*
 * out (of shape ndim, dims: m·n elements) = β·input + α·mat1·op(mat2), input (or NULL)
 * broadcast to it first, then recorded. The arguments are checked.
 */
static nb_tensor *addmm_apply(const char *fn, nb_tensor *input, nb_tensor *mat1, nb_tensor *mat2,
                              const addmm_state *st, int ndim, const int64_t *dims)
{
    if (!nb__blas_fits(st->m, st->n, st->k)) {
        nb__error(NB_ERANGE, fn, "matrix sizes exceed the range of BLAS's int");
        return NULL;
    }
    nb_tensor *out = nb__new(fn, ndim, dims);
    if (!out) return NULL;
    float *C = nb__data(out), beta = 0.0f;
    if (input && st->beta != 0.0f) { /* as PyTorch: a zero beta ignores input, NaN included */
        nb_shape os = nb__size(out), is = nb__size(input);
        nb__ew_apply(copy_k, NULL, C, false, &os, 1, &(nb__operand){nb__data(input), &is});
        beta = st->beta;
    }
    int64_t m = st->m, k = st->k, n = st->n;
    const float *A = nb__data(mat1), *B = nb__data(mat2);
    if (st->trans_b) /* y = α·x·Wᵀ + β·y, W [n, k] */
        nb__gemm(false, true, m, n, k, st->alpha, A, k, B, k, beta, C, n);
    else /* C = α·A·B + β·C */
        nb__gemm(false, false, m, n, k, st->alpha, A, k, B, n, beta, C, n);

    nb_node *node;
    nb_tensor *in[3] = {input, mat1, mat2};
    int e1 = input ? 1 : 0;
    out = nb__finish(fn, input ? &addmm_op : &mm_op, out, 2 + e1, in + 1 - e1, &node);
    if (node) {
        *(addmm_state *)nb__state(node) = *st;
        ((addmm_state *)nb__state(node))->has_input = input != NULL;
        if ((nb__needs_grad(node, e1 + 1) && nb__save(fn, node, SLOT_MAT1, mat1) != NB_OK) ||
            (nb__needs_grad(node, e1) && nb__save(fn, node, SLOT_MAT2, mat2) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

static void mm_size_error(const char *fn, int64_t m, int64_t k, int64_t k2, int64_t n)
{
    nb__error(NB_ESHAPE, fn, "mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)",
              (long long)m, (long long)k, (long long)k2, (long long)n);
}

/* NB_OK when t (linear's bias, addmm's input: the tensor the product is added to) broadcasts
 * to the output's shape (ndim, dims) without growing it; else NB_ESHAPE (the sizes that differ, or
 * t's role when it has more dims). */
static nb_status added_check(const char *fn, const char *role, const nb_tensor *t, int ndim,
                             const int64_t *dims)
{
    nb_shape ts = nb__size(t), os = nb__shape(ndim, dims), bs;
    if (nb__broadcast_shape(fn, &ts, &os, &bs) != NB_OK) return NB_ESHAPE;
    if (nb__shape_eq(&bs, &os)) return NB_OK;
    char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
    nb__error(NB_ESHAPE, fn, "%s of shape %s cannot be broadcast to the output's shape %s", role,
              nb__shape_str(a, ts.ndim, ts.dims), nb__shape_str(b, ndim, dims));
    return NB_ESHAPE;
}

nb_tensor *nb_linear(nb_tensor *x, nb_tensor *weight, nb_tensor *bias)
{
    static const char fn[] = "nb_linear";
    if (!x || !weight) {
        nb__null(fn, x ? "weight" : "x");
        return NULL;
    }
    if (!bias && nb__pending()) return NULL; /* a failed optional input */
    if (x->ndim == 0 || weight->ndim != 2) {
        nb__error(NB_ESHAPE, fn,
                  "input must be at least 1-D and weight 2-D [out_features, in_features], but "
                  "they are %dD and %dD",
                  x->ndim, weight->ndim);
        return NULL;
    }
    int64_t k = x->shape[x->ndim - 1], n = weight->shape[0];
    int64_t m = k > 0 ? x->numel / k : 1;
    if (k == 0) /* rows of nothing: count them from the leading dims */
        for (int i = 0; i < x->ndim - 1; i++) m = nb__size_mul(m, x->shape[i]);
    if (weight->shape[1] != k) {
        mm_size_error(fn, m, k, weight->shape[1], n);
        return NULL;
    }
    int64_t dims[NB_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) dims[i] = x->shape[i];
    dims[x->ndim - 1] = n;
    if (bias && added_check(fn, "bias", bias, x->ndim, dims) != NB_OK) return NULL;
    addmm_state st = {m, k, n, 1.0f, 1.0f, true, bias != NULL};
    return addmm_apply(fn, bias, x, weight, &st, x->ndim, dims);
}

nb_tensor *nb_addmm(nb_tensor *input, nb_tensor *mat1, nb_tensor *mat2, float beta, float alpha)
{
    static const char fn[] = "nb_addmm";
    if (!input || !mat1 || !mat2) {
        nb__null(fn, !input ? "input" : !mat1 ? "mat1" : "mat2");
        return NULL;
    }
    if (mat1->ndim != 2 || mat2->ndim != 2) {
        nb__error(NB_ESHAPE, fn, "%s must be a matrix, got %d-D tensor",
                  mat1->ndim != 2 ? "mat1" : "mat2", mat1->ndim != 2 ? mat1->ndim : mat2->ndim);
        return NULL;
    }
    int64_t m = mat1->shape[0], k = mat1->shape[1], n = mat2->shape[1];
    if (mat2->shape[0] != k) {
        mm_size_error(fn, m, k, mat2->shape[0], n);
        return NULL;
    }
    int64_t dims[2] = {m, n};
    if (added_check(fn, "input", input, 2, dims) != NB_OK) return NULL;
    addmm_state st = {m, k, n, alpha, beta, false, true};
    return addmm_apply(fn, input, mat1, mat2, &st, 2, dims);
}
