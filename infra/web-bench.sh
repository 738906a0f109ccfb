#!/usr/bin/env bash
# Page-speed benchmark of the two landing pages (web/bench): bytes and requests on first load and
# Lighthouse mobile scores, on Debian's chromium, against a landing-local it starts itself.
# Not a test: it prints the figures (web/README.md records them). Uses LANDING_LOCAL_BIN if set,
# else builds landing-local (respecting CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
(cd web/bench && npm ci --no-audit --no-fund --loglevel=error)
if [ -z "${LANDING_LOCAL_BIN:-}" ]; then
    # The debug build serves the very same bytes (compressed once at start); the scores measure
    # the page in a throttled phone, not the server.
    cargo build --locked -p landing-local
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    mkdir -p .bin
    cp "$target_dir/debug/landing-local" .bin/landing-local
    export LANDING_LOCAL_BIN="$PWD/.bin/landing-local"
fi
cd web/bench
CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}" node bench.js
