//! Keyed hashes of addresses: what logs, metrics and error messages carry instead of an address.
//!
//! HMAC-SHA256 under an operator-held key, so that a hash cannot be reversed by hashing a list of
//! guessed addresses, yet an operator with the key can find a person's log lines
//! (`suppressions hash ADDRESS`).

use aws_lc_rs::hmac;

/// Key used when the operator sets none. Hashes made with it are only pseudonymous: anyone can
/// recompute them for a guessed address. Deployments set `ADDRESS_HASH_KEY`.
pub const DEFAULT_HASH_KEY: &str = "mailcow-ses-feedback/default-address-hash-key";

/// Number of hex digits kept: 64 bits, plenty to tell addresses apart in logs.
const HASH_HEX_LEN: usize = 16;

/// Computes the keyed hash of an address or any other personal value.
#[derive(Clone)]
pub struct AddressHasher {
    key: hmac::Key,
}

impl AddressHasher {
    /// A hasher under `key`.
    pub fn new(key: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key) }
    }

    /// The hash of `value` (a normalised address, or `*@domain`), as 16 lowercase hex digits.
    pub fn hash(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        let mut out = String::with_capacity(HASH_HEX_LEN);
        for byte in tag.as_ref().iter().take(HASH_HEX_LEN / 2) {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

impl Default for AddressHasher {
    fn default() -> Self {
        Self::new(DEFAULT_HASH_KEY.as_bytes())
    }
}

impl std::fmt::Debug for AddressHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressHasher(<key>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_keyed_and_short() {
        let a = AddressHasher::new(b"key-a");
        let b = AddressHasher::new(b"key-b");
        assert_eq!(a.hash("x@example.com"), a.hash("x@example.com"));
        assert_ne!(a.hash("x@example.com"), b.hash("x@example.com"));
        assert_ne!(a.hash("x@example.com"), a.hash("y@example.com"));
        assert_eq!(a.hash("x@example.com").len(), 16);
        assert!(a.hash("x@example.com").bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
