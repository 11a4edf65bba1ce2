#!/usr/bin/env bash
# Every test: configure (Debug, warnings as errors), build and run ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --workflow --preset test
