#!/usr/bin/env bash
# Every check and every test: formatting, lints, unit/property/contract/handler/end-to-end tests.
# Needs only the Rust toolchain (cargo, rustfmt, clippy); SQLite is compiled in (bundled).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked
