/* State dicts: order, replacement, removal, metadata, errors, allocation failure. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <time.h>

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

/*
 * A dict of n entries and n metadata keys built by name, read back by name, then with every
 * seventh entry removed (the index follows the moved entries); the seconds of the thread's CPU
 * time it took.
 */
static double build_many(int n, nb_tensor *const *pool)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    nb_state_dict *d = nb_state_dict_new();
    assert_non_null(d);
    char name[32], value[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        assert_int_equal(nb_state_dict_set(d, name, pool[i % 4]), NB_OK);
        snprintf(value, sizeof value, "%d", i);
        assert_int_equal(nb_state_dict_set_metadata(d, name, value), NB_OK);
    }
    for (int i = 0; i < n; i += 3) { /* replaced in place, found again */
        snprintf(name, sizeof name, "layers.%d.weight", i);
        assert_int_equal(nb_state_dict_set(d, name, pool[(i + 1) % 4]), NB_OK);
    }
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        assert_ptr_equal(nb_state_dict_get(d, name), pool[(i + (i % 3 == 0)) % 4]);
        snprintf(value, sizeof value, "%d", i);
        assert_string_equal(nb_state_dict_metadata(d, name), value);
    }
    assert_int_equal(nb_state_dict_size(d), n);
    assert_int_equal(nb_state_dict_metadata_size(d), n);
    for (int i = 0; i < 8 && i * 7 < n; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i * 7);
        assert_int_equal(nb_state_dict_remove(d, name), NB_OK);
        assert_null(nb_state_dict_get(d, name));
    }
    for (int64_t i = 0; i < nb_state_dict_size(d); i++)
        assert_ptr_equal(nb_state_dict_get(d, nb_state_dict_name(d, i)),
                         nb_state_dict_tensor(d, i));
    assert_null(nb_state_dict_get(d, "layers.weight"));
    nb_state_dict_free(d);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}

/*
 * Setting and getting by name take constant time, so a dict built by hand entry by entry is
 * linear: a search per call made 40 000 entries take 64 times as long as 5 000. Checked as the
 * ratio of the thread's CPU time, each size's best of three runs in turn, against a bound of
 * 24 (linear gives about 8), as test_load_many_entries does for files.
 */
static void test_many_entries(void **state)
{
    (void)state;
    enum { N = 40000 };
    nb_tensor *pool[4] = {nb_ones(NB_SHAPE(1)), nb_zeros(NB_SHAPE(2)), nb_scalar(3),
                          nb_ones(NB_SHAPE(0))};
    double small = 1e30, big = 1e30;
    for (int run = 0; run < 3; run++) {
        double s = build_many(N / 8, pool), b = build_many(N, pool);
        small = s < small ? s : small;
        big = b < big ? b : big;
    }
    if (big > 24 * small + 0.05)
        fail_msg("%d entries took %.3f s, %d took %.3f s", N, big, N / 8, small);
    for (int i = 0; i < 4; i++) nb_release(pool[i]);
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
        cmocka_unit_test(test_many_entries),
    };
    return cmocka_run_group_tests_name("dict", tests, NULL, NULL);
}
