#!/usr/bin/env bash
# Checks that a node's memory stays bounded in bytes: starts redis-server and one `concord node`
# with --memory-max-bytes and --pending-max-bytes, sends a long storm of large distinct PUTs
# (and background PUTs, which queue), samples the node's RSS from /proc, and fails when the
# peak exceeds the stated bound:
#
#   memory-max-bytes + pending-max-bytes + RSS at start + slack (allocator and buffers in flight)
#
# Not a test (it measures memory, and takes a while); run it by hand or before a release.
# Usage: scripts/memory-check.sh [--binary PATH] [--puts N] [--value-bytes B]
#                                [--memory-max-mib M] [--pending-max-mib P] [--slack-mib S]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
puts=4000
value_bytes=$((1024 * 1024))
memory_mib=64
pending_mib=16
slack_mib=64
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --puts) puts="$2"; shift 2 ;;
        --value-bytes) value_bytes="$2"; shift 2 ;;
        --memory-max-mib) memory_mib="$2"; shift 2 ;;
        --pending-max-mib) pending_mib="$2"; shift 2 ;;
        --slack-mib) slack_mib="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    swift build -c release --product concord
    binary="$(swift build -c release --show-bin-path)/concord"
fi

work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port="$(free_port)"
# Redis keeps at most 256 MB of the storm; what it evicts does not matter to the node's memory.
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --maxmemory 256mb \
    --maxmemory-policy allkeys-lru --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
node_port="$(free_port)"
"$binary" node --id memcheck --port "$node_port" --redis "redis://127.0.0.1:$redis_port" \
    --memory-max-bytes "${memory_mib}MiB" --pending-max-bytes "${pending_mib}MiB" \
    --max-value-bytes "$value_bytes" --log-level warning > "$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")

python3 - "$node_port" "$node_pid" "$puts" "$value_bytes" "$memory_mib" "$pending_mib" "$slack_mib" <<'PY'
import http.client, json, os, sys, time
port, pid, puts, size, memory_mib, pending_mib, slack_mib = (int(a) for a in sys.argv[1:])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
deadline = time.time() + 60
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", "/health"); c.getresponse().read(); break
    except OSError:
        if time.time() > deadline: sys.exit("node did not start")
        time.sleep(0.1)
baseline = rss()
value = os.urandom(size)
peak, codes, started = baseline, {}, time.time()
for i in range(puts):
    query = "?background=true" if i % 4 == 3 else ""
    c.request("PUT", f"/v1/cache/storm-{i}{query}", body=value, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse(); r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
    if i % 50 == 0:
        peak = max(peak, rss())
peak = max(peak, rss())
c.request("GET", "/v1/stats"); stats = json.loads(c.getresponse().read())
mib = 1024 * 1024
bound = (memory_mib + pending_mib + slack_mib) * mib + baseline
print(f"PUTs: {puts} x {size} B in {time.time() - started:.1f} s, answers {codes}")
print(f"L1: {stats['memory']['entries']} entries, {stats['memory']['evictions']} evictions; queue: {stats['autoRecovery']}")
print(f"RSS at start {baseline / mib:.1f} MiB, peak {peak / mib:.1f} MiB; bound = {memory_mib} (L1) + {pending_mib} (queue) "
      f"+ {baseline / mib:.1f} (start) + {slack_mib} (slack) = {bound / mib:.1f} MiB")
if peak > bound:
    sys.exit(f"FAIL: peak RSS {peak / mib:.1f} MiB exceeds {bound / mib:.1f} MiB")
print("OK: peak RSS within the bound")
PY
