/*
 * Layers: PyTorch's initialisation bit for bit, reprs, state dicts, freezing, modes,
 * containers and their errors. Reference values: tests/data/gen_nn.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include "data/nn_ref.h"

static uint64_t fnv1a(const nb_tensor *t)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const float *d = nb_tensor_data_const(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++) {
        uint32_t u;
        memcpy(&u, &d[i], sizeof u);
        for (int k = 0; k < 4; k++) {
            h ^= (u >> (8 * k)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

static nb_module *make_mlp(void)
{
    return NB_SEQUENTIAL(nb_module_linear(784, 256, true), nb_module_relu(),
                         nb_module_linear(256, 128, true), nb_module_relu(),
                         nb_module_linear(128, 10, true));
}

static nb_module *make_mixed(void)
{
    return NB_SEQUENTIAL(nb_module_linear(4, 3, false), nb_module_sigmoid(),
                         nb_module_flatten(1, -1),
                         NB_SEQUENTIAL(nb_module_linear(3, 5, true), nb_module_relu()),
                         nb_module_linear(5, 2, true), nb_module_flatten(0, -1));
}

static void check_params(nb_module *m, const nn_param_ref *ref, size_t n, const char *what)
{
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_module_state_dict(m, d), NB_OK);
    assert_int_equal(nb_state_dict_size(d), (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(nb_state_dict_name(d, (int64_t)i), ref[i].name);
        nb_tensor *p = nb_state_dict_tensor(d, (int64_t)i);
        assert_int_equal(nb_tensor_numel(p), ref[i].numel);
        const float *v = nb_tensor_data_const(p);
        if (fnv1a(p) != ref[i].hash || v[0] != ref[i].first || v[ref[i].numel - 1] != ref[i].last)
            fail_msg("%s: %s differs from PyTorch's (first %.9g, want %.9g)", what, ref[i].name,
                     (double)v[0], (double)ref[i].first);
        assert_true(nb_tensor_requires_grad(p));
        assert_true(nb_tensor_is_leaf(p));
    }
    nb_state_dict_free(d);
}

static nb_module *make_every(void)
{
    return NB_SEQUENTIAL(nb_module_embedding(10, 4, NB_NO_PADDING), nb_module_linear(4, 3, true),
                         nb_module_tanh(), nb_module_sigmoid(), nb_module_gelu(NB_GELU_NONE),
                         nb_module_gelu(NB_GELU_TANH), nb_module_silu(), nb_module_leaky_relu(0.01),
                         nb_module_leaky_relu(0.2), nb_module_dropout(0.5), nb_module_dropout(0.1),
                         nb_module_layer_norm(NB_SHAPE(3), 1e-5, true),
                         nb_module_layer_norm(NB_SHAPE(2, 3), 1e-3, false),
                         nb_module_embedding(10, 3, 0), nb_module_embedding(7, 2, -2),
                         nb_module_flatten(1, -1), nb_module_flatten(0, -1),
                         NB_SEQUENTIAL(nb_module_relu()), nb_module_linear(3, 2, false));
}

/* every option of Conv2d off its default, and at it (gen_nn.py's conv()) */
static nb_module *make_conv(void)
{
    return NB_SEQUENTIAL(
        nb_module_conv2d(1, 8, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 1, true),
        nb_module_relu(),
        nb_module_conv2d(8, 16, NB_SHAPE(3), NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), 2, false),
        nb_module_conv2d(16, 4, NB_SHAPE(3, 5), NB_SHAPE(2, 1), NB_SHAPE(1, 2), NB_SHAPE(2, 1), 1,
                         true),
        nb_module_conv2d(4, 4, NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 1, true),
        nb_module_conv2d(4, 8, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(1), 4, true),
        nb_module_conv2d(8, 2, NB_SHAPE(1, 4), NB_SHAPE(1), NB_SHAPE(0, 1), NB_SHAPE(2), 1, false),
        nb_module_flatten(1, -1), nb_module_linear(6, 3, true));
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* xavier of a tensor whose fans are both 0 fails as PyTorch's (float division by zero): the
 * normal form drew nothing and succeeded, the uniform one blamed an infinite range. */
static void test_init_xavier_zero_fans(void **state)
{
    (void)state;
    nb_tensor *t = nb_zeros(NB_SHAPE(0, 0, 3));
    assert_int_equal(nb_init_xavier_normal_(t, 1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL,
                 "nb_init_xavier_normal_: fan_in + fan_out is 0: float division by zero");
    assert_int_equal(nb_init_xavier_uniform_(t, 1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_init_xavier_uniform_: fan_in + fan_out is 0");
    nb_release(t);
    t = nb_zeros(NB_SHAPE(0, 4)); /* one fan is enough: nothing to draw, as in PyTorch */
    assert_int_equal(nb_init_xavier_normal_(t, 1.0, NULL), NB_OK);
    assert_int_equal(nb_init_xavier_uniform_(t, 1.0, NULL), NB_OK);
    nb_release(t);
}

static void test_init_identity(void **state)
{
    (void)state;
    struct {
        nb_module *(*make)(void);
        const nn_param_ref *ref[2];
        size_t n[2];
        const char *repr;
        int64_t count;
    } models[] = {
        {make_mlp, {nn_mlp_0, nn_mlp_1}, {N(nn_mlp_0), N(nn_mlp_1)}, nn_mlp_repr, nn_mlp_count},
        {make_mixed,
         {nn_mixed_0, nn_mixed_1},
         {N(nn_mixed_0), N(nn_mixed_1)},
         nn_mixed_repr,
         nn_mixed_count},
        {make_every,
         {nn_every_0, nn_every_1},
         {N(nn_every_0), N(nn_every_1)},
         nn_every_repr,
         nn_every_count},
        {make_conv,
         {nn_conv_0, nn_conv_1},
         {N(nn_conv_0), N(nn_conv_1)},
         nn_conv_repr,
         nn_conv_count},
    };
    for (size_t k = 0; k < N(models); k++) {
        for (uint64_t seed = 0; seed < 2; seed++) {
            nb_manual_seed(seed);
            nb_module *m = models[k].make();
            assert_non_null(m);
            check_params(m, models[k].ref[seed], models[k].n[seed], models[k].repr);
            /* the same draws from a generator of that seed */
            nb_generator *g = nb_generator_new(seed);
            assert_int_equal(nb_module_reset_parameters(m, g), NB_OK);
            check_params(m, models[k].ref[seed], models[k].n[seed], models[k].repr);
            nb_generator_free(g);
            if (seed == 0) {
                char buf[2048];
                assert_true(nb_module_format(m, buf, sizeof buf) < (int64_t)sizeof buf);
                assert_string_equal(buf, models[k].repr);
                assert_int_equal(nb_module_parameter_count(m), models[k].count);
            }
            nb_module_free(m);
        }
    }
}

/* nb_module_conv2d's arguments, refused with PyTorch's words where it has them (it takes
 * sizes conv2d cannot run and fails at the first forward; nabla refuses them here). The
 * forward's errors are nb_conv2d's. */
static void test_conv2d_module_errors(void **state)
{
    (void)state;
    const nb_shape k = NB_SHAPE(3), one = NB_SHAPE(1), zero = NB_SHAPE(0);
#define CONV_FAILS(call, text)                                                                     \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        assert_null(call);                                                                         \
        assert_error(NB_EINVAL, (text));                                                           \
    } while (0)
    CONV_FAILS(nb_module_conv2d(0, 4, k, one, zero, one, 1, true),
               "nb_module_conv2d: in_channels (0) and out_channels (4) must be positive");
    CONV_FAILS(nb_module_conv2d(3, -1, k, one, zero, one, 1, true),
               "nb_module_conv2d: in_channels (3) and out_channels (-1) must be positive");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, zero, one, 0, true),
               "nb_module_conv2d: groups must be a positive integer");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, zero, one, 3, true),
               "nb_module_conv2d: in_channels must be divisible by groups");
    CONV_FAILS(nb_module_conv2d(8, 15, k, one, zero, one, 2, true),
               "nb_module_conv2d: out_channels must be divisible by groups");
    CONV_FAILS(nb_module_conv2d(8, 16, NB_SHAPE(3, 0), one, zero, one, 1, true),
               "nb_module_conv2d: kernel_size must be positive, but got kernel_size=(3, 0)");
    CONV_FAILS(nb_module_conv2d(8, 16, k, NB_SHAPE(0), zero, one, 1, true),
               "nb_module_conv2d: non-positive stride is not supported");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, NB_SHAPE(1, -1), one, 1, true),
               "nb_module_conv2d: negative padding is not supported");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, zero, NB_SHAPE(-2), 1, true),
               "nb_module_conv2d: non-positive dilation is not supported");
    CONV_FAILS(nb_module_conv2d(8, 16, NB_SHAPE(3, 3, 3), one, zero, one, 1, true),
               "nb_module_conv2d: expected kernel_size to be a single integer value or a list "
               "of 2 values, but got kernel_size=[3, 3, 3]");
    CONV_FAILS(nb_module_conv2d(8, 16, k, NB_SHAPE0, zero, one, 1, true),
               "nb_module_conv2d: expected stride to be a single integer value or a list of 2 "
               "values, but got stride=[]");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, NB_SHAPE(1, 2, 3), one, 1, true),
               "nb_module_conv2d: expected padding to be a single integer value or a list of 2 "
               "values, but got padding=[1, 2, 3]");
    CONV_FAILS(nb_module_conv2d(8, 16, k, one, zero, NB_SHAPE0, 1, true),
               "nb_module_conv2d: expected dilation to be a single integer value or a list of 2 "
               "values, but got dilation=[]");
#undef CONV_FAILS
    /* the forward's errors are nb_conv2d's */
    nb_module *m = nb_module_conv2d(3, 4, k, one, zero, one, 1, true);
    assert_non_null(m);
    nb_tensor *x = nb_ones(NB_SHAPE(2, 2, 5, 5));
    nb_error_clear();
    assert_null(nb_module_forward(m, x));
    assert_error(NB_ESHAPE, "nb_conv2d: Given groups=1, weight of size [4, 3, 3, 3], expected "
                            "input[2, 2, 5, 5] to have 3 channels, but got 2 channels instead");
    nb_release(x);
    nb_module_free(m);
}

/* The floats of a repr are Python's: positional for decimal exponents in [-4, 16) ("100.0",
 * "1000000000000000.0"), scientific beyond ("1e+16", "1e-07"); %g wrote "1e+02". */
static void test_repr_floats(void **state)
{
    (void)state;
    nb_module *m = NB_SEQUENTIAL(
        nb_module_leaky_relu(100.0), nb_module_leaky_relu(20.0), nb_module_leaky_relu(1234.5),
        nb_module_leaky_relu(1e15), nb_module_leaky_relu(1e16),
        nb_module_leaky_relu(1.2345678901234567e16), nb_module_leaky_relu(-0.0),
        nb_module_leaky_relu(0.1 + 0.2), nb_module_leaky_relu(1e-7), nb_module_leaky_relu(0.00012),
        nb_module_leaky_relu(-5e-324), nb_module_dropout(1.0), nb_module_dropout(0.0),
        nb_module_layer_norm(NB_SHAPE(3), 10.0, true),
        nb_module_layer_norm(NB_SHAPE(2, 2), 1e22, true),
        nb_module_layer_norm(NB_SHAPE(1), (double)INFINITY, true));
    assert_non_null(m);
    char buf[2048];
    assert_int_equal(nb_module_format(m, buf, sizeof buf), (int64_t)strlen(nn_floats_repr));
    assert_string_equal(buf, nn_floats_repr);
    nb_module_free(m);
}

/* The pooling layers print as PyTorch prints them (ints and pairs as given, a stride left to
 * its default as the kernel size), have no parameters, and a model of them gives PyTorch's
 * output bits on torch.randn's input (gen_nn.py). */
static void test_pool_modules(void **state)
{
    (void)state;
    nb_module *m = NB_SEQUENTIAL(
        nb_module_max_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false),
        nb_module_max_pool2d(NB_SHAPE(2, 3), NB_SHAPE(1, 2), NB_SHAPE(1, 0), NB_SHAPE(1, 2), true),
        nb_module_max_pool2d(NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(2), false),
        nb_module_max_pool2d(NB_SHAPE(3, 2), NB_SHAPE0, NB_SHAPE(1, 0), NB_SHAPE(1), false),
        nb_module_avg_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), false, true, 0),
        nb_module_avg_pool2d(NB_SHAPE(2, 3), NB_SHAPE(1, 2), NB_SHAPE(1, 0), true, false, 5),
        nb_module_avg_pool2d(NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), false, false, 0),
        nb_module_avg_pool2d(NB_SHAPE(3, 2), NB_SHAPE0, NB_SHAPE(0), true, true, 0));
    assert_non_null(m);
    char buf[2048];
    assert_int_equal(nb_module_format(m, buf, sizeof buf), (int64_t)strlen(nn_pools_repr));
    assert_string_equal(buf, nn_pools_repr);
    assert_int_equal(nb_module_parameter_count(m), 0);
    assert_string_equal(nb_module_name(nb_module_child(m, 0)), "MaxPool2d");
    assert_string_equal(nb_module_name(nb_module_child(m, 4)), "AvgPool2d");
    nb_module_free(m);

    m = NB_SEQUENTIAL(
        nb_module_max_pool2d(NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), false),
        nb_module_avg_pool2d(NB_SHAPE(2, 3), NB_SHAPE(1, 2), NB_SHAPE(1, 0), true, false, 0),
        nb_module_max_pool2d(NB_SHAPE(2, 3), NB_SHAPE(2), NB_SHAPE(1, 0), NB_SHAPE(1, 2), true),
        nb_module_avg_pool2d(NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), false, true, 3));
    nb_manual_seed(0);
    nb_tensor *x = nb_randn(NB_SHAPE(2, 3, 9, 11));
    nb_tensor *y = nb_module_forward(m, x);
    assert_non_null(y);
    int64_t n = nb_tensor_numel(y);
    assert_int_equal(n, nn_pool_model_numel);
    const float *v = nb_tensor_data_const(y);
    if (fnv1a(y) != nn_pool_model_hash || v[0] != nn_pool_model_first ||
        v[n - 1] != nn_pool_model_last)
        fail_msg("pooling model: output differs from PyTorch's (first %a, want %a)", (double)v[0],
                 (double)nn_pool_model_first);
    nb_release(y);
    nb_release(x);
    nb_module_free(m);

    /* the sizes are checked when the module is made, with the op's messages */
    nb_error_clear();
    assert_null(nb_module_max_pool2d(NB_SHAPE(3), NB_SHAPE0, NB_SHAPE(2), NB_SHAPE(1), false));
    assert_error(NB_EINVAL, "nb_module_max_pool2d: pad should be at most half of kernel size, "
                            "but got pad=2 and kernel_size=3");
    assert_null(
        nb_module_max_pool2d(NB_SHAPE(1, 2, 3), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false));
    assert_error(NB_EINVAL, "nb_module_max_pool2d: kernel_size must either be a single int, or a "
                            "tuple of two ints");
    assert_null(nb_module_max_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(0, 1), false));
    assert_error(NB_EINVAL, "nb_module_max_pool2d: dilation should be greater than zero, but got "
                            "dilationH: 0 dilationW: 1");
    assert_null(nb_module_avg_pool2d(NB_SHAPE(2), NB_SHAPE(0), NB_SHAPE(0), false, true, 0));
    assert_error(NB_EINVAL, "nb_module_avg_pool2d: stride should not be zero");
    assert_null(nb_module_avg_pool2d(NB_SHAPE(-1), NB_SHAPE(1), NB_SHAPE(0), false, true, 0));
    assert_error(NB_EINVAL, "nb_module_avg_pool2d: kernel size should be greater than zero, but "
                            "got kH: -1 kW: -1");
    assert_null(nb_module_avg_pool2d(NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE0, false, true, 0));
    assert_error(NB_EINVAL, "nb_module_avg_pool2d: padding must either be a single int, or a "
                            "tuple of two ints");
    /* what needs the input is the forward's to report, naming the op */
    m = nb_module_max_pool2d(NB_SHAPE(4), NB_SHAPE0, NB_SHAPE(0), NB_SHAPE(1), false);
    x = nb_ones(NB_SHAPE(1, 3, 3));
    assert_null(nb_module_forward(m, x));
    assert_error(NB_ESHAPE, "nb_max_pool2d: Given input size: (1x3x3). Calculated output size: "
                            "(1x0x0). Output size is too small");
    nb_release(x);
    nb_module_free(m);
}

/* A container leaves the mode of a child it is given as it was, as PyTorch does: an
 * evaluating Dropout put into a training Sequential still does not drop. */
static void test_child_keeps_mode(void **state)
{
    (void)state;
    nb_module *d = nb_module_dropout(0.5);
    assert_int_equal(nb_module_train(d, false), NB_OK);
    nb_module *s = nb_module_sequential(&d, 1);
    assert_true(nb_module_is_training(s));
    assert_false(nb_module_is_training(d));
    nb_tensor *x = nb_ones(NB_SHAPE(64));
    nb_tensor *y = nb_module_forward(s, x);
    for (int i = 0; i < 64; i++) assert_true(nb_tensor_data(y)[i] == 1.0f);
    nb_release(y);
    /* appended and set children too */
    assert_int_equal(nb_module_train(s, false), NB_OK);
    nb_module *r = nb_module_relu();
    assert_int_equal(nb_module_append(s, r), NB_OK);
    assert_true(nb_module_is_training(r));
    assert_false(nb_module_is_training(s));
    nb_module *t = nb_module_tanh();
    assert_int_equal(nb_module_set_child(s, 0, t), NB_OK);
    assert_true(nb_module_is_training(t));
    /* train() of the container sets them all */
    assert_int_equal(nb_module_train(s, false), NB_OK);
    assert_false(nb_module_is_training(r) || nb_module_is_training(t));
    nb_release(x);
    nb_module_free(s);
}

/* An empty Sequential passes x through as a new tensor (an alias of it, where PyTorch returns x
 * itself), which the open scope owns like any other result: nothing outlives the scope. */
static void test_empty_sequential_forward(void **state)
{
    (void)state;
    long live = nbt_alloc_live();
    nb_module *empty = nb_module_sequential(NULL, 0);
    nb_module *m = NB_SEQUENTIAL(nb_module_relu(), nb_module_sequential(NULL, 0));
    nb_tensor *x = nb_requires_grad_(nb_full(NB_SHAPE(3), -2.0f), true);
    nb_scope *sc = nb_scope_begin();
    nb_tensor *y = nb_module_forward(empty, x);
    assert_non_null(y);
    assert_ptr_not_equal(y, x);
    assert_true(nb_tensor_data(y)[0] == -2.0f);
    assert_int_equal(nb_backward(nb_sum(y, NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_true(nb_tensor_data(nb_tensor_grad(x))[0] == 1.0f);
    y = nb_module_forward(m, x);
    assert_non_null(y);
    assert_true(nb_tensor_data(y)[2] == 0.0f);
    assert_int_equal(nb_scope_end(sc), NB_OK);
    nb_module_free(m);
    /* out of memory: named for the call, as the Sequential has no layer of its own */
    nbt_fail_alloc_after(1);
    nb_error_clear();
    assert_null(nb_module_forward(empty, x));
    nbt_fail_alloc_after(0);
    assert_error(NB_ENOMEM, "nb_module_forward: out of memory");
    nb_release(x);
    nb_module_free(empty);
    assert_int_equal(nbt_alloc_live(), live);
}

static void test_forward_and_freeze(void **state)
{
    (void)state;
    nb_module *m =
        NB_SEQUENTIAL(nb_module_linear(3, 4, true), nb_module_relu(), nb_module_linear(4, 2, true));
    assert_non_null(m);
    nb_tensor *p[4];
    assert_int_equal(nb_module_parameters(m, NULL, 0), 4);
    assert_int_equal(nb_module_parameters(m, p, 4), 4);
    nb_tensor *x = nb_randn(NB_SHAPE(5, 3));
    nb_scope *sc = nb_scope_begin();
    /* forward is the composition: relu(x·W0ᵀ + b0)·W2ᵀ + b2 */
    nb_tensor *y = nb_module_forward(m, x);
    nb_tensor *h = nb_relu(nb_add(nb_matmul(x, nb_t(p[0])), p[1]));
    nb_tensor *want = nb_add(nb_matmul(h, nb_t(p[2])), p[3]);
    assert_int_equal(nb_tensor_ndim(y), 2);
    assert_close(nb_tensor_data(y), nb_tensor_data(want), 10, 1e-6, 1e-5);
    /* the first layer frozen: it gets no gradient, the rest do */
    assert_int_equal(nb_module_requires_grad_(nb_module_child(m, 0), false), NB_OK);
    nb_tensor *y2 = nb_module_forward(m, x);
    assert_int_equal(nb_backward(nb_sum(y2, NB_DIMS_ALL, false), NULL, false), NB_OK);
    assert_null(nb_tensor_grad(p[0]));
    assert_null(nb_tensor_grad(p[1]));
    assert_non_null(nb_tensor_grad(p[2]));
    assert_non_null(nb_tensor_grad(p[3]));
    assert_int_equal(nb_scope_end(sc), NB_OK);
    /* a frozen model: its output does not require grad */
    assert_int_equal(nb_module_requires_grad_(m, false), NB_OK);
    nb_tensor *y3 = nb_module_forward(m, x);
    assert_false(nb_tensor_requires_grad(y3));
    nb_release(y3);
    /* modes */
    assert_true(nb_module_is_training(m));
    assert_int_equal(nb_module_train(m, false), NB_OK);
    assert_false(nb_module_is_training(nb_module_child(m, 2)));
    assert_string_equal(nb_module_name(m), "Sequential");
    assert_string_equal(nb_module_name(nb_module_child(m, -1)), "Linear");
    nb_release(x);
    nb_module_free(m);
}

static void test_state_dict_round_trip(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_module *a = make_mixed(), *b = NULL;
    nb_manual_seed(1);
    b = make_mixed();
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_module_state_dict(a, d), NB_OK);
    assert_int_equal(nb_module_load_state_dict(b, d, true), NB_OK);
    check_params(b, nn_mixed_0, N(nn_mixed_0), "loaded");

    /* errors leave the model as it was */
    nb_tensor *w0 = nb_state_dict_get(d, "0.weight");
    nb_retain(w0);
    assert_int_equal(nb_state_dict_remove(d, "0.weight"), NB_OK);
    nb_error_clear();
    assert_int_equal(nb_module_load_state_dict(b, d, true), NB_ESTATE);
    assert_error(NB_ESTATE,
                 "nb_module_load_state_dict: Missing key(s) in state_dict: \"0.weight\".");
    assert_int_equal(nb_module_load_state_dict(b, d, false), NB_OK); /* skipped */
    nb_tensor *wrong = nb_zeros(NB_SHAPE(4, 3));
    assert_int_equal(nb_state_dict_set(d, "0.weight", wrong), NB_OK);
    assert_int_equal(nb_module_load_state_dict(b, d, true), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_module_load_state_dict: size mismatch for 0.weight: copying a "
                            "param with shape [4, 3] from checkpoint, the shape in current model "
                            "is [3, 4]");
    check_params(b, nn_mixed_0, N(nn_mixed_0), "unchanged");
    assert_int_equal(nb_state_dict_set(d, "0.weight", w0), NB_OK);
    assert_int_equal(nb_state_dict_set(d, "7.weight", wrong), NB_OK);
    assert_int_equal(nb_module_load_state_dict(b, d, true), NB_ESTATE);
    assert_error(NB_ESTATE,
                 "nb_module_load_state_dict: Unexpected key(s) in state_dict: \"7.weight\".");
    assert_int_equal(nb_module_load_state_dict(b, d, false), NB_OK);
    assert_int_equal(nb_state_dict_remove(d, "7.weight"), NB_OK);
    static const char *const not_ours[] = {" 0.weight", "+0.weight", "00.weight", "0. 0.weight"};
    for (size_t i = 0; i < sizeof not_ours / sizeof not_ours[0]; i++) {
        char want[128];
        assert_int_equal(nb_state_dict_set(d, not_ours[i], wrong), NB_OK);
        assert_int_equal(nb_module_load_state_dict(b, d, true), NB_ESTATE);
        snprintf(want, sizeof want,
                 "nb_module_load_state_dict: Unexpected key(s) in state_dict: \"%s\".",
                 not_ours[i]);
        assert_error(NB_ESTATE, want);
        assert_int_equal(nb_state_dict_remove(d, not_ours[i]), NB_OK);
    }
    assert_int_equal(nb_module_load_state_dict(NULL, d, false), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_load_state_dict: argument 'm' is NULL");
    nb_release(wrong);
    nb_release(w0);
    nb_state_dict_free(d);
    nb_module_free(a);
    nb_module_free(b);
}

static void test_containers(void **state)
{
    (void)state;
    nb_error_clear();
    /* a NULL child (a constructor that failed) fails the container, keeping its error */
    assert_null(NB_SEQUENTIAL(nb_module_relu(), nb_module_linear(-1, 2, true)));
    assert_error(NB_EINVAL, "nb_module_linear: in_features (-1) and out_features (2) must be >= 0");
    assert_null(nb_module_sequential(NULL, 2));
    assert_error(NB_EINVAL, "nb_module_sequential: 2 modules from a NULL array");
    nb_module *r = nb_module_relu();
    nb_module *s = nb_module_sequential(&r, 1);
    assert_non_null(s);
    assert_null(nb_module_sequential(&r, 1)); /* already in a container */
    assert_error(NB_EINVAL, "nb_module_sequential: module 0 already belongs to a container");
    nb_module_free(r); /* ignored: the container owns it */
    assert_int_equal(nb_module_append(s, nb_module_linear(2, 3, true)), NB_OK);
    assert_int_equal(nb_module_num_children(s), 2);
    assert_int_equal(nb_module_set_child(s, -1, nb_module_sigmoid()), NB_OK);
    assert_string_equal(nb_module_name(nb_module_child(s, 1)), "Sigmoid");
    assert_int_equal(nb_module_set_child(s, 5, nb_module_relu()), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_set_child: index 5 is out of range for 2 modules");
    nb_module *lin = nb_module_linear(1, 1, true);
    assert_int_equal(nb_module_append(lin, nb_module_relu()), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_append: Linear is not a Sequential");
    nb_tensor *p[1];
    assert_int_equal(nb_module_parameters(lin, p, 1), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_parameters: 2 parameters do not fit in an array of 1");
    assert_null(nb_module_forward(NULL, p[0]));
    assert_error(NB_EINVAL, "nb_module_forward: argument 'm' is NULL");
    nb_tensor *x = nb_ones(NB_SHAPE(2, 5)); /* wrong width */
    assert_null(nb_module_forward(lin, x));
    assert_error(NB_ESHAPE, "nb_linear: mat1 and mat2 shapes cannot be multiplied (2x5 and 1x1)");
    nb_release(x);
    char buf[8];
    assert_int_equal(nb_module_format(s, buf, sizeof buf),
                     44); /* "Sequential(\n  (0): ReLU()\n  (1): Sigmoid()\n)" */
    assert_string_equal(buf, "Sequent");
    assert_int_equal(nb_module_format(s, NULL, 4), NB_EINVAL);
    nb_module *empty = nb_module_sequential(NULL, 0);
    assert_int_equal(nb_module_format(empty, buf, sizeof buf), 12);
    assert_string_equal(buf, "Sequent");
    nb_module_free(empty);
    nb_module_free(lin);
    nb_module_free(s);
    nb_module_free(NULL);
}

/* n containers around m, each holding the one inside: n + 1 levels. */
static nb_module *nest(nb_module *m, int n)
{
    for (int i = 0; i < n && m; i++) m = nb_module_sequential(&m, 1);
    return m;
}

/* Containers nest at most 1024 levels deep, so the walks over a model stay on the stack. */
static void test_container_depth(void **state)
{
    (void)state;
    nb_error_clear();
    nb_module *deep = nest(nb_module_linear(2, 2, true), 1023);
    assert_non_null(deep);
    nb_tensor *x = nb_ones(NB_SHAPE(3, 2));
    nb_tensor *y = nb_module_forward(deep, x);
    assert_non_null(y);
    nb_release(y);
    assert_int_equal(nb_module_parameters(deep, NULL, 0), 2);
    assert_null(nb_module_sequential(&deep, 1)); /* frees deep */
    assert_error(NB_ERANGE,
                 "nb_module_sequential: module 0 would nest containers deeper than 1024 levels");
    nb_module *top = NB_SEQUENTIAL(nb_module_relu());
    assert_int_equal(nb_module_append(top, nest(nb_module_relu(), 1023)), NB_ERANGE);
    assert_error(NB_ERANGE,
                 "nb_module_append: the module would nest containers deeper than 1024 levels");
    assert_int_equal(nb_module_append(top, nest(nb_module_relu(), 1022)), NB_OK); /* 1024 */
    assert_int_equal(nb_module_append(top, nest(nb_module_relu(), 1022)), NB_OK);
    nb_module *inner = nb_module_child(top, 1); /* the innermost container, at level 1023 */
    while (nb_module_num_children(nb_module_child(inner, 0)) > 0) inner = nb_module_child(inner, 0);
    assert_int_equal(nb_module_append(inner, nb_module_sigmoid()), NB_OK); /* not deeper */
    assert_int_equal(nb_module_append(inner, NB_SEQUENTIAL(nb_module_relu())), NB_ERANGE);
    assert_error(NB_ERANGE,
                 "nb_module_append: the module would nest containers deeper than 1024 levels");
    /* replacing the deep children makes top shallow again: 1022 more levels fit around it */
    assert_int_equal(nb_module_set_child(top, 1, nb_module_relu()), NB_OK);
    assert_int_equal(nb_module_set_child(top, 2, nb_module_tanh()), NB_OK);
    top = nest(top, 1022);
    assert_non_null(top);
    y = nb_module_forward(top, x);
    assert_non_null(y);
    nb_release(y);
    assert_null(nest(top, 1));
    assert_error(NB_ERANGE,
                 "nb_module_sequential: module 0 would nest containers deeper than 1024 levels");
    nb_release(x);
}

/* A failed container frees what it was given once each; a module cannot contain itself. */
static void test_container_ownership(void **state)
{
    (void)state;
    nb_error_clear();
    nb_module *a = nb_module_relu();
    nb_module *twice[2] = {a, a};
    assert_null(nb_module_sequential(twice, 2)); /* frees a once */
    assert_error(NB_EINVAL, "nb_module_sequential: module 1 is also module 0");
    a = nb_module_relu();
    assert_null(NB_SEQUENTIAL(a, a));
    assert_error(NB_EINVAL, "nb_module_sequential: module 1 is also module 0");
    a = nb_module_relu();
    assert_null(NB_SEQUENTIAL(a, nb_module_linear(-1, 1, true), a)); /* a NULL, then a again */
    assert_error(NB_EINVAL, "nb_module_linear: in_features (-1) and out_features (1) must be >= 0");
    /* a module listed with its own child, in either order: the parent frees the child */
    nb_module *in = NB_SEQUENTIAL(nb_module_linear(2, 2, true));
    nb_module *with_child[2] = {in, nb_module_child(in, 0)};
    assert_null(nb_module_sequential(with_child, 2));
    assert_error(NB_EINVAL, "nb_module_sequential: module 1 already belongs to a container");
    in = NB_SEQUENTIAL(nb_module_linear(2, 2, true));
    nb_module *child_first[2] = {nb_module_child(in, 0), in};
    assert_null(nb_module_sequential(child_first, 2));
    assert_error(NB_EINVAL, "nb_module_sequential: module 0 already belongs to a container");

    /* seq into itself, or into its own descendant: refused, and nothing is freed */
    nb_module *s = NB_SEQUENTIAL(nb_module_relu());
    assert_int_equal(nb_module_append(s, s), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_append: the module is the Sequential");
    assert_int_equal(nb_module_set_child(s, 0, s), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_set_child: the module is the Sequential");
    in = NB_SEQUENTIAL(nb_module_linear(3, 2, true));
    nb_module *out = NB_SEQUENTIAL(in, nb_module_relu());
    assert_int_equal(nb_module_append(in, out), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_append: the module holds the Sequential");
    assert_int_equal(nb_module_set_child(in, 0, out), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_set_child: the module holds the Sequential");
    assert_int_equal(nb_module_set_child(in, 7, out),
                     NB_EINVAL); /* the index is not checked first */
    assert_error(NB_EINVAL, "nb_module_set_child: the module holds the Sequential");
    assert_int_equal(nb_module_num_children(s), 1);
    assert_int_equal(nb_module_num_children(in), 1);
    assert_int_equal(nb_module_num_children(out), 2);
    assert_int_equal(nb_module_parameters(out, NULL, 0), 2);
    nb_tensor *x = nb_ones(NB_SHAPE(4, 3));
    nb_tensor *y = nb_module_forward(out, x);
    assert_non_null(y);
    assert_int_equal(nb_tensor_numel(y), 8);
    nb_release(y);
    nb_release(x);
    /* a child moved between containers is refused while it has a parent */
    nb_module *other = NB_SEQUENTIAL(nb_module_relu());
    assert_int_equal(nb_module_append(other, in), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_module_append: the module already belongs to a container");
    assert_int_equal(nb_module_num_children(out), 2);
    nb_module_free(other);
    nb_module_free(out);
    nb_module_free(s);
}

/* ---- gradcheck of every layer's forward, with respect to its input and its parameters --- */

typedef struct layer_case {
    const char *name;
    nb_module *(*make)(void);
    nb_shape in;
    bool ids; /* the input is ids, not differentiable */
} layer_case;

static nb_module *mk_linear(void)
{
    return nb_module_linear(4, 3, true);
}
static nb_module *mk_linear_nobias(void)
{
    return nb_module_linear(4, 3, false);
}
static nb_module *mk_relu(void)
{
    return nb_module_relu();
}
static nb_module *mk_sigmoid(void)
{
    return nb_module_sigmoid();
}
static nb_module *mk_tanh(void)
{
    return nb_module_tanh();
}
static nb_module *mk_silu(void)
{
    return nb_module_silu();
}
static nb_module *mk_gelu(void)
{
    return nb_module_gelu(NB_GELU_NONE);
}
static nb_module *mk_gelu_tanh(void)
{
    return nb_module_gelu(NB_GELU_TANH);
}
static nb_module *mk_leaky(void)
{
    return nb_module_leaky_relu(0.2);
}
static nb_module *mk_dropout(void)
{
    return nb_module_dropout(0.3);
}
static nb_module *mk_layer_norm(void)
{
    return nb_module_layer_norm(NB_SHAPE(4), 1e-5, true);
}
static nb_module *mk_embedding(void)
{
    return nb_module_embedding(6, 3, NB_NO_PADDING); /* the padding row has no gradient */
}
static nb_module *mk_flatten(void)
{
    return nb_module_flatten(1, -1);
}
/* windows side by side: of randn values, none holds two within the step of central differences */
static nb_module *mk_max_pool(void)
{
    return nb_module_max_pool2d(NB_SHAPE(2), NB_SHAPE0, NB_SHAPE(1), NB_SHAPE(1), true);
}
static nb_module *mk_avg_pool(void)
{
    return nb_module_avg_pool2d(NB_SHAPE(3, 2), NB_SHAPE(2, 1), NB_SHAPE(1), true, false, 0);
}
static nb_module *mk_conv(void)
{
    return nb_module_conv2d(2, 4, NB_SHAPE(3, 2), NB_SHAPE(2, 1), NB_SHAPE(1), NB_SHAPE(1), 2,
                            true);
}
static nb_module *mk_conv_nobias(void)
{
    return nb_module_conv2d(3, 2, NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(0), NB_SHAPE(2, 1), 1, false);
}
static nb_module *mk_mlp(void)
{
    return NB_SEQUENTIAL(nb_module_linear(4, 5, true), nb_module_tanh(),
                         nb_module_layer_norm(NB_SHAPE(5), 1e-5, true), nb_module_dropout(0.2),
                         nb_module_linear(5, 2, true));
}

typedef struct layer_ctx {
    nb_module *m;
    nb_tensor *ids;
} layer_ctx;

/* inputs[0] is x (unless ids), the rest the module's parameters, perturbed in place */
static nb_tensor *layer_forward(nb_tensor *const *inputs, void *ctx)
{
    layer_ctx *c = ctx;
    nb_manual_seed(7); /* the same dropout mask at every evaluation */
    return nb_module_forward(c->m, c->ids ? c->ids : inputs[0]);
}

static void test_layer_gradcheck(void **state)
{
    (void)state;
    const layer_case cases[] = {
        {"Linear", mk_linear, NB_SHAPE(2, 3, 4), false},
        {"Linear no bias", mk_linear_nobias, NB_SHAPE(5, 4), false},
        {"ReLU", mk_relu, NB_SHAPE(3, 4), false},
        {"Sigmoid", mk_sigmoid, NB_SHAPE(3, 4), false},
        {"Tanh", mk_tanh, NB_SHAPE(3, 4), false},
        {"SiLU", mk_silu, NB_SHAPE(3, 4), false},
        {"GELU", mk_gelu, NB_SHAPE(3, 4), false},
        {"GELU tanh", mk_gelu_tanh, NB_SHAPE(3, 4), false},
        {"LeakyReLU", mk_leaky, NB_SHAPE(3, 4), false},
        {"Dropout", mk_dropout, NB_SHAPE(3, 4), false},
        {"LayerNorm", mk_layer_norm, NB_SHAPE(3, 4), false},
        {"Embedding", mk_embedding, NB_SHAPE(2, 3), true},
        {"Flatten", mk_flatten, NB_SHAPE(2, 3, 2), false},
        {"MaxPool2d", mk_max_pool, NB_SHAPE(2, 3, 4), false},
        {"AvgPool2d", mk_avg_pool, NB_SHAPE(2, 4, 5), false},
        {"Conv2d", mk_conv, NB_SHAPE(2, 2, 5, 4), false},
        {"Conv2d no bias, unbatched", mk_conv_nobias, NB_SHAPE(3, 5, 4), false},
        {"Sequential", mk_mlp, NB_SHAPE(3, 4), false},
    };
    for (size_t k = 0; k < N(cases); k++) {
        nb_module *m = cases[k].make();
        assert_non_null(m);
        nb_tensor *in[8] = {NULL};
        int n = nb_module_parameters(m, in + 1, 7);
        assert_true(n >= 0);
        nb_tensor *x = nb_randn(cases[k].in);
        layer_ctx c = {m, NULL};
        if (cases[k].ids) {
            float *d = nb_tensor_data(x);
            for (int64_t i = 0; i < nb_tensor_numel(x); i++) d[i] = (float)(i % 6);
            c.ids = x;
        } else {
            float *d = nb_tensor_data(x); /* away from relu's kink */
            for (int64_t i = 0; i < nb_tensor_numel(x); i++) d[i] += d[i] < 0 ? -0.3f : 0.3f;
            nb_requires_grad_(x, true);
        }
        in[0] = x;
        if (nb_gradcheck(layer_forward, &c, in, n + 1, NULL) != NB_OK)
            fail_msg("%s: %s", cases[k].name, nb_last_error()->message);
        nb_release(x);
        nb_module_free(m);
    }
}

static void test_layer_modes_and_errors(void **state)
{
    (void)state;
    nb_module *d = nb_module_dropout(0.5);
    nb_tensor *x = nb_ones(NB_SHAPE(64));
    nb_tensor *y = nb_module_forward(d, x);
    int zeros = 0;
    for (int i = 0; i < 64; i++) zeros += nb_tensor_data(y)[i] == 0.0f;
    assert_true(zeros > 8 && zeros < 56); /* training: dropped and scaled */
    nb_release(y);
    assert_int_equal(nb_module_train(d, false), NB_OK);
    y = nb_module_forward(d, x);
    for (int i = 0; i < 64; i++) assert_true(nb_tensor_data(y)[i] == 1.0f); /* eval: identity */
    nb_release(y);
    nb_release(x);
    nb_module_free(d);
    nb_error_clear();
    assert_null(nb_module_dropout(1.5));
    assert_error(NB_EINVAL,
                 "nb_module_dropout: dropout probability has to be between 0 and 1, but got 1.5");
    assert_null(nb_module_layer_norm(NB_SHAPE0, 1e-5, true));
    assert_error(NB_EINVAL,
                 "nb_module_layer_norm: normalized_shape must have between 1 and 8 dims, got 0");
    assert_null(nb_module_layer_norm(NB_SHAPE(3), -1, true));
    assert_error(NB_EINVAL, "nb_module_layer_norm: eps must be >= 0, got -1");
    assert_null(nb_module_embedding(5, 2, 5));
    assert_error(NB_EINVAL,
                 "nb_module_embedding: Padding_idx must be within num_embeddings, got 5 for 5");
    assert_null(nb_module_embedding(-5, 2, NB_NO_PADDING));
    assert_error(NB_EINVAL,
                 "nb_module_embedding: num_embeddings (-5) and embedding_dim (2) must be >= 0");
    assert_null(nb_module_gelu((nb_gelu_approximate)7));
    assert_error(NB_EINVAL,
                 "nb_module_gelu: approximate argument must be either none or tanh, got 7");
    assert_null(nb_module_leaky_relu((double)INFINITY));
    assert_error(NB_EINVAL, "nb_module_leaky_relu: negative_slope must be finite, got inf");
    /* the padding row starts at zero and gets no gradient */
    nb_module *e = nb_module_embedding(4, 2, 1);
    nb_tensor *w = NULL;
    assert_int_equal(nb_module_parameters(e, &w, 1), 1);
    assert_true(nb_tensor_data(w)[2] == 0.0f && nb_tensor_data(w)[3] == 0.0f);
    nb_module_free(e);
}

/* Every allocation of building and running a model can fail cleanly. */
static void test_alloc_failures(void **state)
{
    (void)state;
    nb_tensor *x = nb_ones(NB_SHAPE(2, 3));
    long k;
    for (k = 1; k < 1000; k++) {
        nbt_fail_alloc_after(k);
        long live = nbt_alloc_live();
        nb_error_clear();
        nb_module *m = NB_SEQUENTIAL(nb_module_linear(3, 4, true), nb_module_relu(),
                                     NB_SEQUENTIAL(nb_module_linear(4, 2, true)));
        nb_tensor *y = m ? nb_module_forward(m, x) : NULL;
        int failed = nbt_alloc_failed();
        if (!y) {
            assert_int_equal(nb_last_error()->code, NB_ENOMEM);
            assert_true(failed);
        }
        nb_release(y);
        nb_module_free(m);
        nbt_fail_alloc_after(0);
        assert_int_equal(nbt_alloc_live(), live);
        if (!failed) break;
    }
    assert_true(k > 5);
    nb_release(x);
}

/* NB_SEQUENTIAL given one module twice while its list cannot grow: the module is freed once
 * (the builder freed it when it found no room, then stored or freed it again). */
static void test_builder_alloc_failures(void **state)
{
    (void)state;
    for (long k = 1; k < 4; k++) {
        long live = nbt_alloc_live();
        nb_module *a = nb_module_relu();
        nbt_fail_alloc_after(k);
        nb_error_clear();
        assert_null(NB_SEQUENTIAL(a, a));
        nbt_fail_alloc_after(0);
        assert_true(nb_last_error()->code == NB_ENOMEM || nb_last_error()->code == NB_EINVAL);
        assert_int_equal(nbt_alloc_live(), live);
    }
    /* a module an enclosing NB_SEQUENTIAL holds, given again to a failing inner one: the
       enclosing one frees it, once */
    long live = nbt_alloc_live();
    nb_module *a = nb_module_relu();
    nb_error_clear();
    assert_null(NB_SEQUENTIAL(a, NB_SEQUENTIAL(nb_module_linear(-1, 1, true), a)));
    assert_error(NB_EINVAL, "nb_module_linear: in_features (-1) and out_features (1) must be >= 0");
    a = nb_module_relu();
    assert_null(NB_SEQUENTIAL(a, NB_SEQUENTIAL(a)));
    assert_error(NB_EINVAL,
                 "nb_module_sequential: a module is also given to an enclosing NB_SEQUENTIAL");
    /* given to a failing inner one first, then to the enclosing one: the inner one leaves
       it to the end of the outermost, which frees it once */
    a = nb_module_relu();
    assert_null(NB_SEQUENTIAL(NB_SEQUENTIAL(a, nb_module_linear(-1, 1, true)), a));
    assert_error(NB_EINVAL, "nb_module_linear: in_features (-1) and out_features (1) must be >= 0");
    a = nb_module_relu();
    assert_null(NB_SEQUENTIAL(nb_module_tanh(), NB_SEQUENTIAL(a, a), NB_SEQUENTIAL(a), a));
    assert_error(NB_EINVAL, "nb_module_sequential: module 1 is also module 0");
    assert_int_equal(nbt_alloc_live(), live);
    /* and twice to a NB_SEQUENTIAL nested too deep to build */
    a = nb_module_relu();
    nb_module *deep = NB_SEQUENTIAL(
        NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(
            NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(
                NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(a, a)))))))))))))))));
    assert_null(deep);
    assert_error(NB_EINVAL, "nb_module_sequential: NB_SEQUENTIAL nested deeper than 16 levels");
    /* and to one nested too deep, then to an enclosing one */
    a = nb_module_relu();
    deep = NB_SEQUENTIAL(NB_SEQUENTIAL(
        NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(
            NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(
                NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(NB_SEQUENTIAL(a))))))))))))))),
        a));
    assert_null(deep);
    assert_error(NB_EINVAL, "nb_module_sequential: NB_SEQUENTIAL nested deeper than 16 levels");
    assert_int_equal(nbt_alloc_live(), live);
    /* the builder's frames (allocated when the outermost NB_SEQUENTIAL opens) cannot be had:
       NB_ENOMEM, every module given freed once, inner ones too; the next one builds */
    a = nb_module_relu();
    nbt_fail_alloc_after(1);
    assert_null(NB_SEQUENTIAL(a, NB_SEQUENTIAL(nb_module_tanh(), a), nb_module_sigmoid()));
    nbt_fail_alloc_after(0);
    assert_error(NB_ENOMEM, "nb_module_sequential: out of memory");
    assert_int_equal(nbt_alloc_live(), live);
    nb_module *m = NB_SEQUENTIAL(nb_module_relu(), NB_SEQUENTIAL(nb_module_tanh()));
    assert_non_null(m);
    assert_int_equal(nb_module_num_children(m), 2);
    nb_module_free(m);
    assert_int_equal(nbt_alloc_live(), live);
}

/* A parameter's values, concatenated over m (at most cap floats); their number. */
static size_t param_values(const nb_module *m, float *out, size_t cap)
{
    nb_tensor *p[8];
    int n = nb_module_parameters(m, p, 8);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)nb_tensor_numel(p[i]);
        assert_true(at + len <= cap);
        memcpy(out + at, nb_tensor_data(p[i]), len * sizeof(float));
        at += len;
    }
    return at;
}

/* nb_module_state_dict and nb_module_load_state_dict with the k-th allocation failing (once,
 * and from the k-th on): NB_ENOMEM naming the function, nothing leaked, the model loaded
 * whole or not at all. */
static void test_state_dict_alloc_failures(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_module *a = make_mixed();
    nb_manual_seed(1);
    nb_module *b = make_mixed();
    float va[64], vb[64], now[64];
    size_t n = param_values(a, va, 64);
    assert_int_equal(param_values(b, vb, 64), n);
    nb_module_free(b);
    for (int from_k = 0; from_k < 2; from_k++) {
        long k;
        for (k = 1;; k++) {
            long live = nbt_alloc_live();
            nb_manual_seed(1);
            b = make_mixed();
            nb_state_dict *d = nb_state_dict_new();
            assert_int_equal(nb_module_state_dict(a, d), NB_OK);
            from_k ? nbt_fail_alloc_from(k) : nbt_fail_alloc_after(k);
            nb_error_clear();
            nb_status rc = nb_module_load_state_dict(b, d, true);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            assert_int_equal(param_values(b, now, 64), n);
            if (rc != NB_OK) {
                assert_true(failed);
                assert_error(NB_ENOMEM, "nb_module_load_state_dict: out of memory");
                assert_memory_equal(now, vb, n * sizeof(float));
            } else {
                assert_memory_equal(now, va, n * sizeof(float));
            }
            nb_state_dict_free(d);
            nb_module_free(b);
            /* and saving: the dict holds some of the entries, freed with it */
            d = nb_state_dict_new();
            from_k ? nbt_fail_alloc_from(k) : nbt_fail_alloc_after(k);
            nb_error_clear();
            rc = nb_module_state_dict(a, d);
            failed = failed || nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (rc != NB_OK) assert_error(NB_ENOMEM, "nb_module_state_dict: out of memory");
            nb_state_dict_free(d);
            assert_int_equal(nbt_alloc_live(), live);
            if (!failed) break;
        }
        assert_true(k > 1);
    }
    nb_module_free(a);
}

static void header_example(void)
{
    // BEGIN nn.h example
    nb_manual_seed(0); // the very weights torch.manual_seed(0) gives nn.Sequential(...)
    nb_module *model = NB_SEQUENTIAL(nb_module_linear(784, 256, true), nb_module_relu(),
                                     nb_module_linear(256, 10, true));
    nb_tensor *x = nb_rand(NB_SHAPE(32, 784)), *labels = nb_randint(0, 10, NB_SHAPE(32));
    nb_scope *step = nb_scope_begin();
    nb_tensor *logits = nb_module_forward(model, x); // [32, 10]
    nb_tensor *loss = nb_cross_entropy(logits, labels, NULL, -100, NB_MEAN, 0.0);
    if (!loss || nb_backward(loss, NULL, false) != NB_OK)
        fprintf(stderr, "%s\n", nb_last_error()->message);
    nb_scope_end(step); // the gradients stay: in each parameter's .grad
    nb_release(x);
    nb_release(labels);
    nb_module_free(model);
    // END nn.h example
}

/* The header's example is this code, and it runs. */
static void test_header_example(void **state)
{
    (void)state;
    nb_error_clear();
    header_example();
    assert_int_equal(nb_last_error()->code, NB_OK);
    char *header = nbt_read_text(NB_TEST_DATA_DIR "/../../include/nabla/nn.h");
    char *self = nbt_read_text(NB_TEST_DATA_DIR "/../test_nn.c");
    static char in_header[4096], in_test[4096];
    nbt_extract(header, "step of its training:", " *     ", NULL, in_header, sizeof in_header);
    nbt_extract(self, "// BEGIN nn.h example", "    ", "// END nn.h example", in_test,
                sizeof in_test);
    assert_true(strlen(in_header) > 500);
    assert_string_equal(in_header, in_test);
    free(header);
    free(self);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_init_identity),
        T(test_init_xavier_zero_fans),
        T(test_repr_floats),
        T(test_pool_modules),
        T(test_conv2d_module_errors),
        T(test_child_keeps_mode),
        T(test_empty_sequential_forward),
        T(test_forward_and_freeze),
        T(test_state_dict_round_trip),
        T(test_containers),
        T(test_container_ownership),
        T(test_container_depth),
        T(test_alloc_failures),
        T(test_builder_alloc_failures),
        T(test_state_dict_alloc_failures),
        T(test_layer_gradcheck),
        T(test_layer_modes_and_errors),
        T(test_header_example),
    };
#undef T
    return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
