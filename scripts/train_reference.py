#!/usr/bin/python3
"""nabla-train's run in PyTorch 1.13: the same model, seed, data order and settings.

    /usr/bin/python3 scripts/train_reference.py [--data DIR] [--epochs N] [--batch B] [--lr LR]
        [--optim adam|sgd|adamw|rmsprop] [--hidden 256,128] [--seed S] [--threads T]
        [--no-shuffle] [--steps N] [--json] [--save-params FILE] [--save-predictions FILE]

It prints what nabla-train prints per epoch (with --json the same JSON keys), so the two can
be compared and timed side by side (scripts/bench_vs_pytorch.sh). The data are read from the
IDX files with gzip and numpy: no torchvision. --save-params writes the parameters after
training (safetensors, written with json and struct); --save-predictions the test set's
argmax after the last epoch, one byte per example.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit("train_reference.py: no %s in %s" % (stem, d))


def load(d, train):
    p = "train" if train else "t10k"
    x = read_idx(find(d, p + "-images-idx3-ubyte"))
    y = read_idx(find(d, p + "-labels-idx1-ubyte"))
    # transforms.ToTensor: uint8 / 255 as float32
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32)) / 255
    return TensorDataset(x, torch.from_numpy(y.astype(np.int64)))


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a.add_argument("--epochs", type=int, default=15)
    a.add_argument("--batch", type=int, default=128)
    a.add_argument("--lr", type=float, default=1e-3)
    a.add_argument("--optim", default="adam")
    a.add_argument("--hidden", default="256,128")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=0)
    a.add_argument("--no-shuffle", action="store_true")
    a.add_argument("--steps", type=int, default=0)
    a.add_argument("--json", action="store_true")
    a.add_argument("--save-params")
    a.add_argument("--save-predictions")
    o = a.parse_args()
    if o.threads:
        torch.set_num_threads(o.threads)

    train, test = load(o.data, True), load(o.data, False)
    torch.manual_seed(o.seed)
    layers, inp = [], train.tensors[0].shape[1]
    for h in [int(v) for v in o.hidden.split(",")]:
        layers += [nn.Linear(inp, h), nn.ReLU()]
        inp = h
    model = nn.Sequential(*layers, nn.Linear(inp, 10))
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop}[o.optim](model.parameters(), lr=o.lr)
    loader = DataLoader(train, batch_size=o.batch, shuffle=not o.no_shuffle)
    test_loader = DataLoader(test, batch_size=1000)
    steps = 0
    for epoch in range(1, o.epochs + 1):
        start = time.monotonic()
        model.train()
        total, seen = 0.0, 0
        for x, y in loader:
            opt.zero_grad(set_to_none=True)  # as nabla-train: every parameter gets a grad
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            seen += len(x)
            steps += 1
            if o.steps and steps == o.steps:
                break
        seconds = time.monotonic() - start
        model.eval()
        tl, right, preds = 0.0, 0, []
        with torch.no_grad():
            for x, y in test_loader:
                out = model(x)
                tl += F.cross_entropy(out, y, reduction="sum").item()
                p = out.argmax(1)
                preds.append(p)
                right += (p == y).sum().item()
        n = len(test)
        r = {"epoch": epoch, "train_loss": total / max(seen, 1), "test_loss": tl / n,
             "test_accuracy": right / n, "seconds": seconds}
        if o.json:
            print(json.dumps(r))
        else:
            print("epoch %2d: train loss %.4f  test loss %.4f  test accuracy %.4f  %.2f s" %
                  (epoch, r["train_loss"], r["test_loss"], r["test_accuracy"], seconds))
        sys.stdout.flush()
        if o.steps and steps == o.steps:
            break
    if o.save_params:
        save_safetensors(o.save_params, model.state_dict())
    if o.save_predictions:
        with open(o.save_predictions, "wb") as f:
            f.write(bytes(torch.cat(preds).to(torch.uint8).tolist()))


if __name__ == "__main__":
    main()
