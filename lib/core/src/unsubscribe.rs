//! One-click unsubscribe (RFC 8058): every email carries a link signed for its lead, and the
//! link's `POST` puts the lead's address on the suppression list. The token names the lead, not
//! the address, so no address ever sits in a URL (or in the access logs that record URLs).

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use crate::config::{ConfigError, Env};
use crate::domain::{AddressSuppression, LeadId};
use crate::keyed_hash::HmacKey;
use crate::ports::{Clock, LeadStore, StoreError, SuppressionList};

/// The key the links are signed with (`UNSUBSCRIBE_SECRET`).
#[derive(Debug, Clone)]
pub struct UnsubscribeKey {
    key: HmacKey,
}

/// 128 bits of HMAC: unguessable, and the token stays 64 hex characters.
const MAC_BYTES: usize = 16;

/// The token does not verify (altered, truncated, or signed with another key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the unsubscribe token is not valid")]
pub struct BadToken;

impl UnsubscribeKey {
    pub const VAR: &'static str = "UNSUBSCRIBE_SECRET";

    pub fn new(key: SecretString) -> Result<Self, ConfigError> {
        Ok(UnsubscribeKey {
            key: HmacKey::new(Self::VAR, key)?,
        })
    }

    /// The lead id and its MAC, in hex: nothing a URL or a header needs to escape.
    pub fn token(&self, lead: LeadId) -> String {
        let mac = self
            .key
            .digest(&[b"unsubscribe:", lead.0.as_bytes()], MAC_BYTES);
        format!("{}{}", lead.0.simple(), hex::encode(mac))
    }

    /// The lead a token was signed for.
    pub fn verify(&self, token: &str) -> Result<LeadId, BadToken> {
        let token = token.trim();
        let (id, mac) = (
            token.get(..32).ok_or(BadToken)?,
            token.get(32..).ok_or(BadToken)?,
        );
        let lead = Uuid::try_parse(id).map(LeadId).map_err(|_| BadToken)?;
        let given = hex::decode(mac).map_err(|_| BadToken)?;
        let signed = given.len() == MAC_BYTES
            && self
                .key
                .verify_truncated(&[b"unsubscribe:", lead.0.as_bytes()], &given);
        signed.then_some(lead).ok_or(BadToken)
    }
}

/// Where the links point (`UNSUBSCRIBE_URL`, the public URL of `/api/landing/unsubscribe`) and
/// the key that signs them.
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    base: String,
    key: UnsubscribeKey,
}

/// The settings of the unsubscribe links, on both runtimes.
pub const UNSUBSCRIBE_VARS: &[&str] = &[UnsubscribeKey::VAR, UnsubscribeLinks::URL_VAR];

impl UnsubscribeLinks {
    pub const URL_VAR: &'static str = "UNSUBSCRIBE_URL";

    /// `base` must be an absolute http(s) URL without a query; it goes into a header, so it may
    /// hold nothing a header or `<…>` could be broken by.
    pub fn new(base: &str, key: UnsubscribeKey) -> Result<Self, ConfigError> {
        Self::check_base(base)?;
        Ok(UnsubscribeLinks {
            base: base.to_owned(),
            key,
        })
    }

    /// Whether `base` can be the links' base URL (what [`UnsubscribeLinks::new`] checks).
    pub fn check_base(base: &str) -> Result<(), ConfigError> {
        let bad = |why: &str| ConfigError::new(Self::URL_VAR, why.to_owned());
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or_else(|| bad("must start with https:// (or http:// for landing-local)"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("has no host"));
        }
        if base
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"'?#,".contains(c))
        {
            return Err(bad(
                "may not hold spaces, control characters, quotes, <, >, a comma, a query or a fragment",
            ));
        }
        Ok(())
    }

    /// `UNSUBSCRIBE_URL` with `UNSUBSCRIBE_SECRET` (the notify function's settings): both, or
    /// neither (emails then go without a link, which the caller warns about).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        match (env.get(Self::URL_VAR), env.get(UnsubscribeKey::VAR)) {
            (Some(url), Some(secret)) => Ok(Some(UnsubscribeLinks::new(
                url,
                UnsubscribeKey::new(SecretString::from(secret.to_owned()))?,
            )?)),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                UnsubscribeKey::VAR,
                "is required with UNSUBSCRIBE_URL (it signs the links)",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                Self::URL_VAR,
                "is required with UNSUBSCRIBE_SECRET (where the links point)",
            )),
        }
    }

    /// The link of one lead's emails.
    pub fn url(&self, lead: LeadId) -> String {
        format!("{}?token={}", self.base, self.key.token(lead))
    }
}

/// What an unsubscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The address is now on the list.
    Added,
    /// It was on the list already (a second click, a mail client and then the person).
    AlreadyListed,
}

#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    #[error(transparent)]
    BadToken(#[from] BadToken),
    /// A signed token of a lead the store does not hold, or one without a valid address.
    #[error("lead {0} has no address to unsubscribe")]
    NoAddress(LeadId),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The unsubscribe use case, the same on both runtimes.
pub struct Unsubscribe {
    leads: Arc<dyn LeadStore>,
    list: Arc<dyn SuppressionList>,
    key: UnsubscribeKey,
    clock: Arc<dyn Clock>,
}

impl Unsubscribe {
    pub fn new(
        leads: Arc<dyn LeadStore>,
        list: Arc<dyn SuppressionList>,
        key: UnsubscribeKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Unsubscribe {
            leads,
            list,
            key,
            clock,
        }
    }

    /// Checks a token without changing anything (the page a `GET` of the link shows).
    pub fn check(&self, token: &str) -> Result<LeadId, BadToken> {
        self.key.verify(token)
    }

    /// Puts the address of the token's lead on the suppression list.
    pub async fn unsubscribe(&self, token: &str) -> Result<Unsubscribed, UnsubscribeError> {
        let lead_id = self.key.verify(token)?;
        let lead = self
            .leads
            .get_lead(lead_id)
            .await?
            .ok_or(UnsubscribeError::NoAddress(lead_id))?;
        let email = lead
            .email
            .valid()
            .ok_or(UnsubscribeError::NoAddress(lead_id))?;
        let added = self
            .list
            .suppress_address(email, AddressSuppression::Unsubscribed, self.clock.now())
            .await?;
        tracing::info!(event = "address_unsubscribed", lead_id = %lead_id, to = %email.masked(), newly = added, "address unsubscribed");
        Ok(if added {
            Unsubscribed::Added
        } else {
            Unsubscribed::AlreadyListed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> UnsubscribeKey {
        UnsubscribeKey::new(SecretString::from(s.to_owned())).unwrap()
    }

    fn lead() -> LeadId {
        LeadId(Uuid::now_v7())
    }

    #[test]
    fn a_token_verifies_to_the_lead_it_was_signed_for() {
        let k = key("0123456789abcdef-secret");
        let id = lead();
        let token = k.token(id);
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(k.verify(&token), Ok(id));
    }

    #[test]
    fn an_altered_truncated_or_foreign_token_is_refused() {
        let k = key("0123456789abcdef-secret");
        let id = lead();
        let token = k.token(id);
        let other = k.token(lead());
        // Another lead's id with this lead's MAC.
        let swapped = format!("{}{}", &other[..32], &token[32..]);
        assert_eq!(k.verify(&swapped), Err(BadToken));
        assert_eq!(k.verify(&token[..63]), Err(BadToken));
        assert_eq!(k.verify(&token[..40]), Err(BadToken));
        assert_eq!(k.verify(&token[..32]), Err(BadToken));
        assert_eq!(k.verify(&format!("{token}00")), Err(BadToken));
        assert_eq!(k.verify(""), Err(BadToken));
        assert_eq!(k.verify("ж".repeat(40).as_str()), Err(BadToken));
        assert_eq!(key("another-key-of-16-chars").verify(&token), Err(BadToken));
    }

    #[test]
    fn a_short_key_is_refused_at_start() {
        let e = UnsubscribeKey::new(SecretString::from("short".to_owned())).unwrap_err();
        assert_eq!(e.var, "UNSUBSCRIBE_SECRET");
    }

    #[test]
    fn the_link_is_the_base_url_with_the_token_and_nothing_a_header_could_break_on() {
        let k = key("0123456789abcdef-secret");
        let links = UnsubscribeLinks::new(
            "https://school.example.kz/api/landing/unsubscribe",
            k.clone(),
        )
        .unwrap();
        let id = lead();
        assert_eq!(
            links.url(id),
            format!(
                "https://school.example.kz/api/landing/unsubscribe?token={}",
                k.token(id)
            )
        );
        for bad in [
            "school.example.kz/api",
            "https://",
            "https:///path",
            "https://a.kz/x?y=1",
            "https://a.kz/x\r\nBcc: x@y.kz",
            "https://a.kz/x>,<mailto:x@y.kz",
            "ftp://a.kz/x",
        ] {
            assert!(UnsubscribeLinks::new(bad, k.clone()).is_err(), "{bad}");
        }
    }
}
