#!/usr/bin/env bash
# Writes `concord bench --html` for a quick run and screenshots it in headless Chromium, so the
# report is checked the way a person sees it. Usage: scripts/bench-report.sh [OUT_DIR] [SUITES]
# (defaults .build/bench-report and l1,hitrate,stampede). Needs a built concord and chromium
# (apt-get install chromium). Prints the PNG's path.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-.build/bench-report}
suites=${2:-l1,hitrate,stampede}
concord=${CONCORD:-.build/debug/concord}
browser=$(command -v chromium || command -v chromium-browser || command -v chromium-headless-shell || true)
if [ -z "$browser" ]; then
    echo "bench-report: chromium not found (apt-get install chromium)" >&2
    exit 1
fi
mkdir -p "$out"
"$concord" bench --quick --suite "$suites" --html "$out/report.html" --json "$out/report.json" >"$out/table.txt"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1200,2400 --screenshot="$PWD/$out/report.png" "file://$PWD/$out/report.html" >/dev/null 2>&1
test -s "$out/report.png"
# The page must have rendered its plots: one <svg> per suite at least.
plots=$(grep -o "<svg" "$out/report.html" | wc -l)
suite_count=$(echo "$suites" | tr ',' '\n' | wc -l)
if [ "$plots" -lt "$suite_count" ]; then
    echo "bench-report: $plots plots for $suite_count suites" >&2
    exit 1
fi
echo "$out/report.png"
