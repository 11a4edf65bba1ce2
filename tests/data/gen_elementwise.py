#!/usr/bin/python3
"""Generate tests/data/elementwise_ref.h: PyTorch 1.13 reference values for
tests/test_ops_elementwise.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_elementwise.py`.

- Unary ops (exp ... logsigmoid, at several parameter sets): y = op(x) and the gradient of
  sum(y * g) with respect to x, at the special values 0, -0, +-inf, nan, +-1e4, tiny and
  subnormal numbers, the large-magnitude regions of the activations and the points where
  an op changes branch (clamp's bounds, softplus's threshold).
- Binary ops (pow, maximum, minimum): every pair of a set of special values, ties, and
  broadcast shapes; y and both gradients.
- where and masked_fill (broadcasting, NaN in the condition, NaN filled) and the six
  comparisons (NaN, -0, inf; tensor-tensor and with a number).

Each element of the elementwise cases is computed in a one-element tensor of its own, so
PyTorch runs the scalar form of its CPU kernel, the one that calls the C library's float
functions as nabla does. PyTorch's vectorised kernels (contiguous runs of 16 and more) use
their own polynomial approximations of exp, erf, tanh, log1p, ...; the generator measures
how far those are from the scalar values and writes the figure next to each case.

Floats are exact C hex-float literals of their float32 values (NAN, INFINITY for the others).
"""
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
INF = math.inf
NAN = math.nan

# ---- formatting ------------------------------------------------------------------------------


def f32(v):
    return struct.unpack("f", struct.pack("f", float(v)))[0]


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


def flist(vals):
    return "{" + ", ".join(hexf(v) for v in vals) + "}"


def ordered(v):
    """float32 bits as an integer that orders like the floats (so ulps are differences)."""
    (b,) = struct.unpack("<i", struct.pack("<f", v))
    return b if b >= 0 else -(b & 0x7FFFFFFF)


def ulps(a, b):
    """ulps between two float32 values; NaN against NaN is 0, NaN against a number inf."""
    if math.isnan(a) or math.isnan(b):
        return 0 if math.isnan(a) and math.isnan(b) else math.inf
    if math.isinf(a) or math.isinf(b):
        return 0 if a == b else math.inf
    return abs(ordered(a) - ordered(b))


# ---- inputs ------------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, INF, -INF, NAN, 1e4, -1e4, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0,
           0.1, -0.1, 1e-8, -1e-8, 1e-40, -1e-40, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0,
           88.0, -88.0, 100.0, -100.0, 1e3, -1e3, 1e30, -1e30]
# the gradient arriving at the output: not all ones, so that a kernel ignoring it shows
G_CYCLE = [1.0, -0.5, 2.0, 0.75, -3.0]


def grads_for(n):
    return [G_CYCLE[i % len(G_CYCLE)] for i in range(n)]


# (key, C parameters, the torch call, extra inputs around its own branch points)
UNARY = [
    ("exp", [], torch.exp, [87.0, 89.0, -87.0, -104.0]),
    ("expm1", [], torch.expm1, [1e-5, -1e-5, 89.0]),
    ("log", [], torch.log, [1e-30, 1e38]),
    ("log2", [], torch.log2, [1024.0, 0.125]),
    ("log1p", [], torch.log1p, [1e-5, -0.99999, -1.5]),
    ("sqrt", [], torch.sqrt, [4.0, 1e38]),
    ("rsqrt", [], torch.rsqrt, [4.0, 1e38]),
    ("reciprocal", [], torch.reciprocal, [1e38, -1e38]),
    ("square", [], torch.square, [1e20, -1e20]),
    ("pow_scalar", [2.5], lambda x: torch.pow(x, 2.5), [4.0]),
    ("pow_scalar", [-1.5], lambda x: torch.pow(x, -1.5), [4.0]),
    ("pow_scalar", [0.0], lambda x: torch.pow(x, 0.0), []),
    ("pow_scalar", [1.0], lambda x: torch.pow(x, 1.0), []),
    ("pow_scalar", [2.0], lambda x: torch.pow(x, 2.0), []),
    ("pow_scalar", [3.0], lambda x: torch.pow(x, 3.0), []),
    ("pow_scalar", [4.0], lambda x: torch.pow(x, 4.0), []),
    ("pow_scalar", [0.5], lambda x: torch.pow(x, 0.5), []),
    ("pow_scalar", [-0.5], lambda x: torch.pow(x, -0.5), []),
    ("pow_scalar", [-1.0], lambda x: torch.pow(x, -1.0), []),
    ("pow_scalar", [-2.0], lambda x: torch.pow(x, -2.0), []),
    ("pow_scalar", [1.5], lambda x: torch.pow(x, 1.5), []),
    ("pow_scalar", [0.25], lambda x: torch.pow(x, 0.25), []),
    ("sin", [], torch.sin, [3.14159265]),
    ("cos", [], torch.cos, [1.57079633]),
    ("tanh", [], torch.tanh, [5.0, -5.0, 9.0]),
    ("abs", [], torch.abs, []),
    ("sign", [], torch.sign, []),
    ("clamp", [-1.0, 1.0], lambda x: torch.clamp(x, -1.0, 1.0), [-1.0, 1.0]),
    ("clamp", [-INF, 0.5], lambda x: torch.clamp(x, max=0.5), [0.5]),
    ("clamp", [-0.25, INF], lambda x: torch.clamp(x, min=-0.25), [-0.25]),
    ("clamp", [0.0, 0.0], lambda x: torch.clamp(x, 0.0, 0.0), []),
    ("clamp", [2.0, 1.0], lambda x: torch.clamp(x, 2.0, 1.0), []),
    ("clamp", [NAN, 1.0], lambda x: torch.clamp(x, NAN, 1.0), []),
    ("clamp", [-1.0, NAN], lambda x: torch.clamp(x, -1.0, NAN), []),
    ("hardtanh", [-1.0, 1.0], F.hardtanh, [-1.0, 1.0]),
    ("hardtanh", [-0.5, 2.0], lambda x: F.hardtanh(x, -0.5, 2.0), [-0.5, 2.0]),
    ("hardtanh", [NAN, 1.0], lambda x: F.hardtanh(x, NAN, 1.0), []),
    ("leaky_relu", [0.01], F.leaky_relu, []),
    ("leaky_relu", [0.2], lambda x: F.leaky_relu(x, 0.2), []),
    ("leaky_relu", [-1.5], lambda x: F.leaky_relu(x, -1.5), []),
    ("elu", [1.0], F.elu, []),
    ("elu", [0.5], lambda x: F.elu(x, 0.5), []),
    ("gelu", [0.0], F.gelu, [5.0, -5.0, 6.0, -6.0, 13.0, -13.0]),
    ("gelu", [1.0], lambda x: F.gelu(x, approximate="tanh"), [5.0, -5.0, 6.0, -6.0]),
    ("silu", [], F.silu, [-87.0, -89.0, 50.0, -50.0]),
    ("softplus", [1.0, 20.0], F.softplus, [19.99, 20.01, 15.0, -87.0, -104.0]),
    ("softplus", [2.0, 5.0], lambda x: F.softplus(x, 2.0, 5.0), [2.49, 2.5, 2.51]),
    ("softplus", [0.5, 40.0], lambda x: F.softplus(x, 0.5, 40.0), [79.0, 81.0, 200.0]),
    ("logsigmoid", [], F.logsigmoid, [50.0, -50.0, 87.0, 104.0]),
]


def unary_case(key, params, f, extra):
    xs = [f32(v) for v in SPECIAL + extra]
    gs = grads_for(len(xs))
    ys, dxs = [], []
    for x, g in zip(xs, gs):
        t = torch.tensor([x], requires_grad=True)
        y = f(t)
        y.backward(torch.tensor([g]))
        ys.append(y.item())
        dxs.append(t.grad.item())
    # the vectorised kernel: every value in a contiguous run of its own
    worst, nan_differs = 0, 0
    for i, (x, g) in enumerate(zip(xs, gs)):
        t = torch.full((32,), x, requires_grad=True)
        y = f(t)
        y.backward(torch.full((32,), g))
        d = max(ulps(y[0].item(), ys[i]), ulps(t.grad[0].item(), dxs[i]))
        if math.isnan(x):
            nan_differs = int(d != 0)
        else:
            worst = max(worst, d)
    return dict(key=key, k=params, x=xs, g=gs, y=ys, dx=dxs, vec_ulps=worst,
                vec_nan=nan_differs)


# ---- n-ary cases -----------------------------------------------------------------------------


def torch_in(vals, shape, grad):
    return torch.tensor(vals, dtype=torch.float32).reshape(shape).requires_grad_(grad)


def nary_case(name, key, f, inputs, grad_mask, k=0.0, elementwise=False):
    """inputs: [(values, shape)]; grad_mask: which inputs get a gradient (torch requires
    grad); elementwise: equal shapes, each element computed in a tensor of its own."""
    if elementwise:
        n = len(inputs[0][0])
        gs = grads_for(n)
        ys = []
        grads = [[] if m else None for m in grad_mask]
        for i in range(n):
            ts = [torch_in([v[i]], [1], m) for (v, _), m in zip(inputs, grad_mask)]
            y = f(*ts)
            ys.append(y.item())
            if any(grad_mask):
                y.backward(torch.tensor([gs[i]]))
                for j, t in enumerate(ts):
                    if grad_mask[j]:
                        grads[j].append(t.grad.item())
        out_shape = inputs[0][1]
    else:
        ts = [torch_in(v, s, m) for (v, s), m in zip(inputs, grad_mask)]
        y = f(*ts)
        out_shape = list(y.shape)
        gs = grads_for(y.numel())
        ys = y.detach().reshape(-1).tolist()
        grads = [None] * len(ts)
        if any(grad_mask):
            y.backward(torch.tensor(gs).reshape(y.shape))
            grads = [t.grad.reshape(-1).tolist() if m else None for t, m in zip(ts, grad_mask)]
    return dict(name=name, key=key, k=k, inputs=[([f32(x) for x in v], list(s)) for v, s in inputs],
                out_shape=out_shape, g=gs if any(grad_mask) else None, y=ys, grads=grads)


PAIR_A = [0.0, -0.0, 2.0, -2.0, 0.5, 1.0, -1.0, INF, -INF, NAN, 1e4, -1e4, 3.0]
PAIR_B = [0.0, -0.0, 2.0, -2.0, 0.5, 3.0, 1.0, -1.0, 1.5, INF, -INF, NAN, 1e4, -1e4]


def pairs():
    a, b = [], []
    for x in PAIR_A:
        for y in PAIR_B:
            a.append(x)
            b.append(y)
    return a, b


def nary_cases():
    c = []
    a, b = pairs()
    n = len(a)
    for key, f in (("pow", torch.pow), ("maximum", torch.maximum), ("minimum", torch.minimum)):
        c.append(nary_case(f"{key}: special pairs", key, f, [(a, [n]), (b, [n])],
                           [True, True], elementwise=True))
    ta = [1.0, -2.0, 0.5, 3.0, -1.0, 2.0]
    tb = [1.0, 0.5, 0.5]
    for key, f in (("maximum", torch.maximum), ("minimum", torch.minimum)):
        c.append(nary_case(f"{key}: ties, [2, 3] and [3]", key, f,
                           [(ta, [2, 3]), (tb, [3])], [True, True]))
        c.append(nary_case(f"{key}: [3, 1] and [1, 2]", key, f,
                           [([1.0, -1.0, 0.25], [3, 1]), ([0.25, -1.0], [1, 2])], [True, True]))
        c.append(nary_case(f"{key}: [] and [3], b only", key, f,
                           [([0.5], []), ([0.5, NAN, -2.0], [3])], [False, True]))
    c.append(nary_case("pow: [2, 3] and [3]", "pow", torch.pow,
                       [([0.5, 2.0, 3.0, 0.0, 1.5, 4.0], [2, 3]), ([2.0, -0.5, 0.0], [3])],
                       [True, True]))
    c.append(nary_case("pow: [3, 1] and [2], a only", "pow", torch.pow,
                       [([0.5, 2.0, 0.0], [3, 1]), ([2.5, -1.0], [2])], [True, False]))
    c.append(nary_case("pow: [] and [4], b only", "pow", torch.pow,
                       [([2.0], []), ([0.0, 1.0, -1.0, 0.5], [4])], [False, True]))

    where = lambda cond, x, y: torch.where(cond != 0, x, y)
    c.append(nary_case("where: equal shapes, NaN condition", "where", where,
                       [([1.0, 0.0, NAN, -0.0, -2.0, 0.0], [6]),
                        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6]),
                        ([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], [6])], [False, True, True]))
    c.append(nary_case("where: [2, 1] condition, [3] and [] operands", "where", where,
                       [([1.0, 0.0], [2, 1]), ([1.0, NAN, 3.0], [3]), ([7.0], [])],
                       [False, True, True]))
    c.append(nary_case("where: [3] condition, [2, 1] and [2, 3] operands, b only", "where",
                       where, [([0.0, 1.0, 0.0], [3]), ([1.0, 2.0], [2, 1]),
                               ([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], [2, 3])],
                       [False, False, True]))
    mfill = lambda x, m, v=None: x.masked_fill(m != 0, 2.5)
    c.append(nary_case("masked_fill: equal shapes", "masked_fill", mfill,
                       [([1.0, 2.0, 3.0, NAN, 5.0, 6.0], [2, 3]),
                        ([1.0, 0.0, NAN, 1.0, 0.0, -0.0], [2, 3])], [True, False], k=2.5))
    c.append(nary_case("masked_fill: [3] input, [2, 3] mask", "masked_fill", mfill,
                       [([1.0, 2.0, 3.0], [3]), ([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], [2, 3])],
                       [True, False], k=2.5))
    mnan = lambda x, m: x.masked_fill(m != 0, NAN)
    c.append(nary_case("masked_fill: [2, 1] input, [3] mask, NaN value", "masked_fill", mnan,
                       [([1.0, 2.0], [2, 1]), ([1.0, 0.0, 1.0], [3])], [True, False], k=NAN))

    p = [NAN, 1.0, 0.0, -0.0, INF, -INF, 2.0, NAN, 1.0, -1.0]
    q = [NAN, NAN, -0.0, 0.0, INF, INF, 1.0, 1.0, 2.0, -1.0]
    for key in ("eq", "ne", "lt", "le", "gt", "ge"):
        fn = getattr(torch, key)
        cmp = lambda x, y, fn=fn: fn(x, y).float()
        c.append(nary_case(f"{key}: special pairs", key, cmp, [(p, [10]), (q, [10])],
                           [False, False]))
        c.append(nary_case(f"{key}: [2, 1] and [3]", key, cmp,
                           [([1.0, NAN], [2, 1]), ([0.0, 1.0, 2.0], [3])], [False, False]))
        for s in (0.0, 1.0, NAN):
            cs = lambda x, fn=fn, s=s: fn(x, s).float()
            c.append(nary_case(f"{key}_scalar({s})", f"{key}_scalar", cs, [(p, [10])], [False],
                               k=s))
    return c


# ---- output --------------------------------------------------------------------------------


def emit(unary, nary, out):
    out.write("/* Generated by tests/data/gen_elementwise.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_ELEMENTWISE_REF_H\n#define NABLA_TESTS_ELEMENTWISE_REF_H\n\n")
    out.write("#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.write("/*\n"
              " * A unary op at one set of parameters, element by element (each element in a\n"
              " * one-element tensor: PyTorch's scalar kernels): y = op(x) and dx, the gradient\n"
              " * of sum(y * g). vec_ulps: the largest distance in ulps of PyTorch's vectorised\n"
              " * kernels (runs of 16+) from these values over the inputs other than NaN (-1: a\n"
              " * NaN or an infinity where these are numbers); vec_nan: 1 when the vectorised\n"
              " * kernel gives something else at NaN.\n"
              " */\n"
              "typedef struct ew_ref_unary {\n"
              "    const char *op; /* the test's key for the nabla call */\n"
              "    float k[2];     /* its parameters (gelu: 0 none, 1 tanh) */\n"
              "    int n;\n"
              "    const float *x, *g, *y, *dx;\n"
              "    int vec_ulps, vec_nan;\n"
              "} ew_ref_unary;\n\n")
    for i, c in enumerate(unary):
        for f in ("x", "g", "y", "dx"):
            out.write(f"static const float ew_u{i}_{f}[] = {flist(c[f])};\n")
    out.write("\nstatic const ew_ref_unary ew_ref_unary_cases[] = {\n")
    for i, c in enumerate(unary):
        k = (c["k"] + [0.0, 0.0])[:2]
        v = c["vec_ulps"]
        v = -1 if v == math.inf else v
        out.write(f"    {{\"{c['key']}\", {flist(k)}, {len(c['x'])}, ew_u{i}_x, ew_u{i}_g, "
                  f"ew_u{i}_y, ew_u{i}_dx, {v}, {c['vec_nan']}}},\n")
    out.write("};\n\n")

    out.write("/*\n"
              " * An op of up to three broadcast operands (pow, maximum, minimum, where,\n"
              " * masked_fill, the comparisons): inputs, output, and the gradients of\n"
              " * sum(y * g) for the inputs that require grad (grad NULL for the others; g NULL\n"
              " * when none does). k: masked_fill's value, a comparison's number.\n"
              " */\n"
              "typedef struct ew_ref_nary {\n"
              "    const char *name, *op;\n"
              "    float k;\n"
              "    int nin;\n"
              "    int ndim[3];\n"
              "    int64_t dims[3][2];\n"
              "    const float *in[3];\n"
              "    int out_ndim;\n"
              "    int64_t out_dims[2];\n"
              "    const float *g, *y, *grad[3];\n"
              "} ew_ref_nary;\n\n")
    for i, c in enumerate(nary):
        for j, (vals, _) in enumerate(c["inputs"]):
            out.write(f"static const float ew_n{i}_in{j}[] = {flist(vals)};\n")
        out.write(f"static const float ew_n{i}_y[] = {flist(c['y'])};\n")
        if c["g"] is not None:
            out.write(f"static const float ew_n{i}_g[] = {flist(c['g'])};\n")
        for j, gr in enumerate(c["grads"]):
            if gr is not None:
                out.write(f"static const float ew_n{i}_grad{j}[] = {flist(gr)};\n")
    out.write("\nstatic const ew_ref_nary ew_ref_nary_cases[] = {\n")
    for i, c in enumerate(nary):
        nin = len(c["inputs"])
        shapes = [s for _, s in c["inputs"]] + [[]] * (3 - nin)
        assert all(len(s) <= 2 for s in shapes) and len(c["out_shape"]) <= 2
        ndims = ", ".join(str(len(s)) for s in shapes)
        dims = ", ".join("{" + ", ".join(str(d) for d in (s + [0, 0])[:2]) + "}" for s in shapes)
        ins = ", ".join(f"ew_n{i}_in{j}" if j < nin else "NULL" for j in range(3))
        os_ = c["out_shape"]
        grads = [f"ew_n{i}_grad{j}" if j < nin and c["grads"][j] is not None else "NULL"
                 for j in range(3)]
        g = f"ew_n{i}_g" if c["g"] is not None else "NULL"
        out.write(f"    {{\"{c['name']}\", \"{c['key']}\", {hexf(c['k'])}, {nin},\n"
                  f"     {{{ndims}}}, {{{dims}}}, {{{ins}}},\n"
                  f"     {len(os_)}, {{{', '.join(str(d) for d in (os_ + [0, 0])[:2])}}}, "
                  f"{g}, ew_n{i}_y, {{{', '.join(grads)}}}}},\n")
    out.write("};\n\n#endif\n")


def main():
    unary = [unary_case(*u) for u in UNARY]
    nary = nary_cases()
    for c in unary:
        print(f"{c['key']}{c['k']}: vectorised kernel within {c['vec_ulps']} ulp"
              + (", differs at NaN" if c["vec_nan"] else ""))
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "elementwise_ref.h"), "w") as out:
        emit(unary, nary, out)
    print(f"{len(unary)} unary cases ({sum(len(c['x']) for c in unary)} inputs), "
          f"{len(nary)} n-ary cases ({sum(len(c['y']) for c in nary)} outputs)")


if __name__ == "__main__":
    main()
