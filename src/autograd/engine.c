/*
 * The backward engine: count dependencies from the roots, then run each node once every
 * gradient flowing into it has arrived, latest-created first (a max-heap on the sequence
 * number, as PyTorch's ready queue). Everything is iterative: no recursion over the graph.
 *
 * Each run takes a process-wide unique id, which marks the nodes it has seen: a graph built
 * on one thread may be run on any other, one run at a time.
 */
#include <stdatomic.h>
#include <string.h>

#include "autograd/internal.h"
#include "blas/blas.h"

static NB__TLS const char *engine_fn = "nb_backward";

/* Run ids: each thread takes a block of them at a time from the process-wide counter. */
#define RUN_BLOCK ((uint64_t)1 << 20)
static _Atomic uint64_t runs;
static NB__TLS uint64_t run_next, run_end;

static uint64_t new_run_id(void)
{
    if (run_next == run_end) {
        run_next = atomic_fetch_add(&runs, RUN_BLOCK) + 1; /* 0 is never an id */
        run_end = run_next + RUN_BLOCK - 1;
    }
    return run_next++;
}

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

/*
 * Later nodes run first, as in PyTorch. Accumulators run when nothing else is ready: by then
 * the nodes that shared their gradient (an add passes one tensor to both inputs) have
 * dropped it, so the leaf can take it without a copy.
 */
static uint64_t priority(const nb_node *n)
{
    return n->variable ? 0 : n->seq + 1;
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

/* d[i] += s[i] over [lo, hi); d and s are the same buffer when a seed is the leaf's .grad,
 * never partly the same (accumulate_leaf copies such an s) */
typedef struct add_job {
    float *d;
    const float *s;
} add_job;

NB__CLONES static void add_range(void *ctx, int64_t lo, int64_t hi)
{
    const add_job *j = ctx;
    float *d = j->d;
    const float *s = j->s;
    for (int64_t i = lo; i < hi; i++) d[i] += s[i];
}

/* dst += src elementwise (same numel); on the pool from NB__PARALLEL_MIN elements, each
 * element its own sum, so the bits are the same at any thread count */
static void add_into(nb_tensor *dst, const nb_tensor *src)
{
    add_job j = {nb__data(dst), nb__data(src)};
    if (dst->numel < NB__PARALLEL_MIN)
        add_range(&j, 0, dst->numel);
    else
        nb__parallel_ranges(dst->numel, NB__TASK_ELEMS, add_range, &j);
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
        if (exclusive(g)) { /* add into the one nobody else sees */
            nb_tensor *t = *slot;
            *slot = g;
            g = t;
        } else {
            nb_tensor *copy = nb_clone(*slot);
            if (!copy) {
                nb__release(g);
                return nb__oom(engine_fn);
            }
            nb__release(*slot);
            *slot = copy;
        }
    }
    add_into(*slot, g);
    nb__release(g);
    return NB_OK;
}

/* AccumulateGrad: leaf.grad += g (in place, as PyTorch under no-grad), reusing g's buffer
 * when nothing else holds it. */
static nb_status accumulate_leaf(nb_tensor *leaf, nb_tensor *g)
{
    nb__autograd *ag = nb__ag(leaf);
    if (!ag->requires_grad) return NB_OK; /* turned off since the graph was made: skipped */
    if (!ag->grad) {
        ag->grad = exclusive(g) ? nb_retain(g) : nb_clone(g);
        return ag->grad ? NB_OK : nb__oom(engine_fn);
    }
    /* a g that shares some of .grad's elements, not all (views of one buffer at different
       offsets), is copied first: an element's sum must not read another's new value, which the
       pool's tasks would do depending on the thread count; PyTorch refuses such an add */
    nb_tensor *t = ag->grad, *copy = NULL;
    if (nb__partly_overlaps(t, g)) {
        if (!(copy = nb_clone(g))) return nb__oom(engine_fn);
        g = copy;
    }
    add_into(t, g);
    nb__release(copy);
    return NB_OK;
}

typedef struct run_state {
    uint64_t run;
    node_vec ready;
    bool retain_graph;
    /* capture mode (nb_grad): each input's node and output, and where its gradient goes */
    int n_capture;
    nb_node *const *capture_node;
    const int *capture_nr;
    nb_tensor **capture_out;
} run_state;

/*
 * First visit of n in this run: reset its counters, and drop what an earlier run that
 * failed part-way left in its buffers.
 */
static void visit(run_state *st, nb_node *n)
{
    n->run = st->run;
    n->deps = 0;
    n->pending = 0;
    n->needed = st->n_capture == 0; /* nb_backward needs every node; nb_grad marks them */
    for (int j = 0; j < n->num_outputs; j++) {
        nb__release(n->out[j].buffer);
        n->out[j].buffer = NULL;
    }
}

/* Count, for each node reachable from the roots, how many edges lead into it. */
static nb_status count_deps(run_state *st, int n_roots, nb_node *const *roots)
{
    node_vec stack;
    vec_init(&stack);
    nb_status rc = NB_OK;
    for (int r = 0; r < n_roots && rc == NB_OK; r++) {
        nb_node *root = roots[r];
        if (root->run == st->run) continue;
        visit(st, root);
        if (!vec_push(&stack, root)) rc = nb__oom(engine_fn);
        while (rc == NB_OK && stack.count > 0) {
            nb_node *n = stack.items[--stack.count];
            for (int i = 0; i < n->num_inputs; i++) {
                nb_node *c = n->next[i].node;
                if (!c) continue;
                if (c->run != st->run) {
                    visit(st, c);
                    if (!vec_push(&stack, c)) {
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
    for (int i = 0; i < st->n_capture; i++)
        if (st->capture_node[i] && st->capture_node[i]->run == st->run)
            st->capture_node[i]->needed = true;
    for (int r = 0; r < n_roots && rc == NB_OK; r++)
        if (roots[r]->deps == 0 && roots[r]->pending != -1) {
            roots[r]->pending = -1; /* a root listed twice is ordered once */
            if (!vec_push(&order, roots[r])) rc = nb__oom(engine_fn);
        }
    for (size_t k = 0; k < order.count && rc == NB_OK; k++) {
        nb_node *n = order.items[k];
        for (int i = 0; i < n->num_inputs; i++) {
            nb_node *c = n->next[i].node;
            if (!c) continue;
            if (c->queued != st->run) { /* first seen here: its count starts at deps */
                c->queued = st->run;
                c->pending = c->deps;
            }
            if (--c->pending == 0 && !vec_push(&order, c)) {
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

/* Whether the gradient of edge i goes anywhere in this run. */
static bool edge_used(const nb_node *n, int i)
{
    const nb_node *c = n->next[i].node;
    return c && c->needed;
}

/* Whether t holds the zeros nb_zero_grad filled it with, unchanged since. */
static bool zeroed(const nb_tensor *t)
{
    return t->storage->zeroed == t->storage->version + 1;
}

/*
 * Lend gx[i] a leaf's .grad, so the backward writes its gradient straight into it (beta = 1,
 * +=) instead of making a tensor. PyTorch sums a leaf's gradients first and adds the sum to
 * .grad once, and adds each gradient to a node's partial sum once it is whole; writing into a
 * buffer as a GEMM over several blocks of k or a row-by-row sum does would round otherwise. So
 * only a .grad of zeros (zero_grad's, untouched since) is lent, to the edge that brings the
 * leaf's one gradient: there the sum is that gradient, and adding it to zeros gives its bits.
 * Outside nb_grad only.
 */
static void lend(const run_state *st, nb_node *n, nb_tensor **gx, bool *leaf_lent)
{
    for (int i = 0; i < n->num_inputs; i++) {
        gx[i] = NULL;
        leaf_lent[i] = false;
        if (!edge_used(n, i)) continue;
        nb_node *c = n->next[i].node;
        if (!c->variable || st->n_capture != 0 || c->deps != 1 || c->out[0].buffer) continue;
        /*
         * Only a .grad nobody else holds or shares storage with: one that is also the
         * incoming gradient, a saved tensor or the leaf itself (a .grad set to a view of it)
         * would be read after it was written.
         */
        nb__autograd *ag = nb__ag(c->variable);
        if (ag->grad && ag->requires_grad && zeroed(ag->grad) && exclusive(ag->grad)) {
            gx[i] = ag->grad;
            leaf_lent[i] = true;
        }
    }
}

/* A leaf's AccumulateGrad node: its one buffer goes into the leaf's .grad (or, in nb_grad,
 * only to the captures). */
static nb_status run_accumulator(run_state *st, nb_node *n)
{
    nb_status rc = NB_OK;
    nb_tensor *g = n->out[0].buffer;
    n->out[0].buffer = NULL;
    if (!g) return NB_OK;
    for (int i = 0; i < st->n_capture && rc == NB_OK; i++) {
        if (st->capture_node[i] != n || st->capture_out[i]) continue;
        if (!(st->capture_out[i] = nb_clone(g))) rc = nb__oom(engine_fn);
    }
    if (rc == NB_OK && st->n_capture == 0) rc = accumulate_leaf(n->variable, g);
    nb__release(g);
    return rc;
}

/*
 * Run the backward of n on the gradients summed into its outputs' buffers, hand each input's
 * gradient on, and queue the next nodes that became ready. gy, gx and leaf_lent have room for
 * n's outputs and inputs.
 */
static nb_status node_step(run_state *st, nb_node *n, nb_tensor **gy, nb_tensor **gx,
                           bool *leaf_lent)
{
    nb_status rc = NB_OK;
    int n_out = n->num_outputs, n_in = n->num_inputs;
    bool any = false;
    for (int j = 0; j < n_out; j++) {
        gy[j] = n->out[j].buffer;
        n->out[j].buffer = NULL;
        any = any || gy[j];
    }
    for (int i = 0; i < st->n_capture && rc == NB_OK; i++) {
        nb_tensor *g = st->capture_node[i] == n ? gy[st->capture_nr[i]] : NULL;
        if (!g || st->capture_out[i]) continue;
        if (!(st->capture_out[i] = nb_clone(g))) rc = nb__oom(engine_fn);
    }
    /* a node that nb_grad only captures does not run, so its retained grads stay as they are */
    bool will_run = any && (st->n_capture == 0 || leads_to_target(n));
    for (int j = 0; will_run && n->has_retained && j < n_out && rc == NB_OK; j++) {
        nb_tensor *r = n->out[j].retained;
        if (!r || !gy[j]) continue;
        nb_tensor *copy = nb_clone(gy[j]);
        rc = copy ? accumulate(&nb__ag(r)->grad, copy) : nb__oom(engine_fn);
    }
    bool ran = rc == NB_OK && will_run;
    if (ran) {
        lend(st, n, gx, leaf_lent);
        rc = n->op->backward(n, gy, gx);
    }
    for (int i = 0; i < n_in; i++) {
        nb_node *c = n->next[i].node;
        if (!c) continue;
        if (ran && gx[i]) {
            if (leaf_lent[i]) /* written in place into the leaf's .grad */
                gx[i]->storage->version++;
            else if (rc == NB_OK && edge_used(n, i))
                rc = accumulate(&c->out[n->next[i].input_nr].buffer, gx[i]);
            else
                nb__release(gx[i]);
        }
        if (rc == NB_OK && --c->deps == 0) rc = push_ready(st, c);
    }
    if (ran && !st->retain_graph) nb__node_release_saved(n);
    for (int j = 0; j < n_out; j++) nb__release(gy[j]);
    return rc;
}

#define SMALL 8

static nb_status run_node(run_state *st, nb_node *n)
{
    if (n->variable) return run_accumulator(st, n);
    int n_out = n->num_outputs, n_in = n->num_inputs;
    if (n_out <= SMALL && n_in <= SMALL) {
        nb_tensor *gy[SMALL], *gx[SMALL];
        bool leaf_lent[SMALL];
        return node_step(st, n, gy, gx, leaf_lent);
    }
    nb_tensor **gy = nb__alloc((size_t)n_out * sizeof *gy, 16);
    nb_tensor **gx = nb__alloc((size_t)n_in * sizeof *gx, 16);
    bool *leaf_lent = nb__alloc((size_t)n_in * sizeof *leaf_lent, 16);
    nb_status rc = gy && gx && leaf_lent ? node_step(st, n, gy, gx, leaf_lent)
                                         : nb__oom(engine_fn); /* the buffers wait: dropped
                                                                  by the next run or the node */
    nb__free(gy);
    nb__free(gx);
    nb__free(leaf_lent);
    return rc;
}

static nb_status run(run_state *st, int n_roots, nb_node *const *roots, const int *root_nr,
                     nb_tensor *const *seeds)
{
    st->run = new_run_id();
    nb_status rc = count_deps(st, n_roots, roots);
    if (rc == NB_OK && st->n_capture > 0) rc = mark_needed(st, n_roots, roots);
    for (int r = 0; r < n_roots && rc == NB_OK; r++) {
        rc = accumulate(&roots[r]->out[root_nr[r]].buffer, nb_retain(seeds[r]));
        if (rc == NB_OK && roots[r]->deps == 0 && roots[r]->queued != st->run) {
            roots[r]->queued = st->run; /* a root listed twice is queued once */
            rc = push_ready(st, roots[r]);
        }
    }
    while (rc == NB_OK && st->ready.count > 0) rc = run_node(st, heap_pop(&st->ready));
    /* partial sums a failed run leaves (or, in nb_grad, nodes not needed) are dropped when
     * a later run visits their node, or with the node */
    vec_free(&st->ready);
    return rc;
}

/*
 * The seed for a given grad: grad itself, or, when grad is part of a graph (the root itself,
 * say), an alias of its storage that is not. A run that fails leaves its seed in the root's
 * buffer until the next run or the node's end, and the graph must not hold itself alive
 * through it.
 */
static nb_tensor *seed_of(const nb_tensor *grad)
{
    if (!nb__grad_fn(grad)) return nb_retain(nb__unconst(grad));
    nb_scope *token = nb__scope_suspend();
    nb_tensor *alias =
        nb__new_view(engine_fn, grad->storage, grad->offset, grad->ndim, grad->shape);
    nb__scope_resume(token);
    return alias;
}

/* Check an output and make its seed gradient (a new reference) and its node (new ref). */
static nb_status prepare_root(nb_tensor *out, const nb_tensor *grad, int idx, nb_tensor **seed,
                              nb_node **node, int *nr)
{
    if (!nb__requires_grad(out))
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
        *seed = seed_of(grad);
        if (!*seed) return nb__oom(engine_fn);
    } else {
        if (out->numel != 1)
            return nb__error(NB_ESTATE, engine_fn,
                             "grad can be implicitly created only for scalar outputs");
        *seed = nb_ones_like(out);
        if (!*seed) return nb__oom(engine_fn);
    }
    nb__autograd *ag = nb__ag(out);
    if (ag->grad_fn) {
        *node = ag->grad_fn;
        *nr = ag->output_nr;
        (*node)->refcount++;
    } else {
        *node = nb__grad_accumulator(out);
        *nr = 0;
    }
    if (!*node) {
        nb__release(*seed);
        return nb__oom(engine_fn);
    }
    return NB_OK;
}

nb_status nb_backward(nb_tensor *root, const nb_tensor *grad, bool retain_graph)
{
    if (root && !grad && nb__pending()) return nb__pending();
    nb_grad_options o = {retain_graph, false};
    return nb_grad(&root, 1, NULL, 0, grad ? &grad : NULL, &o, NULL);
}

#define MAX_ENDS 64

nb_status nb_grad(nb_tensor *const *outputs, int n_outputs, nb_tensor *const *inputs, int n_inputs,
                  const nb_tensor *const *grad_outputs, const nb_grad_options *options,
                  nb_tensor **results)
{
    return nb__grad(results ? "nb_grad" : "nb_backward", outputs, n_outputs, inputs, n_inputs,
                    grad_outputs, options, results);
}

nb_status nb__grad(const char *fn, nb_tensor *const *outputs, int n_outputs,
                   nb_tensor *const *inputs, int n_inputs, const nb_tensor *const *grad_outputs,
                   const nb_grad_options *options, nb_tensor **results)
{
    nb_grad_options opt = options ? *options : (nb_grad_options){false, false};
    if (!outputs || n_outputs < 1) return nb__error(NB_EINVAL, fn, "no outputs to differentiate");
    for (int i = 0; i < n_outputs; i++)
        if (!outputs[i]) return nb__null(fn, results ? "outputs" : "root");
    if (results) {
        if (!inputs || n_inputs < 1) return nb__error(NB_EINVAL, fn, "no inputs given");
        for (int i = 0; i < n_inputs && i < MAX_ENDS; i++) results[i] = NULL;
        for (int i = 0; i < n_inputs; i++) {
            if (!inputs[i]) return nb__null(fn, "inputs");
            if (!nb__requires_grad(inputs[i]))
                return nb__error(NB_ESTATE, fn,
                                 "input %d of the differentiated inputs does not require grad", i);
        }
    }
    if (n_outputs > MAX_ENDS || n_inputs > MAX_ENDS || n_inputs < 0)
        return nb__error(NB_EINVAL, fn, "at most %d outputs and %d inputs", MAX_ENDS, MAX_ENDS);
    for (int i = 0; grad_outputs && i < n_outputs; i++)
        if (!grad_outputs[i] && nb__pending()) return nb__pending();

    const char *prev_fn = engine_fn;
    engine_fn = fn;
    nb_scope *token = nb__scope_suspend(); /* engine tensors belong to the graph, not scopes */
    /* Only the entries in use are written: roots[i] and seeds[i] for i < made, each holding a
     * reference; a prepare_root that fails keeps none. targets is read only with results,
     * after it is filled. */
    nb_node *roots[MAX_ENDS], *targets[MAX_ENDS];
    int root_nr[MAX_ENDS], target_nr[MAX_ENDS];
    nb_tensor *seeds[MAX_ENDS];
    nb_status rc = NB_OK;
    int made = 0;
    for (; made < n_outputs; made++) {
        const nb_tensor *g = grad_outputs ? grad_outputs[made] : NULL;
        rc = prepare_root(outputs[made], g, made, &seeds[made], &roots[made], &root_nr[made]);
        if (rc != NB_OK) break;
    }
    if (rc == NB_OK && results) {
        for (int i = 0; i < n_inputs; i++) {
            nb__autograd *ag = nb__ag(inputs[i]);
            targets[i] = ag->grad_fn ? ag->grad_fn : ag->grad_accumulator;
            target_nr[i] = ag->grad_fn ? ag->output_nr : 0;
        }
    }
    if (rc == NB_OK) {
        /* field by field: an initializer would also zero the vectors' inline storage */
        run_state st;
        st.retain_graph = opt.retain_graph;
        st.n_capture = results ? n_inputs : 0;
        st.capture_node = targets;
        st.capture_nr = target_nr;
        st.capture_out = results;
        vec_init(&st.ready);
        rc = run(&st, n_outputs, roots, root_nr, seeds);
    }
    if (rc == NB_OK && results && !opt.allow_unused) {
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
