#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need when missing (the
# stock tools they compare against: gpg, sq, zstd; the servers they run: PostgreSQL 15 and
# MariaDB 10.11 from Debian, s3s-fs and Garage from crates.io, moto and schemathesis from PyPI in venvs
# under target/; a tiny VM for QEMU built from Debian's packages; libvirt; Debian's Chromium
# and playwright-core from npm for the dashboard), then runs every test; then the tests of the
# service once more with the catalog in PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v gpg  >/dev/null || missing+=(gnupg)
command -v sq   >/dev/null || missing+=(sq)
command -v sqv  >/dev/null || missing+=(sqv)
command -v zstd >/dev/null || missing+=(zstd)
command -v tar  >/dev/null || missing+=(tar)
command -v pg_dump >/dev/null || missing+=(postgresql-15 postgresql-client-15)
if ! command -v initdb >/dev/null && [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  missing+=(postgresql-15)
fi
# MariaDB 10.11 from Debian (server and client tools; the service is not started).
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb-dump >/dev/null || missing+=(mariadb-client)
# libvirt 9 for the libvirt driver's test (a private session daemon; nothing is started here).
command -v virsh >/dev/null || missing+=(libvirt-clients)
command -v libvirtd >/dev/null || [ -x /usr/sbin/libvirtd ] || missing+=(libvirt-daemon libvirt-daemon-driver-qemu)
# The dashboard test drives Debian's Chromium with playwright-core from npm.
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# systemd-analyze checks the agent's unit file (systemd need not be running).
command -v systemd-analyze >/dev/null || missing+=(systemd)
# The sites' topology test puts agents in network namespaces (unshare, ip) with socat bridges.
command -v socat >/dev/null || missing+=(socat)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
if ((${#missing[@]})); then
  echo "installing test tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# s3s-fs 0.14.1: the newest that builds with this machine's rustc (0.15 needs 1.96).
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v s3s-fs >/dev/null && [ ! -x "$cargo_bin/s3s-fs" ]; then
  echo "installing s3s-fs (S3 server for the storage tests; a few minutes)"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi

# Garage 2.5.0: the distributed object store of tests/garage.rs (a three-node cluster).
if ! command -v garage >/dev/null && [ ! -x "$cargo_bin/garage" ]; then
  echo "installing garage (distributed S3 store for tests/garage.rs; 10-20 minutes)"
  cargo install garage@2.5.0 --locked --quiet
fi

# moto: the S3 server with Object Lock, in a venv of its own.
venv="${CARGO_TARGET_DIR:-target}/test-tools/venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "installing moto (S3 server with Object Lock, for the lock tests) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
export LIFEBOAT_TEST_MOTO="$(cd "$venv" && pwd)/bin/moto_server"

# schemathesis: runs the API's OpenAPI document against the server, in a venv of its own.
st="${CARGO_TARGET_DIR:-target}/test-tools/schemathesis"
if [ ! -x "$st/bin/schemathesis" ]; then
  echo "installing schemathesis (checks the API against its OpenAPI document) into $st"
  python3 -m venv "$st"
  "$st/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
export LIFEBOAT_TEST_SCHEMATHESIS="$(cd "$st" && pwd)/bin/schemathesis"

# playwright-core (no browser download: the test uses /usr/bin/chromium).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core into tests/browser/node_modules"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

# The tiny VM drills boot: QEMU 7.2 in a private folder, Debian's cloud kernel, a busybox
# initramfs (tests/vm/build.sh; a few seconds once the packages are there).
vm="${CARGO_TARGET_DIR:-target}/test-tools/vm"
bash tests/vm/build.sh "$vm"
export LIFEBOAT_TEST_VM="$(cd "$vm" && pwd)"

cargo test --locked --all-targets --no-fail-fast

# The catalog's other engine: the tests of the service and its commands once more (all but
# the demo's dashboard, which is embedded by design, and the format interop tests), each
# workspace's catalog a database of its own on one PostgreSQL server on 127.0.0.1 (stopped at
# the end, however the run ends). tests/catalog_engines.rs and tests/scale_out.rs ran on it
# above already.
pg_bin=/usr/local/bin; [ -x "$pg_bin/initdb" ] || pg_bin=/usr/lib/postgresql/15/bin
pg=$(mktemp -d)
chmod 777 "$pg"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres "$pg_bin/initdb" -D "$pg/data" -A trust -U postgres >/dev/null
trap 'as_postgres "$pg_bin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$pg"' EXIT
as_postgres "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
  -o "-k $pg -p $pg_port -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off" start >/dev/null
echo "the service's tests again, on a PostgreSQL catalog (127.0.0.1:$pg_port)"
LIFEBOAT_TEST_CATALOG_SERVER="postgres://postgres@127.0.0.1:$pg_port" \
  cargo test --locked --no-fail-fast \
    --test daemon --test drill --test report --test tenants --test tenant_keys --test rekey \
    --test evidence --test schedule --test roundtrip --test dedup --test copy --test prune \
    --test crash --test repair --test corruption --test leftovers --test errors --test migrate \
    --test api --test api_abuse --test agents --test sites --test topology --test cold_vm \
    --test s3 --test object_lock --test garage --test prune_race --test config \
    --test postgres --test mariadb --test sqlite
