#!/usr/bin/env python3
"""Plot bench-matmul's --json output: GFLOP/s against n, one line per method and thread count.

    build/demo/bench/bench-matmul --json > matmul.json
    python3 scripts/plot_matmul.py matmul.json [-o docs/images/matmul_gflops.png] [--markdown]

--markdown also prints the summary table of docs/benchmarks.md (GFLOP/s and speedup over the
naive loop at each n and thread count) to stdout.
"""
import argparse
import json
import sys
from pathlib import Path

METHODS = [  # (method in the JSON, label, colour)
    ("naive", "naive i-j-k", "tab:red"),
    ("ikj_blocked", "i-k-j blocked", "tab:orange"),
    ("cblas_sgemm", "cblas_sgemm", "tab:blue"),
]
LINESTYLE = {1: "-", 2: "--"}
MARKER = {1: "o", 2: "s"}


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{lineno}: not JSON ({e})")
            if row.get("workload") == "M":
                rows.append(row)
    if not rows:
        sys.exit(f"{path}: no workload M rows (run bench-matmul --json)")
    return rows


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    threads = sorted({r["threads"] for r in rows})
    for method, label, colour in METHODS:
        for t in threads:
            pts = sorted(
                (r["n"], r["gflops"])
                for r in rows
                if r["method"] == method and r["threads"] == t and not r["skipped"]
            )
            if not pts:
                continue
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                linestyle=LINESTYLE.get(t, ":"),
                marker=MARKER.get(t, "^"),
                color=colour,
                label=f"{label}, {t} thread{'s' if t > 1 else ''}",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({r["n"] for r in rows})
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.set_xlabel("n (C = A·B, all n × n, float32)")
    ax.set_ylabel("GFLOP/s (2n³ / median time)")
    ax.set_title("nabla bench-matmul: naive vs cache-friendly loop vs cblas_sgemm")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}", file=sys.stderr)


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def markdown(rows):
    by = {(r["threads"], r["n"], r["method"]): r for r in rows}
    print("| threads | n | naive GFLOP/s | i-k-j blocked GFLOP/s | cblas_sgemm GFLOP/s "
          "| blocked vs naive | BLAS vs naive |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for t, n in sorted({(r["threads"], r["n"]) for r in rows}):
        cells = []
        for method, _, _ in METHODS:
            r = by.get((t, n, method))
            cells.append("skipped" if r is None or r["skipped"] else fmt(r["gflops"], ".2f"))
        ups = []
        for method in ("ikj_blocked", "cblas_sgemm"):
            r = by.get((t, n, method))
            s = None if r is None else r.get("speedup_vs_naive")
            ups.append("—" if s is None else f"{s:.1f}×")
        print(f"| {t} | {n} | " + " | ".join(cells + ups) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="file holding bench-matmul --json output")
    ap.add_argument("-o", "--output", default="docs/images/matmul_gflops.png")
    ap.add_argument("--markdown", action="store_true", help="also print the docs table")
    args = ap.parse_args()
    rows = read_rows(args.json)
    plot(rows, args.output)
    if args.markdown:
        markdown(rows)


if __name__ == "__main__":
    main()
