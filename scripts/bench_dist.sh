#!/usr/bin/env bash
# bench-dist on 1 rank and on 2 ranks (one BLAS thread each), alternately, ROUNDS times, so a
# busy spell of the machine hits both; then the median examples/s of each and the scaling
# ratio (median over the rounds of 2-rank / 1-rank, each round's pair measured back to back).
# Usage: scripts/bench_dist.sh [ROUNDS] [bench-dist options, e.g. --batch 1024,4096]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true
build=build/demo
if [ ! -x "$build/bench/bench-dist" ]; then
    cmake --preset demo >/dev/null
    cmake --build --preset demo --target bench-dist >/dev/null
fi
. "$build/mpiexec-env.sh"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for r in $(seq "$rounds"); do
    for np in 1 2; do
        mpirun -n "$np" "$build/bench/bench-dist" --json "$@" | sed "s/^{/{\"round\": $r, /" >>"$rows"
    done
done
/usr/bin/python3 - "$rows" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
by = {}
for r in rows:
    by.setdefault((r["global_batch"], r["ranks"]), []).append(r)
print("| global batch | 1 rank examples/s | 2 ranks examples/s | scaling (median of rounds) | range | step, 1 rank | step, 2 ranks | optimizer, 1 / 2 ranks | average alone | average in the step |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for gb in sorted({k[0] for k in by}):
    one = {r["round"]: r["examples_per_s"] for r in by.get((gb, 1), [])}
    two = {r["round"]: r["examples_per_s"] for r in by.get((gb, 2), [])}
    ratios = [two[k] / one[k] for k in one if k in two]
    med = lambda ranks, key: statistics.median(r[key] for r in by.get((gb, ranks), [])) * 1e3
    print("| %d | %.0f | %.0f | %.2f× | %.2f–%.2f | %.1f ms | %.1f ms | %.2f / %.2f ms | %.2f ms | %.2f ms |" % (
        gb, statistics.median(one.values()), statistics.median(two.values()),
        statistics.median(ratios), min(ratios), max(ratios), med(1, "median_step_s"),
        med(2, "median_step_s"), med(1, "median_optimizer_s"), med(2, "median_optimizer_s"),
        med(2, "median_average_alone_s"), med(2, "median_average_s")))
PY
