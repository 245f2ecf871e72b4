#!/usr/bin/env bash
# A full chaos run on a release build: five nodes, every fault kind, two minutes of workload.
# Extra arguments go to `concord chaos` (e.g. --seed 7, --duration 5m, --faults redis-kill,flushall).
# Exit status is the harness's: 0 contract held, 1 contract broken, 2 the harness could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "chaos: building (release)"
swift build -c release --product concord

bin="$(swift build -c release --show-bin-path)/concord"
echo "chaos: $bin chaos --nodes 5 --duration 120s --faults all $*"
exec "$bin" chaos --nodes 5 --duration 120s --faults all "$@"
