//! The SMS guard's DynamoDB path: the notify/sweeper dispatcher over `DynamoStore` (moto), its
//! counters in the quotas table, with a clock the test moves. The same decisions as landing-local
//! (`functions/local/tests/e2e.rs` `guard::*`), on the other store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::config::Env;
use landing_core::domain::{
    CrmStatus, Form, HoldReason, LeadId, NotificationStatus, SuppressReason,
};
use landing_core::guard::SmsGuardConfig;
use landing_core::intake::{IntakeConfig, IntakeService, Submitted};
use landing_core::notify::{
    Dispatcher, LocalScheduler, RetryPolicy, SmsGuard, Templates, Transports,
};
use landing_core::ports::{
    EmailMessage, EmailSender, Inspect, ManualClock, NotificationStore, SendError, SmsMessage,
    SmsSender,
};
use serde_json::json;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl SmsSender for Recorder {
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("sms {}", msg.to.as_str()));
        Ok("sms-id".into())
    }
}

#[async_trait]
impl EmailSender for Recorder {
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("email {}", msg.to.as_str()));
        Ok("email-id".into())
    }
}

struct World {
    store: Arc<landing_aws_dynamo::DynamoStore>,
    clock: ManualClock,
    intake: IntakeService,
    dispatcher: Dispatcher,
    sent: Arc<Recorder>,
}

async fn world(guard: &[(&str, &str)]) -> World {
    let store = Arc::new(landing_moto::fresh_store().await);
    // 00:00:30 of a day: every window of the test starts on the hour.
    let clock = ManualClock::new(Timestamp::from_second(1_767_225_630).unwrap());
    let sent = Arc::new(Recorder::default());
    let intake = IntakeService::new(
        store.clone(),
        Arc::new(LocalScheduler::new()),
        Arc::new(clock.clone()),
        IntakeConfig {
            notify_delay: Duration::from_secs(600),
            windows: landing_core::notify::SendWindows::always(),
            idempotency_ttl: Duration::from_secs(3600),
            initial_crm_status: CrmStatus::Disabled,
            payment_links: BTreeMap::new(),
            screening: Default::default(),
            origins: Default::default(),
        },
    );
    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        Transports {
            sms: sent.clone(),
            email: sent.clone(),
        },
        Arc::new(Templates::defaults(BTreeMap::new()).unwrap()),
        Arc::new(clock.clone()),
        RetryPolicy::default(),
        SmsGuard::new(
            SmsGuardConfig::from_env(&Env::from_pairs(guard.iter().copied())).unwrap(),
            store.clone(),
        ),
    );
    World {
        store,
        clock,
        intake,
        dispatcher,
        sent,
    }
}

async fn lead(w: &World, i: usize, phone: &str) -> LeadId {
    let serde_json::Value::Object(fields) =
        json!({"name": format!("Лид {i}"), "phone": phone, "email": format!("l{i}@mail.kz")})
    else {
        unreachable!()
    };
    match w
        .intake
        .submit(Form::ProfTest, &fields, None, "corr", None)
        .await
        .unwrap()
    {
        Submitted::Created { lead_id, .. } => lead_id,
        other => panic!("{other:?}"),
    }
}

fn sms(w: &World) -> usize {
    w.sent
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("sms "))
        .count()
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn on_dynamodb_five_leads_of_one_phone_get_three_sms_and_a_foreign_number_none() {
    let w = world(&[]).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(lead(&w, i, "+77012345678").await);
    }
    let foreign = lead(&w, 9, "+447911123456").await;
    w.clock.advance(Duration::from_secs(601));
    let report = w.dispatcher.dispatch_due(100).await.unwrap();
    assert_eq!((report.sent, report.suppressed), (3 + 6, 3), "{report:?}");
    assert_eq!(sms(&w), 3);
    let mut reasons = vec![];
    for id in ids.iter().chain([&foreign]) {
        for n in w.store.notifications_for_lead(*id).await.unwrap() {
            if n.status == NotificationStatus::Suppressed {
                reasons.push(n.suppressed_reason.unwrap());
            }
        }
    }
    reasons.sort_by_key(|r| r.as_str());
    assert_eq!(
        reasons,
        [
            SuppressReason::CountryNotAllowed,
            SuppressReason::PhoneLimit,
            SuppressReason::PhoneLimit
        ]
    );
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn on_dynamodb_past_the_budget_sms_are_held_until_the_window_ends_then_sent() {
    let w = world(&[("SMS_BUDGET", "5/1h")]).await;
    let mut ids = vec![];
    for i in 0..8 {
        ids.push(lead(&w, i, &format!("+7701{i:03}2222")).await);
    }
    w.clock.advance(Duration::from_secs(601));
    let first = w.dispatcher.dispatch_due(100).await.unwrap();
    assert_eq!((first.held, sms(&w)), (3, 5), "{first:?}");
    let mut held = 0;
    for id in &ids {
        for n in w.store.notifications_for_lead(*id).await.unwrap() {
            if n.hold_reason == Some(HoldReason::Budget) {
                assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 0));
                held += 1;
            }
        }
    }
    assert_eq!(held, 3, "held, not dropped, and the hold used no attempt");
    let next = w.store.next_due().await.unwrap();
    let hour = Timestamp::from_second(1_767_225_600 + 3600).unwrap();
    assert_eq!(next, Some(hour), "held rows are due when the window ends");
    // Not before the window ends, also not by a sweep.
    w.clock.set(
        hour.checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap(),
    );
    assert_eq!(w.dispatcher.dispatch_due(100).await.unwrap().claimed, 0);
    w.clock.set(hour);
    let second = w.dispatcher.dispatch_due(100).await.unwrap();
    assert_eq!((second.sent, second.held), (3, 0), "{second:?}");
    assert_eq!(sms(&w), 8);
}
