//! `TokenStore` on SQLite: one row, replaced only if the refresh token is still the expected one.

use async_trait::async_trait;
use landing_core::ports::{StoreError, TokenPair, TokenStore};
use landing_core::time;
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use crate::SqliteStore;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn load(&self) -> Result<Option<TokenPair>, StoreError> {
        let row: Option<(String, String, String)> = self
            .db()
            .run(|c| {
                c.query_row("SELECT access_token, refresh_token, expires_at FROM amocrm_tokens WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(StoreError::unavailable)
            })
            .await?;
        row.map(|(access, refresh, expires)| {
            Ok(TokenPair {
                access_token: SecretString::from(access),
                refresh_token: SecretString::from(refresh),
                expires_at: time::parse(&expires)
                    .map_err(|e| StoreError::corrupt("amocrm_tokens.expires_at", e))?,
            })
        })
        .transpose()
    }

    async fn replace(
        &self,
        expected_refresh: Option<&str>,
        new: &TokenPair,
    ) -> Result<bool, StoreError> {
        let expected = expected_refresh.map(str::to_owned);
        let (access, refresh, expires) = (
            new.access_token.expose_secret().to_owned(),
            new.refresh_token.expose_secret().to_owned(),
            time::format(new.expires_at),
        );
        self.db()
            .run(move |c| {
                let now = time::format(jiff::Timestamp::now());
                let changed = match expected {
                    None => c.execute(
                        "INSERT INTO amocrm_tokens (id, access_token, refresh_token, expires_at, updated_at) VALUES (1, ?1, ?2, ?3, ?4)
                         ON CONFLICT (id) DO NOTHING",
                        params![access, refresh, expires, now],
                    ),
                    Some(old) => c.execute(
                        "UPDATE amocrm_tokens SET access_token = ?1, refresh_token = ?2, expires_at = ?3, updated_at = ?4
                          WHERE id = 1 AND refresh_token = ?5",
                        params![access, refresh, expires, now, old],
                    ),
                }
                .map_err(StoreError::unavailable)?;
                Ok(changed == 1)
            })
            .await
    }
}
