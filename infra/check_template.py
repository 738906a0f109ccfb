"""Steps 2-4 of infra/check-template.sh, offline (no AWS account, no network):

  2. samconfig.toml's dev/prod parameter_overrides checked against the template's Parameters
  3. SAM -> CloudFormation with samtranslator, once per environment, the results written to
     OUT_DIR/translated-<env>.json for cfn-lint
  4. the traps no linter catches (docs/architecture.md §10), asserted on the parsed and translated templates

  .venv/bin/python infra/check_template.py OUT_DIR [TEMPLATE [SAMCONFIG]]

Prints every failure (FAIL: …) and exits 1 if there was any. infra/test_check_template.py runs
check() on mutated copies of the template to prove that the traps are caught.
"""

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Callable, TextIO

import tomllib
from samcli.cli.types import CfnParameterOverridesType
from samtranslator.translator.transform import transform

sys.dont_write_bytecode = True  # no infra/__pycache__ in the work tree for importing a sibling
import gen_sms_protect  # noqa: E402
import template_info  # noqa: E402

# The same offline environment check-template.sh gives sam and cfn-lint, so that running this
# file (or its test) alone translates exactly as the script does, without reaching for AWS.
os.environ.update(AWS_DEFAULT_REGION="eu-central-1", AWS_REGION="eu-central-1", SAM_CLI_TELEMETRY="0",
                  AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
                  AWS_SHARED_CREDENTIALS_FILE="/dev/null")
ROOT = template_info.ROOT
logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" noise at exit
Fail = Callable[[str], None]
# CloudFront's managed policies, by id (the same in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


class OfflinePolicyLoader:
    """The template names no managed policy; SAM's own ones are emitted as ARNs. No IAM call."""

    def load(self):
        return {}


def check_samconfig(sam: dict, cfg: dict, fail: Fail) -> dict:
    """Every environment's overrides name real parameters with valid values; returns each
    environment's parameter values as the SAM transform will see them."""
    params = sam.get("Parameters", {})
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
    return envs


def translate(sam: dict, envs: dict, out_dir: Path, fail: Fail, out: TextIO) -> dict:
    """Translates once per environment, exactly as the SAM transform will at deploy time."""
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
        path = out_dir / f"translated-{env}.json"
        with open(path, "w") as f:
            json.dump(cfn, f, indent=1)
        translated[env] = cfn
        print(f"translated [{env}]: {len(cfn['Resources'])} CloudFormation resources -> {path}", file=out)
    return translated


def walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + "/" + k, k, v
            yield from walk(v, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def check_traps(sam: dict, envs: dict, translated: dict, root: Path, fail: Fail) -> None:
    params = sam.get("Parameters", {})
    R = sam["Resources"]

    def props(lid):
        return R.get(lid, {}).get("Properties", {})

    def check(cond, msg):
        if not cond:
            fail(msg)

    fns = {lid: r for lid, r in R.items() if r.get("Type") == "AWS::Serverless::Function"}
    # Every function is built by cargo lambda from its own crate: what check.sh pre-builds and
    # sam-build.sh checks is derived from exactly this (template_info.py).
    for msg in template_info.problems(sam, root):
        fail(msg)

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

    # Pages: a private bucket read only through the distribution; /api/* goes to the HTTP API,
    # uncached, without the viewer's Host (API Gateway answers a Host not its own with 403).
    bucket = props("PagesBucket")
    block = bucket.get("PublicAccessBlockConfiguration", {})
    check(all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                             "RestrictPublicBuckets")), "PagesBucket: block all public access")
    check("WebsiteConfiguration" not in bucket, "PagesBucket: no public website endpoint")
    stmts = props("PagesBucketPolicy").get("PolicyDocument", {}).get("Statement", [])
    check(any(st.get("Principal", {}).get("Service") == "cloudfront.amazonaws.com"
              and "AWS:SourceArn" in st.get("Condition", {}).get("StringEquals", {}) for st in stmts),
          "PagesBucketPolicy: readable only by cloudfront.amazonaws.com for this distribution (AWS:SourceArn)")
    dist = props("PagesDistribution").get("DistributionConfig", {})
    origins = {o.get("Id"): o for o in dist.get("Origins", [])}
    check("OriginAccessControlId" in origins.get("pages", {}), "PagesDistribution: the pages origin uses origin access control")
    default = dist.get("DefaultCacheBehavior", {})
    check(default.get("TargetOriginId") == "pages" and default.get("ViewerProtocolPolicy") == "redirect-to-https",
          "PagesDistribution: pages by default, over HTTPS")
    check(any(f.get("EventType") == "viewer-request" for f in default.get("FunctionAssociations", [])),
          "PagesDistribution: the page-route function on viewer-request")
    api = [b for b in dist.get("CacheBehaviors", []) if b.get("PathPattern") == "/api/*"]
    check(len(api) == 1, "PagesDistribution: exactly one /api/* behaviour")
    for b in api:
        check(b.get("TargetOriginId") == "api" and "CustomOriginConfig" in origins.get("api", {}),
              "/api/*: to the API origin")
        check("POST" in b.get("AllowedMethods", []), "/api/*: POST allowed")
        check(b.get("CachePolicyId") == CACHING_DISABLED, "/api/*: Managed-CachingDisabled (a lead is never a cache hit)")
        check(b.get("OriginRequestPolicyId") == ALL_VIEWER_EXCEPT_HOST,
              "/api/*: must not forward the viewer's Host header (Managed-AllViewerExceptHostHeader)")

    # The SMS guard: the viewer's address reaches the API only through the edge function, proven
    # by the edge secret; intake hashes it with a generated key and checks Origin itself; the
    # senders may update the counters; the protect configuration rules on every country.
    for b in api:
        check(any(f.get("EventType") == "viewer-request"
                  and f.get("FunctionARN") == {"Fn::GetAtt": ["ApiEdgeFunction", "FunctionMetadata.FunctionARN"]}
                  for f in b.get("FunctionAssociations", [])),
              "/api/*: the ApiEdgeFunction on viewer-request (the viewer's address and host)")
    headers = {h.get("HeaderName"): h.get("HeaderValue") for h in origins.get("api", {}).get("OriginCustomHeaders", [])}
    edge_ref = {"Fn::Sub": "{{resolve:secretsmanager:${EdgeSecret}:SecretString}}"}
    check(headers.get("x-landing-edge-secret") == edge_ref,
          "api origin: x-landing-edge-secret must be the generated EdgeSecret")
    code = props("ApiEdgeFunction").get("FunctionCode", "")
    check("x-landing-viewer-ip" in code and "event.viewer.ip" in code,
          "ApiEdgeFunction: sets x-landing-viewer-ip from event.viewer.ip")
    for lid in ("ProftestFunction", "SubmitFunction"):
        env = props(lid).get("Environment", {}).get("Variables", {})
        check(env.get("LANDING_EDGE_SECRET") == edge_ref, f"{lid}: LANDING_EDGE_SECRET from EdgeSecret")
        check(env.get("LANDING_IP_HASH_KEY") == {"Fn::Sub": "{{resolve:secretsmanager:${IpHashKeySecret}:SecretString}}"},
              f"{lid}: LANDING_IP_HASH_KEY from IpHashKeySecret")
        check(env.get("CORS_ALLOWED_ORIGINS") == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]},
              f"{lid}: CORS_ALLOWED_ORIGINS is the AllowedOrigins list")
    genv = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    check(genv.get("QUOTAS_TABLE") == {"Ref": "QuotasTable"}, "Globals: QUOTAS_TABLE")
    for lid in ("NotifyFunction", "SweeperFunction"):
        stmts = [s for p in props(lid).get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
        check(any(st.get("Resource") == {"Fn::GetAtt": ["QuotasTable", "Arn"]}
                  and "dynamodb:UpdateItem" in (st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")])
                  for st in stmts), f"{lid}: dynamodb:UpdateItem on QuotasTable (the SMS counters)")
    rules = props("SmsProtectConfiguration").get("CountryRuleSet", {}).get("SMS", [])
    codes = gen_sms_protect.countries(root)
    check(sorted(r.get("CountryCode") for r in rules) == codes,
          "SmsProtectConfiguration: one rule per country of infra/sms-countries.txt (run infra/gen_sms_protect.py)")
    joined = {"Fn::Join": [",", {"Ref": "SmsAllowedCountries"}]}
    for r in rules:
        c = r.get("CountryCode")
        check(r.get("ProtectStatus") == {"Fn::If": [f"SmsAllow{c}", "ALLOW", "BLOCK"]},
              f"SmsProtectConfiguration: {c} must be ALLOW only when in SmsAllowedCountries")
        member = {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Fn::Split": [c, joined]}]}, joined]}]}
        check(sam.get("Conditions", {}).get(f"SmsAllow{c}") == member,
              f"Conditions: SmsAllow{c} must test membership of {c} in SmsAllowedCountries")
    for env, values in envs.items():
        allowed = set(values.get("SmsAllowedCountries", []))
        check(allowed <= set(codes), f"[{env}] SmsAllowedCountries {sorted(allowed)} has codes without a rule")

    # Email events: every email goes with the stack's configuration set, whose destination
    # publishes the four event types to the topic email-events is subscribed to, and SES may
    # publish there. Without any one of these, bounces and complaints are silently never seen.
    check(genv.get("SES_CONFIGURATION_SET") == {"Ref": "EmailConfigurationSet"},
          "Globals: SES_CONFIGURATION_SET must be the stack's EmailConfigurationSet")
    dest = props("EmailConfigurationSetEvents")
    check(dest.get("ConfigurationSetName") == {"Ref": "EmailConfigurationSet"},
          "EmailConfigurationSetEvents: on EmailConfigurationSet")
    ev = dest.get("EventDestination", {})
    check(ev.get("Enabled") is True and {"delivery", "bounce", "complaint", "reject"} <= set(ev.get("MatchingEventTypes", [])),
          "EmailConfigurationSetEvents: enabled for delivery, bounce, complaint and reject")
    check(ev.get("SnsDestination", {}).get("TopicARN") == {"Ref": "EmailEventsTopic"},
          "EmailConfigurationSetEvents: to EmailEventsTopic")
    subscribed = [e.get("Properties", {}).get("Topic") for e in props("EmailEventsFunction").get("Events", {}).values()
                  if e.get("Type") == "SNS"]
    check(subscribed == [{"Ref": "EmailEventsTopic"}], "EmailEventsFunction: subscribed to EmailEventsTopic")
    policy = props("EmailEventsTopicPolicy")
    check(policy.get("Topics") == [{"Ref": "EmailEventsTopic"}]
          and any(st.get("Principal") == {"Service": "ses.amazonaws.com"} and st.get("Action") == "sns:Publish"
                  for st in policy.get("PolicyDocument", {}).get("Statement", [])),
          "EmailEventsTopicPolicy: ses.amazonaws.com may publish to EmailEventsTopic")

    # Alarms: every one tells the topic; each metric of our namespace is one the code emits (an
    # alarm on a metric nobody writes is silent forever); the no-lead alarm counts an hour
    # without any data point as breaching.
    emitted = set(re.findall(r'"([A-Z][A-Za-z]+)"', (root / "lib/telemetry/src/emf.rs").read_text()))
    alarms = {lid: r["Properties"] for lid, r in R.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}
    check(len(alarms) >= 8, f"expected the eight alarms of README \"Alarms\", found {sorted(alarms)}")
    for lid, a in alarms.items():
        check(a.get("AlarmActions") == [{"Ref": "AlarmTopic"}], f"{lid}: AlarmActions must be [!Ref AlarmTopic]")
        ours = [a] + [m.get("MetricStat", {}).get("Metric", {}) for m in a.get("Metrics", [])]
        for m in ours:
            ns = m.get("Namespace")
            if ns == {"Fn::Sub": "Landing/${AWS::StackName}"}:
                check(m.get("MetricName") in emitted,
                      f"{lid}: metric {m.get('MetricName')} is not one lib/telemetry/src/emf.rs emits")
    quiet = alarms.get("NoLeadsAlarm", {})
    check(quiet.get("TreatMissingData") == "breaching", "NoLeadsAlarm: TreatMissingData breaching (a dead intake emits nothing)")
    check("FILL(" in json.dumps(quiet.get("Metrics", [])), "NoLeadsAlarm: FILL the hours without data with 0")
    check(genv.get("METRICS_NAMESPACE") == {"Fn::Sub": "Landing/${AWS::StackName}"},
          "Globals: METRICS_NAMESPACE must be the alarms' namespace")

    # Tables: CloudFormation-named, PITR on, lead data retained.
    for lid, r in R.items():
        if r.get("Type") == "AWS::DynamoDB::Table":
            p = r["Properties"]
            check("TableName" not in p, f"{lid}: no fixed TableName (two stacks must coexist)")
            check(p.get("BillingMode") == "PAY_PER_REQUEST", f"{lid}: on-demand billing")
            check(p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, f"{lid}: PITR")
    for lid in ("LeadsTable", "NotificationsTable", "TrackingTable", "TokensTable"):
        check(R.get(lid, {}).get("DeletionPolicy") == "Retain" and R.get(lid, {}).get("UpdateReplacePolicy") == "Retain", f"{lid}: Retain")

    # No credentials in plain text: nothing that looks like a token/secret in the environment.
    secret = r"(ACCESS|REFRESH)_TOKEN|CLIENT_SECRET|PASSWORD|API_KEY"
    for lid in fns:
        for k in props(lid).get("Environment", {}).get("Variables", {}):
            check(not re.search(secret, k), f"{lid}: {k} must come from Secrets Manager")
    for k in sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}):
        check(not re.search(secret, k), f"Globals: {k} must come from Secrets Manager")


def check(template: Path, samconfig: Path, out_dir: Path, root: Path = ROOT,
          out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> list[str]:
    """Runs steps 2-4; returns the failures (also printed to `err` as they are found). `root` is
    where the functions' CodeUri folders are, so a copy of the template can live elsewhere."""
    errors: list[str] = []

    def fail(msg: str) -> None:
        errors.append(msg)
        print(f"FAIL: {msg}", file=err)

    sam = template_info.load(template)
    with open(samconfig, "rb") as f:
        cfg = tomllib.load(f)
    envs = check_samconfig(sam, cfg, fail)
    translated = translate(sam, envs, out_dir, fail, out)
    check_traps(sam, envs, translated, root, fail)
    return errors


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    template = Path(argv[1]) if len(argv) > 1 else ROOT / "template.yaml"
    samconfig = Path(argv[2]) if len(argv) > 2 else ROOT / "samconfig.toml"
    errors = check(template, samconfig, out_dir)
    if errors:
        print(f"{len(errors)} template check(s) failed", file=sys.stderr)
        return 1
    print("trap checks: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
