//! The records as every storage adapter stores them: flat, primitive columns (RFC 3339
//! timestamps, enums as their text). Adapters map these to rows or items; the rules for reading
//! them back — and refusing a corrupt value with its column's name — live here once.
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Channel, Contact, CrmState, Email, Lead, Notification, PaymentMethod, PersonKey, PersonName,
    Phone, Recipient, SourceCampaign, Tracking, Utm,
};

/// A lead as every storage adapter stores it: flat, primitive columns (RFC 3339 timestamps,
/// `metadata` as JSON text). Adapters map it to rows or items; the rules for reading it back —
/// and refusing a corrupt value with the column's name — live here once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLead {
    pub id: String,
    pub created_at: String,
    pub form: String,
    pub source_campaign: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub correlation_id: String,
    pub crm_status: String,
    #[serde(default)]
    pub crm_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amocrm_lead_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amocrm_contact_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_synced_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_reason: Option<String>,
}

/// A stored value that does not parse: `column` names it (e.g. `landing_leads.form`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column}: {detail}")]
pub struct CorruptColumn {
    pub column: &'static str,
    pub detail: String,
}

fn corrupt(column: &'static str, detail: impl fmt::Display) -> CorruptColumn {
    CorruptColumn {
        column,
        detail: detail.to_string(),
    }
}

impl From<&Lead> for StoredLead {
    fn from(lead: &Lead) -> Self {
        StoredLead {
            id: lead.id.to_string(),
            created_at: crate::time::format(lead.created_at),
            form: lead.form.as_str().to_owned(),
            source_campaign: lead.source_campaign.as_str().to_owned(),
            name: lead.name.as_str().to_owned(),
            email: lead.email.stored().map(str::to_owned),
            phone: lead.phone.stored().map(str::to_owned),
            payment_method: lead.payment_method.map(|p| p.as_str().to_owned()),
            // A map of JSON values always serialises; the fallback is unreachable in practice.
            metadata: lead
                .metadata
                .as_ref()
                .map(|m| serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())),
            utm_source: lead.utm.source.clone(),
            utm_medium: lead.utm.medium.clone(),
            utm_campaign: lead.utm.campaign.clone(),
            utm_content: lead.utm.content.clone(),
            utm_term: lead.utm.term.clone(),
            referrer: lead.referrer.clone(),
            page_url: lead.page_url.clone(),
            warnings: lead.warnings.clone(),
            correlation_id: lead.correlation_id.clone(),
            crm_status: lead.crm.status.as_str().to_owned(),
            crm_attempts: lead.crm.attempts,
            crm_error: lead.crm.error.clone(),
            amocrm_lead_id: lead.crm.amocrm_lead_id,
            amocrm_contact_id: lead.crm.amocrm_contact_id,
            crm_synced_at: lead.crm.synced_at.map(crate::time::format),
            client_ip_hash: lead.client_ip_hash.clone(),
            quarantine_reason: lead.quarantine.map(|q| q.as_str().to_owned()),
        }
    }
}

impl StoredLead {
    pub fn into_lead(self) -> Result<Lead, CorruptColumn> {
        let ts = |raw: &str, column: &'static str| {
            crate::time::parse(raw).map_err(|e| corrupt(column, e))
        };
        Ok(Lead {
            id: self
                .id
                .parse()
                .map_err(|e| corrupt("landing_leads.id", e))?,
            created_at: ts(&self.created_at, "landing_leads.created_at")?,
            form: self
                .form
                .parse()
                .map_err(|e| corrupt("landing_leads.form", e))?,
            source_campaign: SourceCampaign::from_stored(&self.source_campaign)
                .map_err(|e| corrupt("landing_leads.source_campaign", e))?,
            name: PersonName::parse(&self.name).map_err(|e| corrupt("landing_leads.name", e))?,
            email: Contact::<Email>::from_stored(self.email.as_deref()),
            phone: Contact::<Phone>::from_stored(self.phone.as_deref()),
            payment_method: self
                .payment_method
                .map(|p| {
                    PaymentMethod::parse(&p).map_err(|e| corrupt("landing_leads.payment_method", e))
                })
                .transpose()?,
            metadata: self
                .metadata
                .map(|m| serde_json::from_str(&m).map_err(|e| corrupt("landing_leads.metadata", e)))
                .transpose()?,
            utm: Utm {
                source: self.utm_source,
                medium: self.utm_medium,
                campaign: self.utm_campaign,
                content: self.utm_content,
                term: self.utm_term,
            },
            referrer: self.referrer,
            page_url: self.page_url,
            warnings: self.warnings,
            correlation_id: self.correlation_id,
            crm: CrmState {
                status: self
                    .crm_status
                    .parse()
                    .map_err(|e| corrupt("landing_leads.crm_status", e))?,
                attempts: self.crm_attempts,
                error: self.crm_error,
                amocrm_lead_id: self.amocrm_lead_id,
                amocrm_contact_id: self.amocrm_contact_id,
                synced_at: self
                    .crm_synced_at
                    .map(|t| ts(&t, "landing_leads.crm_synced_at"))
                    .transpose()?,
            },
            client_ip_hash: self.client_ip_hash,
            quarantine: self
                .quarantine_reason
                .map(|q| {
                    q.parse()
                        .map_err(|e| corrupt("landing_leads.quarantine_reason", e))
                })
                .transpose()?,
        })
    }
}

/// A notification row as every storage adapter stores it (RFC 3339 timestamps, enums as their
/// text), read back here once, like [`StoredLead`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNotification {
    pub id: String,
    pub lead_id: String,
    pub channel: String,
    pub recipient: String,
    pub source_campaign: String,
    pub send_at: String,
    pub status: String,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_detail: Option<String>,
}

/// A stored channel and recipient, parsed once: a row whose recipient does not parse for its
/// channel is corrupt, not something to find out at send time.
fn recipient(channel: &str, raw: &str) -> Result<Recipient, CorruptColumn> {
    let channel: Channel = channel
        .parse()
        .map_err(|e| corrupt("scheduled_notifications.channel", e))?;
    let bad = |e: &dyn fmt::Display| corrupt("scheduled_notifications.recipient", e);
    match channel {
        Channel::Sms => Phone::parse(raw).map(Recipient::Sms).map_err(|e| bad(&e)),
        Channel::Email => Email::parse(raw).map(Recipient::Email).map_err(|e| bad(&e)),
    }
}

impl From<&Notification> for StoredNotification {
    fn from(x: &Notification) -> Self {
        StoredNotification {
            id: x.id.to_string(),
            lead_id: x.lead_id.to_string(),
            channel: x.channel().as_str().to_owned(),
            recipient: x.recipient.as_str().to_owned(),
            source_campaign: x.source_campaign.as_str().to_owned(),
            send_at: crate::time::format(x.send_at),
            status: x.status.as_str().to_owned(),
            attempts: x.attempts,
            claimed_until: x.claimed_until.map(crate::time::format),
            last_error: x.last_error.clone(),
            provider_message_id: x.provider_message_id.clone(),
            sent_at: x.sent_at.map(crate::time::format),
            failed_at: x.failed_at.map(crate::time::format),
            suppressed_reason: x.suppressed_reason.map(|r| r.as_str().to_owned()),
            hold_reason: x.hold_reason.map(|r| r.as_str().to_owned()),
            delivered_at: x.delivered_at.map(crate::time::format),
            feedback: x.feedback.map(|f| f.as_str().to_owned()),
            feedback_detail: x.feedback_detail.clone(),
        }
    }
}

impl StoredNotification {
    pub fn into_notification(self) -> Result<Notification, CorruptColumn> {
        let ts = |raw: &str, column: &'static str| {
            crate::time::parse(raw).map_err(|e| corrupt(column, e))
        };
        Ok(Notification {
            id: Uuid::parse_str(&self.id).map_err(|e| corrupt("scheduled_notifications.id", e))?,
            lead_id: self
                .lead_id
                .parse()
                .map_err(|e| corrupt("scheduled_notifications.lead_id", e))?,
            recipient: recipient(&self.channel, &self.recipient)?,
            source_campaign: SourceCampaign::from_stored(&self.source_campaign)
                .map_err(|e| corrupt("scheduled_notifications.source_campaign", e))?,
            send_at: ts(&self.send_at, "scheduled_notifications.send_at")?,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt("scheduled_notifications.status", e))?,
            attempts: self.attempts,
            claimed_until: self
                .claimed_until
                .map(|t| ts(&t, "scheduled_notifications.claimed_until"))
                .transpose()?,
            last_error: self.last_error,
            provider_message_id: self.provider_message_id,
            sent_at: self
                .sent_at
                .map(|t| ts(&t, "scheduled_notifications.sent_at"))
                .transpose()?,
            failed_at: self
                .failed_at
                .map(|t| ts(&t, "scheduled_notifications.failed_at"))
                .transpose()?,
            suppressed_reason: self
                .suppressed_reason
                .map(|r| {
                    r.parse()
                        .map_err(|e| corrupt("scheduled_notifications.suppressed_reason", e))
                })
                .transpose()?,
            hold_reason: self
                .hold_reason
                .map(|r| {
                    r.parse()
                        .map_err(|e| corrupt("scheduled_notifications.hold_reason", e))
                })
                .transpose()?,
            delivered_at: self
                .delivered_at
                .map(|t| ts(&t, "scheduled_notifications.delivered_at"))
                .transpose()?,
            feedback: self
                .feedback
                .map(|f| {
                    f.parse()
                        .map_err(|e| corrupt("scheduled_notifications.feedback", e))
                })
                .transpose()?,
            feedback_detail: self.feedback_detail,
        })
    }
}

/// A tracking row as every storage adapter stores it, read back here once, like [`StoredLead`].
/// The UTM sets are JSON text in SQLite and a map in DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTracking {
    pub person_key: String,
    pub first_seen: String,
    pub last_seen: String,
    pub first_campaign: String,
    #[serde(default)]
    pub first_utm: Utm,
    pub last_campaign: String,
    #[serde(default)]
    pub last_utm: Utm,
    pub last_lead_id: String,
    #[serde(default)]
    pub proftest_count: u32,
    #[serde(default)]
    pub expresscourse_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amocrm_contact_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amocrm_lead_id: Option<i64>,
}

impl From<&Tracking> for StoredTracking {
    fn from(t: &Tracking) -> Self {
        StoredTracking {
            person_key: t.key.as_str().to_owned(),
            first_seen: crate::time::format(t.first_seen),
            last_seen: crate::time::format(t.last_seen),
            first_campaign: t.first_campaign.as_str().to_owned(),
            first_utm: t.first_utm.clone(),
            last_campaign: t.last_campaign.as_str().to_owned(),
            last_utm: t.last_utm.clone(),
            last_lead_id: t.last_lead_id.to_string(),
            proftest_count: t.proftest_count,
            expresscourse_count: t.expresscourse_count,
            last_payment_method: t.last_payment_method.map(|p| p.as_str().to_owned()),
            amocrm_contact_id: t.amocrm_contact_id,
            amocrm_lead_id: t.amocrm_lead_id,
        }
    }
}

impl StoredTracking {
    pub fn into_tracking(self) -> Result<Tracking, CorruptColumn> {
        let ts = |raw: &str, column: &'static str| {
            crate::time::parse(raw).map_err(|e| corrupt(column, e))
        };
        Ok(Tracking {
            key: PersonKey::from_stored(&self.person_key)
                .map_err(|e| corrupt("unified_lead_tracking.person_key", e))?,
            first_seen: ts(&self.first_seen, "unified_lead_tracking.first_seen")?,
            last_seen: ts(&self.last_seen, "unified_lead_tracking.last_seen")?,
            first_campaign: SourceCampaign::from_stored(&self.first_campaign)
                .map_err(|e| corrupt("unified_lead_tracking.first_campaign", e))?,
            first_utm: self.first_utm,
            last_campaign: SourceCampaign::from_stored(&self.last_campaign)
                .map_err(|e| corrupt("unified_lead_tracking.last_campaign", e))?,
            last_utm: self.last_utm,
            last_lead_id: self
                .last_lead_id
                .parse()
                .map_err(|e| corrupt("unified_lead_tracking.last_lead_id", e))?,
            proftest_count: self.proftest_count,
            expresscourse_count: self.expresscourse_count,
            last_payment_method: self
                .last_payment_method
                .map(|p| {
                    PaymentMethod::parse(&p)
                        .map_err(|e| corrupt("unified_lead_tracking.last_payment_method", e))
                })
                .transpose()?,
            amocrm_contact_id: self.amocrm_contact_id,
            amocrm_lead_id: self.amocrm_lead_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LeadId, NotificationStatus};
    use jiff::Timestamp;

    #[test]
    fn a_stored_notification_reads_back_as_it_was_and_a_corrupt_column_is_named() {
        let campaign = SourceCampaign::from_stored("proftest").unwrap();
        let mut x = Notification::pending(
            LeadId::new(),
            Recipient::Email(Email::parse("a@mail.kz").unwrap()),
            &campaign,
            Timestamp::from_second(1_700_000_000).unwrap(),
        );
        x.status = NotificationStatus::Sent;
        x.attempts = 2;
        x.sent_at = Some(Timestamp::from_second(1_700_000_600).unwrap());
        x.provider_message_id = Some("msg-1".into());
        let stored = StoredNotification::from(&x);
        assert_eq!(stored.clone().into_notification().unwrap(), x);

        let bad = StoredNotification {
            status: "delivered".into(),
            ..stored.clone()
        };
        assert_eq!(
            bad.into_notification().unwrap_err().column,
            "scheduled_notifications.status"
        );
        // An SMS row holding an address is corrupt when read, not a failure at send time.
        let crossed = StoredNotification {
            channel: "sms".into(),
            ..stored
        };
        assert_eq!(
            crossed.into_notification().unwrap_err().column,
            "scheduled_notifications.recipient"
        );
    }
}
