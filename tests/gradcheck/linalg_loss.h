/*
 * Gradcheck rows: linear algebra, losses, dropout, layer_norm and chains of ops. Included once, by
 * test_gradcheck.c, which defines gc_row and the ROW, G, C, ... macros; the table's name is
 * rows_linalg_loss.
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

/* linear(x, W, b) (b absent: NULL) */
static nb_tensor *f_linear(nb_tensor *const *x)
{
    return nb_linear(x[0], x[1], x[2]);
}

static nb_tensor *f_addmm(nb_tensor *const *x)
{
    return nb_addmm(x[0], x[1], x[2], 0.75f, -1.5f);
}

static nb_tensor *f_addmm_beta0(nb_tensor *const *x)
{
    return nb_addmm(x[0], x[1], x[2], 0.0f, 1.0f);
}

static nb_tensor *f_bmm(nb_tensor *const *x)
{
    return nb_bmm(x[0], x[1]);
}

static nb_tensor *f_outer(nb_tensor *const *x)
{
    return nb_outer(x[0], x[1]);
}

/* the pointwise losses, by reduction */
#define LOSS_ROWS(name, call)                                                                      \
    static nb_tensor *f_##name##_none(nb_tensor *const *x)                                         \
    {                                                                                              \
        const nb_reduction r = NB_NONE;                                                            \
        return call;                                                                               \
    }                                                                                              \
    static nb_tensor *f_##name##_mean(nb_tensor *const *x)                                         \
    {                                                                                              \
        const nb_reduction r = NB_MEAN;                                                            \
        return call;                                                                               \
    }                                                                                              \
    static nb_tensor *f_##name##_sum(nb_tensor *const *x)                                          \
    {                                                                                              \
        const nb_reduction r = NB_SUM;                                                             \
        return call;                                                                               \
    }

/* The target of the kinked losses: 0.4·y for y in [0.1, 0.9], so x (|x| >= 0.5) − target is
 * at least 0.14 from the kink at 0 (and from β = 0.05), further than a gradcheck step. */
#define OFF(t) nb_mul_scalar((t), 0.4f)
LOSS_ROWS(mse, nb_mse_loss(x[0], x[1], r))
LOSS_ROWS(l1, nb_l1_loss(x[0], OFF(x[1]), r))
LOSS_ROWS(smooth_l1_wide, nb_smooth_l1_loss(x[0], x[1], r, 10.0))        /* all quadratic */
LOSS_ROWS(smooth_l1_narrow, nb_smooth_l1_loss(x[0], OFF(x[1]), r, 0.05)) /* all linear */
LOSS_ROWS(smooth_l1_zero, nb_smooth_l1_loss(x[0], OFF(x[1]), r, 0.0))
LOSS_ROWS(huber_wide, nb_huber_loss(x[0], x[1], r, 10.0))
LOSS_ROWS(huber_narrow, nb_huber_loss(x[0], OFF(x[1]), r, 0.05))
LOSS_ROWS(bce_prob, nb_binary_cross_entropy(x[0], x[1], x[2], r))
LOSS_ROWS(kl, nb_kl_div(x[0], x[1], r, false))
LOSS_ROWS(kl_log, nb_kl_div(x[0], x[1], r, true))

static nb_tensor *f_kl_batchmean(nb_tensor *const *x)
{
    return nb_kl_div(x[0], x[1], NB_BATCHMEAN, false);
}

static nb_tensor *f_kl_log_batchmean(nb_tensor *const *x)
{
    return nb_kl_div(x[0], x[1], NB_BATCHMEAN, true);
}

/* class targets for 4 samples of 3 classes: one ignored (-100), or class 1 ignored */
static nb_tensor *targets4(bool ignore_one)
{
    static const float t[] = {2, 0, -100, 1}, t1[] = {1, 0, 2, 1};
    return nb_from_data(ignore_one ? t1 : t, NB_SHAPE(4));
}

LOSS_ROWS(nll, nb_nll_loss(x[0], targets4(false), x[1], -100, r))
LOSS_ROWS(nll_ignore1, nb_nll_loss(x[0], targets4(true), x[1], 1, r))
LOSS_ROWS(ce, nb_cross_entropy(x[0], targets4(false), x[1], -100, r, 0.0))
LOSS_ROWS(ce_smooth, nb_cross_entropy(x[0], targets4(false), x[1], -100, r, 0.2))
LOSS_ROWS(ce_smooth_ignore1, nb_cross_entropy(x[0], targets4(true), x[1], 1, r, 0.1))
LOSS_ROWS(ce_probs, nb_cross_entropy(x[0], x[1], x[2], -100, r, 0.0))
LOSS_ROWS(ce_probs_smooth, nb_cross_entropy(x[0], x[1], x[2], -100, r, 0.3))

/* one sample: [3] logits, a 0-d target */
static nb_tensor *f_nll_1d(nb_tensor *const *x)
{
    return nb_nll_loss(x[0], nb_scalar(2), x[1], -100, NB_MEAN);
}

static nb_tensor *f_ce_1d(nb_tensor *const *x)
{
    return nb_cross_entropy(x[0], nb_scalar(1), x[1], -100, NB_NONE, 0.1);
}

/* layer_norm over the last dim, or the last two (eps 1e-5) */
static nb_tensor *f_layer_norm(nb_tensor *const *x)
{
    return nb_layer_norm(x[0], nb_shape_make(1, nb_tensor_shape(x[0]) + nb_tensor_ndim(x[0]) - 1),
                         x[1], x[2], 1e-5);
}

static nb_tensor *f_layer_norm2(nb_tensor *const *x)
{
    return nb_layer_norm(x[0], nb_shape_make(2, nb_tensor_shape(x[0]) + nb_tensor_ndim(x[0]) - 2),
                         x[1], x[2], 1e-3);
}

/* dropout with one mask at every call: a generator seeded afresh */
static nb_tensor *f_dropout(nb_tensor *const *x)
{
    nb_generator *g = nb_generator_new(11);
    nb_tensor *y = nb_dropout_gen(x[0], 0.4, true, g);
    nb_generator_free(g);
    return y;
}

static nb_tensor *f_dropout_eval(nb_tensor *const *x)
{
    return nb_dropout(x[0], 0.4, false);
}

/* a classifier step: cross_entropy(linear(relu(linear(x, W1, b1)), W2), labels) */
static nb_tensor *f_chain_classifier(nb_tensor *const *x)
{
    nb_tensor *h = nb_relu(nb_linear(x[0], x[1], x[2]));
    return nb_cross_entropy(nb_linear(h, x[3], NULL), targets4(true), NULL, -100, NB_MEAN, 0.0);
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
    /* linear: every rank, with and without bias, constants */
    ROW("linear 2-D", f_linear, G(3, 4), G(5, 4), G(5)),
    ROW("linear 2-D no bias", f_linear, G(3, 4), G(5, 4), NONE),
    ROW("linear 1-D", f_linear, G(4), G(5, 4), G(5)),
    ROW("linear 3-D", f_linear, G(2, 3, 4), G(2, 4), G(2)),
    ROW("linear 4-D no bias", f_linear, G(2, 1, 3, 4), G(3, 4), NONE),
    ROW("linear x const", f_linear, C(3, 4), G(5, 4), G(5)),
    ROW("linear W const", f_linear, G(3, 4), C(5, 4), G(5)),
    ROW("linear bias only", f_linear, C(3, 4), C(5, 4), G(5)),
    ROW_IMPLICIT("chain classifier step", f_chain_classifier, G(4, 5), G(6, 5), G(6), G(3, 6)),
    /* addmm: input broadcast in every way */
    ROW("addmm [n,p]", f_addmm, G(2, 4), G(2, 3), G(3, 4)),
    ROW("addmm [p]", f_addmm, G(4), G(2, 3), G(3, 4)),
    ROW("addmm [n,1]", f_addmm, G(2, 1), G(2, 3), G(3, 4)),
    ROW("addmm []", f_addmm, G0, G(2, 3), G(3, 4)),
    ROW("addmm beta 0", f_addmm_beta0, G(2, 4), G(2, 3), G(3, 4)),
    ROW("addmm mat1 const", f_addmm, G(2, 4), C(2, 3), G(3, 4)),
    /* bmm, outer */
    ROW("bmm", f_bmm, G(2, 3, 4), G(2, 4, 5)),
    ROW("bmm a const", f_bmm, C(2, 3, 4), G(2, 4, 5)),
    ROW("outer", f_outer, G(3), G(4)),
    ROW("outer b const", f_outer, G(3), C(4)),
    /* pointwise losses: input and target, every reduction */
    ROW("mse none", f_mse_none, G(2, 3), G(2, 3)),
    ROW("mse mean", f_mse_mean, G(2, 3), G(2, 3)),
    ROW("mse sum", f_mse_sum, G(2, 3), C(2, 3)),
    ROW("mse mean []", f_mse_mean, G0, G0),
    ROW("l1 none", f_l1_none, GA(2, 3), GP(2, 3)),
    ROW("l1 mean", f_l1_mean, GA(2, 3), GP(2, 3)),
    ROW("l1 sum", f_l1_sum, CA(2, 3), GP(2, 3)),
    ROW("smooth_l1 beta 10 none", f_smooth_l1_wide_none, G(2, 3), G(2, 3)),
    ROW("smooth_l1 beta 10 mean", f_smooth_l1_wide_mean, G(2, 3), G(2, 3)),
    ROW("smooth_l1 beta 0.05 sum", f_smooth_l1_narrow_sum, GA(2, 3), GP(2, 3)),
    ROW("smooth_l1 beta 0.05 mean", f_smooth_l1_narrow_mean, GA(2, 3), GP(2, 3)),
    ROW("smooth_l1 beta 0 none", f_smooth_l1_zero_none, GA(2, 3), GP(2, 3)),
    ROW("huber delta 10 sum", f_huber_wide_sum, G(2, 3), G(2, 3)),
    ROW("huber delta 10 none", f_huber_wide_none, G(2, 3), C(2, 3)),
    ROW("huber delta 0.05 mean", f_huber_narrow_mean, GA(2, 3), GP(2, 3)),
    ROW("huber delta 0.05 none", f_huber_narrow_none, GA(2, 3), GP(2, 3)),
    ROW("binary_cross_entropy none", f_bce_prob_none, GP(2, 3), GP(2, 3)),
    ROW("binary_cross_entropy mean", f_bce_prob_mean, GP(2, 3), CP(2, 3)),
    ROW("binary_cross_entropy sum weight [3]", f_bce_prob_sum, GP(2, 3), GP(2, 3), CW(3)),
    ROW("binary_cross_entropy mean weight [2,1]", f_bce_prob_mean, GP(2, 3), GP(2, 3), CW(2, 1)),
    ROW("kl_div none", f_kl_none, G(2, 3), GP(2, 3)),
    ROW("kl_div mean", f_kl_mean, G(2, 3), GP(2, 3)),
    ROW("kl_div sum", f_kl_sum, G(2, 3), CP(2, 3)),
    ROW("kl_div batchmean", f_kl_batchmean, G(2, 3), GP(2, 3)),
    ROW("kl_div log_target none", f_kl_log_none, G(2, 3), G(2, 3)),
    ROW("kl_div log_target mean", f_kl_log_mean, G(2, 3), G(2, 3)),
    ROW("kl_div log_target sum", f_kl_log_sum, C(2, 3), G(2, 3)),
    ROW("kl_div log_target batchmean", f_kl_log_batchmean, G(2, 3), G(2, 3)),
    /* class targets: weights, ignore_index, label smoothing, probabilities */
    ROW("nll none", f_nll_none, G(4, 3), NONE),
    ROW("nll mean", f_nll_mean, G(4, 3), NONE),
    ROW("nll sum weight", f_nll_sum, G(4, 3), CW(3)),
    ROW("nll mean weight", f_nll_mean, G(4, 3), CW(3)),
    ROW("nll ignore_index 1 mean weight", f_nll_ignore1_mean, G(4, 3), CW(3)),
    ROW("nll ignore_index 1 none", f_nll_ignore1_none, G(4, 3), NONE),
    ROW("nll 1-D", f_nll_1d, G(3), CW(3)),
    ROW("cross_entropy none", f_ce_none, G(4, 3), NONE),
    ROW("cross_entropy mean", f_ce_mean, G(4, 3), NONE),
    ROW("cross_entropy sum weight", f_ce_sum, G(4, 3), CW(3)),
    ROW("cross_entropy mean weight", f_ce_mean, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing none weight", f_ce_smooth_none, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing mean", f_ce_smooth_mean, G(4, 3), NONE),
    ROW("cross_entropy smoothing mean weight", f_ce_smooth_mean, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing sum weight", f_ce_smooth_sum, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing ignore 1 mean weight", f_ce_smooth_ignore1_mean, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing ignore 1 none", f_ce_smooth_ignore1_none, G(4, 3), NONE),
    ROW("cross_entropy 1-D", f_ce_1d, G(3), CW(3)),
    ROW("cross_entropy probs none", f_ce_probs_none, G(4, 3), GP(4, 3)),
    ROW("cross_entropy probs mean weight", f_ce_probs_mean, G(4, 3), GP(4, 3), CW(3)),
    ROW("cross_entropy probs sum", f_ce_probs_sum, G(4, 3), CP(4, 3)),
    ROW("cross_entropy probs smoothing mean", f_ce_probs_smooth_mean, G(4, 3), GP(4, 3)),
    ROW("cross_entropy probs smoothing none weight", f_ce_probs_smooth_none, G(4, 3), GP(4, 3),
        CW(3)),
    ROW("cross_entropy probs 1-D", f_ce_probs_sum, G(3), GP(3)),
    ROW("smooth_l1 beta 10 sum", f_smooth_l1_wide_sum, G(2, 3), G(2, 3)),
    ROW("smooth_l1 beta 0.05 none", f_smooth_l1_narrow_none, GA(2, 3), GP(2, 3)),
    ROW("smooth_l1 beta 0 mean", f_smooth_l1_zero_mean, GA(2, 3), GP(2, 3)),
    ROW("smooth_l1 beta 0 sum", f_smooth_l1_zero_sum, GA(2, 3), GP(2, 3)),
    ROW("huber delta 10 mean", f_huber_wide_mean, G(2, 3), G(2, 3)),
    ROW("huber delta 0.05 sum", f_huber_narrow_sum, GA(2, 3), GP(2, 3)),
    ROW("nll ignore_index 1 sum", f_nll_ignore1_sum, G(4, 3), CW(3)),
    ROW("cross_entropy smoothing ignore 1 sum", f_ce_smooth_ignore1_sum, G(4, 3), NONE),
    ROW("cross_entropy probs smoothing sum weight", f_ce_probs_smooth_sum, G(4, 3), GP(4, 3), CW(3)),
    /* layer_norm, dropout */
    ROW("layer_norm", f_layer_norm, G(3, 5), G(5), G(5)),
    ROW("layer_norm no affine", f_layer_norm, G(3, 5), NONE, NONE),
    ROW("layer_norm weight only", f_layer_norm, G(3, 5), G(5), NONE),
    ROW("layer_norm x const", f_layer_norm, C(3, 5), G(5), G(5)),
    ROW("layer_norm 2 dims", f_layer_norm2, G(2, 3, 4), G(3, 4), G(3, 4)),
    ROW("layer_norm 1-D", f_layer_norm, G(6), G(6), C(6)),
    ROW("dropout", f_dropout, G(3, 5)),
    ROW("dropout eval", f_dropout_eval, G(3, 5)),
    /* chains */
    ROW_IMPLICIT("chain sum(sigmoid(x.w+b)*c)", f_chain_sigmoid, G(4, 3), G(3, 2), G(2), G(4, 2)),
    ROW_IMPLICIT("chain bce(x.w+b, y)", f_chain_bce, C(4, 5), G(5, 3), G(3), CP(4, 3)),
    ROW("chain x reused", f_chain_reuse, G(3, 4), GA(4)),
    ROW("chain relu mlp", f_chain_mlp, GA(2, 3, 4), G(4, 5), G(5, 2), GA(2, 3, 1)),
};
// clang-format on
