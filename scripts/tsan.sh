#!/usr/bin/env bash
# The programs that use threads, under ThreadSanitizer (clang, then gcc): no report allowed.
# The clang preset builds every target, so that the whole tree also compiles under clang's
# warnings with -Werror (the other presets use gcc).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang libclang-rt-14-dev
tests=(test_threads test_rng test_engine test_alloc test_error test_scope test_data test_parallel
    test_steady_state)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" OPENBLAS_NUM_THREADS=1
for preset in tsan tsan-gcc; do
    cmake --preset "$preset" >/dev/null
    if [ "$preset" = tsan ]; then
        cmake --build --preset "$preset" >/dev/null
    else
        cmake --build --preset "$preset" --target "${tests[@]}" >/dev/null
    fi
    for t in "${tests[@]}"; do
        build/$preset/tests/$t >/dev/null 2>build/$preset/$t.log || {
            cat build/$preset/$t.log
            exit 1
        }
        echo "$preset: $t: clean"
    done
done
