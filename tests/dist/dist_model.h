/*
 * A small classifier trained the way a data-parallel program trains it, shared by the MPI
 * tests: a dataset made in memory (DM_N examples of DM_IN bytes), an MLP DM_IN-16-1 built
 * from nabla's ops (matmul, add, relu, binary cross-entropy on logits), Adam, and a loop
 * in which each rank takes its share of every global batch through nb_dist_sampler.
 */
#ifndef NABLA_TESTS_DIST_MODEL_H
#define NABLA_TESTS_DIST_MODEL_H

#include <nabla/dist.h>
#include <nabla/nabla.h>

#define DM_N      64
#define DM_IN     8
#define DM_HIDDEN 16
#define DM_PARAMS 5

typedef struct dm_model {
    /* w1 [IN, HIDDEN], b1 [HIDDEN], w2 [HIDDEN, 1], b2 [1], and one that requires grad but
       never reaches the loss (so no rank has its gradient) */
    nb_tensor *params[DM_PARAMS];
    int n; /* how many params are passed to the gradient average (a test may spoil it) */
    nb_optim *opt;
} dm_model;

/* The examples: bytes of a fixed xorshift stream; the label: their sum is above the mean. */
nb_dataset *dm_dataset(void);

/* Weights drawn after nb_manual_seed(seed); Adam, lr 0.01. */
nb_status dm_model_init(dm_model *m, uint64_t seed);
void dm_model_free(dm_model *m);

/* Where the loop calls the hook: after backward (before the average), after the step. */
typedef enum dm_phase { DM_AFTER_BACKWARD, DM_AFTER_STEP } dm_phase;
/* A non-OK status from the hook ends the loop with it. */
typedef nb_status (*dm_hook)(void *ctx, dm_model *m, int step, dm_phase phase);

/*
 * steps optimizer steps on batches of global_batch examples: with d, each of its ranks takes
 * global_batch / world_size of them (its sampler's share) and the gradients are averaged;
 * with d NULL, one process takes them all. The samplers shuffle with seed 0, and each
 * epoch's last incomplete batch is dropped, so the ranks together see one process's batches.
 */
nb_status dm_train(nb_dist *d, dm_model *m, const nb_dataset *ds, int64_t global_batch, int steps,
                   dm_hook hook, void *ctx);

#endif
