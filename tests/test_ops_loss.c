/*
 * Linear algebra, losses, dropout and layer_norm against PyTorch 1.13 (data/loss_ref.h, made
 * by data/gen_loss.py): forward values, node names and the gradients of every input, also
 * when the engine lends a buffer holding a partial sum; dropout masks bit for bit from the
 * same seeds; the special cases of dropout; every error path with its message; allocation
 * failure at every step of a forward and a backward. Gradients are also checked numerically
 * by test_gradcheck.c (gradcheck/linalg_loss.h).
 *
 * Tolerances: outputs marked exact in the table are compared bit for bit (nabla does
 * PyTorch's float operations in its order), and so are the gradients of one backward marked
 * exact_grad; the others, and every gradient, within 1e-5 relative plus 1e-6 of the array's
 * largest magnitude (BLAS and PyTorch's vectorised sums and exps round differently in the
 * last bits). Infinities and NaN must match exactly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "data/loss_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers --------------------------------------------------------------------------- */

static void check_values(const char *what, const char *name, const float *got, const float *want,
                         int64_t n, bool exact)
{
    double big = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(want[i]) && fabs((double)want[i]) > big) big = fabs((double)want[i]);
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        bool ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (exact || isinf(w) || isinf(g))
            ok = memcmp(&got[i], &want[i], sizeof(float)) == 0;
        else
            ok = fabs(g - w) <= 1e-6 * big + 1e-5 * fabs(w);
        if (!ok)
            fail_msg("%s: %s element %lld: got %a (%.9g), want %a (%.9g)", name, what, (long long)i,
                     g, g, w, w);
    }
}

static int64_t numel_of(const lref_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->dims[i];
    return n;
}

static nb_shape shape_of(const lref_tensor *t)
{
    return nb_shape_make(t->ndim, t->dims);
}

static nb_tensor *make_input(const lref_tensor *t)
{
    if (t->ndim < 0) return NULL;
    nb_tensor *x = nb_from_data(t->data, shape_of(t));
    assert_non_null(x);
    if (t->requires_grad) assert_non_null(nb_requires_grad_(x, true));
    return x;
}

/* The op of case c applied to x (absent arguments NULL). */
static nb_tensor *apply_case(const lref_case *c, nb_tensor *const *x)
{
    nb_reduction r = (nb_reduction)c->reduction;
    switch (c->op) {
    case LREF_LINEAR:
        return nb_linear(x[0], x[1], x[2]);
    case LREF_ADDMM:
        return nb_addmm(x[0], x[1], x[2], (float)c->p0, (float)c->p1);
    case LREF_BMM:
        return nb_bmm(x[0], x[1]);
    case LREF_OUTER:
        return nb_outer(x[0], x[1]);
    case LREF_MSE:
        return nb_mse_loss(x[0], x[1], r);
    case LREF_L1:
        return nb_l1_loss(x[0], x[1], r);
    case LREF_SMOOTH_L1:
        return nb_smooth_l1_loss(x[0], x[1], r, c->p0);
    case LREF_HUBER:
        return nb_huber_loss(x[0], x[1], r, c->p0);
    case LREF_BCE:
        return nb_binary_cross_entropy(x[0], x[1], x[2], r);
    case LREF_KL:
        return nb_kl_div(x[0], x[1], r, c->flag != 0);
    case LREF_NLL:
        return nb_nll_loss(x[0], x[1], x[2], c->ignore_index, r);
    case LREF_CE:
        return nb_cross_entropy(x[0], x[1], x[2], c->ignore_index, r, c->p0);
    case LREF_LAYER_NORM: {
        const nb_shape xs = nb_tensor_size(x[0]);
        nb_shape ns = {c->flag, {0}};
        for (int i = 0; i < c->flag; i++) ns.dims[i] = xs.dims[xs.ndim - c->flag + i];
        return nb_layer_norm(x[0], ns, x[1], x[2], c->p0);
    }
    }
    return NULL;
}

/*
 * One case: its output (copies = 1), or the sum of two copies of it (copies = 2) so that each
 * input's gradient arrives twice and the second backward adds into a lent buffer; then the
 * gradients, copies times PyTorch's.
 */
static void run_case(const lref_case *c, int copies)
{
    nb_tensor *x[4] = {NULL};
    for (int i = 0; i < c->n_inputs; i++) x[i] = make_input(&c->in[i]);
    nb_scope *scope = nb_scope_begin();
    nb_tensor *out = apply_case(c, x);
    if (!out) fail_msg("%s: %s", c->name, nb_last_error()->message);
    char got_s[128], want_s[128];
    nb_shape_format(nb_tensor_size(out), got_s, sizeof got_s);
    nb_shape_format(shape_of(&c->out), want_s, sizeof want_s);
    if (strcmp(got_s, want_s) != 0) fail_msg("%s: shape %s, want %s", c->name, got_s, want_s);
    check_values("output", c->name, nb_tensor_data_const(out), c->out.data, numel_of(&c->out),
                 c->exact);
    bool any = false;
    for (int i = 0; i < c->n_inputs; i++) any = any || c->in[i].requires_grad;
    if (!any) {
        assert_null(nb_tensor_grad_fn(out));
    } else {
        if (strcmp(nb_node_name(nb_tensor_grad_fn(out)), c->node) != 0)
            fail_msg("%s: node %s, want %s", c->name, nb_node_name(nb_tensor_grad_fn(out)),
                     c->node);
        if (copies == 2) out = nb_add(out, apply_case(c, x));
        nb_tensor *g = nb_from_data(c->grad_out, shape_of(&c->out));
        if (nb_backward(out, g, false) != NB_OK)
            fail_msg("%s: nb_backward: %s", c->name, nb_last_error()->message);
    }
    assert_int_equal(nb_scope_end(scope), NB_OK);
    for (int i = 0; i < c->n_inputs; i++) {
        if (!x[i]) continue;
        nb_tensor *g = nb_tensor_grad(x[i]);
        if (!c->in[i].requires_grad) {
            assert_null(g);
        } else {
            if (!g) fail_msg("%s: input %d got no gradient", c->name, i);
            int64_t n = numel_of(&c->in[i]);
            float want[4096];
            assert_true(n <= 4096);
            for (int64_t k = 0; k < n; k++) want[k] = (float)copies * c->in[i].grad[k];
            char what[32];
            snprintf(what, sizeof what, "gradient %d", i);
            /* the accumulating run adds into the first sum where PyTorch adds two sums */
            check_values(what, c->name, nb_tensor_data_const(g), want, n,
                         copies == 1 && c->exact_grad);
        }
        nb_release(x[i]);
    }
}

static void test_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(lref_cases); i++) run_case(&lref_cases[i], 1);
}

static void test_reference_accumulating(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(lref_cases); i++) run_case(&lref_cases[i], 2);
}

/* Under no_grad nothing is recorded, whatever requires grad. */
static void test_no_grad(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(lref_cases); i++) {
        const lref_case *c = &lref_cases[i];
        nb_tensor *x[4] = {NULL};
        for (int j = 0; j < c->n_inputs; j++) x[j] = make_input(&c->in[j]);
        NB_NO_GRAD
        {
            nb_tensor *out = apply_case(c, x);
            assert_non_null(out);
            assert_null(nb_tensor_grad_fn(out));
            assert_false(nb_tensor_requires_grad(out));
            nb_release(out);
        }
        for (int j = 0; j < c->n_inputs; j++) nb_release(x[j]);
        if (getenv("NBT_DEBUG")) print_message("%s: %ld live\n", c->name, nbt_alloc_live());
    }
}

/* ---- dropout ----------------------------------------------------------------------------- */

/* ---- the vector loops against the element alone ------------------------------------------ */

typedef nb_tensor *(*pw_fn)(nb_tensor *x, nb_tensor *y);
static nb_tensor *pw_bce(nb_tensor *x, nb_tensor *y)
{
    return nb_binary_cross_entropy(x, y, NULL, NB_NONE);
}
static nb_tensor *pw_kl(nb_tensor *x, nb_tensor *y)
{
    return nb_kl_div(x, y, NB_NONE, false);
}
static nb_tensor *pw_kl_log(nb_tensor *x, nb_tensor *y)
{
    return nb_kl_div(x, y, NB_NONE, true);
}
static nb_tensor *pw_mse(nb_tensor *x, nb_tensor *y)
{
    return nb_mse_loss(x, y, NB_NONE);
}
static nb_tensor *pw_l1(nb_tensor *x, nb_tensor *y)
{
    return nb_l1_loss(x, y, NB_NONE);
}
static nb_tensor *pw_smooth_l1(nb_tensor *x, nb_tensor *y)
{
    return nb_smooth_l1_loss(x, y, NB_NONE, 0.5);
}
static nb_tensor *pw_huber(nb_tensor *x, nb_tensor *y)
{
    return nb_huber_loss(x, y, NB_NONE, 0.5);
}

/* loss(x, y) with reduction none and its backward with gradient g: *l, *gx, *gy (n each) */
static void pw_run(pw_fn f, const float *x, const float *y, const float *g, int64_t n, float *l,
                   float *gx, float *gy)
{
    nb_tensor *tx = nb_requires_grad_(nb_from_data(x, NB_SHAPE(n)), true);
    nb_tensor *ty = nb_requires_grad_(nb_from_data(y, NB_SHAPE(n)), true);
    nb_tensor *tg = nb_from_data(g, NB_SHAPE(n));
    nb_tensor *loss = f(tx, ty);
    if (!loss) fail_msg("%s", nb_last_error()->message);
    assert_int_equal(nb_backward(loss, tg, false), NB_OK);
    memcpy(l, nb_tensor_data_const(loss), (size_t)n * sizeof *l);
    memcpy(gx, nb_tensor_data_const(nb_tensor_grad(tx)), (size_t)n * sizeof *gx);
    memcpy(gy, nb_tensor_data_const(nb_tensor_grad(ty)), (size_t)n * sizeof *gy);
    nb_release(loss);
    nb_release(tg);
    nb_release(tx);
    nb_release(ty);
}

/*
 * The target's gradient where it is 0: l1 at x = y and x NaN, PyTorch's -(sgn(x - y)·g)
 * (SubBackward0 after AbsBackward0), so -0 for g > 0; bce at x = 1/2, PyTorch's
 * (log(1 - x) - log(x))·g, so +0 for g > 0. Checked with /usr/bin/python3 (torch 1.13):
 * y.grad after F.l1_loss(x, y, reduction="none").backward(g), F.binary_cross_entropy likewise.
 */
static void test_target_grad_signed_zeros(void **state)
{
    (void)state;
    const float g_pos[] = {1.0f, 1.0f, 1.0f}, g_neg[] = {-1.0f, -1.0f, -1.0f};
    const float *gs[] = {g_pos, g_neg};
    for (int s = 0; s < 2; s++) {
        bool neg = s == 1;
        nb_tensor *x = nb_from_data((const float[]){2.0f, NAN, 0.5f}, NB_SHAPE(3));
        nb_tensor *y =
            nb_requires_grad_(nb_from_data((const float[]){2.0f, 1.0f, 0.5f}, NB_SHAPE(3)), true);
        nb_tensor *g = nb_from_data(gs[s], NB_SHAPE(3));
        nb_tensor *l = nb_l1_loss(x, y, NB_NONE);
        assert_int_equal(nb_backward(l, g, false), NB_OK);
        const float *d = nb_tensor_data_const(nb_tensor_grad(y));
        for (int i = 0; i < 2; i++) {
            assert_true(d[i] == 0.0f);
            assert_int_equal(signbit(d[i]) != 0, !neg);
        }
        nb_release(l);
        nb_zero_grad(y, true);
        nb_tensor *p = nb_from_data((const float[]){0.5f, 0.5f, 0.5f}, NB_SHAPE(3));
        l = nb_binary_cross_entropy(p, y, NULL, NB_NONE);
        assert_int_equal(nb_backward(l, g, false), NB_OK);
        d = nb_tensor_data_const(nb_tensor_grad(y));
        for (int i = 0; i < 3; i++) {
            assert_true(d[i] == 0.0f);
            assert_int_equal(signbit(d[i]) != 0, neg);
        }
        nb_release(l);
        nb_release(p);
        nb_release(g);
        nb_release(y);
        nb_release(x);
    }
}

/*
 * Every pointwise loss on 75 elements (vector loops and their tails) gives, for each element,
 * the bits of that element computed alone (the scalar tail), which the reference cases pin to
 * PyTorch: the loss and both gradients, with the special values in both parts (probabilities
 * 0 and 1, where the logs are clamped at -100; targets 0, where kl_div's xlogy is 0).
 */
static void test_pointwise_vector_paths(void **state)
{
    (void)state;
    enum { N = 75 };
    static const struct {
        const char *name;
        pw_fn f;
        bool probabilities; /* inputs in [0, 1] */
    } losses[] = {
        {"bce", pw_bce, true},     {"kl_div", pw_kl, false}, {"kl_div log", pw_kl_log, false},
        {"mse", pw_mse, false},    {"l1", pw_l1, false},     {"smooth_l1", pw_smooth_l1, false},
        {"huber", pw_huber, false}};
    float x[N], y[N], g[N], l[N], gx[N], gy[N];
    for (size_t c = 0; c < ARRAY_LEN(losses); c++) {
        for (int e = 0; e < N; e++) {
            float u = (float)((e * 37) % N) / (float)(N - 1); /* 0 and 1 among them */
            x[e] = losses[c].probabilities ? u : 4.0f * u - 2.0f;
            y[e] = e % 5 == 0 ? 0.0f : (float)((e * 11) % N) / (float)N;
            g[e] = 0.25f * (float)(e % 7) - 0.5f;
        }
        pw_run(losses[c].f, x, y, g, N, l, gx, gy);
        for (int e = 0; e < N; e++) {
            float l1, gx1, gy1;
            pw_run(losses[c].f, &x[e], &y[e], &g[e], 1, &l1, &gx1, &gy1);
            const float got[3] = {l[e], gx[e], gy[e]}, want[3] = {l1, gx1, gy1};
            for (int k = 0; k < 3; k++)
                if (memcmp(&got[k], &want[k], sizeof(float)) != 0 &&
                    !(isnan(got[k]) && isnan(want[k])))
                    fail_msg("%s element %d (x %a, y %a): %s %a, alone %a", losses[c].name, e,
                             (double)x[e], (double)y[e],
                             k == 0   ? "loss"
                             : k == 1 ? "input grad"
                                      : "target grad",
                             (double)got[k], (double)want[k]);
        }
    }
}

/*
 * cross_entropy's gradient on rows of 37 classes (its row loops' vector part and tail) against
 * the formula in double, dx = g·(softmax·Σq − q) with q the distribution the loss weighs −lp
 * with: for class indices (1 − ε)·w[t]·onehot(t) + (ε/C)·w, for probabilities
 * w·((1 − ε)·y + ε/C); g the output's gradient over the total weight of the targets (class
 * indices) or N (probabilities) for the mean. Every mix of a weight, label smoothing and
 * probabilities, with the mean and with none (a gradient per sample); a second backward adds
 * the same again.
 */
static void test_cross_entropy_wide_rows(void **state)
{
    (void)state;
    enum { N = 5, C = 37 };
    float x[N * C], y[N * C], w[C], t[N] = {3, 36, 0, 17, 31}, go[N] = {0.5f, -1, 2, 0.25f, 1};
    for (int i = 0; i < N * C; i++) {
        x[i] = 3.0f * sinf(0.37f * (float)i);
        y[i] = (float)((i * 7) % 11) / 55.0f;
    }
    for (int j = 0; j < C; j++) w[j] = 0.5f + (float)(j % 5) * 0.25f;
    for (int cfg = 0; cfg < 16; cfg++) {
        bool has_w = cfg & 1, probs = cfg & 2, mean = cfg & 8;
        double eps = cfg & 4 ? 0.1 : 0.0;
        nb_tensor *tx = nb_requires_grad_(nb_from_data(x, NB_SHAPE(N, C)), true);
        nb_tensor *tt = probs ? nb_from_data(y, NB_SHAPE(N, C)) : nb_from_data(t, NB_SHAPE(N));
        nb_tensor *tw = has_w ? nb_from_data(w, NB_SHAPE(C)) : NULL;
        nb_tensor *g = mean ? nb_scalar(go[0]) : nb_from_data(go, NB_SHAPE(N));
        double denom = 0.0, want[N * C];
        for (int i = 0; i < N; i++) denom += probs ? 1.0 : has_w ? (double)w[(int)t[i]] : 1.0;
        for (int i = 0; i < N; i++) {
            const float *xi = x + i * C;
            double m = (double)xi[0], z = 0.0, q[C], sq = 0.0;
            for (int j = 1; j < C; j++) m = (double)xi[j] > m ? (double)xi[j] : m;
            for (int j = 0; j < C; j++) z += exp((double)xi[j] - m);
            for (int j = 0; j < C; j++) {
                double wj = has_w ? (double)w[j] : 1.0;
                q[j] = probs ? wj * ((1.0 - eps) * (double)y[i * C + j] + eps / C)
                             : (j == (int)t[i] ? (1.0 - eps) * wj : 0.0) + eps / C * wj;
                sq += q[j];
            }
            double gi = mean ? (double)go[0] / denom : (double)go[i];
            for (int j = 0; j < C; j++)
                want[i * C + j] = gi * (exp((double)xi[j] - m) / z * sq - q[j]);
        }
        for (int pass = 1; pass <= 2; pass++) {
            nb_tensor *loss = nb_cross_entropy(tx, tt, tw, -100, mean ? NB_MEAN : NB_NONE, eps);
            if (!loss) fail_msg("case %d: %s", cfg, nb_last_error()->message);
            assert_int_equal(nb_backward(loss, g, false), NB_OK);
            const float *dx = nb_tensor_data_const(nb_tensor_grad(tx));
            for (int i = 0; i < N * C; i++)
                if (!(fabs((double)dx[i] - pass * want[i]) <= 2e-6 * pass * (1.0 + fabs(want[i]))))
                    fail_msg("case %d, pass %d, element %d: %.9g, want %.9g", cfg, pass, i,
                             (double)dx[i], pass * want[i]);
            nb_release(loss);
        }
        nb_release(g);
        nb_release(tx);
        nb_release(tt);
        nb_release(tw);
    }
}

static void test_dropout_reference(void **state)
{
    (void)state;
    nb_generator *gen = nb_generator_new(0);
    assert_non_null(gen);
    for (size_t i = 0; i < ARRAY_LEN(lref_dropouts); i++) {
        const lref_dropout *r = &lref_dropouts[i];
        nb_shape s = nb_shape_make(r->ndim, r->dims);
        nb_tensor *x = nb_requires_grad_(nb_from_data(r->x, s), true);
        int64_t n = nb_tensor_numel(x);
        char name[64];
        snprintf(name, sizeof name, "dropout seed %llu p %g", (unsigned long long)r->seed, r->p);
        for (int form = 0; form < 2; form++) { /* the default generator, then gen */
            if (form == 0)
                nb_manual_seed(r->seed);
            else
                nb_generator_seed(gen, r->seed);
            nb_tensor *y =
                form == 0 ? nb_dropout(x, r->p, true) : nb_dropout_gen(x, r->p, true, gen);
            nb_tensor *y2 =
                form == 0 ? nb_dropout(x, r->p, true) : nb_dropout_gen(x, r->p, true, gen);
            assert_non_null(y);
            assert_non_null(y2);
            check_values("y", name, nb_tensor_data_const(y), r->y, n, true);
            check_values("y2", name, nb_tensor_data_const(y2), r->y2, n, true);
            assert_string_equal(nb_node_name(nb_tensor_grad_fn(y)), "MulBackward0");
            /* the generator is where PyTorch's is: one random64 per element */
            nb_tensor *u = form == 0 ? nb_rand(NB_SHAPE(1)) : nb_rand_gen(NB_SHAPE(1), gen);
            check_values("next draw", name, nb_tensor_data_const(u), &r->after, 1, true);
            nb_release(u);
            nb_tensor *l = nb_sum(y, NB_DIMS_ALL, false);
            assert_int_equal(nb_backward(l, NULL, false), NB_OK);
            check_values("gradient", name, nb_tensor_data_const(nb_tensor_grad(x)), r->gx, n, true);
            assert_int_equal(nb_tensor_set_grad(x, NULL), NB_OK);
            nb_release(l);
            nb_release(y);
            nb_release(y2);
        }
        nb_release(x);
    }
    nb_generator_free(gen);
}

/*
 * Large masks, against the definition: after pre single draws (so that the masks start at
 * several places of mt19937's 624-word blocks), dropout of n elements equals x·(1/(1 − p)) where
 * the low 53 bits of the next random64 (two nb_generator_random words, the first high), times
 * 2^-53, are below 1 − p, else 0; and the generator then gives the words that follow those
 * 2n.
 */
static void test_dropout_long_masks(void **state)
{
    (void)state;
    enum { N = 3001 };
    static float xs[N];
    for (int i = 0; i < N; i++) xs[i] = (float)(i % 17) - 8.25f;
    nb_tensor *x = nb_from_data(xs, NB_SHAPE(N));
    static const int pres[] = {0, 1, 311, 623, 624, 1000};
    static const double ps[] = {0.5, 0.1, 0.9, 1.0 / 3.0};
    for (size_t a = 0; a < ARRAY_LEN(pres); a++)
        for (size_t b = 0; b < ARRAY_LEN(ps); b++) {
            nb_generator *g = nb_generator_new(7 + a), *h = nb_generator_new(7 + a);
            for (int i = 0; i < pres[a]; i++) {
                nb_generator_random(g);
                nb_generator_random(h);
            }
            nb_tensor *y = nb_dropout_gen(x, ps[b], true, g);
            assert_non_null(y);
            const float *yv = nb_tensor_data_const(y);
            double keep = 1.0 - ps[b];
            float scale = 1.0f / (float)keep;
            for (int i = 0; i < N; i++) {
                uint64_t hi = nb_generator_random(h), lo = nb_generator_random(h);
                uint64_t r = (hi << 32 | lo) & ((UINT64_C(1) << 53) - 1);
                float want = xs[i] * ((double)r * 0x1p-53 < keep ? scale : 0.0f);
                if (memcmp(&yv[i], &want, sizeof want))
                    fail_msg("dropout p %g after %d draws, element %d: %a, want %a", ps[b], pres[a],
                             i, (double)yv[i], (double)want);
            }
            for (int i = 0; i < 3; i++)
                assert_int_equal(nb_generator_random(g), nb_generator_random(h));
            nb_release(y);
            nb_generator_free(g);
            nb_generator_free(h);
        }
    nb_release(x);
}

static void test_dropout_special(void **state)
{
    (void)state;
    static const float xs[] = {INFINITY, -2.0f, NAN, 3.0f};
    nb_tensor *x = nb_requires_grad_(nb_from_data(xs, NB_SHAPE(4)), true);
    nb_tensor *c = nb_from_data(xs, NB_SHAPE(4));

    /* p = 0, eval mode, empty: x's values, sharing its storage, gradient passed through */
    nb_tensor *e = nb_zeros(NB_SHAPE(0, 3));
    nb_tensor *same[3] = {nb_dropout(x, 0.0, true), nb_dropout(x, 0.5, false),
                          nb_dropout(e, 0.5, true)};
    for (int i = 0; i < 3; i++) {
        assert_non_null(same[i]);
        assert_true(nb_tensor_shares_storage(same[i], i < 2 ? x : e));
    }
    assert_string_equal(nb_node_name(nb_tensor_grad_fn(same[0])), "AliasBackward0");
    assert_null(nb_tensor_grad_fn(same[2]));
    nb_tensor *a = nb_dropout(c, 0.0, true);
    assert_null(nb_tensor_grad_fn(a));
    nb_release(a);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *l = nb_sum(nb_mul_scalar(same[1], 3.0f), NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(l, NULL, false), NB_OK);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    assert_string_equal(nbt_repr(nb_tensor_grad(x)), "tensor([3., 3., 3., 3.])");
    assert_int_equal(nb_tensor_set_grad(x, NULL), NB_OK);
    for (int i = 0; i < 3; i++) nb_release(same[i]);

    /* p = 1: x·0, and no draw */
    nb_manual_seed(5);
    nb_tensor *z = nb_dropout(x, 1.0, true);
    assert_string_equal(nbt_repr(z), "tensor([nan, -0., nan, 0.], grad_fn=<MulBackward0>)");
    nb_tensor *u = nb_rand(NB_SHAPE(1));
    nb_manual_seed(5);
    nb_tensor *u0 = nb_rand(NB_SHAPE(1));
    check_values("draw", "dropout p = 1", nb_tensor_data_const(u), nb_tensor_data_const(u0), 1,
                 true);
    nb_release(u);
    nb_release(u0);
    nb_release(z);

    /* errors */
    nb_error_clear();
    assert_null(nb_dropout(x, 1.5, true));
    assert_error(NB_EINVAL,
                 "nb_dropout: dropout probability has to be between 0 and 1, but got 1.5");
    assert_null(nb_dropout(x, -0.5, false));
    assert_error(NB_EINVAL,
                 "nb_dropout: dropout probability has to be between 0 and 1, but got -0.5");
    assert_null(nb_dropout_gen(x, (double)NAN, true, NULL));
    assert_error(NB_EINVAL, "nb_dropout_gen: dropout probability has to be between 0 and 1");
    /* a NULL generator while an error is pending (not read yet): that error, nothing drawn */
    nb_error_clear();
    assert_null(nb_dropout(NULL, 0.5, true));
    nb_manual_seed(5);
    assert_null(nb_dropout_gen(x, 0.5, true, NULL));
    assert_error(NB_EINVAL, "nb_dropout: argument 'x' is NULL");
    u = nb_rand(NB_SHAPE(1));
    nb_manual_seed(5);
    u0 = nb_rand(NB_SHAPE(1));
    check_values("draw", "dropout error", nb_tensor_data_const(u), nb_tensor_data_const(u0), 1,
                 true);
    nb_release(u);
    nb_release(u0);
    /* a NULL generator without a pending error is the default one */
    nb_manual_seed(3);
    nb_tensor *d1 = nb_dropout_gen(c, 0.5, true, NULL);
    nb_manual_seed(3);
    nb_tensor *d2 = nb_dropout(c, 0.5, true);
    check_values("values", "dropout NULL gen", nb_tensor_data_const(d1), nb_tensor_data_const(d2),
                 4, true);
    nb_release(d1);
    nb_release(d2);
    nb_release(e);
    nb_release(c);
    nb_release(x);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* f(args) is NULL with code and message text; the error is read (no longer pending). */
#define ASSERT_FAILS(call, code, text)                                                             \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        assert_error((code), (text));                                                              \
    } while (0)

static void test_linalg_errors(void **state)
{
    (void)state;
    nb_tensor *x23 = nb_ones(NB_SHAPE(2, 3)), *w43 = nb_ones(NB_SHAPE(4, 3));
    nb_tensor *w45 = nb_ones(NB_SHAPE(4, 5)), *b4 = nb_ones(NB_SHAPE(4)),
              *b5 = nb_ones(NB_SHAPE(5));
    nb_tensor *s = nb_scalar(1), *v3 = nb_ones(NB_SHAPE(3)), *t = nb_ones(NB_SHAPE(2, 3, 4));
    nb_tensor *m34 = nb_ones(NB_SHAPE(3, 4)), *i214 = nb_ones(NB_SHAPE(2, 1, 4));
    ASSERT_FAILS(nb_linear(NULL, w43, b4), NB_EINVAL, "nb_linear: argument 'x' is NULL");
    ASSERT_FAILS(nb_linear(x23, NULL, b4), NB_EINVAL, "nb_linear: argument 'weight' is NULL");
    ASSERT_FAILS(nb_linear(s, w43, b4), NB_ESHAPE,
                 "nb_linear: input must be at least 1-D and weight 2-D [out_features, "
                 "in_features], but they are 0D and 2D");
    ASSERT_FAILS(nb_linear(x23, v3, NULL), NB_ESHAPE, "but they are 2D and 1D");
    ASSERT_FAILS(nb_linear(x23, w45, NULL), NB_ESHAPE,
                 "nb_linear: mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)");
    ASSERT_FAILS(nb_linear(t, w45, NULL), NB_ESHAPE,
                 "nb_linear: mat1 and mat2 shapes cannot be multiplied (6x4 and 5x4)");
    ASSERT_FAILS(nb_linear(x23, w43, b5), NB_ESHAPE,
                 "nb_linear: shapes [5] and [2, 4] cannot be broadcast (5 != 4 at dimension 1)");
    ASSERT_FAILS(nb_linear(x23, w43, x23), NB_ESHAPE, "shapes [2, 3] and [2, 4] cannot be");
    ASSERT_FAILS(nb_linear(x23, w43, i214), NB_ESHAPE,
                 "nb_linear: bias of shape [2, 1, 4] cannot be broadcast to the output's shape "
                 "[2, 4]");
    /* a NULL bias while an error is pending is that failed result */
    nb_error_clear();
    assert_null(nb_linear(NULL, w43, b4));
    assert_null(nb_linear(x23, w43, NULL));
    assert_error(NB_EINVAL, "nb_linear: argument 'x' is NULL");

    ASSERT_FAILS(nb_addmm(NULL, x23, m34, 1, 1), NB_EINVAL, "nb_addmm: argument 'input' is NULL");
    ASSERT_FAILS(nb_addmm(b4, NULL, m34, 1, 1), NB_EINVAL, "nb_addmm: argument 'mat1' is NULL");
    ASSERT_FAILS(nb_addmm(b4, x23, NULL, 1, 1), NB_EINVAL, "nb_addmm: argument 'mat2' is NULL");
    ASSERT_FAILS(nb_addmm(b4, v3, m34, 1, 1), NB_ESHAPE,
                 "nb_addmm: mat1 must be a matrix, got 1-D tensor");
    ASSERT_FAILS(nb_addmm(b4, x23, t, 1, 1), NB_ESHAPE,
                 "nb_addmm: mat2 must be a matrix, got 3-D tensor");
    ASSERT_FAILS(nb_addmm(b4, x23, w45, 1, 1), NB_ESHAPE,
                 "nb_addmm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)");
    ASSERT_FAILS(nb_addmm(v3, x23, m34, 1, 1), NB_ESHAPE,
                 "nb_addmm: shapes [3] and [2, 4] cannot be broadcast (3 != 4 at dimension 1)");
    ASSERT_FAILS(nb_addmm(i214, x23, m34, 1, 1), NB_ESHAPE,
                 "nb_addmm: input of shape [2, 1, 4] cannot be broadcast to the output's shape "
                 "[2, 4]");

    nb_tensor *a = nb_ones(NB_SHAPE(2, 3, 4)), *b = nb_ones(NB_SHAPE(3, 4, 5));
    nb_tensor *c = nb_ones(NB_SHAPE(2, 5, 5));
    ASSERT_FAILS(nb_bmm(NULL, a), NB_EINVAL, "nb_bmm: argument 'a' is NULL");
    ASSERT_FAILS(nb_bmm(a, NULL), NB_EINVAL, "nb_bmm: argument 'b' is NULL");
    ASSERT_FAILS(nb_bmm(x23, a), NB_ESHAPE, "nb_bmm: batch1 must be a 3D tensor");
    ASSERT_FAILS(nb_bmm(a, x23), NB_ESHAPE, "nb_bmm: batch2 must be a 3D tensor");
    ASSERT_FAILS(nb_bmm(a, b), NB_ESHAPE,
                 "nb_bmm: Expected size for first two dimensions of batch2 tensor to be: [2, 4] "
                 "but got: [3, 4].");
    ASSERT_FAILS(nb_bmm(a, c), NB_ESHAPE, "but got: [2, 5].");

    ASSERT_FAILS(nb_outer(NULL, v3), NB_EINVAL, "nb_outer: argument 'a' is NULL");
    ASSERT_FAILS(nb_outer(v3, NULL), NB_EINVAL, "nb_outer: argument 'b' is NULL");
    ASSERT_FAILS(nb_outer(x23, v3), NB_ESHAPE, "nb_outer: Expected 1-D argument self, but got 2-D");
    ASSERT_FAILS(nb_outer(v3, s), NB_ESHAPE, "nb_outer: Expected 1-D argument vec2, but got 0-D");

    nb_tensor *all[] = {x23, w43, w45, b4, b5, s, v3, t, m34, i214, a, b, c};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) nb_release(all[i]);
}

static void test_pointwise_loss_errors(void **state)
{
    (void)state;
    static const float half[] = {0.5f, 1.5f, 0.25f, 0.5f, 0.5f, 0.5f};
    static const float nanv[] = {0.5f, 0.5f, NAN, 0.5f, 0.5f, 0.5f};
    nb_tensor *x = nb_from_data(half, NB_SHAPE(2, 3)), *xn = nb_from_data(nanv, NB_SHAPE(2, 3));
    nb_tensor *y = nb_full(NB_SHAPE(2, 3), 0.5f), *y3 = nb_ones(NB_SHAPE(3));
    nb_tensor *w4 = nb_ones(NB_SHAPE(4)), *w213 = nb_ones(NB_SHAPE(2, 1, 3));
    nb_tensor *wg = nb_requires_grad_(nb_ones(NB_SHAPE(3)), true);
    ASSERT_FAILS(nb_mse_loss(NULL, y, NB_MEAN), NB_EINVAL, "nb_mse_loss: argument 'input' is NULL");
    ASSERT_FAILS(nb_mse_loss(x, NULL, NB_MEAN), NB_EINVAL,
                 "nb_mse_loss: argument 'target' is NULL");
    ASSERT_FAILS(nb_mse_loss(x, y, (nb_reduction)7), NB_EINVAL,
                 "nb_mse_loss: 7 is not a valid value for reduction");
    ASSERT_FAILS(nb_l1_loss(x, y, NB_BATCHMEAN), NB_EINVAL,
                 "nb_l1_loss: batchmean is not a valid value for reduction");
    ASSERT_FAILS(nb_mse_loss(x, y3, NB_MEAN), NB_ESHAPE,
                 "nb_mse_loss: Target size ([3]) must be the same as input size ([2, 3])");
    ASSERT_FAILS(nb_smooth_l1_loss(x, y, NB_MEAN, -1.0), NB_EINVAL,
                 "nb_smooth_l1_loss: smooth_l1_loss does not support negative values for beta.");
    ASSERT_FAILS(nb_huber_loss(x, y, NB_MEAN, 0.0), NB_EINVAL,
                 "nb_huber_loss: huber_loss does not support non-positive values for delta.");
    ASSERT_FAILS(nb_huber_loss(x, y, NB_MEAN, (double)NAN), NB_EINVAL,
                 "non-positive values for delta");
    ASSERT_FAILS(nb_huber_loss(x, y3, NB_SUM, 1.0), NB_ESHAPE, "nb_huber_loss: Target size");
    ASSERT_FAILS(nb_binary_cross_entropy(x, y, NULL, NB_MEAN), NB_EINVAL,
                 "nb_binary_cross_entropy: all elements of input should be between 0 and 1, got "
                 "1.5 at position 1");
    ASSERT_FAILS(nb_binary_cross_entropy(xn, y, NULL, NB_MEAN), NB_EINVAL, "got nan at position 2");
    ASSERT_FAILS(nb_binary_cross_entropy(y, y, w4, NB_MEAN), NB_ESHAPE,
                 "nb_binary_cross_entropy: shapes [4] and [2, 3] cannot be broadcast");
    ASSERT_FAILS(nb_binary_cross_entropy(y, y, w213, NB_MEAN), NB_ESHAPE,
                 "nb_binary_cross_entropy: weight of shape [2, 1, 3] does not broadcast to input "
                 "shape [2, 3]");
    ASSERT_FAILS(nb_binary_cross_entropy(y, y, wg, NB_MEAN), NB_EINVAL,
                 "nb_binary_cross_entropy: The function 'binary_cross_entropy' is not "
                 "differentiable with respect to argument 'weight'. This input cannot have "
                 "requires_grad True.");
    ASSERT_FAILS(nb_binary_cross_entropy(y, y, NULL, (nb_reduction)-1), NB_EINVAL,
                 "-1 is not a valid value for reduction");
    nb_error_clear();
    assert_null(nb_mse_loss(NULL, y, NB_MEAN));
    assert_null(nb_binary_cross_entropy(y, y, NULL, NB_MEAN)); /* the weight that failed */
    assert_error(NB_EINVAL, "nb_mse_loss: argument 'input' is NULL");
    NB_NO_GRAD
    {
        nb_tensor *l = nb_binary_cross_entropy(y, y, wg, NB_MEAN); /* a constant under no_grad */
        assert_non_null(l);
        nb_release(l);
    }
    ASSERT_FAILS(nb_kl_div(x, y, (nb_reduction)4, false), NB_EINVAL,
                 "nb_kl_div: 4 is not a valid value for reduction");
    ASSERT_FAILS(nb_kl_div(x, y3, NB_BATCHMEAN, true), NB_ESHAPE, "nb_kl_div: Target size");
    ASSERT_FAILS(nb_binary_cross_entropy_with_logits(x, y, NULL, NULL, NB_BATCHMEAN), NB_EINVAL,
                 "nb_binary_cross_entropy_with_logits: batchmean is not a valid value for "
                 "reduction");
    nb_tensor *all[] = {x, xn, y, y3, w4, w213, wg};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) nb_release(all[i]);
}

static void test_class_loss_errors(void **state)
{
    (void)state;
    static const float good[] = {1, 0, 3}, frac[] = {1, 0, 1.5f}, big[] = {1, 12, 0},
                       neg[] = {-1, 0, 0}, nant[] = {0, NAN, 0}, ign[] = {-100, 1, 5};
    nb_tensor *x = nb_zeros(NB_SHAPE(3, 4)), *t = nb_from_data(good, NB_SHAPE(3));
    nb_tensor *t2 = nb_zeros(NB_SHAPE(2)), *t31 = nb_zeros(NB_SHAPE(3, 1));
    nb_tensor *s = nb_scalar(1), *x1 = nb_zeros(NB_SHAPE(4)), *t1 = nb_zeros(NB_SHAPE(1));
    nb_tensor *x3 = nb_zeros(NB_SHAPE(2, 3, 4)), *w3 = nb_ones(NB_SHAPE(3));
    nb_tensor *wg = nb_requires_grad_(nb_ones(NB_SHAPE(4)), true);
    nb_tensor *tg = nb_requires_grad_(nb_from_data(good, NB_SHAPE(3)), true);
    nb_tensor *tf = nb_from_data(frac, NB_SHAPE(3)), *tb = nb_from_data(big, NB_SHAPE(3));
    nb_tensor *tn = nb_from_data(neg, NB_SHAPE(3)), *tnan = nb_from_data(nant, NB_SHAPE(3));
    nb_tensor *ti = nb_from_data(ign, NB_SHAPE(3)), *p = nb_full(NB_SHAPE(3, 4), 0.25f);
    ASSERT_FAILS(nb_nll_loss(NULL, t, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: argument 'input' is NULL");
    ASSERT_FAILS(nb_nll_loss(x, NULL, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: argument 'target' is NULL");
    ASSERT_FAILS(nb_nll_loss(x, t, NULL, -100, (nb_reduction)9), NB_EINVAL,
                 "nb_nll_loss: 9 is not a valid value for reduction");
    ASSERT_FAILS(nb_nll_loss(s, t, NULL, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: Expected 1 or more dimensions (got 0)");
    ASSERT_FAILS(nb_nll_loss(x3, t, NULL, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: input must be [N, C] or [C], got 3 dimensions");
    ASSERT_FAILS(nb_nll_loss(x, t2, NULL, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: Expected input batch_size (3) to match target batch_size (2).");
    ASSERT_FAILS(nb_nll_loss(x, t31, NULL, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: 0D or 1D target tensor expected, multi-target not supported");
    ASSERT_FAILS(nb_nll_loss(x1, t1, NULL, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: size mismatch (got input: [4], target: [1])");
    ASSERT_FAILS(nb_nll_loss(x, tf, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target 1.5 at position 2 is not an integer");
    ASSERT_FAILS(nb_nll_loss(x, tnan, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target nan at position 1 is not an integer");
    ASSERT_FAILS(nb_nll_loss(x, tb, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target 12 at position 1 is out of bounds (4 classes)");
    ASSERT_FAILS(nb_nll_loss(x, tn, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target -1 at position 0 is out of bounds (4 classes)");
    ASSERT_FAILS(nb_nll_loss(x, ti, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target 5 at position 2 is out of bounds (4 classes)");
    /* targets beyond int64_t, and an ignore_index that a float target only rounds to */
    nb_tensor *huge = nb_from_data((const float[]){1, -1e30f, 0}, NB_SHAPE(3));
    nb_tensor *t62 = nb_from_data((const float[]){0x1p62f, 0, 0x1p63f}, NB_SHAPE(3));
    ASSERT_FAILS(nb_nll_loss(x, huge, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target -1000000015047466219876688855040 at position 1 is out of "
                 "bounds (4 classes)");
    ASSERT_FAILS(nb_nll_loss(x, t62, NULL, ((int64_t)1 << 62) + 1, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: target 4611686018427387904 at position 0 is out of bounds");
    ASSERT_FAILS(nb_cross_entropy(x, t62, NULL, INT64_MAX, NB_MEAN, 0), NB_EINVAL,
                 "nb_cross_entropy: target 4611686018427387904 at position 0 is out of bounds");
    ASSERT_FAILS(nb_nll_loss(x, t62, NULL, (int64_t)1 << 62, NB_SUM), NB_EINVAL,
                 "nb_nll_loss: target 9223372036854775808 at position 2 is out of bounds");
    nb_release(t62);
    nb_release(huge);
    ASSERT_FAILS(nb_nll_loss(x, t, w3, -100, NB_MEAN), NB_ESHAPE,
                 "nb_nll_loss: weight tensor should be defined either for all 4 classes or no "
                 "classes but got weight tensor of shape: [3]");
    ASSERT_FAILS(nb_nll_loss(x, t, wg, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: The function 'nll_loss' is not differentiable with respect to "
                 "argument 'weight'.");
    ASSERT_FAILS(nb_nll_loss(x, tg, NULL, -100, NB_MEAN), NB_EINVAL,
                 "nb_nll_loss: The function 'nll_loss' is not differentiable with respect to "
                 "argument 'target' (class indices).");
    nb_error_clear();
    assert_null(nb_nll_loss(NULL, t, NULL, -100, NB_MEAN));
    assert_null(nb_nll_loss(x, t, NULL, -100, NB_MEAN)); /* the weight that failed */
    assert_error(NB_EINVAL, "nb_nll_loss: argument 'input' is NULL");

    ASSERT_FAILS(nb_cross_entropy(NULL, t, NULL, -100, NB_MEAN, 0), NB_EINVAL,
                 "nb_cross_entropy: argument 'input' is NULL");
    ASSERT_FAILS(nb_cross_entropy(x, t, NULL, -100, NB_MEAN, 1.5), NB_EINVAL,
                 "nb_cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: 1.5");
    ASSERT_FAILS(nb_cross_entropy(x, p, NULL, 1, NB_MEAN, 0), NB_EINVAL,
                 "nb_cross_entropy: ignore_index is not supported for floating point target");
    ASSERT_FAILS(nb_cross_entropy(x, p, w3, -100, NB_MEAN, 0), NB_ESHAPE,
                 "nb_cross_entropy: weight tensor should be defined either for all 4 classes");
    ASSERT_FAILS(nb_cross_entropy(x, x3, NULL, -100, NB_MEAN, 0), NB_ESHAPE,
                 "nb_cross_entropy: 0D or 1D target tensor expected, multi-target not supported");
    ASSERT_FAILS(nb_cross_entropy(x, tb, NULL, -100, NB_SUM, 0.1), NB_EINVAL,
                 "nb_cross_entropy: target 12 at position 1 is out of bounds (4 classes)");
    ASSERT_FAILS(nb_cross_entropy(x, t, NULL, -100, NB_BATCHMEAN, 0), NB_EINVAL,
                 "nb_cross_entropy: batchmean is not a valid value for reduction");
    ASSERT_FAILS(nb_cross_entropy(s, t, NULL, -100, NB_MEAN, 0), NB_ESHAPE,
                 "nb_cross_entropy: Expected 1 or more dimensions (got 0)");
    ASSERT_FAILS(nb_cross_entropy(x, t, wg, -100, NB_MEAN, 0), NB_EINVAL,
                 "The function 'cross_entropy' is not differentiable with respect to argument "
                 "'weight'.");
    /* a negative label_smoothing is none, as in PyTorch */
    nb_tensor *l0 = nb_cross_entropy(x, t, NULL, -100, NB_MEAN, 0.0);
    nb_tensor *ln = nb_cross_entropy(x, t, NULL, -100, NB_MEAN, -0.5);
    check_values("value", "negative label_smoothing", nb_tensor_data_const(ln),
                 nb_tensor_data_const(l0), 1, true);
    nb_release(l0);
    nb_release(ln);
    nb_tensor *all[] = {x, t, t2, t31, s, x1, t1, x3, w3, wg, tg, tf, tb, tn, tnan, ti, p};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) nb_release(all[i]);
}

/*
 * Probability targets of no class for 2^62 samples ([2^62, 0] is a valid, empty shape): the
 * loss is 0, with and without label smoothing, reduced by sum or mean, and backwards into
 * empty gradients, without a loop over the 2^62 empty rows (which never ended).
 */
static void test_cross_entropy_no_class_huge_batch(void **state)
{
    (void)state;
    const int64_t huge = (int64_t)1 << 62;
    nb_tensor *x = nb_requires_grad_(nb_zeros(NB_SHAPE(huge, 0)), true);
    nb_tensor *t = nb_requires_grad_(nb_zeros(NB_SHAPE(huge, 0)), true);
    const nb_reduction reductions[] = {NB_SUM, NB_MEAN};
    const double smoothing[] = {0.0, 0.1};
    for (size_t r = 0; r < ARRAY_LEN(reductions); r++) {
        for (size_t e = 0; e < ARRAY_LEN(smoothing); e++) {
            nb_tensor *l = nb_cross_entropy(x, t, NULL, -100, reductions[r], smoothing[e]);
            if (!l) fail_msg("reduction %zu, smoothing %zu: %s", r, e, nb_last_error()->message);
            float v = 1.0f;
            assert_int_equal(nb_tensor_item(l, &v), NB_OK);
            assert_true(v == 0.0f);
            assert_int_equal(nb_backward(l, NULL, false), NB_OK);
            assert_int_equal(nb_tensor_numel(nb_tensor_grad(x)), 0);
            assert_int_equal(nb_tensor_numel(nb_tensor_grad(t)), 0);
            nb_release(l);
        }
    }
    nb_release(t);
    nb_release(x);
    /* no sample of 2^62 classes, class-index targets: nothing to visit either */
    x = nb_requires_grad_(nb_zeros(NB_SHAPE(0, huge)), true);
    t = nb_zeros(NB_SHAPE(0));
    for (size_t e = 0; e < ARRAY_LEN(smoothing); e++) {
        nb_tensor *l = nb_cross_entropy(x, t, NULL, -100, NB_SUM, smoothing[e]);
        if (!l) fail_msg("class indices, smoothing %zu: %s", e, nb_last_error()->message);
        assert_int_equal(nb_backward(l, NULL, false), NB_OK);
        assert_int_equal(nb_tensor_numel(nb_tensor_grad(x)), 0);
        nb_release(l);
    }
    nb_release(t);
    nb_release(x);
}

static void test_layer_norm_errors(void **state)
{
    (void)state;
    nb_tensor *x = nb_zeros(NB_SHAPE(2, 3)), *w4 = nb_ones(NB_SHAPE(4)), *w3 = nb_ones(NB_SHAPE(3));
    nb_tensor *w13 = nb_ones(NB_SHAPE(1, 3));
    ASSERT_FAILS(nb_layer_norm(NULL, NB_SHAPE(3), NULL, NULL, 1e-5), NB_EINVAL,
                 "nb_layer_norm: argument 'x' is NULL");
    ASSERT_FAILS(nb_layer_norm(x, NB_SHAPE(4), NULL, NULL, 1e-5), NB_ESHAPE,
                 "nb_layer_norm: Given normalized_shape=[4], expected input with shape [*, 4], "
                 "but got input of size[2, 3]");
    ASSERT_FAILS(nb_layer_norm(x, NB_SHAPE(1, 2, 3), NULL, NULL, 1e-5), NB_ESHAPE,
                 "Given normalized_shape=[1, 2, 3], expected input with shape [*, 1, 2, 3]");
    ASSERT_FAILS(nb_layer_norm(x, NB_SHAPE0, NULL, NULL, 1e-5), NB_ESHAPE,
                 "nb_layer_norm: Expected normalized_shape to be at least 1-dimensional");
    ASSERT_FAILS(nb_layer_norm(x, NB_SHAPE(3), w4, NULL, 1e-5), NB_ESHAPE,
                 "nb_layer_norm: Expected weight to be of same shape as normalized_shape, but got "
                 "weight of shape [4] and normalized_shape = [3]");
    ASSERT_FAILS(nb_layer_norm(x, NB_SHAPE(3), w3, w13, 1e-5), NB_ESHAPE,
                 "Expected bias to be of same shape as normalized_shape, but got bias of shape "
                 "[1, 3]");
    nb_error_clear();
    assert_null(nb_layer_norm(NULL, NB_SHAPE(3), NULL, NULL, 1e-5));
    assert_null(nb_layer_norm(x, NB_SHAPE(3), w3, NULL, 1e-5)); /* the bias that failed */
    assert_error(NB_EINVAL, "nb_layer_norm: argument 'x' is NULL");
    nb_release(x);
    nb_release(w4);
    nb_release(w3);
    nb_release(w13);
}

/* ---- allocation failure ------------------------------------------------------------------- */

/* a classifier step: cross_entropy(linear(relu(linear(x))), labels, smoothing), backward */
static nb_status classifier_step(nb_tensor *const *p)
{
    static const float labels[] = {1, 0, 2, 2};
    nb_scope *sc = nb_scope_begin();
    if (!sc) return nb_last_error()->code;
    nb_tensor *t = nb_from_data(labels, NB_SHAPE(4));
    nb_tensor *h = nb_relu(nb_linear(p[0], p[1], p[2]));
    nb_tensor *loss = nb_cross_entropy(nb_linear(h, p[3], NULL), t, NULL, -100, NB_MEAN, 0.1);
    nb_status rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

/* layer_norm, dropout, then the pointwise and NLL losses, one backward */
static nb_status norm_step(nb_tensor *const *p)
{
    nb_scope *sc = nb_scope_begin();
    if (!sc) return nb_last_error()->code;
    nb_manual_seed(1);
    nb_tensor *h = nb_dropout(nb_layer_norm(p[0], NB_SHAPE(3), p[1], p[2], 1e-5), 0.25, true);
    nb_tensor *y = nb_zeros(NB_SHAPE(4, 3)), *w = nb_ones(NB_SHAPE(3));
    nb_tensor *t = nb_zeros(NB_SHAPE(4)), *pr = nb_full(NB_SHAPE(4, 3), 0.5f);
    nb_tensor *l = nb_add(nb_mse_loss(h, y, NB_MEAN), nb_huber_loss(h, y, NB_SUM, 0.5));
    l = nb_add(l, nb_smooth_l1_loss(h, y, NB_MEAN, 0.5));
    l = nb_add(l, nb_l1_loss(h, y, NB_SUM));
    l = nb_add(l, nb_kl_div(h, pr, NB_BATCHMEAN, false));
    l = nb_add(l, nb_nll_loss(h, t, w, -100, NB_MEAN));
    l = nb_add(l, nb_binary_cross_entropy(nb_sigmoid(h), pr, w, NB_MEAN));
    l = nb_add(l, nb_cross_entropy(h, nb_sigmoid(h), w, -100, NB_SUM, 0.2));
    nb_status rc = l ? nb_backward(l, NULL, false) : nb_last_error()->code;
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

/* addmm, bmm and outer, one backward */
static nb_status product_step(nb_tensor *const *p)
{
    nb_scope *sc = nb_scope_begin();
    if (!sc) return nb_last_error()->code;
    nb_tensor *a = nb_addmm(p[2], p[0], p[1], 0.5f, 2.0f); /* [4, 3] */
    nb_tensor *b = nb_bmm(nb_reshape(a, NB_SHAPE(2, 2, 3)), nb_reshape(a, NB_SHAPE(2, 3, 2)));
    nb_tensor *o = nb_outer(nb_reshape(b, NB_SHAPE(-1)), p[2]);
    nb_tensor *l = nb_sum(o, NB_DIMS_ALL, false);
    nb_status rc = l ? nb_backward(l, NULL, false) : nb_last_error()->code;
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

static void test_alloc_failure(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_tensor *p[4] = {nb_randn(NB_SHAPE(4, 3)), nb_randn(NB_SHAPE(5, 3)), nb_randn(NB_SHAPE(5)),
                       nb_randn(NB_SHAPE(3, 5))};
    for (int i = 0; i < 4; i++) assert_non_null(nb_requires_grad_(p[i], true));
    nbt_alloc_sweep("classifier step", classifier_step, p, 4);
    nb_tensor *q[3] = {nb_randn(NB_SHAPE(4, 3)), nb_randn(NB_SHAPE(3)), nb_randn(NB_SHAPE(3))};
    for (int i = 0; i < 3; i++) assert_non_null(nb_requires_grad_(q[i], true));
    nbt_alloc_sweep("normalisation and losses", norm_step, q, 3);
    nb_tensor *r[3] = {nb_randn(NB_SHAPE(4, 3)), nb_randn(NB_SHAPE(3, 3)), nb_randn(NB_SHAPE(3))};
    for (int i = 0; i < 3; i++) assert_non_null(nb_requires_grad_(r[i], true));
    nbt_alloc_sweep("addmm, bmm, outer", product_step, r, 3);
    for (int i = 0; i < 4; i++) nb_release(p[i]);
    for (int i = 0; i < 3; i++) nb_release(q[i]);
    for (int i = 0; i < 3; i++) nb_release(r[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_reference_accumulating, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_no_grad, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_target_grad_signed_zeros, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_pointwise_vector_paths, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_cross_entropy_wide_rows, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_dropout_reference, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_dropout_long_masks, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_dropout_special, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_linalg_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_pointwise_loss_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_class_loss_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_cross_entropy_no_class_huge_batch, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_layer_norm_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("ops_loss", tests, NULL, NULL);
}
