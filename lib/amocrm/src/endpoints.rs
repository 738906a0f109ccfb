//! The endpoints the sync needs, as functions of the client: request bodies built from our
//! values, answers read into the core's `CrmContact`/`CrmDeal` tolerantly (unknown fields
//! ignored, `null` lists empty). docs/amocrm.md §3–§7 say what each endpoint does.

use landing_core::crm::{CrmContact, CrmDeal};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::AmoClient;
use crate::error::AmoError;

#[derive(Debug, Deserialize, Default)]
struct IdOnly {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct FieldValue {
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Deserialize)]
struct CustomField {
    #[serde(default)]
    field_code: Option<String>,
    #[serde(default)]
    values: Vec<FieldValue>,
}

#[derive(Debug, Deserialize, Default)]
struct ContactEmbedded {
    #[serde(default)]
    leads: Vec<IdOnly>,
}

#[derive(Debug, Deserialize)]
struct ApiContact {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    updated_at: Option<i64>,
    #[serde(default)]
    custom_fields_values: Option<Vec<CustomField>>,
    #[serde(default, rename = "_embedded")]
    embedded: Option<ContactEmbedded>,
}

#[derive(Debug, Deserialize, Default)]
struct LeadEmbedded {
    #[serde(default)]
    contacts: Vec<IdOnly>,
}

#[derive(Debug, Deserialize)]
struct ApiLead {
    id: i64,
    #[serde(default)]
    pipeline_id: i64,
    #[serde(default)]
    status_id: i64,
    #[serde(default)]
    updated_at: Option<i64>,
    #[serde(default)]
    closed_at: Option<i64>,
    #[serde(default, rename = "_embedded")]
    embedded: Option<LeadEmbedded>,
}

#[derive(Debug, Deserialize)]
struct ApiStatus {
    id: i64,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize, Default)]
struct PipelineEmbedded {
    #[serde(default)]
    statuses: Vec<ApiStatus>,
}

#[derive(Debug, Deserialize)]
struct ApiPipeline {
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "_embedded")]
    embedded: Option<PipelineEmbedded>,
}

/// A pipeline and its stages, as `/api/v4/leads/pipelines/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub id: i64,
    pub name: String,
    pub stages: Vec<(i64, String)>,
}

/// `POST /api/v4/leads/complex` answers a bare array of these.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ComplexCreated {
    pub id: i64,
    #[serde(default)]
    pub contact_id: Option<i64>,
}

fn embedded_list<T: serde::de::DeserializeOwned>(
    answer: Option<Value>,
    key: &str,
) -> Result<Vec<T>, AmoError> {
    let Some(v) = answer else { return Ok(vec![]) };
    let list = v
        .get("_embedded")
        .and_then(|e| e.get(key))
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    serde_json::from_value(list).map_err(|e| AmoError::Unexpected(format!("{key} answer: {e}")))
}

fn field_values(fields: &[CustomField], code: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.field_code.as_deref() == Some(code))
        .flat_map(|f| f.values.iter())
        .filter_map(|v| match &v.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

impl From<ApiContact> for CrmContact {
    fn from(c: ApiContact) -> Self {
        let fields = c.custom_fields_values.unwrap_or_default();
        CrmContact {
            id: c.id,
            name: c.name.unwrap_or_default(),
            phones: field_values(&fields, "PHONE"),
            emails: field_values(&fields, "EMAIL"),
            lead_ids: c
                .embedded
                .unwrap_or_default()
                .leads
                .into_iter()
                .map(|l| l.id)
                .collect(),
            updated_at: c.updated_at.unwrap_or(0),
        }
    }
}

impl From<ApiLead> for CrmDeal {
    fn from(l: ApiLead) -> Self {
        CrmDeal {
            id: l.id,
            pipeline_id: l.pipeline_id,
            status_id: l.status_id,
            updated_at: l.updated_at.unwrap_or(0),
            closed_at: l.closed_at,
            contact_ids: l
                .embedded
                .unwrap_or_default()
                .contacts
                .into_iter()
                .map(|c| c.id)
                .collect(),
        }
    }
}

/// `GET /api/v4/contacts?query=…&with=leads`. Fuzzy on AmoCRM's side: callers re-check hits.
pub async fn search_contacts(
    client: &AmoClient,
    query: &str,
    cid: &str,
) -> Result<Vec<CrmContact>, AmoError> {
    let q = vec![
        ("query".to_owned(), query.to_owned()),
        ("with".to_owned(), "leads".to_owned()),
        ("limit".to_owned(), "50".to_owned()),
    ];
    let answer = client
        .call(Method::GET, "/api/v4/contacts", &q, None, cid)
        .await?;
    Ok(embedded_list::<ApiContact>(answer, "contacts")?
        .into_iter()
        .map(CrmContact::from)
        .collect())
}

/// `GET /api/v4/leads?filter[id][]=…&with=contacts`, in pages of 50 ids.
pub async fn deals_by_id(
    client: &AmoClient,
    ids: &[i64],
    cid: &str,
) -> Result<Vec<CrmDeal>, AmoError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(50) {
        let mut q: Vec<(String, String)> = chunk
            .iter()
            .map(|id| ("filter[id][]".to_owned(), id.to_string()))
            .collect();
        q.push(("with".into(), "contacts".into()));
        q.push(("limit".into(), "250".into()));
        let answer = client
            .call(Method::GET, "/api/v4/leads", &q, None, cid)
            .await?;
        out.extend(
            embedded_list::<ApiLead>(answer, "leads")?
                .into_iter()
                .map(CrmDeal::from),
        );
    }
    Ok(out)
}

/// `POST /api/v4/leads/complex` (≤ 50 items): deals with a new contact each. The answer is a
/// bare JSON array, unlike every other write endpoint.
pub async fn create_complex(
    client: &AmoClient,
    items: &[Value],
    cid: &str,
) -> Result<Vec<ComplexCreated>, AmoError> {
    let answer = client
        .call(
            Method::POST,
            "/api/v4/leads/complex",
            &[],
            Some(&Value::Array(items.to_vec())),
            cid,
        )
        .await?;
    let v = answer
        .ok_or_else(|| AmoError::Unexpected("leads/complex answered without a body".into()))?;
    serde_json::from_value(v)
        .map_err(|e| AmoError::Unexpected(format!("leads/complex answer: {e}")))
}

/// `POST /api/v4/leads` with an existing contact linked in `_embedded.contacts`.
pub async fn create_leads(
    client: &AmoClient,
    items: &[Value],
    cid: &str,
) -> Result<Vec<i64>, AmoError> {
    let answer = client
        .call(
            Method::POST,
            "/api/v4/leads",
            &[],
            Some(&Value::Array(items.to_vec())),
            cid,
        )
        .await?;
    Ok(embedded_list::<IdOnly>(answer, "leads")?
        .into_iter()
        .map(|l| l.id)
        .collect())
}

/// `PATCH /api/v4/leads` with an array of updates (each carries `id`).
pub async fn update_leads(client: &AmoClient, items: &[Value], cid: &str) -> Result<(), AmoError> {
    client
        .call(
            Method::PATCH,
            "/api/v4/leads",
            &[],
            Some(&Value::Array(items.to_vec())),
            cid,
        )
        .await
        .map(|_| ())
}

/// `POST /api/v4/leads/notes`: common notes, each with its `entity_id`.
pub async fn add_notes(
    client: &AmoClient,
    notes: &[(i64, String)],
    cid: &str,
) -> Result<(), AmoError> {
    let body: Vec<Value> = notes
        .iter()
        .map(|(lead, text)| json!({"entity_id": lead, "note_type": "common", "params": {"text": text}}))
        .collect();
    client
        .call(
            Method::POST,
            "/api/v4/leads/notes",
            &[],
            Some(&Value::Array(body)),
            cid,
        )
        .await
        .map(|_| ())
}

/// `GET /api/v4/leads/pipelines/{id}`; `None` if the account has no such pipeline.
pub async fn pipeline(
    client: &AmoClient,
    id: i64,
    cid: &str,
) -> Result<Option<Pipeline>, AmoError> {
    let answer = match client
        .call(
            Method::GET,
            &format!("/api/v4/leads/pipelines/{id}"),
            &[],
            None,
            cid,
        )
        .await
    {
        Ok(a) => a,
        Err(e) if e.is_status(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(v) = answer else { return Ok(None) };
    let p: ApiPipeline = serde_json::from_value(v)
        .map_err(|e| AmoError::Unexpected(format!("pipeline answer: {e}")))?;
    Ok(Some(Pipeline {
        id: p.id,
        name: p.name,
        stages: p
            .embedded
            .unwrap_or_default()
            .statuses
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect(),
    }))
}
