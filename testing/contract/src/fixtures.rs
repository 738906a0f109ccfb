//! Valid records with unique ids and contacts, fixed instants, and the small helpers the cases
//! share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use landing_core::domain::{
    Contact, CrmState, CrmStatus, Email, Form, IdempotencyRecord, Lead, LeadId, Notification,
    NotificationStatus, PaymentMethod, PersonKey, PersonName, Phone, QuarantineReason,
    SourceCampaign, StoredResponse, SuppressReason, TrackingTouch, Utm,
};
use landing_core::ports::{IntakeOutcome, IntakeWrite, StoreError};
use landing_core::time;
use uuid::Uuid;

use crate::Harness;

/// The default notification delay (docs/architecture.md §5).
pub const NOTIFY_DELAY: Duration = Duration::from_secs(10 * 60);
/// The default claim lease (docs/architecture.md §5).
pub const LEASE: Duration = Duration::from_secs(30);
/// How long an idempotency key is remembered by the fixtures.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// 2026-01-01T00:00:00Z: every case works on explicit instants from here, never the wall clock.
pub fn base() -> Timestamp {
    Timestamp::from_millisecond(1_767_225_600_000).expect("base instant is valid")
}

/// `base() + offset`.
pub fn at(offset: Duration) -> Timestamp {
    time::add(base(), offset)
}

pub fn plus(t: Timestamp, d: Duration) -> Timestamp {
    time::add(t, d)
}

pub fn minus(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).expect("duration fits");
    t.checked_sub(d).expect("instant stays representable")
}

pub const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub const fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

pub const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

/// A number no other call in this process returns, starting at a random point so that two test
/// processes sharing one backing store (a shared emulator) are unlikely to collide either.
fn serial() -> u64 {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    NEXT.get_or_init(|| {
        let random = Uuid::now_v7().as_u128() as u64;
        AtomicU64::new(random % 10_000_000)
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// A valid Kazakh mobile number (`+7777xxxxxxx`) not handed out before in this process.
pub fn unique_phone() -> Phone {
    let n = serial() % 10_000_000;
    let raw = format!("+7777{n:07}");
    Phone::parse(&raw).unwrap_or_else(|e| panic!("fixture phone {raw} does not parse: {e}"))
}

/// A valid email address not handed out before (its local part has upper-case letters, which
/// must survive storage as typed).
pub fn unique_email() -> Email {
    let raw = format!("Lead.{}@Example.KZ", Uuid::now_v7().simple());
    Email::parse(&raw).unwrap_or_else(|e| panic!("fixture email {raw} does not parse: {e}"))
}

/// A fresh idempotency key, not yet scoped to a form.
pub fn unique_key() -> String {
    format!("key-{}", Uuid::now_v7().simple())
}

/// One person as the pipeline knows them: a phone and an email nobody else in the run has.
#[derive(Debug, Clone)]
pub struct Person {
    pub phone: Phone,
    pub email: Email,
}

impl Person {
    pub fn unique() -> Self {
        Person {
            phone: unique_phone(),
            email: unique_email(),
        }
    }

    pub fn phone_key(&self) -> PersonKey {
        PersonKey::phone(&self.phone)
    }

    pub fn email_key(&self) -> PersonKey {
        PersonKey::email(&self.email)
    }
}

/// A valid lead of `person` with both contacts usable and no attribution.
pub fn lead(person: &Person, form: Form, created_at: Timestamp) -> Lead {
    Lead {
        id: LeadId::new(),
        created_at,
        form,
        source_campaign: SourceCampaign::new(form, None),
        name: PersonName::parse("Айгерим Касымова").expect("a valid name"),
        email: Contact::Valid(person.email.clone()),
        phone: Contact::Valid(person.phone.clone()),
        payment_method: match form {
            Form::ExpressCourse => Some(PaymentMethod::Kaspi),
            Form::ProfTest => None,
        },
        metadata: None,
        utm: Utm::default(),
        referrer: None,
        page_url: None,
        warnings: Vec::new(),
        correlation_id: format!("corr-{}", Uuid::now_v7().simple()),
        crm: CrmState::new(CrmStatus::Pending),
        client_ip_hash: None,
        quarantine: None,
    }
}

/// [`intake`] of a lead the honeypot caught: quarantined, with the address hash recorded and
/// both rows suppressed, as intake writes it.
pub fn quarantined_intake(person: &Person, created_at: Timestamp) -> IntakeWrite {
    let mut l = lead(person, Form::ProfTest, created_at);
    l.crm = CrmState::new(CrmStatus::Quarantined);
    l.quarantine = Some(QuarantineReason::Honeypot);
    l.client_ip_hash = Some(format!("{:032x}", Uuid::now_v7().as_u128()));
    let mut w = intake(l);
    for n in &mut w.notifications {
        n.status = NotificationStatus::Suppressed;
        n.suppressed_reason = Some(SuppressReason::Quarantined);
    }
    w
}

/// A lead with only a phone (so exactly one notification row).
pub fn phone_only_lead(created_at: Timestamp) -> Lead {
    let mut l = lead(&Person::unique(), Form::ProfTest, created_at);
    l.email = Contact::Absent;
    l
}

/// The write intake makes for `lead`: one pending row per usable channel at `send_at`, one
/// tracking touch per person key, no idempotency record, `now = lead.created_at`.
pub fn write(lead: Lead, send_at: Timestamp) -> IntakeWrite {
    let notifications = Notification::for_lead(&lead, send_at);
    let tracking = TrackingTouch::for_lead(&lead);
    let now = lead.created_at;
    IntakeWrite {
        lead,
        notifications,
        tracking,
        idempotency: None,
        now,
    }
}

/// [`write`] with notifications due [`NOTIFY_DELAY`] after the lead was created.
pub fn intake(lead: Lead) -> IntakeWrite {
    let send_at = plus(lead.created_at, NOTIFY_DELAY);
    write(lead, send_at)
}

/// The answer intake gives for `lead` (its body names the lead, so replays are recognisable).
pub fn response_for(lead: &Lead) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: serde_json::json!({
            "leadId": lead.id.to_string(),
            "sourceCampaign": lead.source_campaign.as_str(),
        })
        .to_string(),
    }
}

/// Adds the idempotency record of a request with `scoped_key` (e.g. `proftest:K`) and
/// `payload_hash`, created at `w.now` and expiring [`IDEMPOTENCY_TTL`] later.
pub fn keyed(mut w: IntakeWrite, scoped_key: &str, payload_hash: &str) -> IntakeWrite {
    w.idempotency = Some(IdempotencyRecord {
        key: scoped_key.to_owned(),
        payload_hash: payload_hash.to_owned(),
        response: response_for(&w.lead),
        created_at: w.now,
        expires_at: plus(w.now, IDEMPOTENCY_TTL),
    });
    w
}

/// The response stored with `w`'s idempotency record.
pub fn response_of(w: &IntakeWrite) -> StoredResponse {
    w.idempotency
        .as_ref()
        .map(|r| r.response.clone())
        .expect("write has an idempotency record")
}

/// Commits `w`, failing the case on a storage error.
pub async fn commit<H: Harness + ?Sized>(h: &H, w: IntakeWrite) -> IntakeOutcome {
    h.leads()
        .commit_intake(w)
        .await
        .expect("commit_intake failed")
}

/// Commits `w` and insists that it was committed; returns the rows it wrote.
pub async fn commit_ok<H: Harness + ?Sized>(h: &H, w: IntakeWrite) -> Vec<Notification> {
    let rows = sorted(w.notifications.clone());
    let outcome = commit(h, w).await;
    assert_eq!(
        outcome,
        IntakeOutcome::Committed,
        "a fresh write must commit"
    );
    rows
}

/// Commits a phone-only lead whose single notification row is due at `send_at`.
pub async fn commit_row_due_at<H: Harness + ?Sized>(h: &H, send_at: Timestamp) -> Notification {
    let lead = phone_only_lead(minus(send_at, NOTIFY_DELAY));
    let mut rows = commit_ok(h, write(lead, send_at)).await;
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

/// The stored rows of `lead`, sorted by id.
pub async fn rows_of<H: Harness + ?Sized>(h: &H, lead: LeadId) -> Vec<Notification> {
    sorted(
        h.inspect()
            .notifications_for_lead(lead)
            .await
            .expect("notifications_for_lead failed"),
    )
}

/// The stored row `id` of `lead`.
pub async fn row<H: Harness + ?Sized>(h: &H, lead: LeadId, id: Uuid) -> Notification {
    rows_of(h, lead)
        .await
        .into_iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("notification {id} of lead {lead} is not stored"))
}

pub async fn lead_exists<H: Harness + ?Sized>(h: &H, id: LeadId) -> bool {
    h.leads()
        .get_lead(id)
        .await
        .expect("get_lead failed")
        .is_some()
}

/// Rows sorted by id, for order-independent comparison.
pub fn sorted(mut rows: Vec<Notification>) -> Vec<Notification> {
    rows.sort_by_key(|n| n.id);
    rows
}

pub fn ids(rows: &[Notification]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    ids.sort();
    ids
}

/// Commits every write from its own task, all released at the same moment (a barrier), and
/// returns the outcomes in the order of `writes`.
pub async fn commit_all_at_once<H: Harness + ?Sized>(
    h: &H,
    writes: &[IntakeWrite],
) -> Vec<Result<IntakeOutcome, StoreError>> {
    let start = Arc::new(tokio::sync::Barrier::new(writes.len()));
    let tasks: Vec<_> = writes
        .iter()
        .map(|w| {
            let store = h.leads();
            let w = w.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.commit_intake(w).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("commit task panicked"));
    }
    outcomes
}
