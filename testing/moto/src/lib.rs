//! Test support for the moto emulator that `infra/with-moto.sh` starts (it exports
//! `MOTO_ENDPOINT`). Tests that need it are `#[ignore = "needs moto: infra/with-moto.sh"]`, so a
//! plain `cargo test` runs everything that needs nothing and lists what it skipped, and
//! `infra/check.sh` runs them all with `--include-ignored`.
//!
//! moto keeps all state in one process and `POST /moto-api/reset` wipes everything, so tests
//! never reset: each creates its own resources under a unique name.
//!
//! # Why some clients send one request at a time
//!
//! DynamoDB executes every request atomically and in isolation: a conditional write's check and
//! write are one step, and a transaction is serializable. moto (5.2) serves requests on threads
//! without any lock: a condition is checked, then the write happens, with other requests free to
//! run in between, and a cancelled `TransactWriteItems` "rolls back" by restoring a deep copy of
//! every table it touched — taken when *it* started — which silently undoes (or resurrects) the
//! writes of transactions that ran meanwhile. Found by experiment: the contract cases
//! `concurrent_retries_with_one_key_commit_exactly_once` (a cancelled retry's lead came back) and
//! `concurrent_commits_of_one_person_lose_no_tracking_update` (a committed count vanished) fail
//! on a plain moto client. So a contract case's client sends one request at a time
//! ([`OneAtATime`]). That restores exactly the guarantee the adapters rely on — each request is
//! atomic — while their own interleavings (read, then conditional transaction; query, then
//! conditional claim) still race freely between requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support fails by panicking

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use landing_aws_dynamo::{DynamoStore, Tables, create_tables};
use serde_json::Value;

/// Why an emulator test is ignored by a plain `cargo test`.
pub const NEEDS_MOTO: &str = "needs moto: run through infra/with-moto.sh (infra/check.sh does)";

/// The emulator's endpoint. A test that needs it and runs without one fails loudly: it was asked
/// for explicitly (`--include-ignored`), so a green run must mean it really ran.
pub fn endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ => panic!(
            "MOTO_ENDPOINT is not set: this test needs the moto emulator; run it through \
             ./infra/with-moto.sh cargo test -- --include-ignored"
        ),
    }
}

/// The region every test uses (infra/with-moto.sh exports it too).
pub const REGION: &str = "eu-central-1";

/// SDK configuration for the emulator: its endpoint, the test region and dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    builder().load().await
}

/// [`sdk_config`] with its HTTP client replaced (e.g. [`OneAtATime`], [`Recording`]).
pub async fn sdk_config_with(http: impl HttpClient + 'static) -> SdkConfig {
    builder().http_client(http).load().await
}

fn builder() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
}

/// A name no other test uses: `prefix` (cut if need be) plus at least 12 characters of a UUIDv7's
/// tail (its random bits), at most `max` characters in all.
pub fn unique(prefix: &str, max: usize) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let head: String = prefix.chars().take(max.saturating_sub(12)).collect();
    let room = max.saturating_sub(head.chars().count()).min(id.len());
    format!("{head}{}", &id[id.len() - room..])
}

/// The five tables under a fresh prefix, created and `ACTIVE`.
pub async fn fresh_tables(client: &aws_sdk_dynamodb::Client) -> Tables {
    let prefix = unique("t", 33) + "-";
    let tables = Tables::prefixed(&prefix);
    create_tables(client, &tables)
        .await
        .unwrap_or_else(|e| panic!("cannot create tables {prefix}*: {e:?}"));
    tables
}

/// A `DynamoStore` on fresh tables whose client sends one request at a time (see the crate
/// documentation). One per test case: the SDK's connection pool belongs to the Tokio runtime it
/// was first used on, and every contract case runs on its own runtime.
pub async fn fresh_store() -> DynamoStore {
    let config = sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&config)
        .http_client(OneAtATime::new())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let tables = fresh_tables(&client).await;
    DynamoStore::new(client, tables)
}

/// A new schedule group (moto answers `CreateSchedule` into a missing group with an HTML 500).
pub async fn schedule_group(aws: &SdkConfig, prefix: &str) -> String {
    let name = unique(prefix, 64);
    aws_sdk_scheduler::Client::new(aws)
        .create_schedule_group()
        .name(&name)
        .send()
        .await
        .expect("CreateScheduleGroup");
    name
}

/// Verifies `domain` in SES, so that mail from any address at it is accepted.
pub async fn ses_identity(aws: &SdkConfig, domain: &str) {
    aws_sdk_sesv2::Client::new(aws)
        .create_email_identity()
        .email_identity(domain)
        .send()
        .await
        .expect("CreateEmailIdentity");
}

/// Everything moto "sent" so far: SNS SMS (`sns.SMS[]`) and SES messages (`ses.Message[]`, the
/// HTML part only for a two-part email), from `GET /moto-api/data.json`.
pub async fn sent() -> (Vec<Value>, Vec<Value>) {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", endpoint()))
        .await
        .expect("GET /moto-api/data.json")
        .json()
        .await
        .expect("data.json is JSON");
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    (list(&data["sns"]["SMS"]), list(&data["ses"]["Message"]))
}

fn plain_http() -> SharedHttpClient {
    // Plain HTTP: the emulator listens on loopback without TLS.
    aws_smithy_http_client::Builder::new().build_http()
}

/// An HTTP client that lets one request of its own at a time reach the server.
#[derive(Debug, Clone)]
pub struct OneAtATime {
    inner: SharedHttpClient,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl OneAtATime {
    pub fn new() -> Self {
        OneAtATime {
            inner: plain_http(),
            lock: Arc::default(),
        }
    }
}

impl Default for OneAtATime {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        let lock = self.lock.clone();
        SharedHttpConnector::new(Connector(move |request: HttpRequest| {
            let (inner, lock) = (inner.clone(), lock.clone());
            HttpConnectorFuture::new(async move {
                // moto answers only after the operation is complete, so holding the lock until
                // the response head arrives covers the whole server-side operation.
                let _turn = lock.lock().await;
                inner.call(request).await
            })
        }))
    }
}

/// An HTTP client that names every request by its AWS operation — DynamoDB's `X-Amz-Target`,
/// or a REST service's method and first path segment (`POST /schedules`) — on its way to moto.
#[derive(Debug, Clone)]
pub struct Recording {
    inner: SharedHttpClient,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    pub fn new() -> Self {
        Recording {
            inner: plain_http(),
            seen: Arc::default(),
        }
    }

    /// The operations recorded since the last call, in order.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Default for Recording {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for Recording {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        let seen = self.seen.clone();
        SharedHttpConnector::new(Connector(move |request: HttpRequest| {
            let operation = match request.headers().get("x-amz-target") {
                Some(target) => target.to_owned(),
                None => {
                    let path = request.uri().split("://").nth(1).unwrap_or_default();
                    let segment = path.split('/').nth(1).unwrap_or_default();
                    format!("{} /{segment}", request.method())
                }
            };
            seen.lock().unwrap().push(operation);
            inner.call(request)
        }))
    }
}

/// An `HttpConnector` from a closure.
struct Connector<F>(F);

impl<F> std::fmt::Debug for Connector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl<F> HttpConnector for Connector<F>
where
    F: Fn(HttpRequest) -> HttpConnectorFuture + Send + Sync,
{
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        (self.0)(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_keep_the_prefix_and_the_limit() {
        let a = unique("t-group-", 30);
        let b = unique("t-group-", 30);
        assert!(a.starts_with("t-group-") && a.len() <= 30, "{a}");
        assert_ne!(a, b);
        let long = unique(&"p".repeat(80), 64);
        assert_eq!(long.len(), 64);
        assert!(long.ends_with(&b[b.len() - 4..]) || long.len() == 64);
    }
}
