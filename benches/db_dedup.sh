#!/usr/bin/env bash
# How much each database dump adds to the repository, side by side with restic.
#
# A pgbench database (scale 20 by default: about 300 MB of dump) on a throw-away PostgreSQL
# cluster on 127.0.0.1 is dumped N times with pgbench transactions between the dumps. Lifeboat
# dumps it itself (`backup --postgres`: pg_dumpall --globals-only and pg_dump -Fc -Z0); restic
# gets the same pg_dump output on standard input (`pg_dump -Fc -Z0 | restic backup --stdin`).
# Both repositories are local folders; "added" is the growth of the folder (`du -sb`), so it
# counts everything a dump costs: data, indexes, trees, snapshots.
#
# "new chunks" is what deduplication left to store, before compression: lifeboat's
# `bytes_new`, restic's `data_added`.
#
# Budget (issue 5): each dump after the first adds at most 10% of its size, and no more than
# restic adds.
#
# usage: benches/db_dedup.sh [--scale N] [--dumps N] [--transactions N] [--clients N]
set -euo pipefail
cd "$(dirname "$0")/.."
scale=20 dumps=48 transactions=1000 clients=1
while (($#)); do
  case $1 in
    --scale) scale=$2; shift 2 ;;
    --dumps) dumps=$2; shift 2 ;;
    --transactions) transactions=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

command -v restic >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends restic; }
pgbin=/usr/lib/postgresql/15/bin
[[ -x $pgbin/initdb ]] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15; }
cargo build --release --locked --quiet
lb=$PWD/target/release/lifeboat

work=$(mktemp -d)
chmod 755 "$work"
as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdata=$work/pg
mkdir -p "$pgdata"
((EUID == 0)) && chown postgres "$pgdata"
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/log" -w \
  -o "-k $pgdata -p $port -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
createdb bench
echo "pgbench -i -s $scale ..."
pgbench -i -s "$scale" -q bench 2>&1 | tail -1

export LIFEBOAT_DATA_DIR=$work/lb-data RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
"$lb" -q keys generate --name bench --out "$work/keys" >/dev/null
"$lb" -q init --repo "$work/lb-repo" --recipient "$work/keys/bench.cert" \
  --signing-key "$work/keys/bench.key" >/dev/null
restic init -q --repo "$work/restic-repo" >/dev/null

size() { du -sb "$1" | cut -f1; }
# fields JSON_LINE NAME...: the named numbers of the last JSON object on standard input
fields() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(*(d[k] for k in sys.argv[1:]))" "$@"; }
printf '%5s %9s | %11s %7s %11s | %11s %7s %11s\n' dump "dump MB" "lifeboat +" "%" "new chunks" \
  "restic +" "%" "new chunks"
rows=()
for i in $(seq 1 "$dumps"); do
  if ((i > 1)); then
    pgbench -n -c "$clients" -t "$transactions" bench >/dev/null 2>&1
  fi
  before=$(size "$work/lb-repo")
  read -r dumped lb_new < <("$lb" -q backup --json --repo "$work/lb-repo" \
    --signing-key "$work/keys/bench.key" --postgres "postgres://postgres@127.0.0.1:$port/bench" |
    fields bytes bytes_new)
  lb_added=$(($(size "$work/lb-repo") - before))
  before=$(size "$work/restic-repo")
  restic_new=$(pg_dump -Fc -Z0 bench | restic backup --json --repo "$work/restic-repo" --stdin \
    --stdin-filename bench.dump | fields data_added)
  restic_added=$(($(size "$work/restic-repo") - before))
  rows+=("$i $dumped $lb_added $restic_added $lb_new $restic_new")
  awk -v i="$i" -v d="$dumped" -v l="$lb_added" -v r="$restic_added" -v ln="$lb_new" \
    -v rn="$restic_new" 'BEGIN {
    printf "%5d %9.1f | %11d %6.2f%% %10.1fM | %11d %6.2f%% %10.1fM\n", i, d / 1e6,
      l, 100 * l / d, ln / 1e6, r, 100 * r / d, rn / 1e6 }'
done

printf '%s\n' "${rows[@]}" | awk -v tx="$transactions" -v c="$clients" -v s="$scale" '
  NR == 1 { first_l = $3; first_r = $4; next }
  { n++; d += $2; l += $3; r += $4; ln += $5; rn += $6
    pl = $3 / $2; pr = $4 / $2
    if (pl > max_l) max_l = pl
    if (pr > max_r) max_r = pr
    if ($3 > $4) worse++
    if (pl > 0.10) over++ }
  END {
    printf "\nscale %d, %d pgbench transactions (%d client(s)) between dumps\n", s, tx, c
    printf "first dump: lifeboat %.1f MB, restic %.1f MB\n", first_l / 1e6, first_r / 1e6
    printf "dumps 2..%d: mean dump %.1f MB\n", n + 1, d / n / 1e6
    printf "  lifeboat adds %.2f%% of the dump on average, %.2f%% at most; %.1f MB in all\n", 100 * l / d, 100 * max_l, l / 1e6
    printf "  restic   adds %.2f%% of the dump on average, %.2f%% at most; %.1f MB in all\n", 100 * r / d, 100 * max_r, r / 1e6
    printf "  new chunk bytes before compression: lifeboat %.2f%% of the dumps, restic %.2f%%\n", 100 * ln / d, 100 * rn / d
    printf "  dumps over the 10%% budget: %d; dumps where lifeboat added more than restic: %d\n", over, worse
  }'
