//! From request bytes to a validated [`Submission`]: body decoding per content type, field
//! extraction (camelCase with snake_case aliases), per-field validation and attribution.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::{
    Contact, Email, EmailError, Form, PaymentMethod, PersonName, Phone, PhoneError, Slug,
    SourceCampaign, Utm,
};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_TEXT_FIELD: usize = 512;

/// Body fields that carry the `Idempotency-Key` for clients that cannot set headers
/// (`navigator.sendBeacon`). They are about the request, not the lead: a submission ignores
/// them and the payload hash leaves them out.
pub const IDEMPOTENCY_KEY_FIELDS: [&str; 2] = ["idempotencyKey", "idempotency_key"];

/// Why a body could not be read at all (before any field is looked at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error(
        "unsupported content type; send application/json, application/x-www-form-urlencoded or text/plain holding JSON"
    )]
    UnsupportedMediaType,
    #[error("{0}")]
    Malformed(String),
}

/// Field name → what is wrong with it, in the names the landing pages use.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

fn body_kind(content_type: Option<&str>) -> Result<BodyKind, BodyError> {
    let Some(ct) = content_type else {
        // No content type at all: old pages and some beacons send JSON without one. Treat it as
        // JSON rather than refusing a lead; a non-JSON body then gets a clear 400.
        return Ok(BodyKind::Json);
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/plain" | "" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(BodyKind::Json),
        _ => Err(BodyError::UnsupportedMediaType),
    }
}

/// Decodes the body into a flat JSON object. Form bodies become an object of strings, with a
/// `metadata` field holding JSON text decoded into an object.
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    let kind = body_kind(content_type)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| BodyError::Malformed("request body is not valid UTF-8".to_owned()))?;
    match kind {
        BodyKind::Json => {
            if text.trim().is_empty() {
                return Err(BodyError::Malformed("request body is empty".to_owned()));
            }
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(BodyError::Malformed(
                    "request body must be a JSON object".to_owned(),
                )),
                Err(e) => Err(BodyError::Malformed(format!(
                    "request body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ))),
            }
        }
        BodyKind::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|_| {
                BodyError::Malformed("request body is not valid form data".to_owned())
            })?;
            let mut map = Map::new();
            for (k, v) in pairs {
                // First occurrence wins, as most form frameworks do.
                map.entry(k).or_insert(Value::String(v));
            }
            Ok(map)
        }
    }
}

/// A submission that passed validation. Invalid states don't exist past this point.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub form: Form,
    pub name: PersonName,
    pub phone: Contact<Phone>,
    pub email: Contact<Email>,
    pub payment_method: Option<PaymentMethod>,
    pub slug: Option<Slug>,
    pub source_campaign: SourceCampaign,
    pub metadata: Option<Map<String, Value>>,
    pub utm: Utm,
    pub referrer: Option<String>,
    pub page_url: Option<String>,
    pub warnings: Vec<String>,
}

/// Looks a field up by its camelCase name, then its aliases. `null` counts as absent.
fn field<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .filter_map(|n| map.get(*n))
        .find(|v| !v.is_null())
}

enum Text {
    Absent,
    Present(String),
    WrongType,
}

fn text(map: &Map<String, Value>, names: &[&str]) -> Text {
    match field(map, names) {
        None => Text::Absent,
        Some(Value::String(s)) => Text::Present(s.clone()),
        // Phone numbers typed into number inputs arrive as JSON numbers.
        Some(Value::Number(n)) => Text::Present(n.to_string()),
        Some(_) => Text::WrongType,
    }
}

/// An optional free-text attribution field: trimmed, empty = absent, at most 512 characters.
fn optional_text(
    map: &Map<String, Value>,
    names: &[&str],
    errors: &mut FieldErrors,
) -> Option<String> {
    let canonical = names.first().copied().unwrap_or_default();
    match text(map, names) {
        Text::Absent => None,
        Text::WrongType => {
            errors.insert(canonical.to_owned(), "must be a string".to_owned());
            None
        }
        Text::Present(s) => {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT_FIELD {
                errors.insert(
                    canonical.to_owned(),
                    format!("must be at most {MAX_TEXT_FIELD} characters"),
                );
                None
            } else if s.chars().any(|c| c.is_control()) {
                errors.insert(
                    canonical.to_owned(),
                    "contains control characters".to_owned(),
                );
                None
            } else if s.is_empty() {
                None
            } else {
                Some(s.to_owned())
            }
        }
    }
}

/// The slug of a page route like `/integrator/proftest/kenesary` or `/expresscourse/arystan`.
fn slug_from_page_url(form: Form, url: &str) -> Option<Slug> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = if url.contains("://") {
        after_scheme.find('/')?
    } else {
        0
    };
    let path = after_scheme.get(path_start..)?;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let pos = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case(form.as_str()))?;
    let candidate = segments.get(pos + 1)?;
    Slug::parse(candidate).ok()
}

impl Submission {
    /// Validates every field and reports every problem at once, named as the page names it.
    pub fn from_fields(form: Form, map: &Map<String, Value>) -> Result<Submission, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut warnings = Vec::new();

        let name = match text(map, &["name"]) {
            Text::Absent => {
                errors.insert("name".into(), "is required".into());
                None
            }
            Text::WrongType => {
                errors.insert("name".into(), "must be a string".into());
                None
            }
            Text::Present(s) => match PersonName::parse(&s) {
                Ok(n) => Some(n),
                Err(e) => {
                    errors.insert("name".into(), e.to_string());
                    None
                }
            },
        };

        let (phone, phone_problem) = match text(map, &["phone", "phoneNumber", "phone_number"]) {
            Text::Absent => (Contact::Absent, None),
            Text::WrongType => (Contact::Absent, Some("must be a string".to_owned())),
            Text::Present(s) if s.trim().is_empty() => (Contact::Absent, None),
            Text::Present(s) => match Phone::parse(&s) {
                Ok(p) => (Contact::Valid(p), None),
                Err(e @ (PhoneError::BadCharacters | PhoneError::Invalid | PhoneError::Empty)) => (
                    Contact::Invalid(truncate(s.trim(), MAX_TEXT_FIELD)),
                    Some(e.to_string()),
                ),
            },
        };
        let (email, email_problem) = match text(map, &["email"]) {
            Text::Absent => (Contact::Absent, None),
            Text::WrongType => (Contact::Absent, Some("must be a string".to_owned())),
            Text::Present(s) if s.trim().is_empty() => (Contact::Absent, None),
            Text::Present(s) => match Email::parse(&s) {
                Ok(e) => (Contact::Valid(e), None),
                Err(e @ (EmailError::Empty | EmailError::TooLong | EmailError::Invalid)) => (
                    Contact::Invalid(truncate(s.trim(), MAX_TEXT_FIELD)),
                    Some(e.to_string()),
                ),
            },
        };
        if !phone.is_valid() && !email.is_valid() {
            let missing = "phone or email is required";
            errors.insert(
                "phone".into(),
                phone_problem.clone().unwrap_or_else(|| missing.into()),
            );
            errors.insert(
                "email".into(),
                email_problem.clone().unwrap_or_else(|| missing.into()),
            );
        } else {
            // One working channel is enough; the other is kept raw and its channel skipped.
            if let Some(p) = &phone_problem {
                warnings.push(format!("phone {p}; SMS skipped"));
            }
            if let Some(p) = &email_problem {
                warnings.push(format!("email {p}; email skipped"));
            }
        }

        let payment_method = match (form, text(map, &["paymentMethod", "payment_method"])) {
            (Form::ExpressCourse, Text::Absent) => {
                errors.insert(
                    "paymentMethod".into(),
                    "is required: kaspi, halyk or robokassa".into(),
                );
                None
            }
            (Form::ExpressCourse, Text::WrongType) => {
                errors.insert("paymentMethod".into(), "must be a string".into());
                None
            }
            (Form::ExpressCourse, Text::Present(s)) => match PaymentMethod::parse(&s) {
                Ok(pm) => Some(pm),
                Err(_) => {
                    errors.insert(
                        "paymentMethod".into(),
                        "must be one of kaspi, halyk, robokassa".into(),
                    );
                    None
                }
            },
            // ProfTest has no payment; a stray field from a shared page script is ignored.
            (Form::ProfTest, _) => None,
        };

        let page_url = optional_text(map, &["pageUrl", "page_url"], &mut errors);
        let slug = match text(map, &["slug"]) {
            Text::Absent => None,
            Text::WrongType => {
                errors.insert("slug".into(), "must be a string".into());
                None
            }
            Text::Present(s) if s.trim().is_empty() => None,
            Text::Present(s) => match Slug::parse(&s) {
                Ok(slug) => Some(slug),
                Err(e) => {
                    errors.insert("slug".into(), e.to_string());
                    None
                }
            },
        };
        let slug = slug.or_else(|| {
            page_url
                .as_deref()
                .and_then(|u| slug_from_page_url(form, u))
        });

        let metadata = match field(map, &["metadata"]) {
            None => None,
            Some(Value::Object(m)) => Some(m.clone()),
            // Form posts can only carry metadata as JSON text.
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Some(m),
                _ => {
                    errors.insert("metadata".into(), "must be a JSON object".into());
                    None
                }
            },
            Some(_) => {
                errors.insert("metadata".into(), "must be a JSON object".into());
                None
            }
        };
        if let Some(m) = &metadata {
            let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_METADATA_BYTES {
                errors.insert(
                    "metadata".into(),
                    format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
                );
            }
        }

        let utm = Utm {
            source: optional_text(map, &["utm_source", "utmSource"], &mut errors),
            medium: optional_text(map, &["utm_medium", "utmMedium"], &mut errors),
            campaign: optional_text(map, &["utm_campaign", "utmCampaign"], &mut errors),
            content: optional_text(map, &["utm_content", "utmContent"], &mut errors),
            term: optional_text(map, &["utm_term", "utmTerm"], &mut errors),
        };
        let referrer = optional_text(map, &["referrer", "referer"], &mut errors);

        match (name, errors.is_empty()) {
            (Some(name), true) => {
                let source_campaign = SourceCampaign::new(form, slug.as_ref());
                Ok(Submission {
                    form,
                    name,
                    phone,
                    email,
                    payment_method,
                    slug,
                    source_campaign,
                    metadata,
                    utm,
                    referrer,
                    page_url,
                    warnings,
                })
            }
            _ => Err(errors),
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn json_form_and_beacon_bodies_decode_to_the_same_fields() {
        let json = decode_body(
            Some("application/json; charset=utf-8"),
            br#"{"name":"A","phone":"87771234567"}"#,
        )
        .unwrap();
        let beacon = decode_body(
            Some("text/plain;charset=UTF-8"),
            br#"{"name":"A","phone":"87771234567"}"#,
        )
        .unwrap();
        let form = decode_body(
            Some("application/x-www-form-urlencoded"),
            b"name=A&phone=87771234567",
        )
        .unwrap();
        assert_eq!(json, beacon);
        assert_eq!(json, form);
    }

    #[test]
    fn bad_bodies_are_classified() {
        assert_eq!(
            decode_body(Some("multipart/form-data; boundary=x"), b"--x"),
            Err(BodyError::UnsupportedMediaType)
        );
        assert_eq!(
            decode_body(Some("application/xml"), b"<a/>"),
            Err(BodyError::UnsupportedMediaType)
        );
        assert_eq!(
            decode_body(Some("application/json"), &vec![b' '; MAX_BODY_BYTES + 1]),
            Err(BodyError::TooLarge)
        );
        assert!(matches!(
            decode_body(Some("application/json"), b"{\"name\":"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_body(Some("application/json"), b"[1,2]"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_body(Some("application/json"), b""),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_body(Some("application/json"), &[0xff, 0xfe]),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn express_course_submission_is_attributed_and_normalised() {
        let s = Submission::from_fields(
            Form::ExpressCourse,
            &obj(json!({
                "name": " Айгерим ", "phone": "8 (777) 123-45-67", "email": "A@Mail.KZ",
                "payment_method": "KASPI", "slug": "Arystan", "utm_source": "instagram",
                "utmMedium": "cpc", "referrer": "https://instagram.com/", "page_url": "https://school.kz/expresscourse"
            })),
        )
        .unwrap();
        assert_eq!(s.name.as_str(), "Айгерим");
        assert_eq!(s.phone.valid().unwrap().as_str(), "+77771234567");
        assert_eq!(s.email.valid().unwrap().as_str(), "A@mail.kz");
        assert_eq!(s.payment_method, Some(PaymentMethod::Kaspi));
        assert_eq!(s.source_campaign.as_str(), "expresscourse_arystan");
        assert_eq!(s.utm.source.as_deref(), Some("instagram"));
        assert_eq!(s.utm.medium.as_deref(), Some("cpc"));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn proftest_slug_is_taken_from_the_page_route_when_not_sent() {
        let s = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "7771234567", "pageUrl": "https://school.kz/integrator/proftest/kenesary?utm_source=vk"})),
        )
        .unwrap();
        assert_eq!(s.source_campaign.as_str(), "proftest_kenesary");
        let s = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "7771234567"})),
        )
        .unwrap();
        assert_eq!(s.source_campaign.as_str(), "proftest");
    }

    #[test]
    fn malformed_email_with_valid_phone_is_accepted_with_a_warning() {
        let s = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "87771234567", "email": "not-an-email"})),
        )
        .unwrap();
        assert!(s.phone.is_valid());
        assert_eq!(s.email, Contact::Invalid("not-an-email".into()));
        assert_eq!(
            s.warnings,
            vec!["email is not a valid email address; email skipped".to_owned()]
        );
    }

    #[test]
    fn no_usable_contact_names_both_fields() {
        let e = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "123", "email": "x"})),
        )
        .unwrap_err();
        assert_eq!(
            e.get("phone").map(String::as_str),
            Some("is not a valid phone number")
        );
        assert_eq!(
            e.get("email").map(String::as_str),
            Some("is not a valid email address")
        );
        let e = Submission::from_fields(Form::ProfTest, &obj(json!({"name": "A"}))).unwrap_err();
        assert_eq!(
            e.get("phone").map(String::as_str),
            Some("phone or email is required")
        );
        assert_eq!(
            e.get("email").map(String::as_str),
            Some("phone or email is required")
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let e = Submission::from_fields(
            Form::ExpressCourse,
            &obj(json!({"name": "", "phone": "87771234567", "paymentMethod": "cash", "slug": "bad slug!", "metadata": [1], "utm_source": "x".repeat(513)})),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["metadata", "name", "paymentMethod", "slug", "utm_source"]
        );
    }

    #[test]
    fn express_course_requires_payment_method() {
        let e = Submission::from_fields(
            Form::ExpressCourse,
            &obj(json!({"name": "A", "phone": "87771234567"})),
        )
        .unwrap_err();
        assert!(e.contains_key("paymentMethod"));
    }

    #[test]
    fn metadata_arrives_as_object_or_as_json_text_in_forms() {
        let s = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "87771234567", "metadata": "{\"result\":\"IT\"}"})),
        )
        .unwrap();
        assert_eq!(s.metadata.unwrap().get("result"), Some(&json!("IT")));
        let big = "x".repeat(MAX_METADATA_BYTES);
        let e = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": "87771234567", "metadata": {"a": big}})),
        )
        .unwrap_err();
        assert!(e.contains_key("metadata"));
    }

    #[test]
    fn phone_sent_as_json_number_is_accepted() {
        let s = Submission::from_fields(
            Form::ProfTest,
            &obj(json!({"name": "A", "phone": 87771234567u64})),
        )
        .unwrap();
        assert_eq!(s.phone.valid().unwrap().as_str(), "+77771234567");
    }
}
