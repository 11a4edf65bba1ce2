/*
 * Optimizers: updates against PyTorch 1.13 (data/optim_ref.h, made by data/gen_optim.py) for
 * every kind and combination of options, parameter groups, frozen parameters, zero_grad,
 * state dicts and bit-for-bit resumption, gradient clipping, errors, allocation failures,
 * and the header's worked example.
 *
 * PyTorch's gradients are given to nabla exactly: backward of sum(p * G) sets p.grad = G.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/optim_ref.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static nb_optim_options to_options(const optim_ref_opts *r)
{
    nb_optim_options o = {0};
    o.kind = r->kind;
    o.lr = r->lr;
    o.momentum = r->momentum;
    o.dampening = r->dampening;
    o.nesterov = r->nesterov != 0;
    o.betas[0] = r->beta1;
    o.betas[1] = r->beta2;
    o.eps = r->eps;
    o.weight_decay = r->weight_decay;
    o.amsgrad = r->amsgrad != 0;
    o.alpha = r->alpha;
    o.centered = r->centered != 0;
    o.lr_decay = r->lr_decay;
    o.initial_accumulator_value = r->initial_accumulator_value;
    o.maximize = r->maximize != 0;
    return o;
}

/* p.grad = g exactly: the gradient of sum(p * G) is G. */
static void set_grad(nb_tensor *p, const float *g)
{
    assert_int_equal(nb_zero_grad(p, true), NB_OK);
    nb_scope *s = nb_scope_begin();
    nb_tensor *c = nb_from_data(g, nb_tensor_size(p));
    assert_int_equal(nb_backward(nb_sum(nb_mul(p, c), NB_DIMS_ALL, false), NULL, false), NB_OK);
    nb_scope_end(s);
}

static nb_tensor *param(const float *data, nb_shape shape)
{
    return nb_requires_grad_(nb_from_data(data, shape), true);
}

static bool same_bits(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* ---- defaults -------------------------------------------------------------------------- */

static bool same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void test_defaults(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(optim_ref_defaults); i++) {
        nb_optim_options want = to_options(&optim_ref_defaults[i]);
        nb_optim_options got = nb_optim_defaults(want.kind);
        assert_int_equal(got.kind, want.kind);
        assert_true(same_double(got.lr, want.lr));
        assert_true(same_double(got.momentum, want.momentum));
        assert_true(same_double(got.dampening, want.dampening));
        assert_true(got.nesterov == want.nesterov);
        assert_true(same_double(got.betas[0], want.betas[0]));
        assert_true(same_double(got.betas[1], want.betas[1]));
        assert_true(same_double(got.eps, want.eps));
        assert_true(same_double(got.weight_decay, want.weight_decay));
        assert_true(got.amsgrad == want.amsgrad);
        assert_true(same_double(got.alpha, want.alpha));
        assert_true(got.centered == want.centered);
        assert_true(same_double(got.lr_decay, want.lr_decay));
        assert_true(same_double(got.initial_accumulator_value, want.initial_accumulator_value));
        assert_true(got.maximize == want.maximize);
    }
    assert_string_equal(nb_optim_kind_name(NB_OPTIM_SGD), "SGD");
    assert_string_equal(nb_optim_kind_name(NB_OPTIM_ADAMW), "AdamW");
    assert_string_equal(nb_optim_kind_name(NB_OPTIM_RMSPROP), "RMSprop");
    assert_string_equal(nb_optim_kind_name((nb_optim_kind)9), "?");
    nb_optim_options u = nb_optim_defaults((nb_optim_kind)9);
    assert_int_equal(u.kind, 9);
    assert_true(u.lr == 0.0);
}

/* ---- updates against PyTorch ----------------------------------------------------------- */

typedef struct parity {
    double max_rel;
    long identical, total;
} parity;

static parity parities[NB_OPTIM_ADAGRAD + 1];

static void compare(const char *name, int step, const float *got, const float *want, int n,
                    parity *par)
{
    for (int i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        double rel = g == w ? 0.0 : fabs(g - w) / fabs(w);
        if (rel > par->max_rel) par->max_rel = rel;
        par->identical += memcmp(&got[i], &want[i], sizeof(float)) == 0;
        par->total++;
        if (!(rel <= 1e-6))
            fail_msg("%s, step %d, element %d: got %.9g, PyTorch %.9g (relative %.3g)", name, step,
                     i, g, w, rel);
    }
}

static nb_optim *make_case(const optim_ref_case *c, nb_tensor *w, nb_tensor *b)
{
    nb_optim_options o0 = to_options(&c->groups[0]);
    nb_optim *opt;
    if (c->ngroups == 1) {
        nb_tensor *params[] = {w, b};
        opt = nb_optim_new(params, 2, &o0);
    } else {
        nb_optim_options o1 = to_options(&c->groups[1]);
        opt = nb_optim_new(&w, 1, &o0);
        assert_non_null(opt);
        assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &o1), NB_OK);
    }
    assert_non_null(opt);
    return opt;
}

static void test_updates_match_pytorch(void **state)
{
    (void)state;
    memset(parities, 0, sizeof parities);
    for (size_t ci = 0; ci < ARRAY_LEN(optim_ref_cases); ci++) {
        const optim_ref_case *c = &optim_ref_cases[ci];
        nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4));
        nb_tensor *b = nb_requires_grad_(nb_from_data(optim_ref_b0, NB_SHAPE(3)), !c->b_frozen);
        nb_optim *opt = make_case(c, w, b);
        parity *par = &parities[c->groups[0].kind];
        for (int t = 0; t < OPTIM_REF_STEPS; t++) {
            set_grad(w, c->grad_w[t]);
            if (!c->b_frozen) set_grad(b, c->grad_b[t]);
            uint64_t vw = nb_tensor_version(w), vb = nb_tensor_version(b);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            assert_int_equal(nb_tensor_version(w), vw + 1);
            assert_int_equal(nb_tensor_version(b), vb + (c->b_frozen ? 0 : 1));
            compare(c->name, t, nb_tensor_data(w), c->w[t], 12, par);
            compare(c->name, t, nb_tensor_data(b), c->b[t], 3, par);
        }
        if (c->b_frozen) assert_true(same_bits(nb_tensor_data(b), optim_ref_b0, 3));
        nb_optim_free(opt);
        nb_release(w);
        nb_release(b);
    }
    for (int k = NB_OPTIM_SGD; k <= NB_OPTIM_ADAGRAD; k++) {
        printf("    %-8s largest relative difference %.3g; %ld of %ld values bit-identical\n",
               nb_optim_kind_name((nb_optim_kind)k), parities[k].max_rel, parities[k].identical,
               parities[k].total);
        assert_true(parities[k].total > 0);
        /* beyond the 1e-6 bar: every value is PyTorch's, bit for bit */
        assert_int_equal(parities[k].identical, parities[k].total);
    }
}

/* A frozen parameter gets no update and no state; it can be trained later. */
static void test_frozen_parameter(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4));
    nb_tensor *b = nb_from_data(optim_ref_b0, NB_SHAPE(3)); /* requires_grad off */
    nb_tensor *params[] = {w, b};
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *opt = nb_optim_new(params, 2, &o);
    assert_non_null(opt);
    set_grad(w, optim_ref_cases[0].grad_w[0]);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_true(same_bits(nb_tensor_data(b), optim_ref_b0, 3));
    assert_int_equal(nb_tensor_version(b), 0);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    assert_non_null(nb_state_dict_get(d, "state.0.exp_avg"));
    assert_null(nb_state_dict_get(d, "state.1.exp_avg"));
    assert_null(nb_state_dict_get(d, "state.1.step"));
    nb_state_dict_free(d);
    /* unfreeze: its state starts now, at step 1 */
    nb_requires_grad_(b, true);
    set_grad(b, optim_ref_cases[0].grad_b[0]);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_false(same_bits(nb_tensor_data(b), optim_ref_b0, 3));
    d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    float s0, s1;
    assert_int_equal(nb_tensor_item(nb_state_dict_get(d, "state.0.step"), &s0), NB_OK);
    assert_int_equal(nb_tensor_item(nb_state_dict_get(d, "state.1.step"), &s1), NB_OK);
    assert_true(s0 == 2.0f && s1 == 1.0f);
    nb_state_dict_free(d);
    nb_optim_free(opt);
    nb_release(w);
    nb_release(b);
}

/* ---- groups, accessors, zero_grad ------------------------------------------------------ */

static void test_groups_and_accessors(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_tensor *h = nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true);
    nb_optim_options body = nb_optim_defaults(NB_OPTIM_SGD);
    body.lr = 0.01;
    body.momentum = 0.9;
    nb_optim *opt = nb_optim_new(&w, 1, &body);
    assert_non_null(opt);
    nb_optim_options head = body;
    head.lr = 0.1;
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &head), NB_OK);
    assert_int_equal(nb_optim_add_param_group(opt, &h, 1, NULL), NB_OK); /* the defaults */
    assert_int_equal(nb_optim_get_kind(opt), NB_OPTIM_SGD);
    assert_int_equal(nb_optim_num_groups(opt), 3);
    assert_int_equal(nb_optim_group_size(opt, 1), 1);
    assert_ptr_equal(nb_optim_param(opt, 1, 0), b);
    assert_ptr_equal(nb_optim_param(opt, 2, 0), h);
    assert_true(nb_optim_get_lr(opt, 0) == 0.01);
    assert_true(nb_optim_get_lr(opt, 1) == 0.1);
    assert_true(nb_optim_get_lr(opt, 2) == 0.01);
    assert_int_equal(nb_optim_set_lr(opt, 2, 0.5), NB_OK);
    nb_optim_options got;
    assert_int_equal(nb_optim_group_options(opt, 2, &got), NB_OK);
    assert_true(got.lr == 0.5 && got.momentum == 0.9 && got.kind == NB_OPTIM_SGD);
    assert_int_equal(nb_optim_num_groups(NULL), 0);
    assert_int_equal(nb_optim_get_kind(NULL), 0);
    nb_optim_free(opt);
    nb_release(w);
    nb_release(b);
    nb_release(h);
}

static void test_zero_grad(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_tensor *params[] = {w, b};
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = 0.1;
    o.weight_decay = 0.5;
    nb_optim *opt = nb_optim_new(params, 2, &o);
    set_grad(w, optim_ref_cases[0].grad_w[0]);
    set_grad(b, optim_ref_cases[0].grad_b[0]);
    nb_tensor *gw = nb_tensor_grad(w);
    uint64_t v = nb_tensor_version(gw);
    assert_int_equal(nb_optim_zero_grad(opt, false), NB_OK); /* PyTorch 1.13's default */
    assert_ptr_equal(nb_tensor_grad(w), gw);
    assert_int_equal(nb_tensor_version(gw), v + 1);
    for (int i = 0; i < 12; i++) assert_true(nb_tensor_data(gw)[i] == 0.0f);
    /* a zero gradient is still a step: weight decay moves the parameters */
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_true(nb_tensor_data(w)[1] == fmaf((float)-0.1, 0.5f * optim_ref_w0[1], optim_ref_w0[1]));
    assert_int_equal(nb_optim_zero_grad(opt, true), NB_OK);
    assert_null(nb_tensor_grad(w));
    assert_null(nb_tensor_grad(b));
    /* no grad: skipped */
    uint64_t vw = nb_tensor_version(w);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_int_equal(nb_tensor_version(w), vw);
    nb_optim_free(opt);
    nb_release(w);
    nb_release(b);
}

/* Once its state exists, a step allocates nothing. */
static void test_step_allocates_nothing(void **state)
{
    (void)state;
    static const nb_optim_kind kinds[] = {NB_OPTIM_SGD, NB_OPTIM_ADAM, NB_OPTIM_ADAMW,
                                          NB_OPTIM_RMSPROP, NB_OPTIM_ADAGRAD};
    for (size_t k = 0; k < ARRAY_LEN(kinds); k++) {
        nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
        nb_tensor *params[] = {w, b};
        nb_optim_options o = nb_optim_defaults(kinds[k]);
        o.lr = 0.01;
        if (kinds[k] == NB_OPTIM_SGD || kinds[k] == NB_OPTIM_RMSPROP) o.momentum = 0.9;
        if (kinds[k] == NB_OPTIM_ADAM) o.amsgrad = true;
        if (kinds[k] == NB_OPTIM_RMSPROP) o.centered = true;
        nb_optim *opt = nb_optim_new(params, 2, &o);
        set_grad(w, optim_ref_cases[0].grad_w[0]);
        set_grad(b, optim_ref_cases[0].grad_b[0]);
        long before = nbt_alloc_count();
        assert_int_equal(nb_optim_step(opt), NB_OK);
        long first = nbt_alloc_count() - before;
        assert_true(first == (kinds[k] == NB_OPTIM_ADAGRAD ? 0 : 2)); /* one block a parameter */
        before = nbt_alloc_count();
        for (int t = 0; t < 3; t++) assert_int_equal(nb_optim_step(opt), NB_OK);
        assert_int_equal(nbt_alloc_count() - before, 0);
        nb_optim_free(opt);
        nb_release(w);
        nb_release(b);
    }
}

/* ---- errors ---------------------------------------------------------------------------- */

typedef struct option_error {
    nb_optim_kind kind;
    const char *field[3];
    double value[3];
    const char *message;
} option_error;

static void set_field(nb_optim_options *o, const char *f, double v)
{
    if (!strcmp(f, "lr"))
        o->lr = v;
    else if (!strcmp(f, "momentum"))
        o->momentum = v;
    else if (!strcmp(f, "dampening"))
        o->dampening = v;
    else if (!strcmp(f, "nesterov"))
        o->nesterov = v != 0.0;
    else if (!strcmp(f, "betas.0"))
        o->betas[0] = v;
    else if (!strcmp(f, "betas.1"))
        o->betas[1] = v;
    else if (!strcmp(f, "eps"))
        o->eps = v;
    else if (!strcmp(f, "weight_decay"))
        o->weight_decay = v;
    else if (!strcmp(f, "amsgrad"))
        o->amsgrad = v != 0.0;
    else if (!strcmp(f, "alpha"))
        o->alpha = v;
    else if (!strcmp(f, "centered"))
        o->centered = v != 0.0;
    else if (!strcmp(f, "lr_decay"))
        o->lr_decay = v;
    else if (!strcmp(f, "initial_accumulator_value"))
        o->initial_accumulator_value = v;
    else if (!strcmp(f, "maximize"))
        o->maximize = v != 0.0;
    else if (!strcmp(f, "kind"))
        o->kind = (nb_optim_kind)(int)v;
    else
        fail_msg("no field %s", f);
}

static const option_error option_errors[] = {
    {NB_OPTIM_SGD, {"lr"}, {-0.1}, "nb_optim_new: invalid learning rate: -0.1 (it must be >= 0)"},
    {NB_OPTIM_SGD, {"lr"}, {(double)NAN}, "nb_optim_new: SGD has no default learning rate: set lr"},
    {NB_OPTIM_ADAM, {"lr"}, {(double)NAN}, "nb_optim_new: option 'lr' is nan"},
    {NB_OPTIM_ADAM, {"lr"}, {HUGE_VAL}, "nb_optim_new: option 'lr' is inf"},
    {NB_OPTIM_ADAM, {"lr"}, {-1e-3}, "nb_optim_new: invalid learning rate: -0.001"},
    {NB_OPTIM_ADAM,
     {"eps"},
     {-1e-8},
     "nb_optim_new: invalid epsilon value: -1e-08 (it must be >= 0)"},
    {NB_OPTIM_RMSPROP, {"eps"}, {-1.0}, "nb_optim_new: invalid epsilon value: -1"},
    {NB_OPTIM_ADAGRAD, {"eps"}, {-1.0}, "nb_optim_new: invalid epsilon value: -1"},
    {NB_OPTIM_SGD,
     {"momentum"},
     {-0.9},
     "nb_optim_new: invalid momentum value: -0.9 (it must be >= 0)"},
    {NB_OPTIM_RMSPROP, {"momentum"}, {-0.5}, "nb_optim_new: invalid momentum value: -0.5"},
    {NB_OPTIM_SGD, {"weight_decay"}, {-0.01}, "nb_optim_new: invalid weight_decay value: -0.01"},
    {NB_OPTIM_ADAMW, {"weight_decay"}, {-0.01}, "nb_optim_new: invalid weight_decay value: -0.01"},
    {NB_OPTIM_ADAGRAD, {"weight_decay"}, {-1.0}, "nb_optim_new: invalid weight_decay value: -1"},
    {NB_OPTIM_ADAM,
     {"betas.0"},
     {1.0},
     "nb_optim_new: invalid beta parameter at index 0: 1 (it must be in [0, 1))"},
    {NB_OPTIM_ADAM, {"betas.0"}, {-0.1}, "nb_optim_new: invalid beta parameter at index 0: -0.1"},
    {NB_OPTIM_ADAMW, {"betas.1"}, {1.5}, "nb_optim_new: invalid beta parameter at index 1: 1.5"},
    {NB_OPTIM_ADAMW, {"betas.1"}, {(double)NAN}, "nb_optim_new: option 'betas.1' is nan"},
    {NB_OPTIM_RMSPROP, {"alpha"}, {-0.5}, "nb_optim_new: invalid alpha value: -0.5"},
    {NB_OPTIM_ADAGRAD, {"lr_decay"}, {-1.0}, "nb_optim_new: invalid lr_decay value: -1"},
    {NB_OPTIM_ADAGRAD,
     {"initial_accumulator_value"},
     {-0.1},
     "nb_optim_new: invalid initial_accumulator_value value: -0.1"},
    {NB_OPTIM_SGD, {"dampening"}, {HUGE_VAL}, "nb_optim_new: option 'dampening' is inf"},
    /* finite, but a float32 scalar of the update would be infinite (PyTorch's step fails) */
    {NB_OPTIM_SGD,
     {"weight_decay"},
     {1e39},
     "nb_optim_new: option 'weight_decay' is 1e+39, beyond float32's range (PyTorch: value "
     "cannot be converted to type float without overflow)"},
    {NB_OPTIM_ADAM, {"lr"}, {1e300}, "nb_optim_new: option 'lr' is 1e+300, beyond float32's range"},
    {NB_OPTIM_SGD,
     {"momentum", "dampening"},
     {0.9, -3.5e38},
     "nb_optim_new: option 'dampening' is -3.5e+38, beyond float32's range"},
    {NB_OPTIM_RMSPROP, {"alpha"}, {1e39}, "nb_optim_new: option 'alpha' is 1e+39, beyond"},
    {NB_OPTIM_ADAGRAD,
     {"initial_accumulator_value"},
     {3.5e38},
     "nb_optim_new: option 'initial_accumulator_value' is 3.5e+38, beyond float32's range"},
    {NB_OPTIM_SGD,
     {"nesterov"},
     {1},
     "nb_optim_new: Nesterov momentum requires a momentum and zero dampening"},
    {NB_OPTIM_SGD,
     {"nesterov", "momentum", "dampening"},
     {1, 0.9, 0.1},
     "nb_optim_new: Nesterov momentum requires a momentum and zero dampening"},
    {NB_OPTIM_ADAM,
     {"momentum"},
     {0.9},
     "nb_optim_new: option 'momentum' does not apply to Adam (it must be 0)"},
    {NB_OPTIM_SGD, {"amsgrad"}, {1}, "nb_optim_new: option 'amsgrad' does not apply to SGD"},
    {NB_OPTIM_SGD, {"eps"}, {1e-8}, "nb_optim_new: option 'eps' does not apply to SGD"},
    {NB_OPTIM_ADAGRAD,
     {"betas.0"},
     {0.9},
     "nb_optim_new: option 'betas.0' does not apply to Adagrad"},
    {NB_OPTIM_RMSPROP,
     {"nesterov"},
     {1},
     "nb_optim_new: option 'nesterov' does not apply to RMSprop"},
    {NB_OPTIM_ADAMW, {"centered"}, {1}, "nb_optim_new: option 'centered' does not apply to AdamW"},
    {NB_OPTIM_SGD, {"kind"}, {42}, "nb_optim_new: unknown optimizer kind 42"},
    {NB_OPTIM_SGD, {"kind"}, {0}, "nb_optim_new: unknown optimizer kind 0"},
};

static void test_option_errors(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4));
    for (size_t i = 0; i < ARRAY_LEN(option_errors); i++) {
        const option_error *e = &option_errors[i];
        nb_optim_options o = nb_optim_defaults(e->kind);
        if (e->kind == NB_OPTIM_SGD) o.lr = 0.1;
        for (int f = 0; f < 3 && e->field[f]; f++) set_field(&o, e->field[f], e->value[f]);
        nb_error_clear();
        nb_optim *opt = nb_optim_new(&w, 1, &o);
        if (opt) fail_msg("accepted: %s", e->message);
        assert_error(NB_EINVAL, e->message);
    }
    /* the same checks guard add_param_group, naming it */
    nb_optim_options ok = nb_optim_defaults(NB_OPTIM_SGD);
    ok.lr = 0.1;
    nb_optim *opt = nb_optim_new(&w, 1, &ok);
    nb_tensor *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_optim_options bad = ok;
    bad.lr = -1.0;
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &bad), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_add_param_group: invalid learning rate: -1");
    nb_optim_options adam = nb_optim_defaults(NB_OPTIM_ADAM);
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &adam), NB_EINVAL);
    assert_error(NB_EINVAL,
                 "nb_optim_add_param_group: options of kind Adam for an optimizer of kind SGD");
    assert_int_equal(nb_optim_num_groups(opt), 1);
    nb_optim_free(opt);
    /* Adagrad's lr_decay only enters a double, and SGD without momentum leaves dampening
     * unused: any finite one is PyTorch's to take */
    nb_optim_options ada = nb_optim_defaults(NB_OPTIM_ADAGRAD);
    ada.lr_decay = 1e300;
    opt = nb_optim_new(&w, 1, &ada);
    assert_non_null(opt);
    nb_optim_free(opt);
    ok.dampening = -1e300;
    opt = nb_optim_new(&w, 1, &ok);
    assert_non_null(opt);
    nb_optim_free(opt);
    nb_release(w);
    nb_release(b);
}

static void test_parameter_errors(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_error_clear();
    assert_null(nb_optim_new(NULL, 1, &o));
    assert_error(NB_EINVAL, "nb_optim_new: argument 'params' is NULL");
    assert_null(nb_optim_new(&w, 1, NULL));
    assert_error(NB_EINVAL, "nb_optim_new: argument 'options' is NULL");
    assert_null(nb_optim_new(&w, 0, &o));
    assert_error(NB_EINVAL, "nb_optim_new: optimizer got an empty parameter list (n = 0)");
    assert_null(nb_optim_new(&w, -1, &o));
    assert_error(NB_EINVAL, "nb_optim_new: optimizer got an empty parameter list (n = -1)");
    nb_tensor *with_null[] = {w, NULL};
    nb_error_clear();
    assert_null(nb_optim_new(with_null, 2, &o));
    assert_error(NB_EINVAL, "nb_optim_new: argument 'params[1]' is NULL");
    /* a NULL made by a failed call keeps that call's error */
    nb_tensor *failed[] = {w, nb_zeros(NB_SHAPE(-1))};
    assert_null(nb_optim_new(failed, 2, &o));
    assert_error(NB_EINVAL, "nb_zeros: negative dimension");
    nb_tensor *twice[] = {w, b, w};
    assert_null(nb_optim_new(twice, 3, &o));
    assert_error(NB_EINVAL, "nb_optim_new: params[0] and params[2] are the same tensor: a "
                            "parameter may appear only once");
    nb_tensor *y = nb_mul_scalar(w, 2.0f);
    nb_tensor *nonleaf[] = {b, y};
    assert_null(nb_optim_new(nonleaf, 2, &o));
    assert_error(NB_EINVAL, "nb_optim_new: params[1]: can't optimize a non-leaf tensor");
    /* a non-leaf that retains its grad is accepted, as in PyTorch */
    assert_int_equal(nb_retain_grad(y), NB_OK);
    nb_optim *opt = nb_optim_new(nonleaf, 2, &o);
    assert_non_null(opt);
    nb_optim_free(opt);

    opt = nb_optim_new(&w, 1, &o);
    nb_tensor *again[] = {b, w};
    assert_int_equal(nb_optim_add_param_group(opt, again, 2, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_add_param_group: some parameters appear in more than one "
                            "parameter group (params[1])");
    /* the same checks over many parameters, where repeats are found by sorting */
    enum { MANY = 3000 };
    nb_optim *opt2 = nb_optim_new(&w, 1, &o);
    assert_non_null(opt2);
    nb_tensor **many = malloc(MANY * sizeof *many);
    assert_non_null(many);
    for (int i = 0; i < MANY; i++) many[i] = nb_requires_grad_(nb_zeros(NB_SHAPE(1)), true);
    nb_tensor *keep = many[2999];
    many[2999] = many[1234];
    assert_null(nb_optim_new(many, MANY, &o));
    assert_error(NB_EINVAL, "nb_optim_new: params[1234] and params[2999] are the same tensor: "
                            "a parameter may appear only once");
    many[2999] = keep;
    keep = many[2000];
    many[2000] = w; /* w is in opt already */
    assert_int_equal(nb_optim_add_param_group(opt2, many + 1, MANY - 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_add_param_group: some parameters appear in more than one "
                            "parameter group (params[1999])");
    many[2000] = b;
    assert_int_equal(nb_optim_add_param_group(opt2, many, MANY, NULL), NB_OK);
    assert_int_equal(nb_optim_group_size(opt2, 1), MANY);
    many[2000] = keep;
    for (int i = 0; i < MANY; i++) nb_release(many[i]);
    free(many);
    nb_optim_free(opt2);
    assert_int_equal(nb_optim_add_param_group(NULL, &b, 1, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_add_param_group: argument 'opt' is NULL");
    assert_int_equal(nb_optim_add_param_group(opt, &b, 0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_add_param_group: optimizer got an empty parameter list");
    assert_int_equal(nb_optim_num_groups(opt), 1);

    /* a NULL optimizer, groups out of range */
    assert_int_equal(nb_optim_step(NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_step: argument 'opt' is NULL");
    assert_int_equal(nb_optim_zero_grad(NULL, true), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_zero_grad: argument 'opt' is NULL");
    assert_true(isnan(nb_optim_get_lr(NULL, 0)));
    assert_error(NB_EINVAL, "nb_optim_get_lr: argument 'opt' is NULL");
    assert_true(isnan(nb_optim_get_lr(opt, 1)));
    assert_error(NB_EINVAL, "nb_optim_get_lr: group 1 out of range (the optimizer has 1)");
    assert_int_equal(nb_optim_set_lr(opt, -1, 0.1), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_set_lr: group -1 out of range");
    assert_int_equal(nb_optim_set_lr(opt, 0, -0.1), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_set_lr: invalid learning rate: -0.1 (it must be >= 0 and "
                            "within float32's range)");
    assert_int_equal(nb_optim_set_lr(opt, 0, (double)NAN), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_set_lr: invalid learning rate: nan");
    assert_int_equal(nb_optim_set_lr(opt, 0, 1e39), NB_EINVAL); /* would step with -inf */
    assert_error(NB_EINVAL, "nb_optim_set_lr: invalid learning rate: 1e+39");
    assert_true(nb_optim_get_lr(opt, 0) == 1e-3);
    assert_int_equal(nb_optim_group_size(opt, 3), -1);
    assert_error(NB_EINVAL, "nb_optim_group_size: group 3 out of range");
    assert_null(nb_optim_param(opt, 0, 1));
    assert_error(NB_EINVAL, "nb_optim_param: index 1 out of range (group 0 has 1 parameters)");
    assert_null(nb_optim_param(NULL, 0, 0));
    assert_error(NB_EINVAL, "nb_optim_param: argument 'opt' is NULL");
    assert_int_equal(nb_optim_group_options(opt, 0, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_group_options: argument 'out' is NULL");
    nb_optim_free(opt);
    nb_optim_free(NULL);
    nb_release(y);
    nb_release(w);
    nb_release(b);
}

/* ---- state dicts ----------------------------------------------------------------------- */

static void test_state_dict_contents(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    o.amsgrad = true;
    nb_optim *opt = nb_optim_new(&w, 1, &o);
    o.lr = 0.1;
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &o), NB_OK);
    set_grad(w, optim_ref_cases[0].grad_w[0]);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    static const char *const names[] = {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                                        "state.0.max_exp_avg_sq"};
    assert_int_equal(nb_state_dict_size(d), 4); /* b had no grad yet: no state */
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        assert_string_equal(nb_state_dict_name(d, (int64_t)i), names[i]);
    assert_int_equal(nb_tensor_ndim(nb_state_dict_get(d, "state.0.step")), 0);
    assert_int_equal(nb_tensor_ndim(nb_state_dict_get(d, "state.0.exp_avg")), 2);
    assert_string_equal(nb_state_dict_metadata(d, "optimizer"), "Adam");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.lr"), "0.001");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.1.lr"), "0.1");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.betas.1"), "0.999");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.eps"), "1e-08");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.amsgrad"), "true");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.1.maximize"), "false");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.params"), "0");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.1.params"), "1");
    assert_null(nb_state_dict_metadata(d, "param_groups.0.momentum"));
    assert_null(nb_state_dict_metadata(d, "param_groups.0.initial_lr"));
    /* a snapshot: a later step does not change it */
    float m0 = nb_tensor_data(nb_state_dict_get(d, "state.0.exp_avg"))[0];
    set_grad(w, optim_ref_cases[0].grad_w[1]);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_true(nb_tensor_data(nb_state_dict_get(d, "state.0.exp_avg"))[0] == m0);
    nb_state_dict_free(d);

    /* the scheduler's initial_lr travels with the groups; a lr round-trips exactly */
    nb_lr_scheduler *s = nb_exponential_lr_new(opt, 0.9);
    assert_int_equal(nb_lr_scheduler_step(s), NB_OK);
    d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.0.initial_lr"), "0.001");
    assert_string_equal(nb_state_dict_metadata(d, "param_groups.1.lr"), "0.09000000000000001");
    assert_true(strtod(nb_state_dict_metadata(d, "param_groups.1.lr"), NULL) ==
                nb_optim_get_lr(opt, 1));
    assert_int_equal(nb_optim_state_dict(NULL, d), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_state_dict: argument 'opt' is NULL");
    assert_int_equal(nb_optim_state_dict(opt, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_state_dict: argument 'out' is NULL");
    nb_state_dict_free(d);
    nb_lr_scheduler_free(s);
    nb_optim_free(opt);
    nb_release(w);
    nb_release(b);
}

/* Gradients that depend on the parameters: loss = Σ c·p² + Σ d·p. */
static void compute_grads(nb_tensor *const *params, int n)
{
    nb_scope *s = nb_scope_begin();
    nb_tensor *loss = NULL;
    for (int i = 0; i < n; i++) {
        nb_tensor *p = params[i];
        assert_int_equal(nb_zero_grad(p, true), NB_OK);
        nb_tensor *c = nb_add_scalar(nb_rand_like(p), 0.5f), *d = nb_randn_like(p);
        nb_tensor *term = nb_sum(nb_add(nb_mul(c, nb_mul(p, p)), nb_mul(d, p)), NB_DIMS_ALL, false);
        loss = loss ? nb_add(loss, term) : term;
    }
    assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
    nb_scope_end(s);
}

typedef struct run {
    nb_tensor *params[2];
    nb_optim *opt;
    nb_lr_scheduler *sched;
} run;

static void run_begin(run *r, const nb_optim_options *o, const float *w, const float *b)
{
    r->params[0] = param(w, NB_SHAPE(3, 4));
    r->params[1] = param(b, NB_SHAPE(3));
    r->opt = nb_optim_new(r->params, 1, o);
    assert_non_null(r->opt);
    nb_optim_options head = *o;
    head.lr = o->lr * 2.0;
    assert_int_equal(nb_optim_add_param_group(r->opt, &r->params[1], 1, &head), NB_OK);
    r->sched = nb_step_lr_new(r->opt, 3, 0.5);
    assert_non_null(r->sched);
}

static void run_steps(run *r, int steps, uint64_t seed)
{
    for (int t = 0; t < steps; t++) {
        nb_manual_seed(seed + (uint64_t)t);
        compute_grads(r->params, 2);
        assert_int_equal(nb_optim_step(r->opt), NB_OK);
        assert_int_equal(nb_lr_scheduler_step(r->sched), NB_OK);
    }
}

static void run_end(run *r)
{
    nb_lr_scheduler_free(r->sched);
    nb_optim_free(r->opt);
    nb_release(r->params[0]);
    nb_release(r->params[1]);
}

static nb_optim_options rich_options(nb_optim_kind kind)
{
    nb_optim_options o = nb_optim_defaults(kind);
    o.lr = 0.01;
    o.weight_decay = 0.01;
    switch (kind) {
    case NB_OPTIM_SGD:
        o.momentum = 0.9;
        o.nesterov = true;
        break;
    case NB_OPTIM_ADAM:
    case NB_OPTIM_ADAMW:
        o.amsgrad = true;
        break;
    case NB_OPTIM_RMSPROP:
        o.momentum = 0.5;
        o.centered = true;
        break;
    case NB_OPTIM_ADAGRAD:
        o.lr_decay = 0.01;
        o.initial_accumulator_value = 0.1;
        break;
    }
    return o;
}

/* 10 steps, or 5 + save + load into a fresh optimizer + 5: the same bits. */
static void test_resume_identity(void **state)
{
    (void)state;
    for (int k = NB_OPTIM_SGD; k <= NB_OPTIM_ADAGRAD; k++) {
        nb_optim_options o = rich_options((nb_optim_kind)k);
        run a, b, c;
        run_begin(&a, &o, optim_ref_w0, optim_ref_b0);
        run_steps(&a, 10, 100);
        run_begin(&b, &o, optim_ref_w0, optim_ref_b0);
        run_steps(&b, 5, 100);
        nb_state_dict *d = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(b.opt, d), NB_OK);
        assert_int_equal(nb_lr_scheduler_state_dict(b.sched, d), NB_OK);
        /* a fresh run from the saved parameters, then the saved state */
        run_begin(&c, &o, nb_tensor_data(b.params[0]), nb_tensor_data(b.params[1]));
        assert_int_equal(nb_optim_load_state_dict(c.opt, d), NB_OK);
        assert_int_equal(nb_lr_scheduler_load_state_dict(c.sched, d), NB_OK);
        assert_int_equal(nb_lr_scheduler_last_epoch(c.sched), 5);
        run_steps(&c, 5, 105);
        for (int i = 0; i < 2; i++)
            assert_true(same_bits(nb_tensor_data(a.params[i]), nb_tensor_data(c.params[i]),
                                  nb_tensor_numel(a.params[i])));
        for (int g = 0; g < 2; g++) {
            assert_true(nb_optim_get_lr(a.opt, g) == nb_optim_get_lr(c.opt, g));
            assert_true(nb_lr_scheduler_last_lr(a.sched, g) == nb_lr_scheduler_last_lr(c.sched, g));
        }
        /* and the state itself is the same */
        nb_state_dict *da = nb_state_dict_new(), *dc = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(a.opt, da), NB_OK);
        assert_int_equal(nb_optim_state_dict(c.opt, dc), NB_OK);
        assert_int_equal(nb_state_dict_size(da), nb_state_dict_size(dc));
        for (int64_t i = 0; i < nb_state_dict_size(da); i++) {
            nb_tensor *ta = nb_state_dict_tensor(da, i);
            nb_tensor *tc = nb_state_dict_get(dc, nb_state_dict_name(da, i));
            assert_non_null(tc);
            assert_true(same_bits(nb_tensor_data(ta), nb_tensor_data(tc), nb_tensor_numel(ta)));
        }
        nb_state_dict_free(da);
        nb_state_dict_free(dc);
        nb_state_dict_free(d);
        run_end(&a);
        run_end(&b);
        run_end(&c);
    }
}

static void expect_same_state(const nb_state_dict *x, const nb_state_dict *y)
{
    assert_int_equal(nb_state_dict_size(x), nb_state_dict_size(y));
    assert_int_equal(nb_state_dict_metadata_size(x), nb_state_dict_metadata_size(y));
    for (int64_t i = 0; i < nb_state_dict_size(x); i++) {
        const nb_tensor *tx = nb_state_dict_tensor(x, i);
        const nb_tensor *ty = nb_state_dict_get(y, nb_state_dict_name(x, i));
        assert_non_null(ty);
        assert_true(
            same_bits(nb_tensor_data_const(tx), nb_tensor_data_const(ty), nb_tensor_numel(tx)));
    }
    for (int64_t i = 0; i < nb_state_dict_metadata_size(x); i++) {
        const char *key = nb_state_dict_metadata_key(x, i);
        assert_string_equal(nb_state_dict_metadata(x, key), nb_state_dict_metadata(y, key));
    }
}

typedef struct load_error {
    const char *tensor; /* replace (or add) this tensor... */
    int64_t ndim, dim0; /* ...with zeros of this shape (ndim -1: remove it) */
    const char *key;    /* or set this metadata key... */
    const char *value;  /* ...to this value */
    nb_status code;
    const char *message;
} load_error;

static const load_error load_errors[] = {
    {NULL, 0, 0, "optimizer", "SGD", NB_EINVAL,
     "nb_optim_load_state_dict: the state dict is of a SGD optimizer, this one is RMSprop"},
    {NULL, 0, 0, "param_groups.1.params", "1,2", NB_EINVAL,
     "doesn't match the size of optimizer's group (group 1: 2 parameters, expected 1)"},
    {NULL, 0, 0, "param_groups.1.params", "0", NB_EINVAL,
     "nb_optim_load_state_dict: 'param_groups.1.params' is \"0\": parameters are numbered in "
     "order"},
    {NULL, 0, 0, "param_groups.2.params", "2", NB_EINVAL,
     "nb_optim_load_state_dict: loaded state dict has 3 parameter groups, the optimizer has 2"},
    {NULL, 0, 0, "param_groups.0.alpha", "fast", NB_EINVAL,
     "nb_optim_load_state_dict: invalid value \"fast\" for 'param_groups.0.alpha'"},
    {NULL, 0, 0, "param_groups.0.centered", "yes", NB_EINVAL,
     "nb_optim_load_state_dict: invalid value \"yes\" for 'param_groups.0.centered'"},
    {NULL, 0, 0, "param_groups.1.lr", "nan", NB_EINVAL,
     "nb_optim_load_state_dict: invalid value \"nan\" for 'param_groups.1.lr'"},
    {NULL, 0, 0, "param_groups.1.lr", "1e999", NB_EINVAL,
     "nb_optim_load_state_dict: invalid value \"1e999\" for 'param_groups.1.lr'"},
    {NULL, 0, 0, "param_groups.0.initial_lr", "nan", NB_EINVAL,
     "nb_optim_load_state_dict: invalid value \"nan\" for 'param_groups.0.initial_lr'"},
    {NULL, 0, 0, "param_groups.0.eps", "-1e-310", NB_EINVAL,
     "nb_optim_load_state_dict: invalid epsilon value: -1e-310"},
    {NULL, 0, 0, "param_groups.0.centered", "false", NB_EINVAL,
     "nb_optim_load_state_dict: unexpected entry 'state.0.grad_avg' (RMSprop with these "
     "options keeps no such state)"},
    {"state.1.square_avg", -1, 0, NULL, NULL, NB_EINVAL,
     "nb_optim_load_state_dict: missing entry 'state.1.square_avg'"},
    {"state.0.square_avg", 1, 12, NULL, NULL, NB_ESHAPE,
     "nb_optim_load_state_dict: 'state.0.square_avg' has shape [12], but parameter 0 has shape "
     "[3, 4]"},
    {"state.0.step", 1, 2, NULL, NULL, NB_ESHAPE,
     "nb_optim_load_state_dict: 'state.0.step' has shape [2], not one value"},
    {"state.2.step", 0, 0, NULL, NULL, NB_EINVAL,
     "nb_optim_load_state_dict: unexpected entry 'state.2.step' (the optimizer has 2 "
     "parameters)"},
    {"state.x.step", 0, 0, NULL, NULL, NB_EINVAL, "unexpected entry 'state.x.step'"},
    {"state.00.square_avg", 1, 7, NULL, NULL, NB_EINVAL,
     "nb_optim_load_state_dict: unexpected entry 'state.00.square_avg' (the optimizer has 2 "
     "parameters)"},
    {"state.0.exp_avg", 1, 2, NULL, NULL, NB_EINVAL,
     "nb_optim_load_state_dict: unexpected entry 'state.0.exp_avg' (RMSprop with these options "
     "keeps no such state)"},
};

static nb_optim *rmsprop_pair(nb_tensor *w, nb_tensor *b)
{
    nb_optim_options o = rich_options(NB_OPTIM_RMSPROP);
    nb_optim *opt = nb_optim_new(&w, 1, &o);
    assert_non_null(opt);
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, NULL), NB_OK);
    return opt;
}

static void test_load_errors(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_optim *src = rmsprop_pair(w, b);
    nb_tensor *params[] = {w, b};
    compute_grads(params, 2);
    assert_int_equal(nb_optim_step(src), NB_OK);
    nb_state_dict *good = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(src, good), NB_OK);
    nb_lr_scheduler *s = nb_step_lr_new(src, 2, 0.5);

    nb_tensor *w2 = param(optim_ref_w0, NB_SHAPE(3, 4)), *b2 = param(optim_ref_b0, NB_SHAPE(3));
    nb_optim *dst = rmsprop_pair(w2, b2);
    nb_tensor *params2[] = {w2, b2};
    compute_grads(params2, 2);
    assert_int_equal(nb_optim_step(dst), NB_OK);
    nb_state_dict *before = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(dst, before), NB_OK);
    for (size_t i = 0; i < ARRAY_LEN(load_errors); i++) {
        const load_error *e = &load_errors[i];
        nb_state_dict *d = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(src, d), NB_OK);
        if (e->tensor && e->ndim < 0) {
            assert_int_equal(nb_state_dict_remove(d, e->tensor), NB_OK);
        } else if (e->tensor) {
            nb_tensor *t = nb_zeros(nb_shape_make((int)e->ndim, &e->dim0));
            assert_int_equal(nb_state_dict_set(d, e->tensor, t), NB_OK);
            nb_release(t);
        } else {
            assert_int_equal(nb_state_dict_set_metadata(d, e->key, e->value), NB_OK);
        }
        nb_error_clear();
        assert_int_equal(nb_optim_load_state_dict(dst, d), e->code);
        assert_error(e->code, e->message);
        nb_state_dict *after = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(dst, after), NB_OK);
        expect_same_state(before, after);
        nb_state_dict_free(after);
        nb_state_dict_free(d);
    }
    /* the whole dict, a model's tensors beside it, loads */
    assert_int_equal(nb_state_dict_set(good, "0.weight", w), NB_OK);
    assert_int_equal(nb_optim_load_state_dict(dst, good), NB_OK);
    nb_state_dict *after = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(dst, after), NB_OK);
    assert_int_equal(nb_state_dict_remove(good, "0.weight"), NB_OK);
    expect_same_state(good, after);
    nb_state_dict_free(after);

    /* state for no parameter and a missing kind */
    nb_state_dict *empty = nb_state_dict_new();
    assert_int_equal(nb_optim_load_state_dict(dst, empty), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_load_state_dict: missing entry 'optimizer'");
    assert_int_equal(nb_optim_load_state_dict(NULL, empty), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_load_state_dict: argument 'opt' is NULL");
    assert_int_equal(nb_optim_load_state_dict(dst, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_load_state_dict: argument 'in' is NULL");
    /* a group option that is missing */
    assert_int_equal(nb_optim_state_dict(src, empty), NB_OK);
    nb_state_dict *partial = nb_state_dict_new();
    for (int64_t i = 0; i < nb_state_dict_metadata_size(empty); i++) {
        const char *key = nb_state_dict_metadata_key(empty, i);
        if (strcmp(key, "param_groups.1.eps"))
            nb_state_dict_set_metadata(partial, key, nb_state_dict_metadata(empty, key));
    }
    assert_int_equal(nb_optim_load_state_dict(dst, partial), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_optim_load_state_dict: missing entry 'param_groups.1.eps'");
    /* without the tensors: every parameter back to no state */
    nb_state_dict_set_metadata(partial, "param_groups.1.eps", "1e-08");
    assert_int_equal(nb_optim_load_state_dict(dst, partial), NB_OK);
    after = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(dst, after), NB_OK);
    assert_int_equal(nb_state_dict_size(after), 0);
    nb_state_dict_free(after);
    nb_state_dict_free(partial);
    nb_state_dict_free(empty);
    nb_state_dict_free(before);
    nb_state_dict_free(good);
    nb_lr_scheduler_free(s);
    nb_optim_free(src);
    nb_optim_free(dst);
    nb_release(w);
    nb_release(b);
    nb_release(w2);
    nb_release(b2);
}

/* Loading options that need other buffers reshapes the state (amsgrad on). */
static void test_load_changes_layout(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4));
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *plain = nb_optim_new(&w, 1, &o);
    o.amsgrad = true;
    nb_optim *ams = nb_optim_new(&w, 1, &o);
    set_grad(w, optim_ref_cases[0].grad_w[0]);
    assert_int_equal(nb_optim_step(plain), NB_OK);
    assert_int_equal(nb_optim_step(ams), NB_OK);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(ams, d), NB_OK);
    assert_int_equal(nb_optim_load_state_dict(plain, d), NB_OK);
    nb_optim_options got;
    assert_int_equal(nb_optim_group_options(plain, 0, &got), NB_OK);
    assert_true(got.amsgrad);
    nb_state_dict *e = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(plain, e), NB_OK);
    expect_same_state(d, e);
    assert_int_equal(nb_optim_step(plain), NB_OK);
    nb_state_dict_free(d);
    nb_state_dict_free(e);
    nb_optim_free(plain);
    nb_optim_free(ams);
    nb_release(w);
}

/* ---- gradient clipping ----------------------------------------------------------------- */

static void clip_params(nb_tensor **p)
{
    const float *g = optim_ref_clip_grads;
    for (int i = 0; i < 4; i++) {
        p[i] = nb_requires_grad_(nb_zeros(NB_SHAPE(optim_ref_clip_numel[i])), true);
        set_grad(p[i], g);
        g += optim_ref_clip_numel[i];
    }
    p[4] = nb_requires_grad_(nb_zeros(NB_SHAPE(5)), true); /* no grad */
}

static void clip_release(nb_tensor **p)
{
    for (int i = 0; i < 5; i++) nb_release(p[i]);
}

static void test_clip_matches_pytorch(void **state)
{
    (void)state;
    parity par = {0};
    for (size_t c = 0; c < ARRAY_LEN(optim_ref_clips); c++) {
        const optim_ref_clip *r = &optim_ref_clips[c];
        nb_tensor *p[5];
        clip_params(p);
        uint64_t v0 = nb_tensor_version(nb_tensor_grad(p[0]));
        if (r->value) {
            assert_int_equal(nb_clip_grad_value_(p, 5, r->clip_value), NB_OK);
        } else {
            float total = -1.0f;
            assert_int_equal(nb_clip_grad_norm_(p, 5, r->max_norm, r->norm_type, true, &total),
                             NB_OK);
            compare("clip_grad_norm_ total", (int)c, &total, &r->total, 1, &par);
            assert_true(same_bits(&total, &r->total, 1));
        }
        assert_int_equal(nb_tensor_version(nb_tensor_grad(p[0])), v0 + 1);
        const float *want = r->after;
        for (int i = 0; i < 4; i++) {
            compare("clip result", (int)c, nb_tensor_data(nb_tensor_grad(p[i])), want,
                    (int)optim_ref_clip_numel[i], &par);
            want += optim_ref_clip_numel[i];
        }
        assert_null(nb_tensor_grad(p[4]));
        clip_release(p);
    }
    printf("    clip     largest relative difference %.3g; %ld of %ld values bit-identical\n",
           par.max_rel, par.identical, par.total);
    assert_int_equal(par.identical, par.total);
    /* no gradient at all: total 0, nothing to do */
    nb_tensor *t = nb_zeros(NB_SHAPE(3));
    float total = -1.0f;
    assert_int_equal(nb_clip_grad_norm_(&t, 1, 1.0, 2.0, true, &total), NB_OK);
    assert_true(total == 0.0f);
    assert_int_equal(nb_clip_grad_norm_(&t, 0, 1.0, 2.0, true, NULL), NB_OK);
    nb_release(t);
    /*
     * PyTorch's kernel takes the order as a float: 1e39 is the inf norm, 1e-46 the p = 0
     * "norm" that counts nonzero values (torch.nn.utils.clip_grad_norm_ gives 9 and 2 here,
     * and the same grads after).
     */
    nb_tensor *ab[2] = {nb_requires_grad_(nb_zeros(NB_SHAPE(3)), true),
                        nb_requires_grad_(nb_zeros(NB_SHAPE(2)), true)};
    nb_tensor *ga = nb_from_data((float[]){3, -4, 9}, NB_SHAPE(3)),
              *gb = nb_from_data((float[]){0, 2}, NB_SHAPE(2));
    assert_int_equal(nb_tensor_set_grad(ab[0], ga), NB_OK);
    assert_int_equal(nb_clip_grad_norm_(ab, 1, 1.0, 1e39, false, &total), NB_OK);
    assert_true(total == 9.0f);
    const float *g = nb_tensor_data(nb_tensor_grad(ab[0]));
    float coef = 1.0f / (9.0f + 1e-6f);
    assert_true(g[0] == 3 * coef && g[1] == -4 * coef && g[2] == 9 * coef);
    float *ra = nb_tensor_data(ga);
    ra[0] = 3, ra[1] = -4, ra[2] = 9;
    assert_int_equal(nb_tensor_set_grad(ab[1], gb), NB_OK);
    assert_int_equal(nb_clip_grad_norm_(ab, 2, 1.0, 1e-46, false, &total), NB_OK);
    assert_true(total == 2.0f);
    coef = 1.0f / (2.0f + 1e-6f);
    assert_true(nb_tensor_data(nb_tensor_grad(ab[1]))[1] == 2 * coef);
    nb_release(ga);
    nb_release(gb);
    nb_release(ab[0]);
    nb_release(ab[1]);
}

/* The float32 reductions of torch.norm for every tail length, through clip_grad_norm_. */
static void test_norms_match_pytorch(void **state)
{
    (void)state;
    static const double types[4] = {1.0, 2.0, HUGE_VAL, 3.0};
    const float *values = optim_ref_norm_values;
    for (size_t i = 0; i < ARRAY_LEN(optim_ref_norm_sizes); i++) {
        int64_t n = optim_ref_norm_sizes[i];
        nb_tensor *p = nb_requires_grad_(nb_zeros(NB_SHAPE(n)), true);
        set_grad(p, values);
        for (int k = 0; k < 4; k++) {
            float total;
            assert_int_equal(nb_clip_grad_norm_(&p, 1, 1e30, types[k], false, &total), NB_OK);
            if (!same_bits(&total, &optim_ref_norm_totals[i][k], 1))
                fail_msg("%lld elements, norm %g: %.9g, PyTorch %.9g", (long long)n, types[k],
                         (double)total, (double)optim_ref_norm_totals[i][k]);
        }
        assert_true(same_bits(nb_tensor_data(nb_tensor_grad(p)), values, n)); /* times 1 */
        nb_release(p);
        values += n;
    }
}

static void test_clip_errors(void **state)
{
    (void)state;
    nb_tensor *p[5];
    clip_params(p);
    nb_error_clear();
    assert_int_equal(nb_clip_grad_norm_(NULL, 1, 1.0, 2.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: argument 'params' is NULL");
    assert_int_equal(nb_clip_grad_norm_(p, -1, 1.0, 2.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: n must be >= 0, got -1");
    assert_int_equal(nb_clip_grad_norm_(p, 5, -1.0, 2.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: max_norm must be >= 0, got -1");
    assert_int_equal(nb_clip_grad_norm_(p, 5, (double)NAN, 2.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: max_norm must be >= 0, got nan");
    assert_int_equal(nb_clip_grad_norm_(p, 5, 1.0, 0.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: norm_type must be > 0 or INFINITY, got 0");
    assert_int_equal(nb_clip_grad_norm_(p, 5, 1.0, -HUGE_VAL, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: norm_type must be > 0 or INFINITY, got -inf");
    nb_tensor *with_null[] = {p[0], NULL};
    nb_error_clear();
    assert_int_equal(nb_clip_grad_norm_(with_null, 2, 1.0, 2.0, false, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_norm_: argument 'params[1]' is NULL");
    nb_tensor *failed[] = {p[0], nb_zeros(NB_SHAPE(-2))};
    assert_int_equal(nb_clip_grad_value_(failed, 2, 1.0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_zeros: negative dimension");
    nb_error_clear();
    assert_int_equal(nb_clip_grad_value_(with_null, 2, 1.0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_value_: argument 'params[1]' is NULL");
    assert_int_equal(nb_clip_grad_value_(NULL, 2, 1.0), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_value_: argument 'params' is NULL");
    assert_int_equal(nb_clip_grad_value_(p, 5, -0.5), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_value_: clip_value must be >= 0, got -0.5");
    assert_int_equal(nb_clip_grad_value_(p, -2, 0.5), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_clip_grad_value_: n must be >= 0, got -2");
    /* a non-finite total: an error when asked for, else scaled anyway */
    assert_true(same_bits(nb_tensor_data(nb_tensor_grad(p[0])), optim_ref_clip_grads, 12));
    nb_tensor_data(nb_tensor_grad(p[1]))[0] = INFINITY;
    float total = 0.0f;
    assert_int_equal(nb_clip_grad_norm_(p, 5, 1.0, 2.0, true, &total), NB_ERANGE);
    assert_error(NB_ERANGE, "nb_clip_grad_norm_: the total norm of order 2 of the gradients is "
                            "inf, so it cannot be clipped");
    assert_true(isinf(total));
    assert_true(same_bits(nb_tensor_data(nb_tensor_grad(p[0])), optim_ref_clip_grads, 12));
    assert_int_equal(nb_clip_grad_norm_(p, 5, 1.0, HUGE_VAL, false, &total), NB_OK);
    assert_true(isinf(total));
    assert_true(nb_tensor_data(nb_tensor_grad(p[0]))[0] == 0.0f); /* scaled by 1/inf */
    clip_release(p);
}

/* ---- allocation failures --------------------------------------------------------------- */

static bool message_is(const char *a, const char *b, const char *c)
{
    const char *m = nb_last_error()->message;
    return !strcmp(m, a) || !strcmp(m, b) || (c && !strcmp(m, c));
}

/* Every allocation of making an optimizer (two groups) and of its first step can fail:
 * NB_ENOMEM naming the call, nothing leaked, the parameters untouched or fully updated. */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (int kind = NB_OPTIM_SGD; kind <= NB_OPTIM_ADAGRAD; kind++) {
        nb_optim_options o = rich_options((nb_optim_kind)kind);
        nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
        set_grad(w, optim_ref_cases[0].grad_w[0]);
        set_grad(b, optim_ref_cases[0].grad_b[0]);
        /* the reference: one step without failures */
        float want_w[12], want_b[3];
        {
            nb_tensor *rw = param(optim_ref_w0, NB_SHAPE(3, 4)),
                      *rb = param(optim_ref_b0, NB_SHAPE(3));
            set_grad(rw, optim_ref_cases[0].grad_w[0]);
            set_grad(rb, optim_ref_cases[0].grad_b[0]);
            nb_optim *ref = nb_optim_new(&rw, 1, &o);
            nb_optim_add_param_group(ref, &rb, 1, NULL);
            assert_int_equal(nb_optim_step(ref), NB_OK);
            memcpy(want_w, nb_tensor_data(rw), sizeof want_w);
            memcpy(want_b, nb_tensor_data(rb), sizeof want_b);
            nb_optim_free(ref);
            nb_release(rw);
            nb_release(rb);
        }
        long k;
        for (k = 1; k < 200; k++) {
            memcpy(nb_tensor_data(w), optim_ref_w0, sizeof want_w);
            memcpy(nb_tensor_data(b), optim_ref_b0, sizeof want_b);
            long live0 = nbt_alloc_live();
            nbt_fail_alloc_after(k);
            nb_error_clear();
            nb_optim *opt = nb_optim_new(&w, 1, &o);
            nb_status rc = opt ? nb_optim_add_param_group(opt, &b, 1, NULL) : NB_ENOMEM;
            if (rc == NB_OK) rc = nb_optim_step(opt);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (rc != NB_OK) {
                assert_int_equal(rc, NB_ENOMEM);
                assert_true(message_is("nb_optim_new: out of memory",
                                       "nb_optim_add_param_group: out of memory",
                                       "nb_optim_step: out of memory"));
                assert_true(same_bits(nb_tensor_data(w), optim_ref_w0, 12));
                assert_true(same_bits(nb_tensor_data(b), optim_ref_b0, 3));
                if (opt) { /* what is there is consistent: the step now gives the reference */
                    if (nb_optim_num_groups(opt) == 1)
                        assert_int_equal(nb_optim_add_param_group(opt, &b, 1, NULL), NB_OK);
                    assert_int_equal(nb_optim_step(opt), NB_OK);
                }
            }
            if (opt) {
                assert_true(same_bits(nb_tensor_data(w), want_w, 12));
                assert_true(same_bits(nb_tensor_data(b), want_b, 3));
            }
            nb_optim_free(opt);
            assert_int_equal(nbt_alloc_live(), live0);
            if (!failed) break;
        }
        assert_true(k > 3);
        nb_release(w);
        nb_release(b);
    }
}

/* Saving and loading state fail cleanly too; a failed load leaves the optimizer as it was. */
static void test_state_alloc_failures(void **state)
{
    (void)state;
    nb_tensor *w = param(optim_ref_w0, NB_SHAPE(3, 4)), *b = param(optim_ref_b0, NB_SHAPE(3));
    nb_tensor *params[] = {w, b};
    nb_optim *src = rmsprop_pair(w, b), *dst = rmsprop_pair(w, b);
    compute_grads(params, 2);
    assert_int_equal(nb_optim_step(src), NB_OK);
    nb_state_dict *saved = nb_state_dict_new(), *before = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(src, saved), NB_OK);
    assert_int_equal(nb_optim_state_dict(dst, before), NB_OK);
    long k;
    for (k = 1; k < 200; k++) {
        long live0 = nbt_alloc_live();
        nbt_fail_alloc_after(k);
        nb_state_dict *d = nb_state_dict_new();
        nb_status rc = d ? nb_optim_state_dict(src, d) : NB_ENOMEM;
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (rc != NB_OK) {
            assert_int_equal(rc, NB_ENOMEM);
            assert_true(message_is("nb_state_dict_new: out of memory",
                                   "nb_optim_state_dict: out of memory", NULL));
        } else {
            expect_same_state(saved, d);
        }
        nb_state_dict_free(d);
        assert_int_equal(nbt_alloc_live(), live0);
        if (!failed) break;
    }
    assert_true(k > 5);
    for (k = 1; k < 200; k++) {
        nbt_fail_alloc_after(k);
        nb_status rc = nb_optim_load_state_dict(dst, saved);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        nb_state_dict *now = nb_state_dict_new();
        assert_int_equal(nb_optim_state_dict(dst, now), NB_OK);
        if (rc != NB_OK) {
            assert_int_equal(rc, NB_ENOMEM);
            assert_error(NB_ENOMEM, "nb_optim_load_state_dict: out of memory");
            expect_same_state(before, now);
        } else {
            expect_same_state(saved, now);
        }
        nb_state_dict_free(now);
        if (!failed) break;
    }
    assert_true(k > 2);
    nb_state_dict_free(saved);
    nb_state_dict_free(before);
    nb_optim_free(src);
    nb_optim_free(dst);
    nb_release(w);
    nb_release(b);
}

/* ---- the header's example -------------------------------------------------------------- */

/* The worked example at the top of nabla/optim.h, verbatim: it compiles here and runs. */
static void header_example(void)
{
    // clang-format off
    // BEGIN optim.h example
    nb_tensor *x = nb_ones(NB_SHAPE(8, 4)), *y = nb_zeros(NB_SHAPE(8, 3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(4, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_zeros(NB_SHAPE(3)), true);
    nb_tensor *params[] = {w, b};
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = 0.1;
    o.momentum = 0.9;
    nb_optim *opt = nb_optim_new(params, 2, &o);
    nb_status rc = opt ? NB_OK : nb_last_error()->code;
    for (int step = 0; step < 10 && rc == NB_OK; step++) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *z = nb_add(nb_matmul(x, w), b);
        nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
        rc = nb_backward(loss, NULL, false);
        if (rc == NB_OK) rc = nb_optim_step(opt);
        if (rc == NB_OK) rc = nb_optim_zero_grad(opt, true);
        nb_scope_end(s);
    }
    if (rc != NB_OK) fprintf(stderr, "%s\n", nb_last_error()->message);
    nb_optim_free(opt);
    nb_release(x);
    nb_release(y);
    nb_release(w);
    nb_release(b);
    // END optim.h example
    // clang-format on
    assert_int_equal(rc, NB_OK);
}

static void test_header_example(void **state)
{
    (void)state;
    nb_manual_seed(0);
    header_example();
    char *header = nbt_read_text(NB_TEST_DATA_DIR "/../../include/nabla/optim.h");
    char *self = nbt_read_text(NB_TEST_DATA_DIR "/../test_optim.c");
    static char in_header[8192], in_test[8192];
    nbt_extract(header, "A training step:", " *     ", NULL, in_header, sizeof in_header);
    nbt_extract(self, "// BEGIN optim.h example", "    ", "// END optim.h example", in_test,
                sizeof in_test);
    assert_true(strlen(in_header) > 500);
    assert_string_equal(in_header, in_test);
    free(header);
    free(self);
}

/*
 * The same runs end to end: nabla computes the gradients itself with its own Linear and
 * cross_entropy (the model and the data drawn from seed 0 as PyTorch drew them), then steps:
 * every parameter after every step within 1e-6 of PyTorch's, relative to the largest value of
 * its tensor.
 */
static void test_end_to_end_match_pytorch(void **state)
{
    (void)state;
    double worst = 0;
    int64_t exact = 0, total = 0;
    for (size_t c = 0; c < sizeof optim_ref_cases / sizeof optim_ref_cases[0]; c++) {
        const optim_ref_case *rc = &optim_ref_cases[c];
        nb_manual_seed(0);
        nb_module *lin = nb_module_linear(4, 3, true);
        nb_tensor *x = nb_randn(NB_SHAPE(8, 4)), *y = nb_randint(0, 3, NB_SHAPE(8));
        nb_tensor *p[2];
        assert_int_equal(nb_module_parameters(lin, p, 2), 2);
        assert_memory_equal(nb_tensor_data(p[0]), optim_ref_w0, sizeof optim_ref_w0);
        assert_memory_equal(nb_tensor_data(p[1]), optim_ref_b0, sizeof optim_ref_b0);
        if (rc->b_frozen) nb_requires_grad_(p[1], false);
        nb_optim_options o0 = to_options(&rc->groups[0]), o1 = to_options(&rc->groups[1]);
        nb_optim *opt = nb_optim_new(p, rc->ngroups == 2 ? 1 : 2, &o0);
        assert_non_null(opt);
        if (rc->ngroups == 2) assert_int_equal(nb_optim_add_param_group(opt, &p[1], 1, &o1), NB_OK);
        for (int t = 0; t < OPTIM_REF_STEPS; t++) {
            nb_scope *s = nb_scope_begin();
            assert_int_equal(nb_optim_zero_grad(opt, true), NB_OK);
            nb_tensor *loss =
                nb_cross_entropy(nb_module_forward(lin, x), y, NULL, -100, NB_MEAN, 0);
            assert_int_equal(nb_backward(loss, NULL, false), NB_OK);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            assert_int_equal(nb_scope_end(s), NB_OK);
            const float *want[2] = {rc->w[t], rc->b[t]},
                        *got[2] = {nb_tensor_data(p[0]), nb_tensor_data(p[1])};
            for (int k = 0; k < 2; k++) {
                double scale = 0; /* relative to the tensor's largest value (normwise) */
                for (int i = 0; i < (k ? 3 : 12); i++)
                    scale = fmax(scale, fabs((double)want[k][i]));
                for (int i = 0; i < (k ? 3 : 12); i++) {
                    double d = fabs((double)got[k][i] - (double)want[k][i]);
                    double rel = d / scale;
                    worst = fmax(worst, rel);
                    exact += d == 0;
                    total++;
                    if (rel > 1e-6)
                        fail_msg("%s, step %d, %s[%d]: %.9g, PyTorch %.9g", rc->name, t + 1,
                                 k ? "bias" : "weight", i, (double)got[k][i], (double)want[k][i]);
                }
            }
        }
        nb_optim_free(opt);
        nb_release(x);
        nb_release(y);
        nb_module_free(lin);
    }
    print_message("end to end: %lld values, %lld bit-identical, largest relative difference "
                  "%.3g\n",
                  (long long)total, (long long)exact, worst);
}

/* ---- dormant state: subnormal moments, computed as the float operations compute them --- */

/* Adam's, AdamW's and SGD's element updates in plain float operations (the sequences of
 * update.c's header), with subnormals as IEEE arithmetic makes them: the reference for the
 * update's dormant paths. This file is compiled without contraction, so each statement
 * rounds once. For SGD, m is the momentum buffer. */
typedef struct dormant_ref {
    nb_optim_options o;
    float *p, *m, *v, *vmax;
    int64_t n;
    double step;
} dormant_ref;

static float ref_max(float a, float b)
{
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a > b ? a : b;
}

static void sgd_ref_step(dormant_ref *r, const float *grad)
{
    const nb_optim_options *o = &r->o;
    float wd = (float)o->weight_decay, mu = (float)o->momentum;
    float keep = (float)(1.0 - o->dampening), neg_lr = (float)-o->lr;
    for (int64_t i = 0; i < r->n; i++) {
        float d = o->maximize ? -grad[i] : grad[i];
        if (o->weight_decay != 0.0) d = fmaf(wd, r->p[i], d);
        float b = r->m[i] * mu;
        r->m[i] = fmaf(keep, d, b);
        d = o->nesterov ? fmaf(mu, r->m[i], d) : r->m[i];
        r->p[i] = fmaf(neg_lr, d, r->p[i]);
    }
}

static void adam_ref_step(dormant_ref *r, const float *grad)
{
    const nb_optim_options *o = &r->o;
    r->step = (double)((float)r->step + 1.0f);
    double bc1 = 1.0 - pow(o->betas[0], r->step), bc2 = 1.0 - pow(o->betas[1], r->step);
    float b1 = (float)o->betas[0], b2 = (float)o->betas[1];
    float one_b1 = (float)(1.0 - o->betas[0]), one_b2 = (float)(1.0 - o->betas[1]);
    float neg_ss = (float)-(o->lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps;
    float wd = (float)o->weight_decay, decay = (float)(1.0 - o->lr * o->weight_decay);
    for (int64_t i = 0; i < r->n; i++) {
        float p = r->p[i];
        if (o->kind == NB_OPTIM_ADAMW) p = p * decay;
        float g = o->maximize ? -grad[i] : grad[i];
        if (o->kind == NB_OPTIM_ADAM && o->weight_decay != 0.0) g = fmaf(wd, p, g);
        float mb = r->m[i] * b1;
        r->m[i] = fmaf(one_b1, g, mb);
        float vb = r->v[i] * b2, g2 = one_b2 * g;
        r->v[i] = fmaf(g2, g, vb);
        float second = r->v[i];
        if (o->amsgrad) second = r->vmax[i] = ref_max(r->vmax[i], r->v[i]);
        float denom = sqrtf(second) / bc2_sqrt;
        denom = denom + eps;
        float st = neg_ss * r->m[i];
        st = st / denom;
        r->p[i] = p + st;
    }
}

/* RMSprop: m is the square average, v the momentum buffer, vmax the gradient average. */
static void rmsprop_ref_step(dormant_ref *r, const float *grad)
{
    const nb_optim_options *o = &r->o;
    float alpha = (float)o->alpha, one_alpha = (float)(1.0 - o->alpha), eps = (float)o->eps;
    float wd = (float)o->weight_decay, mu = (float)o->momentum, neg_lr = (float)-o->lr;
    for (int64_t i = 0; i < r->n; i++) {
        float g = o->maximize ? -grad[i] : grad[i];
        if (o->weight_decay != 0.0) g = fmaf(wd, r->p[i], g);
        float sa = r->m[i] * alpha, g2 = one_alpha * g;
        r->m[i] = fmaf(g2, g, sa);
        float avg;
        if (o->centered) {
            float ga = r->vmax[i] * alpha;
            r->vmax[i] = fmaf(one_alpha, g, ga);
            avg = sqrtf(fmaf(-r->vmax[i], r->vmax[i], r->m[i]));
        } else {
            avg = sqrtf(r->m[i]);
        }
        avg = avg + eps;
        if (o->momentum > 0.0) {
            float b = r->v[i] * mu, q = g / avg;
            r->v[i] = b + q;
            r->p[i] = fmaf(neg_lr, r->v[i], r->p[i]);
        } else {
            float q = neg_lr * g;
            q = q / avg;
            r->p[i] = r->p[i] + q;
        }
    }
}

static void dormant_ref_step(dormant_ref *r, const float *grad)
{
    if (r->o.kind == NB_OPTIM_SGD)
        sgd_ref_step(r, grad);
    else if (r->o.kind == NB_OPTIM_RMSPROP)
        rmsprop_ref_step(r, grad);
    else
        adam_ref_step(r, grad);
}

/* The state dict's names of the reference's m, v and vmax for r's kind (NULL: not used). */
static void state_names(const dormant_ref *r, const char *names[3])
{
    const nb_optim_options *o = &r->o;
    if (o->kind == NB_OPTIM_SGD) {
        names[0] = "state.0.momentum_buffer";
        names[1] = names[2] = NULL;
    } else if (o->kind == NB_OPTIM_RMSPROP) {
        names[0] = "state.0.square_avg";
        names[1] = o->momentum > 0.0 ? "state.0.momentum_buffer" : NULL;
        names[2] = o->centered ? "state.0.grad_avg" : NULL;
    } else {
        names[0] = "state.0.exp_avg";
        names[1] = "state.0.exp_avg_sq";
        names[2] = o->amsgrad ? "state.0.max_exp_avg_sq" : NULL;
    }
}

/* A value drawn from a list that has the edges the dormant paths care about. */
static float edge_value(const float *list, size_t len, unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    float x = list[(*seed >> 8) % len];
    return (*seed >> 4) & 1u ? -x : x;
}

static bool same_float_bits(const float *a, const float *b, int64_t n, const char *what, int step)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float)) != 0) {
            print_error("%s differs at step %d, element %lld: %a against %a\n", what, step,
                        (long long)i, (double)a[i], (double)b[i]);
            return false;
        }
    return true;
}

/* The optimizer's state buffers (names as its state dict has them) against the reference's. */
static bool same_state(const nb_optim *opt, const dormant_ref *r, int step)
{
    const char *names[3];
    const float *ref[3] = {r->m, r->v, r->vmax};
    state_names(r, names);
    bool ok = true;
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    for (int b = 0; b < 3 && ok; b++)
        if (names[b])
            ok = same_float_bits(nb_tensor_data(nb_state_dict_get(d, names[b])), ref[b], r->n,
                                 names[b], step);
    nb_state_dict_free(d);
    return ok;
}

/* Load the reference's state (and Adam's step count) into opt, which has taken a step. */
static void load_state(nb_optim *opt, dormant_ref *r)
{
    const char *names[3];
    const float *ref[3] = {r->m, r->v, r->vmax};
    state_names(r, names);
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_optim_state_dict(opt, d), NB_OK);
    for (int b = 0; b < 3; b++)
        if (names[b])
            memcpy(nb_tensor_data(nb_state_dict_get(d, names[b])), ref[b],
                   (size_t)r->n * sizeof(float));
    if (r->o.kind == NB_OPTIM_ADAM || r->o.kind == NB_OPTIM_ADAMW) {
        nb_tensor_data(nb_state_dict_get(d, "state.0.step"))[0] = 40.0f;
        r->step = 40.0;
    }
    assert_int_equal(nb_optim_load_state_dict(opt, d), NB_OK);
    nb_state_dict_free(d);
}

static nb_optim_options sgd_momentum(double momentum)
{
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_SGD);
    o.lr = 0.1;
    o.momentum = momentum;
    return o;
}

/*
 * Adam, AdamW, SGD with momentum and RMSprop from states full of subnormal, tiny and zero
 * moments,
 * next to parameters at the edges of the bounds under which a dormant parameter is known not
 * to move (0, -0, subnormal, 2^-50 and around, infinite, NaN), with zero gradients of both
 * signs among small and ordinary ones: every parameter and moment after every step has the
 * bits of the plain float operations. Then runs whose gradients stop, so that their moments
 * decay into the subnormals and stay there, as a trained model's do.
 */
static void test_dormant_state_exact(void **state)
{
    (void)state;
    enum { N = 1031, STEPS = 24, LONG_STEPS = 1200, LONG_N = 600 };
    static const float params[] = {0.0f,     0x1p-149f,  0x1p-130f, 0x1p-60f, 0x1p-51f,
                                   0x1p-50f, 0x1.8p-50f, 0x1p-49f,  1e-3f,    0.25f,
                                   3.0f,     INFINITY,   NAN};
    static const float moments[] = {0.0f,        0x1p-149f,  0x2p-149f,      0x3p-149f,
                                    0x5p-149f,   0x7fp-149f, 0x7fffffp-149f, 0x1p-126f,
                                    0x1.1p-126f, 0x1p-110f,  0x1p-101f,      0x1p-100f,
                                    0x1p-99f,    1e-20f,     1e-6f,          0.02f};
    static const float seconds[] = {0.0f,   0x1p-149f, 0x9p-149f, 0x1p-120f, 1e-30f,
                                    1e-16f, 1e-8f,     1e-3f,     4.0f};
    static const float grads[] = {0.0f, 0.0f, 0.0f, 0.0f, 0x1p-149f, 1e-30f, 1e-4f, 0.5f};
    nb_optim_options cases[23];
    cases[0] = nb_optim_defaults(NB_OPTIM_ADAM);
    cases[1] = cases[0];
    cases[1].betas[0] = 0.5; /* products of odd mantissas are ties */
    cases[1].eps = 0.0;      /* denominators as small as the moments */
    cases[2] = nb_optim_defaults(NB_OPTIM_ADAMW);
    cases[3] = cases[0];
    cases[3].amsgrad = true;
    cases[3].maximize = true;
    cases[4] = cases[0];
    cases[4].weight_decay = 0.1; /* the gradient is never zero */
    cases[5] = cases[0];
    cases[5].lr = 1e30; /* steps too large for the bounds */
    cases[5].betas[0] = 0.0;
    cases[6] = sgd_momentum(0.9);
    cases[7] = sgd_momentum(0.5);
    cases[7].dampening = 1.5; /* 1 - dampening < 0: the zero it adds is -0 for a +0 gradient */
    cases[8] = sgd_momentum(0.9);
    cases[8].nesterov = true;
    cases[8].maximize = true;
    cases[9] = sgd_momentum(1.0);
    cases[10] = sgd_momentum(0.9);
    cases[10].lr = 1e30; /* beyond the dormant path's bound on lr */
    cases[11] = sgd_momentum(0.9);
    cases[11].weight_decay = 1e-4;
    cases[12] = sgd_momentum(2.0); /* a momentum above 1 decays nothing */
    cases[13] = nb_optim_defaults(NB_OPTIM_RMSPROP);
    cases[14] = cases[13];
    cases[14].alpha = 0.5;
    cases[14].eps = 0.0;
    cases[15] = cases[13];
    cases[15].centered = true;
    cases[15].alpha = 0.5; /* 0.99 leaves the drawn subnormals as they are */
    cases[16] = cases[13];
    cases[16].momentum = 0.9;
    cases[17] = cases[15];
    cases[17].momentum = 0.5;
    cases[17].maximize = true;
    cases[17].eps = -0.0; /* the root of -0, from a gradient average's square, shows */
    cases[18] = cases[16];
    cases[18].lr = 1e30;
    cases[19] = nb_optim_defaults(NB_OPTIM_ADAMW);
    cases[19].amsgrad = true;
    cases[19].maximize = true;
    cases[20] = cases[0];
    cases[20].weight_decay = 1e-3; /* L2 decay with maximize, without amsgrad */
    cases[20].maximize = true;
    cases[21] = cases[13];
    cases[21].weight_decay = 0.1;
    cases[21].maximize = true;
    cases[22] = cases[17];
    cases[22].weight_decay = 1e-3;
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        unsigned seed = 7u + (unsigned)c;
        float *p0 = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
        dormant_ref r = {cases[c],
                         malloc(N * sizeof(float)),
                         malloc(N * sizeof(float)),
                         malloc(N * sizeof(float)),
                         malloc(N * sizeof(float)),
                         N,
                         0.0};
        assert_non_null(p0);
        assert_non_null(g);
        assert_non_null(r.p);
        assert_non_null(r.m);
        assert_non_null(r.v);
        assert_non_null(r.vmax);
        for (int64_t i = 0; i < N; i++) {
            p0[i] = r.p[i] = edge_value(params, ARRAY_LEN(params), &seed);
            r.m[i] = edge_value(moments, ARRAY_LEN(moments), &seed);
            r.v[i] = fabsf(edge_value(seconds, ARRAY_LEN(seconds), &seed));
            r.vmax[i] = fabsf(edge_value(seconds, ARRAY_LEN(seconds), &seed));
        }
        nb_tensor *w = param(p0, NB_SHAPE(N));
        nb_optim *opt = nb_optim_new(&w, 1, &cases[c]);
        assert_non_null(opt);
        /* make the state, then put the drawn moments and step count into it */
        for (int64_t i = 0; i < N; i++) g[i] = 1.0f;
        set_grad(w, g);
        assert_int_equal(nb_optim_step(opt), NB_OK);
        load_state(opt, &r);
        memcpy(nb_tensor_data(w), p0, N * sizeof(float));
        bool ok = true;
        for (int t = 0; t < STEPS && ok; t++) {
            for (int64_t i = 0; i < N; i++) g[i] = edge_value(grads, ARRAY_LEN(grads), &seed);
            set_grad(w, g);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            dormant_ref_step(&r, g);
            ok = same_float_bits(nb_tensor_data(w), r.p, N, "param", t) && same_state(opt, &r, t);
        }
        if (!ok) print_error("case %zu\n", c);
        assert_true(ok);
        nb_optim_free(opt);
        nb_release(w);
        free(p0);
        free(g);
        free(r.p);
        free(r.m);
        free(r.v);
        free(r.vmax);
    }

    /* gradients that stop after the first steps: the moments decay into the subnormals and
     * stay there (q·2^-149 for the q that the decay rounds back to themselves) */
    nb_optim_options runs[3] = {nb_optim_defaults(NB_OPTIM_ADAM), sgd_momentum(0.9),
                                nb_optim_defaults(NB_OPTIM_RMSPROP)};
    runs[2].alpha = 0.9;
    for (int c = 0; c < 3; c++) {
        static float p0[LONG_N], g[LONG_N], rp[LONG_N], rm[LONG_N], rv[LONG_N];
        memset(rm, 0, sizeof rm);
        memset(rv, 0, sizeof rv);
        dormant_ref r = {runs[c], rp, rm, rv, NULL, LONG_N, 0.0};
        for (int i = 0; i < LONG_N; i++) {
            p0[i] = rp[i] = 0.01f * (float)(i - LONG_N / 2);
            g[i] = (i % 3 == 0 ? -1e-3f : 2e-4f) * (float)(i % 61 + 1);
        }
        nb_tensor *w = param(p0, NB_SHAPE(LONG_N));
        nb_optim *opt = nb_optim_new(&w, 1, &r.o);
        for (int t = 0; t < LONG_STEPS; t++) {
            /* every other element keeps a gradient, the rest get none after step 5 */
            float now[LONG_N];
            for (int i = 0; i < LONG_N; i++) now[i] = t < 5 || i % 2 == 0 ? g[i] : 0.0f;
            set_grad(w, now);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            dormant_ref_step(&r, now);
            assert_true(same_float_bits(nb_tensor_data(w), rp, LONG_N, "param", t));
        }
        assert_true(same_state(opt, &r, LONG_STEPS));
        /* the run reached the state it is about */
        int64_t stuck = 0;
        float mu = c == 0 ? 0.9f : c == 1 ? (float)runs[c].momentum : (float)runs[c].alpha;
        for (int i = 1; i < LONG_N; i += 2)
            stuck += fpclassify(rm[i]) == FP_SUBNORMAL && rm[i] * mu == rm[i];
        assert_int_equal(stuck, LONG_N / 2);
        nb_optim_free(opt);
        nb_release(w);
    }
}

/*
 * Adam's denominator divides each root by the step's bias correction, a float constant that
 * update.c divides by through its inverse in double: from fresh states, with gradients of
 * random bits over 60 binades, every parameter and moment of 6 steps (6 constants per case)
 * has the bits of the plain division (adam_ref_step). A float inverse (x times 1/c rounded to
 * float) gives other bits for 18% of quotients.
 */
static void test_adam_root_quotient_bits(void **state)
{
    (void)state;
    enum { N = 1 << 16, STEPS = 6 };
    nb_optim_options cases[4];
    cases[0] = nb_optim_defaults(NB_OPTIM_ADAM);
    cases[1] = cases[0];
    cases[1].betas[1] = 0.3;
    cases[2] = nb_optim_defaults(NB_OPTIM_ADAMW);
    cases[2].amsgrad = true;
    cases[3] = cases[0];
    cases[3].betas[1] = 0.77;
    cases[3].eps = 0.0;
    static float p0[N], g[N], rp[N], rm[N], rv[N], rvmax[N];
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        uint64_t seed = 0x9e3779b97f4a7c15u * (c + 1);
        memset(rm, 0, sizeof rm);
        memset(rv, 0, sizeof rv);
        memset(rvmax, 0, sizeof rvmax);
        for (int64_t i = 0; i < N; i++) p0[i] = rp[i] = 0.5f - (float)i / N;
        dormant_ref r = {cases[c], rp, rm, rv, rvmax, N, 0.0};
        nb_tensor *w = param(p0, NB_SHAPE(N));
        nb_optim *opt = nb_optim_new(&w, 1, &cases[c]);
        assert_non_null(opt);
        bool ok = true;
        for (int t = 0; t < STEPS && ok; t++) {
            for (int64_t i = 0; i < N; i++) {
                seed = seed * 6364136223846793005u + 1442695040888963407u;
                uint32_t bits = (uint32_t)(seed >> 32);
                /* sign, an exponent in 2^-50..2^9, a random significand */
                uint32_t e = 77u + (bits >> 23) % 60u;
                bits = (bits & 0x807fffffu) | (e << 23);
                memcpy(&g[i], &bits, sizeof g[i]);
            }
            set_grad(w, g);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            adam_ref_step(&r, g);
            ok = same_float_bits(nb_tensor_data(w), rp, N, "param", t) && same_state(opt, &r, t);
        }
        if (!ok) print_error("case %zu\n", c);
        assert_true(ok);
        nb_optim_free(opt);
        nb_release(w);
    }
}

/* Adam's and AdamW's step size lr / (1 - beta1^t) past float's range: refused, as PyTorch
 * refuses it, before anything changes (the next step is a first step); at float's range, the
 * step is taken. The edges are PyTorch's: 3.41e37 and 1e33 with beta1 = 0.999999 are refused,
 * 3.4e37 and 3e32 are taken. */
static void test_step_size_range(void **state)
{
    (void)state;
    static const float w0[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, 0.25f, -1.0f};
    static const struct {
        nb_optim_kind kind;
        double beta1, lr;
        bool refused;
    } cases[] = {
        {NB_OPTIM_ADAM, 0.9, 3.41e37, true},         {NB_OPTIM_ADAM, 0.9, 3.4e37, false},
        {NB_OPTIM_ADAMW, 0.999999, 1e33, true},      {NB_OPTIM_ADAMW, 0.999999, 3e32, false},
        {NB_OPTIM_ADAM, 0.9, (double)FLT_MAX, true},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        nb_tensor *w = param(w0, NB_SHAPE(3)), *fresh = param(w0, NB_SHAPE(3));
        set_grad(w, g);
        set_grad(fresh, g);
        nb_optim_options o = nb_optim_defaults(cases[c].kind);
        o.betas[0] = cases[c].beta1;
        o.lr = cases[c].lr;
        nb_optim *opt = nb_optim_new(&w, 1, &o);
        assert_non_null(opt);
        if (!cases[c].refused) {
            assert_int_equal(nb_optim_step(opt), NB_OK);
            assert_true(isfinite(nb_tensor_data(w)[0]));
        } else {
            assert_int_equal(nb_optim_step(opt), NB_ERANGE);
            char want[160];
            snprintf(want, sizeof want,
                     "nb_optim_step: group 0's step size lr / (1 - beta1^1) = %g is past "
                     "float's range",
                     cases[c].lr / (1.0 - cases[c].beta1));
            assert_error(NB_ERANGE, want);
            assert_true(same_bits(nb_tensor_data(w), w0, 3));
            /* nothing changed: with a smaller lr, the same step as a fresh optimizer's first */
            assert_int_equal(nb_optim_set_lr(opt, 0, 1e-3), NB_OK);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            o.lr = 1e-3;
            nb_optim *ref = nb_optim_new(&fresh, 1, &o);
            assert_int_equal(nb_optim_step(ref), NB_OK);
            assert_true(same_bits(nb_tensor_data(w), nb_tensor_data(fresh), 3));
            nb_optim_free(ref);
        }
        nb_optim_free(opt);
        nb_release(w);
        nb_release(fresh);
    }
    /* the group is named; a parameter without a gradient does not count */
    nb_tensor *a = param(w0, NB_SHAPE(3)), *b = param(w0, NB_SHAPE(3)),
              *idle = param(w0, NB_SHAPE(3));
    set_grad(a, g);
    set_grad(b, g);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    nb_optim *opt = nb_optim_new(&a, 1, &o);
    o.lr = 1e38;
    assert_int_equal(nb_optim_add_param_group(opt, &idle, 1, &o), NB_OK);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_int_equal(nb_optim_add_param_group(opt, &b, 1, &o), NB_OK);
    assert_int_equal(nb_optim_step(opt), NB_ERANGE);
    assert_error(
        NB_ERANGE,
        "nb_optim_step: group 2's step size lr / (1 - beta1^1) = 1e+39 is past float's range");
    nb_optim_free(opt);
    nb_release(a);
    nb_release(b);
    nb_release(idle);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_updates_match_pytorch),
        T(test_frozen_parameter),
        T(test_groups_and_accessors),
        T(test_zero_grad),
        T(test_step_allocates_nothing),
        T(test_option_errors),
        T(test_parameter_errors),
        T(test_state_dict_contents),
        T(test_resume_identity),
        T(test_load_errors),
        T(test_load_changes_layout),
        T(test_clip_matches_pytorch),
        T(test_norms_match_pytorch),
        T(test_clip_errors),
        T(test_alloc_failures),
        T(test_state_alloc_failures),
        T(test_header_example),
        T(test_end_to_end_match_pytorch),
        T(test_dormant_state_exact),
        T(test_adam_root_quotient_bits),
        T(test_step_size_range),
    };
    return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
