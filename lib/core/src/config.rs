//! Configuration from the environment, read once at start. Every error names the variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Email, PaymentMethod};
use crate::notify::{RetryPolicy, SendWindows, TemplateError, Templates, Window};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A snapshot of the environment. Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// This environment with `pairs` added (replacing same-named variables), e.g. credentials
    /// read from a secret store at start.
    pub fn with<K: Into<String>, V: Into<String>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        let mut vars = self.vars.clone();
        vars.extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        Env { vars }
    }

    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).to_owned()
    }

    /// Any `humantime` duration (`10m`, `90s`, `1h 30m`).
    pub fn duration_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => humantime::parse_duration(raw).map_err(|e| {
                ConfigError::new(
                    var,
                    format!("{raw:?} is not a duration like 10m or 90s ({e})"),
                )
            }),
        }
    }

    pub fn parse_or<T: FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError::new(var, format!("{raw:?} is not a valid value"))),
        }
    }

    /// Refuses variables that look like ours but are not known: a typo such as
    /// `NOTIFY_DELAYY=1m` must stop the process, not silently run with the default.
    pub fn reject_unknown(&self, prefixes: &[&str], known: &[&str]) -> Result<(), ConfigError> {
        match self
            .vars
            .keys()
            .find(|k| prefixes.iter().any(|p| k.starts_with(p)) && !known.contains(&k.as_str()))
        {
            Some(var) => Err(ConfigError::new(
                var,
                "unknown variable (see the configuration table in README.md)",
            )),
            None => Ok(()),
        }
    }
}

/// Variables of the notification path, shared by every runtime.
pub const NOTIFY_VARS: &[&str] = &[
    "NOTIFY_DELAY",
    "NOTIFY_LEASE",
    "NOTIFY_MAX_ATTEMPTS",
    "NOTIFY_BACKOFF",
    "NOTIFY_TEMPLATES",
    "NOTIFY_TIMEZONE",
    "NOTIFY_SMS_WINDOW",
    "NOTIFY_EMAIL_WINDOW",
    "NOTIFY_SMS_MAX_SEGMENTS",
    "NOTIFY_SUPERSEDE",
    "PAYMENT_LINK_KASPI",
    "PAYMENT_LINK_HALYK",
    "PAYMENT_LINK_ROBOKASSA",
];

#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub delay: Duration,
    pub retry: RetryPolicy,
    pub templates_file: Option<PathBuf>,
    pub payment_links: BTreeMap<PaymentMethod, String>,
    /// `NOTIFY_TIMEZONE` (default Asia/Almaty), `NOTIFY_SMS_WINDOW` (09:00-21:00),
    /// `NOTIFY_EMAIL_WINDOW` (always).
    pub windows: SendWindows,
    /// `NOTIFY_SMS_MAX_SEGMENTS` (default 2): a longer SMS template is refused at start.
    pub sms_max_segments: u32,
    /// `NOTIFY_SUPERSEDE` (`on`, the default, or `off`): one follow-up per person at a time.
    pub supersede: bool,
}

impl NotifySettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = RetryPolicy::default();
        let max_attempts: u32 = env.parse_or("NOTIFY_MAX_ATTEMPTS", defaults.max_attempts)?;
        if max_attempts == 0 {
            return Err(ConfigError::new(
                "NOTIFY_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        let lease = env.duration_or("NOTIFY_LEASE", defaults.lease)?;
        if lease < Duration::from_secs(1) {
            return Err(ConfigError::new("NOTIFY_LEASE", "must be at least 1s"));
        }
        let mut payment_links = BTreeMap::new();
        for (pm, var) in [
            (PaymentMethod::Kaspi, "PAYMENT_LINK_KASPI"),
            (PaymentMethod::Halyk, "PAYMENT_LINK_HALYK"),
            (PaymentMethod::Robokassa, "PAYMENT_LINK_ROBOKASSA"),
        ] {
            if let Some(link) = env.get(var) {
                if !(link.starts_with("https://") || link.starts_with("http://")) {
                    return Err(ConfigError::new(var, "must be an http(s) URL"));
                }
                payment_links.insert(pm, link.to_owned());
            }
        }
        let tz_name = env.get("NOTIFY_TIMEZONE").unwrap_or("Asia/Almaty");
        // The copy bundled into the binary: the same answer on every machine, including a
        // Lambda image without zoneinfo.
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get(tz_name)
            .map_err(|_| {
                ConfigError::new(
                    "NOTIFY_TIMEZONE",
                    format!("{tz_name:?} is not a time zone of the tz database (e.g. Asia/Almaty)"),
                )
            })?;
        let window = |var: &str, default: Window| -> Result<Window, ConfigError> {
            match env.get(var) {
                None => Ok(default),
                Some(raw) => raw
                    .parse()
                    .map_err(|e: crate::notify::BadWindow| ConfigError::new(var, e.to_string())),
            }
        };
        let nine_to_nine = "09:00-21:00".parse().unwrap_or(Window::ALWAYS);
        let windows = SendWindows::new(
            tz,
            window("NOTIFY_SMS_WINDOW", nine_to_nine)?,
            window("NOTIFY_EMAIL_WINDOW", Window::ALWAYS)?,
        );
        let sms_max_segments: u32 = env.parse_or("NOTIFY_SMS_MAX_SEGMENTS", 2)?;
        if sms_max_segments == 0 {
            return Err(ConfigError::new(
                "NOTIFY_SMS_MAX_SEGMENTS",
                "must be at least 1",
            ));
        }
        let supersede = match env.get("NOTIFY_SUPERSEDE") {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("on") => true,
            Some(v) if v.eq_ignore_ascii_case("off") => false,
            Some(v) => {
                return Err(ConfigError::new(
                    "NOTIFY_SUPERSEDE",
                    format!("{v:?}: on or off"),
                ));
            }
        };
        Ok(NotifySettings {
            windows,
            supersede,
            sms_max_segments,
            delay: env.duration_or("NOTIFY_DELAY", Duration::from_secs(600))?,
            retry: RetryPolicy {
                lease,
                max_attempts,
                backoff: crate::time::Backoff::new(
                    env.duration_or("NOTIFY_BACKOFF", defaults.backoff.base)?,
                    defaults.backoff.max,
                ),
            },
            templates_file: env.get("NOTIFY_TEMPLATES").map(PathBuf::from),
            payment_links,
        })
    }

    /// The texts: the defaults, with what the `NOTIFY_TEMPLATES` file overrides (read here, once,
    /// at start).
    pub fn templates(&self) -> Result<Arc<Templates>, ConfigError> {
        let bad = |e: &(dyn std::error::Error + 'static)| {
            let path = self.templates_file.as_deref().unwrap_or(Path::new(""));
            ConfigError::new(
                "NOTIFY_TEMPLATES",
                format!("{}: {}", path.display(), crate::error_chain(e)),
            )
        };
        let t = match &self.templates_file {
            Some(path) => {
                let raw = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
                Templates::from_json(&raw, self.payment_links.clone())
            }
            None => Templates::defaults(self.payment_links.clone()),
        };
        let t = t.map_err(|e: TemplateError| bad(&e))?;
        t.check_sms_segments(self.sms_max_segments)
            .map_err(|e| bad(&e))?;
        Ok(Arc::new(t))
    }
}

/// The SNS/SES transports' settings, shared by the AWS notify function and landing-local's
/// `LANDING_TRANSPORT=aws` (plain configuration: the SDK clients live in
/// `landing-aws-messaging`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// Sender of every email (`EMAIL_FROM`); its address or domain must be verified in SES.
    pub email_from: Email,
    /// SES configuration set for event publishing (`SES_CONFIGURATION_SET`, optional).
    pub configuration_set: Option<String>,
    /// Alphanumeric SMS sender ID (`SMS_SENDER_ID`, optional; must be registered where the
    /// destination country requires it, e.g. Kazakhstan).
    pub sms_sender_id: Option<String>,
}

impl MessagingConfig {
    pub const VARS: &'static [&'static str] =
        &["EMAIL_FROM", "SES_CONFIGURATION_SET", "SMS_SENDER_ID"];

    /// Reads `EMAIL_FROM` (required), `SES_CONFIGURATION_SET` and `SMS_SENDER_ID` (optional).
    /// Every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw_from = env
            .get("EMAIL_FROM")
            .ok_or_else(|| ConfigError::new("EMAIL_FROM", "is required"))?;
        // `Email` is a bare address (no display-name form), which is also what SES checks
        // against the verified identities.
        let email_from = Email::parse(raw_from)
            .map_err(|e| ConfigError::new("EMAIL_FROM", format!("{raw_from:?} {e}")))?;
        let configuration_set = match env.get("SES_CONFIGURATION_SET") {
            None => None,
            Some(name) if is_valid_configuration_set(name) => Some(name.to_owned()),
            Some(name) => {
                return Err(ConfigError::new(
                    "SES_CONFIGURATION_SET",
                    format!("{name:?} must be 1-64 ASCII letters, digits, '_' or '-'"),
                ));
            }
        };
        let sms_sender_id = match env.get("SMS_SENDER_ID") {
            None => None,
            Some(id) if is_valid_sender_id(id) => Some(id.to_owned()),
            Some(id) => {
                return Err(ConfigError::new(
                    "SMS_SENDER_ID",
                    format!(
                        "{id:?} must be 3-11 ASCII letters and digits with at least one letter"
                    ),
                ));
            }
        };
        Ok(MessagingConfig {
            email_from,
            configuration_set,
            sms_sender_id,
        })
    }
}

/// SMS sender ID rule: 3–11 ASCII letters and digits, at least one letter, no spaces.
pub fn is_valid_sender_id(id: &str) -> bool {
    (3..=11).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && id.bytes().any(|b| b.is_ascii_alphabetic())
}

/// SES configuration set names: 1–64 ASCII letters, digits, `_` and `-`.
pub fn is_valid_configuration_set(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn config_reads_every_variable() {
        let c = MessagingConfig::from_env(&env(&[
            ("EMAIL_FROM", " Noreply@Example.COM "),
            ("SES_CONFIGURATION_SET", "landing-events"),
            ("SMS_SENDER_ID", "Kenesary1"),
        ]))
        .unwrap();
        assert_eq!(c.email_from.as_str(), "Noreply@example.com");
        assert_eq!(c.configuration_set.as_deref(), Some("landing-events"));
        assert_eq!(c.sms_sender_id.as_deref(), Some("Kenesary1"));

        let c = MessagingConfig::from_env(&env(&[
            ("EMAIL_FROM", "noreply@example.com"),
            ("SES_CONFIGURATION_SET", ""),
        ]))
        .unwrap();
        assert_eq!(c.configuration_set, None);
        assert_eq!(c.sms_sender_id, None);
    }

    #[test]
    fn config_errors_name_their_variable() {
        for (pairs, var) in [
            (vec![], "EMAIL_FROM"),
            (vec![("EMAIL_FROM", "   ")], "EMAIL_FROM"),
            (vec![("EMAIL_FROM", "not-an-address")], "EMAIL_FROM"),
            (vec![("EMAIL_FROM", "a@b")], "EMAIL_FROM"),
            (vec![("EMAIL_FROM", "Shop <a@example.com>")], "EMAIL_FROM"),
            (vec![("EMAIL_FROM", "<a@example.com>")], "EMAIL_FROM"),
            (
                vec![("EMAIL_FROM", "a@example.com, b@example.com")],
                "EMAIL_FROM",
            ),
            (
                vec![
                    ("EMAIL_FROM", "a@example.com"),
                    ("SES_CONFIGURATION_SET", "has space"),
                ],
                "SES_CONFIGURATION_SET",
            ),
            (
                vec![("EMAIL_FROM", "a@example.com"), ("SMS_SENDER_ID", "AB")],
                "SMS_SENDER_ID",
            ),
            (
                vec![("EMAIL_FROM", "a@example.com"), ("SMS_SENDER_ID", "123456")],
                "SMS_SENDER_ID",
            ),
            (
                vec![
                    ("EMAIL_FROM", "a@example.com"),
                    ("SMS_SENDER_ID", "ABCDEFGHIJKL"),
                ],
                "SMS_SENDER_ID",
            ),
            (
                vec![
                    ("EMAIL_FROM", "a@example.com"),
                    ("SMS_SENDER_ID", "My Shop"),
                ],
                "SMS_SENDER_ID",
            ),
        ] {
            let err = MessagingConfig::from_env(&env(&pairs)).unwrap_err();
            assert_eq!(err.var, var, "{pairs:?}: {err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn sender_id_rule() {
        for ok in ["ABC", "Kenesary", "A1234567890", "1a2", "kz2025"] {
            assert!(is_valid_sender_id(ok), "{ok}");
        }
        for bad in [
            "",
            "AB",
            "123",
            "12345678901",
            "ABCDEFGHIJKL",
            "AB C",
            "AB-C",
            "AB_C",
            "Кенесары",
        ] {
            assert!(!is_valid_sender_id(bad), "{bad}");
        }
    }

    #[test]
    fn durations_accept_humantime_and_name_the_variable_when_bad() {
        let env = Env::from_pairs([("NOTIFY_DELAY", "90s"), ("NOTIFY_LEASE", "soon")]);
        assert_eq!(
            env.duration_or("NOTIFY_DELAY", Duration::ZERO),
            Ok(Duration::from_secs(90))
        );
        let err = env.duration_or("NOTIFY_LEASE", Duration::ZERO).unwrap_err();
        assert_eq!(err.var, "NOTIFY_LEASE");
        assert!(
            NotifySettings::from_env(&env)
                .unwrap_err()
                .to_string()
                .starts_with("NOTIFY_LEASE:")
        );
    }

    #[test]
    fn unknown_variables_with_our_prefixes_are_refused() {
        let env = Env::from_pairs([("NOTIFY_DELAYY", "1m"), ("HOME", "/root")]);
        let err = env.reject_unknown(&["NOTIFY_"], NOTIFY_VARS).unwrap_err();
        assert_eq!(err.var, "NOTIFY_DELAYY");
        assert!(
            Env::from_pairs([("NOTIFY_DELAY", "1m")])
                .reject_unknown(&["NOTIFY_"], NOTIFY_VARS)
                .is_ok()
        );
    }

    #[test]
    fn the_templates_file_is_read_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"proftest": {"sms": "Привет, {{ name }}!"}}"#).unwrap();
        let env = |p: &Path| Env::from_pairs([("NOTIFY_TEMPLATES", p.display().to_string())]);
        assert!(
            NotifySettings::from_env(&env(&good))
                .unwrap()
                .templates()
                .is_ok()
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        for path in [bad, dir.path().join("missing.json")] {
            let err = NotifySettings::from_env(&env(&path))
                .unwrap()
                .templates()
                .unwrap_err();
            assert_eq!(err.var, "NOTIFY_TEMPLATES");
            assert!(err.reason.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn notify_settings_default_to_ten_minutes() {
        let s = NotifySettings::from_env(&Env::default()).unwrap();
        assert_eq!(s.delay, Duration::from_secs(600));
        assert_eq!(s.retry.lease, Duration::from_secs(30));
        assert!(
            NotifySettings::from_env(&Env::from_pairs([("PAYMENT_LINK_KASPI", "kaspi.kz")]))
                .is_err()
        );
        assert!(
            NotifySettings::from_env(&Env::from_pairs([("NOTIFY_MAX_ATTEMPTS", "0")])).is_err()
        );
    }

    #[test]
    fn follow_up_settings_default_to_almaty_nine_to_nine_and_bad_values_name_their_variable() {
        let n = NotifySettings::from_env(&Env::default()).unwrap();
        assert_eq!(
            n.windows.describe(),
            "Asia/Almaty sms 09:00-21:00 email always"
        );
        assert_eq!((n.sms_max_segments, n.supersede), (2, true));
        for (var, value) in [
            ("NOTIFY_TIMEZONE", "Asia/Nowhere"),
            ("NOTIFY_SMS_WINDOW", "9-21"),
            ("NOTIFY_EMAIL_WINDOW", "08:00-08:00"),
            ("NOTIFY_SMS_MAX_SEGMENTS", "0"),
            ("NOTIFY_SUPERSEDE", "yes"),
        ] {
            let err = NotifySettings::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
        let n = NotifySettings::from_env(&Env::from_pairs([
            ("NOTIFY_TIMEZONE", "Asia/Aqtobe"),
            ("NOTIFY_SMS_WINDOW", "always"),
            ("NOTIFY_SUPERSEDE", "off"),
        ]))
        .unwrap();
        assert_eq!(n.windows.describe(), "Asia/Aqtobe sms always email always");
        assert!(!n.supersede);
    }
}
