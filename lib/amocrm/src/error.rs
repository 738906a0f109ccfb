//! What can go wrong talking to AmoCRM, by what the caller should do about it.

use landing_core::ports::StoreError;
use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AmoError {
    /// Worth retrying later: outage, throttling, timeouts — retries here are exhausted.
    #[error("AmoCRM temporarily unavailable: {0}")]
    Transient(String),
    /// AmoCRM refused the request as invalid; retrying the same request cannot help.
    #[error("AmoCRM rejected the request: {}", problem_text(.status, .detail))]
    Rejected { status: u16, detail: String },
    /// AmoCRM answered 2xx with a body this client cannot read (an API change): not retried.
    #[error("AmoCRM answered unexpectedly: {0}")]
    Unexpected(String),
    /// The credentials do not work (and, for OAuth, refreshing did not help).
    #[error("AmoCRM authorization failed: {0}")]
    Unauthorized(String),
    /// The account's API is blocked (403); needs a human to contact AmoCRM support.
    #[error("AmoCRM API access is blocked (403): {0}")]
    Blocked(String),
    /// Reading or replacing the stored OAuth token pair failed; retryable.
    #[error("AmoCRM token store unavailable")]
    TokenStore(#[source] StoreError),
    /// The request does not apply to this configuration (e.g. a code exchange with a long-lived
    /// token).
    #[error("{0}")]
    Misconfigured(String),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl AmoError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AmoError::Transient(_) | AmoError::TokenStore(_))
    }

    /// A refusal with this status (`404` for "no such pipeline").
    pub fn is_status(&self, want: u16) -> bool {
        matches!(self, AmoError::Rejected { status, .. } if *status == want)
    }

    pub(crate) fn rejected(status: StatusCode, json: &Option<Value>) -> Self {
        AmoError::Rejected {
            status: status.as_u16(),
            detail: problem(json),
        }
    }
}

/// `HTTP 400: title: detail; path: detail` of an answer.
pub(crate) fn answer_text(status: StatusCode, json: &Option<Value>) -> String {
    problem_text(&status.as_u16(), &problem(json))
}

fn problem_text(status: &u16, detail: &str) -> String {
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// `title: detail` of a problem+json body, with validation errors' paths and details.
pub(crate) fn problem(json: &Option<Value>) -> String {
    let Some(v) = json else {
        return String::new();
    };
    let mut out = ["title", "detail", "hint"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(": ");
    if let Some(groups) = v.get("validation-errors").and_then(Value::as_array) {
        for err in groups
            .iter()
            .filter_map(|g| g.get("errors").and_then(Value::as_array))
            .flatten()
        {
            let path = err.get("path").and_then(Value::as_str).unwrap_or("?");
            let detail = err
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("invalid");
            out.push_str(&format!("; {path}: {detail}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_validation_problem_names_every_path_and_the_status() {
        let body = Some(
            json!({"title": "Bad Request", "detail": "Request validation failed",
            "validation-errors": [{"request_id": "0", "errors": [{"path": "custom_fields_values.0.field_id", "detail": "This value is not valid"}]}]}),
        );
        let e = AmoError::rejected(StatusCode::BAD_REQUEST, &body);
        assert!(e.is_status(400));
        assert_eq!(
            e.to_string(),
            "AmoCRM rejected the request: HTTP 400: Bad Request: Request validation failed; custom_fields_values.0.field_id: This value is not valid"
        );
        assert_eq!(
            AmoError::rejected(StatusCode::NOT_FOUND, &None).to_string(),
            "AmoCRM rejected the request: HTTP 404"
        );
    }
}
