//! `export`: the leads with their attribution, for a spreadsheet (UTF-8 with a BOM, so that Excel
//! reads Cyrillic right).

use landing_core::domain::{Channel, Lead, Notification};

use crate::OpsError;
use crate::report::school_tz;

const COLUMNS: [&str; 22] = [
    "lead_id",
    "created_at",
    "form",
    "source_campaign",
    "name",
    "phone",
    "email",
    "payment_method",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer",
    "page_url",
    "sms",
    "email_status",
    "crm_status",
    "amocrm_deal_id",
    "quarantine",
    "warnings",
    "correlation_id",
];

pub fn csv(leads: &[(Lead, Vec<Notification>)]) -> Result<String, OpsError> {
    let tz = school_tz();
    let mut w = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    w.write_record(COLUMNS)?;
    for (l, rows) in leads {
        let status = |c: Channel| {
            rows.iter()
                .find(|n| n.channel() == c)
                .map(|n| match n.suppressed_reason {
                    Some(r) => format!("{}:{}", n.status.as_str(), r.as_str()),
                    None => n.status.as_str().to_owned(),
                })
                .unwrap_or_default()
        };
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        w.write_record([
            l.id.to_string(),
            l.created_at
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            l.form.as_str().to_owned(),
            l.source_campaign.as_str().to_owned(),
            l.name.as_str().to_owned(),
            l.phone.stored().unwrap_or_default().to_owned(),
            l.email.stored().unwrap_or_default().to_owned(),
            l.payment_method
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            o(&l.utm.source),
            o(&l.utm.medium),
            o(&l.utm.campaign),
            o(&l.utm.content),
            o(&l.utm.term),
            o(&l.referrer),
            o(&l.page_url),
            status(Channel::Sms),
            status(Channel::Email),
            l.crm.status.as_str().to_owned(),
            l.crm
                .amocrm_lead_id
                .map(|d| d.to_string())
                .unwrap_or_default(),
            l.quarantine
                .map(|q| q.as_str().to_owned())
                .unwrap_or_default(),
            l.warnings.join("; "),
            l.correlation_id.clone(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| OpsError::Io(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| OpsError::Io(e.to_string()))
}
