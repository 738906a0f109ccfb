//! The intake Lambdas' AWS cost per accepted lead: one `TransactWriteItems` and one
//! `CreateSchedule`, nothing else — no read before the write, no second write after it. Every
//! HTTP request the production wiring (`landing_aws_intake::intake`) sends is recorded by its
//! HTTP client on the way to moto; retries and extra reads would show up as extra requests.
//!
//! Run through `infra/with-moto.sh`: `./infra/with-moto.sh cargo test -p landing-aws-intake`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::path::Path;

use landing_core::config::Env;
use landing_core::domain::Form;
use landing_moto::Recording;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

fn request(fixture: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(Path::new(EVENTS).join(fixture)).unwrap();
    lambda_http::request::from_str(&text).unwrap()
}

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";
const SCHEDULE: &str = "POST /schedules";

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn every_accepted_lead_costs_one_transaction_and_one_schedule() {
    let http = Recording::new();
    let aws = landing_moto::sdk_config_with(http.clone()).await;
    let tables = landing_moto::fresh_tables(&aws_sdk_dynamodb::Client::new(&aws)).await;
    let group = landing_moto::schedule_group(&aws, "calls-").await;
    let env = Env::from_pairs([
        ("LEADS_TABLE", tables.leads.as_str()),
        ("NOTIFICATIONS_TABLE", tables.notifications.as_str()),
        ("TRACKING_TABLE", tables.tracking.as_str()),
        ("IDEMPOTENCY_TABLE", tables.idempotency.as_str()),
        ("TOKENS_TABLE", tables.tokens.as_str()),
        ("QUOTAS_TABLE", tables.quotas.as_str()),
        ("SUPPRESSION_TABLE", tables.suppression.as_str()),
        ("LANDING_IP_HASH_KEY", "calls-per-lead-test-key"),
        ("SCHEDULE_GROUP", group.as_str()),
        (
            "NOTIFY_TARGET_ARN",
            "arn:aws:lambda:eu-central-1:123456789012:function:notify",
        ),
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/landing-aws-scheduler",
        ),
        ("EMAIL_FROM", "school@example.kz"),
        ("AMOCRM_PIPELINE_ID", "10350882"),
    ]);
    let intake = landing_aws_intake::intake(&aws, &env).unwrap();
    http.take();

    // A new person (phone and email: two tracking items), the same person again (their tracking
    // items exist now), a lead with an idempotency key, and the other form.
    for (form, fixture) in [
        (Form::ProfTest, "proftest/valid-json.json"),
        (Form::ProfTest, "proftest/valid-json.json"),
        (Form::ProfTest, "proftest/valid-with-idempotency-key.json"),
        (Form::ExpressCourse, "submit/valid-kaspi.json"),
    ] {
        let answer = intake.answer(form, request(fixture)).await;
        assert!(
            answer.status().is_success(),
            "{fixture}: {}",
            answer.status()
        );
        assert_eq!(http.take(), [TRANSACT, SCHEDULE], "{fixture}");
    }

    // The recording sees reads too: a replayed idempotency key is answered from a read.
    let replay = intake
        .answer(
            Form::ProfTest,
            request("proftest/valid-with-idempotency-key.json"),
        )
        .await;
    assert!(replay.status().is_success());
    let calls = http.take();
    assert!(
        !calls.is_empty() && calls != [TRANSACT, SCHEDULE],
        "a replay should not commit a second lead: {calls:?}"
    );
}
