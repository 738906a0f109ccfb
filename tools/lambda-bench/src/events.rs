//! The events each function gets, built from the fixtures in `events/`: intake requests with a
//! unique phone, email and request id per invocation; scheduler payloads and stream batches for
//! leads the intake runs committed; the scheduled event for the sweeper.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use serde_json::Value;

/// The lead id in the crm-sync fixture, replaced by a real one.
const FIXTURE_LEAD: &str = "01935a7e-8c2a-7b3e-9f00-6a1c2b3d4e5f";

pub struct Fixtures {
    proftest: Value,
    submit: Value,
    stream: String,
    scheduled: String,
    serial: AtomicU64,
    /// Makes phones unique across bench runs against one moto (tables differ anyway).
    base: u64,
}

impl Fixtures {
    pub fn load(events: &Path) -> anyhow::Result<Fixtures> {
        let read = |p: &str| {
            std::fs::read_to_string(events.join(p)).with_context(|| format!("read events/{p}"))
        };
        Ok(Fixtures {
            proftest: serde_json::from_str(&read("proftest/valid-json.json")?)?,
            submit: serde_json::from_str(&read("submit/valid-kaspi.json")?)?,
            stream: read("crm-sync/stream-insert-and-modify.json")?,
            scheduled: read("sweeper/scheduled-event.json")?,
            serial: AtomicU64::new(0),
            base: u64::from(uuid::Uuid::now_v7().as_fields().1) * 100,
        })
    }

    /// The API Gateway v2 request of `proftest` or `submit` with a fresh contact.
    pub fn intake(&self, function: &str) -> anyhow::Result<Vec<u8>> {
        let mut event = match function {
            "proftest" => self.proftest.clone(),
            "submit" => self.submit.clone(),
            other => bail!("{other} is not an intake function"),
        };
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let local = (self.base + n) % 10_000_000;
        let mut body: Value =
            serde_json::from_str(event["body"].as_str().context("fixture body")?)?;
        body["phone"] = format!("+7 701 {local:07}").into();
        body["email"] = format!("bench.{n}.{}@example.kz", self.base).into();
        let body = body.to_string();
        event["headers"]["content-length"] = body.len().to_string().into();
        event["requestContext"]["requestId"] = format!("bench-{}-{n}", self.base).into();
        event["body"] = body.into();
        Ok(serde_json::to_vec(&event)?)
    }

    /// What the lead's one-shot schedule delivers to `notify`.
    pub fn notify(&self, lead: &str) -> Vec<u8> {
        serde_json::json!({ "leadId": lead, "correlationId": format!("bench-{lead}") })
            .to_string()
            .into_bytes()
    }

    /// The stream batch (INSERT + MODIFY) of one lead.
    pub fn stream(&self, lead: &str) -> Vec<u8> {
        self.stream.replace(FIXTURE_LEAD, lead).into_bytes()
    }

    pub fn scheduled(&self) -> Vec<u8> {
        self.scheduled.clone().into_bytes()
    }
}
