//! `/api/v4/*` endpoint semantics over `State`.

use serde_json::{Map, Value, json};

use crate::model::*;
use crate::parse::*;
use crate::state::*;

const NOTE_TYPES: &[&str] = &[
    "common",
    "call_in",
    "call_out",
    "service_message",
    "extended_service_message",
    "message_cashier",
    "geolocation",
    "sms_in",
    "sms_out",
    "attachment",
];

// ---------------------------------------------------------------- rendering

impl State {
    pub fn render_contact(&self, c: &Contact, with_leads: bool) -> Value {
        let mut embedded = Map::new();
        embedded.insert("tags".into(), render_tags(&c.tags));
        if with_leads {
            let leads: Vec<Value> = self
                .lead_ids_of(c.id)
                .into_iter()
                .map(|id| json!({"id": id, "_links": self.link(&format!("/api/v4/leads/{id}"))}))
                .collect();
            embedded.insert("leads".into(), Value::Array(leads));
        }
        embedded.insert("companies".into(), json!([]));
        json!({
            "id": c.id,
            "name": c.name,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "responsible_user_id": 504_141,
            "group_id": 0,
            "created_by": 504_141,
            "updated_by": 504_141,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "closest_task_at": null,
            "is_deleted": false,
            "is_unsorted": false,
            "custom_fields_values": render_fields(&c.custom_fields),
            "account_id": self.cfg.account_id,
            "_links": self.link(&format!("/api/v4/contacts/{}", c.id)),
            "_embedded": Value::Object(embedded),
        })
    }

    pub fn render_lead(&self, l: &Lead, with_contacts: bool) -> Value {
        let mut embedded = Map::new();
        embedded.insert("tags".into(), render_tags(&l.tags));
        let companies: Vec<Value> = l
            .company_id
            .map(|id| json!({"id": id, "_links": self.link(&format!("/api/v4/companies/{id}"))}))
            .into_iter()
            .collect();
        embedded.insert("companies".into(), Value::Array(companies));
        if with_contacts {
            let contacts: Vec<Value> = l
                .contacts
                .iter()
                .map(|c| {
                    json!({"id": c.id, "is_main": c.is_main,
                           "_links": self.link(&format!("/api/v4/contacts/{}", c.id))})
                })
                .collect();
            embedded.insert("contacts".into(), Value::Array(contacts));
        }
        json!({
            "id": l.id,
            "name": l.name,
            "price": l.price,
            "responsible_user_id": l.responsible_user_id,
            "group_id": 0,
            "status_id": l.status_id,
            "pipeline_id": l.pipeline_id,
            "loss_reason_id": l.loss_reason_id,
            "created_by": 0,
            "updated_by": 0,
            "created_at": l.created_at,
            "updated_at": l.updated_at,
            "closed_at": l.closed_at,
            "closest_task_at": null,
            "is_deleted": false,
            "custom_fields_values": render_fields(&l.custom_fields),
            "score": null,
            "account_id": self.cfg.account_id,
            "labor_cost": null,
            "_links": self.link(&format!("/api/v4/leads/{}", l.id)),
            "_embedded": Value::Object(embedded),
        })
    }

    fn render_pipeline(&self, p: &PipelineConfig) -> Value {
        let statuses: Vec<Value> = p
            .stages
            .iter()
            .map(|s| {
                let (ty, editable, color) = match s.kind {
                    StageKind::Incoming => (1, false, "#c1c1c1"),
                    StageKind::Regular => (0, true, "#99ccff"),
                    StageKind::Won => (0, false, "#CCFF66"),
                    StageKind::Lost => (0, false, "#D5D8DB"),
                };
                json!({
                    "id": s.id,
                    "name": s.name,
                    "sort": s.sort,
                    "is_editable": editable,
                    "pipeline_id": p.id,
                    "color": color,
                    "type": ty,
                    "account_id": self.cfg.account_id,
                    "_links": self.link(&format!("/api/v4/leads/pipelines/{}/statuses/{}", p.id, s.id)),
                })
            })
            .collect();
        json!({
            "id": p.id,
            "name": p.name,
            "sort": 1,
            "is_main": p.is_main,
            "is_unsorted_on": p.stages.iter().any(|s| s.kind == StageKind::Incoming),
            "is_archive": false,
            "account_id": self.cfg.account_id,
            "_links": self.link(&format!("/api/v4/leads/pipelines/{}", p.id)),
            "_embedded": {"statuses": statuses},
        })
    }

    fn page_url(&self, path: &str, pairs: &Pairs, page: usize, limit: usize) -> String {
        let mut q: Pairs = pairs
            .iter()
            .filter(|(k, _)| k != "page" && k != "limit")
            .cloned()
            .collect();
        q.push(("limit".into(), limit.to_string()));
        q.push(("page".into(), page.to_string()));
        let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
        format!("{}{}?{}", self.base_url, path, qs)
    }

    /// HAL page of `ids` rendered by `render`; 204 when the page is empty.
    fn paged(
        &self,
        path: &str,
        pairs: &Pairs,
        key: &str,
        ids: &[i64],
        render: impl Fn(&Self, i64) -> Value,
    ) -> Reply {
        let (page, limit) = page_limit(pairs);
        let start = (page - 1).saturating_mul(limit);
        if start >= ids.len() {
            return Reply::no_content();
        }
        let end = (start + limit).min(ids.len());
        let items: Vec<Value> = ids[start..end].iter().map(|id| render(self, *id)).collect();
        let mut links = Map::new();
        links.insert(
            "self".into(),
            json!({"href": self.page_url(path, pairs, page, limit)}),
        );
        if end < ids.len() {
            links.insert(
                "next".into(),
                json!({"href": self.page_url(path, pairs, page + 1, limit)}),
            );
        }
        if page > 1 {
            links.insert(
                "first".into(),
                json!({"href": self.page_url(path, pairs, 1, limit)}),
            );
            links.insert(
                "prev".into(),
                json!({"href": self.page_url(path, pairs, page - 1, limit)}),
            );
        }
        Reply::hal(
            200,
            &json!({"_page": page, "_links": Value::Object(links), "_embedded": {key: items}}),
        )
    }
}

// ---------------------------------------------------------------- reading

fn phoneish(q: &str) -> bool {
    q.chars().any(|c| c.is_ascii_digit())
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

/// Fuzzy "search over filled fields": name / any value substring (case-insensitive), and for a
/// phone-like query its digits as a substring of the digits of *any* field value.
fn contact_matches(c: &Contact, q: &str) -> bool {
    let ql = q.to_lowercase();
    if c.name.to_lowercase().contains(&ql)
        || c.first_name.to_lowercase().contains(&ql)
        || c.last_name.to_lowercase().contains(&ql)
    {
        return true;
    }
    let qd = if phoneish(q) {
        digits(q)
    } else {
        String::new()
    };
    c.custom_fields.iter().flat_map(|f| &f.values).any(|v| {
        v.value.to_lowercase().contains(&ql) || (!qd.is_empty() && digits(&v.value).contains(&qd))
    })
}

/// `filter[id][]=1`, `filter[id][0]=1`, `filter[id]=1,2`; `None` when there is no id filter.
fn filter_ids(pairs: &Pairs) -> Option<Vec<i64>> {
    let is_id_filter = |k: &str| {
        let (base, segs) = split_key(k);
        base == "filter" && segs.first().map(String::as_str) == Some("id") && segs.len() <= 2
    };
    let mut present = false;
    let mut ids = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| is_id_filter(k)) {
        present = true;
        ids.extend(v.split(',').filter_map(|x| x.trim().parse::<i64>().ok()));
    }
    present.then_some(ids)
}

// Only the query parameters the client sends are understood (query, with, limit/page, and
// filter[id] on leads); emulating AmoCRM's other filters would be code no test relies on.
impl State {
    pub fn get_contacts(&self, pairs: &Pairs) -> Reply {
        let q = param(pairs, "query").map(str::trim).unwrap_or("");
        let ids: Vec<i64> = self
            .contacts
            .values()
            .filter(|c| q.is_empty() || contact_matches(c, q))
            .map(|c| c.id)
            .collect();
        let with_leads = with_set(pairs).iter().any(|w| w == "leads");
        self.paged("/api/v4/contacts", pairs, "contacts", &ids, |st, id| {
            st.render_contact(&st.contacts[&id], with_leads)
        })
    }

    pub fn get_leads(&self, pairs: &Pairs) -> Reply {
        let with_contacts = with_set(pairs).iter().any(|w| w == "contacts");
        let wanted = filter_ids(pairs);
        let ids: Vec<i64> = self
            .leads
            .keys()
            .copied()
            .filter(|id| wanted.as_ref().is_none_or(|w| w.contains(id)))
            .collect();
        self.paged("/api/v4/leads", pairs, "leads", &ids, |st, id| {
            st.render_lead(&st.leads[&id], with_contacts)
        })
    }

    pub fn get_pipeline(&self, id: i64) -> Reply {
        match self.pipeline(id) {
            Some(p) => Reply::hal(200, &self.render_pipeline(p)),
            None => Reply::not_found(),
        }
    }
}

// ---------------------------------------------------------------- writing

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

enum TagsOp {
    Keep,
    Replace(Vec<TagRef>),
    Mutate {
        add: Vec<TagRef>,
        delete: Vec<TagRef>,
    },
}

struct LeadPatch {
    id: i64,
    request_id: Option<String>,
    name: Option<String>,
    price: Option<i64>,
    placement: Option<(i64, i64)>,
    responsible_user_id: Option<i64>,
    loss_reason_id: Option<i64>,
    custom_fields: Option<Vec<CustomField>>,
    tags: TagsOp,
}

fn embedded(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    obj.get("_embedded").and_then(Value::as_object)
}

fn bad_status(errs: &mut Errors, rid: &str, path: &str) {
    errs.push(
        rid,
        "NotSupportedChoice",
        path,
        "The value you selected is not a valid choice.",
    );
}

impl State {
    fn tag_list(&self, refs: &[TagRef]) -> Vec<Tag> {
        let mut out: Vec<Tag> = Vec::new();
        for r in refs {
            let t = match r {
                TagRef::Id(id) => self.lead_tags.iter().find(|t| t.id == *id).cloned(),
                TagRef::Name(n) => self.lead_tags.iter().find(|t| &t.name == n).cloned(),
            };
            if let Some(t) = t
                && !out.iter().any(|o| o.id == t.id)
            {
                out.push(t);
            }
        }
        out
    }

    fn create_tags(&mut self, refs: &[TagRef]) -> Vec<Tag> {
        for r in refs {
            if let TagRef::Name(n) = r {
                self.lead_tag(n);
            }
        }
        self.tag_list(refs)
    }

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

    fn parse_patch(
        &mut self,
        obj: &Map<String, Value>,
        id: i64,
        rid: &str,
        errs: &mut Errors,
    ) -> Option<LeadPatch> {
        let Some(cur) = self.leads.get(&id) else {
            errs.push(rid, "NotFound", "id", "Lead not found");
            return None;
        };
        let (cur_pipe, cur_status) = (cur.pipeline_id, cur.status_id);
        let name = str_field(obj, "name", "", rid, errs);
        let price = int_field(obj, "price", "", rid, errs);
        let responsible_user_id = int_field(obj, "responsible_user_id", "", rid, errs);
        let loss_reason_id = int_field(obj, "loss_reason_id", "", rid, errs);
        let pipe = int_field(obj, "pipeline_id", "", rid, errs);
        let status = int_field(obj, "status_id", "", rid, errs);
        let placement = match (pipe, status) {
            (None, None) => None,
            (Some(p), _) if self.pipeline(p).is_none() => {
                bad_status(errs, rid, "pipeline_id");
                None
            }
            (p, Some(s)) => {
                let p = p.unwrap_or(cur_pipe);
                if self.stage_exists(p, s) {
                    Some((p, s))
                } else {
                    bad_status(errs, rid, "status_id");
                    None
                }
            }
            (Some(p), None) if p == cur_pipe => Some((p, cur_status)),
            (Some(p), None) => self.first_regular_stage(p).map(|s| (p, s)),
        };
        let custom = obj
            .get("custom_fields_values")
            .map(|v| custom_fields(self, false, v, "custom_fields_values", rid, errs));
        let tags = match embedded(obj).and_then(|e| e.get("tags")) {
            Some(t) => TagsOp::Replace(tag_refs(t, "_embedded.tags", rid, &self.lead_tags, errs)),
            None => {
                let add = obj
                    .get("tags_to_add")
                    .map(|t| tag_refs(t, "tags_to_add", rid, &self.lead_tags, errs));
                let delete = obj
                    .get("tags_to_delete")
                    .map(|t| tag_refs(t, "tags_to_delete", rid, &self.lead_tags, errs));
                if add.is_none() && delete.is_none() {
                    TagsOp::Keep
                } else {
                    TagsOp::Mutate {
                        add: add.unwrap_or_default(),
                        delete: delete.unwrap_or_default(),
                    }
                }
            }
        };
        Some(LeadPatch {
            id,
            request_id: obj.get("request_id").map(|_| rid.to_owned()),
            name,
            price,
            placement,
            responsible_user_id,
            loss_reason_id,
            custom_fields: custom,
            tags,
        })
    }

    fn apply_patch(&mut self, p: LeadPatch) -> Value {
        let now = self.now();
        let (replace, add, delete) = match &p.tags {
            TagsOp::Keep => (None, Vec::new(), Vec::new()),
            TagsOp::Replace(r) => (Some(self.create_tags(r)), Vec::new(), Vec::new()),
            TagsOp::Mutate { add, delete } => (None, self.create_tags(add), self.tag_list(delete)),
        };
        let l = self.leads.get_mut(&p.id).expect("validated");
        if let Some(n) = p.name {
            l.name = n;
        }
        if let Some(pr) = p.price {
            l.price = pr;
        }
        if let Some(r) = p.responsible_user_id {
            l.responsible_user_id = r;
        }
        if let Some((pipe, status)) = p.placement {
            let was_closed = l.is_closed();
            l.pipeline_id = pipe;
            l.status_id = status;
            if l.is_closed() {
                if !was_closed || l.closed_at.is_none() {
                    l.closed_at = Some(now);
                }
            } else {
                l.closed_at = None;
            }
        }
        if l.status_id == STATUS_LOST {
            if p.loss_reason_id.is_some() {
                l.loss_reason_id = p.loss_reason_id;
            }
        } else {
            l.loss_reason_id = None;
        }
        if let Some(cf) = p.custom_fields {
            merge_fields(&mut l.custom_fields, cf);
        }
        if let Some(tags) = replace {
            l.tags = tags;
        }
        for t in add {
            if !l.tags.iter().any(|x| x.id == t.id) {
                l.tags.push(t);
            }
        }
        l.tags.retain(|t| !delete.iter().any(|d| d.id == t.id));
        l.updated_at = now;
        let mut out = json!({"id": l.id, "updated_at": l.updated_at,
                             "_links": self.link(&format!("/api/v4/leads/{}", p.id))});
        if let Some(rid) = p.request_id {
            out["request_id"] = Value::String(rid);
        }
        out
    }

    /// `PATCH /api/v4/leads` (array, each with `id`).
    pub fn patch_leads(&mut self, body: &[u8]) -> Reply {
        let items = match parse_batch(body, 250) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let mut errs = Errors::default();
        let mut patches = Vec::new();
        for (i, o) in items.iter().enumerate() {
            let rid = request_id(o, i);
            match int_field(o, "id", "", &rid, &mut errs) {
                Some(id) => {
                    if let Some(p) = self.parse_patch(o, id, &rid, &mut errs) {
                        patches.push(p);
                    }
                }
                None if !o.contains_key("id") || o["id"].is_null() => {
                    errs.push(&rid, "NotBlank", "id", "This value should not be blank.")
                }
                None => {}
            }
        }
        if !errs.is_empty() {
            return errs.reply();
        }
        let out: Vec<Value> = patches.into_iter().map(|p| self.apply_patch(p)).collect();
        Reply::hal(
            200,
            &json!({"_links": self.link("/api/v4/leads"), "_embedded": {"leads": out}}),
        )
    }

    /// `POST /api/v4/leads/notes` (each note names its lead in `entity_id`).
    pub fn post_notes(&mut self, body: &[u8]) -> Reply {
        let items = match parse_batch(body, 250) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let mut errs = Errors::default();
        let mut plans = Vec::new();
        for (i, o) in items.iter().enumerate() {
            let rid = request_id(o, i);
            let entity_id = match int_field(o, "entity_id", "", &rid, &mut errs) {
                Some(id) if self.leads.contains_key(&id) => Some(id),
                Some(_) => {
                    errs.push(&rid, "NotFound", "entity_id", "Lead not found");
                    None
                }
                None => {
                    errs.push(
                        &rid,
                        "NotBlank",
                        "entity_id",
                        "This value should not be blank.",
                    );
                    None
                }
            };
            let note_type = str_field(o, "note_type", "", &rid, &mut errs);
            match note_type.as_deref() {
                None => errs.push(
                    &rid,
                    "NotBlank",
                    "note_type",
                    "This value should not be blank.",
                ),
                Some(t) if !NOTE_TYPES.contains(&t) => errs.push(
                    &rid,
                    "NotSupportedChoice",
                    "note_type",
                    "The value you selected is not a valid choice.",
                ),
                _ => {}
            }
            let params = o.get("params").cloned().unwrap_or(Value::Null);
            if matches!(note_type.as_deref(), Some("common" | "service_message"))
                && params
                    .get("text")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t.trim().is_empty())
            {
                errs.push(
                    &rid,
                    "NotBlank",
                    "params.text",
                    "This value should not be blank.",
                );
            }
            if let (Some(eid), Some(t)) = (entity_id, note_type) {
                plans.push((rid, eid, t, params));
            }
        }
        if !errs.is_empty() {
            return errs.reply();
        }
        let mut out = Vec::new();
        for (rid, eid, note_type, params) in plans {
            let id = self.next_note_id;
            self.next_note_id += 1;
            self.notes.push(Note {
                id,
                entity_id: eid,
                note_type,
                params,
            });
            out.push(json!({"id": id, "entity_id": eid, "request_id": rid,
                            "_links": self.link(&format!("/api/v4/leads/{eid}/notes/{id}"))}));
        }
        Reply::hal(
            200,
            &json!({"_links": self.link("/api/v4/leads/notes"), "_embedded": {"notes": out}}),
        )
    }
}
