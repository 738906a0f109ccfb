//! Contract test suites for the storage ports (`LeadStore`, `NotificationStore`,
//! `CrmStateStore`, `TokenStore`, `QuotaStore`, `LeadOps`, `SuppressionList`).
//!
//! Every adapter of a port runs the very same cases: an adapter's test file provides an async
//! factory that returns a fresh, empty [`Harness`] and invokes [`storage_contract_tests!`]:
//!
//! ```ignore
//! async fn fresh() -> landing_contract::Stores {
//!     let store = my_adapter::open(/* a new, empty database */).await.unwrap();
//!     landing_contract::Stores::new(store)
//! }
//!
//! landing_contract::storage_contract_tests!(fresh());
//! ```
//!
//! That expands to one `#[test]` per case (each on its own multi-threaded Tokio runtime), named
//! after the behaviour it checks and grouped in the modules `lead_store`, `notification_store`,
//! `crm_state_store` and `token_store`. Each case calls the factory once, so each case sees an empty store:
//! cases such as "`next_due` is `None` when every row is settled" rely on that.
//!
//! Every case uses explicit instants (a fixed base plus offsets, see [`fixtures`]); nothing
//! sleeps or reads the wall clock, so nothing is timing-dependent. Instants are whole
//! milliseconds because stored timestamps keep three fractional digits (`landing_core::time`).

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use landing_core::ports::{
    CrmStateStore, Inspect, LeadOps, LeadStore, NotificationStore, QuotaStore, SuppressionList,
    TokenStore,
};

pub mod crm_state_store;
pub mod fixtures;
pub mod lead_ops;
pub mod lead_store;
pub mod notification_store;
pub mod quota_store;
pub mod suppression_list;
pub mod token_store;

/// What a case gets to work with: the adapter's implementation of each port. Every handle must
/// reach the same storage (notification rows are only ever created by `commit_intake`, CRM state
/// lives on the leads).
pub trait Harness: Send + Sync {
    fn leads(&self) -> Arc<dyn LeadStore>;
    fn notifications(&self) -> Arc<dyn NotificationStore>;
    fn crm(&self) -> Arc<dyn CrmStateStore>;
    fn tokens(&self) -> Arc<dyn TokenStore>;
    /// The reads cases use to look at what was written.
    fn inspect(&self) -> Arc<dyn Inspect>;
    fn quotas(&self) -> Arc<dyn QuotaStore>;
    fn ops(&self) -> Arc<dyn LeadOps>;
    fn suppression(&self) -> Arc<dyn SuppressionList>;
}

/// Every storage port at once, as each adapter provides them.
pub trait Store:
    LeadStore
    + NotificationStore
    + CrmStateStore
    + TokenStore
    + Inspect
    + QuotaStore
    + LeadOps
    + SuppressionList
{
}

impl<S> Store for S where
    S: LeadStore
        + NotificationStore
        + CrmStateStore
        + TokenStore
        + Inspect
        + QuotaStore
        + LeadOps
        + SuppressionList
{
}

/// A [`Harness`] over one store that implements every port, optionally keeping a guard (a temp
/// dir, a server handle...) alive until the harness is dropped.
pub struct Stores {
    store: Arc<dyn Store>,
    // Declared last: dropped after the store handle.
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Stores {
    pub fn new<S: Store + 'static>(store: S) -> Self {
        Stores {
            store: Arc::new(store),
            _guard: None,
        }
    }

    /// Keeps `guard` alive as long as the harness; it is dropped after the store handles.
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }
}

impl Harness for Stores {
    fn leads(&self) -> Arc<dyn LeadStore> {
        self.store.clone()
    }

    fn notifications(&self) -> Arc<dyn NotificationStore> {
        self.store.clone()
    }

    fn crm(&self) -> Arc<dyn CrmStateStore> {
        self.store.clone()
    }

    fn tokens(&self) -> Arc<dyn TokenStore> {
        self.store.clone()
    }

    fn inspect(&self) -> Arc<dyn Inspect> {
        self.store.clone()
    }

    fn quotas(&self) -> Arc<dyn QuotaStore> {
        self.store.clone()
    }

    fn ops(&self) -> Arc<dyn LeadOps> {
        self.store.clone()
    }

    fn suppression(&self) -> Arc<dyn SuppressionList> {
        self.store.clone()
    }
}

/// Longest a single case may run before it is reported as hung (a deadlocked adapter must fail
/// the test, not stall the whole run).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one case on a fresh multi-threaded runtime (two workers, so that the concurrency cases
/// really run in parallel), failing it if it takes longer than [`CASE_TIMEOUT`].
#[doc(hidden)]
pub fn __run_case<F: Future<Output = ()>>(case: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a Tokio runtime for the contract case");
    runtime.block_on(async {
        if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
            panic!("contract case did not finish within {CASE_TIMEOUT:?}");
        }
    });
}

/// Expands to one test per contract case, for the adapter built by `$factory`: an expression
/// evaluating to a future (e.g. `fresh()` for an `async fn fresh() -> impl Harness`) that is
/// awaited once per case. Attributes after the factory go on every case (an emulator-backed
/// adapter passes `#[ignore = "needs moto: …"]`).
#[macro_export]
macro_rules! storage_contract_tests {
    ($factory:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::__contract_cases! {
            { $(#[$attr])* } $factory;
            lead_store: [
                committed_lead_reads_back_field_for_field,
                sparse_leads_read_back_field_for_field,
                commit_writes_notifications_and_tracking_with_the_lead,
                commit_that_fails_part_way_leaves_nothing_behind,
                commit_never_overwrites_an_existing_lead,
                same_key_and_payload_replays_the_stored_response_and_writes_nothing,
                same_key_with_another_payload_is_refused_and_writes_nothing,
                expired_idempotency_key_is_treated_as_new,
                idempotency_keys_are_scoped_to_the_form,
                tracking_accumulates_first_and_last_touch_and_form_counts,
                tracking_keeps_last_touch_when_an_older_lead_arrives_late,
                fifty_concurrent_commits_all_land,
                concurrent_commits_of_one_person_lose_no_tracking_update,
                concurrent_retries_with_one_key_commit_exactly_once,
                unknown_lead_and_person_read_as_absent,
                a_quarantined_lead_reads_back_with_its_reason_and_suppressed_rows,
                leads_between_returns_the_range_oldest_first_with_their_rows,
                leads_of_finds_a_persons_leads_by_phone_or_email_newest_first,
            ],
            notification_store: [
                nothing_is_claimable_before_send_at,
                due_row_is_claimed_once_with_lease_and_attempt,
                concurrent_claimers_never_share_a_row_and_take_every_row,
                expired_lease_is_claimable_again_and_voids_the_old_claim,
                mark_sent_settles_the_row_for_good,
                release_returns_the_row_to_pending_at_retry_at,
                mark_failed_is_final,
                settling_without_the_current_claim_is_refused,
                next_due_reports_the_earliest_claimable_instant,
                claim_for_lead_takes_only_that_leads_due_rows,
                release_all_claims_hands_every_sending_row_back,
                claim_due_honours_limit_and_takes_the_oldest_first,
                claim_due_checks_send_at_against_due_by_and_leases_against_now,
                suppress_is_final_and_keeps_its_reason,
                hold_makes_the_row_due_later_without_using_an_attempt,
                suppress_and_hold_need_the_current_claim,
                email_events_land_on_their_sent_row_and_a_repeat_writes_the_same,
            ],
            quota_store: [
                units_are_taken_up_to_the_limit_then_refused,
                take_is_all_or_none_and_names_the_refusing_quotas,
                each_window_starts_from_zero,
                concurrent_takers_never_exceed_the_limit,
            ],
            lead_ops: [
                a_released_lead_is_due_now_and_goes_to_the_crm,
                release_changes_nothing_for_an_ordinary_or_unknown_lead,
                resend_makes_failed_rows_due_now_for_one_lead_or_since_an_instant,
            ],
            crm_state_store: [
                pending_leads_are_listed_oldest_first_up_to_the_limit,
                a_deal_is_remembered_at_once_and_never_creates_a_lead,
                a_synced_lead_leaves_pending_and_its_ids_reach_the_persons_tracking_rows,
                failures_are_counted_and_clipped_and_a_permanent_one_fails_the_lead,
                requeue_hands_failed_leads_and_one_disabled_lead_back_to_the_sync,
            ],
            suppression_list: [
                a_listed_address_reads_back_with_its_reason_and_time,
                the_first_reason_stays_and_a_second_listing_says_so,
                addresses_match_whatever_their_case,
                concurrent_listings_of_one_address_have_one_first,
            ],
            token_store: [
                the_first_pair_is_stored_only_when_none_is_expected,
                a_pair_is_replaced_only_with_the_current_refresh_token,
                refreshers_racing_with_one_token_have_exactly_one_winner,
            ],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($attrs:tt $factory:expr; $($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;

                $( $crate::__contract_case!($attrs $module $case $factory); )*
            }
        )*
    };
}

/// One case. The attributes travel as one `{ … }` token tree: a repetition of their own could
/// not sit inside the repetition over cases.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_case {
    ({ $(#[$attr:meta])* } $module:ident $case:ident $factory:expr) => {
        #[test]
        $(#[$attr])*
        fn $case() {
            $crate::__run_case(async {
                let harness = $factory.await;
                $crate::$module::$case(&harness).await;
            });
        }
    };
}
