//! Lambda on `rate(5 minutes)`: sends overdue notifications and re-drives stale CRM syncs
//! (`events/sweeper/scheduled-event.json`; the event's content is not used).

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use landing_aws_events::{SweepConfig, wiring};
use landing_core::config::Env;
use landing_core::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    landing_telemetry::init();
    let env = Env::from_process();
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = wiring::store(&aws, &env)?;
    let dispatcher = wiring::dispatcher(&aws, &env, store.clone())?;
    let sync = wiring::crm_sync(&aws, &env, store.clone()).await?;
    let (dispatcher, sync, config) = (&dispatcher, &sync, &SweepConfig::default());
    run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            landing_aws_events::sweep(dispatcher, sync.as_ref(), &SystemClock, config).await
        },
    ))
    .await
}
