//! Bearer tokens of the gateway's HTTP API (`invctl tokens new`). A token is 32 random bytes
//! shown once in hex; configs hold only its SHA-256, so a leaked config grants nothing. The
//! tokens are random, not chosen by people, so a plain hash needs no salt or stretching.

use sha2::{Digest, Sha256};

/// A fresh token, 64 hex characters.
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex(&bytes))
}

pub fn hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The hash as a config stores it: 64 lowercase hex characters.
pub fn hash_hex(token: &str) -> String {
    hex(&hash(token.as_bytes()))
}

/// Reads a stored hash back; `None` unless exactly 64 hex characters.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_their_hashes_round_trip() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(parse_hash(&hash_hex(&a)), Some(hash(a.as_bytes())));
        assert_eq!(parse_hash("xyz"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
    }
}
