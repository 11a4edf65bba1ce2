/*
 * nabla-train: an MLP on Fashion-MNIST (or any dataset of the MNIST family) from disk to a
 * trained, saved model. The next lesson after the notebook: a dataset, a model, a loss, an
 * optimizer, the loop, evaluation under no-grad each epoch, and a checkpoint PyTorch reads.
 *
 *   nabla-train [--data DIR] [--epochs N] [--batch B] [--lr LR] [--optim sgd|adam|adamw|rmsprop]
 *               [--hidden 256,128] [--seed S] [--threads T] [--no-shuffle]
 *               [--save FILE.safetensors] [--load FILE.safetensors] [--json] [--steps N]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer.h"

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
          "  --steps N          stop after N training steps in all\n",
          f);
}

static bool parse_int(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo) return false;
    *out = v;
    return true;
}

/* Parse argv into o; false (with a message) on a bad option. */
static bool parse(int argc, char **argv, trainer_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        bool takes = true, ok = v != NULL;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-shuffle")) {
            o->shuffle = false, takes = false, ok = true;
        } else if (!strcmp(a, "--json")) {
            o->json = true, takes = false, ok = true;
        } else if (!strcmp(a, "--data") && v) {
            o->data_dir = v;
        } else if (!strcmp(a, "--epochs") && v) {
            ok = parse_int(v, 0, &n) && n <= 100000, o->epochs = (int)n;
        } else if (!strcmp(a, "--batch") && v) {
            ok = parse_int(v, 1, &o->batch);
        } else if (!strcmp(a, "--steps") && v) {
            ok = parse_int(v, 1, &o->max_steps);
        } else if (!strcmp(a, "--seed") && v) {
            ok = parse_int(v, 0, &n), o->seed = (uint64_t)n;
        } else if (!strcmp(a, "--threads") && v) {
            ok = parse_int(v, 1, &n) && n <= 1024, o->threads = (int)n;
        } else if (!strcmp(a, "--lr") && v) {
            char *end;
            o->lr = strtod(v, &end);
            ok = end != v && !*end && o->lr > 0;
        } else if (!strcmp(a, "--optim") && v) {
            ok = true;
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
        } else if (!strcmp(a, "--hidden") && v) {
            o->n_hidden = 0;
            const char *p = v;
            while (ok && *p) {
                char *end;
                long long h = strtoll(p, &end, 10);
                ok =
                    end != p && h > 0 && o->n_hidden < TRAINER_MAX_HIDDEN && (*end == ',' || !*end);
                if (ok) o->hidden[o->n_hidden++] = h;
                p = *end ? end + 1 : end;
            }
        } else if (!strcmp(a, "--save") && v) {
            o->save = v;
        } else if (!strcmp(a, "--load") && v) {
            o->load = v;
        } else {
            fprintf(stderr, "nabla-train: unknown option '%s'\n", a);
            usage(stderr);
            return false;
        }
        if (!ok) {
            fprintf(stderr, "nabla-train: bad value for %s: '%s'\n", a, v ? v : "");
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
    int64_t batch_size;
    double start, last;
} progress;

static void on_step(int epoch, int64_t batch, int64_t n_batches, double loss, void *ctx)
{
    progress *p = ctx;
    double now = trainer_now();
    if (!p->tty || (now - p->last < 0.1 && batch < n_batches)) return;
    p->last = now;
    double rate = (double)(batch * p->batch_size) / (now - p->start + 1e-9);
    double left = (double)((n_batches - batch) * p->batch_size) / (rate + 1e-9);
    int width = 24, done = (int)(width * batch / n_batches);
    printf("\repoch %2d/%d [%.*s%*s] %lld/%lld  loss %.4f  %.0f ex/s  %3.0fs left ", epoch,
           p->epochs, done, "########################", width - done, "", (long long)batch,
           (long long)n_batches, loss, rate, left);
    fflush(stdout);
}

static int fail(const char *what)
{
    fprintf(stderr, "nabla-train: %s: %s\n", what, nb_last_error()->message);
    return 1;
}

int main(int argc, char **argv)
{
    trainer_options o = trainer_defaults();
    if (!parse(argc, argv, &o)) return 2;
    if (o.threads && nb_set_num_threads(o.threads) != NB_OK) return fail("threads");

    /* the data: uint8 images in memory, float batches made per step */
    nb_dataset *train = nb_mnist_load(o.data_dir, true), *test = nb_mnist_load(o.data_dir, false);
    if (!train || !test) return fail("data");
    int64_t features = nb_dataset_example_size(train), classes = nb_dataset_num_classes(train);

    /* the model and the optimizer, drawn from the seed as PyTorch draws them */
    nb_manual_seed(o.seed);
    nb_module *model = trainer_model(features, o.hidden, o.n_hidden, classes);
    if (!model) return fail("model");
    if (o.load) {
        nb_state_dict *d = nb_safetensors_load(o.load);
        nb_status rc = d ? nb_module_load_state_dict(model, d, true) : nb_last_error()->code;
        nb_state_dict_free(d);
        if (rc != NB_OK) return fail(o.load);
    }
    nb_tensor *params[2 * TRAINER_MAX_HIDDEN + 2];
    int n_params = nb_module_parameters(model, params, 2 * TRAINER_MAX_HIDDEN + 2);
    nb_optim_options oo = nb_optim_defaults(o.optim);
    oo.lr = o.lr;
    nb_optim *opt = n_params > 0 ? nb_optim_new(params, n_params, &oo) : NULL;
    if (!opt) return fail("optimizer");
    nb_dataloader_options lo = {.batch_size = o.batch, .shuffle = o.shuffle};
    nb_dataloader *loader = nb_dataloader_new(train, &lo);
    if (!loader) return fail("loader");

    progress p = {isatty(STDOUT_FILENO) && !o.json, o.epochs, o.batch, 0, 0};
    int64_t steps_left = o.max_steps > 0 ? o.max_steps : -1;
    if (!o.json)
        printf("nabla-train: %lld training and %lld test examples, %lld parameters, %s lr %g\n",
               (long long)nb_dataset_count(train), (long long)nb_dataset_count(test),
               (long long)nb_module_parameter_count(model), nb_optim_kind_name(o.optim), o.lr);
    for (int epoch = 1; epoch <= o.epochs && steps_left != 0; epoch++) {
        epoch_result r = {epoch, 0, 0, 0, 0};
        p.start = p.last = trainer_now();
        if (trainer_epoch(model, opt, loader, epoch, &r.train_loss, &steps_left, on_step, &p) !=
            NB_OK)
            return fail("training");
        r.seconds = trainer_now() - p.start;
        if (trainer_evaluate(model, test, &r.test_loss, &r.test_accuracy, NULL) != NB_OK)
            return fail("evaluation");
        if (o.json)
            printf("{\"epoch\": %d, \"train_loss\": %.6f, \"test_loss\": %.6f, "
                   "\"test_accuracy\": %.4f, \"seconds\": %.3f}\n",
                   r.epoch, r.train_loss, r.test_loss, r.test_accuracy, r.seconds);
        else
            printf("%sepoch %2d: train loss %.4f  test loss %.4f  test accuracy %.4f  %.2f s\n",
                   p.tty ? "\r\033[K" : "", r.epoch, r.train_loss, r.test_loss, r.test_accuracy,
                   r.seconds);
        fflush(stdout);
    }
    if (o.save) {
        nb_state_dict *d = nb_state_dict_new();
        char hidden[128] = "";
        for (int i = 0; i < o.n_hidden; i++)
            snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%lld",
                     i ? "," : "", (long long)o.hidden[i]);
        nb_status rc = d ? nb_module_state_dict(model, d) : nb_last_error()->code;
        if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "format", "pt");
        if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "hidden", hidden);
        if (rc == NB_OK) rc = nb_safetensors_save(d, o.save);
        nb_state_dict_free(d);
        if (rc != NB_OK) return fail(o.save);
        if (!o.json) printf("nabla-train: model saved to %s\n", o.save);
    }
    nb_dataloader_free(loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_dataset_free(train);
    nb_dataset_free(test);
    return 0;
}
