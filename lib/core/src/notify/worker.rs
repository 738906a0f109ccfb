//! The in-process durable scheduler of landing-local. Nothing lives only in memory: the worker
//! sleeps until the earliest due row in storage (or a wake-up), claims what is due, sends it,
//! and on start picks up whatever a previous process left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::{Notify, watch};

use super::Dispatcher;
use crate::domain::LeadId;
use crate::ports::{Clock, NotificationScheduler, NotificationStore, SchedulerError};

/// Shared between the intake path and the worker: the instant the worker plans to wake up.
/// Intake only pokes the worker when a new row is due before that, so a burst of leads due in
/// ten minutes costs no extra storage reads.
#[derive(Debug)]
struct WakePlan {
    notify: Notify,
    planned_ms: AtomicI64,
}

/// [`NotificationScheduler`] for one process: the rows are already durable, so "scheduling"
/// only means making sure the worker wakes up in time.
#[derive(Debug, Clone)]
pub struct LocalScheduler(Arc<WakePlan>);

impl LocalScheduler {
    pub fn new() -> Self {
        LocalScheduler(Arc::new(WakePlan {
            notify: Notify::new(),
            planned_ms: AtomicI64::new(i64::MIN),
        }))
    }
}

impl Default for LocalScheduler {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl NotificationScheduler for LocalScheduler {
    async fn schedule(
        &self,
        _lead_id: LeadId,
        send_at: Timestamp,
        _correlation_id: &str,
    ) -> Result<(), SchedulerError> {
        if send_at.as_millisecond() < self.0.planned_ms.load(Ordering::Acquire) {
            self.0.notify.notify_one();
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Rows claimed per round.
    pub batch: usize,
    /// Longest sleep even when nothing is due: a safety net, not the mechanism.
    pub idle_poll: Duration,
    /// Pause after a storage error before trying again.
    pub error_pause: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 64,
            idle_poll: Duration::from_secs(30),
            error_pause: Duration::from_secs(1),
        }
    }
}

pub struct Worker {
    dispatcher: Arc<Dispatcher>,
    store: Arc<dyn NotificationStore>,
    clock: Arc<dyn Clock>,
    wake: LocalScheduler,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        store: Arc<dyn NotificationStore>,
        clock: Arc<dyn Clock>,
        wake: LocalScheduler,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            dispatcher,
            store,
            clock,
            wake,
            config,
        }
    }

    /// Runs until `shutdown` turns true. A round in progress (claimed rows being sent) is
    /// finished first, so shutting down never leaves a row half-claimed by a live process.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        match self.store.release_all_claims().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                rows = n,
                "recovered notifications left mid-send by a previous process"
            ),
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "could not recover abandoned claims; they will be re-claimed when their lease expires")
            }
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Awake: intake need not poke us, we look at storage before sleeping again.
            self.wake.0.planned_ms.store(i64::MIN, Ordering::Release);
            let pause = match self.dispatcher.dispatch_due(self.config.batch).await {
                Ok(report) if report.claimed >= self.config.batch => continue,
                Ok(report) => {
                    if report.claimed > 0 {
                        report.log("dispatch round");
                    }
                    self.sleep_until_next_due().await
                }
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "dispatch round failed");
                    self.config.error_pause
                }
            };
            let wake_at = crate::time::add(self.clock.now(), pause);
            self.wake
                .0
                .planned_ms
                .store(wake_at.as_millisecond(), Ordering::Release);
            // A row committed between the storage read and this store would be missed until
            // `pause` ends; re-reading closes that window.
            let pause = match self.store.next_due().await {
                Ok(Some(due)) if due < wake_at => until(self.clock.now(), due),
                _ => pause,
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wake.0.notify.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("notification worker stopped");
    }

    async fn sleep_until_next_due(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => until(self.clock.now(), due).min(self.config.idle_poll),
            Ok(None) => self.config.idle_poll,
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "cannot read next due notification");
                self.config.error_pause
            }
        }
    }
}

/// Time from `now` to `at`, zero if `at` has passed; never more than a day.
fn until(now: Timestamp, at: Timestamp) -> Duration {
    let ms = at
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .clamp(0, 86_400_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
