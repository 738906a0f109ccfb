#!/usr/bin/env bash
# Creates/updates the project-local Python venv (.venv) with the pinned tools of
# infra/requirements.txt: moto (AWS emulator), SAM CLI, cfn-lint, cargo-lambda, zig.
# Idempotent: a venv whose requirements stamp matches is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum infra/requirements.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements.txt
echo "$want" > "$stamp"
