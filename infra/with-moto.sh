#!/usr/bin/env bash
# Runs a command with a fresh moto_server (AWS emulator) on a free loopback port:
#   infra/with-moto.sh cargo test -p landing-aws-dynamo
# Exports MOTO_ENDPOINT (and AWS_ENDPOINT_URL, dummy credentials, a region) for the command and
# stops the server afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
./infra/venv.sh
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp -t moto.XXXXXX.log)
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then cat "$log" >&2; echo "moto_server did not start" >&2; exit 1; fi
  sleep 0.1
done
export MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$MOTO_ENDPOINT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=eu-central-1 AWS_DEFAULT_REGION=eu-central-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
