//! DynamoDB-specific behaviour the storage contract does not cover: the CRM state (the sparse
//! `crm-pending` index, failure counting, requeue), the token compare-and-swap, and the stored
//! item and table shapes the SAM template and other readers (stream consumers) rely on.
//! Run via `./infra/with-moto.sh cargo test -p landing-aws-dynamo`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use jiff::Timestamp;
use landing_aws_dynamo::DynamoStore;
use landing_contract::fixtures::{Person, at, intake, keyed, lead, mins, plus, secs};
use landing_core::domain::{Contact, CrmState, CrmStatus, Form, Lead, LeadId, PersonKey};
use landing_core::ports::{
    CrmStateStore, IntakeOutcome, LeadStore, NotificationStore, Requeue, TokenPair, TokenStore,
};
use secrecy::{ExposeSecret, SecretString};

type Item = HashMap<String, AttributeValue>;

async fn commit(store: &DynamoStore, lead: Lead) -> Lead {
    let outcome = store
        .commit_intake(intake(lead.clone()))
        .await
        .expect("commit_intake");
    assert_eq!(outcome, IntakeOutcome::Committed);
    lead
}

async fn raw(store: &DynamoStore, table: &str, key: &str, value: &str) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(value.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
}

async fn raw_lead(store: &DynamoStore, id: LeadId) -> Item {
    raw(store, &store.tables().leads, "id", &id.to_string())
        .await
        .expect("lead item exists")
}

async fn get_lead(store: &DynamoStore, id: LeadId) -> Lead {
    store
        .get_lead(id)
        .await
        .expect("get_lead")
        .expect("lead exists")
}

async fn pending(store: &DynamoStore) -> Vec<LeadId> {
    store.pending_crm(100).await.expect("pending_crm")
}

fn no_nulls(item: &Item) {
    for (k, v) in item {
        assert!(
            !matches!(v, AttributeValue::Null(_)),
            "{k} is stored as NULL"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn pending_crm_lists_pending_leads_oldest_first_and_synced_leaves_the_index() {
    let store = landing_moto::fresh_store().await;
    let person = Person::unique();
    // Committed out of order; `disabled` never enters the index.
    let newer = commit(&store, lead(&person, Form::ExpressCourse, at(mins(20)))).await;
    let older = commit(&store, lead(&person, Form::ProfTest, at(mins(10)))).await;
    let disabled = commit(
        &store,
        Lead {
            crm: CrmState::new(CrmStatus::Disabled),
            ..lead(&Person::unique(), Form::ProfTest, at(mins(5)))
        },
    )
    .await;
    assert_eq!(pending(&store).await, vec![older.id, newer.id]);
    assert_eq!(
        store.pending_crm(1).await.expect("pending_crm"),
        vec![older.id]
    );
    assert!(store.pending_crm(0).await.expect("pending_crm").is_empty());
    assert!(
        !raw_lead(&store, disabled.id)
            .await
            .contains_key("crm_pending")
    );
    assert_eq!(
        raw_lead(&store, older.id).await.get("crm_pending"),
        Some(&AttributeValue::S("pending".into()))
    );

    // The deal is remembered at once, before the sync is complete.
    store
        .record_crm_deal(older.id, 9001, None)
        .await
        .expect("record_crm_deal");
    let l = get_lead(&store, older.id).await;
    assert_eq!(l.crm.amocrm_lead_id, Some(9001));
    assert_eq!(l.crm.amocrm_contact_id, None);
    assert_eq!(l.crm.status, CrmStatus::Pending);
    // Unknown leads are not created by it.
    let ghost = LeadId::new();
    store
        .record_crm_deal(ghost, 1, Some(2))
        .await
        .expect("record_crm_deal of an unknown lead");
    assert!(
        raw(&store, &store.tables().leads, "id", &ghost.to_string())
            .await
            .is_none()
    );

    let synced_at = at(mins(30));
    let stranger = PersonKey::phone(&Person::unique().phone);
    store
        .mark_crm_synced(
            older.id,
            9001,
            Some(77),
            &[
                person.phone_key(),
                person.email_key(),
                person.phone_key(),
                stranger.clone(),
            ],
            synced_at,
        )
        .await
        .expect("mark_crm_synced");
    assert_eq!(
        pending(&store).await,
        vec![newer.id],
        "synced leaves the index"
    );
    let l = get_lead(&store, older.id).await;
    assert_eq!(l.crm.status, CrmStatus::Synced);
    assert_eq!(l.crm.amocrm_lead_id, Some(9001));
    assert_eq!(l.crm.amocrm_contact_id, Some(77));
    assert_eq!(l.crm.synced_at, Some(synced_at));
    assert_eq!(l.crm.error, None);
    let item = raw_lead(&store, older.id).await;
    assert!(!item.contains_key("crm_pending"));
    assert_eq!(
        item.get("amocrm_lead_id"),
        Some(&AttributeValue::N("9001".into()))
    );
    for key in [person.phone_key(), person.email_key()] {
        let t = store
            .get_tracking(&key)
            .await
            .expect("get_tracking")
            .expect("tracking row");
        assert_eq!(
            (t.amocrm_lead_id, t.amocrm_contact_id),
            (Some(9001), Some(77))
        );
        assert_eq!(
            (t.proftest_count, t.expresscourse_count),
            (1, 1),
            "counts untouched"
        );
    }
    assert_eq!(
        store.get_tracking(&stranger).await.expect("get_tracking"),
        None,
        "an unknown person key is not created"
    );

    // Without a contact id the known one is kept (COALESCE in SQLite).
    store
        .mark_crm_synced(newer.id, 9002, None, &[person.phone_key()], synced_at)
        .await
        .expect("mark_crm_synced");
    let t = store
        .get_tracking(&person.phone_key())
        .await
        .expect("get_tracking")
        .expect("tracking row");
    assert_eq!(
        (t.amocrm_lead_id, t.amocrm_contact_id),
        (Some(9002), Some(77))
    );
    assert!(pending(&store).await.is_empty());

    // A later intake touch of the person keeps the CRM ids on the tracking row.
    commit(&store, lead(&person, Form::ProfTest, at(mins(40)))).await;
    let t = store
        .get_tracking(&person.phone_key())
        .await
        .expect("get_tracking")
        .expect("tracking row");
    assert_eq!(
        (t.amocrm_lead_id, t.amocrm_contact_id),
        (Some(9002), Some(77))
    );
    assert_eq!((t.proftest_count, t.expresscourse_count), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn crm_failures_are_counted_and_a_permanent_one_fails_the_lead() {
    let store = landing_moto::fresh_store().await;
    let l = commit(&store, lead(&Person::unique(), Form::ProfTest, at(mins(1)))).await;

    assert_eq!(
        store
            .record_crm_failure(l.id, "HTTP 503", false)
            .await
            .expect("failure"),
        1
    );
    let long = "x".repeat(5000);
    assert_eq!(
        store
            .record_crm_failure(l.id, &long, false)
            .await
            .expect("failure"),
        2
    );
    let stored = get_lead(&store, l.id).await;
    assert_eq!(stored.crm.status, CrmStatus::Pending);
    assert_eq!(stored.crm.attempts, 2);
    assert_eq!(
        stored.crm.error.as_deref().map(str::len),
        Some(2000),
        "error is clipped"
    );
    assert_eq!(
        pending(&store).await,
        vec![l.id],
        "a transient failure stays pending"
    );

    assert_eq!(
        store
            .record_crm_failure(l.id, "422: invalid phone field", true)
            .await
            .expect("failure"),
        3
    );
    let stored = get_lead(&store, l.id).await;
    assert_eq!(stored.crm.status, CrmStatus::Failed);
    assert_eq!(stored.crm.attempts, 3);
    assert_eq!(
        stored.crm.error.as_deref(),
        Some("422: invalid phone field")
    );
    assert!(pending(&store).await.is_empty(), "failed leaves the index");
    assert!(!raw_lead(&store, l.id).await.contains_key("crm_pending"));

    assert_eq!(
        store
            .record_crm_failure(l.id, "again", false)
            .await
            .expect("failure"),
        0,
        "a lead that is not pending is not counted"
    );
    assert_eq!(get_lead(&store, l.id).await.crm.attempts, 3);
    assert_eq!(
        store
            .record_crm_failure(LeadId::new(), "unknown", true)
            .await
            .expect("failure"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn requeue_puts_failed_and_disabled_leads_back_into_the_index() {
    let store = landing_moto::fresh_store().await;
    let mut failed = Vec::new();
    for minute in [1, 2] {
        let l = commit(
            &store,
            lead(&Person::unique(), Form::ProfTest, at(mins(minute))),
        )
        .await;
        store
            .record_crm_failure(l.id, "boom", true)
            .await
            .expect("failure");
        failed.push(l.id);
    }
    let disabled = commit(
        &store,
        Lead {
            crm: CrmState::new(CrmStatus::Disabled),
            ..lead(&Person::unique(), Form::ProfTest, at(mins(3)))
        },
    )
    .await;
    let still_pending = commit(&store, lead(&Person::unique(), Form::ProfTest, at(mins(4)))).await;
    assert_eq!(pending(&store).await, vec![still_pending.id]);

    assert_eq!(
        store
            .requeue_crm(Requeue::Lead(still_pending.id))
            .await
            .expect("requeue"),
        0,
        "a pending lead is not requeued"
    );
    assert_eq!(
        store
            .requeue_crm(Requeue::Lead(LeadId::new()))
            .await
            .expect("requeue"),
        0,
        "unknown lead"
    );
    assert_eq!(
        store
            .requeue_crm(Requeue::Lead(failed[0]))
            .await
            .expect("requeue"),
        1
    );
    let l = get_lead(&store, failed[0]).await;
    assert_eq!((l.crm.status, l.crm.attempts), (CrmStatus::Pending, 0));
    assert_eq!(pending(&store).await, vec![failed[0], still_pending.id]);

    assert_eq!(
        store
            .requeue_crm(Requeue::AllFailed)
            .await
            .expect("requeue"),
        1,
        "only the one still failed; disabled is not failed"
    );
    assert_eq!(
        pending(&store).await,
        vec![failed[0], failed[1], still_pending.id]
    );
    assert_eq!(
        get_lead(&store, disabled.id).await.crm.status,
        CrmStatus::Disabled
    );
    assert_eq!(
        store
            .requeue_crm(Requeue::AllFailed)
            .await
            .expect("requeue"),
        0
    );

    assert_eq!(
        store
            .requeue_crm(Requeue::Lead(disabled.id))
            .await
            .expect("requeue"),
        1,
        "one disabled lead can be requeued by id"
    );
    assert_eq!(
        pending(&store).await,
        vec![failed[0], failed[1], disabled.id, still_pending.id]
    );
}

fn pair(access: &str, refresh: &str, expires_at: Timestamp) -> TokenPair {
    TokenPair {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: SecretString::from(refresh.to_owned()),
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn token_pair_is_replaced_only_by_whoever_presents_the_current_refresh_token() {
    let store = landing_moto::fresh_store().await;
    assert!(store.load().await.expect("load").is_none());
    let first = pair("a1", "r1", at(mins(60)));
    assert!(
        !store.replace(Some("r0"), &first).await.expect("replace"),
        "nothing stored yet: an expected token cannot match"
    );
    assert!(
        store.replace(None, &first).await.expect("replace"),
        "first store"
    );
    assert!(
        !store
            .replace(None, &pair("x", "y", at(mins(1))))
            .await
            .expect("replace"),
        "a second 'first store' is refused"
    );

    let second = pair("a2", "r2", at(mins(120)));
    assert!(
        !store
            .replace(Some("stale"), &second)
            .await
            .expect("replace"),
        "a stale expected refresh token is refused"
    );
    let loaded = store.load().await.expect("load").expect("a pair");
    assert_eq!(
        loaded.refresh_token.expose_secret(),
        "r1",
        "the refused write changed nothing"
    );
    assert_eq!(loaded.access_token.expose_secret(), "a1");
    assert_eq!(loaded.expires_at, at(mins(60)));

    assert!(store.replace(Some("r1"), &second).await.expect("replace"));
    let loaded = store.load().await.expect("load").expect("a pair");
    assert_eq!(loaded.refresh_token.expose_secret(), "r2");
    assert_eq!(loaded.access_token.expose_secret(), "a2");
    assert_eq!(loaded.expires_at, at(mins(120)));
    assert!(
        !store.replace(Some("r1"), &first).await.expect("replace"),
        "the used refresh token cannot win twice"
    );

    // Two refreshers racing with the same expected token: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .replace(
                        Some("r2"),
                        &pair(&format!("a3-{i}"), &format!("r3-{i}"), at(mins(180))),
                    )
                    .await
                    .expect("replace")
            })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.expect("racer"));
    }
    assert_eq!(winners, 1);
    let loaded = store.load().await.expect("load").expect("a pair");
    assert!(loaded.refresh_token.expose_secret().starts_with("r3-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn items_store_typed_attributes_and_settled_rows_leave_the_due_index() {
    let store = landing_moto::fresh_store().await;
    let person = Person::unique();
    let mut l = lead(&person, Form::ExpressCourse, at(secs(1)));
    l.email = Contact::Absent;
    let w = keyed(intake(l.clone()), "expresscourse:k1", "hash");
    assert_eq!(
        store.commit_intake(w.clone()).await.expect("commit"),
        IntakeOutcome::Committed
    );

    let item = raw_lead(&store, l.id).await;
    no_nulls(&item);
    assert!(
        !item.contains_key("email"),
        "absent values are absent attributes"
    );
    assert!(!item.contains_key("metadata"));
    assert_eq!(
        item["created_at"],
        AttributeValue::S("2026-01-01T00:00:01.000Z".into())
    );
    assert_eq!(item["crm_attempts"], AttributeValue::N("0".into()));

    let rows = store.notifications_for_lead(l.id).await.expect("rows");
    assert_eq!(rows.len(), 1);
    let row = raw(
        &store,
        &store.tables().notifications,
        "id",
        &rows[0].id.to_string(),
    )
    .await
    .expect("row item");
    no_nulls(&row);
    assert_eq!(row["attempts"], AttributeValue::N("0".into()));
    assert_eq!(row["due_shard"], AttributeValue::S("due".into()));
    assert_eq!(row["due_at"], row["send_at"], "pending: due_at = send_at");

    let now = plus(rows[0].send_at, secs(1));
    let claimed = store
        .claim_due(now, now, std::time::Duration::from_secs(30), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let row = raw(
        &store,
        &store.tables().notifications,
        "id",
        &rows[0].id.to_string(),
    )
    .await
    .expect("row item");
    assert_eq!(
        row["due_at"], row["claimed_until"],
        "sending: due_at = lease end"
    );
    assert!(
        store
            .mark_sent(rows[0].id, 1, "msg-1", now)
            .await
            .expect("mark_sent")
    );
    let row = raw(
        &store,
        &store.tables().notifications,
        "id",
        &rows[0].id.to_string(),
    )
    .await
    .expect("row item");
    for gone in ["due_shard", "due_at", "claimed_until"] {
        assert!(!row.contains_key(gone), "{gone} is removed once sent");
    }
    assert_eq!(store.next_due().await.expect("next_due"), None);

    let rec = raw(
        &store,
        &store.tables().idempotency,
        "key",
        "expresscourse:k1",
    )
    .await
    .expect("idempotency item");
    no_nulls(&rec);
    let expires = w.idempotency.as_ref().expect("keyed").expires_at;
    assert_eq!(
        rec["ttl"],
        AttributeValue::N(expires.as_second().to_string())
    );
    assert_eq!(rec["status"], AttributeValue::S("completed".into()));
    assert_eq!(rec["response_status"], AttributeValue::N("201".into()));

    let t = raw(
        &store,
        &store.tables().tracking,
        "person_key",
        person.phone_key().as_str(),
    )
    .await
    .expect("tracking item");
    no_nulls(&t);
    assert_eq!(t["expresscourse_count"], AttributeValue::N("1".into()));
    assert_eq!(t["proftest_count"], AttributeValue::N("0".into()));
    assert!(
        matches!(t["first_utm"], AttributeValue::M(_)),
        "UTM is a map"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn tables_have_the_documented_keys_indexes_stream_and_ttl() {
    let store = landing_moto::fresh_store().await;
    let c = store.client();
    let t = store.tables();
    let describe = |name: String| async move {
        c.describe_table()
            .table_name(name)
            .send()
            .await
            .expect("describe_table")
            .table
            .expect("table")
    };
    let key_of = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        keys.iter()
            .map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str()))
            .collect::<Vec<_>>()
    };
    let indexes = |d: &aws_sdk_dynamodb::types::TableDescription| {
        let mut v: Vec<(String, Vec<String>)> = d
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                (
                    g.index_name().unwrap_or_default().to_owned(),
                    key_of(g.key_schema()),
                )
            })
            .collect();
        v.sort();
        v
    };

    let leads = describe(t.leads.clone()).await;
    assert_eq!(key_of(leads.key_schema()), ["id:HASH"]);
    assert_eq!(
        indexes(&leads),
        [(
            "crm-pending".to_owned(),
            vec!["crm_pending:HASH".to_owned(), "created_at:RANGE".to_owned()]
        )]
    );
    let stream = leads.stream_specification().expect("a stream on leads");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().map(|v| v.as_str()),
        Some("NEW_IMAGE")
    );

    let notifications = describe(t.notifications.clone()).await;
    assert_eq!(key_of(notifications.key_schema()), ["id:HASH"]);
    assert_eq!(
        indexes(&notifications),
        [
            ("by-lead".to_owned(), vec!["lead_id:HASH".to_owned()]),
            (
                "due".to_owned(),
                vec!["due_shard:HASH".to_owned(), "due_at:RANGE".to_owned()]
            ),
        ]
    );
    assert_eq!(
        key_of(describe(t.tracking.clone()).await.key_schema()),
        ["person_key:HASH"]
    );
    assert_eq!(
        key_of(describe(t.idempotency.clone()).await.key_schema()),
        ["key:HASH"]
    );
    assert_eq!(
        key_of(describe(t.tokens.clone()).await.key_schema()),
        ["id:HASH"]
    );

    let ttl = c
        .describe_time_to_live()
        .table_name(&t.idempotency)
        .send()
        .await
        .expect("describe_time_to_live")
        .time_to_live_description
        .expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));

    // Creating again is a no-op, not an error (dev stacks re-run it).
    landing_aws_dynamo::create_tables(c, t)
        .await
        .expect("create_tables twice");
}
