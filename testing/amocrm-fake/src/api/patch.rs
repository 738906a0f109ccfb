//! `PATCH leads`: stage moves, fields, and the two tag semantics (`tags_to_add`/`_delete`
//! mutate, `_embedded.tags` replaces).

use serde_json::{Map, Value, json};

use crate::model::*;
use crate::parse::*;
use crate::state::*;

use super::{bad_status, embedded};

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

impl State {
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
}
