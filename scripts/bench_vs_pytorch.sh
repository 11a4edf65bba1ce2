#!/usr/bin/env bash
# The main job (T) in nabla against PyTorch, and against libtorch C++ when libtorch-dev is
# installed: nabla-train, scripts/train_reference.py and bench-peer-libtorch-train run one
# after the other, round after round, with the same settings (784-256-128-10, Adam 1e-3,
# batch 128), the same thread count for each (nb_set_num_threads / torch.set_num_threads,
# OPENBLAS_NUM_THREADS) and OMP_WAIT_POLICY=PASSIVE, so each ratio compares runs made
# minutes apart on a shared machine. Prints, per thread count, the seconds per epoch (median
# over every epoch of every round, min-max), the last epoch's test accuracy, the peak RSS
# (getrusage, through /usr/bin/time) and the ratios peer / nabla (median over rounds of the
# ratio of the two runs' median epochs, min-max).
#   scripts/bench_vs_pytorch.sh [--epochs N] [--rounds R] [--threads "1 2"] [--out FILE]
#                               [--data DIR]
# --out writes every epoch as CSV (tool,threads,round,epoch,seconds,test_accuracy,peak_rss_kib)
# for scripts/plot_epochs.sh. Exits 0 with a message when python3-torch is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=3 rounds=3 threads="1 2" out="" data=/usr/share/datasets/fashion-mnist
while [ $# -gt 0 ]; do
    case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "bench_vs_pytorch.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "bench_vs_pytorch.sh: python3-torch is not installed (apt-get install python3-torch): skipped"
    exit 0
fi
if [ ! -x /usr/bin/time ]; then
    echo "bench_vs_pytorch.sh: /usr/bin/time is needed for the peak RSS (apt-get install time)" >&2
    exit 1
fi
peers=(nabla pytorch)
if [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] ||
    [ -n "$(find /usr -name TorchConfig.cmake -print -quit 2>/dev/null)" ]; then
    cmake --preset demo -DNB_BENCH_PEERS=ON >/dev/null
    cmake --build --preset demo --target nabla-train bench-peer-libtorch-train >/dev/null
    peers+=(libtorch)
else
    echo "bench_vs_pytorch.sh: libtorch-dev is not installed: nabla against PyTorch only"
    cmake --preset demo >/dev/null
    cmake --build --preset demo --target nabla-train >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows=$tmp/rows.csv
: >"$rows"

# run TOOL THREADS ROUND: one training run, its epochs appended to $rows
run() {
    local tool=$1 t=$2 r=$3 log=$tmp/$1.log time=$tmp/$1.time
    local env=(env OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS="$t")
    case $tool in
    nabla) cmd=(build/demo/examples/nabla-train --data "$data" --epochs "$epochs" --threads "$t" --json) ;;
    pytorch) cmd=(/usr/bin/python3 scripts/train_reference.py --data "$data" --epochs "$epochs" --threads "$t" --json) ;;
    libtorch) cmd=(build/demo/bench/bench-peer-libtorch-train "$data" "$epochs" "$t") ;;
    esac
    "${env[@]}" /usr/bin/time -f "%M" -o "$time" "${cmd[@]}" >"$log"
    local rss
    rss=$(tail -n 1 "$time")
    # {"epoch": 1, ..., "test_accuracy": 0.8342, "seconds": 0.752}
    sed -E 's/.*"epoch": ([0-9]+).*"test_accuracy": ([0-9.]+).*"seconds": ([0-9.]+).*/\1 \2 \3/' "$log" |
        while read -r e acc s; do echo "$tool,$t,$r,$e,$s,$acc,$rss"; done >>"$rows"
}

for r in $(seq "$rounds"); do
    for t in $threads; do
        for p in "${peers[@]}"; do
            run "$p" "$t" "$r"
        done
        printf 'round %d/%d, %d thread(s): done\n' "$r" "$rounds" "$t" >&2
    done
done
[ -n "$out" ] && { echo "tool,threads,round,epoch,seconds,test_accuracy,peak_rss_kib"; cat "$rows"; } >"$out"

# the summary: medians with min-max, per thread count
awk -F, -v peers="${peers[*]}" -v threads="$threads" '
function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function minmax(a, n,   i, lo, hi) {
    lo = hi = a[1]
    for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    return sprintf("%.3f-%.3f", lo, hi)
}
{
    key = $1 SUBSEP $2; ns[key]++; sec[key, ns[key]] = $5
    rk = $1 SUBSEP $2 SUBSEP $3; nr[rk]++; rsec[rk, nr[rk]] = $5
    acc[rk] = $6; rss[rk] = $7
    if ($3 > maxr) maxr = $3
}
END {
    np = split(peers, P, " "); nt = split(threads, T, " ")
    printf "%-8s %7s %22s %9s %9s   %s\n", "tool", "threads", "s/epoch median (min-max)", "accuracy", "RSS MiB", "ratio to nabla: time (min-max), RSS"
    for (ti = 1; ti <= nt; ti++) {
        t = T[ti]
        for (p = 1; p <= np; p++) {
            tool = P[p]; key = tool SUBSEP t
            n = ns[key]; if (!n) continue
            for (i = 1; i <= n; i++) a[i] = sec[key, i]
            m = median(a, n); mm = minmax(a, n)
            na = 0; nrss = 0
            for (r = 1; r <= maxr; r++) {
                rk = tool SUBSEP t SUBSEP r
                if (!nr[rk]) continue
                acs[++na] = acc[rk]; rs[++nrss] = rss[rk] / 1024
                for (i = 1; i <= nr[rk]; i++) b[i] = rsec[rk, i]
                med[tool, t, r] = median(b, nr[rk])
            }
            ratio = ""
            if (tool != "nabla") {
                nq = 0; nq2 = 0
                for (r = 1; r <= maxr; r++) {
                    if ((tool, t, r) in med && ("nabla", t, r) in med) {
                        q[++nq] = med[tool, t, r] / med["nabla", t, r]
                        rk = tool SUBSEP t SUBSEP r; rk0 = "nabla" SUBSEP t SUBSEP r
                        q2[++nq2] = rss[rk] / rss[rk0]
                    }
                }
                if (nq) ratio = sprintf("%.2fx (%s), RSS %.1fx", median(q, nq), minmax(q, nq), median(q2, nq2))
            }
            printf "%-8s %7d %10.3f (%s) %9.4f %9.0f   %s\n", tool, t, m, mm, median(acs, na), median(rs, nrss), ratio
        }
    }
}' "$rows"
