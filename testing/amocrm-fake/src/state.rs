//! The fake account's state (guarded by one `Mutex` in `lib.rs`) and shared helpers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::model::*;
use crate::parse::TagRef;

/// An HTTP answer before it becomes an axum response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub(crate) const HAL: &str = "application/hal+json";
pub(crate) const PROBLEM: &str = "application/problem+json";
pub(crate) const JSON: &str = "application/json";
pub(crate) const HTML: &str = "text/html";

impl Reply {
    pub fn hal(status: u16, v: &Value) -> Self {
        Self::body(status, HAL, v.to_string().into_bytes())
    }
    pub fn json(status: u16, v: &Value) -> Self {
        Self::body(status, JSON, v.to_string().into_bytes())
    }
    pub fn problem(status: u16, v: &Value) -> Self {
        Self::body(status, PROBLEM, v.to_string().into_bytes())
    }
    pub fn html(status: u16, s: &str) -> Self {
        Self::body(status, HTML, s.as_bytes().to_vec())
    }
    pub fn no_content() -> Self {
        Self {
            status: 204,
            content_type: None,
            body: Vec::new(),
            headers: Vec::new(),
        }
    }
    fn body(status: u16, ct: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: Some(ct),
            body,
            headers: Vec::new(),
        }
    }
    /// `{"title", "type": "https://httpstatus.es/<code>", "status", "detail"}`.
    pub fn generic(status: u16, title: &str, detail: &str) -> Self {
        Self::problem(
            status,
            &json!({
                "title": title,
                "type": format!("https://httpstatus.es/{status}"),
                "status": status,
                "detail": detail,
            }),
        )
    }
    pub fn bad_request(detail: &str) -> Self {
        Self::generic(400, "Bad Request", detail)
    }
    pub fn not_found() -> Self {
        Self::generic(404, "Not Found", "Not Found")
    }
    pub fn unauthorized() -> Self {
        Self::generic(401, "Unauthorized", "Неверный логин или пароль")
    }
}

/// nginx-style HTML page for a status (403 blocked, 502/503 faults, 429 limits).
pub(crate) fn nginx_page(status: u16, reason: &str) -> String {
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// One error inside `validation-errors[].errors[]`.
#[derive(Debug, Clone)]
pub(crate) struct FieldErr {
    pub code: &'static str,
    pub path: String,
    pub detail: String,
}

/// Errors of one item of a batch request, keyed by its `request_id`.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    pub items: Vec<(String, Vec<FieldErr>)>,
}

impl Errors {
    pub fn push(&mut self, request_id: &str, code: &'static str, path: &str, detail: &str) {
        let err = FieldErr {
            code,
            path: path.to_owned(),
            detail: detail.to_owned(),
        };
        match self.items.iter_mut().find(|(r, _)| r == request_id) {
            Some((_, v)) => v.push(err),
            None => self.items.push((request_id.to_owned(), vec![err])),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// 400 `application/problem+json` with `validation-errors`.
    pub fn reply(&self) -> Reply {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|(rid, errs)| {
                json!({
                    "request_id": rid,
                    "errors": errs.iter().map(|e| json!({
                        "code": e.code, "path": e.path, "detail": e.detail
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Reply::problem(
            400,
            &json!({
                "validation-errors": items,
                "title": "Bad Request",
                "type": "https://httpstatus.es/400",
                "status": 400,
                "detail": "Request validation failed",
            }),
        )
    }
}

pub(crate) struct AuthCode {
    pub expires_at: i64,
    pub used: bool,
}

pub(crate) struct AccessToken {
    pub integration: String,
    pub expires_at: i64,
    pub revoked: bool,
}

pub(crate) struct RefreshToken {
    pub expires_at: i64,
    pub used: bool,
}

/// A fault to serve instead of (or after) executing a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub status: u16,
    pub execute: bool,
}

pub(crate) struct State {
    pub cfg: FakeConfig,
    pub base_url: String,
    pub clock_offset: i64,

    pub next_contact_id: i64,
    pub next_lead_id: i64,
    pub next_note_id: i64,
    pub next_tag_id: i64,
    pub next_company_id: i64,
    pub next_field_id: i64,

    pub pipelines: Vec<PipelineConfig>,
    pub lead_fields: Vec<FieldDef>,
    pub contact_fields: Vec<FieldDef>,
    pub contacts: BTreeMap<i64, Contact>,
    pub leads: BTreeMap<i64, Lead>,
    pub notes: Vec<Note>,
    pub lead_tags: Vec<Tag>,
    pub contact_tags: Vec<Tag>,
    pub companies: BTreeMap<i64, String>,

    pub long_lived_valid: bool,
    pub auth_codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,

    pub faults: VecDeque<Fault>,
    pub delay: Option<Duration>,
    pub delay_next: VecDeque<Duration>,
    pub burst_429: u64,
    pub blocked: bool,
    pub windows: HashMap<String, VecDeque<Instant>>,

    pub log: VecDeque<LoggedRequest>,
    pub seq: u64,
    pub stats: Stats,
}

/// A contact to create, validated: from `leads/complex` or from the seeding API.
pub(crate) struct ContactDraft {
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub custom_fields: Vec<CustomField>,
    pub tags: Vec<TagRef>,
}

/// Adds the system stages 142/143 every AmoCRM pipeline has, whatever the configuration says.
pub(crate) fn fix_pipeline(mut p: PipelineConfig) -> PipelineConfig {
    if !p.stages.iter().any(|s| s.id == STATUS_WON) {
        p.stages.push(StageConfig {
            id: STATUS_WON,
            name: "Успешно реализовано".to_owned(),
            sort: 10_000,
            kind: StageKind::Won,
        });
    }
    if !p.stages.iter().any(|s| s.id == STATUS_LOST) {
        p.stages.push(StageConfig {
            id: STATUS_LOST,
            name: "Закрыто и не реализовано".to_owned(),
            sort: 11_000,
            kind: StageKind::Lost,
        });
    }
    for s in &mut p.stages {
        if s.id == STATUS_WON {
            s.kind = StageKind::Won;
        } else if s.id == STATUS_LOST {
            s.kind = StageKind::Lost;
        }
    }
    p.stages.sort_by_key(|s| s.sort);
    p
}

fn default_contact_fields() -> Vec<FieldDef> {
    let enums = |start: i64, codes: &[&str]| {
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| (start + i as i64, (*c).to_owned()))
            .collect::<Vec<_>>()
    };
    vec![
        FieldDef {
            id: 3001,
            code: Some("PHONE".to_owned()),
            name: "Телефон".to_owned(),
            field_type: "multitext".to_owned(),
            enums: enums(5001, &["WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"]),
        },
        FieldDef {
            id: 3003,
            code: Some("EMAIL".to_owned()),
            name: "Email".to_owned(),
            field_type: "multitext".to_owned(),
            enums: enums(5011, &["WORK", "PRIV", "OTHER"]),
        },
    ]
}

fn default_lead_fields() -> Vec<FieldDef> {
    [
        "UTM_SOURCE",
        "UTM_MEDIUM",
        "UTM_CAMPAIGN",
        "UTM_TERM",
        "UTM_CONTENT",
        "UTM_REFERRER",
        "GCLID",
        "YCLID",
        "FBCLID",
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| FieldDef::tracking(4001 + i as i64, c))
    .collect()
}

impl State {
    pub fn new(cfg: FakeConfig) -> Self {
        let mut pipelines: Vec<PipelineConfig> =
            cfg.pipelines.iter().cloned().map(fix_pipeline).collect();
        if !pipelines.iter().any(|p| p.is_main)
            && let Some(first) = pipelines.first_mut()
        {
            first.is_main = true;
        }
        let mut contact_fields = default_contact_fields();
        contact_fields.extend(cfg.extra_contact_fields.iter().cloned());
        let mut lead_fields = default_lead_fields();
        lead_fields.extend(cfg.extra_lead_fields.iter().cloned());
        let max_field = contact_fields
            .iter()
            .chain(lead_fields.iter())
            .map(|f| f.id)
            .max()
            .unwrap_or(0);
        Self {
            long_lived_valid: cfg.long_lived_token.is_some(),
            cfg,
            base_url: String::new(),
            clock_offset: 0,
            next_contact_id: 7_000_001,
            next_lead_id: 20_000_001,
            next_note_id: 900_001,
            next_tag_id: 1_001,
            next_company_id: 8_000_001,
            next_field_id: max_field.max(6000) + 1,
            pipelines,
            lead_fields,
            contact_fields,
            contacts: BTreeMap::new(),
            leads: BTreeMap::new(),
            notes: Vec::new(),
            lead_tags: Vec::new(),
            contact_tags: Vec::new(),
            companies: BTreeMap::new(),
            auth_codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            faults: VecDeque::new(),
            delay: None,
            delay_next: VecDeque::new(),
            burst_429: 0,
            blocked: false,
            windows: HashMap::new(),
            log: VecDeque::new(),
            seq: 0,
            stats: Stats::default(),
        }
    }

    /// Fake clock: real unix seconds plus the offset set by `advance_clock`.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.clock_offset
    }

    pub fn pipeline(&self, id: i64) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    pub fn main_pipeline(&self) -> Option<&PipelineConfig> {
        self.pipelines
            .iter()
            .find(|p| p.is_main)
            .or(self.pipelines.first())
    }

    /// First non-system stage (not incoming, not 142/143).
    pub fn first_regular_stage(&self, pipeline_id: i64) -> Option<i64> {
        self.pipeline(pipeline_id).and_then(|p| {
            p.stages
                .iter()
                .find(|s| s.kind == StageKind::Regular)
                .map(|s| s.id)
        })
    }

    pub fn stage_exists(&self, pipeline_id: i64, status_id: i64) -> bool {
        self.pipeline(pipeline_id)
            .is_some_and(|p| p.stages.iter().any(|s| s.id == status_id))
    }

    pub fn incoming_stage(&self, pipeline_id: i64) -> Option<i64> {
        self.pipeline(pipeline_id).and_then(|p| {
            p.stages
                .iter()
                .find(|s| s.kind == StageKind::Incoming)
                .map(|s| s.id)
        })
    }

    pub fn link(&self, path: &str) -> Value {
        json!({"self": {"href": format!("{}{}", self.base_url, path)}})
    }

    /// Lead tag by name, created if missing.
    pub fn lead_tag(&mut self, name: &str) -> Tag {
        if let Some(t) = self.lead_tags.iter().find(|t| t.name == name) {
            return t.clone();
        }
        let t = Tag {
            id: self.next_tag_id,
            name: name.to_owned(),
        };
        self.next_tag_id += 1;
        self.lead_tags.push(t.clone());
        t
    }

    pub fn contact_tag(&mut self, name: &str) -> Tag {
        if let Some(t) = self.contact_tags.iter().find(|t| t.name == name) {
            return t.clone();
        }
        let t = Tag {
            id: self.next_tag_id,
            name: name.to_owned(),
        };
        self.next_tag_id += 1;
        self.contact_tags.push(t.clone());
        t
    }

    /// Lead ids linked to a contact, ascending.
    pub fn lead_ids_of(&self, contact_id: i64) -> Vec<i64> {
        self.leads
            .values()
            .filter(|l| l.contacts.iter().any(|c| c.id == contact_id))
            .map(|l| l.id)
            .collect()
    }

    pub fn contact_snapshot(&self, c: &Contact) -> Contact {
        let mut c = c.clone();
        c.lead_ids = self.lead_ids_of(c.id);
        c
    }

    /// Registers a text field for contacts by name (used by `add_contact` extra fields).
    pub fn ensure_contact_text_field(&mut self, name_or_code: &str) -> FieldDef {
        if let Some(f) = self
            .contact_fields
            .iter()
            .find(|f| f.code.as_deref() == Some(name_or_code) || f.name == name_or_code)
        {
            return f.clone();
        }
        let f = FieldDef::text(self.next_field_id, None, name_or_code);
        self.next_field_id += 1;
        self.contact_fields.push(f.clone());
        f
    }

    /// Contact tags given by name are created; unknown ids were rejected by validation.
    pub fn insert_contact(&mut self, d: ContactDraft) -> i64 {
        let now = self.now();
        let mut tags = Vec::new();
        for r in &d.tags {
            let t = match r {
                TagRef::Name(n) => Some(self.contact_tag(n)),
                TagRef::Id(id) => self.contact_tags.iter().find(|t| t.id == *id).cloned(),
            };
            if let Some(t) = t
                && !tags.iter().any(|x: &Tag| x.id == t.id)
            {
                tags.push(t);
            }
        }
        let id = self.next_contact_id;
        self.next_contact_id += 1;
        self.contacts.insert(
            id,
            Contact {
                id,
                name: d.name,
                first_name: d.first_name,
                last_name: d.last_name,
                custom_fields: d.custom_fields,
                tags,
                created_at: now,
                updated_at: now,
                lead_ids: Vec::new(),
            },
        );
        id
    }

    pub fn record(&mut self, entry: LoggedRequest) {
        if self.cfg.log_capacity == 0 {
            return;
        }
        while self.log.len() >= self.cfg.log_capacity {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }
}

/// Digits of a string.
pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Renders custom field values; `null` when there are none.
pub(crate) fn render_fields(fields: &[CustomField]) -> Value {
    if fields.is_empty() {
        return Value::Null;
    }
    Value::Array(
        fields
            .iter()
            .map(|f| {
                let values: Vec<Value> = f
                    .values
                    .iter()
                    .map(|v| {
                        if v.enum_code.is_some() || v.enum_id.is_some() {
                            json!({"value": v.value, "enum_id": v.enum_id, "enum_code": v.enum_code})
                        } else {
                            json!({"value": v.value})
                        }
                    })
                    .collect();
                json!({
                    "field_id": f.field_id,
                    "field_name": f.field_name,
                    "field_code": f.field_code,
                    "field_type": f.field_type,
                    "values": values,
                })
            })
            .collect(),
    )
}

pub(crate) fn render_tags(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"id": t.id, "name": t.name, "color": null}))
            .collect(),
    )
}
