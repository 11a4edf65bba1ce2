/*
 * A warm training step makes no call to the C library's allocator: nabla-train's step
 * (784-256-128-10, Adam, batches refilled in place by the loader) after 3 warm-up steps, 10
 * more steps counted with nb_alloc_stats_get. The step allocates (tensors, nodes, gradients):
 * what the test asserts is that the default allocator's block cache serves every one of
 * those allocations once it has seen the step, so system_allocs and system_frees stay put.
 * A small convolutional network's step (conv2d's scratch columns included) likewise.
 * Builds without the block cache (the asan and memcheck presets) skip it, as there every
 * allocation is the C library's by design. And the counters under another allocator: every
 * allocation and free counted, none of them the C library's.
 */
#include <pthread.h>

#include "testutil.h"
#include "trainer.h"

#define WARM_STEPS  3
#define STEPS       10
#define BATCH       64 /* the subset's 1000 examples hold 15 full batches: no epoch boundary */
#define N_PARAMS    6
#define THREADS_MAX 2

typedef struct run {
    nb_dataset *train;
    nb_dataloader *dl;
    nb_module *model;
    nb_optim *opt;
    nb_tensor *x, *y;
} run;

static void run_open(run *r)
{
    r->train = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", true);
    assert_non_null(r->train);
    nb_dataloader_options lo = {.batch_size = BATCH, .shuffle = true};
    r->dl = nb_dataloader_new(r->train, &lo);
    const int64_t hidden[] = {256, 128};
    nb_manual_seed(0);
    r->model = trainer_model(784, hidden, 2, 10);
    nb_tensor *p[N_PARAMS];
    assert_int_equal(nb_module_parameters(r->model, p, N_PARAMS), N_PARAMS);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    r->opt = nb_optim_new(p, N_PARAMS, &o);
    r->x = nb_empty(NB_SHAPE(BATCH, 784));
    r->y = nb_empty(NB_SHAPE(BATCH));
    assert_non_null(r->opt);
    assert_non_null(r->x);
    assert_non_null(r->y);
    assert_int_equal(nb_dataloader_begin_epoch(r->dl), NB_OK);
}

static void step(run *r)
{
    double loss;
    assert_int_equal(nb_dataloader_next_into(r->dl, r->x, r->y), BATCH);
    assert_int_equal(trainer_step(r->model, r->opt, r->x, r->y, &loss, NULL), NB_OK);
}

static void run_close(run *r)
{
    nb_release(r->x);
    nb_release(r->y);
    nb_optim_free(r->opt);
    nb_module_free(r->model);
    nb_dataloader_free(r->dl);
    nb_dataset_free(r->train);
}

static void test_warm_step_allocates_nothing(void **state)
{
    (void)state;
    /* the default allocator (with its cache) rather than the counting one; no nabla object is
     * alive here, so it may be swapped */
    nb_set_allocator(NULL);
    for (int threads = 1; threads <= THREADS_MAX; threads++) {
        assert_int_equal(nb_set_num_threads(threads), NB_OK);
        nb_alloc_stats s0, s1, s2;
        nb_alloc_stats_get(&s0);
        run r;
        run_open(&r);
        nb_alloc_stats_get(&s1);
        step(&r);
        nb_alloc_stats_get(&s2);
        if (s2.cached_bytes == 0 && s2.system_frees > s1.system_frees) {
            run_close(&r);
            nbt_setup_counting(NULL);
            skip(); /* built without the block cache */
        }
        /* the first step of the first run is cold: its blocks come from the C library */
        if (threads == 1) assert_true(s2.system_allocs > s1.system_allocs);
        for (int i = 1; i < WARM_STEPS; i++) step(&r);
        nb_alloc_stats_get(&s1);
        for (int i = 0; i < STEPS; i++) step(&r);
        nb_alloc_stats_get(&s2);
        print_message("%d thread(s): %llu allocations in %d warm steps, %llu from the C library\n",
                      threads, (unsigned long long)(s2.allocs - s1.allocs), STEPS,
                      (unsigned long long)(s2.system_allocs - s1.system_allocs));
        assert_true(s2.allocs - s1.allocs >= (uint64_t)STEPS); /* the steps do allocate */
        assert_int_equal(s2.system_allocs - s1.system_allocs, 0);
        assert_int_equal(s2.system_frees - s1.system_frees, 0);
        run_close(&r);
        nb_alloc_stats_get(&s2);
        assert_int_equal(s2.allocs - s0.allocs, s2.frees - s0.frees); /* nothing leaked */
    }
    nb_set_num_threads(1);
    nbt_setup_counting(NULL); /* the counting allocator back, for the teardown's leak check */
}

/* A small convolutional network's step (conv2d with its scratch columns, grouped, strided),
 * cross-entropy, SGD: warm, it makes no call to the C library's allocator either. */
static nb_status conv_step(nb_module *model, nb_optim *opt, nb_tensor *x, nb_tensor *y)
{
    nb_scope *sc = nb_scope_begin();
    nb_tensor *loss = nb_cross_entropy(nb_module_forward(model, x), y, NULL, -100, NB_MEAN, 0);
    nb_status rc = loss ? nb_optim_zero_grad(opt, true) : nb_last_error()->code;
    if (rc == NB_OK) rc = nb_backward(loss, NULL, false);
    if (rc == NB_OK) rc = nb_optim_step(opt);
    nb_status end = nb_scope_end(sc);
    return rc != NB_OK ? rc : end;
}

static void test_warm_conv_step_allocates_nothing(void **state)
{
    (void)state;
    nb_set_allocator(NULL); /* no nabla object is alive */
    for (int threads = 1; threads <= THREADS_MAX; threads++) {
        assert_int_equal(nb_set_num_threads(threads), NB_OK);
        nb_manual_seed(0);
        nb_module *model = NB_SEQUENTIAL(
            nb_module_conv2d(1, 8, NB_SHAPE(3), NB_SHAPE(1), NB_SHAPE(1), NB_SHAPE(1), 1, true),
            nb_module_relu(),
            nb_module_conv2d(8, 16, NB_SHAPE(3), NB_SHAPE(2), NB_SHAPE(1), NB_SHAPE(1), 2, true),
            nb_module_relu(), nb_module_flatten(1, -1), nb_module_linear(16 * 14 * 14, 10, true));
        nb_tensor *p[6];
        assert_int_equal(nb_module_parameters(model, p, 6), 6);
        nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
        o.lr = 0.01;
        nb_optim *opt = nb_optim_new(p, 6, &o);
        nb_tensor *x = nb_randn(NB_SHAPE(32, 1, 28, 28)), *y = nb_randint(0, 10, NB_SHAPE(32));
        assert_non_null(opt);
        assert_non_null(x);
        assert_non_null(y);
        nb_alloc_stats s1, s2;
        for (int i = 0; i < WARM_STEPS; i++) assert_int_equal(conv_step(model, opt, x, y), NB_OK);
        nb_alloc_stats_get(&s1);
        for (int i = 0; i < STEPS; i++) assert_int_equal(conv_step(model, opt, x, y), NB_OK);
        nb_alloc_stats_get(&s2);
        bool cache = s2.cached_bytes > 0;
        print_message("conv, %d thread(s): %llu allocations in %d warm steps, %llu from the C "
                      "library\n",
                      threads, (unsigned long long)(s2.allocs - s1.allocs), STEPS,
                      (unsigned long long)(s2.system_allocs - s1.system_allocs));
        nb_release(x);
        nb_release(y);
        nb_optim_free(opt);
        nb_module_free(model);
        if (!cache) {
            nb_set_num_threads(1);
            nbt_setup_counting(NULL);
            skip(); /* built without the block cache */
        }
        assert_int_equal(s2.system_allocs - s1.system_allocs, 0);
        assert_int_equal(s2.system_frees - s1.system_frees, 0);
    }
    nb_set_num_threads(1);
    nbt_setup_counting(NULL);
}

/* The counters count through any allocator; only the default one reaches the C library. */
static void test_stats_under_another_allocator(void **state)
{
    (void)state;
    nb_alloc_stats a, b;
    nb_alloc_stats_get(&a);
    long count0 = nbt_alloc_count();
    nb_tensor *t = nb_zeros(NB_SHAPE(1000));
    assert_non_null(t);
    nb_alloc_stats_get(&b);
    assert_int_equal(b.allocs - a.allocs, (uint64_t)(nbt_alloc_count() - count0));
    assert_true(b.allocs > a.allocs);
    assert_int_equal(b.frees, a.frees);
    nb_release(t);
    nb_alloc_stats_get(&b);
    assert_int_equal(b.allocs - a.allocs, b.frees - a.frees);
    assert_int_equal(b.system_allocs, a.system_allocs); /* the counting allocator's, not libc's */
    assert_int_equal(b.system_frees, a.system_frees);
    nb_alloc_stats_get(NULL); /* does nothing */
}

/* A new thread's counts under the default allocator: its first blocks come from the C
 * library, its first free makes the cache's table (one more call), and the same blocks come
 * back from the cache. */
static void *fresh_thread_counts(void *out)
{
    nb_alloc_stats *s = out; /* s[0] before, s[1] after the first tensor, s[2] after all */
    nb_alloc_stats_get(&s[0]);
    nb_tensor *t = nb_zeros(NB_SHAPE(1000));
    nb_alloc_stats_get(&s[1]);
    nb_release(t);
    t = nb_zeros(NB_SHAPE(1000));
    nb_release(t);
    nb_alloc_stats_get(&s[2]);
    return NULL;
}

static void test_stats_of_a_fresh_thread(void **state)
{
    (void)state;
    nb_set_allocator(NULL); /* no nabla object is alive */
    nb_alloc_stats s[3];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_thread_counts, s), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    nbt_setup_counting(NULL);
    if (s[2].cached_bytes == 0) skip(); /* built without the block cache */
    uint64_t first = s[1].allocs - s[0].allocs;
    assert_true(first > 0);
    assert_int_equal(s[1].system_allocs - s[0].system_allocs, first);
    assert_int_equal(s[2].allocs - s[0].allocs, 2 * first);
    assert_int_equal(s[2].system_allocs - s[0].system_allocs, first + 1); /* + the table */
    assert_int_equal(s[2].system_frees, s[0].system_frees);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_warm_step_allocates_nothing), T(test_warm_conv_step_allocates_nothing),
        T(test_stats_under_another_allocator), T(test_stats_of_a_fresh_thread)};
#undef T
    return cmocka_run_group_tests_name("steady_state", tests, NULL, NULL);
}
