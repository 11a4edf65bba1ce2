/*
 * An optimizer's state in an nb_state_dict, flattened from PyTorch's optimizer.state_dict():
 * per-parameter tensors under "state.<i>.<buffer>" and group hyperparameters as metadata
 * under "param_groups.<g>.<option>", with doubles written so that they read back exactly.
 * Loading checks everything, allocates what it needs, and only then changes the optimizer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/internal.h"

#define KEY_MAX 96

void nb__optim_format_double(char *buf, size_t size, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

bool nb__optim_parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    /* ERANGE also comes with every subnormal, which reads back exactly: only overflow fails */
    return *s && !*end && (errno == 0 || (errno == ERANGE && !isinf(*v)));
}

static nb_status set_double(const char *fn, nb_state_dict *out, const char *key, double v)
{
    char value[32];
    nb__optim_format_double(value, sizeof value, v);
    if (nb_state_dict_set_metadata(out, key, value) != NB_OK) return nb__oom(fn);
    return NB_OK;
}

/* Adds t under name and drops the creation reference (t may be NULL: out of memory). */
static nb_status set_tensor(const char *fn, nb_state_dict *out, const char *name, nb_tensor *t)
{
    nb_status rc = t && nb_state_dict_set(out, name, t) == NB_OK ? NB_OK : nb__oom(fn);
    nb__drop(t);
    return rc;
}

/* "first,first+1,...": the group's parameter numbers, as PyTorch's 'params' list. */
static char *params_list(size_t first, int count)
{
    size_t cap = (size_t)count * 21 + 1, len = 0;
    char *s = nb__alloc(cap, 1);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < count; i++)
        len += (size_t)snprintf(s + len, cap - len, i ? ",%zu" : "%zu", first + (size_t)i);
    return s;
}

static nb_status save_group(const char *fn, const nb_optim *opt, size_t gi, nb_state_dict *out)
{
    const nb__optim_group *g = &opt->groups[gi];
    char key[KEY_MAX];
    size_t nf;
    const nb__optim_field *f = nb__optim_fields(&nf);
    nb_status rc = NB_OK;
    for (size_t i = 0; i < nf && rc == NB_OK; i++) {
        if (!nb__optim_uses(&f[i], opt->kind)) continue;
        snprintf(key, sizeof key, "param_groups.%zu.%s", gi, f[i].name);
        const char *base = (const char *)&g->o + f[i].offset;
        if (f[i].is_bool) {
            bool b = *(const bool *)(const void *)base;
            if (nb_state_dict_set_metadata(out, key, b ? "true" : "false") != NB_OK)
                rc = nb__oom(fn);
        } else {
            rc = set_double(fn, out, key, *(const double *)(const void *)base);
        }
    }
    if (rc == NB_OK && g->has_initial_lr) {
        snprintf(key, sizeof key, "param_groups.%zu.initial_lr", gi);
        rc = set_double(fn, out, key, g->initial_lr);
    }
    if (rc != NB_OK) return rc;
    char *list = params_list((size_t)g->first, g->count);
    snprintf(key, sizeof key, "param_groups.%zu.params", gi);
    if (!list || nb_state_dict_set_metadata(out, key, list) != NB_OK) rc = nb__oom(fn);
    nb__free(list);
    return rc;
}

static nb_status save_slot(const char *fn, const nb_optim *opt, size_t i, nb_state_dict *out)
{
    const nb__optim_slot *s = &opt->slots[i];
    char key[KEY_MAX];
    if (!s->state) return NB_OK;
    nb_status rc = NB_OK;
    if (nb__optim_has_step(opt->kind)) {
        snprintf(key, sizeof key, "state.%zu.step", i);
        rc = set_tensor(fn, out, key, nb_scalar((float)s->step));
    }
    const char *names[NB__OPTIM_MAX_BUFS];
    const nb__optim_group *g = opt->groups;
    while (!((size_t)g->first <= i && i < (size_t)(g->first + g->count))) g++;
    int nbuf = nb__optim_layout(&g->o, names);
    int64_t numel = nb_tensor_numel(s->param);
    for (int b = 0; b < nbuf && rc == NB_OK; b++) {
        snprintf(key, sizeof key, "state.%zu.%s", i, names[b]);
        nb_tensor *t = nb_from_data(s->state + b * numel, nb_tensor_size(s->param));
        rc = set_tensor(fn, out, key, t);
    }
    return rc;
}

nb_status nb_optim_state_dict(const nb_optim *opt, nb_state_dict *out)
{
    static const char fn[] = "nb_optim_state_dict";
    if (!opt) return nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
    if (!out) return nb__error(NB_EINVAL, fn, "argument 'out' is NULL");
    if (nb_state_dict_set_metadata(out, "optimizer", nb_optim_kind_name(opt->kind)) != NB_OK)
        return nb__oom(fn);
    nb_status rc = NB_OK;
    for (size_t g = 0; g < opt->ngroups && rc == NB_OK; g++) rc = save_group(fn, opt, g, out);
    for (size_t i = 0; i < opt->nslots && rc == NB_OK; i++) rc = save_slot(fn, opt, i, out);
    return rc;
}

/* ---- loading --------------------------------------------------------------------------- */

static nb_status missing(const char *fn, const char *key)
{
    return nb__error(NB_EINVAL, fn, "missing entry '%s'", key);
}

/* Read group gi's options (of opt's kind) from in into *o, and check them. */
static nb_status load_group(const char *fn, const nb_optim *opt, size_t gi, const nb_state_dict *in,
                            nb__optim_group *g)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "param_groups.%zu.params", gi);
    const char *list = nb_state_dict_metadata(in, key);
    int count = 0;
    for (const char *c = list; *c; c++) count += *c == ',';
    count += *list != '\0';
    if (count != g->count)
        return nb__error(NB_EINVAL, fn,
                         "loaded state dict contains a parameter group that doesn't match the "
                         "size of optimizer's group (group %zu: %d parameters, expected %d)",
                         gi, count, g->count);
    char *expect = params_list((size_t)g->first, g->count);
    if (!expect) return nb__oom(fn);
    bool same = !strcmp(expect, list);
    nb__free(expect);
    if (!same)
        return nb__error(NB_EINVAL, fn, "'%s' is \"%s\": parameters are numbered in order", key,
                         list);
    size_t nf;
    const nb__optim_field *f = nb__optim_fields(&nf);
    for (size_t i = 0; i < nf; i++) {
        if (!nb__optim_uses(&f[i], opt->kind)) continue;
        snprintf(key, sizeof key, "param_groups.%zu.%s", gi, f[i].name);
        const char *v = nb_state_dict_metadata(in, key);
        if (!v) return missing(fn, key);
        char *base = (char *)&g->o + f[i].offset;
        double d;
        if (f[i].is_bool && (!strcmp(v, "true") || !strcmp(v, "false"))) {
            *(bool *)(void *)base = v[0] == 't';
        } else if (!f[i].is_bool && nb__optim_parse_double(v, &d)) {
            *(double *)(void *)base = d;
        } else {
            return nb__error(NB_EINVAL, fn, "invalid value \"%s\" for '%s'", v, key);
        }
    }
    /*
     * lr (and initial_lr) may be any number but NaN: a scheduler can take it anywhere
     * (LinearLR's products round to tiny negative values, a large gamma overflows to inf),
     * and an optimizer's own state dict must load back, as in PyTorch. The other options are
     * checked as by nb_optim_new.
     */
    if (isnan(g->o.lr)) {
        snprintf(key, sizeof key, "param_groups.%zu.lr", gi);
        return nb__error(NB_EINVAL, fn, "invalid value \"%s\" for '%s'",
                         nb_state_dict_metadata(in, key), key);
    }
    nb_status rc = nb__optim_check_options(fn, &g->o, true);
    if (rc != NB_OK) return rc;
    snprintf(key, sizeof key, "param_groups.%zu.initial_lr", gi);
    const char *v = nb_state_dict_metadata(in, key);
    g->has_initial_lr = v != NULL;
    if (v && (!nb__optim_parse_double(v, &g->initial_lr) || isnan(g->initial_lr)))
        return nb__error(NB_EINVAL, fn, "invalid value \"%s\" for '%s'", v, key);
    return NB_OK;
}

static size_t group_of(const nb_optim *opt, size_t slot)
{
    size_t g = 0;
    while ((size_t)(opt->groups[g].first + opt->groups[g].count) <= slot) g++;
    return g;
}

/* Every entry under "state." must be one this optimizer, with the loaded options, uses. */
static nb_status check_state_names(const char *fn, const nb_optim *opt,
                                   const nb__optim_group *groups, const nb_state_dict *in)
{
    for (int64_t e = 0; e < nb_state_dict_size(in); e++) {
        const char *name = nb_state_dict_name(in, e);
        if (strncmp(name, "state.", 6)) continue;
        const char *c = name + 6;
        size_t i = 0;
        /* a number as written: digits, without a leading 0 ("state.00.x" is no slot's) */
        bool digits = *c >= '0' && *c <= '9' && !(c[0] == '0' && c[1] >= '0' && c[1] <= '9');
        for (; *c >= '0' && *c <= '9' && i <= opt->nslots; c++) i = i * 10 + (size_t)(*c - '0');
        if (!digits || *c != '.' || i >= opt->nslots)
            return nb__error(NB_EINVAL, fn,
                             "unexpected entry '%s' (the optimizer has %zu parameters)", name,
                             opt->nslots);
        c++;
        const char *names[NB__OPTIM_MAX_BUFS];
        int nbuf = nb__optim_layout(&groups[group_of(opt, i)].o, names);
        bool known = nb__optim_has_step(opt->kind) && !strcmp(c, "step");
        for (int b = 0; b < nbuf; b++) known = known || !strcmp(c, names[b]);
        if (!known)
            return nb__error(NB_EINVAL, fn,
                             "unexpected entry '%s' (%s with these options keeps "
                             "no such state)",
                             name, nb_optim_kind_name(opt->kind));
    }
    return NB_OK;
}

/* Whether slot i has state in, and if so that it is complete and shaped right. */
static nb_status check_slot(const char *fn, const nb_optim *opt, const nb__optim_group *groups,
                            size_t i, const nb_state_dict *in, bool *present)
{
    const char *names[NB__OPTIM_MAX_BUFS + 1];
    int n = nb__optim_layout(&groups[group_of(opt, i)].o, names);
    if (nb__optim_has_step(opt->kind)) names[n++] = "step";
    char key[KEY_MAX];
    *present = opt->kind == NB_OPTIM_ADAGRAD; /* its state always exists */
    for (int b = 0; b < n && !*present; b++) {
        snprintf(key, sizeof key, "state.%zu.%s", i, names[b]);
        *present = nb_state_dict_get(in, key) != NULL;
    }
    for (int b = 0; b < n && *present; b++) {
        snprintf(key, sizeof key, "state.%zu.%s", i, names[b]);
        const nb_tensor *t = nb_state_dict_get(in, key);
        if (!t) return missing(fn, key);
        const nb_tensor *p = opt->slots[i].param;
        bool step = !strcmp(names[b], "step");
        if (step ? nb_tensor_numel(t) == 1 : nb__same_shape(t, p)) continue;
        char got[NB__SHAPE_STR], want[NB__SHAPE_STR];
        nb__shape_str(got, nb_tensor_ndim(t), nb_tensor_shape(t));
        if (step) return nb__error(NB_ESHAPE, fn, "'%s' has shape %s, not one value", key, got);
        nb__shape_str(want, nb_tensor_ndim(p), nb_tensor_shape(p));
        return nb__error(NB_ESHAPE, fn, "'%s' has shape %s, but parameter %zu has shape %s", key,
                         got, i, want);
    }
    return NB_OK;
}

/* Copy slot i's loaded state into its buffer (fresh, or the one it had when it fits). */
static void commit_slot(nb_optim *opt, const nb__optim_group *groups, size_t i,
                        const nb_state_dict *in, bool present, float *fresh)
{
    nb__optim_slot *s = &opt->slots[i];
    if (!present) {
        nb__free(s->state);
        *s = (nb__optim_slot){.param = s->param};
        return;
    }
    const char *names[NB__OPTIM_MAX_BUFS];
    int nbuf = nb__optim_layout(&groups[group_of(opt, i)].o, names);
    if (fresh) {
        nb__free(s->state);
        s->state = fresh;
        s->nbuf = nbuf;
    }
    char key[KEY_MAX];
    int64_t numel = nb_tensor_numel(s->param);
    for (int b = 0; b < nbuf; b++) {
        snprintf(key, sizeof key, "state.%zu.%s", i, names[b]);
        memcpy(s->state + b * numel, nb_tensor_data_const(nb_state_dict_get(in, key)),
               (size_t)numel * sizeof(float));
    }
    s->step = 0.0;
    if (nb__optim_has_step(opt->kind)) {
        snprintf(key, sizeof key, "state.%zu.step", i);
        s->step = (double)nb_tensor_data_const(nb_state_dict_get(in, key))[0];
    }
}

nb_status nb_optim_load_state_dict(nb_optim *opt, const nb_state_dict *in)
{
    static const char fn[] = "nb_optim_load_state_dict";
    if (!opt) return nb__error(NB_EINVAL, fn, "argument 'opt' is NULL");
    if (!in) return nb__error(NB_EINVAL, fn, "argument 'in' is NULL");
    const char *kind = nb_state_dict_metadata(in, "optimizer");
    if (!kind) return missing(fn, "optimizer");
    if (strcmp(kind, nb_optim_kind_name(opt->kind)))
        return nb__error(NB_EINVAL, fn, "the state dict is of a %s optimizer, this one is %s", kind,
                         nb_optim_kind_name(opt->kind));
    size_t ngroups = 0;
    char key[KEY_MAX];
    for (;; ngroups++) {
        snprintf(key, sizeof key, "param_groups.%zu.params", ngroups);
        if (!nb_state_dict_metadata(in, key)) break;
    }
    if (ngroups != opt->ngroups)
        return nb__error(NB_EINVAL, fn,
                         "loaded state dict has %zu parameter groups, the optimizer has %zu",
                         ngroups, opt->ngroups);

    nb_status rc = NB_OK;
    nb__optim_group *groups = nb__alloc(ngroups * sizeof *groups, _Alignof(nb__optim_group));
    float **fresh = nb__calloc(opt->nslots * sizeof *fresh);
    bool *present = nb__calloc(opt->nslots * sizeof *present);
    if (!groups || !fresh || !present) {
        rc = nb__oom(fn);
        goto done;
    }
    for (size_t g = 0; g < ngroups && rc == NB_OK; g++) {
        groups[g] = opt->groups[g];
        rc = load_group(fn, opt, g, in, &groups[g]);
    }
    if (rc == NB_OK) rc = check_state_names(fn, opt, groups, in);
    for (size_t i = 0; i < opt->nslots && rc == NB_OK; i++)
        rc = check_slot(fn, opt, groups, i, in, &present[i]);
    for (size_t i = 0; i < opt->nslots && rc == NB_OK; i++) {
        const char *names[NB__OPTIM_MAX_BUFS];
        int nbuf = nb__optim_layout(&groups[group_of(opt, i)].o, names);
        const nb__optim_slot *s = &opt->slots[i];
        if (!present[i] || !nbuf || (s->state && s->nbuf == nbuf)) continue;
        if (!(fresh[i] = nb__optim_alloc_state(s->param, nbuf))) rc = nb__oom(fn);
    }
    if (rc != NB_OK) {
        for (size_t i = 0; fresh && i < opt->nslots; i++) nb__free(fresh[i]);
        goto done;
    }
    /* Nothing can fail from here on. */
    for (size_t i = 0; i < opt->nslots; i++) commit_slot(opt, groups, i, in, present[i], fresh[i]);
    for (size_t g = 0; g < ngroups; g++) opt->groups[g] = groups[g];
done:
    nb__free(groups);
    nb__free(fresh);
    nb__free(present);
    return rc;
}
