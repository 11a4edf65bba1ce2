/*
 * A small convolutional network trained on the committed subset of Fashion-MNIST
 * (tests/data/fashion-mini), against PyTorch 1.13 running the same model, data and loop
 * (tests/data/gen_cnn.py):
 *
 *     Conv2d(1, 6, 5, padding=2) - ReLU - MaxPool2d(2) - Conv2d(6, 16, 5) - ReLU -
 *     AvgPool2d(2) - Flatten - Linear(400, 10), cross-entropy, Adam (lr 1e-3), batches of 32
 *
 * The parameters after nb_manual_seed(0) are PyTorch's bits; the losses of 12 steps and the
 * parameters after them agree within the rounding of sums taken in another order (the
 * convolutions' GEMMs); after two epochs the test loss and accuracy agree. Training at
 * 1 and at 2 threads gives the same bits.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "data/cnn_ref.h"

#define N_PARAMS 6

static nb_module *cnn(void)
{
    nb_manual_seed(0);
    nb_module *layers[] = {
        nb_module_conv2d(1, 6, NB_SHAPE(5), NB_SHAPE(1), NB_SHAPE(2), NB_SHAPE(1), 1, true),
        nb_module_relu(),
        nb_module_max_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false),
        nb_module_conv2d(6, 16, NB_SHAPE(5), NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 1, true),
        nb_module_relu(),
        nb_module_avg_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0),
        nb_module_flatten(1, -1),
        nb_module_linear(400, 10, true),
    };
    nb_module *m = nb_module_sequential(layers, (int)(sizeof layers / sizeof layers[0]));
    assert_non_null(m);
    return m;
}

/* The model's parameters in state-dict order, and an Adam over them. */
static nb_optim *adam(nb_module *m, nb_tensor **p)
{
    assert_int_equal(nb_module_parameters(m, p, N_PARAMS), N_PARAMS);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    o.lr = 1e-3;
    nb_optim *opt = nb_optim_new(p, N_PARAMS, &o);
    assert_non_null(opt);
    return opt;
}

/* One step on x [B, 784], y [B]: the batch's loss. */
static double step(nb_module *m, nb_optim *opt, nb_tensor *x, nb_tensor *y)
{
    nb_scope *s = nb_scope_begin();
    assert_int_equal(nb_optim_zero_grad(opt, true), NB_OK);
    nb_tensor *img = nb_reshape(x, NB_SHAPE(-1, 1, 28, 28));
    nb_tensor *loss = nb_cross_entropy(nb_module_forward(m, img), y, NULL, -100, NB_MEAN, 0.0);
    if (!loss) fail_msg("forward: %s", nb_last_error()->message);
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    double l = (double)nb_tensor_data(loss)[0];
    nb_scope_end(s);
    return l;
}

/* Train for steps (-1: to the end of the epochs) in order; the losses go to losses. */
static void train(nb_module *m, nb_optim *opt, const nb_dataset *ds, int epochs, int steps,
                  double *losses)
{
    nb_dataloader_options lo = {.batch_size = CNN_REF_BATCH};
    nb_dataloader *dl = nb_dataloader_new(ds, &lo);
    assert_non_null(dl);
    int n = 0;
    for (int e = 0; e < epochs && n != steps; e++) {
        assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
        nb_tensor *x, *y;
        while (n != steps && nb_dataloader_next(dl, &x, &y) > 0) {
            double l = step(m, opt, x, y);
            if (losses) losses[n] = l;
            n++;
            nb_release(x);
            nb_release(y);
        }
    }
    nb_dataloader_free(dl);
}

/* Compare every CNN_REF_STRIDE-th value of each parameter with ref (exactly when tol is 0);
 * the largest difference relative to the parameter's largest magnitude goes to *worst. */
static void compare(nb_tensor *const *p, const float *ref, double tol, const char *what,
                    double *worst)
{
    size_t k = 0;
    *worst = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        const float *v = nb_tensor_data_const(p[i]);
        int64_t n = nb_tensor_numel(p[i]);
        double scale = 0;
        for (int64_t j = 0; j < n; j++) scale = fmax(scale, fabs((double)v[j]));
        for (int64_t j = 0; j < n; j += CNN_REF_STRIDE, k++) {
            double d = fabs((double)v[j] - (double)ref[k]) / scale;
            if (tol == 0 && memcmp(&v[j], &ref[k], sizeof(float)) != 0)
                fail_msg("%s: parameter %d element %lld is %a, PyTorch's %a", what, i, (long long)j,
                         (double)v[j], (double)ref[k]);
            if (d > tol && tol > 0)
                fail_msg("%s: parameter %d element %lld is %.9g, PyTorch's %.9g", what, i,
                         (long long)j, (double)v[j], (double)ref[k]);
            *worst = fmax(*worst, d);
        }
    }
    assert_int_equal(k, sizeof(cnn_ref_steps) / sizeof(float));
}

static void test_steps_against_pytorch(void **state)
{
    (void)state;
    nb_dataset *ds = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    assert_non_null(ds);
    nb_module *m = cnn();
    nb_tensor *p[N_PARAMS];
    nb_optim *opt = adam(m, p);
    double worst;
    compare(p, cnn_ref_init, 0, "after the seed", &worst);

    double losses[CNN_REF_STEPS];
    train(m, opt, ds, 1, CNN_REF_STEPS, losses);
    double loss_worst = 0;
    for (int i = 0; i < CNN_REF_STEPS; i++) {
        double d = fabs(losses[i] - cnn_ref_losses[i]) / cnn_ref_losses[i];
        if (d > 1e-6) fail_msg("loss %d: %.9g, PyTorch's %.9g", i, losses[i], cnn_ref_losses[i]);
        loss_worst = fmax(loss_worst, d);
    }
    /* The convolutions' GEMMs sum in another order than PyTorch's, so gradients can differ
     * in their last bits. Measured: the 12 losses are PyTorch's to the bit and the weights
     * within 1.6e-7 of the largest weight; the bounds are about ten times that. */
    compare(p, cnn_ref_steps, 2e-6, "after 12 steps", &worst);
    print_message("losses within %.2g (relative), parameters within %.2g of the largest\n",
                  loss_worst, worst);
    nb_optim_free(opt);
    nb_module_free(m);
    nb_dataset_free(ds);
}

static void test_two_epochs_against_pytorch(void **state)
{
    (void)state;
    nb_dataset *train_set = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    nb_dataset *test_set = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", false);
    assert_non_null(train_set);
    assert_non_null(test_set);
    nb_module *m = cnn();
    nb_tensor *p[N_PARAMS];
    nb_optim *opt = adam(m, p);
    train(m, opt, train_set, 2, -1, NULL);

    nb_scope *s = nb_scope_begin();
    nb_tensor *x, *y;
    nb_dataloader_options lo = {.batch_size = 500};
    nb_dataloader *dl = nb_dataloader_new(test_set, &lo);
    assert_non_null(dl);
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 500);
    double acc = -1, l = -1;
    NB_NO_GRAD
    {
        nb_tensor *out = nb_module_forward(m, nb_reshape(x, NB_SHAPE(-1, 1, 28, 28)));
        nb_tensor *loss = nb_cross_entropy(out, y, NULL, -100, NB_MEAN, 0.0);
        nb_tensor *hit = nb_mean(nb_eq(nb_argmax(out, NB_DIMS(1), false), y), NB_DIMS_ALL, false);
        if (loss && hit) {
            l = (double)nb_tensor_data(loss)[0];
            acc = (double)nb_tensor_data(hit)[0];
        }
    }
    print_message("test loss %.6f (PyTorch %.6f), accuracy %.3f (PyTorch %.3f)\n", l,
                  cnn_ref_test_loss, acc, cnn_ref_test_accuracy);
    assert_true(fabs(l - cnn_ref_test_loss) < 2e-5 * cnn_ref_test_loss);
    assert_true(fabs(acc - cnn_ref_test_accuracy) <= 0.005); /* 2 of 500 predictions */
    nb_release(x);
    nb_release(y);
    nb_scope_end(s);
    nb_dataloader_free(dl);
    nb_optim_free(opt);
    nb_module_free(m);
    nb_dataset_free(train_set);
    nb_dataset_free(test_set);
}

/* The parameters after 6 steps at threads, copied out. */
static void run_at(int threads, const nb_dataset *ds, float *out, size_t cap)
{
    assert_int_equal(nb_set_num_threads(threads), NB_OK);
    nb_module *m = cnn();
    nb_tensor *p[N_PARAMS];
    nb_optim *opt = adam(m, p);
    train(m, opt, ds, 1, 6, NULL);
    size_t k = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        size_t n = (size_t)nb_tensor_numel(p[i]);
        assert_true(k + n <= cap);
        memcpy(out + k, nb_tensor_data_const(p[i]), n * sizeof(float));
        k += n;
    }
    nb_optim_free(opt);
    nb_module_free(m);
}

static void test_same_bits_at_any_thread_count(void **state)
{
    (void)state;
    nb_dataset *ds = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    assert_non_null(ds);
    static float one[8000], two[8000];
    int before = nb_get_num_threads();
    run_at(1, ds, one, 8000);
    run_at(2, ds, two, 8000);
    assert_int_equal(nb_set_num_threads(before), NB_OK);
    assert_memory_equal(one, two, sizeof one);
    nb_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_against_pytorch),
        cmocka_unit_test(test_two_epochs_against_pytorch),
        cmocka_unit_test(test_same_bits_at_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
