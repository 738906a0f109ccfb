#!/usr/bin/env bash
# Offline checks of the SAM stack (template.yaml + samconfig.toml); no AWS account, no network,
# no Docker, no build. Runs in a few seconds, for CI:
#   1. sam validate --lint                      (SAM schema + cfn-lint on the SAM template)
#   2. samconfig.toml's dev/prod parameter_overrides checked against the template's Parameters
#   3. SAM -> CloudFormation with samtranslator (per environment), then cfn-lint on the result
#      (since cfn-lint 1.54 `sam validate --lint` no longer lints the translated template)
#   4. the traps no linter catches (DESIGN.md §10), asserted on the parsed and translated templates
# Exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

./infra/venv.sh
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=eu-central-1 AWS_REGION=eu-central-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

template=${TEMPLATE:-template.yaml} # override only to test the checks on a mutated copy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> sam validate --lint"
sam validate --lint --region eu-central-1 --template "$template"

echo "==> samconfig.toml parameters + samtranslator (SAM -> CloudFormation)"
"$PY" - "$work" "$template" <<'PY'
import json, logging, re, sys, tomllib
from samcli.cli.types import CfnParameterOverridesType
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

out_dir = sys.argv[1]
logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" noise at exit
errors = []

def fail(msg):
    errors.append(msg)
    print(f"FAIL: {msg}", file=sys.stderr)

class OfflinePolicyLoader:
    """The template names no managed policy; SAM's own ones are emitted as ARNs. No IAM call."""
    def load(self):
        return {}

with open(sys.argv[2]) as f:
    sam = yaml_parse(f.read())
params = sam.get("Parameters", {})

# --- 2. samconfig.toml: every environment's overrides name real parameters with valid values.
with open("samconfig.toml", "rb") as f:
    cfg = tomllib.load(f)
if cfg.get("version") != 0.1:
    fail("samconfig.toml: version must be 0.1")
build = cfg.get("default", {}).get("build", {}).get("parameters", {})
if build.get("beta_features") is not True or build.get("cached") is not False:
    fail("samconfig.toml: [default.build.parameters] needs beta_features = true and cached = false")
if cfg.get("default", {}).get("validate", {}).get("parameters", {}).get("lint") is not True:
    fail("samconfig.toml: [default.validate.parameters] needs lint = true")

envs = {}
for env in ("dev", "prod"):
    dep = cfg.get(env, {}).get("deploy", {}).get("parameters", {})
    if dep.get("capabilities") != "CAPABILITY_IAM" or dep.get("resolve_s3") is not True:
        fail(f"samconfig.toml [{env}.deploy.parameters]: capabilities = CAPABILITY_IAM and resolve_s3 = true")
    if env == "prod" and dep.get("confirm_changeset") is not True:
        fail("samconfig.toml [prod.deploy.parameters]: confirm_changeset must be true")
    raw = dep.get("parameter_overrides", [])
    raw = tuple(raw) if isinstance(raw, list) else (raw,)
    overrides = CfnParameterOverridesType().convert(raw, None, None)
    values = {}
    for name, spec in params.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            fail(f"[{env}] parameter {name} has no default and no override")
            continue
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            fail(f"[{env}] {name}={value!r} not in {spec['AllowedValues']}")
        if "AllowedPattern" in spec and spec["Type"] == "String" and not re.fullmatch(spec["AllowedPattern"], value):
            fail(f"[{env}] {name}={value!r} does not match {spec['AllowedPattern']}")
        # CloudFormation hands a CommaDelimitedList to the SAM transform as a list.
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    for name in overrides:
        if name not in params:
            fail(f"[{env}] override {name} is not a template parameter")
    envs[env] = values

# --- 3. translate once per environment, exactly as the SAM transform will at deploy time.
translated = {}
for env, values in envs.items():
    t = json.loads(json.dumps(sam))
    for res in t["Resources"].values():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://offline-check/code.zip"  # local dir -> S3, like sam package
    try:
        cfn = transform(t, values, OfflinePolicyLoader())
    except Exception as e:  # samtranslator reports every template error in one exception
        fail(f"[{env}] samtranslator: {e}")
        continue
    path = f"{out_dir}/translated-{env}.json"
    with open(path, "w") as f:
        json.dump(cfn, f, indent=1)
    translated[env] = cfn
    print(f"translated [{env}]: {len(cfn['Resources'])} CloudFormation resources -> {path}")

# --- 4. traps no linter catches (DESIGN.md §10).
R = sam["Resources"]
def props(lid):
    return R.get(lid, {}).get("Properties", {})

def check(cond, msg):
    if not cond:
        fail(msg)

fns = {lid: r for lid, r in R.items() if r.get("Type") == "AWS::Serverless::Function"}
for lid, spec in {"ProftestFunction": ("functions/proftest", "proftest"),
                  "SubmitFunction": ("functions/submit", "submit"),
                  "NotifyFunction": ("functions/notify", "notify"),
                  "CrmSyncFunction": ("functions/crm-sync", "crm-sync"),
                  "SweeperFunction": ("functions/sweeper", "sweeper")}.items():
    fn = fns.get(lid, {})
    check(fn.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda", f"{lid}: BuildMethod rust-cargolambda")
    check(fn.get("Metadata", {}).get("BuildProperties", {}).get("Binary") == spec[1], f"{lid}: Binary {spec[1]}")
    check(props(lid).get("CodeUri") == spec[0], f"{lid}: CodeUri {spec[0]}")

# rate(5 minutes): plural. "rate(5 minute)" is accepted by every validator and fails at deploy.
sweep = [e["Properties"] for e in props("SweeperFunction").get("Events", {}).values() if e.get("Type") == "ScheduleV2"]
check(len(sweep) == 1, "SweeperFunction: exactly one ScheduleV2 event")
for e in sweep:
    check(e.get("ScheduleExpression") == "rate(5 minutes)", "sweeper: ScheduleExpression must be rate(5 minutes) (plural)")
    check(e.get("OmitName") is True, "sweeper: ScheduleV2 needs OmitName: true (a fixed name collides between stacks)")
    check("Name" not in e, "sweeper: ScheduleV2 must not set Name")
for expr in re.findall(r"rate\(\s*\d+\s+\w+\s*\)", json.dumps(sam)):
    n, unit = re.match(r"rate\(\s*(\d+)\s+(\w+)", expr).groups()
    check((n == "1") == (not unit.endswith("s")), f"{expr}: singular unit only for 1, plural otherwise")

# Stream: the stream ARN (GetAtt StreamArn), never !Ref (the table name).
streams = [e["Properties"] for e in props("CrmSyncFunction").get("Events", {}).values() if e.get("Type") == "DynamoDB"]
check(len(streams) == 1, "CrmSyncFunction: exactly one DynamoDB stream event")
for s in streams:
    check(s.get("Stream") == {"Fn::GetAtt": ["LeadsTable", "StreamArn"]}, "crm-sync: Stream must be !GetAtt LeadsTable.StreamArn")
    check(s.get("FilterCriteria") == {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}, "crm-sync: INSERT-only filter")
    check(s.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "crm-sync: ReportBatchItemFailures")
    check(s.get("BisectBatchOnFunctionError") is True, "crm-sync: BisectBatchOnFunctionError")
    check(s.get("ParallelizationFactor") == 1, "crm-sync: ParallelizationFactor 1")
    check(isinstance(s.get("MaximumRetryAttempts"), int) and 0 <= s["MaximumRetryAttempts"] <= 10, "crm-sync: bounded MaximumRetryAttempts")
    check(isinstance(s.get("MaximumRecordAgeInSeconds"), int) and 60 <= s["MaximumRecordAgeInSeconds"] <= 21600, "crm-sync: bounded MaximumRecordAgeInSeconds")
check(props("CrmSyncFunction").get("ReservedConcurrentExecutions") == 1, "crm-sync: ReservedConcurrentExecutions 1")

# Every SQS destination/DLQ is a queue ARN (GetAtt X.Arn); !Ref of a queue is its URL.
queues = {lid for lid, r in R.items() if r.get("Type") == "AWS::SQS::Queue"}
def walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + "/" + k, k, v
            yield from walk(v, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")
destinations = 0
for path, key, value in walk(R):
    if key in ("Destination", "Arn") and ("OnFailure" in path or "DeadLetterConfig" in path):
        destinations += 1
        check(isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn",
              f"{path}: an SQS destination must be !GetAtt <Queue>.Arn, not {value}")
    if key == "Ref" and value in queues and "/Outputs" not in path and "Variables" not in path:
        fail(f"{path}: !Ref {value} is a queue URL; policies and destinations need its ARN")
check(destinations >= 2, "expected the stream and notify on-failure destinations")

# sns:Publish to a phone number has no ARN: Resource "*" (anything else is AccessDenied at run time).
for lid in ("NotifyFunction", "SweeperFunction"):
    stmts = [s for p in props(lid).get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    sns = [s for s in stmts if s.get("Action") in ("sns:Publish", ["sns:Publish"])]
    check(len(sns) == 1 and sns[0].get("Resource") == "*", f"{lid}: sns:Publish needs Resource \"*\"")
    check(any(s.get("Action") in ("ses:SendEmail", ["ses:SendEmail"]) for s in stmts), f"{lid}: ses:SendEmail")

# The scheduler role is assumed by EventBridge Scheduler, for this account's schedules only.
trust = props("SchedulerRole").get("AssumeRolePolicyDocument", {}).get("Statement", [])
check(any(s.get("Principal", {}).get("Service") == "scheduler.amazonaws.com"
          and "aws:SourceAccount" in s.get("Condition", {}).get("StringEquals", {})
          and "aws:SourceArn" in s.get("Condition", {}).get("ArnLike", {}) for s in trust),
      "SchedulerRole must trust scheduler.amazonaws.com with aws:SourceAccount/aws:SourceArn conditions")

# CORS: AllowOrigins is the CommaDelimitedList parameter itself. An !If/!Split/!Join there passes
# every linter and silently breaks CORS; after translation it must be a real CORS object.
cors = props("LandingApi").get("CorsConfiguration", {})
check(cors.get("AllowOrigins") == {"Ref": "AllowedOrigins"}, "LandingApi: AllowOrigins must be exactly !Ref AllowedOrigins")
check(params.get("AllowedOrigins", {}).get("Type") == "CommaDelimitedList", "AllowedOrigins must be a CommaDelimitedList")
for bad in ("Fn::If", "Fn::Split", "Fn::Join", "Fn::Select", "Fn::Sub"):
    check(bad not in json.dumps(cors), f"LandingApi CorsConfiguration must not use {bad}")
for env, cfn in translated.items():
    x = cfn["Resources"]["LandingApi"]["Properties"].get("Body", {}).get("x-amazon-apigateway-cors")
    ok = isinstance(x, dict) and x.get("allowOrigins") == envs[env]["AllowedOrigins"] \
        and {"content-type", "idempotency-key", "x-correlation-id"} <= set(x.get("allowHeaders", [])) \
        and set(x.get("allowMethods", [])) == {"POST", "OPTIONS"}
    check(ok, f"[{env}] translated x-amazon-apigateway-cors is not the expected CORS object: {x}")

# Tables: CloudFormation-named, PITR on, lead data retained.
for lid, r in R.items():
    if r.get("Type") == "AWS::DynamoDB::Table":
        p = r["Properties"]
        check("TableName" not in p, f"{lid}: no fixed TableName (two stacks must coexist)")
        check(p.get("BillingMode") == "PAY_PER_REQUEST", f"{lid}: on-demand billing")
        check(p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, f"{lid}: PITR")
for lid in ("LeadsTable", "NotificationsTable", "TrackingTable", "TokensTable"):
    check(R[lid].get("DeletionPolicy") == "Retain" and R[lid].get("UpdateReplacePolicy") == "Retain", f"{lid}: Retain")

# No credentials in plain text: nothing that looks like a token/secret in the environment.
for lid in fns:
    for k in props(lid).get("Environment", {}).get("Variables", {}):
        check(not re.search(r"(ACCESS|REFRESH)_TOKEN|CLIENT_SECRET|PASSWORD|API_KEY", k), f"{lid}: {k} must come from Secrets Manager")
for k in sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}):
    check(not re.search(r"(ACCESS|REFRESH)_TOKEN|CLIENT_SECRET|PASSWORD|API_KEY", k), f"Globals: {k} must come from Secrets Manager")

if errors:
    sys.exit(f"{len(errors)} template check(s) failed")
print("trap checks: ok")
PY

echo "==> cfn-lint on the translated templates"
# W2001 (unused parameter) is ignored here only: the SAM transform resolves AllowedOrigins into
# the OpenAPI body at transform time, so the translated template no longer references it. Unused
# parameters are still caught by `sam validate --lint` on the SAM template above.
cfn-lint --regions eu-central-1 --ignore-checks W2001 -- "$work"/translated-*.json

echo "OK: template.yaml and samconfig.toml pass every offline check"
