/*
 * nabla-finetune: start from a model nabla-train saved, and fine-tune it on a new task. The
 * body (every layer but the last) is frozen, or trained with its own small learning rate;
 * the head is trained, or replaced with a new Linear when the task has other classes. The
 * default task: only the classes 0-4 (T-shirt, trouser, pullover, dress, coat), a few
 * hundred examples of them. It shows the frozen weights unchanged, bit for bit.
 *
 *   nabla-finetune --load FILE.safetensors [--data DIR] [--classes 0,1,2,3,4] [--examples N]
 *                  [--epochs N] [--lr-head LR] [--lr-body LR] [--new-head] [--seed S]
 *                  [--save FILE.safetensors]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

typedef struct options {
    const char *load, *save, *data;
    int classes[16], n_classes;
    int64_t examples;
    int epochs;
    double lr_head, lr_body; /* lr_body 0: the body is frozen */
    bool new_head;
    uint64_t seed;
} options;

static void usage(FILE *f)
{
    fputs("usage: nabla-finetune --load FILE [options]\n"
          "  --load FILE        the model nabla-train saved (safetensors; required)\n"
          "  --data DIR         the MNIST-family IDX files (default "
          "/usr/share/datasets/fashion-mnist)\n"
          "  --classes LIST     the task's classes (default 0,1,2,3,4), relabelled 0..n-1 for a\n"
          "                     new head; the checkpoint's head keeps their labels\n"
          "  --examples N       the first N training examples of those classes (default 500)\n"
          "  --epochs N         epochs (default 5)\n"
          "  --lr-head LR       the head's learning rate (default 1e-2)\n"
          "  --lr-body LR       train the body at LR (default 0: the body is frozen)\n"
          "  --new-head         replace the last layer with a new Linear for the classes\n"
          "  --seed S           seed of the generator: a new head, the batch order (default 0)\n"
          "  --save FILE        write the model as safetensors after training\n",
          f);
}

/* The options that take a value. */
static const char *const valued[] = {"--load", "--save",    "--data",    "--examples", "--epochs",
                                     "--seed", "--lr-head", "--lr-body", "--classes",  NULL};

static bool parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n = 0, classes[16];
        bool ok = true, takes = true;
        if (trainer_missing_value("nabla-finetune", a, v, valued)) return false;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--new-head")) {
            o->new_head = true, takes = false;
        } else if (!strcmp(a, "--load")) {
            o->load = v;
        } else if (!strcmp(a, "--save")) {
            o->save = v;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--examples")) {
            ok = trainer_parse_int(v, 1, INT64_MAX, &o->examples);
        } else if (!strcmp(a, "--epochs")) {
            ok = trainer_parse_int(v, 0, 100000, &n), o->epochs = (int)n;
        } else if (!strcmp(a, "--seed")) {
            ok = trainer_parse_seed(v, &o->seed);
        } else if (!strcmp(a, "--lr-head")) {
            ok = trainer_parse_double(v, 0, true, &o->lr_head);
        } else if (!strcmp(a, "--lr-body")) {
            ok = trainer_parse_double(v, 0, false, &o->lr_body);
        } else if (!strcmp(a, "--classes")) {
            ok = trainer_parse_list(v, 0, 255, classes, 16, &o->n_classes);
            for (int k = 0; ok && k < o->n_classes; k++) o->classes[k] = (int)classes[k];
        } else {
            fprintf(stderr, "nabla-finetune: unknown option '%s'\n", a);
            usage(stderr);
            return false;
        }
        if (!ok) {
            fprintf(stderr, "nabla-finetune: bad value for %s: '%s'\n", a, v);
            return false;
        }
        if (takes) i++;
    }
    if (!o->load) {
        fprintf(stderr, "nabla-finetune: --load FILE.safetensors is required\n");
        usage(stderr);
    }
    return o->load != NULL;
}

/* A failure: "what: why" on stderr (why NULL: nabla's last error). The exit status, 1. */
static int fail(const char *what, const char *why)
{
    fprintf(stderr, "nabla-finetune: %s: %s\n", what, why ? why : nb_last_error()->message);
    return 1;
}

/* A failure in main: its message, then the cleanup at out, exit status 1. */
#define FAIL(what, why)                                                                            \
    do {                                                                                           \
        status = fail(what, why);                                                                  \
        goto out;                                                                                  \
    } while (0)

/*
 * The task: the chosen classes, the first `examples` of them. For a new head, whose outputs
 * are the task's classes, they are relabelled 0..n-1; the checkpoint's head has an output for
 * each of the checkpoint's classes, so for it they keep their labels.
 */
static nb_dataset *task(const options *o, bool train)
{
    nb_dataset *all = nb_mnist_load(o->data, train);
    nb_dataset *some = all ? nb_dataset_select_classes(all, o->classes, o->n_classes) : NULL;
    if (some && !o->new_head) { /* the same examples, with their own labels */
        bool chosen[256] = {false};
        for (int k = 0; k < o->n_classes; k++) chosen[o->classes[k]] = true;
        const uint8_t *label = nb_dataset_labels(all);
        int64_t n = 0, *idx = malloc(((size_t)nb_dataset_count(some) + 1) * sizeof *idx);
        for (int64_t i = 0; idx && i < nb_dataset_count(all); i++)
            if (chosen[label[i]]) idx[n++] = i;
        nb_dataset_free(some);
        some = idx ? nb_dataset_subset(all, idx, n) : NULL;
        free(idx);
    }
    nb_dataset_free(all);
    if (!some || !train || !o->examples || o->examples >= nb_dataset_count(some)) return some;
    int64_t *idx = malloc((size_t)o->examples * sizeof *idx);
    for (int64_t i = 0; idx && i < o->examples; i++) idx[i] = i;
    nb_dataset *few = idx ? nb_dataset_subset(some, idx, o->examples) : NULL;
    free(idx);
    nb_dataset_free(some);
    return few;
}

int main(int argc, char **argv)
{
    options o = {.data = "/usr/share/datasets/fashion-mnist",
                 .classes = {0, 1, 2, 3, 4},
                 .n_classes = 5,
                 .examples = 500,
                 .epochs = 5,
                 .lr_head = 1e-2};
    if (!parse(argc, argv, &o)) return 2;
    int status = 0; /* the exit status */
    nb_state_dict *ckpt = NULL;
    nb_dataset *train = NULL, *test = NULL;
    nb_module *model = NULL;
    nb_optim *opt = NULL;
    nb_dataloader *dl = NULL;
    float **before = NULL;
    int nb = 0;
    const char *why;
    char message[128];
    /* the file the model goes to, before the run is spent on it */
    if (o.save && (why = trainer_save_problem(o.save))) FAIL(o.save, why);

    /* the checkpoint: its architecture is in its metadata, its weights in its tensors */
    ckpt = nb_safetensors_load(o.load);
    if (!ckpt) FAIL(o.load, NULL);
    const char *h = nb_state_dict_metadata(ckpt, "hidden");
    if (!h) h = "256,128";
    int64_t hidden[TRAINER_MAX_HIDDEN];
    int n_hidden = 0;
    if (!trainer_parse_list(h, 1, INT64_MAX, hidden, TRAINER_MAX_HIDDEN, &n_hidden)) {
        snprintf(message, sizeof message, "its hidden layers '%.40s' are not 1 to %d sizes > 0", h,
                 TRAINER_MAX_HIDDEN);
        FAIL(o.load, message);
    }
    /* the head's outputs: the rows of its weight (10 for nabla-train on the MNIST family) */
    snprintf(message, sizeof message, "%d.weight", 2 * n_hidden);
    nb_tensor *w = nb_state_dict_get(ckpt, message);
    int64_t outputs = w && nb_tensor_ndim(w) == 2 ? nb_tensor_shape(w)[0] : 10;
    for (int k = 0; !o.new_head && k < o.n_classes; k++) {
        if (o.classes[k] >= outputs) {
            snprintf(message, sizeof message,
                     "class %d has no output in the checkpoint's head of %lld (--new-head makes "
                     "a head for the classes)",
                     o.classes[k], (long long)outputs);
            FAIL("--classes", message);
        }
    }
    train = task(&o, true), test = train ? task(&o, false) : NULL; /* the first error stays */
    if (!train || !test) FAIL("data", NULL);
    if ((why = trainer_sets_mismatch(train, test, message, sizeof message))) FAIL("data", why);
    nb_manual_seed(o.seed);
    model = trainer_model(nb_dataset_example_size(train), hidden, n_hidden, outputs);
    if (!model || nb_module_load_state_dict(model, ckpt, true) != NB_OK) FAIL(o.load, NULL);
    nb_state_dict_free(ckpt);
    ckpt = NULL;

    /* a new head for the new classes, or the old one kept (its other outputs unused) */
    int last = nb_module_num_children(model) - 1;
    if (o.new_head) {
        int64_t in = hidden[n_hidden - 1];
        if (nb_module_set_child(model, last, nb_module_linear(in, o.n_classes, true)) != NB_OK)
            FAIL("new head", NULL);
    }
    nb_module *head = nb_module_child(model, last);

    /* freeze the body: every layer but the last gets no gradient, so no update */
    bool frozen = o.lr_body == 0;
    for (int i = 0; i < last; i++) nb_module_requires_grad_(nb_module_child(model, i), !frozen);

    /* a parameter group per part: the head at lr_head, the body at lr_body */
    nb_tensor *hp[2], *bp[2 * TRAINER_MAX_HIDDEN];
    for (int i = 0; i < last; i++)
        nb += nb_module_parameters(nb_module_child(model, i), bp + nb, 2 * TRAINER_MAX_HIDDEN - nb);
    nb_optim_options head_opts = nb_optim_defaults(NB_OPTIM_ADAM), body_opts = head_opts;
    head_opts.lr = o.lr_head;
    body_opts.lr = frozen ? 1e-3 : o.lr_body; /* unused while frozen */
    opt = nb_optim_new(hp, nb_module_parameters(head, hp, 2), &head_opts);
    if (!opt || (nb > 0 && nb_optim_add_param_group(opt, bp, nb, &body_opts) != NB_OK))
        FAIL("optimizer", NULL);

    /* a copy of the body, to show it is untouched */
    before = calloc((size_t)nb, sizeof *before);
    for (int i = 0; i < nb && before; i++) {
        size_t bytes = (size_t)nb_tensor_numel(bp[i]) * sizeof(float);
        if ((before[i] = malloc(bytes))) memcpy(before[i], nb_tensor_data(bp[i]), bytes);
    }

    double loss, acc;
    if (trainer_evaluate(model, test, &loss, &acc, NULL) != NB_OK) FAIL("evaluation", NULL);
    printf("nabla-finetune: %lld training and %lld test examples of %d classes; body %s, head "
           "lr %g%s\n",
           (long long)nb_dataset_count(train), (long long)nb_dataset_count(test), o.n_classes,
           frozen ? "frozen" : "trained", o.lr_head, o.new_head ? " (a new head)" : "");
    printf("before: test loss %.4f  test accuracy %.4f\n", loss, acc);
    nb_dataloader_options lo = {.batch_size = 50, .shuffle = true};
    dl = nb_dataloader_new(train, &lo);
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        double train_loss;
        if (!dl || trainer_epoch(model, opt, dl, epoch, &train_loss, NULL, NULL) != NB_OK)
            FAIL("training", NULL);
        if (trainer_evaluate(model, test, &loss, &acc, NULL) != NB_OK) FAIL("evaluation", NULL);
        printf("epoch %d: train loss %.4f  test loss %.4f  test accuracy %.4f\n", epoch, train_loss,
               loss, acc);
    }
    int same = 0;
    for (int i = 0; i < nb && before; i++)
        same += before[i] &&
                !memcmp(before[i], nb_tensor_data(bp[i]), (size_t)nb_tensor_numel(bp[i]) * 4);
    printf("body: %d of %d parameter tensors bit-identical to the checkpoint's%s\n", same, nb,
           frozen ? " (frozen)" : "");
    status = frozen && same != nb ? 1 : 0;
    if (o.save) {
        /* with nabla-train's metadata, so that the file loads again (here, in PyTorch) */
        if (trainer_save_model(model, hidden, n_hidden, o.save) != NB_OK) FAIL(o.save, NULL);
    }
    if ((why = trainer_stdout_problem())) FAIL("stdout", why);
out:
    for (int i = 0; i < nb && before; i++) free(before[i]);
    free(before);
    nb_dataloader_free(dl);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_state_dict_free(ckpt);
    return status;
}
