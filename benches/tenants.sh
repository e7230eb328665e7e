#!/usr/bin/env bash
# What a repository per tenant costs: storage lost to cross-tenant deduplication, and the
# time of `tenant rekey` per GB.
#
# Two tenants with similar trees (two offices running the same software): both start from
# TREE; bakery's copy lacks every 7th file, has every 11th replaced by new content, and each
# has 32 MiB of files of its own. Backed up once into one shared repository (as before each
# tenant had its own) and once into a repository per tenant; "stored" is the size of the
# repository folders (`du -sb`: data, indexes, trees, snapshots).
#
# Then acme's escrow key is added and `lifeboat tenant rekey acme` re-encrypts acme's
# repository (read, decrypt, re-pack, write, prune, then check --read-data); its time is
# shown whole and without the final check (`check --read-data` timed alone).
#
# usage: benches/tenants.sh [TREE]   (default TREE: /usr/lib/x86_64-linux-gnu)
#        PROFILE=FILE benches/tenants.sh   also records the rekey with `perf record -g` into FILE
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${1:-/usr/lib/x86_64-linux-gnu}
[[ -x /usr/bin/time ]] || apt-get install -y -qq time
cargo build --release --locked --quiet
lb=$PWD/target/release/lifeboat

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LIFEBOAT_DATA_DIR=$work/data

# The two trees: hard-link copies of TREE (nothing is changed in place), then bakery's edits.
mkdir -p "$work/srv"
cp -al "$tree" "$work/srv/acme"
cp -al "$tree" "$work/srv/bakery"
n=0
while IFS= read -r -d '' f; do
  n=$((n + 1))
  if ((n % 7 == 0)); then
    rm -f "$f"
  elif ((n % 11 == 0)); then
    rm -f "$f" && head -c "$(( (n % 64 + 1) * 4096 ))" /dev/urandom >"$f"
  fi
done < <(find "$work/srv/bakery" -type f -print0 | sort -z)
for t in acme bakery; do
  mkdir -p "$work/srv/$t/own"
  for i in 0 1 2 3; do head -c $((8 << 20)) /dev/urandom >"$work/srv/$t/own/$i.bin"; done
done
size() { du -sb "$1" | cut -f1; }
echo "trees: acme $(size "$work/srv/acme") bytes, bakery $(size "$work/srv/bakery") bytes (from $tree)"

for k in svc rec acme-escrow; do "$lb" -q keys generate --name $k --out "$work/keys" >/dev/null 2>&1; done
init() { "$lb" -q init --repo "$1" --recipient "$work/keys/rec.cert" --signing-key "$work/keys/svc.key" >/dev/null 2>&1; }
backup() { "$lb" -q backup --repo "$1" --signing-key "$work/keys/svc.key" --tag tenant="$2" "$work/srv/$2" >/dev/null; }

init "$work/shared"
backup "$work/shared" acme
backup "$work/shared" bakery
shared=$(size "$work/shared")
for t in acme bakery; do
  init "$work/nas/$t"
  backup "$work/nas/$t" $t
done
acme=$(size "$work/nas/acme") bakery=$(size "$work/nas/bakery")
per=$((acme + bakery))
awk -v s="$shared" -v a="$acme" -v b="$bakery" -v p="$per" 'BEGIN {
  printf "stored, one shared repository:   %8.1f MB\n", s / 1e6
  printf "stored, a repository per tenant: %8.1f MB (acme %.1f, bakery %.1f)\n", p / 1e6, a / 1e6, b / 1e6
  printf "cost of no cross-tenant dedup:   %8.1f MB (+%.1f%%)\n", (p - s) / 1e6, (p - s) * 100 / s
}'

cat >"$work/lifeboat.toml" <<EOF
[service]
signing_key = "$work/keys/svc.key"
recipients = ["$work/keys/rec.cert"]

[targets.nas]
kind = "local"
path = "$work/nas"

[tenants.acme]
name = "ACME"
recipients = ["$work/keys/acme-escrow.cert"]

[tenants.bakery]
name = "Bakery"
EOF
/usr/bin/time -f '%e %M' -o "$work/t" ${PROFILE:+perf record -q -F 499 -g -o "$PROFILE"} "$lb" -q tenant rekey acme --config "$work/lifeboat.toml" \
  --key "$work/keys/rec.key" --json >"$work/rekey.json"
read -r secs rss <"$work/t"
/usr/bin/time -f '%e' -o "$work/c" "$lb" -q check --read-data --repo "$work/nas/acme" \
  --key "$work/keys/rec.key" >/dev/null 2>&1
read -r check <"$work/c"
written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nas"]["rekey"]["bytes_written"])' "$work/rekey.json")
awk -v s="$secs" -v c="$check" -v a="$acme" -v w="$written" -v r="$rss" 'BEGIN {
  gb = a / 1e9
  printf "tenant rekey acme: %.1f GB stored, %.1f s (%.1f s/GB), peak RSS %.0f MiB, %.1f MB written\n", gb, s, s / gb, r / 1024, w / 1e6
  printf "  of which check --read-data: %.1f s; rekey without it: %.1f s/GB\n", c, (s - c) / gb
}'
