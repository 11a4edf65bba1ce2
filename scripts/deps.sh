#!/usr/bin/env bash
# Install the Debian packages nabla needs that are missing (as root, or through sudo).
# Usage: scripts/deps.sh [extra packages...]
set -euo pipefail
# dataset-fashion-mnist: the main job and the trainer's parity test; doxygen: the API
# reference; libgfortran-12-dev: libopenblas.a's Fortran runtime, for the fully static link
# of the pkg-config --static consumer test; libopenmpi-dev, openmpi-bin: libnabla_dist and
# its mpirun tests; gnuplot-nox: scripts/plot_training.sh.
packages=(build-essential cmake pkgconf libopenblas-dev libcmocka-dev zlib1g-dev libjansson-dev graphviz valgrind
          doxygen libgfortran-12-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin gnuplot-nox "$@")
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "scripts/deps.sh: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
