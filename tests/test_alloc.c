/* The default allocator: its per-thread cache of freed blocks by size class. */
#include <pthread.h>
#include <stdint.h>

#include "testutil.h"

/* Sizes around every kind of class boundary, in floats. */
static const int64_t sizes[] = {0,       1,       15,      16,      17,     240,   241,
                                256,     257,     320,     321,     1000,   1024,  1025,
                                1100,    4096,    5000,    65536,   65537,  99999, 262144,
                                1048559, 1048560, 1048561, 1310720, 1500000};

/* Fill a fresh tensor of n floats completely, check its alignment, and read it back. */
static void fill_and_check(int64_t n, float tag)
{
    nb_tensor *t = nb_empty(NB_SHAPE(n));
    assert_non_null(t);
    float *d = nb_tensor_data(t);
    assert_int_equal((uintptr_t)d % 64, 0);
    for (int64_t i = 0; i < n; i++) d[i] = tag + (float)(i % 1000);
    for (int64_t i = 0; i < n; i++)
        if (d[i] != tag + (float)(i % 1000))
            fail_msg("size %lld: element %lld", (long long)n, (long long)i);
    nb_release(t);
}

static void test_sizes_reuse(void **state)
{
    (void)state;
    /* twice over: the second round is served from the cache the first filled */
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            fill_and_check(sizes[i], (float)round);
    /* many live blocks of one class, then all freed and taken again */
    nb_tensor *live[200];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++) {
            live[i] = nb_full(NB_SHAPE(100), (float)i);
            assert_non_null(live[i]);
        }
        for (int i = 0; i < 200; i++) {
            float v;
            assert_int_equal(nb_tensor_get(live[i], (const int64_t[]){99}, &v), NB_OK);
            assert_true(v == (float)i);
        }
        for (int i = 0; i < 200; i++) nb_release(live[i]);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    for (int k = 0; k < 50; k++)
        for (size_t i = 0; i < 12; i++) fill_and_check(sizes[i], (float)k);
    return NULL;
}

/* Each thread has its own cache, returned to the system when the thread exits. */
static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
    worker(NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
}

/* A tensor made in one thread and freed in another. */
static void *release_it(void *t)
{
    nb_release(t);
    return NULL;
}

static void test_free_elsewhere(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        nb_tensor *t = nb_ones(NB_SHAPE(1000));
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, release_it, t), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        fill_and_check(1000, 1.0f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sizes_reuse, nbt_setup, nbt_teardown),
        cmocka_unit_test_setup_teardown(test_threads, nbt_setup, nbt_teardown),
        cmocka_unit_test_setup_teardown(test_free_elsewhere, nbt_setup, nbt_teardown),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
