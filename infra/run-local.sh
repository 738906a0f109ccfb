#!/usr/bin/env bash
# Builds and starts landing-local (the whole pipeline on SQLite) with the configuration from the
# environment; see README "Configuration". Data lands in ${LANDING_DATA_DIR:-./data}.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p landing-local -- "$@"
