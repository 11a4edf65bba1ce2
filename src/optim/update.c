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
 */
#include <math.h>

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
 * The loops below are written once as an always-inlined body whose flags are parameters;
 * each kernel calls it twice, with the flags of the plain case as constants (a loop the
 * compiler vectorises: no branch left inside) and with the options as they are.
 */
#define NB_INLINE static inline __attribute__((always_inline))

typedef struct sgd_k {
    float wd, mu, keep, neg_lr;
    bool maximize, has_wd, fresh, nesterov;
} sgd_k;

NB_INLINE void sgd_body(const sgd_k *k, bool maximize, bool has_wd, bool momentum,
                        float *restrict p, float *restrict buf, const float *restrict grad,
                        int64_t n)
{
    const float wd = k->wd, mu = k->mu, keep = k->keep, neg_lr = k->neg_lr;
    const bool fresh = k->fresh, nesterov = k->nesterov;
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

NB__CLONES static void sgd_loop(const sgd_k *k, float *restrict p, float *restrict buf,
                                const float *restrict grad, int64_t n)
{
    if (!k->maximize && !k->has_wd && !buf)
        sgd_body(k, false, false, false, p, NULL, grad, n);
    else
        sgd_body(k, k->maximize, k->has_wd, buf != NULL, p, buf, grad, n);
}

static void sgd(const nb_optim_options *o, nb__optim_slot *s, float *p, const float *grad,
                int64_t n)
{
    sgd_k k = {(float)o->weight_decay,
               (float)o->momentum,
               (float)(1.0 - o->dampening),
               (float)-o->lr,
               o->maximize,
               o->weight_decay != 0.0,
               s->fresh,
               o->nesterov};
    sgd_loop(&k, p, s->state, grad, n);
}

typedef struct adam_k {
    float b1, b2, one_b1, one_b2, eps, wd, decay, neg_step_size, bc2_sqrt;
    bool decoupled, maximize, has_wd;
} adam_k;

NB_INLINE void adam_body(const adam_k *k, bool decoupled, bool maximize, bool has_wd,
                         float *restrict p, float *restrict m, float *restrict v,
                         float *restrict vmax, const float *restrict grad, int64_t n)
{
    const float b1 = k->b1, b2 = k->b2, one_b1 = k->one_b1, one_b2 = k->one_b2, eps = k->eps;
    const float wd = k->wd, decay = k->decay, neg_step_size = k->neg_step_size;
    const float bc2_sqrt = k->bc2_sqrt;
    for (int64_t i = 0; i < n; i++) {
        if (decoupled) p[i] = p[i] * decay; /* AdamW: param.mul_(1 - lr * weight_decay) */
        float g = maximize ? -grad[i] : grad[i];
        if (has_wd && !decoupled) g = fmaf(wd, p[i], g);
        float mb = m[i] * b1;
        m[i] = fmaf(one_b1, g, mb);
        float vb = v[i] * b2, g2 = one_b2 * g;
        v[i] = fmaf(g2, g, vb);
        float second = v[i];
        if (vmax) second = vmax[i] = maximum(vmax[i], v[i]);
        float denom = sqrtf(second) / bc2_sqrt;
        denom = denom + eps;
        float step = neg_step_size * m[i];
        step = step / denom;
        p[i] = p[i] + step;
    }
}

NB__CLONES static void adam_loop(const adam_k *k, float *restrict p, float *restrict m,
                                 float *restrict v, float *restrict vmax,
                                 const float *restrict grad, int64_t n)
{
    if (!k->decoupled && !k->maximize && !k->has_wd && !vmax)
        adam_body(k, false, false, false, p, m, v, NULL, grad, n);
    else
        adam_body(k, k->decoupled, k->maximize, k->has_wd, p, m, v, vmax, grad, n);
}

/* Adam and AdamW: AdamW decays the parameter instead of the gradient. */
static void adam(const nb_optim_options *o, bool decoupled, nb__optim_slot *s, float *p,
                 const float *grad, int64_t n)
{
    s->step = (double)((float)s->step + 1.0f); /* state['step'] is a float32 tensor */
    const double beta1 = o->betas[0], beta2 = o->betas[1];
    const double bias_correction1 = 1.0 - pow(beta1, s->step);
    const double bias_correction2 = 1.0 - pow(beta2, s->step);
    adam_k k = {(float)beta1,
                (float)beta2,
                (float)(1.0 - beta1),
                (float)(1.0 - beta2),
                (float)o->eps,
                (float)o->weight_decay,
                (float)(1.0 - o->lr * o->weight_decay),
                (float)-(o->lr / bias_correction1),
                (float)sqrt(bias_correction2),
                decoupled,
                o->maximize,
                o->weight_decay != 0.0};
    float *m = s->state, *v = m + n, *vmax = o->amsgrad ? v + n : NULL;
    adam_loop(&k, p, m, v, vmax, grad, n);
}

NB__CLONES static void rmsprop(const nb_optim_options *o, nb__optim_slot *s, float *p,
                               const float *grad, int64_t n)
{
    s->step += 1.0; /* a Python int in PyTorch; not used by the update */
    const float alpha = (float)o->alpha, one_alpha = (float)(1.0 - o->alpha);
    const float eps = (float)o->eps, wd = (float)o->weight_decay;
    const float mu = (float)o->momentum, neg_lr = (float)-o->lr;
    float *sq = s->state, *next = sq + n;
    float *buf = o->momentum > 0.0 ? next : NULL;
    float *avg_g = o->centered ? (buf ? next + n : next) : NULL;
    for (int64_t i = 0; i < n; i++) {
        float g = decayed(grad[i], p[i], o, wd);
        float sa = sq[i] * alpha, g2 = one_alpha * g;
        sq[i] = fmaf(g2, g, sa);
        float avg;
        if (avg_g) {
            float ga = avg_g[i] * alpha;
            avg_g[i] = fmaf(one_alpha, g, ga);
            avg = sqrtf(fmaf(-avg_g[i], avg_g[i], sq[i])); /* addcmul(.., value=-1) */
        } else {
            avg = sqrtf(sq[i]);
        }
        avg = avg + eps;
        if (buf) {
            float b = buf[i] * mu, q = g / avg;
            buf[i] = b + q;
            p[i] = fmaf(neg_lr, buf[i], p[i]);
        } else {
            float q = neg_lr * g;
            q = q / avg;
            p[i] = p[i] + q;
        }
    }
}

NB__CLONES static void adagrad(const nb_optim_options *o, nb__optim_slot *s, float *p,
                               const float *grad, int64_t n)
{
    s->step = (double)((float)s->step + 1.0f); /* a float32 tensor */
    const double clr = o->lr / (1.0 + (s->step - 1.0) * o->lr_decay);
    const float neg_clr = (float)-clr, eps = (float)o->eps, wd = (float)o->weight_decay;
    float *sum = s->state;
    for (int64_t i = 0; i < n; i++) {
        float g = decayed(grad[i], p[i], o, wd);
        sum[i] = fmaf(g, g, sum[i]);
        float std = sqrtf(sum[i]) + eps;
        float q = neg_clr * g;
        q = q / std;
        p[i] = p[i] + q;
    }
}

void nb__optim_update(nb_optim_kind kind, const nb_optim_options *o, nb__optim_slot *s,
                      const float *grad)
{
    float *p = nb_tensor_data(s->param);
    int64_t n = nb_tensor_numel(s->param);
    switch (kind) {
    case NB_OPTIM_SGD:
        sgd(o, s, p, grad, n);
        break;
    case NB_OPTIM_ADAM:
    case NB_OPTIM_ADAMW:
        adam(o, kind == NB_OPTIM_ADAMW, s, p, grad, n);
        break;
    case NB_OPTIM_RMSPROP:
        rmsprop(o, s, p, grad, n);
        break;
    case NB_OPTIM_ADAGRAD:
        adagrad(o, s, p, grad, n);
        break;
    }
}
