#!/usr/bin/env bash
# Runs a local Concord cluster (a redis-server and 3 nodes) and shows an invalidation crossing
# it: a key set through n1 is read through n2 and n3, changed through n2, and n1 and n3 are
# polled until they serve the new version; the propagation time is printed.
#
#   scripts/cluster.sh               demo, then keep the cluster running until Ctrl-C
#   scripts/cluster.sh --demo-only   demo, then stop everything and exit 0
#   options: --nodes N (default 3, at least 3), --base-port P (default 7001), --skip-build,
#            --debug (build and run the debug binary instead of the release one),
#            --topology sentinel (a master, a replica and three Sentinels; the demo then also
#            fails over with SENTINEL FAILOVER, then SIGKILLs the master, and shows an
#            invalidation crossing each failover),
#            --topology cluster (a Redis Cluster of three primaries and three replicas; the demo
#            then migrates the cache's slot to another primary and shows an invalidation
#            crossing while the slot migrates, and another after it moved)
#
# Every process it starts is stopped on every exit path (EXIT/INT/TERM traps).
set -euo pipefail
cd "$(dirname "$0")/.."

demo_only=0
skip_build=0
nodes=3
base_port=7001
topology=standalone
configuration=release
while [ $# -gt 0 ]; do
    case "$1" in
        --demo-only) demo_only=1 ;;
        --skip-build) skip_build=1 ;;
        --nodes) nodes="$2"; shift ;;
        --base-port) base_port="$2"; shift ;;
        --topology) topology="$2"; shift ;;
        --debug) configuration=debug ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "cluster.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$nodes" -lt 3 ]; then echo "cluster.sh: the demo needs at least 3 nodes" >&2; exit 2; fi
case "$topology" in standalone|sentinel|cluster) ;; *) echo "cluster.sh: --topology must be standalone, sentinel or cluster" >&2; exit 2 ;; esac

bash scripts/setup.sh

if [ "$skip_build" = 0 ]; then
    echo "cluster: building concord ($configuration; the first build takes several minutes)"
    swift build -c "$configuration" --product concord
fi
bin="$(swift build -c "$configuration" --show-bin-path)/concord"
[ -x "$bin" ] || { echo "cluster.sh: $bin not found; run without --skip-build" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/concord-cluster.XXXXXX")"
log="$work/cluster.log"
cluster_pid=""
tail_pid=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
    if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
        echo "cluster: stopping"
        # concord cluster stops its nodes and its redis-server on SIGTERM.
        kill -TERM "$cluster_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$cluster_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$cluster_pid" 2>/dev/null; then
            echo "cluster: still running after 15s; killing" >&2
            kill -KILL "$cluster_pid" 2>/dev/null || true
        fi
        wait "$cluster_pid" 2>/dev/null || true
    fi
    if [ "$status" != 0 ] && [ -s "$log" ]; then
        echo "cluster: failed (status $status); last lines of the cluster's output:" >&2
        tail -n 30 "$log" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in $(seq "$base_port" $((base_port + nodes - 1))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "cluster.sh: port $port is in use; pass --base-port" >&2
        exit 1
    fi
done

echo "cluster: starting Redis ($topology) and $nodes nodes on ports $base_port-$((base_port + nodes - 1))"
"$bin" cluster --nodes "$nodes" --base-port "$base_port" --topology "$topology" >"$log" 2>&1 &
cluster_pid=$!

# The cluster prints its table once every node listens.
for _ in $(seq 1 600); do
    grep -q "Ctrl-C stops the cluster" "$log" && break
    kill -0 "$cluster_pid" 2>/dev/null || { echo "cluster.sh: concord cluster exited during start" >&2; exit 1; }
    sleep 0.1
done
grep -q "Ctrl-C stops the cluster" "$log" || { echo "cluster.sh: the cluster did not start within 60s" >&2; exit 1; }
grep -E "^(redis |redis-|sentinel|cluster |NODE |n[0-9]+ )" "$log"

n1="http://127.0.0.1:$base_port"
n2="http://127.0.0.1:$((base_port + 1))"
n3="http://127.0.0.1:$((base_port + 2))"
# Ready means the node's backplane is subscribed and caught up (GET /ready is 200). Asked
# over bash's /dev/tcp, so the script needs no HTTP client.
is_ready() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 2 status_line <&3 || exit 1
        case "$status_line" in *" 200 "*) exit 0 ;; *) exit 1 ;; esac
    ) 2>/dev/null
}
for port in $(seq "$base_port" $((base_port + nodes - 1))); do
    for _ in $(seq 1 100); do
        is_ready "$port" && break
        sleep 0.1
    done
    is_ready "$port" || { echo "cluster.sh: the node on port $port is not ready after 10s" >&2; exit 1; }
done

key="demo:greeting:$$"
step() { printf '\n== %s\n' "$*"; }

step "1. set $key through n1 ($n1)"
"$bin" set "$key" "hello from n1" --node "$n1"

step "2. read it through n2 and n3 (source, version and staleness on the first line)"
"$bin" get "$key" --node "$n2" 2>&1
echo
"$bin" get "$key" --node "$n3" 2>&1
echo
step "   and again through n2: now an L1 hit"
"$bin" get "$key" --node "$n2" 2>&1
echo

step "3. change it through n2; n1 and n3 are polled until they serve the new version"
"$bin" set "$key" "changed on n2" --node "$n2" --watch "$n1" --watch "$n3" --watch-timeout 5s

step "4. read it through n1 and n3"
"$bin" get "$key" --node "$n1" 2>&1
echo
"$bin" get "$key" --node "$n3" 2>&1
echo

if [ "$topology" = sentinel ]; then
    sentinel_port="$(grep -m1 '^sentinel-port ' "$log" | awk '{print $2}')"
    master_port() { redis-cli -p "$sentinel_port" SENTINEL get-master-addr-by-name mymaster | tail -n 1; }
    wait_for_new_master() {
        local old="$1" port=""
        for _ in $(seq 1 300); do
            port="$(master_port 2>/dev/null || true)"
            if [ -n "$port" ] && [ "$port" != "$old" ] && [ "$(redis-cli -p "$port" ROLE 2>/dev/null | head -n 1)" = master ]; then
                echo "$port"; return 0
            fi
            sleep 0.1
        done
        echo "cluster.sh: no new master after 30s" >&2; return 1
    }

    # A Sentinel promotes only a replica it is linked to and has INFO from (NOGOODSLAVE before
    # that), and the old master rejoins as such a replica a few seconds after a failover.
    promotable_replicas() {
        redis-cli -p "$sentinel_port" SENTINEL replicas mymaster 2>/dev/null \
            | awk 'previous == "runid" { runid = $0 }
                   previous == "flags" && $0 == "slave" && runid != "" { count++ }
                   { previous = $0 } END { print count + 0 }'
    }
    wait_for_promotable_replica() {
        for _ in $(seq 1 300); do
            [ "$(promotable_replicas)" -ge 1 ] && return 0
            sleep 0.1
        done
        echo "cluster.sh: the Sentinel had no replica it could promote after 30s" >&2; return 1
    }

    old="$(master_port)"
    step "5. SENTINEL FAILOVER (master on port $old)"
    wait_for_promotable_replica
    for _ in $(seq 1 100); do
        reply="$(redis-cli -p "$sentinel_port" SENTINEL FAILOVER mymaster 2>&1 || true)"
        [ "$reply" = OK ] && break
        sleep 0.1
    done
    echo "$reply"
    [ "$reply" = OK ] || { echo "cluster.sh: SENTINEL FAILOVER was refused: $reply" >&2; exit 1; }
    new="$(wait_for_new_master "$old")"
    echo "the Sentinels promoted port $new"
    step "   change the key through n3; n1 and n2 follow it across the failover"
    "$bin" set "$key" "changed on n3 after the failover" --node "$n3" --watch "$n1" --watch "$n2" --watch-timeout 15s

    old="$new"
    wait_for_promotable_replica
    pid="$(redis-cli -p "$old" INFO server | tr -d '\r' | awk -F: '/^process_id:/{print $2}')"
    step "6. SIGKILL the master (port $old, pid $pid)"
    kill -KILL "$pid"
    new="$(wait_for_new_master "$old")"
    echo "the Sentinels promoted port $new"
    step "   change the key through n1; n2 and n3 follow it across the crash"
    "$bin" set "$key" "changed on n1 after the master died" --node "$n1" --watch "$n2" --watch "$n3" --watch-timeout 15s
    step "   read it through n2"
    "$bin" get "$key" --node "$n2" 2>&1
    echo
fi

if [ "$topology" = cluster ]; then
    any_port="$(grep -m1 '^redis-primary ' "$log" | awk '{print $2}' | cut -d: -f2)"
    slot="$(redis-cli -p "$any_port" CLUSTER KEYSLOT 'concord:{default}')"
    # "id port" of the live primary serving the slot, and of another live primary.
    owner() {
        redis-cli -p "$any_port" CLUSTER NODES | awk -v s="$slot" '
            $3 ~ /master/ && $3 !~ /fail/ {
                for (i = 9; i <= NF; i++) {
                    if ($i ~ /^\[/) continue
                    n = split($i, r, "-"); if (n == 1) r[2] = r[1]
                    if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { split($2, a, "[:@]"); print $1, a[2] }
                }
            }'
    }
    other_primary() {
        redis-cli -p "$any_port" CLUSTER NODES | awk -v id="$1" '
            $3 ~ /master/ && $3 !~ /fail/ && $1 != id && NF > 8 { split($2, a, "[:@]"); print $1, a[2]; exit }'
    }
    read -r src_id src_port < <(owner)
    read -r dst_id dst_port < <(other_primary "$src_id")
    step "5. migrate the cache's slot $slot (concord:{default}) from port $src_port to port $dst_port while an invalidation crosses"
    redis-cli -p "$dst_port" CLUSTER SETSLOT "$slot" IMPORTING "$src_id"
    redis-cli -p "$src_port" CLUSTER SETSLOT "$slot" MIGRATING "$dst_id"
    echo "   the slot is MIGRATING: keys already moved answer ASK, the others still live on port $src_port"
    "$bin" set "$key" "changed on n3 while the slot migrates" --node "$n3" --watch "$n1" --watch "$n2" --watch-timeout 15s &
    set_pid=$!
    moved=0
    for _ in $(seq 1 1000); do
        keys="$(redis-cli -p "$src_port" CLUSTER GETKEYSINSLOT "$slot" 100)"
        [ -n "$keys" ] || break
        # shellcheck disable=SC2086 # one word per key; the cache's keys have no spaces
        redis-cli -p "$src_port" MIGRATE 127.0.0.1 "$dst_port" "" 0 5000 REPLACE KEYS $keys >/dev/null
        moved=$((moved + $(printf '%s\n' "$keys" | wc -l)))
    done
    redis-cli -p "$dst_port" CLUSTER SETSLOT "$slot" NODE "$dst_id"
    redis-cli -p "$src_port" CLUSTER SETSLOT "$slot" NODE "$dst_id"
    echo "   moved $moved keys; port $dst_port owns slot $slot (the subscribers got sunsubscribe, found the new owner and replayed the log)"
    wait "$set_pid"
    step "   change the key through n1 after the migration; n2 and n3 follow it from the new shard"
    "$bin" set "$key" "changed on n1 after the migration" --node "$n1" --watch "$n2" --watch "$n3" --watch-timeout 15s
    step "   read it through n2"
    "$bin" get "$key" --node "$n2" 2>&1
    echo
fi

if [ "$demo_only" = 1 ]; then
    step "demo done"
    exit 0
fi

step "the cluster keeps running; its logs follow. Ctrl-C stops everything."
echo "try: $bin get $key --node $n3"
tail -n 0 -f "$log" &
tail_pid=$!
wait "$cluster_pid"
