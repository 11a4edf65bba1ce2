#!/usr/bin/python3
"""Write tests/data/fashion-mini/: the first 1000 training and 500 test examples of
Fashion-MNIST, as gzip-compressed IDX files with the standard names.

Reads the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/, or the
directory given as the first argument). Needs only Python's standard library. The gzip
headers carry no name and no time, so the output depends only on the input and zlib.
"""
import gzip
import os
import struct
import sys

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
COUNTS = {"train": 1000, "t10k": 500}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    return dims, data[4 + 4 * ndim:]


def write_idx(path, dims, payload):
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(header + payload)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-mini")
    os.makedirs(out, exist_ok=True)
    for split, n in COUNTS.items():
        for kind, ndim in (("images", 3), ("labels", 1)):
            name = f"{split}-{kind}-idx{ndim}-ubyte.gz"
            dims, payload = read_idx(os.path.join(SOURCE, name))
            per = 1
            for d in dims[1:]:
                per *= d
            write_idx(os.path.join(out, name), [n] + dims[1:], payload[:n * per])


if __name__ == "__main__":
    main()
