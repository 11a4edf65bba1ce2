/*
 * The distributed sampler against PyTorch 1.13's DistributedSampler (data/dist_sampler_ref.h,
 * made by data/gen_dist_sampler.py): every rank's indices for each case and epoch, the
 * loader fed with them against DataLoader(..., sampler=...), errors, allocation failure.
 * It needs no MPI (rank and num_replicas are given): one process runs it.
 */
#include <inttypes.h>

#include "testutil.h"

#include <nabla/dist.h>

#include "data/dist_sampler_ref.h"

static uint64_t list_hash(const int64_t *v, int64_t n)
{
    uint64_t h = 0, k = 1;
    for (int64_t i = 0; i < n; i++) {
        k *= DIST_REF_HASH_K;
        h += ((uint64_t)v[i] + 1u) * k;
    }
    return h;
}

static void test_reference(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof dist_ref_lists / sizeof dist_ref_lists[0]; c++) {
        const dist_ref_list *r = &dist_ref_lists[c];
        nb_dist_sampler_options o = {
            .shuffle = r->shuffle,
            .seed = (uint64_t)r->seed_lo | (uint64_t)r->seed_hi << 32,
            .drop_last = r->drop_last,
        };
        nb_dist_sampler *s = nb_dist_sampler_new(r->n, r->replicas, r->rank, &o);
        assert_non_null(s);
        assert_int_equal(nb_dist_sampler_set_epoch(s, r->epoch), NB_OK);
        assert_int_equal(nb_dist_sampler_num_samples(s), r->num_samples);
        int64_t n = -1;
        const int64_t *got = nb_dist_sampler_indices(s, &n);
        assert_int_equal(n, r->num_samples);
        if (n == 0) assert_null(got);
        for (int64_t i = 0; i < n; i++) {
            int64_t want = r->indices ? r->indices[i] : i < DIST_REF_FIRST ? r->first[i] : got[i];
            if (got[i] != want)
                fail_msg("%s, rank %d, epoch %" PRId64 ": index %" PRId64 " is %" PRId64
                         ", want %" PRId64,
                         r->name, r->rank, r->epoch, i, got[i], want);
        }
        if (list_hash(got, n) != r->hash)
            fail_msg("%s, rank %d, epoch %" PRId64 ": the indices differ from PyTorch's", r->name,
                     r->rank, r->epoch);
        nb_dist_sampler_free(s);
    }
}

/* The defaults are PyTorch's, and options NULL means them. */
static void test_defaults(void **state)
{
    (void)state;
    nb_dist_sampler_options o = nb_dist_sampler_defaults();
    assert_true(o.shuffle);
    assert_int_equal(o.seed, 0);
    assert_false(o.drop_last);
    nb_dist_sampler *a = nb_dist_sampler_new(10, 3, 1, NULL);
    nb_dist_sampler *b = nb_dist_sampler_new(10, 3, 1, &o);
    int64_t na, nb;
    const int64_t *ia = nb_dist_sampler_indices(a, &na), *ib = nb_dist_sampler_indices(b, &nb);
    assert_int_equal(na, 4);
    assert_int_equal(nb, 4);
    assert_memory_equal(ia, ib, 4 * sizeof *ia);
    /* the indices follow the epoch, and going back gives the same ones again */
    int64_t first[4];
    memcpy(first, ia, sizeof first);
    assert_int_equal(nb_dist_sampler_set_epoch(a, 1), NB_OK);
    assert_true(memcmp(first, ia, sizeof first) != 0);
    assert_int_equal(nb_dist_sampler_set_epoch(a, 0), NB_OK);
    assert_memory_equal(first, ia, sizeof first);
    assert_ptr_equal(nb_dist_sampler_indices(a, NULL), ia);
    nb_dist_sampler_free(a);
    nb_dist_sampler_free(b);
}

/* The ranks' shares: disjoint and covering the dataset when nothing is padded or dropped. */
static void test_partition(void **state)
{
    (void)state;
    int seen[24] = {0};
    for (int r = 0; r < 4; r++) {
        nb_dist_sampler *s = nb_dist_sampler_new(24, 4, r, NULL);
        nb_dist_sampler_set_epoch(s, 3);
        int64_t n;
        const int64_t *idx = nb_dist_sampler_indices(s, &n);
        assert_int_equal(n, 6);
        for (int64_t i = 0; i < n; i++) seen[idx[i]]++;
        nb_dist_sampler_free(s);
    }
    for (int i = 0; i < 24; i++) assert_int_equal(seen[i], 1);
}

/* A loader fed with the sampler's indices yields DataLoader(..., sampler=...)'s batches. */
static void test_loader(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof dist_ref_loaders / sizeof dist_ref_loaders[0]; c++) {
        const dist_ref_loader *r = &dist_ref_loaders[c];
        uint8_t images[64], labels[64];
        for (int i = 0; i < 64; i++) images[i] = labels[i] = (uint8_t)i;
        /* an IDX pair of n one-byte examples whose value is their index */
        uint8_t im[12 + 64] = {0, 0, 8, 2, 0, 0, 0, (uint8_t)r->n, 0, 0, 0, 1};
        uint8_t lb[8 + 64] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)r->n};
        memcpy(im + 12, images, (size_t)r->n);
        memcpy(lb + 8, labels, (size_t)r->n);
        nb_dataset *ds = nb_idx_load_memory(im, 12 + (size_t)r->n, lb, 8 + (size_t)r->n);
        assert_non_null(ds);
        nb_manual_seed(r->seed);
        nb_dist_sampler_options so = {.shuffle = r->shuffle, .seed = r->sampler_seed};
        nb_dist_sampler *s = nb_dist_sampler_new(r->n, r->replicas, r->rank, &so);
        nb_dataloader_options lo = {.batch_size = r->batch_size, .drop_last = r->drop_last};
        nb_dataloader *dl = nb_dataloader_new(ds, &lo);
        int64_t i = 0, k = 0;
        for (int e = 0; e < r->epochs; e++) {
            int64_t m;
            assert_int_equal(nb_dist_sampler_set_epoch(s, e), NB_OK);
            const int64_t *mine = nb_dist_sampler_indices(s, &m);
            assert_int_equal(nb_dataloader_set_order(dl, mine, m), NB_OK);
            assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
            nb_tensor *x, *y;
            int64_t b;
            while ((b = nb_dataloader_next(dl, &x, &y)) > 0) {
                assert_true(k < r->nsizes);
                assert_int_equal(b, r->sizes[k++]);
                for (int64_t j = 0; j < b; j++, i++) {
                    float label;
                    assert_int_equal(nb_tensor_get(y, &j, &label), NB_OK);
                    assert_true(i < r->nindices);
                    assert_true(label == (float)r->indices[i]);
                }
                nb_release(x);
                nb_release(y);
            }
            assert_int_equal(r->sizes[k++], 0);
        }
        assert_int_equal(i, r->nindices);
        assert_int_equal(k, r->nsizes);
        nb_tensor *after = nb_rand(NB_SHAPE(3));
        assert_memory_equal(nb_tensor_data_const(after), r->after, sizeof r->after);
        nb_release(after);
        nb_dataloader_free(dl);
        nb_dist_sampler_free(s);
        nb_dataset_free(ds);
    }
}

static void test_errors(void **state)
{
    (void)state;
    nb_error_clear();
    assert_null(nb_dist_sampler_new(-1, 2, 0, NULL));
    assert_error(NB_EINVAL, "nb_dist_sampler_new: size must be non-negative, got -1");
    assert_null(nb_dist_sampler_new(5, 0, 0, NULL));
    assert_error(NB_EINVAL, "nb_dist_sampler_new: num_replicas must be at least 1, got 0");
    assert_null(nb_dist_sampler_new(5, 2, 2, NULL));
    assert_error(NB_EINVAL,
                 "nb_dist_sampler_new: Invalid rank 2, rank should be in the interval [0, 1]");
    assert_null(nb_dist_sampler_new(5, 2, -1, NULL));
    assert_error(NB_EINVAL,
                 "nb_dist_sampler_new: Invalid rank -1, rank should be in the interval [0, 1]");
    assert_int_equal(nb_dist_sampler_set_epoch(NULL, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_sampler_set_epoch: argument 's' is NULL");
    assert_int_equal(nb_dist_sampler_num_samples(NULL), -1);
    int64_t n = 5;
    assert_null(nb_dist_sampler_indices(NULL, &n));
    assert_int_equal(n, 0);

    nb_dist_sampler_options o = {.shuffle = true, .seed = UINT64_MAX - 1};
    nb_dist_sampler *s = nb_dist_sampler_new(7, 2, 0, &o);
    assert_int_equal(nb_dist_sampler_set_epoch(s, 1), NB_OK);
    int64_t before[4];
    memcpy(before, nb_dist_sampler_indices(s, NULL), sizeof before);
    assert_int_equal(nb_dist_sampler_set_epoch(s, 2), NB_ERANGE);
    assert_error(NB_ERANGE, "nb_dist_sampler_set_epoch: seed + epoch = 18446744073709551614 + 2 "
                            "is 2^64 or more (PyTorch: Overflow when unpacking long)");
    assert_memory_equal(nb_dist_sampler_indices(s, NULL), before, sizeof before);
    nb_dist_sampler_free(s);
    nb_dist_sampler_free(NULL);
    /* more indices than size_t counts the bytes of: no memory for them, whatever the
       options (the byte counts wrapped to small blocks, which the indices overran) */
    const int64_t huge[] = {((int64_t)1 << 61) + 1, ((int64_t)1 << 62) + 3, INT64_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            nb_dist_sampler_options h = {.shuffle = shuffle};
            assert_null(nb_dist_sampler_new(huge[i], 1, 0, &h));
            assert_error(NB_ENOMEM, "nb_dist_sampler_new: out of memory");
            assert_null(nb_dist_sampler_new(huge[i], 2, 1, &h));
            assert_error(NB_ENOMEM, "nb_dist_sampler_new: out of memory");
        }
    }
    /* without shuffle the seed is not used */
    o.shuffle = false;
    s = nb_dist_sampler_new(7, 2, 0, &o);
    assert_int_equal(nb_dist_sampler_set_epoch(s, 2), NB_OK);
    nb_dist_sampler_free(s);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    for (long k = 1;; k++) {
        nb_error_clear();
        nbt_fail_alloc_after(k);
        nb_dist_sampler *s = nb_dist_sampler_new(100, 3, 2, NULL);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_non_null(s);
            /* a new epoch allocates nothing */
            nbt_fail_alloc_after(1);
            assert_int_equal(nb_dist_sampler_set_epoch(s, 4), NB_OK);
            assert_false(nbt_alloc_failed());
            nbt_fail_alloc_after(0);
            nb_dist_sampler_free(s);
            print_message("%ld allocations, each failed once\n", k - 1);
            break;
        }
        assert_null(s);
        assert_error(NB_ENOMEM, "nb_dist_sampler_new: out of memory");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_defaults, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_partition, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_loader, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
