//! The emulator's own cost: a trivial in-process client doing `GET next` + `POST response`
//! against it, once on a fresh connection and then repeatedly on a kept-alive one.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::emulator::Emulator;
use crate::stats;

pub struct Overhead {
    /// Connect + next + response.
    pub first: Duration,
    pub warm_median: Duration,
    pub warm_p99: Duration,
}

async fn round_trip(client: &reqwest::Client, emulator: &mut Emulator) -> anyhow::Result<Duration> {
    let base = format!("http://{}/2018-06-01/runtime/invocation", emulator.addr);
    emulator.push(r#"{"ping":true}"#);
    let started = Instant::now();
    let next = client.get(format!("{base}/next")).send().await?;
    let id = next
        .headers()
        .get("lambda-runtime-aws-request-id")
        .and_then(|v| v.to_str().ok())
        .context("no request id")?
        .to_owned();
    let event = next.bytes().await?;
    client
        .post(format!("{base}/{id}/response"))
        .body(event)
        .send()
        .await?
        .error_for_status()?;
    let outcome = emulator.outcome(Duration::from_secs(5)).await?;
    Ok(outcome.at().duration_since(started))
}

pub async fn measure(rounds: usize) -> anyhow::Result<Overhead> {
    let mut emulator = Emulator::start("overhead").await?;
    let client = reqwest::Client::new();
    let first = round_trip(&client, &mut emulator).await?;
    let mut warm = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        warm.push(round_trip(&client, &mut emulator).await?);
    }
    Ok(Overhead {
        first,
        warm_median: stats::median(&warm).context("no rounds")?,
        warm_p99: stats::percentile(&warm, 99.0).context("no rounds")?,
    })
}
