#!/usr/bin/env bash
# Every check and every test: formatting, lints, the SAM template, and the whole test suite —
# unit, property, contract (SQLite and DynamoDB), handler, AmoCRM-against-fake, end to end
# through landing-local, and the Lambdas through cargo lambda — with the AWS parts against a
# moto server this script starts and stops — and `sam build` for the template's architecture.
# Installs what it needs: ./.venv (pinned Python tools) and the Rust target (rustup).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> intake binaries link no SNS/SES/reqwest/SQLite"
# They are the latency-critical, most-invoked functions: what they do not link they do not load.
for bin in proftest submit; do
    linked=$(cargo tree --locked -p "landing-$bin" -e normal --prefix none | awk '{print $1}' | sort -u |
        grep -xE 'aws-sdk-sns|aws-sdk-sesv2|reqwest|rusqlite|landing-sqlite|landing-aws-messaging|landing-amocrm' || true)
    if [ -n "$linked" ]; then
        echo "$bin links what intake must not: $linked" >&2
        exit 1
    fi
done

echo "==> notify links no AmoCRM client, reqwest or Secrets Manager"
# The CRM wiring is landing-aws-events' 'crm' feature, which only crm-sync and the sweeper enable.
linked=$(cargo tree --locked -p landing-notify -e normal --prefix none | awk '{print $1}' | sort -u |
    grep -xE 'reqwest|landing-amocrm|aws-sdk-secretsmanager' || true)
if [ -n "$linked" ]; then
    echo "notify links what it must not: $linked" >&2
    exit 1
fi

echo "==> the core links no I/O crate"
# The domain and the use cases are what every runtime shares; an HTTP runtime, a log backend or
# a storage driver in there would be compiled (and trusted) by every binary.
linked=$(cargo tree --locked -p landing-core -e normal --prefix none | awk '{print $1}' | sort -u |
    grep -xE 'lambda_http|lambda_runtime|hyper|tower|axum|tracing-subscriber|reqwest|rusqlite|aws-config|aws-smithy-runtime|mio' || true)
if [ -n "$linked" ]; then
    echo "landing-core links I/O crates: $linked" >&2
    exit 1
fi

echo "==> landing-local's default build links no AWS SDK"
# LANDING_TRANSPORT=aws is the opt-in `aws` feature: a newcomer's first build skips the SDK.
if cargo tree --locked -p landing-local -e normal --prefix none | awk '{print $1}' | grep -qE '^(aws-sdk-|aws-config|aws-smithy)'; then
    echo "landing-local links the AWS SDK without --features aws" >&2
    exit 1
fi

echo "==> python tools (.venv: moto, SAM CLI, cfn-lint, cargo-lambda, zig)"
./infra/venv.sh

echo "==> template.yaml / samconfig.toml"
./infra/check-template.sh

echo "==> cargo test (AWS parts against moto)"
# cargo lambda watch builds the functions on their first invocation; build them now so that
# the first invoke does not wait on the compiler. Which they are, the template says.
packages=$(.venv/bin/python infra/template_info.py packages)
build_args=()
for p in $packages; do build_args+=(-p "$p"); done
cargo build --locked "${build_args[@]}"
# Emulator tests are #[ignore]d for a plain `cargo test`; here they all run.
./infra/with-moto.sh cargo test --workspace --locked -- --include-ignored
# landing-local with its opt-in AWS transport, against the same emulator.
./infra/with-moto.sh cargo test --locked -p landing-local --features aws --test e2e -- --include-ignored aws_transport

echo "==> deploy rehearsal: the stack on moto's CloudFormation, its functions under cargo lambda"
cargo build --locked -p landing-ops -p landing-amocrm-fake --bin landing-ops --bin amocrm-fake
./infra/with-moto.sh .venv/bin/python infra/rehearse.py

echo "==> the landing pages in a real browser (Debian chromium + playwright-core)"
./infra/web-test.sh

echo "==> sam build for the template's architecture"
./infra/sam-build.sh
