//! `Inspect` on DynamoDB: the operators' reads through the `by-day`, `by-phone` and `by-email`
//! indexes (keys only) and `BatchGetItem`, never a scan of a table that grows.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use jiff::{SignedDuration, Timestamp};
use landing_core::domain::{Lead, LeadId, Notification, PersonKey};
use landing_core::ports::{Inspect, StoreError};

use crate::DynamoStore;
use crate::errors::{failure, unavailable};
use crate::items::{self, Item, day_of, s, ts};

pub(crate) const BY_DAY_INDEX: &str = "by-day";
pub(crate) const BY_PHONE_INDEX: &str = "by-phone";
pub(crate) const BY_EMAIL_INDEX: &str = "by-email";

/// BatchGetItem takes at most 100 keys.
const BATCH: usize = 100;
/// Unprocessed keys are retried this often before the read is reported unavailable.
const BATCH_ATTEMPTS: u32 = 8;

impl DynamoStore {
    /// The `id`s of an index query (every page).
    pub(crate) async fn ids(
        &self,
        table: &str,
        index: &str,
        condition: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
        newest_first: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression(condition)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take());
            for (k, v) in &values {
                q = q.expression_attribute_values(*k, v.clone());
            }
            let page = q.send().await.map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) = item.get("id") {
                    out.push(id.clone());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// The items of `ids` (any order), in batches of 100, retrying what DynamoDB left unprocessed.
    pub(crate) async fn batch_get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| HashMap::from([("id".to_owned(), s(id.as_str()))]))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()
                    .map_err(StoreError::unavailable)?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                attempt += 1;
                if attempt > BATCH_ATTEMPTS {
                    return Err(failure(format!(
                        "BatchGetItem on {table} left keys unprocessed {BATCH_ATTEMPTS} times"
                    )));
                }
                if attempt > 1 {
                    tokio::time::sleep(crate::intake::RETRY.jittered(attempt)).await;
                }
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(mut responses) = got.responses {
                    out.extend(responses.remove(table).unwrap_or_default());
                }
                pending = got
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(out)
    }

    /// The UTC days `[from, to)` touches.
    pub(crate) fn days(from: Timestamp, to: Timestamp) -> Vec<String> {
        let mut days = Vec::new();
        let Ok(last) = to.checked_sub(SignedDuration::from_millis(1)) else {
            return days;
        };
        let mut t = from;
        while t <= last && days.len() < 3660 {
            days.push(day_of(t));
            t = match t.checked_add(SignedDuration::from_hours(24)) {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        let end = day_of(last);
        if days.last() != Some(&end) && from <= last {
            days.push(end);
        }
        days
    }
}

#[async_trait]
impl Inspect for DynamoStore {
    /// Via the `by-lead` GSI, so eventually consistent: rows committed a moment ago may be
    /// missing for a short while on real DynamoDB (moto is immediately consistent).
    async fn notifications_for_lead(&self, id: LeadId) -> Result<Vec<Notification>, StoreError> {
        let mut rows = self.query_by_lead(id).await?;
        rows.sort_by(|a, b| (a.channel().as_str(), a.id).cmp(&(b.channel().as_str(), b.id)));
        Ok(rows)
    }

    /// One `by-day` query per UTC day of the range on each table, then `BatchGetItem`s.
    async fn leads_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Lead, Vec<Notification>)>, StoreError> {
        let mut lead_ids = Vec::new();
        let mut row_ids = Vec::new();
        for day in Self::days(from, to) {
            lead_ids.extend(
                self.ids(
                    &self.tables.leads,
                    BY_DAY_INDEX,
                    "created_day = :d AND created_at BETWEEN :from AND :to",
                    vec![
                        (":d", s(day.as_str())),
                        (":from", ts(from)),
                        (":to", ts(to)),
                    ],
                    false,
                )
                .await?,
            );
            row_ids.extend(
                self.ids(
                    &self.tables.notifications,
                    BY_DAY_INDEX,
                    "lead_day = :d",
                    vec![(":d", s(day))],
                    false,
                )
                .await?,
            );
        }
        let mut leads = Vec::new();
        for item in self.batch_get(&self.tables.leads, &lead_ids).await? {
            let lead = items::lead_from_item(item)?;
            // BETWEEN includes `to`; the range does not.
            if lead.created_at >= from && lead.created_at < to {
                leads.push(lead);
            }
        }
        let mut by_lead: HashMap<LeadId, Vec<Notification>> = HashMap::new();
        for item in self.batch_get(&self.tables.notifications, &row_ids).await? {
            let n = items::notification_from_item(item)?;
            by_lead.entry(n.lead_id).or_default().push(n);
        }
        leads.sort_by_key(|l| (l.created_at, l.id));
        Ok(leads
            .into_iter()
            .map(|lead| {
                let mut rows = by_lead.remove(&lead.id).unwrap_or_default();
                rows.sort_by_key(|n| n.channel().as_str());
                (lead, rows)
            })
            .collect())
    }

    async fn leads_of(&self, key: &PersonKey) -> Result<Vec<Lead>, StoreError> {
        let (index, condition, value) = match key.as_str().split_once(':') {
            Some(("phone", p)) => (BY_PHONE_INDEX, "phone = :v", p.to_owned()),
            Some(("email", e)) => (BY_EMAIL_INDEX, "email_key = :v", e.to_owned()),
            _ => return Ok(Vec::new()),
        };
        let ids = self
            .ids(
                &self.tables.leads,
                index,
                condition,
                vec![(":v", s(value))],
                true,
            )
            .await?;
        let mut leads = self
            .batch_get(&self.tables.leads, &ids)
            .await?
            .into_iter()
            .map(items::lead_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        leads.sort_by_key(|l| std::cmp::Reverse((l.created_at, l.id)));
        Ok(leads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_touches_every_utc_day_it_covers() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            DynamoStore::days(t("2026-01-01T23:00:00Z"), t("2026-01-03T00:00:00Z")),
            ["2026-01-01", "2026-01-02"]
        );
        assert_eq!(
            DynamoStore::days(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:01Z")),
            ["2026-01-01"]
        );
        assert_eq!(
            DynamoStore::days(t("2026-01-01T10:00:00Z"), t("2026-01-02T09:00:00Z")),
            ["2026-01-01", "2026-01-02"]
        );
        assert!(DynamoStore::days(t("2026-01-02T00:00:00Z"), t("2026-01-01T00:00:00Z")).is_empty());
    }
}
