#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the stock tools the tests compare
# against (gpg, sq, zstd) when missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v gpg  >/dev/null || missing+=(gnupg)
command -v sq   >/dev/null || missing+=(sq)
command -v sqv  >/dev/null || missing+=(sqv)
command -v zstd >/dev/null || missing+=(zstd)
command -v tar  >/dev/null || missing+=(tar)
if ((${#missing[@]})); then
  echo "installing test tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --locked --all-targets
