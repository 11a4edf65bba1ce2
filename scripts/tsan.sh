#!/usr/bin/env bash
# The programs that use threads, under ThreadSanitizer (clang): no report allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang libclang-rt-14-dev
cmake --preset tsan >/dev/null
cmake --build --preset tsan --target test_threads test_rng test_engine test_alloc test_error \
    test_scope test_data test_parallel test_steady_state >/dev/null
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" OPENBLAS_NUM_THREADS=1
for t in test_threads test_rng test_engine test_alloc test_error test_scope test_data test_parallel \
    test_steady_state; do
    build/tsan/tests/$t >/dev/null 2>build/tsan/$t.log || { cat build/tsan/$t.log; exit 1; }
    echo "tsan: $t: clean"
done
