/*
 * nabla-train: an MLP on Fashion-MNIST (or any dataset of the MNIST family) from disk to a
 * trained, saved model. The next lesson after the notebook: a dataset, a model, a loss, an
 * optimizer, the loop, evaluation under no-grad each epoch, and a checkpoint PyTorch reads.
 *
 *   nabla-train [--data DIR] [--epochs N] [--batch B] [--lr LR] [--optim sgd|adam|adamw|rmsprop]
 *               [--hidden 256,128] [--seed S] [--threads T] [--no-shuffle]
 *               [--save FILE.safetensors] [--load FILE.safetensors] [--json] [--steps N]
 *               [--no-progress] [--dist]
 *
 * With --dist, under mpirun, the ranks train one model data-parallel (libnabla_dist): the
 * global batch is split across them, DistributedSampler-style, the gradients averaged after
 * every backward; the test set is shared out for evaluation and the figures summed; only
 * rank 0 prints and saves.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer.h"

#ifdef NABLA_TRAIN_DIST
#include <nabla/dist.h>
#endif

static void usage(FILE *f)
{
    fputs("usage: nabla-train [options]\n"
          "  --data DIR         the MNIST-family IDX files (default "
          "/usr/share/datasets/fashion-mnist)\n"
          "  --epochs N         epochs (default 15; 0 with --save writes the initial model)\n"
          "  --batch B          batch size (default 128)\n"
          "  --lr LR            learning rate (default 1e-3)\n"
          "  --optim NAME       sgd, adam (default), adamw or rmsprop\n"
          "  --hidden LIST      hidden layer sizes (default 256,128)\n"
          "  --seed S           seed of the generator (default 0)\n"
          "  --threads T        threads for BLAS and nabla's loops\n"
          "  --no-shuffle       the training set in order\n"
          "  --save FILE        write the model as safetensors after training\n"
          "  --load FILE        start from the model in FILE (same architecture)\n"
          "  --json             one JSON object per epoch on stdout\n"
          "  --no-progress      no progress bar, even on a terminal (mpirun gives rank 0 a\n"
          "                     terminal even when its output goes to a file)\n"
          "  --steps N          stop after N training steps in all\n"
#ifdef NABLA_TRAIN_DIST
          "  --dist             data-parallel over the ranks of mpirun (--batch is global)\n"
#endif
          ,
          f);
}

/* The options that take a value. */
static const char *const valued[] = {"--data",   "--epochs",  "--batch", "--steps",
                                     "--seed",   "--threads", "--lr",    "--optim",
                                     "--hidden", "--save",    "--load",  NULL};

/* Parse argv into o; false (with a message) on a bad option. */
static bool parse(int argc, char **argv, trainer_options *o, bool *dist, bool *no_progress)
{
    (void)dist; /* set only where nabla-train is built with --dist */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n = 0;
        bool takes = true, ok = true;
        if (trainer_missing_value("nabla-train", a, v, valued)) return false;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-shuffle")) {
            o->shuffle = false, takes = false;
        } else if (!strcmp(a, "--json")) {
            o->json = true, takes = false;
        } else if (!strcmp(a, "--no-progress")) {
            *no_progress = true, takes = false;
#ifdef NABLA_TRAIN_DIST
        } else if (!strcmp(a, "--dist")) {
            *dist = true, takes = false;
#endif
        } else if (!strcmp(a, "--data")) {
            o->data_dir = v;
        } else if (!strcmp(a, "--epochs")) {
            ok = trainer_parse_int(v, 0, 100000, &n), o->epochs = (int)n;
        } else if (!strcmp(a, "--batch")) {
            ok = trainer_parse_int(v, 1, INT64_MAX, &o->batch);
        } else if (!strcmp(a, "--steps")) {
            ok = trainer_parse_int(v, 1, INT64_MAX, &o->max_steps);
        } else if (!strcmp(a, "--seed")) {
            ok = trainer_parse_seed(v, &o->seed);
        } else if (!strcmp(a, "--threads")) {
            ok = trainer_parse_int(v, 1, 1024, &n), o->threads = (int)n;
        } else if (!strcmp(a, "--lr")) {
            ok = trainer_parse_double(v, 0, true, &o->lr);
        } else if (!strcmp(a, "--optim")) {
            if (!strcmp(v, "sgd"))
                o->optim = NB_OPTIM_SGD;
            else if (!strcmp(v, "adam"))
                o->optim = NB_OPTIM_ADAM;
            else if (!strcmp(v, "adamw"))
                o->optim = NB_OPTIM_ADAMW;
            else if (!strcmp(v, "rmsprop"))
                o->optim = NB_OPTIM_RMSPROP;
            else
                ok = false;
        } else if (!strcmp(a, "--hidden")) {
            ok = trainer_parse_list(v, 1, INT64_MAX, o->hidden, TRAINER_MAX_HIDDEN, &o->n_hidden);
        } else if (!strcmp(a, "--save")) {
            o->save = v;
        } else if (!strcmp(a, "--load")) {
            o->load = v;
        } else {
            fprintf(stderr, "nabla-train: unknown option '%s'\n", a);
            usage(stderr);
            return false;
        }
        if (!ok) {
            fprintf(stderr, "nabla-train: bad value for %s: '%s'\n", a, v);
            return false;
        }
        if (takes) i++;
    }
    return true;
}

/* The progress bar, on a terminal: epoch, batch, loss, examples/s, time left. */
typedef struct progress {
    bool tty;
    int epochs;
    double start, last;
} progress;

static void on_step(int epoch, int64_t batch, int64_t n_batches, int64_t examples, double loss,
                    void *ctx)
{
    progress *p = ctx;
    double now = trainer_now();
    if (!p->tty || (now - p->last < 0.1 && batch < n_batches)) return;
    p->last = now;
    double took = now - p->start + 1e-9;
    double rate = (double)examples / took,
           left = took / (double)batch * (double)(n_batches - batch);
    int width = 24, done = (int)(width * batch / n_batches);
    printf("\repoch %2d/%d [%.*s%*s] %lld/%lld  loss %.4f  %.0f ex/s  %3.0fs left ", epoch,
           p->epochs, done, "########################", width - done, "", (long long)batch,
           (long long)n_batches, loss, rate, left);
    fflush(stdout);
}

/* The ranks of a --dist run (rank 0 of 1 otherwise). */
typedef struct ranks {
#ifdef NABLA_TRAIN_DIST
    nb_dist *dist;
    nb_tensor **params;
    int n_params;
#endif
    int rank, world;
} ranks;

static ranks group = {.world = 1};

/* A failure: "what: why" on stderr (why NULL: nabla's last error); under --dist the job ends
 * on every rank. The exit status, 1. */
static int fail(const char *what, const char *why)
{
#ifdef NABLA_TRAIN_DIST
    if (group.dist) {
        fprintf(stderr, "nabla-train: rank %d: %s%s%s\n", group.rank, what, why ? ": " : "",
                why ? why : "");
        if (why) nb_error_clear();
        nb_dist_abort(group.dist, why ? NB_EINVAL : nb_last_error()->code); /* "rank R: <cause>" */
    }
#endif
    fprintf(stderr, "nabla-train: %s: %s\n", what, why ? why : nb_last_error()->message);
    return 1;
}

/* A failure in main: its message, then the cleanup at out, exit status 1. */
#define FAIL(what, why)                                                                            \
    do {                                                                                           \
        status = fail(what, why);                                                                  \
        goto out;                                                                                  \
    } while (0)

#ifdef NABLA_TRAIN_DIST
/* After backward: every rank gets the average of the ranks' gradients. */
static nb_status average_grads(void *ctx)
{
    (void)ctx;
    return nb_dist_allreduce_grads(group.dist, group.params, group.n_params);
}

/* Sum (or average) the n values v over the ranks, in place. */
static nb_status reduce_values(ranks *g, double *v, int n, nb_dist_op op)
{
    float f[4];
    for (int i = 0; i < n; i++) f[i] = (float)v[i];
    nb_tensor *t = nb_from_data(f, NB_SHAPE(n));
    nb_status rc = t ? nb_dist_all_reduce(g->dist, t, op) : nb_last_error()->code;
    for (int i = 0; rc == NB_OK && i < n; i++) v[i] = (double)nb_tensor_data(t)[i];
    nb_release(t);
    return rc;
}
#endif

int main(int argc, char **argv)
{
    trainer_options o = trainer_defaults();
    bool dist = false, no_progress = false;
    if (!parse(argc, argv, &o, &dist, &no_progress)) return 2;
    int status = 0; /* the exit status */
    nb_dataset *train = NULL, *test = NULL;
    nb_module *model = NULL;
    nb_optim *opt = NULL;
    nb_dataloader *loader = NULL;
    const char *why;
    char message[128];
#ifdef NABLA_TRAIN_DIST
    nb_dist_sampler *sampler = NULL;
    int64_t *test_share = NULL, n_test_share = 0;
    if (dist) {
        if (!(group.dist = nb_dist_init(&argc, &argv, NULL))) return fail("--dist", NULL);
        group.rank = nb_dist_rank(group.dist);
        group.world = nb_dist_world_size(group.dist);
        if (o.batch % group.world) {
            if (group.rank == 0)
                fprintf(stderr, "nabla-train: --batch %lld is not a multiple of the %d ranks\n",
                        (long long)o.batch, group.world);
            status = 2;
            goto out;
        }
    }
#endif
    const bool talk = group.rank == 0; /* only rank 0 prints and saves */
    /* the file the model goes to, before a long run is spent on it */
    if (o.save && talk && (why = trainer_save_problem(o.save))) FAIL(o.save, why);
    if (o.threads && nb_set_num_threads(o.threads) != NB_OK) FAIL("threads", NULL);

    /* the data: uint8 images in memory, float batches made per step */
    train = nb_mnist_load(o.data_dir, true); /* the test set after it: the first error stays */
    test = train ? nb_mnist_load(o.data_dir, false) : NULL;
    if (!train || !test) FAIL("data", NULL);
    if ((why = trainer_sets_mismatch(train, test, message, sizeof message))) FAIL("data", why);
    /* as many outputs as the labels of both sets need (10 for the MNIST family, the
     * reference's nn.Linear(inp, 10)), so that evaluation takes any test label */
    int64_t features = nb_dataset_example_size(train), classes = nb_dataset_num_classes(train);
    if (nb_dataset_num_classes(test) > classes) classes = nb_dataset_num_classes(test);

    /* the model and the optimizer, drawn from the seed as PyTorch draws them */
    nb_manual_seed(o.seed);
    model = trainer_model(features, o.hidden, o.n_hidden, classes);
    if (!model) FAIL("model", NULL);
    if (o.load) {
        nb_state_dict *d = nb_safetensors_load(o.load);
        nb_status rc = d ? nb_module_load_state_dict(model, d, true) : nb_last_error()->code;
        nb_state_dict_free(d);
        if (rc != NB_OK) FAIL(o.load, NULL);
    }
    nb_tensor *params[2 * TRAINER_MAX_HIDDEN + 2];
    int n_params = nb_module_parameters(model, params, 2 * TRAINER_MAX_HIDDEN + 2);
    nb_optim_options oo = nb_optim_defaults(o.optim);
    oo.lr = o.lr;
    opt = n_params > 0 ? nb_optim_new(params, n_params, &oo) : NULL;
    if (!opt) FAIL("optimizer", NULL);
    nb_dataloader_options lo = {.batch_size = o.batch / group.world, .shuffle = o.shuffle};
    progress p = {talk && !no_progress && !o.json && isatty(STDOUT_FILENO), o.epochs, 0, 0};
    trainer_hooks hooks = {NULL, on_step, &p};
#ifdef NABLA_TRAIN_DIST
    if (group.dist) {
        /* every rank starts from rank 0's weights, and draws its share of each epoch */
        group.params = params, group.n_params = n_params;
        if (nb_dist_broadcast(group.dist, params, n_params, 0) != NB_OK) FAIL("broadcast", NULL);
        nb_dist_sampler_options so = nb_dist_sampler_defaults();
        so.shuffle = o.shuffle, so.seed = o.seed;
        sampler = nb_dist_sampler_new(nb_dataset_count(train), group.world, group.rank, &so);
        if (!sampler) FAIL("sampler", NULL);
        lo.shuffle = false;
        hooks.after_backward = average_grads;
        /* the test examples rank, rank + world, ... */
        int64_t n_test = nb_dataset_count(test);
        test_share = malloc(sizeof *test_share * (size_t)(n_test / group.world + 1));
        if (!test_share) FAIL("evaluation", "out of memory");
        for (int64_t i = group.rank; i < n_test; i += group.world) test_share[n_test_share++] = i;
    }
#endif
    loader = nb_dataloader_new(train, &lo);
    if (!loader) FAIL("loader", NULL);

    int64_t steps_left = o.max_steps > 0 ? o.max_steps : -1;
    if (talk && !o.json)
        printf("nabla-train: %lld training and %lld test examples, %lld parameters, %s lr %g\n",
               (long long)nb_dataset_count(train), (long long)nb_dataset_count(test),
               (long long)nb_module_parameter_count(model), nb_optim_kind_name(o.optim), o.lr);
    if (talk && !o.json && group.world > 1)
        printf("nabla-train: %d ranks, %lld examples per rank per step\n", group.world,
               (long long)lo.batch_size);
    for (int epoch = 1; epoch <= o.epochs && steps_left != 0; epoch++) {
        epoch_result r = {epoch, 0, 0, 0, 0};
        eval_sums e = {0, 0, 0};
#ifdef NABLA_TRAIN_DIST
        if (sampler) {
            int64_t m;
            const int64_t *idx = NULL;
            if (nb_dist_sampler_set_epoch(sampler, epoch - 1) != NB_OK ||
                !(idx = nb_dist_sampler_indices(sampler, &m)) ||
                nb_dataloader_set_order(loader, idx, m) != NB_OK)
                FAIL("sampler", NULL);
        }
#endif
        p.start = p.last = trainer_now();
        if (trainer_epoch(model, opt, loader, epoch, &r.train_loss, &steps_left, &hooks) != NB_OK)
            FAIL("training", NULL);
        r.seconds = trainer_now() - p.start;
#ifdef NABLA_TRAIN_DIST
        if (group.dist) {
            double figures[3];
            if (trainer_evaluate_sums(model, test, test_share, n_test_share, &e, NULL) != NB_OK)
                FAIL("evaluation", NULL);
            /* every rank saw as many training examples: the mean of the means is the mean */
            if (reduce_values(&group, &r.train_loss, 1, NB_DIST_AVG) != NB_OK)
                FAIL("training loss", NULL);
            figures[0] = e.loss_sum, figures[1] = (double)e.right, figures[2] = (double)e.seen;
            if (reduce_values(&group, figures, 3, NB_DIST_SUM) != NB_OK) FAIL("evaluation", NULL);
            e = (eval_sums){figures[0], (int64_t)figures[1], (int64_t)figures[2]};
        } else
#endif
            if (trainer_evaluate_sums(model, test, NULL, 0, &e, NULL) != NB_OK)
            FAIL("evaluation", NULL);
        r.test_loss = e.seen ? e.loss_sum / (double)e.seen : 0;
        r.test_accuracy = e.seen ? (double)e.right / (double)e.seen : 0;
        if (!talk) continue;
        /* a diverged run's NaN as Python's json.dumps (and "%f") writes it, as the reference */
        char f[3][32];
        trainer_number(f[0], sizeof f[0], r.train_loss, o.json ? 6 : 4, o.json);
        trainer_number(f[1], sizeof f[1], r.test_loss, o.json ? 6 : 4, o.json);
        trainer_number(f[2], sizeof f[2], r.test_accuracy, 4, o.json);
        if (o.json)
            printf("{\"epoch\": %d, \"train_loss\": %s, \"test_loss\": %s, "
                   "\"test_accuracy\": %s, \"seconds\": %.3f}\n",
                   r.epoch, f[0], f[1], f[2], r.seconds);
        else
            printf("%sepoch %2d: train loss %s  test loss %s  test accuracy %s  %.2f s\n",
                   p.tty ? "\r\033[K" : "", r.epoch, f[0], f[1], f[2], r.seconds);
        if ((why = trainer_stdout_problem())) FAIL("stdout", why); /* a full disk: exit 1 */
    }
    if (o.save && talk) {
        if (trainer_save_model(model, o.hidden, o.n_hidden, o.save) != NB_OK) FAIL(o.save, NULL);
        if (!o.json) printf("nabla-train: model saved to %s\n", o.save);
    }
    if (talk && (why = trainer_stdout_problem())) FAIL("stdout", why);
out:
    nb_dataloader_free(loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_dataset_free(train);
    nb_dataset_free(test);
#ifdef NABLA_TRAIN_DIST
    nb_dist_sampler_free(sampler);
    free(test_share);
    nb_dist *d = group.dist;
    group.dist = NULL; /* finalize consumes it, also on error */
    if (d && nb_dist_finalize(d) != NB_OK && !status) status = fail("finalize", NULL);
#endif
    return status;
}
