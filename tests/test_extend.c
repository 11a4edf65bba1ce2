/* nabla/extend.h: errors and allocations of libraries built on nabla, as nabla's own. */
#include "testutil.h"

#include <nabla/extend.h>

static void test_error_set(void **state)
{
    (void)state;
    nb_error_clear();
    assert_int_equal(nb_error_pending(), NB_OK);
    assert_int_equal(nb_error_set(NB_ESHAPE, "my_op", "sizes %d and %d\ndiffer", 3, 4), NB_ESHAPE);
    assert_int_equal(nb_error_pending(), NB_ESHAPE);
    assert_error(NB_ESHAPE, "my_op: sizes 3 and 4 differ");
    assert_int_equal(nb_error_pending(), NB_OK); /* read: no longer pending */

    /* a long cause is cut to nabla's one line of 511 bytes */
    char long_text[700];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    nb_error_set(NB_EIO, "my_op", "%s", long_text);
    const nb_error *e = nb_last_error();
    assert_int_equal(e->code, NB_EIO);
    assert_int_equal(strlen(e->message), 511);
    assert_memory_equal(e->message, "my_op: xxx", 10);

    assert_int_equal(nb_error_set(NB_OK, "my_op", "fine"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_error_set: code must be an error (negative), got 0");
    assert_int_equal(nb_error_set(NB_EIO, NULL, "x"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_error_set: argument 'fn' is NULL");
    /* the compiler would refuse a NULL format, rightly; the function must too */
    const char *no_fmt = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-security"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    assert_int_equal(nb_error_set(NB_EIO, "my_op", no_fmt), NB_EINVAL);
#pragma GCC diagnostic pop
    assert_error(NB_EINVAL, "nb_error_set: argument 'fmt' is NULL");
}

static void test_error_null(void **state)
{
    (void)state;
    nb_error_clear();
    assert_int_equal(nb_error_null("my_op", "t"), NB_EINVAL);
    assert_error(NB_EINVAL, "my_op: argument 't' is NULL");
    /* a pending error is the cause of the NULL: it is kept */
    assert_null(nb_matmul(NULL, NULL));
    nb_error_set(NB_ESHAPE, "nb_matmul", "size mismatch");
    assert_int_equal(nb_error_null("my_op", "t"), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_matmul: size mismatch");
    assert_int_equal(nb_error_null(NULL, "t"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_error_null: argument 'fn' is NULL");
    assert_int_equal(nb_error_null("my_op", NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_error_null: argument 'arg' is NULL");
}

static void test_alloc(void **state)
{
    (void)state;
    long live = nbt_alloc_live();
    void *p = nb_alloc(100, 64);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal(nbt_alloc_live(), live + 1); /* through the installed allocator */
    memset(p, 1, 100);
    nb_free(p);
    assert_int_equal(nbt_alloc_live(), live);
    p = nb_alloc(8, 0);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    nb_free(p);
    nb_free(NULL);
    assert_null(nb_alloc(0, 16));
    assert_null(nb_alloc(8, 3));
    assert_null(nb_alloc(8, 128));
    nbt_fail_alloc_after(1);
    assert_null(nb_alloc(8, 16));
    assert_true(nbt_alloc_failed());
    nbt_fail_alloc_after(0);
}

/* The same draws as nb_randperm (checked against torch.randperm in test_rng), as int64. */
static void test_randperm_into(void **state)
{
    (void)state;
    int64_t got[50];
    nb_generator *g = nb_generator_new(7);
    assert_int_equal(nb_randperm_into(50, g, got), NB_OK);
    nb_generator_seed(g, 7);
    nb_tensor *want = nb_randperm(50, g);
    for (int i = 0; i < 50; i++) assert_true((float)got[i] == nb_tensor_data_const(want)[i]);
    nb_release(want);
    /* the default generator, and the stream goes on where nb_randperm leaves it */
    nb_manual_seed(1);
    assert_int_equal(nb_randperm_into(10, NULL, got), NB_OK);
    uint32_t after = nb_generator_random(NULL);
    nb_manual_seed(1);
    nb_release(nb_randperm(10, NULL));
    assert_int_equal(nb_generator_random(NULL), after);
    assert_int_equal(nb_randperm_into(0, g, NULL), NB_OK);

    nb_error_clear();
    assert_int_equal(nb_randperm_into(-1, g, got), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_randperm_into: n must be non-negative, got -1");
    assert_int_equal(nb_randperm_into(3, g, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_randperm_into: argument 'out' is NULL");
    /* a NULL generator while an error is pending is a failed nb_generator_new: nothing is
       drawn */
    nb_manual_seed(1);
    uint32_t first = nb_generator_random(NULL);
    nb_manual_seed(1);
    nb_error_set(NB_ENOMEM, "nb_generator_new", "out of memory");
    assert_int_equal(nb_randperm_into(10, NULL, got), NB_ENOMEM);
    assert_error(NB_ENOMEM, "nb_generator_new: out of memory");
    assert_int_equal(nb_generator_random(NULL), first);
    nb_generator_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_error_set, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_error_null, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_randperm_into, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
