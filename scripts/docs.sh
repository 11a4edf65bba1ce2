#!/usr/bin/env bash
# The API reference: Doxygen HTML of the public headers, every warning an error (the `docs`
# target of the test preset), in build/test/docs/html.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset test >/dev/null
cmake --build --preset test --target docs
echo "scripts/docs.sh: API reference in build/test/docs/html/index.html"
