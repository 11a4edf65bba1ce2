#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets that take structured inputs:
tests/fuzz/corpus/idx/ (fuzz_idx.c's input: flags, loader, images length, images, labels)
and tests/fuzz/corpus/graph/ (fuzz_graph.c's programs). Python's standard library only.

Usage: scripts/make_fuzz_corpus.py [idx] [graph]     (default: both)

The IDX seeds are the valid files (plain, gzip, two gzip members, gzip header fields, an
empty set, 2-D to 4-D images) and every bad file of tests/test_data.c (wrong magic, data
type, number of dims, cut header, dims or data, trailing data, dims that overflow, an empty
example, a label count that differs, and the broken gzip streams), each plain and gzip.
"""
import gzip
import os
import re
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FUZZ = os.path.join(ROOT, "tests", "fuzz")


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- idx -------------------------------------------------------------------------------

def idx(dims, data, head=None, ndim=None):
    """An IDX file of unsigned bytes: two zeros, 0x08, ndim, the dims, then data."""
    head = head if head is not None else bytes([0, 0, 8, len(dims) if ndim is None else ndim])
    return head + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def ramp(n):
    return bytes((i * 7) & 0xFF for i in range(n))


def gz(data, level=9):
    return gzip.compress(data, compresslevel=level, mtime=0)


def gz_with_header_fields(data):
    """A gzip member with FEXTRA, FNAME, FCOMMENT and FHCRC, as few writers make them."""
    head = bytes([0x1F, 0x8B, 8, 0x1E, 0, 0, 0, 0, 0, 3])
    head += struct.pack("<H", 4) + b"ab\x00\x01" + b"train-images\x00" + b"a comment\x00"
    head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return head + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def idx_input(images, labels, flags=0, loader=0):
    """fuzz_idx.c's input: flags, loader, len(images) as 16 bits little-endian, the files."""
    assert len(images) < 1 << 16
    return bytes([flags, loader]) + struct.pack("<H", len(images)) + images + labels


GOOD_IMAGES = idx([2, 3, 3], ramp(18))
GOOD_LABELS = idx([2], [1, 4])

# name, which file is bad ("images" or "labels"), the bad file: tests/test_data.c's cases
BAD_FILES = [
    ("wrong-magic", "images", idx([2, 3, 3], ramp(18), head=bytes([1, 2, 8, 3]))),
    ("float32-data", "images", idx([2, 3, 3], ramp(18), head=bytes([0, 0, 0x0D, 3]))),
    ("unknown-data-type", "images", idx([2, 3, 3], ramp(18), head=bytes([0, 0, 0x42, 3]))),
    ("images-1d", "images", idx([2], ramp(2))),
    ("images-9d", "images", idx([2, 1, 1, 1, 1, 1, 1, 1, 1], ramp(2))),
    ("header-cut-short", "images", idx([2, 3, 3], ramp(18))[:3]),
    ("dims-cut-short", "images", idx([2, 3, 3], ramp(18))[:12]),
    ("data-cut-short", "images", idx([2, 3, 3], ramp(10))),
    ("data-too-long", "images", idx([2, 3, 3], ramp(19))),
    ("huge-dims-no-data", "images", idx([65536, 65536, 65536], ramp(5))),
    ("dims-overflow", "images", idx([0xFFFFFFFF] * 3, b"")),
    ("count-overflows", "images", idx([0xFFFFFFFF] * 2, b"")),
    ("empty-example", "images", idx([2, 0, 3], b"")),
    ("labels-2d", "labels", idx([2, 1], ramp(2))),
    ("labels-wrong-magic", "labels", idx([2], ramp(2), head=bytes([0, 8, 8, 1]))),
    ("labels-cut-short", "labels", idx([2], ramp(1))),
    ("more-labels-than-images", "labels", idx([3], ramp(3))),
    ("fewer-labels-than-images", "labels", idx([1], ramp(1))),
    ("empty-file", "images", b""),
]


def broken_gzips(plain):
    """tests/test_data.c's broken gzip streams around the file plain (stored blocks)."""
    base = gz(plain, level=0)
    out = []
    b = bytearray(base)
    b[10] = 0x07  # BFINAL, BTYPE 11
    out.append(("gzip-invalid-block-type", bytes(b)))
    b = bytearray(base)
    b[-8] ^= 0x01
    out.append(("gzip-wrong-crc", bytes(b)))
    out.append(("gzip-cut-in-data", base[: 10 + 5 + 9]))
    out.append(("gzip-cut-in-trailer", base[:-3]))
    b = bytearray(base)
    b[2] = 9
    out.append(("gzip-unknown-method", bytes(b)))
    out.append(("gzip-garbage-after-member", base + b"junk"))
    b = bytearray(base)
    b[-4:] = b"\xff\xff\xff\xff"
    out.append(("gzip-isize-lies", bytes(b)))
    out.append(("gzip-header-only", base[:10]))
    out.append(("gzip-magic-only", base[:2]))
    return out


def make_idx():
    mnist = idx([4, 28, 28], bytes((i * 37 + i // 28) & 0xFF for i in range(4 * 784)))
    mnist_labels = idx([4], [3, 0, 9, 3])
    ok = [
        ("ok-plain", GOOD_IMAGES, GOOD_LABELS, 0, 0x01),
        ("ok-plain-normalize", GOOD_IMAGES, GOOD_LABELS, 0, 0x10),
        ("ok-gzip-files", gz(GOOD_IMAGES), gz(GOOD_LABELS), 0, 0x03),
        ("ok-gzip-stored", gz(GOOD_IMAGES, 0), GOOD_LABELS, 0, 0x00),
        ("ok-gzip-two-members", gz(GOOD_IMAGES[:7]) + gz(GOOD_IMAGES[7:]), GOOD_LABELS, 0, 0),
        ("ok-gzip-header-fields", gz_with_header_fields(GOOD_IMAGES), GOOD_LABELS, 0, 0x21),
        ("ok-gzip-here", GOOD_IMAGES, GOOD_LABELS, 3, 0x48),
        ("ok-gzip-here-two-members", GOOD_IMAGES, GOOD_LABELS, 7, 0xC1),
        ("ok-gzip-here-stored", GOOD_IMAGES, GOOD_LABELS, 1, 0x00),
        ("ok-empty", idx([0, 28, 28], b""), idx([0], b""), 0, 0x00),
        ("ok-empty-shuffle", idx([0, 28, 28], b""), idx([0], b""), 2, 0x08),
        ("ok-images-2d", idx([3, 5], ramp(15)), idx([3], [0, 0, 0]), 0, 0x02),
        ("ok-images-4d", idx([3, 2, 2, 2], ramp(24)), idx([3], [7, 255, 0]), 0, 0x2A),
        ("ok-images-8d", idx([1] * 8, ramp(1)), idx([1], [2]), 0, 0x00),
        ("ok-mnist-like", mnist, mnist_labels, 0, 0x22),
        ("ok-mnist-like-gzip", gz(mnist), gz(mnist_labels), 0, 0x1B),
        ("ok-mnist-like-gzip-here", mnist, mnist_labels, 3, 0x4F),
    ]
    for name, im, lb, flags, loader in ok:
        write("idx", name, idx_input(im, lb, flags, loader))
    for name, which, bad in BAD_FILES:
        im, lb = (bad, GOOD_LABELS) if which == "images" else (GOOD_IMAGES, bad)
        write("idx", "bad-" + name, idx_input(im, lb))
        write("idx", "bad-" + name + "-gzip", idx_input(gz(im), gz(lb)))
        write("idx", "bad-" + name + "-gzip-here", idx_input(im, lb, flags=3, loader=0x40))
    for name, stream in broken_gzips(GOOD_IMAGES):
        write("idx", "bad-" + name, idx_input(stream, GOOD_LABELS))
    for name, stream in broken_gzips(GOOD_LABELS):
        write("idx", "bad-labels-" + name, idx_input(GOOD_IMAGES, stream))


# ---- graph -----------------------------------------------------------------------------

def graph_rows():
    """The row names of fuzz_graph.c's table, in order (an instruction's byte picks one)."""
    with open(os.path.join(FUZZ, "fuzz_graph.c")) as f:
        src = f.read()
    table = src[src.index("static const row rows[] = {"):]
    table = table[: table.index("};")]
    return re.findall(r"\b[A-Z0-9]+\((\w+)\)", table)


# operand bytes as fuzz_graph.c reads them
ALL, KEEP, NOKEEP = 0, 1, 0
NONE, MEAN, SUM = 0, 1, 2


def dim(d):
    return d + 5


def dims(*ds):
    return [len(ds)] + [dim(d) for d in ds]


def val(x):
    special = {"-0": 1, "nan": 6, "-nan": 7, "inf": 8, "-inf": 9, "1e30": 10, "-1e30": 11,
               "max": 12, "denormal": 13}
    return special[x] if isinstance(x, str) else int(x * 8) + 136


class Prog:
    def __init__(self):
        self.rows = {name: i for i, name in reversed(list(enumerate(graph_rows())))}
        self.b = bytearray()
        self.n = 1  # slot 0: a 0-d leaf that requires grad

    def op(self, name, *operands, results=1):
        self.b.append(self.rows[name])
        for x in operands:
            self.b.extend(x if isinstance(x, list) else [x])
        first = self.n
        self.n += results
        return first if results == 1 else list(range(first, self.n))

    def new(self, shape, values, grad=False):
        assert len(values) == (0 if 0 in shape else __import__("math").prod(shape))
        return self.op("op_new", [len(shape)] + list(shape) + [val(v) for v in values],
                       int(grad))


def make_graph():
    progs = {}

    # a layer, its loss, backward with retain_graph, again, and a third time (an error)
    p = Prog()
    x = p.new([2, 3], [1, -1, 0.5, 2, 0, -2])
    w = p.new([3, 2], [0.5, -1, 1, 2, -0.5, 0.25], grad=True)
    b = p.new([2], [0.125, -0.125], grad=True)
    h = p.op("nb_relu", p.op("nb_add", p.op("nb_matmul", x, w), b))
    loss = p.op("nb_sum", h, ALL, NOKEEP)
    p.op("op_backward", loss, 0, 1, results=0)
    p.op("op_backward", loss, 0, 0, results=0)
    p.op("op_backward", loss, 0, 0, results=0)
    p.op("op_get_grad", w, results=0)
    progs["layer-backward-twice"] = p.b

    # the losses on logits and class indices, one backward each
    p = Prog()
    logits = p.new([2, 3], [1, 2, 3, -1, 0, 1], grad=True)
    t = p.op("op_classes", logits, 2, 1)
    probs = p.new([2, 3], [0.5, 0.25, 0.125, 0, 1, 0.5])
    for loss in [p.op("op_cross_entropy", logits, t, 0, 0, MEAN, 1),
                 p.op("op_nll", p.op("nb_log_softmax", logits, dim(-1)), t, 0, 0, SUM),
                 p.op("op_bce_logits", logits, probs, 0, 0, MEAN),
                 p.op("nb_mse_loss", logits, probs, MEAN),
                 p.op("op_smooth_l1", logits, probs, MEAN, 3, 0),
                 p.op("op_kl_div", p.op("nb_log_softmax", logits, dim(1)), probs, SUM, 0)]:
        p.op("op_backward", loss, 0, 1, results=0)
    progs["losses"] = p.b

    # in-place ops: on a leaf that requires grad (refused), under no_grad (allowed), and on
    # a saved output, which the backward then finds changed
    p = Prog()
    a = p.new([3], [1, 2, 3], grad=True)
    y = p.op("nb_exp", a)
    s = p.op("nb_sum", y, ALL, NOKEEP)
    p.op("nb_add_scalar_", a, val(1), results=0)
    p.op("op_grad_mode", 0, results=0)
    p.op("nb_mul_scalar_", y, val(2), results=0)
    p.op("nb_add_", a, a, results=0)
    p.op("op_fill", p.op("nb_detach", a), val(0.5), results=0)
    p.op("op_grad_mode", 1, results=0)
    p.op("op_backward", s, 0, 0, results=0)
    p.op("op_zero_grad", a, 1, results=0)
    progs["inplace-versions"] = p.b

    # nan, inf, -0, huge and denormal values through the reductions and unary ops
    p = Prog()
    v = p.new([2, 4], ["nan", "inf", "-inf", "-0", "1e30", "max", "denormal", -2.5], grad=True)
    for name, extra in [("nb_log", []), ("nb_sqrt", []), ("nb_rsqrt", []), ("nb_softmax", [dim(1)]),
                        ("nb_logsumexp", dims(1) + [KEEP]), ("op_norm", [val(2)] + dims(0) + [0]),
                        ("op_var", dims(1) + [1, 0, 1]), ("nb_prod", []), ("op_max_dim", [dim(1), 1, 0, 1]),
                        ("nb_argmax", dims(1) + [0]), ("nb_amax", dims(0, 1) + [0])]:
        r = p.op(name, v, *extra, results=2 if name == "op_max_dim" else 1)
    p.op("op_backward", p.op("nb_sum", p.op("nb_softmax", v, dim(0)), ALL, 0), 0, 1, results=0)
    p.op("op_format", v, 200, results=0)
    progs["special-values"] = p.b

    # views and copies, split and cat, then nb_grad of two outputs with allow_unused
    p = Prog()
    m = p.new([2, 3], [1, 2, 3, 4, 5, 6], grad=True)
    r = p.op("nb_reshape", m, [2, 3, 2])
    t = p.op("nb_transpose", r, dim(0), dim(1))
    pr = p.op("nb_permute", t, dims(1, 0))
    parts = p.op("op_split", m, dim(1), 8, 1, 0, results=3)
    c = p.op("op_cat", 1, parts[0], parts[2], dim(1), 0)  # two tensors
    st = p.op("op_cat", 0, parts[1], dim(0), 1)  # one, stacked
    e = p.op("nb_expand", p.op("nb_unsqueeze", m, dim(0)), [3, 2, 2, 3])
    f = p.op("nb_flip", p.op("nb_repeat", m, [2, 2, 1]), dims(0))
    n = p.op("op_narrow", p.op("op_slice", m, dim(1), 4, 7, 2), dim(0), 5, 1)
    out1 = p.op("nb_sum", p.op("nb_mul", e, e), ALL, 0)
    out2 = p.op("nb_mean", p.op("nb_add", f, f), dims(0, 1), 0)
    p.op("op_grad", 1, 1, out1, out2, m, c, 0, 0, 0, 1, 1, results=2)
    p.op("nb_squeeze", p.op("nb_flatten", pr, dim(0), dim(-1)), ALL)
    progs["shapes-and-grad"] = p.b

    # empty tensors whose other dims are huge, through ops that compute outer and inner sizes
    p = Prog()
    z = p.new([0], [], grad=True)
    big = p.op("nb_reshape", z, [3, 0, 245, 3])  # [0, 2^62, 3]
    for name, extra in [("nb_softmax", [dim(1)]), ("nb_sum", dims(1) + [0]),
                        ("nb_repeat", [[3, 1, 1, 2]]), ("nb_flip", dims(0, 2)),
                        ("nb_index_select", [p.new([1], [0]), dim(2)]), ("op_layer_norm", [0, 0, 1, 1, 0])]:
        p.op(name, big, *extra)
    p.op("op_backward", p.op("nb_sum", big, ALL, 0), 0, 0, results=0)
    progs["empty-huge-dims"] = p.b

    # indexing: embedding, gather, index_select, scatter_add, with ids from the bytes
    p = Prog()
    wt = p.new([4, 2], [1, 2, 3, 4, 5, 6, 7, 8], grad=True)
    ids = p.op("op_classes", wt, [1, 0, 1, 3])  # ids 1, 0, 1, 0
    em = p.op("op_embedding", wt, ids, 1)
    idx = p.new([2, 2], [0, 1, 1, 0])
    g = p.op("nb_gather", wt, idx, dim(0))
    sa = p.op("op_scatter_add", wt, idx, g, dim(0))
    ln = p.op("op_layer_norm", sa, 0, 0, 1, 0, 7)
    loss = p.op("nb_sum", p.op("nb_add", p.op("nb_index_select", ln, idx, dim(1)), em), ALL, 0)
    p.op("op_backward", loss, 0, 0, results=0)
    progs["indexing"] = p.b

    # a leaf as its own grad, and a cycle of .grad references (both refused)
    p = Prog()
    a = p.new([2], [1, 2], grad=True)
    b = p.new([2], [3, 4])
    p.op("op_set_grad", a, 1, a, results=0)
    p.op("op_set_grad", a, 1, b, results=0)
    p.op("op_set_grad", b, 1, a, results=0)
    p.op("op_backward", p.op("nb_sum", a, ALL, 0), 0, 0, results=0)
    progs["set-grad-cycles"] = p.b

    for name, data in progs.items():
        write("graph", name, bytes(data))

    # the programs of the bugs the fuzzer found, as regressions (fixed in src/)
    regressions = {}
    p = Prog()  # t.grad = t: a reference cycle, never freed
    p.op("op_set_grad", 0, 1, 0, results=0)
    regressions["set-grad-self"] = p.b
    p = Prog()  # repeat of an empty tensor to [0, 2^62, 3]: its strides overflowed
    p.op("nb_repeat", p.new([0, 1, 1], []), [3, 1, 245, 3])
    regressions["repeat-empty-huge-dims"] = p.b
    p = Prog()  # softmax over [0, 2^63 - 1, 4]: its inner size overflowed
    p.op("nb_softmax", p.op("nb_reshape", p.new([0], []), [3, 0, 243, 4]), dim(0))
    regressions["softmax-empty-huge-dims"] = p.b
    p = Prog()  # a class target of -1e30: its message converted it to long long
    x = p.new([2, 3], [1, 2, 3, 4, 5, 6], grad=True)
    p.op("op_nll", x, p.new([2], ["-1e30", 1]), 0, 0, MEAN)
    regressions["nll-target-out-of-int64"] = p.b
    p = Prog()  # a second backward, given the root as its grad, failed and kept it: a cycle
    a = p.op("nb_exp", 0)
    c = p.op("nb_add", p.op("nb_exp", a), a)
    p.op("op_backward", c, 0, 0, results=0)
    p.op("op_backward", c, 1, c, 1, results=0)
    regressions["backward-again-root-as-grad"] = p.b
    p = Prog()  # a slice with step INT64_MAX: its element count overflowed
    p.op("op_slice", p.new([3], [1, 2, 3]), dim(0), 4, 7, 243)
    regressions["slice-huge-step"] = p.b
    p = Prog()  # chunk of [0, 2^62] along dim 1: size plus piece size overflowed
    x = p.op("nb_reshape", p.new([0], []), [2, 0, 245])
    p.op("op_split", x, dim(1), 2, 1, 1, results=1)
    regressions["chunk-huge-dim"] = p.b
    for name, data in regressions.items():
        d = os.path.join(FUZZ, "regressions", "graph")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes(data))


def main(argv):
    targets = argv or ["idx", "graph"]
    for t in targets:
        {"idx": make_idx, "graph": make_graph}[t]()


if __name__ == "__main__":
    main(sys.argv[1:])
