//! Who is asking: the client address landing-local records (hashed) for the SMS guard, and the
//! key it is hashed with.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use landing_core::config::{ConfigError, Env};
use secrecy::SecretString;

pub const TRUSTED_PROXIES_VAR: &str = "LANDING_TRUSTED_PROXIES";

/// Proxies whose `X-Forwarded-For` is believed (`LANDING_TRUSTED_PROXIES`, CIDRs). Without any,
/// the socket's peer is the client and `X-Forwarded-For` is ignored: anyone can write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(raw) = env.get(TRUSTED_PROXIES_VAR) else {
            return Ok(TrustedProxies::default());
        };
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        TRUSTED_PROXIES_VAR,
                        format!("{part:?} is not a CIDR like 10.0.0.0/8 or an address"),
                    )
                })?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the rightmost
    /// `X-Forwarded-For` hop that is not one (hops left of it were written by whoever sent the
    /// request, so they prove nothing).
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded_for
            .unwrap_or("")
            .split(',')
            .filter_map(|h| h.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        hops.iter()
            .rev()
            .find(|h| !self.trusts(**h))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key of `LANDING_IP_HASH_KEY` when it is unset: generated once and kept in the data
/// directory (`ip-hash.key`, readable by the owner only), so hashes stay comparable across
/// restarts without anyone having to invent a secret for a first run.
pub fn stored_ip_hash_key(data_dir: &Path) -> std::io::Result<SecretString> {
    stored_key(data_dir, "ip-hash.key")
}

/// The key that signs the emails' unsubscribe links when `UNSUBSCRIBE_SECRET` is not set:
/// generated once, kept in the data dir, so links sent before a restart still work after it.
pub fn stored_unsubscribe_key(data_dir: &Path) -> std::io::Result<SecretString> {
    stored_key(data_dir, "unsubscribe.key")
}

/// A random key kept in `file` of the data dir (created once, readable by its owner only).
fn stored_key(data_dir: &Path, file: &str) -> std::io::Result<SecretString> {
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => return Ok(SecretString::from(k.trim().to_owned())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(key.as_bytes())?;
            f.sync_all()?;
            Ok(SecretString::from(key))
        }
        // Another process wrote it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(SecretString::from(
            std::fs::read_to_string(&path)?.trim().to_owned(),
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn proxies(raw: &str) -> TrustedProxies {
        TrustedProxies::from_env(&Env::from_pairs([(TRUSTED_PROXIES_VAR, raw)])).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_is_the_client() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.5"), Some("1.2.3.4")),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies("10.0.0.0/8, 127.0.0.1");
        assert_eq!(
            p.client(ip("127.0.0.1"), Some("203.0.113.5")),
            ip("203.0.113.5")
        );
        assert_eq!(
            p.client(ip("10.1.1.1"), Some("6.6.6.6, 203.0.113.5, 10.2.2.2")),
            ip("203.0.113.5"),
            "a spoofed leftmost hop is not believed"
        );
        assert_eq!(
            p.client(ip("::ffff:127.0.0.1"), Some("198.51.100.1")),
            ip("198.51.100.1")
        );
        assert_eq!(p.client(ip("127.0.0.1"), None), ip("127.0.0.1"));
        assert_eq!(p.client(ip("127.0.0.1"), Some("garbage")), ip("127.0.0.1"));
        assert_eq!(
            p.client(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9"),
            "an untrusted peer"
        );
    }

    #[test]
    fn a_bad_proxy_list_names_the_variable() {
        let err =
            TrustedProxies::from_env(&Env::from_pairs([(TRUSTED_PROXIES_VAR, "10.0.0.0/33")]))
                .unwrap_err();
        assert_eq!(err.var, TRUSTED_PROXIES_VAR);
    }

    #[test]
    fn the_generated_key_is_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = stored_ip_hash_key(dir.path()).unwrap();
        let b = stored_ip_hash_key(dir.path()).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ip-hash.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
