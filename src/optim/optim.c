/*
 * The optimizer object: options and their checks, parameter groups, the step's two phases
 * (allocate every missing state, then update), zero_grad and accessors. The update rules
 * themselves are in update.c.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/internal.h"
#include "nabla/autograd.h"

/* ---- options --------------------------------------------------------------------------- */

#define KIND(k) (1u << (unsigned)(k))
#define ALL_KINDS                                                                                  \
    (KIND(NB_OPTIM_SGD) | ADAM_KINDS | KIND(NB_OPTIM_RMSPROP) | KIND(NB_OPTIM_ADAGRAD))
#define ADAM_KINDS (KIND(NB_OPTIM_ADAM) | KIND(NB_OPTIM_ADAMW))
#define FIELD(f)   offsetof(nb_optim_options, f)

static const nb__optim_field fields[] = {
    {"lr", FIELD(lr), false, ALL_KINDS},
    {"momentum", FIELD(momentum), false, KIND(NB_OPTIM_SGD) | KIND(NB_OPTIM_RMSPROP)},
    {"dampening", FIELD(dampening), false, KIND(NB_OPTIM_SGD)},
    {"nesterov", FIELD(nesterov), true, KIND(NB_OPTIM_SGD)},
    {"betas.0", FIELD(betas[0]), false, ADAM_KINDS},
    {"betas.1", FIELD(betas[1]), false, ADAM_KINDS},
    {"alpha", FIELD(alpha), false, KIND(NB_OPTIM_RMSPROP)},
    {"eps", FIELD(eps), false, ALL_KINDS & ~KIND(NB_OPTIM_SGD)},
    {"weight_decay", FIELD(weight_decay), false, ALL_KINDS},
    {"amsgrad", FIELD(amsgrad), true, ADAM_KINDS},
    {"centered", FIELD(centered), true, KIND(NB_OPTIM_RMSPROP)},
    {"lr_decay", FIELD(lr_decay), false, KIND(NB_OPTIM_ADAGRAD)},
    {"initial_accumulator_value", FIELD(initial_accumulator_value), false, KIND(NB_OPTIM_ADAGRAD)},
    {"maximize", FIELD(maximize), true, ALL_KINDS},
};

const nb__optim_field *nb__optim_fields(size_t *n)
{
    *n = sizeof fields / sizeof fields[0];
    return fields;
}

static bool known_kind(nb_optim_kind kind)
{
    return kind >= NB_OPTIM_SGD && kind <= NB_OPTIM_ADAGRAD;
}

const char *nb_optim_kind_name(nb_optim_kind kind)
{
    switch (kind) {
    case NB_OPTIM_SGD:
        return "SGD";
    case NB_OPTIM_ADAM:
        return "Adam";
    case NB_OPTIM_ADAMW:
        return "AdamW";
    case NB_OPTIM_RMSPROP:
        return "RMSprop";
    case NB_OPTIM_ADAGRAD:
        return "Adagrad";
    }
    return "?";
}

nb_optim_options nb_optim_defaults(nb_optim_kind kind)
{
    nb_optim_options o = {0};
    o.kind = kind;
    switch (kind) {
    case NB_OPTIM_SGD:
        o.lr = (double)NAN; /* torch.optim.SGD's lr is `required` */
        break;
    case NB_OPTIM_ADAM:
    case NB_OPTIM_ADAMW:
        o.lr = 1e-3;
        o.betas[0] = 0.9;
        o.betas[1] = 0.999;
        o.eps = 1e-8;
        o.weight_decay = kind == NB_OPTIM_ADAMW ? 1e-2 : 0.0;
        break;
    case NB_OPTIM_RMSPROP:
        o.lr = 1e-2;
        o.alpha = 0.99;
        o.eps = 1e-8;
        break;
    case NB_OPTIM_ADAGRAD:
        o.lr = 1e-2;
        o.eps = 1e-10;
        break;
    }
    return o;
}

static double field_double(const nb_optim_options *o, const nb__optim_field *f)
{
    const char *base = (const char *)o + f->offset;
    if (f->is_bool) return *(const bool *)(const void *)base ? 1.0 : 0.0;
    return *(const double *)(const void *)base;
}

/* What each non-negative option is called in PyTorch's "Invalid ... value" messages. */
static const char *what_of(const char *name)
{
    if (!strcmp(name, "lr")) return "learning rate";
    if (!strcmp(name, "eps")) return "epsilon value";
    return NULL;
}

nb_status nb__optim_check_options(const char *fn, const nb_optim_options *o, bool any_lr)
{
    if (!known_kind(o->kind)) return nb__error(NB_EINVAL, fn, "unknown optimizer kind %d", o->kind);
    const char *kind = nb_optim_kind_name(o->kind);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const nb__optim_field *f = &fields[i];
        double v = field_double(o, f);
        if (!nb__optim_uses(f, o->kind)) {
            if (v != 0.0)
                return nb__error(NB_EINVAL, fn, "option '%s' does not apply to %s (it must be 0)",
                                 f->name, kind);
            continue;
        }
        if (f->is_bool || (any_lr && f->offset == FIELD(lr))) continue;
        if (o->kind == NB_OPTIM_SGD && f->offset == FIELD(lr) && isnan(v))
            return nb__error(NB_EINVAL, fn, "SGD has no default learning rate: set lr");
        if (!isfinite(v)) return nb__error(NB_EINVAL, fn, "option '%s' is %g", f->name, v);
        /* the update's kernels take it as a float32 scalar, which PyTorch's step refuses to
         * overflow; lr_decay only enters a double, dampening only with momentum */
        if (f->offset != FIELD(lr_decay) && fabs(v) > (double)FLT_MAX &&
            (f->offset != FIELD(dampening) || o->momentum != 0.0))
            return nb__error(NB_EINVAL, fn,
                             "option '%s' is %g, beyond float32's range (PyTorch: value cannot be "
                             "converted to type float without overflow)",
                             f->name, v);
        if (f->offset == FIELD(betas[0]) || f->offset == FIELD(betas[1])) {
            if (!(v >= 0.0 && v < 1.0))
                return nb__error(NB_EINVAL, fn,
                                 "invalid beta parameter at index %d: %g (it must be in [0, 1))",
                                 f->offset == FIELD(betas[0]) ? 0 : 1, v);
        } else if (f->offset != FIELD(dampening) && v < 0.0) {
            const char *what = what_of(f->name);
            if (what) return nb__error(NB_EINVAL, fn, "invalid %s: %g (it must be >= 0)", what, v);
            return nb__error(NB_EINVAL, fn, "invalid %s value: %g (it must be >= 0)", f->name, v);
        }
    }
    if (o->nesterov && (o->momentum <= 0.0 || o->dampening != 0.0))
        return nb__error(NB_EINVAL, fn, "Nesterov momentum requires a momentum and zero dampening");
    return NB_OK;
}

/* ---- state layout ---------------------------------------------------------------------- */

int nb__optim_layout(const nb_optim_options *o, const char **names)
{
    int n = 0;
    switch (o->kind) {
    case NB_OPTIM_SGD:
        if (o->momentum != 0.0) names[n++] = "momentum_buffer";
        break;
    case NB_OPTIM_ADAM:
    case NB_OPTIM_ADAMW:
        names[n++] = "exp_avg";
        names[n++] = "exp_avg_sq";
        if (o->amsgrad) names[n++] = "max_exp_avg_sq";
        break;
    case NB_OPTIM_RMSPROP:
        names[n++] = "square_avg";
        if (o->momentum > 0.0) names[n++] = "momentum_buffer";
        if (o->centered) names[n++] = "grad_avg";
        break;
    case NB_OPTIM_ADAGRAD:
        names[n++] = "sum";
        break;
    }
    return n;
}

bool nb__optim_has_step(nb_optim_kind kind)
{
    return kind != NB_OPTIM_SGD;
}

float *nb__optim_alloc_state(const nb_tensor *param, int nbuf)
{
    size_t numel = (size_t)nb_tensor_numel(param);
    /* parameters exist, so numel * sizeof(float) fits; nbuf <= 3 times it may not */
    if (numel > SIZE_MAX / sizeof(float) / (size_t)nbuf) return NULL;
    return nb__alloc((numel ? numel : 1) * (size_t)nbuf * sizeof(float), NB__ALIGN);
}

/* Adagrad's state exists from the start: step 0, sum = initial_accumulator_value. */
static nb_status init_adagrad(const char *fn, nb__optim_slot *slots, int n,
                              const nb_optim_options *o)
{
    float init = (float)o->initial_accumulator_value;
    for (int i = 0; i < n; i++) {
        slots[i].state = nb__optim_alloc_state(slots[i].param, 1);
        if (!slots[i].state) {
            for (int j = 0; j < i; j++) {
                nb__free(slots[j].state);
                slots[j].state = NULL;
            }
            return nb__oom(fn);
        }
        slots[i].nbuf = 1;
        int64_t numel = nb_tensor_numel(slots[i].param);
        for (int64_t k = 0; k < numel; k++) slots[i].state[k] = init;
    }
    return NB_OK;
}

/* ---- creation and groups --------------------------------------------------------------- */

/* A parameter and where it is: its index in the new list, or -1 for one the optimizer has. */
typedef struct param_ref {
    const nb_tensor *t;
    int index;
} param_ref;

static int ref_cmp(const void *a, const void *b)
{
    const param_ref *x = a, *y = b;
    uintptr_t p = (uintptr_t)x->t, q = (uintptr_t)y->t;
    if (p != q) return p < q ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Up to this many parameters (held and new), the lists below live on the stack. */
#define ON_STACK 256

/*
 * For each new params[i], into first[i]: the index of its first occurrence in params (i when
 * none before it), or -1 when the optimizer already has it. Sorting makes this n log n.
 */
static nb_status find_repeats(const char *fn, const nb_optim *opt, nb_tensor *const *params, int n,
                              int *first)
{
    size_t held = opt ? opt->nslots : 0, total = held + (size_t)n;
    param_ref small[ON_STACK], *r = total <= ON_STACK ? small : nb__alloc(total * sizeof *r, 16);
    if (!r) return nb__oom(fn);
    for (size_t k = 0; k < held; k++) r[k] = (param_ref){opt->slots[k].param, -1};
    for (int i = 0; i < n; i++) r[held + (size_t)i] = (param_ref){params[i], i};
    qsort(r, total, sizeof *r, ref_cmp);
    for (size_t k = 0; k < total;) { /* a run of one tensor: held first, then in order */
        size_t end = k + 1;
        while (end < total && r[end].t == r[k].t) end++;
        for (size_t m = k; m < end; m++)
            if (r[m].index >= 0) first[r[m].index] = r[k].index;
        k = end;
    }
    if (r != small) nb__free(r);
    return NB_OK;
}

static nb_status check_params(const char *fn, const nb_optim *opt, nb_tensor *const *params, int n)
{
    if (!params) return nb__error(NB_EINVAL, fn, "argument 'params' is NULL");
    for (int i = 0; i < n; i++) {
        if (!params[i]) {
            char arg[32];
            snprintf(arg, sizeof arg, "params[%d]", i);
            return nb__null(fn, arg);
        }
    }
    if (n <= 0)
        return nb__error(NB_EINVAL, fn, "optimizer got an empty parameter list (n = %d)", n);
    int small[ON_STACK], *first = n <= ON_STACK ? small : nb__alloc((size_t)n * sizeof *first, 16);
    if (!first) return nb__oom(fn);
    nb_status rc = find_repeats(fn, opt, params, n, first);
    for (int i = 0; i < n && rc == NB_OK; i++) {
        if (!nb_tensor_is_leaf(params[i]) && !nb_tensor_retains_grad(params[i]))
            rc = nb__error(NB_EINVAL, fn, "params[%d]: can't optimize a non-leaf tensor", i);
        else if (first[i] >= 0 && first[i] < i)
            rc = nb__error(NB_EINVAL, fn,
                           "params[%d] and params[%d] are the same tensor: a parameter "
                           "may appear only once",
                           first[i], i);
        else if (first[i] < 0)
            rc = nb__error(NB_EINVAL, fn,
                           "some parameters appear in more than one parameter group "
                           "(params[%d])",
                           i);
    }
    if (first != small) nb__free(first);
    return rc;
}

static nb_status check_group(const char *fn, const nb_optim *opt, nb_tensor *const *params, int n,
                             const nb_optim_options *o)
{
    nb_status rc = check_params(fn, opt, params, n);
    if (rc != NB_OK) return rc;
    if (!o) return nb__error(NB_EINVAL, fn, "argument 'options' is NULL");
    if ((rc = nb__optim_check_options(fn, o, false)) != NB_OK) return rc;
    if (opt && o->kind != opt->kind)
        return nb__error(NB_EINVAL, fn, "options of kind %s for an optimizer of kind %s",
                         nb_optim_kind_name(o->kind), nb_optim_kind_name(opt->kind));
    return NB_OK;
}

/* After check_group: make room, then commit, so opt is unchanged unless all succeeds. */
static nb_status commit_group(const char *fn, nb_optim *opt, nb_tensor *const *params, int n,
                              const nb_optim_options *o)
{
    if (!nb__grow((void **)&opt->groups, sizeof *opt->groups, &opt->groups_cap, opt->ngroups + 1) ||
        !nb__grow((void **)&opt->slots, sizeof *opt->slots, &opt->slots_cap,
                  opt->nslots + (size_t)n))
        return nb__oom(fn);
    nb__optim_slot *slots = opt->slots + opt->nslots;
    for (int i = 0; i < n; i++) slots[i] = (nb__optim_slot){.param = params[i]};
    if (o->kind == NB_OPTIM_ADAGRAD) {
        nb_status rc = init_adagrad(fn, slots, n, o);
        if (rc != NB_OK) return rc;
    }
    for (int i = 0; i < n; i++) nb_retain(params[i]);
    opt->groups[opt->ngroups++] = (nb__optim_group){.o = *o, .first = (int)opt->nslots, .count = n};
    opt->nslots += (size_t)n;
    return NB_OK;
}

nb_optim *nb_optim_new(nb_tensor *const *params, int n, const nb_optim_options *options)
{
    static const char fn[] = "nb_optim_new";
    if (check_group(fn, NULL, params, n, options) != NB_OK) return NULL;
    nb_optim *opt = nb__calloc(sizeof *opt);
    if (!opt) {
        nb__oom(fn);
        return NULL;
    }
    opt->kind = options->kind;
    opt->defaults = *options;
    if (commit_group(fn, opt, params, n, options) != NB_OK) {
        nb_optim_free(opt);
        return NULL;
    }
    return opt;
}

nb_status nb_optim_add_param_group(nb_optim *opt, nb_tensor *const *params, int n,
                                   const nb_optim_options *options)
{
    static const char fn[] = "nb_optim_add_param_group";
    if (!opt) return nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
    if (!options) options = &opt->defaults;
    nb_status rc = check_group(fn, opt, params, n, options);
    return rc != NB_OK ? rc : commit_group(fn, opt, params, n, options);
}

void nb_optim_free(nb_optim *opt)
{
    if (!opt) return;
    for (size_t i = 0; i < opt->nslots; i++) {
        nb__free(opt->slots[i].state);
        nb_release(opt->slots[i].param);
    }
    nb__free(opt->slots);
    nb__free(opt->groups);
    nb__free(opt);
}

/* ---- accessors ------------------------------------------------------------------------- */

nb_status nb__optim_check_group(const char *fn, const nb_optim *opt, int group)
{
    if (!opt) return nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
    if (group < 0 || (size_t)group >= opt->ngroups)
        return nb__error(NB_EINVAL, fn, "group %d out of range (the optimizer has %zu)", group,
                         opt->ngroups);
    return NB_OK;
}

nb_optim_kind nb_optim_get_kind(const nb_optim *opt)
{
    return opt ? opt->kind : (nb_optim_kind)0;
}

int nb_optim_num_groups(const nb_optim *opt)
{
    return opt ? (int)opt->ngroups : 0;
}

int nb_optim_group_size(const nb_optim *opt, int group)
{
    if (nb__optim_check_group("nb_optim_group_size", opt, group) != NB_OK) return -1;
    return opt->groups[group].count;
}

nb_tensor *nb_optim_param(const nb_optim *opt, int group, int i)
{
    static const char fn[] = "nb_optim_param";
    if (nb__optim_check_group(fn, opt, group) != NB_OK) return NULL;
    const nb__optim_group *g = &opt->groups[group];
    if (i < 0 || i >= g->count) {
        nb__error(NB_EINVAL, fn, "index %d out of range (group %d has %d parameters)", i, group,
                  g->count);
        return NULL;
    }
    return opt->slots[g->first + i].param;
}

nb_status nb_optim_group_options(const nb_optim *opt, int group, nb_optim_options *out)
{
    static const char fn[] = "nb_optim_group_options";
    nb_status rc = nb__optim_check_group(fn, opt, group);
    if (rc != NB_OK) return rc;
    if (!out) return nb__error(NB_EINVAL, fn, "argument 'out' is NULL");
    *out = opt->groups[group].o;
    return NB_OK;
}

double nb_optim_get_lr(const nb_optim *opt, int group)
{
    if (nb__optim_check_group("nb_optim_get_lr", opt, group) != NB_OK) return (double)NAN;
    return opt->groups[group].o.lr;
}

nb_status nb_optim_set_lr(nb_optim *opt, int group, double lr)
{
    static const char fn[] = "nb_optim_set_lr";
    nb_status rc = nb__optim_check_group(fn, opt, group);
    if (rc != NB_OK) return rc;
    if (!(lr >= 0.0) || lr > (double)FLT_MAX)
        return nb__error(NB_EINVAL, fn,
                         "invalid learning rate: %g (it must be >= 0 and within float32's range)",
                         lr);
    opt->groups[group].o.lr = lr;
    return NB_OK;
}

/* ---- step and zero_grad ---------------------------------------------------------------- */

/*
 * Adam's and AdamW's step size lr / (1 - beta1^t), which PyTorch passes to a float32 kernel
 * and refuses when it is past float's range ("value cannot be converted to type float without
 * overflow"): before any change, for each parameter the step updates, at the t it will use.
 */
static nb_status check_step_sizes(const nb_optim *opt, const char *fn)
{
    if (opt->kind != NB_OPTIM_ADAM && opt->kind != NB_OPTIM_ADAMW) return NB_OK;
    for (size_t gi = 0; gi < opt->ngroups; gi++) {
        const nb__optim_group *g = &opt->groups[gi];
        /* 1 - beta1^t >= 1 - beta1 for every t: an lr within half that bound cannot overflow */
        if (g->o.lr <= 0.5 * (double)FLT_MAX * (1.0 - g->o.betas[0])) continue;
        for (int i = g->first; i < g->first + g->count; i++) {
            const nb__optim_slot *s = &opt->slots[i];
            if (!nb_tensor_grad(s->param)) continue;
            const double t = (double)((float)s->step + 1.0f); /* as the update counts it */
            const double size = g->o.lr / (1.0 - pow(g->o.betas[0], t));
            if (size > (double)FLT_MAX)
                return nb__error(NB_ERANGE, fn,
                                 "group %zu's step size lr / (1 - beta1^%.0f) = %g is past "
                                 "float's range",
                                 gi, t, size);
        }
    }
    return NB_OK;
}

nb_status nb_optim_step(nb_optim *opt)
{
    static const char fn[] = "nb_optim_step";
    if (!opt) return nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
    nb_status rc = check_step_sizes(opt, fn);
    if (rc != NB_OK) return rc;
    const char *names[NB__OPTIM_MAX_BUFS];
    /* Phase 1: every state this step needs, so that running out of memory changes nothing. */
    for (size_t gi = 0; gi < opt->ngroups; gi++) {
        const nb__optim_group *g = &opt->groups[gi];
        int nbuf = nb__optim_layout(&g->o, names);
        for (int i = g->first; nbuf && i < g->first + g->count; i++) {
            nb__optim_slot *s = &opt->slots[i];
            if (s->state || !nb_tensor_grad(s->param)) continue;
            s->state = nb__optim_alloc_state(s->param, nbuf);
            if (!s->state) goto oom;
            s->nbuf = nbuf;
            s->fresh = true;
            if (opt->kind != NB_OPTIM_SGD) /* zeros_like; SGD's buffer starts as a clone */
                memset(s->state, 0,
                       (size_t)nb_tensor_numel(s->param) * (size_t)nbuf * sizeof(float));
        }
    }
    /* Phase 2: the updates, which allocate nothing. */
    for (size_t gi = 0; gi < opt->ngroups; gi++) {
        const nb__optim_group *g = &opt->groups[gi];
        for (int i = g->first; i < g->first + g->count; i++) {
            nb__optim_slot *s = &opt->slots[i];
            const nb_tensor *grad = nb_tensor_grad(s->param);
            if (!grad) continue;
            nb__optim_update(opt->kind, &g->o, s, nb_tensor_data_const(grad));
            s->fresh = false;
            nb_tensor_bump_version(s->param);
        }
    }
    return NB_OK;
oom:
    for (size_t i = 0; i < opt->nslots; i++) {
        nb__optim_slot *s = &opt->slots[i];
        if (!s->fresh) continue;
        nb__free(s->state);
        s->state = NULL;
        s->nbuf = 0;
        s->fresh = false;
    }
    return nb__oom(fn);
}

nb_status nb_optim_zero_grad(nb_optim *opt, bool set_to_none)
{
    if (!opt) return nb__error(NB_EINVAL, "nb_optim_zero_grad", "argument 'opt' is NULL");
    for (size_t i = 0; i < opt->nslots; i++) nb_zero_grad(opt->slots[i].param, set_to_none);
    return NB_OK;
}
