//! The claim → send → settle path (shared by the local worker and the AWS notify/sweeper
//! functions) over real SQLite storage, with a scripted transport and a hand-moved clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::domain::{CrmStatus, Form, NotificationStatus};
use landing_core::intake::{IntakeConfig, IntakeService, Submitted};
use landing_core::notify::{Dispatcher, LocalScheduler, RetryPolicy, Templates};
use landing_core::ports::{
    EmailMessage, EmailSender, Inspect, ManualClock, SendError, SmsMessage, SmsSender,
};
use landing_sqlite::SqliteStore;
use serde_json::json;

/// A transport that answers from a script (then succeeds) and records what it was asked to send.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<(), SendError>>>,
    sent: Mutex<Vec<String>>,
}

impl Scripted {
    fn failing(script: Vec<SendError>) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::new(script.into_iter().map(Err).collect()),
            sent: Mutex::default(),
        })
    }

    fn answer(&self, what: String) -> Result<String, SendError> {
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))?;
        let mut sent = self.sent.lock().unwrap();
        sent.push(what);
        Ok(format!("provider-{}", sent.len()))
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl SmsSender for Scripted {
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError> {
        self.answer(format!("sms {} {}", msg.to.as_str(), msg.body))
    }
}

#[async_trait]
impl EmailSender for Scripted {
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError> {
        self.answer(format!("email {} {}", msg.to.as_str(), msg.subject))
    }
}

struct Setup {
    store: Arc<SqliteStore>,
    clock: ManualClock,
    intake: IntakeService,
    dispatcher: Dispatcher,
}

const DELAY: Duration = Duration::from_secs(600);

fn setup(sms: Arc<Scripted>, email: Arc<Scripted>) -> Setup {
    setup_with(
        sms,
        email,
        landing_core::notify::SendWindows::always(),
        Timestamp::from_second(1_800_000_000).unwrap(),
    )
}

/// With one follow-up per person (as both runtimes wire it).
fn setup_people(sms: Arc<Scripted>, email: Arc<Scripted>) -> Setup {
    let mut s = setup(sms, email);
    s.dispatcher = s.dispatcher.with_supersede(s.store.clone());
    s
}

fn setup_with(
    sms: Arc<Scripted>,
    email: Arc<Scripted>,
    windows: landing_core::notify::SendWindows,
    start: Timestamp,
) -> Setup {
    let dir = std::env::temp_dir().join(format!("dispatch-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(landing_sqlite::open(&dir.join("landing.db")).unwrap());
    let clock = ManualClock::new(start);
    let intake = IntakeService::new(
        store.clone(),
        Arc::new(LocalScheduler::new()),
        Arc::new(clock.clone()),
        IntakeConfig {
            notify_delay: DELAY,
            windows: windows.clone(),
            idempotency_ttl: Duration::from_secs(3600),
            initial_crm_status: CrmStatus::Disabled,
            payment_links: Default::default(),
            screening: Default::default(),
            origins: Default::default(),
        },
    );
    let templates = Arc::new(Templates::defaults(BTreeMap::new()).unwrap());
    let policy = RetryPolicy {
        lease: Duration::from_secs(30),
        max_attempts: 3,
        backoff: landing_core::time::Backoff::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
        ),
    };
    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        landing_core::notify::Transports { sms, email },
        templates,
        Arc::new(clock.clone()),
        policy,
        landing_core::notify::SmsGuard::new(
            landing_core::guard::SmsGuardConfig::off(),
            store.clone(),
        ),
    )
    .with_windows(windows);
    Setup {
        store,
        clock,
        intake,
        dispatcher,
    }
}

async fn submit(s: &Setup, phone: &str, email: Option<&str>) -> landing_core::domain::LeadId {
    submit_form(s, Form::ProfTest, phone, email).await
}

async fn submit_form(
    s: &Setup,
    form: Form,
    phone: &str,
    email: Option<&str>,
) -> landing_core::domain::LeadId {
    let mut body = json!({"name": "Айгерим Касымова", "phone": phone});
    if form == Form::ExpressCourse {
        body["paymentMethod"] = json!("kaspi");
    }
    if let Some(e) = email {
        body["email"] = json!(e);
    }
    let serde_json::Value::Object(fields) = body else {
        unreachable!()
    };
    match s
        .intake
        .submit(form, &fields, None, "corr", None)
        .await
        .unwrap()
    {
        Submitted::Created { lead_id, .. } => lead_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nothing_is_sent_before_the_delay_and_everything_once_after_it() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let s = setup(sms.clone(), email.clone());
    let lead = submit(&s, "+77011112233", Some("a@mail.kz")).await;

    s.clock.advance(DELAY - Duration::from_secs(1));
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().claimed, 0);

    s.clock.advance(Duration::from_secs(1));
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.claimed, report.sent), (2, 2));
    assert_eq!(sms.sent(), vec!["sms +77011112233 Айгерим, спасибо, что прошли профтест! Подробности отправили на почту.".to_owned()]);
    assert_eq!(
        email.sent(),
        vec!["email a@mail.kz Айгерим, результаты профтеста".to_owned()]
    );

    // A duplicate scheduler delivery and a later sweep find nothing to do.
    assert_eq!(
        s.dispatcher
            .dispatch_lead(lead, Duration::ZERO)
            .await
            .unwrap()
            .claimed,
        0
    );
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().claimed, 0);
    let rows = s.store.notifications_for_lead(lead).await.unwrap();
    assert!(rows.iter().all(|n| n.status == NotificationStatus::Sent
        && n.provider_message_id.is_some()
        && n.sent_at.is_some()));
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff_then_sent() {
    let sms = Scripted::failing(vec![SendError::Transient("throttled".into())]);
    let s = setup(sms.clone(), Arc::new(Scripted::default()));
    let lead = submit(&s, "+77011112234", None).await;
    s.clock.advance(DELAY);

    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1));
    let row = &s.store.notifications_for_lead(lead).await.unwrap()[0];
    assert_eq!(
        (row.status, row.attempts, row.last_error.as_deref()),
        (NotificationStatus::Pending, 1, Some("throttled"))
    );

    // Backoff of the first attempt is 60 s: not before, then yes.
    s.clock.advance(Duration::from_secs(59));
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().claimed, 0);
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 1);
    assert_eq!(sms.sent().len(), 1);
    let row = &s.store.notifications_for_lead(lead).await.unwrap()[0];
    assert_eq!((row.status, row.attempts), (NotificationStatus::Sent, 2));
}

#[tokio::test]
async fn transient_failures_past_max_attempts_end_failed_with_the_reason() {
    let outage = || SendError::Transient("SNS down".into());
    let sms = Scripted::failing(vec![outage(), outage(), outage(), outage()]);
    let s = setup(sms.clone(), Arc::new(Scripted::default()));
    let lead = submit(&s, "+77011112235", None).await;
    s.clock.advance(DELAY);
    for _ in 0..3 {
        s.dispatcher.dispatch_due(10).await.unwrap();
        s.clock.advance(Duration::from_secs(600));
    }
    let row = &s.store.notifications_for_lead(lead).await.unwrap()[0];
    assert_eq!(row.status, NotificationStatus::Failed);
    assert_eq!(row.attempts, 3);
    assert_eq!(
        row.last_error.as_deref(),
        Some("gave up after 3 attempts: SNS down")
    );
    assert!(sms.sent().is_empty());
    s.clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        s.dispatcher.dispatch_due(10).await.unwrap().claimed,
        0,
        "failed is final"
    );
}

#[tokio::test]
async fn a_permanent_failure_fails_at_once_and_the_other_channel_still_goes() {
    let email = Scripted::failing(vec![SendError::Permanent("address rejected".into())]);
    let sms = Arc::new(Scripted::default());
    let s = setup(sms.clone(), email.clone());
    let lead = submit(&s, "+77011112236", Some("bounce@mail.kz")).await;
    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.sent, report.failed), (1, 1));
    let rows = s.store.notifications_for_lead(lead).await.unwrap();
    let failed = rows
        .iter()
        .find(|n| n.status == NotificationStatus::Failed)
        .unwrap();
    assert_eq!(
        failed.last_error.as_deref(),
        Some("permanent: address rejected")
    );
    assert_eq!(failed.attempts, 1);
    assert_eq!(sms.sent().len(), 1);
}

#[tokio::test]
async fn scheduler_delivery_sends_only_its_own_lead_and_tolerates_firing_early() {
    let sms = Arc::new(Scripted::default());
    let s = setup(sms.clone(), Arc::new(Scripted::default()));
    let a = submit(&s, "+77011112237", None).await;
    let _b = submit(&s, "+77011112238", None).await;
    s.clock.advance(DELAY - Duration::from_secs(20));
    assert_eq!(
        s.dispatcher
            .dispatch_lead(a, Duration::from_secs(10))
            .await
            .unwrap()
            .claimed,
        0
    );
    assert_eq!(
        s.dispatcher
            .dispatch_lead(a, Duration::from_secs(60))
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(sms.sent(), vec!["sms +77011112237 Айгерим, спасибо, что прошли профтест! Подробности отправили на почту.".to_owned()]);
}

#[tokio::test]
async fn concurrent_dispatchers_send_each_notification_once() {
    let sms = Arc::new(Scripted::default());
    let email = Arc::new(Scripted::default());
    let s = Arc::new(setup(sms.clone(), email.clone()));
    for i in 0..30 {
        submit(
            &s,
            &format!("+7701222{i:04}"),
            Some(&format!("p{i}@mail.kz")),
        )
        .await;
    }
    s.clock.advance(DELAY);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.dispatcher.dispatch_due(100).await.unwrap() })
        })
        .collect();
    let mut sent = 0;
    for r in runs {
        sent += r.await.unwrap().sent;
    }
    assert_eq!(sent, 60);
    assert_eq!(sms.sent().len(), 30);
    assert_eq!(email.sent().len(), 30);
}

/// Almaty, SMS 09:00-21:00, email always (the defaults).
fn almaty() -> landing_core::notify::SendWindows {
    landing_core::notify::SendWindows::new(
        jiff::tz::TimeZone::get("Asia/Almaty").unwrap(),
        "09:00-21:00".parse().unwrap(),
        landing_core::notify::Window::ALWAYS,
    )
}

#[tokio::test]
async fn an_sms_due_at_night_waits_for_nine_in_almaty_while_its_email_goes() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    // 02:40 Almaty: the follow-up is due at 02:50.
    let start: Timestamp = "2026-12-01T21:40:00Z".parse().unwrap();
    let s = setup_with(sms.clone(), email.clone(), almaty(), start);
    let lead = submit(&s, "+77011112240", Some("night@mail.kz")).await;
    let rows = s.store.notifications_for_lead(lead).await.unwrap();
    let due = |ch: &str| {
        rows.iter()
            .find(|n| n.channel().as_str() == ch)
            .unwrap()
            .send_at
    };
    assert_eq!(
        due("sms"),
        "2026-12-02T04:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        due("email"),
        "2026-12-01T21:50:00Z".parse::<Timestamp>().unwrap()
    );

    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    assert_eq!(email.sent().len(), 1);
    assert!(sms.sent().is_empty(), "no SMS at 02:50");

    // 08:59:59 Almaty: still not; 09:00: the SMS.
    s.clock.set("2026-12-02T03:59:59Z".parse().unwrap());
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().claimed, 0);
    s.clock.set("2026-12-02T04:00:00Z".parse().unwrap());
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 1);
    assert_eq!(sms.sent().len(), 1);
}

#[tokio::test]
async fn an_sms_handed_out_at_night_by_a_retry_is_held_until_the_window_opens() {
    let sms = Scripted::failing(vec![SendError::Transient("throttled".into())]);
    // Submitted at 20:45 Almaty, due 20:55: inside the window.
    let start: Timestamp = "2026-12-01T15:45:00Z".parse().unwrap();
    let s = setup_with(sms.clone(), Arc::new(Scripted::default()), almaty(), start);
    let lead = submit(&s, "+77011112241", None).await;
    s.clock.advance(DELAY);
    // The first attempt fails transiently; the next look at the row is at 21:30 (a sweep
    // after an outage, a recovered crash): it must wait for the morning, not go out now.
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().retried, 1);
    s.clock.set("2026-12-01T16:30:00Z".parse().unwrap());
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.claimed, report.held, report.sent), (1, 1, 0));
    let row = &s.store.notifications_for_lead(lead).await.unwrap()[0];
    assert_eq!(row.status, NotificationStatus::Pending);
    assert_eq!(
        row.send_at,
        "2026-12-02T04:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        row.hold_reason,
        Some(landing_core::domain::HoldReason::Window)
    );
    assert!(sms.sent().is_empty());
    s.clock.set("2026-12-02T04:00:00Z".parse().unwrap());
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 1);
    assert_eq!(sms.sent().len(), 1);
}

async fn statuses(s: &Setup, lead: landing_core::domain::LeadId) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = s
        .store
        .notifications_for_lead(lead)
        .await
        .unwrap()
        .iter()
        .map(|n| {
            let reason = n.suppressed_reason.map(|r| format!(" {}", r.as_str()));
            (
                n.channel().as_str().to_owned(),
                format!("{}{}", n.status.as_str(), reason.unwrap_or_default()),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn both(status: &str) -> Vec<(String, String)> {
    vec![
        ("email".to_owned(), status.to_owned()),
        ("sms".to_owned(), status.to_owned()),
    ]
}

#[tokio::test]
async fn three_proftests_in_an_evening_get_one_sms_and_one_email_for_the_newest() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let s = setup_people(sms.clone(), email.clone());
    let first = submit(&s, "+77011112250", Some("p@mail.kz")).await;
    s.clock.advance(Duration::from_secs(180));
    let second = submit(&s, "8 701 111 22 50", Some("P@Mail.kz")).await;
    s.clock.advance(Duration::from_secs(180));
    let third = submit(&s, "+77011112250", Some("p@mail.kz")).await;
    // Each row as it comes due, the way the worker would take them.
    for _ in 0..4 {
        s.clock.advance(Duration::from_secs(180));
        s.dispatcher.dispatch_due(10).await.unwrap();
    }
    assert_eq!(sms.sent().len(), 1, "{:?}", sms.sent());
    assert_eq!(email.sent().len(), 1);
    assert_eq!(statuses(&s, first).await, both("suppressed superseded"));
    assert_eq!(statuses(&s, second).await, both("suppressed superseded"));
    assert_eq!(statuses(&s, third).await, both("sent"));
}

#[tokio::test]
async fn an_express_course_follow_up_beats_the_proftests_around_it() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let s = setup_people(sms.clone(), email.clone());
    let before = submit(&s, "+77011112251", Some("e@mail.kz")).await;
    s.clock.advance(Duration::from_secs(120));
    let course = submit_form(&s, Form::ExpressCourse, "+77011112251", Some("e@mail.kz")).await;
    s.clock.advance(Duration::from_secs(120));
    let after = submit(&s, "+77011112251", Some("e@mail.kz")).await;
    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.sent, report.suppressed), (2, 4));
    assert_eq!(statuses(&s, course).await, both("sent"));
    assert_eq!(statuses(&s, before).await, both("suppressed superseded"));
    assert_eq!(statuses(&s, after).await, both("suppressed superseded"));
    assert!(sms.sent()[0].contains("экспресс-курс"), "{:?}", sms.sent());
}

#[tokio::test]
async fn a_follow_up_that_went_before_the_next_form_supersedes_nothing() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let s = setup_people(sms.clone(), email.clone());
    let first = submit(&s, "+77011112252", None).await;
    s.clock.advance(DELAY);
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 1);
    s.clock.advance(Duration::from_secs(60));
    let second = submit_form(&s, Form::ExpressCourse, "+77011112252", None).await;
    s.clock.advance(DELAY);
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 1);
    assert_eq!(
        sms.sent().len(),
        2,
        "sent stays sent, and the new form gets its own"
    );
    assert_eq!(
        statuses(&s, first).await,
        vec![("sms".to_owned(), "sent".to_owned())]
    );
    assert_eq!(
        statuses(&s, second).await,
        vec![("sms".to_owned(), "sent".to_owned())]
    );
}

#[tokio::test]
async fn different_people_are_never_superseded_by_each_other() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let s = setup_people(sms.clone(), email.clone());
    submit(&s, "+77011112253", Some("one@mail.kz")).await;
    submit(&s, "+77011112254", Some("two@mail.kz")).await;
    s.clock.advance(DELAY);
    assert_eq!(s.dispatcher.dispatch_due(10).await.unwrap().sent, 4);
}

/// Counters or a list that cannot be read (storage down).
struct Unreadable;

fn outage() -> landing_core::ports::StoreError {
    landing_core::ports::StoreError::unavailable(std::io::Error::other("disk I/O error"))
}

#[async_trait]
impl landing_core::ports::QuotaStore for Unreadable {
    async fn take(
        &self,
        _: &[landing_core::guard::Quota],
        _: Timestamp,
    ) -> Result<Vec<usize>, landing_core::ports::StoreError> {
        Err(outage())
    }
}

#[async_trait]
impl landing_core::ports::SuppressionList for Unreadable {
    async fn suppress_address(
        &self,
        _: &landing_core::domain::Email,
        _: landing_core::domain::AddressSuppression,
        _: Timestamp,
    ) -> Result<bool, landing_core::ports::StoreError> {
        Err(outage())
    }

    async fn address_suppression(
        &self,
        _: &landing_core::domain::Email,
    ) -> Result<Option<landing_core::domain::SuppressedAddress>, landing_core::ports::StoreError>
    {
        Err(outage())
    }
}

#[tokio::test]
async fn an_sms_whose_counters_cannot_be_read_is_not_sent_and_not_dropped() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let mut s = setup(sms.clone(), email.clone());
    s.dispatcher = Dispatcher::new(
        s.store.clone(),
        s.store.clone(),
        landing_core::notify::Transports {
            sms: sms.clone(),
            email: email.clone(),
        },
        Arc::new(Templates::defaults(BTreeMap::new()).unwrap()),
        Arc::new(s.clock.clone()),
        s.dispatcher.policy().clone(),
        landing_core::notify::SmsGuard::new(
            landing_core::guard::SmsGuardConfig::from_env(&landing_core::config::Env::default())
                .unwrap(),
            Arc::new(Unreadable),
        ),
    );
    let lead = submit(&s, "+77011112299", Some("q@mail.kz")).await;
    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.sent, report.unsettled), (1, 1), "{report:?}");
    assert!(sms.sent().is_empty(), "an SMS went out unchecked");
    assert_eq!(email.sent().len(), 1, "the email needs no counter");
    let sms_row = s
        .store
        .notifications_for_lead(lead)
        .await
        .unwrap()
        .into_iter()
        .find(|n| matches!(n.recipient, landing_core::domain::Recipient::Sms(_)))
        .unwrap();
    assert_eq!(
        sms_row.status,
        NotificationStatus::Sending,
        "still claimed: the lease hands it out again"
    );
}

#[tokio::test]
async fn an_email_to_a_listed_address_ends_suppressed_and_the_sms_still_goes() {
    use landing_core::ports::{Clock, SuppressionList};
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let mut s = setup(sms.clone(), email.clone());
    s.dispatcher = s.dispatcher.with_suppression_list(s.store.clone());
    let listed = landing_core::domain::Email::parse("Gone@Mail.kz").unwrap();
    s.store
        .suppress_address(
            &listed,
            landing_core::domain::AddressSuppression::Unsubscribed,
            s.clock.now(),
        )
        .await
        .unwrap();
    let lead = submit(&s, "+77011112298", Some("gone@mail.kz")).await;
    let other = submit(&s, "+77011112297", Some("stays@mail.kz")).await;
    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.sent, report.suppressed), (3, 1), "{report:?}");
    assert_eq!(sms.sent().len(), 2);
    assert_eq!(
        email.sent(),
        vec!["email stays@mail.kz Айгерим, результаты профтеста".to_owned()]
    );
    assert_eq!(
        statuses(&s, lead).await,
        vec![
            (
                "email".to_owned(),
                "suppressed address_suppressed".to_owned()
            ),
            ("sms".to_owned(), "sent".to_owned()),
        ]
    );
    assert_eq!(statuses(&s, other).await.len(), 2);
}

#[tokio::test]
async fn an_email_whose_list_cannot_be_read_waits_for_the_lease() {
    let (sms, email) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    let mut s = setup(sms.clone(), email.clone());
    s.dispatcher = s.dispatcher.with_suppression_list(Arc::new(Unreadable));
    submit(&s, "+77011112296", Some("w@mail.kz")).await;
    s.clock.advance(DELAY);
    let report = s.dispatcher.dispatch_due(10).await.unwrap();
    assert_eq!((report.sent, report.unsettled), (1, 1), "{report:?}");
    assert!(email.sent().is_empty());
}
