/*
 * The notebook in C: the first autograd lesson (x·W + b, binary cross-entropy with logits,
 * grad_fn, backward, .grad, no_grad) cell by cell, printing what PyTorch prints.
 *
 *   nabla-seed [--seed N] [--graph-dir DIR] [--no-graph]
 *
 * With the same seed the output is the notebook's (tests/data/seed_transcript_N.txt), but for
 * object addresses. The graph is written as seed_graph.dot (and seed_graph_grads.dot after
 * backward), and rendered to PNG when Graphviz's `dot` is installed. Exit status 1 when a
 * graph could not be written (the transcript is printed whole all the same), 2 for bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

#include "trainer.h"

/* print(value) of a Python float: the shortest text that reads back as the same double. */
static void print_python_float(double v)
{
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eni")) strcat(buf, ".0");
    printf("%s\n", buf);
}

/* print(tensor.grad): the tensor, or None. */
static void print_or_none(const nb_tensor *t)
{
    if (t)
        nb_print(t);
    else
        printf("None\n");
}

static void print_bool(bool b)
{
    printf("%s\n", b ? "True" : "False");
}

/* Write the graph behind root to DIR/NAME.dot, and NAME.png when dot is available; false
 * (after one line on stderr) when the file could not be written. */
static bool write_graph(const char *dir, const char *name, const nb_tensor *root,
                        nb_tensor *const *tensors, const char *const *names, int n, bool grads)
{
    char dot_path[1024], cmd[2600];
    if (snprintf(dot_path, sizeof dot_path, "%s/%s.dot", dir, name) >= (int)sizeof dot_path) {
        fprintf(stderr, "nabla-seed: --graph-dir is too long\n");
        return false;
    }
    FILE *f = fopen(dot_path, "w");
    if (!f) {
        fprintf(stderr, "nabla-seed: cannot write %s: %s\n", dot_path, strerror(errno));
        return false;
    }
    nb_dot_options opt = {.show_grads = grads,
                          .title = grads ? "after backward" : "before backward",
                          .tensors = tensors,
                          .names = names,
                          .n_names = n};
    nb_status st = nb_graph_dot(root, f, &opt);
    if (fclose(f) != 0 && st == NB_OK) {
        fprintf(stderr, "nabla-seed: cannot write %s: %s\n", dot_path, strerror(errno));
        return false;
    }
    if (st != NB_OK) {
        fprintf(stderr, "nabla-seed: %s\n", nb_last_error()->message);
        return false;
    }
    if (system("command -v dot >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "dot -Tpng '%s' -o '%s/%s.png'", dot_path, dir, name);
        if (system(cmd) != 0) {
            fprintf(stderr, "nabla-seed: dot failed on %s\n", dot_path);
            return false;
        }
    }
    return true;
}

static int usage(void)
{
    fprintf(stderr, "usage: nabla-seed [--seed N] [--graph-dir DIR] [--no-graph]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0;
    const char *dir = ".";
    bool graph = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (!trainer_parse_seed(argv[++i], &seed)) {
                fprintf(stderr, "nabla-seed: bad value for --seed: '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--graph-dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--no-graph")) {
            graph = false;
        } else {
            return usage();
        }
    }

    nb_manual_seed(seed);
    nb_scope *cell = nb_scope_begin(); /* everything below is released at the end */

    printf("# [1] x = ones(5); y = ones(3); w = randn(5, 3) and b = randn(3) require grad\n");
    nb_tensor *x = nb_ones(NB_SHAPE(5));
    nb_tensor *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_print(x);
    nb_shape_print(nb_tensor_size(x), stdout);
    nb_shape_print(nb_tensor_size(y), stdout);
    nb_shape_print(nb_tensor_size(w), stdout);
    nb_shape_print(nb_tensor_size(nb_t(x)), stdout); /* x.T of a 1-D tensor is x */
    nb_print(w);
    nb_print(b);

    printf("# [2] z = matmul(x, w) + b; loss = binary_cross_entropy_with_logits(z, y)\n");
    nb_tensor *z = nb_add(nb_matmul(x, w), b);
    nb_print(z);
    nb_shape_print(nb_tensor_size(z), stdout);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, y, NULL, NULL, NB_MEAN);
    float item;
    if (nb_tensor_item(loss, &item) != NB_OK) { /* checks the whole chain above */
        fprintf(stderr, "nabla-seed: %s\n", nb_last_error()->message);
        nb_scope_end(cell);
        return 1;
    }
    print_python_float((double)item);

    printf("# [3] z.grad_fn; w.grad before backward\n");
    nb_node_print(nb_tensor_grad_fn(z), stdout);
    print_or_none(nb_tensor_grad(w));
    nb_tensor *named[] = {x, y, w, b, z, loss};
    const char *names[] = {"x", "y", "w", "b", "z", "loss"};
    bool graphs_ok = !graph || write_graph(dir, "seed_graph", loss, named, names, 6, false);

    printf("# [4] loss.backward(); w.grad, b.grad, z.grad\n");
    if (nb_backward(loss, NULL, false) != NB_OK) {
        fprintf(stderr, "nabla-seed: %s\n", nb_last_error()->message);
        nb_scope_end(cell);
        return 1;
    }
    print_or_none(nb_tensor_grad(w));
    print_or_none(nb_tensor_grad(b));
    print_or_none(nb_tensor_grad(z)); /* not a leaf: None, and a warning on stderr */
    if (graph && !write_graph(dir, "seed_graph_grads", loss, named, names, 6, true))
        graphs_ok = false;

    printf("# [5] requires_grad of z, under no_grad, and of z.detach()\n");
    z = nb_add(nb_matmul(x, w), b);
    print_bool(nb_tensor_requires_grad(z));
    NB_NO_GRAD
    {
        z = nb_add(nb_matmul(x, w), b);
    }
    print_bool(nb_tensor_requires_grad(z));
    z = nb_add(nb_matmul(x, w), b);
    print_bool(nb_tensor_requires_grad(nb_detach(z)));

    nb_scope_end(cell);
    return graphs_ok ? 0 : 1; /* the transcript is whole either way */
}
