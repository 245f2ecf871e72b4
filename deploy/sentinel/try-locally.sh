#!/usr/bin/env bash
# Runs this directory's example on one machine: the configs here, rendered for 127.0.0.1 and
# free ports, with two redis-servers, three redis-sentinels and two concord nodes that use
# node.env's URL form. It writes a key, fails over with SENTINEL FAILOVER, writes again and
# checks that both nodes follow. Everything it starts is stopped on exit.
#
#   deploy/sentinel/try-locally.sh [path/to/concord]   (default: .build/debug/concord)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
concord="${1:-$here/../../.build/debug/concord}"
[ -x "$concord" ] || { echo "try-locally: $concord not found; build first (swift build)" >&2; exit 1; }
command -v redis-sentinel >/dev/null || { echo "try-locally: redis-sentinel missing (scripts/setup.sh)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/concord-sentinel.XXXXXX")"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ "$status" != 0 ]; then tail -n 5 "$work"/*.log >&2 || true; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

master=$(free_port); replica=$(free_port)
for name in master replica; do
    port=${!name}
    { echo "port $port"; echo "bind 127.0.0.1"; echo "save \"\""; echo "dir $work"; echo "logfile $work/$name.log"
      grep -v '^#' "$here/redis.conf" | grep -v '^$'
      [ "$name" = replica ] && echo "replicaof 127.0.0.1 $master"; } > "$work/$name.conf"
    redis-server "$work/$name.conf" & pids+=($!)
    wait_for redis-cli -p "$port" PING
done

sentinel_ports=()
for index in 1 2 3; do
    port=$(free_port); sentinel_ports+=("$port")
    sed -e "s/^port 26379/port $port/" -e "s/10.0.0.11 6379/127.0.0.1 $master/" \
        -e 's/down-after-milliseconds concord 5000/down-after-milliseconds concord 1000/' \
        -e 's/failover-timeout concord 60000/failover-timeout concord 5000/' "$here/sentinel.conf" > "$work/sentinel-$index.conf"
    { echo "bind 127.0.0.1"; echo "dir $work"; echo "logfile $work/sentinel-$index.log"; } >> "$work/sentinel-$index.conf"
    redis-sentinel "$work/sentinel-$index.conf" & pids+=($!)
    wait_for redis-cli -p "$port" PING
done
# The Sentinels find each other through the master within a few seconds.
wait_for sh -c "redis-cli -p ${sentinel_ports[0]} SENTINEL master concord | grep -A1 -x num-other-sentinels | tail -n1 | grep -qx 2"

url="redis+sentinel://127.0.0.1:${sentinel_ports[0]},127.0.0.1:${sentinel_ports[1]},127.0.0.1:${sentinel_ports[2]}/concord"
echo "try-locally: CONCORD_REDIS=$url"
nodes=()
for id in n1 n2; do
    port=$(free_port); nodes+=("http://127.0.0.1:$port")
    CONCORD_REDIS="$url" CONCORD_CACHE_NAME=default "$concord" node --id "$id" --port "$port" > "$work/$id.log" 2>&1 & pids+=($!)
done
# Ready: the node's backplane is subscribed on the master and caught up (GET /ready is 200).
is_ready() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/${1##*:}" || exit 1
        printf 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 2 status_line <&3 || exit 1
        case "$status_line" in *" 200 "*) exit 0 ;; *) exit 1 ;; esac
    ) 2>/dev/null
}
for node in "${nodes[@]}"; do wait_for is_ready "$node" || { echo "try-locally: $node not ready" >&2; exit 1; }; done

"$concord" set try-locally:key before --node "${nodes[0]}" --watch "${nodes[1]}"
echo "try-locally: SENTINEL FAILOVER (master on port $master)"
# A Sentinel answers NOGOODSLAVE until it has linked to the replica and read its INFO (a tick
# after it learns of it), so ask until it says OK.
wait_for sh -c "redis-cli -p ${sentinel_ports[0]} SENTINEL FAILOVER concord | grep -qx OK" \
    || { echo "try-locally: SENTINEL FAILOVER was not accepted" >&2; exit 1; }
wait_for sh -c "redis-cli -p ${sentinel_ports[0]} SENTINEL get-master-addr-by-name concord | tail -n1 | grep -qx $replica"
wait_for sh -c "redis-cli -p $replica ROLE | head -n1 | grep -qx master"
echo "try-locally: port $replica is the master now"
"$concord" set try-locally:key after --node "${nodes[1]}" --watch "${nodes[0]}" --watch-timeout 15s
test "$("$concord" get try-locally:key --node "${nodes[0]}" --value-only)" = after
echo "try-locally: both nodes followed the failover"
