//! One function process as Lambda starts it: the release binary with the Runtime API address,
//! the `AWS_LAMBDA_*` variables and the stack's configuration, and nothing else from the bench's
//! environment. Its log goes to a file.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const MEMORY_MB: u32 = 128;
/// `USER_HZ`, 100 on Linux x86_64 and arm64.
const CLOCK_TICKS_PER_SEC: u64 = 100;

pub struct FunctionProcess {
    child: Child,
    pub spawned_at: Instant,
    pub log: PathBuf,
}

impl FunctionProcess {
    /// Starts `bin` as the function `name`; `env` is its configuration (stack + AWS endpoint).
    pub fn spawn(
        bin: &Path,
        name: &str,
        runtime_api: SocketAddr,
        env: &[(String, String)],
        log: PathBuf,
    ) -> anyhow::Result<FunctionProcess> {
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/24/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("LAMBDA_TASK_ROOT", bin.parent().unwrap_or(Path::new("/")))
            .env("TZ", ":UTC")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        Ok(FunctionProcess {
            child,
            spawned_at,
            log,
        })
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .context("no VmHWM in /proc/PID/status")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmHWM value")?
            .parse()?)
    }

    /// User + system CPU time so far (`/proc/PID/stat`, in 10 ms clock ticks).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<u64> {
            Ok(fields.get(i).context("short /proc/PID/stat")?.parse()?)
        };
        Ok(Duration::from_millis(
            (ticks(11)? + ticks(12)?) * 1000 / CLOCK_TICKS_PER_SEC,
        ))
    }

    /// Fails when the process has already exited (with its log's tail).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("exited with {status}; log tail:\n{}", self.log_tail());
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
