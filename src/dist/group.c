/*
 * The group of ranks: joining and leaving it, the agreement that opens every collective,
 * and how failures reach every rank (or end the job, when the program asked for that).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/internal.h"

/* The largest bucket whose float count an MPI int holds. */
#define BUCKET_CAP_MB_MAX 8191.0
#define MESSAGE_MAX       512

/* MPI as nb_dist_init initialised it (the calls come from one thread at a time): whether
   nabla did and has not finalised it yet, even when that nb_dist_init failed, and how many
   of nb_dist_init's groups are open; the last of them to leave finalises MPI. */
static bool mpi_ours;
static int mpi_groups;

static const char *op_name(int64_t op)
{
    switch (op) {
    case NB__DIST_BARRIER:
        return "nb_dist_barrier";
    case NB__DIST_BROADCAST:
        return "nb_dist_broadcast";
    case NB__DIST_BROADCAST_STATE_DICT:
        return "nb_dist_broadcast_state_dict";
    case NB__DIST_ALLREDUCE_GRADS:
        return "nb_dist_allreduce_grads";
    case NB__DIST_ALL_REDUCE:
        return "nb_dist_all_reduce";
    case NB__DIST_FINALIZE:
        return "nb_dist_finalize";
    case NB__DIST_INIT:
        return "nb_dist_init";
    case NB__DIST_FROM_COMM:
        return "nb_dist_from_comm";
    }
    return "?";
}

uint64_t nb__dist_digest(uint64_t h, uint64_t word)
{
    for (int i = 0; i < 8; i++) {
        h ^= (word >> (8 * i)) & 0xffu;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

uint64_t nb__dist_digest_str(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return nb__dist_digest(h, 0); /* the end of the string: "ab","c" differs from "a","bc" */
}

uint64_t nb__dist_digest_shape(uint64_t h, const nb_tensor *t)
{
    const int nd = nb_tensor_ndim(t);
    const int64_t *shape = nb_tensor_shape(t);
    h = nb__dist_digest(h, (uint64_t)nd);
    for (int i = 0; i < nd; i++) h = nb__dist_digest(h, (uint64_t)shape[i]);
    return h;
}

/* ---- failures ------------------------------------------------------------------------- */

void nb__dist_die(nb_dist *d)
{
    /* the program asked for this (abort_on_error, nb_dist_abort): reading the error is its
       last use */
    const nb_error *e = nb_last_error();
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    /* MPI_Abort is allowed only between MPI's initialisation and its finalisation */
    const bool live = inited && !finalized;
    int rank = d ? d->rank : 0;
    if (!d && live) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (d || live)
        fprintf(stderr, "rank %d: %s\n", rank, e->message);
    else
        fprintf(stderr, "%s\n", e->message);
    fflush(stderr);
    if (live) MPI_Abort(d ? d->comm : MPI_COMM_WORLD, 1);
    exit(1); /* without MPI; or in case an implementation's MPI_Abort returns */
}

nb_status nb__dist_fail(nb_dist *d, nb_status code, const char *fn, const char *fmt, ...)
{
    char cause[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    nb_error_set(code, fn, "%s", cause);
    if (d && d->o.abort_on_error) nb__dist_die(d);
    return code;
}

nb_status nb__dist_mpi_error(nb_dist *d, const char *fn, const char *what, int rc)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    return nb__dist_fail(d, NB_EIO, fn, "%s failed: %s", what, text);
}

/* ---- the agreement -------------------------------------------------------------------- */

/* Header slots, all reduced with MPI_MAX: a value v and -v give its maximum and minimum. */
enum { H_FAIL, H_OP, H_OP_NEG, H_DIGEST, H_DIGEST_NEG, H_AUX, H_AUX_NEG, H_HAVE_NEG, H_N };

/* Wait for req, for at most the group's timeout; past it, end the job with a message. */
static int wait_timed(nb_dist *d, const char *fn, MPI_Request *req)
{
    const double start = MPI_Wtime();
    for (long spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        if (MPI_Wtime() - start > d->o.timeout_s) {
            nb_error_set(NB_ESTATE, fn,
                         "not every rank joined within the timeout of %g s (one failed, hangs, "
                         "or is in a call outside nabla)",
                         d->o.timeout_s);
            nb__dist_die(d);
        }
        /* a rank that waits long should leave its core to the ranks still computing */
        if (spins > 1000) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

/* The cause of this rank's own failure, as sent to the others: the message without a
   leading "fn: ", which every rank puts back. */
static void local_cause(const char *fn, char *out, size_t size)
{
    /* nb_last_error() marks the error read; the agreement records it again at once */
    const char *m = nb_last_error()->message;
    const size_t n = strlen(fn);
    if (strncmp(m, fn, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
    snprintf(out, size, "%s", m);
}

nb_status nb__dist_agree(nb_dist *d, const nb__dist_call *c, int64_t *min_have)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return nb__dist_fail(d, NB_ESTATE, c->fn, "MPI was finalized already");
    /* a rank that failed by itself tells the others, unless the job ends here */
    if (c->local != NB_OK && d->o.abort_on_error) nb__dist_die(d);
    int64_t h[H_N] = {
        c->local != NB_OK ? -(int64_t)d->rank : -(int64_t)d->size,
        c->op,
        -(int64_t)c->op,
        (int64_t)(c->digest >> 2), /* 62 bits: -digest does not overflow */
        -(int64_t)(c->digest >> 2),
        c->aux,
        -c->aux,
        -c->have,
    };
    /* non-blocking on every rank, with a timeout or not: MPI matches a non-blocking
       collective only with non-blocking ones, and each rank picks its own timeout */
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, h, H_N, MPI_INT64_T, MPI_MAX, d->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = d->o.timeout_s > 0 ? wait_timed(d, c->fn, &req) : MPI_Wait(&req, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return nb__dist_mpi_error(d, c->fn, "MPI_Allreduce", rc);

    /* ranks in different calls first: a failing rank's cause is about its own call, and
       every rank must learn that the group is out of step */
    if (h[H_OP] != -h[H_OP_NEG])
        return nb__dist_fail(d, NB_ESTATE, c->fn, "the ranks are in different calls (%s and %s)",
                             op_name(-h[H_OP_NEG]), op_name(h[H_OP]));
    const int failed = (int)-h[H_FAIL];
    if (failed < d->size) {
        /* the failing rank's code and cause, to every rank */
        struct {
            int32_t code;
            char cause[MESSAGE_MAX];
        } m = {(int32_t)c->local, ""};
        if (failed == d->rank) local_cause(c->fn, m.cause, sizeof m.cause);
        rc = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, failed, d->comm);
        if (rc != MPI_SUCCESS) return nb__dist_mpi_error(d, c->fn, "MPI_Bcast", rc);
        m.cause[MESSAGE_MAX - 1] = '\0';
        return nb__dist_fail(d, (nb_status)m.code, c->fn, "rank %d: %s", failed, m.cause);
    }
    if (h[H_DIGEST] != -h[H_DIGEST_NEG])
        return nb__dist_fail(d, NB_ESHAPE, c->fn, "%s", c->mismatch);
    if (h[H_AUX] != -h[H_AUX_NEG])
        return nb__dist_fail(d, NB_EINVAL, c->fn, "the ranks give different %s (%lld and %lld)",
                             c->aux_name, (long long)-h[H_AUX_NEG], (long long)h[H_AUX]);
    if (min_have) *min_have = -h[H_HAVE_NEG];
    return NB_OK;
}

/* ---- joining and leaving -------------------------------------------------------------- */

static nb_status check_options(const char *fn, const nb_dist_options *o)
{
    if (!(o->bucket_cap_mb >= 0 && o->bucket_cap_mb <= BUCKET_CAP_MB_MAX))
        return nb_error_set(NB_EINVAL, fn, "bucket_cap_mb must be in [0, %g] (0: 25), got %g",
                            BUCKET_CAP_MB_MAX, o->bucket_cap_mb);
    if (!(o->timeout_s >= 0 && isfinite(o->timeout_s)))
        return nb_error_set(NB_EINVAL, fn,
                            "timeout_s must be finite and non-negative (0: none), got %g",
                            o->timeout_s);
    return NB_OK;
}

/*
 * A group on a duplicate of comm (MPI initialised); NULL with the error recorded. Collective
 * whatever happens here: a rank whose options are bad or whose memory runs out still joins
 * the duplication and the agreement, so that every rank fails together.
 */
static nb_dist *join(const char *fn, nb__dist_op op, MPI_Comm comm, const nb_dist_options *o,
                     bool owns_mpi)
{
    nb_dist tmp = {.comm = MPI_COMM_NULL, .o = *o, .owns_mpi = owns_mpi};
    nb__dist_call c = {.fn = fn,
                       .op = op,
                       .mismatch = "the ranks' options differ (bucket_cap_mb or deterministic)"};
    c.local = check_options(fn, o);
    if (c.local != NB_OK) tmp.o.timeout_s = 0; /* a bad one; the agreement reports it */
    MPI_Comm_size(comm, &tmp.size);
    MPI_Comm_rank(comm, &tmp.rank);
    /* (bad options fail below, whatever the size comes to here) */
    const double mb = c.local == NB_OK && o->bucket_cap_mb > 0 ? o->bucket_cap_mb : 25.0;
    tmp.bucket_elems = (int64_t)(mb * 1024.0 * 1024.0 / (double)sizeof(float));
    if (tmp.bucket_elems < 1) tmp.bucket_elems = 1;
    c.digest = nb__dist_digest(nb__dist_digest(NB__DIST_DIGEST0, (uint64_t)tmp.bucket_elems),
                               o->deterministic);
    nb_dist *d = NULL;
    if (c.local == NB_OK) {
        d = nb_alloc(sizeof *d, 0);
        tmp.counts = d ? nb_alloc(4 * (size_t)tmp.size * sizeof(int), 0) : NULL;
        if (!tmp.counts) c.local = nb_error_set(NB_ENOMEM, fn, "out of memory");
    }
    /* non-blocking, so that the timeout covers a rank that never comes here too; until the
       duplicate exists, a timeout ends the job through comm */
    nb_dist parent = tmp;
    parent.comm = comm;
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request req;
    int rc = MPI_Comm_idup(comm, &dup, &req);
    if (rc == MPI_SUCCESS)
        rc =
            tmp.o.timeout_s > 0 ? wait_timed(&parent, fn, &req) : MPI_Wait(&req, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS) tmp.comm = dup;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(tmp.comm, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        nb__dist_mpi_error(NULL, fn, "MPI_Comm_idup", rc);
        goto fail;
    }
    if (nb__dist_agree(&tmp, &c, NULL) != NB_OK) goto fail;
    *d = tmp;
    d->displs = d->counts + d->size;
    d->rcounts = d->displs + d->size;
    d->rdispls = d->rcounts + d->size;
    return d;
fail:
    if (tmp.comm != MPI_COMM_NULL) MPI_Comm_free(&tmp.comm);
    nb_free(tmp.counts);
    nb_free(d);
    return NULL;
}

nb_dist *nb_dist_init(int *argc, char ***argv, const nb_dist_options *options)
{
    static const char fn[] = "nb_dist_init";
    nb_dist_options o = {0};
    if (options) o = *options;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) {
        nb_error_set(NB_ESTATE, fn, "MPI was finalized already");
        return NULL;
    }
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) {
            nb__dist_mpi_error(NULL, fn, "MPI_Init_thread", rc);
            return NULL;
        }
        mpi_ours = true;
    }
    nb_dist *d = join(fn, NB__DIST_INIT, MPI_COMM_WORLD, &o, mpi_ours);
    if (d && d->owns_mpi) mpi_groups++;
    return d;
}

nb_dist *nb_dist_from_comm(MPI_Comm comm, const nb_dist_options *options)
{
    static const char fn[] = "nb_dist_from_comm";
    nb_dist_options o = {0};
    if (options) o = *options;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) {
        nb_error_set(NB_ESTATE, fn, "MPI was finalized already");
        return NULL;
    }
    if (!inited) {
        nb_error_set(NB_ESTATE, fn, "MPI is not initialized (the program owns MPI here)");
        return NULL;
    }
    if (comm == MPI_COMM_NULL) {
        nb_error_set(NB_EINVAL, fn, "comm is MPI_COMM_NULL");
        return NULL;
    }
    /* every rank of an intercommunicator finds it one (its collectives join two groups) */
    int inter = 0;
    int rc = MPI_Comm_test_inter(comm, &inter);
    if (rc != MPI_SUCCESS) {
        nb__dist_mpi_error(NULL, fn, "MPI_Comm_test_inter", rc);
        return NULL;
    }
    if (inter) {
        nb_error_set(NB_EINVAL, fn,
                     "comm is an intercommunicator (an intracommunicator is needed)");
        return NULL;
    }
    return join(fn, NB__DIST_FROM_COMM, comm, &o, false);
}

void nb__dist_free_buffers(nb_dist *d)
{
    for (int64_t i = 0; i < d->temps_cap; i++) nb_release(d->temps[i]);
    nb_free(d->buf);
    nb_free(d->scratch);
    nb_free(d->segs);
    nb_free(d->flags);
    nb_free(d->repeat);
    nb_free(d->order);
    nb_free(d->temps);
    nb_free(d->counts);
}

nb_status nb_dist_finalize(nb_dist *d)
{
    static const char fn[] = "nb_dist_finalize";
    if (!d) return NB_OK;
    nb__dist_call c = {.fn = fn, .op = NB__DIST_FINALIZE};
    nb_status st = nb__dist_agree(d, &c, NULL);
    /* the others are elsewhere: the communicator cannot be freed nor MPI finalised, or a
       rank would wait for ever; the process must end (or abort) with MPI as it is */
    const bool last = d->owns_mpi && --mpi_groups == 0;
    if (st == NB_OK) {
        int rc = MPI_Comm_free(&d->comm);
        if (rc != MPI_SUCCESS) st = nb__dist_mpi_error(NULL, fn, "MPI_Comm_free", rc);
        if (rc == MPI_SUCCESS && last) {
            mpi_ours = false;
            if ((rc = MPI_Finalize()) != MPI_SUCCESS)
                st = nb__dist_mpi_error(NULL, fn, "MPI_Finalize", rc);
        }
    }
    nb__dist_free_buffers(d);
    nb_free(d);
    return st;
}

void nb_dist_abort(nb_dist *d, nb_status status)
{
    if (nb_last_error()->code == NB_OK)
        nb_error_set(NB_ESTATE, "nb_dist_abort", "the job was ended (%s)", nb_status_name(status));
    nb__dist_die(d);
}

int nb_dist_rank(const nb_dist *d)
{
    return d ? d->rank : -1;
}

int nb_dist_world_size(const nb_dist *d)
{
    return d ? d->size : -1;
}

MPI_Comm nb_dist_comm(const nb_dist *d)
{
    return d ? d->comm : MPI_COMM_NULL;
}

nb_status nb_dist_barrier(nb_dist *d)
{
    static const char fn[] = "nb_dist_barrier";
    if (!d) return nb_error_null(fn, "d");
    /* an allreduce completes on no rank before every rank has joined it */
    nb__dist_call c = {.fn = fn, .op = NB__DIST_BARRIER};
    return nb__dist_agree(d, &c, NULL);
}
