//! Wiring: the shared [`Service`] state, the role's router (REST endpoints + the UI), request
//! body parsing, the endpoints every role serves, and the server's life cycle.

use crate::db::Db;
use crate::error::ApiError;
use crate::node::Node;
use crate::remote::BaseUrl;
use crate::{Role, ServiceConfig, admin, consumer, offers, orders, producer, site};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// One running service.
pub struct Service {
    pub role: Role,
    pub node: Node,
    pub db: Db,
    /// Serialises changes to records together with the node calls they depend on (an ecoin
    /// request is issued at most once, an offer is taken once, a site trades one thing at a time).
    pub writes: tokio::sync::Mutex<()>,
    /// Admin: set once the paper's assets are known to exist.
    pub assets_ready: tokio::sync::Mutex<bool>,
    /// Admin: per offer, how many checks in a row did not find its bid's transaction.
    pub misses: std::sync::Mutex<HashMap<u64, u32>>,
    /// The multiples (raw units per display unit) of the assets seen, by name.
    pub multiples: std::sync::Mutex<HashMap<String, u32>>,
}

pub type Shared = Arc<Service>;

pub type ApiResult = Result<Json<Value>, ApiError>;

/// Parses a JSON object body (empty = `{}`) into `T`; anything else is 400 `invalid_request`.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?
    };
    if !v.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
}

/// Parses the query string of `uri` into `T`; a bad one is 400 `invalid_request`.
pub fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("invalid query: {}", e.body_text())))
}

/// A record index: a non-negative integer (or a string holding one).
pub fn de_index<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    let n = match &v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        serde::de::Error::custom(format!("index must be a non-negative integer, got {v}"))
    })
}

/// A non-empty string field, trimmed.
pub fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim().to_string();
    if s.is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `GET /api/status`.
async fn status(State(s): State<Shared>) -> ApiResult {
    let address = s.node.address().await?;
    let height = s.node.height().await?;
    let exchange = match s.role {
        Role::Admin => None,
        _ => s.db.exchange_url()?,
    };
    Ok(Json(json!({
        "role": s.role.as_str(),
        "chain": s.node.chain(),
        "address": address,
        "height": height,
        "exchange": exchange,
    })))
}

/// `GET /api/balances`.
async fn balances(State(s): State<Shared>) -> ApiResult {
    let address = s.node.address().await?;
    Ok(Json(Value::Array(s.node.balances(&address).await?)))
}

async fn no_endpoint(State(s): State<Shared>, method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "the {} service has no endpoint {method} {}",
        s.role,
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}

/// The REST routes of `role`.
fn api_routes(role: Role) -> Router<Shared> {
    let common = Router::new()
        .route("/api/status", get(status))
        .route("/api/balances", get(balances))
        .route("/api/orderbook", get(orders::orderbook))
        .route("/api/trades", get(orders::trades))
        .route("/api/orders", get(orders::orders));
    let own = match role {
        Role::Admin => Router::new()
            .route("/api/admin/connect_node", post(admin::connect_node))
            .route(
                "/api/admin/schedule_ecoin_issue",
                post(admin::schedule_ecoin_issue),
            )
            .route("/api/admin/issue_ecoin", post(admin::issue_ecoin))
            .route("/api/admin/ecoin_requests", get(admin::ecoin_requests))
            .route("/api/ecoin_requests", get(admin::ecoin_requests))
            .route("/api/admin/register_ask", post(offers::register_ask))
            .route("/api/admin/register_bid", post(offers::register_bid))
            .route("/api/admin/exchange_list", get(offers::exchange_list))
            .route("/api/exchange_list", get(offers::exchange_list))
            .route("/api/admin/exchange/{index}", get(offers::exchange_entry)),
        Role::Producer => Router::new()
            .route("/api/producer/reg_exchange_ip", post(site::reg_exchange_ip))
            .route("/api/producer/issue_energy", post(producer::issue_energy))
            .route(
                "/api/producer/propose_exchange",
                post(producer::propose_exchange),
            )
            .route("/api/producer/sell_order", post(orders::sell_order))
            .route("/api/producer/cancel_order", post(orders::cancel_order)),
        Role::Consumer => Router::new()
            .route("/api/consumer/reg_exchange_ip", post(site::reg_exchange_ip))
            .route(
                "/api/consumer/request_ecoin_issue",
                post(consumer::request_ecoin_issue),
            )
            .route(
                "/api/consumer/accept_exchange",
                post(consumer::accept_exchange),
            )
            .route("/api/consumer/buy_order", post(orders::buy_order))
            .route("/api/consumer/cancel_order", post(orders::cancel_order)),
    };
    let forwarded = match role {
        Role::Admin => Router::new(),
        _ => Router::new()
            .route("/api/exchange_list", get(site::exchange_list))
            .route("/api/ecoin_requests", get(site::ecoin_requests)),
    };
    common
        .merge(own)
        .merge(forwarded)
        .route("/api", get(no_endpoint).post(no_endpoint))
        .route("/api/{*rest}", get(no_endpoint).post(no_endpoint))
        .method_not_allowed_fallback(wrong_method)
}

/// Builds the service and its router (REST API + UI).
pub fn router(config: ServiceConfig) -> Result<(Router, Shared), String> {
    let db = Db::open(&config.db_dir)?;
    if let Some(url) = &config.exchange_url {
        if config.role == Role::Admin {
            return Err("--exchange is for producer and consumer services".into());
        }
        let base = BaseUrl::parse(url)?;
        db.set_exchange_url_now(&base.text())
            .map_err(|e| e.to_string())?;
    }
    let service = Arc::new(Service {
        role: config.role,
        node: Node::new(config.rpc),
        db,
        writes: Default::default(),
        assets_ready: Default::default(),
        misses: Default::default(),
        multiples: Default::default(),
    });
    let router = api_routes(config.role)
        .with_state(service.clone())
        .merge(crate::ui::routes(config.role.as_str()));
    Ok((router, service))
}

/// See [`crate::serve`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let role = config.role;
    let (router, service) = router(config)?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("the {role} service's listener: {e}"))?;
    tracing::info!(%role, %local, "exchange service listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let background = match role {
        Role::Admin => Some(tokio::spawn(offers::watch_bids(service.clone(), stop_rx))),
        _ => None,
    };
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("the {role} service stopped: {e}"));
    let _ = stop_tx.send(true);
    if let Some(task) = background {
        let _ = task.await;
    }
    if let Err(e) = service.db.flush().await {
        tracing::error!("{e}");
    }
    tracing::info!(%role, "exchange service stopped");
    result
}
