//! Mapping SDK failures onto `StoreError`, by the error metadata's code (never by message text).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use landing_core::ports::StoreError;

/// A failure we detected ourselves (as opposed to one the SDK returned).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Failure(pub String);

pub(crate) fn failure(msg: impl Into<String>) -> StoreError {
    StoreError::unavailable(Failure(msg.into()))
}

pub(crate) fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::unavailable(e)
}

pub(crate) fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(column, detail)
}

/// The service's error code (`ConditionalCheckFailedException`, ...), if the service answered.
pub(crate) fn service_code<E, R>(e: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// A conditional write whose condition did not hold.
pub(crate) fn is_condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    service_code(e) == Some("ConditionalCheckFailedException")
}

/// The per-item reasons of a cancelled transaction, in the order of its items; `None` for any
/// other failure (throttled before it ran, network, …).
pub(crate) fn cancellation_reasons<R>(
    e: &SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<CancellationReason>> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
            Some(c.cancellation_reasons().to_vec())
        }
        _ => None,
    }
}
