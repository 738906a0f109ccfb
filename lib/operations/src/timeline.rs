//! `lead show`: one lead's story — intake, each notification with its attempts, errors and
//! provider id, the CRM sync with the deal and a link to it.

use jiff::Timestamp;
use landing_core::domain::{CrmStatus, Lead, Notification, NotificationStatus};
use serde::Serialize;

use crate::report::school_tz;

/// A link to a deal in the school's AmoCRM account.
pub fn deal_url(subdomain: Option<&str>, deal: i64) -> Option<String> {
    subdomain.map(|s| format!("https://{s}.amocrm.ru/leads/detail/{deal}"))
}

fn at(t: Timestamp) -> String {
    t.to_zoned_datetime(school_tz())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The JSON form of one lead's timeline.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineJson<'a> {
    pub lead_id: String,
    pub created_at: Timestamp,
    pub form: &'a str,
    pub source_campaign: &'a str,
    pub crm_status: &'a str,
    pub deal_id: Option<i64>,
    pub deal_url: Option<String>,
    pub quarantine: Option<&'a str>,
    pub notifications: Vec<NotificationJson<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationJson<'a> {
    pub channel: &'a str,
    pub to: &'a str,
    pub status: &'a str,
    pub send_at: Timestamp,
    pub attempts: u32,
    pub last_error: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub sent_at: Option<Timestamp>,
    pub suppressed_reason: Option<&'a str>,
    pub hold_reason: Option<&'a str>,
    pub delivered_at: Option<Timestamp>,
    pub feedback: Option<&'a str>,
    pub feedback_detail: Option<&'a str>,
}

pub fn json<'a>(
    lead: &'a Lead,
    rows: &'a [Notification],
    subdomain: Option<&str>,
) -> TimelineJson<'a> {
    TimelineJson {
        lead_id: lead.id.to_string(),
        created_at: lead.created_at,
        form: lead.form.as_str(),
        source_campaign: lead.source_campaign.as_str(),
        crm_status: lead.crm.status.as_str(),
        deal_id: lead.crm.amocrm_lead_id,
        deal_url: lead.crm.amocrm_lead_id.and_then(|d| deal_url(subdomain, d)),
        quarantine: lead.quarantine.map(|q| q.as_str()),
        notifications: rows
            .iter()
            .map(|n| NotificationJson {
                channel: n.channel().as_str(),
                to: n.recipient.as_str(),
                status: n.status.as_str(),
                send_at: n.send_at,
                attempts: n.attempts,
                last_error: n.last_error.as_deref(),
                provider_message_id: n.provider_message_id.as_deref(),
                sent_at: n.sent_at,
                suppressed_reason: n.suppressed_reason.map(|r| r.as_str()),
                hold_reason: n.hold_reason.map(|r| r.as_str()),
                delivered_at: n.delivered_at,
                feedback: n.feedback.map(|f| f.as_str()),
                feedback_detail: n.feedback_detail.as_deref(),
            })
            .collect(),
    }
}

/// The text form, oldest event first, times in Asia/Almaty.
pub fn text(lead: &Lead, rows: &[Notification], subdomain: Option<&str>) -> String {
    let mut out = vec![format!(
        "lead {}  {}  {}",
        lead.id,
        lead.form.as_str(),
        lead.source_campaign.as_str()
    )];
    let contact = |c: Option<&str>| c.unwrap_or("—").to_owned();
    out.push(format!(
        "  {}  intake: {} · phone {} · email {}{}",
        at(lead.created_at),
        lead.name.as_str(),
        contact(lead.phone.stored()),
        contact(lead.email.stored()),
        lead.payment_method
            .map(|p| format!(" · {}", p.as_str()))
            .unwrap_or_default()
    ));
    let utm: Vec<String> = [
        ("source", &lead.utm.source),
        ("medium", &lead.utm.medium),
        ("campaign", &lead.utm.campaign),
        ("content", &lead.utm.content),
        ("term", &lead.utm.term),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("utm_{k}={v}")))
    .collect();
    if !utm.is_empty() {
        out.push(format!("                       {}", utm.join(" ")));
    }
    for w in &lead.warnings {
        out.push(format!("                       warning: {w}"));
    }
    if let Some(q) = lead.quarantine {
        out.push(format!(
            "                       QUARANTINED ({}): no SMS, email or deal until `lead release {}`",
            q.as_str(),
            lead.id
        ));
    }
    for n in rows {
        let mut line = format!(
            "  {}  {} to {}: {}",
            at(n.sent_at.or(n.failed_at).unwrap_or(n.send_at)),
            n.channel().as_str(),
            n.recipient.as_str(),
            n.status.as_str()
        );
        match n.status {
            NotificationStatus::Sent => line.push_str(&format!(
                " after {} attempt(s), provider id {}",
                n.attempts,
                n.provider_message_id.as_deref().unwrap_or("—")
            )),
            NotificationStatus::Failed => line.push_str(&format!(
                " after {} attempt(s): {}",
                n.attempts,
                n.last_error.as_deref().unwrap_or("—")
            )),
            NotificationStatus::Suppressed => line.push_str(&format!(
                " ({})",
                n.suppressed_reason.map_or("—", |r| r.as_str())
            )),
            NotificationStatus::Pending | NotificationStatus::Sending => {
                line.push_str(&format!(", due {}", at(n.send_at)));
                if let Some(h) = n.hold_reason {
                    line.push_str(&format!(" (held: {})", h.as_str()));
                }
                if let Some(e) = &n.last_error {
                    line.push_str(&format!(
                        "; last error after {} attempt(s): {e}",
                        n.attempts
                    ));
                }
            }
        }
        out.push(line);
        if let Some(d) = n.delivered_at {
            out.push(format!("  {}  {} delivered", at(d), n.channel().as_str()));
        }
        if let Some(f) = n.feedback {
            out.push(format!(
                "                       {} {}: {}",
                n.channel().as_str(),
                f.as_str(),
                n.feedback_detail.as_deref().unwrap_or("—")
            ));
        }
    }
    let crm = &lead.crm;
    let when = crm.synced_at.map(at).unwrap_or_else(|| " ".repeat(19));
    let mut line = format!("  {when}  crm: {}", crm.status.as_str());
    if let Some(deal) = crm.amocrm_lead_id {
        line.push_str(&format!(" · deal {deal}"));
        if let Some(url) = deal_url(subdomain, deal) {
            line.push_str(&format!(" {url}"));
        }
    }
    if let Some(c) = crm.amocrm_contact_id {
        line.push_str(&format!(" · contact {c}"));
    }
    match crm.status {
        CrmStatus::Failed | CrmStatus::Pending if crm.attempts > 0 => line.push_str(&format!(
            " · {} failed attempt(s): {}",
            crm.attempts,
            crm.error.as_deref().unwrap_or("—")
        )),
        _ => {}
    }
    out.push(line);
    out.push(format!("  correlation id {}", lead.correlation_id));
    out.join("\n") + "\n"
}
