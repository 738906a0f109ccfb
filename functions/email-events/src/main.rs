//! Lambda subscribed to the SES configuration set's event topic: records delivery, bounce,
//! complaint and reject events (`events/email-events/*.json`) on the notification rows, and hard
//! bounces and complaints on the suppression list. Environment: see template.yaml.

use aws_config::BehaviorVersion;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use landing_aws_events::wiring;
use landing_core::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    landing_telemetry::init();
    let env = Env::from_process();
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let events = wiring::email_events(wiring::store(&aws, &env)?);
    let events = &events;
    run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        landing_aws_events::email_events(events, event.payload).await
    }))
    .await
}
