/**
 * @file
 * nabla — optimizers, gradient clipping and learning-rate schedulers.
 *
 * An optimizer updates its parameters in place from their .grad with the update rules of
 * torch.optim in PyTorch 1.13: the order of operations of its single-tensor ("for-loop")
 * implementations and their float32 rounding, so that the same gradients give the same
 * parameters, bit for bit (a NaN's sign and payload excepted: docs/optim.md). A training step:
 *
 *     nb_tensor *x = nb_ones(NB_SHAPE(8, 4)), *y = nb_zeros(NB_SHAPE(8, 3));
 *     nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(4, 3)), true);
 *     nb_tensor *b = nb_requires_grad_(nb_zeros(NB_SHAPE(3)), true);
 *     nb_tensor *params[] = {w, b};
 *     nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
 *     o.lr = 0.1;
 *     o.momentum = 0.9;
 *     nb_optim *opt = nb_optim_new(params, 2, &o);
 *     nb_status rc = opt ? NB_OK : nb_last_error()->code;
 *     for (int step = 0; step < 10 && rc == NB_OK; step++) {
 *         nb_scope *s = nb_scope_begin();
 *         nb_tensor *z = nb_add(nb_matmul(x, w), b);
 *         nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
 *         rc = nb_backward(loss, NULL, false);
 *         if (rc == NB_OK) rc = nb_optim_step(opt);
 *         if (rc == NB_OK) rc = nb_optim_zero_grad(opt, true);
 *         nb_scope_end(s);
 *     }
 *     if (rc != NB_OK) fprintf(stderr, "%s\n", nb_last_error()->message);
 *     nb_optim_free(opt);
 *     nb_release(x);
 *     nb_release(y);
 *     nb_release(w);
 *     nb_release(b);
 *
 * Parameters live outside the step's scope; the optimizer holds a reference to each. The
 * state it keeps per parameter (momentum buffers, moment estimates, step counts) is
 * allocated on the first step that parameter has a gradient (Adagrad: when the parameter is
 * added), before anything changes; later steps allocate nothing.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "tensor.h"

NB_BEGIN_DECLS

/* ---------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------- */

/** The update rule. PyTorch: the torch.optim class. */
typedef enum nb_optim_kind {
    NB_OPTIM_SGD = 1,     /**< torch.optim.SGD */
    NB_OPTIM_ADAM = 2,    /**< torch.optim.Adam */
    NB_OPTIM_ADAMW = 3,   /**< torch.optim.AdamW */
    NB_OPTIM_RMSPROP = 4, /**< torch.optim.RMSprop */
    NB_OPTIM_ADAGRAD = 5, /**< torch.optim.Adagrad */
} nb_optim_kind;

/**
 * Every hyperparameter of every kind, as torch.optim's keyword arguments. Start from
 * nb_optim_defaults(kind) and change what you need. A field that the kind does not use must
 * stay 0 (false), as nb_optim_defaults leaves it: setting momentum on Adam is an error, not
 * silently ignored (as Python would refuse an unknown keyword).
 *
 * Used by   SGD: lr, momentum, dampening, nesterov, weight_decay, maximize.
 *          Adam, AdamW: lr, betas, eps, weight_decay, amsgrad, maximize.
 *          RMSprop: lr, alpha, eps, weight_decay, momentum, centered, maximize.
 *          Adagrad: lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize.
 */
typedef struct nb_optim_options {
    nb_optim_kind kind;               /**< which optimizer these options are for */
    double lr;                        /**< learning rate; SGD has no default (NaN: unset) */
    double momentum;                  /**< SGD, RMSprop */
    double dampening;                 /**< SGD */
    bool nesterov;                    /**< SGD */
    double betas[2];                  /**< Adam, AdamW: (beta1, beta2) */
    double eps;                       /**< Adam, AdamW, RMSprop, Adagrad */
    double weight_decay;              /**< every kind; AdamW's is decoupled */
    bool amsgrad;                     /**< Adam, AdamW */
    double alpha;                     /**< RMSprop: smoothing constant */
    bool centered;                    /**< RMSprop */
    double lr_decay;                  /**< Adagrad */
    double initial_accumulator_value; /**< Adagrad */
    bool maximize;                    /**< every kind: ascend instead of descend */
} nb_optim_options;

/**
 * PyTorch 1.13's defaults for kind:
 *   SGD:     lr unset (NaN: nb_optim_new requires it), momentum 0, dampening 0,
 *            nesterov false, weight_decay 0.
 *   Adam:    lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad false.
 *   AdamW:   as Adam but weight_decay 1e-2.
 *   RMSprop: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false.
 *   Adagrad: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10.
 * maximize is false and every field the kind does not use is 0. An unknown kind gives
 * options with that kind and every other field 0 (nb_optim_new then refuses them).
 * PyTorch: the keyword defaults of torch.optim.SGD, Adam, AdamW, RMSprop, Adagrad.
 * Ownership: a value. Errors: none.
 */
NB_API nb_optim_options nb_optim_defaults(nb_optim_kind kind);

/**
 * The kind's PyTorch class name: "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"; "?" for an
 * unknown kind. PyTorch: type(optimizer).__name__.
 * Ownership: a static string. Errors: none.
 */
NB_API const char *nb_optim_kind_name(nb_optim_kind kind);

/* ---------------------------------------------------------------------------------------
 * The optimizer
 * ------------------------------------------------------------------------------------- */

/** An optimizer: parameter groups, hyperparameters, per-parameter state (opaque; nb_optim_new). */
typedef struct nb_optim nb_optim;

/**
 * An optimizer over the n tensors in params, which form its first parameter group, with
 * the hyperparameters in *options (copied). A parameter must be a leaf (or retain its grad)
 * and appear once; it need not require grad: one without a .grad is skipped by every step
 * (frozen layers). Adagrad fills its state now: step 0 and sum = initial_accumulator_value.
 * PyTorch: torch.optim.SGD(params, lr=...), Adam(params, ...), ... with the checks of their
 * constructors and of Optimizer.add_param_group.
 * Ownership: the caller's; free it with nb_optim_free(). The optimizer holds a reference to
 * each parameter until it is freed.
 * Errors: NULL with
 *   NB_EINVAL for NULL params or options; a NULL params[i] (the pending error is kept, so
 *   {w, b} built from a failed call reports that call's error); n <= 0 ("optimizer got an
 *   empty parameter list"); a parameter that is not a leaf; a parameter given twice; an
 *   unknown kind; SGD without lr; lr, eps, momentum, weight_decay, alpha, lr_decay or
 *   initial_accumulator_value < 0; betas outside [0, 1); a hyperparameter that is NaN or
 *   infinite, or beyond float32's range, FLT_MAX in magnitude (the step would take it as an
 *   infinite float; PyTorch fails there), but lr_decay and, without momentum, dampening;
 *   nesterov without momentum > 0 and dampening 0; a field the kind does not use that is
 *   not 0;
 *   NB_ENOMEM (nothing is retained).
 */
NB_API nb_optim *nb_optim_new(nb_tensor *const *params, int n, const nb_optim_options *options);

/**
 * Free opt and its state, releasing its references to the parameters.
 * PyTorch: none (del optimizer). Ownership: consumes opt. Errors: none; NULL is a no-op.
 */
NB_API void nb_optim_free(nb_optim *opt);

/**
 * Add a parameter group: the n tensors in params, with their own hyperparameters *options
 * (their kind must be opt's), or, when options is NULL, those opt was created with. Typical
 * use is fine-tuning: a small lr for the body, a larger one for the new head.
 * PyTorch: Optimizer.add_param_group({'params': params, **options}).
 * Ownership: opt takes a reference to each parameter; options is copied.
 * Errors: as nb_optim_new, and NB_EINVAL for NULL opt, for options of another kind, and for
 * a parameter already in a group ("some parameters appear in more than one parameter
 * group"); opt is unchanged on error.
 */
NB_API nb_status nb_optim_add_param_group(nb_optim *opt, nb_tensor *const *params, int n,
                                          const nb_optim_options *options);

/**
 * The update rule of opt; 0 for NULL. PyTorch: type(optimizer).
 * Ownership: none. Errors: none.
 */
NB_API nb_optim_kind nb_optim_get_kind(const nb_optim *opt);

/**
 * The number of parameter groups; 0 for NULL. PyTorch: len(optimizer.param_groups).
 * Ownership: none. Errors: none.
 */
NB_API int nb_optim_num_groups(const nb_optim *opt);

/**
 * The number of parameters in group; -1 with NB_EINVAL for NULL opt or a group out of range.
 * PyTorch: len(optimizer.param_groups[group]['params']).
 * Ownership: none. Errors: as said.
 */
NB_API int nb_optim_group_size(const nb_optim *opt, int group);

/**
 * Parameter i of group. PyTorch: optimizer.param_groups[group]['params'][i].
 * Ownership: borrowed from opt; valid while opt lives.
 * Errors: NULL with NB_EINVAL for NULL opt, a group or an index out of range.
 */
NB_API nb_tensor *nb_optim_param(const nb_optim *opt, int group, int i);

/**
 * The hyperparameters of group, into *out (lr as the last scheduler step or
 * nb_optim_set_lr left it). PyTorch: optimizer.param_groups[group] without 'params'.
 * Ownership: *out is the caller's.
 * Errors: NB_EINVAL for NULL opt or out, or a group out of range.
 */
NB_API nb_status nb_optim_group_options(const nb_optim *opt, int group, nb_optim_options *out);

/**
 * The learning rate of group, a double as Python's float (the update rounds it to float32
 * where PyTorch's kernels do). PyTorch: optimizer.param_groups[group]['lr'].
 * Ownership: none.
 * Errors: NaN with NB_EINVAL for NULL opt or a group out of range.
 */
NB_API double nb_optim_get_lr(const nb_optim *opt, int group);

/**
 * Set the learning rate of group (schedulers do this). PyTorch:
 * optimizer.param_groups[group]['lr'] = lr.
 * Ownership: none.
 * Errors: NB_EINVAL for NULL opt, a group out of range, or lr < 0, NaN or above FLT_MAX (the
 * lr is unchanged).
 */
NB_API nb_status nb_optim_set_lr(nb_optim *opt, int group, double lr);

/**
 * One update of every parameter that has a .grad, group by group, in place, bumping each
 * updated parameter's version. Parameters without a .grad are skipped (their state too).
 * With g = grad (negated when maximize), p the parameter, t its step count (from 1), and
 * every hyperparameter rounded to float32 where PyTorch's kernels round it:
 *   SGD:     g += wd·p; with momentum μ: b = g on the first step, else b = μ·b + (1-τ)·g;
 *            g = nesterov ? g + μ·b : b; p -= lr·g.
 *   Adam:    g += wd·p; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; (amsgrad: v̂ = max(v̂, v));
 *            p -= (lr / (1-β1^t))·m / (√v / √(1-β2^t) + eps), bias corrections in double.
 *   AdamW:   p *= 1 - lr·wd, then Adam without the g += wd·p.
 *   RMSprop: g += wd·p; s = α·s + (1-α)·g²; centered: a = α·a + (1-α)·g, d = √(s - a²) + eps,
 *            else d = √s + eps; with momentum μ: b = μ·b + g/d, p -= lr·b; else p -= lr·g/d.
 *   Adagrad: g += wd·p; s += g²; p -= (lr / (1 + (t-1)·lr_decay))·g / (√s + eps).
 * docs/optim.md gives the exact float32 sequence of each (where PyTorch's kernels fuse a
 * multiply-add, nabla does too). State the step needs is allocated first (the first time a
 * parameter has a gradient), so on NB_ENOMEM no parameter and no state has changed; once it
 * exists the step allocates nothing.
 * PyTorch: optimizer.step() (foreach=False).
 * Ownership: none.
 * Errors: NB_EINVAL for NULL opt; NB_ERANGE for an Adam or AdamW step size lr / (1-β1^t)
 * past float's range, as PyTorch refuses it (nothing changed); NB_ENOMEM (nothing changed).
 */
NB_API nb_status nb_optim_step(nb_optim *opt);

/**
 * Reset the .grad of every parameter: to NULL when set_to_none, else fill it with zeros (in
 * place). PyTorch 1.13's Optimizer.zero_grad defaults to set_to_none=False; pass the value
 * you mean. A parameter whose grad is NULL is skipped by the next step, one whose grad is
 * zero is updated (weight decay and momentum still act), as in PyTorch.
 * PyTorch: optimizer.zero_grad(set_to_none).
 * Ownership: with set_to_none, the references to the grads are dropped.
 * Errors: NB_EINVAL for NULL opt.
 */
NB_API nb_status nb_optim_zero_grad(nb_optim *opt, bool set_to_none);

/**
 * Add opt's state to out, flattened from PyTorch's optimizer.state_dict() (parameters are
 * numbered across groups in order, from 0):
 *   tensors  "state.<i>.<buffer>": copies of parameter i's state, for parameters that have
 *            one: "step" (a 0-d float32 tensor; not for SGD), and "momentum_buffer" (SGD,
 *            RMSprop), "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (Adam, AdamW), "square_avg",
 *            "grad_avg" (RMSprop), "sum" (Adagrad), each shaped like the parameter;
 *   metadata "optimizer" = the kind's name; "param_groups.<g>.<option>" for each option of
 *            the kind (betas as "betas.0", "betas.1"), doubles written with "%.17g" so they
 *            read back exactly, booleans "true"/"false"; "param_groups.<g>.params" = the
 *            group's parameter numbers ("0,1"); "param_groups.<g>.initial_lr" once a
 *            scheduler has set it.
 * The tensors are snapshots: later steps do not change them.
 * PyTorch: optimizer.state_dict().
 * Ownership: out holds the tensors it gets; opt is unchanged.
 * Errors: NB_EINVAL for NULL opt or out; NB_ENOMEM (out may hold part of the entries: free
 * it).
 */
NB_API nb_status nb_optim_state_dict(const nb_optim *opt, nb_state_dict *out);

/**
 * Replace opt's state and group hyperparameters with those of a state dict made by
 * nb_optim_state_dict, for an optimizer of the same kind with groups of the same sizes;
 * resuming from it continues bit for bit as if training had not stopped. Entries of in that
 * are not under "state." or "param_groups." (a model's tensors) are ignored. Everything is
 * checked before anything changes.
 * PyTorch: optimizer.load_state_dict(state_dict).
 * Ownership: the tensors of in are copied; in is unchanged.
 * Errors: NB_EINVAL for NULL opt or in; for a state dict of another kind, another number of
 * groups or another group size; a missing entry; a value that does not parse or fails the
 * checks of nb_optim_new (but lr and initial_lr may be any number except NaN: a scheduler can
 * take the lr below 0 by rounding, or to inf); an entry under "state." that this optimizer has no
 * use for (a parameter number out of range, a buffer its options do not use); NB_ESHAPE for a state
 * tensor whose shape is not its parameter's; NB_ENOMEM. opt is unchanged on error.
 */
NB_API nb_status nb_optim_load_state_dict(nb_optim *opt, const nb_state_dict *in);

/* ---------------------------------------------------------------------------------------
 * Gradient clipping (torch.nn.utils)
 * ------------------------------------------------------------------------------------- */

/**
 * Scale the .grad of the n tensors in params (those without a .grad are skipped) so that
 * their norm, taken together as one vector, is at most max_norm:
 *   total = ‖(‖g_1‖_p, ..., ‖g_k‖_p)‖_p   (norm_type p; INFINITY: max |g|)
 *   coef = min(max_norm / (total + 1e-6), 1);  every g ← g·coef
 * computed as PyTorch 1.13 on CPU does: in float32, each gradient's norm first (p = 2 over
 * 8 lanes as its AVX2 kernel), then the norm of those norms; the coefficient as
 * (1 / (total + 1e-6))·max_norm, clamped to 1 and always multiplied. When error_if_nonfinite
 * and the total is NaN or infinite, nothing is changed and an error is returned.
 * The total norm goes to *total_norm (which may be NULL), also with the non-finite error; 0
 * when no tensor has a gradient. As in PyTorch's kernel, norm_type is taken as a float: one
 * too large for a float is the inf norm, one that rounds to 0 counts the nonzero values.
 * PyTorch: torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite).
 * Ownership: the grads are changed in place (their versions bumped).
 * Errors: NB_EINVAL for NULL params, a NULL params[i] (a pending error is kept), n < 0,
 * max_norm < 0 or NaN, norm_type not > 0 (PyTorch also accepts 0 and -inf; nabla does not);
 * NB_ERANGE for a non-finite total with error_if_nonfinite. Nothing changes on error.
 */
NB_API nb_status nb_clip_grad_norm_(nb_tensor *const *params, int n, double max_norm,
                                    double norm_type, bool error_if_nonfinite, float *total_norm);

/**
 * Clamp every element of the .grad of the n tensors in params to [-clip_value, clip_value]
 * (clip_value rounded to float32; NaN stays NaN); tensors without a .grad are skipped.
 * PyTorch: torch.nn.utils.clip_grad_value_(params, clip_value).
 * Ownership: the grads are changed in place (their versions bumped).
 * Errors: NB_EINVAL for NULL params, a NULL params[i] (a pending error is kept), n < 0, or
 * clip_value < 0 or NaN (PyTorch accepts a negative one); nothing changes on error.
 */
NB_API nb_status nb_clip_grad_value_(nb_tensor *const *params, int n, double clip_value);

/* ---------------------------------------------------------------------------------------
 * Learning-rate schedulers (torch.optim.lr_scheduler)
 *
 * A scheduler sets the lr of each group of its optimizer. Creating it records each group's
 * initial_lr (unless a scheduler or a loaded state dict already did) as its base lr and
 * makes PyTorch's initial step (epoch 0: LinearLR multiplies lr by start_factor, the others
 * leave it). Then call nb_lr_scheduler_step after each nb_optim_step. Like PyTorch, each
 * step computes the new lr from the group's current lr (the recursive form in get_lr()), in
 * double, so the sequence is PyTorch's to the last bit; the closed form each one follows
 * when nothing else changes the lr is given with it (epoch e = last_epoch, base lr η0).
 * ------------------------------------------------------------------------------------- */

/** A learning-rate scheduler of one optimizer (opaque; nb_step_lr_new, ...). */
typedef struct nb_lr_scheduler nb_lr_scheduler;

/**
 * StepLR: lr ← lr·gamma when e > 0 and e % step_size == 0. Closed form:
 * η0·gamma^⌊e / step_size⌋. PyTorch: torch.optim.lr_scheduler.StepLR(opt, step_size, gamma).
 * Ownership: the caller's; free it with nb_lr_scheduler_free(). opt is borrowed: it must
 * outlive the scheduler.
 * Errors: NULL with NB_EINVAL for NULL opt, step_size <= 0, or gamma <= 0, NaN or infinite
 * (PyTorch checks neither); NB_ENOMEM. opt is unchanged on error.
 */
NB_API nb_lr_scheduler *nb_step_lr_new(nb_optim *opt, int64_t step_size, double gamma);

/**
 * MultiStepLR: lr ← lr·gamma when e is one of the n milestones. Closed form:
 * η0·gamma^(number of milestones <= e). PyTorch: MultiStepLR(opt, milestones, gamma).
 * Ownership: as nb_step_lr_new; milestones is copied (it may be NULL when n is 0).
 * Errors: NULL with NB_EINVAL for NULL opt, NULL milestones with n > 0, n < 0, milestones
 * that are negative or not strictly increasing (PyTorch counts a repeated one twice), gamma
 * as nb_step_lr_new; NB_ENOMEM.
 */
NB_API nb_lr_scheduler *nb_multistep_lr_new(nb_optim *opt, const int64_t *milestones, int n,
                                            double gamma);

/**
 * ExponentialLR: lr ← lr·gamma when e > 0. Closed form: η0·gamma^e.
 * PyTorch: ExponentialLR(opt, gamma).
 * Ownership: as nb_step_lr_new. Errors: as nb_step_lr_new for gamma; NB_ENOMEM.
 */
NB_API nb_lr_scheduler *nb_exponential_lr_new(nb_optim *opt, double gamma);

/**
 * CosineAnnealingLR: for e > 0, when (e - 1 - T) % 2T == 0,
 * lr ← lr + (η0 - η_min)·(1 - cos(π/T))/2, else
 * lr ← (1 + cos(π·e/T)) / (1 + cos(π·(e-1)/T))·(lr - η_min) + η_min (T = t_max). Closed form:
 * η_min + (η0 - η_min)·(1 + cos(π·e/T))/2. PyTorch: CosineAnnealingLR(opt, T_max, eta_min).
 * Ownership: as nb_step_lr_new.
 * Errors: NULL with NB_EINVAL for NULL opt, t_max <= 0, or eta_min < 0, NaN or infinite;
 * NB_ENOMEM.
 */
NB_API nb_lr_scheduler *nb_cosine_annealing_lr_new(nb_optim *opt, int64_t t_max, double eta_min);

/**
 * LinearLR: at e = 0, lr ← lr·s; for 0 < e <= N,
 * lr ← lr·(1 + (f - s) / (N·s + (e - 1)·(f - s))) (s = start_factor, f = end_factor,
 * N = total_iters). Closed form: η0·(s + (f - s)·min(N, e) / N).
 * PyTorch: LinearLR(opt, start_factor, end_factor, total_iters) (defaults 1/3, 1, 5).
 * Ownership: as nb_step_lr_new.
 * Errors: NULL with NB_EINVAL for NULL opt, start_factor outside (0, 1] (PyTorch 1.13 takes 0
 * and then divides by it), end_factor outside [0, 1], total_iters <= 0; NB_ENOMEM.
 */
NB_API nb_lr_scheduler *nb_linear_lr_new(nb_optim *opt, double start_factor, double end_factor,
                                         int64_t total_iters);

/**
 * Free s (its optimizer keeps the lrs s gave it). PyTorch: none.
 * Ownership: consumes s. Errors: none; NULL is a no-op.
 */
NB_API void nb_lr_scheduler_free(nb_lr_scheduler *s);

/**
 * Advance one epoch: last_epoch += 1 and set each group's lr by the scheduler's rule.
 * PyTorch: scheduler.step().
 * Ownership: none.
 * Errors: NB_EINVAL for NULL s; NB_ESTATE when the optimizer's number of groups changed since
 * the scheduler was made (nothing changes).
 */
NB_API nb_status nb_lr_scheduler_step(nb_lr_scheduler *s);

/**
 * The epoch of the last step: 0 after creation. PyTorch: scheduler.last_epoch.
 * Ownership: none. Errors: -1 with NB_EINVAL for NULL s.
 */
NB_API int64_t nb_lr_scheduler_last_epoch(const nb_lr_scheduler *s);

/**
 * The lr the last step (or the creation) set for group. PyTorch: scheduler.get_last_lr()[g].
 * Ownership: none. Errors: NaN with NB_EINVAL for NULL s or a group out of range.
 */
NB_API double nb_lr_scheduler_last_lr(const nb_lr_scheduler *s, int group);

/**
 * Add s's progress to out as metadata: "scheduler" (the class name, "StepLR", ...),
 * "last_epoch", "base_lrs.<g>" and "last_lr.<g>" ("%.17g"). The schedule's own arguments
 * are not saved: make the same scheduler, then load. PyTorch: scheduler.state_dict().
 * Ownership: none. Errors: NB_EINVAL for NULL s or out; NB_ENOMEM (out may hold part).
 */
NB_API nb_status nb_lr_scheduler_state_dict(const nb_lr_scheduler *s, nb_state_dict *out);

/**
 * Restore the progress saved by nb_lr_scheduler_state_dict into a scheduler of the same
 * class over as many groups. The optimizer's lrs come from its own state dict.
 * PyTorch: scheduler.load_state_dict(state_dict).
 * Ownership: none.
 * Errors: NB_EINVAL for NULL s or in, another class, a missing entry or one that does not
 * parse (an lr may be any number except NaN; last_epoch a whole number from 0 to 2^31 - 1),
 * another number of groups; s is unchanged on error.
 */
NB_API nb_status nb_lr_scheduler_load_state_dict(nb_lr_scheduler *s, const nb_state_dict *in);

NB_END_DECLS

#endif /* NABLA_OPTIM_H */
