//! `POST leads/notes`.

use serde_json::{Value, json};

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

impl State {
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
