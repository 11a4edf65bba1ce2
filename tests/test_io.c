/*
 * The DOT writer (nb_graph_dot): the text it writes for the notebook's graph (nodes, names,
 * shapes, edges, title, gradients), leaf and grad-less roots, shared subgraphs written once,
 * long chains without recursion, escaping, and its errors: NULL arguments, write failures
 * and out-of-memory at every allocation, without leaks. When Graphviz is installed the
 * output is also rendered with `dot -Tsvg` to check that it is valid DOT.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* ---- helpers --------------------------------------------------------------------------- */

/* Everything written to f so far, NUL-terminated (malloc'd: free() it). */
static char *read_all(FILE *f)
{
    assert_int_equal(fflush(f), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    size_t got = fread(text, 1, (size_t)n, f);
    assert_int_equal(got, (size_t)n);
    text[n] = '\0';
    return text;
}

/* nb_graph_dot(t, tmpfile, o) must give want; returns the text (free() it). */
static char *dot_text(const nb_tensor *t, const nb_dot_options *o, nb_status want)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    nb_status st = nb_graph_dot(t, f, o);
    if (st != want)
        fail_msg("nb_graph_dot returned %s, want %s (%s)", nb_status_name(st), nb_status_name(want),
                 nb_last_error()->message);
    char *text = read_all(f);
    fclose(f);
    return text;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = strstr(text, needle); p; p = strstr(p + len, needle)) n++;
    return n;
}

/* Nodes are the lines with an attribute list that starts with a label. */
static int count_nodes(const char *text)
{
    return count(text, " [label=\"");
}

static int count_edges(const char *text)
{
    return count(text, " -> ");
}

/* A node whose label starts with prefix (an op name, or a tensor's label). */
static int count_labels(const char *text, const char *prefix)
{
    char needle[256];
    snprintf(needle, sizeof needle, "[label=\"%s", prefix);
    return count(text, needle);
}

/* The whole text is one digraph, every line ends in a newline, and on every line the quotes
 * that are not escaped pair up (names with quotes and backslashes are escaped). */
static void assert_well_formed(const char *text)
{
    size_t len = strlen(text);
    assert_true(len > 2);
    if (strncmp(text, "digraph", 7) != 0) fail_msg("does not start with digraph: %.40s", text);
    if (strcmp(text + len - 2, "}\n") != 0) fail_msg("does not end with }\\n");
    assert_int_equal(count(text, "digraph"), 1);
    int line = 1, quotes = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\\') {
            if (!p[1] || p[1] == '\n') fail_msg("line %d ends in a backslash", line);
            p++; /* the escaped character */
        } else if (*p == '"') {
            quotes++;
        } else if (*p == '\n') {
            if (quotes % 2) fail_msg("line %d has %d unescaped quotes", line, quotes);
            quotes = 0;
            line++;
        }
    }
    assert_int_equal(quotes, 0);
}

/* Render text with Graphviz when it is installed: it must accept it. */
static void assert_renders(const char *text)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("[   SKIP   ] Graphviz `dot` is not installed: not rendering the graph\n");
        return;
    }
    char path[] = "/tmp/nabla_test_io_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o /dev/null", path);
    int rc = system(cmd);
    unlink(path);
    if (rc != 0) fail_msg("dot -Tsvg rejected the graph (status %d):\n%s", rc, text);
}

/* The text put_escaped gives: quotes and backslashes escaped, newlines as \l. */
static char *escape(const char *s)
{
    char *out = malloc(2 * strlen(s) + 1);
    assert_non_null(out);
    char *o = out;
    for (; *s; s++) {
        if (*s == '\n') {
            *o++ = '\\';
            *o++ = 'l';
            continue;
        }
        if (*s == '"' || *s == '\\') *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* The notebook's graph: z = x·w + b, loss = bce_with_logits(z, y). Owned by the open scope. */
typedef struct seed {
    nb_tensor *x, *y, *w, *b, *z, *loss;
    nb_tensor *tensors[6];
    const char *names[6];
} seed;

static void make_seed(seed *s)
{
    s->x = nb_ones(NB_SHAPE(5));
    s->y = nb_ones(NB_SHAPE(3));
    s->w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    s->b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    s->z = nb_add(nb_matmul(s->x, s->w), s->b);
    s->loss = nb_binary_cross_entropy_with_logits(s->z, s->y, NULL, NULL, NB_MEAN);
    assert_non_null(s->loss);
    nb_tensor *t[] = {s->x, s->y, s->w, s->b, s->z, s->loss};
    const char *n[] = {"x", "y", "w", "b", "z", "loss"};
    memcpy(s->tensors, t, sizeof t);
    memcpy(s->names, n, sizeof n);
}

static nb_dot_options seed_options(seed *s, bool show_grads, const char *title)
{
    return (nb_dot_options){.show_grads = show_grads,
                            .title = title,
                            .tensors = s->tensors,
                            .names = s->names,
                            .n_names = 6};
}

/* ---- the notebook's graph -------------------------------------------------------------- */

/* root → BCE → Add → {Matmul → AccumulateGrad(w) → w, AccumulateGrad(b) → b} */
#define SEED_EDGES 7

static void test_seed_graph(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    seed s;
    make_seed(&s);

    char *text = dot_text(s.loss, NULL, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count(text, "BCEWithLogitsBackward0"), 1);
    assert_int_equal(count(text, "AddBackward0"), 1);
    assert_int_equal(count(text, "MatmulBackward0"), 1);
    assert_int_equal(count(text, "AccumulateGrad"), 2);
    assert_int_equal(count_labels(text, "AccumulateGrad\""), 2);
    /* root, BCE, Add, Matmul, 2 × AccumulateGrad, w, b */
    assert_int_equal(count_nodes(text), 8);
    assert_int_equal(count_edges(text), SEED_EDGES);
    /* the leaves by shape; x (5) and y (3 but no grad) are not drawn */
    assert_int_equal(count_labels(text, "(5, 3)\""), 1);
    assert_int_equal(count_labels(text, "(3)\""), 1);
    assert_int_equal(count_labels(text, "(5)\""), 0);
    assert_int_equal(count_labels(text, "()\""), 1); /* the 0-d root */
    /* no title, no grads */
    assert_int_equal(count(text, "labelloc"), 0);
    assert_int_equal(count(text, "grad:"), 0);
    /* the root is green, the leaves blue */
    assert_int_equal(count(text, "fillcolor=darkolivegreen1"), 1);
    assert_int_equal(count(text, "fillcolor=lightblue"), 2);
    assert_renders(text);
    free(text);

    /* the same through empty options */
    nb_dot_options none = {0};
    text = dot_text(s.loss, &none, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count_nodes(text), 8);
    assert_int_equal(count_edges(text), SEED_EDGES);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_seed_graph_names(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    seed s;
    make_seed(&s);
    nb_dot_options o = seed_options(&s, false, "before backward");

    char *text = dot_text(s.loss, &o, NB_OK);
    assert_well_formed(text);
    /* leaves: name, a DOT line break (backslash n), the shape */
    assert_int_equal(count_labels(text, "w\\n(5, 3)\""), 1);
    assert_int_equal(count_labels(text, "b\\n(3)\""), 1);
    /* the root, and the nodes that made named tensors */
    assert_int_equal(count_labels(text, "loss\\n()\""), 1);
    assert_int_equal(count_labels(text, "BCEWithLogitsBackward0\\n= loss ()\""), 1);
    assert_int_equal(count_labels(text, "AddBackward0\\n= z (3)\""), 1);
    assert_int_equal(count_labels(text, "MatmulBackward0\""), 1);
    assert_int_equal(count(text, "BCEWithLogitsBackward0"), 1);
    assert_int_equal(count(text, "AddBackward0"), 1);
    assert_int_equal(count(text, "MatmulBackward0"), 1);
    assert_int_equal(count(text, "AccumulateGrad"), 2);
    assert_int_equal(count_nodes(text), 8);
    assert_int_equal(count_edges(text), SEED_EDGES);
    /* x and y do not require grad: not in the picture */
    assert_int_equal(count(text, "\"x"), 0);
    assert_int_equal(count(text, "\"y"), 0);
    assert_int_equal(count(text, "= x"), 0);
    assert_int_equal(count(text, "= y"), 0);
    /* the title */
    assert_int_equal(count(text, "labelloc=t"), 1);
    assert_int_equal(count(text, "label=\"before backward\""), 1);
    assert_int_equal(count(text, "grad:"), 0);
    assert_renders(text);
    free(text);

    /* names with n_names = 0 are ignored; so are NULL arrays */
    o.n_names = 0;
    text = dot_text(s.loss, &o, NB_OK);
    assert_int_equal(count(text, "w\\n"), 0);
    assert_int_equal(count_labels(text, "(5, 3)\""), 1);
    free(text);
    o = seed_options(&s, false, NULL);
    o.names = NULL;
    text = dot_text(s.loss, &o, NB_OK);
    assert_int_equal(count(text, "w\\n"), 0);
    assert_int_equal(count(text, "labelloc"), 0);
    assert_int_equal(count_edges(text), SEED_EDGES);
    free(text);

    /* a NULL name is no name: a later entry for the same tensor names it */
    nb_tensor *again[] = {s.z, s.z, s.w, s.w, s.loss};
    const char *some[] = {NULL, "z", NULL, "w", NULL};
    o = (nb_dot_options){.tensors = again, .names = some, .n_names = 5};
    text = dot_text(s.loss, &o, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count_labels(text, "AddBackward0\\n= z (3)\""), 1);
    assert_int_equal(count_labels(text, "w\\n(5, 3)\""), 1);
    assert_int_equal(count_labels(text, "()\""), 1); /* the root, unnamed */
    assert_int_equal(count_labels(text, "BCEWithLogitsBackward0\""), 1);
    assert_int_equal(count_nodes(text), 8);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_seed_graph_grads(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    seed s;
    make_seed(&s);
    nb_dot_options o = seed_options(&s, true, "after backward");

    /* before backward there are no grads to show */
    char *text = dot_text(s.loss, &o, NB_OK);
    assert_int_equal(count(text, "grad:"), 0);
    free(text);

    assert_int_equal(nb_backward(s.loss, NULL, false), NB_OK);
    nb_tensor *gw = nb_tensor_grad(s.w), *gb = nb_tensor_grad(s.b);
    assert_non_null(gw);
    assert_non_null(gb);

    text = dot_text(s.loss, &o, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count(text, "grad:"), 2);
    assert_int_equal(count_edges(text), SEED_EDGES); /* backward freed saved tensors only */
    assert_int_equal(count_nodes(text), 8);
    assert_int_equal(count(text, "label=\"after backward\""), 1);
    const nb_tensor *leaves[] = {gw, gb};
    const char *heads[] = {"w\\n(5, 3)", "b\\n(3)"};
    for (int i = 0; i < 2; i++) {
        char repr[4096];
        int64_t n = nb_tensor_format(leaves[i], repr, sizeof repr);
        assert_true(n > 0 && n < (int64_t)sizeof repr);
        assert_non_null(strstr(repr, "tensor("));
        char *esc = escape(repr);
        char want[8192];
        snprintf(want, sizeof want, "[label=\"%s\\ngrad:\\n%s\\l\", fillcolor=lightblue]", heads[i],
                 esc);
        if (count(text, want) != 1) fail_msg("no label\n%s\nin\n%s", want, text);
        free(esc);
    }
    assert_renders(text);
    free(text);

    /* show_grads false: no gradients even though they exist */
    o.show_grads = false;
    text = dot_text(s.loss, &o, NB_OK);
    assert_int_equal(count(text, "grad:"), 0);
    assert_int_equal(count_labels(text, "w\\n(5, 3)\""), 1);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* ---- roots without a graph ------------------------------------------------------------- */

static void test_leaf_root(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(2, 3)), true);
    nb_tensor *tensors[] = {w};
    const char *names[] = {"w"};
    nb_dot_options o = {.tensors = tensors, .names = names, .n_names = 1};
    char *text = dot_text(w, &o, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count_edges(text), 0);
    assert_int_equal(count_labels(text, "w\\n(2, 3)\", fillcolor=lightblue]"), 1);
    assert_int_equal(count(text, "AccumulateGrad"), 0);
    assert_renders(text);
    free(text);

    /* with its grad set by a backward through another graph */
    assert_int_equal(nb_backward(nb_sum(w, NB_DIMS_ALL, false), NULL, false), NB_OK);
    o.show_grads = true;
    text = dot_text(w, &o, NB_OK);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count_edges(text), 0);
    assert_int_equal(count(text, "grad:"), 1);
    assert_non_null(strstr(text, "tensor([[1., 1., 1.],\\l        [1., 1., 1.]])\\l"));
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_root_without_grad(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *t = nb_ones(NB_SHAPE(2, 2));
    char *text = dot_text(t, NULL, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count_edges(text), 0);
    assert_int_equal(count_labels(text, "(2, 2)\""), 1);
    free(text);

    /* a result computed without grad: one node too */
    NB_NO_GRAD
    {
        t = nb_mul_scalar(nb_requires_grad_(nb_ones(NB_SHAPE(4)), true), 2);
    }
    text = dot_text(t, NULL, NB_OK);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count_edges(text), 0);
    assert_int_equal(count_labels(text, "(4)\""), 1);
    free(text);

    /* a 0-d tensor */
    text = dot_text(nb_sum(nb_ones(NB_SHAPE(3)), NB_DIMS_ALL, false), NULL, NB_OK);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count_labels(text, "()\""), 1);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* ---- graph shapes ---------------------------------------------------------------------- */

static void test_shared_subgraph(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *x = nb_ones(NB_SHAPE(5));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *r = nb_add(nb_matmul(x, w), nb_matmul(x, w));
    assert_non_null(r);
    char *text = dot_text(r, NULL, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count(text, "AddBackward0"), 1);
    assert_int_equal(count(text, "MatmulBackward0"), 2);
    assert_int_equal(count(text, "AccumulateGrad"), 1);  /* w's node, reached twice */
    assert_int_equal(count_labels(text, "(5, 3)\""), 1); /* and w itself once */
    assert_int_equal(count_nodes(text), 6); /* root, Add, 2 × Matmul, AccumulateGrad, w */
    /* root → Add, Add → Matmul ×2, Matmul → AccumulateGrad ×2, AccumulateGrad → w */
    assert_int_equal(count_edges(text), 6);
    assert_renders(text);
    free(text);

    /* the same node on both sides of one op: two edges, one node */
    r = nb_add(w, w);
    text = dot_text(r, NULL, NB_OK);
    assert_int_equal(count(text, "AccumulateGrad"), 1);
    assert_int_equal(count_nodes(text), 4);
    assert_int_equal(count_edges(text), 4); /* root → Add, Add → Acc ×2, Acc → w */
    free(text);

    /* a diamond: a = w + 1 used by two branches that meet again */
    nb_tensor *a = nb_add_scalar(w, 1);
    r = nb_mul(nb_mul_scalar(a, 2), nb_add_scalar(a, 3));
    text = dot_text(r, NULL, NB_OK);
    assert_int_equal(count(text, "MulBackward0"), 2); /* the product, and a·2 */
    assert_int_equal(count(text, "AddBackward0"), 2); /* a's node once, the +3 once */
    assert_int_equal(count(text, "AccumulateGrad"), 1);
    /* root → Mul, Mul → Mul1, Mul → Add1(+3), Mul1 → a, Add1(+3) → a, a → Acc, Acc → w */
    assert_int_equal(count_edges(text), 7);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_long_chain(void **state)
{
    (void)state;
    enum { N = 20000 };
    nb_scope *sc = nb_scope_begin();
    nb_tensor *leaf = nb_requires_grad_(nb_zeros(NB_SHAPE(1)), true);
    nb_tensor *t = leaf;
    for (int i = 0; i < N; i++) t = nb_add_scalar(t, 1);
    assert_non_null(t);
    char *text = dot_text(t, NULL, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count(text, "AddBackward0"), N);
    assert_int_equal(count(text, "AccumulateGrad"), 1);
    assert_int_equal(count_nodes(text), N + 3); /* root, the adds, AccumulateGrad, leaf */
    assert_int_equal(count_edges(text), N + 2);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* ---- escaping -------------------------------------------------------------------------- */

static void test_escaping(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(2)), true);
    nb_tensor *z = nb_mul_scalar(w, 3);
    nb_tensor *loss = nb_sum(z, NB_DIMS_ALL, false);
    nb_tensor *tensors[] = {w, z, loss};
    const char *names[] = {"w\"1\"", "back\\slash\\", "say \"hi\"\nthen\\\"go"};
    nb_dot_options o = {
        .title = "a \"title\" with \\ and \"", .tensors = tensors, .names = names, .n_names = 3};
    char *text = dot_text(loss, &o, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count_labels(text, "w\\\"1\\\"\\n(2)\""), 1);
    assert_int_equal(count_labels(text, "MulBackward0\\n= back\\\\slash\\\\ (2)\""), 1);
    assert_int_equal(count_labels(text, "say \\\"hi\\\"\\lthen\\\\\\\"go\\n()\""), 1);
    assert_int_equal(count(text, "label=\"a \\\"title\\\" with \\\\ and \\\"\"\n"), 1);
    assert_int_equal(count_edges(text), 4);
    assert_renders(text);
    free(text);

    /* a backslash at the very end of the title must not escape the closing quote */
    o.title = "ends in \\";
    text = dot_text(loss, &o, NB_OK);
    assert_well_formed(text);
    assert_int_equal(count(text, "label=\"ends in \\\\\"\n"), 1);
    assert_renders(text);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_null_arguments(void **state)
{
    (void)state;
    nb_scope *sc = nb_scope_begin();
    FILE *f = tmpfile();
    assert_non_null(f);

    /* NULL t with no earlier error: NB_EINVAL, nothing written */
    nb_error_clear();
    assert_int_equal(nb_graph_dot(NULL, f, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_graph_dot: argument 't' is NULL");
    assert_int_equal(ftell(f), 0);

    /* NULL t from a failed op: that op's error is kept */
    nb_error_clear();
    nb_tensor *bad = nb_matmul(nb_ones(NB_SHAPE(2, 3)), nb_ones(NB_SHAPE(4, 5)));
    assert_null(bad);
    assert_int_equal(nb_graph_dot(bad, f, NULL), NB_ESHAPE);
    assert_error(NB_ESHAPE, "nb_matmul: size mismatch");
    assert_int_equal(ftell(f), 0);

    /* NULL f */
    nb_error_clear();
    nb_tensor *t = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    assert_int_equal(nb_graph_dot(t, NULL, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_graph_dot: argument 'f' is NULL");
    nb_dot_options o = {.show_grads = true, .title = "t"};
    assert_int_equal(nb_graph_dot(nb_mul_scalar(t, 2), NULL, &o), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_graph_dot: argument 'f' is NULL");

    fclose(f);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

static void test_write_failure(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        printf("[   SKIP   ] cannot open /dev/full: not testing write failures\n");
        return;
    }
    assert_int_equal(setvbuf(f, NULL, _IONBF, 0), 0);
    nb_scope *sc = nb_scope_begin();
    seed s;
    make_seed(&s);
    nb_error_clear();
    nb_dot_options o = seed_options(&s, false, "title");
    assert_int_equal(nb_graph_dot(s.loss, f, &o), NB_EIO);
    assert_error(NB_EIO, "nb_graph_dot: write failed");

    /* a leaf root (the shortest output) fails too */
    nb_error_clear();
    clearerr(f);
    assert_int_equal(nb_graph_dot(s.w, f, NULL), NB_EIO);
    assert_error(NB_EIO, "write failed");

    /* and after backward with grads shown */
    assert_int_equal(nb_backward(s.loss, NULL, false), NB_OK);
    nb_error_clear();
    clearerr(f);
    o.show_grads = true;
    assert_int_equal(nb_graph_dot(s.loss, f, &o), NB_EIO);
    assert_error(NB_EIO, "write failed");
    fclose(f);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

/*
 * Out of memory at every allocation the writer makes, on a graph that makes its node set and
 * its stack grow several times: a chain, then a fan of branches on both sides of the adds
 * (whichever order the writer visits inputs, the pending branches pile up on its stack).
 */
static void test_out_of_memory(void **state)
{
    (void)state;
    enum { CHAIN = 200, FAN = 200 };
    nb_scope *sc = nb_scope_begin();
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_tensor *t = w;
    for (int i = 0; i < CHAIN; i++) t = nb_add_scalar(t, 1);
    for (int i = 0; i < FAN; i++) {
        nb_tensor *branch = nb_mul_scalar(w, (float)i);
        t = i % 2 ? nb_add(t, branch) : nb_add(branch, t);
    }
    nb_tensor *loss = nb_sum(t, NB_DIMS_ALL, false);
    assert_int_equal(nb_backward(loss, NULL, true), NB_OK);
    nb_tensor *tensors[] = {w, t, loss};
    const char *names[] = {"w", "t", "loss"};

    for (int grads = 0; grads < 2; grads++) {
        nb_dot_options o = {
            .show_grads = grads, .title = "oom", .tensors = tensors, .names = names, .n_names = 3};
        int failures = 0;
        for (long k = 1;; k++) {
            FILE *f = tmpfile();
            assert_non_null(f);
            long live = nbt_alloc_live();
            nb_error_clear();
            nbt_fail_alloc_after(k);
            nb_status st = nb_graph_dot(loss, f, &o);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (nbt_alloc_live() != live)
                fail_msg("k = %ld: %ld blocks leaked", k, nbt_alloc_live() - live);
            char *text = read_all(f);
            fclose(f);
            assert_well_formed(text); /* even a failed run closes the graph */
            if (failed) {
                if (st != NB_ENOMEM)
                    fail_msg(
                        "k = %ld, show_grads %d: an allocation failed but nb_graph_dot returned %s",
                        k, grads, nb_status_name(st));
                assert_error(NB_ENOMEM, "nb_graph_dot: out of memory");
                failures++;
                free(text);
                continue;
            }
            /* no failure: the whole picture */
            assert_int_equal(st, NB_OK);
            assert_int_equal(nb_last_error()->code, NB_OK);
            assert_int_equal(count(text, "AddBackward0"), CHAIN + FAN);
            assert_int_equal(count(text, "MulBackward0"), FAN);
            assert_int_equal(count(text, "AccumulateGrad"), 1);
            assert_int_equal(count(text, "grad:"), grads);
            /* root→Sum, Sum→Add, each Add → its branch and the rest, each branch → Acc,
             * the chain, the chain's end → Acc, Acc → w */
            assert_int_equal(count_edges(text), 2 + 2 * FAN + FAN + CHAIN + 1);
            free(text);
            break;
        }
        /* the set and the stack grew: several allocations, each one failed once */
        assert_true(failures >= 4);
    }

    /* a leaf root with its gradient: the only allocation is the gradient's text */
    nb_dot_options o = {.show_grads = true};
    FILE *f = tmpfile();
    assert_non_null(f);
    long live = nbt_alloc_live();
    nb_error_clear();
    nbt_fail_alloc_after(1);
    assert_int_equal(nb_graph_dot(w, f, &o), NB_ENOMEM);
    assert_true(nbt_alloc_failed());
    nbt_fail_alloc_after(0);
    assert_error(NB_ENOMEM, "nb_graph_dot: out of memory");
    assert_int_equal(nbt_alloc_live(), live);
    char *text = read_all(f);
    assert_well_formed(text);
    assert_int_equal(count_nodes(text), 1);
    assert_int_equal(count(text, "grad:"), 0);
    free(text);
    fclose(f);
    text = dot_text(w, &o, NB_OK);
    assert_int_equal(count(text, "grad:"), 1);
    free(text);
    assert_int_equal(nb_scope_end(sc), NB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_graph, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_seed_graph_names, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_seed_graph_grads, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_leaf_root, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_root_without_grad, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_shared_subgraph, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_long_chain, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_escaping, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_null_arguments, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_write_failure, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_out_of_memory, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
