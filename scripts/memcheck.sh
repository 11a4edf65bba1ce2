#!/usr/bin/env bash
# Every test program under valgrind memcheck: no errors, no leaks. They run from the memcheck
# preset, built without the per-thread block cache, so a use after free reaches valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset memcheck >/dev/null
cmake --build --preset memcheck >/dev/null
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
check() {
    local t=$1 out=$2/$(basename "$1")
    if valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect "$t" >"$out" 2>&1; then
        echo "memcheck: $(basename "$t"): clean"
    else
        echo "memcheck: $(basename "$t"): FAILED"; cat "$out"; return 1
    fi
}
export -f check
ls build/memcheck/tests/test_* | xargs -P "$(nproc)" -I{} bash -c 'check {} '"$log"
