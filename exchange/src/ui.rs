//! The browser UI: one page per role (HTML + plain JavaScript + CSS, no build step), compiled
//! into the binary and served by the role's service next to its REST API.
//!
//! Routes (none under `/api/`, which belongs to the REST API): `GET /` (also `/index.html`) is
//! the role's page; `/app.js`, `/style.css` and `/favicon.svg` are shared by the three pages.
//! The page finds everything else through the REST API: it polls `/api/status` every second
//! and reloads balances, the offer board, ecoin requests, the trade history, the order book's
//! depth, its recent trades and the site's orders when the block height changes (and every
//! few seconds anyway). A producer's page posts sell orders, a consumer's buy orders, and both
//! cancel their own; the admin's shows the book, its trades and every open order.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const ADMIN_PAGE: &str = include_str!("../ui/admin.html");
const PRODUCER_PAGE: &str = include_str!("../ui/producer.html");
const CONSUMER_PAGE: &str = include_str!("../ui/consumer.html");
/// The market panels every page shows (the order book's depth and its recent trades), put in
/// place of each page's [`MARKET_SLOT`].
const MARKET: &str = include_str!("../ui/market.html");
const MARKET_SLOT: &str = "    <!-- market -->\n";
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/style.css");
const ICON: &str = include_str!("../ui/favicon.svg");

/// Everything the page loads comes from its own service; nothing inline, nothing remote.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page for `role` ("admin", "producer" or "consumer"), `None` for any other word.
pub fn page(role: &str) -> Option<&'static str> {
    static PAGES: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
        [ADMIN_PAGE, PRODUCER_PAGE, CONSUMER_PAGE].map(|page| page.replacen(MARKET_SLOT, MARKET, 1))
    });
    let index = match role {
        "admin" => 0,
        "producer" => 1,
        "consumer" => 2,
        _ => return None,
    };
    Some(PAGES[index].as_str())
}

/// The UI routes for `role` ("admin", "producer" or "consumer"): `GET /` and its static files.
/// An unknown role gets a plain 404 page instead of a UI.
pub fn routes(role: &str) -> Router {
    let index = match page(role) {
        Some(html) => get(move || async move { asset("text/html; charset=utf-8", html) }),
        None => {
            let message = format!("no browser UI for the role {role:?}\n");
            get(move || async move { (StatusCode::NOT_FOUND, message).into_response() })
        }
    };
    Router::new()
        .route("/", index.clone())
        .route("/index.html", index)
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/favicon.svg",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
}

/// A static file with its content type; `no-cache` so that a new binary's UI is picked up at
/// once (the files are small and served from memory).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_its_page_with_the_shared_script_and_style() {
        for role in ["admin", "producer", "consumer"] {
            let html = page(role).expect("a page for every role");
            assert!(
                !html.contains(MARKET_SLOT),
                "{role}: the market panels are in place"
            );
            assert!(html.contains(&format!("data-role=\"{role}\"")), "{role}");
            assert!(html.contains("src=\"/app.js\""), "{role}");
            assert!(html.contains("href=\"/style.css\""), "{role}");
            for id in [
                "balances",
                "height",
                "address",
                "notice",
                "offers",
                "history",
                "book-asks",
                "book-bids",
                "book-spread",
                "book-trades",
                "orders",
            ] {
                assert!(html.contains(&format!("id=\"{id}\"")), "{role} lacks #{id}");
            }
        }
        assert!(page("miner").is_none());
    }

    #[test]
    fn role_actions_are_on_their_pages_only() {
        let has =
            |role: &str, id: &str| page(role).is_some_and(|h| h.contains(&format!("id=\"{id}\"")));
        for id in ["exchange-url", "connect"] {
            assert!(
                has("producer", id) && has("consumer", id) && !has("admin", id),
                "{id}"
            );
        }
        for id in ["issue-energy", "offer-energy", "offer-ecoin", "offer"] {
            assert!(
                has("producer", id) && !has("consumer", id) && !has("admin", id),
                "{id}"
            );
        }
        for id in ["order-form", "order-qty", "order-price", "place-order"] {
            assert!(
                has("producer", id) && has("consumer", id) && !has("admin", id),
                "{id}"
            );
        }
        let says = |role: &str, text: &str| page(role).is_some_and(|h| h.contains(text));
        assert!(says("producer", "Post sell order") && !says("producer", "Post buy order"));
        assert!(says("consumer", "Post buy order") && !says("consumer", "Post sell order"));
        for id in ["request-qty", "request"] {
            assert!(
                has("consumer", id) && !has("producer", id) && !has("admin", id),
                "{id}"
            );
        }
        for id in ["node-address", "node-type", "connect-node", "requests"] {
            assert!(has("admin", id) && !has("producer", id), "{id}");
        }
    }

    #[test]
    fn pages_load_nothing_from_outside_and_run_no_inline_script() {
        for role in ["admin", "producer", "consumer"] {
            let html = page(role).unwrap_or_default();
            for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
                assert!(!html.contains(remote), "{role} loads {remote}…");
            }
            assert!(
                !html.contains("<script>") && !html.contains(" onclick="),
                "{role}"
            );
            assert!(
                !html.contains("style=\""),
                "{role}: inline styles break the CSP"
            );
        }
        assert!(
            !SCRIPT.contains("innerHTML"),
            "network text is never parsed as HTML"
        );
    }
}
