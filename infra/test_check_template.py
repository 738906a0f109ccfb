"""The template checks catch the traps they claim to: check_template.check() passes on the real
template and samconfig, and fails, for the right reason, on copies with one trap each.

  .venv/bin/python infra/test_check_template.py     (infra/check-template.sh runs it)
"""

import io
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no infra/__pycache__ in the work tree

import check_template  # noqa: E402

ROOT = check_template.ROOT
TEMPLATE = (ROOT / "template.yaml").read_text()
SAMCONFIG = (ROOT / "samconfig.toml").read_text()


def mutate(text: str, old: str, new: str) -> str:
    # Exactly one occurrence: if the template changes shape, the test must be updated rather
    # than silently checking an unmutated copy.
    assert text.count(old) == 1, f"expected exactly one {old!r} to mutate, found {text.count(old)}"
    return text.replace(old, new)


class CheckTemplateTest(unittest.TestCase):
    def run_checks(self, template: str = TEMPLATE, samconfig: str = SAMCONFIG) -> list[str]:
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "template.yaml").write_text(template)
            (d / "samconfig.toml").write_text(samconfig)
            return check_template.check(d / "template.yaml", d / "samconfig.toml", d,
                                        root=ROOT, out=io.StringIO(), err=io.StringIO())

    def assert_fails_with(self, errors: list[str], needle: str) -> None:
        self.assertTrue(any(needle in e for e in errors), f"no failure mentioning {needle!r} in {errors}")

    def test_the_real_template_and_samconfig_pass(self):
        self.assertEqual(self.run_checks(), [])

    def test_a_singular_rate_unit_fails(self):
        t = mutate(TEMPLATE, "ScheduleExpression: rate(5 minutes)", "ScheduleExpression: rate(5 minute)")
        self.assert_fails_with(self.run_checks(t), "rate(5 minutes) (plural)")

    def test_a_stream_ref_instead_of_its_arn_fails(self):
        t = mutate(TEMPLATE, "Stream: !GetAtt LeadsTable.StreamArn", "Stream: !Ref LeadsTable")
        self.assert_fails_with(self.run_checks(t), "Stream must be !GetAtt LeadsTable.StreamArn")

    def test_a_binary_its_crate_does_not_build_fails(self):
        t = mutate(TEMPLATE, "Binary: crm-sync", "Binary: crmsync")
        self.assert_fails_with(self.run_checks(t), "CrmSyncFunction: Binary crmsync is not a [[bin]]")

    def test_a_samconfig_override_of_no_parameter_fails(self):
        # A typo'd override name would deploy the parameter's default, silently.
        cfg = mutate(SAMCONFIG, '"LogLevel=info",\n]', '"LogLevl=info",\n]')
        self.assert_fails_with(self.run_checks(samconfig=cfg), "[prod] override LogLevl is not a template parameter")

    def test_a_template_samtranslator_rejects_fails(self):
        t = mutate(TEMPLATE, "Type: ScheduleV2", "Type: ScheduleV3")
        self.assert_fails_with(self.run_checks(t), "samtranslator")


    def test_an_api_behaviour_that_forwards_the_host_header_fails(self):
        t = mutate(TEMPLATE, "OriginRequestPolicyId: b689b0a8-53d0-40ab-baf2-68738e2966ac",
                   "OriginRequestPolicyId: 216adef6-5c7f-47e4-b989-5492eafa07d3")  # Managed-AllViewer
        self.assert_fails_with(self.run_checks(t), "must not forward the viewer's Host header")

    def test_an_alarm_on_a_metric_no_code_emits_fails(self):
        t = mutate(TEMPLATE, "MetricName: CrmFailed\n", "MetricName: CrmFailures\n")
        self.assert_fails_with(self.run_checks(t), "CrmFailedAlarm: metric CrmFailures is not one")

    def test_a_no_lead_alarm_that_ignores_silence_fails(self):
        t = mutate(TEMPLATE, "      TreatMissingData: breaching\n", "      TreatMissingData: notBreaching\n")
        self.assert_fails_with(self.run_checks(t), "NoLeadsAlarm: TreatMissingData breaching")

    def test_a_country_allowed_outright_fails(self):
        t = mutate(TEMPLATE, '{CountryCode: "RU", ProtectStatus: !If [SmsAllowRU, ALLOW, BLOCK]}',
                   '{CountryCode: "RU", ProtectStatus: ALLOW}')
        self.assert_fails_with(self.run_checks(t), "RU must be ALLOW only when in SmsAllowedCountries")

    def test_an_api_behaviour_without_the_viewer_function_fails(self):
        t = mutate(TEMPLATE, "FunctionARN: !GetAtt ApiEdgeFunction.FunctionMetadata.FunctionARN",
                   "FunctionARN: !GetAtt PagesRouteFunction.FunctionMetadata.FunctionARN")
        self.assert_fails_with(self.run_checks(t), "the ApiEdgeFunction on viewer-request")

    def test_senders_without_the_counters_fail(self):
        t = mutate(TEMPLATE, "    Description: Every 5 minutes - send overdue notifications, re-drive stale CRM syncs\n",
                   "    Description: Every 5 minutes - send overdue notifications, re-drive stale CRM syncs\n")
        t = t.replace("            - Sid: SmsQuotas\n              Effect: Allow\n              Action: dynamodb:UpdateItem\n              Resource: !GetAtt QuotasTable.Arn\n", "", 1)
        self.assert_fails_with(self.run_checks(t), "dynamodb:UpdateItem on QuotasTable")

    def test_an_event_destination_without_bounces_fails(self):
        t = mutate(TEMPLATE, "MatchingEventTypes: [delivery, bounce, complaint, reject]",
                   "MatchingEventTypes: [delivery, complaint, reject]")
        self.assert_fails_with(self.run_checks(t), "enabled for delivery, bounce, complaint and reject")

    def test_email_events_listening_to_another_topic_fails(self):
        t = mutate(TEMPLATE, "            Topic: !Ref EmailEventsTopic\n", "            Topic: !Ref AlarmTopic\n")
        self.assert_fails_with(self.run_checks(t), "EmailEventsFunction: subscribed to EmailEventsTopic")

    def test_the_api_viewer_function_overwrites_what_the_viewer_claims(self):
        from samcli.yamlhelper import yaml_parse
        code = yaml_parse(TEMPLATE)["Resources"]["ApiEdgeFunction"]["Properties"]["FunctionCode"]
        event = {"viewer": {"ip": "203.0.113.7"}, "request": {"uri": "/api/landing/proftest", "headers": {
            "host": {"value": "d111.cloudfront.net"},
            "x-landing-viewer-ip": {"value": "6.6.6.6"},
            "x-landing-viewer-host": {"value": "evil.example"}}}}
        script = code + "\nconsole.log(JSON.stringify(handler(%s).headers));" % json.dumps(event)
        out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
        self.assertEqual(out["x-landing-viewer-ip"], {"value": "203.0.113.7"})
        self.assertEqual(out["x-landing-viewer-host"], {"value": "d111.cloudfront.net"})

    def test_the_generated_country_rules_are_what_the_generator_writes(self):
        import gen_sms_protect
        self.assertEqual(gen_sms_protect.render(TEMPLATE, gen_sms_protect.countries()), TEMPLATE,
                         "template.yaml is stale: run python3 infra/gen_sms_protect.py")

    def test_the_page_route_function_maps_every_route_to_its_exported_object(self):
        # Run the CloudFront Function's own code (cloudfront-js is plain ES5 here) with node.
        from samcli.yamlhelper import yaml_parse
        code = yaml_parse(TEMPLATE)["Resources"]["PagesRouteFunction"]["Properties"]["FunctionCode"]
        cases = {
            "/integrator/proftest": "/integrator/proftest/index.html",
            "/integrator/proftest/": "/integrator/proftest/index.html",
            "/integrator/proftest/kenesary": "/integrator/proftest/index.html",
            "/integrator/expresscourse": "/integrator/expresscourse/index.html",
            "/expresscourse": "/expresscourse/index.html",
            "/expresscourse/arystan": "/expresscourse/index.html",
            "/assets/app.0123abcd.css": "/assets/app.0123abcd.css",
            "/integrator/proftest/a/b": "/integrator/proftest/a/b",
            "/api/landing/proftest": "/api/landing/proftest",
        }
        script = code + "\nconsole.log(JSON.stringify(%s.map(function (u) { return handler({request: {uri: u}}).uri; })));" % json.dumps(list(cases))
        out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout
        self.assertEqual(dict(zip(cases, json.loads(out))), cases)


if __name__ == "__main__":
    unittest.main()
