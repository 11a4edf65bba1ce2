#!/usr/bin/python3
"""Generate tests/data/conv_ref.h: PyTorch 1.13 reference values for tests/test_ops_conv.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_conv.py`.

One table of conv2d cases: the input, weight and bias (or none), stride, padding, dilation
(each one value or a pair, as given to PyTorch) and groups; which of the three require grad;
the output, the gradient the backward is seeded with (grad_out, shaped like the output), the
gradients PyTorch computes, and the node the output records (grad_fn.name(); for unbatched
input the ConvolutionBackward0 under PyTorch's SqueezeBackward1, which nabla records on the
output itself). Cases cover stride, padding, dilation, groups (depthwise too), no bias,
unbatched input, 1x1 kernels, non-square shapes, an empty batch, and inputs holding 0, -0,
inf and NaN.

Each value also carries a bound for the error of a float sum of its terms, whatever their
order: the same computation on the absolute values (|x|, |w|, |b|, |grad_out|), Σ|term|, and
the number of terms n. Two orders of the sum each lie within n·2^-24·Σ|term| of the exact sum
(to first order), so the test allows 2·n·2^-24·Σ|term| between nabla and PyTorch.

Floats are C hex-float literals of their float32 values (NAN / INFINITY where PyTorch gives
them), so the values are exact.
"""
import math
import os

import torch
import torch.nn.functional as F

from gen_loss import hexf  # the same C literals as loss_ref.h


class Case:
    def __init__(self, name, x, w, b, stride=(1,), padding=(0,), dilation=(1,), groups=1,
                 grads=(1, 1, 1)):
        self.name, self.stride, self.padding, self.dilation, self.groups = (
            name, stride, padding, dilation, groups)
        args = dict(stride=stride[0] if len(stride) == 1 else tuple(stride),
                    padding=padding[0] if len(padding) == 1 else tuple(padding),
                    dilation=dilation[0] if len(dilation) == 1 else tuple(dilation),
                    groups=groups)
        ins = [None if t is None else t.detach().clone().to(torch.float32).requires_grad_(bool(g))
               for t, g in zip((x, w, b), grads)]
        out = F.conv2d(ins[0], ins[1], ins[2], **args)
        gen = torch.Generator().manual_seed(len(name))
        self.grad_out = (torch.rand(out.shape, generator=gen) * 2.0 - 0.5).to(torch.float32)
        self.out = out.detach()
        self.inputs = ins
        node = out.grad_fn
        if node is not None and node.name() == "SqueezeBackward1":
            node = node.next_functions[0][0]
        self.node = node.name() if node is not None else ""
        if node is not None:
            out.backward(self.grad_out)
        self.grads = [t.grad if t is not None and t.requires_grad else None for t in ins]

        # the bounds: the same sums over absolute values, in double
        ab = [None if t is None else t.detach().abs().double() for t in ins]
        ag = self.grad_out.abs().double()
        xa, wa = ab[0].requires_grad_(True), ab[1].requires_grad_(True)
        ya = F.conv2d(xa, wa, ab[2], **args)
        ya.backward(ag)
        self.out_abs, self.gx_abs, self.gw_abs = ya.detach(), xa.grad, wa.grad
        self.gb_abs = ag.sum(dim=tuple(d for d in range(ag.dim()) if d != ag.dim() - 3))
        kh, kw = w.shape[2], w.shape[3]
        og = w.shape[0] // groups
        positions = math.prod(out.shape) // w.shape[0]  # N·oH·oW
        self.terms = (w.shape[1] * kh * kw + (b is not None), og * kh * kw, positions,
                      positions)


def randn(g, *shape, scale=1.0):
    return torch.randn(shape, generator=g) * scale


def cases():
    g = torch.Generator().manual_seed(2024)
    c = []
    x, w, b = randn(g, 2, 3, 6, 5), randn(g, 4, 3, 3, 3), randn(g, 4)
    c.append(Case("3x3, bias", x, w, b))
    c.append(Case("3x3, no bias", x, w, None, grads=(1, 1, 0)))
    c.append(Case("stride 2", x, w, b, stride=(2,)))
    c.append(Case("stride (2, 1), padding (1, 2)", x, w, b, stride=(2, 1), padding=(1, 2)))
    c.append(Case("padding 1", x, w, b, padding=(1,)))
    c.append(Case("dilation 2, padding 2", x, w, b, padding=(2,), dilation=(2,)))
    c.append(Case("dilation (1, 2)", x, w, b, dilation=(1, 2)))
    c.append(Case("stride 3, dilation 2, padding (1, 0)", randn(g, 2, 3, 9, 8), w, b,
                  stride=(3,), padding=(1, 0), dilation=(2,)))
    c.append(Case("stride larger than the kernel", randn(g, 1, 3, 7, 7), randn(g, 2, 3, 2, 2),
                  randn(g, 2), stride=(3,)))
    c.append(Case("non-square kernel 2x4", randn(g, 2, 2, 5, 7), randn(g, 3, 2, 2, 4),
                  randn(g, 3), padding=(1,)))
    c.append(Case("non-square kernel 5x1, stride (1, 2)", randn(g, 1, 2, 8, 4),
                  randn(g, 3, 2, 5, 1), randn(g, 3), stride=(1, 2)))
    c.append(Case("1x1 kernel", randn(g, 2, 5, 4, 3), randn(g, 6, 5, 1, 1), randn(g, 6)))
    c.append(Case("1x1 kernel, stride 2, padding 1", randn(g, 2, 5, 4, 3), randn(g, 6, 5, 1, 1),
                  randn(g, 6), stride=(2,), padding=(1,)))
    c.append(Case("groups 2", randn(g, 2, 4, 5, 5), randn(g, 6, 2, 3, 3), randn(g, 6),
                  groups=2, padding=(1,)))
    c.append(Case("groups 3, stride 2, no bias", randn(g, 2, 6, 7, 6), randn(g, 3, 2, 3, 2),
                  None, groups=3, stride=(2,), grads=(1, 1, 0)))
    c.append(Case("depthwise", randn(g, 2, 4, 6, 6), randn(g, 4, 1, 3, 3), randn(g, 4),
                  groups=4, padding=(1,)))
    c.append(Case("depthwise, multiplier 2", randn(g, 1, 3, 5, 6), randn(g, 6, 1, 3, 3),
                  randn(g, 6), groups=3, dilation=(2, 1)))
    c.append(Case("unbatched", randn(g, 3, 6, 5), w, b, padding=(1,)))
    c.append(Case("unbatched, groups 3, no bias", randn(g, 3, 4, 4), randn(g, 3, 1, 2, 2),
                  None, groups=3, grads=(1, 1, 0)))
    c.append(Case("kernel the size of the input", randn(g, 3, 2, 3, 4), randn(g, 5, 2, 3, 4),
                  randn(g, 5)))
    c.append(Case("one channel in and out", randn(g, 2, 1, 5, 5), randn(g, 1, 1, 3, 3),
                  randn(g, 1)))
    c.append(Case("8 channels, 9x10", randn(g, 2, 8, 9, 10), randn(g, 8, 8, 3, 3),
                  randn(g, 8), padding=(1,), stride=(1, 2)))
    c.append(Case("empty batch", torch.zeros(0, 3, 5, 5), w, b))
    c.append(Case("only the input requires grad", x, w, b, grads=(1, 0, 0)))
    c.append(Case("only the weight requires grad", x, w, b, grads=(0, 1, 0), padding=(1,)))
    c.append(Case("only the bias requires grad", x, w, b, grads=(0, 0, 1)))
    c.append(Case("input and bias", x, w, b, grads=(1, 0, 1), stride=(2,)))
    c.append(Case("nothing requires grad", x, w, b, grads=(0, 0, 0)))
    # special values: an infinity and a NaN in the input (the windows over them are inf and
    # NaN, dW is NaN), zeros of both signs (sums of only zeros are +0, as PyTorch's), an
    # infinite weight times the padding's zeros (NaN, as PyTorch multiplies the padding too)
    xs = randn(g, 1, 2, 5, 5)
    xs[0, 0, 0, 0] = math.inf
    xs[0, 1, 4, 4] = math.nan
    xs[0, 0, 2, 3] = -math.inf
    c.append(Case("inf, -inf and NaN in the input", xs, randn(g, 2, 2, 2, 2).abs() + 0.1,
                  randn(g, 2)))
    z = torch.zeros(2, 2, 4, 4)
    z[0] = -0.0
    z[1, 0, 1:3, 1:3] = -0.0
    c.append(Case("zeros of both signs, no bias", z, randn(g, 3, 2, 2, 2), None,
                  grads=(1, 1, 0)))
    c.append(Case("zeros and a -0 bias", -z.abs(), randn(g, 2, 2, 3, 3), torch.tensor([-0.0, 0.0]),
                  padding=(1,)))
    wi = torch.ones(1, 1, 3, 3)
    wi[0, 0, 0, 0] = math.inf
    c.append(Case("infinite weight over the padding", randn(g, 1, 1, 3, 3).abs() + 0.5, wi,
                  None, padding=(1,), grads=(1, 1, 0)))
    return c


def emit(cases, out):
    pool, names = [], {}

    def arr(t):
        if t is None:
            return "NULL"
        vals = ", ".join(hexf(v) for v in t.detach().to(torch.float32).reshape(-1).tolist())
        if vals not in names:
            names[vals] = f"cref_d{len(pool)}"
            pool.append(f"static const float {names[vals]}[] = {{{vals or '0'}}};")
        return names[vals]

    def tens(t, grad=None, bound=None, req=False):
        if t is None:
            return "{-1, {0}, NULL, false, NULL, NULL}"
        d = list(t.shape) + [0] * (4 - t.dim())
        return (f"{{{t.dim()}, {{{', '.join(str(v) for v in d)}}}, {arr(t)}, "
                f"{'true' if req else 'false'}, {arr(grad) if req else 'NULL'}, "
                f"{arr(bound) if req else 'NULL'}}}")

    def ints(p):
        return f"{{{len(p)}, {{{', '.join(str(v) for v in p)}}}}}"

    rows = []
    for k in cases:
        bounds = (k.gx_abs, k.gw_abs, k.gb_abs)
        ins = [tens(t, gr, bd, t is not None and t.requires_grad)
               for t, gr, bd in zip(k.inputs, k.grads, bounds)]
        rows.append(f"    {{\"{k.name}\", {ints(k.stride)}, {ints(k.padding)}, "
                    f"{ints(k.dilation)}, {k.groups},\n     {{{', '.join(ins)}}},\n"
                    f"     {tens(k.out)}, {arr(k.out_abs)}, {arr(k.grad_out)}, "
                    f"{{{', '.join(str(n) for n in k.terms)}}}, \"{k.node}\"}},")

    out.write("/* Generated by tests/data/gen_conv.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_CONV_REF_H\n#define NABLA_TESTS_CONV_REF_H\n\n")
    out.write("#include <math.h>\n#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.write("/* A tensor of a case: ndim -1 is an absent (NULL) argument. bound: Σ|term| of each\n"
              " * gradient element (the same computation on absolute values). */\n"
              "typedef struct cref_tensor {\n"
              "    int ndim;\n    int64_t dims[4];\n    const float *data;\n"
              "    bool requires_grad;\n    const float *grad, *bound; /* PyTorch's, when it "
              "requires grad */\n} cref_tensor;\n\n")
    out.write("/* stride, padding, dilation: one value or a pair, as nb_shape takes them. terms: how\n"
              " * many terms each value of the output, dx, dW and db sums. node: \"\" when none. */\n"
              "typedef struct cref_pair {\n    int ndim;\n    int64_t v[2];\n} cref_pair;\n\n"
              "typedef struct cref_case {\n"
              "    const char *name;\n    cref_pair stride, padding, dilation;\n    int64_t groups;\n"
              "    cref_tensor in[3]; /* input, weight, bias */\n    cref_tensor out;\n"
              "    const float *out_bound; /* Σ|term| of each output */\n"
              "    const float *grad_out;  /* shaped like out */\n    int64_t terms[4];\n"
              "    const char *node;\n} cref_case;\n\n")
    out.write("\n".join(pool) + "\n\n")
    out.write("static const cref_case cref_cases[] = {\n" + "\n".join(rows) + "\n};\n\n")
    out.write("#endif\n")


def main():
    torch.set_num_threads(1)
    cs = cases()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "conv_ref.h"), "w") as out:
        emit(cs, out)
    print(f"{len(cs)} cases")


if __name__ == "__main__":
    main()
