/**
 * @file
 * nabla — layers (torch.nn): modules that own their parameters, a Sequential container,
 * PyTorch's initialisation, state dicts with PyTorch's names, and torch.nn.init.
 *
 * A module is an opaque object made by a constructor (nb_module_linear, nb_module_relu, ...)
 * and freed with nb_module_free. nb_module_sequential takes ownership of its children, so a
 * model is one expression, and NULL from a failed constructor propagates. A model and one
 * step of its training:
 *
 *     nb_manual_seed(0); // the very weights torch.manual_seed(0) gives nn.Sequential(...)
 *     nb_module *model = NB_SEQUENTIAL(nb_module_linear(784, 256, true), nb_module_relu(),
 *                                      nb_module_linear(256, 10, true));
 *     nb_tensor *x = nb_rand(NB_SHAPE(32, 784)), *labels = nb_randint(0, 10, NB_SHAPE(32));
 *     nb_scope *step = nb_scope_begin();
 *     nb_tensor *logits = nb_module_forward(model, x); // [32, 10]
 *     nb_tensor *loss = nb_cross_entropy(logits, labels, NULL, -100, NB_MEAN, 0.0);
 *     if (!loss || nb_backward(loss, NULL, false) != NB_OK)
 *         fprintf(stderr, "%s\n", nb_last_error()->message);
 *     nb_scope_end(step); // the gradients stay: in each parameter's .grad
 *     nb_release(x);
 *     nb_release(labels);
 *     nb_module_free(model);
 *
 * Parameters are leaves that require grad, owned by their module (getters borrow them);
 * their state_dict names are PyTorch's ("0.weight", "0.bias", "2.weight", ...). After
 * nb_manual_seed(s) a model's parameters are bit-identical to the same torch.nn model's
 * after torch.manual_seed(s): the generator is drawn in the same order by the same draws.
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "ops.h"

NB_BEGIN_DECLS

/** A layer or a container of layers (torch.nn.Module). */
typedef struct nb_module nb_module;

/* ---- layers ---------------------------------------------------------------------------------
 * Each constructor draws its parameters as PyTorch's reset_parameters does, from the default
 * generator (nb_module_reset_parameters redraws them from another).
 * Ownership: each returns a new module, the caller's (free it with nb_module_free) until it
 * is given to nb_module_sequential.
 * Errors: NULL with NB_EINVAL for the arguments each lists, NB_ENOMEM.
 * --------------------------------------------------------------------------------------- */

/**
 * y = x·Wᵀ + b: weight W [out_features, in_features] drawn with kaiming_uniform_(a = √5),
 * i.e. U(±1/√in_features), then bias b [out_features] from U(±1/√in_features) (none when
 * bias is false). Input [..., in_features]. PyTorch: torch.nn.Linear(in, out, bias).
 * Errors: NB_EINVAL for in_features < 0 or out_features < 0.
 */
NB_API nb_module *nb_module_linear(int64_t in_features, int64_t out_features, bool bias);
/**
 * 2-D convolution, nb_conv2d(x, W, b, stride, padding, dilation, groups): weight W
 * [out_channels, in_channels/groups, kH, kW] drawn with kaiming_uniform_(a = √5), i.e.
 * U(±1/√fan_in) with fan_in = in_channels/groups·kH·kW, then bias b [out_channels] from
 * U(±1/√fan_in) (none when bias is false), as PyTorch 1.13's reset_parameters. kernel_size,
 * stride, padding and dilation are PyTorch's int-or-pair: one value for both dims
 * (NB_SHAPE(3)) or (h, w) (NB_SHAPE(3, 5)); PyTorch's defaults are 1, 0, 1 and groups 1.
 * Numeric padding only (no 'same' or 'valid'), of zeros (padding_mode 'zeros'). Input
 * [N, in_channels, H, W] or [in_channels, H, W]. Prints as torch does:
 * "Conv2d(8, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2, bias=False)".
 * PyTorch: torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
 * groups, bias).
 * Errors: NB_EINVAL for in_channels or out_channels <= 0, groups <= 0 ("groups must be a
 * positive integer"), channels that groups does not divide ("nb_module_conv2d: in_channels
 * must be divisible by groups"), an int-or-pair of other than 1 or 2 values, a kernel_size,
 * stride or dilation <= 0, or a negative padding (PyTorch takes the last four and fails at the
 * first forward; nabla refuses them here, with nb_conv2d's messages where it has them).
 */
NB_API nb_module *nb_module_conv2d(int64_t in_channels, int64_t out_channels, nb_shape kernel_size,
                                   nb_shape stride, nb_shape padding, nb_shape dilation,
                                   int64_t groups, bool bias);
/**
 * Activations, elementwise with no parameters: max(x, 0), 1 / (1 + e^-x), tanh x, x·σ(x).
 * PyTorch: torch.nn.ReLU(), Sigmoid(), Tanh(), SiLU().
 * @{
 */
NB_API nb_module *nb_module_relu(void);
NB_API nb_module *nb_module_sigmoid(void);
NB_API nb_module *nb_module_tanh(void);
NB_API nb_module *nb_module_silu(void);
/** @} */
/**
 * x·Φ(x), exact or with the tanh approximation (nb_gelu). PyTorch: torch.nn.GELU(approximate).
 * Errors: NB_EINVAL for an unknown approximate.
 */
NB_API nb_module *nb_module_gelu(nb_gelu_approximate approximate);
/**
 * x for x >= 0, negative_slope·x below (nb_leaky_relu; PyTorch's default slope is 0.01).
 * PyTorch: torch.nn.LeakyReLU(negative_slope). Errors: NB_EINVAL for a slope that is not finite.
 */
NB_API nb_module *nb_module_leaky_relu(double negative_slope);
/**
 * Zero each element with probability p in training mode (the mask drawn from the default
 * generator as PyTorch's CPU dropout draws it) and scale the rest by 1 / (1 - p); the
 * identity in evaluation mode. PyTorch: torch.nn.Dropout(p).
 * Errors: NB_EINVAL for p outside [0, 1].
 */
NB_API nb_module *nb_module_dropout(double p);
/**
 * Normalise over the last dims, of normalized_shape: (x - mean) / sqrt(var + eps), then
 * times weight and plus bias (ones and zeros at first) when elementwise_affine.
 * PyTorch: torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine).
 * Errors: NB_EINVAL for a normalized_shape of no dims or a negative size, or eps < 0.
 */
NB_API nb_module *nb_module_layer_norm(nb_shape normalized_shape, double eps,
                                       bool elementwise_affine);
/**
 * A table of num_embeddings rows of embedding_dim, drawn from N(0, 1), looked up by ids
 * (float32 holding integers, any shape): output ids.shape + [embedding_dim]. Row padding_idx
 * (negative counts from the end; NB_NO_PADDING for none) is zeros and gets no gradient.
 * PyTorch: torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx).
 * Errors: NB_EINVAL for a negative size, or padding_idx outside [-num_embeddings,
 * num_embeddings).
 */
NB_API nb_module *nb_module_embedding(int64_t num_embeddings, int64_t embedding_dim,
                                      int64_t padding_idx);
/**
 * Merge dims start_dim..end_dim (of every input but nothing else: PyTorch's defaults are
 * 1 and -1, which keep the batch dim). PyTorch: torch.nn.Flatten(start_dim, end_dim).
 * Errors: none at construction (forward reports bad dims).
 */
NB_API nb_module *nb_module_flatten(int start_dim, int end_dim);
/**
 * 2-D max pooling of [N, C, H, W] or [C, H, W] inputs (nb_max_pool2d), no parameters;
 * kernel_size, stride (NB_SHAPE0: the kernel size, PyTorch's None), padding and dilation are
 * PyTorch's int-or-pair (NB_SHAPE(2) or NB_SHAPE(2, 3)), printed as given:
 * "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)".
 * PyTorch: torch.nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode) (return_indices
 * False).
 * Errors: NB_EINVAL for what nb_max_pool2d refuses before it sees an input, with its messages
 * ("nb_module_max_pool2d: pad should be at most half of kernel size, but got pad=2 and
 * kernel_size=3"); forward reports the rest (the input's rank, an output too small).
 */
NB_API nb_module *nb_module_max_pool2d(nb_shape kernel_size, nb_shape stride, nb_shape padding,
                                       nb_shape dilation, bool ceil_mode);
/**
 * 2-D average pooling (nb_avg_pool2d; divisor_override 0 for PyTorch's None), no parameters,
 * printed as PyTorch prints it: "AvgPool2d(kernel_size=2, stride=2, padding=0)".
 * PyTorch: torch.nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad,
 * divisor_override).
 * Errors: NB_EINVAL for what nb_avg_pool2d refuses before it sees an input, as
 * nb_module_max_pool2d.
 */
NB_API nb_module *nb_module_avg_pool2d(nb_shape kernel_size, nb_shape stride, nb_shape padding,
                                       bool ceil_mode, bool count_include_pad,
                                       int64_t divisor_override);

/* ---- containers ------------------------------------------------------------------------- */

/**
 * A container that applies its n children in order (children named "0", "1", ...).
 * It takes ownership of every child, also when it fails, so constructors nest in one
 * expression; a NULL child (a constructor that failed) fails it with that error. Each child
 * keeps its own training mode (nb_module_train sets them all). PyTorch:
 * torch.nn.Sequential(*modules).
 * Ownership: a new module, the caller's; the children become the container's.
 * Errors: NULL with NB_EINVAL for n < 0, NULL modules with n > 0, a child that already
 * belongs to a container, a module given twice, or a NULL child (keeping a pending error);
 * NB_ERANGE for containers nested deeper than 1024 levels; NB_ENOMEM.
 */
NB_API nb_module *nb_module_sequential(nb_module *const *modules, int n);
/**
 * NB_SEQUENTIAL(a, b, c) is nb_module_sequential of its arguments (up to 32), constructed in
 * the order written: C leaves the order in which a function's arguments (or an array's
 * initialisers) are evaluated unspecified, and each constructor draws from the generator, so
 * the macro sequences them with the comma operator. Nested NB_SEQUENTIALs are fine.
 */
#define NB_SEQUENTIAL(...)                                                                         \
    (nb_sequential_build_begin(), NB__SEQ_ADD(__VA_ARGS__) nb_sequential_build_end())
/** @cond INTERNAL */
/* NB_SEQUENTIAL's steps: a per-thread stack of Sequentials being built. Not for direct use. */
NB_API void nb_sequential_build_begin(void);
NB_API void nb_sequential_build_add(nb_module *m);
NB_API nb_module *nb_sequential_build_end(void);
#define NB__SEQ_N(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, \
                  _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, N, ...)    \
    N
#define NB__SEQ_COUNT(...)                                                                         \
    NB__SEQ_N(__VA_ARGS__, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, \
              14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define NB__SEQ_CAT(a, b)  NB__SEQ_CAT_(a, b)
#define NB__SEQ_CAT_(a, b) a##b
#define NB__SEQ_ADD(...)   NB__SEQ_CAT(NB__SEQ_, NB__SEQ_COUNT(__VA_ARGS__))(__VA_ARGS__)
#define NB__SEQ_1(m)       nb_sequential_build_add(m),
#define NB__SEQ_2(m, ...)  nb_sequential_build_add(m), NB__SEQ_1(__VA_ARGS__)
#define NB__SEQ_3(m, ...)  nb_sequential_build_add(m), NB__SEQ_2(__VA_ARGS__)
#define NB__SEQ_4(m, ...)  nb_sequential_build_add(m), NB__SEQ_3(__VA_ARGS__)
#define NB__SEQ_5(m, ...)  nb_sequential_build_add(m), NB__SEQ_4(__VA_ARGS__)
#define NB__SEQ_6(m, ...)  nb_sequential_build_add(m), NB__SEQ_5(__VA_ARGS__)
#define NB__SEQ_7(m, ...)  nb_sequential_build_add(m), NB__SEQ_6(__VA_ARGS__)
#define NB__SEQ_8(m, ...)  nb_sequential_build_add(m), NB__SEQ_7(__VA_ARGS__)
#define NB__SEQ_9(m, ...)  nb_sequential_build_add(m), NB__SEQ_8(__VA_ARGS__)
#define NB__SEQ_10(m, ...) nb_sequential_build_add(m), NB__SEQ_9(__VA_ARGS__)
#define NB__SEQ_11(m, ...) nb_sequential_build_add(m), NB__SEQ_10(__VA_ARGS__)
#define NB__SEQ_12(m, ...) nb_sequential_build_add(m), NB__SEQ_11(__VA_ARGS__)
#define NB__SEQ_13(m, ...) nb_sequential_build_add(m), NB__SEQ_12(__VA_ARGS__)
#define NB__SEQ_14(m, ...) nb_sequential_build_add(m), NB__SEQ_13(__VA_ARGS__)
#define NB__SEQ_15(m, ...) nb_sequential_build_add(m), NB__SEQ_14(__VA_ARGS__)
#define NB__SEQ_16(m, ...) nb_sequential_build_add(m), NB__SEQ_15(__VA_ARGS__)
#define NB__SEQ_17(m, ...) nb_sequential_build_add(m), NB__SEQ_16(__VA_ARGS__)
#define NB__SEQ_18(m, ...) nb_sequential_build_add(m), NB__SEQ_17(__VA_ARGS__)
#define NB__SEQ_19(m, ...) nb_sequential_build_add(m), NB__SEQ_18(__VA_ARGS__)
#define NB__SEQ_20(m, ...) nb_sequential_build_add(m), NB__SEQ_19(__VA_ARGS__)
#define NB__SEQ_21(m, ...) nb_sequential_build_add(m), NB__SEQ_20(__VA_ARGS__)
#define NB__SEQ_22(m, ...) nb_sequential_build_add(m), NB__SEQ_21(__VA_ARGS__)
#define NB__SEQ_23(m, ...) nb_sequential_build_add(m), NB__SEQ_22(__VA_ARGS__)
#define NB__SEQ_24(m, ...) nb_sequential_build_add(m), NB__SEQ_23(__VA_ARGS__)
#define NB__SEQ_25(m, ...) nb_sequential_build_add(m), NB__SEQ_24(__VA_ARGS__)
#define NB__SEQ_26(m, ...) nb_sequential_build_add(m), NB__SEQ_25(__VA_ARGS__)
#define NB__SEQ_27(m, ...) nb_sequential_build_add(m), NB__SEQ_26(__VA_ARGS__)
#define NB__SEQ_28(m, ...) nb_sequential_build_add(m), NB__SEQ_27(__VA_ARGS__)
#define NB__SEQ_29(m, ...) nb_sequential_build_add(m), NB__SEQ_28(__VA_ARGS__)
#define NB__SEQ_30(m, ...) nb_sequential_build_add(m), NB__SEQ_29(__VA_ARGS__)
#define NB__SEQ_31(m, ...) nb_sequential_build_add(m), NB__SEQ_30(__VA_ARGS__)
#define NB__SEQ_32(m, ...) nb_sequential_build_add(m), NB__SEQ_31(__VA_ARGS__)
/** @endcond */
/**
 * Add m at the end of the Sequential seq (named by its position).
 * PyTorch: Sequential.append(m).
 * Ownership: seq takes m, also when it fails, except when m is seq or holds it (a module
 * cannot contain itself: then m stays the caller's).
 * Errors: NB_EINVAL for NULL seq or m (keeping a pending error), seq not a Sequential, m
 * already in a container, or m being seq or holding it; NB_ERANGE for INT_MAX children or
 * containers nested deeper than 1024 levels; NB_ENOMEM.
 */
NB_API nb_status nb_module_append(nb_module *seq, nb_module *m);
/**
 * Replace child i of seq with m (negative i counts from the end); the old child is freed.
 * PyTorch: seq[i] = m. Ownership: seq takes m, also when it fails, except when m is seq or
 * holds it (then m stays the caller's).
 * Errors: NB_EINVAL for NULL seq or m, seq not a Sequential, i out of range, m already in
 * a container, or m being seq or holding it; NB_ERANGE for containers nested deeper than
 * 1024 levels.
 */
NB_API nb_status nb_module_set_child(nb_module *seq, int i, nb_module *m);
/**
 * The number of children (0 for a layer or NULL), and child i (negative counting from the
 * end; NULL out of range). PyTorch: len(seq), seq[i].
 * Ownership: the child is borrowed from m. Errors: none.
 * @{
 */
NB_API int nb_module_num_children(const nb_module *m);
NB_API nb_module *nb_module_child(const nb_module *m, int i);
/** @} */

/* ---- using a module --------------------------------------------------------------------- */

/**
 * Free m, its children and its parameters (tensors made from them live on: they hold their
 * own references). PyTorch: del m.
 * Ownership: consumes m. Errors: none; NULL is a no-op. A child that belongs to a container
 * is freed with the container, not on its own (the call is then ignored).
 */
NB_API void nb_module_free(nb_module *m);
/**
 * y = m(x): the layer's function, or the children's in order for a Sequential.
 * Intermediate tensors of a Sequential are released as soon as the next child has its
 * input (the graph keeps what backward needs). An empty Sequential gives an alias of x, as
 * nb_dropout's identity does (PyTorch returns x itself). PyTorch: m(x) / m.forward(x).
 * Ownership: a new reference (owned by the open scope, if one is).
 * Errors: NULL with NB_EINVAL for NULL m, and NULL x (keeping a pending error); the errors
 * of the layer's op, with that op's name (nb_linear, ...); NB_ENOMEM.
 */
NB_API nb_tensor *nb_module_forward(nb_module *m, nb_tensor *x);
/**
 * Set training mode (true) or evaluation mode (false) of m and every descendant: Dropout
 * drops in training only. Modules start in training mode. PyTorch: m.train(mode) / m.eval().
 * Ownership: none. Errors: NB_EINVAL for NULL m.
 */
NB_API nb_status nb_module_train(nb_module *m, bool training);
/** Whether m is in training mode; false for NULL. PyTorch: m.training. */
NB_API bool nb_module_is_training(const nb_module *m);
/**
 * The kind's name: "Linear", "ReLU", "Sequential", ...; NULL for NULL m.
 * PyTorch: type(m).__name__. Ownership: a static string. Errors: none.
 */
NB_API const char *nb_module_name(const nb_module *m);

/* ---- parameters ------------------------------------------------------------------------- */

/**
 * The parameters of m and its descendants, in PyTorch's order (m.parameters()), into
 * out[0 .. count-1]; with out NULL and cap 0 only the count is returned (to size out).
 * Frozen parameters are listed too, as in PyTorch (an optimizer skips them: no grad).
 * PyTorch: list(m.parameters()). Returns the count, or a negative nb_status.
 * Ownership: the tensors are borrowed from m (valid while m lives); nb_retain to keep one.
 * Errors: NB_EINVAL for NULL m, or fewer than count places in out.
 */
NB_API int nb_module_parameters(const nb_module *m, nb_tensor **out, int cap);
/**
 * The total number of parameter elements. PyTorch: sum(p.numel() for p in m.parameters()).
 * Returns it, or -1 for NULL m. Ownership: none. Errors: none.
 */
NB_API int64_t nb_module_parameter_count(const nb_module *m);
/**
 * Freeze (false) or unfreeze (true) every parameter of m and its descendants: a frozen
 * parameter gets no gradient and so no update. PyTorch: m.requires_grad_(requires_grad).
 * Ownership: none. Errors: NB_EINVAL for NULL m.
 */
NB_API nb_status nb_module_requires_grad_(nb_module *m, bool requires_grad);
/**
 * Redraw every parameter of m and its descendants as its constructor does, in the same
 * order, from gen (NULL: the default generator). PyTorch: m.reset_parameters() of each
 * module (torch.nn.init draws from the default generator; a thread training its own model
 * gives its own generator here).
 * Ownership: gen is borrowed.
 * Errors: NB_EINVAL for NULL m (a NULL gen while an error is pending fails with it).
 */
NB_API nb_status nb_module_reset_parameters(nb_module *m, nb_generator *gen);

/* ---- state dicts -------------------------------------------------------------------------- */

/**
 * Add m's parameters to out under PyTorch's state_dict names ("weight", "bias", and for a
 * Sequential "0.weight", "2.bias", "1.0.weight", ...), the tensors themselves (not copies:
 * changing one changes the model, as PyTorch's state_dict shares storage).
 * PyTorch: m.state_dict().
 * Ownership: out takes a reference to each tensor.
 * Errors: NB_EINVAL for NULL m or out; NB_ENOMEM (out may then hold some of the entries).
 */
NB_API nb_status nb_module_state_dict(const nb_module *m, nb_state_dict *out);
/**
 * Copy the tensors of in into m's parameters with the same names (under no-grad, bumping
 * their versions). Every entry is checked before anything is copied, so on error m is
 * unchanged. With strict, every parameter must have an entry and every entry must name a
 * parameter; without, missing and unexpected names are skipped. Shapes must match.
 * PyTorch: m.load_state_dict(in, strict).
 * Ownership: in is borrowed; its tensors are copied, not kept.
 * Errors: NB_EINVAL for NULL m or in; NB_ESTATE when strict and a name is missing
 * ("Missing key(s) in state_dict: \"2.bias\"") or unexpected ("Unexpected key(s) in
 * state_dict: \"5.weight\""); NB_ESHAPE for a shape mismatch ("size mismatch for 0.weight:
 * copying a param with shape [256, 784] from checkpoint, the shape in current model is
 * [128, 784]").
 */
NB_API nb_status nb_module_load_state_dict(nb_module *m, const nb_state_dict *in, bool strict);

/* ---- printing --------------------------------------------------------------------------- */

/**
 * m as PyTorch prints it, one line per module ("Sequential(", then
 * "  (0): Linear(in_features=784, out_features=256, bias=True)", "  (1): ReLU()", ..., ")"),
 * into buf, as snprintf (buf may be NULL when size is 0, to measure). PyTorch: repr(m).
 * Returns the full length, or a negative nb_status.
 * Ownership: buf is the caller's.
 * Errors: NB_EINVAL for NULL m, or NULL buf with size > 0; NB_ENOMEM.
 */
NB_API int64_t nb_module_format(const nb_module *m, char *buf, size_t size);
/**
 * Write repr(m) and a newline to f. PyTorch: print(m, file=f).
 * Ownership: f is borrowed (not closed).
 * Errors: NB_EINVAL for NULL m or f; NB_ENOMEM; NB_EIO on write error.
 */
NB_API nb_status nb_module_print(const nb_module *m, FILE *f);

/* ---- torch.nn.init ------------------------------------------------------------------------
 * In place, under no-grad (so on parameters that require grad), bumping t's version, drawing
 * from gen (NULL: the default generator) as torch.nn.init draws from the default one; the
 * bounds are computed in double as Python does, then cast to float.
 * Ownership: t is changed in place. Errors: NB_EINVAL for NULL t (a NULL gen while an error
 * is pending fails with it), and those each function lists.
 * --------------------------------------------------------------------------------------- */

/** Nonlinearities of nb_init_calculate_gain and the kaiming initialisers. */
typedef enum nb_nonlinearity {
    NB_NONLINEARITY_LINEAR = 0, /**< gain 1 (also conv*d, conv_transpose*d) */
    NB_NONLINEARITY_SIGMOID,    /**< gain 1 */
    NB_NONLINEARITY_TANH,       /**< gain 5/3 */
    NB_NONLINEARITY_RELU,       /**< gain √2 */
    NB_NONLINEARITY_LEAKY_RELU, /**< gain √(2 / (1 + slope²)), slope the parameter (0.01 default) */
    NB_NONLINEARITY_SELU,       /**< gain 3/4 */
} nb_nonlinearity;

/** Which fan the kaiming initialisers scale by. */
typedef enum nb_fan_mode {
    NB_FAN_IN = 0, /**< preserve the variance of the forward pass */
    NB_FAN_OUT,    /**< preserve it in the backward pass */
} nb_fan_mode;

/**
 * The recommended gain for a nonlinearity (param: leaky_relu's negative slope; NAN for its
 * default 0.01). PyTorch: torch.nn.init.calculate_gain(nonlinearity, param).
 * Returns the gain, or NAN with NB_EINVAL for an unknown nonlinearity.
 */
NB_API double nb_init_calculate_gain(nb_nonlinearity nonlinearity, double param);
/**
 * t ~ U(a, b) / N(mean, std²) elementwise; zeros; ones.
 * PyTorch: torch.nn.init.uniform_, normal_, zeros_, ones_.
 * Errors: as nb_uniform_ / nb_normal_ (a > b, std < 0).
 * @{
 */
NB_API nb_status nb_init_uniform_(nb_tensor *t, double a, double b, nb_generator *gen);
NB_API nb_status nb_init_normal_(nb_tensor *t, double mean, double std, nb_generator *gen);
NB_API nb_status nb_init_zeros_(nb_tensor *t);
NB_API nb_status nb_init_ones_(nb_tensor *t);
/** @} */
/**
 * Glorot: U(±gain·√(6 / (fan_in + fan_out))) / N(0, gain²·2 / (fan_in + fan_out)), with
 * fan_in = size(1)·receptive field, fan_out = size(0)·receptive field.
 * PyTorch: torch.nn.init.xavier_uniform_(t, gain), xavier_normal_(t, gain).
 * Errors: also NB_EINVAL for a t of fewer than 2 dims.
 * @{
 */
NB_API nb_status nb_init_xavier_uniform_(nb_tensor *t, double gain, nb_generator *gen);
NB_API nb_status nb_init_xavier_normal_(nb_tensor *t, double gain, nb_generator *gen);
/** @} */
/**
 * He: U(±gain·√(3 / fan)) / N(0, gain² / fan), gain = calculate_gain(nonlinearity, a), fan
 * the fan of mode. PyTorch: torch.nn.init.kaiming_uniform_(t, a, mode, nonlinearity),
 * kaiming_normal_(...).
 * Errors: also NB_EINVAL for a t of fewer than 2 dims, an unknown mode or nonlinearity.
 * @{
 */
NB_API nb_status nb_init_kaiming_uniform_(nb_tensor *t, double a, nb_fan_mode mode,
                                          nb_nonlinearity nonlinearity, nb_generator *gen);
NB_API nb_status nb_init_kaiming_normal_(nb_tensor *t, double a, nb_fan_mode mode,
                                         nb_nonlinearity nonlinearity, nb_generator *gen);
/** @} */

NB_END_DECLS

#endif /* NABLA_NN_H */
