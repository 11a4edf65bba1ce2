/*
 * Internal definitions of the optimizer layer: the optimizer's groups and per-parameter
 * state, shared by the update rules, the state dicts and the schedulers. Never installed.
 */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include <stddef.h>

#include "core/internal.h"
#include "nabla/optim.h"

/*
 * The update rules, norms and schedules round every operation as PyTorch does: a multiply
 * and an add are fused only where an explicit fmaf() says so. GCC does not contract them in
 * ISO C mode (nabla builds with -std=c11); Clang would, within an expression, without this.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/** The most state buffers one parameter has (Adam with amsgrad, RMSprop centered + momentum). */
#define NB__OPTIM_MAX_BUFS 3

/** One parameter and its state. */
typedef struct nb__optim_slot {
    nb_tensor *param; /* strong */
    float *state;     /* nbuf arrays of numel floats, one block; NULL: no state yet */
    int nbuf;
    bool fresh;  /* state allocated by the step in progress (SGD's first-step rule) */
    double step; /* steps taken; float32 arithmetic where PyTorch keeps a float tensor */
} nb__optim_slot;

typedef struct nb__optim_group {
    nb_optim_options o;
    bool has_initial_lr; /* set by the first scheduler, as group.setdefault('initial_lr') */
    double initial_lr;
    int first, count; /* its parameters: slots[first .. first + count) */
} nb__optim_group;

struct nb_optim {
    nb_optim_kind kind;
    nb_optim_options defaults; /* the options given at creation */
    nb__optim_group *groups;
    size_t ngroups, groups_cap;
    nb__optim_slot *slots;
    size_t nslots, slots_cap;
};

/** The names of the state buffers that options o give a parameter, in storage order;
 *  returns how many (at most NB__OPTIM_MAX_BUFS). */
int nb__optim_layout(const nb_optim_options *o, const char **names);
/** Whether the kind counts steps in its state ("state.<i>.step"); SGD does not. */
bool nb__optim_has_step(nb_optim_kind kind);
/** Allocate a parameter's state for nbuf buffers (not initialised); NULL on OOM. */
float *nb__optim_alloc_state(const nb_tensor *param, int nbuf);

/**
 * Check options o for fn with the rules of nb_optim_new; NB_OK or the recorded error. With
 * any_lr, lr is not checked (a loaded state dict's lr may be any number a schedule reached).
 */
nb_status nb__optim_check_options(const char *fn, const nb_optim_options *o, bool any_lr);

/** A hyperparameter of nb_optim_options: its state-dict name, where it is, who uses it. */
typedef struct nb__optim_field {
    const char *name;
    size_t offset;
    bool is_bool;
    unsigned kinds; /* bit k set: kind k uses it */
} nb__optim_field;
/** The table of every field, in state-dict order; *n receives its length. */
const nb__optim_field *nb__optim_fields(size_t *n);
/** Whether kind uses field f. */
static inline bool nb__optim_uses(const nb__optim_field *f, nb_optim_kind kind)
{
    return (f->kinds >> (unsigned)kind) & 1u;
}

/** Apply one update of group g's rule to the parameter in slot s, whose grad is grad
 *  (its state, when the rule has one, is allocated). Allocates nothing. */
void nb__optim_update(nb_optim_kind kind, const nb_optim_options *o, nb__optim_slot *s,
                      const float *grad);

/** v as the shortest "%.*g" that reads back exactly (0.1 is "0.1", as Python's repr). */
void nb__optim_format_double(char *buf, size_t size, double v);
/** Parse a whole string as a double; false when it is not one. */
bool nb__optim_parse_double(const char *s, double *v);

/** Check a group index for fn; NB_OK or the recorded error (NB_EINVAL). */
nb_status nb__optim_check_group(const char *fn, const nb_optim *opt, int group);

#endif /* NABLA_OPTIM_INTERNAL_H */
