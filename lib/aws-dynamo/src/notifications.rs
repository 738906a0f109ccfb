//! `NotificationStore` on DynamoDB: candidates from a GSI, claims and settlements as conditional
//! `UpdateItem`s on the base item.
//!
//! A row is due by `(due_by, now)` when it is `pending` with `send_at <= due_by` or `sending`
//! with `claimed_until <= now`. Both kinds sit in the sparse `due` index under `due_at`
//! (`send_at` resp. `claimed_until`), so one Query `due_at <= max(due_by, now)` finds every
//! candidate; the exact rule is then the claim's condition expression, evaluated atomically on
//! the item — that, not the (eventually consistent) index, is what makes a row claimable once.
//!
//! Oldest first means by `send_at` (as in SQLite), and an expired lease's `due_at` is not its
//! `send_at`, so `claim_due` reads the whole candidate set before choosing. The set is small
//! (rows due now plus expired leases), so this costs one or two pages at this volume.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use jiff::Timestamp;
use landing_core::domain::{HoldReason, LeadId, Notification, NotificationStatus, SuppressReason};
use landing_core::ports::{EmailEventRecord, NotificationStore, StoreError};
use landing_core::time;
use uuid::Uuid;

use crate::DynamoStore;
use crate::errors::{is_condition_failed, unavailable};
use crate::items::{self, DUE_SHARD, Item, n, s, ts};

pub(crate) const DUE_INDEX: &str = "due";
pub(crate) const BY_LEAD_INDEX: &str = "by-lead";

/// The claim rule, evaluated on a row we already read (to skip hopeless conditional writes).
fn is_due(x: &Notification, due_by: Timestamp, now: Timestamp) -> bool {
    match x.status {
        NotificationStatus::Pending => x.send_at <= due_by,
        NotificationStatus::Sending => x.claimed_until.is_some_and(|c| c <= now),
        NotificationStatus::Sent | NotificationStatus::Failed | NotificationStatus::Suppressed => {
            false
        }
    }
}

impl DynamoStore {
    /// Every item of the `due` index with `due_at <= horizon` (all of them without a horizon).
    async fn query_due(&self, horizon: Option<Timestamp>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.tables.notifications)
                .index_name(DUE_INDEX)
                .expression_attribute_values(":due", s(DUE_SHARD))
                .set_exclusive_start_key(start.take());
            q = match horizon {
                Some(h) => q
                    .key_condition_expression("due_shard = :due AND due_at <= :h")
                    .expression_attribute_values(":h", ts(h)),
                None => q.key_condition_expression("due_shard = :due"),
            };
            let page = q.send().await.map_err(unavailable)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Every row of one lead, via the `by-lead` index.
    pub(crate) async fn query_by_lead(
        &self,
        lead: LeadId,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.notifications)
                .index_name(BY_LEAD_INDEX)
                .key_condition_expression("lead_id = :l")
                .expression_attribute_values(":l", s(lead.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                out.push(items::notification_from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// One conditional claim: `None` if the row is not (or no longer) due — someone else won.
    async fn claim_one(
        &self,
        id: Uuid,
        due_by: Timestamp,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<Notification>, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("id", s(id.to_string()))
            .update_expression(
                "SET #s = :sending, attempts = attempts + :one, claimed_until = :until, \
                 due_shard = :due, due_at = :until REMOVE hold_reason",
            )
            .condition_expression(
                "(#s = :pending AND send_at <= :due_by) OR (#s = :sending AND claimed_until <= :now)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":sending", s(NotificationStatus::Sending.as_str()))
            .expression_attribute_values(":pending", s(NotificationStatus::Pending.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", ts(until))
            .expression_attribute_values(":due", s(DUE_SHARD))
            .expression_attribute_values(":due_by", ts(due_by))
            .expression_attribute_values(":now", ts(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match sent {
            Ok(out) => out
                .attributes
                .map(items::notification_from_item)
                .transpose(),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn claim(
        &self,
        mut candidates: Vec<Notification>,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        candidates.retain(|x| is_due(x, due_by, now));
        candidates.sort_by_key(|x| (x.send_at, x.id));
        let until = time::add(now, lease);
        let mut claimed = Vec::new();
        for c in candidates {
            if claimed.len() >= limit {
                break;
            }
            if let Some(x) = self.claim_one(c.id, due_by, now, until).await? {
                claimed.push(x);
            }
        }
        claimed.sort_by_key(|x| (x.send_at, x.id));
        Ok(claimed)
    }

    /// A transition out of `sending`, allowed only to the holder of the latest claim.
    async fn settle(
        &self,
        id: Uuid,
        attempt: u32,
        update: &str,
        mut values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<bool, StoreError> {
        values.push((":sending", s(NotificationStatus::Sending.as_str())));
        values.push((":attempt", n(attempt)));
        self.update_row(
            id,
            update,
            "#s = :sending AND attempts = :attempt",
            &[("#s", "status")],
            values,
        )
        .await
    }

    /// One conditional UpdateItem of a row; `false` when the condition does not hold.
    async fn update_row(
        &self,
        id: Uuid,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("id", s(id.to_string()))
            .update_expression(update)
            .condition_expression(condition);
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl NotificationStore for DynamoStore {
    async fn claim_due(
        &self,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let candidates = self
            .query_due(Some(due_by.max(now)))
            .await?
            .into_iter()
            .map(items::notification_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        self.claim(candidates, due_by, now, lease, limit).await
    }

    async fn claim_for_lead(
        &self,
        lead_id: LeadId,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Vec<Notification>, StoreError> {
        let candidates = self.query_by_lead(lead_id).await?;
        self.claim(candidates, due_by, now, lease, usize::MAX).await
    }

    async fn mark_sent(
        &self,
        id: Uuid,
        attempt: u32,
        provider_message_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.settle(
            id,
            attempt,
            "SET #s = :sent, provider_message_id = :p, sent_at = :at \
             REMOVE claimed_until, last_error, due_shard, due_at",
            vec![
                (":sent", s(NotificationStatus::Sent.as_str())),
                (":p", s(provider_message_id)),
                (":at", ts(now)),
            ],
        )
        .await
    }

    async fn release(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.settle(
            id,
            attempt,
            "SET #s = :pending, send_at = :retry, last_error = :e, due_shard = :due, \
             due_at = :retry REMOVE claimed_until",
            vec![
                (":pending", s(NotificationStatus::Pending.as_str())),
                (":retry", ts(retry_at)),
                (":e", s(error)),
                (":due", s(DUE_SHARD)),
            ],
        )
        .await
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.settle(
            id,
            attempt,
            "SET #s = :failed, last_error = :e, failed_at = :at REMOVE claimed_until, due_shard, due_at",
            vec![
                (":failed", s(NotificationStatus::Failed.as_str())),
                (":e", s(error)),
                (":at", ts(now)),
            ],
        )
        .await
    }

    async fn suppress(
        &self,
        id: Uuid,
        attempt: u32,
        reason: SuppressReason,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.settle(
            id,
            attempt,
            "SET #s = :suppressed, suppressed_reason = :r \
             REMOVE claimed_until, due_shard, due_at",
            vec![
                (":suppressed", s(NotificationStatus::Suppressed.as_str())),
                (":r", s(reason.as_str())),
            ],
        )
        .await
    }

    async fn hold(
        &self,
        id: Uuid,
        attempt: u32,
        until: Timestamp,
        reason: HoldReason,
    ) -> Result<bool, StoreError> {
        self.settle(
            id,
            attempt,
            "SET #s = :pending, send_at = :until, hold_reason = :r, due_shard = :due, \
             due_at = :until, attempts = attempts - :one REMOVE claimed_until",
            vec![
                (":pending", s(NotificationStatus::Pending.as_str())),
                (":until", ts(until)),
                (":r", s(reason.as_str())),
                (":due", s(DUE_SHARD)),
                (":one", n(1)),
            ],
        )
        .await
    }

    async fn record_email_event(
        &self,
        id: Uuid,
        event: &EmailEventRecord,
    ) -> Result<bool, StoreError> {
        let (update, values) = match event {
            EmailEventRecord::Delivered { at } => {
                ("SET delivered_at = :at", vec![(":at", ts(*at))])
            }
            EmailEventRecord::Feedback { kind, detail } => (
                "SET feedback = :k, feedback_detail = :d",
                vec![(":k", s(kind.as_str())), (":d", s(detail.as_str()))],
            ),
        };
        self.update_row(id, update, "attribute_exists(id)", &[], values)
            .await
    }

    /// The first item of the `due` index: `due_at` is `send_at` for pending rows and the lease
    /// end for claimed ones, exactly "the earliest instant some row becomes claimable".
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.tables.notifications)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_shard = :due")
            .expression_attribute_values(":due", s(DUE_SHARD))
            .scan_index_forward(true)
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        match page.items.unwrap_or_default().first() {
            Some(item) => items::due_at_of(item),
            None => Ok(None),
        }
    }

    async fn release_all_claims(&self) -> Result<u64, StoreError> {
        let mut released = 0;
        for item in self.query_due(None).await? {
            let x = items::notification_from_item(item)?;
            if x.status != NotificationStatus::Sending {
                continue;
            }
            let sent = self
                .client
                .update_item()
                .table_name(&self.tables.notifications)
                .key("id", s(x.id.to_string()))
                .update_expression("SET #s = :pending, due_at = send_at REMOVE claimed_until")
                .condition_expression("#s = :sending")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":pending", s(NotificationStatus::Pending.as_str()))
                .expression_attribute_values(":sending", s(NotificationStatus::Sending.as_str()))
                .send()
                .await;
            match sent {
                Ok(_) => released += 1,
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(released)
    }
}
