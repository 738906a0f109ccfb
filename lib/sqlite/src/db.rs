//! One SQLite connection on one thread, with group commit.
//!
//! Every operation is a job sent to the writer thread. The writer drains whatever jobs are
//! queued, runs each inside its own savepoint of one `BEGIN IMMEDIATE` transaction, commits
//! once (one fsync under `synchronous=FULL`), and only then answers every job. A job is never
//! answered before its data is durable, and a failing job rolls back to its savepoint without
//! touching its neighbours. Concurrency turns into bigger batches, not into lock contention.

use std::path::Path;
use std::sync::mpsc;

use landing_core::ports::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::schema;

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(Result<(), CommitFailed>) + Send>;
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("transaction failed: {0}")]
pub struct CommitFailed(String);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open database {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot migrate database {path}")]
    Migrate {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot start the database thread")]
    Thread(#[source] std::io::Error),
}

/// Handle to the writer thread; cheap to clone. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) and migrates the database, then starts the writer thread.
    pub fn open(path: &Path) -> Result<Db, OpenError> {
        let shown = path.display().to_string();
        let mut conn = Connection::open(path).map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
        schema::migrate(&mut conn).map_err(|source| OpenError::Migrate {
            path: shown,
            source,
        })?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(OpenError::Thread)?;
        Ok(Db { jobs: tx })
    }

    /// Runs `f` in its own savepoint of the next group commit and returns its result once the
    /// commit is durable. An `Err` from `f` rolls back only `f`'s own changes.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let result = match conn {
                None => Err(StoreError::unavailable(CommitFailed(
                    "could not begin".into(),
                ))),
                Some(conn) => in_savepoint(conn, f),
            };
            Box::new(move |commit: Result<(), CommitFailed>| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::unavailable(e)),
                });
            })
        });
        self.jobs.send(job).map_err(|_| {
            StoreError::unavailable(CommitFailed("database thread has stopped".into()))
        })?;
        rx.await.map_err(|_| {
            StoreError::unavailable(CommitFailed("database thread dropped the job".into()))
        })?
    }
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT job")
        .map_err(StoreError::unavailable)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")
                .map_err(StoreError::unavailable)?;
            Ok(v)
        }
        Err(e) => {
            // If even the rollback fails the whole batch is suspect; COMMIT will then fail and
            // every job in it gets an error, which is the safe answer.
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        let completions: Vec<Completion> = match &began {
            Ok(()) => batch.into_iter().map(|job| job(Some(&conn))).collect(),
            Err(_) => batch.into_iter().map(|job| job(None)).collect(),
        };
        let outcome = match began {
            Err(e) => Err(CommitFailed(e.to_string())),
            Ok(()) => match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "sqlite commit failed; the batch is rolled back");
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(CommitFailed(e.to_string()))
                }
            },
        };
        for done in completions {
            done(outcome.clone());
        }
    }
}
