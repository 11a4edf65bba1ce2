/*
 * The training loop of nabla-train and nabla-finetune: an MLP on an image dataset, trained
 * with cross-entropy, evaluated under no-grad each epoch. Written as PyTorch's reference
 * (scripts/train_reference.py) writes it, so that the same seed gives the same run.
 */
#ifndef NABLA_EXAMPLES_TRAINER_H
#define NABLA_EXAMPLES_TRAINER_H

#include <nabla/nabla.h>

#define TRAINER_MAX_HIDDEN 8

/** What nabla-train's options set. */
typedef struct trainer_options {
    const char *data_dir; /* the four IDX files of the MNIST family */
    int epochs;
    int64_t batch;
    double lr;
    nb_optim_kind optim;
    int n_hidden;
    int64_t hidden[TRAINER_MAX_HIDDEN];
    uint64_t seed;
    int threads; /* 0: leave nabla's default */
    bool shuffle;
    const char *save, *load; /* safetensors paths, or NULL */
    bool json;
    int64_t max_steps; /* stop after this many steps in all (0: no limit) */
} trainer_options;

/** Defaults of nabla-train: 784-256-128-10, Adam 1e-3, batch 128, 15 epochs, seed 0. */
trainer_options trainer_defaults(void);

/** One epoch's figures. */
typedef struct epoch_result {
    int epoch;
    double train_loss, test_loss, test_accuracy, seconds;
} epoch_result;

/** The MLP in_features → hidden... → classes with ReLU between, drawn from the default generator.
 */
nb_module *trainer_model(int64_t in_features, const int64_t *hidden, int n_hidden, int64_t classes);

/** The sums an evaluation makes: cross-entropy summed over the examples, right predictions. */
typedef struct eval_sums {
    double loss_sum;
    int64_t right, seen;
} eval_sums;

/**
 * Evaluate model on the examples order[0 .. n-1] of ds (all of ds, in order, when order is
 * NULL), under no-grad in eval mode (the model is put back in training mode), in batches of
 * 1000 as the reference does; predictions (may be NULL) receives the argmax of every
 * example, in the order evaluated. A loader over ds draws its base seed as PyTorch's does.
 */
nb_status trainer_evaluate_sums(nb_module *model, const nb_dataset *ds, const int64_t *order,
                                int64_t n, eval_sums *sums, uint8_t *predictions);

/** Mean cross-entropy and accuracy of model on all of ds (trainer_evaluate_sums). */
nb_status trainer_evaluate(nb_module *model, const nb_dataset *ds, double *loss, double *accuracy,
                           uint8_t *predictions);

/** Where one step's time went, in seconds. */
typedef struct trainer_phases {
    double forward;   /* zeroing the grads, the model, the loss */
    double backward;  /* nb_backward */
    double optimizer; /* nb_optim_step */
    double teardown;  /* the step's scope ending: its graph and temporaries freed */
} trainer_phases;

/**
 * One training step on a batch x [B, features], y [B] (class indices): grads to None,
 * forward, mean cross-entropy, backward, optimizer step, every temporary in a scope of its
 * own; *loss is the batch's loss. times (may be NULL) receives the phases' durations.
 */
nb_status trainer_step(nb_module *model, nb_optim *opt, nb_tensor *x, nb_tensor *y, double *loss,
                       trainer_phases *times);

/** Called after every step with the batches so far and the epoch's total, the examples so far
 *  (the last batch can be short) and the step's loss. */
typedef void (*trainer_step_fn)(int epoch, int64_t batch, int64_t n_batches, int64_t examples,
                                double loss, void *ctx);

/** What a training step calls besides its own work; NULL members are not called. */
typedef struct trainer_hooks {
    /** After backward, before the optimizer's step (nabla-train --dist averages the
     *  gradients of the ranks there); an error ends the epoch with it. */
    nb_status (*after_backward)(void *ctx);
    /** After every step. */
    trainer_step_fn on_step;
    void *ctx;
} trainer_hooks;

/**
 * One epoch of training: for each batch, trainer_step (grads to None, forward,
 * cross-entropy, backward, hooks->after_backward, optimizer step); *train_loss is the mean
 * over the examples seen. The batches are refilled into one pair of tensors made by the
 * first (so a warm step allocates nothing from the C library). Stops early after
 * *steps_left steps when it is positive (counting down). hooks may be NULL.
 */
nb_status trainer_epoch(nb_module *model, nb_optim *opt, nb_dataloader *loader, int epoch,
                        double *train_loss, int64_t *steps_left, const trainer_hooks *hooks);

/** Seconds since some fixed point (CLOCK_MONOTONIC). */
double trainer_now(void);

/* The command lines and the output of nabla-train and nabla-finetune. */

/** s as a whole decimal integer in [lo, hi]: false for an empty string, other characters
 *  around it, or a value out of that range (or of int64_t's). */
bool trainer_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/** s as a whole number (strtod; as Python's float(), 1e999 is inf) at least lo, or more than
 *  lo when above: false for NaN, an empty string or other characters around it. */
bool trainer_parse_double(const char *s, double lo, bool above, double *out);

/** s as torch.manual_seed takes it: an integer in [-2^63, 2^64 - 1], a negative one as its
 *  uint64 two's complement (-1 is 2^64 - 1), as torch reads it. */
bool trainer_parse_seed(const char *s, uint64_t *out);

/** s as 1 to max integers in [lo, hi] separated by commas, with no empty entry: *n of them in
 *  out (as Python's [int(v) for v in s.split(",")] reads it, but for the spaces around an
 *  entry and the underscores in one that int() also takes). */
bool trainer_parse_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int max, int *n);

/** Whether the option a is one of names (NULL-terminated), which take a value, and none
 *  follows it (v is NULL); then "PROGRAM: option 'a' needs a value" is on stderr. */
bool trainer_missing_value(const char *program, const char *a, const char *v,
                           const char *const *names);

/** Why a model can't be saved to path (NULL when nothing stands in the way), to know before
 *  training: an empty path, a directory or another file that is not a regular one, or its
 *  directory missing, not a directory or not writable. */
const char *trainer_save_problem(const char *path);

/** Save model's state dict to path as safetensors with the metadata the programs read back
 *  (format "pt", hidden the n_hidden sizes joined by commas), as nabla-train and
 *  nabla-finetune write it. NB_OK or the failing call's status (its error is the last). */
nb_status trainer_save_model(nb_module *model, const int64_t *hidden, int n_hidden,
                             const char *path);

/** Why the model trained on train can't be evaluated on test (NULL when it can): examples of
 *  another size; the message is written into buf. */
const char *trainer_sets_mismatch(const nb_dataset *train, const nb_dataset *test, char *buf,
                                  size_t size);

/** v with the given decimals into buf (32 bytes or more); a NaN or an infinity as Python's
 *  json.dumps writes it when json (NaN, Infinity, -Infinity), else as its "%f" does (nan,
 *  inf, -inf). Returns buf. */
const char *trainer_number(char *buf, size_t size, double v, int decimals, bool json);

/** Flush stdout; why that or an earlier write to it failed (a full disk...), or NULL. */
const char *trainer_stdout_problem(void);

#endif
