//! Running a function under the emulator: one cold start (spawn → first answered event), then
//! warm invocations one after another, then its peak RSS just before it is killed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::Value;

use crate::emulator::{Emulator, Outcome};
use crate::process::FunctionProcess;
use crate::proxy::{CountingProxy, Counts};
use crate::setup::Env;
use crate::usage::Usage;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a function runs: its binary, its configuration, and the AWS endpoint it gets.
pub struct Target<'a> {
    pub name: &'a str,
    pub bin: &'a Path,
    pub env: &'a Env,
    pub endpoint: &'a str,
    pub log_dir: &'a Path,
}

impl Target<'_> {
    async fn start(&self, tag: &str) -> anyhow::Result<(Emulator, FunctionProcess)> {
        let emulator = Emulator::start(self.name).await?;
        let mut env = self.env.clone();
        env.push(("AWS_ENDPOINT_URL".into(), self.endpoint.into()));
        let log = self.log_dir.join(format!("{}-{tag}.log", self.name));
        let process = FunctionProcess::spawn(self.bin, self.name, emulator.addr, &env, log)?;
        Ok((emulator, process))
    }
}

#[derive(Default)]
pub struct RunResult {
    /// Spawn → the first `GET /next` (the function's own init).
    pub init: Option<Duration>,
    /// Spawn → the first response POST.
    pub cold: Duration,
    /// The first `GET /next` → the first response POST (the cold invocation itself).
    pub first_invocation: Option<Duration>,
    pub warm: Vec<Duration>,
    pub peak_rss_kib: u64,
    /// CPU time of the process up to the first answer (init + cold invocation).
    pub cold_cpu: Option<Duration>,
    /// CPU time of the process over the warm invocations.
    pub warm_cpu: Option<Duration>,
    /// Every answer, in order (the first is the cold one).
    pub answers: Vec<Value>,
    /// Invocations answered with `/error` (or unparsable answers).
    pub errors: Vec<String>,
}

/// One answer, waiting for it while watching the process.
async fn answer(emulator: &mut Emulator, process: &mut FunctionProcess) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        match emulator.outcome(Duration::from_millis(250)).await {
            Ok(Outcome::InitError { body, .. }) => {
                return Err(anyhow!(
                    "init error: {}\n{}",
                    String::from_utf8_lossy(&body),
                    process.log_tail()
                ));
            }
            Ok(o) => return Ok(o),
            Err(_) if Instant::now() < deadline => process.check_alive()?,
            Err(e) => return Err(e.context(process.log_tail())),
        }
    }
}

fn record(result: &mut RunResult, outcome: Outcome, id: &str) {
    match outcome {
        Outcome::Response { id: got, body, .. } => {
            if got != id {
                result
                    .errors
                    .push(format!("answer for {got}, expected {id}"));
            }
            match serde_json::from_slice(&body) {
                Ok(v) => result.answers.push(v),
                Err(e) => result.errors.push(format!("answer is not JSON: {e}")),
            }
        }
        Outcome::Error { id: got, body, .. } => {
            result.answers.push(Value::Null);
            result.errors.push(format!(
                "invocation {got} failed: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Outcome::InitError { .. } => result.errors.push("init error".into()),
    }
}

/// Cold start with `events[0]` (queued before the spawn), then the rest as warm invocations.
pub async fn run(
    target: &Target<'_>,
    tag: &str,
    events: Vec<Vec<u8>>,
) -> anyhow::Result<RunResult> {
    let mut events = events.into_iter();
    let first = events.next().context("no event")?;
    let (mut emulator, mut process) = target.start(tag).await?;
    let id = emulator.push(first);
    let outcome = answer(&mut emulator, &mut process).await?;
    let first_next = emulator.first_next();
    let mut result = RunResult {
        cold: outcome.at().duration_since(process.spawned_at),
        init: first_next.map(|t| t.duration_since(process.spawned_at)),
        first_invocation: first_next.map(|t| outcome.at().saturating_duration_since(t)),
        ..RunResult::default()
    };
    record(&mut result, outcome, &id);
    result.cold_cpu = process.cpu_time().ok();
    for event in events {
        let sent = Instant::now();
        let id = emulator.push(event);
        let outcome = answer(&mut emulator, &mut process).await?;
        result.warm.push(outcome.at().duration_since(sent));
        record(&mut result, outcome, &id);
    }
    result.peak_rss_kib = process.peak_rss_kib()?;
    result.warm_cpu = match (process.cpu_time(), result.cold_cpu) {
        (Ok(end), Some(cold)) => Some(end.saturating_sub(cold)),
        _ => None,
    };
    Ok(result)
}

/// AWS calls through the counting proxy: during init, and during `events` (answers and
/// per-invocation times returned).
pub async fn count(
    target: &Target<'_>,
    proxy: &CountingProxy,
    events: Vec<Vec<u8>>,
) -> anyhow::Result<Counted> {
    proxy.take();
    let (mut emulator, mut process) = target.start("count").await?;
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while emulator.first_next().is_none() {
        process.check_alive()?;
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} never asked for an event",
            target.name
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let init = proxy.take();
    let log_at_init = log_len(&process.log);
    let mut result = RunResult::default();
    for event in events {
        let sent = Instant::now();
        let id = emulator.push(event);
        let outcome = answer(&mut emulator, &mut process).await?;
        result.warm.push(outcome.at().duration_since(sent));
        record(&mut result, outcome, &id);
    }
    let usage = proxy.usage();
    Ok(Counted {
        init,
        calls: proxy.take(),
        usage,
        log_bytes: log_len(&process.log).saturating_sub(log_at_init),
        result,
    })
}

/// The counting run: AWS calls at init and over the invocations, what they are billed by, and
/// the bytes the function logged over the invocations.
pub struct Counted {
    pub init: Counts,
    pub calls: Counts,
    pub usage: Usage,
    pub log_bytes: u64,
    pub result: RunResult,
}

fn log_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
