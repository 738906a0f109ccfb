//! Sending the ten-minute follow-ups. One code path — claim, render, send, settle — serves the
//! local worker, the AWS notify function (scheduler delivery) and the AWS sweeper.

mod events;
mod render;
mod segments;
mod window;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::{
    Email, HoldReason, Lead, LeadId, Notification, NotificationStatus, Recipient, SuppressReason,
};
use crate::guard::{self, Decision, Limit, Plan, Quota, SmsGuardConfig};
use crate::ports::{
    Clock, EmailMessage, EmailSender, Inspect, LeadStore, MessageMeta, NotificationStore,
    QuotaStore, SendError, SmsMessage, SmsSender, StoreError, SuppressionList,
};
use crate::time::Backoff;
use crate::unsubscribe::UnsubscribeLinks;

pub use events::{EmailEvent, EmailEventKind, EmailEvents, Recorded};
pub use render::{RenderedEmail, RenderedSms, TemplateError, Templates, header_safe};
pub use segments::sms_segments;
pub use window::{BadWindow, DailyWindow, SendWindows, Window};
pub use worker::{LocalScheduler, Worker, WorkerConfig};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// How long a claim keeps others away; a holder that dies is replaced after it.
    pub lease: Duration,
    /// Claims per row before it is given up as `failed`.
    pub max_attempts: u32,
    /// The wait before a transiently failed row is due again.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::new(Duration::from_secs(30), Duration::from_secs(30 * 60)),
        }
    }
}

/// What one dispatch run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Sent, but the claim had been taken over meanwhile (lease too short for the provider).
    pub lost_claims: usize,
    /// Could not be settled because storage failed; the lease will hand them out again.
    pub unsettled: usize,
    /// Withheld for good by a guard (`suppressed`, with the reason on the row).
    pub suppressed: usize,
    /// Pending again until the SMS budget's window frees.
    pub held: usize,
}

impl DispatchReport {
    /// One log line with every count as its own numeric field.
    pub fn log(&self, message: &str) {
        tracing::info!(
            claimed = self.claimed,
            sent = self.sent,
            retried = self.retried,
            failed = self.failed,
            lost_claims = self.lost_claims,
            unsettled = self.unsettled,
            suppressed = self.suppressed,
            held = self.held,
            "{message}"
        );
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Retried => self.retried += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::LostClaim => self.lost_claims += 1,
            Outcome::Unsettled => self.unsettled += 1,
            Outcome::Suppressed => self.suppressed += 1,
            Outcome::Held => self.held += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retried,
    Failed,
    LostClaim,
    Unsettled,
    Suppressed,
    Held,
}

/// The SMS guard as the dispatcher applies it: the rules and the counters they are kept in.
#[derive(Clone)]
pub struct SmsGuard {
    config: SmsGuardConfig,
    quotas: Arc<dyn QuotaStore>,
}

impl SmsGuard {
    pub fn new(config: SmsGuardConfig, quotas: Arc<dyn QuotaStore>) -> Self {
        SmsGuard { config, quotas }
    }

    pub fn config(&self) -> &SmsGuardConfig {
        &self.config
    }
}

/// Where SMS and email go.
#[derive(Clone)]
pub struct Transports {
    pub sms: Arc<dyn SmsSender>,
    pub email: Arc<dyn EmailSender>,
}

pub struct Dispatcher {
    notifications: Arc<dyn NotificationStore>,
    leads: Arc<dyn LeadStore>,
    sms: Arc<dyn SmsSender>,
    email: Arc<dyn EmailSender>,
    templates: Arc<Templates>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    guard: SmsGuard,
    windows: SendWindows,
    people: Option<Arc<dyn Inspect>>,
    suppression: Option<Arc<dyn SuppressionList>>,
    unsubscribe: Option<UnsubscribeLinks>,
    concurrency: usize,
}

impl Dispatcher {
    pub fn new(
        notifications: Arc<dyn NotificationStore>,
        leads: Arc<dyn LeadStore>,
        transports: Transports,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        guard: SmsGuard,
    ) -> Self {
        Dispatcher {
            notifications,
            leads,
            sms: transports.sms,
            email: transports.email,
            templates,
            clock,
            policy,
            guard,
            windows: SendWindows::always(),
            people: None,
            suppression: None,
            unsubscribe: None,
            concurrency: 16,
        }
    }

    /// When each channel may send (`NOTIFY_*_WINDOW`); without it, always.
    pub fn with_windows(mut self, windows: SendWindows) -> Self {
        self.windows = windows;
        self
    }

    /// One follow-up per person at a time: before a row is sent, the person's other leads are
    /// read through `people` and a row another form supersedes ends `suppressed`
    /// (`superseded`). Without it, every lead gets its own.
    pub fn with_supersede(mut self, people: Arc<dyn Inspect>) -> Self {
        self.people = Some(people);
        self
    }

    /// Emails to an address on `list` end `suppressed` (`address_suppressed`).
    pub fn with_suppression_list(mut self, list: Arc<dyn SuppressionList>) -> Self {
        self.suppression = Some(list);
        self
    }

    /// Every email carries its lead's one-click unsubscribe link: the `List-Unsubscribe`
    /// headers (RFC 8058) and a line at the foot of both parts.
    pub fn with_unsubscribe_links(mut self, links: UnsubscribeLinks) -> Self {
        self.unsubscribe = Some(links);
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Claims and sends up to `limit` rows that are due now (local worker, sweeper).
    pub async fn dispatch_due(&self, limit: usize) -> Result<DispatchReport, StoreError> {
        let now = self.clock.now();
        let rows = self
            .notifications
            .claim_due(now, now, self.policy.lease, limit)
            .await?;
        Ok(self.deliver_all(rows).await)
    }

    /// Claims and sends one lead's rows (scheduler delivery). `early` tolerates a trigger that
    /// fires slightly before `send_at`; a duplicate delivery finds nothing left to claim.
    pub async fn dispatch_lead(
        &self,
        lead_id: LeadId,
        early: Duration,
    ) -> Result<DispatchReport, StoreError> {
        let now = self.clock.now();
        let due_by = crate::time::add(now, early);
        let rows = self
            .notifications
            .claim_for_lead(lead_id, due_by, now, self.policy.lease)
            .await?;
        Ok(self.deliver_all(rows).await)
    }

    async fn deliver_all(&self, rows: Vec<Notification>) -> DispatchReport {
        let mut report = DispatchReport {
            claimed: rows.len(),
            ..DispatchReport::default()
        };
        // A lead's rows go together, so the person's other leads are read once per lead.
        let mut groups: Vec<Vec<Notification>> = Vec::new();
        for n in rows {
            match groups
                .iter_mut()
                .find(|g| g.first().is_some_and(|f| f.lead_id == n.lead_id))
            {
                Some(g) => g.push(n),
                None => groups.push(vec![n]),
            }
        }
        let outcomes: Vec<Vec<Outcome>> = futures_util::stream::iter(groups)
            .map(|g| self.deliver_group(g))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for o in outcomes.into_iter().flatten() {
            report.add(o);
        }
        report
    }

    async fn deliver_group(&self, rows: Vec<Notification>) -> Vec<Outcome> {
        let Some(lead_id) = rows.first().map(|n| n.lead_id) else {
            return Vec::new();
        };
        let lead = match self.leads.get_lead(lead_id).await {
            Ok(Some(lead)) => lead,
            Ok(None) => {
                return futures_util::future::join_all(
                    rows.iter().map(|n| self.fail(n, "lead not found")),
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(lead_id = %lead_id, error = %crate::error_chain(&e), "cannot load lead; will retry after the lease");
                return vec![Outcome::Unsettled; rows.len()];
            }
        };
        let rivals = self.rivals(&lead).await;
        futures_util::future::join_all(rows.into_iter().map(|n| self.deliver(n, &lead, &rivals)))
            .await
    }

    async fn deliver(
        &self,
        n: Notification,
        lead: &Lead,
        rivals: &Result<Rivals, StoreError>,
    ) -> Outcome {
        let span = tracing::info_span!("notify", correlation_id = %lead.correlation_id, lead_id = %lead.id, notification_id = %n.id, channel = n.channel().as_str(), attempt = n.attempts);
        // Whoever hands the row out (the schedule, a retry, a release, the sweeper, a recovered
        // claim), outside its window it waits for the window: never a text at night. Before the
        // guard, so a held row is not charged to the SMS counters.
        let now = self.clock.now();
        let allowed = self.windows.next_allowed(n.channel(), now);
        if allowed > now {
            return self.hold(&n, allowed, HoldReason::Window, &span).await;
        }
        match rivals {
            Ok(rivals) if superseded(&n, lead, rivals) => {
                return self.suppress(&n, SuppressReason::Superseded, &span).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(parent: &span, error = %crate::error_chain(e), "cannot read the person's other leads; will retry after the lease");
                return Outcome::Unsettled;
            }
        }
        if let Some(outcome) = self.screen(&n, lead, &span).await {
            return outcome;
        }
        let outcome = match self.send(&n, lead).await {
            Ok(provider_id) => match self
                .notifications
                .mark_sent(n.id, n.attempts, &provider_id, self.clock.now())
                .await
            {
                Ok(true) => Outcome::Sent,
                Ok(false) => {
                    tracing::warn!(parent: &span, "sent, but the claim had expired and was taken over; raise the lease");
                    Outcome::LostClaim
                }
                Err(e) => {
                    tracing::error!(parent: &span, error = %crate::error_chain(&e), "sent, but could not record it; it may be sent again after the lease");
                    Outcome::Unsettled
                }
            },
            Err(SendError::Permanent(reason)) => {
                self.fail(&n, &format!("permanent: {reason}")).await
            }
            Err(SendError::Transient(reason)) if n.attempts >= self.policy.max_attempts => {
                self.fail(
                    &n,
                    &format!("gave up after {} attempts: {reason}", n.attempts),
                )
                .await
            }
            Err(SendError::Transient(reason)) => {
                let retry_at =
                    crate::time::add(self.clock.now(), self.policy.backoff.delay(n.attempts));
                match self
                    .notifications
                    .release(n.id, n.attempts, &reason, retry_at)
                    .await
                {
                    Ok(true) => {
                        tracing::warn!(parent: &span, reason = %reason, retry_at = %retry_at, "transient send failure; retrying later");
                        Outcome::Retried
                    }
                    Ok(false) => {
                        tracing::warn!(parent: &span, reason = %reason, "transient send failure, and the claim had been taken over meanwhile");
                        Outcome::LostClaim
                    }
                    Err(e) => {
                        tracing::error!(parent: &span, error = %crate::error_chain(&e), "could not release claim; the lease will");
                        Outcome::Unsettled
                    }
                }
            }
        };
        if outcome == Outcome::Sent {
            // An SMS's parts are what the school pays for, so each sent one says how many.
            let segments = matches!(n.recipient, Recipient::Sms(_))
                .then(|| self.templates.sms(lead).ok())
                .flatten()
                .map(|r| sms_segments(&r.body));
            tracing::info!(parent: &span, event = "notification_sent", channel = n.channel().as_str(), to = %n.recipient.masked(), segments, "notification sent");
        }
        outcome
    }

    /// The rows of the person's other leads that beat `lead` (none without `with_supersede`).
    async fn rivals(&self, lead: &Lead) -> Result<Rivals, StoreError> {
        let Some(people) = &self.people else {
            return Ok(Vec::new());
        };
        let mut seen = std::collections::BTreeSet::from([lead.id]);
        let mut found = Vec::new();
        for key in lead.person_keys() {
            for other in people.leads_of(&key).await? {
                if seen.insert(other.id) && beats(&other, lead) {
                    found.push(people.notifications_for_lead(other.id).await?);
                }
            }
        }
        Ok(found)
    }

    /// Applies the guard; `None` means go ahead and send. Only an SMS costs money, so only an
    /// SMS is ever limited; an email is withheld for a quarantined lead and for an address on
    /// the suppression list.
    async fn screen(&self, n: &Notification, lead: &Lead, span: &tracing::Span) -> Option<Outcome> {
        let decision = match &n.recipient {
            Recipient::Email(_) if lead.quarantine.is_some() => {
                Decision::Suppress(SuppressReason::Quarantined)
            }
            Recipient::Email(to) => match self.listed(to).await {
                Ok(false) => return None,
                Ok(true) => Decision::Suppress(SuppressReason::AddressSuppressed),
                Err(e) => {
                    tracing::warn!(parent: span, error = %crate::error_chain(&e), "cannot read the suppression list; will retry after the lease");
                    return Some(Outcome::Unsettled);
                }
            },
            Recipient::Sms(phone) => match guard::plan(&self.guard.config, lead, phone) {
                Plan::Suppress(reason) => Decision::Suppress(reason),
                // A row with a recorded send error reached the provider on an earlier attempt,
                // which was charged then: a retry of the same SMS is not a new one.
                Plan::Take(take) if take.is_empty() || n.last_error.is_some() => return None,
                Plan::Take(take) => match self.charge(&take, span).await {
                    Some(decision) => decision,
                    // Unreadable counters: never sent unchecked, never dropped.
                    None => return Some(Outcome::Unsettled),
                },
            },
        };
        Some(match decision {
            Decision::Send => return None,
            Decision::Suppress(reason) => self.suppress(n, reason, span).await,
            Decision::Hold { until } => self.hold(n, until, HoldReason::Budget, span).await,
        })
    }

    /// Whether `to` is on the suppression list (never, without one).
    async fn listed(&self, to: &Email) -> Result<bool, StoreError> {
        match &self.suppression {
            Some(list) => Ok(list.address_suppression(to).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Takes the quotas; `None` when the counters cannot be read (the row stays claimed and the
    /// lease hands it out again: never sent unchecked, never dropped).
    async fn charge(&self, take: &[(Limit, Quota)], span: &tracing::Span) -> Option<Decision> {
        let now = self.clock.now();
        let quotas: Vec<Quota> = take.iter().map(|(_, q)| q.clone()).collect();
        let refused = match self.guard.quotas.take(&quotas, now).await {
            Ok(refused) => refused,
            Err(e) => {
                tracing::error!(parent: span, error = %crate::error_chain(&e), "cannot read the SMS counters; will retry after the lease");
                return None;
            }
        };
        let refused: Vec<Limit> = refused
            .iter()
            .filter_map(|i| take.get(*i).map(|(l, _)| *l))
            .collect();
        let decision = guard::decide(take, &refused, now);
        if let (Decision::Hold { until }, Some(budget)) = (&decision, self.guard.config.budget) {
            // One warning per window, however many SMS it holds: the first to trip it wins a
            // one-unit quota of the same window.
            if let Ok(none_refused) = self
                .guard
                .quotas
                .take(&[guard::budget_alarm(budget)], now)
                .await
                && none_refused.is_empty()
            {
                tracing::warn!(parent: span, event = "sms_budget_tripped", budget = %budget, held_until = %until, "SMS budget spent: SMS are held, not dropped, and go out in order when the window ends");
            }
        }
        Some(decision)
    }

    async fn suppress(
        &self,
        n: &Notification,
        reason: SuppressReason,
        span: &tracing::Span,
    ) -> Outcome {
        match self
            .notifications
            .suppress(n.id, n.attempts, reason, self.clock.now())
            .await
        {
            Ok(true) => {
                tracing::info!(parent: span, event = "notification_suppressed", channel = n.channel().as_str(), reason = reason.as_str(), "notification suppressed");
                Outcome::Suppressed
            }
            Ok(false) => Outcome::LostClaim,
            Err(e) => {
                tracing::error!(parent: span, error = %crate::error_chain(&e), "could not mark suppressed; the lease will hand it out again");
                Outcome::Unsettled
            }
        }
    }

    async fn hold(
        &self,
        n: &Notification,
        until: jiff::Timestamp,
        reason: HoldReason,
        span: &tracing::Span,
    ) -> Outcome {
        match self
            .notifications
            .hold(n.id, n.attempts, until, reason)
            .await
        {
            Ok(true) => {
                tracing::info!(parent: span, event = "notification_held", channel = n.channel().as_str(), until = %until, reason = reason.as_str(), "notification held");
                Outcome::Held
            }
            Ok(false) => Outcome::LostClaim,
            Err(e) => {
                tracing::error!(parent: span, error = %crate::error_chain(&e), "could not hold; the lease will hand it out again");
                Outcome::Unsettled
            }
        }
    }

    /// Renders and sends. A template that cannot render is a problem with our own data, not the
    /// provider's: permanent by nature.
    async fn send(&self, n: &Notification, lead: &Lead) -> Result<String, SendError> {
        let meta = MessageMeta {
            notification_id: n.id,
            lead_id: n.lead_id,
            source_campaign: n.source_campaign.as_str().to_owned(),
            correlation_id: lead.correlation_id.clone(),
        };
        let template = |e: minijinja::Error| SendError::Permanent(format!("template: {e}"));
        match &n.recipient {
            Recipient::Sms(to) => {
                let rendered = self.templates.sms(lead).map_err(template)?;
                self.sms
                    .send_sms(&SmsMessage {
                        meta,
                        to: to.clone(),
                        segments: sms_segments(&rendered.body),
                        body: rendered.body,
                    })
                    .await
            }
            Recipient::Email(to) => {
                let unsubscribe = self.unsubscribe.as_ref().map(|l| l.url(lead.id));
                let r = self
                    .templates
                    .email_with_footer(lead, unsubscribe.as_deref())
                    .map_err(template)?;
                self.email
                    .send_email(&EmailMessage {
                        meta,
                        to: to.clone(),
                        subject: r.subject,
                        text: r.text,
                        html: r.html,
                        list_unsubscribe: unsubscribe,
                    })
                    .await
            }
        }
    }

    async fn fail(&self, n: &Notification, reason: &str) -> Outcome {
        match self
            .notifications
            .mark_failed(n.id, n.attempts, reason, self.clock.now())
            .await
        {
            Ok(true) => {
                tracing::warn!(event = "notification_failed", notification_id = %n.id, lead_id = %n.lead_id, channel = n.channel().as_str(), reason, "notification failed");
                Outcome::Failed
            }
            Ok(false) => {
                tracing::warn!(notification_id = %n.id, lead_id = %n.lead_id, reason, "notification failed, but the claim had been taken over meanwhile");
                Outcome::LostClaim
            }
            Err(e) => {
                tracing::error!(notification_id = %n.id, error = %crate::error_chain(&e), "could not mark failed");
                Outcome::Unsettled
            }
        }
    }
}

/// The rows of the leads of the same person that beat a lead (read once per lead and dispatch).
type Rivals = Vec<Vec<Notification>>;

/// Whether another lead of the same person takes this row's place: it beats this lead (an
/// ExpressCourse form beats a ProfTest one, else the newer form wins) and its row on the same
/// channel is still to go, or went out after this lead arrived (and so already answered it). A
/// follow-up that went before this lead arrived supersedes nothing.
fn superseded(n: &Notification, lead: &Lead, rivals: &Rivals) -> bool {
    rivals.iter().flatten().any(|o| {
        o.channel() == n.channel()
            && match o.status {
                NotificationStatus::Pending | NotificationStatus::Sending => true,
                NotificationStatus::Sent => o.sent_at.is_some_and(|at| at >= lead.created_at),
                _ => false,
            }
    })
}

/// Whether `a`'s follow-up takes the place of `b`'s: ExpressCourse (it carries the payment link)
/// over ProfTest, else the newer form (ties by id, so of two rows exactly one wins).
fn beats(a: &Lead, b: &Lead) -> bool {
    let rank = |l: &Lead| u8::from(l.form == crate::domain::Form::ExpressCourse);
    (rank(a), a.created_at, a.id) > (rank(b), b.created_at, b.id)
}

/// What a scheduler delivers to the notify function for one lead (the EventBridge Scheduler
/// target's `Input`): `{"leadId": "…", "correlationId": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyPayload {
    pub lead_id: LeadId,
    #[serde(default)]
    pub correlation_id: String,
}
