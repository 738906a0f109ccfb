//! The notify, crm-sync and sweeper handlers over real SQLite storage, a recording transport and
//! the fake AmoCRM server, fed with the JSON fixtures in `events/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use landing_amocrm::{AmoSettings, Credentials, RetryConfig};
use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};
use landing_aws_events::SweepConfig;
use landing_core::crm::{CrmSettings, CrmSync};
use landing_core::domain::{CrmStatus, Form, LeadId, NotificationStatus};
use landing_core::intake::{IntakeConfig, IntakeService, Submitted};
use landing_core::notify::{Dispatcher, LocalScheduler, NotifyPayload, RetryPolicy, Templates};
use landing_core::ports::{
    EmailMessage, EmailSender, Inspect, LeadStore, ManualClock, SendError, SmsMessage, SmsSender,
};
use landing_sqlite::SqliteStore;
use serde_json::json;

const FIXTURE_LEAD: &str = "01935a7e-8c2a-7b3e-9f00-6a1c2b3d4e5f";

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl SmsSender for Recorder {
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("sms {}", msg.meta.lead_id));
        Ok("sms-id".into())
    }
}

#[async_trait]
impl EmailSender for Recorder {
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("email {}", msg.meta.lead_id));
        Ok("email-id".into())
    }
}

struct World {
    store: Arc<SqliteStore>,
    clock: ManualClock,
    intake: IntakeService,
    dispatcher: Dispatcher,
    sent: Arc<Recorder>,
    fake: FakeAmo,
    sync: CrmSync,
}

fn world() -> World {
    let dir = std::env::temp_dir().join(format!("lambda-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(landing_sqlite::open(&dir.join("landing.db")).unwrap());
    let clock = ManualClock::new(Timestamp::now());
    let sent = Arc::new(Recorder::default());
    let intake = IntakeService::new(
        store.clone(),
        Arc::new(LocalScheduler::new()),
        Arc::new(clock.clone()),
        IntakeConfig {
            notify_delay: Duration::from_secs(600),
            windows: landing_core::notify::SendWindows::always(),
            idempotency_ttl: Duration::from_secs(3600),
            initial_crm_status: CrmStatus::Pending,
            payment_links: Default::default(),
            screening: Default::default(),
            origins: Default::default(),
        },
    );
    let templates = Arc::new(Templates::defaults(BTreeMap::new()).unwrap());
    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        landing_core::notify::Transports {
            sms: sent.clone(),
            email: sent.clone(),
        },
        templates,
        Arc::new(clock.clone()),
        RetryPolicy::default(),
        landing_core::notify::SmsGuard::new(
            landing_core::guard::SmsGuardConfig::off(),
            store.clone(),
        ),
    );
    let fake = FakeAmo::start(FakeConfig::default());
    let crm = CrmSettings {
        pipeline_id: DEFAULT_PIPELINE_ID,
        stage_kaspi: Some(10002),
        stage_halyk: Some(144),
        stage_robokassa: Some(10002),
        stage_proftest: None,
    };
    let settings = AmoSettings {
        base_url: fake.base_url(),
        credentials: Credentials::LongLived(secrecy::SecretString::from(DEFAULT_LONG_LIVED_TOKEN)),
        requests_per_second: 7,
        crm: crm.clone(),
    };
    let retry = RetryConfig {
        max_attempts: 2,
        backoff: landing_core::time::Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(50),
        ),
        timeout: Duration::from_secs(2),
    };
    let client = settings.client(store.clone(), retry).unwrap();
    let sync = CrmSync::new(
        store.clone(),
        store.clone(),
        Arc::new(client),
        crm,
        Arc::new(clock.clone()),
        5,
    );
    World {
        store,
        clock,
        intake,
        dispatcher,
        sent,
        fake,
        sync,
    }
}

async fn lead(w: &World, phone: &str) -> LeadId {
    let serde_json::Value::Object(f) = json!({"name": "Айгерим", "phone": phone, "email": format!("{}@mail.kz", &phone[1..]), "paymentMethod": "kaspi"})
    else {
        unreachable!()
    };
    match w
        .intake
        .submit(Form::ExpressCourse, &f, None, "corr", None)
        .await
        .unwrap()
    {
        Submitted::Created { lead_id, .. } => lead_id,
        other => panic!("{other:?}"),
    }
}

fn fixture(path: &str, lead: LeadId) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/");
    std::fs::read_to_string(format!("{root}{path}"))
        .unwrap()
        .replace(FIXTURE_LEAD, &lead.to_string())
}

#[tokio::test]
async fn notify_sends_the_scheduled_leads_messages_once_even_if_delivered_twice() {
    let w = world();
    let id = lead(&w, "+77011110001").await;
    let _other = lead(&w, "+77011110002").await;
    w.clock.advance(Duration::from_secs(600));
    let payload: NotifyPayload =
        serde_json::from_str(&fixture("notify/scheduler-payload.json", id)).unwrap();
    let report = landing_aws_events::notify(&w.dispatcher, payload.clone())
        .await
        .unwrap();
    assert_eq!(report.sent, 2);
    let again = landing_aws_events::notify(&w.dispatcher, payload)
        .await
        .unwrap();
    assert_eq!(
        again.claimed, 0,
        "a duplicate scheduler delivery sends nothing"
    );
    assert_eq!(
        *w.sent.0.lock().unwrap(),
        vec![format!("sms {id}"), format!("email {id}")]
    );
}

#[tokio::test]
async fn notify_fired_a_little_early_still_sends() {
    let w = world();
    let id = lead(&w, "+77011110003").await;
    w.clock.advance(Duration::from_secs(600 - 30));
    let report = landing_aws_events::notify(
        &w.dispatcher,
        NotifyPayload {
            lead_id: id,
            correlation_id: "c".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(report.sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_sync_syncs_inserts_only_and_reports_retryable_records() {
    let w = world();
    let id = lead(&w, "+77011110004").await;
    let event =
        serde_json::from_str(&fixture("crm-sync/stream-insert-and-modify.json", id)).unwrap();
    let response = landing_aws_events::crm_sync(&w.sync, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(
        w.fake.leads().len(),
        1,
        "the MODIFY record did not sync a second time"
    );
    assert_eq!(
        w.store.get_lead(id).await.unwrap().unwrap().crm.status,
        CrmStatus::Synced
    );

    // AmoCRM down: the INSERT record is reported for retry, and a retry later succeeds once.
    let id = lead(&w, "+77011110005").await;
    w.fake.fail_next(1000, 503);
    let event =
        serde_json::from_str(&fixture("crm-sync/stream-insert-and-modify.json", id)).unwrap();
    let response = landing_aws_events::crm_sync(&w.sync, event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, vec!["111100000000000000000001".to_owned()]);
    w.fake.clear_faults();
    let event =
        serde_json::from_str(&fixture("crm-sync/stream-insert-and-modify.json", id)).unwrap();
    assert!(
        landing_aws_events::crm_sync(&w.sync, event)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(w.fake.leads().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_sends_what_no_schedule_delivered_and_redrives_stale_crm_syncs() {
    let w = world();
    let id = lead(&w, "+77011110006").await;
    // Scheduling failed (or the schedule was lost): nothing ever called notify.
    w.clock.advance(Duration::from_secs(600 + 60));
    let _event: serde_json::Value =
        serde_json::from_str(&fixture("sweeper/scheduled-event.json", id)).unwrap();
    let report = landing_aws_events::sweep(
        &w.dispatcher,
        Some(&w.sync),
        &w.clock,
        &SweepConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.notifications_sent, 2);
    assert_eq!(
        report.crm_redriven, 0,
        "15 minutes have not passed: the stream still owns the lead"
    );
    let rows = w.store.notifications_for_lead(id).await.unwrap();
    assert!(rows.iter().all(|n| n.status == NotificationStatus::Sent));

    w.clock.advance(Duration::from_secs(15 * 60));
    let report = landing_aws_events::sweep(
        &w.dispatcher,
        Some(&w.sync),
        &w.clock,
        &SweepConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.notifications_claimed,
            report.crm_redriven,
            report.crm_synced
        ),
        (0, 1, 1)
    );
    assert_eq!(w.fake.leads().len(), 1);
}
