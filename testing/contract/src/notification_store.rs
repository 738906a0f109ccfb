//! The `NotificationStore` contract: claims with leases, the claim token (`attempts`), and the
//! transitions out of `sending`.

use std::collections::HashSet;

use landing_core::domain::{
    EmailFeedback, Form, HoldReason, LeadId, Notification, NotificationStatus, SuppressReason,
};
use landing_core::ports::EmailEventRecord;
use uuid::Uuid;

use crate::Harness;
use crate::fixtures::*;

async fn claim_due<H: Harness + ?Sized>(
    h: &H,
    now: jiff::Timestamp,
    limit: usize,
) -> Vec<Notification> {
    h.notifications()
        .claim_due(now, now, LEASE, limit)
        .await
        .expect("claim_due failed")
}

async fn claim_for_lead<H: Harness + ?Sized>(
    h: &H,
    lead: LeadId,
    now: jiff::Timestamp,
) -> Vec<Notification> {
    h.notifications()
        .claim_for_lead(lead, now, now, LEASE)
        .await
        .expect("claim_for_lead failed")
}

async fn mark_sent<H: Harness + ?Sized>(
    h: &H,
    n: &Notification,
    attempt: u32,
    now: jiff::Timestamp,
) -> bool {
    h.notifications()
        .mark_sent(n.id, attempt, &format!("provider-{}", n.id.simple()), now)
        .await
        .expect("mark_sent failed")
}

async fn release<H: Harness + ?Sized>(
    h: &H,
    n: &Notification,
    attempt: u32,
    retry_at: jiff::Timestamp,
) -> bool {
    h.notifications()
        .release(n.id, attempt, "throttled", retry_at)
        .await
        .expect("release failed")
}

async fn mark_failed<H: Harness + ?Sized>(
    h: &H,
    n: &Notification,
    attempt: u32,
    now: jiff::Timestamp,
) -> bool {
    h.notifications()
        .mark_failed(n.id, attempt, "invalid number", now)
        .await
        .expect("mark_failed failed")
}

async fn next_due<H: Harness + ?Sized>(h: &H) -> Option<jiff::Timestamp> {
    h.notifications().next_due().await.expect("next_due failed")
}

/// The claimed form of a pending row: `sending`, one more attempt, leased until `now + LEASE`.
fn claimed(pending: &Notification, now: jiff::Timestamp) -> Notification {
    Notification {
        status: NotificationStatus::Sending,
        attempts: pending.attempts + 1,
        claimed_until: Some(plus(now, LEASE)),
        ..pending.clone()
    }
}

fn assert_claimed(got: &Notification, pending: &Notification, now: jiff::Timestamp) {
    assert_eq!(got.id, pending.id);
    assert_eq!(got.lead_id, pending.lead_id);
    assert_eq!(got.channel(), pending.channel());
    assert_eq!(got.recipient, pending.recipient);
    assert_eq!(got.source_campaign, pending.source_campaign);
    assert_eq!(
        got.send_at, pending.send_at,
        "a claim does not move send_at"
    );
    assert_eq!(got.status, NotificationStatus::Sending, "status");
    assert_eq!(got.attempts, pending.attempts + 1, "attempts");
    assert_eq!(
        got.claimed_until,
        Some(plus(now, LEASE)),
        "claimed_until = now + lease"
    );
    assert_eq!(got.provider_message_id, None);
    assert_eq!(got.sent_at, None);
}

/// A pending row is not claimable a millisecond before its `send_at`, and is at `send_at`.
pub async fn nothing_is_claimable_before_send_at<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let w = write(
        lead(&Person::unique(), Form::ProfTest, at(mins(0))),
        send_at,
    );
    let lead_id = w.lead.id;
    let rows = commit_ok(h, w).await;
    assert_eq!(rows.len(), 2);

    let early = minus(send_at, millis(1));
    assert!(
        claim_due(h, early, 100).await.is_empty(),
        "claim_due before send_at"
    );
    assert!(
        claim_for_lead(h, lead_id, early).await.is_empty(),
        "claim_for_lead before send_at"
    );
    assert_eq!(
        rows_of(h, lead_id).await,
        rows,
        "rows still pending and untouched"
    );
    assert_eq!(next_due(h).await, Some(send_at));

    let got = sorted(claim_due(h, send_at, 100).await);
    assert_eq!(ids(&got), ids(&rows), "due at send_at");
}

/// A due row is claimed once: the claim moves it to `sending` with `attempts = 1` and
/// `claimed_until = now + lease`; a second claim (any claimer, within the lease) gets nothing.
pub async fn due_row_is_claimed_once_with_lease_and_attempt<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let w = write(
        lead(&Person::unique(), Form::ExpressCourse, at(mins(0))),
        send_at,
    );
    let lead_id = w.lead.id;
    let pending = commit_ok(h, w).await;

    let now = plus(send_at, secs(1));
    let got = sorted(claim_due(h, now, 100).await);
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&pending) {
        assert_claimed(g, p, now);
    }
    let expected: Vec<_> = pending.iter().map(|p| claimed(p, now)).collect();
    assert_eq!(
        rows_of(h, lead_id).await,
        expected,
        "the stored rows show the claim"
    );

    assert!(claim_due(h, now, 100).await.is_empty(), "second claim_due");
    assert!(
        claim_for_lead(h, lead_id, now).await.is_empty(),
        "second claim_for_lead"
    );
    let still_leased = minus(plus(now, LEASE), millis(1));
    assert!(
        claim_due(h, still_leased, 100).await.is_empty(),
        "within the lease"
    );
    assert_eq!(
        rows_of(h, lead_id).await,
        expected,
        "failed claims change nothing"
    );
}

/// Four claimers racing over forty due rows: no row is handed to two of them, and together they
/// take every row, each exactly once with `attempts = 1`.
pub async fn concurrent_claimers_never_share_a_row_and_take_every_row<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let mut all = Vec::new();
    for i in 0..20 {
        let w = write(
            lead(&Person::unique(), Form::ProfTest, at(millis(i))),
            send_at,
        );
        all.extend(commit_ok(h, w).await);
    }
    assert_eq!(all.len(), 40);

    let now = plus(send_at, secs(1));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(4));
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let store = h.notifications();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_due(now, now, LEASE, 3)
                        .await
                        .expect("claim_due failed");
                    if got.is_empty() {
                        return mine;
                    }
                    assert!(got.len() <= 3, "limit honoured");
                    mine.extend(got);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut taken = Vec::new();
    for c in claimers {
        for n in c.await.expect("claimer panicked") {
            assert!(seen.insert(n.id), "row {} was handed out twice", n.id);
            assert_eq!(n.attempts, 1, "a row claimed once has attempts 1");
            assert_eq!(n.status, NotificationStatus::Sending);
            taken.push(n);
        }
    }
    assert_eq!(
        ids(&taken),
        ids(&all),
        "together the claimers took every row"
    );
}

/// After the lease runs out the row is claimable again (attempts 2), and the old holder can no
/// longer settle it; the new holder can.
pub async fn expired_lease_is_claimable_again_and_voids_the_old_claim<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let t1 = plus(send_at, secs(2));
    let first = claim_due(h, t1, 10).await;
    assert_eq!(first.len(), 1);
    assert_claimed(&first[0], &pending, t1);
    let lease_end = plus(t1, LEASE);

    assert!(
        claim_due(h, minus(lease_end, millis(1)), 10)
            .await
            .is_empty(),
        "not claimable while the lease holds"
    );
    assert_eq!(
        next_due(h).await,
        Some(lease_end),
        "the lease end is the next due instant"
    );

    let t2 = plus(lease_end, millis(1));
    let second = claim_due(h, t2, 10).await;
    assert_eq!(second.len(), 1, "claimable once the lease expired");
    assert_eq!(second[0].id, pending.id);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(second[0].status, NotificationStatus::Sending);
    assert_eq!(second[0].claimed_until, Some(plus(t2, LEASE)));

    assert!(
        !mark_sent(h, &pending, 1, t2).await,
        "old holder's mark_sent"
    );
    assert!(
        !release(h, &pending, 1, at(hours(1))).await,
        "old holder's release"
    );
    assert!(
        !mark_failed(h, &pending, 1, t2).await,
        "old holder's mark_failed"
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Sending);
    assert_eq!(stored.attempts, 2);
    assert_eq!(stored.claimed_until, Some(plus(t2, LEASE)));

    assert!(
        mark_sent(h, &pending, 2, plus(t2, secs(1))).await,
        "new holder's mark_sent"
    );
    assert_eq!(
        row(h, pending.lead_id, pending.id).await.status,
        NotificationStatus::Sent
    );
}

/// `mark_sent` settles the row as `sent` with the provider's id and `sent_at`; it is never
/// claimed again and cannot be settled a second time.
pub async fn mark_sent_settles_the_row_for_good<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);

    let sent_at = plus(now, millis(250));
    assert!(
        h.notifications()
            .mark_sent(pending.id, 1, "sns-msg-0001", sent_at)
            .await
            .expect("mark_sent failed"),
        "the holder's mark_sent"
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Sent);
    assert_eq!(stored.provider_message_id.as_deref(), Some("sns-msg-0001"));
    assert_eq!(stored.sent_at, Some(sent_at));
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.send_at, pending.send_at);

    let much_later = plus(now, hours(24 * 30));
    assert!(
        claim_due(h, much_later, 10).await.is_empty(),
        "never claimed again"
    );
    assert!(
        claim_for_lead(h, pending.lead_id, much_later)
            .await
            .is_empty()
    );
    assert!(
        !mark_sent(h, &pending, 1, much_later).await,
        "second mark_sent"
    );
    assert!(
        !release(h, &pending, 1, much_later).await,
        "release after sent"
    );
    assert!(
        !mark_failed(h, &pending, 1, much_later).await,
        "mark_failed after sent"
    );
    assert_eq!(
        h.notifications()
            .release_all_claims()
            .await
            .expect("release_all_claims"),
        0
    );
    assert_eq!(
        row(h, pending.lead_id, pending.id).await,
        stored,
        "the sent row is unchanged"
    );
    assert_eq!(next_due(h).await, None);
}

/// `release` puts the row back to `pending` at `retry_at` with `last_error`; it is not
/// claimable before `retry_at` and is claimable (attempts 2) from then on.
pub async fn release_returns_the_row_to_pending_at_retry_at<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);

    let retry_at = plus(now, mins(5));
    assert!(
        h.notifications()
            .release(pending.id, 1, "SNS throttled: Rate exceeded", retry_at)
            .await
            .expect("release failed"),
        "the holder's release"
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Pending);
    assert_eq!(stored.send_at, retry_at);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("SNS throttled: Rate exceeded")
    );
    assert_eq!(stored.attempts, 1, "release keeps the attempt count");
    assert_eq!(stored.provider_message_id, None);
    assert_eq!(stored.sent_at, None);
    assert_eq!(next_due(h).await, Some(retry_at));

    // Long after the old lease but before retry_at: still not claimable.
    let before = minus(retry_at, millis(1));
    assert!(
        claim_due(h, before, 10).await.is_empty(),
        "claim_due before retry_at"
    );
    assert!(claim_for_lead(h, pending.lead_id, before).await.is_empty());
    assert!(
        !mark_sent(h, &pending, 1, before).await,
        "a released claim cannot be sent"
    );

    let again = claim_due(h, retry_at, 10).await;
    assert_eq!(again.len(), 1, "claimable at retry_at");
    assert_eq!(again[0].id, pending.id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].claimed_until, Some(plus(retry_at, LEASE)));
    assert!(
        !release(h, &pending, 1, plus(retry_at, mins(5))).await,
        "stale release"
    );
}

/// `mark_failed` is final: the row stays `failed` with its reason, is never claimed again, and
/// nothing settles it afterwards.
pub async fn mark_failed_is_final<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);

    assert!(
        h.notifications()
            .mark_failed(pending.id, 1, "InvalidParameter: invalid phone number", now)
            .await
            .expect("mark_failed failed"),
        "the holder's mark_failed"
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Failed);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("InvalidParameter: invalid phone number")
    );
    assert_eq!(stored.provider_message_id, None);
    assert_eq!(stored.sent_at, None);
    assert_eq!(stored.failed_at, Some(now), "when it was given up");

    let much_later = plus(now, hours(24 * 30));
    assert!(
        claim_due(h, much_later, 10).await.is_empty(),
        "never claimed again"
    );
    assert!(
        claim_for_lead(h, pending.lead_id, much_later)
            .await
            .is_empty()
    );
    assert!(!mark_sent(h, &pending, 1, much_later).await);
    assert!(!release(h, &pending, 1, much_later).await);
    assert!(!mark_failed(h, &pending, 1, much_later).await);
    assert_eq!(
        h.notifications()
            .release_all_claims()
            .await
            .expect("release_all_claims"),
        0
    );
    assert_eq!(
        row(h, pending.lead_id, pending.id).await,
        stored,
        "the failed row is unchanged"
    );
    assert_eq!(next_due(h).await, None);
}

/// Transitions out of `sending` need the current claim: an unclaimed row or an unknown id is
/// refused (`false`) and nothing changes.
pub async fn settling_without_the_current_claim_is_refused<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    for attempt in [0, 1] {
        assert!(
            !mark_sent(h, &pending, attempt, now).await,
            "mark_sent of a pending row"
        );
        assert!(
            !release(h, &pending, attempt, now).await,
            "release of a pending row"
        );
        assert!(
            !mark_failed(h, &pending, attempt, now).await,
            "mark_failed of a pending row"
        );
    }
    assert_eq!(
        row(h, pending.lead_id, pending.id).await,
        pending,
        "the row is unchanged"
    );

    let claimed = claim_due(h, now, 10).await;
    assert_eq!(claimed.len(), 1);
    for attempt in [0, 2] {
        assert!(
            !mark_sent(h, &pending, attempt, now).await,
            "mark_sent with attempt {attempt}"
        );
        assert!(
            !release(h, &pending, attempt, now).await,
            "release with attempt {attempt}"
        );
        assert!(
            !mark_failed(h, &pending, attempt, now).await,
            "mark_failed with attempt {attempt}"
        );
    }
    assert_eq!(
        row(h, pending.lead_id, pending.id).await,
        claimed[0],
        "the claim is intact"
    );

    let stranger = Notification {
        id: Uuid::now_v7(),
        ..pending.clone()
    };
    assert!(!mark_sent(h, &stranger, 1, now).await, "unknown id");
    assert!(!release(h, &stranger, 1, now).await, "unknown id");
    assert!(!mark_failed(h, &stranger, 1, now).await, "unknown id");
}

/// `next_due` is the earliest instant some row becomes claimable: a pending row's `send_at` or
/// a claimed row's lease end; `None` when there are no rows or every row is settled.
pub async fn next_due_reports_the_earliest_claimable_instant<H: Harness + ?Sized>(h: &H) {
    assert_eq!(next_due(h).await, None, "empty store");
    let later = commit_row_due_at(h, at(mins(10))).await;
    let sooner = commit_row_due_at(h, at(mins(5))).await;
    assert_eq!(
        next_due(h).await,
        Some(at(mins(5))),
        "earliest pending send_at"
    );

    let t = at(mins(6));
    let got = claim_due(h, t, 10).await;
    assert_eq!(ids(&got), vec![sooner.id]);
    assert_eq!(
        next_due(h).await,
        Some(plus(t, LEASE)),
        "lease end before the other send_at"
    );

    assert!(mark_sent(h, &sooner, 1, plus(t, secs(1))).await);
    assert_eq!(
        next_due(h).await,
        Some(at(mins(10))),
        "a sent row is not due"
    );

    let t = at(mins(11));
    let got = claim_due(h, t, 10).await;
    assert_eq!(ids(&got), vec![later.id]);
    assert_eq!(
        next_due(h).await,
        Some(plus(t, LEASE)),
        "the claimed row's lease end"
    );

    assert!(release(h, &later, 1, at(mins(20))).await);
    assert_eq!(
        next_due(h).await,
        Some(at(mins(20))),
        "a released row's retry_at"
    );

    let t = at(mins(21));
    assert_eq!(claim_due(h, t, 10).await.len(), 1);
    assert!(mark_failed(h, &later, 2, t).await);
    assert_eq!(next_due(h).await, None, "every row settled");
}

/// `claim_for_lead` takes that lead's due rows and nothing else.
pub async fn claim_for_lead_takes_only_that_leads_due_rows<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let a = write(
        lead(&Person::unique(), Form::ProfTest, at(mins(0))),
        send_at,
    );
    let b = write(
        lead(&Person::unique(), Form::ExpressCourse, at(mins(0))),
        send_at,
    );
    let c = write(
        lead(&Person::unique(), Form::ProfTest, at(mins(5))),
        at(mins(15)),
    );
    let (a_id, b_id, c_id) = (a.lead.id, b.lead.id, c.lead.id);
    let a_rows = commit_ok(h, a).await;
    let b_rows = commit_ok(h, b).await;
    let c_rows = commit_ok(h, c).await;

    let now = plus(send_at, secs(1));
    let got = sorted(claim_for_lead(h, a_id, now).await);
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&a_rows) {
        assert_claimed(g, p, now);
    }
    assert_eq!(
        rows_of(h, b_id).await,
        b_rows,
        "another lead's due rows stay pending"
    );
    assert!(
        claim_for_lead(h, c_id, now).await.is_empty(),
        "a lead whose rows are not due"
    );
    assert_eq!(rows_of(h, c_id).await, c_rows);
    assert!(
        claim_for_lead(h, a_id, now).await.is_empty(),
        "already claimed"
    );
    assert!(
        claim_for_lead(h, LeadId::new(), now).await.is_empty(),
        "unknown lead"
    );

    let rest = claim_due(h, now, 100).await;
    assert_eq!(
        ids(&rest),
        ids(&b_rows),
        "claim_due finds only the other lead's rows"
    );
}

/// `release_all_claims` turns every `sending` row (and only those) back to `pending`, returns
/// how many, and the released rows are claimable again with the next attempt.
pub async fn release_all_claims_hands_every_sending_row_back<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let mut rows = Vec::new();
    for i in 0..3 {
        rows.push(commit_row_due_at(h, plus(send_at, secs(i))).await);
    }
    let unclaimed = commit_row_due_at(h, plus(send_at, secs(100))).await;
    let now = plus(send_at, secs(10));
    let claimed = claim_due(h, now, 10).await;
    assert_eq!(ids(&claimed), ids(&rows));
    assert!(mark_sent(h, &rows[0], 1, now).await);

    assert_eq!(
        h.notifications()
            .release_all_claims()
            .await
            .expect("release_all_claims"),
        2,
        "two rows were sending"
    );
    for r in &rows[1..] {
        let stored = row(h, r.lead_id, r.id).await;
        assert_eq!(stored.status, NotificationStatus::Pending, "released");
        assert!(!mark_sent(h, r, 1, now).await, "the released claim is void");
    }
    assert_eq!(
        row(h, rows[0].lead_id, rows[0].id).await.status,
        NotificationStatus::Sent
    );
    assert_eq!(
        row(h, unclaimed.lead_id, unclaimed.id).await,
        unclaimed,
        "pending row untouched"
    );
    assert_eq!(
        h.notifications()
            .release_all_claims()
            .await
            .expect("release_all_claims"),
        0,
        "nothing is sending any more"
    );

    // Claimable again at once, before the old lease would have ended.
    let again = claim_due(h, now, 10).await;
    assert_eq!(ids(&again), ids(&rows[1..]));
    assert!(
        again.iter().all(|n| n.attempts == 2),
        "the next claim is attempt 2"
    );
}

/// `claim_due` takes at most `limit` rows, the earliest `send_at` first, and returns them in
/// that order.
pub async fn claim_due_honours_limit_and_takes_the_oldest_first<H: Harness + ?Sized>(h: &H) {
    let mut by_minute = Vec::new();
    for minute in [5, 1, 4, 2, 3] {
        by_minute.push((minute, commit_row_due_at(h, at(mins(minute))).await));
    }
    by_minute.sort_by_key(|(m, _)| *m);
    let expected: Vec<Uuid> = by_minute.iter().map(|(_, n)| n.id).collect();
    let now = at(mins(10));

    let first = claim_due(h, now, 2).await;
    assert_eq!(
        first.iter().map(|n| n.id).collect::<Vec<_>>(),
        expected[0..2],
        "first two"
    );
    let second = claim_due(h, now, 2).await;
    assert_eq!(
        second.iter().map(|n| n.id).collect::<Vec<_>>(),
        expected[2..4],
        "next two"
    );
    let third = claim_due(h, now, 2).await;
    assert_eq!(
        third.iter().map(|n| n.id).collect::<Vec<_>>(),
        expected[4..5],
        "the last one"
    );
    assert!(claim_due(h, now, 2).await.is_empty());
}

/// A pending row is due when its `send_at` is at or before `due_by`; a claimed row is taken
/// back when its lease has run out by `now`; the new lease always runs from `now`.
pub async fn claim_due_checks_send_at_against_due_by_and_leases_against_now<H: Harness + ?Sized>(
    h: &H,
) {
    let leased = commit_row_due_at(h, at(mins(0))).await;
    let t0 = at(mins(1));
    assert_eq!(ids(&claim_due(h, t0, 10).await), vec![leased.id]);
    let lease_end = plus(t0, LEASE);
    let pending = commit_row_due_at(h, at(mins(5))).await;

    // Looking ahead: `due_by` reaches the pending row, `now` is still inside the other's lease.
    let now = plus(t0, secs(10));
    let got = h
        .notifications()
        .claim_due(at(mins(10)), now, LEASE, 10)
        .await
        .expect("claim_due failed");
    assert_eq!(
        ids(&got),
        vec![pending.id],
        "due by due_by; the lease still holds at now"
    );
    assert_claimed(&got[0], &pending, now);

    // Looking back: `due_by` is long past, but the lease has run out by `now`.
    let row_after = commit_row_due_at(h, at(mins(2))).await;
    let now = plus(lease_end, millis(1));
    let got = h
        .notifications()
        .claim_due(at(mins(0)), now, LEASE, 10)
        .await
        .expect("claim_due failed");
    assert_eq!(
        ids(&got),
        vec![leased.id],
        "expired by now, whatever due_by says"
    );
    assert_eq!(got[0].attempts, 2);
    assert_eq!(got[0].claimed_until, Some(plus(now, LEASE)));

    // The same rule for one lead's rows.
    let got = h
        .notifications()
        .claim_for_lead(row_after.lead_id, at(mins(1)), at(mins(3)), LEASE)
        .await
        .expect("claim_for_lead failed");
    assert!(got.is_empty(), "send_at is after due_by, though before now");
    let got = h
        .notifications()
        .claim_for_lead(row_after.lead_id, at(mins(2)), at(mins(1)), LEASE)
        .await
        .expect("claim_for_lead failed");
    assert_eq!(
        ids(&got),
        vec![row_after.id],
        "send_at is at due_by, though after now"
    );
    assert_eq!(got[0].claimed_until, Some(plus(at(mins(1)), LEASE)));
}

/// `suppress` ends the row for good with its reason: never claimed again, not due.
pub async fn suppress_is_final_and_keeps_its_reason<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);
    assert!(
        h.notifications()
            .suppress(pending.id, 1, SuppressReason::PrefixLimit, now)
            .await
            .expect("suppress failed")
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Suppressed);
    assert_eq!(stored.suppressed_reason, Some(SuppressReason::PrefixLimit));
    assert_eq!(stored.claimed_until, None);
    assert_eq!(stored.sent_at, None);
    assert_eq!(next_due(h).await, None, "a suppressed row is not due");
    let much_later = plus(now, mins(24 * 60));
    assert!(claim_due(h, much_later, 10).await.is_empty());
    assert!(
        claim_for_lead(h, pending.lead_id, much_later)
            .await
            .is_empty()
    );
    assert!(!mark_sent(h, &pending, 1, much_later).await);
}

/// `hold` hands the claim back uncounted: pending, due at `until` with the reason, the same
/// attempts as before the claim; the next claim clears the reason.
pub async fn hold_makes_the_row_due_later_without_using_an_attempt<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);
    let until = at(mins(60));
    assert!(
        h.notifications()
            .hold(pending.id, 1, until, HoldReason::Budget)
            .await
            .expect("hold failed")
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Pending);
    assert_eq!(stored.send_at, until);
    assert_eq!(stored.attempts, 0, "a hold is not an attempt");
    assert_eq!(stored.hold_reason, Some(HoldReason::Budget));
    assert_eq!(stored.claimed_until, None);
    assert_eq!(next_due(h).await, Some(until));
    assert!(claim_due(h, minus(until, millis(1)), 10).await.is_empty());
    let again = claim_due(h, until, 10).await;
    assert_eq!(again.len(), 1, "due at until");
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].hold_reason, None, "a claim clears the hold");
    assert!(mark_sent(h, &again[0], 1, until).await);
}

/// Like every transition out of `sending`, `suppress` and `hold` need the latest claim.
pub async fn suppress_and_hold_need_the_current_claim<H: Harness + ?Sized>(h: &H) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let store = h.notifications();
    assert!(
        !store
            .suppress(pending.id, 0, SuppressReason::PhoneLimit, send_at)
            .await
            .expect("suppress"),
        "an unclaimed row cannot be suppressed"
    );
    assert!(
        !store
            .hold(pending.id, 0, at(mins(60)), HoldReason::Budget)
            .await
            .expect("hold"),
        "an unclaimed row cannot be held"
    );
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 1);
    // The lease runs out and someone else claims: the first claim's token is stale.
    let later = plus(now, plus_lease());
    assert_eq!(claim_due(h, later, 10).await.len(), 1);
    assert!(
        !store
            .suppress(pending.id, 1, SuppressReason::PhoneLimit, later)
            .await
            .expect("suppress")
    );
    assert!(
        !store
            .hold(pending.id, 1, at(mins(60)), HoldReason::Budget)
            .await
            .expect("hold")
    );
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(stored.status, NotificationStatus::Sending);
    assert_eq!(stored.attempts, 2);
}

fn plus_lease() -> std::time::Duration {
    LEASE + secs(1)
}

/// What the provider reports after a row was sent lands on that row, whatever its status, and
/// nowhere else; the same event twice writes the same; an unknown row is reported as such.
pub async fn email_events_land_on_their_sent_row_and_a_repeat_writes_the_same<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let send_at = at(mins(10));
    let pending = commit_row_due_at(h, send_at).await;
    let other = commit_row_due_at(h, send_at).await;
    let now = plus(send_at, secs(1));
    assert_eq!(claim_due(h, now, 10).await.len(), 2);
    assert!(mark_sent(h, &pending, 1, now).await);
    let store = h.notifications();
    let delivered_at = plus(now, secs(3));
    for _ in 0..2 {
        assert!(
            store
                .record_email_event(
                    pending.id,
                    &EmailEventRecord::Delivered { at: delivered_at }
                )
                .await
                .expect("record_email_event failed")
        );
    }
    let complaint = EmailEventRecord::Feedback {
        kind: EmailFeedback::Complained,
        detail: "abuse".into(),
    };
    for _ in 0..2 {
        assert!(
            store
                .record_email_event(pending.id, &complaint)
                .await
                .expect("record_email_event failed")
        );
    }
    let stored = row(h, pending.lead_id, pending.id).await;
    assert_eq!(
        stored.status,
        NotificationStatus::Sent,
        "an event settles nothing"
    );
    assert_eq!(stored.delivered_at, Some(delivered_at));
    assert_eq!(stored.feedback, Some(EmailFeedback::Complained));
    assert_eq!(stored.feedback_detail.as_deref(), Some("abuse"));
    assert_eq!(stored.sent_at, Some(now));

    let untouched = row(h, other.lead_id, other.id).await;
    assert_eq!(
        (
            untouched.delivered_at,
            untouched.feedback,
            untouched.feedback_detail
        ),
        (None, None, None),
        "another row"
    );
    assert!(
        !store
            .record_email_event(Uuid::now_v7(), &complaint)
            .await
            .expect("record_email_event failed"),
        "unknown id"
    );
}
