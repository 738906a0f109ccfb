//! OAuth2 with AmoCRM's single-use refresh tokens (docs/amocrm.md §2). A refresh happens under a
//! lock, at most once for a given stale token, and the new pair is persisted (compare-and-swap
//! on the old refresh token) before it is used: losing the new pair would kill the integration
//! until a human re-authorises it.
//!
//! This module owns its token endpoint and its HTTP client and knows nothing of the API client
//! that asks it for tokens.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use landing_core::ports::{TokenPair, TokenStore};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::error::{AmoError, answer_text};

/// Refresh this long before the access token expires.
const REFRESH_EARLY: Duration = Duration::from_secs(300);

/// The integration's identity at AmoCRM's token endpoint.
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
}

pub struct OAuth {
    app: OAuthApp,
    /// `{base}/oauth2/access_token`.
    token_url: String,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    lock: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

impl OAuth {
    pub fn new(
        app: OAuthApp,
        base_url: &str,
        http: reqwest::Client,
        store: Arc<dyn TokenStore>,
    ) -> Self {
        OAuth {
            app,
            token_url: format!("{}/oauth2/access_token", base_url.trim_end_matches('/')),
            http,
            store,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A usable access token. `stale` is a token the API just refused with 401: refresh unless
    /// somebody already replaced it.
    pub async fn access_token(&self, stale: Option<&str>) -> Result<SecretString, AmoError> {
        let _guard = self.lock.lock().await;
        // Always re-read under the lock: another task or process may have refreshed meanwhile.
        let pair = self
            .store
            .load()
            .await
            .map_err(AmoError::TokenStore)?
            .ok_or_else(|| {
                AmoError::Unauthorized(
                    "no OAuth token stored; run `landing-local amocrm auth --code CODE`".into(),
                )
            })?;
        let expiring = pair.expires_at <= landing_core::time::add(Timestamp::now(), REFRESH_EARLY);
        let refused = stale.is_some_and(|s| s == pair.access_token.expose_secret());
        if !expiring && !refused {
            return Ok(pair.access_token);
        }
        self.refresh(&pair).await
    }

    async fn refresh(&self, old: &TokenPair) -> Result<SecretString, AmoError> {
        tracing::info!("refreshing the AmoCRM access token");
        let body = json!({
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret.expose_secret(),
            "grant_type": "refresh_token",
            "refresh_token": old.refresh_token.expose_secret(),
            "redirect_uri": self.app.redirect_uri,
        });
        let new = match self.token_call(&body).await {
            Ok(new) => new,
            Err(e) => {
                // Revoked: maybe another process won the race and stored its pair; use that.
                if let Ok(Some(current)) = self.store.load().await
                    && current.refresh_token.expose_secret() != old.refresh_token.expose_secret()
                {
                    return Ok(current.access_token);
                }
                return Err(e);
            }
        };
        let stored = self
            .store
            .replace(Some(old.refresh_token.expose_secret()), &new)
            .await
            .map_err(AmoError::TokenStore)?;
        if !stored {
            // Cannot happen with one process per store row unless another process refreshed with
            // the same refresh token and AmoCRM accepted both; keep what is stored.
            tracing::warn!("another process stored a newer AmoCRM token pair; using it");
            if let Ok(Some(current)) = self.store.load().await {
                return Ok(current.access_token);
            }
        }
        Ok(new.access_token)
    }

    /// `amocrm auth --code CODE`: trades an authorization code for the first pair and stores it.
    pub async fn exchange_code(&self, code: &str) -> Result<TokenPair, AmoError> {
        let _guard = self.lock.lock().await;
        let body = json!({
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret.expose_secret(),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.app.redirect_uri,
        });
        let pair = self.token_call(&body).await?;
        let previous = self.store.load().await.map_err(AmoError::TokenStore)?;
        let expected = previous
            .as_ref()
            .map(|p| p.refresh_token.expose_secret().to_owned());
        let stored = self
            .store
            .replace(expected.as_deref(), &pair)
            .await
            .map_err(AmoError::TokenStore)?;
        if !stored {
            return Err(AmoError::Transient(
                "the token pair changed while storing; run the command again".into(),
            ));
        }
        Ok(pair)
    }

    async fn token_call(&self, body: &serde_json::Value) -> Result<TokenPair, AmoError> {
        let resp = self
            .http
            .post(&self.token_url)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                AmoError::Transient(format!(
                    "token endpoint: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    }
                ))
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| AmoError::Transient("token endpoint: answer cut short".into()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(AmoError::Transient(format!(
                "token endpoint: HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let json = serde_json::from_slice(&bytes).ok();
            return Err(AmoError::Unauthorized(answer_text(status, &json)));
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            AmoError::Unexpected(
                "token endpoint answered without access_token/refresh_token".into(),
            )
        })?;
        Ok(TokenPair {
            access_token: SecretString::from(answer.access_token),
            refresh_token: SecretString::from(answer.refresh_token),
            expires_at: landing_core::time::add(
                Timestamp::now(),
                Duration::from_secs(answer.expires_in.max(0) as u64),
            ),
        })
    }
}
