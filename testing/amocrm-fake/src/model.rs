//! Public data types: configuration and snapshots of the fake's state.

use std::collections::BTreeMap;
use std::time::Duration;

/// System stage "Успешно реализовано" (closed-won), present in every pipeline.
pub const STATUS_WON: i64 = 142;
/// System stage "Закрыто и не реализовано" (closed-lost), present in every pipeline.
pub const STATUS_LOST: i64 = 143;

/// Seed pipeline id used by the project (`AMOCRM_PIPELINE_ID`).
pub const DEFAULT_PIPELINE_ID: i64 = 10_350_882;
/// Incoming ("Неразобранное", `type: 1`) stage of the default pipeline.
pub const DEFAULT_INCOMING_STATUS: i64 = 10_000;
/// First regular stage of the default pipeline ("Первичный контакт").
pub const DEFAULT_FIRST_STATUS: i64 = 10_001;
/// Second regular stage of the default pipeline ("Переговоры").
pub const DEFAULT_SECOND_STATUS: i64 = 10_002;
/// A regular, account-specific stage that happens to be numbered 144.
pub const DEFAULT_STATUS_144: i64 = 144;

/// Long-lived token accepted by [`FakeConfig::default`].
pub const DEFAULT_LONG_LIVED_TOKEN: &str = "fake-amo-long-lived-token";
/// OAuth client of [`FakeConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
/// OAuth client secret of [`FakeConfig::default`].
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";
/// OAuth redirect URI of [`FakeConfig::default`].
pub const DEFAULT_REDIRECT_URI: &str = "https://landing.example/amocrm/oauth";

/// Kind of a pipeline stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// "Неразобранное" / incoming leads stage (`type: 1`).
    Incoming,
    /// An ordinary, account-specific stage (`type: 0`).
    Regular,
    /// System stage 142.
    Won,
    /// System stage 143.
    Lost,
}

/// One stage (status) of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageConfig {
    pub id: i64,
    pub name: String,
    pub sort: i64,
    pub kind: StageKind,
}

/// A pipeline and its stages. Stages 142/143 are added automatically if missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    pub id: i64,
    pub name: String,
    pub is_main: bool,
    pub stages: Vec<StageConfig>,
}

impl PipelineConfig {
    /// A pipeline without stages (142/143 are added when the fake starts).
    pub fn new(id: i64, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            is_main: false,
            stages: Vec::new(),
        }
    }

    /// Marks this pipeline as the account's main one (default for leads without `pipeline_id`).
    pub fn main(mut self) -> Self {
        self.is_main = true;
        self
    }

    /// Appends a regular stage.
    pub fn stage(mut self, id: i64, name: &str) -> Self {
        let sort = 10 * (self.stages.len() as i64 + 1);
        self.stages.push(StageConfig {
            id,
            name: name.to_owned(),
            sort,
            kind: StageKind::Regular,
        });
        self
    }

    /// Appends the incoming ("Неразобранное") stage.
    pub fn incoming(mut self, id: i64, name: &str) -> Self {
        self.stages.push(StageConfig {
            id,
            name: name.to_owned(),
            sort: 0,
            kind: StageKind::Incoming,
        });
        self
    }

    /// The project's seed pipeline 10350882: incoming 10000, then 10001 "Первичный контакт",
    /// 10002 "Переговоры", 144 "Ожидает оплаты" (a regular stage), plus 142/143.
    pub fn default_pipeline() -> Self {
        PipelineConfig::new(DEFAULT_PIPELINE_ID, "Воронка")
            .main()
            .incoming(DEFAULT_INCOMING_STATUS, "Неразобранное")
            .stage(DEFAULT_FIRST_STATUS, "Первичный контакт")
            .stage(DEFAULT_SECOND_STATUS, "Переговоры")
            .stage(DEFAULT_STATUS_144, "Ожидает оплаты")
    }
}

/// OAuth integration registered in the fake account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

/// Definition of a custom field of contacts or leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDef {
    pub id: i64,
    pub code: Option<String>,
    pub name: String,
    /// `multitext`, `text`, `tracking_data`, `numeric`, …
    pub field_type: String,
    /// `(enum_id, enum_code)` pairs for multitext fields.
    pub enums: Vec<(i64, String)>,
}

impl FieldDef {
    /// A plain text field.
    pub fn text(id: i64, code: Option<&str>, name: &str) -> Self {
        Self {
            id,
            code: code.map(str::to_owned),
            name: name.to_owned(),
            field_type: "text".to_owned(),
            enums: Vec::new(),
        }
    }

    /// A `tracking_data` field (UTM etc.).
    pub fn tracking(id: i64, code: &str) -> Self {
        Self {
            id,
            code: Some(code.to_owned()),
            name: code.to_owned(),
            field_type: "tracking_data".to_owned(),
            enums: Vec::new(),
        }
    }
}

/// Configuration of a [`crate::FakeAmo`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub account_id: i64,
    pub pipelines: Vec<PipelineConfig>,
    /// Accepted as `Authorization: Bearer …` until [`crate::FakeAmo::expire_access_tokens`].
    pub long_lived_token: Option<String>,
    pub oauth_client: Option<OAuthClient>,
    /// `expires_in` of issued access tokens, seconds.
    pub access_token_ttl: i64,
    /// Lifetime of refresh tokens, seconds (3 months by default).
    pub refresh_token_ttl: i64,
    /// Lifetime of authorization codes, seconds (20 minutes by default).
    pub auth_code_ttl: i64,
    /// Executed requests allowed per integration in any rolling window; `None` disables.
    pub rate_limit: Option<u32>,
    pub rate_window: Duration,
    /// Add `Retry-After: n` to 429 answers (real AmoCRM does not document it).
    pub retry_after: Option<u64>,
    /// Switch to "blocked" mode (403 HTML for everything) after this many 429s.
    pub block_after_429s: Option<u64>,
    /// Duplicate control for `leads/complex` (off in real accounts unless enabled).
    pub duplicate_control: bool,
    /// Reject custom field values whose `field_id`/`field_code` is not defined (400).
    pub strict_custom_fields: bool,
    /// Extra custom fields of leads (defaults: UTM_* / GCLID / YCLID / FBCLID tracking fields).
    pub extra_lead_fields: Vec<FieldDef>,
    /// Extra custom fields of contacts (defaults: PHONE, EMAIL).
    pub extra_contact_fields: Vec<FieldDef>,
    /// Maximum number of requests kept in the request log.
    pub log_capacity: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            account_id: 31_337_000,
            pipelines: vec![PipelineConfig::default_pipeline()],
            long_lived_token: Some(DEFAULT_LONG_LIVED_TOKEN.to_owned()),
            oauth_client: Some(OAuthClient {
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
                redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
            }),
            access_token_ttl: 86_400,
            refresh_token_ttl: 90 * 86_400,
            auth_code_ttl: 20 * 60,
            rate_limit: Some(7),
            rate_window: Duration::from_secs(1),
            retry_after: None,
            block_after_429s: None,
            duplicate_control: false,
            strict_custom_fields: true,
            extra_lead_fields: Vec::new(),
            extra_contact_fields: Vec::new(),
            log_capacity: 10_000,
        }
    }
}

impl FakeConfig {
    /// Adds a pipeline (kept alongside the default one).
    pub fn with_pipeline(mut self, pipeline: PipelineConfig) -> Self {
        self.pipelines.push(pipeline);
        self
    }

    /// Sets the per-integration request limit (`None` = unlimited).
    pub fn with_rate_limit(mut self, limit: Option<u32>) -> Self {
        self.rate_limit = limit;
        self
    }
}

/// One value of a custom field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldValue {
    pub value: String,
    pub enum_id: Option<i64>,
    pub enum_code: Option<String>,
}

/// A filled custom field of an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomField {
    pub field_id: i64,
    pub field_code: Option<String>,
    pub field_name: String,
    pub field_type: String,
    pub values: Vec<FieldValue>,
}

/// A tag (lead and contact tags live in separate registries, like in AmoCRM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub id: i64,
    pub name: String,
}

/// Snapshot of a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub custom_fields: Vec<CustomField>,
    pub tags: Vec<Tag>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Leads linked to this contact (any status), ascending.
    pub lead_ids: Vec<i64>,
}

fn values_of(fields: &[CustomField], code: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.field_code.as_deref() == Some(code) || f.field_name == code)
        .flat_map(|f| f.values.iter().map(|v| v.value.clone()))
        .collect()
}

impl Contact {
    /// All PHONE values as stored.
    pub fn phones(&self) -> Vec<String> {
        values_of(&self.custom_fields, "PHONE")
    }

    /// All EMAIL values as stored.
    pub fn emails(&self) -> Vec<String> {
        values_of(&self.custom_fields, "EMAIL")
    }

    /// Values of the field with this code (or name).
    pub fn field_values(&self, code_or_name: &str) -> Vec<String> {
        values_of(&self.custom_fields, code_or_name)
    }
}

/// A contact linked to a lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadContact {
    pub id: i64,
    pub is_main: bool,
}

/// Snapshot of a lead (deal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lead {
    pub id: i64,
    pub name: String,
    pub price: i64,
    pub pipeline_id: i64,
    pub status_id: i64,
    pub responsible_user_id: i64,
    pub loss_reason_id: Option<i64>,
    pub contacts: Vec<LeadContact>,
    pub company_id: Option<i64>,
    pub tags: Vec<Tag>,
    pub custom_fields: Vec<CustomField>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

impl Lead {
    /// Tag names in order.
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.name.clone()).collect()
    }

    /// Linked contact ids in link order.
    pub fn contact_ids(&self) -> Vec<i64> {
        self.contacts.iter().map(|c| c.id).collect()
    }

    /// The main contact, if any.
    pub fn main_contact_id(&self) -> Option<i64> {
        self.contacts.iter().find(|c| c.is_main).map(|c| c.id)
    }

    /// First value of the field with this code (or name).
    pub fn field_value(&self, code_or_name: &str) -> Option<String> {
        values_of(&self.custom_fields, code_or_name)
            .into_iter()
            .next()
    }

    /// In stage 142 or 143.
    pub fn is_closed(&self) -> bool {
        self.status_id == STATUS_WON || self.status_id == STATUS_LOST
    }
}

/// A note on a lead.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub id: i64,
    /// The lead.
    pub entity_id: i64,
    pub note_type: String,
    pub params: serde_json::Value,
}

impl Note {
    /// `params.text`, if present.
    pub fn text(&self) -> Option<&str> {
        self.params.get("text").and_then(|t| t.as_str())
    }
}

/// One served request (as the fake saw it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    /// Endpoint key such as `GET /api/v4/leads/pipelines/{id}`.
    pub endpoint: String,
    pub status: u16,
    /// Fake clock, unix seconds.
    pub at: i64,
}

/// Request counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request received, whatever the answer.
    pub total_requests: u64,
    /// Requests to `/api/v4/*`, whatever the answer.
    pub api_calls: u64,
    /// Requests to `/oauth2/access_token`.
    pub token_calls: u64,
    /// Requests that were executed (reached the endpoint logic).
    pub executed: u64,
    /// Requests per endpoint key (`GET /api/v4/contacts`, `POST /api/v4/leads/complex`, …).
    pub per_endpoint: BTreeMap<String, u64>,
    pub served_401: u64,
    pub served_403: u64,
    pub served_429: u64,
    /// 5xx answers produced by fault injection.
    pub injected_faults: u64,
}

impl Stats {
    /// Requests seen for an endpoint key, e.g. `"POST /api/v4/leads/complex"`.
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.per_endpoint.get(endpoint).copied().unwrap_or(0)
    }
}

/// Tokens as returned by the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}
