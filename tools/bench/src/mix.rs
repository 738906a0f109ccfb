//! The request mix: what real landing traffic looks like, deterministic per request index so a
//! run can be reproduced. Every request has its own phone and email (no two requests collide),
//! both valid, so every accepted lead has exactly two notification rows.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

pub const PROFTEST: &str = "/api/landing/proftest";
pub const SUBMIT: &str = "/api/landing/submit";

/// Share of requests that go to `/proftest` (the rest checkout at `/submit`), in percent.
const PROFTEST_SHARE: u64 = 65;
/// Share of requests carrying an `Idempotency-Key` (always a fresh one), in percent.
const IDEMPOTENCY_SHARE: u64 = 25;
/// Share sent as `text/plain` JSON, as `navigator.sendBeacon` does, in percent.
const BEACON_SHARE: u64 = 10;

/// Kazakh mobile operator codes.
const OPERATORS: [&str; 12] = [
    "700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778",
];
const NAMES: [&str; 12] = [
    "Айгерим",
    "Нурлан Сейтжанов",
    "Данияр",
    "Асель Жумабаева",
    "Ерлан",
    "Жанар",
    "Мадина Ахметова",
    "Тимур",
    "Алия",
    "Султан Нурпеисов",
    "Dana",
    "Arman Bekov",
];
const MAILBOXES: [&str; 6] = [
    "mail.kz",
    "gmail.com",
    "mail.ru",
    "yandex.kz",
    "inbox.ru",
    "Mail.KZ",
];
const SLUGS: [Option<&str>; 4] = [Some("kenesary"), Some("arystan"), Some("tomiris"), None];
const SOURCES: [&str; 4] = ["instagram", "facebook", "tiktok", "google"];
const RESULTS: [&str; 5] = ["analyst", "engineer", "designer", "manager", "teacher"];
const PAYMENTS: [&str; 4] = ["kaspi", "halyk", "robokassa", "Kaspi"];

#[derive(Debug, Clone)]
pub struct Request {
    pub path: &'static str,
    pub content_type: &'static str,
    pub idempotency_key: Option<String>,
    pub body: String,
}

/// Hands out request indexes across every phase and client, so phones, emails and keys never
/// repeat within a run.
#[derive(Debug)]
pub struct Mix {
    run_id: String,
    next: AtomicU64,
}

impl Mix {
    pub fn new(run_id: String) -> Self {
        Mix {
            run_id,
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> Request {
        self.request(self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn request(&self, i: u64) -> Request {
        let r = splitmix64(i);
        let pick = |shift: u32, n: usize| -> usize {
            usize::try_from((r >> shift) % n as u64).unwrap_or(0)
        };
        let proftest = r % 100 < PROFTEST_SHARE;
        let slug = SLUGS[pick(8, SLUGS.len())];
        let name = NAMES[pick(12, NAMES.len())];
        let source = SOURCES[pick(16, SOURCES.len())];
        let form = if proftest {
            "proftest"
        } else {
            "expresscourse"
        };
        let page_url = match slug {
            Some(s) => format!("https://school.kz/integrator/{form}/{s}?utm_source={source}"),
            None => format!("https://school.kz/integrator/{form}"),
        };

        let mut fields = Map::new();
        let mut put = |k: &str, v: Value| {
            fields.insert(k.to_owned(), v);
        };
        put("name", name.into());
        put("phone", phone(i, pick(20, 3)).into());
        put(
            "email",
            format!("lead{i}@{}", MAILBOXES[pick(24, MAILBOXES.len())]).into(),
        );
        put("pageUrl", page_url.into());
        put("referrer", format!("https://www.{source}.com/").into());
        if let Some(s) = slug {
            put("slug", s.into());
        }
        // Four in five arrive from an ad with UTM tags.
        if pick(28, 5) != 0 {
            put("utm_source", source.into());
            put("utm_medium", "cpc".into());
            put(
                "utm_campaign",
                format!("{}_2025_10", slug.unwrap_or("brand")).into(),
            );
            put("utm_content", format!("video_{}", pick(32, 9)).into());
        }
        if proftest {
            put("metadata", test_result(r));
        } else {
            // Some older pages send snake_case.
            let key = if pick(36, 10) == 0 {
                "payment_method"
            } else {
                "paymentMethod"
            };
            put(key, PAYMENTS[pick(40, PAYMENTS.len())].into());
        }

        Request {
            path: if proftest { PROFTEST } else { SUBMIT },
            content_type: if (r >> 44) % 100 < BEACON_SHARE {
                "text/plain;charset=UTF-8"
            } else {
                "application/json"
            },
            idempotency_key: ((r >> 52) % 100 < IDEMPOTENCY_SHARE)
                .then(|| format!("bench-{}-{i}", self.run_id)),
            body: Value::Object(fields).to_string(),
        }
    }
}

/// A unique, valid Kazakh mobile number for request `i`, in one of the formats people type.
fn phone(i: u64, format: usize) -> String {
    let operator = OPERATORS[usize::try_from(i % OPERATORS.len() as u64).unwrap_or(0)];
    let n = format!("{:07}", (i / OPERATORS.len() as u64) % 10_000_000);
    let (a, b, c) = (&n[0..3], &n[3..5], &n[5..7]);
    match format {
        0 => format!("+7{operator}{n}"),
        1 => format!("8 {operator} {a} {b} {c}"),
        _ => format!("+7 ({operator}) {a}-{b}-{c}"),
    }
}

/// A career-test result as the ProfTest page posts it (about 300 bytes).
fn test_result(r: u64) -> Value {
    let answers: Vec<u64> = (0..20).map(|k| (r >> (k * 3)) % 5 + 1).collect();
    json!({
        "answers": answers,
        "result": RESULTS[usize::try_from((r >> 7) % RESULTS.len() as u64).unwrap_or(0)],
        "score": (r >> 11) % 100,
        "durationSec": 120 + (r >> 19) % 600,
        "version": "2025-09",
    })
}

fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn phones_emails_and_keys_never_repeat() {
        let mix = Mix::new("t".into());
        let mut phones = HashSet::new();
        let mut emails = HashSet::new();
        let mut keys = HashSet::new();
        for i in 0..5_000 {
            let req = mix.request(i);
            let body: Value = serde_json::from_str(&req.body).unwrap();
            let digits: String = body["phone"]
                .as_str()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            // "8 777 ..." and "+7 777 ..." are the same number.
            assert!(phones.insert(digits[1..].to_owned()));
            assert!(emails.insert(body["email"].as_str().unwrap().to_lowercase()));
            if let Some(k) = req.idempotency_key {
                assert!(keys.insert(k));
            }
        }
    }

    #[test]
    fn the_mix_covers_both_endpoints_keys_and_beacons() {
        let mix = Mix::new("t".into());
        let reqs: Vec<Request> = (0..1_000).map(|i| mix.request(i)).collect();
        let share = |f: &dyn Fn(&Request) -> bool| reqs.iter().filter(|r| f(r)).count();
        let proftest = share(&|r| r.path == PROFTEST);
        assert!((550..750).contains(&proftest), "{proftest}");
        let keyed = share(&|r| r.idempotency_key.is_some());
        assert!((150..350).contains(&keyed), "{keyed}");
        let beacons = share(&|r| r.content_type.starts_with("text/plain"));
        assert!((50..150).contains(&beacons), "{beacons}");
        assert!(
            reqs.iter()
                .filter(|r| r.path == SUBMIT)
                .all(|r| r.body.contains("\"paymentMethod\"")
                    || r.body.contains("\"payment_method\""))
        );
    }
}
