#!/usr/bin/env bash
# The main job: build nabla (Release) and run the notebook in C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset demo >/dev/null
cmake --build --preset demo
out=build/demo/out
mkdir -p "$out"
echo
echo "== The notebook in C: nabla-seed --seed 0 (graph pictures in $out) =="
build/demo/examples/nabla-seed --seed 0 --graph-dir "$out"
