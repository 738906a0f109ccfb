//! landing-local's configuration (README "Configuration"): read once, every error names its
//! variable, unknown variables with our prefixes are refused.

use std::net::SocketAddr;
use std::path::PathBuf;

use landing_amocrm::{AMOCRM_VARS, AmoSettings};
use landing_core::config::MessagingConfig;
use landing_core::config::{ConfigError, Env, NOTIFY_VARS, NotifySettings};
use landing_core::guard::{IpHasher, OriginPolicy, Screening, SmsGuardConfig};
use landing_core::keyed_hash::HmacKey;
use landing_core::unsubscribe::{UNSUBSCRIBE_VARS, UnsubscribeKey, UnsubscribeLinks};
use secrecy::SecretString;

use crate::client::{TRUSTED_PROXIES_VAR, TrustedProxies};

const LOCAL_VARS: &[&str] = &[
    "LANDING_ADDR",
    "LANDING_DATA_DIR",
    "LANDING_TRANSPORT",
    "CORS_ALLOWED_ORIGINS",
    "LANDING_WEB_CONTENT",
    TRUSTED_PROXIES_VAR,
    ADMIN_TOKEN_VAR,
];

/// The bearer token of `GET /admin/report`; unset, the route does not exist.
pub const ADMIN_TOKEN_VAR: &str = "LANDING_ADMIN_TOKEN";

#[derive(Debug)]
pub struct LocalConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub notify: NotifySettings,
    /// `CORS_ALLOWED_ORIGINS`: the CORS answers, and which browser origins intake accepts.
    pub origins: OriginPolicy,
    /// `HONEYPOT_FIELD`.
    pub honeypot_field: String,
    /// `LANDING_IP_HASH_KEY`; `None`: the key generated once in the data dir.
    pub ip_hash_key: Option<SecretString>,
    pub trusted_proxies: TrustedProxies,
    pub sms_guard: SmsGuardConfig,
    /// `UNSUBSCRIBE_SECRET`; `None`: the key generated once in the data dir.
    pub unsubscribe_secret: Option<SecretString>,
    /// `UNSUBSCRIBE_URL`; `None`: this server's own `/api/landing/unsubscribe`.
    pub unsubscribe_url: Option<String>,
    /// `LANDING_ADMIN_TOKEN`: serves `GET /admin/report` to whoever presents it.
    pub admin_token: Option<SecretString>,
    /// `None`: no AmoCRM credentials, the sync is disabled.
    pub crm: Option<AmoSettings>,
    pub senders: Senders,
    /// `LANDING_WEB_CONTENT`: a replacement for the pages' embedded `web/content.json`.
    pub web_content: Option<PathBuf>,
}

/// Where SMS and email go (`LANDING_TRANSPORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Senders {
    /// Appended to `outbox.jsonl` in the data dir.
    Outbox,
    /// Real SNS (SMS) and SES v2 (email), with AWS's default credential chain. Only in a build
    /// with the `aws` feature: a newcomer's first build should not compile the AWS SDK.
    #[cfg(feature = "aws")]
    Aws(MessagingConfig),
}

impl Senders {
    #[cfg(feature = "aws")]
    fn aws(env: &Env) -> Result<Self, ConfigError> {
        Ok(Senders::Aws(MessagingConfig::from_env(env)?))
    }

    #[cfg(not(feature = "aws"))]
    fn aws(env: &Env) -> Result<Self, ConfigError> {
        // Checked anyway, so the message about the feature is the only one left to act on.
        MessagingConfig::from_env(env)?;
        Err(ConfigError::new(
            "LANDING_TRANSPORT",
            "\"aws\" needs a landing-local built with the `aws` feature \
             (cargo run --release -p landing-local --features aws)",
        ))
    }
}

impl LocalConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let known: Vec<&str> = LOCAL_VARS
            .iter()
            .chain(NOTIFY_VARS)
            .chain(AMOCRM_VARS)
            .chain(MessagingConfig::VARS)
            .chain(SmsGuardConfig::VARS)
            .chain(Screening::VARS)
            .chain(UNSUBSCRIBE_VARS)
            .copied()
            .collect();
        env.reject_unknown(
            &[
                "LANDING_",
                "NOTIFY_",
                "PAYMENT_LINK_",
                "CORS_",
                "AMOCRM_",
                "EMAIL_",
                "SMS_",
                "SES_",
                "HONEYPOT_",
                "UNSUBSCRIBE_",
            ],
            &known,
        )?;
        let senders = match env.get("LANDING_TRANSPORT") {
            None | Some("outbox") => Senders::Outbox,
            Some("aws") => Senders::aws(env)?,
            Some(other) => {
                return Err(ConfigError::new(
                    "LANDING_TRANSPORT",
                    format!("{other:?} is not one of outbox, aws"),
                ));
            }
        };
        let addr_raw = env.string_or("LANDING_ADDR", "127.0.0.1:3000");
        let addr = addr_raw.parse().map_err(|_| {
            ConfigError::new(
                "LANDING_ADDR",
                format!("{addr_raw:?} is not an address like 127.0.0.1:3000"),
            )
        })?;
        Ok(LocalConfig {
            addr,
            data_dir: PathBuf::from(env.string_or("LANDING_DATA_DIR", "./data")),
            notify: NotifySettings::from_env(env)?,
            origins: OriginPolicy::from_env(env)?,
            honeypot_field: Screening::honeypot_from_env(env)?,
            ip_hash_key: checked_key(env, IpHasher::VAR)?,
            trusted_proxies: TrustedProxies::from_env(env)?,
            sms_guard: SmsGuardConfig::from_env(env)?,
            unsubscribe_secret: checked_key(env, UnsubscribeKey::VAR)?,
            unsubscribe_url: match env.get(UnsubscribeLinks::URL_VAR) {
                Some(url) => {
                    UnsubscribeLinks::check_base(url)?;
                    Some(url.to_owned())
                }
                None => None,
            },
            admin_token: match env.get(ADMIN_TOKEN_VAR) {
                Some(t) if t.len() < 16 => {
                    return Err(ConfigError::new(
                        ADMIN_TOKEN_VAR,
                        "must be at least 16 characters (it guards every lead's data)",
                    ));
                }
                Some(t) => Some(SecretString::from(t.to_owned())),
                None => None,
            },
            crm: AmoSettings::from_env(env)?,
            senders,
            web_content: env.get("LANDING_WEB_CONTENT").map(PathBuf::from),
        })
    }
}

/// A key setting, checked here so that a short key stops the process at start; `None` when
/// unset (the runtime then uses the key it keeps in the data dir).
fn checked_key(env: &Env, var: &str) -> Result<Option<SecretString>, ConfigError> {
    env.get(var)
        .map(|k| {
            let key = SecretString::from(k.to_owned());
            HmacKey::new(var, key.clone()).map(|_| key)
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let c = LocalConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.notify.delay.as_secs(), 600);
        assert_eq!(c.origins, OriginPolicy::Any);
        assert_eq!(c.honeypot_field, "website");
        assert!(c.ip_hash_key.is_none());
        assert_eq!(
            c.sms_guard,
            SmsGuardConfig::from_env(&Env::default()).unwrap()
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (var, value) in [
            ("LANDING_ADDR", "localhost"),
            ("NOTIFY_DELAY", "ten minutes"),
            ("CORS_ALLOWED_ORIGINS", "school.kz"),
            ("CORS_ALLOWED_ORIGINS", "https://school.kz/path"),
            ("LANDING_TRANSPORT", "pigeon"),
            ("LANDING_DATADIR", "/tmp"),
            ("SMS_BUDGET", "lots"),
            ("SMS_LIMIT_PER_PHONEE", "3/24h"),
            ("HONEYPOT_FIELD", "web site"),
            ("HONEYPOT_FEILD", "x"),
            ("LANDING_IP_HASH_KEY", "short"),
            ("LANDING_TRUSTED_PROXIES", "everyone"),
            ("LANDING_ADMIN_TOKEN", "short"),
            ("UNSUBSCRIBE_SECRET", "short"),
            ("UNSUBSCRIBE_URL", "https://school.kz/unsub?x=1"),
            ("UNSUBSCRIBE_URL", "school.kz/api/landing/unsubscribe"),
            ("UNSUBSCRIBE_URLL", "https://school.kz"),
        ] {
            let err = LocalConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
    }

    #[test]
    #[cfg(feature = "aws")]
    fn aws_transport_needs_a_sender_address() {
        let err =
            LocalConfig::from_env(&Env::from_pairs([("LANDING_TRANSPORT", "aws")])).unwrap_err();
        assert_eq!(err.var, "EMAIL_FROM");
        let c = LocalConfig::from_env(&Env::from_pairs([
            ("LANDING_TRANSPORT", "aws"),
            ("EMAIL_FROM", "school@mail.kz"),
        ]))
        .unwrap();
        assert!(matches!(c.senders, Senders::Aws(_)));
    }

    #[test]
    #[cfg(not(feature = "aws"))]
    fn aws_transport_without_the_feature_names_the_feature() {
        let err = LocalConfig::from_env(&Env::from_pairs([
            ("LANDING_TRANSPORT", "aws"),
            ("EMAIL_FROM", "school@mail.kz"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "LANDING_TRANSPORT");
        assert!(err.reason.contains("--features aws"), "{err}");
    }

    #[test]
    fn cors_takes_a_comma_separated_allow_list() {
        let c = LocalConfig::from_env(&Env::from_pairs([(
            "CORS_ALLOWED_ORIGINS",
            "https://school.kz, http://localhost:5173",
        )]))
        .unwrap();
        assert_eq!(
            c.origins,
            OriginPolicy::List(vec![
                "https://school.kz".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
    }
}
