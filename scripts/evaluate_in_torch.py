#!/usr/bin/python3
"""Evaluate a model nabla-train saved, in PyTorch 1.13: the checkpoint PyTorch reads.

    build/demo/examples/nabla-train --save model.safetensors
    /usr/bin/python3 scripts/evaluate_in_torch.py model.safetensors [--data DIR]

Reads the safetensors file with json and struct only (scripts/check_safetensors_torch.py),
builds torch.nn.Sequential(Linear, ReLU, ..., Linear) with the hidden sizes of the file's
metadata, loads the tensors with load_state_dict(strict=True), and prints the test loss and
accuracy on the test set as nabla-train computes them, which it printed for its last epoch.
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_safetensors_torch import read_safetensors  # noqa: E402
from train_reference import load  # noqa: E402


def main():
    a = argparse.ArgumentParser()
    a.add_argument("file")
    a.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    o = a.parse_args()
    tensors, metadata = read_safetensors(o.file)
    test = load(o.data, False)
    layers, inp = [], test.tensors[0].shape[1]
    for h in [int(v) for v in metadata.get("hidden", "256,128").split(",")]:
        layers += [nn.Linear(inp, h), nn.ReLU()]
        inp = h
    model = nn.Sequential(*layers, nn.Linear(inp, tensors[f"{len(layers)}.weight"].shape[0]))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    x, y = test.tensors
    with torch.no_grad():
        out = model(x)
        loss = F.cross_entropy(out, y, reduction="sum").item() / len(y)
        accuracy = (out.argmax(1) == y).sum().item() / len(y)
    print(f"{o.file}: {', '.join(f'{k} {list(v.shape)}' for k, v in tensors.items())}")
    print(f"PyTorch: test loss {loss:.4f}  test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
