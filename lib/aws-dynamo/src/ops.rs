//! `LeadOps` on DynamoDB: the release of a quarantined lead as one transaction — the lead
//! (conditional on still being quarantined, so a second release changes nothing) and each of its
//! suppressed rows.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use jiff::Timestamp;
use landing_core::domain::{CrmStatus, LeadId, NotificationStatus, SuppressReason};
use landing_core::ports::{LeadOps, Released, Resend, StoreError};

use crate::DynamoStore;
use crate::errors::{failure, is_condition_failed, transact_through_conflicts, unavailable};
use crate::items::{self, CRM_PENDING, DUE_SHARD, n, s, ts};

const MAX_ATTEMPTS: u32 = 5;

#[async_trait]
impl LeadOps for DynamoStore {
    /// One lead: its rows via `by-lead`. Since an instant: the `by-day` index of the
    /// notifications for every day up to now. Each row by a conditional update (`failed` only).
    async fn resend_failed(&self, which: Resend, now: Timestamp) -> Result<u64, StoreError> {
        let rows = match which {
            Resend::Lead(id) => self.query_by_lead(id).await?,
            Resend::FailedSince(since) => {
                let to = now
                    .checked_add(jiff::SignedDuration::from_hours(24))
                    .unwrap_or(now);
                let mut ids = Vec::new();
                for day in DynamoStore::days(since, to) {
                    ids.extend(
                        self.ids(
                            &self.tables.notifications,
                            crate::inspect::BY_DAY_INDEX,
                            "lead_day = :d",
                            vec![(":d", s(day))],
                            false,
                        )
                        .await?,
                    );
                }
                self.batch_get(&self.tables.notifications, &ids)
                    .await?
                    .into_iter()
                    .map(items::notification_from_item)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let mut resent = 0;
        for x in rows
            .iter()
            .filter(|x| x.status == NotificationStatus::Failed)
        {
            let sent = self
                .client
                .update_item()
                .table_name(&self.tables.notifications)
                .key("id", s(x.id.to_string()))
                .update_expression(
                    "SET #s = :pending, send_at = :now, attempts = :zero, due_shard = :due, \
                     due_at = :now REMOVE last_error, failed_at, claimed_until",
                )
                .condition_expression("#s = :failed")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":pending", s(NotificationStatus::Pending.as_str()))
                .expression_attribute_values(":failed", s(NotificationStatus::Failed.as_str()))
                .expression_attribute_values(":now", ts(now))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":due", s(DUE_SHARD))
                .send()
                .await;
            match sent {
                Ok(_) => resent += 1,
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(resent)
    }

    async fn release_quarantined(
        &self,
        id: LeadId,
        crm: CrmStatus,
        now: Timestamp,
    ) -> Result<Released, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.tables.leads)
            .key("id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = got.item else {
            return Ok(Released::NotFound);
        };
        if items::lead_from_item(item)?.crm.status != CrmStatus::Quarantined {
            return Ok(Released::NotQuarantined);
        }
        let rows: Vec<_> = self
            .query_by_lead(id)
            .await?
            .into_iter()
            .filter(|x| {
                x.status == NotificationStatus::Suppressed
                    && x.suppressed_reason == Some(SuppressReason::Quarantined)
            })
            .collect();

        let build = |u: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
            u.build()
                .map(|u| TransactWriteItem::builder().update(u).build())
                .map_err(StoreError::unavailable)
        };
        let mut lead = Update::builder()
            .table_name(&self.tables.leads)
            .key("id", s(id.to_string()))
            .condition_expression("crm_status = :q")
            .expression_attribute_values(":q", s(CrmStatus::Quarantined.as_str()))
            .expression_attribute_values(":crm", s(crm.as_str()));
        lead = if crm == CrmStatus::Pending {
            lead.update_expression(
                "SET crm_status = :crm, crm_pending = :cp REMOVE quarantine_reason",
            )
            .expression_attribute_values(":cp", s(CRM_PENDING))
        } else {
            lead.update_expression("SET crm_status = :crm REMOVE quarantine_reason")
        };
        let mut actions = vec![build(lead)?];
        for x in &rows {
            actions.push(build(
                Update::builder()
                    .table_name(&self.tables.notifications)
                    .key("id", s(x.id.to_string()))
                    .update_expression(
                        "SET #s = :pending, send_at = :now, attempts = :zero, due_shard = :due, \
                         due_at = :now REMOVE suppressed_reason",
                    )
                    .condition_expression("#s = :suppressed AND suppressed_reason = :quarantined")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(
                        ":pending",
                        s(NotificationStatus::Pending.as_str()),
                    )
                    .expression_attribute_values(
                        ":suppressed",
                        s(NotificationStatus::Suppressed.as_str()),
                    )
                    .expression_attribute_values(
                        ":quarantined",
                        s(SuppressReason::Quarantined.as_str()),
                    )
                    .expression_attribute_values(":now", ts(now))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":due", s(DUE_SHARD)),
            )?);
        }
        let rows = rows.len() as u64;
        match transact_through_conflicts(&self.client, actions, MAX_ATTEMPTS, "release").await? {
            None => Ok(Released::Released {
                notifications: rows,
            }),
            // The first item is the lead's `crm_status = quarantined` condition.
            Some(reasons)
                if reasons
                    .first()
                    .is_some_and(|r| r.code() == Some("ConditionalCheckFailed")) =>
            {
                Ok(Released::NotQuarantined)
            }
            Some(reasons) => Err(failure(format!(
                "release refused by a notification row's condition: {}",
                reasons
                    .iter()
                    .filter_map(|r| r.code())
                    .filter(|c| *c != "None")
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}
