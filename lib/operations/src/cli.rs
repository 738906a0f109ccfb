//! The operator verbs' command line, shared by `landing-local` and `landing-ops` so that both
//! runtimes take the same words (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use landing_core::domain::LeadId;
use landing_core::ports::Requeue;

use crate::report::By;

fn duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("not a duration like 7d or 12h ({e})"))
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum OpsCommand {
    /// Per campaign (or campaign and day): leads by form; SMS and email sent, failed,
    /// suppressed, pending, held; CRM synced, failed, pending, disabled, quarantined; median
    /// minutes from lead to SMS and to deal.
    Report(ReportArgs),
    /// Stored leads: a lead's timeline, or the release of a quarantined one.
    #[command(subcommand)]
    Lead(LeadCommand),
    /// Notifications: send failed ones again.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The CRM sync of stored leads.
    #[command(subcommand)]
    Crm(CrmCommand),
    /// The leads with their attribution, as CSV for a spreadsheet (UTF-8 with a BOM).
    Export(ExportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReportArgs {
    /// How far back, counted from now (humantime: 7d, 24h, 30d)
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub since: Duration,
    /// One row per campaign, or per campaign and day (Asia/Almaty)
    #[arg(long, value_enum, default_value_t = By::Campaign)]
    pub by: By,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum LeadCommand {
    /// A lead's timeline: intake, each notification with attempts, errors and provider id, the
    /// CRM sync with the deal and its link. By id, or every lead of a phone or email, newest
    /// first.
    Show(ShowArgs),
    /// Send a lead the honeypot quarantined through the normal path: its notifications due now,
    /// its CRM sync. For a person a bot check caught by mistake.
    Release {
        /// The lead's id (a UUID, as in `landing_leads.id`).
        #[arg(value_name = "LEAD_ID")]
        lead: LeadId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ShowArgs {
    /// The lead's id
    #[arg(
        value_name = "LEAD_ID",
        required_unless_present_any = ["phone", "email"],
        conflicts_with_all = ["phone", "email"]
    )]
    pub lead: Option<LeadId>,
    /// Every lead of this phone number (any spelling: 8 777 …, +7 777 …)
    #[arg(long, conflicts_with = "email")]
    pub phone: Option<String>,
    /// Every lead of this email address
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum NotifyCommand {
    /// Failed notifications → due now, as fresh rows (one lead's, or every failed one).
    Resend(ResendArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ResendArgs {
    /// The lead whose failed notifications to send again
    #[arg(
        value_name = "LEAD_ID",
        required_unless_present = "failed",
        conflicts_with = "failed"
    )]
    pub lead: Option<LeadId>,
    /// Every failed notification of the leads of the last --since
    #[arg(long)]
    pub failed: bool,
    /// With --failed: how far back (humantime)
    #[arg(long, default_value = "30d", value_parser = duration)]
    pub since: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CrmCommand {
    /// Hand a lead (failed or disabled), or every failed lead, back to the CRM sync.
    Resync(ResyncArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct ResyncArgs {
    /// The lead's id (a UUID, as in `landing_leads.id`).
    #[arg(value_name = "LEAD_ID")]
    pub lead: Option<LeadId>,
    /// Every lead whose sync failed.
    #[arg(long)]
    pub failed: bool,
}

impl ResyncArgs {
    pub fn which(&self) -> Requeue {
        match self.lead {
            Some(id) => Requeue::Lead(id),
            None => Requeue::AllFailed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ExportArgs {
    /// How far back (humantime)
    #[arg(long, default_value = "30d", value_parser = duration)]
    pub since: Duration,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
