#!/usr/bin/env python3
"""Plot bench-matmul --json output: GFLOP/s against n, one line per method and thread count.

    build/demo/bench/bench-matmul --json > run1.json      # repeat for run2.json, ...
    python3 scripts/plot_matmul.py run1.json [run2.json ...] \\
        [-o docs/images/matmul_gflops.png] [--markdown]

With several files each point is the median over the runs (each run already reports the
median of its repetitions); speedups are taken within each run and then the median, so a
ratio never mixes two runs. --markdown also prints the table of docs/benchmarks.md.
Needs matplotlib (Debian: apt-get install python3-matplotlib, then use /usr/bin/python3).
"""
import argparse
import json
import statistics
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


def collect(paths):
    """{(threads, n, method): {"gflops": [...], "speedup": [...]}} over every run."""
    cells = {}
    for path in paths:
        for r in read_rows(path):
            cell = cells.setdefault((r["threads"], r["n"], r["method"]),
                                    {"gflops": [], "speedup": []})
            if r["skipped"]:
                continue
            cell["gflops"].append(r["gflops"])
            if r.get("speedup_vs_naive") is not None:
                cell["speedup"].append(r["speedup_vs_naive"])
    return cells


def median(values):
    return statistics.median(values) if values else None


def plot(cells, out, runs):
    try:
        import matplotlib
    except ImportError:
        sys.exit("matplotlib missing: apt-get install python3-matplotlib "
                 "(and run this script with /usr/bin/python3), or pip install matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    threads = sorted({t for t, _, _ in cells})
    for method, label, colour in METHODS:
        for t in threads:
            pts = sorted((n, median(c["gflops"])) for (tt, n, m), c in cells.items()
                         if m == method and tt == t and c["gflops"])
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts],
                    linestyle=LINESTYLE.get(t, ":"), marker=MARKER.get(t, "^"), color=colour,
                    label=f"{label}, {t} thread{'s' if t > 1 else ''}")
    sizes = sorted({n for _, n, _ in cells})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.set_xlabel("n (C = A·B, all n × n, float32)")
    ax.set_ylabel("GFLOP/s (2n³ / median time)")
    runs_note = f"median of {runs} runs" if runs > 1 else "one run"
    ax.set_title(f"bench-matmul: naive vs i-k-j blocked vs cblas_sgemm ({runs_note})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}", file=sys.stderr)


def speedup_cell(values, runs):
    if not values:
        return "—"
    text = f"{median(values):.1f}×"
    if runs > 1 and len(values) > 1:
        text += f" ({min(values):.0f}–{max(values):.0f})"
    return text


def markdown(cells, runs):
    print("| threads | n | naive GFLOP/s | i-k-j blocked GFLOP/s | cblas_sgemm GFLOP/s "
          "| blocked vs naive | BLAS vs naive |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for t, n in sorted({(t, n) for t, n, _ in cells}):
        row = []
        for method, _, _ in METHODS:
            c = cells.get((t, n, method))
            row.append(f"{median(c['gflops']):.2f}" if c and c["gflops"] else "skipped")
        for method in ("ikj_blocked", "cblas_sgemm"):
            c = cells.get((t, n, method))
            row.append(speedup_cell(c["speedup"] if c else [], runs))
        print(f"| {t} | {n} | " + " | ".join(row) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="files holding bench-matmul --json output")
    ap.add_argument("-o", "--output", default="docs/images/matmul_gflops.png")
    ap.add_argument("--markdown", action="store_true", help="also print the docs table")
    args = ap.parse_args()
    cells = collect(args.json)
    plot(cells, args.output, len(args.json))
    if args.markdown:
        markdown(cells, len(args.json))


if __name__ == "__main__":
    main()
