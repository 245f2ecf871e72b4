#!/usr/bin/env bash
# Builds the DocC documentation of Concord and ConcordRedis (swift-docc-plugin) into
# .build/docs/, and fails on any DocC warning: a broken symbol link or a missing article is a
# defect, like a failing test. CI runs it from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

out=.build/docs
log=.build/docs-output.txt
mkdir -p "$out"
echo "docs: generating documentation for Concord and ConcordRedis"
set +e
swift package --allow-writing-to-directory "$out" generate-documentation \
    --target Concord --target ConcordRedis \
    --output-path "$out" --transform-for-static-hosting >"$log" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "docs: FAILED: generate-documentation exited with $status" >&2
    exit 1
fi
# DocC's own diagnostics, not the build's: they name a .docc file or a symbol. SwiftPM's notes
# on a package's stray files (swift-distributed-tracing ships one) are not DocC's.
warnings=$(grep -E "^(warning|error):|\.docc/.*(warning|error):|: warning: .*(doc|symbol|link|Topic|article)" "$log" \
    | grep -v "prohibited flag" | grep -v "which are unhandled; explicitly declare them as resources" || true)
if [ -n "$warnings" ]; then
    echo "$warnings" >&2
    echo "docs: FAILED: DocC reported warnings (full output in $log)" >&2
    exit 1
fi
echo "docs: ok ($out)"
