/*
 * A data-parallel training job as a program runs it (nb_dist_init, mpirun), for the tests
 * of how a job ends (tests/dist/RunJob.cmake):
 *   dist-job train [--deterministic] [--out FILE]  20 steps; rank 0 writes the weights
 *   dist-job fail            rank 1's step fails; its error path ends the job (nb_dist_abort)
 *   dist-job leave           rank 1's step fails; its error path calls nb_dist_finalize
 *   dist-job abort-on-error  abort_on_error; rank 1 passes a bad argument to the average
 *   dist-job hang            timeout_s 2; rank 1 stops answering (sleeps a minute)
 *   dist-job hang-init       timeout_s 2; rank 1 sleeps a minute before nb_dist_init
 *   dist-job exit            rank 1 exits in the middle of the run
 *   dist-job init-retry      nb_dist_init with bad options, then with good ones
 *   dist-job init-twice      two groups of nb_dist_init, finalised in the order made
 *   dist-job after-finalize  the program finalises its MPI while a group is open
 *   dist-job after-finalize-abort   the same with abort_on_error: the error ends the process
 * Failures come at step 3, on rank 1; the program prints "rank R: <error>" when it gets one.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_model.h"

typedef struct job {
    const char *mode;
    int rank;
} job;

static nb_status misbehave(void *ctx, dm_model *m, int step, dm_phase phase)
{
    const job *j = ctx;
    if (j->rank != 1 || step != 3 || phase != DM_AFTER_BACKWARD) return NB_OK;
    if (!strcmp(j->mode, "fail") || !strcmp(j->mode, "leave")) {
        /* a forward that goes wrong: [8, 16] @ [8, 16] */
        if (!nb_matmul(m->params[0], m->params[0])) return nb_last_error()->code;
    } else if (!strcmp(j->mode, "abort-on-error")) {
        m->n = -1;
    } else if (!strcmp(j->mode, "hang")) {
        sleep(60);
    } else if (!strcmp(j->mode, "exit")) {
        exit(3);
    }
    return NB_OK;
}

/* The first nb_dist_init initialises MPI and fails: the second's group finalises MPI. */
static int init_retry(int *argc, char ***argv)
{
    nb_dist_options bad = {.bucket_cap_mb = -1};
    if (nb_dist_init(argc, argv, &bad)) return 1;
    nb_dist *d = nb_dist_init(argc, argv, NULL);
    if (!d) {
        fprintf(stderr, "%s\n", nb_last_error()->message);
        return 1;
    }
    const int rank = nb_dist_rank(d);
    nb_status st = nb_dist_finalize(d);
    int finalized = 0;
    MPI_Finalized(&finalized);
    printf("rank %d: nb_dist_finalize %s, MPI finalized: %d\n", rank, nb_status_name(st),
           finalized);
    return st == NB_OK && finalized ? 0 : 1;
}

/* Two groups of nb_dist_init: the first to leave leaves MPI to the other, the last
   finalises it. */
static int init_twice(int *argc, char ***argv)
{
    nb_dist *a = nb_dist_init(argc, argv, NULL), *b = a ? nb_dist_init(argc, argv, NULL) : NULL;
    if (!b) {
        fprintf(stderr, "%s\n", nb_last_error()->message);
        return 1;
    }
    const int rank = nb_dist_rank(b);
    nb_status st = nb_dist_finalize(a);
    int early = 1, finalized = 0;
    MPI_Finalized(&early);
    if (st == NB_OK && !early) st = nb_dist_barrier(b);
    nb_status end = nb_dist_finalize(b);
    MPI_Finalized(&finalized);
    printf("rank %d: %s, %s, MPI finalized: %d then %d\n", rank, nb_status_name(st),
           nb_status_name(end), early, finalized);
    return st == NB_OK && end == NB_OK && !early && finalized ? 0 : 1;
}

/* The program owns MPI and finalises it with a group open: the group's calls fail (with
   abort_on_error, they end the process: MPI_Abort is not allowed any more). */
static int after_finalize(int *argc, char ***argv, bool abort_on_error)
{
    MPI_Init(argc, argv);
    nb_dist_options o = {.abort_on_error = abort_on_error};
    nb_dist *d = nb_dist_from_comm(MPI_COMM_WORLD, &o);
    if (!d) return 1;
    const int rank = nb_dist_rank(d);
    MPI_Finalize();
    nb_status st = nb_dist_barrier(d);
    printf("rank %d: %s\n", rank, nb_last_error()->message);
    nb_status end = nb_dist_finalize(d);
    printf("rank %d: %s\n", rank, nb_last_error()->message);
    /* and no new group */
    nb_dist *again = nb_dist_from_comm(MPI_COMM_WORLD, NULL);
    printf("rank %d: %s\n", rank, nb_last_error()->message);
    return st == NB_ESTATE && end == NB_ESTATE && !again ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "train", *out = NULL;
    nb_dist_options o = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--deterministic")) o.deterministic = true;
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    }
    if (!strcmp(mode, "init-retry")) return init_retry(&argc, &argv);
    if (!strcmp(mode, "init-twice")) return init_twice(&argc, &argv);
    if (!strcmp(mode, "after-finalize")) return after_finalize(&argc, &argv, false);
    if (!strcmp(mode, "after-finalize-abort")) return after_finalize(&argc, &argv, true);
    o.abort_on_error = !strcmp(mode, "abort-on-error");
    if (!strcmp(mode, "hang") || !strcmp(mode, "hang-init")) o.timeout_s = 2;
    if (!strcmp(mode, "hang-init")) {
        /* MPI is the program's here, so that the sleeping rank is known before the group */
        MPI_Init(&argc, &argv);
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (rank == 1) sleep(60);
    }
    nb_set_num_threads(1);
    nb_dist *d = nb_dist_init(&argc, &argv, &o);
    if (!d) {
        fprintf(stderr, "%s\n", nb_last_error()->message);
        return 1;
    }
    job j = {mode, nb_dist_rank(d)};
    dm_model m;
    nb_dataset *ds = dm_dataset();
    nb_status rc = ds ? dm_model_init(&m, 1 + (uint64_t)j.rank) : nb_last_error()->code;
    if (rc == NB_OK) rc = nb_dist_broadcast(d, m.params, DM_PARAMS, 0);
    if (rc == NB_OK) rc = dm_train(d, &m, ds, 8, 20, misbehave, &j);
    if (rc != NB_OK && !strcmp(mode, "fail")) nb_dist_abort(d, rc); /* does not return */
    if (rc != NB_OK) fprintf(stderr, "rank %d: %s\n", j.rank, nb_last_error()->message);
    if (rc == NB_OK && out && j.rank == 0) {
        FILE *f = fopen(out, "w");
        for (int i = 0; f && i < DM_PARAMS; i++)
            for (int64_t k = 0; k < nb_tensor_numel(m.params[i]); k++)
                fprintf(f, "%a\n", (double)nb_tensor_data_const(m.params[i])[k]);
        if (!f || fclose(f) != 0) rc = NB_EIO;
    }
    dm_model_free(&m);
    nb_dataset_free(ds);
    nb_status end = nb_dist_finalize(d);
    if (end != NB_OK) fprintf(stderr, "rank %d: %s\n", j.rank, nb_last_error()->message);
    return rc == NB_OK && end == NB_OK ? 0 : 1;
}
