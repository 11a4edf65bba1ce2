/*
 * Gradcheck rows: linear algebra, losses and chains of ops. Included once, by test_gradcheck.c,
 * which defines gc_row and the ROW, G, C, ... macros; the table's name is rows_linalg_loss.
 */

static nb_tensor *f_matmul(nb_tensor *const *x)
{
    return nb_matmul(x[0], x[1]);
}

/* input, target, weight (or NULL), pos_weight (or NULL) */
static nb_tensor *f_bce_none(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_NONE);
}

static nb_tensor *f_bce_mean(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_MEAN);
}

static nb_tensor *f_bce_sum(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(x[0], x[1], x[2], x[3], NB_SUM);
}

/* sum(sigmoid(x·w + b) ⊙ c) */
static nb_tensor *f_chain_sigmoid(nb_tensor *const *x)
{
    return nb_sum(nb_mul(nb_sigmoid(nb_add(nb_matmul(x[0], x[1]), x[2])), x[3]), NB_DIMS_ALL,
                  false);
}

/* bce(x·w + b, y), mean: the seed graph of the tutorial */
static nb_tensor *f_chain_bce(nb_tensor *const *x)
{
    return nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x[0], x[1]), x[2]), x[3], NULL,
                                               NULL, NB_MEAN);
}

/* mean over dim 1 of (x ⊙ sigmoid(x) − x / 3) · relu(w) − neg(x): x reused, w away from 0 */
static nb_tensor *f_chain_reuse(nb_tensor *const *x)
{
    nb_tensor *a = nb_sub(nb_mul(x[0], nb_sigmoid(x[0])), nb_div_scalar(x[0], 3.0f));
    return nb_mean(nb_sub(nb_mul(a, nb_relu(x[1])), nb_neg(x[0])), NB_DIMS(1), false);
}

/* relu(x·w1)·w2, reduced by sum over the last dim, then divided by d */
static nb_tensor *f_chain_mlp(nb_tensor *const *x)
{
    /* relu of an input kept away from 0: a step never crosses the kink */
    nb_tensor *h = nb_matmul(nb_relu(x[0]), x[1]);
    return nb_div(nb_sum(nb_matmul(nb_sigmoid(h), x[2]), NB_DIMS(-1), true), x[3]);
}

// clang-format off
static const gc_row rows_linalg_loss[] = {
    /* matmul, every rank combination */
    ROW("matmul 1-D.1-D", f_matmul, G(4), G(4)),
    ROW_IMPLICIT("matmul 1-D.1-D, implicit gradient", f_matmul, G(4), G(4)),
    ROW("matmul 1-D.2-D", f_matmul, G(4), G(4, 3)),
    ROW("matmul 2-D.1-D", f_matmul, G(3, 4), G(4)),
    ROW("matmul 2-D.2-D", f_matmul, G(3, 4), G(4, 5)),
    ROW("matmul 3-D.2-D", f_matmul, G(2, 3, 4), G(4, 5)),
    ROW("matmul 2-D.3-D", f_matmul, G(3, 4), G(2, 4, 5)),
    ROW("matmul 3-D.1-D", f_matmul, G(2, 3, 4), G(4)),
    ROW("matmul 1-D.3-D", f_matmul, G(4), G(2, 4, 5)),
    ROW("matmul 3-D.3-D", f_matmul, G(2, 3, 4), G(2, 4, 5)),
    ROW("matmul 3-D.3-D broadcast", f_matmul, G(2, 3, 4), G(1, 4, 5)),
    ROW("matmul 4-D.4-D broadcast", f_matmul, G(2, 1, 3, 4), G(1, 3, 4, 5)),
    ROW("matmul 4-D.3-D broadcast", f_matmul, G(2, 1, 3, 4), G(3, 4, 2)),
    ROW("matmul 1-D.1-D const", f_matmul, C(4), G(4)),
    ROW("matmul 1-D.2-D const", f_matmul, G(4), C(4, 3)),
    ROW("matmul 2-D.1-D const", f_matmul, C(3, 4), G(4)),
    ROW("matmul 2-D.2-D const", f_matmul, C(3, 4), G(4, 5)),
    ROW("matmul 3-D.2-D const", f_matmul, C(2, 3, 4), G(4, 5)),
    ROW("matmul 3-D.1-D const", f_matmul, G(2, 3, 4), C(4)),
    ROW("matmul 1-D.3-D const", f_matmul, C(4), G(2, 4, 5)),
    ROW("matmul 4-D.4-D const", f_matmul, G(2, 1, 3, 4), C(1, 3, 4, 5)),
    /* BCE with logits: input, target, weight, pos_weight */
    ROW("bce none", f_bce_none, G(2, 3), CP(2, 3)),
    ROW("bce mean", f_bce_mean, G(2, 3), CP(2, 3)),
    ROW("bce sum", f_bce_sum, G(2, 3), CP(2, 3)),
    ROW("bce mean []", f_bce_mean, G0, CP0),
    ROW_IMPLICIT("bce mean, implicit gradient", f_bce_mean, G(2, 3), GP(2, 3)),
    ROW("bce weight [3] none", f_bce_none, G(2, 3), CP(2, 3), CW(3)),
    ROW("bce weight [3] mean", f_bce_mean, G(2, 3), CP(2, 3), CW(3)),
    ROW("bce weight [2,1] sum", f_bce_sum, G(2, 3), CP(2, 3), CW(2, 1)),
    ROW("bce pos_weight none", f_bce_none, G(2, 3), CP(2, 3), NONE, CW(3)),
    ROW("bce pos_weight mean", f_bce_mean, G(2, 3), CP(2, 3), NONE, CW(3)),
    ROW("bce weight pos_weight sum", f_bce_sum, G(2, 3), CP(2, 3), CW(3), CW(3)),
    ROW("bce weight pos_weight mean", f_bce_mean, G(2, 3), CP(2, 3), CW(2, 3), CW(3)),
    ROW("bce target none", f_bce_none, G(2, 3), GP(2, 3)),
    ROW("bce target mean", f_bce_mean, G(2, 3), GP(2, 3)),
    ROW("bce target only sum", f_bce_sum, C(2, 3), GP(2, 3)),
    ROW("bce target pos_weight none", f_bce_none, G(2, 3), GP(2, 3), NONE, CW(3)),
    ROW("bce target weight pos_weight mean", f_bce_mean, G(2, 3), GP(2, 3), CW(3), CW(3)),
    /* chains */
    ROW_IMPLICIT("chain sum(sigmoid(x.w+b)*c)", f_chain_sigmoid, G(4, 3), G(3, 2), G(2), G(4, 2)),
    ROW_IMPLICIT("chain bce(x.w+b, y)", f_chain_bce, C(4, 5), G(5, 3), G(3), CP(4, 3)),
    ROW("chain x reused", f_chain_reuse, G(3, 4), GA(4)),
    ROW("chain relu mlp", f_chain_mlp, GA(2, 3, 4), G(4, 5), G(5, 2), GA(2, 3, 1)),
};
// clang-format on
