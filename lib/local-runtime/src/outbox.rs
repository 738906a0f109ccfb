//! The local transport: every SMS and email is appended to `outbox.jsonl` as one JSON object per
//! line (docs/architecture.md §8) and made durable before it counts as sent.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use landing_core::ports::{
    EmailMessage, EmailSender, MessageMeta, SendError, SmsMessage, SmsSender,
};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct Outbox {
    path: Arc<PathBuf>,
    // One writer at a time keeps lines whole; appends are small, so contention is negligible.
    lock: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SmsLine<'a> {
    channel: &'static str,
    to: &'a str,
    notification_id: String,
    lead_id: String,
    source_campaign: &'a str,
    correlation_id: &'a str,
    body: &'a str,
    segments: u32,
    sent_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmailLine<'a> {
    channel: &'static str,
    to: &'a str,
    notification_id: String,
    lead_id: String,
    source_campaign: &'a str,
    correlation_id: &'a str,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    /// The headers beyond From/To/Subject (`List-Unsubscribe`, `List-Unsubscribe-Post`).
    headers: std::collections::BTreeMap<&'static str, String>,
    sent_at: String,
}

impl Outbox {
    pub fn new(path: PathBuf) -> Self {
        Outbox {
            path: Arc::new(path),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn append(&self, meta: &MessageMeta, line: Vec<u8>) -> Result<String, SendError> {
        let _guard = self.lock.lock().await;
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // Opened per message: a rotated or removed outbox is simply recreated.
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.as_path())?;
            f.write_all(&line)?;
            f.sync_data()
        })
        .await
        .map_err(|e| SendError::Transient(format!("outbox writer stopped: {e}")))?
        .map_err(|e| SendError::Transient(format!("cannot append to outbox: {e}")))?;
        Ok(format!("outbox-{}", meta.notification_id))
    }
}

fn now() -> String {
    landing_core::time::format(jiff::Timestamp::now())
}

fn line<T: Serialize>(v: &T) -> Result<Vec<u8>, SendError> {
    let mut bytes = serde_json::to_vec(v)
        .map_err(|e| SendError::Permanent(format!("cannot encode message: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[async_trait]
impl SmsSender for Outbox {
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError> {
        let bytes = line(&SmsLine {
            channel: "sms",
            to: msg.to.as_str(),
            notification_id: msg.meta.notification_id.to_string(),
            lead_id: msg.meta.lead_id.to_string(),
            source_campaign: &msg.meta.source_campaign,
            correlation_id: &msg.meta.correlation_id,
            body: &msg.body,
            segments: msg.segments,
            sent_at: now(),
        })?;
        let id = self.append(&msg.meta, bytes).await?;
        tracing::info!(to = %msg.to, lead_id = %msg.meta.lead_id, chars = msg.body.chars().count(), "sms written to outbox");
        Ok(id)
    }
}

#[async_trait]
impl EmailSender for Outbox {
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError> {
        let bytes = line(&EmailLine {
            channel: "email",
            to: msg.to.as_str(),
            notification_id: msg.meta.notification_id.to_string(),
            lead_id: msg.meta.lead_id.to_string(),
            source_campaign: &msg.meta.source_campaign,
            correlation_id: &msg.meta.correlation_id,
            subject: &msg.subject,
            text: &msg.text,
            html: &msg.html,
            headers: msg.extra_headers().into_iter().collect(),
            sent_at: now(),
        })?;
        let id = self.append(&msg.meta, bytes).await?;
        tracing::info!(to = %msg.to, lead_id = %msg.meta.lead_id, "email written to outbox");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landing_core::domain::{Email, LeadId, Phone};

    fn meta() -> MessageMeta {
        MessageMeta {
            notification_id: uuid::Uuid::now_v7(),
            lead_id: LeadId::new(),
            source_campaign: "proftest_kenesary".into(),
            correlation_id: "corr-1".into(),
        }
    }

    #[tokio::test]
    async fn each_message_is_one_json_line_with_the_documented_fields() {
        let dir = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let outbox = Outbox::new(dir.join("outbox.jsonl"));
        let sms = SmsMessage {
            meta: meta(),
            to: Phone::parse("87771234567").unwrap(),
            body: "Привет\nмир".into(),
            segments: 1,
        };
        let email = EmailMessage {
            meta: meta(),
            to: Email::parse("a@mail.kz").unwrap(),
            subject: "S".into(),
            text: "T".into(),
            html: "<p>H</p>".into(),
            list_unsubscribe: Some(
                "https://school.example.kz/api/landing/unsubscribe?token=ab12".into(),
            ),
        };
        let id = outbox.send_sms(&sms).await.unwrap();
        assert_eq!(id, format!("outbox-{}", sms.meta.notification_id));
        outbox.send_email(&email).await.unwrap();

        let content = std::fs::read_to_string(dir.join("outbox.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = content
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["channel"], "sms");
        assert_eq!(lines[0]["to"], "+77771234567");
        assert_eq!(lines[0]["body"], "Привет\nмир");
        assert_eq!(lines[0]["segments"], 1);
        assert_eq!(lines[0]["sourceCampaign"], "proftest_kenesary");
        assert_eq!(lines[0]["leadId"], sms.meta.lead_id.to_string());
        assert!(lines[0]["sentAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["channel"], "email");
        assert_eq!(lines[1]["to"], "a@mail.kz");
        for key in ["subject", "text", "html", "notificationId"] {
            assert!(lines[1].get(key).is_some(), "{key}");
        }
        assert!(lines[1].get("body").is_none());
        assert_eq!(
            lines[1]["headers"],
            serde_json::json!({
                "List-Unsubscribe": "<https://school.example.kz/api/landing/unsubscribe?token=ab12>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            })
        );
    }
}
