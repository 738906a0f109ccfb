//! The HTTP Lambdas — intake (`proftest`, `submit`) and `unsubscribe`: API Gateway's requests
//! (through `lambda_http`) into the shared `landing-http` handlers, over the DynamoDB stores and
//! (intake) the EventBridge Scheduler. Configuration comes from the environment the SAM
//! template sets; clients are built once per cold start.

use std::net::IpAddr;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use landing_aws_dynamo::{DynamoStore, Tables};
use landing_aws_scheduler::{EventBridgeScheduler, SchedulerConfig};
use landing_core::config::{ConfigError, Env, NotifySettings};
use landing_core::domain::{CrmStatus, Form};
use landing_core::guard::{OriginPolicy, Screening};
use landing_core::intake::{IDEMPOTENCY_TTL, IntakeConfig, IntakeService};
use landing_core::ports::SystemClock;
use landing_core::unsubscribe::{Unsubscribe, UnsubscribeKey};
use secrecy::{ExposeSecret, SecretString};

/// The shared secret the CloudFront distribution adds to every request it forwards
/// (`x-landing-edge-secret`): only such a request's `x-landing-viewer-ip` is believed.
pub const EDGE_SECRET_VAR: &str = "LANDING_EDGE_SECRET";
pub const EDGE_SECRET_HEADER: &str = "x-landing-edge-secret";
/// The viewer's address as the template's CloudFront edge function sets it.
pub const VIEWER_IP_HEADER: &str = "x-landing-viewer-ip";

/// One intake function: the service, and what it needs to tell its edge from a stranger.
pub struct IntakeFunction {
    pub service: IntakeService,
    edge_secret: Option<SecretString>,
}

/// Builds the intake function from the environment and AWS's default credential chain.
pub async fn intake_from_env(env: &Env) -> Result<IntakeFunction, ConfigError> {
    intake(
        &aws_config::load_defaults(BehaviorVersion::latest()).await,
        env,
    )
}

/// Builds the intake function on the given AWS configuration (tests put their own HTTP client in).
pub fn intake(aws: &SdkConfig, env: &Env) -> Result<IntakeFunction, ConfigError> {
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        Tables::from_env(env)?,
    ));
    let scheduler = Arc::new(EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(aws),
        SchedulerConfig::from_env(env)?,
    ));
    let notify = NotifySettings::from_env(env)?;
    // The CRM sync Lambda picks up every INSERT; without a pipeline configured there is none.
    let crm = if env.get("AMOCRM_PIPELINE_ID").is_some() {
        CrmStatus::Pending
    } else {
        CrmStatus::Disabled
    };
    let service = IntakeService::new(
        store,
        scheduler,
        Arc::new(SystemClock),
        IntakeConfig {
            notify_delay: notify.delay,
            windows: notify.windows.clone(),
            idempotency_ttl: IDEMPOTENCY_TTL,
            initial_crm_status: crm,
            payment_links: notify.payment_links.clone(),
            screening: Screening::from_env(env, None)?,
            origins: OriginPolicy::from_env(env)?,
        },
    );
    Ok(IntakeFunction {
        service,
        edge_secret: env
            .get(EDGE_SECRET_VAR)
            .map(|s| SecretString::from(s.to_owned())),
    })
}

impl IntakeFunction {
    /// One API Gateway request through the shared handler: what the function answers.
    pub async fn answer(&self, form: Form, req: Request) -> Response<Body> {
        answer(&self.service, self.edge_secret.as_ref(), form, req).await
    }
}

/// [`IntakeFunction::answer`] for a given service and edge secret.
pub async fn answer(
    service: &IntakeService,
    edge_secret: Option<&SecretString>,
    form: Form,
    req: Request,
) -> Response<Body> {
    {
        let (request_id, source_ip) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(c)) => {
                (c.request_id.clone(), c.http.source_ip.clone())
            }
            _ => (None, None),
        };
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let ctx = landing_http::Context {
            gateway_request_id: request_id,
            client_ip: client_ip(
                source_ip.as_deref(),
                header(EDGE_SECRET_HEADER),
                header(VIEWER_IP_HEADER),
                edge_secret,
            ),
        };
        landing_http::handle(service, form, &req, &ctx)
            .await
            .map(Body::Text)
    }
}

/// Behind CloudFront, API Gateway's `sourceIp` is an edge server's address, shared by every
/// visitor of that edge; the edge function passes the viewer's own. It is believed only with the
/// edge's secret, which a caller going straight to the API does not have (it could otherwise
/// pick a fresh address per request and walk past the per-address limit).
pub fn client_ip(
    source_ip: Option<&str>,
    edge_secret: Option<&str>,
    viewer_ip: Option<&str>,
    expected_secret: Option<&SecretString>,
) -> Option<IpAddr> {
    let from_edge = match (edge_secret, expected_secret) {
        (Some(got), Some(want)) => {
            constant_time_eq(got.as_bytes(), want.expose_secret().as_bytes())
        }
        _ => false,
    };
    let viewer = viewer_ip
        .filter(|_| from_edge)
        .and_then(|ip| ip.trim().parse().ok());
    viewer.or_else(|| source_ip.and_then(|ip| ip.trim().parse().ok()))
}

/// Compares without leaking, through timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The unsubscribe use case over the stack's tables: it reads the lead a link names and writes
/// the suppression list, nothing else.
pub fn unsubscribe(aws: &SdkConfig, env: &Env) -> Result<Unsubscribe, ConfigError> {
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        Tables::from_env(env)?,
    ));
    let secret = env.get(UnsubscribeKey::VAR).ok_or_else(|| {
        ConfigError::new(
            UnsubscribeKey::VAR,
            "is required (it signs the emails' unsubscribe links)",
        )
    })?;
    let key = UnsubscribeKey::new(SecretString::from(secret.to_owned()))?;
    Ok(Unsubscribe::new(
        store.clone(),
        store,
        key,
        Arc::new(SystemClock),
    ))
}

/// The whole `main` of the unsubscribe function. The link's token is its own authentication,
/// and no client address is used: it answers whoever reaches it, through CloudFront or not.
pub async fn serve_unsubscribe() -> Result<(), Error> {
    landing_telemetry::init();
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let svc = unsubscribe(&aws, &Env::from_process())?;
    let svc = &svc;
    run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(
            landing_http::handle_unsubscribe(svc, &req)
                .await
                .map(Body::Text),
        )
    }))
    .await
}

/// The whole `main` of an intake function.
pub async fn serve(form: Form) -> Result<(), Error> {
    landing_telemetry::init();
    let intake = intake_from_env(&Env::from_process()).await?;
    let intake = &intake;
    run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(intake.answer(form, req).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_viewer_address_is_believed_only_from_the_edge() {
        let secret = SecretString::from("edge-secret-0123456789".to_owned());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let edge = Some("130.176.1.1");
        assert_eq!(
            client_ip(
                edge,
                Some("edge-secret-0123456789"),
                Some("203.0.113.9"),
                Some(&secret)
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(edge, Some("guess"), Some("203.0.113.9"), Some(&secret)),
            ip("130.176.1.1"),
            "a wrong secret"
        );
        assert_eq!(
            client_ip(edge, None, Some("203.0.113.9"), Some(&secret)),
            ip("130.176.1.1"),
            "no secret"
        );
        assert_eq!(
            client_ip(
                edge,
                Some("edge-secret-0123456789"),
                Some("203.0.113.9"),
                None
            ),
            ip("130.176.1.1"),
            "no edge configured"
        );
        assert_eq!(
            client_ip(
                edge,
                Some("edge-secret-0123456789"),
                Some("not an ip"),
                Some(&secret)
            ),
            ip("130.176.1.1")
        );
        assert_eq!(
            client_ip(Some("2001:db8::7"), None, None, None),
            ip("2001:db8::7")
        );
        assert_eq!(client_ip(None, None, None, None), None);
    }
}
