/*
 * The backward engine: count dependencies from the roots, then run each node once every
 * gradient flowing into it has arrived, latest-created first (a max-heap on the sequence
 * number, as PyTorch's ready queue). Everything is iterative: no recursion over the graph.
 */
#include <string.h>

#include "autograd/internal.h"

static NB__TLS const char *engine_fn = "nb_backward";
static NB__TLS uint64_t run_id;

const char *nb__engine_fn(void)
{
    return engine_fn;
}

/* A growable array of nodes that starts in its own inline storage: a small graph's backward
 * makes no allocation for its bookkeeping. Set up with vec_init, never copied after it. */
#define VEC_INLINE 32

typedef struct node_vec {
    nb_node **items;
    size_t count, cap;
    nb_node *inline_items[VEC_INLINE];
} node_vec;

static void vec_init(node_vec *v)
{
    v->items = v->inline_items;
    v->count = 0;
    v->cap = VEC_INLINE;
}

static void vec_free(node_vec *v)
{
    if (v->items != v->inline_items) nb__free(v->items);
    vec_init(v);
}

static bool vec_push(node_vec *v, nb_node *n)
{
    if (v->count == v->cap && !nb__grow_inline((void **)&v->items, sizeof *v->items, &v->cap,
                                               v->count + 1, v->inline_items))
        return false;
    v->items[v->count++] = n;
    return true;
}

/* Accumulators run first: nothing downstream of them waits, and their grads land early. */
static uint64_t priority(const nb_node *n)
{
    return n->variable ? UINT64_MAX : n->seq;
}

static void heap_sift_up(node_vec *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (priority(h->items[p]) >= priority(h->items[i])) break;
        nb_node *tmp = h->items[p];
        h->items[p] = h->items[i];
        h->items[i] = tmp;
        i = p;
    }
}

static nb_node *heap_pop(node_vec *h)
{
    nb_node *top = h->items[0];
    h->items[0] = h->items[--h->count];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->count && priority(h->items[l]) > priority(h->items[m])) m = l;
        if (r < h->count && priority(h->items[r]) > priority(h->items[m])) m = r;
        if (m == i) break;
        nb_node *tmp = h->items[m];
        h->items[m] = h->items[i];
        h->items[i] = tmp;
        i = m;
    }
    return top;
}

/* dst += src elementwise (same numel). */
static void add_into(nb_tensor *dst, const nb_tensor *src)
{
    float *d = nb__data(dst);
    const float *s = nb__data(src);
    for (int64_t i = 0; i < dst->numel; i++) d[i] += s[i];
    dst->storage->version++;
}

/* Whether nobody else can see t: its buffer may be taken or written in place. */
static bool exclusive(const nb_tensor *t)
{
    return t->refcount == 1 && t->storage->refcount == 1;
}

/* *slot += g, taking g (a reference the caller gives away). */
static nb_status accumulate(nb_tensor **slot, nb_tensor *g)
{
    if (!*slot) {
        *slot = g;
        return NB_OK;
    }
    if (!exclusive(*slot)) {
        nb_tensor *copy = nb_clone(*slot);
        if (!copy) {
            nb__release(g);
            return nb__oom(engine_fn);
        }
        nb__release(*slot);
        *slot = copy;
    }
    add_into(*slot, g);
    nb__release(g);
    return NB_OK;
}

/* AccumulateGrad: leaf.grad += g, reusing g's buffer when nothing else holds it. */
static nb_status accumulate_leaf(nb_tensor *leaf, nb_tensor *g)
{
    if (!leaf->grad && !exclusive(g)) {
        leaf->grad = nb_clone(g);
        return leaf->grad ? NB_OK : nb__oom(engine_fn);
    }
    if (!leaf->grad) {
        leaf->grad = nb_retain(g);
        return NB_OK;
    }
    add_into(leaf->grad, g);
    return NB_OK;
}

typedef struct run_state {
    node_vec seen; /* every node of this run, for cleanup */
    node_vec ready;
    bool retain_graph;
    /* capture mode (nb_grad): inputs' target nodes and where their gradient goes */
    int n_capture;
    nb_node *const *capture_node;
    nb_tensor **capture_out;
} run_state;

/* Count, for each node reachable from the roots, how many edges lead into it. */
static nb_status count_deps(run_state *st, int n_roots, nb_node *const *roots)
{
    node_vec stack;
    vec_init(&stack);
    nb_status rc = NB_OK;
    for (int r = 0; r < n_roots && rc == NB_OK; r++) {
        nb_node *root = roots[r];
        if (root->run == run_id) continue;
        root->run = run_id;
        root->deps = 0;
        if (!vec_push(&st->seen, root) || !vec_push(&stack, root)) rc = nb__oom(engine_fn);
        while (rc == NB_OK && stack.count > 0) {
            nb_node *n = stack.items[--stack.count];
            for (int i = 0; i < n->num_inputs; i++) {
                nb_node *c = n->next[i].node;
                if (!c) continue;
                if (c->run != run_id) {
                    c->run = run_id;
                    c->deps = 0;
                    if (!vec_push(&st->seen, c) || !vec_push(&stack, c)) {
                        rc = nb__oom(engine_fn);
                        break;
                    }
                }
                c->deps++;
            }
        }
    }
    vec_free(&stack);
    return rc;
}

/*
 * nb_grad computes only what leads to the inputs asked for: mark each node that is a target
 * or has a marked node below it. Kahn's order (parents before children) walked backwards
 * sees every child before its parents.
 */
static nb_status mark_needed(run_state *st, int n_roots, nb_node *const *roots)
{
    node_vec order;
    vec_init(&order);
    nb_status rc = NB_OK;
    for (size_t i = 0; i < st->seen.count; i++) {
        nb_node *n = st->seen.items[i];
        n->pending = n->deps;
        n->needed = false;
    }
    for (int i = 0; i < st->n_capture; i++)
        if (st->capture_node[i] && st->capture_node[i]->run == run_id)
            st->capture_node[i]->needed = true;
    for (int r = 0; r < n_roots && rc == NB_OK; r++)
        if (roots[r]->pending == 0) {
            roots[r]->pending = -1; /* a root listed twice is ordered once */
            if (!vec_push(&order, roots[r])) rc = nb__oom(engine_fn);
        }
    for (size_t k = 0; k < order.count && rc == NB_OK; k++) {
        nb_node *n = order.items[k];
        for (int i = 0; i < n->num_inputs; i++) {
            nb_node *c = n->next[i].node;
            if (c && --c->pending == 0 && !vec_push(&order, c)) {
                rc = nb__oom(engine_fn);
                break;
            }
        }
    }
    for (size_t k = order.count; k-- > 0 && rc == NB_OK;) {
        nb_node *n = order.items[k];
        for (int i = 0; i < n->num_inputs && !n->needed; i++)
            n->needed = n->next[i].node && n->next[i].node->needed;
    }
    vec_free(&order);
    return rc;
}

static nb_status push_ready(run_state *st, nb_node *n)
{
    if (!vec_push(&st->ready, n)) return nb__oom(engine_fn);
    heap_sift_up(&st->ready, st->ready.count - 1);
    return NB_OK;
}

/* nb_grad: whether n's backward is needed, i.e. one of its next nodes leads to an input. */
static bool leads_to_target(const nb_node *n)
{
    for (int i = 0; i < n->num_inputs; i++)
        if (n->next[i].node && n->next[i].node->needed) return true;
    return false;
}

/* Run node n on its summed gradient g (may be NULL: nothing flowed in). Consumes g. */
static nb_status run_node(run_state *st, nb_node *n, nb_tensor *g)
{
    nb_status rc = NB_OK;
    bool captured = false;
    for (int i = 0; i < st->n_capture; i++) {
        if (st->capture_node[i] != n || !g) continue;
        captured = true;
        if (!st->capture_out[i]) st->capture_out[i] = nb_clone(g);
        if (!st->capture_out[i]) rc = nb__oom(engine_fn);
    }
    if (rc != NB_OK || !g || (st->n_capture > 0 && !leads_to_target(n))) goto done;
    if (n->variable) {
        if (!captured && st->n_capture == 0) rc = accumulate_leaf(n->variable, g);
        goto done;
    }
    if (n->retained && st->n_capture == 0) {
        nb_tensor *copy = nb_clone(g);
        rc = copy ? accumulate(&n->retained->grad, copy) : nb__oom(engine_fn);
        if (rc != NB_OK) goto done;
    }
    nb_tensor *gx[NB__MAX_INPUTS] = {NULL};
    rc = n->op->backward(n, g, gx);
    for (int i = 0; i < n->num_inputs; i++) {
        nb_node *c = n->next[i].node;
        if (rc == NB_OK && c && gx[i] && (st->n_capture == 0 || c->needed)) {
            rc = accumulate(&c->buffer, gx[i]);
        } else {
            nb__release(gx[i]);
        }
    }
    if (!st->retain_graph) nb__node_release_saved(n);
done:
    nb__release(g);
    if (rc != NB_OK) return rc;
    for (int i = 0; i < n->num_inputs; i++) {
        nb_node *c = n->next[i].node;
        if (c && --c->deps == 0 && (rc = push_ready(st, c)) != NB_OK) return rc;
    }
    return NB_OK;
}

static nb_status run(run_state *st, int n_roots, nb_node *const *roots, nb_tensor *const *seeds)
{
    run_id++;
    nb_status rc = count_deps(st, n_roots, roots);
    if (rc == NB_OK && st->n_capture > 0) rc = mark_needed(st, n_roots, roots);
    for (int r = 0; r < n_roots && rc == NB_OK; r++) {
        rc = accumulate(&roots[r]->buffer, nb_retain(seeds[r]));
        if (rc == NB_OK && roots[r]->deps == 0 && roots[r]->heap_pos != run_id) {
            roots[r]->heap_pos = run_id; /* a root listed twice is queued once */
            rc = push_ready(st, roots[r]);
        }
    }
    while (rc == NB_OK && st->ready.count > 0) {
        nb_node *n = heap_pop(&st->ready);
        nb_tensor *g = n->buffer;
        n->buffer = NULL;
        rc = run_node(st, n, g);
    }
    for (size_t i = 0; i < st->seen.count; i++) { /* after an error: drop partial sums */
        nb__release(st->seen.items[i]->buffer);
        st->seen.items[i]->buffer = NULL;
    }
    vec_free(&st->seen);
    vec_free(&st->ready);
    return rc;
}

/* Check an output and make its seed gradient (a new reference) and its node (new ref). */
static nb_status prepare_root(nb_tensor *out, const nb_tensor *grad, int idx, nb_tensor **seed,
                              nb_node **node)
{
    if (!out->requires_grad)
        return nb__error(NB_ESTATE, engine_fn,
                         "element %d of tensors does not require grad and does not have a "
                         "grad_fn",
                         idx);
    if (grad) {
        if (!nb__same_shape(out, grad)) {
            char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
            return nb__error(NB_ESHAPE, engine_fn,
                             "Mismatch in shape: grad_output[%d] has a shape of %s and "
                             "output[%d] has a shape of %s",
                             idx, nb__shape_str(a, grad->ndim, grad->shape), idx,
                             nb__shape_str(b, out->ndim, out->shape));
        }
        *seed = nb_retain(nb__unconst(grad));
    } else {
        if (out->numel != 1)
            return nb__error(NB_ESTATE, engine_fn,
                             "grad can be implicitly created only for scalar outputs");
        *seed = nb_ones_like(out);
        if (!*seed) return nb__oom(engine_fn);
    }
    if (out->grad_fn) {
        *node = out->grad_fn;
        (*node)->refcount++;
    } else {
        *node = nb__grad_accumulator(out);
    }
    if (!*node) {
        nb__release(*seed);
        return nb__oom(engine_fn);
    }
    return NB_OK;
}

nb_status nb_backward(nb_tensor *root, const nb_tensor *grad, bool retain_graph)
{
    return nb_grad(&root, 1, NULL, 0, grad ? &grad : NULL, retain_graph, false, NULL);
}

nb_status nb_grad(nb_tensor *const *outputs, int n_outputs, nb_tensor *const *inputs, int n_inputs,
                  const nb_tensor *const *grad_outputs, bool retain_graph, bool allow_unused,
                  nb_tensor **results)
{
    const char *fn = results ? "nb_grad" : "nb_backward";
    if (!outputs || n_outputs < 1) return nb__error(NB_EINVAL, fn, "no outputs to differentiate");
    for (int i = 0; i < n_outputs; i++)
        if (!outputs[i]) return nb__null(fn, results ? "outputs" : "root");
    if (results) {
        if (!inputs || n_inputs < 1) return nb__error(NB_EINVAL, fn, "no inputs given");
        for (int i = 0; i < n_inputs; i++) {
            results[i] = NULL;
            if (!inputs[i]) return nb__null(fn, "inputs");
            if (!inputs[i]->requires_grad)
                return nb__error(NB_ESTATE, fn,
                                 "input %d of the differentiated inputs does not require grad", i);
        }
    }
    if (n_outputs > 64 || n_inputs > 64 || n_inputs < 0)
        return nb__error(NB_EINVAL, fn, "at most 64 outputs and 64 inputs");

    const char *prev_fn = engine_fn;
    engine_fn = fn;
    nb_scope *token = nb__scope_suspend(); /* engine tensors belong to the graph, not scopes */
    /* Only the entries in use are written (no zeroing of all 64): roots[i] and seeds[i] for
     * i < made, each holding a reference; a prepare_root that fails keeps none. targets
     * is read only with results, after it is filled. */
    nb_node *roots[64], *targets[64];
    nb_tensor *seeds[64];
    nb_status rc = NB_OK;
    int made = 0;
    for (; made < n_outputs; made++) {
        const nb_tensor *g = grad_outputs ? grad_outputs[made] : NULL;
        rc = prepare_root(outputs[made], g, made, &seeds[made], &roots[made]);
        if (rc != NB_OK) break;
    }
    if (rc == NB_OK && results) {
        for (int i = 0; i < n_inputs; i++)
            targets[i] = inputs[i]->grad_fn ? inputs[i]->grad_fn : inputs[i]->grad_accumulator;
    }
    if (rc == NB_OK) {
        /* field by field: an initializer would also zero the vectors' inline storage */
        run_state st;
        st.retain_graph = retain_graph;
        st.n_capture = results ? n_inputs : 0;
        st.capture_node = targets;
        st.capture_out = results;
        vec_init(&st.seen);
        vec_init(&st.ready);
        rc = run(&st, n_outputs, roots, seeds);
    }
    if (rc == NB_OK && results && !allow_unused) {
        for (int i = 0; i < n_inputs && rc == NB_OK; i++)
            if (!results[i])
                rc = nb__error(NB_ESTATE, fn,
                               "One of the differentiated Tensors appears to not have been used "
                               "in the graph. Set allow_unused=true if this is the desired "
                               "behavior.");
    }
    if (rc != NB_OK && results) {
        for (int i = 0; i < n_inputs; i++) {
            nb__release(results[i]);
            results[i] = NULL;
        }
    }
    for (int i = 0; i < made; i++) {
        nb__release(seeds[i]);
        nb__node_release(roots[i]);
    }
    nb__scope_resume(token);
    if (results && rc == NB_OK) { /* the caller's new references belong to its scope */
        for (int i = 0; i < n_inputs && rc == NB_OK; i++)
            if (results[i] && !nb__scope_track(results[i])) rc = nb__oom(fn);
        if (rc != NB_OK) { /* no result on error: untrack the ones tracked, free them all */
            for (int i = 0; i < n_inputs; i++) {
                nb__drop(results[i]);
                results[i] = NULL;
            }
        }
    }
    engine_fn = prev_fn;
    return rc;
}
