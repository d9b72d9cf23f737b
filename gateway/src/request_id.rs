//! Request ids (API.md, "Request ids"): every answer carries `x-request-id`, the client's own
//! when it follows the identifier rule, else one the gateway makes; error bodies carry it as
//! `request_id`, so a client can quote it from a logged error alone.
//!
//! The id is task-local for the request's handling: an `ApiError` is rendered deep inside a
//! handler or an extractor, and threading the id through every signature that can fail
//! would touch all of them.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use rand::Rng;
use std::future::Future;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// Runs `handle` with the request's id (the client's, if valid, else a new one) in its
/// header and task-local, and puts the id on the answer.
pub async fn with_id<F, Fut>(mut req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let id = req
        .headers()
        .get(&HEADER)
        .filter(|v| is_valid(v))
        .cloned()
        .unwrap_or_else(new_id);
    req.headers_mut().insert(HEADER, id.clone());
    let mut response = CURRENT.scope(id.clone(), handle(req)).await;
    response.headers_mut().insert(HEADER, id);
    response
}

/// The identifier rule: 1–128 characters from `A-Z a-z 0-9 . _ : -`, the rule of every id in
/// the API, so an id is safe to log and to echo.
fn is_valid(value: &HeaderValue) -> bool {
    value
        .to_str()
        .is_ok_and(|s| state_machine::RequestId::new(s).is_ok())
}

/// `req-` and 24 hex digits: unique across stateless gateways without coordination.
fn new_id() -> HeaderValue {
    let raw: u128 = rand::rng().random::<u128>() >> 32;
    HeaderValue::from_str(&format!("req-{raw:024x}")).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_follow_the_identifier_rule_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert!(is_valid(&a) && is_valid(&b));
        assert_ne!(a, b);
        assert_eq!(a.len(), 28);
    }

    #[test]
    fn client_ids_outside_the_rule_are_replaced() {
        for bad in ["", "has space", "semi;colon", &"x".repeat(129)] {
            assert!(!is_valid(&HeaderValue::from_str(bad).unwrap()), "{bad:?}");
        }
        for good in ["abc", "trace-1:2.3_x", &"x".repeat(128)] {
            assert!(is_valid(&HeaderValue::from_str(good).unwrap()), "{good:?}");
        }
    }

    #[tokio::test]
    async fn current_is_the_scoped_id_and_none_outside() {
        assert_eq!(current(), None);
        let id = HeaderValue::from_static("abc");
        assert_eq!(
            CURRENT.scope(id, async { current() }).await.as_deref(),
            Some("abc")
        );
    }
}
