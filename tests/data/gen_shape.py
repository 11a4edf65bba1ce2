#!/usr/bin/python3
"""Generate tests/data/shape_ref.h: PyTorch 1.13 reference values for tests/test_ops_shape.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_shape.py`.

For each case: the inputs, the outputs of the op (torch.cat, stack, Tensor.expand, repeat,
torch.flip, narrow, index_select, gather, scatter_add, F.embedding, torch.split, chunk) and
the gradients of the differentiable inputs for given output gradients, from
torch.autograd.grad (an output given no gradient is left out, as an unused piece of a
split). Inputs and output gradients hold 0, -0, +-inf, nan and +-1e4 among normal values, so
that copies are seen to keep them. Indices and ids are written as floats, as nabla takes
them. One gradient is not PyTorch's own: for scatter_add with src larger than index,
PyTorch's backward fails ("invalid gradient"), and the reference is what its formula
grad.gather(dim, index) gives, put into zeros of src's shape (the case says so).

Every float is a C hex-float literal of its float32 value (NAN and INFINITY from math.h).
"""
import math
import os

import torch
import torch.nn.functional as F

MAXD = 5    # dims per tensor
MAXIN = 6   # inputs per case
MAXOUT = 4  # outputs per case
OPS = ("CAT", "STACK", "EXPAND", "REPEAT", "FLIP", "NARROW", "INDEX_SELECT", "GATHER",
       "SCATTER_ADD", "EMBEDDING", "SPLIT", "CHUNK")
NO_PADDING = "INT64_MIN"
SPECIALS = (0.0, -0.0, math.inf, -math.inf, math.nan, 1e4, -1e4)


def hexf(v):
    v = float(v)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    if v == 0.0:
        return "-0.0f" if math.copysign(1.0, v) < 0 else "0.0f"
    mant, exp = v.hex().split("p")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}f"


gen = torch.Generator().manual_seed(0)


def values(*shape, special=True):
    """A float32 tensor of normal values with the special values spread over it."""
    t = torch.randn(shape, generator=gen)
    flat = t.view(-1)
    if special:
        for i in range(0, flat.numel(), 3):
            flat[i] = SPECIALS[(i // 3) % len(SPECIALS)]
    return t


def plain(*shape):
    return values(*shape, special=False)


def idx(v):
    return torch.tensor(v, dtype=torch.long)


class Case:
    def __init__(self, name, op, dim=0, args=(), exact=True):
        self.name, self.op, self.dim, self.args, self.exact = name, op, dim, list(args), exact
        self.inputs = []   # (tensor, differentiable)
        self.outs = []
        self.gouts = []    # a tensor, or None for no gradient
        self.gins = []     # per input: a tensor, or None
        self.note = None
        self.node = None   # PyTorch's grad_fn name of the (first) output


def run(case, fn, inputs, grads=None):
    """inputs: [(tensor, differentiable)]; fn(*leaves) returns a tensor or a tuple."""
    leaves = []
    for t, d in inputs:
        if t.dtype == torch.long:
            leaves.append(t)
        else:
            leaves.append(t.detach().clone().requires_grad_(d))
    out = fn(*leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if grads is None:
        grads = [values(*o.shape) for o in outs]
    diff = [l for l, (t, d) in zip(leaves, inputs) if d]
    used = [(o, g) for o, g in zip(outs, grads) if g is not None]
    got = torch.autograd.grad([o for o, _ in used], diff, [g for _, g in used]) if diff else []
    it = iter(got)
    case.inputs = [(t if t.dtype != torch.long else t.to(torch.float32), d) for t, d in inputs]
    case.outs = [o.detach() for o in outs]
    case.node = outs[0].grad_fn.name()
    case.gouts = grads
    case.gins = [next(it) if d else None for _, d in inputs]
    return case


def cases():
    c = []
    # ---- cat: any number of tensors, PyTorch's rules for empty ones
    c.append(run(Case("cat dim 0, three tensors", "CAT", 0), lambda a, b, d: torch.cat([a, b, d], 0),
                 [(values(2, 3), True), (values(1, 3), True), (values(4, 3), True)]))
    c.append(run(Case("cat dim -1, a constant in the middle", "CAT", -1),
                 lambda a, b, d: torch.cat([a, b, d], -1),
                 [(values(2, 3), True), (values(2, 1), False), (values(2, 2), True)]))
    c.append(run(Case("cat dim 1 of 3-D, five tensors", "CAT", 1),
                 lambda *t: torch.cat(t, 1),
                 [(values(2, k, 2), True) for k in (1, 3, 2, 1, 2)]))
    c.append(run(Case("cat dim 1 with an empty [2, 0, 3]", "CAT", 1),
                 lambda a, b: torch.cat([a, b], 1),
                 [(values(2, 0, 3), True), (values(2, 2, 3), True)]))
    c.append(run(Case("cat dim 1 skipping [0] tensors", "CAT", 1),
                 lambda a, b, d, e: torch.cat([a, b, d, e], 1),
                 [(values(0), True), (values(2, 3), True), (values(0), True), (values(2, 2), True)]))
    c.append(run(Case("cat of one tensor", "CAT", 0), lambda a: torch.cat([a], 0),
                 [(values(3, 2), True)]))
    c.append(run(Case("cat of [0] tensors only, dim 3 unchecked", "CAT", 3),
                 lambda a, b: torch.cat([a, b], 3), [(values(0), True), (values(0), True)]))
    # ---- stack
    c.append(run(Case("stack dim 0", "STACK", 0), lambda a, b, d: torch.stack([a, b, d], 0),
                 [(values(2, 3), True), (values(2, 3), False), (values(2, 3), True)]))
    c.append(run(Case("stack dim 1", "STACK", 1), lambda a, b: torch.stack([a, b], 1),
                 [(values(2, 3), True), (values(2, 3), True)]))
    c.append(run(Case("stack dim -1", "STACK", -1), lambda a, b, d: torch.stack([a, b, d], -1),
                 [(values(2, 3), True), (values(2, 3), True), (values(2, 3), True)]))
    c.append(run(Case("stack 0-d", "STACK", 0), lambda a, b, d: torch.stack([a, b, d], 0),
                 [(values(), True), (torch.tensor(-0.0), True), (values(), True)]))
    c.append(run(Case("stack empty [0, 2]", "STACK", 1), lambda a, b: torch.stack([a, b], 1),
                 [(values(0, 2), True), (values(0, 2), True)]))
    # ---- expand (gradients are sums over the expanded dims)
    for name, shape, sizes in (("[1, 3] to [4, 3]", (1, 3), (4, 3)),
                               ("[3, 1] to [-1, 4]", (3, 1), (-1, 4)),
                               ("[3] to [2, 2, 3]", (3,), (2, 2, 3)),
                               ("[2, 1, 1] to [-1, 3, 2]", (2, 1, 1), (-1, 3, 2)),
                               ("0-d to [2, 3]", (), (2, 3)),
                               ("[1, 3] to [1, 3], nothing repeated", (1, 3), (1, 3)),
                               ("[3] to [1, 3], nothing repeated", (3,), (1, 3)),
                               ("[1, 3] to [0, 3]", (1, 3), (0, 3)),
                               ("[2, 1] to [3, 2, 0]", (2, 1), (3, 2, 0))):
        try:
            c.append(run(Case("expand " + name, "EXPAND", 0, sizes),
                         lambda a, s=sizes: a.expand(*s), [(values(*shape), True)]))
        except RuntimeError as e:
            raise SystemExit(f"expand {name}: {e}")
    # ---- repeat (gradients: sums of the tiles, which PyTorch adds in another order)
    for name, shape, reps in (("[2, 3] by (2, 2)", (2, 3), (2, 2)),
                              ("[3] by (2, 1, 2)", (3,), (2, 1, 2)),
                              ("[2, 3] by (1, 1)", (2, 3), (1, 1)),
                              ("[1, 2] by (1, 1, 1)", (1, 2), (1, 1, 1)),
                              ("0-d by (3,)", (), (3,)),
                              ("0-d by ()", (), ()),
                              ("[2, 3] by (0, 2)", (2, 3), (0, 2)),
                              ("[2, 1, 3] by (1, 3, 1, 2)", (2, 1, 3), (1, 3, 1, 2))):
        c.append(run(Case("repeat " + name, "REPEAT", 0, reps, exact=False),
                     lambda a, r=reps: a.repeat(r), [(values(*shape), True)]))
    # ---- flip
    for name, shape, dims in (("[2, 3, 4] dim 0", (2, 3, 4), (0,)),
                              ("[2, 3, 4] dims 0, 2", (2, 3, 4), (0, 2)),
                              ("[2, 3, 4] dim -1", (2, 3, 4), (-1,)),
                              ("[2, 3, 4] every dim", (2, 3, 4), (0, 1, 2)),
                              ("[2, 3, 4] no dims", (2, 3, 4), ()),
                              ("[5] dim 0", (5,), (0,)),
                              ("0-d dim 0", (), (0,)),
                              ("[3, 0] dim 1", (3, 0), (1,))):
        c.append(run(Case("flip " + name, "FLIP", 0, dims),
                     lambda a, d=dims: torch.flip(a, d), [(values(*shape), True)]))
    # ---- narrow (SliceBackward0)
    for name, shape, dim, start, length in (("[4, 3] dim 0 from 1, 2", (4, 3), 0, 1, 2),
                                            ("[4, 3] dim 1 from -2, 2", (4, 3), 1, -2, 2),
                                            ("[4, 3] dim -1 from 3, 0", (4, 3), -1, 3, 0),
                                            ("[2, 5, 2] dim 1 from 0, 5", (2, 5, 2), 1, 0, 5),
                                            ("[2, 5, 2] dim 1 from -4, 1", (2, 5, 2), 1, -4, 1),
                                            ("[0, 2] dim 0 from -1, 0", (0, 2), 0, -1, 0)):
        c.append(run(Case("narrow " + name, "NARROW", dim, (start, length)),
                     lambda a, d=dim, s=start, n=length: a.narrow(d, s, n),
                     [(values(*shape), True)]))
    # ---- index_select (repeated indices add up)
    for name, shape, dim, index in (("[3, 4] dim 0 [2, 0, 2]", (3, 4), 0, [2, 0, 2]),
                                    ("[3, 4] dim 1 [3, 0]", (3, 4), 1, [3, 0]),
                                    ("[3, 4] dim -1, 0-d index 2", (3, 4), -1, 2),
                                    ("[3, 4] dim 0, empty index", (3, 4), 0, []),
                                    ("[2, 3, 2] dim 1 [1, 1, 0, 2, 1]", (2, 3, 2), 1,
                                     [1, 1, 0, 2, 1]),
                                    ("0-d, index [0]", (), 0, [0])):
        c.append(run(Case("index_select " + name, "INDEX_SELECT", dim),
                     lambda a, i, d=dim: torch.index_select(a, d, i),
                     [(values(*shape), True), (idx(index), False)]))
    # ---- gather
    for name, shape, dim, index in (
            ("[3, 4] dim 1, index [2, 2]", (3, 4), 1, [[0, 3], [1, 1]]),
            ("[3, 4] dim 0, index [2, 4] with repeats", (3, 4), 0, [[2, 0, 1, 1], [2, 2, 0, 1]]),
            ("[3, 4] dim 1, index wider than x [3, 6]", (3, 4), 1,
             [[0, 1, 2, 3, 0, 0], [3, 3, 3, 1, 2, 0], [1, 0, 1, 0, 1, 0]]),
            ("[2, 3, 4] dim -1", (2, 3, 4), -1,
             [[[3, 0], [1, 1], [2, 3]], [[0, 0], [3, 2], [1, 2]]]),
            ("[2, 3, 4] dim 1, index [2, 2, 3]", (2, 3, 4), 1,
             [[[2, 0, 1], [1, 1, 0]], [[0, 2, 2], [1, 0, 1]]]),
            ("[3, 4] dim 1, empty index [0, 2]", (3, 4), 1, torch.zeros(0, 2, dtype=torch.long)),
            ("0-d, index [0, 0]", (), 0, [0, 0]),
            ("[4] dim 0, 0-d index", (4,), 0, 3)):
        i = index if isinstance(index, torch.Tensor) else idx(index)
        c.append(run(Case("gather " + name, "GATHER", dim),
                     lambda a, i, d=dim: torch.gather(a, d, i),
                     [(values(*shape), True), (i, False)]))
    # ---- scatter_add (inputs x, index, src; sums where positions repeat)
    for name, xs, dim, index, ss, gx, gs in (
            ("[3, 4] dim 0, index [2, 4]", (3, 4), 0, [[0, 1, 2, 0], [2, 2, 2, 2]], (2, 4), True,
             True),
            ("[3, 4] dim 1, x only", (3, 4), 1, [[3, 3], [0, 1], [2, 2]], (3, 2), True, False),
            ("[3, 4] dim -1, src only", (3, 4), -1, [[1, 1, 1], [0, 2, 3]], (2, 3), False, True),
            ("[2, 3, 2] dim 1", (2, 3, 2), 1, [[[0, 2], [2, 2]], [[1, 1], [0, 0]]], (2, 2, 2),
             True, True),
            ("0-d, index [0, 0]", (), 0, [0, 0], (2,), True, True),
            # src's gradient would be [0, 4], which PyTorch's backward refuses
            ("[3, 4] dim 0, empty index", (3, 4), 0, torch.zeros(0, 4, dtype=torch.long), (2, 4),
             True, False)):
        i = index if isinstance(index, torch.Tensor) else idx(index)
        c.append(run(Case("scatter_add " + name, "SCATTER_ADD", dim),
                     lambda a, i, s, d=dim: torch.scatter_add(a, d, i, s),
                     [(values(*xs), gx), (i, False), (values(*ss), gs)]))
    c.append(scatter_add_src_larger())
    # ---- embedding
    for name, rows, ids, pad in (("[5, 3], ids [4]", 5, [1, 4, 1, 0], None),
                                 ("padding_idx 1", 5, [1, 4, 1, 0], 1),
                                 ("padding_idx -1 (the last row)", 5, [1, 4, 1, 4], -1),
                                 ("ids [2, 3]", 5, [[0, 2, 2], [4, 3, 0]], 3),
                                 ("0-d ids", 5, 2, None),
                                 ("empty ids [0]", 5, [], 0),
                                 ("ids [2, 1, 2]", 4, [[[3, 3]], [[0, 1]]], None)):
        c.append(run(Case("embedding " + name, "EMBEDDING", 0,
                          (NO_PADDING if pad is None else pad,)),
                     lambda w, i, p=pad: F.embedding(i, w, padding_idx=p),
                     [(values(rows, 3), True), (idx(ids), False)]))
    # ---- split and chunk: several outputs, some given no gradient
    c.append(run(Case("split [5, 3] by 2 dim 0, last piece unused", "SPLIT", 0, (2,)),
                 lambda a: torch.split(a, 2, 0), [(values(5, 3), True)],
                 grads=[values(2, 3), values(2, 3), None]))
    c.append(run(Case("split [3, 5] by 2 dim -1", "SPLIT", -1, (2,)),
                 lambda a: torch.split(a, 2, -1), [(values(3, 5), True)]))
    c.append(run(Case("split [3, 5] by 2 dim 1, first piece unused", "SPLIT", 1, (2,)),
                 lambda a: torch.split(a, 2, 1), [(values(3, 5), True)],
                 grads=[None, values(3, 2), values(3, 1)]))
    c.append(run(Case("split [2, 3] by 7 dim 1: one piece", "SPLIT", 1, (7,)),
                 lambda a: torch.split(a, 7, 1), [(values(2, 3), True)]))
    c.append(run(Case("split [0, 3] by 2 dim 0: one empty piece", "SPLIT", 0, (2,)),
                 lambda a: torch.split(a, 2, 0), [(values(0, 3), True)]))
    c.append(run(Case("chunk [2, 5, 3] in 3 dim 1", "CHUNK", 1, (3,)),
                 lambda a: torch.chunk(a, 3, 1), [(values(2, 5, 3), True)]))
    c.append(run(Case("chunk [6] in 4: three pieces", "CHUNK", 0, (4,)),
                 lambda a: torch.chunk(a, 4, 0), [(values(6), True)]))
    c.append(run(Case("chunk [4, 2] in 2 dim 0, second unused", "CHUNK", 0, (2,)),
                 lambda a: torch.chunk(a, 2, 0), [(values(4, 2), True)],
                 grads=[values(2, 2), None]))
    c.append(run(Case("chunk [3, 4] in 2 dim -1", "CHUNK", -1, (2,)),
                 lambda a: torch.chunk(a, 2, -1), [(values(3, 4), True)]))
    c.append(run(Case("chunk [0, 3] in 3 dim 0: three empty pieces", "CHUNK", 0, (3,)),
                 lambda a: torch.chunk(a, 3, 0), [(values(0, 3), True)]))
    c.append(run(Case("chunk [2, 0] in 2 dim 1: two empty pieces", "CHUNK", 1, (2,)),
                 lambda a: torch.chunk(a, 2, 1), [(values(2, 0), True)]))
    return c


def scatter_add_src_larger():
    """src [3, 5] larger than index [2, 3]: PyTorch's own backward refuses it."""
    x, src = values(3, 4), values(3, 5)
    index = idx([[0, 1, 2], [2, 2, 0]])
    case = Case("scatter_add [3, 4] dim 0, src [3, 5] larger than index [2, 3]", "SCATTER_ADD",
                0)
    xl, sl = x.clone().requires_grad_(), src.clone().requires_grad_()
    out = torch.scatter_add(xl, 0, index, sl)
    g = values(3, 4)
    try:
        torch.autograd.grad(out, [xl, sl], g)
        raise SystemExit("PyTorch now differentiates scatter_add with src larger than index")
    except RuntimeError as e:
        assert "invalid gradient" in str(e), e
    gsrc = torch.zeros(3, 5)
    gsrc[:2, :3] = g.gather(0, index)
    case.inputs = [(x, True), (index.to(torch.float32), False), (src, True)]
    case.outs = [out.detach()]
    case.node = out.grad_fn.name()
    case.gouts = [g]
    case.gins = [g.clone(), None, gsrc]
    case.note = "src gradient: grad.gather(0, index) in zeros"
    return case


DATA = []


def data_ref(t):
    """The name of a static array holding t's values (NULL for an empty tensor)."""
    if t.numel() == 0:
        return "NULL"
    vals = [hexf(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]
    name = f"shape_ref_d{len(DATA)}"
    DATA.append(f"static const float {name}[] = {{{', '.join(vals)}}};")
    return name


def tensor_ref(t):
    if t is None:
        return "{-1, {0}, NULL}"
    assert t.dim() <= MAXD, t.shape
    dims = ", ".join(str(d) for d in t.shape) or "0"
    return f"{{{t.dim()}, {{{dims}}}, {data_ref(t)}}}"


def case_ref(k):
    assert len(k.inputs) <= MAXIN and len(k.outs) <= MAXOUT
    diff = sum(1 << i for i, (_, d) in enumerate(k.inputs) if d)
    args = ", ".join(str(a) for a in k.args) or "0"
    ins = ", ".join(tensor_ref(t) for t, _ in k.inputs)
    outs = ", ".join(tensor_ref(t) for t in k.outs)
    gouts = ", ".join(tensor_ref(t) for t in k.gouts)
    gins = ", ".join(tensor_ref(t) for t in k.gins)
    note = f" /* {k.note} */" if k.note else ""
    return (f"    {{\"{k.name}\", \"{k.node}\", SHAPE_REF_{k.op}, {k.dim}, {len(k.args)}, {{{args}}},\n"
            f"     {len(k.inputs)}, {{{ins}}},\n     {diff}u, {len(k.outs)}, {{{outs}}},\n"
            f"     {{{gouts}}},\n     {{{gins}}},{note}\n"
            f"     {'true' if k.exact else 'false'}}},\n")


def emit(cs, out):
    body = "".join(case_ref(k) for k in cs)
    out.write("/* Generated by tests/data/gen_shape.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_SHAPE_REF_H\n#define NABLA_TESTS_SHAPE_REF_H\n\n")
    out.write("#include <math.h>\n#include <stdbool.h>\n#include <stddef.h>\n"
              "#include <stdint.h>\n\n")
    out.write(f"#define SHAPE_REF_MAXD {MAXD}\n#define SHAPE_REF_MAXIN {MAXIN}\n"
              f"#define SHAPE_REF_MAXOUT {MAXOUT}\n\n")
    out.write("enum {\n" + "".join(f"    SHAPE_REF_{o},\n" for o in OPS) + "};\n\n")
    out.write("/* A tensor: ndim -1 for none (an input with no gradient, an output given none). */\n"
              "typedef struct shape_ref_tensor {\n"
              "    int ndim;\n"
              "    int64_t dims[SHAPE_REF_MAXD];\n"
              "    const float *data; /* NULL when empty */\n"
              "} shape_ref_tensor;\n\n")
    out.write("/*\n"
              " * One call: op with dim and args (expand's sizes, repeat's repeats, flip's dims,\n"
              " * narrow's start and length, split's size, chunk's count, embedding's padding_idx\n"
              " * with INT64_MIN for none). Inputs in PyTorch's order (index ops: x, index, src;\n"
              " * embedding: weight, ids), indices as floats; bit i of diff: input i requires\n"
              " * grad. grad_in are the gradients of sum over outputs of out * grad_out. exact:\n"
              " * nabla computes the gradients with the same float operations in the same order\n"
              " * (compare bits); else they are sums added in another order (outputs: always).\n"
              " */\n"
              "typedef struct shape_ref_case {\n"
              "    const char *name;\n"
              "    const char *node; /* PyTorch's y.grad_fn.name() */\n"
              "    int op, dim, n_args;\n"
              "    int64_t args[8];\n"
              "    int n_in;\n"
              "    shape_ref_tensor in[SHAPE_REF_MAXIN];\n"
              "    unsigned diff;\n"
              "    int n_out;\n"
              "    shape_ref_tensor out[SHAPE_REF_MAXOUT];\n"
              "    shape_ref_tensor grad_out[SHAPE_REF_MAXOUT];\n"
              "    shape_ref_tensor grad_in[SHAPE_REF_MAXIN];\n"
              "    bool exact;\n"
              "} shape_ref_case;\n\n")
    out.write("\n".join(DATA) + "\n\n")
    out.write("static const shape_ref_case shape_ref_cases[] = {\n" + body + "};\n\n#endif\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    cs = cases()
    with open(os.path.join(here, "shape_ref.h"), "w") as out:
        emit(cs, out)
    print(f"{len(cs)} cases, {sum(len(d.split(',')) for d in DATA)} values")


if __name__ == "__main__":
    main()
