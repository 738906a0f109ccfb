//! The operator verbs, written once over the storage ports and run by both runtimes —
//! `landing-local <verb>` on its SQLite file, `landing-ops <verb>` on the stack's DynamoDB tables
//! (README "Operator commands"). Reads go through [`Inspect`], changes through [`LeadOps`] and
//! [`CrmStateStore`].

pub mod cli;
pub mod export;
pub mod html;
pub mod report;
pub mod timeline;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use landing_core::domain::{CrmStatus, Email, PersonKey, Phone};
use landing_core::ports::{
    Clock, CrmStateStore, Inspect, LeadOps, LeadStore, Released, Resend, StoreError,
};

use crate::cli::{
    CrmCommand, LeadCommand, NotifyCommand, OpsCommand, ReportFormat, ShowArgs, ShowFormat,
};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("storage")]
    Store(#[from] StoreError),
    /// What the operator asked for does not exist or does not apply; the text says which.
    #[error("{0}")]
    Refused(String),
    #[error("cannot render the report: {0}")]
    Render(String),
    #[error("cannot write CSV")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Io(String),
}

/// What a verb produced: text for the terminal, or a document for `--out` / standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    /// Where the command wants it written (`--out`); `None`: standard output.
    pub out: Option<std::path::PathBuf>,
}

impl Output {
    fn text(text: String) -> Self {
        Output { text, out: None }
    }
}

/// The ports the verbs need, as each runtime provides them.
pub struct Operator {
    pub leads: Arc<dyn LeadStore>,
    pub inspect: Arc<dyn Inspect>,
    pub ops: Arc<dyn LeadOps>,
    pub crm: Arc<dyn CrmStateStore>,
    pub clock: Arc<dyn Clock>,
    /// For links to deals (`https://{subdomain}.amocrm.ru/leads/detail/{id}`).
    pub amocrm_subdomain: Option<String>,
    /// What a released lead's CRM status becomes (`pending`, or `disabled` without a CRM).
    pub crm_on_release: CrmStatus,
    /// A sentence on when the change takes effect on this runtime, appended to the changes'
    /// answers ("a running landing-local …", "the sweeper …").
    pub picked_up: &'static str,
}

fn since(now: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

impl Operator {
    pub async fn execute(&self, cmd: OpsCommand) -> Result<Output, OpsError> {
        let now = self.clock.now();
        match cmd {
            OpsCommand::Report(args) => {
                let from = since(now, args.since);
                let leads = self.inspect.leads_between(from, now).await?;
                let report = report::build(&leads, args.by, from, now);
                let text = match args.format {
                    ReportFormat::Table => report::table(&report),
                    ReportFormat::Json => report::json(&report) + "\n",
                    ReportFormat::Csv => report::csv(&report)?,
                    ReportFormat::Html => html::render(&report, &leads, now)?,
                };
                Ok(Output {
                    text,
                    out: args.out,
                })
            }
            OpsCommand::Export(args) => {
                let leads = self
                    .inspect
                    .leads_between(since(now, args.since), now)
                    .await?;
                Ok(Output {
                    text: export::csv(&leads)?,
                    out: args.out,
                })
            }
            OpsCommand::Lead(LeadCommand::Show(args)) => self.show(args).await.map(Output::text),
            OpsCommand::Lead(LeadCommand::Release { lead }) => {
                match self
                    .ops
                    .release_quarantined(lead, self.crm_on_release, now)
                    .await?
                {
                    Released::Released { notifications } => Ok(Output::text(format!(
                        "lead {lead} released: {notifications} notification(s) due now, crm_status={}; {}\n",
                        self.crm_on_release.as_str(),
                        self.picked_up
                    ))),
                    Released::NotQuarantined => Err(OpsError::Refused(format!(
                        "lead {lead} is not quarantined; nothing changed"
                    ))),
                    Released::NotFound => Err(OpsError::Refused(format!("no lead {lead}"))),
                }
            }
            OpsCommand::Notify(NotifyCommand::Resend(args)) => {
                let which = match args.lead {
                    Some(id) => Resend::Lead(id),
                    None => Resend::FailedSince(since(now, args.since)),
                };
                let n = self.ops.resend_failed(which, now).await?;
                Ok(Output::text(format!(
                    "{n} failed notification(s) due again now; {}\n",
                    self.picked_up
                )))
            }
            OpsCommand::Crm(CrmCommand::Resync(args)) => {
                let n = self.crm.requeue_crm(args.which()).await?;
                Ok(Output::text(format!(
                    "{n} lead(s) set back to crm_status=pending; {}\n",
                    self.picked_up
                )))
            }
        }
    }

    async fn show(&self, args: ShowArgs) -> Result<String, OpsError> {
        let leads = match (&args.lead, &args.phone, &args.email) {
            (Some(id), _, _) => match self.leads.get_lead(*id).await? {
                Some(l) => vec![l],
                None => return Err(OpsError::Refused(format!("no lead {id}"))),
            },
            (_, Some(p), _) => {
                let phone = Phone::parse(p)
                    .map_err(|e| OpsError::Refused(format!("--phone {p:?}: {e}")))?;
                self.inspect.leads_of(&PersonKey::phone(&phone)).await?
            }
            (_, _, Some(e)) => {
                let email = Email::parse(e)
                    .map_err(|err| OpsError::Refused(format!("--email {e:?}: {err}")))?;
                self.inspect.leads_of(&PersonKey::email(&email)).await?
            }
            _ => return Err(OpsError::Refused("name a lead, --phone or --email".into())),
        };
        if leads.is_empty() {
            return Err(OpsError::Refused("no lead of that person".into()));
        }
        let sub = self.amocrm_subdomain.as_deref();
        let mut texts = Vec::new();
        let mut jsons = Vec::new();
        for lead in &leads {
            let rows = self.inspect.notifications_for_lead(lead.id).await?;
            match args.format {
                ShowFormat::Text => texts.push(timeline::text(lead, &rows, sub)),
                ShowFormat::Json => jsons.push(
                    serde_json::to_value(timeline::json(lead, &rows, sub))
                        .map_err(|e| OpsError::Render(e.to_string()))?,
                ),
            }
        }
        Ok(match args.format {
            ShowFormat::Text => texts.join("\n"),
            ShowFormat::Json => {
                serde_json::to_string_pretty(&jsons).map_err(|e| OpsError::Render(e.to_string()))?
                    + "\n"
            }
        })
    }
}
