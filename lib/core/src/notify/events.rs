//! What the email provider reports of an email after it left (SES v2 event publishing: delivery,
//! bounce, complaint, reject). Each event is recorded on its notification row; a permanent bounce
//! or a complaint also puts the address on the suppression list, so no later email goes to it —
//! SES suspends a sender whose bounce or complaint rate stays high.

use std::sync::Arc;

use jiff::Timestamp;
use uuid::Uuid;

use crate::domain::{AddressSuppression, Email, EmailFeedback};
use crate::ports::{EmailEventRecord, NotificationStore, StoreError, SuppressionList};

/// The event types of the configuration set's event destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailEventKind {
    Delivery,
    /// `permanent`: SES's `Permanent` bounce type (the address does not exist); a `Transient` or
    /// `Undetermined` one may pass.
    Bounce {
        permanent: bool,
    },
    Complaint,
    Reject,
}

/// One provider event, as the runtime parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailEvent {
    pub kind: EmailEventKind,
    /// The notification row, from the message's `notificationId` tag (absent for an email this
    /// pipeline did not send).
    pub notification_id: Option<Uuid>,
    pub at: Timestamp,
    /// The addresses it concerns: the bounced or complained recipients, else the destination.
    pub recipients: Vec<Email>,
    /// The provider's reason, for people: bounce type and diagnostic, feedback type, reject reason.
    pub detail: String,
}

/// What recording one event did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// The notification row was found and updated.
    pub on_row: bool,
    /// Addresses newly put on the suppression list.
    pub listed: usize,
}

/// The longest reason kept on a row.
const MAX_DETAIL: usize = 300;

pub struct EmailEvents {
    notifications: Arc<dyn NotificationStore>,
    list: Arc<dyn SuppressionList>,
}

impl EmailEvents {
    pub fn new(notifications: Arc<dyn NotificationStore>, list: Arc<dyn SuppressionList>) -> Self {
        EmailEvents {
            notifications,
            list,
        }
    }

    /// Records `event`; delivering the same event twice (SNS delivers at least once) writes the
    /// same again and lists no address twice.
    pub async fn record(&self, event: &EmailEvent) -> Result<Recorded, StoreError> {
        let detail = clip(&event.detail);
        let (record, listing) = match event.kind {
            EmailEventKind::Delivery => (EmailEventRecord::Delivered { at: event.at }, None),
            EmailEventKind::Bounce { permanent: true } => (
                feedback(EmailFeedback::Bounced, detail),
                Some(AddressSuppression::Bounced),
            ),
            EmailEventKind::Bounce { permanent: false } => {
                (feedback(EmailFeedback::SoftBounced, detail), None)
            }
            EmailEventKind::Complaint => (
                feedback(EmailFeedback::Complained, detail),
                Some(AddressSuppression::Complained),
            ),
            EmailEventKind::Reject => (feedback(EmailFeedback::Rejected, detail), None),
        };
        let mut done = Recorded::default();
        if let Some(reason) = listing {
            for to in &event.recipients {
                if self.list.suppress_address(to, reason, event.at).await? {
                    done.listed += 1;
                }
            }
        }
        if let Some(id) = event.notification_id {
            done.on_row = self.notifications.record_email_event(id, &record).await?;
        }
        let to: Vec<String> = event.recipients.iter().map(Email::masked).collect();
        tracing::info!(
            event = "email_event",
            kind = kind_name(event.kind),
            notification_id = event.notification_id.map(|id| id.to_string()),
            on_row = done.on_row,
            listed = done.listed,
            to = ?to,
            "email event recorded"
        );
        Ok(done)
    }
}

fn feedback(kind: EmailFeedback, detail: String) -> EmailEventRecord {
    EmailEventRecord::Feedback { kind, detail }
}

fn kind_name(kind: EmailEventKind) -> &'static str {
    match kind {
        EmailEventKind::Delivery => "delivery",
        EmailEventKind::Bounce { permanent: true } => "bounce",
        EmailEventKind::Bounce { permanent: false } => "soft_bounce",
        EmailEventKind::Complaint => "complaint",
        EmailEventKind::Reject => "reject",
    }
}

/// One line of at most [`MAX_DETAIL`] characters: diagnostics come from remote mail servers.
fn clip(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DETAIL)
        .collect()
}
