//! The intake Lambdas' AWS cost per accepted lead: one `TransactWriteItems` and one
//! `CreateSchedule`, nothing else — no read before the write, no second write after it. Every
//! HTTP request the production wiring (`landing_aws_intake::intake`) sends is recorded by its
//! HTTP client on the way to moto; retries and extra reads would show up as extra requests.
//!
//! Run through `infra/with-moto.sh`: `./infra/with-moto.sh cargo test -p landing-aws-intake`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use landing_aws_dynamo::Tables;
use landing_core::config::Env;
use landing_core::domain::Form;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

fn moto() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ => panic!(
            "MOTO_ENDPOINT is not set: run ./infra/with-moto.sh cargo test -p landing-aws-intake"
        ),
    }
}

/// Names every request by its AWS operation: DynamoDB's `X-Amz-Target`, or the Scheduler's REST
/// method and first path segment.
#[derive(Debug, Clone)]
struct Recording {
    inner: SharedHttpClient,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl HttpClient for Recording {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RecordingConnector {
            inner: self.inner.http_connector(settings, components),
            seen: self.seen.clone(),
        })
    }
}

#[derive(Debug)]
struct RecordingConnector {
    inner: SharedHttpConnector,
    seen: Arc<Mutex<Vec<String>>>,
}

impl HttpConnector for RecordingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = match request.headers().get("x-amz-target") {
            Some(target) => target.to_owned(),
            None => {
                let path = request.uri().split("://").nth(1).unwrap_or_default();
                let segment = path.split('/').nth(1).unwrap_or_default();
                format!("{} /{segment}", request.method())
            }
        };
        self.seen.lock().unwrap().push(operation);
        self.inner.call(request)
    }
}

async fn aws(http: Recording) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .http_client(http)
        .load()
        .await
}

fn request(fixture: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(Path::new(EVENTS).join(fixture)).unwrap();
    lambda_http::request::from_str(&text).unwrap()
}

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";
const SCHEDULE: &str = "POST /schedules";

#[tokio::test]
async fn every_accepted_lead_costs_one_transaction_and_one_schedule() {
    let http = Recording {
        inner: aws_smithy_http_client::Builder::new().build_http(),
        seen: Arc::default(),
    };
    let aws = aws(http.clone()).await;
    let prefix = format!("calls{}_", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let tables = Tables::prefixed(&prefix);
    landing_aws_dynamo::create_tables(&aws_sdk_dynamodb::Client::new(&aws), &tables)
        .await
        .unwrap();
    let group = format!("{prefix}group");
    aws_sdk_scheduler::Client::new(&aws)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let env = Env::from_pairs([
        ("LEADS_TABLE", tables.leads.as_str()),
        ("NOTIFICATIONS_TABLE", tables.notifications.as_str()),
        ("TRACKING_TABLE", tables.tracking.as_str()),
        ("IDEMPOTENCY_TABLE", tables.idempotency.as_str()),
        ("TOKENS_TABLE", tables.tokens.as_str()),
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
        let answer = landing_aws_intake::answer(&intake, form, request(fixture)).await;
        assert!(
            answer.status().is_success(),
            "{fixture}: {}",
            answer.status()
        );
        assert_eq!(http.take(), [TRANSACT, SCHEDULE], "{fixture}");
    }

    // The recording sees reads too: a replayed idempotency key is answered from a read.
    let replay = landing_aws_intake::answer(
        &intake,
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
