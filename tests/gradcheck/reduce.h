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
};
// clang-format on
