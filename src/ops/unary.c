/*
 * Unary elementwise ops. Each is one descriptor: its forward kernel, its gradient kernel and
 * what that reads (the input x, the output y, or neither). In the gradient kernels V0 is g,
 * V1 is x and V2 is y; k holds the op's scalar parameters.
 *
 * The expressions are those of PyTorch's scalar CPU kernels for float32 (which call the C
 * library's float functions, as these do), with their order of operations, so that values,
 * signed zeros, infinities and NaNs come out as PyTorch's.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "ops/internal.h"

/* ---- the ops ----------------------------------------------------------------------------- */

/* y = 1 / (1 + e^-x); dx = g·(1 - y)·y (PyTorch's order) */
NB__EW_KERNEL(sigmoid_fwd, 1.0f / (1.0f + nb__expf(-V0)))
NB__EW_KERNEL(sigmoid_grad, V0 *(1.0f - V2) * V2)
static const nb__unop sigmoid_op = {NB__UNOP_NODE("SigmoidBackward0"), sigmoid_fwd, sigmoid_grad,
                                    NB__READ_OUT};

nb_tensor *nb_sigmoid(nb_tensor *x)
{
    return nb__unary("nb_sigmoid", &sigmoid_op, x, NULL, 0);
}

/* y = max(x, 0), keeping NaN and -0 as PyTorch does; dx = g where y > 0 or y is NaN, else 0 */
NB__EW_KERNEL(relu_fwd, V0 < 0.0f ? 0.0f : V0)
NB__EW_KERNEL(relu_grad, nb__select(V2 <= 0.0f, 0.0f, V0))
static const nb__unop relu_op = {NB__UNOP_NODE("ReluBackward0"), relu_fwd, relu_grad, NB__READ_OUT};

nb_tensor *nb_relu(nb_tensor *x)
{
    return nb__unary("nb_relu", &relu_op, x, NULL, 0);
}

/* y = -x; dx = -g */
NB__EW_KERNEL(neg_fwd, -V0)
NB__EW_KERNEL(neg_grad, -V0)
static const nb__unop neg_op = {NB__UNOP_NODE("NegBackward0"), neg_fwd, neg_grad, 0};

nb_tensor *nb_neg(nb_tensor *a)
{
    if (!a) {
        nb__null("nb_neg", "a");
        return NULL;
    }
    return nb__unary("nb_neg", &neg_op, a, NULL, 0);
}

/* ---- exponentials and logarithms ---------------------------------------------------------- */

/* y = e^x; dx = g·y */
NB__EW_KERNEL(exp_fwd, nb__expf(V0))
NB__EW_KERNEL(exp_grad, V0 *V2)
static const nb__unop exp_op = {NB__UNOP_NODE("ExpBackward0"), exp_fwd, exp_grad, NB__READ_OUT};

nb_tensor *nb_exp(nb_tensor *x)
{
    return nb__unary("nb_exp", &exp_op, x, NULL, 0);
}

/* y = e^x - 1, exact near 0; dx = g·(y + 1) */
NB__EW_KERNEL(expm1_fwd, nb__expm1f(V0))
NB__EW_KERNEL(expm1_grad, V0 *(V2 + 1.0f))
static const nb__unop expm1_op = {NB__UNOP_NODE("Expm1Backward0"), expm1_fwd, expm1_grad,
                                  NB__READ_OUT};

nb_tensor *nb_expm1(nb_tensor *x)
{
    return nb__unary("nb_expm1", &expm1_op, x, NULL, 0);
}

/* y = ln x; dx = g / x */
NB__EW_KERNEL(log_fwd, nb__logf(V0))
NB__EW_KERNEL(log_grad, V0 / V1)
static const nb__unop log_op = {NB__UNOP_NODE("LogBackward0"), log_fwd, log_grad, NB__READ_A};

nb_tensor *nb_log(nb_tensor *x)
{
    return nb__unary("nb_log", &log_op, x, NULL, 0);
}

/* y = log2 x; dx = g / (x·ln 2), with ln 2 rounded to float: PyTorch multiplies by a number */
NB__EW_KERNEL(log2_fwd, nb__log2f(V0))
NB__EW_KERNEL(log2_grad, V0 / (V1 * 0x1.62e43p-1f))
static const nb__unop log2_op = {NB__UNOP_NODE("Log2Backward0"), log2_fwd, log2_grad, NB__READ_A};

nb_tensor *nb_log2(nb_tensor *x)
{
    return nb__unary("nb_log2", &log2_op, x, NULL, 0);
}

/* y = ln(1 + x), exact near 0; dx = g / (x + 1) */
NB__EW_KERNEL(log1p_fwd, nb__log1pf(V0))
NB__EW_KERNEL(log1p_grad, V0 / (V1 + 1.0f))
static const nb__unop log1p_op = {NB__UNOP_NODE("Log1PBackward0"), log1p_fwd, log1p_grad,
                                  NB__READ_A};

nb_tensor *nb_log1p(nb_tensor *x)
{
    return nb__unary("nb_log1p", &log1p_op, x, NULL, 0);
}

/* ---- roots and powers ----------------------------------------------------------------------- */

/* y = √x; dx = g / (2·y) */
NB__EW_KERNEL(sqrt_fwd, sqrtf(V0))
NB__EW_KERNEL(sqrt_grad, V0 / (2.0f * V2))
static const nb__unop sqrt_op = {NB__UNOP_NODE("SqrtBackward0"), sqrt_fwd, sqrt_grad, NB__READ_OUT};

nb_tensor *nb_sqrt(nb_tensor *x)
{
    return nb__unary("nb_sqrt", &sqrt_op, x, NULL, 0);
}

/* y = 1 / √x; dx = (-0.5·g)·y³ */
NB__EW_KERNEL(rsqrt_fwd, 1.0f / sqrtf(V0))
NB__EW_KERNEL(rsqrt_grad, -0.5f * V0 * (V2 * V2 * V2))
static const nb__unop rsqrt_op = {NB__UNOP_NODE("RsqrtBackward0"), rsqrt_fwd, rsqrt_grad,
                                  NB__READ_OUT};

nb_tensor *nb_rsqrt(nb_tensor *x)
{
    return nb__unary("nb_rsqrt", &rsqrt_op, x, NULL, 0);
}

/* y = 1 / x; dx = -g·y² */
NB__EW_KERNEL(reciprocal_fwd, 1.0f / V0)
NB__EW_KERNEL(reciprocal_grad, -V0 *(V2 *V2))
static const nb__unop reciprocal_op = {NB__UNOP_NODE("ReciprocalBackward0"), reciprocal_fwd,
                                       reciprocal_grad, NB__READ_OUT};

nb_tensor *nb_reciprocal(nb_tensor *x)
{
    return nb__unary("nb_reciprocal", &reciprocal_op, x, NULL, 0);
}

/* y = x·x; dx = g·(2·x): pow(x, 2) as PyTorch records it, in a loop that vectorises */
NB__EW_KERNEL(square_fwd, V0 *V0)
NB__EW_KERNEL(square_grad, V0 *(2.0f * V1))
static const nb__unop square_op = {NB__UNOP_NODE("PowBackward0"), square_fwd, square_grad,
                                   NB__READ_A};

nb_tensor *nb_square(nb_tensor *x)
{
    return nb__unary("nb_square", &square_op, x, NULL, 0);
}

/*
 * x^e for a number e as PyTorch computes it: the exponents it special-cases first (pow_out,
 * then its kernel), else pow in double (its kernel widens the float base to the double
 * exponent). e is loop-invariant, so each call takes the same branch.
 */
static inline float pow_number(float x, double e)
{
    if (e == 0.0) return 1.0f; /* even for NaN */
    if (e == 1.0) return x;
    if (e == 0.5) return sqrtf(x);
    if (e == -0.5) return 1.0f / sqrtf(x);
    if (e == -1.0) return 1.0f / x;
    if (e == 2.0) return x * x;
    if (e == 3.0) return x * x * x;
    if (e == -2.0) return (float)(1.0 / (double)(x * x));
    return (float)pow((double)x, e);
}

/* y = x^e; dx = 0 for e = 0, else g·(e·x^(e-1)), the power again as above */
NB__EW_KERNEL(pow_scalar_fwd, pow_number(V0, (double)k[0]))
NB__EW_KERNEL(pow_scalar_grad,
              k[0] == 0.0f ? 0.0f : V0 * (k[0] * pow_number(V1, (double)k[0] - 1.0)))
static const nb__unop pow_scalar_op = {NB__UNOP_NODE("PowBackward0"), pow_scalar_fwd,
                                       pow_scalar_grad, NB__READ_A};

/* The same kernels with a special-cased exponent as a constant, so that pow_number's tests
 * fold away and the loops vectorise (x^2 is square_op: its kernels are these for e = 2) */
#define POW_OP(tag, E)                                                                             \
    NB__EW_KERNEL(pow_##tag##_fwd, pow_number(V0, (E)))                                            \
    NB__EW_KERNEL(pow_##tag##_grad, V0 *((float)(E)*pow_number(V1, (E)-1.0)))                      \
    static const nb__unop pow_##tag##_op = {NB__UNOP_NODE("PowBackward0"), pow_##tag##_fwd,        \
                                            pow_##tag##_grad, NB__READ_A};
POW_OP(cube, 3.0)
POW_OP(root, 0.5)
POW_OP(rroot, -0.5)
POW_OP(inverse, -1.0)
POW_OP(inverse_square, -2.0)

nb_tensor *nb_pow_scalar(nb_tensor *x, float exponent)
{
    static const struct {
        float e;
        const nb__unop *op;
    } special[] = {{2.0f, &square_op},       {3.0f, &pow_cube_op},
                   {0.5f, &pow_root_op},     {-0.5f, &pow_rroot_op},
                   {-1.0f, &pow_inverse_op}, {-2.0f, &pow_inverse_square_op}};
    const nb__unop *op = &pow_scalar_op;
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (exponent == special[i].e) op = special[i].op;
    return nb__unary("nb_pow_scalar", op, x, &exponent, 1);
}

/* ---- trigonometric and sign ----------------------------------------------------------------- */

/*
 * A kernel of sin or cos: o[i] = EXPR(large), with X the operand that holds x. Blocks of
 * NB__TRIG_BLOCK elements whose x are all below 120 in magnitude take the loop that leaves out
 * nb__sincosf's reduction of large arguments (large false), in a loop of its own when every
 * operand is contiguous, as NB__EW_KERNEL's; others the whole one. Both give the same bits
 * there, so where a block starts changes nothing.
 */
#define TRIG_KERNEL(name, X, EXPR)                                                                 \
    NB__CLONES static void name(float *o, const float *const *in, const int64_t *s, int64_t n,     \
                                const float *k)                                                    \
    {                                                                                              \
        const float *P0_ = in[0], *P1_ = in[1];                                                    \
        const int64_t S0_ = s[0], S1_ = s[1];                                                      \
        (void)P1_, (void)S1_, (void)k;                                                             \
        for (int64_t lo_ = 0; lo_ < n; lo_ += NB__TRIG_BLOCK) {                                    \
            int64_t hi_ = n - lo_ < NB__TRIG_BLOCK ? n : lo_ + NB__TRIG_BLOCK;                     \
            bool small_ = nb__trig_small(P##X##_ + lo_ * S##X##_, S##X##_, hi_ - lo_);             \
            if (small_ && S0_ == 1 && S1_ == 1) {                                                  \
                for (int64_t i_ = lo_; i_ < hi_; i_++) o[i_] = EXPR(false);                        \
            } else if (small_) {                                                                   \
                for (int64_t i_ = lo_; i_ < hi_; i_++) o[i_] = EXPR(false);                        \
            } else {                                                                               \
                for (int64_t i_ = lo_; i_ < hi_; i_++) o[i_] = EXPR(true);                         \
            }                                                                                      \
        }                                                                                          \
    }

/* y = sin x; dx = g·cos x */
#define SIN_FWD(large)  nb__sincosf(V0, false, large)
#define SIN_GRAD(large) V0 *nb__sincosf(V1, true, large)
TRIG_KERNEL(sin_fwd, 0, SIN_FWD)
TRIG_KERNEL(sin_grad, 1, SIN_GRAD)
static const nb__unop sin_op = {NB__UNOP_NODE("SinBackward0"), sin_fwd, sin_grad, NB__READ_A};

nb_tensor *nb_sin(nb_tensor *x)
{
    return nb__unary("nb_sin", &sin_op, x, NULL, 0);
}

/* y = cos x; dx = g·(-sin x) */
#define COS_FWD(large)  nb__sincosf(V0, true, large)
#define COS_GRAD(large) V0 * -nb__sincosf(V1, false, large)
TRIG_KERNEL(cos_fwd, 0, COS_FWD)
TRIG_KERNEL(cos_grad, 1, COS_GRAD)
static const nb__unop cos_op = {NB__UNOP_NODE("CosBackward0"), cos_fwd, cos_grad, NB__READ_A};

nb_tensor *nb_cos(nb_tensor *x)
{
    return nb__unary("nb_cos", &cos_op, x, NULL, 0);
}

/* y = tanh x; dx = g·(1 - y²) */
NB__EW_KERNEL(tanh_fwd, nb__tanhf(V0))
NB__EW_KERNEL(tanh_grad, V0 *(1.0f - V2 * V2))
static const nb__unop tanh_op = {NB__UNOP_NODE("TanhBackward0"), tanh_fwd, tanh_grad, NB__READ_OUT};

nb_tensor *nb_tanh(nb_tensor *x)
{
    return nb__unary("nb_tanh", &tanh_op, x, NULL, 0);
}

/* sign as PyTorch's: (x > 0) - (x < 0), so +0 for ±0 and for NaN */
#define SIGNF(v) (((v) > 0.0f ? 1.0f : 0.0f) - ((v) < 0.0f ? 1.0f : 0.0f))

/* y = |x|; dx = g·sign(x) (0 at 0 and NaN) */
NB__EW_KERNEL(abs_fwd, fabsf(V0))
NB__EW_KERNEL(abs_grad, V0 *SIGNF(V1))
static const nb__unop abs_op = {NB__UNOP_NODE("AbsBackward0"), abs_fwd, abs_grad, NB__READ_A};

nb_tensor *nb_abs(nb_tensor *x)
{
    return nb__unary("nb_abs", &abs_op, x, NULL, 0);
}

/* y = sign(x); dx = 0 (PyTorch's SignBackward0 gives zeros, whatever g is) */
NB__EW_KERNEL(sign_fwd, SIGNF(V0))
NB__EW_KERNEL(zero_grad, 0.0f)
static const nb__unop sign_op = {NB__UNOP_NODE("SignBackward0"), sign_fwd, zero_grad, 0};

nb_tensor *nb_sign(nb_tensor *x)
{
    return nb__unary("nb_sign", &sign_op, x, NULL, 0);
}

/* ---- clamping ---------------------------------------------------------------------------------
 */

/*
 * min(max(x, lo), hi) as std::min/std::max compare: x is kept on ties and when it is NaN. A
 * NaN bound gives NaN, as PyTorch's clamp of two bounds does.
 */
static inline float clamp_value(float x, float lo, float hi)
{
    float v = x < lo ? lo : x;
    v = hi < v ? hi : v;
    return lo != lo || hi != hi ? lo + hi : v;
}

/* y = clamp(x, k0, k1); dx = g where k0 <= x <= k1 (the bounds included), else 0 (NaN: 0) */
NB__EW_KERNEL(clamp_fwd, clamp_value(V0, k[0], k[1]))
NB__EW_KERNEL(clamp_grad, nb__select((V1 >= k[0]) & (V1 <= k[1]), V0, 0.0f))
static const nb__unop clamp_op = {NB__UNOP_NODE("ClampBackward1"), clamp_fwd, clamp_grad,
                                  NB__READ_A};

nb_tensor *nb_clamp(nb_tensor *x, float min, float max)
{
    return nb__unary("nb_clamp", &clamp_op, x, (const float[]){min, max}, 2);
}

/* y = clamp(x, k0, k1); dx = 0 where x <= k0 or x >= k1 (the bounds excluded), else g */
NB__EW_KERNEL(hardtanh_grad, nb__select((V1 <= k[0]) | (V1 >= k[1]), 0.0f, V0))
static const nb__unop hardtanh_op = {NB__UNOP_NODE("HardtanhBackward0"), clamp_fwd, hardtanh_grad,
                                     NB__READ_A};

nb_tensor *nb_hardtanh(nb_tensor *x, float min_val, float max_val)
{
    return nb__unary("nb_hardtanh", &hardtanh_op, x, (const float[]){min_val, max_val}, 2);
}

/* ---- activations -------------------------------------------------------------------------- */

/* y = x if x > 0 else k0·x; dx = g if x > 0 else k0·g */
NB__EW_KERNEL(leaky_relu_fwd, nb__select(V0 > 0.0f, V0, V0 *k[0]))
NB__EW_KERNEL(leaky_relu_grad, nb__select(V1 > 0.0f, V0, V0 *k[0]))
static const nb__unop leaky_relu_op = {NB__UNOP_NODE("LeakyReluBackward0"), leaky_relu_fwd,
                                       leaky_relu_grad, NB__READ_A};

nb_tensor *nb_leaky_relu(nb_tensor *x, float negative_slope)
{
    return nb__unary("nb_leaky_relu", &leaky_relu_op, x, &negative_slope, 1);
}

/* y = (e^x - 1)·k0 if x <= 0 else x; dx = g·k0·e^x if x <= 0 else g */
NB__EW_KERNEL(elu_fwd, nb__pick(V0 <= 0.0f, (nb__expf(V0) - 1.0f) * k[0], V0))
NB__EW_KERNEL(elu_grad, nb__pick(V1 <= 0.0f, V0 *k[0] * nb__expf(V1), V0))
static const nb__unop elu_op = {NB__UNOP_NODE("EluBackward0"), elu_fwd, elu_grad, NB__READ_A};

nb_tensor *nb_elu(nb_tensor *x, float alpha)
{
    return nb__unary("nb_elu", &elu_op, x, &alpha, 1);
}

/* PyTorch's float constants: √½, and 2/√π·√½·½ = 1/√(2π) computed in double, then rounded */
#define GELU_ALPHA 0x1.6a09e6p-1f
#define GELU_BETA  0x1.988454p-2f
/* √(2/π) = √2·2/√π·½ likewise, and the cubic term's coefficient */
#define GELU_TANH_BETA  0x1.988454p-1f
#define GELU_TANH_KAPPA 0x1.6e4e26p-5f

/* y = x·½·(1 + erf(x·√½)); dx = g·(Φ(x) + x·φ(x)) */
static inline __attribute__((always_inline)) float gelu_grad_value(float g, float x)
{
    float cdf = 0.5f * (1.0f + nb__erff(x * GELU_ALPHA));
    float pdf = GELU_BETA * nb__expf(x * x * -0.5f);
    return g * (cdf + x * pdf);
}

NB__EW_KERNEL(gelu_fwd, V0 * 0.5f * (1.0f + nb__erff(V0 * GELU_ALPHA)))
NB__EW_KERNEL(gelu_grad, gelu_grad_value(V0, V1))
static const nb__unop gelu_op = {NB__UNOP_NODE("GeluBackward0"), gelu_fwd, gelu_grad, NB__READ_A};

/* y = ½·x·(1 + tanh(u)), u = β·(x + κ·x³); dx = g·(½·(1 + tanh u) + ½·x·(1 - tanh² u)·u') */
static inline __attribute__((always_inline)) float gelu_tanh_grad_value(float g, float x)
{
    float x_sq = x * x;
    float t = nb__tanhf(GELU_TANH_BETA * (x + GELU_TANH_KAPPA * (x_sq * x)));
    float left_derivative = 0.5f * (1.0f + t);
    float inner_derivative = GELU_TANH_BETA * (1.0f + 3.0f * GELU_TANH_KAPPA * x_sq);
    float right_derivative = 0.5f * x * (1.0f - t * t) * inner_derivative;
    return g * (left_derivative + right_derivative);
}

NB__EW_KERNEL(gelu_tanh_fwd,
              0.5f * V0 *
                  (1.0f + nb__tanhf(GELU_TANH_BETA * (V0 + GELU_TANH_KAPPA * (V0 * V0 * V0)))))
NB__EW_KERNEL(gelu_tanh_grad, gelu_tanh_grad_value(V0, V1))
static const nb__unop gelu_tanh_op = {NB__UNOP_NODE("GeluBackward0"), gelu_tanh_fwd, gelu_tanh_grad,
                                      NB__READ_A};

nb_tensor *nb_gelu(nb_tensor *x, nb_gelu_approximate approximate)
{
    if (x && approximate != NB_GELU_NONE && approximate != NB_GELU_TANH) {
        nb__error(NB_EINVAL, "nb_gelu", "approximate must be NB_GELU_NONE or NB_GELU_TANH, got %d",
                  (int)approximate);
        return NULL;
    }
    return nb__unary("nb_gelu", approximate == NB_GELU_TANH ? &gelu_tanh_op : &gelu_op, x, NULL, 0);
}

/* y = x·σ(x), σ(x) = 1 / (1 + e^-x); dx = g·σ·(1 + x·(1 - σ)) */
static inline __attribute__((always_inline)) float silu_grad_value(float g, float x)
{
    float s = 1.0f / (1.0f + nb__expf(-x));
    return g * s * (1.0f + x * (1.0f - s));
}

NB__EW_KERNEL(silu_fwd, V0 / (1.0f + nb__expf(-V0)))
NB__EW_KERNEL(silu_grad, silu_grad_value(V0, V1))
static const nb__unop silu_op = {NB__UNOP_NODE("SiluBackward0"), silu_fwd, silu_grad, NB__READ_A};

nb_tensor *nb_silu(nb_tensor *x)
{
    return nb__unary("nb_silu", &silu_op, x, NULL, 0);
}

/* beta k0, threshold k1: y = x where x·β > threshold, else ln(1 + e^(x·β)) / β;
 * dx = g there, else g·z / (z + 1) with z = e^(x·β) */
static inline __attribute__((always_inline)) float softplus_grad_value(float g, float x, float beta,
                                                                       float threshold)
{
    float z = nb__expf(x * beta);
    return nb__pick(x * beta > threshold, g, g * z / (z + 1.0f));
}

NB__EW_KERNEL(softplus_fwd, nb__pick(V0 *k[0] > k[1], V0, nb__log1pf(nb__expf(V0 *k[0])) / k[0]))
NB__EW_KERNEL(softplus_grad, softplus_grad_value(V0, V1, k[0], k[1]))
static const nb__unop softplus_op = {NB__UNOP_NODE("SoftplusBackward0"), softplus_fwd,
                                     softplus_grad, NB__READ_A};

nb_tensor *nb_softplus(nb_tensor *x, float beta, float threshold)
{
    return nb__unary("nb_softplus", &softplus_op, x, (const float[]){beta, threshold}, 2);
}

/* y = min(x, 0) - ln(1 + z), z = e^-|x|: never exponentiates a positive number;
 * dx = g·(1 - z / (1 + z)) for x < 0, g·z / (1 + z) otherwise (PyTorch's arrangement) */
static inline __attribute__((always_inline)) float logsigmoid_grad_value(float g, float x)
{
    float z = nb__expf(-fabsf(x));
    bool negative = x < 0.0f;
    return ((negative ? 1.0f : 0.0f) - (negative ? 1.0f : -1.0f) * (z / (1.0f + z))) * g;
}

NB__EW_KERNEL(logsigmoid_fwd, nb__log_sigmoidf(V0))
NB__EW_KERNEL(logsigmoid_grad, logsigmoid_grad_value(V0, V1))
static const nb__unop logsigmoid_op = {NB__UNOP_NODE("LogSigmoidBackward0"), logsigmoid_fwd,
                                       logsigmoid_grad, NB__READ_A};

nb_tensor *nb_logsigmoid(nb_tensor *x)
{
    return nb__unary("nb_logsigmoid", &logsigmoid_op, x, NULL, 0);
}

/* ---- the machinery ------------------------------------------------------------------------ */

enum { SLOT_X, SLOT_Y };

nb_tensor *nb__unary(const char *fn, const nb__unop *op, nb_tensor *x, const float *k, int nk)
{
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    float kk[NB__UNOP_K] = {0};
    if (nk > 0) memcpy(kk, k, (size_t)nk * sizeof *k);
    nb_tensor *out = nb__new(fn, x->ndim, x->shape);
    if (!out) return NULL;
    nb__ew_unary(op->forward, kk, x, out);
    nb_node *n;
    out = nb__finish(fn, &op->node, out, 1, &x, &n);
    if (n) {
        memcpy(nb__state(n), kk, sizeof kk);
        if (((op->reads & NB__READ_A) && nb__save(fn, n, SLOT_X, x) != NB_OK) ||
            ((op->reads & NB__READ_OUT) && nb__save(fn, n, SLOT_Y, out) != NB_OK)) {
            nb__drop(out);
            return NULL;
        }
    }
    return out;
}

nb_status nb__unop_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx)
{
    const nb__unop *op = (const nb__unop *)(const void *)n->op;
    nb_tensor *x = NULL, *y = NULL;
    if ((op->reads & NB__READ_A) && !(x = nb__saved(n, SLOT_X))) return nb__last_code();
    if ((op->reads & NB__READ_OUT) && !(y = nb__saved(n, SLOT_Y))) return nb__last_code();
    nb_shape s = nb__size(gy[0]);
    nb__operand in[3] = {
        {nb__data(gy[0]), &s}, {x ? nb__data(x) : NULL, &s}, {y ? nb__data(y) : NULL, &s}};
    bool acc;
    float *dst = nb__grad_dst(n, gx, 0, &acc);
    if (!dst) return NB_ENOMEM;
    nb__ew_apply(op->grad, nb__state(n), dst, acc, &s, 3, in);
    return NB_OK;
}
