#!/usr/bin/python3
"""Generate tests/data/rng_ref.h: PyTorch 1.13's CPU random numbers, bit for bit.

Run with /usr/bin/python3 (python3-torch 1.13): `/usr/bin/python3 tests/data/gen_rng.py`.
Each case is one call on the default generator or, for the cases marked gen, on one
explicit torch.Generator that the test mirrors with one nb_generator (nabla's *_gen forms);
a case either seeds its generator first (reseed) or continues from the state the previous
case on that generator left, which is how the cached Box-Muller partner, consecutive calls
and the independence of the two generators are checked. Values are stored as float32 bit
patterns (int64 results of randint and randperm are converted to float32 first, as nabla
stores them); a large result is stored as a hash of its bit patterns instead (HASH_K below).

randn of 16 or more values goes through PyTorch's AVX2 kernel: run this on an x86-64 machine
where torch reports "CPU capability usage: AVX2" (an AVX-512 machine takes another path).
"""
import os

import numpy as np
import torch

OPS = ("RAND", "RANDN", "RANDINT", "NORMAL", "UNIFORM", "RANDOM", "RANDPERM")
SEEDS = (0, 1, 42)
SIZES = (1, 3, 15, 16, 17, 100, 1000)
# Results with more elements than this are stored as a hash: sum of (bits[i] + 1) * K^(i+1)
# modulo 2^64, over the float32 bit patterns.
HASH_OVER = 4096
HASH_K = 0x9E3779B97F4A7C15


def bits_hash(bits):
    b = np.asarray(bits, dtype=np.uint64) + np.uint64(1)
    powers = np.cumprod(np.full(len(b), HASH_K, dtype=np.uint64), dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(b * powers, dtype=np.uint64))


def cases():
    c = []

    gen = torch.Generator()

    def add(name, op, shape, fn, seed=None, a=0.0, b=0.0, on_gen=False):
        if seed is not None:
            if on_gen:
                gen.manual_seed(seed)
            else:
                torch.manual_seed(seed)
        x = fn()
        assert tuple(x.shape) == tuple(shape), (name, x.shape)
        vals = x.to(torch.float32).contiguous().reshape(-1).numpy()
        c.append(dict(name=name, op=op, seed=seed, shape=tuple(shape), a=a, b=b,
                      gen=on_gen, bits=vals.view(np.uint32).tolist()))

    for seed in SEEDS:
        for n in SIZES:
            add(f"rand({n}) seed {seed}", "RAND", (n,), lambda: torch.rand(n), seed)
    for seed in SEEDS:
        for n in SIZES:
            add(f"randn({n}) seed {seed}", "RANDN", (n,), lambda: torch.randn(n), seed)
    add("rand(4, 5) seed 2^64-1", "RAND", (4, 5), lambda: torch.rand(4, 5), 2**64 - 1)

    for seed in (0, 1):
        add(f"randint(0, 10, (20,)) seed {seed}", "RANDINT", (20,),
            lambda: torch.randint(0, 10, (20,)), seed, 0, 10)
    add("randint(-5, 5, (2, 7)) seed 3", "RANDINT", (2, 7),
        lambda: torch.randint(-5, 5, (2, 7)), 3, -5, 5)
    # a range of 2^32 or more takes a 64-bit draw per value
    add("randint(-2^40, 2^40, (6,)) seed 4", "RANDINT", (6,),
        lambda: torch.randint(-2**40, 2**40, (6,)), 4, -2**40, 2**40)
    add("empty(20).random_(-3, 7) seed 5", "RANDOM", (20,),
        lambda: torch.empty(20).random_(-3, 7), 5, -3, 7)

    # the cached partner of an odd-sized small randn carries over to the next call
    add("randn(5, 3) seed 0", "RANDN", (5, 3), lambda: torch.randn(5, 3), 0)
    add("then randn(3)", "RANDN", (3,), lambda: torch.randn(3))
    # ... and the >= 16 path neither reads nor writes it
    add("randn(1) seed 7", "RANDN", (1,), lambda: torch.randn(1), 7)
    add("then randn(16)", "RANDN", (16,), lambda: torch.randn(16))
    add("then randn(1)", "RANDN", (1,), lambda: torch.randn(1))
    # the cached value is stored unscaled: the next call's mean and std apply to it
    add("randn(3) seed 8", "RANDN", (3,), lambda: torch.randn(3), 8)
    add("then empty(5).normal_(2, 3)", "NORMAL", (5,),
        lambda: torch.empty(5).normal_(2, 3), None, 2, 3)
    # two calls in a row, the first with a ragged tail
    add("randn(17) seed 0", "RANDN", (17,), lambda: torch.randn(17), 0)
    add("then randn(100)", "RANDN", (100,), lambda: torch.randn(100))

    for n in (20, 5):
        add(f"empty({n}).normal_(2, 3) seed 0", "NORMAL", (n,),
            lambda: torch.empty(n).normal_(2, 3), 0, 2, 3)
        add(f"empty({n}).uniform_(-1, 2) seed 0", "UNIFORM", (n,),
            lambda: torch.empty(n).uniform_(-1, 2), 0, -1, 2)
    add("empty(33).normal_(-0.5, 0.01) seed 9", "NORMAL", (33,),
        lambda: torch.empty(33).normal_(-0.5, 0.01), 9, -0.5, 0.01)
    add("empty(40).uniform_(-0.3, 0.7) seed 9", "UNIFORM", (40,),
        lambda: torch.empty(40).uniform_(-0.3, 0.7), 9, -0.3, 0.7)

    # randperm: a forward Fisher-Yates shuffle, one 32-bit draw per swap
    for seed, n in ((0, 10), (1, 1000), (0, 60000)):
        add(f"randperm({n}) seed {seed}", "RANDPERM", (n,), lambda: torch.randperm(n), seed, n)
    add("then rand(3)", "RAND", (3,), lambda: torch.rand(3))
    add("randperm(0) seed 2", "RANDPERM", (0,), lambda: torch.randperm(0), 2, 0)
    add("then randperm(1)", "RANDPERM", (1,), lambda: torch.randperm(1), None, 1)
    add("then rand(2)", "RAND", (2,), lambda: torch.rand(2))

    # the generator forms, interleaved with the default generator, which they leave alone
    add("gen: randn(5) seed 11", "RANDN", (5,), lambda: torch.randn(5, generator=gen), 11,
        on_gen=True)
    add("rand(3) seed 0", "RAND", (3,), lambda: torch.rand(3), 0)
    add("gen: then randn(3)", "RANDN", (3,), lambda: torch.randn(3, generator=gen),
        on_gen=True)
    add("gen: then rand(17)", "RAND", (17,), lambda: torch.rand(17, generator=gen),
        on_gen=True)
    add("then rand(3)", "RAND", (3,), lambda: torch.rand(3))
    add("gen: then randn(40)", "RANDN", (40,), lambda: torch.randn(40, generator=gen),
        on_gen=True)
    add("gen: then randint(-7, 100, (9,))", "RANDINT", (9,),
        lambda: torch.randint(-7, 100, (9,), generator=gen), None, -7, 100, on_gen=True)
    add("gen: then randperm(1000)", "RANDPERM", (1000,),
        lambda: torch.randperm(1000, generator=gen), None, 1000, on_gen=True)
    add("gen: then empty(7).normal_(1, 2)", "NORMAL", (7,),
        lambda: torch.empty(7).normal_(1, 2, generator=gen), None, 1, 2, on_gen=True)
    add("gen: rand(4, 5) seed 0", "RAND", (4, 5), lambda: torch.rand(4, 5, generator=gen), 0,
        on_gen=True)
    add("then randn(3)", "RANDN", (3,), lambda: torch.randn(3))
    return c


def c_double(v):
    return float(v).hex() if v != int(v) else f"{int(v)}.0"


def emit(c, out):
    out.write("/* Generated by tests/data/gen_rng.py from PyTorch %s. Do not edit. */\n"
              % torch.__version__.split("+")[0])
    out.write("#ifndef NABLA_TESTS_RNG_REF_H\n#define NABLA_TESTS_RNG_REF_H\n\n")
    out.write("#include <stdint.h>\n\n")
    out.write(f"#define RNG_REF_HASH_K UINT64_C(0x{HASH_K:016x})\n\n")
    out.write("typedef enum rng_ref_op {\n")
    for op in OPS:
        out.write(f"    RNG_REF_{op},\n")
    out.write("} rng_ref_op;\n\n")
    out.write("typedef struct rng_ref_case {\n"
              "    const char *name;\n"
              "    rng_ref_op op;\n"
              "    int gen;       /* 0: the default generator; 1: the test's nb_generator */\n"
              "    int reseed;    /* 1: seed the case's generator with seed first; 0: continue */\n"
              "    uint64_t seed;\n"
              "    int ndim;\n"
              "    int64_t dims[2];\n"
              "    double a, b;   /* randint/random_ low, high; normal_ mean, std; "
              "uniform_ from, to; randperm n */\n"
              "    int64_t numel;\n"
              "    const uint32_t *bits; /* float32 bit patterns, or NULL: see hash */\n"
              "    uint64_t hash; /* for bits NULL: sum of (bits[i] + 1) * RNG_REF_HASH_K^(i+1) "
              "mod 2^64 */\n"
              "} rng_ref_case;\n\n")
    for i, k in enumerate(c):
        if len(k["bits"]) > HASH_OVER or not k["bits"]:
            continue
        out.write(f"/* {k['name']} */\nstatic const uint32_t rng_ref_bits_{i}[] = {{\n")
        row = []
        for j, b in enumerate(k["bits"]):
            row.append(f"0x{b:08x}u,")
            if len(row) == 8 or j == len(k["bits"]) - 1:
                out.write("    " + " ".join(row) + "\n")
                row = []
        out.write("};\n")
    out.write("\nstatic const rng_ref_case rng_ref_cases[] = {\n")
    for i, k in enumerate(c):
        dims = list(k["shape"]) + [0] * (2 - len(k["shape"]))
        seed = k["seed"] if k["seed"] is not None else 0
        n = len(k["bits"])
        stored = 0 < n <= HASH_OVER
        bits = f"rng_ref_bits_{i}" if stored else "NULL"
        h = 0 if stored else bits_hash(k["bits"])
        out.write(f"    {{\"{k['name']}\", RNG_REF_{k['op']}, {int(k['gen'])}, "
                  f"{int(k['seed'] is not None)}, "
                  f"UINT64_C({seed}), {len(k['shape'])}, {{{dims[0]}, {dims[1]}}}, "
                  f"{c_double(k['a'])}, {c_double(k['b'])}, {n}, "
                  f"{bits}, UINT64_C(0x{h:016x})}},\n")
    out.write("};\n\n#endif\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "rng_ref.h"), "w") as out:
        emit(cases(), out)


if __name__ == "__main__":
    main()
