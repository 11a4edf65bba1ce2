#!/usr/bin/python3
"""Generate tests/data/loss_ref.h: PyTorch 1.13 reference values for tests/test_ops_loss.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_loss.py`.

One table of cases, each an op of the linear algebra, loss and normalisation family with its
arguments: the inputs (and which require grad), the output, the gradient the backward is
seeded with (grad_out, shaped like the output) and the gradients PyTorch computes for the
inputs, and the name of the node the output records (PyTorch's grad_fn.name(), or nabla's
where docs/ops.md says nabla records another). Cases cover every reduction and option:
weights, ignore_index, label smoothing, probability targets, logits of +-1e4, probabilities 0
and 1, empty batches. A second table holds dropout outputs for seeds 0 and 1, several p and
shapes, and the first torch.rand value drawn after them (the generator's position).

Floats are C hex-float literals of their float32 values (NAN / INFINITY where PyTorch gives
them), so the values are exact.
"""
import math
import os

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum", "batchmean")
OPS = ("LINEAR", "ADDMM", "BMM", "OUTER", "MSE", "L1", "SMOOTH_L1", "HUBER", "BCE", "KL",
       "NLL", "CE", "LAYER_NORM")


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


def t32(v):
    return torch.tensor(v, dtype=torch.float32)


def randn(*shape, scale=1.0, gen=None):
    return torch.randn(shape, generator=gen) * scale


class Case:
    def __init__(self, name, op, inputs, grads, fn, reduction=0, ignore_index=-100, p0=0.0,
                 p1=0.0, flag=0, node=None, exact=False, exact_grad=False):
        """inputs: tensors (None: absent); grads: which require grad; fn builds the output."""
        self.name, self.op = name, op
        self.reduction, self.ignore_index, self.p0, self.p1, self.flag = (
            reduction, ignore_index, p0, p1, flag)
        self.exact, self.exact_grad = exact, exact_grad
        ins = []
        for t, g in zip(inputs, grads):
            if t is None:
                ins.append(None)
                continue
            t = t.detach().clone().to(torch.float32)
            ins.append(t.requires_grad_(bool(g)))
        self.inputs = ins
        out = fn(*ins)
        gen = torch.Generator().manual_seed(len(name))
        self.grad_out = (torch.rand(out.shape, generator=gen) * 2.0 - 0.5).to(torch.float32)
        self.out = out.detach()
        if any(t is not None and t.requires_grad for t in ins):
            out.backward(self.grad_out)
        self.node = node if node is not None else out.grad_fn.name()
        self.grads = [t.grad if t is not None and t.requires_grad else None for t in ins]
        for t, g in zip(ins, self.grads):
            if t is not None and t.requires_grad:
                assert g is not None, (name, "no gradient")


def red(r):
    return REDUCTIONS.index(r)


# ---- linear algebra --------------------------------------------------------------------------

def linalg_cases(g):
    c = []
    W, b = randn(5, 4, gen=g), randn(5, gen=g)
    for shape in ((3, 4), (4,), (2, 3, 4), (2, 1, 3, 4), (0, 4)):
        x = randn(*shape, gen=g)
        d = len(shape)
        c.append(Case(f"linear {d}-D x, bias", "LINEAR", [x, W, b], [1, 1, 1],
                      lambda x, w, b: F.linear(x, w, b), node="AddmmBackward0"))
        c.append(Case(f"linear {d}-D x, no bias", "LINEAR", [x, W, None], [1, 1, 0],
                      lambda x, w, b: F.linear(x, w), node="MmBackward0"))
    x = randn(3, 4, gen=g)
    c.append(Case("linear, only W requires grad", "LINEAR", [x, W, b], [0, 1, 0],
                  lambda x, w, b: F.linear(x, w, b), node="AddmmBackward0"))
    c.append(Case("linear, x and bias", "LINEAR", [x, W, b], [1, 0, 1],
                  lambda x, w, b: F.linear(x, w, b), node="AddmmBackward0"))
    c.append(Case("linear, in_features 0", "LINEAR", [torch.zeros(3, 0), torch.zeros(5, 0), b],
                  [1, 1, 1], lambda x, w, b: F.linear(x, w, b), node="AddmmBackward0"))
    m1, m2 = randn(2, 3, gen=g), randn(3, 4, gen=g)
    for shape in ((2, 4), (4,), (2, 1), (), (1, 4)):
        inp = randn(*shape, gen=g)
        c.append(Case(f"addmm input {list(shape)}, beta 0.5 alpha 2", "ADDMM", [inp, m1, m2],
                      [1, 1, 1],
                      lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0), p0=0.5, p1=2.0))
    c.append(Case("addmm beta 1 alpha 1", "ADDMM", [randn(2, 4, gen=g), m1, m2], [1, 1, 1],
                  lambda i, a, b: torch.addmm(i, a, b), p0=1.0, p1=1.0))
    c.append(Case("addmm beta 0 ignores NaN", "ADDMM", [t32([math.nan, 1.0, 2.0, 3.0]), m1, m2],
                  [1, 1, 1], lambda i, a, b: torch.addmm(i, a, b, beta=0.0, alpha=-1.5),
                  p0=0.0, p1=-1.5))
    c.append(Case("bmm", "BMM", [randn(2, 3, 4, gen=g), randn(2, 4, 5, gen=g)], [1, 1],
                  torch.bmm))
    c.append(Case("bmm, b constant", "BMM", [randn(3, 1, 4, gen=g), randn(3, 4, 2, gen=g)],
                  [1, 0], torch.bmm))
    c.append(Case("outer", "OUTER", [randn(3, gen=g), randn(4, gen=g)], [1, 1], torch.outer,
                  exact=True))
    c.append(Case("outer, empty", "OUTER", [randn(0, gen=g), randn(4, gen=g)], [1, 1],
                  torch.outer, exact=True))
    return c


# ---- pointwise losses ------------------------------------------------------------------------

def linear_bias_cases():
    """linear with a bias that broadcasts to the output: 0-d, [1], a column, a whole matrix
    (its own generator, so the other cases keep their values)."""
    g = torch.Generator().manual_seed(4321)
    W = randn(5, 4, gen=g)
    c = []
    for xs, bs in (((3, 4), ()), ((3, 4), (1,)), ((3, 4), (3, 5)), ((3, 4), (1, 5)),
                   ((3, 4), (3, 1)), ((4,), (1,)), ((4,), ()), ((2, 3, 4), ()),
                   ((2, 3, 4), (1, 5)), ((2, 1, 3, 4), (3, 5)), ((2, 1, 3, 4), (2, 1, 1, 5)),
                   ((0, 4), ())):
        x, b = randn(*xs, gen=g), randn(*bs, gen=g)
        c.append(Case(f"linear {len(xs)}-D x {list(xs)}, bias {list(bs)}", "LINEAR", [x, W, b],
                      [1, 1, 1], lambda x, w, b: F.linear(x, w, b), node="AddmmBackward0"))
    return c


def pointwise_cases(g):
    c = []
    x = t32([[1e4, -1e4, 0.5, -0.0, 2.0, -3.0], [0.25, 1.75, -0.6, 0.1, 5.0, -2.5]])
    y = t32([[-1e4, 1e4, 0.4, 0.3, -2.0, -3.4], [0.0, 1.0, -0.5, -0.9, 5.5, -2.0]])
    for r in ("none", "mean", "sum"):
        c.append(Case(f"mse {r}", "MSE", [x, y], [1, 1],
                      lambda a, b, r=r: F.mse_loss(a, b, reduction=r), reduction=red(r)))
        c.append(Case(f"l1 {r}", "L1", [x, y], [1, 1],
                      lambda a, b, r=r: F.l1_loss(a, b, reduction=r), reduction=red(r)))
        for beta in (1.0, 0.5, 0.0):
            c.append(Case(f"smooth_l1 beta {beta} {r}", "SMOOTH_L1", [x, y], [1, 1],
                          lambda a, b, r=r, beta=beta: F.smooth_l1_loss(a, b, reduction=r,
                                                                        beta=beta),
                          reduction=red(r), p0=beta))
        for delta in (1.0, 0.3, 2.5):
            c.append(Case(f"huber delta {delta} {r}", "HUBER", [x, y], [1, 1],
                          lambda a, b, r=r, d=delta: F.huber_loss(a, b, reduction=r, delta=d),
                          reduction=red(r), p0=delta))
    c.append(Case("mse, target constant", "MSE", [x, y], [1, 0],
                  lambda a, b: F.mse_loss(a, b), reduction=1))
    c.append(Case("l1, input constant", "L1", [x, y], [0, 1], lambda a, b: F.l1_loss(a, b),
                  reduction=1))
    c.append(Case("mse 0-d", "MSE", [t32(0.5), t32(-1.5)], [1, 1],
                  lambda a, b: F.mse_loss(a, b), reduction=1))
    c.append(Case("mse empty, sum", "MSE", [torch.zeros(0, 3), torch.zeros(0, 3)], [1, 1],
                  lambda a, b: F.mse_loss(a, b, reduction="sum"), reduction=2))

    # binary cross-entropy on probabilities: 0 and 1 included (the -100 clamp)
    p = t32([[0.0, 1.0, 0.5, 0.25, 1e-8, 0.999], [0.0, 1.0, 0.9, 0.1, 0.7, 0.3]])
    q = t32([[0.0, 1.0, 0.3, 1.0, 0.0, 1.0], [1.0, 0.0, 0.9, 0.5, 0.2, 0.6]])
    w3 = t32([0.5, 2.0, 1.5, 1.0, 0.25, 3.0])
    w23 = t32([[0.5], [2.0]])
    for r in ("none", "mean", "sum"):
        c.append(Case(f"bce {r}", "BCE", [p, q, None], [1, 1, 0],
                      lambda a, b, w, r=r: F.binary_cross_entropy(a, b, reduction=r),
                      reduction=red(r)))
        c.append(Case(f"bce weight [6] {r}", "BCE", [p, q, w3], [1, 1, 0],
                      lambda a, b, w, r=r: F.binary_cross_entropy(a, b, weight=w, reduction=r),
                      reduction=red(r)))
    c.append(Case("bce weight [2, 1] mean", "BCE", [p, q, w23], [1, 0, 0],
                  lambda a, b, w: F.binary_cross_entropy(a, b, weight=w), reduction=1))
    pi = t32([0.2, 0.6, 0.9, 0.35])
    qi = t32([0.0, 1.0, 0.25, 0.5])
    c.append(Case("bce interior, mean", "BCE", [pi, qi, None], [1, 1, 0],
                  lambda a, b, w: F.binary_cross_entropy(a, b), reduction=1))

    # kl_div: input log-probabilities, target probabilities (0 included) or log-probabilities
    li = torch.log_softmax(randn(3, 4, gen=g), 1)
    tp = torch.softmax(randn(3, 4, gen=g), 1)
    tp[0, 1] = 0.0
    lt = torch.log_softmax(randn(3, 4, gen=g), 1)
    for r in REDUCTIONS:
        c.append(Case(f"kl_div {r}", "KL", [li, tp], [1, 1],
                      lambda a, b, r=r: F.kl_div(a, b, reduction=r), reduction=red(r)))
        c.append(Case(f"kl_div log_target {r}", "KL", [li, lt], [1, 1],
                      lambda a, b, r=r: F.kl_div(a, b, reduction=r, log_target=True),
                      reduction=red(r), flag=1))
    c.append(Case("kl_div 0-d batchmean", "KL", [t32(-0.5), t32(0.25)], [1, 1],
                  lambda a, b: F.kl_div(a, b, reduction="batchmean"), reduction=3))
    return c


# ---- class targets -------------------------------------------------------------------------

def class_cases(g):
    c = []
    lp = torch.log_softmax(randn(5, 4, gen=g), 1)
    tgt = torch.tensor([1, 0, 3, -100, 2])
    w = t32([0.5, 2.0, 1.0, 3.0])

    def nll(a, t, wt, r, ii=-100):
        return F.nll_loss(a, t.long(), weight=wt, ignore_index=ii, reduction=r)

    for r in ("none", "mean", "sum"):
        for wt, wn in ((None, ""), (w, " weight")):
            c.append(Case(f"nll{wn} {r}", "NLL", [lp, tgt.float(), wt], [1, 0, 0],
                          lambda a, t, ww, r=r: nll(a, t, ww, r), reduction=red(r),
                          exact=True))
        c.append(Case(f"nll ignore_index 1 {r}", "NLL", [lp, t32([1, 0, 3, 1, 2]), w],
                      [1, 0, 0], lambda a, t, ww, r=r: nll(a, t, ww, r, 1), reduction=red(r),
                      ignore_index=1, exact=True))
        c.append(Case(f"nll 1-D {r}", "NLL", [lp[0], t32(2), w], [1, 0, 0],
                      lambda a, t, ww, r=r: nll(a, t, ww, r), reduction=red(r), exact=True))
    # a zero class weight: dx = -0·g or 0·-g keeps its sign, as PyTorch assigns the values
    wz = t32([0.0, 2.0, 1.0, 0.0])
    for r in ("none", "sum"):
        c.append(Case(f"nll zero weight {r}, gradient's bits", "NLL", [lp, tgt.float(), wz],
                      [1, 0, 0], lambda a, t, ww, r=r: nll(a, t, ww, r), reduction=red(r),
                      exact=True, exact_grad=True))
    c.append(Case("nll all ignored, mean", "NLL", [lp, torch.full((5,), -100.0), None],
                  [1, 0, 0], lambda a, t, ww: nll(a, t, ww, "mean"), reduction=1, exact=True))
    big = torch.log_softmax(randn(40, 3, gen=g), 1)
    bt = torch.randint(0, 3, (40,), generator=g)
    bt[7] = -100
    c.append(Case("nll 40 samples weight mean (cascade)", "NLL",
                  [big, bt.float(), t32([0.3, 1.7, 0.9])], [1, 0, 0],
                  lambda a, t, ww: nll(a, t, ww, "mean"), reduction=1, exact=True))
    c.append(Case("nll 40 samples sum (cascade)", "NLL", [big, bt.float(), None], [1, 0, 0],
                  lambda a, t, ww: nll(a, t, ww, "sum"), reduction=2, exact=True))

    def ce(a, t, wt, r, ii=-100, ls=0.0):
        tt = t if t.shape == a.shape else t.long()
        return F.cross_entropy(a, tt, weight=wt, ignore_index=ii, reduction=r,
                               label_smoothing=ls)

    logits = randn(5, 4, scale=2.0, gen=g)
    extreme = t32([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, 1e4, 1e4], [0.5, -0.5, 1e4, -1e4],
                   [1e4, 1e4, 1e4, 1e4], [-3.0, 2.0, -1e4, 0.0]])
    for r in ("none", "mean", "sum"):
        for ls in (0.0, 0.1):
            for wt, wn in ((None, ""), (w, " weight")):
                c.append(Case(f"ce{wn} ls {ls} {r}", "CE", [logits, tgt.float(), wt],
                              [1, 0, 0], lambda a, t, ww, r=r, ls=ls: ce(a, t, ww, r, ls=ls),
                              reduction=red(r), p0=ls))
            c.append(Case(f"ce logits +-1e4 ls {ls} {r}", "CE", [extreme, tgt.float(), w],
                          [1, 0, 0], lambda a, t, ww, r=r, ls=ls: ce(a, t, ww, r, ls=ls),
                          reduction=red(r), p0=ls))
            c.append(Case(f"ce 1-D ls {ls} {r}", "CE", [logits[2], t32(3), None], [1, 0, 0],
                          lambda a, t, ww, r=r, ls=ls: ce(a, t, ww, r, ls=ls),
                          reduction=red(r), p0=ls))
        c.append(Case(f"ce ignore_index 0, ls 0.2 {r}", "CE", [logits, t32([1, 0, 3, 0, 2]), w],
                      [1, 0, 0], lambda a, t, ww, r=r: ce(a, t, ww, r, 0, 0.2),
                      reduction=red(r), ignore_index=0, p0=0.2))
    c.append(Case("ce ls 1.0 mean", "CE", [logits, tgt.float(), w], [1, 0, 0],
                  lambda a, t, ww: ce(a, t, ww, "mean", ls=1.0), reduction=1, p0=1.0))
    c.append(Case("ce 40 samples mean", "CE", [randn(40, 3, gen=g), bt.float(), None],
                  [1, 0, 0], lambda a, t, ww: ce(a, t, ww, "mean"), reduction=1))

    # probability targets: the target's shape is the input's
    probs = torch.softmax(randn(5, 4, gen=g), 1)
    for r in ("none", "mean", "sum"):
        for ls in (0.0, 0.15):
            for wt, wn in ((None, ""), (w, " weight")):
                c.append(Case(f"ce probs{wn} ls {ls} {r}", "CE", [logits, probs, wt], [1, 1, 0],
                              lambda a, t, ww, r=r, ls=ls: ce(a, t, ww, r, ls=ls),
                              reduction=red(r), p0=ls))
        c.append(Case(f"ce probs logits +-1e4 {r}", "CE", [extreme, probs, None], [1, 1, 0],
                      lambda a, t, ww, r=r: ce(a, t, ww, r), reduction=red(r)))
        c.append(Case(f"ce probs 1-D {r}", "CE", [logits[1], probs[3], w], [1, 1, 0],
                      lambda a, t, ww, r=r: ce(a, t, ww, r), reduction=red(r)))
        # the weight's gradient: PyTorch composes this loss of ops, the weight's product too
        for ls in (0.0, 0.15):
            c.append(Case(f"ce probs weight grad ls {ls} {r}", "CE", [logits, probs, w],
                          [1, 1, 1], lambda a, t, ww, r=r, ls=ls: ce(a, t, ww, r, ls=ls),
                          reduction=red(r), p0=ls))
        c.append(Case(f"ce probs 1-D weight grad alone {r}", "CE", [logits[1], probs[3], w],
                      [0, 0, 1], lambda a, t, ww, r=r: ce(a, t, ww, r), reduction=red(r)))
    return c


# ---- layer_norm ------------------------------------------------------------------------------

def layer_norm_cases(g):
    c = []
    specs = (((3, 5), (5,), 1e-5), ((2, 3, 4), (3, 4), 1e-5), ((4, 100), (100,), 1e-3),
             ((2, 300), (300,), 1e-5), ((3, 9), (9,), 1e-5), ((0, 6), (6,), 1e-5))
    for shape, ns, eps in specs:
        x = randn(*shape, scale=3.0, gen=g) + 2.0
        wt, bs = randn(*ns, gen=g), randn(*ns, gen=g)
        nd = len(ns)
        for use_w, use_b in ((1, 1), (0, 0), (1, 0), (0, 1)):
            c.append(Case(f"layer_norm {list(shape)} over {list(ns)} w{use_w} b{use_b}",
                          "LAYER_NORM", [x, wt if use_w else None, bs if use_b else None],
                          [1, use_w, use_b],
                          lambda a, w_, b_, ns=ns, eps=eps: F.layer_norm(a, ns, w_, b_, eps),
                          p0=eps, flag=nd, exact=True))
    # Rows shorter than PyTorch's 8 lanes, of whole vectors, with a tail, and far from 0 (where
    # the fused multiply-adds tell): every gradient's bits, one thread's (see main).
    g2 = torch.Generator().manual_seed(77)
    for shape, off in (((4, 1), 1.0), ((3, 7), 0.0), ((2, 8), 5.0), ((3, 13), 1e3),
                       ((2, 35), -20.0), ((2, 3, 17), 0.0)):
        x = randn(*shape, scale=2.0, gen=g2) + off
        ns = shape[-1:]
        wt, bs = randn(*ns, gen=g2), randn(*ns, gen=g2)
        for use_w in (1, 0):
            c.append(Case(f"layer_norm {list(shape)} + {off} w{use_w}, gradients' bits",
                          "LAYER_NORM", [x, wt if use_w else None, bs if use_w else None],
                          [1, use_w, use_w],
                          lambda a, w_, b_, ns=ns: F.layer_norm(a, ns, w_, b_, 1e-5),
                          p0=1e-5, flag=1, exact=True, exact_grad=True))
    x = randn(3, 6, gen=g)
    c.append(Case("layer_norm, only weight requires grad", "LAYER_NORM",
                  [x, randn(6, gen=g), randn(6, gen=g)], [0, 1, 0],
                  lambda a, w_, b_: F.layer_norm(a, (6,), w_, b_), p0=1e-5, flag=1, exact=True))
    c.append(Case("layer_norm, only bias requires grad", "LAYER_NORM",
                  [x, randn(6, gen=g), randn(6, gen=g)], [0, 0, 1],
                  lambda a, w_, b_: F.layer_norm(a, (6,), w_, b_), p0=1e-5, flag=1, exact=True))
    return c


# ---- dropout ---------------------------------------------------------------------------------

def dropout_cases():
    c = []
    for seed in (0, 1):
        for p in (0.5, 0.2, 0.9, 0.3333):
            for shape in ((7,), (4, 5), (3, 2, 17)):
                n = math.prod(shape)
                x = (torch.arange(n, dtype=torch.float32) * 0.37 - 3.0).reshape(shape)
                x.requires_grad_(True)
                torch.manual_seed(seed)
                y = F.dropout(x, p, training=True)
                y2 = F.dropout(x, p, training=True)  # the generator goes on from the first
                after = torch.rand(1).item()
                y.backward(torch.ones(shape))
                assert y.grad_fn.name() == "MulBackward0"
                c.append(dict(seed=seed, p=p, shape=shape, x=x.detach(), y=y.detach(),
                              y2=y2.detach(), gx=x.grad, after=after))
    return c


# ---- output ----------------------------------------------------------------------------------

def emit(cases, drops, out):
    pool, names = [], {}

    def arr(t):
        """The name of a static array holding t's values (one array per distinct content)."""
        if t is None:
            return "NULL"
        vals = ", ".join(hexf(v) for v in t.detach().to(torch.float32).reshape(-1).tolist())
        if vals not in names:
            names[vals] = f"lref_d{len(pool)}"
            pool.append(f"static const float {names[vals]}[] = {{{vals or '0'}}};")
        return names[vals]

    def tens(t, grad=None, req=False):
        if t is None:
            return "{-1, {0}, NULL, false, NULL}"
        d = list(t.shape) + [0] * (4 - t.dim())
        return (f"{{{t.dim()}, {{{', '.join(str(v) for v in d)}}}, {arr(t)}, "
                f"{'true' if req else 'false'}, {arr(grad) if req else 'NULL'}}}")

    rows = []
    for k in cases:
        ins = [tens(t, gr, t is not None and t.requires_grad) for t, gr in zip(k.inputs, k.grads)]
        ins += [tens(None)] * (4 - len(ins))
        rows.append(f"    {{\"{k.name}\", LREF_{k.op}, {k.reduction}, {k.ignore_index}, "
                    f"{k.p0!r}, {k.p1!r}, {k.flag}, {'true' if k.exact else 'false'}, "
                    f"{'true' if k.exact_grad else 'false'}, "
                    f"{len(k.inputs)},\n     {{{', '.join(ins)}}},\n     {tens(k.out)}, "
                    f"{arr(k.grad_out)}, \"{k.node}\"}},")
    drows = []
    for k in drops:
        d = list(k["shape"]) + [0] * (3 - len(k["shape"]))
        drows.append(f"    {{{k['seed']}, {k['p']!r}, {len(k['shape'])}, "
                     f"{{{', '.join(str(v) for v in d)}}}, {arr(k['x'])}, {arr(k['y'])}, "
                     f"{arr(k['y2'])}, {arr(k['gx'])}, {hexf(k['after'])}}},")

    out.write("/* Generated by tests/data/gen_loss.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_LOSS_REF_H\n#define NABLA_TESTS_LOSS_REF_H\n\n")
    out.write("#include <math.h>\n#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.write("/* Which op a case calls (and how its arguments read). */\n")
    out.write("typedef enum lref_op {\n" + "".join(f"    LREF_{o},\n" for o in OPS) +
              "} lref_op;\n\n")
    out.write("/* A tensor of a case: ndim -1 is an absent (NULL) argument. */\n"
              "typedef struct lref_tensor {\n"
              "    int ndim;\n    int64_t dims[4];\n    const float *data;\n"
              "    bool requires_grad;\n    const float *grad; /* PyTorch's, when it requires grad */\n"
              "} lref_tensor;\n\n")
    out.write("/*\n"
              " * p0, p1: addmm's beta and alpha; smooth_l1's beta, huber's delta, cross_entropy's\n"
              " * label_smoothing, layer_norm's eps (p0). flag: kl_div's log_target, layer_norm's\n"
              " * number of normalized dims (the last ones of input 0). exact: nabla computes the\n"
              " * forward with PyTorch's float operations, so the output is compared bit for bit.\n"
              " * exact_grad: so are the gradients (of one backward; PyTorch's with one thread).\n"
              " */\n"
              "typedef struct lref_case {\n"
              "    const char *name;\n    lref_op op;\n    int reduction; /* nb_reduction's values */\n"
              "    int64_t ignore_index;\n    double p0, p1;\n    int flag;\n    bool exact, exact_grad;\n"
              "    int n_inputs;\n    lref_tensor in[4];\n    lref_tensor out;\n"
              "    const float *grad_out; /* shaped like out */\n    const char *node;\n"
              "} lref_case;\n\n")
    out.write("/*\n * dropout(x, p) twice after manual_seed(seed): y, then y2; gx the gradient of\n"
              " * sum(y) wrt x; after: torch.rand(1) drawn next.\n */\n"
              "typedef struct lref_dropout {\n"
              "    uint64_t seed;\n    double p;\n    int ndim;\n    int64_t dims[3];\n"
              "    const float *x, *y, *y2, *gx;\n    float after;\n} lref_dropout;\n\n")
    out.write("\n".join(pool) + "\n\n")
    out.write("static const lref_case lref_cases[] = {\n" + "\n".join(rows) + "\n};\n\n")
    out.write("static const lref_dropout lref_dropouts[] = {\n" + "\n".join(drows) + "\n};\n\n")
    out.write("#endif\n")


def main():
    # one thread: layer_norm's weight and bias gradients are sums of per-thread sums
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    cases = (linalg_cases(g) + pointwise_cases(g) + class_cases(g) + layer_norm_cases(g) +
             linear_bias_cases())
    drops = dropout_cases()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "loss_ref.h"), "w") as out:
        emit(cases, drops, out)
    print(f"{len(cases)} cases, {len(drops)} dropout cases")


if __name__ == "__main__":
    main()
