/*
 * Internal definitions of nabla's MPI part (libnabla_dist): the group, the agreement every
 * collective starts with, and the buffers gradients travel in. Never installed.
 *
 * libnabla_dist is a library of its own on top of libnabla: it reaches nabla through the
 * public headers and nabla/extend.h only (a shared libnabla hides core's nb__ helpers).
 */
#ifndef NABLA_DIST_INTERNAL_H
#define NABLA_DIST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "nabla/autograd.h"
#include "nabla/dist.h"
#include "nabla/extend.h"

/* Which function of dist.h a rank is in: the agreement compares them. */
typedef enum nb__dist_op {
    NB__DIST_BARRIER = 1,
    NB__DIST_BROADCAST,
    NB__DIST_BROADCAST_STATE_DICT,
    NB__DIST_ALLREDUCE_GRADS,
    NB__DIST_ALL_REDUCE,
    NB__DIST_FINALIZE,
    NB__DIST_INIT,
    NB__DIST_FROM_COMM,
} nb__dist_op;

/* A piece of float data that travels through the bucket. */
typedef struct nb__dist_seg {
    float *data;
    int64_t n;
} nb__dist_seg;

struct nb_dist {
    MPI_Comm comm; /* nabla's duplicate of the program's communicator */
    int rank, size;
    bool owns_mpi; /* nb_dist_init initialised MPI: nb_dist_finalize finalises it */
    nb_dist_options o;
    int64_t bucket_elems; /* floats in a bucket */

    /* Kept from call to call, so that a warm training step allocates nothing. */
    float *buf; /* the bucket */
    int64_t buf_cap;
    float *scratch; /* deterministic sums: every rank's copy of this rank's chunk */
    int64_t scratch_cap;
    nb__dist_seg *segs;
    int64_t segs_cap;
    unsigned char *flags; /* per parameter: has a gradient */
    int64_t flags_cap;
    unsigned char *repeat; /* per parameter: listed before (its gradient goes once) */
    int64_t repeat_cap;
    struct nb__dist_param_at *order; /* the parameters sorted, to find the repeats */
    int64_t order_cap;
    nb_tensor **temps; /* zero gradients for parameters that have none here */
    int64_t temps_cap;
    int *counts, *displs, *rcounts, *rdispls; /* size entries each, for v-collectives */
};

/*
 * One rank's side of the agreement that opens every collective: which function it is in,
 * a digest of the arguments that must be the same everywhere (sizes, names), a value that
 * must agree (a root, an op), a count whose minimum is wanted, and this rank's own checks.
 */
typedef struct nb__dist_call {
    const char *fn;       /* the public function */
    nb__dist_op op;       /* the same on every rank */
    uint64_t digest;      /* the same on every rank */
    const char *mismatch; /* the cause when the digests differ */
    int64_t aux;          /* the same on every rank */
    const char *aux_name; /* what aux is, for the message ("roots") */
    int64_t have;         /* the minimum over the ranks comes back in min_have */
    nb_status local;      /* NB_OK, or the error this rank recorded */
} nb__dist_call;

/*
 * Agree with every rank on c: NB_OK, or the same error on every rank, the first of: ranks
 * in different functions (NB_ESTATE), the failure of the lowest failing rank ("fn: rank R:
 * cause", its code), differing digests (NB_ESHAPE) or aux values (NB_EINVAL); NB_EIO when
 * MPI fails. With abort_on_error, ends the job instead of returning an error. min_have may be
 * NULL.
 */
nb_status nb__dist_agree(nb_dist *d, const nb__dist_call *c, int64_t *min_have);

/*
 * Record code for fn (nb_error_set's formatting) and return it; with abort_on_error, end
 * the job with the message instead.
 */
nb_status nb__dist_fail(nb_dist *d, nb_status code, const char *fn, const char *fmt, ...)
    NB__FORMAT(4, 5);
/* An MPI call (named what) returned rc: NB_EIO "fn: what failed: <MPI's text>". */
nb_status nb__dist_mpi_error(nb_dist *d, const char *fn, const char *what, int rc);
/* Write "rank R: <the thread's last error message>" to stderr and end the job (this process
   alone, with exit status 1, where MPI is not initialised or was finalised). */
NB__NORETURN void nb__dist_die(nb_dist *d);

/* FNV-1a over 64-bit words and bytes, for the agreement's digests. */
uint64_t nb__dist_digest(uint64_t h, uint64_t word);
uint64_t nb__dist_digest_str(uint64_t h, const char *s);
#define NB__DIST_DIGEST0 UINT64_C(14695981039346656037)
/* The digest of a tensor's shape (ndim, then the sizes). */
uint64_t nb__dist_digest_shape(uint64_t h, const nb_tensor *t);

/* Free the buffers of d (the group's own memory, not its communicator). */
void nb__dist_free_buffers(nb_dist *d);

#endif /* NABLA_DIST_INTERNAL_H */
