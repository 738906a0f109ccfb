//! The single axum handler: counters, blocked mode, faults, delays, auth, rate limit, routing.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

use crate::model::LoggedRequest;
use crate::parse::query_pairs;
use crate::state::{Reply, State, nginx_page};

pub(crate) struct Shared {
    pub state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not wedge every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `GET /api/v4/leads/pipelines/123` → `GET /api/v4/leads/pipelines/{id}`.
fn endpoint_key(method: &Method, path: &str) -> String {
    let norm: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .map(|s| {
            if !s.is_empty() && s.parse::<i64>().is_ok() {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} {}", norm.join("/"))
}

fn fault_reply(status: u16) -> Reply {
    match status {
        502 => Reply::html(502, &nginx_page(502, "Bad Gateway")),
        503 => Reply::html(503, &nginx_page(503, "Service Temporarily Unavailable")),
        504 => Reply::html(504, &nginx_page(504, "Gateway Time-out")),
        500 => Reply::generic(500, "Internal Server Error", "Internal Server Error"),
        s => Reply::generic(s, "Error", "Injected fault"),
    }
}

fn route(st: &mut State, method: &Method, rest: &[&str], query: &str, body: &[u8]) -> Reply {
    let pairs = query_pairs(query);
    let m = method.as_str();
    match (m, rest) {
        ("GET", ["contacts"]) => st.get_contacts(&pairs),
        ("GET", ["leads"]) => st.get_leads(&pairs),
        ("POST", ["leads"]) => st.post_leads(body),
        ("PATCH", ["leads"]) => st.patch_leads(body),
        ("POST", ["leads", "complex"]) => st.post_complex(body),
        ("GET", ["leads", "pipelines", id]) => match id.parse::<i64>() {
            Ok(id) => st.get_pipeline(id),
            Err(_) => Reply::not_found(),
        },
        ("POST", ["leads", "notes"]) => st.post_notes(body),
        _ => Reply::not_found(),
    }
}

fn serve(
    st: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if st.blocked {
        st.stats.served_403 += 1;
        return Reply::html(403, &nginx_page(403, "Forbidden"));
    }
    let fault = st.faults.pop_front();
    if let Some(f) = fault
        && !f.execute
    {
        st.stats.injected_faults += 1;
        return fault_reply(f.status);
    }
    let trimmed = path.trim_end_matches('/');
    let reply = if trimmed == "/oauth2/access_token" {
        if method == Method::POST {
            st.stats.executed += 1;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            st.token_endpoint(&ct, body)
        } else {
            Reply::generic(405, "Method Not Allowed", "Method Not Allowed")
        }
    } else if let Some(rest) = trimmed.strip_prefix("/api/v4/") {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match st.authenticate(auth) {
            Err(r) => {
                st.stats.served_401 += 1;
                r
            }
            Ok(key) => match st.rate_limit(&key) {
                Err(r) => {
                    st.stats.served_429 += 1;
                    if st
                        .cfg
                        .block_after_429s
                        .is_some_and(|n| st.stats.served_429 >= n)
                    {
                        st.blocked = true;
                    }
                    r
                }
                Ok(()) => {
                    st.stats.executed += 1;
                    let segs: Vec<&str> = rest.split('/').collect();
                    route(st, method, &segs, query, body)
                }
            },
        }
    } else {
        Reply::not_found()
    };
    match fault {
        Some(f) => {
            st.stats.injected_faults += 1;
            fault_reply(f.status)
        }
        None => reply,
    }
}

pub(crate) async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let endpoint = endpoint_key(&method, &path);
    let delay = {
        let mut st = shared.lock();
        st.stats.total_requests += 1;
        if path.starts_with("/api/v4/") {
            st.stats.api_calls += 1;
        }
        if path.trim_end_matches('/') == "/oauth2/access_token" {
            st.stats.token_calls += 1;
        }
        *st.stats.per_endpoint.entry(endpoint.clone()).or_insert(0) += 1;
        st.delay_next.pop_front().or(st.delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let (reply, seq) = {
        let mut st = shared.lock();
        let reply = serve(&mut st, &method, &path, &query, &headers, &body);
        st.seq += 1;
        let seq = st.seq;
        let entry = LoggedRequest {
            seq,
            method: method.to_string(),
            path,
            query,
            body: String::from_utf8_lossy(&body).into_owned(),
            endpoint,
            status: reply.status,
            at: st.now(),
        };
        st.record(entry);
        (reply, seq)
    };
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    if let Some(ct) = reply.content_type {
        let ct = if ct.starts_with("text/") {
            format!("{ct}; charset=utf-8")
        } else {
            ct.to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&ct) {
            h.insert(header::CONTENT_TYPE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("fake-{seq}")) {
        h.insert("x-request-id", v);
    }
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}
