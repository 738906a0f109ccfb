//! DynamoDB-specific shapes the storage contracts do not see: the sparse `crm-pending` index
//! attribute, and the stored item and table shapes the SAM template and other readers (stream
//! consumers) rely on.
//! Run via `./infra/with-moto.sh cargo test -p landing-aws-dynamo`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use landing_aws_dynamo::DynamoStore;
use landing_contract::fixtures::{Person, at, intake, keyed, lead, mins, plus, secs};
use landing_core::domain::{Contact, CrmState, CrmStatus, Form, Lead, LeadId};
use landing_core::ports::{
    CrmStateStore, Inspect, IntakeOutcome, LeadStore, NotificationStore, Requeue,
};

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

/// The sparse `crm-pending` index holds a lead exactly while it waits for the sync: never when
/// disabled, gone once synced or failed, back after a requeue. (What the port answers is the
/// contract suite's business; this is the item shape the index and the template rely on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn the_crm_pending_attribute_is_present_exactly_while_a_lead_waits_for_the_sync() {
    let store = landing_moto::fresh_store().await;
    let person = Person::unique();
    let synced = commit(&store, lead(&person, Form::ProfTest, at(mins(1)))).await;
    let failed = commit(&store, lead(&Person::unique(), Form::ProfTest, at(mins(2)))).await;
    let disabled = commit(
        &store,
        Lead {
            crm: CrmState::new(CrmStatus::Disabled),
            client_ip_hash: None,
            quarantine: None,
            ..lead(&Person::unique(), Form::ProfTest, at(mins(3)))
        },
    )
    .await;
    let marker = |item: &Item| item.get("crm_pending").cloned();
    let waiting = Some(AttributeValue::S("pending".into()));
    assert_eq!(marker(&raw_lead(&store, synced.id).await), waiting);
    assert_eq!(marker(&raw_lead(&store, disabled.id).await), None);

    store
        .mark_crm_synced(
            synced.id,
            9001,
            Some(77),
            &[person.phone_key()],
            at(mins(5)),
        )
        .await
        .expect("mark_crm_synced");
    let item = raw_lead(&store, synced.id).await;
    assert_eq!(marker(&item), None);
    assert_eq!(
        item.get("amocrm_lead_id"),
        Some(&AttributeValue::N("9001".into())),
        "ids are numbers"
    );
    store
        .record_crm_failure(failed.id, "boom", true)
        .await
        .expect("record_crm_failure");
    assert_eq!(marker(&raw_lead(&store, failed.id).await), None);
    store
        .requeue_crm(Requeue::AllFailed)
        .await
        .expect("requeue_crm");
    assert_eq!(marker(&raw_lead(&store, failed.id).await), waiting);
    assert_eq!(pending(&store).await, vec![failed.id]);
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
    let range = |hash: &str| vec![format!("{hash}:HASH"), "created_at:RANGE".to_owned()];
    assert_eq!(
        indexes(&leads),
        [
            ("by-day".to_owned(), range("created_day")),
            ("by-email".to_owned(), range("email_key")),
            ("by-phone".to_owned(), range("phone")),
            ("crm-pending".to_owned(), range("crm_pending")),
        ]
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
            ("by-day".to_owned(), vec!["lead_day:HASH".to_owned()]),
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
    assert_eq!(
        key_of(describe(t.quotas.clone()).await.key_schema()),
        ["key:HASH"]
    );

    for table in [&t.idempotency, &t.quotas] {
        let ttl = c
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .expect("describe_time_to_live")
            .time_to_live_description
            .expect("ttl description");
        assert_eq!(ttl.attribute_name(), Some("ttl"), "{table}");
        assert!(matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ));
    }

    // Creating again is a no-op, not an error (dev stacks re-run it).
    landing_aws_dynamo::create_tables(c, t)
        .await
        .expect("create_tables twice");
}
