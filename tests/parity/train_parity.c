/*
 * nabla-train against PyTorch 1.13 on the real Fashion-MNIST (references from
 * tests/data/gen_train.py): the parameters after 10 steps in order, the test loss and
 * predictions after one epoch, and the shuffled order of the first epoch. Exits 77 (skipped)
 * when the dataset is not installed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trainer.h"

#include "data/train_ref.h"

#define DATA "/usr/share/datasets/fashion-mnist"

static int failures;

static void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
}

/* The default run, no shuffling, for steps (0: one epoch). */
static nb_module *train_steps(const nb_dataset *train, int64_t steps)
{
    const int64_t hidden[] = {256, 128};
    nb_manual_seed(0);
    nb_module *m = trainer_model(784, hidden, 2, 10);
    nb_tensor *p[6];
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *opt = m && nb_module_parameters(m, p, 6) == 6 ? nb_optim_new(p, 6, &o) : NULL;
    nb_dataloader_options lo = {.batch_size = 128};
    nb_dataloader *dl = nb_dataloader_new(train, &lo);
    double loss;
    int64_t left = steps ? steps : -1;
    if (!opt || !dl || trainer_epoch(m, opt, dl, 1, &loss, &left, NULL) != NB_OK) {
        printf("training failed: %s\n", nb_last_error()->message);
        nb_module_free(m);
        m = NULL;
    }
    nb_dataloader_free(dl);
    nb_optim_free(opt);
    return m;
}

int main(void)
{
    nb_dataset *train = nb_mnist_load(DATA, true), *test = nb_mnist_load(DATA, false);
    if (!train || !test) {
        printf("skipped: %s\n", nb_last_error()->message);
        return 77;
    }
    /* 10 steps: every parameter value within 1e-4 */
    nb_module *m = train_steps(train, 10);
    if (!m) return 1;
    nb_tensor *p[6];
    nb_module_parameters(m, p, 6);
    double worst = 0;
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        int64_t n = nb_tensor_numel(p[i]), step = n > 1280 ? TRAIN_REF_STRIDE : 1;
        const float *d = nb_tensor_data(p[i]);
        for (int64_t k = 0; k < n; k += step)
            worst = fmax(worst, fabs(d[k] - train_ref_10_steps[at++]));
    }
    printf("after 10 steps: largest difference from PyTorch %.3g over %zu values\n", worst, at);
    check(at == sizeof train_ref_10_steps / sizeof train_ref_10_steps[0] && worst <= 1e-4,
          "parameters after 10 steps within 1e-4");
    nb_module_free(m);

    /* one epoch: the test loss within 1e-3 relative, 99% of the predictions the same */
    m = train_steps(train, 0);
    if (!m) return 1;
    double loss, acc;
    static uint8_t pred[10000];
    if (trainer_evaluate(m, test, &loss, &acc, pred) != NB_OK) return 1;
    int same = 0;
    for (int i = 0; i < 10000; i++) same += pred[i] == train_ref_epoch_predictions[i];
    double rel = fabs(loss - train_ref_epoch_test_loss) / train_ref_epoch_test_loss;
    printf("after one epoch: test loss %.6f (PyTorch %.6f, %.2g relative), accuracy %.4f "
           "(PyTorch %.4f), %d of 10000 predictions the same\n",
           loss, train_ref_epoch_test_loss, rel, acc, train_ref_epoch_accuracy, same);
    check(rel <= 1e-3, "test loss within 1e-3 relative");
    check(same >= 9900, "99% of the test predictions the same");
    nb_module_free(m);

    /* shuffled: after the model's draws, the first epoch's order is PyTorch's */
    const int64_t hidden[] = {256, 128};
    nb_manual_seed(0);
    m = trainer_model(784, hidden, 2, 10);
    nb_dataloader_options lo = {.batch_size = 128, .shuffle = true};
    nb_dataloader *dl = nb_dataloader_new(train, &lo);
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    int64_t seen = 0;
    bool first_ok = true;
    nb_dataloader_begin_epoch(dl);
    for (;;) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *x, *y;
        int64_t b = nb_dataloader_next(dl, &x, &y), n = 0;
        const int64_t *idx = nb_dataloader_batch_indices(dl, &n);
        for (int64_t i = 0; i < n; i++, seen++) {
            h = (h ^ (uint64_t)idx[i]) * UINT64_C(0x100000001b3);
            if (seen < 32) first_ok = first_ok && idx[i] == train_ref_order_first[seen];
        }
        nb_scope_end(s);
        if (b <= 0) break;
    }
    check(seen == 60000 && first_ok && h == train_ref_order_hash,
          "the first epoch's shuffled order is PyTorch's");
    nb_dataloader_free(dl);
    nb_module_free(m);
    nb_dataset_free(train);
    nb_dataset_free(test);
    return failures ? 1 : 0;
}
