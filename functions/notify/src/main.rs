//! Lambda invoked by the one-shot EventBridge Scheduler entry of a lead, with the payload
//! `{"leadId": "…", "correlationId": "…"}` (`events/notify/scheduler-payload.json`).

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use landing_aws_events::wiring;
use landing_core::config::Env;
use landing_core::notify::NotifyPayload;

#[tokio::main]
async fn main() -> Result<(), Error> {
    landing_telemetry::init();
    let env = Env::from_process();
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let dispatcher = wiring::dispatcher(&aws, &env, wiring::store(&aws, &env)?)?;
    let dispatcher = &dispatcher;
    run(service_fn(
        move |event: LambdaEvent<NotifyPayload>| async move {
            landing_aws_events::notify(dispatcher, event.payload).await
        },
    ))
    .await
}
