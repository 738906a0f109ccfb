//! landing-local: the whole pipeline in one process on SQLite — intake, the durable notification
//! worker, the AmoCRM sync worker and the operator commands. The endpoints run the same
//! `landing-http` handler as the Lambda functions; notifications go through the same
//! claim/send code path as the AWS notify and sweeper functions.

pub mod admin;
mod admin_http;
pub mod cli;
mod client;
mod config;
mod outbox;
mod server;

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
use landing_core::guard::{OriginPolicy, Screening};
use landing_core::intake::{IDEMPOTENCY_TTL, IntakeConfig, IntakeService};
use landing_core::notify::{
    Dispatcher, LocalScheduler, SmsGuard, Transports, Worker, WorkerConfig,
};
use landing_core::ports::{Clock, EmailSender, SmsSender, SystemClock};
use landing_core::submission::MAX_BODY_BYTES;
use landing_core::unsubscribe::{Unsubscribe, UnsubscribeKey, UnsubscribeLinks};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use client::TrustedProxies;
pub use config::{LocalConfig, Senders};
pub use landing_core::config::{ConfigError, Env};
pub use outbox::Outbox;

/// How long shutdown waits for a dispatch round in progress to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration")]
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
    #[error("cannot set up the AmoCRM client")]
    Crm(#[from] landing_amocrm::AmoError),
    #[error("server failed")]
    Serve(#[source] std::io::Error),
}

/// What the endpoints need: the intake service, whom to believe about the client address, and
/// the unsubscribe use case.
struct Intake {
    service: IntakeService,
    proxies: TrustedProxies,
    unsubscribe: Unsubscribe,
}

type AppState = Arc<Intake>;

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
    let site = landing_web::Site::load_with(config.web_content.as_deref(), &config.honeypot_field)
        .map_err(|e| ConfigError::new(landing_web::CONTENT_VAR, landing_core::error_chain(&e)))?;
    let store = Arc::new(landing_sqlite::open(&data_dir.join("landing.db"))?);
    let ip_hash_key = match &config.ip_hash_key {
        Some(k) => k.clone(),
        None => client::stored_ip_hash_key(data_dir).map_err(|source| RunError::DataDir {
            path: shown.clone(),
            source,
        })?,
    };
    let screening = Screening::new(
        config.honeypot_field.clone(),
        Some(landing_core::guard::IpHasher::new(ip_hash_key)?),
    );
    let (sms, email): (Arc<dyn SmsSender>, Arc<dyn EmailSender>) = match &config.senders {
        Senders::Outbox => {
            let outbox = Arc::new(Outbox::new(data_dir.join("outbox.jsonl")));
            (outbox.clone(), outbox)
        }
        #[cfg(feature = "aws")]
        Senders::Aws(messaging) => aws_senders(messaging).await,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wake = LocalScheduler::new();
    let unsubscribe_key = UnsubscribeKey::new(match &config.unsubscribe_secret {
        Some(k) => k.clone(),
        None => client::stored_unsubscribe_key(data_dir).map_err(|source| RunError::DataDir {
            path: shown.clone(),
            source,
        })?,
    })?;

    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let crm_wake = Arc::new(tokio::sync::Notify::new());
    let crm_worker = match &config.crm {
        Some(settings) => {
            let client = settings.client(store.clone(), RetryConfig::default())?;
            let sync = Arc::new(CrmSync::new(
                store.clone(),
                store.clone(),
                Arc::new(client),
                settings.crm.clone(),
                clock.clone(),
                CrmSync::DEFAULT_MAX_ATTEMPTS,
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
            windows: config.notify.windows.clone(),
            idempotency_ttl: IDEMPOTENCY_TTL,
            initial_crm_status: if config.crm.is_some() {
                CrmStatus::Pending
            } else {
                CrmStatus::Disabled
            },
            payment_links: config.notify.payment_links.clone(),
            screening,
            origins: config.origins.clone(),
        },
    );
    if crm_worker.is_some() {
        let wake_crm = crm_wake.clone();
        intake = intake.with_commit_hook(Arc::new(move |_| wake_crm.notify_one()));
    }
    let intake = Arc::new(Intake {
        service: intake,
        proxies: config.trusted_proxies.clone(),
        unsubscribe: Unsubscribe::new(
            store.clone(),
            store.clone(),
            unsubscribe_key.clone(),
            clock.clone(),
        ),
    });

    // Bound before the dispatcher exists: the links point at this very server unless
    // UNSUBSCRIBE_URL names another.
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
    let unsubscribe_url = config
        .unsubscribe_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}{}", landing_http::UNSUBSCRIBE_PATH));
    let links = UnsubscribeLinks::new(&unsubscribe_url, unsubscribe_key)?;

    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        Transports { sms, email },
        templates,
        clock.clone(),
        config.notify.retry.clone(),
        SmsGuard::new(config.sms_guard.clone(), store.clone()),
    )
    .with_windows(config.notify.windows.clone())
    .with_suppression_list(store.clone())
    .with_unsubscribe_links(links);
    let dispatcher = Arc::new(if config.notify.supersede {
        dispatcher.with_supersede(store.clone())
    } else {
        dispatcher
    });
    let store_for_admin: Arc<dyn landing_core::ports::Inspect> = store.clone();
    let worker = Worker::new(dispatcher, store, clock, wake, WorkerConfig::default());
    let worker = tokio::spawn(worker.run(workers_stopped));
    tracing::info!(
        addr = %local,
        pages = %format!("http://{local}/integrator/proftest"),
        data_dir = %shown,
        notify_delay_secs = config.notify.delay.as_secs_f64(),
        send_windows = %config.notify.windows.describe(),
        "landing-local listening"
    );

    let mut app = router(intake, Arc::new(site), &config.origins);
    if let Some(token) = &config.admin_token {
        app = app.merge(admin_http::router(token.clone(), store_for_admin));
    }
    let served = server::serve(listener, app, shutdown).await;
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

/// SNS and SES v2 with AWS's default credential chain.
#[cfg(feature = "aws")]
async fn aws_senders(
    messaging: &landing_core::config::MessagingConfig,
) -> (Arc<dyn SmsSender>, Arc<dyn EmailSender>) {
    use landing_aws_messaging::{SesEmail, SnsSms};
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    tracing::info!("sending SMS through SNS and email through SES");
    (
        Arc::new(SnsSms::new(aws_sdk_sns::Client::new(&aws), messaging)),
        Arc::new(SesEmail::new(aws_sdk_sesv2::Client::new(&aws), messaging)),
    )
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

fn router(intake: AppState, site: Arc<landing_web::Site>, origins: &OriginPolicy) -> Router {
    let router = Router::new()
        .route("/api/landing/proftest", any(proftest))
        .route("/api/landing/submit", any(submit))
        .route(landing_http::UNSUBSCRIBE_PATH, any(unsubscribe))
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
    match origins {
        // No list: no CORS answers, so only same-origin pages (and non-browsers) can post.
        OriginPolicy::Any => router,
        OriginPolicy::Wildcard => router.layer(layer.allow_origin(AllowOrigin::any())),
        OriginPolicy::List(list) => router.layer(
            layer.allow_origin(AllowOrigin::list(
                list.iter()
                    .filter_map(|o| http::HeaderValue::from_str(o).ok()),
            )),
        ),
    }
}

async fn proftest(State(intake): State<AppState>, req: axum::extract::Request) -> Response {
    endpoint(&intake, Form::ProfTest, req).await
}

async fn submit(State(intake): State<AppState>, req: axum::extract::Request) -> Response {
    endpoint(&intake, Form::ExpressCourse, req).await
}

/// The link of every email; no body to read (the one-click POST's body says only
/// `List-Unsubscribe=One-Click`), and nothing a client going away could leave half done.
async fn unsubscribe(State(intake): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    let req = http::Request::from_parts(parts, ());
    into_axum(landing_http::handle_unsubscribe(&intake.unsubscribe, &req).await)
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn not_found() -> Response {
    into_axum(landing_http::not_found())
}

/// Reads at most the body limit, then hands the request to the shared `landing-http` handler —
/// in a task of its own: a client that goes away must not cancel a lead half way (committed but
/// never logged, scheduled or handed to the CRM worker).
async fn endpoint(intake: &AppState, form: Form, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) if is_over_limit(&e) => return into_axum(landing_http::payload_too_large()),
        // Broken chunked framing, or a client that hung up mid-body: nothing to store.
        Err(_) => {
            return into_axum(
                landing_http::ApiError::MalformedBody("request body could not be read".into())
                    .into_response(),
            );
        }
    };
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded_for = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let ctx = landing_http::Context {
        gateway_request_id: None,
        client_ip: peer.map(|p| intake.proxies.client(p, Some(&forwarded_for))),
    };
    let req = http::Request::from_parts(parts, bytes);
    let intake = intake.clone();
    let answered =
        tokio::spawn(async move { landing_http::handle(&intake.service, form, &req, &ctx).await });
    match answered.await {
        Ok(resp) => into_axum(resp),
        Err(e) => {
            tracing::error!(error = %e, "intake task failed");
            into_axum(landing_http::ApiError::Unavailable.into_response())
        }
    }
}

/// The body was longer than the limit (rather than unreadable).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn into_axum(resp: http::Response<String>) -> Response {
    resp.map(axum::body::Body::from)
}
