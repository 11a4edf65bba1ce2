/*
 * Learning-rate schedulers as torch.optim.lr_scheduler 1.13: each step computes the new lr of
 * every group from its current lr with the recursive ("chainable") formulas of get_lr(), in
 * double, in Python's order of evaluation, so the sequences are PyTorch's bit for bit.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/internal.h"

#define PI 3.141592653589793 /* math.pi */

typedef enum sched_kind { STEP_LR, MULTISTEP_LR, EXPONENTIAL_LR, COSINE_LR, LINEAR_LR } sched_kind;

static const char *const sched_names[] = {"StepLR", "MultiStepLR", "ExponentialLR",
                                          "CosineAnnealingLR", "LinearLR"};

struct nb_lr_scheduler {
    sched_kind kind;
    nb_optim *opt; /* borrowed */
    int64_t last_epoch;
    size_t ngroups;
    double *base_lrs, *last_lr; /* ngroups each, in the same block as the scheduler */
    double gamma;               /* StepLR, MultiStepLR, ExponentialLR */
    int64_t period; /* StepLR's step_size, CosineAnnealingLR's T_max, LinearLR's total_iters */
    double eta_min;
    double start_factor, end_factor;
    int64_t *milestones;
    int nmilestones;
};

static bool is_milestone(const nb_lr_scheduler *s, int64_t e)
{
    for (int i = 0; i < s->nmilestones; i++)
        if (s->milestones[i] == e) return true;
    return false;
}

/* get_lr() for group g at epoch e = last_epoch, from its current lr */
static double next_lr(const nb_lr_scheduler *s, size_t g, double lr)
{
    const int64_t e = s->last_epoch;
    switch (s->kind) {
    case STEP_LR:
        return e == 0 || e % s->period != 0 ? lr : lr * s->gamma;
    case MULTISTEP_LR:
        return is_milestone(s, e) ? lr * s->gamma : lr;
    case EXPONENTIAL_LR:
        return e == 0 ? lr : lr * s->gamma;
    case COSINE_LR: {
        const double t = (double)s->period, base = s->base_lrs[g];
        if (e == 0) return lr;
        /* below 2·t_max in magnitude, a multiple of it is 0: 2·t_max may not fit int64 */
        const int64_t d = e - 1 - s->period;
        if (s->period > INT64_MAX / 2 ? d == 0 : d % (2 * s->period) == 0)
            return lr + (base - s->eta_min) * (1.0 - cos(PI / t)) / 2.0;
        return (1.0 + cos(PI * (double)e / t)) / (1.0 + cos(PI * (double)(e - 1) / t)) *
                   (lr - s->eta_min) +
               s->eta_min;
    }
    case LINEAR_LR: {
        const double sf = s->start_factor, ef = s->end_factor;
        if (e == 0) return lr * sf;
        if (e > s->period) return lr;
        return lr * (1.0 + (ef - sf) / ((double)s->period * sf + (double)(e - 1) * (ef - sf)));
    }
    }
    return lr;
}

nb_status nb_lr_scheduler_step(nb_lr_scheduler *s)
{
    static const char fn[] = "nb_lr_scheduler_step";
    if (!s) return nb__error(NB_EINVAL, fn, "argument 's' is NULL");
    if (s->opt->ngroups != s->ngroups)
        return nb__error(NB_ESTATE, fn,
                         "the optimizer has %zu parameter groups; the scheduler was made for %zu",
                         s->opt->ngroups, s->ngroups);
    s->last_epoch++;
    for (size_t g = 0; g < s->ngroups; g++) {
        double *lr = &s->opt->groups[g].o.lr;
        *lr = next_lr(s, g, *lr);
        s->last_lr[g] = *lr;
    }
    return NB_OK;
}

/* Allocate a scheduler for opt (arguments checked), record the groups' initial_lr as base
 * lrs, and make PyTorch's initial step (to epoch 0). */
static nb_lr_scheduler *make(const char *fn, nb_optim *opt, sched_kind kind, int nmilestones)
{
    size_t n = opt->ngroups;
    size_t size =
        sizeof(nb_lr_scheduler) + 2 * n * sizeof(double) + (size_t)nmilestones * sizeof(int64_t);
    nb_lr_scheduler *s = nb__calloc(size);
    if (!s) {
        nb__oom(fn);
        return NULL;
    }
    s->kind = kind;
    s->opt = opt;
    s->ngroups = n;
    s->base_lrs = (double *)(void *)(s + 1);
    s->last_lr = s->base_lrs + n;
    s->milestones = (int64_t *)(void *)(s->last_lr + n);
    s->nmilestones = nmilestones;
    s->last_epoch = -1;
    for (size_t g = 0; g < n; g++) {
        nb__optim_group *grp = &opt->groups[g];
        if (!grp->has_initial_lr) { /* group.setdefault('initial_lr', group['lr']) */
            grp->has_initial_lr = true;
            grp->initial_lr = grp->o.lr;
        }
        s->base_lrs[g] = grp->initial_lr;
    }
    return s;
}

static nb_lr_scheduler *start(nb_lr_scheduler *s)
{
    if (s) nb_lr_scheduler_step(s);
    return s;
}

static nb_status check_gamma(const char *fn, double gamma)
{
    if (!(gamma > 0.0) || isinf(gamma))
        return nb__error(NB_EINVAL, fn, "gamma must be finite and > 0, got %g", gamma);
    return NB_OK;
}

static nb_status check_positive(const char *fn, const char *name, int64_t v)
{
    if (v <= 0) return nb__error(NB_EINVAL, fn, "%s must be positive, got %" PRId64, name, v);
    return NB_OK;
}

static nb_status check_opt(const char *fn, const nb_optim *opt)
{
    return opt ? NB_OK : nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
}

nb_lr_scheduler *nb_step_lr_new(nb_optim *opt, int64_t step_size, double gamma)
{
    static const char fn[] = "nb_step_lr_new";
    if (check_opt(fn, opt) || check_positive(fn, "step_size", step_size) || check_gamma(fn, gamma))
        return NULL;
    nb_lr_scheduler *s = make(fn, opt, STEP_LR, 0);
    if (s) {
        s->period = step_size;
        s->gamma = gamma;
    }
    return start(s);
}

nb_lr_scheduler *nb_multistep_lr_new(nb_optim *opt, const int64_t *milestones, int n, double gamma)
{
    static const char fn[] = "nb_multistep_lr_new";
    if (check_opt(fn, opt)) return NULL;
    if (n < 0) {
        nb__error(NB_EINVAL, fn, "n must be >= 0, got %d", n);
        return NULL;
    }
    if (n > 0 && !milestones) {
        nb__error(NB_EINVAL, fn, "argument 'milestones' is NULL");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (milestones[i] < 0 || (i > 0 && milestones[i] <= milestones[i - 1])) {
            nb__error(NB_EINVAL, fn,
                      "milestones must be >= 0 and strictly increasing, got milestones[%d] = "
                      "%" PRId64 "%s",
                      i, milestones[i], i > 0 ? " after a larger or equal one" : "");
            return NULL;
        }
    }
    if (check_gamma(fn, gamma)) return NULL;
    nb_lr_scheduler *s = make(fn, opt, MULTISTEP_LR, n);
    if (s) {
        if (n) memcpy(s->milestones, milestones, (size_t)n * sizeof *milestones);
        s->gamma = gamma;
    }
    return start(s);
}

nb_lr_scheduler *nb_exponential_lr_new(nb_optim *opt, double gamma)
{
    static const char fn[] = "nb_exponential_lr_new";
    if (check_opt(fn, opt) || check_gamma(fn, gamma)) return NULL;
    nb_lr_scheduler *s = make(fn, opt, EXPONENTIAL_LR, 0);
    if (s) s->gamma = gamma;
    return start(s);
}

nb_lr_scheduler *nb_cosine_annealing_lr_new(nb_optim *opt, int64_t t_max, double eta_min)
{
    static const char fn[] = "nb_cosine_annealing_lr_new";
    if (check_opt(fn, opt) || check_positive(fn, "T_max", t_max)) return NULL;
    if (!(eta_min >= 0.0) || isinf(eta_min)) {
        nb__error(NB_EINVAL, fn, "eta_min must be finite and >= 0, got %g", eta_min);
        return NULL;
    }
    nb_lr_scheduler *s = make(fn, opt, COSINE_LR, 0);
    if (s) {
        s->period = t_max;
        s->eta_min = eta_min;
    }
    return start(s);
}

nb_lr_scheduler *nb_linear_lr_new(nb_optim *opt, double start_factor, double end_factor,
                                  int64_t total_iters)
{
    static const char fn[] = "nb_linear_lr_new";
    if (check_opt(fn, opt)) return NULL;
    if (!(start_factor > 0.0 && start_factor <= 1.0)) {
        nb__error(NB_EINVAL, fn, "start_factor must be in (0, 1], got %g", start_factor);
        return NULL;
    }
    if (!(end_factor >= 0.0 && end_factor <= 1.0)) {
        nb__error(NB_EINVAL, fn, "end_factor must be in [0, 1], got %g", end_factor);
        return NULL;
    }
    if (check_positive(fn, "total_iters", total_iters)) return NULL;
    nb_lr_scheduler *s = make(fn, opt, LINEAR_LR, 0);
    if (s) {
        s->start_factor = start_factor;
        s->end_factor = end_factor;
        s->period = total_iters;
    }
    return start(s);
}

void nb_lr_scheduler_free(nb_lr_scheduler *s)
{
    nb__free(s);
}

int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s)
{
    if (!s) {
        nb__error(NB_EINVAL, "nb_lr_scheduler_last_epoch", "argument 's' is NULL");
        return -1;
    }
    return s->last_epoch;
}

double nb_lr_scheduler_last_lr(const nb_lr_scheduler *s, int group)
{
    static const char fn[] = "nb_lr_scheduler_last_lr";
    if (!s) {
        nb__error(NB_EINVAL, fn, "argument 's' is NULL");
        return (double)NAN;
    }
    if (group < 0 || (size_t)group >= s->ngroups) {
        nb__error(NB_EINVAL, fn, "group %d out of range (the scheduler has %zu)", group,
                  s->ngroups);
        return (double)NAN;
    }
    return s->last_lr[group];
}

/* ---- state ----------------------------------------------------------------------------- */

static nb_status set_meta(const char *fn, nb_state_dict *out, const char *key, double v)
{
    char value[32];
    nb__optim_format_double(value, sizeof value, v);
    return nb_state_dict_set_metadata(out, key, value) == NB_OK ? NB_OK : nb__oom(fn);
}

nb_status nb_lr_scheduler_state_dict(const nb_lr_scheduler *s, nb_state_dict *out)
{
    static const char fn[] = "nb_lr_scheduler_state_dict";
    if (!s) return nb__error(NB_EINVAL, fn, "argument 's' is NULL");
    if (!out) return nb__error(NB_EINVAL, fn, "argument 'out' is NULL");
    char key[48], epoch[24];
    snprintf(epoch, sizeof epoch, "%" PRId64, s->last_epoch);
    if (nb_state_dict_set_metadata(out, "scheduler", sched_names[s->kind]) != NB_OK ||
        nb_state_dict_set_metadata(out, "last_epoch", epoch) != NB_OK)
        return nb__oom(fn);
    nb_status rc = NB_OK;
    for (size_t g = 0; g < s->ngroups && rc == NB_OK; g++) {
        snprintf(key, sizeof key, "base_lrs.%zu", g);
        rc = set_meta(fn, out, key, s->base_lrs[g]);
        snprintf(key, sizeof key, "last_lr.%zu", g);
        if (rc == NB_OK) rc = set_meta(fn, out, key, s->last_lr[g]);
    }
    return rc;
}

/*
 * An entry of the state dict: a number, and for last_epoch a finite one >= 0. A learning
 * rate may be any number but NaN, as a schedule can reach any (LinearLR's products round to
 * tiny negative values, a large gamma overflows to inf) and its state dict must load back.
 */
static nb_status read_double(const char *fn, const nb_state_dict *in, const char *key, double *v,
                             bool lr)
{
    const char *text = nb_state_dict_metadata(in, key);
    if (!text) return nb__error(NB_EINVAL, fn, "missing entry '%s'", key);
    if (!nb__optim_parse_double(text, v) || isnan(*v) || (!lr && (*v < 0.0 || isinf(*v))))
        return nb__error(NB_EINVAL, fn, "invalid value \"%s\" for '%s'", text, key);
    return NB_OK;
}

nb_status nb_lr_scheduler_load_state_dict(nb_lr_scheduler *s, const nb_state_dict *in)
{
    static const char fn[] = "nb_lr_scheduler_load_state_dict";
    if (!s) return nb__error(NB_EINVAL, fn, "argument 's' is NULL");
    if (!in) return nb__error(NB_EINVAL, fn, "argument 'in' is NULL");
    const char *kind = nb_state_dict_metadata(in, "scheduler");
    if (!kind) return nb__error(NB_EINVAL, fn, "missing entry 'scheduler'");
    if (strcmp(kind, sched_names[s->kind]))
        return nb__error(NB_EINVAL, fn, "the state dict is of a %s, this scheduler is a %s", kind,
                         sched_names[s->kind]);
    char key[48];
    snprintf(key, sizeof key, "base_lrs.%zu", s->ngroups);
    if (nb_state_dict_metadata(in, key))
        return nb__error(NB_EINVAL, fn, "the state dict has more than %zu groups", s->ngroups);
    double epoch, v;
    nb_status rc = read_double(fn, in, "last_epoch", &epoch, false);
    if (rc == NB_OK && (epoch != floor(epoch) || epoch > (double)INT32_MAX))
        rc = nb__error(NB_EINVAL, fn, "invalid value \"%s\" for 'last_epoch'",
                       nb_state_dict_metadata(in, "last_epoch"));
    /* check every entry, then read them again to commit: s is unchanged on error */
    for (int pass = 0; pass < 2 && rc == NB_OK; pass++) {
        for (size_t g = 0; g < s->ngroups && rc == NB_OK; g++) {
            snprintf(key, sizeof key, "base_lrs.%zu", g);
            if ((rc = read_double(fn, in, key, &v, true)) == NB_OK && pass) s->base_lrs[g] = v;
            snprintf(key, sizeof key, "last_lr.%zu", g);
            if (rc == NB_OK && (rc = read_double(fn, in, key, &v, true)) == NB_OK && pass)
                s->last_lr[g] = v;
        }
    }
    if (rc == NB_OK) s->last_epoch = (int64_t)epoch;
    return rc;
}
