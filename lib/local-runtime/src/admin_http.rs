//! `GET /admin/report`: the operators' HTML report, behind `LANDING_ADMIN_TOKEN` (a bearer
//! token). Without a token configured the route does not exist at all.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use landing_core::ports::Inspect;
use landing_operations::report::{self, By};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
struct Admin {
    token: SecretString,
    inspect: Arc<dyn Inspect>,
}

#[derive(Debug, serde::Deserialize)]
struct Params {
    since: Option<String>,
    by: Option<String>,
}

pub fn router(token: SecretString, inspect: Arc<dyn Inspect>) -> Router {
    Router::new()
        .route("/admin/report", get(report_page))
        .with_state(Admin { token, inspect })
}

fn json(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error": error, "message": message}).to_string(),
    )
        .into_response()
}

/// Compares without leaking, through timing, how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn report_page(State(admin): State<Admin>, headers: HeaderMap, uri: http::Uri) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(presented.as_bytes(), admin.token.expose_secret().as_bytes()) {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <LANDING_ADMIN_TOKEN>",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"landing-admin\""),
        );
        return resp;
    }
    let Ok(params) = serde_urlencoded::from_str::<Params>(uri.query().unwrap_or("")) else {
        return json(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "query: since=7d&by=campaign|day",
        );
    };
    let since = match params.since.as_deref().map(humantime::parse_duration) {
        None => Duration::from_secs(7 * 86_400),
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            return json(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "since: a duration like 7d",
            );
        }
    };
    let by = match params.by.as_deref() {
        None | Some("campaign") => By::Campaign,
        Some("day") => By::Day,
        Some(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "by: campaign or day",
            );
        }
    };
    let now = jiff::Timestamp::now();
    let from = jiff::SignedDuration::try_from(since)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(jiff::Timestamp::MIN);
    let leads = match admin.inspect.leads_between(from, now).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %landing_core::error_chain(&e), "report: cannot read the leads");
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is unavailable; retry",
            );
        }
    };
    let built = report::build(&leads, by, from, now);
    match landing_operations::html::render(&built, &leads, now) {
        Ok(page) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                // The page is self-contained: nothing may load from anywhere, inline style only.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            ],
            page,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %landing_core::error_chain(&e), "report: cannot render");
            json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the report could not be rendered",
            )
        }
    }
}
