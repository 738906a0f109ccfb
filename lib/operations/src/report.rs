//! `report`: per campaign (and per day), how many leads came and what became of each — SMS and
//! email delivered or not, the deal synced or not, and how long each took.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use landing_core::domain::{
    Channel, CrmStatus, EmailFeedback, Form, HoldReason, Lead, Notification, NotificationStatus,
};
use serde::Serialize;

/// How the rows are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// One row per `source_campaign`.
    Campaign,
    /// One row per campaign and day (the school's day, Asia/Almaty).
    Day,
}

/// One channel's rows: how each ended (or where it waits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCounts {
    pub sent: u64,
    pub failed: u64,
    pub suppressed: u64,
    /// Not sent yet and not held (due, being sent, or waiting to be retried).
    pub pending: u64,
    /// Pending, held back by the SMS budget until its window ends.
    pub held: u64,
}

impl ChannelCounts {
    fn add(&mut self, n: &Notification) {
        match n.status {
            NotificationStatus::Sent => self.sent += 1,
            NotificationStatus::Failed => self.failed += 1,
            NotificationStatus::Suppressed => self.suppressed += 1,
            NotificationStatus::Pending if n.hold_reason == Some(HoldReason::Budget) => {
                self.held += 1;
            }
            NotificationStatus::Pending | NotificationStatus::Sending => self.pending += 1,
        }
    }
}

/// The email rows, and what the provider reported of the sent ones (SES events; locally the
/// outbox reports nothing, so these stay 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailCounts {
    #[serde(flatten)]
    pub channel: ChannelCounts,
    /// Reported delivered to the recipient's mail server.
    pub delivered: u64,
    /// Bounced, permanently or not.
    pub bounced: u64,
    /// Marked as spam by the person.
    pub complained: u64,
}

impl EmailCounts {
    fn add(&mut self, n: &Notification) {
        self.channel.add(n);
        self.delivered += u64::from(n.delivered_at.is_some());
        match n.feedback {
            Some(EmailFeedback::Bounced | EmailFeedback::SoftBounced) => self.bounced += 1,
            Some(EmailFeedback::Complained) => self.complained += 1,
            Some(EmailFeedback::Rejected) | None => {}
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmCounts {
    pub synced: u64,
    pub failed: u64,
    pub pending: u64,
    pub disabled: u64,
    pub quarantined: u64,
}

impl CrmCounts {
    fn add(&mut self, s: CrmStatus) {
        match s {
            CrmStatus::Synced => self.synced += 1,
            CrmStatus::Failed => self.failed += 1,
            CrmStatus::Pending => self.pending += 1,
            CrmStatus::Disabled => self.disabled += 1,
            CrmStatus::Quarantined => self.quarantined += 1,
        }
    }
}

/// One row of the report (the JSON form is an array of these, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub source_campaign: String,
    /// The school's day (`2026-12-01`, Asia/Almaty) with `--by day`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    pub leads: u64,
    pub proftest: u64,
    pub expresscourse: u64,
    pub sms: ChannelCounts,
    pub email: EmailCounts,
    pub crm: CrmCounts,
    /// Median minutes from the lead to its SMS being sent (sent ones only).
    pub median_minutes_to_sms: Option<f64>,
    /// Median minutes from the lead to its deal being synced (synced ones only).
    pub median_minutes_to_deal: Option<f64>,
}

/// The report over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: Timestamp,
    pub to: Timestamp,
    pub rows: Vec<ReportRow>,
    /// Every row added up (campaign `all`).
    pub total: ReportRow,
}

/// The school's time zone: days and hours of the report are Almaty's.
pub fn school_tz() -> TimeZone {
    // The bundled database always has it; a fixed +05:00 (Kazakhstan's single zone since
    // March 2024) is the same thing should it ever not.
    TimeZone::get("Asia/Almaty").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::Offset::constant(5)))
}

#[derive(Default)]
struct Acc {
    leads: u64,
    proftest: u64,
    expresscourse: u64,
    sms: ChannelCounts,
    email: EmailCounts,
    crm: CrmCounts,
    to_sms: Vec<f64>,
    to_deal: Vec<f64>,
}

impl Acc {
    fn add(&mut self, lead: &Lead, rows: &[Notification]) {
        self.leads += 1;
        match lead.form {
            Form::ProfTest => self.proftest += 1,
            Form::ExpressCourse => self.expresscourse += 1,
        }
        self.crm.add(lead.crm.status);
        for n in rows {
            match n.channel() {
                Channel::Sms => {
                    self.sms.add(n);
                    if let Some(at) = n.sent_at {
                        self.to_sms.push(minutes(lead.created_at, at));
                    }
                }
                Channel::Email => self.email.add(n),
            }
        }
        if let (CrmStatus::Synced, Some(at)) = (lead.crm.status, lead.crm.synced_at) {
            self.to_deal.push(minutes(lead.created_at, at));
        }
    }

    fn row(mut self, campaign: String, day: Option<String>) -> ReportRow {
        ReportRow {
            source_campaign: campaign,
            day,
            leads: self.leads,
            proftest: self.proftest,
            expresscourse: self.expresscourse,
            sms: self.sms,
            email: self.email,
            crm: self.crm,
            median_minutes_to_sms: median(&mut self.to_sms),
            median_minutes_to_deal: median(&mut self.to_deal),
        }
    }
}

fn minutes(from: Timestamp, to: Timestamp) -> f64 {
    let ms = to
        .as_millisecond()
        .saturating_sub(from.as_millisecond())
        .max(0);
    // One decimal is as precise as a median of human-scale delays needs to be.
    ((ms as f64) / 6_000.0).round() / 10.0
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let m = if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1).copied()? + v.get(mid).copied()?) / 2.0)
    }?;
    Some((m * 10.0).round() / 10.0)
}

/// The school's day of `t`, `2026-12-01`.
pub fn day(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d")
        .to_string()
}

/// Counts `leads` (with their rows) per campaign, or per campaign and day; rows sorted by
/// campaign (and day), the total over all of them beside.
pub fn build(
    leads: &[(Lead, Vec<Notification>)],
    by: By,
    from: Timestamp,
    to: Timestamp,
) -> Report {
    let tz = school_tz();
    let mut groups: BTreeMap<(String, Option<String>), Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for (lead, rows) in leads {
        let d = match by {
            By::Campaign => None,
            By::Day => Some(day(lead.created_at, &tz)),
        };
        groups
            .entry((lead.source_campaign.as_str().to_owned(), d))
            .or_default()
            .add(lead, rows);
        total.add(lead, rows);
    }
    Report {
        from,
        to,
        rows: groups
            .into_iter()
            .map(|((campaign, d), acc)| acc.row(campaign, d))
            .collect(),
        total: total.row("all".to_owned(), None),
    }
}

/// The JSON form: the rows, an array of objects with camelCase keys.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(&report.rows).unwrap_or_else(|_| "[]".to_owned())
}

const COLUMNS: [&str; 25] = [
    "source_campaign",
    "day",
    "leads",
    "proftest",
    "expresscourse",
    "sms_sent",
    "sms_failed",
    "sms_suppressed",
    "sms_pending",
    "sms_held",
    "email_sent",
    "email_failed",
    "email_suppressed",
    "email_pending",
    "email_held",
    "email_delivered",
    "email_bounced",
    "email_complained",
    "crm_synced",
    "crm_failed",
    "crm_pending",
    "crm_disabled",
    "crm_quarantined",
    "median_minutes_to_sms",
    "median_minutes_to_deal",
];

fn cells(r: &ReportRow) -> Vec<String> {
    let opt = |v: Option<f64>| v.map(|m| format!("{m:.1}")).unwrap_or_default();
    let mut out = vec![
        r.source_campaign.clone(),
        r.day.clone().unwrap_or_default(),
        r.leads.to_string(),
        r.proftest.to_string(),
        r.expresscourse.to_string(),
    ];
    for c in [r.sms, r.email.channel] {
        out.extend([c.sent, c.failed, c.suppressed, c.pending, c.held].map(|n| n.to_string()));
    }
    let e = r.email;
    out.extend([e.delivered, e.bounced, e.complained].map(|n| n.to_string()));
    let k = r.crm;
    out.extend([k.synced, k.failed, k.pending, k.disabled, k.quarantined].map(|n| n.to_string()));
    out.push(opt(r.median_minutes_to_sms));
    out.push(opt(r.median_minutes_to_deal));
    out
}

/// The CSV form (UTF-8 with a BOM, so that Excel reads Cyrillic campaign names right), with the
/// total as the last line.
pub fn csv(report: &Report) -> Result<String, crate::OpsError> {
    let mut w = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    w.write_record(COLUMNS)?;
    for r in report.rows.iter().chain([&report.total]) {
        w.write_record(cells(r))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::OpsError::Io(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| crate::OpsError::Io(e.to_string()))
}

/// The table form, for a terminal: one line per row, the counts as `sent/failed/suppressed/
/// pending/held`, the emails' `delivered/bounced/complained` and
/// `synced/failed/pending/disabled/quarantined`.
pub fn table(report: &Report) -> String {
    let header = [
        "campaign",
        "day",
        "leads",
        "pt/ec",
        "sms s/f/x/p/h",
        "email s/f/x/p/h",
        "email d/b/c",
        "crm s/f/p/d/q",
        "→sms min",
        "→deal min",
    ];
    let line = |r: &ReportRow| -> Vec<String> {
        let ch = |c: ChannelCounts| {
            format!(
                "{}/{}/{}/{}/{}",
                c.sent, c.failed, c.suppressed, c.pending, c.held
            )
        };
        let k = r.crm;
        let opt = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |m| format!("{m:.1}"));
        vec![
            r.source_campaign.clone(),
            r.day.clone().unwrap_or_else(|| "–".to_owned()),
            r.leads.to_string(),
            format!("{}/{}", r.proftest, r.expresscourse),
            ch(r.sms),
            ch(r.email.channel),
            format!(
                "{}/{}/{}",
                r.email.delivered, r.email.bounced, r.email.complained
            ),
            format!(
                "{}/{}/{}/{}/{}",
                k.synced, k.failed, k.pending, k.disabled, k.quarantined
            ),
            opt(r.median_minutes_to_sms),
            opt(r.median_minutes_to_deal),
        ]
    };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(report.rows.iter().map(line));
    lines.push(line(&report.total));
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let tz = school_tz();
    let mut out = format!(
        "leads created {} – {} (Asia/Almaty)\n",
        report
            .from
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M"),
        report.to.to_zoned_datetime(tz).strftime("%Y-%m-%d %H:%M"),
    );
    for (n, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w.saturating_sub(c.chars().count());
                // Names left, numbers right.
                if i < 2 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 || n + 2 == lines.len() {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out.push_str("s/f/x/p/h = sent/failed/suppressed/pending/held; d/b/c = delivered/bounced/complained; s/f/p/d/q = synced/failed/pending/disabled/quarantined\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_of_what_happened_only() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(
            minutes(
                Timestamp::from_second(0).unwrap(),
                Timestamp::from_second(630).unwrap()
            ),
            10.5
        );
    }

    #[test]
    fn days_are_the_schools_days() {
        // 20:00 UTC is already the next day in Almaty (UTC+5).
        let t: Timestamp = "2026-12-01T20:00:00Z".parse().unwrap();
        assert_eq!(day(t, &school_tz()), "2026-12-02");
    }
}
