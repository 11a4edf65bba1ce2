#!/usr/bin/env bash
# The tree is formatted with the repository's .clang-format: every C and C++ source under
# src/, include/, tests/ (but generated reference data), bench/ and examples/. Lists the
# files that are not and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang-format
mapfile -t files < <(git ls-files 'src/*.[ch]' 'include/*.h' 'tests/*.[ch]' 'tests/*.cpp' \
                                  'bench/*.[ch]' 'bench/*.cpp' 'examples/*.[ch]' |
                     grep -v '^tests/data/')
bad=0
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "$f: not formatted"; bad=1; }
done
[ $bad -eq 0 ] && echo "check-format: ${#files[@]} files formatted"
exit $bad
