#!/usr/bin/env bash
# Run every test executable of the test preset under valgrind memcheck: no errors, no leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -d build/test ] || cmake --preset test >/dev/null
cmake --build --preset test >/dev/null
status=0
for t in build/test/tests/test_*; do
    [ -x "$t" ] || continue
    if valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        "$t" >/tmp/memcheck.$$ 2>&1; then
        echo "memcheck: $(basename "$t"): clean"
    else
        echo "memcheck: $(basename "$t"): FAILED"; cat /tmp/memcheck.$$; status=1
    fi
done
rm -f /tmp/memcheck.$$
exit $status
