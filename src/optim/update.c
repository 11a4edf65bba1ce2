/*
 * The update rules, one fused pass over each parameter. Each reproduces, element by element,
 * the float32 operations of PyTorch 1.13's single-tensor implementation
 * (torch/optim/<name>.py, _single_tensor_<name>) as its CPU kernels evaluate them:
 *   - a Python float passed to a kernel (lr, betas, alpha, 1 - beta, -step_size) is rounded
 *     to float32 first; bias corrections and step sizes are computed in double before that;
 *   - t.add_(x, alpha=a) and t.add(x, alpha=a) are fmaf(a, x, t) (its kernel is a fused
 *     multiply-add, vector and scalar, on the AVX2 CPUs PyTorch dispatches to);
 *   - t.addcmul_(x, y, value=v) is fmaf(v·x, y, t), with v·x rounded;
 *   - t.addcdiv_(x, y, value=v) is t + (v·x) / y, without fusion;
 *   - t.mul_(s), t / s, t + s, sqrt are single roundings.
 * Every intermediate is a separate statement so no compiler contracts a multiply and an add
 * that PyTorch rounds apart. docs/optim.md lists the sequences.
 *
 * Dormant state. A running average whose gradient stays zero decays into the subnormal
 * numbers and stays there (2^-149 · 0.9 rounds back to 2^-149): after two epochs of the main
 * job, one Adam moment in nine is subnormal (the weights of rarely lit pixels and of dead
 * units). The Intel Xeons measured here take a microcode assist of ~100 cycles for each float
 * operation that reads or makes a subnormal, which made Adam's pass 3 times slower. Flushing
 * them to zero would change the numbers PyTorch computes, so the loops compute such an
 * element without float operations on subnormals: the decayed average from its bits
 * (subnormal_decay, sqrt_nosub), and the parameter, which so small a step cannot move,
 * unchanged where bounds prove that is its float result. An element outside those bounds
 * takes the plain float operations, and a block without dormant elements the plain loop.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "blas/blas.h"
#include "ops/mathf.h"
#include "optim/internal.h"

/* g, negated when maximizing, with L2 weight decay: grad.add(param, alpha=weight_decay) */
static inline float decayed(float g, float p, const nb_optim_options *o, float wd)
{
    if (o->maximize) g = -g;
    return o->weight_decay != 0.0 ? fmaf(wd, p, g) : g;
}

/* torch.maximum: NaN wins */
static inline float maximum(float a, float b)
{
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a > b ? a : b;
}

/*
 * Each kind computes its constants once per step (an *_k struct), then its loop runs over
 * ranges of the parameter: chunks of CHUNK elements on the thread pool, cut by size alone
 * (every element's update depends on that element only, so any cut gives the same bits).
 * The loops are written once as an always-inlined body whose flags are parameters, and a
 * kernel calls it with constant flags only, so that no branch is left inside and the
 * compiler vectorises every option set: a flag that changes which state exists (amsgrad,
 * momentum, centered) has a body of its own, and an option that only changes a value
 * (maximize, weight decay, AdamW's decay) is a select on a mask made once per step. Options
 * passed as runtime flags left a branch in the loop, which then ran scalar: AdamW, Adam with
 * weight decay, maximize or amsgrad, and RMSprop took 7-9 times as long as plain Adam.
 */
#define NB_INLINE static inline __attribute__((always_inline))
#define CHUNK     16384

#define SIGN_BIT 0x80000000u
#define MANT     0x007fffffu
#define EXPONENT 0x7f800000u

/* All ones where b, for selects on bits that keep float operations unconditional */
static inline uint32_t mask_of(bool b)
{
    return 0u - (uint32_t)b;
}

/* a where mask is set, else b */
static inline float pick(uint32_t mask, float a, float b)
{
    return nb__from_bits((nb__bits(a) & mask) | (nb__bits(b) & ~mask));
}

/* x (by its bits) is subnormal */
static inline bool subnormal_bits(uint32_t b)
{
    return ((b & EXPONENT) == 0u) & ((b & MANT) != 0u);
}

/* 0 <= c <= 1, the factors subnormal_decay takes */
static inline bool in_unit(float c)
{
    return c >= 0.0f && c <= 1.0f;
}

/* x (by its bits) is nonzero and below 2^-100 in magnitude: small enough that its products
 * may be subnormal */
static inline bool tiny_bits(uint32_t b)
{
    return (((b >> 23) & 0xffu) < 27u) & ((b & ~SIGN_BIT) != 0u);
}

/*
 * c·x + z, rounded as float arithmetic rounds it, for a subnormal x (by its bits xb), a
 * factor 0 <= c <= 1 and a zero z (by its bits), by no float operation on a subnormal: x is
 * f·2^-149 with its integer mantissa f < 2^23, so c·x rounds to the nearest integer multiple
 * of 2^-149 of c·f, ties to even, which fmaf(f, c, 2^23) leaves in the mantissa (one
 * rounding, where the unit in the last place is 1). A zero product adds to z as zeros do: -0
 * only if both are -0.
 */
static inline float subnormal_decay(uint32_t xb, float c, uint32_t zb)
{
    uint32_t sign = xb & SIGN_BIT;
    uint32_t q = nb__bits(fmaf((float)(int32_t)(xb & MANT), c, 0x1p23f)) & MANT;
    uint32_t nz = mask_of(q != 0u); /* a mask: z is used, so computed, everywhere */
    return nb__from_bits(((sign | q) & nz) | (sign & zb & ~nz));
}

/* A parameter of magnitude at least this is not moved by a step of at most 2^-79: half its
 * unit in the last place, 2^-75 or more, is larger. */
#define DORMANT_MIN_PARAM 0x1p-50f
/* The largest |lr| for which lr times a tiny momentum buffer is at most 2^20·2^-100 = 2^-80 */
#define DORMANT_MAX_LR 0x1p20f
/* Elements per block of a loop with a dormant path */
#define DORMANT_BLOCK 256

/* The least denominator by which a step of size |step_size| times a tiny value (< 2^-100),
 * rounded twice, is at most 2^-79 (at least 2^-100; infinite for a step size that is not
 * finite). */
static float dormant_min(float step_size)
{
    float a = fabsf(step_size);
    if (!isfinite(a)) return INFINITY;
    return a * 0x1p-20f > 0x1p-100f ? a * 0x1p-20f : 0x1p-100f;
}

/*
 * An update with a dormant path, over elements [0, n) in blocks. maybe(i): element i may be
 * dormant (a zero gradient and a tiny state); deep(i): its second state is subnormal as well
 * (Adam's v, after very long dormancy). A block takes the cheapest of elem(false, false), the
 * float operations alone, elem(true, false) and elem(true, true) that covers what its
 * elements need. (This only chooses the speed: every path gives the same bits.)
 */
#define DORMANT_LOOP(n, elem, maybe, deep)                                                         \
    for (int64_t lo_ = 0; lo_ < (n); lo_ += DORMANT_BLOCK) {                                       \
        int64_t end_ = (n)-lo_ < DORMANT_BLOCK ? (n) : lo_ + DORMANT_BLOCK;                        \
        unsigned maybe_ = 0, deep_ = 0;                                                            \
        for (int64_t i = lo_; i < end_; i++) maybe_ |= maybe(i);                                   \
        if (maybe_)                                                                                \
            for (int64_t i = lo_; i < end_; i++) deep_ |= deep(i);                                 \
        if (deep_)                                                                                 \
            for (int64_t i = lo_; i < end_; i++) elem(true, true);                                 \
        else if (maybe_)                                                                           \
            for (int64_t i = lo_; i < end_; i++) elem(true, false);                                \
        else                                                                                       \
            for (int64_t i = lo_; i < end_; i++) elem(false, false);                               \
    }

/*
 * sqrtf(x), by no float operation on a positive subnormal: such an x is f·2^-149, and its
 * root is that of 2f (an integer below 2^24, exact in float) times 2^-75, a normal float
 * (powers of two commute with the rounding). Other values take sqrtf itself.
 */
static inline float sqrt_nosub(float x)
{
    uint32_t xb = nb__bits(x);
    uint32_t sm = mask_of((xb & (SIGN_BIT | EXPONENT)) == 0u);
    float r = sqrtf(pick(sm, (float)(int32_t)(2u * (xb & MANT)), x));
    /* scaled from 1 where x was not subnormal: a small root times 2^-75 would be one */
    float scaled = pick(sm, r, 1.0f) * 0x1p-75f;
    return pick(sm, scaled, r);
}

/* The gradient is zero and the state tiny: an element that may be dormant. */
static inline unsigned maybe_dormant(float grad, float state)
{
    return (unsigned)((grad == 0.0f) & tiny_bits(nb__bits(state)));
}

/* The gradient is zero and the state subnormal. */
static inline unsigned zero_over_subnormal(float grad, float state)
{
    return (unsigned)((grad == 0.0f) & subnormal_bits(nb__bits(state)));
}

/* One parameter's update over elements [lo, lo + len): state holds nbuf arrays of n. */
typedef void (*range_fn)(const void *k, float *p, const float *grad, float *state, int64_t n,
                         int64_t lo, int64_t len);

typedef struct sgd_k {
    float wd, mu, keep, neg_lr;
    bool maximize, has_wd, momentum, fresh, nesterov;
    bool dormant_ok; /* momentum in_unit and |lr| <= DORMANT_MAX_LR: the dormant bounds hold */
} sgd_k;

/*
 * One element of SGD with momentum, after the first step: p, buf at one index; grad its
 * gradient. Dormant: the gradient is zero, buf tiny and |p| >= DORMANT_MIN_PARAM, so the step
 * cannot move p (|lr·buf| <= 2^20·2^-100 = 2^-80, with dormant_ok); a subnormal buf decays by
 * subnormal_decay while its float path sees a zero. Any other element takes the float
 * operations.
 */
NB_INLINE void sgd_momentum_elem(const sgd_k *k, bool maximize, bool has_wd, bool dormant_path,
                                 float *p, float *buf, float grad)
{
    const float p0 = *p;
    float d = maximize ? -grad : grad;
    if (has_wd) d = fmaf(k->wd, p0, d); /* grad.add(param, alpha=weight_decay) */
    uint32_t bb = nb__bits(*buf);
    bool dormant = dormant_path & (d == 0.0f) & tiny_bits(bb) & (fabsf(p0) >= DORMANT_MIN_PARAM);
    bool sub = dormant & ((bb & EXPONENT) == 0u);
    uint32_t dm = mask_of(dormant), sm = mask_of(sub);
    float b = nb__from_bits(bb & ~sm) * k->mu, z = k->keep * d;
    float b1 = fmaf(k->keep, d, b);
    if (dormant_path) b1 = pick(sm, subnormal_decay(bb, k->mu, nb__bits(z)), b1);
    float bf = dormant_path ? nb__from_bits(nb__bits(b1) & ~dm) : b1;
    float de = k->nesterov ? fmaf(k->mu, bf, d) : bf;
    float p1 = fmaf(k->neg_lr, de, p0);
    if (dormant_path) p1 = pick(dm, p0, p1);
    *p = p1;
    *buf = b1;
}

NB_INLINE void sgd_body(const sgd_k *k, bool maximize, bool has_wd, bool momentum,
                        float *restrict p, float *restrict buf, const float *restrict grad,
                        int64_t n)
{
    const float wd = k->wd, mu = k->mu, keep = k->keep, neg_lr = k->neg_lr;
    const bool fresh = k->fresh, nesterov = k->nesterov;
    if (momentum && !fresh && k->dormant_ok) {
#define SGD_ELEM(dormant_path, second_path)                                                        \
    sgd_momentum_elem(k, maximize, has_wd, dormant_path, p + i, buf + i, grad[i])
#define SGD_MAYBE(i) maybe_dormant(grad[i], buf[i])
#define SGD_DEEP(i)  0u
        DORMANT_LOOP(n, SGD_ELEM, SGD_MAYBE, SGD_DEEP)
#undef SGD_ELEM
#undef SGD_MAYBE
#undef SGD_DEEP
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float d = maximize ? -grad[i] : grad[i];
        if (has_wd) d = fmaf(wd, p[i], d); /* grad.add(param, alpha=weight_decay) */
        if (momentum) {
            if (fresh) { /* the first step clones d_p, without dampening */
                buf[i] = d;
            } else {
                float b = buf[i] * mu;
                buf[i] = fmaf(keep, d, b);
            }
            d = nesterov ? fmaf(mu, buf[i], d) : buf[i];
        }
        p[i] = fmaf(neg_lr, d, p[i]);
    }
}

NB__CLONES static void sgd_range(const void *kv, float *p, const float *grad, float *state,
                                 int64_t n, int64_t lo, int64_t len)
{
    const sgd_k *k = kv;
    (void)n;
    if (!k->maximize && !k->has_wd && !k->momentum)
        sgd_body(k, false, false, false, p + lo, NULL, grad + lo, len);
    else
        sgd_body(k, k->maximize, k->has_wd, k->momentum, p + lo, k->momentum ? state + lo : NULL,
                 grad + lo, len);
}

typedef struct adam_k {
    float b1, b2, one_b1, one_b2, eps, wd, decay, neg_step_size;
    double inv_bc2_sqrt; /* 1 / bc2_sqrt (√bc2 rounded to float), for nb__div_by_inverse */
    float denom_min;     /* a dormant element's parameter stays put when denom >= this */
    bool amsgrad;
    bool dormant_ok; /* 0 <= beta1, beta2 <= 1, as subnormal_decay needs */
    /* the options as masks: decoupled (AdamW), the sign bit to maximize, L2 weight decay */
    uint32_t decoupled_mask, negate_mask, l2_mask;
} adam_k;

/*
 * One element of Adam: p, m, v, vmax (NULL without amsgrad) at one index; grad its gradient.
 * Without options, plain Adam; with them, AdamW's decay, maximize and L2 weight decay as
 * k's masks select them (a select, not a branch, so the loop stays vector). With v_path, a
 * subnormal v whose gradient is zero decays by subnormal_decay and the square root takes subnormals
 * by sqrt_nosub. With dormant_path, dormant: the gradient is zero, m tiny, |p| >= DORMANT_MIN_PARAM
 * and denom >= denom_min, so the step cannot move p (|step| <= |step_size|·2^-100 / denom <=
 * 2^-79); a subnormal m decays by subnormal_decay while its float path sees a zero. Any other
 * element takes the float operations.
 */
NB_INLINE void adam_elem(const adam_k *k, bool options, bool amsgrad, bool dormant_path,
                         bool v_path, float *p, float *m, float *v, float *vmax, float grad)
{
    const float p0 = *p, m0 = *m;
    float pd = p0, g = grad;
    if (options) {
        pd = pick(k->decoupled_mask, p0 * k->decay, p0); /* param.mul_(1 - lr * weight_decay) */
        g = nb__from_bits(nb__bits(g) ^ k->negate_mask); /* -grad */
        g = pick(k->l2_mask, fmaf(k->wd, pd, g), g);     /* grad.add(param, alpha=weight_decay) */
    }
    /* selects by masks on the bits, so that no float operation becomes conditional */
    uint32_t vb0 = nb__bits(*v);
    uint32_t vm = mask_of(v_path & (g == 0.0f) & ((vb0 & EXPONENT) == 0u));
    float vb = nb__from_bits(vb0 & ~vm) * k->b2, g2 = k->one_b2 * g;
    float v1 = fmaf(g2, g, vb);
    if (v_path) v1 = pick(vm, subnormal_decay(vb0, k->b2, nb__bits(g2 * g)), v1);
    float second = v1, vmax1 = 0.0f;
    if (amsgrad) second = vmax1 = maximum(*vmax, v1);
    /* root / bc2_sqrt: a root is 0 or at least 2^-75 and bc2_sqrt at most 1, so the quotient is
     * never subnormal and nb__div_by_inverse gives the division's bits */
    float denom = nb__div_by_inverse(v_path ? sqrt_nosub(second) : sqrtf(second), k->inv_bc2_sqrt);
    denom = denom + k->eps;
    uint32_t mb = nb__bits(m0);
    bool dormant = dormant_path & (g == 0.0f) & tiny_bits(mb) & (fabsf(pd) >= DORMANT_MIN_PARAM) &
                   (denom >= k->denom_min);
    bool sub = dormant & ((mb & EXPONENT) == 0u);
    uint32_t dm = mask_of(dormant), sm = mask_of(sub);
    float mi = nb__from_bits(mb & ~sm);
    float mbv = mi * k->b1, z = k->one_b1 * g;
    float m1 = fmaf(k->one_b1, g, mbv);
    if (dormant_path) m1 = pick(sm, subnormal_decay(mb, k->b1, nb__bits(z)), m1);
    float step = k->neg_step_size * (dormant_path ? nb__from_bits(nb__bits(m1) & ~dm) : m1);
    step = step / denom;
    float p1 = pd + step;
    if (dormant_path) p1 = pick(dm, pd, p1);
    *p = p1;
    *m = m1;
    *v = v1;
    if (amsgrad) *vmax = vmax1;
}

NB_INLINE void adam_body(const adam_k *k, bool options, bool amsgrad, float *restrict p,
                         float *restrict m, float *restrict v, float *restrict vmax,
                         const float *restrict grad, int64_t n)
{
    if (!k->dormant_ok) {
        for (int64_t i = 0; i < n; i++)
            adam_elem(k, options, amsgrad, false, false, p + i, m + i, v + i,
                      amsgrad ? vmax + i : NULL, grad[i]);
        return;
    }
#define ADAM_ELEM(dormant_path, v_path)                                                            \
    adam_elem(k, options, amsgrad, dormant_path, v_path, p + i, m + i, v + i,                      \
              amsgrad ? vmax + i : NULL, grad[i])
#define ADAM_MAYBE(i) maybe_dormant(grad[i], m[i])
#define ADAM_DEEP(i)  zero_over_subnormal(grad[i], v[i])
    DORMANT_LOOP(n, ADAM_ELEM, ADAM_MAYBE, ADAM_DEEP)
#undef ADAM_ELEM
#undef ADAM_MAYBE
#undef ADAM_DEEP
}

NB__CLONES static void adam_range(const void *kv, float *p, const float *grad, float *state,
                                  int64_t n, int64_t lo, int64_t len)
{
    const adam_k *k = kv;
    float *m = state + lo, *v = state + n + lo;
    if (k->amsgrad)
        adam_body(k, true, true, p + lo, m, v, state + 2 * n + lo, grad + lo, len);
    else if (k->decoupled_mask | k->negate_mask | k->l2_mask)
        adam_body(k, true, false, p + lo, m, v, NULL, grad + lo, len);
    else
        adam_body(k, false, false, p + lo, m, v, NULL, grad + lo, len);
}

typedef struct rmsprop_k {
    float alpha, one_alpha, eps, wd, mu, neg_lr;
    bool centered, momentum;
    bool dormant_ok;               /* alpha, momentum in_unit and |lr| <= DORMANT_MAX_LR */
    uint32_t negate_mask, l2_mask; /* the sign bit to maximize; L2 weight decay */
} rmsprop_k;

/*
 * One element of RMSprop: p, sq (square average), buf (momentum buffer) and avg_g (gradient
 * average) at one index, the last two used when momentum and centered say; grad its gradient.
 * maximize and weight decay are selects on k's masks, so the loop stays vector. Under a zero
 * gradient the averages decay into the subnormals as Adam's do; with dormant_path each takes
 * the dormant path where it is subnormal: subnormal_decay for the square average, the
 * gradient average and the momentum buffer, sqrt_nosub for the root (the bits of sqrtf for
 * every input); for a subnormal gradient average a, fmaf(-a, a, s) is s itself (a·a < 2^-252
 * is below half a unit of any nonzero float) or -0 for s = 0; and with momentum, p stays put
 * where |p| >= DORMANT_MIN_PARAM (|lr·buf| <= 2^20·2^-126). A subnormal the float operations
 * still take is zeroed first where its result is selected away. The bits are those of the
 * float operations either way.
 */
NB_INLINE void rmsprop_elem(const rmsprop_k *k, bool centered, bool momentum, bool dormant_path,
                            float *p, float *sq, float *buf, float *avg_g, float grad)
{
    const float alpha = k->alpha, one_alpha = k->one_alpha, p0 = *p;
    float g = nb__from_bits(nb__bits(grad) ^ k->negate_mask); /* -grad */
    g = pick(k->l2_mask, fmaf(k->wd, p0, g), g); /* grad.add(param, alpha=weight_decay) */
    const bool zero = dormant_path & (g == 0.0f);
    const float g2 = one_alpha * g;
    const uint32_t sb = nb__bits(*sq), ssm = mask_of(zero & subnormal_bits(sb));
    float sa = nb__from_bits(sb & ~ssm) * alpha;
    float sq1 = fmaf(g2, g, sa);
    if (dormant_path) sq1 = pick(ssm, subnormal_decay(sb, alpha, nb__bits(g2 * g)), sq1);
    *sq = sq1;
    float avg;
    if (centered) {
        const uint32_t ab = nb__bits(*avg_g), asm_ = mask_of(zero & subnormal_bits(ab));
        float ga = nb__from_bits(ab & ~asm_) * alpha;
        float ag1 = fmaf(one_alpha, g, ga);
        if (dormant_path)
            ag1 = pick(asm_, subnormal_decay(ab, alpha, nb__bits(one_alpha * g)), ag1);
        *avg_g = ag1;
        const uint32_t a1m = mask_of(dormant_path & subnormal_bits(nb__bits(ag1)));
        float an = nb__from_bits(nb__bits(ag1) & ~a1m);
        float diff = fmaf(-an, an, sq1); /* addcmul(.., value=-1) */
        if (dormant_path) diff = pick(a1m, sq1 != 0.0f ? sq1 : -0.0f, diff);
        avg = dormant_path ? sqrt_nosub(diff) : sqrtf(diff);
    } else {
        avg = dormant_path ? sqrt_nosub(sq1) : sqrtf(sq1);
    }
    avg = avg + k->eps;
    if (momentum) {
        float q = g / avg;
        const uint32_t bb = nb__bits(*buf);
        const uint32_t bm = mask_of(zero & (q == 0.0f) & subnormal_bits(bb));
        float b = nb__from_bits(bb & ~bm) * k->mu;
        float b1 = b + q;
        if (dormant_path) b1 = pick(bm, subnormal_decay(bb, k->mu, nb__bits(q)), b1);
        *buf = b1;
        /* where p cannot move, a zero takes the subnormal b1's place: p + lr·0 is p */
        const uint32_t pm = bm & mask_of(fabsf(p0) >= DORMANT_MIN_PARAM);
        *p = fmaf(k->neg_lr, nb__from_bits(nb__bits(b1) & ~pm), p0);
    } else {
        float q = k->neg_lr * g;
        q = q / avg;
        *p = p0 + q;
    }
}

NB_INLINE void rmsprop_body(const rmsprop_k *k, bool centered, bool momentum, float *restrict p,
                            float *restrict sq, float *restrict buf, float *restrict avg_g,
                            const float *restrict grad, int64_t n)
{
    if (!k->dormant_ok) {
        for (int64_t i = 0; i < n; i++)
            rmsprop_elem(k, centered, momentum, false, p + i, sq + i, momentum ? buf + i : NULL,
                         centered ? avg_g + i : NULL, grad[i]);
        return;
    }
#define RMSPROP_ELEM(dormant_path, second_path)                                                    \
    rmsprop_elem(k, centered, momentum, dormant_path, p + i, sq + i, momentum ? buf + i : NULL,    \
                 centered ? avg_g + i : NULL, grad[i])
#define RMSPROP_MAYBE(i)                                                                           \
    (zero_over_subnormal(grad[i], sq[i]) |                                                         \
     (momentum ? zero_over_subnormal(grad[i], buf[i]) : 0u) |                                      \
     (centered ? zero_over_subnormal(grad[i], avg_g[i]) : 0u))
#define RMSPROP_DEEP(i) 0u
    DORMANT_LOOP(n, RMSPROP_ELEM, RMSPROP_MAYBE, RMSPROP_DEEP)
#undef RMSPROP_ELEM
#undef RMSPROP_MAYBE
#undef RMSPROP_DEEP
}

NB__CLONES static void rmsprop_range(const void *kv, float *p, const float *grad, float *state,
                                     int64_t n, int64_t lo, int64_t len)
{
    const rmsprop_k *k = kv;
    float *sq = state + lo, *next = state + n;
    float *buf = k->momentum ? next + lo : NULL;
    float *avg_g = k->centered ? (buf ? next + n : next) + lo : NULL;
    p += lo;
    grad += lo;
    if (k->centered && k->momentum)
        rmsprop_body(k, true, true, p, sq, buf, avg_g, grad, len);
    else if (k->centered)
        rmsprop_body(k, true, false, p, sq, NULL, avg_g, grad, len);
    else if (k->momentum)
        rmsprop_body(k, false, true, p, sq, buf, NULL, grad, len);
    else
        rmsprop_body(k, false, false, p, sq, NULL, NULL, grad, len);
}

typedef struct adagrad_k {
    const nb_optim_options *o;
    float neg_clr, eps, wd;
} adagrad_k;

NB__CLONES static void adagrad_range(const void *kv, float *p, const float *grad, float *state,
                                     int64_t n, int64_t lo, int64_t len)
{
    const adagrad_k *k = kv;
    (void)n;
    const float neg_clr = k->neg_clr, eps = k->eps, wd = k->wd;
    float *sum = state;
    for (int64_t i = lo; i < lo + len; i++) {
        float g = decayed(grad[i], p[i], k->o, wd);
        sum[i] = fmaf(g, g, sum[i]);
        float std = sqrtf(sum[i]) + eps;
        float q = neg_clr * g;
        q = q / std;
        p[i] = p[i] + q;
    }
}

typedef struct update_job {
    range_fn fn;
    const void *k;
    float *p, *state;
    const float *grad;
    int64_t n;
} update_job;

static void update_range(void *ctx, int64_t lo, int64_t hi)
{
    const update_job *j = ctx;
    j->fn(j->k, j->p, j->grad, j->state, j->n, lo, hi - lo);
}

void nb__optim_update(nb_optim_kind kind, const nb_optim_options *o, nb__optim_slot *s,
                      const float *grad)
{
    float *p = nb_tensor_data(s->param);
    int64_t n = nb_tensor_numel(s->param);
    union {
        sgd_k sgd;
        adam_k adam;
        rmsprop_k rmsprop;
        adagrad_k adagrad;
    } k;
    range_fn fn = NULL;
    switch (kind) {
    case NB_OPTIM_SGD:
        k.sgd = (sgd_k){(float)o->weight_decay,
                        (float)o->momentum,
                        (float)(1.0 - o->dampening),
                        (float)-o->lr,
                        o->maximize,
                        o->weight_decay != 0.0,
                        s->state != NULL,
                        s->fresh,
                        o->nesterov,
                        false};
        k.sgd.dormant_ok = in_unit(k.sgd.mu) && fabsf(k.sgd.neg_lr) <= DORMANT_MAX_LR;
        fn = sgd_range;
        break;
    case NB_OPTIM_ADAM:
    case NB_OPTIM_ADAMW: { /* AdamW decays the parameter instead of the gradient */
        s->step = (double)((float)s->step + 1.0f); /* state['step'] is a float32 tensor */
        const double beta1 = o->betas[0], beta2 = o->betas[1];
        const double bias_correction1 = 1.0 - pow(beta1, s->step);
        const double bias_correction2 = 1.0 - pow(beta2, s->step);
        k.adam = (adam_k){(float)beta1,
                          (float)beta2,
                          (float)(1.0 - beta1),
                          (float)(1.0 - beta2),
                          (float)o->eps,
                          (float)o->weight_decay,
                          (float)(1.0 - o->lr * o->weight_decay),
                          (float)-(o->lr / bias_correction1),
                          1.0 / (double)(float)sqrt(bias_correction2),
                          0.0f,
                          o->amsgrad,
                          in_unit((float)beta1) && in_unit((float)beta2),
                          mask_of(kind == NB_OPTIM_ADAMW),
                          o->maximize ? SIGN_BIT : 0u,
                          mask_of(kind != NB_OPTIM_ADAMW && o->weight_decay != 0.0)};
        k.adam.denom_min = dormant_min(k.adam.neg_step_size);
        fn = adam_range;
        break;
    }
    case NB_OPTIM_RMSPROP:
        s->step += 1.0; /* a Python int in PyTorch; not used by the update */
        k.rmsprop = (rmsprop_k){(float)o->alpha,
                                (float)(1.0 - o->alpha),
                                (float)o->eps,
                                (float)o->weight_decay,
                                (float)o->momentum,
                                (float)-o->lr,
                                o->centered,
                                o->momentum > 0.0,
                                false,
                                o->maximize ? SIGN_BIT : 0u,
                                mask_of(o->weight_decay != 0.0)};
        k.rmsprop.dormant_ok = in_unit(k.rmsprop.alpha) && in_unit(k.rmsprop.mu) &&
                               fabsf(k.rmsprop.neg_lr) <= DORMANT_MAX_LR;
        fn = rmsprop_range;
        break;
    case NB_OPTIM_ADAGRAD: {
        s->step = (double)((float)s->step + 1.0f); /* a float32 tensor */
        const double clr = o->lr / (1.0 + (s->step - 1.0) * o->lr_decay);
        k.adagrad = (adagrad_k){o, (float)-clr, (float)o->eps, (float)o->weight_decay};
        fn = adagrad_range;
        break;
    }
    }
    if (!fn) return;
    update_job j = {fn, &k, p, s->state, grad, n};
    nb__parallel_ranges(n, CHUNK, update_range, &j);
}
