#!/bin/sh
# Restores one Lifeboat snapshot without Lifeboat, using only gpg (or sq), zstd and a POSIX
# shell with its standard utilities (awk, sed, tr, head, tail, grep, touch, chmod).
# See docs/FORMAT.md. The recipient's secret key must be in gpg's keyring (gpg --import KEY);
# with DECRYPT="sq decrypt --recipient-key KEY" sq is used instead.
#
# usage: restore-with-stock-tools.sh REPOSITORY SNAPSHOT_ID TARGET_FOLDER
set -eu
repo=$1 snap=$2 target=$3
DECRYPT=${DECRYPT:-gpg --batch --quiet --decrypt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$target"

# 1. The manifest: signed JSON (gpg prints "Good signature" if the service certificate is imported).
$DECRYPT "$repo/snapshots/$snap" > "$work/manifest.json"

# 2. All indexes as lines "CHUNK PACK OFFSET LENGTH".
for i in "$repo"/index/*; do $DECRYPT "$i"; done |
  awk '$1 == "pack" { p = $2; next } NF == 4 { print $1, p, $2, $3 }' > "$work/chunks"

# 3. A chunk's plaintext: decrypt its pack once, cut the zstd frame out, decompress.
chunk() {
  set -- $(grep "^$1 " "$work/chunks")
  [ -f "$work/p-$2" ] || $DECRYPT "$repo/data/$(printf %.2s "$2")/$2" > "$work/p-$2"
  tail -c +$(($3 + 1)) "$work/p-$2" | head -c "$4" | zstd -dq
}

# 4. The tree: the manifest's "tree" chunks, concatenated.
for c in $(tr -d ' \n' < "$work/manifest.json" | sed 's/.*"tree":\[\([^]]*\)\].*/\1/' | tr -d '"' | tr ',' ' '); do
  chunk "$c"
done > "$work/tree"

# 5. Entries: folders, files (chunks and zero runs in order), symlinks, hard links.
tail -n +2 "$work/tree" | while read -r type mode uid gid mtime size path extra; do
  p="$target/$(printf '%b' "$path")"
  case $type in
    d) mkdir -p "$p" ;;
    f) : > "$p"
       if [ "$extra" != - ]; then
         for ref in $(echo "$extra" | tr ',' ' '); do
           if [ "${ref%%:*}" = 0 ]; then head -c "${ref#*:}" /dev/zero; else chunk "${ref%%:*}"; fi
         done > "$p"
       fi ;;
    l) ln -s "$(printf '%b' "$extra")" "$p" ;;
    h) ln "$target/$(printf '%b' "$extra")" "$p" ;;
  esac
done

# 6. Permissions and times, deepest first (writing into a folder changes its time).
tail -n +2 "$work/tree" | sort -r -k7,7 | while read -r type mode uid gid mtime size path extra; do
  p="$target/$(printf '%b' "$path")"
  [ "$type" = l ] || chmod "$mode" "$p"
  touch -h -d "@$mtime" "$p"
done
echo "restored snapshot $snap into $target"
