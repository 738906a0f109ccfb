//! Shared by `handler_fixtures.rs` and `openapi.rs`: API Gateway v2 events in and out of the
//! intake Lambdas' handler (`landing_aws_intake::answer`, which serves `landing_http::handle`),
//! a fresh SQLite store per case, and stores that misbehave on
//! purpose (down, or holding a commit open).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use lambda_http::{Body, Request};
use landing_core::domain::{CrmStatus, Lead};
use landing_core::domain::{Form, LeadId, Notification, PersonKey, Tracking};
use landing_core::intake::{IDEMPOTENCY_TTL, IntakeConfig, IntakeService};
use landing_core::notify::LocalScheduler;
use landing_core::ports::{
    Inspect, IntakeOutcome, IntakeWrite, LeadStore, StoreError, SystemClock,
};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

pub const NOTIFY_DELAY: Duration = Duration::from_secs(600);
pub const PROFTEST_PATH: &str = "/api/landing/proftest";
pub const SUBMIT_PATH: &str = "/api/landing/submit";

/// Tables an intake writes; a refused request must leave every one of them empty.
pub const INTAKE_TABLES: [&str; 4] = [
    "landing_leads",
    "scheduled_notifications",
    "unified_lead_tracking",
    "idempotency",
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

pub fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

pub fn relative(p: &Path) -> String {
    p.strip_prefix(events_dir())
        .expect("under events/")
        .to_string_lossy()
        .replace('\\', "/")
}

/// Does this file claim to be an HTTP API request? Other event kinds (scheduler payloads,
/// DynamoDB stream records) may live under `events/` too and are not this test's business;
/// anything under `events/proftest` or `events/submit`, or anything that looks like an HTTP
/// event at all, is held to the full shape check.
pub fn is_http_event(rel: &str, v: &Value) -> bool {
    rel.starts_with("proftest/")
        || rel.starts_with("submit/")
        || ["routeKey", "rawPath", "requestContext", "httpMethod"]
            .iter()
            .any(|k| v.get(*k).is_some())
}

pub fn load_expected() -> Map<String, Value> {
    let path = events_dir().join("expected.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let Value::Object(mut map) = serde_json::from_str(&text).expect("expected.json is JSON") else {
        panic!("expected.json must be an object");
    };
    map.remove("$comment");
    map
}

/// The fixtures: (path relative to events/, parsed event).
pub fn http_fixtures() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    json_files(&events_dir(), &mut files);
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "expected.json"))
        .filter_map(|p| {
            let rel = relative(&p);
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {rel}: {e}"));
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"));
            is_http_event(&rel, &v).then_some((rel, v))
        })
        .collect()
}

/// The form behind an API route, as the Lambda functions and landing-local map them.
pub fn form_for_path(path: &str) -> Option<Form> {
    match path {
        PROFTEST_PATH => Some(Form::ProfTest),
        SUBMIT_PATH => Some(Form::ExpressCourse),
        _ => None,
    }
}

/// A fresh SQLite database in its own temp dir, and the intake service over it.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub store: Arc<landing_sqlite::SqliteStore>,
    pub svc: IntakeService,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::wrapping(|s| s)
    }

    /// Like [`Harness::new`], with the intake service writing through `wrap(store)`.
    pub fn wrapping(wrap: impl FnOnce(Arc<dyn LeadStore>) -> Arc<dyn LeadStore>) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("landing.db");
        let store = Arc::new(landing_sqlite::open(&db_path).expect("open sqlite store"));
        let svc = service(wrap(store.clone()));
        Harness {
            _dir: dir,
            db_path,
            store,
            svc,
        }
    }

    pub async fn call(&self, form: Form, req: Request) -> Answer {
        Answer::from(landing_aws_intake::answer(&self.svc, None, form, req).await)
    }

    /// Rows in `table`, read through a second connection (the store keeps WAL mode).
    pub fn count(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open db for reading");
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    pub fn counts(&self) -> Vec<(&'static str, i64)> {
        INTAKE_TABLES.iter().map(|t| (*t, self.count(t))).collect()
    }

    pub async fn lead(&self, id: LeadId) -> Option<Lead> {
        self.store.get_lead(id).await.expect("get_lead")
    }

    pub async fn notifications(&self, id: LeadId) -> Vec<Notification> {
        self.store
            .notifications_for_lead(id)
            .await
            .expect("notifications_for_lead")
    }
}

pub fn service(store: Arc<dyn LeadStore>) -> IntakeService {
    service_with_links(store, Default::default())
}

/// [`service`] with `PAYMENT_LINK_*` configured.
pub fn service_with_links(
    store: Arc<dyn LeadStore>,
    payment_links: std::collections::BTreeMap<landing_core::domain::PaymentMethod, String>,
) -> IntakeService {
    IntakeService::new(
        store,
        Arc::new(LocalScheduler::new()),
        Arc::new(SystemClock),
        IntakeConfig {
            notify_delay: NOTIFY_DELAY,
            windows: landing_core::notify::SendWindows::always(),
            idempotency_ttl: IDEMPOTENCY_TTL,
            initial_crm_status: CrmStatus::Pending,
            payment_links,
            // The events' pages are on https://school.kz; a fixture from elsewhere is refused.
            screening: landing_core::guard::Screening::new(
                "website",
                Some(
                    landing_core::guard::IpHasher::new("fixture-ip-hash-key".to_owned().into())
                        .expect("a long enough key"),
                ),
            ),
            origins: landing_core::guard::OriginPolicy::List(vec!["https://school.kz".to_owned()]),
        },
    )
}

/// What the handler answered, taken apart.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
    /// The body as JSON, `Value::Null` if it is not JSON.
    pub json: Value,
}

impl From<lambda_http::Response<Body>> for Answer {
    fn from(resp: lambda_http::Response<Body>) -> Answer {
        let (parts, body) = resp.into_parts();
        let text = match body {
            Body::Empty => String::new(),
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status: parts.status,
            headers: parts.headers,
            text,
            json,
        }
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn lead_id(&self) -> Option<LeadId> {
        self.json.get("leadId")?.as_str()?.parse().ok()
    }
}

/// A request body as API Gateway hands it over.
#[derive(Debug, Clone)]
pub enum EventBody {
    None,
    Text(String),
    /// Sent with `isBase64Encoded: true`, as API Gateway does for form posts and other
    /// non-text types.
    Base64(Vec<u8>),
}

/// An API Gateway HTTP API (payload 2.0) event for `POST path`, shaped like the real ones.
/// `headers` may use any case; API Gateway lower-cases them.
pub fn apigw_event(
    path: &str,
    headers: &[(&str, &str)],
    body: &EventBody,
    request_id: &str,
) -> Value {
    let mut h = Map::new();
    for (k, v) in [
        ("accept", "*/*"),
        ("host", "k3z9lnd1ng.execute-api.eu-central-1.amazonaws.com"),
        ("origin", "https://school.kz"),
        ("user-agent", "landing-tests"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ] {
        h.insert(k.to_owned(), json!(v));
    }
    let len = match body {
        EventBody::None => None,
        EventBody::Text(t) => Some(t.len()),
        EventBody::Base64(b) => Some(b.len()),
    };
    if let Some(len) = len {
        h.insert("content-length".into(), json!(len.to_string()));
    }
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    let mut ev = json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "k3z9lnd1ng",
            "domainName": "k3z9lnd1ng.execute-api.eu-central-1.amazonaws.com",
            "domainPrefix": "k3z9lnd1ng",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "landing-tests"},
            "requestId": request_id,
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "24/Nov/2026:08:15:00 +0000",
            "timeEpoch": 1_795_508_100_000u64
        },
        "isBase64Encoded": matches!(body, EventBody::Base64(_)),
    });
    match body {
        EventBody::None => {}
        EventBody::Text(t) => ev["body"] = json!(t),
        EventBody::Base64(b) => ev["body"] = json!(base64(b)),
    }
    ev
}

/// The `lambda_http` request for an event, exactly as the Lambda runtime builds it.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
}

/// Standard base64 with padding (what API Gateway uses for `isBase64Encoded` bodies).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Storage that is down: every call fails as a real outage would.
pub struct DownStore;

fn outage() -> StoreError {
    StoreError::unavailable(std::io::Error::other(
        "sqlite: disk I/O error at /var/lib/landing/landing.db",
    ))
}

#[async_trait]
impl LeadStore for DownStore {
    async fn commit_intake(&self, _write: IntakeWrite) -> Result<IntakeOutcome, StoreError> {
        Err(outage())
    }
    async fn get_lead(&self, _id: LeadId) -> Result<Option<Lead>, StoreError> {
        Err(outage())
    }
    async fn get_tracking(&self, _key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
        Err(outage())
    }
}

/// Holds every `commit_intake` until [`Gate::open`], so a request can be caught in flight;
/// after that, commits pass straight through.
pub struct GatedStore {
    inner: Arc<dyn LeadStore>,
    pub gate: Arc<Gate>,
}

#[derive(Default)]
pub struct Gate {
    entered: Notify,
    release: Notify,
    opened: AtomicBool,
}

impl Gate {
    /// Waits until some commit is being held.
    pub async fn entered(&self) {
        self.entered.notified().await;
    }

    pub fn open(&self) {
        self.opened.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }
}

impl GatedStore {
    pub fn new(inner: Arc<dyn LeadStore>) -> (Arc<GatedStore>, Arc<Gate>) {
        let gate = Arc::new(Gate::default());
        (
            Arc::new(GatedStore {
                inner,
                gate: gate.clone(),
            }),
            gate,
        )
    }
}

#[async_trait]
impl LeadStore for GatedStore {
    async fn commit_intake(&self, write: IntakeWrite) -> Result<IntakeOutcome, StoreError> {
        let released = self.gate.release.notified();
        if !self.gate.opened.load(Ordering::SeqCst) {
            self.gate.entered.notify_one();
            released.await;
        }
        self.inner.commit_intake(write).await
    }
    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        self.inner.get_lead(id).await
    }
    async fn get_tracking(&self, key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
        self.inner.get_tracking(key).await
    }
}

/// Words that must never reach a response body: internals of storage, Rust or the runtime.
pub const INTERNAL_WORDS: [&str; 8] = [
    "sqlite",
    "rusqlite",
    "panicked",
    "/var/",
    "i/o error",
    "StoreError",
    "Error {",
    "backtrace",
];

pub fn leaks_internals(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    INTERNAL_WORDS
        .into_iter()
        .find(|w| lower.contains(&w.to_lowercase()))
}

/// A harness whose commits wait at a gate, and the gate.
pub fn gated_harness() -> (Harness, Arc<Gate>) {
    let mut gate = None;
    let h = Harness::wrapping(|inner| {
        let (store, g) = GatedStore::new(inner);
        gate = Some(g);
        store
    });
    (h, gate.expect("gate"))
}

/// Sends `ev` and, while its commit is held at the gate, sends `ev` again. Returns (first,
/// second) after opening the gate.
pub async fn twice_in_flight(h: &Harness, gate: &Gate, form: Form, ev: &Value) -> (Answer, Answer) {
    tokio::join!(h.call(form, request(ev)), async {
        gate.entered().await;
        let second = h.call(form, request(ev)).await;
        gate.open();
        second
    })
}
