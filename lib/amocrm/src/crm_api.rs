//! The core's `CrmApi` port on the AmoCRM client: our deal requests as AmoCRM JSON.

use async_trait::async_trait;
use landing_core::crm::{
    CreatedDeal, CrmContact, CrmDeal, CrmError, DealContact, DealUpdate, NewDeal,
};
use landing_core::ports::CrmApi;
use serde_json::{Value, json};

use crate::client::AmoClient;
use crate::endpoints;
use crate::error::AmoError;

/// The lead keeps the whole chain as its `crm_error`; whether it is retried follows the kind.
impl From<AmoError> for CrmError {
    fn from(e: AmoError) -> Self {
        let reason = landing_core::error_chain(&e);
        if e.is_transient() {
            CrmError::Transient(reason)
        } else {
            CrmError::Permanent(reason)
        }
    }
}

fn tags(names: &[String]) -> Vec<Value> {
    names.iter().map(|n| json!({"name": n})).collect()
}

/// UTM parameters into the deal's tracking fields (`UTM_SOURCE`, …, `UTM_REFERRER`).
fn tracking_fields(d: &NewDeal) -> Vec<Value> {
    let mut fields: Vec<Value> = d
        .utm
        .pairs()
        .map(|(k, v)| json!({"field_code": k.to_ascii_uppercase(), "values": [{"value": v}]}))
        .collect();
    if let Some(r) = &d.referrer {
        fields.push(json!({"field_code": "UTM_REFERRER", "values": [{"value": r}]}));
    }
    fields
}

fn deal_json(d: &NewDeal) -> Value {
    let mut v = json!({
        "name": d.name,
        "pipeline_id": d.pipeline_id,
        "request_id": d.request_id,
        "_embedded": {"tags": tags(&d.tags)},
    });
    if let Some(s) = d.status_id {
        v["status_id"] = json!(s);
    }
    let fields = tracking_fields(d);
    if !fields.is_empty() {
        v["custom_fields_values"] = Value::Array(fields);
    }
    match &d.contact {
        DealContact::Existing(id) => {
            v["_embedded"]["contacts"] = json!([{"id": id, "is_main": true}])
        }
        DealContact::New(c) => {
            let mut cf = vec![];
            if let Some(p) = &c.phone {
                cf.push(json!({"field_code": "PHONE", "values": [{"value": p.as_str(), "enum_code": "MOB"}]}));
            }
            if let Some(e) = &c.email {
                cf.push(json!({"field_code": "EMAIL", "values": [{"value": e.as_str(), "enum_code": "WORK"}]}));
            }
            v["_embedded"]["contacts"] = json!([{"name": c.name, "custom_fields_values": cf}]);
        }
    }
    v
}

#[async_trait]
impl CrmApi for AmoClient {
    async fn search_contacts(&self, query: &str, cid: &str) -> Result<Vec<CrmContact>, CrmError> {
        Ok(endpoints::search_contacts(self, query, cid).await?)
    }

    async fn deals_by_id(&self, ids: &[i64], cid: &str) -> Result<Vec<CrmDeal>, CrmError> {
        Ok(endpoints::deals_by_id(self, ids, cid).await?)
    }

    /// New contacts go through `leads/complex` (one call); deals for existing contacts through
    /// `POST /api/v4/leads` with the contact linked, since `complex` does not reliably link an
    /// existing contact.
    async fn create_deals(
        &self,
        deals: &[NewDeal],
        cid: &str,
    ) -> Result<Vec<CreatedDeal>, CrmError> {
        let mut out: Vec<Option<CreatedDeal>> = vec![None; deals.len()];
        let (new, existing): (Vec<(usize, &NewDeal)>, Vec<(usize, &NewDeal)>) = deals
            .iter()
            .enumerate()
            .partition(|(_, d)| matches!(d.contact, DealContact::New(_)));
        for chunk in new.chunks(50) {
            let body: Vec<Value> = chunk.iter().map(|(_, d)| deal_json(d)).collect();
            let created = endpoints::create_complex(self, &body, cid).await?;
            if created.len() != chunk.len() {
                return Err(CrmError::Transient(format!(
                    "leads/complex created {} of {} deals",
                    created.len(),
                    chunk.len()
                )));
            }
            for ((i, _), c) in chunk.iter().zip(created) {
                if let Some(slot) = out.get_mut(*i) {
                    *slot = Some(CreatedDeal {
                        deal_id: c.id,
                        contact_id: c.contact_id,
                    });
                }
            }
        }
        for chunk in existing.chunks(50) {
            let body: Vec<Value> = chunk.iter().map(|(_, d)| deal_json(d)).collect();
            let ids = endpoints::create_leads(self, &body, cid).await?;
            if ids.len() != chunk.len() {
                return Err(CrmError::Transient(format!(
                    "leads created {} of {} deals",
                    ids.len(),
                    chunk.len()
                )));
            }
            for ((i, d), id) in chunk.iter().zip(ids) {
                let contact = match d.contact {
                    DealContact::Existing(c) => Some(c),
                    DealContact::New(_) => None,
                };
                if let Some(slot) = out.get_mut(*i) {
                    *slot = Some(CreatedDeal {
                        deal_id: id,
                        contact_id: contact,
                    });
                }
            }
        }
        out.into_iter()
            .map(|c| c.ok_or_else(|| CrmError::Transient("a deal was not created".into())))
            .collect()
    }

    async fn update_deals(&self, updates: &[DealUpdate], cid: &str) -> Result<(), CrmError> {
        for chunk in updates.chunks(50) {
            let body: Vec<Value> = chunk
                .iter()
                .map(|u| {
                    // tags_to_add appends; `_embedded.tags` would replace every tag on the deal.
                    let mut v = json!({"id": u.deal_id, "tags_to_add": tags(&u.tags_to_add)});
                    if let Some((pipeline, status)) = u.stage {
                        v["pipeline_id"] = json!(pipeline);
                        v["status_id"] = json!(status);
                    }
                    v
                })
                .collect();
            endpoints::update_leads(self, &body, cid).await?;
        }
        Ok(())
    }

    async fn add_notes(&self, notes: &[(i64, String)], cid: &str) -> Result<(), CrmError> {
        for chunk in notes.chunks(50) {
            endpoints::add_notes(self, chunk, cid).await?;
        }
        Ok(())
    }
}
