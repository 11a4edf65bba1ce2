#!/usr/bin/python3
"""Check that PyTorch can use a safetensors file written by nabla.

Usage: /usr/bin/python3 scripts/check_safetensors_torch.py FILE [--seed S]

Reads FILE with json and struct only (no safetensors package), checking the layout as the
format requires (header length, padding to 8 bytes, data_offsets tiling the data section),
builds torch tensors, and loads them into torch.nn.Sequential(Linear(4, 3), ReLU(),
Linear(3, 2)) with load_state_dict(strict=True). With --seed S, the values must also equal,
bit for bit, those of the same model made after torch.manual_seed(S). Prints the metadata
and "OK", or fails with a message.

The file tests/test_safetensors.c writes for this check:
    NB_SAFETENSORS_TORCH_OUT=/tmp/seq.safetensors build/test/tests/test_safetensors
    /usr/bin/python3 scripts/check_safetensors_torch.py /tmp/seq.safetensors --seed 0
"""
import argparse
import json
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "F64": (torch.float64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"header length {n} runs past the file ({len(raw)} bytes)"
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    text = raw[8:8 + n].decode("utf-8")
    assert text.startswith("{"), "the header does not start with '{'"
    assert text.rstrip(" ").endswith("}"), "the header is not padded with spaces after its '}'"
    header = json.loads(text)
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, ranges = {}, []
    for name, info in header.items():
        dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        numel = 1
        for d in info["shape"]:
            numel *= d
        assert end - begin == numel * size, f"{name}: shape and data_offsets disagree"
        ranges.append((begin, end, name))
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    at = 0
    for begin, end, name in sorted(ranges):
        assert begin == at, f"{name}: data_offsets leave a gap or overlap at byte {at}"
        at = end
    assert at == len(data), f"{len(data) - at} bytes at the end of the data belong to no tensor"
    return tensors, metadata


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    tensors, metadata = read_safetensors(args.file)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model.load_state_dict(tensors, strict=True)
    if args.seed is not None:
        torch.manual_seed(args.seed)
        ref = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        for name, want in ref.state_dict().items():
            got = model.state_dict()[name]
            if not torch.equal(got.view(torch.int32), want.view(torch.int32)):
                sys.exit(f"{name}: values differ from the seed-{args.seed} model")
    print(f"tensors: {', '.join(f'{k} {list(v.shape)}' for k, v in tensors.items())}")
    print(f"metadata: {metadata}")
    with torch.no_grad():
        print(f"model(ones(1, 4)) = {model(torch.ones(1, 4)).tolist()}")
    print("OK")


if __name__ == "__main__":
    main()
