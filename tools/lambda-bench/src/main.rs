//! Footprint benchmark of the five Lambda binaries (`proftest`, `submit`, `notify`, `crm-sync`,
//! `sweeper`): release binary and zip size, cold start (spawn → first answered event) behind a
//! minimal local Lambda Runtime API emulator, peak RSS, warm per-invocation time, and the AWS
//! API calls each invocation makes — every AWS call served by moto.
//!
//! ```sh
//! cargo build --release -p landing-proftest -p landing-submit -p landing-notify -p landing-crm-sync -p landing-sweeper -p landing-lambda-bench
//! ./infra/with-moto.sh target/release/landing-lambda-bench
//! ```
//!
//! Knobs (environment): `LAMBDA_BENCH_RUNS` cold starts per function (default 5),
//! `LAMBDA_BENCH_WARM` warm invocations after each cold start (50), `LAMBDA_BENCH_COUNT`
//! invocations of the call-counting run (10). Sizes are of `target/release/<bin>` (the host's
//! x86_64 build) and, when present, of the arm64 `target/lambda/<bin>/bootstrap`.
//!
//! The exit code is non-zero only when something failed to run (a binary missing, a function
//! crashing or answering with an error), never because a target was missed.

mod check;
mod cost;
mod emulator;
mod events;
mod overhead;
mod plan;
mod process;
mod proxy;
mod report;
mod run;
mod setup;
mod size;
mod stats;
mod usage;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::events::Fixtures;
use crate::proxy::CountingProxy;
use crate::report::FunctionReport;

const FUNCTIONS: [&str; 5] = ["proftest", "submit", "notify", "crm-sync", "sweeper"];
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Footprint of the five Lambda binaries: size, zip size, cold start, peak RSS, warm latency and
/// AWS calls per invocation, behind a local Lambda Runtime API emulator and moto (run through
/// ./infra/with-moto.sh).
#[derive(Debug, Parser)]
#[command(name = "landing-lambda-bench", version)]
pub struct Knobs {
    /// Cold starts per function (the median is reported)
    #[arg(long, env = "LAMBDA_BENCH_RUNS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Warm invocations per function
    #[arg(long, env = "LAMBDA_BENCH_WARM", default_value_t = 50)]
    warm: u64,
    /// Invocations of the counting run (AWS calls per invocation)
    #[arg(long, env = "LAMBDA_BENCH_COUNT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
}

impl Knobs {
    pub fn runs(&self) -> usize {
        usize::try_from(self.runs).unwrap_or(usize::MAX)
    }
    pub fn warm(&self) -> usize {
        usize::try_from(self.warm).unwrap_or(usize::MAX)
    }
    pub fn count(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("landing-lambda-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything; the number of failures.
async fn bench() -> anyhow::Result<usize> {
    let knobs = Knobs::parse();
    let root = PathBuf::from(ROOT)
        .canonicalize()
        .context("workspace root")?;
    let moto = std::env::var("MOTO_ENDPOINT")
        .context("MOTO_ENDPOINT is not set: run through ./infra/with-moto.sh")?;
    let log_dir = tempfile::Builder::new()
        .prefix("lambda-bench-")
        .tempdir()?
        .keep();
    let mut reports: Vec<FunctionReport> = FUNCTIONS
        .iter()
        .map(|f| FunctionReport {
            name: (*f).into(),
            ..FunctionReport::default()
        })
        .collect();

    for r in &mut reports {
        measure_size(&root, &log_dir, r);
    }
    let overhead = overhead::measure(200).await?;
    let fixtures = Fixtures::load(&root.join("events"))?;
    let stack = setup::create(&moto).await?;
    let proxy = CountingProxy::start(&moto).await?;
    let bench = plan::Bench {
        root: &root,
        log_dir: &log_dir,
        moto: &moto,
        stack: &stack,
        proxy: &proxy,
        fixtures: &fixtures,
        knobs: &knobs,
    };
    let mut leads = plan::Leads::default();
    for r in &mut reports {
        if let Err(e) = bench.measure(&mut leads, r).await {
            r.errors.push(format!("{e:#}"));
        }
    }

    println!("# landing Lambda footprint benchmark");
    println!(
        "host: {} x86_64 cores; functions run as built for x86_64-unknown-linux-gnu (target/release); arm64 sizes are added when target/lambda/<bin>/bootstrap is an arm64 build (`cargo lambda build --release --arm64`); memory size {} MB (not enforced); stack prefix {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        process::MEMORY_MB,
        stack.prefix
    );
    report::sizes(&reports);
    report::runtime(&reports, &overhead, knobs.runs(), knobs.warm());
    report::calls(&reports);
    println!(
        "\nnotes: notify gets leads committed by the proftest runs (sends 1 SMS + 1 email each), crm-sync the submit runs' leads (synced to the fake AmoCRM; timed runs with AMOCRM_RPS={}, the counting run with the default 7 requests/s pacing); every intake run (and so each notify/crm-sync run) has its own fresh tables, since moto's TransactWriteItems deep-copies the tables it touches; sweeper runs over empty tables (an idle sweep). CPU = utime+stime of the function process (10 ms ticks). Counting runs go through the proxy, timed runs straight to moto. moto, the fake AmoCRM and the bench share the same {} cores with the function.",
        plan::CRM_TIMED_RPS,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if let Err(e) = cost::print(&reports, &root, &log_dir) {
        println!("\ncost: not computed: {e:#}");
    }
    println!("function logs: {}", log_dir.display());
    Ok(report::errors(&reports, &log_dir))
}

fn measure_size(root: &Path, scratch: &Path, r: &mut FunctionReport) {
    let host = root.join("target/release").join(&r.name);
    match size::measure(&host, scratch) {
        Ok(s) => r.size = Some(s),
        Err(e) => r.errors.push(format!("size of {}: {e:#}", host.display())),
    }
    if let Ok(true) = size::has_symtab(&host) {
        r.errors.push(format!("{} is not stripped", host.display()));
    }
    // `cargo lambda build` writes here for whatever target it was given; only an arm64 build adds
    // a row the host build has not already given.
    let arm = root.join("target/lambda").join(&r.name).join("bootstrap");
    if size::arch(&arm).is_ok_and(|a| a == "arm64") {
        match size::measure(&arm, scratch) {
            Ok(s) => r.arm64 = Some(s),
            Err(e) => r.errors.push(format!("size of {}: {e:#}", arm.display())),
        }
    }
}
