//! The CRM sync through the real HTTP client against the fake AmoCRM server (which keeps real
//! state and behaves as the research notes describe), with leads stored in real SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::sync::Arc;
use std::time::Duration;

use landing_amocrm::{AmoClient, AmoSettings, Credentials, RetryConfig};
use landing_amocrm_fake::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_LONG_LIVED_TOKEN, DEFAULT_REDIRECT_URI,
    FakeAmo, FakeConfig,
};
use landing_core::crm::{CrmSettings, CrmSync, SyncOutcome};
use landing_core::domain::{CrmStatus, Form, LeadId, PersonKey, Phone};
use landing_core::intake::{IntakeConfig, IntakeService, Submitted};
use landing_core::notify::LocalScheduler;
use landing_core::ports::{CrmStateStore, LeadStore, SystemClock, TokenPair, TokenStore};
use landing_core::time::Backoff;
use landing_sqlite::SqliteStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const PIPELINE: i64 = 10350882;
const FIRST: i64 = 10001;
const KASPI: i64 = 10002;
const HALYK: i64 = 144;

fn settings() -> CrmSettings {
    CrmSettings {
        pipeline_id: PIPELINE,
        stage_kaspi: Some(KASPI),
        stage_halyk: Some(HALYK),
        stage_robokassa: Some(142),
        stage_proftest: None,
    }
}

struct World {
    fake: FakeAmo,
    store: Arc<SqliteStore>,
    intake: IntakeService,
    sync: CrmSync,
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 5,
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(500)),
        timeout: Duration::from_millis(700),
    }
}

fn store() -> Arc<SqliteStore> {
    let dir = std::env::temp_dir().join(format!("crm-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(landing_sqlite::open(&dir.join("landing.db")).unwrap())
}

fn client(
    fake: &FakeAmo,
    store: Arc<SqliteStore>,
    credentials: Credentials,
    crm: CrmSettings,
) -> AmoClient {
    let s = AmoSettings {
        base_url: fake.base_url(),
        credentials,
        requests_per_second: 7,
        crm,
    };
    s.client(store, retry()).unwrap()
}

fn world_with(crm: CrmSettings) -> World {
    let fake = FakeAmo::start(FakeConfig::default());
    let store = store();
    let api = client(
        &fake,
        store.clone(),
        Credentials::LongLived(SecretString::from(DEFAULT_LONG_LIVED_TOKEN)),
        crm.clone(),
    );
    let intake = IntakeService::new(
        store.clone(),
        Arc::new(LocalScheduler::new()),
        Arc::new(SystemClock),
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
    let sync = CrmSync::new(
        store.clone(),
        store.clone(),
        Arc::new(api),
        crm,
        Arc::new(SystemClock),
        3,
    );
    World {
        fake,
        store,
        intake,
        sync,
    }
}

fn world() -> World {
    world_with(settings())
}

async fn submit(w: &World, form: Form, body: Value) -> LeadId {
    let Value::Object(fields) = body else {
        unreachable!()
    };
    match w
        .intake
        .submit(form, &fields, None, "corr-test", None)
        .await
        .unwrap()
    {
        Submitted::Created { lead_id, .. } => lead_id,
        other => panic!("{other:?}"),
    }
}

async fn sync_one(w: &World, id: LeadId) -> SyncOutcome {
    let out = w.sync.sync_batch(&[id]).await;
    assert_eq!(out.len(), 1);
    out.into_iter().next().unwrap().1
}

fn tags(w: &World, deal: i64) -> Vec<String> {
    w.fake.lead(deal).unwrap().tag_names()
}

fn note_texts(w: &World, deal: i64) -> Vec<String> {
    w.fake
        .notes(deal)
        .iter()
        .map(|n| n.params["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_person_gets_one_deal_with_a_new_contact_tags_utm_and_a_note() {
    let w = world();
    let id = submit(&w, Form::ProfTest, json!({"name": "Айгерим", "phone": "8 777 100 00 01", "email": "aigerim@mail.kz", "slug": "kenesary",
        "utm_source": "instagram", "utm_campaign": "autumn", "metadata": {"result": "IT-аналитик"}})).await;
    let SyncOutcome::Synced { deal_id } = sync_one(&w, id).await else {
        panic!()
    };

    assert_eq!(w.fake.leads().len(), 1);
    assert_eq!(w.fake.contacts().len(), 1);
    let deal = w.fake.lead_json(deal_id).unwrap();
    assert_eq!(deal["pipeline_id"], PIPELINE);
    assert_eq!(
        deal["status_id"], FIRST,
        "ProfTest without a configured stage lands in the first stage"
    );
    assert_eq!(tags(&w, deal_id), vec!["proftest", "proftest_kenesary"]);
    let utm = deal["custom_fields_values"].to_string();
    assert!(
        utm.contains("UTM_SOURCE") && utm.contains("instagram") && utm.contains("autumn"),
        "{utm}"
    );
    let notes = note_texts(&w, deal_id);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("Кампания: proftest_kenesary")
            && notes[0].contains("Результат теста: IT-аналитик"),
        "{}",
        notes[0]
    );

    let lead = w.store.get_lead(id).await.unwrap().unwrap();
    assert_eq!(lead.crm.status, CrmStatus::Synced);
    assert_eq!(lead.crm.amocrm_lead_id, Some(deal_id));
    let contact_id = lead.crm.amocrm_contact_id.unwrap();
    let phone = Phone::parse("+77771000001").unwrap();
    let tracked = w
        .store
        .get_tracking(&PersonKey::phone(&phone))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (tracked.amocrm_lead_id, tracked.amocrm_contact_id),
        (Some(deal_id), Some(contact_id))
    );

    // Synced is final: running again does nothing.
    assert_eq!(sync_one(&w, id).await, SyncOutcome::NotPending);
    assert_eq!(w.fake.leads().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn express_course_moves_the_persons_open_deal_to_the_payment_stage_and_appends_tags() {
    for (method, stage) in [("kaspi", KASPI), ("HALYK", HALYK), ("robokassa", 142)] {
        let w = world();
        // Stored the way managers type it: `8 …`, while the lead says `+7 …`.
        let contact = w.fake.add_contact("Ерлан", &["8 705 200 00 02"], &[], &[]);
        let deal = w
            .fake
            .add_lead("Старая сделка", PIPELINE, FIRST, &[contact], &["vip"], None);
        let id = submit(
            &w,
            Form::ExpressCourse,
            json!({"name": "Ерлан", "phone": "+77052000002", "paymentMethod": method}),
        )
        .await;
        assert_eq!(
            sync_one(&w, id).await,
            SyncOutcome::Synced { deal_id: deal },
            "{method}"
        );

        assert_eq!(w.fake.leads().len(), 1, "{method}: no second deal");
        let json = w.fake.lead_json(deal).unwrap();
        assert_eq!(
            (json["pipeline_id"].as_i64(), json["status_id"].as_i64()),
            (Some(PIPELINE), Some(stage)),
            "{method}"
        );
        let t = tags(&w, deal);
        assert!(
            t.contains(&"vip".to_owned()),
            "existing tags are kept: {t:?}"
        );
        assert!(
            t.contains(&"expresscourse".to_owned()) && t.contains(&method.to_lowercase()),
            "{t:?}"
        );
        assert_eq!(note_texts(&w, deal).len(), 1);
        // The PATCH carried pipeline_id with status_id and never `_embedded.tags`.
        let patch = w
            .fake
            .requests()
            .into_iter()
            .find(|r| r.method == "PATCH")
            .unwrap();
        assert!(
            patch.body.contains("pipeline_id")
                && patch.body.contains("tags_to_add")
                && !patch.body.contains("\"_embedded\""),
            "{}",
            patch.body
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proftest_on_an_open_deal_only_adds_tag_and_note() {
    let w = world();
    let contact = w
        .fake
        .add_contact("Асель", &["+7 701 300 00 03"], &["asel@mail.kz"], &[]);
    let deal = w
        .fake
        .add_lead("Сделка", PIPELINE, KASPI, &[contact], &[], None);
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "Асель", "email": "ASEL@mail.kz", "slug": "arystan"}),
    )
    .await;
    assert_eq!(
        sync_one(&w, id).await,
        SyncOutcome::Synced { deal_id: deal }
    );
    let json = w.fake.lead_json(deal).unwrap();
    assert_eq!(json["status_id"], KASPI, "ProfTest never moves the stage");
    assert_eq!(tags(&w, deal), vec!["proftest", "proftest_arystan"]);
    assert_eq!(note_texts(&w, deal).len(), 1);
    assert_eq!(w.fake.leads().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_deal_outside_the_configured_stages_gets_a_new_deal_for_the_same_contact() {
    let w = world();
    let contact = w.fake.add_contact("Дана", &["+7 702 400 00 04"], &[], &[]);
    let lost = w
        .fake
        .add_lead("Проиграна", PIPELINE, 143, &[contact], &[], None);
    let id = submit(
        &w,
        Form::ExpressCourse,
        json!({"name": "Дана", "phone": "87024000004", "paymentMethod": "kaspi"}),
    )
    .await;
    let SyncOutcome::Synced { deal_id } = sync_one(&w, id).await else {
        panic!()
    };
    assert_ne!(deal_id, lost);
    assert_eq!(
        w.fake.contacts().len(),
        1,
        "the existing contact is reused, not duplicated"
    );
    let json = w.fake.lead_json(deal_id).unwrap();
    assert_eq!(json["status_id"], KASPI);
    assert!(w.fake.contact(contact).unwrap().lead_ids.contains(&deal_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fuzzy_search_hit_that_does_not_really_match_is_ignored() {
    let w = world();
    // The phone's digits sit in another field of somebody else's contact.
    let stranger = w.fake.add_contact(
        "Посторонний",
        &["+7 700 999 99 99"],
        &[],
        &[("Код оплаты", "7075000005")],
    );
    let stranger_deal = w
        .fake
        .add_lead("Чужая", PIPELINE, FIRST, &[stranger], &[], None);
    let id = submit(
        &w,
        Form::ExpressCourse,
        json!({"name": "Мадина", "phone": "+77075000005", "paymentMethod": "halyk"}),
    )
    .await;
    let SyncOutcome::Synced { deal_id } = sync_one(&w, id).await else {
        panic!()
    };
    assert_ne!(deal_id, stranger_deal);
    assert_eq!(
        w.fake.lead_json(stranger_deal).unwrap()["status_id"],
        FIRST,
        "the stranger's deal is untouched"
    );
    assert_eq!(w.fake.contacts().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_leads_of_one_person_synced_at_the_same_moment_make_one_deal() {
    let w = Arc::new(world());
    let a = submit(
        &w,
        Form::ProfTest,
        json!({"name": "Нурлан", "phone": "+77076000006", "email": "nurlan@mail.kz"}),
    )
    .await;
    let b = submit(
        &w,
        Form::ExpressCourse,
        json!({"name": "Нурлан", "email": "Nurlan@Mail.kz", "paymentMethod": "kaspi"}),
    )
    .await;
    let (wa, wb) = (w.clone(), w.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { sync_one(&wa, a).await }),
        tokio::spawn(async move { sync_one(&wb, b).await })
    );
    let (SyncOutcome::Synced { deal_id: da }, SyncOutcome::Synced { deal_id: db }) =
        (ra.unwrap(), rb.unwrap())
    else {
        panic!()
    };
    assert_eq!(da, db);
    assert_eq!(w.fake.leads().len(), 1);
    assert_eq!(w.fake.contacts().len(), 1);
    assert_eq!(
        w.fake.lead_json(da).unwrap()["status_id"],
        KASPI,
        "the ExpressCourse lead moved the shared deal"
    );

    // The same in one batch.
    let w = world();
    let a = submit(
        &w,
        Form::ProfTest,
        json!({"name": "Том", "phone": "+77076000007"}),
    )
    .await;
    let b = submit(
        &w,
        Form::ProfTest,
        json!({"name": "Том", "phone": "87076000007"}),
    )
    .await;
    let out = w.sync.sync_batch(&[a, b]).await;
    assert!(
        out.iter()
            .all(|(_, o)| matches!(o, SyncOutcome::Synced { .. })),
        "{out:?}"
    );
    assert_eq!(w.fake.leads().len(), 1);
    assert_eq!(
        note_texts(&w, w.fake.leads()[0].id).len(),
        2,
        "one note per lead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_timeouts_and_429_bursts_are_retried_and_end_synced_once() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000008"}),
    )
    .await;
    w.fake.fail_next(2, 502);
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Synced { .. }));

    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "B", "phone": "+77078000009"}),
    )
    .await;
    w.fake.burst_429(3);
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Synced { .. }));

    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "C", "phone": "+77078000010"}),
    )
    .await;
    w.fake.delay_next(1, Duration::from_secs(2));
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Synced { .. }));
    assert_eq!(w.fake.leads().len(), 3, "no retry created a second deal");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_longer_than_the_retries_leaves_the_lead_pending_then_synced_once() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000011"}),
    )
    .await;
    w.fake.fail_next(100, 503);
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Retry(_)));
    assert_eq!(
        w.store.get_lead(id).await.unwrap().unwrap().crm.status,
        CrmStatus::Pending
    );
    w.fake.clear_faults();
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Synced { .. }));
    assert_eq!(w.fake.leads().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_deal_was_created_never_creates_it_again() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000012"}),
    )
    .await;
    // An earlier attempt created the deal and died before marking the lead synced.
    let existing = w
        .fake
        .add_lead("Создана ранее", PIPELINE, FIRST, &[], &[], None);
    w.store.record_crm_deal(id, existing, None).await.unwrap();
    assert_eq!(
        sync_one(&w, id).await,
        SyncOutcome::Synced { deal_id: existing }
    );
    assert_eq!(w.fake.calls("POST /api/v4/leads/complex"), 0);
    assert_eq!(w.fake.calls("POST /api/v4/leads"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_account_or_a_validation_error_fails_the_lead_with_the_reason() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000013"}),
    )
    .await;
    w.fake.set_blocked(true);
    let SyncOutcome::Failed(reason) = sync_one(&w, id).await else {
        panic!()
    };
    assert!(reason.contains("blocked"), "{reason}");
    let lead = w.store.get_lead(id).await.unwrap().unwrap();
    assert_eq!(
        (lead.crm.status, lead.crm.error.as_deref()),
        (CrmStatus::Failed, Some(reason.as_str()))
    );
    w.fake.set_blocked(false);

    // A stage id that does not exist in the pipeline: AmoCRM answers 400 validation-errors.
    let w = world_with(CrmSettings {
        stage_kaspi: Some(999_999),
        ..settings()
    });
    let id = submit(
        &w,
        Form::ExpressCourse,
        json!({"name": "B", "phone": "+77078000014", "paymentMethod": "kaspi"}),
    )
    .await;
    let SyncOutcome::Failed(reason) = sync_one(&w, id).await else {
        panic!()
    };
    assert!(reason.contains("rejected"), "{reason}");
    assert_eq!(w.fake.leads().len(), 0);
    let stats = w.fake.stats();
    assert!(
        stats.api_calls < 10,
        "no retry storm on a validation error: {stats:?}"
    );
}

async fn oauth_world(fake: &FakeAmo, access_expired: bool) -> (Arc<SqliteStore>, Arc<AmoClient>) {
    let store = store();
    let pair = fake.issue_tokens();
    let expires_at = if access_expired {
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10)
    } else {
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)
    };
    let stored = TokenPair {
        access_token: SecretString::from(pair.access_token),
        refresh_token: SecretString::from(pair.refresh_token),
        expires_at,
    };
    assert!(store.replace(None, &stored).await.unwrap());
    let credentials = Credentials::OAuth {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
        redirect_uri: DEFAULT_REDIRECT_URI.into(),
    };
    let c = Arc::new(client(fake, store.clone(), credentials, settings()));
    (store, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_calls_with_an_expired_token_make_one_refresh() {
    let fake = FakeAmo::start(FakeConfig::default());
    let (store, c) = oauth_world(&fake, true).await;
    let old_refresh = store
        .load()
        .await
        .unwrap()
        .unwrap()
        .refresh_token
        .expose_secret()
        .to_owned();
    let calls: Vec<_> = (0..2)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                landing_amocrm::endpoints::search_contacts(&c, &format!("70000000{i}"), "t").await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        fake.stats().token_calls,
        1,
        "one refresh reached the server"
    );
    let now = store.load().await.unwrap().unwrap();
    assert_ne!(
        now.refresh_token.expose_secret(),
        old_refresh,
        "the rotated pair was persisted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_refreshes_once_and_retries() {
    let fake = FakeAmo::start(FakeConfig::default());
    let (_store, c) = oauth_world(&fake, false).await;
    fake.expire_access_tokens();
    landing_amocrm::endpoints::search_contacts(&c, "7000000001", "t")
        .await
        .unwrap();
    assert_eq!(fake.stats().token_calls, 1);

    // A revoked refresh token: the call fails loudly, it does not loop.
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    let err = landing_amocrm::endpoints::search_contacts(&c, "7000000001", "t")
        .await
        .unwrap_err();
    assert!(
        matches!(err, landing_amocrm::AmoError::Unauthorized(_)),
        "{err:?}"
    );
    assert_eq!(fake.stats().token_calls, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_lived_token_that_stops_working_fails_loudly_without_refreshing() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000015"}),
    )
    .await;
    w.fake.expire_access_tokens();
    let SyncOutcome::Failed(reason) = sync_one(&w, id).await else {
        panic!()
    };
    assert!(reason.contains("authorization"), "{reason}");
    assert_eq!(w.fake.stats().token_calls, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_keeps_under_seven_requests_per_second_so_the_fake_never_answers_429() {
    let w = world();
    let c = client(
        &w.fake,
        w.store.clone(),
        Credentials::LongLived(SecretString::from(DEFAULT_LONG_LIVED_TOKEN)),
        settings(),
    );
    let c = Arc::new(c);
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..21)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                landing_amocrm::endpoints::search_contacts(&c, &format!("7000001{i:03}"), "t")
                    .await
                    .unwrap()
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(w.fake.stats().served_429, 0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "21 calls at 7/s take at least two windows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requeued_failed_leads_sync_again() {
    let w = world();
    let id = submit(
        &w,
        Form::ProfTest,
        json!({"name": "A", "phone": "+77078000016"}),
    )
    .await;
    w.fake.set_blocked(true);
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Failed(_)));
    w.fake.set_blocked(false);
    assert_eq!(
        w.store
            .requeue_crm(landing_core::ports::Requeue::AllFailed)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(sync_one(&w, id).await, SyncOutcome::Synced { .. }));
}
