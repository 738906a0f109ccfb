//! A lead: one submission as stored in `landing_leads`, with its attribution and CRM state
//! (docs/architecture.md §4).
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Contact, Email, Form, PaymentMethod, PersonKey, PersonName, Phone, SourceCampaign};

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

string_enum! {
    /// Where a lead stands with the CRM sync.
    pub enum CrmStatus {
        Pending = "pending",
        Synced = "synced",
        Failed = "failed",
        /// Stored while no CRM was configured.
        Disabled = "disabled",
        /// Held back by screening (a bot, by every sign): not synced until released.
        Quarantined = "quarantined",
    }
}

string_enum! {
    /// Why intake screening held a lead back. A quarantined lead is stored and answered like any
    /// other (a bot learns nothing), but gets no follow-up and no deal until an operator releases
    /// it.
    pub enum QuarantineReason {
        /// The hidden form field people never see was filled in.
        Honeypot = "honeypot",
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
    pub name: PersonName,
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
    /// Keyed hash of the client's address (`LANDING_IP_HASH_KEY`), never the address itself.
    pub client_ip_hash: Option<String>,
    /// Why screening held it back; `None` for an ordinary lead (and after a release).
    pub quarantine: Option<QuarantineReason>,
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
