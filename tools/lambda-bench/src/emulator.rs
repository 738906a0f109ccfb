//! A minimal Lambda Runtime API (`2018-06-01`): one queue of events handed out by
//! `GET /runtime/invocation/next` (long poll), and the function's answers (`response`, `error`,
//! `init/error`) passed back with the instant they arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// What the function sent back for one event (or for its initialisation).
#[derive(Debug)]
pub enum Outcome {
    Response {
        id: String,
        body: Bytes,
        at: Instant,
    },
    Error {
        id: String,
        body: Bytes,
        at: Instant,
    },
    InitError {
        body: Bytes,
        at: Instant,
    },
}

impl Outcome {
    pub fn at(&self) -> Instant {
        match self {
            Outcome::Response { at, .. }
            | Outcome::Error { at, .. }
            | Outcome::InitError { at, .. } => *at,
        }
    }
}

struct Event {
    id: String,
    body: Bytes,
}

struct Shared {
    queue: Mutex<mpsc::UnboundedReceiver<Event>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    first_next: std::sync::Mutex<Option<Instant>>,
    function_arn: String,
}

/// One emulator per function process; stops serving when dropped.
pub struct Emulator {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Emulator {
    pub async fn start(function_name: &str) -> anyhow::Result<Emulator> {
        let (events, queue) = mpsc::unbounded_channel();
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            outcomes: outcome_tx,
            first_next: std::sync::Mutex::new(None),
            function_arn: format!(
                "arn:aws:lambda:eu-central-1:123456789012:function:{function_name}"
            ),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the Runtime API emulator")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Emulator {
            addr,
            events,
            outcomes,
            shared,
            task,
        })
    }

    /// Queues one event; returns its request id.
    pub fn push(&self, body: impl Into<Bytes>) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let _ = self.events.send(Event {
            id: id.clone(),
            body: body.into(),
        });
        id
    }

    /// The next answer of the function, or an error after `timeout`.
    pub async fn outcome(&mut self, timeout: Duration) -> anyhow::Result<Outcome> {
        tokio::time::timeout(timeout, self.outcomes.recv())
            .await
            .map_err(|_| anyhow!("no answer from the function within {timeout:?}"))?
            .ok_or_else(|| anyhow!("the emulator stopped"))
    }

    /// When the function first asked for an event (its init phase was over).
    pub fn first_next(&self) -> Option<Instant> {
        *self
            .shared
            .first_next
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn epoch_ms_in(d: Duration) -> u128 {
    (SystemTime::now() + d)
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_millis())
        .unwrap_or(0)
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    s.first_next
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Instant::now);
    let Some(event) = s.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", event.id.clone());
    put(
        "lambda-runtime-deadline-ms",
        epoch_ms_in(Duration::from_secs(30)).to_string(),
    );
    put(
        "lambda-runtime-invoked-function-arn",
        s.function_arn.clone(),
    );
    let trace = event.id.replace('-', "");
    put(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{}-{};Parent={};Sampled=0",
            &trace[..8],
            &trace[8..],
            &trace[16..32]
        ),
    );
    put("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, event.body).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let _ = s.outcomes.send(Outcome::Response {
        id,
        body,
        at: Instant::now(),
    });
    accepted()
}

async fn error(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let _ = s.outcomes.send(Outcome::Error {
        id,
        body,
        at: Instant::now(),
    });
    accepted()
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let _ = s.outcomes.send(Outcome::InitError {
        body,
        at: Instant::now(),
    });
    accepted()
}
