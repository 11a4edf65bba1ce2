/*
 * Scopes: autorelease pools per thread. What a scope owns is released at its end (counted
 * with the test allocator), nb_scope_keep moves a tensor out one level, retain/release pairs
 * and early releases are safe, errors leave everything in place, and scopes are per thread.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static float value_of(const nb_tensor *t)
{
    float v = -1;
    assert_int_equal(nb_tensor_get(t, (const int64_t[]){0}, &v), NB_OK);
    return v;
}

/* ---- release at the end ---------------------------------------------------------------- */

static void test_released_at_end(void **state)
{
    (void)state;
    nb_scope *s = nb_scope_begin();
    assert_non_null(s);
    nb_tensor *a = nb_ones(NB_SHAPE(2, 3));
    nb_tensor *b = nb_reshape(a, NB_SHAPE(3, 2));
    nb_tensor *c = nb_transpose(b, 0, 1);
    nb_tensor *d = nb_slice(nb_unsqueeze(nb_flatten(c, 0, -1), 1), 0, 1, 4, 1);
    assert_non_null(d);
    assert_int_equal(nb_tensor_numel(d), 3);
    for (int i = 0; i < 200; i++) assert_non_null(nb_full(NB_SHAPE(i % 7), (float)i));
    assert_true(nbt_alloc_live() > nbt_live0 + 200);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* an empty scope */
    s = nb_scope_begin();
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* a chain that fails inside a scope: the intermediate results are released too */
    s = nb_scope_begin();
    nb_tensor *x = nb_arange(0, 6, 1);
    nb_tensor *r = nb_transpose(nb_reshape(nb_unsqueeze(x, 0), NB_SHAPE(4, -1)), 0, 1);
    assert_null(r);
    assert_error(NB_ESHAPE, "nb_reshape: shape '[4, -1]' is invalid for input of size 6");
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

static void test_graph_in_scope(void **state)
{
    (void)state;
    /* parameters outside, the step's temporaries (and their nodes) inside */
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(3)), true);
    long live_w = nbt_alloc_live();
    nb_scope *s = nb_scope_begin();
    nb_tensor *y = nb_mul_scalar(nb_add_scalar(w, 1.0f), 2.0f);
    assert_non_null(y);
    assert_non_null(nb_tensor_grad_fn(y));
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(nbt_alloc_live() <= live_w + 1); /* at most w's AccumulateGrad node remains */
    assert_true(nb_tensor_requires_grad(w));
    nb_release(w);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

/* ---- nb_scope_keep --------------------------------------------------------------------- */

static void test_keep_without_outer(void **state)
{
    (void)state;
    nb_scope *s = nb_scope_begin();
    nb_tensor *a = nb_full(NB_SHAPE(2), 3.0f);
    nb_tensor *tmp = nb_zeros(NB_SHAPE(5));
    assert_non_null(tmp);
    assert_ptr_equal(nb_scope_keep(a), a);
    /* kept once: no scope owns it any more */
    assert_null(nb_scope_keep(a));
    assert_error(NB_ESTATE, "nb_scope_keep: tensor is not owned by an open scope");
    nb_error_clear();
    assert_int_equal(nb_scope_end(s), NB_OK);

    /* a survives, the caller owns it */
    assert_true(nbt_alloc_live() > nbt_live0);
    assert_true(value_of(a) == 3.0f);
    assert_int_equal(nb_tensor_numel(a), 2);
    nb_release(a);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* a kept view keeps its storage alive although the base is released */
    s = nb_scope_begin();
    nb_tensor *base = nb_arange(0, 4, 1);
    nb_tensor *v = nb_scope_keep(nb_slice(base, 0, 2, 4, 1));
    assert_non_null(v);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(value_of(v) == 2.0f);
    nb_release(v);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

static void test_keep_nested(void **state)
{
    (void)state;
    nb_scope *outer = nb_scope_begin();
    nb_tensor *o = nb_ones(NB_SHAPE(1));
    nb_scope *inner = nb_scope_begin();
    assert_ptr_not_equal(inner, outer);
    nb_tensor *t = nb_full(NB_SHAPE(4), 5.0f);
    nb_tensor *tmp = nb_zeros(NB_SHAPE(4));
    assert_non_null(tmp);
    assert_ptr_equal(nb_scope_keep(t), t); /* moves to outer */
    long before_inner_end = nbt_alloc_live();
    assert_int_equal(nb_scope_end(inner), NB_OK);
    long after_inner_end = nbt_alloc_live();
    assert_true(after_inner_end < before_inner_end); /* tmp and the inner scope are gone */
    assert_true(value_of(t) == 5.0f);                /* t is not */

    /* the outer scope owns t now: keeping it again hands it to the caller */
    nb_scope *inner2 = nb_scope_begin();
    nb_tensor *u = nb_full(NB_SHAPE(1), 6.0f);
    assert_ptr_equal(nb_scope_keep(u), u); /* inner2 -> outer */
    assert_int_equal(nb_scope_end(inner2), NB_OK);
    assert_true(value_of(u) == 6.0f);
    assert_ptr_equal(nb_scope_keep(u), u); /* outer -> caller */
    assert_int_equal(nb_scope_end(outer), NB_OK);

    /* o and t were released with outer, u survives */
    assert_true(value_of(u) == 6.0f);
    nb_release(u);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
    (void)o;

    /* three levels: keep moves one level at a time */
    nb_scope *s1 = nb_scope_begin(), *s2 = nb_scope_begin(), *s3 = nb_scope_begin();
    nb_tensor *k = nb_scope_keep(nb_scalar(7.0f)); /* s3 -> s2 */
    assert_non_null(k);
    assert_int_equal(nb_scope_end(s3), NB_OK);
    float v = 0;
    assert_int_equal(nb_tensor_item(k, &v), NB_OK);
    assert_true(v == 7.0f);
    long with_k = nbt_alloc_live();
    assert_int_equal(nb_scope_end(s2), NB_OK); /* releases k */
    assert_true(nbt_alloc_live() < with_k);
    assert_int_equal(nb_scope_end(s1), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* keeping a tensor of the outer scope while an inner one is open */
    outer = nb_scope_begin();
    nb_tensor *p = nb_ones(NB_SHAPE(2));
    inner = nb_scope_begin();
    assert_ptr_equal(nb_scope_keep(p), p); /* outer has no parent: to the caller */
    assert_int_equal(nb_scope_end(inner), NB_OK);
    assert_int_equal(nb_scope_end(outer), NB_OK);
    assert_true(value_of(p) == 1.0f);
    nb_release(p);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

/* ---- reference counting inside scopes -------------------------------------------------- */

static void test_retain_release_in_scope(void **state)
{
    (void)state;
    /* a retain/release pair changes nothing */
    nb_scope *s = nb_scope_begin();
    nb_tensor *a = nb_zeros(NB_SHAPE(3));
    assert_ptr_equal(nb_retain(a), a);
    nb_release(a);
    nb_retain(a);
    nb_retain(a);
    nb_release(a);
    nb_release(a);
    assert_int_equal(nb_tensor_numel(a), 3);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* an extra reference outlives the scope; the scope drops only its own */
    s = nb_scope_begin();
    nb_tensor *b = nb_retain(nb_full(NB_SHAPE(1), 2.0f));
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(value_of(b) == 2.0f);
    /* b is no longer in a scope */
    assert_null(nb_scope_keep(b));
    assert_error(NB_ESTATE, "not owned by an open scope");
    nb_release(b);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* releasing a tensor whose only reference is the scope's frees it and takes it out */
    s = nb_scope_begin();
    nb_tensor *c = nb_zeros(NB_SHAPE(8));
    nb_tensor *keep = nb_ones(NB_SHAPE(2));
    long with_c = nbt_alloc_live();
    nb_release(c);
    assert_true(nbt_alloc_live() < with_c);
    /* a view released early, its base at the end */
    nb_tensor *view = nb_reshape(keep, NB_SHAPE(1, 2));
    nb_release(view);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* release early, then keep others: the slots stay consistent */
    s = nb_scope_begin();
    nb_tensor *x[10];
    for (int i = 0; i < 10; i++) x[i] = nb_full(NB_SHAPE(1), (float)i);
    for (int i = 0; i < 10; i += 2) nb_release(x[i]);
    assert_ptr_equal(nb_scope_keep(x[5]), x[5]);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(value_of(x[5]) == 5.0f);
    nb_release(x[5]);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(nb_scope_end(NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_scope_end: argument 's' is NULL");

    nb_error_clear();
    assert_null(nb_scope_keep(NULL));
    assert_error(NB_EINVAL, "nb_scope_keep: argument 't' is NULL");

    /* a NULL from a failed call keeps its error */
    nb_error_clear();
    nb_scope *s = nb_scope_begin();
    assert_null(nb_scope_keep(nb_zeros(NB_SHAPE(-2))));
    assert_error(NB_EINVAL, "nb_zeros: negative dimension -2");
    assert_int_equal(nb_scope_end(s), NB_OK);

    /* a tensor created outside any scope */
    nb_error_clear();
    nb_tensor *free_t = nb_ones(NB_SHAPE(2));
    assert_null(nb_scope_keep(free_t));
    assert_error(NB_ESTATE, "nb_scope_keep: tensor is not owned by an open scope");
    s = nb_scope_begin(); /* ... also while a scope is open */
    assert_null(nb_scope_keep(free_t));
    assert_error(NB_ESTATE, "not owned by an open scope");
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(value_of(free_t) == 1.0f); /* and the scope did not take it */
    nb_release(free_t);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* ending an outer scope while an inner one is open: refused, nothing released */
    nb_error_clear();
    nb_scope *outer = nb_scope_begin();
    nb_tensor *a = nb_full(NB_SHAPE(3), 4.0f);
    nb_scope *inner = nb_scope_begin();
    nb_tensor *b = nb_full(NB_SHAPE(3), 8.0f);
    long live = nbt_alloc_live();
    assert_int_equal(nb_scope_end(outer), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_scope_end: scope is not the innermost open scope");
    assert_int_equal(nbt_alloc_live(), live);
    assert_true(value_of(a) == 4.0f);
    assert_true(value_of(b) == 8.0f);
    /* the inner scope is still the innermost: new tensors go there */
    nb_tensor *c = nb_zeros(NB_SHAPE(1));
    assert_ptr_equal(nb_scope_keep(c), c); /* inner -> outer */
    assert_int_equal(nb_scope_end(inner), NB_OK);
    assert_true(value_of(a) == 4.0f);
    assert_true(value_of(c) == 0.0f);
    assert_int_equal(nb_scope_end(outer), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

/* ---- threads --------------------------------------------------------------------------- */

/* In a thread without a scope: create a tensor and hand it over. */
static void *make_untracked(void *arg)
{
    (void)arg;
    nb_tensor *t = nb_full(NB_SHAPE(2), 9.0f);
    /* the main thread's open scope is not this thread's */
    if (nb_scope_keep(t) != NULL) {
        nb_release(t);
        return NULL;
    }
    nb_error_clear();
    return t;
}

/* In a thread with its own scope: everything made there is released there. */
static void *own_scope(void *arg)
{
    (void)arg;
    nb_scope *s = nb_scope_begin();
    for (int i = 0; i < 50; i++) nb_ones(NB_SHAPE(i));
    nb_tensor *k = nb_scope_keep(nb_scalar(1.5f));
    if (nb_scope_end(s) != NB_OK) return NULL;
    return k; /* survives, owned by the caller */
}

typedef struct handshake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: the thread's scope is open; 2: the main thread has tried to end it */
    nb_scope *scope;
    nb_tensor *tensor; /* owned by the thread's scope */
    nb_status end_status;
} handshake;

/* Open a scope, let the main thread try to end it, then end it here. */
static void *scope_owner(void *arg)
{
    handshake *h = arg;
    nb_scope *s = nb_scope_begin();
    nb_tensor *t = nb_zeros(NB_SHAPE(4));
    pthread_mutex_lock(&h->mu);
    h->scope = s;
    h->tensor = t;
    h->stage = 1;
    pthread_cond_broadcast(&h->cv);
    while (h->stage < 2) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    h->end_status = nb_scope_end(s);
    return NULL;
}

static void test_per_thread(void **state)
{
    (void)state;
    nb_scope *s = nb_scope_begin();
    nb_tensor *mine = nb_ones(NB_SHAPE(1));

    pthread_t th;
    void *ret = NULL;
    assert_int_equal(pthread_create(&th, NULL, make_untracked, NULL), 0);
    assert_int_equal(pthread_join(th, &ret), 0);
    nb_tensor *theirs = ret;
    assert_non_null(theirs);
    /* not tracked by this thread's scope either */
    assert_null(nb_scope_keep(theirs));
    assert_error(NB_ESTATE, "not owned by an open scope");
    nb_error_clear();

    assert_int_equal(pthread_create(&th, NULL, own_scope, NULL), 0);
    assert_int_equal(pthread_join(th, &ret), 0);
    nb_tensor *kept = ret;
    assert_non_null(kept);
    float v = 0;
    assert_int_equal(nb_tensor_item(kept, &v), NB_OK);
    assert_true(v == 1.5f);

    /* this thread's scope still works as before */
    assert_ptr_equal(nb_scope_keep(mine), mine);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(value_of(theirs) == 9.0f);
    nb_release(theirs);
    nb_release(kept);
    nb_release(mine);
    assert_int_equal(nbt_alloc_live(), nbt_live0);

    /* a scope of another thread cannot be ended here */
    handshake h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, NULL, NB_EINVAL};
    assert_int_equal(pthread_create(&th, NULL, scope_owner, &h), 0);
    pthread_mutex_lock(&h.mu);
    while (h.stage < 1) pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    assert_int_equal(nb_scope_end(h.scope), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_scope_end: no scope is open on this thread");
    /* nor can a tensor be taken out of it */
    assert_null(nb_scope_keep(h.tensor));
    assert_error(NB_ESTATE, "nb_scope_keep: tensor is owned by a scope of another thread");
    nb_scope *here = nb_scope_begin();
    assert_null(nb_scope_keep(h.tensor));
    assert_error(NB_ESTATE, "nb_scope_keep: tensor is owned by a scope of another thread");
    assert_int_equal(nb_scope_end(h.scope), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_scope_end: scope is not the innermost open scope");
    assert_int_equal(nb_scope_end(here), NB_OK);
    pthread_mutex_lock(&h.mu);
    h.stage = 2;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(h.end_status, NB_OK);
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

/* ---- out of memory --------------------------------------------------------------------- */

static void test_out_of_memory(void **state)
{
    (void)state;
    /* the scope itself */
    nbt_fail_alloc_after(1);
    assert_null(nb_scope_begin());
    assert_true(nbt_alloc_failed());
    assert_error(NB_ENOMEM, "nb_scope_begin: out of memory");
    nbt_fail_alloc_after(0);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
    /* a failed begin opened nothing: a tensor made now is in no scope */
    nb_tensor *t = nb_zeros(NB_SHAPE(1));
    assert_null(nb_scope_keep(t));
    assert_error(NB_ESTATE, "not owned by an open scope");
    nb_release(t);

    /* each allocation of a tensor made inside a scope (the scope's list included) */
    for (long k = 1;; k++) {
        nb_error_clear();
        nbt_fail_alloc_after(0);
        nb_scope *s = nb_scope_begin();
        nb_tensor *x = nb_ones(NB_SHAPE(2));
        long live = nbt_alloc_live();
        nbt_fail_alloc_after(k);
        nb_tensor *y = nb_reshape(nb_transpose(nb_unsqueeze(x, 0), 0, 1), NB_SHAPE(-1));
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_non_null(y);
            assert_int_equal(nb_scope_end(s), NB_OK);
            assert_int_equal(nbt_alloc_live(), nbt_live0);
            assert_true(k > 3);
            break;
        }
        assert_null(y);
        assert_int_equal(nb_last_error()->code, NB_ENOMEM);
        assert_non_null(strstr(nb_last_error()->message, "out of memory"));
        assert_true(nbt_alloc_live() >= live);
        assert_int_equal(nb_scope_end(s), NB_OK);
        assert_int_equal(nbt_alloc_live(), nbt_live0);
    }

    /* a full list of tracked tensors that cannot grow: the new tensor is freed, not leaked */
    for (long k = 1;; k++) {
        nb_error_clear();
        nbt_fail_alloc_after(0);
        nb_scope *s = nb_scope_begin();
        /* 16 fill the scope's inline list exactly */
        for (int i = 0; i < 16; i++) assert_non_null(nb_scalar((float)i));
        nbt_fail_alloc_after(k);
        nb_tensor *z = nb_zeros(NB_SHAPE(3));
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_non_null(z);
            assert_int_equal(nb_scope_end(s), NB_OK);
            assert_int_equal(nbt_alloc_live(), nbt_live0);
            assert_true(k > 2); /* the tensor with its storage and data, the scope's list */
            break;
        }
        assert_null(z);
        assert_error(NB_ENOMEM, "nb_zeros: out of memory");
        assert_int_equal(nb_scope_end(s), NB_OK);
        assert_int_equal(nbt_alloc_live(), nbt_live0);
    }

    /* keep into a parent whose list cannot grow: the tensor stays where it was */
    nb_error_clear();
    nb_scope *outer = nb_scope_begin();
    for (int i = 0; i < 16; i++) nb_scalar(0.0f); /* fill the outer scope's inline list */
    nb_scope *inner = nb_scope_begin();
    nb_tensor *a = nb_full(NB_SHAPE(2), 3.0f);
    nbt_fail_alloc_after(1);
    assert_null(nb_scope_keep(a));
    assert_true(nbt_alloc_failed());
    assert_error(NB_ENOMEM, "nb_scope_keep: out of memory");
    nbt_fail_alloc_after(0);
    assert_true(value_of(a) == 3.0f);
    long with_a = nbt_alloc_live();
    assert_int_equal(nb_scope_end(inner), NB_OK); /* still owned by inner: released */
    assert_true(nbt_alloc_live() < with_a);
    assert_int_equal(nb_scope_end(outer), NB_OK);
    assert_int_equal(nbt_alloc_live(), nbt_live0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_released_at_end, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_graph_in_scope, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_keep_without_outer, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_keep_nested, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_retain_release_in_scope, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_errors, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_per_thread, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_out_of_memory, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("scope", tests, NULL, NULL);
}
