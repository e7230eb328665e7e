#!/usr/bin/env bash
# Side by side with restic on the same tree and machine: first backup (MB/s), unchanged
# re-backup, restore, repository size, peak RSS; then peak RSS backing up one 4 GiB file.
#
# With --s3, both back up to the same local S3 server (s3s-fs on 127.0.0.1, started here and
# stopped on exit), each into a bucket of its own.
#
# usage: benches/compare.sh [TREE] [--no-big] [--s3]   (default TREE: /usr/lib/x86_64-linux-gnu)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=/usr/lib/x86_64-linux-gnu big=yes s3=no
for arg in "$@"; do
  case $arg in
    --no-big) big=no ;;
    --s3) s3=yes ;;
    *) tree=$arg ;;
  esac
done

command -v restic >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends restic; }
[[ -x /usr/bin/time ]] || apt-get install -y -qq time
cargo build --release --locked --quiet
lb=$PWD/target/release/lifeboat

work=$(mktemp -d)
server_pid=
trap '[[ -n $server_pid ]] && kill $server_pid; rm -rf "$work"' EXIT
export LIFEBOAT_DATA_DIR=$work/lb-data RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache

# Where each tool's repository lives, and the folder whose size is the repository's size.
lb_repo=$work/lb-repo lb_dir=$work/lb-repo
restic_repo=$work/restic-repo restic_dir=$work/restic-repo
if [[ $s3 == yes ]]; then
  s3s_fs=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
  [[ -x $s3s_fs ]] || cargo install s3s-fs@0.14.1 --features binary --locked --quiet
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$work/s3/lifeboat" "$work/s3/restic"
  "$s3s_fs" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret-0123456789 "$work/s3" \
    >"$work/s3.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-0123456789 AWS_REGION=us-east-1
  export LIFEBOAT_S3_ENDPOINT=http://127.0.0.1:$port LIFEBOAT_S3_PATH_STYLE=true
  unset AWS_CA_BUNDLE
  lb_repo=s3://lifeboat/repo lb_dir=$work/s3/lifeboat
  restic_repo=s3:http://127.0.0.1:$port/restic/repo restic_dir=$work/s3/restic
  echo "S3 mode: s3s-fs on 127.0.0.1:$port"
fi

# measure NAME CMD...: prints seconds and peak RSS (KiB) of the command
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r secs rss < "$work/t"
  results+=("$name $secs $rss")
}
results=()

bytes=$(du -sb "$tree" | cut -f1)
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
echo "tree: $tree ($mb MB, $(find "$tree" -type f | wc -l) files), $(nproc) cores"
find "$tree" -type f -exec cat {} + > /dev/null 2>&1 || true   # warm the page cache for both

"$lb" keys generate --name svc --out "$work/keys" >/dev/null 2>&1
"$lb" init --repo "$lb_repo" --recipient "$work/keys/svc.cert" --signing-key "$work/keys/svc.key" >/dev/null 2>&1
measure "lifeboat-backup"   "$lb" backup -q --repo "$lb_repo" --signing-key "$work/keys/svc.key" "$tree"
measure "lifeboat-rebackup" "$lb" backup -q --repo "$lb_repo" --signing-key "$work/keys/svc.key" "$tree"
measure "lifeboat-restore"  "$lb" restore -q --repo "$lb_repo" --key "$work/keys/svc.key" latest --target "$work/lb-out"
lb_size=$(du -sb "$lb_dir" | cut -f1)
rm -rf "$work/lb-out"

restic init -q -r "$restic_repo"
measure "restic-backup"   restic -q -r "$restic_repo" backup "$tree"
measure "restic-rebackup" restic -q -r "$restic_repo" backup "$tree"
measure "restic-restore"  restic -q -r "$restic_repo" restore latest --target "$work/restic-out"
restic_size=$(du -sb "$restic_dir" | cut -f1)
rm -rf "$work/restic-out"

printf '\n%-20s %9s %10s %12s\n' step seconds MB/s "peak RSS MiB"
for r in "${results[@]}"; do
  read -r name secs rss <<<"$r"
  printf '%-20s %9s %10s %12s\n' "$name" "$secs" "$(awk -v m="$mb" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')" "$((rss / 1024))"
done
get() { for r in "${results[@]}"; do read -r n s _ <<<"$r"; [[ $n == "$1" ]] && echo "$s"; done; }
echo
awk -v l="$(get lifeboat-backup)" -v r="$(get restic-backup)" 'BEGIN { printf "first backup: lifeboat is %.2fx restic\n", r / l }'
awk -v l="$(get lifeboat-backup)" -v u="$(get lifeboat-rebackup)" 'BEGIN { printf "unchanged re-backup: %.1fx faster than the first (lifeboat)\n", l / ((u > 0) ? u : 0.01) }'
awk -v l="$(get lifeboat-restore)" -v r="$(get restic-restore)" 'BEGIN { printf "restore: lifeboat is %.2fx restic\n", r / l }'
echo "repository size: lifeboat $((lb_size / 1048576)) MiB, restic $((restic_size / 1048576)) MiB"

if [[ $big == yes ]]; then
  mkdir -p "$work/big"
  head -c 4G /dev/urandom > "$work/big/disk.img"
  results=()
  measure "lifeboat-4GiB-file" "$lb" backup -q --repo "$lb_repo" --signing-key "$work/keys/svc.key" "$work/big"
  read -r _ secs rss <<<"${results[0]}"
  echo "single 4 GiB file: ${secs}s, $(awk -v s="$secs" 'BEGIN { printf "%.0f", 4294.967296 / s }') MB/s, peak RSS $((rss / 1024)) MiB"
fi
