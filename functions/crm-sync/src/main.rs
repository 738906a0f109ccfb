//! Lambda on the leads table's DynamoDB stream: syncs INSERTed leads to AmoCRM and reports the
//! records to retry in `batchItemFailures` (`events/crm-sync/stream-insert-and-modify.json`).

use aws_config::BehaviorVersion;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use landing_aws_events::wiring;
use landing_core::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    landing_telemetry::init();
    let env = Env::from_process();
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let sync = wiring::crm_sync(&aws, &env, wiring::store(&aws, &env)?).await?;
    let sync = &sync;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(match sync {
            Some(sync) => landing_aws_events::crm_sync(sync, event.payload).await,
            // Off: the leads stay pending and the sweeper syncs them once credentials exist.
            None => DynamoDbEventResponse::default(),
        })
    }))
    .await
}
