#!/usr/bin/env bash
# Build the fuzz targets with clang's libFuzzer under ASan+UBSan, replay each target's corpus
# and regression inputs, then fuzz each target for SECONDS (default 60), from the random seed
# FUZZ_SEED (default 1, so that a run is the same run on every machine; 0: a new seed each time).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (targets: safetensors, idx, graph; default all)
# New inputs go to build/fuzz/work/<target>/ (the committed seeds stay as they are); a crash
# (or an input that runs over 10 s: a hang) is saved under build/fuzz/artifacts/<target>/: fix
# it, then commit the input to tests/fuzz/regressions/<target>/ so that ctest replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
scripts/deps.sh clang libclang-rt-14-dev
build=build/fuzz
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 \
    -DNB_FUZZ=ON -DNB_SANITIZE="address;undefined" -DNB_BUILD_EXAMPLES=OFF -DNB_BUILD_BENCH=OFF \
    >/dev/null
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do t=$(basename "$src" .c); targets+=("${t#fuzz_}"); done
fi
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >"$build/build.log" 2>&1 ||
    { cat "$build/build.log"; exit 1; }
status=0
for t in "${targets[@]}"; do
    bin="$build/tests/fuzz/fuzz_$t"
    seeds=()
    for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do [ -d "$d" ] && seeds+=("$d"); done
    echo "fuzz.sh: $t: replaying ${seeds[*]}"
    "$bin" -runs=0 "${seeds[@]}" 2>"$build/replay-$t.log" || { status=1; cat "$build/replay-$t.log"; continue; }
    work="$build/work/$t" artifacts="$build/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
    echo "fuzz.sh: $t: fuzzing for $seconds s"
    if "$bin" "${dict[@]}" -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >"$build/fuzz-$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$t.log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$build/fuzz-$t.log")
        echo "fuzz.sh: $t: $runs executions, $rate per second, no crash"
    else
        status=1
        tail -n 40 "$build/fuzz-$t.log"
        echo "fuzz.sh: $t: FAILED; the input is in $artifacts/"
    fi
done
exit $status
