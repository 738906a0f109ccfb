//! The intake endpoints as `lambda_http` handlers. landing-local serves the very same function
//! behind its own HTTP server, so both runtimes answer byte for byte alike (DESIGN §3).

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tracing::Instrument;

use crate::domain::Form;
use crate::intake::{IdempotencyKey, IntakeError, IntakeService, Submitted};
use crate::submission::{BodyError, decode_body};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const CORRELATION_ID: &str = "x-correlation-id";

/// Handles `POST /api/landing/proftest` (`Form::ProfTest`) or `POST /api/landing/submit`
/// (`Form::ExpressCourse`). Never fails: every outcome is an HTTP answer, and no internal
/// error text reaches a body.
pub async fn handle(svc: &IntakeService, form: Form, req: Request) -> Response<Body> {
    let correlation_id = correlation_id(&req);
    let span =
        tracing::info_span!("intake", correlation_id = %correlation_id, form = form.as_str());
    let mut resp = answer(svc, form, req, &correlation_id)
        .instrument(span.clone())
        .await;
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static(CORRELATION_ID), v);
    }
    span.in_scope(|| tracing::info!(status = resp.status().as_u16(), "answered"));
    resp
}

async fn answer(
    svc: &IntakeService,
    form: Form,
    req: Request,
    correlation_id: &str,
) -> Response<Body> {
    if req.method() != Method::POST {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        );
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let header_key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str().ok().map(IdempotencyKey::parse) {
            Some(Ok(k)) => Some(k),
            _ => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "invalid_header", "message": "Idempotency-Key must be 1-255 visible ASCII characters", "fields": {"Idempotency-Key": "must be 1-255 visible ASCII characters"}}),
                );
            }
        },
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let fields = match decode_body(content_type.as_deref(), bytes) {
        Ok(fields) => fields,
        Err(BodyError::TooLarge) => return payload_too_large(),
        Err(BodyError::UnsupportedMediaType) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &BodyError::UnsupportedMediaType.to_string(),
            );
        }
        Err(BodyError::Malformed(msg)) => {
            return error(StatusCode::BAD_REQUEST, "malformed_body", &msg);
        }
    };
    // A beacon cannot set headers, so the key may come in the body; the header wins.
    let key = match header_key {
        Some(k) => Some(k),
        None => match IdempotencyKey::from_fields(&fields) {
            Ok(k) => k,
            Err(fields) => {
                return json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"error": "validation_failed", "fields": fields}),
                );
            }
        },
    };
    match svc
        .submit(form, &fields, key.as_ref(), correlation_id)
        .await
    {
        Ok(Submitted::Created { body, .. }) => raw_json(StatusCode::CREATED, body),
        Ok(Submitted::Replayed(stored)) => {
            // The first answer was a 201; a replay says 200 with the same body.
            let status = if stored.status == 201 {
                StatusCode::OK
            } else {
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK)
            };
            let mut resp = raw_json(status, stored.body);
            resp.headers_mut().insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
            resp
        }
        Err(IntakeError::Validation(fields)) => {
            tracing::info!(fields = ?fields.keys().collect::<Vec<_>>(), "validation failed");
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"error": "validation_failed", "fields": fields}),
            )
        }
        Err(IntakeError::KeyReused) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"error": "idempotency_key_reused", "message": "this Idempotency-Key was already used with a different body", "fields": {"Idempotency-Key": "already used with a different body"}}),
        ),
        Err(IntakeError::InFlight) => {
            let mut resp = error(
                StatusCode::CONFLICT,
                "request_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Err(e @ IntakeError::Unavailable(_)) => {
            tracing::error!(error = %crate::error_chain(&e), "lead not stored");
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the lead could not be stored; please retry",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
    }
}

/// The `413` answer; also used by servers that stop reading a body at the limit.
pub fn payload_too_large() -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &BodyError::TooLarge.to_string(),
    )
}

/// A JSON `404` for paths that are not an endpoint.
pub fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// A caller-supplied `X-Correlation-Id` if it is sane, else API Gateway's request id, else new.
/// HTTP API request ids look like `JKJaXmPLvHcESHA=` (base64), so `=`, `+` and `/` must pass.
fn correlation_id(req: &Request) -> String {
    let sane = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
            })
    };
    if let Some(v) = req
        .headers()
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| sane(s))
    {
        return v.to_owned();
    }
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(id) = ctx.request_id.as_deref().filter(|s| sane(s))
    {
        return id.to_owned();
    }
    uuid::Uuid::now_v7().to_string()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": code, "message": message}))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    raw_json(status, value.to_string())
}

fn raw_json(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
