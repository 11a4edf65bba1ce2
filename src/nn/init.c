/* torch.nn.init: the fans, the gains and the initialisers, computed in double as Python does. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/internal.h"

double nb_init_calculate_gain(nb_nonlinearity nonlinearity, double param)
{
    switch (nonlinearity) {
    case NB_NONLINEARITY_LINEAR:
    case NB_NONLINEARITY_SIGMOID:
        return 1.0;
    case NB_NONLINEARITY_TANH:
        return 5.0 / 3;
    case NB_NONLINEARITY_RELU:
        return sqrt(2.0);
    case NB_NONLINEARITY_LEAKY_RELU: {
        double slope = isnan(param) ? 0.01 : param;
        return sqrt(2.0 / (1 + slope * slope));
    }
    case NB_NONLINEARITY_SELU:
        return 3.0 / 4;
    }
    nb__error(NB_EINVAL, "nb_init_calculate_gain", "unsupported nonlinearity %d",
              (int)nonlinearity);
    return (double)NAN;
}

/* PyTorch's _calculate_fan_in_and_fan_out: [out, in, *receptive]. */
static nb_status fans(const char *fn, const nb_tensor *t, double *fan_in, double *fan_out)
{
    if (t->ndim < 2)
        return nb__error(NB_EINVAL, fn,
                         "Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions");
    double receptive = 1;
    for (int i = 2; i < t->ndim; i++) receptive *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * receptive;
    *fan_out = (double)t->shape[0] * receptive;
    return NB_OK;
}

/* The checks every initialiser starts with. */
static nb_status start(const char *fn, const nb_tensor *t, const nb_generator *gen)
{
    if (!t) return nb__null(fn, "t");
    if (!gen && nb__pending()) return nb__pending();
    return NB_OK;
}

/* uniform_ / normal_ under no-grad (init works on parameters), errors named for fn. */
static nb_status draw(const char *fn, nb_tensor *t, bool normal, double a, double b,
                      nb_generator *gen)
{
    bool prev = nb_set_grad_enabled(false);
    nb_status rc = normal ? nb_normal_(t, a, b, gen) : nb_uniform_(t, a, b, gen);
    nb_set_grad_enabled(prev);
    if (rc != NB_OK) { /* name the initialiser, keeping the cause */
        const char *msg = nb_last_error()->message, *cause = strchr(msg, ':');
        char copy[400];
        snprintf(copy, sizeof copy, "%s", cause ? cause + 2 : msg);
        rc = nb__error(rc, fn, "%s", copy);
    }
    return rc;
}

nb_status nb_init_uniform_(nb_tensor *t, double a, double b, nb_generator *gen)
{
    static const char fn[] = "nb_init_uniform_";
    nb_status rc = start(fn, t, gen);
    return rc != NB_OK ? rc : draw(fn, t, false, a, b, gen);
}

nb_status nb_init_normal_(nb_tensor *t, double mean, double std, nb_generator *gen)
{
    static const char fn[] = "nb_init_normal_";
    nb_status rc = start(fn, t, gen);
    return rc != NB_OK ? rc : draw(fn, t, true, mean, std, gen);
}

static nb_status fill(const char *fn, nb_tensor *t, float v)
{
    if (!t) return nb__null(fn, "t");
    float *d = nb__data(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = v;
    t->storage->version++;
    return NB_OK;
}

nb_status nb_init_zeros_(nb_tensor *t)
{
    return fill("nb_init_zeros_", t, 0.0f);
}

nb_status nb_init_ones_(nb_tensor *t)
{
    return fill("nb_init_ones_", t, 1.0f);
}

static nb_status xavier(const char *fn, nb_tensor *t, double gain, bool normal, nb_generator *gen)
{
    double fan_in = 0, fan_out = 0;
    nb_status rc = start(fn, t, gen);
    if (rc == NB_OK) rc = fans(fn, t, &fan_in, &fan_out);
    if (rc != NB_OK) return rc;
    if (fan_in + fan_out == 0) /* PyTorch: ZeroDivisionError */
        return nb__error(NB_EINVAL, fn, "fan_in + fan_out is 0: float division by zero");
    double std = gain * sqrt(2.0 / (fan_in + fan_out));
    if (normal) return draw(fn, t, true, 0.0, std, gen);
    double a = sqrt(3.0) * std;
    return draw(fn, t, false, -a, a, gen);
}

nb_status nb_init_xavier_uniform_(nb_tensor *t, double gain, nb_generator *gen)
{
    return xavier("nb_init_xavier_uniform_", t, gain, false, gen);
}

nb_status nb_init_xavier_normal_(nb_tensor *t, double gain, nb_generator *gen)
{
    return xavier("nb_init_xavier_normal_", t, gain, true, gen);
}

static nb_status kaiming(const char *fn, nb_tensor *t, double a, nb_fan_mode mode,
                         nb_nonlinearity nonlinearity, bool normal, nb_generator *gen)
{
    double fan_in = 0, fan_out = 0;
    nb_status rc = start(fn, t, gen);
    if (rc != NB_OK) return rc;
    if (mode != NB_FAN_IN && mode != NB_FAN_OUT)
        return nb__error(NB_EINVAL, fn, "Mode %d not supported, please use fan_in or fan_out",
                         (int)mode);
    if (t->numel == 0) return NB_OK; /* PyTorch: initializing zero-element tensors is a no-op */
    if ((rc = fans(fn, t, &fan_in, &fan_out)) != NB_OK) return rc;
    double gain = nb_init_calculate_gain(nonlinearity, a);
    if (isnan(gain))
        return nb__error(NB_EINVAL, fn, "unsupported nonlinearity %d", (int)nonlinearity);
    double std = gain / sqrt(mode == NB_FAN_IN ? fan_in : fan_out);
    if (normal) return draw(fn, t, true, 0.0, std, gen);
    double bound = sqrt(3.0) * std;
    return draw(fn, t, false, -bound, bound, gen);
}

nb_status nb_init_kaiming_uniform_(nb_tensor *t, double a, nb_fan_mode mode,
                                   nb_nonlinearity nonlinearity, nb_generator *gen)
{
    return kaiming("nb_init_kaiming_uniform_", t, a, mode, nonlinearity, false, gen);
}

nb_status nb_init_kaiming_normal_(nb_tensor *t, double a, nb_fan_mode mode,
                                  nb_nonlinearity nonlinearity, nb_generator *gen)
{
    return kaiming("nb_init_kaiming_normal_", t, a, mode, nonlinearity, true, gen);
}
