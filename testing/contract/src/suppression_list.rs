//! The `SuppressionList` contract: an address, once listed, stays listed with its first reason,
//! whatever case it is written in; concurrent listings of one address have exactly one first.

use std::sync::Arc;

use landing_core::domain::{AddressSuppression, Email};
use landing_core::ports::SuppressionList;

use crate::Harness;
use crate::fixtures::*;

async fn listed(
    list: &dyn SuppressionList,
    email: &Email,
) -> Option<(AddressSuppression, jiff::Timestamp)> {
    list.address_suppression(email)
        .await
        .expect("address_suppression failed")
        .map(|s| {
            assert_eq!(&s.email, email, "the entry names the address asked about");
            (s.reason, s.at)
        })
}

pub async fn a_listed_address_reads_back_with_its_reason_and_time<H: Harness + ?Sized>(h: &H) {
    let list = h.suppression();
    let email = unique_email();
    assert_eq!(
        listed(list.as_ref(), &email).await,
        None,
        "nothing listed yet"
    );
    assert!(
        list.suppress_address(&email, AddressSuppression::Unsubscribed, at(mins(5)))
            .await
            .expect("suppress failed"),
        "the first listing is new"
    );
    assert_eq!(
        listed(list.as_ref(), &email).await,
        Some((AddressSuppression::Unsubscribed, at(mins(5))))
    );
    assert_eq!(
        listed(list.as_ref(), &unique_email()).await,
        None,
        "another address is not listed"
    );
}

pub async fn the_first_reason_stays_and_a_second_listing_says_so<H: Harness + ?Sized>(h: &H) {
    let list = h.suppression();
    let email = unique_email();
    assert!(
        list.suppress_address(&email, AddressSuppression::Unsubscribed, at(mins(1)))
            .await
            .expect("suppress failed")
    );
    assert!(
        !list
            .suppress_address(&email, AddressSuppression::Bounced, at(mins(2)))
            .await
            .expect("suppress failed"),
        "already listed"
    );
    assert_eq!(
        listed(list.as_ref(), &email).await,
        Some((AddressSuppression::Unsubscribed, at(mins(1))))
    );
}

pub async fn addresses_match_whatever_their_case<H: Harness + ?Sized>(h: &H) {
    let list = h.suppression();
    let email = unique_email();
    let shouted = Email::parse(&email.as_str().to_uppercase()).expect("an address in capitals");
    assert!(
        list.suppress_address(&shouted, AddressSuppression::Complained, at(mins(3)))
            .await
            .expect("suppress failed")
    );
    assert_eq!(
        list.address_suppression(&email)
            .await
            .expect("read failed")
            .map(|s| s.reason),
        Some(AddressSuppression::Complained)
    );
}

pub async fn concurrent_listings_of_one_address_have_one_first<H: Harness + ?Sized>(h: &H) {
    let list: Arc<dyn SuppressionList> = h.suppression();
    let email = unique_email();
    let tasks: Vec<_> = [
        AddressSuppression::Unsubscribed,
        AddressSuppression::Bounced,
        AddressSuppression::Complained,
    ]
    .into_iter()
    .cycle()
    .take(12)
    .enumerate()
    .map(|(i, reason)| {
        let (list, email) = (list.clone(), email.clone());
        tokio::spawn(async move {
            list.suppress_address(&email, reason, at(secs(i as u64)))
                .await
                .expect("suppress failed")
                .then_some((reason, at(secs(i as u64))))
        })
    })
    .collect();
    let mut firsts = Vec::new();
    for t in tasks {
        if let Some(first) = t.await.expect("task panicked") {
            firsts.push(first);
        }
    }
    assert_eq!(
        firsts.len(),
        1,
        "exactly one listing is the first: {firsts:?}"
    );
    assert_eq!(listed(list.as_ref(), &email).await, firsts.first().copied());
}
