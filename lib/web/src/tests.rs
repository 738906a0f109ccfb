use std::io::Read;

use axum::body::to_bytes;
use http::Request;
use tower::ServiceExt;

use super::*;

fn site() -> Arc<Site> {
    Arc::new(Site::from_content(CONTENT).expect("the embedded content renders"))
}

async fn get(
    site: &Arc<Site>,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = site
        .clone()
        .router()
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, headers, body.to_vec())
}

fn html(site: &Site, page: &str) -> String {
    String::from_utf8(site.pages[page].identity.to_vec()).expect("UTF-8")
}

fn without(content: &str, pointer: &str) -> String {
    let mut v: Value = serde_json::from_str(content).expect("JSON");
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .remove(key)
        .expect("key present");
    v.to_string()
}

#[test]
fn rendering_fails_on_a_missing_content_key_and_names_it() {
    for pointer in [
        "/proftest/title",
        "/expresscourse/price",
        "/status/retrying",
        "/errors/phone",
        "/form/email",
        "/expresscourse/methods/halyk",
    ] {
        let Err(err) = Site::from_content(&without(CONTENT, pointer)) else {
            panic!("{pointer}: rendered without it");
        };
        let key = pointer.rsplit('/').next().unwrap_or_default();
        let text = err.to_string();
        assert!(
            matches!(err, WebError::Render { .. } | WebError::Content(_)),
            "{pointer}: {text}"
        );
        assert!(
            text.contains(key) || text.contains("undefined"),
            "{pointer}: {text}"
        );
    }
}

#[test]
fn broken_content_is_refused_with_a_reason() {
    assert!(matches!(
        Site::from_content("{ not json"),
        Err(WebError::ContentJson(_))
    ));
    let mut v: Value = serde_json::from_str(CONTENT).expect("JSON");
    v["proftest"]["questions"][2]["options"][0]["direction"] = json!("astrology");
    let Err(err) = Site::from_content(&v.to_string()) else {
        panic!("an unknown direction rendered");
    };
    assert!(err.to_string().contains("astrology"), "{err}");
    let mut v: Value = serde_json::from_str(CONTENT).expect("JSON");
    v["site"]["apiBase"] = json!("https://api.school.kz/path");
    assert!(matches!(
        Site::from_content(&v.to_string()),
        Err(WebError::Content(_))
    ));
    assert!(matches!(
        Site::load(Some(Path::new("/nonexistent/content.json"))),
        Err(WebError::Read { .. })
    ));
}

/// The markup web/README.md promises to tests and the school's other tools.
#[test]
fn every_page_has_the_markup_contract() {
    let site = site();
    for page in ["proftest.html", "expresscourse.html"] {
        let h = html(&site, page);
        for needle in [
            r#"<html lang="ru""#,
            r#"<link rel="icon" href="data:,">"#,
            r#"name="name" type="text" autocomplete="name""#,
            r#"name="phone" type="tel" inputmode="tel" autocomplete="tel""#,
            r#"name="email" type="email" inputmode="email" autocomplete="email""#,
            r#"<label for="name">"#,
            r#"<label for="phone">"#,
            r#"<label for="email">"#,
            r#"<div class="hp" aria-hidden="true" data-honeypot>"#,
            r#"name="website" type="text" tabindex="-1" autocomplete="off""#,
            r#"role="status" aria-live="polite""#,
            r#"<button type="submit""#,
            r#"id="lead-texts""#,
        ] {
            assert!(h.contains(needle), "{page} lacks {needle}");
        }
        for bad in [
            "http://",
            "https://",
            "style=\"",
            "<script>",
            "onclick",
            "undefined",
        ] {
            assert!(!h.contains(bad), "{page} contains {bad}");
        }
        // Every asset it names is served: the stylesheets, its module and the client.
        let named: Vec<&str> = h
            .split("\"/assets/")
            .skip(1)
            .map(|u| u.split('"').next().unwrap_or_default())
            .collect();
        assert_eq!(named.len(), 4, "{page} names {named:?}");
        for file in named {
            assert!(
                site.assets.contains_key(file),
                "{page} names missing asset {file}"
            );
        }
    }
    let p = html(&site, "proftest.html");
    for q in 1..=12 {
        assert!(
            p.contains(&format!(r#"type="radio" name="q{q}""#)),
            "no q{q}"
        );
    }
    assert!(!p.contains(r#"name="q13""#));
    let e = html(&site, "expresscourse.html");
    for m in ["kaspi", "halyk", "robokassa"] {
        assert!(
            e.contains(&format!(r#"type="radio" name="paymentMethod" value="{m}""#)),
            "no {m}"
        );
    }
    assert!(e.contains("49 900 ₸"));
}

#[tokio::test]
async fn compressed_bodies_decompress_to_the_original() {
    let site = site();
    for uri in [
        "/integrator/proftest/kenesary".to_owned(),
        "/expresscourse".to_owned(),
        format!("/assets/{}", site.assets.keys().next().expect("an asset")),
    ] {
        let (_, plain_h, plain) = get(&site, &uri, &[]).await;
        assert!(plain_h.get(CONTENT_ENCODING).is_none(), "{uri}");
        let (_, gz_h, gz) = get(&site, &uri, &[("accept-encoding", "gzip, deflate")]).await;
        assert_eq!(gz_h[CONTENT_ENCODING], "gzip", "{uri}");
        assert_eq!(gz_h[VARY], "Accept-Encoding", "{uri}");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, plain, "{uri}: gzip");
        let (_, br_h, br) = get(
            &site,
            &uri,
            &[("accept-encoding", "gzip, deflate, br, zstd")],
        )
        .await;
        assert_eq!(br_h[CONTENT_ENCODING], "br", "{uri}");
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .expect("unbrotli");
        assert_eq!(out, plain, "{uri}: br");
        assert!(br.len() < plain.len() && gz.len() < plain.len(), "{uri}");
        let (_, h, _) = get(&site, &uri, &[("accept-encoding", "br;q=0, gzip")]).await;
        assert_eq!(h[CONTENT_ENCODING], "gzip", "{uri}: br refused");
    }
}

#[tokio::test]
async fn pages_answer_304_to_a_matching_etag_and_200_otherwise() {
    let site = site();
    let (status, h, body) = get(&site, "/integrator/proftest", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[CACHE_CONTROL], "no-cache");
    assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("ascii")
            .starts_with("default-src 'none'; script-src 'self';")
    );
    assert!(!body.is_empty());
    let etag = h[ETAG].to_str().expect("ascii").to_owned();
    let (status, h304, body) = get(
        &site,
        "/integrator/proftest/arystan",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(h304[ETAG], etag.as_str());
    let (status, _, _) = get(
        &site,
        "/integrator/proftest",
        &[("if-none-match", "\"stale\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(
        &site,
        "/integrator/proftest",
        &[("if-none-match", &format!("W/{etag}"))],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_MODIFIED,
        "a weak match is a match for GET"
    );
}

#[tokio::test]
async fn assets_are_immutable_under_hashed_names_and_unknown_ones_404() {
    let site = site();
    let (css, _) = site
        .assets
        .iter()
        .find(|(k, _)| k.starts_with("app.") && k.ends_with(".css"))
        .expect("app.<hash>.css");
    let (status, h, _) = get(&site, &format!("/assets/{css}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(h[CONTENT_TYPE], "text/css; charset=utf-8");
    for uri in [
        "/assets/app.css",
        "/assets/app.0000000000.css",
        "/assets/nope.js",
    ] {
        let (status, h, body) = get(&site, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert!(String::from_utf8_lossy(&body).contains("not_found"));
    }
}

#[test]
fn a_module_names_the_hashed_url_of_what_it_imports() {
    let site = site();
    let client = site
        .assets
        .keys()
        .find(|k| k.starts_with("lead-client."))
        .expect("lead-client.<hash>.js");
    for page in ["proftest.", "expresscourse."] {
        let (_, a) = site
            .assets
            .iter()
            .find(|(k, _)| k.starts_with(page) && k.ends_with(".js"))
            .expect("page module");
        let text = String::from_utf8_lossy(&a.body.identity).into_owned();
        assert!(
            text.contains(&format!("\"./{client}\"")),
            "{page} imports {client}"
        );
        assert!(!text.contains("\"./lead-client.js\""));
    }
}

#[test]
fn an_api_on_another_origin_is_named_in_the_page_and_the_policy() {
    let mut v: Value = serde_json::from_str(CONTENT).expect("JSON");
    v["site"]["apiBase"] = json!("http://127.0.0.1:4000/");
    let site = Site::from_content(&v.to_string()).expect("renders");
    assert!(html(&site, "expresscourse.html").contains(r#"data-api-base="http://127.0.0.1:4000""#));
    assert!(
        site.content_security_policy()
            .contains("connect-src 'self' http://127.0.0.1:4000;")
    );
    assert!(
        !html(
            &Site::from_content(CONTENT).expect("renders"),
            "proftest.html"
        )
        .contains("data-api-base")
    );
}

#[test]
fn export_writes_every_page_and_asset_and_a_manifest_of_their_headers() {
    let site = site();
    let dir = tempfile::tempdir().expect("temp dir");
    let written = site.export(dir.path()).expect("export");
    let paths: Vec<&PathBuf> = written.iter().map(|f| &f.path).collect();
    for page in [
        "integrator/proftest/index.html",
        "integrator/expresscourse/index.html",
        "expresscourse/index.html",
    ] {
        assert!(paths.contains(&&PathBuf::from(page)), "{page}");
        let text = std::fs::read_to_string(dir.path().join(page)).expect("page file");
        assert!(text.starts_with("<!doctype html>"));
    }
    for file in site.assets.keys() {
        assert!(dir.path().join("assets").join(file).is_file(), "{file}");
    }
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    assert_eq!(
        manifest["contentSecurityPolicy"],
        site.content_security_policy()
    );
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), written.len());
    for f in files {
        let path = f["path"].as_str().expect("path");
        let (ct, cc) = (f["contentType"].as_str(), f["cacheControl"].as_str());
        if path.ends_with(".html") {
            assert_eq!((ct, cc), (Some(HTML), Some(HTML_CACHE)), "{path}");
        } else {
            assert!(path.starts_with("assets/"), "{path}");
            assert_eq!(cc, Some(ASSET_CACHE), "{path}");
            assert!(ct.is_some_and(|t| t.starts_with("text/")), "{path}: {ct:?}");
        }
    }
}

use serde_json::json;

/// On AWS the pages come from S3 through CloudFront, whose response-headers policy in
/// template.yaml must send the very policy landing-local sends.
#[test]
fn the_aws_distribution_sends_the_same_content_security_policy() {
    let template = include_str!("../../../template.yaml");
    let csp = site().content_security_policy().to_owned();
    assert!(
        template.contains(&format!("ContentSecurityPolicy: \"{csp}\"")),
        "template.yaml's PagesHeadersPolicy differs from {csp}"
    );
}

#[test]
fn the_honeypot_field_is_named_as_configured() {
    let site = Site::load_with(None, "company").unwrap();
    for page in ["proftest.html", "expresscourse.html"] {
        let h = html(&site, page);
        assert!(
            h.contains(r#"<input id="company" name="company" type="text" tabindex="-1""#),
            "{page}"
        );
        assert!(!h.contains(r#"name="website""#), "{page}");
    }
}
