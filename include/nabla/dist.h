/**
 * @file
 * nabla — data-parallel training over MPI (libnabla_dist, CMake target nabla::dist).
 *
 * The semantics of PyTorch's DistributedDataParallel with its MPI backend: every rank (an
 * MPI process, started by mpirun) holds the whole model, starts from rank 0's weights, takes
 * its own share of each global batch, and after backward averages the gradients of every
 * rank before the optimizer steps, so the ranks stay identical and the run computes what
 * one process with the global batch would.
 *
 *     nb_dist *d = nb_dist_init(&argc, &argv, NULL);        // mpirun -np 2 ./train
 *     if (!d) return 1;
 *     nb_status rc = nb_dist_broadcast(d, params, n, 0);     // everyone gets rank 0's weights
 *     nb_dist_sampler *s = nb_dist_sampler_new(nb_dataset_count(train), nb_dist_world_size(d),
 *                                              nb_dist_rank(d), NULL);
 *     for (int epoch = 0; rc == NB_OK && epoch < epochs; epoch++) {
 *         int64_t m;
 *         nb_dist_sampler_set_epoch(s, epoch);               // sampler.set_epoch(epoch)
 *         const int64_t *mine = nb_dist_sampler_indices(s, &m);
 *         nb_dataloader_set_order(dl, mine, m);              // DataLoader(sampler=...)
 *         nb_dataloader_begin_epoch(dl);
 *         while (rc == NB_OK && nb_dataloader_next(dl, &x, &y) > 0) {
 *             ... forward, loss, nb_backward ...
 *             rc = nb_dist_allreduce_grads(d, params, n);    // DDP's gradient averaging
 *             if (rc == NB_OK) rc = nb_optim_step(opt);
 *         }
 *     }
 *     if (rc != NB_OK) nb_dist_abort(d, rc);                 // "rank 1: nb_...: cause", all end
 *     nb_dist_sampler_free(s);
 *     nb_dist_finalize(d);
 *
 * Failures. Every collective function here (all but the getters and the sampler) starts
 * with one small agreement among the ranks, which carries each rank's local checks, which
 * function it is in and a digest of its arguments. So a bad argument, an allocation failure
 * or differing tensors on one rank, or ranks in different functions of this header, give
 * every rank the same error, "nb_dist_allreduce_grads: rank 1: <cause>" (ranks in different
 * functions: "...: the ranks are in different calls (A and B)", whatever else failed), and
 * nobody waits forever; the objects are unchanged. By default that error is returned
 * (nabla never aborts on its own); with nb_dist_options.abort_on_error the rank that finds
 * it writes "rank 1: nb_dist_allreduce_grads: <cause>" to stderr and ends the job with
 * MPI_Abort.
 * A rank that fails elsewhere (its own forward, say) must not call MPI_Finalize while the
 * others wait for it: call nb_dist_abort(), or nb_dist_finalize() (which agrees with the
 * others first and, if they are in another call, returns an error everywhere instead of
 * finalizing), or exit: a rank that exits without finalizing makes mpirun end the job.
 * nb_dist_options.timeout_s bounds the wait for ranks that never come (a hang, a deadlock):
 * past it the job ends with a message. After MPI was finalised (by the program, or by the
 * last nb_dist_finalize), every collective fails with NB_ESTATE "...: MPI was finalized
 * already"; MPI_Abort is not allowed any more then, so abort_on_error and nb_dist_abort end
 * only this process (exit status 1).
 *
 * Threads: call these functions from one thread at a time (MPI_THREAD_SERIALIZED, which
 * nb_dist_init asks for). Where MPI runs at a lower level (MPI the program initialised with
 * MPI_Init, or an MPI that grants less), call them from the thread that initialised MPI only.
 * This header includes <mpi.h>; the umbrella nabla/nabla.h does not include it.
 */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include <mpi.h>

#include "tensor.h"

NB_BEGIN_DECLS

#if defined(__GNUC__)
#define NB__NORETURN __attribute__((noreturn))
#else
#define NB__NORETURN
#endif

/** A group of ranks that train together (opaque; nb_dist_init). */
typedef struct nb_dist nb_dist;

/** How a group reduces and fails. Zero-initialised fields give the defaults. */
typedef struct nb_dist_options {
    /**
     * The gradients travel in buckets of at most this many MiB; 0: 25 (PyTorch:
     * DistributedDataParallel's bucket_cap_mb). At most 8191 (an MPI count is an int).
     */
    double bucket_cap_mb;
    /**
     * Sum in a fixed order: each element's sum is x_0 + x_1 + ... + x_{n-1} in rank order,
     * so a run is reproducible bit for bit, run after run (MPI's own allreduce, the default,
     * may add in any order: with 3 ranks or more the last bits can differ between runs).
     * Costs an all-to-all and an all-gather instead of one allreduce.
     * PyTorch: none (torch.use_deterministic_algorithms does not cover collectives).
     */
    bool deterministic;
    /**
     * On an error in a function of this header, write "rank R: <message>" to stderr and end
     * the job (MPI_Abort) instead of returning it. PyTorch: an uncaught exception.
     */
    bool abort_on_error;
    /**
     * Seconds a collective (nb_dist_init and nb_dist_from_comm included) waits for every
     * rank to join before it ends the job (message, then MPI_Abort); 0: wait as long as MPI
     * does (for ever). PyTorch: init_process_group's timeout.
     */
    double timeout_s;
} nb_dist_options;

/**
 * Join the group of every process mpirun started: initialise MPI (MPI_Init_thread,
 * MPI_THREAD_SERIALIZED) unless the program did already, then work on a duplicate of
 * MPI_COMM_WORLD, so nabla's messages never mix with the program's. Collective: every rank
 * calls it. options NULL: the defaults. Run without mpirun, the process is a group of one.
 * PyTorch: torch.distributed.init_process_group("mpi").
 * Ownership: the caller's; end it with nb_dist_finalize() or nb_dist_abort(). When nabla
 * initialised MPI (here, or in an earlier nb_dist_init, even one that failed), the last of
 * nb_dist_init's groups to be finalised finalises MPI; MPI the program initialised stays
 * the program's.
 * Errors: NULL with NB_EINVAL for a bucket_cap_mb or timeout_s that is negative, not finite
 * or too big; NB_ESTATE when MPI was finalised already; NB_EIO when MPI fails; NB_ENOMEM.
 */
NB_API nb_dist *nb_dist_init(int *argc, char ***argv, const nb_dist_options *options);

/**
 * Join the group of the ranks of comm, a communicator the program made (MPI initialised by
 * the program, which also finalises it); nabla works on a duplicate. Collective over comm.
 * PyTorch: torch.distributed.new_group(ranks).
 * Ownership: the caller's; comm stays the program's.
 * Errors: NULL with NB_EINVAL for MPI_COMM_NULL, an intercommunicator or bad options (as
 * nb_dist_init);
 * NB_ESTATE when MPI is not initialised or was finalised; NB_EIO; NB_ENOMEM.
 */
NB_API nb_dist *nb_dist_from_comm(MPI_Comm comm, const nb_dist_options *options);

/**
 * Leave the group: agree with the other ranks that they are leaving too, free d, and
 * finalise MPI if nabla initialised it and d is the last open group of nb_dist_init.
 * Collective. When the other ranks are in
 * another call of this header (this rank is leaving on an error path), every rank gets an
 * error and MPI is not finalised, so nobody is left waiting: end the program, or call
 * nb_dist_abort(). PyTorch: torch.distributed.destroy_process_group().
 * Ownership: consumes d (also on error).
 * Errors: NB_OK for NULL d (nothing to do); the agreement's errors (the ranks are in
 * different calls: NB_ESTATE); NB_EIO when MPI fails.
 */
NB_API nb_status nb_dist_finalize(nb_dist *d);

/**
 * End the whole job now, on every rank: write "rank R: <the thread's last error message>"
 * (or, when no error was recorded, "rank R: nb_dist_abort: the job was ended (status)") to
 * stderr, then MPI_Abort with exit code 1. For a program's error path: the other ranks may
 * be waiting in a collective this rank will never join. Does not return.
 * PyTorch: none (an uncaught exception; torch.distributed has no abort).
 * Ownership: none; d may be NULL (then MPI_COMM_WORLD is aborted). Without MPI initialised,
 * or after it was finalised, only this process ends (exit status 1; no rank prefix when d is
 * NULL).
 * Errors: none (does not return).
 */
NB_API NB__NORETURN void nb_dist_abort(nb_dist *d, nb_status status);

/**
 * This process's rank, 0 .. world_size-1, and the number of ranks; -1 for NULL.
 * PyTorch: torch.distributed.get_rank() / get_world_size().
 * Ownership: none. Errors: none.
 * @{
 */
NB_API int nb_dist_rank(const nb_dist *d);
NB_API int nb_dist_world_size(const nb_dist *d);
/** @} */

/**
 * The communicator nabla uses (its duplicate); MPI_COMM_NULL for NULL. For the program's
 * own MPI calls on the same ranks (better on a duplicate of its own).
 * PyTorch: none (a process group's backend handle). Ownership: d's. Errors: none.
 */
NB_API MPI_Comm nb_dist_comm(const nb_dist *d);

/**
 * Wait until every rank has called it. Collective.
 * PyTorch: torch.distributed.barrier().
 * Ownership: none. Errors: NB_EINVAL for NULL d (this rank does not take part); the
 * agreement's errors.
 */
NB_API nb_status nb_dist_barrier(nb_dist *d);

/**
 * Copy the data of tensors[0..n-1] on rank root into the same tensors on every other rank
 * (in buckets, bumping each written tensor's version), so that every rank starts from the
 * same weights. Every rank passes tensors of the same sizes in the same order (checked).
 * Collective. PyTorch: DistributedDataParallel's broadcast of the module's parameters and
 * buffers at construction (torch.distributed.broadcast of each).
 * Ownership: the tensors are borrowed; their data changes in place on ranks other than root.
 * Errors: NB_EINVAL for NULL d (this rank does not take part), NULL tensors with n > 0, a NULL
 * tensors[i] (the pending error is kept, and sent), n < 0, a root outside [0, world_size) or
 * differing between ranks; NB_ESHAPE when the ranks' tensors differ in number or size;
 * NB_ENOMEM; NB_EIO when MPI fails. Nothing is written on error.
 */
NB_API nb_status nb_dist_broadcast(nb_dist *d, nb_tensor *const *tensors, int n, int root);

/**
 * nb_dist_broadcast of every tensor of sd, in sd's order; every rank's sd has the same names
 * and sizes in the same order (checked). Collective. PyTorch: as nb_dist_broadcast, over
 * module.state_dict() (parameters and buffers).
 * Ownership: sd and its tensors are borrowed; the tensors' data changes in place.
 * Errors: as nb_dist_broadcast; NB_EINVAL for NULL sd; NB_ESHAPE when the names differ.
 */
NB_API nb_status nb_dist_broadcast_state_dict(nb_dist *d, nb_state_dict *sd, int root);

/**
 * After backward: replace the .grad of every parameter that requires grad by the average of
 * that .grad over the ranks, Σ_r (g_r · (1/world_size)), in float32, as DDP computes it (each
 * gradient scaled while it is copied into a bucket, then summed). The gradients travel
 * packed into buckets of bucket_cap_mb. Parameters that do not require grad (frozen) are
 * skipped and keep their .grad. A parameter without a .grad on some ranks counts as zeros
 * there (DDP with find_unused_parameters): when at least one rank has its gradient, every
 * rank ends with the average as its .grad (a new tensor where it had none); when no rank
 * has one, it keeps no .grad. A parameter listed more than once is averaged once, as DDP
 * keeps each parameter once. Every rank passes the same parameters in the same order
 * (number, sizes, requires_grad and repeats checked). Collective; with one rank the
 * gradients are unchanged. PyTorch: DistributedDataParallel's gradient synchronisation in
 * backward.
 * Ownership: params are borrowed; their gradients change in place (versions bumped).
 * Errors: NB_EINVAL for NULL d (this rank does not take part), NULL params with n > 0, a
 * NULL params[i] (the pending error is kept, and sent), n < 0, a parameter that is not a
 * leaf and does not retain its grad; NB_ESHAPE when the ranks' parameters differ; NB_ENOMEM;
 * NB_EIO when MPI fails. No gradient changes on error.
 */
NB_API nb_status nb_dist_allreduce_grads(nb_dist *d, nb_tensor *const *params, int n);

/** What nb_dist_all_reduce computes. */
typedef enum nb_dist_op {
    NB_DIST_SUM = 1, /**< Σ over the ranks (PyTorch: ReduceOp.SUM) */
    NB_DIST_AVG = 2, /**< Σ over the ranks / world_size (PyTorch: ReduceOp.AVG) */
} nb_dist_op;

/**
 * Replace t's data by its sum (or average) over the ranks, element by element, in float32
 * (in rank order with deterministic): for metrics, such as the sharded evaluation's count of
 * correct answers (exact up to 2^24). Every rank passes a t of the same size and the same
 * op. Collective. PyTorch: torch.distributed.all_reduce(t, op).
 * Ownership: t is borrowed and changed in place (version bumped).
 * Errors: NB_EINVAL for NULL d (this rank does not take part), a NULL t (the pending error is
 * kept, and sent), an unknown op or one differing between ranks; NB_ESHAPE when the sizes
 * differ; NB_ENOMEM; NB_EIO. t is unchanged on error.
 */
NB_API nb_status nb_dist_all_reduce(nb_dist *d, nb_tensor *t, nb_dist_op op);

/* ---------------------------------------------------------------------------------------
 * The distributed sampler: each rank's share of a dataset, an epoch at a time, exactly as
 * PyTorch 1.13's torch.utils.data.DistributedSampler gives it. With shuffle, the epoch's
 * order is torch.randperm(size) from a generator seeded with seed + epoch (the same on every
 * rank), else 0 .. size-1. Without drop_last the order is padded to
 * total = num_samples · num_replicas indices by repeating it from its start, num_samples =
 * ceil(size / num_replicas); with drop_last it is cut to that total, num_samples =
 * floor(size / num_replicas). Rank r takes the indices at r, r + num_replicas, ... of it.
 * The sampler needs no MPI: rank and num_replicas are given (nb_dist_rank and
 * nb_dist_world_size of a group, usually). Give its indices to a loader with
 * nb_dataloader_set_order (nabla/data.h).
 * ------------------------------------------------------------------------------------- */

/** A rank's share of a dataset (opaque; nb_dist_sampler_new). */
typedef struct nb_dist_sampler nb_dist_sampler;

/** How a sampler shares out a dataset. Start from nb_dist_sampler_defaults(). */
typedef struct nb_dist_sampler_options {
    bool shuffle;   /**< a new permutation every epoch (PyTorch's default: true) */
    uint64_t seed;  /**< the permutation's seed, plus the epoch (default 0) */
    bool drop_last; /**< cut the tail instead of padding (default false) */
} nb_dist_sampler_options;

/**
 * PyTorch's defaults: shuffle true, seed 0, drop_last false.
 * PyTorch: DistributedSampler's keyword defaults. Ownership: a value. Errors: none.
 */
NB_API nb_dist_sampler_options nb_dist_sampler_defaults(void);

/**
 * The sampler of rank rank among num_replicas over a dataset of size examples, at epoch 0;
 * options NULL: the defaults. PyTorch: DistributedSampler(dataset, num_replicas, rank,
 * shuffle, seed, drop_last).
 * Ownership: the caller's; free it with nb_dist_sampler_free().
 * Errors: NULL with NB_EINVAL for size < 0, num_replicas < 1, or a rank outside
 * [0, num_replicas - 1] (PyTorch: "Invalid rank 2, rank should be in the interval [0, 1]");
 * NB_ENOMEM.
 */
NB_API nb_dist_sampler *nb_dist_sampler_new(int64_t size, int num_replicas, int rank,
                                            const nb_dist_sampler_options *options);

/**
 * Free a sampler. PyTorch: none.
 * Ownership: consumes s. Errors: none; NULL is a no-op.
 */
NB_API void nb_dist_sampler_free(nb_dist_sampler *s);

/**
 * Move to epoch: the indices become that epoch's (drawn now; nothing is allocated).
 * PyTorch: DistributedSampler.set_epoch(epoch), then iter(sampler).
 * Ownership: none; an earlier nb_dist_sampler_indices pointer now shows the new indices.
 * Errors: NB_EINVAL for NULL s; NB_ERANGE with shuffle when seed + epoch is 2^64 or more
 * (a sum below 0 is taken mod 2^64, as PyTorch does). The indices are unchanged on error.
 */
NB_API nb_status nb_dist_sampler_set_epoch(nb_dist_sampler *s, int64_t epoch);

/**
 * The number of indices the rank takes each epoch; -1 for NULL.
 * PyTorch: len(sampler) (its num_samples). Ownership: none. Errors: none.
 */
NB_API int64_t nb_dist_sampler_num_samples(const nb_dist_sampler *s);

/**
 * The rank's indices for the current epoch, num_samples of them (into *n, if n is not NULL);
 * NULL for NULL s, or when there are none. PyTorch: list(sampler).
 * Ownership: borrowed from s, valid until it is freed. Errors: none.
 */
NB_API const int64_t *nb_dist_sampler_indices(const nb_dist_sampler *s, int64_t *n);

NB_END_DECLS

#endif /* NABLA_DIST_H */
