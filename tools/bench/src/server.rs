//! The landing-local process under test and the scratch directory it runs in.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// Environment prefixes landing-local reads (and refuses unknown names under); the caller's
/// values must not leak into the run.
const CONFIG_PREFIXES: [&str; 9] = [
    "LANDING_",
    "NOTIFY_",
    "PAYMENT_LINK_",
    "CORS_",
    "AMOCRM_",
    "SMS_",
    "HONEYPOT_",
    "EMAIL_",
    "SES_",
];
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// landing-local itself waits up to 30 s for a notification round in progress.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(40);

/// A fresh directory under the temp dir; removed on drop unless kept.
pub struct Scratch {
    root: PathBuf,
    keep: bool,
}

impl Scratch {
    pub fn create(parent: Option<&Path>, keep: bool) -> anyhow::Result<Scratch> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let root = parent.join(format!("landing-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(root.join("data"))
            .with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Scratch { root, keep })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `LANDING_DATA_DIR`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.root.join("landing-local.log")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.root.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("warning: could not remove {}: {e}", self.root.display());
        }
    }
}

/// A running landing-local. Killed on drop if not shut down properly first.
pub struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    reaped: bool,
}

#[derive(Debug)]
pub struct Shutdown {
    pub status: ExitStatus,
    pub took: Duration,
    /// SIGTERM was not enough; the process was killed.
    pub killed: bool,
}

impl Shutdown {
    pub fn clean(&self) -> bool {
        self.status.success() && !self.killed
    }
}

impl Server {
    /// Starts `bin` on a free loopback port with `NOTIFY_DELAY=1h` (no notification is due
    /// during the run) and `env` on top, and waits until `/healthz` answers.
    pub async fn start(
        bin: &Path,
        scratch: &Scratch,
        http: &reqwest::Client,
        env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let log = scratch.log();
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("cannot share the log file")?;
        let mut cmd = Command::new(bin);
        for (name, _) in std::env::vars_os() {
            let shown = name.to_string_lossy();
            if CONFIG_PREFIXES.iter().any(|p| shown.starts_with(p)) {
                cmd.env_remove(&name);
            }
        }
        cmd.env("LANDING_ADDR", format!("127.0.0.1:{port}"))
            .env("LANDING_DATA_DIR", scratch.data_dir())
            .env("NOTIFY_DELAY", "1h")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            reaped: false,
        };
        server.wait_healthy(http).await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.base);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                bail!(
                    "landing-local exited during startup ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            let probe = http.get(&url).timeout(Duration::from_secs(1)).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!(
                    "landing-local did not answer {url} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM (via `kill(1)`), then waits for the graceful shutdown; kills after a timeout.
    pub async fn shutdown(mut self) -> anyhow::Result<Shutdown> {
        let started = Instant::now();
        // The child is not reaped yet, so its pid cannot have been reused.
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("cannot run kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed ({sent})", self.pid());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(Shutdown {
                    status,
                    took: started.elapsed(),
                    killed: false,
                });
            }
            if started.elapsed() > SHUTDOWN_TIMEOUT {
                self.child.kill().context("cannot kill landing-local")?;
                let status = self.child.wait()?;
                self.reaped = true;
                return Ok(Shutdown {
                    status,
                    took: started.elapsed(),
                    killed: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines landing-local logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port nobody listens on right now. Another process could take it before
/// landing-local binds it; startup then fails loudly rather than measuring the wrong thing.
fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(probe.local_addr()?.port())
}

/// `explicit`, or target/release/landing-local of the workspace, else target/debug/landing-local.
pub fn landing_local(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = explicit {
        if !bin.is_file() {
            bail!("--bin {}: no such file", bin.display());
        }
        return Ok(bin.to_path_buf());
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf);
    let candidates = [
        root.join("target/release/landing-local"),
        root.join("target/debug/landing-local"),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no landing-local binary at {} or {}; build it with `cargo build --release -p landing-local` or pass --bin",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}
