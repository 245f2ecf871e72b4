#!/usr/bin/env bash
# Installs the system packages Concord needs (hiredis headers, redis-server, redis-tools,
# redis-sentinel, memcached, openssl for the certificates the TLS tests generate, and the
# references and clients the tests and benchmarks use).
# Idempotent: does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail

need=()
dpkg -s libhiredis-dev >/dev/null 2>&1 || need+=(libhiredis-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
# Memcached as L2: its tests, chaos pass and bench start their own memcached on free ports.
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || need+=(memcached)
# The memcached bench builds its reference client with the system C compiler.
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
# promtool checks deploy/prometheus/alerts.yaml (scripts/check-deploy.sh).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Real Redis clients for the RESP front end's tests (redis-cli and redis-benchmark come with
# redis-tools): redis-py for the system python.
dpkg -s python3-redis >/dev/null 2>&1 || need+=(python3-redis)
# References for `concord bench --suite node`: nginx serving the same bytes, driven by wrk.
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# The node TLS tests make their certificates with openssl at test time.
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# A packaged redis-server or memcached may have been started by the package's own service scripts;
# tests start their own servers on free ports, so a system one is harmless but not needed.
command -v swift >/dev/null 2>&1 || { echo "setup: swift is not on PATH (expected Swift 6.x)" >&2; exit 1; }
echo "setup: ok ($(redis-server --version | awk '{print $3}'), hiredis $(pkg-config --modversion hiredis), $(/usr/bin/memcached --version 2>/dev/null || memcached --version))"
