//! The `QuotaStore` contract: durable counters, all or none, never over the limit.

use std::sync::Arc;
use std::time::Duration;

use landing_core::guard::Quota;
use landing_core::ports::QuotaStore;
use uuid::Uuid;

use crate::Harness;
use crate::fixtures::*;

fn quota(limit: u32, window: Duration) -> Quota {
    Quota {
        key: format!("q-{}", Uuid::now_v7().simple()),
        limit,
        window,
    }
}

async fn take<H: Harness + ?Sized>(h: &H, quotas: &[Quota], now: jiff::Timestamp) -> Vec<usize> {
    h.quotas().take(quotas, now).await.expect("take failed")
}

const HOUR: Duration = Duration::from_secs(3600);

/// A quota of three gives three units in its window and refuses the fourth and later ones.
pub async fn units_are_taken_up_to_the_limit_then_refused<H: Harness + ?Sized>(h: &H) {
    let q = quota(3, HOUR);
    for i in 0..3 {
        assert_eq!(
            take(h, std::slice::from_ref(&q), at(mins(i))).await,
            Vec::<usize>::new(),
            "unit {i}"
        );
    }
    assert_eq!(
        take(h, std::slice::from_ref(&q), at(mins(5))).await,
        vec![0]
    );
    assert_eq!(
        take(h, std::slice::from_ref(&q), at(mins(59))).await,
        vec![0],
        "still refused"
    );
    let other = quota(3, HOUR);
    assert!(
        take(h, std::slice::from_ref(&other), at(mins(5)))
            .await
            .is_empty(),
        "keys are independent"
    );
}

/// When one quota is spent none is charged, and the answer names the spent one.
pub async fn take_is_all_or_none_and_names_the_refusing_quotas<H: Harness + ?Sized>(h: &H) {
    let roomy = quota(10, HOUR);
    let tight = quota(1, HOUR);
    assert!(
        take(h, &[roomy.clone(), tight.clone()], at(mins(1)))
            .await
            .is_empty()
    );
    for _ in 0..3 {
        assert_eq!(
            take(h, &[roomy.clone(), tight.clone()], at(mins(2))).await,
            vec![1]
        );
    }
    // roomy was charged once (by the first take), not four times: nine units are left.
    let alone = std::slice::from_ref(&roomy);
    for i in 0..9 {
        assert!(
            take(h, alone, at(mins(3))).await.is_empty(),
            "unit {i} of roomy"
        );
    }
    assert_eq!(take(h, alone, at(mins(3))).await, vec![0]);
    let first_refused = take(h, &[tight.clone(), roomy.clone()], at(mins(4))).await;
    assert!(
        !first_refused.is_empty() && first_refused.contains(&0),
        "{first_refused:?}"
    );
}

/// Windows are aligned to the epoch; a new window starts from zero.
pub async fn each_window_starts_from_zero<H: Harness + ?Sized>(h: &H) {
    let q = quota(2, HOUR);
    let slice = std::slice::from_ref(&q);
    // base() is midnight, so [base, base + 1h) is one window.
    assert!(take(h, slice, at(mins(0))).await.is_empty());
    assert!(take(h, slice, at(mins(59))).await.is_empty());
    assert_eq!(
        take(h, slice, minus(at(mins(60)), millis(1))).await,
        vec![0]
    );
    assert!(
        take(h, slice, at(mins(60))).await.is_empty(),
        "the next window"
    );
    assert!(take(h, slice, at(mins(61))).await.is_empty());
    assert_eq!(take(h, slice, at(mins(62))).await, vec![0]);
}

/// Sixteen takers racing for a limit of five: exactly five get a unit, and a second quota they
/// all take together is charged exactly as often.
pub async fn concurrent_takers_never_exceed_the_limit<H: Harness + ?Sized>(h: &H) {
    let tight = quota(5, HOUR);
    let shared = quota(100, HOUR);
    let store: Arc<dyn QuotaStore> = h.quotas();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            let quotas = [tight.clone(), shared.clone()];
            tokio::spawn(async move {
                start.wait().await;
                store.take(&quotas, at(mins(1))).await
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        let refused = t.await.expect("taker panicked").expect("take failed");
        if refused.is_empty() {
            granted += 1;
        } else {
            assert_eq!(refused, vec![0], "only the tight quota can refuse");
        }
    }
    assert_eq!(granted, 5, "exactly the limit, never over");
    let alone = std::slice::from_ref(&shared);
    for i in 0..95 {
        assert!(
            take(h, alone, at(mins(2))).await.is_empty(),
            "unit {i}: the refused takes charged nothing"
        );
    }
    assert_eq!(take(h, alone, at(mins(2))).await, vec![0]);
}
