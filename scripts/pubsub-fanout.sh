#!/usr/bin/env bash
# Redis CPU per PUBLISH against the number of subscribers on the channel, for the fan-out part
# of docs/benchmarks.md ("scale on paper"). Starts its own redis-server on PORT (default 7399),
# adds 0, 1, 4, 16 and 64 `redis-cli SUBSCRIBE` clients in turn, and runs one bounded
# redis-benchmark of PUBLISH (100,000 messages of 120 bytes, -c 50 -P 16) at each step. Redis's
# own CPU (INFO cpu, before and after) divided by the messages is the cost per PUBLISH.
# usage: scripts/pubsub-fanout.sh [PORT]
set -u
port=${1:-7399}
dir=$(mktemp -d)
trap 'redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1; rm -rf "$dir"' EXIT
redis-server --port "$port" --save "" --appendonly no --dir "$dir" --daemonize yes --logfile "$dir/log" >/dev/null
for _ in $(seq 1 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
payload=$(head -c 120 /dev/zero | tr '\0' 'x')
messages=100000
cpu() { redis-cli -p "$port" INFO cpu | awk -F: '/used_cpu_sys:|used_cpu_user:/{s+=$2} END{print s}'; }
for subscribers in 0 1 4 16 64; do
    pids=()
    for _ in $(seq 1 "$subscribers"); do
        redis-cli -p "$port" SUBSCRIBE bench:fanout >/dev/null &
        pids+=($!)
    done
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$port" PUBSUB NUMSUB bench:fanout | tail -1)" = "$subscribers" ] && break
        sleep 0.05
    done
    before=$(cpu)
    rate=$(redis-benchmark -p "$port" -n "$messages" -c 50 -P 16 -q PUBLISH bench:fanout "$payload" 2>/dev/null |
        tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
    after=$(cpu)
    still=$(redis-cli -p "$port" PUBSUB NUMSUB bench:fanout | tail -1)
    printf "subscribers=%d still_subscribed=%s publish_per_s=%s redis_cpu_us_per_publish=%.2f\n" \
        "$subscribers" "$still" "$rate" "$(awk -v a="$after" -v b="$before" -v n="$messages" 'BEGIN{print (a - b) * 1000000 / n}')"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
done
