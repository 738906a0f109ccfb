//! A counting HTTP proxy between a function and moto: every request is forwarded unchanged to
//! the upstream and counted by AWS operation (`X-Amz-Target`, a query-protocol `Action=`, or the
//! REST method and path of Scheduler / SES v2).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::usage::Usage;

pub type Counts = BTreeMap<String, u64>;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<Counts>,
    usage: Mutex<Usage>,
}

pub struct CountingProxy {
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> anyhow::Result<CountingProxy> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            counts: Mutex::new(Counts::new()),
            usage: Mutex::new(Usage::default()),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the counting proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CountingProxy { url, shared, task })
    }

    /// The counts so far, and a fresh start.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.shared.usage.lock().unwrap_or_else(|p| p.into_inner()));
        std::mem::take(&mut *self.shared.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What the calls since the last `take` would be billed by (request units, SMS parts).
    pub fn usage(&self) -> Usage {
        self.shared
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let op = operation(
        parts.method.as_str(),
        parts.uri.path(),
        &parts.headers,
        &body,
    );
    *s.counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(op.clone())
        .or_default() += 1;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = s
        .client
        .request(parts.method.clone(), format!("{}{path}", s.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body.clone()).send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.retain_hop_by_hop();
    match answer.bytes().await {
        Ok(bytes) => {
            if status.is_success() {
                s.usage
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&op, &body, &bytes);
            }
            (status, headers, Body::from(bytes)).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::HOST,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
    ]
    .contains(name)
}

trait RetainHopByHop {
    fn retain_hop_by_hop(&mut self);
}

impl RetainHopByHop for HeaderMap {
    fn retain_hop_by_hop(&mut self) {
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
        ] {
            self.remove(name);
        }
    }
}

/// `dynamodb.TransactWriteItems`, `scheduler.CreateSchedule`, `sns.Publish`, ...
pub fn operation(method: &str, path: &str, headers: &HeaderMap, body: &Bytes) -> String {
    let service = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or("unsigned")
        .to_owned();
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target.rsplit('.').next().unwrap_or(target);
        return format!("{service}.{op}");
    }
    if let Some(action) = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
    {
        return format!("{service}.{action}");
    }
    let rest = match (service.as_str(), method, path) {
        ("scheduler", "POST", p) if p.starts_with("/schedules/") => "CreateSchedule",
        ("scheduler", "GET", p) if p.starts_with("/schedules/") => "GetSchedule",
        ("scheduler", "DELETE", p) if p.starts_with("/schedules/") => "DeleteSchedule",
        ("scheduler", "PUT", p) if p.starts_with("/schedules/") => "UpdateSchedule",
        ("ses", "POST", "/v2/email/outbound-emails") => "SendEmail",
        _ => return format!("{service} {method} {path}"),
    };
    format!("{service}.{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261124/eu-central-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn operations_are_named_by_target_action_or_rest_path() {
        let mut h = signed("dynamodb");
        h.insert(
            "x-amz-target",
            "DynamoDB_20120810.TransactWriteItems".parse().unwrap(),
        );
        assert_eq!(
            operation("POST", "/", &h, &Bytes::new()),
            "dynamodb.TransactWriteItems"
        );
        let h = signed("scheduler");
        assert_eq!(
            operation("POST", "/schedules/lead-1", &h, &Bytes::new()),
            "scheduler.CreateSchedule"
        );
        let h = signed("sns");
        let body = Bytes::from_static(b"Action=Publish&Version=2010-03-31");
        assert_eq!(operation("POST", "/", &h, &body), "sns.Publish");
        let h = signed("ses");
        assert_eq!(
            operation("POST", "/v2/email/outbound-emails", &h, &Bytes::new()),
            "ses.SendEmail"
        );
    }
}
