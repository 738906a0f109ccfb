//! The stored records (DESIGN §4): a lead, its notifications, the per-person tracking row, and
//! the idempotency record of a request.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Contact, Email, Form, PaymentMethod, Phone, SourceCampaign, UnknownValue};

/// UUIDv7: time-ordered, so ids sort by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadId(pub Uuid);

impl LeadId {
    pub fn new() -> Self {
        LeadId(Uuid::now_v7())
    }
}

impl Default for LeadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LeadId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(LeadId)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

impl Utm {
    pub fn is_empty(&self) -> bool {
        self == &Utm::default()
    }

    /// `(name, value)` for every parameter that is set, in the conventional order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("utm_source", &self.source),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_content", &self.content),
            ("utm_term", &self.term),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmStatus {
    Pending,
    Synced,
    Failed,
    Disabled,
}

impl CrmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CrmStatus::Pending => "pending",
            CrmStatus::Synced => "synced",
            CrmStatus::Failed => "failed",
            CrmStatus::Disabled => "disabled",
        }
    }
}

impl FromStr for CrmStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(CrmStatus::Pending),
            "synced" => Ok(CrmStatus::Synced),
            "failed" => Ok(CrmStatus::Failed),
            "disabled" => Ok(CrmStatus::Disabled),
            _ => Err(UnknownValue),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmState {
    pub status: CrmStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub amocrm_lead_id: Option<i64>,
    pub amocrm_contact_id: Option<i64>,
    pub synced_at: Option<Timestamp>,
}

impl CrmState {
    pub fn new(status: CrmStatus) -> Self {
        CrmState {
            status,
            attempts: 0,
            error: None,
            amocrm_lead_id: None,
            amocrm_contact_id: None,
            synced_at: None,
        }
    }
}

/// One submission, as stored in `landing_leads`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub id: LeadId,
    pub created_at: Timestamp,
    pub form: Form,
    pub source_campaign: SourceCampaign,
    pub name: String,
    pub email: Contact<Email>,
    pub phone: Contact<Phone>,
    pub payment_method: Option<PaymentMethod>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub utm: Utm,
    pub referrer: Option<String>,
    pub page_url: Option<String>,
    pub warnings: Vec<String>,
    pub correlation_id: String,
    pub crm: CrmState,
}

impl Lead {
    /// The keys under which this person is tracked and matched (`phone:+7…`, `email:…`).
    pub fn person_keys(&self) -> Vec<PersonKey> {
        let mut keys = Vec::with_capacity(2);
        if let Some(p) = self.phone.valid() {
            keys.push(PersonKey::phone(p));
        }
        if let Some(e) = self.email.valid() {
            keys.push(PersonKey::email(e));
        }
        keys
    }
}

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
            name: lead.name.clone(),
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
            name: self.name,
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
}

impl From<&Notification> for StoredNotification {
    fn from(x: &Notification) -> Self {
        StoredNotification {
            id: x.id.to_string(),
            lead_id: x.lead_id.to_string(),
            channel: x.channel.as_str().to_owned(),
            recipient: x.recipient.clone(),
            source_campaign: x.source_campaign.clone(),
            send_at: crate::time::format(x.send_at),
            status: x.status.as_str().to_owned(),
            attempts: x.attempts,
            claimed_until: x.claimed_until.map(crate::time::format),
            last_error: x.last_error.clone(),
            provider_message_id: x.provider_message_id.clone(),
            sent_at: x.sent_at.map(crate::time::format),
            failed_at: x.failed_at.map(crate::time::format),
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
            channel: self
                .channel
                .parse()
                .map_err(|e| corrupt("scheduled_notifications.channel", e))?,
            recipient: self.recipient,
            source_campaign: self.source_campaign,
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
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl FromStr for Channel {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sms" => Ok(Channel::Sms),
            "email" => Ok(Channel::Email),
            _ => Err(UnknownValue),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sending => "sending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
        }
    }
}

impl FromStr for NotificationStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(NotificationStatus::Pending),
            "sending" => Ok(NotificationStatus::Sending),
            "sent" => Ok(NotificationStatus::Sent),
            "failed" => Ok(NotificationStatus::Failed),
            _ => Err(UnknownValue),
        }
    }
}

/// One row of `scheduled_notifications`: one channel of one lead. `attempts` counts claims, so
/// it doubles as the claim token: only the holder of the latest claim may settle the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub lead_id: LeadId,
    pub channel: Channel,
    pub recipient: String,
    pub source_campaign: String,
    pub send_at: Timestamp,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub claimed_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// When the row was given up as `failed`.
    pub failed_at: Option<Timestamp>,
}

impl Notification {
    /// The notifications a lead gets: one pending row per usable channel (a valid phone → SMS, a
    /// valid email → email), all due at `send_at`.
    pub fn for_lead(lead: &Lead, send_at: Timestamp) -> Vec<Notification> {
        let sms = lead.phone.valid().map(|p| (Channel::Sms, p.as_str()));
        let email = lead.email.valid().map(|e| (Channel::Email, e.as_str()));
        [sms, email]
            .into_iter()
            .flatten()
            .map(|(channel, recipient)| {
                Notification::pending(
                    lead.id,
                    channel,
                    recipient.to_owned(),
                    &lead.source_campaign,
                    send_at,
                )
            })
            .collect()
    }

    pub fn pending(
        lead_id: LeadId,
        channel: Channel,
        recipient: String,
        source_campaign: &SourceCampaign,
        send_at: Timestamp,
    ) -> Self {
        Notification {
            id: Uuid::now_v7(),
            lead_id,
            channel,
            recipient,
            source_campaign: source_campaign.as_str().to_owned(),
            send_at,
            status: NotificationStatus::Pending,
            attempts: 0,
            claimed_until: None,
            last_error: None,
            provider_message_id: None,
            sent_at: None,
            failed_at: None,
        }
    }
}

/// `phone:+77771234567` or `email:a@example.kz`: one person as the pipeline knows them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn phone(p: &Phone) -> Self {
        PersonKey(format!("phone:{}", p.as_str()))
    }

    pub fn email(e: &Email) -> Self {
        PersonKey(format!("email:{}", e.match_key()))
    }

    pub fn from_stored(raw: &str) -> Result<Self, UnknownValue> {
        if let Some(p) = raw.strip_prefix("phone:") {
            Phone::parse(p)
                .map(|p| PersonKey::phone(&p))
                .map_err(|_| UnknownValue)
        } else if let Some(e) = raw.strip_prefix("email:") {
            Email::parse(e)
                .map(|e| PersonKey::email(&e))
                .map_err(|_| UnknownValue)
        } else {
            Err(UnknownValue)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        match self.0.split_once(':') {
            Some(("phone", p)) => format!("phone:{}", crate::mask::phone(p)),
            Some(("email", e)) => format!("email:{}", crate::mask::email(e)),
            _ => "?".to_owned(),
        }
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", self.masked())
    }
}

/// What one submission tells the tracking row of one person key.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingTouch {
    pub key: PersonKey,
    pub at: Timestamp,
    pub form: Form,
    pub lead_id: LeadId,
    pub campaign: SourceCampaign,
    pub utm: Utm,
    pub payment_method: Option<PaymentMethod>,
}

impl TrackingTouch {
    pub fn for_lead(lead: &Lead) -> Vec<TrackingTouch> {
        lead.person_keys()
            .into_iter()
            .map(|key| TrackingTouch {
                key,
                at: lead.created_at,
                form: lead.form,
                lead_id: lead.id,
                campaign: lead.source_campaign.clone(),
                utm: lead.utm.clone(),
                payment_method: lead.payment_method,
            })
            .collect()
    }
}

/// One row of `unified_lead_tracking`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub key: PersonKey,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub first_campaign: String,
    pub first_utm: Utm,
    pub last_campaign: String,
    pub last_utm: Utm,
    pub last_lead_id: LeadId,
    pub proftest_count: u32,
    pub expresscourse_count: u32,
    pub last_payment_method: Option<PaymentMethod>,
    pub amocrm_contact_id: Option<i64>,
    pub amocrm_lead_id: Option<i64>,
}

impl Tracking {
    /// The row a first touch creates; later touches go through [`Tracking::apply`].
    pub fn first(touch: &TrackingTouch) -> Self {
        let mut t = Tracking {
            key: touch.key.clone(),
            first_seen: touch.at,
            last_seen: touch.at,
            first_campaign: touch.campaign.as_str().to_owned(),
            first_utm: touch.utm.clone(),
            last_campaign: touch.campaign.as_str().to_owned(),
            last_utm: touch.utm.clone(),
            last_lead_id: touch.lead_id,
            proftest_count: 0,
            expresscourse_count: 0,
            last_payment_method: None,
            amocrm_contact_id: None,
            amocrm_lead_id: None,
        };
        t.count(touch);
        t
    }

    /// Where a touch at `at` lands on this row: attribution follows `created_at`, not arrival
    /// order, so a late-arriving older lead moves first touch and never last touch.
    pub fn placement(&self, at: Timestamp) -> Placement {
        Placement {
            moves_last: at >= self.last_seen,
            moves_first: at < self.first_seen,
        }
    }

    /// Last touch wins for last-touch attribution; first touch is never rewritten by a later one.
    pub fn apply(&mut self, touch: &TrackingTouch) {
        let place = self.placement(touch.at);
        if place.moves_last {
            self.last_seen = touch.at;
            self.last_campaign = touch.campaign.as_str().to_owned();
            self.last_utm = touch.utm.clone();
            self.last_lead_id = touch.lead_id;
        }
        if place.moves_first {
            self.first_seen = touch.at;
            self.first_campaign = touch.campaign.as_str().to_owned();
            self.first_utm = touch.utm.clone();
        }
        self.count(touch);
    }

    fn count(&mut self, touch: &TrackingTouch) {
        match touch.form {
            Form::ProfTest => self.proftest_count += 1,
            Form::ExpressCourse => self.expresscourse_count += 1,
        }
        if touch.payment_method.is_some() {
            self.last_payment_method = touch.payment_method;
        }
    }
}

/// What one touch changes on an existing tracking row ([`Tracking::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The touch is the newest: it becomes the last touch.
    pub moves_last: bool,
    /// The touch is older than the first one known: it becomes the first touch.
    pub moves_first: bool,
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
            first_campaign: t.first_campaign.clone(),
            first_utm: t.first_utm.clone(),
            last_campaign: t.last_campaign.clone(),
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
            first_campaign: self.first_campaign,
            first_utm: self.first_utm,
            last_campaign: self.last_campaign,
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

/// The answer given to the first request with an `Idempotency-Key`, replayed to its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Scoped to the endpoint: `proftest:<key>` / `expresscourse:<key>`.
    pub key: String,
    pub payload_hash: String,
    pub response: StoredResponse,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_notification_reads_back_as_it_was_and_a_corrupt_column_is_named() {
        let campaign = SourceCampaign::from_stored("proftest").unwrap();
        let mut x = Notification::pending(
            LeadId::new(),
            Channel::Email,
            "a@mail.kz".into(),
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
            ..stored
        };
        assert_eq!(
            bad.into_notification().unwrap_err().column,
            "scheduled_notifications.status"
        );
    }

    fn touch(at: i64, form: Form, campaign: &str, pm: Option<PaymentMethod>) -> TrackingTouch {
        TrackingTouch {
            key: PersonKey::phone(&Phone::parse("+77771234567").unwrap()),
            at: Timestamp::from_second(at).unwrap(),
            form,
            lead_id: LeadId::new(),
            campaign: SourceCampaign::from_stored(campaign).unwrap(),
            utm: Utm {
                source: Some(campaign.to_owned()),
                ..Utm::default()
            },
            payment_method: pm,
        }
    }

    #[test]
    fn tracking_keeps_first_touch_and_moves_last_touch() {
        let mut t = Tracking::first(&touch(100, Form::ProfTest, "proftest_kenesary", None));
        t.apply(&touch(
            200,
            Form::ExpressCourse,
            "expresscourse",
            Some(PaymentMethod::Kaspi),
        ));
        t.apply(&touch(300, Form::ProfTest, "proftest_arystan", None));
        assert_eq!(t.first_campaign, "proftest_kenesary");
        assert_eq!(t.last_campaign, "proftest_arystan");
        assert_eq!(t.last_utm.source.as_deref(), Some("proftest_arystan"));
        assert_eq!((t.proftest_count, t.expresscourse_count), (2, 1));
        assert_eq!(t.last_payment_method, Some(PaymentMethod::Kaspi));
    }

    #[test]
    fn a_late_arriving_older_touch_does_not_steal_last_touch() {
        let mut t = Tracking::first(&touch(200, Form::ProfTest, "proftest_b", None));
        t.apply(&touch(100, Form::ProfTest, "proftest_a", None));
        assert_eq!(t.first_campaign, "proftest_a");
        assert_eq!(t.last_campaign, "proftest_b");
    }

    #[test]
    fn person_keys_mask_their_value() {
        let k = PersonKey::email(&Email::parse("Aigerim@Mail.kz").unwrap());
        assert_eq!(k.as_str(), "email:aigerim@mail.kz");
        assert_eq!(format!("{k:?}"), "PersonKey(email:a***@mail.kz)");
        assert_eq!(
            PersonKey::from_stored("phone:+77771234567")
                .unwrap()
                .as_str(),
            "phone:+77771234567"
        );
    }
}
