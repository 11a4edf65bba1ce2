/*
 * The layers: what each computes (one op of the library) and how it draws its parameters
 * (PyTorch 1.13's reset_parameters, in the same order).
 */
#include <math.h>

#include "nn/internal.h"
#include "ops/internal.h"

/* ---- Linear ------------------------------------------------------------------------------- */

static nb_tensor *linear_forward(nb_module *m, nb_tensor *x)
{
    return nb_linear(x, m->params[0], m->n_params > 1 ? m->params[1] : NULL);
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

/* ---- Conv2d ------------------------------------------------------------------------------- */

static nb_tensor *conv2d_forward(nb_module *m, nb_tensor *x)
{
    const int64_t *s = m->cfg.conv.stride, *p = m->cfg.conv.padding, *d = m->cfg.conv.dilation;
    return nb_conv2d(x, m->params[0], m->n_params > 1 ? m->params[1] : NULL, NB_SHAPE(s[0], s[1]),
                     NB_SHAPE(p[0], p[1]), NB_SHAPE(d[0], d[1]), m->cfg.conv.groups);
}

/* PyTorch's _ConvNd.extra_repr: padding, dilation, groups and bias only where not the default */
static void conv2d_repr(const nb_module *m, nb__text *t)
{
    const int64_t *k = m->cfg.conv.k, *s = m->cfg.conv.stride, *p = m->cfg.conv.padding,
                  *d = m->cfg.conv.dilation;
    nb__text_printf(t, "%lld, %lld, kernel_size=(%lld, %lld), stride=(%lld, %lld)",
                    (long long)m->cfg.conv.in, (long long)m->cfg.conv.out, (long long)k[0],
                    (long long)k[1], (long long)s[0], (long long)s[1]);
    if (p[0] != 0 || p[1] != 0)
        nb__text_printf(t, ", padding=(%lld, %lld)", (long long)p[0], (long long)p[1]);
    if (d[0] != 1 || d[1] != 1)
        nb__text_printf(t, ", dilation=(%lld, %lld)", (long long)d[0], (long long)d[1]);
    if (m->cfg.conv.groups != 1) nb__text_printf(t, ", groups=%lld", (long long)m->cfg.conv.groups);
    if (m->n_params < 2) nb__text_printf(t, ", bias=False");
}

/* kaiming_uniform_(weight, a = √5), then bias ~ U(±1/√fan_in), fan_in = in/groups·kH·kW */
static nb_status conv2d_reset(nb_module *m, nb_generator *gen)
{
    nb_status rc = nb_init_kaiming_uniform_(m->params[0], sqrt(5.0), NB_FAN_IN,
                                            NB_NONLINEARITY_LEAKY_RELU, gen);
    if (rc == NB_OK && m->n_params > 1) {
        const nb_shape w = nb_tensor_size(m->params[0]);
        double bound = 1 / sqrt((double)w.dims[1] * (double)w.dims[2] * (double)w.dims[3]);
        rc = nb_init_uniform_(m->params[1], -bound, bound, gen);
    }
    return rc;
}

static const nb__module_kind conv2d_kind = {"Conv2d", conv2d_forward, conv2d_repr, conv2d_reset};

/* Whether nb_module_conv2d's sizes make a layer nb_conv2d can run; false with the error */
static bool conv_check(const char *fn, int64_t in, int64_t out, int64_t groups, const int64_t *k,
                       const int64_t *s, const int64_t *p, const int64_t *d)
{
    if (in <= 0 || out <= 0) {
        nb__error(NB_EINVAL, fn, "in_channels (%lld) and out_channels (%lld) must be positive",
                  (long long)in, (long long)out);
        return false;
    }
    const char *bad = NULL;
    if (groups <= 0) {
        bad = "groups must be a positive integer";
    } else if (in % groups != 0) {
        bad = "in_channels must be divisible by groups";
    } else if (out % groups != 0) {
        bad = "out_channels must be divisible by groups";
    } else if (k[0] <= 0 || k[1] <= 0) {
        nb__error(NB_EINVAL, fn, "kernel_size must be positive, but got kernel_size=(%lld, %lld)",
                  (long long)k[0], (long long)k[1]);
        return false;
    } else if (s[0] <= 0 || s[1] <= 0) {
        bad = "non-positive stride is not supported";
    } else if (p[0] < 0 || p[1] < 0) {
        bad = "negative padding is not supported";
    } else if (d[0] <= 0 || d[1] <= 0) {
        bad = "non-positive dilation is not supported";
    }
    if (bad) nb__error(NB_EINVAL, fn, "%s", bad);
    return !bad;
}

nb_module *nb_module_conv2d(int64_t in_channels, int64_t out_channels, nb_shape kernel_size,
                            nb_shape stride, nb_shape padding, nb_shape dilation, int64_t groups,
                            bool bias)
{
    static const char fn[] = "nb_module_conv2d";
    int64_t k[2], s[2], p[2], d[2];
    if (!nb__conv_pair(fn, "kernel_size", "", kernel_size, k) ||
        !nb__conv_pair(fn, "stride", "", stride, s) ||
        !nb__conv_pair(fn, "padding", "", padding, p) ||
        !nb__conv_pair(fn, "dilation", "", dilation, d))
        return NULL;
    if (!conv_check(fn, in_channels, out_channels, groups, k, s, p, d)) return NULL;
    nb_module *m = nb__module_new(fn, &conv2d_kind);
    if (!m) return NULL;
    m->cfg.conv.in = in_channels;
    m->cfg.conv.out = out_channels;
    m->cfg.conv.groups = groups;
    for (int i = 0; i < 2; i++) {
        m->cfg.conv.k[i] = k[i];
        m->cfg.conv.stride[i] = s[i];
        m->cfg.conv.padding[i] = p[i];
        m->cfg.conv.dilation[i] = d[i];
    }
    nb_status rc =
        nb__module_param(fn, m, "weight", NB_SHAPE(out_channels, in_channels / groups, k[0], k[1]));
    if (rc == NB_OK && bias) rc = nb__module_param(fn, m, "bias", NB_SHAPE(out_channels));
    if (rc == NB_OK) rc = conv2d_reset(m, NULL);
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

static nb_tensor *tanh_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_tanh(x);
}

static nb_tensor *silu_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_silu(x);
}

static nb_tensor *gelu_forward(nb_module *m, nb_tensor *x)
{
    return nb_gelu(x, (nb_gelu_approximate)m->cfg.choice.mode);
}

static void gelu_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "approximate='%s'", m->cfg.choice.mode == NB_GELU_TANH ? "tanh" : "none");
}

static nb_tensor *leaky_relu_forward(nb_module *m, nb_tensor *x)
{
    return nb_leaky_relu(x, (float)m->cfg.scalar.value);
}

static void leaky_relu_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "negative_slope=");
    nb__text_float(t, m->cfg.scalar.value);
}

static const nb__module_kind relu_kind = {"ReLU", relu_forward, NULL, NULL};
static const nb__module_kind tanh_kind = {"Tanh", tanh_forward, NULL, NULL};
static const nb__module_kind silu_kind = {"SiLU", silu_forward, NULL, NULL};
static const nb__module_kind gelu_kind = {"GELU", gelu_forward, gelu_repr, NULL};
static const nb__module_kind leaky_relu_kind = {"LeakyReLU", leaky_relu_forward, leaky_relu_repr,
                                                NULL};

nb_module *nb_module_tanh(void)
{
    return nb__module_new("nb_module_tanh", &tanh_kind);
}

nb_module *nb_module_silu(void)
{
    return nb__module_new("nb_module_silu", &silu_kind);
}

nb_module *nb_module_gelu(nb_gelu_approximate approximate)
{
    static const char fn[] = "nb_module_gelu";
    if (approximate != NB_GELU_NONE && approximate != NB_GELU_TANH) {
        nb__error(NB_EINVAL, fn, "approximate argument must be either none or tanh, got %d",
                  (int)approximate);
        return NULL;
    }
    nb_module *m = nb__module_new(fn, &gelu_kind);
    if (m) m->cfg.choice.mode = (int)approximate;
    return m;
}

nb_module *nb_module_leaky_relu(double negative_slope)
{
    static const char fn[] = "nb_module_leaky_relu";
    if (!isfinite(negative_slope)) {
        nb__error(NB_EINVAL, fn, "negative_slope must be finite, got %g", negative_slope);
        return NULL;
    }
    nb_module *m = nb__module_new(fn, &leaky_relu_kind);
    if (m) m->cfg.scalar.value = negative_slope;
    return m;
}
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

/* ---- Dropout ------------------------------------------------------------------------------ */

static nb_tensor *dropout_forward(nb_module *m, nb_tensor *x)
{
    return nb_dropout(x, m->cfg.scalar.value, m->training);
}

static void dropout_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "p=");
    nb__text_float(t, m->cfg.scalar.value);
    nb__text_printf(t, ", inplace=False");
}

static const nb__module_kind dropout_kind = {"Dropout", dropout_forward, dropout_repr, NULL};

nb_module *nb_module_dropout(double p)
{
    static const char fn[] = "nb_module_dropout";
    if (!(p >= 0 && p <= 1)) {
        nb__error(NB_EINVAL, fn, "dropout probability has to be between 0 and 1, but got %g", p);
        return NULL;
    }
    nb_module *m = nb__module_new(fn, &dropout_kind);
    if (m) m->cfg.scalar.value = p;
    return m;
}

/* ---- LayerNorm ---------------------------------------------------------------------------- */

static nb_tensor *layer_norm_forward(nb_module *m, nb_tensor *x)
{
    bool affine = m->n_params > 0;
    return nb_layer_norm(x, m->cfg.layer_norm.shape, affine ? m->params[0] : NULL,
                         affine ? m->params[1] : NULL, m->cfg.layer_norm.eps);
}

static void layer_norm_repr(const nb_module *m, nb__text *t)
{
    const nb_shape *s = &m->cfg.layer_norm.shape;
    nb__text_printf(t, "(");
    for (int i = 0; i < s->ndim; i++)
        nb__text_printf(t, i ? ", %lld" : "%lld", (long long)s->dims[i]);
    nb__text_printf(t, s->ndim == 1 ? ",), eps=" : "), eps=");
    nb__text_float(t, m->cfg.layer_norm.eps);
    nb__text_printf(t, ", elementwise_affine=%s", m->n_params ? "True" : "False");
}

/* ones and zeros: no draws */
static nb_status layer_norm_reset(nb_module *m, nb_generator *gen)
{
    (void)gen;
    nb_status rc = NB_OK;
    if (m->n_params) rc = nb_init_ones_(m->params[0]);
    if (rc == NB_OK && m->n_params) rc = nb_init_zeros_(m->params[1]);
    return rc;
}

static const nb__module_kind layer_norm_kind = {"LayerNorm", layer_norm_forward, layer_norm_repr,
                                                layer_norm_reset};

nb_module *nb_module_layer_norm(nb_shape normalized_shape, double eps, bool elementwise_affine)
{
    static const char fn[] = "nb_module_layer_norm";
    int64_t numel;
    if (normalized_shape.ndim < 1 || normalized_shape.ndim > NB_MAX_DIMS) {
        nb__error(NB_EINVAL, fn, "normalized_shape must have between 1 and %d dims, got %d",
                  NB_MAX_DIMS, normalized_shape.ndim);
        return NULL;
    }
    if (nb__check_shape(fn, normalized_shape.ndim, normalized_shape.dims, &numel) != NB_OK)
        return NULL;
    if (!(eps >= 0)) {
        nb__error(NB_EINVAL, fn, "eps must be >= 0, got %g", eps);
        return NULL;
    }
    nb_module *m = nb__module_new(fn, &layer_norm_kind);
    if (!m) return NULL;
    m->cfg.layer_norm.shape = normalized_shape;
    m->cfg.layer_norm.eps = eps;
    nb_status rc = NB_OK;
    if (elementwise_affine) {
        rc = nb__module_param(fn, m, "weight", normalized_shape);
        if (rc == NB_OK) rc = nb__module_param(fn, m, "bias", normalized_shape);
        if (rc == NB_OK) rc = layer_norm_reset(m, NULL);
    }
    if (rc != NB_OK) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- Embedding ---------------------------------------------------------------------------- */

static nb_tensor *embedding_forward(nb_module *m, nb_tensor *ids)
{
    int64_t pad = m->cfg.embedding.padding_idx;
    return nb_embedding(m->params[0], ids, pad < 0 ? NB_NO_PADDING : pad);
}

static void embedding_repr(const nb_module *m, nb__text *t)
{
    nb__text_printf(t, "%lld, %lld", (long long)m->cfg.embedding.num,
                    (long long)m->cfg.embedding.dim);
    if (m->cfg.embedding.padding_idx >= 0)
        nb__text_printf(t, ", padding_idx=%lld", (long long)m->cfg.embedding.padding_idx);
}

/* normal_(weight), then the padding row zeroed */
static nb_status embedding_reset(nb_module *m, nb_generator *gen)
{
    nb_status rc = nb_init_normal_(m->params[0], 0.0, 1.0, gen);
    int64_t pad = m->cfg.embedding.padding_idx, dim = m->cfg.embedding.dim;
    if (rc == NB_OK && pad >= 0) {
        float *w = nb__data(m->params[0]) + pad * dim;
        for (int64_t i = 0; i < dim; i++) w[i] = 0.0f;
    }
    return rc;
}

static const nb__module_kind embedding_kind = {"Embedding", embedding_forward, embedding_repr,
                                               embedding_reset};

nb_module *nb_module_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx)
{
    static const char fn[] = "nb_module_embedding";
    if (num_embeddings < 0 || embedding_dim < 0) {
        nb__error(NB_EINVAL, fn, "num_embeddings (%lld) and embedding_dim (%lld) must be >= 0",
                  (long long)num_embeddings, (long long)embedding_dim);
        return NULL;
    }
    int64_t pad = padding_idx;
    if (padding_idx != NB_NO_PADDING) {
        if (padding_idx >= num_embeddings || padding_idx < -num_embeddings) {
            nb__error(NB_EINVAL, fn, "Padding_idx must be within num_embeddings, got %lld for %lld",
                      (long long)padding_idx, (long long)num_embeddings);
            return NULL;
        }
        if (pad < 0) pad += num_embeddings;
    } else {
        pad = -1;
    }
    nb_module *m = nb__module_new(fn, &embedding_kind);
    if (!m) return NULL;
    m->cfg.embedding.num = num_embeddings;
    m->cfg.embedding.dim = embedding_dim;
    m->cfg.embedding.padding_idx = pad;
    nb_status rc = nb__module_param(fn, m, "weight", NB_SHAPE(num_embeddings, embedding_dim));
    if (rc == NB_OK) rc = embedding_reset(m, NULL);
    if (rc != NB_OK) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- MaxPool2d, AvgPool2d ----------------------------------------------------------------- */

static nb_tensor *max_pool2d_forward(nb_module *m, nb_tensor *x)
{
    return nb_max_pool2d(x, m->cfg.pool.kernel, m->cfg.pool.stride, m->cfg.pool.padding,
                         m->cfg.pool.dilation, m->cfg.pool.ceil_mode);
}

static nb_tensor *avg_pool2d_forward(nb_module *m, nb_tensor *x)
{
    return nb_avg_pool2d(x, m->cfg.pool.kernel, m->cfg.pool.stride, m->cfg.pool.padding,
                         m->cfg.pool.ceil_mode, m->cfg.pool.count_include_pad, m->cfg.pool.divisor);
}

/* name=v as Python prints an int or a tuple of two; stride's None prints the kernel size */
static void int_or_pair(nb__text *t, const char *name, const nb_shape *s)
{
    if (s->ndim == 1)
        nb__text_printf(t, "%s=%lld", name, (long long)s->dims[0]);
    else
        nb__text_printf(t, "%s=(%lld, %lld)", name, (long long)s->dims[0], (long long)s->dims[1]);
}

static void pool_repr(const nb_module *m, nb__text *t)
{
    int_or_pair(t, "kernel_size", &m->cfg.pool.kernel);
    nb__text_printf(t, ", ");
    int_or_pair(t, "stride", m->cfg.pool.stride.ndim ? &m->cfg.pool.stride : &m->cfg.pool.kernel);
    nb__text_printf(t, ", ");
    int_or_pair(t, "padding", &m->cfg.pool.padding);
}

static void max_pool2d_repr(const nb_module *m, nb__text *t)
{
    pool_repr(m, t);
    nb__text_printf(t, ", ");
    int_or_pair(t, "dilation", &m->cfg.pool.dilation);
    nb__text_printf(t, ", ceil_mode=%s", m->cfg.pool.ceil_mode ? "True" : "False");
}

static const nb__module_kind max_pool2d_kind = {"MaxPool2d", max_pool2d_forward, max_pool2d_repr,
                                                NULL};
static const nb__module_kind avg_pool2d_kind = {"AvgPool2d", avg_pool2d_forward, pool_repr, NULL};

/* A pooling module of kind, its sizes checked as the op checks them (avg: no dilation). */
static nb_module *pool_module(const char *fn, const nb__module_kind *kind, nb_shape kernel,
                              nb_shape stride, nb_shape padding, nb_shape dilation, bool avg)
{
    if (nb__pool2d_check(fn, kernel, stride, padding, dilation, avg) != NB_OK) return NULL;
    nb_module *m = nb__module_new(fn, kind);
    if (m) {
        m->cfg.pool.kernel = kernel;
        m->cfg.pool.stride = stride;
        m->cfg.pool.padding = padding;
        m->cfg.pool.dilation = dilation;
    }
    return m;
}

nb_module *nb_module_max_pool2d(nb_shape kernel_size, nb_shape stride, nb_shape padding,
                                nb_shape dilation, bool ceil_mode)
{
    nb_module *m = pool_module("nb_module_max_pool2d", &max_pool2d_kind, kernel_size, stride,
                               padding, dilation, false);
    if (m) m->cfg.pool.ceil_mode = ceil_mode;
    return m;
}

nb_module *nb_module_avg_pool2d(nb_shape kernel_size, nb_shape stride, nb_shape padding,
                                bool ceil_mode, bool count_include_pad, int64_t divisor_override)
{
    nb_module *m = pool_module("nb_module_avg_pool2d", &avg_pool2d_kind, kernel_size, stride,
                               padding, NB_SHAPE(1), true);
    if (m) {
        m->cfg.pool.ceil_mode = ceil_mode;
        m->cfg.pool.count_include_pad = count_include_pad;
        m->cfg.pool.divisor = divisor_override;
    }
    return m;
}
