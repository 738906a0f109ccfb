#!/usr/bin/env bash
# The browser tests of the two landing pages (web/tests, node --test + playwright-core) against a
# real landing-local. Installs what they need on a fresh machine: Debian's chromium (apt), the
# npm packages (npm ci in web/), and builds landing-local unless LANDING_LOCAL_BIN names one.
# Screenshots land in web/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

echo "==> npm ci (web/)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

if [ -z "${LANDING_LOCAL_BIN:-}" ]; then
    echo "==> cargo build -p landing-local"
    cargo build --locked -p landing-local
    # The target dir may be shared with other worktrees: copy the binary at once, so that a
    # later build elsewhere cannot swap it under the tests.
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    mkdir -p .bin
    cp "$target_dir/debug/landing-local" .bin/landing-local
    export LANDING_LOCAL_BIN="$PWD/.bin/landing-local"
fi

echo "==> browser tests (web/tests)"
cd web
node --test --test-concurrency=1 tests/
