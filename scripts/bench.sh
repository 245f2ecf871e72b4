#!/usr/bin/env bash
# Runs `concord bench` on a release build: every suite by default, results also in
# bench-results.json. Extra arguments go to `concord bench` (e.g. --quick, --suite l1,l2,
# --json other.json); a --suite or --json given here replaces the default.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
swift build -c release --product concord

args=("$@")
has() { for arg in "${args[@]}"; do case "$arg" in "$1"|"$1"=*) return 0 ;; esac; done; return 1; }
defaults=()
has --suite || defaults+=(--suite all)
has --json || defaults+=(--json bench-results.json)

exec "$(swift build -c release --show-bin-path)/concord" bench "${defaults[@]}" "${args[@]}"
