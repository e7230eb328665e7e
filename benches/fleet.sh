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
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
((${#counts[@]})) || counts=(1000 5000)
window=${FLEET_SECONDS:-240}
# A connection or three per agent, on both ends.
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked --quiet
cargo bench --locked --bench fleet --no-run --quiet 2>/dev/null
for n in "${counts[@]}"; do
  echo "== $n agents"
  cargo bench --locked --quiet --bench fleet -- "$PWD/target/release/lifeboat" "$n" "$window"
done
