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

/* ---- joining, tiling, flipping ---------------------------------------------------------- */

static nb_tensor *f_cat0(nb_tensor *const *x)
{
    return nb_cat((nb_tensor *[]){x[0], x[1], x[2]}, 3, 0);
}

static nb_tensor *f_cat_last(nb_tensor *const *x)
{
    return nb_cat((nb_tensor *[]){x[0], x[1], x[2]}, 3, -1);
}

/* the same tensor twice, and a 1-D empty one that cat skips */
static nb_tensor *f_cat_twice(nb_tensor *const *x)
{
    nb_tensor *e = nb_zeros(NB_SHAPE(0));
    return nb_mul(nb_cat((nb_tensor *[]){x[0], e, x[0]}, 3, 1), x[1]);
}

static nb_tensor *f_stack0(nb_tensor *const *x)
{
    return nb_stack((nb_tensor *[]){x[0], x[1]}, 2, 0);
}

static nb_tensor *f_stack_last(nb_tensor *const *x)
{
    return nb_stack((nb_tensor *[]){x[0], x[1], x[0]}, 3, -1);
}

static nb_tensor *f_stack_scalars(nb_tensor *const *x)
{
    return nb_stack((nb_tensor *[]){x[0], x[1], x[0]}, 3, 0);
}

static nb_tensor *f_expand_rows(nb_tensor *const *x)
{
    return nb_expand(x[0], NB_SHAPE(4, 3));
}

static nb_tensor *f_expand_lead(nb_tensor *const *x)
{
    return nb_expand(x[0], NB_SHAPE(2, -1, 4, 3));
}

static nb_tensor *f_expand_view(nb_tensor *const *x)
{
    return nb_mul(nb_expand(x[0], NB_SHAPE(1, -1)), x[1]);
}

static nb_tensor *f_repeat22(nb_tensor *const *x)
{
    return nb_repeat(x[0], NB_SHAPE(2, 2));
}

static nb_tensor *f_repeat_lead(nb_tensor *const *x)
{
    return nb_repeat(x[0], NB_SHAPE(2, 1, 3));
}

static nb_tensor *f_repeat_scalar(nb_tensor *const *x)
{
    return nb_repeat(x[0], NB_SHAPE(3, 2));
}

static nb_tensor *f_flip02(nb_tensor *const *x)
{
    return nb_flip(x[0], NB_DIMS(0, 2));
}

static nb_tensor *f_flip_last(nb_tensor *const *x)
{
    return nb_mul(nb_flip(x[0], NB_DIMS(-1)), x[0]);
}

static nb_tensor *f_narrow0(nb_tensor *const *x)
{
    return nb_narrow(x[0], 0, 1, 2);
}

/* two overlapping narrows of one tensor, along dim 1 from the end */
static nb_tensor *f_narrow_overlap(nb_tensor *const *x)
{
    return nb_mul(nb_narrow(x[0], 1, -3, 2), nb_narrow(x[0], 1, 1, 2));
}

/* ---- indexing: the indices are constants made here -------------------------------------- */

static nb_tensor *f_index_select0(nb_tensor *const *x)
{
    return nb_index_select(x[0], 0, nb_from_data((const float[]){2, 0, 2, 1, 2}, NB_SHAPE(5)));
}

static nb_tensor *f_index_select_last(nb_tensor *const *x)
{
    return nb_index_select(x[0], -1, nb_from_data((const float[]){3, 3, 0}, NB_SHAPE(3)));
}

static nb_tensor *f_gather1(nb_tensor *const *x)
{
    return nb_gather(x[0], 1,
                     nb_from_data((const float[]){0, 3, 3, 1, 1, 1, 2, 0}, NB_SHAPE(2, 4)));
}

static nb_tensor *f_gather0_3d(nb_tensor *const *x)
{
    return nb_gather(x[0], 0, nb_from_data((const float[]){1, 0, 1, 1, 0, 0}, NB_SHAPE(1, 3, 2)));
}

/* x [3, 4], src [2, 4]: positions repeat */
static nb_tensor *f_scatter_add(nb_tensor *const *x)
{
    return nb_scatter_add(
        x[0], 0, nb_from_data((const float[]){0, 2, 2, 1, 2, 2, 0, 1}, NB_SHAPE(2, 4)), x[1]);
}

/* src [3, 5] larger than the index [2, 3] (PyTorch's backward refuses it) */
static nb_tensor *f_scatter_add_big_src(nb_tensor *const *x)
{
    return nb_scatter_add(x[0], -1, nb_from_data((const float[]){3, 0, 3, 1, 1, 2}, NB_SHAPE(2, 3)),
                          x[1]);
}

static nb_tensor *f_embedding(nb_tensor *const *x)
{
    return nb_embedding(x[0], nb_from_data((const float[]){4, 1, 1, 0}, NB_SHAPE(4)),
                        NB_NO_PADDING);
}

/* ids [2, 3] and a padding row that no id uses: the padding row's gradient is zero by
 * definition, not the derivative, so a numeric check cannot cover an id that uses it (the
 * references of test_ops_shape.c do) */
static nb_tensor *f_embedding_pad(nb_tensor *const *x)
{
    return nb_embedding(x[0], nb_from_data((const float[]){4, 1, 1, 0, 4, 2}, NB_SHAPE(2, 3)), -2);
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
    /* joining, tiling, flipping */
    ROW("cat dim 0 [2,3]+[1,3]+[3,3]", f_cat0, G(2, 3), G(1, 3), G(3, 3)),
    ROW("cat dim -1, a constant", f_cat_last, G(2, 3), C(2, 1), G(2, 2)),
    ROW("cat [x, [0], x] dim 1 * w", f_cat_twice, G(2, 3), G(2, 6)),
    ROW("stack dim 0", f_stack0, G(2, 3), G(2, 3)),
    ROW("stack dim -1, x twice", f_stack_last, G(2, 3), C(2, 3)),
    ROW("stack 0-d", f_stack_scalars, G0, G0),
    ROW("expand [1,3]->[4,3]", f_expand_rows, G(1, 3)),
    ROW("expand [3,1,3]->[2,-1,4,3]", f_expand_lead, G(3, 1, 3)),
    ROW("expand [3]->[1,-1] (a view) * w", f_expand_view, G(3), G(2, 3)),
    ROW("repeat [2,3] by (2,2)", f_repeat22, G(2, 3)),
    ROW("repeat [3] by (2,1,3)", f_repeat_lead, G(3)),
    ROW("repeat 0-d by (3,2)", f_repeat_scalar, G0),
    ROW("flip dims 0,2 [2,3,4]", f_flip02, G(2, 3, 4)),
    ROW("flip -1 * x", f_flip_last, G(3, 4)),
    ROW("narrow dim 0 [4,3]", f_narrow0, G(4, 3)),
    ROW("narrow dim 1 twice, overlapping", f_narrow_overlap, G(3, 4)),
    /* indexing */
    ROW("index_select dim 0, repeated", f_index_select0, G(3, 2)),
    ROW("index_select dim -1 [2,3,4]", f_index_select_last, G(2, 3, 4)),
    ROW("gather dim 1, repeated", f_gather1, G(3, 4)),
    ROW("gather dim 0 [2,3,2]", f_gather0_3d, G(2, 3, 2)),
    ROW("scatter_add x and src", f_scatter_add, G(3, 4), G(2, 4)),
    ROW("scatter_add src only", f_scatter_add, C(3, 4), G(2, 4)),
    ROW("scatter_add dim -1, src larger than index", f_scatter_add_big_src, G(2, 4), G(3, 5)),
    ROW("embedding", f_embedding, G(5, 3)),
    ROW("embedding ids [2,3], padding -2 unused", f_embedding_pad, G(5, 3)),
    /* several outputs */
    ROW("split rows, a piece unused", f_split_rows, G(5, 3)),
    ROW("split cols, broadcast piece", f_split_cols, G(3, 5)),
    ROW("chunk, with a constant", f_chunk, G(2, 4, 3), C(2, 2, 3)),
};
// clang-format on
