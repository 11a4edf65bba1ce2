#!/usr/bin/env bash
# W1 in nabla against W1 in libtorch, alternating, so each ratio comes from one moment of a
# shared machine. Builds the demo preset with the libtorch peer (needs libtorch-dev).
#   scripts/bench_w1_peer.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-9}
cmake --preset demo -DNB_BENCH_PEERS=ON >/dev/null
cmake --build --preset demo --target bench-autograd bench-peer-libtorch-w1 >/dev/null
ratios=()
printf '%6s %14s %12s %8s\n' pair "libtorch ns" "nabla ns" ratio
for i in $(seq "$pairs"); do
    lt=$(build/demo/bench/bench-peer-libtorch-w1 1000 7)
    nb=$(build/demo/bench/bench-autograd --workloads 1 --threads 1 | awk '$2 == "scope" {print $6}')
    r=$(awk -v a="$lt" -v b="$nb" 'BEGIN {printf "%.1f", a / b}')
    ratios+=("$r")
    printf '%6d %14s %12s %8s\n' "$i" "$lt" "$nb" "$r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {printf "median ratio %.1f (min %.1f, max %.1f) over %d pairs\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR], NR}'
