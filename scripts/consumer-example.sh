#!/usr/bin/env bash
# Builds Examples/ProductCatalog, a package that depends on Concord as an outside package does
# (by its products, public API only), and runs it as separate processes against one
# redis-server on a free port:
#   1. without run(), a set fails with notRunning, and a second process finds nothing in Redis;
#   2. one process writes, a second reads the write from Redis and keeps following the key;
#      the first writes again, and the change reaches the second through the backplane.
# Every wait is bounded. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "consumer example: building Examples/ProductCatalog"
swift build --package-path Examples/ProductCatalog
bin=Examples/ProductCatalog/.build/debug/ProductCatalog
work=$(mktemp -d)
redis_pid=""
follower_pid=""
cleanup() {
    [ -n "$follower_pid" ] && kill "$follower_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A free port: try a few random ones until a redis-server answers PING on one.
port=""
for _ in 1 2 3 4 5; do
    candidate=$(( 20000 + RANDOM % 40000 ))
    redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do
        if [ "$(redis-cli -p "$candidate" ping 2>/dev/null)" = "PONG" ]; then port=$candidate; break; fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && break
    kill "$redis_pid" 2>/dev/null || true
    redis_pid=""
done
if [ -z "$port" ]; then
    echo "consumer example: FAILED: no redis-server could be started" >&2
    exit 1
fi
url="redis://127.0.0.1:$port"

echo "consumer example: without run(), a set fails and nothing reaches Redis"
"$bin" set-without-run "$url"
"$bin" absent "$url"

echo "consumer example: a write in one process is read, and followed, by another"
"$bin" set "$url" "desk lamp"
"$bin" follow "$url" "desk lamp" "floor lamp" >"$work/follow.out" 2>&1 &
follower_pid=$!
for _ in $(seq 300); do
    grep -q '^following' "$work/follow.out" && break
    kill -0 "$follower_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q '^following' "$work/follow.out"; then
    cat "$work/follow.out" >&2
    echo "consumer example: FAILED: the second process did not read the first one's write" >&2
    exit 1
fi
"$bin" set "$url" "floor lamp"
set +e
wait "$follower_pid"
status=$?
set -e
follower_pid=""
cat "$work/follow.out"
if [ "$status" -ne 0 ]; then
    echo "consumer example: FAILED: the change did not reach the second process (exit $status)" >&2
    exit 1
fi
echo "consumer example: passed"
