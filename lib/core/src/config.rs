//! Configuration from the environment, read once at start. Every error names the variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::PaymentMethod;
use crate::notify::{RetryPolicy, TemplateError, Templates};

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
        Ok(NotifySettings {
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
        t.map(Arc::new).map_err(|e: TemplateError| bad(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
