//! landing-local's CRM worker: syncs every `pending` lead right after its commit, retries with
//! backoff, and — since `pending` is a stored state — picks up whatever a previous process left.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::{CrmSync, SyncOutcome};
use crate::domain::LeadId;
use crate::ports::CrmStateStore;
use crate::time::Backoff;

#[derive(Debug, Clone)]
pub struct CrmWorkerConfig {
    pub batch: usize,
    /// The wait before a lead whose sync failed transiently is tried again.
    pub backoff: Backoff,
    /// Safety-net poll when nothing wakes the worker.
    pub idle_poll: Duration,
}

impl Default for CrmWorkerConfig {
    fn default() -> Self {
        CrmWorkerConfig {
            batch: 25,
            backoff: Backoff::new(Duration::from_secs(2), Duration::from_secs(300)),
            idle_poll: Duration::from_secs(30),
        }
    }
}

pub struct CrmWorker {
    sync: Arc<CrmSync>,
    state: Arc<dyn CrmStateStore>,
    wake: Arc<Notify>,
    config: CrmWorkerConfig,
}

impl CrmWorker {
    pub fn new(
        sync: Arc<CrmSync>,
        state: Arc<dyn CrmStateStore>,
        wake: Arc<Notify>,
        config: CrmWorkerConfig,
    ) -> Self {
        CrmWorker {
            sync,
            state,
            wake,
            config,
        }
    }

    /// Runs until `shutdown` turns true; a batch in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Retry schedule of leads whose last attempt failed transiently. Kept in memory: after a
        // restart every pending lead is simply tried at once.
        let mut not_before: HashMap<LeadId, (Instant, u32)> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = Instant::now();
            let pending = match self
                .state
                .pending_crm(self.config.batch.saturating_mul(4))
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "cannot read pending CRM leads");
                    vec![]
                }
            };
            not_before.retain(|id, _| pending.contains(id));
            let ready: Vec<LeadId> = pending
                .iter()
                .filter(|id| not_before.get(id).is_none_or(|(t, _)| *t <= now))
                .take(self.config.batch)
                .copied()
                .collect();
            if !ready.is_empty() {
                for (id, outcome) in self.sync.sync_batch(&ready).await {
                    match outcome {
                        SyncOutcome::Retry(_) => {
                            let tries = not_before.get(&id).map_or(1, |(_, n)| n + 1);
                            let delay = self.config.backoff.delay(tries);
                            not_before.insert(id, (Instant::now() + delay, tries));
                        }
                        _ => {
                            not_before.remove(&id);
                        }
                    }
                }
                continue;
            }
            let next_retry = not_before.values().map(|(t, _)| *t).min();
            let sleep = next_retry.map_or(self.config.idle_poll, |t| {
                t.saturating_duration_since(now).min(self.config.idle_poll)
            });
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("CRM worker stopped");
    }
}
