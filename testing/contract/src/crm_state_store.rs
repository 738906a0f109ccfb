//! The `CrmStateStore` contract: which leads wait for the CRM sync, how a deal is remembered the
//! moment it exists, how a sync settles (on the lead and on the person's tracking rows), how
//! failures are counted, and how an operator hands leads back.

use landing_core::domain::{CrmState, CrmStatus, Form, Lead, LeadId, PersonKey, Tracking};
use landing_core::ports::Requeue;

use crate::Harness;
use crate::fixtures::*;

async fn committed<H: Harness + ?Sized>(h: &H, lead: Lead) -> Lead {
    commit_ok(h, intake(lead.clone())).await;
    lead
}

async fn stored<H: Harness + ?Sized>(h: &H, id: LeadId) -> Lead {
    h.leads()
        .get_lead(id)
        .await
        .expect("get_lead failed")
        .unwrap_or_else(|| panic!("lead {id} is not stored"))
}

async fn pending<H: Harness + ?Sized>(h: &H) -> Vec<LeadId> {
    h.crm().pending_crm(100).await.expect("pending_crm failed")
}

async fn tracking<H: Harness + ?Sized>(h: &H, key: &PersonKey) -> Option<Tracking> {
    h.leads()
        .get_tracking(key)
        .await
        .expect("get_tracking failed")
}

fn disabled(lead: Lead) -> Lead {
    Lead {
        crm: CrmState::new(CrmStatus::Disabled),
        client_ip_hash: None,
        quarantine: None,
        ..lead
    }
}

pub async fn pending_leads_are_listed_oldest_first_up_to_the_limit<H: Harness + ?Sized>(h: &H) {
    // Committed out of order; `disabled` never waits for the sync.
    let newer = committed(
        h,
        lead(&Person::unique(), Form::ExpressCourse, at(mins(20))),
    )
    .await;
    let older = committed(h, lead(&Person::unique(), Form::ProfTest, at(mins(10)))).await;
    committed(
        h,
        disabled(lead(&Person::unique(), Form::ProfTest, at(mins(5)))),
    )
    .await;
    assert_eq!(pending(h).await, vec![older.id, newer.id]);
    assert_eq!(
        h.crm().pending_crm(1).await.expect("pending_crm failed"),
        vec![older.id]
    );
    assert!(
        h.crm()
            .pending_crm(0)
            .await
            .expect("pending_crm failed")
            .is_empty()
    );
}

pub async fn a_deal_is_remembered_at_once_and_never_creates_a_lead<H: Harness + ?Sized>(h: &H) {
    let l = committed(h, lead(&Person::unique(), Form::ProfTest, at(mins(1)))).await;
    h.crm()
        .record_crm_deal(l.id, 9001, None)
        .await
        .expect("record_crm_deal failed");
    let s = stored(h, l.id).await;
    assert_eq!(s.crm.amocrm_lead_id, Some(9001));
    assert_eq!(s.crm.amocrm_contact_id, None);
    assert_eq!(
        s.crm.status,
        CrmStatus::Pending,
        "remembered before the sync is complete"
    );
    assert_eq!(pending(h).await, vec![l.id]);

    h.crm()
        .record_crm_deal(l.id, 9001, Some(77))
        .await
        .expect("record_crm_deal failed");
    h.crm()
        .record_crm_deal(l.id, 9001, None)
        .await
        .expect("record_crm_deal failed");
    assert_eq!(
        stored(h, l.id).await.crm.amocrm_contact_id,
        Some(77),
        "a known contact is kept when none is given"
    );

    let ghost = LeadId::new();
    h.crm()
        .record_crm_deal(ghost, 1, Some(2))
        .await
        .expect("record_crm_deal of an unknown lead failed");
    assert!(!lead_exists(h, ghost).await, "no lead is created by it");
}

pub async fn a_synced_lead_leaves_pending_and_its_ids_reach_the_persons_tracking_rows<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let person = Person::unique();
    let first = committed(h, lead(&person, Form::ProfTest, at(mins(10)))).await;
    let second = committed(h, lead(&person, Form::ExpressCourse, at(mins(20)))).await;
    let synced_at = at(mins(30));
    let stranger = PersonKey::phone(&Person::unique().phone);
    h.crm()
        .mark_crm_synced(
            first.id,
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
        .expect("mark_crm_synced failed");
    assert_eq!(pending(h).await, vec![second.id]);
    let s = stored(h, first.id).await;
    assert_eq!(s.crm.status, CrmStatus::Synced);
    assert_eq!(
        (s.crm.amocrm_lead_id, s.crm.amocrm_contact_id),
        (Some(9001), Some(77))
    );
    assert_eq!(s.crm.synced_at, Some(synced_at));
    assert_eq!(s.crm.error, None);
    for key in [person.phone_key(), person.email_key()] {
        let t = tracking(h, &key).await.expect("tracking row");
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
        tracking(h, &stranger).await,
        None,
        "an unknown person key is not created"
    );

    // Without a contact id the known one is kept.
    h.crm()
        .mark_crm_synced(second.id, 9002, None, &[person.phone_key()], synced_at)
        .await
        .expect("mark_crm_synced failed");
    let t = tracking(h, &person.phone_key())
        .await
        .expect("tracking row");
    assert_eq!(
        (t.amocrm_lead_id, t.amocrm_contact_id),
        (Some(9002), Some(77))
    );
    assert!(pending(h).await.is_empty());

    // A later intake touch of the person keeps the CRM ids on the tracking row.
    committed(h, lead(&person, Form::ProfTest, at(mins(40)))).await;
    let t = tracking(h, &person.phone_key())
        .await
        .expect("tracking row");
    assert_eq!(
        (t.amocrm_lead_id, t.amocrm_contact_id),
        (Some(9002), Some(77))
    );
    assert_eq!((t.proftest_count, t.expresscourse_count), (2, 1));
}

pub async fn failures_are_counted_and_clipped_and_a_permanent_one_fails_the_lead<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let l = committed(h, lead(&Person::unique(), Form::ProfTest, at(mins(1)))).await;
    let crm = h.crm();
    assert_eq!(
        crm.record_crm_failure(l.id, "HTTP 503", false)
            .await
            .expect("record_crm_failure failed"),
        1
    );
    let long = "x".repeat(5000);
    assert_eq!(
        crm.record_crm_failure(l.id, &long, false)
            .await
            .expect("record_crm_failure failed"),
        2
    );
    let s = stored(h, l.id).await;
    assert_eq!((s.crm.status, s.crm.attempts), (CrmStatus::Pending, 2));
    assert_eq!(
        s.crm.error.as_deref().map(str::len),
        Some(2000),
        "the reason is clipped"
    );
    assert_eq!(
        pending(h).await,
        vec![l.id],
        "a transient failure stays pending"
    );

    assert_eq!(
        crm.record_crm_failure(l.id, "422: invalid phone field", true)
            .await
            .expect("record_crm_failure failed"),
        3
    );
    let s = stored(h, l.id).await;
    assert_eq!((s.crm.status, s.crm.attempts), (CrmStatus::Failed, 3));
    assert_eq!(s.crm.error.as_deref(), Some("422: invalid phone field"));
    assert!(pending(h).await.is_empty(), "failed is not pending");

    assert_eq!(
        crm.record_crm_failure(l.id, "again", false)
            .await
            .expect("record_crm_failure failed"),
        0,
        "a lead that is not pending is not counted"
    );
    assert_eq!(stored(h, l.id).await.crm.attempts, 3);
    assert_eq!(
        crm.record_crm_failure(LeadId::new(), "unknown", true)
            .await
            .expect("record_crm_failure failed"),
        0
    );
}

pub async fn requeue_hands_failed_leads_and_one_disabled_lead_back_to_the_sync<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let crm = h.crm();
    let mut failed = Vec::new();
    for minute in [1, 2] {
        let l = committed(h, lead(&Person::unique(), Form::ProfTest, at(mins(minute)))).await;
        crm.record_crm_failure(l.id, "boom", true)
            .await
            .expect("record_crm_failure failed");
        failed.push(l.id);
    }
    let off = committed(
        h,
        disabled(lead(&Person::unique(), Form::ProfTest, at(mins(3)))),
    )
    .await;
    let waiting = committed(h, lead(&Person::unique(), Form::ProfTest, at(mins(4)))).await;
    assert_eq!(pending(h).await, vec![waiting.id]);

    let requeue = |which| {
        let crm = crm.clone();
        async move { crm.requeue_crm(which).await.expect("requeue_crm failed") }
    };
    assert_eq!(
        requeue(Requeue::Lead(waiting.id)).await,
        0,
        "a pending lead is not requeued"
    );
    assert_eq!(
        requeue(Requeue::Lead(LeadId::new())).await,
        0,
        "unknown lead"
    );
    assert_eq!(requeue(Requeue::Lead(failed[0])).await, 1);
    let s = stored(h, failed[0]).await;
    assert_eq!((s.crm.status, s.crm.attempts), (CrmStatus::Pending, 0));
    assert_eq!(pending(h).await, vec![failed[0], waiting.id]);

    assert_eq!(
        requeue(Requeue::AllFailed).await,
        1,
        "only the one still failed; disabled is not failed"
    );
    assert_eq!(pending(h).await, vec![failed[0], failed[1], waiting.id]);
    assert_eq!(stored(h, off.id).await.crm.status, CrmStatus::Disabled);
    assert_eq!(requeue(Requeue::AllFailed).await, 0);

    assert_eq!(
        requeue(Requeue::Lead(off.id)).await,
        1,
        "one disabled lead can be requeued by id"
    );
    assert_eq!(
        pending(h).await,
        vec![failed[0], failed[1], off.id, waiting.id]
    );
}
