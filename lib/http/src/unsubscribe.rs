//! `GET|POST /api/landing/unsubscribe?token=…`, the one-click unsubscribe of every email
//! (RFC 8058). A `GET` only shows a page with one button: mail scanners and link previews open
//! links, and must not unsubscribe anyone. The `POST` — the mail client's own one-click request
//! (`List-Unsubscribe=One-Click`), or the page's button — puts the address on the suppression
//! list. Pages for people, JSON for a client that asks for it (`Accept: application/json`).

use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use http::{Method, Request, Response, StatusCode};
use landing_core::unsubscribe::{Unsubscribe, UnsubscribeError, Unsubscribed};
use serde_json::json;

/// What a request came to, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `GET` with a valid token: the page with the button.
    Confirm,
    Done(Unsubscribed),
    BadToken,
    NoAddress,
    Unavailable,
    MethodNotAllowed,
}

impl Outcome {
    fn status(self) -> StatusCode {
        match self {
            Outcome::Confirm | Outcome::Done(_) => StatusCode::OK,
            Outcome::BadToken => StatusCode::BAD_REQUEST,
            Outcome::NoAddress => StatusCode::NOT_FOUND,
            Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn json(self) -> serde_json::Value {
        match self {
            Outcome::Confirm => json!({"status": "valid"}),
            Outcome::Done(Unsubscribed::Added) => json!({"status": "unsubscribed"}),
            Outcome::Done(Unsubscribed::AlreadyListed) => json!({"status": "already_unsubscribed"}),
            Outcome::BadToken => {
                json!({"error": "validation_failed", "fields": {"token": "is missing or not a valid unsubscribe token"}})
            }
            Outcome::NoAddress => {
                json!({"error": "not_found", "message": "no address belongs to this link"})
            }
            Outcome::Unavailable => {
                json!({"error": "unavailable", "message": "could not unsubscribe now; please retry"})
            }
            Outcome::MethodNotAllowed => {
                json!({"error": "method_not_allowed", "message": "use GET or POST"})
            }
        }
    }

    /// Heading and text of the page (Russian, as the emails are).
    fn page(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Confirm => (
                "Отписаться от писем школы?",
                "Нажмите кнопку, и мы больше не будем присылать письма на адрес, которому пришла эта ссылка.",
            ),
            Outcome::Done(Unsubscribed::Added) => (
                "Вы отписаны",
                "Мы больше не будем присылать вам письма. Если это ошибка, просто ответьте на любое наше письмо.",
            ),
            Outcome::Done(Unsubscribed::AlreadyListed) => (
                "Вы уже отписаны",
                "Этот адрес уже исключён из рассылки, писем больше не будет.",
            ),
            Outcome::BadToken => (
                "Ссылка не работает",
                "Ссылка для отписки повреждена или неполная. Откройте её из письма целиком.",
            ),
            Outcome::NoAddress => ("Адрес не найден", "По этой ссылке нет адреса для отписки."),
            Outcome::Unavailable => (
                "Не получилось",
                "Сейчас отписаться не удалось. Попробуйте ещё раз через минуту.",
            ),
            Outcome::MethodNotAllowed => ("Ошибка запроса", "Откройте ссылку из письма."),
        }
    }
}

/// Handles the unsubscribe route. Never fails: every outcome is an answer, none carries
/// internal text.
pub async fn handle_unsubscribe<B>(svc: &Unsubscribe, req: &Request<B>) -> Response<String> {
    let token = token(req);
    let outcome = match (req.method(), token.as_deref()) {
        (m, _) if m != Method::GET && m != Method::POST => Outcome::MethodNotAllowed,
        (_, None) => Outcome::BadToken,
        (&Method::GET, Some(t)) => match svc.check(t) {
            Ok(_) => Outcome::Confirm,
            Err(_) => Outcome::BadToken,
        },
        (_, Some(t)) => match svc.unsubscribe(t).await {
            Ok(done) => Outcome::Done(done),
            Err(UnsubscribeError::BadToken(_)) => Outcome::BadToken,
            Err(UnsubscribeError::NoAddress(lead)) => {
                tracing::warn!(lead_id = %lead, "unsubscribe link of a lead without an address");
                Outcome::NoAddress
            }
            Err(e @ UnsubscribeError::Store(_)) => {
                tracing::error!(error = %landing_core::error_chain(&e), "unsubscribe not stored");
                Outcome::Unavailable
            }
        },
    };
    tracing::info!(event = "unsubscribe_answered", method = %req.method(), status = outcome.status().as_u16(), "answered");
    let wants_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut resp = if wants_json {
        let mut r = Response::new(outcome.json().to_string());
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    } else {
        let mut r = Response::new(page(outcome, token.as_deref()));
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // The token is in the URL: no page it links to may learn it, and nothing may keep it.
        h.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
        );
        h.insert(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex"),
        );
        r
    };
    *resp.status_mut() = outcome.status();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match outcome {
        Outcome::Unavailable => {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        Outcome::MethodNotAllowed => {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
        }
        _ => {}
    }
    resp
}

/// The `token` of the query string; a token is hex, so anything else in it is simply invalid.
fn token<B>(req: &Request<B>) -> Option<String> {
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token" && !v.is_empty()).then(|| v.to_owned())
    })
}

fn page(outcome: Outcome, token: Option<&str>) -> String {
    let (heading, text) = outcome.page();
    let button = match (outcome, token) {
        // Only a verified token reaches the page, and a verified token is 64 hex characters:
        // nothing in it needs escaping.
        (Outcome::Confirm, Some(t)) => format!(
            r#"<form method="post" action="?token={t}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Отписаться</button></form>"#
        ),
        _ => String::new(),
    };
    let role = if matches!(outcome, Outcome::Confirm) {
        ""
    } else {
        r#" role="status""#
    };
    format!(
        r#"<!doctype html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{heading}</title>
<style>
body{{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f6f6f4}}
main{{max-width:32rem;margin:0 auto;padding:2.5rem 1.25rem}}
h1{{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}}
button{{font:inherit;font-weight:600;color:#fff;background:#0b5cad;border:0;border-radius:.5rem;padding:.8rem 1.5rem;min-height:48px;cursor:pointer}}
button:focus-visible{{outline:3px solid #e8a317;outline-offset:2px}}
</style>
</head>
<body>
<main>
<div{role}>
<h1>{heading}</h1>
<p>{text}</p>
</div>
{button}
</main>
</body>
</html>
"#
    )
}
