//! Command-line flags. Hand-rolled: a handful of `--flag value` pairs do not need a parser crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

pub const USAGE: &str = "\
landing-bench: starts landing-local on a free loopback port with a fresh data dir and drives it

USAGE: landing-bench [FLAGS]

  --bin PATH         landing-local binary (default: target/release/landing-local in the
                     workspace, else target/debug/landing-local)
  --clients N        concurrent clients (default 32)
  --requests N       requests in the measured phase (default 20000)
  --duration DUR     measure for a fixed time instead, e.g. 30s (overrides --requests)
  --warmup DUR       unmeasured warm-up at full concurrency (default 1s; 0s to skip)
  --raw-commits DUR  how long to measure raw single-row durable SQLite commits (default 2s)
  --dir PATH         where to create the temp dir (default: $TMPDIR or /tmp); pick the disk
                     you want to measure
  --keep             keep the temp dir (database, server log) for inspection
  -h, --help         this text

Exit code: 0 when every request got 201, the row counts match and landing-local stopped
cleanly on SIGTERM; 1 when not; 2 when the benchmark could not run. Missed performance
targets are reported but never change the exit code.";

#[derive(Debug, Clone)]
pub struct Args {
    pub bin: Option<PathBuf>,
    pub clients: usize,
    pub load: Load,
    pub warmup: Duration,
    pub raw_commits: Duration,
    pub dir: Option<PathBuf>,
    pub keep: bool,
}

/// How long the measured phase runs.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    Requests(u64),
    For(Duration),
}

impl Args {
    /// `Ok(None)` when help was asked for.
    pub fn parse(raw: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut args = Args {
            bin: None,
            clients: 32,
            load: Load::Requests(20_000),
            warmup: Duration::from_secs(1),
            raw_commits: Duration::from_secs(2),
            dir: None,
            keep: false,
        };
        let mut requests = 20_000;
        let mut duration = None;
        let mut it = raw.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| anyhow!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--bin" => args.bin = Some(PathBuf::from(value()?)),
                "--clients" => args.clients = number(&flag, &value()?)?,
                "--requests" => requests = number(&flag, &value()?)?,
                "--duration" => duration = Some(span(&flag, &value()?)?),
                "--warmup" => args.warmup = span(&flag, &value()?)?,
                "--raw-commits" => args.raw_commits = span(&flag, &value()?)?,
                "--dir" => args.dir = Some(PathBuf::from(value()?)),
                "--keep" => args.keep = true,
                other => bail!("unknown argument {other:?}; see --help"),
            }
        }
        if args.clients == 0 {
            bail!("--clients must be at least 1");
        }
        args.load = match duration {
            Some(d) if d.is_zero() => bail!("--duration must be more than 0s"),
            Some(d) => Load::For(d),
            None if requests == 0 => bail!("--requests must be at least 1"),
            None => Load::Requests(requests),
        };
        Ok(Some(args))
    }

    /// The landing-local binary: `--bin`, else the workspace's release build, else its debug build.
    pub fn landing_local(&self) -> anyhow::Result<PathBuf> {
        if let Some(bin) = &self.bin {
            if !bin.is_file() {
                bail!("--bin {}: no such file", bin.display());
            }
            return Ok(bin.clone());
        }
        let root = workspace_root();
        let candidates = [
            root.join("target/release/landing-local"),
            root.join("target/debug/landing-local"),
        ];
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "no landing-local binary at {} or {}; build it with `cargo build --release -p landing-local` or pass --bin",
                    candidates[0].display(),
                    candidates[1].display()
                )
            })
    }
}

/// `tools/bench/../..`, as compiled in; the binary is meant to be run from its workspace.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

fn number<T: std::str::FromStr>(flag: &str, raw: &str) -> anyhow::Result<T> {
    raw.parse()
        .map_err(|_| anyhow!("{flag} {raw:?}: not a whole number"))
}

fn span(flag: &str, raw: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(raw)
        .with_context(|| format!("{flag} {raw:?}: not a duration like 2s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Args>> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!(a.clients, 32);
        assert!(matches!(a.load, Load::Requests(20_000)));
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
        .unwrap()
        .unwrap();
        assert_eq!(a.clients, 8);
        assert!(matches!(a.load, Load::Requests(500)));
        assert!(a.warmup.is_zero());
        assert!(a.keep);
        let a = parse(&["--duration", "3s"]).unwrap().unwrap();
        assert!(matches!(a.load, Load::For(d) if d == Duration::from_secs(3)));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &["--clients"][..],
            &["--clients", "many"],
            &["--clients", "0"],
            &["--duration", "soon"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
