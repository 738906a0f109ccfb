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

string_enum! {
    pub enum NotificationStatus {
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        /// Deliberately not sent, for good (a guard, a quarantine): final, with its reason.
        Suppressed = "suppressed",
    }
}

impl NotificationStatus {
    /// Nothing will happen to the row any more (short of an operator's release or resend).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NotificationStatus::Sent | NotificationStatus::Failed | NotificationStatus::Suppressed
        )
    }
}

string_enum! {
    /// Why a notification ended `suppressed`.
    pub enum SuppressReason {
        /// The SMS destination is outside `SMS_ALLOWED_PREFIXES`.
        CountryNotAllowed = "country_not_allowed",
        /// `SMS_LIMIT_PER_PHONE` reached for this number.
        PhoneLimit = "phone_limit",
        /// `SMS_LIMIT_PER_PREFIX` reached for the number's prefix (all but its last four digits).
        PrefixLimit = "prefix_limit",
        /// `SMS_LIMIT_PER_IP` reached for the client address the lead came from.
        IpLimit = "ip_limit",
        /// The lead is quarantined by screening.
        Quarantined = "quarantined",
        /// The same person's newer (or ExpressCourse) form has its own follow-up on this
        /// channel: one per person at a time.
        Superseded = "superseded",
        /// The address is on the suppression list (unsubscribed, bounced or complained).
        AddressSuppressed = "address_suppressed",
    }
}

string_enum! {
    /// Why a `pending` notification waits past its due time (it still goes out, later).
    pub enum HoldReason {
        /// `SMS_BUDGET` is spent for this window: sent, in order, as the window frees.
        Budget = "budget",
        /// Outside the channel's send window (`NOTIFY_SMS_WINDOW`): sent at its next start.
        Window = "window",
    }
}

string_enum! {
    /// What the provider reported of a sent email after it left (SES delivery events).
    pub enum EmailFeedback {
        /// A permanent bounce: the address does not exist (it goes on the suppression list).
        Bounced = "bounced",
        /// A transient or undetermined bounce: a full mailbox, a server down for a while.
        SoftBounced = "soft_bounced",
        /// The person marked it as spam (the address goes on the suppression list).
        Complained = "complained",
        /// SES refused to send it (a virus found in it).
        Rejected = "rejected",
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
    /// Why it ended `suppressed`.
    pub suppressed_reason: Option<SuppressReason>,
    /// Why a `pending` row waits past its due time.
    pub hold_reason: Option<HoldReason>,
    /// When the provider reported the email delivered to the recipient's mail server.
    pub delivered_at: Option<Timestamp>,
    /// A bounce, complaint or reject the provider reported, with its reason in
    /// `feedback_detail`.
    pub feedback: Option<EmailFeedback>,
    pub feedback_detail: Option<String>,
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
            suppressed_reason: None,
            hold_reason: None,
            delivered_at: None,
            feedback: None,
            feedback_detail: None,
        }
    }

    pub fn channel(&self) -> Channel {
        self.recipient.channel()
    }
}
