//! `QuotaStore` on DynamoDB: one counter item per quota and window, all of one take charged in
//! one `TransactWriteItems` whose per-item condition (`used < limit`) is what makes "never over"
//! hold under any concurrency. No read, no scan: a take is one request (two on a conflict).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use jiff::Timestamp;
use landing_core::guard::Quota;
use landing_core::ports::{QuotaStore, StoreError};

use crate::DynamoStore;
use crate::errors::transact_through_conflicts;
use crate::items::{n, s};

/// Takes that still conflict after this many tries report the store unavailable (the
/// dispatcher then leaves the SMS to its lease: delayed, never sent unchecked).
const MAX_ATTEMPTS: u32 = 8;

/// Counters outlive their window by a day; TTL only cleans up, the window is in the key.
const TTL_SLACK_SECS: i64 = 86_400;

#[async_trait]
impl QuotaStore for DynamoStore {
    async fn take(&self, quotas: &[Quota], now: Timestamp) -> Result<Vec<usize>, StoreError> {
        if quotas.is_empty() {
            return Ok(Vec::new());
        }
        let mut actions = Vec::with_capacity(quotas.len());
        for q in quotas {
            let ttl = q.window_end(now).as_second().saturating_add(TTL_SLACK_SECS);
            let update = Update::builder()
                .table_name(&self.tables.quotas)
                .key("key", s(q.item_key(now)))
                .update_expression("ADD #used :one SET #ttl = if_not_exists(#ttl, :ttl)")
                .condition_expression("attribute_not_exists(#used) OR #used < :limit")
                .expression_attribute_names("#used", "used")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(q.limit))
                .expression_attribute_values(":ttl", n(ttl))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        // A conflict with a concurrent take of the same counter charges nothing: tried again.
        Ok(
            match transact_through_conflicts(&self.client, actions, MAX_ATTEMPTS, "quota take")
                .await?
            {
                None => Vec::new(),
                Some(reasons) => reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect(),
            },
        )
    }
}
