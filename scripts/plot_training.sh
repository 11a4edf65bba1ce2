#!/bin/sh
# Draw the curves of nabla-train --json runs as one PNG: train and test loss per epoch on the
# left, test accuracy per epoch on the right, one colour per run.
#
#   build/demo/examples/nabla-train --seed 0 --json > seed0.json     # and seed1.json, ...
#   scripts/plot_training.sh docs/images/training_curves.png seed0.json seed1.json seed2.json
#
# A run is labelled by its file name without .json. Needs gnuplot (Debian: gnuplot-nox).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 OUT.png RUN.json..." >&2; exit 2; }
out=$1
shift
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per run: epoch train_loss test_loss test_accuracy, from the keys nabla-train
# writes, whatever their order.
i=0
for run; do
    i=$((i + 1))
    awk '
        function field(key,    m) {
            if (match($0, "\"" key "\": *[-0-9.eE+]+")) {
                m = substr($0, RSTART, RLENGTH); sub(/^[^:]*: */, "", m); return m
            }
            return "?"
        }
        /^\{/ { print field("epoch"), field("train_loss"), field("test_loss"), field("test_accuracy") }
    ' "$run" >"$tmp/run$i.dat"
    [ -s "$tmp/run$i.dat" ] || { echo "$0: $run: no epochs in it" >&2; exit 1; }
    basename "$run" .json >"$tmp/run$i.name"
done
n=$i

{
    echo "set terminal pngcairo size 1200,450 font 'sans,11'"
    echo "set output '$out'"
    echo "set multiplot layout 1,2"
    echo "set grid; set key top right; set xlabel 'epoch'; set ylabel 'cross-entropy'"
    echo "set title 'loss (solid: train, dashed: test)'"
    printf 'plot '
    i=1
    while [ $i -le $n ]; do
        name=$(cat "$tmp/run$i.name")
        printf "'%s' using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc %d dt 1 title '%s train', " \
            "$tmp/run$i.dat" "$i" "$name"
        printf "'%s' using 1:3 with linespoints lw 2 pt 5 ps 0.6 lc %d dt 2 title '%s test'" \
            "$tmp/run$i.dat" "$i" "$name"
        [ $i -lt $n ] && printf ', '
        i=$((i + 1))
    done
    echo
    echo "set key bottom right; set ylabel 'accuracy'; set title 'test accuracy'"
    echo "set offsets 0, 0, graph 0.05, graph 0.05"
    echo "set arrow from graph 0, first 0.885 to graph 1, first 0.885 nohead dt 3 lc rgb 'gray40'"
    printf 'plot '
    i=1
    while [ $i -le $n ]; do
        name=$(cat "$tmp/run$i.name")
        printf "'%s' using 1:4 with linespoints lw 2 pt 7 ps 0.6 lc %d title '%s'" \
            "$tmp/run$i.dat" "$i" "$name"
        [ $i -lt $n ] && printf ', '
        i=$((i + 1))
    done
    echo
    echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "$out: $n runs"
