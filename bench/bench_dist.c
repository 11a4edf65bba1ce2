/*
 * bench-dist — data-parallel throughput: one training step of the main job's MLP
 * (784-256-128-10, ReLU, binary cross-entropy on one-hot targets, Adam lr 1e-3; built from
 * matmul, add, relu and the loss) on a global batch split across the ranks, each rank one
 * BLAS thread, the gradients averaged with nb_dist_allreduce_grads. Run it under mpirun,
 * once with -np 1 and once with -np 2, and divide (scripts/bench_dist.sh alternates them and
 * prints the medians and the ratio):
 *
 *   mpirun -np 2 bench-dist [--json] [--quick] [--threads 1] [--batch 1024,4096]
 *                           [--steps 10] [--deterministic]
 *
 * Each rank draws its own inputs and labels (uniform in [0, 1), as scaled pixels) once, then
 * runs warm-up steps and timed ones. A step's time is the slowest rank's (every step ends in
 * the gradient average, which waits for all); the row gives the median over the steps, the
 * throughput global_batch / median (examples/s), the median time spent in the average
 * within a step (which includes waiting for a slower rank), and the median time of the
 * average alone, right after a barrier (what the communication itself costs), and the median
 * time of the optimizer step, which every rank runs over all the weights. Rank 0 prints.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/dist.h>
#include <nabla/nabla.h>

#include "bench_util.h"

#define MAX_BATCHES 8
#define MAX_STEPS   1000
#define LAYERS      3

static const int64_t widths[LAYERS + 1] = {784, 256, 128, 10};

typedef struct model {
    nb_tensor *params[2 * LAYERS]; /* w0, b0, w1, b1, w2, b2 */
    nb_optim *opt;
} model;

static int fail(const char *what)
{
    fprintf(stderr, "bench-dist: %s: %s\n", what, nb_last_error()->message);
    return 0;
}

/* PyTorch's Linear init scale: uniform in ±1/sqrt(fan_in). */
static int model_init(model *m)
{
    nb_manual_seed(0);
    for (int l = 0; l < LAYERS; l++) {
        const double bound = 1.0 / sqrt((double)widths[l]);
        nb_tensor *w = nb_empty(NB_SHAPE(widths[l], widths[l + 1]));
        nb_tensor *b = nb_empty(NB_SHAPE(widths[l + 1]));
        if (nb_uniform_(w, -bound, bound, NULL) != NB_OK ||
            nb_uniform_(b, -bound, bound, NULL) != NB_OK)
            return fail("init");
        m->params[2 * l] = nb_requires_grad_(w, true);
        m->params[2 * l + 1] = nb_requires_grad_(b, true);
    }
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    m->opt = nb_optim_new(m->params, 2 * LAYERS, &o);
    return m->opt ? 1 : fail("nb_optim_new");
}

static void model_free(model *m)
{
    nb_optim_free(m->opt);
    for (int i = 0; i < 2 * LAYERS; i++) nb_release(m->params[i]);
}

/* One step on x [b, 784], y [b, 10]; the times of the gradient average and of the
   optimizer (which every rank runs whole) into t[0] and t[1]. */
static nb_status step(nb_dist *d, model *m, nb_tensor *x, nb_tensor *y, double t[2])
{
    nb_scope *s = nb_scope_begin();
    nb_tensor *h = x;
    for (int l = 0; l < LAYERS; l++) {
        h = nb_add(nb_matmul(h, m->params[2 * l]), m->params[2 * l + 1]);
        if (l + 1 < LAYERS) h = nb_relu(h);
    }
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(h, y, NULL, NULL, NB_MEAN);
    nb_status rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
    const double t0 = nbb_now();
    if (rc == NB_OK) rc = nb_dist_allreduce_grads(d, m->params, 2 * LAYERS);
    const double t1 = nbb_now();
    if (rc == NB_OK) rc = nb_optim_step(m->opt);
    t[0] = t1 - t0;
    t[1] = nbb_now() - t1;
    if (rc == NB_OK) rc = nb_optim_zero_grad(m->opt, true);
    nb_scope_end(s);
    return rc;
}

/* One row: the global batch gb split across the ranks. */
static int run(nb_dist *d, const nbb_options *opt, int threads, int64_t gb, int steps,
               bool deterministic)
{
    const int ranks = nb_dist_world_size(d), rank = nb_dist_rank(d);
    if (gb % ranks != 0) {
        if (rank == 0)
            fprintf(stderr, "bench-dist: batch %lld does not split into %d ranks\n", (long long)gb,
                    ranks);
        return 0;
    }
    const int64_t b = gb / ranks;
    model m = {0};
    nb_generator *g = nb_generator_new(1000 + (uint64_t)rank);
    nb_tensor *x = nb_rand_gen(NB_SHAPE(b, widths[0]), g);
    nb_tensor *y = nb_zeros(NB_SHAPE(b, widths[LAYERS]));
    if (!g || !x || !y || !model_init(&m)) return fail("setup");
    for (int64_t i = 0; i < b; i++)
        nb_tensor_data(y)[i * widths[LAYERS] + nb_generator_random(g) % widths[LAYERS]] = 1.0f;
    double t_step[MAX_STEPS], t_avg[MAX_STEPS], t_opt[MAX_STEPS];
    const int warmup = opt->quick ? 1 : 2;
    int ok = 1;
    for (int k = 0; ok && k < warmup + steps; k++) {
        double parts[2] = {0, 0};
        const double t0 = nbb_now();
        if (step(d, &m, x, y, parts) != NB_OK) ok = fail("step");
        double times[3] = {nbb_now() - t0, parts[0], parts[1]};
        /* the slowest rank's step */
        MPI_Allreduce(MPI_IN_PLACE, times, 3, MPI_DOUBLE, MPI_MAX, nb_dist_comm(d));
        if (k >= warmup) {
            t_step[k - warmup] = times[0];
            t_avg[k - warmup] = times[1];
            t_opt[k - warmup] = times[2];
        }
    }
    /* the average alone, the ranks in step (a barrier first): what communication costs
       without the wait for a slower rank */
    double t_alone[MAX_STEPS];
    for (int k = 0; ok && k < steps; k++) {
        nb_scope *s = nb_scope_begin();
        for (int i = 0; i < 2 * LAYERS; i++)
            nb_tensor_set_grad(m.params[i], nb_ones_like(m.params[i]));
        nb_scope_end(s);
        if (nb_dist_barrier(d) != NB_OK) ok = fail("nb_dist_barrier");
        const double t0 = nbb_now();
        if (ok && nb_dist_allreduce_grads(d, m.params, 2 * LAYERS) != NB_OK) ok = fail("average");
        double t = nbb_now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, nb_dist_comm(d));
        t_alone[k] = t;
    }
    if (ok && rank == 0) {
        const double med = nbb_median(t_step, (size_t)steps);
        const double med_avg = nbb_median(t_avg, (size_t)steps);
        const double med_alone = nbb_median(t_alone, (size_t)steps);
        const double med_opt = nbb_median(t_opt, (size_t)steps);
        if (opt->json)
            NBB_JSON_ROW(stdout, NBB_STR("workload", "dist"), NBB_INT("ranks", ranks),
                         NBB_INT("threads", threads), NBB_INT("global_batch", gb),
                         NBB_BOOL("deterministic", deterministic), NBB_INT("steps", steps),
                         NBB_NUM("median_step_s", med), NBB_NUM("median_average_s", med_avg),
                         NBB_NUM("median_average_alone_s", med_alone),
                         NBB_NUM("median_optimizer_s", med_opt),
                         NBB_NUM("examples_per_s", (double)gb / med));
        else
            printf("%5d %7d %12lld %10.2f %10.2f %10.2f %10.2f %12.0f\n", ranks, threads,
                   (long long)gb, med * 1e3, med_avg * 1e3, med_alone * 1e3, med_opt * 1e3,
                   (double)gb / med);
        fflush(stdout);
    }
    model_free(&m);
    nb_release(x);
    nb_release(y);
    nb_generator_free(g);
    return ok;
}

static void usage(void)
{
    printf("usage: mpirun -np RANKS bench-dist [options]\n"
           "  --batch LIST     global batch sizes (default 1024,4096; quick 64)\n"
           "  --steps N        timed steps per batch size (default 10; quick 2)\n"
           "  --deterministic  sum the gradients in rank order (nb_dist_options)\n"
           "  --threads LIST   BLAS threads per rank (default 1)\n");
    nbb_print_usage_threads(stdout, false); /* its --threads is the line above */
}

int main(int argc, char **argv)
{
    /* the mode is the group's: known before it is made */
    nb_dist_options o = {0};
    bool threads_given = false;
    for (int i = 1; i < argc; i++) {
        threads_given = threads_given || strncmp(argv[i], "--threads", 9) == 0;
        o.deterministic = o.deterministic || strcmp(argv[i], "--deterministic") == 0;
    }
    nb_dist *d = nb_dist_init(&argc, &argv, &o);
    if (!d) return !fail("nb_dist_init");
    nbb_options opt;
    int rc = nbb_parse_options(&argc, argv, &opt);
    if (rc != 0) {
        if (rc == 1 && nb_dist_rank(d) == 0) usage();
        nb_dist_finalize(d);
        return rc == 1 ? 0 : 2;
    }
    if (!threads_given) {
        opt.threads[0] = 1;
        opt.n_threads = 1;
    }
    int batches[MAX_BATCHES] = {1024, 4096}, n_batches = 2, steps = opt.quick ? 2 : 10;
    if (opt.quick) {
        batches[0] = 64;
        n_batches = 1;
    }
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = nbb_flag_value(argc, argv, &i, "--batch", &missing))) {
            n_batches = nbb_parse_int_list("--batch", v, 1, 1 << 20, batches, MAX_BATCHES);
            if (n_batches < 0) rc = 2;
        } else if ((v = nbb_flag_value(argc, argv, &i, "--steps", &missing))) {
            int n[1];
            if (nbb_parse_int_list("--steps", v, 1, MAX_STEPS, n, 1) != 1) rc = 2;
            steps = n[0];
        } else if (strcmp(argv[i], "--deterministic") == 0) {
        } else {
            if (!missing)
                fprintf(stderr, "bench-dist: unknown option '%s' (try --help)\n", argv[i]);
            rc = 2;
        }
    }
    if (rc != 0) {
        nb_dist_finalize(d);
        return rc;
    }
    if (nb_dist_rank(d) == 0 && !opt.json)
        printf("ranks threads global_batch    step_ms average_ms   alone_ms   optim_ms   "
               "examples/s\n");
    int ok = 1;
    for (size_t t = 0; ok && t < opt.n_threads; t++) {
        if (nb_set_num_threads(opt.threads[t]) != NB_OK) ok = fail("nb_set_num_threads");
        for (int i = 0; ok && i < n_batches; i++)
            ok = run(d, &opt, opt.threads[t], batches[i], steps, o.deterministic);
    }
    if (!ok) nb_dist_abort(d, NB_ESTATE);
    return nb_dist_finalize(d) == NB_OK ? 0 : 1;
}
