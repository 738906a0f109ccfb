#!/usr/bin/env bash
# Offline checks of the SAM stack (template.yaml + samconfig.toml); no AWS account, no network,
# no Docker, no build. Runs in a few seconds, for CI:
#   1. sam validate --lint                      (SAM schema + cfn-lint on the SAM template)
#   2. samconfig.toml's dev/prod parameter_overrides checked against the template's Parameters
#   3. SAM -> CloudFormation with samtranslator (per environment), then cfn-lint on the result
#      (since cfn-lint 1.54 `sam validate --lint` no longer lints the translated template)
#   4. the traps no linter catches (docs/architecture.md §10), asserted on the parsed and translated templates
# Steps 2-4 are infra/check_template.py; infra/test_check_template.py, run first, proves on mutated
# copies of the template that they fail when they should. Exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

./infra/venv.sh
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=eu-central-1 AWS_REGION=eu-central-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

template=${TEMPLATE:-template.yaml} # another template (e.g. a mutated copy) instead of ours
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> sam validate --lint"
sam validate --lint --region eu-central-1 --template "$template"

echo "==> the checks below catch the traps (infra/test_check_template.py, on mutated copies)"
"$PY" infra/test_check_template.py

echo "==> samconfig.toml parameters + samtranslator (SAM -> CloudFormation) + traps"
"$PY" infra/check_template.py "$work" "$template"

echo "==> cfn-lint on the translated templates"
# W2001 (unused parameter) is ignored here only: the SAM transform resolves AllowedOrigins into
# the OpenAPI body at transform time, so the translated template no longer references it. Unused
# parameters are still caught by `sam validate --lint` on the SAM template above.
cfn-lint --regions eu-central-1 --ignore-checks W2001 -- "$work"/translated-*.json

echo "==> the pages' upload (infra/test_upload_web.py, on moto's in-process S3 and CloudFront)"
"$PY" infra/test_upload_web.py

echo "OK: template.yaml and samconfig.toml pass every offline check"
