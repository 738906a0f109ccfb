//! The `LeadStore` contract: the atomic intake write, idempotency, tracking, and reads of what
//! was written.

use std::collections::HashSet;

use landing_core::domain::{
    Contact, CrmState, CrmStatus, Email, Form, Lead, LeadId, PaymentMethod, PersonKey, PersonName,
    Phone, Slug, SourceCampaign, Tracking, Utm,
};
use landing_core::ports::IntakeOutcome;
use serde_json::json;
use uuid::Uuid;

use crate::Harness;
use crate::fixtures::*;

async fn tracking<H: Harness + ?Sized>(h: &H, key: &PersonKey) -> Option<Tracking> {
    h.leads()
        .get_tracking(key)
        .await
        .expect("get_tracking failed")
}

async fn counts<H: Harness + ?Sized>(h: &H, key: &PersonKey) -> (u32, u32) {
    let t = tracking(h, key)
        .await
        .unwrap_or_else(|| panic!("no tracking row for {key:?}"));
    (t.proftest_count, t.expresscourse_count)
}

/// Every due row in the store (claims them; only for cases that are done with the rows).
async fn claim_everything<H: Harness + ?Sized>(h: &H) -> Vec<Uuid> {
    let far = at(hours(24 * 365));
    let rows = h
        .notifications()
        .claim_due(far, far, LEASE, 10_000)
        .await
        .expect("claim_due failed");
    ids(&rows)
}

/// A lead with every optional field set: unicode name, nested metadata, all five UTM
/// parameters, referrer and page URL, warnings, a slugged campaign, a payment method, a valid
/// phone and an invalid email kept raw.
pub async fn committed_lead_reads_back_field_for_field<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let slug = Slug::parse("kenesary").expect("valid slug");
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "test_result".to_owned(),
        json!({
            "type": "Исследователь",
            "scores": [3, 1, 4, 1, 5],
            "complete": true,
            "ratio": 0.5,
            "nothing": null,
            "nested": {"deep": ["қазақ тілі", "🎓"]}
        }),
    );
    metadata.insert(
        "quote".to_owned(),
        json!("«ёлка» \"quoted\" \\ back\nslash\ttab"),
    );
    metadata.insert("count".to_owned(), json!(-42));
    let lead = Lead {
        id: LeadId::new(),
        created_at: at(millis(1_234)),
        form: Form::ExpressCourse,
        source_campaign: SourceCampaign::new(Form::ExpressCourse, Some(&slug)),
        name: PersonName::parse("Айгерим Қасымова-Núñez 🎓 O'Brien").expect("a valid name"),
        email: Contact::Invalid("aigerim at mail dot kz".to_owned()),
        phone: Contact::Valid(person.phone.clone()),
        payment_method: Some(PaymentMethod::Halyk),
        metadata: Some(metadata),
        utm: Utm {
            source: Some("instagram".to_owned()),
            medium: Some("cpc".to_owned()),
            campaign: Some("весна_2026".to_owned()),
            content: Some("stories 1".to_owned()),
            term: Some("курс & оплата".to_owned()),
        },
        referrer: Some("https://l.instagram.com/?u=https%3A%2F%2Fexample.kz&e=AT0".to_owned()),
        page_url: Some(
            "https://example.kz/integrator/expresscourse/kenesary?utm_source=instagram&x=ü"
                .to_owned(),
        ),
        warnings: vec![
            "email: is not a valid email address".to_owned(),
            "второе предупреждение".to_owned(),
        ],
        correlation_id: format!("corr-{}", Uuid::now_v7()),
        crm: CrmState::new(CrmStatus::Pending),
        client_ip_hash: Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned()),
        quarantine: None,
    };
    commit_ok(h, intake(lead.clone())).await;

    let stored = h
        .leads()
        .get_lead(lead.id)
        .await
        .expect("get_lead failed")
        .expect("the committed lead is readable");
    match &stored.email {
        Contact::Invalid(raw) => assert_eq!(raw, "aigerim at mail dot kz"),
        other => panic!("invalid email must stay Contact::Invalid, got {other:?}"),
    }
    assert_eq!(stored.metadata, lead.metadata, "metadata");
    assert_eq!(stored.utm, lead.utm, "utm");
    assert_eq!(stored.warnings, lead.warnings, "warnings");
    assert_eq!(stored.name, lead.name, "name");
    assert_eq!(stored.created_at, lead.created_at, "created_at");
    assert_eq!(stored, lead, "every field reads back as written");
}

/// Leads with the optional parts missing: an absent phone and a valid email whose local part
/// has capitals; an invalid phone and an absent email; no metadata, UTM, referrer, warnings.
pub async fn sparse_leads_read_back_field_for_field<H: Harness + ?Sized>(h: &H) {
    let email_only = Lead {
        phone: Contact::Absent,
        crm: CrmState::new(CrmStatus::Disabled),
        client_ip_hash: None,
        quarantine: None,
        ..lead(&Person::unique(), Form::ProfTest, at(secs(1)))
    };
    let invalid_phone = Lead {
        phone: Contact::Invalid("8 777 12".to_owned()),
        email: Contact::Absent,
        warnings: vec!["phone: is not a valid phone number".to_owned()],
        ..lead(&Person::unique(), Form::ExpressCourse, at(secs(2)))
    };
    assert!(
        Phone::parse("8 777 12").is_err(),
        "fixture: the raw phone is invalid"
    );
    assert!(matches!(&email_only.email, Contact::Valid(e) if e.as_str().starts_with("Lead.")));

    let email_rows = commit_ok(h, intake(email_only.clone())).await;
    let no_rows = commit_ok(h, intake(invalid_phone.clone())).await;
    assert_eq!(email_rows.len(), 1);
    assert!(no_rows.is_empty());

    for lead in [&email_only, &invalid_phone] {
        let stored = h.leads().get_lead(lead.id).await.expect("get_lead failed");
        assert_eq!(
            stored.as_ref(),
            Some(lead),
            "every field reads back as written"
        );
    }
    assert_eq!(rows_of(h, email_only.id).await, email_rows);
    assert!(rows_of(h, invalid_phone.id).await.is_empty());
}

/// After `Committed`, the lead's notification rows and its person's tracking rows are all
/// readable, exactly as written.
pub async fn commit_writes_notifications_and_tracking_with_the_lead<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let w = intake(lead(&person, Form::ExpressCourse, at(secs(5))));
    let lead_id = w.lead.id;
    let touches = w.tracking.clone();
    assert_eq!(touches.len(), 2, "fixture: one touch per person key");
    let written = commit_ok(h, w).await;
    assert_eq!(written.len(), 2, "fixture: one row per channel");

    assert!(lead_exists(h, lead_id).await);
    assert_eq!(
        rows_of(h, lead_id).await,
        written,
        "notification rows as written"
    );
    for touch in &touches {
        assert_eq!(
            tracking(h, &touch.key).await,
            Some(Tracking::first(touch)),
            "tracking row of {:?}",
            touch.key
        );
    }
    assert_eq!(counts(h, &person.phone_key()).await, (0, 1));
    assert_eq!(counts(h, &person.email_key()).await, (0, 1));
}

/// A write that cannot be completed (its second notification row collides with an existing
/// row's id) leaves nothing of itself: no lead, no rows, no tracking, no idempotency record.
pub async fn commit_that_fails_part_way_leaves_nothing_behind<H: Harness + ?Sized>(h: &H) {
    let first = intake(lead(&Person::unique(), Form::ProfTest, at(secs(1))));
    let first_id = first.lead.id;
    let first_rows = commit_ok(h, first).await;

    let person = Person::unique();
    let key = format!("proftest:{}", unique_key());
    let good = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(2)))),
        &key,
        "hash-b",
    );
    let mut bad = good.clone();
    assert_eq!(bad.notifications.len(), 2);
    bad.notifications[1].id = first_rows[0].id;
    let outcome = h.leads().commit_intake(bad).await;
    assert!(
        !matches!(outcome, Ok(IntakeOutcome::Committed)),
        "a write that reuses an existing notification id must not commit, got {outcome:?}"
    );

    assert!(!lead_exists(h, good.lead.id).await, "no lead");
    assert!(rows_of(h, good.lead.id).await.is_empty(), "no rows");
    assert_eq!(tracking(h, &person.phone_key()).await, None, "no tracking");
    assert_eq!(tracking(h, &person.email_key()).await, None, "no tracking");
    assert_eq!(
        rows_of(h, first_id).await,
        first_rows,
        "the existing row is untouched"
    );

    // The key was not recorded: the corrected request with the same key and hash commits.
    assert_eq!(commit(h, good.clone()).await, IntakeOutcome::Committed);
    assert!(lead_exists(h, good.lead.id).await);
    assert_eq!(counts(h, &person.phone_key()).await, (1, 0));
}

/// A write whose lead id already exists is not committed and changes nothing, whether or not
/// the existing lead has notification rows.
pub async fn commit_never_overwrites_an_existing_lead<H: Harness + ?Sized>(h: &H) {
    let owner = Person::unique();
    let with_rows = lead(&owner, Form::ProfTest, at(secs(1)));
    let without_rows = Lead {
        phone: Contact::Invalid("12".to_owned()),
        email: Contact::Absent,
        ..lead(&Person::unique(), Form::ProfTest, at(secs(2)))
    };
    for original in [with_rows, without_rows] {
        let original_rows = commit_ok(h, intake(original.clone())).await;
        let owner_counts = match original.phone.valid() {
            Some(_) => Some(counts(h, &owner.phone_key()).await),
            None => None,
        };

        let intruder = Person::unique();
        let key = format!("expresscourse:{}", unique_key());
        let clash = Lead {
            id: original.id,
            name: PersonName::parse("Someone Else").expect("a valid name"),
            ..lead(&intruder, Form::ExpressCourse, at(secs(3)))
        };
        let outcome = h
            .leads()
            .commit_intake(keyed(intake(clash), &key, "hash"))
            .await;
        assert!(
            !matches!(outcome, Ok(IntakeOutcome::Committed)),
            "a write with an existing lead id must not commit, got {outcome:?}"
        );

        let stored = h.leads().get_lead(original.id).await.expect("get_lead");
        assert_eq!(stored.as_ref(), Some(&original), "the lead is untouched");
        assert_eq!(
            rows_of(h, original.id).await,
            original_rows,
            "its rows are untouched"
        );
        assert_eq!(tracking(h, &intruder.phone_key()).await, None);
        assert_eq!(tracking(h, &intruder.email_key()).await, None);
        if let Some(before) = owner_counts {
            assert_eq!(counts(h, &owner.phone_key()).await, before);
        }

        // The key was not recorded either.
        let retry = keyed(
            intake(lead(&intruder, Form::ExpressCourse, at(secs(4)))),
            &key,
            "hash",
        );
        assert_eq!(commit(h, retry).await, IntakeOutcome::Committed);
    }
}

/// A retry (same key, same payload hash) gets the first request's stored response and writes
/// nothing of its own.
pub async fn same_key_and_payload_replays_the_stored_response_and_writes_nothing<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let person = Person::unique();
    let key = format!("proftest:{}", unique_key());
    let first = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(1)))),
        &key,
        "hash-1",
    );
    let first_id = first.lead.id;
    let first_response = response_of(&first);
    let first_rows = commit_ok(h, first).await;

    let retry = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(31)))),
        &key,
        "hash-1",
    );
    let retry_id = retry.lead.id;
    assert_ne!(
        response_of(&retry),
        first_response,
        "fixture: responses differ"
    );
    assert_eq!(
        commit(h, retry).await,
        IntakeOutcome::Replay(first_response.clone())
    );

    assert!(!lead_exists(h, retry_id).await, "no second lead");
    assert!(
        rows_of(h, retry_id).await.is_empty(),
        "no second notifications"
    );
    assert_eq!(
        counts(h, &person.phone_key()).await,
        (1, 0),
        "tracking untouched"
    );
    assert_eq!(
        counts(h, &person.email_key()).await,
        (1, 0),
        "tracking untouched"
    );
    assert_eq!(
        tracking(h, &person.phone_key())
            .await
            .map(|t| t.last_lead_id),
        Some(first_id)
    );
    assert_eq!(
        claim_everything(h).await,
        ids(&first_rows),
        "only the first rows exist"
    );
}

/// The same key with a different payload is `KeyReused`: nothing is written and the original
/// record still answers retries of the original request.
pub async fn same_key_with_another_payload_is_refused_and_writes_nothing<H: Harness + ?Sized>(
    h: &H,
) {
    let person = Person::unique();
    let key = format!("expresscourse:{}", unique_key());
    let first = keyed(
        intake(lead(&person, Form::ExpressCourse, at(secs(1)))),
        &key,
        "hash-1",
    );
    let first_response = response_of(&first);
    let first_rows = commit_ok(h, first).await;

    let other = Person::unique();
    let reuse = keyed(
        intake(lead(&other, Form::ExpressCourse, at(secs(2)))),
        &key,
        "hash-2",
    );
    let reuse_id = reuse.lead.id;
    assert_eq!(commit(h, reuse).await, IntakeOutcome::KeyReused);

    assert!(!lead_exists(h, reuse_id).await, "no lead");
    assert!(rows_of(h, reuse_id).await.is_empty(), "no notifications");
    assert_eq!(tracking(h, &other.phone_key()).await, None, "no tracking");
    assert_eq!(tracking(h, &other.email_key()).await, None, "no tracking");

    // The refused request did not replace the record.
    let retry = keyed(
        intake(lead(&person, Form::ExpressCourse, at(secs(3)))),
        &key,
        "hash-1",
    );
    assert_eq!(
        commit(h, retry).await,
        IntakeOutcome::Replay(first_response)
    );
    assert_eq!(counts(h, &person.phone_key()).await, (0, 1));
    assert_eq!(claim_everything(h).await, ids(&first_rows));
}

/// Once `now` is past a record's `expires_at`, its key is free: the request commits and its
/// own record answers later retries.
pub async fn expired_idempotency_key_is_treated_as_new<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let key = format!("proftest:{}", unique_key());
    let first = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(0)))),
        &key,
        "hash",
    );
    let expires_at = first.idempotency.as_ref().expect("keyed").expires_at;
    let first_id = first.lead.id;
    commit_ok(h, first).await;

    // Just before expiry it still replays.
    let mut early = keyed(
        intake(lead(&person, Form::ProfTest, minus(expires_at, millis(1)))),
        &key,
        "hash",
    );
    early.now = minus(expires_at, millis(1));
    assert!(matches!(commit(h, early).await, IntakeOutcome::Replay(_)));

    let mut late = keyed(
        intake(lead(&person, Form::ProfTest, plus(expires_at, millis(1)))),
        &key,
        "other-hash",
    );
    late.now = plus(expires_at, millis(1));
    let late_id = late.lead.id;
    let late_response = response_of(&late);
    assert_eq!(commit(h, late).await, IntakeOutcome::Committed);
    assert!(lead_exists(h, first_id).await);
    assert!(lead_exists(h, late_id).await);
    assert_eq!(rows_of(h, late_id).await.len(), 2);
    assert_eq!(counts(h, &person.phone_key()).await, (2, 0));

    // The new record replaced the expired one.
    let retry = keyed(
        intake(lead(&person, Form::ProfTest, plus(expires_at, secs(5)))),
        &key,
        "other-hash",
    );
    assert_eq!(commit(h, retry).await, IntakeOutcome::Replay(late_response));
}

/// `proftest:K` and `expresscourse:K` are different keys, even with the same payload hash.
pub async fn idempotency_keys_are_scoped_to_the_form<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let k = unique_key();
    let proftest = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(1)))),
        &format!("proftest:{k}"),
        "same-hash",
    );
    let express = keyed(
        intake(lead(&person, Form::ExpressCourse, at(secs(2)))),
        &format!("expresscourse:{k}"),
        "same-hash",
    );
    let (p_id, e_id) = (proftest.lead.id, express.lead.id);
    let (p_resp, e_resp) = (response_of(&proftest), response_of(&express));
    assert_eq!(commit(h, proftest).await, IntakeOutcome::Committed);
    assert_eq!(commit(h, express).await, IntakeOutcome::Committed);
    assert!(lead_exists(h, p_id).await);
    assert!(lead_exists(h, e_id).await);
    assert_eq!(counts(h, &person.phone_key()).await, (1, 1));

    // Each scope replays its own response.
    let p_retry = keyed(
        intake(lead(&person, Form::ProfTest, at(secs(3)))),
        &format!("proftest:{k}"),
        "same-hash",
    );
    let e_retry = keyed(
        intake(lead(&person, Form::ExpressCourse, at(secs(4)))),
        &format!("expresscourse:{k}"),
        "same-hash",
    );
    assert_eq!(commit(h, p_retry).await, IntakeOutcome::Replay(p_resp));
    assert_eq!(commit(h, e_retry).await, IntakeOutcome::Replay(e_resp));
}

/// Three submissions of one person over two forms: first touch stays, last touch moves, counts
/// add up per form, the last payment method survives a submission without one. Another
/// person's lead in between changes nothing of it.
pub async fn tracking_accumulates_first_and_last_touch_and_form_counts<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let kenesary = Slug::parse("kenesary").expect("slug");
    let arystan = Slug::parse("arystan").expect("slug");

    let mut l1 = lead(&person, Form::ProfTest, at(mins(0)));
    l1.source_campaign = SourceCampaign::new(Form::ProfTest, Some(&kenesary));
    l1.utm = Utm {
        source: Some("instagram".to_owned()),
        campaign: Some("spring".to_owned()),
        ..Utm::default()
    };
    let mut l2 = lead(&person, Form::ExpressCourse, at(mins(60)));
    l2.payment_method = Some(PaymentMethod::Robokassa);
    l2.utm = Utm {
        source: Some("google".to_owned()),
        medium: Some("cpc".to_owned()),
        ..Utm::default()
    };
    let bystander = lead(&Person::unique(), Form::ExpressCourse, at(mins(90)));
    let mut l3 = lead(&person, Form::ProfTest, at(mins(120)));
    l3.source_campaign = SourceCampaign::new(Form::ProfTest, Some(&arystan));
    let l1_utm = l1.utm.clone();
    let l3_id = l3.id;

    for l in [l1, l2, bystander, l3] {
        commit_ok(h, intake(l)).await;
    }

    for key in [person.phone_key(), person.email_key()] {
        let t = tracking(h, &key)
            .await
            .unwrap_or_else(|| panic!("tracking row for {key:?}"));
        assert_eq!(t.key, key);
        assert_eq!(t.first_seen, at(mins(0)), "first_seen");
        assert_eq!(t.last_seen, at(mins(120)), "last_seen");
        assert_eq!(
            t.first_campaign.as_str(),
            "proftest_kenesary",
            "first_campaign"
        );
        assert_eq!(t.first_utm, l1_utm, "first_utm");
        assert_eq!(
            t.last_campaign.as_str(),
            "proftest_arystan",
            "last_campaign"
        );
        assert_eq!(t.last_utm, Utm::default(), "last_utm");
        assert_eq!(t.last_lead_id, l3_id, "last_lead_id");
        assert_eq!((t.proftest_count, t.expresscourse_count), (2, 1), "counts");
        assert_eq!(
            t.last_payment_method,
            Some(PaymentMethod::Robokassa),
            "last_payment_method"
        );
        assert_eq!((t.amocrm_contact_id, t.amocrm_lead_id), (None, None));
    }
}

/// A lead created earlier but committed later becomes the first touch; it does not steal the
/// last touch.
pub async fn tracking_keeps_last_touch_when_an_older_lead_arrives_late<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let mut newer = lead(&person, Form::ExpressCourse, at(mins(30)));
    newer.source_campaign =
        SourceCampaign::new(Form::ExpressCourse, Some(&Slug::parse("b").expect("slug")));
    let mut older = lead(&person, Form::ProfTest, at(mins(10)));
    older.source_campaign =
        SourceCampaign::new(Form::ProfTest, Some(&Slug::parse("a").expect("slug")));
    let newer_id = newer.id;
    commit_ok(h, intake(newer)).await;
    commit_ok(h, intake(older)).await;

    let t = tracking(h, &person.phone_key())
        .await
        .expect("tracking row");
    assert_eq!(t.first_seen, at(mins(10)));
    assert_eq!(t.first_campaign.as_str(), "proftest_a");
    assert_eq!(t.last_seen, at(mins(30)));
    assert_eq!(t.last_campaign.as_str(), "expresscourse_b");
    assert_eq!(t.last_lead_id, newer_id);
    assert_eq!((t.proftest_count, t.expresscourse_count), (1, 1));
    assert_eq!(t.last_payment_method, Some(PaymentMethod::Kaspi));
}

/// Fifty different people submitting at once: every write commits and everything it wrote is
/// readable afterwards.
pub async fn fifty_concurrent_commits_all_land<H: Harness + ?Sized>(h: &H) {
    let mut writes = Vec::new();
    for i in 0..50u64 {
        let form = if i % 2 == 0 {
            Form::ProfTest
        } else {
            Form::ExpressCourse
        };
        let person = Person::unique();
        let w = keyed(
            intake(lead(&person, form, at(millis(i)))),
            &format!("{form}:{}", unique_key()),
            "hash",
        );
        writes.push((person, w));
    }
    let plain: Vec<_> = writes.iter().map(|(_, w)| w.clone()).collect();
    for outcome in commit_all_at_once(h, &plain).await {
        assert_eq!(
            outcome.expect("commit_intake failed"),
            IntakeOutcome::Committed
        );
    }

    let mut all_rows = Vec::new();
    for (person, w) in &writes {
        let stored = h.leads().get_lead(w.lead.id).await.expect("get_lead");
        assert_eq!(stored.as_ref(), Some(&w.lead));
        assert_eq!(rows_of(h, w.lead.id).await, sorted(w.notifications.clone()));
        let (p, e) = counts(h, &person.phone_key()).await;
        assert_eq!(p + e, 1);
        all_rows.extend(w.notifications.iter().cloned());
    }
    assert_eq!(all_rows.len(), 100);
    assert_eq!(claim_everything(h).await, ids(&all_rows));
}

/// Twenty submissions of one person at once: no tracking update is lost. An adapter may refuse
/// some of them with a (retryable) error, but then nothing of those may exist.
pub async fn concurrent_commits_of_one_person_lose_no_tracking_update<H: Harness + ?Sized>(h: &H) {
    let person = Person::unique();
    let writes: Vec<_> = (0..20u64)
        .map(|i| {
            let form = if i % 4 == 0 {
                Form::ExpressCourse
            } else {
                Form::ProfTest
            };
            intake(lead(&person, form, at(millis(i))))
        })
        .collect();
    let outcomes = commit_all_at_once(h, &writes).await;
    let mut expected = (0u32, 0u32);
    for (outcome, w) in outcomes.into_iter().zip(&writes) {
        match outcome {
            Ok(IntakeOutcome::Committed) => {
                assert!(lead_exists(h, w.lead.id).await);
                match w.lead.form {
                    Form::ProfTest => expected.0 += 1,
                    Form::ExpressCourse => expected.1 += 1,
                }
            }
            Ok(other) => panic!("a write without a key cannot be {other:?}"),
            Err(_) => {
                assert!(
                    !lead_exists(h, w.lead.id).await,
                    "a failed write left its lead"
                );
                assert!(rows_of(h, w.lead.id).await.is_empty());
            }
        }
    }
    assert!(
        expected.0 + expected.1 > 0,
        "at least one write must commit"
    );
    assert_eq!(
        counts(h, &person.phone_key()).await,
        expected,
        "phone tracking"
    );
    assert_eq!(
        counts(h, &person.email_key()).await,
        expected,
        "email tracking"
    );
}

/// Ten copies of one request (same key, same hash) at once: exactly one commits, the others
/// replay its response or are told it is in flight, and only one lead exists. Run for several
/// keys in a row, since a race may not show on every round.
pub async fn concurrent_retries_with_one_key_commit_exactly_once<H: Harness + ?Sized>(h: &H) {
    for round in 0..5u64 {
        let person = Person::unique();
        let key = format!("proftest:{}", unique_key());
        let writes: Vec<_> = (0..10u64)
            .map(|i| {
                keyed(
                    intake(lead(&person, Form::ProfTest, at(secs(round) + millis(i)))),
                    &key,
                    "hash",
                )
            })
            .collect();
        let outcomes: Vec<IntakeOutcome> = commit_all_at_once(h, &writes)
            .await
            .into_iter()
            .map(|o| o.expect("commit_intake failed"))
            .collect();

        let committed: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| **o == IntakeOutcome::Committed)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            committed.len(),
            1,
            "round {round}: exactly one Committed in {outcomes:?}"
        );
        let winner = &writes[committed[0]];
        let winner_response = response_of(winner);
        for o in &outcomes {
            match o {
                IntakeOutcome::Committed | IntakeOutcome::InFlight => {}
                IntakeOutcome::Replay(r) => assert_eq!(r, &winner_response, "replays the winner"),
                IntakeOutcome::KeyReused => panic!("same hash must never be KeyReused"),
            }
        }
        let mut existing = HashSet::new();
        for w in &writes {
            if lead_exists(h, w.lead.id).await {
                existing.insert(w.lead.id);
            }
            if w.lead.id != winner.lead.id {
                assert!(rows_of(h, w.lead.id).await.is_empty());
            }
        }
        assert_eq!(
            existing,
            HashSet::from([winner.lead.id]),
            "only one lead exists"
        );
        assert_eq!(rows_of(h, winner.lead.id).await.len(), 2);
        assert_eq!(counts(h, &person.phone_key()).await, (1, 0));
    }
}

/// Reads of things never written are empty, not errors.
pub async fn unknown_lead_and_person_read_as_absent<H: Harness + ?Sized>(h: &H) {
    commit_ok(
        h,
        intake(lead(&Person::unique(), Form::ProfTest, at(secs(1)))),
    )
    .await;
    let unknown = LeadId::new();
    assert_eq!(h.leads().get_lead(unknown).await.expect("get_lead"), None);
    assert!(rows_of(h, unknown).await.is_empty());
    let stranger = Person::unique();
    assert_eq!(tracking(h, &stranger.phone_key()).await, None);
    let email = Email::parse("nobody@example.kz").expect("valid email");
    assert_eq!(tracking(h, &PersonKey::email(&email)).await, None);
}

/// A lead the honeypot caught is stored whole — its reason, its address hash and its rows, which
/// are `suppressed` as `quarantined` — and is not pending for the CRM.
pub async fn a_quarantined_lead_reads_back_with_its_reason_and_suppressed_rows<
    H: Harness + ?Sized,
>(
    h: &H,
) {
    let w = quarantined_intake(&Person::unique(), at(secs(3)));
    let lead = w.lead.clone();
    let rows = commit_ok(h, w).await;
    let stored = h
        .leads()
        .get_lead(lead.id)
        .await
        .expect("get_lead failed")
        .expect("the quarantined lead is stored");
    assert_eq!(stored, lead);
    assert_eq!(stored.crm.status, CrmStatus::Quarantined);
    assert_eq!(rows_of(h, lead.id).await, rows);
    assert!(
        rows.iter().all(
            |n| n.status == landing_core::domain::NotificationStatus::Suppressed
                && n.suppressed_reason == Some(landing_core::domain::SuppressReason::Quarantined)
        ),
        "{rows:?}"
    );
    assert!(
        !h.crm()
            .pending_crm(100)
            .await
            .expect("pending_crm")
            .contains(&lead.id),
        "a quarantined lead is not synced"
    );
    assert_eq!(
        h.notifications()
            .claim_due(at(mins(60)), at(mins(60)), LEASE, 100)
            .await
            .expect("claim_due"),
        vec![],
        "a suppressed row is never claimed"
    );
}

/// The report's read: leads created in `[from, to)` — across a UTC day boundary, `to` excluded —
/// oldest first, each with its notification rows.
pub async fn leads_between_returns_the_range_oldest_first_with_their_rows<H: Harness + ?Sized>(
    h: &H,
) {
    // base() is midnight UTC: the range crosses into the next day.
    let at_ = |m: i64| {
        let d = jiff::SignedDuration::from_mins(m);
        base().checked_add(d).expect("an instant")
    };
    let before = lead(&Person::unique(), Form::ProfTest, at_(-61));
    let first = lead(&Person::unique(), Form::ExpressCourse, at_(-30));
    let second = phone_only_lead(at_(23 * 60 + 59));
    let third = lead(&Person::unique(), Form::ProfTest, at_(24 * 60 + 5));
    let excluded = lead(&Person::unique(), Form::ProfTest, at_(25 * 60));
    for l in [&third, &before, &excluded, &second, &first] {
        commit_ok(h, intake(l.clone())).await;
    }
    let got = h
        .inspect()
        .leads_between(at_(-60), at_(25 * 60))
        .await
        .expect("leads_between failed");
    let ids: Vec<LeadId> = got.iter().map(|(l, _)| l.id).collect();
    assert_eq!(
        ids,
        vec![first.id, second.id, third.id],
        "in range, oldest first"
    );
    assert_eq!(got[0].0, first, "field for field");
    let channels = |i: usize| {
        got[i]
            .1
            .iter()
            .map(|n| n.channel().as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(channels(0), ["email", "sms"]);
    assert_eq!(channels(1), ["sms"]);
    assert!(
        got.iter()
            .all(|(l, rows)| rows.iter().all(|n| n.lead_id == l.id))
    );
    assert!(
        h.inspect()
            .leads_between(at_(26 * 60), at_(27 * 60))
            .await
            .expect("leads_between failed")
            .is_empty()
    );
}

/// `lead show --phone/--email`: one person's leads, newest first, the email matched without
/// regard to case; nobody else's.
pub async fn leads_of_finds_a_persons_leads_by_phone_or_email_newest_first<H: Harness + ?Sized>(
    h: &H,
) {
    let mut person = Person::unique();
    let mixed = format!("Mixed.{}", person.email.as_str());
    person.email = Email::parse(&mixed).expect("a valid email");
    let leads: Vec<Lead> = (0..3)
        .map(|i| lead(&person, Form::ProfTest, at(mins(i))))
        .collect();
    for l in &leads {
        commit_ok(h, intake(l.clone())).await;
    }
    commit_ok(
        h,
        intake(lead(&Person::unique(), Form::ProfTest, at(mins(5)))),
    )
    .await;
    let newest_first: Vec<LeadId> = leads.iter().rev().map(|l| l.id).collect();
    for key in [person.phone_key(), person.email_key()] {
        let got = h.inspect().leads_of(&key).await.expect("leads_of failed");
        assert_eq!(
            got.iter().map(|l| l.id).collect::<Vec<_>>(),
            newest_first,
            "{}",
            key.masked()
        );
    }
    assert_eq!(got_first_name(h, &person).await, leads[2].name);
    assert!(
        h.inspect()
            .leads_of(&Person::unique().phone_key())
            .await
            .expect("leads_of failed")
            .is_empty()
    );
}

async fn got_first_name<H: Harness + ?Sized>(h: &H, person: &Person) -> PersonName {
    h.inspect()
        .leads_of(&person.phone_key())
        .await
        .expect("leads_of failed")
        .remove(0)
        .name
}
