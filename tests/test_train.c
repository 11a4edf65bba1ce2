/*
 * The trainer on the committed tiny subset of Fashion-MNIST (tests/data/fashion-mini: 1000
 * training and 500 test examples): the loss goes down and the accuracy is far above chance;
 * a checkpoint written after training loads into a fresh model with the same predictions.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "trainer.h"

static void test_short_run(void **state)
{
    (void)state;
    nb_dataset *train = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    nb_dataset *test = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", false);
    assert_non_null(train);
    assert_non_null(test);
    const int64_t hidden[] = {32};
    nb_manual_seed(0);
    nb_module *m = trainer_model(784, hidden, 1, 10);
    nb_tensor *p[4];
    assert_int_equal(nb_module_parameters(m, p, 4), 4);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    o.lr = 3e-3;
    nb_optim *opt = nb_optim_new(p, 4, &o);
    nb_dataloader_options lo = {.batch_size = 100, .shuffle = true};
    nb_dataloader *dl = nb_dataloader_new(train, &lo);
    double first = 0, loss = 0, test_loss, acc, acc0;
    assert_int_equal(trainer_evaluate(m, test, &test_loss, &acc0, NULL), NB_OK);
    for (int epoch = 1; epoch <= 4; epoch++) {
        assert_int_equal(trainer_epoch(m, opt, dl, epoch, &loss, NULL, NULL), NB_OK);
        if (epoch == 1) first = loss;
    }
    assert_int_equal(trainer_evaluate(m, test, &test_loss, &acc, NULL), NB_OK);
    print_message("train loss %.4f -> %.4f, test accuracy %.3f -> %.3f\n", first, loss, acc0, acc);
    assert_true(loss < 0.8 * first);
    assert_true(acc > 0.6); /* chance is 0.1 */

    /* a checkpoint round trip gives the same predictions */
    static uint8_t before[500], after[500];
    assert_int_equal(trainer_evaluate(m, test, &test_loss, &acc, before), NB_OK);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_module_state_dict(m, d), NB_OK);
    char path[] = "/tmp/nabla-train-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nb_safetensors_save(d, path), NB_OK);
    nb_state_dict_free(d);
    nb_module *fresh = trainer_model(784, hidden, 1, 10);
    d = nb_safetensors_load(path);
    assert_non_null(d);
    assert_int_equal(nb_module_load_state_dict(fresh, d, true), NB_OK);
    assert_int_equal(trainer_evaluate(fresh, test, &test_loss, &acc, after), NB_OK);
    assert_memory_equal(before, after, sizeof before);
    nb_state_dict_free(d);
    remove(path);
    nb_module_free(fresh);
    nb_dataloader_free(dl);
    nb_optim_free(opt);
    nb_module_free(m);
    nb_dataset_free(train);
    nb_dataset_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_short_run, nbt_setup_counting, nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
