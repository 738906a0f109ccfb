//! `SuppressionList` on SQLite: one row per address, the first entry kept.

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::domain::{AddressSuppression, Email, SuppressedAddress};
use landing_core::ports::{StoreError, SuppressionList};
use landing_core::time;
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;

#[async_trait]
impl SuppressionList for SqliteStore {
    async fn suppress_address(
        &self,
        email: &Email,
        reason: AddressSuppression,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (key, at) = (email.match_key(), time::format(at));
        self.db()
            .run(move |c| {
                c.execute(
                    "INSERT INTO suppressed_addresses (email, reason, suppressed_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (email) DO NOTHING",
                    params![key, reason.as_str(), at],
                )
                .map(|n| n == 1)
                .map_err(StoreError::unavailable)
            })
            .await
    }

    async fn address_suppression(
        &self,
        email: &Email,
    ) -> Result<Option<SuppressedAddress>, StoreError> {
        let key = email.match_key();
        let row: Option<(String, String)> = self
            .db()
            .run(move |c| {
                c.query_row(
                    "SELECT reason, suppressed_at FROM suppressed_addresses WHERE email = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(StoreError::unavailable)
            })
            .await?;
        row.map(|(reason, at)| {
            Ok(SuppressedAddress {
                email: email.clone(),
                reason: reason
                    .parse()
                    .map_err(|e| StoreError::corrupt("suppressed_addresses.reason", e))?,
                at: time::parse(&at)
                    .map_err(|e| StoreError::corrupt("suppressed_addresses.suppressed_at", e))?,
            })
        })
        .transpose()
    }
}
