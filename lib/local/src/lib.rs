//! landing-local: the whole pipeline (minus AmoCRM) in one process on SQLite. The endpoints run
//! the same `lambda_http` handler as the Lambda functions; notifications go through the same
//! claim/send code path as the AWS notify and sweeper functions.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
mod config;
mod outbox;

use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderName, Method, header};
use landing_amocrm::RetryConfig;
use landing_core::crm::{CrmSync, CrmWorker, CrmWorkerConfig};
use landing_core::domain::{CrmStatus, Form};
use landing_core::intake::{IDEMPOTENCY_TTL, IntakeConfig, IntakeService};
use landing_core::notify::{Dispatcher, LocalScheduler, Worker, WorkerConfig};
use landing_core::ports::{Clock, EmailSender, SmsSender, SystemClock};
use landing_core::submission::MAX_BODY_BYTES;
use landing_messaging::{SesEmail, SnsSms};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{Cors, LocalConfig, Transport};
pub use landing_core::config::{ConfigError, Env};
pub use outbox::Outbox;

/// Attempts of one lead's CRM sync before it is marked failed (transient errors only).
const CRM_MAX_ATTEMPTS: u32 = 8;

/// How long shutdown waits for a dispatch round in progress to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot use data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another landing-local process")]
    Locked { path: String },
    #[error("cannot open the database")]
    Db(#[from] landing_sqlite::OpenError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("AmoCRM client: {0}")]
    Crm(String),
    #[error("server failed")]
    Serve(#[source] std::io::Error),
}

type AppState = Arc<IntakeService>;

/// Runs until `shutdown` resolves: stops accepting, lets in-flight requests finish, lets the
/// worker finish its round, then returns.
pub async fn run(
    config: LocalConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let data_dir = &config.data_dir;
    let shown = data_dir.display().to_string();
    std::fs::create_dir_all(data_dir).map_err(|source| RunError::DataDir {
        path: shown.clone(),
        source,
    })?;
    // The worker hands back claims left by a dead process at start; that is only safe while no
    // other process can hold a claim, so one data dir belongs to one process.
    let _lock = lock_data_dir(data_dir)?;

    let templates = config.notify.templates()?;
    // The pages render at start so that a broken content file stops the process here.
    let site = landing_web::Site::load(config.web_content.as_deref())
        .map_err(|e| ConfigError::new(landing_web::CONTENT_VAR, landing_core::error_chain(&e)))?;
    let store = Arc::new(landing_sqlite::open(&data_dir.join("landing.db"))?);
    let (sms, email): (Arc<dyn SmsSender>, Arc<dyn EmailSender>) = match &config.transport {
        Transport::Outbox => {
            let outbox = Arc::new(Outbox::new(data_dir.join("outbox.jsonl")));
            (outbox.clone(), outbox)
        }
        Transport::Aws(messaging) => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            tracing::info!("sending SMS through SNS and email through SES");
            (
                Arc::new(SnsSms::new(aws_sdk_sns::Client::new(&aws), messaging)),
                Arc::new(SesEmail::new(aws_sdk_sesv2::Client::new(&aws), messaging)),
            )
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wake = LocalScheduler::new();

    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let crm_wake = Arc::new(tokio::sync::Notify::new());
    let crm_worker = match &config.crm {
        Some(settings) => {
            let client = settings
                .client(store.clone(), RetryConfig::default())
                .map_err(|e| RunError::Crm(e.to_string()))?;
            let sync = Arc::new(CrmSync::new(
                store.clone(),
                store.clone(),
                Arc::new(client),
                settings.crm.clone(),
                clock.clone(),
                CRM_MAX_ATTEMPTS,
            ));
            let worker = CrmWorker::new(
                sync,
                store.clone(),
                crm_wake.clone(),
                CrmWorkerConfig::default(),
            );
            tracing::info!(base_url = %settings.base_url, pipeline_id = settings.crm.pipeline_id, "AmoCRM sync enabled");
            Some(tokio::spawn(worker.run(workers_stopped.clone())))
        }
        None => {
            tracing::warn!(
                "no AmoCRM credentials (AMOCRM_ACCESS_TOKEN or AMOCRM_CLIENT_ID): CRM sync is disabled, leads are stored with crm_status=disabled"
            );
            None
        }
    };
    let mut intake = IntakeService::new(
        store.clone(),
        Arc::new(wake.clone()),
        clock.clone(),
        IntakeConfig {
            notify_delay: config.notify.delay,
            idempotency_ttl: IDEMPOTENCY_TTL,
            initial_crm_status: if config.crm.is_some() {
                CrmStatus::Pending
            } else {
                CrmStatus::Disabled
            },
        },
    )
    .with_payment_links(config.notify.payment_links.clone());
    if crm_worker.is_some() {
        let wake_crm = crm_wake.clone();
        intake = intake.with_commit_hook(Arc::new(move |_| wake_crm.notify_one()));
    }
    let intake = Arc::new(intake);

    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        store.clone(),
        sms,
        email,
        templates,
        clock.clone(),
        config.notify.retry.clone(),
    ));
    let worker = Worker::new(dispatcher, store, clock, wake, WorkerConfig::default());
    let worker = tokio::spawn(worker.run(workers_stopped));

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.addr.to_string(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %local, data_dir = %shown, notify_delay = ?config.notify.delay, "landing-local listening");

    let served = axum::serve(listener, router(intake, Arc::new(site), &config.cors))
        .with_graceful_shutdown(shutdown)
        .await;
    tracing::info!("HTTP server stopped; finishing the rounds in progress");
    let _ = stop_workers.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, worker).await.is_err() {
        tracing::warn!(
            "notification worker did not stop in time; its claims expire and are resent after restart"
        );
    }
    if let Some(crm) = crm_worker
        && tokio::time::timeout(DRAIN_TIMEOUT, crm).await.is_err()
    {
        tracing::warn!(
            "CRM worker did not stop in time; its leads stay pending and are synced after restart"
        );
    }
    served.map_err(RunError::Serve)
}

fn lock_data_dir(dir: &Path) -> Result<File, RunError> {
    let path = dir.join("landing.lock");
    let shown = path.display().to_string();
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RunError::DataDir {
            path: shown.clone(),
            source,
        })?;
    file.try_lock().map_err(|_| RunError::Locked {
        path: dir.display().to_string(),
    })?;
    Ok(file)
}

pub fn router(intake: AppState, site: Arc<landing_web::Site>, cors: &Cors) -> Router {
    let router = Router::new()
        .route("/api/landing/proftest", any(proftest))
        .route("/api/landing/submit", any(submit))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(intake)
        .merge(site.router());
    let layer = CorsLayer::new()
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-correlation-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-correlation-id"),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600));
    match cors {
        Cors::Off => router,
        Cors::Any => router.layer(layer.allow_origin(AllowOrigin::any())),
        Cors::Origins(list) => router.layer(layer.allow_origin(AllowOrigin::list(list.clone()))),
    }
}

async fn proftest(State(intake): State<AppState>, req: axum::extract::Request) -> Response {
    endpoint(&intake, Form::ProfTest, req).await
}

async fn submit(State(intake): State<AppState>, req: axum::extract::Request) -> Response {
    endpoint(&intake, Form::ExpressCourse, req).await
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn not_found() -> Response {
    into_axum(landing_core::http::not_found())
}

/// Reads at most the body limit, then hands the request to the shared `lambda_http` handler.
async fn endpoint(intake: &IntakeService, form: Form, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(b) => b,
        // Over the limit (or the client hung up mid-body): either way there is nothing to store.
        Err(_) => return into_axum(landing_core::http::payload_too_large()),
    };
    let req = http::Request::from_parts(parts, lambda_http::Body::Binary(bytes.to_vec()));
    into_axum(landing_core::http::handle(intake, form, req).await)
}

fn into_axum(resp: http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
