#!/usr/bin/python3
"""Generate tests/data/data_ref.h: PyTorch 1.13's batch order and batch values, and facts
about the Fashion-MNIST files, for tests/test_data.c.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_data.py`.

- Loader cases: torch.utils.data.DataLoader over a TensorDataset of the indices 0..n-1, so
  each batch is the list of dataset indices it holds, for each seed and setting, over some
  epochs; then three torch.rand values from the default generator (and from the explicit
  generator, when there is one) show where the loader left the generators. Orders of more
  than STORE_MAX indices are stored as a hash (sum of (index + 1) * HASH_K^(i+1) mod 2^64)
  plus the first batch.
- Batch values: what ToTensor and Normalize make of each byte value, as float32 bits.
  torchvision is not needed: its ToTensor on a uint8 image is `img.to(torch.float32)
  .div(255)` and Normalize is `tensor.sub_(mean).div_(std)` with float32 mean and std,
  which is what is computed here.
- Dataset facts: counts, label sums, pixel sums and a few pixels of the real Fashion-MNIST
  (/usr/share/datasets/fashion-mnist) and of the committed subset tests/data/fashion-mini.
"""
import gzip
import os
import struct

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))
FASHION = "/usr/share/datasets/fashion-mnist"
STORE_MAX = 1000
HASH_K = 0x9E3779B97F4A7C15
MEAN, STD = 0.2860, 0.3530

# name, seed, n, batch_size, shuffle, drop_last, generator seed (None: none), epochs, between
LOADER_CASES = [
    ("seed 0 shuffle", 0, 1000, 64, True, False, None, 2, False),
    ("seed 1 shuffle", 1, 1000, 64, True, False, None, 2, False),
    ("seed 0 shuffle drop_last", 0, 1000, 64, True, True, None, 2, False),
    ("seed 1 shuffle, a draw between iter() and the first batch", 1, 1000, 64, True, False,
     None, 2, True),
    ("seed 0 sequential", 0, 1000, 64, False, False, None, 2, False),
    ("seed 0 sequential drop_last, generator 3", 0, 1000, 64, False, True, 3, 2, False),
    ("generator 5 shuffle, batches that divide n", 0, 1000, 100, True, False, 5, 2, False),
    ("generator 5 shuffle drop_last", 1, 1000, 64, True, True, 5, 2, False),
    ("generator 7, n below batch_size", 0, 3, 5, True, False, 7, 2, False),
    ("generator 7, n below batch_size, drop_last", 0, 3, 5, True, True, 7, 2, False),
    ("seed 0 shuffle, 60000 examples", 0, 60000, 128, True, False, None, 1, False),
]


def bits_hash(values):
    b = np.asarray(values, dtype=np.uint64) + np.uint64(1)
    powers = np.cumprod(np.full(len(b), HASH_K, dtype=np.uint64), dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(b * powers, dtype=np.uint64))


def f32_bits(t):
    return t.to(torch.float32).contiguous().reshape(-1).numpy().view(np.uint32).tolist()


def run_loader(seed, n, batch_size, shuffle, drop_last, gen_seed, epochs, between):
    torch.manual_seed(seed)
    gen = None
    if gen_seed is not None:
        gen = torch.Generator()
        gen.manual_seed(gen_seed)
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=batch_size,
                        shuffle=shuffle, drop_last=drop_last, generator=gen)
    sizes, indices = [], []
    for _ in range(epochs):
        it = iter(loader)
        if between:
            torch.rand(2)
        count = 0
        for (batch,) in it:
            sizes.append(len(batch))
            indices.extend(batch.tolist())
            count += 1
        assert count == len(loader)
        sizes.append(0)  # the end of the epoch
    after = f32_bits(torch.rand(3))
    after_gen = f32_bits(torch.rand(3, generator=gen)) if gen is not None else [0, 0, 0]
    return sizes, indices, after, after_gen


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def dataset_facts(directory, split):
    images = read_idx(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"))
    last = len(labels) - 1
    return dict(count=len(labels), label_sum=int(labels.astype(np.uint64).sum()),
                pixel_sum=int(images.astype(np.uint64).sum()),
                first_labels=labels[:10].tolist(), last_label=int(labels[last]),
                pixels=[(0, 14, 14, int(images[0, 14, 14])), (0, 27, 27, int(images[0, 27, 27])),
                        (1, 10, 5, int(images[1, 10, 5])),
                        (last, 14, 14, int(images[last, 14, 14]))])


def c_list(values, fmt, per_line=12):
    values = list(values)
    lines = []
    for i in range(0, len(values), per_line):
        lines.append("    " + " ".join(fmt(v) + "," for v in values[i:i + per_line]))
    return "\n".join(lines) if lines else "    0,"


def emit(out):
    w = out.write
    w("/* Generated by tests/data/gen_data.py from PyTorch %s. Do not edit. */\n"
      % torch.__version__.split("+")[0])
    w("#ifndef NABLA_TESTS_DATA_REF_H\n#define NABLA_TESTS_DATA_REF_H\n\n#include <stdint.h>\n\n")
    w(f"#define DATA_REF_HASH_K UINT64_C(0x{HASH_K:016x})\n")
    w(f"#define DATA_REF_MEAN {MEAN}f\n#define DATA_REF_STD {STD}f\n\n")

    byte = torch.arange(256, dtype=torch.int64).to(torch.uint8)
    scaled = byte.to(torch.float32).div(255)
    normalised = scaled.clone().sub_(torch.as_tensor([MEAN], dtype=torch.float32)).div_(
        torch.as_tensor([STD], dtype=torch.float32))
    w("/* ToTensor of each byte value: byte / 255 in float32 */\n")
    w("static const uint32_t data_ref_scaled[256] = {\n")
    w(c_list(f32_bits(scaled), lambda v: f"0x{v:08x}u", 8) + "\n};\n")
    w(f"/* then Normalize(mean={MEAN}, std={STD}) */\n")
    w("static const uint32_t data_ref_normalised[256] = {\n")
    w(c_list(f32_bits(normalised), lambda v: f"0x{v:08x}u", 8) + "\n};\n\n")

    w("typedef struct data_ref_loader {\n"
      "    const char *name;\n"
      "    uint64_t seed;          /* nb_manual_seed first */\n"
      "    int64_t n, batch_size;\n"
      "    int shuffle, drop_last;\n"
      "    int64_t gen_seed;       /* the loader's own generator, or -1 for none */\n"
      "    int epochs;\n"
      "    int between;            /* nb_rand(2) after begin_epoch, before the first batch */\n"
      "    const int64_t *sizes;   /* every next's result, 0 closing each epoch */\n"
      "    int64_t nsizes;\n"
      "    const uint16_t *indices; /* every batch's indices in order, or NULL: see hash */\n"
      "    int64_t nindices;\n"
      "    uint64_t hash;          /* sum of (index + 1) * DATA_REF_HASH_K^(i+1) mod 2^64 */\n"
      "    const uint16_t *first;  /* the first batch, when indices is NULL */\n"
      "    uint32_t after[3];      /* then torch.rand(3): float32 bits */\n"
      "    uint32_t after_gen[3];  /* then torch.rand(3, generator=g), when there is one */\n"
      "} data_ref_loader;\n\n")
    rows = []
    for i, (name, seed, n, bs, shuffle, drop_last, gen_seed, epochs, between) in enumerate(
            LOADER_CASES):
        sizes, indices, after, after_gen = run_loader(seed, n, bs, shuffle, drop_last,
                                                      gen_seed, epochs, between)
        w(f"/* {name} */\nstatic const int64_t data_ref_sizes_{i}[] = {{\n")
        w(c_list(sizes, str, 16) + "\n};\n")
        stored = len(indices) <= STORE_MAX * epochs and n <= STORE_MAX
        listed = indices if stored else indices[:sizes[0]]
        w(f"static const uint16_t data_ref_indices_{i}[] = {{\n")
        w(c_list(listed, str, 16) + "\n};\n")
        h = 0 if stored else bits_hash(indices)
        arr = f"data_ref_indices_{i}"
        rows.append(
            f"    {{\"{name}\", UINT64_C({seed}), {n}, {bs}, {int(shuffle)}, {int(drop_last)}, "
            f"{-1 if gen_seed is None else gen_seed}, {epochs}, {int(between)}, "
            f"data_ref_sizes_{i}, {len(sizes)}, {arr if stored else 'NULL'}, {len(indices)}, "
            f"UINT64_C(0x{h:016x}), {'NULL' if stored else arr}, "
            f"{{{', '.join(f'0x{v:08x}u' for v in after)}}}, "
            f"{{{', '.join(f'0x{v:08x}u' for v in after_gen)}}}}},\n")
    w("\nstatic const data_ref_loader data_ref_loaders[] = {\n" + "".join(rows) + "};\n\n")

    w("typedef struct data_ref_pixel {\n    int64_t example, row, col;\n    int value;\n"
      "} data_ref_pixel;\n\n")
    w("typedef struct data_ref_set {\n"
      "    const char *dir;        /* relative to NB_TEST_DATA_DIR, or absolute */\n"
      "    int train;\n"
      "    int64_t count;\n"
      "    uint64_t label_sum, pixel_sum;\n"
      "    int first_labels[10];\n"
      "    int last_label;\n"
      "    data_ref_pixel pixels[4];\n"
      "} data_ref_set;\n\n")
    w("static const data_ref_set data_ref_sets[] = {\n")
    for directory, label in ((FASHION, FASHION), (os.path.join(HERE, "fashion-mini"),
                                                  "fashion-mini")):
        for split, train in (("train", 1), ("t10k", 0)):
            f = dataset_facts(directory, split)
            px = ", ".join(f"{{{e}, {r}, {c}, {v}}}" for e, r, c, v in f["pixels"])
            w(f"    {{\"{label}\", {train}, {f['count']}, UINT64_C({f['label_sum']}), "
              f"UINT64_C({f['pixel_sum']}), {{{', '.join(map(str, f['first_labels']))}}}, "
              f"{f['last_label']}, {{{px}}}}},\n")
    w("};\n\n#endif\n")


def main():
    with open(os.path.join(HERE, "data_ref.h"), "w") as out:
        emit(out)


if __name__ == "__main__":
    main()
