#!/usr/bin/python3
"""Generate tests/data/pool_ref.h: PyTorch 1.13 reference values for tests/test_ops_pool.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_pool.py`.

Each case is one torch.nn.functional.max_pool2d (with return_indices=True) or avg_pool2d call:
stride, padding, dilation, ceil_mode true and false (with the last window dropped where it
would start past the left padding), count_include_pad, divisor_override, unbatched input,
non-square inputs and kernels, overlapping windows (gradients that add up), and windows
holding ties, -0, +-inf and nan; then 60 cases of seeded random arguments. A case stores
the input, the arguments as given (a list of 1 or 2 ints, or none for the default stride),
the output, the indices (max), the node name PyTorch records, and the gradient of
sum(y * grad_out) with respect to the input for a grad_out that is not all ones and holds
negative values (so a gradient that lands on the wrong element shows). A window of padding
alone (possible with dilation) gives -inf at the index of its first position past the padding,
h0·W + w0, which is in a later row when only its columns are padding (PyTorch's backward adds
g to that element) or past the plane, where PyTorch's backward writes past its buffer
(corrupting its heap): such a case stores no gradient.

Every float is stored as an exact C hex-float literal of its float32 value (NAN, INFINITY).
"""
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_reduce import Data, grad_out, hexf, shape4  # noqa: E402

nan, inf = float("nan"), float("inf")

OPS = ["max_pool2d", "avg_pool2d"]


def values(shape, seed):
    """Values on a grid of 1/8 (sums exact in any order but for the cases that want one)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(-40, 41, shape, generator=g).to(torch.float32) / 8).tolist()


def randn(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).tolist()


def case(name, op, x, k, s=(), p=(0,), d=(1,), ceil=False, cip=True, div=0, grad=True):
    x = (x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float32)).clone()
    x.requires_grad_(True)
    ks, ss, ps, ds = list(k), list(s), list(p), list(d)
    if op == "max_pool2d":
        y, idx = F.max_pool2d(x, ks, ss, ps, ds, ceil, return_indices=True)
        y2 = F.max_pool2d(x.detach(), ks, ss, ps, ds, ceil)  # the path without indices
        assert torch.equal(y2.isnan(), y.isnan()) and torch.equal(y2[~y2.isnan()], y[~y.isnan()])
        idx = idx.to(torch.float32)
    else:
        y = F.avg_pool2d(x, ks, ss, ps, ceil, cip, div if div else None)
        idx = None
    c = dict(name=name, op=OPS.index(op), x=x.detach().clone(), k=ks, s=ss, p=ps, d=ds,
             ceil=ceil, cip=cip, div=div, y=y.detach().clone(), idx=idx,
             node=y.grad_fn.name(), g=None, gx=None, out_shape=tuple(y.shape))
    if grad:
        g = grad_out(y.shape)
        y.backward(g)
        c["g"], c["gx"] = g, x.grad.clone()
    return c


# [1, 2, 4, 6]: ties (first wins), -0 before and after 0, +-inf, a window of -inf, NaNs (the
# last of a window wins)
SPECIAL = [[[[1.0, 3.0, 3.0, 2.0, -0.0, 0.0],
             [3.0, 1.0, 2.0, 3.0, 0.0, -0.0],
             [nan, 1.0, inf, -inf, -inf, -inf],
             [2.0, nan, 1.0, 5.0, -inf, -inf]],
            [[-0.0, -0.0, 5.0, 5.0, 5.0, 5.0],
             [-0.0, -0.0, 5.0, 5.0, 5.0, 5.0],
             [-inf, inf, nan, nan, 1.0, -1.0],
             [0.5, 0.5, nan, 1.0, -1.0, 1.0]]]]


def max_cases():
    m = "max_pool2d"
    return [
        case("max 2x2", m, randn((1, 1, 4, 4), 1), [2]),
        case("max 3, stride 1 (overlapping), non-square", m, randn((1, 2, 5, 6), 2), [3], [1]),
        case("max 3, stride 2, padding 1", m, randn((2, 3, 5, 7), 3), [3], [2], [1]),
        case("max (2, 3), stride (1, 2), padding (1, 1), dilation (2, 1)", m,
             randn((2, 2, 6, 7), 4), [2, 3], [1, 2], [1, 1], [2, 1]),
        case("max 3, dilation 2, padding 1, stride 1", m, randn((1, 2, 7, 6), 5), [3], [1], [1],
             [2]),
        case("max 3, stride 2, ceil_mode", m, randn((1, 1, 6, 7), 6), [3], [2], ceil=True),
        case("max 3, stride 2, ceil_mode false", m, randn((1, 1, 6, 7), 6), [3], [2]),
        case("max 2, stride 2, padding 1, ceil_mode (last window dropped)", m,
             randn((1, 2, 5, 5), 7), [2], [2], [1], ceil=True),
        case("max (3, 2), stride (2, 1), padding (1, 0), dilation 2, ceil_mode", m,
             randn((2, 1, 9, 8), 8), [3, 2], [2, 1], [1, 0], [2], ceil=True),
        case("max unbatched [3, 5, 5]", m, randn((3, 5, 5), 9), [2], [1]),
        case("max unbatched (3, 1), stride (1, 3)", m, randn((2, 6, 7), 10), [3, 1], [1, 3]),
        case("max 1x1", m, randn((1, 2, 3, 2), 11), [1]),
        case("max window of the whole plane", m, randn((2, 2, 3, 4), 12), [3, 4]),
        case("max stride over kernel (gaps)", m, randn((1, 1, 7, 8), 13), [2], [3]),
        case("max specials 2x2", m, SPECIAL, [2]),
        case("max specials 2, stride 1", m, SPECIAL, [2], [1]),
        case("max specials (1, 2), padding (0, 1)", m, SPECIAL, [1, 2], [1], [0, 1]),
        case("max specials 3, stride 1, padding 1, ceil_mode", m, SPECIAL, [3], [1], [1],
             ceil=True),
        case("max specials (2, 3), stride 2, dilation (1, 2), ceil_mode", m, SPECIAL, [2, 3],
             [2], [0], [1, 2], ceil=True),
        case("max specials whole rows", m, SPECIAL, [1, 6]),
        case("max ties on a grid, 3, stride 1, padding 1", m, values((2, 1, 5, 5), 14), [3], [1],
             [1]),
        case("max window of padding alone", m, [[[[1.5]]]], [2], [1], [1], [2], grad=False),
        case("max windows of padding alone, indices in the plane (a later row's first)", m,
             randn((1, 1, 4, 3), 15), [1, 2], [2, 1], [0, 1], [1, 4]),
        case("max empty batch", m, torch.zeros(0, 2, 4, 4), [2]),
    ]


def avg_cases():
    a = "avg_pool2d"
    return [
        case("avg 2x2", a, randn((1, 1, 4, 4), 21), [2]),
        case("avg 3, stride 1 (overlapping), non-square", a, randn((1, 2, 5, 6), 22), [3], [1]),
        case("avg 3, stride 1, padding 1", a, randn((2, 2, 5, 6), 23), [3], [1], [1]),
        case("avg 3, stride 1, padding 1, count_include_pad false", a, randn((2, 2, 5, 6), 23),
             [3], [1], [1], cip=False),
        case("avg 3, stride 2, padding 1, ceil_mode", a, randn((1, 2, 6, 6), 24), [3], [2], [1],
             ceil=True),
        case("avg 3, stride 2, padding 1, ceil_mode, count_include_pad false", a,
             randn((1, 2, 6, 6), 24), [3], [2], [1], ceil=True, cip=False),
        case("avg 3, stride 2, ceil_mode (window past the padded edge)", a,
             randn((1, 1, 6, 8), 25), [3], [2], ceil=True),
        case("avg 2, stride 2, padding 1, ceil_mode (last window dropped)", a,
             randn((1, 1, 5, 5), 26), [2], [2], [1], ceil=True),
        case("avg 3, stride 2, padding 1, ceil_mode, divisor_override 5", a,
             randn((1, 2, 6, 7), 27), [3], [2], [1], ceil=True, div=5),
        case("avg 2, divisor_override -3", a, randn((1, 1, 4, 4), 28), [2], div=-3),
        case("avg specials 2, stride 1, divisor_override -2 (zeros come out +0)", a, SPECIAL, [2],
             [1], div=-2),
        case("avg (2, 3), stride (1, 2), padding (1, 0)", a, randn((2, 1, 5, 8), 29), [2, 3],
             [1, 2], [1, 0]),
        case("avg (2, 3), stride (1, 2), padding (1, 0), count_include_pad false, ceil_mode", a,
             randn((2, 1, 5, 8), 29), [2, 3], [1, 2], [1, 0], ceil=True, cip=False),
        case("avg unbatched [3, 5, 5]", a, randn((3, 5, 5), 30), [2], [1]),
        case("avg unbatched (3, 1), stride (2, 1), padding (1, 0)", a, randn((2, 6, 7), 31),
             [3, 1], [2, 1], [1, 0]),
        case("avg stride over kernel (gaps)", a, randn((1, 1, 7, 8), 32), [2], [3]),
        case("avg specials 2x2", a, SPECIAL, [2]),
        case("avg specials 2, stride 1, padding 1", a, SPECIAL, [2], [1], [1]),
        case("avg specials (1, 2), stride 1", a, SPECIAL, [1, 2], [1]),
        case("avg float sums in PyTorch's order", a,
             [[[[1e8, 1.0, -1e8, 1.0], [0.1, 0.2, 0.3, 1e-8], [3e7, 7.0, 11.0, -3e7],
                [1.0, 1e-3, 1e-6, 1e3]]]], [2, 4], [1]),
        case("avg float sums in PyTorch's order, 3, stride 1, padding 1", a,
             (torch.tensor(randn((1, 2, 6, 6), 33)) * torch.tensor([1e6, 1.0, 1e-6, 1.0, 1e3, 7.0]))
             .tolist(), [3], [1], [1]),
        case("avg empty batch", a, torch.zeros(0, 2, 4, 4), [2]),
    ]


def random_cases(n=60):
    """Seeded random arguments (PyTorch's valid ones) on small inputs of normal values or of
    ties, zeros of either sign, +-inf and nan; a max window of padding alone stores no
    gradient."""
    rng, out = random.Random(0), []
    while len(out) < n:
        op = rng.choice(OPS)
        shape = ((rng.randint(1, 2),) if rng.random() < 0.7 else ()) + \
            (rng.randint(1, 2), rng.randint(1, 7), rng.randint(1, 7))
        k = [rng.randint(1, 4) for _ in range(rng.randint(1, 2))]
        k2 = k * 2 if len(k) == 1 else k
        s = [rng.randint(1, 3) for _ in range(rng.choice([0, 1, 2]))]
        p = [rng.randint(0, k2[0] // 2)] if rng.random() < 0.5 else \
            [rng.randint(0, k2[0] // 2), rng.randint(0, k2[1] // 2)]
        d = [rng.randint(1, 3) for _ in range(rng.randint(1, 2))] if op == "max_pool2d" else [1]
        ceil, cip, div = rng.random() < 0.5, rng.random() < 0.5, rng.choice([0, 0, 0, 3, -2])
        seed = rng.randint(0, 1 << 30)
        special = [0.0, -0.0, 1.0, 1.0, -1.0, 2.0, inf, -inf, nan]
        x = torch.tensor(randn(shape, seed)) if rng.random() < 0.6 else \
            torch.tensor(rng.choices(special, k=math.prod(shape))).reshape(shape)
        if op == "max_pool2d":
            cip, div = True, 0
        name = f"random {len(out)}: {op[:3]} {list(shape)} k {k} s {s} p {p}" + \
            (f" d {d}" if op == "max_pool2d" else "") + (" ceil" if ceil else "") + \
            ("" if cip else " no pad count") + (f" div {div}" if div else "")
        try:  # PyTorch's backward writes past its gradient for a window of padding alone
            grad = op == "avg_pool2d" or \
                bool((F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)[1] <
                      shape[-1] * shape[-2]).all())
            c = case(name, op, x, k, s, p, d, ceil, cip, div, grad=grad)
        except RuntimeError:
            continue  # arguments PyTorch refuses (an output too small)
        out.append(c)
    return out


def pair(v):
    return f"{len(v)}, {{{', '.join(str(x) for x in list(v) + [0] * (2 - len(v)))}}}"


def emit(cases, out):
    data = Data()
    rows = []
    for c in cases:
        offs = [data.add(c[k]) for k in ("x", "g", "y", "idx", "gx")]
        rows.append(f"    {{\"{c['name']}\", REF_{OPS[c['op']].upper()},\n"
                    f"     {shape4(tuple(c['x'].shape))}, {pair(c['k'])}, {pair(c['s'])},"
                    f" {pair(c['p'])}, {pair(c['d'])},\n"
                    f"     {int(c['ceil'])}, {int(c['cip'])}, {c['div']}, \"{c['node']}\","
                    f" {shape4(c['out_shape'])},\n"
                    f"     {', '.join(map(str, offs))}}},\n")
    out.write("/* Generated by tests/data/gen_pool.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_POOL_REF_H\n#define NABLA_TESTS_POOL_REF_H\n\n")
    out.write("#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.write("enum {\n" + "".join(f"    REF_{o.upper()},\n" for o in OPS) + "};\n\n")
    out.write("/*\n"
              " * One call: op on x of shape x_dims with kernel_size, stride, padding and\n"
              " * dilation as given (n values each: stride 0 for the default), ceil_mode,\n"
              " * count_include_pad and divisor_override (0: None). The offsets (into\n"
              " * pool_ref_data, -1 for none) are those of x, grad_out, the output y, the\n"
              " * indices (max) and x's gradient.\n"
              " */\n"
              "typedef struct pool_ref {\n"
              "    const char *name;\n"
              "    int op;\n"
              "    int x_ndim;\n"
              "    int64_t x_dims[4];\n"
              "    int k_n;\n"
              "    int64_t k[2];\n"
              "    int s_n;\n"
              "    int64_t s[2];\n"
              "    int p_n;\n"
              "    int64_t p[2];\n"
              "    int d_n;\n"
              "    int64_t d[2];\n"
              "    int ceil_mode, count_include_pad;\n"
              "    int64_t divisor;\n"
              "    const char *node; /* y.grad_fn.name() */\n"
              "    int out_ndim;\n"
              "    int64_t out_dims[4];\n"
              "    ptrdiff_t x, grad_out, y, indices, grad_x;\n"
              "} pool_ref;\n\n")
    out.write("static const float pool_ref_data[] = {\n")
    for i in range(0, len(data.vals), 6):
        out.write("    " + ", ".join(hexf(v) for v in data.vals[i:i + 6]) + ",\n")
    out.write("};\n\n")
    out.write("static const pool_ref pool_ref_cases[] = {\n")
    out.writelines(rows)
    out.write("};\n\n#endif\n")
    return len(data.vals)


def main():
    cases = max_cases() + avg_cases() + random_cases()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "pool_ref.h"), "w") as out:
        n = emit(cases, out)
    print(f"pool_ref.h: {len(cases)} cases, {n} values")


if __name__ == "__main__":
    main()
