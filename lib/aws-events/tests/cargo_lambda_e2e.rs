//! Six of the Lambdas end to end (all but unsubscribe, which the deploy rehearsal drives), as AWS would run them: `cargo lambda watch` serves the real
//! binaries, `cargo lambda invoke --data-file events/…` invokes them, and every AWS call goes
//! to moto (DynamoDB, Scheduler, SNS, SES, Secrets Manager); AmoCRM is the fake server.
//!
//! Run through `infra/with-moto.sh` (it starts moto and puts `.venv/bin` tools in reach):
//! `./infra/with-moto.sh cargo test -p landing-aws-events --test cargo_lambda_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};
use landing_aws_dynamo::DynamoStore;
use landing_core::domain::{CrmStatus, LeadId, NotificationStatus};
use landing_core::ports::{Inspect, LeadStore};
use serde_json::{Value, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const FIXTURE_LEAD: &str = "01935a7e-8c2a-7b3e-9f00-6a1c2b3d4e5f";

fn cargo_lambda() -> PathBuf {
    let venv = Path::new(ROOT).join(".venv/bin/cargo-lambda");
    assert!(
        venv.exists(),
        "cargo-lambda is not installed: run ./infra/venv.sh (infra/with-moto.sh does)"
    );
    venv
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo lambda watch` with the stack's environment; killed on drop.
struct Watch {
    child: Child,
    port: u16,
}

impl Watch {
    fn start(env: &[(String, String)]) -> Watch {
        let port = free_port();
        let mut cmd = Command::new(cargo_lambda());
        cmd.args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--ignore-changes",
            "--quiet",
        ])
        .current_dir(ROOT)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.arg("--env-var").arg(format!("{k}={v}"));
        }
        let child = cmd.spawn().expect("start cargo lambda watch");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Watch { child, port }
    }

    /// `cargo lambda invoke NAME --data-file FILE`; the function's answer as JSON.
    fn invoke(&self, function: &str, data_file: &Path) -> Value {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(data_file)
            .current_dir(ROOT)
            .output()
            .expect("run cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "invoke {function} failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("invoke {function}: not JSON ({e}): {stdout}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture with the lead id substituted, written to a temp file for `--data-file`.
fn fixture_file(dir: &Path, path: &str, lead: Option<LeadId>) -> PathBuf {
    let mut text = std::fs::read_to_string(Path::new(ROOT).join("events").join(path)).unwrap();
    if let Some(id) = lead {
        text = text.replace(FIXTURE_LEAD, &id.to_string());
    }
    let out = dir.join(path.replace('/', "_"));
    std::fs::File::create(&out)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    out
}

/// An `events/email-events/` fixture for one sent email: its notification id and address in
/// place of the fixture's.
fn ses_fixture(dir: &Path, name: &str, notification: uuid::Uuid, address: &str) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(ROOT).join("events/email-events").join(name))
        .unwrap()
        .replace(
            "0190f3c4-1a2b-7c3d-8e4f-00000000e001",
            &notification.to_string(),
        )
        .replace("lead@fixture.example", address);
    let out = dir.join(format!("ses-{name}"));
    std::fs::write(&out, text).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn the_six_pipeline_lambdas_run_end_to_end_through_cargo_lambda_against_moto() {
    let aws = landing_moto::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let tables = landing_moto::fresh_tables(&dynamo).await;
    let store = DynamoStore::new(dynamo, tables.clone());
    let group = landing_moto::schedule_group(&aws, "e2e-").await;
    let scheduler = aws_sdk_scheduler::Client::new(&aws);
    let prefix = landing_moto::unique("e2e", 16);
    let domain = format!("{prefix}.example.kz");
    landing_moto::ses_identity(&aws, &domain).await;
    let fake = FakeAmo::start(FakeConfig::default());
    let secret = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("{prefix}amocrm"))
        .secret_string(json!({"AMOCRM_ACCESS_TOKEN": DEFAULT_LONG_LIVED_TOKEN}).to_string())
        .send()
        .await
        .unwrap();
    let notify_arn = "arn:aws:lambda:eu-central-1:123456789012:function:notify";
    let env: Vec<(String, String)> = [
        ("LEADS_TABLE", tables.leads.as_str()),
        ("NOTIFICATIONS_TABLE", tables.notifications.as_str()),
        ("TRACKING_TABLE", tables.tracking.as_str()),
        ("IDEMPOTENCY_TABLE", tables.idempotency.as_str()),
        ("TOKENS_TABLE", tables.tokens.as_str()),
        ("QUOTAS_TABLE", tables.quotas.as_str()),
        ("SUPPRESSION_TABLE", tables.suppression.as_str()),
        ("LANDING_IP_HASH_KEY", "cargo-lambda-e2e-key"),
        ("SCHEDULE_GROUP", group.as_str()),
        ("NOTIFY_TARGET_ARN", notify_arn),
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/landing-aws-scheduler",
        ),
        ("NOTIFY_DELAY", "0s"),
        ("NOTIFY_SMS_WINDOW", "always"),
        ("EMAIL_FROM", &format!("school@{domain}")),
        ("AMOCRM_SECRET_ARN", secret.arn().unwrap()),
        ("AMOCRM_BASE_URL", &fake.base_url()),
        ("AMOCRM_PIPELINE_ID", &DEFAULT_PIPELINE_ID.to_string()),
        ("AMOCRM_STATUS_KASPI", "10002"),
        ("AWS_ENDPOINT_URL", &landing_moto::endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "eu-central-1"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let dir = std::env::temp_dir().join(format!("lambda-e2e-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let watch = Watch::start(&env);

    // proftest + submit: the API Gateway v2 fixtures; rows written, schedule created.
    let answer = watch.invoke(
        "proftest",
        &Path::new(ROOT).join("events/proftest/valid-json.json"),
    );
    assert_eq!(answer["statusCode"], 201, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let lead: LeadId = body["leadId"].as_str().unwrap().parse().unwrap();
    let stored = store
        .get_lead(lead)
        .await
        .unwrap()
        .expect("lead row in DynamoDB");
    assert_eq!(stored.crm.status, CrmStatus::Pending);
    let rows = store.notifications_for_lead(lead).await.unwrap();
    assert_eq!(rows.len(), 2);
    let schedule = aws_sdk_scheduler::Client::new(&aws)
        .get_schedule()
        .group_name(&group)
        .name(format!("lead-{lead}"))
        .send()
        .await
        .unwrap();
    let target = schedule.target().unwrap();
    assert_eq!(target.arn(), notify_arn);
    let payload: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(payload["leadId"], lead.to_string());
    assert!(schedule.schedule_expression().unwrap().starts_with("at("));
    let submit = watch.invoke(
        "submit",
        &Path::new(ROOT).join("events/submit/valid-kaspi.json"),
    );
    assert_eq!(submit["statusCode"], 201, "{submit}");
    let bad = watch.invoke(
        "submit",
        &Path::new(ROOT).join("events/submit/bad-invalid-payment-method.json"),
    );
    assert_eq!(bad["statusCode"], 422);

    // notify with the scheduled payload: exactly one SMS and one email; again: nothing.
    let (sms_before, mail_before) = landing_moto::sent().await;
    let payload_file = dir.join("payload.json");
    std::fs::write(&payload_file, target.input().unwrap()).unwrap();
    let report = watch.invoke("notify", &payload_file);
    assert_eq!(report["sent"], 2, "{report}");
    let again = watch.invoke("notify", &payload_file);
    assert_eq!(again["claimed"], 0, "{again}");
    let (sms, mail) = landing_moto::sent().await;
    assert_eq!(sms.len() - sms_before.len(), 1);
    assert_eq!(mail.len() - mail_before.len(), 1);
    let phone = stored.phone.valid().unwrap().as_str().to_owned();
    assert!(
        sms.iter().any(|m| m["phone_number"] == phone.as_str()),
        "{sms:?}"
    );

    // email-events with SES's events for that email, as the configuration set's SNS topic
    // delivers them: each lands on the email's row, a hard bounce lists the address.
    let email_row = store
        .notifications_for_lead(lead)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.channel() == landing_core::domain::Channel::Email)
        .unwrap();
    let address = stored.email.valid().unwrap().clone();
    let ses = |name: &str| ses_fixture(&dir, name, email_row.id, address.as_str());
    let delivered = watch.invoke("email-events", &ses("delivery.json"));
    assert_eq!(
        delivered,
        json!({"recorded": 1, "onRows": 1, "listed": 0, "ignored": 0})
    );
    let soft = watch.invoke("email-events", &ses("bounce-transient.json"));
    assert_eq!(soft["listed"], 0, "a full mailbox lists nothing: {soft}");
    let row = store.notifications_for_lead(lead).await.unwrap();
    let row = row.iter().find(|n| n.id == email_row.id).unwrap();
    assert_eq!(
        row.delivered_at.map(|t| t.to_string()).as_deref(),
        Some("2026-12-01T06:10:03.52Z")
    );
    assert_eq!(
        row.feedback,
        Some(landing_core::domain::EmailFeedback::SoftBounced)
    );
    for _ in 0..2 {
        // SNS delivers at least once: the second delivery lists nothing new.
        let bounced = watch.invoke("email-events", &ses("bounce-permanent.json"));
        assert_eq!(bounced["onRows"], 1, "{bounced}");
    }
    let listed = landing_core::ports::SuppressionList::address_suppression(&store, &address)
        .await
        .unwrap()
        .expect("the bounced address is listed");
    assert_eq!(
        listed.reason,
        landing_core::domain::AddressSuppression::Bounced
    );
    let row = store.notifications_for_lead(lead).await.unwrap();
    let row = row.iter().find(|n| n.id == email_row.id).unwrap();
    assert_eq!(
        row.feedback,
        Some(landing_core::domain::EmailFeedback::Bounced)
    );
    assert!(
        row.feedback_detail
            .as_deref()
            .unwrap()
            .starts_with("Permanent/General: smtp; 550 5.1.1"),
        "{row:?}"
    );
    for name in ["complaint.json", "reject.json"] {
        let answer = watch.invoke("email-events", &ses(name));
        assert_eq!(answer["recorded"], 1, "{name}: {answer}");
    }

    // crm-sync with a stream batch (INSERT + MODIFY of the lead): one deal in the fake.
    let batch = watch.invoke(
        "crm-sync",
        &fixture_file(&dir, "crm-sync/stream-insert-and-modify.json", Some(lead)),
    );
    assert_eq!(batch["batchItemFailures"], json!([]), "{batch}");
    assert_eq!(fake.leads().len(), 1);
    assert_eq!(
        store.get_lead(lead).await.unwrap().unwrap().crm.status,
        CrmStatus::Synced
    );
    // …and a record whose sync cannot succeed right now is reported for retry.
    let submit_body: Value = serde_json::from_str(submit["body"].as_str().unwrap()).unwrap();
    let second: LeadId = submit_body["leadId"].as_str().unwrap().parse().unwrap();
    fake.fail_next(10_000, 503);
    let batch = watch.invoke(
        "crm-sync",
        &fixture_file(&dir, "crm-sync/stream-insert-and-modify.json", Some(second)),
    );
    assert_eq!(
        batch["batchItemFailures"][0]["itemIdentifier"], "111100000000000000000001",
        "{batch}"
    );
    fake.clear_faults();

    // sweeper: the submit lead's schedule is gone (as if creating it had failed after the
    // commit), so nothing will ever invoke notify for it; the sweeper sends its messages.
    scheduler
        .delete_schedule()
        .group_name(&group)
        .name(format!("lead-{second}"))
        .send()
        .await
        .unwrap();
    let swept = watch.invoke(
        "sweeper",
        &Path::new(ROOT).join("events/sweeper/scheduled-event.json"),
    );
    assert_eq!(swept["notificationsSent"], 2, "{swept}");
    let rows = store.notifications_for_lead(second).await.unwrap();
    assert!(
        rows.iter().all(|n| n.status == NotificationStatus::Sent),
        "{rows:?}"
    );
}
