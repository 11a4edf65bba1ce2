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

/* unary math: the input's domain chosen by its fill (GW, GP positive; GA away from 0) */
#define GC_UNARY(name, call)                                                                       \
    static nb_tensor *f_##name(nb_tensor *const *x)                                                \
    {                                                                                              \
        return call;                                                                               \
    }
GC_UNARY(exp, nb_exp(x[0]))
GC_UNARY(expm1, nb_expm1(x[0]))
GC_UNARY(log, nb_log(x[0]))
GC_UNARY(log2, nb_log2(x[0]))
GC_UNARY(log1p, nb_log1p(x[0]))
GC_UNARY(sqrt, nb_sqrt(x[0]))
GC_UNARY(rsqrt, nb_rsqrt(x[0]))
GC_UNARY(reciprocal, nb_reciprocal(x[0]))
GC_UNARY(square_op, nb_square(x[0]))
GC_UNARY(pow_2_5, nb_pow_scalar(x[0], 2.5f))
GC_UNARY(pow_m1_5, nb_pow_scalar(x[0], -1.5f))
GC_UNARY(pow_0_5, nb_pow_scalar(x[0], 0.5f))
GC_UNARY(pow_m0_5, nb_pow_scalar(x[0], -0.5f))
GC_UNARY(pow_m1, nb_pow_scalar(x[0], -1.0f))
GC_UNARY(pow_m2, nb_pow_scalar(x[0], -2.0f))
GC_UNARY(pow_1, nb_pow_scalar(x[0], 1.0f))
GC_UNARY(pow_2, nb_pow_scalar(x[0], 2.0f))
GC_UNARY(pow_3, nb_pow_scalar(x[0], 3.0f))
GC_UNARY(pow_4, nb_pow_scalar(x[0], 4.0f))
GC_UNARY(pow_0, nb_pow_scalar(x[0], 0.0f))
GC_UNARY(sin, nb_sin(x[0]))
GC_UNARY(cos, nb_cos(x[0]))
GC_UNARY(tanh, nb_tanh(x[0]))
GC_UNARY(abs, nb_abs(x[0]))
GC_UNARY(sign, nb_sign(x[0]))
/* piecewise ops on GA inputs (|x| >= 0.5) with their kinks at 0 or ±0.25, where no input or
 * step of the check can reach them */
GC_UNARY(clamp_both_lo, nb_clamp(x[0], -0.25f, 4.0f))
GC_UNARY(clamp_both_hi, nb_clamp(x[0], -4.0f, 0.25f))
GC_UNARY(clamp_min, nb_clamp(x[0], -0.25f, INFINITY))
GC_UNARY(clamp_max, nb_clamp(x[0], -INFINITY, 0.25f))
GC_UNARY(hardtanh_lo, nb_hardtanh(x[0], -0.25f, 4.0f))
GC_UNARY(hardtanh_hi, nb_hardtanh(x[0], -4.0f, 0.25f))
GC_UNARY(leaky_relu, nb_leaky_relu(x[0], 0.01f))
GC_UNARY(leaky_relu_neg, nb_leaky_relu(x[0], -0.3f))
GC_UNARY(elu, nb_elu(x[0], 1.0f))
GC_UNARY(elu_alpha, nb_elu(x[0], 0.4f))
GC_UNARY(gelu, nb_gelu(x[0], NB_GELU_NONE))
GC_UNARY(gelu_tanh, nb_gelu(x[0], NB_GELU_TANH))
GC_UNARY(silu, nb_silu(x[0]))
GC_UNARY(softplus, nb_softplus(x[0], 1.0f, 20.0f))
/* beta 2, threshold 0.5: the switch at x = 0.25, between GA's values */
GC_UNARY(softplus_threshold, nb_softplus(x[0], 2.0f, 0.5f))
GC_UNARY(logsigmoid, nb_logsigmoid(x[0]))
#undef GC_UNARY

static nb_tensor *f_pow(nb_tensor *const *x)
{
    return nb_pow(x[0], x[1]);
}

/* maximum / minimum of a (GA: |a| >= 0.5) and b/10 (|b/10| < 0.5 for any normal draw): the
 * operands never tie, nor come within a step of each other */
static nb_tensor *f_maximum(nb_tensor *const *x)
{
    return nb_maximum(x[0], nb_mul_scalar(x[1], 0.1f));
}

static nb_tensor *f_minimum(nb_tensor *const *x)
{
    return nb_minimum(x[0], nb_mul_scalar(x[1], 0.1f));
}

/* where and masked_fill with a 0/1 selector made from a constant input's signs */
static nb_tensor *f_where(nb_tensor *const *x)
{
    return nb_where(nb_gt_scalar(x[2], 0.0f), x[0], x[1]);
}

static nb_tensor *f_masked_fill(nb_tensor *const *x)
{
    return nb_masked_fill(x[0], nb_gt_scalar(x[1], 0.0f), -1.5f);
}

/* GW: requires grad, uniform in [0.5, 2] (steep functions near 0: roots, powers) */
// clang-format off
#define GW(...) {S(__VA_ARGS__), true, GC_POS}
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
    /* unary math */
    ROW("exp", f_exp, G(3, 4)),
    ROW("exp []", f_exp, G0),
    ROW("expm1", f_expm1, G(3, 4)),
    ROW("log", f_log, GW(3, 4)),
    ROW("log2", f_log2, GW(3, 4)),
    ROW("log1p", f_log1p, GP(3, 4)),
    ROW("sqrt", f_sqrt, GW(3, 4)),
    ROW("rsqrt", f_rsqrt, GW(3, 4)),
    ROW("reciprocal", f_reciprocal, GA(3, 4)),
    ROW("square", f_square_op, G(3, 4)),
    ROW("pow_scalar 2.5", f_pow_2_5, GW(3, 4)),
    ROW("pow_scalar -1.5", f_pow_m1_5, GW(3, 4)),
    ROW("pow_scalar 0.5", f_pow_0_5, GW(3, 4)),
    ROW("pow_scalar -0.5", f_pow_m0_5, GW(3, 4)),
    ROW("pow_scalar -1", f_pow_m1, GA(3, 4)),
    ROW("pow_scalar -2", f_pow_m2, GA(3, 4)),
    ROW("pow_scalar 1", f_pow_1, G(3, 4)),
    ROW("pow_scalar 2", f_pow_2, G(3, 4)),
    ROW("pow_scalar 3", f_pow_3, G(3, 4)),
    ROW("pow_scalar 4", f_pow_4, G(3, 4)),
    ROW("pow_scalar 0", f_pow_0, G(3, 4)),
    ROW("sin", f_sin, G(3, 4)),
    ROW("cos", f_cos, G(3, 4)),
    ROW("tanh", f_tanh, G(3, 4)),
    ROW("tanh []", f_tanh, G0),
    ROW("abs", f_abs, GA(3, 4)),
    ROW("sign", f_sign, GA(3, 4)),
    /* clamping and activations */
    ROW("clamp min and max, lower", f_clamp_both_lo, GA(3, 4)),
    ROW("clamp min and max, upper", f_clamp_both_hi, GA(3, 4)),
    ROW("clamp min only", f_clamp_min, GA(3, 4)),
    ROW("clamp max only", f_clamp_max, GA(3, 4)),
    ROW("hardtanh, lower", f_hardtanh_lo, GA(3, 4)),
    ROW("hardtanh, upper", f_hardtanh_hi, GA(3, 4)),
    ROW("leaky_relu", f_leaky_relu, GA(3, 4)),
    ROW("leaky_relu negative slope", f_leaky_relu_neg, GA(3, 4)),
    ROW("elu", f_elu, GA(3, 4)),
    ROW("elu alpha 0.4", f_elu_alpha, GA(3, 4)),
    ROW("gelu", f_gelu, G(3, 4)),
    ROW("gelu tanh", f_gelu_tanh, G(3, 4)),
    ROW("silu", f_silu, G(3, 4)),
    ROW("softplus", f_softplus, G(3, 4)),
    ROW("softplus threshold", f_softplus_threshold, GA(3, 4)),
    ROW("logsigmoid", f_logsigmoid, G(3, 4)),
    ROW("logsigmoid []", f_logsigmoid, G0),
    /* pow, maximum, minimum: equal shapes and broadcasting */
    ROW("pow [2,3]^[2,3]", f_pow, GW(2, 3), G(2, 3)),
    ROW("pow [2,3]^[3]", f_pow, GW(2, 3), G(3)),
    ROW("pow [3,1]^[1,4]", f_pow, GW(3, 1), G(1, 4)),
    ROW("pow []^[3]", f_pow, {S0, true, GC_POS}, G(3)),
    ROW("pow [2,3]^[3] const base", f_pow, CW(2, 3), G(3)),
    ROW("pow [2,3]^[3] const exponent", f_pow, GW(2, 3), C(3)),
    ROW("maximum [2,3],[2,3]", f_maximum, GA(2, 3), G(2, 3)),
    ROW("maximum [2,3],[3]", f_maximum, GA(2, 3), G(3)),
    ROW("maximum [3],[2,3]", f_maximum, GA(3), G(2, 3)),
    ROW("maximum [4,1],[1,5]", f_maximum, GA(4, 1), G(1, 5)),
    ROW("maximum [2,3],[] const", f_maximum, GA(2, 3), C0),
    ROW("minimum [2,3],[2,3]", f_minimum, GA(2, 3), G(2, 3)),
    ROW("minimum [2,1,3],[4,1]", f_minimum, GA(2, 1, 3), G(4, 1)),
    ROW("minimum [],[3]", f_minimum, GA0, G(3)),
    /* where and masked_fill */
    ROW("where [2,3] [2,3] [2,3]", f_where, G(2, 3), G(2, 3), C(2, 3)),
    ROW("where cond [2,1], a [3], b []", f_where, G(3), G0, C(2, 1)),
    ROW("where cond [3], a [2,1], b [2,3]", f_where, G(2, 1), G(2, 3), C(3)),
    ROW("where b const", f_where, G(4, 1), C(1, 5), C(4, 5)),
    ROW("masked_fill [2,3] mask [2,3]", f_masked_fill, G(2, 3), C(2, 3)),
    ROW("masked_fill [3] mask [2,3]", f_masked_fill, G(3), C(2, 3)),
    ROW("masked_fill [4,1] mask [5]", f_masked_fill, G(4, 1), C(5)),
};
#undef GW
// clang-format on
