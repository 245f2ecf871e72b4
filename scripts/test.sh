#!/usr/bin/env bash
# What CI runs: install system packages, build, run every test.
# The last lines printed are swift test's own summary.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "test: building (debug, with tests)"
swift build --build-tests

echo "test: running swift test"
set +e
swift test 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
set -e
exit "$status"
