//! The `LeadOps` contract: an operator's release of a quarantined lead.

use landing_core::domain::{CrmStatus, Form, LeadId, NotificationStatus};
use landing_core::ports::Released;

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
