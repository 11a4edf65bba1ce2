/* Nodes: creation by ops, saved tensors, iterative teardown, and tensors' autograd meta. */
#include <inttypes.h>
#include <string.h>

#include "autograd/internal.h"

static NB__TLS uint64_t next_seq;

static const nb_op accumulate_op = {"AccumulateGrad", NULL, 0, 0, 0};

/* ---- the meta core sees ---------------------------------------------------------------- */

static const nb__meta_ops meta_ops;

static void meta_free(nb_tensor *t)
{
    nb__autograd *ag = nb__ag(t);
    /*
     * A .grad can have a .grad of its own, and so on: free such a chain in a loop, taking
     * each link's reference to the next before the link goes, so the depth stays bounded.
     */
    nb_tensor *grad = ag->grad;
    ag->grad = NULL;
    while (grad && grad->refcount == 1 && grad->meta && grad->meta->ops == &meta_ops &&
           nb__ag(grad)->grad) {
        nb_tensor *next = nb__ag(grad)->grad;
        nb__ag(grad)->grad = NULL;
        nb__release(grad);
        grad = next;
    }
    nb__release(grad);
    nb_node *g = ag->grad_fn;
    if (g) {
        if (g->out[ag->output_nr].retained == t) g->out[ag->output_nr].retained = NULL;
        nb__node_release(g);
    }
    t->meta = NULL;
}

/* Whether the non-leaf t is a view (through view ops only) of a leaf. */
static bool view_of_leaf(const nb_tensor *t)
{
    const nb_node *n = nb__grad_fn(t);
    while (n && (n->op->flags & NB__OP_VIEW) && n->num_inputs > 0) {
        n = n->next[0].node;
        if (n && n->variable) return true;
    }
    return false;
}

/*
 * The one in-place check. Under grad mode a tensor that requires grad is never written in
 * place: a leaf (its .grad would no longer be the gradient of what was computed), a view of
 * one (the same, through shared storage), or a non-leaf (nabla does not record in-place
 * ops: the write would corrupt the gradient silently). Under no-grad anything goes, as in
 * PyTorch, which is how optimizers update parameters.
 */
static nb_status meta_check_write(const char *fn, const nb_tensor *t)
{
    if (nb__grad_enabled() && nb__ag(t)->no_grad_view)
        return nb__error(NB_ESTATE, fn,
                         "A view was created in no_grad mode and is being modified inplace with "
                         "grad mode enabled. Given that this use case is ambiguous and "
                         "error-prone, it is forbidden. You can clarify your code by moving both "
                         "the view and the inplace either both inside the no_grad block (if you "
                         "don't want the inplace to be tracked) or both outside (if you want the "
                         "inplace to be tracked).");
    if (!nb__grad_enabled() || !nb__ag(t)->requires_grad) return NB_OK;
    if (!nb__ag(t)->grad_fn)
        return nb__error(NB_ESTATE, fn,
                         "a leaf Variable that requires grad is being used in an in-place "
                         "operation.");
    if (view_of_leaf(t))
        return nb__error(NB_ESTATE, fn,
                         "a view of a leaf Variable that requires grad is being used in an "
                         "in-place operation.");
    return nb__error(NB_ESTATE, fn,
                     "in-place operations on tensors that are part of a graph are not "
                     "supported; use the out-of-place op or NB_NO_GRAD");
}

static void meta_describe(const nb_tensor *t, const char **grad_fn_name, bool *requires_grad)
{
    const nb__autograd *ag = nb__ag(t);
    *grad_fn_name = ag->grad_fn ? ag->grad_fn->op->name : NULL;
    *requires_grad = ag->requires_grad;
}

static const nb__meta_ops meta_ops = {meta_free, meta_check_write, meta_describe};

_Static_assert(sizeof(nb__autograd) <= sizeof(((nb_tensor *)0)->meta_space),
               "the autograd meta must fit the tensor's meta_space");

nb__autograd *nb__ag_make(nb_tensor *t)
{
    if (!t->meta) {
        nb__autograd *ag = (nb__autograd *)(void *)t->meta_space;
        memset(ag, 0, sizeof *ag);
        ag->base.ops = &meta_ops;
        t->meta = &ag->base;
    }
    return nb__ag(t);
}

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
    for (int i = 0; i < n->num_saved; i++) nb__release(n->saved[i].tensor);
    for (int j = 0; j < n->num_outputs; j++) nb__release(n->out[j].buffer);
    if (n->variable) {
        nb__autograd *ag = nb__ag(n->variable);
        if (ag->grad_accumulator == n) ag->grad_accumulator = NULL;
        nb__release(n->variable);
    }
    nb__free(n);
}

void nb__node_free(nb_node *n)
{
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

/* ---- creation -------------------------------------------------------------------------- */

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* A node with its trailing arrays, all zeroed; NULL on OOM. */
static nb_node *node_new(const nb_op *op, int n_in, int n_out, size_t n_dims, size_t state)
{
    size_t n_saved = (size_t)op->n_saved;
    size_t edges = (size_t)n_in * sizeof(nb_edge), saved = n_saved * sizeof(nb_saved);
    size_t outs = (size_t)n_out * sizeof(nb__output);
    state = round8(state);
    if (state > SIZE_MAX / 4 || (size_t)n_in > SIZE_MAX / 4 / sizeof(nb_edge)) return NULL;
    size_t size = sizeof(nb_node) + state + edges + saved + outs + n_dims * sizeof(int64_t);
    nb_node *n = nb__calloc(size);
    if (!n) return NULL;
    char *p = (char *)n + sizeof(nb_node) + state;
    n->next = (nb_edge *)(void *)p;
    n->saved = (nb_saved *)(void *)(p + edges);
    n->out = (nb__output *)(void *)(p + edges + saved);
    n->num_inputs = n_in;
    n->num_outputs = n_out;
    n->num_saved = (int)n_saved;
    n->refcount = 1;
    n->op = op;
    n->seq = next_seq++;
    return n;
}

nb_node *nb__grad_accumulator(nb_tensor *leaf)
{
    nb__autograd *ag = nb__ag_make(leaf);
    if (ag->grad_accumulator) {
        node_retain(ag->grad_accumulator);
        return ag->grad_accumulator;
    }
    nb_node *n = node_new(&accumulate_op, 0, 1, 0, 0);
    if (!n) return NULL;
    n->variable = nb_retain(leaf);
    n->out[0].dims = leaf->shape; /* the node holds the leaf: its shape outlives the node */
    n->out[0].ndim = leaf->ndim;
    ag->grad_accumulator = n; /* weak: the node is owned by the graphs that use it */
    return n;
}

/*
 * A view's outputs share input 0's storage. Made under no-grad of a tensor that requires grad,
 * or of another such view in any mode, they are marked: PyTorch refuses to write them with
 * grad mode on, where the write would change a tensor of the graph without being recorded.
 */
static void mark_no_grad_views(const nb_op *op, nb_tensor *base, int n_out, nb_tensor *const *out)
{
    if (!(op->flags & NB__OP_VIEW) || !base || !base->meta) return;
    if (!nb__ag(base)->no_grad_view && (nb__grad_enabled() || !nb__ag(base)->requires_grad)) return;
    for (int j = 0; j < n_out; j++)
        if (out[j]->storage == base->storage) nb__ag_make(out[j])->no_grad_view = true;
}

nb_status nb__record(const char *fn, const nb_op *op, int n_in, nb_tensor *const *in, int n_out,
                     nb_tensor *const *out, size_t extra_state, nb_node **node)
{
    *node = NULL;
    mark_no_grad_views(op, n_in > 0 ? in[0] : NULL, n_out, out);
    if (!nb__grad_enabled()) return NB_OK;
    bool any = false;
    for (int i = 0; i < n_in && !any; i++) any = in[i] && nb__requires_grad(in[i]);
    if (!any) return NB_OK;

    size_t n_dims = 0;
    for (int j = 0; j < n_out; j++) n_dims += (size_t)out[j]->ndim;
    if (extra_state > SIZE_MAX / 4) return nb__oom(fn);
    nb_node *g = node_new(op, n_in, n_out, n_dims, op->state_size + extra_state);
    if (!g) return nb__oom(fn);
    for (int i = 0; i < n_in; i++) {
        nb_tensor *x = in[i];
        if (!x || !nb__requires_grad(x)) continue;
        nb__autograd *ag = nb__ag(x);
        if (ag->grad_fn) {
            g->next[i] = (nb_edge){ag->grad_fn, ag->output_nr};
            node_retain(ag->grad_fn);
        } else {
            nb_node *acc = nb__grad_accumulator(x);
            if (!acc) {
                nb__node_release(g);
                return nb__oom(fn);
            }
            g->next[i] = (nb_edge){acc, 0}; /* takes the reference returned */
        }
    }
    int64_t *dims = (int64_t *)(void *)((char *)g->out + (size_t)n_out * sizeof(nb__output));
    g->refcount = n_out; /* each output holds the node */
    for (int j = 0; j < n_out; j++) {
        nb_tensor *y = out[j];
        for (int d = 0; d < y->ndim; d++) dims[d] = y->shape[d];
        g->out[j].dims = dims;
        g->out[j].ndim = y->ndim;
        dims += y->ndim;
        nb__autograd *ag = nb__ag_make(y); /* a fresh output: it has no grad_fn yet */
        ag->grad_fn = g;
        ag->output_nr = j;
        ag->requires_grad = true;
    }
    *node = g;
    return NB_OK;
}

nb_status nb__save(const char *fn, nb_node *n, int i, nb_tensor *t)
{
    nb_saved *s = &n->saved[i];
    s->version = t->storage->version;
    if (nb__grad_fn(t) == n) {
        /* the op's own output: keep an alias of its storage, not the tensor, which holds n */
        nb_scope *token = nb__scope_suspend();
        s->tensor = nb__new_view(fn, t->storage, t->offset, t->ndim, t->shape);
        nb__scope_resume(token);
        if (!s->tensor) return NB_ENOMEM;
        s->is_output = true;
    } else {
        s->tensor = nb_retain(t);
    }
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

void nb__node_release_saved(nb_node *n)
{
    /* a node that saved nothing can run again, as in PyTorch */
    for (int i = 0; i < n->num_saved; i++) {
        if (!n->saved[i].tensor) continue;
        nb__release(n->saved[i].tensor);
        n->saved[i].tensor = NULL;
        n->saved_released = true;
    }
}

/* ---- tensor autograd properties -------------------------------------------------------- */

nb_tensor *nb_requires_grad_(nb_tensor *t, bool requires_grad)
{
    static const char fn[] = "nb_requires_grad_";
    if (!t) {
        nb__null(fn, "t");
        return NULL;
    }
    if (nb__grad_fn(t)) {
        /* a non-leaf requires grad: asking for it again changes nothing, as in PyTorch */
        if (requires_grad) return t;
        nb__error(NB_ESTATE, fn,
                  "you can only change requires_grad flags of leaf variables. If you want to use "
                  "a computed variable in a subgraph that doesn't require differentiation use "
                  "var_no_grad = nb_detach(var).");
        return NULL;
    }
    if (requires_grad || t->meta) nb__ag_make(t)->requires_grad = requires_grad;
    return t;
}

bool nb_tensor_requires_grad(const nb_tensor *t)
{
    return t && nb__requires_grad(t);
}

bool nb_tensor_is_leaf(const nb_tensor *t)
{
    return !t || !nb__grad_fn(t);
}

nb_tensor *nb_tensor_grad(nb_tensor *t)
{
    if (!t || !t->meta) return NULL;
    nb__autograd *ag = nb__ag(t);
    if (ag->grad_fn && !ag->retains_grad && !ag->warned_grad) {
        ag->warned_grad = true;
        nb__warn("nb_tensor_grad: warning: The .grad attribute of a Tensor that is not a leaf "
                 "Tensor is being accessed. Its .grad attribute won't be populated during "
                 "nb_backward(). If you indeed want the .grad field to be populated for a "
                 "non-leaf Tensor, use nb_retain_grad() on the non-leaf Tensor. If you access the "
                 "non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.");
    }
    return ag->grad;
}

nb_status nb_tensor_set_grad(nb_tensor *t, nb_tensor *grad)
{
    static const char fn[] = "nb_tensor_set_grad";
    if (!t) return nb__null(fn, "t");
    if (!grad && nb__pending()) return nb__pending();
    if (grad && !nb__same_shape(t, grad)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        return nb__error(
            NB_ESHAPE, fn, "assigned grad has data of a different size: %s for a tensor of %s",
            nb__shape_str(a, grad->ndim, grad->shape), nb__shape_str(b, t->ndim, t->shape));
    }
    if (grad && nb__requires_grad(grad) && nb__grad_fn(grad))
        return nb__error(NB_EINVAL, fn, "a gradient must not be part of a graph; detach it");
    /* .grad references are strong: one that leads back to t would never be freed */
    if (grad == t) return nb__error(NB_EINVAL, fn, "can't assign Variable as its own grad");
    for (const nb_tensor *g = grad; g && g->meta; g = nb__ag(g)->grad)
        if (nb__ag(g)->grad == t)
            return nb__error(NB_EINVAL, fn,
                             "the assigned grad leads back to the tensor through .grad (a "
                             "reference cycle)");
    if (!grad && !t->meta) return NB_OK;
    nb__autograd *ag = nb__ag_make(t);
    nb_tensor *old = ag->grad;
    ag->grad = nb_retain(grad);
    nb__release(old);
    return NB_OK;
}

nb_node *nb_tensor_grad_fn(const nb_tensor *t)
{
    return t ? nb__grad_fn(t) : NULL;
}

nb_status nb_retain_grad(nb_tensor *t)
{
    static const char fn[] = "nb_retain_grad";
    if (!t) return nb__null(fn, "t");
    if (!nb__requires_grad(t))
        return nb__error(NB_ESTATE, fn, "can't retain_grad on Tensor that has requires_grad=False");
    nb__autograd *ag = nb__ag(t);
    if (ag->grad_fn) {
        ag->retains_grad = true;
        ag->grad_fn->out[ag->output_nr].retained = t;
        ag->grad_fn->has_retained = true;
    }
    return NB_OK; /* a leaf retains its grad already */
}

bool nb_tensor_retains_grad(const nb_tensor *t)
{
    return t && t->meta && nb__ag(t)->retains_grad;
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
    nb_tensor *g = t->meta ? nb__ag(t)->grad : NULL;
    if (!g) return NB_OK;
    if (set_to_none) {
        nb__ag(t)->grad = NULL;
        nb__release(g);
    } else {
        memset(nb__data(g), 0, (size_t)g->numel * sizeof(float));
        g->storage->version++;
        /* the engine may let a backward write its gradient straight into these zeros */
        g->storage->zeroed = g->storage->version + 1;
    }
    return NB_OK;
}

/* ---- introspection --------------------------------------------------------------------- */

const char *nb_node_name(const nb_node *n)
{
    return n ? n->op->name : NULL;
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
    static const char fn[] = "nb_node_format";
    if (!n) return nb__null(fn, "n");
    if (!buf && size > 0) return nb__error(NB_EINVAL, fn, "buf is NULL but size is %zu", size);
    return snprintf(buf, size, "<%s object at %p>", n->op->name, (const void *)n);
}

nb_status nb_node_print(const nb_node *n, FILE *f)
{
    if (!n) return nb__null("nb_node_print", "n");
    if (!f) return nb__error(NB_EINVAL, "nb_node_print", "argument 'f' is NULL");
    if (fprintf(f, "<%s object at %p>\n", n->op->name, (const void *)n) < 0)
        return nb__error(NB_EIO, "nb_node_print", "write failed");
    return NB_OK;
}
