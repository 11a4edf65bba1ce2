#!/usr/bin/env bash
# The main job: build nabla (Release), run the notebook in C, then train an MLP on
# Fashion-MNIST from disk (nabla-train with its defaults: 784-256-128-10, Adam, 15 epochs).
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
echo
echo "== Training on Fashion-MNIST: nabla-train --save $out/fashion-mlp.safetensors =="
build/demo/examples/nabla-train --save "$out/fashion-mlp.safetensors"
