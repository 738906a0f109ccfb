//! N concurrent clients, each sending one request at a time (like N browsers), until the phase's
//! request budget or time is used up. Every answer is counted; latency is measured from send to
//! the last byte of the answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::CONTENT_TYPE;
use tokio::task::JoinSet;

use crate::args::Load;
use crate::mix::{Mix, Request};

/// Error samples kept for the report.
const MAX_SAMPLES: usize = 5;

/// What one phase (warm-up or measurement) saw.
#[derive(Debug, Default)]
pub struct Phase {
    pub elapsed: Duration,
    /// Per request, in microseconds; sorted once the phase ends.
    pub latencies_us: Vec<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer at all (connect error, reset, timeout).
    pub transport_errors: u64,
    /// `201`s whose body lacked a `leadId`.
    pub bad_bodies: u64,
    pub samples: Vec<String>,
}

impl Phase {
    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors
    }

    /// Every `201`: each one claims a committed lead, so each must have its row.
    pub fn status_201(&self) -> u64 {
        self.statuses.get(&201).copied().unwrap_or(0)
    }

    /// `201`s with a well-formed body: the accepted leads.
    pub fn created(&self) -> u64 {
        self.status_201().saturating_sub(self.bad_bodies)
    }

    /// Everything that is not a well-formed `201`.
    pub fn errors(&self) -> u64 {
        self.requests() - self.created()
    }

    pub fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Nearest-rank percentile in milliseconds; `q` in 0..=1.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies_us[rank - 1] as f64 / 1000.0
    }

    fn absorb(&mut self, other: Phase) {
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.bad_bodies += other.bad_bodies;
        let room = MAX_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }

    fn sample(&mut self, what: impl FnOnce() -> String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(what());
        }
    }
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    clients: usize,
    load: Load,
    mix: &Arc<Mix>,
) -> anyhow::Result<Phase> {
    let budget = Arc::new(Budget {
        taken: AtomicU64::new(0),
        limit: match load {
            Load::Requests(n) => n,
            Load::For(_) => u64::MAX,
        },
        deadline: match load {
            Load::Requests(_) => None,
            Load::For(d) => Some(Instant::now() + d),
        },
    });
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(client(
            http.clone(),
            base.to_owned(),
            mix.clone(),
            budget.clone(),
        ));
    }
    let mut phase = Phase::default();
    while let Some(done) = tasks.join_next().await {
        phase.absorb(done.context("a client task failed")?);
    }
    phase.elapsed = started.elapsed();
    phase.latencies_us.sort_unstable();
    Ok(phase)
}

struct Budget {
    taken: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
}

impl Budget {
    fn take(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

async fn client(http: reqwest::Client, base: String, mix: Arc<Mix>, budget: Arc<Budget>) -> Phase {
    let mut tally = Phase::default();
    while budget.take() {
        let req = mix.next();
        let path = req.path;
        let started = Instant::now();
        let answer = send(&http, &base, req).await;
        let micros = started.elapsed().as_micros();
        tally
            .latencies_us
            .push(u64::try_from(micros).unwrap_or(u64::MAX));
        match answer {
            Ok((status, body)) => {
                *tally.statuses.entry(status).or_default() += 1;
                if status != 201 {
                    tally.sample(|| format!("{status} from {path}: {}", excerpt(&body)));
                } else if !has_lead_id(&body) {
                    tally.bad_bodies += 1;
                    tally.sample(|| format!("201 without leadId from {path}: {}", excerpt(&body)));
                }
            }
            Err(e) => {
                tally.transport_errors += 1;
                tally.sample(|| format!("no answer from {path}: {}", error_chain(&e)));
            }
        }
    }
    tally
}

async fn send(http: &reqwest::Client, base: &str, req: Request) -> reqwest::Result<(u16, Vec<u8>)> {
    let mut builder = http
        .post(format!("{base}{}", req.path))
        .header(CONTENT_TYPE, req.content_type)
        .body(req.body);
    if let Some(key) = req.idempotency_key {
        builder = builder.header("Idempotency-Key", key);
    }
    let resp = builder.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body.to_vec()))
}

fn has_lead_id(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("leadId")?.as_str().map(|id| !id.is_empty()))
        .unwrap_or(false)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let phase = Phase {
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..Phase::default()
        };
        assert_eq!(phase.percentile_ms(0.5), 50.0);
        assert_eq!(phase.percentile_ms(0.99), 99.0);
        assert_eq!(phase.percentile_ms(1.0), 100.0);
        assert_eq!(Phase::default().percentile_ms(0.99), 0.0);
    }

    #[test]
    fn anything_but_a_201_with_a_lead_id_is_an_error() {
        let mut phase = Phase::default();
        phase.statuses.insert(201, 10);
        phase.statuses.insert(503, 2);
        phase.bad_bodies = 1;
        phase.transport_errors = 3;
        assert_eq!(phase.requests(), 15);
        assert_eq!(phase.created(), 9);
        assert_eq!(phase.errors(), 6);
        assert!(has_lead_id(
            br#"{"leadId":"0199","sourceCampaign":"proftest"}"#
        ));
        assert!(!has_lead_id(br#"{"leadId":""}"#));
        assert!(!has_lead_id(b"oops"));
    }
}
