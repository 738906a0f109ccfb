//! Every API Gateway request event under `events/` runs through the real handler
//! (`landing_http::handle`, the function behind both Lambdas and landing-local, as the Lambdas
//! call it) on a fresh SQLite store, and must get the answer `events/expected.json` records for it — and a `2xx`
//! must have stored exactly what it says, a `4xx` nothing at all. Plus the `Idempotency-Key`
//! contract and hostile input (docs/architecture.md §3, §7 invariants 1, 2 and 7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{
    Answer, DownStore, EventBody, Harness, NOTIFY_DELAY, PROFTEST_PATH, SUBMIT_PATH, apigw_event,
    events_dir, form_for_path, gated_harness, http_fixtures, leaks_internals, load_expected,
    request, twice_in_flight,
};
use http::StatusCode;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use landing_core::domain::{Channel, Contact, Form, NotificationStatus, SourceCampaign};
use serde_json::{Value, json};

/// A check that failed, collected so one run reports every broken fixture at once.
type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The event is a real HTTP API payload 2.0 request for one of our two routes.
fn check_shape(ev: &Value) -> Result<Form, String> {
    ensure!(
        ev["version"] == "2.0",
        "version must be \"2.0\" (payload format 2.0)"
    );
    let raw_path = ev["rawPath"].as_str().ok_or("rawPath missing")?;
    let form = form_for_path(raw_path)
        .ok_or_else(|| format!("rawPath {raw_path} is not one of our routes"))?;
    ensure!(
        ev["routeKey"] == format!("POST {raw_path}"),
        "routeKey must be \"POST {raw_path}\""
    );
    let ctx = &ev["requestContext"];
    ensure!(
        ctx["routeKey"] == ev["routeKey"],
        "requestContext.routeKey must equal routeKey"
    );
    ensure!(
        ctx["http"]["method"] == "POST",
        "requestContext.http.method must be POST"
    );
    ensure!(
        ctx["http"]["path"] == raw_path,
        "requestContext.http.path must equal rawPath"
    );
    ensure!(
        ctx["stage"] == "$default",
        "requestContext.stage must be $default"
    );
    ensure!(
        ctx["requestId"].as_str().is_some_and(|s| !s.is_empty()),
        "requestContext.requestId missing"
    );
    ensure!(
        ctx["accountId"].is_string() && ctx["apiId"].is_string(),
        "requestContext.accountId/apiId missing"
    );
    ensure!(
        ctx["timeEpoch"].is_u64(),
        "requestContext.timeEpoch missing"
    );
    ensure!(
        ev["isBase64Encoded"].is_boolean(),
        "isBase64Encoded missing"
    );
    let headers = ev["headers"].as_object().ok_or("headers missing")?;
    for (k, v) in headers {
        ensure!(
            *k == k.to_ascii_lowercase(),
            "header {k} must be lower-cased, as API Gateway sends it"
        );
        ensure!(
            v.is_string(),
            "header {k} must be a string (payload 2.0 joins repeated headers with commas)"
        );
    }
    let body_len = match (&ev["body"], ev["isBase64Encoded"].as_bool()) {
        (Value::Null, _) => 0,
        (Value::String(s), Some(false)) => s.len(),
        (Value::String(s), Some(true)) => {
            s.len() / 4 * 3 - s.chars().rev().take_while(|c| *c == '=').count()
        }
        _ => return Err("body must be a string".into()),
    };
    if let Some(len) = headers.get("content-length") {
        ensure!(
            len.as_str() == Some(body_len.to_string().as_str()),
            "content-length {len} does not match the body's {body_len} bytes"
        );
    }
    Ok(form)
}

/// Every key of `want` is in `got` with exactly that value.
fn check_subset(want: &Value, got: &Value) -> Check {
    let want = want.as_object().ok_or("expected body must be an object")?;
    for (k, v) in want {
        ensure!(
            got.get(k) == Some(v),
            "body.{k}: expected {v}, got {}",
            got.get(k).unwrap_or(&Value::Null)
        );
    }
    Ok(())
}

fn check_fields(want: &Value, got: &Value) -> Check {
    let got = got.get("fields").ok_or("body has no \"fields\"")?;
    match want {
        // Only the names.
        Value::Array(names) => {
            let want: BTreeSet<&str> = names.iter().filter_map(Value::as_str).collect();
            let got: BTreeSet<&str> = got
                .as_object()
                .ok_or("fields is not an object")?
                .keys()
                .map(String::as_str)
                .collect();
            ensure!(want == got, "fields: expected {want:?}, got {got:?}");
        }
        // Names and messages.
        Value::Object(_) => ensure!(want == got, "fields: expected {want}, got {got}"),
        _ => return Err("expected fields must be a list or an object".into()),
    }
    Ok(())
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// A 2xx stored the lead it announced, with its notifications.
async fn check_stored(h: &Harness, want: &Value, ans: &Answer, idempotency_key: bool) -> Check {
    let body = ans
        .json
        .as_object()
        .ok_or("2xx body is not a JSON object")?;
    let keys: BTreeSet<&str> = body.keys().map(String::as_str).collect();
    ensure!(
        keys == BTreeSet::from(["leadId", "sourceCampaign"]),
        "2xx body must be exactly {{leadId, sourceCampaign}}, got {keys:?}"
    );
    let id = ans.lead_id().ok_or("leadId is not a UUID")?;
    ensure!(id.0.get_version_num() == 7, "leadId must be a UUIDv7");
    let campaign = body["sourceCampaign"].as_str().unwrap_or_default();
    ensure!(
        SourceCampaign::from_stored(campaign).is_ok(),
        "sourceCampaign {campaign} is not form[_slug]"
    );

    let lead = h
        .lead(id)
        .await
        .ok_or("the 2xx announced a lead that is not stored")?;
    ensure!(
        lead.form.as_str() == want["form"],
        "stored form {} != {}",
        lead.form.as_str(),
        want["form"]
    );
    ensure!(
        lead.source_campaign.as_str() == want["sourceCampaign"],
        "stored source_campaign {}",
        lead.source_campaign
    );
    ensure!(
        lead.source_campaign.as_str() == campaign,
        "stored source_campaign differs from the answer's"
    );
    ensure!(
        lead.payment_method.map(|p| p.as_str()) == opt_str(&want["paymentMethod"]),
        "stored payment_method {:?}, expected {}",
        lead.payment_method,
        want["paymentMethod"]
    );
    ensure!(
        lead.phone.stored() == opt_str(&want["phone"]),
        "stored phone {:?}, expected {}",
        lead.phone.stored(),
        want["phone"]
    );
    ensure!(
        lead.email.stored() == opt_str(&want["email"]),
        "stored email {:?}, expected {}",
        lead.email.stored(),
        want["email"]
    );
    if let Some(name) = want.get("name") {
        ensure!(
            lead.name.as_str() == *name,
            "stored name {:?}, expected {name}",
            lead.name
        );
    }
    let warnings: Vec<Value> = lead.warnings.iter().map(|w| json!(w)).collect();
    ensure!(
        json!(warnings) == want["warnings"],
        "stored warnings {:?}, expected {}",
        lead.warnings,
        want["warnings"]
    );
    if let Some(utm) = want.get("utm") {
        let got = serde_json::to_value(&lead.utm).map_err(|e| e.to_string())?;
        ensure!(got == *utm, "stored utm {got}, expected {utm}");
    }
    if let Some(r) = want.get("referrer") {
        ensure!(
            lead.referrer.as_deref() == r.as_str(),
            "stored referrer {:?}, expected {r}",
            lead.referrer
        );
    }
    if let Some(u) = want.get("pageUrl") {
        ensure!(
            lead.page_url.as_deref() == u.as_str(),
            "stored page_url {:?}, expected {u}",
            lead.page_url
        );
    }
    if let Some(m) = want.get("metadata") {
        ensure!(
            lead.metadata
                .as_ref()
                .map(|m| Value::Object(m.clone()))
                .as_ref()
                == Some(m),
            "stored metadata {:?}, expected {m}",
            lead.metadata
        );
    }
    // `"quarantine": "honeypot"`: screening held it back; otherwise an ordinary lead.
    let quarantined = want.get("quarantine").and_then(Value::as_str);
    ensure!(
        lead.quarantine.map(|q| q.as_str()) == quarantined,
        "stored quarantine {:?}, expected {quarantined:?}",
        lead.quarantine
    );
    let (want_crm, want_row) = match quarantined {
        None => ("pending", NotificationStatus::Pending),
        Some(_) => ("quarantined", NotificationStatus::Suppressed),
    };
    ensure!(
        lead.crm.status.as_str() == want_crm,
        "crm_status {}, expected {want_crm}",
        lead.crm.status.as_str()
    );
    ensure!(
        lead.client_ip_hash.as_ref().is_some_and(|h| h.len() == 32),
        "the client address (requestContext.http.sourceIp) is stored as its keyed hash"
    );

    // One notification per valid channel, due NOTIFY_DELAY after the lead.
    let rows = h.notifications(id).await;
    let channels: BTreeSet<&str> = rows.iter().map(|n| n.channel().as_str()).collect();
    let want_channels: BTreeSet<&str> = want["channels"]
        .as_array()
        .ok_or("lead.channels missing")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        channels == want_channels,
        "notification channels {channels:?}, expected {want_channels:?}"
    );
    ensure!(
        rows.len() == want_channels.len(),
        "{} notification rows for {} channels",
        rows.len(),
        want_channels.len()
    );
    for n in &rows {
        let recipient = match n.channel() {
            Channel::Sms => lead.phone.valid().map(|p| p.as_str().to_owned()),
            Channel::Email => lead.email.valid().map(|e| e.as_str().to_owned()),
        };
        ensure!(
            Some(n.recipient.as_str()) == recipient.as_deref(),
            "{} notification goes to the wrong recipient",
            n.channel().as_str()
        );
        ensure!(
            n.status == want_row && n.attempts == 0,
            "{} notification is {} with {} attempts, expected {} and none",
            n.channel().as_str(),
            n.status.as_str(),
            n.attempts,
            want_row.as_str()
        );
        ensure!(
            n.source_campaign == lead.source_campaign,
            "notification source_campaign differs from the lead's"
        );
        ensure!(
            n.send_at == landing_core::time::add(lead.created_at, NOTIFY_DELAY),
            "notification send_at is not created_at + delay"
        );
    }
    // Nothing else was written.
    let counts = h.counts();
    let want_counts = [
        ("landing_leads", 1),
        ("scheduled_notifications", rows.len() as i64),
        ("unified_lead_tracking", lead.person_keys().len() as i64),
        ("idempotency", i64::from(idempotency_key)),
    ];
    ensure!(
        counts == want_counts,
        "rows written {counts:?}, expected {want_counts:?}"
    );
    Ok(())
}

async fn check_fixture(rel: &str, ev: &Value, want: &Value) -> Check {
    let form = check_shape(ev)?;
    let ensure_dir = match form {
        Form::ProfTest => "proftest/",
        Form::ExpressCourse => "submit/",
    };
    ensure!(
        rel.starts_with(ensure_dir),
        "a {} event belongs under events/{ensure_dir}",
        ev["rawPath"]
    );

    let req = lambda_http::request::from_str(&ev.to_string())
        .map_err(|e| format!("lambda_http cannot parse it: {e}"))?;
    ensure!(
        matches!(
            req.request_context_ref(),
            Some(RequestContext::ApiGatewayV2(_))
        ),
        "lambda_http did not read it as an HTTP API v2 event"
    );
    ensure!(
        req.method() == http::Method::POST,
        "lambda_http read method {}",
        req.method()
    );
    // The key may also come in the body (a beacon cannot set headers).
    let idempotency_key =
        req.headers().contains_key("idempotency-key") || body_has_key(ev).unwrap_or(false);

    let h = Harness::new();
    let ans = h.call(form, req).await;

    let want_status = want["status"].as_u64().ok_or("expectation has no status")?;
    ensure!(
        u64::from(ans.status.as_u16()) == want_status,
        "status {} (expected {want_status}), body {}",
        ans.status.as_u16(),
        ans.text
    );
    ensure!(
        !ans.status.is_server_error(),
        "bad input must never get a 5xx"
    );
    ensure!(
        ans.header("content-type") == Some("application/json"),
        "content-type {:?}",
        ans.header("content-type")
    );
    ensure!(
        ans.json.is_object(),
        "body is not a JSON object: {}",
        ans.text
    );
    // API Gateway's request id is the correlation id, so the access log and ours line up.
    let request_id = ev["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        ans.header("x-correlation-id") == Some(request_id),
        "x-correlation-id {:?} is not the API Gateway request id {request_id}",
        ans.header("x-correlation-id")
    );
    if let Some(word) = leaks_internals(&ans.text) {
        return Err(format!("body leaks internals ({word}): {}", ans.text));
    }
    if let Some(body) = want.get("body") {
        check_subset(body, &ans.json)?;
    }
    if let Some(fields) = want.get("fields") {
        check_fields(fields, &ans.json)?;
    }
    if ans.status.is_success() {
        check_stored(
            &h,
            want.get("lead").ok_or("a 2xx expectation needs \"lead\"")?,
            &ans,
            idempotency_key,
        )
        .await?;
    } else {
        ensure!(
            want.get("lead").is_none(),
            "expectation has \"lead\" but the answer is not 2xx"
        );
        ensure!(
            ans.json["error"].is_string(),
            "an error answer must say \"error\""
        );
        if ans.status == StatusCode::UNPROCESSABLE_ENTITY {
            ensure!(
                want.get("fields").is_some(),
                "a 422 expectation must list the fields"
            );
        }
        let counts = h.counts();
        ensure!(
            counts.iter().all(|(_, n)| *n == 0),
            "a refused request wrote rows: {counts:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn every_event_fixture_gets_its_expected_answer() {
    let expected = load_expected();
    let fixtures = http_fixtures();
    assert!(
        fixtures.len() >= 20,
        "found only {} fixtures under {}",
        fixtures.len(),
        events_dir().display()
    );

    let mut failures = Vec::new();
    let names: BTreeSet<&str> = fixtures.iter().map(|(rel, _)| rel.as_str()).collect();
    for stale in expected.keys().filter(|k| !names.contains(k.as_str())) {
        failures.push(format!(
            "{stale}: listed in expected.json but there is no such event"
        ));
    }
    for (rel, ev) in &fixtures {
        let Some(want) = expected.get(rel) else {
            failures.push(format!("{rel}: no expectation in events/expected.json"));
            continue;
        };
        if let Err(e) = check_fixture(rel, ev, want).await {
            failures.push(format!("{rel}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n  {}",
        failures.len(),
        fixtures.len(),
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn fixtures_cover_every_answer_and_both_routes() {
    let expected = load_expected();
    let mut seen: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for (rel, want) in &expected {
        let route = rel.split('/').next().unwrap_or_default();
        seen.entry(route)
            .or_default()
            .insert(want["status"].as_u64().unwrap_or_default());
    }
    for route in ["proftest", "submit"] {
        let got = seen.get(route).cloned().unwrap_or_default();
        for status in [201, 400, 413, 415, 422] {
            assert!(
                got.contains(&status),
                "no events/{route}/ fixture expects {status}"
            );
        }
    }
    // Every payment method, spelled the ways pages send it.
    let methods: BTreeSet<&str> = expected
        .values()
        .filter_map(|w| w["lead"]["paymentMethod"].as_str())
        .collect();
    assert_eq!(methods, BTreeSet::from(["halyk", "kaspi", "robokassa"]));
}

fn fixture(rel: &str) -> Value {
    let path = events_dir().join(rel);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {rel}: {e}")),
    )
    .expect("fixture is JSON")
}

fn with_body(ev: &Value, body: &Value) -> Value {
    let mut ev = ev.clone();
    let text = body.to_string();
    ev["headers"]["content-length"] = json!(text.len().to_string());
    ev["body"] = json!(text);
    ev["isBase64Encoded"] = json!(false);
    ev
}

fn body_of(ev: &Value) -> Value {
    serde_json::from_str(ev["body"].as_str().expect("text body")).expect("JSON body")
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_answer() {
    let h = Harness::new();
    let ev = fixture("proftest/valid-with-idempotency-key.json");
    let first = h.call(Form::ProfTest, request(&ev)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let after_first = h.counts();

    let second = h.call(Form::ProfTest, request(&ev)).await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "a replay answers 200: {}",
        second.text
    );
    assert_eq!(
        second.text, first.text,
        "a replay answers byte for byte the same body"
    );
    assert_eq!(second.header("idempotent-replayed"), Some("true"));

    // The same JSON with keys reordered and other whitespace is the same body.
    let mut reordered = String::from("{\n");
    let map = body_of(&ev);
    let entries: Vec<String> = map
        .as_object()
        .expect("object")
        .iter()
        .rev()
        .map(|(k, v)| format!("  {}: {v}", json!(k)))
        .collect();
    reordered.push_str(&entries.join(",\n"));
    reordered.push_str("\n}");
    let mut ev3 = ev.clone();
    ev3["headers"]["content-length"] = json!(reordered.len().to_string());
    ev3["body"] = json!(reordered);
    let third = h.call(Form::ProfTest, request(&ev3)).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    assert_eq!(third.text, first.text);

    assert_eq!(h.counts(), after_first, "a replay must store nothing new");
    assert_eq!(h.count("landing_leads"), 1);
    assert_eq!(
        h.count("scheduled_notifications"),
        1,
        "one SMS for one phone, not one per retry"
    );
    let id = first.lead_id().expect("leadId");
    assert!(h.lead(id).await.is_some());
}

/// Whether the event's (text) body carries a usable `idempotencyKey`/`idempotency_key`.
fn body_has_key(ev: &Value) -> Option<bool> {
    let body: Value = serde_json::from_str(ev["body"].as_str()?).ok()?;
    Some(
        ["idempotencyKey", "idempotency_key"]
            .iter()
            .any(|k| body[*k].as_str().is_some_and(|s| !s.trim().is_empty())),
    )
}

#[tokio::test]
async fn a_beacon_with_the_key_only_in_its_body_replays_the_fetch_that_sent_it_as_a_header() {
    let h = Harness::new();
    let key = "7a3f1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b";
    let body = json!({"name": "Beacon", "phone": "+77051110041", "idempotencyKey": key});
    // What lead-client.js sends: the key as the header and in the body.
    let fetch = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", key),
                ],
                &EventBody::Text(body.to_string()),
                "beacon-1",
            )),
        )
        .await;
    assert_eq!(fetch.status, StatusCode::CREATED, "{}", fetch.text);
    // What navigator.sendBeacon sends when the page closes before the answer arrived.
    let beacon = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[("content-type", "text/plain;charset=UTF-8")],
                &EventBody::Text(body.to_string()),
                "beacon-2",
            )),
        )
        .await;
    assert_eq!(beacon.status, StatusCode::OK, "{}", beacon.text);
    assert_eq!(beacon.text, fetch.text);
    assert_eq!(beacon.header("idempotent-replayed"), Some("true"));
    // The key field is not part of the body's identity: the header alone names the same one.
    let mut without = body.clone();
    without
        .as_object_mut()
        .expect("object")
        .remove("idempotencyKey");
    let header_only = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", key),
                ],
                &EventBody::Text(without.to_string()),
                "beacon-3",
            )),
        )
        .await;
    assert_eq!(header_only.status, StatusCode::OK, "{}", header_only.text);
    assert_eq!(header_only.text, fetch.text);
    assert_eq!(h.count("landing_leads"), 1);
    assert_eq!(h.count("idempotency"), 1);
}

#[tokio::test]
async fn the_header_key_wins_over_a_different_body_key() {
    let h = Harness::new();
    let body = json!({"name": "Two Keys", "phone": "+77051110042", "idempotencyKey": "body-key-1"});
    let first = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "header-key-1"),
                ],
                &EventBody::Text(body.to_string()),
                "wins-1",
            )),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The record is under the header's key: the body's key alone names another submission…
    let by_body_key = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[("content-type", "application/json")],
                &EventBody::Text(body.to_string()),
                "wins-2",
            )),
        )
        .await;
    assert_eq!(
        by_body_key.status,
        StatusCode::CREATED,
        "{}",
        by_body_key.text
    );
    assert_ne!(by_body_key.json["leadId"], first.json["leadId"]);
    // …and the header's key, sent in the body, replays the first.
    let mut again = body.clone();
    again["idempotencyKey"] = json!("header-key-1");
    let replay = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &[("content-type", "text/plain;charset=UTF-8")],
                &EventBody::Text(again.to_string()),
                "wins-3",
            )),
        )
        .await;
    assert_eq!(
        (replay.status, replay.text.as_str()),
        (StatusCode::OK, first.text.as_str())
    );
    assert_eq!(h.count("landing_leads"), 2);
}

#[tokio::test]
async fn the_accepted_answer_offers_the_payment_link_of_the_chosen_method_only() {
    let mut h = Harness::new();
    let links = std::collections::BTreeMap::from([(
        landing_core::domain::PaymentMethod::Kaspi,
        "https://pay.kaspi.kz/pay/school".to_owned(),
    )]);
    h.svc = common::service_with_links(h.store.clone(), links);
    let post = |body: Value, key: &'static str| {
        request(&apigw_event(
            SUBMIT_PATH,
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            &EventBody::Text(body.to_string()),
            key,
        ))
    };
    let kaspi = json!({"name": "Pay", "phone": "+77051110051", "paymentMethod": "Kaspi"});
    let first = h
        .call(Form::ExpressCourse, post(kaspi.clone(), "pay-1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["paymentLink"], "https://pay.kaspi.kz/pay/school");
    let replay = h.call(Form::ExpressCourse, post(kaspi, "pay-1")).await;
    assert_eq!(
        (replay.status, replay.text.as_str()),
        (StatusCode::OK, first.text.as_str()),
        "a replay offers the link too"
    );
    // No link configured for halyk, and ProfTest has no payment: no field at all.
    let halyk = json!({"name": "Pay", "phone": "+77051110051", "paymentMethod": "halyk"});
    let ans = h.call(Form::ExpressCourse, post(halyk, "pay-2")).await;
    assert_eq!(ans.status, StatusCode::CREATED, "{}", ans.text);
    assert!(ans.json.get("paymentLink").is_none(), "{}", ans.text);
    let proftest = request(&apigw_event(
        PROFTEST_PATH,
        &[("content-type", "application/json")],
        &EventBody::Text(
            json!({"name": "Pay", "phone": "+77051110051", "paymentMethod": "kaspi"}).to_string(),
        ),
        "pay-3",
    ));
    let ans = h.call(Form::ProfTest, proftest).await;
    assert_eq!(ans.status, StatusCode::CREATED, "{}", ans.text);
    assert!(ans.json.get("paymentLink").is_none(), "{}", ans.text);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_422_naming_the_header() {
    let h = Harness::new();
    let ev = fixture("submit/valid-with-idempotency-key.json");
    let first = h.call(Form::ExpressCourse, request(&ev)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);

    let mut changed = body_of(&ev);
    changed["paymentMethod"] = json!("halyk");
    let second = h
        .call(Form::ExpressCourse, request(&with_body(&ev, &changed)))
        .await;
    assert_eq!(
        second.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        second.text
    );
    assert_eq!(second.json["error"], "idempotency_key_reused");
    assert!(
        second.json["fields"].get("Idempotency-Key").is_some(),
        "the 422 must name Idempotency-Key: {}",
        second.text
    );
    assert!(second.json["message"].is_string());

    assert_eq!(
        h.count("landing_leads"),
        1,
        "the second body must not be stored"
    );
    assert_eq!(h.count("scheduled_notifications"), 1);
    // The first answer still replays.
    let third = h.call(Form::ExpressCourse, request(&ev)).await;
    assert_eq!(
        (third.status, third.text.as_str()),
        (StatusCode::OK, first.text.as_str())
    );
}

#[tokio::test]
async fn a_key_is_scoped_to_its_endpoint() {
    let h = Harness::new();
    let key = [
        ("content-type", "application/json"),
        ("idempotency-key", "shared-key-1"),
    ];
    let proftest = json!({"name": "Scope", "phone": "+77051110001"});
    let submit = json!({"name": "Scope", "phone": "+77051110001", "paymentMethod": "kaspi"});
    let a = h
        .call(
            Form::ProfTest,
            request(&apigw_event(
                PROFTEST_PATH,
                &key,
                &EventBody::Text(proftest.to_string()),
                "scope-1",
            )),
        )
        .await;
    let b = h
        .call(
            Form::ExpressCourse,
            request(&apigw_event(
                SUBMIT_PATH,
                &key,
                &EventBody::Text(submit.to_string()),
                "scope-2",
            )),
        )
        .await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{} / {}",
        a.text,
        b.text
    );
    assert_ne!(a.json["leadId"], b.json["leadId"]);
    assert_eq!(h.count("landing_leads"), 2);
}

#[tokio::test]
async fn a_retry_while_the_first_is_in_flight_gets_409_with_retry_after() {
    let (h, gate) = gated_harness();
    let ev = fixture("proftest/valid-with-idempotency-key.json");
    let (first, second) = twice_in_flight(&h, &gate, Form::ProfTest, &ev).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(second.json["error"], "request_in_progress");
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(h.count("landing_leads"), 1);

    // Once the first has finished, the retry replays it.
    let third = h.call(Form::ProfTest, request(&ev)).await;
    assert_eq!(
        (third.status, third.text.as_str()),
        (StatusCode::OK, first.text.as_str())
    );
}

#[tokio::test]
async fn storage_down_is_503_retryable_without_internal_text() {
    let h = Harness::wrapping(|_| Arc::new(DownStore));
    for rel in [
        "proftest/valid-json.json",
        "submit/valid-kaspi.json",
        "submit/valid-with-idempotency-key.json",
    ] {
        let ev = fixture(rel);
        let form = form_for_path(ev["rawPath"].as_str().unwrap_or_default()).expect("route");
        let ans = h.call(form, request(&ev)).await;
        assert_eq!(
            ans.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{rel}: {}",
            ans.text
        );
        assert_eq!(ans.json["error"], "unavailable", "{rel}");
        assert!(
            ans.header("retry-after").is_some(),
            "{rel}: a 503 says when to retry"
        );
        assert_eq!(leaks_internals(&ans.text), None, "{rel}: {}", ans.text);
    }
    // Bad input is still bad input while storage is down: 4xx, not 503.
    let ans = h
        .call(Form::ProfTest, request(&fixture("proftest/bad-phone.json")))
        .await;
    assert_eq!(ans.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", ans.text);
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn hostile_strings() -> Vec<Value> {
    let mut all_controls: String = (0u32..0x20)
        .chain(0x7f..0xa0)
        .filter_map(char::from_u32)
        .collect();
    all_controls.push_str("\u{2028}\u{2029}\u{200b}\u{202e}\u{feff}");
    vec![
        json!(""),
        json!("   "),
        json!("\u{0}"),
        json!("a\u{0}b\u{7}c\u{1b}[2J"),
        json!(all_controls),
        json!("\r\nBcc: victim@example.kz"),
        json!("x@example.kz\r\nSubject: hi"),
        json!("\u{202e}gnp.exe"),
        json!("<script>alert(1)</script>"),
        json!("'; DROP TABLE landing_leads; --"),
        json!("{{ name }}{% raw %}"),
        json!("%00%0d%0a"),
        json!("e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}"),
        json!("😀".repeat(200)),
        json!("x".repeat(60_000)),
        json!("7".repeat(40_000)),
        json!("+".repeat(2_000)),
        json!("8 777 123 45 67".repeat(100)),
        json!("Ә".repeat(101)),
        json!("a".repeat(255) + "@" + &"b".repeat(255) + ".kz"),
        json!(1e308),
        json!(-0.0),
        json!(u64::MAX),
        json!(-9_223_372_036_854_775_808i64),
        json!(87_771_234_567.5),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!({"nested": {"deeper": ["x", "y", "z"]}}),
        (0..100).fold(json!(1), |v, _| json!([v])),
    ]
}

const FIELDS: [&str; 20] = [
    "name",
    "phone",
    "phoneNumber",
    "phone_number",
    "email",
    "paymentMethod",
    "payment_method",
    "slug",
    "metadata",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "utmSource",
    "referrer",
    "referer",
    "pageUrl",
    "page_url",
    "__proto__",
];

fn raw_bodies(noise: &mut Noise) -> Vec<(Option<&'static str>, EventBody)> {
    let text = |s: &str| EventBody::Text(s.to_owned());
    let mut out = vec![
        (Some("application/json"), text(&"[".repeat(100_000))),
        (
            Some("application/json"),
            text(&("[".repeat(20_000) + &"]".repeat(20_000))),
        ),
        (Some("application/json"), text(&"{\"a\":".repeat(10_000))),
        (
            Some("application/json"),
            text("\u{feff}{\"name\":\"Bom\",\"phone\":\"+77051110002\"}"),
        ),
        (
            Some("application/json"),
            text("{\"name\":\"Nan\",\"phone\":NaN}"),
        ),
        (
            Some("application/json"),
            text("{\"name\":\"\\ud800\",\"phone\":\"+77051110003\"}"),
        ),
        (
            Some("application/json"),
            text("{\"name\":\"Dup\",\"name\":\"Dup2\",\"phone\":\"+77051110004\"}"),
        ),
        (
            Some("application/json"),
            text("{\"name\":\"Trailing\",\"phone\":\"+77051110005\"} {}"),
        ),
        (Some("application/json"), text("null")),
        (Some("application/json"), text("\"just a string\"")),
        (Some("application/json"), text("1e99999")),
        (Some("application/json"), EventBody::Base64(vec![0; 1000])),
        (Some("application/json"), EventBody::None),
        (Some("text/plain"), text("name=Plain&phone=%2B77051110006")),
        (
            Some("application/x-www-form-urlencoded"),
            text("name=%00%0D%0A&phone=%ZZ&email=%"),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            text("&&&===&=&name"),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            text("name=%FF%FE&phone=%C0%AF"),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            text("metadata=%7B%22a%22%3A&name=M&phone=%2B77051110007"),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            text(&"a=b&".repeat(16_000)),
        ),
        (Some("application/x-www-form-urlencoded"), EventBody::None),
        (
            Some("application/json; charset="),
            text("{\"name\":\"Cs\",\"phone\":\"+77051110008\"}"),
        ),
        (
            Some("APPLICATION/JSON"),
            text("{\"name\":\"Upper\",\"phone\":\"+77051110009\"}"),
        ),
        (
            Some("application/vnd.api+json"),
            text("{\"name\":\"Vnd\",\"phone\":\"+77051110010\"}"),
        ),
        (
            Some(";;;"),
            text("{\"name\":\"Semi\",\"phone\":\"+77051110011\"}"),
        ),
        (
            Some("text/plain; charset=koi8-r"),
            EventBody::Base64(vec![0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]),
        ),
        (
            Some("application/octet-stream"),
            EventBody::Base64(vec![0xde, 0xad, 0xbe, 0xef]),
        ),
        (None, text("")),
        (None, text("\u{0}\u{0}\u{0}")),
    ];
    for i in 0..60 {
        let ct = [
            Some("application/json"),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ][i % 4];
        let len = [0, 1, 7, 64, 1000, 70_000][noise.below(6)];
        let bytes = noise.bytes(len);
        out.push((ct, EventBody::Base64(bytes)));
    }
    out
}

/// (what it is, route, headers, body).
type HostileCase = (String, &'static str, Vec<(&'static str, String)>, EventBody);

#[tokio::test]
async fn hostile_input_never_gets_a_5xx_or_internal_text() {
    let h = Harness::new();
    let mut noise = Noise(0x5eed_1a4d_1a4d_0001);
    let mut cases: Vec<HostileCase> = Vec::new();

    // Each field of an otherwise valid submission, set to each hostile value.
    let base = json!({"name": "Hostile", "phone": "+77051119999", "email": "hostile@example.kz", "paymentMethod": "kaspi"});
    for (fi, field) in FIELDS.iter().enumerate() {
        for (vi, value) in hostile_strings().into_iter().enumerate() {
            let mut body = base.clone();
            body[*field] = value.clone();
            let path = if (fi + vi) % 2 == 0 {
                PROFTEST_PATH
            } else {
                SUBMIT_PATH
            };
            cases.push((
                format!("{field}={}", truncate(&value.to_string())),
                path,
                vec![("content-type", "application/json".into())],
                EventBody::Text(body.to_string()),
            ));
            // The same through a form post, where every value is text.
            if let Some(s) = value.as_str() {
                let form: Vec<(&str, &str)> = vec![
                    ("name", "Hostile"),
                    ("phone", "+77051119998"),
                    ("payment_method", "halyk"),
                    (field, s),
                ];
                let encoded = serde_urlencoded::to_string(&form).expect("urlencode");
                cases.push((
                    format!("form {field}={}", truncate(s)),
                    path,
                    vec![("content-type", "application/x-www-form-urlencoded".into())],
                    EventBody::Base64(encoded.into_bytes()),
                ));
            }
        }
    }
    for (i, (ct, body)) in raw_bodies(&mut noise).into_iter().enumerate() {
        let path = if i % 2 == 0 {
            PROFTEST_PATH
        } else {
            SUBMIT_PATH
        };
        let headers = ct
            .map(|c| vec![("content-type", c.to_owned())])
            .unwrap_or_default();
        cases.push((format!("raw body #{i} ({ct:?})"), path, headers, body));
    }
    for key in [
        "\t",
        " ",
        "a b",
        "ключ",
        "\u{7f}",
        &"k".repeat(10_000),
        "k\u{0}k",
        "<>&\"'",
        "=",
        "-",
    ] {
        let headers = vec![
            ("content-type", "application/json".into()),
            ("idempotency-key", key.to_owned()),
        ];
        cases.push((
            format!("key {}", truncate(key)),
            PROFTEST_PATH,
            headers,
            EventBody::Text(base.to_string()),
        ));
    }
    for cid in [
        "\u{0}",
        &"c".repeat(1000),
        "a b",
        "../../etc/passwd",
        "ok-123",
    ] {
        let headers = vec![
            ("content-type", "application/json".into()),
            ("x-correlation-id", cid.to_owned()),
        ];
        cases.push((
            format!("correlation id {}", truncate(cid)),
            SUBMIT_PATH,
            headers,
            EventBody::Text(base.to_string()),
        ));
    }

    let mut failures = Vec::new();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (i, (what, path, headers, body)) in cases.iter().enumerate() {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ev = apigw_event(path, &headers, body, &format!("hostile{i}"));
        // Headers a real client cannot send (NUL, DEL) are refused by lambda_http's parser, as
        // API Gateway would refuse them before invoking us; nothing to test then.
        let Ok(req) = lambda_http::request::from_str(&ev.to_string()) else {
            continue;
        };
        let form = form_for_path(path).expect("route");
        let before = h.count("landing_leads");
        let ans = h.call(form, req).await;
        *by_status.entry(ans.status.as_u16()).or_default() += 1;
        let problem = if ans.status.is_server_error() {
            Some("5xx".to_owned())
        } else if !ans.json["error"].is_string() && !ans.status.is_success() {
            Some("an error answer without \"error\"".to_owned())
        } else if let Some(word) = leaks_internals(&ans.text) {
            Some(format!("leaks internals ({word})"))
        } else if ans.status.is_success() != (h.count("landing_leads") == before + 1) {
            Some("stored rows do not match the answer".to_owned())
        } else if ans.status.is_success()
            && h.lead(ans.lead_id().unwrap_or_default()).await.is_none()
        {
            Some("2xx lead not readable".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!(
                "{what}: {p}: {} {}",
                ans.status.as_u16(),
                truncate(&ans.text)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests misbehaved:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    // The cases reach validation, not only the body parser.
    for status in [201, 400, 413, 415, 422] {
        assert!(
            by_status.contains_key(&status),
            "no hostile case got {status}: {by_status:?}"
        );
    }
}

#[tokio::test]
async fn an_invalid_second_contact_is_kept_raw_and_its_channel_skipped() {
    let h = Harness::new();
    let ans = h
        .call(
            Form::ProfTest,
            request(&fixture("proftest/valid-email-malformed-phone-ok.json")),
        )
        .await;
    assert_eq!(ans.status, StatusCode::CREATED, "{}", ans.text);
    let lead = h
        .lead(ans.lead_id().expect("leadId"))
        .await
        .expect("stored");
    assert!(
        matches!(lead.email, Contact::Invalid(ref raw) if raw == "aigerim@mail"),
        "{:?}",
        lead.email
    );
    assert_eq!(
        h.notifications(lead.id)
            .await
            .iter()
            .map(|n| n.channel())
            .collect::<Vec<_>>(),
        vec![Channel::Sms]
    );
}

fn truncate(s: &str) -> String {
    let t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        format!("{t}…({} bytes)", s.len())
    } else {
        t
    }
}
