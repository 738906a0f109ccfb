//! `landing-bench`: starts landing-local on a free loopback port with a fresh data dir, drives it
//! with concurrent clients, and prints accepted leads/s, latency percentiles and peak RSS beside
//! their targets, plus the disk's raw rate of durable single-row SQLite commits for comparison.
//! It then checks that every 201 has its lead row and two notification rows.
//!
//! The exit code only reflects errors (a non-201, a row-count mismatch, an unclean shutdown),
//! never a missed performance target, so the benchmark cannot flake CI. See `--help`.

mod args;
mod load;
mod mix;
mod procfs;
mod report;
mod sqlite;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use clap::Parser;

use crate::args::{Args, Load};
use crate::mix::Mix;
use crate::procfs::{Cpu, Pid, RssSampler};
use crate::report::Report;
use landing_bench::server::{Scratch, Server};

const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One thread for the clients: the server gets the rest of the machine.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match bench().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("landing-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(FAILURE)` when the run found errors, `Err` when it could not run at all.
async fn bench() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let report = run(&args).await?;
    report.print();
    let problems = report.problems();
    if problems.is_empty() {
        println!("result     OK: every request got 201 and every lead is stored");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("ERROR      {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let bin = args.landing_local()?;
    let scratch = Scratch::create(args.dir.as_deref(), args.keep)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.clients())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;

    let server = Server::start(&bin, &scratch, &http, &[]).await?;
    let pid = server.pid();
    let fs = procfs::filesystem(scratch.root())
        .map_or_else(|| "unknown".into(), |(t, dev)| format!("{t} on {dev}"));
    println!("landing-local {} (pid {pid})", bin.display());
    println!("data dir   {} ({fs})", scratch.data_dir().display());
    if bin.components().any(|c| c.as_os_str() == "debug") {
        println!("warning    this is a debug build; figures are not representative");
    }
    let load = match args.load() {
        Load::Requests(n) => format!("{n} requests"),
        Load::For(d) => humantime::format_duration(d).to_string(),
    };
    println!(
        "load       {} clients, {load}, after {} warm-up",
        args.clients(),
        humantime::format_duration(args.warmup)
    );

    let sampler = RssSampler::start(pid, RSS_SAMPLE_EVERY);
    let mix = Arc::new(Mix::new(run_id()));
    let url = server.base_url().to_owned();
    let warmup = if args.warmup.is_zero() {
        load::Phase::default()
    } else {
        load::run(&http, &url, args.clients(), Load::For(args.warmup), &mix).await?
    };

    let cpu_before = Cpu::read(Pid::Of(pid));
    let own_cpu_before = Cpu::read(Pid::Me);
    let written_before = procfs::write_bytes(Pid::Of(pid));
    let measured = load::run(&http, &url, args.clients(), args.load(), &mix).await?;
    let server_cpu = Cpu::read(Pid::Of(pid))
        .zip(cpu_before)
        .map(|(a, b)| a.since(b));
    let bench_cpu = Cpu::read(Pid::Me)
        .zip(own_cpu_before)
        .map(|(a, b)| a.since(b));
    let server_written = procfs::write_bytes(Pid::Of(pid))
        .zip(written_before)
        .map(|(a, b)| a.saturating_sub(b));
    let peak_rss_kib = procfs::status_kib(Pid::Of(pid), "VmHWM");
    let rss = sampler.finish().await;

    let shutdown = server.shutdown().await.map_err(|e| format!("{e:#}"));
    let rows =
        sqlite::count_rows(&scratch.data_dir().join("landing.db")).map_err(|e| format!("{e:#}"));

    println!(
        "raw        measuring single-row durable commits for {} …",
        humantime::format_duration(args.raw_commits)
    );
    let raw_path = scratch.data_dir().join("raw-commits.db");
    let raw_for = args.raw_commits;
    let raw = tokio::task::spawn_blocking(move || sqlite::raw_commit_rate(&raw_path, raw_for))
        .await
        .context("raw commit measurement stopped")?
        .map_err(|e| format!("{e:#}"));
    println!();

    Ok(Report {
        clients: args.clients(),
        warmup,
        measured,
        peak_rss_kib,
        rss,
        server_cpu,
        bench_cpu,
        server_written,
        shutdown,
        rows,
        raw,
    })
}

/// Distinguishes this run's idempotency keys.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}
