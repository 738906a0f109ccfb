//! What Linux's `/proc` says about a process: memory, CPU time, disk writes. Every reader returns
//! `None` when the file or field is missing (another OS, a process that has gone).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Linux reports `utime`/`stime` in USER_HZ, fixed at 100 on every architecture Rust targets.
const USER_HZ: f64 = 100.0;

/// A process: a child by pid, or this one.
#[derive(Debug, Clone, Copy)]
pub enum Pid {
    Of(u32),
    Me,
}

impl Pid {
    fn file(self, name: &str) -> PathBuf {
        match self {
            Pid::Of(pid) => PathBuf::from(format!("/proc/{pid}/{name}")),
            Pid::Me => PathBuf::from(format!("/proc/self/{name}")),
        }
    }
}

/// A `kB` field of `/proc/<pid>/status` such as `VmRSS` or `VmHWM`, in KiB.
pub fn status_kib(pid: Pid, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(pid.file("status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU time used so far, all threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
}

impl Cpu {
    pub fn read(pid: Pid) -> Option<Cpu> {
        let text = std::fs::read_to_string(pid.file("stat")).ok()?;
        // The command name may hold spaces; the fields after its closing paren are fixed.
        let after = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat(5); `after` starts at field 3.
        let ticks = |i: usize| -> Option<Duration> {
            let t: f64 = fields.get(i - 3)?.parse().ok()?;
            Some(Duration::from_secs_f64(t / USER_HZ))
        };
        Some(Cpu {
            user: ticks(14)?,
            system: ticks(15)?,
        })
    }

    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

/// Bytes the process caused to be written to storage (`write_bytes` of `/proc/<pid>/io`).
pub fn write_bytes(pid: Pid) -> Option<u64> {
    let text = std::fs::read_to_string(pid.file("io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:")?.trim().parse().ok())
}

/// Filesystem type and device of the mount holding `path`, from `/proc/self/mounts`.
pub fn filesystem(path: &Path) -> Option<(String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (device, mount, fstype) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), fstype.to_owned(), device.to_owned()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, fstype, device)| (fstype, device))
}

/// Samples `VmRSS` of a process in the background until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<RssSamples>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RssSamples {
    pub count: u64,
    pub max_kib: u64,
    pub sum_kib: u64,
}

impl RssSamples {
    pub fn mean_kib(&self) -> u64 {
        self.sum_kib.checked_div(self.count).unwrap_or(0)
    }
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = RssSamples::default();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kib) = status_kib(Pid::Of(pid), "VmRSS") {
                    seen.count += 1;
                    seen.sum_kib += kib;
                    seen.max_kib = seen.max_kib.max(kib);
                }
            }
            seen
        });
        RssSampler { stop, task }
    }

    pub async fn finish(self) -> RssSamples {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(status_kib(Pid::Me, "VmRSS").is_some_and(|k| k > 0));
        assert!(status_kib(Pid::Me, "VmHWM").is_some());
        assert!(status_kib(Pid::Me, "NoSuchField").is_none());
        assert!(Cpu::read(Pid::Me).is_some());
        assert!(filesystem(Path::new("/")).is_some());
    }
}
