//! Against moto: `./infra/with-moto.sh cargo test -p landing-aws-scheduler`. Every test creates its
//! own schedule group (moto answers `CreateSchedule` into a missing group with an HTML 500), so
//! tests run in parallel without sharing state and nothing is ever reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use jiff::Timestamp;
use landing_aws_scheduler::{
    EventBridgeScheduler, MAX_EVENT_AGE_SECS, MAX_RETRY_ATTEMPTS, NotifyPayload, ScheduleError,
    SchedulerConfig,
};
use landing_core::domain::LeadId;
use landing_core::ports::NotificationScheduler;

const TARGET: &str = "arn:aws:lambda:eu-central-1:123456789012:function:landing-notify";
const ROLE: &str = "arn:aws:iam::123456789012:role/landing-aws-scheduler";
const DLQ: &str = "arn:aws:sqs:eu-central-1:123456789012:landing-notify-dlq";

async fn client() -> aws_sdk_scheduler::Client {
    aws_sdk_scheduler::Client::new(&landing_moto::sdk_config().await)
}

/// A fresh group, unique to the calling test.
async fn group(_client: &aws_sdk_scheduler::Client, test: &str) -> String {
    landing_moto::schedule_group(&landing_moto::sdk_config().await, &format!("t-{test}-")).await
}

fn config(group: &str, dlq: Option<&str>) -> SchedulerConfig {
    SchedulerConfig {
        group: group.to_owned(),
        target_arn: TARGET.to_owned(),
        role_arn: ROLE.to_owned(),
        dlq_arn: dlq.map(str::to_owned),
    }
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn creates_one_shot_schedule_with_every_field() {
    let client = client().await;
    let group = group(&client, "fields").await;
    let scheduler = EventBridgeScheduler::new(client.clone(), config(&group, Some(DLQ)));
    let lead = LeadId::new();
    let send_at: Timestamp = "2030-05-06T07:08:09.250+06:00".parse().unwrap();

    scheduler.schedule(lead, send_at, "req-abc").await.unwrap();

    let name = format!("lead-{}", lead.0);
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(&name)
        .send()
        .await
        .expect("GetSchedule");
    assert_eq!(got.name(), Some(name.as_str()));
    assert_eq!(got.group_name(), Some(group.as_str()));
    // 07:08:09.25 at +06:00 = 01:08:09.25 UTC, rounded up.
    assert_eq!(got.schedule_expression(), Some("at(2030-05-06T01:08:10)"));
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        got.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    assert_eq!(
        got.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    let target = got.target().expect("target");
    assert_eq!(target.arn(), TARGET);
    assert_eq!(target.role_arn(), ROLE);
    let retry = target.retry_policy().expect("retry policy");
    assert_eq!(
        retry.maximum_event_age_in_seconds(),
        Some(MAX_EVENT_AGE_SECS)
    );
    assert_eq!(retry.maximum_retry_attempts(), Some(MAX_RETRY_ATTEMPTS));
    assert_eq!(target.dead_letter_config().and_then(|d| d.arn()), Some(DLQ));
    let input = target.input().expect("input");
    let expected = format!(r#"{{"leadId":"{}","correlationId":"req-abc"}}"#, lead.0);
    assert_eq!(input, expected);
    let payload: NotifyPayload = serde_json::from_str(input).unwrap();
    assert_eq!(
        payload,
        NotifyPayload {
            lead_id: lead,
            correlation_id: "req-abc".into()
        }
    );
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn without_dlq_the_target_has_no_dead_letter_config() {
    let client = client().await;
    let group = group(&client, "nodlq").await;
    let scheduler = EventBridgeScheduler::new(client.clone(), config(&group, None));
    let lead = LeadId::new();
    scheduler
        .schedule(lead, "2030-01-01T00:00:00Z".parse().unwrap(), "c")
        .await
        .unwrap();
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(format!("lead-{}", lead.0))
        .send()
        .await
        .unwrap();
    let target = got.target().unwrap();
    assert_eq!(target.dead_letter_config().and_then(|d| d.arn()), None);
    assert_eq!(got.schedule_expression(), Some("at(2030-01-01T00:00:00)"));
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn scheduling_the_same_lead_twice_is_ok_and_leaves_one_schedule() {
    let client = client().await;
    let group = group(&client, "twice").await;
    let scheduler = EventBridgeScheduler::new(client.clone(), config(&group, Some(DLQ)));
    let lead = LeadId::new();
    let first: Timestamp = "2030-02-03T04:05:06Z".parse().unwrap();

    assert!(scheduler.create(lead, first, "c1").await.unwrap());
    // The second attempt (a retried intake, say) hits ConflictException = already scheduled.
    assert!(
        !scheduler
            .create(lead, "2030-02-03T05:00:00Z".parse().unwrap(), "c2")
            .await
            .unwrap()
    );
    scheduler.schedule(lead, first, "c3").await.unwrap();

    let list = client
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = list.schedules().iter().filter_map(|s| s.name()).collect();
    assert_eq!(names, vec![format!("lead-{}", lead.0).as_str()]);
    // The first schedule is the one kept.
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(format!("lead-{}", lead.0))
        .send()
        .await
        .unwrap();
    assert_eq!(got.schedule_expression(), Some("at(2030-02-03T04:05:06)"));
    assert!(got.target().unwrap().input().unwrap().contains("\"c1\""));
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn different_leads_get_different_schedules() {
    let client = client().await;
    let group = group(&client, "many").await;
    let scheduler = EventBridgeScheduler::new(client.clone(), config(&group, None));
    let at: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let leads = [LeadId::new(), LeadId::new(), LeadId::new()];
    for lead in leads {
        scheduler.schedule(lead, at, "c").await.unwrap();
    }
    let list = client
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = list
        .schedules()
        .iter()
        .filter_map(|s| s.name().map(str::to_owned))
        .collect();
    names.sort();
    let mut expected: Vec<String> = leads.iter().map(|l| format!("lead-{}", l.0)).collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn other_api_errors_are_errors_with_the_chain_kept() {
    let client = client().await;
    // moto accepts any ARN, so provoke a service error another way: a group name that
    // is valid for us but does not exist in moto (moto answers with a 500).
    let missing = format!("t-missing-{}", LeadId::new().0.simple());
    let scheduler = EventBridgeScheduler::new(client, config(&missing, None));
    let err = scheduler
        .schedule(LeadId::new(), "2030-01-01T00:00:00Z".parse().unwrap(), "c")
        .await
        .unwrap_err();
    let source = std::error::Error::source(&err).expect("source");
    let inner = source
        .downcast_ref::<ScheduleError>()
        .expect("ScheduleError inside SchedulerError");
    assert!(matches!(inner, ScheduleError::Api { .. }), "{inner:?}");
    assert!(
        std::error::Error::source(inner).is_some(),
        "SDK error kept as source"
    );
    assert!(inner.to_string().contains(&missing), "{inner}");
}
