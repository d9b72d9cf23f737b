//! The status page's routes without a browser: `/ui/` and its assets answer with the right
//! content types, the page loads only what the gateway serves, and nothing from another
//! origin. The page in a real browser is `ui_browser.rs`.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// The page needs no node: a gateway in front of an address nobody listens on serves it.
fn app() -> Router {
    let mut config = gateway::GatewayConfig::with_nodes(vec!["127.0.0.1:9".into()]);
    config.listen = "127.0.0.1:0".parse().unwrap();
    gateway::app(&config).unwrap()
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn content_type(headers: &HeaderMap) -> &str {
    headers[header::CONTENT_TYPE].to_str().unwrap()
}

/// The values of `attr="…"` in an HTML document.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("a closed attribute")]
        })
        .collect()
}

/// The page and every asset it references, by path.
async fn page_and_assets(app: &Router) -> Vec<(String, String, String)> {
    let (status, headers, html) = get(app, "/ui/").await;
    assert_eq!(status, StatusCode::OK);
    let mut all = vec![(
        "/ui/".to_owned(),
        content_type(&headers).to_owned(),
        html.clone(),
    )];
    let references: Vec<&str> = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .collect();
    assert!(!references.is_empty(), "the page references no assets");
    for reference in references {
        let path = format!("/ui/{reference}");
        let (status, headers, body) = get(app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.push((path, content_type(&headers).to_owned(), body));
    }
    all
}

#[tokio::test]
async fn the_page_is_html_and_needs_no_node() {
    let app = app();
    let (status, headers, html) = get(&app, "/ui/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type(&headers), "text/html; charset=utf-8");
    assert!(html.starts_with("<!doctype html>"), "{html}");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // The test hooks the browser test and scripts rely on.
    assert!(html.contains(r#"data-state="loading""#));
    for id in ["cluster", "sku-rows", "sales", "feed"] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "no #{id}");
    }
}

#[tokio::test]
async fn assets_have_their_content_types() {
    let app = app();
    let assets = page_and_assets(&app).await;
    let types: Vec<(&str, &str)> = assets
        .iter()
        .map(|(path, ct, _)| (path.as_str(), ct.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("/ui/", "text/html; charset=utf-8"),
            ("/ui/app.js", "text/javascript; charset=utf-8"),
            ("/ui/style.css", "text/css; charset=utf-8"),
        ]
    );
}

#[tokio::test]
async fn the_page_loads_nothing_from_another_origin() {
    let app = app();
    for (path, _, body) in page_and_assets(&app).await {
        let lower = body.to_ascii_lowercase();
        // `://` catches every scheme with a host (ws://, ftp://…), not only the web's two.
        for scheme in ["http:", "https:", "://"] {
            assert!(!lower.contains(scheme), "{path} mentions {scheme:?}");
        }
        // Protocol-relative URLs (`//host/x`) in an attribute, a CSS url() or a JS string.
        for opener in ["\"//", "'//", "(//", "`//"] {
            assert!(
                !lower.contains(opener),
                "{path} has a URL starting {opener:?}"
            );
        }
        assert!(!lower.contains("@import"), "{path} imports a stylesheet");
    }
    // Every reference in the page is relative to /ui/ (no absolute paths elsewhere).
    let (_, _, html) = get(&app, "/ui/").await;
    for reference in attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
    {
        assert!(
            reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{reference:?} is not a plain relative asset name"
        );
    }
}

#[tokio::test]
async fn bare_ui_redirects_and_unknown_assets_are_404() {
    let app = app();
    let (status, headers, _) = get(&app, "/ui").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/ui/");

    let (status, headers, body) = get(&app, "/ui/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type(&headers), "application/json");
    assert!(body.contains(r#""code":"not_found""#), "{body}");
}

#[tokio::test]
async fn the_page_is_counted_under_its_route_pattern() {
    let app = app();
    get(&app, "/ui/").await;
    get(&app, "/ui/app.js").await;
    let (_, _, metrics) = get(&app, "/metrics").await;
    for route in ["/ui/", "/ui/{asset}"] {
        let line = format!(r#"route="{route}""#);
        assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    }
}
