//! SQLite adapters for the storage ports: WAL, `synchronous=FULL`, one writer thread with group
//! commit. Used by landing-local; Lambda binaries never link this crate.

mod crm;
mod db;
mod schema;
mod store;
mod suppression;
mod tokens;

pub use db::{Db, OpenError};
pub use store::SqliteStore;

/// Opens `path` and returns the store implementing every storage port.
pub fn open(path: &std::path::Path) -> Result<SqliteStore, OpenError> {
    Db::open(path).map(SqliteStore::new)
}
