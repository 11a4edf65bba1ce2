/*
 * The layers: what each computes (one op of the library) and how it draws its parameters
 * (PyTorch 1.13's reset_parameters, in the same order).
 */
#include <math.h>

#include "nn/internal.h"

/* ---- Linear ------------------------------------------------------------------------------- */

static nb_tensor *linear_forward(nb_module *m, nb_tensor *x)
{
    nb_tensor *wt = nb_t(m->params[0]);
    nb_tensor *y = nb_matmul(x, wt);
    nb__drop(wt);
    if (y && m->n_params > 1) {
        nb_tensor *z = nb_add(y, m->params[1]);
        nb__drop(y);
        y = z;
    }
    return y;
}

static void linear_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "in_features=%lld, out_features=%lld, bias=%s", (long long)m->cfg.linear.in,
                    (long long)m->cfg.linear.out, m->n_params > 1 ? "True" : "False");
}

/* kaiming_uniform_(weight, a = √5), then bias ~ U(±1/√fan_in) */
static nb_status linear_reset(nb_module *m, nb_generator *gen)
{
    nb_status rc = nb_init_kaiming_uniform_(m->params[0], sqrt(5.0), NB_FAN_IN,
                                            NB_NONLINEARITY_LEAKY_RELU, gen);
    if (rc == NB_OK && m->n_params > 1) {
        double fan_in = (double)m->cfg.linear.in;
        double bound = fan_in > 0 ? 1 / sqrt(fan_in) : 0;
        rc = nb_init_uniform_(m->params[1], -bound, bound, gen);
    }
    return rc;
}

static const nb__module_kind linear_kind = {"Linear", linear_forward, linear_repr, linear_reset};

nb_module *nb_module_linear(int64_t in_features, int64_t out_features, bool bias)
{
    static const char fn[] = "nb_module_linear";
    if (in_features < 0 || out_features < 0) {
        nb__error(NB_EINVAL, fn, "in_features (%lld) and out_features (%lld) must be >= 0",
                  (long long)in_features, (long long)out_features);
        return NULL;
    }
    nb_module *m = nb__module_new(fn, &linear_kind);
    if (!m) return NULL;
    m->cfg.linear.in = in_features;
    m->cfg.linear.out = out_features;
    nb_status rc = nb__module_param(fn, m, "weight", NB_SHAPE(out_features, in_features));
    if (rc == NB_OK && bias) rc = nb__module_param(fn, m, "bias", NB_SHAPE(out_features));
    if (rc == NB_OK) rc = linear_reset(m, NULL);
    if (rc != NB_OK) {
        if (rc == NB_ENOMEM) nb__oom(fn);
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- activations ------------------------------------------------------------------------ */

static nb_tensor *relu_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_relu(x);
}

static nb_tensor *sigmoid_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_sigmoid(x);
}

static const nb__module_kind relu_kind = {"ReLU", relu_forward, NULL, NULL};
static const nb__module_kind sigmoid_kind = {"Sigmoid", sigmoid_forward, NULL, NULL};

nb_module *nb_module_relu(void)
{
    return nb__module_new("nb_module_relu", &relu_kind);
}

nb_module *nb_module_sigmoid(void)
{
    return nb__module_new("nb_module_sigmoid", &sigmoid_kind);
}

/* ---- Flatten ------------------------------------------------------------------------------ */

static nb_tensor *flatten_forward(nb_module *m, nb_tensor *x)
{
    return nb_flatten(x, m->cfg.flatten.start, m->cfg.flatten.end);
}

static void flatten_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "start_dim=%d, end_dim=%d", m->cfg.flatten.start, m->cfg.flatten.end);
}

static const nb__module_kind flatten_kind = {"Flatten", flatten_forward, flatten_repr, NULL};

nb_module *nb_module_flatten(int start_dim, int end_dim)
{
    nb_module *m = nb__module_new("nb_module_flatten", &flatten_kind);
    if (m) {
        m->cfg.flatten.start = start_dim;
        m->cfg.flatten.end = end_dim;
    }
    return m;
}
