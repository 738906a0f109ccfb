//! A `DynamoStore` on fresh tables in the moto emulator that `infra/with-moto.sh` started.
//!
//! # Why requests to moto go one at a time
//!
//! DynamoDB executes every request atomically and in isolation: a conditional write's check and
//! write are one step, and a transaction is serializable. moto (5.2) serves requests on threads
//! without any lock: a condition is checked, then the write happens, with other requests free to
//! run in between, and a cancelled `TransactWriteItems` "rolls back" by restoring a deep copy
//! of every table it touched — taken when *it* started — which silently undoes (or resurrects)
//! the writes of transactions that ran meanwhile. Found by experiment: the contract cases
//! `concurrent_retries_with_one_key_commit_exactly_once` (a cancelled retry's lead came back)
//! and `concurrent_commits_of_one_person_lose_no_tracking_update` (a committed count vanished)
//! fail on a plain moto client. So each case's client sends one request at a time (a per-client
//! async lock around the HTTP call). That restores exactly the guarantee the adapter relies on —
//! each request is atomic — while the adapter's own interleavings (read, then conditional
//! transaction; query, then conditional claim) still race freely between requests.

#![allow(dead_code)]

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use landing_aws_dynamo::{DynamoStore, Tables, create_tables};

/// The emulator's endpoint. These tests never pass without one: a run that forgot the emulator
/// must fail loudly, not report green.
pub fn endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ => panic!(
            "MOTO_ENDPOINT is not set: these tests need the moto emulator. Run them via \
             `./infra/with-moto.sh cargo test -p landing-aws-dynamo`"
        ),
    }
}

/// A client of the emulator. One per test case: the SDK's connection pool belongs to the Tokio
/// runtime it was first used on, and every contract case runs on its own runtime.
pub async fn client() -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    // Plain HTTP: the emulator listens on loopback without TLS.
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let serial = OneAtATime {
        inner,
        lock: Arc::default(),
    };
    let config = aws_sdk_dynamodb::config::Builder::from(&config)
        .http_client(serial)
        .build();
    Client::from_conf(config)
}

/// An HTTP client that lets one request of its own at a time reach the server (see the module
/// documentation for why).
#[derive(Debug, Clone)]
struct OneAtATime {
    inner: SharedHttpClient,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OneAtATimeConnector {
            inner: self.inner.http_connector(settings, components),
            lock: self.lock.clone(),
        })
    }
}

#[derive(Debug)]
struct OneAtATimeConnector {
    inner: SharedHttpConnector,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for OneAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, lock) = (self.inner.clone(), self.lock.clone());
        HttpConnectorFuture::new(async move {
            // moto answers only after the operation is complete, so holding the lock until the
            // response head arrives covers the whole server-side operation.
            let _turn = lock.lock().await;
            inner.call(request).await
        })
    }
}

/// A store on five new, empty tables whose names no other case uses.
pub async fn fresh_store() -> DynamoStore {
    let client = client().await;
    let prefix = format!("t{}-", uuid::Uuid::now_v7().simple());
    let tables = Tables::prefixed(&prefix);
    create_tables(&client, &tables)
        .await
        .unwrap_or_else(|e| panic!("cannot create tables {prefix}*: {e:?}"));
    DynamoStore::new(client, tables)
}
