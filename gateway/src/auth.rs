//! Bearer tokens on the API (API.md, "Access control"). Off unless the config lists tokens.
//! The scope a request needs is decided by method and path alone, so routes added later are
//! covered without touching this: every `GET` (and `HEAD`) under `/v1/` needs `read`; other
//! methods need `catalog` under `/v1/skus` and `orders` under `/v1/orders`; anything else
//! under `/v1/` needs a known token (its route answers 404 or 405). Nothing outside `/v1/`
//! needs one: `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/ui/`.
//!
//! Configs hold SHA-256 hashes only; a presented token is hashed and compared with every
//! stored hash in constant time. Neither a token nor its hash is ever logged or echoed.

use axum::extract::Request;
use axum::http::{header, Method};
use cluster_config::ApiToken;
use subtle::{Choice, ConstantTimeEq};

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Orders,
    Catalog,
    Read,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Orders => "orders",
            Scope::Catalog => "catalog",
            Scope::Read => "read",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Orders => 1,
            Scope::Catalog => 2,
            Scope::Read => 4,
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        [Scope::Orders, Scope::Catalog, Scope::Read]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needed {
    Nothing,
    AnyToken,
    Scope(Scope),
}

pub fn needed(method: &Method, path: &str) -> Needed {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Needed::Nothing;
    };
    if method == Method::GET || method == Method::HEAD {
        return Needed::Scope(Scope::Read);
    }
    let first = rest.split('/').next().unwrap_or_default();
    match first {
        "skus" => Needed::Scope(Scope::Catalog),
        "orders" => Needed::Scope(Scope::Orders),
        _ => Needed::AnyToken,
    }
}

/// The configured tokens: hash and scope bits.
#[derive(Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], u8)>,
}

impl Tokens {
    /// From a validated config.
    pub fn from_config(tokens: &[ApiToken]) -> Self {
        let entries = tokens
            .iter()
            .filter_map(|t| {
                let hash = cluster_config::mtls::token::parse_hash(&t.sha256)?;
                let bits = t
                    .scopes
                    .iter()
                    .filter_map(|s| Scope::parse(s))
                    .fold(0, |bits, s| bits | s.bit());
                Some((hash, bits))
            })
            .collect();
        Self { entries }
    }

    pub fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// The scope bits of `token`, or `None` if it is not configured. Every stored hash is
    /// compared, in constant time, whichever matches.
    fn scopes_of(&self, token: &str) -> Option<u8> {
        let presented = cluster_config::mtls::token::hash(token.as_bytes());
        let mut found = Choice::from(0);
        let mut bits = 0u8;
        for (hash, scopes) in &self.entries {
            let hit = hash.ct_eq(&presented);
            found |= hit;
            bits |= scopes & 0u8.wrapping_sub(hit.unwrap_u8());
        }
        bool::from(found).then_some(bits)
    }

    /// `Err` is the 401 or 403 to answer before anything else runs (admission, body
    /// reading).
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let needed = needed(req.method(), req.uri().path());
        if !self.enabled() || needed == Needed::Nothing {
            return Ok(());
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthenticated("a bearer token is required"))?;
        let bits = self
            .scopes_of(token)
            .ok_or_else(|| ApiError::unauthenticated("unknown bearer token"))?;
        match needed {
            Needed::Scope(scope) if bits & scope.bit() == 0 => {
                Err(ApiError::forbidden(scope.name()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_by_method_and_path_covers_routes_added_later() {
        let n = |m: Method, p: &str| needed(&m, p);
        assert_eq!(n(Method::GET, "/v1/skus/a"), Needed::Scope(Scope::Read));
        assert_eq!(
            n(Method::GET, "/v1/events/stream"),
            Needed::Scope(Scope::Read)
        );
        assert_eq!(
            n(Method::GET, "/v1/skus/a/sales"),
            Needed::Scope(Scope::Read)
        );
        assert_eq!(n(Method::POST, "/v1/skus"), Needed::Scope(Scope::Catalog));
        assert_eq!(
            n(Method::PATCH, "/v1/skus/a"),
            Needed::Scope(Scope::Catalog)
        );
        assert_eq!(
            n(Method::POST, "/v1/skus/a/restock"),
            Needed::Scope(Scope::Catalog)
        );
        assert_eq!(
            n(Method::POST, "/v1/orders/batch"),
            Needed::Scope(Scope::Orders)
        );
        assert_eq!(
            n(Method::POST, "/v1/orders/o/refund"),
            Needed::Scope(Scope::Orders)
        );
        assert_eq!(n(Method::DELETE, "/v1/other"), Needed::AnyToken);
        assert_eq!(n(Method::GET, "/healthz"), Needed::Nothing);
        assert_eq!(n(Method::GET, "/metrics"), Needed::Nothing);
        assert_eq!(n(Method::GET, "/openapi.json"), Needed::Nothing);
        assert_eq!(n(Method::GET, "/ui/"), Needed::Nothing);
    }

    #[test]
    fn only_configured_tokens_match_with_their_own_scopes() {
        let t1 = "t1".repeat(10);
        let t2 = "t2".repeat(10);
        let tokens = Tokens::from_config(&[
            ApiToken {
                name: None,
                sha256: cluster_config::mtls::token::hash_hex(&t1),
                scopes: vec!["read".into()],
            },
            ApiToken {
                name: None,
                sha256: cluster_config::mtls::token::hash_hex(&t2),
                scopes: vec!["orders".into(), "catalog".into()],
            },
        ]);
        assert_eq!(tokens.scopes_of(&t1), Some(Scope::Read.bit()));
        assert_eq!(
            tokens.scopes_of(&t2),
            Some(Scope::Orders.bit() | Scope::Catalog.bit())
        );
        assert_eq!(tokens.scopes_of("nope"), None);
    }
}
