#!/usr/bin/python3
"""Generate tests/data/optim_ref.h and lr_scheduler_ref.h: PyTorch 1.13 reference values for
the optimizer tests (test_optim.c) and the scheduler tests (test_lr_scheduler.c).

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_optim.py`.

- Updates: a Linear(4, 3) (torch.manual_seed(0) initialisation) trained on fixed data
  (8 samples of 4 features, 3 classes) with cross_entropy, 20 steps, for each optimizer and
  each combination of its options (foreach=False, the single-tensor implementations), with
  parameter groups of different options, and with a frozen bias. Per step: the gradients
  PyTorch computed and the parameters after optimizer.step().
- Defaults: the keyword defaults of each optimizer class.
- Schedulers: each group's lr after construction and after each of 50
  optimizer.step(); scheduler.step() pairs, for StepLR, MultiStepLR, ExponentialLR,
  CosineAnnealingLR and LinearLR with several arguments, and two chained schedulers.
- Clipping: clip_grad_norm_ (norm types 1, 2, inf, 3; clipping and not) and
  clip_grad_value_ on fixed gradients: the total norm and the gradients after; and the
  total norm of single gradients of 1 to 40, 64, 100, 1000 and 4099 elements (every tail
  length of the float32 reduction).

Floats are exact C hex-float literals of their float32 values; learning rates (Python
floats) are exact hex doubles.
"""
import inspect
import itertools
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ops import hexf  # noqa: E402

STEPS = 20
SCHED_STEPS = 50
KINDS = {"SGD": "NB_OPTIM_SGD", "Adam": "NB_OPTIM_ADAM", "AdamW": "NB_OPTIM_ADAMW",
         "RMSprop": "NB_OPTIM_RMSPROP", "Adagrad": "NB_OPTIM_ADAGRAD"}
OPTION_FIELDS = ("lr", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps",
                 "weight_decay", "amsgrad", "alpha", "centered", "lr_decay",
                 "initial_accumulator_value", "maximize")


def hexd(v):
    v = float(v)
    if math.isnan(v):
        return "(double)NAN"
    if math.isinf(v):
        return "HUGE_VAL" if v > 0 else "-HUGE_VAL"
    return v.hex()


def flist(t):
    return "{" + ", ".join(hexf(v) for v in t.detach().reshape(-1).tolist()) + "}"


def problem():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(8, 4)
    y = torch.randint(0, 3, (8,))
    return lin.weight.detach().clone(), lin.bias.detach().clone(), x, y


def group_options(cls, group):
    """The C options of a PyTorch parameter group (every field, 0 where the kind has none)."""
    o = {k: 0 for k in OPTION_FIELDS}
    for k, v in group.items():
        if k == "betas":
            o["beta1"], o["beta2"] = v
        elif k in o:
            o[k] = v
    return o


def opts_c(kind, o):
    vals = []
    for k in OPTION_FIELDS:
        v = o[k]
        vals.append(("1" if v else "0") if isinstance(v, bool) else hexd(v))
    return "{" + KINDS[kind] + ", " + ", ".join(vals) + "}"


def run_case(name, kind, groups_kw, frozen_bias=False):
    """groups_kw: one dict (both parameters in one group) or two (weight, bias)."""
    w0, b0, x, y = problem()
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(not frozen_bias)
    cls = getattr(torch.optim, kind)
    if len(groups_kw) == 1:
        opt = cls([w, b], foreach=False, **groups_kw[0])
    else:
        first = dict(groups_kw[0])
        opt = cls([{"params": [w], **first}, {"params": [b], **groups_kw[1]}], foreach=False)
    for g in opt.param_groups:
        assert g["foreach"] is False
    grads_w, grads_b, ws, bs = [], [], [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(x @ w.t() + b, y)
        loss.backward()
        grads_w.append(w.grad.clone())
        grads_b.append(b.grad.clone() if b.grad is not None else torch.zeros(3))
        opt.step()
        ws.append(w.detach().clone())
        bs.append(b.detach().clone())
    if frozen_bias:
        assert torch.equal(b.detach(), b0)
    return dict(name=name, kind=kind, frozen=frozen_bias,
                groups=[group_options(cls, g) for g in opt.param_groups],
                gw=grads_w, gb=grads_b, w=ws, b=bs)


def update_cases():
    cases = []
    for mom, damp, nest, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.5), (False, True),
                                                     (0.0, 0.01), (False, True)):
        if nest and (mom == 0 or damp != 0):
            continue
        kw = dict(lr=0.1, momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd,
                  maximize=mx)
        cases.append(run_case(f"SGD momentum={mom} dampening={damp} nesterov={nest} "
                              f"weight_decay={wd} maximize={mx}", "SGD", [kw]))
    for kind, wds in (("Adam", (0.0, 0.01)), ("AdamW", (0.0, 0.01, 0.1))):
        for ams, wd, mx in itertools.product((False, True), wds, (False, True)):
            kw = dict(lr=0.01, amsgrad=ams, weight_decay=wd, maximize=mx)
            cases.append(run_case(f"{kind} amsgrad={ams} weight_decay={wd} maximize={mx}",
                                  kind, [kw]))
        cases.append(run_case(f"{kind} defaults", kind, [{}]))
        cases.append(run_case(f"{kind} betas=(0.8, 0.9) eps=1e-3", kind,
                              [dict(lr=0.02, betas=(0.8, 0.9), eps=1e-3)]))
    for cen, mom, wd, mx in itertools.product((False, True), (0.0, 0.9), (0.0, 0.01),
                                              (False, True)):
        kw = dict(lr=0.01, centered=cen, momentum=mom, weight_decay=wd, maximize=mx)
        cases.append(run_case(f"RMSprop centered={cen} momentum={mom} weight_decay={wd} "
                              f"maximize={mx}", "RMSprop", [kw]))
    cases.append(run_case("RMSprop alpha=0.9 eps=1e-4", "RMSprop",
                          [dict(lr=0.01, alpha=0.9, eps=1e-4)]))
    for lrd, wd, iav, mx in itertools.product((0.0, 0.01), (0.0, 0.01), (0.0, 0.1),
                                              (False, True)):
        kw = dict(lr=0.1, lr_decay=lrd, weight_decay=wd, initial_accumulator_value=iav,
                  maximize=mx)
        cases.append(run_case(f"Adagrad lr_decay={lrd} weight_decay={wd} "
                              f"initial_accumulator_value={iav} maximize={mx}", "Adagrad", [kw]))
    # parameter groups: the weight (body) and the bias (head) with different options
    cases.append(run_case("SGD groups lr 0.05 / 0.5", "SGD",
                          [dict(lr=0.05, momentum=0.9), dict(lr=0.5, momentum=0.5,
                                                              weight_decay=0.01)]))
    cases.append(run_case("Adam groups lr 0.001 / 0.05", "Adam",
                          [dict(lr=0.001), dict(lr=0.05, betas=(0.5, 0.9), amsgrad=True)]))
    cases.append(run_case("RMSprop groups", "RMSprop",
                          [dict(lr=0.001, centered=True), dict(lr=0.02, momentum=0.5)]))
    # a frozen parameter: no grad, no update, no state
    cases.append(run_case("Adam frozen bias", "Adam", [dict(lr=0.01)], frozen_bias=True))
    cases.append(run_case("SGD frozen bias", "SGD", [dict(lr=0.1, momentum=0.9)],
                          frozen_bias=True))
    return cases


def defaults():
    out = []
    for kind in KINDS:
        sig = inspect.signature(getattr(torch.optim, kind).__init__)
        g = {}
        for k, p in sig.parameters.items():
            if p.default is inspect.Parameter.empty or k in ("foreach", "differentiable",
                                                             "capturable", "fused"):
                continue
            g[k] = p.default
        if not isinstance(g.get("lr"), float):
            g["lr"] = float("nan")  # SGD's lr is `required`
        out.append((kind, group_options(None, g)))
    return out


SCHEDULERS = [
    ("StepLR(7, 0.5)", [("StepLR", dict(step_size=7, gamma=0.5))]),
    ("StepLR(3, 0.1)", [("StepLR", dict(step_size=3, gamma=0.1))]),
    ("MultiStepLR([5, 12, 30], 0.3)", [("MultiStepLR", dict(milestones=[5, 12, 30], gamma=0.3))]),
    ("MultiStepLR([0, 2, 49], 0.5)", [("MultiStepLR", dict(milestones=[0, 2, 49], gamma=0.5))]),
    ("ExponentialLR(0.95)", [("ExponentialLR", dict(gamma=0.95))]),
    ("ExponentialLR(1.05)", [("ExponentialLR", dict(gamma=1.05))]),
    ("CosineAnnealingLR(10)", [("CosineAnnealingLR", dict(T_max=10))]),
    ("CosineAnnealingLR(20, 0.001)", [("CosineAnnealingLR", dict(T_max=20, eta_min=0.001))]),
    ("CosineAnnealingLR(7, 0.01)", [("CosineAnnealingLR", dict(T_max=7, eta_min=0.01))]),
    ("LinearLR()", [("LinearLR", dict())]),
    ("LinearLR(1.0, 0.1, 30)", [("LinearLR", dict(start_factor=1.0, end_factor=0.1,
                                                  total_iters=30))]),
    ("LinearLR(0.5, 0.75, 10)", [("LinearLR", dict(start_factor=0.5, end_factor=0.75,
                                                   total_iters=10))]),
    ("LinearLR(0.25, 1, 4) + ExponentialLR(0.9)",
     [("LinearLR", dict(start_factor=0.25, end_factor=1.0, total_iters=4)),
      ("ExponentialLR", dict(gamma=0.9))]),
]
SCHED_LRS = (0.1, 0.05)


def scheduler_cases():
    cases = []
    for name, scheds in SCHEDULERS:
        params = [torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)]
        opt = torch.optim.SGD([{"params": [params[0]], "lr": SCHED_LRS[0]},
                               {"params": [params[1]], "lr": SCHED_LRS[1]}], lr=1.0)
        made = [getattr(torch.optim.lr_scheduler, k)(opt, **kw) for k, kw in scheds]
        lrs = [[g["lr"] for g in opt.param_groups]]
        for _ in range(SCHED_STEPS):
            opt.step()
            for s in made:
                s.step()
            lrs.append([g["lr"] for g in opt.param_groups])
            assert lrs[-1] == made[-1].get_last_lr()
        cases.append(dict(name=name, scheds=scheds, lrs=lrs, last_epoch=made[0].last_epoch))
    return cases


def clip_grads():
    torch.manual_seed(3)
    return [torch.randn(3, 4), torch.randn(3), torch.randn(37) * 0.1, torch.randn(333) * 0.01]


CLIPS = [("norm", 2.0, 1.0), ("norm", 2.0, 0.3), ("norm", 2.0, 2.7), ("norm", 2.0, 100.0),
         ("norm", 1.0, 2.0), ("norm", 1.0, 0.7), ("norm", 1.0, 100.0),
         ("norm", math.inf, 0.5), ("norm", math.inf, 0.11), ("norm", math.inf, 100.0),
         ("norm", 3.0, 1.0), ("norm", 3.0, 0.2),
         ("value", 0.05, None), ("value", 1.0, None)]


def clip_cases():
    cases = []
    for how, a, b in CLIPS:
        params = [torch.zeros_like(g, requires_grad=True) for g in clip_grads()]
        params.append(torch.zeros(5, requires_grad=True))  # no grad: skipped
        for p, g in zip(params, clip_grads()):
            p.grad = g.clone()
        if how == "norm":
            total = torch.nn.utils.clip_grad_norm_(params, max_norm=b, norm_type=a).item()
        else:
            torch.nn.utils.clip_grad_value_(params, a)
            total = 0.0
        assert params[-1].grad is None
        after = torch.cat([p.grad.reshape(-1) for p in params[:-1]])
        cases.append(dict(how=how, a=a, b=b, total=total, after=after))
    return cases


NORM_SIZES = list(range(1, 41)) + [64, 100, 1000, 4099]
NORM_TYPES = (1.0, 2.0, math.inf, 3.0)


def norm_cases():
    """clip_grad_norm_'s total for one gradient of each size (max_norm large: no clipping)."""
    torch.manual_seed(4)
    cases = []
    for n in NORM_SIZES:
        g = torch.randn(n) * float(torch.rand(1) * 10 + 0.01)
        totals = []
        for p in NORM_TYPES:
            t = torch.zeros(n, requires_grad=True)
            t.grad = g.clone()
            totals.append(torch.nn.utils.clip_grad_norm_([t], 1e30, norm_type=p).item())
        cases.append((g, totals))
    return cases


def emit(out, updates, dflts, clips):
    version = torch.__version__.split("+")[0]
    out.write(f"/* Generated by tests/data/gen_optim.py from PyTorch {version}. Do not edit. */\n")
    out.write("#ifndef NABLA_TESTS_OPTIM_REF_H\n#define NABLA_TESTS_OPTIM_REF_H\n\n")
    out.write("#include <math.h>\n\n#include <nabla/optim.h>\n\n")
    out.write(f"#define OPTIM_REF_STEPS {STEPS}\n\n")
    out.write("/* A parameter group's options, every field as PyTorch's param_groups held it. */\n"
              "typedef struct optim_ref_opts {\n    nb_optim_kind kind;\n"
              "    double lr, momentum, dampening;\n    int nesterov;\n"
              "    double beta1, beta2, eps, weight_decay;\n    int amsgrad;\n"
              "    double alpha;\n    int centered;\n"
              "    double lr_decay, initial_accumulator_value;\n    int maximize;\n"
              "} optim_ref_opts;\n\n")
    w0, b0, _, _ = problem()
    out.write("/* Linear(4, 3) after torch.manual_seed(0): weight [3, 4], bias [3]. */\n")
    out.write(f"static const float optim_ref_w0[12] = {flist(w0)};\n")
    out.write(f"static const float optim_ref_b0[3] = {flist(b0)};\n\n")
    out.write("/*\n * One training run: ngroups 1 holds [weight, bias] in one group; 2 puts the\n"
              " * weight in group 0 and the bias in group 1. b_frozen: the bias has no grad.\n"
              " * grad_*[t] are the gradients of step t, w/b[t] the parameters after it.\n */\n"
              "typedef struct optim_ref_case {\n    const char *name;\n    int ngroups;\n"
              "    optim_ref_opts groups[2];\n    int b_frozen;\n"
              "    float grad_w[OPTIM_REF_STEPS][12], grad_b[OPTIM_REF_STEPS][3];\n"
              "    float w[OPTIM_REF_STEPS][12], b[OPTIM_REF_STEPS][3];\n} optim_ref_case;\n\n")
    out.write("static const optim_ref_case optim_ref_cases[] = {\n")
    for c in updates:
        groups = [opts_c(c["kind"], g) for g in c["groups"]]
        if len(groups) == 1:
            groups.append("{0}")
        out.write(f"    {{\"{c['name']}\",\n     {len(c['groups'])},\n"
                  f"     {{{groups[0]},\n      {groups[1]}}},\n     {int(c['frozen'])},\n")
        for key in ("gw", "gb", "w", "b"):
            rows = ",\n      ".join(flist(t) for t in c[key])
            out.write(f"     {{{rows}}}" + (",\n" if key != "b" else "},\n"))
    out.write("};\n\n")
    out.write("/* The keyword defaults of each optimizer class (SGD's lr is required: NaN). */\n")
    out.write("static const optim_ref_opts optim_ref_defaults[] = {\n")
    for kind, g in dflts:
        out.write(f"    {opts_c(kind, g)},\n")
    out.write("};\n\n")
    grads = clip_grads()
    out.write("/* Clipping: the gradients of four parameters (a fifth has none). */\n")
    out.write(f"#define OPTIM_REF_CLIP_N {sum(g.numel() for g in grads)}\n")
    out.write("static const int64_t optim_ref_clip_numel[4] = {"
              + ", ".join(str(g.numel()) for g in grads) + "};\n")
    out.write("static const float optim_ref_clip_grads[OPTIM_REF_CLIP_N] = "
              + flist(torch.cat([g.reshape(-1) for g in grads])) + ";\n\n")
    out.write("/*\n * value 0: clip_grad_norm_(params, max_norm, norm_type) -> total;\n"
              " * value 1: clip_grad_value_(params, clip_value). after: the gradients after.\n"
              " */\n"
              "typedef struct optim_ref_clip {\n    int value;\n"
              "    double norm_type, max_norm, clip_value;\n    float total;\n"
              "    float after[OPTIM_REF_CLIP_N];\n} optim_ref_clip;\n\n")
    out.write("static const optim_ref_clip optim_ref_clips[] = {\n")
    for c in clips:
        if c["how"] == "norm":
            head = f"0, {hexd(c['a'])}, {hexd(c['b'])}, 0.0"
        else:
            head = f"1, 0.0, 0.0, {hexd(c['a'])}"
        out.write(f"    {{{head}, {hexf(c['total'])},\n     {flist(c['after'])}}},\n")
    out.write("};\n\n")
    norms = norm_cases()
    out.write("/* The total norm of one gradient of each size, for norm types 1, 2, inf, 3. */\n")
    out.write(f"#define OPTIM_REF_NORM_VALUES {sum(g.numel() for g, _ in norms)}\n")
    out.write("static const int64_t optim_ref_norm_sizes[] = {"
              + ", ".join(str(n) for n in NORM_SIZES) + "};\n")
    out.write("static const float optim_ref_norm_values[OPTIM_REF_NORM_VALUES] = "
              + flist(torch.cat([g for g, _ in norms])) + ";\n")
    out.write("static const float optim_ref_norm_totals[][4] = {\n")
    for _, totals in norms:
        out.write("    {" + ", ".join(hexf(v) for v in totals) + "},\n")
    out.write("};\n\n#endif\n")


def emit_sched(out, scheds):
    version = torch.__version__.split("+")[0]
    out.write(f"/* Generated by tests/data/gen_optim.py from PyTorch {version}. Do not edit. */\n")
    out.write("#ifndef NABLA_TESTS_LR_SCHEDULER_REF_H\n#define NABLA_TESTS_LR_SCHEDULER_REF_H\n\n")
    out.write("#include <stdint.h>\n\n")
    out.write(f"#define OPTIM_REF_SCHED_STEPS {SCHED_STEPS}\n\n")
    out.write("/*\n * Schedulers over SGD with two groups of lr 0.1 and 0.05: lr[0] after\n"
              " * construction, lr[t] after t optimizer.step(); scheduler.step() pairs. Each\n"
              " * scheduler: kind 0 StepLR(i0, a), 1 MultiStepLR(ms, a), 2 ExponentialLR(a),\n"
              " * 3 CosineAnnealingLR(i0, a), 4 LinearLR(a, b, i0).\n */\n"
              "typedef struct optim_ref_sched {\n    int kind;\n    int64_t i0;\n"
              "    double a, b;\n    int nmilestones;\n    int64_t milestones[4];\n"
              "} optim_ref_sched;\n\n"
              "typedef struct optim_ref_sched_case {\n    const char *name;\n"
              "    int nsched;\n    optim_ref_sched sched[2];\n    int64_t last_epoch;\n"
              "    double lr[OPTIM_REF_SCHED_STEPS + 1][2];\n} optim_ref_sched_case;\n\n")
    names = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"]
    out.write(f"static const double optim_ref_sched_lr0[2] = {{{hexd(SCHED_LRS[0])}, "
              f"{hexd(SCHED_LRS[1])}}};\n\n")
    out.write("static const optim_ref_sched_case optim_ref_sched_cases[] = {\n")
    for c in scheds:
        items = []
        for k, kw in c["scheds"]:
            sig = inspect.signature(getattr(torch.optim.lr_scheduler, k).__init__).parameters
            full = {n: p.default for n, p in sig.items() if p.default is not inspect.Parameter.empty}
            full.update(kw)
            i0 = {"StepLR": full.get("step_size"), "CosineAnnealingLR": full.get("T_max"),
                  "LinearLR": full.get("total_iters")}.get(k, 0)
            a = {"LinearLR": full.get("start_factor"),
                 "CosineAnnealingLR": full.get("eta_min")}.get(k, full.get("gamma"))
            b = full.get("end_factor", 0.0) if k == "LinearLR" else 0.0
            ms = list(kw.get("milestones", []))
            items.append(f"{{{names.index(k)}, {i0}, {hexd(a)}, {hexd(b)}, {len(ms)}, "
                         f"{{{', '.join(map(str, ms)) or '0'}}}}}")
        if len(items) == 1:
            items.append("{0}")
        rows = ",\n      ".join("{" + ", ".join(hexd(v) for v in r) + "}" for r in c["lrs"])
        out.write(f"    {{\"{c['name']}\",\n     {len(c['scheds'])},\n"
                  f"     {{{items[0]}, {items[1]}}},\n     {c['last_epoch']},\n"
                  f"     {{{rows}}}}},\n")
    out.write("};\n\n#endif\n")


def main():
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "optim_ref.h"), "w") as out:
        emit(out, update_cases(), defaults(), clip_cases())
    with open(os.path.join(here, "lr_scheduler_ref.h"), "w") as out:
        emit_sched(out, scheduler_cases())


if __name__ == "__main__":
    main()
