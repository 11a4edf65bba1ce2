/*
 * Gradcheck rows: shape and indexing, several outputs. Included once, by test_gradcheck.c,
 * which defines gc_row and the ROW, G, C, ... macros; the table's name is rows_shape.
 */

/* Pieces of a split used unevenly: the last gets no gradient at all. */
static nb_tensor *f_split_rows(nb_tensor *const *x)
{
    nb_tensor *p[3];
    if (nb_split(x[0], 2, 0, p, 3) != 3) return NULL;
    return nb_add(nb_mul_scalar(p[0], 2.0f), nb_mul(p[1], p[1]));
}

static nb_tensor *f_split_cols(nb_tensor *const *x)
{
    nb_tensor *p[3];
    if (nb_split(x[0], 2, -1, p, 3) != 3) return NULL;
    return nb_mul(p[0], nb_add(p[1], p[2])); /* p[2] is [3, 1]: broadcast */
}

static nb_tensor *f_chunk(nb_tensor *const *x)
{
    nb_tensor *p[2];
    if (nb_chunk(x[0], 2, 1, p, 2) != 2) return NULL;
    return nb_sub(p[1], nb_mul(p[0], x[1]));
}

static nb_tensor *f_reshape(nb_tensor *const *x)
{
    return nb_reshape(x[0], NB_SHAPE(3, -1));
}

static nb_tensor *f_view_mul(nb_tensor *const *x)
{
    return nb_mul(nb_view(x[0], NB_SHAPE(12)), x[1]);
}

static nb_tensor *f_squeeze_all(nb_tensor *const *x)
{
    return nb_squeeze(x[0], NB_DIMS_ALL);
}

static nb_tensor *f_squeeze_1(nb_tensor *const *x)
{
    return nb_squeeze(x[0], NB_DIMS(1));
}

static nb_tensor *f_unsqueeze(nb_tensor *const *x)
{
    return nb_mul(nb_unsqueeze(x[0], -1), x[1]);
}

static nb_tensor *f_flatten(nb_tensor *const *x)
{
    return nb_flatten(x[0], 1, 2);
}

static nb_tensor *f_slice(nb_tensor *const *x)
{
    return nb_slice(x[0], 0, 1, 3, 1);
}

static nb_tensor *f_two_slices(nb_tensor *const *x)
{
    return nb_mul(nb_slice(x[0], 0, 1, 3, 1), nb_slice(x[0], 0, 0, 2, 1));
}

static nb_tensor *f_transpose(nb_tensor *const *x)
{
    return nb_transpose(x[0], 0, 2);
}

static nb_tensor *f_permute(nb_tensor *const *x)
{
    return nb_permute(x[0], NB_DIMS(2, 0, 1));
}

static nb_tensor *f_t(nb_tensor *const *x)
{
    return nb_t(x[0]);
}

static nb_tensor *f_t_matmul(nb_tensor *const *x)
{
    return nb_matmul(nb_t(x[0]), nb_transpose(x[1], 0, 1));
}

// clang-format off
static const gc_row rows_shape[] = {
    /* shape ops: views and copies */
    ROW("reshape [2,6]->[3,-1]", f_reshape, G(2, 6)),
    ROW("view [2,3,2]->[12] * [12]", f_view_mul, G(2, 3, 2), G(12)),
    ROW("squeeze all [2,1,3]", f_squeeze_all, G(2, 1, 3)),
    ROW("squeeze 1 [2,1,3]", f_squeeze_1, G(2, 1, 3)),
    ROW("unsqueeze -1 [2,3] * [2,3,4]", f_unsqueeze, G(2, 3), G(2, 3, 4)),
    ROW("flatten 1..2 [2,3,4]", f_flatten, G(2, 3, 4)),
    ROW("slice 1:3 [4,3]", f_slice, G(4, 3)),
    ROW("slice 1:3 * slice 0:2 [4,3]", f_two_slices, G(4, 3)),
    ROW("transpose 0,2 [2,3,4]", f_transpose, G(2, 3, 4)),
    ROW("permute 2,0,1 [2,3,4]", f_permute, G(2, 3, 4)),
    ROW("t [3,4]", f_t, G(3, 4)),
    ROW("t [5]", f_t, G(5)),
    ROW("t [4,3] @ transpose [5,4]", f_t_matmul, G(4, 3), G(5, 4)),
    /* several outputs */
    ROW("split rows, a piece unused", f_split_rows, G(5, 3)),
    ROW("split cols, broadcast piece", f_split_cols, G(3, 5)),
    ROW("chunk, with a constant", f_chunk, G(2, 4, 3), C(2, 2, 3)),
};
// clang-format on
