//! The printed tables.

use std::path::Path;
use std::time::Duration;

use crate::overhead::Overhead;
use crate::proxy::Counts;
use crate::run::RunResult;
use crate::size::Size;
use crate::stats::{self, ms};
use crate::usage::Usage;

pub const COLD_TARGET: Duration = Duration::from_millis(50);
pub const RSS_TARGET_KIB: u64 = 40 * 1024;
pub const INTAKE_CALLS_TARGET: f64 = 2.0;

#[derive(Default)]
pub struct FunctionReport {
    pub name: String,
    pub size: Option<Size>,
    pub arm64: Option<Size>,
    pub init: Vec<Duration>,
    pub cold: Vec<Duration>,
    pub first_invocation: Vec<Duration>,
    pub warm: Vec<Duration>,
    pub peak_rss_kib: Vec<u64>,
    pub cold_cpu: Vec<Duration>,
    pub warm_cpu: Duration,
    pub warm_cpu_invocations: usize,
    pub init_calls: Counts,
    pub calls: Counts,
    /// Invocations of the counting run (accepted leads for intake).
    pub counted: usize,
    /// Per-invocation times of the counting run (through the proxy, default settings).
    pub counted_times: Vec<Duration>,
    /// What the counting run's calls are billed by.
    pub usage: Usage,
    /// Bytes the function logged over the counting run's invocations.
    pub log_bytes: u64,
    pub errors: Vec<String>,
}

impl FunctionReport {
    /// Adds one timed run.
    pub fn add(&mut self, run: RunResult) {
        self.init.extend(run.init);
        self.cold.push(run.cold);
        self.first_invocation.extend(run.first_invocation);
        self.cold_cpu.extend(run.cold_cpu);
        if let Some(cpu) = run.warm_cpu {
            self.warm_cpu += cpu;
            self.warm_cpu_invocations += run.warm.len();
        }
        self.warm.extend(run.warm);
        self.peak_rss_kib.push(run.peak_rss_kib);
    }

    fn warm_cpu_per_invocation(&self) -> Option<Duration> {
        let n = u32::try_from(self.warm_cpu_invocations)
            .ok()
            .filter(|n| *n > 0)?;
        Some(self.warm_cpu / n)
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1_000_000.0)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

pub fn sizes(reports: &[FunctionReport]) {
    println!(
        "\n## Deployment size (release profile: opt-level \"s\", thin LTO, 1 CGU, strip, panic=abort)"
    );
    println!(
        "{:<10} {:>7} {:>14} {:>10} {:>14} {:>10}",
        "function", "arch", "binary bytes", "binary MB", "zip bytes", "zip MB"
    );
    for r in reports {
        for s in [&r.size, &r.arm64].into_iter().flatten() {
            println!(
                "{:<10} {:>7} {:>14} {:>10} {:>14} {:>10}",
                r.name,
                s.arch,
                s.binary,
                mb(s.binary),
                s.zip,
                mb(s.zip)
            );
        }
        if r.size.is_none() {
            println!("{:<10} not measured (see errors)", r.name);
        }
    }
}

pub fn runtime(reports: &[FunctionReport], overhead: &Overhead, runs: usize, warm: usize) {
    println!(
        "\n## Cold start, peak RSS, warm invocations ({runs} cold starts per function, {warm} warm invocations after each; AWS = moto)"
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "function",
        "init med",
        "1st inv",
        "cold min",
        "cold med",
        "<=50ms",
        "cold CPU",
        "peak RSS",
        "<=40MB",
        "warm med",
        "warm p99",
        "cold-warm",
        "CPU/inv",
        "errors"
    );
    for r in reports {
        let cold_med = stats::median(&r.cold);
        let rss = r.peak_rss_kib.iter().max().copied();
        println!(
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7}",
            r.name,
            ms(stats::median(&r.init)),
            ms(stats::median(&r.first_invocation)),
            ms(stats::min(&r.cold)),
            ms(cold_med),
            cold_med.map_or("n/a", |c| verdict(c <= COLD_TARGET)),
            ms(stats::median(&r.cold_cpu)),
            rss.map_or("n/a".into(), |k| format!("{:.1}MB", k as f64 / 1024.0)),
            rss.map_or("n/a", |k| verdict(k <= RSS_TARGET_KIB)),
            ms(stats::median(&r.warm)),
            ms(stats::percentile(&r.warm, 99.0)),
            ms(cold_med
                .zip(stats::median(&r.warm))
                .map(|(c, w)| c.saturating_sub(w))),
            ms(r.warm_cpu_per_invocation()),
            r.errors.len(),
        );
    }
    println!(
        "(times in ms; init = spawn -> first GET /next; 1st inv = first GET /next -> first response POST (median); cold = spawn -> first response POST; warm = event queued -> response POST, over all runs; cold-warm = cold med - warm med, what starting the process adds to an invocation's own work (its AWS calls to moto included in both); cold CPU = the process's user+sys CPU up to the first answer (median); CPU/inv = its CPU over the warm invocations / their number; RSS = max VmHWM over the runs, read before the kill)"
    );
    println!(
        "emulator overhead (trivial client, next + response): first incl. connect {} ms, warm median {} ms, p99 {} ms",
        ms(Some(overhead.first)),
        ms(Some(overhead.warm_median)),
        ms(Some(overhead.warm_p99))
    );
}

fn per(counts: &Counts, n: usize) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(op, c)| format!("{op} {:.2}", *c as f64 / n.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

fn total(counts: &Counts) -> u64 {
    counts.values().sum()
}

pub fn calls(reports: &[FunctionReport]) {
    println!("\n## AWS API calls (counted by a proxy in front of moto)");
    for r in reports {
        let init: Vec<String> = r
            .init_calls
            .iter()
            .map(|(op, c)| format!("{op} {c}"))
            .collect();
        let init = if init.is_empty() {
            "none".into()
        } else {
            init.join(", ")
        };
        let unit = if matches!(r.name.as_str(), "proftest" | "submit") {
            "accepted lead"
        } else {
            "invocation"
        };
        let n = r.counted.max(1);
        let aws: Counts = r
            .calls
            .iter()
            .filter(|(op, _)| !op.starts_with("amocrm "))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let amo: Counts = r
            .calls
            .iter()
            .filter(|(op, _)| op.starts_with("amocrm "))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut line = format!(
            "{:<10} init: {init}; per {unit} (n={}, median {} ms each): AWS {:.2} = {}",
            r.name,
            r.counted,
            ms(stats::median(&r.counted_times)),
            total(&aws) as f64 / n as f64,
            per(&aws, n)
        );
        if !amo.is_empty() {
            line.push_str(&format!(
                "; AmoCRM (fake) {:.2} = {}",
                total(&amo) as f64 / n as f64,
                per(&amo, n)
            ));
        }
        if unit == "accepted lead" && r.counted > 0 {
            let each = |op: &str| r.calls.get(op).copied().unwrap_or(0) as f64 / n as f64;
            let pass = total(&aws) as f64 / n as f64 == INTAKE_CALLS_TARGET
                && each("dynamodb.TransactWriteItems") == 1.0
                && each("scheduler.CreateSchedule") == 1.0;
            line.push_str(&format!(
                "  [target 2: 1 TransactWriteItems + 1 CreateSchedule] {}",
                verdict(pass)
            ));
        }
        println!("{line}");
    }
}

pub fn errors(reports: &[FunctionReport], log_dir: &Path) -> usize {
    let n: usize = reports.iter().map(|r| r.errors.len()).sum();
    if n > 0 {
        println!("\n## Errors ({n}; function logs in {})", log_dir.display());
        for r in reports {
            for e in r.errors.iter().take(5) {
                println!("{}: {e}", r.name);
            }
            if r.errors.len() > 5 {
                println!("{}: ... {} more", r.name, r.errors.len() - 5);
            }
        }
    }
    n
}
