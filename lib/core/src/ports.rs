//! Ports: the small capabilities the use cases need. Adapters implement them — SQLite, the
//! in-process scheduler and the outbox file locally; DynamoDB, EventBridge Scheduler, SNS and SES
//! on AWS; AmoCRM's API for the CRM — and every adapter of a storage port runs the same contract
//! suite (`testing/contract`).

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use uuid::Uuid;

use crate::crm::model::{CreatedDeal, CrmContact, CrmDeal, CrmError, DealUpdate, NewDeal};
use crate::domain::{
    AddressSuppression, CorruptColumn, CrmStatus, Email, EmailFeedback, HoldReason,
    IdempotencyRecord, Lead, LeadId, Notification, PersonKey, Phone, StoredResponse,
    SuppressReason, SuppressedAddress, Tracking, TrackingTouch,
};
use crate::guard::Quota;

/// Storage failed. Callers treat it as retryable (HTTP 503): nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value does not parse; the source names the column.
    #[error("stored data is corrupt")]
    Corrupt(#[from] CorruptColumn),
    /// A value could not be encoded for storage (a bug, not a property of the store).
    #[error("cannot encode a value for storage")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Box::new(e))
    }

    pub fn encode(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Encode(Box::new(e))
    }

    /// `column` holds something that is not what it must be.
    pub fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(CorruptColumn {
            column,
            detail: detail.to_string(),
        })
    }
}

/// Everything one accepted submission writes, committed atomically or not at all.
#[derive(Debug, Clone)]
pub struct IntakeWrite {
    pub lead: Lead,
    pub notifications: Vec<Notification>,
    pub tracking: Vec<TrackingTouch>,
    pub idempotency: Option<IdempotencyRecord>,
    /// Idempotency records that expired before this instant are treated as absent.
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Lead, notifications, tracking and idempotency record are durable.
    Committed,
    /// The idempotency key was already used with the same payload: nothing new was written.
    Replay(StoredResponse),
    /// The idempotency key was already used with a different payload: nothing was written.
    KeyReused,
    /// Another request with the same key is being committed right now: nothing was written.
    InFlight,
}

/// Lead storage: the atomic intake write, and reads of what it wrote.
#[async_trait]
pub trait LeadStore: Send + Sync {
    async fn commit_intake(&self, write: IntakeWrite) -> Result<IntakeOutcome, StoreError>;
    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError>;
    async fn get_tracking(&self, key: &PersonKey) -> Result<Option<Tracking>, StoreError>;
}

/// Reads for operators and tests, kept apart from the pipeline's ports because on DynamoDB
/// they read eventually consistent indexes. One use case reads them too, knowing it: the
/// dispatcher's one-follow-up-per-person check (`Dispatcher::with_supersede`), where a lead
/// the index has not shown yet only means both follow-ups go, never neither.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// A lead's notification rows.
    async fn notifications_for_lead(&self, id: LeadId) -> Result<Vec<Notification>, StoreError>;

    /// Every lead created in `[from, to)`, oldest first, each with its notification rows
    /// (report, export). On DynamoDB a query per UTC day of the range, never a scan.
    async fn leads_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Lead, Vec<Notification>)>, StoreError>;

    /// One person's leads by phone or email, newest first (`lead show --phone`).
    async fn leads_of(&self, key: &PersonKey) -> Result<Vec<Lead>, StoreError>;
}

/// The addresses no email goes to (`address_suppressed`), kept by their `Email::match_key`.
#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// Lists `email`; `false` when it was listed already (the first entry stays as it was).
    async fn suppress_address(
        &self,
        email: &Email,
        reason: AddressSuppression,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The entry for `email`, if it is listed (read strongly: an unsubscribe just answered is
    /// seen by the next send).
    async fn address_suppression(
        &self,
        email: &Email,
    ) -> Result<Option<SuppressedAddress>, StoreError>;
}

/// Claims on notification rows. A claim moves a row `pending → sending` (or re-takes a
/// `sending` row whose lease ran out) and increments `attempts`; the claimed row's `attempts` is
/// the claim token every later transition must present, so a stale holder cannot settle a row
/// somebody else has re-claimed.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Claims up to `limit` rows due by `due_by` (pending with `send_at <= due_by`, or sending
    /// with an expired lease), oldest first.
    async fn claim_due(
        &self,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Same as [`claim_due`](Self::claim_due), restricted to one lead's rows.
    async fn claim_for_lead(
        &self,
        lead_id: LeadId,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Vec<Notification>, StoreError>;

    /// `sending → sent`. `false` if the claim was lost (the row was re-claimed or settled).
    async fn mark_sent(
        &self,
        id: Uuid,
        attempt: u32,
        provider_message_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// `sending → pending` with `send_at = retry_at`, after a transient failure.
    async fn release(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// `sending → failed` with the reason: a permanent error, or attempts exhausted.
    async fn mark_failed(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// `sending → suppressed` with the reason: a guard withheld it, for good.
    async fn suppress(
        &self,
        id: Uuid,
        attempt: u32,
        reason: SuppressReason,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// `sending → pending`, due again at `until`, with the reason it waits. The claim is handed
    /// back uncounted (`attempts` back to what it was before it), so a long hold never uses up
    /// the row's attempts.
    async fn hold(
        &self,
        id: Uuid,
        attempt: u32,
        until: Timestamp,
        reason: HoldReason,
    ) -> Result<bool, StoreError>;

    /// Records what the provider reported of a sent email on its row: `delivered_at`, or the
    /// feedback and its reason (the latest feedback wins; the same event twice writes the same).
    /// Whatever the row's status: events arrive after `sent`. `false`: no such row.
    async fn record_email_event(
        &self,
        id: Uuid,
        event: &EmailEventRecord,
    ) -> Result<bool, StoreError>;

    /// The earliest instant at which some row becomes claimable, if any.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Hands every `sending` row back to `pending`. Only for a single-process runtime at start,
    /// when no other holder can exist (landing-local holds an exclusive lock on its data dir).
    async fn release_all_claims(&self) -> Result<u64, StoreError>;
}

/// What a provider's event says of a sent email, as a notification row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailEventRecord {
    Delivered { at: Timestamp },
    Feedback { kind: EmailFeedback, detail: String },
}

/// Durable counters of the SMS guard (SQLite table `sms_quota`; DynamoDB conditional counter
/// items with a TTL).
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Takes one unit of every quota in the window `now` falls in — all of them or none, atomically
    /// (two takers racing for a last unit: exactly one gets it). Answers the indexes (into
    /// `quotas`) of those that had no unit left; empty means every unit was taken. When some
    /// refuse, at least the first of them (in `quotas` order) is among the answer.
    async fn take(&self, quotas: &[Quota], now: Timestamp) -> Result<Vec<usize>, StoreError>;
}

/// What an operator's release of a quarantined lead changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The lead is an ordinary lead now; this many notifications are due at once.
    Released {
        notifications: u64,
    },
    /// It was not quarantined (already released, or never held back): nothing changed.
    NotQuarantined,
    NotFound,
}

/// Which failed notifications to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// The failed rows of one lead.
    Lead(LeadId),
    /// Every failed row of the leads created since then.
    FailedSince(Timestamp),
}

/// Operator actions on stored leads.
#[async_trait]
pub trait LeadOps: Send + Sync {
    /// `failed → pending`, due at `now`, as fresh rows (attempts 0, the error cleared, so the SMS
    /// guard counts the new attempt); returns how many.
    async fn resend_failed(&self, which: Resend, now: Timestamp) -> Result<u64, StoreError>;

    /// A quarantined lead goes the normal way: the quarantine cleared, its CRM status `crm`
    /// (`pending`, or `disabled` without a CRM), and its notifications suppressed as
    /// `quarantined` due at `now` as fresh pending rows. Atomic; a second release changes nothing.
    async fn release_quarantined(
        &self,
        id: LeadId,
        crm: CrmStatus,
        now: Timestamp,
    ) -> Result<Released, StoreError>;
}

/// Arranges for a lead's notifications to be attempted at `send_at` (an EventBridge Scheduler
/// one-shot on AWS; a wake-up of the in-process worker locally). Failing to schedule loses
/// nothing: the rows are committed and a sweep finds them.
#[async_trait]
pub trait NotificationScheduler: Send + Sync {
    async fn schedule(
        &self,
        lead_id: LeadId,
        send_at: Timestamp,
        correlation_id: &str,
    ) -> Result<(), SchedulerError>;
}

#[derive(Debug, thiserror::Error)]
#[error("scheduling failed")]
pub struct SchedulerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Failure of a message transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (throttling, outage, timeout).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (invalid number, rejected address).
    #[error("permanent: {0}")]
    Permanent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub notification_id: Uuid,
    pub lead_id: LeadId,
    pub source_campaign: String,
    pub correlation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub meta: MessageMeta,
    pub to: Phone,
    pub body: String,
    /// The parts it is sent and billed as (`notify::sms_segments`).
    pub segments: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub meta: MessageMeta,
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-click unsubscribe URL: the transport sends it as `List-Unsubscribe: <…>` with
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). Built by
    /// `UnsubscribeLinks`, so it holds no CR/LF, space, `<`, `>` or comma.
    pub list_unsubscribe: Option<String>,
}

impl EmailMessage {
    /// The headers the message carries beyond From/To/Subject, as name and value.
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match &self.list_unsubscribe {
            Some(url) if !url.chars().any(|c| c.is_control() || "<>, ".contains(c)) => vec![
                ("List-Unsubscribe", format!("<{url}>")),
                (
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Returns the provider's message id.
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError>;
}

#[async_trait]
pub trait EmailSender: Send + Sync {
    /// Returns the provider's message id.
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError>;
}

/// An OAuth token pair of the CRM integration. The refresh token is single-use: whoever
/// refreshes must persist the new pair before using it.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: secrecy::SecretString,
    pub refresh_token: secrecy::SecretString,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where the CRM token pair lives between processes (SQLite locally, a DynamoDB item on AWS).
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self) -> Result<Option<TokenPair>, StoreError>;

    /// Stores `new` only if the stored refresh token is still `expected_refresh` (`None`: no pair
    /// stored yet), atomically. `false` means someone else replaced it first.
    async fn replace(
        &self,
        expected_refresh: Option<&str>,
        new: &TokenPair,
    ) -> Result<bool, StoreError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock tests move by hand (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::Mutex<Timestamp>>);

#[cfg(any(test, feature = "test-support"))]
impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(std::sync::Arc::new(std::sync::Mutex::new(at)))
    }

    pub fn advance(&self, d: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t = crate::time::add(*t, d);
        }
    }

    pub fn set(&self, at: Timestamp) {
        if let Ok(mut t) = self.0.lock() {
            *t = at;
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|p| *p.into_inner())
    }
}

/// The CRM operations the sync needs (AmoCRM's REST API in production, a fake in tests).
#[async_trait]
pub trait CrmApi: Send + Sync {
    /// Fuzzy full-text contact search; callers re-check every hit.
    async fn search_contacts(
        &self,
        query: &str,
        correlation_id: &str,
    ) -> Result<Vec<CrmContact>, CrmError>;
    async fn deals_by_id(
        &self,
        ids: &[i64],
        correlation_id: &str,
    ) -> Result<Vec<CrmDeal>, CrmError>;
    /// Creates the deals (with their new or existing contact); answers in the same order.
    async fn create_deals(
        &self,
        deals: &[NewDeal],
        correlation_id: &str,
    ) -> Result<Vec<CreatedDeal>, CrmError>;
    async fn update_deals(
        &self,
        updates: &[DealUpdate],
        correlation_id: &str,
    ) -> Result<(), CrmError>;
    async fn add_notes(
        &self,
        notes: &[(i64, String)],
        correlation_id: &str,
    ) -> Result<(), CrmError>;
}

/// Which leads to hand back to the CRM sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    Lead(LeadId),
    AllFailed,
}

/// The CRM columns of `landing_leads` and `unified_lead_tracking`.
#[async_trait]
pub trait CrmStateStore: Send + Sync {
    /// Leads with `crm_status = pending`, oldest first.
    async fn pending_crm(&self, limit: usize) -> Result<Vec<LeadId>, StoreError>;
    /// The deal exists in the CRM: remember it at once, so no retry ever creates it again.
    async fn record_crm_deal(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
    ) -> Result<(), StoreError>;
    /// `synced`, with the ids on the lead and on the tracking rows of `keys`, in one transaction.
    async fn mark_crm_synced(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
        keys: &[PersonKey],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Counts an attempt and keeps the reason; `permanent` (or too many attempts, decided by the
    /// caller) marks the lead `failed`. Returns the attempts so far.
    async fn record_crm_failure(
        &self,
        id: LeadId,
        error: &str,
        permanent: bool,
    ) -> Result<u32, StoreError>;
    /// `failed` (or one given lead) → `pending` again; returns how many.
    async fn requeue_crm(&self, which: Requeue) -> Result<u64, StoreError>;
}
