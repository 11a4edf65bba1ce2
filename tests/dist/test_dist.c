/*
 * nabla's MPI part, run by mpirun on 2 ranks (and the fixed-order sum on 4): groups,
 * broadcasts, gradient averages against sums computed here, metrics, errors that reach
 * every rank, allocation failure on one rank, and a model trained for 20 steps that stays
 * identical on every rank and ends where one process with the global batch ends.
 *
 * Every rank runs every test, in the same order. Each test makes its own group with
 * nb_dist_from_comm (MPI belongs to main here), under the counting allocator.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include <nabla/dist.h>

#include "dist_model.h"

static int world_rank, world_size;

/* Whether x[0..n-1] is the same, bit for bit, on every rank (every rank gets the answer). */
static bool same_everywhere(const float *x, int64_t n)
{
    float *ref = malloc((size_t)(n ? n : 1) * sizeof *ref);
    if (n) memcpy(ref, x, (size_t)n * sizeof *ref);
    MPI_Bcast(ref, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = n == 0 || memcmp(ref, x, (size_t)n * sizeof *ref) == 0;
    MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    free(ref);
    return same;
}

/* Whether every rank passes true. */
static bool all_ranks(bool ok)
{
    int v = ok;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return v;
}

/* Values that rank r contributes (every rank can compute every rank's). */
static nb_tensor *rank_values(int r, nb_shape shape)
{
    nb_generator *g = nb_generator_new(100 + (uint64_t)r);
    nb_tensor *t = nb_randn_gen(shape, g);
    nb_generator_free(g);
    return t;
}

static nb_dist *group(const nb_dist_options *o)
{
    nb_dist *d = nb_dist_from_comm(MPI_COMM_WORLD, o);
    assert_non_null(d);
    return d;
}

/* ---- the group ------------------------------------------------------------------------ */

static void test_group(void **state)
{
    (void)state;
    nb_dist *d = group(NULL);
    assert_int_equal(nb_dist_rank(d), world_rank);
    assert_int_equal(nb_dist_world_size(d), world_size);
    int cmp;
    MPI_Comm_compare(nb_dist_comm(d), MPI_COMM_WORLD, &cmp);
    assert_int_equal(cmp, MPI_CONGRUENT); /* a duplicate, not the program's own */
    assert_int_equal(nb_dist_barrier(d), NB_OK);
    assert_int_equal(nb_dist_rank(NULL), -1);
    assert_int_equal(nb_dist_world_size(NULL), -1);
    assert_true(nb_dist_comm(NULL) == MPI_COMM_NULL);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
    assert_int_equal(nb_dist_finalize(NULL), NB_OK);

    /* a NULL group: this rank's own error, nobody else takes part */
    nb_error_clear();
    nb_tensor *t = nb_zeros(NB_SHAPE(2));
    assert_int_equal(nb_dist_barrier(NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_barrier: argument 'd' is NULL");
    assert_int_equal(nb_dist_broadcast(NULL, &t, 1, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: argument 'd' is NULL");
    assert_int_equal(nb_dist_broadcast_state_dict(NULL, NULL, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast_state_dict: argument 'd' is NULL");
    assert_int_equal(nb_dist_allreduce_grads(NULL, &t, 1), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_allreduce_grads: argument 'd' is NULL");
    assert_int_equal(nb_dist_all_reduce(NULL, t, NB_DIST_SUM), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_all_reduce: argument 'd' is NULL");
    nb_release(t);
    assert_null(nb_dist_from_comm(MPI_COMM_NULL, NULL));
    assert_error(NB_EINVAL, "nb_dist_from_comm: comm is MPI_COMM_NULL");
    /* an intercommunicator between the even and the odd ranks: refused on each (its
       collectives ended the job in MPI) */
    if (world_size >= 2) {
        MPI_Comm half, inter;
        MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &half);
        MPI_Intercomm_create(half, 0, MPI_COMM_WORLD, 1 - world_rank % 2, 7, &inter);
        assert_null(nb_dist_from_comm(inter, NULL));
        assert_error(NB_EINVAL, "nb_dist_from_comm: comm is an intercommunicator (an "
                                "intracommunicator is needed)");
        MPI_Comm_free(&inter);
        MPI_Comm_free(&half);
    }
    /* MPI is the program's here: nb_dist_init adopts it and finalises nothing */
    d = nb_dist_init(NULL, NULL, NULL);
    assert_non_null(d);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
    int finalized = 1;
    MPI_Finalized(&finalized);
    assert_false(finalized);
}

/* Bad options on one rank: every rank fails; options that differ: every rank fails. */
static void test_options(void **state)
{
    (void)state;
    static const struct {
        nb_dist_options o;
        const char *cause;
    } bad[] = {
        {{.bucket_cap_mb = -1}, "bucket_cap_mb must be in [0, 8191] (0: 25), got -1"},
        {{.bucket_cap_mb = (double)NAN}, "bucket_cap_mb must be in [0, 8191] (0: 25), got nan"},
        {{.bucket_cap_mb = 9000}, "bucket_cap_mb must be in [0, 8191] (0: 25), got 9000"},
        {{.timeout_s = -1}, "timeout_s must be finite and non-negative (0: none), got -1"},
        {{.timeout_s = HUGE_VAL}, "timeout_s must be finite and non-negative (0: none), got inf"},
    };
    const int last = world_size - 1;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_dist_options ok = {0};
        assert_null(nb_dist_from_comm(MPI_COMM_WORLD, world_rank == last ? &bad[k].o : &ok));
        char want[256];
        snprintf(want, sizeof want, "nb_dist_from_comm: rank %d: %s", last, bad[k].cause);
        assert_error(NB_EINVAL, want);
    }
    nb_dist_options mine = {.deterministic = world_rank == 0};
    assert_null(nb_dist_from_comm(MPI_COMM_WORLD, &mine));
    assert_error(NB_ESHAPE,
                 "nb_dist_from_comm: the ranks' options differ (bucket_cap_mb or deterministic)");
    nb_dist_options other = {.bucket_cap_mb = world_rank == 0 ? 1 : 2};
    assert_null(nb_dist_from_comm(MPI_COMM_WORLD, &other));
    assert_error(NB_ESHAPE,
                 "nb_dist_from_comm: the ranks' options differ (bucket_cap_mb or deterministic)");
    /* what each rank may choose for itself */
    nb_dist_options own = {.timeout_s = world_rank + 1.0, .bucket_cap_mb = 25};
    nb_dist *d = group(&own);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
}

/* ---- broadcast ------------------------------------------------------------------------ */

static void test_broadcast(void **state)
{
    (void)state;
    /* tiny buckets too, so that tensors are cut across them */
    const double caps[] = {0, 12.0 / (1024 * 1024)};
    for (int root = 0; root < 2; root++) {
        for (int c = 0; c < 2; c++) {
            nb_dist_options o = {.bucket_cap_mb = caps[c]};
            nb_dist *d = group(&o);
            nb_tensor *t[4] = {rank_values(world_rank, NB_SHAPE(3, 5)),
                               nb_scalar((float)world_rank), nb_zeros(NB_SHAPE(0)),
                               rank_values(world_rank + 10, NB_SHAPE(7))};
            nb_requires_grad_(t[0], true); /* parameters are leaves that require grad */
            nb_tensor *want[4] = {rank_values(root, NB_SHAPE(3, 5)), nb_scalar((float)root),
                                  nb_zeros(NB_SHAPE(0)), rank_values(root + 10, NB_SHAPE(7))};
            uint64_t v0 = nb_tensor_version(t[0]);
            assert_int_equal(nb_dist_broadcast(d, t, 4, root), NB_OK);
            for (int i = 0; i < 4; i++) {
                assert_memory_equal(nb_tensor_data_const(t[i]), nb_tensor_data_const(want[i]),
                                    (size_t)nb_tensor_numel(t[i]) * sizeof(float));
                assert_true(same_everywhere(nb_tensor_data_const(t[i]), nb_tensor_numel(t[i])));
            }
            /* the ranks that were written know it */
            assert_int_equal(nb_tensor_version(t[0]), v0 + (world_rank != root));
            assert_int_equal(nb_dist_broadcast(d, NULL, 0, root), NB_OK);
            for (int i = 0; i < 4; i++) {
                nb_release(t[i]);
                nb_release(want[i]);
            }
            assert_int_equal(nb_dist_finalize(d), NB_OK);
        }
    }
}

static void test_broadcast_state_dict(void **state)
{
    (void)state;
    nb_dist *d = group(NULL);
    nb_state_dict *sd = nb_state_dict_new();
    nb_tensor *w = rank_values(world_rank, NB_SHAPE(4, 2)),
              *b = nb_full(NB_SHAPE(2), 1.0f + (float)world_rank);
    nb_state_dict_set(sd, "0.weight", w);
    nb_state_dict_set(sd, "0.bias", b);
    assert_int_equal(nb_dist_broadcast_state_dict(d, sd, 0), NB_OK);
    nb_tensor *want = rank_values(0, NB_SHAPE(4, 2));
    assert_memory_equal(nb_tensor_data_const(w), nb_tensor_data_const(want), 8 * sizeof(float));
    assert_true(nb_tensor_data_const(b)[1] == 1.0f);
    nb_release(want);

    /* the same sizes under other names on one rank: nothing is written */
    nb_state_dict *other = nb_state_dict_new();
    nb_tensor *w2 = rank_values(world_rank + 5, NB_SHAPE(4, 2)), *b2 = nb_zeros(NB_SHAPE(2));
    nb_state_dict_set(other, world_rank == 1 ? "1.weight" : "0.weight", w2);
    nb_state_dict_set(other, "0.bias", b2);
    nb_tensor *before = nb_clone(w2);
    assert_int_equal(nb_dist_broadcast_state_dict(d, other, 0), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_dist_broadcast_state_dict: the ranks' state dicts differ (in "
                            "names, number or sizes)");
    assert_memory_equal(nb_tensor_data_const(w2), nb_tensor_data_const(before), 8 * sizeof(float));
    assert_int_equal(nb_dist_broadcast_state_dict(d, world_rank == 1 ? NULL : sd, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast_state_dict: rank 1: argument 'sd' is NULL");
    nb_release(before);
    nb_release(w2);
    nb_release(b2);
    nb_state_dict_free(other);
    nb_release(w);
    nb_release(b);
    nb_state_dict_free(sd);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
}

/* One rank's bad argument, a pending error, differing sizes, roots or calls: the same error
 * everywhere, nothing written. */
static void test_broadcast_errors(void **state)
{
    (void)state;
    nb_dist *d = group(NULL);
    nb_tensor *a = rank_values(world_rank, NB_SHAPE(3)), *b = rank_values(world_rank, NB_SHAPE(2));
    nb_tensor *keep_a = nb_clone(a), *keep_b = nb_clone(b);
    nb_tensor *list[2] = {a, world_rank == 1 ? NULL : b};
    nb_error_clear();
    assert_int_equal(nb_dist_broadcast(d, list, 2, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: rank 1: argument 'tensors[1]' is NULL");

    /* the NULL came from a failed call on rank 1: its error travels */
    if (world_rank == 1) {
        nb_error_clear();
        assert_null(nb_matmul(a, b));
        assert_int_equal(nb_dist_broadcast(d, list, 2, 0), NB_ESHAPE);
    } else {
        assert_int_equal(nb_dist_broadcast(d, list, 2, 0), NB_ESHAPE);
    }
    assert_error(NB_ESHAPE, "nb_dist_broadcast: rank 1: nb_matmul: ");

    nb_tensor *sizes[2] = {a, world_rank == 1 ? a : b};
    assert_int_equal(nb_dist_broadcast(d, sizes, 2, 0), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_dist_broadcast: the ranks' tensors differ (in number or sizes)");
    nb_tensor *both[2] = {a, b};
    assert_int_equal(nb_dist_broadcast(d, both, world_rank == 1 ? 1 : 2, 0), NB_ESHAPE);
    assert_int_equal(nb_dist_broadcast(d, both, 2, world_rank), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: the ranks give different roots (0 and 1)");
    assert_int_equal(nb_dist_broadcast(d, both, 2, 5), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: rank 0: root must be in [0, 1], got 5");
    assert_int_equal(nb_dist_broadcast(d, both, -1, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: rank 0: n must be non-negative, got -1");
    assert_int_equal(nb_dist_broadcast(d, NULL, 2, 0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_broadcast: rank 0: argument 'tensors' is NULL");

    /* ranks in different calls find out, whichever call each is in */
    if (world_rank == 0) {
        assert_int_equal(nb_dist_barrier(d), NB_ESTATE);
        assert_error(NB_ESTATE, "nb_dist_barrier: the ranks are in different calls "
                                "(nb_dist_barrier and nb_dist_broadcast)");
    } else {
        assert_int_equal(nb_dist_broadcast(d, both, 2, 0), NB_ESTATE);
        assert_error(NB_ESTATE, "nb_dist_broadcast: the ranks are in different calls "
                                "(nb_dist_barrier and nb_dist_broadcast)");
    }
    /* also when one of them fails by itself: its cause is about a call the others are not
       in (a barrier has no n), and the group is out of step, which every rank must learn */
    if (world_rank == 0) {
        assert_int_equal(nb_dist_barrier(d), NB_ESTATE);
        assert_error(NB_ESTATE, "nb_dist_barrier: the ranks are in different calls "
                                "(nb_dist_barrier and nb_dist_broadcast)");
    } else {
        assert_int_equal(nb_dist_broadcast(d, both, -1, 0), NB_ESTATE);
        assert_error(NB_ESTATE, "nb_dist_broadcast: the ranks are in different calls "
                                "(nb_dist_barrier and nb_dist_broadcast)");
    }
    assert_memory_equal(nb_tensor_data_const(a), nb_tensor_data_const(keep_a), 3 * sizeof(float));
    assert_memory_equal(nb_tensor_data_const(b), nb_tensor_data_const(keep_b), 2 * sizeof(float));
    /* and the group works on */
    assert_int_equal(nb_dist_broadcast(d, both, 2, 1), NB_OK);
    assert_true(same_everywhere(nb_tensor_data_const(a), 3));
    nb_release(a);
    nb_release(b);
    nb_release(keep_a);
    nb_release(keep_b);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
}

/* ---- gradients ------------------------------------------------------------------------ */

/* Σ_r v_r · (1/size) in rank order, as the deterministic mode adds (and any order, for 2). */
static nb_tensor *rank_order_average(nb_shape shape, int first_rank_with, int last_rank_with)
{
    nb_tensor *sum = nb_zeros(shape);
    const float scale = (float)(1.0 / world_size);
    float *s = nb_tensor_data(sum);
    for (int r = 0; r < world_size; r++) {
        nb_tensor *v = rank_values(r, shape);
        const bool has = r >= first_rank_with && r <= last_rank_with;
        for (int64_t i = 0; i < nb_tensor_numel(v); i++) {
            const float x = has ? nb_tensor_data_const(v)[i] * scale : 0.0f;
            s[i] = r == 0 ? x : s[i] + x;
        }
        nb_release(v);
    }
    return sum;
}

static void test_allreduce_grads(void **state)
{
    (void)state;
    const nb_dist_options opts[] = {{0},
                                    {.bucket_cap_mb = 16.0 / (1024 * 1024)},
                                    {.deterministic = true},
                                    {.deterministic = true, .bucket_cap_mb = 20.0 / (1024 * 1024)}};
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        nb_dist *d = group(&opts[k]);
        /* w: a gradient everywhere; f: frozen, with a .grad of its own; u: a gradient on
           rank 0 only; v: no gradient anywhere; e: empty */
        nb_tensor *w = nb_requires_grad_(nb_zeros(NB_SHAPE(5, 7)), true);
        nb_tensor *f = nb_zeros(NB_SHAPE(3));
        nb_tensor *u = nb_requires_grad_(nb_zeros(NB_SHAPE(6)), true);
        nb_tensor *v = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true);
        nb_tensor *e = nb_requires_grad_(nb_zeros(NB_SHAPE(0)), true);
        nb_tensor *gw = rank_values(world_rank, NB_SHAPE(5, 7)), *gf = nb_full(NB_SHAPE(3), 9);
        nb_tensor *gu = rank_values(world_rank, NB_SHAPE(6)), *ge = nb_zeros(NB_SHAPE(0));
        assert_int_equal(nb_tensor_set_grad(w, gw), NB_OK);
        assert_int_equal(nb_tensor_set_grad(f, gf), NB_OK);
        assert_int_equal(nb_tensor_set_grad(e, ge), NB_OK);
        if (world_rank == 0) assert_int_equal(nb_tensor_set_grad(u, gu), NB_OK);
        const uint64_t version = nb_tensor_version(gw);
        nb_tensor *params[5] = {w, f, u, v, e};
        assert_int_equal(nb_dist_allreduce_grads(d, params, 5), NB_OK);

        nb_tensor *want_w = rank_order_average(NB_SHAPE(5, 7), 0, world_size - 1);
        nb_tensor *want_u = rank_order_average(NB_SHAPE(6), 0, 0);
        if (opts[k].deterministic || world_size == 2)
            assert_memory_equal(nb_tensor_data_const(nb_tensor_grad(w)),
                                nb_tensor_data_const(want_w), 35 * sizeof(float));
        else
            assert_close(nb_tensor_data_const(nb_tensor_grad(w)), nb_tensor_data_const(want_w), 35,
                         1e-6, 1e-5);
        assert_ptr_equal(nb_tensor_grad(w), gw); /* in place */
        assert_int_equal(nb_tensor_version(gw), version + 1);
        assert_memory_equal(nb_tensor_data_const(nb_tensor_grad(u)), nb_tensor_data_const(want_u),
                            6 * sizeof(float));
        assert_true(nb_tensor_data_const(nb_tensor_grad(f))[2] == 9.0f);
        assert_null(nb_tensor_grad(v));
        assert_non_null(nb_tensor_grad(e));
        assert_true(same_everywhere(nb_tensor_data_const(nb_tensor_grad(w)), 35));
        assert_true(same_everywhere(nb_tensor_data_const(nb_tensor_grad(u)), 6));

        /* with every gradient present the set needs no second exchange; n = 0 is nothing */
        assert_int_equal(nb_dist_allreduce_grads(d, params, 1), NB_OK);
        assert_int_equal(nb_dist_allreduce_grads(d, NULL, 0), NB_OK);
        nb_tensor *release[] = {w, f, u, v, e, gw, gf, gu, ge, want_w, want_u};
        for (size_t i = 0; i < sizeof release / sizeof release[0]; i++) nb_release(release[i]);
        assert_int_equal(nb_dist_finalize(d), NB_OK);
    }
}

/*
 * A parameter listed twice has its gradient averaged once, as DDP keeps each parameter once:
 * [a, b, a, u, u] gives the gradients [a, b, u] gives, bit for bit, with buckets that put a's
 * second listing in another bucket (averaging it again there changes last bits with 3
 * ranks). u has a gradient on rank 0 only. The repeats must be the same on every rank.
 */
static void test_repeated_params(void **state)
{
    (void)state;
    enum { A = 64, B = 5, U = 7 };
    for (int det = 0; det < 2; det++) {
        nb_dist_options o = {.deterministic = det, .bucket_cap_mb = 256.0 / (1024 * 1024)};
        nb_dist *d = group(&o);
        nb_tensor *got[2][3];
        for (int twice = 0; twice < 2; twice++) {
            nb_tensor *a = nb_requires_grad_(nb_zeros(NB_SHAPE(A)), true);
            nb_tensor *b = nb_requires_grad_(nb_zeros(NB_SHAPE(B)), true);
            nb_tensor *u = nb_requires_grad_(nb_zeros(NB_SHAPE(U)), true);
            nb_tensor *ga = rank_values(world_rank, NB_SHAPE(A)), *gb = nb_full(NB_SHAPE(B), 0.1f);
            nb_tensor *gu = rank_values(world_rank, NB_SHAPE(U));
            assert_int_equal(nb_tensor_set_grad(a, ga), NB_OK);
            assert_int_equal(nb_tensor_set_grad(b, gb), NB_OK);
            if (world_rank == 0) assert_int_equal(nb_tensor_set_grad(u, gu), NB_OK);
            nb_tensor *once[] = {a, b, u}, *repeated[] = {a, b, a, u, u};
            if (twice)
                assert_int_equal(nb_dist_allreduce_grads(d, repeated, 5), NB_OK);
            else
                assert_int_equal(nb_dist_allreduce_grads(d, once, 3), NB_OK);
            for (int i = 0; i < 3; i++) got[twice][i] = nb_retain(nb_tensor_grad(once[i]));
            nb_tensor *release[] = {a, b, u, ga, gb, gu};
            for (size_t i = 0; i < sizeof release / sizeof release[0]; i++) nb_release(release[i]);
        }
        const int64_t sizes[] = {A, B, U};
        for (int i = 0; i < 3; i++) {
            if (memcmp(nb_tensor_data_const(got[0][i]), nb_tensor_data_const(got[1][i]),
                       (size_t)sizes[i] * sizeof(float)) != 0)
                fail_msg("deterministic %d: parameter %d's average differs when listed twice", det,
                         i);
            nb_release(got[0][i]);
            nb_release(got[1][i]);
        }
        /* repeats that differ between the ranks are a mismatch, not a wrong average */
        if (world_size > 1) {
            nb_tensor *p = nb_requires_grad_(nb_zeros(NB_SHAPE(3)), true);
            nb_tensor *q = nb_requires_grad_(nb_zeros(NB_SHAPE(3)), true);
            nb_tensor *list[] = {p, world_rank == 0 ? p : q};
            assert_int_equal(nb_dist_allreduce_grads(d, list, 2), NB_ESHAPE);
            nb_release(p);
            nb_release(q);
        }
        assert_int_equal(nb_dist_finalize(d), NB_OK);
    }
}

static void test_grads_errors(void **state)
{
    (void)state;
    nb_dist *d = group(NULL);
    nb_tensor *w = nb_requires_grad_(nb_zeros(NB_SHAPE(4)), true);
    nb_tensor *b = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true);
    nb_tensor *g = rank_values(world_rank, NB_SHAPE(4));
    nb_tensor *keep = nb_clone(g);
    nb_tensor_set_grad(w, g);
    nb_tensor *ok[2] = {w, b};
    nb_tensor *holes[2] = {w, world_rank == 1 ? NULL : b};
    nb_error_clear();
    assert_int_equal(nb_dist_allreduce_grads(d, holes, 2), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_allreduce_grads: rank 1: argument 'params[1]' is NULL");
    assert_int_equal(nb_dist_allreduce_grads(d, world_rank == 1 ? NULL : ok, 2), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_allreduce_grads: rank 1: argument 'params' is NULL");
    assert_int_equal(nb_dist_allreduce_grads(d, ok, world_rank == 1 ? -2 : 2), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_allreduce_grads: rank 1: n must be non-negative, got -2");
    assert_int_equal(nb_dist_allreduce_grads(d, ok, world_rank == 1 ? 1 : 2), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_dist_allreduce_grads: the ranks' parameters differ (in number, "
                            "sizes or requires_grad)");
    if (world_rank == 1) nb_requires_grad_(b, false);
    assert_int_equal(nb_dist_allreduce_grads(d, ok, 2), NB_ESHAPE);
    nb_requires_grad_(b, true);
    nb_tensor *y = nb_mul_scalar(b, 2.0f); /* not a leaf */
    nb_tensor *nonleaf[2] = {w, world_rank == 0 ? y : b};
    assert_int_equal(nb_dist_allreduce_grads(d, nonleaf, 2), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_dist_allreduce_grads: rank 0: params[1] is not a leaf and does "
                            "not retain its grad");
    assert_memory_equal(nb_tensor_data_const(g), nb_tensor_data_const(keep), 4 * sizeof(float));
    assert_null(nb_tensor_grad(b));
    nb_tensor *release[] = {w, b, g, keep, y};
    for (size_t i = 0; i < sizeof release / sizeof release[0]; i++) nb_release(release[i]);
    assert_int_equal(nb_dist_finalize(d), NB_OK);
}

/* The last rank fails its k-th allocation: every rank fails alike, nothing changes, until the
 * call goes through; a warm call allocates nothing. */
static void test_alloc_failure(void **state)
{
    (void)state;
    const bool me = world_rank == world_size - 1;
    for (int det = 0; det < 2; det++) {
        for (long k = 1;; k++) {
            nb_error_clear();
            nbt_fail_alloc_after(me ? k : 0);
            nb_dist_options o = {.deterministic = det};
            nb_dist *d = nb_dist_from_comm(MPI_COMM_WORLD, &o);
            nb_status st = d ? NB_OK : nb_last_error()->code;
            nb_tensor *w = nb_requires_grad_(nb_zeros(NB_SHAPE(4, 3)), true);
            nb_tensor *u = nb_requires_grad_(nb_zeros(NB_SHAPE(5)), true);
            nb_tensor *v = nb_requires_grad_(nb_zeros(NB_SHAPE(7)), true); /* no gradient */
            nb_tensor *g = rank_values(world_rank, NB_SHAPE(4, 3));
            nb_tensor *gu = rank_values(world_rank, NB_SHAPE(5));
            nb_tensor *keep = nb_clone(g);
            if (d) {
                /* a tensor that could not be made is a NULL parameter, whose error travels */
                if (w && g) nb_tensor_set_grad(w, g);
                if (u && gu && world_rank == 0) nb_tensor_set_grad(u, gu);
                nb_tensor *params[3] = {w, u, v};
                st = nb_dist_allreduce_grads(d, params, 3);
            }
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            /* every rank agrees on the outcome */
            int outcome = st;
            MPI_Allreduce(MPI_IN_PLACE, &outcome, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
            int any_failed = failed;
            MPI_Allreduce(MPI_IN_PLACE, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
            assert_int_equal(st, outcome);
            if (any_failed && st != NB_OK) {
                assert_int_equal(st, NB_ENOMEM);
                if (g && keep && nb_tensor_grad(w) == g)
                    assert_memory_equal(nb_tensor_data_const(g), nb_tensor_data_const(keep),
                                        12 * sizeof(float));
                if (u && world_rank != 0) assert_null(nb_tensor_grad(u));
            }
            if (!any_failed) {
                assert_int_equal(st, NB_OK);
                assert_non_null(nb_tensor_grad(u));
                assert_null(nb_tensor_grad(v));
                /* warm: nothing is allocated, with a parameter no rank has a gradient for */
                nbt_fail_alloc_after(1);
                nb_tensor *params[3] = {w, u, v};
                assert_int_equal(nb_dist_allreduce_grads(d, params, 3), NB_OK);
                assert_false(nbt_alloc_failed());
                nbt_fail_alloc_after(0);
                if (me)
                    print_message("%ld allocations on rank %d, each failed once\n", k - 1,
                                  world_rank);
            }
            nb_tensor *release[] = {w, u, v, g, gu, keep};
            for (size_t i = 0; i < sizeof release / sizeof release[0]; i++) nb_release(release[i]);
            if (d) assert_int_equal(nb_dist_finalize(d), NB_OK);
            if (!any_failed) break;
        }
    }
}

/* ---- metrics -------------------------------------------------------------------------- */

static void test_all_reduce(void **state)
{
    (void)state;
    for (int det = 0; det < 2; det++) {
        nb_dist_options o = {.deterministic = det};
        nb_dist *d = group(&o);
        nb_tensor *t = nb_full(NB_SHAPE(3), (float)(world_rank + 1));
        assert_int_equal(nb_dist_all_reduce(d, t, NB_DIST_SUM), NB_OK);
        const float sum = (float)(world_size * (world_size + 1) / 2);
        assert_true(nb_tensor_data_const(t)[2] == sum);
        assert_int_equal(nb_dist_all_reduce(d, t, NB_DIST_AVG), NB_OK);
        assert_true(nb_tensor_data_const(t)[0] == sum);
        nb_tensor *big = nb_full(NB_SHAPE(1), world_rank == 0 ? 4.0f : 0.0f);
        assert_int_equal(nb_dist_all_reduce(d, big, NB_DIST_AVG), NB_OK);
        assert_true(nb_tensor_data_const(big)[0] == 4.0f / (float)world_size);

        nb_error_clear();
        assert_int_equal(nb_dist_all_reduce(d, t, world_rank == 0 ? NB_DIST_SUM : NB_DIST_AVG),
                         NB_EINVAL);
        assert_error(NB_EINVAL, "nb_dist_all_reduce: the ranks give different ops (1 and 2)");
        assert_int_equal(nb_dist_all_reduce(d, world_rank == 0 ? t : big, NB_DIST_SUM), NB_ESHAPE);
        assert_error(NB_ESHAPE, "nb_dist_all_reduce: the ranks' tensors differ in size");
        assert_int_equal(nb_dist_all_reduce(d, t, (nb_dist_op)7), NB_EINVAL);
        assert_error(NB_EINVAL, "nb_dist_all_reduce: rank 0: unknown op 7");
        assert_int_equal(nb_dist_all_reduce(d, world_rank == 1 ? NULL : t, NB_DIST_SUM), NB_EINVAL);
        assert_error(NB_EINVAL, "nb_dist_all_reduce: rank 1: argument 't' is NULL");
        assert_true(nb_tensor_data_const(t)[0] == sum);
        nb_release(t);
        nb_release(big);
        assert_int_equal(nb_dist_finalize(d), NB_OK);
    }
}

/* ---- the fixed order ------------------------------------------------------------------ */

/*
 * Values whose sum depends on the order it is taken in: every element of every rank at a
 * random scale from 2^-20 to 2^20. The deterministic mode must give the rank-order sum bit
 * for bit; MPI's own allreduce need not (counted, for the log). Meaningful from 3 ranks
 * (Open MPI 4.1 differs from rank order from 4).
 */
static void test_deterministic_order(void **state)
{
    (void)state;
    enum { N = 4096 };
    nb_tensor *mine = NULL, *want = nb_zeros(NB_SHAPE(N));
    for (int r = 0; r < world_size; r++) {
        nb_tensor *v = rank_values(r, NB_SHAPE(N));
        nb_generator *g = nb_generator_new(500 + (uint64_t)r);
        float *x = nb_tensor_data(v), *s = nb_tensor_data(want);
        for (int i = 0; i < N; i++) {
            x[i] = ldexpf(x[i], (int)(nb_generator_random(g) % 41) - 20);
            s[i] = r == 0 ? x[i] : s[i] + x[i];
        }
        nb_generator_free(g);
        if (r == world_rank)
            mine = v;
        else
            nb_release(v);
    }
    int differs = 0;
    for (int det = 1; det >= 0; det--) {
        /* several buckets, of sizes that do not divide among the ranks */
        nb_dist_options o = {.deterministic = det, .bucket_cap_mb = 4001.0 / (1024 * 1024)};
        nb_dist *d = group(&o);
        nb_tensor *t = nb_clone(mine);
        assert_int_equal(nb_dist_all_reduce(d, t, NB_DIST_SUM), NB_OK);
        assert_true(same_everywhere(nb_tensor_data_const(t), N));
        if (det) {
            assert_memory_equal(nb_tensor_data_const(t), nb_tensor_data_const(want),
                                N * sizeof(float));
        } else {
            for (int i = 0; i < N; i++)
                differs += nb_tensor_data_const(t)[i] != nb_tensor_data_const(want)[i];
        }
        nb_release(t);
        assert_int_equal(nb_dist_finalize(d), NB_OK);
    }
    if (world_rank == 0)
        print_message("%d ranks: MPI's allreduce differs from the rank-order sum in %d of %d "
                      "elements\n",
                      world_size, differs, N);
    nb_release(mine);
    nb_release(want);
}

/* ---- training ------------------------------------------------------------------------- */

typedef struct train_check {
    int steps_checked;
} train_check;

/* After every step: gradients (before the update) and parameters the same on every rank. */
static nb_status check_same(void *ctx, dm_model *m, int step, dm_phase phase)
{
    (void)step;
    train_check *c = ctx;
    for (int i = 0; i < DM_PARAMS; i++) {
        const nb_tensor *p = m->params[i];
        if (!same_everywhere(nb_tensor_data_const(p), nb_tensor_numel(p)))
            fail_msg("step %d: parameter %d differs between the ranks", step, i);
    }
    if (phase == DM_AFTER_STEP) c->steps_checked++;
    return NB_OK;
}

static void test_train(void **state)
{
    (void)state;
    enum { STEPS = 20, GLOBAL_BATCH = 8 };
    nb_dataset *ds = dm_dataset();
    assert_non_null(ds);
    for (int det = 0; det < 2; det++) {
        nb_dist_options o = {.deterministic = det};
        nb_dist *d = group(&o);
        /* each rank starts from weights of its own; the broadcast makes them rank 0's */
        dm_model m, ref;
        assert_int_equal(dm_model_init(&m, 1 + (uint64_t)world_rank), NB_OK);
        assert_int_equal(nb_dist_broadcast(d, m.params, DM_PARAMS, 0), NB_OK);
        for (int i = 0; i < DM_PARAMS; i++)
            assert_true(
                same_everywhere(nb_tensor_data_const(m.params[i]), nb_tensor_numel(m.params[i])));
        train_check c = {0};
        assert_int_equal(dm_train(d, &m, ds, GLOBAL_BATCH, STEPS, check_same, &c), NB_OK);
        assert_int_equal(c.steps_checked, STEPS);
        assert_null(nb_tensor_grad(m.params[4])); /* no rank ever had its gradient */

        /* one process, the whole global batch, from rank 0's weights */
        assert_int_equal(dm_model_init(&ref, 1), NB_OK);
        assert_int_equal(dm_train(NULL, &ref, ds, GLOBAL_BATCH, STEPS, NULL, NULL), NB_OK);
        double worst = 0;
        for (int i = 0; i < DM_PARAMS; i++) {
            const float *a = nb_tensor_data_const(m.params[i]);
            const float *b = nb_tensor_data_const(ref.params[i]);
            for (int64_t j = 0; j < nb_tensor_numel(m.params[i]); j++)
                worst = fmax(worst, fabs((double)a[j] - (double)b[j]));
        }
        if (world_rank == 0)
            print_message("%d ranks%s vs 1 process, global batch %d, %d steps: largest "
                          "parameter difference %.3g\n",
                          world_size, det ? " (deterministic)" : "", GLOBAL_BATCH, STEPS, worst);
        assert_true(all_ranks(worst <= 1e-5));
        /* the run moved the weights well beyond that */
        nb_tensor *start = NULL;
        dm_model fresh;
        assert_int_equal(dm_model_init(&fresh, 1), NB_OK);
        start = fresh.params[0];
        double moved = 0;
        for (int64_t j = 0; j < nb_tensor_numel(start); j++)
            moved = fmax(moved, fabs((double)nb_tensor_data_const(start)[j] -
                                     (double)nb_tensor_data_const(ref.params[0])[j]));
        assert_true(moved > 1e-2);
        dm_model_free(&fresh);
        dm_model_free(&ref);
        dm_model_free(&m);
        assert_int_equal(nb_dist_finalize(d), NB_OK);
    }
    nb_dataset_free(ds);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_options, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_broadcast, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_broadcast_state_dict, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_broadcast_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_allreduce_grads, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_repeated_params, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_grads_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_all_reduce, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_deterministic_order, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_train, nbt_setup_counting, nbt_teardown_counting),
    };
    /* `test_dist NAME`: only the tests whose name matches (cmocka's pattern) */
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    /* one rank's report is enough; the others still fail the job when a test fails there */
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return failed ? 1 : 0;
}
