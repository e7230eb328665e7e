#!/usr/bin/env bash
# The main job on the embedded default, from nothing: keys, a local repository, a backup of a
# folder, a verified restore, and a full integrity check. Everything lands in ./lifeboat-quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/lifeboat"
lifeboat() { "$bin" "$@"; }

demo=${DEMO_DIR:-lifeboat-quickstart}
rm -rf "$demo"
mkdir -p "$demo"
export LIFEBOAT_DATA_DIR="$demo/data"
export LIFEBOAT_REPO="$demo/repo"

echo "== keys: a service key (signs) and a recovery key (decrypts)"
lifeboat keys generate --name service --out "$demo/keys"
lifeboat keys generate --name recovery --out "$demo/keys"
export LIFEBOAT_SIGNING_KEY="$demo/keys/service.key"
export LIFEBOAT_KEY="$demo/keys/recovery.key"

echo "== a repository in $LIFEBOAT_REPO, encrypted to the recovery key"
lifeboat init --recipient "$demo/keys/recovery.cert"

echo "== backup of fixtures/files, twice (the second adds nothing)"
lifeboat backup --tag tier=demo fixtures/files
lifeboat backup --tag tier=demo fixtures/files
lifeboat snapshots

echo "== restore of the latest snapshot, compared with the original"
lifeboat restore latest --target "$demo/restored"
diff -r fixtures/files "$demo/restored/$(realpath fixtures/files | sed 's|^/||')"
echo "restored copy is identical"

echo "== full check: every object hashed, every chunk decrypted and verified"
lifeboat check --read-data
