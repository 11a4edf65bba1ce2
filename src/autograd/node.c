/* Nodes: creation by ops, saved tensors, iterative teardown, and tensor autograd properties. */
#include <inttypes.h>
#include <string.h>

#include "autograd/internal.h"

static NB__TLS uint64_t next_seq;

static const nb_op accumulate_op = {"AccumulateGrad", NULL};

/* ---- teardown -------------------------------------------------------------------------- */

/*
 * Releasing a node can release the nodes it points to, and the tensors it saved, whose own
 * grad_fn follow: a long chain would recurse once per node. Instead, nodes whose count drops
 * to zero go on a per-thread list that the outermost release drains.
 */
#define DYING_INLINE 16
/* The list lives in dying_inline until it outgrows it; dying == NULL means dying_inline. */
static NB__TLS nb_node *dying_inline[DYING_INLINE];
static NB__TLS nb_node **dying;
static NB__TLS size_t dying_count, dying_cap;
static NB__TLS bool draining;

static bool dying_push(nb_node *n)
{
    nb_node **list = dying ? dying : dying_inline;
    size_t cap = dying ? dying_cap : DYING_INLINE;
    if (dying_count == cap) {
        if (cap > SIZE_MAX / 2 / sizeof *list) return false;
        nb_node **bigger = nb__alloc(2 * cap * sizeof *bigger, 16);
        if (!bigger) return false;
        memcpy(bigger, list, dying_count * sizeof *bigger);
        if (dying) nb__free(dying);
        dying = list = bigger;
        dying_cap = 2 * cap;
    }
    list[dying_count++] = n;
    return true;
}

static void node_destroy(nb_node *n)
{
    for (int i = 0; i < n->num_inputs; i++) nb__node_release(n->next[i].node);
    for (int i = 0; i < NB__MAX_SAVED; i++) nb__release(n->saved[i].tensor);
    if (n->variable) {
        if (n->variable->grad_accumulator == n) n->variable->grad_accumulator = NULL;
        nb__release(n->variable);
    }
    if (n->retained && n->retained->grad_fn == n) n->retained = NULL;
    nb__release(n->buffer);
    nb__free(n);
}

void nb__node_release(nb_node *n)
{
    if (!n || --n->refcount > 0) return;
    if (!dying_push(n)) {
        node_destroy(n); /* no memory for the list: fall back to recursion */
        return;
    }
    if (draining) return;
    draining = true;
    /* node_destroy may push more nodes, and move the list to the heap: reread it each time */
    while (dying_count > 0) {
        nb_node *last = (dying ? dying : dying_inline)[--dying_count];
        node_destroy(last);
    }
    draining = false;
    nb__free(dying); /* a list that outgrew the inline one */
    dying = NULL;
    dying_cap = 0;
}

static void node_retain(nb_node *n)
{
    if (n) n->refcount++;
}

void nb__autograd_on_free(nb_tensor *t)
{
    if (t->grad_fn && t->grad_fn->retained == t) t->grad_fn->retained = NULL;
    nb__node_release(t->grad_fn);
    t->grad_fn = NULL;
}

/* ---- creation -------------------------------------------------------------------------- */

static nb_node *node_new(const nb_op *op)
{
    nb_node *n = nb__calloc(sizeof *n);
    if (!n) return NULL;
    n->refcount = 1;
    n->op = op;
    n->seq = next_seq++;
    return n;
}

nb_node *nb__grad_accumulator(nb_tensor *leaf)
{
    if (leaf->grad_accumulator) {
        node_retain(leaf->grad_accumulator);
        return leaf->grad_accumulator;
    }
    nb_node *n = node_new(&accumulate_op);
    if (!n) return NULL;
    n->variable = nb_retain(leaf);
    leaf->grad_accumulator = n; /* weak: the node is owned by the graphs that use it */
    return n;
}

nb_status nb__record(const char *fn, const nb_op *op, nb_tensor *out, int n,
                     nb_tensor *const *inputs, nb_node **node)
{
    *node = NULL;
    if (!nb__grad_enabled()) return NB_OK;
    bool any = false;
    for (int i = 0; i < n; i++) any = any || (inputs[i] && inputs[i]->requires_grad);
    if (!any) return NB_OK;

    nb_node *g = node_new(op);
    if (!g) return nb__oom(fn);
    g->num_inputs = n;
    for (int i = 0; i < n; i++) {
        nb_tensor *x = inputs[i];
        if (!x) continue;
        /* the node is zeroed: copying the used sizes gives what nb_tensor_size(x) would */
        g->input_shape[i].ndim = x->ndim;
        memcpy(g->input_shape[i].dims, x->shape, (size_t)x->ndim * sizeof *x->shape);
        if (!x->requires_grad) continue;
        if (x->grad_fn) {
            g->next[i] = (nb_edge){x->grad_fn, x->output_nr};
            node_retain(x->grad_fn);
        } else {
            nb_node *acc = nb__grad_accumulator(x);
            if (!acc) {
                nb__node_release(g);
                return nb__oom(fn);
            }
            g->next[i] = (nb_edge){acc, 0}; /* takes the reference returned */
        }
    }
    nb__node_release(out->grad_fn);
    out->grad_fn = g;
    out->output_nr = 0;
    out->requires_grad = true;
    *node = g;
    return NB_OK;
}

nb_status nb__save(const char *fn, nb_node *n, int i, nb_tensor *t)
{
    nb_saved *s = &n->saved[i];
    s->version = t->storage->version;
    if (t->grad_fn == n) {
        /* the op's own output: keep an alias of its storage, not the tensor, which holds n */
        nb_scope *token = nb__scope_suspend();
        s->tensor = nb__new_view(fn, t->storage, t->offset, t->ndim, t->shape);
        nb__scope_resume(token);
        if (!s->tensor) return NB_ENOMEM;
        s->is_output = true;
    } else {
        s->tensor = nb_retain(t);
    }
    n->has_saved = true;
    return NB_OK;
}

nb_tensor *nb__saved(nb_node *n, int i)
{
    if (n->saved_released) {
        nb__error(NB_ESTATE, nb__engine_fn(),
                  "Trying to backward through the graph a second time (or directly access saved "
                  "tensors after they have already been freed). Saved intermediate values of the "
                  "graph are freed when you call backward or grad. Specify retain_graph=true if "
                  "you need to backward through the graph a second time or if you need to access "
                  "saved tensors after calling backward.");
        return NULL;
    }
    nb_saved *s = &n->saved[i];
    if (s->tensor && s->tensor->storage->version != s->version) {
        char buf[NB__SHAPE_STR];
        nb__error(
            NB_ESTATE, nb__engine_fn(),
            "one of the variables needed for gradient computation has been modified by an "
            "inplace operation: [FloatTensor %s], which %s saved by %s, is at version %" PRIu64
            "; expected version %" PRIu64 " instead",
            nb__shape_str(buf, s->tensor->ndim, s->tensor->shape),
            s->is_output ? "is the output" : "is an input", n->op->name,
            s->tensor->storage->version, s->version);
        return NULL;
    }
    return s->tensor;
}

/* Free what backward saved: after a backward without retain_graph. */
void nb__node_release_saved(nb_node *n)
{
    if (!n->has_saved) return;
    for (int i = 0; i < NB__MAX_SAVED; i++) {
        nb__release(n->saved[i].tensor);
        n->saved[i].tensor = NULL;
    }
    n->saved_released = true;
}

/* ---- tensor autograd properties -------------------------------------------------------- */

nb_tensor *nb_requires_grad_(nb_tensor *t, bool requires_grad)
{
    static const char fn[] = "nb_requires_grad_";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (t->grad_fn) {
        nb__error(NB_ESTATE, fn,
                  "you can only change requires_grad flags of leaf variables. If you want to use "
                  "a computed variable in a subgraph that doesn't require differentiation use "
                  "var_no_grad = nb_detach(var).");
        return NULL;
    }
    t->requires_grad = requires_grad;
    return t;
}

bool nb_tensor_requires_grad(const nb_tensor *t)
{
    return t && t->requires_grad;
}

bool nb_tensor_is_leaf(const nb_tensor *t)
{
    return !t || !t->grad_fn;
}

nb_tensor *nb_tensor_grad(nb_tensor *t)
{
    if (!t) return NULL;
    if (t->grad_fn && !t->retains_grad && !t->warned_grad) {
        t->warned_grad = true;
        nb__warn("nb_tensor_grad: warning: The .grad attribute of a Tensor that is not a leaf "
                 "Tensor is being accessed. Its .grad attribute won't be populated during "
                 "nb_backward(). If you indeed want the .grad field to be populated for a "
                 "non-leaf Tensor, use nb_retain_grad() on the non-leaf Tensor. If you access the "
                 "non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.");
    }
    return t->grad;
}

nb_node *nb_tensor_grad_fn(const nb_tensor *t)
{
    return t ? t->grad_fn : NULL;
}

nb_status nb_retain_grad(nb_tensor *t)
{
    static const char fn[] = "nb_retain_grad";
    if (!t) return nb__null(fn, "t");
    if (!t->requires_grad)
        return nb__error(NB_ESTATE, fn, "can't retain_grad on Tensor that has requires_grad=False");
    if (t->grad_fn) {
        t->retains_grad = true;
        t->grad_fn->retained = t;
    }
    return NB_OK; /* a leaf retains its grad already */
}

bool nb_tensor_retains_grad(const nb_tensor *t)
{
    return t && t->retains_grad;
}

nb_tensor *nb_detach(nb_tensor *t)
{
    if (!t) {
        nb__null("nb_detach", "t");
        return NULL;
    }
    return nb__new_view("nb_detach", t->storage, t->offset, t->ndim, t->shape);
}

nb_status nb_zero_grad(nb_tensor *t, bool set_to_none)
{
    if (!t) return nb__null("nb_zero_grad", "t");
    if (!t->grad) return NB_OK;
    if (set_to_none) {
        nb__release(t->grad);
        t->grad = NULL;
    } else {
        memset(nb__data(t->grad), 0, (size_t)t->grad->numel * sizeof(float));
        t->grad->storage->version++;
    }
    return NB_OK;
}

/* ---- introspection --------------------------------------------------------------------- */

const char *nb_node_name(const nb_node *n)
{
    return n ? n->op->name : NULL;
}

const char *nb__node_name(const nb_node *n)
{
    return n->op->name;
}

int nb_node_num_next(const nb_node *n)
{
    return n ? n->num_inputs : 0;
}

nb_node *nb_node_next(const nb_node *n, int i, int *input_nr)
{
    if (!n || i < 0 || i >= n->num_inputs) return NULL;
    if (input_nr) *input_nr = n->next[i].input_nr;
    return n->next[i].node;
}

nb_tensor *nb_node_variable(const nb_node *n)
{
    return n ? n->variable : NULL;
}

int64_t nb_node_format(const nb_node *n, char *buf, size_t size)
{
    if (!n) return nb__null("nb_node_format", "n");
    int len = snprintf(buf, size, "<%s object at %p>", n->op->name, (const void *)n);
    return len;
}

nb_status nb_node_print(const nb_node *n, FILE *f)
{
    if (!n) return nb__null("nb_node_print", "n");
    if (!f) return nb__error(NB_EINVAL, "nb_node_print", "argument 'f' is NULL");
    if (fprintf(f, "<%s object at %p>\n", n->op->name, (const void *)n) < 0)
        return nb__error(NB_EIO, "nb_node_print", "write failed");
    return NB_OK;
}
