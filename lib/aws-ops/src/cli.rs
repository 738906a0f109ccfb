//! `landing-ops`'s command line: the verbs of `landing-operations`, plus `smoke`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use landing_operations::cli::OpsCommand;

/// The operator command of the landing pipeline's AWS stack: the same verbs as landing-local,
/// on the stack's DynamoDB tables, with AWS's default credentials.
///
/// The tables are the outputs of the CloudFormation stack named by --stack (or LANDING_STACK);
/// without one, LEADS_TABLE, NOTIFICATIONS_TABLE, TRACKING_TABLE, IDEMPOTENCY_TABLE,
/// TOKENS_TABLE, QUOTAS_TABLE, SUPPRESSION_TABLE and SCHEDULE_GROUP name them.
#[derive(Debug, Parser)]
#[command(name = "landing-ops", version, propagate_version = true)]
pub struct Cli {
    /// The stack whose outputs name the tables (e.g. landing-prod)
    #[arg(long, env = "LANDING_STACK", global = true)]
    pub stack: Option<String>,
    #[command(subcommand)]
    pub command: OpsCli,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum OpsCli {
    #[command(flatten)]
    Ops(OpsCommand),
    /// After a deploy: one lead per form through the API, then its rows, its schedule, its SMS
    /// and email sent, its deal in AmoCRM — each step checked and reported.
    Smoke(SmokeArgs),
}

fn duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("not a duration like 20m ({e})"))
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SmokeArgs {
    /// The API's base URL (the stack's ApiUrl or PagesUrl origin)
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// Where the SMS goes: your own phone (in the SNS sandbox, a verified one)
    #[arg(long, default_value = "+77001234567")]
    pub phone: String,
    /// Where the email goes: your own address (in the SES sandbox, a verified one)
    #[arg(long, default_value = "smoke@example.kz")]
    pub email: String,
    /// An allowed Origin to send, as the pages would
    #[arg(long)]
    pub origin: Option<String>,
    /// How long to wait for the follow-ups and the deals (NotifyDelay + a sweep)
    #[arg(long, default_value = "20m", value_parser = duration)]
    pub timeout: Duration,
}
