//! SES v2 event publishing, as an SNS event destination delivers it: one JSON document per SNS
//! message (`eventType` Delivery, Bounce, Complaint or Reject; the older identity notifications
//! say `notificationType` and are read the same), into the core's [`EmailEvent`].

use std::collections::BTreeMap;

use landing_core::domain::Email;
use landing_core::notify::{EmailEvent, EmailEventKind};
use serde::Deserialize;
use uuid::Uuid;

/// The message tag the SES adapter puts the notification id in (`landing-aws-messaging`).
const NOTIFICATION_TAG: &str = "notificationId";

/// Why a message is not an event this function records.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotAnEvent {
    #[error("not an SES event document")]
    Malformed,
    /// Send, Open, Click, DeliveryDelay, Rendering Failure, Subscription: not subscribed to, and
    /// nothing a row needs.
    #[error("SES event type {0:?} is not recorded")]
    Ignored(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    event_type: Option<String>,
    notification_type: Option<String>,
    mail: Mail,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Delivery>,
    reject: Option<Reject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    timestamp: Option<String>,
    #[serde(default)]
    destination: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    diagnostic_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: Option<String>,
    bounce_sub_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    complaint_feedback_type: Option<String>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    timestamp: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
    smtp_response: Option<String>,
}

#[derive(Deserialize)]
struct Reject {
    reason: Option<String>,
}

/// Parses one SNS message of the configuration set's event destination.
pub fn parse(message: &str) -> Result<EmailEvent, NotAnEvent> {
    let doc: Document = serde_json::from_str(message).map_err(|_| NotAnEvent::Malformed)?;
    let kind = doc
        .event_type
        .or(doc.notification_type)
        .ok_or(NotAnEvent::Malformed)?;
    let addresses = |raw: &mut dyn Iterator<Item = &str>| -> Vec<Email> {
        raw.filter_map(|a| Email::parse(a).ok()).collect()
    };
    let (kind, when, recipients, detail) = match kind.as_str() {
        "Delivery" => {
            let d = doc.delivery.ok_or(NotAnEvent::Malformed)?;
            let to = if d.recipients.is_empty() {
                &doc.mail.destination
            } else {
                &d.recipients
            };
            (
                EmailEventKind::Delivery,
                d.timestamp,
                addresses(&mut to.iter().map(String::as_str)),
                d.smtp_response.unwrap_or_default(),
            )
        }
        "Bounce" => {
            let b = doc.bounce.ok_or(NotAnEvent::Malformed)?;
            let kind = b.bounce_type.unwrap_or_default();
            let diagnostic = b
                .bounced_recipients
                .iter()
                .find_map(|r| r.diagnostic_code.clone())
                .unwrap_or_default();
            let detail = format!(
                "{kind}/{}: {diagnostic}",
                b.bounce_sub_type.unwrap_or_default()
            );
            (
                EmailEventKind::Bounce {
                    permanent: kind == "Permanent",
                },
                b.timestamp,
                addresses(
                    &mut b
                        .bounced_recipients
                        .iter()
                        .map(|r| r.email_address.as_str()),
                ),
                detail,
            )
        }
        "Complaint" => {
            let c = doc.complaint.ok_or(NotAnEvent::Malformed)?;
            (
                EmailEventKind::Complaint,
                c.timestamp,
                addresses(
                    &mut c
                        .complained_recipients
                        .iter()
                        .map(|r| r.email_address.as_str()),
                ),
                c.complaint_feedback_type
                    .unwrap_or_else(|| "complaint".to_owned()),
            )
        }
        "Reject" => (
            EmailEventKind::Reject,
            None,
            addresses(&mut doc.mail.destination.iter().map(String::as_str)),
            doc.reject.and_then(|r| r.reason).unwrap_or_default(),
        ),
        other => return Err(NotAnEvent::Ignored(other.to_owned())),
    };
    let at = when
        .or(doc.mail.timestamp)
        .and_then(|t| t.parse().ok())
        .ok_or(NotAnEvent::Malformed)?;
    let notification_id = doc
        .mail
        .tags
        .get(NOTIFICATION_TAG)
        .and_then(|v| v.first())
        .and_then(|id| Uuid::try_parse(id).ok());
    Ok(EmailEvent {
        kind,
        notification_id,
        at,
        recipients,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/email-events/");
        let sns: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{path}{name}")).unwrap())
                .unwrap();
        sns["Records"][0]["Sns"]["Message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn each_fixture_parses_to_its_event() {
        let bounce = parse(&fixture("bounce-permanent.json")).unwrap();
        assert_eq!(bounce.kind, EmailEventKind::Bounce { permanent: true });
        assert_eq!(
            bounce.notification_id.map(|u| u.to_string()).as_deref(),
            Some("0190f3c4-1a2b-7c3d-8e4f-00000000e001")
        );
        assert_eq!(bounce.recipients.len(), 1);
        assert!(
            bounce
                .detail
                .starts_with("Permanent/General: smtp; 550 5.1.1"),
            "{}",
            bounce.detail
        );
        let soft = parse(&fixture("bounce-transient.json")).unwrap();
        assert_eq!(soft.kind, EmailEventKind::Bounce { permanent: false });
        assert_eq!(
            parse(&fixture("complaint.json")).unwrap().kind,
            EmailEventKind::Complaint
        );
        let delivery = parse(&fixture("delivery.json")).unwrap();
        assert_eq!(delivery.kind, EmailEventKind::Delivery);
        assert_eq!(delivery.at.to_string(), "2026-12-01T06:10:03.52Z");
        assert_eq!(
            parse(&fixture("reject.json")).unwrap().kind,
            EmailEventKind::Reject
        );
    }

    #[test]
    fn other_types_and_other_documents_are_told_apart() {
        assert_eq!(
            parse(r#"{"eventType":"Open","mail":{}}"#),
            Err(NotAnEvent::Ignored("Open".into()))
        );
        assert_eq!(parse("not json"), Err(NotAnEvent::Malformed));
        assert_eq!(
            parse(r#"{"eventType":"Bounce","mail":{}}"#),
            Err(NotAnEvent::Malformed)
        );
        // An email this pipeline did not send: no tag, still recorded (the address still counts).
        let untagged = parse(
            r#"{"eventType":"Complaint","mail":{"timestamp":"2026-12-01T06:00:00Z"},"complaint":{"complainedRecipients":[{"emailAddress":"a@mail.kz"}]}}"#,
        )
        .unwrap();
        assert_eq!(untagged.notification_id, None);
        assert_eq!(untagged.recipients[0].as_str(), "a@mail.kz");
    }
}
