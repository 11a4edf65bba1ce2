/*
 * Gradcheck rows: conv2d with its options. Included once, by test_gradcheck.c, which defines
 * gc_row and the ROW, G, C, ... macros; the table's name is rows_conv. Inputs: x, weight,
 * bias (NONE: NULL).
 */

static nb_tensor *f_conv2d(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 1);
}

static nb_tensor *f_conv2d_stride_pad(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(2, 1), NB_SHAPE(1, 2), NB_SHAPE(1), 1);
}

static nb_tensor *f_conv2d_dilation(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(2, 1), 1);
}

static nb_tensor *f_conv2d_groups2(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 2);
}

/* depthwise: groups = channels */
static nb_tensor *f_conv2d_depthwise(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), 3);
}

/* a stride larger than the kernel: some inputs reach no output */
static nb_tensor *f_conv2d_stride3(nb_tensor *const *x)
{
    return nb_conv2d(x[0], x[1], x[2], NB_SHAPE(3), NB_SHAPE(0), NB_SHAPE(1), 1);
}

/* sum(conv2d(tanh(conv2d(x, w1)), w2, b)): two convolutions in a chain, 0-d */
static nb_tensor *f_conv2d_chain(nb_tensor *const *x)
{
    nb_tensor *h = nb_conv2d(x[0], x[1], NULL, NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 1);
    return nb_sum(nb_conv2d(nb_tanh(h), x[2], x[3], NB_SHAPE(2), NB_SHAPE(0), NB_SHAPE(1), 1),
                  NB_DIMS_ALL, false);
}

static const gc_row rows_conv[] = {
    ROW("conv2d 3x3, bias", f_conv2d, G(2, 3, 5, 4), G(4, 3, 3, 3), G(4)),
    ROW("conv2d no bias", f_conv2d, G(2, 3, 5, 4), G(4, 3, 3, 3), NONE),
    ROW("conv2d non-square kernel 2x3", f_conv2d, G(1, 2, 4, 5), G(3, 2, 2, 3), G(3)),
    ROW("conv2d 1x1 kernel", f_conv2d, G(2, 3, 3, 2), G(4, 3, 1, 1), G(4)),
    ROW("conv2d unbatched", f_conv2d, G(3, 5, 4), G(2, 3, 3, 3), G(2)),
    ROW("conv2d stride (2, 1), padding (1, 2)", f_conv2d_stride_pad, G(2, 2, 5, 4), G(3, 2, 3, 3),
        G(3)),
    ROW("conv2d dilation (2, 1), padding 1", f_conv2d_dilation, G(1, 2, 6, 5), G(3, 2, 3, 2), G(3)),
    ROW("conv2d groups 2", f_conv2d_groups2, G(2, 4, 4, 4), G(6, 2, 3, 3), G(6)),
    ROW("conv2d depthwise, stride 2", f_conv2d_depthwise, G(2, 3, 5, 5), G(3, 1, 3, 3), G(3)),
    ROW("conv2d depthwise, unbatched, no bias", f_conv2d_depthwise, G(3, 4, 5), G(6, 1, 2, 2),
        NONE),
    ROW("conv2d stride 3 over a 2x2 kernel", f_conv2d_stride3, G(1, 2, 7, 7), G(2, 2, 2, 2), G(2)),
    ROW("conv2d constant input", f_conv2d, C(2, 3, 4, 4), G(2, 3, 3, 3), G(2)),
    ROW("conv2d constant weight", f_conv2d, G(2, 3, 4, 4), C(2, 3, 3, 3), G(2)),
    ROW("conv2d only the bias", f_conv2d, C(1, 2, 4, 4), C(2, 2, 3, 3), G(2)),
    ROW("conv2d only the input", f_conv2d, G(1, 2, 4, 4), C(2, 2, 3, 3), C(2)),
    ROW_IMPLICIT("conv2d chain, implicit gradient", f_conv2d_chain, G(1, 2, 5, 5), G(3, 2, 3, 3),
                 G(2, 3, 2, 2), G(2)),
};
