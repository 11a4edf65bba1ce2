#!/usr/bin/python3
"""Generate tests/data/reduce_ref.h: PyTorch 1.13 reference values for tests/test_ops_reduce.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_reduce.py`.

Each case is one reduction or softmax call on a small input holding the values where these
ops have rules to follow: ties, 0 and -0, +-inf, nan, +-1e4, zeros for prod, zero variance for
std, slices of -inf only for logsumexp and softmax. A case stores the input, the dims (or
None for every dim), keepdim, the op's parameter (var/std: correction; norm: p), the output,
the indices (max/min along a dim, argmax/argmin), the node name PyTorch records, and the
gradient of sum(y * grad_out) with respect to the input for a grad_out that is not all ones
and holds negative values (so a gradient that lands on the wrong element, or a -0 that should
be +0, shows).

Every float is stored as an exact C hex-float literal of its float32 value (NAN, INFINITY).
"""
import math
import os

import torch

nan, inf = float("nan"), float("inf")

OPS = ["max", "min", "max_dim", "min_dim", "amax", "amin", "argmax", "argmin", "var", "std",
       "logsumexp", "prod", "prod_dim", "norm", "softmax", "log_softmax"]

# how a case's gradient is checked: compared, or PyTorch leaves .grad unset (norm with p = 0)
GRAD_CMP, GRAD_NONE = 0, 1


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


def grad_out(shape):
    n = math.prod(shape)
    g = [(0.5 + 0.25 * k) * (-1.0 if k % 3 == 1 else 1.0) for k in range(n)]
    return torch.tensor(g, dtype=torch.float32).reshape(shape)


def run(op, x, dims, keepdim, param):
    """The torch call of op, returning (values, indices or None)."""
    d = tuple(dims) if dims is not None else None
    if op == "max":
        return torch.max(x), None
    if op == "min":
        return torch.min(x), None
    if op in ("max_dim", "min_dim"):
        f = torch.max if op == "max_dim" else torch.min
        v, i = f(x, d[0], keepdim)
        return v, i
    if op in ("amax", "amin"):
        f = torch.amax if op == "amax" else torch.amin
        return f(x, d if d is not None else (), keepdim), None
    if op in ("argmax", "argmin"):
        f = torch.argmax if op == "argmax" else torch.argmin
        return None, f(x, d[0] if d is not None else None, keepdim)
    if op in ("var", "std"):
        f = torch.var if op == "var" else torch.std
        y = f(x, d, correction=int(param), keepdim=keepdim)
        if param in (0, 1):  # the unbiased flag is the same as correction 1 / 0
            u = f(x, d, unbiased=param == 1, keepdim=keepdim)
            assert torch.equal(u.isnan(), y.isnan()) and torch.equal(u[~u.isnan()], y[~y.isnan()])
        return y, None
    if op == "logsumexp":
        return torch.logsumexp(x, d if d is not None else tuple(range(x.dim())), keepdim), None
    if op == "prod":
        return torch.prod(x), None
    if op == "prod_dim":
        return torch.prod(x, d[0], keepdim), None
    if op == "norm":
        return torch.norm(x, param, d, keepdim), None
    if op == "softmax":
        return torch.softmax(x, d[0]), None
    if op == "log_softmax":
        return torch.log_softmax(x, d[0]), None
    raise ValueError(op)


def case(name, op, values, shape=None, dims=None, keepdim=False, param=0.0):
    x = torch.tensor(values, dtype=torch.float32)
    if shape is not None:
        x = x.reshape(shape)
    x.requires_grad_(op not in ("argmax", "argmin"))
    y, idx = run(op, x, dims, keepdim, param)
    c = dict(name=name, op=OPS.index(op), x=x.detach().clone(), dims=dims, keepdim=keepdim,
             param=float(param), y=None, idx=None, node=None, g=None, gx=None, mode=GRAD_CMP)
    out = y if y is not None else idx
    c["out_shape"] = tuple(out.shape)
    if idx is not None:
        c["idx"] = idx.to(torch.float32)
    if y is None:
        return c
    c["y"] = y.detach().clone()
    c["node"] = y.grad_fn.name()
    g = grad_out(y.shape)
    c["g"] = g
    y.backward(g)
    if x.grad is None:
        c["mode"] = GRAD_NONE
    else:
        c["gx"] = x.grad.clone()
    return c


# A [4, 4] matrix whose rows hold ties, NaNs, -inf only, and one value four times.
TIES = [[1.0, 3.0, 3.0, 2.0], [nan, 1.0, nan, 0.0], [-inf, -inf, -inf, -inf], [5.0, 5.0, 5.0, 5.0]]
# Rows of a [3, 4] matrix: extremes and ties elsewhere than first.
EXTREMES = [[1e4, -1e4, 0.5, 1e4], [-0.0, 0.0, -2.0, inf], [2.0, -inf, 2.0, -3.0]]
# A [2, 3, 2] tensor with ties along dim 1 and dim 2.
CUBE = [[[0.5, -1.0], [2.0, 2.0], [0.5, 3.0]], [[-4.0, 1.5], [1.5, -4.0], [1.5, 0.25]]]
ZEROS = [[0.0, -0.0], [-0.0, 0.0]]


def max_cases():
    c = []
    for op in ("max_dim", "min_dim"):
        c += [case(f"{op} ties, nan, -inf [1]", op, TIES, dims=[1]),
              case(f"{op} ties, nan, -inf [-1] keepdim", op, TIES, dims=[-1], keepdim=True),
              case(f"{op} ties, nan, -inf [0]", op, TIES, dims=[0]),
              case(f"{op} extremes [1]", op, EXTREMES, dims=[1]),
              case(f"{op} extremes [-2] keepdim", op, EXTREMES, dims=[-2], keepdim=True),
              case(f"{op} cube [1]", op, CUBE, dims=[1]),
              case(f"{op} cube [1] keepdim", op, CUBE, dims=[1], keepdim=True),
              case(f"{op} cube [-3]", op, CUBE, dims=[-3]),
              case(f"{op} cube [2] keepdim", op, CUBE, dims=[2], keepdim=True),
              case(f"{op} 0 and -0 [1]", op, ZEROS, dims=[1]),
              case(f"{op} 0-d [0]", op, 2.5, dims=[0]),
              case(f"{op} 0-d [-1] keepdim", op, -1.5, dims=[-1], keepdim=True)]
    for op in ("max", "min"):  # the sign of a zero max over every element is not compared
        c += [case(f"{op} ties", op, [1.0, 3.0, 3.0, 2.0, 1.0]),
              case(f"{op} nan twice", op, [1.0, nan, 3.0, nan]),
              case(f"{op} extremes", op, EXTREMES),
              case(f"{op} ties, nan, -inf", op, TIES),
              case(f"{op} cube", op, CUBE),
              case(f"{op} 0-d", op, -7.0)]
    for op in ("amax", "amin"):
        c += [case(f"{op} ties, nan, -inf [1]", op, TIES, dims=[1]),
              case(f"{op} ties, nan, -inf [0] keepdim", op, TIES, dims=[0], keepdim=True),
              case(f"{op} ties, nan, -inf all", op, TIES),
              case(f"{op} extremes all keepdim", op, EXTREMES, keepdim=True),
              case(f"{op} extremes [-1, 0]", op, EXTREMES, dims=[-1, 0]),
              case(f"{op} cube [0, 2]", op, CUBE, dims=[0, 2]),
              case(f"{op} cube [2, 0] keepdim", op, CUBE, dims=[2, 0], keepdim=True),
              case(f"{op} cube [1]", op, CUBE, dims=[1]),
              case(f"{op} cube [-1] keepdim", op, CUBE, dims=[-1], keepdim=True),
              case(f"{op} 0 and -0 [1]", op, ZEROS, dims=[1]),
              case(f"{op} 0 and -0 [0] keepdim", op, ZEROS, dims=[0], keepdim=True),
              case(f"{op} 0-d [0]", op, 3.0, dims=[0])]
    for op in ("argmax", "argmin"):
        c += [case(f"{op} ties, nan, -inf [1]", op, TIES, dims=[1]),
              case(f"{op} ties, nan, -inf [0] keepdim", op, TIES, dims=[0], keepdim=True),
              case(f"{op} ties, nan, -inf all", op, TIES),
              case(f"{op} ties, nan, -inf all keepdim", op, TIES, keepdim=True),
              case(f"{op} extremes [-1]", op, EXTREMES, dims=[-1]),
              case(f"{op} extremes all", op, EXTREMES),
              case(f"{op} cube [1] keepdim", op, CUBE, dims=[1], keepdim=True),
              case(f"{op} cube [-3]", op, CUBE, dims=[-3]),
              case(f"{op} cube all", op, CUBE),
              case(f"{op} 0 and -0 [1]", op, ZEROS, dims=[1]),
              case(f"{op} 0-d all", op, 1.0),
              case(f"{op} 0-d [0] keepdim", op, 1.0, dims=[0], keepdim=True)]
    return c


# Values for the moments: a random-looking [3, 4], a constant row, +-1e4.
MOM = [[0.5, -1.25, 2.0, 0.75], [3.0, 3.0, 3.0, 3.0], [1e4, -1e4, 1e4, 9999.0]]
MOM3 = [[[0.5, -1.0, 2.5, 0.0], [1.5, 1.5, -0.5, 3.0], [-2.0, 0.25, 1.0, 4.0]],
        [[2.0, 2.0, 2.0, 2.0], [0.125, -3.0, 0.5, 1.0], [6.0, -6.0, 0.5, -0.5]]]


def moment_cases():
    c = []
    for op in ("var", "std"):
        c += [case(f"{op} [1] correction 1", op, MOM, dims=[1], param=1),
              case(f"{op} [-1] correction 0 keepdim", op, MOM, dims=[-1], keepdim=True, param=0),
              case(f"{op} [0] correction 1", op, MOM, dims=[0], param=1),
              case(f"{op} all correction 1", op, MOM, param=1),
              case(f"{op} all correction 0 keepdim", op, MOM, keepdim=True, param=0),
              case(f"{op} cube [0, 2] keepdim", op, MOM3, dims=[0, 2], keepdim=True, param=1),
              case(f"{op} cube [2, 1]", op, MOM3, dims=[2, 1], param=0),
              case(f"{op} cube [-1] correction 2", op, MOM3, dims=[-1], param=2),
              case(f"{op} n = correction", op, [[1.0, 2.0], [3.0, 3.0]], dims=[1], param=2),
              case(f"{op} n < correction", op, [[1.0, 2.0], [3.0, 3.0]], dims=[1], param=3),
              case(f"{op} correction -1", op, MOM, dims=[1], param=-1),
              case(f"{op} inf and nan", op, [[1.0, inf, 2.0], [nan, 1.0, 0.0], [-inf, inf, 0.0]],
                   dims=[1], param=1),
              case(f"{op} one element", op, [4.0], dims=[0], param=1),
              case(f"{op} 0-d", op, 4.0, param=0),
              case(f"{op} 0-d correction 1", op, 4.0, param=1),
              case(f"{op} 0-d [0] correction 1", op, -0.5, dims=[0], param=1),
              case(f"{op} one element all correction 1 keepdim", op, [[2.5]], keepdim=True,
                   param=1),
              case(f"{op} empty slices", op, [[]] * 3, shape=(3, 0), dims=[1], param=1)]
    return c


def lse_cases():
    v = [[-inf, -inf, -inf], [inf, 1.0, 2.0], [nan, 0.0, 1.0], [1e4, 1e4, -1e4],
         [-1e4, -1e4, -inf], [0.5, -0.25, 2.0]]
    return [case("logsumexp [1]", "logsumexp", v, dims=[1]),
            case("logsumexp [-1] keepdim", "logsumexp", v, dims=[-1], keepdim=True),
            case("logsumexp [0]", "logsumexp", v[3:], dims=[0]),
            case("logsumexp all", "logsumexp", v[3:]),
            case("logsumexp all keepdim", "logsumexp", v[3:], keepdim=True),
            case("logsumexp cube [0, 2]", "logsumexp", MOM3, dims=[0, 2]),
            case("logsumexp cube [-3, -1] keepdim", "logsumexp", MOM3, dims=[-3, -1],
                 keepdim=True),
            case("logsumexp cube [1]", "logsumexp", MOM3, dims=[1]),
            case("logsumexp 0-d", "logsumexp", -2.0, dims=[0]),
            case("logsumexp empty slices", "logsumexp", [[]] * 2, shape=(2, 0), dims=[1])]


def prod_cases():
    p3 = [[2.0, 0.0, 4.0], [3.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    return [case("prod", "prod", [2.0, 3.0, -4.0, 0.5]),
            case("prod one zero", "prod", [2.0, 0.0, 4.0, -1.5]),
            case("prod -0", "prod", [[2.0, -0.0], [4.0, 3.0]]),
            case("prod two zeros", "prod", [2.0, 0.0, 0.0, 5.0]),
            case("prod two zeros, nan and inf", "prod", [[nan, 0.0, 1.0], [inf, 0.0, 2.0]]),
            case("prod signed zeros", "prod", [-0.0, 0.0, -0.0, 3.0]),
            case("prod_dim two zeros, nan [0]", "prod_dim", [nan, 0.0, 0.0], dims=[0]),
            case("prod inf", "prod", [2.0, inf, 4.0]),
            case("prod inf and zero", "prod", [2.0, inf, 0.0]),
            case("prod nan", "prod", [2.0, nan, 4.0]),
            case("prod 1e4", "prod", [1e4, -1e4, 1e-4]),
            case("prod 0-d", "prod", inf),
            case("prod_dim zeros [1]", "prod_dim", p3, dims=[1]),
            case("prod_dim zeros [-1] keepdim", "prod_dim", p3, dims=[-1], keepdim=True),
            case("prod_dim zeros [0]", "prod_dim", p3, dims=[0]),
            case("prod_dim no zero [0] keepdim", "prod_dim", MOM3[0], dims=[0], keepdim=True),
            case("prod_dim cube [1]", "prod_dim", CUBE, dims=[1]),
            case("prod_dim cube zero [-2] keepdim", "prod_dim",
                 [[[0.5, -1.0], [2.0, 0.0], [0.5, 3.0]], [[-4.0, 1.5], [1.5, -4.0], [1.5, 0.25]]],
                 dims=[-2], keepdim=True),
            case("prod_dim inf [1]", "prod_dim", [[2.0, inf], [0.5, 4.0]], dims=[1]),
            case("prod_dim 0-d [0]", "prod_dim", 0.0, dims=[0]),
            case("prod_dim empty slices", "prod_dim", [[]] * 2, shape=(2, 0), dims=[1])]


def norm_cases():
    v = [[3.0, -4.0, 0.0, 1.0], [0.0, -0.0, 0.0, 0.0], [2.0, -2.0, 1.0, nan], [1e4, -1e4, 1e4, 1.0]]
    c = []
    for p in (2.0, 1.0, inf, -inf, 0.0, 3.0, 0.5, 1.5, -1.0):
        tag = f"p={p:g}"
        c += [case(f"norm {tag} [1]", "norm", v, dims=[1], param=p),
              case(f"norm {tag} [0] keepdim", "norm", v[:1] + v[2:], dims=[0], keepdim=True,
                   param=p)]
    c += [case("norm p=2 all", "norm", MOM, param=2.0),
          case("norm p=2 all keepdim", "norm", MOM, keepdim=True, param=2.0),
          case("norm p=inf all, ties", "norm", [[3.0, -3.0], [1.0, 2.0]], param=inf),
          case("norm p=1 cube [0, 2]", "norm", MOM3, dims=[0, 2], param=1.0),
          case("norm p=2 cube [-1, -3] keepdim", "norm", MOM3, dims=[-1, -3], keepdim=True,
               param=2.0),
          case("norm p=3 cube [1]", "norm", MOM3, dims=[1], param=3.0),
          case("norm p=inf cube [2]", "norm", MOM3, dims=[2], param=inf),
          case("norm p=2 0-d", "norm", -3.0, param=2.0),
          case("norm p=2 empty slices", "norm", [[]] * 2, shape=(2, 0), dims=[1], param=2.0),
          case("norm p=inf empty slices", "norm", [[]] * 2, shape=(2, 0), dims=[1], param=inf)]
    return c


def softmax_cases():
    v = [[-inf, -inf, 1.0], [-inf, -inf, -inf], [inf, 1.0, 0.0], [1e4, -1e4, 0.0],
         [1e4, 1e4, -1e4], [nan, 1.0, 2.0], [0.5, -0.25, 2.0]]
    c = []
    for op in ("softmax", "log_softmax"):
        c += [case(f"{op} [1]", op, v, dims=[1]),
              case(f"{op} [-1]", op, v, dims=[-1]),
              case(f"{op} [0]", op, [v[0], v[3], v[6]], dims=[0]),
              case(f"{op} ±1e4 [0]", op, [[1e4, -1e4, 0.0], [1e4, 1e4, -inf]], dims=[0]),
              case(f"{op} cube [1]", op, MOM3, dims=[1]),
              case(f"{op} cube [-3]", op, MOM3, dims=[-3]),
              case(f"{op} cube [2]", op, MOM3, dims=[2]),
              case(f"{op} 0-d", op, 3.0, dims=[0]),
              case(f"{op} empty", op, [[]] * 2, shape=(2, 0), dims=[1])]
    return c


def all_cases():
    return max_cases() + moment_cases() + lse_cases() + prod_cases() + norm_cases() + \
        softmax_cases()


class Data:
    """One float array holding every case's tensors; each tensor is an offset into it."""

    def __init__(self):
        self.vals = []

    def add(self, t):
        if t is None:
            return -1
        at = len(self.vals)
        self.vals += t.detach().to(torch.float32).reshape(-1).tolist()
        return at


def shape4(shape):
    assert len(shape) <= 4
    s = list(shape) + [0] * (4 - len(shape))
    return f"{len(shape)}, {{{', '.join(str(d) for d in s)}}}"


def emit(cases, out):
    data = Data()
    rows = []
    for c in cases:
        dims = c["dims"]
        nd = -1 if dims is None else len(dims)
        d = (list(dims) if dims is not None else []) + [0] * (4 - (len(dims) if dims else 0))
        node = f"\"{c['node']}\"" if c["node"] else "NULL"
        param = "HUGE_VAL" if c["param"] == inf else "-HUGE_VAL" if c["param"] == -inf \
            else repr(c["param"])  # a double field: HUGE_VAL, not the float INFINITY
        offs = [data.add(c[k]) for k in ("x", "g", "y", "idx", "gx")]
        rows.append(f"    {{\"{c['name']}\", REF_{OPS[c['op']].upper()},\n"
                    f"     {shape4(tuple(c['x'].shape))}, {nd}, {{{', '.join(map(str, d))}}},"
                    f" {int(c['keepdim'])}, {param}, {node},\n"
                    f"     {shape4(c['out_shape'])}, {c['mode']}, {', '.join(map(str, offs))}}},\n")
    out.write("/* Generated by tests/data/gen_reduce.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_REDUCE_REF_H\n#define NABLA_TESTS_REDUCE_REF_H\n\n")
    out.write("#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.write("enum {\n" + "".join(f"    REF_{o.upper()},\n" for o in OPS) + "};\n\n")
    out.write("/* How the gradient is checked (see gen_reduce.py). */\n"
              f"enum {{ REF_GRAD_CMP = {GRAD_CMP}, REF_GRAD_NONE = {GRAD_NONE} }};\n\n")
    out.write("/*\n"
              " * One call: op on x of shape x_dims, over dims (n_dims -1: every dim), keepdim,\n"
              " * param (var/std: correction; norm: p). The offsets (into reduce_ref_data, -1 for\n"
              " * none) are those of x, grad_out, the output y, the indices and x's gradient.\n"
              " */\n"
              "typedef struct reduce_ref {\n"
              "    const char *name;\n"
              "    int op;\n"
              "    int x_ndim;\n"
              "    int64_t x_dims[4];\n"
              "    int n_dims;\n"
              "    int dims[4];\n"
              "    int keepdim;\n"
              "    double param;\n"
              "    const char *node; /* y.grad_fn.name(); NULL for argmax/argmin */\n"
              "    int out_ndim;\n"
              "    int64_t out_dims[4];\n"
              "    int grad_mode;\n"
              "    ptrdiff_t x, grad_out, y, indices, grad_x;\n"
              "} reduce_ref;\n\n")
    out.write("static const float reduce_ref_data[] = {\n")
    for i in range(0, len(data.vals), 6):
        out.write("    " + ", ".join(hexf(v) for v in data.vals[i:i + 6]) + ",\n")
    out.write("};\n\n")
    out.write("static const reduce_ref reduce_ref_cases[] = {\n")
    out.writelines(rows)
    out.write("};\n\n#endif\n")
    return len(data.vals)


def main():
    cases = all_cases()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "reduce_ref.h"), "w") as out:
        n = emit(cases, out)
    print(f"reduce_ref.h: {len(cases)} cases, {n} values")


if __name__ == "__main__":
    main()
