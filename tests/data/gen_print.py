#!/usr/bin/python3
"""Generate tests/data/print_ref.h: float32 tensors and their PyTorch 1.13 repr().

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_print.py`.
Each case stores its float32 values as bit patterns, so the C side rebuilds the very same
tensor, and repr(t) split into chunks: -Woverlength-strings rejects literals over 4095 bytes.
"""
import os

import numpy as np
import torch

CHUNK = 2000


def bits(*vals):
    """A float32 tensor from IEEE bit patterns (for -nan and other exact values)."""
    return torch.from_numpy(np.array(vals, dtype=np.uint32).view(np.float32).copy())


def cases():
    torch.manual_seed(0)
    f = torch.float32
    t = torch.tensor
    c = []

    def add(name, x, requires_grad=False):
        x = x.to(f).detach().clone()
        if requires_grad:
            x.requires_grad_(True)
        c.append((name, x))

    # 0-d
    add("scalar", t(1.0321))
    add("scalar_int", t(3.0))
    add("scalar_neg_zero", t(-0.0))
    add("scalar_nan", t(float("nan")))
    add("scalar_small", t(1e-5))
    add("scalar_rg", t(-2.5), True)
    # 1-D float and integer-valued
    add("randn5", torch.randn(5))
    add("ones5", torch.ones(5))
    add("arange10", torch.arange(10.0))
    add("int_mixed_signs", t([-3.0, 0.0, 12.0, -150.0, 7.0]))
    add("mixed_signs", t([0.1595, -1.5969, -0.0101]))
    add("zeros", torch.zeros(4))
    add("neg_zero", t([-0.0, 0.0, 1.0]))
    add("neg_zero_float", t([-0.0, 0.5]))
    # tiny and huge magnitudes
    add("tiny_1e5", t([1e-5, 2e-5, 3e-5]))
    add("tiny_1e10", t([1e-10, -2.5e-10]))
    add("huge_1e5", t([123456.0, 0.5]))
    add("huge_int_1e5", t([100000.0, 200000.0]))
    add("huge_1e9", t([1e9, 2.5e9]))
    add("huge_1e20", t([1e20, -3e20, 1.0]))
    add("int_1e8", t([1e8, 1e6, -5e5]))
    add("int_above_1e8", t([100000008.0, 1e6]))
    add("float_above_1e8", t([500000.5, 1.5e8]))
    add("float_big", t([99999.5, -100.25]))
    # float32 rounding at the thresholds: the statistics use the float values
    add("min_1e4_float", t([1e-4, 0.5]))
    add("ratio_999", t([0.001, 1.0]))
    add("ratio_1001", t([0.001, 1.001]))
    add("int_ratio_1000", t([1.0, 1000.0]))
    add("int_ratio_1001", t([1.0, 1001.0]))
    add("sci_ratio", t([0.01, 15.5, -100.25]))
    add("round_half", t([0.00005, 0.00015, 0.5]))
    add("round_ties", t([0.12345, 2.00005, -0.99995]))
    # non-finite
    add("nan_only", t([float("nan")]))
    add("inf_only", t([float("inf"), float("-inf")]))
    add("nan_zero", t([0.0, float("nan")]))
    add("nan_int", t([1.0, float("nan"), float("inf"), -2.0]))
    add("nan_float", t([1.5, float("nan"), float("-inf"), -2.25]))
    add("nan_sci", t([1e-7, float("nan"), float("inf"), 2.0]))
    add("neg_nan", bits(0xFFC00000, 0x3FC00000))
    add("denormal", bits(0x00000001, 0x3F800000))
    # 2-D and deeper
    add("randn5x3", torch.randn(5, 3))
    add("int2x3", t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    add("rand1x1", torch.rand(1, 1))
    add("randn2x3x4", torch.randn(2, 3, 4))
    add("randn2x2x2x2", torch.randn(2, 2, 2, 2))
    add("randn1x2x1x3x2", torch.randn(1, 2, 1, 3, 2))
    add("sci2d", torch.randn(3, 4) * 1e6)
    add("wide2d", torch.randn(3, 12))
    # long rows that wrap
    add("wrap30", torch.randn(30))
    add("wrap_int100", torch.arange(100.0))
    add("wrap_sci20", torch.randn(20) * 1e-6)
    add("wrap999", torch.randn(999))
    # summarised
    add("sum1001", torch.randn(1001))
    add("sum40x30", torch.randn(40, 30))
    add("sum11x10x10", torch.randn(11, 10, 10))
    add("sum1001_int", torch.arange(1001.0))
    add("sum_width_edges", torch.cat([t([0.5, 0.25, 0.125]), torch.full((1000,), 1e6),
                                      t([1.0, 2.0, 3.0])]))
    add("sum3x400", torch.randn(3, 400))
    add("sum2x2x300", torch.randn(2, 2, 300))
    hidden = torch.randn(1001)
    hidden[500] = 1e10  # not shown, so it must not switch on sci mode
    add("sum_hidden_outlier", hidden)
    edges = torch.randn(1001)
    edges[0], edges[1], edges[-1] = float("nan"), float("-inf"), 0.0
    add("sum_nonfinite_edges", edges)
    add("sum10x10x11_rg", torch.randn(10, 10, 11), True)
    # more shapes and widths
    add("dims8", torch.randn(1, 2, 1, 2, 1, 2, 1, 2))
    add("col3x1", torch.randn(3, 1))
    add("row1x3", torch.randn(1, 3))
    add("sci_neg_zero", t([-0.0, 1e-5, 0.0]))
    add("int_sci_zeros", t([0.0, 5.0, 12000.0, -0.0]))
    add("float_wide", torch.arange(12.0) * 1000.25 + 1234567.25)
    add("big_ints_wrap", torch.arange(20.0) * 4999999.0 - 3e7)
    # empty
    add("empty", torch.empty(0))
    add("empty0x3", torch.empty(0, 3))
    add("empty2x0x4", torch.empty(2, 0, 4))
    add("empty0x3_rg", torch.empty(0, 3), True)
    add("empty_rg", torch.empty(0), True)
    # requires_grad leaves, including suffixes that wrap to a new line
    add("rg_randn3", torch.randn(3), True)
    add("rg_2d", torch.randn(2, 2), True)
    for n in range(5, 10):
        add("rg_wrap%d" % n, torch.randn(n), True)
    add("rg_int_long", torch.arange(25.0), True)
    return c


def c_string(s):
    out = []
    for ch in s:
        if ch == "\n":
            out.append("\\n")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        else:
            assert 32 <= ord(ch) < 127, repr(ch)
            out.append(ch)
    return "".join(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    lines = [
        "/* Generated by tests/data/gen_print.py with PyTorch %s; do not edit. */"
        % torch.__version__,
        "#ifndef NB_PRINT_REF_H",
        "#define NB_PRINT_REF_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "typedef struct print_ref_case {",
        "    const char *name;",
        "    int ndim;",
        "    int64_t dims[8];",
        "    int requires_grad;",
        "    int64_t numel;",
        "    const uint32_t *bits;       /* float32 bit patterns, NULL when empty */",
        "    const char *const *repr;    /* repr(t) in chunks, NULL-terminated */",
        "} print_ref_case;",
        "",
    ]
    table = []
    for i, (name, x) in enumerate(cases()):
        flat = x.detach().reshape(-1).numpy().view(np.uint32)
        bits_name = "NULL"
        if flat.size:
            bits_name = "print_ref_bits_%d" % i
            lines.append("static const uint32_t %s[] = {" % bits_name)
            for j in range(0, flat.size, 6):
                lines.append("    " + " ".join("0x%08xu," % v for v in flat[j : j + 6]))
            lines.append("};")
        r = repr(x)
        lines.append("static const char *const print_ref_repr_%d[] = {" % i)
        for j in range(0, len(r), CHUNK):
            lines.append('    "%s",' % c_string(r[j : j + CHUNK]))
        lines.append("    NULL};")
        dims = ", ".join(str(d) for d in x.shape) or "0"
        table.append(
            '    {"%s", %d, {%s}, %d, %d, %s, print_ref_repr_%d},'
            % (name, x.dim(), dims, int(x.requires_grad), x.numel(), bits_name, i)
        )
    lines.append("")
    lines.append("static const print_ref_case print_ref_cases[] = {")
    lines.extend(table)
    lines.append("};")
    lines.append("")
    lines.append("#endif /* NB_PRINT_REF_H */")
    with open(os.path.join(here, "print_ref.h"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("%d cases" % len(table))


if __name__ == "__main__":
    main()
