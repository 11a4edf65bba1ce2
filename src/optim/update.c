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

#include "blas/blas.h"
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
 * The loops are written once as an always-inlined body whose flags are parameters; a kernel
 * calls it with the flags of the plain case as constants (a loop the compiler vectorises: no
 * branch left inside) and with the options as they are.
 */
#define NB_INLINE static inline __attribute__((always_inline))
#define CHUNK     16384

/* One parameter's update over elements [lo, lo + len): state holds nbuf arrays of n. */
typedef void (*range_fn)(const void *k, float *p, const float *grad, float *state, int64_t n,
                         int64_t lo, int64_t len);

typedef struct sgd_k {
    float wd, mu, keep, neg_lr;
    bool maximize, has_wd, momentum, fresh, nesterov;
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
    float b1, b2, one_b1, one_b2, eps, wd, decay, neg_step_size, bc2_sqrt;
    bool decoupled, maximize, has_wd, amsgrad;
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

NB__CLONES static void adam_range(const void *kv, float *p, const float *grad, float *state,
                                  int64_t n, int64_t lo, int64_t len)
{
    const adam_k *k = kv;
    float *m = state + lo, *v = state + n + lo, *vmax = k->amsgrad ? state + 2 * n + lo : NULL;
    if (!k->decoupled && !k->maximize && !k->has_wd && !vmax)
        adam_body(k, false, false, false, p + lo, m, v, NULL, grad + lo, len);
    else
        adam_body(k, k->decoupled, k->maximize, k->has_wd, p + lo, m, v, vmax, grad + lo, len);
}

typedef struct rmsprop_k {
    const nb_optim_options *o;
    float alpha, one_alpha, eps, wd, mu, neg_lr;
} rmsprop_k;

NB__CLONES static void rmsprop_range(const void *kv, float *p, const float *grad, float *state,
                                     int64_t n, int64_t lo, int64_t len)
{
    const rmsprop_k *k = kv;
    const nb_optim_options *o = k->o;
    const float alpha = k->alpha, one_alpha = k->one_alpha, eps = k->eps, wd = k->wd;
    const float mu = k->mu, neg_lr = k->neg_lr;
    float *sq = state, *next = sq + n;
    float *buf = o->momentum > 0.0 ? next : NULL;
    float *avg_g = o->centered ? (buf ? next + n : next) : NULL;
    for (int64_t i = lo; i < lo + len; i++) {
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

static void update_chunk(void *ctx, int64_t c)
{
    const update_job *j = ctx;
    int64_t lo = c * CHUNK, len = j->n - lo < CHUNK ? j->n - lo : CHUNK;
    j->fn(j->k, j->p, j->grad, j->state, j->n, lo, len);
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
        k.sgd = (sgd_k){(float)o->weight_decay, (float)o->momentum, (float)(1.0 - o->dampening),
                        (float)-o->lr,          o->maximize,        o->weight_decay != 0.0,
                        s->state != NULL,       s->fresh,           o->nesterov};
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
                          (float)sqrt(bias_correction2),
                          kind == NB_OPTIM_ADAMW,
                          o->maximize,
                          o->weight_decay != 0.0,
                          o->amsgrad};
        fn = adam_range;
        break;
    }
    case NB_OPTIM_RMSPROP:
        s->step += 1.0; /* a Python int in PyTorch; not used by the update */
        k.rmsprop = (rmsprop_k){o,
                                (float)o->alpha,
                                (float)(1.0 - o->alpha),
                                (float)o->eps,
                                (float)o->weight_decay,
                                (float)o->momentum,
                                (float)-o->lr};
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
    nb__parallel_for((n + CHUNK - 1) / CHUNK, update_chunk, &j);
}
