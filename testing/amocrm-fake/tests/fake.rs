//! Behaviour of the fake AmoCRM server over real HTTP.

use std::time::Duration;

use landing_amocrm_fake::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct T {
    fake: FakeAmo,
    http: Client,
}

struct Resp {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl T {
    fn new() -> Self {
        Self::with(FakeConfig::default().with_rate_limit(None))
    }

    fn with(cfg: FakeConfig) -> Self {
        Self {
            fake: FakeAmo::start(cfg),
            http: Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.fake.base_url(), path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = r.text().await.expect("body");
        Resp {
            status,
            content_type,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(DEFAULT_LONG_LIVED_TOKEN), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            path,
            Some(DEFAULT_LONG_LIVED_TOKEN),
            Some(body),
        )
        .await
    }

    async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(
            Method::PATCH,
            path,
            Some(DEFAULT_LONG_LIVED_TOKEN),
            Some(body),
        )
        .await
    }

    async fn token_form(&self, fields: &[(&str, &str)]) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('+', "%2B")
                        .replace(':', "%3A")
                        .replace('/', "%2F")
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}/oauth2/access_token", self.fake.base_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Resp {
            status,
            content_type,
            body: r.text().await.unwrap(),
        }
    }
}

/// A kept route with no side effect, used wherever a test only needs "some API call".
fn probe() -> String {
    format!("/api/v4/leads/pipelines/{DEFAULT_PIPELINE_ID}")
}

fn tag_names(lead: &Value) -> Vec<String> {
    lead["_embedded"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn api_requires_bearer_and_answers_401_problem_json() {
    let t = T::new();
    for token in [None, Some("nope")] {
        let r = t.call(Method::GET, &probe(), token, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(
            r.json(),
            json!({"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,
                   "detail":"Неверный логин или пароль"})
        );
    }
    let ok = t.get(&probe()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.content_type, "application/hal+json");
    t.fake.expire_access_tokens();
    assert_eq!(t.get(&probe()).await.status, 401);
    assert_eq!(t.fake.stats().served_401, 3);
}

#[tokio::test]
async fn contact_search_answers_204_with_empty_body_when_nothing_matches() {
    let t = T::new();
    t.fake.add_contact(
        "Иван Иванов",
        &["+7 999 555-11-22"],
        &["ivan@example.com"],
        &[],
    );
    let r = t.get("/api/v4/contacts?query=1112223344&with=leads").await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.content_type, "");
    // "+7…" vs "8…" prefixes are different strings to the search.
    let r = t.get("/api/v4/contacts?query=89995551122").await;
    assert_eq!(r.status, 204);
    let r = t.get("/api/v4/contacts?query=9995551122").await;
    assert_eq!(r.status, 200);
    let r = t.get("/api/v4/contacts?query=IVAN%40example.COM").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["_embedded"]["contacts"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn contact_search_is_fuzzy_and_embeds_only_lead_ids() {
    let t = T::new();
    let real = t.fake.add_contact("Иван", &["+7 999 555-11-22"], &[], &[]);
    // The digits hide in a payment-code field of somebody else: a false positive.
    let other = t.fake.add_contact(
        "Пётр",
        &["+7 700 000-00-00"],
        &[],
        &[("Код оплаты", "PAY-79995551122-X")],
    );
    let bare = t.fake.add_contact("Без полей", &[], &[], &[]);
    let open = t.fake.add_lead(
        "open",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[real],
        &[],
        None,
    );
    let won = t.fake.add_lead(
        "won",
        DEFAULT_PIPELINE_ID,
        STATUS_WON,
        &[real],
        &["kaspi"],
        None,
    );

    let r = t.get("/api/v4/contacts?query=9995551122&with=leads").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/hal+json");
    let v = r.json();
    let contacts = v["_embedded"]["contacts"].as_array().unwrap();
    let ids: Vec<i64> = contacts.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        vec![real, other],
        "fuzzy search must return the false positive"
    );
    let leads = contacts[0]["_embedded"]["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 2, "closed leads are embedded too");
    for (l, id) in leads.iter().zip([open, won]) {
        let keys: Vec<&String> = l.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["_links", "id"]);
        assert_eq!(l["id"], id);
    }
    let phone = &contacts[0]["custom_fields_values"][0];
    assert_eq!(phone["field_code"], "PHONE");
    assert_eq!(phone["values"][0]["enum_code"], "WORK");
    assert_eq!(phone["values"][0]["value"], "+7 999 555-11-22");
    assert!(v["_links"]["next"].is_null());

    let r = t.get("/api/v4/contacts?query=%D0%91%D0%B5%D0%B7").await;
    let found = &r.json()["_embedded"]["contacts"][0];
    assert_eq!(found["id"], bare);
    assert!(found["custom_fields_values"].is_null());
    // Without with=leads there is no _embedded.leads.
    let r = t.get("/api/v4/contacts?query=9995551122").await;
    assert!(r.json()["_embedded"]["contacts"][0]["_embedded"]["leads"].is_null());
}

#[tokio::test]
async fn contact_search_paginates_with_next_only_when_more() {
    let t = T::new();
    for i in 0..5 {
        t.fake.add_contact(
            &format!("Клиент {i}"),
            &[&format!("+7 701 000 00 0{i}")],
            &[],
            &[],
        );
    }
    let p1 = t
        .get("/api/v4/contacts?query=7010000&limit=2&page=1")
        .await
        .json();
    assert_eq!(p1["_page"], 1);
    assert_eq!(p1["_embedded"]["contacts"].as_array().unwrap().len(), 2);
    let next = p1["_links"]["next"]["href"].as_str().unwrap();
    assert!(next.contains("page=2"), "{next}");
    let p3 = t
        .get("/api/v4/contacts?query=7010000&limit=2&page=3")
        .await
        .json();
    assert_eq!(p3["_embedded"]["contacts"].as_array().unwrap().len(), 1);
    assert!(p3["_links"]["next"].is_null());
    assert_eq!(
        t.get("/api/v4/contacts?query=7010000&limit=2&page=4")
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn complex_returns_bare_array_and_creates_duplicate_contacts() {
    let t = T::new();
    let existing = t.fake.add_contact("Иван", &["+79995551122"], &[], &[]);
    let body = json!([{
        "name": "Заявка",
        "pipeline_id": DEFAULT_PIPELINE_ID,
        "request_id": "order-1",
        "custom_fields_values": [{"field_code": "UTM_SOURCE", "values": [{"value": "instagram"}]}],
        "_embedded": {
            "tags": [{"name": "kaspi"}, {"name": "site"}],
            "contacts": [{"first_name": "Иван", "last_name": "Петров",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": "+79995551122"}]},
                    {"field_code": "EMAIL", "values": [{"enum_code": "WORK", "value": "ivan@example.com"}]}]}]
        }
    }]);
    let r = t.post("/api/v4/leads/complex", body.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/hal+json");
    let v = r.json();
    let arr = v.as_array().expect("bare array");
    assert_eq!(arr.len(), 1);
    let item = &arr[0];
    assert_eq!(item["request_id"], json!(["order-1"]));
    assert_eq!(item["merged"], false);
    assert!(item["company_id"].is_null());
    let contact_id = item["contact_id"].as_i64().unwrap();
    assert_ne!(contact_id, existing, "no dedupe without duplicate control");
    assert_eq!(t.fake.contacts().len(), 2);

    let lead = t.fake.lead(item["id"].as_i64().unwrap()).unwrap();
    assert_eq!(
        lead.status_id, DEFAULT_FIRST_STATUS,
        "default = first non-system stage"
    );
    assert_eq!(lead.pipeline_id, DEFAULT_PIPELINE_ID);
    assert_eq!(lead.tag_names(), vec!["kaspi", "site"]);
    assert_eq!(lead.field_value("UTM_SOURCE").as_deref(), Some("instagram"));
    assert_eq!(lead.main_contact_id(), Some(contact_id));
    assert!(lead.closed_at.is_none());

    // Second identical call: yet another contact and lead.
    let v2 = t.post("/api/v4/leads/complex", body.clone()).await.json();
    assert_ne!(v2[0]["contact_id"], item["contact_id"]);
    assert_eq!(t.fake.contacts().len(), 3);
    assert_eq!(t.fake.leads().len(), 2);

    // A contact given by id is linked, not created.
    let v3 = t
        .post(
            "/api/v4/leads/complex",
            json!([{"_embedded": {"contacts": [{"id": existing}]}}]),
        )
        .await
        .json();
    assert_eq!(v3[0]["contact_id"], existing);
    assert_eq!(t.fake.contacts().len(), 3);

    // With duplicate control on, the contact (and its open lead) are reused.
    t.fake.set_duplicate_control(true);
    let v4 = t.post("/api/v4/leads/complex", body).await.json();
    assert_eq!(v4[0]["merged"], true);
    assert_eq!(t.fake.contacts().len(), 3);
    assert_eq!(v4[0]["contact_id"], existing);
    assert_eq!(v4[0]["id"], v3[0]["id"]);
}

#[tokio::test]
async fn complex_rejects_more_than_50_and_closed_stages_set_closed_at() {
    let t = T::new();
    let many: Vec<Value> = (0..51).map(|i| json!({"name": format!("l{i}")})).collect();
    let r = t.post("/api/v4/leads/complex", Value::Array(many)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(t.fake.leads().is_empty());

    let v = t
        .post(
            "/api/v4/leads/complex",
            json!([{"pipeline_id": DEFAULT_PIPELINE_ID, "status_id": STATUS_WON}]),
        )
        .await
        .json();
    let lead = t.fake.lead(v[0]["id"].as_i64().unwrap()).unwrap();
    assert!(lead.closed_at.is_some());
    assert!(v[0]["contact_id"].is_null());
}

#[tokio::test]
async fn unknown_status_is_a_validation_error() {
    let t = T::with(
        FakeConfig::default()
            .with_rate_limit(None)
            .with_pipeline(PipelineConfig::new(777, "Другая").stage(7001, "Новый")),
    );
    let r = t
        .post(
            "/api/v4/leads/complex",
            json!([{"pipeline_id": DEFAULT_PIPELINE_ID, "status_id": 7001, "name": "x"}]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "application/problem+json");
    let v = r.json();
    assert_eq!(v["status"], 400);
    assert_eq!(v["title"], "Bad Request");
    assert_eq!(v["validation-errors"][0]["request_id"], "0");
    assert_eq!(v["validation-errors"][0]["errors"][0]["path"], "status_id");
    assert!(t.fake.leads().is_empty());
    assert!(t.fake.contacts().is_empty());

    let id = t.fake.add_lead(
        "l",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[],
        &[],
        None,
    );
    // status of another pipeline without pipeline_id → current pipeline → rejected.
    let r = t
        .patch("/api/v4/leads", json!([{"id": id, "status_id": 7001}]))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["validation-errors"].is_array());
    let r = t
        .patch("/api/v4/leads", json!([{"id": id, "status_id": 31337}]))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(t.fake.lead(id).unwrap().status_id, DEFAULT_FIRST_STATUS);
    // With the right pipeline the move works.
    let r = t
        .patch(
            "/api/v4/leads",
            json!([{"id": id, "status_id": 7001, "pipeline_id": 777}]),
        )
        .await;
    assert_eq!(r.status, 200);
    let lead = t.fake.lead(id).unwrap();
    assert_eq!((lead.pipeline_id, lead.status_id), (777, 7001));
    // PATCH without id in the array form is rejected.
    assert_eq!(
        t.patch("/api/v4/leads", json!([{"name": "x"}]))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn tags_replace_vs_append_and_updated_at_bumps() {
    let t = T::new();
    let id = t.fake.add_lead(
        "l",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[],
        &["a", "b"],
        Some(1_000),
    );

    let r = t
        .patch(
            "/api/v4/leads",
            json!([{"id": id, "pipeline_id": DEFAULT_PIPELINE_ID, "status_id": STATUS_WON,
                    "tags_to_add": [{"name": "kaspi"}, {"name": "a"}]}]),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["_embedded"]["leads"][0]["id"], id);
    let lead = t.fake.lead(id).unwrap();
    assert_eq!(
        lead.tag_names(),
        vec!["a", "b", "kaspi"],
        "append, dedupe by name"
    );
    assert!(lead.updated_at > 1_000);
    assert!(lead.closed_at.is_some());
    assert_eq!(v["_embedded"]["leads"][0]["updated_at"], lead.updated_at);

    t.fake.advance_clock(10);
    let r = t
        .patch(
            "/api/v4/leads",
            json!([{"id": id, "tags_to_delete": [{"name": "b"}]}]),
        )
        .await;
    assert_eq!(r.json()["_embedded"]["leads"][0]["id"], id);
    let after = t.fake.lead(id).unwrap();
    assert_eq!(after.tag_names(), vec!["a", "kaspi"]);
    assert!(after.updated_at >= lead.updated_at + 10);

    // _embedded.tags replaces everything and wins over tags_to_add.
    t.patch(
        "/api/v4/leads",
        json!([{"id": id, "_embedded": {"tags": [{"name": "x"}]}, "tags_to_add": [{"name": "y"}]}]),
    )
    .await;
    let v = t
        .get(&format!("/api/v4/leads?filter[id][]={id}"))
        .await
        .json();
    let v = &v["_embedded"]["leads"][0];
    assert_eq!(tag_names(v), vec!["x"]);
    assert!(
        v["_embedded"]["contacts"].is_null(),
        "contacts only with=contacts"
    );
    t.patch(
        "/api/v4/leads",
        json!([{"id": id, "_embedded": {"tags": null}}]),
    )
    .await;
    assert!(t.fake.lead(id).unwrap().tags.is_empty());

    // Moving back to an open stage clears closed_at.
    t.patch(
        "/api/v4/leads",
        json!([{"id": id, "status_id": DEFAULT_SECOND_STATUS}]),
    )
    .await;
    assert!(t.fake.lead(id).unwrap().closed_at.is_none());
}

#[tokio::test]
async fn leads_are_read_by_id_filter_with_contacts_only_when_asked() {
    let t = T::new();
    let c = t.fake.add_contact("Иван", &["+77010000001"], &[], &[]);
    let a = t.fake.add_lead(
        "a",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[c],
        &[],
        None,
    );
    let b = t
        .fake
        .add_lead("b", DEFAULT_PIPELINE_ID, STATUS_LOST, &[c], &[], None);

    let v = t
        .get(&format!("/api/v4/leads?filter[id][]={a}&with=contacts"))
        .await
        .json();
    let lead = &v["_embedded"]["leads"][0];
    assert_eq!(lead["status_id"], DEFAULT_FIRST_STATUS);
    assert_eq!(lead["pipeline_id"], DEFAULT_PIPELINE_ID);
    assert!(lead["closed_at"].is_null());
    assert_eq!(lead["_embedded"]["contacts"][0]["id"], c);
    assert_eq!(lead["_embedded"]["contacts"][0]["is_main"], true);
    assert_eq!(Some(lead.clone()), t.fake.lead_json(a));

    let v = t
        .get(&format!("/api/v4/leads?filter[id][]={a}&filter[id][]={b}"))
        .await
        .json();
    assert_eq!(v["_embedded"]["leads"].as_array().unwrap().len(), 2);
    assert!(v["_embedded"]["leads"][0]["_embedded"]["contacts"].is_null());
    let v = t
        .get(&format!(
            "/api/v4/leads?filter%5Bid%5D%5B0%5D={b}&with=contacts"
        ))
        .await
        .json();
    assert_eq!(v["_embedded"]["leads"][0]["id"], b);
    assert!(v["_embedded"]["leads"][0]["closed_at"].is_i64());
    assert_eq!(t.get("/api/v4/leads?filter[id][]=1").await.status, 204);
}

#[tokio::test]
async fn every_pipeline_has_stages_142_and_143_and_an_unknown_one_is_404() {
    let t = T::new();
    t.fake
        .add_pipeline(PipelineConfig::new(777, "Другая").stage(7001, "Новый"));
    for (pipeline, own) in [(DEFAULT_PIPELINE_ID, DEFAULT_STATUS_144), (777, 7001)] {
        let r = t.get(&format!("/api/v4/leads/pipelines/{pipeline}")).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["id"], pipeline);
        let ids: Vec<i64> = v["_embedded"]["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert!(
            ids.contains(&own) && ids.contains(&STATUS_WON) && ids.contains(&STATUS_LOST),
            "{pipeline}: {ids:?}"
        );
    }
    assert_eq!(t.get("/api/v4/leads/pipelines/1").await.status, 404);
}

#[tokio::test]
async fn notes_attach_to_the_lead_in_entity_id_and_an_unknown_lead_is_400() {
    let t = T::new();
    let a = t.fake.add_lead(
        "a",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[],
        &[],
        None,
    );
    let r = t
        .post(
            "/api/v4/leads/notes",
            json!([{"entity_id": a, "note_type": "common", "params": {"text": "Оплата Kaspi"}},
                   {"entity_id": a, "note_type": "common", "params": {"text": "второй"}}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["_embedded"]["notes"][0]["entity_id"], a);
    let notes = t.fake.notes(a);
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].text(), Some("Оплата Kaspi"));
    assert_eq!(notes[1].note_type, "common");
    let r = t
        .post(
            "/api/v4/leads/notes",
            json!([{"entity_id": 1, "note_type": "common", "params": {"text": "x"}}]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["validation-errors"][0]["errors"][0]["path"],
        "entity_id"
    );
    assert_eq!(t.fake.all_notes().len(), 2);
}

#[tokio::test]
async fn post_leads_links_an_existing_contact_and_adds_tags() {
    let t = T::new();
    let c = t.fake.add_contact("Новый", &[], &[], &[]);
    let v = t
        .post(
            "/api/v4/leads",
            json!([{"name": "n", "_embedded": {"contacts": [{"id": c, "is_main": true}]},
                    "tags_to_add": [{"name": "proftest"}]}]),
        )
        .await
        .json();
    let lead = t
        .fake
        .lead(v["_embedded"]["leads"][0]["id"].as_i64().unwrap())
        .unwrap();
    assert_eq!(lead.contact_ids(), vec![c]);
    assert_eq!(lead.main_contact_id(), Some(c));
    assert_eq!(lead.tag_names(), vec!["proftest"]);
    assert_eq!(t.fake.contacts().len(), 1, "no contact is created");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_is_revoked() {
    let t = T::new();
    let code = t.fake.issue_auth_code();
    // JSON body, authorization_code grant.
    let first = t
        .call(
            Method::POST,
            "/oauth2/access_token",
            None,
            Some(
                json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
                        "grant_type": "authorization_code", "code": code,
                        "redirect_uri": DEFAULT_REDIRECT_URI}),
            ),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let v = first.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 86_400);
    let access1 = v["access_token"].as_str().unwrap().to_owned();
    let refresh1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(access1.split('.').count(), 3, "JWT-shaped");
    assert_eq!(
        t.call(Method::GET, &probe(), Some(&access1), None)
            .await
            .status,
        200
    );

    // The code is single-use.
    let again = t
        .token_form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
        ])
        .await;
    assert_eq!(again.status, 400);

    // Form body, refresh grant: new pair.
    let refresh_form = |rt: String| {
        vec![
            ("client_id", DEFAULT_CLIENT_ID.to_owned()),
            ("client_secret", DEFAULT_CLIENT_SECRET.to_owned()),
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt),
            ("redirect_uri", DEFAULT_REDIRECT_URI.to_owned()),
        ]
    };
    let f = refresh_form(refresh1.clone());
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second = t.token_form(&f).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let v2 = second.json();
    let refresh2 = v2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh1);
    assert_ne!(v2["access_token"].as_str().unwrap(), access1);

    // Reusing the old refresh token → revoked.
    let reuse = t.token_form(&f).await;
    assert_eq!(reuse.status, 401);
    assert_eq!(reuse.content_type, "application/problem+json");
    assert_eq!(
        reuse.json(),
        json!({"hint":"Token has been revoked","title":"Некорректный запрос",
               "type":"https://developers.amocrm.ru/v3/errors/OAuthProblemJson","status":401,
               "detail":"В запросе отсутствует ряд параметров или параметры невалидны"})
    );
    // The new one still works (once).
    let f2 = refresh_form(refresh2);
    let f2: Vec<(&str, &str)> = f2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(t.token_form(&f2).await.status, 200);

    // Wrong client and wrong redirect_uri.
    let bad = t
        .call(
            Method::POST,
            "/oauth2/access_token",
            None,
            Some(
                json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": "wrong",
                        "grant_type": "refresh_token", "refresh_token": "x",
                        "redirect_uri": DEFAULT_REDIRECT_URI}),
            ),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["title"], "Некорректный клиент");
    assert_eq!(bad.json()["detail"], "Авторизация клиента не прошла");
    let code = t.fake.issue_auth_code();
    let mismatch = t
        .call(
            Method::POST,
            "/oauth2/access_token",
            None,
            Some(
                json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
                        "grant_type": "authorization_code", "code": code,
                        "redirect_uri": "https://evil.example/cb"}),
            ),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(t.fake.stats().token_calls, 7);

    // Expired access tokens answer 401.
    t.fake.expire_access_tokens();
    assert_eq!(
        t.call(Method::GET, &probe(), Some(&access1), None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn more_than_7_requests_per_second_get_429_with_non_json_body() {
    let t = T::with(FakeConfig::default());
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let r = t.get(&probe()).await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            assert!(
                r.content_type.starts_with("text/html"),
                "{}",
                r.content_type
            );
            bodies.push(r.body);
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    for b in &bodies {
        assert!(
            serde_json::from_str::<Value>(b).is_err(),
            "429 body must not be JSON: {b}"
        );
        assert!(b.contains("Too Many Requests"));
    }
    let stats = t.fake.stats();
    assert_eq!(stats.served_429, 3);
    assert_eq!(stats.executed, 7);
    assert_eq!(stats.calls("GET /api/v4/leads/pipelines/{id}"), 10);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(t.get(&probe()).await.status, 200);

    t.fake.burst_429(2);
    assert_eq!(t.get(&probe()).await.status, 429);
    assert_eq!(t.get(&probe()).await.status, 429);
}

#[tokio::test]
async fn blocked_mode_serves_nginx_403_html_everywhere() {
    let t = T::new();
    t.fake.set_blocked(true);
    let r = t.get(&probe()).await;
    assert_eq!(r.status, 403);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.body.contains("403 Forbidden") && r.body.contains("nginx"));
    let r = t
        .call(
            Method::POST,
            "/oauth2/access_token",
            None,
            Some(json!({"grant_type": "refresh_token"})),
        )
        .await;
    assert_eq!(r.status, 403);
    t.fake.set_blocked(false);
    assert_eq!(t.get(&probe()).await.status, 200);
}

#[tokio::test]
async fn injected_faults_and_delays() {
    let t = T::new();
    t.fake.fail_next(2, 502);
    let r = t
        .post("/api/v4/leads/complex", json!([{"name": "x"}]))
        .await;
    assert_eq!(r.status, 502);
    assert!(r.content_type.starts_with("text/html"));
    assert_eq!(
        t.post("/api/v4/leads/complex", json!([{"name": "x"}]))
            .await
            .status,
        502
    );
    assert!(t.fake.leads().is_empty(), "not executed");

    t.fake.fail_next_after_execute(1, 500);
    let r = t
        .post("/api/v4/leads/complex", json!([{"name": "x"}]))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(t.fake.leads().len(), 1, "executed, then failed");

    t.fake.delay_next(1, Duration::from_millis(300));
    let start = std::time::Instant::now();
    assert_eq!(t.get(&probe()).await.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    let stats = t.fake.stats();
    assert_eq!(stats.injected_faults, 3);
    assert_eq!(stats.calls("POST /api/v4/leads/complex"), 3);
    let log = t.fake.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].status, 502);
    assert!(log[0].body.contains("\"name\""));
}

#[tokio::test]
async fn routes_the_client_does_not_call_answer_404() {
    let t = T::new();
    let lead = t.fake.add_lead(
        "l",
        DEFAULT_PIPELINE_ID,
        DEFAULT_FIRST_STATUS,
        &[],
        &[],
        None,
    );
    for (method, path) in [
        (Method::GET, "/api/v4/account".to_owned()),
        (Method::GET, "/api/v4/leads/pipelines".to_owned()),
        (Method::GET, format!("/api/v4/leads/{lead}")),
        (Method::PATCH, format!("/api/v4/leads/{lead}")),
        (Method::POST, format!("/api/v4/leads/{lead}/notes")),
        (Method::POST, "/api/v4/contacts".to_owned()),
    ] {
        let body = (method != Method::GET).then(|| json!([{}]));
        let r = t
            .call(method.clone(), &path, Some(DEFAULT_LONG_LIVED_TOKEN), body)
            .await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.content_type, "application/problem+json");
    }
    assert!(t.fake.all_notes().is_empty());
    assert!(t.fake.contacts().is_empty());
}
