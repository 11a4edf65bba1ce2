#!/usr/bin/env bash
# W3 and the main job's step (T) in nabla (bench-train) against the same step in libtorch C++
# (bench/peers/libtorch_step.cpp), alternating, so each ratio compares two measurements taken
# seconds apart on a shared machine. Builds the demo preset with the peers (needs
# libtorch-dev). libtorch gets OPENBLAS_NUM_THREADS and at::set_num_threads at the thread
# count, and OMP_WAIT_POLICY=PASSIVE.
#   scripts/bench_step_peer.sh [pairs] [threads...]       (default: 5 pairs, threads 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-5}
shift || true
threads=${*:-1 2}
cmake --preset demo -DNB_BENCH_PEERS=ON >/dev/null
cmake --build --preset demo --target bench-train bench-peer-libtorch-step >/dev/null
printf '%-3s %7s %5s %12s %12s %12s %9s\n' "" threads pair "libtorch ms" "nabla ms" "nabla/floor" "ratio"
for w in W3 T; do
    for t in $threads; do
        ratios=()
        for i in $(seq "$pairs"); do
            lt=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$t \
                build/demo/bench/bench-peer-libtorch-step "$w" "$t" 2)
            row=$(build/demo/bench/bench-train --workloads "$w" --threads "$t" --time 2 --json)
            nb=$(sed -E 's/.*"step_median_s": ([0-9.e+-]+).*/\1/' <<<"$row")
            fl=$(sed -E 's/.*"ratio": ([0-9.e+-]+).*/\1/' <<<"$row")
            r=$(awk -v a="$lt" -v b="$nb" 'BEGIN {printf "%.2f", a / (b * 1e3)}')
            ratios+=("$r")
            printf '%-3s %7d %5d %12.3f %12.3f %12.3f %9s\n' "$w" "$t" "$i" "$lt" \
                "$(awk -v b="$nb" 'BEGIN {print b * 1e3}')" "$fl" "$r"
        done
        printf '%s\n' "${ratios[@]}" | sort -n | awk -v w="$w" -v t="$t" '{a[NR] = $1} END {
            printf "%s, %d thread(s): libtorch / nabla median %.2f (min %.2f, max %.2f) over %d pairs\n",
                w, t, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR], NR}'
    done
done
