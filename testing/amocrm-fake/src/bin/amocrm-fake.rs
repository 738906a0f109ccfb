//! The fake AmoCRM as a process of its own, for scripts that are not Rust tests (the offline
//! deploy rehearsal, `infra/rehearse.py`): serves on `127.0.0.1:<random port>` with the default
//! configuration, prints `{"baseUrl", "token", "pipelineId"}` as the first line of standard
//! output, and stops when standard input closes. Every deal it holds at that moment is printed
//! as one JSON line.

use std::io::{BufRead, Write};

use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};

fn main() {
    let fake = FakeAmo::start(FakeConfig::default());
    let mut out = std::io::stdout().lock();
    let hello = serde_json::json!({
        "baseUrl": fake.base_url(),
        "token": DEFAULT_LONG_LIVED_TOKEN,
        "pipelineId": DEFAULT_PIPELINE_ID,
    });
    let _ = writeln!(out, "{hello}");
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    for id in fake.leads().iter().map(|l| l.id) {
        if let Some(json) = fake.lead_json(id) {
            let _ = writeln!(out, "{json}");
        }
    }
}
