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

/// Commits one transaction, trying it again (with the intake's backoff, up to `attempts`
/// times) while it is cancelled only by conflicts with concurrent transactions — nothing was
/// written then, so another try is safe. `Ok(None)`: committed. `Ok(Some(reasons))`: a
/// condition failed; the per-item reasons, in the order of the items. `what` names it in the
/// error after the last try.
pub(crate) async fn transact_through_conflicts(
    client: &aws_sdk_dynamodb::Client,
    actions: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    attempts: u32,
    what: &str,
) -> Result<Option<Vec<CancellationReason>>, StoreError> {
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(crate::intake::RETRY.jittered(attempt + 1)).await;
        }
        let err = match client
            .transact_write_items()
            .set_transact_items(Some(actions.clone()))
            .send()
            .await
        {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let Some(reasons) = cancellation_reasons(&err) else {
            return Err(unavailable(err));
        };
        if reasons
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return Ok(Some(reasons));
        }
        last = reasons
            .iter()
            .filter_map(|r| r.code())
            .filter(|c| *c != "None")
            .collect::<Vec<_>>()
            .join(", ");
    }
    Err(failure(format!(
        "{what} cancelled {attempts} times: {last}"
    )))
}
