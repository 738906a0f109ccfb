//! JWT-shaped tokens (unsigned for real, but with a decodable `exp` claim) and opaque strings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// splitmix64 over time and a counter: unique, not cryptographic (it's a fake).
pub(crate) fn random_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn random_hex(words: usize) -> String {
    (0..words)
        .map(|_| format!("{:016x}", random_u64()))
        .collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub(crate) fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWT-looking access token: `header.payload.signature`, payload carries `exp`/`iat`/`jti`.
pub(crate) fn jwt(payload: &serde_json::Value) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "jti": random_hex(2)});
    let sig: Vec<u8> = (0..4).flat_map(|_| random_u64().to_le_bytes()).collect();
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes()),
        b64url(&sig)
    )
}

/// An opaque refresh token in the style of AmoCRM's (`def50200…`).
pub(crate) fn refresh_token() -> String {
    format!("def50200{}", random_hex(8))
}

/// An authorization code.
pub(crate) fn auth_code() -> String {
    format!("def50200{}", random_hex(4))
}

#[cfg(test)]
mod tests {
    use super::b64url;

    #[test]
    fn base64url_known_vectors() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foob"), "Zm9vYg");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }
}
