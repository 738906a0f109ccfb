//! OAuth token endpoint, bearer authentication and per-integration rate limiting.

use std::time::Instant;

use serde_json::{Value, json};

use crate::model::TokenPair;
use crate::parse::Pairs;
use crate::state::{AccessToken, AuthCode, RefreshToken, Reply, State, nginx_page};
use crate::token;

const OAUTH_TYPE: &str = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson";
const BAD_PARAMS: &str = "В запросе отсутствует ряд параметров или параметры невалидны";
/// Rate-limiter key of the long-lived token.
const LONG_LIVED: &str = "long-lived";

fn oauth_problem(status: u16, title: &str, detail: &str, hint: Option<&str>) -> Reply {
    let mut v = json!({"title": title, "type": OAUTH_TYPE, "status": status, "detail": detail});
    if let Some(h) = hint {
        v["hint"] = Value::String(h.to_owned());
    }
    Reply::problem(status, &v)
}

fn invalid_request(status: u16, hint: &str) -> Reply {
    oauth_problem(status, "Некорректный запрос", BAD_PARAMS, Some(hint))
}

fn invalid_client() -> Reply {
    oauth_problem(
        401,
        "Некорректный клиент",
        "Авторизация клиента не прошла",
        None,
    )
}

/// Token request fields from a JSON or `application/x-www-form-urlencoded` body.
fn token_fields(content_type: &str, body: &[u8]) -> Option<Pairs> {
    let from_json = || -> Option<Pairs> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let o = v.as_object()?;
        Some(
            o.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    _ => None,
                })
                .collect(),
        )
    };
    let from_form = || serde_urlencoded::from_bytes::<Pairs>(body).ok();
    if content_type.contains("json") {
        from_json()
    } else if content_type.contains("x-www-form-urlencoded") {
        from_form()
    } else {
        from_json().or_else(from_form)
    }
}

impl State {
    /// Creates a new access/refresh pair for the configured OAuth client.
    pub fn issue_pair(&mut self) -> TokenPair {
        let now = self.now();
        let ttl = self.cfg.access_token_ttl;
        let client_id = self
            .cfg
            .oauth_client
            .as_ref()
            .map(|c| c.client_id.clone())
            .unwrap_or_default();
        let access = token::jwt(&json!({
            "aud": client_id,
            "jti": token::random_hex(2),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "sub": "504141",
            "grant_type": "",
            "account_id": self.cfg.account_id,
            "base_domain": "amocrm.ru",
            "version": 2,
            "scopes": ["crm", "notifications"],
            "api_domain": "api-b.amocrm.ru",
        }));
        let refresh = token::refresh_token();
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                integration: client_id,
                expires_at: now + ttl,
                revoked: false,
            },
        );
        self.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                expires_at: now + self.cfg.refresh_token_ttl,
                used: false,
            },
        );
        TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: ttl,
        }
    }

    pub fn issue_code(&mut self) -> String {
        let code = token::auth_code();
        let expires_at = self.now() + self.cfg.auth_code_ttl;
        self.auth_codes.insert(
            code.clone(),
            AuthCode {
                expires_at,
                used: false,
            },
        );
        code
    }

    /// `POST /oauth2/access_token`.
    pub fn token_endpoint(&mut self, content_type: &str, body: &[u8]) -> Reply {
        let Some(fields) = token_fields(content_type, body) else {
            return invalid_request(400, "Check the request body");
        };
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let grant = get("grant_type");
        match grant.as_deref() {
            None => return invalid_request(400, "Check the `grant_type` parameter"),
            Some("authorization_code" | "refresh_token") => {}
            Some(_) => {
                return oauth_problem(
                    400,
                    "Неподдерживаемый тип авторизации",
                    "The authorization grant type is not supported by the authorization server.",
                    Some("Check that all required parameters have been provided"),
                );
            }
        }
        let Some(client) = self.cfg.oauth_client.clone() else {
            return invalid_client();
        };
        if get("client_id").is_none() {
            return invalid_request(400, "Check the `client_id` parameter");
        }
        if get("client_id").as_deref() != Some(client.client_id.as_str())
            || get("client_secret").as_deref() != Some(client.client_secret.as_str())
        {
            return invalid_client();
        }
        match get("redirect_uri") {
            None => return invalid_request(400, "Check the `redirect_uri` parameter"),
            Some(r) if r != client.redirect_uri => {
                return invalid_request(400, "Redirect URI mismatch");
            }
            Some(_) => {}
        }
        let now = self.now();
        if grant.as_deref() == Some("authorization_code") {
            let Some(code) = get("code") else {
                return invalid_request(400, "Check the `code` parameter");
            };
            match self.auth_codes.get_mut(&code) {
                None => return invalid_request(400, "Cannot decrypt the authorization code"),
                Some(c) if c.used => {
                    return invalid_request(400, "Authorization code has been revoked");
                }
                Some(c) if c.expires_at <= now => {
                    return invalid_request(400, "Authorization code has expired");
                }
                Some(c) => c.used = true,
            }
        } else {
            let Some(rt) = get("refresh_token") else {
                return invalid_request(400, "Check the `refresh_token` parameter");
            };
            match self.refresh_tokens.get_mut(&rt) {
                None => return invalid_request(401, "Cannot decrypt the refresh token"),
                Some(t) if t.used => return invalid_request(401, "Token has been revoked"),
                Some(t) if t.expires_at <= now => {
                    return invalid_request(401, "Token has expired");
                }
                Some(t) => t.used = true,
            }
        }
        let pair = self.issue_pair();
        Reply::json(
            200,
            &json!({
                "token_type": "Bearer",
                "expires_in": pair.expires_in,
                "server_time": now,
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
            }),
        )
    }

    /// Validates `Authorization: Bearer …`; returns the rate-limiter key of the integration.
    pub fn authenticate(&self, header: Option<&str>) -> Result<String, Reply> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(Reply::unauthorized)?;
        if self.long_lived_valid && self.cfg.long_lived_token.as_deref() == Some(token) {
            return Ok(LONG_LIVED.to_owned());
        }
        match self.access_tokens.get(token) {
            Some(t) if !t.revoked && t.expires_at > self.now() => Ok(t.integration.clone()),
            _ => Err(Reply::unauthorized()),
        }
    }

    /// Rolling-window limiter over executed requests; `Err(429)` when over the limit.
    pub fn rate_limit(&mut self, key: &str) -> Result<(), Reply> {
        if self.burst_429 > 0 {
            self.burst_429 -= 1;
            return Err(self.too_many());
        }
        let Some(limit) = self.cfg.rate_limit else {
            return Ok(());
        };
        let window = self.cfg.rate_window;
        let now = Instant::now();
        let q = self.windows.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            return Err(self.too_many());
        }
        q.push_back(now);
        Ok(())
    }

    fn too_many(&self) -> Reply {
        let mut r = Reply::html(429, &nginx_page(429, "Too Many Requests"));
        if let Some(s) = self.cfg.retry_after {
            r.headers.push(("retry-after", s.to_string()));
        }
        r
    }
}
