#!/usr/bin/env bash
# The fleet: one central `lifeboat serve` (SQLite catalog) and N simulated site agents that
# speak the agent protocol (benches/fleet.rs): each enrolls, checks in once a minute, keeps a
# long poll for its site's jobs open, and pushes signed, chained evidence for 3 sources on
# 90/48 at a 10x clock; the benchmark asks for a backup now of a random site twice a second.
# Prints push, check-in and trigger-delivery latency (p50/p99), the centre's CPU and peak RSS,
# and the catalog's growth per 10,000 records. The load generator runs on the same 2 cores.
#
# usage: benches/fleet.sh [AGENTS...]   (default: 1000 5000)
#        FLEET_SECONDS=240 benches/fleet.sh 1000   the measured window (default 240 s)
#        FLEET_PROFILE=FILE benches/fleet.sh 5000  also 30 s of the centre under perf record -g
#        FLEET_ENGINE=postgres benches/fleet.sh 1000 the catalog in a PostgreSQL server of its
#                                                  own on 127.0.0.1 (stopped at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FLEET_ENGINE:-sqlite}" = postgres ]; then
  pg=$(mktemp -d)
  chmod 777 "$pg"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  bin=/usr/local/bin; [ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin
  as_pg "$bin/initdb" -D "$pg/data" -A trust -U postgres >/dev/null
  as_pg "$bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
    -o "-k $pg -p $port -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  trap 'as_pg "$bin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null; rm -rf "$pg"' EXIT
  export FLEET_PG_BASE="postgres://postgres@127.0.0.1:$port"
fi
counts=("$@")
((${#counts[@]})) || counts=(1000 5000)
window=${FLEET_SECONDS:-240}
# A connection or three per agent, on both ends.
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked --quiet
cargo bench --locked --bench fleet --no-run --quiet 2>/dev/null
for n in "${counts[@]}"; do
  echo "== $n agents (${FLEET_ENGINE:-sqlite} catalog)"
  if [ -n "${FLEET_PG_BASE:-}" ]; then
    psql -X -q "$FLEET_PG_BASE/postgres" -c "DROP DATABASE IF EXISTS fleet" -c "CREATE DATABASE fleet"
    export FLEET_CATALOG="$FLEET_PG_BASE/fleet"
  fi
  cargo bench --locked --quiet --bench fleet -- "$PWD/target/release/lifeboat" "$n" "$window"
done
