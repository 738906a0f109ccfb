//! HMAC-SHA-256 under a secret key of the configuration: the stored client-address hash
//! (`LANDING_IP_HASH_KEY`) and the unsubscribe links' tokens (`UNSUBSCRIBE_SECRET`).

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::config::ConfigError;

#[derive(Clone)]
pub struct HmacKey {
    key: SecretString,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey").finish_non_exhaustive()
    }
}

impl HmacKey {
    /// Short keys are guessable; 16 characters is the least that is not.
    pub const MIN_LEN: usize = 16;

    /// `var` is the setting the key comes from, named in the error.
    pub fn new(var: &str, key: SecretString) -> Result<Self, ConfigError> {
        if key.expose_secret().len() < Self::MIN_LEN {
            return Err(ConfigError::new(
                var,
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        Ok(HmacKey { key })
    }

    fn mac(&self, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        // HMAC takes keys of any length: `None` cannot happen.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes()).ok()?;
        for p in parts {
            mac.update(p);
        }
        Some(mac)
    }

    /// The MAC of `parts` (concatenated), truncated to `len` bytes (at most 32).
    pub fn digest(&self, parts: &[&[u8]], len: usize) -> Vec<u8> {
        self.mac(parts)
            .map(|m| {
                m.finalize()
                    .into_bytes()
                    .iter()
                    .take(len)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `tag` is the MAC of `parts` truncated to its length, compared in constant time.
    pub fn verify_truncated(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        !tag.is_empty()
            && self
                .mac(parts)
                .is_some_and(|m| m.verify_truncated_left(tag).is_ok())
    }
}
