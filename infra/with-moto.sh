#!/usr/bin/env bash
# Runs a command with a fresh moto_server (AWS emulator) on a free loopback port:
#   infra/with-moto.sh cargo test -p landing-aws-dynamo
# Exports MOTO_ENDPOINT (and AWS_ENDPOINT_URL, dummy credentials, a region) for the command and
# stops the server afterwards, whatever happens. If moto dies or does not answer within
# ${MOTO_START_TIMEOUT:-10} seconds, prints its log and exits 1 without running the command.
# Needs only the venv (its Python probes readiness; no curl).
set -euo pipefail
cd "$(dirname "$0")/.."
./infra/venv.sh
py=.venv/bin/python
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp -t moto.XXXXXX.log)
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT

# MOTO_PROBE_PORT exists to test this script: pointing the probe elsewhere simulates a moto that
# runs but never answers.
probe="http://127.0.0.1:${MOTO_PROBE_PORT:-$port}/moto-api/"
deadline=$((SECONDS + ${MOTO_START_TIMEOUT:-10}))
ready=false
while [ "$SECONDS" -lt "$deadline" ]; do
  if "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$probe" 2>/dev/null; then
    ready=true
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then break; fi
  sleep 0.2
done
if [ "$ready" != true ]; then
  cat "$log" >&2
  if kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto_server (pid $moto_pid) did not answer $probe within ${MOTO_START_TIMEOUT:-10}s" >&2
  else
    echo "moto_server exited before answering $probe" >&2
  fi
  exit 1
fi

export MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$MOTO_ENDPOINT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=eu-central-1 AWS_DEFAULT_REGION=eu-central-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
