//! The event-driven Lambdas' handlers, written against the core's ports so they are tested on
//! any adapter (SQLite in this crate's tests, DynamoDB/moto in the functions' end-to-end run):
//!
//! - `notify`: an EventBridge Scheduler delivery of one lead's [`NotifyPayload`] → claim and send
//!   that lead's due notifications (a duplicate delivery finds nothing to claim);
//! - `crm-sync`: a DynamoDB stream batch → sync the INSERTed leads, reporting the records to
//!   retry in `batchItemFailures`;
//! - `sweeper`: every five minutes → send whatever notification is overdue (a schedule that was
//!   never created, a claim whose holder died) and re-drive CRM syncs stuck in `pending`;
//! - `email-events`: SES's delivery, bounce, complaint and reject events through SNS → recorded
//!   on the notification rows, hard bounces and complaints onto the suppression list.

pub mod ses;
pub mod wiring;

use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use landing_core::crm::{CrmSync, SyncOutcome};
use landing_core::domain::LeadId;
use landing_core::notify::{DispatchReport, Dispatcher, EmailEvents, NotifyPayload};
use landing_core::ports::{Clock, StoreError};
use serde::Serialize;

/// A scheduler may fire a little before `send_at`; rows due within this window are sent.
pub const EARLY_TOLERANCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Storage failed: the invocation fails so that Lambda retries it.
    #[error("storage unavailable")]
    Store(#[from] StoreError),
}

/// How a failed invocation is reported to Lambda (which then retries it): the error chain,
/// which never carries PII (storage errors name tables and causes, not values).
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "StorageUnavailable".into(),
            error_message: landing_core::error_chain(&e),
        }
    }
}

/// What one `email-events` invocation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEventsReport {
    /// Events recorded (on a row, on the suppression list, or both).
    pub recorded: usize,
    /// Of them, found their notification row.
    pub on_rows: usize,
    /// Addresses newly put on the suppression list.
    pub listed: usize,
    /// Messages that are no event of the subscribed types (logged, not retried).
    pub ignored: usize,
}

/// `email-events`: SNS delivers one message per invocation, at least once; recording is
/// idempotent. A storage failure fails the invocation so that Lambda retries it; a message that
/// is not an event is logged and dropped (retrying it cannot help).
pub async fn email_events(
    svc: &EmailEvents,
    event: SnsEvent,
) -> Result<EmailEventsReport, HandlerError> {
    let mut report = EmailEventsReport::default();
    for record in event.records {
        match ses::parse(&record.sns.message) {
            Ok(e) => {
                let done = svc.record(&e).await?;
                report.recorded += 1;
                report.on_rows += usize::from(done.on_row);
                report.listed += done.listed;
            }
            Err(why) => {
                tracing::warn!(sns_message_id = %record.sns.message_id, reason = %why, "SNS message not recorded");
                report.ignored += 1;
            }
        }
    }
    Ok(report)
}

/// `notify`: sends one lead's notifications. A duplicate delivery claims nothing and sends
/// nothing; rows that failed transiently were released with backoff and the sweeper sends them.
pub async fn notify(
    dispatcher: &Dispatcher,
    payload: NotifyPayload,
) -> Result<DispatchReport, HandlerError> {
    let span = tracing::info_span!("notify", correlation_id = %payload.correlation_id, lead_id = %payload.lead_id);
    let report = dispatcher
        .dispatch_lead(payload.lead_id, EARLY_TOLERANCE)
        .await?;
    span.in_scope(|| report.log("notify delivery handled"));
    Ok(report)
}

/// The lead id of an INSERT record, `None` for any other record (MODIFY, REMOVE) — those are our
/// own status updates and must not trigger a sync.
fn inserted_lead(
    record: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Option<Result<LeadId, String>> {
    if record.event_name != "INSERT" {
        return None;
    }
    let id = match record.change.keys.get("id") {
        Some(serde_dynamo::AttributeValue::S(s)) => s
            .parse::<LeadId>()
            .map_err(|e| format!("bad lead id {s:?}: {e}")),
        _ => Err("record has no string key `id`".to_owned()),
    };
    Some(id)
}

/// `crm-sync`: syncs the leads INSERTed in this stream batch. Records whose lead must be retried
/// are reported in `batchItemFailures` (the event source retries from the first of them); a lead
/// that failed permanently is `failed` with its reason in the table, not retried here.
pub async fn crm_sync(sync: &CrmSync, event: StreamEvent) -> DynamoDbEventResponse {
    let mut ids = Vec::new();
    let mut failures = Vec::new();
    for record in &event.records {
        match inserted_lead(record) {
            None => {}
            Some(Ok(id)) => ids.push((id, record.change.sequence_number.clone())),
            Some(Err(e)) => {
                // Not one of our leads: retrying cannot help, so it is logged and skipped.
                tracing::error!(error = %e, "skipping a stream record that is not a lead");
            }
        }
    }
    let lead_ids: Vec<LeadId> = ids.iter().map(|(id, _)| *id).collect();
    let outcomes = if lead_ids.is_empty() {
        vec![]
    } else {
        sync.sync_batch(&lead_ids).await
    };
    for (id, seq) in &ids {
        let retry = match outcomes.iter().find(|(o, _)| o == id) {
            Some((_, SyncOutcome::Retry(_))) | None => true,
            Some(_) => false,
        };
        if retry {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = seq.clone();
            failures.push(failure);
        }
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub notifications_claimed: usize,
    pub notifications_sent: usize,
    pub crm_redriven: usize,
    pub crm_synced: usize,
}

#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Notification rows claimed per round; rounds repeat while full rounds come back.
    pub batch: usize,
    pub max_rounds: usize,
    /// A lead still `pending` after this long is re-driven by the sweeper. Longer than the
    /// stream's own retry window, so the two never sync one lead at the same time.
    pub crm_stale_after: Duration,
    pub crm_batch: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            batch: 50,
            max_rounds: 20,
            crm_stale_after: Duration::from_secs(15 * 60),
            crm_batch: 25,
        }
    }
}

/// `sweeper`: overdue notifications through the same claim/send path, then stale CRM syncs.
pub async fn sweep(
    dispatcher: &Dispatcher,
    crm: Option<&CrmSync>,
    clock: &dyn Clock,
    config: &SweepConfig,
) -> Result<SweepReport, HandlerError> {
    let mut report = SweepReport::default();
    for _ in 0..config.max_rounds {
        let round = dispatcher.dispatch_due(config.batch).await?;
        report.notifications_claimed += round.claimed;
        report.notifications_sent += round.sent;
        if round.claimed < config.batch {
            break;
        }
    }
    if let Some(sync) = crm {
        let age = jiff::SignedDuration::try_from(config.crm_stale_after).unwrap_or_default();
        let stale_before = clock
            .now()
            .checked_sub(age)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let stale = sync.stale_pending(stale_before, config.crm_batch).await?;
        report.crm_redriven = stale.len();
        if !stale.is_empty() {
            report.crm_synced = sync
                .sync_batch(&stale)
                .await
                .iter()
                .filter(|(_, o)| matches!(o, SyncOutcome::Synced { .. }))
                .count();
        }
    }
    tracing::info!(
        notifications_claimed = report.notifications_claimed,
        notifications_sent = report.notifications_sent,
        crm_redriven = report.crm_redriven,
        crm_synced = report.crm_synced,
        "sweep done"
    );
    Ok(report)
}
