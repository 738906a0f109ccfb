//! The intake endpoints over plain `http` types. The Lambda functions (`landing-aws-intake`,
//! from `lambda_http`) and landing-local (from axum) convert their requests into an
//! [`http::Request`] and serve this very function, so both runtimes answer byte for byte alike
//! (docs/architecture.md §3). No runtime crate is linked here.

mod unsubscribe;

use std::net::IpAddr;

use http::header::{ALLOW, CONTENT_TYPE, HOST, HeaderName, HeaderValue, ORIGIN, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use landing_core::domain::Form;
use landing_core::intake::{
    BadIdempotencyKey, IdempotencyKey, IntakeError, IntakeService, Submitted,
};
use landing_core::submission::{BodyError, FieldErrors, decode_body};
use serde_json::{Value, json};
use tracing::Instrument;

pub use unsubscribe::handle_unsubscribe;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const CORRELATION_ID: &str = "x-correlation-id";
/// Where the one-click unsubscribe links of the emails point, on both runtimes.
pub const UNSUBSCRIBE_PATH: &str = "/api/landing/unsubscribe";
/// The host the viewer addressed, as the CloudFront edge function of the template passes it on
/// (CloudFront sends the API's own host as `Host`).
pub const VIEWER_HOST: &str = "x-landing-viewer-host";

/// What the runtime knows about a request beyond its method, headers and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// API Gateway's request id (`requestContext.requestId`), when behind it.
    pub gateway_request_id: Option<String>,
    /// The client's address as the runtime determined it (socket or trusted proxy locally,
    /// API Gateway or the CloudFront edge on AWS). Hashed before it is stored; never logged.
    pub client_ip: Option<IpAddr>,
}

/// Handles `POST /api/landing/proftest` (`Form::ProfTest`) or `POST /api/landing/submit`
/// (`Form::ExpressCourse`). Never fails: every outcome is an HTTP answer, and no internal
/// error text reaches a body.
pub async fn handle<B: AsRef<[u8]>>(
    svc: &IntakeService,
    form: Form,
    req: &Request<B>,
    ctx: &Context,
) -> Response<String> {
    let started = std::time::Instant::now();
    let correlation_id = correlation_id(req, ctx);
    let span =
        tracing::info_span!("intake", correlation_id = %correlation_id, form = form.as_str());
    let mut resp = match answer(svc, form, req, &correlation_id, ctx.client_ip)
        .instrument(span.clone())
        .await
    {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static(CORRELATION_ID), v);
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(
            event = "intake_answered",
            status = resp.status().as_u16(),
            latency_ms,
            "answered"
        );
    });
    resp
}

async fn answer<B: AsRef<[u8]>>(
    svc: &IntakeService,
    form: Form,
    req: &Request<B>,
    correlation_id: &str,
    client_ip: Option<IpAddr>,
) -> Result<Response<String>, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    check_origin(svc, req)?;
    let header_key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str().ok().map(IdempotencyKey::parse) {
            Some(Ok(k)) => Some(k),
            _ => return Err(ApiError::BadIdempotencyKey),
        },
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let fields = decode_body(content_type, req.body().as_ref()).map_err(ApiError::from)?;
    // A beacon cannot set headers, so the key may come in the body; the header wins.
    let key = match header_key {
        Some(k) => Some(k),
        None => IdempotencyKey::from_fields(&fields).map_err(ApiError::Validation)?,
    };
    match svc
        .submit(form, &fields, key.as_ref(), correlation_id, client_ip)
        .await
    {
        Ok(Submitted::Created { body, .. }) => Ok(raw_json(StatusCode::CREATED, body)),
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
            Ok(resp)
        }
        Err(IntakeError::Validation(fields)) => {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            tracing::info!(fields = ?names, "validation failed");
            Err(ApiError::Validation(fields))
        }
        Err(IntakeError::KeyReused) => Err(ApiError::KeyReused),
        Err(IntakeError::InFlight) => Err(ApiError::InFlight),
        Err(e @ (IntakeError::Unavailable(_) | IntakeError::Internal(_))) => {
            tracing::error!(error = %landing_core::error_chain(&e), "lead not stored");
            Err(ApiError::Unavailable)
        }
    }
}

/// CORS does not stop a cross-site form post or beacon (neither needs a preflight), so with an
/// allow-list configured a browser request from elsewhere is refused before anything is read.
/// A page posting to its own host always passes. Requests without `Origin` (servers, curl) are
/// not browsers' and pass too.
fn check_origin<B>(svc: &IntakeService, req: &Request<B>) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(ORIGIN) else {
        return Ok(());
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host = header(VIEWER_HOST)
        .or_else(|| header("x-forwarded-host"))
        .or_else(|| header(HOST.as_str()));
    let allowed = origin
        .to_str()
        .is_ok_and(|o| svc.config().origins.allows(o, host));
    if allowed {
        return Ok(());
    }
    // An origin is a site, not a person: logged as it came, cut short.
    let shown: String = String::from_utf8_lossy(origin.as_bytes())
        .chars()
        .take(100)
        .collect();
    tracing::warn!(origin = %shown, "request from an origin not in CORS_ALLOWED_ORIGINS refused");
    Err(ApiError::OriginNotAllowed)
}

/// Every answer other than a 2xx, each with its status, code, message and headers: one table
/// instead of a JSON body built inline per case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    MethodNotAllowed,
    OriginNotAllowed,
    BadIdempotencyKey,
    PayloadTooLarge,
    UnsupportedMediaType,
    MalformedBody(String),
    Validation(FieldErrors),
    KeyReused,
    InFlight,
    Unavailable,
    NotFound,
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            BodyError::Malformed(msg) => ApiError::MalformedBody(msg),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::BadIdempotencyKey | ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::InFlight => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The machine-readable `error` of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::OriginNotAllowed => "origin_not_allowed",
            ApiError::BadIdempotencyKey => "invalid_header",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MalformedBody(_) => "malformed_body",
            ApiError::Validation(_) => "validation_failed",
            ApiError::KeyReused => "idempotency_key_reused",
            ApiError::InFlight => "request_in_progress",
            ApiError::Unavailable => "unavailable",
            ApiError::NotFound => "not_found",
        }
    }

    fn message(&self) -> Option<String> {
        Some(match self {
            ApiError::MethodNotAllowed => "use POST".to_owned(),
            ApiError::OriginNotAllowed => {
                "this site may not submit to the API (CORS_ALLOWED_ORIGINS)".to_owned()
            }
            ApiError::BadIdempotencyKey => BadIdempotencyKey.to_string(),
            ApiError::PayloadTooLarge => BodyError::TooLarge.to_string(),
            ApiError::UnsupportedMediaType => BodyError::UnsupportedMediaType.to_string(),
            ApiError::MalformedBody(msg) => msg.clone(),
            ApiError::Validation(_) => return None,
            ApiError::KeyReused => {
                "this Idempotency-Key was already used with a different body".to_owned()
            }
            ApiError::InFlight => {
                "a request with this Idempotency-Key is still being processed; retry shortly"
                    .to_owned()
            }
            ApiError::Unavailable => "the lead could not be stored; please retry".to_owned(),
            ApiError::NotFound => "no such endpoint".to_owned(),
        })
    }

    /// Field name → what is wrong with it, for the answers that name fields.
    fn fields(&self) -> Option<Value> {
        match self {
            ApiError::Validation(fields) => Some(json!(fields)),
            ApiError::BadIdempotencyKey => {
                Some(json!({"Idempotency-Key": BadIdempotencyKey::RULE}))
            }
            ApiError::KeyReused => {
                Some(json!({"Idempotency-Key": "already used with a different body"}))
            }
            _ => None,
        }
    }

    /// Seconds a client should wait before retrying, for the answers worth retrying.
    fn retry_after(&self) -> Option<&'static str> {
        match self {
            ApiError::InFlight => Some("1"),
            ApiError::Unavailable => Some("5"),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<String> {
        let mut body = json!({"error": self.code()});
        if let Some(m) = self.message() {
            body["message"] = Value::String(m);
        }
        if let Some(f) = self.fields() {
            body["fields"] = f;
        }
        let mut resp = raw_json(self.status(), body.to_string());
        if let Some(s) = self.retry_after() {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(s));
        }
        if self == ApiError::MethodNotAllowed {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }
}

/// The `413` answer; also used by servers that stop reading a body at the limit.
pub fn payload_too_large() -> Response<String> {
    ApiError::PayloadTooLarge.into_response()
}

/// A JSON `404` for paths that are not an endpoint.
pub fn not_found() -> Response<String> {
    ApiError::NotFound.into_response()
}

/// A caller-supplied `X-Correlation-Id` if it is sane, else API Gateway's request id, else new.
/// HTTP API request ids look like `JKJaXmPLvHcESHA=` (base64), so `=`, `+` and `/` must pass.
fn correlation_id<B>(req: &Request<B>, ctx: &Context) -> String {
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
    if let Some(id) = ctx.gateway_request_id.as_deref().filter(|s| sane(s)) {
        return id.to_owned();
    }
    uuid::Uuid::now_v7().to_string()
}

fn raw_json(status: StatusCode, body: String) -> Response<String> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answer_is_json_with_its_code_and_the_retryable_ones_say_when() {
        for e in [
            ApiError::MethodNotAllowed,
            ApiError::OriginNotAllowed,
            ApiError::BadIdempotencyKey,
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::MalformedBody("request body is empty".into()),
            ApiError::Validation(FieldErrors::from([("phone".into(), "is required".into())])),
            ApiError::KeyReused,
            ApiError::InFlight,
            ApiError::Unavailable,
            ApiError::NotFound,
        ] {
            let (status, code, retry) = (e.status(), e.code(), e.retry_after());
            let resp = e.into_response();
            assert_eq!(resp.status(), status);
            let body: Value = serde_json::from_str(resp.body()).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(
                resp.headers()
                    .get(RETRY_AFTER)
                    .map(|v| v.to_str().unwrap().to_owned()),
                retry.map(str::to_owned)
            );
            assert!(status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[test]
    fn a_sane_correlation_id_is_kept_and_a_bad_one_replaced() {
        let req = |v: &str| {
            Request::builder()
                .header(CORRELATION_ID, v)
                .body(Vec::<u8>::new())
                .unwrap()
        };
        let gw = Context {
            gateway_request_id: Some("JKJaXmPLvHcESHA=".into()),
            client_ip: None,
        };
        assert_eq!(correlation_id(&req("abc-1"), &gw), "abc-1");
        assert_eq!(correlation_id(&req("bad value!"), &gw), "JKJaXmPLvHcESHA=");
        let fresh = correlation_id(&req(&"x".repeat(65)), &Context::default());
        assert!(uuid::Uuid::parse_str(&fresh).is_ok());
    }
}
