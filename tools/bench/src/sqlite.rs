//! Direct SQLite work: checking what landing-local stored, and measuring how fast the disk can
//! make single-row commits durable without group commit.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

#[derive(Debug, Clone, Copy)]
pub struct RowCounts {
    pub leads: u64,
    pub notifications: u64,
}

/// Counts `landing_leads` and `scheduled_notifications`, opening the database read-only.
pub fn count_rows(db: &Path) -> anyhow::Result<RowCounts> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} read-only", db.display()))?;
    let count = |table: &str| -> anyhow::Result<u64> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .with_context(|| format!("cannot count {table}"))
        .map(|n| u64::try_from(n).unwrap_or(0))
    };
    Ok(RowCounts {
        leads: count("landing_leads")?,
        notifications: count("scheduled_notifications")?,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct RawCommits {
    pub commits: u64,
    pub elapsed: Duration,
    pub max: Duration,
}

impl RawCommits {
    pub fn per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn mean_ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 / self.commits.max(1) as f64
    }
}

/// One writer, one small INSERT per transaction, WAL + `synchronous=FULL` (one fsync of the WAL
/// per commit, as landing-local's settings): the rate a store without group commit could reach.
pub fn raw_commit_rate(path: &Path, run_for: Duration) -> anyhow::Result<RawCommits> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "journal_mode is {mode}, not WAL"
    );
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS commits (id INTEGER PRIMARY KEY, at TEXT NOT NULL, body TEXT NOT NULL);",
    )?;
    let body = "x".repeat(600);
    let mut insert =
        conn.prepare("INSERT INTO commits (at, body) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ'), ?1)")?;
    let started = Instant::now();
    let mut commits = 0;
    let mut max = Duration::ZERO;
    while started.elapsed() < run_for {
        let t = Instant::now();
        // Autocommit: each statement is its own durable transaction.
        insert.execute([&body])?;
        max = max.max(t.elapsed());
        commits += 1;
    }
    Ok(RawCommits {
        commits,
        elapsed: started.elapsed(),
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_commits_count_durable_rows() {
        let dir = std::env::temp_dir().join(format!("landing-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("raw.db");
        let raw = raw_commit_rate(&path, Duration::from_millis(100)).unwrap();
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM commits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows as u64, raw.commits);
        assert!(count_rows(&path).is_err(), "not a landing database");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
