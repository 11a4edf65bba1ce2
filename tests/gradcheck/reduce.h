/*
 * Gradcheck rows: reductions and softmax. Included once, by test_gradcheck.c,
 * which defines gc_row and the ROW, G, C, ... macros; the table's name is rows_reduce.
 */

static nb_tensor *f_sum(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS_ALL, false);
}

static nb_tensor *f_sum_02_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 2), true);
}

static nb_tensor *f_sum_02(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 2), false);
}

static nb_tensor *f_sum_last(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(-1), false);
}

static nb_tensor *f_sum_1_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(1), true);
}

static nb_tensor *f_sum_all_dims_keep(nb_tensor *const *x)
{
    return nb_sum(x[0], NB_DIMS(0, 1, 2), true);
}

static nb_tensor *f_mean(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS_ALL, false);
}

static nb_tensor *f_mean_02_keep(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(0, 2), true);
}

static nb_tensor *f_mean_02(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(2, 0), false);
}

static nb_tensor *f_mean_last_keep(nb_tensor *const *x)
{
    return nb_mean(x[0], NB_DIMS(-1), true);
}

/*
 * x + offsets that keep every slice's elements far apart (3 or more, x being standard normal
 * and moved by 0.01), so the selecting reductions never meet a tie or a kink: offset k is
 * 3·(7k mod numel), which puts the largest element at a different place in each slice.
 * signed: alternate signs and magnitudes of 4 and more, for the norms of |x|.
 */
static nb_tensor *apart_by(nb_tensor *x, bool signed_)
{
    float o[64];
    int64_t n = nb_tensor_numel(x);
    if (n > 64 || n % 7 == 0) return NULL;
    for (int64_t k = 0; k < n; k++) {
        float m = 3.0f * (float)((7 * k) % n);
        o[k] = signed_ ? (k % 2 ? -1.0f : 1.0f) * (4.0f + m) : m;
    }
    return nb_add(x, nb_from_data(o, nb_tensor_size(x)));
}

static nb_tensor *apart(nb_tensor *x)
{
    return apart_by(x, false);
}

static nb_tensor *f_max(nb_tensor *const *x)
{
    return nb_max(apart(x[0]));
}

static nb_tensor *f_min(nb_tensor *const *x)
{
    return nb_min(apart(x[0]));
}

static nb_tensor *f_max_dim_1(nb_tensor *const *x)
{
    return nb_max_dim(apart(x[0]), 1, false, NULL);
}

static nb_tensor *f_max_dim_last_keep(nb_tensor *const *x)
{
    nb_tensor *idx;
    return nb_max_dim(apart(x[0]), -1, true, &idx);
}

static nb_tensor *f_min_dim_0(nb_tensor *const *x)
{
    return nb_min_dim(apart(x[0]), 0, false, NULL);
}

static nb_tensor *f_min_dim_m2_keep(nb_tensor *const *x)
{
    return nb_min_dim(apart(x[0]), -2, true, NULL);
}

static nb_tensor *f_max_dim_0d(nb_tensor *const *x)
{
    return nb_max_dim(x[0], -1, false, NULL);
}

static nb_tensor *f_amax_02(nb_tensor *const *x)
{
    return nb_amax(apart(x[0]), NB_DIMS(0, 2), false);
}

static nb_tensor *f_amax_all_keep(nb_tensor *const *x)
{
    return nb_amax(apart(x[0]), NB_DIMS_ALL, true);
}

static nb_tensor *f_amax_last(nb_tensor *const *x)
{
    return nb_amax(apart(x[0]), NB_DIMS(-1), false);
}

static nb_tensor *f_amin_1_keep(nb_tensor *const *x)
{
    return nb_amin(apart(x[0]), NB_DIMS(1), true);
}

static nb_tensor *f_amin_all(nb_tensor *const *x)
{
    return nb_amin(apart(x[0]), NB_DIMS_ALL, false);
}

static nb_tensor *f_var_1(nb_tensor *const *x)
{
    return nb_var(x[0], NB_DIMS(1), 1, false);
}

static nb_tensor *f_var_all_c0(nb_tensor *const *x)
{
    return nb_var(x[0], NB_DIMS_ALL, 0, false);
}

static nb_tensor *f_var_02_keep(nb_tensor *const *x)
{
    return nb_var(x[0], NB_DIMS(0, 2), 1, true);
}

static nb_tensor *f_var_last_c2(nb_tensor *const *x)
{
    return nb_var(x[0], NB_DIMS(-1), 2, false);
}

static nb_tensor *f_std_1(nb_tensor *const *x)
{
    return nb_std(x[0], NB_DIMS(1), 1, false);
}

static nb_tensor *f_std_all(nb_tensor *const *x)
{
    return nb_std(x[0], NB_DIMS_ALL, 1, false);
}

static nb_tensor *f_std_all_keep(nb_tensor *const *x)
{
    return nb_std(x[0], NB_DIMS_ALL, 0, true);
}

static nb_tensor *f_std_m3m1_c0(nb_tensor *const *x)
{
    return nb_std(x[0], NB_DIMS(-3, -1), 0, false);
}

static nb_tensor *f_lse_1(nb_tensor *const *x)
{
    return nb_logsumexp(x[0], NB_DIMS(1), false);
}

static nb_tensor *f_lse_02_keep(nb_tensor *const *x)
{
    return nb_logsumexp(x[0], NB_DIMS(0, 2), true);
}

static nb_tensor *f_lse_all(nb_tensor *const *x)
{
    return nb_logsumexp(x[0], NB_DIMS_ALL, false);
}

/* sharper slices: the largest element takes most of the gradient */
static nb_tensor *f_lse_sharp(nb_tensor *const *x)
{
    return nb_logsumexp(nb_mul_scalar(x[0], 5.0f), NB_DIMS(-1), false);
}

static nb_tensor *f_prod(nb_tensor *const *x)
{
    return nb_prod(x[0]);
}

static nb_tensor *f_prod_dim_1(nb_tensor *const *x)
{
    return nb_prod_dim(x[0], 1, false);
}

static nb_tensor *f_prod_dim_last_keep(nb_tensor *const *x)
{
    return nb_prod_dim(x[0], -1, true);
}

static nb_tensor *f_prod_dim_0(nb_tensor *const *x)
{
    return nb_prod_dim(x[0], 0, false);
}

static nb_tensor *f_norm2(nb_tensor *const *x)
{
    return nb_norm(x[0], 2.0f, NB_DIMS_ALL, false);
}

static nb_tensor *f_norm2_1_keep(nb_tensor *const *x)
{
    return nb_norm(x[0], 2.0f, NB_DIMS(1), true);
}

static nb_tensor *f_norm1_0(nb_tensor *const *x)
{
    return nb_norm(x[0], 1.0f, NB_DIMS(0), false);
}

static nb_tensor *f_norm_inf_last(nb_tensor *const *x)
{
    return nb_norm(apart_by(x[0], true), INFINITY, NB_DIMS(-1), false);
}

static nb_tensor *f_norm_ninf_02_keep(nb_tensor *const *x)
{
    return nb_norm(apart_by(x[0], true), -INFINITY, NB_DIMS(0, 2), true);
}

static nb_tensor *f_norm3_1(nb_tensor *const *x)
{
    return nb_norm(x[0], 3.0f, NB_DIMS(1), false);
}

static nb_tensor *f_norm_half_0(nb_tensor *const *x)
{
    return nb_norm(x[0], 0.5f, NB_DIMS(0), false);
}

static nb_tensor *f_norm_1p5_all(nb_tensor *const *x)
{
    return nb_norm(x[0], 1.5f, NB_DIMS_ALL, false);
}

static nb_tensor *f_norm_m1_1(nb_tensor *const *x)
{
    return nb_norm(x[0], -1.0f, NB_DIMS(1), false);
}

static nb_tensor *f_softmax_1(nb_tensor *const *x)
{
    return nb_softmax(x[0], 1);
}

static nb_tensor *f_softmax_last(nb_tensor *const *x)
{
    return nb_softmax(x[0], -1);
}

static nb_tensor *f_softmax_0(nb_tensor *const *x)
{
    return nb_softmax(x[0], 0);
}

static nb_tensor *f_softmax_sharp(nb_tensor *const *x)
{
    return nb_softmax(nb_mul_scalar(x[0], 5.0f), -1);
}

static nb_tensor *f_log_softmax_1(nb_tensor *const *x)
{
    return nb_log_softmax(x[0], 1);
}

static nb_tensor *f_log_softmax_last(nb_tensor *const *x)
{
    return nb_log_softmax(x[0], -1);
}

static nb_tensor *f_log_softmax_m3(nb_tensor *const *x)
{
    return nb_log_softmax(x[0], -3);
}

static nb_tensor *f_log_softmax_sharp(nb_tensor *const *x)
{
    return nb_log_softmax(nb_mul_scalar(x[0], 5.0f), 0);
}

// clang-format off
static const gc_row rows_reduce[] = {
    /* reductions */
    ROW("sum all", f_sum, G(2, 3, 4)),
    ROW("sum all []", f_sum, G0),
    ROW_IMPLICIT("sum all, implicit gradient", f_sum, G(2, 3)),
    ROW("sum {0,2} keepdim", f_sum_02_keep, G(2, 3, 4)),
    ROW("sum {0,2}", f_sum_02, G(2, 3, 4)),
    ROW("sum {-1}", f_sum_last, G(2, 3, 4)),
    ROW("sum {1} keepdim", f_sum_1_keep, G(3, 4)),
    ROW("sum {0,1,2} keepdim", f_sum_all_dims_keep, G(2, 3, 4)),
    ROW("mean all", f_mean, G(2, 3, 4)),
    ROW("mean {0,2} keepdim", f_mean_02_keep, G(2, 3, 4)),
    ROW("mean {2,0}", f_mean_02, G(2, 3, 4)),
    ROW("mean {-1} keepdim", f_mean_last_keep, G(3, 4)),
    /* max, min, amax, amin: inputs kept apart (no ties) */
    ROW_IMPLICIT("max all", f_max, G(2, 3, 4)),
    ROW_IMPLICIT("min all", f_min, G(3, 4)),
    ROW("max_dim 1", f_max_dim_1, G(2, 3, 4)),
    ROW("max_dim -1 keepdim, indices", f_max_dim_last_keep, G(3, 4)),
    ROW("min_dim 0", f_min_dim_0, G(3, 4)),
    ROW("min_dim -2 keepdim", f_min_dim_m2_keep, G(2, 3, 4)),
    ROW_IMPLICIT("max_dim 0-d", f_max_dim_0d, G0),
    ROW("amax {0,2}", f_amax_02, G(2, 3, 4)),
    ROW("amax all keepdim", f_amax_all_keep, G(2, 3)),
    ROW("amax {-1}", f_amax_last, G(4, 5)),
    ROW("amin {1} keepdim", f_amin_1_keep, G(2, 3, 4)),
    ROW_IMPLICIT("amin all", f_amin_all, G(3, 4)),
    /* var, std */
    ROW("var {1}", f_var_1, G(3, 4)),
    ROW_IMPLICIT("var all, correction 0", f_var_all_c0, G(2, 3)),
    ROW("var {0,2} keepdim", f_var_02_keep, G(2, 3, 4)),
    ROW("var {-1}, correction 2", f_var_last_c2, G(2, 5)),
    ROW("std {1}", f_std_1, G(3, 4)),
    ROW_IMPLICIT("std all", f_std_all, G(2, 3, 4)),
    ROW("std all keepdim, correction 0", f_std_all_keep, G(2, 3)),
    ROW("std {-3,-1}, correction 0", f_std_m3m1_c0, G(2, 3, 4)),
    /* logsumexp */
    ROW("logsumexp {1}", f_lse_1, G(3, 4)),
    ROW("logsumexp {0,2} keepdim", f_lse_02_keep, G(2, 3, 4)),
    ROW_IMPLICIT("logsumexp all", f_lse_all, G(2, 3)),
    ROW_IMPLICIT("logsumexp all []", f_lse_all, G0),
    ROW("logsumexp {-1} of 5·x", f_lse_sharp, G(3, 4)),
    /* prod */
    ROW_IMPLICIT("prod all", f_prod, G(2, 3)),
    ROW_IMPLICIT("prod all []", f_prod, G0),
    ROW("prod_dim 1", f_prod_dim_1, G(2, 3, 4)),
    ROW("prod_dim -1 keepdim", f_prod_dim_last_keep, G(3, 4)),
    ROW("prod_dim 0", f_prod_dim_0, G(4, 3)),
    /* norm (p = 1, inf and p < 1 away from the kink at 0) */
    ROW_IMPLICIT("norm p=2 all", f_norm2, G(3, 4)),
    ROW("norm p=2 {1} keepdim", f_norm2_1_keep, G(2, 3, 4)),
    ROW("norm p=1 {0}", f_norm1_0, GA(3, 4)),
    ROW("norm p=inf {-1}", f_norm_inf_last, G(3, 4)),
    ROW("norm p=-inf {0,2} keepdim", f_norm_ninf_02_keep, G(2, 3, 4)),
    ROW("norm p=3 {1}", f_norm3_1, G(3, 4)),
    ROW("norm p=0.5 {0}", f_norm_half_0, GA(3, 4)),
    ROW_IMPLICIT("norm p=1.5 all", f_norm_1p5_all, GA(2, 3)),
    ROW("norm p=-1 {1}", f_norm_m1_1, GA(3, 4)),
    /* softmax */
    ROW("softmax 1", f_softmax_1, G(3, 4)),
    ROW("softmax -1", f_softmax_last, G(2, 3, 4)),
    ROW("softmax 0", f_softmax_0, G(2, 3, 4)),
    ROW("softmax 1 of [2, 3, 4]", f_softmax_1, G(2, 3, 4)),
    ROW("softmax -1 of 5·x", f_softmax_sharp, G(3, 4)),
    ROW("log_softmax 1", f_log_softmax_1, G(3, 4)),
    ROW("log_softmax -1", f_log_softmax_last, G(2, 3, 4)),
    ROW("log_softmax -3", f_log_softmax_m3, G(2, 3, 4)),
    ROW("log_softmax 0 of 5·x", f_log_softmax_sharp, G(3, 4)),
};
// clang-format on
