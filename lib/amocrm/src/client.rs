//! `AmoClient`: one AmoCRM request, done right — rate limit, bearer token (refreshed once on
//! 401 for OAuth), retries with backoff on 429/5xx/timeouts, and every answer classified: 204 is
//! "nothing", a 4xx validation error is permanent with its reason, a 403 HTML page means the
//! account is blocked and hammering it further would only prolong that (docs/amocrm.md §10).

use std::sync::Arc;
use std::time::Duration;

use landing_core::time::Backoff;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{AmoError, answer_text};
use crate::limiter::SlidingWindow;
use crate::oauth::OAuth;

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub max_attempts: u32,
    /// The wait between attempts, unless AmoCRM's `Retry-After` says otherwise.
    pub backoff: Backoff,
    pub timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            timeout: Duration::from_secs(15),
        }
    }
}

pub enum Auth {
    LongLived(SecretString),
    OAuth(Arc<OAuth>),
}

/// The AmoCRM API v4 client. Its endpoints are in `endpoints`, the core's `CrmApi` port on top
/// of them in `crm_api`.
pub struct AmoClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    limiter: SlidingWindow,
    retry: RetryConfig,
}

/// A successful answer: `None` for 204 (AmoCRM's "found nothing").
pub type Answer = Option<Value>;

impl AmoClient {
    pub fn new(
        http: reqwest::Client,
        base: String,
        auth: Auth,
        requests_per_second: u32,
        retry: RetryConfig,
    ) -> Self {
        // A window slightly longer than a second keeps us under the server's count even when
        // our requests arrive there with some jitter.
        let limiter =
            SlidingWindow::new(requests_per_second as usize, Duration::from_millis(1_050));
        AmoClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            limiter,
            retry,
        }
    }

    /// The OAuth side of the client (`amocrm auth --code`), if it uses OAuth.
    pub fn oauth(&self) -> Option<&OAuth> {
        match &self.auth {
            Auth::OAuth(o) => Some(o),
            Auth::LongLived(_) => None,
        }
    }

    async fn token(&self, force_refresh_of: Option<&str>) -> Result<SecretString, AmoError> {
        match &self.auth {
            Auth::LongLived(t) => Ok(t.clone()),
            Auth::OAuth(o) => o.access_token(force_refresh_of).await,
        }
    }

    /// Sends `method path` with an optional JSON body and query, retrying what is retryable.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        correlation_id: &str,
    ) -> Result<Answer, AmoError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut token = self.token(None).await?;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .timeout(self.retry.timeout)
                .bearer_auth(token.expose_secret())
                .header("X-Correlation-Id", correlation_id)
                .header(
                    reqwest::header::ACCEPT,
                    "application/hal+json, application/json, application/problem+json",
                );
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let outcome = match req.send().await {
                Err(e) => Err(Retry::after(
                    format!("{method} {path}: {}", describe(&e)),
                    None,
                )),
                Ok(resp) => classify(resp).await,
            };
            match outcome {
                Ok(answer) => return Ok(answer),
                Err(Retry::Unauthorized(detail)) => match &self.auth {
                    Auth::OAuth(_) if !refreshed => {
                        refreshed = true;
                        tracing::info!(
                            path,
                            "AmoCRM answered 401; refreshing the access token once"
                        );
                        token = self.token(Some(token.expose_secret())).await?;
                        attempt -= 1;
                        continue;
                    }
                    _ => return Err(AmoError::Unauthorized(detail)),
                },
                Err(Retry::Fatal(e)) => return Err(e),
                Err(Retry::Later { reason, after }) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(AmoError::Transient(format!(
                            "{reason} (after {attempt} attempts)"
                        )));
                    }
                    let backoff = after.unwrap_or_else(|| self.retry.backoff.delay(attempt));
                    tracing::warn!(path, attempt, reason = %reason, backoff_ms = backoff.as_millis() as u64, "AmoCRM call failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

enum Retry {
    Later {
        reason: String,
        after: Option<Duration>,
    },
    Unauthorized(String),
    Fatal(AmoError),
}

impl Retry {
    fn after(reason: String, after: Option<Duration>) -> Self {
        Retry::Later { reason, after }
    }
}

/// reqwest's own `Display` names the URL, and a search URL's query holds the phone digits being
/// looked for: only the kind of failure goes into errors and logs.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// Reads an answer. AmoCRM's success type is `application/hal+json` and errors come as
/// `application/problem+json` — or as non-JSON text (429) and HTML (403) — so the body is parsed
/// by content, never by a strict content-type check.
async fn classify(resp: reqwest::Response) -> Result<Answer, Retry> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(60)));
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Retry::after(format!("reading answer: {}", describe(&e)), None))?;
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    match status {
        StatusCode::NO_CONTENT => Ok(None),
        s if s.is_success() => match json {
            Some(v) => Ok(Some(v)),
            None if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(Retry::after(
                format!("HTTP {s} with a body that is not JSON"),
                None,
            )),
        },
        StatusCode::TOO_MANY_REQUESTS => Err(Retry::after(
            "HTTP 429 (rate limited)".into(),
            Some(retry_after.unwrap_or(Duration::from_secs(1))),
        )),
        StatusCode::UNAUTHORIZED => Err(Retry::Unauthorized(answer_text(status, &json))),
        StatusCode::FORBIDDEN if json.is_none() => Err(Retry::Fatal(AmoError::Blocked(
            "the account's API answered with an HTML 403 page; contact AmoCRM support".into(),
        ))),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            Err(Retry::after(format!("HTTP {}", s.as_u16()), retry_after))
        }
        s => Err(Retry::Fatal(AmoError::rejected(s, &json))),
    }
}
