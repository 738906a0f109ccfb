//! The stored shape of each record (private item structs, converted with `serde_dynamo`) and the
//! conversions to and from the domain types. A corrupt attribute becomes `StoreError::Corrupt`
//! naming the table and attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use landing_core::domain::{
    IdempotencyRecord, Lead, LeadId, Notification, NotificationStatus, StoredLead,
    StoredNotification, StoredResponse, StoredTracking, Tracking, Utm,
};
use landing_core::ports::StoreError;
use landing_core::time;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1 as sd;

use crate::errors::corrupt;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Value of `crm_pending` (the `crm-pending` GSI's partition key) while `crm_status = pending`.
pub(crate) const CRM_PENDING: &str = "pending";
/// The UTC day of an instant, `2026-12-01`: the partition of the `by-day` indexes.
pub(crate) fn day_of(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// Value of `due_shard` (the `due` GSI's partition key) while a notification is unsettled.
pub(crate) const DUE_SHARD: &str = "due";
/// The id of the one item of the tokens table.
pub(crate) const TOKEN_ID: &str = "amocrm";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn ts(t: Timestamp) -> AttributeValue {
    AttributeValue::S(time::format(t))
}

fn parse_ts(raw: &str, what: &'static str) -> Result<Timestamp, StoreError> {
    time::parse(raw).map_err(|e| corrupt(what, e))
}

fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    sd::to_item(v).map_err(StoreError::encode)
}

fn from_item<'a, T: Deserialize<'a>>(what: &'static str, item: Item) -> Result<T, StoreError> {
    sd::from_item(item).map_err(|e| corrupt(what, e))
}

pub(crate) fn utm_value(utm: &Utm) -> Result<AttributeValue, StoreError> {
    sd::to_attribute_value(utm).map_err(StoreError::encode)
}

// ---------------------------------------------------------------------------------------------
// landing_leads

/// A lead item is the core's `StoredLead` (so `metadata` is JSON text, not a DynamoDB map: a map
/// does not round-trip JSON exactly — `1.0` would come back as `1`, `null` as a NULL attribute —
/// and the contract demands field-for-field equality), plus the sparse `crm_pending` attribute
/// that puts a pending lead into the `crm-pending` GSI.
pub(crate) fn lead_to_item(lead: &Lead) -> Result<Item, StoreError> {
    let mut item = to_item(&StoredLead::from(lead))?;
    if lead.crm.status == landing_core::domain::CrmStatus::Pending {
        item.insert("crm_pending".to_owned(), s(CRM_PENDING));
    }
    // The operators' indexes (`by-day`, `by-email`; `by-phone` keys on `phone` itself).
    item.insert("created_day".to_owned(), s(day_of(lead.created_at)));
    if let Some(email) = lead.email.stored() {
        item.insert("email_key".to_owned(), s(email.to_lowercase()));
    }
    Ok(item)
}

pub(crate) fn lead_from_item(item: Item) -> Result<Lead, StoreError> {
    // Attributes StoredLead does not name (crm_pending) are ignored by serde.
    let stored: StoredLead = from_item("landing_leads", item)?;
    stored.into_lead().map_err(StoreError::from)
}

pub(crate) fn lead_id_of(item: &Item) -> Result<LeadId, StoreError> {
    match item.get("id") {
        Some(AttributeValue::S(id)) => id.parse().map_err(|e| corrupt("landing_leads.id", e)),
        _ => Err(corrupt("landing_leads.id", "missing")),
    }
}

// ---------------------------------------------------------------------------------------------
// scheduled_notifications

/// A notification item is the core's `StoredNotification` plus the sparse `due_shard`/`due_at`
/// pair, written here (intake, any full write) to follow the status, so the `due` GSI holds
/// exactly the unsettled rows.
/// `lead_created`: when its lead was created, whose UTC day (`lead_day`) puts the row into the
/// `by-day` index beside its lead.
pub(crate) fn notification_to_item(
    x: &Notification,
    lead_created: Timestamp,
) -> Result<Item, StoreError> {
    let mut item = to_item(&StoredNotification::from(x))?;
    item.insert("lead_day".to_owned(), s(day_of(lead_created)));
    let due_at = match x.status {
        NotificationStatus::Pending => Some(x.send_at),
        NotificationStatus::Sending => Some(x.claimed_until.unwrap_or(x.send_at)),
        NotificationStatus::Sent | NotificationStatus::Failed | NotificationStatus::Suppressed => {
            None
        }
    };
    if let Some(due_at) = due_at {
        item.insert("due_shard".to_owned(), s(DUE_SHARD));
        item.insert("due_at".to_owned(), ts(due_at));
    }
    Ok(item)
}

pub(crate) fn notification_from_item(item: Item) -> Result<Notification, StoreError> {
    // Attributes StoredNotification does not name (due_shard, due_at) are ignored by serde.
    let stored: StoredNotification = from_item("scheduled_notifications", item)?;
    stored.into_notification().map_err(StoreError::from)
}

/// `due_at` of an index item (the instant it becomes claimable).
pub(crate) fn due_at_of(item: &Item) -> Result<Option<Timestamp>, StoreError> {
    match item.get("due_at") {
        Some(AttributeValue::S(raw)) => parse_ts(raw, "scheduled_notifications.due_at").map(Some),
        Some(_) => Err(corrupt("scheduled_notifications.due_at", "not a string")),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// unified_lead_tracking

pub(crate) fn tracking_from_item(item: Item) -> Result<Tracking, StoreError> {
    let row: StoredTracking = from_item("unified_lead_tracking", item)?;
    Ok(row.into_tracking()?)
}

// ---------------------------------------------------------------------------------------------
// idempotency

/// Only `completed` records are ever written: the record commits in the same transaction as
/// the lead, so there is no `in_progress` phase to store (as in the SQLite adapter). A record
/// with any other status reads as "in flight", so that a future two-phase writer stays safe.
#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyItem {
    key: String,
    payload_hash: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
    created_at: String,
    expires_at: String,
    /// Epoch seconds of `expires_at`, for DynamoDB TTL (clean-up only).
    ttl: i64,
}

pub(crate) fn idempotency_to_item(rec: &IdempotencyRecord) -> Result<Item, StoreError> {
    let item = IdempotencyItem {
        key: rec.key.clone(),
        payload_hash: rec.payload_hash.clone(),
        status: "completed".to_owned(),
        response_status: Some(rec.response.status),
        response_body: Some(rec.response.body.clone()),
        created_at: time::format(rec.created_at),
        expires_at: time::format(rec.expires_at),
        // Rounded up, so TTL never deletes a record before it expired.
        ttl: rec.expires_at.as_second() + i64::from(rec.expires_at.subsec_nanosecond() > 0),
    };
    to_item(&item)
}

/// What a stored record says about a new request with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredKey {
    /// Expired at or before `now`: the key is free (the conditional put should have won).
    Expired,
    OtherPayload,
    Completed(StoredResponse),
    InProgress,
}

pub(crate) fn judge_idempotency(
    item: Item,
    payload_hash: &str,
    now: Timestamp,
) -> Result<StoredKey, StoreError> {
    let r: IdempotencyItem = from_item("idempotency", item)?;
    if parse_ts(&r.expires_at, "idempotency.expires_at")? <= now {
        return Ok(StoredKey::Expired);
    }
    if r.payload_hash != payload_hash {
        return Ok(StoredKey::OtherPayload);
    }
    Ok(
        match (r.status.as_str(), r.response_status, r.response_body) {
            ("completed", Some(status), Some(body)) => {
                StoredKey::Completed(StoredResponse { status, body })
            }
            _ => StoredKey::InProgress,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// tokens

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TokenItem {
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: String,
    pub updated_at: String,
}

pub(crate) fn token_to_item(t: &TokenItem) -> Result<Item, StoreError> {
    to_item(t)
}

pub(crate) fn token_from_item(item: Item) -> Result<TokenItem, StoreError> {
    from_item("tokens", item)
}

pub(crate) fn token_expires_at(t: &TokenItem) -> Result<Timestamp, StoreError> {
    parse_ts(&t.expires_at, "tokens.expires_at")
}

#[cfg(test)]
mod tests {
    use super::*;
    use landing_core::domain::{
        Contact, CrmState, CrmStatus, Form, PersonName, Phone, Recipient, SourceCampaign,
    };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    #[test]
    fn absent_options_are_absent_attributes_not_nulls() {
        let lead = Lead {
            id: LeadId::new(),
            created_at: at(1_767_225_600_123),
            form: Form::ProfTest,
            source_campaign: SourceCampaign::new(Form::ProfTest, None),
            name: PersonName::parse("A").unwrap(),
            email: Contact::Absent,
            phone: Contact::Invalid("12".into()),
            payment_method: None,
            metadata: None,
            utm: Utm::default(),
            referrer: None,
            page_url: None,
            warnings: vec![],
            correlation_id: "c".into(),
            crm: CrmState::new(CrmStatus::Pending),
            client_ip_hash: None,
            quarantine: None,
        };
        let item = lead_to_item(&lead).unwrap();
        assert!(item.values().all(|v| !matches!(v, AttributeValue::Null(_))));
        assert!(!item.contains_key("email"));
        assert_eq!(item["crm_pending"], s(CRM_PENDING));
        assert_eq!(item["crm_attempts"], n(0));
        assert_eq!(item["created_at"], s("2026-01-01T00:00:00.123Z"));
        assert_eq!(lead_from_item(item).unwrap(), lead);

        let synced = Lead {
            crm: CrmState::new(CrmStatus::Synced),
            client_ip_hash: None,
            quarantine: None,
            ..lead
        };
        assert!(!lead_to_item(&synced).unwrap().contains_key("crm_pending"));
    }

    #[test]
    fn due_attributes_follow_the_status() {
        let mut x = Notification::pending(
            LeadId::new(),
            Recipient::Sms(Phone::parse("+77771234567").unwrap()),
            &SourceCampaign::new(Form::ProfTest, None),
            at(1_000),
        );
        let item = notification_to_item(&x, at(0)).unwrap();
        assert_eq!(item["due_shard"], s(DUE_SHARD));
        assert_eq!(item["due_at"], ts(at(1_000)));
        assert_eq!(notification_from_item(item).unwrap(), x);
        x.status = NotificationStatus::Sending;
        x.claimed_until = Some(at(5_000));
        assert_eq!(
            notification_to_item(&x, at(0)).unwrap()["due_at"],
            ts(at(5_000))
        );
        x.status = NotificationStatus::Sent;
        let item = notification_to_item(&x, at(0)).unwrap();
        assert!(!item.contains_key("due_shard") && !item.contains_key("due_at"));
    }

    #[test]
    fn idempotency_ttl_is_the_expiry_rounded_up_to_a_second() {
        let rec = IdempotencyRecord {
            key: "proftest:k".into(),
            payload_hash: "h".into(),
            response: StoredResponse {
                status: 201,
                body: "{}".into(),
            },
            created_at: at(1_000),
            expires_at: at(10_001),
        };
        let item = idempotency_to_item(&rec).unwrap();
        assert_eq!(item["ttl"], n(11));
        assert_eq!(
            judge_idempotency(item.clone(), "h", at(10_000)).unwrap(),
            StoredKey::Completed(rec.response.clone())
        );
        assert_eq!(
            judge_idempotency(item.clone(), "x", at(10_000)).unwrap(),
            StoredKey::OtherPayload
        );
        assert_eq!(
            judge_idempotency(item, "h", at(10_001)).unwrap(),
            StoredKey::Expired
        );
    }
}
