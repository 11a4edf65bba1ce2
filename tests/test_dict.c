/* State dicts: order, replacement, removal, metadata, errors, allocation failure. */
#include "testutil.h"

static void test_order_and_lookup(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    assert_non_null(d);
    nb_tensor *a = nb_ones(NB_SHAPE(2)), *b = nb_zeros(NB_SHAPE(3)), *c = nb_scalar(5);
    assert_int_equal(nb_state_dict_set(d, "0.weight", a), NB_OK);
    assert_int_equal(nb_state_dict_set(d, "0.bias", b), NB_OK);
    assert_int_equal(nb_state_dict_size(d), 2);
    assert_string_equal(nb_state_dict_name(d, 0), "0.weight");
    assert_string_equal(nb_state_dict_name(d, 1), "0.bias");
    assert_ptr_equal(nb_state_dict_get(d, "0.bias"), b);
    assert_ptr_equal(nb_state_dict_tensor(d, 0), a);
    assert_null(nb_state_dict_get(d, "missing"));
    assert_null(nb_state_dict_name(d, 2));
    assert_null(nb_state_dict_tensor(d, -1));

    /* replacing keeps the position; the dict holds its own reference */
    assert_int_equal(nb_state_dict_set(d, "0.weight", c), NB_OK);
    assert_int_equal(nb_state_dict_size(d), 2);
    assert_ptr_equal(nb_state_dict_tensor(d, 0), c);
    nb_release(c);
    float v;
    assert_int_equal(nb_tensor_item(nb_state_dict_get(d, "0.weight"), &v), NB_OK);
    assert_true(v == 5.0f);

    assert_int_equal(nb_state_dict_remove(d, "0.weight"), NB_OK);
    assert_int_equal(nb_state_dict_size(d), 1);
    assert_string_equal(nb_state_dict_name(d, 0), "0.bias");
    nb_release(a);
    nb_release(b);
    nb_state_dict_free(d);
    nb_state_dict_free(NULL);
}

static void test_metadata(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_state_dict_metadata_size(d), 0);
    assert_int_equal(nb_state_dict_set_metadata(d, "format", "pt"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "epoch", "3"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "format", "nabla"), NB_OK);
    assert_int_equal(nb_state_dict_metadata_size(d), 2);
    assert_string_equal(nb_state_dict_metadata_key(d, 0), "format");
    assert_string_equal(nb_state_dict_metadata(d, "format"), "nabla");
    assert_string_equal(nb_state_dict_metadata(d, "epoch"), "3");
    assert_null(nb_state_dict_metadata(d, "nope"));
    assert_null(nb_state_dict_metadata_key(d, 2));
    nb_state_dict_free(d);
}

static void test_errors(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    nb_tensor *t = nb_ones(NB_SHAPE(1));
    nb_error_clear();
    assert_int_equal(nb_state_dict_set(d, "x", NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set: argument 't' is NULL");
    assert_int_equal(nb_state_dict_set(NULL, "x", t), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set: argument 'd' is NULL");
    assert_int_equal(nb_state_dict_set(d, NULL, t), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set: argument 'name' is NULL");
    assert_int_equal(nb_state_dict_set(d, "", t), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set: a tensor name cannot be empty");
    assert_int_equal(nb_state_dict_remove(d, "x"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_remove: no tensor named \"x\"");
    assert_int_equal(nb_state_dict_remove(NULL, "x"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_remove: argument 'd' is NULL");
    assert_int_equal(nb_state_dict_remove(d, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_remove: argument 'name' is NULL");
    assert_int_equal(nb_state_dict_set_metadata(d, NULL, "v"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set_metadata: argument 'key' is NULL");
    assert_int_equal(nb_state_dict_set_metadata(d, "k", NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set_metadata: argument 'value' is NULL");
    assert_int_equal(nb_state_dict_set_metadata(NULL, "k", "v"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_state_dict_set_metadata: argument 'd' is NULL");
    /* a NULL tensor from a failed call keeps that call's error */
    assert_int_equal(nb_state_dict_set(d, "x", nb_zeros(NB_SHAPE(-1))), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_zeros: negative dimension");
    assert_int_equal(nb_state_dict_size(d), 0);
    assert_int_equal(nb_state_dict_size(NULL), 0);
    nb_release(t);
    nb_state_dict_free(d);
}

/* Every allocation of building a dict can fail cleanly, leaving it as it was. */
static void test_alloc_failures(void **state)
{
    (void)state;
    nb_tensor *t = nb_ones(NB_SHAPE(1));
    long k;
    for (k = 1; k < 100; k++) {
        nbt_fail_alloc_after(k);
        long live0 = nbt_alloc_live();
        nb_error_clear();
        nb_state_dict *d = nb_state_dict_new();
        nb_status rc = d ? NB_OK : NB_ENOMEM;
        char name[16];
        for (int i = 0; i < 12 && rc == NB_OK; i++) {
            snprintf(name, sizeof name, "p%d", i);
            rc = nb_state_dict_set(d, name, t);
            if (rc == NB_OK) assert_int_equal(nb_state_dict_size(d), i + 1);
            if (rc != NB_OK) assert_int_equal(nb_state_dict_size(d), i);
        }
        if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "k", "v");
        if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "k", "w");
        int failed = nbt_alloc_failed();
        if (rc != NB_OK) {
            assert_int_equal(rc, NB_ENOMEM);
            assert_true(failed);
            const char *msg = nb_last_error()->message;
            assert_true(!strcmp(msg, "nb_state_dict_new: out of memory") ||
                        !strcmp(msg, "nb_state_dict_set: out of memory") ||
                        !strcmp(msg, "nb_state_dict_set_metadata: out of memory"));
        }
        nb_state_dict_free(d);
        assert_int_equal(nbt_alloc_live(), live0);
        nbt_fail_alloc_after(0);
        if (!failed) break;
    }
    assert_true(k > 5);
    nb_release(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_lookup, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_metadata, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failures, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("dict", tests, NULL, NULL);
}
