/*
 * Random numbers: every case of data/rng_ref.h (made by data/gen_rng.py from PyTorch 1.13)
 * must come out bit for bit the same; plus generators, the normal cache, threads and errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "data/rng_ref.h"

#define N_CASES (sizeof rng_ref_cases / sizeof rng_ref_cases[0])

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Index of the first element whose bits differ from want, or -1. */
static int64_t first_mismatch(const float *got, const uint32_t *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (bits_of(got[i]) != want[i]) return i;
    return -1;
}

/* Hash of float32 bit patterns, as gen_rng.py stores large results. */
static uint64_t bits_hash(const float *d, int64_t n)
{
    uint64_t h = 0, k = 1;
    for (int64_t i = 0; i < n; i++) {
        k *= RNG_REF_HASH_K;
        h += ((uint64_t)bits_of(d[i]) + 1u) * k;
    }
    return h;
}

/* Run one reference case on the default generator or, for gen cases, on g. */
static nb_tensor *run_case(const rng_ref_case *c, nb_generator *g)
{
    nb_generator *on = c->gen ? g : NULL;
    if (c->reseed) {
        if (c->gen)
            nb_generator_seed(g, c->seed);
        else
            nb_manual_seed(c->seed);
    }
    nb_shape shape = nb_shape_make(c->ndim, c->dims);
    nb_tensor *t = NULL;
    switch (c->op) {
    case RNG_REF_RAND:
        t = c->gen ? nb_rand_gen(shape, g) : nb_rand(shape);
        break;
    case RNG_REF_RANDN:
        t = c->gen ? nb_randn_gen(shape, g) : nb_randn(shape);
        break;
    case RNG_REF_RANDINT:
        t = c->gen ? nb_randint_gen((int64_t)c->a, (int64_t)c->b, shape, g)
                   : nb_randint((int64_t)c->a, (int64_t)c->b, shape);
        break;
    case RNG_REF_RANDPERM:
        t = nb_randperm((int64_t)c->a, on);
        break;
    case RNG_REF_NORMAL:
        t = nb_empty(shape);
        assert_non_null(t);
        assert_int_equal(nb_normal_(t, c->a, c->b, on), NB_OK);
        break;
    case RNG_REF_UNIFORM:
        t = nb_empty(shape);
        assert_non_null(t);
        assert_int_equal(nb_uniform_(t, c->a, c->b, on), NB_OK);
        break;
    case RNG_REF_RANDOM:
        t = nb_empty(shape);
        assert_non_null(t);
        assert_int_equal(nb_random_(t, (int64_t)c->a, (int64_t)c->b, on), NB_OK);
        break;
    }
    if (!t) fail_msg("%s: %s", c->name, nb_last_error()->message);
    return t;
}

/* Every case in order (some continue from the state the previous one left). */
static void test_reference(void **state)
{
    (void)state;
    nb_generator *g = nb_generator_new(0);
    assert_non_null(g);
    size_t identical = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        const rng_ref_case *c = &rng_ref_cases[k];
        nb_tensor *t = run_case(c, g);
        assert_int_equal(nb_tensor_ndim(t), c->ndim);
        assert_int_equal(nb_tensor_numel(t), c->numel);
        const float *d = nb_tensor_data_const(t);
        if (!c->bits) {
            uint64_t h = bits_hash(d, c->numel);
            if (h == c->hash)
                identical++;
            else
                print_error("%s: hash 0x%016" PRIx64 ", want 0x%016" PRIx64 "\n", c->name, h,
                            c->hash);
        } else {
            int64_t i = first_mismatch(d, c->bits, c->numel);
            if (i < 0) {
                identical++;
            } else {
                print_error("%s: first mismatch at index %" PRId64 ": got %.9g (0x%08" PRIx32
                            "), want %.9g (0x%08" PRIx32 ")\n",
                            c->name, i, (double)d[i], bits_of(d[i]), (double)float_of(c->bits[i]),
                            c->bits[i]);
            }
        }
        nb_release(t);
    }
    nb_generator_free(g);
    print_message("%zu/%zu cases bit-identical to PyTorch\n", identical, (size_t)N_CASES);
    assert_int_equal(identical, N_CASES);
}

/* The documented examples, spelled out: torch.manual_seed(0); torch.rand(3), randint. */
static void test_known_values(void **state)
{
    (void)state;
    nb_manual_seed(0);
    nb_tensor *r = nb_rand(NB_SHAPE(3));
    assert_non_null(r);
    const float *d = nb_tensor_data_const(r);
    assert_int_equal(bits_of(d[0]), 0x3efe1558u); /* 0.4962566 */
    nb_release(r);

    /* randn(5, 3)[0, 0] = 1.5410 and the following randn(3) starts with the partner */
    nb_manual_seed(0);
    nb_tensor *w = nb_randn(NB_SHAPE(5, 3));
    nb_tensor *b = nb_randn(NB_SHAPE(3));
    assert_non_null(w);
    assert_non_null(b);
    assert_float_equal(nb_tensor_data_const(w)[0], 1.5410f, 1e-4f);
    assert_float_equal(nb_tensor_data_const(b)[0], 0.1227f, 1e-4f);
    nb_release(w);
    nb_release(b);
}

/* Seeds equal modulo 2^32 give the same stream (at::mt19937 keeps only the low 32 bits). */
static void test_seed_low_bits(void **state)
{
    (void)state;
    nb_generator *a = nb_generator_new(7);
    nb_generator *b = nb_generator_new((UINT64_C(1) << 40) + 7);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 1000; i++) assert_int_equal(nb_generator_random(a), nb_generator_random(b));
    nb_generator_free(a);
    nb_generator_free(b);
}

/* Two generators with one seed give one stream; neither touches the default generator. */
static void test_generator_independence(void **state)
{
    (void)state;
    nb_manual_seed(3);
    uint32_t want[4];
    for (int i = 0; i < 4; i++) want[i] = nb_generator_random(NULL);

    nb_manual_seed(3);
    nb_generator *a = nb_generator_new(11);
    nb_generator *b = nb_generator_new(11);
    nb_generator *c = nb_generator_new(12);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_not_equal(a, nb_default_generator());
    assert_ptr_not_equal(a, b);

    nb_tensor *ta = nb_empty(NB_SHAPE(41));
    nb_tensor *tb = nb_empty(NB_SHAPE(41));
    nb_tensor *tc = nb_empty(NB_SHAPE(41));
    assert_non_null(ta);
    assert_non_null(tb);
    assert_non_null(tc);
    const size_t bytes = 41 * sizeof(float);
    for (int round = 0; round < 4; round++) {
        assert_int_equal(nb_uniform_(ta, -2.0, 5.0, a), NB_OK);
        assert_int_equal(nb_uniform_(tb, -2.0, 5.0, b), NB_OK);
        assert_int_equal(nb_uniform_(tc, -2.0, 5.0, c), NB_OK);
        assert_memory_equal(nb_tensor_data_const(ta), nb_tensor_data_const(tb), bytes);
        assert_memory_not_equal(nb_tensor_data_const(ta), nb_tensor_data_const(tc), bytes);
        assert_int_equal(nb_normal_(ta, 1.0, 2.0, a), NB_OK);
        assert_int_equal(nb_normal_(tb, 1.0, 2.0, b), NB_OK);
        assert_memory_equal(nb_tensor_data_const(ta), nb_tensor_data_const(tb), bytes);
        assert_int_equal(nb_random_(ta, -100, 100, a), NB_OK);
        assert_int_equal(nb_random_(tb, -100, 100, b), NB_OK);
        assert_memory_equal(nb_tensor_data_const(ta), nb_tensor_data_const(tb), bytes);
        assert_int_equal(nb_generator_random(a), nb_generator_random(b));
        /* the default generator went on undisturbed */
        assert_int_equal(nb_generator_random(NULL), want[round]);
    }

    /* a generator seeded like the default gives the default-generator functions' values */
    nb_generator_seed(a, 21);
    nb_generator_seed(NULL, 21); /* the same as nb_manual_seed(21) */
    nb_tensor *r = nb_randn(NB_SHAPE(41));
    assert_non_null(r);
    assert_int_equal(nb_normal_(ta, 0.0, 1.0, a), NB_OK);
    assert_memory_equal(nb_tensor_data_const(ta), nb_tensor_data_const(r), bytes);

    nb_release(r);
    nb_release(ta);
    nb_release(tb);
    nb_release(tc);
    nb_generator_free(a);
    nb_generator_free(b);
    nb_generator_free(c);
    nb_generator_free(NULL);                   /* no-op */
    nb_generator_free(nb_default_generator()); /* ignored: the default lives on */
    nb_manual_seed(0);
    assert_int_equal(nb_generator_random(nb_default_generator()),
                     0x8c7f0aacu); /* mt19937(0)'s first output */
}

/* The cached Box–Muller partner: per generator, carried across calls, cleared by seeding. */
static void test_normal_cache(void **state)
{
    (void)state;
    nb_manual_seed(5);
    nb_tensor *pair = nb_randn(NB_SHAPE(2));
    nb_tensor *one = nb_empty(NB_SHAPE(1));
    assert_non_null(pair);
    assert_non_null(one);
    const float *p = nb_tensor_data_const(pair);

    /* one value at a time from a generator: cos, then the cached sin */
    nb_generator *g = nb_generator_new(5);
    assert_non_null(g);
    assert_int_equal(nb_normal_(one, 0.0, 1.0, g), NB_OK);
    assert_int_equal(bits_of(nb_tensor_data_const(one)[0]), bits_of(p[0]));
    assert_int_equal(nb_normal_(one, 0.0, 1.0, g), NB_OK);
    assert_int_equal(bits_of(nb_tensor_data_const(one)[0]), bits_of(p[1]));

    /* reseeding clears the cache: the first value again, not a stale partner */
    assert_int_equal(nb_normal_(one, 0.0, 1.0, g), NB_OK); /* leaves a partner cached */
    nb_generator_seed(g, 5);
    assert_int_equal(nb_normal_(one, 0.0, 1.0, g), NB_OK);
    assert_int_equal(bits_of(nb_tensor_data_const(one)[0]), bits_of(p[0]));

    nb_manual_seed(5);
    nb_tensor *a = nb_randn(NB_SHAPE(1)); /* caches p[1] in the default generator */
    nb_manual_seed(5);
    nb_tensor *b = nb_randn(NB_SHAPE(1));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(bits_of(nb_tensor_data_const(a)[0]), bits_of(p[0]));
    assert_int_equal(bits_of(nb_tensor_data_const(b)[0]), bits_of(p[0]));

    /* the cache belongs to its generator: g's partner does not leak into the default one */
    nb_generator_seed(g, 99);
    assert_int_equal(nb_normal_(one, 0.0, 1.0, g), NB_OK);
    nb_release(b);
    b = nb_randn(NB_SHAPE(1)); /* the default's cached partner, p[1] */
    assert_non_null(b);
    assert_int_equal(bits_of(nb_tensor_data_const(b)[0]), bits_of(p[1]));

    nb_generator_free(g);
    nb_release(a);
    nb_release(b);
    nb_release(one);
    nb_release(pair);
}

/* rand_like/randn_like: the shape of t, the values of rand/randn. */
static void test_like(void **state)
{
    (void)state;
    nb_tensor *t = nb_zeros(NB_SHAPE(2, 3, 4));
    assert_non_null(t);
    nb_manual_seed(9);
    nb_tensor *r = nb_rand(NB_SHAPE(2, 3, 4));
    nb_tensor *n = nb_randn(NB_SHAPE(2, 3, 4));
    nb_manual_seed(9);
    nb_tensor *rl = nb_rand_like(t);
    nb_tensor *nl = nb_randn_like(t);
    assert_non_null(r);
    assert_non_null(n);
    assert_non_null(rl);
    assert_non_null(nl);
    assert_int_equal(nb_tensor_ndim(rl), 3);
    assert_int_equal(nb_tensor_dim_size(nl, 2), 4);
    assert_memory_equal(nb_tensor_data_const(r), nb_tensor_data_const(rl), 24 * sizeof(float));
    assert_memory_equal(nb_tensor_data_const(n), nb_tensor_data_const(nl), 24 * sizeof(float));

    /* a 0-d tensor holds one value; an empty one draws nothing */
    nb_tensor *s = nb_randn(NB_SHAPE0);
    nb_tensor *e = nb_rand(NB_SHAPE(0, 3));
    assert_non_null(s);
    assert_non_null(e);
    assert_int_equal(nb_tensor_numel(s), 1);
    assert_int_equal(nb_tensor_numel(e), 0);

    nb_release(s);
    nb_release(e);
    nb_release(t);
    nb_release(r);
    nb_release(n);
    nb_release(rl);
    nb_release(nl);
}

/* Ranges: rand in [0, 1), randint within [low, high), uniform_ within [from, to). */
static void test_ranges(void **state)
{
    (void)state;
    nb_tensor *t = nb_randint(-3, 4, NB_SHAPE(5000));
    assert_non_null(t);
    const float *d = nb_tensor_data_const(t);
    int seen[7] = {0};
    for (int i = 0; i < 5000; i++) {
        assert_true(d[i] >= -3.0f && d[i] < 4.0f && d[i] == (float)(int)d[i]);
        seen[(int)d[i] + 3]++;
    }
    for (int i = 0; i < 7; i++) assert_true(seen[i] > 0);
    nb_release(t);

    t = nb_rand(NB_SHAPE(5000));
    assert_non_null(t);
    d = nb_tensor_data_const(t);
    for (int i = 0; i < 5000; i++) assert_true(d[i] >= 0.0f && d[i] < 1.0f);
    assert_int_equal(nb_uniform_(t, 3.0, 3.0, NULL), NB_OK); /* an empty range is allowed */
    for (int i = 0; i < 5000; i++) assert_true(d[i] == 3.0f);
    assert_int_equal(nb_normal_(t, 1.5, 0.0, NULL), NB_OK); /* std 0: all the mean */
    for (int i = 0; i < 5000; i++) assert_true(d[i] == 1.5f);
    nb_release(t);
}

/* In-place fills bump the version and refuse leaves that require grad. */
static void test_inplace(void **state)
{
    (void)state;
    nb_tensor *t = nb_zeros(NB_SHAPE(4));
    assert_non_null(t);
    uint64_t v = nb_tensor_version(t);
    assert_int_equal(nb_uniform_(t, 0.0, 1.0, NULL), NB_OK);
    assert_int_equal(nb_normal_(t, 0.0, 1.0, NULL), NB_OK);
    assert_int_equal(nb_random_(t, 0, 2, NULL), NB_OK);
    assert_int_equal(nb_tensor_version(t), v + 3);

    assert_ptr_equal(nb_requires_grad_(t, true), t);
    assert_int_equal(nb_uniform_(t, 0.0, 1.0, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_uniform_");
    assert_int_equal(nb_normal_(t, 0.0, 1.0, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_normal_");
    assert_int_equal(nb_random_(t, 0, 2, NULL), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_random_");
    assert_int_equal(nb_tensor_version(t), v + 3);

    nb_set_grad_enabled(false); /* under no_grad it is allowed, as in PyTorch */
    assert_int_equal(nb_normal_(t, 0.0, 1.0, NULL), NB_OK);
    nb_set_grad_enabled(true);
    assert_int_equal(nb_tensor_version(t), v + 4);
    nb_release(t);
}

static void test_errors(void **state)
{
    (void)state;
    assert_null(nb_randint(5, 5, NB_SHAPE(3)));
    assert_error(NB_EINVAL, "nb_randint: low (5) must be less than high (5)");
    assert_null(nb_randint(6, -1, NB_SHAPE(3)));
    assert_error(NB_EINVAL, "nb_randint");

    nb_error_clear();
    assert_null(nb_rand(NB_SHAPE(2, -1)));
    assert_error(NB_EINVAL, "nb_rand");
    nb_error_clear();
    assert_null(nb_randn(NB_SHAPE(-4)));
    assert_error(NB_EINVAL, "nb_randn");

    nb_error_clear();
    assert_null(nb_rand_like(NULL));
    assert_error(NB_EINVAL, "nb_rand_like");
    nb_error_clear();
    assert_null(nb_randn_like(NULL));
    assert_error(NB_EINVAL, "nb_randn_like");

    nb_error_clear();
    assert_int_equal(nb_uniform_(NULL, 0.0, 1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_uniform_");
    nb_error_clear();
    assert_int_equal(nb_normal_(NULL, 0.0, 1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_normal_");
    nb_error_clear();
    assert_int_equal(nb_random_(NULL, 0, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_random_");

    nb_tensor *t = nb_zeros(NB_SHAPE(3));
    assert_non_null(t);
    uint64_t v = nb_tensor_version(t);
    assert_int_equal(nb_uniform_(t, 2.0, 1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_uniform_: from (2) > to (1)");
    assert_int_equal(nb_uniform_(t, 0.0, 1e300, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_uniform_");
    assert_int_equal(nb_normal_(t, 0.0, -1.0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_normal_: std (-1) must be >= 0");
    assert_int_equal(nb_random_(t, 3, 3, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_random_: low (3) must be less than high (3)");
    /* failed calls change nothing */
    assert_int_equal(nb_tensor_version(t), v);
    const float *d = nb_tensor_data_const(t);
    for (int i = 0; i < 3; i++) assert_true(d[i] == 0.0f);
    nb_release(t);

    /* out of memory */
    nbt_fail_alloc_after(1);
    assert_null(nb_generator_new(1));
    nbt_fail_alloc_after(0);
    assert_error(NB_ENOMEM, "nb_generator_new");
    for (long k = 1;; k++) { /* each allocation nb_randn makes, failing in turn */
        nb_error_clear();
        nbt_fail_alloc_after(k);
        nb_tensor *r = nb_randn(NB_SHAPE(4));
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_non_null(r);
            nb_release(r);
            break;
        }
        assert_null(r);
        assert_error(NB_ENOMEM, "nb_randn");
    }
    assert_int_equal(nbt_alloc_live(), 0);
}

/* ---- threads ---------------------------------------------------------------------------- */

#define THREAD_CALLS 64
#define MAX_THREADS  8

typedef struct thread_job {
    nb_generator *gen; /* NULL: the default generator through nb_randn */
    int64_t n;         /* elements per call */
    uint64_t hashes[THREAD_CALLS];
    int finite; /* every value drawn was finite */
    int failed; /* a call returned NULL */
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    job->finite = 1;
    for (int k = 0; k < THREAD_CALLS; k++) {
        nb_tensor *t =
            job->gen ? nb_randn_gen(NB_SHAPE(job->n), job->gen) : nb_randn(NB_SHAPE(job->n));
        if (!t) {
            job->failed = 1;
            return NULL;
        }
        const float *d = nb_tensor_data_const(t);
        for (int64_t i = 0; i < job->n; i++)
            if (!isfinite(d[i])) job->finite = 0;
        job->hashes[k] = bits_hash(d, job->n);
        nb_release(t);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void run_threads(thread_job *jobs, int nthreads)
{
    pthread_t tid[MAX_THREADS];
    for (int t = 0; t < nthreads; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, thread_main, &jobs[t]), 0);
    for (int t = 0; t < nthreads; t++) assert_int_equal(pthread_join(tid[t], NULL), 0);
    for (int t = 0; t < nthreads; t++) {
        assert_false(jobs[t].failed);
        assert_true(jobs[t].finite);
    }
}

/*
 * Threads sharing the default generator: every call holds the lock for its whole fill, so
 * with calls of one size the calls, whatever their order, get exactly the values of the
 * same number of serial calls. Both randn paths: 5 (the double path, with the cached
 * partner carried from call to call) and 37 (the 16-at-a-time path with a ragged tail).
 */
static void test_threads_default_generator(void **state)
{
    (void)state;
    static const int counts[] = {2, 8};
    static const int64_t sizes[] = {5, 37};
    static thread_job jobs[MAX_THREADS];
    static uint64_t serial[MAX_THREADS * THREAD_CALLS], threaded[MAX_THREADS * THREAD_CALLS];
    for (size_t c = 0; c < 2; c++) {
        for (size_t z = 0; z < 2; z++) {
            const int nthreads = counts[c];
            const size_t total = (size_t)nthreads * THREAD_CALLS;
            nb_manual_seed(17);
            for (size_t k = 0; k < total; k++) {
                nb_tensor *t = nb_randn(NB_SHAPE(sizes[z]));
                assert_non_null(t);
                serial[k] = bits_hash(nb_tensor_data_const(t), sizes[z]);
                nb_release(t);
            }
            uint32_t after = nb_generator_random(NULL);

            nb_manual_seed(17);
            memset(jobs, 0, sizeof jobs);
            for (int t = 0; t < nthreads; t++) jobs[t].n = sizes[z];
            run_threads(jobs, nthreads);
            for (int t = 0; t < nthreads; t++)
                memcpy(threaded + (size_t)t * THREAD_CALLS, jobs[t].hashes, sizeof jobs[t].hashes);
            qsort(serial, total, sizeof serial[0], cmp_u64);
            qsort(threaded, total, sizeof threaded[0], cmp_u64);
            assert_memory_equal(serial, threaded, total * sizeof serial[0]);
            /* no draw lost or repeated: the stream continues where the serial one did */
            assert_int_equal(nb_generator_random(NULL), after);
        }
    }
}

/* A generator per thread: each thread's values are exactly its generator's serial ones. */
static void test_threads_own_generators(void **state)
{
    (void)state;
    static thread_job jobs[MAX_THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < MAX_THREADS; t++) {
        jobs[t].gen = nb_generator_new(100 + (uint64_t)t);
        assert_non_null(jobs[t].gen);
        jobs[t].n = t % 2 ? 5 : 37;
    }
    run_threads(jobs, MAX_THREADS);
    for (int t = 0; t < MAX_THREADS; t++) {
        nb_generator_seed(jobs[t].gen, 100 + (uint64_t)t);
        for (int k = 0; k < THREAD_CALLS; k++) {
            nb_tensor *r = nb_randn_gen(NB_SHAPE(jobs[t].n), jobs[t].gen);
            assert_non_null(r);
            assert_int_equal(bits_hash(nb_tensor_data_const(r), jobs[t].n), jobs[t].hashes[k]);
            nb_release(r);
        }
        nb_generator_free(jobs[t].gen);
    }
}

/* ---- the generator forms and randperm -------------------------------------------------- */

/* nb_*_gen(…, NULL) is the default generator; a generator leaves the default one alone. */
static void test_gen_forms(void **state)
{
    (void)state;
    nb_generator *g = nb_generator_new(4);
    assert_non_null(g);
    nb_manual_seed(4);
    uint32_t first = nb_generator_random(NULL);
    nb_manual_seed(4);
    nb_tensor *want[4] = {nb_rand(NB_SHAPE(9)), nb_randn(NB_SHAPE(9)),
                          nb_randint(-3, 8, NB_SHAPE(9)), nb_randperm(9, NULL)};
    uint32_t after = nb_generator_random(NULL);

    nb_manual_seed(4);
    nb_tensor *dflt[4] = {nb_rand_gen(NB_SHAPE(9), NULL), nb_randn_gen(NB_SHAPE(9), NULL),
                          nb_randint_gen(-3, 8, NB_SHAPE(9), NULL), nb_randperm(9, NULL)};
    assert_int_equal(nb_generator_random(NULL), after);

    nb_manual_seed(4);
    nb_tensor *own[4] = {nb_rand_gen(NB_SHAPE(9), g), nb_randn_gen(NB_SHAPE(9), g),
                         nb_randint_gen(-3, 8, NB_SHAPE(9), g), nb_randperm(9, g)};
    nb_manual_seed(4);
    assert_int_equal(nb_generator_random(NULL), first); /* untouched by g */
    assert_int_equal(nb_generator_random(g), after);    /* g went the same way */

    for (int i = 0; i < 4; i++) {
        assert_non_null(want[i]);
        assert_non_null(dflt[i]);
        assert_non_null(own[i]);
        assert_memory_equal(nb_tensor_data_const(want[i]), nb_tensor_data_const(dflt[i]),
                            9 * sizeof(float));
        assert_memory_equal(nb_tensor_data_const(want[i]), nb_tensor_data_const(own[i]),
                            9 * sizeof(float));
        nb_release(want[i]);
        nb_release(dflt[i]);
        nb_release(own[i]);
    }

    /* a permutation holds every index once */
    nb_tensor *p = nb_randperm(1000, g);
    assert_non_null(p);
    assert_int_equal(nb_tensor_ndim(p), 1);
    int seen[1000] = {0};
    const float *d = nb_tensor_data_const(p);
    for (int i = 0; i < 1000; i++) {
        assert_true(d[i] >= 0.0f && d[i] < 1000.0f && d[i] == (float)(int)d[i]);
        seen[(int)d[i]]++;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    nb_release(p);
    nb_generator_free(g);
}

static void test_gen_errors(void **state)
{
    (void)state;
    assert_null(nb_randperm(-1, NULL));
    assert_error(NB_EINVAL, "nb_randperm: n must be non-negative, got -1");
    nb_error_clear();
    assert_null(nb_randperm((INT64_C(1) << 24) + 1, NULL));
    assert_error(NB_ERANGE, "nb_randperm: n (16777217) is above 2^24 = 16777216: float32 "
                            "cannot hold every index exactly");
    nb_error_clear();
    assert_null(nb_randint_gen(2, 2, NB_SHAPE(1), NULL));
    assert_error(NB_EINVAL, "nb_randint_gen: low (2) must be less than high (2)");
    nb_error_clear();
    assert_null(nb_rand_gen(NB_SHAPE(-1), NULL));
    assert_error(NB_EINVAL, "nb_rand_gen");
    nb_error_clear();
    assert_null(nb_randn_gen(NB_SHAPE(-1), NULL));
    assert_error(NB_EINVAL, "nb_randn_gen");

    /* a generator that failed to be made is not "the default generator": its error stays */
    nb_manual_seed(6);
    uint32_t first = nb_generator_random(NULL);
    nb_manual_seed(6);
    nb_tensor *t = nb_zeros(NB_SHAPE(3));
    assert_non_null(t);
    uint64_t v = nb_tensor_version(t);
    nbt_fail_alloc_after(1);
    nb_generator *g = nb_generator_new(1);
    nbt_fail_alloc_after(0);
    assert_null(g);
    assert_null(nb_rand_gen(NB_SHAPE(2), g));
    assert_null(nb_randn_gen(NB_SHAPE(2), g));
    assert_null(nb_randint_gen(0, 5, NB_SHAPE(2), g));
    assert_null(nb_randperm(5, g));
    assert_int_equal(nb_uniform_(t, 0.0, 1.0, g), NB_ENOMEM);
    assert_int_equal(nb_normal_(t, 0.0, 1.0, g), NB_ENOMEM);
    assert_int_equal(nb_random_(t, 0, 5, g), NB_ENOMEM);
    assert_error(NB_ENOMEM, "nb_generator_new: out of memory");
    assert_int_equal(nb_tensor_version(t), v); /* nothing was drawn or written */
    assert_int_equal(nb_generator_random(NULL), first);
    /* once the error has been read, NULL is the default generator again */
    nb_tensor *r = nb_rand_gen(NB_SHAPE(2), g);
    assert_non_null(r);
    nb_release(r);
    nb_release(t);

    /* out of memory in each allocation nb_randperm makes */
    for (long k = 1;; k++) {
        nb_error_clear();
        nbt_fail_alloc_after(k);
        nb_tensor *p = nb_randperm(10, NULL);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_non_null(p);
            nb_release(p);
            break;
        }
        assert_null(p);
        assert_error(NB_ENOMEM, "nb_randperm: out of memory");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_known_values, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_seed_low_bits, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_generator_independence, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_normal_cache, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_like, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_ranges, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_inplace, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_threads_default_generator, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_threads_own_generators, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_gen_forms, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_gen_errors, nbt_setup_counting, nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
