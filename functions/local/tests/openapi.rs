//! `openapi.json` is checked against the handler (docs/architecture.md §3: "described in an OpenAPI document
//! in the repo, checked against the code by a test"):
//!
//! - every request example is sent through `landing_http::handle` (as the Lambdas call it) with its content type and
//!   headers, and must get its `x-expected-status`, a status the operation documents, a body
//!   that satisfies the documented schema and the documented required headers;
//! - every event fixture's answer (`events/`) must be documented the same way;
//! - every documented status must be reachable by an example or a fixture, and every response
//!   example must satisfy its own schema.
//!
//! The schema check covers the JSON Schema keywords the document uses for answers: `$ref`,
//! `allOf`/`anyOf`/`oneOf`, `type`, `const`, `enum`, `required`, `properties`,
//! `additionalProperties`, `minProperties`, `minLength`/`maxLength`, `minimum`, `format: uuid`.
//! (`pattern` is not evaluated; `sourceCampaign`'s shape is checked by handler_fixtures.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    Answer, DownStore, EventBody, Harness, apigw_event, form_for_path, gated_harness,
    http_fixtures, leaks_internals, load_expected, repo_root, request, twice_in_flight,
};
use landing_core::domain::{Form, LeadId};
use serde_json::{Value, json};

fn document() -> Value {
    let path = repo_root().join("openapi.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// Follows `$ref`s (local JSON pointers) until a non-reference object.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs are supported: {r}"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    panic!("$ref cycle")
}

/// The (path, method, operation) triples, with the form each path serves.
fn operations(doc: &Value) -> Vec<(String, Form, &Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        // Not an intake endpoint: checked by its own test below.
        if path == landing_http::UNSUBSCRIBE_PATH {
            continue;
        }
        let form = form_for_path(path)
            .unwrap_or_else(|| panic!("{path} is documented but no handler serves it"));
        for (method, op) in item.as_object().expect("path item") {
            match method.as_str() {
                "post" => out.push((path.clone(), form, op)),
                "summary" | "description" | "parameters" | "servers" => {}
                other => panic!(
                    "{path}: {other} is documented but the handler only answers POST (405 otherwise)"
                ),
            }
        }
    }
    out
}

// ------------------------------------------------------------------------- schema check

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// Problems of `v` against `schema`, each prefixed with where in `v` it is.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut errs = Vec::new();
    if let Some(b) = schema.as_bool() {
        if !b {
            errs.push(format!("{at}: no value is allowed here"));
        }
        return errs;
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        errs.extend(validate(doc, s, v, at));
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|s| validate(doc, s, v, at).is_empty())
    {
        errs.push(format!("{at}: matches none of anyOf"));
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let results: Vec<Vec<String>> = one.iter().map(|s| validate(doc, s, v, at)).collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        if passing != 1 {
            let why: Vec<String> = results.into_iter().flatten().collect();
            errs.push(format!(
                "{at}: matches {passing} of oneOf (exactly 1 required): {}",
                why.join("; ")
            ));
        }
    }
    match &schema["type"] {
        Value::String(t) if !type_matches(t, v) => {
            errs.push(format!("{at}: {v} is not of type {t}"))
        }
        Value::Array(ts)
            if !ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, v)) =>
        {
            errs.push(format!("{at}: {v} is not of any type {ts:?}"))
        }
        _ => {}
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        errs.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                errs.push(format!("{at}: required property {r} is missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => errs.extend(validate(doc, s, val, &format!("{at}.{k}"))),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => errs.push(format!("{at}: property {k} is not allowed")),
                    s @ Value::Object(_) => {
                        errs.extend(validate(doc, s, val, &format!("{at}.{k}")))
                    }
                    _ => {}
                },
            }
        }
        if let Some(min) = schema["minProperties"].as_u64()
            && (obj.len() as u64) < min
        {
            errs.push(format!("{at}: fewer than {min} properties"));
        }
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|m| n < m)
            || schema["maxLength"].as_u64().is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: length {n} out of bounds"));
        }
        if schema["format"] == "uuid" && s.parse::<LeadId>().is_err() {
            errs.push(format!("{at}: {s} is not a UUID"));
        }
    }
    if let (Some(n), Some(min)) = (v.as_f64(), schema["minimum"].as_f64())
        && n < min
    {
        errs.push(format!("{at}: {n} < {min}"));
    }
    if let Some(items) = schema.get("items") {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            errs.extend(validate(doc, items, item, &format!("{at}[{i}]")));
        }
    }
    errs
}

/// The answer is one the operation documents: status, media type, body schema, headers.
fn check_documented(doc: &Value, op: &Value, ans: &Answer) -> Result<(), String> {
    let status = ans.status.as_u16().to_string();
    let responses = op["responses"]
        .as_object()
        .ok_or("operation without responses")?;
    let documented: Vec<&String> = responses.keys().collect();
    let resp = responses
        .get(&status)
        .ok_or_else(|| format!("status {status} is not documented (documented: {documented:?})"))?;
    let resp = resolve(doc, resp);
    let content = resp["content"]
        .as_object()
        .ok_or_else(|| format!("response {status} documents no content"))?;
    let ct = ans.header("content-type").unwrap_or_default();
    let media = content.get(ct).ok_or_else(|| {
        format!(
            "answered content-type {ct:?}, documented {:?}",
            content.keys().collect::<Vec<_>>()
        )
    })?;
    let errs = validate(doc, &media["schema"], &ans.json, "body");
    if !errs.is_empty() {
        return Err(format!(
            "body {} does not match the documented {status} schema: {}",
            ans.text,
            errs.join("; ")
        ));
    }
    for (name, h) in resp["headers"].as_object().into_iter().flatten() {
        let h = resolve(doc, h);
        match ans.header(&name.to_ascii_lowercase()) {
            None if h["required"] == true => {
                return Err(format!("documented header {name} is missing"));
            }
            None => {}
            Some(raw) => {
                let value = if h["schema"]["type"] == "integer" {
                    raw.parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("header {name}: {raw:?} is not an integer"))?
                } else {
                    json!(raw)
                };
                let errs = validate(doc, &h["schema"], &value, name);
                if !errs.is_empty() {
                    return Err(errs.join("; "));
                }
            }
        }
    }
    if let Some(word) = leaks_internals(&ans.text) {
        return Err(format!("body leaks internals ({word}): {}", ans.text));
    }
    Ok(())
}

// ------------------------------------------------------------------------- request examples

const EXAMPLE_KEYS: [&str; 9] = [
    "summary",
    "description",
    "value",
    "x-expected-status",
    "x-content-type",
    "x-headers",
    "x-send-first",
    "x-scenario",
    "x-expected-body",
];

#[derive(Debug)]
struct Example<'a> {
    id: String,
    path: String,
    form: Form,
    op: &'a Value,
    media: String,
    ex: &'a Value,
}

fn request_examples(doc: &Value) -> Vec<Example<'_>> {
    let mut out = Vec::new();
    for (path, form, op) in operations(doc) {
        let body = resolve(doc, &op["requestBody"]);
        for (media, m) in body["content"].as_object().expect("requestBody.content") {
            let m = resolve(doc, m);
            assert!(
                m.get("example").is_none(),
                "{path} {media}: use named `examples` (with x-expected-status), not `example`"
            );
            for (name, ex) in m["examples"].as_object().into_iter().flatten() {
                let ex = resolve(doc, ex);
                out.push(Example {
                    id: format!("{path} {media} #{name}"),
                    path: path.clone(),
                    form,
                    op,
                    media: media.clone(),
                    ex,
                });
            }
        }
    }
    out
}

/// The body bytes for `value` as sent under `media`.
fn encode(media: &str, value: &Value, encoding: &Value) -> Result<String, String> {
    match media.split(';').next().unwrap_or_default().trim() {
        "application/json" => Ok(value.to_string()),
        "text/plain" => value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "a text/plain example must be a string (the body as sent)".into()),
        "application/x-www-form-urlencoded" => {
            let obj = value
                .as_object()
                .ok_or("a form example must be an object")?;
            let mut pairs = Vec::new();
            for (k, v) in obj {
                let text = match v {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Object(_) | Value::Array(_) => {
                        if encoding[k]["contentType"] != "application/json" {
                            return Err(format!(
                                "form field {k} is structured but its encoding does not say application/json"
                            ));
                        }
                        v.to_string()
                    }
                    other => other.to_string(),
                };
                pairs.push((k.clone(), text));
            }
            serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())
        }
        other => Err(format!("no encoder for documented media type {other}")),
    }
}

fn event_for(ex: &Example<'_>, value: &Value, encoding: &Value, n: usize) -> Result<Value, String> {
    let ct = ex.ex["x-content-type"]
        .as_str()
        .unwrap_or(&ex.media)
        .to_owned();
    let body = encode(&ex.media, value, encoding)?;
    let mut headers: Vec<(String, String)> = vec![("content-type".into(), ct)];
    for (k, v) in ex.ex["x-headers"].as_object().into_iter().flatten() {
        headers.push((
            k.clone(),
            v.as_str()
                .ok_or("x-headers values must be strings")?
                .to_owned(),
        ));
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // API Gateway hands form posts over base64-encoded.
    let body = if ex.media == "application/x-www-form-urlencoded" {
        EventBody::Base64(body.into_bytes())
    } else {
        EventBody::Text(body)
    };
    Ok(apigw_event(
        &ex.path,
        &headers,
        &body,
        &format!("openapi-example-{n}"),
    ))
}

async fn run_example(doc: &Value, ex: &Example<'_>, n: usize) -> Result<Answer, String> {
    for k in ex.ex.as_object().ok_or("example is not an object")?.keys() {
        if !EXAMPLE_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown example key {k} (known: {EXAMPLE_KEYS:?})"));
        }
    }
    let media = resolve(
        doc,
        &resolve(doc, &ex.op["requestBody"])["content"][&ex.media],
    );
    let encoding = &media["encoding"];
    let value = ex.ex.get("value").ok_or("example has no value")?;
    let ev = event_for(ex, value, encoding, n)?;
    match ex.ex["x-scenario"].as_str() {
        None => {
            let h = Harness::new();
            if let Some(first) = ex.ex.get("x-send-first") {
                let first = h
                    .call(ex.form, request(&event_for(ex, first, encoding, n)?))
                    .await;
                if !first.status.is_success() {
                    return Err(format!("x-send-first got {} {}", first.status, first.text));
                }
            }
            Ok(h.call(ex.form, request(&ev)).await)
        }
        Some("storage-unavailable") => Ok(Harness::wrapping(|_| std::sync::Arc::new(DownStore))
            .call(ex.form, request(&ev))
            .await),
        Some("in-flight") => {
            let (h, gate) = gated_harness();
            let (first, second) = twice_in_flight(&h, &gate, ex.form, &ev).await;
            if !first.status.is_success() {
                return Err(format!(
                    "the request in flight got {} {}",
                    first.status, first.text
                ));
            }
            Ok(second)
        }
        Some(other) => Err(format!("unknown x-scenario {other}")),
    }
}

#[test]
fn the_document_is_openapi_3_1_describing_both_endpoints() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(
        version.starts_with("3.1."),
        "openapi {version}, expected 3.1.x"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let ops = operations(&doc);
    let paths: BTreeSet<&str> = ops.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/api/landing/proftest", "/api/landing/submit"])
    );
    for (path, _, op) in &ops {
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&doc, p))
            .collect();
        let key = params
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path}: Idempotency-Key not documented"));
        assert_eq!(key["in"], "header");
        assert_eq!(key["schema"]["maxLength"], 255);
        let body = resolve(&doc, &op["requestBody"]);
        let media: BTreeSet<&str> = body["content"]
            .as_object()
            .expect("content")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            media,
            BTreeSet::from([
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain"
            ]),
            "{path}"
        );
        let statuses: BTreeSet<&str> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            statuses,
            BTreeSet::from([
                "200", "201", "400", "403", "409", "413", "415", "422", "503"
            ]),
            "{path}"
        );
        let conflict = resolve(&doc, &op["responses"]["409"]);
        assert_eq!(
            resolve(&doc, &conflict["headers"]["Retry-After"])["required"],
            true,
            "{path}: 409 must document Retry-After"
        );
    }
}

#[tokio::test]
async fn every_request_example_gets_its_documented_answer() {
    let doc = document();
    let examples = request_examples(&doc);
    assert!(
        examples.len() >= 20,
        "only {} request examples",
        examples.len()
    );
    let mut failures = Vec::new();
    for (n, ex) in examples.iter().enumerate() {
        let result = async {
            let want = ex.ex["x-expected-status"]
                .as_u64()
                .ok_or("no x-expected-status")?;
            let documented = ex.op["responses"].get(want.to_string()).is_some();
            if !documented {
                return Err(format!(
                    "x-expected-status {want} is not a documented response of the operation"
                ));
            }
            let ans = run_example(&doc, ex, n).await?;
            if u64::from(ans.status.as_u16()) != want {
                return Err(format!(
                    "documented {want}, handler answered {} {}",
                    ans.status.as_u16(),
                    ans.text
                ));
            }
            check_documented(&doc, ex.op, &ans)?;
            if let Some(body) = ex.ex.get("x-expected-body") {
                for (k, v) in body
                    .as_object()
                    .ok_or("x-expected-body must be an object")?
                {
                    if ans.json.get(k) != Some(v) {
                        return Err(format!(
                            "x-expected-body.{k} is {v}, the answer has {}",
                            ans.json.get(k).unwrap_or(&Value::Null)
                        ));
                    }
                }
            }
            Ok::<(), String>(())
        }
        .await;
        if let Err(e) = result {
            failures.push(format!("{}: {e}", ex.id));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} request examples disagree with the handler:\n  {}",
        failures.len(),
        examples.len(),
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn every_fixture_answer_is_documented() {
    let doc = document();
    let ops: BTreeMap<String, &Value> = operations(&doc)
        .into_iter()
        .map(|(p, _, op)| (p, op))
        .collect();
    let mut failures = Vec::new();
    let fixtures = http_fixtures();
    for (rel, ev) in &fixtures {
        let path = ev["rawPath"].as_str().unwrap_or_default();
        let (Some(op), Some(form)) = (ops.get(path), form_for_path(path)) else {
            failures.push(format!("{rel}: {path} is not a documented endpoint"));
            continue;
        };
        let ans = Harness::new().call(form, request(ev)).await;
        if let Err(e) = check_documented(&doc, op, &ans) {
            failures.push(format!("{rel}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixture answers are not as documented:\n  {}",
        failures.len(),
        fixtures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn every_documented_status_is_reachable_and_every_response_example_fits_its_schema() {
    let doc = document();
    let expected = load_expected();
    let examples = request_examples(&doc);
    for (path, _, op) in operations(&doc) {
        let route = path.rsplit('/').next().unwrap_or_default();
        let mut reached: BTreeSet<String> = examples
            .iter()
            .filter(|e| e.path == path)
            .filter_map(|e| e.ex["x-expected-status"].as_u64())
            .map(|s| s.to_string())
            .collect();
        reached.extend(
            expected
                .iter()
                .filter(|(rel, _)| rel.starts_with(&format!("{route}/")))
                .filter_map(|(_, w)| w["status"].as_u64())
                .map(|s| s.to_string()),
        );
        for (status, resp) in op["responses"].as_object().expect("responses") {
            assert!(
                reached.contains(status),
                "{path}: documented {status} is produced by no request example and no events/{route}/ fixture"
            );
            let resp = resolve(&doc, resp);
            let media = &resp["content"]["application/json"];
            let examples = media["examples"]
                .as_object()
                .unwrap_or_else(|| panic!("{path} {status}: no response examples"));
            for (name, ex) in examples {
                let errs = validate(&doc, &media["schema"], &resolve(&doc, ex)["value"], "value");
                assert!(
                    errs.is_empty(),
                    "{path} {status} example {name}: {}",
                    errs.join("; ")
                );
            }
        }
    }
}

#[test]
fn the_schema_check_itself_rejects_what_it_should() {
    let doc = document();
    let accepted = json!({"$ref": "#/components/schemas/LeadAccepted"});
    let id = "01936b4e-7c1a-7d3e-9f00-5a1b2c3d4e5f";
    assert!(
        validate(
            &doc,
            &accepted,
            &json!({"leadId": id, "sourceCampaign": "proftest"}),
            "b"
        )
        .is_empty()
    );
    assert!(
        !validate(&doc, &accepted, &json!({"leadId": id}), "b").is_empty(),
        "missing required"
    );
    assert!(
        !validate(
            &doc,
            &accepted,
            &json!({"leadId": "x", "sourceCampaign": "proftest"}),
            "b"
        )
        .is_empty(),
        "not a uuid"
    );
    assert!(
        !validate(
            &doc,
            &accepted,
            &json!({"leadId": id, "sourceCampaign": "proftest", "extra": 1}),
            "b"
        )
        .is_empty(),
        "extra property"
    );
    let unprocessable = resolve(&doc, &doc["components"]["responses"]["UnprocessableEntity"]);
    let schema = &unprocessable["content"]["application/json"]["schema"];
    assert!(
        validate(
            &doc,
            schema,
            &json!({"error": "validation_failed", "fields": {"name": "is required"}}),
            "b"
        )
        .is_empty()
    );
    assert!(
        !validate(
            &doc,
            schema,
            &json!({"error": "validation_failed", "fields": {}}),
            "b"
        )
        .is_empty(),
        "no fields"
    );
    assert!(
        !validate(
            &doc,
            schema,
            &json!({"error": "oops", "fields": {"name": "x"}}),
            "b"
        )
        .is_empty(),
        "unknown error code"
    );
}

// ------------------------------------------------------------------------- unsubscribe

/// The unsubscribe route, through `landing_http::handle_unsubscribe` over SQLite: every
/// documented status of GET and POST is reached, each JSON answer fits its schema, each page is
/// HTML, and nothing undocumented is answered.
#[tokio::test]
async fn the_unsubscribe_route_answers_as_documented() {
    use landing_core::ports::{LeadStore, SuppressionList, SystemClock};
    use landing_core::unsubscribe::{Unsubscribe, UnsubscribeKey};
    use std::sync::Arc;

    let doc = document();
    let item = &doc["paths"][landing_http::UNSUBSCRIBE_PATH];
    let methods: BTreeSet<&str> = item
        .as_object()
        .expect("the unsubscribe path is documented")
        .keys()
        .map(String::as_str)
        .filter(|k| matches!(*k, "get" | "post" | "put" | "delete" | "patch"))
        .collect();
    assert_eq!(methods, BTreeSet::from(["get", "post"]));

    let h = Harness::new();
    let key = UnsubscribeKey::new(secrecy::SecretString::from("k".repeat(32))).unwrap();
    let svc = Unsubscribe::new(
        h.store.clone(),
        h.store.clone(),
        key.clone(),
        Arc::new(SystemClock),
    );
    let created = h.call(Form::ProfTest, request(&apigw_event(
        "/api/landing/proftest",
        &[("content-type", "application/json")],
        &EventBody::Text(json!({"name": "Айгерим", "phone": "+77011234567", "email": "aigerim@example.kz"}).to_string()),
        "unsubscribe-1",
    ))).await;
    let lead = created.lead_id().expect("a lead");
    let phone_only = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                "/api/landing/proftest",
                &[("content-type", "application/json")],
                &EventBody::Text(json!({"name": "Ерлан", "phone": "+77011234568"}).to_string()),
                "unsubscribe-2",
            )),
        )
        .await
        .lead_id()
        .expect("a lead");
    // A store that is down: the 503.
    let down_store: Arc<dyn LeadStore> = Arc::new(DownStore);
    let down = Unsubscribe::new(
        down_store,
        h.store.clone(),
        key.clone(),
        Arc::new(SystemClock),
    );

    let mut reached: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let cases: Vec<(&str, &str, Option<String>, &Unsubscribe)> = vec![
        ("get", "valid", Some(key.token(lead)), &svc),
        ("get", "bad", Some("00".repeat(32)), &svc),
        ("get", "missing", None, &svc),
        ("post", "valid", Some(key.token(lead)), &svc),
        ("post", "again", Some(key.token(lead)), &svc),
        (
            "post",
            "bad",
            Some(format!("{}ff", &key.token(lead)[..62])),
            &svc,
        ),
        ("post", "no address", Some(key.token(phone_only)), &svc),
        ("post", "store down", Some(key.token(LeadId::new())), &down),
    ];
    for (method, what, token, svc) in cases {
        for json in [true, false] {
            let ans = call_unsubscribe(svc, &method.to_uppercase(), token.clone(), json).await;
            let op = &item[method];
            if json {
                check_documented(&doc, op, &ans)
                    .unwrap_or_else(|e| panic!("{method} {what} (JSON): {e}"));
            } else {
                assert_eq!(
                    ans.header("content-type"),
                    Some("text/html; charset=utf-8"),
                    "{method} {what}"
                );
                assert!(
                    ans.text.starts_with("<!doctype html>") && ans.text.contains("lang=\"ru\""),
                    "{method} {what}: {}",
                    ans.text
                );
                assert!(
                    op["responses"][ans.status.as_str()].is_object(),
                    "{method} {what}: {} undocumented",
                    ans.status
                );
                assert_eq!(ans.header("cache-control"), Some("no-store"));
                assert_eq!(ans.header("referrer-policy"), Some("no-referrer"));
            }
            reached
                .entry(method)
                .or_default()
                .insert(ans.status.as_str().to_owned());
        }
    }
    for method in ["get", "post"] {
        let documented: BTreeSet<String> = item[method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            reached[method], documented,
            "{method}: reached vs documented"
        );
    }
    let email = landing_core::domain::Email::parse("aigerim@example.kz").unwrap();
    assert!(
        h.store.address_suppression(&email).await.unwrap().is_some(),
        "the POST listed the address"
    );
    let other = call_unsubscribe(&svc, "PUT", Some(key.token(lead)), true).await;
    assert_eq!(other.status, 405);
    assert_eq!(other.header("allow"), Some("GET, POST"));
}

async fn call_unsubscribe(
    svc: &landing_core::unsubscribe::Unsubscribe,
    method: &str,
    token: Option<String>,
    json: bool,
) -> Answer {
    let uri = match token {
        Some(t) => format!("{}?token={t}", landing_http::UNSUBSCRIBE_PATH),
        None => landing_http::UNSUBSCRIBE_PATH.to_owned(),
    };
    let mut b = http::Request::builder().method(method).uri(uri);
    if json {
        b = b.header("accept", "application/json");
    }
    let req = b.body(()).unwrap();
    let resp = landing_http::handle_unsubscribe(svc, &req).await;
    Answer::from(resp.map(lambda_http::Body::Text))
}
