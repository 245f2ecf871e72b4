#!/usr/bin/env bash
# Checks the operations files in deploy/: the Prometheus alert rules parse and their unit
# tests pass (promtool), and every Grafana panel's query parses as PromQL. Needs promtool
# (Debian package `prometheus`, installed by setup.sh). Which metric names the expressions use
# is checked against a real node's /metrics by the test suite (DeployRulesTests).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-deploy: promtool not found (apt-get install prometheus)" >&2
    exit 1
fi

promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)

# Each panel query becomes a recording rule, so promtool parses it; Grafana's variables are
# replaced by what they stand for.
rules=$(mktemp --suffix=.yaml)
trap 'rm -f "$rules"' EXIT
python3 - "$rules" <<'PY'
import json, sys
dashboard = json.load(open("deploy/grafana/concord.json"))
lines = ["groups:", "  - name: grafana-panels", "    rules:"]
count = 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = (target["expr"].replace("$__rate_interval", "5m")
                .replace("$cache", ".*").replace("$node", ".*"))
        count += 1
        lines.append(f"      - record: concord:panel_{count}")
        lines.append(f"        expr: {json.dumps(expr)}")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print(f"check-deploy: {count} panel queries from deploy/grafana/concord.json")
PY
promtool check rules "$rules"
echo "check-deploy: ok"
