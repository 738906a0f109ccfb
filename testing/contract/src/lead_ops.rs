//! The `LeadOps` contract: an operator's release of a quarantined lead.

use landing_core::domain::{CrmStatus, Form, LeadId, NotificationStatus};
use landing_core::ports::{Released, Resend};

use crate::Harness;
use crate::fixtures::*;

/// Releasing a quarantined lead clears the quarantine, hands it to the CRM sync and makes its
/// suppressed rows fresh pending rows due now; a second release changes nothing.
pub async fn a_released_lead_is_due_now_and_goes_to_the_crm<H: Harness + ?Sized>(h: &H) {
    let w = quarantined_intake(&Person::unique(), at(secs(1)));
    let lead = w.lead.clone();
    commit_ok(h, w).await;
    let now = at(mins(30));
    assert_eq!(
        h.ops()
            .release_quarantined(lead.id, CrmStatus::Pending, now)
            .await
            .expect("release failed"),
        Released::Released { notifications: 2 }
    );
    let stored = h
        .leads()
        .get_lead(lead.id)
        .await
        .expect("get_lead")
        .expect("stored");
    assert_eq!(stored.quarantine, None);
    assert_eq!(stored.crm.status, CrmStatus::Pending);
    assert_eq!(
        stored.client_ip_hash, lead.client_ip_hash,
        "the address hash stays"
    );
    assert!(
        h.crm()
            .pending_crm(100)
            .await
            .expect("pending_crm")
            .contains(&lead.id)
    );
    for n in rows_of(h, lead.id).await {
        assert_eq!(n.status, NotificationStatus::Pending);
        assert_eq!(n.send_at, now, "due at once");
        assert_eq!(n.attempts, 0);
        assert_eq!(n.suppressed_reason, None);
    }
    assert_eq!(
        h.notifications().next_due().await.expect("next_due"),
        Some(now)
    );
    assert_eq!(
        h.notifications()
            .claim_due(now, now, LEASE, 10)
            .await
            .expect("claim_due")
            .len(),
        2
    );
    assert_eq!(
        h.ops()
            .release_quarantined(lead.id, CrmStatus::Pending, now)
            .await
            .expect("release failed"),
        Released::NotQuarantined,
        "released once"
    );
}

/// An ordinary lead is not touched by a release; an unknown id is reported as such.
pub async fn release_changes_nothing_for_an_ordinary_or_unknown_lead<H: Harness + ?Sized>(h: &H) {
    let w = intake(lead(&Person::unique(), Form::ExpressCourse, at(secs(1))));
    let lead = w.lead.clone();
    let rows = commit_ok(h, w).await;
    assert_eq!(
        h.ops()
            .release_quarantined(lead.id, CrmStatus::Disabled, at(mins(1)))
            .await
            .expect("release failed"),
        Released::NotQuarantined
    );
    assert_eq!(
        h.leads().get_lead(lead.id).await.expect("get_lead"),
        Some(lead.clone())
    );
    assert_eq!(rows_of(h, lead.id).await, rows);
    assert_eq!(
        h.ops()
            .release_quarantined(LeadId::new(), CrmStatus::Pending, at(mins(1)))
            .await
            .expect("release failed"),
        Released::NotFound
    );
}

/// `notify resend`: failed rows become fresh pending rows due now — one lead's, or every one of
/// the leads created since an instant; other rows are left alone.
pub async fn resend_makes_failed_rows_due_now_for_one_lead_or_since_an_instant<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let store = h.notifications();
    for i in 0..3 {
        commit_ok(h, intake(phone_only_lead(at(mins(i))))).await;
    }
    let due = plus(at(mins(2)), NOTIFY_DELAY);
    let claimed = store
        .claim_due(due, due, LEASE, 10)
        .await
        .expect("claim_due");
    assert_eq!(claimed.len(), 3);
    for n in &claimed[..2] {
        assert!(
            store
                .mark_failed(n.id, 1, "invalid number", due)
                .await
                .expect("mark_failed")
        );
    }
    assert!(
        store
            .mark_sent(claimed[2].id, 1, "p-1", due)
            .await
            .expect("mark_sent")
    );
    let failed_lead = claimed[0].lead_id;
    let now = plus(due, mins(60));
    assert_eq!(
        h.ops()
            .resend_failed(Resend::Lead(failed_lead), now)
            .await
            .expect("resend"),
        1
    );
    let row = &rows_of(h, failed_lead).await[0];
    assert_eq!(
        (
            row.status,
            row.send_at,
            row.attempts,
            row.last_error.as_deref(),
            row.failed_at
        ),
        (NotificationStatus::Pending, now, 0, None, None)
    );
    // Since an instant before every lead: only the other failed row is left to resend.
    assert_eq!(
        h.ops()
            .resend_failed(Resend::FailedSince(at(mins(0))), now)
            .await
            .expect("resend"),
        1
    );
    assert_eq!(
        h.ops()
            .resend_failed(Resend::FailedSince(at(mins(0))), now)
            .await
            .expect("resend"),
        0,
        "nothing failed any more"
    );
    let sent = &rows_of(h, claimed[2].lead_id).await[0];
    assert_eq!(
        sent.status,
        NotificationStatus::Sent,
        "a sent row is not resent"
    );
    assert_eq!(
        store
            .claim_due(now, now, LEASE, 10)
            .await
            .expect("claim_due")
            .len(),
        2
    );
}
