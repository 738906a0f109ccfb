"""The deploy rehearsal, offline: template.yaml deployed to the moto emulator, its resources
checked against the template, the seven functions run with exactly the environment the stack
gives them, and `landing-ops smoke` through the whole path. Every test before this one creates
its tables from Rust code; this is what proves that the template and the code agree.

  ./infra/with-moto.sh .venv/bin/python infra/rehearse.py      (infra/check.sh runs it)

1. SAM -> CloudFormation with SAM's own translator (the dev environment of samconfig.toml,
   NotifyDelay 3s), then CreateStack on moto.
2. What moto's CloudFormation cannot create is said by name. Types that make its CreateStack
   fail (CloudFront, the SMS protect configuration) are taken out with what depends on them
   before the call; types it skips (secrets, the schedule group, alarms, the HTTP API, …) are
   listed after. Secrets, the schedule group and the SES configuration set are then created
   through their own APIs as the template declares them, because the functions need them; the
   rest is checked structurally by infra/check_template.py.
3. Every table (keys, indexes and their projections, stream, TTL), queue, role, function,
   event source mapping, topic and bucket the stack created is compared with the template.
4. Each function's environment is the one moto's stack gave it, completed only where moto
   dropped a variable that names a resource it skipped (resolved to the stand-in) or left a
   dynamic reference unresolved; its variable names must be exactly the template's. Added for
   the emulators alone: AWS_ENDPOINT_URL, dummy credentials and AMOCRM_BASE_URL (the fake).
5. `cargo lambda watch -p <package>` serves each function with its environment; each answers
   one harmless invocation first (cargo lambda watch builds a function on its first request).
   A small HTTP stand-in for API Gateway maps the API's routes to their functions; a "platform" thread
   does what moto does not: it fires each one-shot schedule when due (invoking notify with the
   schedule's own Input) and feeds crm-sync the INSERT records of the leads stream (moto's own
   mapping answers for Lambda with a canned result and empties the shard, so the thread reads
   new items from the table and builds the NEW_IMAGE records AWS would deliver).
6. `landing-ops --stack … smoke` posts one lead per form and checks rows, schedule, SMS and
   email sent, deal in the fake AmoCRM; then email-events gets SES's delivery event for the
   ExpressCourse email (moto's SES publishes none), `landing-ops report`, the emails'
   unsubscribe link through the API route, the sweeper once, and the functions' EMF lines.

Exits 1 with every failure printed (FAIL: …).
"""

import datetime
import decimal
import hashlib
import hmac
import http.server
import io
import json
import os
import random
import re
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
import uuid
import zipfile
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import boto3  # noqa: E402
from samcli.yamlhelper import yaml_parse  # noqa: E402

import check_template  # noqa: E402
import template_info  # noqa: E402

ROOT = template_info.ROOT
MOTO = os.environ.get("MOTO_ENDPOINT", "")
REGION = "eu-central-1"
# CreateStack on moto fails outright on these (it cannot even read their attributes).
BREAKS_MOTO = {
    "AWS::SMSVOICE::ProtectConfiguration",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::Function",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
}
ORIGIN = "https://dev.school.example.kz"
FAILURES: list[str] = []


def fail(msg: str) -> None:
    FAILURES.append(msg)
    print(f"FAIL: {msg}", flush=True)


def check(cond, msg: str) -> None:
    if not cond:
        fail(msg)


def say(msg: str) -> None:
    print(msg, flush=True)


def client(service: str):
    return boto3.client(service, endpoint_url=MOTO, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refs(node):
    """Logical ids a CloudFormation value refers to."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                yield v
            elif k == "Fn::GetAtt":
                yield v[0] if isinstance(v, list) else v.split(".")[0]
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                yield from re.findall(r"\$\{([A-Za-z0-9]+)", text)
                if not isinstance(v, str):
                    yield from refs(v[1])
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for x in node:
            yield from refs(x)


def translated_template() -> tuple[dict, dict]:
    sam = yaml_parse((ROOT / "template.yaml").read_text())
    cfg = tomllib.loads((ROOT / "samconfig.toml").read_text())
    envs = check_template.check_samconfig(sam, cfg, fail)
    params = dict(envs["dev"])
    params["NotifyDelay"] = "3s"
    # The smoke test expects its SMS whatever the hour the rehearsal runs at.
    params["NotifySmsWindow"] = "always"
    out = Path(tempfile.mkdtemp(prefix="rehearsal-"))
    cfn = check_template.translate(sam, {"dev": params}, out, fail, sys.stdout)["dev"]
    return cfn, params


def without_what_breaks_moto(cfn: dict) -> tuple[dict, set]:
    removed = {lid for lid, r in cfn["Resources"].items() if r["Type"] in BREAKS_MOTO}
    changed = True
    while changed:
        changed = False
        for lid, r in cfn["Resources"].items():
            if lid not in removed and set(refs(r)) & removed:
                removed.add(lid)
                changed = True
    t = json.loads(json.dumps(cfn))
    t["Resources"] = {k: v for k, v in t["Resources"].items() if k not in removed}
    t["Outputs"] = {k: v for k, v in t.get("Outputs", {}).items() if not (set(refs(v)) & removed)}
    return t, removed


def deploy(cfn: dict, params: dict, stack: str) -> dict:
    s3 = client("s3")
    s3.create_bucket(Bucket="offline-check", CreateBucketConfiguration={"LocationConstraint": REGION})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket="offline-check", Key="code.zip", Body=buf.getvalue())
    cf = client("cloudformation")
    cf.create_stack(
        StackName=stack, TemplateBody=json.dumps(cfn), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": ",".join(v) if isinstance(v, list) else str(v)}
                    for k, v in params.items()])
    for _ in range(120):
        st = cf.describe_stacks(StackName=stack)["Stacks"][0]
        if not st["StackStatus"].endswith("_IN_PROGRESS"):
            break
        time.sleep(0.5)
    check(st["StackStatus"] == "CREATE_COMPLETE", f"stack {stack}: {st['StackStatus']} {st.get('StackStatusReason')}")
    return {r["LogicalResourceId"]: r for r in cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]}


def stand_ins(cfn: dict, created: dict, stack: str) -> dict:
    """Creates, through their own APIs, the resources moto's CloudFormation skipped that the
    functions need; returns logical id -> {"ref": …, "value": …}."""
    out = {}
    sm, sch = client("secretsmanager"), client("scheduler")
    for lid, r in cfn["Resources"].items():
        if lid in created:
            continue
        props = r.get("Properties", {})
        if r["Type"] == "AWS::SecretsManager::Secret":
            gen = props.get("GenerateSecretString")
            if gen:
                length = gen.get("PasswordLength", 32)
                value = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(length))
            else:
                value = props.get("SecretString", "")
            arn = sm.create_secret(Name=f"{stack}-{lid}", SecretString=value)["ARN"]
            out[lid] = {"ref": arn, "value": value}
        elif r["Type"] == "AWS::SES::ConfigurationSet":
            name = f"{stack}-{lid}"
            client("sesv2").create_configuration_set(ConfigurationSetName=name)
            out[lid] = {"ref": name, "value": name}
        elif r["Type"] == "AWS::Scheduler::ScheduleGroup":
            name = f"{stack}-{lid}"
            sch.create_schedule_group(Name=name)
            out[lid] = {"ref": name, "value": name}
    return out


def check_tables(cfn: dict, created: dict) -> dict:
    ddb = client("dynamodb")
    names = {}
    ttl_by_declaration: list[str] = []
    for lid, r in cfn["Resources"].items():
        if r["Type"] != "AWS::DynamoDB::Table":
            continue
        if lid not in created:
            fail(f"{lid}: the stack did not create it")
            continue
        name = created[lid]["PhysicalResourceId"]
        names[lid] = name
        p = r["Properties"]
        d = ddb.describe_table(TableName=name)["Table"]
        check(d["KeySchema"] == p["KeySchema"], f"{lid}: key schema {d['KeySchema']} != {p['KeySchema']}")
        want = {g["IndexName"]: (g["KeySchema"], g["Projection"]["ProjectionType"]) for g in p.get("GlobalSecondaryIndexes", [])}
        got = {g["IndexName"]: (g["KeySchema"], g["Projection"]["ProjectionType"]) for g in d.get("GlobalSecondaryIndexes", [])}
        check(got == want, f"{lid}: indexes {got} != template {want}")
        view = p.get("StreamSpecification", {}).get("StreamViewType")
        check(d.get("StreamSpecification", {}).get("StreamViewType") == view, f"{lid}: stream {d.get('StreamSpecification')} != {view}")
        spec = p.get("TimeToLiveSpecification")
        got_ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"].get("AttributeName")
        if spec and got_ttl is None:
            # moto's CloudFormation does not apply TimeToLiveSpecification: check the declaration
            # against what the code writes (lib/aws-dynamo: the `ttl` attribute, epoch seconds).
            check(spec == {"AttributeName": "ttl", "Enabled": True}, f"{lid}: TimeToLiveSpecification {spec}")
            ttl_by_declaration.append(lid)
        else:
            check(got_ttl == (spec or {}).get("AttributeName"), f"{lid}: TTL {got_ttl} != {spec}")
        check(d.get("BillingModeSummary", {}).get("BillingMode", "PAY_PER_REQUEST") == "PAY_PER_REQUEST", f"{lid}: on demand")
    say(f"tables: {len(names)} as the template declares them (keys, indexes, projections, stream, TTL)")
    if ttl_by_declaration:
        say(f"  moto's CloudFormation does not apply TTL; declared as the code writes it: {', '.join(ttl_by_declaration)}")
    return names


def function_envs(cfn: dict, created: dict, extra: dict) -> dict:
    """Function logical id -> its environment: moto's, completed where moto could not."""
    lam = client("lambda")
    envs = {}
    for lid, r in cfn["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        declared = r["Properties"].get("Environment", {}).get("Variables", {})
        cfg = lam.get_function_configuration(FunctionName=created[lid]["PhysicalResourceId"])
        # Lambda's variables are strings; moto keeps a Number parameter's value as a number.
        env = {k: str(v) for k, v in cfg.get("Environment", {}).get("Variables", {}).items()}
        for key, value in declared.items():
            if isinstance(value, dict) and "Fn::If" in value:
                continue  # an optional variable: moto resolved its condition
            targets = set(refs(value))
            if key not in env and targets & set(extra):
                (target,) = targets & set(extra)
                env[key] = extra[target]["ref"]
        for key, value in env.items():
            for target in re.findall(r"\{\{resolve:secretsmanager:\$\{([A-Za-z0-9]+)\}:SecretString\}\}", value):
                env[key] = extra[target]["value"]
        declared_keys = {k for k, v in declared.items() if not (isinstance(v, dict) and "Fn::If" in v)}
        missing = declared_keys - set(env)
        check(not missing, f"{lid}: the template's variables {sorted(missing)} are not in its environment")
        check(not any("{{resolve" in v or "${" in v for v in env.values()), f"{lid}: an unresolved value in {env}")
        envs[lid] = env
    say(f"environments: {len(envs)} functions, each with exactly the template's variables")
    return envs


def check_the_rest(cfn: dict, created: dict, tables: dict) -> None:
    sqs, iam, sns, s3, lam = client("sqs"), client("iam"), client("sns"), client("s3"), client("lambda")
    for lid, r in cfn["Resources"].items():
        phys = created.get(lid, {}).get("PhysicalResourceId")
        t = r["Type"]
        if t == "AWS::SQS::Queue":
            check(phys and sqs.get_queue_attributes(QueueUrl=phys, AttributeNames=["QueueArn"]), f"{lid}: queue")
        elif t == "AWS::IAM::Role":
            check(phys and iam.get_role(RoleName=phys), f"{lid}: role")
        elif t == "AWS::SNS::Topic":
            check(phys and sns.get_topic_attributes(TopicArn=phys), f"{lid}: topic")
        elif t == "AWS::S3::Bucket":
            check(phys and s3.head_bucket(Bucket=phys), f"{lid}: bucket")
    stream = client("dynamodb").describe_table(TableName=tables["LeadsTable"])["Table"]["LatestStreamArn"]
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    crm = created["CrmSyncFunction"]["PhysicalResourceId"]
    check(any(m["EventSourceArn"] == stream and m["FunctionArn"].endswith(crm) for m in mappings),
          "CrmSyncFunction: no event source mapping on the leads table's stream")
    say("queues, roles, topic, bucket and the leads stream's mapping onto crm-sync: as declared")


class Watch:
    """`cargo lambda watch -p PACKAGE` serving one function with its environment."""

    def __init__(self, package: str, binary: str, env: dict, logs: Path):
        self.binary, self.port = binary, free_port()
        env_file = logs / f"{binary}.env"
        # Quoted: values hold `,`, `=` and `+` (RUST_LOG, CORS_ALLOWED_ORIGINS, SMS_ALLOWED_PREFIXES).
        env_file.write_text("".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"\n'
                                    for k, v in env.items()))
        self.log = logs / f"{binary}.log"
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/cargo-lambda"), "lambda", "watch", "-p", package, "--bin", binary,
             "-A", "127.0.0.1", "-P", str(self.port), "--ignore-changes", "--env-file", str(env_file)],
            cwd=ROOT, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def invoke(self, payload: dict) -> dict:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/{self.binary}/invocations"
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read() or b"null")

    def warm(self, event: dict | None) -> None:
        """One harmless invocation (`event`, or for a function URL a GET of a route it does not have),
        so that the build `cargo lambda watch` does on a function's first request is over before
        the smoke's requests (30 s each, API Gateway's own limit) start the clock."""
        if event is not None:
            self.invoke(event)
            return
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/lambda-url/{self.binary}/warm-up", timeout=900).read()
        except urllib.error.HTTPError:
            pass  # a 404/405 is an answer: the function is built and running

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def api_stand_in(routes: dict) -> tuple[http.server.ThreadingHTTPServer, int]:
    """API Gateway's part: (method, path) to the function URL of the function of its route."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.forward("GET")

        def do_POST(self):
            self.forward("POST")

        def forward(self, method: str):
            target = routes.get((method, self.path.split("?")[0]))
            if not target:
                self.send_response(404)
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("content-length", 0))) if method == "POST" else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            req = urllib.request.Request(target + self.path, data=body, headers=headers, method=method)
            try:
                resp = urllib.request.urlopen(req, timeout=120)
                status, data, rh = resp.status, resp.read(), resp.headers
            except urllib.error.HTTPError as e:
                status, data, rh = e.code, e.read(), e.headers
            self.send_response(status)
            for k, v in rh.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def jsonable(v):
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        import base64
        return base64.b64encode(v).decode()
    raise TypeError(type(v))


# The functions behind API routes, warmed over their function URL with a route they do not have.
HTTP_FUNCTIONS = {"ProftestFunction", "SubmitFunction", "UnsubscribeFunction"}
# Events that change nothing: an empty stream batch, a schedule for a lead that does not exist, a
# sweep of empty tables.
WARM_UP_EVENTS = {
    "CrmSyncFunction": {"Records": []},
    "NotifyFunction": {"leadId": str(uuid.uuid4()), "correlationId": "rehearsal-warm-up"},
    "SweeperFunction": {},
    "EmailEventsFunction": {"Records": []},
}


def sns_of_ses(doc: dict) -> dict:
    """An SNS event carrying one SES event document, as the configuration set's topic delivers it."""
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:eu-central-1:123456789012:t:1",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "arn:aws:sns:eu-central-1:123456789012:t",
                "Subject": None, "Message": json.dumps(doc), "Timestamp": "2026-12-01T06:10:04.000Z",
                "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "https://example.invalid/c.pem",
                "UnsubscribeUrl": "https://example.invalid/u", "MessageAttributes": {}}}]}


class Platform(threading.Thread):
    """What AWS would do that moto does not: fire due one-shot schedules, run the stream mapping."""

    def __init__(self, group: str, table: str, stream_arn: str, notify: Watch, crm: Watch):
        super().__init__(daemon=True)
        self.group, self.table, self.stream_arn, self.notify, self.crm = group, table, stream_arn, notify, crm
        self.fired, self.stop_flag, self.seen = set(), threading.Event(), set()
        self.notified = self.synced_batches = 0
        self.errors: list[str] = []

    def run(self):
        sch, ddb = client("scheduler"), client("dynamodb")
        described = ddb.describe_table(TableName=self.table)["Table"]
        self.key_names = [k["AttributeName"] for k in described["KeySchema"]]
        while not self.stop_flag.is_set():
            try:
                for s in sch.list_schedules(GroupName=self.group).get("Schedules", []):
                    if s["Name"] in self.fired:
                        continue
                    full = sch.get_schedule(GroupName=self.group, Name=s["Name"])
                    at = re.match(r"at\((.+)\)", full["ScheduleExpression"]).group(1)
                    due = datetime.datetime.fromisoformat(at).replace(tzinfo=datetime.timezone.utc)
                    if due <= datetime.datetime.now(datetime.timezone.utc):
                        self.fired.add(s["Name"])
                        self.notify.invoke(json.loads(full["Target"]["Input"]))
                        self.notified += 1
                # moto's own mapping "invokes" crm-sync with a canned answer and empties the
                # shard, so the stream has nothing left to read: the leads table itself is read
                # instead, and each new item becomes the INSERT record (NEW_IMAGE) AWS delivers.
                fresh = []
                for page in ddb.get_paginator("scan").paginate(TableName=self.table):
                    for item in page["Items"]:
                        keys = {k: item[k] for k in self.key_names}
                        ident = json.dumps(keys, sort_keys=True, default=jsonable)
                        if ident not in self.seen:
                            self.seen.add(ident)
                            fresh.append({
                                "eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventVersion": "1.1",
                                "eventSource": "aws:dynamodb", "awsRegion": REGION, "eventSourceARN": self.stream_arn,
                                "dynamodb": {"ApproximateCreationDateTime": time.time(), "Keys": keys, "NewImage": item,
                                             "SequenceNumber": str(len(self.seen)), "SizeBytes": len(ident),
                                             "StreamViewType": "NEW_IMAGE"}})
                if fresh:
                    answer = self.crm.invoke(json.loads(json.dumps({"Records": fresh}, default=jsonable)))
                    self.synced_batches += 1
                    if answer and answer.get("batchItemFailures"):
                        self.errors.append(f"crm-sync reported failures: {answer}")
            except Exception as e:  # noqa: BLE001 — reported, and the loop goes on like the platform would
                self.errors.append(repr(e))
            self.stop_flag.wait(1.0)


def main() -> int:
    if not MOTO:
        print("infra/rehearse.py: MOTO_ENDPOINT is not set; run it through ./infra/with-moto.sh", file=sys.stderr)
        return 2
    stack = "rehearsal-" + "".join(random.choice(string.ascii_lowercase) for _ in range(6))
    say(f"==> SAM -> CloudFormation (dev parameters, NotifyDelay 3s), CreateStack {stack} on moto")
    cfn, params = translated_template()
    deployable, removed = without_what_breaks_moto(cfn)
    say(f"not deployable on moto, taken out with what depends on them (checked by check_template.py): {', '.join(sorted(removed))}")
    created = deploy(deployable, params, stack)
    skipped = {lid: r["Type"] for lid, r in deployable["Resources"].items() if lid not in created}
    say("skipped by moto's CloudFormation (checked structurally by check_template.py):")
    for lid, t in sorted(skipped.items(), key=lambda kv: kv[1]):
        say(f"  {t:40} {lid}")
    extra = stand_ins(deployable, created, stack)
    say(f"created through their own APIs as the template declares them: {', '.join(sorted(extra))}")

    tables = check_tables(deployable, created)
    check_the_rest(deployable, created, tables)
    envs = function_envs(deployable, created, extra)
    if FAILURES:
        return 1

    # The operator's steps after a deploy (DEPLOY.md §2, §5), done on the emulators.
    fake = subprocess.Popen([str(bin_path("amocrm-fake"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hello = json.loads(fake.stdout.readline())
    client("secretsmanager").put_secret_value(SecretId=extra["AmoCrmSecret"]["ref"],
                                              SecretString=json.dumps({"AMOCRM_ACCESS_TOKEN": hello["token"]}))
    domain = params["EmailFrom"].split("@")[1]
    client("sesv2").create_email_identity(EmailIdentity=domain)
    emulators = {"AWS_ENDPOINT_URL": MOTO, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_REGION": REGION, "AMOCRM_BASE_URL": hello["baseUrl"]}

    logs = Path(tempfile.mkdtemp(prefix="rehearsal-logs-"))
    fns = {f.logical_id: f for f in template_info.functions(yaml_parse((ROOT / "template.yaml").read_text()))}
    watches = {lid: Watch(f.package, f.binary, {**envs[lid], **emulators}, logs) for lid, f in fns.items()}
    deadline = time.time() + 900
    while not all(w.ready() for w in watches.values()):
        if time.time() > deadline or any(w.proc.poll() is not None for w in watches.values()):
            fail(f"cargo lambda watch did not start; logs in {logs}")
            return 1
        time.sleep(0.5)
    started = time.time()
    for lid, w in watches.items():
        try:
            w.warm(WARM_UP_EVENTS.get(lid) if lid not in HTTP_FUNCTIONS else None)
        except Exception as e:  # noqa: BLE001 — reported with the function's log, then stop
            fail(f"{fns[lid].binary} did not answer its warm-up invocation: {e}; log {w.log}")
            return 1
    say(f"functions built and answering under cargo lambda watch in {time.time() - started:.0f} s")
    url_of = lambda lid: f"http://127.0.0.1:{watches[lid].port}/lambda-url/{fns[lid].binary}"  # noqa: E731
    server, api_port = api_stand_in({
        ("POST", "/api/landing/proftest"): url_of("ProftestFunction"),
        ("POST", "/api/landing/submit"): url_of("SubmitFunction"),
        ("GET", "/api/landing/unsubscribe"): url_of("UnsubscribeFunction"),
        ("POST", "/api/landing/unsubscribe"): url_of("UnsubscribeFunction"),
    })
    stream_arn = client("dynamodb").describe_table(TableName=tables["LeadsTable"])["Table"]["LatestStreamArn"]
    platform = Platform(extra["NotifyScheduleGroup"]["ref"], tables["LeadsTable"], stream_arn, watches["NotifyFunction"], watches["CrmSyncFunction"])
    platform.start()
    # moto skipped the schedule group, so the stack has no ScheduleGroupName output to read.
    ops_env = {**os.environ, **emulators, "SCHEDULE_GROUP": extra["NotifyScheduleGroup"]["ref"]}
    try:
        say("==> landing-ops smoke (one lead per form, end to end)")
        smoke = subprocess.run([str(bin_path("landing-ops")), "--stack", stack, "smoke", "--api", f"http://127.0.0.1:{api_port}",
                                "--origin", ORIGIN, "--timeout", os.environ.get("REHEARSAL_SMOKE_TIMEOUT", "6m")], env=ops_env, capture_output=True, text=True)
        say(smoke.stdout + smoke.stderr)
        check(smoke.returncode == 0, "landing-ops smoke failed")
        check(platform.notified >= 2, f"the platform fired {platform.notified} schedules, expected the two smoke leads'")
        check(not platform.errors, f"the platform: {platform.errors}")
        check(platform.synced_batches >= 1, f"the platform fed crm-sync {platform.synced_batches} batches: "
              f"{len(platform.seen)} leads seen in {tables['LeadsTable']}")

        # SES's delivery event for the ExpressCourse email, as the topic would hand it to
        # email-events (moto's SES publishes no events): it lands on the row, and the report
        # counts it.
        course = re.search(r"expresscourse: 201, lead ([0-9a-f-]{36})", smoke.stdout)
        rows_of = client("dynamodb").query(TableName=tables["NotificationsTable"], IndexName="by-lead",
                                           KeyConditionExpression="lead_id = :l",
                                           ExpressionAttributeValues={":l": {"S": course.group(1) if course else ""}})["Items"]
        email_row = next((i for i in rows_of if i.get("channel", {}).get("S") == "email"), None)
        check(email_row is not None, f"the ExpressCourse lead's email row: {rows_of}")
        if email_row:
            nid, to = email_row["id"]["S"], email_row["recipient"]["S"]
            doc = {"eventType": "Delivery", "mail": {"timestamp": "2026-12-01T06:10:00.000Z", "destination": [to],
                                                     "tags": {"notificationId": [nid]}},
                   "delivery": {"timestamp": "2026-12-01T06:10:03.520Z", "recipients": [to], "smtpResponse": "250 OK"}}
            answer = watches["EmailEventsFunction"].invoke(sns_of_ses(doc))
            check(answer == {"recorded": 1, "onRows": 1, "listed": 0, "ignored": 0}, f"email-events answered {answer}")
            item = client("dynamodb").get_item(TableName=tables["NotificationsTable"], Key={"id": {"S": nid}})["Item"]
            check(item.get("delivered_at", {}).get("S", "").startswith("2026-12-01T06:10:03.52"), f"delivered_at: {item}")
            say(f"email-events: SES's delivery event for the ExpressCourse email recorded on its row ({answer})")

        report = subprocess.run([str(bin_path("landing-ops")), "--stack", stack, "report", "--since", "1d", "--format", "json"],
                                env=ops_env, capture_output=True, text=True)
        check(report.returncode == 0, f"landing-ops report: {report.stderr}")
        rows = {r["sourceCampaign"]: r for r in json.loads(report.stdout or "[]")}
        # One person, two forms: the ExpressCourse follow-up supersedes the ProfTest one.
        for campaign, state, delivered in (("proftest_smoke", "suppressed", 0), ("expresscourse_smoke", "sent", 1)):
            r = rows.get(campaign, {})
            check(r.get("leads") == 1 and r.get("sms", {}).get(state) == 1 and r.get("email", {}).get(state) == 1
                  and r.get("email", {}).get("delivered") == delivered
                  and r.get("crm", {}).get("synced") == 1, f"report {campaign}: {r}")

        # The emails' one-click unsubscribe, through the API route: the token as the notify
        # function signs it (lib/core/src/unsubscribe.rs), with the stack's generated secret.
        found = re.search(r"expresscourse: 201, lead ([0-9a-f-]{36})", smoke.stdout)
        lead_id = uuid.UUID(found.group(1)) if found else uuid.UUID(int=0)
        secret = extra["UnsubscribeSecret"]["value"].encode()
        token = lead_id.hex + hmac.new(secret, b"unsubscribe:" + lead_id.bytes, hashlib.sha256).digest()[:16].hex()
        base = f"http://127.0.0.1:{api_port}/api/landing/unsubscribe"
        page = urllib.request.urlopen(f"{base}?token={token}", timeout=60)
        html = page.read().decode()
        check(page.status == 200 and 'method="post"' in html, f"unsubscribe GET: {page.status} {html[:200]}")
        listed = client("dynamodb").scan(TableName=tables["SuppressionTable"])["Items"]
        check(not listed, f"a GET of the link changed the suppression list: {listed}")
        req = urllib.request.Request(f"{base}?token={token}", data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
        check(answer == {"status": "unsubscribed"}, f"unsubscribe POST answered {answer}")
        listed = client("dynamodb").scan(TableName=tables["SuppressionTable"])["Items"]
        check([i.get("reason", {}).get("S") for i in listed] == ["unsubscribed"], f"suppression list after the POST: {listed}")
        bad = urllib.request.Request(f"{base}?token={'0' * 64}", data=b"", method="POST", headers={"accept": "application/json"})
        try:
            urllib.request.urlopen(bad, timeout=60)
            check(False, "a forged token was accepted")
        except urllib.error.HTTPError as e:
            check(e.code == 400, f"a forged token got {e.code}")
        say(f"unsubscribe: GET shows the button and lists nothing; the one-click POST lists the address ({len(listed)} item); a forged token gets 400")

        swept = watches["SweeperFunction"].invoke({})
        check(isinstance(swept, dict), f"sweeper answered {swept}")
        say(f"sweeper: {json.dumps(swept)}")

        metrics = [json.loads(l) for w in watches.values() for l in w.log.read_text(errors="replace").splitlines()
                   if l.startswith("{") and '"_aws"' in l]
        names = {m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for m in metrics}
        namespaces = {m["_aws"]["CloudWatchMetrics"][0]["Namespace"] for m in metrics}
        check({"LeadsAccepted", "NotificationsSent", "CrmSynced", "IntakeLatency"} <= names, f"EMF metrics seen: {sorted(names)}")
        check(namespaces == {f"Landing/{stack}"}, f"EMF namespaces {namespaces}")
        say(f"EMF metric lines: {len(metrics)} ({', '.join(sorted(names))}) in Landing/{stack}")
    finally:
        platform.stop_flag.set()
        server.shutdown()
        for w in watches.values():
            w.stop()
        fake.stdin.close()
        deals = [json.loads(l) for l in fake.stdout.read().splitlines() if l.strip()]
        fake.wait(timeout=10)
    # Both smoke leads are one person (same phone and email): one open deal, merged.
    check(len(deals) == 1, f"the fake AmoCRM holds {len(deals)} deals, expected the smoke person's one")
    if FAILURES:
        print(f"{len(FAILURES)} failure(s); function logs in {logs}", file=sys.stderr)
        return 1
    say(f"OK: the stack deploys on moto as declared, and its {len(watches)} functions, run with its environment, take a lead per form to SMS, email and one merged deal")
    return 0


def bin_path(name: str) -> Path:
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                     cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    return Path(meta["target_directory"]) / "debug" / name


if __name__ == "__main__":
    sys.exit(main())
