//! The printed result: measured values beside their targets, then the checks that decide the
//! exit code.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::Phase;
use crate::procfs::{Cpu, RssSamples};
use crate::sqlite::{RawCommits, RowCounts};
use landing_bench::server::Shutdown;

pub const TARGET_LEADS_PER_S: f64 = 1000.0;
pub const TARGET_CLIENTS: usize = 32;
pub const TARGET_P99_MS: f64 = 50.0;
pub const TARGET_RSS_MIB: f64 = 64.0;

pub struct Report {
    pub clients: usize,
    pub warmup: Phase,
    pub measured: Phase,
    /// `VmHWM` at the end of the load, KiB.
    pub peak_rss_kib: Option<u64>,
    pub rss: RssSamples,
    pub server_cpu: Option<Cpu>,
    pub bench_cpu: Option<Cpu>,
    pub server_written: Option<u64>,
    pub shutdown: Result<Shutdown, String>,
    pub rows: Result<RowCounts, String>,
    pub raw: Result<RawCommits, String>,
}

impl Report {
    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// What makes the run fail: wrong answers, lost or extra rows, a process that would not stop.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, phase) in [("warm-up", &self.warmup), ("measured", &self.measured)] {
            if phase.errors() > 0 {
                out.push(format!(
                    "{name}: {} of {} requests were not a 201 with a leadId",
                    phase.errors(),
                    phase.requests()
                ));
            }
        }
        let answered = self.warmup.status_201() + self.measured.status_201();
        match &self.rows {
            Ok(rows) => {
                if rows.leads != answered {
                    out.push(format!(
                        "landing_leads has {} rows but {answered} requests got 201",
                        rows.leads
                    ));
                }
                if rows.notifications != 2 * answered {
                    out.push(format!(
                        "scheduled_notifications has {} rows, expected 2 × {answered}",
                        rows.notifications
                    ));
                }
            }
            Err(e) => out.push(format!("cannot verify rows: {e}")),
        }
        match &self.shutdown {
            Ok(s) if s.clean() => {}
            Ok(s) => out.push(format!(
                "landing-local did not shut down cleanly on SIGTERM: {}{}",
                s.status,
                if s.killed { " (killed)" } else { "" }
            )),
            Err(e) => out.push(format!("shutdown: {e}")),
        }
        if let Err(e) = &self.raw {
            out.push(format!("raw commit measurement: {e}"));
        }
        out
    }

    fn render(&self) -> String {
        let m = &self.measured;
        let mut s = String::new();
        let mut line = |text: String| {
            s.push_str(&text);
            s.push('\n');
        };

        line(format!(
            "warm-up    {} requests in {:.2} s",
            self.warmup.requests(),
            self.warmup.elapsed.as_secs_f64()
        ));
        line(format!(
            "measured   {} requests in {:.2} s, {} clients; statuses: {}",
            m.requests(),
            m.elapsed.as_secs_f64(),
            self.clients,
            statuses(m)
        ));
        line(String::new());
        line(format!(
            "{:<32} {:>16}   {:<28} {}",
            "metric", "measured", "target", "verdict"
        ));
        let leads = m.per_second(m.created());
        line(row(
            "accepted leads/s",
            format!("{leads:.0}"),
            format!("≥ {TARGET_LEADS_PER_S:.0} at {TARGET_CLIENTS} clients"),
            if self.clients == TARGET_CLIENTS {
                verdict(leads >= TARGET_LEADS_PER_S)
            } else {
                "n/a (other client count)"
            },
        ));
        let p99 = m.percentile_ms(0.99);
        for (name, q) in [("p50", 0.5), ("p90", 0.9)] {
            line(row(
                &format!("latency {name}"),
                format!("{:.2} ms", m.percentile_ms(q)),
                String::new(),
                "",
            ));
        }
        line(row(
            "latency p99",
            format!("{p99:.2} ms"),
            format!("≤ {TARGET_P99_MS:.0} ms"),
            verdict(p99 <= TARGET_P99_MS),
        ));
        line(row(
            "latency max",
            format!("{:.2} ms", m.percentile_ms(1.0)),
            String::new(),
            "",
        ));
        match self.peak_rss_kib {
            Some(kib) => {
                let mib = kib as f64 / 1024.0;
                line(row(
                    "peak RSS (VmHWM)",
                    format!("{mib:.1} MiB"),
                    format!("≤ {TARGET_RSS_MIB:.0} MiB"),
                    verdict(mib <= TARGET_RSS_MIB),
                ));
            }
            None => line(row(
                "peak RSS (VmHWM)",
                "unknown".into(),
                format!("≤ {TARGET_RSS_MIB:.0} MiB"),
                "n/a",
            )),
        }
        line(row(
            "sampled VmRSS max / mean",
            format!(
                "{:.1} / {:.1} MiB",
                self.rss.max_kib as f64 / 1024.0,
                self.rss.mean_kib() as f64 / 1024.0
            ),
            format!("{} samples", self.rss.count),
            "",
        ));
        match &self.raw {
            Ok(raw) => {
                line(row(
                    "raw durable commits/s",
                    format!("{:.0}", raw.per_second()),
                    format!("mean {:.2} ms, max {:.2} ms", raw.mean_ms(), ms(raw.max)),
                    "",
                ));
                line(row(
                    "leads/s ÷ raw commits/s",
                    format!("{:.1}×", leads / raw.per_second().max(f64::EPSILON)),
                    "> 1× needs group commit".into(),
                    "",
                ));
            }
            Err(e) => line(row("raw durable commits/s", "failed".into(), e.clone(), "")),
        }
        line(String::new());

        let answered = self.warmup.status_201() + self.measured.status_201();
        match &self.rows {
            Ok(rows) => line(format!(
                "rows       landing_leads {} ({}), scheduled_notifications {} ({}) for {answered} × 201",
                rows.leads,
                ok(rows.leads == answered),
                rows.notifications,
                ok(rows.notifications == 2 * answered)
            )),
            Err(e) => line(format!("rows       not verified: {e}")),
        }
        if let Some(cpu) = self.server_cpu {
            line(format!(
                "server CPU {:.2} s user + {:.2} s sys = {:.2} cores over the measured phase",
                cpu.user.as_secs_f64(),
                cpu.system.as_secs_f64(),
                cpu.total().as_secs_f64() / m.elapsed.as_secs_f64().max(f64::EPSILON)
            ));
        }
        if let Some(cpu) = self.bench_cpu {
            line(format!(
                "bench CPU  {:.2} s user + {:.2} s sys = {:.2} cores (same machine, {} cores)",
                cpu.user.as_secs_f64(),
                cpu.system.as_secs_f64(),
                cpu.total().as_secs_f64() / m.elapsed.as_secs_f64().max(f64::EPSILON),
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ));
        }
        if let Some(bytes) = self.server_written {
            line(format!(
                "disk       landing-local wrote {:.1} MiB ({:.1} KiB per accepted lead)",
                bytes as f64 / 1_048_576.0,
                bytes as f64 / 1024.0 / m.created().max(1) as f64
            ));
        }
        match &self.shutdown {
            Ok(sd) => line(format!(
                "shutdown   SIGTERM → {} after {:.2} s{}",
                sd.status,
                sd.took.as_secs_f64(),
                if sd.killed { " (had to kill)" } else { "" }
            )),
            Err(e) => line(format!("shutdown   failed: {e}")),
        }
        for sample in self.warmup.samples.iter().chain(&self.measured.samples) {
            line(format!("  e.g. {sample}"));
        }
        s
    }
}

fn row(metric: &str, measured: String, target: String, verdict: &str) -> String {
    let mut out = String::new();
    let _ = write!(out, "{metric:<32} {measured:>16}   {target:<28} {verdict}");
    out.trim_end().to_owned()
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn ok(met: bool) -> &'static str {
    if met { "OK" } else { "MISMATCH" }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn statuses(phase: &Phase) -> String {
    let mut parts: Vec<String> = phase
        .statuses
        .iter()
        .map(|(status, n)| format!("{status}×{n}"))
        .collect();
    if phase.transport_errors > 0 {
        parts.push(format!("no answer×{}", phase.transport_errors));
    }
    if phase.bad_bodies > 0 {
        parts.push(format!("(201 without leadId×{})", phase.bad_bodies));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
