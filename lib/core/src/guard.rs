//! The SMS guard (docs/architecture.md §14): intake screening (the honeypot, the client address)
//! and the rules applied where the money is spent — at SMS send time — with durable counters
//! behind the [`QuotaStore`](crate::ports::QuotaStore) port.
//!
//! **The rule every guard obeys: a real lead is never lost to it.** A guard may withhold the SMS,
//! never the lead, its row, its email or its deal; only the honeypot holds a whole lead back, and
//! that lead is stored and can be released.
//!
//! The decisions are pure functions ([`plan`], [`decide`]) so that their table of cases is a unit
//! test; the dispatcher only carries them out.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};
use crate::domain::{Lead, Phone, SuppressReason};
use crate::keyed_hash::HmacKey;

/// `COUNT/DURATION`, e.g. `3/24h`: at most `count` in each window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not COUNT/DURATION like 20/1h (or off)")]
pub struct BadRate(String);

impl FromStr for Rate {
    type Err = BadRate;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || BadRate(raw.to_owned());
        let (count, per) = raw.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| bad())?;
        // A window under a second cannot be stored as epoch-aligned windows of whole
        // milliseconds in a useful way, and no limit needs one.
        if count == 0 || per < Duration::from_secs(1) {
            return Err(bad());
        }
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, humantime::format_duration(self.per))
    }
}

/// What the guard checks an SMS against, from `SMS_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsGuardConfig {
    /// E.164 prefixes an SMS may go to (`SMS_ALLOWED_PREFIXES`, default `+77`); `None` = any.
    pub allowed_prefixes: Option<Vec<String>>,
    pub per_phone: Option<Rate>,
    pub per_prefix: Option<Rate>,
    pub per_ip: Option<Rate>,
    /// The breaker for the whole system: past it SMS are held, not dropped.
    pub budget: Option<Rate>,
}

impl SmsGuardConfig {
    pub const VARS: &'static [&'static str] = &[
        "SMS_ALLOWED_PREFIXES",
        "SMS_LIMIT_PER_PHONE",
        "SMS_LIMIT_PER_PREFIX",
        "SMS_LIMIT_PER_IP",
        "SMS_BUDGET",
    ];

    /// No limits at all: what a test of something else wants.
    pub fn off() -> Self {
        SmsGuardConfig {
            allowed_prefixes: None,
            per_phone: None,
            per_prefix: None,
            per_ip: None,
            budget: None,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let rate = |var: &str, default: &str| -> Result<Option<Rate>, ConfigError> {
            let raw = env.get(var).unwrap_or(default);
            if raw.eq_ignore_ascii_case("off") {
                return Ok(None);
            }
            raw.parse()
                .map(Some)
                .map_err(|e: BadRate| ConfigError::new(var, e.to_string()))
        };
        let prefixes = env.get("SMS_ALLOWED_PREFIXES").unwrap_or("+77");
        let allowed_prefixes = if prefixes == "*" {
            None
        } else {
            let list: Vec<String> = prefixes
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = list.iter().find(|p| {
                !(p.len() >= 2
                    && p.starts_with('+')
                    && p.bytes().skip(1).all(|b| b.is_ascii_digit()))
            }) {
                return Err(ConfigError::new(
                    "SMS_ALLOWED_PREFIXES",
                    format!("{bad:?} is not an E.164 prefix like +77 (or use * for any)"),
                ));
            }
            Some(list)
        };
        Ok(SmsGuardConfig {
            allowed_prefixes,
            per_phone: rate("SMS_LIMIT_PER_PHONE", "3/24h")?,
            per_prefix: rate("SMS_LIMIT_PER_PREFIX", "20/1h")?,
            per_ip: rate("SMS_LIMIT_PER_IP", "20/1h")?,
            budget: rate("SMS_BUDGET", "300/1h")?,
        })
    }
}

/// Which limit a quota stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Phone,
    Prefix,
    Ip,
    Budget,
}

impl Limit {
    fn reason(self) -> Option<SuppressReason> {
        match self {
            Limit::Phone => Some(SuppressReason::PhoneLimit),
            Limit::Prefix => Some(SuppressReason::PrefixLimit),
            Limit::Ip => Some(SuppressReason::IpLimit),
            Limit::Budget => None,
        }
    }
}

/// One durable counter: at most `limit` units per epoch-aligned window of `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub key: String,
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    fn of(key: String, rate: Rate) -> Self {
        Quota {
            key,
            limit: rate.count,
            window: rate.per,
        }
    }

    /// Start of the window `now` falls in, in epoch milliseconds. Windows are fixed and
    /// aligned to the epoch, so every process agrees on them without coordination.
    pub fn window_start_ms(&self, now: Timestamp) -> i64 {
        let w = i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        now.as_millisecond().div_euclid(w) * w
    }

    /// The instant the window `now` falls in ends.
    pub fn window_end(&self, now: Timestamp) -> Timestamp {
        let start = self.window_start_ms(now);
        let w = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_millisecond(start.saturating_add(w)).unwrap_or(Timestamp::MAX)
    }

    /// The counter's storage key: the quota's key and its window.
    pub fn item_key(&self, now: Timestamp) -> String {
        format!("{}#{}", self.key, self.window_start_ms(now))
    }
}

/// The number without its last four digits: a block of 10,000 numbers, which is what pumping
/// walks through (`+77011234567` → `+7701123`).
pub fn phone_prefix(phone: &Phone) -> &str {
    let s = phone.as_str();
    s.get(..s.len().saturating_sub(4)).unwrap_or(s)
}

/// The first step for one SMS: refuse it outright, or take these quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Suppress(SuppressReason),
    /// Take one unit of each (all or none); an empty list means send.
    Take(Vec<(Limit, Quota)>),
}

/// What the guard says about an SMS to `phone` of `lead`, before any counter is read.
pub fn plan(config: &SmsGuardConfig, lead: &Lead, phone: &Phone) -> Plan {
    if lead.quarantine.is_some() {
        return Plan::Suppress(SuppressReason::Quarantined);
    }
    if let Some(prefixes) = &config.allowed_prefixes
        && !prefixes
            .iter()
            .any(|p| phone.as_str().starts_with(p.as_str()))
    {
        return Plan::Suppress(SuppressReason::CountryNotAllowed);
    }
    // Ordered so that a refused limit is reported before the budget: an SMS over its phone
    // limit is suppressed, not held.
    let mut take = Vec::new();
    if let Some(r) = config.per_phone {
        take.push((
            Limit::Phone,
            Quota::of(format!("phone:{}", phone.as_str()), r),
        ));
    }
    if let Some(r) = config.per_prefix {
        take.push((
            Limit::Prefix,
            Quota::of(format!("prefix:{}", phone_prefix(phone)), r),
        ));
    }
    if let (Some(r), Some(ip)) = (config.per_ip, &lead.client_ip_hash) {
        take.push((Limit::Ip, Quota::of(format!("ip:{ip}"), r)));
    }
    if let Some(r) = config.budget {
        take.push((Limit::Budget, Quota::of("budget".to_owned(), r)));
    }
    Plan::Take(take)
}

/// The outcome for one SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send,
    Suppress(SuppressReason),
    /// Only the budget refused: pending again, due when its window ends.
    Hold {
        until: Timestamp,
    },
}

/// Turns the limits that refused (`QuotaStore::take`'s answer, as limits) into the outcome.
/// A per-phone/prefix/IP limit suppresses; the budget alone holds.
pub fn decide(taken: &[(Limit, Quota)], refused: &[Limit], now: Timestamp) -> Decision {
    if let Some(reason) = taken
        .iter()
        .filter(|(l, _)| refused.contains(l))
        .find_map(|(l, _)| l.reason())
    {
        return Decision::Suppress(reason);
    }
    match taken
        .iter()
        .find(|(l, _)| *l == Limit::Budget && refused.contains(l))
    {
        Some((_, q)) => Decision::Hold {
            until: q.window_end(now),
        },
        None => Decision::Send,
    }
}

/// The quota that makes the budget warning fire once per window.
pub fn budget_alarm(budget: Rate) -> Quota {
    Quota {
        key: "budget-alarm".to_owned(),
        limit: 1,
        window: budget.per,
    }
}

/// The keyed hash stored for a client address (`LANDING_IP_HASH_KEY`): HMAC-SHA-256, so that the
/// stored value neither reveals the address nor can be reversed by hashing all 2³² of them.
#[derive(Debug, Clone)]
pub struct IpHasher {
    key: HmacKey,
}

impl IpHasher {
    pub const VAR: &'static str = "LANDING_IP_HASH_KEY";

    pub fn new(key: SecretString) -> Result<Self, ConfigError> {
        Ok(IpHasher {
            key: HmacKey::new(Self::VAR, key)?,
        })
    }

    /// 128 bits of the HMAC in hex: plenty to tell addresses apart, short in every key.
    pub fn hash(&self, ip: IpAddr) -> String {
        // IPv4-mapped IPv6 is the same client as its IPv4 form.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        hex::encode(self.key.digest(&[ip.to_string().as_bytes()], 16))
    }
}

/// Intake screening settings.
#[derive(Debug, Clone)]
pub struct Screening {
    /// The hidden field people never fill in (`HONEYPOT_FIELD`, default `website`).
    pub honeypot_field: String,
    /// `None`: the address is not recorded (and the per-IP limit never applies).
    pub ip_hasher: Option<IpHasher>,
}

impl Screening {
    pub const HONEYPOT_VAR: &'static str = "HONEYPOT_FIELD";
    pub const DEFAULT_HONEYPOT: &'static str = "website";

    pub fn new(honeypot_field: impl Into<String>, ip_hasher: Option<IpHasher>) -> Self {
        Screening {
            honeypot_field: honeypot_field.into(),
            ip_hasher,
        }
    }

    pub const VARS: &'static [&'static str] = &[Self::HONEYPOT_VAR, IpHasher::VAR];

    /// `HONEYPOT_FIELD` and `LANDING_IP_HASH_KEY`; `fallback_key` is used when the key is unset
    /// (landing-local's generated one), and without one the key is required.
    pub fn from_env(env: &Env, fallback_key: Option<SecretString>) -> Result<Self, ConfigError> {
        let key = match (env.get(IpHasher::VAR), fallback_key) {
            (Some(k), _) => SecretString::from(k.to_owned()),
            (None, Some(k)) => k,
            (None, None) => {
                return Err(ConfigError::new(
                    IpHasher::VAR,
                    "is required (the key client addresses are hashed with)",
                ));
            }
        };
        Ok(Screening::new(
            Self::honeypot_from_env(env)?,
            Some(IpHasher::new(key)?),
        ))
    }

    pub fn honeypot_from_env(env: &Env) -> Result<String, ConfigError> {
        let name = env.string_or(Self::HONEYPOT_VAR, Self::DEFAULT_HONEYPOT);
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::new(
                Self::HONEYPOT_VAR,
                "must be a form field name (letters, digits, '_' or '-')",
            ));
        }
        Ok(name)
    }

    /// Did the submission fill in the honeypot? Any non-blank value counts.
    pub fn is_honeypot_filled(&self, fields: &Map<String, Value>) -> bool {
        match fields.get(&self.honeypot_field) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Bool(b)) => *b,
            Some(_) => true,
        }
    }
}

impl Default for Screening {
    fn default() -> Self {
        Screening::new(Self::DEFAULT_HONEYPOT, None)
    }
}

/// Which browser origins may post to the API (`CORS_ALLOWED_ORIGINS`). CORS alone does not
/// stop a cross-site form post or beacon — they need no preflight — so intake refuses them
/// itself when a list is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// Unset: no check.
    #[default]
    Any,
    /// `*`: any origin (CORS answers for all; nothing refused).
    Wildcard,
    List(Vec<String>),
}

impl OriginPolicy {
    pub const VAR: &'static str = "CORS_ALLOWED_ORIGINS";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(raw) = env.get(Self::VAR) else {
            return Ok(OriginPolicy::Any);
        };
        if raw == "*" {
            return Ok(OriginPolicy::Wildcard);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let well_formed = (origin.starts_with("https://") || origin.starts_with("http://"))
                && origin
                    .split_once("://")
                    .is_some_and(|(_, host)| !host.is_empty() && !host.contains('/'));
            if !well_formed {
                return Err(ConfigError::new(
                    Self::VAR,
                    format!(
                        "{origin:?} is not an origin like https://school.kz (scheme and host, no path)"
                    ),
                ));
            }
            list.push(origin.to_ascii_lowercase());
        }
        Ok(OriginPolicy::List(list))
    }

    /// The configured origins, for a CORS layer.
    pub fn origins(&self) -> &[String] {
        match self {
            OriginPolicy::List(l) => l,
            _ => &[],
        }
    }

    /// May a browser on `origin` post here? `host` is the host the request was addressed to
    /// (`Host`, or `X-Forwarded-Host` behind a proxy): a page posting to its own host is always
    /// allowed, whatever the list says.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        match self {
            OriginPolicy::Any | OriginPolicy::Wildcard => true,
            OriginPolicy::List(list) => {
                list.contains(&origin)
                    || host.is_some_and(|h| {
                        origin
                            .split_once("://")
                            .is_some_and(|(_, o)| o.eq_ignore_ascii_case(h.trim()))
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Contact, CrmState, CrmStatus, Form, LeadId, PersonName, QuarantineReason, SourceCampaign,
        Utm,
    };

    fn lead(ip: Option<&str>, quarantine: Option<QuarantineReason>) -> Lead {
        Lead {
            id: LeadId::new(),
            created_at: Timestamp::UNIX_EPOCH,
            form: Form::ProfTest,
            source_campaign: SourceCampaign::new(Form::ProfTest, None),
            name: PersonName::parse("Айгерим").unwrap(),
            email: Contact::Absent,
            phone: Contact::Valid(Phone::parse("+77011234567").unwrap()),
            payment_method: None,
            metadata: None,
            utm: Utm::default(),
            referrer: None,
            page_url: None,
            warnings: vec![],
            correlation_id: "c".into(),
            crm: CrmState::new(CrmStatus::Pending),
            client_ip_hash: ip.map(str::to_owned),
            quarantine,
        }
    }

    fn defaults() -> SmsGuardConfig {
        SmsGuardConfig::from_env(&Env::default()).unwrap()
    }

    #[test]
    fn rates_parse_count_slash_duration_and_refuse_the_rest() {
        assert_eq!(
            "3/24h".parse(),
            Ok(Rate {
                count: 3,
                per: Duration::from_secs(86_400)
            })
        );
        assert_eq!(" 20 / 1h ".trim().parse::<Rate>().map(|r| r.count), Ok(20));
        for bad in [
            "", "3", "0/1h", "3/0s", "3/500ms", "x/1h", "3/soon", "-1/1h",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_the_documented_ones_and_off_turns_a_limit_off() {
        let c = defaults();
        assert_eq!(c.allowed_prefixes, Some(vec!["+77".to_owned()]));
        assert_eq!(c.per_phone, "3/24h".parse().ok());
        assert_eq!(c.per_prefix, "20/1h".parse().ok());
        assert_eq!(c.per_ip, "20/1h".parse().ok());
        assert_eq!(c.budget, "300/1h".parse().ok());
        let c = SmsGuardConfig::from_env(&Env::from_pairs([
            ("SMS_LIMIT_PER_IP", "off"),
            ("SMS_ALLOWED_PREFIXES", "*"),
        ]))
        .unwrap();
        assert_eq!(c.per_ip, None);
        assert_eq!(c.allowed_prefixes, None);
    }

    #[test]
    fn bad_guard_settings_name_their_variable() {
        for (var, value) in [
            ("SMS_LIMIT_PER_PHONE", "three"),
            ("SMS_LIMIT_PER_PREFIX", "20"),
            ("SMS_LIMIT_PER_IP", "0/1h"),
            ("SMS_BUDGET", "300/forever"),
            ("SMS_ALLOWED_PREFIXES", "77"),
            ("SMS_ALLOWED_PREFIXES", "+7a"),
        ] {
            let err = SmsGuardConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn the_prefix_is_the_number_without_its_last_four_digits() {
        assert_eq!(
            phone_prefix(&Phone::parse("+77011234567").unwrap()),
            "+7701123"
        );
    }

    /// The guard's table of cases: what `plan` and `decide` make of one SMS.
    #[test]
    fn guard_decisions() {
        let now = Timestamp::from_second(3_600 * 10 + 120).unwrap();
        let kz = Phone::parse("+77011234567").unwrap();
        let foreign = Phone::parse("+447911123456").unwrap();
        let cfg = defaults();
        let hour_end = Timestamp::from_second(3_600 * 11).unwrap();
        use Limit::{Budget, Ip, Prefix};
        type Case<'a> = (&'a str, Lead, &'a Phone, &'a [Limit], Decision);
        let cases: Vec<Case> = vec![
            (
                "quarantined lead",
                lead(None, Some(QuarantineReason::Honeypot)),
                &kz,
                &[],
                Decision::Suppress(SuppressReason::Quarantined),
            ),
            (
                "foreign number",
                lead(None, None),
                &foreign,
                &[],
                Decision::Suppress(SuppressReason::CountryNotAllowed),
            ),
            (
                "within every limit",
                lead(Some("ab"), None),
                &kz,
                &[],
                Decision::Send,
            ),
            (
                "phone limit",
                lead(None, None),
                &kz,
                &[Limit::Phone],
                Decision::Suppress(SuppressReason::PhoneLimit),
            ),
            (
                "prefix limit",
                lead(None, None),
                &kz,
                &[Prefix],
                Decision::Suppress(SuppressReason::PrefixLimit),
            ),
            (
                "ip limit",
                lead(Some("ab"), None),
                &kz,
                &[Ip],
                Decision::Suppress(SuppressReason::IpLimit),
            ),
            (
                "budget alone holds until the window ends",
                lead(None, None),
                &kz,
                &[Budget],
                Decision::Hold { until: hour_end },
            ),
            (
                "a limit and the budget: suppressed, not held",
                lead(None, None),
                &kz,
                &[Budget, Prefix],
                Decision::Suppress(SuppressReason::PrefixLimit),
            ),
            (
                "phone is reported before prefix",
                lead(None, None),
                &kz,
                &[Prefix, Limit::Phone],
                Decision::Suppress(SuppressReason::PhoneLimit),
            ),
            (
                "no address: an ip refusal cannot apply",
                lead(None, None),
                &kz,
                &[Ip],
                Decision::Send,
            ),
        ];
        for (name, lead, phone, refused, want) in cases {
            let got = match plan(&cfg, &lead, phone) {
                Plan::Suppress(r) => Decision::Suppress(r),
                Plan::Take(take) => decide(&take, refused, now),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn every_quota_is_taken_in_reporting_order() {
        let Plan::Take(take) = plan(
            &defaults(),
            &lead(Some("ab"), None),
            &Phone::parse("+77011234567").unwrap(),
        ) else {
            panic!("not suppressed")
        };
        let keys: Vec<_> = take.iter().map(|(l, q)| (*l, q.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (Limit::Phone, "phone:+77011234567"),
                (Limit::Prefix, "prefix:+7701123"),
                (Limit::Ip, "ip:ab"),
                (Limit::Budget, "budget"),
            ]
        );
        let off = plan(
            &SmsGuardConfig::off(),
            &lead(Some("ab"), None),
            &Phone::parse("+447911123456").unwrap(),
        );
        assert_eq!(off, Plan::Take(vec![]));
    }

    #[test]
    fn windows_are_epoch_aligned() {
        let q = Quota {
            key: "k".into(),
            limit: 1,
            window: Duration::from_secs(3_600),
        };
        let t = Timestamp::from_second(3_600 * 5 + 1_799).unwrap();
        assert_eq!(q.window_start_ms(t), 3_600_000 * 5);
        assert_eq!(q.window_end(t), Timestamp::from_second(3_600 * 6).unwrap());
        assert_eq!(q.item_key(t), format!("k#{}", 3_600_000 * 5));
    }

    #[test]
    fn ip_hashes_are_keyed_stable_and_never_the_address() {
        let a = IpHasher::new("0123456789abcdef".to_owned().into()).unwrap();
        let b = IpHasher::new("fedcba9876543210".to_owned().into()).unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(a.hash(ip), a.hash(ip));
        assert_eq!(a.hash(ip), a.hash(mapped));
        assert_ne!(a.hash(ip), b.hash(ip));
        assert_eq!(a.hash(ip).len(), 32);
        assert!(!a.hash(ip).contains("203"));
        assert!(IpHasher::new("short".to_owned().into()).is_err());
    }

    #[test]
    fn the_honeypot_counts_any_non_blank_value() {
        let s = Screening::default();
        let f = |v: Value| {
            let Value::Object(m) = v else { unreachable!() };
            s.is_honeypot_filled(&m)
        };
        assert!(!f(serde_json::json!({"name": "A"})));
        assert!(!f(serde_json::json!({"website": ""})));
        assert!(!f(serde_json::json!({"website": "  "})));
        assert!(!f(serde_json::json!({"website": null})));
        assert!(f(serde_json::json!({"website": "http://spam"})));
        assert!(f(serde_json::json!({"website": 1})));
        assert!(
            Screening::honeypot_from_env(&Env::from_pairs([("HONEYPOT_FIELD", "a b")])).is_err()
        );
    }

    #[test]
    fn origins_are_checked_against_the_list_or_the_own_host() {
        let p = OriginPolicy::from_env(&Env::from_pairs([(
            "CORS_ALLOWED_ORIGINS",
            "https://school.kz, http://localhost:5173",
        )]))
        .unwrap();
        assert!(p.allows("https://school.kz", None));
        assert!(p.allows("HTTPS://School.KZ", None));
        assert!(p.allows("http://localhost:5173", Some("api.school.kz")));
        assert!(!p.allows("https://evil.example", Some("api.school.kz")));
        assert!(p.allows("https://api.school.kz", Some("api.school.kz")));
        assert!(!p.allows("null", Some("api.school.kz")));
        assert!(OriginPolicy::Any.allows("https://evil.example", None));
        for bad in ["school.kz", "https://school.kz/path", "https://"] {
            assert!(
                OriginPolicy::from_env(&Env::from_pairs([("CORS_ALLOWED_ORIGINS", bad)])).is_err(),
                "{bad}"
            );
        }
    }
}
