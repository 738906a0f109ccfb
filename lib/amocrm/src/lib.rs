//! AmoCRM API v4 client (reqwest + rustls) as the research notes describe the real API:
//! 204 = nothing found, HAL and problem+json bodies, a bare array from `leads/complex`, a
//! client-side limit of 7 requests/s, backoff on 429/5xx/timeouts, single-use refresh tokens.

mod client;
mod crm_api;
pub mod endpoints;
mod error;
mod limiter;
mod oauth;

use std::sync::Arc;
use std::time::Duration;

use landing_core::config::{ConfigError, Env};
use landing_core::crm::CrmSettings;
use landing_core::ports::TokenStore;
use secrecy::SecretString;

pub use client::{AmoClient, Auth, RetryConfig};
pub use endpoints::{ComplexCreated, Pipeline};
pub use error::AmoError;
pub use limiter::SlidingWindow;
pub use oauth::{OAuth, OAuthApp};

/// Every variable this crate reads (for the unknown-variable check).
pub const AMOCRM_VARS: &[&str] = &[
    "AMOCRM_BASE_URL",
    "AMOCRM_SUBDOMAIN",
    "AMOCRM_ACCESS_TOKEN",
    "AMOCRM_CLIENT_ID",
    "AMOCRM_CLIENT_SECRET",
    "AMOCRM_REDIRECT_URI",
    "AMOCRM_RPS",
    "AMOCRM_PIPELINE_ID",
    "AMOCRM_STATUS_KASPI",
    "AMOCRM_STATUS_HALYK",
    "AMOCRM_STATUS_ROBOKASSA",
    "AMOCRM_STATUS_PROFTEST",
];

pub enum Credentials {
    LongLived(SecretString),
    OAuth {
        client_id: String,
        client_secret: SecretString,
        redirect_uri: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::LongLived(_) => f.write_str("LongLived(***)"),
            Credentials::OAuth {
                client_id,
                redirect_uri,
                ..
            } => f
                .debug_struct("OAuth")
                .field("client_id", client_id)
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug)]
pub struct AmoSettings {
    pub base_url: String,
    pub credentials: Credentials,
    pub requests_per_second: u32,
    pub crm: CrmSettings,
}

fn id(env: &Env, var: &str) -> Result<Option<i64>, ConfigError> {
    match env.get(var) {
        None => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| ConfigError::new(var, format!("{raw:?} is not a positive integer id"))),
    }
}

impl AmoSettings {
    /// `Ok(None)` when no credentials are configured: the sync is then disabled.
    pub fn from_env(env: &Env) -> Result<Option<AmoSettings>, ConfigError> {
        let credentials = match (env.get("AMOCRM_ACCESS_TOKEN"), env.get("AMOCRM_CLIENT_ID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "AMOCRM_ACCESS_TOKEN",
                    "set either a long-lived token or AMOCRM_CLIENT_ID/SECRET, not both",
                ));
            }
            (Some(token), None) => Credentials::LongLived(SecretString::from(token.to_owned())),
            (None, Some(client_id)) => Credentials::OAuth {
                client_id: client_id.to_owned(),
                client_secret: SecretString::from(
                    env.get("AMOCRM_CLIENT_SECRET")
                        .ok_or_else(|| {
                            ConfigError::new(
                                "AMOCRM_CLIENT_SECRET",
                                "required with AMOCRM_CLIENT_ID",
                            )
                        })?
                        .to_owned(),
                ),
                redirect_uri: env
                    .get("AMOCRM_REDIRECT_URI")
                    .ok_or_else(|| {
                        ConfigError::new("AMOCRM_REDIRECT_URI", "required with AMOCRM_CLIENT_ID")
                    })?
                    .to_owned(),
            },
            (None, None) => return Ok(None),
        };
        let base_url = match (env.get("AMOCRM_BASE_URL"), env.get("AMOCRM_SUBDOMAIN")) {
            (Some(url), _) if url.starts_with("https://") || url.starts_with("http://") => {
                url.trim_end_matches('/').to_owned()
            }
            (Some(url), _) => {
                return Err(ConfigError::new(
                    "AMOCRM_BASE_URL",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
            (None, Some(sub))
                if !sub.is_empty()
                    && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                format!("https://{sub}.amocrm.ru")
            }
            (None, Some(sub)) => {
                return Err(ConfigError::new(
                    "AMOCRM_SUBDOMAIN",
                    format!("{sub:?} is not a subdomain"),
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "AMOCRM_SUBDOMAIN",
                    "required (or AMOCRM_BASE_URL) when AmoCRM credentials are set",
                ));
            }
        };
        let pipeline_id = id(env, "AMOCRM_PIPELINE_ID")?.ok_or_else(|| {
            ConfigError::new(
                "AMOCRM_PIPELINE_ID",
                "required when AmoCRM credentials are set",
            )
        })?;
        let requests_per_second: u32 = env.parse_or("AMOCRM_RPS", 7)?;
        if requests_per_second == 0 {
            return Err(ConfigError::new("AMOCRM_RPS", "must be at least 1"));
        }
        Ok(Some(AmoSettings {
            base_url,
            credentials,
            requests_per_second,
            crm: CrmSettings {
                pipeline_id,
                stage_kaspi: id(env, "AMOCRM_STATUS_KASPI")?,
                stage_halyk: id(env, "AMOCRM_STATUS_HALYK")?,
                stage_robokassa: id(env, "AMOCRM_STATUS_ROBOKASSA")?,
                stage_proftest: id(env, "AMOCRM_STATUS_PROFTEST")?,
            },
        }))
    }

    /// Builds the client. OAuth needs the token store that holds the pair.
    pub fn client(
        &self,
        tokens: Arc<dyn TokenStore>,
        retry: RetryConfig,
    ) -> Result<AmoClient, AmoError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("landing-pipeline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AmoError::Client)?;
        let auth = match &self.credentials {
            Credentials::LongLived(t) => Auth::LongLived(t.clone()),
            Credentials::OAuth {
                client_id,
                client_secret,
                redirect_uri,
            } => Auth::OAuth(Arc::new(OAuth::new(
                OAuthApp {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    redirect_uri: redirect_uri.clone(),
                },
                &self.base_url,
                http.clone(),
                tokens,
            ))),
        };
        Ok(AmoClient::new(
            http,
            self.base_url.clone(),
            auth,
            self.requests_per_second,
            retry,
        ))
    }
}
