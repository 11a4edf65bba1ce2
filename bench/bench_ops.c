/*
 * bench-ops — the cost of single ops, per element, against a copy of the same tensor.
 *
 * Each row times one op on X [rows, 2048] (X, Y and P from a fixed seed, Y in [0.5, 1.5), P in
 * [0, 1) for binary_cross_entropy): the forward alone in no-grad mode, then the forward, a sum
 * and the backward with X, Y, P and the bias requiring grad, each in a scope of its own. Times are
 * medians per call (nbb_measure) over the number of elements of X, and `x copy` is that time over
 * the time of nb_clone(X) in the same run. Forward, an elementwise op whose loop is vectorised runs
 * at 1-3 copies, one left scalar by a branch at 10-45, a function of libm (exp, tanh, ...)
 * at 20-170. The forward-and-backward column adds the sum, its backward, the gradients'
 * buffers and writes: 3-15 copies for a vectorised op.
 *
 *   bench-ops [--json] [--quick] [--threads 1,2] [--rows N] [--ops NAME,NAME...]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

#include "bench_util.h"

#define COLS 2048

typedef struct ops_ctx {
    nb_tensor *x, *y, *bias, *mask, *p; /* p: probabilities in [0, 1) */
    nb_tensor *cls;                     /* a class index per row of X */
    int which;
    bool backward;
    bool failed;
} ops_ctx;

typedef nb_tensor *(*op_fn)(const ops_ctx *c);

/* op_NAME(c): the op, on c's operands */
#define OP(name, expr)                                                                             \
    static nb_tensor *op_##name(const ops_ctx *c)                                                  \
    {                                                                                              \
        return expr;                                                                               \
    }
OP(clone, nb_clone(c->x))
OP(add, nb_add(c->x, c->y))
OP(mul, nb_mul(c->x, c->y))
OP(div, nb_div(c->x, c->y))
OP(add_bias, nb_add(c->x, c->bias))
OP(mul_scalar, nb_mul_scalar(c->x, 2.0f))
OP(gt_scalar, nb_gt_scalar(c->x, 0.0f))
OP(maximum, nb_maximum(c->x, c->y))
OP(where, nb_where(c->mask, c->x, c->y))
OP(relu, nb_relu(c->x))
OP(leaky_relu, nb_leaky_relu(c->x, 0.01f))
OP(clamp, nb_clamp(c->x, -0.5f, 0.5f))
OP(abs, nb_abs(c->x))
OP(sqrt, nb_sqrt(c->y))
OP(square, nb_square(c->x))
OP(sigmoid, nb_sigmoid(c->x))
OP(exp, nb_exp(c->x))
OP(tanh, nb_tanh(c->x))
OP(gelu, nb_gelu(c->x, NB_GELU_NONE))
OP(log, nb_log(c->y))
OP(log1p, nb_log1p(c->y))
OP(log2, nb_log2(c->y))
OP(expm1, nb_expm1(c->x))
OP(pow, nb_pow(c->y, c->x))
OP(sin, nb_sin(c->x))
OP(cos, nb_cos(c->x))
OP(softplus, nb_softplus(c->x, 1.0f, 20.0f))
OP(logsigmoid, nb_logsigmoid(c->x))
OP(sum_rows, nb_sum(c->x, (nb_dims){1, {1}}, false))
OP(sum_cols, nb_sum(c->x, (nb_dims){1, {0}}, false))
OP(amax_rows, nb_amax(c->x, (nb_dims){1, {1}}, false))
OP(argmax_rows, nb_argmax(c->x, (nb_dims){1, {1}}, false))
OP(max_dim_rows, nb_max_dim(c->x, 1, false, NULL))
OP(var_rows, nb_var(c->x, (nb_dims){1, {1}}, 1, false))
OP(softmax, nb_softmax(c->x, 1))
OP(log_softmax, nb_log_softmax(c->x, 1))
OP(bce_logits, nb_binary_cross_entropy_with_logits(c->x, c->y, NULL, NULL, NB_MEAN))
OP(bce, nb_binary_cross_entropy(c->p, c->mask, NULL, NB_MEAN))
OP(kl_div, nb_kl_div(c->x, c->y, NB_MEAN, false))
OP(cross_entropy, nb_cross_entropy(c->x, c->cls, NULL, -100, NB_MEAN, 0.0))
OP(logsumexp, nb_logsumexp(c->x, (nb_dims){1, {1}}, false))
OP(elu, nb_elu(c->x, 1.0f))
OP(layer_norm, nb_layer_norm(c->x, (nb_shape){1, {COLS}}, NULL, NULL, 1e-5))
OP(sum_all, nb_sum(c->x, NB_DIMS_ALL, false))
OP(mse, nb_mse_loss(c->x, c->y, NB_MEAN))
OP(pow_scalar, nb_pow_scalar(c->y, 2.5f))
OP(dropout, nb_dropout(c->x, 0.5, true))

static const struct {
    const char *name;
    op_fn fn;
    bool differentiable;
} ops[] = {
    {"clone", op_clone, false},
    {"add", op_add, true},
    {"mul", op_mul, true},
    {"div", op_div, true},
    {"add_bias", op_add_bias, true},
    {"mul_scalar", op_mul_scalar, true},
    {"gt_scalar", op_gt_scalar, false},
    {"maximum", op_maximum, true},
    {"where", op_where, true},
    {"relu", op_relu, true},
    {"leaky_relu", op_leaky_relu, true},
    {"clamp", op_clamp, true},
    {"abs", op_abs, true},
    {"sqrt", op_sqrt, true},
    {"square", op_square, true},
    {"sigmoid", op_sigmoid, true},
    {"exp", op_exp, true},
    {"tanh", op_tanh, true},
    {"gelu", op_gelu, true},
    {"log", op_log, true},
    {"log1p", op_log1p, true},
    {"log2", op_log2, true},
    {"expm1", op_expm1, true},
    {"pow", op_pow, true},
    {"sin", op_sin, true},
    {"cos", op_cos, true},
    {"softplus", op_softplus, true},
    {"logsigmoid", op_logsigmoid, true},
    {"sum_rows", op_sum_rows, true},
    {"sum_cols", op_sum_cols, true},
    {"amax_rows", op_amax_rows, true},
    {"argmax_rows", op_argmax_rows, false},
    {"max_dim_rows", op_max_dim_rows, true},
    {"var_rows", op_var_rows, true},
    {"softmax", op_softmax, true},
    {"log_softmax", op_log_softmax, true},
    {"bce_logits", op_bce_logits, true},
    {"bce", op_bce, true},
    {"kl_div", op_kl_div, true},
    {"cross_entropy", op_cross_entropy, true},
    {"logsumexp", op_logsumexp, true},
    {"elu", op_elu, true},
    {"layer_norm", op_layer_norm, true},
    {"sum_all", op_sum_all, true},
    {"mse", op_mse, true},
    {"pow_scalar", op_pow_scalar, true},
    {"dropout", op_dropout, true},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static void run_op(void *p)
{
    ops_ctx *c = p;
    nb_scope *s = nb_scope_begin();
    if (!s) {
        c->failed = true;
        return;
    }
    if (c->backward) {
        nb_zero_grad(c->x, true);
        nb_zero_grad(c->y, true);
        nb_zero_grad(c->bias, true);
        nb_zero_grad(c->p, true);
        nb_tensor *loss = nb_sum(ops[c->which].fn(c), NB_DIMS_ALL, false);
        if (!loss || nb_backward(loss, NULL, false) != NB_OK) c->failed = true;
    } else {
        bool prev = nb_set_grad_enabled(false);
        if (!ops[c->which].fn(c)) c->failed = true;
        nb_set_grad_enabled(prev);
    }
    if (nb_scope_end(s) != NB_OK) c->failed = true;
}

static void usage(void)
{
    printf("usage: bench-ops [options]\n"
           "  --rows N           rows of the [N, %d] operands (default 512; 8 with --quick)\n"
           "  --ops LIST         only these ops, comma-separated (default: all)\n",
           COLS);
    nbb_print_usage(stdout);
}

static bool make_inputs(ops_ctx *c, int64_t rows)
{
    nb_manual_seed(0);
    c->x = nb_randn(NB_SHAPE(rows, COLS));
    c->p = nb_rand(NB_SHAPE(rows, COLS));
    c->y = c->p ? nb_add_scalar(c->p, 0.5f) : NULL;
    c->bias = nb_randn(NB_SHAPE(COLS));
    c->mask = c->y ? nb_gt_scalar(c->x, 0.0f) : NULL;
    c->cls = nb_empty(NB_SHAPE(rows));
    if (!c->x || !c->y || !c->bias || !c->mask || !c->cls) return false;
    for (int64_t r = 0; r < rows; r++) nb_tensor_data(c->cls)[r] = (float)(r * 7 % COLS);
    return nb_requires_grad_(c->x, true) && nb_requires_grad_(c->y, true) &&
           nb_requires_grad_(c->bias, true) && nb_requires_grad_(c->p, true);
}

int main(int argc, char **argv)
{
    nbb_options opt;
    int rc = nbb_start(&argc, argv, &opt, usage);
    if (rc >= 0) return rc;
    long rows = opt.quick ? 8 : 512;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = nbb_flag_value(argc, argv, &i, "--rows", &missing))) {
            char *end;
            rows = strtol(v, &end, 10);
            if (*end || rows < 1 || rows > 1 << 20) {
                fprintf(stderr, "bench-ops: --rows must be an integer in [1, 1048576]\n");
                return 2;
            }
        } else if ((v = nbb_flag_value(argc, argv, &i, "--ops", &missing))) {
            only = v;
        } else {
            if (!missing) fprintf(stderr, "bench-ops: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    ops_ctx c = {0};
    if (!make_inputs(&c, rows)) {
        fprintf(stderr, "bench-ops: %s\n", nb_last_error()->message);
        return 1;
    }
    const double elems = (double)rows * COLS;
    if (!opt.json)
        printf("bench-ops: ns per element of X [%ld, %d]; x copy = over nb_clone(X)'s time\n"
               "%-12s %7s %10s %7s %12s %7s\n",
               rows, COLS, "op", "threads", "forward", "x copy", "fwd + bwd", "x copy");
    bool ok = true;
    for (size_t t = 0; t < opt.n_threads; t++) {
        if (nb_set_num_threads(opt.threads[t]) != NB_OK) {
            fprintf(stderr, "bench-ops: %s\n", nb_last_error()->message);
            return 1;
        }
        c.which = 0;
        c.backward = false;
        double copy_s = nbb_measure(run_op, &c, &opt).median_s;
        for (size_t o = 0; o < N_OPS; o++) {
            if (!nbb_listed(only, ops[o].name)) continue;
            c.which = (int)o;
            c.backward = false;
            double fwd = nbb_measure(run_op, &c, &opt).median_s;
            double both = 0.0;
            if (ops[o].differentiable) {
                c.backward = true;
                both = nbb_measure(run_op, &c, &opt).median_s;
            }
            if (c.failed) {
                fprintf(stderr, "bench-ops: %s: %s\n", ops[o].name, nb_last_error()->message);
                ok = false;
                c.failed = false;
                continue;
            }
            if (opt.json) {
                NBB_JSON_ROW(stdout, NBB_STR("workload", "ops"), NBB_STR("op", ops[o].name),
                             NBB_INT("threads", opt.threads[t]), NBB_INT("elements", elems),
                             NBB_NUM("forward_ns_per_elem", fwd / elems * 1e9),
                             NBB_NUM("forward_over_copy", fwd / copy_s),
                             ops[o].differentiable
                                 ? NBB_NUM("fwd_bwd_ns_per_elem", both / elems * 1e9)
                                 : NBB_NULL("fwd_bwd_ns_per_elem"),
                             ops[o].differentiable ? NBB_NUM("fwd_bwd_over_copy", both / copy_s)
                                                   : NBB_NULL("fwd_bwd_over_copy"));
            } else if (ops[o].differentiable) {
                printf("%-12s %7d %10.3f %7.1f %12.3f %7.1f\n", ops[o].name, opt.threads[t],
                       fwd / elems * 1e9, fwd / copy_s, both / elems * 1e9, both / copy_s);
            } else {
                printf("%-12s %7d %10.3f %7.1f %12s %7s\n", ops[o].name, opt.threads[t],
                       fwd / elems * 1e9, fwd / copy_s, "-", "-");
            }
        }
    }
    nb_release(c.x);
    nb_release(c.y);
    nb_release(c.bias);
    nb_release(c.mask);
    nb_release(c.p);
    nb_release(c.cls);
    return ok ? 0 : 1;
}
