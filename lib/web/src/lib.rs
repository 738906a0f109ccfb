//! The two landing pages, ProfTest and ExpressCourse, as part of the binary (docs/architecture.md §11).
//!
//! `web/pages` (minijinja templates), `web/assets` (CSS, ES modules) and `web/content.json`
//! (every visible text, in Russian) are embedded at build time, so one `landing-local` binary is
//! the whole product. At start the pages are rendered once from the embedded texts, or from a
//! replacement file the school edits (`LANDING_WEB_CONTENT`), and every page and asset is
//! compressed once (gzip and brotli). Serving is then a map lookup.

mod encoding;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use include_dir::{Dir, include_dir};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use encoding::Encoding;

static PAGES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/pages");
static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/assets");
static CONTENT: &str = include_str!("../../../web/content.json");

/// The variable that names a replacement `content.json`.
pub const CONTENT_VAR: &str = "LANDING_WEB_CONTENT";

/// Which template serves which routes, and where `export` writes it.
const PAGE_ROUTES: [(&str, &[&str], &[&str]); 2] = [
    (
        "proftest.html",
        &[
            "/integrator/proftest",
            "/integrator/proftest/",
            "/integrator/proftest/{slug}",
        ],
        &["integrator/proftest/index.html"],
    ),
    (
        "expresscourse.html",
        &[
            "/integrator/expresscourse",
            "/integrator/expresscourse/",
            "/integrator/expresscourse/{slug}",
            "/expresscourse",
            "/expresscourse/",
            "/expresscourse/{slug}",
        ],
        &[
            "integrator/expresscourse/index.html",
            "expresscourse/index.html",
        ],
    ),
];

const HTML: &str = "text/html; charset=utf-8";
const HTML_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the content is not valid JSON")]
    ContentJson(#[source] serde_json::Error),
    #[error("the content is wrong: {0}")]
    Content(String),
    #[error("page {page} does not render from this content: {detail}")]
    Render { page: String, detail: String },
    #[error("asset {0} is referenced but not embedded")]
    Asset(String),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A body in every encoding it is served in.
#[derive(Debug, Clone)]
struct Encoded {
    identity: Bytes,
    gzip: Bytes,
    br: Bytes,
    etag: HeaderValue,
}

impl Encoded {
    fn new(body: Vec<u8>) -> Encoded {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..20]);
        Encoded {
            gzip: Bytes::from(encoding::gzip(&body)),
            br: Bytes::from(encoding::brotli(&body)),
            identity: Bytes::from(body),
            // Hex in quotes is always a valid header value.
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        }
    }

    fn get(&self, enc: Encoding) -> &Bytes {
        match enc {
            Encoding::Identity => &self.identity,
            Encoding::Gzip => &self.gzip,
            Encoding::Brotli => &self.br,
        }
    }
}

#[derive(Debug, Clone)]
struct Asset {
    content_type: &'static str,
    body: Encoded,
}

/// One file `Site::export` wrote, relative to its directory, with the headers it is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub path: PathBuf,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// The rendered pages and the assets under their content-hashed names.
/// The honeypot's field name when `HONEYPOT_FIELD` is unset (as `landing_core::guard`).
pub const DEFAULT_HONEYPOT: &str = "website";

#[derive(Debug)]
pub struct Site {
    /// Template name → rendered page.
    pages: BTreeMap<&'static str, Encoded>,
    /// Hashed file name (`app.3f2a1c9e0b.css`) → asset.
    assets: BTreeMap<String, Asset>,
    csp: HeaderValue,
}

impl Site {
    /// The embedded pages, with the embedded `content.json` or the one at `content`.
    pub fn load(content: Option<&Path>) -> Result<Site, WebError> {
        Site::load_with(content, DEFAULT_HONEYPOT)
    }

    /// [`Site::load`] with the honeypot field named `honeypot` (`HONEYPOT_FIELD`): the pages and
    /// the intake check must name the same field, or the trap silently stops catching.
    pub fn load_with(content: Option<&Path>, honeypot: &str) -> Result<Site, WebError> {
        match content {
            None => Site::from_content_with(CONTENT, honeypot),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| WebError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Site::from_content_with(&text, honeypot)
            }
        }
    }

    /// The embedded pages rendered from `content` (the text of a `content.json`).
    pub fn from_content(content: &str) -> Result<Site, WebError> {
        Site::from_content_with(content, DEFAULT_HONEYPOT)
    }

    fn from_content_with(content: &str, honeypot: &str) -> Result<Site, WebError> {
        let content: Value = serde_json::from_str(content).map_err(WebError::ContentJson)?;
        check_content(&content)?;
        let api_base = api_base(&content)?;
        let (assets, urls) = hashed_assets()?;

        let mut env = Environment::new();
        // A text the school deleted must stop the start, not render as an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for file in PAGES.files() {
            let name = file.path().to_string_lossy().into_owned();
            let source = file.contents_utf8().ok_or_else(|| WebError::Render {
                page: name.clone(),
                detail: "not UTF-8".into(),
            })?;
            env.add_template_owned(name.clone(), source.to_owned())
                .map_err(|e| WebError::Render {
                    page: name,
                    detail: render_error(&e),
                })?;
        }
        // URLs we built and checked: marked safe so that `/` is not escaped to `&#x2f;`.
        let urls: BTreeMap<String, minijinja::Value> = urls
            .into_iter()
            .map(|(k, v)| (k, minijinja::Value::from_safe_string(v)))
            .collect();
        let ctx = minijinja::context! {
            content => minijinja::Value::from_serialize(&content),
            client_texts => minijinja::Value::from_serialize(client_texts(&content)?),
            assets => urls,
            api_base => minijinja::Value::from_safe_string(api_base.clone().unwrap_or_default()),
            honeypot => honeypot,
        };
        let mut pages = BTreeMap::new();
        for (name, _, _) in PAGE_ROUTES {
            let html = env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| WebError::Render {
                    page: name.to_owned(),
                    detail: render_error(&e),
                })?;
            pages.insert(name, Encoded::new(html.into_bytes()));
        }
        Ok(Site {
            pages,
            assets,
            csp: csp(api_base.as_deref())?,
        })
    }

    /// The page routes and `/assets/{file}`, to merge into the server's router.
    pub fn router(self: Arc<Self>) -> Router {
        let mut router = Router::new();
        for (name, routes, _) in PAGE_ROUTES {
            for route in routes {
                router = router.route(
                    route,
                    get(
                        move |State(site): State<Arc<Site>>, headers: HeaderMap| async move {
                            site.page(name, &headers)
                        },
                    ),
                );
            }
        }
        router.route("/assets/{file}", get(asset)).with_state(self)
    }

    /// Writes the pages (`integrator/proftest/index.html`, …) and `assets/*` under `dir`, as
    /// plain files for a static host, and `manifest.json` beside them: every file's
    /// `Content-Type` and `Cache-Control`, and the pages' `Content-Security-Policy`, which a
    /// static host cannot work out from a file name (infra/upload_web.py reads it).
    pub fn export(&self, dir: &Path) -> Result<Vec<Exported>, WebError> {
        let mut written = Vec::new();
        let mut write = |rel: PathBuf,
                         body: &[u8],
                         content_type: &'static str,
                         cache_control: &'static str|
         -> Result<(), WebError> {
            let path = dir.join(&rel);
            let fail = |source| WebError::Write {
                path: path.display().to_string(),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(fail)?;
            }
            std::fs::write(&path, body).map_err(fail)?;
            written.push(Exported {
                path: rel,
                content_type,
                cache_control,
            });
            Ok(())
        };
        for (name, _, files) in PAGE_ROUTES {
            if let Some(page) = self.pages.get(name) {
                for file in files {
                    write(PathBuf::from(file), &page.identity, HTML, HTML_CACHE)?;
                }
            }
        }
        for (file, asset) in &self.assets {
            write(
                Path::new("assets").join(file),
                &asset.body.identity,
                asset.content_type,
                ASSET_CACHE,
            )?;
        }
        let manifest = serde_json::json!({
            "contentSecurityPolicy": self.content_security_policy(),
            "files": written.iter().map(|f| serde_json::json!({
                "path": f.path.to_string_lossy().replace('\\', "/"),
                "contentType": f.content_type,
                "cacheControl": f.cache_control,
            })).collect::<Vec<_>>(),
        });
        let path = dir.join("manifest.json");
        std::fs::write(&path, manifest.to_string()).map_err(|source| WebError::Write {
            path: path.display().to_string(),
            source,
        })?;
        Ok(written)
    }

    /// The `Content-Security-Policy` every page is served with.
    pub fn content_security_policy(&self) -> &str {
        self.csp.to_str().unwrap_or_default()
    }

    fn page(&self, name: &str, headers: &HeaderMap) -> Response {
        let Some(page) = self.pages.get(name) else {
            return not_found();
        };
        let mut resp = respond(page, HTML, HTML_CACHE, headers);
        resp.headers_mut().insert(
            HeaderName::from_static("content-security-policy"),
            self.csp.clone(),
        );
        resp.headers_mut().insert(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        resp
    }
}

async fn asset(
    State(site): State<Arc<Site>>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    match site.assets.get(&file) {
        Some(a) => respond(&a.body, a.content_type, ASSET_CACHE, &headers),
        None => not_found(),
    }
}

/// The answer for one body: `304` when the client has this version, else the best encoding
/// it accepts.
fn respond(
    body: &Encoded,
    content_type: &'static str,
    cache: &'static str,
    req: &HeaderMap,
) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    let h = resp.headers_mut();
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(ETAG, body.etag.clone());
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let fresh = req
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || body.etag.to_str().is_ok_and(|e| e == t));
    if fresh {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    let enc = Encoding::negotiate(req.get_all(http::header::ACCEPT_ENCODING).iter());
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(ce) = enc.header() {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(ce));
    }
    *resp.body_mut() = axum::body::Body::from(body.get(enc).clone());
    resp
}

/// The same JSON `404` the API's fallback answers, so an unknown asset looks like any other miss.
fn not_found() -> Response {
    let mut resp = Response::new(axum::body::Body::from(
        r#"{"error":"not_found","message":"no such endpoint"}"#,
    ));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn render_error(e: &minijinja::Error) -> String {
    // minijinja's text names the template and line: that points the school at the missing text.
    let mut out = e.to_string();
    if let Some(detail) = e.detail().filter(|d| !out.contains(d)) {
        out.push_str(": ");
        out.push_str(detail);
    }
    out
}

/// What the templates cannot check by themselves: the test has questions with options, and
/// every option points at a direction that has a result.
fn check_content(c: &Value) -> Result<(), WebError> {
    let bad = |m: String| Err(WebError::Content(m));
    let directions: Vec<&str> = c
        .pointer("/proftest/directions")
        .and_then(Value::as_array)
        .map(|ds| ds.iter().filter_map(|d| d["key"].as_str()).collect())
        .unwrap_or_default();
    if directions.is_empty() {
        return bad("proftest.directions must list at least one direction with a key".into());
    }
    let Some(questions) = c
        .pointer("/proftest/questions")
        .and_then(Value::as_array)
        .filter(|q| !q.is_empty())
    else {
        return bad("proftest.questions must list at least one question".into());
    };
    for (i, q) in questions.iter().enumerate() {
        let options = q["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if options.len() < 2 {
            return bad(format!(
                "proftest.questions[{i}] needs at least two options"
            ));
        }
        for (j, o) in options.iter().enumerate() {
            let d = o["direction"].as_str().unwrap_or_default();
            if !directions.contains(&d) {
                return bad(format!(
                    "proftest.questions[{i}].options[{j}].direction {d:?} is not one of proftest.directions ({})",
                    directions.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The texts lead-client.js shows (`status.*`, `errors.*`), handed to the page as JSON. Each
/// is required: a text deleted from content.json stops the start instead of showing nothing.
const CLIENT_TEXTS: [&str; 14] = [
    "/status/sending",
    "/status/retrying",
    "/status/resuming",
    "/status/sent",
    "/status/invalid",
    "/status/rejected",
    "/status/tooLarge",
    "/errors/name",
    "/errors/phone",
    "/errors/email",
    "/errors/contact",
    "/errors/paymentMethod",
    "/errors/answer",
    "/errors/other",
];

fn client_texts(c: &Value) -> Result<Value, WebError> {
    let mut out = serde_json::Map::new();
    for pointer in CLIENT_TEXTS {
        let text = c
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                WebError::Content(format!(
                    "{} must be a text (the page script shows it)",
                    pointer.trim_start_matches('/').replace('/', ".")
                ))
            })?;
        let mut parts = pointer.trim_start_matches('/').splitn(2, '/');
        let (group, key) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if let Value::Object(g) = out
            .entry(group.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()))
        {
            g.insert(key.to_owned(), Value::String(text.to_owned()));
        }
    }
    Ok(Value::Object(out))
}

/// `site.apiBase`: empty for the pages' own origin, else an origin like `https://api.school.kz`.
fn api_base(c: &Value) -> Result<Option<String>, WebError> {
    let raw = c
        .pointer("/site/apiBase")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/');
    if raw.is_empty() {
        return Ok(None);
    }
    let host = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .unwrap_or_default();
    let sane = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !sane {
        return Err(WebError::Content(format!(
            "site.apiBase {raw:?} is not an origin like https://api.school.kz (or empty)"
        )));
    }
    Ok(Some(raw.to_owned()))
}

/// Nothing but our own files runs or loads; the API may sit on another origin (`site.apiBase`).
fn csp(api_base: Option<&str>) -> Result<HeaderValue, WebError> {
    let api = api_base.map(|a| format!(" {a}")).unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{api}; form-action 'self'{api}; base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy)
        .map_err(|_| WebError::Content("site.apiBase cannot go into a header".into()))
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "webp" => "image/webp",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `app.css` → `app.<10 hex of its SHA-256>.css`.
fn hashed_name(file: &str, body: &[u8]) -> String {
    let hash = &hex::encode(Sha256::digest(body))[..10];
    match file.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{file}.{hash}"),
    }
}

/// Every embedded asset under its content-hashed name, and the map plain name → URL the
/// templates use. A module that imports another (`from "./lead-client.js"`) has the hashed
/// name written into it before it is hashed itself, so a change anywhere changes every URL
/// that leads to it and no browser keeps a stale module.
/// Hashed file name → asset, and plain name → URL.
type HashedAssets = (BTreeMap<String, Asset>, BTreeMap<String, String>);

fn hashed_assets() -> Result<HashedAssets, WebError> {
    let mut pending: BTreeMap<String, Vec<u8>> = ASSETS
        .files()
        .map(|f| {
            (
                f.path().to_string_lossy().into_owned(),
                f.contents().to_vec(),
            )
        })
        .collect();
    let mut hashed: BTreeMap<String, String> = BTreeMap::new();
    let mut assets = BTreeMap::new();
    while !pending.is_empty() {
        let refers = |body: &[u8], other: &str| {
            let needle = format!("./{other}");
            body.windows(needle.len()).any(|w| w == needle.as_bytes())
        };
        let ready: Vec<String> = pending
            .iter()
            .filter(|(name, body)| {
                !pending
                    .keys()
                    .any(|other| other != *name && refers(body, other))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if ready.is_empty() {
            let names: Vec<&str> = pending.keys().map(String::as_str).collect();
            return Err(WebError::Asset(format!(
                "cycle of imports among {}",
                names.join(", ")
            )));
        }
        for name in ready {
            let Some(mut body) = pending.remove(&name) else {
                continue;
            };
            if name.ends_with(".js") || name.ends_with(".css") {
                let mut text = String::from_utf8(body)
                    .map_err(|_| WebError::Asset(format!("{name} is not UTF-8")))?;
                for (plain, h) in &hashed {
                    text = text.replace(&format!("./{plain}"), &format!("./{h}"));
                }
                body = text.into_bytes();
            }
            let h = hashed_name(&name, &body);
            assets.insert(
                h.clone(),
                Asset {
                    content_type: content_type(&name),
                    body: Encoded::new(body),
                },
            );
            hashed.insert(name, h);
        }
    }
    let urls = hashed
        .into_iter()
        .map(|(plain, h)| (plain, format!("/assets/{h}")))
        .collect();
    Ok((assets, urls))
}

#[cfg(test)]
mod tests;
