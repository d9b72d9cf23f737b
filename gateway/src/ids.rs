//! Order ids the gateway makes when a client leaves `order_id` out, and the tag that names
//! one HTTP request across the gateway's own resends.
//!
//! Gateways are stateless and many, so an id must be unique without coordination: 96 random
//! bits make a collision (which would turn a new order into a replay of someone else's)
//! negligible. The id is made once per HTTP request, before the first attempt, so the
//! gateway's own retries carry the same id and cannot reserve twice.
//!
//! The bits come from `rand`'s thread-local generator: a cryptographically secure one seeded
//! and periodically reseeded from the OS, so ids stay unpredictable (nobody can claim a
//! client's id first) without a system call per request.

use rand::Rng;
use state_machine::OrderId;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `gw-` and 24 lowercase hex digits: 27 characters, inside the identifier rule.
pub fn new_order_id() -> OrderId {
    let raw: [u8; 12] = rand::rng().random();
    let mut id = String::with_capacity(27);
    id.push_str("gw-");
    for b in raw {
        id.push(HEX[usize::from(b >> 4)] as char);
        id.push(HEX[usize::from(b & 0xf)] as char);
    }
    // The format above always satisfies the rule; a failure here is a bug in this function.
    OrderId::new(id).expect("gateway-made order ids follow the identifier rule")
}

/// A random, non-zero request tag (0 means "untagged" to the state machine). Made once per
/// create request, before the first attempt: when the first attempt committed but its answer
/// was lost, the resend carries the same tag and the state machine reports "created", so the
/// client gets `201`, not the `200` of someone else's replay. 64 random bits make two
/// requests for the same id sharing a tag negligible.
pub fn new_request_tag() -> u64 {
    let mut rng = rand::rng();
    loop {
        let tag: u64 = rng.random();
        if tag != 0 {
            return tag;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tags_are_never_untagged_and_differ() {
        let tags: Vec<u64> = (0..64).map(|_| new_request_tag()).collect();
        assert!(tags.iter().all(|t| *t != 0));
        let distinct: std::collections::BTreeSet<_> = tags.iter().collect();
        assert_eq!(distinct.len(), tags.len());
    }

    #[test]
    fn ids_follow_the_rule_and_differ() {
        let a = new_order_id();
        let b = new_order_id();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 27);
        assert!(a.as_str().starts_with("gw-"));
        assert!(a.as_str()[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
