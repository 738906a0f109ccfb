//! `CrmStateStore` on DynamoDB: the CRM attributes of `landing_leads` and
//! `unified_lead_tracking`. `crm_pending` mirrors `crm_status = pending` on every write, so the
//! sparse `crm-pending` index holds exactly the leads still to sync.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use jiff::Timestamp;
use landing_core::domain::{CrmStatus, LeadId, PersonKey};
use landing_core::ports::{CrmStateStore, Requeue, StoreError};

use crate::DynamoStore;
use crate::errors::{cancellation_reasons, corrupt, failure, is_condition_failed, unavailable};
use crate::intake::RETRY;
use crate::items::{self, CRM_PENDING, Item, n, s, ts};

pub(crate) const CRM_PENDING_INDEX: &str = "crm-pending";

/// Attempts of the `mark_crm_synced` transaction (conflicts with concurrent intake writes on a
/// tracking row are possible) before giving up with `Unavailable`.
const MAX_ATTEMPTS: u32 = 5;

/// Same cap as the SQLite adapter.
fn clip(error: &str) -> String {
    error.chars().take(2000).collect()
}

impl DynamoStore {
    /// `crm_status = pending` again (only from `failed`/`disabled`, or only from `failed`).
    async fn requeue_one(&self, id: &str, from: &[CrmStatus]) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.leads)
            .key("id", s(id))
            .update_expression("SET crm_status = :pending, crm_pending = :cp, crm_attempts = :zero")
            .expression_attribute_values(":pending", s(CrmStatus::Pending.as_str()))
            .expression_attribute_values(":cp", s(CRM_PENDING))
            .expression_attribute_values(":zero", n(0));
        let mut alternatives = Vec::new();
        for (i, status) in from.iter().enumerate() {
            let k = format!(":from{i}");
            alternatives.push(k.clone());
            req = req.expression_attribute_values(k, s(status.as_str()));
        }
        let sent = req
            .condition_expression(format!("crm_status IN ({})", alternatives.join(", ")))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn update(b: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> Result<Update, StoreError> {
    b.build().map_err(StoreError::unavailable)
}

#[async_trait]
impl CrmStateStore for DynamoStore {
    /// Via the `crm-pending` index, oldest `created_at` first (ties in index order, not by id).
    async fn pending_crm(&self, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.tables.leads)
                .index_name(CRM_PENDING_INDEX)
                .key_condition_expression("crm_pending = :cp")
                .expression_attribute_values(":cp", s(CRM_PENDING))
                .scan_index_forward(true)
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                out.push(items::lead_id_of(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn record_crm_deal(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.leads)
            .key("id", s(id.to_string()))
            .expression_attribute_values(":deal", n(deal_id))
            // An unknown lead is left alone (SQLite's UPDATE matches nothing), not created.
            .condition_expression("attribute_exists(id)");
        req = match contact_id {
            Some(c) => req
                .update_expression("SET amocrm_lead_id = :deal, amocrm_contact_id = :contact")
                .expression_attribute_values(":contact", n(c)),
            None => req.update_expression("SET amocrm_lead_id = :deal"),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// One transaction: the lead (`synced`, ids, `crm_synced_at`, `crm_pending` removed) and the
    /// tracking rows of `keys` (ids). Rows that do not exist are not created: their update is
    /// conditional on `attribute_exists`, and an item whose condition failed is dropped from the
    /// next attempt (SQLite's UPDATEs simply match nothing).
    async fn mark_crm_synced(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
        keys: &[PersonKey],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let contact_set = if contact_id.is_some() {
            ", amocrm_contact_id = :contact"
        } else {
            ""
        };
        let with_ids = |b: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
            let b = b.expression_attribute_values(":deal", n(deal_id));
            match contact_id {
                Some(c) => b.expression_attribute_values(":contact", n(c)),
                None => b,
            }
        };
        let mut actions: Vec<Option<TransactWriteItem>> = Vec::new();
        let lead = with_ids(
            Update::builder()
                .table_name(&self.tables.leads)
                .key("id", s(id.to_string()))
                .update_expression(format!(
                    "SET crm_status = :synced, amocrm_lead_id = :deal{contact_set}, \
                     crm_synced_at = :at REMOVE crm_error, crm_pending"
                ))
                .condition_expression("attribute_exists(id)")
                .expression_attribute_values(":synced", s(CrmStatus::Synced.as_str()))
                .expression_attribute_values(":at", ts(at)),
        );
        actions.push(Some(
            TransactWriteItem::builder().update(update(lead)?).build(),
        ));
        let mut seen: Vec<&str> = Vec::new();
        for key in keys {
            if seen.contains(&key.as_str()) {
                continue;
            }
            seen.push(key.as_str());
            let row = with_ids(
                Update::builder()
                    .table_name(&self.tables.tracking)
                    .key("person_key", s(key.as_str()))
                    .update_expression(format!("SET amocrm_lead_id = :deal{contact_set}"))
                    .condition_expression("attribute_exists(person_key)"),
            );
            actions.push(Some(
                TransactWriteItem::builder().update(update(row)?).build(),
            ));
        }

        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY.jittered(attempt + 1)).await;
            }
            let live: Vec<TransactWriteItem> = actions.iter().flatten().cloned().collect();
            if live.is_empty() {
                return Ok(());
            }
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(live))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(unavailable(err));
            };
            // Reasons are indexed like the live actions: map them back to `actions`.
            let live_slots: Vec<usize> = (0..actions.len())
                .filter(|&i| actions[i].is_some())
                .collect();
            let mut retryable = true;
            for (reason, &slot) in reasons.iter().zip(&live_slots) {
                match reason.code().unwrap_or("None") {
                    "None" => {}
                    "ConditionalCheckFailed" => actions[slot] = None,
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" => {
                    }
                    _ => retryable = false,
                }
            }
            last = format!(
                "{:?}",
                reasons
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect::<Vec<_>>()
            );
            if !retryable {
                return Err(failure(format!("mark_crm_synced cancelled: {last}")));
            }
        }
        Err(failure(format!(
            "mark_crm_synced gave up after {MAX_ATTEMPTS} attempts: {last}"
        )))
    }

    async fn record_crm_failure(
        &self,
        id: LeadId,
        error: &str,
        permanent: bool,
    ) -> Result<u32, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.leads)
            .key("id", s(id.to_string()))
            .condition_expression("crm_status = :pending")
            .expression_attribute_values(":pending", s(CrmStatus::Pending.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":e", s(clip(error)))
            .return_values(ReturnValue::UpdatedNew);
        req = if permanent {
            req.update_expression(
                "SET crm_error = :e, crm_status = :failed ADD crm_attempts :one REMOVE crm_pending",
            )
            .expression_attribute_values(":failed", s(CrmStatus::Failed.as_str()))
        } else {
            req.update_expression("SET crm_error = :e ADD crm_attempts :one")
        };
        match req.send().await {
            Ok(out) => match out.attributes.as_ref().and_then(|a| a.get("crm_attempts")) {
                Some(AttributeValue::N(raw)) => raw
                    .parse()
                    .map_err(|e| corrupt("landing_leads.crm_attempts", e)),
                _ => Err(corrupt(
                    "landing_leads.crm_attempts",
                    "missing after update",
                )),
            },
            Err(e) if is_condition_failed(&e) => Ok(0),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// `AllFailed` scans the leads table with a filter: failed leads are rare and this is an
    /// operator's command, so a scan over a table of this size (thousands of items) is
    /// acceptable and saves a second sparse index. Each hit is then requeued with its own
    /// conditional update, so a lead that changed meanwhile is not touched.
    async fn requeue_crm(&self, which: Requeue) -> Result<u64, StoreError> {
        match which {
            Requeue::Lead(id) => Ok(u64::from(
                self.requeue_one(&id.to_string(), &[CrmStatus::Failed, CrmStatus::Disabled])
                    .await?,
            )),
            Requeue::AllFailed => {
                let mut ids = Vec::new();
                let mut start: Option<Item> = None;
                loop {
                    let page = self
                        .client
                        .scan()
                        .table_name(&self.tables.leads)
                        .filter_expression("crm_status = :failed")
                        .expression_attribute_values(":failed", s(CrmStatus::Failed.as_str()))
                        .projection_expression("id")
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(unavailable)?;
                    for item in page.items.unwrap_or_default() {
                        ids.push(items::lead_id_of(&item)?);
                    }
                    match page.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => break,
                    }
                }
                let mut requeued = 0;
                for id in ids {
                    if self
                        .requeue_one(&id.to_string(), &[CrmStatus::Failed])
                        .await?
                    {
                        requeued += 1;
                    }
                }
                Ok(requeued)
            }
        }
    }
}
