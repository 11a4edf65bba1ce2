/*
 * Gradcheck rows: 2-D pooling. Included once, by test_gradcheck.c, after gradcheck/reduce.h
 * (whose apart() keeps max_pool2d's inputs free of ties and near ties), which defines gc_row
 * and the ROW, G, C, ... macros; the table's name is rows_pool.
 */

static nb_tensor *f_max_pool_2(nb_tensor *const *x)
{
    return nb_max_pool2d(apart(x[0]), NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false);
}

/* overlapping windows: one element is the max of several, its gradient their sum */
static nb_tensor *f_max_pool_3_s1_p1(nb_tensor *const *x)
{
    return nb_max_pool2d(apart(x[0]), NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), false);
}

static nb_tensor *f_max_pool_dilated_ceil(nb_tensor *const *x)
{
    return nb_max_pool2d(apart(x[0]), NB_SHAPE(2, 3), NB_SHAPE(2, 1), NB_SHAPE(1, 0),
                         NB_SHAPE(2, 1), true);
}

static nb_tensor *f_max_pool_indices(nb_tensor *const *x)
{
    nb_tensor *idx = NULL;
    nb_tensor *y = nb_max_pool2d_with_indices(apart(x[0]), NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1),
                                              NB_SHAPE(1), true, &idx);
    nb_release(idx);
    return y;
}

static nb_tensor *f_avg_pool_2(nb_tensor *const *x)
{
    return nb_avg_pool2d(x[0], NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0);
}

static nb_tensor *f_avg_pool_3_s1_p1(nb_tensor *const *x)
{
    return nb_avg_pool2d(x[0], NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), false, true, 0);
}

static nb_tensor *f_avg_pool_ceil_no_pad(nb_tensor *const *x)
{
    return nb_avg_pool2d(x[0], NB_SHAPE(3, 2), NB_SHAPE(2), NB_SHAPE(1), true, false, 0);
}

static nb_tensor *f_avg_pool_divisor(nb_tensor *const *x)
{
    return nb_avg_pool2d(x[0], NB_SHAPE(2, 3), NB_SHAPE(1, 2), NB_SHAPE(1, 0), true, true, 5);
}

// clang-format off
static const gc_row rows_pool[] = {
    ROW("max_pool2d 2", f_max_pool_2, G(1, 2, 4, 6)),
    ROW("max_pool2d 3, stride 1, padding 1", f_max_pool_3_s1_p1, G(2, 1, 5, 6)),
    ROW("max_pool2d (2, 3), stride (2, 1), padding (1, 0), dilation (2, 1), ceil_mode",
        f_max_pool_dilated_ceil, G(1, 1, 6, 5)),
    ROW("max_pool2d_with_indices unbatched, 2, stride 1, padding 1, ceil_mode",
        f_max_pool_indices, G(2, 5, 6)),
    ROW("avg_pool2d 2", f_avg_pool_2, G(1, 2, 4, 6)),
    ROW("avg_pool2d 3, stride 1, padding 1", f_avg_pool_3_s1_p1, G(2, 1, 5, 6)),
    ROW("avg_pool2d (3, 2), stride 2, padding 1, ceil_mode, count_include_pad false",
        f_avg_pool_ceil_no_pad, G(1, 2, 5, 6)),
    ROW("avg_pool2d unbatched (2, 3), stride (1, 2), padding (1, 0), divisor 5",
        f_avg_pool_divisor, G(3, 4, 5)),
};
// clang-format on
