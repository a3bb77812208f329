//! The browser UI: one page per role (HTML + plain JavaScript, no build step), served by the
//! service itself. (Placeholder until the UI lands.)

use axum::Router;

/// The UI routes for `role` ("admin", "producer" or "consumer"): `GET /` and its static files.
pub fn routes(role: &str) -> Router {
    let _ = role;
    Router::new()
}
