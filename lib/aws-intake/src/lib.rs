//! The intake Lambdas (`proftest`, `submit`): API Gateway's requests (through `lambda_http`)
//! into the shared `landing-http` handler, over the DynamoDB lead store and the EventBridge
//! Scheduler. Configuration comes from the environment the SAM
//! template sets; clients are built once per cold start.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use landing_aws_dynamo::{DynamoStore, Tables};
use landing_aws_scheduler::{EventBridgeScheduler, SchedulerConfig};
use landing_core::config::{ConfigError, Env, NotifySettings};
use landing_core::domain::{CrmStatus, Form};
use landing_core::intake::{IDEMPOTENCY_TTL, IntakeConfig, IntakeService};
use landing_core::ports::SystemClock;

/// Builds the intake service from the environment and AWS's default credential chain.
pub async fn intake_from_env(env: &Env) -> Result<IntakeService, ConfigError> {
    intake(
        &aws_config::load_defaults(BehaviorVersion::latest()).await,
        env,
    )
}

/// Builds the intake service on the given AWS configuration (tests put their own HTTP client in).
pub fn intake(aws: &SdkConfig, env: &Env) -> Result<IntakeService, ConfigError> {
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
    Ok(IntakeService::new(
        store,
        scheduler,
        Arc::new(SystemClock),
        IntakeConfig {
            notify_delay: notify.delay,
            idempotency_ttl: IDEMPOTENCY_TTL,
            initial_crm_status: crm,
            payment_links: notify.payment_links.clone(),
        },
    ))
}

/// One API Gateway request through the shared handler: what the function answers.
pub async fn answer(intake: &IntakeService, form: Form, req: Request) -> Response<Body> {
    let ctx = landing_http::Context {
        gateway_request_id: match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
            _ => None,
        },
    };
    landing_http::handle(intake, form, &req, &ctx)
        .await
        .map(Body::Text)
}

/// The whole `main` of an intake function.
pub async fn serve(form: Form) -> Result<(), Error> {
    landing_telemetry::init();
    let intake = intake_from_env(&Env::from_process()).await?;
    let intake = &intake;
    run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(answer(intake, form, req).await)
    }))
    .await
}
