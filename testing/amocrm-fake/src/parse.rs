//! Request parsing helpers: query strings, bracketed filter keys, typed JSON fields,
//! custom field values and tag references (all validated into `Errors`).

use serde_json::{Map, Value};

use crate::model::{CustomField, FieldDef, FieldValue, Tag};
use crate::state::{Errors, Reply, State};

pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn query_pairs(query: &str) -> Pairs {
    serde_urlencoded::from_str::<Pairs>(query).unwrap_or_default()
}

pub(crate) fn param<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `with=leads,contacts` (also repeated `with=`).
pub(crate) fn with_set(pairs: &Pairs) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "with")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// `filter[statuses][0][pipeline_id]` → (`filter`, [`statuses`, `0`, `pipeline_id`]).
pub(crate) fn split_key(key: &str) -> (String, Vec<String>) {
    match key.find('[') {
        None => (key.to_owned(), Vec::new()),
        Some(i) => {
            let base = key[..i].to_owned();
            let mut segs = Vec::new();
            let mut rest = &key[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                match stripped.find(']') {
                    Some(j) => {
                        segs.push(stripped[..j].to_owned());
                        rest = &stripped[j + 1..];
                    }
                    None => break,
                }
            }
            (base, segs)
        }
    }
}

/// (page ≥ 1, limit in 1..=250, default 50).
pub(crate) fn page_limit(pairs: &Pairs) -> (usize, usize) {
    let page = param(pairs, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let limit = param(pairs, "limit")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|l| *l >= 1)
        .unwrap_or(50)
        .min(250);
    (page, limit)
}

fn parse_json(body: &[u8]) -> Result<Value, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::bad_request("Request body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| Reply::bad_request(&format!("Invalid JSON: {e}")))
}

/// A batch body must be a non-empty JSON array of objects, at most `max` items.
pub(crate) fn parse_batch(body: &[u8], max: usize) -> Result<Vec<Map<String, Value>>, Reply> {
    let v = parse_json(body)?;
    let Value::Array(items) = v else {
        return Err(Reply::bad_request("Request body must be an array"));
    };
    if items.is_empty() {
        return Err(Reply::bad_request("Request body must not be empty"));
    }
    if items.len() > max {
        let mut errs = Errors::default();
        errs.push(
            "0",
            "TooManyItems",
            "",
            &format!("Too many entities in one request: {} > {max}", items.len()),
        );
        return Err(errs.reply());
    }
    items
        .into_iter()
        .map(|i| match i {
            Value::Object(m) => Ok(m),
            _ => Err(Reply::bad_request("Each item must be an object")),
        })
        .collect()
}

pub(crate) fn request_id(obj: &Map<String, Value>, idx: usize) -> String {
    match obj.get("request_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => idx.to_string(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Optional integer; anything but an integer or null is a validation error.
pub(crate) fn int_field(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    rid: &str,
    errs: &mut Errors,
) -> Option<i64> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            errs.push(
                rid,
                "InvalidType",
                &join(prefix, key),
                "This value should be of type int.",
            );
            None
        }
    }
}

/// Optional string; anything but a string or null is a validation error.
pub(crate) fn str_field(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    rid: &str,
    errs: &mut Errors,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(
                rid,
                "InvalidType",
                &join(prefix, key),
                "This value should be of type string.",
            );
            None
        }
    }
}

/// A tag reference: `{"id": …}` or `{"name": …}`.
#[derive(Debug, Clone)]
pub(crate) enum TagRef {
    Id(i64),
    Name(String),
}

/// Parses a tag array (`null` = empty); ids must exist in `registry`.
pub(crate) fn tag_refs(
    v: &Value,
    path: &str,
    rid: &str,
    registry: &[Tag],
    errs: &mut Errors,
) -> Vec<TagRef> {
    let items = match v {
        Value::Null => return Vec::new(),
        Value::Array(a) => a,
        _ => {
            errs.push(
                rid,
                "InvalidType",
                path,
                "This value should be of type array.",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}.{i}");
        let Value::Object(o) = item else {
            errs.push(
                rid,
                "InvalidType",
                &p,
                "This value should be of type object.",
            );
            continue;
        };
        if let Some(id) = int_field(o, "id", &p, rid, errs) {
            if registry.iter().any(|t| t.id == id) {
                out.push(TagRef::Id(id));
            } else {
                errs.push(rid, "NotFound", &format!("{p}.id"), "Tag not found");
            }
        } else if let Some(name) = str_field(o, "name", &p, rid, errs) {
            let name = name.trim().to_owned();
            if name.is_empty() {
                errs.push(
                    rid,
                    "NotBlank",
                    &format!("{p}.name"),
                    "This value should not be blank.",
                );
            } else {
                out.push(TagRef::Name(name));
            }
        } else if !o.contains_key("id") && !o.contains_key("name") {
            errs.push(rid, "NotBlank", &p, "Tag must have either an id or a name.");
        }
    }
    out
}

/// Parses `custom_fields_values` against the field definitions of leads or contacts.
pub(crate) fn custom_fields(
    st: &mut State,
    contacts: bool,
    v: &Value,
    path: &str,
    rid: &str,
    errs: &mut Errors,
) -> Vec<CustomField> {
    let items = match v {
        Value::Null => return Vec::new(),
        Value::Array(a) => a,
        _ => {
            errs.push(
                rid,
                "InvalidType",
                path,
                "This value should be of type array.",
            );
            return Vec::new();
        }
    };
    let mut out: Vec<CustomField> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}.{i}");
        let Value::Object(o) = item else {
            errs.push(
                rid,
                "InvalidType",
                &p,
                "This value should be of type object.",
            );
            continue;
        };
        let field_id = int_field(o, "field_id", &p, rid, errs);
        let field_code = str_field(o, "field_code", &p, rid, errs);
        let defs = if contacts {
            &st.contact_fields
        } else {
            &st.lead_fields
        };
        let found = match (field_id, &field_code) {
            (Some(id), _) => defs.iter().find(|d| d.id == id).cloned(),
            (None, Some(code)) => defs
                .iter()
                .find(|d| d.code.as_deref() == Some(code.as_str()))
                .cloned(),
            (None, None) => {
                errs.push(
                    rid,
                    "NotBlank",
                    &format!("{p}.field_id"),
                    "Either field_id or field_code is required.",
                );
                continue;
            }
        };
        let def = match found {
            Some(d) => d,
            None if !st.cfg.strict_custom_fields => {
                let id = field_id.unwrap_or(st.next_field_id);
                st.next_field_id = st.next_field_id.max(id) + 1;
                let name = field_code.clone().unwrap_or_else(|| format!("Поле {id}"));
                let d = FieldDef::text(id, field_code.as_deref(), &name);
                if contacts {
                    st.contact_fields.push(d.clone());
                } else {
                    st.lead_fields.push(d.clone());
                }
                d
            }
            None => {
                let key = if field_id.is_some() {
                    "field_id"
                } else {
                    "field_code"
                };
                errs.push(
                    rid,
                    "NotSupportedChoice",
                    &format!("{p}.{key}"),
                    "The value you selected is not a valid choice.",
                );
                continue;
            }
        };
        let values = match o.get("values") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                errs.push(
                    rid,
                    "InvalidType",
                    &format!("{p}.values"),
                    "This value should be of type array.",
                );
                continue;
            }
        };
        let mut parsed = Vec::new();
        for (j, val) in values.iter().enumerate() {
            let vp = format!("{p}.values.{j}");
            let Value::Object(vo) = val else {
                errs.push(
                    rid,
                    "InvalidType",
                    &vp,
                    "This value should be of type object.",
                );
                continue;
            };
            let value = match vo.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => {
                    errs.push(
                        rid,
                        "NotBlank",
                        &format!("{vp}.value"),
                        "This value should not be blank.",
                    );
                    continue;
                }
            };
            let (mut enum_id, mut enum_code) = (None, None);
            if def.field_type == "multitext" {
                let want_id = int_field(vo, "enum_id", &vp, rid, errs);
                let want_code = str_field(vo, "enum_code", &vp, rid, errs)
                    .or_else(|| str_field(vo, "enum", &vp, rid, errs));
                let hit = match (want_id, &want_code) {
                    (Some(id), _) => def.enums.iter().find(|(eid, _)| *eid == id),
                    (None, Some(code)) => def.enums.iter().find(|(_, c)| c == code),
                    (None, None) => def.enums.first(),
                };
                match hit {
                    Some((eid, code)) => {
                        enum_id = Some(*eid);
                        enum_code = Some(code.clone());
                    }
                    None if def.enums.is_empty() => {}
                    None => {
                        let key = if want_id.is_some() {
                            "enum_id"
                        } else {
                            "enum_code"
                        };
                        errs.push(
                            rid,
                            "NotSupportedChoice",
                            &format!("{vp}.{key}"),
                            "The value you selected is not a valid choice.",
                        );
                        continue;
                    }
                }
            }
            parsed.push(FieldValue {
                value,
                enum_id,
                enum_code,
            });
        }
        out.retain(|f| f.field_id != def.id);
        out.push(CustomField {
            field_id: def.id,
            field_code: def.code.clone(),
            field_name: def.name.clone(),
            field_type: def.field_type.clone(),
            values: parsed,
        });
    }
    out
}

/// Replaces the given fields' values (empty values remove the field), keeps the others.
pub(crate) fn merge_fields(existing: &mut Vec<CustomField>, update: Vec<CustomField>) {
    for f in update {
        match existing.iter_mut().position(|e| e.field_id == f.field_id) {
            Some(i) if f.values.is_empty() => {
                existing.remove(i);
            }
            Some(i) => existing[i] = f,
            None if f.values.is_empty() => {}
            None => existing.push(f),
        }
    }
}
