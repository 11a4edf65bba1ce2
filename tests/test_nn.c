/*
 * Layers: PyTorch's initialisation bit for bit, reprs, state dicts, freezing, modes,
 * containers and their errors. Reference values: tests/data/gen_nn.py.
 */
#include <math.h>
#include <stdio.h>

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

#define N(a) (sizeof(a) / sizeof((a)[0]))

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

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_init_identity), T(test_forward_and_freeze), T(test_state_dict_round_trip),
        T(test_containers),    T(test_alloc_failures),
    };
#undef T
    return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
