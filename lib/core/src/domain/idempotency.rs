//! The record an `Idempotency-Key` leaves: the answer its first request got.
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The answer given to the first request with an `Idempotency-Key`, replayed to its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Scoped to the endpoint: `proftest:<key>` / `expresscourse:<key>`.
    pub key: String,
    pub payload_hash: String,
    pub response: StoredResponse,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
