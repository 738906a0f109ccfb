//! The storage contract suites (`landing-contract`) on SQLite: each case gets a new database in
//! its own temp dir, removed when the case's harness is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::path::PathBuf;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn fresh() -> landing_contract::Stores {
    let dir =
        std::env::temp_dir().join(format!("landing-sqlite-contract-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let store = landing_sqlite::open(&dir.join("landing.db")).expect("open sqlite store");
    landing_contract::Stores::new(store).with_guard(TempDir(dir))
}

landing_contract::storage_contract_tests!(fresh());
