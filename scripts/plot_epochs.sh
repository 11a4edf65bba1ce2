#!/usr/bin/env bash
# Seconds per epoch of the main job, nabla against PyTorch (and libtorch when the CSV has it),
# at each thread count: bars at the median over every epoch of every round, whiskers at the
# lowest and highest epoch. Reads the CSV of scripts/bench_vs_pytorch.sh --out.
#   scripts/plot_epochs.sh epochs.csv [out.png]          (default docs/images/train_epochs.png)
set -euo pipefail
cd "$(dirname "$0")/.."
csv=${1:?usage: scripts/plot_epochs.sh epochs.csv [out.png]}
png=${2:-docs/images/train_epochs.png}
command -v gnuplot >/dev/null || { echo "plot_epochs.sh: gnuplot is needed (apt-get install gnuplot-nox)" >&2; exit 1; }
dat=$(mktemp)
trap 'rm -f "$dat"' EXIT
# one row per thread count: label, then median, min, max of each tool
awk -F, 'NR > 1 {
    k = $1 SUBSEP $2; n[k]++; v[k, n[k]] = $5; thr[$2] = 1; tools[$1] = 1
}
function med(k,   i, j, t, c) {
    c = n[k]
    for (i = 1; i <= c; i++) a[i] = v[k, i]
    for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    lo = a[1]; hi = a[c]
    return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}
END {
    split("nabla pytorch libtorch", T, " ")
    for (t = 1; t <= 64; t++) {
        if (!(t in thr)) continue
        line = sprintf("\"%d thread%s\"", t, t > 1 ? "s" : "")
        for (i = 1; i <= 3; i++) {
            k = T[i] SUBSEP t
            if (n[k]) { m = med(k); line = line sprintf(" %.4f %.4f %.4f", m, lo, hi) }
            else line = line " NaN NaN NaN"
        }
        print line
    }
}' "$csv" >"$dat"
libtorch=$(awk -F, 'NR > 1 && $1 == "libtorch" {print "yes"; exit}' "$csv")
plot="plot '$dat' using 2:3:4:xtic(1) title 'nabla' lc rgb '#1f77b4', \
      '' using 5:6:7 title 'PyTorch 1.13 (Python)' lc rgb '#ff7f0e'"
[ -n "$libtorch" ] && plot="$plot, '' using 8:9:10 title 'libtorch 1.13 (C++)' lc rgb '#2ca02c'"
gnuplot <<EOF
set terminal pngcairo size 800,480 font "DejaVu Sans,11"
set output '$png'
set title "Main job: 784-256-128-10 MLP, Fashion-MNIST, Adam, batch 128 — seconds per epoch"
set ylabel "seconds per epoch (median, min-max)"
set yrange [0:*]
set style data histogram
set style histogram errorbars gap 2 lw 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside bottom center horizontal
set grid ytics
$plot
EOF
echo "plot_epochs.sh: wrote $png"
