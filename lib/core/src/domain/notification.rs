//! A follow-up: one row of `scheduled_notifications` per channel of a lead
//! (docs/architecture.md §5).
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Email, Lead, LeadId, Phone, SourceCampaign, UnknownValue};

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

/// Who a notification goes to, parsed: a phone for an SMS, an address for an email. The channel
/// follows from it, so an SMS row can never hold an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Sms(Phone),
    Email(Email),
}

impl Recipient {
    pub fn channel(&self) -> Channel {
        match self {
            Recipient::Sms(_) => Channel::Sms,
            Recipient::Email(_) => Channel::Email,
        }
    }

    /// The stored value: E.164 or the address.
    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Sms(p) => p.as_str(),
            Recipient::Email(e) => e.as_str(),
        }
    }

    /// For logs.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Sms(p) => p.masked(),
            Recipient::Email(e) => e.masked(),
        }
    }
}

/// One row of `scheduled_notifications`: one channel of one lead. `attempts` counts claims, so
/// it doubles as the claim token: only the holder of the latest claim may settle the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub lead_id: LeadId,
    pub recipient: Recipient,
    pub source_campaign: SourceCampaign,
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
        let sms = lead.phone.valid().cloned().map(Recipient::Sms);
        let email = lead.email.valid().cloned().map(Recipient::Email);
        [sms, email]
            .into_iter()
            .flatten()
            .map(|to| Notification::pending(lead.id, to, &lead.source_campaign, send_at))
            .collect()
    }

    pub fn pending(
        lead_id: LeadId,
        recipient: Recipient,
        source_campaign: &SourceCampaign,
        send_at: Timestamp,
    ) -> Self {
        Notification {
            id: Uuid::now_v7(),
            lead_id,
            recipient,
            source_campaign: source_campaign.clone(),
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

    pub fn channel(&self) -> Channel {
        self.recipient.channel()
    }
}
