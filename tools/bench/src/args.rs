//! Command-line flags (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Starts landing-local on a free loopback port with a fresh data dir and drives it.
///
/// Exit code: 0 when every request got 201, the row counts match and landing-local stopped
/// cleanly on SIGTERM; 1 when not; 2 when the benchmark could not run. Missed performance
/// targets are reported but never change the exit code.
#[derive(Debug, Clone, Parser)]
#[command(name = "landing-bench", version)]
pub struct Args {
    /// landing-local binary (default: target/release/landing-local in the workspace, else
    /// target/debug/landing-local)
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Concurrent clients
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Requests in the measured phase
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Measure for a fixed time instead, e.g. 30s (overrides --requests)
    #[arg(long, value_name = "DUR", value_parser = positive_span)]
    duration: Option<Duration>,
    /// Unmeasured warm-up at full concurrency (0s to skip)
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = span)]
    pub warmup: Duration,
    /// How long to measure raw single-row durable SQLite commits
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = span)]
    pub raw_commits: Duration,
    /// Where to create the temp dir (default: $TMPDIR or /tmp); pick the disk you want to measure
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// Keep the temp dir (database, server log) for inspection
    #[arg(long)]
    pub keep: bool,
}

/// How long the measured phase runs.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    Requests(u64),
    For(Duration),
}

impl Args {
    pub fn clients(&self) -> usize {
        usize::try_from(self.clients).unwrap_or(usize::MAX)
    }

    pub fn load(&self) -> Load {
        match self.duration {
            Some(d) => Load::For(d),
            None => Load::Requests(self.requests),
        }
    }

    /// The landing-local binary: `--bin`, else the workspace's release build, else its debug build.
    pub fn landing_local(&self) -> anyhow::Result<PathBuf> {
        landing_bench::server::landing_local(self.bin.as_deref())
    }
}

fn span(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("not a duration like 2s ({e})"))
}

fn positive_span(raw: &str) -> Result<Duration, String> {
    match span(raw)? {
        d if d.is_zero() => Err("must be more than 0s".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("landing-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.clients(), 32);
        assert!(matches!(a.load(), Load::Requests(20_000)));
        assert_eq!(a.warmup, Duration::from_secs(1));
        assert_eq!(a.raw_commits, Duration::from_secs(2));
    }

    #[test]
    fn flags_take_separate_or_inline_values() {
        let a = parse(&[
            "--clients",
            "8",
            "--requests=500",
            "--warmup",
            "0s",
            "--keep",
        ])
        .unwrap();
        assert_eq!(a.clients(), 8);
        assert!(matches!(a.load(), Load::Requests(500)));
        assert!(a.warmup.is_zero());
        assert!(a.keep);
        let a = parse(&["--duration", "3s"]).unwrap();
        assert!(matches!(a.load(), Load::For(d) if d == Duration::from_secs(3)));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &["--clients"][..],
            &["--clients", "many"],
            &["--clients", "0"],
            &["--duration", "soon"],
            &["--duration", "0s"],
            &["--frobnicate"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
    }
}
