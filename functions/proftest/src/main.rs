//! Lambda for `POST /api/landing/proftest` (API Gateway HTTP API, payload 2.0): the shared intake handler over
//! DynamoDB and EventBridge Scheduler. Environment: see template.yaml.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    landing_aws_intake::serve(landing_core::domain::Form::ProfTest).await
}
