//! The same verbs on both runtimes give the same answers: one mix of leads committed to SQLite
//! and to DynamoDB (moto), then `report`, `lead show` and `export` through the shared operator
//! over each store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use jiff::Timestamp;
use landing_core::domain::{CrmStatus, Form};
use landing_core::guard::{IpHasher, OriginPolicy, Screening};
use landing_core::intake::{IntakeConfig, IntakeService};
use landing_core::notify::LocalScheduler;
use landing_core::ports::{LeadStore, ManualClock};
use landing_operations::Operator;
use landing_operations::cli::OpsCommand;
use serde_json::json;

#[derive(Parser)]
struct Verb {
    #[command(subcommand)]
    cmd: OpsCommand,
}

fn verb(line: &str) -> OpsCommand {
    Verb::try_parse_from(std::iter::once("x").chain(line.split_whitespace()))
        .unwrap()
        .cmd
}

fn operator<S>(store: Arc<S>, clock: &ManualClock) -> Operator
where
    S: LeadStore
        + landing_core::ports::Inspect
        + landing_core::ports::LeadOps
        + landing_core::ports::CrmStateStore
        + 'static,
{
    Operator {
        leads: store.clone(),
        inspect: store.clone(),
        ops: store.clone(),
        crm: store,
        clock: Arc::new(clock.clone()),
        amocrm_subdomain: Some("school".into()),
        crm_on_release: CrmStatus::Pending,
        picked_up: "",
    }
}

async fn seed(store: Arc<dyn LeadStore>, clock: &ManualClock) {
    let intake = IntakeService::new(
        store,
        Arc::new(LocalScheduler::new()),
        Arc::new(clock.clone()),
        IntakeConfig {
            notify_delay: Duration::from_secs(600),
            windows: landing_core::notify::SendWindows::always(),
            idempotency_ttl: Duration::from_secs(3600),
            initial_crm_status: CrmStatus::Pending,
            payment_links: BTreeMap::new(),
            screening: Screening::new(
                "website",
                Some(IpHasher::new("same-answers-key-0123".to_owned().into()).unwrap()),
            ),
            origins: OriginPolicy::Any,
        },
    );
    let submissions = [
        (
            Form::ProfTest,
            json!({"name": "Ая", "phone": "+77011230001", "email": "a@mail.kz", "slug": "kenesary"}),
        ),
        (
            Form::ProfTest,
            json!({"name": "Бек", "phone": "+77011230002", "slug": "kenesary"}),
        ),
        (
            Form::ProfTest,
            json!({"name": "Bot", "phone": "+77011230003", "website": "x", "slug": "arystan"}),
        ),
        (
            Form::ExpressCourse,
            json!({"name": "Вика", "email": "v@mail.kz", "paymentMethod": "halyk"}),
        ),
        (
            Form::ExpressCourse,
            json!({"name": "Ая", "phone": "8 701 123 00 01", "paymentMethod": "kaspi"}),
        ),
    ];
    for (form, body) in submissions {
        let serde_json::Value::Object(fields) = body else {
            unreachable!()
        };
        intake
            .submit(
                form,
                &fields,
                None,
                "corr",
                Some("203.0.113.1".parse().unwrap()),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3600 * 7));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn report_lead_show_and_export_say_the_same_on_sqlite_and_dynamodb() {
    let start = Timestamp::from_second(1_767_225_600 + 3 * 3600).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(landing_sqlite::open(&dir.path().join("landing.db")).unwrap());
    let dynamo = Arc::new(landing_moto::fresh_store().await);
    let (c1, c2) = (ManualClock::new(start), ManualClock::new(start));
    seed(sqlite.clone(), &c1).await;
    seed(dynamo.clone(), &c2).await;
    let (local, aws) = (operator(sqlite, &c1), operator(dynamo, &c2));
    for line in [
        "report --since 7d --format json",
        "report --since 7d --by day --format json",
        "report --since 7d --format csv",
        "lead show --phone +77011230001 --format json",
        "lead show --email V@mail.kz --format json",
    ] {
        let a = local.execute(verb(line)).await.unwrap().text;
        let b = aws.execute(verb(line)).await.unwrap().text;
        // Lead ids differ between the two runs; everything else must not.
        let strip = |s: &str| {
            s.split('"')
                .map(|part| {
                    if uuid::Uuid::parse_str(part).is_ok() {
                        "<id>".to_owned()
                    } else {
                        part.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\"")
        };
        assert_eq!(strip(&a), strip(&b), "{line}");
        assert!(a.len() > 20, "{line}: {a}");
    }
    let report: serde_json::Value = serde_json::from_str(
        &aws.execute(verb("report --since 7d --format json"))
            .await
            .unwrap()
            .text,
    )
    .unwrap();
    let leads: u64 = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["leads"].as_u64().unwrap())
        .sum();
    assert_eq!(leads, 5);
    let by_phone: serde_json::Value = serde_json::from_str(
        &aws.execute(verb("lead show --phone 87011230001 --format json"))
            .await
            .unwrap()
            .text,
    )
    .unwrap();
    assert_eq!(by_phone.as_array().unwrap().len(), 2, "both of Ая's leads");
    assert_eq!(by_phone[0]["form"], "expresscourse", "newest first");
}
