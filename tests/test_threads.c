/*
 * Threads: N threads each training its own model from its own generator give exactly what the
 * same work gives serially; grad mode, the last error and scopes are per thread; the default
 * generator may be shared; threads share nabla's pool. Run under ThreadSanitizer by the tsan
 * preset.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#define STEPS       15
#define MAX_THREADS 8

/* Run fn on each of items[0 .. n-1] (size bytes apart), one thread each, all at once. */
static void run_threads(void *(*fn)(void *), void *items, size_t size, int n)
{
    pthread_t t[MAX_THREADS];
    assert_true(n <= MAX_THREADS);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, (char *)items + (size_t)i * size), 0);
    for (int i = 0; i < n; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
}

typedef struct work {
    uint64_t seed;
    float params[8 * 16 + 16 + 16 + 1];
    nb_status rc;
    char error[256];
} work;

/* A small model and data drawn from a generator of seed; 15 SGD steps on BCE with logits. */
static void *train(void *arg)
{
    work *w = arg;
    nb_generator *g = nb_generator_new(w->seed);
    nb_module *m = NB_SEQUENTIAL(nb_module_linear(8, 16, true), nb_module_relu(),
                                 nb_module_linear(16, 1, true));
    nb_status rc = g && m ? nb_module_reset_parameters(m, g) : NB_ENOMEM;
    nb_tensor *x = rc == NB_OK ? nb_randn_gen(NB_SHAPE(32, 8), g) : NULL;
    nb_tensor *y = x ? nb_rand_gen(NB_SHAPE(32, 1), g) : NULL;
    nb_tensor *p[4];
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = 0.1;
    o.momentum = 0.9;
    nb_optim *opt = y && nb_module_parameters(m, p, 4) == 4 ? nb_optim_new(p, 4, &o) : NULL;
    if (!opt) rc = nb_last_error()->code;
    for (int step = 0; step < STEPS && rc == NB_OK; step++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *loss =
            nb_binary_cross_entropy_with_logits(nb_module_forward(m, x), y, NULL, NULL, NB_MEAN);
        rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
        if (rc == NB_OK) rc = nb_optim_step(opt);
        if (rc == NB_OK) rc = nb_optim_zero_grad(opt, true);
        nb_scope_end(s);
    }
    if (rc == NB_OK) {
        size_t at = 0;
        for (int i = 0; i < 4; i++) {
            memcpy(w->params + at, nb_tensor_data(p[i]),
                   (size_t)nb_tensor_numel(p[i]) * sizeof(float));
            at += (size_t)nb_tensor_numel(p[i]);
        }
    } else {
        snprintf(w->error, sizeof w->error, "%s", nb_last_error()->message);
    }
    w->rc = rc;
    nb_optim_free(opt);
    nb_release(x);
    nb_release(y);
    nb_module_free(m);
    nb_generator_free(g);
    return NULL;
}

static void test_threads_match_serial(void **state)
{
    (void)state;
    static work serial[MAX_THREADS], parallel[MAX_THREADS];
    for (int i = 0; i < MAX_THREADS; i++) {
        serial[i].seed = parallel[i].seed = (uint64_t)i + 10;
        train(&serial[i]);
        if (serial[i].rc != NB_OK) fail_msg("serial %d: %s", i, serial[i].error);
    }
    for (int n = 2; n <= MAX_THREADS; n *= 4) {
        run_threads(train, parallel, sizeof parallel[0], n);
        for (int i = 0; i < n; i++) {
            if (parallel[i].rc != NB_OK) fail_msg("thread %d of %d: %s", i, n, parallel[i].error);
            if (memcmp(serial[i].params, parallel[i].params, sizeof serial[i].params))
                fail_msg("thread %d of %d: parameters differ from the serial run", i, n);
        }
    }
    /* different seeds made different models */
    assert_true(memcmp(serial[0].params, serial[1].params, sizeof serial[0].params) != 0);
}

/*
 * The default generator from several threads at once. What nabla promises (tensor.h): one
 * call's draws are made under the generator's lock, so each call's values are one
 * contiguous run of the stream, in whatever order the threads take the lock. So the calls
 * of 8 threads, each making CALLS calls of the same kind and size, give as a multiset the
 * very runs that 8 * CALLS such calls give serially, and the stream then goes on from the
 * same place.
 */
#define CALLS 64
#define RUN   24 /* floats a call: randn's vector path takes 16 or more */

typedef enum draw_kind {
    RAND,
    RANDN_SCALAR,
    RANDN_VECTOR,
    RANDINT,
    RANDPERM,
    RAW,
    DROPOUT,
    KINDS
} draw_kind;
static const char *const draw_names[] = {"nb_rand",    "nb_randn (scalar)", "nb_randn (vector)",
                                         "nb_randint", "nb_randperm",       "nb_generator_random",
                                         "nb_dropout"};

typedef struct drawer {
    draw_kind kind;
    float runs[CALLS][RUN];
    nb_status rc;
} drawer;

/* One call's values into run (RUN floats, the rest of them 0). */
static nb_status draw(draw_kind kind, float *run)
{
    memset(run, 0, RUN * sizeof *run);
    if (kind == RAW) {
        uint32_t u = nb_generator_random(NULL);
        memcpy(run, &u, sizeof u);
        return NB_OK;
    }
    if (kind == DROPOUT) { /* a mask of RUN elements: one run of the stream too */
        nb_tensor *ones = nb_ones(NB_SHAPE(RUN));
        nb_tensor *m = ones ? nb_dropout(ones, 0.5, true) : NULL;
        nb_release(ones);
        if (!m) return nb_last_error()->code;
        memcpy(run, nb_tensor_data(m), RUN * sizeof *run);
        nb_release(m);
        return NB_OK;
    }
    nb_tensor *t = kind == RAND           ? nb_rand(NB_SHAPE(5))
                   : kind == RANDN_SCALAR ? nb_randn(NB_SHAPE(7))
                   : kind == RANDN_VECTOR ? nb_randn(NB_SHAPE(RUN))
                   : kind == RANDINT      ? nb_randint(0, 1000, NB_SHAPE(6))
                                          : nb_randperm(RUN, NULL);
    if (!t) return nb_last_error()->code;
    memcpy(run, nb_tensor_data(t), (size_t)nb_tensor_numel(t) * sizeof *run);
    nb_release(t);
    return NB_OK;
}

static void *drawing(void *arg)
{
    drawer *d = arg;
    d->rc = NB_OK;
    for (int c = 0; c < CALLS && d->rc == NB_OK; c++) d->rc = draw(d->kind, d->runs[c]);
    return NULL;
}

static int by_bytes(const void *a, const void *b)
{
    return memcmp(a, b, RUN * sizeof(float));
}

static void test_default_generator_shared(void **state)
{
    (void)state;
    static drawer threaded[MAX_THREADS];
    static float serial[MAX_THREADS * CALLS][RUN], got[MAX_THREADS * CALLS][RUN];
    for (draw_kind kind = RAND; kind < KINDS; kind++) {
        /* serially: the runs, then the next raw draw */
        nb_manual_seed(7 + (uint64_t)kind);
        for (int c = 0; c < MAX_THREADS * CALLS; c++)
            assert_int_equal(draw(kind, serial[c]), NB_OK);
        uint32_t next = nb_generator_random(NULL);
        /* 8 threads at once, from the same seed */
        nb_manual_seed(7 + (uint64_t)kind);
        for (int i = 0; i < MAX_THREADS; i++) threaded[i].kind = kind;
        run_threads(drawing, threaded, sizeof threaded[0], MAX_THREADS);
        for (int i = 0; i < MAX_THREADS; i++) {
            assert_int_equal(threaded[i].rc, NB_OK);
            memcpy(got[i * CALLS], threaded[i].runs, sizeof threaded[i].runs);
        }
        if (nb_generator_random(NULL) != next)
            fail_msg("%s: the stream after the threads is not where the serial one is",
                     draw_names[kind]);
        qsort(serial, MAX_THREADS * CALLS, sizeof serial[0], by_bytes);
        qsort(got, MAX_THREADS * CALLS, sizeof got[0], by_bytes);
        for (int c = 0; c < MAX_THREADS * CALLS; c++)
            if (memcmp(serial[c], got[c], sizeof serial[c]))
                fail_msg("%s: a thread's call is not one of the serial calls' runs",
                         draw_names[kind]);
        /* the runs differ from one another: a test that draws */
        for (int c = 1; c < MAX_THREADS * CALLS; c++)
            assert_true(memcmp(serial[c - 1], serial[c], sizeof serial[c]) != 0);
    }
}

/*
 * One model shared by threads for inference: under no_grad an op only reads its inputs (it
 * records no node and retains nothing), so threads may pass the same parameters to ops at
 * once. Each thread's outputs equal the serial ones; ThreadSanitizer (tsan preset) sees no
 * race, where it reports one in the parameters' reference counts with grad mode on.
 */
#define INFER_THREADS 4
#define INFER_CALLS   20

typedef struct inferrer {
    nb_module *model;
    uint64_t seed;
    float out[INFER_CALLS][32 * 4];
    nb_status rc;
} inferrer;

static void *infer(void *arg)
{
    inferrer *w = arg;
    nb_generator *g = nb_generator_new(w->seed);
    w->rc = g ? NB_OK : NB_ENOMEM;
    for (int c = 0; c < INFER_CALLS && w->rc == NB_OK; c++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *y = NULL;
        NB_NO_GRAD
        {
            y = nb_module_forward(w->model, nb_randn_gen(NB_SHAPE(32, 16), g));
        }
        if (y)
            memcpy(w->out[c], nb_tensor_data(y), sizeof w->out[c]);
        else
            w->rc = nb_last_error()->code;
        nb_scope_end(s);
    }
    nb_generator_free(g);
    return NULL;
}

static void test_shared_model_inference(void **state)
{
    (void)state;
    nb_manual_seed(3);
    nb_module *m = NB_SEQUENTIAL(nb_module_linear(16, 32, true), nb_module_relu(),
                                 nb_module_layer_norm(NB_SHAPE(32), 1e-5, true),
                                 nb_module_dropout(0.5), nb_module_linear(32, 4, true));
    assert_non_null(m);
    assert_int_equal(nb_module_train(m, false), NB_OK);
    static inferrer serial[INFER_THREADS], threaded[INFER_THREADS];
    for (int i = 0; i < INFER_THREADS; i++) {
        serial[i] = (inferrer){.model = m, .seed = (uint64_t)i + 1};
        threaded[i] = serial[i];
        infer(&serial[i]);
        assert_int_equal(serial[i].rc, NB_OK);
    }
    run_threads(infer, threaded, sizeof threaded[0], INFER_THREADS);
    for (int i = 0; i < INFER_THREADS; i++) {
        assert_int_equal(threaded[i].rc, NB_OK);
        if (memcmp(serial[i].out, threaded[i].out, sizeof serial[i].out))
            fail_msg("thread %d: outputs differ from the serial run", i);
    }
    nb_module_free(m);
}

typedef struct flags {
    bool grad_before, grad_inside;
    nb_status code;
    char message[128];
} flags;

static void *other_thread(void *arg)
{
    flags *f = arg;
    f->grad_before = nb_is_grad_enabled();
    nb_set_grad_enabled(false);
    f->grad_inside = nb_is_grad_enabled();
    nb_tensor *bad = nb_zeros(NB_SHAPE(-2)); /* NULL: no cmocka assert off the main thread */
    nb_release(bad);
    f->code = nb_last_error()->code;
    snprintf(f->message, sizeof f->message, "%s", nb_last_error()->message);
    return NULL;
}

static void test_per_thread_state(void **state)
{
    (void)state;
    nb_error_clear();
    nb_set_grad_enabled(true);
    nb_scope *s = nb_scope_begin();
    flags f;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &f), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(f.grad_before); /* a new thread starts with grad mode on */
    assert_false(f.grad_inside);
    assert_true(nb_is_grad_enabled()); /* its no-grad is its own */
    assert_int_equal(f.code, NB_EINVAL);
    assert_non_null(strstr(f.message, "nb_zeros: negative dimension -2"));
    assert_int_equal(nb_last_error()->code, NB_OK); /* its error is its own */
    assert_int_equal(nb_scope_end(s), NB_OK);
}

/*
 * Program threads that share nabla's pool: with nb_set_num_threads(3), 3 threads at once each
 * run a graph whose loops are large enough to be cut into the pool's tasks (a product, a
 * broadcast add, tanh, a product with a constant, a sum, and their gradients) and get the
 * serial run's bits.
 */
#define POOL_ROWS  256
#define POOL_IN    64
#define POOL_COLS  512 /* h: 131 072 elements, NB__PARALLEL_MIN */
#define POOL_USERS 3

typedef struct pool_work {
    uint64_t seed;
    float *grad; /* the gradient of w, POOL_IN * POOL_COLS */
    nb_status rc;
} pool_work;

static void *pool_graph(void *arg)
{
    pool_work *w = arg;
    nb_scope *s = nb_scope_begin();
    nb_generator *g = nb_generator_new(w->seed);
    nb_tensor *x = nb_randn_gen(NB_SHAPE(POOL_ROWS, POOL_IN), g);
    nb_tensor *wt = nb_requires_grad_(nb_randn_gen(NB_SHAPE(POOL_IN, POOL_COLS), g), true);
    nb_tensor *b = nb_randn_gen(NB_SHAPE(POOL_COLS), g);
    nb_tensor *c = nb_rand_gen(NB_SHAPE(POOL_ROWS, POOL_COLS), g);
    nb_tensor *h = nb_tanh(nb_add(nb_matmul(x, wt), b));
    nb_tensor *loss = nb_sum(nb_mul(h, c), NB_DIMS_ALL, false);
    w->rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
    const nb_tensor *gw = w->rc == NB_OK ? nb_tensor_grad(wt) : NULL;
    if (gw)
        memcpy(w->grad, nb_tensor_data_const(gw), sizeof(float) * POOL_IN * POOL_COLS);
    else if (w->rc == NB_OK)
        w->rc = NB_ESTATE;
    nb_generator_free(g);
    nb_scope_end(s);
    return NULL;
}

static void test_pool_shared_by_threads(void **state)
{
    (void)state;
    assert_int_equal(nb_set_num_threads(3), NB_OK);
    pool_work serial[POOL_USERS], shared[POOL_USERS];
    for (int i = 0; i < POOL_USERS; i++) {
        serial[i] =
            (pool_work){(uint64_t)i + 100, malloc(sizeof(float) * POOL_IN * POOL_COLS), NB_OK};
        shared[i] = (pool_work){serial[i].seed, malloc(sizeof(float) * POOL_IN * POOL_COLS), NB_OK};
        assert_non_null(serial[i].grad);
        assert_non_null(shared[i].grad);
        pool_graph(&serial[i]);
        assert_int_equal(serial[i].rc, NB_OK);
    }
    run_threads(pool_graph, shared, sizeof shared[0], POOL_USERS);
    for (int i = 0; i < POOL_USERS; i++) {
        assert_int_equal(shared[i].rc, NB_OK);
        if (memcmp(serial[i].grad, shared[i].grad, sizeof(float) * POOL_IN * POOL_COLS))
            fail_msg("thread %d: its gradient differs from the serial run's", i);
        free(serial[i].grad);
        free(shared[i].grad);
    }
    assert_int_equal(nb_set_num_threads(1), NB_OK);
}

int main(void)
{
    nb_set_num_threads(1); /* nabla's threads here, not BLAS's */
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_threads_match_serial), T(test_default_generator_shared),
        T(test_shared_model_inference), T(test_per_thread_state), T(test_pool_shared_by_threads)};
#undef T
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
