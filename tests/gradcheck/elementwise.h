/*
 * Gradcheck rows: elementwise arithmetic and activations. Included once, by test_gradcheck.c,
 * which defines gc_row and the ROW, G, C, ... macros; the table's name is rows_elementwise.
 */

static nb_tensor *f_add(nb_tensor *const *x)
{
    return nb_add(x[0], x[1]);
}

static nb_tensor *f_sub(nb_tensor *const *x)
{
    return nb_sub(x[0], x[1]);
}

static nb_tensor *f_mul(nb_tensor *const *x)
{
    return nb_mul(x[0], x[1]);
}

static nb_tensor *f_div(nb_tensor *const *x)
{
    return nb_div(x[0], x[1]);
}

static nb_tensor *f_square(nb_tensor *const *x)
{
    return nb_mul(x[0], x[0]);
}

static nb_tensor *f_add_scalar(nb_tensor *const *x)
{
    return nb_add_scalar(x[0], 1.75f);
}

static nb_tensor *f_sub_scalar(nb_tensor *const *x)
{
    return nb_sub_scalar(x[0], -0.5f);
}

static nb_tensor *f_mul_scalar(nb_tensor *const *x)
{
    return nb_mul_scalar(x[0], -2.5f);
}

static nb_tensor *f_div_scalar(nb_tensor *const *x)
{
    return nb_div_scalar(x[0], 0.3f);
}

static nb_tensor *f_neg(nb_tensor *const *x)
{
    return nb_neg(x[0]);
}

static nb_tensor *f_sigmoid(nb_tensor *const *x)
{
    return nb_sigmoid(x[0]);
}

static nb_tensor *f_relu(nb_tensor *const *x)
{
    return nb_relu(x[0]);
}

// clang-format off
static const gc_row rows_elementwise[] = {
    /* add, sub, mul, div: equal shapes and broadcasting */
    ROW("add [2,3]+[2,3]", f_add, G(2, 3), G(2, 3)),
    ROW("add [2,3]+[3]", f_add, G(2, 3), G(3)),
    ROW("add [3]+[2,3]", f_add, G(3), G(2, 3)),
    ROW("add [4,1]+[1,5]", f_add, G(4, 1), G(1, 5)),
    ROW("add [2,1,3]+[4,1]", f_add, G(2, 1, 3), G(4, 1)),
    ROW("add []+[3]", f_add, G0, G(3)),
    ROW("add [2,3]+[3] const", f_add, G(2, 3), C(3)),
    ROW("sub [2,3]-[2,3]", f_sub, G(2, 3), G(2, 3)),
    ROW("sub [2,3]-[3]", f_sub, G(2, 3), G(3)),
    ROW("sub [1]-[2,3]", f_sub, G(1), G(2, 3)),
    ROW("sub [4,1]-[1,5]", f_sub, G(4, 1), G(1, 5)),
    ROW("sub [2,1,3]-[4,1]", f_sub, G(2, 1, 3), G(4, 1)),
    ROW("sub [3]-[]", f_sub, G(3), G0),
    ROW("sub const [2,3]-[3]", f_sub, C(2, 3), G(3)),
    ROW("mul [2,3]*[2,3]", f_mul, G(2, 3), G(2, 3)),
    ROW("mul [2,3]*[3]", f_mul, G(2, 3), G(3)),
    ROW("mul [4,1]*[1,5]", f_mul, G(4, 1), G(1, 5)),
    ROW("mul [2,1,3]*[4,1]", f_mul, G(2, 1, 3), G(4, 1)),
    ROW("mul []*[3]", f_mul, G0, G(3)),
    ROW("mul [3]*[] const", f_mul, G(3), C0),
    ROW("mul x*x", f_square, G(2, 3)),
    ROW("div [2,3]/[2,3]", f_div, G(2, 3), GA(2, 3)),
    ROW("div [2,3]/[3]", f_div, G(2, 3), GA(3)),
    ROW("div [3]/[2,3]", f_div, G(3), GA(2, 3)),
    ROW("div [4,1]/[1,5]", f_div, G(4, 1), GA(1, 5)),
    ROW("div [2,1,3]/[4,1]", f_div, G(2, 1, 3), GA(4, 1)),
    ROW("div []/[3]", f_div, G0, GA(3)),
    ROW("div [3]/[]", f_div, G(3), GA0),
    ROW("div const [2,3]/[3]", f_div, C(2, 3), GA(3)),
    ROW("div [2,3]/[3] const", f_div, G(2, 3), CA(3)),
    /* with a number; neg */
    ROW("add_scalar", f_add_scalar, G(2, 3)),
    ROW("sub_scalar", f_sub_scalar, G(2, 3)),
    ROW("mul_scalar", f_mul_scalar, G(2, 3)),
    ROW("div_scalar", f_div_scalar, G(2, 3)),
    ROW("neg", f_neg, G(2, 3)),
    ROW("neg []", f_neg, G0),
    /* unary */
    ROW("sigmoid", f_sigmoid, G(3, 4)),
    ROW("sigmoid []", f_sigmoid, G0),
    ROW("relu", f_relu, GA(3, 4)),
};
// clang-format on
