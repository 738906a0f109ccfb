//! `POST leads` (deals for an existing contact) and `POST leads/complex` (deal + new contact).

use serde_json::{Map, Value, json};

use crate::model::*;
use crate::parse::*;
use crate::state::*;

use super::{bad_status, embedded};

/// A validated lead to be created.
struct LeadDraft {
    request_id: String,
    name: Option<String>,
    price: Option<i64>,
    pipeline_id: i64,
    status_id: i64,
    responsible_user_id: Option<i64>,
    loss_reason_id: Option<i64>,
    custom_fields: Vec<CustomField>,
    tags: Vec<TagRef>,
    contacts: Vec<LeadContact>,
    company_id: Option<i64>,
}

impl State {
    /// Parses the common part of a lead to create (`POST /leads` and `leads/complex`).
    fn parse_lead_create(
        &mut self,
        obj: &Map<String, Value>,
        rid: &str,
        errs: &mut Errors,
    ) -> Option<LeadDraft> {
        let before = errs.items.len();
        let name = str_field(obj, "name", "", rid, errs);
        let price = int_field(obj, "price", "", rid, errs);
        let responsible_user_id = int_field(obj, "responsible_user_id", "", rid, errs);
        let loss_reason_id = int_field(obj, "loss_reason_id", "", rid, errs);
        let pipe = int_field(obj, "pipeline_id", "", rid, errs);
        let status = int_field(obj, "status_id", "", rid, errs);
        let pipeline_id = match pipe {
            Some(p) if self.pipeline(p).is_some() => Some(p),
            Some(_) => {
                bad_status(errs, rid, "pipeline_id");
                None
            }
            None => self.main_pipeline().map(|p| p.id),
        };
        let mut status_id = None;
        if let Some(p) = pipeline_id {
            status_id = match status {
                Some(s) if self.stage_exists(p, s) => Some(s),
                Some(_) => {
                    bad_status(errs, rid, "status_id");
                    None
                }
                None => self.first_regular_stage(p),
            };
        }
        let custom = obj
            .get("custom_fields_values")
            .map(|v| custom_fields(self, false, v, "custom_fields_values", rid, errs))
            .unwrap_or_default();
        let emb = embedded(obj);
        let tags = match emb.and_then(|e| e.get("tags")) {
            Some(t) => tag_refs(t, "_embedded.tags", rid, &self.lead_tags, errs),
            None => obj
                .get("tags_to_add")
                .map(|t| tag_refs(t, "tags_to_add", rid, &self.lead_tags, errs))
                .unwrap_or_default(),
        };
        if errs.items.len() > before || errs.items.iter().any(|(r, _)| r == rid) {
            return None;
        }
        Some(LeadDraft {
            request_id: rid.to_owned(),
            name,
            price,
            pipeline_id: pipeline_id?,
            status_id: status_id?,
            responsible_user_id,
            loss_reason_id,
            custom_fields: custom,
            tags,
            contacts: Vec::new(),
            company_id: None,
        })
    }

    fn parse_contact_create(
        &mut self,
        obj: &Map<String, Value>,
        prefix: &str,
        rid: &str,
        errs: &mut Errors,
    ) -> ContactDraft {
        let name = str_field(obj, "name", prefix, rid, errs);
        let first_name = str_field(obj, "first_name", prefix, rid, errs).unwrap_or_default();
        let last_name = str_field(obj, "last_name", prefix, rid, errs).unwrap_or_default();
        let name = name
            .unwrap_or_else(|| format!("{first_name} {last_name}"))
            .trim()
            .to_owned();
        let cf_path = format!("{prefix}.custom_fields_values");
        let custom = obj
            .get("custom_fields_values")
            .map(|v| custom_fields(self, true, v, &cf_path, rid, errs))
            .unwrap_or_default();
        let tags = embedded(obj)
            .and_then(|e| e.get("tags"))
            .map(|t| tag_refs(t, "_embedded.tags", rid, &self.contact_tags, errs))
            .unwrap_or_default();
        ContactDraft {
            name,
            first_name,
            last_name,
            custom_fields: custom,
            tags,
        }
    }

    fn insert_lead(&mut self, d: LeadDraft) -> i64 {
        let now = self.now();
        let tags = self.create_tags(&d.tags);
        let id = self.next_lead_id;
        self.next_lead_id += 1;
        let closed = d.status_id == STATUS_WON || d.status_id == STATUS_LOST;
        let mut contacts = d.contacts;
        if !contacts.is_empty() && !contacts.iter().any(|c| c.is_main) {
            contacts[0].is_main = true;
        }
        self.leads.insert(
            id,
            Lead {
                id,
                name: d.name.unwrap_or_else(|| format!("Сделка #{id}")),
                price: d.price.unwrap_or(0),
                pipeline_id: d.pipeline_id,
                status_id: d.status_id,
                responsible_user_id: d.responsible_user_id.unwrap_or(504_141),
                loss_reason_id: if d.status_id == STATUS_LOST {
                    d.loss_reason_id
                } else {
                    None
                },
                contacts,
                company_id: d.company_id,
                tags,
                custom_fields: d.custom_fields,
                created_at: now,
                updated_at: now,
                closed_at: closed.then_some(now),
            },
        );
        id
    }

    /// `POST /api/v4/leads`.
    pub fn post_leads(&mut self, body: &[u8]) -> Reply {
        let items = match parse_batch(body, 250) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let mut errs = Errors::default();
        let mut drafts = Vec::new();
        for (i, o) in items.iter().enumerate() {
            let rid = request_id(o, i);
            let mut contacts = Vec::new();
            let mut company_id = None;
            if let Some(emb) = embedded(o) {
                if let Some(Value::Array(cs)) = emb.get("contacts") {
                    for (j, c) in cs.iter().enumerate() {
                        let p = format!("_embedded.contacts.{j}");
                        let Some(co) = c.as_object() else {
                            errs.push(
                                &rid,
                                "InvalidType",
                                &p,
                                "This value should be of type object.",
                            );
                            continue;
                        };
                        match int_field(co, "id", &p, &rid, &mut errs) {
                            Some(id) if self.contacts.contains_key(&id) => {
                                if !contacts.iter().any(|x: &LeadContact| x.id == id) {
                                    let is_main =
                                        co.get("is_main").and_then(Value::as_bool).unwrap_or(false);
                                    contacts.push(LeadContact { id, is_main });
                                }
                            }
                            Some(_) => {
                                errs.push(&rid, "NotFound", &format!("{p}.id"), "Contact not found")
                            }
                            None => errs.push(
                                &rid,
                                "NotBlank",
                                &format!("{p}.id"),
                                "This value should not be blank.",
                            ),
                        }
                    }
                }
                if let Some(Value::Array(cs)) = emb.get("companies")
                    && let Some(co) = cs.first().and_then(Value::as_object)
                {
                    company_id = int_field(co, "id", "_embedded.companies.0", &rid, &mut errs)
                        .filter(|id| self.companies.contains_key(id));
                }
            }
            if let Some(mut d) = self.parse_lead_create(o, &rid, &mut errs) {
                d.contacts = contacts;
                d.company_id = company_id;
                drafts.push(d);
            }
        }
        if !errs.is_empty() {
            return errs.reply();
        }
        let out: Vec<Value> = drafts
            .into_iter()
            .map(|d| {
                let rid = d.request_id.clone();
                let id = self.insert_lead(d);
                json!({"id": id, "request_id": rid,
                       "_links": self.link(&format!("/api/v4/leads/{id}"))})
            })
            .collect();
        Reply::hal(
            200,
            &json!({"_links": self.link("/api/v4/leads"), "_embedded": {"leads": out}}),
        )
    }

    /// Existing contact (created before this request) with the same phone (last 10 digits)
    /// or email (case-insensitive) — the "duplicate control" match.
    fn find_duplicate(&self, d: &ContactDraft) -> Option<i64> {
        let key = |f: &CustomField, v: &FieldValue| -> Option<String> {
            match f.field_code.as_deref() {
                Some("PHONE") => {
                    let dg = digits(&v.value);
                    (dg.len() >= 10).then(|| format!("p{}", &dg[dg.len() - 10..]))
                }
                Some("EMAIL") => Some(format!("e{}", v.value.trim().to_lowercase())),
                _ => None,
            }
        };
        let wanted: Vec<String> = d
            .custom_fields
            .iter()
            .flat_map(|f| f.values.iter().filter_map(move |v| key(f, v)))
            .collect();
        if wanted.is_empty() {
            return None;
        }
        self.contacts
            .values()
            .find(|c| {
                c.custom_fields
                    .iter()
                    .flat_map(|f| f.values.iter().filter_map(move |v| key(f, v)))
                    .any(|k| wanted.contains(&k))
            })
            .map(|c| c.id)
    }

    /// `POST /api/v4/leads/complex` → bare array.
    pub fn post_complex(&mut self, body: &[u8]) -> Reply {
        let items = match parse_batch(body, 50) {
            Ok(i) => i,
            Err(r) => return r,
        };
        enum Who {
            None,
            Existing(i64),
            New(ContactDraft),
        }
        let mut errs = Errors::default();
        let mut plans = Vec::new();
        for (i, o) in items.iter().enumerate() {
            let rid = request_id(o, i);
            let mut who = Who::None;
            let mut company_name = None;
            let mut incoming = false;
            if let Some(emb) = embedded(o) {
                match emb.get("contacts") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(cs)) if cs.len() > 1 => errs.push(
                        &rid,
                        "TooManyItems",
                        "_embedded.contacts",
                        "Only one contact per lead is allowed.",
                    ),
                    Some(Value::Array(cs)) => {
                        if let Some(c) = cs.first() {
                            let p = "_embedded.contacts.0";
                            match c.as_object() {
                                None => errs.push(
                                    &rid,
                                    "InvalidType",
                                    p,
                                    "This value should be of type object.",
                                ),
                                Some(co) if co.get("id").is_some_and(|v| !v.is_null()) => {
                                    match int_field(co, "id", p, &rid, &mut errs) {
                                        Some(id) if self.contacts.contains_key(&id) => {
                                            who = Who::Existing(id)
                                        }
                                        Some(_) => errs.push(
                                            &rid,
                                            "NotFound",
                                            &format!("{p}.id"),
                                            "Contact not found",
                                        ),
                                        None => {}
                                    }
                                }
                                Some(co) => {
                                    who =
                                        Who::New(self.parse_contact_create(co, p, &rid, &mut errs))
                                }
                            }
                        }
                    }
                    Some(_) => errs.push(
                        &rid,
                        "InvalidType",
                        "_embedded.contacts",
                        "This value should be of type array.",
                    ),
                }
                if let Some(Value::Array(cs)) = emb.get("companies") {
                    if cs.len() > 1 {
                        errs.push(
                            &rid,
                            "TooManyItems",
                            "_embedded.companies",
                            "Only one company per lead is allowed.",
                        );
                    }
                    // Reported behaviour: an existing company given by id is not linked.
                    if let Some(co) = cs.first().and_then(Value::as_object)
                        && co.get("id").is_none_or(Value::is_null)
                    {
                        company_name = Some(
                            co.get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        );
                    }
                }
                incoming = emb.get("metadata").is_some_and(|m| !m.is_null());
            }
            if let Some(mut d) = self.parse_lead_create(o, &rid, &mut errs) {
                if incoming && let Some(s) = self.incoming_stage(d.pipeline_id) {
                    d.status_id = s;
                }
                plans.push((d, who, company_name));
            }
        }
        if !errs.is_empty() {
            return errs.reply();
        }
        // Duplicate control compares with contacts that existed before this request only.
        let dups: Vec<Option<i64>> = plans
            .iter()
            .map(|(_, who, _)| match who {
                Who::New(c) if self.cfg.duplicate_control => self.find_duplicate(c),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for ((mut d, who, company_name), dup) in plans.into_iter().zip(dups) {
            let rid = d.request_id.clone();
            let merged = dup.is_some();
            let contact_id = match (who, dup) {
                (_, Some(existing)) => Some(existing),
                (Who::Existing(id), None) => Some(id),
                (Who::New(c), None) => Some(self.insert_contact(c)),
                (Who::None, None) => None,
            };
            let company_id = company_name.map(|n| {
                let id = self.next_company_id;
                self.next_company_id += 1;
                self.companies.insert(id, n);
                id
            });
            // Duplicate control: merge into the contact's open lead in the same pipeline.
            let open_lead = dup.and_then(|cid| {
                self.leads
                    .values()
                    .filter(|l| {
                        l.pipeline_id == d.pipeline_id
                            && !l.is_closed()
                            && l.contacts.iter().any(|c| c.id == cid)
                    })
                    .max_by_key(|l| (l.updated_at, l.id))
                    .map(|l| l.id)
            });
            let lead_id = match open_lead {
                Some(lid) => {
                    let tags = self.create_tags(&d.tags);
                    let now = self.now();
                    let l = self.leads.get_mut(&lid).expect("lead exists");
                    for t in tags {
                        if !l.tags.iter().any(|x| x.id == t.id) {
                            l.tags.push(t);
                        }
                    }
                    merge_fields(&mut l.custom_fields, d.custom_fields);
                    l.updated_at = now;
                    lid
                }
                None => {
                    d.contacts = contact_id
                        .map(|id| LeadContact { id, is_main: true })
                        .into_iter()
                        .collect();
                    d.company_id = company_id;
                    self.insert_lead(d)
                }
            };
            out.push(json!({
                "id": lead_id,
                "contact_id": contact_id,
                "company_id": company_id,
                "request_id": [rid],
                "merged": merged,
            }));
        }
        Reply::hal(200, &Value::Array(out))
    }
}
