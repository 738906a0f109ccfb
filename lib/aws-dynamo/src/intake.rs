//! `LeadStore` on DynamoDB: the intake write is one `TransactWriteItems`.
//!
//! The transaction holds, in this order: Put lead (`attribute_not_exists(id)`), Put each
//! notification (`attribute_not_exists(id)`), Update each tracking row, Put the idempotency
//! record (`attribute_not_exists(#k) OR expires_at <= :now`, returning the old item on
//! failure). A cancelled transaction is judged by its `CancellationReasons`, index by index:
//!
//! * idempotency item `ConditionalCheckFailed` → the stored record decides: `Replay` (same
//!   hash, completed), `KeyReused` (other hash), `InFlight` (not completed); if it has expired
//!   or vanished meanwhile (TTL), the transaction is retried;
//! * idempotency item `TransactionConflict` → `InFlight` (another request with the key is
//!   committing right now);
//! * lead or notification `ConditionalCheckFailed` → an id collision: an error, nothing written;
//! * tracking `ConditionalCheckFailed` (the row changed since we read it) or a
//!   `TransactionConflict` elsewhere (two leads of one person at once) or throttling → re-read
//!   and retry a few times with jittered backoff, then `StoreError::Unavailable`.
//!
//! # Tracking: read, then a conditional update
//!
//! First/last touch must follow `created_at`, not commit order (contract case
//! `tracking_keeps_last_touch_when_an_older_lead_arrives_late`), which one unconditional
//! update expression cannot express (`if_not_exists` only knows "absent", not "older"). So the
//! row is read first (strongly consistent) and the update is built from `Tracking::apply`'s
//! decision — does this touch move the last touch? the first touch? — with a condition that
//! re-asserts exactly that decision (`last_seen <= :at` or `last_seen > :at`, and
//! `first_seen > :at` or `first_seen <= :at`; `attribute_not_exists` for a new row). Counters
//! use `ADD`, so concurrent touches never lose a count, and the condition fails only when a
//! concurrent touch changed the ordering decision; then the whole transaction is retried from a
//! fresh read. `amocrm_*` ids on the row are never touched here.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use landing_core::domain::{
    Form, Lead, LeadId, Notification, PersonKey, Placement, Tracking, TrackingTouch,
};
use landing_core::ports::{IntakeOutcome, IntakeWrite, LeadStore, StoreError};
use landing_core::time::Backoff;

use crate::DynamoStore;
use crate::errors::{Failure, cancellation_reasons, corrupt, failure, unavailable};
use crate::items::{self, Item, n, s, ts};

/// Attempts of the whole transaction before giving up with `Unavailable`.
const MAX_ATTEMPTS: u32 = 6;

fn sdk_build(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::unavailable(e)
}

/// Where each part of the intake write sits in the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub notifications: std::ops::Range<usize>,
    pub tracking: std::ops::Range<usize>,
    pub idempotency: Option<usize>,
}

/// What a cancelled intake transaction means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cancelled {
    /// The idempotency record exists and has not expired; here it is if the service returned it.
    KeyTaken(Option<Item>),
    /// Another transaction is writing the same idempotency record right now.
    InFlight,
    /// Worth another attempt (a tracking row changed, a conflict, throttling).
    Retry(String),
    /// Will not succeed by retrying (an id collision, a validation error).
    Fail(String),
}

const LEAD_INDEX: usize = 0;

pub(crate) fn judge_cancellation(reasons: &[CancellationReason], layout: &Layout) -> Cancelled {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    if reasons.is_empty() {
        return Cancelled::Retry("transaction cancelled without reasons".into());
    }
    if let Some(i) = layout.idempotency {
        match code(i) {
            "ConditionalCheckFailed" => {
                return Cancelled::KeyTaken(reasons.get(i).and_then(|r| r.item().cloned()));
            }
            "TransactionConflict" => return Cancelled::InFlight,
            _ => {}
        }
    }
    if code(LEAD_INDEX) == "ConditionalCheckFailed" {
        return Cancelled::Fail("a lead with this id already exists".into());
    }
    if layout
        .notifications
        .clone()
        .any(|i| code(i) == "ConditionalCheckFailed")
    {
        return Cancelled::Fail("a notification with this id already exists".into());
    }
    let codes: Vec<&str> = (0..reasons.len()).map(code).collect();
    let retryable = |c: &str| {
        matches!(
            c,
            "None"
                | "ConditionalCheckFailed"
                | "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded"
        )
    };
    // Only tracking conditions are left to fail, and those are retried from a fresh read.
    if codes.iter().all(|c| retryable(c)) {
        Cancelled::Retry(format!("transaction cancelled: {codes:?}"))
    } else {
        Cancelled::Fail(format!("transaction cancelled: {codes:?}"))
    }
}

/// Between attempts of a transaction that lost a race: 20 ms doubling to 400 ms, jittered so
/// that racing writers spread out.
pub(crate) const RETRY: Backoff =
    Backoff::new(Duration::from_millis(20), Duration::from_millis(400));

fn form_count_attr(form: Form) -> &'static str {
    match form {
        Form::ProfTest => "proftest_count",
        Form::ExpressCourse => "expresscourse_count",
    }
}

/// An update of `touch`'s tracking row with the values every tracking update may use.
fn touch_update(
    table: &str,
    touch: &TrackingTouch,
) -> Result<aws_sdk_dynamodb::types::builders::UpdateBuilder, StoreError> {
    Ok(Update::builder()
        .table_name(table)
        .key("person_key", s(touch.key.as_str()))
        .expression_attribute_values(":at", ts(touch.at))
        .expression_attribute_values(":camp", s(touch.campaign.as_str()))
        .expression_attribute_values(":utm", items::utm_value(&touch.utm)?)
        .expression_attribute_values(":lid", s(touch.lead_id.to_string())))
}

/// The update of one tracking row for `touch`, given the row as just read (`None`: absent).
pub(crate) fn tracking_update(
    table: &str,
    touch: &TrackingTouch,
    current: Option<&Tracking>,
) -> Result<Update, StoreError> {
    let mut b = touch_update(table, touch)?;
    let mut set: Vec<&str> = Vec::new();
    if let Some(pm) = touch.payment_method {
        b = b.expression_attribute_values(":pm", s(pm.as_str()));
        set.push("last_payment_method = :pm");
    }
    let count = form_count_attr(touch.form);
    let expression = match current {
        None => {
            let other = match touch.form {
                Form::ProfTest => form_count_attr(Form::ExpressCourse),
                Form::ExpressCourse => form_count_attr(Form::ProfTest),
            };
            b = b
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0))
                .condition_expression("attribute_not_exists(person_key)");
            let mut all = vec![
                "first_seen = :at",
                "last_seen = :at",
                "first_campaign = :camp",
                "first_utm = :utm",
                "last_campaign = :camp",
                "last_utm = :utm",
                "last_lead_id = :lid",
            ];
            all.extend(set);
            format!("SET {}, {count} = :one, {other} = :zero", all.join(", "))
        }
        Some(row) => {
            // The same decisions as `Tracking::apply`, each re-asserted by the condition.
            let Placement {
                moves_last,
                moves_first,
            } = row.placement(touch.at);
            if moves_last {
                set.extend([
                    "last_seen = :at",
                    "last_campaign = :camp",
                    "last_utm = :utm",
                    "last_lead_id = :lid",
                ]);
            }
            if moves_first {
                set.extend([
                    "first_seen = :at",
                    "first_campaign = :camp",
                    "first_utm = :utm",
                ]);
            }
            let condition = format!(
                "attribute_exists(person_key) AND {} AND {}",
                if moves_last {
                    "last_seen <= :at"
                } else {
                    "last_seen > :at"
                },
                if moves_first {
                    "first_seen > :at"
                } else {
                    "first_seen <= :at"
                },
            );
            b = b
                .expression_attribute_values(":one", n(1))
                .condition_expression(condition);
            if set.is_empty() {
                format!("ADD {count} :one")
            } else {
                format!("SET {} ADD {count} :one", set.join(", "))
            }
        }
    };
    // Unused placeholders are a ValidationException: keep only the ones the expressions use.
    let built = b.update_expression(expression).build().map_err(sdk_build)?;
    Ok(prune_values(built))
}

/// The update of one tracking row for `touch` without reading the row first, valid whenever
/// `touch` is the newest touch of the person — which it is unless two Lambdas' clocks disagree.
/// The condition says exactly that; if it fails, the caller falls back to read-then-update
/// ([`tracking_update`]). This keeps intake at one DynamoDB call (plus the schedule) per lead.
pub(crate) fn tracking_update_newest(
    table: &str,
    touch: &TrackingTouch,
) -> Result<Update, StoreError> {
    let count = form_count_attr(touch.form);
    let other = match touch.form {
        Form::ProfTest => form_count_attr(Form::ExpressCourse),
        Form::ExpressCourse => form_count_attr(Form::ProfTest),
    };
    let mut set = vec![
        "last_seen = :at".to_owned(),
        "last_campaign = :camp".to_owned(),
        "last_utm = :utm".to_owned(),
        "last_lead_id = :lid".to_owned(),
        // The newest touch never moves first touch; it only creates it on a new row.
        "first_seen = if_not_exists(first_seen, :at)".to_owned(),
        "first_campaign = if_not_exists(first_campaign, :camp)".to_owned(),
        "first_utm = if_not_exists(first_utm, :utm)".to_owned(),
        format!("{other} = if_not_exists({other}, :zero)"),
    ];
    let mut b = touch_update(table, touch)?
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":zero", n(0))
        .condition_expression("attribute_not_exists(person_key) OR last_seen <= :at");
    if let Some(pm) = touch.payment_method {
        b = b.expression_attribute_values(":pm", s(pm.as_str()));
        set.push("last_payment_method = :pm".to_owned());
    }
    let built = b
        .update_expression(format!("SET {} ADD {count} :one", set.join(", ")))
        .build()
        .map_err(sdk_build)?;
    Ok(prune_values(built))
}

/// Drops `ExpressionAttributeValues` that neither expression mentions (DynamoDB rejects unused
/// ones).
fn prune_values(u: Update) -> Update {
    let used = |k: &str| {
        let hit = |e: &str| {
            e.match_indices(k).any(|(i, _)| {
                !e[i + k.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        };
        hit(u.update_expression()) || u.condition_expression().is_some_and(hit)
    };
    let values = u.expression_attribute_values().cloned().unwrap_or_default();
    let kept: Item = values.into_iter().filter(|(k, _)| used(k)).collect();
    let mut b = Update::builder()
        .table_name(u.table_name())
        .set_key(Some(u.key().clone()))
        .update_expression(u.update_expression())
        .set_condition_expression(u.condition_expression().map(str::to_owned))
        .set_expression_attribute_names(u.expression_attribute_names().cloned());
    if !kept.is_empty() {
        b = b.set_expression_attribute_values(Some(kept));
    }
    // Every required field was already set on `u`, so building again cannot fail; fall back to
    // the original if it somehow does.
    b.build().unwrap_or(u)
}

fn lead_put(table: &str, lead: &Lead) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(items::lead_to_item(lead)?))
                .condition_expression("attribute_not_exists(id)")
                .build()
                .map_err(sdk_build)?,
        )
        .build())
}

fn notification_put(
    table: &str,
    x: &Notification,
    lead_created: jiff::Timestamp,
) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(items::notification_to_item(x, lead_created)?))
                .condition_expression("attribute_not_exists(id)")
                .build()
                .map_err(sdk_build)?,
        )
        .build())
}

fn idempotency_put(
    table: &str,
    rec: &landing_core::domain::IdempotencyRecord,
    now: jiff::Timestamp,
) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(items::idempotency_to_item(rec)?))
                // Records that expired at or before `now` count as absent (as in SQLite).
                .condition_expression("attribute_not_exists(#k) OR expires_at <= :now")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":now", ts(now))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(sdk_build)?,
        )
        .build())
}

impl DynamoStore {
    async fn read_tracking(&self, key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.tracking)
            .key("person_key", s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(items::tracking_from_item).transpose()
    }

    async fn read_idempotency(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.idempotency)
            .key("key", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }
}

#[async_trait]
impl LeadStore for DynamoStore {
    async fn commit_intake(&self, write: IntakeWrite) -> Result<IntakeOutcome, StoreError> {
        let t = &self.tables;
        // Deduplicated: two actions on one item are a ValidationException.
        let mut touches: Vec<&TrackingTouch> = Vec::new();
        for touch in &write.tracking {
            if !touches.iter().any(|x| x.key == touch.key) {
                touches.push(touch);
            }
        }
        let mut fixed = vec![lead_put(&t.leads, &write.lead)?];
        for x in &write.notifications {
            fixed.push(notification_put(
                &t.notifications,
                x,
                write.lead.created_at,
            )?);
        }
        let idempotency = write
            .idempotency
            .as_ref()
            .map(|rec| idempotency_put(&t.idempotency, rec, write.now))
            .transpose()?;
        let layout = Layout {
            notifications: 1..fixed.len(),
            tracking: fixed.len()..fixed.len() + touches.len(),
            idempotency: idempotency.as_ref().map(|_| fixed.len() + touches.len()),
        };

        let mut last_reason = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY.jittered(attempt + 1)).await;
            }
            let mut actions = fixed.clone();
            for touch in &touches {
                // First attempt: assume this lead is the person's newest touch (no read). A
                // tracking condition failure means it is not; retries read the row first.
                let update = if attempt == 0 {
                    tracking_update_newest(&t.tracking, touch)?
                } else {
                    let current = self.read_tracking(&touch.key).await?;
                    tracking_update(&t.tracking, touch, current.as_ref())?
                };
                actions.push(TransactWriteItem::builder().update(update).build());
            }
            actions.extend(idempotency.clone());

            // A fresh token per attempt (the actions differ between attempts); within one
            // attempt it makes the SDK's own retries idempotent, so a commit whose response was
            // lost is not reported as an id collision.
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .client_request_token(uuid::Uuid::now_v7().simple().to_string())
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(IntakeOutcome::Committed),
                Err(e) => e,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(unavailable(err));
            };
            match judge_cancellation(&reasons, &layout) {
                Cancelled::KeyTaken(item) => {
                    let Some(rec) = &write.idempotency else {
                        return Err(corrupt("idempotency", "judged without a record"));
                    };
                    let item = match item {
                        Some(item) => Some(item),
                        None => self.read_idempotency(&rec.key).await?,
                    };
                    let Some(item) = item else {
                        last_reason = "idempotency record vanished".into();
                        continue;
                    };
                    match items::judge_idempotency(item, &rec.payload_hash, write.now)? {
                        items::StoredKey::Expired => {
                            last_reason = "idempotency record expired meanwhile".into();
                        }
                        items::StoredKey::OtherPayload => return Ok(IntakeOutcome::KeyReused),
                        items::StoredKey::Completed(r) => return Ok(IntakeOutcome::Replay(r)),
                        items::StoredKey::InProgress => return Ok(IntakeOutcome::InFlight),
                    }
                }
                Cancelled::InFlight => return Ok(IntakeOutcome::InFlight),
                Cancelled::Retry(why) => {
                    tracing::debug!(attempt, reason = %why, "intake transaction retried");
                    last_reason = why;
                }
                Cancelled::Fail(why) => {
                    return Err(StoreError::unavailable(Failure(why)));
                }
            }
        }
        Err(failure(format!(
            "intake transaction gave up after {MAX_ATTEMPTS} attempts: {last_reason}"
        )))
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.leads)
            .key("id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(items::lead_from_item).transpose()
    }

    async fn get_tracking(&self, key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
        self.read_tracking(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use landing_core::domain::{Email, PaymentMethod, SourceCampaign, Utm};

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    fn layout() -> Layout {
        Layout {
            notifications: 1..3,
            tracking: 3..5,
            idempotency: Some(5),
        }
    }

    fn reasons(codes: [&str; 6]) -> Vec<CancellationReason> {
        codes.into_iter().map(reason).collect()
    }

    #[test]
    fn cancellation_reasons_are_judged_by_index() {
        let l = layout();
        let none = "None";
        let ccf = "ConditionalCheckFailed";
        let conflict = "TransactionConflict";
        assert_eq!(
            judge_cancellation(&reasons([none, none, none, none, none, ccf]), &l),
            Cancelled::KeyTaken(None)
        );
        // The key decides even if the tracking row changed too.
        assert_eq!(
            judge_cancellation(&reasons([none, none, none, ccf, none, ccf]), &l),
            Cancelled::KeyTaken(None)
        );
        assert_eq!(
            judge_cancellation(&reasons([none, none, none, none, none, conflict]), &l),
            Cancelled::InFlight
        );
        assert!(matches!(
            judge_cancellation(&reasons([ccf, none, none, none, none, none]), &l),
            Cancelled::Fail(_)
        ));
        assert!(matches!(
            judge_cancellation(&reasons([none, none, ccf, none, none, none]), &l),
            Cancelled::Fail(_)
        ));
        assert!(matches!(
            judge_cancellation(&reasons([none, none, none, none, ccf, none]), &l),
            Cancelled::Retry(_)
        ));
        assert!(matches!(
            judge_cancellation(&reasons([none, none, none, conflict, none, none]), &l),
            Cancelled::Retry(_)
        ));
        assert!(matches!(
            judge_cancellation(
                &reasons([none, "ValidationError", none, none, none, none]),
                &l
            ),
            Cancelled::Fail(_)
        ));
        assert!(matches!(judge_cancellation(&[], &l), Cancelled::Retry(_)));
        let with_item = vec![
            reason(none),
            reason(none),
            reason(none),
            reason(none),
            reason(none),
            CancellationReason::builder()
                .code(ccf)
                .item("key", s("k"))
                .build(),
        ];
        assert!(matches!(
            judge_cancellation(&with_item, &l),
            Cancelled::KeyTaken(Some(item)) if item["key"] == s("k")
        ));
    }

    fn touch(at_ms: i64, form: Form) -> TrackingTouch {
        TrackingTouch {
            key: PersonKey::email(&Email::parse("a@example.kz").unwrap()),
            at: Timestamp::from_millisecond(at_ms).unwrap(),
            form,
            lead_id: LeadId::new(),
            campaign: SourceCampaign::new(form, None),
            utm: Utm::default(),
            payment_method: (form == Form::ExpressCourse).then_some(PaymentMethod::Kaspi),
        }
    }

    #[test]
    fn tracking_update_reasserts_the_ordering_decision() {
        let first = touch(1_000, Form::ProfTest);
        let u = tracking_update("t", &first, None).unwrap();
        assert_eq!(
            u.condition_expression(),
            Some("attribute_not_exists(person_key)")
        );
        assert!(u.update_expression().contains("proftest_count = :one"));
        assert!(
            u.update_expression()
                .contains("expresscourse_count = :zero")
        );
        assert!(!u.expression_attribute_values().unwrap().contains_key(":pm"));

        let row = Tracking::first(&first);
        let later = touch(2_000, Form::ExpressCourse);
        let u = tracking_update("t", &later, Some(&row)).unwrap();
        assert_eq!(
            u.condition_expression(),
            Some("attribute_exists(person_key) AND last_seen <= :at AND first_seen <= :at")
        );
        assert!(u.update_expression().contains("last_campaign = :camp"));
        assert!(!u.update_expression().contains("first_campaign"));
        assert!(u.update_expression().contains("last_payment_method = :pm"));
        assert!(
            u.update_expression()
                .ends_with("ADD expresscourse_count :one")
        );

        let mut row = row;
        row.apply(&later);
        let earlier = touch(500, Form::ProfTest);
        let u = tracking_update("t", &earlier, Some(&row)).unwrap();
        assert_eq!(
            u.condition_expression(),
            Some("attribute_exists(person_key) AND last_seen > :at AND first_seen > :at")
        );
        assert!(u.update_expression().contains("first_campaign = :camp"));
        assert!(!u.update_expression().contains("last_campaign"));

        let between = touch(1_500, Form::ProfTest);
        let u = tracking_update("t", &between, Some(&row)).unwrap();
        assert_eq!(u.update_expression(), "ADD proftest_count :one");
        let values = u.expression_attribute_values().unwrap();
        assert!(values.contains_key(":at") && values.contains_key(":one"));
        assert!(!values.contains_key(":camp") && !values.contains_key(":utm"));
    }
}
