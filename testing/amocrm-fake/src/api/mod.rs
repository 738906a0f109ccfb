//! `/api/v4/*` endpoint semantics over `State`, one file per kind of request the client makes:
//! reads (contact search, leads by id, a pipeline), lead creation (`leads`, `leads/complex`),
//! the lead `PATCH`, and notes. What more than one of them needs lives here.

mod create;
mod notes;
mod patch;
mod read;

use serde_json::{Map, Value};

use crate::model::Tag;
use crate::parse::TagRef;
use crate::state::{Errors, State};

fn embedded(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    obj.get("_embedded").and_then(Value::as_object)
}

/// The error AmoCRM gives for a pipeline or stage that does not exist (or not in that pipeline).
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
}
