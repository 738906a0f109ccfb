//! Lambda for `GET|POST /api/landing/unsubscribe` (API Gateway HTTP API, payload 2.0): the
//! emails' one-click unsubscribe (RFC 8058) over the DynamoDB leads and suppression tables.
//! Environment: see template.yaml.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    landing_aws_intake::serve_unsubscribe().await
}
