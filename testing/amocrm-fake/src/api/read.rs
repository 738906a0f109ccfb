//! `GET contacts` (the fuzzy search), `GET leads` (by id), `GET leads/pipelines/{id}`, and the
//! HAL rendering and paging they share.

use serde_json::{Map, Value, json};

use crate::model::*;
use crate::parse::*;
use crate::state::*;

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
