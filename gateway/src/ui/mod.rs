//! `/ui/`: the status page for people (API.md), served by the gateway itself.
//!
//! The page is static: one HTML document, a script and a stylesheet, compiled into the binary
//! so a gateway needs no files beside it and the page always matches the API it was built
//! with. Everything live comes from the page's own reads of `/v1/` in the browser, so this
//! module keeps no state and talks to no node.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

pub const PAGE: &str = "/ui/";
const BARE: &str = "/ui";
const ASSET: &str = "/ui/{asset}";

/// The route patterns, for the metrics' `route` label.
pub const PATHS: [&str; 3] = [BARE, PAGE, ASSET];

/// The page may load nothing from another origin (API.md: no outside assets) and no inline
/// script; the browser enforces what the page's own test only greps for.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

/// Every asset the page loads, by the name it uses for it (relative URLs under `/ui/`).
const ASSETS: [Asset; 3] = [
    INDEX,
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
];

/// The page's routes, for the gateway's route table. They need no state of their own.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative asset URLs resolve against `/ui/`, not `/ui`.
        .route(BARE, get(|| async { Redirect::permanent(PAGE) }))
        .route(PAGE, get(|| async { serve(&INDEX) }))
        .route(ASSET, get(asset))
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(found) => serve(found),
        None => ApiError::not_found_route().into_response(),
    }
}

fn serve(asset: &Asset) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response();
    let headers = response.headers_mut();
    // A gateway upgraded in place must not leave browsers on the old script; the assets are
    // small and local, so revalidating costs nothing worth saving.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}
