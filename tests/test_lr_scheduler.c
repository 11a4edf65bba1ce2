/*
 * Learning-rate schedulers: the lr sequences of PyTorch 1.13 over 50 steps, bit for bit
 * (data/lr_scheduler_ref.h, made by data/gen_optim.py), the closed forms they follow, state
 * save and load, errors and allocation failures.
 */
#include "testutil.h"

#include <math.h>

#include "data/lr_scheduler_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct setup {
    nb_tensor *p[2];
    nb_optim *opt;
} setup;

/* SGD with two groups of lr 0.1 and 0.05, as the reference script. */
static void make_setup(setup *s)
{
    s->p[0] = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true);
    s->p[1] = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = optim_ref_sched_lr0[0];
    s->opt = nb_optim_new(&s->p[0], 1, &o);
    assert_non_null(s->opt);
    o.lr = optim_ref_sched_lr0[1];
    assert_int_equal(nb_optim_add_param_group(s->opt, &s->p[1], 1, &o), NB_OK);
}

static void free_setup(setup *s)
{
    nb_optim_free(s->opt);
    nb_release(s->p[0]);
    nb_release(s->p[1]);
}

static nb_lr_scheduler *make_sched(nb_optim *opt, const optim_ref_sched *r)
{
    switch (r->kind) {
    case 0:
        return nb_step_lr_new(opt, r->i0, r->a);
    case 1:
        return nb_multistep_lr_new(opt, r->milestones, r->nmilestones, r->a);
    case 2:
        return nb_exponential_lr_new(opt, r->a);
    case 3:
        return nb_cosine_annealing_lr_new(opt, r->i0, r->a);
    default:
        return nb_linear_lr_new(opt, r->a, r->b, r->i0);
    }
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void expect_lrs(const char *name, int t, const nb_optim *opt, const double *want)
{
    for (int g = 0; g < 2; g++) {
        double got = nb_optim_get_lr(opt, g);
        if (!same_double(got, want[g]))
            fail_msg("%s, step %d, group %d: lr %.17g, PyTorch %.17g", name, t, g, got, want[g]);
    }
}

static void test_sequences_match_pytorch(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(optim_ref_sched_cases); c++) {
        const optim_ref_sched_case *r = &optim_ref_sched_cases[c];
        setup s;
        make_setup(&s);
        nb_lr_scheduler *sched[2] = {NULL, NULL};
        for (int i = 0; i < r->nsched; i++) {
            sched[i] = make_sched(s.opt, &r->sched[i]);
            assert_non_null(sched[i]);
        }
        assert_int_equal(nb_lr_scheduler_last_epoch(sched[0]), 0);
        expect_lrs(r->name, 0, s.opt, r->lr[0]);
        for (int t = 1; t <= OPTIM_REF_SCHED_STEPS; t++) {
            assert_int_equal(nb_optim_step(s.opt), NB_OK);
            for (int i = 0; i < r->nsched; i++)
                assert_int_equal(nb_lr_scheduler_step(sched[i]), NB_OK);
            expect_lrs(r->name, t, s.opt, r->lr[t]);
            for (int g = 0; g < 2; g++)
                assert_true(
                    same_double(nb_lr_scheduler_last_lr(sched[r->nsched - 1], g), r->lr[t][g]));
        }
        assert_int_equal(nb_lr_scheduler_last_epoch(sched[0]), r->last_epoch);
        for (int i = 0; i < r->nsched; i++) nb_lr_scheduler_free(sched[i]);
        free_setup(&s);
    }
}

/* The closed form each documents, for a scheduler alone (to rounding). */
static double closed_form(const optim_ref_sched *r, double base, int64_t e)
{
    int k = 0;
    switch (r->kind) {
    case 0:
        return base * pow(r->a, (double)(e / r->i0));
    case 1:
        for (int i = 0; i < r->nmilestones; i++) k += r->milestones[i] <= e;
        return base * pow(r->a, k);
    case 2:
        return base * pow(r->a, (double)e);
    case 3:
        return r->a +
               (base - r->a) * (1.0 + cos(3.141592653589793 * (double)e / (double)r->i0)) / 2.0;
    default:
        return base * (r->a + (r->b - r->a) * (double)(e < r->i0 ? e : r->i0) / (double)r->i0);
    }
}

static void test_closed_forms(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(optim_ref_sched_cases); c++) {
        const optim_ref_sched_case *r = &optim_ref_sched_cases[c];
        if (r->nsched != 1) continue;
        for (int t = 0; t <= OPTIM_REF_SCHED_STEPS; t++)
            for (int g = 0; g < 2; g++) {
                double want = closed_form(&r->sched[0], optim_ref_sched_lr0[g], t);
                if (!(fabs(r->lr[t][g] - want) <= 1e-12 * fabs(want) + 1e-15))
                    fail_msg("%s, step %d: recursive %.17g, closed form %.17g", r->name, t,
                             r->lr[t][g], want);
            }
    }
}

/* Save after 7 steps, load into a fresh optimizer and scheduler, continue: the same lrs. */
static void test_state_round_trip(void **state)
{
    (void)state;
    const optim_ref_sched_case *r = &optim_ref_sched_cases[7]; /* CosineAnnealingLR(20, 0.001) */
    setup a, b;
    make_setup(&a);
    nb_lr_scheduler *sa = make_sched(a.opt, &r->sched[0]);
    for (int t = 0; t < 7; t++) assert_int_equal(nb_lr_scheduler_step(sa), NB_OK);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(a.opt, d), NB_OK);
    assert_int_equal(nb_lr_scheduler_state_dict(sa, d), NB_OK);
    assert_string_equal(nb_state_dict_metadata(d, "scheduler"), "CosineAnnealingLR");
    assert_string_equal(nb_state_dict_metadata(d, "last_epoch"), "7");
    assert_string_equal(nb_state_dict_metadata(d, "base_lrs.1"), "0.05");
    assert_non_null(nb_state_dict_metadata(d, "last_lr.0"));
    make_setup(&b);
    nb_lr_scheduler *sb = make_sched(b.opt, &r->sched[0]);
    assert_int_equal(nb_optim_load_state_dict(b.opt, d), NB_OK);
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, d), NB_OK);
    assert_int_equal(nb_lr_scheduler_last_epoch(sb), 7);
    expect_lrs("resumed", 7, b.opt, r->lr[7]);
    for (int t = 8; t <= OPTIM_REF_SCHED_STEPS; t++) {
        assert_int_equal(nb_lr_scheduler_step(sb), NB_OK);
        expect_lrs("resumed", t, b.opt, r->lr[t]);
    }
    /* errors: NULLs, another class, another number of groups, bad values */
    nb_error_clear();
    assert_int_equal(nb_lr_scheduler_state_dict(NULL, d), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_state_dict: argument 's' is NULL");
    assert_int_equal(nb_lr_scheduler_state_dict(sa, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_state_dict: argument 'out' is NULL");
    assert_int_equal(nb_lr_scheduler_load_state_dict(NULL, d), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: argument 's' is NULL");
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: argument 'in' is NULL");
    nb_lr_scheduler *step = nb_step_lr_new(b.opt, 2, 0.5);
    assert_int_equal(nb_lr_scheduler_load_state_dict(step, d), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: the state dict is of a "
                            "CosineAnnealingLR, this scheduler is a StepLR");
    static const struct {
        const char *key, *value, *message;
    } bad[] = {
        {"last_epoch", "seven", "invalid value \"seven\" for 'last_epoch'"},
        {"last_epoch", "7.5", "invalid value \"7.5\" for 'last_epoch'"},
        {"last_epoch", "-1", "invalid value \"-1\" for 'last_epoch'"},
        {"last_epoch", "2147483648", "invalid value \"2147483648\" for 'last_epoch'"},
        {"base_lrs.0", "nan", "invalid value \"nan\" for 'base_lrs.0'"},
        {"last_lr.1", "1e999", "invalid value \"1e999\" for 'last_lr.1'"},
        {"base_lrs.2", "0.1", "the state dict has more than 2 groups"},
        {"scheduler", "", "the state dict is of a , this scheduler is a CosineAnnealingLR"},
    };
    int64_t epoch = nb_lr_scheduler_last_epoch(sb);
    double last = nb_lr_scheduler_last_lr(sb, 1);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        nb_state_dict *e = nb_state_dict_new();
        assert_int_equal(nb_lr_scheduler_state_dict(sa, e), NB_OK);
        assert_int_equal(nb_state_dict_set_metadata(e, bad[i].key, bad[i].value), NB_OK);
        assert_int_equal(nb_lr_scheduler_load_state_dict(sb, e), NB_EINVAL);
        assert_error(NB_EINVAL, bad[i].message);
        assert_int_equal(nb_lr_scheduler_last_epoch(sb), epoch);
        assert_true(same_double(nb_lr_scheduler_last_lr(sb, 1), last));
        nb_state_dict_free(e);
    }
    nb_state_dict *top = nb_state_dict_new(); /* the largest last_epoch taken: 2^31 - 1 */
    assert_int_equal(nb_lr_scheduler_state_dict(sa, top), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(top, "last_epoch", "2147483647"), NB_OK);
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, top), NB_OK);
    assert_int_equal(nb_lr_scheduler_last_epoch(sb), INT32_MAX);
    nb_state_dict_free(top);
    nb_state_dict *empty = nb_state_dict_new();
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, empty), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: missing entry 'scheduler'");
    nb_state_dict_set_metadata(empty, "scheduler", "CosineAnnealingLR");
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, empty), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: missing entry 'last_epoch'");
    nb_state_dict_set_metadata(empty, "last_epoch", "3");
    assert_int_equal(nb_lr_scheduler_load_state_dict(sb, empty), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_load_state_dict: missing entry 'base_lrs.0'");
    nb_state_dict_free(empty);
    nb_state_dict_free(d);
    nb_lr_scheduler_free(step);
    nb_lr_scheduler_free(sa);
    nb_lr_scheduler_free(sb);
    free_setup(&a);
    free_setup(&b);
}

/* The first scheduler records initial_lr; a second one on the same optimizer keeps it. */
/* Save the optimizer's and the scheduler's state dicts and load them into themselves. */
static void reload(nb_optim *opt, nb_lr_scheduler *sched)
{
    nb_state_dict *d = nb_state_dict_new(), *sd = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    assert_int_equal(nb_lr_scheduler_state_dict(sched, sd), NB_OK);
    assert_int_equal(nb_optim_load_state_dict(opt, d), NB_OK);
    assert_int_equal(nb_lr_scheduler_load_state_dict(sched, sd), NB_OK);
    nb_state_dict_free(d);
    nb_state_dict_free(sd);
}

/*
 * Whatever lr a schedule reaches loads back: LinearLR's recursive products round to a tiny
 * negative lr (-7.4014868308343745e-19 after 3 steps from 0.01 to 0, PyTorch's value too),
 * ExponentialLR decays into the subnormals and a large gamma overflows to inf.
 */
static void test_state_any_lr(void **state)
{
    (void)state;
    nb_tensor *w = nb_requires_grad_(nb_ones(NB_SHAPE(3)), true);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = 1.0;
    nb_optim *opt = nb_optim_new(&w, 1, &o);
    nb_lr_scheduler *lin = nb_linear_lr_new(opt, 0.01, 0.0, 3);
    for (int e = 0; e < 3; e++) assert_int_equal(nb_lr_scheduler_step(lin), NB_OK);
    assert_true(nb_optim_get_lr(opt, 0) == -7.4014868308343745e-19);
    reload(opt, lin);
    assert_true(nb_optim_get_lr(opt, 0) == -7.4014868308343745e-19);
    nb_lr_scheduler_free(lin);
    nb_lr_scheduler *ex = nb_exponential_lr_new(opt, 0.1);
    assert_int_equal(nb_optim_set_lr(opt, 0, 1.0), NB_OK);
    for (int e = 0; e < 310; e++) assert_int_equal(nb_lr_scheduler_step(ex), NB_OK);
    double tiny = nb_optim_get_lr(opt, 0);
    assert_true(tiny > 0 && tiny < 2.2250738585072014e-308); /* subnormal */
    reload(opt, ex);
    assert_true(nb_optim_get_lr(opt, 0) == tiny);
    assert_int_equal(nb_lr_scheduler_step(ex), NB_OK);
    assert_true(nb_optim_get_lr(opt, 0) == tiny * 0.1);
    nb_lr_scheduler_free(ex);
    ex = nb_exponential_lr_new(opt, 1e300);
    assert_int_equal(nb_optim_set_lr(opt, 0, 1e10), NB_OK);
    assert_int_equal(nb_lr_scheduler_step(ex), NB_OK);
    assert_true(isinf(nb_optim_get_lr(opt, 0)));
    reload(opt, ex);
    assert_true(isinf(nb_optim_get_lr(opt, 0)));
    nb_lr_scheduler_free(ex);
    /* a t_max whose double does not fit int64: the first steps of the cosine stay at lr */
    assert_int_equal(nb_optim_set_lr(opt, 0, 0.1), NB_OK);
    nb_lr_scheduler *cos = nb_cosine_annealing_lr_new(opt, INT64_MAX, 0.0);
    assert_int_equal(nb_lr_scheduler_step(cos), NB_OK);
    assert_true(nb_optim_get_lr(opt, 0) == 0.1);
    nb_lr_scheduler_free(cos);
    nb_optim_free(opt);
    nb_release(w);
}

static void test_initial_lr(void **state)
{
    (void)state;
    setup s;
    make_setup(&s);
    nb_lr_scheduler *lin = nb_linear_lr_new(s.opt, 0.5, 1.0, 4);
    assert_true(nb_optim_get_lr(s.opt, 0) == 0.05); /* epoch 0 multiplies by start_factor */
    nb_lr_scheduler *exp = nb_exponential_lr_new(s.opt, 0.9);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_lr_scheduler_state_dict(exp, d), NB_OK);
    assert_string_equal(nb_state_dict_metadata(d, "base_lrs.0"), "0.1");
    nb_state_dict_free(d);
    d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(s.opt, d), NB_OK);
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.initial_lr"), "0.1");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.1.initial_lr"), "0.05");
    nb_state_dict_free(d);
    nb_lr_scheduler_free(lin);
    nb_lr_scheduler_free(exp);
    free_setup(&s);
}

static void test_errors(void **state)
{
    (void)state;
    setup s;
    make_setup(&s);
    static const int64_t up[] = {3, 5, 9}, down[] = {3, 5, 5}, negative[] = {-1, 2};
    nb_error_clear();
    /* each refused with its message */
#define REFUSED(call, text)                                                                        \
    do {                                                                                           \
        assert_null(call);                                                                         \
        assert_error(NB_EINVAL, text);                                                             \
    } while (0)
    REFUSED(nb_step_lr_new(NULL, 3, 0.1), "nb_step_lr_new: argument 'opt' is NULL");
    REFUSED(nb_step_lr_new(s.opt, 0, 0.1), "nb_step_lr_new: step_size must be positive, got 0");
    REFUSED(nb_step_lr_new(s.opt, -2, 0.1), "nb_step_lr_new: step_size must be positive, got -2");
    REFUSED(nb_step_lr_new(s.opt, 3, 0.0), "nb_step_lr_new: gamma must be finite and > 0, got 0");
    REFUSED(nb_step_lr_new(s.opt, 3, -0.5),
            "nb_step_lr_new: gamma must be finite and > 0, got -0.5");
    REFUSED(nb_step_lr_new(s.opt, 3, (double)NAN),
            "nb_step_lr_new: gamma must be finite and > 0, got nan");
    REFUSED(nb_multistep_lr_new(NULL, up, 3, 0.1), "nb_multistep_lr_new: argument 'opt' is NULL");
    REFUSED(nb_multistep_lr_new(s.opt, NULL, 3, 0.1),
            "nb_multistep_lr_new: argument 'milestones' is NULL");
    REFUSED(nb_multistep_lr_new(s.opt, up, -1, 0.1), "nb_multistep_lr_new: n must be >= 0, got -1");
    REFUSED(nb_multistep_lr_new(s.opt, down, 3, 0.1),
            "nb_multistep_lr_new: milestones must be >= 0 and strictly increasing, got "
            "milestones[2] = 5 after a larger or equal one");
    REFUSED(nb_multistep_lr_new(s.opt, negative, 2, 0.1),
            "nb_multistep_lr_new: milestones must be >= 0 and strictly increasing, got "
            "milestones[0] = -1");
    REFUSED(nb_multistep_lr_new(s.opt, up, 3, HUGE_VAL),
            "nb_multistep_lr_new: gamma must be finite and > 0, got inf");
    REFUSED(nb_exponential_lr_new(NULL, 0.9), "nb_exponential_lr_new: argument 'opt' is NULL");
    REFUSED(nb_exponential_lr_new(s.opt, 0.0),
            "nb_exponential_lr_new: gamma must be finite and > 0, got 0");
    REFUSED(nb_cosine_annealing_lr_new(NULL, 10, 0.0),
            "nb_cosine_annealing_lr_new: argument 'opt' is NULL");
    REFUSED(nb_cosine_annealing_lr_new(s.opt, 0, 0.0),
            "nb_cosine_annealing_lr_new: T_max must be positive, got 0");
    REFUSED(nb_cosine_annealing_lr_new(s.opt, 10, -0.1),
            "nb_cosine_annealing_lr_new: eta_min must be finite and >= 0, got -0.1");
    REFUSED(nb_cosine_annealing_lr_new(s.opt, 10, (double)NAN),
            "nb_cosine_annealing_lr_new: eta_min must be finite and >= 0, got nan");
    REFUSED(nb_linear_lr_new(NULL, 0.5, 1.0, 5), "nb_linear_lr_new: argument 'opt' is NULL");
    REFUSED(nb_linear_lr_new(s.opt, 0.0, 1.0, 5),
            "nb_linear_lr_new: start_factor must be in (0, 1], got 0");
    REFUSED(nb_linear_lr_new(s.opt, 1.5, 1.0, 5),
            "nb_linear_lr_new: start_factor must be in (0, 1], got 1.5");
    REFUSED(nb_linear_lr_new(s.opt, 0.5, -0.1, 5),
            "nb_linear_lr_new: end_factor must be in [0, 1], got -0.1");
    REFUSED(nb_linear_lr_new(s.opt, 0.5, 1.1, 5),
            "nb_linear_lr_new: end_factor must be in [0, 1], got 1.1");
    REFUSED(nb_linear_lr_new(s.opt, 0.5, 1.0, 0),
            "nb_linear_lr_new: total_iters must be positive, got 0");
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(s.opt, d), NB_OK);
    assert_null(nb_state_dict_metadata(d, "param_groups.0.initial_lr")); /* nothing changed */
    nb_state_dict_free(d);
    assert_true(nb_optim_get_lr(s.opt, 0) == optim_ref_sched_lr0[0]);

    /* no milestones at all is a valid schedule: the lr never changes */
    nb_lr_scheduler *none = nb_multistep_lr_new(s.opt, NULL, 0, 0.1);
    assert_non_null(none);
    assert_int_equal(nb_lr_scheduler_step(none), NB_OK);
    assert_true(nb_optim_get_lr(s.opt, 1) == optim_ref_sched_lr0[1]);
    assert_int_equal(nb_lr_scheduler_step(NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_lr_scheduler_step: argument 's' is NULL");
    assert_int_equal(nb_lr_scheduler_last_epoch(NULL), -1);
    assert_error(NB_EINVAL, "nb_lr_scheduler_last_epoch: argument 's' is NULL");
    assert_true(isnan(nb_lr_scheduler_last_lr(NULL, 0)));
    assert_error(NB_EINVAL, "nb_lr_scheduler_last_lr: argument 's' is NULL");
    assert_true(isnan(nb_lr_scheduler_last_lr(none, 2)));
    assert_error(NB_EINVAL, "nb_lr_scheduler_last_lr: group 2 out of range (the scheduler has 2)");
    /* a group added after the scheduler was made */
    nb_tensor *h = nb_requires_grad_(nb_zeros(NB_SHAPE(1)), true);
    assert_int_equal(nb_optim_add_param_group(s.opt, &h, 1, NULL), NB_OK);
    assert_int_equal(nb_lr_scheduler_step(none), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_lr_scheduler_step: the optimizer has 3 parameter groups; the "
                            "scheduler was made for 2");
    assert_int_equal(nb_lr_scheduler_last_epoch(none), 1);
    nb_lr_scheduler_free(none);
    nb_lr_scheduler_free(NULL);
    nb_release(h);
    free_setup(&s);
}

/* Each constructor's allocation can fail: NB_ENOMEM, nothing leaked, the optimizer as it was. */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (int kind = 0; kind < 5; kind++) {
        setup s;
        make_setup(&s);
        optim_ref_sched r = {kind, 3, 0.5, 1.0, 2, {2, 4}};
        long live0 = nbt_alloc_live();
        nbt_fail_alloc_after(1);
        nb_error_clear();
        nb_lr_scheduler *sched = make_sched(s.opt, &r);
        nbt_fail_alloc_after(0);
        assert_null(sched);
        assert_int_equal(nb_last_error()->code, NB_ENOMEM);
        assert_non_null(strstr(nb_last_error()->message, "_new: out of memory"));
        assert_int_equal(nbt_alloc_live(), live0);
        assert_true(nb_optim_get_lr(s.opt, 0) == optim_ref_sched_lr0[0]);
        nb_state_dict *d = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(s.opt, d), NB_OK);
        assert_null(nb_state_dict_metadata(d, "param_groups.0.initial_lr"));
        nb_state_dict_free(d);
        sched = make_sched(s.opt, &r); /* and works once memory is there */
        assert_non_null(sched);
        /* saving fails cleanly too */
        for (long k = 1; k < 40; k++) {
            live0 = nbt_alloc_live();
            d = nb_state_dict_new();
            nbt_fail_alloc_after(k);
            nb_status rc = nb_lr_scheduler_state_dict(sched, d);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (rc != NB_OK) assert_error(NB_ENOMEM, "nb_lr_scheduler_state_dict: out of memory");
            nb_state_dict_free(d);
            assert_int_equal(nbt_alloc_live(), live0);
            if (!failed) break;
        }
        nb_lr_scheduler_free(sched);
        free_setup(&s);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_sequences_match_pytorch),
        T(test_closed_forms),
        T(test_state_round_trip),
        T(test_state_any_lr),
        T(test_initial_lr),
        T(test_errors),
        T(test_alloc_failures),
    };
    return cmocka_run_group_tests_name("lr_scheduler", tests, NULL, NULL);
}
