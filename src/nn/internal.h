/* Internal definitions of the layers: the module object and the table each kind fills. */
#ifndef NABLA_NN_INTERNAL_H
#define NABLA_NN_INTERNAL_H

#include "autograd/internal.h"
#include "nabla/nn.h"

/** At most this many parameters per layer (weight and bias). */
#define NB__MODULE_PARAMS 2

/** A growable text, for repr. On OOM it keeps its length count and sets failed. */
typedef struct nb__text {
    char *s;
    size_t len, cap;
    bool failed;
} nb__text;

void nb__text_printf(nb__text *t, const char *fmt, ...) NB__PRINTF(2, 3);
/** x as Python's repr(float) writes it: "1e-05", "0.5", "1.0". */
void nb__text_float(nb__text *t, double x);

/** What a kind of module does. */
typedef struct nb__module_kind {
    const char *name; /* PyTorch's class name */
    /** y = m(x) (a new reference), or NULL with the error recorded. */
    nb_tensor *(*forward)(nb_module *m, nb_tensor *x);
    /** The text inside the parentheses of repr ("in_features=784, ..."). */
    void (*extra_repr)(const nb_module *m, nb__text *t);
    /** Draw the parameters as the constructor does (NULL: none to draw). */
    nb_status (*reset)(nb_module *m, nb_generator *gen);
} nb__module_kind;

struct nb_module {
    const nb__module_kind *kind;
    bool training;
    nb_module *parent;    /* the container it is a child of, or NULL */
    int height;           /* levels of modules from it down, itself included */
    nb_module *next_free; /* a failed constructor's list of the modules it frees */
    int n_params;
    const char *param_names[NB__MODULE_PARAMS];
    nb_tensor *params[NB__MODULE_PARAMS]; /* strong; leaves that require grad */
    nb_module **children;                 /* Sequential */
    int n_children, cap_children;
    union {
        struct {
            int64_t in, out;
        } linear;
        struct {
            int64_t in, out, groups;
            int64_t k[2], stride[2], padding[2], dilation[2]; /* (h, w) */
        } conv;
        struct {
            int start, end;
        } flatten;
        struct {
            double value;
        } scalar; /* a slope or a probability */
        struct {
            int mode;
        } choice; /* an enum option */
        struct {
            nb_shape shape;
            double eps;
            bool affine;
        } layer_norm;
        struct {
            int64_t num, dim, padding_idx; /* padding_idx < 0: none */
        } embedding;
        struct {
            nb_shape kernel, stride, padding, dilation; /* as given: 1 or 2 values each */
            bool ceil_mode, count_include_pad;
            int64_t divisor; /* 0: none */
        } pool;
    } cfg;
};

/** A module of kind with zeroed configuration, in training mode. NULL with NB_ENOMEM. */
nb_module *nb__module_new(const char *fn, const nb__module_kind *kind);
/** Add parameter name with shape to m (a leaf that requires grad, uninitialised). */
nb_status nb__module_param(const char *fn, nb_module *m, const char *name, nb_shape shape);

#endif /* NABLA_NN_INTERNAL_H */
