/* The graph behind a tensor as Graphviz DOT: a picture of what backward will walk. */
#include <inttypes.h>
#include <string.h>

#include "core/internal.h"
#include "nabla/io.h"

/* An open-addressing set of node pointers: graphs may be long (no quadratic lookups). */
typedef struct ptr_set {
    const void **slots;
    size_t cap, count;
} ptr_set;

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u;
    return (size_t)(h >> 17) & (cap - 1);
}

/* Insert p; 1 if new, 0 if present, -1 on OOM. */
static int set_add(ptr_set *s, const void *p)
{
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        const void **ns = nb__calloc(ncap * sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i]) continue;
            size_t j = ptr_hash(s->slots[i], ncap);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        nb__free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = ptr_hash(p, s->cap);
    while (s->slots[j]) {
        if (s->slots[j] == p) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = p;
    s->count++;
    return 1;
}

static const char *name_of(const nb_tensor *t, const nb_dot_options *o)
{
    for (int i = 0; o && i < o->n_names && o->tensors && o->names; i++)
        if (o->tensors[i] == t && o->names[i]) return o->names[i];
    return NULL;
}

static const nb_tensor *made_by(const nb_node *n, const nb_dot_options *o)
{
    for (int i = 0; o && i < o->n_names && o->tensors && o->names; i++)
        if (o->tensors[i] && o->names[i] && nb_tensor_grad_fn(o->tensors[i]) == n)
            return o->tensors[i];
    return NULL;
}

/* Write s escaped for a DOT string; newlines become left-justified line breaks. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n')
            fputs("\\l", f);
        else
            fputc(*s, f);
    }
}

/* "(5, 3)" as torchviz labels sizes. */
static void put_shape(FILE *f, const nb_tensor *t)
{
    fputc('(', f);
    for (int i = 0; i < t->ndim; i++) fprintf(f, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    fputc(')', f);
}

/* The node of tensor t. Errors: NB_ENOMEM for the text of its gradient (the node is still
 * written, without it). */
static nb_status put_tensor_node(FILE *f, const void *id, const nb_tensor *t, const char *color,
                                 const nb_dot_options *o)
{
    nb_status rc = NB_OK;
    const char *name = name_of(t, o);
    fprintf(f, "  \"%p\" [label=\"", id);
    if (name) {
        put_escaped(f, name);
        fputs("\\n", f);
    }
    put_shape(f, t);
    nb_tensor *grad = nb_tensor_is_leaf(t) ? nb_tensor_grad(nb__unconst(t)) : NULL;
    if (o && o->show_grads && grad) {
        int64_t len = nb_tensor_format(grad, NULL, 0);
        char *buf = len > 0 ? nb__alloc((size_t)len + 1, 16) : NULL;
        if (buf) {
            nb_tensor_format(grad, buf, (size_t)len + 1);
            fputs("\\ngrad:\\n", f);
            put_escaped(f, buf);
            fputs("\\l", f);
            nb__free(buf);
        } else if (len > 0) {
            rc = nb__oom("nb_graph_dot"); /* not a picture that silently lacks the gradient */
        }
    }
    fprintf(f, "\", fillcolor=%s]\n", color);
    return rc;
}

nb_status nb_graph_dot(const nb_tensor *t, FILE *f, const nb_dot_options *options)
{
    static const char fn[] = "nb_graph_dot";
    if (!t) return nb__null(fn, "t");
    if (!f) return nb__error(NB_EINVAL, fn, "argument 'f' is NULL");
    fputs("digraph nabla {\n  graph [rankdir=TB, fontname=\"Helvetica\"]\n"
          "  node [shape=box, style=\"filled,rounded\", fontname=\"Helvetica\", fontsize=11]\n",
          f);
    if (options && options->title) {
        fputs("  labelloc=t\n  label=\"", f);
        put_escaped(f, options->title);
        fputs("\"\n", f);
    }
    /* the root: green if it has a graph, blue if it is itself a leaf */
    nb_status rc =
        put_tensor_node(f, t, t, nb_tensor_grad_fn(t) ? "darkolivegreen1" : "lightblue", options);
    ptr_set seen = {0};
    nb_node **stack = NULL;
    size_t depth = 0, cap = 0;
    nb_node *first = nb_tensor_grad_fn(t);
    if (first && rc == NB_OK) {
        fprintf(f, "  \"%p\" -> \"%p\"\n", (const void *)t, (const void *)first);
        if (set_add(&seen, first) < 0 || !nb__grow((void **)&stack, sizeof *stack, &cap, 1))
            rc = nb__oom(fn);
        else
            stack[depth++] = first;
    }
    while (rc == NB_OK && depth > 0) {
        nb_node *n = stack[--depth];
        fprintf(f, "  \"%p\" [label=\"%s", (const void *)n, nb_node_name(n));
        const nb_tensor *made = made_by(n, options); /* a named tensor this node produced */
        if (made) {
            fputs("\\n= ", f);
            put_escaped(f, name_of(made, options));
            fputc(' ', f);
            put_shape(f, made);
        }
        fputs("\", fillcolor=lightgrey]\n", f);
        nb_tensor *leaf = nb_node_variable(n);
        if (leaf) { /* AccumulateGrad → its leaf */
            rc = put_tensor_node(f, leaf, leaf, "lightblue", options);
            fprintf(f, "  \"%p\" -> \"%p\"\n", (const void *)n, (const void *)leaf);
        }
        for (int i = 0; i < nb_node_num_next(n) && rc == NB_OK; i++) {
            nb_node *c = nb_node_next(n, i, NULL);
            if (!c) continue;
            fprintf(f, "  \"%p\" -> \"%p\"\n", (const void *)n, (const void *)c);
            int added = set_add(&seen, c);
            if (added < 0 || (added && !nb__grow((void **)&stack, sizeof *stack, &cap, depth + 1)))
                rc = nb__oom(fn);
            else if (added)
                stack[depth++] = c;
        }
    }
    nb__free(stack);
    nb__free(seen.slots);
    fputs("}\n", f);
    if (rc == NB_OK && ferror(f)) rc = nb__error(NB_EIO, fn, "write failed");
    return rc;
}
