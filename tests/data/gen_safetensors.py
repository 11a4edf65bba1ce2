#!/usr/bin/python3
"""Generate the PyTorch-written safetensors files of tests/test_safetensors.c and their
reference header tests/data/safetensors_ref.h.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_safetensors.py`.

The files are written with json and struct only (the safetensors package is not needed), in
the layout of safetensors.torch.save_file: tensors sorted by name (all of one dtype), the
header listing "__metadata__" first and then the tensors in data order, compact JSON padded
with spaces to a multiple of 8 bytes, data little-endian and packed.

- torch_sequential.safetensors: the state_dict of
  torch.nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) made after torch.manual_seed(0),
  as float32, with metadata {"format": "pt"}.
- torch_dtypes.safetensors: F16, BF16 and F64 tensors (special values: signed zeros, the
  extremes and subnormals of each type, inf, nan, values that round) and the model's first
  weight in each of them, for the conversions to float32. Here the header lists the tensors
  in an order different from their order in the data section (which the format allows), so
  the loader's "header order" is checked too.

The header gives, for each file in header order, every tensor's name, dtype, shape and its
expected float32 values as bit patterns (t.to(dtype).to(torch.float32)), checked bit for bit.
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64"}


def raw_bytes(t):
    """The little-endian bytes of t, row-major."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # no numpy bfloat16: go through the int16 bit patterns
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, header_order, data_order, tensors, metadata):
    """tensors: name -> tensor. The data section follows data_order; the header, header_order."""
    offsets, data, at = {}, b"", 0
    for name in data_order:
        b = raw_bytes(tensors[name])
        offsets[name] = (at, at + len(b))
        data += b
        at += len(b)
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    for name in header_order:
        t = tensors[name]
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def bits(t):
    """t's values as float32 bit patterns, as torch converts them (NaN payloads included)."""
    f = t.detach().to(torch.float32).reshape(-1)
    return [v & 0xFFFFFFFF for v in f.view(torch.int32).tolist()]


def from_bits(patterns, dtype):
    """A 16-bit float tensor of the given bit patterns (NaNs with payloads, signalling ones)."""
    raw = torch.tensor([p - 0x10000 if p >= 0x8000 else p for p in patterns], dtype=torch.int16)
    return raw.view(dtype)


def c_tensors(prefix, order, tensors):
    out = []
    for i, name in enumerate(order):
        t = tensors[name]
        vals = ", ".join(f"0x{b:08x}u" for b in bits(t))
        out.append(f"static const uint32_t {prefix}_{i}[] = {{{vals}}};")
    rows = []
    for i, name in enumerate(order):
        t = tensors[name]
        dims = list(t.shape) + [0] * (2 - t.dim())
        rows.append(f'    {{"{name}", "{DTYPE_NAMES[t.dtype]}", {t.dim()}, {{{dims[0]}, {dims[1]}}}, '
                    f"{t.numel()}, {prefix}_{i}}},")
    out.append(f"static const st_ref_tensor {prefix}[] = {{\n" + "\n".join(rows) + "\n};")
    return "\n".join(out)


def main():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state_order = list(sd)
    seq_order = sorted(sd)
    write_safetensors(os.path.join(HERE, "torch_sequential.safetensors"), seq_order, seq_order,
                      sd, {"format": "pt"})

    special = [0.0, -0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 65504.0, 65520.0, 6.103515625e-05,
               5.960464477539063e-08, 1e-05, -3e-08, 3e38, 1e-40, 1e-300, 1e300,
               float("inf"), float("-inf"), float("nan")]
    w = sd["0.weight"]
    dt = {
        "half.special": torch.tensor(special, dtype=torch.float64).to(torch.float16),
        "bf16.special": torch.tensor(special, dtype=torch.float64).to(torch.bfloat16),
        "f64.special": torch.tensor(special, dtype=torch.float64),
        "half.weight": w.to(torch.float16),
        "bf16.weight": w.to(torch.bfloat16),
        "f64.weight": w.to(torch.float64) / 3.0,
        "f32.scalar": torch.tensor(-1.5, dtype=torch.float32),
        # NaNs with payloads, signalling and quiet, of either sign: torch quiets F16's
        "half.nans": from_bits([0x7C01, 0x7D00, 0xFC01, 0x7E00, 0x7DFF, 0xFE01, 0x7FFF],
                               torch.float16),
        "bf16.nans": from_bits([0x7F81, 0x7FC1, 0xFF81, 0x7FFF, 0xFFC0], torch.bfloat16),
    }
    dt_data = sorted(dt)
    dt_header = list(reversed(dt_data))
    write_safetensors(os.path.join(HERE, "torch_dtypes.safetensors"), dt_header, dt_data, dt,
                      None)

    with open(os.path.join(HERE, "safetensors_ref.h"), "w") as f:
        f.write(f"""/* Generated by tests/data/gen_safetensors.py from PyTorch {torch.__version__}. Do not edit. */
#ifndef NABLA_TESTS_SAFETENSORS_REF_H
#define NABLA_TESTS_SAFETENSORS_REF_H

#include <stdint.h>

/* One tensor of a file: its float32 values as bit patterns, row-major. */
typedef struct st_ref_tensor {{
    const char *name, *dtype;
    int ndim;
    int64_t dims[2];
    int64_t numel;
    const uint32_t *bits;
}} st_ref_tensor;

/* torch_sequential.safetensors, in header order; metadata {{"format": "pt"}} */
{c_tensors("st_ref_sequential", seq_order, sd)}
#define ST_REF_SEQUENTIAL_N {len(seq_order)}

/* The names in model.state_dict() order. */
static const char *const st_ref_state_order[] = {{{", ".join(f'"{n}"' for n in state_order)}}};

/* torch_dtypes.safetensors, in header order (the data section is in reverse); no metadata */
{c_tensors("st_ref_dtypes", dt_header, dt)}
#define ST_REF_DTYPES_N {len(dt_header)}

#endif
""")


if __name__ == "__main__":
    main()
